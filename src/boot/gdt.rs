//! The boot GDT and the 32-bit flat protected-mode entry state shared by
//! the PVH and multiboot protocols.
//!
//! Both protocols start the kernel with paging off and flat 4 GiB segments
//! whose *hidden* descriptor caches are specified, while the GDT itself is
//! "undefined" (the kernel must load its own before reloading a selector).
//! ringside nonetheless writes a real GDT and points GDTR at it, with each
//! selector naming the descriptor its cache was built from. A kernel that
//! reloads a segment register before installing its own GDT then gets
//! exactly the segment it already had, on the interpreter and on KVM alike.
//!
//! | selector | descriptor           | raw value            |
//! |----------|----------------------|----------------------|
//! | 0x00     | null                 | 0                    |
//! | 0x08     | code: 32-bit, flat, execute/read, DPL 0 | 0x00cf9b000000ffff |
//! | 0x10     | data: 32-bit, flat, read/write, DPL 0   | 0x00cf93000000ffff |
//! | 0x18     | TSS: 32-bit busy, base 0, limit 0x67    | 0x00008b0000000067 |
//!
//! The accessed bits are set in the descriptors because the processor sets
//! them when it loads a selector (and VMX requires them in the caches), so
//! the memory image equals what a reload leaves behind.

use super::guest::GuestWriter;
use super::lowmem::GDT_ADDR;
use super::BootError;
use cpu::state::{cr0, rflags, seg_attr, DescTable, SegReg, Segment};
use cpu::CpuState;

/// Selector of the flat 32-bit code segment.
pub const SEL_CODE32: u16 = 0x08;
/// Selector of the flat 32-bit data segment.
pub const SEL_DATA32: u16 = 0x10;
/// Selector of the 32-bit TSS.
pub const SEL_TSS32: u16 = 0x18;

/// Flat 4 GiB ring-0 code: base 0, limit 0xfffff with G, D=1, type 0xb.
pub const DESC_CODE32: u64 = 0x00cf_9b00_0000_ffff;
/// Flat 4 GiB ring-0 data: base 0, limit 0xfffff with G, B=1, type 0x3.
pub const DESC_DATA32: u64 = 0x00cf_9300_0000_ffff;
/// 32-bit busy TSS, base 0, byte-granular limit 0x67 (the PVH ABI's TR).
pub const DESC_TSS32: u64 = 0x0000_8b00_0000_0067;

/// The GDT, indexed by selector >> 3.
pub const GDT: [u64; 4] = [0, DESC_CODE32, DESC_DATA32, DESC_TSS32];

/// Write [`GDT`] at [`GDT_ADDR`].
pub fn write_gdt(w: &GuestWriter) -> Result<(), BootError> {
    let bytes: Vec<u8> = GDT.iter().flat_map(|d| d.to_le_bytes()).collect();
    w.write(GDT_ADDR, &bytes)
}

/// GDTR value for [`GDT`] at [`GDT_ADDR`].
pub fn gdtr() -> DescTable {
    DescTable {
        base: GDT_ADDR,
        limit: (GDT.len() * 8 - 1) as u16,
    }
}

/// The state both 32-bit protocols enter with: protected mode, paging off,
/// CR0 = PE|ET, CR4 = EFER = 0, flat CS/DS/ES/SS/FS/GS from [`GDT`], TR the
/// busy TSS, LDTR unusable, IDTR empty (base 0, limit 0: any interrupt
/// before the kernel loads an IDT shuts the machine down, which is what
/// the protocols promise by requiring interrupts to be off), RFLAGS = 0x2,
/// all GPRs zero. The caller sets EAX/EBX.
pub fn protected_mode_state(entry: u32) -> CpuState {
    let mut s = CpuState::reset();
    let code = Segment::from_descriptor(SEL_CODE32, DESC_CODE32);
    let data = Segment::from_descriptor(SEL_DATA32, DESC_DATA32);
    for r in SegReg::ALL {
        *s.sreg_mut(r) = if r == SegReg::Cs { code } else { data };
    }
    s.tr = Segment::from_descriptor(SEL_TSS32, DESC_TSS32);
    s.ldtr = Segment {
        selector: 0,
        base: 0,
        limit: 0,
        attr: seg_attr::UNUSABLE,
    };
    s.gdtr = gdtr();
    s.idtr = DescTable { base: 0, limit: 0 };
    s.cr0 = cr0::PE | cr0::ET;
    s.cr4 = 0;
    s.efer = 0;
    s.rflags = rflags::FIXED1;
    s.gpr = [0; 16];
    s.rip = u64::from(entry);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpu::CpuMode;

    #[test]
    fn caches_match_descriptors() {
        let s = protected_mode_state(0x100000);
        assert_eq!(s.mode(), CpuMode::Protected32);
        assert_eq!(s.cpl(), 0);
        let cs = s.cs();
        assert_eq!((cs.selector, cs.base, cs.limit), (0x08, 0, 0xffff_ffff));
        assert_eq!(cs.attr & seg_attr::TYPE_MASK, 0xb);
        assert!(cs.big() && cs.present() && cs.is_code() && !cs.long());
        for r in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
            let d = s.sreg(r);
            assert_eq!((d.selector, d.base, d.limit), (0x10, 0, 0xffff_ffff));
            assert_eq!(d.attr & seg_attr::TYPE_MASK, 0x3);
            assert!(d.big() && d.present() && !d.is_code());
        }
        assert_eq!((s.tr.selector, s.tr.base, s.tr.limit), (0x18, 0, 0x67));
        assert_eq!(s.tr.attr & seg_attr::TYPE_MASK, 0xb);
        assert_eq!(s.tr.attr & seg_attr::S, 0);
        assert!(s.ldtr.unusable());
        assert_eq!(
            s.gdtr,
            DescTable {
                base: 0x500,
                limit: 31
            }
        );
        assert_eq!(s.cr0, 0x11);
        assert_eq!(s.rflags, 2);
        assert_eq!(s.rip, 0x100000);
    }
}
