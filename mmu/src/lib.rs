//! Memory for ringside: guest RAM, the address-space newtypes, the
//! guest-physical layout, x86 paging walks and the software TLB.
//!
//! This crate knows nothing about instructions or devices; the CPU asks it to
//! translate and the machine asks it to hold memory.

pub mod addr;
pub mod frames;
pub mod layout;
pub mod nested;
pub mod p2m;
pub mod paging;
pub mod pte;
pub mod ptemem;
pub mod ram;
pub mod ranges;
pub mod regs;
pub mod stage2;
pub mod tlb;

pub use addr::{GuestPhysAddr, GuestVirtAddr, MachineAddr};
pub use frames::FramePool;
pub use layout::{PhysLayout, PhysTarget, RamRegion};
pub use nested::NestedTables;
pub use p2m::{MappedPtes, P2m};
pub use paging::{
    load_pdptes, walk, walk_debug, Access, AccessKind, PageFault, PagingMode, PagingRegs,
    PteMemory, StepDecision, Translation, WalkStep, WalkTrace, MAXPHYADDR,
};
pub use ptemem::RamPtes;
pub use ram::{GuestRam, OutOfRange, RamError};
pub use ranges::{mapped_ranges, scan_mapped_ranges, MappedRange, RangeScan};
pub use stage2::{GuestPhysMap, LayoutMap};
pub use tlb::Tlb;
