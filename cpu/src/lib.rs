//! The ringside x86-64 CPU: architectural state and the interpreter.
//!
//! * [`state`]: registers, segment caches, control registers, MSRs.
//! * [`fault`]: exceptions as values.
//! * [`platform`]: what the CPU needs from the machine (I/O, interrupts, time).
//! * [`event`]: the trace/trap event stream.
//! * [`coverage`]: which iced-x86 `Code`s the interpreter implements.
//! * the interpreter: decode (iced-x86) → decoded-block cache → one semantic
//!   function per instruction family, shared with the future JIT.

#[cfg(test)]
mod core_tests;
pub mod coverage;
pub mod cpu;
mod debug;
mod decode;
pub mod event;
mod exec;
pub mod fault;
mod flags;
mod insn;
pub mod intercept;
mod memory;
mod operand;
pub mod platform;
pub mod state;
pub(crate) mod system;

pub use cpu::{Cpu, CpuExit, CpuStats};
pub use event::{CpuEvent, IntKind, TraceFlags, TrapEvent, TrapTranslation, TRAP_CAUSES};
pub use fault::Fault;
pub use intercept::{ExitReason, Intercepts, IoIntercept, VmExit};
pub use platform::Platform;
pub use state::{CpuMode, CpuState, DescTable, SegReg, Segment};
pub use system::cpuid::{cpuid, cpuid_entries, CpuidEntry};
