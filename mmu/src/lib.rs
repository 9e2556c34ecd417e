//! Memory for ringside: guest RAM, the address-space newtypes, the
//! guest-physical layout, x86 paging walks and the software TLB.
//!
//! This crate knows nothing about instructions or devices; the CPU asks it to
//! translate and the machine asks it to hold memory.

pub mod addr;
pub mod layout;
pub mod paging;
pub mod ram;
pub mod tlb;

pub use addr::{GuestPhysAddr, GuestVirtAddr, MachineAddr};
pub use layout::{PhysLayout, PhysTarget, RamRegion};
pub use paging::{
    Access, AccessKind, PageFault, PagingMode, PagingRegs, PteMemory, StepDecision, Translation,
    WalkStep, WalkTrace,
};
pub use ram::{GuestRam, OutOfRange, RamError};
pub use tlb::Tlb;
