//! Events the CPU reports while it runs: exceptions, interrupts, I/O,
//! privileged operations. The CLI's `--trace`, the TUI's trap pane and the
//! virtualization monitor's counters all consume this one stream.

use crate::fault::Fault;

/// What to report. Cheap to test on the hot path: each is one bool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceFlags {
    /// Every retired instruction (slow: the interpreter leaves its fast path).
    pub exec: bool,
    /// Exceptions and interrupts delivered.
    pub int: bool,
    /// Port and MMIO accesses.
    pub io: bool,
    /// Page walks, TLB flushes, CR3 writes.
    pub mmu: bool,
}

/// How an event entered the CPU (SDM: the "event type").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntKind {
    /// A fault or trap raised by an instruction.
    Exception,
    /// An external interrupt from the interrupt controller.
    External,
    /// NMI.
    Nmi,
    /// INT n.
    Software,
    /// INT3 / INTO (software exceptions: DPL-checked, report next RIP).
    SoftwareException,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuEvent {
    /// An instruction is about to execute (`exec` tracing).
    Exec {
        rip: u64,
        cpl: u8,
        bytes: Vec<u8>,
        text: String,
    },
    /// An instruction the interpreter does not implement; #UD follows.
    Unimplemented {
        rip: u64,
        bytes: Vec<u8>,
        text: String,
    },
    /// An exception or interrupt is delivered.
    Interrupt {
        vector: u8,
        kind: IntKind,
        error_code: Option<u32>,
        rip: u64,
        cpl: u8,
    },
    /// A fault while delivering an earlier one became a double fault.
    DoubleFault { first: Fault, second: Fault },
    /// Port I/O.
    Pio {
        port: u16,
        size: u8,
        write: bool,
        val: u32,
    },
    /// MMIO (a non-RAM physical access).
    Mmio {
        pa: u64,
        size: u8,
        write: bool,
        val: u64,
    },
    /// A control register was written.
    CrWrite { cr: u8, old: u64, new: u64 },
    /// INVLPG or a full TLB flush.
    TlbFlush { va: Option<u64>, global: bool },
    /// The processor mode changed (real → protected → long …).
    ModeChange {
        from: &'static str,
        to: &'static str,
    },
    /// Triple fault: the CPU shuts down.
    TripleFault { last: Fault },
    /// The virtualization monitor took a trap or exit (issue 4's observer
    /// interface: `--trace`, the TUI's trap pane and `compare` all read it).
    Trap(TrapEvent),
}

/// Every trap cause a monitor reports in [`TrapEvent::cause`], in table
/// order (the keys of `ringside compare --json`).
pub const TRAP_CAUSES: &[&str] = &[
    "privileged",
    "sensitive",
    "guest_pf",
    "hidden_pf",
    "pt_write",
    "cr3_invlpg",
    "io",
    "mmio",
    "hypercall",
    "hlt",
    "irq_window",
    "external_irq",
    "exception",
    "cpuid",
];

/// One trap into the virtualization monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapEvent {
    /// The cause: one of the monitor's `TrapCause` keys ("privileged",
    /// "sensitive", "guest_pf", "hidden_pf", "pt_write", "cr3_invlpg",
    /// "io", "mmio", "hypercall", "hlt", "irq_window", "external_irq",
    /// "exception", "cpuid"), the same names `compare --json` uses.
    pub cause: &'static str,
    /// Guest RIP of the instruction (or the next one, for interrupts).
    pub rip: u64,
    /// The virtualization mode ("full", "trap-only", "para", "hw").
    pub mode: &'static str,
    /// The guest's virtual CPL and the CPL it really runs at.
    pub guest_cpl: u8,
    pub real_cpl: u8,
    /// What happened, e.g. "mov cr3, rax: 0x1000 -> 0x5000".
    pub detail: String,
    /// For memory traps: the address's VA → PA → MA steps (None where a
    /// stage did not resolve).
    pub translation: Option<TrapTranslation>,
}

/// The two-stage translation of the address a memory trap concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrapTranslation {
    pub va: u64,
    pub pa: Option<u64>,
    pub ma: Option<u64>,
}
