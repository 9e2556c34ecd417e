//! SSE/SSE2 conversions, XMM and GPR forms: CVTSI2SS/SD, CVT(T)SS2SI,
//! CVT(T)SD2SI, CVTPS2PD, CVTPD2PS, CVTSS2SD, CVTSD2SS, CVTDQ2PS,
//! CVT(T)PS2DQ, CVTDQ2PD, CVT(T)PD2DQ.
//!
//! Not here: CVTPI2PS, CVTPS2PI, CVTTPS2PI, CVTPI2PD, CVTPD2PI,
//! CVTTPD2PI, whose integer side is an MMX register: they are in
//! insn/mmx/ (they make the x87-to-MMX transition).
//!
//! Float-to-integer conversions round by MXCSR.RC (truncate for the
//! CVTT forms); a NaN, an infinity or an out-of-range value gives the
//! integer indefinite (0x80000000 / 0x8000000000000000) and IE.

use super::fp_arith::{commit, read_scalar};
use super::softfloat::{self as sf, Fmt, Round, F32, F64};
use super::{check, lane, lane_mask, read_xm128, set_xmm, xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind};

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Cvtsi2ss_xmm_rm32 => cvtsi2f::<false, 4>,
        C::Cvtsi2ss_xmm_rm64 => cvtsi2f::<false, 8>,
        C::Cvtsi2sd_xmm_rm32 => cvtsi2f::<true, 4>,
        C::Cvtsi2sd_xmm_rm64 => cvtsi2f::<true, 8>,
        C::Cvtss2si_r32_xmmm32 => cvtf2si::<false, 4, false>,
        C::Cvtss2si_r64_xmmm32 => cvtf2si::<false, 8, false>,
        C::Cvttss2si_r32_xmmm32 => cvtf2si::<false, 4, true>,
        C::Cvttss2si_r64_xmmm32 => cvtf2si::<false, 8, true>,
        C::Cvtsd2si_r32_xmmm64 => cvtf2si::<true, 4, false>,
        C::Cvtsd2si_r64_xmmm64 => cvtf2si::<true, 8, false>,
        C::Cvttsd2si_r32_xmmm64 => cvtf2si::<true, 4, true>,
        C::Cvttsd2si_r64_xmmm64 => cvtf2si::<true, 8, true>,
        C::Cvtss2sd_xmm_xmmm32 => cvt_scalar_ff::<false>,
        C::Cvtsd2ss_xmm_xmmm64 => cvt_scalar_ff::<true>,
        C::Cvtps2pd_xmm_xmmm64 => cvt_packed::<PS2PD>,
        C::Cvtpd2ps_xmm_xmmm128 => cvt_packed::<PD2PS>,
        C::Cvtdq2ps_xmm_xmmm128 => cvt_packed::<DQ2PS>,
        C::Cvtps2dq_xmm_xmmm128 => cvt_packed::<PS2DQ>,
        C::Cvttps2dq_xmm_xmmm128 => cvt_packed::<TPS2DQ>,
        C::Cvtdq2pd_xmm_xmmm64 => cvt_packed::<DQ2PD>,
        C::Cvtpd2dq_xmm_xmmm128 => cvt_packed::<PD2DQ>,
        C::Cvttpd2dq_xmm_xmmm128 => cvt_packed::<TPD2DQ>,
        _ => return None,
    })
}

const PS2PD: u8 = 0;
const PD2PS: u8 = 1;
const DQ2PS: u8 = 2;
const PS2DQ: u8 = 3;
const TPS2DQ: u8 = 4;
const DQ2PD: u8 = 5;
const PD2DQ: u8 = 6;
const TPD2DQ: u8 = 7;

fn fmt(f64_: bool) -> Fmt {
    if f64_ {
        F64
    } else {
        F32
    }
}

/// CVTSI2SS/CVTSI2SD xmm, r/m32/64: the low lane; the rest is kept.
pub(crate) fn cvtsi2f<const F64_: bool, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let f = fmt(F64_);
    let v = cpu.read_op::<SZ>(plat, insn, 1)?;
    let v = super::sx(v, u32::from(SZ) * 8);
    let (r, fl) = sf::from_int(f, v, cpu.state.mxcsr);
    commit(cpu, fl)?;
    let d = insn.op0_register();
    let keep = xmm(cpu, d) & !u128::from(lane_mask(f.w()));
    set_xmm(cpu, d, keep | u128::from(r));
    Ok(())
}

/// CVT(T)SS2SI and CVT(T)SD2SI r32/r64, xmm/m32/m64 (`TRUNC`: round
/// toward zero whatever MXCSR.RC says). A 32-bit destination is
/// zero-extended, as any 32-bit GPR write.
pub(crate) fn cvtf2si<const F64_: bool, const SZ: u8, const TRUNC: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let f = fmt(F64_);
    let a = read_scalar(cpu, plat, insn, 1, f)?;
    let mxcsr = cpu.state.mxcsr;
    let rc = if TRUNC { Round::Zero } else { Round::of(mxcsr) };
    let (r, fl) = sf::to_int(f, a, u32::from(SZ) * 8, rc, mxcsr);
    commit(cpu, fl)?;
    cpu.set_reg::<SZ>(insn.op0_register(), r);
    Ok(())
}

/// CVTSS2SD xmm, xmm/m32 (`!NARROW`) and CVTSD2SS xmm, xmm/m64
/// (`NARROW`): the low lane; the rest of the destination is kept.
pub(crate) fn cvt_scalar_ff<const NARROW: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let (from, to) = if NARROW { (F64, F32) } else { (F32, F64) };
    let a = read_scalar(cpu, plat, insn, 1, from)?;
    let (r, fl) = sf::convert(from, to, a, cpu.state.mxcsr);
    commit(cpu, fl)?;
    let d = insn.op0_register();
    let keep = xmm(cpu, d) & !u128::from(lane_mask(to.w()));
    set_xmm(cpu, d, keep | u128::from(r));
    Ok(())
}

/// The source of a packed conversion: xmm/m128 (aligned), or the low
/// quadword of xmm/m64 for the widening forms (no alignment rule).
fn read_src(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    m64: bool,
) -> Result<u128, Fault> {
    if !m64 {
        return read_xm128(cpu, plat, insn, 1, true);
    }
    match insn.op1_kind() {
        OpKind::Register => Ok(u128::from(xmm(cpu, insn.op1_register()) as u64)),
        _ => Ok(u128::from(cpu.read_m::<8>(plat, insn)?)),
    }
}

/// The packed conversions. The narrowing ones (CVTPD2PS, CVT(T)PD2DQ)
/// write two lanes and zero the upper quadword.
pub(crate) fn cvt_packed<const K: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let widen = matches!(K, PS2PD | DQ2PD);
    let src = read_src(cpu, plat, insn, widen)?;
    let mxcsr = cpu.state.mxcsr;
    let rc = Round::of(mxcsr);
    let (in_w, out_w, n) = match K {
        PS2PD | DQ2PD => (32, 64, 2),
        PD2PS | PD2DQ | TPD2DQ => (64, 32, 2),
        _ => (32, 32, 4),
    };
    let mut flags = 0;
    let mut r = 0u128;
    for i in 0..n {
        let a = lane(src, in_w, i);
        let (v, fl) = match K {
            PS2PD => sf::convert(F32, F64, a, mxcsr),
            PD2PS => sf::convert(F64, F32, a, mxcsr),
            DQ2PS => sf::from_int(F32, super::sx(a, 32), mxcsr),
            DQ2PD => sf::from_int(F64, super::sx(a, 32), mxcsr),
            PS2DQ => sf::to_int(F32, a, 32, rc, mxcsr),
            TPS2DQ => sf::to_int(F32, a, 32, Round::Zero, mxcsr),
            PD2DQ => sf::to_int(F64, a, 32, rc, mxcsr),
            _ => sf::to_int(F64, a, 32, Round::Zero, mxcsr),
        };
        flags |= fl;
        r |= u128::from(v & lane_mask(out_w)) << (out_w * i);
    }
    commit(cpu, flags)?;
    set_xmm(cpu, insn.op0_register(), r);
    Ok(())
}
