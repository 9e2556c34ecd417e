//! Control and debug registers (SDM Vol. 3A 2.5, 17.2; Vol. 2 MOV CR/DR),
//! CLTS, LMSW/SMSW, XGETBV/XSETBV, and the mode transitions CR0/CR4/EFER
//! writes cause (Vol. 3A 9.8-9.9: entering and leaving IA-32e mode).
//!
//! Reserved-bit policy, as on hardware (and KVM):
//! * CR0: bits 63:32 set → #GP(0); reserved bits in 31:0 are ignored (they
//!   read back as 0) and ET is hardwired to 1.
//! * CR3: outside PAE/IA-32e paging any value; with IA-32e paging, bits
//!   above MAXPHYADDR (40) → #GP(0). (PCIDE is not offered, so bit 63 is
//!   reserved too. PAE-mode PDPTEs are not preloaded: the walker reads them
//!   on every walk, which differs from hardware only if the guest edits live
//!   PDPTEs without reloading CR3.)
//! * CR4: any bit for a feature ringside does not offer → #GP(0) (VME,
//!   PVI, MCE, OSFXSR, OSXMMEXCPT, UMIP, VMXE, SMXE, FSGSBASE, PCIDE,
//!   OSXSAVE, SMAP, PKE, LA57, CET…).
//! * CR8: bits 63:4 → #GP(0).
//!
//! Debug registers: MOV DR checks DR4/DR5 aliasing (#UD with CR4.DE),
//! CPL 0, bits 63:32 of DR6/DR7, and DR7.GD general detection; the
//! breakpoints DR0-DR3/DR7 describe are armed by the run loop and memory
//! layer (crate::debug).

use super::operand::{read_op, reg_read, reg_write, write_op};
use super::{long_mode, mode64, note_mode_change, require_cpl0};
use crate::cpu::Cpu;
use crate::event::CpuEvent;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, cr4, efer};
use iced_x86::{Instruction, Register};

/// CR0 bits that exist.
const CR0_VALID: u64 = cr0::PE
    | cr0::MP
    | cr0::EM
    | cr0::TS
    | cr0::ET
    | cr0::NE
    | cr0::WP
    | cr0::AM
    | cr0::NW
    | cr0::CD
    | cr0::PG;

/// CR4 bits ringside implements (must agree with the CPUID model).
pub(crate) const CR4_VALID: u64 =
    cr4::TSD | cr4::DE | cr4::PSE | cr4::PAE | cr4::PGE | cr4::PCE | cr4::SMEP;

/// CR4 bits whose change invalidates every cached translation.
const CR4_PAGING: u64 = cr4::PSE | cr4::PAE | cr4::PGE | cr4::SMEP | cr4::SMAP;

/// MAXPHYADDR (CPUID 0x80000008 EAX[7:0]).
pub(crate) const MAXPHYADDR: u32 = 40;

fn cr_event(cpu: &Cpu, plat: &mut dyn Platform, cr: u8, old: u64, new: u64) {
    if cpu.trace.mmu {
        plat.event(&CpuEvent::CrWrite { cr, old, new });
    }
}

/// Write CR0 with every check and side effect (MOV CR0, LMSW, CLTS).
pub(crate) fn write_cr0(cpu: &mut Cpu, plat: &mut dyn Platform, val: u64) -> Result<(), Fault> {
    if val >> 32 != 0 {
        return Err(Fault::gp0());
    }
    let new = (val & CR0_VALID) | cr0::ET;
    if new & cr0::PG != 0 && new & cr0::PE == 0 {
        return Err(Fault::gp0());
    }
    if new & cr0::NW != 0 && new & cr0::CD == 0 {
        return Err(Fault::gp0());
    }
    let old = cpu.state.cr0;
    let mut efer_new = cpu.state.efer;
    let enabling_pg = old & cr0::PG == 0 && new & cr0::PG != 0;
    let disabling_pg = old & cr0::PG != 0 && new & cr0::PG == 0;
    if enabling_pg && cpu.state.efer & efer::LME != 0 {
        // Activating IA-32e mode: needs PAE, and must not come from a
        // 64-bit code segment (CS.L = 1).
        if cpu.state.cr4 & cr4::PAE == 0 || cpu.state.cs().long() {
            return Err(Fault::gp0());
        }
        efer_new |= efer::LMA;
    }
    if disabling_pg && long_mode(cpu) {
        // Leaving IA-32e mode is only possible from compatibility mode.
        if mode64(cpu) {
            return Err(Fault::gp0());
        }
        efer_new &= !efer::LMA;
    }
    let before = cpu.state.mode();
    cpu.state.cr0 = new;
    cpu.state.efer = efer_new;
    if (old ^ new) & (cr0::PG | cr0::WP | cr0::PE) != 0 {
        cpu.flush_tlb(true);
    }
    cr_event(cpu, plat, 0, old, new);
    note_mode_change(cpu, plat, before);
    Ok(())
}

/// Write CR3.
fn write_cr3(cpu: &mut Cpu, plat: &mut dyn Platform, val: u64) -> Result<(), Fault> {
    if long_mode(cpu) && val >> MAXPHYADDR != 0 {
        return Err(Fault::gp0());
    }
    let new = if long_mode(cpu) {
        val
    } else {
        val & 0xffff_ffff
    };
    let old = cpu.state.cr3;
    cpu.state.cr3 = new;
    cpu.flush_tlb(false);
    cr_event(cpu, plat, 3, old, new);
    Ok(())
}

/// Write CR4.
fn write_cr4(cpu: &mut Cpu, plat: &mut dyn Platform, val: u64) -> Result<(), Fault> {
    if val & !CR4_VALID != 0 {
        return Err(Fault::gp0());
    }
    if long_mode(cpu) && val & cr4::PAE == 0 {
        return Err(Fault::gp0());
    }
    let old = cpu.state.cr4;
    cpu.state.cr4 = val;
    if (old ^ val) & CR4_PAGING != 0 {
        cpu.flush_tlb(true);
    }
    cr_event(cpu, plat, 4, old, val);
    Ok(())
}

/// Write CR8 (the TPR, 64-bit mode only).
fn write_cr8(cpu: &mut Cpu, plat: &mut dyn Platform, val: u64) -> Result<(), Fault> {
    if val >> 4 != 0 {
        return Err(Fault::gp0());
    }
    let old = cpu.state.cr8;
    cpu.state.cr8 = val;
    plat.tpr_changed(val as u8);
    cr_event(cpu, plat, 8, old, val);
    Ok(())
}

/// MOV CRn, r32/r64.
pub(crate) fn mov_to_cr(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let cr = insn.op0_register();
    let n = cr_number(cr)?;
    require_cpl0(cpu)?;
    let val = reg_read(cpu, insn.op1_register());
    match n {
        0 => write_cr0(cpu, plat, val),
        2 => {
            let old = cpu.state.cr2;
            cpu.state.cr2 = val;
            cr_event(cpu, plat, 2, old, val);
            Ok(())
        }
        3 => write_cr3(cpu, plat, val),
        4 => write_cr4(cpu, plat, val),
        8 => write_cr8(cpu, plat, val),
        _ => Err(Fault::UD),
    }
}

/// MOV r32/r64, CRn.
pub(crate) fn mov_from_cr(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Fault> {
    let n = cr_number(insn.op1_register())?;
    require_cpl0(cpu)?;
    let v = match n {
        0 => cpu.state.cr0,
        2 => cpu.state.cr2,
        3 => cpu.state.cr3,
        4 => cpu.state.cr4,
        8 => cpu.state.cr8,
        _ => return Err(Fault::UD),
    };
    reg_write(cpu, insn.op0_register(), v);
    Ok(())
}

/// CR number of an iced control register; #UD for CR1, CR5-7, CR9-15.
fn cr_number(r: Register) -> Result<u8, Fault> {
    if !r.is_cr() {
        return Err(Fault::UD);
    }
    let n = r.number() as u8;
    match n {
        0 | 2 | 3 | 4 | 8 => Ok(n),
        _ => Err(Fault::UD),
    }
}

/// DR number, with DR4/DR5 aliased to DR6/DR7 unless CR4.DE (then #UD).
fn dr_number(cpu: &Cpu, r: Register) -> Result<usize, Fault> {
    if !r.is_dr() {
        return Err(Fault::UD);
    }
    match r.number() {
        n @ (0..=3 | 6 | 7) => Ok(n),
        n @ (4 | 5) => {
            if cpu.state.cr4 & cr4::DE != 0 {
                Err(Fault::UD)
            } else {
                Ok(n + 2)
            }
        }
        _ => Err(Fault::UD),
    }
}

/// General detection (SDM Vol. 3B 17.2.4): with DR7.GD = 1 any MOV to or
/// from a debug register is a fault-class #DB with DR6.BD, checked after
/// the #UD and #GP conditions. The fault pushes RF = 1 like other
/// fault-class exceptions except instruction breakpoints (17.3.1.1); the
/// frame takes RF from RFLAGS, so it is set here (the run loop cleared it
/// at the start of the instruction). DR7.GD itself is cleared when the
/// #DB handler is entered (interrupt.rs), so the handler can use the
/// debug registers.
fn general_detect(cpu: &mut Cpu) -> Result<(), Fault> {
    if cpu.state.dr[7] & crate::debug::DR7_GD != 0 {
        crate::debug::set_dr6(&mut cpu.state, crate::debug::DR6_BD);
        cpu.state.rflags |= crate::state::rflags::RF;
        return Err(Fault::DB);
    }
    Ok(())
}

/// MOV DRn, r32/r64.
pub(crate) fn mov_to_dr(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Fault> {
    let n = dr_number(cpu, insn.op0_register())?;
    require_cpl0(cpu)?;
    general_detect(cpu)?;
    let val = reg_read(cpu, insn.op1_register());
    if (n == 6 || n == 7) && val >> 32 != 0 {
        return Err(Fault::gp0());
    }
    cpu.state.dr[n] = match n {
        // DR6: bits 4-11 and 16-31 read 1, bit 12 reads 0 (no RTM).
        6 => (val | 0xffff_0ff0) & !0x1000,
        // DR7: bit 10 reads 1; bits 11, 12, 14, 15 read 0.
        7 => (val | 0x400) & !0xd800,
        _ => val,
    };
    Ok(())
}

/// MOV r32/r64, DRn.
pub(crate) fn mov_from_dr(cpu: &mut Cpu, insn: &Instruction) -> Result<(), Fault> {
    let n = dr_number(cpu, insn.op1_register())?;
    require_cpl0(cpu)?;
    general_detect(cpu)?;
    let v = cpu.state.dr[n];
    reg_write(cpu, insn.op0_register(), v);
    Ok(())
}

/// CLTS: clear CR0.TS.
pub(crate) fn clts(cpu: &mut Cpu, plat: &mut dyn Platform) -> Result<(), Fault> {
    require_cpl0(cpu)?;
    let v = cpu.state.cr0 & !cr0::TS;
    write_cr0(cpu, plat, v)
}

/// LMSW r/m16: loads PE, MP, EM, TS; can set PE but never clear it.
pub(crate) fn lmsw(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    require_cpl0(cpu)?;
    let src = read_op(cpu, plat, insn, 0, 2)?;
    let low = cr0::PE | cr0::MP | cr0::EM | cr0::TS;
    let old = cpu.state.cr0;
    let new = (old & !(cr0::MP | cr0::EM | cr0::TS)) | (src & low) | (old & cr0::PE);
    write_cr0(cpu, plat, new)
}

/// SMSW r/m16 (r32/r64: the whole CR0, as P6 and later store it).
/// Unprivileged (UMIP is not offered).
pub(crate) fn smsw(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.state.cr0;
    write_op(cpu, plat, insn, 0, 2, v)
}

/// XCR0 bits ringside can enable: x87 only (bit 0, which must be 1). No
/// XSAVE-managed state exists yet, and CPUID does not offer XSAVE, so
/// CR4.OSXSAVE cannot be set and both instructions are #UD in practice;
/// the checks are complete for when XSAVE arrives.
const XCR0_SUPPORTED: u64 = 1;

/// XGETBV: EDX:EAX ← XCR[ECX].
pub(crate) fn xgetbv(cpu: &mut Cpu) -> Result<(), Fault> {
    if cpu.state.cr4 & cr4::OSXSAVE == 0 {
        return Err(Fault::UD);
    }
    let v = match cpu.state.gpr[1] as u32 {
        0 => cpu.state.xcr0,
        _ => return Err(Fault::gp0()),
    };
    cpu.state.gpr[0] = v & 0xffff_ffff;
    cpu.state.gpr[2] = v >> 32;
    Ok(())
}

/// XSETBV: XCR[ECX] ← EDX:EAX (CPL 0).
pub(crate) fn xsetbv(cpu: &mut Cpu) -> Result<(), Fault> {
    if cpu.state.cr4 & cr4::OSXSAVE == 0 {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    if cpu.state.gpr[1] as u32 != 0 {
        return Err(Fault::gp0());
    }
    let v = (cpu.state.gpr[0] & 0xffff_ffff) | (cpu.state.gpr[2] << 32);
    if v & 1 == 0 || v & !XCR0_SUPPORTED != 0 {
        return Err(Fault::gp0());
    }
    cpu.state.xcr0 = v;
    Ok(())
}
