//! Bitwise logic on whole XMM registers: PAND, PANDN, POR, PXOR (SSE2)
//! and their single/double-precision twins ANDPS/ANDPD, ANDNPS/ANDNPD,
//! ORPS/ORPD, XORPS/XORPD. The twins are the same operation on the bits
//! (no floating-point semantics, no MXCSR involvement).

use super::binop;
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction};

pub(crate) const AND: u8 = 0;
pub(crate) const ANDN: u8 = 1;
pub(crate) const OR: u8 = 2;
pub(crate) const XOR: u8 = 3;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Pand_xmm_xmmm128 | C::Andps_xmm_xmmm128 | C::Andpd_xmm_xmmm128 => logic::<AND>,
        C::Pandn_xmm_xmmm128 | C::Andnps_xmm_xmmm128 | C::Andnpd_xmm_xmmm128 => logic::<ANDN>,
        C::Por_xmm_xmmm128 | C::Orps_xmm_xmmm128 | C::Orpd_xmm_xmmm128 => logic::<OR>,
        C::Pxor_xmm_xmmm128 | C::Xorps_xmm_xmmm128 | C::Xorpd_xmm_xmmm128 => logic::<XOR>,
        _ => return None,
    })
}

/// `a OP b` (ANDN: `!a & b`); also the MMX forms (on the low 64 bits).
pub(crate) fn compute(op: u8, a: u128, b: u128) -> u128 {
    match op {
        AND => a & b,
        ANDN => !a & b,
        OR => a | b,
        _ => a ^ b,
    }
}

/// `dst = dst OP xmm/m128` (ANDN: `!dst & src`).
pub(crate) fn logic<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| compute(OP, a, b))
}
