//! The software TLB: a direct-mapped cache from 4 KiB virtual pages to the
//! machine pages backing them, with the access rights already resolved.
//!
//! It sits on the interpreter's hot path, so a hit is: index by VA page
//! number, one tag compare, one rights-bit test, one add (the entry stores
//! `MA - VA`, as QEMU's softmmu does, so no masking or OR is needed).
//! Everything else (the walk, A/D updates, MMIO, faults) is the caller's slow
//! path, which ends with [`Tlb::insert`] for RAM-backed pages.
//!
//! Rules the caller follows, mirroring the architectural TLB (SDM 4.10.4):
//! * MOV to CR3: [`Tlb::flush_non_global`] (global entries survive).
//! * INVLPG: [`Tlb::invlpg`].
//! * Changes to CR0.PG/WP, CR4.PGE/PAE/PSE/SMEP or EFER.NXE:
//!   [`Tlb::flush_all`]. WP, SMEP and NXE are baked into the cached rights,
//!   so this is needed even where hardware would not flush.
//! * Only RAM pages are inserted; MMIO always takes the slow path.
//! * A hit only covers its own 4 KiB page: an access crossing the page end
//!   must be split (or sent to the slow path) by the caller.
//!
//! Writes get a fast path only once the leaf's Dirty flag is set: the first
//! write to a clean page misses, and the walk it triggers sets D as the
//! hardware would. Pages holding decoded code lose their write fast path
//! ([`Tlb::revoke_write`]) so that writes to them reach the slow path, which
//! invalidates the decoded-block cache.

use crate::addr::{GuestVirtAddr, MachineAddr};
use crate::paging::{cr0, cr4, efer, AccessKind, PagingMode, PagingRegs, Translation};
use std::fmt;

/// Number of entries (a power of two).
pub const TLB_ENTRIES: usize = 1024;

/// Rights bits: bit `kind` for supervisor accesses, bit `4 + kind` for user.
const SUP_SHIFT: u8 = 0;
const USER_SHIFT: u8 = 4;
const R: u8 = 1 << AccessKind::Read as u8;
const W: u8 = 1 << AccessKind::Write as u8;
const X: u8 = 1 << AccessKind::Execute as u8;
const WRITE_BITS: u8 = (W << SUP_SHIFT) | (W << USER_SHIFT);

/// A tag no page-aligned VA can equal.
const INVALID_TAG: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct TlbEntry {
    /// VA of the cached 4 KiB page, or [`INVALID_TAG`].
    tag: u64,
    /// `MA - VA` (wrapping) for this page.
    addend: u64,
    /// Allowed accesses, see `rights_bit`.
    rights: u8,
    /// Survives CR3 writes.
    global: bool,
    /// log2 of the page size of the mapping this piece came from.
    page_shift: u8,
}

impl TlbEntry {
    const INVALID: TlbEntry = TlbEntry {
        tag: INVALID_TAG,
        addend: 0,
        rights: 0,
        global: false,
        page_shift: 12,
    };

    fn valid(&self) -> bool {
        self.tag != INVALID_TAG
    }

    /// Whether this piece came from a large page containing `va`.
    fn large_covers(&self, va: u64) -> bool {
        self.valid() && self.page_shift > 12 && (self.tag ^ va) >> self.page_shift == 0
    }
}

#[inline(always)]
fn rights_bit(kind: AccessKind, user: bool) -> u8 {
    1 << ((kind as u8) | ((user as u8) << 2))
}

#[inline(always)]
fn index(va: u64) -> usize {
    (va >> 12) as usize & (TLB_ENTRIES - 1)
}

/// The software TLB. See the module documentation for the rules.
pub struct Tlb {
    entries: [TlbEntry; TLB_ENTRIES],
    /// Inclusive VA bounds of every large page with pieces cached since the
    /// bounds were last recomputed; INVLPG outside them skips the scan for
    /// large-page pieces. Empty when `large_lo > large_hi`.
    large_lo: u64,
    large_hi: u64,
    /// Inserts: every slow-path translation of a RAM page ends in one.
    /// Callers that miss without inserting (MMIO, faults) may count those
    /// here too. Not counted on the hit path.
    pub misses: u64,
    /// Full or non-global flushes.
    pub flushes: u64,
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Tlb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tlb")
            .field("valid", &self.entries.iter().filter(|e| e.valid()).count())
            .field("misses", &self.misses)
            .field("flushes", &self.flushes)
            .finish()
    }
}

impl Tlb {
    pub fn new() -> Tlb {
        Tlb {
            entries: [TlbEntry::INVALID; TLB_ENTRIES],
            large_lo: u64::MAX,
            large_hi: 0,
            misses: 0,
            flushes: 0,
        }
    }

    /// The machine address of `va` if its page is cached with `kind` allowed
    /// for this privilege; `None` means: take the slow path.
    #[inline(always)]
    pub fn lookup(&self, va: GuestVirtAddr, kind: AccessKind, user: bool) -> Option<MachineAddr> {
        let e = &self.entries[index(va.0)];
        if e.tag == va.0 & !0xfff && e.rights & rights_bit(kind, user) != 0 {
            Some(MachineAddr(va.0.wrapping_add(e.addend)))
        } else {
            None
        }
    }

    /// Cache the 4 KiB page containing `va`, backed by the machine page
    /// `ma_page`, after a successful walk `t` under `regs`.
    ///
    /// The rights for all three access kinds at both privileges are resolved
    /// here (SDM 4.6, with CR0.WP, CR4.SMEP and EFER.NXE), so the hit path
    /// tests one bit. Writes get a fast path only if `allow_write` (the page
    /// holds no decoded code), the leaf is dirty and the page is writable at
    /// that privilege. A large page is cached as the 4 KiB piece containing
    /// `va`; its size is kept so that INVLPG anywhere in it drops the piece.
    pub fn insert(
        &mut self,
        va: GuestVirtAddr,
        t: &Translation,
        ma_page: MachineAddr,
        regs: &PagingRegs,
        allow_write: bool,
    ) {
        self.misses += 1;
        let wp = regs.cr0 & cr0::WP != 0;
        let smep = regs.cr4 & cr4::SMEP != 0;
        let nx_active = regs.efer & efer::NXE != 0
            && matches!(regs.mode(), PagingMode::Pae | PagingMode::Level4);
        let exec = t.executable || !nx_active;
        let write_ok = allow_write && t.dirty;

        let mut sup = R;
        if write_ok && (t.writable || !wp) {
            sup |= W;
        }
        if exec && !(smep && t.user) {
            sup |= X;
        }
        let mut user = 0;
        if t.user {
            user |= R;
            if write_ok && t.writable {
                user |= W;
            }
            if exec {
                user |= X;
            }
        }

        let page_shift = if t.page_size.is_power_of_two() && t.page_size > 4096 {
            t.page_size.trailing_zeros() as u8
        } else {
            12
        };
        let tag = va.0 & !0xfff;
        self.entries[index(tag)] = TlbEntry {
            tag,
            addend: (ma_page.0 & !0xfff).wrapping_sub(tag),
            rights: (sup << SUP_SHIFT) | (user << USER_SHIFT),
            global: t.global,
            page_shift,
        };
        if page_shift > 12 {
            let lo = tag & !(t.page_size - 1);
            self.large_lo = self.large_lo.min(lo);
            self.large_hi = self.large_hi.max(lo | (t.page_size - 1));
        }
    }

    /// Drop everything, global entries included.
    pub fn flush_all(&mut self) {
        self.entries.fill(TlbEntry::INVALID);
        self.large_lo = u64::MAX;
        self.large_hi = 0;
        self.flushes += 1;
    }

    /// Drop every non-global entry: what a CR3 write does.
    pub fn flush_non_global(&mut self) {
        self.large_lo = u64::MAX;
        self.large_hi = 0;
        for e in self.entries.iter_mut() {
            if !e.global {
                *e = TlbEntry::INVALID;
            } else if e.valid() && e.page_shift > 12 {
                let size = 1u64 << e.page_shift;
                let lo = e.tag & !(size - 1);
                self.large_lo = self.large_lo.min(lo);
                self.large_hi = self.large_hi.max(lo | (size - 1));
            }
        }
        self.flushes += 1;
    }

    /// INVLPG: drop the translation of the page containing `va`, global or
    /// not, including every cached piece of a large page that contains it.
    pub fn invlpg(&mut self, va: GuestVirtAddr) {
        let e = &mut self.entries[index(va.0)];
        if e.tag == va.0 & !0xfff {
            *e = TlbEntry::INVALID;
        }
        if (self.large_lo..=self.large_hi).contains(&va.0) {
            for e in self.entries.iter_mut() {
                if e.large_covers(va.0) {
                    *e = TlbEntry::INVALID;
                }
            }
        }
    }

    /// Remove the write fast path from every entry mapping `ma_page`: the
    /// page now holds decoded code, and writes to it must reach the slow
    /// path so the decoded blocks can be invalidated.
    pub fn revoke_write(&mut self, ma_page: MachineAddr) {
        let target = ma_page.0 & !0xfff;
        for e in self.entries.iter_mut() {
            if e.valid() && e.tag.wrapping_add(e.addend) == target {
                e.rights &= !WRITE_BITS;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::GuestPhysAddr;

    const KINDS: [AccessKind; 3] = [AccessKind::Read, AccessKind::Write, AccessKind::Execute];

    fn long_mode(wp: bool, smep: bool, nxe: bool) -> PagingRegs {
        PagingRegs {
            cr0: cr0::PE | cr0::PG | if wp { cr0::WP } else { 0 },
            cr3: 0x1000,
            cr4: cr4::PAE | if smep { cr4::SMEP } else { 0 },
            efer: efer::LME | efer::LMA | if nxe { efer::NXE } else { 0 },
        }
    }

    fn tr(writable: bool, user: bool, executable: bool, dirty: bool) -> Translation {
        Translation {
            pa: GuestPhysAddr(0x5000),
            page_size: 4096,
            writable,
            user,
            executable,
            global: false,
            dirty,
        }
    }

    /// The (kind, user) pairs that hit after one insert.
    fn allowed(tlb: &Tlb, va: u64) -> Vec<(AccessKind, bool)> {
        let mut v = Vec::new();
        for user in [false, true] {
            for k in KINDS {
                if tlb.lookup(GuestVirtAddr(va), k, user).is_some() {
                    v.push((k, user));
                }
            }
        }
        v
    }

    #[test]
    fn hit_after_insert_gives_page_plus_offset() {
        let mut tlb = Tlb::new();
        let regs = long_mode(true, false, true);
        let va = GuestVirtAddr(0xffff_8000_1234_5000);
        assert_eq!(tlb.lookup(va.add(0x10), AccessKind::Read, false), None);
        tlb.insert(
            va.add(0x678),
            &tr(true, true, true, true),
            MachineAddr(0x9000),
            &regs,
            true,
        );
        assert_eq!(tlb.misses, 1);
        assert_eq!(
            tlb.lookup(va.add(0xabc), AccessKind::Read, false),
            Some(MachineAddr(0x9abc))
        );
        assert_eq!(
            tlb.lookup(va.add(0xfff), AccessKind::Write, true),
            Some(MachineAddr(0x9fff))
        );
        // Same index, different tag: a miss.
        let alias = GuestVirtAddr(va.0 + (TLB_ENTRIES as u64) * 4096);
        assert_eq!(tlb.lookup(alias, AccessKind::Read, false), None);
        // The next page: a miss.
        assert_eq!(tlb.lookup(va.add(0x1000), AccessKind::Read, false), None);
    }

    /// Registers, translation, and the (kind, user) pairs that must hit.
    type Case = (PagingRegs, Translation, Vec<(AccessKind, bool)>);

    #[test]
    fn rights_per_kind_and_privilege() {
        use AccessKind::*;
        let va = 0x40_0000;
        let ma = MachineAddr(0x1000);
        let cases: [Case; 6] = [
            // Supervisor page, read-only, WP=1: supervisor read/exec only.
            (
                long_mode(true, false, true),
                tr(false, false, true, true),
                vec![(Read, false), (Execute, false)],
            ),
            // Same with WP=0: supervisor may write.
            (
                long_mode(false, false, true),
                tr(false, false, true, true),
                vec![(Read, false), (Write, false), (Execute, false)],
            ),
            // User RW page, XD, NXE on: no fetches at all.
            (
                long_mode(true, false, true),
                tr(true, true, false, true),
                vec![(Read, false), (Write, false), (Read, true), (Write, true)],
            ),
            // User page with SMEP: supervisor may not fetch, user may.
            (
                long_mode(true, true, true),
                tr(true, true, true, true),
                vec![
                    (Read, false),
                    (Write, false),
                    (Read, true),
                    (Write, true),
                    (Execute, true),
                ],
            ),
            // User read-only page: user writes never, supervisor per WP=1.
            (
                long_mode(true, false, false),
                tr(false, true, true, true),
                vec![
                    (Read, false),
                    (Execute, false),
                    (Read, true),
                    (Execute, true),
                ],
            ),
            // NXE off: `executable` false cannot come from a walk, but the
            // rights still ignore it.
            (
                long_mode(true, false, false),
                tr(true, false, false, true),
                vec![(Read, false), (Write, false), (Execute, false)],
            ),
        ];
        for (i, (regs, t, want)) in cases.iter().enumerate() {
            let mut tlb = Tlb::new();
            tlb.insert(GuestVirtAddr(va), t, ma, regs, true);
            assert_eq!(&allowed(&tlb, va), want, "case {i}");
        }
    }

    #[test]
    fn writes_need_dirty_and_allow_write() {
        use AccessKind::*;
        let regs = long_mode(true, false, true);
        let va = GuestVirtAddr(0x7000);
        let mut tlb = Tlb::new();
        // Clean page: reads hit, writes miss (the walk must set D).
        tlb.insert(
            va,
            &tr(true, true, true, false),
            MachineAddr(0x3000),
            &regs,
            true,
        );
        assert!(tlb.lookup(va, Read, true).is_some());
        assert!(tlb.lookup(va, Write, true).is_none());
        assert!(tlb.lookup(va, Write, false).is_none());
        // After the write walk: dirty.
        tlb.insert(
            va,
            &tr(true, true, true, true),
            MachineAddr(0x3000),
            &regs,
            true,
        );
        assert!(tlb.lookup(va, Write, true).is_some());
        // Dirty but a code page: writes miss.
        tlb.insert(
            va,
            &tr(true, true, true, true),
            MachineAddr(0x3000),
            &regs,
            false,
        );
        assert!(tlb.lookup(va, Write, false).is_none());
        assert!(tlb.lookup(va, Execute, false).is_some());
    }

    #[test]
    fn global_entries_survive_cr3_writes() {
        let regs = long_mode(true, false, true);
        let mut tlb = Tlb::new();
        let mut g = tr(true, false, true, true);
        g.global = true;
        tlb.insert(GuestVirtAddr(0x1000), &g, MachineAddr(0x1000), &regs, true);
        tlb.insert(
            GuestVirtAddr(0x2000),
            &tr(true, false, true, true),
            MachineAddr(0x2000),
            &regs,
            true,
        );
        tlb.flush_non_global();
        assert!(tlb
            .lookup(GuestVirtAddr(0x1000), AccessKind::Read, false)
            .is_some());
        assert!(tlb
            .lookup(GuestVirtAddr(0x2000), AccessKind::Read, false)
            .is_none());
        tlb.flush_all();
        assert!(tlb
            .lookup(GuestVirtAddr(0x1000), AccessKind::Read, false)
            .is_none());
        assert_eq!(tlb.flushes, 2);
        // INVLPG drops global entries too.
        tlb.insert(GuestVirtAddr(0x1000), &g, MachineAddr(0x1000), &regs, true);
        tlb.invlpg(GuestVirtAddr(0x1fff));
        assert!(tlb
            .lookup(GuestVirtAddr(0x1000), AccessKind::Read, false)
            .is_none());
    }

    #[test]
    fn invlpg_drops_every_piece_of_a_large_page() {
        let regs = long_mode(true, false, true);
        let mut tlb = Tlb::new();
        let mut big = tr(true, false, true, true);
        big.page_size = 2 << 20;
        big.global = true;
        // Two pieces of the 2 MiB page at 0x20_0000, one 4 KiB page after it.
        tlb.insert(
            GuestVirtAddr(0x20_3000),
            &big,
            MachineAddr(0x40_3000),
            &regs,
            true,
        );
        tlb.insert(
            GuestVirtAddr(0x3f_f000),
            &big,
            MachineAddr(0x5f_f000),
            &regs,
            true,
        );
        tlb.insert(
            GuestVirtAddr(0x40_1000),
            &tr(true, false, true, true),
            MachineAddr(0x1000),
            &regs,
            true,
        );
        // INVLPG of an address in the large page that is not itself cached.
        tlb.invlpg(GuestVirtAddr(0x21_0000));
        assert!(tlb
            .lookup(GuestVirtAddr(0x20_3000), AccessKind::Read, false)
            .is_none());
        assert!(tlb
            .lookup(GuestVirtAddr(0x3f_f000), AccessKind::Read, false)
            .is_none());
        assert!(tlb
            .lookup(GuestVirtAddr(0x40_1000), AccessKind::Read, false)
            .is_some());
        // Large pieces survive CR3 writes when global, and are still found
        // by INVLPG afterwards.
        tlb.insert(
            GuestVirtAddr(0x20_3000),
            &big,
            MachineAddr(0x40_3000),
            &regs,
            true,
        );
        tlb.flush_non_global();
        assert!(tlb
            .lookup(GuestVirtAddr(0x20_3000), AccessKind::Read, false)
            .is_some());
        tlb.invlpg(GuestVirtAddr(0x20_0000));
        assert!(tlb
            .lookup(GuestVirtAddr(0x20_3000), AccessKind::Read, false)
            .is_none());
    }

    #[test]
    fn revoke_write_hits_every_alias() {
        use AccessKind::*;
        let regs = long_mode(true, false, true);
        let mut tlb = Tlb::new();
        let t = tr(true, true, true, true);
        tlb.insert(GuestVirtAddr(0x1000), &t, MachineAddr(0x8000), &regs, true);
        tlb.insert(
            GuestVirtAddr(0xffff_8000_0000_2000),
            &t,
            MachineAddr(0x8000),
            &regs,
            true,
        );
        tlb.insert(GuestVirtAddr(0x3000), &t, MachineAddr(0x9000), &regs, true);
        tlb.revoke_write(MachineAddr(0x8123));
        for va in [0x1000, 0xffff_8000_0000_2000] {
            assert!(tlb.lookup(GuestVirtAddr(va), Write, false).is_none());
            assert!(tlb.lookup(GuestVirtAddr(va), Write, true).is_none());
            assert!(tlb.lookup(GuestVirtAddr(va), Read, true).is_some());
            assert!(tlb.lookup(GuestVirtAddr(va), Execute, false).is_some());
        }
        assert!(tlb.lookup(GuestVirtAddr(0x3000), Write, true).is_some());
    }

    #[test]
    fn paging_disabled_identity() {
        let regs = PagingRegs::default();
        let mut tlb = Tlb::new();
        let t = Translation {
            pa: GuestPhysAddr(0xb8000),
            page_size: 4096,
            writable: true,
            user: true,
            executable: true,
            global: false,
            dirty: true,
        };
        tlb.insert(
            GuestVirtAddr(0xb8000),
            &t,
            MachineAddr(0xb8000),
            &regs,
            true,
        );
        assert_eq!(
            tlb.lookup(GuestVirtAddr(0xb8010), AccessKind::Write, false),
            Some(MachineAddr(0xb8010))
        );
    }
}
