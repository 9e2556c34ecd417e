//! Every image, on every backend, gives byte-identical serial output and
//! exit status 1 (guest exit code 0): ringside tcg, ringside kvm, QEMU tcg,
//! QEMU kvm.
//!
//! One documented exception: on a kvm-pvm host (nested, paravirtualized KVM
//! without VT-x), some instructions don't behave architecturally for
//! non-PVM-aware guests, under QEMU exactly as under ringside. For the
//! images listed in [`PVM_HOST_LIMITS`] the test then requires that
//! ringside kvm and QEMU kvm agree with *each other* byte for byte (the
//! real host CPU is the oracle), and says so on stderr.

mod common;
use common::*;

/// Images that kvm-pvm can't run architecturally, and why.
const PVM_HOST_LIMITS: &[(&str, &str)] = &[(
    "rings",
    "kvm-pvm: SYSCALL from ring 3 stays in ring 3 (the guest is not PVM-aware)",
)];

/// Why this image can't pass on this host's KVM, if it is a known limit.
fn kvm_host_limit(name: &str) -> Option<&'static str> {
    PVM_HOST_LIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
        .filter(|_| host_is_pvm())
}

fn check_image(name: &str) {
    let kernel = image(name);
    let k = kernel.to_str().expect("utf-8 path");
    let tcg = ringside_run(&[
        "--accel",
        "tcg",
        "--kernel",
        k,
        "--no-stdin",
        "--timeout",
        "240",
    ]);
    let tcg_out = String::from_utf8_lossy(&tcg.stdout).to_string();
    assert_eq!(
        tcg.status.code(),
        Some(1),
        "{name} on ringside tcg: status {:?}\nstdout:\n{tcg_out}\nstderr:\n{}",
        tcg.status,
        String::from_utf8_lossy(&tcg.stderr)
    );

    let qemu = qemu_unavailable();
    if let Some(why) = &qemu {
        eprintln!("skipping QEMU comparison for {name}: {why}");
    } else {
        let q = qemu_run(&kernel, "tcg");
        assert_status_1(name, "QEMU tcg", &q);
        assert_same(name, "QEMU tcg", &q.stdout, &tcg_out);
    }

    if let Some(why) = kvm_unavailable() {
        eprintln!("skipping kvm runs of {name}: {why}");
        return;
    }
    let kvm = ringside_run(&[
        "--accel",
        "kvm",
        "--kernel",
        k,
        "--no-stdin",
        "--timeout",
        "240",
    ]);
    let qkvm = qemu.is_none().then(|| qemu_run(&kernel, "kvm"));
    match kvm_host_limit(name) {
        None => {
            assert_status_1(name, "ringside kvm", &kvm);
            assert_same(name, "ringside kvm", &kvm.stdout, &tcg_out);
            if let Some(q) = qkvm {
                assert_status_1(name, "QEMU kvm", &q);
                assert_same(name, "QEMU kvm", &q.stdout, &tcg_out);
            }
        }
        Some(why) => {
            eprintln!(
                "{name}: host limit on this KVM ({why}); checking that ringside kvm matches QEMU kvm instead"
            );
            if let Some(q) = qkvm {
                assert_eq!(
                    kvm.status.code(),
                    q.status.code(),
                    "{name}: ringside kvm and QEMU kvm end differently on this host"
                );
                assert_same(
                    name,
                    "ringside kvm (vs QEMU kvm)",
                    &kvm.stdout,
                    &String::from_utf8_lossy(&q.stdout),
                );
            }
        }
    }
}

fn assert_status_1(name: &str, who: &str, out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name} on {who}: status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_same(name: &str, who: &str, out: &[u8], reference: &str) {
    assert_eq!(
        String::from_utf8_lossy(out),
        reference,
        "{name}: serial output of {who} differs"
    );
}

#[test]
fn hello() {
    check_image("hello");
}
#[test]
fn modes() {
    check_image("modes");
}
#[test]
fn rings() {
    check_image("rings");
}
#[test]
fn paging() {
    check_image("paging");
}
#[test]
fn timer() {
    check_image("timer");
}
#[test]
fn compute() {
    check_image("compute");
}
#[test]
fn multiboot() {
    check_image("multiboot");
}
#[test]
fn syscall() {
    check_image("syscall");
}
#[test]
fn ptupdate() {
    check_image("ptupdate");
}
#[test]
fn ctxswitch() {
    check_image("ctxswitch");
}
#[test]
fn irq() {
    check_image("irq");
}

#[test]
fn image_list_is_complete() {
    // Every image the Makefile builds is covered by a test above.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("images/build");
    let mut built: Vec<String> = std::fs::read_dir(&dir)
        .expect("images/build exists")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.strip_suffix(".elf").map(str::to_string)
        })
        .collect();
    built.sort();
    let mut listed: Vec<String> = IMAGES
        .iter()
        .chain(LAB_IMAGES)
        .map(|s| s.to_string())
        .collect();
    listed.sort();
    assert_eq!(built, listed);
}
