//! SSE/SSE2 floating-point arithmetic: ADD, SUB, MUL, DIV, SQRT, MIN,
//! MAX in PS/PD/SS/SD forms, and the approximations RCPPS/RCPSS/RSQRTPS/
//! RSQRTSS. The lane arithmetic is [`super::softfloat`]; this file holds
//! the operand shapes and the MXCSR exception protocol ([`commit`]),
//! which the compares and conversions share.

use super::softfloat::{self as sf, mx, Fmt, Op, F32, F64};
use super::{check, lane, lane_mask, read_xm128, set_xmm, xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::cr4;
use iced_x86::{Code, Instruction, OpKind};

pub(crate) const ADD: u8 = 0;
pub(crate) const SUB: u8 = 1;
pub(crate) const MUL: u8 = 2;
pub(crate) const DIV: u8 = 3;
pub(crate) const MIN: u8 = 4;
pub(crate) const MAX: u8 = 5;
pub(crate) const SQRT: u8 = 6;
pub(crate) const RCP: u8 = 7;
pub(crate) const RSQRT: u8 = 8;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Addps_xmm_xmmm128 => fp_op::<false, true, ADD>,
        C::Addpd_xmm_xmmm128 => fp_op::<true, true, ADD>,
        C::Addss_xmm_xmmm32 => fp_op::<false, false, ADD>,
        C::Addsd_xmm_xmmm64 => fp_op::<true, false, ADD>,
        C::Subps_xmm_xmmm128 => fp_op::<false, true, SUB>,
        C::Subpd_xmm_xmmm128 => fp_op::<true, true, SUB>,
        C::Subss_xmm_xmmm32 => fp_op::<false, false, SUB>,
        C::Subsd_xmm_xmmm64 => fp_op::<true, false, SUB>,
        C::Mulps_xmm_xmmm128 => fp_op::<false, true, MUL>,
        C::Mulpd_xmm_xmmm128 => fp_op::<true, true, MUL>,
        C::Mulss_xmm_xmmm32 => fp_op::<false, false, MUL>,
        C::Mulsd_xmm_xmmm64 => fp_op::<true, false, MUL>,
        C::Divps_xmm_xmmm128 => fp_op::<false, true, DIV>,
        C::Divpd_xmm_xmmm128 => fp_op::<true, true, DIV>,
        C::Divss_xmm_xmmm32 => fp_op::<false, false, DIV>,
        C::Divsd_xmm_xmmm64 => fp_op::<true, false, DIV>,
        C::Minps_xmm_xmmm128 => fp_op::<false, true, MIN>,
        C::Minpd_xmm_xmmm128 => fp_op::<true, true, MIN>,
        C::Minss_xmm_xmmm32 => fp_op::<false, false, MIN>,
        C::Minsd_xmm_xmmm64 => fp_op::<true, false, MIN>,
        C::Maxps_xmm_xmmm128 => fp_op::<false, true, MAX>,
        C::Maxpd_xmm_xmmm128 => fp_op::<true, true, MAX>,
        C::Maxss_xmm_xmmm32 => fp_op::<false, false, MAX>,
        C::Maxsd_xmm_xmmm64 => fp_op::<true, false, MAX>,
        C::Sqrtps_xmm_xmmm128 => fp_op::<false, true, SQRT>,
        C::Sqrtpd_xmm_xmmm128 => fp_op::<true, true, SQRT>,
        C::Sqrtss_xmm_xmmm32 => fp_op::<false, false, SQRT>,
        C::Sqrtsd_xmm_xmmm64 => fp_op::<true, false, SQRT>,
        C::Rcpps_xmm_xmmm128 => fp_op::<false, true, RCP>,
        C::Rcpss_xmm_xmmm32 => fp_op::<false, false, RCP>,
        C::Rsqrtps_xmm_xmmm128 => fp_op::<false, true, RSQRT>,
        C::Rsqrtss_xmm_xmmm32 => fp_op::<false, false, RSQRT>,
        _ => return None,
    })
}

/// The fault of an unmasked SIMD floating-point exception: #XM if
/// CR4.OSXMMEXCPT = 1, else #UD (SDM Vol. 1, 11.5.2; Vol. 3A, 6.15
/// interrupt 19).
pub(crate) fn simd_fault(cpu: &Cpu) -> Fault {
    if cpu.state.cr4 & cr4::OSXMMEXCPT != 0 {
        Fault::XM
    } else {
        Fault::UD
    }
}

/// Apply the exception flags `flags` an instruction raised over all its
/// lanes (SDM Vol. 1, 11.5.1): an unmasked pre-computation exception
/// (IE, DE, ZE) sets only the pre-computation flags and faults before
/// any result; an unmasked post-computation one (OE, UE, PE) sets all
/// the flags and faults. Either way the destination stays unchanged (the
/// caller writes it only on `Ok`).
pub(crate) fn commit(cpu: &mut Cpu, flags: u32) -> Result<(), Fault> {
    let mxcsr = cpu.state.mxcsr;
    let unmasked = flags & !(mxcsr >> mx::MASK_SHIFT) & mx::FLAGS;
    if unmasked & mx::PRE != 0 {
        cpu.state.mxcsr |= flags & mx::PRE;
        return Err(simd_fault(cpu));
    }
    cpu.state.mxcsr |= flags & mx::FLAGS;
    if unmasked != 0 {
        return Err(simd_fault(cpu));
    }
    Ok(())
}

/// Operand `n` as a scalar: the low lane of an XMM register, or an
/// m32/m64 (no alignment requirement).
pub(crate) fn read_scalar(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    n: u32,
    f: Fmt,
) -> Result<u64, Fault> {
    match insn.op_kind(n) {
        OpKind::Register => Ok(xmm(cpu, insn.op_register(n)) as u64 & lane_mask(f.w())),
        _ if f.w() == 32 => cpu.read_m::<4>(plat, insn),
        _ => cpu.read_m::<8>(plat, insn),
    }
}

/// A reciprocal of `x` with 12 correct fraction bits (truncated), for
/// RCPPS/RCPSS: relative error < 2^-12 + 2^-24, within the SDM's bound of
/// 1.5 · 2^-12. The SDM leaves the exact bits to the implementation; this
/// is ringside's. Denormal operands count as zeros and tiny results are
/// flushed to zero (SDM RCPPS); MXCSR is neither used nor changed.
fn approx(x: u64, rsqrt: bool) -> u64 {
    let f = F32;
    const QUIET_MASKED: u32 = 0x1f80;
    if f.is_nan(x) {
        return f.quiet(x);
    }
    let x = if f.is_denormal(x) { x & f.sign() } else { x };
    if f.is_zero(x) {
        return f.inf(f.is_neg(x));
    }
    if rsqrt && f.is_neg(x) {
        return f.indefinite();
    }
    if f.is_inf(x) {
        return f.zero(f.is_neg(x));
    }
    let one = 0x3f80_0000;
    let d = if rsqrt {
        sf::sqrt(f, x, QUIET_MASKED).0
    } else {
        x
    };
    let (r, _) = sf::arith(f, Op::Div, one, d, QUIET_MASKED);
    if f.is_denormal(r) {
        return f.zero(f.is_neg(r));
    }
    // Keep 12 fraction bits.
    r & !((1 << (23 - 12)) - 1)
}

/// One lane of operation `OP` (`a` the destination's lane, `b` the
/// source's).
fn lane_op(f: Fmt, op: u8, a: u64, b: u64, mxcsr: u32) -> (u64, u32) {
    match op {
        ADD => sf::arith(f, Op::Add, a, b, mxcsr),
        SUB => sf::arith(f, Op::Sub, a, b, mxcsr),
        MUL => sf::arith(f, Op::Mul, a, b, mxcsr),
        DIV => sf::arith(f, Op::Div, a, b, mxcsr),
        MIN => sf::min_max(f, a, b, false, mxcsr),
        MAX => sf::min_max(f, a, b, true, mxcsr),
        SQRT => sf::sqrt(f, b, mxcsr),
        RCP => (approx(b, false), 0),
        _ => (approx(b, true), 0),
    }
}

/// `OP` on single (`!F64`) or double lanes, packed (xmm/m128, aligned)
/// or scalar (low lane, xmm/m32/m64; the destination's other lanes are
/// kept).
pub(crate) fn fp_op<const F64_: bool, const PACKED: bool, const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let f = if F64_ { F64 } else { F32 };
    let w = f.w();
    let d = insn.op0_register();
    let a = xmm(cpu, d);
    let mxcsr = cpu.state.mxcsr;
    let mut flags = 0;
    let r = if PACKED {
        let b = read_xm128(cpu, plat, insn, 1, true)?;
        let mut r = 0u128;
        for i in 0..128 / w {
            let (v, fl) = lane_op(f, OP, lane(a, w, i), lane(b, w, i), mxcsr);
            flags |= fl;
            r |= u128::from(v & lane_mask(w)) << (w * i);
        }
        r
    } else {
        let b = read_scalar(cpu, plat, insn, 1, f)?;
        let (v, fl) = lane_op(f, OP, a as u64 & lane_mask(w), b, mxcsr);
        flags = fl;
        let keep = !u128::from(lane_mask(w));
        (a & keep) | u128::from(v & lane_mask(w))
    };
    commit(cpu, flags)?;
    set_xmm(cpu, d, r);
    Ok(())
}
