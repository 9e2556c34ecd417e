//! SSE3 (legacy encodings): the horizontal and alternating arithmetic
//! ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD on the soft-float of
//! [`super::softfloat`] (exact MXCSR rounding, FZ/DAZ, flags, #XM), the
//! duplicating moves MOVSLDUP, MOVSHDUP, MOVDDUP, and LDDQU.
//!
//! Not here: FISTTP (x87), MONITOR/MWAIT (system).
//!
//! Alignment (SDM Vol. 2, 2.4, exception types): the arithmetic and
//! MOVSLDUP/MOVSHDUP take an aligned m128 (type 2 and 4); MOVDDUP reads
//! an m64 (type 5) and LDDQU an m128 (type 4 with the alignment check
//! waived: the instruction exists to load unaligned data).

use super::fp_arith::commit;
use super::softfloat::{self as sf, Op, F32, F64};
use super::{check, from_lanes, lane, lane_mask, read_xm128, set_xmm, xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind};

/// ADDSUB: lane 0 subtracts, lane 1 adds, and so on.
const ADDSUB: u8 = 0;
/// Horizontal add.
const HADD: u8 = 1;
/// Horizontal subtract.
const HSUB: u8 = 2;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Addsubps_xmm_xmmm128 => fp_sse3::<false, ADDSUB>,
        C::Addsubpd_xmm_xmmm128 => fp_sse3::<true, ADDSUB>,
        C::Haddps_xmm_xmmm128 => fp_sse3::<false, HADD>,
        C::Haddpd_xmm_xmmm128 => fp_sse3::<true, HADD>,
        C::Hsubps_xmm_xmmm128 => fp_sse3::<false, HSUB>,
        C::Hsubpd_xmm_xmmm128 => fp_sse3::<true, HSUB>,
        C::Movsldup_xmm_xmmm128 => movdup::<false>,
        C::Movshdup_xmm_xmmm128 => movdup::<true>,
        C::Movddup_xmm_xmmm64 => movddup,
        C::Lddqu_xmm_m128 => lddqu,
        _ => return None,
    })
}

/// The lanes of one SSE3 arithmetic operation on `a` (destination) and
/// `b` (source), `w`-bit lanes, and the flags all its operations raised
/// (SDM Vol. 2, ADDSUBPS, HADDPS, HSUBPS and the PD forms):
///
/// * ADDSUB: lane i = a[i] - b[i] for even i, a[i] + b[i] for odd i.
/// * HADD/HSUB: the low half of the result from pairs of `a`, the high
///   half from pairs of `b`; each pair is (lane 2k) op (lane 2k+1).
pub(crate) fn sse3_lanes(f64_: bool, op: u8, a: u128, b: u128, mxcsr: u32) -> (u128, u32) {
    let f = if f64_ { F64 } else { F32 };
    let w = f.w();
    let n = 128 / w;
    let mut flags = 0;
    let mut r = 0u128;
    for i in 0..n {
        let (x, y, o) = match op {
            ADDSUB => (
                lane(a, w, i),
                lane(b, w, i),
                if i & 1 == 0 { Op::Sub } else { Op::Add },
            ),
            _ => {
                let src = if i < n / 2 { a } else { b };
                let k = (2 * i) % n;
                let o = if op == HADD { Op::Add } else { Op::Sub };
                (lane(src, w, k), lane(src, w, k + 1), o)
            }
        };
        let (v, fl) = sf::arith(f, o, x, y, mxcsr);
        flags |= fl;
        r |= u128::from(v & lane_mask(w)) << (w * i);
    }
    (r, flags)
}

/// ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD xmm, xmm/m128 (aligned).
fn fp_sse3<const F64_: bool, const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let b = read_xm128(cpu, plat, insn, 1, true)?;
    let d = insn.op0_register();
    let (r, flags) = sse3_lanes(F64_, OP, xmm(cpu, d), b, cpu.state.mxcsr);
    commit(cpu, flags)?;
    set_xmm(cpu, d, r);
    Ok(())
}

/// MOVSLDUP (`HIGH` = false: dwords 0, 0, 2, 2) and MOVSHDUP (1, 1, 3,
/// 3) xmm, xmm/m128 (aligned).
fn movdup<const HIGH: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let s = read_xm128(cpu, plat, insn, 1, true)?;
    let r = from_lanes(32, |i| lane(s, 32, (i & !1) | u32::from(HIGH)));
    set_xmm(cpu, insn.op0_register(), r);
    Ok(())
}

/// MOVDDUP xmm, xmm/m64: the low quadword in both halves (an m64 has no
/// alignment requirement).
fn movddup(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let q = match insn.op1_kind() {
        OpKind::Register => xmm(cpu, insn.op1_register()) as u64,
        _ => cpu.read_m::<8>(plat, insn)?,
    };
    set_xmm(
        cpu,
        insn.op0_register(),
        u128::from(q) * ((1u128 << 64) + 1),
    );
    Ok(())
}

/// LDDQU xmm, m128: an unaligned 16-byte load.
fn lddqu(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let v = super::read_m128(cpu, plat, insn, false)?;
    set_xmm(cpu, insn.op0_register(), v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MXCSR_RESET;

    const ONE: u64 = 0x3f80_0000;
    const TWO: u64 = 0x4000_0000;
    const THREE: u64 = 0x4040_0000;

    fn ps(l: [u64; 4]) -> u128 {
        from_lanes(32, |i| l[i as usize])
    }

    #[test]
    fn haddps_pairs_and_hsubps_order() {
        let a = ps([ONE, TWO, THREE, ONE]);
        let b = ps([TWO, TWO, 0, ONE]);
        let (r, fl) = sse3_lanes(false, HADD, a, b, MXCSR_RESET);
        assert_eq!(r, ps([THREE, 0x4080_0000, 0x4080_0000, ONE]));
        assert_eq!(fl, 0);
        // HSUB: lower lane minus upper lane.
        let (r, _) = sse3_lanes(false, HSUB, a, b, MXCSR_RESET);
        assert_eq!(r, ps([0xbf80_0000, TWO, 0, 0xbf80_0000]));
    }

    #[test]
    fn addsubpd_sub_low_add_high() {
        let one = 0x3ff0_0000_0000_0000u128;
        let a = one | (one << 64);
        let (r, _) = sse3_lanes(true, ADDSUB, a, a, MXCSR_RESET);
        assert_eq!(r, 0x4000_0000_0000_0000u128 << 64);
    }
}
