//! AES-NI and PCLMULQDQ (legacy encodings): AESENC, AESENCLAST, AESDEC,
//! AESDECLAST, AESIMC, AESKEYGENASSIST, PCLMULQDQ.
//!
//! Written from the SDM's pseudocode (Vol. 2, AESENC... and Intel's AES-NI
//! white paper for the round transformations). The AES state is the
//! 128-bit register taken as 16 bytes in FIPS-197 order: byte `4c + r` is
//! row `r` of column `c`. The S-boxes are computed at compile time from
//! their definition (multiplicative inverse in GF(2^8) followed by the
//! affine map), so no table is copied in. All are exception type 4: the
//! SIMD availability check, and a legacy m128 must be 16-byte aligned.

use super::{binop, check, read_xm128, set_xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction};

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Aesenc_xmm_xmmm128 => aes_round::<AESENC>,
        C::Aesenclast_xmm_xmmm128 => aes_round::<AESENCLAST>,
        C::Aesdec_xmm_xmmm128 => aes_round::<AESDEC>,
        C::Aesdeclast_xmm_xmmm128 => aes_round::<AESDECLAST>,
        C::Aesimc_xmm_xmmm128 => aesimc,
        C::Aeskeygenassist_xmm_xmmm128_imm8 => aeskeygenassist,
        C::Pclmulqdq_xmm_xmmm128_imm8 => pclmulqdq,
        _ => return None,
    })
}

const AESENC: u8 = 0;
const AESENCLAST: u8 = 1;
const AESDEC: u8 = 2;
const AESDECLAST: u8 = 3;

/// Multiplication in GF(2^8) modulo the AES polynomial x^8+x^4+x^3+x+1.
const fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

/// The multiplicative inverse in GF(2^8) (0 maps to 0): a^254.
const fn gf_inv(a: u8) -> u8 {
    let mut r = 1u8;
    let mut k = 0;
    while k < 254 {
        r = gf_mul(r, a);
        k += 1;
    }
    r
}

/// SubBytes' S-box (FIPS-197, 5.1.1): inverse, then the affine map
/// b ^ rotl(b,1) ^ rotl(b,2) ^ rotl(b,3) ^ rotl(b,4) ^ 0x63.
const SBOX: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = gf_inv(i as u8);
        t[i] = b ^ b.rotate_left(1) ^ b.rotate_left(2) ^ b.rotate_left(3) ^ b.rotate_left(4) ^ 0x63;
        i += 1;
    }
    t
};

/// InvSubBytes' S-box: the inverse permutation of [`SBOX`].
const INV_SBOX: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[SBOX[i] as usize] = i as u8;
        i += 1;
    }
    t
};

fn bytes(v: u128) -> [u8; 16] {
    v.to_le_bytes()
}

fn sub_bytes(s: [u8; 16], sbox: &[u8; 256]) -> [u8; 16] {
    s.map(|b| sbox[usize::from(b)])
}

/// ShiftRows (row `r` rotated left by `r` columns) or InvShiftRows.
fn shift_rows(s: [u8; 16], inverse: bool) -> [u8; 16] {
    let mut o = [0u8; 16];
    for c in 0..4 {
        for r in 0..4 {
            let from = if inverse {
                (c + 4 - r) % 4
            } else {
                (c + r) % 4
            };
            o[4 * c + r] = s[4 * from + r];
        }
    }
    o
}

/// MixColumns (coefficients 2 3 1 1) or InvMixColumns (14 11 13 9).
fn mix_columns(s: [u8; 16], inverse: bool) -> [u8; 16] {
    let m: [u8; 4] = if inverse {
        [14, 11, 13, 9]
    } else {
        [2, 3, 1, 1]
    };
    let mut o = [0u8; 16];
    for c in 0..4 {
        for r in 0..4 {
            o[4 * c + r] =
                (0..4).fold(0u8, |acc, k| acc ^ gf_mul(m[(k + 4 - r) % 4], s[4 * c + k]));
        }
    }
    o
}

/// One AES round of kind `OP` on `state` with `key` (the SDM's
/// operations for AESENC/AESENCLAST/AESDEC/AESDECLAST).
fn round(op: u8, state: u128, key: u128) -> u128 {
    let s = bytes(state);
    let s = match op {
        AESENC => mix_columns(sub_bytes(shift_rows(s, false), &SBOX), false),
        AESENCLAST => sub_bytes(shift_rows(s, false), &SBOX),
        AESDEC => mix_columns(sub_bytes(shift_rows(s, true), &INV_SBOX), true),
        _ => sub_bytes(shift_rows(s, true), &INV_SBOX),
    };
    u128::from_le_bytes(s) ^ key
}

/// AESENC/AESENCLAST/AESDEC/AESDECLAST xmm1, xmm2/m128: one round of the
/// state in xmm1 with the round key xmm2/m128.
fn aes_round<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |state, key| round(OP, state, key))
}

/// AESIMC xmm1, xmm2/m128: InvMixColumns of a round key (for the
/// equivalent inverse cipher).
fn aesimc(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let s = read_xm128(cpu, plat, insn, 1, true)?;
    let r = u128::from_le_bytes(mix_columns(bytes(s), true));
    set_xmm(cpu, insn.op0_register(), r);
    Ok(())
}

/// SubWord: the S-box on each byte of a dword.
fn sub_word(x: u32) -> u32 {
    u32::from_le_bytes(x.to_le_bytes().map(|b| SBOX[usize::from(b)]))
}

/// AESKEYGENASSIST's result from its source and RCON (imm8).
fn keygen_assist(s: u128, rcon: u8) -> u128 {
    let x1 = sub_word((s >> 32) as u32);
    let x3 = sub_word((s >> 96) as u32);
    let rc = u32::from(rcon);
    u128::from(x1)
        | u128::from(x1.rotate_right(8) ^ rc) << 32
        | u128::from(x3) << 64
        | u128::from(x3.rotate_right(8) ^ rc) << 96
}

/// AESKEYGENASSIST xmm1, xmm2/m128, imm8: SubWord and RotWord of
/// dwords 1 and 3 of the source, RCON = imm8 XORed into the rotated ones.
fn aeskeygenassist(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let s = read_xm128(cpu, plat, insn, 1, true)?;
    set_xmm(
        cpu,
        insn.op0_register(),
        keygen_assist(s, insn.immediate8()),
    );
    Ok(())
}

/// Carry-less (GF(2)[x]) product of two quadwords.
pub(crate) fn clmul(a: u64, b: u64) -> u128 {
    (0..64)
        .filter(|i| b >> i & 1 != 0)
        .fold(0u128, |r, i| r ^ u128::from(a) << i)
}

/// PCLMULQDQ xmm1, xmm2/m128, imm8: the carry-less product of quadword
/// imm8[0] of xmm1 and quadword imm8[4] of xmm2/m128 (the other imm8
/// bits are ignored).
fn pclmulqdq(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let imm = insn.immediate8();
    binop(cpu, plat, insn, |a, b| {
        let x = (a >> (64 * u32::from(imm & 1))) as u64;
        let y = (b >> (64 * u32::from((imm >> 4) & 1))) as u64;
        clmul(x, y)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector from its bytes written in FIPS-197 order (first byte
    /// lowest).
    fn v(hex: &str) -> u128 {
        let mut b = [0u8; 16];
        for (i, slot) in b.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        u128::from_le_bytes(b)
    }

    #[test]
    fn sbox_known_values() {
        assert_eq!(SBOX[0x00], 0x63);
        assert_eq!(SBOX[0x53], 0xed);
        assert_eq!(SBOX[0xff], 0x16);
        assert_eq!(INV_SBOX[0x63], 0x00);
        assert_eq!(gf_mul(0x57, 0x83), 0xc1); // FIPS-197, 4.2
    }

    /// FIPS-197 Appendix C.1 (AES-128): the round-key schedule through
    /// AESKEYGENASSIST, then encryption through AESENC/AESENCLAST and
    /// decryption through AESIMC/AESDEC/AESDECLAST.
    #[test]
    fn fips197_aes128() {
        let key = v("000102030405060708090a0b0c0d0e0f");
        let pt = v("00112233445566778899aabbccddeeff");
        let ct = v("69c4e0d86a7b0430d8cdb78070b4c55a");
        let rcon = [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];
        let mut ks = vec![key];
        for rc in rcon {
            let prev = *ks.last().unwrap();
            // The white paper's key expansion: broadcast dword 3 of the
            // assist result, fold the previous key.
            let t = (keygen_assist(prev, rc) >> 96) as u32;
            let mut w = [0u32; 4];
            let mut acc = 0u32;
            for (i, slot) in w.iter_mut().enumerate() {
                acc ^= (prev >> (32 * i)) as u32;
                *slot = acc ^ t;
            }
            ks.push(
                u128::from(w[0])
                    | u128::from(w[1]) << 32
                    | u128::from(w[2]) << 64
                    | u128::from(w[3]) << 96,
            );
        }
        assert_eq!(ks[10], v("13111d7fe3944a17f307a78b4d2b30c5"));
        // Round 1's start of round (FIPS-197 C.1): after the first
        // AESENC the state is round[2].start.
        let mut s = pt ^ ks[0];
        assert_eq!(s, v("00102030405060708090a0b0c0d0e0f0"));
        s = round(AESENC, s, ks[1]);
        assert_eq!(s, v("89d810e8855ace682d1843d8cb128fe4"));
        for k in &ks[2..10] {
            s = round(AESENC, s, *k);
        }
        s = round(AESENCLAST, s, ks[10]);
        assert_eq!(s, ct);
        // Decryption with the equivalent inverse cipher.
        let mut d = ct ^ ks[10];
        for k in ks[1..10].iter().rev() {
            let dk = u128::from_le_bytes(mix_columns(bytes(*k), true));
            d = round(AESDEC, d, dk);
        }
        d = round(AESDECLAST, d, ks[0]);
        assert_eq!(d, pt);
    }

    #[test]
    fn pclmul_white_paper() {
        // Intel's PCLMULQDQ white paper (Gueron, Kounavis), the example
        // xmm1 = 0x7b5b54657374566563746f725d53475d,
        // xmm2 = 0x48692853686179295b477565726f6e5d.
        let a: u128 = 0x7b5b_5465_7374_5665_6374_6f72_5d53_475d;
        let b: u128 = 0x4869_2853_6861_7929_5b47_7565_726f_6e5d;
        let lo = |x: u128| x as u64;
        let hi = |x: u128| (x >> 64) as u64;
        // (Checked on a host CPU: imm8 0x00, 0x01, 0x10, 0x11.)
        assert_eq!(clmul(lo(a), lo(b)), 0x1d4d84c85c3440c0_929633d5d36f0451);
        assert_eq!(clmul(hi(a), lo(b)), 0x1a2bf6db3a30862f_babf262df4b7d5c9);
        assert_eq!(clmul(lo(a), hi(b)), 0x1bd17c8d556ab5a1_7fa540ac2a281315);
        assert_eq!(clmul(hi(a), hi(b)), 0x1d1e1f2c592e7c45_d66ee03e410fd4ed);
        assert_eq!(
            clmul(u64::MAX, u64::MAX),
            0x5555_5555_5555_5555_5555_5555_5555_5555
        );
    }
}
