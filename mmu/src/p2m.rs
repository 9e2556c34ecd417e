//! The p2m ("physical to machine") table: where each guest-physical RAM
//! frame really lives in machine memory.
//!
//! The monitor deliberately scatters guest memory so that PA ≠ MA is
//! visible: machine memory starts with the monitor's own frames, then the
//! guest's 2 MiB chunks follow in *reverse* order (guest chunk 0 is the
//! last machine chunk). Every translation a student sees in the TUI or in
//! `--trace mmu` therefore shows three different numbers for VA, PA and MA.
//!
//! The table lives in host memory (it is the monitor's data structure, as
//! Xen's p2m is), so a lookup costs no guest memory reference.

use crate::addr::{GuestPhysAddr, MachineAddr};
use crate::layout::{PhysLayout, PhysTarget, RamRegion};
use crate::paging::PteMemory;
use crate::ram::GuestRam;
use crate::stage2::GuestPhysMap;

const PAGE: u64 = 4096;
/// The scattering granule.
pub const P2M_CHUNK: u64 = 2 << 20;

/// Guest-physical frame → machine frame.
#[derive(Debug, Clone)]
pub struct P2m {
    guest: PhysLayout,
    /// Machine frame number for each guest RAM frame, indexed by the
    /// frame's offset in guest RAM (low RAM first, then high RAM).
    mfn: Vec<u64>,
}

impl P2m {
    /// PA = MA (the identity; `--virt none` behaves like this).
    pub fn identity(guest: PhysLayout) -> Self {
        let frames = guest.ram_size().div_ceil(PAGE);
        P2m {
            guest,
            mfn: (0..frames).collect(),
        }
    }

    /// Guest RAM placed above `machine_base`, in 2 MiB chunks taken in
    /// reverse order. Machine memory needed: [`P2m::machine_end`].
    pub fn scattered(guest: PhysLayout, machine_base: MachineAddr) -> Self {
        let frames = guest.ram_size().div_ceil(PAGE);
        let per_chunk = P2M_CHUNK / PAGE;
        let chunks = frames.div_ceil(per_chunk);
        let base_frame = machine_base.0.div_ceil(PAGE);
        let mfn = (0..frames)
            .map(|f| {
                let chunk = f / per_chunk;
                let within = f % per_chunk;
                base_frame + (chunks - 1 - chunk) * per_chunk + within
            })
            .collect();
        P2m { guest, mfn }
    }

    /// The guest's physical layout (which PAs are RAM).
    pub fn guest_layout(&self) -> PhysLayout {
        self.guest
    }

    /// One past the highest machine address any guest frame uses.
    pub fn machine_end(&self) -> MachineAddr {
        MachineAddr(self.mfn.iter().max().map_or(0, |m| (m + 1) * PAGE))
    }

    /// Lowest machine address any guest frame uses.
    pub fn machine_start(&self) -> MachineAddr {
        MachineAddr(self.mfn.iter().min().map_or(0, |m| m * PAGE))
    }

    /// Index of the guest RAM frame holding `pa`, if `pa` is RAM.
    fn frame_index(&self, pa: GuestPhysAddr) -> Option<usize> {
        match self.guest.translate(pa) {
            PhysTarget::Ram(off) => usize::try_from(off.0 / PAGE).ok(),
            PhysTarget::Mmio(_) => None,
        }
    }

    /// PA → MA, `None` for non-RAM addresses.
    #[inline]
    pub fn lookup(&self, pa: GuestPhysAddr) -> Option<MachineAddr> {
        let i = self.frame_index(pa)?;
        let m = *self.mfn.get(i)?;
        Some(MachineAddr(m * PAGE + (pa.0 & (PAGE - 1))))
    }

    /// MA → PA (the m2p direction), for displays; linear search.
    pub fn reverse(&self, ma: MachineAddr) -> Option<GuestPhysAddr> {
        let mf = ma.0 / PAGE;
        let i = self.mfn.iter().position(|&m| m == mf)? as u64;
        // Frame offset in guest RAM → guest-physical address.
        let off = i * PAGE;
        let pa = if off < self.guest.low_ram() {
            off
        } else {
            off - self.guest.low_ram() + crate::layout::MMIO_HOLE_END
        };
        Some(GuestPhysAddr(pa + (ma.0 & (PAGE - 1))))
    }

    /// Whether machine frame `ma` belongs to the guest.
    pub fn owns_machine_frame(&self, ma: MachineAddr) -> bool {
        self.reverse(ma).is_some()
    }

    /// The guest RAM as (guest-physical, length, machine) runs, each
    /// contiguous in both spaces: what devices doing DMA need.
    pub fn regions(&self) -> Vec<RamRegion> {
        let mut out: Vec<RamRegion> = Vec::new();
        for r in self.guest.ram_regions() {
            let mut pa = r.start.0;
            let end = r.start.0 + r.len;
            while pa < end {
                let Some(ma) = self.lookup(GuestPhysAddr(pa)) else {
                    break;
                };
                let len = PAGE.min(end - pa);
                match out.last_mut() {
                    Some(last)
                        if last.start.0 + last.len == pa && last.machine.0 + last.len == ma.0 =>
                    {
                        last.len += len;
                    }
                    _ => out.push(RamRegion {
                        start: GuestPhysAddr(pa),
                        len,
                        machine: ma,
                    }),
                }
                pa += len;
            }
        }
        out
    }
}

impl GuestPhysMap for P2m {
    fn translate(
        &self,
        _ram: &GuestRam,
        pa: GuestPhysAddr,
        _refs: &mut u64,
    ) -> Option<MachineAddr> {
        self.lookup(pa)
    }
    fn name(&self) -> &'static str {
        "p2m"
    }
}

/// Page-table entries read through a [`GuestPhysMap`]: the guest's own
/// tables as the monitor (or the nested-paging hardware) sees them.
/// Counts the references made, including the second stage's own.
pub struct MappedPtes<'a> {
    pub ram: &'a GuestRam,
    pub map: &'a dyn GuestPhysMap,
    /// Memory references so far (guest entries + second-stage walks).
    pub refs: u64,
}

impl<'a> MappedPtes<'a> {
    pub fn new(ram: &'a GuestRam, map: &'a dyn GuestPhysMap) -> Self {
        MappedPtes { ram, map, refs: 0 }
    }
}

impl PteMemory for MappedPtes<'_> {
    fn read_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64> {
        let ma = self.map.translate(self.ram, pa, &mut self.refs)?;
        self.refs += 1;
        self.ram.read_le(ma, usize::from(size)).ok()
    }
    fn reread_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64> {
        let mut r = 0;
        let ma = self.map.translate(self.ram, pa, &mut r)?;
        self.ram.read_le(ma, usize::from(size)).ok()
    }
    fn write_pte(&mut self, pa: GuestPhysAddr, size: u8, val: u64) -> bool {
        let mut r = 0;
        match self.map.translate(self.ram, pa, &mut r) {
            Some(ma) => self.ram.write_le(ma, usize::from(size), val).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scattered_is_a_bijection_away_from_identity() {
        let g = PhysLayout::new(8 << 20);
        let p = P2m::scattered(g, MachineAddr(16 << 20));
        let mut seen = std::collections::HashSet::new();
        for f in 0..(8 << 20) / PAGE {
            let ma = p.lookup(GuestPhysAddr(f * PAGE)).unwrap();
            assert!(ma.0 >= 16 << 20 && ma.0 < 24 << 20);
            assert!(seen.insert(ma.0));
            assert_eq!(p.reverse(ma), Some(GuestPhysAddr(f * PAGE)));
        }
        // Chunk 0 is the last machine chunk.
        assert_eq!(
            p.lookup(GuestPhysAddr(0x1234)),
            Some(MachineAddr((22 << 20) + 0x1234))
        );
        assert_eq!(p.lookup(GuestPhysAddr(8 << 20)), None);
        assert_eq!(p.lookup(GuestPhysAddr(0xfee0_0000)), None);
        assert_eq!(p.machine_end(), MachineAddr(24 << 20));
        let regions = p.regions();
        assert_eq!(regions.len(), 4);
        assert_eq!(regions.iter().map(|r| r.len).sum::<u64>(), 8 << 20);
    }

    #[test]
    fn mapped_ptes_go_through_the_map() {
        let g = PhysLayout::new(4 << 20);
        let p = P2m::scattered(g, MachineAddr(4 << 20));
        let ram = GuestRam::new(8 << 20).unwrap();
        let mut m = MappedPtes::new(&ram, &p);
        assert!(m.write_pte(GuestPhysAddr(0x1000), 8, 0xabcd));
        let ma = p.lookup(GuestPhysAddr(0x1000)).unwrap();
        assert_eq!(ram.read_le(ma, 8).unwrap(), 0xabcd);
        assert_eq!(m.read_pte(GuestPhysAddr(0x1000), 8), Some(0xabcd));
        assert_eq!(m.refs, 1);
        assert_eq!(m.read_pte(GuestPhysAddr(4 << 20), 8), None);
    }
}
