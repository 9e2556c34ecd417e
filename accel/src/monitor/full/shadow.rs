//! Shadow page tables: the tables the real CPU walks, mapping guest-virtual
//! addresses straight to machine addresses (VA → MA), built by the monitor
//! from the guest's own tables (VA → PA) and the p2m (PA → MA).
//!
//! The guest never sees these tables. Each *root* shadows one guest address
//! space, identified by its [`RootKey`] (guest CR3 and paging format); up
//! to [`MAX_ROOTS`] are kept so that switching back to an address space
//! does not refault everything (what `ctxswitch` measures).
//!
//! Entries are filled lazily, one 4 KiB page at a time, when the real CPU
//! takes a #PF ("hidden" faults, [`Shadow::fill`]). Guest large pages are
//! fractured into 4 KiB shadow entries, so that one guest page-table page
//! inside a 2 MiB kernel mapping can be write-protected on its own.
//!
//! Coherence with the guest's tables is kept by write protection (as
//! VMware's and KVM's shadow MMUs do): every guest page-table page that a
//! shadow entry was derived from is mapped read-only in every root, so the
//! guest's writes to it trap; the monitor emulates the write and drops (or,
//! for hypercalls, recomputes) the shadow entries that depended on the
//! entry written. Two reverse maps make that cheap:
//! * `deps`: guest entry (machine address) → shadowed (root, VA) pairs
//!   whose walk used it, at every level;
//! * `writable`: guest frame → (root, VA) pairs mapping it writable, to
//!   write-protect a frame the moment it becomes a page-table page.
//!
//! Accessed/Dirty: the monitor's walk sets the guest's A bits (and D for a
//! write) exactly when the hardware would; a page whose guest D bit is
//! clear is shadowed read-only, so the first write faults and sets D.

use mmu::paging::{walk, walk_debug, Access, AccessKind, PageFault, PagingMode, PagingRegs};
use mmu::{
    FramePool, GuestPhysAddr, GuestRam, GuestVirtAddr, MachineAddr, MappedPtes, P2m, WalkTrace,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How many address spaces keep their shadow root.
pub const MAX_ROOTS: usize = 8;
/// The PML4 slot of the monitor's own area in every shadow root.
pub const MON_PML4_SLOT: u64 = 510;
/// Base of the monitor's area (PML4 slot 510), where the real CPU finds
/// its GDT, IDT and TSS.
pub const MON_BASE: u64 = 0xffff_ff00_0000_0000;
/// The shadow GDT: 16 pages (the largest GDT a guest can load).
pub const GDT_VA: u64 = MON_BASE;
/// Pages of the shadow GDT.
pub const GDT_PAGES: usize = 16;
/// The monitor's IDT (the real CPU never delivers through it: every
/// exception exits; SIDT shows it).
pub const IDT_VA: u64 = MON_BASE + 0x1_0000;
/// The monitor's TSS (no I/O bitmap: port I/O at CPL > IOPL faults).
pub const TSS_VA: u64 = MON_BASE + 0x1_1000;

const PAGE: u64 = 4096;
const P: u64 = mmu::pte::P;
const RW: u64 = mmu::pte::RW;
const US: u64 = mmu::pte::US;
const A: u64 = mmu::pte::A;
const D: u64 = mmu::pte::D;
const XD: u64 = mmu::pte::XD;
/// Machine address field of a shadow entry.
const MA_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Which guest address space (and entry format) a root shadows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RootKey {
    /// The table root from CR3 (0 with paging off).
    pub cr3: u64,
    /// 0 paging off, 2 32-bit, 3 PAE, 4 4-level.
    pub levels: u8,
    /// CR4.PSE (32-bit paging's 4 MiB pages).
    pub pse: bool,
    /// EFER.NXE (bit 63 is XD rather than reserved).
    pub nxe: bool,
}

impl RootKey {
    /// The key for the guest's paging registers.
    pub fn of(regs: &PagingRegs) -> RootKey {
        let (levels, cr3) = match regs.mode() {
            PagingMode::Disabled => (0, 0),
            PagingMode::Legacy32 => (2, regs.cr3 & 0xffff_f000),
            PagingMode::Pae => (3, regs.cr3 & 0xffff_ffe0),
            PagingMode::Level4 => (4, regs.cr3 & MA_MASK),
        };
        RootKey {
            cr3,
            levels,
            pse: levels == 2 && regs.cr4 & mmu::paging::cr4::PSE != 0,
            nxe: levels >= 3 && regs.efer & mmu::paging::efer::NXE != 0,
        }
    }

    /// Same format, possibly another address space.
    pub fn same_format(&self, o: &RootKey) -> bool {
        self.levels == o.levels && self.pse == o.pse && self.nxe == o.nxe
    }
}

/// One shadowed address space.
struct Root {
    id: u32,
    key: RootKey,
    /// The guest paging registers walks are made with.
    regs: PagingRegs,
    /// Machine address of the shadow PML4.
    pml4: u64,
    /// Every table frame of this root (PML4 included).
    frames: Vec<u64>,
    /// Shadowed VA pages (with or without a present leaf).
    vas: HashSet<u64>,
    last_used: u64,
}

/// (root id, VA page).
type Shadowed = (u32, u64);

/// What one shadowed VA was derived from.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// Guest entries (machine addresses) its walk used, top level first.
    entries: [u64; 4],
    n: u8,
    /// The leaf installed: (machine frame, writable). `None`: tracked but
    /// not present (the guest walk failed; para refreshes such entries).
    leaf: Option<(u64, bool)>,
}

/// Why a shadow operation could not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowError {
    /// The monitor's frame pool is exhausted.
    PoolExhausted,
}

/// What a real #PF turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// A hidden fault: the shadow entry is installed; the guest resumes.
    Installed { pa: u64, ma: u64 },
    /// The guest's own tables deny the access: reflect this #PF.
    GuestFault(PageFault),
    /// The guest-physical address is not guest RAM (a device, or past the
    /// end of RAM): emulate the instruction.
    Mmio { pa: u64 },
    /// A write to a guest page-table page: emulate it, then update the
    /// shadow entries that depended on what it wrote.
    PtWrite { pa: u64, ma: u64 },
    /// The shadow can't express the mapping (a supervisor write to a
    /// read-only page with CR0.WP = 0, the monitor's own PML4 slot):
    /// emulate the instruction.
    Emulate { pa: u64, ma: u64 },
}

/// The monitor's frames for its own area (mapped in every root).
#[derive(Debug, Clone)]
pub struct MonitorArea {
    /// The shadow GDT's frames.
    pub gdt: Vec<u64>,
    pub idt: u64,
    pub tss: u64,
    /// PDPT hung at PML4 slot 510 of every root.
    pdpt: u64,
}

/// Counters for [`crate::monitor::MonitorStats`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ShadowCounts {
    pub flushes: u64,
    pub fills: u64,
}

/// All shadow roots and their reverse maps.
pub struct Shadow {
    ram: Arc<GuestRam>,
    p2m: Arc<P2m>,
    pool: FramePool,
    pub area: MonitorArea,
    roots: Vec<Root>,
    current: u32,
    next_id: u32,
    tick: u64,
    links: HashMap<Shadowed, Link>,
    deps: HashMap<u64, HashSet<Shadowed>>,
    /// Guest page-table pages (machine page → number of dependencies).
    pt_pages: HashMap<u64, u32>,
    writable: HashMap<u64, HashSet<Shadowed>>,
    /// VA pages of the current root whose real-TLB entry is stale.
    pub stale: Vec<u64>,
    /// The current root changed wholesale: flush the whole real TLB.
    pub stale_all: bool,
    pub counts: ShadowCounts,
}

impl Shadow {
    /// Shadow paging over `ram` with tables from `pool`; allocates the
    /// monitor's area. `None` if the pool can't even hold that.
    pub fn new(ram: Arc<GuestRam>, p2m: Arc<P2m>, mut pool: FramePool) -> Option<Shadow> {
        let mut alloc = || pool.alloc(&ram).map(|m| m.0);
        let gdt = (0..GDT_PAGES)
            .map(|_| alloc())
            .collect::<Option<Vec<_>>>()?;
        let idt = alloc()?;
        let tss = alloc()?;
        let pdpt = alloc()?;
        let pd = alloc()?;
        let pt = alloc()?;
        let table = P | RW | A;
        ram.write_le(MachineAddr(pdpt), 8, pd | table).ok()?;
        ram.write_le(MachineAddr(pd), 8, pt | table).ok()?;
        // Read-only, supervisor-only, never executable: the real CPU reads
        // descriptors there; guest code at CPL 1 can read them too (one
        // more face of the x86 hole), but not change them.
        let leaf = P | A | D | XD;
        for (i, f) in gdt.iter().chain([idt, tss].iter()).enumerate() {
            ram.write_le(MachineAddr(pt + i as u64 * 8), 8, f | leaf)
                .ok()?;
        }
        Some(Shadow {
            ram,
            p2m,
            pool,
            area: MonitorArea {
                gdt,
                idt,
                tss,
                pdpt,
            },
            roots: Vec::new(),
            current: u32::MAX,
            next_id: 0,
            tick: 0,
            links: HashMap::new(),
            deps: HashMap::new(),
            pt_pages: HashMap::new(),
            writable: HashMap::new(),
            stale: Vec::new(),
            stale_all: false,
            counts: ShadowCounts::default(),
        })
    }

    fn root_index(&self, id: u32) -> Option<usize> {
        self.roots.iter().position(|r| r.id == id)
    }

    /// The current root's shadow PML4 (machine address), if any.
    pub fn current_pml4(&self) -> Option<u64> {
        self.root_index(self.current).map(|i| self.roots[i].pml4)
    }

    /// The key of the current root.
    pub fn current_key(&self) -> Option<RootKey> {
        self.root_index(self.current).map(|i| self.roots[i].key)
    }

    /// Number of live roots (for tests and displays).
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// Whether machine page `ma` holds guest paging structures a shadow
    /// entry depends on.
    pub fn is_pt_page(&self, ma: u64) -> bool {
        self.pt_pages.contains_key(&(ma & !(PAGE - 1)))
    }

    /// Make the root for `regs` current (switching to a cached one or
    /// building a new one). Returns its PML4's machine address. Sets
    /// `stale_all` when the root changed.
    pub fn activate(&mut self, regs: &PagingRegs) -> Result<u64, ShadowError> {
        let key = RootKey::of(regs);
        self.tick += 1;
        if let Some(i) = self.roots.iter().position(|r| r.key == key) {
            let r = &mut self.roots[i];
            r.regs = *regs;
            r.last_used = self.tick;
            if r.id != self.current {
                self.current = r.id;
                self.stale_all = true;
            }
            return Ok(r.pml4);
        }
        if self.roots.len() >= MAX_ROOTS {
            let victim = self
                .roots
                .iter()
                .filter(|r| r.id != self.current)
                .min_by_key(|r| r.last_used)
                .map(|r| r.id);
            if let Some(id) = victim {
                self.drop_root(id);
            }
        }
        let pml4 = self
            .pool
            .alloc(&self.ram)
            .ok_or(ShadowError::PoolExhausted)?
            .0;
        self.write_entry(pml4 + MON_PML4_SLOT * 8, self.area.pdpt | P | RW | A);
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.roots.push(Root {
            id,
            key,
            regs: *regs,
            pml4,
            frames: vec![pml4],
            vas: HashSet::new(),
            last_used: self.tick,
        });
        self.counts.flushes += 1;
        self.current = id;
        self.stale_all = true;
        Ok(pml4)
    }

    /// Update the current root's registers (same key: WP, PCD, … changed).
    pub fn set_current_regs(&mut self, regs: &PagingRegs) {
        if let Some(i) = self.root_index(self.current) {
            self.roots[i].regs = *regs;
        }
    }

    /// Throw every shadow away (pool exhausted, paging-mode change).
    pub fn drop_all(&mut self) {
        for r in self.roots.drain(..) {
            for f in r.frames {
                self.pool.release(MachineAddr(f));
            }
        }
        self.links.clear();
        self.deps.clear();
        self.pt_pages.clear();
        self.writable.clear();
        self.stale.clear();
        self.stale_all = true;
        self.current = u32::MAX;
        self.counts.flushes += 1;
    }

    fn drop_root(&mut self, id: u32) {
        let Some(i) = self.root_index(id) else {
            return;
        };
        let vas: Vec<u64> = self.roots[i].vas.iter().copied().collect();
        for va in vas {
            self.unlink((id, va));
        }
        let r = self.roots.swap_remove(i);
        for f in r.frames {
            self.pool.release(MachineAddr(f));
        }
    }

    /// Walk the guest's tables for a real #PF at `va` and act on it.
    pub fn fill(&mut self, va: u64, access: Access) -> Result<Fill, ShadowError> {
        let Some(ri) = self.root_index(self.current) else {
            return Err(ShadowError::PoolExhausted);
        };
        let regs = self.roots[ri].regs;
        let mut trace = WalkTrace::default();
        let walked = {
            let mut ptes = MappedPtes::new(&self.ram, &*self.p2m);
            walk(
                &regs,
                &mut ptes,
                GuestVirtAddr(va),
                access,
                Some(&mut trace),
            )
        };
        let t = match walked {
            Ok(t) => t,
            Err(pf) => return Ok(Fill::GuestFault(pf)),
        };
        let pa = t.pa.0;
        let Some(ma) = self.p2m.lookup(t.pa).map(|m| m.0) else {
            return Ok(Fill::Mmio { pa });
        };
        if (va >> 39) & 0x1ff == MON_PML4_SLOT && regs.mode() == PagingMode::Level4 {
            return Ok(Fill::Emulate { pa, ma });
        }
        let key = (self.current, va & !(PAGE - 1));
        let entries = self.entry_mas(&trace);
        self.unlink(key);
        let ma_page = ma & !(PAGE - 1);
        let write = access.kind == AccessKind::Write;
        let mut link = Link {
            entries: [0; 4],
            n: 0,
            leaf: None,
        };
        for (slot, e) in link.entries.iter_mut().zip(entries.iter()) {
            *slot = *e;
            link.n += 1;
        }
        // Link first: this walk may make its own target a page-table page.
        self.link(key, link);
        let pt = self.is_pt_page(ma_page);
        let writable = t.writable && t.dirty && !pt;
        let mut leaf = ma_page | P | A;
        if writable {
            leaf |= RW | D;
        }
        if t.user {
            leaf |= US;
        }
        if !t.executable {
            leaf |= XD;
        }
        self.install(key, leaf)?;
        self.counts.fills += 1;
        if write && pt {
            return Ok(Fill::PtWrite { pa, ma });
        }
        if write && !t.writable {
            // CR0.WP = 0: the guest kernel may write a read-only page its
            // user code may not; one shadow entry can't say both.
            return Ok(Fill::Emulate { pa, ma });
        }
        Ok(Fill::Installed { pa, ma })
    }

    /// Machine addresses of the guest entries a walk read.
    fn entry_mas(&self, trace: &WalkTrace) -> Vec<u64> {
        trace
            .steps
            .iter()
            .filter_map(|s| self.p2m.lookup(s.entry_pa).map(|m| m.0))
            .collect()
    }

    /// Record `link` for `key` (replacing nothing: unlink first).
    fn link(&mut self, key: Shadowed, link: Link) {
        for &e in link.entries.iter().take(usize::from(link.n)) {
            if self.deps.entry(e).or_default().insert(key) {
                let page = e & !(PAGE - 1);
                let c = self.pt_pages.entry(page).or_insert(0);
                *c += 1;
                if *c == 1 {
                    self.write_protect(page);
                }
            }
        }
        if let Some(i) = self.root_index(key.0) {
            self.roots[i].vas.insert(key.1);
        }
        self.links.insert(key, link);
    }

    /// Install the leaf for `key` and record it (the link must exist).
    fn install(&mut self, key: Shadowed, leaf: u64) -> Result<(), ShadowError> {
        let slot = self.leaf_slot(key, true)?;
        let Some(slot) = slot else {
            return Ok(());
        };
        self.write_entry(slot, leaf);
        let ma_page = leaf & MA_MASK;
        let writable = leaf & RW != 0;
        if let Some(l) = self.links.get_mut(&key) {
            l.leaf = Some((ma_page, writable));
        }
        if writable {
            self.writable.entry(ma_page).or_default().insert(key);
        }
        self.mark_stale(key);
        Ok(())
    }

    fn mark_stale(&mut self, key: Shadowed) {
        if key.0 == self.current {
            self.stale.push(key.1);
        }
    }

    /// Forget everything about one shadowed VA and clear its leaf.
    fn unlink(&mut self, key: Shadowed) {
        let Some(link) = self.links.remove(&key) else {
            return;
        };
        for &e in link.entries.iter().take(usize::from(link.n)) {
            let mut now_empty = false;
            if let Some(set) = self.deps.get_mut(&e) {
                if set.remove(&key) {
                    let page = e & !(PAGE - 1);
                    if let Some(c) = self.pt_pages.get_mut(&page) {
                        *c = c.saturating_sub(1);
                        if *c == 0 {
                            self.pt_pages.remove(&page);
                        }
                    }
                }
                now_empty = set.is_empty();
            }
            if now_empty {
                self.deps.remove(&e);
            }
        }
        if let Some((ma_page, true)) = link.leaf {
            let mut now_empty = false;
            if let Some(set) = self.writable.get_mut(&ma_page) {
                set.remove(&key);
                now_empty = set.is_empty();
            }
            if now_empty {
                self.writable.remove(&ma_page);
            }
        }
        if let Some(i) = self.root_index(key.0) {
            self.roots[i].vas.remove(&key.1);
        }
        if link.leaf.is_some() {
            if let Ok(Some(slot)) = self.leaf_slot(key, false) {
                self.write_entry(slot, 0);
                self.mark_stale(key);
            }
        }
    }

    /// A frame became a page-table page: take write access away from
    /// every shadow entry that maps it.
    fn write_protect(&mut self, page: u64) {
        let Some(set) = self.writable.remove(&page) else {
            return;
        };
        for key in set {
            let Some(link) = self.links.get_mut(&key) else {
                continue;
            };
            if let Some((m, w)) = &mut link.leaf {
                if *m == page {
                    *w = false;
                }
            }
            if let Ok(Some(slot)) = self.leaf_slot(key, false) {
                let e = self.read_entry(slot);
                if e & P != 0 && e & MA_MASK == page {
                    self.write_entry(slot, e & !RW);
                    self.mark_stale(key);
                }
            }
        }
    }

    /// Drop the shadow entries that depend on the guest entry at machine
    /// address `entry` (a trapped write changed it).
    pub fn invalidate_entry(&mut self, entry: u64) {
        let keys: Vec<Shadowed> = match self.deps.get(&entry) {
            Some(s) => s.iter().copied().collect(),
            None => return,
        };
        for k in keys {
            self.unlink(k);
        }
    }

    /// Drop every shadow entry that depends on any entry in machine page
    /// `page` (written by an instruction whose exact bytes we don't know).
    pub fn invalidate_page(&mut self, page: u64) {
        if !self.is_pt_page(page) {
            return;
        }
        for off in (0..PAGE).step_by(4) {
            self.invalidate_entry(page + off);
        }
    }

    /// Invalidate the entries of PT page `page` that differ from `before`.
    pub fn invalidate_changed(&mut self, page: u64, before: &[u8]) {
        let mut now = vec![0u8; PAGE as usize];
        if self.ram.read(MachineAddr(page), &mut now).is_err() {
            return;
        }
        for (i, (a, b)) in before.chunks(4).zip(now.chunks(4)).enumerate() {
            if a != b {
                let e = page + i as u64 * 4;
                self.invalidate_entry(e);
                // An 8-byte entry starts at the lower half.
                if i % 2 == 1 {
                    self.invalidate_entry(e - 4);
                }
            }
        }
    }

    /// A copy of machine page `page` (before an emulated PT write).
    pub fn snapshot(&self, page: u64) -> Vec<u8> {
        let mut v = vec![0u8; PAGE as usize];
        let _ = self.ram.read(MachineAddr(page & !(PAGE - 1)), &mut v);
        v
    }

    /// Drop the current root's entry for `va` (INVLPG).
    pub fn invlpg(&mut self, va: u64) {
        self.unlink((self.current, va & !(PAGE - 1)));
    }

    /// The guest entry at machine address `entry` was just written by a
    /// hypercall: recompute every shadow entry that depended on it in
    /// place (so the next access does not fault). A writable leaf written
    /// by the hypercall is pre-dirtied (A and D set in the guest entry):
    /// the paravirtual ABI trades exact dirty tracking of hypercall-made
    /// mappings for one fault less per mapping.
    pub fn refresh_entry(&mut self, entry: u64) -> Result<(), ShadowError> {
        let keys: Vec<Shadowed> = match self.deps.get(&entry) {
            Some(s) => s.iter().copied().collect(),
            None => return Ok(()),
        };
        for k in keys {
            self.unlink(k);
            self.prefetch(k, Some(entry))?;
        }
        Ok(())
    }

    /// Re-derive one shadowed VA from the guest's tables without a fault,
    /// as a processor may fill its TLB speculatively (setting A bits).
    /// A failed walk is still linked (not present), so that a later
    /// update of the entry that failed refreshes it.
    fn prefetch(&mut self, key: Shadowed, written: Option<u64>) -> Result<(), ShadowError> {
        let Some(ri) = self.root_index(key.0) else {
            return Ok(());
        };
        let regs = self.roots[ri].regs;
        let va = key.1;
        let mut trace = WalkTrace::default();
        let found = {
            let mut ptes = MappedPtes::new(&self.ram, &*self.p2m);
            walk_debug(&regs, &mut ptes, GuestVirtAddr(va), Some(&mut trace))
        };
        let entries = self.entry_mas(&trace);
        let mut link = Link {
            entries: [0; 4],
            n: 0,
            leaf: None,
        };
        for (slot, e) in link.entries.iter_mut().zip(entries.iter()) {
            *slot = *e;
            link.n += 1;
        }
        let target = found
            .ok()
            .and_then(|t| self.p2m.lookup(t.pa).map(|m| (t, m.0)));
        let Some((t, ma)) = target else {
            self.link(key, link);
            return Ok(());
        };
        if (va >> 39) & 0x1ff == MON_PML4_SLOT && regs.mode() == PagingMode::Level4 {
            self.link(key, link);
            return Ok(());
        }
        // Set A along the walk (a supervisor read is always allowed once
        // the entries are present), then D on a hypercall-written leaf.
        let mut dirty = t.dirty;
        {
            let mut ptes = MappedPtes::new(&self.ram, &*self.p2m);
            let _ = walk(
                &regs,
                &mut ptes,
                GuestVirtAddr(va),
                Access::new(AccessKind::Read, false),
                None,
            );
        }
        let leaf_entry = entries.last().copied();
        if t.writable && written.is_some() && leaf_entry == written {
            if let Some(e) = leaf_entry {
                let size = if regs.mode() == PagingMode::Legacy32 {
                    4
                } else {
                    8
                };
                if let Ok(v) = self.ram.read_le(MachineAddr(e), size) {
                    let _ = self.ram.write_le(MachineAddr(e), size, v | A | D);
                    dirty = true;
                }
            }
        }
        self.link(key, link);
        let ma_page = ma & !(PAGE - 1);
        let writable = t.writable && dirty && !self.is_pt_page(ma_page);
        let mut leaf = ma_page | P | A;
        if writable {
            leaf |= RW | D;
        }
        if t.user {
            leaf |= US;
        }
        if !t.executable {
            leaf |= XD;
        }
        self.install(key, leaf)?;
        self.counts.fills += 1;
        Ok(())
    }

    /// The machine address of the shadow leaf slot for `key`, allocating
    /// the tables on the way when `alloc`. `Ok(None)`: not allocated.
    fn leaf_slot(&mut self, key: Shadowed, alloc: bool) -> Result<Option<u64>, ShadowError> {
        let Some(ri) = self.root_index(key.0) else {
            return Ok(None);
        };
        let va = key.1;
        let mut table = self.roots[ri].pml4;
        for shift in [39u32, 30, 21] {
            let slot = table + ((va >> shift) & 0x1ff) * 8;
            let e = self.read_entry(slot);
            if e & P != 0 {
                table = e & MA_MASK;
                continue;
            }
            if !alloc {
                return Ok(None);
            }
            let f = self
                .pool
                .alloc(&self.ram)
                .ok_or(ShadowError::PoolExhausted)?
                .0;
            self.roots[ri].frames.push(f);
            // Rights are enforced at the leaf: upper levels allow all.
            self.write_entry(slot, f | P | RW | US | A);
            table = f;
        }
        Ok(Some(table + ((va >> 12) & 0x1ff) * 8))
    }

    fn read_entry(&self, ma: u64) -> u64 {
        self.ram.read_le(MachineAddr(ma), 8).unwrap_or(0)
    }

    fn write_entry(&self, ma: u64, v: u64) {
        let _ = self.ram.write_le(MachineAddr(ma), 8, v);
    }

    /// The shadow leaf of `va` in the current root (tests, displays).
    pub fn leaf_of(&mut self, va: u64) -> Option<u64> {
        let slot = self
            .leaf_slot((self.current, va & !(PAGE - 1)), false)
            .ok()??;
        let e = self.read_entry(slot);
        (e & P != 0).then_some(e)
    }

    /// Frames in use by the pool (tests).
    pub fn frames_in_use(&self) -> u64 {
        self.pool.in_use()
    }

    /// Guest-physical → machine, for the monitor's other parts.
    pub fn lookup(&self, pa: u64) -> Option<u64> {
        self.p2m.lookup(GuestPhysAddr(pa)).map(|m| m.0)
    }
}
