//! `ringside`: boot x86-64 kernels on ringside's own CPU or on KVM.

mod bench;
mod boot;
mod capture;
mod cli;
mod compare;
mod info;
mod isa;
mod machine;
mod status;
mod trace;
mod tui_cmd;

use clap::Parser;
use cli::{Cli, Command, RunArgs};
use machine::{Machine, MachineConfig, MachineError};
use status::code;
use std::process::ExitCode;
use std::time::{Duration, Instant};
/// Thousands separators for counts ("1,234,567"), shared with the TUI.
pub use tui::screen::group;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::normalize_args(std::env::args_os());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors.
            let status = if e.use_stderr() { code::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(status as u8);
        }
    };
    let status = match cli.command {
        Command::Run(args) => run(&args),
        Command::Info => info::print(),
        Command::Bench(args) => bench::run(&args),
        Command::Tui(args) => tui_cmd::run(&args),
        Command::Isa(args) => isa::run(&args),
        Command::Compare(args) => compare::run(&args),
    };
    ExitCode::from(status as u8)
}

/// Die quietly on a closed pipe (`ringside info | head -1`), as Unix tools
/// do, instead of Rust's default of ignoring SIGPIPE and then panicking in
/// `println!` on EPIPE.
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists;
    // installing SIG_DFL for SIGPIPE has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Print a one-line error and return its status.
fn fail(status: i32, msg: impl std::fmt::Display) -> i32 {
    eprintln!("ringside: error: {msg}");
    status
}

/// The exit status for a failure to build the machine.
fn machine_error_code(e: &MachineError) -> i32 {
    match e {
        MachineError::Ram(_) => code::MEMORY,
        MachineError::Boot(b) => b.exit_code(),
        MachineError::Accel(accel::AccelError::Unavailable(_)) => code::USAGE,
        MachineError::Accel(_) => code::INTERNAL,
        MachineError::Board(_) => code::FILE,
        MachineError::MemorySize(_) => code::MEMORY,
    }
}

fn run(args: &RunArgs) -> i32 {
    let memory = match cli::parse_memory(&args.memory) {
        Ok(m) => m,
        Err(e) => return fail(code::MEMORY, e),
    };
    let trace = match trace::parse_flags(&args.trace) {
        Ok(t) => t,
        Err(e) => return fail(code::USAGE, e),
    };
    let timeout = match args.timeout {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            return fail(
                code::USAGE,
                format!("--timeout {t} must be a positive number of seconds"),
            )
        }
        Some(t) => Some(Duration::from_secs_f64(t)),
        None => None,
    };
    if args.max_insns.is_some() && args.accel == machine::AccelKind::Kvm {
        return fail(
            code::USAGE,
            "--max-insns needs an accelerator that counts instructions: use --accel tcg, or --timeout with kvm",
        );
    }
    if args.virt.mode().is_some() && args.accel != machine::AccelKind::Tcg {
        return fail(
            code::USAGE,
            "--virt runs ringside's own monitor on the software CPU: use --accel tcg (KVM is the hardware-assisted mode itself)",
        );
    }
    let cfg = MachineConfig {
        memory,
        accel: args.accel,
        virt: args.virt.mode(),
        disk: args.disk.clone(),
        boot: boot::BootConfig {
            kernel: args.kernel.clone(),
            append: args.append.clone(),
            initrd: args.initrd.clone(),
            flat_addr: args.flat_addr,
        },
        trace,
        serial_out: Box::new(std::io::stdout()),
        stdin: !args.no_stdin,
        max_insns: args.max_insns,
        timeout,
    };
    let mut m = match Machine::new(cfg) {
        Ok(m) => m,
        Err(e) => return fail(machine_error_code(&e), e),
    };
    let start = Instant::now();
    let end = match m.run() {
        Ok(end) => end,
        Err(e) => {
            return fail(
                code::INTERNAL,
                format!("{e} (this is a ringside bug: please report it)"),
            )
        }
    };
    let wall = start.elapsed();
    if !end.is_guest_exit() {
        eprintln!("ringside: {end}");
    }
    if !args.quiet {
        eprintln!("{}", summary(&m, &end, wall));
    }
    end.exit_code()
}

/// The one-line run summary: what ran, how it ended, how much, how fast.
fn summary(m: &Machine, end: &status::RunEnd, wall: Duration) -> String {
    let secs = wall.as_secs_f64();
    let mut parts = vec![format!("ringside: {}", m.accel.describe()), end.label()];
    if let Some(n) = m.accel.instructions() {
        parts.push(format!("{} insns", group(n)));
    }
    parts.push(format!("{secs:.3} s"));
    if let Some(n) = m.accel.instructions() {
        if secs > 0.0 {
            parts.push(format!("{:.1} MIPS", n as f64 / secs / 1e6));
        }
    }
    let exits: Vec<String> = m
        .accel
        .stats()
        .iter()
        .map(|(k, v)| format!("{k} {}", group(v)))
        .collect();
    if !exits.is_empty() {
        parts.push(format!("exits: {}", exits.join(", ")));
    }
    parts.join(" · ")
}
