//! [`DmaMemory`]: guest-physical memory as devices see it, for DMA.
//!
//! Devices address guest memory by guest-physical address, but ringside's
//! RAM is one host mapping indexed by *machine* address ([`GuestRam`]).
//! Without a monitor the two differ only around the MMIO hole (1-2
//! regions, [`mmu::PhysLayout::ram_regions`]); under the virtualization
//! monitor guest-physical pages are scattered over machine memory by the
//! p2m, so the map may have thousands of page-sized regions.
//!
//! The map is a vm-memory [`GuestMemoryMmap`] whose regions point into the
//! `GuestRam` mapping (not owned by vm-memory: it never unmaps them), so
//! virtio-queue's descriptor, ring and buffer accesses are bounds-checked
//! by vm-memory against exactly the guest's RAM: an address outside every
//! region is an error, never a host access elsewhere.
//!
//! **DMA write log.** The CPU caches decoded guest code by machine
//! address, so it must hear about every byte a device writes. Each region
//! carries a [`DmaWriteTracker`] in vm-memory's dirty-bitmap slot: vm-memory
//! calls it for every write through the map (buffer copies, used-ring
//! updates alike), and it appends the machine range to a shared, bounded
//! log that the board hands to the machine ([`DmaMemory::take_writes`]).

use mmu::{GuestRam, MachineAddr, RamRegion};
use std::sync::{Arc, Mutex};
use thiserror::Error;
use vm_memory::bitmap::{Bitmap, BitmapSlice, WithBitmapSlice};
use vm_memory::mmap::MmapRegionBuilder;
use vm_memory::{GuestAddress, GuestMemoryMmap, GuestRegionMmap};

/// The guest memory type the virtio devices use.
pub type DmaGuestMemory = GuestMemoryMmap<DmaWriteTracker>;

/// Granularity and alignment of the RAM regions.
const PAGE: u64 = 4096;

/// Most distinct ranges the write log keeps before it collapses them into
/// one covering range (still correct for invalidation, just coarser):
/// nobody may drain the log, and a guest must not grow it without bound.
const WRITE_LOG_MAX: usize = 1024;

/// Why a DMA view could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DmaError {
    #[error("no guest RAM regions for device DMA")]
    NoRegions,
    #[error("RAM region PA {start:#x}+{len:#x} at MA {machine:#x} is empty or not 4 KiB-aligned")]
    Misaligned { start: u64, len: u64, machine: u64 },
    #[error(
        "RAM region PA {start:#x}+{len:#x} at MA {machine:#x} lies outside guest RAM ({ram_size:#x} bytes)"
    )]
    OutsideRam {
        start: u64,
        len: u64,
        machine: u64,
        ram_size: u64,
    },
    #[error("RAM regions at PA {0:#x} overlap or wrap around")]
    Overlap(u64),
    #[error("cannot map RAM region at PA {start:#x} for DMA: {reason}")]
    Map { start: u64, reason: String },
}

/// Machine-address ranges written by devices, oldest first, merged where
/// contiguous.
#[derive(Debug, Default)]
pub struct DmaWriteLog {
    ranges: Vec<(u64, u64)>,
}

impl DmaWriteLog {
    fn record(&mut self, ma: u64, len: u64) {
        if len == 0 {
            return;
        }
        if let Some((start, l)) = self.ranges.last_mut() {
            let end = *start + *l;
            if ma >= *start && ma <= end {
                *l = (*l).max(ma + len - *start);
                return;
            }
        }
        if self.ranges.len() >= WRITE_LOG_MAX {
            let lo = self.ranges.iter().map(|r| r.0).min().unwrap_or(ma).min(ma);
            let hi = self
                .ranges
                .iter()
                .map(|r| r.0 + r.1)
                .max()
                .unwrap_or(ma + len)
                .max(ma + len);
            self.ranges.clear();
            self.ranges.push((lo, hi - lo));
            return;
        }
        self.ranges.push((ma, len));
    }

    fn contains(&self, ma: u64) -> bool {
        self.ranges.iter().any(|&(s, l)| ma >= s && ma - s < l)
    }
}

/// vm-memory's dirty-tracking hook, recording writes as machine ranges.
/// One per region (`machine` = MA of the region's first byte); a slice of
/// it is the same type offset further in.
#[derive(Debug, Clone, Default)]
pub struct DmaWriteTracker {
    log: Option<Arc<Mutex<DmaWriteLog>>>,
    machine: u64,
}

impl WithBitmapSlice<'_> for DmaWriteTracker {
    type S = Self;
}

impl BitmapSlice for DmaWriteTracker {}

impl Bitmap for DmaWriteTracker {
    fn mark_dirty(&self, offset: usize, len: usize) {
        if let Some(log) = &self.log {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(self.machine + offset as u64, len as u64);
        }
    }

    fn dirty_at(&self, offset: usize) -> bool {
        self.log.as_ref().is_some_and(|log| {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(self.machine + offset as u64)
        })
    }

    fn slice_at(&self, offset: usize) -> Self {
        Self {
            log: self.log.clone(),
            machine: self.machine + offset as u64,
        }
    }
}

/// Guest-physical memory for device DMA, over the machine's [`GuestRam`].
pub struct DmaMemory {
    mem: DmaGuestMemory,
    log: Arc<Mutex<DmaWriteLog>>,
    regions: usize,
    /// Keeps the mapping the regions point into alive (declared last: the
    /// regions, which never unmap, are dropped first).
    _ram: Arc<GuestRam>,
}

impl DmaMemory {
    /// Build the view of `regions` (guest-physical start, length, machine
    /// address). Every region must be page-aligned, lie inside `ram`, and
    /// not overlap another in guest-physical space. Regions contiguous in
    /// both spaces are merged.
    pub fn new(ram: Arc<GuestRam>, mut regions: Vec<RamRegion>) -> Result<Self, DmaError> {
        if regions.is_empty() {
            return Err(DmaError::NoRegions);
        }
        let ram_size = ram.size();
        for r in &regions {
            let (start, len, machine) = (r.start.0, r.len, r.machine.0);
            if len == 0
                || !start.is_multiple_of(PAGE)
                || !len.is_multiple_of(PAGE)
                || !machine.is_multiple_of(PAGE)
            {
                return Err(DmaError::Misaligned {
                    start,
                    len,
                    machine,
                });
            }
            if machine.checked_add(len).is_none_or(|end| end > ram_size) {
                return Err(DmaError::OutsideRam {
                    start,
                    len,
                    machine,
                    ram_size,
                });
            }
            if start.checked_add(len).is_none() {
                return Err(DmaError::Overlap(start));
            }
        }
        regions.sort_by_key(|r| r.start.0);
        let mut merged: Vec<RamRegion> = Vec::with_capacity(regions.len());
        for r in regions {
            if let Some(last) = merged.last_mut() {
                let last_end = last.start.0 + last.len;
                if r.start.0 < last_end {
                    return Err(DmaError::Overlap(r.start.0));
                }
                if r.start.0 == last_end && r.machine.0 == last.machine.0 + last.len {
                    last.len += r.len;
                    continue;
                }
            }
            merged.push(r);
        }

        let log = Arc::new(Mutex::new(DmaWriteLog::default()));
        let mut mapped = Vec::with_capacity(merged.len());
        for r in &merged {
            let map_err = |reason: String| DmaError::Map {
                start: r.start.0,
                reason,
            };
            let size = usize::try_from(r.len).map_err(|e| map_err(e.to_string()))?;
            let tracker = DmaWriteTracker {
                log: Some(log.clone()),
                machine: r.machine.0,
            };
            // SAFETY: the loop above proved `[machine, machine + len)` lies
            // inside the GuestRam mapping, so the pointer stays inside it
            // (`add` within one allocation); `machine` fits in usize
            // because the mapping's size does.
            let host = unsafe { ram.host_base().add(r.machine.0 as usize) };
            // SAFETY: `host..host + size` is part of the live anonymous
            // mapping owned by `ram`, which `DmaMemory` keeps alive for as
            // long as the regions exist; the region is built unowned, so
            // vm-memory never unmaps it. Concurrent guest (or CPU) access
            // to the same bytes is the usual DMA model vm-memory's volatile
            // accessors are written for.
            let builder = unsafe {
                MmapRegionBuilder::new_with_bitmap(size, tracker).with_raw_mmap_pointer(host)
            };
            let region = builder.build().map_err(|e| map_err(e.to_string()))?;
            let region = GuestRegionMmap::new(region, GuestAddress(r.start.0))
                .ok_or_else(|| map_err("region wraps the address space".into()))?;
            mapped.push(region);
        }
        let regions = mapped.len();
        let mem = GuestMemoryMmap::from_regions(mapped).map_err(|e| DmaError::Map {
            start: 0,
            reason: e.to_string(),
        })?;
        Ok(Self {
            mem,
            log,
            regions,
            _ram: ram,
        })
    }

    /// The vm-memory view the virtqueues use.
    pub fn memory(&self) -> &DmaGuestMemory {
        &self.mem
    }

    /// Number of (merged) regions in the map.
    pub fn num_regions(&self) -> usize {
        self.regions
    }

    /// Take the machine ranges written since the last call.
    pub fn take_writes(&self) -> Vec<(MachineAddr, u64)> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut log.ranges)
            .into_iter()
            .map(|(ma, len)| (MachineAddr(ma), len))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmu::GuestPhysAddr;
    use vm_memory::{Bytes, GuestMemoryBackend};

    fn region(start: u64, len: u64, machine: u64) -> RamRegion {
        RamRegion {
            start: GuestPhysAddr(start),
            len,
            machine: MachineAddr(machine),
        }
    }

    #[test]
    fn scattered_regions_translate_and_log_writes() {
        let ram = Arc::new(GuestRam::new(0x10000).unwrap());
        // PA 0x0000 → MA 0x3000, PA 0x1000 → MA 0x1000, PA 0x2000 → MA 0x2000.
        let dma = DmaMemory::new(
            ram.clone(),
            vec![
                region(0x1000, 0x1000, 0x1000),
                region(0x0, 0x1000, 0x3000),
                region(0x2000, 0x1000, 0x2000),
            ],
        )
        .unwrap();
        assert_eq!(dma.num_regions(), 2, "PA 0x1000-0x3000 merged");
        // A write straddling PA 0x1000 lands in two machine pages.
        dma.memory()
            .write_slice(&[1, 2, 3, 4], GuestAddress(0xffe))
            .unwrap();
        let mut b = [0u8; 2];
        ram.read(MachineAddr(0x3ffe), &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        ram.read(MachineAddr(0x1000), &mut b).unwrap();
        assert_eq!(b, [3, 4]);
        assert_eq!(
            dma.take_writes(),
            vec![(MachineAddr(0x3ffe), 2), (MachineAddr(0x1000), 2)]
        );
        assert!(dma.take_writes().is_empty());
        // Atomic stores (used-ring index updates) are logged too.
        dma.memory()
            .store(
                7u16,
                GuestAddress(0x2002),
                std::sync::atomic::Ordering::Release,
            )
            .unwrap();
        assert_eq!(dma.take_writes(), vec![(MachineAddr(0x2002), 2)]);
        // Outside the regions: an error, no access.
        assert!(dma
            .memory()
            .write_slice(&[0], GuestAddress(0x3000))
            .is_err());
        assert!(dma.memory().find_region(GuestAddress(0x3000)).is_none());
        assert!(dma.take_writes().is_empty());
    }

    #[test]
    fn bad_region_lists_are_refused() {
        let ram = Arc::new(GuestRam::new(0x4000).unwrap());
        let e = |v| DmaMemory::new(ram.clone(), v).err();
        assert_eq!(e(vec![]), Some(DmaError::NoRegions));
        assert!(matches!(
            e(vec![region(0, 0x2000, 0x3000)]),
            Some(DmaError::OutsideRam { .. })
        ));
        assert!(matches!(
            e(vec![region(0, 0x1000, u64::MAX - 0xfff)]),
            Some(DmaError::OutsideRam { .. })
        ));
        assert!(matches!(
            e(vec![region(0x10, 0x1000, 0)]),
            Some(DmaError::Misaligned { .. })
        ));
        assert!(matches!(
            e(vec![region(0, 0x2000, 0), region(0x1000, 0x1000, 0x2000)]),
            Some(DmaError::Overlap(0x1000))
        ));
    }

    #[test]
    fn write_log_is_bounded() {
        let mut log = DmaWriteLog::default();
        for i in 0..(WRITE_LOG_MAX as u64 + 10) {
            log.record(i * 0x100, 1);
        }
        assert!(log.ranges.len() <= WRITE_LOG_MAX);
        assert!(log.contains(0));
        assert!(log.contains((WRITE_LOG_MAX as u64 + 9) * 0x100));
    }
}
