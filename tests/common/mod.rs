//! Shared helpers for the integration tests: where the binary and images
//! are, whether KVM and QEMU are usable, and running a guest with a bound.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The ringside binary built for this test run.
pub fn ringside() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ringside"))
}

/// Path of a guest image built by images/Makefile.
pub fn image(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("images/build")
        .join(format!("{name}.elf"));
    assert!(
        p.exists(),
        "{} is missing: the build should have made it (make -C images)",
        p.display()
    );
    p
}

/// The guest images every backend runs and QEMU checks (tests/boot_images.rs).
pub const IMAGES: &[&str] = &[
    "hello",
    "modes",
    "rings",
    "paging",
    "timer",
    "compute",
    "multiboot",
    "syscall",
    "ptupdate",
    "ctxswitch",
    "irq",
];

/// The virtualization lab's images that QEMU can't be the reference for,
/// checked by tests/virt_modes.rs instead: the virtio and ATA workloads
/// (QEMU's pc machine has no virtio-mmio at ringside's addresses and no
/// disk by default), `hole` (kvm-pvm's emulator gives up on LAR in ring
/// 0), `escape` (QEMU 7.2 reads 0, not all-ones, where nothing decodes),
/// and the paravirtual builds (they need ringside's monitor).
pub const LAB_IMAGES: &[&str] = &[
    "io-emulated",
    "io-virtio",
    "hole",
    "escape",
    "compute-pv",
    "syscall-pv",
    "ptupdate-pv",
    "ctxswitch-pv",
    "irq-pv",
    "io-emulated-pv",
    "io-virtio-pv",
];

/// Why KVM can't be used here, or None if it can.
pub fn kvm_unavailable() -> Option<String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/kvm is not usable ({e})")),
    }
}

/// Is /dev/kvm here kvm-pvm (nested, paravirtualized, no VT-x)? `ringside
/// info` says which flavour it found.
pub fn host_is_pvm() -> bool {
    Command::new(ringside())
        .arg("info")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("kvm-pvm"))
        .unwrap_or(false)
}

/// Why QEMU can't be used here, or None if it can.
pub fn qemu_unavailable() -> Option<String> {
    match Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        _ => Some("qemu-system-x86_64 is not installed (scripts/deps.sh installs it)".into()),
    }
}

/// Run a command with stdin closed, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{:?} did not finish within {:?}\nstdout: {}\nstderr: {}",
                cmd,
                limit,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// `ringside run` with the given extra arguments.
pub fn ringside_run(args: &[&str]) -> Output {
    let mut cmd = Command::new(ringside());
    cmd.arg("run").args(args);
    run_bounded(&mut cmd, Duration::from_secs(300))
}

/// `ringside run` with the given extra arguments and environment
/// variables set for the child.
pub fn ringside_run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(ringside());
    cmd.arg("run").args(args).envs(env.iter().copied());
    run_bounded(&mut cmd, Duration::from_secs(300))
}

/// QEMU with the reference command line of the foundation issue.
pub fn qemu_run(kernel: &Path, accel: &str) -> Output {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", accel, "-kernel"]).arg(kernel).args([
        "-nodefaults",
        "-serial",
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=4",
        "-display",
        "none",
    ]);
    run_bounded(&mut cmd, Duration::from_secs(300))
}

/// A temporary directory for a test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "ringside-test-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("tempdir");
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
