//! Unit tests of the trap-and-emulate monitor: tiny hand-assembled guests
//! in 64-bit mode (their own page tables, GDT and IDT) run under each
//! mode, checking trap counts, the virtual state and the shadow tables.

use super::shadow::MON_BASE;
use super::FullMonitor;
use crate::monitor::{MachineMemory, TrapCause, VirtMode};
use crate::{Accelerator, RunSlice, VcpuExit};
use cpu::state::{cr0, cr4, efer, reg, rflags};
use cpu::{CpuEvent, CpuState, DescTable, Platform, SegReg, Segment};
use iced_x86::code_asm::*;
use mmu::{GuestPhysAddr, GuestRam, MachineAddr, PhysLayout};

const GUEST_RAM: u64 = 8 << 20;
const PML4: u64 = 0x1000;
const PDPT: u64 = 0x2000;
const PD: u64 = 0x3000;
/// 4 KiB page table for the first 2 MiB.
const PT: u64 = 0x4000;
/// A second PML4 with the same entries (a MOV CR3 target).
const PML4_B: u64 = 0x5000;
const CODE: u64 = 0x10000;
const PF_HANDLER: u64 = 0x11000;
const IDT: u64 = 0x20000;
const GDT: u64 = 0x30000;
/// Where guests store results.
const RESULT: u64 = 0x60000;
const STACK_TOP: u64 = 0x80000;
/// A VA mapped by PT entry 0x1f0, free for tests to point anywhere.
const WINDOW: u64 = 0x1f_0000;

const CODE64: u64 = 0x00af_9b00_0000_ffff;
const DATA: u64 = 0x00cf_9300_0000_ffff;

/// The machine around the guest: output port 0xf4 stops it, MMIO reads
/// all-ones and is recorded.
#[derive(Default)]
struct TestPlatform {
    stop: bool,
    mmio: Vec<(u64, bool)>,
    traps: Vec<String>,
}

impl Platform for TestPlatform {
    fn pio_in(&mut self, _port: u16, _size: u8) -> u32 {
        u32::MAX
    }
    fn pio_out(&mut self, port: u16, _size: u8, _val: u32) {
        if port == 0xf4 {
            self.stop = true;
        }
    }
    fn mmio_read(&mut self, pa: GuestPhysAddr, size: u8) -> u64 {
        self.mmio.push((pa.0, false));
        u64::MAX >> (64 - 8 * u32::from(size))
    }
    fn mmio_write(&mut self, pa: GuestPhysAddr, _size: u8, _val: u64) {
        self.mmio.push((pa.0, true));
    }
    fn interrupt_pending(&self) -> bool {
        false
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        None
    }
    fn stop_requested(&self) -> bool {
        self.stop
    }
    fn tsc(&mut self) -> u64 {
        0
    }
    fn event(&mut self, ev: &CpuEvent) {
        if let CpuEvent::Trap(t) = ev {
            self.traps.push(t.cause.to_string());
        }
    }
}

fn asm(ip: u64, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a).unwrap();
    a.assemble(ip).unwrap()
}

fn put(img: &GuestRam, pa: u64, bytes: &[u8]) {
    img.write(MachineAddr(pa), bytes).unwrap();
}

fn put64(img: &GuestRam, pa: u64, v: u64) {
    img.write_le(MachineAddr(pa), 8, v).unwrap();
}

/// A 64-bit interrupt gate to `target` (selector 8, DPL 0).
fn gate(img: &GuestRam, vector: u64, target: u64) {
    let lo = (target & 0xffff) | (8 << 16) | (0x8e << 40) | ((target >> 16) & 0xffff) << 48;
    put64(img, IDT + vector * 16, lo);
    put64(img, IDT + vector * 16 + 8, target >> 32);
}

/// An image with the first 2 MiB identity-mapped by 4 KiB pages
/// (supervisor, writable), a GDT, and a #PF handler that stores CR2 and
/// the error code at RESULT+8/+16 and stops.
fn image(code: &[u8]) -> GuestRam {
    let img = GuestRam::new(GUEST_RAM).unwrap();
    for root in [PML4, PML4_B] {
        put64(&img, root, PDPT | 3);
    }
    put64(&img, PDPT, PD | 3);
    put64(&img, PD, PT | 3);
    for i in 0..512u64 {
        put64(&img, PT + i * 8, (i << 12) | 3);
    }
    put64(&img, GDT + 8, CODE64);
    put64(&img, GDT + 16, DATA);
    put(&img, CODE, code);
    let handler = asm(PF_HANDLER, |a| {
        a.mov(rax, cr2)?;
        a.mov(qword_ptr(RESULT + 8), rax)?;
        a.pop(rax)?;
        a.mov(qword_ptr(RESULT + 16), rax)?;
        a.out(0xf4, al)?;
        a.hlt()
    });
    put(&img, PF_HANDLER, &handler);
    gate(&img, 14, PF_HANDLER);
    img
}

/// Long mode, CPL 0, IF = 1, at CODE.
fn long_state() -> CpuState {
    let mut s = CpuState::reset();
    s.cr0 = cr0::PE | cr0::ET | cr0::NE | cr0::WP | cr0::PG;
    s.cr3 = PML4;
    s.cr4 = cr4::PAE;
    s.efer = efer::LME | efer::LMA | efer::NXE;
    let data = Segment::from_descriptor(0x10, DATA);
    s.seg = [data; 6];
    *s.sreg_mut(SegReg::Cs) = Segment::from_descriptor(0x08, CODE64);
    s.gdtr = DescTable {
        base: GDT,
        limit: 23,
    };
    s.idtr = DescTable {
        base: IDT,
        limit: 0xfff,
    };
    s.gpr[reg::RSP] = STACK_TOP;
    s.rip = CODE;
    s.rflags = rflags::FIXED1 | rflags::IF;
    s
}

fn monitor(mode: VirtMode, img: &GuestRam, state: &CpuState) -> FullMonitor {
    let mem = MachineMemory::new(PhysLayout::new(GUEST_RAM)).unwrap();
    mem.load_image(img).unwrap();
    let mut m = FullMonitor::new(mode, mem).unwrap();
    m.set_state(state).unwrap();
    m
}

/// Run until the guest stops (or anything but a slice end).
fn run(m: &mut FullMonitor, p: &mut TestPlatform) -> VcpuExit {
    let slice = RunSlice {
        deadline: None,
        insn_limit: Some(1_000_000),
    };
    m.run(p, slice).unwrap()
}

fn guest_u64(m: &FullMonitor, pa: u64) -> u64 {
    let ma = m.p2m.lookup(GuestPhysAddr(pa)).unwrap();
    m.ram.read_le(ma, 8).unwrap()
}

fn count(m: &FullMonitor, c: TrapCause) -> u64 {
    m.monitor_stats().unwrap().get(c)
}

/// CLI; PUSHFQ; POP RBX; MOV CR3 — then stop.
fn privileged_guest() -> Vec<u8> {
    asm(CODE, |a| {
        a.cli()?;
        a.pushfq()?;
        a.pop(rbx)?;
        a.mov(rax, PML4_B)?;
        a.mov(cr3, rax)?;
        a.mov(qword_ptr(RESULT), rbx)?;
        a.out(0xf4, al)?;
        a.hlt()
    })
}

#[test]
fn privileged_and_sensitive_instructions_trap_in_full_mode() {
    let img = image(&privileged_guest());
    let mut m = monitor(VirtMode::Full, &img, &long_state());
    let mut p = TestPlatform::default();
    assert_eq!(run(&mut m, &mut p), VcpuExit::Stopped);
    let s = m.guest_state();
    // The guest's view: CPL 0, IF clear, its new CR3.
    assert_eq!(s.cpl(), 0);
    assert_eq!(s.rflags & rflags::IF, 0);
    assert_eq!(s.cr3, PML4_B);
    // PUSHF was translated: it saw the virtual IF = 0.
    assert_eq!(guest_u64(&m, RESULT) & rflags::IF, 0);
    // The truth: CPL 1, IF 1, the shadow root in CR3, the monitor's GDT.
    assert_eq!(m.real_cpl(), Some(1));
    assert_ne!(m.real_state().rflags & rflags::IF, 0);
    assert_ne!(m.real_state().cr3, PML4_B);
    assert_eq!(m.real_state().gdtr.base, MON_BASE);
    assert_eq!(count(&m, TrapCause::Privileged), 1, "CLI");
    assert_eq!(count(&m, TrapCause::Sensitive), 1, "PUSHFQ");
    assert_eq!(count(&m, TrapCause::Cr3Invlpg), 1, "MOV CR3");
    assert_eq!(count(&m, TrapCause::Io), 1, "OUT");
    assert!(
        count(&m, TrapCause::HiddenPageFault) >= 2,
        "code, stack, result"
    );
    assert_eq!(count(&m, TrapCause::GuestPageFault), 0);
    assert_eq!(m.stats().get("privileged"), 1);
}

#[test]
fn trap_only_mode_shows_the_hole() {
    let img = image(&privileged_guest());
    let mut m = monitor(VirtMode::TrapOnly, &img, &long_state());
    let mut p = TestPlatform::default();
    assert_eq!(run(&mut m, &mut p), VcpuExit::Stopped);
    assert_eq!(m.guest_state().rflags & rflags::IF, 0, "CLI trapped");
    // PUSHF ran on the real CPU at CPL 1 and saw the real IF.
    assert_ne!(guest_u64(&m, RESULT) & rflags::IF, 0);
    assert_eq!(count(&m, TrapCause::Sensitive), 0);
    assert_eq!(count(&m, TrapCause::Privileged), 1);
}

#[test]
fn trap_events_reach_the_observer() {
    let img = image(&privileged_guest());
    let mut m = monitor(VirtMode::Full, &img, &long_state());
    m.set_trace(cpu::TraceFlags {
        int: true,
        ..Default::default()
    });
    let mut p = TestPlatform::default();
    run(&mut m, &mut p);
    for cause in ["privileged", "sensitive", "cr3_invlpg", "io", "hidden_pf"] {
        assert!(p.traps.iter().any(|t| t == cause), "{cause}: {:?}", p.traps);
    }
}

#[test]
fn a_guest_page_fault_is_reflected_with_the_guests_error_code() {
    // PD entry 2 (VA 4 MiB) is not present in the guest's tables.
    let code = asm(CODE, |a| {
        a.mov(rax, 0x40_0000u64)?;
        a.mov(qword_ptr(rax), rbx)?;
        a.hlt()
    });
    let img = image(&code);
    let mut m = monitor(VirtMode::Full, &img, &long_state());
    let mut p = TestPlatform::default();
    assert_eq!(run(&mut m, &mut p), VcpuExit::Stopped);
    assert_eq!(guest_u64(&m, RESULT + 8), 0x40_0000, "CR2");
    assert_eq!(
        guest_u64(&m, RESULT + 16),
        2,
        "#PF(W, not present, supervisor)"
    );
    assert_eq!(count(&m, TrapCause::GuestPageFault), 1);
    assert_eq!(m.guest_state().cr2, 0x40_0000);
}

#[test]
fn a_pte_past_guest_ram_reads_all_ones_never_a_machine_frame() {
    let past = GUEST_RAM + 0x10_0000;
    let code = asm(CODE, |a| {
        a.mov(rax, qword_ptr(WINDOW))?;
        a.mov(qword_ptr(RESULT), rax)?;
        a.mov(qword_ptr(WINDOW + 8), rax)?;
        a.out(0xf4, al)?;
        a.hlt()
    });
    let img = image(&code);
    put64(&img, PT + (WINDOW >> 12) * 8, past | 3);
    let mut m = monitor(VirtMode::Full, &img, &long_state());
    // A canary where an identity-mapping monitor would look: machine
    // address = the guest-physical address (the monitor's own frames).
    let canary = 0x1122_3344_5566_7788u64;
    m.ram.write_le(MachineAddr(past), 8, canary).unwrap();
    let mut p = TestPlatform::default();
    assert_eq!(run(&mut m, &mut p), VcpuExit::Stopped);
    assert_eq!(guest_u64(&m, RESULT), u64::MAX, "all-ones, not the canary");
    assert_eq!(m.ram.read_le(MachineAddr(past), 8).unwrap(), canary);
    assert_eq!(p.mmio, vec![(past, false), (past + 8, true)]);
    assert_eq!(m.shadow().leaf_of(WINDOW), None, "never shadowed");
    assert_eq!(count(&m, TrapCause::Mmio), 2);
}

#[test]
fn a_page_table_write_updates_the_shadow() {
    let (a_pa, b_pa) = (0x50000u64, 0x51000u64);
    let pte = PT + (WINDOW >> 12) * 8;
    let code = asm(CODE, |a| {
        a.mov(rax, qword_ptr(WINDOW))?;
        a.mov(qword_ptr(RESULT), rax)?;
        // Repoint the window (no INVLPG: the shadow must still follow).
        a.mov(rax, b_pa | 3)?;
        a.mov(qword_ptr(pte), rax)?;
        a.mov(rax, qword_ptr(WINDOW))?;
        a.mov(qword_ptr(RESULT + 8), rax)?;
        a.out(0xf4, al)?;
        a.hlt()
    });
    let img = image(&code);
    put64(&img, pte, a_pa | 3);
    put64(&img, a_pa, 0xaaaa);
    put64(&img, b_pa, 0xbbbb);
    let mut m = monitor(VirtMode::Full, &img, &long_state());
    let mut p = TestPlatform::default();
    assert_eq!(run(&mut m, &mut p), VcpuExit::Stopped);
    assert_eq!(guest_u64(&m, RESULT), 0xaaaa);
    assert_eq!(guest_u64(&m, RESULT + 8), 0xbbbb);
    assert_eq!(count(&m, TrapCause::PtWrite), 1);
    let b_ma = m.p2m.lookup(GuestPhysAddr(b_pa)).unwrap().0;
    let leaf = m.shadow().leaf_of(WINDOW).unwrap();
    assert_eq!(leaf & 0x000f_ffff_ffff_f000, b_ma);
    // The guest's A bit was set by the fills; D was not (only reads).
    let e = guest_u64(&m, pte);
    assert_ne!(e & mmu::pte::A, 0);
    assert_eq!(e & mmu::pte::D, 0);
    // The page table page itself is mapped read-only in the shadow.
    let pt_leaf = m.shadow().leaf_of(PT).unwrap();
    assert_eq!(pt_leaf & mmu::pte::RW, 0);
}

#[test]
fn para_hypercalls_and_cpuid() {
    let reqs = 0x61000u64;
    let pte = PT + (WINDOW >> 12) * 8;
    let (a_pa, b_pa) = (0x50000u64, 0x51000u64);
    let code = asm(CODE, |a| {
        a.mov(eax, 0x4000_0000u32)?;
        a.cpuid()?;
        a.mov(dword_ptr(RESULT), ebx)?;
        a.mov(dword_ptr(RESULT + 4), ecx)?;
        a.mov(dword_ptr(RESULT + 8), edx)?;
        a.mov(eax, 99u32)?;
        a.vmcall()?;
        a.mov(qword_ptr(RESULT + 16), rax)?;
        // Touch the window, then remap it by hypercall and touch again.
        a.mov(rax, qword_ptr(WINDOW))?;
        a.mov(qword_ptr(RESULT + 24), rax)?;
        a.mov(eax, 1u32)?;
        a.mov(rdi, reqs)?;
        a.mov(esi, 1u32)?;
        a.vmcall()?;
        a.mov(qword_ptr(RESULT + 32), rax)?;
        a.mov(rax, qword_ptr(WINDOW))?;
        a.mov(qword_ptr(RESULT + 40), rax)?;
        a.out(0xf4, al)?;
        a.hlt()
    });
    let img = image(&code);
    put64(&img, pte, a_pa | 3);
    put64(&img, a_pa, 0xaaaa);
    put64(&img, b_pa, 0xbbbb);
    put64(&img, reqs, pte);
    put64(&img, reqs + 8, b_pa | 3);
    let mut m = monitor(VirtMode::Para, &img, &long_state());
    let mut p = TestPlatform::default();
    assert_eq!(run(&mut m, &mut p), VcpuExit::Stopped);
    let sig = guest_u64(&m, RESULT);
    assert_eq!(&sig.to_le_bytes(), b"Ringside");
    assert_eq!(
        guest_u64(&m, RESULT + 8) as u32,
        u32::from_le_bytes(*b"VMM\0")
    );
    assert_eq!(guest_u64(&m, RESULT + 16) as i64, -1, "unknown hypercall");
    assert_eq!(guest_u64(&m, RESULT + 24), 0xaaaa);
    assert_eq!(guest_u64(&m, RESULT + 32), 1, "one request done");
    assert_eq!(guest_u64(&m, RESULT + 40), 0xbbbb);
    assert_eq!(count(&m, TrapCause::Hypercall), 2);
    assert_eq!(count(&m, TrapCause::Cpuid), 1);
    // The remap updated the shadow in place.
    let b_ma = m.p2m.lookup(GuestPhysAddr(b_pa)).unwrap().0;
    let leaf = m.shadow().leaf_of(WINDOW).unwrap();
    assert_eq!(leaf & 0x000f_ffff_ffff_f000, b_ma);
}

#[test]
fn para_remap_takes_no_hidden_fault() {
    // Count hidden faults with and without the second touch.
    let reqs = 0x61000u64;
    let pte = PT + (WINDOW >> 12) * 8;
    let build = |second_touch: bool| {
        asm(CODE, move |a| {
            a.mov(rax, qword_ptr(WINDOW))?;
            a.mov(eax, 1u32)?;
            a.mov(rdi, reqs)?;
            a.mov(esi, 1u32)?;
            a.vmcall()?;
            if second_touch {
                a.mov(rax, qword_ptr(WINDOW))?;
                a.mov(qword_ptr(WINDOW), rax)?;
            }
            a.out(0xf4, al)?;
            a.hlt()
        })
    };
    let mut hidden = Vec::new();
    for second in [false, true] {
        let img = image(&build(second));
        put64(&img, pte, 0x50003);
        put64(&img, reqs, pte);
        put64(&img, reqs + 8, 0x51003);
        let mut m = monitor(VirtMode::Para, &img, &long_state());
        let mut p = TestPlatform::default();
        assert_eq!(run(&mut m, &mut p), VcpuExit::Stopped);
        hidden.push(count(&m, TrapCause::HiddenPageFault));
    }
    assert_eq!(
        hidden[0], hidden[1],
        "read and write after the remap: no fault"
    );
}

#[test]
fn a_real_mode_guest_is_a_clean_monitor_stop() {
    let img = image(&[0xf4]);
    let mut m = monitor(VirtMode::Full, &img, &CpuState::reset());
    let mut p = TestPlatform::default();
    match run(&mut m, &mut p) {
        VcpuExit::MonitorStop { reason } => {
            assert!(reason.contains("protected mode"), "{reason}");
            assert!(!reason.contains('\n'));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn hlt_waits_with_the_virtual_if() {
    let code = asm(CODE, |a| {
        a.cli()?;
        a.hlt()
    });
    let img = image(&code);
    let mut m = monitor(VirtMode::Full, &img, &long_state());
    let mut p = TestPlatform::default();
    assert_eq!(
        run(&mut m, &mut p),
        VcpuExit::Hlt {
            interrupts_enabled: false
        }
    );
    assert_eq!(count(&m, TrapCause::Hlt), 1);
    assert_eq!(m.guest_state().rip, CODE + 2, "after HLT");
}

#[test]
fn single_steps_handle_exits() {
    let img = image(&privileged_guest());
    let mut m = monitor(VirtMode::Full, &img, &long_state());
    let mut p = TestPlatform::default();
    assert!(m.can_step());
    let mut n = 0;
    loop {
        n += 1;
        assert!(n < 1000, "no stop after 1000 steps");
        match m.step(&mut p).unwrap() {
            VcpuExit::SliceEnd => continue,
            VcpuExit::Stopped => break,
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(m.guest_state().cr3, PML4_B);
}

/// A tiny xorshift for the garbage guests.
fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn garbage_guests_end_cleanly() {
    for mode in [VirtMode::Full, VirtMode::TrapOnly, VirtMode::Para] {
        for seed in 1..=5u64 {
            let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let code: Vec<u8> = (0..4096).map(|_| xorshift(&mut s) as u8).collect();
            let img = image(&code);
            // Random handlers too: every vector points into the garbage.
            for v in 0..256 {
                gate(&img, v, CODE + (xorshift(&mut s) & 0xfff));
            }
            let mut m = monitor(mode, &img, &long_state());
            let mut p = TestPlatform::default();
            let slice = RunSlice {
                deadline: None,
                insn_limit: Some(20_000),
            };
            for _ in 0..50 {
                match m.run(&mut p, slice).unwrap() {
                    VcpuExit::SliceEnd => continue,
                    VcpuExit::Hlt { .. } => {
                        // Nothing will wake it; resume anyway to stress.
                        break;
                    }
                    _ => break,
                }
            }
        }
    }
}

#[test]
fn an_exhausted_pool_drops_every_shadow_and_starts_over() {
    use super::shadow::{Fill, Shadow};
    use mmu::paging::{Access, AccessKind, PagingRegs};
    use mmu::{FramePool, P2m};
    use std::sync::Arc;
    // Guest: paging off (VA = PA), 8 MiB; pool: the monitor's area
    // (21 frames) plus 6 more.
    let guest = PhysLayout::new(GUEST_RAM);
    let ram = Arc::new(GuestRam::new(GUEST_RAM + (1 << 20)).unwrap());
    let p2m = Arc::new(P2m::scattered(guest, MachineAddr(1 << 20)));
    let pool = FramePool::new(MachineAddr(0x1000), MachineAddr(0x1c000));
    let mut sh = Shadow::new(ram, p2m, pool).unwrap();
    let regs = PagingRegs {
        cr0: cr0::PE,
        ..Default::default()
    };
    sh.activate(&regs).unwrap();
    let read = Access::new(AccessKind::Read, false);
    // Each 1 GiB needs a PDPT-level walk: PD + PT per new 2 MiB region.
    let mut exhausted = false;
    for i in 0..4u64 {
        match sh.fill(i * (2 << 20), read) {
            Ok(Fill::Installed { .. }) => {}
            Ok(f) => panic!("{f:?}"),
            Err(_) => {
                exhausted = true;
                break;
            }
        }
    }
    assert!(exhausted, "6 frames can't shadow 4 regions");
    let before = sh.counts.flushes;
    sh.drop_all();
    sh.activate(&regs).unwrap();
    assert!(matches!(sh.fill(0x5000, read), Ok(Fill::Installed { .. })));
    assert!(sh.leaf_of(0x5000).is_some());
    assert!(sh.counts.flushes >= before + 2);
    // Past guest RAM: never installed.
    assert_eq!(
        sh.fill(GUEST_RAM + 0x1000, read),
        Ok(Fill::Mmio {
            pa: GUEST_RAM + 0x1000
        })
    );
}
