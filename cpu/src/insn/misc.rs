//! Everything small: flag-bit instructions (CLC/STC/CMC/CLD/STD,
//! LAHF/SAHF), BOUND, the architectural no-ops (NOP, PAUSE, fences,
//! prefetches, CLFLUSH, ENDBR), UD0/UD1/UD2, and the handlers for invalid
//! and unimplemented encodings.

use crate::cpu::Cpu;
use crate::event::CpuEvent;
use crate::fault::Fault;
use crate::flags::sext;
use crate::platform::Platform;
use crate::state::rflags::{AF, CF, DF, PF, SF, ZF};
use iced_x86::{Formatter, Instruction, IntelFormatter};

/// Architectural no-op (NOP, PAUSE, LFENCE/SFENCE/MFENCE, PREFETCHh,
/// ENDBR32/64): nothing to do for a single in-order CPU without caches.
pub(crate) fn nop(_c: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    Ok(())
}

/// CLFLUSH/CLFLUSHOPT m8: no cache to flush, but the operand must be a
/// valid, accessible address (the SDM lists #GP/#SS/#PF for it): the
/// segment and page checks of a one-byte read run, without touching the
/// byte (which could be a device register with read side effects).
pub(crate) fn clflush(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let lin = cpu.operand_lin(insn, 1, mmu::AccessKind::Read)?;
    let user = cpu.user_mode();
    cpu.translate(lin, mmu::AccessKind::Read, user).map(|_| ())
}

pub(crate) fn clc(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    cpu.flags.set_cf(false);
    Ok(())
}

pub(crate) fn stc(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    cpu.flags.set_cf(true);
    Ok(())
}

pub(crate) fn cmc(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    let cf = cpu.flags.cf();
    cpu.flags.set_cf(!cf);
    Ok(())
}

pub(crate) fn cld(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    cpu.state.rflags &= !DF;
    Ok(())
}

pub(crate) fn std(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    cpu.state.rflags |= DF;
    Ok(())
}

/// LAHF: AH = SF:ZF:0:AF:0:PF:1:CF.
pub(crate) fn lahf(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    let f = (cpu.flags.materialize() & 0xd5) | 2;
    let g = &mut cpu.state.gpr[0];
    *g = (*g & !0xff00) | (f << 8);
    Ok(())
}

/// SAHF: SF, ZF, AF, PF, CF = AH's bits 7, 6, 4, 2, 0.
pub(crate) fn sahf(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    let ah = (cpu.state.gpr[0] >> 8) & 0xff;
    cpu.flags.set_bits(SF | ZF | AF | PF | CF, ah);
    Ok(())
}

/// BOUND r, m: #BR unless lower ≤ r ≤ upper (signed; the bounds are the
/// two operand-sized values at m).
pub(crate) fn bound<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let bits = SZ as u32 * 8;
    let off = cpu.ea(insn);
    let seg = crate::operand::sreg_of(insn.memory_segment());
    let next = off.wrapping_add(SZ as u64) & crate::operand::addr_mask(insn);
    let lo = sext(cpu.read_mem::<SZ>(plat, seg, off)?, bits) as i64;
    let hi = sext(cpu.read_mem::<SZ>(plat, seg, next)?, bits) as i64;
    let v = sext(cpu.reg::<SZ>(insn.op0_register()), bits) as i64;
    if v < lo || v > hi {
        return Err(Fault::BR);
    }
    Ok(())
}

/// UD0/UD1/UD2 and every encoding iced reports invalid: #UD.
pub(crate) fn ud(_c: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    Err(Fault::UD)
}

/// A valid instruction ringside does not implement: report it, then #UD
/// (what a CPU without the feature does).
pub(crate) fn unimplemented(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let bytes = cpu.peek_code(insn);
    plat.event(&CpuEvent::Unimplemented {
        rip: cpu.insn_start,
        bytes,
        text: format_insn(insn),
    });
    Err(Fault::UD)
}

/// The instruction in Intel syntax.
pub(crate) fn format_insn(insn: &Instruction) -> String {
    let mut f = IntelFormatter::new();
    let mut s = String::new();
    f.format(insn, &mut s);
    s
}
