//! x86 paging: 32-bit, PAE and 4-level walks, with permission checks,
//! Accessed/Dirty updates and a step-by-step trace.
//!
//! The walker is generic over [`PteMemory`], the thing that reads and writes
//! page-table entries by guest-physical address. With no monitor that is
//! guest RAM through [`crate::PhysLayout`]; a monitor (shadow paging) or a
//! nested walk (the 2-D walk of hardware assist) supplies its own, which is
//! how the same walker serves every virtualization mode.

use crate::addr::{GuestPhysAddr, GuestVirtAddr};

/// CR0 bits the walker reads.
pub mod cr0 {
    pub const PE: u64 = 1 << 0;
    pub const WP: u64 = 1 << 16;
    pub const PG: u64 = 1 << 31;
}
/// CR4 bits the walker reads.
pub mod cr4 {
    pub const PSE: u64 = 1 << 4;
    pub const PAE: u64 = 1 << 5;
    pub const PGE: u64 = 1 << 7;
    pub const SMEP: u64 = 1 << 20;
    pub const SMAP: u64 = 1 << 21;
}
/// EFER bits the walker reads.
pub mod efer {
    pub const SCE: u64 = 1 << 0;
    pub const LME: u64 = 1 << 8;
    pub const LMA: u64 = 1 << 10;
    pub const NXE: u64 = 1 << 11;
}

/// #PF error-code bits (SDM Vol. 3A, 4.7).
pub mod pf_ec {
    /// The fault was a protection violation (0: the page was not present).
    pub const P: u32 = 1 << 0;
    /// The access was a write.
    pub const W: u32 = 1 << 1;
    /// The access was a user-mode access.
    pub const U: u32 = 1 << 2;
    /// A reserved bit was set in some paging-structure entry.
    pub const RSVD: u32 = 1 << 3;
    /// The access was an instruction fetch (only with NXE or SMEP).
    pub const ID: u32 = 1 << 4;
}

/// What the access does with the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessKind {
    Read,
    Write,
    Execute,
}

/// One memory access to translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub kind: AccessKind,
    /// A user-mode access: CPL 3 and not an implicit supervisor access
    /// (descriptor-table and TSS reads are supervisor even at CPL 3).
    pub user: bool,
}

impl Access {
    pub const fn new(kind: AccessKind, user: bool) -> Self {
        Self { kind, user }
    }
}

/// The control registers that select and parameterize paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PagingRegs {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

/// Which paging structure is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingMode {
    /// CR0.PG = 0: linear = physical.
    Disabled,
    /// 32-bit paging (CR4.PAE = 0), with 4 MiB pages when CR4.PSE = 1.
    Legacy32,
    /// PAE paging (CR4.PAE = 1, EFER.LMA = 0).
    Pae,
    /// 4-level paging (EFER.LMA = 1).
    Level4,
}

impl PagingRegs {
    /// The paging mode these registers select.
    pub fn mode(&self) -> PagingMode {
        if self.cr0 & cr0::PG == 0 {
            PagingMode::Disabled
        } else if self.cr4 & cr4::PAE == 0 {
            PagingMode::Legacy32
        } else if self.efer & efer::LMA == 0 {
            PagingMode::Pae
        } else {
            PagingMode::Level4
        }
    }
}

/// A successful translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The guest-physical address of the accessed byte.
    pub pa: GuestPhysAddr,
    /// Size of the mapping page: 4 KiB, 2 MiB, 4 MiB or 1 GiB.
    pub page_size: u64,
    /// Effective rights of the whole walk (AND of R/W, U/S; OR of XD).
    pub writable: bool,
    pub user: bool,
    pub executable: bool,
    /// The leaf is global (G=1 with CR4.PGE): survives CR3 reloads.
    pub global: bool,
    /// The leaf's dirty bit is set (after this walk's update).
    pub dirty: bool,
}

/// A page fault: CR2 value and error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFault {
    pub va: GuestVirtAddr,
    pub error_code: u32,
}

/// Reads and writes paging-structure entries by guest-physical address.
pub trait PteMemory {
    /// Read a 4- or 8-byte entry. `None` if `pa` is not backed by RAM (the
    /// walker then treats the entry as all-ones, as the bus would return).
    fn read_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64>;
    /// Write an entry back (Accessed/Dirty updates). Returns false if `pa`
    /// is not RAM, in which case the update is dropped.
    fn write_pte(&mut self, pa: GuestPhysAddr, size: u8, val: u64) -> bool;
}

/// The verdict at one level of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDecision {
    /// Present, non-leaf: continue at this table.
    Next(GuestPhysAddr),
    /// Present leaf mapping a page of this size.
    Leaf { page_size: u64 },
    /// P = 0.
    NotPresent,
    /// A reserved bit is set.
    Reserved,
    /// Present but the access is not allowed; the reason in words.
    Denied(&'static str),
}

/// One level of a walk, as the TUI and the monitor show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkStep {
    /// 4 = PML4 … 1 = PT for 4-level; 2/1 for 32-bit; 3/2/1 for PAE.
    pub level: u8,
    /// The SDM's name for the structure: "PML4", "PDPT", "PD", "PT".
    pub table: &'static str,
    pub entry_pa: GuestPhysAddr,
    pub entry: u64,
    pub decision: StepDecision,
}

/// Every step of one walk, plus its outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkTrace {
    pub va: GuestVirtAddr,
    pub steps: Vec<WalkStep>,
    pub result: Option<Result<Translation, PageFault>>,
}
