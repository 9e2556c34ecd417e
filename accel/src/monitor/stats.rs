//! What the monitor counts: traps by cause, and where the time went.
//!
//! The causes are the rows of `ringside compare`; their `key`s are the
//! stable field names of its `--json` output (docs/VIRTUALIZATION.md).

use std::time::Duration;

/// Why control left the guest for the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrapCause {
    /// A privileged instruction faulted at the deprivileged CPL (full,
    /// trap-only, para) — or, under hw, a CR access / MSR exit.
    Privileged,
    /// A sensitive-but-unprivileged instruction found by the block scan.
    Sensitive,
    /// A page fault the guest must see (reflected through its IDT).
    GuestPageFault,
    /// A shadow-table miss the monitor fixed silently.
    HiddenPageFault,
    /// A write to a write-protected guest page-table page.
    PtWrite,
    /// MOV CR3 or INVLPG (the shadow must follow).
    Cr3Invlpg,
    /// Port I/O.
    Io,
    /// MMIO (a not-present shadow entry, or an EPT violation on a device).
    Mmio,
    /// VMCALL hypercall.
    Hypercall,
    /// HLT.
    Hlt,
    /// The guest re-enabled interrupts with one pending (STI/POPF under
    /// full, the event-check hypercall under para, interrupt-window exit
    /// under hw).
    InterruptWindow,
    /// A device interrupt arrived while the guest ran.
    ExternalInterrupt,
    /// Any other exception the guest raised (reflected to it).
    Exception,
    /// CPUID (always exits under hw; CPUID faulting under para).
    Cpuid,
}

impl TrapCause {
    /// Every cause, in table order.
    pub const ALL: [TrapCause; 14] = [
        TrapCause::Privileged,
        TrapCause::Sensitive,
        TrapCause::GuestPageFault,
        TrapCause::HiddenPageFault,
        TrapCause::PtWrite,
        TrapCause::Cr3Invlpg,
        TrapCause::Io,
        TrapCause::Mmio,
        TrapCause::Hypercall,
        TrapCause::Hlt,
        TrapCause::InterruptWindow,
        TrapCause::ExternalInterrupt,
        TrapCause::Exception,
        TrapCause::Cpuid,
    ];

    /// The stable machine name (JSON/CSV keys, event causes).
    pub fn key(self) -> &'static str {
        match self {
            TrapCause::Privileged => "privileged",
            TrapCause::Sensitive => "sensitive",
            TrapCause::GuestPageFault => "guest_pf",
            TrapCause::HiddenPageFault => "hidden_pf",
            TrapCause::PtWrite => "pt_write",
            TrapCause::Cr3Invlpg => "cr3_invlpg",
            TrapCause::Io => "io",
            TrapCause::Mmio => "mmio",
            TrapCause::Hypercall => "hypercall",
            TrapCause::Hlt => "hlt",
            TrapCause::InterruptWindow => "irq_window",
            TrapCause::ExternalInterrupt => "external_irq",
            TrapCause::Exception => "exception",
            TrapCause::Cpuid => "cpuid",
        }
    }

    /// The row label in tables.
    pub fn label(self) -> &'static str {
        match self {
            TrapCause::Privileged => "privileged instruction",
            TrapCause::Sensitive => "sensitive insn (translated)",
            TrapCause::GuestPageFault => "guest-visible #PF",
            TrapCause::HiddenPageFault => "hidden shadow fault",
            TrapCause::PtWrite => "page-table write",
            TrapCause::Cr3Invlpg => "CR3 write / INVLPG",
            TrapCause::Io => "I/O port",
            TrapCause::Mmio => "MMIO",
            TrapCause::Hypercall => "hypercall",
            TrapCause::Hlt => "HLT",
            TrapCause::InterruptWindow => "interrupt window",
            TrapCause::ExternalInterrupt => "external interrupt",
            TrapCause::Exception => "other exception",
            TrapCause::Cpuid => "CPUID",
        }
    }

    fn index(self) -> usize {
        TrapCause::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }
}

/// The monitor's counters for one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorStats {
    traps: [u64; 14],
    /// Host time spent in the monitor's handlers.
    pub monitor_time: Duration,
    /// Host time spent running guest code (between traps).
    pub guest_time: Duration,
    /// Shadow page tables thrown away (CR3 switch without a cached root,
    /// pool exhausted, paging-mode change).
    pub shadow_flushes: u64,
    /// Shadow entries installed (fills) and updated in place.
    pub shadow_fills: u64,
    /// Instructions the monitor emulated on its virtual CPU.
    pub emulated: u64,
}

impl MonitorStats {
    /// Count one trap.
    #[inline]
    pub fn count(&mut self, cause: TrapCause) {
        self.traps[cause.index()] += 1;
    }
    /// The count for `cause`.
    pub fn get(&self, cause: TrapCause) -> u64 {
        self.traps[cause.index()]
    }
    /// All traps.
    pub fn total(&self) -> u64 {
        self.traps.iter().sum()
    }
    /// (cause, count) in table order.
    pub fn iter(&self) -> impl Iterator<Item = (TrapCause, u64)> + '_ {
        TrapCause::ALL.iter().map(|&c| (c, self.get(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_cause() {
        let mut s = MonitorStats::default();
        s.count(TrapCause::PtWrite);
        s.count(TrapCause::PtWrite);
        s.count(TrapCause::Cpuid);
        assert_eq!(s.get(TrapCause::PtWrite), 2);
        assert_eq!(s.get(TrapCause::Cpuid), 1);
        assert_eq!(s.total(), 3);
        let keys: std::collections::HashSet<_> = TrapCause::ALL.iter().map(|c| c.key()).collect();
        assert_eq!(keys.len(), TrapCause::ALL.len());
        // The CPU's list of cause names (what the TUI's breakpoints accept)
        // is this list, in the same order.
        let ours: Vec<&str> = TrapCause::ALL.iter().map(|c| c.key()).collect();
        assert_eq!(ours, cpu::TRAP_CAUSES);
    }
}
