//! The run loop: budget, HLT, interrupts and their shadow, single-step,
//! stop requests, execution tracing, lazy flags vs PUSHF.

use super::f::*;
use super::{Machine, CODE};
use crate::cpu::CpuExit;
use crate::event::CpuEvent;
use crate::state::rflags;
use iced_x86::code_asm::*;
use mmu::MachineAddr;

/// Real-mode handler at 0x2000:0 for `vector`, assembled from `f`.
fn real_handler(m: &mut Machine, vector: u8, f: impl FnOnce(&mut CodeAssembler)) {
    let mut a = CodeAssembler::new(16).unwrap();
    f(&mut a);
    let code = a.assemble(0).unwrap();
    m.ram.write(MachineAddr(0x20000), &code).unwrap();
    m.write(vector as u64 * 4, 2, 0);
    m.write(vector as u64 * 4 + 2, 2, 0x2000);
}

#[test]
fn budget_is_exact_and_resumable() {
    let mut m = Machine::long64();
    m.load(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top).unwrap();
        a.add(eax, 1).unwrap();
        a.jmp(top).unwrap();
    });
    assert_eq!(m.cpu.run(&mut m.plat, 1001), CpuExit::Budget);
    assert_eq!(m.cpu.instructions(), 1001);
    assert_eq!(m.gpr(0), 501);
    assert_eq!(m.cpu.run(&mut m.plat, 1), CpuExit::Budget);
    assert_eq!(m.gpr(0), 501);
    assert_eq!(m.cpu.instructions(), 1002);
}

#[test]
fn external_interrupt_after_sti_shadow() {
    let mut m = Machine::real();
    real_handler(&mut m, 0x20, |a| {
        a.mov(bx, 0x4242u32).unwrap();
        a.iret().unwrap();
    });
    m.plat.irqs.push_back(0x20);
    m.exec(|a| {
        a.sti().unwrap();
        a.mov(cx, 1u32).unwrap(); // in the STI shadow: runs before the IRQ
        a.mov(dx, bx).unwrap(); // after the handler
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(1) & 0xffff, 1);
    assert_eq!(m.gpr(2) & 0xffff, 0x4242);
    assert!(m.plat.irqs.is_empty());
}

#[test]
fn hlt_wakes_on_interrupt() {
    let mut m = Machine::real();
    real_handler(&mut m, 0x21, |a| {
        a.inc(bx).unwrap();
        a.iret().unwrap();
    });
    m.cpu.set_rflags(rflags::FIXED1 | rflags::IF);
    m.load(|a| {
        a.hlt().unwrap();
        a.mov(cx, 2u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.run(), CpuExit::Halted);
    assert_eq!(m.run(), CpuExit::Halted, "still nothing pending");
    assert_eq!(m.gpr(1) & 0xffff, 0);
    m.plat.irqs.push_back(0x21);
    assert_eq!(m.run(), CpuExit::Halted);
    assert_eq!(m.gpr(3) & 0xffff, 1);
    assert_eq!(m.gpr(1) & 0xffff, 2);
}

#[test]
fn interrupts_are_masked_with_if_clear() {
    let mut m = Machine::real();
    m.plat.irqs.push_back(0x20);
    m.exec(|a| {
        a.mov(cx, 3u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.plat.irqs.len(), 1);
    assert_eq!(m.gpr(1) & 0xffff, 3);
}

#[test]
fn single_step_trap() {
    let mut m = Machine::real();
    real_handler(&mut m, 1, |a| {
        a.mov(dx, 0x77u32).unwrap();
        a.hlt().unwrap();
    });
    m.cpu.set_rflags(rflags::FIXED1 | rflags::TF);
    m.exec(|a| {
        a.mov(ax, 5u32).unwrap();
        a.mov(ax, 6u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0) & 0xffff, 5, "trapped after the first instruction");
    assert_eq!(m.gpr(2) & 0xffff, 0x77);
    assert_ne!(m.cpu.state.dr[6] & (1 << 14), 0, "DR6.BS");
}

#[test]
fn stop_request_after_port_write() {
    let mut m = Machine::prot32();
    m.load(|a| {
        a.mov(al, 1).unwrap();
        a.out(0xf4, al).unwrap();
        a.mov(ebx, 1u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.run(), CpuExit::Stopped);
    assert_eq!(m.gpr(3), 0);
    assert_eq!(m.plat.pio_writes, vec![(0xf4, 1, 1)]);
}

#[test]
fn stop_request_after_mmio_write() {
    let mut m = Machine::prot32();
    m.load(|a| {
        a.mov(dword_ptr(0xd000_0000u32), 1u32).unwrap();
        a.mov(ebx, 1u32).unwrap();
        a.hlt().unwrap();
    });
    m.plat.stop = true;
    assert_eq!(m.run(), CpuExit::Stopped);
    assert_eq!(m.gpr(3), 0);
}

#[test]
fn exec_trace_reports_each_instruction() {
    let mut m = Machine::long64();
    m.cpu.trace.exec = true;
    m.exec(|a| {
        a.mov(eax, 1u32).unwrap();
        a.add(eax, ebx).unwrap();
        a.hlt().unwrap();
    });
    let texts: Vec<_> = m
        .plat
        .events
        .iter()
        .filter_map(|e| match e {
            CpuEvent::Exec { text, rip, .. } => Some((*rip, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            (CODE, "mov eax,1".to_string()),
            (CODE + 5, "add eax,ebx".to_string()),
            (CODE + 7, "hlt".to_string())
        ]
    );
}

#[test]
fn lazy_flags_match_pushf() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(eax, 0x7fff_ffffu32).unwrap();
        a.add(eax, 1).unwrap();
        a.pushfq().unwrap();
        a.pop(rbx).unwrap();
        a.stc().unwrap();
        a.inc(eax).unwrap(); // CF kept
        a.pushfq().unwrap();
        a.pop(rcx).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3) & rflags::STATUS, OF | SF | AF | PF);
    assert_eq!(m.gpr(3) & 0x2, 0x2);
    assert_eq!(m.gpr(1) & rflags::STATUS, CF | SF);
    assert_eq!(m.cpu.get_state().rflags, m.cpu.rflags());
    assert_eq!(
        m.cpu.state.rflags,
        m.cpu.rflags(),
        "run() stores flags back"
    );
}

#[test]
fn popf_loads_lazy_flags() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.push(0x8d5).unwrap(); // OF SF ZF AF PF CF
        a.popfq().unwrap();
        a.setz(al).unwrap();
        a.seto(bl).unwrap();
        a.setp(cl).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0) & 0xff, 1);
    assert_eq!(m.gpr(3) & 0xff, 1);
    assert_eq!(m.gpr(1) & 0xff, 1);
    assert_eq!(m.flags(), rflags::STATUS);
}

#[test]
fn step_runs_one_instruction() {
    let mut m = Machine::long64();
    m.load(|a| {
        a.mov(eax, 1u32).unwrap();
        a.mov(eax, 2u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.cpu.step(&mut m.plat), CpuExit::Budget);
    assert_eq!(m.gpr(0), 1);
    assert_eq!(m.cpu.state.rip, CODE + 5);
    assert_eq!(m.cpu.step(&mut m.plat), CpuExit::Budget);
    assert_eq!(m.gpr(0), 2);
    assert_eq!(m.cpu.step(&mut m.plat), CpuExit::Budget);
    assert_eq!(m.cpu.step(&mut m.plat), CpuExit::Halted);
}

#[test]
fn fault_is_delivered_with_rip_on_the_instruction() {
    // Real mode #DE: the IVT handler sees the DIV's address on the stack.
    let mut m = Machine::real();
    real_handler(&mut m, 0, |a| {
        a.mov(bp, sp).unwrap();
        a.mov(dx, word_ptr(bp)).unwrap(); // pushed IP
        a.hlt().unwrap();
    });
    m.exec(|a| {
        a.xor(cx, cx).unwrap();
        a.div(cx).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(2) & 0xffff, 2, "IP of the DIV (after the 2-byte XOR)");
}

#[test]
fn rf_is_cleared_after_the_next_instruction() {
    // RF comes back set from a fault frame through IRET; it must not
    // outlive the restarted instruction (it would leak into later frames,
    // PUSHF images aside, and into R11 on SYSCALL).
    let mut m = Machine::long64();
    m.load(|a| {
        a.mov(eax, 1u32).unwrap();
        a.mov(eax, 2u32).unwrap();
        a.hlt().unwrap();
    });
    m.cpu.set_rflags(0x2 | rflags::RF);
    assert_eq!(m.cpu.step(&mut m.plat), CpuExit::Budget);
    assert_eq!(m.cpu.rflags() & rflags::RF, 0, "cleared by step()");

    let mut m = Machine::long64();
    m.load(|a| {
        a.mov(eax, 1u32).unwrap();
        a.mov(eax, 2u32).unwrap();
        a.hlt().unwrap();
    });
    m.cpu.set_rflags(0x2 | rflags::RF);
    assert_eq!(m.run(), CpuExit::Halted);
    assert_eq!(m.gpr(0), 2);
    assert_eq!(m.cpu.rflags() & rflags::RF, 0, "cleared by run()");
}
