//! The interpreter's processor object.
//!
//! Contract between the cpu-core task (this file, memory.rs, decode.rs,
//! exec.rs, flags.rs, operand.rs, insn/) and the cpu-system task (system/):
//! the method signatures below are the agreed interface.
//!
//! Flags: while [`Cpu::run`] executes, the six status flags live in the
//! lazy-flags record (`flags`), not in `state.rflags`. `run` loads them
//! from `state.rflags` on entry and stores them back on exit, so between
//! runs `state` is complete. Inside the run loop, read RFLAGS through
//! [`Cpu::rflags`] and write it through [`Cpu::set_rflags`]; the non-status
//! bits of `state.rflags` (IF, TF, DF, IOPL, VM, AC…) are always current.

use crate::decode::BlockCache;
use crate::event::TraceFlags;
use crate::fault::Fault;
use crate::flags::LazyFlags;
use crate::memory::ModeCache;
use crate::platform::Platform;
use crate::state::{rflags, CpuState, SegReg};
use mmu::{GuestRam, MachineAddr, PhysLayout, Tlb};
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
    /// An intercepted event (see [`crate::intercept`]): the monitor must
    /// handle it before the guest goes on.
    VmExit(crate::intercept::VmExit),
}

/// Counters of the interpreter's own machinery (not architectural).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Blocks decoded into the block cache.
    pub blocks_decoded: u64,
    /// Blocks dropped because their code page was written.
    pub blocks_invalidated: u64,
    /// Instructions executed outside the block cache (page-crossing,
    /// single-step, tracing, MMIO code).
    pub uncached_steps: u64,
    /// Full block-cache flushes (set_state, cache full).
    pub cache_flushes: u64,
    /// TLB misses (page walks made to fill the TLB).
    pub tlb_misses: u64,
    /// Memory references made by those walks: guest page-table entries
    /// plus, under a second stage, its own references (the 2-D walk).
    pub walk_refs: u64,
    /// Instructions the binary-translation scan redirected to the monitor
    /// when their block was decoded.
    pub bt_redirected: u64,
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
    /// The six status flags, lazily (see flags.rs).
    pub(crate) flags: LazyFlags,
    /// Linear → machine translations.
    pub(crate) tlb: Box<Tlb>,
    /// Decoded blocks, keyed by machine address.
    pub(crate) blocks: BlockCache,
    /// Set by an instruction that must end the current block: device I/O,
    /// a write to a code page, an interrupted REP, a state change the block
    /// was decoded under. Cleared by the run loop.
    pub(crate) exit_block: bool,
    /// Port or MMIO I/O happened: the run loop checks `stop_requested`.
    pub(crate) io_done: bool,
    /// Cached mode facts for the memory fast path (see memory.rs).
    pub(crate) mode: ModeCache,
    /// Blocks to run before the next look at pending events; 0 forces a
    /// look at the next instruction boundary.
    pub(crate) event_countdown: u32,
    pub(crate) stats: CpuStats,
    /// The monitor's intercept controls (None: nothing exits).
    pub(crate) intercepts: Option<Box<crate::intercept::Intercepts>>,
    /// The exit an instruction raised, on its way to the run loop.
    pub(crate) pending_exit: Option<crate::intercept::VmExit>,
    /// A monitor is emulating through this CPU: intercepts are off and
    /// nested-paging misses are device accesses.
    pub(crate) bypass: bool,
    /// Guest-physical → machine when a monitor keeps one (p2m or nested
    /// tables); `None`: the fixed `layout`.
    pub(crate) stage2: Option<Arc<dyn mmu::GuestPhysMap>>,
    /// Machine pages this CPU wrote, when a monitor asked to know.
    pub(crate) write_log: Option<Vec<u64>>,
}

impl Cpu {
    pub fn new(ram: Arc<GuestRam>, layout: PhysLayout) -> Self {
        let ram_size = ram.size();
        let state = CpuState::reset();
        let mut flags = LazyFlags::default();
        flags.load(state.rflags);
        let mut cpu = Cpu {
            state,
            trace: TraceFlags::default(),
            ram,
            layout,
            insn_start: 0,
            retired: 0,
            flags,
            tlb: Box::new(Tlb::new()),
            blocks: BlockCache::new(ram_size),
            exit_block: false,
            io_done: false,
            mode: ModeCache::default(),
            event_countdown: 0,
            stats: CpuStats::default(),
            intercepts: None,
            pending_exit: None,
            bypass: false,
            stage2: None,
            write_log: None,
        };
        cpu.refresh_mode();
        cpu
    }

    /// Materialized RFLAGS.
    #[inline]
    pub fn rflags(&self) -> u64 {
        (self.state.rflags & !rflags::STATUS) | self.flags.materialize() | rflags::FIXED1
    }

    /// Write RFLAGS (all bits; the caller applies privilege masking).
    /// Bit 1 is forced to 1, bits 3, 5, 15 and 22-63 to 0.
    #[inline]
    pub fn set_rflags(&mut self, v: u64) {
        const RESERVED: u64 = (1 << 3) | (1 << 5) | (1 << 15) | !0x3f_ffff;
        let v = (v & !RESERVED) | rflags::FIXED1;
        self.state.rflags = v;
        self.flags.load(v);
        // IF/TF/AC and friends may have changed what the run loop must do.
        self.exit_block = true;
        self.event_countdown = 0;
        self.refresh_mode();
    }

    /// Instructions retired so far (an interrupted REP string instruction
    /// counts once per resumption).
    pub fn instructions(&self) -> u64 {
        self.retired
    }

    /// Interpreter counters.
    pub fn stats(&self) -> CpuStats {
        self.stats
    }

    /// A complete copy of the architectural state (flags materialized).
    pub fn get_state(&self) -> CpuState {
        let mut s = self.state.clone();
        s.rflags = self.rflags();
        s
    }

    /// Load an architectural state. Drops the TLB and the decoded-block
    /// cache: the state may come from another backend that changed memory.
    pub fn set_state(&mut self, s: &CpuState) {
        self.state = s.clone();
        self.state.rflags |= rflags::FIXED1;
        self.flags.load(self.state.rflags);
        self.flush_code_cache();
        self.exit_block = true;
        self.event_countdown = 0;
        self.refresh_mode();
    }

    /// Translate guest-physical addresses through `map` (the monitor's
    /// p2m, or nested tables) instead of the fixed layout; `None` restores
    /// the layout. Flushes the TLB.
    pub fn set_stage2(&mut self, map: Option<Arc<dyn mmu::GuestPhysMap>>) {
        self.stage2 = map;
        self.tlb.flush_all();
        self.blocks.new_epoch();
        self.exit_block = true;
    }

    /// Start (or stop) logging the machine pages this CPU writes; while
    /// logging, every write takes the slow path so none is missed.
    pub fn set_write_log(&mut self, on: bool) {
        self.write_log = on.then(Vec::new);
        self.tlb.flush_all();
    }

    /// The machine page addresses written since the last call.
    pub fn take_write_log(&mut self) -> Vec<u64> {
        match &mut self.write_log {
            Some(v) => std::mem::take(v),
            None => Vec::new(),
        }
    }

    /// Drop every translation (a monitor changed the tables under the CPU).
    pub fn flush_tlb_all(&mut self) {
        self.flush_tlb(true);
    }

    /// Drop the translation of one linear page.
    pub fn flush_tlb_page(&mut self, lin: u64) {
        self.invlpg(lin);
    }

    /// Drop every decoded block (e.g. after memory was changed behind the
    /// CPU's back, as a loader or another backend does).
    pub fn flush_code_cache(&mut self) {
        self.blocks.clear();
        self.stats.cache_flushes += 1;
        // TLB entries of former code pages may lack write rights; that is
        // only slower, never wrong, but drop them to get the fast path back.
        self.tlb.flush_all();
    }

    /// Guest memory at machine address `ma` was written by someone other
    /// than this CPU's instructions (DMA, a loader, another backend):
    /// forget decoded code in that range.
    pub fn invalidate_code(&mut self, ma: MachineAddr, len: u64) {
        if len == 0 {
            return;
        }
        let first = ma.0 >> 12;
        let last = ma.0.saturating_add(len - 1) >> 12;
        for page in first..=last {
            let n = self.blocks.invalidate_page(page << 12);
            if n > 0 {
                self.stats.blocks_invalidated += n;
                self.exit_block = true;
            }
        }
    }

    /// Execute up to `budget` instructions.
    pub fn run(&mut self, plat: &mut dyn Platform, budget: u64) -> CpuExit {
        // `state` may have been edited since the last run.
        self.flags.load(self.state.rflags);
        self.refresh_mode();
        self.event_countdown = 0;
        let exit = crate::exec::run_loop(self, plat, budget);
        self.state.rflags = self.rflags();
        exit
    }

    /// Execute exactly one instruction, or deliver one pending event.
    /// Returns [`CpuExit::Budget`] when the CPU can go on.
    pub fn step(&mut self, plat: &mut dyn Platform) -> CpuExit {
        self.flags.load(self.state.rflags);
        self.refresh_mode();
        let exit = crate::exec::step(self, plat);
        self.state.rflags = self.rflags();
        exit
    }

    // ---- memory interface used by system/ (implemented in memory.rs) ----

    /// Read `size` bytes at linear address `lin`. `user` = the access is a
    /// user-mode access (CPL 3 and not an implicit supervisor access such as
    /// a descriptor-table or TSS read).
    pub(crate) fn lin_read(
        &mut self,
        plat: &mut dyn Platform,
        lin: u64,
        size: u8,
        user: bool,
    ) -> Result<u64, Fault> {
        self.refresh_mode();
        match size {
            1 => self.read_lin::<1>(plat, lin, user),
            2 => self.read_lin::<2>(plat, lin, user),
            4 => self.read_lin::<4>(plat, lin, user),
            _ => self.read_lin::<8>(plat, lin, user),
        }
    }
    /// Write `size` bytes at linear address `lin` (see `lin_read`).
    pub(crate) fn lin_write(
        &mut self,
        plat: &mut dyn Platform,
        lin: u64,
        size: u8,
        val: u64,
        user: bool,
    ) -> Result<(), Fault> {
        self.refresh_mode();
        match size {
            1 => self.write_lin::<1>(plat, lin, val, user),
            2 => self.write_lin::<2>(plat, lin, val, user),
            4 => self.write_lin::<4>(plat, lin, val, user),
            _ => self.write_lin::<8>(plat, lin, val, user),
        }
    }
    /// Read through a segment: limit/type checks (#GP or #SS), then paging
    /// with CPL-derived privilege.
    pub(crate) fn seg_read(
        &mut self,
        plat: &mut dyn Platform,
        seg: SegReg,
        off: u64,
        size: u8,
    ) -> Result<u64, Fault> {
        self.refresh_mode();
        match size {
            1 => self.read_mem::<1>(plat, seg, off),
            2 => self.read_mem::<2>(plat, seg, off),
            4 => self.read_mem::<4>(plat, seg, off),
            _ => self.read_mem::<8>(plat, seg, off),
        }
    }
    /// Write through a segment (see `seg_read`).
    pub(crate) fn seg_write(
        &mut self,
        plat: &mut dyn Platform,
        seg: SegReg,
        off: u64,
        size: u8,
        val: u64,
    ) -> Result<(), Fault> {
        self.refresh_mode();
        match size {
            1 => self.write_mem::<1>(plat, seg, off, val),
            2 => self.write_mem::<2>(plat, seg, off, val),
            4 => self.write_mem::<4>(plat, seg, off, val),
            _ => self.write_mem::<8>(plat, seg, off, val),
        }
    }
    /// Push `size` bytes on SS:RSP using the current stack-address size.
    #[allow(dead_code)] // contract API for system/
    pub(crate) fn push(
        &mut self,
        plat: &mut dyn Platform,
        size: u8,
        val: u64,
    ) -> Result<(), Fault> {
        self.refresh_mode();
        match size {
            2 => self.push_n::<2>(plat, val),
            4 => self.push_n::<4>(plat, val),
            _ => self.push_n::<8>(plat, val),
        }
    }
    /// Pop `size` bytes from SS:RSP.
    #[allow(dead_code)] // contract API for system/
    pub(crate) fn pop(&mut self, plat: &mut dyn Platform, size: u8) -> Result<u64, Fault> {
        self.refresh_mode();
        match size {
            2 => self.pop_n::<2>(plat),
            4 => self.pop_n::<4>(plat),
            _ => self.pop_n::<8>(plat),
        }
    }
    /// Flush the TLB (CR3 write: `global` = false keeps global pages; CR4/CR0
    /// paging-mode changes: `global` = true). The decoded-block cache is
    /// keyed by machine address and code size, so it needs no flush here.
    pub(crate) fn flush_tlb(&mut self, global: bool) {
        if global {
            self.tlb.flush_all();
        } else {
            self.tlb.flush_non_global();
        }
        self.blocks.new_epoch();
        self.exit_block = true;
    }
    /// INVLPG.
    pub(crate) fn invlpg(&mut self, lin: u64) {
        self.tlb.invlpg(mmu::GuestVirtAddr(lin));
        self.blocks.new_epoch();
        self.exit_block = true;
    }
}
