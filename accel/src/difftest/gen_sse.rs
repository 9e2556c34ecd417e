//! Cases for the SSE/SSE2 instructions (legacy encodings, XMM forms): a
//! child module of [`super`] (the case generator), reusing its operand
//! placement and addressing.
//!
//! Each case starts from sixteen XMM registers filled with edge-biased
//! lanes (0, all ones, sign bits, the 0x7f/0x80 saturation boundaries,
//! single bits, random) of a random lane width, and MXCSR at its reset
//! value or another valid one. Shift counts (imm8, or the low quadword of
//! the count register/m128) come from 0, width-1, width, width+1, huge
//! values. Memory operands are aligned, misaligned (#GP for the aligned
//! forms), page-crossing, or faulting (#PF, non-canonical), with segment
//! prefixes and LOCK (#UD) now and then. LDMXCSR loads valid values and,
//! sometimes, a reserved bit (#GP) — never bit 17, which AMD parts
//! implement (MXCSR_MASK 0x2FFFF) and ringside does not.
//!
//! Not generated yet: FXSAVE/FXRSTOR (the x87 part of the image and
//! MXCSR_MASK differ between ringside's model and the host by design;
//! they need their own comparison rule).

use super::{place_operand, put_bytes, solve_address, value, Form, Generator, Op, R32, R64};
use crate::difftest::batch::Alloc;
use crate::difftest::case::{decode_all, Case, MemTarget, Simd};
use crate::difftest::guest;
use crate::difftest::rng::Rng;
use iced_x86::{
    Code, Encoder, EncodingKind, MemoryOperand, Mnemonic, OpCodeOperandKind as K, Register,
};

/// The mnemonics of this generator (integer SSE/SSE2 and the moves).
const MNEMONICS: &[Mnemonic] = {
    use Mnemonic as M;
    &[
        M::Movaps,
        M::Movapd,
        M::Movdqa,
        M::Movups,
        M::Movupd,
        M::Movdqu,
        M::Movntps,
        M::Movntpd,
        M::Movntdq,
        M::Movnti,
        M::Movd,
        M::Movq,
        M::Movss,
        M::Movsd,
        M::Movlps,
        M::Movhps,
        M::Movlpd,
        M::Movhpd,
        M::Movhlps,
        M::Movlhps,
        M::Movmskps,
        M::Movmskpd,
        M::Pmovmskb,
        M::Pand,
        M::Pandn,
        M::Por,
        M::Pxor,
        M::Andps,
        M::Andnps,
        M::Orps,
        M::Xorps,
        M::Andpd,
        M::Andnpd,
        M::Orpd,
        M::Xorpd,
        M::Paddb,
        M::Paddw,
        M::Paddd,
        M::Paddq,
        M::Psubb,
        M::Psubw,
        M::Psubd,
        M::Psubq,
        M::Paddsb,
        M::Paddsw,
        M::Paddusb,
        M::Paddusw,
        M::Psubsb,
        M::Psubsw,
        M::Psubusb,
        M::Psubusw,
        M::Pmullw,
        M::Pmulhw,
        M::Pmulhuw,
        M::Pmuludq,
        M::Pmaddwd,
        M::Psadbw,
        M::Pavgb,
        M::Pavgw,
        M::Pminub,
        M::Pmaxub,
        M::Pminsw,
        M::Pmaxsw,
        M::Pcmpeqb,
        M::Pcmpeqw,
        M::Pcmpeqd,
        M::Pcmpgtb,
        M::Pcmpgtw,
        M::Pcmpgtd,
        M::Psllw,
        M::Pslld,
        M::Psllq,
        M::Psrlw,
        M::Psrld,
        M::Psrlq,
        M::Psraw,
        M::Psrad,
        M::Pslldq,
        M::Psrldq,
        M::Pshufd,
        M::Pshuflw,
        M::Pshufhw,
        M::Shufps,
        M::Shufpd,
        M::Punpcklbw,
        M::Punpcklwd,
        M::Punpckldq,
        M::Punpcklqdq,
        M::Punpckhbw,
        M::Punpckhwd,
        M::Punpckhdq,
        M::Punpckhqdq,
        M::Unpcklps,
        M::Unpckhps,
        M::Unpcklpd,
        M::Unpckhpd,
        M::Packsswb,
        M::Packssdw,
        M::Packuswb,
        M::Pextrw,
        M::Pinsrw,
        M::Ldmxcsr,
        M::Stmxcsr,
    ]
};

/// The floating-point mnemonics (arithmetic, compares, conversions):
/// their XMM lanes and memory operands get float edge values and MXCSR a
/// random rounding mode, FZ/DAZ and exception masks (unmasked ones raise
/// #XM: the guest runs with CR4.OSXMMEXCPT set).
const FP_MNEMONICS: &[Mnemonic] = {
    use Mnemonic as M;
    &[
        M::Addps,
        M::Addpd,
        M::Addss,
        M::Addsd,
        M::Subps,
        M::Subpd,
        M::Subss,
        M::Subsd,
        M::Mulps,
        M::Mulpd,
        M::Mulss,
        M::Mulsd,
        M::Divps,
        M::Divpd,
        M::Divss,
        M::Divsd,
        M::Minps,
        M::Minpd,
        M::Minss,
        M::Minsd,
        M::Maxps,
        M::Maxpd,
        M::Maxss,
        M::Maxsd,
        M::Sqrtps,
        M::Sqrtpd,
        M::Sqrtss,
        M::Sqrtsd,
        M::Rcpps,
        M::Rcpss,
        M::Rsqrtps,
        M::Rsqrtss,
        M::Cmpps,
        M::Cmppd,
        M::Cmpss,
        M::Cmpsd,
        M::Comiss,
        M::Comisd,
        M::Ucomiss,
        M::Ucomisd,
        M::Cvtsi2ss,
        M::Cvtsi2sd,
        M::Cvtss2si,
        M::Cvtsd2si,
        M::Cvttss2si,
        M::Cvttsd2si,
        M::Cvtps2pd,
        M::Cvtpd2ps,
        M::Cvtss2sd,
        M::Cvtsd2ss,
        M::Cvtdq2ps,
        M::Cvtps2dq,
        M::Cvttps2dq,
        M::Cvtdq2pd,
        M::Cvtpd2dq,
        M::Cvttpd2dq,
        // The MMX-register conversions (gen_mmx.rs builds their cases
        // here; `covers` leaves them out: their MM operand is not one of
        // `supported`'s kinds).
        M::Cvtpi2ps,
        M::Cvtpi2pd,
        M::Cvtps2pi,
        M::Cvttps2pi,
        M::Cvtpd2pi,
        M::Cvttpd2pi,
    ]
};

/// The lane width of a floating-point form's sources (singles or
/// doubles; the integer-source conversions get edge integers).
pub(super) fn fp_width(m: Mnemonic) -> Option<u32> {
    use Mnemonic as M;
    match m {
        M::Cvtdq2ps | M::Cvtdq2pd | M::Cvtsi2ss | M::Cvtsi2sd | M::Cvtpi2ps | M::Cvtpi2pd => None,
        M::Cvtps2pd
        | M::Cvtss2sd
        | M::Cvtps2dq
        | M::Cvttps2dq
        | M::Cvtss2si
        | M::Cvttss2si
        | M::Cvtps2pi
        | M::Cvttps2pi => Some(32),
        M::Cvtpd2ps
        | M::Cvtsd2ss
        | M::Cvtpd2dq
        | M::Cvttpd2dq
        | M::Cvtsd2si
        | M::Cvttsd2si
        | M::Cvtpd2pi
        | M::Cvttpd2pi => Some(64),
        _ => {
            let n = format!("{m:?}");
            Some(if n.ends_with("ps") || n.ends_with("ss") {
                32
            } else {
                64
            })
        }
    }
}

/// A float of `w` (32/64) bits biased to the edges: ±0, denormals
/// (smallest, largest), normals (smallest, largest), ±∞, QNaN/SNaN with
/// payloads, 1.0 and its neighbours, halfway cases that round
/// differently per RC, the integer-conversion limits, and random values
/// (with exponents near 0, so that sums and products round).
pub(super) fn fp_value(rng: &mut Rng, w: u32) -> u64 {
    let (m, e) = if w == 32 { (23u32, 8u32) } else { (52, 11) };
    let bias = (1u64 << (e - 1)) - 1;
    let sign = if rng.chance(1, 3) { 1u64 << (w - 1) } else { 0 };
    let exp_all = ((1u64 << e) - 1) << m;
    let frac = (1u64 << m) - 1;
    let q = 1u64 << (m - 1);
    let one = bias << m;
    let v = match rng.below(20) {
        0 => 0,
        1 => 1,
        2 => frac,
        3 => 1 << m,
        4 => (exp_all - (1 << m)) | frac,
        5 => exp_all,
        6 => exp_all | q | (rng.next_u64() & (q - 1) & if rng.chance(1, 2) { 0 } else { !0 }),
        7 => exp_all | (rng.next_u64() & (q - 1)).max(1),
        8 => one,
        9 => one | 1,
        10 => one - 1,
        // x.5: 1.5, 2.5, 3.5 (round to even or away, per RC).
        11 => (bias + rng.below(2)) << m | 1 << (m - 1 - rng.below(2) as u32),
        // 2^31, 2^32, 2^63, 2^64 and neighbours.
        12 => {
            let k = [31u64, 32, 63, 64][rng.below(4) as usize];
            ((bias + k) << m).wrapping_add(rng.below(3)).wrapping_sub(1)
        }
        // Near the denormal boundary.
        13 => (1u64 << m) + rng.below(4) - 2,
        14 => rng.next_u64() & frac,
        _ => {
            let ex = (bias as i64 + rng.below(64) as i64 - 32) as u64;
            ex << m | (rng.next_u64() & frac)
        }
    };
    (v & ((1u64 << (w - 1)) - 1)) | sign
}

/// An XMM value of float lanes (`Some(w)`) or edge integers.
pub(super) fn fp_xmm(rng: &mut Rng, w: Option<u32>) -> u128 {
    let Some(w) = w else {
        return xmm_value(rng);
    };
    let mut v = 0u128;
    for i in 0..128 / w {
        v |= u128::from(fp_value(rng, w)) << (w * i);
    }
    v
}

/// MXCSR for a floating-point case: any rounding mode, FZ and DAZ, some
/// sticky flags already set; exceptions mostly masked, sometimes one or
/// a few unmasked (#XM).
pub(super) fn fp_mxcsr(rng: &mut Rng) -> u32 {
    let mut v = cpu::state::MXCSR_RESET;
    v |= (rng.below(4) as u32) << 13;
    if rng.chance(1, 4) {
        v |= 0x8000;
    }
    if rng.chance(1, 4) {
        v |= 0x40;
    }
    if rng.chance(1, 4) {
        v |= rng.below(64) as u32;
    }
    match rng.below(6) {
        0 => v &= !(1 << (7 + rng.below(6) as u32)),
        1 => v &= !((rng.below(64) as u32) << 7),
        _ => {}
    }
    v
}

/// Operand kinds this generator fills.
pub(super) fn supported(k: K) -> bool {
    matches!(
        k,
        K::xmm_reg
            | K::xmm_rm
            | K::xmm_or_mem
            | K::r32_reg
            | K::r32_rm
            | K::r32_or_mem
            | K::r64_reg
            | K::r64_rm
            | K::r64_or_mem
            | K::mem
            | K::imm8
    )
}

/// Is `code` one of this generator's forms?
pub(super) fn covers(code: Code) -> bool {
    let op = code.op_code();
    (MNEMONICS.contains(&code.mnemonic()) || FP_MNEMONICS.contains(&code.mnemonic()))
        && op.is_instruction()
        && op.mode64()
        && op.encoding() == EncodingKind::Legacy
        // Not the SSE4.1 form of PEXTRW (66 0F 3A 15, m16 destination).
        && !matches!(
            code,
            Code::Pextrw_r32m16_xmm_imm8 | Code::Pextrw_r64m16_xmm_imm8
        )
        && op.op_kinds().iter().all(|k| supported(*k))
        && (op
            .op_kinds()
            .iter()
            .any(|k| matches!(k, K::xmm_reg | K::xmm_rm | K::xmm_or_mem))
            || matches!(
                code.mnemonic(),
                Mnemonic::Movnti | Mnemonic::Ldmxcsr | Mnemonic::Stmxcsr
            ))
}

pub(super) fn forms() -> Vec<Form> {
    Code::values()
        .filter(|c| covers(*c))
        .map(Form::of)
        .collect()
}

/// A case for `form` if it is one of this generator's: `Some(None)` when
/// this try's random choices cannot be encoded (the caller tries again).
pub(super) fn try_case(
    gen: &mut Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Option<Case>> {
    if !covers(form.code) {
        return None;
    }
    Some(build_case(gen, rng, form, index, alloc))
}

const XMM: [Register; 16] = {
    use Register::*;
    [
        XMM0, XMM1, XMM2, XMM3, XMM4, XMM5, XMM6, XMM7, XMM8, XMM9, XMM10, XMM11, XMM12, XMM13,
        XMM14, XMM15,
    ]
};

/// MM0-7 (for the MMX-register forms gen_mmx.rs builds here; their
/// values live in the case's x87 image, which gen_mmx.rs fills).
const MM: [Register; 8] = {
    use Register::*;
    [MM0, MM1, MM2, MM3, MM4, MM5, MM6, MM7]
};

/// Shift counts that matter for some lane width (and byte shifts).
const SHIFT_EDGES: [u64; 16] = [
    0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255,
];

pub(super) fn is_shift(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::Psllw
            | M::Pslld
            | M::Psllq
            | M::Psrlw
            | M::Psrld
            | M::Psrlq
            | M::Psraw
            | M::Psrad
            | M::Pslldq
            | M::Psrldq
    )
}

/// A shift count for the count register's low quadword.
pub(super) fn wide_count(rng: &mut Rng) -> u64 {
    match rng.below(8) {
        0 => 1 << 63,
        1 => 1 << 32,
        2 => rng.next_u64(),
        _ => rng.pick(&SHIFT_EDGES).unwrap_or(1),
    }
}

/// An edge-biased XMM value.
pub(super) fn xmm_value(rng: &mut Rng) -> u128 {
    match rng.below(10) {
        0 => 0,
        1 => u128::MAX,
        2 => u128::from(rng.next_u64()) | (u128::from(rng.next_u64()) << 64),
        _ => {
            let w = [8u32, 16, 32, 64][rng.below(4) as usize];
            let mut v = 0u128;
            for i in 0..128 / w {
                v |= u128::from(value(rng, w)) << (w * i);
            }
            v
        }
    }
}

pub(super) fn build_case(
    gen: &mut Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Case> {
    let m = form.code.mnemonic();
    let shift = is_shift(m);
    let fp = FP_MNEMONICS.contains(&m).then(|| fp_width(m));
    let has_rm = form.kinds.iter().any(|k| {
        matches!(
            k,
            K::xmm_or_mem | K::r32_or_mem | K::r64_or_mem | K::mm_or_mem
        )
    });
    let mem_form = form.kinds.contains(&K::mem) || (has_rm && rng.chance(1, 2));
    let mut ops = Vec::with_capacity(form.kinds.len());
    let mut used_mem = false;
    for &k in &form.kinds {
        let op = match k {
            K::xmm_or_mem | K::r32_or_mem | K::r64_or_mem | K::mm_or_mem | K::mem
                if mem_form && !used_mem =>
            {
                used_mem = true;
                Op::Mem
            }
            K::xmm_reg | K::xmm_rm | K::xmm_or_mem => Op::Reg(rng.pick(&XMM)?),
            K::r32_reg | K::r32_rm | K::r32_or_mem => Op::Reg(rng.pick(&R32)?),
            K::r64_reg | K::r64_rm | K::r64_or_mem => Op::Reg(rng.pick(&R64)?),
            K::mm_reg | K::mm_rm | K::mm_or_mem => Op::Reg(rng.pick(&MM)?),
            // PALIGNR's byte count: below, at and past each width's end.
            K::imm8 if m == Mnemonic::Palignr && rng.chance(1, 2) => Op::Imm(rng.below(34) as i64),
            K::imm8 if shift || m == Mnemonic::Palignr => Op::Imm(rng.pick(&SHIFT_EDGES)? as i64),
            K::imm8 => Op::Imm(value(rng, 8) as i64),
            _ => return None,
        };
        ops.push(op);
    }
    let placeholder = MemoryOperand::with_base_displ(Register::None, guest::DATA_BASE as i64);
    let probe = super::build(form.code, &ops, placeholder)?;
    let size = probe.memory_size().size() as u32;
    let used: Vec<Register> = gen
        .info
        .info(&probe)
        .used_registers()
        .iter()
        .map(|u| u.register().full_register())
        .collect();
    let free: Vec<usize> = (0..16).filter(|&i| !used.contains(&R64[i])).collect();

    let mut gpr = [0u64; 16];
    for g in gpr.iter_mut() {
        *g = match rng.below(3) {
            0 => rng.next_u64(),
            1 => value(rng, 64),
            _ => rng.below(256),
        };
    }
    let mut simd = Simd::default();
    for x in simd.xmm.iter_mut() {
        *x = match fp {
            Some(w) => fp_xmm(rng, w),
            None => xmm_value(rng),
        };
    }
    if fp.is_some() {
        // Sometimes the same value in both operands (x - x, x == x).
        if rng.chance(1, 8) {
            if let (Some(Op::Reg(a)), Some(Op::Reg(b))) = (ops.first(), ops.get(1)) {
                let i = (*a as usize).wrapping_sub(Register::XMM0 as usize) & 15;
                let j = (*b as usize).wrapping_sub(Register::XMM0 as usize) & 15;
                if a.is_xmm() && b.is_xmm() {
                    simd.xmm[j] = simd.xmm[i];
                }
            }
        }
    }
    if fp.is_some() {
        simd.mxcsr = fp_mxcsr(rng);
    } else if rng.chance(1, 4) {
        // Any valid MXCSR (flags, masks, rounding, DAZ, FZ).
        simd.mxcsr = value(rng, 16) as u32;
    }

    let code_addr = alloc.code_addr();
    let mut windows = Vec::new();
    let mut note = String::from(if mem_form { "mem" } else { "reg" });
    let mut target = None;
    let mut mem_op = placeholder;
    let mut addr_regs = Vec::new();
    if mem_form {
        let fault = super::random_fault(rng, 10, size);
        let (t, w, n) = place_operand(rng, alloc, size, false, fault);
        note = n;
        target = Some(MemTarget { addr: t, size });
        if let Some(mut w) = w {
            if !(guest::SPECIAL_BASE..guest::SPECIAL_END).contains(&t) {
                let mut bytes = match fp {
                    Some(w) => fp_xmm(rng, w),
                    None => xmm_value(rng),
                }
                .to_le_bytes()
                .to_vec();
                if m == Mnemonic::Ldmxcsr {
                    let mut v = value(rng, 16) as u32;
                    if rng.chance(1, 8) {
                        // A reserved bit (not 17, see the module doc).
                        let b = 16 + rng.below(16) as u32;
                        v |= 1 << if b == 17 { 31 } else { b };
                    }
                    bytes = v.to_le_bytes().to_vec();
                }
                if shift && (size == 16 || size == 8) && rng.chance(3, 4) {
                    bytes[..8].copy_from_slice(&wide_count(rng).to_le_bytes());
                }
                bytes.truncate(size as usize);
                put_bytes(&mut w, t, &bytes);
            }
            windows.push(w);
        }
        let seg = match rng.below(20) {
            0 => Register::ES,
            1 => Register::DS,
            2 | 3 => Register::FS,
            4 | 5 => Register::GS,
            _ => Register::None,
        };
        let seg_base = super::segment_base(seg);
        if seg != Register::None {
            note.push_str(&format!(" {seg:?}:"));
        }
        let (mo, regs) = solve_address(rng, &free, t.wrapping_sub(seg_base), code_addr, seg)?;
        mem_op = mo;
        addr_regs = regs;
    }
    // Shift by register: the count in the low quadword.
    if shift && !mem_form {
        if let Some(Op::Reg(r)) = ops.get(1).filter(|o| matches!(o, Op::Reg(r) if r.is_xmm())) {
            let i = (*r as usize).wrapping_sub(Register::XMM0 as usize) & 15;
            let hi = simd.xmm[i] >> 64 << 64;
            simd.xmm[i] = hi | u128::from(wide_count(rng));
        }
    }
    let lock = rng.chance(1, 50);
    if lock {
        note.push_str(" lock");
    }
    let mut insn = super::build(form.code, &ops, mem_op)?;
    insn.set_has_lock_prefix(lock);
    let mut enc = Encoder::new(64);
    enc.encode(&insn, code_addr).ok()?;
    let code = enc.take_buffer();
    let insns = decode_all(&code, code_addr);
    if insns.len() != 1 || insns.iter().any(|i| i.is_invalid() && !lock) {
        return None;
    }
    // Register operands of the GPR kinds: edge values.
    for op in &ops {
        if let Op::Reg(r) = op {
            if r.is_gpr() {
                super::set_reg(&mut gpr, *r, value(rng, r.size() as u32 * 8));
            }
        }
    }
    for (r, v) in &addr_regs {
        super::set_reg(&mut gpr, *r, *v);
    }
    let fl = super::case_rflags(rng);
    Some(Case {
        mode: crate::difftest::case::CaseMode::Long64,
        index,
        pinned: false,
        code_addr,
        code,
        insns,
        gpr,
        rflags: fl,
        simd,
        windows,
        mem: target,
        note,
    })
}
