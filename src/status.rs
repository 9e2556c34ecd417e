//! How a ringside run ends, and the process exit status for each ending.
//!
//! A guest that writes `v` to the debug-exit port makes ringside exit with
//! `(v << 1) | 1`, QEMU's isa-debug-exit convention: always an odd number.
//! Every status ringside chooses itself is therefore even, so a script can
//! tell "the guest said so" from "ringside stopped it" at a glance.

use std::fmt;

/// Exit statuses of the `ringside` process. Documented in README.md.
pub mod code {
    /// Command-line error, or the requested accelerator is unavailable.
    pub const USAGE: i32 = 2;
    /// The kernel (or initrd) file is missing or unreadable.
    pub const FILE: i32 = 4;
    /// The kernel file is not a loadable image (not ELF, truncated, no entry).
    pub const FORMAT: i32 = 6;
    /// The kernel does not fit: segments outside RAM or larger than RAM.
    pub const FIT: i32 = 8;
    /// Bad memory size.
    pub const MEMORY: i32 = 10;
    /// The guest triple-faulted: the CPU shut down.
    pub const TRIPLE_FAULT: i32 = 20;
    /// The guest halted with interrupts disabled and nothing pending: dead.
    pub const DEAD_HALT: i32 = 22;
    /// `--max-insns` reached.
    pub const INSN_LIMIT: i32 = 24;
    /// `--timeout` reached.
    pub const TIMEOUT: i32 = 26;
    /// The host KVM could not run an instruction (a limit of the host).
    pub const HOST_LIMIT: i32 = 28;
    /// An internal ringside error (a bug: please report it).
    pub const INTERNAL: i32 = 30;
    /// The guest halted waiting for an interrupt that can never come.
    pub const STUCK_HALT: i32 = 32;
    /// The virtualization monitor (`--virt`) cannot virtualize what the
    /// guest did (a limit of ringside's monitor, named in the message).
    pub const MONITOR_STOP: i32 = 34;
    /// `--accel lockstep`: the interpreter and KVM diverged (the report
    /// shows where).
    pub const DIVERGENCE: i32 = 36;
}

/// The end of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// The guest wrote `value` to the debug-exit port.
    GuestExit {
        value: u32,
    },
    TripleFault {
        detail: String,
    },
    DeadHalt {
        rip: u64,
    },
    StuckHalt {
        rip: u64,
    },
    InsnLimit {
        limit: u64,
    },
    Timeout {
        secs: f64,
    },
    HostLimit {
        detail: String,
    },
    MonitorStop {
        reason: String,
    },
    Divergence {
        report: String,
    },
}

impl RunEnd {
    /// Process exit status.
    pub fn exit_code(&self) -> i32 {
        match self {
            // QEMU's exit((val << 1) | 1); the OS keeps the low 8 bits.
            RunEnd::GuestExit { value } => ((value.wrapping_shl(1) | 1) & 0xff) as i32,
            RunEnd::TripleFault { .. } => code::TRIPLE_FAULT,
            RunEnd::DeadHalt { .. } => code::DEAD_HALT,
            RunEnd::StuckHalt { .. } => code::STUCK_HALT,
            RunEnd::InsnLimit { .. } => code::INSN_LIMIT,
            RunEnd::Timeout { .. } => code::TIMEOUT,
            RunEnd::HostLimit { .. } => code::HOST_LIMIT,
            RunEnd::MonitorStop { .. } => code::MONITOR_STOP,
            RunEnd::Divergence { .. } => code::DIVERGENCE,
        }
    }

    /// A few words for the run summary (the full sentence is printed
    /// separately when the guest did not end the run itself).
    pub fn label(&self) -> String {
        match self {
            RunEnd::GuestExit { value } => format!("guest exited with code {value}"),
            RunEnd::TripleFault { .. } => "triple fault".into(),
            RunEnd::DeadHalt { .. } => "dead HLT".into(),
            RunEnd::StuckHalt { .. } => "stuck in HLT".into(),
            RunEnd::InsnLimit { .. } => "instruction limit".into(),
            RunEnd::Timeout { .. } => "timeout".into(),
            RunEnd::HostLimit { .. } => "host KVM limit".into(),
            RunEnd::MonitorStop { .. } => "monitor stop".into(),
            RunEnd::Divergence { .. } => "lockstep divergence".into(),
        }
    }

    /// True when the guest itself chose to end the run.
    pub fn is_guest_exit(&self) -> bool {
        matches!(self, RunEnd::GuestExit { .. })
    }
}

impl fmt::Display for RunEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunEnd::GuestExit { value } => write!(f, "guest exited with code {value}"),
            RunEnd::TripleFault { detail } => write!(
                f,
                "guest triple-faulted ({detail}); rerun with --trace int to see the faults that led to it"
            ),
            RunEnd::DeadHalt { rip } => write!(
                f,
                "guest executed HLT at rip {rip:#x} with interrupts disabled and nothing pending: the machine can never wake up"
            ),
            RunEnd::StuckHalt { rip } => write!(
                f,
                "guest is halted at rip {rip:#x} waiting for an interrupt, but no timer is armed and serial input is closed"
            ),
            RunEnd::InsnLimit { limit } => write!(
                f,
                "stopped after --max-insns {limit} instructions; raise the limit to run longer"
            ),
            RunEnd::Timeout { secs } => write!(
                f,
                "stopped after --timeout {secs} s; raise the timeout to run longer"
            ),
            RunEnd::HostLimit { detail } => write!(f, "{detail}"),
            RunEnd::MonitorStop { reason } => write!(
                f,
                "the --virt monitor stopped the guest: {reason}; run it with --virt none to see it without the monitor"
            ),
            RunEnd::Divergence { report } => write!(f, "{}", report.trim_end()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_exit_follows_qemu_convention() {
        assert_eq!(RunEnd::GuestExit { value: 0 }.exit_code(), 1);
        assert_eq!(RunEnd::GuestExit { value: 1 }.exit_code(), 3);
        assert_eq!(RunEnd::GuestExit { value: 0x80 }.exit_code(), 1);
    }

    #[test]
    fn ringside_codes_are_even_and_distinct() {
        let all = [
            code::USAGE,
            code::FILE,
            code::FORMAT,
            code::FIT,
            code::MEMORY,
            code::TRIPLE_FAULT,
            code::DEAD_HALT,
            code::INSN_LIMIT,
            code::TIMEOUT,
            code::HOST_LIMIT,
            code::INTERNAL,
            code::STUCK_HALT,
            code::MONITOR_STOP,
            code::DIVERGENCE,
        ];
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a % 2, 0);
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
