//! The CPUID model: the one processor identity both backends present.
//!
//! The interpreter answers CPUID from [`cpuid`]; the KVM backend loads
//! [`cpuid_entries`] with `KVM_SET_CPUID2`, so a guest sees the same CPU on
//! `--accel tcg` and `--accel kvm`. The model advertises **only what
//! ringside implements**; a guest that checks CPUID never reaches a
//! missing feature.
//!
//! Identity: "GenuineIntel", family 6 model 0x0f stepping 11 — a P6-family
//! signature (no operating system keys model-specific errata or
//! microarchitecture code on it) — brand string "ringside virtual CPU".
//! One logical processor, initial APIC ID 0.
//!
//! Offered (leaf 1 EDX): FPU, DE, PSE, TSC, MSR, PAE, CX8, APIC, SEP, PGE,
//! CMOV, PAT, CLFSH, MMX, FXSR, SSE, SSE2. (ECX): SSE3, PCLMULQDQ, SSSE3,
//! CX16, SSE4.1, SSE4.2, MOVBE, POPCNT, AES, RDRAND. Leaf 7 EBX: BMI1,
//! SMEP (CR4.SMEP is accepted and the page walker enforces it), BMI2,
//! RDSEED, ADX, SHA. Extended: SYSCALL, NX, PDPE1GB, RDTSCP, LM; LAHF_LM,
//! ABM (LZCNT). Leaf 0x80000008: 40 physical and 48 linear address bits.
//! That is the x86-64-v2 level (what Debian's userspace may assume) plus
//! the bit-manipulation and crypto extensions.
//!
//! Every instruction of an advertised family is implemented, in every
//! legacy encoding iced-x86 knows, and differentially tested against the
//! host CPU (tested in `tests` below; `ringside isa --coverage` shows the
//! figures): the x87 FPU with exact 80-bit soft-float (the transcendentals
//! to within 1 ulp of the hardware), MMX on the x87 register file, SSE to
//! SSE4.2 with exact MXCSR semantics, AES-NI, PCLMULQDQ, SHA, RDRAND/RDSEED
//! from the host's entropy.
//!
//! Deliberately absent: XSAVE (XSAVE/XRSTOR are not implemented; FXSAVE
//! is), AVX and everything VEX/EVEX-encoded beyond BMI, VME/PVI (no
//! virtual-8086 extensions), MCE/MCA, MTRR (no MTRR MSRs), PSE-36, the
//! hypervisor bit (leaf 1 ECX[31]), x2APIC, TSC-deadline, MONITOR/MWAIT,
//! PCID, FSGSBASE (implemented, not yet differentially tested), SMAP,
//! UMIP, AMD's SSE4A and TBM. Leaves 2-6, 8-0xd are present but describe
//! nothing (leaf 2 reports no descriptors, 4/0xb/0xd are zero-filled).
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
        pub const SSE3: u32 = 1 << 0;
        pub const PCLMULQDQ: u32 = 1 << 1;
        pub const SSSE3: u32 = 1 << 9;
        pub const CX16: u32 = 1 << 13;
        pub const SSE4_1: u32 = 1 << 19;
        pub const SSE4_2: u32 = 1 << 20;
        pub const MOVBE: u32 = 1 << 22;
        pub const POPCNT: u32 = 1 << 23;
        pub const AES: u32 = 1 << 25;
        pub const OSXSAVE: u32 = 1 << 27;
        pub const RDRAND: u32 = 1 << 30;
    }
    /// Leaf 1 EDX.
    pub mod l1_edx {
        pub const FPU: u32 = 1 << 0;
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
        pub const MMX: u32 = 1 << 23;
        pub const FXSR: u32 = 1 << 24;
        pub const SSE: u32 = 1 << 25;
        pub const SSE2: u32 = 1 << 26;
    }
    /// Leaf 7 subleaf 0 EBX.
    pub mod l7_ebx {
        pub const BMI1: u32 = 1 << 3;
        pub const SMEP: u32 = 1 << 7;
        pub const BMI2: u32 = 1 << 8;
        pub const RDSEED: u32 = 1 << 18;
        pub const ADX: u32 = 1 << 19;
        pub const SHA: u32 = 1 << 29;
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

const L1_ECX: u32 = {
    use feature::l1_ecx::*;
    SSE3 | PCLMULQDQ | SSSE3 | CX16 | SSE4_1 | SSE4_2 | MOVBE | POPCNT | AES | RDRAND
};

const L1_EDX: u32 = {
    use feature::l1_edx::*;
    FPU | DE
        | PSE
        | TSC
        | MSR
        | PAE
        | CX8
        | APIC
        | SEP
        | PGE
        | CMOV
        | PAT
        | CLFSH
        | MMX
        | FXSR
        | SSE
        | SSE2
};

/// Leaf 7 subleaf 0 EBX: the bit-manipulation sets (insn/bmi.rs; TZCNT
/// in insn/bit.rs), SMEP, RDSEED (insn/rdrand.rs) and SHA (insn/sse/sha.rs).
const L7_EBX: u32 = {
    use feature::l7_ebx::*;
    BMI1 | SMEP | BMI2 | RDSEED | ADX | SHA
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
        (7, 0) => [0, L7_EBX, 0, 0],
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

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Code, CpuidFeature as F};

    /// Where each instruction family's CPUID bit lives: (iced's feature,
    /// leaf, register 0-3 = EAX-EDX, bit).
    const FAMILIES: &[(F, u32, usize, u32)] = &[
        (F::FPU, 1, 3, feature::l1_edx::FPU),
        (F::MMX, 1, 3, feature::l1_edx::MMX),
        (F::FXSR, 1, 3, feature::l1_edx::FXSR),
        (F::SSE, 1, 3, feature::l1_edx::SSE),
        (F::SSE2, 1, 3, feature::l1_edx::SSE2),
        (F::SSE3, 1, 2, feature::l1_ecx::SSE3),
        (F::SSSE3, 1, 2, feature::l1_ecx::SSSE3),
        (F::SSE4_1, 1, 2, feature::l1_ecx::SSE4_1),
        (F::SSE4_2, 1, 2, feature::l1_ecx::SSE4_2),
        (F::PCLMULQDQ, 1, 2, feature::l1_ecx::PCLMULQDQ),
        (F::AES, 1, 2, feature::l1_ecx::AES),
        (F::RDRAND, 1, 2, feature::l1_ecx::RDRAND),
        (F::RDSEED, 7, 1, feature::l7_ebx::RDSEED),
        (F::SHA, 7, 1, feature::l7_ebx::SHA),
        (F::CX8, 1, 3, feature::l1_edx::CX8),
        (F::CMOV, 1, 3, feature::l1_edx::CMOV),
        (F::CMPXCHG16B, 1, 2, feature::l1_ecx::CX16),
        (F::MOVBE, 1, 2, feature::l1_ecx::MOVBE),
        (F::POPCNT, 1, 2, feature::l1_ecx::POPCNT),
        (F::BMI1, 7, 1, feature::l7_ebx::BMI1),
        (F::BMI2, 7, 1, feature::l7_ebx::BMI2),
        (F::ADX, 7, 1, feature::l7_ebx::ADX),
        (F::LZCNT, 0x8000_0001, 2, feature::e1_ecx::ABM),
        // Families ringside does not implement (or not completely).
        (F::MONITOR, 1, 2, 1 << 3),
        (F::FMA, 1, 2, 1 << 12),
        (F::XSAVE, 1, 2, 1 << 26),
        (F::AVX, 1, 2, 1 << 28),
        (F::F16C, 1, 2, 1 << 29),
        (F::FSGSBASE, 7, 1, 1 << 0),
        (F::AVX2, 7, 1, 1 << 5),
        (F::INVPCID, 7, 1, 1 << 10),
        (F::RTM, 7, 1, 1 << 11),
        (F::SMAP, 7, 1, 1 << 20),
        (F::RDPID, 7, 2, 1 << 22),
        (F::SSE4A, 0x8000_0001, 2, 1 << 6),
        (F::PREFETCHW, 0x8000_0001, 2, 1 << 8),
        (F::XOP, 0x8000_0001, 2, 1 << 11),
        (F::FMA4, 0x8000_0001, 2, 1 << 16),
        (F::TBM, 0x8000_0001, 2, 1 << 21),
    ];

    fn advertised(leaf: u32, reg: usize, bit: u32) -> bool {
        cpuid(leaf, 0).get(reg).is_some_and(|r| r & bit != 0)
    }

    /// Is feature `g` present on this CPU model? The processor
    /// generations are; a family of [`FAMILIES`] is if advertised; any
    /// other (x87, SSE…) counts as absent here.
    fn present(g: F) -> bool {
        matches!(
            g,
            F::INTEL8086 | F::INTEL186 | F::INTEL286 | F::INTEL386 | F::INTEL486 | F::X64
        ) || FAMILIES
            .iter()
            .any(|&(h, leaf, reg, bit)| h == g && advertised(leaf, reg, bit))
    }

    /// The Codes of family `f` a guest can reach: those iced lists under
    /// `f` whose other features are present too (FCMOVcc is CMOV *and*
    /// FPU: not reachable without the FPU).
    fn codes_of(f: F) -> Vec<Code> {
        Code::values()
            .filter(|c| {
                let fs = c.cpuid_features();
                fs.contains(&f) && fs.iter().all(|&g| g == f || present(g))
            })
            .collect()
    }

    /// The model advertises a family only if every instruction of it is
    /// implemented, in every encoding iced knows (a guest that checks
    /// CPUID never reaches a missing instruction).
    #[test]
    fn advertised_families_are_implemented() {
        for &(f, leaf, reg, bit) in FAMILIES {
            let codes = codes_of(f);
            assert!(
                Code::values().any(|c| c.cpuid_features().contains(&f)),
                "{f:?}: iced lists no instruction"
            );
            let missing: Vec<Code> = codes
                .iter()
                .copied()
                .filter(|c| !crate::coverage::implemented(*c))
                .collect();
            if advertised(leaf, reg, bit) {
                assert!(
                    missing.is_empty(),
                    "CPUID advertises {f:?} but these are not implemented: {missing:?}"
                );
            }
        }
    }

    /// The x87 and SIMD families through SSE4.2 and the crypto
    /// extensions are advertised, and every Code of them (legacy
    /// encodings; the VEX forms need AVX, which is not advertised) is
    /// implemented: nothing is exempt any more.
    #[test]
    fn simd_families_claimed_exactly() {
        for f in [
            F::FPU,
            F::MMX,
            F::FXSR,
            F::SSE,
            F::SSE2,
            F::SSE3,
            F::SSSE3,
            F::SSE4_1,
            F::SSE4_2,
            F::PCLMULQDQ,
            F::AES,
            F::SHA,
        ] {
            let &(_, leaf, reg, bit) = FAMILIES.iter().find(|e| e.0 == f).unwrap();
            assert!(advertised(leaf, reg, bit), "{f:?} should be advertised");
            let missing: Vec<Code> = codes_of(f)
                .into_iter()
                .filter(|c| !crate::coverage::implemented(*c))
                .collect();
            assert_eq!(missing, Vec::<Code>::new(), "{f:?}");
        }
        assert!(crate::coverage::implemented(Code::Fxsave64_m512byte));
        assert!(crate::coverage::implemented(Code::Maskmovdqu_rDI_xmm_xmm));
    }

    /// The integer families this model claims, and the ones it must not
    /// (TBM is AMD-only and absent; FSGSBASE waits for its difftest).
    #[test]
    fn integer_families_claimed_exactly() {
        for f in [
            F::CX8,
            F::CMOV,
            F::CMPXCHG16B,
            F::MOVBE,
            F::POPCNT,
            F::BMI1,
            F::BMI2,
            F::ADX,
            F::LZCNT,
            F::RDRAND,
            F::RDSEED,
        ] {
            let &(_, leaf, reg, bit) = FAMILIES.iter().find(|e| e.0 == f).unwrap();
            assert!(advertised(leaf, reg, bit), "{f:?} should be advertised");
            for c in codes_of(f) {
                assert!(crate::coverage::implemented(c), "{c:?} ({f:?})");
            }
        }
        for f in [F::TBM, F::AVX, F::AVX2, F::FSGSBASE, F::XSAVE, F::MONITOR] {
            let &(_, leaf, reg, bit) = FAMILIES.iter().find(|e| e.0 == f).unwrap();
            assert!(!advertised(leaf, reg, bit), "{f:?} must not be advertised");
        }
    }
}
