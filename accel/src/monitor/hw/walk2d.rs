//! The 2-D page walk, traced: how one guest-virtual address becomes a
//! machine address under nested paging, with every memory reference.
//!
//! The guest's own walk (CR3 → PML4 → PDPT → PD → PT) names each table
//! by a *guest-physical* address, so before each guest entry can be read
//! the nested table must translate that GPA (4 references for a 4-level
//! EPT), then the entry itself is read (1 reference). After the guest's
//! leaf, the final GPA needs one more nested walk. With 4-level tables on
//! both sides: 4 × (4 + 1) + 4 = 24 references for one TLB miss, against
//! 4 without a second stage. This module records that walk for displays
//! (the TUI's page-walk pane) without side effects: no Accessed/Dirty
//! bits are set, and the guest does not notice.

use cpu::CpuState;
use mmu::nested::NestedStep;
use mmu::{
    walk_debug, GuestPhysAddr, GuestRam, GuestVirtAddr, MachineAddr, NestedTables, PageFault,
    PagingRegs, PteMemory, StepDecision, Translation, WalkTrace,
};

/// One level of the guest's walk, with the nested walk that located its
/// entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk2dLevel {
    /// 4 = PML4 … 1 = PT (4-level); 3..1 for PAE; 2..1 for 32-bit.
    pub level: u8,
    /// The SDM's name for the structure ("PML4", "PDPT", "PD", "PT").
    pub table: &'static str,
    /// Guest-physical address of the guest's entry.
    pub entry_gpa: u64,
    /// The nested walk translating `entry_gpa` (up to 4 steps).
    pub nested: Vec<NestedStep>,
    /// Where the entry really is; `None` if the nested walk missed (the
    /// walker then sees all-ones, as an unclaimed bus read).
    pub entry_ma: Option<u64>,
    /// The guest entry's value.
    pub entry: u64,
    /// What the walker made of it.
    pub decision: StepDecision,
}

/// A whole 2-D walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk2d {
    pub va: u64,
    /// The guest levels, root first.
    pub levels: Vec<Walk2dLevel>,
    /// The guest's translation (`Err`: the guest would take this #PF).
    pub result: Option<Result<Translation, PageFault>>,
    /// The final nested walk of the translated GPA.
    pub final_nested: Vec<NestedStep>,
    /// The machine address the VA reaches (`None`: #PF, or the GPA is not
    /// RAM — a device access, an EPT violation at run time).
    pub ma: Option<u64>,
    /// Memory references made: guest entries + nested entries.
    pub refs: u64,
}

impl Walk2d {
    /// The walk as text lines, one per guest level and one for the final
    /// access, each with its nested steps (for panes and traces):
    ///
    /// ```text
    /// VA 0x4123: 24 memory references (4 guest entries + 20 nested)
    /// PML4 entry gPA 0x10000 -> EPT L4 L3 L2 L1 -> MA 0x17c10000 = 0x11003
    /// …
    /// data gPA 0x4123 -> EPT L4 L3 L2 L1 -> MA 0x17c04123
    /// ```
    pub fn lines(&self) -> Vec<String> {
        let guest = self.refs - self.nested_refs();
        let mut out = vec![format!(
            "VA {:#x}: {} memory references ({} guest entries + {} nested)",
            self.va,
            self.refs,
            guest,
            self.nested_refs()
        )];
        let ept = |steps: &[NestedStep]| {
            steps
                .iter()
                .map(|s| format!("L{}", s.level))
                .collect::<Vec<_>>()
                .join(" ")
        };
        for l in &self.levels {
            let ma = l
                .entry_ma
                .map_or("none (reads all-ones)".to_string(), |m| format!("{m:#x}"));
            out.push(format!(
                "{} entry gPA {:#x} -> EPT {} -> MA {} = {:#x}",
                l.table,
                l.entry_gpa,
                ept(&l.nested),
                ma,
                l.entry
            ));
        }
        match &self.result {
            Some(Ok(t)) => out.push(format!(
                "data gPA {:#x} -> EPT {} -> MA {}",
                t.pa.0,
                ept(&self.final_nested),
                self.ma.map_or(
                    "none (EPT violation: device or nothing)".into(),
                    |m| format!("{m:#x}")
                )
            )),
            Some(Err(pf)) => out.push(format!("guest #PF, error code {:#x}", pf.error_code)),
            None => {}
        }
        out
    }

    /// References by the nested walks alone.
    pub fn nested_refs(&self) -> u64 {
        self.levels
            .iter()
            .map(|l| l.nested.len() as u64)
            .sum::<u64>()
            + self.final_nested.len() as u64
    }
}

/// One guest-entry read the walker made, as recorded.
struct Read {
    gpa: u64,
    nested: Vec<NestedStep>,
    ma: Option<u64>,
}

/// Guest page-table reads through the nested table, recorded.
struct Recorder<'a> {
    ram: &'a GuestRam,
    nested: &'a NestedTables,
    reads: Vec<Read>,
    refs: u64,
}

impl PteMemory for Recorder<'_> {
    fn read_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64> {
        let mut steps = Vec::with_capacity(4);
        let ma = self
            .nested
            .walk(self.ram, pa, Some(&mut steps), &mut self.refs);
        self.reads.push(Read {
            gpa: pa.0,
            nested: steps,
            ma: ma.map(|m| m.0),
        });
        let ma = ma?;
        self.refs += 1;
        self.ram.read_le(ma, usize::from(size)).ok()
    }
    fn write_pte(&mut self, _pa: GuestPhysAddr, _size: u8, _val: u64) -> bool {
        // walk_debug never writes; a display must not change the guest.
        false
    }
}

/// Trace the 2-D walk of `va` under the guest paging registers `regs`
/// and the nested table `nested`, over machine memory `ram`.
pub fn walk_2d(ram: &GuestRam, nested: &NestedTables, regs: &PagingRegs, va: u64) -> Walk2d {
    let mut rec = Recorder {
        ram,
        nested,
        reads: Vec::new(),
        refs: 0,
    };
    let mut trace = WalkTrace::default();
    let r = walk_debug(regs, &mut rec, GuestVirtAddr(va), Some(&mut trace));
    let mut reads = rec.reads.into_iter();
    let mut levels = Vec::with_capacity(trace.steps.len());
    for s in &trace.steps {
        // Each traced step is one entry read, in order.
        let rd = reads.find(|rd| rd.gpa == s.entry_pa.0);
        let (nested_steps, entry_ma) = match rd {
            Some(rd) => (rd.nested, rd.ma),
            None => (Vec::new(), None),
        };
        levels.push(Walk2dLevel {
            level: s.level,
            table: s.table,
            entry_gpa: s.entry_pa.0,
            nested: nested_steps,
            entry_ma,
            entry: s.entry,
            decision: s.decision,
        });
    }
    let mut refs = rec.refs;
    let mut final_nested = Vec::new();
    let ma = match &r {
        Ok(t) => nested
            .walk(ram, t.pa, Some(&mut final_nested), &mut refs)
            .map(|m| m.0),
        Err(_) => None,
    };
    Walk2d {
        va,
        levels,
        result: Some(r),
        final_nested,
        ma,
        refs,
    }
}

/// The paging registers of a guest state.
pub fn paging_regs(s: &CpuState) -> PagingRegs {
    PagingRegs {
        cr0: s.cr0,
        cr3: s.cr3,
        cr4: s.cr4,
        efer: s.efer,
    }
}

/// Read guest-virtual memory the way the monitor inspects the guest: the
/// guest's tables and the nested table, no side effects. Returns how
/// many bytes were read (stops at the first unmapped or non-RAM page).
pub fn read_guest_virt(
    ram: &GuestRam,
    nested: &NestedTables,
    regs: &PagingRegs,
    lin: u64,
    buf: &mut [u8],
) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let addr = lin.wrapping_add(done as u64);
        let mut ptes = mmu::MappedPtes::new(ram, nested);
        let Ok(t) = walk_debug(regs, &mut ptes, GuestVirtAddr(addr), None) else {
            break;
        };
        let mut refs = 0;
        let Some(ma) = nested.walk(ram, t.pa, None, &mut refs) else {
            break;
        };
        let in_page = (4096 - (ma.0 & 0xfff)) as usize;
        let n = in_page.min(buf.len() - done);
        let Some(dst) = buf.get_mut(done..done + n) else {
            break;
        };
        if ram.read(MachineAddr(ma.0), dst).is_err() {
            break;
        }
        done += n;
    }
    done
}
