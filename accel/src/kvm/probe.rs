//! Is KVM usable on this host, and which kind of KVM is it?
//!
//! `/dev/kvm` hides which vendor module implements it. The flavour matters
//! to a student reading exit counts and to the error messages ringside
//! prints when the host gives up on an instruction, so we work it out:
//!
//! 1. The loaded vendor module, from `/sys/module/`: `kvm_intel` (VT-x),
//!    `kvm_amd` (AMD-V) or `kvm_pvm`. The module that is loaded is what
//!    `/dev/kvm` runs on, so this is the strongest evidence.
//! 2. Failing that (a container may hide `/sys`), the
//!    `vmx` / `svm` flags of `/proc/cpuinfo`.
//!
//! `kvm_pvm` is the "Pagetable-based Virtual Machine": KVM without hardware
//! virtualization, used to run KVM inside a cloud VM that does not expose
//! VT-x/AMD-V (no `vmx`/`svm` flag). The guest runs deprivileged in
//! ring 3 of the host with shadowed page tables; for guests that are not
//! PVM-aware, only 64-bit user-mode code runs natively and everything else
//! goes through KVM's instruction emulator, which does not know every
//! instruction (see the module documentation of `kvm`). The `hypervisor`
//! cpuinfo flag tells us the host kernel itself is a guest, i.e. any KVM
//! here is nested.

use kvm_ioctls::Kvm;
use std::path::Path;

/// The KVM API version every supported kernel reports (`KVM_GET_API_VERSION`).
pub const KVM_API_VERSION: i32 = 12;

/// Which hardware (or software) implements `/dev/kvm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmFlavour {
    /// Intel VT-x (`kvm_intel`).
    VtX,
    /// AMD-V / SVM (`kvm_amd`).
    AmdV,
    /// kvm-pvm: paravirtualized KVM without VT-x/AMD-V.
    Pvm,
    /// KVM is there but we could not tell which kind.
    Unknown,
}

/// The outcome of [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmProbe {
    /// ringside can create a VM on this host.
    pub available: bool,
    /// Why not, in words a user can act on (`None` when available).
    pub reason: Option<String>,
    /// Human-readable flavour, e.g. "VT-x" or
    /// "kvm-pvm (no VT-x/AMD-V: paravirtualized nested KVM)".
    pub flavour: String,
    /// The same, as a value.
    pub kind: KvmFlavour,
    /// The host kernel runs under a hypervisor (cpuinfo `hypervisor` flag):
    /// this KVM is nested.
    pub nested: bool,
}

impl KvmProbe {
    /// A short tag for summaries: "VT-x", "AMD-V", "kvm-pvm, no VT-x/AMD-V".
    pub fn short(&self) -> String {
        let base = match self.kind {
            KvmFlavour::VtX => "VT-x",
            KvmFlavour::AmdV => "AMD-V",
            KvmFlavour::Pvm => return "kvm-pvm, no VT-x/AMD-V".to_string(),
            KvmFlavour::Unknown => "unknown flavour",
        };
        if self.nested {
            format!("{base}, nested")
        } else {
            base.to_string()
        }
    }
}

/// What the host tells us about its virtualization support.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HostFacts {
    pub pvm_module: bool,
    pub intel_module: bool,
    pub amd_module: bool,
    pub cpu_vmx: bool,
    pub cpu_svm: bool,
    pub cpu_hypervisor: bool,
}

impl HostFacts {
    /// Read `/sys/module` and the first `flags` line of `/proc/cpuinfo`.
    pub fn read() -> Self {
        let module = |name: &str| Path::new("/sys/module").join(name).exists();
        let flags = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("flags"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").to_string())
            })
            .unwrap_or_default();
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        HostFacts {
            pvm_module: module("kvm_pvm"),
            intel_module: module("kvm_intel"),
            amd_module: module("kvm_amd"),
            cpu_vmx: has("vmx"),
            cpu_svm: has("svm"),
            cpu_hypervisor: has("hypervisor"),
        }
    }

    /// The heuristic described in the module documentation.
    pub fn flavour(&self) -> KvmFlavour {
        let hw_module = self.intel_module || self.amd_module;
        if self.pvm_module && !hw_module {
            KvmFlavour::Pvm
        } else if self.intel_module {
            KvmFlavour::VtX
        } else if self.amd_module {
            KvmFlavour::AmdV
        } else if self.cpu_vmx {
            KvmFlavour::VtX
        } else if self.cpu_svm {
            KvmFlavour::AmdV
        } else if self.pvm_module {
            KvmFlavour::Pvm
        } else {
            KvmFlavour::Unknown
        }
    }
}

fn flavour_text(kind: KvmFlavour, nested: bool) -> String {
    let nested_note = if nested {
        " (nested: the host kernel is itself a guest)"
    } else {
        ""
    };
    match kind {
        KvmFlavour::VtX => format!("VT-x{nested_note}"),
        KvmFlavour::AmdV => format!("AMD-V{nested_note}"),
        KvmFlavour::Pvm => "kvm-pvm (no VT-x/AMD-V: paravirtualized nested KVM)".to_string(),
        KvmFlavour::Unknown => format!("unknown KVM flavour{nested_note}"),
    }
}

/// Explain a failed `open("/dev/kvm")`.
fn open_error_reason(err: &vmm_sys_util::errno::Error) -> String {
    match err.errno() {
        libc::ENOENT => "/dev/kvm does not exist (KVM module not loaded, or the device \
                         is not exposed to this container)"
            .to_string(),
        libc::EACCES | libc::EPERM => {
            "permission denied opening /dev/kvm (add your user to the kvm group)".to_string()
        }
        libc::ENXIO | libc::ENODEV => {
            "/dev/kvm exists but no KVM module backs it (is virtualization disabled in the \
             firmware?)"
                .to_string()
        }
        _ => format!("cannot open /dev/kvm: {err}"),
    }
}

/// Open `/dev/kvm` and check it is a KVM we can drive. Returns the handle and
/// the probe result; the handle is `None` exactly when `available` is false.
pub(crate) fn open() -> (Option<Kvm>, KvmProbe) {
    let facts = HostFacts::read();
    let kind = facts.flavour();
    let nested = facts.cpu_hypervisor || kind == KvmFlavour::Pvm;
    let mut probe = KvmProbe {
        available: false,
        reason: None,
        flavour: flavour_text(kind, nested),
        kind,
        nested,
    };
    let kvm = match Kvm::new() {
        Ok(k) => k,
        Err(e) => {
            probe.reason = Some(open_error_reason(&e));
            return (None, probe);
        }
    };
    let version = kvm.get_api_version();
    if version != KVM_API_VERSION {
        probe.reason = Some(format!(
            "KVM API version mismatch: /dev/kvm reports {version}, ringside needs \
             {KVM_API_VERSION}"
        ));
        return (None, probe);
    }
    // Creating (and at once dropping) a VM catches hosts where the module is
    // loaded but cannot run guests.
    if let Err(e) = kvm.create_vm() {
        probe.reason = Some(format!("/dev/kvm opened but KVM_CREATE_VM failed: {e}"));
        return (None, probe);
    }
    probe.available = true;
    (Some(kvm), probe)
}

/// Can ringside use KVM here? Never fails: the answer says why not.
pub fn probe() -> KvmProbe {
    open().1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavour_heuristic() {
        let pvm = HostFacts {
            pvm_module: true,
            cpu_hypervisor: true,
            ..HostFacts::default()
        };
        assert_eq!(pvm.flavour(), KvmFlavour::Pvm);
        let vtx = HostFacts {
            intel_module: true,
            cpu_vmx: true,
            ..HostFacts::default()
        };
        assert_eq!(vtx.flavour(), KvmFlavour::VtX);
        // kvm_pvm loaded next to kvm_amd: the hardware module backs /dev/kvm.
        let both = HostFacts {
            pvm_module: true,
            amd_module: true,
            ..HostFacts::default()
        };
        assert_eq!(both.flavour(), KvmFlavour::AmdV);
        // /sys hidden: fall back to cpuinfo flags.
        let flags_only = HostFacts {
            cpu_svm: true,
            ..HostFacts::default()
        };
        assert_eq!(flags_only.flavour(), KvmFlavour::AmdV);
        assert_eq!(HostFacts::default().flavour(), KvmFlavour::Unknown);
    }

    #[test]
    fn probe_is_consistent() {
        let p = probe();
        assert_eq!(p.available, p.reason.is_none(), "{p:?}");
        assert!(!p.flavour.is_empty());
    }

    #[test]
    fn open_errors_are_actionable() {
        let e = vmm_sys_util::errno::Error::new(libc::EACCES);
        assert!(open_error_reason(&e).contains("kvm group"));
        let e = vmm_sys_util::errno::Error::new(libc::ENOENT);
        assert!(open_error_reason(&e).contains("does not exist"));
    }
}
