//! The virtualization monitor (VMM) that runs one guest kernel on the
//! software CPU in the chosen `--virt` mode. See docs/VIRTUALIZATION.md.
//!
//! * [`memory`] — machine memory: monitor frames + the guest scattered
//!   through the p2m.
//! * [`stats`] — traps by cause, monitor vs guest time.
//! * `full` — trap-and-emulate (+ binary translation): `full`,
//!   `trap-only`, and the paravirtual `para` (hypercalls), over shadow
//!   page tables (`shadow`).
//! * `hw` — modelled VT-x: non-root mode, a VMCS-like control
//!   structure, nested paging with the 2-D walk.

pub mod full;
pub mod hw;
pub mod memory;
pub mod stats;

pub use memory::MachineMemory;
pub use stats::{MonitorStats, TrapCause};

/// The `--virt` modes that need a monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VirtMode {
    /// Trap-and-emulate + binary translation.
    Full,
    /// Trap-and-emulate only: the x86 virtualization hole shows.
    TrapOnly,
    /// Paravirtualization: hypercalls, virtio.
    Para,
    /// Modelled hardware assist (VT-x non-root mode, nested paging).
    Hw,
}

impl VirtMode {
    /// The `--virt` spelling.
    pub fn name(self) -> &'static str {
        match self {
            VirtMode::Full => "full",
            VirtMode::TrapOnly => "trap-only",
            VirtMode::Para => "para",
            VirtMode::Hw => "hw",
        }
    }
}

use crate::{AccelError, Accelerator};

/// Build the monitor for `mode` over `mem` (the guest image already
/// loaded with [`MachineMemory::load_image`]).
pub fn create(mode: VirtMode, mem: MachineMemory) -> Result<Box<dyn Accelerator>, AccelError> {
    match mode {
        VirtMode::Full | VirtMode::TrapOnly | VirtMode::Para => {
            Ok(Box::new(full::FullMonitor::new(mode, mem)?))
        }
        VirtMode::Hw => Ok(Box::new(hw::HwMonitor::new(mem)?)),
    }
}
