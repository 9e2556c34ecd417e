//! MMX: the MMX instructions and the MMX-register forms of SSE, SSE2 (and,
//! from sse/ssse3.rs, SSSE3). One file per job:
//!
//! * [`int`]: the packed integer operations on MM registers (arithmetic,
//!   compares, logic, shifts, unpacks, packs, PSHUFW). The lane work is
//!   the SSE one (sse/arith.rs, cmp.rs, logic.rs, shift.rs, shuffle.rs)
//!   applied to the low 64 bits of a vector.
//! * [`mov`]: MOVD/MOVQ, MOVNTQ, MOVQ2DQ/MOVDQ2Q, PMOVMSKB, PEXTRW/PINSRW,
//!   MASKMOVQ/MASKMOVDQU, EMMS.
//! * [`cvt`]: CVTPI2PS, CVT(T)PS2PI, CVTPI2PD, CVT(T)PD2PI.
//!
//! # The register file (SDM Vol. 1, 9.5 and 9.6; Vol. 3A, 13.x)
//!
//! MMn is the 64-bit significand of the *physical* x87 register Rn
//! (`X87State::regs[n].sig`, whatever TOP is). Every MMX instruction but
//! EMMS, once it completes, sets FSW.TOP to 0 and tags all eight
//! registers valid (abridged tag word 0xFF) — reading MM registers only
//! or writing memory only included; writing MMn also sets Rn's sign and
//! exponent to all ones (so the FNSAVE tag of Rn reads "special"). EMMS
//! tags all registers empty and sets TOP to 0 too (SDM Vol. 1, Table
//! 9-2). A faulting instruction changes nothing (the transition is
//! committed with the result) — except MASKMOVQ, which makes the
//! transition before its store can fault, and the conversions writing
//! an MM register, which make it before #XM: measured on the AMD host
//! (see `mov::maskmov` and `cvt`).
//!
//! # Availability
//!
//! MMX-register forms: #UD if CR0.EM = 1, #NM if CR0.TS = 1, then #MF if
//! an unmasked x87 exception is pending (FSW.ES) and CR0.NE = 1 (with
//! NE = 0 ringside keeps it pending, as the x87 module does: the FERR#
//! path is not modelled). CR4.OSFXSR does not matter for them (SDM Vol.
//! 3A, Interrupt 6 — #UD: the 64-bit forms of the SSE/SSE2/SSSE3 integer
//! instructions, MASKMOVQ and MOVNTQ run without it; ringside applies
//! that to PMULUDQ mm too, which that list forgets, like PADDQ/PSUBQ mm).
//! A form with an XMM operand (MOVQ2DQ, MOVDQ2Q, the conversions) also
//! needs CR4.OSFXSR (#UD), as every SSE instruction. The memory operand
//! of a 64-bit form has no alignment rule.

pub(crate) mod cvt;
pub(crate) mod int;
pub(crate) mod mov;

use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, cr4, fsw, F80};
use iced_x86::{Code, Instruction, OpKind, Register};

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    int::select(code)
        .or_else(|| mov::select(code))
        .or_else(|| cvt::select(code))
}

/// #UD if CR0.EM (or, with `xmm`, CR4.OSFXSR = 0), #NM if CR0.TS.
#[inline(always)]
fn check_avail(cpu: &Cpu, xmm: bool) -> Result<(), Fault> {
    let c0 = cpu.state.cr0;
    if c0 & cr0::EM != 0 || (xmm && cpu.state.cr4 & cr4::OSFXSR == 0) {
        return Err(Fault::UD);
    }
    if c0 & cr0::TS != 0 {
        return Err(Fault::NM);
    }
    Ok(())
}

/// #MF for a pending unmasked x87 exception (CR0.NE = 1).
#[inline(always)]
pub(crate) fn check_pending(cpu: &Cpu) -> Result<(), Fault> {
    if cpu.state.x87.fsw & fsw::ES != 0 && cpu.state.cr0 & cr0::NE != 0 {
        return Err(Fault::MF);
    }
    Ok(())
}

/// The availability check of an MMX-register instruction without XMM
/// operands: #UD (CR0.EM), #NM (CR0.TS), #MF (pending x87 exception).
#[inline(always)]
pub(crate) fn check(cpu: &Cpu) -> Result<(), Fault> {
    check_avail(cpu, false)?;
    check_pending(cpu)
}

/// The availability check of an SSE/SSE2 instruction with an MMX
/// register operand: as [`check`], plus #UD if CR4.OSFXSR = 0. Without
/// `mm` (an SSE conversion whose 64-bit operand is in memory) it is the
/// plain SSE check: no #MF.
#[inline(always)]
pub(crate) fn check_xmm(cpu: &Cpu, mm: bool) -> Result<(), Fault> {
    check_avail(cpu, true)?;
    if mm {
        check_pending(cpu)?;
    }
    Ok(())
}

/// MM register number (0-7) of an iced `Register` (masked: in bounds).
#[inline(always)]
pub(crate) fn mm_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::MM0 as usize) & 7
}

/// MMn: the significand of physical x87 register Rn.
#[inline(always)]
pub(crate) fn mm(cpu: &Cpu, r: Register) -> u64 {
    cpu.state.x87.regs[mm_index(r)].sig
}

/// The x87-to-MMX transition every MMX instruction but EMMS makes: TOP =
/// 0, all registers tagged valid.
#[inline(always)]
pub(crate) fn enter(cpu: &mut Cpu) {
    let x = &mut cpu.state.x87;
    x.fsw &= !fsw::TOP;
    x.ftw = 0xff;
}

/// Write MMn (and the transition): Rn = { se: 0xFFFF, sig: v }.
#[inline(always)]
pub(crate) fn set_mm(cpu: &mut Cpu, r: Register, v: u64) {
    enter(cpu);
    cpu.state.x87.regs[mm_index(r)] = F80 { se: 0xffff, sig: v };
}

/// Operand `n` as mm/m64 (or mm/m32 for the low unpacks: the memory
/// operand's own size, zero-extended).
#[inline(always)]
pub(crate) fn read_mm(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    n: u32,
) -> Result<u64, Fault> {
    match insn.op_kind(n) {
        OpKind::Register => Ok(mm(cpu, insn.op_register(n))),
        _ if insn.memory_size().size() == 4 => cpu.read_m::<4>(plat, insn),
        _ => cpu.read_m::<8>(plat, insn),
    }
}

/// `mm = mm OP mm/m64` for an operation `f` on vectors whose upper 64
/// bits are zero (the SSE lane operations; the result's low 64 bits are
/// kept).
#[inline(always)]
pub(crate) fn binop(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    f: impl Fn(u128, u128) -> u128,
) -> Result<(), Fault> {
    check(cpu)?;
    let b = read_mm(cpu, plat, insn, 1)?;
    let d = insn.op0_register();
    let a = mm(cpu, d);
    set_mm(cpu, d, f(u128::from(a), u128::from(b)) as u64);
    Ok(())
}

#[cfg(test)]
mod tests;
