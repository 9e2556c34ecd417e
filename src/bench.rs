//! `ringside bench`: the `compute` image on ringside tcg, ringside kvm,
//! QEMU tcg and QEMU kvm, side by side in one run.
//!
//! ringside runs in-process, so its instruction count is exact. QEMU
//! doesn't count instructions, but `compute` is deterministic: it retires
//! the same guest instructions wherever it runs (plus QEMU's firmware, a
//! few million at most), so QEMU's rate is derived from ringside's count and
//! marked "≈". Every row's serial output must match ringside tcg's, or the
//! row is marked as disagreeing: a fast wrong answer is not a result.
//!
//! Every configuration also boots `hello` (which exits at once) to measure
//! its start-up cost: process, firmware (QEMU runs SeaBIOS first, which on a
//! nested kvm-pvm host takes seconds) and loading. Rates are computed over
//! the compute run's wall time minus that start-up, so they compare the
//! engines rather than their launchers.

use crate::boot::BootConfig;
use crate::capture::Capture;
use crate::cli::BenchArgs;
use crate::machine::{AccelKind, Machine, MachineConfig};
use crate::status::{code, RunEnd};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One row of the table.
struct Row {
    name: &'static str,
    /// Best wall time, or why the row couldn't run.
    result: Result<Measured, String>,
    /// Best wall time of booting `hello`, the start-up cost.
    startup: Option<Duration>,
}

struct Measured {
    wall: Duration,
    insns: Option<u64>,
    output: String,
}

fn run_ringside(kernel: &Path, append: &str, accel: AccelKind) -> Result<Measured, String> {
    let cap = Capture::default();
    let cfg = MachineConfig {
        memory: 256 << 20,
        accel,
        virt: None,
        disk: None,
        boot: BootConfig {
            kernel: kernel.to_path_buf(),
            append: Some(append.to_string()),
            initrd: None,
            flat_addr: None,
        },
        trace: cpu::TraceFlags::default(),
        serial_out: Box::new(cap.clone()),
        stdin: false,
        max_insns: None,
        timeout: Some(Duration::from_secs(600)),
    };
    let mut m = Machine::new(cfg).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let end = m.run().map_err(|e| e.to_string())?;
    let wall = start.elapsed();
    if end != (RunEnd::GuestExit { value: 0 }) {
        return Err(end.to_string());
    }
    Ok(Measured {
        wall,
        insns: m.accel.instructions(),
        output: cap.text(),
    })
}

fn run_qemu(qemu: &str, kernel: &Path, append: &str, accel: &str) -> Result<Measured, String> {
    let start = Instant::now();
    let out = Command::new(qemu)
        .args(["-accel", accel, "-m", "256M", "-kernel"])
        .arg(kernel)
        .args(["-append", append])
        .args([
            "-nodefaults",
            "-serial",
            "stdio",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
            "-display",
            "none",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not start {qemu}: {e} (scripts/deps.sh installs it)"))?;
    let wall = start.elapsed();
    if out.status.code() != Some(1) {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{qemu} -accel {accel} exited with {:?}: {}",
            out.status,
            err.lines().next().unwrap_or("")
        ));
    }
    Ok(Measured {
        wall,
        insns: None,
        output: String::from_utf8_lossy(&out.stdout).to_string(),
    })
}

/// Best of `runs`, printing progress.
/// Best of `runs`, printing progress. `f(true)` runs the workload,
/// `f(false)` the start-up probe.
fn measure(
    name: &'static str,
    runs: u32,
    mut f: impl FnMut(bool) -> Result<Measured, String>,
) -> Row {
    let startup = (0..runs.max(1))
        .filter_map(|_| f(false).ok().map(|m| m.wall))
        .min();
    let mut best: Option<Measured> = None;
    for i in 0..runs.max(1) {
        eprint!(
            "\rringside bench: {name:<13} run {}/{}…   ",
            i + 1,
            runs.max(1)
        );
        let _ = std::io::stderr().flush();
        match f(true) {
            Ok(m) => {
                if best.as_ref().is_none_or(|b| m.wall < b.wall) {
                    best = Some(m);
                }
            }
            Err(e) => {
                eprintln!();
                return Row {
                    name,
                    result: Err(e),
                    startup,
                };
            }
        }
    }
    eprintln!("\rringside bench: {name:<13} done.        ");
    Row {
        name,
        result: best.ok_or_else(|| "no run".to_string()),
        startup,
    }
}

fn default_image(name: &str) -> PathBuf {
    let here = PathBuf::from(format!("images/build/{name}.elf"));
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("images/build/{name}.elf"))
}

pub fn run(args: &BenchArgs) -> i32 {
    let kernel = args
        .kernel
        .clone()
        .unwrap_or_else(|| default_image("compute"));
    let hello = default_image("hello");
    for k in [&kernel, &hello] {
        if !k.exists() {
            eprintln!(
                "ringside: error: {} not found: build the images with `make -C images` (or cargo build), or pass --kernel",
                k.display()
            );
            return code::FILE;
        }
    }
    let append = format!("scale={}", args.scale);
    let kvm = accel::kvm::probe();
    let pick = |work: bool| if work { &kernel } else { &hello };
    let unavailable = |name| Row {
        name,
        result: Err(kvm.reason.clone().unwrap_or_default()),
        startup: None,
    };
    let mut rows = vec![measure("ringside tcg", args.runs, |w| {
        run_ringside(pick(w), &append, AccelKind::Tcg)
    })];
    rows.push(if kvm.available {
        measure("ringside kvm", args.runs, |w| {
            run_ringside(pick(w), &append, AccelKind::Kvm)
        })
    } else {
        unavailable("ringside kvm")
    });
    if !args.no_qemu {
        rows.push(measure("qemu tcg", args.runs, |w| {
            run_qemu(&args.qemu, pick(w), &append, "tcg")
        }));
        rows.push(if kvm.available {
            measure("qemu kvm", args.runs, |w| {
                run_qemu(&args.qemu, pick(w), &append, "kvm")
            })
        } else {
            unavailable("qemu kvm")
        });
    }
    print_table(&rows, &kernel, &append);
    match &rows[0].result {
        Ok(_) => 0,
        Err(_) => code::INTERNAL,
    }
}

fn print_table(rows: &[Row], kernel: &Path, append: &str) {
    let reference = rows[0].result.as_ref().ok();
    let insns = reference.and_then(|m| m.insns);
    let wall_of = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.result.as_ref().ok())
            .map(|m| m.wall.as_secs_f64())
    };
    let slowest = rows
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .map(|m| m.wall.as_secs_f64())
        .fold(0.0f64, f64::max);
    println!();
    println!(
        "compute benchmark: {} ({append}){}",
        kernel.display(),
        insns
            .map(|n| format!(", {} guest instructions", crate::group(n)))
            .unwrap_or_default()
    );
    println!(
        "{:<13} {:>8} {:>9} {:>11} {:>8} {:>7}  wall time",
        "config", "wall s", "start-up", "guest MIPS", "vs QEMU", "output"
    );
    for r in rows {
        let m = match &r.result {
            Ok(m) => m,
            Err(e) => {
                println!(
                    "{:<13} {:>8} {:>9} {:>11} {:>8} {:>7}  {e}",
                    r.name, "-", "-", "-", "-", "-"
                );
                continue;
            }
        };
        let secs = m.wall.as_secs_f64();
        let start = r.startup.map(|d| d.as_secs_f64());
        // The engine's own time: the run minus what booting costs. When
        // start-up is most of the run, the difference is noise: no rate.
        let net = secs - start.unwrap_or(0.0);
        let mips = match (m.insns, insns) {
            _ if net < secs * 0.2 => "(start-up)".to_string(),
            (Some(n), _) => format!("{:.1}", n as f64 / net / 1e6),
            (None, Some(n)) => format!("≈{:.0}", n as f64 / net / 1e6),
            _ => "-".into(),
        };
        let peer = if r.name.ends_with("tcg") {
            wall_of("qemu tcg")
        } else {
            wall_of("qemu kvm")
        };
        let ratio = match peer {
            Some(p) if !r.name.starts_with("qemu") && p > 0.0 => format!("{:.2}x", secs / p),
            _ => String::new(),
        };
        let agree = match reference {
            Some(rf) if rf.output == m.output => "same",
            Some(_) => "DIFFERS",
            None => "?",
        };
        let width = if slowest > 0.0 {
            ((secs / slowest) * 30.0).round() as usize
        } else {
            0
        };
        println!(
            "{:<13} {:>8.3} {:>9} {:>11} {:>8} {:>7}  {}",
            r.name,
            secs,
            start
                .map(|s| format!("{s:.3}"))
                .unwrap_or_else(|| "-".into()),
            mips,
            ratio,
            agree,
            "█".repeat(width.max(1))
        );
    }
    println!();
    println!(
        "start-up: wall time to boot `hello`, which exits at once (process, firmware, loading)."
    );
    println!("guest MIPS: instructions / (wall - start-up); \"≈\": KVM and QEMU don't count instructions,");
    println!("  so their rate uses ringside's count for the same deterministic workload.");
    println!("vs QEMU: wall time relative to QEMU with the same accelerator (lower is better).");
}
