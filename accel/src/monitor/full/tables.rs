//! The real CPU's descriptor tables: the monitor's shadow GDT, its IDT and
//! its TSS, in the monitor's area ([`super::shadow::MON_BASE`]).
//!
//! The real CPU runs the guest kernel at CPL 1, so a segment load of one of
//! the guest's DPL-0 descriptors would fault there. The shadow GDT is the
//! guest's GDT with DPL 0 → 1 on code and data descriptors (and their
//! Accessed bits pre-set, so the real CPU never writes the read-only
//! table), followed by the monitor's own 64-bit TSS descriptor. It is
//! rebuilt whenever the guest loads GDTR, TR or LDTR.
//!
//! The IDT is never used for delivery (every exception exits to the
//! monitor, which delivers through the guest's IDT on its virtual CPU);
//! it exists because SIDT must show *something* — the monitor's address,
//! which is how `hole` catches trap-only mode. The TSS has no I/O bitmap,
//! so IN/OUT at the deprivileged CPL always fault.

use super::shadow::{MonitorArea, GDT_PAGES, GDT_VA, IDT_VA, TSS_VA};
use cpu::state::{DescTable, Segment};
use mmu::{GuestRam, MachineAddr};

/// The real CPU's GDTR, IDTR base and TR, derived from the guest's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealTables {
    pub gdtr: DescTable,
    pub tr: Segment,
}

/// Bytes of GDT the shadow can hold.
const GDT_BYTES: usize = GDT_PAGES * 4096;
/// TSS size without an I/O bitmap.
const TSS_LIMIT: u32 = 0x67;
/// Present, busy 64-bit TSS (type 0xB).
const TSS_ATTR: u32 = 0x8b;

/// Adjust one 8-byte guest descriptor for the real CPU: code/data
/// descriptors with DPL 0 get DPL 1 and their Accessed bit.
pub fn compress_descriptor(d: u64) -> u64 {
    let s = d & (1 << 44) != 0;
    let present = d & (1 << 47) != 0;
    if !s || !present {
        return d;
    }
    let mut d = d | (1 << 40);
    if (d >> 45) & 3 == 0 {
        d |= 1 << 45;
    }
    d
}

/// Write the shadow GDT from the guest's table bytes (`guest`, which is
/// GDTR.limit + 1 long, with unreadable parts zero) and return the
/// registers the real CPU loads.
pub fn build(ram: &GuestRam, area: &MonitorArea, guest: &[u8]) -> RealTables {
    let mut out = vec![0u8; GDT_BYTES];
    let n = guest.len().min(GDT_BYTES);
    for (dst, src) in out.chunks_mut(8).zip(guest[..n].chunks(8)) {
        let mut b = [0u8; 8];
        b[..src.len()].copy_from_slice(src);
        let d = compress_descriptor(u64::from_le_bytes(b));
        dst.copy_from_slice(&d.to_le_bytes()[..dst.len()]);
    }
    // The monitor's TSS descriptor, after the guest's entries.
    let tss_off = n.div_ceil(8) * 8;
    let (limit, tr_sel) = if tss_off + 16 <= GDT_BYTES && tss_off > 0 {
        let lo = (u64::from(TSS_LIMIT) & 0xffff)
            | ((TSS_VA & 0xff_ffff) << 16)
            | (u64::from(TSS_ATTR) << 40)
            | (((TSS_VA >> 24) & 0xff) << 56);
        let hi = TSS_VA >> 32;
        out[tss_off..tss_off + 8].copy_from_slice(&lo.to_le_bytes());
        out[tss_off + 8..tss_off + 16].copy_from_slice(&hi.to_le_bytes());
        ((tss_off + 15) as u16, tss_off as u16)
    } else {
        (n.saturating_sub(1) as u16, 0)
    };
    for (page, frame) in out.chunks(4096).zip(area.gdt.iter()) {
        let _ = ram.write(MachineAddr(*frame), page);
    }
    // The TSS: RSP0..2 and ISTs unused (the real CPU delivers nothing);
    // the I/O map base points past the limit: no bitmap.
    let _ = ram.write_le(MachineAddr(area.tss + 0x66), 2, u64::from(TSS_LIMIT) + 1);
    RealTables {
        gdtr: DescTable {
            base: GDT_VA,
            limit,
        },
        tr: Segment {
            selector: tr_sel,
            base: TSS_VA,
            limit: TSS_LIMIT,
            attr: TSS_ATTR,
        },
    }
}

/// The real IDTR for a guest IDTR.
pub fn real_idtr(guest: &DescTable) -> DescTable {
    DescTable {
        base: IDT_VA,
        limit: guest.limit,
    }
}
