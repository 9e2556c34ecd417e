//! SSE/SSE2 floating-point compares: CMPPS/CMPPD/CMPSS/CMPSD with the
//! eight legacy predicates (imm8[2:0]; the legacy encodings ignore bits
//! 7:3), producing all-ones/all-zeros lane masks, and COMISS/COMISD/
//! UCOMISS/UCOMISD into ZF/PF/CF (SDM Vol. 2, CMPPS Table 3-1, COMISS).

use super::fp_arith::{commit, read_scalar};
use super::softfloat::{self as sf, Fmt, Ordering, F32, F64};
use super::{check, lane, lane_mask, read_xm128, set_xmm, xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::rflags::{AF, CF, OF, PF, SF, ZF};
use iced_x86::{Code, Instruction};

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Cmpps_xmm_xmmm128_imm8 => cmp::<false, true>,
        C::Cmppd_xmm_xmmm128_imm8 => cmp::<true, true>,
        C::Cmpss_xmm_xmmm32_imm8 => cmp::<false, false>,
        C::Cmpsd_xmm_xmmm64_imm8 => cmp::<true, false>,
        C::Comiss_xmm_xmmm32 => comis::<false, true>,
        C::Comisd_xmm_xmmm64 => comis::<true, true>,
        C::Ucomiss_xmm_xmmm32 => comis::<false, false>,
        C::Ucomisd_xmm_xmmm64 => comis::<true, false>,
        _ => return None,
    })
}

/// Predicate `p` (0-7: EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD) on one
/// lane: the mask and the flags. LT, LE, NLT, NLE signal IE on a QNaN
/// too; the others only on an SNaN.
fn predicate(f: Fmt, p: u8, a: u64, b: u64, mxcsr: u32) -> (u64, u32) {
    let signaling = matches!(p & 3, 1 | 2);
    let (o, fl) = sf::compare(f, a, b, signaling, mxcsr);
    let t = match p & 7 {
        0 => o == Ordering::Equal,
        1 => o == Ordering::Less,
        2 => matches!(o, Ordering::Less | Ordering::Equal),
        3 => o == Ordering::Unordered,
        4 => o != Ordering::Equal,
        5 => o != Ordering::Less,
        6 => !matches!(o, Ordering::Less | Ordering::Equal),
        _ => o != Ordering::Unordered,
    };
    (if t { lane_mask(f.w()) } else { 0 }, fl)
}

/// CMPPS/CMPPD xmm1, xmm2/m128, imm8 and CMPSS/CMPSD xmm1, xmm2/m32/m64,
/// imm8 (the scalar forms keep the destination's upper lanes).
pub(crate) fn cmp<const F64_: bool, const PACKED: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let f = if F64_ { F64 } else { F32 };
    let w = f.w();
    let p = insn.immediate8();
    let d = insn.op0_register();
    let a = xmm(cpu, d);
    let mxcsr = cpu.state.mxcsr;
    let mut flags = 0;
    let r = if PACKED {
        let b = read_xm128(cpu, plat, insn, 1, true)?;
        let mut r = 0u128;
        for i in 0..128 / w {
            let (v, fl) = predicate(f, p, lane(a, w, i), lane(b, w, i), mxcsr);
            flags |= fl;
            r |= u128::from(v) << (w * i);
        }
        r
    } else {
        let b = read_scalar(cpu, plat, insn, 1, f)?;
        let (v, fl) = predicate(f, p, a as u64 & lane_mask(w), b, mxcsr);
        flags = fl;
        (a & !u128::from(lane_mask(w))) | u128::from(v)
    };
    commit(cpu, flags)?;
    set_xmm(cpu, d, r);
    Ok(())
}

/// COMISS/COMISD (`SIGNAL`: IE on any NaN) and UCOMISS/UCOMISD (IE on an
/// SNaN only): unordered ZF,PF,CF = 111, greater 000, less 001, equal
/// 100; OF, SF, AF cleared. On an unmasked exception RFLAGS is unchanged.
pub(crate) fn comis<const F64_: bool, const SIGNAL: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let f = if F64_ { F64 } else { F32 };
    let a = xmm(cpu, insn.op0_register()) as u64 & lane_mask(f.w());
    let b = read_scalar(cpu, plat, insn, 1, f)?;
    let (o, fl) = sf::compare(f, a, b, SIGNAL, cpu.state.mxcsr);
    commit(cpu, fl)?;
    let v = match o {
        Ordering::Unordered => ZF | PF | CF,
        Ordering::Greater => 0,
        Ordering::Less => CF,
        Ordering::Equal => ZF,
    };
    cpu.flags.set_bits(ZF | PF | CF | OF | SF | AF, v);
    Ok(())
}
