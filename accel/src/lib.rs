//! Accelerators: the engines that run a vCPU of the ringside machine.
//!
//! Modelled on kvm-ioctls' `VcpuExit`: the machine loop calls
//! [`Accelerator::run`], the backend executes guest code until something
//! needs the machine, and returns a [`VcpuExit`]. Port I/O and MMIO are
//! dispatched by the backend itself to the machine's [`cpu::Platform`] (the
//! one device bus both backends share) and counted in [`ExitStats`], the way
//! a KVM userspace loop handles `KVM_EXIT_IO` before re-entering.
//!
//! * [`tcg`]: the interpreter (`--accel tcg`).
//! * [`kvm`]: the host CPU through /dev/kvm (`--accel kvm`).
//! * [`difftest`]: KVM as the oracle for the interpreter, instruction by
//!   instruction.
//! * [`lockstep`]: a whole guest on the interpreter and on KVM together,
//!   stopped at the first divergence (`--accel lockstep`).

pub mod difftest;
pub mod kvm;
pub mod lockstep;
pub mod monitor;
pub mod stats;
pub mod tcg;

pub use stats::ExitStats;

use cpu::{CpuState, Platform, TraceFlags};
use std::time::Instant;
use thiserror::Error;

/// Why [`Accelerator::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuExit {
    /// The guest executed HLT and waits for an interrupt. `interrupts_enabled`
    /// is RFLAGS.IF at that point: HLT with IF=0 and nothing pending is a
    /// dead machine.
    Hlt { interrupts_enabled: bool },
    /// The platform asked to stop (debug-exit port, reset request).
    Stopped,
    /// Triple fault (`KVM_EXIT_SHUTDOWN`): the machine shuts down.
    Shutdown { reason: String },
    /// The slice ended (deadline or instruction budget): the machine polls
    /// its devices and runs again.
    SliceEnd,
    /// The instruction limit given to the backend was reached.
    InsnLimit,
    /// The host KVM gave up (`KVM_EXIT_INTERNAL_ERROR`, emulation failure).
    /// A limit of the host, not a ringside bug.
    HostLimit { detail: String },
    /// The virtualization monitor cannot go on with this guest (it did
    /// something the monitor does not virtualize, e.g. left protected
    /// mode under `--virt full`). A limit of ringside's monitor, reported
    /// with what the guest did.
    MonitorStop { reason: String },
    /// Lockstep (`--accel lockstep`) found the interpreter and KVM in
    /// different states after the same instruction; the report says where
    /// and shows both states side by side.
    Divergence { report: String },
}

/// How long one [`Accelerator::run`] call may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunSlice {
    /// Return [`VcpuExit::SliceEnd`] at (or soon after) this host time: a
    /// device timer is due. `None`: no timer armed.
    pub deadline: Option<Instant>,
    /// Return [`VcpuExit::InsnLimit`] once this many guest instructions
    /// have retired in total (only backends that count instructions).
    pub insn_limit: Option<u64>,
}

/// Backend errors that are not guest behaviour.
#[derive(Debug, Error)]
pub enum AccelError {
    /// The accelerator can't be used on this host (e.g. no /dev/kvm).
    #[error("{0}")]
    Unavailable(String),
    /// An ioctl or host call failed unexpectedly.
    #[error("{what}: {detail}")]
    Host { what: &'static str, detail: String },
    /// The requested guest state can't be loaded into this backend.
    #[error("invalid vCPU state: {0}")]
    BadState(String),
}

/// One vCPU engine over the machine's RAM.
pub trait Accelerator {
    /// "tcg" or "kvm".
    fn name(&self) -> &'static str;
    /// A longer description for summaries, e.g. "kvm (kvm-pvm, no VT-x)".
    fn describe(&self) -> String {
        self.name().to_string()
    }
    /// Load the architectural state (boot state, or a state moved over from
    /// another backend).
    fn set_state(&mut self, state: &CpuState) -> Result<(), AccelError>;
    /// Read back the architectural state.
    fn get_state(&mut self) -> Result<CpuState, AccelError>;
    /// Run guest code until an exit the machine must handle.
    fn run(&mut self, platform: &mut dyn Platform, slice: RunSlice)
        -> Result<VcpuExit, AccelError>;
    /// Execute exactly one instruction, or deliver one pending event, and
    /// return: [`VcpuExit::SliceEnd`] when the vCPU can go on. For
    /// debuggers (the TUI); backends that can't single-step say so with
    /// [`Accelerator::can_step`] and return [`AccelError::Unavailable`].
    fn step(&mut self, _platform: &mut dyn Platform) -> Result<VcpuExit, AccelError> {
        Err(AccelError::Unavailable(format!(
            "{}: single-stepping is not supported",
            self.name()
        )))
    }
    /// Whether [`Accelerator::step`] works on this backend.
    fn can_step(&self) -> bool {
        false
    }
    /// Choose which events the backend reports through
    /// [`Platform::event`]. Default: the backend reports none.
    fn set_trace(&mut self, _trace: TraceFlags) {}
    /// Instructions retired so far, if this backend can count them.
    fn instructions(&self) -> Option<u64>;
    /// Exits and traps so far, by kind.
    fn stats(&self) -> &ExitStats;
    /// The virtualization monitor's counters, when one runs the guest
    /// (`--virt full/trap-only/para/hw`).
    fn monitor_stats(&self) -> Option<monitor::MonitorStats> {
        None
    }
    /// The software CPU's own counters (TLB misses, walk references),
    /// where the backend has them.
    fn cpu_stats(&self) -> Option<cpu::CpuStats> {
        None
    }
    /// Under nested paging (`--virt hw`): the 2-D walk of `va` as text
    /// lines, each guest level with the nested walk of its entry and the
    /// reference count. `None` where there is no nested paging.
    fn walk_2d_lines(&self, _va: u64) -> Option<Vec<String>> {
        None
    }
    /// A device wrote guest memory by DMA at machine address `ma`: forget
    /// any code decoded from it. Backends that decode nothing ignore it.
    fn invalidate_code(&mut self, _ma: mmu::MachineAddr, _len: u64) {}
    /// The CPL the guest really runs at, when it differs from the CPL it
    /// believes it has (`get_state`): deprivileged guest kernels.
    fn real_cpl(&self) -> Option<u8> {
        None
    }
}
