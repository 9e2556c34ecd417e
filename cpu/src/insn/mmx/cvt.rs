//! The SSE/SSE2 conversions with an MMX-register side: CVTPI2PS,
//! CVTPS2PI, CVTTPS2PI (SSE) and CVTPI2PD, CVTPD2PI, CVTTPD2PI (SSE2), on
//! the soft-float of sse/softfloat.rs with the MXCSR flags and #XM of
//! every SSE conversion (sse/fp_arith.rs `commit`).
//!
//! CVTPI2PS/CVTPI2PD with an m64 source are plain SSE instructions (SDM:
//! no x87-to-MMX transition, a pending x87 exception does not matter);
//! with an MM source, and for every form writing an MM register, they
//! are MMX instructions too (#MF, the transition). CVTPD2PI/CVTTPD2PI
//! read an m128 that must be 16-byte aligned; the m64 forms have no
//! alignment rule.

use super::{check_xmm, enter, mm, set_mm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::insn::sse::fp_arith::commit;
use crate::insn::sse::softfloat::{self as sf, Fmt, Round, F32, F64};
use crate::insn::sse::{lane, read_xm128, set_xmm, sx, xmm};
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind};

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Cvtpi2ps_xmm_mmm64 => cvtpi2f::<false>,
        C::Cvtpi2pd_xmm_mmm64 => cvtpi2f::<true>,
        C::Cvtps2pi_mm_xmmm64 => cvtf2pi::<false, false>,
        C::Cvttps2pi_mm_xmmm64 => cvtf2pi::<false, true>,
        C::Cvtpd2pi_mm_xmmm128 => cvtf2pi::<true, false>,
        C::Cvttpd2pi_mm_xmmm128 => cvtf2pi::<true, true>,
        _ => return None,
    })
}

/// `commit` (MXCSR flags, #XM) for a conversion that is an MMX
/// instruction too (`mm`): an unmasked SIMD exception, pre-computation
/// (IE) or post-computation (PE), faults after the x87-to-MMX transition
/// is made (TOP = 0, tags valid; the destination is not written), as
/// measured on the AMD host.
fn commit_mm(cpu: &mut Cpu, flags: u32, mm: bool) -> Result<(), Fault> {
    let r = commit(cpu, flags);
    if r.is_err() && mm {
        enter(cpu);
    }
    r
}

fn fmt(f64_: bool) -> Fmt {
    if f64_ {
        F64
    } else {
        F32
    }
}

/// CVTPI2PS (`F64_` = false) / CVTPI2PD xmm, mm/m64: two signed
/// doublewords to floats. CVTPI2PS rounds by MXCSR.RC (PE) and keeps the
/// destination's upper quadword; CVTPI2PD is exact and writes all 128
/// bits.
fn cvtpi2f<const F64_: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let from_mm = insn.op1_kind() == OpKind::Register;
    check_xmm(cpu, from_mm)?;
    let src = if from_mm {
        mm(cpu, insn.op1_register())
    } else {
        cpu.read_m::<8>(plat, insn)?
    };
    let f = fmt(F64_);
    let mxcsr = cpu.state.mxcsr;
    let mut flags = 0;
    let mut r = 0u128;
    for i in 0..2 {
        let (v, fl) = sf::from_int(f, sx(lane(u128::from(src), 32, i), 32), mxcsr);
        flags |= fl;
        r |= u128::from(v) << (f.w() * i);
    }
    commit_mm(cpu, flags, from_mm)?;
    let d = insn.op0_register();
    if !F64_ {
        r |= xmm(cpu, d) >> 64 << 64;
    }
    set_xmm(cpu, d, r);
    if from_mm {
        enter(cpu);
    }
    Ok(())
}

/// CVT(T)PS2PI mm, xmm/m64 (`F64_` = false) and CVT(T)PD2PI mm,
/// xmm/m128: two floats to signed doublewords, rounded by MXCSR.RC
/// (`TRUNC`: toward zero); NaN, infinity or out of range gives
/// 0x80000000 and IE.
fn cvtf2pi<const F64_: bool, const TRUNC: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_xmm(cpu, true)?;
    let src = match (F64_, insn.op1_kind()) {
        (true, _) => read_xm128(cpu, plat, insn, 1, true)?,
        (false, OpKind::Register) => u128::from(xmm(cpu, insn.op1_register()) as u64),
        (false, _) => u128::from(cpu.read_m::<8>(plat, insn)?),
    };
    let f = fmt(F64_);
    let mxcsr = cpu.state.mxcsr;
    let rc = if TRUNC { Round::Zero } else { Round::of(mxcsr) };
    let mut flags = 0;
    let mut r = 0u64;
    for i in 0..2 {
        let (v, fl) = sf::to_int(f, lane(src, f.w(), i), 32, rc, mxcsr);
        flags |= fl;
        r |= (v & 0xffff_ffff) << (32 * i);
    }
    commit_mm(cpu, flags, true)?;
    set_mm(cpu, insn.op0_register(), r);
    Ok(())
}
