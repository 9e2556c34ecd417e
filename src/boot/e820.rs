//! The guest's memory map, in e820 terms.
//!
//! One map feeds every description the guest can read: the PVH
//! `hvm_memmap_table_entry` array, the multiboot `mmap` buffer and the FDT
//! `/memory` node, so they can never disagree. It follows the PC
//! convention (what SeaBIOS reports under QEMU):
//!
//! | range                     | type     | why                              |
//! |---------------------------|----------|----------------------------------|
//! | 0 – 0x9fc00               | RAM      | conventional memory (639 KiB)    |
//! | 0x9fc00 – 0xe0000         | reserved | EBDA, VGA window, option ROMs    |
//! | 0xe0000 – 0xf0000         | reserved | the device tree window           |
//! | 0xf0000 – 0x100000        | reserved | BIOS area                        |
//! | 1 MiB – end of low RAM    | RAM      |                                  |
//! | 0xfee00000 – 0xfee01000   | reserved | local APIC page                  |
//! | 4 GiB – 4 GiB + high RAM  | RAM      | RAM above the MMIO hole, if any  |
//!
//! The device tree window gets an entry of its own so a kernel can find the
//! DTB from the memory map alone (the reserved entry starting at 0xe0000).

use super::lowmem::{EBDA_START, FDT_ADDR, FDT_MAX, HIGH_MEMORY};
use linux_loader::loader::elf::start_info::{
    XEN_HVM_MEMMAP_TYPE_RAM, XEN_HVM_MEMMAP_TYPE_RESERVED,
};
use mmu::layout::{LAPIC_BASE, MMIO_HOLE_END};
use mmu::PhysLayout;

/// An e820 range type. The PVH memmap and multiboot mmap use the same
/// numbers (1 = usable RAM, 2 = reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E820Kind {
    Ram,
    Reserved,
}

impl E820Kind {
    /// The numeric type shared by e820, PVH and multiboot.
    pub fn code(self) -> u32 {
        match self {
            E820Kind::Ram => XEN_HVM_MEMMAP_TYPE_RAM,
            E820Kind::Reserved => XEN_HVM_MEMMAP_TYPE_RESERVED,
        }
    }
}

/// One memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: E820Kind,
}

impl E820Entry {
    fn new(addr: u64, end: u64, kind: E820Kind) -> Self {
        Self {
            addr,
            size: end - addr,
            kind,
        }
    }
}

/// The memory map of a machine with `layout`, in ascending address order.
/// The caller guarantees at least [`super::lowmem::MIN_RAM`] of RAM.
pub fn memory_map(layout: &PhysLayout) -> Vec<E820Entry> {
    use E820Kind::*;
    let low = layout.low_ram();
    let mut v = vec![
        E820Entry::new(0, EBDA_START.min(low), Ram),
        E820Entry::new(EBDA_START, FDT_ADDR, Reserved),
        E820Entry::new(FDT_ADDR, FDT_ADDR + FDT_MAX, Reserved),
        E820Entry::new(FDT_ADDR + FDT_MAX, HIGH_MEMORY, Reserved),
    ];
    if low > HIGH_MEMORY {
        v.push(E820Entry::new(HIGH_MEMORY, low, Ram));
    }
    v.push(E820Entry::new(LAPIC_BASE, LAPIC_BASE + 0x1000, Reserved));
    if layout.high_ram() > 0 {
        v.push(E820Entry {
            addr: MMIO_HOLE_END,
            size: layout.high_ram(),
            kind: Ram,
        });
    }
    v
}

/// RAM bytes that are contiguous from 1 MiB up to the first hole: the
/// multiboot `mem_upper` value (in bytes).
pub fn contiguous_above_1m(layout: &PhysLayout) -> u64 {
    layout.low_ram().saturating_sub(HIGH_MEMORY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (start, end, type code) triples, for compact expectations.
    fn spans(m: &[E820Entry]) -> Vec<(u64, u64, u32)> {
        m.iter()
            .map(|e| (e.addr, e.addr + e.size, e.kind.code()))
            .collect()
    }

    #[test]
    fn small_machine() {
        let m = memory_map(&PhysLayout::new(16 << 20));
        assert_eq!(
            spans(&m),
            [
                (0, 0x9fc00, 1),
                (0x9fc00, 0xe0000, 2),
                (0xe0000, 0xf0000, 2),
                (0xf0000, 0x100000, 2),
                (0x100000, 16 << 20, 1),
                (0xfee00000, 0xfee01000, 2),
            ]
        );
        assert_eq!(contiguous_above_1m(&PhysLayout::new(16 << 20)), 15 << 20);
    }

    #[test]
    fn big_machine_has_high_ram() {
        let l = PhysLayout::new(5 << 30);
        let m = memory_map(&l);
        let s = spans(&m);
        assert_eq!(s[4], (0x100000, 0xc000_0000, 1));
        assert_eq!(s[s.len() - 1], (1 << 32, (1 << 32) + (2 << 30), 1));
        // Sorted, non-overlapping.
        for w in s.windows(2) {
            assert!(w[0].1 <= w[1].0);
        }
        // Every RAM entry is RAM in the layout.
        for e in m.iter().filter(|e| e.kind == E820Kind::Ram) {
            assert!(l.is_ram_range(mmu::GuestPhysAddr(e.addr), e.size));
        }
    }

    #[test]
    fn exactly_one_mib() {
        let m = memory_map(&PhysLayout::new(1 << 20));
        assert_eq!(m.len(), 5);
        assert!(m
            .iter()
            .all(|e| e.addr < 0x100000 || e.kind == E820Kind::Reserved));
    }
}
