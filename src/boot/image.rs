//! Placing a kernel image in guest-physical memory: checking that every
//! segment lands in RAM, away from the MMIO hole and from ringside's own
//! boot structures, then copying it in and zeroing its .bss; and placing
//! the initrd.
//!
//! All checks run before the first byte is written, so a refused kernel
//! leaves guest memory untouched.

use super::guest::GuestWriter;
use super::lowmem::{overlaps, HIGH_MEMORY, RESERVED_AREAS};
use super::BootError;
use mmu::layout::{MMIO_HOLE_END, MMIO_HOLE_START};
use mmu::{GuestPhysAddr, PhysLayout};
use std::path::Path;

/// One piece of the kernel image: `data` goes at `paddr`, followed by
/// zeroes up to `memsz` bytes (the .bss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment<'a> {
    pub paddr: u64,
    pub data: &'a [u8],
    /// Size in memory; `data.len() <= memsz`.
    pub memsz: u64,
}

impl LoadSegment<'_> {
    /// End address (exclusive); callers have checked it does not wrap.
    pub fn end(&self) -> u64 {
        self.paddr.saturating_add(self.memsz)
    }
}

/// A short description of guest RAM for error messages.
pub fn describe_ram(layout: &PhysLayout) -> String {
    let mut s = format!("0..{:#x}", layout.low_ram());
    if layout.high_ram() > 0 {
        s.push_str(&format!(
            " and {:#x}..{:#x}",
            MMIO_HOLE_END,
            MMIO_HOLE_END.saturating_add(layout.high_ram())
        ));
    }
    s
}

/// Check that the segments fit the machine: total size, then each
/// segment's range against the boot structures, the MMIO hole and RAM.
/// Overlap *between* segments is a property of the file and is checked by
/// [`check_disjoint`] afterwards.
pub fn check_placement(
    segs: &[LoadSegment],
    layout: &PhysLayout,
    path: &Path,
) -> Result<(), BootError> {
    let needed = segs.iter().fold(0u64, |acc, s| acc.saturating_add(s.memsz));
    if needed > layout.ram_size() {
        return Err(BootError::KernelTooLarge {
            path: path.to_path_buf(),
            needed,
            ram: layout.ram_size(),
        });
    }
    for s in segs {
        let (start, end) = match s.paddr.checked_add(s.memsz) {
            Some(end) => (s.paddr, end),
            None => {
                return Err(BootError::SegmentOutsideRam {
                    path: path.to_path_buf(),
                    start: s.paddr,
                    end: u64::MAX,
                    ram: describe_ram(layout),
                })
            }
        };
        if let Some(area) = RESERVED_AREAS
            .iter()
            .find(|a| overlaps(start, end, a.start, a.end))
        {
            return Err(BootError::SegmentOverlapsBootArea {
                path: path.to_path_buf(),
                start,
                end,
                area: area.name,
                area_start: area.start,
                area_end: area.end,
            });
        }
        if overlaps(start, end, MMIO_HOLE_START, MMIO_HOLE_END) {
            return Err(BootError::SegmentInMmioHole {
                path: path.to_path_buf(),
                start,
                end,
            });
        }
        if !layout.is_ram_range(GuestPhysAddr(start), s.memsz) {
            return Err(BootError::SegmentOutsideRam {
                path: path.to_path_buf(),
                start,
                end,
                ram: describe_ram(layout),
            });
        }
    }
    Ok(())
}

/// Refuse segments that overlap each other: one would silently overwrite
/// the other (or zero it with its .bss). Returns the offending pair.
pub fn check_disjoint(segs: &[LoadSegment]) -> Result<(), (u64, u64, u64, u64)> {
    let mut sorted: Vec<&LoadSegment> = segs.iter().collect();
    sorted.sort_by_key(|s| s.paddr);
    for w in sorted.windows(2) {
        if let [a, b] = w {
            if a.end() > b.paddr {
                return Err((a.paddr, a.end(), b.paddr, b.end()));
            }
        }
    }
    Ok(())
}

/// True if physical address `pa` is backed by file bytes of some segment:
/// where an entry point must be (executing .bss zeroes is never intended).
pub fn contains_code(segs: &[LoadSegment], pa: u64) -> bool {
    segs.iter()
        .any(|s| pa >= s.paddr && pa - s.paddr < s.data.len() as u64)
}

/// Copy the segments into guest memory and zero their .bss.
pub fn write_segments(w: &GuestWriter, segs: &[LoadSegment]) -> Result<(), BootError> {
    for s in segs {
        w.write(s.paddr, s.data)?;
        let filesz = s.data.len() as u64;
        w.zero(
            s.paddr.saturating_add(filesz),
            s.memsz.saturating_sub(filesz),
        )?;
    }
    Ok(())
}

/// Where the initrd goes: page-aligned, as high as possible in low RAM
/// (below the MMIO hole, so 32-bit kernels reach it), above 1 MiB and above
/// every kernel segment. Linux and QEMU place it the same way, leaving the
/// memory right after the kernel free for the kernel's early allocations.
pub fn place_initrd(
    layout: &PhysLayout,
    size: u64,
    segs: &[LoadSegment],
    path: &Path,
) -> Result<u64, BootError> {
    let top = layout.low_ram();
    let floor = segs
        .iter()
        .map(|s| s.end())
        .filter(|&e| e <= top)
        .fold(HIGH_MEMORY, u64::max);
    let too_large = || BootError::InitrdTooLarge {
        path: path.to_path_buf(),
        size,
        floor,
        top,
    };
    let start = top.checked_sub(size).ok_or_else(too_large)? & !0xfff;
    if start < floor {
        return Err(too_large());
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(paddr: u64, data: &[u8], memsz: u64) -> LoadSegment<'_> {
        LoadSegment { paddr, data, memsz }
    }

    #[test]
    fn placement_errors() {
        let l = PhysLayout::new(16 << 20);
        let p = Path::new("k");
        let ok = [seg(0x100000, &[1], 0x1000)];
        assert!(check_placement(&ok, &l, p).is_ok());
        assert!(matches!(
            check_placement(&[seg(0x6000, &[1], 0x2000)], &l, p),
            Err(BootError::SegmentOverlapsBootArea { area_start: 0, .. })
        ));
        assert!(matches!(
            check_placement(&[seg(0xe8000, &[1], 0x100)], &l, p),
            Err(BootError::SegmentOverlapsBootArea {
                area_start: 0xe0000,
                ..
            })
        ));
        assert!(matches!(
            check_placement(&[seg(0xfee00000, &[1], 0x100)], &l, p),
            Err(BootError::SegmentInMmioHole { .. })
        ));
        assert!(matches!(
            check_placement(&[seg(0xff0000, &[1], 0x20000)], &l, p),
            Err(BootError::SegmentOutsideRam { .. })
        ));
        assert!(matches!(
            check_placement(&[seg(0x100000, &[1], 32 << 20)], &l, p),
            Err(BootError::KernelTooLarge { .. })
        ));
        // Segments in the legacy area outside the FDT window are allowed.
        assert!(check_placement(&[seg(0x8000, &[1], 0x1000)], &l, p).is_ok());
    }

    #[test]
    fn disjoint() {
        let a = [seg(0x200000, &[], 0x1000), seg(0x100000, &[], 0x100001)];
        assert_eq!(
            check_disjoint(&a),
            Err((0x100000, 0x200001, 0x200000, 0x201000))
        );
        let b = [seg(0x200000, &[], 0x1000), seg(0x100000, &[], 0x100000)];
        assert!(check_disjoint(&b).is_ok());
    }

    #[test]
    fn initrd_goes_high_and_aligned() {
        let l = PhysLayout::new(16 << 20);
        let k = [seg(0x100000, &[1], 0x10000)];
        let p = Path::new("i");
        assert_eq!(place_initrd(&l, 5000, &k, p).unwrap(), (16 << 20) - 0x2000);
        assert_eq!(place_initrd(&l, 0, &k, p).unwrap(), 16 << 20);
        assert!(matches!(
            place_initrd(&l, 15 << 20, &k, p),
            Err(BootError::InitrdTooLarge {
                floor: 0x110000,
                ..
            })
        ));
        assert!(matches!(
            place_initrd(&l, 17 << 20, &k, p),
            Err(BootError::InitrdTooLarge { .. })
        ));
    }
}
