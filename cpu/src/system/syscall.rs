//! Fast system calls: SYSCALL/SYSRET (IA32_STAR/LSTAR/FMASK), SYSENTER/
//! SYSEXIT (IA32_SYSENTER_CS/ESP/EIP), and SWAPGS (SDM Vol. 2).
//!
//! These load CS and SS with fixed flat descriptors without reading the
//! GDT. ringside models Intel:
//! * SYSCALL/SYSRET are #UD outside 64-bit mode (AMD allows them in legacy
//!   and compatibility mode, with CSTAR as the compatibility-mode target).
//! * SYSRET to a non-canonical RCX raises #GP(0) at CPL 0 (AMD loads RIP
//!   and faults at CPL 3).
//! * SYSENTER/SYSEXIT work in 64-bit mode (AMD: #UD in long mode).

use super::{canonical, long_mode, mode64, require_cpl0};
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::state::{cr0, efer, reg, rflags, seg_attr, SegReg, Segment};

/// A flat 4 GiB code segment cache (type 11, accessed execute/read).
fn flat_code(sel: u16, dpl: u8, long: bool) -> Segment {
    let mut attr =
        0xb | seg_attr::S | seg_attr::P | seg_attr::G | ((dpl as u32) << seg_attr::DPL_SHIFT);
    attr |= if long { seg_attr::L } else { seg_attr::DB };
    Segment {
        selector: sel,
        base: 0,
        limit: 0xffff_ffff,
        attr,
    }
}

/// A flat 4 GiB stack segment cache (type 3, accessed read/write, B = 1).
fn flat_stack(sel: u16, dpl: u8) -> Segment {
    Segment {
        selector: sel,
        base: 0,
        limit: 0xffff_ffff,
        attr: 0x3
            | seg_attr::S
            | seg_attr::P
            | seg_attr::G
            | seg_attr::DB
            | ((dpl as u32) << seg_attr::DPL_SHIFT),
    }
}

/// SYSCALL: RCX ← RIP, R11 ← RFLAGS, RFLAGS &= ~FMASK, CS/SS from
/// STAR[47:32], RIP ← LSTAR, CPL 0.
pub(crate) fn syscall(cpu: &mut Cpu) -> Result<(), Fault> {
    if cpu.state.efer & efer::SCE == 0 || !mode64(cpu) {
        return Err(Fault::UD);
    }
    let flags = cpu.rflags();
    let sel = ((cpu.state.msr.star >> 32) & 0xffff) as u16;
    cpu.state.gpr[reg::RCX] = cpu.state.rip;
    cpu.state.gpr[11] = flags;
    cpu.state.rip = cpu.state.msr.lstar;
    *cpu.state.sreg_mut(SegReg::Cs) = flat_code(sel & 0xfffc, 0, true);
    *cpu.state.sreg_mut(SegReg::Ss) = flat_stack(sel.wrapping_add(8) & 0xfffc, 0);
    let masked = (flags & !cpu.state.msr.fmask & !rflags::RF) | rflags::FIXED1;
    cpu.set_rflags(masked);
    Ok(())
}

/// SYSRET (`rex_w`: return to 64-bit code; else to compatibility mode).
pub(crate) fn sysret(cpu: &mut Cpu, rex_w: bool) -> Result<(), Fault> {
    if cpu.state.efer & efer::SCE == 0 || !mode64(cpu) {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    let rcx = cpu.state.gpr[reg::RCX];
    if rex_w && !canonical(rcx) {
        return Err(Fault::gp0());
    }
    let base = ((cpu.state.msr.star >> 48) & 0xffff) as u16;
    let (cs, rip) = if rex_w {
        (flat_code(base.wrapping_add(16) | 3, 3, true), rcx)
    } else {
        (flat_code(base | 3, 3, false), rcx & 0xffff_ffff)
    };
    let ss = flat_stack(base.wrapping_add(8) | 3, 3);
    let r11 = cpu.state.gpr[11];
    *cpu.state.sreg_mut(SegReg::Cs) = cs;
    *cpu.state.sreg_mut(SegReg::Ss) = ss;
    cpu.state.rip = rip;
    // RF and VM are cleared, reserved bits forced (SDM: R11 AND 3C7FD7H | 2).
    cpu.set_rflags((r11 & 0x3c_7fd7) | rflags::FIXED1);
    Ok(())
}

/// SYSENTER: CS ← SYSENTER_CS, SS ← +8, RSP/RIP from SYSENTER_ESP/EIP,
/// CPL 0, VM/IF/RF cleared.
pub(crate) fn sysenter(cpu: &mut Cpu) -> Result<(), Fault> {
    let cs_sel = (cpu.state.msr.sysenter_cs & 0xffff) as u16;
    if cpu.state.cr0 & cr0::PE == 0 || cs_sel & 0xfffc == 0 {
        return Err(Fault::gp0());
    }
    let lm = long_mode(cpu);
    let (rsp, rip) = if lm {
        (cpu.state.msr.sysenter_esp, cpu.state.msr.sysenter_eip)
    } else {
        (
            cpu.state.msr.sysenter_esp & 0xffff_ffff,
            cpu.state.msr.sysenter_eip & 0xffff_ffff,
        )
    };
    let f = cpu.rflags() & !(rflags::VM | rflags::IF | rflags::RF);
    *cpu.state.sreg_mut(SegReg::Cs) = flat_code(cs_sel & 0xfffc, 0, lm);
    *cpu.state.sreg_mut(SegReg::Ss) = flat_stack(cs_sel.wrapping_add(8) & 0xfffc, 0);
    cpu.state.gpr[reg::RSP] = rsp;
    cpu.state.rip = rip;
    cpu.set_rflags(f);
    Ok(())
}

/// SYSEXIT (`rex_w`: return to 64-bit code): RSP ← RCX, RIP ← RDX, CPL 3.
pub(crate) fn sysexit(cpu: &mut Cpu, rex_w: bool) -> Result<(), Fault> {
    let base = (cpu.state.msr.sysenter_cs & 0xffff) as u16;
    if cpu.state.cr0 & cr0::PE == 0 || base & 0xfffc == 0 {
        return Err(Fault::gp0());
    }
    require_cpl0(cpu)?;
    let rcx = cpu.state.gpr[reg::RCX];
    let rdx = cpu.state.gpr[reg::RDX];
    let (cs, ss, rsp, rip) = if rex_w {
        if !canonical(rdx) || !canonical(rcx) {
            return Err(Fault::gp0());
        }
        (
            flat_code(base.wrapping_add(32) | 3, 3, true),
            flat_stack(base.wrapping_add(40) | 3, 3),
            rcx,
            rdx,
        )
    } else {
        (
            flat_code(base.wrapping_add(16) | 3, 3, false),
            flat_stack(base.wrapping_add(24) | 3, 3),
            rcx & 0xffff_ffff,
            rdx & 0xffff_ffff,
        )
    };
    *cpu.state.sreg_mut(SegReg::Cs) = cs;
    *cpu.state.sreg_mut(SegReg::Ss) = ss;
    cpu.state.gpr[reg::RSP] = rsp;
    cpu.state.rip = rip;
    Ok(())
}

/// SWAPGS: exchange GS.base and IA32_KERNEL_GS_BASE (64-bit mode, CPL 0).
pub(crate) fn swapgs(cpu: &mut Cpu) -> Result<(), Fault> {
    if !mode64(cpu) {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    let gs = &mut cpu.state.seg[SegReg::Gs as usize].base;
    std::mem::swap(gs, &mut cpu.state.msr.kernel_gs_base);
    Ok(())
}
