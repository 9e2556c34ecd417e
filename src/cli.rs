//! The command line: `ringside run | info | bench | tui | isa`.
//!
//! QEMU's single-dash spellings (`-kernel`, `-append`, `-initrd`, `-accel`)
//! are accepted by rewriting them to their double-dash forms before clap
//! sees them; `-m` is a real short option.

use crate::machine::AccelKind;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// ringside: an educational x86-64 emulator and hypervisor lab.
///
/// Runs x86-64 kernels on ringside's own software CPU (tcg) or on the host
/// CPU through KVM, and makes what happens on the way visible.
/// Exit statuses, for `ringside run --help` (README has the same table).
const RUN_EXIT_STATUSES: &str = "\
Exit statuses:
  odd  the guest wrote v to port 0xf4: status (v << 1) | 1, so guest 0 is 1
  2    bad command line, or the accelerator is unavailable
  4    kernel or initrd missing or unreadable
  6    not a loadable kernel (not ELF, truncated, no PVH note or multiboot header)
  8    the kernel does not fit in RAM
  10   bad memory size
  20   the guest triple-faulted
  22   HLT with interrupts disabled and nothing pending
  24   --max-insns reached
  26   --timeout reached
  28   the host KVM could not emulate an instruction (a host limit)
  30   internal ringside error (please report it)
  32   halted waiting for an interrupt that can never come
  34   the --virt monitor cannot virtualize what the guest did
  36   --accel lockstep: the interpreter and KVM diverged (report on stderr)

Examples:
  ringside run --kernel images/build/hello.elf --append hi
  ringside run -kernel images/build/rings.elf -accel kvm
  ringside run --kernel images/build/paging.elf --trace int,mmu
  ringside run --kernel images/build/hello.elf --accel lockstep
  ringside run --kernel boot.bin --flat-addr 0x7c00 --max-insns 1000000";

#[derive(Debug, Parser)]
#[command(name = "ringside", version, about, long_about = None, propagate_version = true)]
#[command(after_help = "Run `ringside run --help` for the run options and exit statuses.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a kernel and run it until it exits.
    ///
    /// The process exits with the guest's debug-exit status ((v << 1) | 1,
    /// as QEMU's isa-debug-exit) or with one of ringside's even statuses.
    #[command(after_long_help = RUN_EXIT_STATUSES)]
    Run(RunArgs),
    /// Show the accelerators available on this host and the CPU model.
    Info,
    /// Benchmark the `compute` image on ringside (tcg, kvm) and QEMU (tcg, kvm).
    Bench(BenchArgs),
    /// Watch rings, traps and page-table walks in a terminal UI.
    ///
    /// The machine of `ringside run` (same options, except --trace and
    /// --timeout), paused at its first instruction. Press ? for the keys.
    /// Exits with the guest's status if its run ended, 0 if you quit first.
    Tui(RunArgs),
    /// Report how much of the x86 instruction set ringside implements.
    ///
    /// With --coverage: every iced-x86 instruction Code (all encodings,
    /// 16/32/64-bit) grouped by family (its first CPUID feature, e.g.
    /// INTEL386, X64, SSE2, FPU, AVX), split into implemented and
    /// differentially tested against the host CPU (`#` in the bar),
    /// implemented but untested (`+`), and not implemented (`.`).
    /// Families are sorted by size; the last row is the total.
    #[command(after_long_help = ISA_EXAMPLES)]
    Isa(IsaArgs),
    /// Run one kernel under every virtualization mode and compare the costs.
    ///
    /// For each mode (none, full, trap-only, para, hw, kvm) the kernel runs
    /// as `ringside run --virt MODE` (or `--accel kvm`) would run it; para
    /// uses the kernel's paravirtual build NAME-pv.elf. Prints guest
    /// instructions, traps/exits by cause, TLB misses and page-walk
    /// references, time in the monitor vs the guest, and wall time, then
    /// bars of traps per mode and references per TLB miss. Exits 0 when
    /// every mode ran to a clean guest exit with the same checksum, 1
    /// otherwise.
    #[command(after_long_help = COMPARE_EXAMPLES)]
    Compare(CompareArgs),
}

/// Examples for `ringside compare --help`.
const COMPARE_EXAMPLES: &str = "\
Examples:
  ringside compare --kernel images/build/ptupdate.elf
  ringside compare --kernel images/build/io-virtio.elf --modes none,full,para,kvm
  ringside compare --kernel images/build/compute.elf --json | jq '.modes[] | {mode, traps}'

JSON (--json): {kernel, modes: [{mode, kernel, ran, error, status, exit_code,
checksum, instructions, traps: {total, privileged, sensitive, guest_pf,
hidden_pf, pt_write, cr3_invlpg, io, mmio, hypercall, hlt, irq_window,
external_irq, exception, cpuid} | null, kvm_exits: {reason: count} | null,
tlb_misses, walk_refs, refs_per_miss, monitor_ms, guest_ms, wall_ms}]}.
A value the mode cannot measure is null (e.g. traps under none).";

/// Options of `ringside compare`.
#[derive(Debug, Args, Clone)]
pub struct CompareArgs {
    /// The kernel (its native build; para runs NAME-pv.elf beside it).
    #[arg(long, value_name = "FILE")]
    pub kernel: PathBuf,
    /// Modes to run, comma-separated, in column order.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "none,full,trap-only,para,hw,kvm"
    )]
    pub modes: Vec<String>,
    /// The paravirtual build to run under para (default: NAME-pv.elf).
    #[arg(long, value_name = "FILE")]
    pub pv_kernel: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, value_name = "STR")]
    pub append: Option<String>,
    /// Guest RAM per run (as `ringside run -m`).
    #[arg(
        short = 'm',
        long = "memory",
        value_name = "SIZE",
        default_value = "128M"
    )]
    pub memory: String,
    /// Stop a mode that runs longer than this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub timeout: f64,
    /// One JSON object instead of the table (schema below).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV, one row per mode, instead of the table.
    #[arg(long)]
    pub csv: bool,
}

/// Examples for `ringside isa --help`.
const ISA_EXAMPLES: &str = "\
Examples:
  ringside isa --coverage
  ringside isa --coverage --json | jq .totals
  ringside isa --coverage --list untested --family INTEL386";

/// Options of `ringside isa`.
#[derive(Debug, Args, Clone)]
pub struct IsaArgs {
    /// Print the coverage report (the only report so far; required).
    #[arg(long, required = true)]
    pub coverage: bool,
    /// Print the report as one JSON object instead of a table: families
    /// (family, total, tested, implemented_untested, not_implemented),
    /// totals, and tested_not_implemented (Codes the differential tester
    /// covers but the interpreter lacks; should be empty).
    #[arg(long)]
    pub json: bool,
    /// Instead of the table, list the Codes in one bucket, a line each
    /// (`FAMILY Code`): what to implement or test next.
    #[arg(long, value_enum, value_name = "BUCKET", conflicts_with = "json")]
    pub list: Option<IsaBucket>,
    /// Only this family (as the table names it, e.g. INTEL386, SSE4_1);
    /// with --list, or to print the table's row for one family.
    #[arg(long, value_name = "FAMILY")]
    pub family: Option<String>,
}

/// The buckets of the coverage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsaBucket {
    /// Implemented and differentially tested.
    Tested,
    /// Implemented, not covered by the differential tester.
    Untested,
    /// Not implemented (a guest executing it gets #UD).
    Missing,
}

/// Options of `ringside run`.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Kernel to boot: an ELF with a PVH note, a Multiboot v1 kernel, or a
    /// flat binary with --flat-addr. QEMU spelling: -kernel.
    #[arg(long, value_name = "FILE")]
    pub kernel: PathBuf,

    /// Accelerator: tcg (ringside's interpreter), kvm (the host CPU), or
    /// lockstep (both together, compared after every instruction; stops
    /// at the first divergence with a report, exit status 36).
    #[arg(long, value_enum, default_value = "tcg")]
    pub accel: AccelKind,

    /// Virtualization mode (tcg only): none = the kernel owns the machine;
    /// full = deprivileged to CPL 1, trap-and-emulate + binary translation,
    /// shadow page tables over a scattered p2m; trap-only = full without
    /// binary translation (the x86 virtualization hole shows); para =
    /// hypercalls and virtio (run the kernel's -pv build); hw = modelled
    /// VT-x non-root mode with nested paging. See docs/VIRTUALIZATION.md.
    #[arg(long, value_enum, default_value = "none")]
    pub virt: VirtArg,

    /// Disk image for the ATA disk and the virtio-blk device (raw, a
    /// multiple of 512 bytes; default: a 4 MiB scratch disk in memory).
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,

    /// Guest RAM: 128, 128M, 1G, 1.5G, 4096K (a bare number is MiB, as in
    /// QEMU; at least 2M).
    #[arg(
        short = 'm',
        long = "memory",
        value_name = "SIZE",
        default_value = "128M"
    )]
    pub memory: String,

    /// Kernel command line (PVH cmdline / multiboot cmdline after the file name).
    #[arg(long, value_name = "STR")]
    pub append: Option<String>,

    /// Initial ramdisk, passed as the PVH module or the multiboot module.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,

    /// Load --kernel as a flat binary at this physical address (below 1 MiB)
    /// and start it in real mode at CS:IP = ADDR>>4 : ADDR&15.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub flat_addr: Option<u64>,

    /// Trace events to stderr: comma-separated int, exec, io, mmu (or all).
    /// Under --virt, int and mmu also show every trap into the monitor
    /// (cause, guest and real CPL, and VA -> PA -> MA for memory traps).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub trace: Vec<String>,

    /// Stop after this many guest instructions (tcg only; exit status 24).
    #[arg(long, value_name = "N")]
    pub max_insns: Option<u64>,

    /// Stop after this many seconds of wall time (exit status 26).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Don't print the run summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Don't forward stdin to the guest's serial port.
    #[arg(long)]
    pub no_stdin: bool,
}

/// `--virt` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VirtArg {
    None,
    Full,
    TrapOnly,
    Para,
    Hw,
}

impl VirtArg {
    /// The monitor mode, `None` for `--virt none`.
    pub fn mode(self) -> Option<accel::monitor::VirtMode> {
        use accel::monitor::VirtMode as V;
        match self {
            VirtArg::None => None,
            VirtArg::Full => Some(V::Full),
            VirtArg::TrapOnly => Some(V::TrapOnly),
            VirtArg::Para => Some(V::Para),
            VirtArg::Hw => Some(V::Hw),
        }
    }
}

/// Options of `ringside bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// The compute image (default: images/build/compute.elf).
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Work multiplier passed to the image as `scale=K`.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// Runs per configuration; the best wall time is reported.
    #[arg(long, default_value_t = 1)]
    pub runs: u32,
    /// Skip the QEMU rows.
    #[arg(long)]
    pub no_qemu: bool,
    /// Path of the QEMU binary.
    #[arg(long, default_value = "qemu-system-x86_64")]
    pub qemu: String,
}

/// Parse an address in decimal or 0x-hex.
fn parse_addr(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse()
    };
    r.map_err(|_| format!("'{s}' is not an address: use decimal or 0x-prefixed hex"))
}

/// Parse a QEMU-style memory size: a bare number is MiB; suffixes K, M, G, T
/// (optionally followed by B or iB); fractions allowed ("1.5G").
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let err = || {
        format!("bad memory size '{s}': use a number of MiB or a size with a suffix, like 128, 512M or 2G")
    };
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match body.char_indices().last() {
        Some((i, 'k')) => (&body[..i], 1u64 << 10),
        Some((i, 'm')) => (&body[..i], 1 << 20),
        Some((i, 'g')) => (&body[..i], 1 << 30),
        Some((i, 't')) => (&body[..i], 1 << 40),
        Some(_) => (body, 1 << 20),
        None => return Err(err()),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err());
    }
    let bytes = if num.contains('.') {
        let f: f64 = num.parse().map_err(|_| err())?;
        let b = f * mult as f64;
        if !b.is_finite() || b <= 0.0 || b > (1u64 << 50) as f64 {
            return Err(err());
        }
        b as u64
    } else {
        let n: u64 = num.parse().map_err(|_| err())?;
        n.checked_mul(mult).ok_or_else(err)?
    };
    const MIN: u64 = 2 << 20;
    const MAX: u64 = 1 << 40;
    if bytes < MIN {
        return Err(format!(
            "memory size '{s}' is too small: ringside needs at least 2M (kernels load at 1 MiB)"
        ));
    }
    if bytes > MAX {
        return Err(format!("memory size '{s}' is too large: the maximum is 1T"));
    }
    if bytes % 4096 != 0 {
        return Err(format!(
            "memory size '{s}' is not a multiple of 4 KiB: round it to whole pages"
        ));
    }
    Ok(bytes)
}

/// Rewrite QEMU's single-dash long options to clap's double-dash ones.
pub fn normalize_args<I: IntoIterator<Item = OsString>>(args: I) -> Vec<OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-kernel") => "--kernel".into(),
            Some("-append") => "--append".into(),
            Some("-initrd") => "--initrd".into(),
            Some("-accel") => "--accel".into(),
            _ => a,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("128").unwrap(), 128 << 20);
        assert_eq!(parse_memory("128M").unwrap(), 128 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_memory("4096K").unwrap(), 4 << 20);
        assert_eq!(parse_memory("256MiB").unwrap(), 256 << 20);
        for bad in [
            "",
            "abc",
            "12Q",
            "0",
            "1",
            "-5",
            "1.2.3G",
            "99999999999999T",
            "1025K",
        ] {
            assert!(parse_memory(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn qemu_spellings() {
        let v = normalize_args(
            [
                "ringside", "run", "-kernel", "k", "-append", "x", "-m", "64",
            ]
            .map(OsString::from),
        );
        let cli = Cli::try_parse_from(v).unwrap();
        let Command::Run(r) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(r.kernel, PathBuf::from("k"));
        assert_eq!(r.append.as_deref(), Some("x"));
        assert_eq!(r.memory, "64");
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("0x7c00").unwrap(), 0x7c00);
        assert_eq!(parse_addr("4096").unwrap(), 4096);
        assert!(parse_addr("zz").is_err());
    }
}
