//! CLI/STI/PUSHF/POPF: the IOPL-sensitive flag instructions (SDM Vol. 2;
//! Vol. 3A 2.3 and 20.2.5).
//!
//! POPF is the classic x86 "virtualization hole": at CPL > IOPL it does not
//! fault, it silently leaves IF unchanged; below CPL 0 it never changes
//! IOPL. A deprivileged kernel therefore cannot detect, by trapping, that
//! its POPF did not re-enable interrupts. Implemented exactly so.
//!
//! Virtual-8086 mode without VME is implemented (IOPL < 3 → #GP(0)); VME
//! and PVI (virtual interrupt flag) are not offered, so CR4.VME/PVI cannot
//! be set.

use super::stack::Stack;
use super::vm86;
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, reg, rflags};

/// May the current code change IF with CLI/STI? (Real mode always; else
/// CPL ≤ IOPL, VM86 included since its CPL is 3.)
fn if_writable(cpu: &Cpu) -> bool {
    cpu.state.cr0 & cr0::PE == 0 || cpu.state.cpl() <= cpu.state.iopl()
}

/// CLI.
pub(crate) fn cli(cpu: &mut Cpu) -> Result<(), Fault> {
    if !if_writable(cpu) {
        return Err(Fault::gp0());
    }
    let f = cpu.rflags() & !rflags::IF;
    cpu.set_rflags(f);
    Ok(())
}

/// STI. Interrupts stay blocked for one more instruction if IF was clear
/// (the STI shadow, so `sti; hlt` cannot lose a wake-up).
pub(crate) fn sti(cpu: &mut Cpu) -> Result<(), Fault> {
    if !if_writable(cpu) {
        return Err(Fault::gp0());
    }
    let f = cpu.rflags();
    if f & rflags::IF == 0 {
        cpu.state.intr.shadow = true;
    }
    cpu.set_rflags(f | rflags::IF);
    Ok(())
}

/// PUSHF/PUSHFD/PUSHFQ. The image has VM and RF cleared.
pub(crate) fn pushf(cpu: &mut Cpu, plat: &mut dyn Platform, size: u8) -> Result<(), Fault> {
    if vm86(cpu) && cpu.state.iopl() < 3 {
        return Err(Fault::gp0());
    }
    let v = cpu.rflags() & !(rflags::VM | rflags::RF);
    let mut st = Stack::current(cpu);
    st.push(cpu, plat, size, super::operand::mask(v, size))?;
    cpu.state.gpr[reg::RSP] = st.rsp;
    Ok(())
}

/// The RFLAGS bits POPF may change for this privilege, before the 16-bit
/// operand-size restriction.
fn popf_mask(cpu: &Cpu) -> u64 {
    let mut m = rflags::STATUS | rflags::TF | rflags::DF | rflags::NT | rflags::AC | rflags::ID;
    let cpl = cpu.state.cpl();
    let real = cpu.state.cr0 & cr0::PE == 0;
    if real || cpl == 0 {
        m |= rflags::IOPL | rflags::IF;
    } else if cpl <= cpu.state.iopl() {
        // Includes VM86 with IOPL 3: IF writable, IOPL not.
        m |= rflags::IF;
    }
    m
}

/// POPF/POPFD/POPFQ. VIP, VIF and VM are never changed; RF is cleared by
/// the 32/64-bit forms; the 16-bit form changes FLAGS[15:0] only.
pub(crate) fn popf(cpu: &mut Cpu, plat: &mut dyn Platform, size: u8) -> Result<(), Fault> {
    if vm86(cpu) && cpu.state.iopl() < 3 {
        return Err(Fault::gp0());
    }
    let mut st = Stack::current(cpu);
    let v = st.pop(cpu, plat, size)?;
    let old = cpu.rflags();
    let mut m = popf_mask(cpu);
    let mut new = old;
    if size == 2 {
        m &= 0xffff;
    } else {
        new &= !rflags::RF;
    }
    new = (new & !m) | (v & m) | rflags::FIXED1;
    cpu.state.gpr[reg::RSP] = st.rsp;
    cpu.set_rflags(new);
    Ok(())
}
