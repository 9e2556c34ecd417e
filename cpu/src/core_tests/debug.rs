//! Debug events through the run loop (SDM Vol. 3B chapter 17, Vol. 3A
//! 6.8.3): DR0-DR3 instruction, data and I/O breakpoints, DR7.GD, TF
//! single-stepping, RF in the #DB frames, and the MOV SS / STI shadows.
//! Each test runs a 64-bit program with a real IDT whose #DB handler logs
//! what it saw into registers:
//! R15 = #DBs taken, R14 = DR6 (last), R13 = pushed RFLAGS (last),
//! R12 = pushed RIP (last), R11 = RCX (last), R10 = frames with RF = 1.

use super::{Machine, CODE, DATA, STACK};
use crate::cpu::CpuExit;
use crate::fault::Fault;
use crate::state::{cr4, rflags, DescTable};
use iced_x86::code_asm::*;
use mmu::MachineAddr;

const GDT: u64 = 0x5000;
const IDT: u64 = 0x6000;
const HANDLERS: u64 = 0x20000;
const DR6_BD: u64 = 1 << 13;
const DR6_BS: u64 = 1 << 14;

/// An 8-byte code/data descriptor (flat).
fn flat(access: u8, flags: u8) -> u64 {
    0xffff | (0xf << 48) | ((access as u64) << 40) | ((flags as u64) << 52)
}

/// 64-bit machine with a GDT (0x08 code, 0x10 data) and an empty IDT.
fn machine() -> Machine {
    let mut m = Machine::long64();
    m.write(GDT + 8, 8, flat(0x9a, 0xa));
    m.write(GDT + 16, 8, flat(0x92, 0xc));
    m.cpu.state.gdtr = DescTable {
        base: GDT,
        limit: 23,
    };
    m.cpu.state.idtr = DescTable {
        base: IDT,
        limit: 0xfff,
    };
    m.cpu.state.seg[crate::state::SegReg::Ss as usize].selector = 0x10;
    m
}

/// Install a 64-bit interrupt gate for `vec` running `f`.
fn handler(m: &mut Machine, vec: u8, f: impl FnOnce(&mut CodeAssembler)) {
    let at = HANDLERS + vec as u64 * 0x100;
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a);
    let code = a.assemble(at).unwrap();
    m.ram.write(MachineAddr(at), &code).unwrap();
    let lo = (at & 0xffff) | (0x08 << 16) | (0x8e << 40) | ((at >> 16 & 0xffff) << 48);
    m.write(IDT + vec as u64 * 16, 8, lo);
    m.write(IDT + vec as u64 * 16 + 8, 8, at >> 32);
}

/// The logging #DB handler; `extra` runs before IRETQ.
fn db_handler(m: &mut Machine, extra: impl FnOnce(&mut CodeAssembler)) {
    handler(m, 1, |a| {
        a.inc(r15).unwrap();
        a.mov(r14, dr6).unwrap();
        a.mov(r13, qword_ptr(rsp + 16)).unwrap();
        a.mov(r12, qword_ptr(rsp)).unwrap();
        a.mov(r11, rcx).unwrap();
        a.bt(r13, 16).unwrap();
        a.adc(r10, 0).unwrap();
        extra(a);
        a.iretq().unwrap();
    });
}

/// Load the program and return the address of label `at` (an offset into
/// the assembled bytes is simpler than labels across closures: the test
/// passes the byte offset of the instruction it wants).
fn run(m: &mut Machine, f: impl FnOnce(&mut CodeAssembler)) {
    m.load(f);
    let e = m.run();
    assert_eq!(
        e,
        CpuExit::Halted,
        "did not reach HLT; rip={:#x}",
        m.cpu.state.rip
    );
}

/// DR7 for breakpoint `n`: local enable, R/W, LEN (raw encodings).
fn bp7(n: u64, rw: u64, len: u64) -> u64 {
    0x400 | (1 << (2 * n)) | ((rw | len << 2) << (16 + 4 * n))
}

#[test]
fn instruction_breakpoint_is_a_fault_and_rf_resumes() {
    let mut m = machine();
    // Resume with RF so the same instruction does not hit again.
    db_handler(&mut m, |a| {
        a.or(qword_ptr(rsp + 16), 0x10000).unwrap();
    });
    // mov eax,1 (5 bytes) ; target: mov ebx,2 ; hlt
    let target = CODE + 5;
    m.cpu.state.dr[0] = target;
    m.cpu.state.dr[7] = bp7(0, 0, 0);
    run(&mut m, |a| {
        a.mov(eax, 1u32).unwrap();
        a.mov(ebx, 2u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(15), 1, "one #DB, not a loop");
    assert_eq!(m.gpr(12), target, "fault: RIP of the breakpointed insn");
    assert_eq!(m.gpr(13) & rflags::RF, 0, "insn-breakpoint #DB pushes RF=0");
    assert_eq!(m.gpr(14) & 0xf, 1, "DR6.B0");
    assert_eq!(m.gpr(14) & DR6_BS, 0);
    assert_eq!(m.gpr(3), 2, "the instruction ran after the IRETQ");
    assert_eq!(
        m.cpu.rflags() & rflags::RF,
        0,
        "RF cleared by the next insn"
    );
}

#[test]
fn instruction_breakpoint_precedes_the_fetch_page_fault() {
    let mut m = machine();
    db_handler(&mut m, |a| {
        a.hlt().unwrap();
    });
    // Breakpoint on an unmapped RIP: #DB wins over #PF.
    let rip = 0x4000_0000u64; // beyond the identity-mapped first GiB
    m.cpu.state.dr[0] = rip;
    m.cpu.state.dr[7] = bp7(0, 0, 0);
    m.load(|a| {
        a.hlt().unwrap();
    });
    m.cpu.state.rip = rip;
    assert_eq!(m.run(), CpuExit::Halted);
    assert_eq!(m.gpr(15), 1);
    assert_eq!(m.gpr(12), rip);
}

#[test]
fn data_write_breakpoint_is_a_trap_after_the_access() {
    let mut m = machine();
    db_handler(&mut m, |_| {});
    m.cpu.state.dr[1] = DATA;
    m.cpu.state.dr[7] = bp7(1, 1, 3); // write, 4 bytes
    run(&mut m, |a| {
        a.mov(eax, dword_ptr(DATA)).unwrap(); // read: no match (write-only)
        a.mov(dword_ptr(DATA + 2), 7u32).unwrap(); // overlaps bytes 2-3
        a.nop().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(15), 1);
    assert_eq!(m.read(DATA + 2, 4), 7, "the write completed first");
    assert_eq!(m.gpr(14) & 0xf, 2, "DR6.B1");
    assert_eq!(m.gpr(13) & rflags::RF, 0, "traps push RF as it is");
    // The trap's RIP is the NOP after the store.
    let nop = m.gpr(12);
    assert_eq!(m.read(nop, 1), 0x90);
}

#[test]
fn data_breakpoints_on_stack_push_and_page_crossing() {
    let mut m = machine();
    db_handler(&mut m, |_| {});
    // DR0: the 8-byte slot CALL pushes into. DR2: the first byte of the
    // second page of a page-crossing read.
    m.cpu.state.dr[0] = STACK - 8;
    m.cpu.state.dr[2] = DATA + 0x1000;
    m.cpu.state.dr[7] = bp7(0, 1, 2) | bp7(2, 3, 0);
    run(&mut m, |a| {
        let mut f = a.create_label();
        a.call(f).unwrap();
        a.mov(eax, dword_ptr(DATA + 0xffe)).unwrap();
        a.hlt().unwrap();
        a.set_label(&mut f).unwrap();
        a.ret().unwrap();
    });
    assert_eq!(m.gpr(15), 2, "the CALL push and the split read");
    assert_eq!(m.gpr(14) & 0xf, 0b101, "B0 and B2 (sticky)");
}

#[test]
fn multiple_matches_in_one_instruction_make_one_db() {
    let mut m = machine();
    db_handler(&mut m, |_| {});
    m.cpu.state.dr[0] = DATA;
    m.cpu.state.dr[3] = DATA + 4;
    m.cpu.state.dr[7] = bp7(0, 3, 0) | bp7(3, 3, 0);
    run(&mut m, |a| {
        a.mov(rax, qword_ptr(DATA)).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(15), 1);
    assert_eq!(m.gpr(14) & 0xf, 0b1001);
}

#[test]
fn rep_string_data_breakpoint_ends_the_iteration() {
    let mut m = machine();
    db_handler(&mut m, |_| {});
    m.cpu.state.dr[0] = DATA + 3;
    m.cpu.state.dr[7] = bp7(0, 1, 0);
    run(&mut m, |a| {
        a.mov(rdi, DATA).unwrap();
        a.mov(ecx, 8u32).unwrap();
        a.mov(al, 0x55u32).unwrap();
        a.rep().stosb().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(15), 1);
    assert_eq!(m.gpr(11), 4, "trap after the 4th iteration");
    assert_eq!(m.read(m.gpr(12), 2), 0xaaf3, "RIP still on REP STOSB");
    assert_ne!(m.gpr(13) & rflags::RF, 0, "not the last iteration: RF=1");
    assert_eq!(m.gpr(1), 0, "the rest ran after the IRETQ");
    assert_eq!(m.read(DATA, 8), 0x5555_5555_5555_5555);
}

#[test]
fn single_step_each_rep_iteration_but_not_int_n() {
    let mut m = machine();
    // Stop single-stepping after the third trap.
    db_handler(&mut m, |a| {
        let mut keep = a.create_label();
        a.cmp(r15, 3).unwrap();
        a.jne(keep).unwrap();
        a.and(qword_ptr(rsp + 16), !0x100i32).unwrap();
        a.set_label(&mut keep).unwrap();
        a.nop().unwrap();
    });
    run(&mut m, |a| {
        a.mov(rdi, DATA).unwrap();
        a.mov(ecx, 3u32).unwrap();
        a.pushfq().unwrap();
        a.or(qword_ptr(rsp), 0x100).unwrap();
        a.popfq().unwrap(); // sets TF: no trap after POPF itself
        a.rep().stosb().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(15), 3, "one trap per iteration");
    assert_eq!(m.gpr(10), 2, "RF=1 in the frames of the first two");
    assert_ne!(m.gpr(14) & DR6_BS, 0);
    assert_eq!(m.read(m.gpr(12), 1), 0xf4, "last trap: after the insn");

    // INT n clears TF on delivery: no single-step trap after it.
    let mut m = machine();
    db_handler(&mut m, |_| {});
    handler(&mut m, 0x30, |a| {
        a.mov(r9d, 1u32).unwrap();
        a.iretq().unwrap();
    });
    run(&mut m, |a| {
        a.pushfq().unwrap();
        a.or(qword_ptr(rsp), 0x100).unwrap();
        a.popfq().unwrap();
        a.int(0x30).unwrap();
        a.pushfq().unwrap(); // stepped (TF back from the frame)
        a.and(qword_ptr(rsp), !0x100i32).unwrap(); // stepped
        a.popfq().unwrap(); // stepped: TF was set at its start
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(9), 1);
    assert_eq!(
        m.gpr(15),
        3,
        "PUSHFQ, AND, POPFQ; none for INT or in the handler"
    );
}

#[test]
fn general_detect_faults_with_bd_and_clears_gd() {
    let mut m = machine();
    db_handler(&mut m, |a| {
        a.mov(r9, dr7).unwrap(); // allowed: GD was cleared on entry
    });
    m.cpu.state.dr[7] = 0x400 | (1 << 13);
    m.cpu.state.dr[0] = 0x1234;
    run(&mut m, |a| {
        a.mov(rax, dr0).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(15), 1);
    assert_eq!(m.gpr(12), CODE, "fault: RIP of the MOV DR");
    assert_ne!(m.gpr(14) & DR6_BD, 0, "DR6.BD");
    assert_ne!(m.gpr(13) & rflags::RF, 0, "fault-class #DB pushes RF=1");
    assert_eq!(m.gpr(9) & (1 << 13), 0, "GD cleared on #DB entry");
    assert_eq!(m.gpr(0), 0x1234, "retried MOV DR succeeds");
}

#[test]
fn io_breakpoint_needs_cr4_de() {
    for de in [false, true] {
        let mut m = machine();
        db_handler(&mut m, |_| {});
        if de {
            m.cpu.state.cr4 |= cr4::DE;
        }
        m.cpu.state.dr[0] = 0x80;
        m.cpu.state.dr[7] = bp7(0, 2, 0);
        run(&mut m, |a| {
            a.mov(al, 1u32).unwrap();
            a.out(0x80, al).unwrap();
            a.mov(dx, 0x81u32).unwrap();
            a.out(dx, al).unwrap();
            a.hlt().unwrap();
        });
        assert_eq!(m.gpr(15), de as u64, "CR4.DE={de}");
        if de {
            assert_eq!(m.gpr(14) & 0xf, 1);
            assert_eq!(m.gpr(12), CODE + 4, "trap after the OUT");
        }
    }
}

#[test]
fn mov_ss_holds_single_step_and_suppresses_insn_breakpoint() {
    let mut m = machine();
    db_handler(&mut m, |a| {
        a.and(qword_ptr(rsp + 16), !0x100i32).unwrap();
    });
    let bytes = m.load(|a| {
        a.mov(ax, 0x10u32).unwrap();
        a.pushfq().unwrap();
        a.or(qword_ptr(rsp), 0x100).unwrap();
        a.popfq().unwrap(); // sets TF: the first trap would follow MOV SS
        a.mov(ss, ax).unwrap();
        a.nop().unwrap();
        a.hlt().unwrap();
    });
    let nop = CODE + bytes.iter().position(|&b| b == 0x90).unwrap() as u64;
    m.cpu.state.dr[0] = nop;
    m.cpu.state.dr[7] = bp7(0, 0, 0);
    assert_eq!(m.run(), CpuExit::Halted);
    assert_eq!(m.gpr(15), 1, "one trap, held past the MOV SS");
    assert_eq!(m.gpr(12), nop + 1, "delivered after the NOP");
    assert_ne!(m.gpr(14) & DR6_BS, 0);
    assert_eq!(m.gpr(14) & 0xf, 0, "instruction breakpoint suppressed");
}

#[test]
fn second_mov_ss_in_the_shadow_does_not_extend_it() {
    let mut m = machine();
    handler(&mut m, 0x20, |a| {
        a.mov(ebx, ecx).unwrap();
        a.mov(r8d, 1u32).unwrap();
        a.iretq().unwrap();
    });
    m.plat.irqs.push_back(0x20);
    run(&mut m, |a| {
        a.mov(ax, 0x10u32).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.sti().unwrap();
        a.mov(ss, ax).unwrap(); // in the STI shadow
        a.mov(ss, ax).unwrap(); // in the MOV SS shadow: sets none
        a.inc(ecx).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(8), 1, "interrupt taken");
    assert_eq!(m.gpr(3), 0, "taken before the INC");
}

#[test]
fn int_n_pushes_rf_zero_after_an_rf_resume() {
    let mut m = machine();
    handler(&mut m, 0x30, |a| {
        a.mov(r13, qword_ptr(rsp + 16)).unwrap();
        a.iretq().unwrap();
    });
    m.cpu.state.rflags |= rflags::RF;
    run(&mut m, |a| {
        a.int(0x30).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(
        m.gpr(13) & rflags::RF,
        0,
        "RF cleared at the start of INT n"
    );
}

#[test]
fn explicit_ss_prefix_non_canonical_is_ss_fault() {
    let mut m = machine();
    m.cpu.state.gpr[3] = 0x8000_0000_0000_0000;
    m.cpu.state.gpr[5] = 0x8000_0000_0000_0000;
    type Case = (fn(&mut CodeAssembler), Fault);
    let cases: [Case; 4] = [
        (|a| a.mov(eax, dword_ptr(rbx).ss()).unwrap(), Fault::ss(0)),
        (|a| a.mov(eax, dword_ptr(rbx)).unwrap(), Fault::gp0()),
        (|a| a.mov(eax, dword_ptr(rbp).es()).unwrap(), Fault::ss(0)),
        (|a| a.mov(eax, dword_ptr(rbp).fs()).unwrap(), Fault::gp0()),
    ];
    for (i, (f, want)) in cases.into_iter().enumerate() {
        m.load(f);
        assert_eq!(m.exec_one(), Err(want), "case {i}");
    }
}
