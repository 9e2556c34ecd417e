//! `ringside bench`: the `compute` image on ringside tcg, ringside kvm,
//! QEMU tcg and QEMU kvm, side by side in one run.
//!
//! ringside runs in-process, so its instruction count is exact. QEMU
//! doesn't count instructions, but `compute` is deterministic: it retires
//! the same guest instructions wherever it runs (plus QEMU's firmware, a
//! few million at most), so QEMU's rate is derived from ringside's count and
//! marked "≈". Every row's serial output must match ringside tcg's, or the
//! row is marked as disagreeing: a fast wrong answer is not a result.

use crate::boot::BootConfig;
use crate::cli::BenchArgs;
use crate::machine::{AccelKind, Machine, MachineConfig};
use crate::status::{code, RunEnd};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `Write` into a shared buffer, to capture the guest's serial output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).to_string())
            .unwrap_or_default()
    }
}

/// One row of the table.
struct Row {
    name: &'static str,
    /// Best wall time, or why the row couldn't run.
    result: Result<Measured, String>,
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
fn measure(name: &'static str, runs: u32, mut f: impl FnMut() -> Result<Measured, String>) -> Row {
    let mut best: Option<Measured> = None;
    for i in 0..runs.max(1) {
        eprint!(
            "\rringside bench: {name:<13} run {}/{}…   ",
            i + 1,
            runs.max(1)
        );
        let _ = std::io::stderr().flush();
        match f() {
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
                };
            }
        }
    }
    eprintln!("\rringside bench: {name:<13} done.        ");
    Row {
        name,
        result: best.ok_or_else(|| "no run".to_string()),
    }
}

fn default_kernel() -> PathBuf {
    let here = PathBuf::from("images/build/compute.elf");
    if here.exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("images/build/compute.elf")
}

pub fn run(args: &BenchArgs) -> i32 {
    let kernel = args.kernel.clone().unwrap_or_else(default_kernel);
    if !kernel.exists() {
        eprintln!(
            "ringside: error: {} not found: build the images with `make -C images` or pass --kernel",
            kernel.display()
        );
        return code::FILE;
    }
    let append = format!("scale={}", args.scale);
    let kvm = accel::kvm::probe();
    let mut rows = vec![measure("ringside tcg", args.runs, || {
        run_ringside(&kernel, &append, AccelKind::Tcg)
    })];
    rows.push(if kvm.available {
        measure("ringside kvm", args.runs, || {
            run_ringside(&kernel, &append, AccelKind::Kvm)
        })
    } else {
        Row {
            name: "ringside kvm",
            result: Err(kvm.reason.clone().unwrap_or_default()),
        }
    });
    if !args.no_qemu {
        rows.push(measure("qemu tcg", args.runs, || {
            run_qemu(&args.qemu, &kernel, &append, "tcg")
        }));
        rows.push(if kvm.available {
            measure("qemu kvm", args.runs, || {
                run_qemu(&args.qemu, &kernel, &append, "kvm")
            })
        } else {
            Row {
                name: "qemu kvm",
                result: Err(kvm.reason.clone().unwrap_or_default()),
            }
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
        "{:<13} {:>9} {:>11} {:>12} {:>8}  time",
        "config", "wall s", "guest MIPS", "vs QEMU", "output"
    );
    for r in rows {
        match &r.result {
            Err(e) => println!(
                "{:<13} {:>9} {:>11} {:>12} {:>8}  {e}",
                r.name, "-", "-", "-", "-"
            ),
            Ok(m) => {
                let secs = m.wall.as_secs_f64();
                let mips = match (m.insns, insns) {
                    (Some(n), _) => format!("{:.1}", n as f64 / secs / 1e6),
                    (None, Some(n)) => format!("≈{:.1}", n as f64 / secs / 1e6),
                    _ => "-".into(),
                };
                let peer = if r.name.ends_with("tcg") {
                    wall_of("qemu tcg")
                } else {
                    wall_of("qemu kvm")
                };
                let ratio = match peer {
                    Some(p) if !r.name.starts_with("qemu") && p > 0.0 => {
                        format!("{:.2}x time", secs / p)
                    }
                    _ => "".into(),
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
                    "{:<13} {:>9.3} {:>11} {:>12} {:>8}  {}",
                    r.name,
                    secs,
                    mips,
                    ratio,
                    agree,
                    "█".repeat(width.max(1))
                );
            }
        }
    }
    println!();
    println!(
        "\"vs QEMU\": wall time relative to QEMU with the same accelerator (lower is better)."
    );
    println!("\"≈\": QEMU does not count instructions; its rate uses ringside's count for the same deterministic workload.");
}
