//! The virtualization lab (issue 4), end to end through `ringside compare`:
//!
//! 1. every workload gives the same checksum in none, full, para, hw and
//!    kvm (kvm skipped, with the reason, where /dev/kvm is missing);
//! 2. the shapes the numbers must show, as inequalities;
//! 3. `hole` passes everything under full and fails the documented checks
//!    under trap-only.

mod common;
use common::*;
use serde_json::Value;
use std::time::Duration;

/// The workloads of issue 4 (each also has a NAME-pv.elf build).
const WORKLOADS: &[&str] = &[
    "syscall",
    "ptupdate",
    "ctxswitch",
    "irq",
    "io-emulated",
    "io-virtio",
    "compute",
    "hole",
];

/// Run `ringside compare --json` and return its document.
fn compare(name: &str, modes: &[&str]) -> Value {
    let kernel = image(name);
    let mut modes: Vec<&str> = modes.to_vec();
    if let Some(why) = kvm_unavailable() {
        if modes.contains(&"kvm") {
            eprintln!("{name}: skipping the kvm column: {why}");
            modes.retain(|m| *m != "kvm");
        }
    }
    let out = run_bounded(
        std::process::Command::new(ringside()).args([
            "compare",
            "--kernel",
            kernel.to_str().expect("utf-8 path"),
            "--modes",
            &modes.join(","),
            "--timeout",
            "200",
            "--json",
        ]),
        Duration::from_secs(900),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{name}: compare --json is not JSON ({e}):\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The entry for `mode`.
fn mode<'a>(doc: &'a Value, m: &str) -> &'a Value {
    doc["modes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["mode"] == m))
        .unwrap_or_else(|| panic!("mode {m} missing in {doc}"))
}

fn traps(doc: &Value, m: &str, key: &str) -> u64 {
    mode(doc, m)["traps"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{m}: no traps.{key} in {}", mode(doc, m)))
}

fn has(doc: &Value, m: &str) -> bool {
    doc["modes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["mode"] == m))
}

/// Every mode ran to a clean exit (status 1) with one checksum.
fn assert_same_checksum(name: &str, doc: &Value) {
    let mut sums = Vec::new();
    for m in doc["modes"].as_array().expect("modes") {
        assert_eq!(
            m["exit_code"], 1,
            "{name} under {}: {} ({})",
            m["mode"], m["status"], m["error"]
        );
        let sum = m["checksum"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} under {}: no checksum line", m["mode"]));
        sums.push((m["mode"].to_string(), sum.to_string()));
    }
    let first = &sums[0].1;
    for (m, s) in &sums {
        assert_eq!(
            s, first,
            "{name}: checksum under {m} differs from {}",
            sums[0].0
        );
    }
}

fn check_workload(name: &str) -> Value {
    let doc = compare(name, &["none", "full", "para", "hw", "kvm"]);
    assert_same_checksum(name, &doc);
    doc
}

#[test]
fn syscall_same_everywhere() {
    check_workload("syscall");
}

#[test]
fn ctxswitch_same_everywhere() {
    check_workload("ctxswitch");
}

#[test]
fn irq_same_everywhere() {
    check_workload("irq");
}

#[test]
fn ptupdate_para_batches_and_hw_has_no_pt_traps() {
    let doc = check_workload("ptupdate");
    let full = traps(&doc, "full", "total");
    let para = traps(&doc, "para", "total");
    assert!(
        para * 10 <= full,
        "ptupdate: para made {para} traps, full {full}: paravirtual batching should save at least 10x"
    );
    assert_eq!(
        traps(&doc, "hw", "pt_write"),
        0,
        "hw: page-table writes must not exit"
    );
    assert!(
        traps(&doc, "full", "pt_write") > 0,
        "full must trap page-table writes"
    );
}

#[test]
fn compute_makes_almost_no_traps() {
    let doc = check_workload("compute");
    for m in doc["modes"].as_array().expect("modes") {
        let Some(t) = m["traps"].as_object() else {
            continue;
        };
        let insns = m["instructions"].as_u64().unwrap_or(u64::MAX);
        let total = t["total"].as_u64().unwrap_or(0);
        let io = t["io"].as_u64().unwrap_or(0);
        // The banner and result lines go out byte by byte through COM1
        // (two port accesses a byte); everything else is the boot path.
        assert!(
            total - io <= 500,
            "compute under {}: {} non-I/O traps",
            m["mode"],
            total - io
        );
        if insns != u64::MAX {
            assert!(
                total * 10_000 < insns,
                "compute under {}: {total} traps for {insns} instructions",
                m["mode"]
            );
        }
    }
}

#[test]
fn virtio_makes_20x_fewer_exits_than_emulated_io() {
    let emu = check_workload("io-emulated");
    let vio = check_workload("io-virtio");
    for m in ["full", "para", "hw", "kvm"] {
        if !has(&emu, m) {
            continue;
        }
        let e = traps(&emu, m, "io") + traps(&emu, m, "mmio");
        let v = traps(&vio, m, "io") + traps(&vio, m, "mmio");
        assert!(
            v * 20 <= e,
            "{m}: io-virtio made {v} device exits, io-emulated {e}: expected at least 20x fewer"
        );
    }
}

#[test]
fn hw_walks_are_two_dimensional() {
    let doc = compare("ptupdate", &["none", "hw"]);
    let per = |m: &str| {
        mode(&doc, m)["refs_per_miss"]
            .as_f64()
            .expect("refs_per_miss")
    };
    let (none, hw) = (per("none"), per("hw"));
    assert!(
        hw <= 24.0,
        "hw: {hw} references per miss (4-level over 4-level is at most 24)"
    );
    assert!(
        hw > none,
        "hw ({hw}) must make more references per miss than none ({none})"
    );
}

#[test]
fn hole_passes_under_full_and_shows_under_trap_only() {
    let k = image("hole");
    let k = k.to_str().expect("utf-8 path");
    let full = ringside_run(&[
        "--kernel",
        k,
        "--virt",
        "full",
        "--no-stdin",
        "--timeout",
        "120",
    ]);
    let text = String::from_utf8_lossy(&full.stdout);
    assert_eq!(full.status.code(), Some(1), "hole under full:\n{text}");
    assert!(!text.contains("FAIL"), "hole under full:\n{text}");

    let trap = ringside_run(&[
        "--kernel",
        k,
        "--virt",
        "trap-only",
        "--no-stdin",
        "--timeout",
        "120",
    ]);
    let text = String::from_utf8_lossy(&trap.stdout);
    assert_eq!(
        trap.status.code(),
        Some(3),
        "hole under trap-only must fail:\n{text}"
    );
    // The documented failures (images/README.md): what the deprivileged
    // kernel sees through the non-trapping sensitive instructions.
    for what in [
        "pushfq",
        "popfq",
        "sgdt",
        "sidt",
        "str:",
        "mov from cs",
        "lar",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("FAIL") && l.to_lowercase().contains(what)),
            "hole under trap-only should name a failed '{what}' check:\n{text}"
        );
    }
}

/// Acceptance 6: a guest PTE pointing past the guest's memory reaches no
/// machine frame, in any mode. `escape` maps frames past its RAM, reads
/// (all-ones), writes, reads again (still all-ones), and checks that its
/// own last RAM page is intact. Under the monitors those machine addresses
/// would be the monitor's own frames or nothing at all.
#[test]
fn escape_reaches_no_frame_outside_the_p2m() {
    let k = image("escape");
    let k = k.to_str().expect("utf-8 path");
    let mut runs: Vec<Vec<&str>> = ["none", "full", "trap-only", "para", "hw"]
        .iter()
        .map(|m| vec!["--virt", m])
        .collect();
    match kvm_unavailable() {
        None => runs.push(vec!["--accel", "kvm"]),
        Some(why) => eprintln!("escape: skipping kvm: {why}"),
    }
    let expected = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("images/expected/escape.txt"),
    )
    .expect("expected/escape.txt");
    for how in runs {
        let mut args = vec!["--kernel", k, "--no-stdin", "--timeout", "120", "-m", "64"];
        args.extend_from_slice(&how);
        let out = ringside_run(&args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "escape with {how:?}:\n{text}");
        assert_eq!(out.stdout, expected, "escape with {how:?}:\n{text}");
    }
}

/// Every workload is built in both flavours from one source, and has a
/// reference output (the pv flavour must print the same).
#[test]
fn every_workload_has_both_flavours() {
    for w in WORKLOADS {
        let native = image(w);
        let pv = native.with_file_name(format!("{w}-pv.elf"));
        if *w != "hole" {
            assert!(pv.exists(), "{} is missing", pv.display());
        }
        let expected = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("images/expected")
            .join(format!("{w}.txt"));
        assert!(expected.exists(), "{} is missing", expected.display());
    }
}
