//! What a differential test may not compare, and why.
//!
//! # Undefined results
//!
//! The Intel SDM (Vol. 2, each instruction's "Flags Affected" section, and
//! Vol. 1, Appendix A, "EFLAGS Cross-Reference") leaves some flags, and a
//! few results, *undefined*: a CPU may leave anything there, and Intel and
//! AMD cores do differ. [`undefined`] is the one table of those rules; a
//! case compares every flag and every result bit that it does not name.
//! The rules depend on the operand size and the (masked) shift count, as
//! the SDM states them, so a rule never hides a defined result: e.g. a
//! 1-bit SHL compares OF, a 0-bit one compares every flag (unchanged).
//!
//! Where AMD's manual (APM Vol. 3) *defines* what Intel leaves undefined,
//! and the interpreter does the same, the result is compared (noted at the
//! rule), because ringside runs on AMD hosts as well as on Intel ones.
//!
//! # Known divergences
//!
//! [`KNOWN`] lists divergences that are understood and not (yet) fixed,
//! each for one mnemonic under one precise condition, with the reason. A
//! divergence that matches no entry fails the test.

use super::case::{Case, Outcome};
use cpu::state::rflags::{AF, CF, OF, PF, SF, STATUS, ZF};
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// What one case does not compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Undefined {
    /// RFLAGS status bits left undefined.
    pub flags: u64,
    /// A GPR (`CpuState::gpr` index) and the bits of it left undefined.
    pub reg: Option<(usize, u64)>,
    /// Memory bytes left undefined: (linear address, length).
    pub mem: Option<(u64, u32)>,
    /// The SDM rule that applied, for reports.
    pub rule: &'static str,
}

/// iced's `RflagsBits` as RFLAGS status bits.
pub fn from_iced_rflags(bits: u32) -> u64 {
    use iced_x86::RflagsBits as R;
    [
        (R::OF, OF),
        (R::SF, SF),
        (R::ZF, ZF),
        (R::AF, AF),
        (R::CF, CF),
        (R::PF, PF),
    ]
    .iter()
    .filter(|(r, _)| bits & r != 0)
    .fold(0, |acc, (_, f)| acc | f)
}

/// Operand width in bits of operand `n` (register or memory).
fn width(insn: &Instruction, n: u32) -> u32 {
    match insn.op_kind(n) {
        OpKind::Register => insn.op_register(n).size() as u32 * 8,
        OpKind::Memory => insn.memory_size().size() as u32 * 8,
        _ => 0,
    }
}

/// The shift count operand `n` of `insn` in `case`'s initial state,
/// masked as the CPU masks it (5 bits, 6 with a 64-bit operand).
fn masked_count(case: &Case, insn: &Instruction, n: u32, bits: u32) -> u64 {
    let raw = match insn.op_kind(n) {
        OpKind::Register => case.gpr[1] & 0xff,
        _ => insn.immediate(n) & 0xff,
    };
    raw & if bits == 64 { 0x3f } else { 0x1f }
}

/// GPR index of a general-purpose register, with the mask of its bits.
pub fn reg_bits(r: Register) -> Option<(usize, u64)> {
    let full = r.full_register();
    let idx = (full as usize).checked_sub(Register::RAX as usize)?;
    if idx >= 16 {
        return None;
    }
    let bits = r.size() as u32 * 8;
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    let shift = if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
        8
    } else {
        0
    };
    Some((idx, mask << shift))
}

/// The destination (operand 0) as an undefined register or memory range.
fn undefined_dest(case: &Case, insn: &Instruction, u: &mut Undefined) {
    match insn.op0_kind() {
        OpKind::Register => u.reg = reg_bits(insn.op0_register()),
        OpKind::Memory => u.mem = case.mem.map(|m| (m.addr, m.size)),
        _ => {}
    }
}

/// The undefined parts of one instruction's result.
pub fn undefined_insn(case: &Case, insn: &Instruction) -> Undefined {
    use Mnemonic as M;
    let mut u = Undefined::default();
    match insn.mnemonic() {
        // SDM AND/OR/XOR/TEST: "OF and CF flags are cleared; SF, ZF, PF
        // set according to the result. The state of the AF flag is
        // undefined."
        M::And | M::Or | M::Xor | M::Test => {
            u.flags = AF;
            u.rule = "AND/OR/XOR/TEST: AF undefined";
        }
        // SDM MUL/IMUL: "OF and CF ... The SF, ZF, AF, and PF flags are
        // undefined."
        M::Mul | M::Imul => {
            u.flags = SF | ZF | AF | PF;
            u.rule = "MUL/IMUL: SF ZF AF PF undefined";
        }
        // SDM DIV/IDIV: "The CF, OF, SF, ZF, AF, and PF flags are undefined."
        M::Div | M::Idiv => {
            u.flags = STATUS;
            u.rule = "DIV/IDIV: all status flags undefined";
        }
        // SDM SAL/SAR/SHL/SHR: "The OF flag is affected only on 1-bit
        // shifts ... undefined for other counts. For a non-zero count, the
        // AF flag is undefined. ... CF is undefined for SHL and SHR where
        // the count is greater than or equal to the size of the
        // destination." A masked count of 0 affects no flag.
        M::Shl | M::Sal | M::Shr | M::Sar => {
            let bits = width(insn, 0);
            let c = masked_count(case, insn, 1, bits);
            if c != 0 {
                u.flags = AF;
                u.rule = "shift by 1: AF undefined";
            }
            if c > 1 {
                u.flags |= OF;
                u.rule = "shift by >1: OF AF undefined";
            }
            if c >= u64::from(bits) && insn.mnemonic() != M::Sar {
                u.flags |= CF;
                u.rule = "SHL/SHR by >= width: CF OF AF undefined";
            }
        }
        // SDM RCL/RCR/ROL/ROR: "The OF flag is defined only for the 1-bit
        // rotates; it is undefined in all other cases (except ... a
        // zero-bit rotate does nothing)." The SDM's pseudo-code tests the
        // masked count (before the modulo of RCL/RCR and 8/16-bit ROL/ROR).
        M::Rol | M::Ror | M::Rcl | M::Rcr => {
            let bits = width(insn, 0);
            if masked_count(case, insn, 1, bits) > 1 {
                u.flags = OF;
                u.rule = "rotate by >1: OF undefined";
            }
        }
        // SDM SHLD/SHRD: "If a shift occurs, the AF flag is undefined. ...
        // For shifts greater than 1 bit, the OF flag is undefined. ... If
        // the count is greater than the operand size, the flags are
        // undefined" and "the result in the destination operand is
        // undefined" (only possible with 16-bit operands).
        M::Shld | M::Shrd => {
            let bits = width(insn, 0);
            let c = masked_count(case, insn, 2, bits);
            if c != 0 {
                u.flags = AF;
                u.rule = "SHLD/SHRD by 1: AF undefined";
            }
            if c > 1 {
                u.flags |= OF;
                u.rule = "SHLD/SHRD by >1: OF AF undefined";
            }
            if c > u64::from(bits) {
                u.flags = STATUS;
                undefined_dest(case, insn, &mut u);
                u.rule = "16-bit SHLD/SHRD by >16: result and flags undefined";
            }
        }
        // SDM BT/BTS/BTR/BTC: "The ZF flag is unaffected. The OF, SF, AF,
        // and PF flags are undefined."
        M::Bt | M::Bts | M::Btr | M::Btc => {
            u.flags = OF | SF | AF | PF;
            u.rule = "BT*: OF SF AF PF undefined";
        }
        // SDM DAA/DAS: "The OF flag is undefined."
        M::Daa | M::Das => {
            u.flags = OF;
            u.rule = "DAA/DAS: OF undefined";
        }
        // SDM AAA/AAS: "The OF, SF, ZF, and PF flags are undefined."
        M::Aaa | M::Aas => {
            u.flags = OF | SF | ZF | PF;
            u.rule = "AAA/AAS: OF SF ZF PF undefined";
        }
        // SDM AAM/AAD: "The OF, AF, and CF flags are undefined."
        M::Aam | M::Aad => {
            u.flags = OF | AF | CF;
            u.rule = "AAM/AAD: OF AF CF undefined";
        }
        // SDM BSF/BSR: "The CF, OF, SF, AF, and PF flags are undefined."
        // With a zero source the SDM leaves the destination undefined, but
        // AMD's APM defines it ("does not change the destination"), the
        // interpreter does the same, and it is compared.
        M::Bsf | M::Bsr => {
            u.flags = CF | OF | SF | AF | PF;
            u.rule = "BSF/BSR: CF OF SF AF PF undefined";
        }
        // SDM LZCNT/TZCNT: "The OF, SF, PF and AF flags are undefined."
        M::Lzcnt | M::Tzcnt => {
            u.flags = OF | SF | AF | PF;
            u.rule = "LZCNT/TZCNT: OF SF AF PF undefined";
        }
        // SDM ANDN, BLSI, BLSR: "SF and ZF are updated based on the
        // result ... OF [and CF, per instruction] ... AF and PF flags are
        // undefined." BLSMSK: "SF is updated ... ZF and OF flags are
        // cleared. AF and PF flags are undefined." BZHI: "ZF, CF and SF
        // flags are updated ... OF flag is cleared. AF and PF flags are
        // undefined."
        M::Andn | M::Blsi | M::Blsmsk | M::Blsr | M::Bzhi => {
            u.flags = AF | PF;
            u.rule = "ANDN/BLSI/BLSMSK/BLSR/BZHI: AF PF undefined";
        }
        // SDM BEXTR: "ZF is updated based on the result. AF, SF, and PF
        // are undefined. All other flags are cleared."
        M::Bextr => {
            u.flags = AF | SF | PF;
            u.rule = "BEXTR: AF SF PF undefined";
        }
        // SDM MOV (control registers, debug registers): "The OF, SF, ZF,
        // AF, PF, and CF flags are undefined." (At CPL 3 they fault, and a
        // faulting case compares every flag.)
        M::Mov
            if (0..insn.op_count()).any(|n| {
                insn.op_kind(n) == OpKind::Register
                    && (insn.op_register(n).is_cr() || insn.op_register(n).is_dr())
            }) =>
        {
            u.flags = STATUS;
            u.rule = "MOV CR/DR: all status flags undefined";
        }
        // SDM LAR: with a 32- or 64-bit destination the access rights are
        // "the second doubleword of the segment descriptor masked by
        // 00FxFF00H", x (bits 19:16, the limit's top) undefined. (The AMD
        // host copies the limit bits; ringside clears them.)
        M::Lar if width(insn, 0) >= 32 => {
            u.reg = reg_bits(insn.op0_register()).map(|(i, _)| (i, 0xf_0000));
            u.rule = "LAR r32/r64: bits 19:16 undefined";
        }
        // SDM PUSH: "If the source operand is a segment register (16
        // bits) and the operand size is 64-bits, either a zero-extended
        // value is pushed on the stack or the segment selector is written
        // on the stack using a 16-bit move." (AMD zero-extends, recent
        // Intel cores do the 16-bit move.) The selector's two bytes are
        // compared, the rest of the slot is not.
        M::Push
            if matches!(insn.op0_register(), Register::FS | Register::GS)
                && insn.code().op_code().operand_size() > 16 =>
        {
            let slot = insn.code().op_code().operand_size() / 8;
            let at = case.gpr[4].wrapping_sub(u64::from(slot));
            u.mem = Some((at.wrapping_add(2), slot - 2));
            u.rule = "PUSH FS/GS: the slot's bytes above the selector undefined";
        }
        // SDM RDRAND/RDSEED: the destination receives a random value;
        // the flags are defined (CF = 1, OF = SF = ZF = AF = PF = 0) and
        // compared. The destination's bits are not (those of its full
        // register outside the operand size still are).
        M::Rdrand | M::Rdseed => {
            undefined_dest(case, insn, &mut u);
            u.rule = "RDRAND/RDSEED: random destination";
        }
        // SDM BSWAP: "When the BSWAP instruction references a 16-bit
        // register, the result is undefined."
        M::Bswap if insn.op0_register().size() == 2 => {
            undefined_dest(case, insn, &mut u);
            u.rule = "BSWAP r16: result undefined";
        }
        // Everything else in the suite defines every flag it writes (ADD,
        // ADC, SUB, SBB, CMP, NEG, INC, DEC, XADD, CMPXCHG, CMPXCHG8B/16B,
        // POPCNT, SAHF, CLC/STC/CMC, ADCX, ADOX) or writes none (NOT,
        // MOV*, MOVBE, LEA, XCHG, CMOVcc, SETcc, CBW..CQO, LAHF, MULX,
        // PDEP, PEXT, RORX, SARX/SHLX/SHRX).
        _ => {}
    }
    u
}

/// x87 status-word bits a case leaves undefined, not compared (the hook
/// for condition codes the SDM calls undefined). Empty so far: for every
/// such code the generator reaches, ringside reproduces what the AMD host
/// does (e.g. FFREE clears C1), so all of FSW is compared strictly.
pub fn x87_fsw_undefined(case: &Case) -> u16 {
    let _ = case;
    0
}

/// The undefined parts of a case's result, instruction after
/// instruction: a flag an instruction writes replaces what was undefined
/// before (its own rule then says whether the new value is defined);
/// LAHF copies undefined flags into AH.
///
/// (An instruction that may write nothing, such as a shift by 0, counts as
/// writing its flags; the generator only puts such instructions first,
/// where every flag is defined, so this never hides an undefined one.)
pub fn undefined(case: &Case) -> Undefined {
    let mut all = Undefined::default();
    for insn in &case.insns {
        let u = undefined_insn(case, insn);
        let written = from_iced_rflags(insn.rflags_modified());
        if insn.mnemonic() == Mnemonic::Lahf && all.flags != 0 && all.reg.is_none() {
            all.reg = Some((0, (all.flags & 0xd5) << 8));
            all.rule = "LAHF of undefined flags";
        }
        all.flags = (all.flags & !written) | u.flags;
        if u.reg.is_some() {
            all.reg = u.reg;
        }
        if u.mem.is_some() {
            all.mem = u.mem;
        }
        if !u.rule.is_empty() {
            all.rule = u.rule;
        }
    }
    all
}

/// Bytes of an FXSAVE image that are not compared, as (offset, length)
/// from the start of the image: MXCSR_MASK (offset 28), the mask of the
/// MXCSR bits the processor supports (SDM Vol. 1, 11.6.6): the AMD host
/// reports 0x2FFFF (bit 17, MM, misaligned SSE mode, is an AMD
/// extension), ringside 0xFFFF by design (it does not model MM). Every
/// other byte, reserved and available areas included, is compared.
pub const FXSAVE_UNCHECKED: [(u64, u64); 1] = [(28, 4)];

/// The absolute byte ranges `[start, end)` of `case`'s memory that are
/// not compared (see [`FXSAVE_UNCHECKED`]).
pub fn fxsave_unchecked(case: &Case) -> Vec<(u64, u64)> {
    let fxsave = case
        .insns
        .first()
        .is_some_and(|i| matches!(i.mnemonic(), Mnemonic::Fxsave | Mnemonic::Fxsave64));
    match (fxsave, case.mem) {
        (true, Some(m)) => FXSAVE_UNCHECKED
            .iter()
            .map(|(off, len)| (m.addr + off, m.addr + off + len))
            .collect(),
        _ => Vec::new(),
    }
}

/// An understood divergence between the interpreter and the oracle.
pub struct Known {
    pub mnemonic: Mnemonic,
    /// Describes `applies` precisely.
    pub condition: &'static str,
    pub reason: &'static str,
    /// Does the entry explain this case's divergence? Gets the case, the
    /// oracle's outcome and the interpreter's.
    pub applies: fn(&Case, &Outcome, &Outcome) -> bool,
}

impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} when {}: {}",
            self.mnemonic, self.condition, self.reason
        )
    }
}

/// Divergences that are understood and not (yet) fixed. An entry names
/// one mnemonic (or, with `Mnemonic::INVALID`, any mnemonic with a memory
/// operand: these are addressing rules, not instruction semantics).
pub const KNOWN: &[Known] = &[
    Known {
        mnemonic: Mnemonic::INVALID,
        condition: "LSS/LFS/LGS r64, m16:64 (REX.W) that loads: the host's destination is the \
                zero-extended low 32 bits of the offset, ringside's the 64-bit offset",
        reason: "a vendor difference: AMD CPUs ignore REX.W on LSS/LFS/LGS (m16:32, the \
             selector read at offset 4); ringside models the Intel SDM's m16:64 (it \
             reports a GenuineIntel CPU)",
        applies: amd_far_pointer_load,
    },
    Known {
        mnemonic: Mnemonic::Rcpps,
        condition: APPROX_CONDITION,
        reason: APPROX_REASON,
        applies: approx_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Rcpss,
        condition: APPROX_CONDITION,
        reason: APPROX_REASON,
        applies: approx_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Rsqrtps,
        condition: APPROX_CONDITION,
        reason: APPROX_REASON,
        applies: approx_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Rsqrtss,
        condition: APPROX_CONDITION,
        reason: APPROX_REASON,
        applies: approx_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Fcom,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fcomp,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fcompp,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fucom,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fucomp,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fucompp,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Ficom,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Ficomp,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Ftst,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fcomi,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fcomip,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fucomi,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Fucomip,
        condition: X87_IE_COMPARE_CONDITION,
        reason: X87_IE_COMPARE_REASON,
        applies: x87_unmasked_ie_compare,
    },
    Known {
        mnemonic: Mnemonic::Sha1rnds4,
        condition: SHA_MISALIGNED_CONDITION,
        reason: SHA_MISALIGNED_REASON,
        applies: amd_sha_misaligned,
    },
    Known {
        mnemonic: Mnemonic::Sha1nexte,
        condition: SHA_MISALIGNED_CONDITION,
        reason: SHA_MISALIGNED_REASON,
        applies: amd_sha_misaligned,
    },
    Known {
        mnemonic: Mnemonic::Sha1msg1,
        condition: SHA_MISALIGNED_CONDITION,
        reason: SHA_MISALIGNED_REASON,
        applies: amd_sha_misaligned,
    },
    Known {
        mnemonic: Mnemonic::Sha1msg2,
        condition: SHA_MISALIGNED_CONDITION,
        reason: SHA_MISALIGNED_REASON,
        applies: amd_sha_misaligned,
    },
    Known {
        mnemonic: Mnemonic::Sha256rnds2,
        condition: SHA_MISALIGNED_CONDITION,
        reason: SHA_MISALIGNED_REASON,
        applies: amd_sha_misaligned,
    },
    Known {
        mnemonic: Mnemonic::Sha256msg1,
        condition: SHA_MISALIGNED_CONDITION,
        reason: SHA_MISALIGNED_REASON,
        applies: amd_sha_misaligned,
    },
    Known {
        mnemonic: Mnemonic::Sha256msg2,
        condition: SHA_MISALIGNED_CONDITION,
        reason: SHA_MISALIGNED_REASON,
        applies: amd_sha_misaligned,
    },
    Known {
        mnemonic: Mnemonic::Fsin,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Fcos,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Fsincos,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Fptan,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Fpatan,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
    Known {
        mnemonic: Mnemonic::F2xm1,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Fyl2x,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
    Known {
        mnemonic: Mnemonic::Fyl2xp1,
        condition: X87_TRANSCENDENTAL_CONDITION,
        reason: X87_TRANSCENDENTAL_REASON,
        applies: x87_transcendental_within_bound,
    },
];

const SHA_MISALIGNED_CONDITION: &str = "a legacy SHA instruction whose 16-byte memory operand \
    is not 16-byte aligned: ringside raises #GP(0); the host executes it (no exception) or \
    faults on the access itself (#PF); GPRs and RFLAGS equal";
const SHA_MISALIGNED_REASON: &str = "a vendor difference: the SDM gives SHA1RNDS4, SHA1NEXTE, \
    SHA1MSG1/2, SHA256RNDS2 and SHA256MSG1/2 exception type 4 (legacy SSE: #GP(0) for a \
    misaligned m128); AMD CPUs do not check their alignment (measured natively on the AMD \
    EPYC host with MXCSR.MM = 0, where AESENC, PCLMULQDQ, PCMPGTQ and PADDD do fault on the \
    same operand). ringside follows the SDM (it reports a GenuineIntel CPU)";

/// See [`SHA_MISALIGNED_CONDITION`].
fn amd_sha_misaligned(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let misaligned = case.mem.is_some_and(|m| m.size == 16 && m.addr % 16 != 0);
    let tcg_gp0 = tcg
        .exception
        .is_some_and(|e| e.vector == 13 && e.error_code == 0);
    let oracle_ran = oracle.exception.is_none_or(|e| e.vector == 14);
    misaligned && tcg_gp0 && oracle_ran && oracle.gpr == tcg.gpr && oracle.rflags == tcg.rflags
}

const X87_IE_COMPARE_CONDITION: &str = "an x87 compare raised an unmasked invalid-operation \
    exception (NaN or unsupported operand, or stack underflow): the host still reports \
    unordered (FCOM*/FUCOM*/FICOM*/FTST: C3 C2 C0 = 111; FCOMI*/FUCOMI*: ZF PF CF = 111, \
    OF SF AF = 0), ringside leaves the condition codes / EFLAGS as they were; all other \
    state equal";
const X87_IE_COMPARE_REASON: &str = "a vendor difference: the SDM (FCOM/FCOMP/FCOMPP, \
    FUCOM*, FICOM*, FCOMI*) says the condition code flags / EFLAGS are not set when the \
    invalid-arithmetic-operand exception is unmasked; AMD sets them to unordered anyway \
    (measured; nothing is popped on either). ringside follows the SDM";

/// See [`X87_IE_COMPARE_CONDITION`].
fn x87_unmasked_ie_compare(case: &Case, a: &Outcome, b: &Outcome) -> bool {
    use super::case::{x87_word, x87img, X87_IMAGE};
    let fcomi = matches!(
        case.insns.first().map(|i| i.mnemonic()),
        Some(Mnemonic::Fcomi | Mnemonic::Fcomip | Mnemonic::Fucomi | Mnemonic::Fucomip)
    );
    let (ia, ib) = (&a.simd.x87, &b.simd.x87);
    let fcw = x87_word(ia, x87img::FCW);
    let (fsw_a, fsw_b) = (x87_word(ia, x87img::FSW), x87_word(ib, x87img::FSW));
    let fresh_ie = x87_word(&case.simd.x87, x87img::FSW) & 1 == 0;
    // IE unmasked, raised by the case, on both backends.
    if fcw & 1 != 0 || !fresh_ie || fsw_a & fsw_b & 1 == 0 {
        return false;
    }
    let (cc, fl) = if fcomi {
        (0, ZF | PF | CF | OF | SF | AF)
    } else {
        (0x4500, 0)
    };
    let unordered = if fcomi {
        a.rflags & (ZF | PF | CF | OF | SF | AF) == ZF | PF | CF
    } else {
        fsw_a & 0x4500 == 0x4500
    };
    // The images without the pointer registers, B's FSW condition codes
    // taken from A.
    let strip = |img: &[u8; X87_IMAGE], fsw: u16| {
        let mut v = *img;
        v[x87img::POINTERS..x87img::ST].fill(0);
        v[x87img::FSW..x87img::FSW + 2].copy_from_slice(&fsw.to_le_bytes());
        v
    };
    unordered
        && a.done == b.done
        && a.exception == b.exception
        && a.gpr == b.gpr
        && a.segs == b.segs
        && a.windows == b.windows
        && a.simd.xmm == b.simd.xmm
        && a.simd.mxcsr == b.simd.mxcsr
        && (a.rflags ^ b.rflags) & !fl == 0
        && strip(ia, fsw_a) == strip(ib, (fsw_b & !cc) | (fsw_a & cc))
}

const X87_TRANSCENDENTAL_CONDITION: &str = "the results in ST(0)/ST(1) differ by at most one \
    unit in the last place (64-bit significand or the denormal quantum, same sign; across a \
    binade boundary counted in representable values), FSW differs at most in C1 and PE; FCW, FTW, TOP, the other \
    registers, the exception and all non-x87 state equal";
const X87_TRANSCENDENTAL_REASON: &str = "FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X and \
    FYL2XP1 are approximations whose last bit the SDM leaves to the implementation (Vol. 1, \
    8.3.10: error below one ulp on Pentium and later): ringside rounds a 128-bit evaluation \
    once (after the hardware's 66-bit-π argument reduction), the host's microcode may land on \
    the other neighbour; C1 (rounded up) and PE then follow that choice. Every special \
    operand (zeros, infinities, NaNs, domain errors, out-of-range C2) and every other flag \
    must agree bit for bit";

/// See [`X87_TRANSCENDENTAL_CONDITION`].
fn x87_transcendental_within_bound(_case: &Case, a: &Outcome, b: &Outcome) -> bool {
    use super::case::{x87_st, x87img, X87_IMAGE};
    const C1: u16 = 0x200;
    const PE: u16 = 0x20;
    let (ia, ib) = (&a.simd.x87, &b.simd.x87);
    // Everything but FSW.C1/PE and ST0-ST1 equal (the pointer registers
    // as the plain comparison treats them: not compared).
    let strip = |img: &[u8; X87_IMAGE]| {
        let mut v = *img;
        v[x87img::POINTERS..x87img::ST].fill(0);
        v[x87img::FSW] &= !(PE as u8);
        v[x87img::FSW + 1] &= !((C1 >> 8) as u8);
        v[x87img::ST..x87img::ST + 20].fill(0);
        v
    };
    let rest_equal = a.done == b.done
        && a.exception == b.exception
        && a.gpr == b.gpr
        && a.rflags == b.rflags
        && a.segs == b.segs
        && a.windows == b.windows
        && a.simd.xmm == b.simd.xmm
        && a.simd.mxcsr == b.simd.mxcsr
        && strip(ia) == strip(ib);
    // The position of a finite value (normal or denormal) among the
    // representable ones of its sign.
    let rank = |v: (u16, u64)| -> Option<(bool, u128)> {
        let (se, sig) = v;
        let (neg, e) = (se >> 15 == 1, se & 0x7fff);
        match e {
            0 if sig >> 63 == 0 => Some((neg, u128::from(sig))),
            0x7fff | 0 => None,
            _ if sig >> 63 == 1 => {
                Some((neg, (u128::from(e) << 63) | u128::from(sig & !(1 << 63))))
            }
            _ => None,
        }
    };
    let near = |i: usize| {
        let (x, y) = (x87_st(ia, i), x87_st(ib, i));
        x == y
            || match (rank(x), rank(y)) {
                (Some((sx, rx)), Some((sy, ry))) => sx == sy && rx.abs_diff(ry) <= 1,
                _ => false,
            }
    };
    rest_equal && near(0) && near(1)
}

const APPROX_CONDITION: &str = "the destination lanes differ, every differing lane's source is a \
    normal float with a normal result, and both results are within the SDM's bound \
    (relative error ≤ 1.5·2^-12 of the true 1/x or 1/sqrt(x)); all other state equal";
const APPROX_REASON: &str = "RCPPS/RCPSS/RSQRTPS/RSQRTSS are approximations whose bits the SDM \
    leaves to the implementation (it only bounds the relative error by 1.5·2^-12): the \
    results are compared by that rule, not by value. Special inputs (NaN, ±0, ±∞, \
    denormals, negatives for RSQRT) and tiny results must still agree bit for bit";

/// RCP*/RSQRT*: both results obey the SDM's error bound (see
/// [`APPROX_REASON`]). The true value is computed in host `f64` (1/x and
/// 1/sqrt(x) of a binary32 within 2^-52 relative: far below the bound).
fn approx_within_bound(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let Some(i) = first(case) else {
        return false;
    };
    let m = i.mnemonic();
    let rsqrt = matches!(m, Mnemonic::Rsqrtps | Mnemonic::Rsqrtss);
    let lanes = if matches!(m, Mnemonic::Rcpps | Mnemonic::Rsqrtps) {
        4
    } else {
        1
    };
    let d = (i.op0_register() as usize).wrapping_sub(Register::XMM0 as usize) & 15;
    let same_rest = oracle.exception.is_none()
        && tcg.exception.is_none()
        && oracle.gpr == tcg.gpr
        && oracle.rflags == tcg.rflags
        && oracle.segs == tcg.segs
        && oracle.windows == tcg.windows
        && oracle.simd.mxcsr == tcg.simd.mxcsr
        && (0..16).all(|k| k == d || oracle.simd.xmm[k] == tcg.simd.xmm[k]);
    if !same_rest {
        return false;
    }
    let src: u128 = match i.op1_kind() {
        OpKind::Register => {
            let s = (i.op1_register() as usize).wrapping_sub(Register::XMM0 as usize) & 15;
            case.simd.xmm[s]
        }
        _ => {
            let Some(mt) = case.mem else {
                return false;
            };
            let b = oracle_bytes(case, oracle, mt.addr, 4 * lanes as u64);
            b.iter()
                .rev()
                .fold(0u128, |acc, &x| (acc << 8) | u128::from(x))
        }
    };
    let (o, t) = (oracle.simd.xmm[d], tcg.simd.xmm[d]);
    // The scalar forms keep the upper lanes: those must be equal.
    if lanes == 1 && o >> 32 != t >> 32 {
        return false;
    }
    (0..lanes).all(|k| {
        let lane = |v: u128| (v >> (32 * k)) as u32;
        let (ro, rt) = (lane(o), lane(t));
        if ro == rt {
            return true;
        }
        let x = f64::from(f32::from_bits(lane(src)));
        if !x.is_normal() || (rsqrt && x < 0.0) {
            return false;
        }
        let exact = if rsqrt { 1.0 / x.sqrt() } else { 1.0 / x };
        // Results near the denormal range must agree exactly.
        if exact.abs() < f64::from(f32::MIN_POSITIVE) * 2.0 {
            return false;
        }
        [ro, rt].iter().all(|&r| {
            let r = f64::from(f32::from_bits(r));
            r.is_normal() && (r / exact - 1.0).abs() <= 1.5 / 4096.0
        })
    })
}

fn amd_far_pointer_load(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    use iced_x86::Code as C;
    let Some(i) = case.insns.first() else {
        return false;
    };
    let wide = matches!(
        i.code(),
        C::Lss_r64_m1664 | C::Lfs_r64_m1664 | C::Lgs_r64_m1664
    );
    let Some((r, _)) = reg_bits(i.op0_register()) else {
        return false;
    };
    let others_equal = (0..16).all(|k| k == r || oracle.gpr[k] == tcg.gpr[k]);
    wide && oracle.exception.is_none()
        && tcg.exception.is_none()
        && others_equal
        && oracle.gpr[r] == tcg.gpr[r] & 0xffff_ffff
        && oracle.rflags == tcg.rflags
        && oracle.segs == tcg.segs
}

// (Fixed: a non-canonical operand faults #SS(0) when it is a stack
// reference — an explicit SS: prefix, or an RSP/RBP base without FS:/GS:
// (64-bit mode ignores ES:/CS:/DS:) — and #GP(0) otherwise, as the host
// does; cpu/src/memory.rs, operand_lin. The pinned regression cases in the
// generator keep it fixed.)

fn exception_vectors(oracle: &Outcome, tcg: &Outcome) -> Option<(u8, u8)> {
    Some((oracle.exception?.vector, tcg.exception?.vector))
}

fn crosses_canonical_boundary(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    const HOLE: u64 = 0x0000_8000_0000_0000;
    let crosses = case
        .mem
        .is_some_and(|m| m.addr < HOLE && m.addr + u64::from(m.size) > HOLE);
    let oracle_pf_at_hole = oracle
        .exception
        .is_some_and(|e| e.vector == 14 && e.cr2 == HOLE);
    let tcg_canonical_fault = tcg
        .exception
        .is_some_and(|e| (e.vector == 13 || e.vector == 12) && e.error_code == 0);
    crosses && oracle_pf_at_hole && tcg_canonical_fault
}

/// 48-bit canonical: bits 63..47 all equal.
fn canonical(a: u64) -> bool {
    ((a as i64) << 16 >> 16) as u64 == a
}

/// A way the oracle is known not to be the CPU: on such a case the
/// outcome is the host hypervisor's, and the case counts as "oracle
/// unavailable" (neither pass nor fail).
pub struct Artifact {
    pub condition: &'static str,
    pub reason: &'static str,
    pub applies: fn(&Case, &Outcome, &Outcome) -> bool,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.condition, self.reason)
    }
}

/// kvm-pvm intercepts a #GP raised by ring-3 guest code and hands the
/// instruction to KVM's instruction emulator, which re-executes it and
/// decides what the guest gets. Where that emulator is not the CPU, the
/// oracle's answer is the emulator's. Evidence (the pinned cases of
/// `gen::regressions`): POPCNT with a non-canonical operand gets #UD (the
/// emulator does not implement POPCNT), while the same POPCNT with an
/// RBP base gets #SS (not intercepted: no emulation, the CPU's answer).
pub const PVM_ARTIFACTS: &[Artifact] = &[
    Artifact {
        condition: "kvm-pvm: oracle #UD where ringside raises #GP(0) for a misaligned \
                    16-byte memory operand of an SSE instruction that requires alignment, \
                    or for LDMXCSR of a value with reserved MXCSR bits set",
        reason: "the CPU raised the alignment #GP (SDM Vol. 1, 4.1.1: 16-byte aligned \
                 forms), kvm-pvm handed it to KVM's instruction emulator, which does not \
                 implement this SSE instruction (e.g. PADDUSW, SHUFPS; it does MOVDQA/MOVAPS, \
                 whose misaligned cases agree) and injected #UD",
        applies: emulator_ud_for_sse_alignment,
    },
    Artifact {
        condition: "kvm-pvm: oracle #UD where ringside raises #GP(0) or #SS(0) on a \
                    non-canonical operand of a valid instruction",
        reason: "the CPU raised #GP, kvm-pvm handed it to KVM's instruction emulator, \
                 which does not implement this instruction (e.g. POPCNT, LZCNT, TZCNT, \
                 MOVBE, ADCX/ADOX and every BMI1/BMI2 instruction: measured) and \
                 injected #UD",
        applies: emulator_ud_for_gp,
    },
    Artifact {
        condition: "kvm-pvm: operand crossing 0x0000_8000_0000_0000 (first byte \
                    canonical, last not): oracle #PF with CR2 = 0x0000_8000_0000_0000 \
                    where ringside raises #GP(0)/#SS(0)",
        reason: "the CPU raised #GP (for POPCNT, which KVM's emulator cannot run, the \
                 guest gets #UD there), then KVM's emulator re-executed the instruction, \
                 checked canonicality of the first byte only and faulted on the page \
                 walk of the non-canonical part",
        applies: crosses_canonical_boundary,
    },
    Artifact {
        condition: "kvm-pvm: SLDT/STR m16 with REX.W: the oracle wrote 8 bytes (the \
                    selector zero-extended) where ringside writes the 2 the SDM specifies",
        reason: "the host runs with CR4.UMIP set, so the CPU raised #GP and kvm-pvm \
                 handed the instruction to KVM's instruction emulator, which stores the \
                 selector with the operand size; the SDM: \"When the destination operand \
                 is a memory location, the segment selector is written to memory as a \
                 16-bit quantity, regardless of the operand size\"",
        applies: emulator_wide_sldt,
    },
    Artifact {
        condition: "kvm-pvm: XGETBV/XSETBV at CPL 3 with the guest's CR4.OSXSAVE = 0: \
                    ringside raises #UD, the oracle ran XGETBV or raised #GP(0) for XSETBV",
        reason: "kvm-pvm runs ring-3 code natively under the host's CR4, whose OSXSAVE \
                 is set: the CPU never sees the guest's CR4.OSXSAVE = 0 (SDM XGETBV, \
                 XSETBV: #UD if CR4.OSXSAVE = 0)",
        applies: host_osxsave,
    },
    Artifact {
        condition: "kvm-pvm: LAR/LSL/VERR/VERW of a selector of GDT entry 4 (0x20-0x27, \
                    the guest's 32-bit user code segment): oracle ZF = 0 where ringside \
                    finds the DPL-3 descriptor (ZF = 1)",
        reason: "kvm-pvm runs ring-3 code natively on the host's GDT, whose entry 4 is \
                 not a usable DPL-3 segment; every other entry the suite checks matches \
                 the guest's",
        applies: host_gdt_entry4,
    },
    Artifact {
        condition: "kvm-pvm: INT n / INT3 at CPL 3 to a DPL-0 gate (or past the IDT \
                    limit): ringside raises #GP(n*8+2), the oracle anything else",
        reason: "kvm-pvm's ring 3 runs on the host's IDT: vectors whose host gates are \
                 DPL 3 (#BP, #OF, 0x80) are delivered as if the guest's gate allowed it, \
                 the #GP of the others goes to KVM's instruction emulator, which cannot \
                 emulate a protected-mode INT n and injects #UD (or, for a few vectors, \
                 the host handles the interrupt itself)",
        applies: host_idt_soft_int,
    },
    Artifact {
        condition: "kvm-pvm: far JMP/CALL through memory at CPL 3: oracle #UD where \
                    ringside raises #GP(selector)",
        reason: "the CPU raised #GP, kvm-pvm handed it to KVM's instruction emulator, \
                 which does not emulate this far transfer (e.g. to a TSS selector, a task \
                 switch) and injected #UD",
        applies: emulator_ud_for_far_gp,
    },
    Artifact {
        condition: "kvm-pvm, compatibility mode: oracle #UD where ringside raises another \
                    exception or none",
        reason: "kvm-pvm does not run compatibility-mode code on the CPU: the far jump to \
                 CS 0x23 faults on the host's GDT and KVM's instruction emulator executes \
                 the case (measured: DAA, AAA, AAS, BOUND, ARPL, INTO with OF = 1, ENTER with \
                 a nesting level, far JMP/CALL to a refused selector all get #UD, which the \
                 CPU never raises for them)",
        applies: compat_emulator_ud,
    },
    Artifact {
        condition: "kvm-pvm, compatibility mode: AAM/AAD with the same AX on both, the \
                    oracle's SF, ZF and PF those of the 32-bit EAX, ringside's those of AL \
                    (OF, AF, CF are undefined)",
        reason: "KVM's instruction emulator (which runs compatibility-mode code on kvm-pvm) \
                 computes the flags of AAM/AAD with a 32-bit OR of EAX; the SDM: \"The SF, \
                 ZF, and PF flags are set according to the resulting binary value in the AL \
                 register\"",
        applies: compat_emulator_aam_flags,
    },
    Artifact {
        condition: "kvm-pvm: MMX instruction with a non-canonical operand, both #GP(0)/#SS(0): \
                    the oracle made the x87-to-MMX transition (TOP = 0, no register empty), \
                    ringside left the x87 state as it was",
        reason: "the CPU raised #GP, kvm-pvm handed it to KVM's instruction emulator, which \
                 implements some MMX instructions (MOVD/MOVQ) by running an MMX instruction \
                 on the guest's FPU state to read or write the MM register (that instruction \
                 makes the transition) before its own access faults; the CPU faults first \
                 (the same stores to a #PF page leave the x87 state unchanged on the host: \
                 measured)",
        applies: emulator_mmx_transition,
    },
];

/// The oracle's x87 image is ringside's after the x87-to-MMX transition:
/// same FCW, FSW but TOP = 0 in the oracle, no empty register in the
/// oracle, the same physical registers; everything else equal.
fn emulator_mmx_transition(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    use super::case::{x87_st, x87_word, x87img};
    let mmx = first(case).is_some_and(|i| {
        (0..i.op_count()).any(|n| i.op_kind(n) == OpKind::Register && i.op_register(n).is_mm())
    });
    let same_gp = oracle.exception.is_some()
        && oracle.exception == tcg.exception
        && matches!(exception_vectors(oracle, tcg), Some((12 | 13, 12 | 13)));
    let non_canonical = case.mem.is_some_and(|m| {
        !canonical(m.addr) || !canonical(m.addr.wrapping_add(u64::from(m.size) - 1))
    });
    let (a, b) = (&oracle.simd.x87, &tcg.simd.x87);
    let fsw_a = x87_word(a, x87img::FSW);
    let fsw_b = x87_word(b, x87img::FSW);
    let top_b = usize::from(fsw_b >> 11) & 7;
    let ftw_a = x87_word(a, x87img::FTW);
    let no_empty = (0..8).all(|p| (ftw_a >> (2 * p)) & 3 != 3);
    let regs = (0..8).all(|p| x87_st(a, p) == x87_st(b, (p + 8 - top_b) & 7));
    let rest = oracle.gpr == tcg.gpr
        && oracle.rflags == tcg.rflags
        && oracle.segs == tcg.segs
        && oracle.windows == tcg.windows
        && oracle.simd.xmm == tcg.simd.xmm
        && oracle.simd.mxcsr == tcg.simd.mxcsr;
    mmx && same_gp
        && non_canonical
        && rest
        && x87_word(a, x87img::FCW) == x87_word(b, x87img::FCW)
        && fsw_a == fsw_b & !0x3800
        && no_empty
        && regs
}

fn compat_emulator_ud(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let compat = case.mode == super::case::CaseMode::Compat32;
    let oracle_ud = oracle.exception.is_some_and(|e| e.vector == 6);
    let tcg_ud = tcg.exception.is_some_and(|e| e.vector == 6);
    compat && oracle_ud && !tcg_ud
}

/// The parity flag of the low byte of `v`.
fn parity(v: u64) -> u64 {
    if (v as u8).count_ones().is_multiple_of(2) {
        PF
    } else {
        0
    }
}

fn compat_emulator_aam_flags(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let compat = case.mode == super::case::CaseMode::Compat32;
    let aam = first(case).is_some_and(|i| matches!(i.mnemonic(), Mnemonic::Aam | Mnemonic::Aad));
    let eax = oracle.gpr[0] & 0xffff_ffff;
    let szp = |v: u64, sign: u64| {
        (if v == 0 { ZF } else { 0 }) | (if v & sign != 0 { SF } else { 0 }) | parity(v)
    };
    let al = tcg.gpr[0] & 0xff;
    compat
        && aam
        && oracle.exception.is_none()
        && tcg.exception.is_none()
        && (oracle.gpr[0] ^ tcg.gpr[0]) & 0xffff_ffff == 0
        && (oracle.rflags ^ tcg.rflags) & !STATUS == 0
        && oracle.rflags & (SF | ZF | PF) == szp(eax, 1 << 31)
        && tcg.rflags & (SF | ZF | PF) == szp(al, 0x80)
}

/// The first instruction of `case`.
fn first(case: &Case) -> Option<&Instruction> {
    case.insns.first()
}

/// The windows of two outcomes are equal outside `[at, at + len)`.
fn windows_equal_outside(case: &Case, a: &Outcome, b: &Outcome, at: u64, len: u64) -> bool {
    case.windows.iter().enumerate().all(|(k, w)| {
        let (Some(x), Some(y)) = (a.windows.get(k), b.windows.get(k)) else {
            return false;
        };
        x.len() == y.len()
            && x.iter().zip(y).enumerate().all(|(j, (p, q))| {
                let addr = w.addr + j as u64;
                p == q || (addr >= at && addr < at + len)
            })
    })
}

/// The oracle's bytes `[at, at + len)` (in whichever window holds them).
fn oracle_bytes(case: &Case, oracle: &Outcome, at: u64, len: u64) -> Vec<u8> {
    (at..at + len)
        .filter_map(|addr| {
            case.windows.iter().enumerate().find_map(|(k, w)| {
                let off = addr.checked_sub(w.addr)? as usize;
                oracle.windows.get(k)?.get(off).copied()
            })
        })
        .collect()
}

fn emulator_wide_sldt(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let Some(i) = first(case) else {
        return false;
    };
    let wide = matches!(
        i.code(),
        iced_x86::Code::Sldt_r64m16 | iced_x86::Code::Str_r64m16
    ) && i.op0_kind() == OpKind::Memory;
    let Some(m) = case.mem else {
        return false;
    };
    wide && oracle.exception.is_none()
        && tcg.exception.is_none()
        && oracle.gpr == tcg.gpr
        && oracle.rflags == tcg.rflags
        && windows_equal_outside(case, oracle, tcg, m.addr + 2, 6)
        && oracle_bytes(case, oracle, m.addr + 2, 6) == [0; 6]
}

fn host_osxsave(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let m = first(case).map(|i| i.mnemonic());
    let tcg_ud = tcg.exception.is_some_and(|e| e.vector == 6);
    let oracle_ok = match m {
        Some(Mnemonic::Xgetbv) => oracle.exception.is_none(),
        Some(Mnemonic::Xsetbv) => oracle.exception.is_some_and(|e| e.vector == 13),
        _ => false,
    };
    tcg_ud && oracle_ok
}

/// The selector LAR/LSL/VERR/VERW examine in `case`.
fn checked_selector(case: &Case) -> Option<u16> {
    let i = first(case)?;
    let n = i.op_count().checked_sub(1)?;
    match i.op_kind(n) {
        OpKind::Register => {
            let (idx, _) = reg_bits(i.op_register(n))?;
            Some(*case.gpr.get(idx)? as u16)
        }
        OpKind::Memory => {
            let at = case.mem?.addr;
            let w = case
                .windows
                .iter()
                .find(|w| at >= w.addr && at + 2 <= w.addr + w.init.len() as u64)?;
            let off = (at - w.addr) as usize;
            Some(u16::from_le_bytes([
                *w.init.get(off)?,
                *w.init.get(off + 1)?,
            ]))
        }
        _ => None,
    }
}

fn host_gdt_entry4(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let m = first(case).map(|i| i.mnemonic());
    let checks = matches!(
        m,
        Some(Mnemonic::Lar | Mnemonic::Lsl | Mnemonic::Verr | Mnemonic::Verw)
    );
    checks
        && checked_selector(case).is_some_and(|s| s & !7 == 0x20)
        && oracle.exception.is_none()
        && tcg.exception.is_none()
        && oracle.rflags & ZF == 0
        && tcg.rflags & ZF != 0
}

fn host_idt_soft_int(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let Some(i) = first(case) else {
        return false;
    };
    let vector = match i.mnemonic() {
        Mnemonic::Int => i.immediate8() as u64,
        Mnemonic::Int3 => 3,
        _ => return false,
    };
    let want = (13u8, vector * 8 + 2);
    let tcg_gp = tcg.exception.map(|e| (e.vector, e.error_code)) == Some(want);
    let oracle_gp = oracle.exception.map(|e| (e.vector, e.error_code)) == Some(want);
    tcg_gp && !oracle_gp
}

fn emulator_ud_for_far_gp(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let far = first(case)
        .is_some_and(|i| i.code().is_jmp_far_indirect() || i.code().is_call_far_indirect());
    far && matches!(exception_vectors(oracle, tcg), Some((6, 13)))
}

fn emulator_ud_for_gp(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    let non_canonical = case.mem.is_some_and(|m| {
        !canonical(m.addr) || !canonical(m.addr.wrapping_add(u64::from(m.size) - 1))
    });
    let valid = case.insns.iter().all(|i| !i.is_invalid());
    let gp_or_ss = matches!(exception_vectors(oracle, tcg), Some((6, 12 | 13)));
    non_canonical && valid && gp_or_ss
}

fn emulator_ud_for_sse_alignment(case: &Case, oracle: &Outcome, tcg: &Outcome) -> bool {
    // LDMXCSR with reserved bits: the same #GP(0) → emulator → #UD path.
    let ldmxcsr = case
        .insns
        .iter()
        .any(|i| i.mnemonic() == iced_x86::Mnemonic::Ldmxcsr);
    let misaligned16 = ldmxcsr || case.mem.is_some_and(|m| m.size == 16 && m.addr % 16 != 0);
    let valid = case.insns.iter().all(|i| !i.is_invalid());
    let ud_vs_gp0 = matches!(exception_vectors(oracle, tcg), Some((6, 13)))
        && tcg.exception.as_ref().is_some_and(|e| e.error_code == 0);
    misaligned16 && valid && ud_vs_gp0
}

/// The artifact of the oracle (`pvm`: it is kvm-pvm) that explains a
/// divergence, if any.
pub fn oracle_artifact(
    pvm: bool,
    case: &Case,
    oracle: &Outcome,
    tcg: &Outcome,
) -> Option<&'static Artifact> {
    if !pvm {
        return None;
    }
    PVM_ARTIFACTS
        .iter()
        .find(|a| (a.applies)(case, oracle, tcg))
}

/// The entry of [`KNOWN`] that explains a divergence, if any.
pub fn known(case: &Case, oracle: &Outcome, tcg: &Outcome) -> Option<&'static Known> {
    let m = case.insns.first()?.mnemonic();
    let has_mem = case.mem.is_some();
    KNOWN.iter().find(|k| {
        (k.mnemonic == m || (k.mnemonic == Mnemonic::INVALID && has_mem))
            && (k.applies)(case, oracle, tcg)
    })
}
