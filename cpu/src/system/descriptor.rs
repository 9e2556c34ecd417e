//! Segment descriptors in the GDT/LDT (SDM Vol. 3A, 3.4-3.5) and gate
//! descriptors in the IDT/GDT/LDT (5.8.3, 6.11, 6.14.1).
//!
//! Descriptor-table reads are implicit supervisor accesses: they are made
//! with `user = false` even at CPL 3.

use super::long_mode;
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{seg_attr, Segment};

/// System-descriptor types (S = 0), SDM Table 3-2.
pub(crate) mod sys_type {
    pub const TSS16_AVAIL: u8 = 0x1;
    pub const LDT: u8 = 0x2;
    pub const TSS16_BUSY: u8 = 0x3;
    pub const CALL_GATE16: u8 = 0x4;
    pub const TASK_GATE: u8 = 0x5;
    pub const INT_GATE16: u8 = 0x6;
    pub const TRAP_GATE16: u8 = 0x7;
    pub const TSS_AVAIL: u8 = 0x9;
    pub const TSS_BUSY: u8 = 0xb;
    pub const CALL_GATE: u8 = 0xc;
    pub const INT_GATE: u8 = 0xe;
    pub const TRAP_GATE: u8 = 0xf;
}

/// Error code for a selector: index and TI kept, RPL bits replaced by the
/// EXT bit (SDM 6.13).
#[inline]
pub(crate) fn sel_code(sel: u16, ext: bool) -> u32 {
    (sel as u32 & 0xfffc) | ext as u32
}

/// One raw descriptor as read from a table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Desc {
    /// The selector used to find it.
    pub sel: u16,
    /// Low 8 bytes.
    pub raw: u64,
    /// Linear address of the descriptor (for the Accessed/Busy write-back).
    pub addr: u64,
}

impl Desc {
    #[inline]
    pub fn attr_byte(&self) -> u8 {
        (self.raw >> 40) as u8
    }
    /// S = 1: code or data.
    #[inline]
    pub fn is_code_data(&self) -> bool {
        self.attr_byte() & 0x10 != 0
    }
    #[inline]
    pub fn typ(&self) -> u8 {
        self.attr_byte() & 0xf
    }
    #[inline]
    pub fn dpl(&self) -> u8 {
        (self.attr_byte() >> 5) & 3
    }
    #[inline]
    pub fn present(&self) -> bool {
        self.attr_byte() & 0x80 != 0
    }
    #[inline]
    pub fn is_code(&self) -> bool {
        self.is_code_data() && self.typ() & 8 != 0
    }
    #[inline]
    pub fn is_data(&self) -> bool {
        self.is_code_data() && self.typ() & 8 == 0
    }
    /// Code: conforming.
    #[inline]
    pub fn conforming(&self) -> bool {
        self.is_code() && self.typ() & 4 != 0
    }
    /// Code: readable. Data: writable.
    #[inline]
    pub fn rw(&self) -> bool {
        self.typ() & 2 != 0
    }
    /// L bit (64-bit code segment).
    #[inline]
    pub fn long(&self) -> bool {
        self.raw & (1 << 53) != 0
    }
    /// D/B bit.
    #[inline]
    pub fn big(&self) -> bool {
        self.raw & (1 << 54) != 0
    }
    /// A 64-bit code segment (L = 1, D = 0): the only kind IA-32e gates
    /// may target.
    #[inline]
    pub fn is_64bit_code(&self) -> bool {
        self.is_code() && self.long() && !self.big()
    }
    /// The hidden-cache image of this descriptor, loaded with selector
    /// `sel`, with the Accessed bit set (it is set in memory on load).
    pub fn segment_cache(&self, sel: u16) -> Segment {
        let mut s = Segment::from_descriptor(sel, self.raw);
        if self.is_code_data() {
            s.attr |= seg_attr::TYPE_ACCESSED;
        }
        s
    }
    /// Gate fields (call/interrupt/trap/task gates): target selector.
    #[inline]
    pub fn gate_selector(&self) -> u16 {
        (self.raw >> 16) as u16
    }
    /// Gate offset bits 31:0 (bits 15:0 only for 16-bit gates).
    #[inline]
    pub fn gate_offset32(&self) -> u64 {
        (self.raw & 0xffff) | ((self.raw >> 32) & 0xffff_0000)
    }
    /// Call-gate parameter count.
    #[inline]
    pub fn gate_param_count(&self) -> u8 {
        ((self.raw >> 32) & 0x1f) as u8
    }
}

/// Fetch the descriptor selected by `sel` from the GDT or LDT.
///
/// #GP(sel|ext) if the selector's index is beyond the table limit, or if
/// it references the LDT while LDTR is null. The caller checks for the null
/// selector first (its rules differ per use).
pub(crate) fn fetch(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    sel: u16,
    ext: bool,
) -> Result<Desc, Fault> {
    let (base, limit) = table_of(cpu, sel);
    let idx = (sel & 0xfff8) as u64;
    let Some(limit) = limit else {
        return Err(Fault::gp(sel_code(sel, ext)));
    };
    if idx + 7 > limit {
        return Err(Fault::gp(sel_code(sel, ext)));
    }
    let addr = table_addr(cpu, base, idx);
    let raw = cpu.lin_read(plat, addr, 8, false)?;
    Ok(Desc { sel, raw, addr })
}

/// Fetch the upper 8 bytes of a 16-byte system descriptor (IA-32e mode
/// LDT/TSS descriptors and call gates), #GP(sel) if they pass the limit.
pub(crate) fn fetch_high(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    d: &Desc,
    ext: bool,
) -> Result<u64, Fault> {
    let (_, limit) = table_of(cpu, d.sel);
    let idx = (d.sel & 0xfff8) as u64;
    match limit {
        Some(l) if idx + 15 <= l => {}
        _ => return Err(Fault::gp(sel_code(d.sel, ext))),
    }
    cpu.lin_read(plat, d.addr.wrapping_add(8), 8, false)
}

/// Base and limit of the table a selector refers to (`None` limit: the
/// LDT is not usable).
fn table_of(cpu: &Cpu, sel: u16) -> (u64, Option<u64>) {
    if sel & 4 != 0 {
        let l = &cpu.state.ldtr;
        if l.unusable() || l.selector & 0xfffc == 0 || !l.present() {
            (0, None)
        } else {
            (l.base, Some(l.limit as u64))
        }
    } else {
        (cpu.state.gdtr.base, Some(cpu.state.gdtr.limit as u64))
    }
}

/// Linear address of a table entry: 32-bit wrap outside IA-32e mode.
pub(crate) fn table_addr(cpu: &Cpu, base: u64, off: u64) -> u64 {
    let a = base.wrapping_add(off);
    if long_mode(cpu) {
        a
    } else {
        a & 0xffff_ffff
    }
}

/// Set the Accessed bit of a code/data descriptor in memory, if clear. (A
/// read-only GDT with preset Accessed bits, as Linux uses, is never written.)
pub(crate) fn set_accessed(cpu: &mut Cpu, plat: &mut dyn Platform, d: &Desc) -> Result<(), Fault> {
    if d.is_code_data() && d.typ() & 1 == 0 {
        let a = d.addr.wrapping_add(5);
        let b = cpu.lin_read(plat, a, 1, false)?;
        cpu.lin_write(plat, a, 1, b | 1, false)?;
    }
    Ok(())
}

/// Mark a TSS descriptor busy in memory (LTR).
pub(crate) fn set_busy(cpu: &mut Cpu, plat: &mut dyn Platform, d: &Desc) -> Result<(), Fault> {
    let a = d.addr.wrapping_add(5);
    let b = cpu.lin_read(plat, a, 1, false)?;
    cpu.lin_write(plat, a, 1, b | 2, false)
}

/// A null segment register image (selector keeps its RPL). Used for
/// DS/ES/FS/GS null loads and for the null SS of IA-32e mode, where the
/// DPL field keeps the RPL so SS.DPL = CPL still holds (as VMX requires).
pub(crate) fn null_segment(sel: u16) -> Segment {
    Segment {
        selector: sel,
        base: 0,
        limit: 0,
        attr: seg_attr::UNUSABLE | (((sel & 3) as u32) << seg_attr::DPL_SHIFT),
    }
}
