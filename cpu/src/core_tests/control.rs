//! Branches, the stack, data movement and the small instructions.

use super::f::*;
use super::{Machine, CODE, DATA, STACK};
use crate::event::CpuEvent;
use crate::fault::Fault;
use iced_x86::code_asm::*;

#[test]
fn every_jcc_condition() {
    let patterns = [0, CF, ZF, SF, OF, PF, SF | OF, ZF | SF, CF | ZF];
    // Jcc, SETcc and CMOVcc agree with the flag formulas.
    type Cond = (u8, fn(u64) -> bool);
    let conds: [Cond; 16] = [
        (0, |f| f & OF != 0),
        (1, |f| f & OF == 0),
        (2, |f| f & CF != 0),
        (3, |f| f & CF == 0),
        (4, |f| f & ZF != 0),
        (5, |f| f & ZF == 0),
        (6, |f| f & (CF | ZF) != 0),
        (7, |f| f & (CF | ZF) == 0),
        (8, |f| f & SF != 0),
        (9, |f| f & SF == 0),
        (10, |f| f & PF != 0),
        (11, |f| f & PF == 0),
        (12, |f| (f & SF != 0) != (f & OF != 0)),
        (13, |f| (f & SF != 0) == (f & OF != 0)),
        (14, |f| f & ZF != 0 || (f & SF != 0) != (f & OF != 0)),
        (15, |f| f & ZF == 0 && (f & SF != 0) == (f & OF != 0)),
    ];
    for &p in &patterns {
        for &(cc, want) in &conds {
            let mut m = Machine::long64();
            m.cpu.set_rflags(0x2 | p);
            m.exec(|a| {
                let mut t = a.create_label();
                let mut out = a.create_label();
                a.mov(eax, 0u32).unwrap();
                match cc {
                    0 => a.jo(t),
                    1 => a.jno(t),
                    2 => a.jb(t),
                    3 => a.jae(t),
                    4 => a.je(t),
                    5 => a.jne(t),
                    6 => a.jbe(t),
                    7 => a.ja(t),
                    8 => a.js(t),
                    9 => a.jns(t),
                    10 => a.jp(t),
                    11 => a.jnp(t),
                    12 => a.jl(t),
                    13 => a.jge(t),
                    14 => a.jle(t),
                    _ => a.jg(t),
                }
                .unwrap();
                a.jmp(out).unwrap();
                a.set_label(&mut t).unwrap();
                a.mov(eax, 1u32).unwrap();
                a.set_label(&mut out).unwrap();
                match cc {
                    0 => a.seto(bl),
                    1 => a.setno(bl),
                    2 => a.setb(bl),
                    3 => a.setae(bl),
                    4 => a.sete(bl),
                    5 => a.setne(bl),
                    6 => a.setbe(bl),
                    7 => a.seta(bl),
                    8 => a.sets(bl),
                    9 => a.setns(bl),
                    10 => a.setp(bl),
                    11 => a.setnp(bl),
                    12 => a.setl(bl),
                    13 => a.setge(bl),
                    14 => a.setle(bl),
                    _ => a.setg(bl),
                }
                .unwrap();
                match cc {
                    0 => a.cmovo(ecx, eax),
                    1 => a.cmovno(ecx, eax),
                    2 => a.cmovb(ecx, eax),
                    3 => a.cmovae(ecx, eax),
                    4 => a.cmove(ecx, eax),
                    5 => a.cmovne(ecx, eax),
                    6 => a.cmovbe(ecx, eax),
                    7 => a.cmova(ecx, eax),
                    8 => a.cmovs(ecx, eax),
                    9 => a.cmovns(ecx, eax),
                    10 => a.cmovp(ecx, eax),
                    11 => a.cmovnp(ecx, eax),
                    12 => a.cmovl(ecx, eax),
                    13 => a.cmovge(ecx, eax),
                    14 => a.cmovle(ecx, eax),
                    _ => a.cmovg(ecx, eax),
                }
                .unwrap();
                a.hlt().unwrap();
            });
            let w = want(p) as u64;
            assert_eq!(m.gpr(0), w, "J{cc} with flags {p:#x}");
            assert_eq!(m.gpr(3) & 0xff, w, "SET{cc} with flags {p:#x}");
            assert_eq!(m.gpr(1), w, "CMOV{cc} with flags {p:#x}");
        }
    }
}

#[test]
fn cmov_false_still_zero_extends_32bit() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(rcx, 0xffff_ffff_1234_5678u64).unwrap();
        a.xor(eax, eax).unwrap(); // ZF = 1
        a.cmovne(ecx, eax).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(1), 0x1234_5678);
}

#[test]
fn call_ret_and_ret_imm() {
    let mut m = Machine::long64();
    m.exec(|a| {
        let mut f = a.create_label();
        let mut g = a.create_label();
        let mut out = a.create_label();
        a.push(0x11).unwrap();
        a.push(0x22).unwrap();
        a.call(f).unwrap();
        a.mov(r9, rsp).unwrap();
        a.lea(rax, qword_ptr(g)).unwrap();
        a.call(rax).unwrap();
        a.jmp(out).unwrap();
        a.set_label(&mut f).unwrap();
        a.mov(r8, qword_ptr(rsp + 8)).unwrap();
        a.ret_1(16).unwrap();
        a.set_label(&mut g).unwrap();
        a.mov(r10, 5u64).unwrap();
        a.ret().unwrap();
        a.set_label(&mut out).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(8), 0x22);
    assert_eq!(m.gpr(9), STACK);
    assert_eq!(m.gpr(10), 5);
    assert_eq!(m.gpr(4), STACK);
}

#[test]
fn loops_and_jrcxz() {
    let mut m = Machine::long64();
    m.exec(|a| {
        let mut top = a.create_label();
        let mut z = a.create_label();
        let mut after = a.create_label();
        a.mov(ecx, 5u32).unwrap();
        a.xor(eax, eax).unwrap();
        a.set_label(&mut top).unwrap();
        a.add(eax, 2).unwrap();
        a.loop_(top).unwrap();
        // LOOPNE stops when ZF = 1: count down until eax hits 4.
        a.mov(ecx, 100u32).unwrap();
        let mut t2 = a.create_label();
        a.set_label(&mut t2).unwrap();
        a.sub(eax, 1).unwrap();
        a.cmp(eax, 4).unwrap();
        a.loopne(t2).unwrap();
        a.mov(ebx, ecx).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.jrcxz(z).unwrap();
        a.mov(edx, 1u32).unwrap();
        a.set_label(&mut z).unwrap();
        a.jmp(after).unwrap();
        a.set_label(&mut after).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 4);
    assert_eq!(m.gpr(3), 94);
    assert_eq!(m.gpr(2), 0);
}

#[test]
fn real_mode_16bit_code() {
    let mut m = Machine::real();
    m.exec(|a| {
        let mut f = a.create_label();
        let mut out = a.create_label();
        a.mov(ax, 0x1234u32).unwrap();
        a.push(ax).unwrap();
        a.call(f).unwrap();
        a.pop(bx).unwrap();
        a.jmp(out).unwrap();
        a.set_label(&mut f).unwrap();
        a.mov(si, sp).unwrap();
        a.mov(cx, word_ptr(si + 2)).unwrap();
        a.ret().unwrap();
        a.set_label(&mut out).unwrap();
        a.mov(dx, 0xffffu32).unwrap();
        a.add(dx, 2).unwrap(); // wraps to 1, CF
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3) & 0xffff, 0x1234);
    assert_eq!(m.gpr(1) & 0xffff, 0x1234);
    assert_eq!(m.gpr(4) & 0xffff, 0xfff0);
    assert_eq!(m.gpr(2) & 0xffff, 1);
    assert_eq!(m.flags() & CF, CF);
}

#[test]
fn near_jump_beyond_cs_limit_is_gp() {
    let mut m = Machine::prot32();
    m.cpu.state.seg[crate::state::SegReg::Cs as usize].limit = 0x1_ffff;
    m.cpu.state.seg[crate::state::SegReg::Cs as usize].attr &= !crate::state::seg_attr::G;
    m.cpu.state.gpr[0] = 0x2_0000;
    m.load(|a| {
        a.jmp(eax).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    assert_eq!(m.cpu.state.rip, CODE);
    // CALL to a bad target pushes nothing.
    m.load(|a| {
        a.call(eax).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    assert_eq!(m.gpr(4), STACK);
}

#[test]
fn push_pop_forms_and_pusha() {
    let mut m = Machine::prot32();
    m.write(DATA, 4, 0xcafe);
    m.exec(|a| {
        a.push(dword_ptr(DATA)).unwrap();
        a.pop(dword_ptr(DATA + 4)).unwrap();
        a.mov(eax, 1u32).unwrap();
        a.mov(ecx, 2u32).unwrap();
        a.mov(edx, 3u32).unwrap();
        a.mov(ebx, 4u32).unwrap();
        a.mov(ebp, 6u32).unwrap();
        a.mov(esi, 7u32).unwrap();
        a.mov(edi, 8u32).unwrap();
        a.pushad().unwrap();
        a.mov(eax, dword_ptr(esp + 12)).unwrap(); // saved ESP
        a.mov(dword_ptr(DATA + 8), eax).unwrap();
        a.xor(eax, eax).unwrap();
        a.xor(ebx, ebx).unwrap();
        a.popad().unwrap();
        // POP [esp]: the address uses ESP after the increment.
        a.push(0x77).unwrap();
        a.push(0x66).unwrap();
        a.pop(dword_ptr(esp)).unwrap();
        a.pop(edi).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(DATA + 4, 4), 0xcafe);
    assert_eq!(m.read(DATA + 8, 4), STACK);
    assert_eq!(m.gpr(0), 1);
    assert_eq!(m.gpr(3), 4);
    assert_eq!(m.gpr(7), 0x66);
    assert_eq!(m.gpr(4), STACK);
}

#[test]
fn enter_leave() {
    let mut m = Machine::prot32();
    m.exec(|a| {
        a.mov(ebp, 0x1111u32).unwrap();
        a.enter(16, 0).unwrap();
        a.mov(eax, ebp).unwrap();
        a.mov(ebx, esp).unwrap();
        a.enter(8, 2).unwrap(); // nested: copies one frame pointer + pushes new
        a.mov(ecx, esp).unwrap();
        a.leave().unwrap();
        a.leave().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), STACK - 4);
    assert_eq!(m.gpr(3), STACK - 4 - 16);
    // Second frame: push ebp (4), copy 1 outer frame ptr (4), push frame (4), alloc 8.
    assert_eq!(m.gpr(1), STACK - 20 - 4 - 4 - 4 - 8);
    assert_eq!(m.gpr(5), 0x1111);
    assert_eq!(m.gpr(4), STACK);
}

#[test]
fn moves_and_extensions() {
    let mut m = Machine::long64();
    m.write(DATA, 8, 0x8899_aabb_ccdd_eeff);
    m.exec(|a| {
        a.movzx(eax, byte_ptr(DATA)).unwrap();
        a.movsx(rbx, word_ptr(DATA)).unwrap();
        a.movsxd(rcx, dword_ptr(DATA)).unwrap();
        a.mov(rdx, 0x0102_0304_0506_0708u64).unwrap();
        a.bswap(rdx).unwrap();
        a.movbe(esi, dword_ptr(DATA)).unwrap();
        a.lea(edi, qword_ptr(rax + rbx * 4 + 0x10)).unwrap();
        a.mov(r8, rax).unwrap();
        a.mov(al, 0x80).unwrap();
        a.cbw().unwrap();
        a.cwde().unwrap();
        a.cdqe().unwrap();
        a.cqo().unwrap();
        a.mov(r9, rdx).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(8), 0xff);
    assert_eq!(m.gpr(3), 0xffff_ffff_ffff_eeff);
    assert_eq!(m.gpr(1), 0xffff_ffff_ccdd_eeff);
    assert_eq!(m.gpr(6), 0xffee_ddcc);
    assert_eq!(
        m.gpr(7),
        (0xffu64 + 0xffff_ffff_ffff_eeffu64.wrapping_mul(4) + 0x10) & 0xffff_ffff
    );
    assert_eq!(m.gpr(0), 0xffff_ffff_ffff_ff80);
    assert_eq!(m.gpr(9), u64::MAX);
    assert_eq!(m.gpr(2), u64::MAX);
}

#[test]
fn bswap_and_moffs_and_xlat() {
    let mut m = Machine::prot32();
    m.write(DATA, 4, 0x1122_3344);
    for i in 0..256u64 {
        m.write(DATA + 0x100 + i, 1, 255 - i);
    }
    m.exec(|a| {
        a.mov(eax, dword_ptr(DATA)).unwrap(); // moffs form
        a.bswap(eax).unwrap();
        a.mov(ebx, DATA as u32 + 0x100).unwrap();
        a.mov(ecx, eax).unwrap();
        a.mov(al, 3).unwrap();
        a.xlatb().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(1), 0x4433_2211);
    assert_eq!(m.gpr(0) & 0xff, 252);
}

#[test]
fn lahf_sahf_and_flag_ops() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(ah, 0xd5).unwrap();
        a.sahf().unwrap();
        a.lahf().unwrap();
        a.mov(bl, ah).unwrap();
        a.clc().unwrap();
        a.cmc().unwrap();
        a.std().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3) & 0xff, 0xd7);
    assert_eq!(m.flags(), SF | ZF | AF | PF | CF);
    assert_ne!(m.cpu.rflags() & crate::state::rflags::DF, 0);
}

#[test]
fn bound_ud_and_unimplemented() {
    let mut m = Machine::prot32();
    m.write(DATA, 4, 10);
    m.write(DATA + 4, 4, 20);
    m.cpu.state.gpr[0] = 21;
    m.load(|a| {
        a.bound(eax, qword_ptr(DATA)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::BR));
    m.cpu.state.gpr[0] = 20;
    assert_eq!(m.exec_one(), Ok(()));
    m.load(|a| {
        a.ud2().unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::UD));
    assert!(m.plat.events.is_empty(), "UD2 is not 'unimplemented'");
    // An instruction ringside does not implement: event + #UD.
    m.load(|a| {
        a.xsave(ptr(eax)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::UD));
    match &m.plat.events[..] {
        [CpuEvent::Unimplemented { rip, bytes, text }] => {
            assert_eq!(*rip, CODE);
            assert_eq!(bytes, &vec![0x0f, 0xae, 0x20]);
            assert_eq!(text, "xsave [eax]");
        }
        other => panic!("unexpected events {other:?}"),
    }
}

#[test]
fn nops_and_fences() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.nop().unwrap();
        a.nop_1(dword_ptr(rax + rax)).unwrap();
        a.pause().unwrap();
        a.lfence().unwrap();
        a.mfence().unwrap();
        a.sfence().unwrap();
        a.prefetcht0(byte_ptr(DATA)).unwrap();
        a.clflush(byte_ptr(DATA)).unwrap();
        a.endbr64().unwrap();
        a.mov(eax, 9u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 9);
}
