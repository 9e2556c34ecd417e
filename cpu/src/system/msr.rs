//! RDMSR/WRMSR (SDM Vol. 4 for the MSR layouts).
//!
//! Modelled MSRs: TSC, APIC_BASE, FEATURE_CONTROL (read-only: reads 1 =
//! locked with VMX/SMX off, writes #GP), SYSENTER_CS/ESP/EIP, MISC_ENABLE
//! (plain storage), PAT, EFER, STAR, LSTAR, CSTAR, FMASK, FS_BASE, GS_BASE,
//! KERNEL_GS_BASE, TSC_AUX, and BIOS_SIGN_ID (0x8b, the microcode revision:
//! reads revision 1 in EDX, writes are accepted and ignored — Linux's early
//! Intel setup reads it with a plain RDMSR that must not fault, and KVM and
//! QEMU answer it the same way). Every other index — including MTRRs, MCA banks,
//! TSC_ADJUST, TSC_DEADLINE, SPEC_CTRL, whose CPUID bits are not offered —
//! raises #GP(0), as hardware does for an MSR it does not implement.

use super::{canonical, require_cpl0};
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, efer, msr, reg, SegReg};

/// EFER bits ringside implements (NXE: CPUID offers NX; no SVME/LMSLE/FFXSR).
const EFER_VALID: u64 = efer::SCE | efer::LME | efer::LMA | efer::NXE;

/// IA32_APIC_BASE: BSP (8), EN (11), base (12 .. MAXPHYADDR-1). x2APIC
/// (bit 10) is not offered.
const APIC_BASE_VALID: u64 =
    (1 << 8) | (1 << 11) | (((1u64 << super::control::MAXPHYADDR) - 1) & !0xfff);

/// IA32_BIOS_SIGN_ID (microcode update signature).
const IA32_BIOS_SIGN_ID: u32 = 0x8b;
/// Microcode revision 1, reported in EDX as hardware does.
const MICROCODE_REV: u64 = 1 << 32;

/// IA32_FEATURE_CONTROL: lock bit set, VMX/SMX disabled.
const FEATURE_CONTROL: u64 = 1;

fn edx_eax(cpu: &Cpu) -> u64 {
    (cpu.state.gpr[reg::RAX] & 0xffff_ffff) | (cpu.state.gpr[reg::RDX] << 32)
}

/// A PAT value is valid when every entry is a defined memory type
/// (UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7) and bits 7:3 of each byte are 0.
fn pat_valid(v: u64) -> bool {
    v.to_le_bytes()
        .iter()
        .all(|&b| matches!(b, 0 | 1 | 4 | 5 | 6 | 7))
}

/// Read an MSR (`None`: not implemented → #GP(0)).
pub(crate) fn read_msr(cpu: &mut Cpu, plat: &mut dyn Platform, index: u32) -> Option<u64> {
    let m = &cpu.state.msr;
    Some(match index {
        msr::IA32_TSC => plat.tsc().wrapping_add(m.tsc_offset),
        msr::IA32_APIC_BASE => m.apic_base,
        msr::IA32_FEATURE_CONTROL => FEATURE_CONTROL,
        IA32_BIOS_SIGN_ID => MICROCODE_REV,
        msr::IA32_SYSENTER_CS => m.sysenter_cs,
        msr::IA32_SYSENTER_ESP => m.sysenter_esp,
        msr::IA32_SYSENTER_EIP => m.sysenter_eip,
        msr::IA32_MISC_ENABLE => m.misc_enable,
        msr::IA32_PAT => m.pat,
        msr::IA32_EFER => cpu.state.efer,
        msr::IA32_STAR => m.star,
        msr::IA32_LSTAR => m.lstar,
        msr::IA32_CSTAR => m.cstar,
        msr::IA32_FMASK => m.fmask,
        msr::IA32_FS_BASE => cpu.state.sreg(SegReg::Fs).base,
        msr::IA32_GS_BASE => cpu.state.sreg(SegReg::Gs).base,
        msr::IA32_KERNEL_GS_BASE => m.kernel_gs_base,
        msr::IA32_TSC_AUX => m.tsc_aux,
        _ => return None,
    })
}

/// Write an MSR with its checks (`Err`: #GP(0)).
pub(crate) fn write_msr(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    index: u32,
    v: u64,
) -> Result<(), Fault> {
    let gp = Err(Fault::gp0());
    match index {
        msr::IA32_TSC => {
            cpu.state.msr.tsc_offset = v.wrapping_sub(plat.tsc());
        }
        msr::IA32_APIC_BASE => {
            if v & !APIC_BASE_VALID != 0 {
                return gp;
            }
            // BSP is a read-only property of this processor.
            let v = (v & !(1 << 8)) | (cpu.state.msr.apic_base & (1 << 8));
            cpu.state.msr.apic_base = v;
            plat.apic_base_changed(v);
        }
        // Writing 0 before CPUID is how software asks for a fresh revision;
        // there is nothing to update.
        IA32_BIOS_SIGN_ID => {}
        msr::IA32_SYSENTER_CS => cpu.state.msr.sysenter_cs = v & 0xffff_ffff,
        msr::IA32_SYSENTER_ESP | msr::IA32_SYSENTER_EIP => {
            if !canonical(v) {
                return gp;
            }
            if index == msr::IA32_SYSENTER_ESP {
                cpu.state.msr.sysenter_esp = v;
            } else {
                cpu.state.msr.sysenter_eip = v;
            }
        }
        msr::IA32_MISC_ENABLE => cpu.state.msr.misc_enable = v,
        msr::IA32_PAT => {
            if !pat_valid(v) {
                return gp;
            }
            cpu.state.msr.pat = v;
        }
        msr::IA32_EFER => return write_efer(cpu, v),
        msr::IA32_STAR => cpu.state.msr.star = v,
        msr::IA32_LSTAR
        | msr::IA32_CSTAR
        | msr::IA32_KERNEL_GS_BASE
        | msr::IA32_FS_BASE
        | msr::IA32_GS_BASE => {
            if !canonical(v) {
                return gp;
            }
            match index {
                msr::IA32_LSTAR => cpu.state.msr.lstar = v,
                msr::IA32_CSTAR => cpu.state.msr.cstar = v,
                msr::IA32_KERNEL_GS_BASE => cpu.state.msr.kernel_gs_base = v,
                msr::IA32_FS_BASE => cpu.state.sreg_mut(SegReg::Fs).base = v,
                _ => cpu.state.sreg_mut(SegReg::Gs).base = v,
            }
        }
        msr::IA32_FMASK => cpu.state.msr.fmask = v & 0xffff_ffff,
        msr::IA32_TSC_AUX => {
            if v >> 32 != 0 {
                return gp;
            }
            cpu.state.msr.tsc_aux = v;
        }
        _ => return gp,
    }
    Ok(())
}

/// EFER: reserved bits → #GP; LME may not change while paging is on; LMA
/// is read-only (it follows CR0.PG & LME). An NXE change alters the
/// meaning of cached translations.
fn write_efer(cpu: &mut Cpu, v: u64) -> Result<(), Fault> {
    if v & !EFER_VALID != 0 {
        return Err(Fault::gp0());
    }
    let old = cpu.state.efer;
    if cpu.state.cr0 & cr0::PG != 0 && (old ^ v) & efer::LME != 0 {
        return Err(Fault::gp0());
    }
    let new = (v & !efer::LMA) | (old & efer::LMA);
    cpu.state.efer = new;
    if (old ^ new) & efer::NXE != 0 {
        cpu.flush_tlb(true);
    }
    Ok(())
}

/// RDMSR: EDX:EAX ← MSR[ECX].
pub(crate) fn rdmsr(cpu: &mut Cpu, plat: &mut dyn Platform) -> Result<(), Fault> {
    require_cpl0(cpu)?;
    let index = cpu.state.gpr[reg::RCX] as u32;
    let v = read_msr(cpu, plat, index).ok_or(Fault::gp0())?;
    cpu.state.gpr[reg::RAX] = v & 0xffff_ffff;
    cpu.state.gpr[reg::RDX] = v >> 32;
    Ok(())
}

/// WRMSR: MSR[ECX] ← EDX:EAX.
pub(crate) fn wrmsr(cpu: &mut Cpu, plat: &mut dyn Platform) -> Result<(), Fault> {
    require_cpl0(cpu)?;
    let index = cpu.state.gpr[reg::RCX] as u32;
    let v = edx_eax(cpu);
    write_msr(cpu, plat, index, v)
}
