//! ALU instructions against an independent reference model, at every
//! operand size, at the edges (0, 1, sign boundaries, all-ones, nibble
//! carries), in register, memory and immediate forms.

use super::f::*;
use super::{Machine, DATA};
use iced_x86::code_asm::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Adc,
    Sub,
    Sbb,
    And,
    Or,
    Xor,
    Cmp,
    Test,
    Inc,
    Dec,
    Neg,
    Not,
}

/// Reference: result and status flags, computed with wide arithmetic.
fn reference(op: Op, a: u64, b: u64, cf_in: bool, bits: u32) -> (u64, u64, bool) {
    let mask: u128 = (1u128 << bits) - 1;
    let sa = |v: u64| -> i128 {
        let v = v as u128 & mask;
        if v >> (bits - 1) & 1 == 1 {
            v as i128 - (1i128 << bits)
        } else {
            v as i128
        }
    };
    let (a, b) = (a as u128 & mask, b as u128 & mask);
    let c = cf_in as u128;
    let smin = -(1i128 << (bits - 1));
    let smax = (1i128 << (bits - 1)) - 1;
    let mut fl = 0u64;
    let (r, writes, keep_cf) = match op {
        Op::Add | Op::Adc | Op::Inc => {
            let (b, c) = match op {
                Op::Inc => (1, 0),
                Op::Add => (b, 0),
                _ => (b, c),
            };
            let w = a + b + c;
            if w > mask {
                fl |= CF;
            }
            let s = sa(a as u64) + sa(b as u64) + c as i128;
            if s < smin || s > smax {
                fl |= OF;
            }
            if (a & 15) + (b & 15) + c > 15 {
                fl |= AF;
            }
            (w & mask, true, op == Op::Inc)
        }
        Op::Sub | Op::Sbb | Op::Cmp | Op::Dec | Op::Neg => {
            let (x, y, c) = match op {
                Op::Dec => (a, 1, 0),
                Op::Neg => (0, a, 0),
                Op::Sbb => (a, b, c),
                _ => (a, b, 0),
            };
            if x < y + c {
                fl |= CF;
            }
            let s = sa(x as u64) - sa(y as u64) - c as i128;
            if s < smin || s > smax {
                fl |= OF;
            }
            if (x & 15) < (y & 15) + c {
                fl |= AF;
            }
            (
                x.wrapping_sub(y).wrapping_sub(c) & mask,
                op != Op::Cmp,
                op == Op::Dec,
            )
        }
        Op::And | Op::Test => (a & b, op == Op::And, false),
        Op::Or => (a | b, true, false),
        Op::Xor => (a ^ b, true, false),
        Op::Not => (!a & mask, true, false),
    };
    if keep_cf {
        // INC/DEC leave CF alone.
        fl = (fl & !CF) | if cf_in { CF } else { 0 };
    }
    if r == 0 {
        fl |= ZF;
    }
    if (r >> (bits - 1)) & 1 == 1 {
        fl |= SF;
    }
    if (r as u8).count_ones().is_multiple_of(2) {
        fl |= PF;
    }
    (r as u64, fl, writes)
}

fn edges(bits: u32) -> Vec<u64> {
    let m = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let h = 1u64 << (bits - 1);
    vec![
        0,
        1,
        2,
        0xf,
        0x10,
        h - 1,
        h,
        h + 1,
        m - 1,
        m,
        0x5a5a_5a5a_5a5a_5a5a & m,
    ]
}

macro_rules! sized_regs {
    ($bits:expr, |$x:ident, $y:ident| $body:expr) => {
        match $bits {
            8 => {
                let ($x, $y) = (al, bl);
                $body
            }
            16 => {
                let ($x, $y) = (ax, bx);
                $body
            }
            32 => {
                let ($x, $y) = (eax, ebx);
                $body
            }
            _ => {
                let ($x, $y) = (rax, rbx);
                $body
            }
        }
    };
}

fn emit(a: &mut CodeAssembler, op: Op, bits: u32) {
    sized_regs!(bits, |x, y| match op {
        Op::Add => a.add(x, y).unwrap(),
        Op::Adc => a.adc(x, y).unwrap(),
        Op::Sub => a.sub(x, y).unwrap(),
        Op::Sbb => a.sbb(x, y).unwrap(),
        Op::And => a.and(x, y).unwrap(),
        Op::Or => a.or(x, y).unwrap(),
        Op::Xor => a.xor(x, y).unwrap(),
        Op::Cmp => a.cmp(x, y).unwrap(),
        Op::Test => a.test(x, y).unwrap(),
        Op::Inc => a.inc(x).unwrap(),
        Op::Dec => a.dec(x).unwrap(),
        Op::Neg => a.neg(x).unwrap(),
        Op::Not => a.not(x).unwrap(),
    });
}

/// The same operation with a memory destination at [rdi].
fn emit_mem(a: &mut CodeAssembler, op: Op, bits: u32) {
    macro_rules! m {
        () => {
            match bits {
                8 => byte_ptr(rdi),
                16 => word_ptr(rdi),
                32 => dword_ptr(rdi),
                _ => qword_ptr(rdi),
            }
        };
    }
    sized_regs!(bits, |_x, y| match op {
        Op::Add => a.add(m!(), y).unwrap(),
        Op::Adc => a.adc(m!(), y).unwrap(),
        Op::Sub => a.sub(m!(), y).unwrap(),
        Op::Sbb => a.sbb(m!(), y).unwrap(),
        Op::And => a.and(m!(), y).unwrap(),
        Op::Or => a.or(m!(), y).unwrap(),
        Op::Xor => a.xor(m!(), y).unwrap(),
        Op::Cmp => a.cmp(m!(), y).unwrap(),
        Op::Test => a.test(m!(), y).unwrap(),
        Op::Inc => a.inc(m!()).unwrap(),
        Op::Dec => a.dec(m!()).unwrap(),
        Op::Neg => a.neg(m!()).unwrap(),
        Op::Not => a.not(m!()).unwrap(),
    });
}

const ALL: [Op; 13] = [
    Op::Add,
    Op::Adc,
    Op::Sub,
    Op::Sbb,
    Op::And,
    Op::Or,
    Op::Xor,
    Op::Cmp,
    Op::Test,
    Op::Inc,
    Op::Dec,
    Op::Neg,
    Op::Not,
];

fn run_case(m: &mut Machine, op: Op, bits: u32, a_val: u64, b_val: u64, cf_in: bool, mem: bool) {
    let (want_r, want_f, writes) = reference(op, a_val, b_val, cf_in, bits);
    // Garbage above the operand size must survive 8/16-bit writes and be
    // cleared by 32-bit ones.
    let upper = 0xdead_beef_0000_0000u64;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let init_a = if bits == 64 {
        a_val
    } else {
        upper | (a_val & mask)
    };
    // NOT does not touch flags: start from a known pattern.
    let pre_flags = if cf_in { CF | ZF | OF } else { SF | PF };
    m.cpu.state.gpr[0] = init_a;
    m.cpu.state.gpr[3] = b_val;
    m.cpu.state.gpr[7] = DATA;
    m.write(DATA, 8, init_a);
    m.cpu.set_rflags(0x2 | pre_flags);
    m.exec(|a| {
        if mem {
            emit_mem(a, op, bits)
        } else {
            emit(a, op, bits)
        }
        a.hlt().unwrap();
    });
    let got = if mem { m.read(DATA, 8) } else { m.gpr(0) };
    let expect = if !writes {
        init_a
    } else if bits == 32 && !mem {
        want_r
    } else {
        (init_a & !mask) | want_r
    };
    let ctx = format!("{op:?}{bits} a={a_val:#x} b={b_val:#x} cf={cf_in} mem={mem}");
    assert_eq!(got, expect, "result of {ctx}");
    let want_flags = if op == Op::Not { pre_flags } else { want_f };
    assert_eq!(m.flags(), want_flags, "flags of {ctx}");
}

#[test]
fn alu_register_forms_all_sizes_at_edges() {
    let mut m = Machine::long64();
    for bits in [8, 16, 32, 64] {
        for op in ALL {
            for &a_val in &edges(bits) {
                for &b_val in &edges(bits) {
                    for cf_in in [false, true] {
                        run_case(&mut m, op, bits, a_val, b_val, cf_in, false);
                    }
                }
            }
        }
    }
}

#[test]
fn alu_memory_forms() {
    let mut m = Machine::long64();
    for bits in [8, 16, 32, 64] {
        for op in ALL {
            for &a_val in &edges(bits)[..6] {
                for &b_val in &edges(bits)[4..] {
                    run_case(&mut m, op, bits, a_val, b_val, true, true);
                }
            }
        }
    }
}

#[test]
fn alu_immediate_forms_sign_extend() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(rax, 0x1_0000_0000u64).unwrap();
        a.add(rax, -1).unwrap(); // imm8 sign-extended to 64
        a.mov(rbx, 5u64).unwrap();
        a.sub(ebx, 0x7fff_ffff).unwrap(); // 32-bit op zero-extends
        a.mov(rcx, u64::MAX).unwrap();
        a.and(cx, 0x00f0).unwrap(); // 16-bit op merges
        a.mov(dword_ptr(DATA), 0x8000_0000u32).unwrap();
        a.or(qword_ptr(DATA), -2).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0xffff_ffff);
    assert_eq!(m.gpr(3), 5u64.wrapping_sub(0x7fff_ffff) & 0xffff_ffff);
    assert_eq!(m.gpr(1), 0xffff_ffff_ffff_00f0);
    assert_eq!(m.read(DATA, 8), 0xffff_ffff_ffff_fffe);
    assert_eq!(m.flags(), SF); // OR: CF=OF=0, result negative, low byte 0xfe odd parity
}

#[test]
fn high_byte_registers_and_rex_byte_registers() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(rax, 0x1122_3344_5566_7788u64).unwrap();
        a.add(ah, 0x11).unwrap();
        a.mov(rsi, 0x0102_0304_0506_0708u64).unwrap();
        a.mov(sil, 0xff).unwrap();
        a.mov(rbx, 0u64).unwrap();
        a.mov(bh, ah).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0x1122_3344_5566_8888);
    assert_eq!(m.gpr(6), 0x0102_0304_0506_07ff);
    assert_eq!(m.gpr(3), 0x8800);
}

#[test]
fn xadd_cmpxchg_xchg() {
    let mut m = Machine::long64();
    m.write(DATA, 8, 10);
    m.exec(|a| {
        a.mov(rdi, DATA).unwrap();
        a.mov(ecx, 5u32).unwrap();
        a.lock().xadd(dword_ptr(rdi), ecx).unwrap(); // [DATA]=15, ecx=10
                                                     // cmpxchg: eax (15) == [DATA] → [DATA] = edx
        a.mov(rax, 0xffff_ffff_0000_000fu64).unwrap();
        a.mov(edx, 99u32).unwrap();
        a.lock().cmpxchg(dword_ptr(rdi), edx).unwrap();
        a.mov(r8, rax).unwrap(); // equal: RAX untouched (upper bits kept)
                                 // mismatch: eax gets [DATA], zero-extended
        a.mov(rax, 0xffff_ffff_0000_0001u64).unwrap();
        a.cmpxchg(dword_ptr(rdi), edx).unwrap();
        a.mov(r9, rax).unwrap();
        a.mov(r10, 7u64).unwrap();
        a.xchg(qword_ptr(rdi), r10).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(1), 10);
    assert_eq!(m.gpr(8), 0xffff_ffff_0000_000f);
    assert_eq!(m.gpr(9), 99);
    assert_eq!(m.gpr(10), 99);
    assert_eq!(m.read(DATA, 8), 7);
    assert_eq!(m.flags() & ZF, 0, "last cmpxchg mismatched");
}

#[test]
fn cmpxchg8b_and_16b() {
    let mut m = Machine::long64();
    m.write(DATA, 8, 0x1111_2222_3333_4444);
    m.write(DATA + 8, 8, 0x5555_6666_7777_8888);
    m.exec(|a| {
        a.mov(rdi, DATA).unwrap();
        a.mov(eax, 0x3333_4444u32).unwrap();
        a.mov(edx, 0x1111_2222u32).unwrap();
        a.mov(ebx, 0xaaaa_bbbbu32).unwrap();
        a.mov(ecx, 0xcccc_ddddu32).unwrap();
        a.cmpxchg8b(qword_ptr(rdi)).unwrap();
        a.setz(r8b).unwrap();
        // 16B mismatch: loads RDX:RAX
        a.xor(eax, eax).unwrap();
        a.xor(edx, edx).unwrap();
        a.cmpxchg16b(xmmword_ptr(rdi)).unwrap();
        a.setz(r9b).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(DATA, 8), 0xcccc_dddd_aaaa_bbbb);
    assert_eq!(m.gpr(8) & 0xff, 1);
    assert_eq!(m.gpr(9) & 0xff, 0);
    assert_eq!(m.gpr(0), 0xcccc_dddd_aaaa_bbbb);
    assert_eq!(m.gpr(2), 0x5555_6666_7777_8888);
}

#[test]
fn cmpxchg16b_misaligned_is_gp() {
    let mut m = Machine::long64();
    m.cpu.state.gpr[7] = DATA + 8;
    m.load(|a| {
        a.cmpxchg16b(xmmword_ptr(rdi)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(crate::fault::Fault::gp0()));
}

#[test]
fn mul_imul_flags_and_results() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(rax, u64::MAX).unwrap();
        a.mov(rbx, 2u64).unwrap();
        a.mul(rbx).unwrap(); // rdx:rax = 2^65 - 2
        a.mov(r8, rax).unwrap();
        a.mov(r9, rdx).unwrap();
        a.mov(al, 0x80).unwrap();
        a.mov(bl, 0xff).unwrap();
        a.imul(bl).unwrap(); // -128 * -1 = 128 → AX = 0x0080, CF=OF=1
        a.mov(r10, rax).unwrap();
        a.mov(ecx, 0x10000u32).unwrap();
        a.imul_3(ecx, ecx, 0x10000).unwrap(); // overflow: low = 0
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(8), u64::MAX - 1);
    assert_eq!(m.gpr(9), 1);
    assert_eq!(m.gpr(10) & 0xffff, 0x0080);
    assert_eq!(m.gpr(1), 0);
    assert_eq!(m.flags() & (CF | OF | ZF), CF | OF | ZF);
}

#[test]
fn div_idiv_results_and_de() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(rdx, 1u64).unwrap();
        a.mov(rax, 5u64).unwrap();
        a.mov(rbx, 2u64).unwrap();
        a.div(rbx).unwrap(); // (2^64 + 5) / 2
        a.mov(r8, rax).unwrap();
        a.mov(r9, rdx).unwrap();
        a.mov(ax, 0xfff9u32).unwrap(); // -7
        a.mov(cl, 2).unwrap();
        a.idiv(cl).unwrap(); // AL = -3, AH = -1
        a.mov(r10, rax).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(8), (1u64 << 63) + 2);
    assert_eq!(m.gpr(9), 1);
    assert_eq!(m.gpr(10) & 0xffff, 0xfffd);

    // Division by zero and quotient overflow are #DE, registers untouched.
    for setup in 0..3 {
        let mut m = Machine::long64();
        m.load(|a| match setup {
            0 => {
                a.div(ecx).unwrap();
            }
            1 => {
                a.div(cl).unwrap();
            }
            _ => {
                a.idiv(rcx).unwrap();
            }
        });
        match setup {
            0 => m.cpu.state.gpr[1] = 0,
            1 => {
                m.cpu.state.gpr[0] = 0x0200;
                m.cpu.state.gpr[1] = 2; // 0x200 / 2 = 0x100 > 0xff
            }
            _ => {
                m.cpu.state.gpr[0] = 1 << 63; // i64::MIN / -1
                m.cpu.state.gpr[2] = u64::MAX;
                m.cpu.state.gpr[1] = u64::MAX;
            }
        }
        let before = m.cpu.state.gpr;
        assert_eq!(m.exec_one(), Err(crate::fault::Fault::DE), "case {setup}");
        assert_eq!(m.cpu.state.gpr, before);
        assert_eq!(m.cpu.state.rip, super::CODE);
    }
}

#[test]
fn bcd_adjustments() {
    let mut m = Machine::prot32();
    m.exec(|a| {
        a.mov(al, 0x79).unwrap();
        a.add(al, 0x35).unwrap(); // 0xae
        a.daa().unwrap(); // 79 + 35 = 114 → AL = 0x14, CF = 1
        a.mov(bl, al).unwrap();
        a.mov(al, 0x35).unwrap();
        a.sub(al, 0x47).unwrap();
        a.das().unwrap(); // 35 - 47 = -12 → 0x88, CF = 1
        a.mov(bh, al).unwrap();
        a.mov(ax, 0x0009u32).unwrap();
        a.add(al, 0x08).unwrap();
        a.aaa().unwrap(); // 9 + 8 = 17 → AX = 0x0107
        a.mov(cx, ax).unwrap();
        a.mov(al, 63).unwrap();
        a.aam(10).unwrap(); // AH = 6, AL = 3
        a.mov(dx, ax).unwrap();
        a.aad(10).unwrap(); // back to 63
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3) & 0xffff, 0x8814);
    assert_eq!(m.gpr(1) & 0xffff, 0x0107);
    assert_eq!(m.gpr(2) & 0xffff, 0x0603);
    assert_eq!(m.gpr(0) & 0xffff, 63);
    m.load(|a| {
        a.aam(0).unwrap();
    });
    assert_eq!(m.exec_one(), Err(crate::fault::Fault::DE));
}
