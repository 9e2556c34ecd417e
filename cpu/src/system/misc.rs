//! HLT, INVLPG, WBINVD/INVD, RDTSC/RDTSCP.

use super::operand::{effective_address, mem_seg};
use super::{canonical, mode64, require_cpl0};
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr4, reg, SegReg};
use iced_x86::{Instruction, OpKind};

/// HLT: enter the halt state; the run loop returns `CpuExit::Halted` and
/// event delivery clears it. RIP already points past the HLT, which is the
/// return address an interrupt pushes.
pub(crate) fn hlt(cpu: &mut Cpu) -> Result<(), Fault> {
    require_cpl0(cpu)?;
    cpu.state.halted = true;
    Ok(())
}

/// INVLPG m: invalidate the TLB entry for the operand's linear address.
/// A non-canonical address is a no-op (no fault), as on hardware.
pub(crate) fn invlpg(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Fault> {
    if insn.op0_kind() != OpKind::Memory {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    let ea = effective_address(cpu, insn);
    let seg = mem_seg(insn);
    let lin = if mode64(cpu) {
        match seg {
            SegReg::Fs | SegReg::Gs => cpu.state.sreg(seg).base.wrapping_add(ea),
            _ => ea,
        }
    } else {
        cpu.state.sreg(seg).base.wrapping_add(ea) & 0xffff_ffff
    };
    if canonical(lin) {
        cpu.invlpg(lin);
    }
    Ok(())
}

/// WBINVD / INVD: caches are not modelled; privileged no-ops.
pub(crate) fn wbinvd(cpu: &mut Cpu) -> Result<(), Fault> {
    require_cpl0(cpu)
}

/// RDTSC / RDTSCP: EDX:EAX ← TSC (= platform counter + IA32_TSC offset);
/// RDTSCP also loads ECX ← IA32_TSC_AUX. #GP(0) at CPL > 0 with CR4.TSD.
pub(crate) fn rdtsc(cpu: &mut Cpu, plat: &mut dyn Platform, aux: bool) -> Result<(), Fault> {
    if cpu.state.cr4 & cr4::TSD != 0 && cpu.state.cpl() > 0 {
        return Err(Fault::gp0());
    }
    let tsc = plat.tsc().wrapping_add(cpu.state.msr.tsc_offset);
    cpu.state.gpr[reg::RAX] = tsc & 0xffff_ffff;
    cpu.state.gpr[reg::RDX] = tsc >> 32;
    if aux {
        cpu.state.gpr[reg::RCX] = cpu.state.msr.tsc_aux & 0xffff_ffff;
    }
    Ok(())
}
