//! The second stage of address translation: guest-physical → machine.
//!
//! Without a monitor the fixed [`crate::PhysLayout`] is the whole story
//! (PA = MA for low RAM). With the virtualization monitor, the guest's
//! "physical" memory is an illusion the monitor keeps: each guest frame
//! lives wherever the monitor put it in machine memory. Two ways to keep
//! that map are modelled, as the two generations of x86 hypervisors did:
//!
//! * [`crate::p2m::P2m`] — a table in the monitor's own (host) memory,
//!   consulted by software: the monitor's virtual CPU uses it when it
//!   emulates an instruction, and shadow page tables are built from it.
//! * [`crate::nested::NestedTables`] — EPT-style page tables *in machine
//!   memory* that the (modelled) hardware walks on every guest-physical
//!   reference: the 2-D walk of `--virt hw`.
//!
//! The CPU only sees this trait, so one interpreter serves every mode.

use crate::addr::{GuestPhysAddr, MachineAddr};
use crate::ram::GuestRam;

/// A guest-physical → machine map the CPU consults on every TLB miss.
pub trait GuestPhysMap: Send + Sync {
    /// Translate `pa`. `refs` is incremented once per memory reference the
    /// translation itself makes (0 for a software table lookup, one per
    /// level for a nested walk). `None`: `pa` is not guest RAM (a device,
    /// or nothing).
    fn translate(&self, ram: &GuestRam, pa: GuestPhysAddr, refs: &mut u64) -> Option<MachineAddr>;
    /// Whether a miss is a VM exit (an EPT violation the monitor must
    /// see) rather than an ordinary access to a device address.
    fn miss_exits(&self) -> bool {
        false
    }
    /// Short name for traces ("p2m", "nested").
    fn name(&self) -> &'static str;
}

/// The fixed layout as a [`GuestPhysMap`] (no monitor: PA = MA for RAM),
/// so inspectors can treat every mode alike.
#[derive(Debug, Clone, Copy)]
pub struct LayoutMap(pub crate::layout::PhysLayout);

impl GuestPhysMap for LayoutMap {
    fn translate(
        &self,
        _ram: &GuestRam,
        pa: GuestPhysAddr,
        _refs: &mut u64,
    ) -> Option<MachineAddr> {
        match self.0.translate(pa) {
            crate::layout::PhysTarget::Ram(ma) => Some(ma),
            crate::layout::PhysTarget::Mmio(_) => None,
        }
    }
    fn name(&self) -> &'static str {
        "layout"
    }
}
