//! Shifts and rotates against the SDM's bit-at-a-time pseudo-code, at
//! counts 0, 1, width-1, width, width+1 and the masking edges; SHLD/SHRD;
//! the bit instructions.

use super::f::*;
use super::{Machine, DATA};
use iced_x86::code_asm::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sh {
    Rol,
    Ror,
    Rcl,
    Rcr,
    Shl,
    Shr,
    Sar,
}

/// The SDM pseudo-code, one bit per step. Undefined flags follow the rules
/// documented in insn/shift.rs (the count-1 formulas for OF, AF = 0).
/// Returns (result, flags) with `flags_in` for what stays unchanged.
fn reference(op: Sh, a: u64, count: u64, flags_in: u64, bits: u32) -> (u64, u64) {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let msb = |v: u64| (v >> (bits - 1)) & 1 == 1;
    let cmask = if bits == 64 { 0x3f } else { 0x1f };
    let masked = count & cmask;
    if masked == 0 {
        return (a, flags_in);
    }
    let mut d = a & mask;
    let mut cf = flags_in & CF != 0;
    let of;
    match op {
        Sh::Shl | Sh::Shr | Sh::Sar => {
            let orig = d;
            for _ in 0..masked {
                match op {
                    Sh::Shl => {
                        cf = msb(d);
                        d = (d << 1) & mask;
                    }
                    Sh::Sar => {
                        cf = d & 1 == 1;
                        d = (d >> 1) | if msb(d) { 1 << (bits - 1) } else { 0 };
                    }
                    _ => {
                        cf = d & 1 == 1;
                        d >>= 1;
                    }
                }
            }
            of = match op {
                Sh::Shl => msb(d) ^ cf,
                Sh::Sar => false,
                _ => msb(orig),
            };
            let mut fl = 0;
            if cf {
                fl |= CF;
            }
            if of {
                fl |= OF;
            }
            if d == 0 {
                fl |= ZF;
            }
            if msb(d) {
                fl |= SF;
            }
            if (d as u8).count_ones().is_multiple_of(2) {
                fl |= PF;
            }
            return (d, fl);
        }
        Sh::Rcl | Sh::Rcr => {
            let t = match bits {
                8 => masked % 9,
                16 => masked % 17,
                _ => masked,
            };
            let pre_of = msb(d) ^ cf;
            for _ in 0..t {
                if op == Sh::Rcl {
                    let tcf = msb(d);
                    d = ((d << 1) & mask) | cf as u64;
                    cf = tcf;
                } else {
                    let tcf = d & 1 == 1;
                    d = (d >> 1) | ((cf as u64) << (bits - 1));
                    cf = tcf;
                }
            }
            of = if op == Sh::Rcl { msb(d) ^ cf } else { pre_of };
        }
        Sh::Rol | Sh::Ror => {
            let t = masked % bits as u64;
            for _ in 0..t {
                if op == Sh::Rol {
                    d = ((d << 1) & mask) | msb(d) as u64;
                } else {
                    d = (d >> 1) | ((d & 1) << (bits - 1));
                }
            }
            if op == Sh::Rol {
                cf = d & 1 == 1;
                of = msb(d) ^ cf;
            } else {
                cf = msb(d);
                of = msb(d) ^ ((d >> (bits - 2)) & 1 == 1);
            }
        }
    }
    let mut fl = flags_in & !(CF | OF);
    if cf {
        fl |= CF;
    }
    if of {
        fl |= OF;
    }
    (d, fl)
}

fn emit(a: &mut CodeAssembler, op: Sh, bits: u32) {
    macro_rules! go {
        ($r:expr) => {
            match op {
                Sh::Rol => a.rol($r, cl).unwrap(),
                Sh::Ror => a.ror($r, cl).unwrap(),
                Sh::Rcl => a.rcl($r, cl).unwrap(),
                Sh::Rcr => a.rcr($r, cl).unwrap(),
                Sh::Shl => a.shl($r, cl).unwrap(),
                Sh::Shr => a.shr($r, cl).unwrap(),
                Sh::Sar => a.sar($r, cl).unwrap(),
            }
        };
    }
    match bits {
        8 => go!(al),
        16 => go!(ax),
        32 => go!(eax),
        _ => go!(rax),
    }
}

#[test]
fn shifts_and_rotates_match_the_sdm_pseudocode() {
    let mut m = Machine::long64();
    let ops = [
        Sh::Rol,
        Sh::Ror,
        Sh::Rcl,
        Sh::Rcr,
        Sh::Shl,
        Sh::Shr,
        Sh::Sar,
    ];
    for bits in [8u32, 16, 32, 64] {
        let w = bits as u64;
        let counts = [0, 1, 2, w - 1, w, w + 1, 31, 32, 33, 63, 64, 65, 255];
        let m_ = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let values = [
            0,
            1,
            0x80 & m_,
            1u64 << (bits - 1),
            m_,
            0x5a5a_5a5a_5a5a_5a5a & m_,
            0x8001 & m_,
        ];
        for op in ops {
            for &c in &counts {
                for &v in &values {
                    for flags_in in [0, CF | ZF | PF | SF | AF | OF] {
                        let (want, want_f) = reference(op, v, c, flags_in, bits);
                        m.cpu.state.gpr[0] = v;
                        m.cpu.state.gpr[1] = c;
                        m.cpu.set_rflags(0x2 | flags_in);
                        m.exec(|a| {
                            emit(a, op, bits);
                            a.hlt().unwrap();
                        });
                        let ctx = format!("{op:?}{bits} v={v:#x} count={c} flags_in={flags_in:#x}");
                        assert_eq!(m.gpr(0) & m_, want, "result {ctx}");
                        assert_eq!(m.flags(), want_f, "flags {ctx}");
                    }
                }
            }
        }
    }
}

#[test]
fn shift_forms_and_memory() {
    let mut m = Machine::long64();
    m.write(DATA, 8, 0x8000_0000_0000_0001);
    m.exec(|a| {
        a.mov(rdi, DATA).unwrap();
        a.rol(qword_ptr(rdi), 1).unwrap(); // 0x...03, CF = 1
        a.setc(r8b).unwrap();
        a.mov(eax, 0xffff_ffffu32).unwrap();
        a.shr(eax, 31).unwrap();
        a.mov(ebx, 0x8000_0000u32).unwrap();
        a.sar(ebx, 4).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(DATA, 8), 3);
    assert_eq!(m.gpr(8) & 0xff, 1);
    assert_eq!(m.gpr(0), 1);
    assert_eq!(m.gpr(3), 0xf800_0000);
}

#[test]
fn shld_shrd() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(eax, 0x1234_5678u32).unwrap();
        a.mov(ebx, 0x9abc_def0u32).unwrap();
        a.shld(eax, ebx, 8).unwrap(); // 0x3456789a, CF = bit 24 of old eax = 0
        a.mov(ecx, 0x1234_5678u32).unwrap();
        a.mov(edx, 0x9abc_def0u32).unwrap();
        a.mov(r8, 4u64).unwrap();
        a.xchg(rcx, r8).unwrap();
        a.shrd(r8d, edx, cl).unwrap(); // 0x01234567 | 0 << 28 = 0x01234567
        a.mov(rsi, 0x8000_0000_0000_0000u64).unwrap();
        a.mov(rdi, 1u64).unwrap();
        a.shld(rsi, rdi, 1).unwrap(); // 0x...0000, CF = 1, OF = 1 (sign change)
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0x3456_789a);
    assert_eq!(m.gpr(8), 0x0123_4567);
    assert_eq!(m.gpr(6), 0);
    assert_eq!(m.flags() & (CF | OF | ZF), CF | OF | ZF);
}

#[test]
fn bit_test_family_with_memory_offsets() {
    let mut m = Machine::long64();
    m.write(DATA, 8, 0);
    m.write(DATA + 8, 8, 0);
    m.write(DATA - 8, 8, 0);
    m.exec(|a| {
        a.mov(rdi, DATA).unwrap();
        a.mov(rax, 70u64).unwrap();
        a.bts(qword_ptr(rdi), rax).unwrap(); // bit 6 of the qword at DATA+8
        a.mov(rax, -1i64 as u64).unwrap();
        a.bts(qword_ptr(rdi), rax).unwrap(); // bit 63 of the qword at DATA-8
        a.bt(qword_ptr(rdi), rax).unwrap(); // CF = 1
        a.setc(r8b).unwrap();
        a.mov(ebx, 0xf0u32).unwrap();
        a.btr(ebx, 36).unwrap(); // imm masked to 4 → clears bit 4, CF = 1
        a.setc(r9b).unwrap();
        a.btc(ebx, 0).unwrap(); // sets bit 0, CF = 0
        a.hlt().unwrap();
    });
    assert_eq!(m.read(DATA + 8, 8), 1 << 6);
    assert_eq!(m.read(DATA - 8, 8), 1 << 63);
    assert_eq!(m.read(DATA, 8), 0);
    assert_eq!(m.gpr(8) & 0xff, 1);
    assert_eq!(m.gpr(9) & 0xff, 1);
    assert_eq!(m.gpr(3), 0xe1);
    assert_eq!(m.flags() & CF, 0);
}

#[test]
fn bit_scans_and_counts() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(rax, 0x0000_0100_0000_8000u64).unwrap();
        a.bsf(rbx, rax).unwrap(); // 15
        a.bsr(rcx, rax).unwrap(); // 40
        a.mov(rdx, 0x1234u64).unwrap();
        a.xor(esi, esi).unwrap();
        a.bsf(rdx, rsi).unwrap(); // source 0: ZF = 1, rdx unchanged
        a.setz(r8b).unwrap();
        a.popcnt(r9, rax).unwrap(); // 2
        a.lzcnt(r10d, eax).unwrap(); // eax = 0x8000 → 16
        a.tzcnt(r11, rsi).unwrap(); // 64, CF = 1
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3), 15);
    assert_eq!(m.gpr(1), 40);
    assert_eq!(m.gpr(2), 0x1234);
    assert_eq!(m.gpr(8) & 0xff, 1);
    assert_eq!(m.gpr(9), 2);
    assert_eq!(m.gpr(10), 16);
    assert_eq!(m.gpr(11), 64);
    assert_eq!(m.flags() & (CF | ZF), CF);
}
