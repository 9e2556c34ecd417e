//! `ringside run --accel lockstep`: guests run on the interpreter and on
//! KVM together, compared instruction by instruction; a clean guest ends
//! with "0 divergences". Skipped (with the reason) without /dev/kvm.

mod common;

use common::*;

/// The summary's lockstep counters, from stderr.
fn lockstep_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("lockstep:"))
        .unwrap_or_else(|| panic!("no lockstep summary in:\n{stderr}"))
}

#[test]
fn hello_runs_clean_under_lockstep() {
    if let Some(why) = kvm_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let img = image("hello");
    let out = ringside_run(&["--kernel", img.to_str().unwrap(), "--accel", "lockstep"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("hello: PASS"), "{stdout}");
    let line = lockstep_line(&stderr);
    assert!(line.contains(" 0 divergences"), "{line}");
    eprintln!("{line}");
}

#[test]
fn compute_start_runs_clean_under_lockstep() {
    if let Some(why) = kvm_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    // The kernel part (boot, SHA-256 test vectors) single-stepped, then the
    // first ring-3 job until the instruction limit (a stretch KVM can't be
    // stopped inside: counted as oracle-unavailable).
    let img = image("compute");
    let out = ringside_run(&[
        "--kernel",
        img.to_str().unwrap(),
        "--accel",
        "lockstep",
        "--max-insns",
        "150000",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(24), "{stderr}");
    let line = lockstep_line(&stderr);
    assert!(line.contains(" 0 divergences"), "{line}");
    eprintln!("{line}");
}

#[test]
fn lockstep_without_kvm_is_a_usage_error() {
    let img = image("hello");
    let out = ringside_run_env(
        &["--kernel", img.to_str().unwrap(), "--accel", "lockstep"],
        &[("RINGSIDE_KVM_DEVICE", "/nonexistent/kvm")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kvm"), "{stderr}");
}
