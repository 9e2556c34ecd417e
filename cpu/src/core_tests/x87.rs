//! The x87 FPU: exact 80-bit results per PC/RC, stack faults, compares,
//! integer stores, the environment images and FXSAVE (the differential
//! suite checks many more values against the host CPU).

use super::*;
use crate::state::{fsw, F80};
use iced_x86::code_asm::*;

const CW: u64 = DATA + 0x100;
const OUT: u64 = DATA + 0x200;

fn st(m: &Machine, i: usize) -> F80 {
    let x = &m.cpu.state.x87;
    x.regs[(x.top() + i) & 7]
}

fn fsw_of(m: &Machine) -> u16 {
    m.cpu.state.x87.fsw
}

#[test]
fn one_third_per_precision_and_rounding() {
    // (FCW, significand of 1/3 = 0x3ffd_aaaa…)
    // (FCW, significand, rounded up)
    let cases: [(u16, u64, bool); 6] = [
        (0x037f, 0xaaaa_aaaa_aaaa_aaab, true),
        (0x077f, 0xaaaa_aaaa_aaaa_aaaa, false), // RC down
        (0x027f, 0xaaaa_aaaa_aaaa_a800, false), // PC 53
        (0x0a7f, 0xaaaa_aaaa_aaaa_b000, true),  // PC 53, RC up
        (0x007f, 0xaaaa_ab00_0000_0000, true),  // PC 24
        (0x0c7f, 0xaaaa_aa00_0000_0000, false), // PC 24, RC zero
    ];
    for (cw, sig, up) in cases {
        let mut m = Machine::long64();
        m.write(CW, 2, u64::from(cw));
        m.write(DATA, 4, 3);
        m.exec(|a| {
            a.fninit().unwrap();
            a.fldcw(word_ptr(CW)).unwrap();
            a.fld1().unwrap();
            a.fidiv(dword_ptr(DATA)).unwrap();
            a.fnstsw(ax).unwrap();
            a.fstp(tword_ptr(OUT)).unwrap();
            a.hlt().unwrap();
        });
        assert_eq!(m.read(OUT, 8), sig, "FCW {cw:#x}");
        assert_eq!(m.read(OUT + 8, 2), 0x3ffd);
        assert_eq!(fsw_of(&m) & 0x3f, 0x20, "PE only");
        assert_eq!(m.gpr(0) as u16 & fsw::C1 != 0, up, "C1 = rounded up");
    }
}

#[test]
fn stack_overflow_and_underflow() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.fninit().unwrap();
        for _ in 0..9 {
            a.fld1().unwrap();
        }
        a.hlt().unwrap();
    });
    let w = fsw_of(&m);
    assert_eq!(
        w & (fsw::IE | fsw::SF | fsw::C1),
        fsw::IE | fsw::SF | fsw::C1
    );
    assert_eq!(st(&m, 0), F80::INDEFINITE);
    assert_eq!(m.cpu.state.x87.ftw, 0xff);
    // Underflow: FADD with an empty ST(1), masked: indefinite, C1 = 0.
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld1().unwrap();
        a.fadd_2(st0, st1).unwrap();
        a.hlt().unwrap();
    });
    let w = fsw_of(&m);
    assert_eq!(w & (fsw::IE | fsw::SF | fsw::C1), fsw::IE | fsw::SF);
    assert_eq!(st(&m, 0), F80::INDEFINITE);
}

#[test]
fn unmasked_exception_is_pending_until_the_next_waiting_instruction() {
    let mut m = Machine::long64();
    m.cpu.state.cr0 |= cr0::NE;
    m.write(CW, 2, 0x037b); // ZE unmasked
    m.load(|a| {
        a.fninit().unwrap();
        a.fldcw(word_ptr(CW)).unwrap();
        a.fld1().unwrap();
        a.fldz().unwrap();
        a.fdivp(st1, st0).unwrap();
        a.fnstsw(ax).unwrap();
        a.fld1().unwrap();
    });
    for _ in 0..5 {
        assert_eq!(m.exec_one(), Ok(()));
    }
    // The divide left the stack as it was (two entries) and set ES/B.
    assert_eq!(m.cpu.state.x87.top(), 6);
    assert_eq!(m.exec_one(), Ok(()), "FNSTSW does not wait");
    assert_eq!(
        m.gpr(0) as u16 & (fsw::ES | fsw::B | 4),
        fsw::ES | fsw::B | 4
    );
    assert_eq!(m.exec_one(), Err(Fault::MF));
    // CR0.EM / CR0.TS: #NM; WAIT only with MP and TS.
    m.cpu.state.cr0 |= cr0::EM;
    m.load(|a| {
        a.fnop().unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::NM));
    m.cpu.state.x87.fsw = 0;
    m.cpu.state.cr0 = (m.cpu.state.cr0 & !cr0::EM) | cr0::TS;
    m.load(|a| {
        a.wait().unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    m.cpu.state.cr0 |= cr0::MP;
    m.load(|a| {
        a.wait().unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::NM));
}

#[test]
fn compares_and_nans() {
    let mut m = Machine::long64();
    // A QNaN in memory (double).
    m.write(DATA, 8, 0x7ff8_0000_0000_0001);
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld1().unwrap();
        a.fldz().unwrap();
        // ST0 = 0, ST1 = 1: less.
        a.fcom_2(st0, st1).unwrap();
        a.fnstsw(ax).unwrap();
        a.mov(bx, ax).unwrap();
        a.fucomi(st0, st1).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3) as u16 & (fsw::C0 | fsw::C2 | fsw::C3), fsw::C0);
    assert_eq!(m.flags() & (f::ZF | f::PF | f::CF), f::CF);
    // FUCOM with a QNaN: unordered, no IE; FCOM with it: IE.
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld(qword_ptr(DATA)).unwrap();
        a.fld1().unwrap();
        a.fucom(st0, st1).unwrap();
        a.hlt().unwrap();
    });
    let w = fsw_of(&m);
    assert_eq!(
        w & (fsw::C0 | fsw::C2 | fsw::C3 | fsw::IE),
        fsw::C0 | fsw::C2 | fsw::C3
    );
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld(qword_ptr(DATA)).unwrap();
        a.fld1().unwrap();
        a.fcom_2(st0, st1).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(fsw_of(&m) & fsw::IE, fsw::IE);
    // FXAM of an empty register and of -1.
    m.exec(|a| {
        a.fninit().unwrap();
        a.fxam().unwrap();
        a.fnstsw(ax).unwrap();
        a.mov(bx, ax).unwrap();
        a.fld1().unwrap();
        a.fchs().unwrap();
        a.fxam().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(
        m.gpr(3) as u16 & (fsw::C0 | fsw::C2 | fsw::C3),
        fsw::C0 | fsw::C3
    );
    assert_eq!(
        fsw_of(&m) & (fsw::C0 | fsw::C1 | fsw::C2 | fsw::C3),
        fsw::C1 | fsw::C2
    );
}

#[test]
fn integer_stores_round_and_overflow() {
    let mut m = Machine::long64();
    // 2.5 as a double: round-to-nearest-even gives 2, C1 clear; -2.5 → -2.
    m.write(DATA, 8, 0x4004_0000_0000_0000);
    m.write(DATA + 8, 4, 40000);
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld(qword_ptr(DATA)).unwrap();
        a.fist(dword_ptr(OUT)).unwrap();
        a.fchs().unwrap();
        a.fistp(word_ptr(OUT + 4)).unwrap();
        a.fild(dword_ptr(DATA + 8)).unwrap();
        a.fistp(word_ptr(OUT + 8)).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(OUT, 4), 2);
    assert_eq!(m.read(OUT + 4, 2), 0xfffe);
    assert_eq!(m.read(OUT + 8, 2), 0x8000, "integer indefinite");
    assert_eq!(fsw_of(&m) & 0x3f, 0x21, "IE (and PE from the 2.5s)");
    assert_eq!(m.cpu.state.x87.ftw, 0);
}

#[test]
fn stores_round_per_rc_not_pc() {
    let mut m = Machine::long64();
    m.write(CW, 2, 0x0f7f); // RC zero, PC 64
    m.exec(|a| {
        a.fninit().unwrap();
        a.fldpi().unwrap();
        a.fst(dword_ptr(OUT)).unwrap();
        a.fst(qword_ptr(OUT + 8)).unwrap();
        a.fldcw(word_ptr(CW)).unwrap();
        a.fldpi().unwrap();
        a.fstp(tword_ptr(OUT + 16)).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(OUT, 4), 0x4049_0fdb);
    assert_eq!(m.read(OUT + 8, 8), 0x4009_21fb_5444_2d18);
    assert_eq!(
        m.read(OUT + 16, 8),
        0xc90f_daa2_2168_c234,
        "FLDPI rounded toward zero"
    );
    assert_eq!(
        st(&m, 0).sig,
        0xc90f_daa2_2168_c235,
        "FLDPI rounded to nearest"
    );
}

#[test]
fn fnsave_frstor_round_trip() {
    let mut m = Machine::long64();
    m.write(DATA, 8, 0x4004_0000_0000_0000);
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld(qword_ptr(DATA)).unwrap();
        a.fldz().unwrap();
        a.fldl2e().unwrap();
        a.fnsave(ptr(OUT)).unwrap();
        a.hlt().unwrap();
    });
    // After FNSAVE: initialized.
    assert_eq!(m.cpu.state.x87.fcw, 0x037f);
    assert_eq!(m.cpu.state.x87.ftw, 0);
    // Image: FCW, FSW (TOP = 5), full tags: R5 valid, R6 zero, R7 valid.
    assert_eq!(m.read(OUT, 4), 0xffff_037f);
    assert_eq!(m.read(OUT + 4, 2), 5 << 11);
    assert_eq!(m.read(OUT + 8, 2), 0x13ff);
    assert_eq!(m.read(OUT + 28 + 8, 2), 0x3fff, "ST0 = log2(e)");
    assert_eq!(m.read(OUT + 38, 8), 0);
    assert_eq!(m.read(OUT + 48 + 8, 2), 0x4000, "ST2 = 2.5");
    m.exec(|a| {
        a.frstor(ptr(OUT)).unwrap();
        a.faddp(st1, st0).unwrap();
        a.fnstenv(ptr(OUT + 0x100)).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.cpu.state.x87.top(), 6);
    assert_eq!(st(&m, 0).se, 0x3fff);
    assert_eq!(st(&m, 1).se, 0x4000);
    assert_eq!(m.cpu.state.x87.fcw, 0x037f | 0x3f, "FNSTENV masks all");
    assert_eq!(m.read(OUT + 0x100 + 8, 2), 0x0fff);
}

#[test]
fn fxsave_carries_the_x87_state() {
    let mut m = Machine::long64();
    m.cpu.state.cr4 |= cr4::OSFXSR;
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld1().unwrap();
        a.fldpi().unwrap();
        a.fxsave64(ptr(OUT)).unwrap();
        a.fninit().unwrap();
        a.fxrstor64(ptr(OUT)).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(OUT, 2), 0x037f);
    assert_eq!(m.read(OUT + 2, 2), 6 << 11);
    assert_eq!(m.read(OUT + 4, 1), 0b1100_0000, "abridged tags");
    assert_eq!(m.read(OUT + 32, 8), 0xc90f_daa2_2168_c235);
    assert_eq!(m.read(OUT + 40, 2), 0x4000);
    assert_eq!(m.read(OUT + 48, 8), 1 << 63);
    assert_eq!(m.cpu.state.x87.top(), 6);
    assert_eq!(st(&m, 1), F80::ONE);
}

#[test]
fn denormals_and_sqrt() {
    let mut m = Machine::long64();
    // The smallest single denormal loads exactly, with DE.
    m.write(DATA, 4, 1);
    m.exec(|a| {
        a.fninit().unwrap();
        a.fld(dword_ptr(DATA)).unwrap();
        a.fsqrt().unwrap();
        a.hlt().unwrap();
    });
    // 2^-149 → sqrt = 2^-74.5, inexact.
    assert_eq!(fsw_of(&m) & 0x3f, 0x22);
    assert_eq!(st(&m, 0).se, 0x3fff - 75);
    assert_eq!(st(&m, 0).sig, 0xb504_f333_f9de_6484);
}

/// Regression (found by the differential suite): an arithmetic
/// instruction stopped by an unmasked exception delivers no result, so
/// C1 ("rounded up") must be 0 even when the result would have rounded
/// up. FADD of 1.0 and the smallest denormal, RC up, DE unmasked.
#[test]
fn unmasked_exception_leaves_c1_clear() {
    let mut m = Machine::long64();
    m.write(CW, 2, 0x0b7d); // RC up, DE unmasked
    m.write(OUT, 8, 1); // significand of the smallest denormal
    m.write(OUT + 8, 2, 0); // sign and exponent 0
    m.exec(|a| {
        a.fninit().unwrap();
        a.fldcw(word_ptr(CW)).unwrap();
        a.fld(tword_ptr(OUT)).unwrap(); // m80: no #D on the load
        a.fld1().unwrap();
        a.fadd_2(st0, st1).unwrap();
        a.hlt().unwrap();
    });
    let w = fsw_of(&m);
    assert_eq!(
        w & (fsw::ES | 2),
        fsw::ES | 2,
        "DE raised, unmasked: {w:#x}"
    );
    assert_eq!(w & fsw::C1, 0, "no result, so not rounded up: {w:#x}");
    assert_eq!(st(&m, 0), F80::ONE, "ST(0) unchanged");
}
