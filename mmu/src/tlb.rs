//! The software TLB. (Being written: see the mmu task.)

/// Placeholder until the mmu task lands.
#[derive(Debug, Default)]
pub struct Tlb;
