//! The SHA extensions (legacy encodings): SHA1RNDS4, SHA1NEXTE,
//! SHA1MSG1, SHA1MSG2, SHA256RNDS2 (implicit XMM0), SHA256MSG1,
//! SHA256MSG2.
//!
//! Written from the SDM's pseudocode (Vol. 2, SHA1RNDS4...). Dwords are
//! numbered as the SDM does: `d(v, 3)` is bits 127:96. All are
//! exception type 4: the SIMD availability check, and a legacy m128 must
//! be 16-byte aligned.

use super::{binop, check, read_xm128, set_xmm, xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction, Register};

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Sha1rnds4_xmm_xmmm128_imm8 => sha1rnds4,
        C::Sha1nexte_xmm_xmmm128 => sha_op::<SHA1NEXTE>,
        C::Sha1msg1_xmm_xmmm128 => sha_op::<SHA1MSG1>,
        C::Sha1msg2_xmm_xmmm128 => sha_op::<SHA1MSG2>,
        C::Sha256rnds2_xmm_xmmm128 => sha256rnds2,
        C::Sha256msg1_xmm_xmmm128 => sha_op::<SHA256MSG1>,
        C::Sha256msg2_xmm_xmmm128 => sha_op::<SHA256MSG2>,
        _ => return None,
    })
}

const SHA1NEXTE: u8 = 0;
const SHA1MSG1: u8 = 1;
const SHA1MSG2: u8 = 2;
const SHA256MSG1: u8 = 3;
const SHA256MSG2: u8 = 4;

/// Dword `i` (0 = bits 31:0) of `v`.
fn d(v: u128, i: u32) -> u32 {
    (v >> (32 * (i & 3))) as u32
}

/// A vector from its dwords, most significant (bits 127:96) first, the
/// SDM's DEST[127:96], DEST[95:64], DEST[63:32], DEST[31:0] order.
fn from_dwords(d3: u32, d2: u32, d1: u32, d0: u32) -> u128 {
    u128::from(d0) | u128::from(d1) << 32 | u128::from(d2) << 64 | u128::from(d3) << 96
}

/// SHA-1's round function and constant for rounds group `g` (imm8[1:0]).
fn sha1_f(g: u8, b: u32, c: u32, dd: u32) -> u32 {
    match g & 3 {
        0 => (b & c) ^ (!b & dd),
        2 => (b & c) ^ (b & dd) ^ (c & dd),
        _ => b ^ c ^ dd,
    }
}

const SHA1_K: [u32; 4] = [0x5a82_7999, 0x6ed9_eba1, 0x8f1b_bcdc, 0xca62_c1d6];

/// Four SHA-1 rounds: state A, B, C, D in `s` (A in bits 127:96), and
/// W0 + E, W1, W2, W3 in `w` (W0 + E in bits 127:96).
fn sha1_rounds4(s: u128, w: u128, g: u8) -> u128 {
    let k = SHA1_K[usize::from(g & 3)];
    let (mut a, mut b, mut c, mut dd, mut e) = (d(s, 3), d(s, 2), d(s, 1), d(s, 0), 0u32);
    for i in 0..4 {
        let t = sha1_f(g, b, c, dd)
            .wrapping_add(a.rotate_left(5))
            .wrapping_add(d(w, 3 - i))
            .wrapping_add(e)
            .wrapping_add(k);
        e = dd;
        dd = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    from_dwords(a, b, c, dd)
}

fn sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

fn sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

fn big_sigma0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}

fn big_sigma1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

/// The two-operand SHA message and state helpers.
fn compute(op: u8, s1: u128, s2: u128) -> u128 {
    match op {
        SHA1NEXTE => {
            let e = d(s1, 3).rotate_left(30);
            (s2 & !(u128::from(u32::MAX) << 96)) | u128::from(d(s2, 3).wrapping_add(e)) << 96
        }
        SHA1MSG1 => from_dwords(
            d(s1, 1) ^ d(s1, 3),
            d(s1, 0) ^ d(s1, 2),
            d(s2, 3) ^ d(s1, 1),
            d(s2, 2) ^ d(s1, 0),
        ),
        SHA1MSG2 => {
            let w16 = (d(s1, 3) ^ d(s2, 2)).rotate_left(1);
            let w17 = (d(s1, 2) ^ d(s2, 1)).rotate_left(1);
            let w18 = (d(s1, 1) ^ d(s2, 0)).rotate_left(1);
            let w19 = (d(s1, 0) ^ w16).rotate_left(1);
            from_dwords(w16, w17, w18, w19)
        }
        SHA256MSG1 => from_dwords(
            d(s1, 3).wrapping_add(sigma0(d(s2, 0))),
            d(s1, 2).wrapping_add(sigma0(d(s1, 3))),
            d(s1, 1).wrapping_add(sigma0(d(s1, 2))),
            d(s1, 0).wrapping_add(sigma0(d(s1, 1))),
        ),
        _ => {
            let w16 = d(s1, 0).wrapping_add(sigma1(d(s2, 2)));
            let w17 = d(s1, 1).wrapping_add(sigma1(d(s2, 3)));
            let w18 = d(s1, 2).wrapping_add(sigma1(w16));
            let w19 = d(s1, 3).wrapping_add(sigma1(w17));
            from_dwords(w19, w18, w17, w16)
        }
    }
}

/// SHA1NEXTE, SHA1MSG1, SHA1MSG2, SHA256MSG1, SHA256MSG2 xmm1,
/// xmm2/m128.
fn sha_op<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| compute(OP, a, b))
}

/// SHA1RNDS4 xmm1, xmm2/m128, imm8: four rounds, function and constant
/// chosen by imm8[1:0].
fn sha1rnds4(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let g = insn.immediate8();
    binop(cpu, plat, insn, |s, w| sha1_rounds4(s, w, g))
}

/// Two SHA-256 rounds: C, D, G, H in `s1` (C in bits 127:96, D, G, H
/// below), A, B, E, F in `s2`, WK0 and WK1 in the low dwords of `wk`.
/// The result is A, B, E, F after the two rounds.
fn sha256_rounds2(s1: u128, s2: u128, wk: u128) -> u128 {
    let (mut a, mut b, mut c, mut dd) = (d(s2, 3), d(s2, 2), d(s1, 3), d(s1, 2));
    let (mut e, mut f, mut g, mut h) = (d(s2, 1), d(s2, 0), d(s1, 1), d(s1, 0));
    for i in 0..2 {
        let ch = (e & f) ^ (!e & g);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t1 = ch
            .wrapping_add(big_sigma1(e))
            .wrapping_add(d(wk, i))
            .wrapping_add(h);
        let na = t1.wrapping_add(maj).wrapping_add(big_sigma0(a));
        let ne = t1.wrapping_add(dd);
        h = g;
        g = f;
        f = e;
        e = ne;
        dd = c;
        c = b;
        b = a;
        a = na;
    }
    from_dwords(a, b, e, f)
}

/// SHA256RNDS2 xmm1, xmm2/m128, <XMM0>.
fn sha256rnds2(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let s2 = read_xm128(cpu, plat, insn, 1, true)?;
    let dst = insn.op0_register();
    let r = sha256_rounds2(xmm(cpu, dst), s2, xmm(cpu, Register::XMM0));
    set_xmm(cpu, dst, r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one padded block of the message "abc" as big-endian dwords.
    fn abc_block() -> [u32; 16] {
        let mut w = [0u32; 16];
        w[0] = 0x6162_6380;
        w[15] = 24;
        w
    }

    /// Four message dwords as the instructions hold them: W[i] in bits
    /// 127:96, W[i+3] in bits 31:0.
    fn msg(w: &[u32]) -> u128 {
        from_dwords(w[0], w[1], w[2], w[3])
    }

    /// SHA-1("abc") through SHA1RNDS4/SHA1NEXTE/SHA1MSG1/SHA1MSG2, the
    /// way Intel's SHA extensions paper schedules them.
    #[test]
    fn sha1_abc() {
        let h = [
            0x6745_2301u32,
            0xefcd_ab89,
            0x98ba_dcfe,
            0x1032_5476,
            0xc3d2_e1f0,
        ];
        let w = abc_block();
        let mut m: Vec<u128> = (0..4).map(|i| msg(&w[4 * i..4 * i + 4])).collect();
        // The message schedule for all 80 rounds, four dwords at a time.
        for i in 4..20 {
            let t = compute(SHA1MSG1, m[i - 4], m[i - 3]) ^ m[i - 2];
            m.push(compute(SHA1MSG2, t, m[i - 1]));
        }
        let mut abcd = from_dwords(h[0], h[1], h[2], h[3]);
        let mut e = u128::from(h[4]) << 96;
        for (i, mi) in m.iter().enumerate() {
            // Group 0 adds E to W0 (PADDD in real code); the others get
            // it from SHA1NEXTE on the state saved before the last group.
            let we = if i == 0 {
                mi.wrapping_add(e)
            } else {
                compute(SHA1NEXTE, e, *mi)
            };
            let next = sha1_rounds4(abcd, we, (i / 5) as u8);
            // E for the next group is A of the state before these rounds
            // (SHA1NEXTE rotates it by 30).
            e = abcd;
            abcd = next;
        }
        let e_final = d(e, 3).rotate_left(30).wrapping_add(h[4]);
        let out = [
            d(abcd, 3).wrapping_add(h[0]),
            d(abcd, 2).wrapping_add(h[1]),
            d(abcd, 1).wrapping_add(h[2]),
            d(abcd, 0).wrapping_add(h[3]),
            e_final,
        ];
        assert_eq!(
            out,
            [
                0xa999_3e36,
                0x4706_816a,
                0xba3e_2571,
                0x7850_c26c,
                0x9cd0_d89d
            ]
        );
    }

    /// SHA-256("abc") through SHA256RNDS2/SHA256MSG1/SHA256MSG2.
    #[test]
    fn sha256_abc() {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
            0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
            0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
            0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
            0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
            0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
            0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let h = [
            0x6a09e667u32,
            0xbb67ae85,
            0x3c6ef372,
            0xa54ff53a,
            0x510e527f,
            0x9b05688c,
            0x1f83d9ab,
            0x5be0cd19,
        ];
        let w = abc_block();
        // The SHA256 instructions hold W[i] in the low dword.
        let lo = |w: &[u32]| from_dwords(w[3], w[2], w[1], w[0]);
        let mut m: Vec<u128> = (0..4).map(|i| lo(&w[4 * i..4 * i + 4])).collect();
        for i in 4..16 {
            // W[i..i+4] = MSG2(MSG1(m[i-4], m[i-3]) + W[i-3..i+1], m[i-1]),
            // where W[i-3..i+1] is dwords 1-3 of m[i-2] and dword 0 of
            // m[i-1] (PALIGNR by 4).
            let t = compute(SHA256MSG1, m[i - 4], m[i - 3]);
            let w7 = (m[i - 2] >> 32) | (m[i - 1] << 96);
            let sum = from_dwords(
                d(t, 3).wrapping_add(d(w7, 3)),
                d(t, 2).wrapping_add(d(w7, 2)),
                d(t, 1).wrapping_add(d(w7, 1)),
                d(t, 0).wrapping_add(d(w7, 0)),
            );
            m.push(compute(SHA256MSG2, sum, m[i - 1]));
        }
        // State: ABEF and CDGH.
        let mut abef = from_dwords(h[0], h[1], h[4], h[5]);
        let mut cdgh = from_dwords(h[2], h[3], h[6], h[7]);
        for (i, mi) in m.iter().enumerate() {
            let wk = from_dwords(
                d(*mi, 3).wrapping_add(K[4 * i + 3]),
                d(*mi, 2).wrapping_add(K[4 * i + 2]),
                d(*mi, 1).wrapping_add(K[4 * i + 1]),
                d(*mi, 0).wrapping_add(K[4 * i]),
            );
            let n1 = sha256_rounds2(cdgh, abef, wk);
            cdgh = abef;
            abef = n1;
            let n2 = sha256_rounds2(cdgh, abef, wk >> 64);
            cdgh = abef;
            abef = n2;
        }
        let out = [
            d(abef, 3).wrapping_add(h[0]),
            d(abef, 2).wrapping_add(h[1]),
            d(cdgh, 3).wrapping_add(h[2]),
            d(cdgh, 2).wrapping_add(h[3]),
            d(abef, 1).wrapping_add(h[4]),
            d(abef, 0).wrapping_add(h[5]),
            d(cdgh, 1).wrapping_add(h[6]),
            d(cdgh, 0).wrapping_add(h[7]),
        ];
        assert_eq!(
            out,
            [
                0xba7816bf, 0x8f01cfea, 0x414140de, 0x5dae2223, 0xb00361a3, 0x96177a9c, 0xb410ff61,
                0xf20015ad
            ]
        );
    }
}
