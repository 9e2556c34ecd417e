//! Writing boot data into guest memory by guest-physical address.
//!
//! The loaders think in guest-physical addresses (that is what ELF program
//! headers and boot protocols speak); [`GuestRam`] is indexed by machine
//! address. This wrapper does the PA→MA step through [`PhysLayout`] and
//! refuses anything that is not entirely RAM, so a loader bug becomes an
//! error, never a write into the wrong place.

use super::BootError;
use mmu::{GuestPhysAddr, GuestRam, MachineAddr, PhysLayout, PhysTarget};

/// Guest RAM seen through the fixed guest-physical layout.
pub struct GuestWriter<'a> {
    ram: &'a GuestRam,
    layout: &'a PhysLayout,
}

impl<'a> GuestWriter<'a> {
    /// Pair RAM with its layout; the layout must not describe more RAM than
    /// the mapping holds.
    pub fn new(ram: &'a GuestRam, layout: &'a PhysLayout) -> Result<Self, BootError> {
        if layout.ram_size() > ram.size() {
            return Err(BootError::Internal(format!(
                "the physical layout describes {:#x} bytes of RAM but the mapping has {:#x}",
                layout.ram_size(),
                ram.size()
            )));
        }
        Ok(Self { ram, layout })
    }

    /// The machine address of `[pa, pa+len)`, which must be entirely RAM
    /// within one RAM region.
    fn machine(&self, pa: u64, len: u64) -> Result<MachineAddr, BootError> {
        let gpa = GuestPhysAddr(pa);
        if !self.layout.is_ram_range(gpa, len) {
            return Err(BootError::Internal(format!(
                "boot data at {pa:#x}+{len:#x} is not in guest RAM"
            )));
        }
        match self.layout.translate(gpa) {
            PhysTarget::Ram(ma) => Ok(ma),
            PhysTarget::Mmio(_) => Err(BootError::Internal(format!(
                "boot data at {pa:#x} maps to MMIO"
            ))),
        }
    }

    /// Copy `bytes` to guest-physical `pa`.
    pub fn write(&self, pa: u64, bytes: &[u8]) -> Result<(), BootError> {
        let ma = self.machine(pa, bytes.len() as u64)?;
        self.ram.write(ma, bytes)?;
        Ok(())
    }

    /// Zero `len` bytes at guest-physical `pa`.
    pub fn zero(&self, pa: u64, len: u64) -> Result<(), BootError> {
        if len == 0 {
            return Ok(());
        }
        let ma = self.machine(pa, len)?;
        self.ram.fill(ma, len, 0)?;
        Ok(())
    }

    /// Write `bytes` followed by a NUL at `pa` (the caller has checked
    /// the string has no NUL and fits its area).
    pub fn write_cstr(&self, pa: u64, bytes: &[u8]) -> Result<(), BootError> {
        self.write(pa, bytes)?;
        self.write(pa.saturating_add(bytes.len() as u64), &[0])
    }
}
