//! The architectural state of one x86-64 logical processor.
//!
//! This is the state that every backend agrees on: the interpreter executes
//! on it directly, the KVM backend converts it to and from `kvm_regs` /
//! `kvm_sregs`, and the differential tests compare two copies of it. It holds
//! no caches and no backend details, so it can be moved between backends.

/// General-purpose register numbers, in the SDM's encoding order.
pub mod reg {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
}

/// RFLAGS bits.
pub mod rflags {
    pub const CF: u64 = 1 << 0;
    pub const FIXED1: u64 = 1 << 1;
    pub const PF: u64 = 1 << 2;
    pub const AF: u64 = 1 << 4;
    pub const ZF: u64 = 1 << 6;
    pub const SF: u64 = 1 << 7;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    pub const DF: u64 = 1 << 10;
    pub const OF: u64 = 1 << 11;
    pub const IOPL: u64 = 3 << 12;
    pub const IOPL_SHIFT: u32 = 12;
    pub const NT: u64 = 1 << 14;
    pub const RF: u64 = 1 << 16;
    pub const VM: u64 = 1 << 17;
    pub const AC: u64 = 1 << 18;
    pub const VIF: u64 = 1 << 19;
    pub const VIP: u64 = 1 << 20;
    pub const ID: u64 = 1 << 21;
    /// The six arithmetic status flags.
    pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;
}

/// CR0, CR4 and EFER bits: defined once in the mmu crate, whose walker
/// reads them too, and re-exported here for the CPU.
pub use mmu::regs::{cr0, cr4, efer};

/// MSR indices ringside models.
pub mod msr {
    pub const IA32_TSC: u32 = 0x10;
    pub const IA32_APIC_BASE: u32 = 0x1b;
    pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
    pub const IA32_TSC_ADJUST: u32 = 0x3b;
    pub const IA32_SYSENTER_CS: u32 = 0x174;
    pub const IA32_SYSENTER_ESP: u32 = 0x175;
    pub const IA32_SYSENTER_EIP: u32 = 0x176;
    pub const IA32_MISC_ENABLE: u32 = 0x1a0;
    pub const IA32_PAT: u32 = 0x277;
    pub const IA32_EFER: u32 = 0xc000_0080;
    pub const IA32_STAR: u32 = 0xc000_0081;
    pub const IA32_LSTAR: u32 = 0xc000_0082;
    pub const IA32_CSTAR: u32 = 0xc000_0083;
    pub const IA32_FMASK: u32 = 0xc000_0084;
    pub const IA32_FS_BASE: u32 = 0xc000_0100;
    pub const IA32_GS_BASE: u32 = 0xc000_0101;
    pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const IA32_TSC_AUX: u32 = 0xc000_0103;
}

/// MXCSR after RESET/INIT: all exceptions masked, round to nearest
/// (SDM Vol. 1, 10.2.3).
pub const MXCSR_RESET: u32 = 0x1f80;

/// The MXCSR bits ringside implements (and reports as FXSAVE's
/// MXCSR_MASK): flags, masks, rounding, FZ and DAZ (bits 0-15). Writing a
/// bit outside it is #GP(0). Intel's value; AMD parts may also implement
/// bit 17 (MM, misaligned-SSE mode), which ringside does not model.
pub const MXCSR_MASK: u32 = 0xffff;

/// Segment register numbers, in the SDM's Sreg encoding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SegReg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

impl SegReg {
    pub const ALL: [SegReg; 6] = [
        SegReg::Es,
        SegReg::Cs,
        SegReg::Ss,
        SegReg::Ds,
        SegReg::Fs,
        SegReg::Gs,
    ];
    pub fn name(self) -> &'static str {
        ["es", "cs", "ss", "ds", "fs", "gs"][self as usize]
    }
}

/// A segment register: the visible selector and the hidden descriptor cache.
///
/// `attr` uses the VMX "access rights" layout (SDM Vol. 3C, 24.4.1), which
/// is also how KVM's `kvm_segment` splits the fields:
/// bits 0-3 type, 4 S, 5-6 DPL, 7 P, 12 AVL, 13 L, 14 D/B, 15 G, 16 unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    pub selector: u16,
    pub base: u64,
    /// Limit in bytes (already scaled by G).
    pub limit: u32,
    pub attr: u32,
}

/// Access-rights bits of [`Segment::attr`].
pub mod seg_attr {
    pub const TYPE_MASK: u32 = 0xf;
    /// Data: accessed. Code: accessed.
    pub const TYPE_ACCESSED: u32 = 1;
    /// Data: writable. Code: readable.
    pub const TYPE_WR: u32 = 2;
    /// Data: expand-down. Code: conforming.
    pub const TYPE_EC: u32 = 4;
    /// Code (1) or data (0).
    pub const TYPE_CODE: u32 = 8;
    /// S: code/data (1) or system (0).
    pub const S: u32 = 1 << 4;
    pub const DPL_SHIFT: u32 = 5;
    pub const DPL_MASK: u32 = 3 << 5;
    pub const P: u32 = 1 << 7;
    pub const AVL: u32 = 1 << 12;
    pub const L: u32 = 1 << 13;
    pub const DB: u32 = 1 << 14;
    pub const G: u32 = 1 << 15;
    pub const UNUSABLE: u32 = 1 << 16;
}

impl Segment {
    /// A real-mode segment for `selector` (base = selector << 4, 64 KiB).
    pub fn real_mode(selector: u16, code: bool) -> Self {
        let ty = if code { 0xb } else { 0x3 };
        Segment {
            selector,
            base: (selector as u64) << 4,
            limit: 0xffff,
            attr: ty | seg_attr::S | seg_attr::P,
        }
    }
    /// Descriptor privilege level.
    #[inline(always)]
    pub fn dpl(&self) -> u8 {
        ((self.attr & seg_attr::DPL_MASK) >> seg_attr::DPL_SHIFT) as u8
    }
    #[inline(always)]
    pub fn present(&self) -> bool {
        self.attr & seg_attr::P != 0
    }
    #[inline(always)]
    pub fn is_code(&self) -> bool {
        self.attr & seg_attr::S != 0 && self.attr & seg_attr::TYPE_CODE != 0
    }
    /// L bit: a 64-bit code segment.
    #[inline(always)]
    pub fn long(&self) -> bool {
        self.attr & seg_attr::L != 0
    }
    /// D/B bit: 32-bit default operand size / stack size.
    #[inline(always)]
    pub fn big(&self) -> bool {
        self.attr & seg_attr::DB != 0
    }
    #[inline(always)]
    pub fn unusable(&self) -> bool {
        self.attr & seg_attr::UNUSABLE != 0
    }
    /// Decode an 8-byte legacy descriptor into a hidden cache.
    pub fn from_descriptor(selector: u16, desc: u64) -> Self {
        let base = ((desc >> 16) & 0xff_ffff) | (((desc >> 56) & 0xff) << 24);
        let raw_limit = ((desc & 0xffff) | ((desc >> 32) & 0xf_0000)) as u32;
        let attr = ((desc >> 40) & 0xff) as u32 | ((((desc >> 52) & 0xf) as u32) << 12);
        let limit = if attr & seg_attr::G != 0 {
            (raw_limit << 12) | 0xfff
        } else {
            raw_limit
        };
        Segment {
            selector,
            base,
            limit,
            attr,
        }
    }
}

/// GDTR / IDTR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DescTable {
    pub base: u64,
    pub limit: u16,
}

/// The model-specific registers that are plain storage. FS/GS base live in
/// the segment caches; EFER is a field of [`CpuState`] because the hot path
/// reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsrFile {
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub fmask: u64,
    pub kernel_gs_base: u64,
    /// TSC = host-derived counter + `tsc_offset` (set by WRMSR IA32_TSC).
    pub tsc_offset: u64,
    pub tsc_aux: u64,
    pub apic_base: u64,
    pub pat: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub misc_enable: u64,
}

/// Event-blocking state that lives between instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interruptibility {
    /// STI or MOV SS/POP SS retired just before: block interrupts (and
    /// single-step traps) for one instruction.
    pub shadow: bool,
    /// An NMI is being handled: block further NMIs until IRET.
    pub nmi_blocked: bool,
}

/// An x87 register value in the 80-bit double extended-precision format:
/// sign and 15-bit biased exponent, and the 64-bit significand with its
/// explicit integer bit (bit 63). Arithmetic on it is in
/// `insn/x87/softfloat.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct F80 {
    /// Bit 15: sign; bits 14-0: biased exponent.
    pub se: u16,
    pub sig: u64,
}

impl F80 {
    /// The 10-byte memory image (little-endian, significand first).
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.sig.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }
    pub fn from_bytes(b: [u8; 10]) -> F80 {
        let [s0, s1, s2, s3, s4, s5, s6, s7, e0, e1] = b;
        F80 {
            sig: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
            se: u16::from_le_bytes([e0, e1]),
        }
    }
}

/// FSW bits (SDM Vol. 1, Figure 8-4). The exception flags (bits 0-5) are
/// the FCW mask bits' positions.
pub mod fsw {
    pub const IE: u16 = 1 << 0;
    pub const SF: u16 = 1 << 6;
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u32 = 11;
    pub const TOP: u16 = 7 << 11;
    pub const C3: u16 = 1 << 14;
    pub const B: u16 = 1 << 15;
}

/// The x87 FPU state (SDM Vol. 1, 8.1).
///
/// The tag word is kept abridged (bit i set = physical register Ri is
/// not empty), as the processor does since the Pentium Pro: the full
/// 2-bit tags that FNSTENV/FNSAVE store are computed from the register
/// contents, and FLDENV/FRSTOR take only "empty or not" from them
/// (SDM Vol. 1, 8.1.7 and 10.5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct X87State {
    /// Physical registers R0-R7 (ST(i) is R((TOP + i) mod 8)).
    pub regs: [F80; 8],
    pub fcw: u16,
    /// FSW including TOP (bits 11-13).
    pub fsw: u16,
    /// Abridged tag word.
    pub ftw: u8,
    /// Last x87 opcode (11 bits). Not recorded by ringside (always 0).
    pub fop: u16,
    /// Last instruction pointer (offset) and CS selector.
    pub fip: u64,
    pub fcs: u16,
    /// Last data pointer (offset) and its segment selector.
    pub fdp: u64,
    pub fds: u16,
}

impl X87State {
    /// After RESET: FCW = 0x0040, everything else 0, all registers empty
    /// (SDM Vol. 3A, Table 9-1).
    pub const fn power_on() -> Self {
        X87State {
            regs: [F80 { se: 0, sig: 0 }; 8],
            fcw: 0x0040,
            fsw: 0,
            ftw: 0,
            fop: 0,
            fip: 0,
            fcs: 0,
            fdp: 0,
            fds: 0,
        }
    }
    /// After FNINIT: FCW = 0x037F, FSW = 0, all empty, pointers cleared;
    /// the registers keep their contents.
    pub fn init(&mut self) {
        *self = X87State {
            regs: self.regs,
            fcw: 0x037f,
            ..X87State::power_on()
        };
    }
    pub fn top(&self) -> usize {
        ((self.fsw & fsw::TOP) >> fsw::TOP_SHIFT) as usize
    }
}

/// The whole architectural state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuState {
    pub gpr: [u64; 16],
    pub rip: u64,
    /// Fully materialized RFLAGS (bit 1 always set).
    pub rflags: u64,
    pub seg: [Segment; 6],
    pub ldtr: Segment,
    pub tr: Segment,
    pub gdtr: DescTable,
    pub idtr: DescTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    /// DR0-DR3, (DR4/DR5 alias DR6/DR7), DR6 at index 6, DR7 at index 7.
    pub dr: [u64; 8],
    pub efer: u64,
    pub msr: MsrFile,
    pub xcr0: u64,
    /// XMM0-XMM15 (SSE). Element 0 of a vector is the low bits (bit 0 of
    /// the u128 is bit 0 of XMMn), as in memory (little-endian).
    pub xmm: [u128; 16],
    /// MXCSR: SSE control and status (SDM Vol. 1, 10.2.3).
    pub mxcsr: u32,
    /// The x87 FPU (SDM Vol. 1, 8.1).
    pub x87: X87State,
    pub intr: Interruptibility,
    /// The processor is in the HLT state, waiting for an event.
    pub halted: bool,
}

impl Default for CpuState {
    fn default() -> Self {
        Self::reset()
    }
}

impl CpuState {
    /// The power-on / RESET state (SDM Vol. 3A, Table 9-1), except that CS
    /// is 0xf000 with base 0xffff0000 as on real hardware.
    pub fn reset() -> Self {
        let data = Segment::real_mode(0, false);
        let mut cs = Segment::real_mode(0xf000, true);
        cs.base = 0xffff_0000;
        let mut seg = [data; 6];
        seg[SegReg::Cs as usize] = cs;
        CpuState {
            gpr: [0; 16],
            rip: 0xfff0,
            rflags: rflags::FIXED1,
            seg,
            ldtr: Segment {
                selector: 0,
                base: 0,
                limit: 0xffff,
                attr: 0x2 | seg_attr::P,
            },
            tr: Segment {
                selector: 0,
                base: 0,
                limit: 0xffff,
                attr: 0xb | seg_attr::P,
            },
            gdtr: DescTable {
                base: 0,
                limit: 0xffff,
            },
            idtr: DescTable {
                base: 0,
                limit: 0xffff,
            },
            cr0: cr0::ET | cr0::NW | cr0::CD,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            dr: [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400],
            efer: 0,
            msr: MsrFile {
                apic_base: 0xfee0_0000 | (1 << 11) | (1 << 8),
                pat: 0x0007_0406_0007_0406,
                misc_enable: 1,
                ..MsrFile::default()
            },
            xcr0: 1,
            xmm: [0; 16],
            mxcsr: MXCSR_RESET,
            x87: X87State::power_on(),
            intr: Interruptibility::default(),
            halted: false,
        }
    }

    #[inline(always)]
    pub fn cs(&self) -> &Segment {
        &self.seg[SegReg::Cs as usize]
    }
    #[inline(always)]
    pub fn ss(&self) -> &Segment {
        &self.seg[SegReg::Ss as usize]
    }
    #[inline(always)]
    pub fn sreg(&self, s: SegReg) -> &Segment {
        &self.seg[s as usize]
    }
    #[inline(always)]
    pub fn sreg_mut(&mut self, s: SegReg) -> &mut Segment {
        &mut self.seg[s as usize]
    }

    /// Current privilege level: CS.DPL in protected mode (SS.DPL equals it;
    /// we use the CS cache as KVM does), 0 in real mode, 3 in virtual-8086.
    #[inline(always)]
    pub fn cpl(&self) -> u8 {
        if self.cr0 & cr0::PE == 0 {
            0
        } else if self.rflags & rflags::VM != 0 {
            3
        } else {
            self.cs().dpl()
        }
    }

    /// The execution mode, as the decoder and the TUI need it.
    pub fn mode(&self) -> CpuMode {
        if self.cr0 & cr0::PE == 0 {
            CpuMode::Real
        } else if self.rflags & rflags::VM != 0 {
            CpuMode::Virtual8086
        } else if self.efer & efer::LMA != 0 {
            if self.cs().long() {
                CpuMode::Long64
            } else if self.cs().big() {
                CpuMode::Compat32
            } else {
                CpuMode::Compat16
            }
        } else if self.cs().big() {
            CpuMode::Protected32
        } else {
            CpuMode::Protected16
        }
    }

    /// Code bitness for the decoder: 16, 32 or 64.
    #[inline(always)]
    pub fn code_bitness(&self) -> u32 {
        match self.mode() {
            CpuMode::Long64 => 64,
            CpuMode::Compat32 | CpuMode::Protected32 => 32,
            _ => {
                if self.cr0 & cr0::PE == 0 && self.cs().big() {
                    // "Unreal" 32-bit code segment loaded before leaving PE.
                    32
                } else {
                    16
                }
            }
        }
    }

    /// The IOPL field of RFLAGS.
    #[inline(always)]
    pub fn iopl(&self) -> u8 {
        ((self.rflags & rflags::IOPL) >> rflags::IOPL_SHIFT) as u8
    }
}

/// The processor's operating mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuMode {
    Real,
    Virtual8086,
    Protected16,
    Protected32,
    /// IA-32e compatibility mode with a 16-bit code segment.
    Compat16,
    /// IA-32e compatibility mode with a 32-bit code segment.
    Compat32,
    /// IA-32e 64-bit mode.
    Long64,
}

impl CpuMode {
    pub fn name(self) -> &'static str {
        match self {
            CpuMode::Real => "real",
            CpuMode::Virtual8086 => "vm86",
            CpuMode::Protected16 => "protected16",
            CpuMode::Protected32 => "protected32",
            CpuMode::Compat16 => "compat16",
            CpuMode::Compat32 => "compat32",
            CpuMode::Long64 => "long64",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_decoding() {
        // Flat 4 GiB ring-0 code, 32-bit: 0x00cf9a000000ffff
        let s = Segment::from_descriptor(0x08, 0x00cf_9a00_0000_ffff);
        assert_eq!(s.base, 0);
        assert_eq!(s.limit, 0xffff_ffff);
        assert!(s.is_code() && s.big() && s.present() && !s.long());
        assert_eq!(s.dpl(), 0);
        // 64-bit ring-3 code: 0x00affa000000ffff
        let s = Segment::from_descriptor(0x33, 0x00af_fa00_0000_ffff);
        assert!(s.long());
        assert_eq!(s.dpl(), 3);
    }

    #[test]
    fn reset_state_is_real_mode() {
        let s = CpuState::reset();
        assert_eq!(s.mode(), CpuMode::Real);
        assert_eq!(s.cpl(), 0);
        assert_eq!(s.code_bitness(), 16);
    }
}
