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
//!
//! The device opened is `/dev/kvm`, or the path in the environment
//! variable [`KVM_DEVICE_ENV`] (`RINGSIDE_KVM_DEVICE`) when it is set and
//! not empty. That lets the "KVM is unavailable" path be exercised on a
//! host that has KVM (`RINGSIDE_KVM_DEVICE=/nonexistent/kvm`), and lets a
//! user point ringside at a KVM device node that lives elsewhere (in a
//! container, say). The flavour detection above is independent of it.

use kvm_ioctls::Kvm;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The environment variable naming the KVM device to open instead of
/// [`DEFAULT_KVM_DEVICE`].
pub const KVM_DEVICE_ENV: &str = "RINGSIDE_KVM_DEVICE";

/// The KVM device node, unless [`KVM_DEVICE_ENV`] says otherwise.
pub const DEFAULT_KVM_DEVICE: &str = "/dev/kvm";

/// The KVM device ringside opens: `$RINGSIDE_KVM_DEVICE` if set and not
/// empty, else `/dev/kvm`.
pub fn kvm_device_path() -> PathBuf {
    device_path_from(std::env::var_os(KVM_DEVICE_ENV))
}

fn device_path_from(var: Option<OsString>) -> PathBuf {
    match var {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_KVM_DEVICE),
    }
}

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

/// Explain a failed `open()` of the KVM device at `path`.
fn open_error_reason(path: &Path, err: &vmm_sys_util::errno::Error) -> String {
    let path = path.display();
    match err.errno() {
        libc::ENOENT | libc::ENOTDIR => format!(
            "{path} does not exist (KVM module not loaded, or the device is not exposed \
             to this container)"
        ),
        libc::EACCES | libc::EPERM => {
            format!("permission denied opening {path} (add your user to the kvm group)")
        }
        libc::ENXIO | libc::ENODEV => format!(
            "{path} exists but no KVM module backs it (is virtualization disabled in the \
             firmware?)"
        ),
        _ => format!("cannot open {path}: {err}"),
    }
}

/// Open the KVM device ([`kvm_device_path`]) and check it is a KVM we can
/// drive. Returns the handle and the probe result; the handle is `None`
/// exactly when `available` is false.
pub(crate) fn open() -> (Option<Kvm>, KvmProbe) {
    let path = kvm_device_path();
    let (kvm, mut probe) = open_at(&path);
    if path != Path::new(DEFAULT_KVM_DEVICE) {
        // Someone who forgot the variable is set should not go looking
        // for a broken /dev/kvm.
        if let Some(why) = probe.reason.as_mut() {
            why.push_str(&format!(" [device from {KVM_DEVICE_ENV}]"));
        }
    }
    (kvm, probe)
}

fn open_at(path: &Path) -> (Option<Kvm>, KvmProbe) {
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
    // Paths from the environment cannot hold NUL bytes, but say so rather
    // than assume it.
    let Ok(cpath) = CString::new(path.as_os_str().to_owned().into_vec()) else {
        probe.reason = Some(format!(
            "{KVM_DEVICE_ENV} names a path with a NUL byte: {}",
            path.display()
        ));
        return (None, probe);
    };
    let kvm = match Kvm::new_with_path(&cpath) {
        Ok(k) => k,
        Err(e) => {
            probe.reason = Some(open_error_reason(path, &e));
            return (None, probe);
        }
    };
    let version = kvm.get_api_version();
    if version != KVM_API_VERSION {
        probe.reason = Some(format!(
            "KVM API version mismatch: {} reports {version}, ringside needs \
             {KVM_API_VERSION}",
            path.display()
        ));
        return (None, probe);
    }
    // Creating (and at once dropping) a VM catches hosts where the module is
    // loaded but cannot run guests (and device nodes that are not KVM).
    if let Err(e) = kvm.create_vm() {
        probe.reason = Some(format!(
            "{} opened but KVM_CREATE_VM failed: {e}",
            path.display()
        ));
        return (None, probe);
    }
    probe.available = true;
    (Some(kvm), probe)
}

/// Can ringside use KVM here? Never fails: the answer says why not.
///
/// Opens `/dev/kvm`, or `$RINGSIDE_KVM_DEVICE` when that is set and not
/// empty ([`kvm_device_path`]); `RINGSIDE_KVM_DEVICE=/nonexistent/kvm`
/// shows what ringside does on a host without KVM.
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
        let dev = Path::new("/dev/kvm");
        let e = vmm_sys_util::errno::Error::new(libc::EACCES);
        assert!(open_error_reason(dev, &e).contains("kvm group"));
        let e = vmm_sys_util::errno::Error::new(libc::ENOENT);
        let r = open_error_reason(dev, &e);
        assert!(r.starts_with("/dev/kvm does not exist"), "{r}");
    }

    #[test]
    fn device_path_defaults_to_dev_kvm() {
        assert_eq!(device_path_from(None), Path::new("/dev/kvm"));
        assert_eq!(device_path_from(Some("".into())), Path::new("/dev/kvm"));
        assert_eq!(
            device_path_from(Some("/tmp/kvm0".into())),
            Path::new("/tmp/kvm0")
        );
    }

    #[test]
    fn missing_device_is_unavailable_and_named() {
        let (kvm, p) = open_at(Path::new("/nonexistent/kvm"));
        assert!(kvm.is_none());
        assert!(!p.available);
        let why = p.reason.unwrap_or_default();
        assert!(why.starts_with("/nonexistent/kvm does not exist"), "{why}");
    }

    #[test]
    fn a_device_that_is_not_kvm_is_unavailable() {
        // /dev/null opens, but is no KVM: the API version ioctl fails.
        let (kvm, p) = open_at(Path::new("/dev/null"));
        assert!(kvm.is_none());
        assert!(!p.available);
        assert!(p.reason.unwrap_or_default().contains("/dev/null"));
    }
}
