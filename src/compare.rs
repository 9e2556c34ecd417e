//! `ringside compare`: one kernel under every virtualization mode, side by
//! side — instructions, traps by cause, page-walk references, monitor vs
//! guest time, wall time — as a table, bars, JSON or CSV.
//!
//! Each mode is a full `Machine` run, exactly as `ringside run --virt MODE`
//! (or `--accel kvm`) would do it. `para` runs the kernel's paravirtual
//! build (`NAME-pv.elf` next to `NAME.elf`). Every figure printed is read
//! from that run's counters; nothing is estimated.

use crate::boot::BootConfig;
use crate::capture::Capture;
use crate::cli::CompareArgs;
use crate::machine::{AccelKind, Machine, MachineConfig};
use crate::status::{code, RunEnd};
use accel::monitor::{TrapCause, VirtMode};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tui::screen::group;

/// One column of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    None,
    Virt(VirtMode),
    Kvm,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Virt(v) => v.name(),
            Mode::Kvm => "kvm",
        }
    }

    /// Parse one `--modes` item.
    pub fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s.trim() {
            "none" => Mode::None,
            "full" => Mode::Virt(VirtMode::Full),
            "trap-only" => Mode::Virt(VirtMode::TrapOnly),
            "para" => Mode::Virt(VirtMode::Para),
            "hw" => Mode::Virt(VirtMode::Hw),
            "kvm" => Mode::Kvm,
            other => {
                return Err(format!(
                    "unknown mode '{other}' in --modes: use none, full, trap-only, para, hw, kvm"
                ))
            }
        })
    }
}

/// What one mode's run measured.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    pub kernel: PathBuf,
    /// How the run ended ("guest exited with code 0", "timeout" …).
    pub status: String,
    pub exit_code: i32,
    /// The text after "checksum" on the guest's checksum line.
    pub checksum: Option<String>,
    pub instructions: Option<u64>,
    /// Traps by cause (monitor modes), or KVM exits mapped to causes.
    pub traps: Option<Vec<(TrapCause, u64)>>,
    /// KVM's own exit counts by reason (kvm only).
    pub kvm_exits: Option<Vec<(String, u64)>>,
    pub tlb_misses: Option<u64>,
    pub walk_refs: Option<u64>,
    pub monitor_time: Option<Duration>,
    pub guest_time: Option<Duration>,
    pub wall: Duration,
    /// Why the mode could not run at all.
    pub error: Option<String>,
}

impl Measurement {
    pub fn total_traps(&self) -> Option<u64> {
        self.traps.as_ref().map(|t| t.iter().map(|(_, n)| n).sum())
    }
    pub fn refs_per_miss(&self) -> Option<f64> {
        match (self.walk_refs, self.tlb_misses) {
            (Some(r), Some(m)) if m > 0 => Some(r as f64 / m as f64),
            _ => None,
        }
    }
}

/// The kernel to run for `mode`: the `-pv` build for para.
pub fn kernel_for(kernel: &Path, mode: Mode, pv: Option<&Path>) -> Result<PathBuf, String> {
    if mode != Mode::Virt(VirtMode::Para) {
        return Ok(kernel.to_path_buf());
    }
    if let Some(p) = pv {
        return Ok(p.to_path_buf());
    }
    let stem = kernel
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{}: not a file name", kernel.display()))?;
    if stem.ends_with("-pv") {
        return Ok(kernel.to_path_buf());
    }
    let ext = kernel.extension().and_then(|e| e.to_str()).unwrap_or("elf");
    let pv = kernel.with_file_name(format!("{stem}-pv.{ext}"));
    if pv.exists() {
        Ok(pv)
    } else {
        Err(format!(
            "para needs the kernel's paravirtual build: {} does not exist (give it with --pv-kernel)",
            pv.display()
        ))
    }
}

/// Run `kernel` once in `mode`.
pub fn measure(
    kernel: &Path,
    mode: Mode,
    memory: u64,
    append: Option<&str>,
    timeout: Duration,
) -> Measurement {
    let cap = Capture::default();
    let cfg = MachineConfig {
        memory,
        accel: if mode == Mode::Kvm {
            AccelKind::Kvm
        } else {
            AccelKind::Tcg
        },
        virt: match mode {
            Mode::Virt(v) => Some(v),
            _ => None,
        },
        disk: None,
        boot: BootConfig {
            kernel: kernel.to_path_buf(),
            append: append.map(str::to_string),
            initrd: None,
            flat_addr: None,
        },
        trace: cpu::TraceFlags::default(),
        serial_out: Box::new(cap.clone()),
        stdin: false,
        max_insns: None,
        timeout: Some(timeout),
    };
    let mut out = Measurement {
        kernel: kernel.to_path_buf(),
        ..Measurement::default()
    };
    let mut m = match Machine::new(cfg) {
        Ok(m) => m,
        Err(e) => {
            out.error = Some(e.to_string());
            out.exit_code = crate::machine_error_code(&e);
            return out;
        }
    };
    let start = Instant::now();
    let end = match m.run() {
        Ok(end) => end,
        Err(e) => {
            out.error = Some(e.to_string());
            out.exit_code = code::INTERNAL;
            return out;
        }
    };
    out.wall = start.elapsed();
    out.status = match &end {
        RunEnd::GuestExit { .. } => end.label(),
        other => other.to_string(),
    };
    out.exit_code = end.exit_code();
    out.checksum = checksum_of(&cap.text());
    out.instructions = m.accel.instructions();
    if let Some(s) = m.accel.cpu_stats() {
        out.tlb_misses = Some(s.tlb_misses);
        out.walk_refs = Some(s.walk_refs);
    }
    if let Some(ms) = m.accel.monitor_stats() {
        out.traps = Some(ms.iter().collect());
        out.monitor_time = Some(ms.monitor_time);
        out.guest_time = Some(ms.guest_time);
    } else if mode == Mode::Kvm {
        let stats = m.accel.stats();
        out.kvm_exits = Some(stats.iter().map(|(k, n)| (k.to_string(), n)).collect());
        out.traps = Some(kvm_as_causes(stats));
    }
    out
}

/// KVM's exit reasons in the monitor's cause vocabulary (the exits KVM
/// handles inside the kernel — EPT violations, CR accesses — never reach
/// userspace and are not counted).
fn kvm_as_causes(stats: &accel::ExitStats) -> Vec<(TrapCause, u64)> {
    TrapCause::ALL
        .iter()
        .map(|&c| {
            let n = match c {
                TrapCause::Io => stats.get("io"),
                TrapCause::Mmio => stats.get("mmio"),
                TrapCause::Hlt => stats.get("hlt"),
                TrapCause::InterruptWindow => stats.get("irq-window"),
                TrapCause::ExternalInterrupt => stats.get("intr"),
                _ => 0,
            };
            (c, n)
        })
        .collect()
}

/// The guest's checksum line: the text after "checksum" (and a colon or
/// space), trimmed.
pub fn checksum_of(serial: &str) -> Option<String> {
    serial.lines().find_map(|l| {
        let i = l.find("checksum")?;
        let rest = l[i + "checksum".len()..].trim_start_matches([':', ' ', '=']);
        Some(rest.trim().to_string())
    })
}

/// `ringside compare`.
pub fn run(args: &CompareArgs) -> i32 {
    let modes: Vec<Mode> = match args.modes.iter().map(|s| Mode::parse(s)).collect() {
        Ok(m) => m,
        Err(e) => return crate::fail(code::USAGE, e),
    };
    if modes.is_empty() {
        return crate::fail(code::USAGE, "--modes is empty: name at least one mode");
    }
    let memory = match crate::cli::parse_memory(&args.memory) {
        Ok(m) => m,
        Err(e) => return crate::fail(code::MEMORY, e),
    };
    if !args.kernel.exists() {
        return crate::fail(
            code::FILE,
            format!(
                "{}: no such kernel (build the images with `make -C images`)",
                args.kernel.display()
            ),
        );
    }
    let timeout = Duration::from_secs_f64(args.timeout.max(1.0));
    let mut results = Vec::new();
    for (i, &mode) in modes.iter().enumerate() {
        let kernel = kernel_for(&args.kernel, mode, args.pv_kernel.as_deref());
        eprint!("compare: [{}/{}] {:<9} ", i + 1, modes.len(), mode.name());
        let m = match kernel {
            Ok(k) => measure(&k, mode, memory, args.append.as_deref(), timeout),
            Err(e) => Measurement {
                error: Some(e),
                exit_code: code::FILE,
                ..Measurement::default()
            },
        };
        match &m.error {
            Some(e) => eprintln!("not run: {e}"),
            None => eprintln!("{} in {:.2} s", m.status, m.wall.as_secs_f64()),
        }
        results.push((mode, m));
    }
    let text = if args.json {
        json(&args.kernel, &results)
    } else if args.csv {
        csv(&results)
    } else {
        let mut t = table(&args.kernel, &results);
        t.push_str(&bars(&results));
        t
    };
    print!("{text}");
    // Success when every mode ran to a guest exit with one checksum.
    let all_ok = results
        .iter()
        .all(|(_, m)| m.error.is_none() && m.exit_code == 1);
    let sums: std::collections::BTreeSet<_> = results
        .iter()
        .filter_map(|(_, m)| m.checksum.clone())
        .collect();
    if all_ok && sums.len() <= 1 {
        0
    } else {
        if sums.len() > 1 {
            eprintln!("compare: the modes disagree on the checksum (see the table)");
        } else {
            eprintln!("compare: not every mode ran to a clean guest exit (see the table)");
        }
        1
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

fn num(n: Option<u64>) -> String {
    n.map_or("-".into(), group)
}

/// The side-by-side table.
pub fn table(kernel: &Path, results: &[(Mode, Measurement)]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let col = |f: &dyn Fn(&Measurement) -> String| -> Vec<String> {
        results.iter().map(|(_, m)| f(m)).collect()
    };
    rows.push((
        "status".into(),
        col(&|m| match &m.error {
            Some(_) => "not run".into(),
            None if m.exit_code == 1 => "ok".into(),
            None => format!("exit {}", m.exit_code),
        }),
    ));
    let first_sum = results.iter().find_map(|(_, m)| m.checksum.clone());
    rows.push((
        "checksum".into(),
        col(&|m| match (&m.checksum, &first_sum) {
            (Some(c), Some(f)) if c == f => "same".into(),
            (Some(_), Some(_)) => "DIFFERENT".into(),
            _ => "-".into(),
        }),
    ));
    rows.push(("guest instructions".into(), col(&|m| num(m.instructions))));
    rows.push((
        "traps / exits, total".into(),
        col(&|m| num(m.total_traps())),
    ));
    for cause in TrapCause::ALL {
        rows.push((
            format!("  {}", cause.label()),
            col(&|m| {
                m.traps.as_ref().map_or("-".into(), |t| {
                    t.iter()
                        .find(|(c, _)| *c == cause)
                        .map_or("-".into(), |(_, n)| group(*n))
                })
            }),
        ));
    }
    rows.push(("TLB misses".into(), col(&|m| num(m.tlb_misses))));
    rows.push(("page-walk references".into(), col(&|m| num(m.walk_refs))));
    rows.push((
        "  references per miss".into(),
        col(&|m| m.refs_per_miss().map_or("-".into(), |r| format!("{r:.1}"))),
    ));
    rows.push(("time in monitor (ms)".into(), col(&|m| ms(m.monitor_time))));
    rows.push(("time in guest (ms)".into(), col(&|m| ms(m.guest_time))));
    rows.push((
        "wall time (ms)".into(),
        col(&|m| {
            if m.error.is_some() {
                "-".into()
            } else {
                ms(Some(m.wall))
            }
        }),
    ));

    let label_w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let col_w: Vec<usize> = (0..results.len())
        .map(|i| {
            rows.iter()
                .map(|(_, c)| c[i].chars().count())
                .chain(std::iter::once(results[i].0.name().len()))
                .max()
                .unwrap_or(4)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "ringside compare: {}", kernel.display());
    let _ = write!(out, "{:label_w$}", "");
    for (i, (mode, _)) in results.iter().enumerate() {
        let _ = write!(out, "  {:>w$}", mode.name(), w = col_w[i]);
    }
    out.push('\n');
    for (label, cells) in &rows {
        let _ = write!(out, "{label:label_w$}");
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", c, w = col_w[i]);
        }
        out.push('\n');
    }
    for (mode, m) in results {
        if let Some(e) = &m.error {
            let _ = writeln!(out, "{}: not run: {e}", mode.name());
        } else if m.exit_code != 1 {
            let _ = writeln!(out, "{}: {}", mode.name(), m.status);
        }
    }
    if let Some((_, m)) = results.iter().find(|(md, _)| *md == Mode::Kvm) {
        if let Some(ex) = &m.kvm_exits {
            let list: Vec<String> = ex
                .iter()
                .map(|(k, n)| format!("{k} {}", group(*n)))
                .collect();
            let _ = writeln!(
                out,
                "kvm: exits as KVM reports them to userspace: {} ({})",
                if list.is_empty() {
                    "none".into()
                } else {
                    list.join(", ")
                },
                accel::kvm::probe::probe().short()
            );
        }
    }
    out
}

/// Horizontal bars: traps per mode, page-walk references per TLB miss.
pub fn bars(results: &[(Mode, Measurement)]) -> String {
    let mut out = String::new();
    let width = 40usize;
    let bar = |v: f64, max: f64| -> String {
        if max <= 0.0 || v <= 0.0 {
            return String::new();
        }
        // A log scale would hide the point (orders of magnitude apart);
        // linear, with at least one cell for any nonzero value.
        let n = ((v / max) * width as f64).round().max(1.0) as usize;
        "█".repeat(n.min(width))
    };
    let name_w = results
        .iter()
        .map(|(m, _)| m.name().len())
        .max()
        .unwrap_or(4);
    let traps: Vec<(Mode, Option<u64>)> =
        results.iter().map(|(m, r)| (*m, r.total_traps())).collect();
    let tmax = traps.iter().filter_map(|(_, t)| *t).max().unwrap_or(0) as f64;
    let _ = writeln!(out, "\ntraps / exits per mode");
    for (mode, t) in &traps {
        let _ = writeln!(
            out,
            "  {:name_w$}  {:<width$}  {}",
            mode.name(),
            t.map_or(String::new(), |t| bar(t as f64, tmax)),
            num(*t)
        );
    }
    let refs: Vec<(Mode, Option<f64>)> = results
        .iter()
        .map(|(m, r)| (*m, r.refs_per_miss()))
        .collect();
    let rmax = refs.iter().filter_map(|(_, r)| *r).fold(0.0, f64::max);
    let _ = writeln!(out, "\npage-walk memory references per TLB miss");
    for (mode, r) in &refs {
        let _ = writeln!(
            out,
            "  {:name_w$}  {:<width$}  {}",
            mode.name(),
            r.map_or(String::new(), |r| bar(r, rmax)),
            r.map_or("-".into(), |r| format!("{r:.1}"))
        );
    }
    out
}

/// JSON string escaping.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn jnum(n: Option<u64>) -> String {
    n.map_or("null".into(), |n| n.to_string())
}

fn jms(d: Option<Duration>) -> String {
    d.map_or("null".into(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
}

/// The `--json` document (schema in docs/VIRTUALIZATION.md).
pub fn json(kernel: &Path, results: &[(Mode, Measurement)]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{{\"kernel\":{},\"modes\":[",
        js(&kernel.display().to_string())
    );
    for (i, (mode, m)) in results.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let traps = match &m.traps {
            Some(t) => {
                let mut s = format!("{{\"total\":{}", m.total_traps().unwrap_or(0));
                for (c, n) in t {
                    let _ = write!(s, ",\"{}\":{n}", c.key());
                }
                s.push('}');
                s
            }
            None => "null".into(),
        };
        let kvm = match &m.kvm_exits {
            Some(ex) => {
                let items: Vec<String> = ex.iter().map(|(k, n)| format!("{}:{n}", js(k))).collect();
                format!("{{{}}}", items.join(","))
            }
            None => "null".into(),
        };
        let _ = write!(
            o,
            "{{\"mode\":{},\"kernel\":{},\"ran\":{},\"error\":{},\"status\":{},\"exit_code\":{},\"checksum\":{},\"instructions\":{},\"traps\":{},\"kvm_exits\":{},\"tlb_misses\":{},\"walk_refs\":{},\"refs_per_miss\":{},\"monitor_ms\":{},\"guest_ms\":{},\"wall_ms\":{}}}",
            js(mode.name()),
            js(&m.kernel.display().to_string()),
            m.error.is_none(),
            m.error.as_deref().map_or("null".into(), js),
            js(&m.status),
            m.exit_code,
            m.checksum.as_deref().map_or("null".into(), js),
            jnum(m.instructions),
            traps,
            kvm,
            jnum(m.tlb_misses),
            jnum(m.walk_refs),
            m.refs_per_miss().map_or("null".into(), |r| format!("{r:.3}")),
            jms(m.monitor_time),
            jms(m.guest_time),
            if m.error.is_some() { "null".into() } else { jms(Some(m.wall)) },
        );
    }
    o.push_str("]}\n");
    o
}

/// The `--csv` table: one row per mode.
pub fn csv(results: &[(Mode, Measurement)]) -> String {
    let mut o = String::from("mode,exit_code,checksum,instructions,traps_total");
    for c in TrapCause::ALL {
        let _ = write!(o, ",{}", c.key());
    }
    o.push_str(",tlb_misses,walk_refs,monitor_ms,guest_ms,wall_ms\n");
    let cell = |n: Option<u64>| n.map_or(String::new(), |n| n.to_string());
    let msc =
        |d: Option<Duration>| d.map_or(String::new(), |d| format!("{:.3}", d.as_secs_f64() * 1e3));
    for (mode, m) in results {
        let _ = write!(
            o,
            "{},{},{},{},{}",
            mode.name(),
            m.exit_code,
            m.checksum.clone().unwrap_or_default().replace(',', " "),
            cell(m.instructions),
            cell(m.total_traps())
        );
        for c in TrapCause::ALL {
            let n = m
                .traps
                .as_ref()
                .and_then(|t| t.iter().find(|(x, _)| *x == c).map(|(_, n)| *n));
            let _ = write!(o, ",{}", cell(n));
        }
        let _ = writeln!(
            o,
            ",{},{},{},{},{}",
            cell(m.tlb_misses),
            cell(m.walk_refs),
            msc(m.monitor_time),
            msc(m.guest_time),
            if m.error.is_some() {
                String::new()
            } else {
                msc(Some(m.wall))
            }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_line() {
        let s = "banner\r\nptupdate: checksum 0x00ab\r\nptupdate: PASS\r\n";
        assert_eq!(checksum_of(s).as_deref(), Some("0x00ab"));
        assert_eq!(checksum_of("nothing"), None);
    }

    #[test]
    fn pv_kernel_name() {
        let k = Path::new("/nonexistent/ptupdate.elf");
        assert_eq!(kernel_for(k, Mode::None, None).unwrap(), k);
        assert!(kernel_for(k, Mode::Virt(VirtMode::Para), None).is_err());
        assert_eq!(
            kernel_for(k, Mode::Virt(VirtMode::Para), Some(Path::new("x-pv.elf"))).unwrap(),
            Path::new("x-pv.elf")
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!(
            Mode::parse("trap-only").unwrap(),
            Mode::Virt(VirtMode::TrapOnly)
        );
        assert!(Mode::parse("vmware").is_err());
    }

    #[test]
    fn outputs_have_every_mode() {
        let m = Measurement {
            checksum: Some("0x1".into()),
            exit_code: 1,
            instructions: Some(10),
            traps: Some(TrapCause::ALL.iter().map(|&c| (c, 2)).collect()),
            tlb_misses: Some(4),
            walk_refs: Some(96),
            ..Measurement::default()
        };
        let r = vec![
            (Mode::Virt(VirtMode::Hw), m.clone()),
            (Mode::None, Measurement { traps: None, ..m }),
        ];
        let t = table(Path::new("k.elf"), &r);
        assert!(t.contains("hw") && t.contains("none") && t.contains("24.0"));
        let j = json(Path::new("k.elf"), &r);
        assert!(
            j.contains("\"mode\":\"hw\"")
                && j.contains("\"pt_write\":2")
                && j.contains("\"traps\":null")
        );
        let c = csv(&r);
        assert_eq!(c.lines().count(), 3);
        let b = bars(&r);
        assert!(b.contains('█'));
    }
}
