//! Guest RAM: one anonymous host mapping, the single owner of guest memory.
//!
//! Every backend uses the same mapping: the interpreter reads and writes it
//! through [`GuestRam`], and KVM registers its host address as a memory slot.
//! That is what lets CPU state (and later whole machines) move between
//! backends without copying memory.
//!
//! We don't use vm-memory's `GuestMemoryMmap` here: ringside needs a single
//! contiguous mapping whose raw base the software TLB can add an offset to on
//! its fast path; vm-memory's region lookup and volatile-slice layers would
//! sit on that hot path. Accesses are indexed by [`MachineAddr`] (offset into
//! the mapping); the GPA→MA step is [`crate::PhysLayout`] or a monitor's p2m.

use crate::addr::MachineAddr;
use memmap2::MmapMut;
use thiserror::Error;

/// A host access outside the guest RAM mapping was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("machine address {addr:#x}+{len} is outside guest RAM ({size:#x} bytes)")]
pub struct OutOfRange {
    pub addr: u64,
    pub len: u64,
    pub size: u64,
}

/// Failure to create guest RAM.
#[derive(Debug, Error)]
pub enum RamError {
    #[error("guest RAM size must be a non-zero multiple of 4 KiB, got {0} bytes")]
    BadSize(u64),
    #[error("could not map {size} bytes of guest RAM: {source}")]
    Map {
        size: u64,
        #[source]
        source: std::io::Error,
    },
}

/// The host mapping that backs guest RAM.
pub struct GuestRam {
    map: MmapMut,
    base: *mut u8,
    size: u64,
}

// SAFETY: `base` points into `map`, which lives as long as `GuestRam`. All
// accesses go through raw-pointer copies bounds-checked against `size`; no
// Rust reference into guest memory escapes except through `&mut self`. The
// guest itself (KVM) may race with host reads exactly as hardware DMA would,
// which is the accepted model for guest memory in every VMM.
unsafe impl Send for GuestRam {}
// SAFETY: see `Send`; shared access only performs bounds-checked raw copies.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    /// Map `size` bytes of zeroed anonymous memory.
    pub fn new(size: u64) -> Result<Self, RamError> {
        if size == 0 || !size.is_multiple_of(4096) || usize::try_from(size).is_err() {
            return Err(RamError::BadSize(size));
        }
        let mut map = memmap2::MmapOptions::new()
            .len(size as usize)
            .map_anon()
            .map_err(|source| RamError::Map { size, source })?;
        let base = map.as_mut_ptr();
        Ok(Self { map, base, size })
    }

    /// Size of guest RAM in bytes.
    #[inline(always)]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host address of machine address 0, for registering the mapping with
    /// KVM. Never dereference it outside this module.
    pub fn host_base(&self) -> *mut u8 {
        self.base
    }

    #[inline(always)]
    fn check(&self, ma: MachineAddr, len: usize) -> Result<usize, OutOfRange> {
        let a = ma.0;
        let end = a.checked_add(len as u64);
        match end {
            Some(e) if e <= self.size => Ok(a as usize),
            _ => Err(OutOfRange {
                addr: a,
                len: len as u64,
                size: self.size,
            }),
        }
    }

    /// Copy guest RAM at `ma` into `buf`.
    pub fn read(&self, ma: MachineAddr, buf: &mut [u8]) -> Result<(), OutOfRange> {
        let off = self.check(ma, buf.len())?;
        // SAFETY: `check` proved [off, off+len) lies inside the mapping;
        // `buf` is a distinct host buffer, so the regions cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copy `buf` into guest RAM at `ma`.
    pub fn write(&self, ma: MachineAddr, buf: &[u8]) -> Result<(), OutOfRange> {
        let off = self.check(ma, buf.len())?;
        // SAFETY: as in `read`, the destination range is inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.base.add(off), buf.len()) };
        Ok(())
    }

    /// Read a little-endian value of `size` bytes (1, 2, 4 or 8).
    #[inline(always)]
    pub fn read_le(&self, ma: MachineAddr, size: usize) -> Result<u64, OutOfRange> {
        let off = self.check(ma, size)?;
        // SAFETY: bounds checked above; unaligned reads are allowed by
        // `read_unaligned`.
        unsafe {
            let p = self.base.add(off);
            Ok(match size {
                1 => *p as u64,
                2 => (p as *const u16).read_unaligned() as u64,
                4 => (p as *const u32).read_unaligned() as u64,
                8 => (p as *const u64).read_unaligned(),
                _ => {
                    let mut v = [0u8; 8];
                    std::ptr::copy_nonoverlapping(p, v.as_mut_ptr(), size.min(8));
                    u64::from_le_bytes(v)
                }
            })
        }
    }

    /// Write the low `size` bytes (1, 2, 4 or 8) of `val`, little-endian.
    #[inline(always)]
    pub fn write_le(&self, ma: MachineAddr, size: usize, val: u64) -> Result<(), OutOfRange> {
        let off = self.check(ma, size)?;
        // SAFETY: bounds checked above; unaligned writes via `write_unaligned`.
        unsafe {
            let p = self.base.add(off);
            match size {
                1 => *p = val as u8,
                2 => (p as *mut u16).write_unaligned(val as u16),
                4 => (p as *mut u32).write_unaligned(val as u32),
                8 => (p as *mut u64).write_unaligned(val),
                _ => {
                    let v = val.to_le_bytes();
                    std::ptr::copy_nonoverlapping(v.as_ptr(), p, size.min(8));
                }
            }
        }
        Ok(())
    }

    /// Atomic compare-exchange of a naturally sized value, used for LOCKed
    /// read-modify-writes and page-table A/D updates. Returns the old value.
    /// Single-vCPU today, so this is a plain read-compare-write; it is the one
    /// place to make atomic when SMP arrives.
    pub fn cmpxchg_le(
        &self,
        ma: MachineAddr,
        size: usize,
        expected: u64,
        new: u64,
    ) -> Result<u64, OutOfRange> {
        let old = self.read_le(ma, size)?;
        if old == expected {
            self.write_le(ma, size, new)?;
        }
        Ok(old)
    }

    /// Zero a range (used by loaders for .bss).
    pub fn fill(&self, ma: MachineAddr, len: u64, byte: u8) -> Result<(), OutOfRange> {
        let len_us = usize::try_from(len).map_err(|_| OutOfRange {
            addr: ma.0,
            len,
            size: self.size,
        })?;
        let off = self.check(ma, len_us)?;
        // SAFETY: bounds checked above.
        unsafe { std::ptr::write_bytes(self.base.add(off), byte, len_us) };
        Ok(())
    }

    /// Borrow the whole RAM as a byte slice (snapshots, checksums, tests).
    pub fn as_slice(&self) -> &[u8] {
        &self.map[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let ram = GuestRam::new(0x2000).unwrap();
        assert!(ram.write_le(MachineAddr(0x1ffc), 4, 0xdead_beef).is_ok());
        assert_eq!(ram.read_le(MachineAddr(0x1ffc), 4).unwrap(), 0xdead_beef);
        assert!(ram.read_le(MachineAddr(0x1ffd), 4).is_err());
        assert!(ram.write(MachineAddr(u64::MAX), &[1]).is_err());
        assert!(GuestRam::new(0).is_err());
        assert!(GuestRam::new(100).is_err());
    }

    #[test]
    fn unaligned_and_cmpxchg() {
        let ram = GuestRam::new(0x1000).unwrap();
        ram.write_le(MachineAddr(3), 8, 0x0102_0304_0506_0708)
            .unwrap();
        assert_eq!(
            ram.read_le(MachineAddr(3), 8).unwrap(),
            0x0102_0304_0506_0708
        );
        assert_eq!(
            ram.cmpxchg_le(MachineAddr(3), 2, 0x0708, 0xaaaa).unwrap(),
            0x0708
        );
        assert_eq!(ram.read_le(MachineAddr(3), 2).unwrap(), 0xaaaa);
        assert_eq!(
            ram.cmpxchg_le(MachineAddr(3), 2, 0, 0xbbbb).unwrap(),
            0xaaaa
        );
        assert_eq!(ram.read_le(MachineAddr(3), 2).unwrap(), 0xaaaa);
    }
}
