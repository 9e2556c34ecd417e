//! x86 paging: 32-bit, PAE and 4-level walks, with permission checks,
//! Accessed/Dirty updates and a step-by-step trace.
//!
//! The walker is generic over [`PteMemory`], the thing that reads and writes
//! page-table entries by guest-physical address. With no monitor that is
//! guest RAM through [`crate::PhysLayout`]; a monitor (shadow paging) or a
//! nested walk (the 2-D walk of hardware assist) supplies its own, which is
//! how the same walker serves every virtualization mode.
//!
//! What the walker does, in SDM order (Vol. 3A, 4.3–4.8):
//!
//! 1. Read the entry at each level, from the root named by CR3 down to the
//!    leaf. An entry with P = 0 ends the walk with a not-present #PF; one
//!    with a reserved bit set ends it with a RSVD #PF ([`crate::pte`] knows
//!    the formats).
//! 2. Combine the rights of every entry used (R/W and U/S are ANDed, XD is
//!    ORed) and check the access against them (4.6).
//! 3. Only if the access is allowed, set Accessed in every entry used and
//!    Dirty in the leaf for a write (4.8).
//!
//! Step 3 happens only on success, as in KVM's software walker
//! (`paging_tmpl.h`). Real processors may set A in the upper-level entries
//! of a walk that then faults lower down (so under `--accel kvm` with EPT,
//! where the hardware walks, they can). A guest only sees the difference by
//! inspecting upper-level A flags after a fault; OSes use A for page aging
//! of mappings that worked, so we keep the walker free of side effects on
//! faults. A/D updates re-read each entry and OR the flags in, so
//! self-referencing tables (one entry used at several levels) keep both.
//!
//! Not modelled: 5-level paging (LA57), protection keys, SMAP, PCIDs. The
//! PAE PDPTEs are read from memory on every walk; real CPUs load them into
//! the PDPTE registers at MOV CR3 and use those until the next load (see
//! [`load_pdptes`] for the check that goes with the load).

use crate::addr::{GuestPhysAddr, GuestVirtAddr};
use crate::pte::{self, Decoded, Format};

/// The modelled physical-address width (`CPUID.80000008H:EAX[7:0]`). Entry
/// bits MAXPHYADDR..51 are reserved; the CPUID leaf must report the same.
pub const MAXPHYADDR: u32 = 40;

pub use crate::regs::{cr0, cr4, efer};

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

/// What the access does with the bytes. The discriminants are fixed: the
/// TLB uses them as bit positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AccessKind {
    Read = 0,
    Write = 1,
    Execute = 2,
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
    /// Re-read an entry the walk already read, to set its Accessed/Dirty
    /// bits (hardware does this as one locked update of the same entry).
    /// Counting implementations don't count it as a new walk reference.
    fn reread_pte(&mut self, pa: GuestPhysAddr, size: u8) -> Option<u64> {
        self.read_pte(pa, size)
    }
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

impl WalkTrace {
    fn begin(&mut self, va: GuestVirtAddr) {
        self.va = va;
        self.steps.clear();
        self.result = None;
    }
}

/// Translate `va` for `access`, as the processor does: check rights, set
/// Accessed/Dirty on success, and return the #PF the CPU would raise
/// otherwise.
///
/// Canonicality (4-level) and segmentation are the caller's business: `va`
/// is a linear address that already passed them. With paging disabled the
/// result is the identity map with every right.
///
/// Entries that `mem` cannot read (not RAM) are taken as all-ones, which is
/// what an unclaimed bus read returns. In PAE and 4-level paging that sets
/// reserved address bits, so the walk ends in a RSVD #PF instead of
/// following a pointer into nowhere; 32-bit paging without PSE has no
/// reserved bits, so there (as on hardware) all-ones is a present entry.
pub fn walk<M: PteMemory + ?Sized>(
    regs: &PagingRegs,
    mem: &mut M,
    va: GuestVirtAddr,
    access: Access,
    trace: Option<&mut WalkTrace>,
) -> Result<Translation, PageFault> {
    walk_traced(regs, mem, va, Some(access), trace)
}

/// A debugger's walk (TUI, monitor, `info tlb`): no Accessed/Dirty updates
/// and no rights check, so it can be run at any time without the guest
/// noticing. Not-present and reserved-bit entries still fail, with the error
/// code a supervisor read would get. The rights are reported in the
/// [`Translation`]; `dirty` is the leaf's D flag as found.
pub fn walk_debug<M: PteMemory + ?Sized>(
    regs: &PagingRegs,
    mem: &mut M,
    va: GuestVirtAddr,
    trace: Option<&mut WalkTrace>,
) -> Result<Translation, PageFault> {
    walk_traced(regs, mem, va, None, trace)
}

/// The PAE PDPTE load done by MOV to CR3 (and by MOV to CR0/CR4 entering
/// PAE paging): the four PDPTEs at `CR3[31:5]`, or `None` if a present one has
/// a reserved bit set, in which case the MOV must raise #GP(0) (SDM 4.4.1).
pub fn load_pdptes<M: PteMemory + ?Sized>(regs: &PagingRegs, mem: &mut M) -> Option<[u64; 4]> {
    let fmt = Format {
        mode: PagingMode::Pae,
        nxe: regs.efer & efer::NXE != 0,
        pse: false,
    };
    let root = fmt.root(regs.cr3);
    let mut out = [0u64; 4];
    for (i, slot) in (0u64..).zip(out.iter_mut()) {
        let e = mem
            .read_pte(GuestPhysAddr(root + i * 8), 8)
            .unwrap_or(u64::MAX);
        if fmt.decode(3, e) == Decoded::Reserved {
            return None;
        }
        *slot = e;
    }
    Some(out)
}

fn walk_traced<M: PteMemory + ?Sized>(
    regs: &PagingRegs,
    mem: &mut M,
    va: GuestVirtAddr,
    access: Option<Access>,
    mut trace: Option<&mut WalkTrace>,
) -> Result<Translation, PageFault> {
    if let Some(t) = trace.as_deref_mut() {
        t.begin(va);
    }
    let result = walk_inner(regs, mem, va, access, &mut trace);
    if let Some(t) = trace {
        t.result = Some(result);
    }
    result
}

/// The most levels any mode has.
const MAX_LEVELS: usize = 4;

fn walk_inner<M: PteMemory + ?Sized>(
    regs: &PagingRegs,
    mem: &mut M,
    va: GuestVirtAddr,
    access: Option<Access>,
    trace: &mut Option<&mut WalkTrace>,
) -> Result<Translation, PageFault> {
    let Some(fmt) = Format::for_regs(regs) else {
        return Ok(Translation {
            pa: GuestPhysAddr(va.0),
            page_size: 4096,
            writable: true,
            user: true,
            executable: true,
            global: false,
            dirty: true,
        });
    };
    let fault_access = access.unwrap_or(Access::new(AccessKind::Read, false));
    let size = fmt.entry_size();
    let ones = if size == 4 { 0xffff_ffff } else { u64::MAX };
    let nx = fmt.nx_active();

    // Entries used, for the A/D pass: (entry PA, whether it has an A bit).
    let mut used = [(0u64, false); MAX_LEVELS];
    let mut n_used = 0usize;
    let (mut writable, mut user, mut xd) = (true, true, false);
    let mut table = fmt.root(regs.cr3);
    let mut level = fmt.top_level();
    let (leaf, base, shift) = loop {
        let entry_pa = fmt.entry_pa(table, level, va.0);
        let entry = mem
            .read_pte(GuestPhysAddr(entry_pa), size)
            .map_or(ones, |v| v & ones);
        let decoded = fmt.decode(level, entry);
        if let Some(t) = trace.as_deref_mut() {
            t.steps.push(WalkStep {
                level,
                table: fmt.table_name(level),
                entry_pa: GuestPhysAddr(entry_pa),
                entry,
                decision: match decoded {
                    Decoded::NotPresent => StepDecision::NotPresent,
                    Decoded::Reserved => StepDecision::Reserved,
                    Decoded::Next(pa) => StepDecision::Next(GuestPhysAddr(pa)),
                    Decoded::Leaf { shift, .. } => StepDecision::Leaf {
                        page_size: 1 << shift,
                    },
                },
            });
        }
        let has_rights = fmt.has_rights(level);
        if has_rights {
            writable &= entry & pte::RW != 0;
            user &= entry & pte::US != 0;
            xd |= nx && entry & pte::XD != 0;
        }
        if let Some(slot) = used.get_mut(n_used) {
            *slot = (entry_pa, has_rights);
            n_used += 1;
        }
        match decoded {
            Decoded::NotPresent => {
                return Err(page_fault(regs, va, fault_access, FaultCause::NotPresent))
            }
            Decoded::Reserved => {
                return Err(page_fault(regs, va, fault_access, FaultCause::Reserved))
            }
            Decoded::Next(next) => {
                table = next;
                // Level 1 always decodes to a leaf, so this never reaches 0.
                level = level.saturating_sub(1);
            }
            Decoded::Leaf { base, shift } => break (entry, base, shift),
        }
    };

    let page_size = 1u64 << shift;
    let mut t = Translation {
        pa: GuestPhysAddr(base | (va.0 & (page_size - 1))),
        page_size,
        writable,
        user,
        executable: !xd,
        global: leaf & pte::G != 0 && regs.cr4 & cr4::PGE != 0,
        dirty: leaf & pte::D != 0,
    };
    let Some(access) = access else {
        return Ok(t);
    };
    if let Some(reason) = denial(regs, access, &t) {
        if let Some(step) = trace.as_deref_mut().and_then(|t| t.steps.last_mut()) {
            step.decision = StepDecision::Denied(reason);
        }
        return Err(page_fault(regs, va, access, FaultCause::Protection));
    }

    // The access is allowed: set A in every entry used, D in the leaf.
    let write = access.kind == AccessKind::Write;
    let last = n_used.saturating_sub(1);
    for (i, &(entry_pa, has_a)) in used.iter().enumerate().take(n_used) {
        if !has_a {
            continue;
        }
        let set = if i == last && write {
            pte::A | pte::D
        } else {
            pte::A
        };
        // Re-read rather than reuse the walked value: with self-referencing
        // tables two levels can share one entry, and an earlier update must
        // not be undone by a stale copy.
        let pa = GuestPhysAddr(entry_pa);
        if let Some(cur) = mem.reread_pte(pa, size) {
            let cur = cur & ones;
            if cur & set != set {
                mem.write_pte(pa, size, cur | set);
            }
        }
    }
    t.dirty |= write;
    Ok(t)
}

/// The access-rights check of SDM 4.6, on the combined rights of the walk.
/// Returns why the access is denied, if it is.
fn denial(regs: &PagingRegs, access: Access, t: &Translation) -> Option<&'static str> {
    if access.user && !t.user {
        return Some("user-mode access to a supervisor-mode page (U/S=0)");
    }
    match access.kind {
        AccessKind::Read => None,
        AccessKind::Write if access.user && !t.writable => {
            Some("user-mode write to a read-only page (R/W=0)")
        }
        AccessKind::Write if !t.writable && regs.cr0 & cr0::WP != 0 => {
            Some("supervisor-mode write to a read-only page with CR0.WP=1")
        }
        AccessKind::Write => None,
        AccessKind::Execute if !t.executable => {
            Some("instruction fetch from an execute-disable page (XD=1)")
        }
        AccessKind::Execute if !access.user && t.user && regs.cr4 & cr4::SMEP != 0 => {
            Some("supervisor-mode fetch from a user-mode page with CR4.SMEP=1")
        }
        AccessKind::Execute => None,
    }
}

/// Why a walk faulted; selects the P and RSVD bits of the error code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FaultCause {
    NotPresent,
    Reserved,
    Protection,
}

/// The #PF for `access` at `va` (SDM 4.7, "Page-Fault Exceptions").
fn page_fault(
    regs: &PagingRegs,
    va: GuestVirtAddr,
    access: Access,
    cause: FaultCause,
) -> PageFault {
    let mut ec = match cause {
        FaultCause::NotPresent => 0,
        FaultCause::Reserved => pf_ec::P | pf_ec::RSVD,
        FaultCause::Protection => pf_ec::P,
    };
    if access.kind == AccessKind::Write {
        ec |= pf_ec::W;
    }
    if access.user {
        ec |= pf_ec::U;
    }
    // I/D is reported only when fetches can fault for their own sake: XD
    // exists (CR4.PAE with EFER.NXE) or SMEP is on.
    let nx = regs.cr4 & cr4::PAE != 0 && regs.efer & efer::NXE != 0;
    if access.kind == AccessKind::Execute && (nx || regs.cr4 & cr4::SMEP != 0) {
        ec |= pf_ec::ID;
    }
    PageFault { va, error_code: ec }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::MachineAddr;
    use crate::layout::PhysLayout;
    use crate::pte::{A, D, G, P, PS, RW, US, XD};
    use crate::ptemem::RamPtes;
    use crate::ram::GuestRam;
    use AccessKind::{Execute, Read, Write};

    const PRESENT_RWU: u64 = P | RW | US;

    /// A small machine to build page tables in.
    struct Env {
        ram: GuestRam,
        layout: PhysLayout,
    }

    impl Env {
        fn new() -> Env {
            Env {
                ram: GuestRam::new(8 << 20).unwrap(),
                layout: PhysLayout::new(8 << 20),
            }
        }
        fn mem(&self) -> RamPtes<'_> {
            RamPtes::new(&self.ram, &self.layout)
        }
        fn set(&self, pa: u64, v: u64) {
            self.ram.write_le(MachineAddr(pa), 8, v).unwrap();
        }
        fn get(&self, pa: u64) -> u64 {
            self.ram.read_le(MachineAddr(pa), 8).unwrap()
        }
        fn set32(&self, pa: u64, v: u64) {
            self.ram.write_le(MachineAddr(pa), 4, v).unwrap();
        }
        fn get32(&self, pa: u64) -> u64 {
            self.ram.read_le(MachineAddr(pa), 4).unwrap()
        }
        fn walk(
            &self,
            regs: &PagingRegs,
            va: u64,
            kind: AccessKind,
            user: bool,
        ) -> Result<Translation, PageFault> {
            walk(
                regs,
                &mut self.mem(),
                GuestVirtAddr(va),
                Access::new(kind, user),
                None,
            )
        }
        /// Walk expecting a fault; return its error code.
        fn ec(&self, regs: &PagingRegs, va: u64, kind: AccessKind, user: bool) -> u32 {
            let f = self.walk(regs, va, kind, user).expect_err("expected #PF");
            assert_eq!(f.va, GuestVirtAddr(va));
            f.error_code
        }
    }

    // ---- 4-level fixture: PML4 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000.
    const L4_VA: u64 = (1 << 39) | (2 << 30) | (3 << 21) | (4 << 12) | 0x123;
    /// Entry addresses, PML4E first.
    const L4_ENTRIES: [u64; 4] = [0x1008, 0x2010, 0x3018, 0x4020];
    const L4_FRAME: u64 = 0x12_3000;

    fn regs_l4() -> PagingRegs {
        PagingRegs {
            cr0: cr0::PE | cr0::PG | cr0::WP,
            cr3: 0x1000,
            cr4: cr4::PAE,
            efer: efer::LME | efer::LMA | efer::NXE,
        }
    }

    /// Build the 4-level chain for `L4_VA` with these flags per level.
    fn l4(env: &Env, flags: [u64; 4]) -> PagingRegs {
        let targets = [0x2000, 0x3000, 0x4000, L4_FRAME];
        for i in 0..4 {
            env.set(L4_ENTRIES[i], targets[i] | flags[i]);
        }
        regs_l4()
    }

    fn l4_entries(env: &Env) -> [u64; 4] {
        L4_ENTRIES.map(|pa| env.get(pa))
    }

    #[test]
    fn l4_4k_translation_and_accessed_dirty() {
        let env = Env::new();
        let regs = l4(&env, [PRESENT_RWU; 4]);
        let t = env.walk(&regs, L4_VA, Read, true).unwrap();
        assert_eq!(
            t,
            Translation {
                pa: GuestPhysAddr(L4_FRAME | 0x123),
                page_size: 4096,
                writable: true,
                user: true,
                executable: true,
                global: false,
                dirty: false,
            }
        );
        // A read sets A everywhere and D nowhere.
        for e in l4_entries(&env) {
            assert_eq!(e & (A | D), A, "{e:#x}");
        }
        let t = env.walk(&regs, L4_VA, Write, true).unwrap();
        assert!(t.dirty);
        let e = l4_entries(&env);
        assert_eq!(e[3] & (A | D), A | D);
        for upper in &e[..3] {
            assert_eq!(upper & (A | D), A, "D only in the leaf");
        }
        // The rest of the entry is untouched.
        assert_eq!(e[3], L4_FRAME | PRESENT_RWU | A | D);
    }

    #[test]
    fn l4_not_present_at_each_level() {
        for level in 0..4 {
            let env = Env::new();
            let mut flags = [PRESENT_RWU; 4];
            flags[level] = RW | US;
            let regs = l4(&env, flags);
            let before = l4_entries(&env);
            assert_eq!(env.ec(&regs, L4_VA, Read, false), 0, "level {level}");
            assert_eq!(env.ec(&regs, L4_VA, Write, true), pf_ec::W | pf_ec::U);
            assert_eq!(env.ec(&regs, L4_VA, Execute, false), pf_ec::ID);
            assert_eq!(l4_entries(&env), before, "no A/D on a faulting walk");
        }
    }

    #[test]
    fn l4_reserved_bits() {
        let rsvd = pf_ec::P | pf_ec::RSVD;
        for level in 0..4 {
            for bit in [1u64 << 40, 1 << 51] {
                let env = Env::new();
                let mut flags = [PRESENT_RWU; 4];
                flags[level] |= bit;
                let regs = l4(&env, flags);
                assert_eq!(
                    env.ec(&regs, L4_VA, Read, false),
                    rsvd,
                    "level {level} bit {bit:#x}"
                );
                assert_eq!(
                    env.ec(&regs, L4_VA, Write, true),
                    rsvd | pf_ec::W | pf_ec::U
                );
                assert_eq!(l4_entries(&env)[level] & A, 0);
            }
            // XD is reserved without EFER.NXE.
            let env = Env::new();
            let mut flags = [PRESENT_RWU; 4];
            flags[level] |= XD;
            let mut regs = l4(&env, flags);
            regs.efer &= !efer::NXE;
            assert_eq!(env.ec(&regs, L4_VA, Read, false), rsvd);
            // Without NXE a fetch fault has no I/D bit.
            assert_eq!(env.ec(&regs, L4_VA, Execute, false), rsvd);
            // Bits 52..62 are ignored in 4-level paging.
            let env = Env::new();
            let mut flags = [PRESENT_RWU; 4];
            flags[level] |= 0x7ff << 52;
            let regs = l4(&env, flags);
            assert!(env.walk(&regs, L4_VA, Read, false).is_ok());
        }
        // PS is reserved in a PML4E.
        let env = Env::new();
        let regs = l4(
            &env,
            [PRESENT_RWU | PS, PRESENT_RWU, PRESENT_RWU, PRESENT_RWU],
        );
        assert_eq!(env.ec(&regs, L4_VA, Read, false), rsvd);
        // Not-present wins over reserved bits below it (the walk stops first).
        let env = Env::new();
        let regs = l4(
            &env,
            [PRESENT_RWU, RW, PRESENT_RWU | (1 << 45), PRESENT_RWU],
        );
        assert_eq!(env.ec(&regs, L4_VA, Read, false), 0);
    }

    #[test]
    fn write_protection_and_cr0_wp() {
        for level in 0..4 {
            let env = Env::new();
            let mut flags = [PRESENT_RWU; 4];
            flags[level] &= !RW;
            let mut regs = l4(&env, flags);
            // Supervisor write, WP=1: fault.
            assert_eq!(env.ec(&regs, L4_VA, Write, false), pf_ec::P | pf_ec::W);
            // User write: fault whatever WP says.
            assert_eq!(
                env.ec(&regs, L4_VA, Write, true),
                pf_ec::P | pf_ec::W | pf_ec::U
            );
            regs.cr0 &= !cr0::WP;
            assert_eq!(
                env.ec(&regs, L4_VA, Write, true),
                pf_ec::P | pf_ec::W | pf_ec::U
            );
            assert!(l4_entries(&env).iter().all(|e| e & (A | D) == 0));
            // Supervisor write, WP=0: allowed, and it dirties the page.
            let t = env.walk(&regs, L4_VA, Write, false).unwrap();
            assert!(!t.writable && t.dirty);
            assert_eq!(l4_entries(&env)[3] & D, D);
            // Reads are fine.
            assert!(env.walk(&regs, L4_VA, Read, true).is_ok());
        }
    }

    #[test]
    fn user_access_to_supervisor_page() {
        for level in 0..4 {
            let env = Env::new();
            let mut flags = [PRESENT_RWU; 4];
            flags[level] &= !US;
            let regs = l4(&env, flags);
            assert_eq!(env.ec(&regs, L4_VA, Read, true), pf_ec::P | pf_ec::U);
            assert_eq!(
                env.ec(&regs, L4_VA, Write, true),
                pf_ec::P | pf_ec::W | pf_ec::U
            );
            assert_eq!(
                env.ec(&regs, L4_VA, Execute, true),
                pf_ec::P | pf_ec::U | pf_ec::ID
            );
            let t = env.walk(&regs, L4_VA, Read, false).unwrap();
            assert!(!t.user);
        }
    }

    #[test]
    fn execute_disable() {
        for level in 0..4 {
            let env = Env::new();
            let mut flags = [PRESENT_RWU; 4];
            flags[level] |= XD;
            let regs = l4(&env, flags);
            assert_eq!(env.ec(&regs, L4_VA, Execute, false), pf_ec::P | pf_ec::ID);
            assert_eq!(
                env.ec(&regs, L4_VA, Execute, true),
                pf_ec::P | pf_ec::U | pf_ec::ID
            );
            assert!(l4_entries(&env).iter().all(|e| e & A == 0));
            let t = env.walk(&regs, L4_VA, Read, true).unwrap();
            assert!(!t.executable);
            assert!(env.walk(&regs, L4_VA, Write, false).is_ok());
        }
    }

    #[test]
    fn smep() {
        let env = Env::new();
        let mut regs = l4(&env, [PRESENT_RWU; 4]);
        regs.cr4 |= cr4::SMEP;
        // Supervisor fetch from a user page.
        assert_eq!(env.ec(&regs, L4_VA, Execute, false), pf_ec::P | pf_ec::ID);
        // User fetch is fine, and supervisor data accesses too (no SMAP).
        assert!(env.walk(&regs, L4_VA, Execute, true).is_ok());
        assert!(env.walk(&regs, L4_VA, Write, false).is_ok());
        // U/S=0 anywhere makes it a supervisor page: fetch allowed.
        let env = Env::new();
        let mut regs = l4(
            &env,
            [PRESENT_RWU, PRESENT_RWU & !US, PRESENT_RWU, PRESENT_RWU],
        );
        regs.cr4 |= cr4::SMEP;
        assert!(env.walk(&regs, L4_VA, Execute, false).is_ok());
        // SMEP alone (NXE off) makes fetch faults report I/D.
        let env = Env::new();
        let mut regs = l4(&env, [PRESENT_RWU, PRESENT_RWU, RW, PRESENT_RWU]);
        regs.efer &= !efer::NXE;
        assert_eq!(env.ec(&regs, L4_VA, Execute, false), 0);
        regs.cr4 |= cr4::SMEP;
        assert_eq!(env.ec(&regs, L4_VA, Execute, false), pf_ec::ID);
    }

    #[test]
    fn l4_large_pages_and_global() {
        // 2 MiB page at PA 0x4000_0000.
        let env = Env::new();
        env.set(0x1008, 0x2000 | PRESENT_RWU);
        env.set(0x2010, 0x3000 | PRESENT_RWU);
        env.set(0x3018, 0x4000_0000 | PRESENT_RWU | PS | G | (1 << 12));
        let mut regs = regs_l4();
        let t = env.walk(&regs, L4_VA, Write, false).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x4000_0000 | (L4_VA & 0x1f_ffff)));
        assert_eq!(t.page_size, 2 << 20);
        assert!(!t.global, "G needs CR4.PGE");
        assert_eq!(env.get(0x3018) & (A | D), A | D);
        assert_eq!(env.get(0x2010) & (A | D), A);
        regs.cr4 |= cr4::PGE;
        assert!(env.walk(&regs, L4_VA, Read, false).unwrap().global);
        // Bits 13..20 are reserved in a 2 MiB PDE.
        env.set(0x3018, 0x4000_0000 | PRESENT_RWU | PS | (1 << 20));
        assert_eq!(env.ec(&regs, L4_VA, Read, false), pf_ec::P | pf_ec::RSVD);

        // 1 GiB page at PA 0xc0_0000_0000 (just under 2^40).
        let env = Env::new();
        env.set(0x1008, 0x2000 | PRESENT_RWU);
        env.set(0x2010, 0xc0_0000_0000 | P | PS);
        let regs = regs_l4();
        let t = env.walk(&regs, L4_VA, Read, false).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0xc0_0000_0000 | (L4_VA & 0x3fff_ffff)));
        assert_eq!(t.page_size, 1 << 30);
        assert!(!t.writable && !t.user);
        for bit in [13, 29] {
            env.set(0x2010, 0xc0_0000_0000 | P | PS | (1 << bit));
            assert_eq!(
                env.ec(&regs, L4_VA, Read, false),
                pf_ec::P | pf_ec::RSVD,
                "bit {bit}"
            );
        }
        // Bit 40 is beyond MAXPHYADDR.
        env.set(0x2010, (1 << 40) | P | PS);
        assert_eq!(env.ec(&regs, L4_VA, Read, false), pf_ec::P | pf_ec::RSVD);
    }

    #[test]
    fn upper_half_and_cr3_low_bits() {
        let env = Env::new();
        // PML4[511] → PDPT[511] 1 GiB page at 0: VA 0xffff_ffff_c000_0000.
        env.set(0x1000 + 511 * 8, 0x2000 | P | RW);
        env.set(0x2000 + 511 * 8, P | RW | PS);
        let mut regs = regs_l4();
        regs.cr3 |= 0xfff; // PCID/PWT/PCD bits do not move the table.
        let t = env.walk(&regs, 0xffff_ffff_c012_3456, Read, false).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x12_3456));
    }

    #[test]
    fn self_referencing_tables() {
        // PML4[0] points at the PML4 itself: VA 0 walks the same entry four
        // times and maps the PML4 page. A write must leave A and D both set.
        let env = Env::new();
        env.set(0x1000, 0x1000 | PRESENT_RWU);
        let regs = regs_l4();
        let t = env.walk(&regs, 0x18, Write, false).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x1018));
        assert_eq!(env.get(0x1000), 0x1000 | PRESENT_RWU | A | D);
    }

    #[test]
    fn tables_outside_ram_read_as_all_ones() {
        let env = Env::new();
        // CR3 in the MMIO hole: the PML4E reads as all-ones → RSVD.
        let mut regs = regs_l4();
        regs.cr3 = 0xfee0_0000;
        assert_eq!(
            env.ec(&regs, L4_VA, Write, true),
            pf_ec::P | pf_ec::RSVD | pf_ec::W | pf_ec::U
        );
        // A table beyond the end of RAM, in PAE.
        env.set(0x1020, (16 << 20) | P);
        let regs = regs_pae();
        assert_eq!(env.ec(&regs, 0x1000, Read, false), pf_ec::P | pf_ec::RSVD);
        // 32-bit paging without PSE has no reserved bits: all-ones is a
        // present PDE pointing at 0xfffff000, whose PTEs are all-ones too.
        let regs = PagingRegs {
            cr0: cr0::PE | cr0::PG,
            cr3: 0xd000_0000,
            ..Default::default()
        };
        let t = env.walk(&regs, 0x1234, Write, true).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0xffff_f234));
    }

    // ---- PAE fixture: PDPT at 0x1020 → PD 0x3000 → PT 0x4000.
    const PAE_VA: u64 = (2 << 30) | (3 << 21) | (4 << 12) | 0x456;

    fn regs_pae() -> PagingRegs {
        PagingRegs {
            cr0: cr0::PE | cr0::PG | cr0::WP,
            cr3: 0x1020,
            cr4: cr4::PAE,
            efer: efer::NXE,
        }
    }

    fn pae(env: &Env, pdpte: u64, pde: u64, pte: u64) -> PagingRegs {
        env.set(0x1030, 0x3000 | pdpte);
        env.set(0x3018, 0x4000 | pde);
        env.set(0x4020, 0x56_7000 | pte);
        regs_pae()
    }

    #[test]
    fn pae_translation() {
        let env = Env::new();
        // The PDPTE has no R/W or U/S: they are reserved there.
        let regs = pae(&env, P, PRESENT_RWU, PRESENT_RWU);
        let t = env.walk(&regs, PAE_VA, Write, true).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x56_7456));
        assert!(t.writable && t.user && t.executable && t.dirty);
        // No A in the PDPTE (bit 5 is reserved there); A in PD, A|D in PT.
        assert_eq!(env.get(0x1030), 0x3000 | P);
        assert_eq!(env.get(0x3018) & (A | D), A);
        assert_eq!(env.get(0x4020) & (A | D), A | D);
        // Upper VA bits are not part of a PAE walk.
        assert!(env.walk(&regs, PAE_VA | (1 << 40), Read, true).is_ok());
    }

    #[test]
    fn pae_faults() {
        let rsvd = pf_ec::P | pf_ec::RSVD;
        // Not present at each level.
        for (i, (a, b, c)) in [
            (0, PRESENT_RWU, PRESENT_RWU),
            (P, RW, PRESENT_RWU),
            (P, PRESENT_RWU, US),
        ]
        .into_iter()
        .enumerate()
        {
            let env = Env::new();
            let regs = pae(&env, a, b, c);
            assert_eq!(
                env.ec(&regs, PAE_VA, Write, true),
                pf_ec::W | pf_ec::U,
                "level {i}"
            );
            assert_eq!(env.ec(&regs, PAE_VA, Execute, false), pf_ec::ID);
            assert_eq!(env.get(0x3018) & A, 0);
        }
        // PDPTE reserved bits: 1-2, 5-8, M..63 (XD included, even with NXE).
        for bit in [1, 2, 5, 8, 40, 62, 63] {
            let env = Env::new();
            let regs = pae(&env, P | (1 << bit), PRESENT_RWU, PRESENT_RWU);
            assert_eq!(env.ec(&regs, PAE_VA, Read, false), rsvd, "PDPTE bit {bit}");
        }
        // PAE PDE/PTE: bits M..62 are reserved (not ignored as in 4-level).
        for bit in [40, 52, 62] {
            let env = Env::new();
            let regs = pae(&env, P, PRESENT_RWU, PRESENT_RWU | (1 << bit));
            assert_eq!(env.ec(&regs, PAE_VA, Read, false), rsvd, "PTE bit {bit}");
        }
        // XD: execute-disable with NXE, reserved without.
        let env = Env::new();
        let mut regs = pae(&env, P, PRESENT_RWU | XD, PRESENT_RWU);
        assert_eq!(
            env.ec(&regs, PAE_VA, Execute, true),
            pf_ec::P | pf_ec::U | pf_ec::ID
        );
        regs.efer = 0;
        assert_eq!(env.ec(&regs, PAE_VA, Read, true), rsvd | pf_ec::U);
        // Protection: supervisor page, read-only page.
        let env = Env::new();
        let regs = pae(&env, P, P | RW, PRESENT_RWU);
        assert_eq!(env.ec(&regs, PAE_VA, Read, true), pf_ec::P | pf_ec::U);
        let regs = pae(&env, P, PRESENT_RWU, P | US);
        assert_eq!(env.ec(&regs, PAE_VA, Write, false), pf_ec::P | pf_ec::W);
    }

    #[test]
    fn pae_2m_page_ignores_cr4_pse() {
        let env = Env::new();
        env.set(0x1030, 0x3000 | P);
        env.set(0x3018, 0x60_0000 | PRESENT_RWU | PS);
        let regs = regs_pae();
        assert_eq!(regs.cr4 & cr4::PSE, 0);
        let t = env.walk(&regs, PAE_VA, Read, false).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x60_0000 | (PAE_VA & 0x1f_ffff)));
        assert_eq!(t.page_size, 2 << 20);
        env.set(0x3018, 0x60_0000 | PRESENT_RWU | PS | (1 << 13));
        assert_eq!(env.ec(&regs, PAE_VA, Read, false), pf_ec::P | pf_ec::RSVD);
    }

    #[test]
    fn pae_pdpte_load_check() {
        let env = Env::new();
        let regs = pae(&env, P, PRESENT_RWU, PRESENT_RWU);
        let pdptes = load_pdptes(&regs, &mut env.mem()).unwrap();
        assert_eq!(pdptes, [0, 0, 0x3000 | P, 0]);
        // A reserved bit in a not-present PDPTE is fine...
        env.set(0x1020, RW);
        assert!(load_pdptes(&regs, &mut env.mem()).is_some());
        // ...in a present one it makes MOV CR3 #GP.
        env.set(0x1020, P | RW);
        assert!(load_pdptes(&regs, &mut env.mem()).is_none());
    }

    // ---- 32-bit fixture: PD 0x1000 → PT 0x2000.
    const L32_VA: u64 = (5 << 22) | (6 << 12) | 0x789;

    fn regs_32() -> PagingRegs {
        PagingRegs {
            cr0: cr0::PE | cr0::PG | cr0::WP,
            cr3: 0x1000,
            cr4: 0,
            efer: 0,
        }
    }

    #[test]
    fn legacy32_translation_uses_4_byte_entries() {
        let env = Env::new();
        env.set(0x1014, (0xdead_beef << 32) | 0x2000 | PRESENT_RWU);
        env.set(0x2018, (0xcafe_f00d << 32) | 0x34_5000 | P | US);
        let regs = regs_32();
        let t = env.walk(&regs, L32_VA, Read, true).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x34_5789));
        assert_eq!(t.page_size, 4096);
        assert!(!t.writable && t.user && t.executable);
        // A is set in each 4-byte entry; the neighbouring entries keep
        // their bytes.
        assert_eq!(
            env.get(0x1014),
            (0xdead_beef << 32) | 0x2000 | PRESENT_RWU | A
        );
        assert_eq!(
            env.get(0x2018),
            (0xcafe_f00d << 32) | 0x34_5000 | P | US | A
        );
        // Read-only page: supervisor write faults with WP.
        assert_eq!(env.ec(&regs, L32_VA, Write, false), pf_ec::P | pf_ec::W);
        // Not present at each level.
        env.set32(0x2018, 0x34_5000 | US);
        assert_eq!(env.ec(&regs, L32_VA, Read, true), pf_ec::U);
        env.set32(0x1014, 0x2000 | RW);
        assert_eq!(env.ec(&regs, L32_VA, Write, false), pf_ec::W);
        // No XD in 32-bit paging: fetch faults carry I/D only with SMEP,
        // even when EFER.NXE is set.
        let mut regs = regs_32();
        regs.efer = efer::NXE;
        assert_eq!(env.ec(&regs, L32_VA, Execute, false), 0);
        regs.cr4 |= cr4::SMEP;
        assert_eq!(env.ec(&regs, L32_VA, Execute, false), pf_ec::ID);
        // User access to a supervisor PDE.
        env.set32(0x1014, 0x2000 | P | RW);
        env.set32(0x2018, 0x34_5000 | PRESENT_RWU);
        assert_eq!(
            env.ec(&regs_32(), L32_VA, Write, true),
            pf_ec::P | pf_ec::W | pf_ec::U
        );
    }

    #[test]
    fn legacy32_4m_pages() {
        let env = Env::new();
        // A PS PDE: a 4 MiB page with CR4.PSE, a table pointer without.
        env.set32(0x1014, 0x40_0000 | PRESENT_RWU | PS);
        env.set32(0x40_0018, 0x11_1000 | PRESENT_RWU);
        let mut regs = regs_32();
        let t = env.walk(&regs, L32_VA, Read, false).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x11_1789), "PS ignored without PSE");
        assert_eq!(t.page_size, 4096);
        regs.cr4 |= cr4::PSE | cr4::PGE;
        env.set32(0x1014, 0x40_0000 | PRESENT_RWU | PS | G);
        let t = env.walk(&regs, L32_VA, Write, true).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x40_0000 | (L32_VA & 0x3f_ffff)));
        assert_eq!(t.page_size, 4 << 20);
        assert!(t.global && t.dirty);
        assert_eq!(env.get32(0x1014) & (A | D), A | D);
        // PSE-36: bits 20:13 give PA[39:32].
        env.set32(0x1014, 0xffc0_0000 | (0x81 << 13) | P | PS);
        let t = env.walk(&regs, L32_VA, Read, false).unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0x81_ffc0_0000 | (L32_VA & 0x3f_ffff)));
        // Bit 21 is reserved.
        env.set32(0x1014, 0x40_0000 | P | PS | (1 << 21));
        assert_eq!(env.ec(&regs, L32_VA, Read, false), pf_ec::P | pf_ec::RSVD);
    }

    #[test]
    fn paging_disabled_is_identity() {
        let env = Env::new();
        let regs = PagingRegs::default();
        let mut trace = WalkTrace::default();
        let t = walk(
            &regs,
            &mut env.mem(),
            GuestVirtAddr(0xb8123),
            Access::new(Write, true),
            Some(&mut trace),
        )
        .unwrap();
        assert_eq!(t.pa, GuestPhysAddr(0xb8123));
        assert!(t.writable && t.user && t.executable && t.dirty && !t.global);
        assert!(trace.steps.is_empty());
        assert_eq!(trace.result, Some(Ok(t)));
    }

    #[test]
    fn trace_of_a_4_level_walk() {
        let env = Env::new();
        let regs = l4(
            &env,
            [PRESENT_RWU, PRESENT_RWU, PRESENT_RWU, PRESENT_RWU | XD],
        );
        let before = l4_entries(&env);
        let mut trace = WalkTrace::default();
        let r = walk(
            &regs,
            &mut env.mem(),
            GuestVirtAddr(L4_VA),
            Access::new(Read, false),
            Some(&mut trace),
        );
        let t = r.unwrap();
        assert_eq!(trace.va, GuestVirtAddr(L4_VA));
        let expect = [
            (4, "PML4", StepDecision::Next(GuestPhysAddr(0x2000))),
            (3, "PDPT", StepDecision::Next(GuestPhysAddr(0x3000))),
            (2, "PD", StepDecision::Next(GuestPhysAddr(0x4000))),
            (1, "PT", StepDecision::Leaf { page_size: 4096 }),
        ];
        assert_eq!(trace.steps.len(), 4);
        for (i, (step, (level, table, decision))) in trace.steps.iter().zip(expect).enumerate() {
            assert_eq!(step.level, level);
            assert_eq!(step.table, table);
            assert_eq!(step.entry_pa, GuestPhysAddr(L4_ENTRIES[i]));
            assert_eq!(step.entry, before[i], "the entry as read, before A/D");
            assert_eq!(step.decision, decision);
        }
        assert_eq!(trace.result, Some(Ok(t)));

        // A denied fetch: the leaf step says why; the trace is reused.
        let r = walk(
            &regs,
            &mut env.mem(),
            GuestVirtAddr(L4_VA),
            Access::new(Execute, false),
            Some(&mut trace),
        );
        assert_eq!(trace.steps.len(), 4);
        assert!(matches!(trace.steps[3].decision, StepDecision::Denied(s) if s.contains("XD")));
        assert_eq!(trace.result, Some(r));
        assert_eq!(r.unwrap_err().error_code, pf_ec::P | pf_ec::ID);

        // A not-present PD entry: the trace stops there.
        env.set(0x3018, 0);
        let r = walk(
            &regs,
            &mut env.mem(),
            GuestVirtAddr(L4_VA),
            Access::new(Read, false),
            Some(&mut trace),
        );
        assert_eq!(trace.steps.len(), 3);
        assert_eq!(trace.steps[2].decision, StepDecision::NotPresent);
        assert_eq!(trace.result, Some(r));
        // And a reserved one.
        env.set(0x3018, 0x4000 | P | (1 << 44));
        walk(
            &regs,
            &mut env.mem(),
            GuestVirtAddr(L4_VA),
            Access::new(Read, false),
            Some(&mut trace),
        )
        .unwrap_err();
        assert_eq!(trace.steps[2].decision, StepDecision::Reserved);
    }

    #[test]
    fn walk_debug_has_no_side_effects_and_no_rights_check() {
        let env = Env::new();
        let regs = l4(&env, [P | RW, PRESENT_RWU, P, PRESENT_RWU | XD | D]);
        let snapshot = env.ram.as_slice().to_vec();
        let mut trace = WalkTrace::default();
        let t = walk_debug(
            &regs,
            &mut env.mem(),
            GuestVirtAddr(L4_VA),
            Some(&mut trace),
        )
        .unwrap();
        assert_eq!(t.pa, GuestPhysAddr(L4_FRAME | 0x123));
        assert!(!t.user && !t.writable && !t.executable && t.dirty);
        assert_eq!(trace.steps.len(), 4);
        assert!(
            env.ram.as_slice() == snapshot.as_slice(),
            "walk_debug wrote to RAM"
        );
        // Faults are still reported, as for a supervisor read.
        env.set(0x2010, 0x3000 | P | (1 << 48));
        let f = walk_debug(&regs, &mut env.mem(), GuestVirtAddr(L4_VA), None).unwrap_err();
        assert_eq!(f.error_code, pf_ec::P | pf_ec::RSVD);
        env.set(0x2010, 0);
        let f = walk_debug(&regs, &mut env.mem(), GuestVirtAddr(L4_VA), None).unwrap_err();
        assert_eq!(f.error_code, 0);
    }
}
