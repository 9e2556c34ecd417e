//! Tests of the hw monitor: a hand-assembled 64-bit guest (iced-x86's
//! code assembler) running in modelled non-root mode over scattered
//! machine memory, with a test platform that records what reaches it.

use super::vmcs::{ept_qual, io_qual, proc1};
use super::*;
use crate::monitor::{MachineMemory, TrapCause};
use cpu::state::{cr0, cr4, efer, DescTable, SegReg, Segment};
use iced_x86::code_asm::*;
use mmu::{GuestPhysAddr, MachineAddr};

const RAM: u64 = 4 << 20;
const GDT: u64 = 0x1000;
const IDT: u64 = 0x2000;
/// 16-byte stubs, one per vector: mark `DATA + vector`, then HLT
/// (exceptions) or IRETQ (vectors 32+).
const STUBS: u64 = 0x3000;
const CODE: u64 = 0x4000;
const STACK_TOP: u64 = 0x8000;
const DATA: u64 = 0x9000;
const PML4: u64 = 0x10000;
const VECTORS: u64 = 48;
/// A guest-virtual page whose PTE points past guest RAM.
const PAST_RAM_VA: u64 = 0x20_0000;
const PAST_RAM_GPA: u64 = 0x80_0000;

/// A machine with nothing but recorders.
#[derive(Default)]
struct TestPlat {
    outs: Vec<(u16, u8, u32)>,
    ins: Vec<(u16, u8)>,
    mmio_reads: Vec<u64>,
    mmio_writes: Vec<(u64, u64)>,
    traps: Vec<TrapEvent>,
    irq: Option<u8>,
}

impl Platform for TestPlat {
    fn pio_in(&mut self, port: u16, size: u8) -> u32 {
        self.ins.push((port, size));
        0x5a
    }
    fn pio_out(&mut self, port: u16, size: u8, val: u32) {
        self.outs.push((port, size, val));
    }
    fn mmio_read(&mut self, pa: GuestPhysAddr, _size: u8) -> u64 {
        // Nothing decodes these addresses: an unclaimed bus read.
        self.mmio_reads.push(pa.0);
        u64::MAX
    }
    fn mmio_write(&mut self, pa: GuestPhysAddr, _size: u8, val: u64) {
        self.mmio_writes.push((pa.0, val));
    }
    fn interrupt_pending(&self) -> bool {
        self.irq.is_some()
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        self.irq.take()
    }
    fn stop_requested(&self) -> bool {
        false
    }
    fn tsc(&mut self) -> u64 {
        0
    }
    fn event(&mut self, ev: &CpuEvent) {
        if let CpuEvent::Trap(t) = ev {
            self.traps.push(t.clone());
        }
    }
}

fn put64(img: &GuestRam, gpa: u64, v: u64) {
    img.write_le(MachineAddr(gpa), 8, v).unwrap();
}

fn assemble(ip: u64, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a).unwrap();
    a.assemble(ip).unwrap()
}

/// The guest image: GDT, IDT + stubs, 4-level tables mapping the first
/// 2 MiB with 4 KiB pages (identity) and `PAST_RAM_VA` → `PAST_RAM_GPA`,
/// and `code` at `CODE`. Returns the monitor (tracing traps) and the
/// boot state.
fn guest(code: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> HwMonitor {
    let img = GuestRam::new(RAM).unwrap();
    // GDT: null, 64-bit code (0x08), data (0x10).
    put64(&img, GDT + 8, 0x00af_9b00_0000_ffff);
    put64(&img, GDT + 16, 0x00cf_9300_0000_ffff);
    for v in 0..VECTORS {
        let stub = STUBS + 16 * v;
        let bytes = assemble(stub, |a| {
            a.mov(byte_ptr(DATA + v), 1)?;
            if v < 32 {
                a.hlt()
            } else {
                a.iretq()
            }
        });
        assert!(bytes.len() <= 16);
        img.write(MachineAddr(stub), &bytes).unwrap();
        let lo = (stub & 0xffff) | (0x08 << 16) | (0x8e00 << 32) | (((stub >> 16) & 0xffff) << 48);
        put64(&img, IDT + 16 * v, lo);
        put64(&img, IDT + 16 * v + 8, stub >> 32);
    }
    let (pdpt, pd, pt0, pt1) = (PML4 + 0x1000, PML4 + 0x2000, PML4 + 0x3000, PML4 + 0x4000);
    put64(&img, PML4, pdpt | 3);
    put64(&img, pdpt, pd | 3);
    put64(&img, pd, pt0 | 3);
    put64(&img, pd + 8, pt1 | 3);
    for i in 0..512 {
        put64(&img, pt0 + 8 * i, (i << 12) | 3);
    }
    put64(&img, pt1, PAST_RAM_GPA | 3);
    img.write(MachineAddr(CODE), &assemble(CODE, code)).unwrap();

    let mem = MachineMemory::new(PhysLayout::new(RAM)).unwrap();
    mem.load_image(&img).unwrap();
    let mut mon = HwMonitor::new(mem).unwrap();
    let mut s = CpuState::reset();
    let data = Segment::from_descriptor(0x10, 0x00cf_9300_0000_ffff);
    s.seg = [data; 6];
    *s.sreg_mut(SegReg::Cs) = Segment::from_descriptor(0x08, 0x00af_9b00_0000_ffff);
    s.tr = Segment {
        selector: 0,
        base: 0,
        limit: 0x67,
        attr: 0x8b,
    };
    s.gdtr = DescTable {
        base: GDT,
        limit: 23,
    };
    s.idtr = DescTable {
        base: IDT,
        limit: (VECTORS * 16 - 1) as u16,
    };
    s.cr0 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG;
    s.cr3 = PML4;
    s.cr4 = cr4::PAE;
    s.efer = efer::LME | efer::LMA;
    s.rip = CODE;
    s.rflags = rflags::FIXED1;
    s.gpr[4] = STACK_TOP;
    mon.set_state(&s).unwrap();
    mon.set_trace(TraceFlags {
        int: true,
        ..TraceFlags::default()
    });
    mon
}

fn run(mon: &mut HwMonitor, plat: &mut TestPlat) -> VcpuExit {
    mon.run(
        plat,
        RunSlice {
            deadline: None,
            insn_limit: Some(100_000),
        },
    )
    .unwrap()
}

/// Guest memory at `gpa`, through the p2m.
fn read_guest(mon: &HwMonitor, gpa: u64, size: usize) -> u64 {
    let ma = mon.p2m.lookup(GuestPhysAddr(gpa)).unwrap();
    mon.ram.read_le(ma, size).unwrap()
}

fn details(plat: &TestPlat) -> Vec<&str> {
    plat.traps.iter().map(|t| t.detail.as_str()).collect()
}

#[test]
fn out_cpuid_cr0_exits_with_vtx_reasons_and_qualifications() {
    let mut mon = guest(|a| {
        a.mov(dx, 0x3f8u32)?;
        a.mov(al, 0x41)?;
        a.out(dx, al)?;
        a.out(0x80, al)?;
        a.in_(al, 0x60)?;
        a.mov(byte_ptr(DATA + 0x80), al)?;
        a.mov(eax, 0x4000_0000u32)?;
        a.cpuid()?;
        a.mov(dword_ptr(DATA + 0x100), eax)?;
        a.mov(dword_ptr(DATA + 0x104), ebx)?;
        a.mov(dword_ptr(DATA + 0x108), ecx)?;
        a.mov(dword_ptr(DATA + 0x10c), edx)?;
        a.mov(eax, 1)?;
        a.cpuid()?;
        a.mov(dword_ptr(DATA + 0x110), ecx)?;
        // Rewriting CR0 unchanged touches no owned bit: no exit.
        a.mov(rax, cr0)?;
        a.mov(cr0, rax)?;
        // Clearing PG (owned) exits; the CPU then refuses it in 64-bit
        // mode with #GP, which reaches the guest's handler.
        a.mov(rbx, rax)?;
        a.btr(rbx, 31)?;
        a.mov(cr0, rbx)?;
        a.hlt()
    });
    let mut plat = TestPlat::default();
    let exit = run(&mut mon, &mut plat);
    assert_eq!(
        exit,
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    let d = details(&plat);
    assert_eq!(
        d[0],
        "exit 30 IO_INSTRUCTION qual=0x3f80000 (out 0x3f8, 1 byte)"
    );
    assert_eq!(
        d[1],
        format!(
            "exit 30 IO_INSTRUCTION qual={:#x} (out 0x80, 1 byte)",
            (0x80 << 16) | io_qual::IMMEDIATE
        )
    );
    assert_eq!(
        d[2],
        format!(
            "exit 30 IO_INSTRUCTION qual={:#x} (in 0x60, 1 byte)",
            (0x60 << 16) | io_qual::IMMEDIATE | io_qual::IN
        )
    );
    assert!(
        d[3].starts_with("exit 10 CPUID qual=0x0 (cpuid leaf 0x40000000.0x0"),
        "{}",
        d[3]
    );
    assert!(d[4].starts_with("exit 10 CPUID"), "{}", d[4]);
    // MOV CR0, RBX: CR 0, access type 0 (MOV to CR), GPR 3 in bits 11:8.
    assert_eq!(d[5], "exit 28 CR_ACCESS qual=0x300 (mov cr0, rbx)");
    assert_eq!(d.len(), 7, "{d:#?}");
    assert!(d[6].starts_with("exit 12 HLT"), "{}", d[6]);
    // The devices saw the accesses.
    assert_eq!(plat.outs, vec![(0x3f8, 1, 0x41), (0x80, 1, 0x41)]);
    assert_eq!(plat.ins, vec![(0x60, 1)]);
    assert_eq!(read_guest(&mon, DATA + 0x80, 1), 0x5a);
    // CPUID: the hw signature, and the hypervisor bit.
    assert_eq!(read_guest(&mon, DATA + 0x100, 4), 0x4000_0001);
    let mut sig = Vec::new();
    for off in [0x104, 0x108, 0x10c] {
        sig.extend_from_slice(&(read_guest(&mon, DATA + off, 4) as u32).to_le_bytes());
    }
    assert_eq!(&sig, HW_SIGNATURE);
    assert_ne!(read_guest(&mon, DATA + 0x110, 4) & (1 << 31), 0);
    // #GP (13) reached the guest, through its IDT.
    assert_eq!(read_guest(&mon, DATA + 13, 1), 1);
    // Counts by cause: the unchanged CR0 write was no exit.
    let ms = mon.monitor_stats().unwrap();
    assert_eq!(ms.get(TrapCause::Io), 3);
    assert_eq!(ms.get(TrapCause::Cpuid), 2);
    assert_eq!(ms.get(TrapCause::Privileged), 1);
    assert_eq!(ms.get(TrapCause::Hlt), 1, "the #GP handler's HLT");
    assert_eq!(mon.passthrough_accesses(), 1);
}

#[test]
fn hlt_exit_advances_rip_and_halts_the_vcpu() {
    let mut mon = guest(|a| {
        a.nop()?;
        a.hlt()?;
        a.nop()
    });
    let mut plat = TestPlat::default();
    let exit = run(&mut mon, &mut plat);
    assert_eq!(
        exit,
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(details(&plat), vec!["exit 12 HLT qual=0x0 (hlt)"]);
    assert_eq!(mon.cpu.state.rip, CODE + 2);
    assert!(mon.cpu.state.halted);
    assert_eq!(mon.vmcs().exit.reason, Some(12));
    assert_eq!(mon.vmcs().exit.insn_len, 1);
    assert_eq!(mon.monitor_stats().unwrap().get(TrapCause::Hlt), 1);
    // Still halted, nothing pending: no new exit.
    assert_eq!(
        run(&mut mon, &mut plat),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(plat.traps.len(), 1);
    // HLT was retired (as on the bare interpreter).
    assert_eq!(mon.instructions(), Some(2));
}

#[test]
fn external_interrupt_exits_and_is_injected_after_hlt() {
    let mut mon = guest(|a| {
        a.sti()?;
        a.hlt()?;
        a.mov(byte_ptr(DATA + 0x90), 1)?;
        a.cli()?;
        a.hlt()
    });
    let mut plat = TestPlat::default();
    assert_eq!(
        run(&mut mon, &mut plat),
        VcpuExit::Hlt {
            interrupts_enabled: true
        }
    );
    plat.irq = Some(0x20);
    assert_eq!(
        run(&mut mon, &mut plat),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    let d = details(&plat);
    assert_eq!(d[1], "exit 1 EXTERNAL_INT qual=0x0 (vector 0x20)");
    assert_eq!(mon.vmcs().exit.reason, Some(12));
    // Handler 0x20 ran, then the code after HLT.
    assert_eq!(read_guest(&mon, DATA + 0x20, 1), 1);
    assert_eq!(read_guest(&mon, DATA + 0x90, 1), 1);
    let ms = mon.monitor_stats().unwrap();
    assert_eq!(ms.get(TrapCause::ExternalInterrupt), 1);
    assert_eq!(ms.get(TrapCause::Hlt), 2);
}

#[test]
fn held_interrupt_waits_for_the_window() {
    let mut mon = guest(|a| {
        a.nop()?;
        a.nop()?;
        a.sti()?;
        // The STI shadow covers this one: the window opens after it.
        a.mov(byte_ptr(DATA + 0x91), 1)?;
        a.mov(byte_ptr(DATA + 0x92), 1)?;
        a.cli()?;
        a.hlt()
    });
    // An interrupt acknowledged while IF = 0 (as VT-x's external-
    // interrupt exiting can): held, interrupt-window exiting on.
    mon.held_irqs.push_back(0x21);
    mon.vmcs.proc_based |= proc1::INTR_WINDOW_EXITING;
    let mut plat = TestPlat::default();
    assert_eq!(
        run(&mut mon, &mut plat),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    let d = details(&plat);
    assert!(d[0].starts_with("exit 7 INTERRUPT_WINDOW"), "{d:?}");
    // nop, nop, sti (1 byte each), then the 8-byte shadowed MOV.
    assert_eq!(plat.traps[0].rip, CODE + 3 + 8, "after the shadowed MOV");
    assert_eq!(read_guest(&mon, DATA + 0x21, 1), 1);
    assert_eq!(mon.vmcs.proc_based & proc1::INTR_WINDOW_EXITING, 0);
    assert_eq!(
        mon.monitor_stats().unwrap().get(TrapCause::InterruptWindow),
        1
    );
}

#[test]
fn vmcall_nop_and_unknown() {
    let mut mon = guest(|a| {
        a.mov(eax, 0)?;
        a.vmcall()?;
        a.mov(qword_ptr(DATA + 0x200), rax)?;
        a.mov(eax, 7)?;
        a.vmcall()?;
        a.mov(qword_ptr(DATA + 0x208), rax)?;
        a.hlt()
    });
    let mut plat = TestPlat::default();
    run(&mut mon, &mut plat);
    assert_eq!(read_guest(&mon, DATA + 0x200, 8), 0);
    assert_eq!(read_guest(&mon, DATA + 0x208, 8), u64::MAX);
    assert_eq!(mon.monitor_stats().unwrap().get(TrapCause::Hypercall), 2);
    assert!(details(&plat)[0].starts_with("exit 18 VMCALL"));
}

#[test]
fn two_dimensional_walk_is_24_references() {
    let mon = guest(|a| a.hlt());
    let w = mon.walk_2d(CODE + 0x123);
    assert_eq!(w.levels.len(), 4);
    for l in &w.levels {
        assert_eq!(l.nested.len(), 4, "level {}", l.level);
        assert!(l.entry_ma.is_some());
    }
    assert_eq!(w.final_nested.len(), 4);
    assert_eq!(w.refs, 24);
    assert_eq!(w.nested_refs(), 20);
    let ma = mon.p2m.lookup(GuestPhysAddr(CODE + 0x123)).unwrap();
    assert_eq!(w.ma, Some(ma.0));
    assert_ne!(ma.0, CODE + 0x123, "PA != MA");
    // The guest's PML4 entry really is where the nested walk says.
    let pml4e_ma = mon.p2m.lookup(GuestPhysAddr(PML4)).unwrap();
    assert_eq!(w.levels[0].entry_ma, Some(pml4e_ma.0));
    assert_eq!(w.levels[0].table, "PML4");
    let text = w.lines();
    assert_eq!(text.len(), 6);
    assert!(text[0].contains("24 memory references (4 guest entries + 20 nested)"));
    assert!(text[5].starts_with("data gPA 0x4123 -> EPT L4 L3 L2 L1 -> MA 0x"));
    // A VA the guest does not map: the guest's #PF, no final nested walk.
    let w = mon.walk_2d(0x4000_0000);
    assert!(matches!(w.result, Some(Err(_))));
    assert!(w.final_nested.is_empty() && w.ma.is_none());
}

#[test]
fn tlb_misses_cost_the_2d_walk() {
    let mut mon = guest(|a| {
        // Touch a few pages: each first touch is a TLB miss.
        for p in 1..6u64 {
            a.mov(rax, qword_ptr(DATA + 0x1000 * p))?;
        }
        a.hlt()
    });
    let mut plat = TestPlat::default();
    run(&mut mon, &mut plat);
    let s = mon.cpu_stats().unwrap();
    assert!(s.tlb_misses >= 6, "{s:?}");
    // Every mapping here is 4-level over 4-level: exactly 24 each.
    assert_eq!(s.walk_refs, 24 * s.tlb_misses, "{s:?}");
}

#[test]
fn guest_pte_past_ram_reads_all_ones_and_drops_writes() {
    let mut mon = guest(|a| {
        a.mov(rax, qword_ptr(PAST_RAM_VA + 8))?;
        a.mov(qword_ptr(DATA + 0x300), rax)?;
        a.mov(rbx, 0x1122_3344_5566_7788u64)?;
        a.mov(qword_ptr(PAST_RAM_VA), rbx)?;
        a.hlt()
    });
    // Machine memory at the same numeric address (a monitor frame) and
    // at the end of machine memory must never be touched.
    let sentinel = 0xdead_beef_cafe_f00d;
    let probe = [MachineAddr(PAST_RAM_GPA), MachineAddr(mon.ram.size() - 8)];
    for ma in probe {
        mon.ram.write_le(ma, 8, sentinel).unwrap();
    }
    let mut plat = TestPlat::default();
    assert_eq!(
        run(&mut mon, &mut plat),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(read_guest(&mon, DATA + 0x300, 8), u64::MAX);
    for ma in probe {
        assert_eq!(mon.ram.read_le(ma, 8).unwrap(), sentinel);
    }
    assert_eq!(plat.mmio_reads, vec![PAST_RAM_GPA + 8]);
    assert_eq!(
        plat.mmio_writes,
        vec![(PAST_RAM_GPA, 0x1122_3344_5566_7788)]
    );
    let d = details(&plat);
    let read_q = ept_qual::READ | ept_qual::LINEAR_VALID | ept_qual::TRANSLATED;
    assert_eq!(
        d[0],
        format!(
            "exit 48 EPT_VIOLATION qual={read_q:#x} (read gpa 0x800008 (va 0x200008)) gpa=0x800008 [no device: reads all-ones, writes dropped]"
        )
    );
    assert!(d[1].contains("qual=0x182 (write gpa 0x800000"), "{}", d[1]);
    assert_eq!(
        plat.traps[0].translation.unwrap().pa,
        Some(PAST_RAM_GPA + 8)
    );
    assert_eq!(mon.monitor_stats().unwrap().get(TrapCause::Mmio), 2);
}

#[test]
fn vmcs_defaults_and_bitmaps() {
    let v = Vmcs::kvm_defaults(0x5000);
    assert_eq!(v.ept_root(), 0x5000);
    assert!(v.io_exits(0x3f8, 1) && v.io_exits(0xffff, 2));
    assert!(v.msr_exits(cpu::state::msr::IA32_EFER, true));
    assert!(v.msr_exits(cpu::state::msr::IA32_APIC_BASE, true));
    assert!(!v.msr_exits(cpu::state::msr::IA32_FS_BASE, true));
    assert!(!v.msr_exits(cpu::state::msr::IA32_TSC, false));
    assert!(v.msr_exits(cpu::state::msr::IA32_TSC, true));
    assert!(v.msr_exits(0x4000_0000, false), "outside the bitmap: exits");
    let mut v2 = v.clone();
    v2.cr0_read_shadow = cr0::PE | cr0::PG;
    assert!(!v2.cr_write_exits(0, cr0::PE | cr0::PG | cr0::WP));
    assert!(v2.cr_write_exits(0, cr0::PE));
    assert!(
        !v2.cr_write_exits(3, 0x1000),
        "no CR3-load exiting with EPT"
    );
    let i = v.to_intercepts();
    assert!(i.cpuid && i.hlt && i.external_interrupts && i.vmcall);
    assert!(!i.invlpg && !i.rdtsc);
    assert_eq!(i.cr_writes, (1 << 0) | (1 << 4));
    assert_eq!(i.cr_reads, 0);
    assert!(i.io.exits(0x3f8, 1));
    assert_eq!(i.exceptions, (1 << 18) | (1 << 2));
}

/// Garbage code with garbage registers: every run ends as a guest fault
/// (the stubs halt), an exit the machine handles, or a clean stop —
/// never a panic, and never a write outside the guest's frames.
#[test]
fn garbage_guests_end_cleanly() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..50 {
        let code: Vec<u8> = (0..256).map(|_| next() as u8).collect();
        let mut mon = guest(|a| a.hlt());
        let ma = mon.p2m.lookup(GuestPhysAddr(CODE)).unwrap();
        mon.ram.write(ma, &code).unwrap();
        mon.cpu.flush_code_cache();
        // Monitor memory the guest could reach only through a bug: the
        // nested tables (bottom of the pool) and the machine range whose
        // addresses equal the past-RAM GPAs the registers aim at.
        let watched = [(0u64, 1u64 << 20), (RAM, RAM)];
        assert!(mon.p2m.machine_start().0 >= 2 * RAM);
        let snapshot = |mon: &HwMonitor| {
            watched
                .iter()
                .map(|&(start, len)| {
                    let mut b = vec![0u8; len as usize];
                    mon.ram.read(MachineAddr(start), &mut b).unwrap();
                    b
                })
                .collect::<Vec<_>>()
        };
        let before = snapshot(&mon);
        for r in mon.cpu.state.gpr.iter_mut() {
            // Small, page-aligned-ish, past-RAM, hole, non-canonical values.
            *r = match next() % 5 {
                0 => next() % RAM,
                1 => RAM + next() % RAM,
                2 => 0xfee0_0000 + (next() & 0xff0),
                3 => next(),
                _ => STACK_TOP - 0x100,
            };
        }
        mon.cpu.state.gpr[4] = STACK_TOP - 0x100;
        let mut plat = TestPlat {
            irq: Some(0x20),
            ..TestPlat::default()
        };
        let _ = run(&mut mon, &mut plat);
        assert!(before == snapshot(&mon), "the guest changed monitor memory");
    }
}

#[test]
fn single_steps_through_exits() {
    let mut mon = guest(|a| {
        a.nop()?;
        a.out(0x80, al)?;
        a.hlt()
    });
    assert!(mon.can_step());
    let mut plat = TestPlat::default();
    assert_eq!(mon.step(&mut plat).unwrap(), VcpuExit::SliceEnd);
    assert_eq!(mon.step(&mut plat).unwrap(), VcpuExit::SliceEnd);
    assert_eq!(plat.outs.len(), 1);
    assert_eq!(mon.cpu.state.rip, CODE + 3);
    assert_eq!(
        mon.step(&mut plat).unwrap(),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(mon.instructions(), Some(3));
    assert_eq!(mon.real_cpl(), None);
}
