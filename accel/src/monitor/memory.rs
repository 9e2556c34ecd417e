//! Machine memory under a monitor: the monitor's own frames at the bottom,
//! then the guest's RAM scattered above them through the p2m.
//!
//! ```text
//!  MA 0 ┌──────────────────────────┐
//!       │ monitor frames (FramePool)│ shadow/nested tables, shadow GDT…
//!       ├──────────────────────────┤
//!       │ guest chunk n-1          │ ← PA (n-1)·2 MiB
//!       │ …                        │
//!       │ guest chunk 0            │ ← PA 0
//!       └──────────────────────────┘
//! ```
//!
//! The boot loaders write a guest-physical image (an identity-layout
//! [`GuestRam`] of the guest's size); [`MachineMemory::load_image`] copies
//! it into place frame by frame through the p2m.

use crate::AccelError;
use mmu::{FramePool, GuestPhysAddr, GuestRam, MachineAddr, P2m, PhysLayout, RamRegion};
use std::sync::Arc;

/// Largest guest RAM a monitor mode accepts: machine memory (guest +
/// monitor) must fit below the 3 GiB MMIO hole.
pub const MAX_GUEST_RAM: u64 = 2 << 30;

/// Machine RAM, the p2m over it, and the monitor's frame pool.
pub struct MachineMemory {
    /// All of machine memory.
    pub ram: Arc<GuestRam>,
    /// The real CPU's fixed physical layout (machine addresses).
    pub layout: PhysLayout,
    /// Guest-physical → machine.
    pub p2m: Arc<P2m>,
    /// The monitor's frames, below the guest's.
    pub pool: FramePool,
}

impl MachineMemory {
    /// Machine memory for a guest with layout `guest`: a monitor area
    /// sized for its tables, then the guest's RAM scattered.
    pub fn new(guest: PhysLayout) -> Result<Self, AccelError> {
        if guest.ram_size() > MAX_GUEST_RAM || guest.high_ram() > 0 {
            return Err(AccelError::BadState(format!(
                "--virt needs -m {} MiB or less (the monitor's machine memory must fit below the MMIO hole)",
                MAX_GUEST_RAM >> 20
            )));
        }
        let chunk = mmu::p2m::P2M_CHUNK;
        let monitor = (guest.ram_size() / 4)
            .clamp(16 << 20, 256 << 20)
            .div_ceil(chunk)
            * chunk;
        let p2m = P2m::scattered(guest, MachineAddr(monitor));
        let size = p2m.machine_end().0;
        let ram = GuestRam::new(size).map_err(|e| AccelError::Host {
            what: "allocating machine memory",
            detail: e.to_string(),
        })?;
        Ok(MachineMemory {
            ram: Arc::new(ram),
            layout: PhysLayout::new(size),
            p2m: Arc::new(p2m),
            // Frame 0 stays unused: a zero machine address is never valid.
            pool: FramePool::new(MachineAddr(0x1000), MachineAddr(monitor)),
        })
    }

    /// Copy the guest-physical image the loaders produced into place.
    pub fn load_image(&self, image: &GuestRam) -> Result<(), AccelError> {
        let guest = self.p2m.guest_layout();
        let bad = |what: &str| AccelError::BadState(format!("loading the guest image: {what}"));
        let mut buf = vec![0u8; 4096];
        for r in guest.ram_regions() {
            let mut off = 0;
            while off < r.len {
                let n = 4096.min(r.len - off) as usize;
                image
                    .read(MachineAddr(r.machine.0 + off), &mut buf[..n])
                    .map_err(|_| bad("image smaller than the guest layout"))?;
                let ma = self
                    .p2m
                    .lookup(GuestPhysAddr(r.start.0 + off))
                    .ok_or_else(|| bad("frame without a p2m entry"))?;
                self.ram
                    .write(ma, &buf[..n])
                    .map_err(|_| bad("p2m entry outside machine memory"))?;
                off += n as u64;
            }
        }
        Ok(())
    }

    /// The guest's RAM as (PA, length, MA) runs, for devices doing DMA.
    pub fn dma_regions(&self) -> Vec<RamRegion> {
        self.p2m.regions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_lands_where_the_p2m_says() {
        let guest = PhysLayout::new(8 << 20);
        let m = MachineMemory::new(guest).unwrap();
        let image = GuestRam::new(8 << 20).unwrap();
        image.write_le(MachineAddr(0x1000), 8, 0x1122_3344).unwrap();
        image.write_le(MachineAddr(0x60_0008), 8, 0x5566).unwrap();
        m.load_image(&image).unwrap();
        let ma = m.p2m.lookup(GuestPhysAddr(0x1000)).unwrap();
        assert_ne!(ma.0, 0x1000);
        assert_eq!(m.ram.read_le(ma, 8).unwrap(), 0x1122_3344);
        let ma2 = m.p2m.lookup(GuestPhysAddr(0x60_0008)).unwrap();
        assert_eq!(m.ram.read_le(ma2, 8).unwrap(), 0x5566);
        // The monitor's pool is disjoint from the guest's frames.
        assert!(m.p2m.machine_start().0 >= 16 << 20);
        assert!(MachineMemory::new(PhysLayout::new(3 << 30)).is_err());
    }
}
