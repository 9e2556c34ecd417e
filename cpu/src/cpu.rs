//! The interpreter's processor object. OWNER: cpu-core task.
//!
//! Contract between the cpu-core task (this file, memory.rs, decode.rs,
//! exec.rs, flags.rs, insn/) and the cpu-system task (system/). The method
//! signatures below are the agreed interface; bodies marked `todo!` are being
//! written by cpu-core.

use crate::event::TraceFlags;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{CpuState, SegReg};
use mmu::{GuestRam, PhysLayout};
use std::sync::Arc;

/// Why [`Cpu::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuExit {
    /// The instruction budget given to `run` is used up.
    Budget,
    /// HLT: the CPU waits for an interrupt (and none is pending).
    Halted,
    /// The platform asked to stop (debug-exit).
    Stopped,
    /// Triple fault: the CPU shut down. Carries the fault that could not be
    /// delivered.
    Shutdown(Fault),
}

/// One x86-64 logical processor, interpreted.
pub struct Cpu {
    /// Architectural state. While running, the six status flags may live in
    /// the lazy-flags record instead of `state.rflags`: read RFLAGS through
    /// [`Cpu::rflags`] and write it through [`Cpu::set_rflags`].
    pub state: CpuState,
    pub trace: TraceFlags,
    pub(crate) ram: Arc<GuestRam>,
    pub(crate) layout: PhysLayout,
    /// RIP of the instruction being executed (faults report it).
    pub(crate) insn_start: u64,
    /// Instructions retired.
    pub(crate) retired: u64,
}

impl Cpu {
    pub fn new(ram: Arc<GuestRam>, layout: PhysLayout) -> Self {
        Cpu {
            state: CpuState::reset(),
            trace: TraceFlags::default(),
            ram,
            layout,
            insn_start: 0,
            retired: 0,
        }
    }

    /// Materialized RFLAGS.
    pub fn rflags(&self) -> u64 {
        todo!("cpu-core")
    }
    /// Write RFLAGS (all bits; the caller applies privilege masking).
    pub fn set_rflags(&mut self, _v: u64) {
        todo!("cpu-core")
    }
    /// Execute up to `budget` instructions.
    pub fn run(&mut self, _plat: &mut dyn Platform, _budget: u64) -> CpuExit {
        todo!("cpu-core")
    }

    // ---- memory interface used by system/ (implemented in memory.rs) ----

    /// Read `size` bytes at linear address `lin`. `user` = the access is a
    /// user-mode access (CPL 3 and not an implicit supervisor access such as
    /// a descriptor-table or TSS read).
    pub(crate) fn lin_read(
        &mut self,
        _plat: &mut dyn Platform,
        _lin: u64,
        _size: u8,
        _user: bool,
    ) -> Result<u64, Fault> {
        todo!("cpu-core")
    }
    /// Write `size` bytes at linear address `lin` (see `lin_read`).
    pub(crate) fn lin_write(
        &mut self,
        _plat: &mut dyn Platform,
        _lin: u64,
        _size: u8,
        _val: u64,
        _user: bool,
    ) -> Result<(), Fault> {
        todo!("cpu-core")
    }
    /// Read through a segment: limit/type checks (#GP or #SS), then paging
    /// with CPL-derived privilege.
    pub(crate) fn seg_read(
        &mut self,
        _plat: &mut dyn Platform,
        _seg: SegReg,
        _off: u64,
        _size: u8,
    ) -> Result<u64, Fault> {
        todo!("cpu-core")
    }
    /// Write through a segment (see `seg_read`).
    pub(crate) fn seg_write(
        &mut self,
        _plat: &mut dyn Platform,
        _seg: SegReg,
        _off: u64,
        _size: u8,
        _val: u64,
    ) -> Result<(), Fault> {
        todo!("cpu-core")
    }
    /// Push `size` bytes on SS:RSP using the current stack-address size.
    pub(crate) fn push(
        &mut self,
        _plat: &mut dyn Platform,
        _size: u8,
        _val: u64,
    ) -> Result<(), Fault> {
        todo!("cpu-core")
    }
    /// Pop `size` bytes from SS:RSP.
    pub(crate) fn pop(&mut self, _plat: &mut dyn Platform, _size: u8) -> Result<u64, Fault> {
        todo!("cpu-core")
    }
    /// Flush the TLB (CR3 write: `global` = false keeps global pages; CR4/CR0
    /// paging-mode changes: `global` = true) and the decoded-block cache
    /// when the mode changes what decodes.
    pub(crate) fn flush_tlb(&mut self, _global: bool) {
        todo!("cpu-core")
    }
    /// INVLPG.
    pub(crate) fn invlpg(&mut self, _lin: u64) {
        todo!("cpu-core")
    }
}
