//! Which iced-x86 [`Code`]s the interpreter implements, for the ISA
//! coverage report (`ringside isa --coverage`).
//!
//! There is no list of implemented instructions here: the answer comes
//! from the interpreter's own decode-time dispatch (`exec::select`'s
//! decisions, through `exec::is_implemented`, and system/'s
//! `handler_for` table), so it cannot drift from what runs.
//!
//! # Why a decode sweep
//!
//! The dispatch decides from a decoded [`Instruction`], not from a bare
//! [`Code`]: operand sizes and register-versus-memory forms pick the
//! monomorphized handler. So the query needs real decodings of each Code.
//! [`implemented`] gets them by decoding every legacy-encoded opcode
//! (one-byte map, 0F, 0F 38, 0F 3A) in 16-, 32- and 64-bit code, under
//! every combination of the operand-size (66), address-size (67), F2/F3
//! and REX.W prefixes that selects a different Code, with a ModRM byte
//! for every register form (mod = 3) and a memory form for every /reg.
//!
//! # The rule
//!
//! * A Code the sweep decodes is implemented iff the dispatch gives
//!   *every* decoding of it found by the sweep a handler (all operand
//!   sizes and both the register and the memory form, where the Code has
//!   them). A Code handled in one form but not another counts as not
//!   implemented.
//! * A Code the sweep never produces is judged on an instruction with
//!   that Code and no operand filled in: the dispatch's mnemonic match
//!   without operand sizes. These are the VEX, EVEX, XOP and 3DNow! encodings,
//!   the WAIT-prefixed x87 forms (FSTENV, FINIT…), and the ~100 legacy
//!   Codes that only decode under decoder options ringside does not use
//!   (Cyrix/VIA/AMD-only, MPX, 286/386 LOADALL…). Of those only the
//!   operand-less LOOP/JRCXZ variants and UD0 come out implemented: their
//!   handlers need no operand size, and they are what would run if the
//!   decoder ever produced them.
//!
//! The table is built once (about two million decodes; well under a
//! second in a release build) and cached.

use crate::exec::is_implemented;
use iced_x86::{Code, Decoder, DecoderOptions, Instruction};
use std::sync::OnceLock;

/// Does the interpreter implement `code` (see the module doc for the
/// rule)? Side-effect free; the first call builds the table.
pub fn implemented(code: Code) -> bool {
    table().get(code as usize).is_some_and(|s| s.implemented())
}

/// What the sweep saw of one Code.
#[derive(Clone, Copy, Default)]
struct Seen {
    handled: bool,
    unhandled: bool,
}

impl Seen {
    fn implemented(self) -> bool {
        self.handled && !self.unhandled
    }
}

/// Legacy prefixes that select different Codes (operand size, address
/// size, the mandatory-prefix maps).
const LEGACY_PREFIXES: [&[u8]; 8] = [
    &[],
    &[0x66],
    &[0x67],
    &[0x66, 0x67],
    &[0xF2],
    &[0xF3],
    &[0x66, 0xF2],
    &[0x66, 0xF3],
];

/// Opcode maps of the legacy encoding.
const MAPS: [&[u8]; 4] = [&[], &[0x0F], &[0x0F, 0x38], &[0x0F, 0x3A]];

fn table() -> &'static [Seen] {
    static TABLE: OnceLock<Vec<Seen>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// ModRM bytes: a memory form (mod = 0, rm = 0: `[rax]`, `[eax]` or
/// `[bx+si]`, no displacement) for each /reg, and every register form.
fn modrm_bytes() -> impl Iterator<Item = u8> {
    (0u8..8).map(|reg| reg << 3).chain(0xC0..=0xFF)
}

fn build() -> Vec<Seen> {
    let mut seen = sweep();
    // Codes no decoding produced: the mnemonic-level answer.
    for code in Code::values() {
        if let Some(s) = seen.get_mut(code as usize) {
            if !s.handled && !s.unhandled {
                // Not `Instruction::with`, which (in debug builds)
                // asserts the Code has no operands.
                let mut insn = Instruction::default();
                insn.set_code(code);
                if is_implemented(&insn) {
                    s.handled = true;
                } else {
                    s.unhandled = true;
                }
            }
        }
    }
    seen
}

/// Decode every opcode/prefix/ModRM combination and note what the
/// dispatch makes of each decoding.
fn sweep() -> Vec<Seen> {
    let mut seen = vec![Seen::default(); Code::values().count()];
    let mut buf = [0u8; 32];
    for bitness in [16u32, 32, 64] {
        let rex: &[&[u8]] = if bitness == 64 {
            &[&[], &[0x48]]
        } else {
            &[&[]]
        };
        for legacy in LEGACY_PREFIXES {
            for rex in rex {
                for map in MAPS {
                    for op in 0..=255u8 {
                        for modrm in modrm_bytes() {
                            let mut n = 0;
                            for &b in legacy.iter().chain(rex.iter()).chain(map.iter()) {
                                buf[n] = b;
                                n += 1;
                            }
                            buf[n] = op;
                            buf[n + 1] = modrm;
                            // The rest stays zero: displacements and
                            // immediates.
                            let mut dec = Decoder::new(bitness, &buf, DecoderOptions::NONE);
                            let insn = dec.decode();
                            note(&mut seen, &insn);
                        }
                    }
                }
            }
        }
    }
    seen
}

fn note(seen: &mut [Seen], insn: &Instruction) {
    if insn.is_invalid() {
        return;
    }
    if let Some(s) = seen.get_mut(insn.code() as usize) {
        if is_implemented(insn) {
            s.handled = true;
        } else {
            s.unhandled = true;
        }
    }
}

/// Codes the sweep decoded in some forms that the dispatch handles and
/// in others that it does not (for the unit test's diagnostics).
#[cfg(test)]
fn mixed() -> Vec<Code> {
    Code::values()
        .filter(|c| {
            table()
                .get(*c as usize)
                .is_some_and(|s| s.handled && s.unhandled)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_implemented() {
        for c in [
            Code::Add_rm32_r32,
            Code::Shl_rm64_CL,
            Code::Cpuid,
            Code::Iretq,
            Code::Hlt,
            Code::Mov_r64_imm64,
            Code::Movsb_m8_m8,
            Code::Jrcxz_rel8_64,
            Code::Mov_cr_r64,
            Code::Outsb_DX_m8,
            Code::Addps_xmm_xmmm128,
            // The SSE2 CMPSD shares its mnemonic with the string CMPSD.
            Code::Cmpsd_xmm_xmmm64_imm8,
            Code::Cmpsd_m32_m32,
        ] {
            assert!(implemented(c), "{c:?} should be implemented");
        }
    }

    #[test]
    fn known_unimplemented() {
        for c in [
            // XSAVE (FXSAVE is implemented) and AMD's SSE4A.
            Code::Xsave_mem,
            Code::Extrq_xmm_imm8_imm8,
            Code::VEX_Vaddps_xmm_xmm_xmmm128,
            Code::INVALID,
        ] {
            assert!(!implemented(c), "{c:?} should not be implemented");
        }
    }

    #[test]
    fn no_code_is_half_implemented() {
        // A Code the dispatch handles in some forms only would be counted
        // as not implemented; today there are none.
        assert_eq!(mixed(), Vec::<Code>::new());
    }
}
