//! Unit tests for the system side. Each test builds GDT/IDT/TSS (and, for
//! IA-32e mode, identity page tables) in guest RAM, sets the register
//! state directly, then runs one decoded instruction through
//! [`super::exec`] or delivers an event, and checks the exact results.

use super::descriptor::sys_type;
use crate::cpu::{Cpu, CpuExit};
use crate::event::{CpuEvent, IntKind};
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, cr4, efer, msr, reg, rflags, CpuMode, DescTable, SegReg, Segment};
use iced_x86::{Decoder, DecoderOptions};
use mmu::{GuestPhysAddr, GuestRam, MachineAddr, PhysLayout};
use std::sync::Arc;

// ---- a tiny platform ----

#[derive(Default)]
struct TestPlat {
    events: Vec<CpuEvent>,
    pio: Vec<(u16, u8, bool, u32)>,
    pio_in_val: u32,
    tsc: u64,
    tpr: Option<u8>,
    apic_base: Option<u64>,
}

impl Platform for TestPlat {
    fn pio_in(&mut self, port: u16, size: u8) -> u32 {
        self.pio.push((port, size, false, self.pio_in_val));
        self.pio_in_val
    }
    fn pio_out(&mut self, port: u16, size: u8, val: u32) {
        self.pio.push((port, size, true, val));
    }
    fn mmio_read(&mut self, _pa: GuestPhysAddr, _size: u8) -> u64 {
        u64::MAX
    }
    fn mmio_write(&mut self, _pa: GuestPhysAddr, _size: u8, _val: u64) {}
    fn interrupt_pending(&self) -> bool {
        false
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        None
    }
    fn stop_requested(&self) -> bool {
        false
    }
    fn tsc(&mut self) -> u64 {
        self.tsc
    }
    fn apic_base_changed(&mut self, apic_base: u64) {
        self.apic_base = Some(apic_base);
    }
    fn tpr_changed(&mut self, tpr: u8) {
        self.tpr = Some(tpr);
    }
    fn event(&mut self, ev: &CpuEvent) {
        self.events.push(ev.clone());
    }
}

// ---- memory layout of the test machine ----

const RAM: u64 = 8 << 20;
const GDT: u64 = 0x1000;
const IDT: u64 = 0x2000;
const TSS: u64 = 0x3000;
const PML4: u64 = 0x10000;
const KSTACK: u64 = 0x9000;
const ISTSTACK: u64 = 0xa000;

const KCODE64: u16 = 0x08;
const KDATA: u16 = 0x10;
const UCODE32: u16 = 0x23;
const UDATA: u16 = 0x2b;
const UCODE64: u16 = 0x33;
const KCODE32: u16 = 0x38;
const TSS_SEL: u16 = 0x40; // 16 bytes in IA-32e mode (indices 8 and 9)
const CONFORMING: u16 = 0x50;
const NP_DATA: u16 = 0x58;
const XO_CODE: u16 = 0x60;
const CALL_GATE: u16 = 0x68 | 3;
const KDATA_NA: u16 = 0x70;
const KDATA16: u16 = 0x78;

/// An 8-byte code/data/system descriptor.
fn desc(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | ((access as u64) << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((flags & 0xf) as u64) << 52)
        | (((base >> 24) & 0xff) << 56)
}

fn w(cpu: &Cpu, addr: u64, size: usize, v: u64) {
    cpu.ram.write_le(MachineAddr(addr), size, v).unwrap();
}
fn r(cpu: &Cpu, addr: u64, size: usize) -> u64 {
    cpu.ram.read_le(MachineAddr(addr), size).unwrap()
}
fn gdt_entry(cpu: &Cpu, sel: u16) -> u64 {
    r(cpu, GDT + (sel & !7) as u64, 8)
}
fn seg(cpu: &Cpu, sel: u16) -> Segment {
    let mut s = Segment::from_descriptor(sel, gdt_entry(cpu, sel));
    s.attr |= 1;
    s
}

fn new_cpu() -> (Cpu, TestPlat) {
    let ram = Arc::new(GuestRam::new(RAM).unwrap());
    let cpu = Cpu::new(ram, PhysLayout::new(RAM));
    (cpu, TestPlat::default())
}

/// GDT shared by all modes; `tss64` picks the 16-byte TSS descriptor.
fn write_gdt(cpu: &mut Cpu, tss_limit: u32) {
    let e = |i: u64, v: u64| w(cpu, GDT + i * 8, 8, v);
    e(0, 0);
    e(1, desc(0, 0xfffff, 0x9b, 0xa)); // 64-bit code, DPL 0
    e(2, desc(0, 0xfffff, 0x93, 0xc)); // data, DPL 0
    e(3, 0);
    e(4, desc(0, 0xfffff, 0xfb, 0xc)); // 32-bit code, DPL 3
    e(5, desc(0, 0xfffff, 0xf3, 0xc)); // data, DPL 3
    e(6, desc(0, 0xfffff, 0xfb, 0xa)); // 64-bit code, DPL 3
    e(7, desc(0, 0xfffff, 0x9b, 0xc)); // 32-bit code, DPL 0
    e(8, desc(TSS as u32, tss_limit, 0x89, 0)); // available TSS
    e(9, 0); // upper half of the TSS descriptor in IA-32e mode
    e(10, desc(0, 0xfffff, 0x9f, 0xc)); // 32-bit conforming code, DPL 0
    e(11, desc(0, 0xfffff, 0x13, 0xc)); // data, not present
    e(12, desc(0, 0xfffff, 0x99, 0xc)); // execute-only code
                                        // 32-bit call gate, DPL 3, 2 parameters → KCODE32:0x500000.
    let off = 0x0050_0000u64;
    e(
        13,
        (off & 0xffff)
            | ((KCODE32 as u64) << 16)
            | (2 << 32)
            | (0xecu64 << 40)
            | ((off >> 16) << 48),
    );
    e(14, desc(0, 0xfffff, 0x92, 0xc)); // data, accessed bit clear
    e(15, desc(0, 0xffff, 0x93, 0)); // 16-bit data, 64 KiB
    cpu.state.gdtr = DescTable {
        base: GDT,
        limit: 16 * 8 - 1,
    };
}

/// Identity map the first 1 GiB with 2 MiB user/writable pages.
fn write_page_tables(cpu: &Cpu) {
    let pdpt = PML4 + 0x1000;
    let pd = PML4 + 0x2000;
    w(cpu, PML4, 8, pdpt | 7);
    w(cpu, pdpt, 8, pd | 7);
    for i in 0..512u64 {
        w(cpu, pd + i * 8, 8, (i << 21) | 0x87);
    }
}

#[allow(clippy::too_many_arguments)]
fn idt_gate64(cpu: &Cpu, vec: u8, sel: u16, off: u64, typ: u8, dpl: u8, ist: u8, present: bool) {
    let lo = (off & 0xffff)
        | ((sel as u64) << 16)
        | ((ist as u64) << 32)
        | ((typ as u64) << 40)
        | ((dpl as u64) << 45)
        | ((present as u64) << 47)
        | (((off >> 16) & 0xffff) << 48);
    w(cpu, IDT + vec as u64 * 16, 8, lo);
    w(cpu, IDT + vec as u64 * 16 + 8, 8, off >> 32);
}

fn idt_gate32(cpu: &Cpu, vec: u8, sel: u16, off: u32, typ: u8, dpl: u8) {
    let off = off as u64;
    let lo = (off & 0xffff)
        | ((sel as u64) << 16)
        | ((typ as u64) << 40)
        | ((dpl as u64) << 45)
        | (1 << 47)
        | ((off >> 16) << 48);
    w(cpu, IDT + vec as u64 * 8, 8, lo);
}

fn handler(vec: u8) -> u64 {
    0x20_0000 + vec as u64 * 0x10
}

fn load_tr(cpu: &mut Cpu) {
    let mut tr = Segment::from_descriptor(TSS_SEL, gdt_entry(cpu, TSS_SEL));
    tr.attr |= 2; // busy
    cpu.state.tr = tr;
}

/// IA-32e mode, 64-bit code at CPL 0, paging on, every vector an
/// interrupt gate to `handler(vec)`, TSS with RSP0 and IST1.
fn long_cpu() -> (Cpu, TestPlat) {
    let (mut cpu, plat) = new_cpu();
    write_gdt(&mut cpu, 0x67);
    write_page_tables(&cpu);
    for v in 0..=255u8 {
        idt_gate64(&cpu, v, KCODE64, handler(v), sys_type::INT_GATE, 0, 0, true);
    }
    w(&cpu, TSS + 4, 8, KSTACK);
    w(&cpu, TSS + 0x24, 8, ISTSTACK);
    w(&cpu, TSS + 0x66, 2, 0x68);
    let s = &mut cpu.state;
    s.cr0 = cr0::PE | cr0::PG | cr0::ET | cr0::NE;
    s.cr4 = cr4::PAE;
    s.cr3 = PML4;
    s.efer = efer::LME | efer::LMA | efer::NXE;
    s.idtr = DescTable {
        base: IDT,
        limit: 256 * 16 - 1,
    };
    let cs = seg(&cpu, KCODE64);
    let ds = seg(&cpu, KDATA);
    cpu.state.seg = [ds, cs, ds, ds, ds, ds];
    load_tr(&mut cpu);
    cpu.state.rip = 0x10_0000;
    cpu.state.gpr[reg::RSP] = 0x7000;
    cpu.set_rflags(rflags::FIXED1);
    (cpu, plat)
}

/// Switch a `long_cpu` to CPL 3, 64-bit user code.
fn to_user64(cpu: &mut Cpu) {
    let cs = seg(cpu, UCODE64);
    let ss = seg(cpu, UDATA);
    cpu.state.seg[SegReg::Cs as usize] = cs;
    cpu.state.seg[SegReg::Ss as usize] = ss;
    cpu.state.rip = 0x40_0000;
    cpu.state.gpr[reg::RSP] = 0x7ff8;
}

/// 32-bit protected mode at CPL 0, no paging, 32-bit gates, 32-bit TSS.
fn prot32_cpu() -> (Cpu, TestPlat) {
    let (mut cpu, plat) = new_cpu();
    write_gdt(&mut cpu, 0x67);
    for v in 0..=255u8 {
        idt_gate32(&cpu, v, KCODE32, handler(v) as u32, sys_type::INT_GATE, 0);
    }
    w(&cpu, TSS + 4, 4, KSTACK);
    w(&cpu, TSS + 8, 2, KDATA as u64);
    w(&cpu, TSS + 0x66, 2, 0x68);
    cpu.state.cr0 = cr0::PE | cr0::ET | cr0::NE;
    cpu.state.idtr = DescTable {
        base: IDT,
        limit: 256 * 8 - 1,
    };
    let cs = seg(&cpu, KCODE32);
    let ds = seg(&cpu, KDATA);
    cpu.state.seg = [ds, cs, ds, ds, ds, ds];
    load_tr(&mut cpu);
    cpu.state.rip = 0x10_0000;
    cpu.state.gpr[reg::RSP] = 0x7000;
    cpu.set_rflags(rflags::FIXED1);
    (cpu, plat)
}

/// Decode one instruction at RIP in the current mode and execute it the
/// way the core does: RIP advanced first, restored on a fault.
fn exec(cpu: &mut Cpu, plat: &mut TestPlat, bytes: &[u8]) -> Result<(), Fault> {
    let bitness = cpu.state.code_bitness();
    let mut dec = Decoder::with_ip(bitness, bytes, cpu.state.rip, DecoderOptions::NONE);
    let insn = dec.decode();
    assert!(!insn.is_invalid(), "test bytes {bytes:02x?} do not decode");
    cpu.insn_start = cpu.state.rip;
    cpu.state.rip = cpu.state.rip.wrapping_add(insn.len() as u64);
    let res = super::exec(cpu, plat, &insn);
    if res.is_err() {
        cpu.state.rip = cpu.insn_start;
    }
    res
}

fn stack_q(cpu: &Cpu, i: u64) -> u64 {
    r(cpu, cpu.state.gpr[reg::RSP] + i * 8, 8)
}
fn stack_d(cpu: &Cpu, i: u64) -> u64 {
    r(cpu, cpu.state.gpr[reg::RSP] + i * 4, 4)
}

// ---- IA-32e event delivery ----

#[test]
fn long_mode_fault_same_privilege_frame() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.trace.int = true;
    cpu.state.gpr[reg::RSP] = 0x7008; // not 16-aligned: delivery aligns it
    cpu.set_rflags(rflags::FIXED1 | rflags::IF | rflags::CF);
    assert_eq!(cpu.raise_exception(&mut plat, Fault::gp(0x10)), None);
    assert_eq!(cpu.state.rip, handler(13));
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7000 - 48);
    assert_eq!(stack_q(&cpu, 0), 0x10, "error code");
    assert_eq!(
        stack_q(&cpu, 1),
        0x10_0000,
        "RIP of the faulting instruction"
    );
    assert_eq!(stack_q(&cpu, 2), KCODE64 as u64);
    assert_eq!(
        stack_q(&cpu, 3),
        rflags::FIXED1 | rflags::IF | rflags::CF | rflags::RF,
        "fault frames carry RF"
    );
    assert_eq!(stack_q(&cpu, 4), 0x7008, "old RSP, unaligned");
    assert_eq!(stack_q(&cpu, 5), KDATA as u64);
    assert_eq!(cpu.rflags() & (rflags::IF | rflags::RF), 0);
    assert_eq!(cpu.rflags() & rflags::CF, rflags::CF);
    assert!(plat.events.iter().any(|e| matches!(
        e,
        CpuEvent::Interrupt {
            vector: 13,
            kind: IntKind::Exception,
            error_code: Some(0x10),
            ..
        }
    )));
}

#[test]
fn iretq_to_ring3_then_int_back_to_ring0() {
    let (mut cpu, mut plat) = long_cpu();
    idt_gate64(
        &cpu,
        0x80,
        KCODE64,
        0x30_0000,
        sys_type::TRAP_GATE,
        3,
        0,
        true,
    );
    // IRETQ frame: RIP, CS, RFLAGS, RSP, SS.
    let frame = [
        0x40_0000u64,
        UCODE64 as u64,
        0x202 | rflags::CF,
        0x7ff8,
        UDATA as u64,
    ];
    cpu.state.gpr[reg::RSP] = 0x6000;
    for (i, v) in frame.iter().enumerate() {
        w(&cpu, 0x6000 + i as u64 * 8, 8, *v);
    }
    cpu.state.intr.nmi_blocked = true;
    exec(&mut cpu, &mut plat, &[0x48, 0xcf]).unwrap();
    assert_eq!(cpu.state.cpl(), 3);
    assert_eq!(cpu.state.mode(), CpuMode::Long64);
    assert_eq!(cpu.state.rip, 0x40_0000);
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7ff8);
    assert_eq!(cpu.state.ss().selector, UDATA);
    assert_eq!(cpu.rflags(), 0x202 | rflags::CF);
    assert!(!cpu.state.intr.nmi_blocked, "IRET ends NMI blocking");

    // INT 0x80 through a DPL-3 trap gate: stack switch to RSP0.
    exec(&mut cpu, &mut plat, &[0xcd, 0x80]).unwrap();
    assert_eq!(cpu.state.cpl(), 0);
    assert_eq!(cpu.state.rip, 0x30_0000);
    assert_eq!(cpu.state.gpr[reg::RSP], KSTACK - 40);
    assert_eq!(
        stack_q(&cpu, 0),
        0x40_0002,
        "return RIP is the next instruction"
    );
    assert_eq!(stack_q(&cpu, 1), UCODE64 as u64);
    assert_eq!(stack_q(&cpu, 2), 0x202 | rflags::CF, "no RF for INT n");
    assert_eq!(stack_q(&cpu, 3), 0x7ff8);
    assert_eq!(stack_q(&cpu, 4), UDATA as u64);
    let ss = cpu.state.ss();
    assert_eq!(ss.selector, 0, "null SS with RPL = new CPL");
    assert!(ss.unusable());
    assert_eq!(cpu.rflags() & rflags::IF, rflags::IF, "trap gate keeps IF");

    // And back again.
    exec(&mut cpu, &mut plat, &[0x48, 0xcf]).unwrap();
    assert_eq!(cpu.state.cpl(), 3);
    assert_eq!(cpu.state.rip, 0x40_0002);
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7ff8);
}

#[test]
fn ist_stack_and_nmi_blocking() {
    let (mut cpu, mut plat) = long_cpu();
    idt_gate64(&cpu, 2, KCODE64, handler(2), sys_type::INT_GATE, 0, 1, true);
    cpu.state.halted = true;
    assert_eq!(cpu.deliver_interrupt(&mut plat, 2, IntKind::Nmi), None);
    assert_eq!(cpu.state.gpr[reg::RSP], ISTSTACK - 40);
    assert_eq!(stack_q(&cpu, 3), 0x7000, "interrupted RSP");
    assert!(cpu.state.intr.nmi_blocked);
    assert!(!cpu.state.halted, "delivery wakes HLT");
    assert_eq!(
        cpu.state.ss().selector,
        KDATA,
        "no privilege change: SS kept"
    );
}

#[test]
fn int_n_gate_dpl_check_and_error_code() {
    let (mut cpu, mut plat) = long_cpu();
    to_user64(&mut cpu);
    // Gate 0x81 has DPL 0: INT 0x81 at CPL 3 is #GP(0x81·8 + 2) (selector-format index), no EXT.
    let f = exec(&mut cpu, &mut plat, &[0xcd, 0x81]).unwrap_err();
    assert_eq!(f, Fault::gp(0x81 * 8 + 2));
    assert_eq!(cpu.state.rip, 0x40_0000, "a fault leaves RIP at the INT");
    assert_eq!(cpu.state.cpl(), 3, "nothing committed");
    // The core then delivers the #GP: ring 0 handler, error code pushed.
    assert_eq!(cpu.raise_exception(&mut plat, f), None);
    assert_eq!(cpu.state.rip, handler(13));
    assert_eq!(cpu.state.gpr[reg::RSP], KSTACK - 48);
    assert_eq!(stack_q(&cpu, 0), 0x81 * 8 + 2);
    assert_eq!(stack_q(&cpu, 1), 0x40_0000);
    // A hardware exception ignores the gate DPL.
    let (mut cpu, mut plat) = long_cpu();
    to_user64(&mut cpu);
    assert_eq!(cpu.raise_exception(&mut plat, Fault::UD), None);
    assert_eq!(cpu.state.rip, handler(6));
}

#[test]
fn nested_fault_carries_ext_bit_and_is_handled_serially() {
    let (mut cpu, mut plat) = long_cpu();
    idt_gate64(
        &cpu,
        6,
        KCODE64,
        handler(6),
        sys_type::INT_GATE,
        0,
        0,
        false,
    );
    assert_eq!(cpu.raise_exception(&mut plat, Fault::UD), None);
    // #UD (benign) → #NP(IDT entry 6, IDT bit, EXT) handled serially.
    assert_eq!(cpu.state.rip, handler(11));
    assert_eq!(stack_q(&cpu, 0), 6 * 8 + 2 + 1);
    assert!(!plat
        .events
        .iter()
        .any(|e| matches!(e, CpuEvent::DoubleFault { .. })));
}

#[test]
fn contributory_pair_becomes_double_fault() {
    let (mut cpu, mut plat) = long_cpu();
    idt_gate64(
        &cpu,
        13,
        KCODE64,
        handler(13),
        sys_type::INT_GATE,
        0,
        0,
        false,
    );
    assert_eq!(cpu.raise_exception(&mut plat, Fault::gp0()), None);
    assert_eq!(cpu.state.rip, handler(8));
    assert_eq!(stack_q(&cpu, 0), 0, "#DF error code is 0");
    assert_eq!(stack_q(&cpu, 1), 0x10_0000);
    assert!(plat.events.contains(&CpuEvent::DoubleFault {
        first: Fault::gp0(),
        second: Fault::np(13 * 8 + 3),
    }));
}

#[test]
fn page_fault_then_gp_is_double_fault_and_cr2_is_loaded() {
    let (mut cpu, mut plat) = long_cpu();
    // #PF gate points at a data segment: #GP(sel|EXT) during delivery.
    idt_gate64(&cpu, 14, KDATA, handler(14), sys_type::INT_GATE, 0, 0, true);
    assert_eq!(
        cpu.raise_exception(&mut plat, Fault::pf(0xdead_b000, 2)),
        None
    );
    assert_eq!(cpu.state.cr2, 0xdead_b000);
    assert_eq!(cpu.state.rip, handler(8));
    assert!(plat.events.contains(&CpuEvent::DoubleFault {
        first: Fault::pf(0xdead_b000, 2),
        second: Fault::gp(KDATA as u32 | 1),
    }));
}

#[test]
fn fault_during_double_fault_is_a_triple_fault() {
    let (mut cpu, mut plat) = long_cpu();
    idt_gate64(
        &cpu,
        13,
        KCODE64,
        handler(13),
        sys_type::INT_GATE,
        0,
        0,
        false,
    );
    idt_gate64(
        &cpu,
        8,
        KCODE64,
        handler(8),
        sys_type::INT_GATE,
        0,
        0,
        false,
    );
    let exit = cpu.raise_exception(&mut plat, Fault::gp0());
    let last = Fault::np(8 * 8 + 3);
    assert_eq!(exit, Some(CpuExit::Shutdown(last)));
    assert!(plat.events.contains(&CpuEvent::TripleFault { last }));
    assert_eq!(cpu.state.rip, 0x10_0000, "nothing was delivered");
}

#[test]
fn idt_limit_violation_in_protected_mode() {
    let (mut cpu, mut plat) = prot32_cpu();
    cpu.state.idtr.limit = 0x7f; // vectors 0-15 only
    assert_eq!(
        cpu.deliver_interrupt(&mut plat, 0x20, IntKind::External),
        None
    );
    // External interrupt beyond the limit → #GP(0x20·8 + 2 + EXT).
    assert_eq!(cpu.state.rip, handler(13));
    assert_eq!(stack_d(&cpu, 0), 0x20 * 8 + 3);
}

// ---- protected-mode delivery, call gates, RETF/IRET ----

#[test]
fn protected_mode_interrupt_with_privilege_change_and_iret() {
    let (mut cpu, mut plat) = prot32_cpu();
    idt_gate32(&cpu, 0x80, KCODE32, 0x30_0000, sys_type::TRAP_GATE, 3);
    let ucs = seg(&cpu, UCODE32);
    let uss = seg(&cpu, UDATA);
    cpu.state.seg[SegReg::Cs as usize] = ucs;
    cpu.state.seg[SegReg::Ss as usize] = uss;
    cpu.state.seg[SegReg::Ds as usize] = uss;
    cpu.state.rip = 0x40_0000;
    cpu.state.gpr[reg::RSP] = 0x7ff0;
    cpu.set_rflags(0x202);
    exec(&mut cpu, &mut plat, &[0xcd, 0x80]).unwrap();
    assert_eq!(cpu.state.cpl(), 0);
    assert_eq!(cpu.state.mode(), CpuMode::Protected32);
    assert_eq!(cpu.state.gpr[reg::RSP], KSTACK - 20);
    assert_eq!(
        [0, 1, 2, 3, 4].map(|i| stack_d(&cpu, i)),
        [0x40_0002, UCODE32 as u64, 0x202, 0x7ff0, UDATA as u64]
    );
    assert_eq!(cpu.state.ss().selector, KDATA);
    exec(&mut cpu, &mut plat, &[0xcf]).unwrap();
    assert_eq!(cpu.state.cpl(), 3);
    assert_eq!(cpu.state.rip, 0x40_0002);
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7ff0);
    assert_eq!(cpu.state.ss().selector, UDATA);
    assert_eq!(cpu.state.sreg(SegReg::Ds).selector, UDATA, "DPL-3 DS kept");
}

#[test]
fn task_gate_is_refused_cleanly() {
    let (mut cpu, mut plat) = prot32_cpu();
    idt_gate32(&cpu, 8, TSS_SEL, 0, sys_type::TASK_GATE, 0);
    idt_gate32(&cpu, 13, KCODE32, handler(13) as u32, sys_type::INT_GATE, 0);
    assert_eq!(
        cpu.raise_exception(&mut plat, Fault::df()),
        Some(CpuExit::Shutdown(Fault::gp(8 * 8 + 3)))
    );
    // Any other vector through a task gate raises #GP(vector·8+2+EXT).
    let (mut cpu, mut plat) = prot32_cpu();
    idt_gate32(&cpu, 0x30, TSS_SEL, 0, sys_type::TASK_GATE, 0);
    assert_eq!(
        cpu.deliver_interrupt(&mut plat, 0x30, IntKind::External),
        None
    );
    assert_eq!(cpu.state.rip, handler(13));
    assert_eq!(stack_d(&cpu, 0), 0x30 * 8 + 3);
}

#[test]
fn call_gate_to_inner_privilege_copies_parameters_and_retf_returns() {
    let (mut cpu, mut plat) = prot32_cpu();
    let ucs = seg(&cpu, UCODE32);
    let uss = seg(&cpu, UDATA);
    let kds = seg(&cpu, KDATA);
    cpu.state.seg[SegReg::Cs as usize] = ucs;
    cpu.state.seg[SegReg::Ss as usize] = uss;
    cpu.state.seg[SegReg::Ds as usize] = kds; // will be nulled on return
    cpu.state.rip = 0x40_0000;
    cpu.state.gpr[reg::RSP] = 0x7ff0;
    w(&cpu, 0x7ff0, 4, 0x1111_1111);
    w(&cpu, 0x7ff4, 4, 0x2222_2222);
    // call 0x6b:0 (the offset is ignored for gates)
    exec(&mut cpu, &mut plat, &[0x9a, 0, 0, 0, 0, CALL_GATE as u8, 0]).unwrap();
    assert_eq!(cpu.state.cpl(), 0);
    assert_eq!(cpu.state.rip, 0x50_0000);
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, KCODE32);
    assert_eq!(cpu.state.ss().selector, KDATA);
    assert_eq!(cpu.state.gpr[reg::RSP], KSTACK - 24);
    assert_eq!(
        [0, 1, 2, 3, 4, 5].map(|i| stack_d(&cpu, i)),
        [
            0x40_0007,
            UCODE32 as u64,
            0x1111_1111,
            0x2222_2222,
            0x7ff0,
            UDATA as u64
        ]
    );
    // retf 8: back to ring 3, both stacks released by 8.
    exec(&mut cpu, &mut plat, &[0xca, 8, 0]).unwrap();
    assert_eq!(cpu.state.cpl(), 3);
    assert_eq!(cpu.state.rip, 0x40_0007);
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7ff8);
    assert_eq!(cpu.state.ss().selector, UDATA);
    assert_eq!(cpu.state.sreg(SegReg::Ds).selector, 0, "DPL-0 DS nulled");
    assert!(cpu.state.sreg(SegReg::Ds).unusable());
}

#[test]
fn far_jmp_to_tss_is_refused() {
    let (mut cpu, mut plat) = prot32_cpu();
    let f = exec(&mut cpu, &mut plat, &[0xea, 0, 0, 0, 0, TSS_SEL as u8, 0]).unwrap_err();
    assert_eq!(f, Fault::gp(TSS_SEL as u32));
}

#[test]
fn conforming_code_keeps_the_cpl() {
    let (mut cpu, mut plat) = prot32_cpu();
    let ucs = seg(&cpu, UCODE32);
    let uss = seg(&cpu, UDATA);
    cpu.state.seg[SegReg::Cs as usize] = ucs;
    cpu.state.seg[SegReg::Ss as usize] = uss;
    exec(
        &mut cpu,
        &mut plat,
        &[0xea, 0x34, 0x12, 0, 0, CONFORMING as u8, 0],
    )
    .unwrap();
    assert_eq!(cpu.state.cpl(), 3);
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, CONFORMING | 3);
    assert_eq!(cpu.state.rip, 0x1234);
    // A non-conforming DPL-0 segment cannot be jumped to from ring 3.
    let f = exec(&mut cpu, &mut plat, &[0xea, 0, 0, 0, 0, KCODE32 as u8, 0]).unwrap_err();
    assert_eq!(f, Fault::gp(KCODE32 as u32));
}

#[test]
fn iret_refuses_task_return_and_vm86() {
    let (mut cpu, mut plat) = prot32_cpu();
    for (i, v) in [0x1000u64, KCODE32 as u64, 0x2 | rflags::VM]
        .iter()
        .enumerate()
    {
        w(&cpu, 0x7000 + i as u64 * 4, 4, *v);
    }
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0xcf]),
        Err(Fault::gp0()),
        "IRET to VM86"
    );
    cpu.set_rflags(rflags::FIXED1 | rflags::NT);
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0xcf]),
        Err(Fault::gp0()),
        "task return"
    );
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7000);
}

// ---- mode transitions ----

#[test]
fn far_jmp_between_64bit_and_compatibility_mode() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.trace.int = true;
    // jmp far [rax] with an m16:32 pointer to KCODE32:0x300000.
    w(&cpu, 0x5000, 4, 0x30_0000);
    w(&cpu, 0x5004, 2, KCODE32 as u64);
    cpu.state.gpr[reg::RAX] = 0x5000;
    exec(&mut cpu, &mut plat, &[0xff, 0x28]).unwrap();
    assert_eq!(cpu.state.mode(), CpuMode::Compat32);
    assert_eq!(cpu.state.rip, 0x30_0000);
    // jmp 0x08:0x400000 (ptr16:32 is valid in compatibility mode).
    exec(
        &mut cpu,
        &mut plat,
        &[0xea, 0, 0, 0x40, 0, KCODE64 as u8, 0],
    )
    .unwrap();
    assert_eq!(cpu.state.mode(), CpuMode::Long64);
    assert_eq!(cpu.state.rip, 0x40_0000);
    assert!(plat.events.contains(&CpuEvent::ModeChange {
        from: "long64",
        to: "compat32"
    }));
    assert!(plat.events.contains(&CpuEvent::ModeChange {
        from: "compat32",
        to: "long64"
    }));
    // An m16:64 pointer (REX.W) with a non-canonical target: #GP(0).
    w(&cpu, 0x5000, 8, 0x8000_0000_0000);
    w(&cpu, 0x5008, 2, KCODE64 as u64);
    let f = exec(&mut cpu, &mut plat, &[0x48, 0xff, 0x28]).unwrap_err();
    assert_eq!(f, Fault::gp0());
}

#[test]
fn long_mode_activation_sequence() {
    let (mut cpu, mut plat) = prot32_cpu();
    cpu.trace.mmu = true;
    write_page_tables(&cpu);
    cpu.state.gpr[reg::RAX] = PML4;
    exec(&mut cpu, &mut plat, &[0x0f, 0x22, 0xd8]).unwrap(); // mov cr3, eax
                                                             // EFER.LME
    cpu.state.gpr[reg::RCX] = msr::IA32_EFER as u64;
    cpu.state.gpr[reg::RAX] = efer::LME;
    cpu.state.gpr[reg::RDX] = 0;
    exec(&mut cpu, &mut plat, &[0x0f, 0x30]).unwrap();
    // PG without PAE while LME = 1: #GP(0).
    cpu.state.gpr[reg::RAX] = cpu.state.cr0 | cr0::PG;
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x22, 0xc0]),
        Err(Fault::gp0())
    );
    assert_eq!(cpu.state.efer & efer::LMA, 0);
    cpu.state.gpr[reg::RAX] = cr4::PAE;
    exec(&mut cpu, &mut plat, &[0x0f, 0x22, 0xe0]).unwrap(); // mov cr4, eax
    cpu.state.gpr[reg::RAX] = cpu.state.cr0 | cr0::PG;
    exec(&mut cpu, &mut plat, &[0x0f, 0x22, 0xc0]).unwrap(); // mov cr0, eax
    assert_ne!(cpu.state.efer & efer::LMA, 0);
    assert_eq!(cpu.state.mode(), CpuMode::Compat32);
    assert!(plat.events.contains(&CpuEvent::ModeChange {
        from: "protected32",
        to: "compat32"
    }));
    assert!(plat
        .events
        .iter()
        .any(|e| matches!(e, CpuEvent::CrWrite { cr: 0, .. })));
    // EFER.LME cannot change while paging is on.
    cpu.state.gpr[reg::RAX] = 0;
    cpu.state.gpr[reg::RCX] = msr::IA32_EFER as u64;
    assert_eq!(exec(&mut cpu, &mut plat, &[0x0f, 0x30]), Err(Fault::gp0()));
    // Into 64-bit mode.
    exec(
        &mut cpu,
        &mut plat,
        &[0xea, 0, 0, 0x20, 0, KCODE64 as u8, 0],
    )
    .unwrap();
    assert_eq!(cpu.state.mode(), CpuMode::Long64);
    // Clearing PG in 64-bit mode: #GP(0). From compatibility mode: leaves
    // IA-32e mode.
    cpu.state.gpr[reg::RAX] = cpu.state.cr0 & !cr0::PG;
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x22, 0xc0]),
        Err(Fault::gp0())
    );
    let cs32 = seg(&cpu, KCODE32);
    cpu.state.seg[SegReg::Cs as usize] = cs32;
    exec(&mut cpu, &mut plat, &[0x0f, 0x22, 0xc0]).unwrap();
    assert_eq!(cpu.state.efer & efer::LMA, 0);
    assert_eq!(cpu.state.mode(), CpuMode::Protected32);
}

#[test]
fn control_register_reserved_bits() {
    let (mut cpu, mut plat) = long_cpu();
    let mov_cr0 = [0x0f, 0x22, 0xc0];
    let mov_cr4 = [0x0f, 0x22, 0xe0];
    let mov_cr3 = [0x0f, 0x22, 0xd8];
    let cr0v = cpu.state.cr0;
    for bad in [cr0v | (1 << 32), (cr0v | cr0::NW) & !cr0::CD] {
        cpu.state.gpr[reg::RAX] = bad;
        assert_eq!(
            exec(&mut cpu, &mut plat, &mov_cr0),
            Err(Fault::gp0()),
            "{bad:#x}"
        );
    }
    // Reserved low CR0 bits are ignored; ET reads 1.
    cpu.state.gpr[reg::RAX] = (cr0v & !cr0::ET) | (1 << 7);
    exec(&mut cpu, &mut plat, &mov_cr0).unwrap();
    assert_eq!(cpu.state.cr0, cr0v);
    for bit in [17u32, 12, 13, 9, 18, 21, 0, 6] {
        // PCIDE, LA57, VMXE, OSFXSR, OSXSAVE, SMAP, VME, MCE
        cpu.state.gpr[reg::RAX] = cr4::PAE | (1 << bit);
        assert_eq!(
            exec(&mut cpu, &mut plat, &mov_cr4),
            Err(Fault::gp0()),
            "CR4 bit {bit}"
        );
    }
    cpu.state.gpr[reg::RAX] = 0; // PAE off in IA-32e mode
    assert_eq!(exec(&mut cpu, &mut plat, &mov_cr4), Err(Fault::gp0()));
    cpu.state.gpr[reg::RAX] = cr4::PAE | cr4::PGE | cr4::SMEP | cr4::TSD;
    exec(&mut cpu, &mut plat, &mov_cr4).unwrap();
    cpu.state.gpr[reg::RAX] = 1 << 40;
    assert_eq!(exec(&mut cpu, &mut plat, &mov_cr3), Err(Fault::gp0()));
    // CR8: TPR, 4 bits.
    cpu.state.gpr[reg::RAX] = 0x10;
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x44, 0x0f, 0x22, 0xc0]),
        Err(Fault::gp0())
    );
    cpu.state.gpr[reg::RAX] = 0x9;
    exec(&mut cpu, &mut plat, &[0x44, 0x0f, 0x22, 0xc0]).unwrap();
    assert_eq!(plat.tpr, Some(9));
    // CPL 3 may not touch CRs. (CR1/CR5-7 do not even decode.)
    to_user64(&mut cpu);
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x20, 0xc0]),
        Err(Fault::gp0())
    );
}

#[test]
fn lmsw_cannot_clear_pe_and_smsw_reads_cr0() {
    let (mut cpu, mut plat) = prot32_cpu();
    cpu.state.gpr[reg::RAX] = cr0::TS; // PE clear in the source
    exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0xf0]).unwrap(); // lmsw ax
    assert_eq!(cpu.state.cr0 & (cr0::PE | cr0::TS), cr0::PE | cr0::TS);
    exec(&mut cpu, &mut plat, &[0x0f, 0x06]).unwrap(); // clts
    assert_eq!(cpu.state.cr0 & cr0::TS, 0);
    exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0xe3]).unwrap(); // smsw ebx
    assert_eq!(cpu.state.gpr[reg::RBX], cpu.state.cr0);
}

#[test]
fn debug_registers_alias_and_de() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.state.gpr[reg::RAX] = 0x1;
    exec(&mut cpu, &mut plat, &[0x0f, 0x23, 0xe0]).unwrap(); // mov dr4, rax → DR6
    assert_eq!(cpu.state.dr[6], 0xffff_0ff1);
    cpu.state.cr4 |= cr4::DE;
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x23, 0xe0]),
        Err(Fault::UD)
    );
    cpu.state.gpr[reg::RAX] = 1 << 32;
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x23, 0xf8]),
        Err(Fault::gp0())
    ); // dr7
}

// ---- SYSCALL / SYSRET / SYSENTER / SWAPGS ----

fn syscall_cpu() -> (Cpu, TestPlat) {
    let (mut cpu, plat) = long_cpu();
    cpu.state.efer |= efer::SCE;
    cpu.state.msr.star = ((UCODE32 as u64) << 48) | ((KCODE64 as u64) << 32);
    cpu.state.msr.lstar = 0xffff_8000_0010_0000;
    cpu.state.msr.fmask = rflags::IF | rflags::TF | rflags::DF;
    to_user64(&mut cpu);
    cpu.set_rflags(0x202 | rflags::CF | rflags::DF);
    (cpu, plat)
}

#[test]
fn syscall_sysret_round_trip() {
    let (mut cpu, mut plat) = syscall_cpu();
    exec(&mut cpu, &mut plat, &[0x0f, 0x05]).unwrap();
    assert_eq!(cpu.state.cpl(), 0);
    assert_eq!(cpu.state.rip, 0xffff_8000_0010_0000);
    assert_eq!(cpu.state.gpr[reg::RCX], 0x40_0002);
    assert_eq!(cpu.state.gpr[11], 0x202 | rflags::CF | rflags::DF);
    assert_eq!(cpu.rflags(), rflags::FIXED1 | rflags::CF);
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, KCODE64);
    assert_eq!(cpu.state.ss().selector, KDATA);
    assert_eq!(cpu.state.mode(), CpuMode::Long64);
    exec(&mut cpu, &mut plat, &[0x48, 0x0f, 0x07]).unwrap(); // sysretq
    assert_eq!(cpu.state.cpl(), 3);
    assert_eq!(cpu.state.rip, 0x40_0002);
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, UCODE64);
    assert_eq!(cpu.state.ss().selector, UDATA);
    assert_eq!(cpu.rflags(), 0x202 | rflags::CF | rflags::DF);
    assert_eq!(cpu.state.mode(), CpuMode::Long64);
    // 32-bit SYSRET lands in compatibility mode.
    exec(&mut cpu, &mut plat, &[0x0f, 0x05]).unwrap();
    exec(&mut cpu, &mut plat, &[0x0f, 0x07]).unwrap();
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, UCODE32);
    assert_eq!(cpu.state.mode(), CpuMode::Compat32);
}

#[test]
fn syscall_sysret_faults() {
    let (mut cpu, mut plat) = syscall_cpu();
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x48, 0x0f, 0x07]),
        Err(Fault::gp0()),
        "CPL 3"
    );
    exec(&mut cpu, &mut plat, &[0x0f, 0x05]).unwrap();
    cpu.state.gpr[reg::RCX] = 0x0000_8000_0000_0000;
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x48, 0x0f, 0x07]),
        Err(Fault::gp0()),
        "non-canonical"
    );
    cpu.state.efer &= !efer::SCE;
    assert_eq!(exec(&mut cpu, &mut plat, &[0x0f, 0x05]), Err(Fault::UD));
}

#[test]
fn sysenter_sysexit() {
    let (mut cpu, mut plat) = prot32_cpu();
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x34]),
        Err(Fault::gp0()),
        "SYSENTER_CS = 0"
    );
    // SYSENTER loads flat caches without reading the GDT: CS = base, SS = base+8.
    cpu.state.msr.sysenter_cs = 0x30;
    cpu.state.msr.sysenter_esp = 0x8800;
    cpu.state.msr.sysenter_eip = 0x60_0000;
    exec(&mut cpu, &mut plat, &[0x0f, 0x34]).unwrap();
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, 0x30);
    assert_eq!(cpu.state.ss().selector, 0x38);
    assert_eq!(cpu.state.gpr[reg::RSP], 0x8800);
    assert_eq!(cpu.state.rip, 0x60_0000);
    cpu.state.gpr[reg::RCX] = 0x7000;
    cpu.state.gpr[reg::RDX] = 0x40_0000;
    exec(&mut cpu, &mut plat, &[0x0f, 0x35]).unwrap();
    assert_eq!(cpu.state.cpl(), 3);
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, 0x43);
    assert_eq!(cpu.state.ss().selector, 0x4b);
    assert_eq!(cpu.state.rip, 0x40_0000);
    assert_eq!(cpu.state.mode(), CpuMode::Protected32);
}

#[test]
fn swapgs_rules() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.state.seg[SegReg::Gs as usize].base = 0x1111;
    cpu.state.msr.kernel_gs_base = 0x2222;
    exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0xf8]).unwrap();
    assert_eq!(cpu.state.sreg(SegReg::Gs).base, 0x2222);
    assert_eq!(cpu.state.msr.kernel_gs_base, 0x1111);
    to_user64(&mut cpu);
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0xf8]),
        Err(Fault::gp0())
    );
}

// ---- segment loads ----

#[test]
fn segment_load_faults_carry_selector_error_codes() {
    let (mut cpu, mut plat) = prot32_cpu();
    let mov_ss = [0x8e, 0xd0];
    let mov_ds = [0x8e, 0xd8];
    let mut check = |sel: u16, bytes: &[u8], want: Fault| {
        cpu.state.gpr[reg::RAX] = sel as u64;
        assert_eq!(
            exec(&mut cpu, &mut plat, bytes),
            Err(want),
            "selector {sel:#x}"
        );
    };
    check(0, &mov_ss, Fault::gp0());
    check(0x400, &mov_ds, Fault::gp(0x400)); // beyond the GDT limit
    check(0x404, &mov_ds, Fault::gp(0x404)); // LDT, but LDTR is null
    check(NP_DATA, &mov_ds, Fault::np(NP_DATA as u32));
    check(NP_DATA, &mov_ss, Fault::ss(NP_DATA as u32));
    check(UDATA, &mov_ss, Fault::gp(UDATA as u32 & !3)); // RPL ≠ CPL
    check(XO_CODE, &mov_ds, Fault::gp(XO_CODE as u32)); // execute-only
    check(KCODE32, &mov_ss, Fault::gp(KCODE32 as u32)); // code as stack
                                                        // A null DS is fine; a DPL-0 data segment with RPL 3 is not.
    check(KDATA | 3, &mov_ds, Fault::gp(KDATA as u32));
    cpu.state.gpr[reg::RAX] = 0;
    exec(&mut cpu, &mut plat, &mov_ds).unwrap();
    assert!(cpu.state.sreg(SegReg::Ds).unusable());
}

#[test]
fn segment_load_sets_accessed_bit_and_mov_ss_shadow() {
    let (mut cpu, mut plat) = prot32_cpu();
    assert_eq!(gdt_entry(&cpu, KDATA_NA) >> 40 & 0xff, 0x92);
    cpu.state.gpr[reg::RAX] = KDATA_NA as u64;
    exec(&mut cpu, &mut plat, &[0x8e, 0xd0]).unwrap();
    assert_eq!(gdt_entry(&cpu, KDATA_NA) >> 40 & 0xff, 0x93);
    assert_eq!(cpu.state.ss().selector, KDATA_NA);
    assert!(cpu.state.intr.shadow);
    assert!(cpu.state.ss().big());
}

#[test]
fn null_ss_in_64bit_mode_below_ring3() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.state.gpr[reg::RAX] = 0;
    exec(&mut cpu, &mut plat, &[0x8e, 0xd0]).unwrap();
    assert!(cpu.state.ss().unusable());
    // … but not with RPL ≠ CPL.
    cpu.state.gpr[reg::RAX] = 3;
    assert_eq!(exec(&mut cpu, &mut plat, &[0x8e, 0xd0]), Err(Fault::gp0()));
}

#[test]
fn pop_ss_fault_leaves_rsp_and_lss_loads_both() {
    let (mut cpu, mut plat) = prot32_cpu();
    w(&cpu, 0x7000, 4, NP_DATA as u64);
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x17]),
        Err(Fault::ss(NP_DATA as u32))
    );
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7000);
    w(&cpu, 0x7000, 4, KDATA16 as u64);
    exec(&mut cpu, &mut plat, &[0x17]).unwrap();
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7004);
    assert_eq!(cpu.state.ss().selector, KDATA16);
    // lss esp, [eax]
    let (mut cpu, mut plat) = prot32_cpu();
    w(&cpu, 0x5000, 4, 0x6543);
    w(&cpu, 0x5004, 2, KDATA as u64);
    cpu.state.gpr[reg::RAX] = 0x5000;
    exec(&mut cpu, &mut plat, &[0x0f, 0xb2, 0x20]).unwrap();
    assert_eq!(cpu.state.gpr[reg::RSP], 0x6543);
    assert_eq!(cpu.state.ss().selector, KDATA);
    assert!(!cpu.state.intr.shadow, "LSS has no interrupt shadow");
}

#[test]
fn push_sreg_writes_16_bits_into_a_wider_slot() {
    let (mut cpu, mut plat) = long_cpu();
    w(&cpu, 0x7000 - 8, 8, u64::MAX);
    cpu.state.seg[SegReg::Fs as usize].selector = 0x1234;
    exec(&mut cpu, &mut plat, &[0x0f, 0xa0]).unwrap(); // push fs
    assert_eq!(cpu.state.gpr[reg::RSP], 0x7000 - 8);
    assert_eq!(stack_q(&cpu, 0), 0xffff_ffff_ffff_1234);
}

// ---- real mode ----

#[test]
fn real_mode_ivt_delivery_and_iret() {
    let (mut cpu, mut plat) = new_cpu();
    cpu.state.seg[SegReg::Cs as usize] = Segment::real_mode(0x1000, true);
    cpu.state.seg[SegReg::Ss as usize] = Segment::real_mode(0x2000, false);
    cpu.state.idtr = DescTable {
        base: 0,
        limit: 0x3ff,
    };
    cpu.state.rip = 0x100;
    cpu.state.gpr[reg::RSP] = 0x100;
    w(&cpu, 0x10 * 4, 4, 0xf000_1234);
    let flags = rflags::FIXED1 | rflags::IF | rflags::TF | rflags::CF;
    cpu.set_rflags(flags);
    exec(&mut cpu, &mut plat, &[0xcd, 0x10]).unwrap();
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, 0xf000);
    assert_eq!(cpu.state.sreg(SegReg::Cs).base, 0xf0000);
    assert_eq!(cpu.state.rip, 0x1234);
    assert_eq!(cpu.state.gpr[reg::RSP], 0xfa);
    assert_eq!(r(&cpu, 0x200fa, 2), 0x102);
    assert_eq!(r(&cpu, 0x200fc, 2), 0x1000);
    assert_eq!(r(&cpu, 0x200fe, 2), flags);
    assert_eq!(cpu.rflags(), rflags::FIXED1 | rflags::CF);
    exec(&mut cpu, &mut plat, &[0xcf]).unwrap();
    assert_eq!(cpu.state.rip, 0x102);
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, 0x1000);
    assert_eq!(cpu.rflags(), flags);
    assert_eq!(cpu.state.gpr[reg::RSP], 0x100);
}

#[test]
fn real_mode_far_call_and_retf() {
    let (mut cpu, mut plat) = new_cpu();
    cpu.state.seg[SegReg::Cs as usize] = Segment::real_mode(0x1000, true);
    cpu.state.seg[SegReg::Ss as usize] = Segment::real_mode(0x2000, false);
    cpu.state.rip = 0x100;
    cpu.state.gpr[reg::RSP] = 0; // SP wraps to 0xfffc
    exec(&mut cpu, &mut plat, &[0x9a, 0x34, 0x12, 0x00, 0x30]).unwrap(); // call 0x3000:0x1234
    assert_eq!(cpu.state.sreg(SegReg::Cs).base, 0x30000);
    assert_eq!(cpu.state.rip, 0x1234);
    assert_eq!(cpu.state.gpr[reg::RSP], 0xfffc);
    assert_eq!(r(&cpu, 0x2fffe, 2), 0x1000);
    assert_eq!(r(&cpu, 0x2fffc, 2), 0x105);
    exec(&mut cpu, &mut plat, &[0xcb]).unwrap(); // retf
    assert_eq!(cpu.state.sreg(SegReg::Cs).selector, 0x1000);
    assert_eq!(cpu.state.rip, 0x105);
    assert_eq!(cpu.state.gpr[reg::RSP], 0);
}

#[test]
fn real_mode_ivt_limit_is_a_triple_fault() {
    let (mut cpu, mut plat) = new_cpu();
    cpu.state.idtr = DescTable { base: 0, limit: 0 };
    let exit = cpu.deliver_interrupt(&mut plat, 0x10, IntKind::Software);
    assert!(matches!(exit, Some(CpuExit::Shutdown(_))));
}

#[test]
fn unreal_mode_keeps_the_hidden_limit() {
    let (mut cpu, mut plat) = new_cpu();
    cpu.state.seg[SegReg::Ds as usize].limit = 0xffff_ffff;
    cpu.state.gpr[reg::RAX] = 0x1234;
    exec(&mut cpu, &mut plat, &[0x8e, 0xd8]).unwrap();
    let ds = cpu.state.sreg(SegReg::Ds);
    assert_eq!(
        (ds.selector, ds.base, ds.limit),
        (0x1234, 0x12340, 0xffff_ffff)
    );
}

// ---- flags ----

#[test]
fn popf_at_cpl3_iopl0_silently_keeps_if_and_iopl() {
    let (mut cpu, mut plat) = long_cpu();
    to_user64(&mut cpu);
    cpu.set_rflags(rflags::FIXED1 | rflags::IF);
    w(&cpu, 0x7ff8, 8, rflags::IOPL | rflags::CF | rflags::AC);
    exec(&mut cpu, &mut plat, &[0x9d]).unwrap(); // popfq
    assert_eq!(
        cpu.rflags(),
        rflags::FIXED1 | rflags::IF | rflags::CF | rflags::AC
    );
    assert_eq!(cpu.state.gpr[reg::RSP], 0x8000);
    // CLI at CPL 3 with IOPL 0 faults instead.
    assert_eq!(exec(&mut cpu, &mut plat, &[0xfa]), Err(Fault::gp0()));
    // With IOPL 3, IF follows the image but IOPL still cannot change.
    cpu.set_rflags(rflags::FIXED1 | rflags::IF | rflags::IOPL);
    cpu.state.gpr[reg::RSP] = 0x7ff8;
    w(&cpu, 0x7ff8, 8, rflags::FIXED1);
    exec(&mut cpu, &mut plat, &[0x9d]).unwrap();
    assert_eq!(cpu.rflags(), rflags::FIXED1 | rflags::IOPL);
    // At CPL 0 both change; VM and RF never do.
    let (mut cpu, mut plat) = long_cpu();
    cpu.set_rflags(rflags::FIXED1 | rflags::IF);
    w(&cpu, 0x7000, 8, rflags::IOPL | rflags::VM | rflags::RF);
    exec(&mut cpu, &mut plat, &[0x9d]).unwrap();
    assert_eq!(cpu.rflags(), rflags::FIXED1 | rflags::IOPL);
}

#[test]
fn pushf_clears_vm_and_rf_and_sti_shadow() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.set_rflags(rflags::FIXED1 | rflags::RF | rflags::CF);
    exec(&mut cpu, &mut plat, &[0x9c]).unwrap();
    assert_eq!(stack_q(&cpu, 0), rflags::FIXED1 | rflags::CF);
    exec(&mut cpu, &mut plat, &[0xfb]).unwrap();
    assert!(cpu.state.intr.shadow);
    assert_ne!(cpu.rflags() & rflags::IF, 0);
    cpu.state.intr.shadow = false;
    exec(&mut cpu, &mut plat, &[0xfb]).unwrap();
    assert!(!cpu.state.intr.shadow, "STI with IF already set: no shadow");
}

// ---- I/O ----

#[test]
fn io_permission_bitmap() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.trace.io = true;
    // TSS with a full bitmap at 0x68: everything denied except port 0x3f8.
    w(
        &cpu,
        GDT + 8 * 8,
        8,
        desc(TSS as u32, 0x68 + 0x2000, 0x8b, 0),
    );
    load_tr(&mut cpu);
    cpu.state.tr.limit = 0x68 + 0x2000;
    for i in 0..0x2000u64 {
        w(&cpu, TSS + 0x68 + i, 1, 0xff);
    }
    w(&cpu, TSS + 0x68 + (0x3f8 >> 3), 1, 0xfe);
    to_user64(&mut cpu);
    cpu.state.gpr[reg::RDX] = 0x3f8;
    plat.pio_in_val = 0x41;
    exec(&mut cpu, &mut plat, &[0xec]).unwrap(); // in al, dx
    assert_eq!(cpu.state.gpr[reg::RAX] & 0xff, 0x41);
    assert_eq!(plat.pio, vec![(0x3f8, 1, false, 0x41)]);
    assert!(plat.events.contains(&CpuEvent::Pio {
        port: 0x3f8,
        size: 1,
        write: false,
        val: 0x41
    }));
    // A word access also needs port 0x3f9.
    assert_eq!(exec(&mut cpu, &mut plat, &[0x66, 0xed]), Err(Fault::gp0()));
    cpu.state.gpr[reg::RDX] = 0x3f9;
    assert_eq!(exec(&mut cpu, &mut plat, &[0xee]), Err(Fault::gp0()));
    assert_eq!(plat.pio.len(), 1, "denied accesses never reach the bus");
    // IOPL 3 bypasses the bitmap.
    cpu.set_rflags(rflags::FIXED1 | rflags::IOPL);
    exec(&mut cpu, &mut plat, &[0xee]).unwrap();
    assert_eq!(plat.pio.last(), Some(&(0x3f9, 1, true, 0x41)));
    // No bitmap at all (TSS limit 0x67): denied at CPL 3 / IOPL 0.
    cpu.set_rflags(rflags::FIXED1);
    cpu.state.tr.limit = 0x67;
    cpu.state.gpr[reg::RDX] = 0x3f8;
    assert_eq!(exec(&mut cpu, &mut plat, &[0xec]), Err(Fault::gp0()));
}

#[test]
fn rep_outsb_and_insw() {
    let (mut cpu, mut plat) = prot32_cpu();
    w(&cpu, 0x5000, 4, 0x6463_6261);
    cpu.state.gpr[reg::RSI] = 0x5000;
    cpu.state.gpr[reg::RCX] = 3;
    cpu.state.gpr[reg::RDX] = 0xe9;
    exec(&mut cpu, &mut plat, &[0xf3, 0x6e]).unwrap(); // rep outsb
    assert_eq!(
        plat.pio,
        vec![
            (0xe9, 1, true, 0x61),
            (0xe9, 1, true, 0x62),
            (0xe9, 1, true, 0x63)
        ]
    );
    assert_eq!(
        (cpu.state.gpr[reg::RSI], cpu.state.gpr[reg::RCX]),
        (0x5003, 0)
    );
    plat.pio.clear();
    plat.pio_in_val = 0xbeef;
    cpu.state.gpr[reg::RDI] = 0x6000;
    cpu.state.gpr[reg::RCX] = 2;
    exec(&mut cpu, &mut plat, &[0x66, 0xf3, 0x6d]).unwrap(); // rep insw
    assert_eq!(r(&cpu, 0x6000, 4), 0xbeef_beef);
    assert_eq!(cpu.state.gpr[reg::RDI], 0x6004);
}

// ---- MSRs, CPUID, TSC ----

fn wrmsr(cpu: &mut Cpu, plat: &mut TestPlat, index: u32, v: u64) -> Result<(), Fault> {
    cpu.state.gpr[reg::RCX] = index as u64;
    cpu.state.gpr[reg::RAX] = v & 0xffff_ffff;
    cpu.state.gpr[reg::RDX] = v >> 32;
    exec(cpu, plat, &[0x0f, 0x30])
}
fn rdmsr(cpu: &mut Cpu, plat: &mut TestPlat, index: u32) -> Result<u64, Fault> {
    cpu.state.gpr[reg::RCX] = index as u64;
    exec(cpu, plat, &[0x0f, 0x32])?;
    Ok((cpu.state.gpr[reg::RDX] << 32) | cpu.state.gpr[reg::RAX])
}

#[test]
fn msr_checks() {
    let (mut cpu, mut plat) = long_cpu();
    let gp = Err(Fault::gp0());
    assert_eq!(
        wrmsr(&mut cpu, &mut plat, msr::IA32_FS_BASE, 0x8000_0000_0000),
        gp
    );
    wrmsr(
        &mut cpu,
        &mut plat,
        msr::IA32_FS_BASE,
        0xffff_8000_0000_1000,
    )
    .unwrap();
    assert_eq!(cpu.state.sreg(SegReg::Fs).base, 0xffff_8000_0000_1000);
    assert_eq!(wrmsr(&mut cpu, &mut plat, msr::IA32_LSTAR, 1 << 47), gp);
    assert_eq!(
        wrmsr(&mut cpu, &mut plat, msr::IA32_PAT, 0x0007_0406_0007_0402),
        gp
    );
    wrmsr(&mut cpu, &mut plat, msr::IA32_PAT, 0x0007_0106_0007_0406).unwrap();
    assert_eq!(
        wrmsr(
            &mut cpu,
            &mut plat,
            msr::IA32_EFER,
            efer::LMA | efer::LME | 2
        ),
        gp
    );
    assert_eq!(wrmsr(&mut cpu, &mut plat, msr::IA32_FEATURE_CONTROL, 0), gp);
    assert_eq!(rdmsr(&mut cpu, &mut plat, msr::IA32_FEATURE_CONTROL), Ok(1));
    wrmsr(&mut cpu, &mut plat, 0x8b, 0).unwrap();
    assert_eq!(
        rdmsr(&mut cpu, &mut plat, 0x8b),
        Ok(1 << 32),
        "microcode revision"
    );
    assert_eq!(rdmsr(&mut cpu, &mut plat, 0x1234), Err(Fault::gp0()));
    assert_eq!(
        rdmsr(&mut cpu, &mut plat, 0xfe),
        Err(Fault::gp0()),
        "no MTRRs"
    );
    // TSC: the write sets an offset against the platform counter.
    plat.tsc = 1000;
    wrmsr(&mut cpu, &mut plat, msr::IA32_TSC, 5000).unwrap();
    plat.tsc = 1100;
    assert_eq!(rdmsr(&mut cpu, &mut plat, msr::IA32_TSC), Ok(5100));
    wrmsr(&mut cpu, &mut plat, msr::IA32_TSC_AUX, 7).unwrap();
    exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0xf9]).unwrap(); // rdtscp
    assert_eq!(cpu.state.gpr[reg::RAX], 5100);
    assert_eq!(cpu.state.gpr[reg::RCX], 7);
    wrmsr(&mut cpu, &mut plat, msr::IA32_APIC_BASE, 0xfee0_0800).unwrap();
    assert_eq!(plat.apic_base, Some(0xfee0_0900), "BSP bit preserved");
    assert_eq!(
        wrmsr(&mut cpu, &mut plat, msr::IA32_APIC_BASE, 1 << 10),
        gp,
        "no x2APIC"
    );
    // Privileged.
    to_user64(&mut cpu);
    assert_eq!(
        rdmsr(&mut cpu, &mut plat, msr::IA32_EFER),
        Err(Fault::gp0())
    );
    // RDTSC at CPL 3 is allowed unless CR4.TSD.
    exec(&mut cpu, &mut plat, &[0x0f, 0x31]).unwrap();
    cpu.state.cr4 |= cr4::TSD;
    assert_eq!(exec(&mut cpu, &mut plat, &[0x0f, 0x31]), gp);
}

#[test]
fn cpuid_model() {
    use super::cpuid::{cpuid, cpuid_entries, feature};
    let [max, b, c, d] = cpuid(0, 0);
    assert!(max >= 0xd);
    let mut vendor = Vec::new();
    for x in [b, d, c] {
        vendor.extend_from_slice(&x.to_le_bytes());
    }
    assert_eq!(vendor, b"GenuineIntel");
    let mut brand = Vec::new();
    for l in 0x8000_0002..=0x8000_0004 {
        for x in cpuid(l, 0) {
            brand.extend_from_slice(&x.to_le_bytes());
        }
    }
    assert!(brand.starts_with(b"ringside virtual CPU\0"));
    let [_, _, ecx, edx] = cpuid(1, 0);
    assert_eq!(edx & 1, 1, "FPU");
    assert_eq!(
        edx & (1 << 25 | 1 << 26 | 1 << 24),
        1 << 25 | 1 << 26 | 1 << 24,
        "SSE/SSE2/FXSR"
    );
    assert_eq!(edx & (1 << 23), 1 << 23, "MMX");
    assert_eq!(ecx & (1 << 26), 0, "no XSAVE");
    assert_ne!(edx & feature::l1_edx::SEP, 0);
    assert_ne!(ecx & feature::l1_ecx::CX16, 0);
    assert_eq!(ecx & (1 << 31), 0, "no hypervisor bit");
    let [e, _, ecx, edx] = cpuid(0x8000_0001, 0);
    assert_eq!(e, 0);
    assert_ne!(edx & feature::e1_edx::LM, 0);
    assert_ne!(ecx & feature::e1_ecx::ABM, 0);
    assert_eq!(cpuid(0x8000_0008, 0)[0], 0x3028);
    // Beyond the maximum: the highest basic leaf.
    assert_eq!(cpuid(0x4000_0000, 0), cpuid(0xd, 0));
    assert_eq!(cpuid(0x8000_0009, 0), cpuid(0xd, 0));
    let entries = cpuid_entries();
    for e in &entries {
        assert_eq!(cpuid(e.function, e.index), [e.eax, e.ebx, e.ecx, e.edx]);
    }
    assert!(entries
        .iter()
        .any(|e| e.function == 7 && e.significant_index));
    // The instruction clears APIC while the APIC is globally disabled.
    let (mut cpu, mut plat) = long_cpu();
    to_user64(&mut cpu);
    cpu.state.gpr[reg::RAX] = 1;
    exec(&mut cpu, &mut plat, &[0x0f, 0xa2]).unwrap();
    assert_ne!(cpu.state.gpr[reg::RDX] as u32 & feature::l1_edx::APIC, 0);
    cpu.state.msr.apic_base &= !(1 << 11);
    cpu.state.gpr[reg::RAX] = 1;
    exec(&mut cpu, &mut plat, &[0x0f, 0xa2]).unwrap();
    assert_eq!(cpu.state.gpr[reg::RDX] as u32 & feature::l1_edx::APIC, 0);
}

// ---- descriptor-table instructions ----

#[test]
fn ltr_lar_lsl_verr_verw() {
    let (mut cpu, mut plat) = prot32_cpu();
    cpu.state.tr = Segment::default();
    cpu.state.gpr[reg::RAX] = TSS_SEL as u64;
    exec(&mut cpu, &mut plat, &[0x0f, 0x00, 0xd8]).unwrap(); // ltr ax
    assert_eq!(gdt_entry(&cpu, TSS_SEL) >> 40 & 0xf, 0xb, "TSS marked busy");
    assert_eq!(cpu.state.tr.attr & 0xf, 0xb);
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x00, 0xd8]),
        Err(Fault::gp(TSS_SEL as u32)),
        "busy TSS"
    );
    cpu.state.gpr[reg::RCX] = UDATA as u64;
    exec(&mut cpu, &mut plat, &[0x0f, 0x02, 0xc1]).unwrap(); // lar eax, ecx
    assert_eq!(cpu.state.gpr[reg::RAX], 0x00c0_f300);
    assert_ne!(cpu.rflags() & rflags::ZF, 0);
    exec(&mut cpu, &mut plat, &[0x0f, 0x03, 0xc1]).unwrap(); // lsl eax, ecx
    assert_eq!(cpu.state.gpr[reg::RAX], 0xffff_ffff);
    cpu.state.gpr[reg::RCX] = 0;
    exec(&mut cpu, &mut plat, &[0x0f, 0x02, 0xc1]).unwrap();
    assert_eq!(cpu.rflags() & rflags::ZF, 0, "null selector");
    cpu.state.gpr[reg::RAX] = XO_CODE as u64;
    exec(&mut cpu, &mut plat, &[0x0f, 0x00, 0xe0]).unwrap(); // verr ax
    assert_eq!(
        cpu.rflags() & rflags::ZF,
        0,
        "execute-only code is not readable"
    );
    cpu.state.gpr[reg::RAX] = KDATA as u64;
    exec(&mut cpu, &mut plat, &[0x0f, 0x00, 0xe8]).unwrap(); // verw ax
    assert_ne!(cpu.rflags() & rflags::ZF, 0);
    // LGDT/SGDT round trip.
    w(&cpu, 0x5000, 2, 0x1234);
    w(&cpu, 0x5002, 4, 0x0008_0000);
    cpu.state.gpr[reg::RAX] = 0x5000;
    exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0x18]).unwrap(); // lidt [eax]
    assert_eq!(
        cpu.state.idtr,
        DescTable {
            base: 0x8_0000,
            limit: 0x1234
        }
    );
    cpu.state.gpr[reg::RAX] = 0x5100;
    exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0x08]).unwrap(); // sidt [eax]
    assert_eq!(r(&cpu, 0x5100, 2), 0x1234);
    assert_eq!(r(&cpu, 0x5102, 4), 0x8_0000);
    // LLDT is #UD in real mode.
    let (mut cpu, mut plat) = new_cpu();
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x00, 0xd0]),
        Err(Fault::UD)
    );
}

#[test]
fn hlt_and_privileged_misc() {
    let (mut cpu, mut plat) = long_cpu();
    exec(&mut cpu, &mut plat, &[0xf4]).unwrap();
    assert!(cpu.state.halted);
    assert_eq!(cpu.state.rip, 0x10_0001);
    to_user64(&mut cpu);
    assert_eq!(exec(&mut cpu, &mut plat, &[0xf4]), Err(Fault::gp0()));
    assert_eq!(exec(&mut cpu, &mut plat, &[0x0f, 0x09]), Err(Fault::gp0())); // wbinvd
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0x38]),
        Err(Fault::gp0())
    ); // invlpg [rax]
       // Non-system instructions are #UD here.
    assert_eq!(exec(&mut cpu, &mut plat, &[0x90]), Err(Fault::UD));
}

// ---- found by the differential suite (accel::difftest) ----

#[test]
fn sixteen_bit_iret_in_64bit_mode_zero_extends_the_popped_sp() {
    // SDM IRET, IA-32e mode: "RSP ← tempRSP": a 16-bit IRET (66 CF) in
    // 64-bit mode leaves RSP = the popped SP, upper bits clear, as the
    // host CPU does.
    let (mut cpu, mut plat) = long_cpu();
    to_user64(&mut cpu);
    let frame = [0x1234u64, UCODE64 as u64, 0x202, 0x5678, UDATA as u64];
    cpu.state.gpr[reg::RSP] = 0x70_0000;
    for (i, v) in frame.iter().enumerate() {
        w(&cpu, 0x70_0000 + i as u64 * 2, 2, *v);
    }
    exec(&mut cpu, &mut plat, &[0x66, 0xcf]).unwrap();
    assert_eq!(cpu.state.rip, 0x1234);
    assert_eq!(cpu.state.gpr[reg::RSP], 0x5678);
    assert_eq!(cpu.state.ss().selector, UDATA);
}

#[test]
fn rep_string_io_checks_the_permission_even_with_a_zero_count() {
    // CPL 3, IOPL 0, no I/O bitmap: REP OUTSB / REP INSB with RCX = 0
    // still raise #GP(0) (the host CPU does; QEMU and Bochs model the
    // check before the repeat loop). Nothing reaches the bus.
    let (mut cpu, mut plat) = long_cpu();
    to_user64(&mut cpu);
    cpu.state.gpr[reg::RCX] = 0;
    cpu.state.gpr[reg::RSI] = 0x5000;
    cpu.state.gpr[reg::RDI] = 0x6000;
    assert_eq!(exec(&mut cpu, &mut plat, &[0xf3, 0x6e]), Err(Fault::gp0()));
    assert_eq!(exec(&mut cpu, &mut plat, &[0xf3, 0x6c]), Err(Fault::gp0()));
    assert!(plat.pio.is_empty());
    assert_eq!(cpu.state.gpr[reg::RSI], 0x5000);
    // At CPL 0 the same zero-count REP does nothing.
    let (mut cpu, mut plat) = long_cpu();
    cpu.state.gpr[reg::RCX] = 0;
    cpu.state.gpr[reg::RSI] = 0x5000;
    exec(&mut cpu, &mut plat, &[0xf3, 0x6e]).unwrap();
    assert!(plat.pio.is_empty());
    assert_eq!(cpu.state.gpr[reg::RSI], 0x5000);
}

// ---- conformance: reserved bits, canonical bases, NMI unblocking ----

#[test]
fn canonical_bases_through_wrmsr_and_lgdt() {
    let (mut cpu, mut plat) = long_cpu();
    let gp = Err(Fault::gp0());
    let bad = 0x0000_8000_0000_0000u64;
    for index in [
        msr::IA32_GS_BASE,
        msr::IA32_KERNEL_GS_BASE,
        msr::IA32_CSTAR,
        msr::IA32_SYSENTER_ESP,
        msr::IA32_SYSENTER_EIP,
    ] {
        assert_eq!(wrmsr(&mut cpu, &mut plat, index, bad), gp, "{index:#x}");
        wrmsr(&mut cpu, &mut plat, index, 0xffff_8000_0000_1000).unwrap();
    }
    // LGDT/LIDT m16&64 [rax]: a non-canonical base is #GP(0) and leaves
    // the register alone.
    let gdtr = cpu.state.gdtr;
    let idtr = cpu.state.idtr;
    w(&cpu, 0xb000, 2, 0x7f);
    w(&cpu, 0xb002, 8, bad);
    cpu.state.gpr[reg::RAX] = 0xb000;
    assert_eq!(exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0x10]), gp);
    assert_eq!(exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0x18]), gp);
    assert_eq!(cpu.state.gdtr, gdtr);
    assert_eq!(cpu.state.idtr, idtr);
    w(&cpu, 0xb002, 8, 0xffff_8000_0000_2000);
    exec(&mut cpu, &mut plat, &[0x0f, 0x01, 0x18]).unwrap();
    assert_eq!(cpu.state.idtr.base, 0xffff_8000_0000_2000);
    assert_eq!(cpu.state.idtr.limit, 0x7f);
}

#[test]
fn cr0_and_efer_mode_rules() {
    let (mut cpu, mut plat) = long_cpu();
    let gp = Err(Fault::gp0());
    let mov_cr0 = [0x0f, 0x22, 0xc0];
    // PG without PE.
    cpu.state.gpr[reg::RAX] = cpu.state.cr0 & !cr0::PE;
    assert_eq!(exec(&mut cpu, &mut plat, &mov_cr0), gp);
    // Clearing PG from 64-bit mode.
    cpu.state.gpr[reg::RAX] = cpu.state.cr0 & !cr0::PG;
    assert_eq!(exec(&mut cpu, &mut plat, &mov_cr0), gp);
    // EFER: LME may not change while paging; reserved bits; LMA ignored.
    let e = cpu.state.efer;
    assert_eq!(
        wrmsr(&mut cpu, &mut plat, msr::IA32_EFER, e & !efer::LME),
        gp
    );
    assert_eq!(
        wrmsr(&mut cpu, &mut plat, msr::IA32_EFER, e | (1 << 12)),
        gp
    );
    assert_eq!(wrmsr(&mut cpu, &mut plat, msr::IA32_EFER, e | (1 << 2)), gp);
    wrmsr(&mut cpu, &mut plat, msr::IA32_EFER, e & !efer::LMA).unwrap();
    assert_eq!(cpu.state.efer, e, "LMA is read-only");
}

#[test]
fn faulting_iret_still_ends_nmi_blocking() {
    let (mut cpu, mut plat) = long_cpu();
    // An IRETQ frame with a null CS: #GP(0) — NMIs are unmasked anyway
    // (SDM Vol. 3A 6.7.1).
    cpu.state.gpr[reg::RSP] = 0x6000;
    for i in 0..5 {
        w(&cpu, 0x6000 + i * 8, 8, 0);
    }
    cpu.state.intr.nmi_blocked = true;
    let r = exec(&mut cpu, &mut plat, &[0x48, 0xcf]);
    assert!(r.is_err(), "IRETQ to a null CS faults");
    assert!(!cpu.state.intr.nmi_blocked);
}

#[test]
fn mov_dr_general_detect_after_ud_and_gp() {
    let (mut cpu, mut plat) = long_cpu();
    cpu.state.dr[7] = 0x400 | (1 << 13);
    cpu.state.cr4 |= cr4::DE;
    // MOV RAX, DR4 with CR4.DE: #UD first.
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x21, 0xe0]),
        Err(Fault::UD)
    );
    // MOV RAX, DR0: #DB (general detect), DR6.BD; GD stays set until the
    // #DB is delivered.
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x21, 0xc0]),
        Err(Fault::DB)
    );
    assert_ne!(cpu.state.dr[6] & (1 << 13), 0);
    // At CPL 3: #GP(0) before #DB.
    to_user64(&mut cpu);
    assert_eq!(
        exec(&mut cpu, &mut plat, &[0x0f, 0x21, 0xc0]),
        Err(Fault::gp0())
    );
}
