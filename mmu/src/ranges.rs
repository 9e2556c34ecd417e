//! The guest's address space as a list of mapped ranges, like QEMU's
//! `info mem`: for the monitor, the TUI and tests.
//!
//! The scan reads the guest's page tables without side effects (no
//! Accessed/Dirty updates) and decodes entries exactly as the walker does
//! ([`crate::pte::Format`]). Guest tables are guest-controlled and may be
//! hostile (every entry of every level pointing at the same table, say, which
//! would make a full 4-level scan read 2^36 entries), so the work is bounded
//! by a budget of entry reads as well as by the number of ranges wanted.

use crate::addr::{GuestPhysAddr, GuestVirtAddr};
use crate::paging::{PagingMode, PagingRegs, PteMemory};
use crate::pte::{self, Decoded, Format};

/// A run of virtual pages, mapped to contiguous physical memory with the same
/// effective rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedRange {
    pub va: GuestVirtAddr,
    pub pa: GuestPhysAddr,
    pub len: u64,
    /// Effective U/S of the walk: user-mode accesses are allowed.
    pub user: bool,
    /// Effective R/W of the walk (supervisor writes with CR0.WP=0 ignore it).
    pub writable: bool,
    /// No XD on the way (always true without EFER.NXE or in 32-bit paging).
    pub executable: bool,
}

/// The outcome of a bounded scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeScan {
    pub ranges: Vec<MappedRange>,
    /// False if the scan stopped early (range limit or entry budget), so
    /// the list is a prefix of the address space.
    pub complete: bool,
}

/// Entry reads [`mapped_ranges`] allows itself: enough for 16 GiB mapped
/// with 4 KiB pages, a few tens of milliseconds at worst.
pub const SCAN_ENTRY_BUDGET: usize = 1 << 22;

/// The mapped ranges of the address space `regs` select, in ascending VA
/// order (canonical order for 4-level paging: the lower half first), at most
/// `limit` of them. Stops early (see [`scan_mapped_ranges`]) after
/// [`SCAN_ENTRY_BUDGET`] entry reads.
pub fn mapped_ranges<M: PteMemory + ?Sized>(
    regs: &PagingRegs,
    mem: &mut M,
    limit: usize,
) -> Vec<MappedRange> {
    scan_mapped_ranges(regs, mem, limit, SCAN_ENTRY_BUDGET).ranges
}

/// [`mapped_ranges`] with an explicit budget of entry reads, reporting
/// whether the scan covered the whole address space.
pub fn scan_mapped_ranges<M: PteMemory + ?Sized>(
    regs: &PagingRegs,
    mem: &mut M,
    limit: usize,
    max_entries: usize,
) -> RangeScan {
    let Some(fmt) = Format::for_regs(regs) else {
        // Paging off: the 4 GiB physical space, identity-mapped.
        let all = MappedRange {
            va: GuestVirtAddr(0),
            pa: GuestPhysAddr(0),
            len: 1 << 32,
            user: true,
            writable: true,
            executable: true,
        };
        return RangeScan {
            ranges: if limit > 0 { vec![all] } else { Vec::new() },
            complete: limit > 0,
        };
    };
    let mut s = Scanner {
        fmt,
        mem,
        budget: max_entries,
        limit,
        out: Vec::new(),
        complete: true,
    };
    let all = Rights {
        writable: true,
        user: true,
        xd: false,
    };
    s.table(fmt.top_level(), fmt.root(regs.cr3), 0, all);
    RangeScan {
        ranges: s.out,
        complete: s.complete,
    }
}

#[derive(Clone, Copy)]
struct Rights {
    writable: bool,
    user: bool,
    xd: bool,
}

struct Scanner<'m, M: PteMemory + ?Sized> {
    fmt: Format,
    mem: &'m mut M,
    budget: usize,
    limit: usize,
    out: Vec<MappedRange>,
    complete: bool,
}

impl<M: PteMemory + ?Sized> Scanner<'_, M> {
    /// Scan the table at `table` (level `level`) covering VAs from
    /// `va_base`. Returns false when the scan must stop.
    fn table(&mut self, level: u8, table: u64, va_base: u64, rights: Rights) -> bool {
        let size = self.fmt.entry_size();
        let ones = if size == 4 { 0xffff_ffff } else { u64::MAX };
        let shift = self.fmt.index_shift(level);
        let nx = self.fmt.nx_active();
        for i in 0..self.fmt.entries(level) {
            if self.budget == 0 {
                self.complete = false;
                return false;
            }
            self.budget -= 1;
            let entry_pa = GuestPhysAddr(table.wrapping_add(i * u64::from(size)));
            // Same convention as the walker: unreadable entries are all-ones.
            let entry = self.mem.read_pte(entry_pa, size).map_or(ones, |v| v & ones);
            let va = va_base | (i << shift);
            let r = if self.fmt.has_rights(level) {
                Rights {
                    writable: rights.writable && entry & pte::RW != 0,
                    user: rights.user && entry & pte::US != 0,
                    xd: rights.xd || (nx && entry & pte::XD != 0),
                }
            } else {
                rights
            };
            let go_on = match self.fmt.decode(level, entry) {
                Decoded::NotPresent | Decoded::Reserved => true,
                Decoded::Next(next) => self.table(level.saturating_sub(1), next, va, r),
                Decoded::Leaf { base, shift } => self.emit(va, base, 1 << shift, r),
            };
            if !go_on {
                return false;
            }
        }
        true
    }

    fn emit(&mut self, va: u64, pa: u64, len: u64, r: Rights) -> bool {
        let va = if self.fmt.mode == PagingMode::Level4 {
            // Sign-extend bit 47: the upper half of the canonical space.
            (((va << 16) as i64) >> 16) as u64
        } else {
            va
        };
        let new = MappedRange {
            va: GuestVirtAddr(va),
            pa: GuestPhysAddr(pa),
            len,
            user: r.user,
            writable: r.writable,
            executable: !r.xd,
        };
        if let Some(last) = self.out.last_mut() {
            if (last.user, last.writable, last.executable)
                == (new.user, new.writable, new.executable)
                && last.va.0.wrapping_add(last.len) == va
                && last.pa.0.wrapping_add(last.len) == pa
            {
                last.len += len;
                return true;
            }
        }
        if self.out.len() >= self.limit {
            self.complete = false;
            return false;
        }
        self.out.push(new);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::MachineAddr;
    use crate::layout::PhysLayout;
    use crate::paging::{cr0, cr4, efer};
    use crate::pte::{P, PS, RW, US, XD};
    use crate::ptemem::RamPtes;
    use crate::ram::GuestRam;
    use std::time::{Duration, Instant};

    fn env() -> (GuestRam, PhysLayout) {
        (GuestRam::new(4 << 20).unwrap(), PhysLayout::new(4 << 20))
    }

    fn set(ram: &GuestRam, pa: u64, v: u64) {
        ram.write_le(MachineAddr(pa), 8, v).unwrap();
    }

    fn regs_l4() -> PagingRegs {
        PagingRegs {
            cr0: cr0::PE | cr0::PG,
            cr3: 0x1000,
            cr4: cr4::PAE,
            efer: efer::LME | efer::LMA | efer::NXE,
        }
    }

    fn range(
        va: u64,
        pa: u64,
        len: u64,
        (user, writable, executable): (bool, bool, bool),
    ) -> MappedRange {
        MappedRange {
            va: GuestVirtAddr(va),
            pa: GuestPhysAddr(pa),
            len,
            user,
            writable,
            executable,
        }
    }

    #[test]
    fn coalescing_4_level() {
        let (ram, layout) = env();
        // PML4[0] → PDPT 0x2000; PDPT[0] → PD 0x3000; PD[2] → PT 0x4000.
        set(&ram, 0x1000, 0x2000 | P | RW | US);
        set(&ram, 0x2000, 0x3000 | P | RW | US);
        set(&ram, 0x3010, 0x4000 | P | RW | US);
        // VA 0x40_0000.. : four contiguous user RW pages at PA 0x10_0000.
        for i in 0..4 {
            set(&ram, 0x4000 + i * 8, (0x10_0000 + i * 0x1000) | P | RW | US);
        }
        // Then one read-only page, contiguous in PA: new range (rights).
        set(&ram, 0x4020, 0x10_4000 | P | US);
        // Then a page elsewhere in PA: new range (PA).
        set(&ram, 0x4028, 0x20_0000 | P | US);
        // A not-present hole, then a supervisor XD page.
        set(&ram, 0x4038, 0x30_0000 | P | XD);
        // A 2 MiB page right after the PT's 2 MiB, PA-contiguous with a
        // following 2 MiB page.
        set(&ram, 0x3018, 0x80_0000 | P | RW | PS);
        set(&ram, 0x3020, 0xa0_0000 | P | RW | PS);
        // Upper half: PML4[511] → PDPT 0x5000, PDPT[510] 1 GiB page.
        set(&ram, 0x1000 + 511 * 8, 0x5000 | P | RW);
        set(&ram, 0x5000 + 510 * 8, P | RW | PS);
        // A reserved-bit entry is not a mapping.
        set(&ram, 0x5000 + 511 * 8, (1 << 45) | P | PS);

        let snapshot = ram.as_slice().to_vec();
        let regs = regs_l4();
        let mut mem = RamPtes::new(&ram, &layout);
        let got = mapped_ranges(&regs, &mut mem, 100);
        assert_eq!(
            got,
            vec![
                range(0x40_0000, 0x10_0000, 0x4000, (true, true, true)),
                range(0x40_4000, 0x10_4000, 0x1000, (true, false, true)),
                range(0x40_5000, 0x20_0000, 0x1000, (true, false, true)),
                range(0x40_7000, 0x30_0000, 0x1000, (false, false, false)),
                range(0x60_0000, 0x80_0000, 0x40_0000, (false, true, true)),
                range(0xffff_ffff_8000_0000, 0, 1 << 30, (false, true, true)),
            ]
        );
        assert!(
            ram.as_slice() == snapshot.as_slice(),
            "the scan wrote to RAM"
        );

        // The limit: a prefix, flagged incomplete.
        let scan = scan_mapped_ranges(&regs, &mut mem, 2, SCAN_ENTRY_BUDGET);
        assert_eq!(scan.ranges, got[..2].to_vec());
        assert!(!scan.complete);
        let scan = scan_mapped_ranges(&regs, &mut mem, 6, SCAN_ENTRY_BUDGET);
        assert!(scan.complete);
        assert!(mapped_ranges(&regs, &mut mem, 0).is_empty());
    }

    #[test]
    fn legacy32_and_disabled() {
        let (ram, layout) = env();
        let mut mem = RamPtes::new(&ram, &layout);
        // PD at 0x1000: PDE[1] a 4 MiB page, PDE[2] → PT 0x2000 with PTE[0]
        // continuing it in PA.
        ram.write_le(MachineAddr(0x1004), 4, 0x40_0000 | P | RW | PS)
            .unwrap();
        ram.write_le(MachineAddr(0x1008), 4, 0x2000 | P | RW)
            .unwrap();
        ram.write_le(MachineAddr(0x2000), 4, 0x80_0000 | P | RW)
            .unwrap();
        let regs = PagingRegs {
            cr0: cr0::PE | cr0::PG,
            cr3: 0x1000,
            cr4: cr4::PSE,
            efer: efer::NXE,
        };
        assert_eq!(
            mapped_ranges(&regs, &mut mem, 10),
            vec![range(0x40_0000, 0x40_0000, 0x40_1000, (false, true, true))]
        );
        let off = PagingRegs::default();
        assert_eq!(
            mapped_ranges(&off, &mut mem, 10),
            vec![range(0, 0, 1 << 32, (true, true, true))]
        );
    }

    #[test]
    fn hostile_tables_are_bounded() {
        let (ram, layout) = env();
        let mut mem = RamPtes::new(&ram, &layout);
        // Every PML4E → PDPT 0x2000, every PDPTE → PD 0x3000, every PDE →
        // PT 0x4000, which is empty: 2^36 entries to visit, none mapped.
        for i in 0..512 {
            set(&ram, 0x1000 + i * 8, 0x2000 | P | RW);
            set(&ram, 0x2000 + i * 8, 0x3000 | P | RW);
            set(&ram, 0x3000 + i * 8, 0x4000 | P | RW);
        }
        let regs = regs_l4();
        let scan = scan_mapped_ranges(&regs, &mut mem, 100, 10_000);
        assert!(scan.ranges.is_empty() && !scan.complete);
        let start = Instant::now();
        assert!(mapped_ranges(&regs, &mut mem, 100).is_empty());
        assert!(start.elapsed() < Duration::from_secs(5));
        // Every PTE mapping the same frame: nothing coalesces, the range
        // limit stops the scan.
        for i in 0..512 {
            set(&ram, 0x4000 + i * 8, 0x5000 | P);
        }
        let scan = scan_mapped_ranges(&regs, &mut mem, 100, SCAN_ENTRY_BUDGET);
        assert_eq!(scan.ranges.len(), 100);
        assert!(!scan.complete);
        assert_eq!(scan.ranges[99].va, GuestVirtAddr(99 * 4096));
    }
}
