//! The CPUID model: the one processor identity both backends present.
//!
//! The interpreter answers CPUID from [`cpuid`]; the KVM backend loads
//! [`cpuid_entries`] with `KVM_SET_CPUID2`, so a guest sees the same CPU on
//! `--accel tcg` and `--accel kvm`. The model advertises **only what
//! ringside implements**; a guest that checks CPUID never reaches a
//! missing feature.
//!
//! Identity: "GenuineIntel", family 6 model 0x0f stepping 11 — a P6-family
//! signature from before SSE4/AVX, so that no operating system's
//! model-specific code assumes features we lack — brand string
//! "ringside virtual CPU". One logical processor, initial APIC ID 0.
//!
//! Offered (leaf 1 EDX): DE, PSE, TSC, MSR, PAE, CX8, APIC, SEP, PGE, CMOV,
//! PAT, CLFSH. (ECX): CX16, MOVBE, POPCNT. Leaf 7 EBX: SMEP (CR4.SMEP is
//! accepted and the page walker enforces it). Extended: SYSCALL, NX,
//! PDPE1GB, RDTSCP, LM; LAHF_LM, ABM (LZCNT). Leaf 0x80000008: 40 physical
//! and 48 linear address bits.
//!
//! Deliberately absent: FPU, MMX, FXSR, SSE/SSE2 and everything vector,
//! XSAVE — the x87/SSE state arrives with a later issue and these bits with
//! it; VME/PVI (no virtual-8086 extensions), MCE/MCA, MTRR (no MTRR MSRs),
//! PSE-36, the hypervisor bit (leaf 1 ECX[31]), x2APIC, TSC-deadline,
//! MONITOR/MWAIT, PCID, FSGSBASE, SMAP, UMIP. Leaves 2-6, 8-0xd are present
//! but describe nothing (leaf 2 reports no descriptors, 4/0xb/0xd are
//! zero-filled).
//!
//! Leaves above the maximum basic or extended leaf return the data of the
//! highest basic leaf (0xd), as Intel processors do — and as KVM does for
//! an Intel-vendor guest, which keeps the two backends in step.
//!
//! Run-time bits, applied by the CPUID *instruction* on top of this static
//! model (as hardware and KVM do): leaf 1 EDX.APIC reads 0 while
//! IA32_APIC_BASE.EN is clear, and leaf 1 ECX.OSXSAVE mirrors CR4.OSXSAVE.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::state::{cr4, reg};

/// Highest basic leaf.
pub const MAX_BASIC_LEAF: u32 = 0xd;
/// Highest extended leaf.
pub const MAX_EXT_LEAF: u32 = 0x8000_0008;
/// The brand string (leaves 0x80000002-0x80000004, NUL-padded).
pub const BRAND: &str = "ringside virtual CPU";

/// Feature bits by register, named as in the SDM's CPUID tables.
pub mod feature {
    /// Leaf 1 ECX.
    pub mod l1_ecx {
        pub const CX16: u32 = 1 << 13;
        pub const MOVBE: u32 = 1 << 22;
        pub const POPCNT: u32 = 1 << 23;
        pub const OSXSAVE: u32 = 1 << 27;
    }
    /// Leaf 1 EDX.
    pub mod l1_edx {
        pub const DE: u32 = 1 << 2;
        pub const PSE: u32 = 1 << 3;
        pub const TSC: u32 = 1 << 4;
        pub const MSR: u32 = 1 << 5;
        pub const PAE: u32 = 1 << 6;
        pub const CX8: u32 = 1 << 8;
        pub const APIC: u32 = 1 << 9;
        pub const SEP: u32 = 1 << 11;
        pub const PGE: u32 = 1 << 13;
        pub const CMOV: u32 = 1 << 15;
        pub const PAT: u32 = 1 << 16;
        pub const CLFSH: u32 = 1 << 19;
    }
    /// Leaf 7 subleaf 0 EBX.
    pub mod l7_ebx {
        pub const SMEP: u32 = 1 << 7;
    }
    /// Leaf 0x80000001 ECX.
    pub mod e1_ecx {
        pub const LAHF_LM: u32 = 1 << 0;
        pub const ABM: u32 = 1 << 5;
    }
    /// Leaf 0x80000001 EDX.
    pub mod e1_edx {
        pub const SYSCALL: u32 = 1 << 11;
        pub const NX: u32 = 1 << 20;
        pub const PDPE1GB: u32 = 1 << 26;
        pub const RDTSCP: u32 = 1 << 27;
        pub const LM: u32 = 1 << 29;
    }
}

/// Family 6, model 0x0f, stepping 11 (EAX of leaf 1).
const SIGNATURE: u32 = (6 << 8) | (0xf << 4) | 0xb;

const L1_ECX: u32 = feature::l1_ecx::CX16 | feature::l1_ecx::MOVBE | feature::l1_ecx::POPCNT;

const L1_EDX: u32 = {
    use feature::l1_edx::*;
    DE | PSE | TSC | MSR | PAE | CX8 | APIC | SEP | PGE | CMOV | PAT | CLFSH
};

const E1_ECX: u32 = feature::e1_ecx::LAHF_LM | feature::e1_ecx::ABM;

const E1_EDX: u32 = {
    use feature::e1_edx::*;
    SYSCALL | NX | PDPE1GB | RDTSCP | LM
};

/// Physical (40) and linear (48) address widths, leaf 0x80000008 EAX.
const ADDR_SIZES: u32 = (48 << 8) | super::control::MAXPHYADDR;

/// One leaf/subleaf, in the shape `KVM_SET_CPUID2` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidEntry {
    pub function: u32,
    pub index: u32,
    /// The result depends on ECX (`KVM_CPUID_FLAG_SIGNIFCANT_INDEX`).
    pub significant_index: bool,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Four ASCII bytes as a little-endian register value.
fn le4(s: &[u8], at: usize) -> u32 {
    let b = |i: usize| s.get(at + i).copied().unwrap_or(0) as u32;
    b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)
}

/// Leaves whose result depends on the subleaf in ECX.
fn indexed(leaf: u32) -> bool {
    matches!(leaf, 4 | 7 | 0xb | 0xd)
}

/// The static CPUID model: `[EAX, EBX, ECX, EDX]` for `leaf`/`subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let in_range = leaf <= MAX_BASIC_LEAF || (0x8000_0000..=MAX_EXT_LEAF).contains(&leaf);
    let leaf = if in_range { leaf } else { MAX_BASIC_LEAF };
    let sub = if indexed(leaf) { subleaf } else { 0 };
    match (leaf, sub) {
        (0, _) => {
            let v = b"GenuineIntel";
            [MAX_BASIC_LEAF, le4(v, 0), le4(v, 8), le4(v, 4)]
        }
        // CLFLUSH line 8 × 8 = 64 bytes; one logical processor; APIC ID 0.
        (1, _) => [SIGNATURE, (1 << 16) | (8 << 8), L1_ECX, L1_EDX],
        // One iteration, no cache/TLB descriptors.
        (2, _) => [1, 0, 0, 0],
        (7, 0) => [0, feature::l7_ebx::SMEP, 0, 0],
        (0x8000_0000, _) => [MAX_EXT_LEAF, 0, 0, 0],
        (0x8000_0001, _) => [0, 0, E1_ECX, E1_EDX],
        (0x8000_0002..=0x8000_0004, _) => {
            let b = BRAND.as_bytes();
            let at = (leaf - 0x8000_0002) as usize * 16;
            [le4(b, at), le4(b, at + 4), le4(b, at + 8), le4(b, at + 12)]
        }
        (0x8000_0008, _) => [ADDR_SIZES, 0, 0, 0],
        _ => [0; 4],
    }
}

/// Every leaf and subleaf of the model, for `KVM_SET_CPUID2`.
pub fn cpuid_entries() -> Vec<CpuidEntry> {
    (0..=MAX_BASIC_LEAF)
        .chain(0x8000_0000..=MAX_EXT_LEAF)
        .map(|function| {
            let [eax, ebx, ecx, edx] = cpuid(function, 0);
            CpuidEntry {
                function,
                index: 0,
                significant_index: indexed(function),
                eax,
                ebx,
                ecx,
                edx,
            }
        })
        .collect()
}

/// The CPUID instruction (unprivileged; no CPUID faulting).
pub(crate) fn exec_cpuid(cpu: &mut Cpu) -> Result<(), Fault> {
    let leaf = cpu.state.gpr[reg::RAX] as u32;
    let sub = cpu.state.gpr[reg::RCX] as u32;
    let mut r = cpuid(leaf, sub);
    if leaf == 1 {
        if cpu.state.msr.apic_base & (1 << 11) == 0 {
            r[3] &= !feature::l1_edx::APIC;
        }
        if cpu.state.cr4 & cr4::OSXSAVE != 0 {
            r[2] |= feature::l1_ecx::OSXSAVE;
        }
    }
    cpu.state.gpr[reg::RAX] = r[0] as u64;
    cpu.state.gpr[reg::RBX] = r[1] as u64;
    cpu.state.gpr[reg::RCX] = r[2] as u64;
    cpu.state.gpr[reg::RDX] = r[3] as u64;
    Ok(())
}
