//! The virtual CPU's state and the real CPU's: how each is derived from
//! the other (ring compression), and reads of guest memory through the
//! guest's own translation.
//!
//! **Ring compression.** The guest kernel (virtual CPL 0) really runs at
//! CPL 1: its CS/SS selectors carry RPL 1 and its code/data segments'
//! cached DPL is 1. CPL 1 rather than 3 (the other classic choice, used by
//! x86-64 Xen PV and kvm-pvm) because it keeps the guest kernel
//! *supervisor* for paging: one shadow entry's U/S bit then protects guest
//! kernel pages from guest user code exactly as the guest's U/S bit says,
//! without a second set of shadow tables per privilege level, and
//! privileged instructions still fault (they need CPL 0). The price is
//! 64-bit mode's lack of segment limits: nothing stops CPL 1 code from
//! reading the monitor's (read-only, supervisor) area — the same hole
//! VMware's 64-bit monitor closed with hardware assist.
//!
//! The real RFLAGS has IF = 1 while the guest kernel runs (the monitor
//! owns interrupts; guest user code sees its virtual IF, see
//! [`derive_real`]) and always IOPL = 0 (so CLI/STI/IN/OUT fault at CPL 1
//! and 3); the virtual CPU keeps the guest's IF and IOPL. The real CPU is always in IA-32e mode with paging
//! on; a 32-bit guest runs in compatibility mode with its own CS.L = 0
//! descriptor.

use super::tables::{real_idtr, RealTables};
use cpu::state::{cr0, cr4, efer, rflags, CpuState, SegReg, Segment};
use iced_x86::{Decoder, DecoderOptions, Instruction};
use mmu::paging::{walk_debug, PagingRegs};
use mmu::{GuestRam, GuestVirtAddr, MachineAddr, MappedPtes, P2m};

/// CR0 bits the real CPU always has.
pub const REAL_CR0: u64 = cr0::PE | cr0::PG | cr0::WP | cr0::NE | cr0::ET;
/// Guest CR0 bits copied to the real CR0 (FPU and alignment behaviour).
pub const CR0_PASSTHROUGH: u64 = cr0::MP | cr0::EM | cr0::TS | cr0::AM;
/// Guest CR4 bits copied to the real CR4: they make the same instructions
/// fault at CPL 1 and 3 as the guest expects at 0 and 3 (TSD, PCE), or
/// follow the shadow's U/S bits (SMEP).
pub const CR4_PASSTHROUGH: u64 = cr4::TSD | cr4::PCE | cr4::SMEP;
/// RFLAGS bits that only the virtual CPU holds.
pub const RFLAGS_VIRTUAL: u64 = rflags::IF | rflags::IOPL | rflags::VM | rflags::VIF | rflags::VIP;

/// The guest's paging registers.
pub fn paging_regs(v: &CpuState) -> PagingRegs {
    PagingRegs {
        cr0: v.cr0,
        cr3: v.cr3,
        cr4: v.cr4,
        efer: v.efer,
    }
}

/// Why the monitor can't run this virtual state, if it can't.
pub fn unsupported(v: &CpuState) -> Option<String> {
    if v.cr0 & cr0::PE == 0 {
        return Some(
            "the guest is in real mode: the trap-and-emulate monitor needs a kernel that \
             starts (and stays) in protected mode: PVH or multiboot"
                .into(),
        );
    }
    if v.rflags & rflags::VM != 0 {
        return Some(
            "the guest entered virtual-8086 mode, which the monitor does not virtualize".into(),
        );
    }
    let cpl = v.cpl();
    if cpl == 1 || cpl == 2 {
        return Some(format!(
            "the guest runs code at CPL {cpl}: ring compression leaves no ring for it (the guest kernel itself runs at CPL 1)"
        ));
    }
    None
}

/// Deprivilege one segment: DPL 0 → 1 (and RPL 0 → 1 for CS/SS).
pub fn compress_seg(s: &Segment, rpl: bool) -> Segment {
    let mut s = *s;
    if s.dpl() == 0 {
        s.attr |= 1 << cpu::state::seg_attr::DPL_SHIFT;
    }
    if rpl && s.selector & 3 == 0 {
        s.selector |= 1;
    }
    s
}

/// Undo [`compress_seg`]: what the guest believes it loaded.
pub fn decompress_seg(s: &Segment) -> Segment {
    let mut s = *s;
    if s.dpl() == 1 {
        s.attr &= !cpu::state::seg_attr::DPL_MASK;
    }
    if s.selector & 3 == 1 {
        s.selector &= !3;
    }
    s
}

/// Copy what the real CPU changed while running guest code into the
/// virtual state: registers, RIP, the unprivileged flags, segments.
pub fn absorb_real(real: &CpuState, v: &mut CpuState) {
    v.gpr = real.gpr;
    v.rip = real.rip;
    v.rflags = (real.rflags & !RFLAGS_VIRTUAL) | (v.rflags & RFLAGS_VIRTUAL) | rflags::FIXED1;
    for s in SegReg::ALL {
        v.seg[s as usize] = decompress_seg(&real.seg[s as usize]);
    }
    v.intr.shadow = real.intr.shadow;
    v.intr.nmi_blocked = real.intr.nmi_blocked;
}

/// The real state for virtual state `v`: the guest's registers, the
/// monitor's system state. `root` is the shadow PML4.
pub fn derive_real(v: &CpuState, real: &mut CpuState, root: u64, tables: &RealTables) {
    real.gpr = v.gpr;
    real.rip = v.rip;
    let kernel = v.cpl() == 0;
    // Guest user code runs untranslated and sees the real IF: there it is
    // the virtual IF (harmless: with IF = 0 the guest can't take an
    // interrupt anyway). The guest kernel's IF is the monitor's (1).
    let if_bit = if kernel {
        rflags::IF
    } else {
        v.rflags & rflags::IF
    };
    real.rflags = (v.rflags & !RFLAGS_VIRTUAL) | if_bit | rflags::FIXED1;
    for s in SegReg::ALL {
        let rpl = kernel && matches!(s, SegReg::Cs | SegReg::Ss);
        real.seg[s as usize] = compress_seg(&v.seg[s as usize], rpl);
    }
    real.ldtr = v.ldtr;
    real.tr = tables.tr;
    real.gdtr = tables.gdtr;
    real.idtr = real_idtr(&v.idtr);
    real.cr0 = REAL_CR0 | (v.cr0 & CR0_PASSTHROUGH);
    real.cr2 = v.cr2;
    real.cr3 = root;
    real.cr4 = cr4::PAE | (v.cr4 & CR4_PASSTHROUGH);
    real.cr8 = v.cr8;
    real.dr = v.dr;
    real.efer = efer::LME | efer::LMA | efer::NXE;
    real.msr = v.msr;
    // SYSENTER with a zero SYSENTER_CS faults (#GP) instead of entering
    // the guest kernel at real CPL 0; the virtual CPU then emulates it.
    real.msr.sysenter_cs = 0;
    real.xcr0 = v.xcr0;
    real.intr = v.intr;
    real.halted = false;
}

/// Read guest-linear memory through the guest's paging (no A/D updates),
/// page by page. False if any byte is not guest RAM.
pub fn read_linear(ram: &GuestRam, p2m: &P2m, regs: &PagingRegs, lin: u64, buf: &mut [u8]) -> bool {
    let mut done = 0usize;
    while done < buf.len() {
        let va = lin.wrapping_add(done as u64);
        let in_page = (4096 - (va & 0xfff)) as usize;
        let n = in_page.min(buf.len() - done);
        let Some(ma) = linear_to_machine(ram, p2m, regs, va) else {
            return false;
        };
        if ram.read(MachineAddr(ma), &mut buf[done..done + n]).is_err() {
            return false;
        }
        done += n;
    }
    true
}

/// Guest-linear → machine through the guest's tables and the p2m.
pub fn linear_to_machine(ram: &GuestRam, p2m: &P2m, regs: &PagingRegs, va: u64) -> Option<u64> {
    let pa = linear_to_phys(ram, p2m, regs, va)?;
    p2m.lookup(mmu::GuestPhysAddr(pa)).map(|m| m.0)
}

/// Guest-linear → guest-physical (a debugger's walk: no A/D updates).
pub fn linear_to_phys(ram: &GuestRam, p2m: &P2m, regs: &PagingRegs, va: u64) -> Option<u64> {
    let mut ptes = MappedPtes::new(ram, p2m);
    walk_debug(regs, &mut ptes, GuestVirtAddr(va), None)
        .ok()
        .map(|t| t.pa.0)
}

/// Decode the instruction at the virtual CPU's CS:RIP, if its bytes are
/// in guest RAM.
pub fn fetch_insn(ram: &GuestRam, p2m: &P2m, v: &CpuState) -> Option<Instruction> {
    let bits = v.code_bitness();
    let lin = if bits == 64 {
        v.rip
    } else {
        v.cs().base.wrapping_add(v.rip) & 0xffff_ffff
    };
    let regs = paging_regs(v);
    let mut buf = [0u8; 15];
    // The instruction may end before a page that is not mapped.
    let first = (4096 - (lin & 0xfff)) as usize;
    let mut len = 15;
    if !read_linear(ram, p2m, &regs, lin, &mut buf[..first.min(15)]) {
        return None;
    }
    if first < 15
        && !read_linear(
            ram,
            p2m,
            &regs,
            lin.wrapping_add(first as u64),
            &mut buf[first..],
        )
    {
        len = first;
    }
    let mut d = Decoder::with_ip(bits, &buf[..len], v.rip, DecoderOptions::NONE);
    let insn = d.decode();
    (!insn.is_invalid()).then_some(insn)
}
