//! Cases for SSE3 (ADDSUBPS/PD, HADDPS/PD, HSUBPS/PD, MOVSLDUP,
//! MOVSHDUP, MOVDDUP, LDDQU) and SSE4.1 (all of it), legacy encodings.
//!
//! A thin layer over [`super::gen_sse::build_case`] (operand placement,
//! memory forms aligned/misaligned/page-crossing/faulting, segment
//! prefixes, LOCK, edge-biased XMM and GPR values, random imm8): once a
//! case is built, this module reworks the values its instruction cares
//! about.
//!
//! * The floating-point forms (SSE3 arithmetic, ROUND*, DPPS/DPPD) get
//!   float edge lanes in every XMM register and in the memory operand,
//!   and an MXCSR with any rounding mode, FZ/DAZ and unmasked exceptions
//!   (#XM), as the SSE/SSE2 arithmetic does.
//! * BLENDVPS/PD and PBLENDVB get a mask in the implicit XMM0 with the
//!   lane sign bits set at random (all, none, alternating, random).
//! * PTEST gets a source that is often disjoint from the destination
//!   (ZF), inside it (CF), or both (zero), so that every flag outcome
//!   comes up.
//! * PHMINPOSUW sometimes gets repeated minima (the first index wins).

use super::gen_sse::{build_case, fp_mxcsr, fp_value, supported};
use super::{put_bytes, value, Form};
use crate::difftest::batch::Alloc;
use crate::difftest::case::Case;
use crate::difftest::guest;
use crate::difftest::rng::Rng;
use iced_x86::{Code, EncodingKind, Mnemonic, OpKind, Register};

/// The SSE3 mnemonics generated here (FISTTP and MONITOR/MWAIT are
/// elsewhere).
const SSE3: &[Mnemonic] = {
    use Mnemonic as M;
    &[
        M::Addsubps,
        M::Addsubpd,
        M::Haddps,
        M::Haddpd,
        M::Hsubps,
        M::Hsubpd,
        M::Movsldup,
        M::Movshdup,
        M::Movddup,
        M::Lddqu,
    ]
};

/// The SSE4.1 mnemonics.
const SSE41: &[Mnemonic] = {
    use Mnemonic as M;
    &[
        M::Pblendvb,
        M::Blendvps,
        M::Blendvpd,
        M::Ptest,
        M::Pmovsxbw,
        M::Pmovsxbd,
        M::Pmovsxbq,
        M::Pmovsxwd,
        M::Pmovsxwq,
        M::Pmovsxdq,
        M::Pmovzxbw,
        M::Pmovzxbd,
        M::Pmovzxbq,
        M::Pmovzxwd,
        M::Pmovzxwq,
        M::Pmovzxdq,
        M::Pmuldq,
        M::Pcmpeqq,
        M::Movntdqa,
        M::Packusdw,
        M::Pminsb,
        M::Pminsd,
        M::Pminuw,
        M::Pminud,
        M::Pmaxsb,
        M::Pmaxsd,
        M::Pmaxuw,
        M::Pmaxud,
        M::Pmulld,
        M::Phminposuw,
        M::Roundps,
        M::Roundpd,
        M::Roundss,
        M::Roundsd,
        M::Blendps,
        M::Blendpd,
        M::Pblendw,
        M::Pextrb,
        M::Pextrw,
        M::Pextrd,
        M::Pextrq,
        M::Extractps,
        M::Pinsrb,
        M::Pinsrd,
        M::Pinsrq,
        M::Insertps,
        M::Dpps,
        M::Dppd,
        M::Mpsadbw,
    ]
};

/// The lane width of a floating-point form, `None` for the others.
fn fp_width(m: Mnemonic) -> Option<u32> {
    use Mnemonic as M;
    match m {
        M::Addsubps | M::Haddps | M::Hsubps | M::Roundps | M::Roundss | M::Dpps => Some(32),
        M::Addsubpd | M::Haddpd | M::Hsubpd | M::Roundpd | M::Roundsd | M::Dppd => Some(64),
        _ => None,
    }
}

/// Is `code` one of this generator's forms?
fn covers(code: Code) -> bool {
    let op = code.op_code();
    let m = code.mnemonic();
    (SSE3.contains(&m) || SSE41.contains(&m))
        && op.is_instruction()
        && op.mode64()
        && op.encoding() == EncodingKind::Legacy
        // PEXTRW's SSE2 register form (66 0F C5) is gen_sse's.
        && !matches!(code, Code::Pextrw_r32_xmm_imm8 | Code::Pextrw_r64_xmm_imm8)
        && op.op_kinds().iter().all(|k| supported(*k))
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
    if !covers(form.code) {
        return None;
    }
    Some(build_case(gen, rng, form, index, alloc).map(|mut case| {
        rework(rng, form.code.mnemonic(), &mut case);
        case
    }))
}

/// The XMM register number of operand `n` of the case's instruction, if
/// it is an XMM register.
fn xmm_op(case: &Case, n: u32) -> Option<usize> {
    let insn = case.insns.first()?;
    if n >= insn.op_count() || insn.op_kind(n) != OpKind::Register {
        return None;
    }
    let r = insn.op_register(n);
    r.is_xmm()
        .then(|| (r as usize).wrapping_sub(Register::XMM0 as usize) & 15)
}

/// Replace the initial bytes of the case's memory operand (when it is in
/// ordinary, generator-filled memory) with `bytes`.
fn set_mem(case: &mut Case, bytes: &[u8]) {
    let Some(t) = case.mem else { return };
    if (guest::SPECIAL_BASE..guest::SPECIAL_END).contains(&t.addr) {
        return;
    }
    let n = (t.size as usize).min(bytes.len());
    for w in case.windows.iter_mut() {
        put_bytes(w, t.addr, &bytes[..n]);
    }
}

/// Set the source operand (operand 1: an XMM register or the memory
/// operand) to `v`.
fn set_src(case: &mut Case, v: u128) {
    match xmm_op(case, 1) {
        Some(i) => {
            if let Some(x) = case.simd.xmm.get_mut(i) {
                *x = v;
            }
        }
        None => set_mem(case, &v.to_le_bytes()),
    }
}

/// A vector of `w`-bit float edge lanes; one time in four, lanes that
/// make tiny results likely instead (see [`tiny_value`]).
fn fp_vector(rng: &mut Rng, w: u32) -> u128 {
    let tiny = rng.chance(1, 4);
    (0..128 / w).fold(0u128, |v, i| {
        let x = if tiny {
            tiny_value(rng, w)
        } else {
            fp_value(rng, w)
        };
        v | (u128::from(x) << (w * i))
    })
}

/// A normal float of `w` bits whose sums and differences with others
/// like it are often tiny (an exponent just above the denormal range),
/// or whose products are (an exponent near half of the minimum, down
/// to products below the smallest denormal), with
/// a random fraction and sign: underflow with and without inexactness,
/// FZ and unmasked UE get exercised.
fn tiny_value(rng: &mut Rng, w: u32) -> u64 {
    let (m, e) = if w == 32 { (23u32, 8u32) } else { (52, 11) };
    let bias = (1u64 << (e - 1)) - 1;
    let ex = if rng.chance(1, 2) {
        1 + rng.below(3)
    } else {
        bias / 2 - 14 + rng.below(20)
    };
    let frac = rng.next_u64() & ((1u64 << m) - 1);
    // Few significant bits sometimes (exact sums that are still tiny).
    let frac = if rng.chance(1, 2) {
        frac & !((1u64 << (m - 4)) - 1)
    } else {
        frac
    };
    let sign = if rng.chance(1, 2) { 1u64 << (w - 1) } else { 0 };
    sign | (ex << m) | frac
}

/// A BLENDV mask: lane sign bits (lanes of 8, 32 or 64 bits) all set,
/// none, alternating or random, over random low bits.
fn blend_mask(rng: &mut Rng) -> u128 {
    let w = [8u32, 32, 64][rng.below(3) as usize];
    let low = u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64);
    let pattern = rng.next_u64() as u128 | ((rng.next_u64() as u128) << 64);
    let pick = rng.below(4);
    (0..128 / w).fold(0u128, |m, i| {
        let sign = match pick {
            0 => true,
            1 => false,
            2 => i & 1 == 0,
            _ => pattern >> i & 1 != 0,
        };
        let top = 1u128 << (w * i + w - 1);
        let lane_low = low & (((1u128 << (w - 1)) - 1) << (w * i));
        m | lane_low | if sign { top } else { 0 }
    })
}

/// Rework the values `m` cares about (see the module doc).
fn rework(rng: &mut Rng, m: Mnemonic, case: &mut Case) {
    use Mnemonic as M;
    if let Some(w) = fp_width(m) {
        for x in case.simd.xmm.iter_mut() {
            *x = fp_vector(rng, w);
        }
        case.simd.mxcsr = fp_mxcsr(rng);
        // Sometimes the same value in both operands (x - x).
        if let (Some(d), Some(s)) = (xmm_op(case, 0), xmm_op(case, 1)) {
            if rng.chance(1, 8) {
                case.simd.xmm[s] = case.simd.xmm[d];
            }
        }
        let v = fp_vector(rng, w);
        set_mem(case, &v.to_le_bytes());
        return;
    }
    match m {
        M::Pblendvb | M::Blendvps | M::Blendvpd => case.simd.xmm[0] = blend_mask(rng),
        M::Ptest => {
            let Some(d) = xmm_op(case, 0) else { return };
            let dst = case.simd.xmm[d];
            let r = u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64);
            let src = match rng.below(5) {
                0 => !dst & r,
                1 => dst & r,
                2 => 0,
                3 => dst,
                _ => return,
            };
            set_src(case, src);
        }
        M::Phminposuw if rng.chance(1, 2) => {
            let min = value(rng, 16);
            let v = (0..8).fold(0u128, |v, i| {
                let x = if rng.chance(1, 3) {
                    min
                } else {
                    min.saturating_add(rng.below(0x1_0000))
                } & 0xffff;
                v | (u128::from(x) << (16 * i))
            });
            set_src(case, v);
        }
        _ => {}
    }
}
