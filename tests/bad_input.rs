//! Every bad-input case ends with one line on stderr and its documented,
//! distinct exit status — and nothing a kernel file or a guest does makes
//! ringside panic or hang.

mod common;
use common::*;
use iced_x86::code_asm::*;
use std::process::{Command, Output};
use std::time::Duration;

/// Statuses from README "Exit statuses".
const USAGE: i32 = 2;
const FILE: i32 = 4;
const FORMAT: i32 = 6;
const FIT: i32 = 8;
const MEMORY: i32 = 10;
const TRIPLE_FAULT: i32 = 20;
const DEAD_HALT: i32 = 22;
const INSN_LIMIT: i32 = 24;
const TIMEOUT: i32 = 26;

/// The run failed with `status` and exactly one line on stderr (the summary
/// is suppressed with --quiet), which starts with "ringside:".
fn assert_one_line_error(out: &Output, status: i32, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(status),
        "{what}: expected status {status}, got {:?}; stderr:\n{err}",
        out.status
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one line on stderr, got:\n{err}"
    );
    assert!(lines[0].starts_with("ringside:"), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    err
}

/// Assemble 16-bit real-mode code loaded at 0x7c00.
fn real_mode(build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(16).expect("assembler");
    build(&mut a).expect("assemble");
    a.assemble(0x7c00).expect("encode")
}

fn write_flat(dir: &TempDir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_str().expect("utf-8").to_string()
}

#[test]
fn missing_kernel() {
    let out = ringside_run(&[
        "--kernel",
        "/nonexistent/kernel.elf",
        "--quiet",
        "--no-stdin",
    ]);
    let err = assert_one_line_error(&out, FILE, "missing kernel");
    assert!(err.contains("/nonexistent/kernel.elf"), "{err}");
}

#[test]
fn unreadable_kernel() {
    // A directory can't be read as a file, even by root.
    let dir = TempDir::new("unreadable");
    let d = dir.0.to_str().unwrap().to_string();
    let out = ringside_run(&["--kernel", &d, "--quiet", "--no-stdin"]);
    assert_one_line_error(&out, FILE, "unreadable kernel");
}

#[test]
fn not_an_elf() {
    let dir = TempDir::new("notelf");
    let k = write_flat(&dir, "k.txt", b"this is not a kernel\n");
    let out = ringside_run(&["--kernel", &k, "--quiet", "--no-stdin"]);
    let err = assert_one_line_error(&out, FORMAT, "not an ELF");
    assert!(
        err.contains("--flat-addr"),
        "the error should point at --flat-addr: {err}"
    );
}

#[test]
fn truncated_elf() {
    let dir = TempDir::new("trunc");
    let full = std::fs::read(image("hello")).unwrap();
    for cut in [16usize, 63, 64, 100, full.len() / 2, full.len() - 1] {
        let k = write_flat(&dir, &format!("k{cut}.elf"), &full[..cut]);
        let out = ringside_run(&["--kernel", &k, "--quiet", "--no-stdin"]);
        assert_one_line_error(&out, FORMAT, &format!("ELF truncated at {cut}"));
    }
}

/// Patch the physical address of the first PT_LOAD of an ELF64 file.
fn relocate_first_load(elf: &mut [u8], paddr: u64, memsz: Option<u64>) {
    let rd = |b: &[u8], o: usize, n: usize| {
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&b[o..o + n]);
        u64::from_le_bytes(v)
    };
    assert_eq!(elf[4], 2, "test expects an ELF64 image");
    let phoff = rd(elf, 0x20, 8) as usize;
    let phentsize = rd(elf, 0x36, 2) as usize;
    let phnum = rd(elf, 0x38, 2) as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if rd(elf, ph, 4) == 1 {
            elf[ph + 0x18..ph + 0x20].copy_from_slice(&paddr.to_le_bytes());
            elf[ph + 0x10..ph + 0x18].copy_from_slice(&paddr.to_le_bytes());
            if let Some(m) = memsz {
                elf[ph + 0x28..ph + 0x30].copy_from_slice(&m.to_le_bytes());
            }
            return;
        }
    }
    panic!("no PT_LOAD");
}

#[test]
fn segment_outside_ram() {
    let dir = TempDir::new("outside");
    let mut elf = std::fs::read(image("hello")).unwrap();
    relocate_first_load(&mut elf, 0x7000_0000, None);
    let k = write_flat(&dir, "k.elf", &elf);
    let out = ringside_run(&["--kernel", &k, "-m", "128M", "--quiet", "--no-stdin"]);
    assert_one_line_error(&out, FIT, "segment outside RAM");
}

#[test]
fn kernel_larger_than_ram() {
    let dir = TempDir::new("large");
    let mut elf = std::fs::read(image("hello")).unwrap();
    relocate_first_load(&mut elf, 0x10_0000, Some(64 << 20));
    let k = write_flat(&dir, "k.elf", &elf);
    let out = ringside_run(&["--kernel", &k, "-m", "16M", "--quiet", "--no-stdin"]);
    assert_one_line_error(&out, FIT, "kernel larger than RAM");
}

#[test]
fn bad_memory_sizes() {
    let k = image("hello");
    let k = k.to_str().unwrap();
    for m in ["12Q", "0", "abc", "1K", "3000000T"] {
        let out = ringside_run(&["--kernel", k, "-m", m, "--quiet", "--no-stdin"]);
        assert_one_line_error(&out, MEMORY, &format!("-m {m}"));
    }
}

/// `--accel kvm` without a usable KVM device: one line, status 2, on any
/// host (RINGSIDE_KVM_DEVICE points the probe at a path that does not
/// exist), and `ringside info` says why.
#[test]
fn kvm_unavailable_is_one_line_status_2() {
    let env = [("RINGSIDE_KVM_DEVICE", "/nonexistent/kvm")];
    let k = image("hello");
    let out = ringside_run_env(
        &[
            "--accel",
            "kvm",
            "--kernel",
            k.to_str().unwrap(),
            "--quiet",
            "--no-stdin",
        ],
        &env,
    );
    let err = assert_one_line_error(&out, USAGE, "--accel kvm without KVM");
    assert!(err.contains("kvm"), "{err}");
    assert!(
        err.contains("/nonexistent/kvm does not exist"),
        "the error should name the device and why: {err}"
    );
    assert!(err.contains("RINGSIDE_KVM_DEVICE"), "{err}");
    assert!(out.stdout.is_empty(), "the guest must not have run");

    let info = run_bounded(
        Command::new(ringside()).arg("info").envs(env),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&info.stdout);
    assert_eq!(info.status.code(), Some(0), "ringside info: {info:?}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("kvm "))
        .unwrap_or_else(|| panic!("no kvm line in `ringside info`:\n{text}"));
    assert!(line.contains("unavailable"), "{line}");
    assert!(line.contains("/nonexistent/kvm does not exist"), "{line}");
}

#[test]
fn bad_trace_category_is_a_usage_error() {
    let k = image("hello");
    let out = ringside_run(&[
        "--kernel",
        k.to_str().unwrap(),
        "--trace",
        "bogus",
        "--quiet",
    ]);
    assert_one_line_error(&out, USAGE, "--trace bogus");
}

#[test]
fn triple_fault() {
    let dir = TempDir::new("triple");
    // An IDT with limit 0: the first exception can't be delivered, nor the
    // #DF after it: the CPU shuts down.
    let code = real_mode(|a| {
        a.xor(ax, ax)?;
        a.mov(word_ptr(0x600), ax)?;
        a.mov(word_ptr(0x602), ax)?;
        a.mov(word_ptr(0x604), ax)?;
        a.lidt(word_ptr(0x600))?;
        a.int3()?;
        a.hlt()?;
        Ok(())
    });
    let k = write_flat(&dir, "tf.bin", &code);
    let out = ringside_run(&[
        "--kernel",
        &k,
        "--flat-addr",
        "0x7c00",
        "--quiet",
        "--no-stdin",
    ]);
    assert_one_line_error(&out, TRIPLE_FAULT, "triple fault on tcg");

    if let Some(why) = kvm_unavailable() {
        eprintln!("skipping the kvm leg: {why}");
        return;
    }
    let out = ringside_run(&[
        "--kernel",
        &k,
        "--flat-addr",
        "0x7c00",
        "--accel",
        "kvm",
        "--timeout",
        "10",
        "--quiet",
        "--no-stdin",
    ]);
    if out.status.code() == Some(TIMEOUT) && host_is_pvm() {
        // kvm-pvm emulates real mode itself and never reports this
        // shutdown (no KVM_EXIT_SHUTDOWN); --timeout still ends it cleanly.
        eprintln!("kvm leg: host limit (kvm-pvm does not exit on a real-mode triple fault); --timeout ended the run cleanly");
        assert_one_line_error(&out, TIMEOUT, "triple fault on kvm-pvm");
    } else {
        assert_one_line_error(&out, TRIPLE_FAULT, "triple fault on kvm");
    }
}

#[test]
fn halt_with_interrupts_off() {
    let dir = TempDir::new("deadhlt");
    let code = real_mode(|a| {
        a.cli()?;
        a.hlt()?;
        Ok(())
    });
    let k = write_flat(&dir, "hlt.bin", &code);
    let out = ringside_run(&[
        "--kernel",
        &k,
        "--flat-addr",
        "0x7c00",
        "--quiet",
        "--no-stdin",
    ]);
    let err = assert_one_line_error(&out, DEAD_HALT, "cli; hlt");
    assert!(err.contains("HLT"), "{err}");
}

#[test]
fn instruction_limit_and_timeout() {
    let dir = TempDir::new("limits");
    let code = real_mode(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.jmp(top)?;
        Ok(())
    });
    let k = write_flat(&dir, "spin.bin", &code);
    let out = ringside_run(&[
        "--kernel",
        &k,
        "--flat-addr",
        "0x7c00",
        "--max-insns",
        "100000",
        "--quiet",
        "--no-stdin",
    ]);
    assert_one_line_error(&out, INSN_LIMIT, "--max-insns");
    let out = ringside_run(&[
        "--kernel",
        &k,
        "--flat-addr",
        "0x7c00",
        "--timeout",
        "0.5",
        "--quiet",
        "--no-stdin",
    ]);
    assert_one_line_error(&out, TIMEOUT, "--timeout");
}

/// Random bytes as a real-mode program: whatever they do, ringside ends
/// with one of its statuses or a guest exit, never a panic or a hang.
#[test]
fn random_guests_never_break_the_emulator() {
    let dir = TempDir::new("fuzz");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..24 {
        let mut bytes = vec![0u8; 4096];
        for b in bytes.iter_mut() {
            // xorshift64*
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            *b = (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
        let k = write_flat(&dir, &format!("r{round}.bin"), &bytes);
        let out = ringside_run(&[
            "--kernel",
            &k,
            "--flat-addr",
            "0x7c00",
            "--max-insns",
            "200000",
            "--timeout",
            "20",
            "--quiet",
            "--no-stdin",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            code.is_some_and(
                |c| c % 2 == 1 || [TRIPLE_FAULT, DEAD_HALT, INSN_LIMIT, TIMEOUT, 32].contains(&c)
            ),
            "round {round}: status {:?}, stderr:\n{err}",
            out.status
        );
        assert!(!err.contains("panicked"), "round {round}: {err}");
    }
}

/// Random 32-bit protected-mode code under every monitor: a Multiboot
/// header (a.out kludge: load the file at 1 MiB, enter after the header)
/// followed by random bytes. Whatever the guest does — privileged
/// instructions at CPL 1, descriptor-table garbage, wild page tables —
/// the monitor ends as a guest fault or a clean stop, never a panic.
#[test]
fn random_guests_never_break_the_monitors() {
    const MONITOR_STOP: i32 = 34;
    let dir = TempDir::new("fuzz-virt");
    let mut seed: u64 = 0x5ee1_0fc0_ffee;
    let mut next = || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
    };
    for round in 0..10 {
        let (magic, flags, load) = (0x1bad_b002u32, 0x0001_0000u32, 0x10_0000u32);
        let mut bytes = Vec::new();
        for v in [
            magic,
            flags,
            0u32.wrapping_sub(magic.wrapping_add(flags)),
            load,      // header_addr
            load,      // load_addr
            0,         // load_end_addr: the whole file
            0,         // bss_end_addr
            load + 32, // entry: right after this header
        ] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend((0..4096).map(|_| next()));
        let k = write_flat(&dir, &format!("m{round}.bin"), &bytes);
        for mode in ["full", "trap-only", "para", "hw"] {
            let out = ringside_run(&[
                "--kernel",
                &k,
                "--virt",
                mode,
                "-m",
                "32",
                "--max-insns",
                "200000",
                "--timeout",
                "20",
                "--quiet",
                "--no-stdin",
            ]);
            let err = String::from_utf8_lossy(&out.stderr);
            let code = out.status.code();
            assert!(
                code.is_some_and(|c| c % 2 == 1
                    || [
                        TRIPLE_FAULT,
                        DEAD_HALT,
                        INSN_LIMIT,
                        TIMEOUT,
                        32,
                        MONITOR_STOP
                    ]
                    .contains(&c)),
                "round {round} under {mode}: status {:?}, stderr:\n{err}",
                out.status
            );
            assert!(
                !err.contains("panicked"),
                "round {round} under {mode}: {err}"
            );
        }
    }
}
