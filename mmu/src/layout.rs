//! The guest-physical address map of the ringside PC: where RAM is, and
//! where the MMIO holes are.
//!
//! ```text
//!  0x0000_0000 ┌──────────────────────────┐
//!              │ low RAM (up to 3 GiB)    │  MA = PA
//!  0xc000_0000 ├──────────────────────────┤
//!              │ MMIO hole                │
//!              │  0xd000_0000 virtio-mmio │  (room for 32 devices × 4 KiB)
//!              │  0xfec0_0000 I/O APIC    │  (reserved)
//!              │  0xfee0_0000 local APIC  │
//!  0x1_0000_0000├─────────────────────────┤
//!              │ high RAM (the rest)      │  MA = PA - 1 GiB
//!              └──────────────────────────┘
//! ```
//!
//! This mirrors the layout QEMU's `pc`/`microvm` and Firecracker use, so
//! guests written for them find devices where they expect.

use crate::addr::{GuestPhysAddr, MachineAddr};

/// Start of the 32-bit MMIO hole: low RAM ends here.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
/// End of the 32-bit MMIO hole: high RAM starts here.
pub const MMIO_HOLE_END: u64 = 0x1_0000_0000;
/// Base of the virtio-mmio window.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
/// Size of one virtio-mmio device slot.
pub const VIRTIO_MMIO_SLOT: u64 = 0x1000;
/// Number of virtio-mmio slots reserved.
pub const VIRTIO_MMIO_SLOTS: u64 = 32;
/// Default base of the xAPIC MMIO page (IA32_APIC_BASE reset value).
pub const LAPIC_BASE: u64 = 0xfee0_0000;
/// Base of the I/O APIC page (reserved, not modelled yet).
pub const IOAPIC_BASE: u64 = 0xfec0_0000;

/// Where a guest-physical access lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysTarget {
    /// Backed by guest RAM at this machine address.
    Ram(MachineAddr),
    /// Not RAM: an MMIO device or unassigned (reads all-ones).
    Mmio(GuestPhysAddr),
}

/// A RAM range in guest-physical space (for e820 / memory-map tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamRegion {
    pub start: GuestPhysAddr,
    pub len: u64,
    pub machine: MachineAddr,
}

/// The fixed PA→MA map used when no monitor is present (`--virt none`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysLayout {
    ram_size: u64,
}

impl PhysLayout {
    pub fn new(ram_size: u64) -> Self {
        Self { ram_size }
    }

    /// Total RAM in bytes.
    pub fn ram_size(&self) -> u64 {
        self.ram_size
    }

    /// Bytes of RAM below the MMIO hole.
    pub fn low_ram(&self) -> u64 {
        self.ram_size.min(MMIO_HOLE_START)
    }

    /// Bytes of RAM above 4 GiB.
    pub fn high_ram(&self) -> u64 {
        self.ram_size - self.low_ram()
    }

    /// The RAM regions, in ascending address order.
    pub fn ram_regions(&self) -> Vec<RamRegion> {
        let mut v = vec![RamRegion {
            start: GuestPhysAddr(0),
            len: self.low_ram(),
            machine: MachineAddr(0),
        }];
        if self.high_ram() > 0 {
            v.push(RamRegion {
                start: GuestPhysAddr(MMIO_HOLE_END),
                len: self.high_ram(),
                machine: MachineAddr(MMIO_HOLE_START),
            });
        }
        v
    }

    /// Translate a guest-physical address.
    #[inline(always)]
    pub fn translate(&self, pa: GuestPhysAddr) -> PhysTarget {
        let a = pa.0;
        if a < self.low_ram() {
            PhysTarget::Ram(MachineAddr(a))
        } else if a >= MMIO_HOLE_END && a - MMIO_HOLE_END < self.high_ram() {
            PhysTarget::Ram(MachineAddr(a - MMIO_HOLE_END + MMIO_HOLE_START))
        } else {
            PhysTarget::Mmio(pa)
        }
    }

    /// True if `[pa, pa+len)` is entirely RAM (loaders check segments with it).
    pub fn is_ram_range(&self, pa: GuestPhysAddr, len: u64) -> bool {
        if len == 0 {
            return matches!(self.translate(pa), PhysTarget::Ram(_));
        }
        let Some(last) = pa.0.checked_add(len - 1) else {
            return false;
        };
        self.ram_regions()
            .iter()
            .any(|r| pa.0 >= r.start.0 && last < r.start.0 + r.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_machine_is_identity() {
        let l = PhysLayout::new(128 << 20);
        assert_eq!(
            l.translate(GuestPhysAddr(0x1000)),
            PhysTarget::Ram(MachineAddr(0x1000))
        );
        assert_eq!(
            l.translate(GuestPhysAddr(128 << 20)),
            PhysTarget::Mmio(GuestPhysAddr(128 << 20))
        );
        assert_eq!(
            l.translate(GuestPhysAddr(LAPIC_BASE)),
            PhysTarget::Mmio(GuestPhysAddr(LAPIC_BASE))
        );
        assert!(l.is_ram_range(GuestPhysAddr(0x100000), 0x1000));
        assert!(!l.is_ram_range(GuestPhysAddr((128 << 20) - 1), 2));
    }

    #[test]
    fn big_machine_splits_around_hole() {
        let l = PhysLayout::new(4 << 30);
        assert_eq!(l.low_ram(), MMIO_HOLE_START);
        assert_eq!(l.high_ram(), 1 << 30);
        assert_eq!(
            l.translate(GuestPhysAddr(MMIO_HOLE_END + 5)),
            PhysTarget::Ram(MachineAddr(MMIO_HOLE_START + 5))
        );
        assert!(matches!(
            l.translate(GuestPhysAddr(0xd000_0000)),
            PhysTarget::Mmio(_)
        ));
        assert_eq!(l.ram_regions().len(), 2);
    }
}
