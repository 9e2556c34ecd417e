//! Paging-structure entry formats: the bits of a PTE/PDE/PDPTE/PML4E and
//! how each paging mode decodes them (SDM Vol. 3A, 4.3–4.5, tables 4-4 to
//! 4-20).
//!
//! The walker ([`crate::paging::walk`]) and the address-space scanner
//! ([`crate::ranges::mapped_ranges`]) both decode entries here, so "what is
//! mapped" and "what the CPU translates" can never disagree.

use crate::paging::{cr4, efer, PagingMode, PagingRegs, MAXPHYADDR};

/// Present.
pub const P: u64 = 1 << 0;
/// Read/write: 0 forbids writes (for user accesses, and supervisor ones when CR0.WP = 1).
pub const RW: u64 = 1 << 1;
/// User/supervisor: 0 forbids user-mode accesses.
pub const US: u64 = 1 << 2;
/// Page-level write-through.
pub const PWT: u64 = 1 << 3;
/// Page-level cache disable.
pub const PCD: u64 = 1 << 4;
/// Accessed: set by the processor when the entry is used for a translation.
pub const A: u64 = 1 << 5;
/// Dirty (leaf entries only): set by the processor on the first write.
pub const D: u64 = 1 << 6;
/// Page size: in a PDE/PDPTE, the entry maps a large page.
pub const PS: u64 = 1 << 7;
/// Global (leaf entries only, with CR4.PGE).
pub const G: u64 = 1 << 8;
/// Execute-disable (PAE and 4-level, with EFER.NXE).
pub const XD: u64 = 1 << 63;

/// Bits `lo..=hi` set.
pub const fn bits(lo: u32, hi: u32) -> u64 {
    (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
}

/// Physical-address field of an entry that references a 4 KiB frame or a
/// table: bits 12..MAXPHYADDR-1.
pub const ADDR_MASK: u64 = bits(12, MAXPHYADDR - 1);

/// Width of the PSE-36 physical address of a 4 MiB page: min(MAXPHYADDR, 40).
const PSE36_M: u32 = if MAXPHYADDR < 40 { MAXPHYADDR } else { 40 };

/// What one entry means at one level, before any permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// P = 0.
    NotPresent,
    /// P = 1 but a reserved bit is set.
    Reserved,
    /// References the next paging structure at this physical address.
    Next(u64),
    /// Maps a page of `1 << shift` bytes starting at physical address `base`.
    Leaf { base: u64, shift: u32 },
}

/// The entry format of one paging mode (never [`PagingMode::Disabled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub mode: PagingMode,
    /// EFER.NXE, which makes bit 63 the XD flag instead of a reserved bit.
    /// Only meaningful in PAE and 4-level paging.
    pub nxe: bool,
    /// CR4.PSE: in 32-bit paging, PS in a PDE selects a 4 MiB page.
    pub pse: bool,
}

impl Format {
    /// The format the registers select, or `None` with paging disabled.
    pub fn for_regs(regs: &PagingRegs) -> Option<Format> {
        let mode = regs.mode();
        if mode == PagingMode::Disabled {
            return None;
        }
        Some(Format {
            mode,
            nxe: regs.efer & efer::NXE != 0,
            pse: regs.cr4 & cr4::PSE != 0,
        })
    }

    /// Bytes per entry: 4 in 32-bit paging, 8 otherwise.
    pub fn entry_size(&self) -> u8 {
        if self.mode == PagingMode::Legacy32 {
            4
        } else {
            8
        }
    }

    /// The level of the root table: 2 (PD), 3 (PDPT) or 4 (PML4).
    pub fn top_level(&self) -> u8 {
        match self.mode {
            PagingMode::Legacy32 => 2,
            PagingMode::Pae => 3,
            _ => 4,
        }
    }

    /// Physical address of the root table from CR3: `CR3[31:12]` for 32-bit
    /// paging, `CR3[31:5]` for the PAE PDPT, `CR3[M-1:12]` for the PML4.
    pub fn root(&self, cr3: u64) -> u64 {
        match self.mode {
            PagingMode::Legacy32 => cr3 & 0xffff_f000,
            PagingMode::Pae => cr3 & 0xffff_ffe0,
            _ => cr3 & ADDR_MASK,
        }
    }

    /// Bit position of the lowest linear-address bit that indexes `level`.
    pub fn index_shift(&self, level: u8) -> u32 {
        let per_level = if self.mode == PagingMode::Legacy32 {
            10
        } else {
            9
        };
        12 + per_level * (u32::from(level).saturating_sub(1))
    }

    /// Number of entries in a table at `level`.
    pub fn entries(&self, level: u8) -> u64 {
        match (self.mode, level) {
            (PagingMode::Legacy32, _) => 1024,
            (PagingMode::Pae, 3) => 4,
            _ => 512,
        }
    }

    /// Physical address of the entry for `va` in the table at `table`.
    pub fn entry_pa(&self, table: u64, level: u8, va: u64) -> u64 {
        let index = (va >> self.index_shift(level)) & (self.entries(level) - 1);
        table.wrapping_add(index * u64::from(self.entry_size()))
    }

    /// The SDM's name for the table at `level`.
    pub fn table_name(&self, level: u8) -> &'static str {
        match (self.mode, level) {
            (PagingMode::Legacy32, 2) => "PD",
            (PagingMode::Legacy32, _) => "PT",
            (_, 4) => "PML4",
            (_, 3) => "PDPT",
            (_, 2) => "PD",
            _ => "PT",
        }
    }

    /// Whether entries at `level` carry R/W, U/S, XD and A. PAE PDPTEs do
    /// not: they are loaded into the PDPTE registers and only P, PWT, PCD
    /// and the address are defined (SDM table 4-8); bits 1-2 and 5-8 are
    /// reserved, so the walker must not set A in them.
    pub fn has_rights(&self, level: u8) -> bool {
        !(self.mode == PagingMode::Pae && level == 3)
    }

    /// Decode `entry` found at `level`.
    pub fn decode(&self, level: u8, entry: u64) -> Decoded {
        if entry & P == 0 {
            return Decoded::NotPresent;
        }
        let xd_rsvd = if self.nxe { 0 } else { XD };
        match self.mode {
            PagingMode::Legacy32 => {
                if level == 2 && self.pse && entry & PS != 0 {
                    // 4 MiB page with PSE-36: bits 20:13 are PA[39:32] (with
                    // M = 40), bits 21:(M-19) are reserved.
                    let rsvd = bits(PSE36_M - 19, 21);
                    if entry & rsvd != 0 {
                        return Decoded::Reserved;
                    }
                    let high = (entry >> 13) & bits(0, PSE36_M - 33);
                    let base = (entry & 0xffc0_0000) | (high << 32);
                    Decoded::Leaf { base, shift: 22 }
                } else if level == 2 {
                    // PS is ignored without CR4.PSE; a PDE referencing a page
                    // table has no reserved bits in 32-bit paging.
                    Decoded::Next(entry & 0xffff_f000)
                } else {
                    Decoded::Leaf {
                        base: entry & 0xffff_f000,
                        shift: 12,
                    }
                }
            }
            PagingMode::Pae => {
                // Unlike 4-level paging, bits 62:M are reserved, not ignored.
                let common = bits(MAXPHYADDR, 62) | xd_rsvd;
                match level {
                    3 => {
                        if entry & (bits(1, 2) | bits(5, 8) | bits(MAXPHYADDR, 63)) != 0 {
                            return Decoded::Reserved;
                        }
                        Decoded::Next(entry & ADDR_MASK)
                    }
                    2 if entry & PS != 0 => large_leaf(entry, common, 21),
                    2 => non_leaf(entry, common),
                    _ => leaf_4k(entry, common),
                }
            }
            _ => {
                let common = bits(MAXPHYADDR, 51) | xd_rsvd;
                match level {
                    // PS is reserved in a PML4E.
                    4 => non_leaf(entry, common | PS),
                    3 if entry & PS != 0 => large_leaf(entry, common, 30),
                    2 if entry & PS != 0 => large_leaf(entry, common, 21),
                    3 | 2 => non_leaf(entry, common),
                    _ => leaf_4k(entry, common),
                }
            }
        }
    }

    /// Whether the XD flag exists (PAE or 4-level paging with EFER.NXE).
    pub fn nx_active(&self) -> bool {
        self.nxe && self.mode != PagingMode::Legacy32
    }
}

fn non_leaf(entry: u64, rsvd: u64) -> Decoded {
    if entry & rsvd != 0 {
        Decoded::Reserved
    } else {
        Decoded::Next(entry & ADDR_MASK)
    }
}

fn leaf_4k(entry: u64, rsvd: u64) -> Decoded {
    if entry & rsvd != 0 {
        Decoded::Reserved
    } else {
        Decoded::Leaf {
            base: entry & ADDR_MASK,
            shift: 12,
        }
    }
}

/// A 2 MiB or 1 GiB leaf: bit 12 is PAT, bits 13..shift-1 are reserved.
fn large_leaf(entry: u64, rsvd: u64, shift: u32) -> Decoded {
    if entry & (rsvd | bits(13, shift - 1)) != 0 {
        Decoded::Reserved
    } else {
        Decoded::Leaf {
            base: entry & bits(shift, MAXPHYADDR - 1),
            shift,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paging::cr0;

    fn fmt(mode: PagingMode, nxe: bool, pse: bool) -> Format {
        Format { mode, nxe, pse }
    }

    #[test]
    fn bit_ranges() {
        assert_eq!(bits(0, 0), 1);
        assert_eq!(bits(13, 20), 0x1f_e000);
        assert_eq!(bits(40, 51), 0x000f_ff00_0000_0000);
        assert_eq!(bits(0, 63), u64::MAX);
        assert_eq!(ADDR_MASK, 0x0000_00ff_ffff_f000);
    }

    #[test]
    fn mode_selection_and_geometry() {
        let regs = PagingRegs {
            cr0: cr0::PG | cr0::PE,
            cr4: cr4::PAE,
            efer: efer::LMA | efer::NXE,
            cr3: 0x1234_5fff,
        };
        let f = Format::for_regs(&regs).unwrap();
        assert_eq!(f.mode, PagingMode::Level4);
        assert_eq!(f.root(regs.cr3), 0x1234_5000);
        assert_eq!(f.index_shift(4), 39);
        assert_eq!(f.entry_pa(0x1000, 4, 1 << 39), 0x1008);
        let p = fmt(PagingMode::Pae, false, false);
        assert_eq!(p.root(0x1234_5fe0), 0x1234_5fe0);
        assert_eq!(p.entry_pa(0x20, 3, 0xc000_0000), 0x38);
        let l = fmt(PagingMode::Legacy32, false, true);
        assert_eq!(l.entry_pa(0x1000, 2, 0xffc0_0000), 0x1ffc);
        assert_eq!(l.entry_pa(0x1000, 1, 0x003f_f000), 0x1ffc);
        assert!(Format::for_regs(&PagingRegs::default()).is_none());
    }

    #[test]
    fn reserved_bits_by_mode() {
        let l4 = fmt(PagingMode::Level4, false, false);
        assert_eq!(l4.decode(1, P | (1 << 40)), Decoded::Reserved);
        assert_eq!(
            l4.decode(1, P | (1 << 52)),
            Decoded::Leaf { base: 0, shift: 12 }
        );
        assert_eq!(l4.decode(1, P | XD), Decoded::Reserved);
        let l4nx = fmt(PagingMode::Level4, true, false);
        assert_eq!(l4nx.decode(1, P | XD), Decoded::Leaf { base: 0, shift: 12 });
        assert_eq!(l4.decode(4, P | PS), Decoded::Reserved);
        assert_eq!(l4.decode(2, P | PS | (1 << 13)), Decoded::Reserved);
        assert_eq!(
            l4.decode(2, P | PS | (1 << 12)),
            Decoded::Leaf { base: 0, shift: 21 }
        );
        assert_eq!(l4.decode(3, P | PS | (1 << 29)), Decoded::Reserved);
        assert_eq!(
            l4.decode(3, P | PS | (1 << 30)),
            Decoded::Leaf {
                base: 1 << 30,
                shift: 30
            }
        );
        let pae = fmt(PagingMode::Pae, true, false);
        assert_eq!(pae.decode(1, P | (1 << 52)), Decoded::Reserved);
        assert_eq!(pae.decode(3, P | RW), Decoded::Reserved);
        assert_eq!(pae.decode(3, P | A), Decoded::Reserved);
        assert_eq!(pae.decode(3, P | XD), Decoded::Reserved);
        assert_eq!(pae.decode(3, P | PWT | PCD | 0x5000), Decoded::Next(0x5000));
        let l32 = fmt(PagingMode::Legacy32, false, true);
        assert_eq!(l32.decode(2, P | PS | (1 << 21)), Decoded::Reserved);
        assert_eq!(
            l32.decode(2, P | PS | 0xffc0_0000 | (0xab << 13)),
            Decoded::Leaf {
                base: 0xab_ffc0_0000,
                shift: 22
            }
        );
        // Without CR4.PSE the PS bit is ignored and nothing is reserved.
        let l32n = fmt(PagingMode::Legacy32, false, false);
        assert_eq!(l32n.decode(2, 0xffff_ffff), Decoded::Next(0xffff_f000));
        assert_eq!(l32n.decode(2, 0xffff_fffe), Decoded::NotPresent);
    }
}
