//! Nested paging (modelled on Intel EPT): guest-physical → machine through
//! a 4-level table that lives in machine memory and is walked by the
//! (modelled) hardware on *every* guest-physical reference — including
//! each reference the guest's own page walk makes. That is the 2-D walk:
//! with 4-level guest tables over 4-level nested tables a TLB miss costs up
//! to 4 × (4 + 1) + 4 = 24 memory references.
//!
//! Entry format (SDM Vol. 3C, 29.3.2, simplified): bit 0 read, bit 1
//! write, bit 2 execute, bits 12-51 the next table or the frame. Only
//! 4 KiB leaves are built, so every walk has four levels.

use crate::addr::{GuestPhysAddr, MachineAddr};
use crate::frames::FramePool;
use crate::p2m::P2m;
use crate::ram::GuestRam;
use crate::stage2::GuestPhysMap;

/// EPT read permission.
pub const EPT_R: u64 = 1 << 0;
/// EPT write permission.
pub const EPT_W: u64 = 1 << 1;
/// EPT execute permission.
pub const EPT_X: u64 = 1 << 2;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PAGE: u64 = 4096;

/// Why the nested tables could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfFrames;

/// One level of a nested walk, for traces (the TUI's 2-D walk view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NestedStep {
    /// 4 = the root table … 1 = the leaf table.
    pub level: u8,
    /// Machine address of the entry read.
    pub entry_ma: MachineAddr,
    /// Its value.
    pub entry: u64,
}

/// A nested page table rooted at `root` (the modelled EPTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NestedTables {
    pub root: MachineAddr,
}

impl NestedTables {
    /// Build tables mapping every guest frame of `p2m` (RWX), with table
    /// frames taken from `pool`.
    pub fn build(ram: &GuestRam, p2m: &P2m, pool: &mut FramePool) -> Result<Self, OutOfFrames> {
        let root = pool.alloc(ram).ok_or(OutOfFrames)?;
        let t = NestedTables { root };
        for r in p2m.regions() {
            let mut off = 0;
            while off < r.len {
                t.map(
                    ram,
                    pool,
                    GuestPhysAddr(r.start.0 + off),
                    MachineAddr(r.machine.0 + off),
                    EPT_R | EPT_W | EPT_X,
                )?;
                off += PAGE;
            }
        }
        Ok(t)
    }

    /// Map one 4 KiB guest frame.
    pub fn map(
        &self,
        ram: &GuestRam,
        pool: &mut FramePool,
        gpa: GuestPhysAddr,
        ma: MachineAddr,
        perms: u64,
    ) -> Result<(), OutOfFrames> {
        let mut table = self.root;
        for level in (2..=4u8).rev() {
            let e_ma = entry_addr(table, gpa, level);
            let e = ram.read_le(e_ma, 8).map_err(|_| OutOfFrames)?;
            table = if e & (EPT_R | EPT_W | EPT_X) != 0 {
                MachineAddr(e & ADDR_MASK)
            } else {
                let t = pool.alloc(ram).ok_or(OutOfFrames)?;
                ram.write_le(e_ma, 8, t.0 | EPT_R | EPT_W | EPT_X)
                    .map_err(|_| OutOfFrames)?;
                t
            };
        }
        let leaf = entry_addr(table, gpa, 1);
        ram.write_le(leaf, 8, (ma.0 & ADDR_MASK) | perms)
            .map_err(|_| OutOfFrames)
    }

    /// Walk for `gpa`, recording each level. `None` if not mapped.
    pub fn walk(
        &self,
        ram: &GuestRam,
        gpa: GuestPhysAddr,
        mut trace: Option<&mut Vec<NestedStep>>,
        refs: &mut u64,
    ) -> Option<MachineAddr> {
        if gpa.0 > ADDR_MASK | (PAGE - 1) {
            return None;
        }
        let mut table = self.root;
        for level in (1..=4u8).rev() {
            let e_ma = entry_addr(table, gpa, level);
            let e = ram.read_le(e_ma, 8).ok()?;
            *refs += 1;
            if let Some(t) = trace.as_deref_mut() {
                t.push(NestedStep {
                    level,
                    entry_ma: e_ma,
                    entry: e,
                });
            }
            if e & (EPT_R | EPT_W | EPT_X) == 0 {
                return None;
            }
            table = MachineAddr(e & ADDR_MASK);
        }
        Some(MachineAddr(table.0 | (gpa.0 & (PAGE - 1))))
    }
}

fn entry_addr(table: MachineAddr, gpa: GuestPhysAddr, level: u8) -> MachineAddr {
    let shift = 12 + 9 * (u32::from(level) - 1);
    MachineAddr(table.0 + ((gpa.0 >> shift) & 0x1ff) * 8)
}

impl GuestPhysMap for NestedTables {
    fn translate(&self, ram: &GuestRam, pa: GuestPhysAddr, refs: &mut u64) -> Option<MachineAddr> {
        self.walk(ram, pa, None, refs)
    }
    fn miss_exits(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "nested"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::PhysLayout;

    #[test]
    fn nested_matches_p2m_with_four_refs() {
        let g = PhysLayout::new(4 << 20);
        let p2m = P2m::scattered(g, MachineAddr(4 << 20));
        let ram = GuestRam::new(8 << 20).unwrap();
        let mut pool = FramePool::new(MachineAddr(0x10000), MachineAddr(4 << 20));
        let n = NestedTables::build(&ram, &p2m, &mut pool).unwrap();
        for pa in [0u64, 0x1234, 0x20_0000, (4 << 20) - 1] {
            let mut refs = 0;
            let mut tr = Vec::new();
            let ma = n.walk(&ram, GuestPhysAddr(pa), Some(&mut tr), &mut refs);
            assert_eq!(ma, p2m.lookup(GuestPhysAddr(pa)));
            assert_eq!(refs, 4);
            assert_eq!(tr.len(), 4);
        }
        let mut refs = 0;
        assert_eq!(n.walk(&ram, GuestPhysAddr(4 << 20), None, &mut refs), None);
        assert_eq!(
            n.walk(&ram, GuestPhysAddr(0xfee0_0000), None, &mut refs),
            None
        );
    }
}
