//! Cases for MMX (the MMX instructions and the MMX-register forms of
//! SSE and SSE2), SSSE3 (XMM and MMX forms) and MASKMOVDQU: a child
//! module of [`super`] (the case generator).
//!
//! The operands, values and memory forms are gen_sse.rs's
//! (`gen_sse::build_case`, which knows the MM operand kinds): edge lanes
//! of a random width, shift counts 0, width-1, width, width+1 and huge
//! ones (imm8, or all 64 bits of the count register/m64), PALIGNR counts
//! around each width's end, float edges for the conversions; memory
//! operands aligned, misaligned, page-crossing or faulting (#PF,
//! non-canonical), segment prefixes, LOCK now and then (#UD).
//!
//! MMn is the significand of physical x87 register Rn, and MMX
//! instructions set TOP = 0 and all tags valid, and write sign and
//! exponent 0xFFFF with an MM register: so every case starts from a
//! random x87 state ([`x87_image`]) — TOP 0 or not, all registers
//! valid, empty or a random mix, MM values with edge lanes, exponents
//! 0xFFFF (as MMX code leaves them) or not — and now and then an
//! unmasked x87 exception pending (#MF). The runtime's FNSAVE stores
//! TOP, the full tag word (computed from the register contents) and
//! ST0-7 after the case, so all of that is compared.
//!
//! MASKMOVQ/MASKMOVDQU have their own builder ([`maskmov_case`]): the
//! store goes to DS:rDI (FS/GS overrides, 0x67 for EDI), masks all zero,
//! all ones, random, or selecting only the bytes before or after a page
//! boundary, targets in RAM (page-crossing included) or faulting.

use super::gen_sse::{build_case, is_shift, wide_count, xmm_value};
use super::{place_operand, segment_base, value, Form, Generator};
use crate::difftest::batch::Alloc;
use crate::difftest::case::{decode_all, x87img, Case, MemTarget, Simd, X87_IMAGE, X87_INIT};
use crate::difftest::rng::Rng;
use iced_x86::{
    Code, CpuidFeature, Encoder, EncodingKind, Instruction, OpCodeOperandKind as K, Register,
};

/// Is `code` one of this generator's: a legacy MMX/SSE/SSE2/SSSE3 Code
/// valid in 64-bit mode with an MM operand, EMMS, an SSSE3 XMM form, or
/// MASKMOVDQU — and implemented by the interpreter?
fn owns(code: Code) -> bool {
    let op = code.op_code();
    if !op.is_instruction() || !op.mode64() || op.encoding() != EncodingKind::Legacy {
        return false;
    }
    let feats = code.cpuid_features();
    let ours = feats.iter().all(|f| {
        matches!(
            f,
            CpuidFeature::MMX | CpuidFeature::SSE | CpuidFeature::SSE2 | CpuidFeature::SSSE3
        )
    });
    let mm = op
        .op_kinds()
        .iter()
        .any(|k| matches!(k, K::mm_reg | K::mm_rm | K::mm_or_mem));
    ours && (mm
        || feats.contains(&CpuidFeature::SSSE3)
        || matches!(code, Code::Emms | Code::Maskmovdqu_rDI_xmm_xmm))
        && cpu::coverage::implemented(code)
}

/// This generator's forms.
pub(super) fn forms() -> Vec<Form> {
    Code::values().filter(|c| owns(*c)).map(Form::of).collect()
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
    if !owns(form.code) {
        return None;
    }
    if matches!(
        form.code,
        Code::Maskmovq_rDI_mm_mm | Code::Maskmovdqu_rDI_xmm_xmm
    ) {
        return Some(maskmov_case(rng, form, index, alloc));
    }
    let mut case = build_case(gen, rng, form, index, alloc)?;
    let has_mm = case.insns.first().is_some_and(|i| {
        (0..i.op_count())
            .any(|n| i.op_kind(n) == iced_x86::OpKind::Register && i.op_register(n).is_mm())
    }) || form.code == Code::Emms;
    if has_mm || rng.chance(1, 4) {
        case.simd.x87 = x87_image(rng);
    }
    // A shift by an MM register: the count is all of it.
    if let Some(insn) = case.insns.first() {
        if is_shift(insn.mnemonic())
            && insn.op_count() == 2
            && insn.op1_kind() == iced_x86::OpKind::Register
            && insn.op1_register().is_mm()
            && rng.chance(3, 4)
        {
            let n = mm_number(insn.op1_register());
            set_mm(&mut case.simd.x87, n, wide_count(rng));
        }
    }
    Some(Some(case))
}

fn mm_number(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::MM0 as usize) & 7
}

/// An edge-biased MM value: lanes of a random width (gen_sse's XMM
/// values, low half), or a 64-bit edge.
fn mm_value(rng: &mut Rng) -> u64 {
    if rng.chance(1, 6) {
        value(rng, 64)
    } else {
        xmm_value(rng) as u64
    }
}

/// Write MMn (physical register n) into an FNSAVE image, wherever TOP
/// puts it (ST(i) is R((TOP + i) mod 8)).
fn set_mm(img: &mut [u8; X87_IMAGE], n: usize, sig: u64) {
    let top = (u16::from_le_bytes([img[x87img::FSW], img[x87img::FSW + 1]]) >> 11) as usize & 7;
    let o = x87img::ST + 10 * ((n + 8 - top) & 7);
    img[o..o + 8].copy_from_slice(&sig.to_le_bytes());
}

/// A random x87 state for an MMX case, as an FNSAVE image: TOP 0 (as MMX
/// code leaves it) or any; tags all valid, all empty (after EMMS) or
/// mixed; MM values with edge lanes and exponents 0xFFFF or others;
/// sometimes sticky flags and condition codes, and one time in 25 an
/// unmasked exception pending (the MMX instruction raises #MF).
fn x87_image(rng: &mut Rng) -> [u8; X87_IMAGE] {
    let mut img = X87_INIT;
    let top: u16 = if rng.chance(1, 2) {
        0
    } else {
        rng.below(8) as u16
    };
    let full: u64 = match rng.below(4) {
        0 | 1 => 0xff,
        2 => 0,
        _ => rng.below(256),
    };
    let mut fcw: u16 = 0x037f;
    let mut fsw = top << 11;
    if rng.chance(1, 5) {
        // Condition codes and masked sticky flags (SF too).
        fsw |= rng.next_u64() as u16 & 0x477f;
    }
    if rng.chance(1, 25) {
        let e = 1u16 << rng.below(6);
        fcw &= !e;
        fsw |= e | 0x8080;
    }
    let mut ftw = 0u16;
    for n in 0..8usize {
        if full & (1 << n) == 0 {
            ftw |= 3 << (2 * n);
        }
        let se: u16 = match rng.below(4) {
            0 | 1 => 0xffff,
            2 => 0x3fff,
            _ => rng.next_u64() as u16,
        };
        let o = x87img::ST + 10 * ((n + 8 - top as usize) & 7);
        img[o + 8..o + 10].copy_from_slice(&se.to_le_bytes());
    }
    img[x87img::FCW..x87img::FCW + 2].copy_from_slice(&fcw.to_le_bytes());
    img[x87img::FSW..x87img::FSW + 2].copy_from_slice(&fsw.to_le_bytes());
    img[x87img::FTW..x87img::FTW + 2].copy_from_slice(&ftw.to_le_bytes());
    for n in 0..8 {
        let v = mm_value(rng);
        set_mm(&mut img, n, v);
    }
    img
}

/// A byte mask for MASKMOVQ/MASKMOVDQU (`len` bytes; a byte is stored
/// when its mask byte has bit 7 set): none, all, random, one byte, or
/// only a prefix or a suffix (the bytes before or after a page boundary
/// the access crosses).
fn mask_value(rng: &mut Rng, len: u32) -> u128 {
    let all = u128::MAX >> (128 - 8 * len);
    let k = 8 * (1 + rng.below(u64::from(len) - 1) as u32);
    let m = match rng.below(8) {
        0 => 0,
        1 => all,
        2 => 0x80u128 << (8 * rng.below(u64::from(len)) as u32),
        3 => all >> k,
        4 => all << k,
        5 => xmm_value(rng),
        // Only bit 7 decides: the others are noise.
        _ => u128::from(rng.next_u64()) | u128::from(rng.next_u64()) << 64,
    };
    m & all
}

/// A MASKMOVQ or MASKMOVDQU case.
fn maskmov_case(rng: &mut Rng, form: &Form, index: u64, alloc: &mut Alloc) -> Option<Case> {
    let q = form.code == Code::Maskmovq_rDI_mm_mm;
    let len: u32 = if q { 8 } else { 16 };
    let regs: Vec<Register> = if q {
        (0..8).map(|i| Register::MM0 + i).collect()
    } else {
        (0..16).map(|i| Register::XMM0 + i).collect()
    };
    let data = rng.pick(&regs)?;
    let mask = rng.pick(&regs)?;
    let fault = super::random_fault(rng, 8, len);
    let (t, window, mut note) = place_operand(rng, alloc, len, false, fault);
    let seg = match rng.below(12) {
        0 => Register::FS,
        1 => Register::GS,
        2 => Register::DS,
        3 => Register::ES,
        _ => Register::None,
    };
    if seg != Register::None {
        note.push_str(&format!(" {seg:?}:"));
    }
    let ea = t.wrapping_sub(segment_base(seg));
    let a32 = ea < (1 << 32) && rng.chance(1, 6);
    let asz = if a32 { 32 } else { 64 };
    let insn = if q {
        Instruction::with_maskmovq(asz, data, mask, seg)
    } else {
        Instruction::with_maskmovdqu(asz, data, mask, seg)
    }
    .ok()?;
    let code_addr = alloc.code_addr();
    let mut enc = Encoder::new(64);
    enc.encode(&insn, code_addr).ok()?;
    let code = enc.take_buffer();
    let insns = decode_all(&code, code_addr);
    if insns.len() != 1 || insns.iter().any(|i| i.is_invalid()) {
        return None;
    }
    let mut gpr = [0u64; 16];
    for g in gpr.iter_mut() {
        *g = rng.next_u64();
    }
    // RDI (index 7); with 0x67 only EDI counts: garbage above.
    gpr[7] = if a32 { ea | (rng.next_u64() << 32) } else { ea };
    let mut simd = Simd::default();
    for x in simd.xmm.iter_mut() {
        *x = xmm_value(rng);
    }
    let m = mask_value(rng, len);
    if q {
        simd.x87 = x87_image(rng);
        set_mm(&mut simd.x87, mm_number(data), mm_value(rng));
        set_mm(&mut simd.x87, mm_number(mask), m as u64);
    } else {
        if rng.chance(1, 4) {
            simd.x87 = x87_image(rng);
        }
        let i = (mask as usize).wrapping_sub(Register::XMM0 as usize) & 15;
        simd.xmm[i] = m;
    }
    if m == 0 {
        note.push_str(" zero mask");
    }
    if a32 {
        note.push_str(" a32");
    }
    Some(Case {
        mode: crate::difftest::case::CaseMode::Long64,
        index,
        pinned: false,
        code_addr,
        code,
        insns,
        gpr,
        rflags: super::case_rflags(rng),
        simd,
        windows: window.into_iter().collect(),
        mem: Some(MemTarget { addr: t, size: len }),
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_the_mmx_ssse3_and_maskmov_codes() {
        let f = forms();
        assert!(f.iter().any(|f| f.code == Code::Emms));
        assert!(f.iter().any(|f| f.code == Code::Palignr_xmm_xmmm128_imm8));
        assert!(f.iter().any(|f| f.code == Code::Maskmovdqu_rDI_xmm_xmm));
        assert!(f.iter().any(|f| f.code == Code::Cvtpd2pi_mm_xmmm128));
        assert!(!f.iter().any(|f| f.code == Code::Paddb_xmm_xmmm128));
        assert_eq!(f.len(), 120);
    }

    #[test]
    fn images_put_mm_registers_in_physical_order() {
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let mut img = x87_image(&mut rng);
            set_mm(&mut img, 3, 0x1122_3344_5566_7788);
            let top = (crate::difftest::case::x87_word(&img, x87img::FSW) >> 11) as usize & 7;
            let st = crate::difftest::case::x87_st(&img, (3 + 8 - top) & 7);
            assert_eq!(st.1, 0x1122_3344_5566_7788);
        }
    }
}
