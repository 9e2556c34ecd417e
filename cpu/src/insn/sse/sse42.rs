//! SSE4.2: the packed string compares PCMPESTRI/M and PCMPISTRI/M,
//! PCMPGTQ, and CRC32.
//!
//! The string compares follow the SDM's description in Vol. 2, 4.1
//! ("Imm8 Control Byte Operation for PCMPESTRI / PCMPESTRM / PCMPISTRI /
//! PCMPISTRM"): the control byte selects the element format (imm8[1:0]),
//! the aggregation (imm8[3:2]), the polarity (imm8[5:4]) and the output
//! form (imm8[6]); imm8[7] is reserved and ignored. Their memory operand
//! has no alignment requirement (the SDM's exception note for these four
//! instructions overrides exception type 4). CRC32 is a general-purpose
//! instruction that merely came with SSE4.2: it has no SIMD availability
//! check (CR0.EM/TS, CR4.OSFXSR do not matter to it).

use super::{binop, check, map2, read_xm128, sx, xmm, xmm_index};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::rflags::{AF, CF, OF, PF, SF, ZF};
use iced_x86::{Code, Instruction, OpKind, Register};

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Pcmpgtq_xmm_xmmm128 => pcmpgtq,
        C::Crc32_r32_rm8 | C::Crc32_r64_rm8 => crc32::<1>,
        C::Crc32_r32_rm16 => crc32::<2>,
        C::Crc32_r32_rm32 => crc32::<4>,
        C::Crc32_r64_rm64 => crc32::<8>,
        C::Pcmpestri_xmm_xmmm128_imm8 => pcmpstr::<{ EXPLICIT }, { INDEX }, 4>,
        C::Pcmpestri64_xmm_xmmm128_imm8 => pcmpstr::<{ EXPLICIT }, { INDEX }, 8>,
        C::Pcmpestrm_xmm_xmmm128_imm8 => pcmpstr::<{ EXPLICIT }, { MASK }, 4>,
        C::Pcmpestrm64_xmm_xmmm128_imm8 => pcmpstr::<{ EXPLICIT }, { MASK }, 8>,
        C::Pcmpistri_xmm_xmmm128_imm8 => pcmpstr::<{ IMPLICIT }, { INDEX }, 4>,
        C::Pcmpistrm_xmm_xmmm128_imm8 => pcmpstr::<{ IMPLICIT }, { MASK }, 4>,
        _ => return None,
    })
}

/// PCMPGTQ xmm, xmm/m128: signed greater-than of quadwords, all ones or
/// all zeros per lane.
fn pcmpgtq(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| map2(64, a, b, gtq))
}

/// One PCMPGTQ lane: all ones if `x > y` as signed quadwords.
fn gtq(x: u64, y: u64) -> u64 {
    if (x as i64) > (y as i64) {
        u64::MAX
    } else {
        0
    }
}

/// The CRC-32C (Castagnoli) polynomial 0x1EDC6F41, bit-reflected: the
/// CRC32 instruction works on bit-reflected data and accumulator (SDM
/// Vol. 2, CRC32: BIT_REFLECT of source and destination, division modulo
/// 11EDC6F41H, BIT_REFLECT of the remainder), which is the classic
/// LSB-first shift register with the reflected polynomial.
const CRC32C_POLY_REFLECTED: u32 = 0x82f6_3b78;

/// One-byte steps of the reflected CRC-32C register, built at compile
/// time from the polynomial.
const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ CRC32C_POLY_REFLECTED
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// The CRC32 instruction's accumulation of the low `n` bytes of `data`
/// (least significant first) into `crc`: no initial or final inversion,
/// those are software's.
pub(crate) fn crc32c_update(mut crc: u32, data: u64, n: u32) -> u32 {
    for k in 0..n {
        let b = (data >> (8 * k)) as u8;
        crc = (crc >> 8) ^ CRC32C_TABLE[usize::from(b ^ crc as u8)];
    }
    crc
}

/// CRC32 r32/r64, r/m8/16/32/64 (`SZ` source bytes): accumulate the
/// source into the low 32 bits of the destination; the result is
/// zero-extended to the destination (a 64-bit destination's upper half
/// is cleared). Flags are not affected.
fn crc32<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let src = match insn.op1_kind() {
        OpKind::Register => cpu.reg::<SZ>(insn.op1_register()),
        _ => cpu.read_m::<SZ>(plat, insn)?,
    };
    let d = insn.op0_register();
    let acc = if d.size() == 8 {
        cpu.reg::<8>(d)
    } else {
        cpu.reg::<4>(d)
    } as u32;
    let r = u64::from(crc32c_update(acc, src, u32::from(SZ)));
    if d.size() == 8 {
        cpu.set_reg::<8>(d, r);
    } else {
        cpu.set_reg::<4>(d, r);
    }
    Ok(())
}

/// Lengths given in EAX/EDX (RAX/RDX with REX.W): PCMPESTRx.
const EXPLICIT: bool = true;
/// Lengths found by the first null element: PCMPISTRx.
const IMPLICIT: bool = false;
/// Output an index in ECX: PCMPxSTRI.
const INDEX: bool = true;
/// Output a mask in XMM0: PCMPxSTRM.
const MASK: bool = false;

/// What a packed string compare computes, before it is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StrCmp {
    /// IntRes2: one bit per element of the second operand.
    pub res: u32,
    /// CF, ZF, SF, OF (AF and PF clear) at their RFLAGS positions.
    pub flags: u64,
}

/// Element `i` of `v` in the format of imm8[1:0] (sign-extended for the
/// signed formats, so that the range comparisons are plain integer ones).
fn element(v: u128, imm: u8, i: u32) -> i64 {
    let w = if imm & 1 != 0 { 16 } else { 8 };
    let x = ((v >> ((w * i) & 127)) as u64) & ((1u64 << w) - 1);
    if imm & 2 != 0 {
        sx(x, w)
    } else {
        x as i64
    }
}

/// The implicit length of a string: the index of its first null element,
/// or the element count if it has none.
fn implicit_len(v: u128, imm: u8) -> u32 {
    let n = elements(imm);
    (0..n).find(|&i| element(v, imm, i) == 0).unwrap_or(n)
}

/// Elements per operand: 16 bytes or 8 words.
fn elements(imm: u8) -> u32 {
    if imm & 1 != 0 {
        8
    } else {
        16
    }
}

/// An explicit length (EAX/EDX, or RAX/RDX, as a signed value): its
/// absolute value, saturated to the element count.
pub(crate) fn explicit_len(v: i64, imm: u8) -> u32 {
    let n = elements(imm);
    v.unsigned_abs().min(u64::from(n)) as u32
}

/// The core of the four string compares (SDM Vol. 2, 4.1.3-4.1.7):
/// operand `a` (xmm1, valid length `la`) against `b` (xmm2/m128, valid
/// length `lb`) under control byte `imm`.
pub(crate) fn pcmpstr_core(a: u128, la: u32, b: u128, lb: u32, imm: u8) -> StrCmp {
    let n = elements(imm);
    // BoolRes[j][i] compares b's element j with a's element i, overridden
    // for invalid elements per Table 4-7 by each aggregation below.
    let eq = |j: u32, i: u32| element(b, imm, j) == element(a, imm, i);
    let a_ok = |i: u32| i < la;
    let b_ok = |j: u32| j < lb;
    let mut int_res1 = 0u32;
    match (imm >> 2) & 3 {
        // Equal any: b[j] is one of a's valid elements (invalid: false).
        0 => {
            for j in 0..n {
                if b_ok(j) && (0..la.min(n)).any(|i| eq(j, i)) {
                    int_res1 |= 1 << j;
                }
            }
        }
        // Ranges: b[j] lies in one of the ranges [a[i], a[i+1]], i even,
        // both bounds valid (invalid: false).
        1 => {
            for j in 0..n {
                if !b_ok(j) {
                    continue;
                }
                let x = element(b, imm, j);
                let hit = (0..n).step_by(2).any(|i| {
                    a_ok(i) && a_ok(i + 1) && element(a, imm, i) <= x && x <= element(a, imm, i + 1)
                });
                if hit {
                    int_res1 |= 1 << j;
                }
            }
        }
        // Equal each: b[i] == a[i]; both invalid: true, one: false.
        2 => {
            for i in 0..n {
                let r = match (a_ok(i), b_ok(i)) {
                    (true, true) => eq(i, i),
                    (false, false) => true,
                    _ => false,
                };
                if r {
                    int_res1 |= 1 << i;
                }
            }
        }
        // Equal ordered: a (the needle) occurs in b at element j; an
        // invalid needle element matches anything, a valid one does not
        // match an invalid haystack element.
        _ => {
            for j in 0..n {
                let hit = (0..n - j).all(|i| {
                    let k = j + i;
                    match (a_ok(i), b_ok(k)) {
                        (false, _) => true,
                        (true, false) => false,
                        (true, true) => eq(k, i),
                    }
                });
                if hit {
                    int_res1 |= 1 << j;
                }
            }
        }
    }
    let all = (1u32 << n) - 1;
    let valid_b = (1u32 << lb.min(n)) - 1;
    let res = match (imm >> 4) & 3 {
        1 => !int_res1 & all,
        3 => int_res1 ^ valid_b,
        _ => int_res1,
    };
    let mut flags = 0;
    if res != 0 {
        flags |= CF;
    }
    if lb < n {
        flags |= ZF;
    }
    if la < n {
        flags |= SF;
    }
    if res & 1 != 0 {
        flags |= OF;
    }
    StrCmp { res, flags }
}

/// PCMPxSTRI's index: the least (imm8[6] = 0) or most significant set
/// bit of IntRes2, or the element count if there is none.
pub(crate) fn index_of(res: u32, imm: u8) -> u32 {
    if res == 0 {
        elements(imm)
    } else if imm & 0x40 != 0 {
        31 - res.leading_zeros()
    } else {
        res.trailing_zeros()
    }
}

/// PCMPxSTRM's mask: IntRes2 zero-extended (imm8[6] = 0), or each bit
/// expanded to a byte/word of ones.
pub(crate) fn mask_of(res: u32, imm: u8) -> u128 {
    if imm & 0x40 == 0 {
        return u128::from(res);
    }
    let n = elements(imm);
    let w = 128 / n;
    let ones = (1u128 << w) - 1;
    (0..n)
        .filter(|&i| res >> i & 1 != 0)
        .fold(0u128, |m, i| m | ones << (w * i))
}

/// PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM xmm1, xmm2/m128, imm8
/// (`LEN_BYTES` = 8: the REX.W explicit-length forms, lengths from
/// RAX/RDX). The index goes to ECX (zero-extended into RCX), the mask to
/// XMM0; CF/ZF/SF/OF are set, AF/PF cleared.
fn pcmpstr<const EXPLICIT_LEN: bool, const OUT_INDEX: bool, const LEN_BYTES: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let b = read_xm128(cpu, plat, insn, 1, false)?;
    let a = xmm(cpu, insn.op0_register());
    let imm = insn.immediate8();
    let (la, lb) = if EXPLICIT_LEN {
        let len = |v: u64| {
            let v = if LEN_BYTES == 8 {
                v as i64
            } else {
                i64::from(v as u32 as i32)
            };
            explicit_len(v, imm)
        };
        (len(cpu.state.gpr[0]), len(cpu.state.gpr[2]))
    } else {
        (implicit_len(a, imm), implicit_len(b, imm))
    };
    let r = pcmpstr_core(a, la, b, lb, imm);
    if OUT_INDEX {
        cpu.set_reg::<4>(Register::ECX, u64::from(index_of(r.res, imm)));
    } else {
        cpu.state.xmm[xmm_index(Register::XMM0)] = mask_of(r.res, imm);
    }
    cpu.flags.set_bits(CF | ZF | SF | OF | AF | PF, r.flags);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C check value: "123456789" with initial and final
        // inversion gives 0xE3069283 (RFC 3720, B.4; the catalogue's
        // "CRC-32/ISCSI").
        let mut c = u32::MAX;
        for b in b"123456789" {
            c = crc32c_update(c, u64::from(*b), 1);
        }
        assert_eq!(!c, 0xe306_9283);
        // The same through the wider forms: 8 + 1 bytes and 4 + 4 + 1.
        let s = b"123456789";
        let q = u64::from_le_bytes(s[..8].try_into().unwrap());
        let c8 = crc32c_update(crc32c_update(u32::MAX, q, 8), u64::from(s[8]), 1);
        assert_eq!(!c8, 0xe306_9283);
        let d0 = u64::from(u32::from_le_bytes(s[..4].try_into().unwrap()));
        let d1 = u64::from(u32::from_le_bytes(s[4..8].try_into().unwrap()));
        let c4 = crc32c_update(crc32c_update(u32::MAX, d0, 4), d1, 4);
        assert_eq!(!crc32c_update(c4, u64::from(s[8]), 1), 0xe306_9283);
        // 2-byte steps agree with byte steps.
        let w = u64::from(u16::from_le_bytes([s[0], s[1]]));
        assert_eq!(
            crc32c_update(7, w, 2),
            crc32c_update(crc32c_update(7, u64::from(s[0]), 1), u64::from(s[1]), 1)
        );
    }

    /// A byte string as a vector (zero-padded).
    fn s(bytes: &[u8]) -> u128 {
        let mut b = [0u8; 16];
        b[..bytes.len()].copy_from_slice(bytes);
        u128::from_le_bytes(b)
    }

    #[test]
    fn pcmpistri_equal_any() {
        // Find the first of "aeiou" in "hello world": 'e' at 1.
        let a = s(b"aeiou");
        let b = s(b"hello world");
        let r = pcmpstr_core(a, implicit_len(a, 0), b, implicit_len(b, 0), 0x00);
        assert_eq!(r.res, 0b0000_1001_0010); // e, o, o
        assert_eq!(r.flags, CF | ZF | SF);
        // Negative polarity flips all 16 bits; masked negative only the
        // valid ones (11 of them).
        let r = pcmpstr_core(a, 5, b, 11, 0x10);
        assert_eq!(r.res, !0b0000_1001_0010 & 0xffff);
        let r = pcmpstr_core(a, 5, b, 11, 0x30);
        assert_eq!(r.res, !0b0000_1001_0010 & 0x7ff);
        assert_eq!(r.flags & OF, OF);
    }

    #[test]
    fn pcmpistri_ranges_and_ordered() {
        // Ranges "az": the lowercase letters of "Hi There".
        let a = s(b"az");
        let b = s(b"Hi There");
        let r = pcmpstr_core(a, 2, b, 8, 0x04);
        assert_eq!(r.res, 0b1111_0010); // i, h, e, r, e
                                        // Signed bytes: the range [-128, 0x7f] holds everything.
        let a = s(&[0x80, 0x7f]);
        let r = pcmpstr_core(a, 2, b, 8, 0x06);
        assert_eq!(r.res, 0xff);
        // Unsigned: [0x80, 0x7f] is empty.
        let r = pcmpstr_core(a, 2, b, 8, 0x04);
        assert_eq!(r.res, 0);
        // Equal ordered: "he" in "the cat, the hat" at 1 and 10, and a
        // partial match at the end of the haystack ("h" then invalid).
        let a = s(b"he");
        let b = s(b"the cat, the hat");
        let r = pcmpstr_core(a, 2, b, 16, 0x0c);
        assert_eq!(r.res, (1 << 1) | (1 << 10));
        let b = s(b"xxh");
        let r = pcmpstr_core(a, 2, b, 3, 0x0c);
        assert_eq!(r.res, 0);
        // An empty needle matches everywhere, even past the haystack.
        let r = pcmpstr_core(0, 0, b, 3, 0x0c);
        assert_eq!(r.res, 0xffff);
    }

    #[test]
    fn pcmpstr_equal_each_words_and_lengths() {
        let a = 0x0004_0003_0002_0001u128;
        let b = 0x0005_0003_0002_0001u128;
        // Words, 4 valid each: equal at 0-2; 4-7 both invalid -> true.
        let r = pcmpstr_core(a, 4, b, 4, 0x09);
        assert_eq!(r.res, 0b1111_0111);
        assert_eq!(r.flags, CF | ZF | SF | OF);
        assert_eq!(explicit_len(-3, 0), 3);
        assert_eq!(explicit_len(i64::MIN, 1), 8);
        assert_eq!(explicit_len(17, 0), 16);
        assert_eq!(implicit_len(s(b"ab\0c"), 0), 2);
        assert_eq!(implicit_len(0x0001_0000_0000u128, 1), 0);
    }

    #[test]
    fn index_and_mask_outputs() {
        assert_eq!(index_of(0, 0x00), 16);
        assert_eq!(index_of(0, 0x01), 8);
        assert_eq!(index_of(0b0110, 0x00), 1);
        assert_eq!(index_of(0b0110, 0x40), 2);
        assert_eq!(mask_of(0b101, 0x00), 0b101);
        assert_eq!(mask_of(0b101, 0x40), 0xff_00ff);
        assert_eq!(mask_of(0b10, 0x41), 0xffff_0000);
        assert_eq!(mask_of(0xff, 0x41), u128::MAX);
    }

    #[test]
    fn pcmpgtq_is_signed() {
        // -1 > 0 is false, 1 > 2 is false; 0 > -1 and i64::MAX > MIN true.
        let a = (1u128 << 64) | u128::from(u64::MAX);
        let b = 2u128 << 64;
        assert_eq!(map2(64, a, b, gtq), 0);
        assert_eq!(gtq(0, u64::MAX), u64::MAX);
        assert_eq!(gtq(i64::MAX as u64, i64::MIN as u64), u64::MAX);
        assert_eq!(gtq(5, 5), 0);
    }
}
