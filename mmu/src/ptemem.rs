//! [`PteMemory`] over guest RAM: the page-table access path used when no
//! monitor sits between the guest and its physical memory (`--virt none`).

use crate::addr::GuestPhysAddr;
use crate::layout::{PhysLayout, PhysTarget};
use crate::paging::PteMemory;
use crate::ram::GuestRam;

/// Page-table entries read straight from guest RAM, GPA→MA through the fixed
/// [`PhysLayout`].
///
/// Entries in the MMIO hole or beyond RAM read as `None` (the walker then
/// sees all-ones) and writes to them are dropped: a page walk is a memory
/// read by the processor, never a device access with side effects.
#[derive(Clone, Copy)]
pub struct RamPtes<'a> {
    pub ram: &'a GuestRam,
    pub layout: &'a PhysLayout,
}

impl<'a> RamPtes<'a> {
    pub fn new(ram: &'a GuestRam, layout: &'a PhysLayout) -> Self {
        Self { ram, layout }
    }
}

impl PteMemory for RamPtes<'_> {
    fn read_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64> {
        match self.layout.translate(pa) {
            PhysTarget::Ram(ma) => self.ram.read_le(ma, usize::from(size)).ok(),
            PhysTarget::Mmio(_) => None,
        }
    }

    fn write_pte(&mut self, pa: GuestPhysAddr, size: u8, val: u64) -> bool {
        match self.layout.translate(pa) {
            PhysTarget::Ram(ma) => self.ram.write_le(ma, usize::from(size), val).is_ok(),
            PhysTarget::Mmio(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MMIO_HOLE_END;

    #[test]
    fn ram_and_holes() {
        let ram = GuestRam::new(0x2000).unwrap();
        let layout = PhysLayout::new(0x2000);
        let mut m = RamPtes::new(&ram, &layout);
        assert!(m.write_pte(GuestPhysAddr(0x1008), 8, 0x1234_5678_9abc_def0));
        assert_eq!(
            m.read_pte(GuestPhysAddr(0x1008), 8),
            Some(0x1234_5678_9abc_def0)
        );
        assert_eq!(m.read_pte(GuestPhysAddr(0x100c), 4), Some(0x1234_5678));
        // Past the end of RAM, in the hole, above 4 GiB with no high RAM.
        for pa in [0x2000, 0x1ffc + 8, 0xfee0_0000, MMIO_HOLE_END] {
            assert_eq!(m.read_pte(GuestPhysAddr(pa), 4), None, "{pa:#x}");
            assert!(!m.write_pte(GuestPhysAddr(pa), 4, 0));
        }
        // An entry straddling the end of RAM is refused, not read short.
        assert_eq!(m.read_pte(GuestPhysAddr(0x1ffc), 8), None);
    }
}
