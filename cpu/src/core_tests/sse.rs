//! SSE/SSE2: availability checks, alignment, MXCSR, FXSAVE/FXRSTOR and
//! a few values per family (the differential suite checks the rest
//! against the host CPU).

use super::*;
use crate::state::MXCSR_RESET;
use iced_x86::code_asm::*;

/// A 64-bit machine with SSE enabled (CR4.OSFXSR).
fn sse_machine() -> Machine {
    let mut m = Machine::long64();
    m.cpu.state.cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT;
    m
}

fn x(m: &Machine, i: usize) -> u128 {
    m.cpu.state.xmm[i]
}

#[test]
fn availability_checks() {
    let mut m = Machine::long64();
    m.load(|a| {
        a.pxor(xmm0, xmm1).unwrap();
    });
    // CR4.OSFXSR = 0: #UD.
    assert_eq!(m.exec_one(), Err(Fault::UD));
    m.cpu.state.cr4 |= cr4::OSFXSR;
    // CR0.EM = 1: #UD, even with TS.
    m.cpu.state.cr0 |= cr0::EM | cr0::TS;
    assert_eq!(m.exec_one(), Err(Fault::UD));
    // CR0.TS = 1: #NM.
    m.cpu.state.cr0 &= !cr0::EM;
    assert_eq!(m.exec_one(), Err(Fault::NM));
    m.cpu.state.cr0 &= !cr0::TS;
    m.cpu.state.xmm[0] = 0xff00;
    m.cpu.state.xmm[1] = 0x0ff0;
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(x(&m, 0), 0xf0f0);
    // MOVNTI is a GPR store: no SSE checks.
    m.cpu.state.cr0 |= cr0::TS;
    m.cpu.state.gpr[0] = 0x1122_3344;
    m.load(|a| {
        a.movnti(dword_ptr(DATA), eax).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.read(DATA, 4), 0x1122_3344);
}

#[test]
fn alignment_rules() {
    let mut m = sse_machine();
    let v = 0x0123_4567_89ab_cdef_0011_2233_4455_6677u128;
    m.write(DATA + 8, 8, v as u64);
    m.write(DATA + 16, 8, (v >> 64) as u64);
    m.cpu.state.gpr[3] = DATA + 8;
    m.load(|a| {
        a.movdqa(xmm2, xmmword_ptr(rbx)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    m.load(|a| {
        a.movdqu(xmm2, xmmword_ptr(rbx)).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(x(&m, 2), v);
    // Arithmetic on a misaligned m128: #GP; on an aligned one: fine.
    m.load(|a| {
        a.paddb(xmm2, xmmword_ptr(rbx)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    // MOVUPS store, then read back.
    m.cpu.state.xmm[5] = !v;
    m.cpu.state.gpr[3] = DATA + 0x43;
    m.load(|a| {
        a.movups(xmmword_ptr(rbx), xmm5).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.read(DATA + 0x43, 8), !v as u64);
    assert_eq!(m.read(DATA + 0x4b, 8), (!v >> 64) as u64);
}

#[test]
fn mxcsr_load_store_and_reserved_bits() {
    let mut m = sse_machine();
    assert_eq!(m.cpu.state.mxcsr, MXCSR_RESET);
    m.write(DATA, 4, 0x7fbf);
    m.load(|a| {
        a.ldmxcsr(dword_ptr(DATA)).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.cpu.state.mxcsr, 0x7fbf);
    m.write(DATA, 4, 0x1_1f80);
    m.cpu.state.rip = CODE;
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    assert_eq!(m.cpu.state.mxcsr, 0x7fbf);
    m.load(|a| {
        a.stmxcsr(dword_ptr(DATA + 8)).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.read(DATA + 8, 4), 0x7fbf);
}

#[test]
fn fxsave_fxrstor_round_trip() {
    let mut m = sse_machine();
    for i in 0..16 {
        m.cpu.state.xmm[i] = (i as u128 + 1) * 0x0101_0101_0101_0101_0101_0101_0101_0101;
    }
    m.cpu.state.mxcsr = 0x1f80 | 0x8000;
    let saved = m.cpu.state.xmm;
    m.exec(|a| {
        a.fxsave64(ptr(DATA)).unwrap();
        a.pxor(xmm3, xmm3).unwrap();
        a.pxor(xmm15, xmm15).unwrap();
        a.fxrstor64(ptr(DATA)).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.cpu.state.xmm, saved);
    assert_eq!(m.read(DATA, 2), u64::from(m.cpu.state.x87.fcw), "FCW");
    assert_eq!(m.read(DATA + 24, 4), 0x9f80);
    assert_eq!(m.read(DATA + 28, 4), 0xffff, "MXCSR_MASK");
    assert_eq!(m.read(DATA + 160, 8) as u128, saved[0] & u64::MAX as u128);
    assert_eq!(m.read(DATA + 400, 8), (saved[15] >> 64) as u64);
    // A reserved MXCSR bit in the image: #GP, nothing loaded.
    m.write(DATA + 24, 4, 0x10_0000);
    m.load(|a| {
        a.fxrstor64(ptr(DATA)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    // Misaligned area: #GP.
    m.load(|a| {
        a.fxsave(ptr(DATA + 8)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    // CR0.EM: #NM (not #UD) for FXSAVE.
    m.cpu.state.cr0 |= cr0::EM;
    m.load(|a| {
        a.fxsave(ptr(DATA)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::NM));
}

#[test]
fn integer_arithmetic_values() {
    let mut m = sse_machine();
    m.cpu.state.xmm[0] = 0x7fff_8000_00ff_0001_7f80_0000_ffff_0102;
    m.cpu.state.xmm[1] = 0x0001_ffff_0001_ffff_0101_0000_0001_0304;
    m.exec(|a| {
        a.movdqa(xmm2, xmm0).unwrap();
        a.paddsw(xmm2, xmm1).unwrap();
        a.movdqa(xmm3, xmm0).unwrap();
        a.paddusb(xmm3, xmm1).unwrap();
        a.movdqa(xmm4, xmm0).unwrap();
        a.pmaddwd(xmm4, xmm1).unwrap();
        a.movdqa(xmm5, xmm0).unwrap();
        a.psadbw(xmm5, xmm1).unwrap();
        a.movdqa(xmm6, xmm0).unwrap();
        a.pmulhw(xmm6, xmm1).unwrap();
        a.hlt().unwrap();
    });
    // Words (high to low) 7fff+0001 sat, 8000+ffff sat, 00ff+0001,
    // 0001+ffff=0, 7f80+0101, 0000+0000, ffff+0001=0, 0102+0304.
    assert_eq!(x(&m, 2), 0x7fff_8000_0100_0000_7fff_0000_0000_0406);
    // Bytes, unsigned saturating.
    assert_eq!(x(&m, 3), 0x7fff_ffff_00ff_ffff_8081_0000_ffff_0406);
    // Dwords: 7fff*1 + (-32768)*(-1); 255*1 + 1*(-1); 0x7f80*0x0101 + 0;
    // (-1)*1 + 0x0102*0x0304.
    assert_eq!(
        x(&m, 4),
        (u128::from(0x7fffu32 + 0x8000) << 96)
            | (u128::from(254u32) << 64)
            | (u128::from(0x7f80u32 * 0x0101) << 32)
            | u128::from((0x0102u32 * 0x0304).wrapping_sub(1))
    );
    // PSADBW: sum of |a-b| per quadword.
    let sad = |a: u64, b: u64| -> u64 {
        (0..8)
            .map(|k| ((a >> (8 * k)) as u8).abs_diff((b >> (8 * k)) as u8) as u64)
            .sum()
    };
    let (a, b) = (x(&m, 0), x(&m, 1));
    assert_eq!(
        x(&m, 5),
        u128::from(sad(a as u64, b as u64))
            | (u128::from(sad((a >> 64) as u64, (b >> 64) as u64)) << 64)
    );
    // PMULHW: 0x7fff*1 → 0; 0x0102*0x0304 = 0x30a08 → 3; -1*1 → -1.
    assert_eq!(x(&m, 6) >> 112, 0);
    assert_eq!(x(&m, 6) & 0xffff, 3);
    assert_eq!((x(&m, 6) >> 16) & 0xffff, 0xffff);
}

#[test]
fn shifts_shuffles_packs_moves() {
    let mut m = sse_machine();
    m.cpu.state.xmm[0] = 0x8000_0001_7fff_ffff_0123_4567_89ab_cdef;
    m.cpu.state.gpr[0] = 0xdead_beef_1234_5678;
    m.exec(|a| {
        a.movdqa(xmm1, xmm0).unwrap();
        a.psraw(xmm1, 20).unwrap();
        a.movdqa(xmm2, xmm0).unwrap();
        a.psrldq(xmm2, 9).unwrap();
        a.pshufd(xmm3, xmm0, 0x1b).unwrap();
        a.movdqa(xmm4, xmm0).unwrap();
        a.packsswb(xmm4, xmm0).unwrap();
        a.movq(xmm5, rax).unwrap();
        a.pinsrw(xmm5, eax, 7).unwrap();
        a.pextrw(ecx, xmm0, 6).unwrap();
        a.pmovmskb(edx, xmm0).unwrap();
        a.movmskps(esi, xmm0).unwrap();
        a.hlt().unwrap();
    });
    let v = x(&m, 0);
    // PSRAW by 20 ≥ 16: each word is its sign.
    let sign_words = (0..8).fold(0u128, |r, i| {
        let w = (v >> (16 * i)) as u16;
        r | (u128::from(if w & 0x8000 != 0 { 0xffffu16 } else { 0 }) << (16 * i))
    });
    assert_eq!(x(&m, 1), sign_words);
    assert_eq!(x(&m, 2), v >> 72);
    // PSHUFD 0x1b reverses the dwords.
    let d = |i: u32| (v >> (32 * i)) as u32 as u128;
    assert_eq!(x(&m, 3), d(3) | (d(2) << 32) | (d(1) << 64) | (d(0) << 96));
    assert_eq!(x(&m, 5), (0x5678u128 << 112) | 0xdead_beef_1234_5678);
    assert_eq!(m.gpr(1), 0x0001);
    let mut mask = 0;
    for i in 0..16 {
        if (v >> (8 * i + 7)) & 1 != 0 {
            mask |= 1 << i;
        }
    }
    assert_eq!(m.gpr(2), mask);
    assert_eq!(m.gpr(6), 0b1001);
    // PACKSSWB of words 0xcdef (-12817 → -128 = 0x80), 0x89ab (→ 0x80),
    // 0x4567 (→ 0x7f), 0x0123 (→ 0x7f), 0xffff (-1), 0x7fff (→ 0x7f),
    // 0x0001, 0x8000 (→ 0x80); both halves from xmm0.
    let half = 0x8001_7fff_7f7f_8080u128;
    assert_eq!(x(&m, 4), half | (half << 64));
}
