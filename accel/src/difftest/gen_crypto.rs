//! Cases for SSE4.2 (string compares, PCMPGTQ, CRC32), AES-NI, PCLMULQDQ
//! and SHA, legacy encodings.
//!
//! The XMM forms are built by the SSE generator
//! ([`super::gen_sse::build_case`]: edge-biased XMM values, register or
//! memory operand placed aligned, misaligned, page-crossing or faulting,
//! segment prefixes, LOCK now and then); this module then reshapes the
//! inputs of the packed string compares, whose interesting cases random
//! vectors almost never reach:
//!
//! * imm8 uniform over all 256 values (bit 7 is reserved: included, to
//!   show it is ignored);
//! * both operands as "strings" of the element width imm8[0] selects:
//!   elements from a small alphabet (so that they match each other) with
//!   signed/unsigned edges, nulls at chosen positions or none, the needle
//!   (xmm1) often a piece of the haystack (xmm2/m128), range bounds in
//!   order or reversed;
//! * explicit lengths in EAX/EDX from -20..20, the element counts and
//!   their neighbours, the 32-bit extremes, with garbage in the upper
//!   halves; for the REX.W forms full 64-bit lengths (2^32 + small,
//!   i64::MIN...), where the upper half matters.
//!
//! CRC32 has only general-purpose operands: its forms are left to the
//! base integer generator (this module answers "not mine" for them), which
//! fills r8/r16/r32/r64 and memory operands of every size.

use super::{gen_sse, put_bytes, value, Form};
use crate::difftest::batch::Alloc;
use crate::difftest::case::{decode_all, Case};
use crate::difftest::guest;
use crate::difftest::rng::Rng;
use iced_x86::{Code, EncodingKind, Mnemonic, OpKind, Register};

/// The mnemonics of this generator.
const MNEMONICS: &[Mnemonic] = {
    use Mnemonic as M;
    &[
        M::Pcmpestri,
        M::Pcmpestri64,
        M::Pcmpestrm,
        M::Pcmpestrm64,
        M::Pcmpistri,
        M::Pcmpistrm,
        M::Pcmpgtq,
        M::Crc32,
        M::Aesenc,
        M::Aesenclast,
        M::Aesdec,
        M::Aesdeclast,
        M::Aesimc,
        M::Aeskeygenassist,
        M::Pclmulqdq,
        M::Sha1rnds4,
        M::Sha1nexte,
        M::Sha1msg1,
        M::Sha1msg2,
        M::Sha256rnds2,
        M::Sha256msg1,
        M::Sha256msg2,
    ]
};

/// Is `code` one of this generator's forms?
fn covers(code: Code) -> bool {
    let op = code.op_code();
    MNEMONICS.contains(&code.mnemonic())
        && op.is_instruction()
        && op.mode64()
        && op.encoding() == EncodingKind::Legacy
}

/// This generator's forms.
pub(super) fn forms() -> Vec<Form> {
    Code::values()
        .filter(|c| covers(*c))
        .map(Form::of)
        .collect()
}

/// A case for `form` if it is one of this generator's: `Some(None)` when
/// this try's random choices cannot be encoded (the caller tries again).
pub(super) fn try_case(
    gen: &mut super::Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Option<Case>> {
    if !covers(form.code) || form.code.mnemonic() == Mnemonic::Crc32 {
        return None;
    }
    let case = gen_sse::build_case(gen, rng, form, index, alloc);
    Some(match (case, string_compare(form.code)) {
        (Some(c), Some(explicit)) => strings(rng, c, explicit),
        (c, _) => c,
    })
}

/// How a packed string compare takes its lengths: `Some(None)` implicit
/// (PCMPISTRx), `Some(Some(wide))` explicit in EAX/EDX or, `wide`,
/// RAX/RDX.
fn string_compare(code: Code) -> Option<Option<bool>> {
    use Mnemonic as M;
    match code.mnemonic() {
        M::Pcmpistri | M::Pcmpistrm => Some(None),
        M::Pcmpestri | M::Pcmpestrm => Some(Some(false)),
        M::Pcmpestri64 | M::Pcmpestrm64 => Some(Some(true)),
        _ => None,
    }
}

/// Reshape a string-compare case built by the SSE generator: a uniform
/// imm8, string operands and lengths (see the module documentation).
fn strings(rng: &mut Rng, mut case: Case, explicit: Option<bool>) -> Option<Case> {
    // imm8 is the last byte of the encoding.
    let imm = rng.below(256) as u8;
    *case.code.last_mut()? = imm;
    case.insns = decode_all(&case.code, case.code_addr);
    let insn = *case.insns.first()?;
    if case.insns.len() != 1 || (!insn.is_invalid() && insn.immediate8() != imm) {
        return None;
    }
    let words = imm & 1 != 0;
    let haystack = string(rng, words);
    let needle = if rng.chance(1, 3) {
        piece_of(rng, haystack, words)
    } else if (imm >> 2) & 3 == 1 && rng.chance(1, 2) {
        ranges(rng, words)
    } else {
        string(rng, words)
    };
    // xmm1 (the needle, or the character set / ranges) and xmm2/m128.
    let a = xmm_slot(insn.op0_register());
    if let Some(a) = a {
        case.simd.xmm[a] = needle;
    }
    match insn.op1_kind() {
        OpKind::Register => {
            if let Some(b) = xmm_slot(insn.op1_register()) {
                // The same register twice compares a string with itself.
                if Some(b) != a {
                    case.simd.xmm[b] = haystack;
                }
            }
        }
        _ => {
            if let (Some(t), Some(w)) = (case.mem, case.windows.first_mut()) {
                if !(guest::SPECIAL_BASE..guest::SPECIAL_END).contains(&t.addr) {
                    put_bytes(w, t.addr, &haystack.to_le_bytes());
                }
            }
        }
    }
    if let Some(wide) = explicit {
        // The lengths must not be address registers (iced lists them as
        // used, so the SSE generator keeps them out; make sure).
        let uses = |r: Register| {
            [insn.memory_base(), insn.memory_index()]
                .iter()
                .any(|m| m.full_register() == r)
        };
        if uses(Register::RAX) || uses(Register::RDX) {
            return None;
        }
        case.gpr[0] = length(rng, wide, words);
        case.gpr[2] = length(rng, wide, words);
        // Sometimes the two lengths equal (equal each, masked polarity).
        if rng.chance(1, 8) {
            case.gpr[2] = case.gpr[0];
        }
    }
    case.note.push_str(&format!(" imm8={imm:#04x}"));
    Some(case)
}

/// XMM register number of `r`, if it is one.
fn xmm_slot(r: Register) -> Option<usize> {
    r.is_xmm()
        .then(|| (r as usize).wrapping_sub(Register::XMM0 as usize) & 15)
}

/// A string of bytes or words: elements mostly from a small alphabet
/// (matches are likely) holding the signed/unsigned edges, sometimes
/// random; a null at a chosen position, or none.
fn string(rng: &mut Rng, words: bool) -> u128 {
    let (n, w) = if words { (8u32, 16u32) } else { (16, 8) };
    let alphabet: [u64; 6] = if words {
        [0x0061, 0x0062, 0x7fff, 0x8000, 0xffff, 0x0100]
    } else {
        [0x61, 0x62, 0x63, 0x7f, 0x80, 0xff]
    };
    let random = rng.chance(1, 4);
    let mut v = 0u128;
    for i in 0..n {
        let e = if random {
            value(rng, w)
        } else {
            match rng.below(8) {
                0 => value(rng, w),
                _ => rng.pick(&alphabet).unwrap_or(1),
            }
        };
        // Nulls come from the placement below; a random zero element is
        // fine too (more nulls).
        v |= u128::from(e) << (w * i);
    }
    let null_at = match rng.below(6) {
        0 => None,
        1 => Some(0),
        2 => Some(n - 1),
        _ => Some(rng.below(u64::from(n)) as u32),
    };
    if let Some(k) = null_at {
        v &= !(((1u128 << w) - 1) << (w * k));
        // Half the time nulls after it too, else garbage (which
        // PCMPISTRx must ignore).
        if rng.chance(1, 2) {
            for i in k + 1..n {
                v &= !(((1u128 << w) - 1) << (w * i));
            }
        }
    }
    v
}

/// A needle cut from `haystack`: elements from some offset, then a null
/// or the rest of the string.
fn piece_of(rng: &mut Rng, haystack: u128, words: bool) -> u128 {
    let (n, w) = if words { (8u32, 16u32) } else { (16, 8) };
    let off = rng.below(u64::from(n)) as u32;
    let len = 1 + rng.below(u64::from(n)) as u32;
    let mut v = 0u128;
    for i in 0..len.min(n) {
        let k = off + i;
        let e = if k < n {
            (haystack >> (w * k)) & ((1u128 << w) - 1)
        } else {
            u128::from(value(rng, w))
        };
        v |= e << (w * i);
    }
    if rng.chance(1, 4) && len < n {
        // Fill after the piece with other characters, no null.
        for i in len..n {
            v |= u128::from(value(rng, w) | 1) << (w * i);
        }
    }
    v
}

/// Range bounds for the ranges aggregation: pairs, mostly ordered.
fn ranges(rng: &mut Rng, words: bool) -> u128 {
    let (n, w) = if words { (8u32, 16u32) } else { (16, 8) };
    let mut v = 0u128;
    for p in 0..n / 2 {
        let mut lo = value(rng, w);
        let mut hi = value(rng, w);
        if lo > hi && rng.chance(3, 4) {
            std::mem::swap(&mut lo, &mut hi);
        }
        v |= u128::from(lo) << (w * 2 * p) | u128::from(hi) << (w * (2 * p + 1));
    }
    if rng.chance(1, 3) {
        // A null ends the ranges early (PCMPISTRx).
        let k = rng.below(u64::from(n)) as u32;
        v &= !(((1u128 << w) - 1) << (w * k));
    }
    v
}

/// An explicit length for EAX/EDX (`wide`: RAX/RDX): small signed values,
/// the element count's neighbours, the extremes; the upper half of a
/// 32-bit length is garbage, a 64-bit one's matters.
fn length(rng: &mut Rng, wide: bool, words: bool) -> u64 {
    let n: i64 = if words { 8 } else { 16 };
    let small = rng.below(41) as i64 - 20;
    let v: i64 = match rng.below(12) {
        0..=4 => small,
        5 => [0, 1, n - 1, n, n + 1, -n, -n - 1, -n + 1][rng.below(8) as usize],
        6 => [
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            i64::from(-i32::MAX),
            i64::from(i32::MIN) + n,
        ][rng.below(4) as usize],
        7 => value(rng, 64) as i64,
        8 | 9 if wide => {
            ((rng.below(3) as i64 + 1) << 32).wrapping_add(small) * [1, -1][rng.below(2) as usize]
        }
        _ => [i64::MIN, i64::MAX, -i64::MAX, i64::MIN + n][rng.below(4) as usize],
    };
    if wide {
        v as u64
    } else {
        u64::from(v as u32) | (rng.next_u64() << 32)
    }
}
