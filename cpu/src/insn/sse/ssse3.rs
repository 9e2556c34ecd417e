//! SSSE3, XMM and MMX forms: PSHUFB, PHADDW/D/SW, PHSUBW/D/SW,
//! PMADDUBSW, PSIGNB/W/D, PMULHRSW, PABSB/W/D, PALIGNR.
//!
//! One computation ([`compute`]) serves both widths: the horizontal
//! operations, PSHUFB's index and PALIGNR's concatenation depend on the
//! vector size (128 or 64 bits). The XMM forms follow the legacy SSE
//! rules ([`super::check`], 16-byte aligned m128); the MMX forms are MMX
//! instructions (`insn::mmx::check`: no CR4.OSFXSR requirement, #MF, the
//! x87-to-MMX transition; m64 without alignment rule).

use super::arith::sat_s;
use super::{binop, from_lanes, lane, sx};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::insn::mmx;
use crate::platform::Platform;
use iced_x86::{Code, Instruction};

pub(crate) const PSHUFB: u8 = 0;
pub(crate) const PHADDW: u8 = 1;
pub(crate) const PHADDD: u8 = 2;
pub(crate) const PHADDSW: u8 = 3;
pub(crate) const PHSUBW: u8 = 4;
pub(crate) const PHSUBD: u8 = 5;
pub(crate) const PHSUBSW: u8 = 6;
pub(crate) const PMADDUBSW: u8 = 7;
pub(crate) const PSIGNB: u8 = 8;
pub(crate) const PSIGNW: u8 = 9;
pub(crate) const PSIGND: u8 = 10;
pub(crate) const PMULHRSW: u8 = 11;
pub(crate) const PABSB: u8 = 12;
pub(crate) const PABSW: u8 = 13;
pub(crate) const PABSD: u8 = 14;
pub(crate) const PALIGNR: u8 = 15;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Pshufb_xmm_xmmm128 => op_xmm::<PSHUFB>,
        C::Phaddw_xmm_xmmm128 => op_xmm::<PHADDW>,
        C::Phaddd_xmm_xmmm128 => op_xmm::<PHADDD>,
        C::Phaddsw_xmm_xmmm128 => op_xmm::<PHADDSW>,
        C::Phsubw_xmm_xmmm128 => op_xmm::<PHSUBW>,
        C::Phsubd_xmm_xmmm128 => op_xmm::<PHSUBD>,
        C::Phsubsw_xmm_xmmm128 => op_xmm::<PHSUBSW>,
        C::Pmaddubsw_xmm_xmmm128 => op_xmm::<PMADDUBSW>,
        C::Psignb_xmm_xmmm128 => op_xmm::<PSIGNB>,
        C::Psignw_xmm_xmmm128 => op_xmm::<PSIGNW>,
        C::Psignd_xmm_xmmm128 => op_xmm::<PSIGND>,
        C::Pmulhrsw_xmm_xmmm128 => op_xmm::<PMULHRSW>,
        C::Pabsb_xmm_xmmm128 => op_xmm::<PABSB>,
        C::Pabsw_xmm_xmmm128 => op_xmm::<PABSW>,
        C::Pabsd_xmm_xmmm128 => op_xmm::<PABSD>,
        C::Palignr_xmm_xmmm128_imm8 => op_xmm::<PALIGNR>,
        C::Pshufb_mm_mmm64 => op_mm::<PSHUFB>,
        C::Phaddw_mm_mmm64 => op_mm::<PHADDW>,
        C::Phaddd_mm_mmm64 => op_mm::<PHADDD>,
        C::Phaddsw_mm_mmm64 => op_mm::<PHADDSW>,
        C::Phsubw_mm_mmm64 => op_mm::<PHSUBW>,
        C::Phsubd_mm_mmm64 => op_mm::<PHSUBD>,
        C::Phsubsw_mm_mmm64 => op_mm::<PHSUBSW>,
        C::Pmaddubsw_mm_mmm64 => op_mm::<PMADDUBSW>,
        C::Psignb_mm_mmm64 => op_mm::<PSIGNB>,
        C::Psignw_mm_mmm64 => op_mm::<PSIGNW>,
        C::Psignd_mm_mmm64 => op_mm::<PSIGND>,
        C::Pmulhrsw_mm_mmm64 => op_mm::<PMULHRSW>,
        C::Pabsb_mm_mmm64 => op_mm::<PABSB>,
        C::Pabsw_mm_mmm64 => op_mm::<PABSW>,
        C::Pabsd_mm_mmm64 => op_mm::<PABSD>,
        C::Palignr_mm_mmm64_imm8 => op_mm::<PALIGNR>,
        _ => return None,
    })
}

/// Horizontal pairs: lane `i` of the result is `f(x[2k], x[2k+1])` of
/// the destination `a` for the low half of the lanes, of the source `b`
/// for the high half (`n` lanes of `w` bits in the vector).
fn horizontal(w: u32, n: u32, a: u128, b: u128, f: impl Fn(u64, u64) -> u64) -> u128 {
    from_lanes(w, |i| {
        if i >= n {
            return 0;
        }
        let (v, k) = if i < n / 2 { (a, i) } else { (b, i - n / 2) };
        f(lane(v, w, 2 * k), lane(v, w, 2 * k + 1))
    })
}

/// PSIGN: the destination lane negated, zeroed or kept as the source
/// lane is negative, zero or positive.
fn sign(w: u32, a: u128, b: u128) -> u128 {
    super::map2(w, a, b, |x, y| match sx(y, w) {
        0 => 0,
        s if s < 0 => x.wrapping_neg(),
        _ => x,
    })
}

/// The result of SSSE3 operation `op` on `a` (destination) and `b`
/// (source) in a vector of `bits` (128 for XMM, 64 for MMX: the operands'
/// upper 64 bits are then zero and the result's are zero); `imm` is
/// PALIGNR's byte count.
pub(crate) fn compute(op: u8, bits: u32, imm: u8, a: u128, b: u128) -> u128 {
    let words = bits / 16;
    let r = match op {
        // A byte index with bit 7 set gives 0; otherwise its low 4 (XMM)
        // or 3 (MMX) bits select a destination byte.
        PSHUFB => from_lanes(8, |i| {
            let s = lane(b, 8, i);
            if s & 0x80 != 0 {
                0
            } else {
                lane(a, 8, (s as u32) & (bits / 8 - 1))
            }
        }),
        PHADDW => horizontal(16, words, a, b, u64::wrapping_add),
        PHADDD => horizontal(32, bits / 32, a, b, u64::wrapping_add),
        PHADDSW => horizontal(16, words, a, b, |x, y| sat_s(sx(x, 16) + sx(y, 16), 16)),
        PHSUBW => horizontal(16, words, a, b, u64::wrapping_sub),
        PHSUBD => horizontal(32, bits / 32, a, b, u64::wrapping_sub),
        PHSUBSW => horizontal(16, words, a, b, |x, y| sat_s(sx(x, 16) - sx(y, 16), 16)),
        // Unsigned bytes of the destination times signed bytes of the
        // source, adjacent products summed with signed saturation.
        PMADDUBSW => from_lanes(16, |i| {
            let p = |k: u32| lane(a, 8, k) as i64 * sx(lane(b, 8, k), 8);
            sat_s(p(2 * i) + p(2 * i + 1), 16)
        }),
        PSIGNB => sign(8, a, b),
        PSIGNW => sign(16, a, b),
        PSIGND => sign(32, a, b),
        // ((a * b) >> 14) + 1) >> 1: the high word, rounded.
        PMULHRSW => super::map2(16, a, b, |x, y| {
            ((((sx(x, 16) * sx(y, 16)) >> 14) + 1) >> 1) as u64
        }),
        // |source|; the most negative value stays as it is (unsigned).
        PABSB => super::map2(8, a, b, |_, y| sx(y, 8).unsigned_abs()),
        PABSW => super::map2(16, a, b, |_, y| sx(y, 16).unsigned_abs()),
        PABSD => super::map2(32, a, b, |_, y| sx(y, 32).unsigned_abs()),
        // Bytes `imm..` of the concatenation destination:source (source
        // low), zeros past its end.
        _ => {
            let n = bits / 8;
            from_lanes(8, |i| {
                let k = i + u32::from(imm);
                if k < n {
                    lane(b, 8, k)
                } else if k < 2 * n {
                    lane(a, 8, k - n)
                } else {
                    0
                }
            })
        }
    };
    r & (u128::MAX >> (128 - bits))
}

/// The XMM forms: `xmm = xmm OP xmm/m128` (aligned).
fn op_xmm<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let imm = if OP == PALIGNR { insn.immediate8() } else { 0 };
    binop(cpu, plat, insn, |a, b| compute(OP, 128, imm, a, b))
}

/// The MMX forms: `mm = mm OP mm/m64`.
fn op_mm<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let imm = if OP == PALIGNR { insn.immediate8() } else { 0 };
    mmx::binop(cpu, plat, insn, |a, b| compute(OP, 64, imm, a, b))
}
