//! Packed integer arithmetic on XMM registers (SSE2): PADDB/W/D/Q,
//! PSUBB/W/D/Q, the saturating PADDS/PADDUS/PSUBS/PSUBUS B/W, PMULLW,
//! PMULHW, PMULHUW, PMULUDQ, PMADDWD, PSADBW, PAVGB/W, PMINUB, PMAXUB,
//! PMINSW, PMAXSW. No flags, no exceptions beyond the availability check
//! and the m128 alignment rule.

use super::{binop, from_lanes, lane, map2, sx};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction};

pub(crate) const PADDB: u8 = 0;
pub(crate) const PADDW: u8 = 1;
pub(crate) const PADDD: u8 = 2;
pub(crate) const PADDQ: u8 = 3;
pub(crate) const PSUBB: u8 = 4;
pub(crate) const PSUBW: u8 = 5;
pub(crate) const PSUBD: u8 = 6;
pub(crate) const PSUBQ: u8 = 7;
pub(crate) const PADDSB: u8 = 8;
pub(crate) const PADDSW: u8 = 9;
pub(crate) const PADDUSB: u8 = 10;
pub(crate) const PADDUSW: u8 = 11;
pub(crate) const PSUBSB: u8 = 12;
pub(crate) const PSUBSW: u8 = 13;
pub(crate) const PSUBUSB: u8 = 14;
pub(crate) const PSUBUSW: u8 = 15;
pub(crate) const PMULLW: u8 = 16;
pub(crate) const PMULHW: u8 = 17;
pub(crate) const PMULHUW: u8 = 18;
pub(crate) const PMULUDQ: u8 = 19;
pub(crate) const PMADDWD: u8 = 20;
pub(crate) const PSADBW: u8 = 21;
pub(crate) const PAVGB: u8 = 22;
pub(crate) const PAVGW: u8 = 23;
pub(crate) const PMINUB: u8 = 24;
pub(crate) const PMAXUB: u8 = 25;
pub(crate) const PMINSW: u8 = 26;
pub(crate) const PMAXSW: u8 = 27;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Paddb_xmm_xmmm128 => int_op::<PADDB>,
        C::Paddw_xmm_xmmm128 => int_op::<PADDW>,
        C::Paddd_xmm_xmmm128 => int_op::<PADDD>,
        C::Paddq_xmm_xmmm128 => int_op::<PADDQ>,
        C::Psubb_xmm_xmmm128 => int_op::<PSUBB>,
        C::Psubw_xmm_xmmm128 => int_op::<PSUBW>,
        C::Psubd_xmm_xmmm128 => int_op::<PSUBD>,
        C::Psubq_xmm_xmmm128 => int_op::<PSUBQ>,
        C::Paddsb_xmm_xmmm128 => int_op::<PADDSB>,
        C::Paddsw_xmm_xmmm128 => int_op::<PADDSW>,
        C::Paddusb_xmm_xmmm128 => int_op::<PADDUSB>,
        C::Paddusw_xmm_xmmm128 => int_op::<PADDUSW>,
        C::Psubsb_xmm_xmmm128 => int_op::<PSUBSB>,
        C::Psubsw_xmm_xmmm128 => int_op::<PSUBSW>,
        C::Psubusb_xmm_xmmm128 => int_op::<PSUBUSB>,
        C::Psubusw_xmm_xmmm128 => int_op::<PSUBUSW>,
        C::Pmullw_xmm_xmmm128 => int_op::<PMULLW>,
        C::Pmulhw_xmm_xmmm128 => int_op::<PMULHW>,
        C::Pmulhuw_xmm_xmmm128 => int_op::<PMULHUW>,
        C::Pmuludq_xmm_xmmm128 => int_op::<PMULUDQ>,
        C::Pmaddwd_xmm_xmmm128 => int_op::<PMADDWD>,
        C::Psadbw_xmm_xmmm128 => int_op::<PSADBW>,
        C::Pavgb_xmm_xmmm128 => int_op::<PAVGB>,
        C::Pavgw_xmm_xmmm128 => int_op::<PAVGW>,
        C::Pminub_xmm_xmmm128 => int_op::<PMINUB>,
        C::Pmaxub_xmm_xmmm128 => int_op::<PMAXUB>,
        C::Pminsw_xmm_xmmm128 => int_op::<PMINSW>,
        C::Pmaxsw_xmm_xmmm128 => int_op::<PMAXSW>,
        _ => return None,
    })
}

/// Signed saturation of `v` to `w` bits.
#[inline(always)]
pub(crate) fn sat_s(v: i64, w: u32) -> u64 {
    let max = (1i64 << (w - 1)) - 1;
    let min = -(1i64 << (w - 1));
    v.clamp(min, max) as u64
}

/// Unsigned saturation of `v` to `w` bits.
#[inline(always)]
pub(crate) fn sat_u(v: i64, w: u32) -> u64 {
    v.clamp(0, (1i64 << w) - 1) as u64
}

/// The result of operation `op` on `a` (destination) and `b` (source).
#[inline(always)]
pub(crate) fn compute(op: u8, a: u128, b: u128) -> u128 {
    match op {
        PADDB => map2(8, a, b, u64::wrapping_add),
        PADDW => map2(16, a, b, u64::wrapping_add),
        PADDD => map2(32, a, b, u64::wrapping_add),
        PADDQ => map2(64, a, b, u64::wrapping_add),
        PSUBB => map2(8, a, b, u64::wrapping_sub),
        PSUBW => map2(16, a, b, u64::wrapping_sub),
        PSUBD => map2(32, a, b, u64::wrapping_sub),
        PSUBQ => map2(64, a, b, u64::wrapping_sub),
        PADDSB => map2(8, a, b, |x, y| sat_s(sx(x, 8) + sx(y, 8), 8)),
        PADDSW => map2(16, a, b, |x, y| sat_s(sx(x, 16) + sx(y, 16), 16)),
        PADDUSB => map2(8, a, b, |x, y| sat_u((x + y) as i64, 8)),
        PADDUSW => map2(16, a, b, |x, y| sat_u((x + y) as i64, 16)),
        PSUBSB => map2(8, a, b, |x, y| sat_s(sx(x, 8) - sx(y, 8), 8)),
        PSUBSW => map2(16, a, b, |x, y| sat_s(sx(x, 16) - sx(y, 16), 16)),
        PSUBUSB => map2(8, a, b, |x, y| x.saturating_sub(y)),
        PSUBUSW => map2(16, a, b, |x, y| x.saturating_sub(y)),
        PMULLW => map2(16, a, b, u64::wrapping_mul),
        PMULHW => map2(16, a, b, |x, y| ((sx(x, 16) * sx(y, 16)) >> 16) as u64),
        PMULHUW => map2(16, a, b, |x, y| (x * y) >> 16),
        PMULUDQ => map2(64, a, b, |x, y| (x & 0xffff_ffff) * (y & 0xffff_ffff)),
        PMADDWD => from_lanes(32, |i| {
            let p = |k: u32| sx(lane(a, 16, k), 16) * sx(lane(b, 16, k), 16);
            // Only 0x8000 * 0x8000 twice overflows: it wraps to 0x80000000.
            p(2 * i).wrapping_add(p(2 * i + 1)) as u64
        }),
        PSADBW => from_lanes(64, |q| {
            (0..8)
                .map(|k| lane(a, 8, 8 * q + k).abs_diff(lane(b, 8, 8 * q + k)))
                .sum()
        }),
        PAVGB => map2(8, a, b, |x, y| (x + y + 1) >> 1),
        PAVGW => map2(16, a, b, |x, y| (x + y + 1) >> 1),
        PMINUB => map2(8, a, b, u64::min),
        PMAXUB => map2(8, a, b, u64::max),
        PMINSW => map2(16, a, b, |x, y| sx(x, 16).min(sx(y, 16)) as u64),
        _ => map2(16, a, b, |x, y| sx(x, 16).max(sx(y, 16)) as u64),
    }
}

/// `dst = dst OP xmm/m128`.
pub(crate) fn int_op<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| compute(OP, a, b))
}
