//! CPUID for the KVM vCPU: ringside's CPU model, so a guest sees the same
//! processor on both backends.
//!
//! KVM executes CPUID itself (no exit), answering from the table given with
//! `KVM_SET_CPUID2`. We hand it ringside's model verbatim. KVM accepts most
//! tables as they are; if the host rejects ours (it refuses, for example,
//! XSAVE components it cannot context-switch), we intersect the feature
//! bits with `KVM_GET_SUPPORTED_CPUID` and try again, and say so in the
//! notes. Either way we list the features the model advertises but the host
//! KVM cannot provide: a guest that uses one of those would see #UD under
//! KVM but not under tcg.

use crate::AccelError;
use kvm_bindings::{
    kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VcpuFd};

/// Register selectors for [`FEATURE_REGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reg {
    Eax,
    Ebx,
    Ecx,
    Edx,
}

impl Reg {
    fn name(self) -> &'static str {
        match self {
            Reg::Eax => "EAX",
            Reg::Ebx => "EBX",
            Reg::Ecx => "ECX",
            Reg::Edx => "EDX",
        }
    }
    fn get(self, e: &kvm_cpuid_entry2) -> u32 {
        match self {
            Reg::Eax => e.eax,
            Reg::Ebx => e.ebx,
            Reg::Ecx => e.ecx,
            Reg::Edx => e.edx,
        }
    }
    fn set(self, e: &mut kvm_cpuid_entry2, v: u32) {
        match self {
            Reg::Eax => e.eax = v,
            Reg::Ebx => e.ebx = v,
            Reg::Ecx => e.ecx = v,
            Reg::Edx => e.edx = v,
        }
    }
}

/// The (leaf, sub-leaf, register, bits-that-are-not-capabilities) words
/// that are feature bitmaps. The last field masks out bits that describe
/// OS state rather than a capability (OSXSAVE, OSPKE, which KVM computes
/// from CR4 at run time) or the platform (the hypervisor bit): the model's
/// value is kept for those.
const FEATURE_REGS: [(u32, u32, Reg, u32); 12] = [
    (0x1, 0, Reg::Ecx, (1 << 27) | (1 << 31)),
    (0x1, 0, Reg::Edx, 0),
    (0x7, 0, Reg::Ebx, 0),
    (0x7, 0, Reg::Ecx, 1 << 4),
    (0x7, 0, Reg::Edx, 0),
    (0x7, 1, Reg::Eax, 0),
    (0xd, 0, Reg::Eax, 0),
    (0xd, 1, Reg::Eax, 0),
    (0x8000_0001, 0, Reg::Ecx, 0),
    (0x8000_0001, 0, Reg::Edx, 0),
    (0x8000_0007, 0, Reg::Edx, 0),
    (0x8000_0008, 0, Reg::Ebx, 0),
];

/// ringside's CPU model (`cpu::cpuid_entries`) as KVM entries.
fn ringside_model() -> Vec<kvm_cpuid_entry2> {
    cpu::cpuid_entries()
        .iter()
        .map(|e| kvm_cpuid_entry2 {
            function: e.function,
            index: e.index,
            flags: if e.significant_index {
                KVM_CPUID_FLAG_SIGNIFCANT_INDEX
            } else {
                0
            },
            eax: e.eax,
            ebx: e.ebx,
            ecx: e.ecx,
            edx: e.edx,
            padding: [0; 3],
        })
        .collect()
}

fn find(entries: &[kvm_cpuid_entry2], leaf: u32, sub: u32) -> Option<&kvm_cpuid_entry2> {
    entries.iter().find(|e| {
        e.function == leaf && (e.index == sub || e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX == 0)
    })
}

/// Feature bits `model` sets that `host` does not support: (leaf,
/// sub-leaf, register, bits).
fn unsupported_bits(
    model: &[kvm_cpuid_entry2],
    host: &[kvm_cpuid_entry2],
) -> Vec<(u32, u32, Reg, u32)> {
    let mut out = Vec::new();
    for (leaf, sub, reg, keep) in FEATURE_REGS {
        let Some(m) = find(model, leaf, sub) else {
            continue;
        };
        let h = find(host, leaf, sub).map_or(0, |h| reg.get(h));
        let missing = reg.get(m) & !h & !keep;
        if missing != 0 {
            out.push((leaf, sub, reg, missing));
        }
    }
    out
}

/// `model` with every feature bitmap ANDed with what `host` supports.
pub fn intersect(model: &[kvm_cpuid_entry2], host: &[kvm_cpuid_entry2]) -> Vec<kvm_cpuid_entry2> {
    let mut out = model.to_vec();
    for e in &mut out {
        for (leaf, sub, reg, keep) in FEATURE_REGS {
            if e.function != leaf || e.index != sub {
                continue;
            }
            let h = find(host, leaf, sub).map_or(0, |h| reg.get(h));
            let v = reg.get(e);
            reg.set(e, (v & h) | (v & keep));
        }
    }
    out
}

fn to_cpuid(entries: &[kvm_cpuid_entry2]) -> Result<CpuId, AccelError> {
    CpuId::from_entries(entries).map_err(|e| AccelError::Host {
        what: "building the CPUID table",
        detail: format!("{e:?}"),
    })
}

/// Give the vCPU its CPUID table. Returns notes for the user (empty when
/// the guest sees exactly ringside's model and the host supports all of it).
pub fn configure(kvm: &Kvm, vcpu: &VcpuFd) -> Result<Vec<String>, AccelError> {
    let host = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| AccelError::Host {
            what: "KVM_GET_SUPPORTED_CPUID",
            detail: e.to_string(),
        })?;
    let host = host.as_slice();
    let set = |entries: &[kvm_cpuid_entry2]| -> Result<(), AccelError> {
        vcpu.set_cpuid2(&to_cpuid(entries)?)
            .map_err(|e| AccelError::Host {
                what: "KVM_SET_CPUID2",
                detail: e.to_string(),
            })
    };
    let model = ringside_model();
    let mut notes = Vec::new();
    let mut loaded = model.clone();
    let mut intersected = false;
    if set(&model).is_err() {
        loaded = intersect(&model, host);
        set(&loaded)?;
        intersected = true;
        notes.push(
            "the host KVM rejected ringside's CPUID table; the guest sees it intersected with \
             KVM_GET_SUPPORTED_CPUID"
                .to_string(),
        );
    }
    // Some hosts edit the table on the way in: kvm-pvm replaces leaves 1,
    // 7 and 0xd with the host's own feature words (its guests' user code
    // runs natively and may use them anyway). Read it back and say so.
    let back = vcpu
        .get_cpuid2(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| AccelError::Host {
            what: "KVM_GET_CPUID2",
            detail: e.to_string(),
        })?;
    let rewritten = rewrites(&loaded, back.as_slice());
    for (leaf, sub, reg, bits) in unsupported_bits(&model, host) {
        if rewritten
            .iter()
            .any(|r| r.0 == leaf && r.1 == sub && r.2 == reg)
        {
            continue; // the rewrite note says what the guest sees instead
        }
        let what = format!(
            "CPUID leaf {leaf:#x}.{sub} {} bits {bits:#010x}",
            reg.name()
        );
        notes.push(if intersected {
            format!("hidden from the guest (the host KVM lacks it): {what}")
        } else {
            format!("advertised but not supported by the host KVM (may #UD under kvm): {what}")
        });
    }
    for (leaf, sub, reg, mine, theirs) in rewritten {
        notes.push(format!(
            "{REWRITE_NOTE} CPUID leaf {leaf:#x}.{sub} {}: ringside {mine:#010x}, guest sees \
             {theirs:#010x}",
            reg.name()
        ));
    }
    Ok(notes)
}

/// Words of `loaded` that differ in `back` (the table KVM kept): (leaf,
/// sub-leaf, register, ours, KVM's). A leaf KVM dropped reads as zeroes.
fn rewrites(
    loaded: &[kvm_cpuid_entry2],
    back: &[kvm_cpuid_entry2],
) -> Vec<(u32, u32, Reg, u32, u32)> {
    let mut out = Vec::new();
    for e in loaded {
        let b = back
            .iter()
            .find(|b| b.function == e.function && b.index == e.index);
        for reg in [Reg::Eax, Reg::Ebx, Reg::Ecx, Reg::Edx] {
            let (mine, theirs) = (reg.get(e), b.map_or(0, |b| reg.get(b)));
            if mine != theirs {
                out.push((e.function, e.index, reg, mine, theirs));
            }
        }
    }
    out
}

/// How notes about host edits of the CPUID table begin.
pub const REWRITE_NOTE: &str = "the host KVM rewrote";

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32, regs: [u32; 4]) -> kvm_cpuid_entry2 {
        let indexed = matches!(function, 4 | 7 | 0xb | 0xd);
        kvm_cpuid_entry2 {
            function,
            index,
            flags: if indexed {
                KVM_CPUID_FLAG_SIGNIFCANT_INDEX
            } else {
                0
            },
            eax: regs[0],
            ebx: regs[1],
            ecx: regs[2],
            edx: regs[3],
            padding: [0; 3],
        }
    }

    #[test]
    fn intersection_keeps_values_and_os_bits() {
        let model = vec![
            entry(0x0, 0, [0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65]),
            entry(
                0x1,
                0,
                [
                    0x00a0_0f11,
                    0x0001_0800,
                    (1 << 27) | (1 << 0) | (1 << 23),
                    0xff,
                ],
            ),
            entry(0x7, 0, [0, 0b1011, 0, 0]),
        ];
        let host = vec![
            entry(0x1, 0, [0, 0, 1 << 0, 0x0f]),
            entry(0x7, 0, [0, 0b0001, 0, 0]),
        ];
        let out = intersect(&model, &host);
        assert_eq!(out[0], model[0], "vendor leaf is a value, not a bitmap");
        assert_eq!(out[1].eax, 0x00a0_0f11);
        assert_eq!(
            out[1].ecx,
            (1 << 27) | (1 << 0),
            "OSXSAVE kept, POPCNT dropped"
        );
        assert_eq!(out[1].edx, 0x0f);
        assert_eq!(out[2].ebx, 0b0001);
        let missing = unsupported_bits(&model, &host);
        assert_eq!(
            missing,
            vec![
                (1, 0, Reg::Ecx, 1 << 23),
                (1, 0, Reg::Edx, 0xf0),
                (7, 0, Reg::Ebx, 0b1010)
            ]
        );
    }

    #[test]
    fn rewrites_are_found_per_word() {
        let loaded = vec![entry(1, 0, [1, 2, 3, 4]), entry(7, 0, [0, 5, 0, 0])];
        let back = vec![entry(1, 0, [1, 2, 0x33, 4])];
        let r = rewrites(&loaded, &back);
        assert_eq!(r, vec![(1, 0, Reg::Ecx, 3, 0x33), (7, 0, Reg::Ebx, 5, 0)]);
    }

    #[test]
    fn model_conversion_keeps_every_leaf() {
        let model = ringside_model();
        assert_eq!(model.len(), cpu::cpuid_entries().len());
        let l7 = find(&model, 7, 0).unwrap();
        assert_eq!(l7.flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
        let l1 = find(&model, 1, 0).unwrap();
        assert_eq!([l1.eax, l1.ebx, l1.ecx, l1.edx], cpu::cpuid(1, 0));
    }
}
