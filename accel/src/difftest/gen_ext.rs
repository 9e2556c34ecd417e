//! Cases for RDRAND/RDSEED (XSAVE/XRSTOR/XSAVEOPT and FSGSBASE are not
//! generated yet: they need CPUID and CR4/XCR0 support in the test guest
//! that the host must accept first).
//!
//! RDRAND/RDSEED r16/r32/r64: any destination but RSP, random GPRs and
//! status flags. The random value is not comparable; `policy::undefined`
//! masks the destination's bits (a 16-bit destination's upper 48 bits
//! and a 32-bit one's zeroed upper half are still compared), and the
//! flags (CF = 1, the others 0) are compared.

use super::{Form, R16, R32, R64};
use crate::difftest::batch::Alloc;
use crate::difftest::case::{decode_all, Case, CaseMode, Simd};
use crate::difftest::rng::Rng;
use iced_x86::{Code, Encoder, Instruction, Register};

/// The Codes of this generator.
const CODES: [Code; 6] = [
    Code::Rdrand_r16,
    Code::Rdrand_r32,
    Code::Rdrand_r64,
    Code::Rdseed_r16,
    Code::Rdseed_r32,
    Code::Rdseed_r64,
];

/// This generator's forms.
pub(super) fn forms() -> Vec<Form> {
    CODES.iter().map(|&c| Form::of(c)).collect()
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
    let _ = gen;
    if !CODES.contains(&form.code) {
        return None;
    }
    Some(rdrand_case(rng, form.code, index, alloc))
}

fn rdrand_case(rng: &mut Rng, code: Code, index: u64, alloc: &mut Alloc) -> Option<Case> {
    let regs: &[Register; 16] = match code {
        Code::Rdrand_r16 | Code::Rdseed_r16 => &R16,
        Code::Rdrand_r32 | Code::Rdseed_r32 => &R32,
        _ => &R64,
    };
    // Not RSP (index 4): the case loop needs the stack pointer it set.
    let k = rng.pick(&[0usize, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])?;
    let insn = Instruction::with1(code, regs[k]).ok()?;
    let code_addr = alloc.code_addr();
    let mut enc = Encoder::new(64);
    enc.encode(&insn, code_addr).ok()?;
    let bytes = enc.take_buffer();
    let insns = decode_all(&bytes, code_addr);
    if insns.len() != 1 || insns[0].is_invalid() {
        return None;
    }
    let mut gpr = [0u64; 16];
    for g in gpr.iter_mut() {
        *g = super::value(rng, 64);
    }
    Some(Case {
        mode: CaseMode::Long64,
        index,
        pinned: false,
        code_addr,
        code: bytes,
        insns,
        gpr,
        rflags: super::case_rflags(rng),
        simd: Simd::default(),
        windows: Vec::new(),
        mem: None,
        note: "random value".into(),
    })
}
