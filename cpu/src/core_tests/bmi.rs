//! BMI1, BMI2 and ADX against bit-at-a-time reference models written from
//! the SDM's pseudo-code, at both operand sizes, in register and memory
//! forms, at the edges (0, all-ones, single bits, index/length fields at
//! 0, width-1, width, > width, 255); the VEX mode rule; MOVBE at every
//! size in both directions.

use super::f::*;
use super::{Machine, DATA};
use crate::fault::Fault;
use iced_x86::code_asm::*;

const DEFINED_LOGIC: u64 = CF | OF | ZF | SF;

fn mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

fn edges(bits: u32) -> Vec<u64> {
    let m = mask(bits);
    let h = 1u64 << (bits - 1);
    vec![
        0,
        1,
        2,
        3,
        0x80,
        h,
        h | 1,
        h - 1,
        m - 1,
        m,
        0x5a5a_5a5a_5a5a_5a5a & m,
        0x0123_4567_89ab_cdef & m,
        0xf0f0_0000_0000_0f00 & m,
    ]
}

/// Run `emit` (one instruction, then HLT) in 64-bit mode with `regs`
/// (GPR index, value) and RFLAGS status bits `flags_in`; returns the
/// machine.
fn run(regs: &[(usize, u64)], flags_in: u64, emit: impl FnOnce(&mut CodeAssembler)) -> Machine {
    let mut m = Machine::long64();
    for &(i, v) in regs {
        m.cpu.state.gpr[i] = v;
    }
    let fl = m.cpu.rflags() & !(CF | PF | AF | ZF | SF | OF);
    m.cpu.set_rflags(fl | flags_in);
    m.exec(|a| {
        emit(a);
        a.hlt().unwrap();
    });
    m
}

fn zs(r: u64, bits: u32) -> u64 {
    let mut f = 0;
    if r == 0 {
        f |= ZF;
    }
    if (r >> (bits - 1)) & 1 != 0 {
        f |= SF;
    }
    f
}

/// Reference BEXTR: bit by bit, bits past the operand read as zero.
fn ref_bextr(src: u64, ctl: u64, bits: u32) -> u64 {
    let start = ctl & 0xff;
    let len = (ctl >> 8) & 0xff;
    let mut r = 0;
    for i in 0..len.min(64) {
        let b = start + i;
        if b < u64::from(bits) && (src >> b) & 1 != 0 {
            r |= 1 << i;
        }
    }
    r
}

fn ref_pdep(src: u64, m: u64) -> u64 {
    let (mut r, mut k) = (0, 0);
    for i in 0..64 {
        if (m >> i) & 1 != 0 {
            r |= ((src >> k) & 1) << i;
            k += 1;
        }
    }
    r
}

fn ref_pext(src: u64, m: u64) -> u64 {
    let (mut r, mut k) = (0, 0);
    for i in 0..64 {
        if (m >> i) & 1 != 0 {
            r |= ((src >> i) & 1) << k;
            k += 1;
        }
    }
    r
}

#[test]
fn andn_and_bls_family() {
    for bits in [32, 64] {
        for &a in &edges(bits) {
            for &b in &edges(bits) {
                let m = run(&[(1, a), (2, b)], 0, |x| {
                    if bits == 64 {
                        x.andn(rax, rcx, rdx).unwrap()
                    } else {
                        x.andn(eax, ecx, edx).unwrap()
                    }
                });
                let r = !a & b & mask(bits);
                assert_eq!(m.gpr(0), r, "andn {a:#x} {b:#x}");
                assert_eq!(m.flags() & DEFINED_LOGIC, zs(r, bits));
            }
            // BLSI / BLSMSK / BLSR, source in memory half the time.
            for op in 0..3 {
                for mem in [false, true] {
                    let mut mm = Machine::long64();
                    mm.cpu.state.gpr[2] = a;
                    mm.cpu.state.gpr[7] = DATA;
                    mm.write(DATA, 8, a);
                    mm.cpu.state.gpr[3] = 0xdead_beef_dead_beef;
                    mm.exec(|x| {
                        match (op, bits, mem) {
                            (0, 32, false) => x.blsi(ebx, edx).unwrap(),
                            (0, 32, true) => x.blsi(ebx, dword_ptr(rdi)).unwrap(),
                            (0, _, false) => x.blsi(rbx, rdx).unwrap(),
                            (0, _, true) => x.blsi(rbx, qword_ptr(rdi)).unwrap(),
                            (1, 32, false) => x.blsmsk(ebx, edx).unwrap(),
                            (1, 32, true) => x.blsmsk(ebx, dword_ptr(rdi)).unwrap(),
                            (1, _, false) => x.blsmsk(rbx, rdx).unwrap(),
                            (1, _, true) => x.blsmsk(rbx, qword_ptr(rdi)).unwrap(),
                            (_, 32, false) => x.blsr(ebx, edx).unwrap(),
                            (_, 32, true) => x.blsr(ebx, dword_ptr(rdi)).unwrap(),
                            (_, _, false) => x.blsr(rbx, rdx).unwrap(),
                            (_, _, true) => x.blsr(rbx, qword_ptr(rdi)).unwrap(),
                        }
                        x.hlt().unwrap();
                    });
                    let s = a & mask(bits);
                    // Lowest set bit, found the long way.
                    let low = (0..bits).map(|i| 1u64 << i).find(|b| s & b != 0);
                    let (r, cf) = match op {
                        0 => (low.unwrap_or(0), s != 0),
                        1 => (low.map_or(mask(bits), |l| l | (l - 1)), s == 0),
                        _ => (s & !low.unwrap_or(0), s == 0),
                    };
                    assert_eq!(mm.gpr(3), r, "bls op {op} {bits} {s:#x}");
                    let mut want = zs(r, bits);
                    if cf {
                        want |= CF;
                    }
                    assert_eq!(mm.flags() & DEFINED_LOGIC, want, "bls flags {op} {s:#x}");
                }
            }
        }
    }
}

#[test]
fn bextr_bzhi_index_edges() {
    let fields: [u64; 9] = [0, 1, 7, 31, 32, 33, 63, 64, 255];
    for bits in [32u32, 64] {
        for &src in &edges(bits) {
            for &start in &fields {
                for &len in &fields {
                    // Garbage above bit 15 of the control is ignored.
                    let ctl = start | (len << 8) | 0xabcd_0000;
                    let m = run(&[(1, src), (2, ctl)], CF | OF | SF, |x| {
                        if bits == 64 {
                            x.bextr(rax, rcx, rdx).unwrap()
                        } else {
                            x.bextr(eax, ecx, edx).unwrap()
                        }
                    });
                    let r = ref_bextr(src & mask(bits), ctl, bits);
                    assert_eq!(m.gpr(0), r, "bextr{bits} {src:#x} {start} {len}");
                    assert_eq!(m.flags() & (ZF | CF | OF), if r == 0 { ZF } else { 0 });
                }
                // BZHI with the index in the same field.
                let n = start | 0x1200;
                let m = run(&[(1, src), (2, n)], 0, |x| {
                    if bits == 64 {
                        x.bzhi(rax, rcx, rdx).unwrap()
                    } else {
                        x.bzhi(eax, ecx, edx).unwrap()
                    }
                });
                let s = src & mask(bits);
                let r = if start < u64::from(bits) {
                    s & ((1u64 << start) - 1)
                } else {
                    s
                };
                assert_eq!(m.gpr(0), r, "bzhi{bits} {src:#x} {start}");
                let cf = if start > u64::from(bits) - 1 { CF } else { 0 };
                assert_eq!(m.flags() & DEFINED_LOGIC, zs(r, bits) | cf);
            }
        }
    }
}

#[test]
fn pdep_pext_against_reference() {
    let masks = [
        0u64,
        u64::MAX,
        1,
        0x8000_0000_0000_0000,
        0x8000_0001,
        0xff00_ff00_ff00_ff00,
        0x5555_5555_5555_5555,
        0x0f0f_0000_f0f0_1234,
    ];
    for bits in [32u32, 64] {
        for &src in &edges(bits) {
            for &mk in &masks {
                for ext in [false, true] {
                    let flags = CF | ZF | PF;
                    let m = run(&[(1, src), (2, mk)], flags, |x| match (ext, bits) {
                        (false, 32) => x.pdep(eax, ecx, edx).unwrap(),
                        (false, _) => x.pdep(rax, rcx, rdx).unwrap(),
                        (true, 32) => x.pext(eax, ecx, edx).unwrap(),
                        (true, _) => x.pext(rax, rcx, rdx).unwrap(),
                    });
                    let (s, k) = (src & mask(bits), mk & mask(bits));
                    let r = if ext { ref_pext(s, k) } else { ref_pdep(s, k) };
                    assert_eq!(m.gpr(0), r, "ext={ext} {bits} {src:#x} {mk:#x}");
                    assert_eq!(m.flags(), flags, "PDEP/PEXT write no flag");
                }
            }
        }
    }
}

#[test]
fn mulx_halves_and_no_flags() {
    for &a in &edges(64) {
        for &b in &edges(64) {
            let m = run(&[(2, a), (1, b)], OF | SF, |x| x.mulx(r8, r9, rcx).unwrap());
            let p = u128::from(a) * u128::from(b);
            assert_eq!((m.gpr(9), m.gpr(8)), (p as u64, (p >> 64) as u64));
            assert_eq!(m.flags(), OF | SF);
            let m = run(&[(2, a), (1, b)], 0, |x| x.mulx(r8d, r9d, ecx).unwrap());
            let p = (a & 0xffff_ffff) * (b & 0xffff_ffff);
            assert_eq!((m.gpr(9), m.gpr(8)), (p & 0xffff_ffff, p >> 32));
        }
    }
    // The same register for both halves: it holds the high half.
    let m = run(&[(2, u64::MAX), (1, 3)], 0, |x| {
        x.mulx(r8, r8, rcx).unwrap()
    });
    assert_eq!(m.gpr(8), 2);
    // Memory source.
    let mut m = Machine::long64();
    m.write(DATA, 8, 0x1_0000_0001);
    m.cpu.state.gpr[2] = 0x1_0000_0000;
    m.cpu.state.gpr[7] = DATA;
    m.exec(|x| {
        x.mulx(r10, r11, qword_ptr(rdi)).unwrap();
        x.hlt().unwrap();
    });
    // 2^32 × (2^32 + 1) = 2^64 + 2^32.
    assert_eq!((m.gpr(11), m.gpr(10)), (1 << 32, 1));
}

#[test]
fn rorx_and_shift_x() {
    let counts: [u64; 9] = [0, 1, 5, 31, 32, 33, 63, 64, 255];
    for bits in [32u32, 64] {
        for &src in &edges(bits) {
            for &c in &counts {
                let s = src & mask(bits);
                let n = (c as u32) & (bits - 1);
                let rot = if bits == 64 {
                    s.rotate_right(n)
                } else {
                    u64::from((s as u32).rotate_right(n))
                };
                let m = run(&[(1, src)], ZF | CF, |x| {
                    if bits == 64 {
                        x.rorx(rax, rcx, c as u32).unwrap()
                    } else {
                        x.rorx(eax, ecx, c as u32).unwrap()
                    }
                });
                assert_eq!(m.gpr(0), rot, "rorx{bits} {src:#x} {c}");
                assert_eq!(m.flags(), ZF | CF);
                let sar = ((s << (64 - bits)) as i64 >> (64 - bits) >> n) as u64 & mask(bits);
                let shl = (s << n) & mask(bits);
                let shr = s >> n;
                for (op, want) in [(0, sar), (1, shl), (2, shr)] {
                    // Garbage above the count bits is ignored.
                    let m = run(&[(1, src), (2, c | 0x100)], OF, |x| match (op, bits) {
                        (0, 32) => x.sarx(eax, ecx, edx).unwrap(),
                        (0, _) => x.sarx(rax, rcx, rdx).unwrap(),
                        (1, 32) => x.shlx(eax, ecx, edx).unwrap(),
                        (1, _) => x.shlx(rax, rcx, rdx).unwrap(),
                        (_, 32) => x.shrx(eax, ecx, edx).unwrap(),
                        (_, _) => x.shrx(rax, rcx, rdx).unwrap(),
                    });
                    assert_eq!(m.gpr(0), want, "shiftx op {op} {bits} {src:#x} {c}");
                    assert_eq!(m.flags(), OF);
                }
            }
        }
    }
}

#[test]
fn adcx_adox_touch_one_flag_each() {
    for bits in [32u32, 64] {
        for &a in &edges(bits) {
            for &b in &[0, 1, mask(bits), mask(bits) - 1, 0x8000_0000] {
                for carry in [false, true] {
                    for ox in [false, true] {
                        // The other flags: all set, and must stay.
                        let other = (PF | AF | ZF | SF | OF | CF) & !(if ox { OF } else { CF });
                        let cin = if carry {
                            if ox {
                                OF
                            } else {
                                CF
                            }
                        } else {
                            0
                        };
                        let m = run(&[(0, a), (1, b)], other | cin, |x| match (ox, bits) {
                            (false, 32) => x.adcx(eax, ecx).unwrap(),
                            (false, _) => x.adcx(rax, rcx).unwrap(),
                            (true, 32) => x.adox(eax, ecx).unwrap(),
                            (true, _) => x.adox(rax, rcx).unwrap(),
                        });
                        let w = u128::from(a & mask(bits))
                            + u128::from(b & mask(bits))
                            + u128::from(carry);
                        let cout = (w >> bits) & 1 != 0;
                        assert_eq!(m.gpr(0), w as u64 & mask(bits), "adx {a:#x} {b:#x}");
                        let f = if ox { OF } else { CF };
                        let want = other | if cout { f } else { 0 };
                        assert_eq!(m.flags(), want, "adx flags ox={ox} {a:#x} {b:#x} {carry}");
                    }
                }
            }
        }
    }
}

#[test]
fn movbe_all_sizes_both_directions() {
    let mut m = Machine::long64();
    m.write(DATA, 8, 0x0102_0304_0506_0708);
    m.cpu.state.gpr[7] = DATA;
    m.cpu.state.gpr[0] = u64::MAX;
    m.cpu.state.gpr[1] = u64::MAX;
    m.cpu.state.gpr[2] = u64::MAX;
    m.exec(|x| {
        x.movbe(ax, word_ptr(rdi)).unwrap();
        x.movbe(ecx, dword_ptr(rdi)).unwrap();
        x.movbe(rdx, qword_ptr(rdi)).unwrap();
        x.mov(rbx, 0x1122_3344_5566_7788u64).unwrap();
        x.movbe(qword_ptr(rdi + 8), rbx).unwrap();
        x.movbe(dword_ptr(rdi + 16), ebx).unwrap();
        x.movbe(word_ptr(rdi + 20), bx).unwrap();
        x.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0xffff_ffff_ffff_0807, "16-bit merges");
    assert_eq!(m.gpr(1), 0x0000_0000_0506_0708u64.swap_bytes() >> 32);
    assert_eq!(m.gpr(2), 0x0807_0605_0403_0201);
    assert_eq!(m.read(DATA + 8, 8), 0x8877_6655_4433_2211);
    assert_eq!(m.read(DATA + 16, 4), 0x8877_6655);
    assert_eq!(m.read(DATA + 20, 2), 0x8877);
}

#[test]
fn bmi_in_32bit_protected_mode() {
    let mut m = Machine::prot32();
    m.cpu.state.gpr[1] = 0xf0;
    m.cpu.state.gpr[2] = 0x0404;
    m.exec(|x| {
        x.bextr(eax, ecx, edx).unwrap(); // bits 4..7 of 0xf0
        x.blsr(ebx, ecx).unwrap();
        x.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0xf);
    assert_eq!(m.gpr(3), 0xe0);
}

#[test]
fn vex_is_ud_in_real_mode() {
    let mut m = Machine::real();
    m.load(|x| {
        x.andn(eax, ebx, ecx).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::UD));
    // ADX is legacy-encoded: fine in real mode.
    let mut m = Machine::real();
    m.cpu.state.gpr[0] = 1;
    m.cpu.state.gpr[1] = 2;
    m.load(|x| {
        x.adcx(eax, ecx).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.gpr(0), 3);
}

#[test]
fn bmi_memory_operand_faults_leave_destination() {
    // A non-canonical source: #GP, nothing written.
    let mut m = Machine::long64();
    m.cpu.state.gpr[3] = 0x8000_0000_0000_0000;
    m.cpu.state.gpr[0] = 0x1234;
    m.load(|x| {
        x.andn(rax, rcx, qword_ptr(rbx)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    assert_eq!(m.gpr(0), 0x1234);
}
