//! Tests that run tiny guests on the host's KVM. Each skips (with a printed
//! reason) when `/dev/kvm` is not usable.
//!
//! Guest memory map used here (4 MiB of RAM):
//! 0x0500 GDT, 0x0800 IDT, 0x1000 code, 0x2000 interrupt handler,
//! 0x3000 data, 0x7000 top of stack, 0x10000.. page tables (long mode).

use super::*;
use crate::{Accelerator, RunSlice, VcpuExit};
use cpu::state::{cr0, cr4, efer, reg, rflags, seg_attr, DescTable, SegReg, Segment};
use cpu::Platform;
use iced_x86::code_asm::*;
use mmu::{GuestPhysAddr, MachineAddr};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const RAM: u64 = 4 << 20;
const GDT: u64 = 0x500;
const IDT: u64 = 0x800;
const CODE: u64 = 0x1000;
const HANDLER: u64 = 0x2000;
const DATA: u64 = 0x3000;
const STACK_TOP: u64 = 0x7000;
const PML4: u64 = 0x10000;

const CODE32: u64 = 0x00cf_9b00_0000_ffff;
const DATA32: u64 = 0x00cf_9300_0000_ffff;
const TSS32: u64 = 0x0000_8b00_0000_0067;
const CODE64: u64 = 0x00af_9b00_0000_ffff;

/// Skip the test (return) when KVM can't be used here.
macro_rules! kvm_or_skip {
    () => {{
        let p = probe();
        if !p.available {
            eprintln!("skipping: {}", p.reason.unwrap_or_default());
            return;
        }
    }};
}

/// A machine with a serial port, one input port, MMIO, and a queue of
/// interrupt vectors, recording everything.
#[derive(Default)]
struct TestPlatform {
    out: Vec<(u16, u8, u32)>,
    ins: Vec<(u16, u8)>,
    in_value: u32,
    mmio_writes: Vec<(u64, u8, u64)>,
    mmio_reads: Vec<(u64, u8)>,
    mmio_value: u64,
    pending: VecDeque<u8>,
    acks: Vec<u8>,
    stop_port: Option<u16>,
    stop: bool,
}

impl TestPlatform {
    fn serial(&self) -> String {
        self.out
            .iter()
            .filter(|(p, _, _)| *p == 0x3f8)
            .map(|(_, _, v)| *v as u8 as char)
            .collect()
    }
}

impl Platform for TestPlatform {
    fn pio_in(&mut self, port: u16, size: u8) -> u32 {
        self.ins.push((port, size));
        self.in_value
    }
    fn pio_out(&mut self, port: u16, size: u8, val: u32) {
        self.out.push((port, size, val));
        if self.stop_port == Some(port) {
            self.stop = true;
        }
    }
    fn mmio_read(&mut self, pa: GuestPhysAddr, size: u8) -> u64 {
        self.mmio_reads.push((pa.0, size));
        self.mmio_value
    }
    fn mmio_write(&mut self, pa: GuestPhysAddr, size: u8, val: u64) {
        self.mmio_writes.push((pa.0, size, val));
    }
    fn interrupt_pending(&self) -> bool {
        !self.pending.is_empty()
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        let v = self.pending.pop_front();
        if let Some(v) = v {
            self.acks.push(v);
        }
        v
    }
    fn stop_requested(&self) -> bool {
        self.stop
    }
    fn tsc(&mut self) -> u64 {
        0
    }
}

fn new_vm() -> (KvmAccel, Arc<GuestRam>) {
    let ram = Arc::new(GuestRam::new(RAM).unwrap());
    let accel = KvmAccel::new(ram.clone(), PhysLayout::new(RAM)).unwrap();
    (accel, ram)
}

fn write(ram: &GuestRam, addr: u64, bytes: &[u8]) {
    ram.write(MachineAddr(addr), bytes).unwrap();
}

fn write_gdt(ram: &GuestRam) {
    for (i, d) in [0, CODE32, DATA32, TSS32, CODE64].iter().enumerate() {
        write(ram, GDT + 8 * i as u64, &d.to_le_bytes());
    }
}

/// Assemble `f` for `bitness` at `ip`.
fn asm(
    bitness: u32,
    ip: u64,
    f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(bitness).unwrap();
    f(&mut a).unwrap();
    a.assemble(ip).unwrap()
}

/// A PVH-like entry state: flat 32-bit protected mode, paging off.
fn pm32_state() -> CpuState {
    let mut s = CpuState::reset();
    s.cr0 = cr0::PE | cr0::ET;
    let data = Segment::from_descriptor(0x10, DATA32);
    s.seg = [data; 6];
    *s.sreg_mut(SegReg::Cs) = Segment::from_descriptor(0x08, CODE32);
    s.tr = Segment::from_descriptor(0x18, TSS32);
    s.gdtr = DescTable {
        base: GDT,
        limit: 5 * 8 - 1,
    };
    s.idtr = DescTable {
        base: IDT,
        limit: 0,
    };
    s.gpr[reg::RSP] = STACK_TOP;
    s.rip = CODE;
    s.rflags = rflags::FIXED1;
    s
}

/// 64-bit mode with the first 2 MiB identity-mapped.
fn long_state(ram: &GuestRam) -> CpuState {
    write(ram, PML4, &((PML4 + 0x1000) | 3).to_le_bytes());
    write(ram, PML4 + 0x1000, &((PML4 + 0x2000) | 3).to_le_bytes());
    write(ram, PML4 + 0x2000, &0x83u64.to_le_bytes());
    let mut s = pm32_state();
    *s.sreg_mut(SegReg::Cs) = Segment::from_descriptor(0x20, CODE64);
    s.cr0 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG;
    s.cr3 = PML4;
    s.cr4 = cr4::PAE | cr4::PGE | cr4::OSFXSR | cr4::OSXMMEXCPT;
    s.efer = efer::SCE | efer::LME | efer::LMA | efer::NXE;
    s
}

/// Real mode: CS = 0x0100 (base 0x1000), IP = 0.
fn real_state() -> CpuState {
    let mut s = CpuState::reset();
    *s.sreg_mut(SegReg::Cs) = Segment::real_mode(0x0100, true);
    *s.sreg_mut(SegReg::Ds) = Segment::real_mode(0x0300, false);
    s.rip = 0;
    s.gpr[reg::RSP] = STACK_TOP;
    s
}

/// Run until something other than SliceEnd (a stale kick may end a slice
/// early; that is allowed and harmless).
fn run_to_exit(k: &mut KvmAccel, p: &mut TestPlatform) -> VcpuExit {
    for _ in 0..100 {
        match k.run(p, RunSlice::default()).unwrap() {
            VcpuExit::SliceEnd => continue,
            e => return e,
        }
    }
    panic!("no exit after 100 slices");
}

fn serial_hello(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(dx, 0x3f8u32)?;
    a.mov(al, b'A' as u32)?;
    a.out(dx, al)?;
    a.hlt()
}

#[test]
fn describe_names_the_flavour() {
    kvm_or_skip!();
    let (k, _) = new_vm();
    assert!(k.describe().starts_with("kvm ("), "{}", k.describe());
    assert_eq!(k.name(), "kvm");
    assert_eq!(k.instructions(), None);
    eprintln!("{}; cpuid notes: {:?}", k.describe(), k.cpuid_notes());
    let held: Vec<&str> = k.vcpu.msrs.iter().map(|&m| regs::msr_name(m)).collect();
    eprintln!("MSRs held by KVM: {held:?}");
}

#[test]
fn unavailable_layout_mismatch_is_an_error() {
    kvm_or_skip!();
    let ram = Arc::new(GuestRam::new(RAM).unwrap());
    assert!(KvmAccel::new(ram, PhysLayout::new(RAM * 2)).is_err());
}

#[test]
fn pm32_serial_out_then_hlt() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    write(&ram, CODE, &asm(32, CODE, serial_hello));
    k.set_state(&pm32_state()).unwrap();
    let mut p = TestPlatform::default();
    let exit = run_to_exit(&mut k, &mut p);
    assert_eq!(p.out, vec![(0x3f8, 1, u32::from(b'A'))]);
    assert_eq!(
        exit,
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    let s = k.get_state().unwrap();
    assert!(s.halted);
    assert_eq!(s.gpr[reg::RAX] & 0xff, u64::from(b'A'));
    assert_eq!(k.stats().get("io"), 1);
    assert_eq!(k.stats().get("hlt"), 1);
}

#[test]
fn real_mode_serial_out_then_hlt() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write(&ram, CODE, &asm(16, 0, serial_hello));
    k.set_state(&real_state()).unwrap();
    let mut p = TestPlatform::default();
    let exit = run_to_exit(&mut k, &mut p);
    assert_eq!(p.serial(), "A");
    assert_eq!(
        exit,
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
}

#[test]
fn long_mode_serial_out_then_hlt() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    // Through the page tables: load from a data page, then print it.
    write(&ram, DATA, b"L");
    let code = asm(64, CODE, |a| {
        a.mov(rbx, DATA)?;
        a.mov(al, byte_ptr(rbx))?;
        a.mov(dx, 0x3f8u32)?;
        a.out(dx, al)?;
        a.hlt()
    });
    write(&ram, CODE, &code);
    let s = long_state(&ram);
    k.set_state(&s).unwrap();
    let mut p = TestPlatform::default();
    assert_eq!(
        run_to_exit(&mut k, &mut p),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(p.serial(), "L");
    let after = k.get_state().unwrap();
    assert_eq!(after.rip, CODE + code.len() as u64);
    assert_eq!(after.mode(), cpu::CpuMode::Long64);
}

fn assert_round_trip(k: &mut KvmAccel, s: &CpuState) {
    k.set_state(s).unwrap();
    let back = k.get_state().unwrap();
    assert_eq!(&back, s, "state changed across set_state/get_state");
}

#[test]
fn round_trip_reset_state() {
    kvm_or_skip!();
    let (mut k, _) = new_vm();
    assert_eq!(k.get_state().unwrap(), CpuState::reset());
    assert_round_trip(&mut k, &CpuState::reset());
}

#[test]
fn round_trip_pvh_32bit_state() {
    kvm_or_skip!();
    let (mut k, _) = new_vm();
    let mut s = pm32_state();
    s.gpr[reg::RBX] = 0x6000; // PVH: start_info
    s.gpr[reg::RSI] = 0x1234_5678;
    s.msr.sysenter_cs = 0x08;
    s.msr.sysenter_esp = 0x9000;
    s.msr.sysenter_eip = 0xc010_0000;
    s.msr.pat = 0x0007_0406_0007_0406 ^ 0x0100; // entry 1: WC
    s.dr = [0x1000, 0x2000, 0x3000, 0x4000, 0, 0, 0xffff_0ff0, 0x400];
    s.rflags = rflags::FIXED1 | rflags::CF | rflags::ZF;
    assert_round_trip(&mut k, &s);
}

#[test]
fn round_trip_long_mode_state() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    let mut s = long_state(&ram);
    for (i, g) in s.gpr.iter_mut().enumerate() {
        *g = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 1);
    }
    s.rip = 0xffff_ffff_8100_0000;
    s.rflags = rflags::FIXED1 | rflags::IF | rflags::SF;
    // 64-bit kernels run with null data selectors: unusable segments.
    let null = Segment {
        selector: 0,
        base: 0,
        limit: 0,
        attr: seg_attr::UNUSABLE,
    };
    *s.sreg_mut(SegReg::Es) = null;
    s.sreg_mut(SegReg::Fs).base = 0x7fff_1234_0000;
    s.sreg_mut(SegReg::Gs).base = 0xffff_8880_0000_0000;
    s.cr2 = 0xdead_b000;
    s.cr8 = 5;
    s.msr.star = 0x0023_0010_0000_0000;
    s.msr.lstar = 0xffff_ffff_8100_1000;
    s.msr.cstar = 0xffff_ffff_8100_2000;
    s.msr.fmask = 0x4_7700;
    s.msr.kernel_gs_base = 0xffff_8880_1000_0000;
    s.msr.tsc_aux = 7;
    s.msr.misc_enable = 1 | (1 << 11); // fast strings, BTS unavailable
                                       // (XCR0 stays 1: ringside's CPU model has no XSAVE, so KVM accepts
                                       // nothing else.)
    s.intr.shadow = true;
    s.intr.nmi_blocked = true;
    assert_round_trip(&mut k, &s);
}

#[test]
fn round_trip_real_mode_state() {
    kvm_or_skip!();
    let (mut k, _) = new_vm();
    let mut s = real_state();
    s.gpr[reg::RAX] = 0xaa55;
    s.halted = true;
    assert_round_trip(&mut k, &s);
}

#[test]
fn string_io_in_and_stop_complete_the_instruction() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    write(&ram, DATA, b"hi!");
    let code = asm(32, CODE, |a| {
        a.mov(esi, DATA as u32)?;
        a.mov(ecx, 3u32)?;
        a.mov(dx, 0x3f8u32)?;
        a.rep().outsb()?;
        a.mov(dx, 0x60u32)?;
        a.in_(eax, dx)?;
        a.out(0xf4u32, al)?;
        a.hlt()
    });
    write(&ram, CODE, &code);
    k.set_state(&pm32_state()).unwrap();
    let mut p = TestPlatform {
        in_value: 0x1234_5678,
        stop_port: Some(0xf4),
        ..TestPlatform::default()
    };
    assert_eq!(run_to_exit(&mut k, &mut p), VcpuExit::Stopped);
    assert_eq!(p.serial(), "hi!");
    assert_eq!(p.ins, vec![(0x60, 4)]);
    assert_eq!(p.out.last(), Some(&(0xf4, 1, 0x78)));
    let s = k.get_state().unwrap();
    assert_eq!(s.gpr[reg::RAX], 0x1234_5678, "IN result reached EAX");
    // The OUT completed before run() returned: RIP is on the HLT.
    assert_eq!(s.rip, CODE + code.len() as u64 - 1);
    assert!(!s.halted);
}

#[test]
fn mmio_reads_and_writes_reach_the_platform() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    let code = asm(32, CODE, |a| {
        a.mov(eax, 0xcafe_f00du32)?;
        a.mov(dword_ptr(0xd000_0000u32), eax)?;
        a.mov(bx, word_ptr(0xd000_0010u32))?;
        a.hlt()
    });
    write(&ram, CODE, &code);
    k.set_state(&pm32_state()).unwrap();
    let mut p = TestPlatform {
        mmio_value: 0xbeef,
        ..TestPlatform::default()
    };
    assert!(matches!(run_to_exit(&mut k, &mut p), VcpuExit::Hlt { .. }));
    assert_eq!(p.mmio_writes, vec![(0xd000_0000, 4, 0xcafe_f00d)]);
    assert_eq!(p.mmio_reads, vec![(0xd000_0010, 2)]);
    assert_eq!(k.get_state().unwrap().gpr[reg::RBX] & 0xffff, 0xbeef);
    assert_eq!(k.stats().get("mmio"), 2);
}

/// IDT gate for `vector` → HANDLER, 32-bit interrupt gate.
fn write_idt32(ram: &GuestRam, vector: u64) {
    let gate = (HANDLER & 0xffff) | (0x08 << 16) | (0x8e00u64 << 32) | ((HANDLER >> 16) << 48);
    write(ram, IDT + 8 * vector, &gate.to_le_bytes());
}

#[test]
fn interrupts_are_injected_only_when_the_guest_can_take_them() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    write_idt32(&ram, 0x20);
    // kvm-pvm cannot emulate IRET in protected mode (see
    // `iret_is_a_host_limit_on_kvm_pvm`), so the handler returns by hand:
    // pop EIP, CS, EFLAGS (restoring IF), jump back. Same effect here.
    let handler = asm(32, HANDLER, |a| {
        a.push(eax)?;
        a.push(edx)?;
        a.mov(dx, 0x3f8u32)?;
        a.mov(al, b'I' as u32)?;
        a.out(dx, al)?;
        a.pop(edx)?;
        a.pop(eax)?;
        a.pop(dword_ptr(DATA as u32))?; // EIP
        a.add(esp, 4)?; // CS (unchanged)
        a.popfd()?;
        a.jmp(dword_ptr(DATA as u32))
    });
    write(&ram, HANDLER, &handler);
    let code = asm(32, CODE, |a| {
        a.mov(dx, 0x3f8u32)?;
        a.mov(al, b'a' as u32)?;
        a.out(dx, al)?; // IF = 0: the pending interrupt must wait
        a.sti()?;
        a.mov(al, b'b' as u32)?; // STI shadow: taken after this one
        a.out(dx, al)?;
        a.hlt()?; // IF = 1: woken by the next interrupt
        a.mov(al, b'c' as u32)?;
        a.out(dx, al)?;
        a.hlt()?;
        a.mov(al, b'd' as u32)?;
        a.out(dx, al)?;
        a.cli()?;
        a.hlt()
    });
    write(&ram, CODE, &code);
    let mut s = pm32_state();
    s.idtr.limit = 0x21 * 8 - 1;
    k.set_state(&s).unwrap();
    let mut p = TestPlatform::default();
    p.pending.push_back(0x20);
    // SDM: STI's shadow covers one instruction, so the interrupt arrives
    // between the MOV after STI and the OUT of 'b' when the host opens the
    // interrupt window precisely (VT-x/AMD-V interrupt-window exits).
    // kvm-pvm emulates this code in batches and notices the open window
    // only at the next exit, the OUT: the interrupt comes one instruction
    // late, which a guest cannot tell from an interrupt raised later.
    let exit = run_to_exit(&mut k, &mut p);
    if probe().kind == KvmFlavour::Pvm {
        assert!(
            ["aIb", "abI"].contains(&p.serial().as_str()),
            "{}",
            p.serial()
        );
    } else {
        assert_eq!(p.serial(), "aIb");
    }
    assert_eq!(
        exit,
        VcpuExit::Hlt {
            interrupts_enabled: true
        }
    );
    assert_eq!(p.acks, vec![0x20]);
    // Halted and nothing pending: stays halted without running.
    let rip = k.get_state().unwrap().rip;
    assert_eq!(
        k.run(&mut p, RunSlice::default()).unwrap(),
        VcpuExit::Hlt {
            interrupts_enabled: true
        }
    );
    assert_eq!(k.get_state().unwrap().rip, rip);
    assert!(k.get_state().unwrap().halted);
    // An interrupt wakes it; the handler returns after the HLT.
    p.pending.push_back(0x20);
    assert_eq!(
        run_to_exit(&mut k, &mut p),
        VcpuExit::Hlt {
            interrupts_enabled: true
        }
    );
    assert!(p.serial().ends_with("Ic"), "{}", p.serial());
    p.pending.push_back(0x20);
    assert_eq!(
        run_to_exit(&mut k, &mut p),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert!(p.serial().ends_with("IcId"), "{}", p.serial());
    assert_eq!(p.acks, vec![0x20; 3]);
    // IF = 0 and an interrupt pending: a dead halt, never acknowledged.
    p.pending.push_back(0x20);
    assert_eq!(
        k.run(&mut p, RunSlice::default()).unwrap(),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(p.acks.len(), 3);
}

/// 64-bit IDT gate for `vector` → HANDLER.
fn write_idt64(ram: &GuestRam, vector: u64) {
    let lo =
        (HANDLER & 0xffff) | (0x20 << 16) | (0x8e00u64 << 32) | ((HANDLER >> 16 & 0xffff) << 48);
    let hi = HANDLER >> 32;
    write(ram, IDT + 16 * vector, &lo.to_le_bytes());
    write(ram, IDT + 16 * vector + 8, &hi.to_le_bytes());
}

/// A 64-bit guest woken from HLT by an interrupt, with a real IRETQ.
#[test]
fn long_mode_interrupt_wakes_hlt() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    write_idt64(&ram, 0x30);
    let handler = asm(64, HANDLER, |a| {
        a.mov(dx, 0x3f8u32)?;
        a.mov(al, b'I' as u32)?;
        a.out(dx, al)?;
        a.iretq()
    });
    write(&ram, HANDLER, &handler);
    let code = asm(64, CODE, |a| {
        a.sti()?;
        a.hlt()?;
        a.mov(dx, 0x3f8u32)?;
        a.mov(al, b'x' as u32)?;
        a.out(dx, al)?;
        a.cli()?;
        a.hlt()
    });
    write(&ram, CODE, &code);
    let mut s = long_state(&ram);
    s.idtr.limit = 0x31 * 16 - 1;
    k.set_state(&s).unwrap();
    let mut p = TestPlatform::default();
    assert_eq!(
        run_to_exit(&mut k, &mut p),
        VcpuExit::Hlt {
            interrupts_enabled: true
        }
    );
    assert_eq!(p.serial(), "");
    p.pending.push_back(0x30);
    assert_eq!(
        run_to_exit(&mut k, &mut p),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(p.serial(), "Ix");
    assert_eq!(p.acks, vec![0x30]);
}

/// The guest's CPUID instruction answers from ringside's model, as the
/// interpreter does.
#[test]
fn guest_sees_ringside_cpuid() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    let leaves: [(u32, u32); 8] = [
        (0, 0),
        (1, 0),
        (7, 0),
        (0x8000_0000, 0),
        (0x8000_0001, 0),
        (0x8000_0002, 0),
        (0x8000_0008, 0),
        (0x4000_0000, 0), // above the basic range: highest basic leaf
    ];
    let code = asm(64, CODE, |a| {
        a.mov(rdi, DATA)?;
        for (leaf, sub) in leaves {
            a.mov(eax, leaf)?;
            a.mov(ecx, sub)?;
            a.cpuid()?;
            a.mov(dword_ptr(rdi), eax)?;
            a.mov(dword_ptr(rdi + 4), ebx)?;
            a.mov(dword_ptr(rdi + 8), ecx)?;
            a.mov(dword_ptr(rdi + 12), edx)?;
            a.add(rdi, 16)?;
        }
        a.hlt()
    });
    write(&ram, CODE, &code);
    k.set_state(&long_state(&ram)).unwrap();
    let mut p = TestPlatform::default();
    assert!(matches!(run_to_exit(&mut k, &mut p), VcpuExit::Hlt { .. }));
    // What the guest reads is ringside's model, except where the host KVM
    // rewrote the table (kvm-pvm does for leaves 1, 7 and 0xd), and then
    // the notes must say exactly that.
    let notes = k.cpuid_notes().join("\n");
    for (i, (leaf, sub)) in leaves.iter().enumerate() {
        let mut got = [0u32; 4];
        for (j, r) in got.iter_mut().enumerate() {
            let at = DATA + 16 * i as u64 + 4 * j as u64;
            *r = ram.read_le(MachineAddr(at), 4).unwrap() as u32;
        }
        let model = cpu::cpuid(*leaf, *sub);
        // Out of range: answered from the highest basic leaf, 0xd.
        let (leaf, sub) = if *leaf == 0x4000_0000 {
            (0xd, 0)
        } else {
            (*leaf, *sub)
        };
        for (r, name) in ["EAX", "EBX", "ECX", "EDX"].iter().enumerate() {
            if got[r] != model[r] {
                let note = format!(
                    "leaf {leaf:#x}.{sub} {name}: ringside {:#010x}, guest sees {:#010x}",
                    model[r], got[r]
                );
                assert!(
                    notes.contains(&note),
                    "undeclared CPUID difference: {note}\nnotes:\n{notes}"
                );
            }
        }
    }
    if probe().kind != KvmFlavour::Pvm {
        assert!(!notes.contains(cpuid::REWRITE_NOTE), "{notes}");
    }
}

#[test]
fn deadline_kick_ends_a_spinning_guest() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    let spin = asm(32, CODE, |a| {
        let mut l = a.create_label();
        a.set_label(&mut l)?;
        a.jmp(l)
    });
    write(&ram, CODE, &spin);
    k.set_state(&pm32_state()).unwrap();
    let mut p = TestPlatform::default();
    for ms in [50u64, 10, 30] {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(ms);
        let exit = k
            .run(
                &mut p,
                RunSlice {
                    deadline: Some(deadline),
                    insn_limit: None,
                },
            )
            .unwrap();
        let took = start.elapsed();
        assert_eq!(exit, VcpuExit::SliceEnd);
        assert!(took >= Duration::from_millis(ms), "{took:?}");
        assert!(
            took < Duration::from_millis(ms + 500),
            "kick late: {took:?}"
        );
    }
    assert!(k.stats().get("intr") >= 3);
    // A deadline already past still ends the slice, after a minimal run.
    let exit = k
        .run(
            &mut p,
            RunSlice {
                deadline: Some(Instant::now()),
                insn_limit: None,
            },
        )
        .unwrap();
    assert_eq!(exit, VcpuExit::SliceEnd);
    // After kicked slices, a run without deadline still works normally.
    write(&ram, CODE, &asm(32, CODE, serial_hello));
    k.set_state(&pm32_state()).unwrap();
    assert!(matches!(run_to_exit(&mut k, &mut p), VcpuExit::Hlt { .. }));
    assert_eq!(p.serial(), "A");
}

/// Does the host deliver a pending interrupt to a guest that enables
/// interrupts and then spins without exiting?
#[test]
fn interrupt_reaches_a_spinning_guest() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    write_idt32(&ram, 0x20);
    let handler = asm(32, HANDLER, |a| {
        a.mov(dx, 0x3f8u32)?;
        a.mov(al, b'I' as u32)?;
        a.out(dx, al)?;
        a.cli()?;
        a.hlt()
    });
    write(&ram, HANDLER, &handler);
    let spin = asm(32, CODE, |a| {
        let mut l = a.create_label();
        a.sti()?;
        a.set_label(&mut l)?;
        a.jmp(l)
    });
    write(&ram, CODE, &spin);
    let mut s = pm32_state();
    s.idtr.limit = 0x21 * 8 - 1;
    k.set_state(&s).unwrap();
    let mut p = TestPlatform::default();
    p.pending.push_back(0x20);
    let start = Instant::now();
    let exit = k
        .run(
            &mut p,
            RunSlice {
                deadline: Some(start + Duration::from_secs(2)),
                insn_limit: None,
            },
        )
        .unwrap();
    eprintln!(
        "{exit:?} after {:?}, stats {:?}",
        start.elapsed(),
        k.stats()
    );
    assert_eq!(
        exit,
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(p.serial(), "I");
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// Reading guest code for error messages goes through the guest's page
/// tables (KVM_TRANSLATE) and the RAM layout.
#[test]
fn code_bytes_are_read_through_the_page_tables() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    let s = long_state(&ram);
    // Map 0x20_0000-0x3f_ffff onto physical 0-0x1f_ffff as well.
    write(&ram, PML4 + 0x2000 + 8, &0x83u64.to_le_bytes());
    k.set_state(&s).unwrap();
    let bytes: Vec<u8> = (1..=15).collect();
    write(&ram, 0x1ff8, &bytes); // crosses a 4 KiB boundary
    assert_eq!(k.vcpu.read_code(0x1ff8), bytes);
    assert_eq!(k.vcpu.read_code(0x20_1ff8), bytes);
    assert_eq!(
        k.vcpu.read_code(0x3f_fffc),
        vec![0; 4],
        "up to the unmapped page"
    );
    assert!(k.vcpu.read_code(0x40_0000).is_empty(), "unmapped");
}

#[test]
fn triple_fault_is_a_shutdown() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    write(&ram, CODE, &asm(32, CODE, |a| a.ud2()));
    k.set_state(&pm32_state()).unwrap(); // IDT limit 0: #UD → #DF → shutdown
    let mut p = TestPlatform::default();
    match run_to_exit(&mut k, &mut p) {
        VcpuExit::Shutdown { reason } => assert!(reason.contains("triple fault")),
        e => panic!("expected a shutdown, got {e:?}"),
    }
    assert_eq!(k.stats().get("shutdown"), 1);
}

/// What became of one instruction in [`try_instruction`].
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ran,
    HostLimit(String),
    /// The guest took this exception vector.
    Exception(u8),
    Other(VcpuExit),
}

/// Run `f`'s code at CPL 0 (32-bit protected or 64-bit mode, EBX pointing
/// at a data page), then OUT 'k' + HLT. Exceptions 0-31 land in stubs
/// that report the vector on port 0x80.
fn try_instruction(
    bitness: u32,
    f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Outcome {
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    for v in 0..32u64 {
        let stub = HANDLER + 16 * v;
        let code = asm(bitness, stub, |a| {
            a.mov(al, v as u32)?;
            a.out(0x80u32, al)?;
            a.hlt()
        });
        write(&ram, stub, &code);
        if bitness == 64 {
            let lo = (stub & 0xffff) | (0x20 << 16) | (0x8e00u64 << 32) | ((stub >> 16) << 48);
            write(&ram, IDT + 16 * v, &lo.to_le_bytes());
            write(&ram, IDT + 16 * v + 8, &0u64.to_le_bytes());
        } else {
            let gate = (stub & 0xffff) | (0x08 << 16) | (0x8e00u64 << 32) | ((stub >> 16) << 48);
            write(&ram, IDT + 8 * v, &gate.to_le_bytes());
        }
    }
    let code = asm(bitness, CODE, |a| {
        a.mov(ebx, DATA as u32)?;
        f(a)?;
        a.mov(dx, 0x3f8u32)?;
        a.mov(al, b'k' as u32)?;
        a.out(dx, al)?;
        a.hlt()
    });
    write(&ram, CODE, &code);
    let mut s = if bitness == 64 {
        long_state(&ram)
    } else {
        pm32_state()
    };
    s.idtr.limit = if bitness == 64 {
        32 * 16 - 1
    } else {
        32 * 8 - 1
    };
    k.set_state(&s).unwrap();
    let mut p = TestPlatform::default();
    match run_to_exit(&mut k, &mut p) {
        VcpuExit::HostLimit { detail } => Outcome::HostLimit(detail),
        VcpuExit::Hlt { .. } if p.serial() == "k" => Outcome::Ran,
        VcpuExit::Hlt { .. } => match p.out.iter().find(|o| o.0 == 0x80) {
            Some(&(_, _, v)) => Outcome::Exception(v as u8),
            None => Outcome::Other(VcpuExit::Hlt {
                interrupts_enabled: false,
            }),
        },
        e => Outcome::Other(e),
    }
}

/// POPCNT at CPL 0: the host CPU has it, but kvm-pvm runs CPL-0 code in
/// KVM's instruction emulator, which does not implement it, and says so
/// with an emulation failure. (MOVBE, the other classic, is worse here:
/// the emulator injects #UD into the guest although CPUID advertises it,
/// a divergence from tcg that the backend cannot see; see
/// `explore_host_emulator`.)
#[test]
fn instruction_kvm_pvm_cannot_emulate_is_a_host_limit() {
    kvm_or_skip!();
    if probe().kind != KvmFlavour::Pvm {
        eprintln!("skipping: POPCNT runs natively on VT-x/AMD-V; this checks kvm-pvm's emulator");
        return;
    }
    let Outcome::HostLimit(detail) = try_instruction(32, |a| a.popcnt(eax, dword_ptr(ebx))) else {
        panic!("kvm-pvm emulated POPCNT: its emulator learnt it, update this test");
    };
    eprintln!("{detail}");
    assert!(
        detail.contains("could not emulate the instruction"),
        "{detail}"
    );
    assert!(
        detail.contains("(bytes f3 0f b8 03 = `popcnt eax,[ebx]`)"),
        "{detail}"
    );
    assert!(detail.contains("not a ringside bug"), "{detail}");
    assert!(detail.contains(&format!("RIP {:#x}", CODE + 5)), "{detail}");
}

/// IRET to the next stage, at CPL 0; `None` if it ran, `Some(detail)` if
/// the host KVM gave up.
fn try_iret(bitness: u32, set_if: bool) -> Option<String> {
    let (mut k, ram) = new_vm();
    write_gdt(&ram);
    let target = CODE + 0x200;
    let code = asm(bitness, CODE, |a| {
        if bitness == 64 {
            a.mov(rax, rsp)?;
            a.push(0x10)?; // SS
            a.push(rax)?; // RSP
            a.pushfq()?;
            if set_if {
                a.or(qword_ptr(rsp), 0x200)?;
            }
            a.push(0x20)?; // CS
            a.push(target as i32)?;
            a.iretq()
        } else {
            a.pushfd()?;
            if set_if {
                a.or(dword_ptr(esp), 0x200)?;
            }
            a.push(0x08u32)?;
            a.push(target as u32)?;
            a.iretd()
        }
    });
    write(&ram, CODE, &code);
    write(&ram, target, &asm(bitness, target, serial_hello));
    let s = if bitness == 64 {
        long_state(&ram)
    } else {
        pm32_state()
    };
    k.set_state(&s).unwrap();
    let mut p = TestPlatform::default();
    match run_to_exit(&mut k, &mut p) {
        VcpuExit::HostLimit { detail } => Some(detail),
        VcpuExit::Hlt { .. } if p.serial() == "A" => None,
        e => panic!("IRET test: unexpected {e:?}"),
    }
}

/// An interrupt handler's IRET at CPL 0. On kvm-pvm, CPL-0 code runs in
/// KVM's instruction emulator, whose IRET handles real mode only; PVM
/// itself handles the 64-bit IRETQ (it is built for 64-bit guests). So a
/// 32-bit interrupt-driven kernel stops at its first IRET on this host,
/// while a 64-bit one gets through.
#[test]
fn iret_on_kvm_pvm_works_only_in_64_bit_mode() {
    kvm_or_skip!();
    for (bits, set_if) in [(32, false), (32, true), (64, false), (64, true)] {
        let r = try_iret(bits, set_if);
        if probe().kind == KvmFlavour::Pvm && bits == 32 {
            let detail = r.expect("kvm-pvm emulated a 32-bit IRET: update this test");
            assert!(detail.contains("(bytes cf = `iretd`)"), "{detail}");
        } else {
            assert_eq!(r, None, "{bits}-bit IRET (IF {set_if}) must work");
        }
    }
}

/// Ring 3 → SYSCALL → ring 0 in 64-bit mode: the handler must run with
/// CS = STAR[47:32] at CPL 0 and may do port I/O and HLT.
///
/// kvm-pvm gets this wrong for guests that are not PVM-aware: ring-3 code
/// runs natively and reads the host's user CS selector (0x33), and SYSCALL
/// jumps to LSTAR but stays in ring 3, so the handler's HLT raises #GP.
/// (This is why `images/rings` fails under `--accel kvm` on such a host.)
/// The guest cannot be warned: nothing exits to ringside. The test pins
/// that behaviour down so a host fix shows up here.
#[test]
fn syscall_from_ring3_enters_ring0() {
    kvm_or_skip!();
    let (mut k, ram) = new_vm();
    // 0x08 kernel code64, 0x10 kernel data, 0x18 user code32 (SYSRET base),
    // 0x20 user data, 0x28 user code64.
    let gdt = [
        0,
        CODE64,
        DATA32,
        0x00cf_fb00_0000_ffff,
        0x00cf_f300_0000_ffff,
        0x00af_fb00_0000_ffff,
    ];
    for (i, d) in gdt.iter().enumerate() {
        write(&ram, GDT + 8 * i as u64, &d.to_le_bytes());
    }
    let user = CODE + 0x800;
    let kernel = asm(64, CODE, |a| {
        a.mov(ecx, 0xc000_0081u32)?; // STAR
        a.xor(eax, eax)?;
        a.mov(edx, (0x18u32 << 16) | 0x08)?;
        a.wrmsr()?;
        a.mov(ecx, 0xc000_0082u32)?; // LSTAR
        a.mov(eax, HANDLER as u32)?;
        a.xor(edx, edx)?;
        a.wrmsr()?;
        a.push(0x23)?; // SS
        a.push(0x6000)?; // RSP
        a.push(0x2)?; // RFLAGS: IOPL 0, IF 0
        a.push(0x2b)?; // CS
        a.push(user as i32)?;
        a.iretq()
    });
    write(&ram, CODE, &kernel);
    let user_code = asm(64, user, |a| {
        a.mov(ax, cs)?;
        a.mov(word_ptr(DATA as u32), ax)?;
        a.syscall()
    });
    write(&ram, user, &user_code);
    let handler = asm(64, HANDLER, |a| {
        a.mov(ax, cs)?;
        a.out(0x80u32, al)?;
        a.mov(ax, word_ptr(DATA as u32))?;
        a.out(0x81u32, al)?;
        a.hlt()
    });
    write(&ram, HANDLER, &handler);
    // Exceptions report their vector on port 0x90 (a TSS gives RSP0).
    let tss_base = 0x4000u64;
    write(&ram, tss_base + 4, &0x7000u64.to_le_bytes()); // RSP0
    let tss_lo = 0x67 | ((tss_base & 0xff_ffff) << 16) | (0x89u64 << 40);
    write(&ram, GDT + 0x30, &tss_lo.to_le_bytes());
    write(&ram, GDT + 0x38, &0u64.to_le_bytes());
    for v in 0..32u64 {
        let stub = HANDLER + 0x400 + 16 * v;
        write(
            &ram,
            stub,
            &asm(64, stub, |a| {
                a.mov(al, v as u32)?;
                a.out(0x90u32, al)?;
                a.hlt()
            }),
        );
        let lo = (stub & 0xffff) | (0x08 << 16) | (0x8e00u64 << 32) | ((stub >> 16) << 48);
        write(&ram, IDT + 16 * v, &lo.to_le_bytes());
        write(&ram, IDT + 16 * v + 8, &0u64.to_le_bytes());
    }
    let mut s = long_state(&ram);
    // User-accessible page tables.
    write(&ram, PML4, &((PML4 + 0x1000) | 7).to_le_bytes());
    write(&ram, PML4 + 0x1000, &((PML4 + 0x2000) | 7).to_le_bytes());
    write(&ram, PML4 + 0x2000, &0x87u64.to_le_bytes());
    *s.sreg_mut(SegReg::Cs) = Segment::from_descriptor(0x08, CODE64);
    for r in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
        *s.sreg_mut(r) = Segment::from_descriptor(0x10, DATA32);
    }
    s.tr = Segment {
        selector: 0x30,
        base: tss_base,
        limit: 0x67,
        attr: 0x8b,
    };
    s.gdtr.limit = 8 * 8 - 1;
    s.idtr.limit = 32 * 16 - 1;
    k.set_state(&s).unwrap();
    let mut p = TestPlatform::default();
    let exit = run_to_exit(&mut k, &mut p);
    let st = k.get_state().unwrap();
    let frame: Vec<u64> = (0..6)
        .map(|i| {
            ram.read_le(MachineAddr(st.gpr[reg::RSP] + 8 * i), 8)
                .unwrap()
        })
        .collect();
    eprintln!(
        "{exit:?}, port writes {:x?}, now CS {:#x} RIP {:#x}, stack {frame:x?}",
        p.out,
        st.cs().selector,
        st.rip
    );
    assert_eq!(
        exit,
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    if probe().kind == KvmFlavour::Pvm {
        // CS reads 0x33 in both places, then #GP (13) on the handler's
        // HLT, pushed with the guest's ring-3 CS 0x2b.
        assert_eq!(p.out, vec![(0x80, 1, 0x33), (0x81, 1, 0x33), (0x90, 1, 13)]);
        assert_eq!(frame[2], 0x2b);
    } else {
        assert_eq!(p.out, vec![(0x80, 1, 0x08), (0x81, 1, 0x2b)]);
    }
}

/// Which instructions does this host's KVM fail on? Informational:
/// `cargo test -p accel -- --ignored --nocapture explore`.
#[test]
#[ignore]
fn explore_host_emulator() {
    kvm_or_skip!();
    type Insn = fn(&mut CodeAssembler) -> Result<(), IcedError>;
    let list: [(&str, Insn); 13] = [
        ("lgdt", |a| {
            a.sgdt(ptr(ebx))?;
            a.lgdt(ptr(ebx))
        }),
        ("movbe", |a| a.movbe(eax, dword_ptr(ebx))),
        ("clflushopt", |a| a.clflushopt(byte_ptr(ebx))),
        ("clflush", |a| a.clflush(byte_ptr(ebx))),
        ("clac", |a| a.clac()),
        ("popcnt", |a| a.popcnt(eax, dword_ptr(ebx))),
        ("bswap", |a| a.bswap(eax)),
        ("cpuid", |a| {
            a.xor(eax, eax)?;
            a.cpuid()
        }),
        ("rdtsc", |a| a.rdtsc()),
        ("movdqu", |a| a.movdqu(xmm0, xmmword_ptr(ebx))),
        ("xchg-mem", |a| a.xchg(dword_ptr(ebx), eax)),
        ("lock-cmpxchg", |a| a.lock().cmpxchg(dword_ptr(ebx), ecx)),
        ("rep-movsb", |a| {
            a.mov(esi, ebx)?;
            a.mov(edi, ebx)?;
            a.mov(ecx, 16u32)?;
            a.rep().movsb()
        }),
    ];
    for bits in [32, 64] {
        for (name, f) in list {
            let verdict = match try_instruction(bits, f) {
                Outcome::Ran => "ok".to_string(),
                Outcome::HostLimit(d) => format!("HOST LIMIT: {d}"),
                Outcome::Exception(v) => format!("exception {v}"),
                Outcome::Other(e) => format!("other exit: {e:?}"),
            };
            eprintln!("{bits}-bit CPL0 {name}: {verdict}");
        }
    }
}
