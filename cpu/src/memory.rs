//! The CPU's view of memory: segmentation, then paging, then the physical
//! map (RAM or MMIO).
//!
//! ```text
//!  seg:offset ──seg_lin──▶ linear ──TLB hit──▶ machine address ──▶ GuestRam
//!                    │            └─miss: walk, fill TLB─┘
//!                    └ #GP/#SS          └ #PF            └ not RAM: Platform MMIO
//! ```
//!
//! The fast path of a data access is: segment check (a few compares), one
//! TLB tag compare, one RAM bounds check. Everything else (page walks,
//! MMIO, page-crossing accesses, writes to pages holding decoded code) is
//! the slow path.
//!
//! Accesses that cross a page boundary translate both pages before any
//! byte moves, so a #PF on the second page leaves memory untouched and
//! reports CR2 = the first byte of the second page, as hardware does.

use crate::cpu::Cpu;
use crate::event::CpuEvent;
use crate::fault::Fault;
use crate::operand::sreg_of;
use crate::platform::Platform;
use crate::state::{cr0, efer, rflags, seg_attr, SegReg};
use iced_x86::{Instruction, Register};
use mmu::paging::{walk, Access, AccessKind, PagingRegs};
use mmu::ptemem::RamPtes;
use std::sync::Arc;

/// A [`mmu::PteMemory`] that counts the entries the walker reads.
struct CountingPtes<'a> {
    inner: RamPtes<'a>,
    refs: u64,
}

impl mmu::PteMemory for CountingPtes<'_> {
    fn read_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64> {
        self.refs += 1;
        self.inner.read_pte(pa, size)
    }
    fn reread_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64> {
        self.inner.read_pte(pa, size)
    }
    fn write_pte(&mut self, pa: GuestPhysAddr, size: u8, val: u64) -> bool {
        self.inner.write_pte(pa, size, val)
    }
}
use mmu::{GuestPhysAddr, GuestVirtAddr, MachineAddr, PhysTarget};

/// 4 KiB.
pub(crate) const PAGE_SIZE: u64 = 0x1000;
const PAGE_MASK: u64 = PAGE_SIZE - 1;

/// Where one translated page-piece of an access lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phys {
    /// Guest RAM at this machine address.
    Ram(u64),
    /// Not RAM: the platform's MMIO at this guest-physical address.
    Mmio(u64),
}

/// A read-modify-write location, translated for writing once so that the
/// read and the write of the instruction hit the same bytes and a fault
/// happens before anything is read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RmwLoc {
    /// Fast path: RAM at this machine address, within one page.
    Ram(u64),
    /// Slow path: linear address (MMIO, page-crossing or code page).
    Lin { lin: u64, user: bool },
}

/// Facts about the current mode that every memory access needs, cached so
/// the hot path tests one byte instead of re-deriving them from CR0, EFER,
/// RFLAGS and CS. Only system instructions, event delivery and state loads
/// change them, and each of those refreshes the cache
/// ([`Cpu::refresh_mode`]); so do the entry points system/ calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ModeCache {
    /// IA-32e 64-bit mode (EFER.LMA and CS.L).
    pub long64: bool,
    /// CPL 3: data accesses are user-mode accesses.
    pub user: bool,
    /// Alignment checking is on (CR0.AM, RFLAGS.AC, CPL 3).
    pub ac: bool,
    /// A DR7 breakpoint is enabled: data accesses are checked against
    /// DR0-DR3 and the run loop goes one instruction at a time
    /// ([`crate::debug`]).
    pub bp: bool,
    /// Breakpoint matches of the current instruction and the MOV SS
    /// shadow; not a cached fact, so [`Cpu::refresh_mode`] keeps it.
    pub dbg: crate::debug::DebugPending,
}

impl Cpu {
    /// Recompute [`ModeCache`] from the architectural state.
    #[inline]
    pub(crate) fn refresh_mode(&mut self) {
        let s = &self.state;
        let user = s.cpl() == 3;
        self.mode = ModeCache {
            long64: s.efer & efer::LMA != 0 && s.cs().long(),
            user,
            ac: user && s.cr0 & cr0::AM != 0 && s.rflags & rflags::AC != 0,
            bp: crate::debug::armed(s),
            dbg: self.mode.dbg,
        };
    }

    /// IA-32e 64-bit mode (cached).
    #[inline(always)]
    pub(crate) fn in_long64(&self) -> bool {
        self.mode.long64
    }

    /// Data accesses are user-mode accesses at CPL 3 (cached).
    #[inline(always)]
    pub(crate) fn user_mode(&self) -> bool {
        self.mode.user
    }

    /// Linear addresses are 64 bits wide in IA-32e mode, 32 otherwise.
    #[inline(always)]
    pub(crate) fn lin_mask(&self) -> u64 {
        if self.state.efer & efer::LMA != 0 {
            u64::MAX
        } else {
            0xffff_ffff
        }
    }

    pub(crate) fn paging_regs(&self) -> PagingRegs {
        PagingRegs {
            cr0: self.state.cr0,
            cr3: self.state.cr3,
            cr4: self.state.cr4,
            efer: self.state.efer,
        }
    }

    /// Segmentation: check `size` bytes at `seg:off` for `kind` and return
    /// the linear address. `off` is already wrapped to the address size.
    ///
    /// * 64-bit mode: no limits or type checks; FS/GS add their base; the
    ///   address must be canonical (#SS(0) for SS, #GP(0) otherwise).
    /// * Protected / compatibility mode: unusable (null) segment, type
    ///   (write needs a writable data segment, read needs a readable one)
    ///   and limit checks, expand-down aware; linear wraps at 4 GiB.
    /// * Real and virtual-8086 mode: limit checks only (the hidden limit,
    ///   normally 64 KiB; "unreal" mode keeps a bigger one).
    #[inline(always)]
    pub(crate) fn seg_lin(
        &self,
        seg: SegReg,
        off: u64,
        size: u8,
        kind: AccessKind,
    ) -> Result<u64, Fault> {
        if self.in_long64() {
            let base = match seg {
                SegReg::Fs | SegReg::Gs => self.state.sreg(seg).base,
                _ => 0,
            };
            let lin = base.wrapping_add(off);
            let last = lin.wrapping_add(size as u64 - 1);
            if !canonical(lin) || !canonical(last) {
                return Err(seg_fault(seg));
            }
            return Ok(lin);
        }
        let s = self.state.sreg(seg);
        let protected = self.state.cr0 & cr0::PE != 0 && self.state.rflags & rflags::VM == 0;
        if protected {
            let a = s.attr;
            if a & (seg_attr::UNUSABLE | seg_attr::P) != seg_attr::P {
                return Err(seg_fault(seg));
            }
            let code = a & seg_attr::TYPE_CODE != 0;
            let wr = a & seg_attr::TYPE_WR != 0;
            let bad = match kind {
                AccessKind::Write => code || !wr,
                AccessKind::Read => code && !wr,
                AccessKind::Execute => !code,
            };
            if bad {
                return Err(seg_fault(seg));
            }
        }
        let last = off.saturating_add(size as u64 - 1);
        let a = s.attr;
        if a & (seg_attr::TYPE_CODE | seg_attr::TYPE_EC) == seg_attr::TYPE_EC {
            // Expand-down data: valid offsets are (limit, upper].
            let upper = if a & seg_attr::DB != 0 {
                0xffff_ffff
            } else {
                0xffff
            };
            if off <= s.limit as u64 || last > upper {
                return Err(seg_fault(seg));
            }
        } else if last > s.limit as u64 {
            return Err(seg_fault(seg));
        }
        Ok(s.base.wrapping_add(off) & 0xffff_ffff)
    }

    /// #AC: CR0.AM, RFLAGS.AC, CPL 3 and a misaligned user data access.
    #[inline(always)]
    fn check_alignment(&self, lin: u64, size: u8, user: bool) -> Result<(), Fault> {
        if self.mode.ac && user && lin & (size as u64 - 1) != 0 {
            return Err(Fault::ac());
        }
        Ok(())
    }

    /// Record the data breakpoints (DR0-DR3) an access matches. A match
    /// ends the current block, and a REP string instruction after this
    /// iteration, so the #DB trap follows the access that caused it.
    #[cold]
    #[inline(never)]
    fn data_breakpoint(&mut self, lin: u64, size: u8, write: bool) {
        let hits = crate::debug::data_hits(&self.state, lin, size, write, self.lin_mask());
        if hits != 0 {
            self.mode.dbg.hits |= hits;
            self.exit_block = true;
        }
    }

    /// The linear address of the memory operand of `insn` (`size` bytes,
    /// for `kind`). In 64-bit mode only an FS/GS prefix matters, so the
    /// default-segment logic is skipped.
    #[inline(always)]
    pub(crate) fn operand_lin(
        &self,
        insn: &Instruction,
        size: u8,
        kind: AccessKind,
    ) -> Result<u64, Fault> {
        let off = self.ea(insn);
        if self.mode.long64 {
            let base = match insn.segment_prefix() {
                Register::FS => self.state.sreg(SegReg::Fs).base,
                Register::GS => self.state.sreg(SegReg::Gs).base,
                _ => 0,
            };
            let lin = base.wrapping_add(off);
            if !canonical(lin) || !canonical(lin.wrapping_add(size as u64 - 1)) {
                // #SS(0) for a stack reference, #GP(0) otherwise (SDM
                // Vol. 1, 3.3.7.1). A reference is a stack reference when
                // it names SS explicitly (an SS: prefix, even on a
                // DS-default operand) or when its default segment is SS
                // (an RSP/RBP base) and no FS/GS prefix replaces it; an
                // ES:/CS:/DS: prefix does not (64-bit mode ignores it).
                // Checked against the host CPU by the differential tests.
                let prefix = insn.segment_prefix();
                let stack = prefix == Register::SS
                    || (!matches!(prefix, Register::FS | Register::GS)
                        && matches!(
                            insn.memory_base(),
                            Register::RSP | Register::RBP | Register::ESP | Register::EBP
                        ));
                return Err(seg_fault(if stack { SegReg::Ss } else { SegReg::Ds }));
            }
            return Ok(lin);
        }
        self.seg_lin(sreg_of(insn.memory_segment()), off, size, kind)
    }

    // ---- paging ----

    /// Translate the page of `lin` for `kind`: TLB, else walk (setting A/D)
    /// and fill the TLB. #PF as a [`Fault`] with CR2 = `lin`.
    pub(crate) fn translate(
        &mut self,
        lin: u64,
        kind: AccessKind,
        user: bool,
    ) -> Result<Phys, Fault> {
        if let Some(ma) = self.tlb.lookup(GuestVirtAddr(lin), kind, user) {
            return Ok(Phys::Ram(ma.0));
        }
        let regs = self.paging_regs();
        self.stats.tlb_misses += 1;
        if let Some(map) = self.stage2.clone() {
            return self.translate_stage2(lin, kind, user, &regs, &*map);
        }
        let mut ptes = CountingPtes {
            inner: RamPtes::new(&self.ram, &self.layout),
            refs: 0,
        };
        let r = walk(
            &regs,
            &mut ptes,
            GuestVirtAddr(lin),
            Access::new(kind, user),
            None,
        );
        self.stats.walk_refs += ptes.refs;
        let t = r.map_err(|pf| Fault::pf(pf.va.0, pf.error_code))?;
        match self.layout.translate(t.pa) {
            PhysTarget::Ram(ma) => {
                let ma_page = MachineAddr(ma.0 & !PAGE_MASK);
                let allow_write = !self.blocks.is_code_page(ma_page.0) && self.write_log.is_none();
                self.tlb
                    .insert(GuestVirtAddr(lin), &t, ma_page, &regs, allow_write);
                Ok(Phys::Ram(ma.0))
            }
            PhysTarget::Mmio(pa) => Ok(Phys::Mmio(pa.0)),
        }
    }

    /// [`Cpu::translate`] under a monitor's second stage: the guest's
    /// walk reads its entries through `map` (p2m lookups, or nested walks
    /// that count their own references), then the final guest-physical
    /// address goes through `map` too. A nested miss is an EPT-violation
    /// exit unless the monitor is emulating (then it is a device access).
    #[inline(never)]
    fn translate_stage2(
        &mut self,
        lin: u64,
        kind: AccessKind,
        user: bool,
        regs: &PagingRegs,
        map: &dyn mmu::GuestPhysMap,
    ) -> Result<Phys, Fault> {
        let ram = Arc::clone(&self.ram);
        let mut ptes = mmu::MappedPtes::new(&ram, map);
        let r = walk(
            regs,
            &mut ptes,
            GuestVirtAddr(lin),
            Access::new(kind, user),
            None,
        );
        let mut refs = ptes.refs;
        let t = match r {
            Ok(t) => t,
            Err(pf) => {
                self.stats.walk_refs += refs;
                return Err(Fault::pf(pf.va.0, pf.error_code));
            }
        };
        let ma = map.translate(&ram, t.pa, &mut refs);
        self.stats.walk_refs += refs;
        match ma {
            Some(ma) => {
                let ma_page = MachineAddr(ma.0 & !PAGE_MASK);
                let allow_write = !self.blocks.is_code_page(ma_page.0) && self.write_log.is_none();
                self.tlb
                    .insert(GuestVirtAddr(lin), &t, ma_page, regs, allow_write);
                Ok(Phys::Ram(ma.0))
            }
            None if map.miss_exits() && !self.bypass => Err(self.vm_exit(
                crate::intercept::ExitReason::EptViolation {
                    gpa: t.pa.0,
                    access: kind,
                },
                0,
            )),
            None => Ok(Phys::Mmio(t.pa.0)),
        }
    }

    /// Read `size` bytes (1, 2, 4, 8) that lie in one page.
    fn phys_read(&mut self, plat: &mut dyn Platform, p: Phys, size: u8) -> u64 {
        match p {
            Phys::Ram(ma) => self
                .ram
                .read_le(MachineAddr(ma), size as usize)
                .unwrap_or(u64::MAX),
            Phys::Mmio(pa) => {
                let v = plat.mmio_read(GuestPhysAddr(pa), size) & crate::operand::size_mask(size);
                self.note_io();
                if self.trace.io {
                    plat.event(&CpuEvent::Mmio {
                        pa,
                        size,
                        write: false,
                        val: v,
                    });
                }
                v
            }
        }
    }

    /// Write `size` bytes that lie in one page.
    fn phys_write(&mut self, plat: &mut dyn Platform, p: Phys, size: u8, val: u64) {
        match p {
            Phys::Ram(ma) => {
                if self.blocks.is_code_page(ma & !PAGE_MASK) {
                    self.invalidate_code(MachineAddr(ma), size as u64);
                }
                if let Some(log) = &mut self.write_log {
                    let page = ma & !PAGE_MASK;
                    if log.last() != Some(&page) {
                        log.push(page);
                    }
                }
                // In range by construction (RAM pages are whole); a failure
                // would be a write past the end of RAM, which is dropped.
                let _ = self.ram.write_le(MachineAddr(ma), size as usize, val);
            }
            Phys::Mmio(pa) => {
                let val = val & crate::operand::size_mask(size);
                plat.mmio_write(GuestPhysAddr(pa), size, val);
                self.note_io();
                if self.trace.io {
                    plat.event(&CpuEvent::Mmio {
                        pa,
                        size,
                        write: true,
                        val,
                    });
                }
            }
        }
    }

    /// Device I/O happened: end the current block so the run loop looks at
    /// `stop_requested` and pending interrupts.
    #[inline]
    pub(crate) fn note_io(&mut self) {
        self.io_done = true;
        self.exit_block = true;
    }

    /// Translate every page an access touches, in address order. Returns
    /// the first piece and, for a page-crossing access, the second piece and
    /// the byte count of the first.
    fn translate_span(
        &mut self,
        lin: u64,
        size: u8,
        kind: AccessKind,
        user: bool,
    ) -> Result<(Phys, Option<(Phys, u8)>), Fault> {
        let first = self.translate(lin, kind, user)?;
        let in_page = PAGE_SIZE - (lin & PAGE_MASK);
        if size as u64 <= in_page {
            return Ok((first, None));
        }
        let lin2 = lin.wrapping_add(in_page) & self.lin_mask();
        let second = self.translate(lin2, kind, user)?;
        Ok((first, Some((second, in_page as u8))))
    }

    /// Slow-path read of `size` bytes at a linear address.
    #[inline(never)]
    fn read_lin_slow(
        &mut self,
        plat: &mut dyn Platform,
        lin: u64,
        size: u8,
        user: bool,
        kind: AccessKind,
    ) -> Result<u64, Fault> {
        let (p1, split) = self.translate_span(lin, size, kind, user)?;
        match split {
            None => Ok(self.phys_read(plat, p1, size)),
            Some((p2, n1)) => {
                let mut v = 0u64;
                for i in 0..size {
                    let (p, off) = if i < n1 { (p1, i) } else { (p2, i - n1) };
                    let b = self.phys_read(plat, phys_add(p, off as u64), 1);
                    v |= (b & 0xff) << (8 * i as u32);
                }
                Ok(v)
            }
        }
    }

    /// Slow-path write.
    #[inline(never)]
    fn write_lin_slow(
        &mut self,
        plat: &mut dyn Platform,
        lin: u64,
        size: u8,
        val: u64,
        user: bool,
    ) -> Result<(), Fault> {
        let (p1, split) = self.translate_span(lin, size, AccessKind::Write, user)?;
        match split {
            None => self.phys_write(plat, p1, size, val),
            Some((p2, n1)) => {
                for i in 0..size {
                    let (p, off) = if i < n1 { (p1, i) } else { (p2, i - n1) };
                    self.phys_write(plat, phys_add(p, off as u64), 1, val >> (8 * i as u32));
                }
            }
        }
        Ok(())
    }

    /// Read `SZ` bytes at linear `lin` (fast path inlined).
    #[inline(always)]
    pub(crate) fn read_lin<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        lin: u64,
        user: bool,
    ) -> Result<u64, Fault> {
        self.check_alignment(lin, SZ, user)?;
        if self.mode.bp {
            self.data_breakpoint(lin, SZ, false);
        }
        if lin & PAGE_MASK <= PAGE_SIZE - SZ as u64 {
            if let Some(ma) = self.tlb.lookup(GuestVirtAddr(lin), AccessKind::Read, user) {
                if let Ok(v) = self.ram.read_le(ma, SZ as usize) {
                    return Ok(v);
                }
            }
        }
        self.read_lin_slow(plat, lin, SZ, user, AccessKind::Read)
    }

    /// Write `SZ` bytes at linear `lin` (fast path inlined).
    #[inline(always)]
    pub(crate) fn write_lin<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        lin: u64,
        val: u64,
        user: bool,
    ) -> Result<(), Fault> {
        self.check_alignment(lin, SZ, user)?;
        if self.mode.bp {
            self.data_breakpoint(lin, SZ, true);
        }
        if lin & PAGE_MASK <= PAGE_SIZE - SZ as u64 {
            if let Some(ma) = self.tlb.lookup(GuestVirtAddr(lin), AccessKind::Write, user) {
                if self.ram.write_le(ma, SZ as usize, val).is_ok() {
                    return Ok(());
                }
            }
        }
        self.write_lin_slow(plat, lin, SZ, val, user)
    }

    /// Read `SZ` bytes at `seg:off` for the current privilege.
    #[inline(always)]
    pub(crate) fn read_mem<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        seg: SegReg,
        off: u64,
    ) -> Result<u64, Fault> {
        let lin = self.seg_lin(seg, off, SZ, AccessKind::Read)?;
        let user = self.user_mode();
        self.read_lin::<SZ>(plat, lin, user)
    }

    /// Write `SZ` bytes at `seg:off` for the current privilege.
    #[inline(always)]
    pub(crate) fn write_mem<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        seg: SegReg,
        off: u64,
        val: u64,
    ) -> Result<(), Fault> {
        let lin = self.seg_lin(seg, off, SZ, AccessKind::Write)?;
        let user = self.user_mode();
        self.write_lin::<SZ>(plat, lin, val, user)
    }

    /// Begin a read-modify-write of `SZ` bytes at `seg:off`: all checks for
    /// a write happen here, then the old value is read.
    #[inline(always)]
    pub(crate) fn rmw_begin<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        seg: SegReg,
        off: u64,
    ) -> Result<(RmwLoc, u64), Fault> {
        let lin = self.seg_lin(seg, off, SZ, AccessKind::Write)?;
        self.rmw_begin_lin::<SZ>(plat, lin)
    }

    /// [`Cpu::rmw_begin`] on the memory operand of `insn`.
    #[inline(always)]
    pub(crate) fn rmw_m<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        insn: &Instruction,
    ) -> Result<(RmwLoc, u64), Fault> {
        let lin = self.operand_lin(insn, SZ, AccessKind::Write)?;
        self.rmw_begin_lin::<SZ>(plat, lin)
    }

    #[inline(always)]
    fn rmw_begin_lin<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        lin: u64,
    ) -> Result<(RmwLoc, u64), Fault> {
        let user = self.user_mode();
        self.check_alignment(lin, SZ, user)?;
        if self.mode.bp {
            self.data_breakpoint(lin, SZ, true);
        }
        if lin & PAGE_MASK <= PAGE_SIZE - SZ as u64 {
            if let Some(ma) = self.tlb.lookup(GuestVirtAddr(lin), AccessKind::Write, user) {
                if let Ok(v) = self.ram.read_le(ma, SZ as usize) {
                    return Ok((RmwLoc::Ram(ma.0), v));
                }
            }
        }
        // Slow path: translate for writing first (faults, A/D), then read.
        self.translate_span(lin, SZ, AccessKind::Write, user)?;
        let v = self.read_lin_slow(plat, lin, SZ, user, AccessKind::Write)?;
        Ok((RmwLoc::Lin { lin, user }, v))
    }

    /// Finish a read-modify-write begun by [`Cpu::rmw_begin`].
    #[inline(always)]
    pub(crate) fn rmw_end<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        loc: RmwLoc,
        val: u64,
    ) -> Result<(), Fault> {
        match loc {
            RmwLoc::Ram(ma) => {
                let _ = self.ram.write_le(MachineAddr(ma), SZ as usize, val);
                Ok(())
            }
            RmwLoc::Lin { lin, user } => self.write_lin_slow(plat, lin, SZ, val, user),
        }
    }

    // ---- the stack ----

    /// Stack-address size in bytes: 8 in 64-bit mode, else SS.B ? 4 : 2.
    #[inline(always)]
    pub(crate) fn stack_addr_size(&self) -> u8 {
        if self.in_long64() {
            8
        } else if self.state.ss().big() {
            4
        } else {
            2
        }
    }

    /// The stack pointer masked to the stack-address size.
    #[inline(always)]
    pub(crate) fn sp_masked(&self, adj: u64) -> u64 {
        let rsp = self.state.gpr[4].wrapping_add(adj);
        match self.stack_addr_size() {
            8 => rsp,
            4 => rsp & 0xffff_ffff,
            _ => rsp & 0xffff,
        }
    }

    /// Write the stack pointer at the stack-address size (16-bit stacks
    /// keep RSP[63:16]).
    #[inline(always)]
    pub(crate) fn set_sp(&mut self, v: u64) {
        let n = self.stack_addr_size();
        self.set_gpr(4, n, v);
    }

    /// Push `SZ` bytes (typed fast version of [`Cpu::push`]).
    #[inline(always)]
    pub(crate) fn push_n<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        val: u64,
    ) -> Result<(), Fault> {
        let sp = self.sp_masked((SZ as u64).wrapping_neg());
        self.write_mem::<SZ>(plat, SegReg::Ss, sp, val)?;
        self.set_sp(sp);
        Ok(())
    }

    /// Pop `SZ` bytes (typed fast version of [`Cpu::pop`]).
    #[inline(always)]
    pub(crate) fn pop_n<const SZ: u8>(&mut self, plat: &mut dyn Platform) -> Result<u64, Fault> {
        let sp = self.sp_masked(0);
        let v = self.read_mem::<SZ>(plat, SegReg::Ss, sp)?;
        self.set_sp(sp.wrapping_add(SZ as u64));
        Ok(v)
    }

    // ---- instruction fetch ----

    /// Translate the code byte at linear `lin` for execution.
    #[inline(always)]
    pub(crate) fn fetch_translate(&mut self, lin: u64) -> Result<Phys, Fault> {
        let user = self.user_mode();
        if let Some(ma) = self
            .tlb
            .lookup(GuestVirtAddr(lin), AccessKind::Execute, user)
        {
            return Ok(Phys::Ram(ma.0));
        }
        self.translate(lin, AccessKind::Execute, user)
    }

    /// Copy up to `buf.len()` code bytes that lie in one page.
    pub(crate) fn fetch_bytes(&mut self, plat: &mut dyn Platform, p: Phys, buf: &mut [u8]) {
        match p {
            Phys::Ram(ma) => {
                if self.ram.read(MachineAddr(ma), buf).is_err() {
                    buf.fill(0xff);
                }
            }
            Phys::Mmio(pa) => {
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = plat.mmio_read(GuestPhysAddr(pa + i as u64), 1) as u8;
                }
                self.note_io();
            }
        }
    }
}

/// Offset a physical piece within its page.
#[inline(always)]
fn phys_add(p: Phys, off: u64) -> Phys {
    match p {
        Phys::Ram(ma) => Phys::Ram(ma + off),
        Phys::Mmio(pa) => Phys::Mmio(pa + off),
    }
}

/// 48-bit canonical: bits 63..47 all equal.
#[inline(always)]
pub(crate) fn canonical(a: u64) -> bool {
    ((a as i64) << 16 >> 16) as u64 == a
}

/// The segment-violation fault: #SS(0) for the stack segment, #GP(0) else.
#[cold]
#[inline(never)]
pub(crate) fn seg_fault(seg: SegReg) -> Fault {
    if seg == SegReg::Ss {
        Fault::ss(0)
    } else {
        Fault::gp0()
    }
}
