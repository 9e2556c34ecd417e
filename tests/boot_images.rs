//! Every image, on every backend, gives byte-identical serial output and
//! exit status 1 (guest exit code 0): ringside tcg, ringside kvm, QEMU tcg,
//! QEMU kvm. QEMU's output is the reference.

mod common;
use common::*;

fn check_image(name: &str) {
    let kernel = image(name);
    let k = kernel.to_str().expect("utf-8 path");
    let tcg = ringside_run(&["--accel", "tcg", "--kernel", k, "--no-stdin", "--timeout", "240"]);
    let tcg_out = String::from_utf8_lossy(&tcg.stdout).to_string();
    assert_eq!(
        tcg.status.code(),
        Some(1),
        "{name} on ringside tcg: status {:?}\nstdout:\n{tcg_out}\nstderr:\n{}",
        tcg.status,
        String::from_utf8_lossy(&tcg.stderr)
    );

    let mut reference = Vec::new();
    match qemu_unavailable() {
        Some(why) => eprintln!("skipping QEMU comparison for {name}: {why}"),
        None => {
            for accel in ["tcg", "kvm"] {
                if accel == "kvm" {
                    if let Some(why) = kvm_unavailable() {
                        eprintln!("skipping QEMU kvm for {name}: {why}");
                        continue;
                    }
                }
                let q = qemu_run(&kernel, accel);
                assert_eq!(
                    q.status.code(),
                    Some(1),
                    "{name} on QEMU {accel}: status {:?}\nstdout:\n{}\nstderr:\n{}",
                    q.status,
                    String::from_utf8_lossy(&q.stdout),
                    String::from_utf8_lossy(&q.stderr)
                );
                reference.push((format!("QEMU {accel}"), q.stdout));
            }
        }
    }

    match kvm_unavailable() {
        Some(why) => eprintln!("skipping ringside kvm for {name}: {why}"),
        None => {
            let kvm = ringside_run(&["--accel", "kvm", "--kernel", k, "--no-stdin", "--timeout", "240"]);
            assert_eq!(
                kvm.status.code(),
                Some(1),
                "{name} on ringside kvm: status {:?}\nstdout:\n{}\nstderr:\n{}",
                kvm.status,
                String::from_utf8_lossy(&kvm.stdout),
                String::from_utf8_lossy(&kvm.stderr)
            );
            reference.push(("ringside kvm".into(), kvm.stdout));
        }
    }

    for (who, out) in reference {
        assert_eq!(
            String::from_utf8_lossy(&out),
            tcg_out,
            "{name}: serial output of {who} differs from ringside tcg"
        );
    }
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
    let mut listed: Vec<String> = IMAGES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(built, listed);
}
