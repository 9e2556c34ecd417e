//! The case generator: seeded, reproducible, edge values always in the mix.
//!
//! The suite is a list of mnemonics ([`MNEMONICS`]). Every iced-x86
//! [`Code`] of those mnemonics that is valid in 64-bit mode, legacy
//! encoded, and whose operand kinds the generator knows becomes a *form*;
//! cases take the forms round-robin, so any run of at least
//! `forms().len()` cases covers every form. Each case then chooses:
//!
//! * register or memory operand (for r/m operands), registers of the
//!   operand size (REX-only and high-byte registers included);
//! * operand values: a mix of edge values of the operand width (0, 1, -1,
//!   -2, MIN, MAX, MIN+1, single bits, patterns) and random ones, with
//!   random upper bits around partial registers; shift counts from
//!   0, 1, width-1, width, width+1, 31, 32, 33, 63, 64, 65, 255 ...; DIV
//!   and IDIV dividends built to fit mostly, with #DE cases mixed in;
//! * memory operands: every addressing form (absolute, RIP-relative,
//!   base+disp8/32, base+index*scale+disp, index*scale+disp), 32-bit
//!   address size (0x67) with garbage in the registers' upper halves,
//!   segment prefixes (ignored ones and FS/GS with a base), aligned,
//!   misaligned and page-crossing operands, LOCK on read-modify-write
//!   forms;
//! * faulting cases: #PF (not-present, read-only, supervisor page,
//!   unmapped, crossing into a faulting page), #GP/#SS (non-canonical
//!   addresses, RSP/RBP base or SS override), #UD (LOCK where it is not
//!   allowed), #DE.
//!
//! All randomness comes from one [`Rng`] per case, seeded from the run's
//! seed and the case index.

use super::batch::Alloc;
use super::case::{decode_all, decode_bits, Case, MemTarget, Window};
use super::guest;
use super::policy::reg_bits;
use super::rng::Rng;
#[path = "gen_bmi.rs"]
mod gen_bmi;
#[path = "gen_crypto.rs"]
mod gen_crypto;
#[path = "gen_ext.rs"]
mod gen_ext;
#[path = "gen_legacy.rs"]
mod gen_legacy;
#[path = "gen_mmx.rs"]
mod gen_mmx;
#[path = "gen_more.rs"]
pub(crate) mod gen_more;
#[path = "gen_sse.rs"]
mod gen_sse;
#[path = "gen_sse4.rs"]
mod gen_sse4;
#[path = "gen_x87.rs"]
pub(crate) mod gen_x87;
use cpu::state::rflags;
use iced_x86::{
    Code, Encoder, EncodingKind, IcedError, Instruction, InstructionInfoFactory, MemoryOperand,
    Mnemonic, OpCodeOperandKind as K, Register,
};

/// The mnemonics of this suite.
pub const MNEMONICS: &[Mnemonic] = {
    use Mnemonic as M;
    &[
        M::Add,
        M::Adc,
        M::Sub,
        M::Sbb,
        M::And,
        M::Or,
        M::Xor,
        M::Cmp,
        M::Test,
        M::Inc,
        M::Dec,
        M::Neg,
        M::Not,
        M::Shl,
        M::Sal,
        M::Shr,
        M::Sar,
        M::Rol,
        M::Ror,
        M::Rcl,
        M::Rcr,
        M::Shld,
        M::Shrd,
        M::Mul,
        M::Imul,
        M::Div,
        M::Idiv,
        M::Bt,
        M::Bts,
        M::Btr,
        M::Btc,
        M::Bsf,
        M::Bsr,
        M::Popcnt,
        M::Lzcnt,
        M::Tzcnt,
        M::Mov,
        M::Movzx,
        M::Movsx,
        M::Movsxd,
        M::Cmovo,
        M::Cmovno,
        M::Cmovb,
        M::Cmovae,
        M::Cmove,
        M::Cmovne,
        M::Cmovbe,
        M::Cmova,
        M::Cmovs,
        M::Cmovns,
        M::Cmovp,
        M::Cmovnp,
        M::Cmovl,
        M::Cmovge,
        M::Cmovle,
        M::Cmovg,
        M::Seto,
        M::Setno,
        M::Setb,
        M::Setae,
        M::Sete,
        M::Setne,
        M::Setbe,
        M::Seta,
        M::Sets,
        M::Setns,
        M::Setp,
        M::Setnp,
        M::Setl,
        M::Setge,
        M::Setle,
        M::Setg,
        M::Xchg,
        M::Xadd,
        M::Cmpxchg,
        M::Bswap,
        M::Lea,
        M::Cbw,
        M::Cwde,
        M::Cdqe,
        M::Cwd,
        M::Cdq,
        M::Cqo,
        M::Lahf,
        M::Sahf,
        M::Clc,
        M::Stc,
        M::Cmc,
    ]
};

/// One instruction form: a [`Code`] and its operand kinds.
#[derive(Debug, Clone)]
pub struct Form {
    pub code: Code,
    kinds: Vec<K>,
    lockable: bool,
}

impl Form {
    /// The form of `code` as iced describes it: its operand kinds, and
    /// whether it takes a LOCK prefix.
    pub(crate) fn of(code: Code) -> Form {
        let op = code.op_code();
        Form {
            code,
            kinds: op.op_kinds().to_vec(),
            lockable: op.can_use_lock_prefix(),
        }
    }
}

/// Operand kinds the generator can fill.
fn supported(k: K) -> bool {
    matches!(
        k,
        K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r8_reg
            | K::r8_opcode
            | K::r16_reg
            | K::r16_rm
            | K::r16_opcode
            | K::r32_reg
            | K::r32_rm
            | K::r32_opcode
            | K::r64_reg
            | K::r64_rm
            | K::r64_opcode
            | K::mem
            | K::al
            | K::cl
            | K::ax
            | K::eax
            | K::rax
            | K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8sex64
            | K::imm16
            | K::imm32
            | K::imm32sex64
            | K::imm64
    )
}

/// Every form of the suite's mnemonics.
pub fn forms() -> Vec<Form> {
    Code::values()
        .filter(|c| MNEMONICS.contains(&c.mnemonic()))
        .filter_map(|code| {
            let op = code.op_code();
            if !op.is_instruction() || !op.mode64() || op.encoding() != EncodingKind::Legacy {
                return None;
            }
            let form = Form::of(code);
            form.kinds.iter().all(|k| supported(*k)).then_some(form)
        })
        .chain(gen_bmi::forms())
        .chain(gen_sse::forms())
        .chain(gen_x87::forms())
        .chain(gen_more::forms())
        .chain(gen_mmx::forms())
        .chain(gen_sse4::forms())
        .chain(gen_crypto::forms())
        .chain(gen_legacy::forms())
        .chain(gen_ext::forms())
        .collect()
}

const R8: [Register; 20] = {
    use Register::*;
    [
        AL, CL, DL, BL, AH, CH, DH, BH, SPL, BPL, SIL, DIL, R8L, R9L, R10L, R11L, R12L, R13L, R14L,
        R15L,
    ]
};
const R16: [Register; 16] = {
    use Register::*;
    [
        AX, CX, DX, BX, SP, BP, SI, DI, R8W, R9W, R10W, R11W, R12W, R13W, R14W, R15W,
    ]
};
const R32: [Register; 16] = {
    use Register::*;
    [
        EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, R8D, R9D, R10D, R11D, R12D, R13D, R14D, R15D,
    ]
};
const R64: [Register; 16] = {
    use Register::*;
    [
        RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15,
    ]
};

/// Register (or memory) width in bits of a form's operand kind.
/// The base a segment override adds in the harness guest (64-bit mode:
/// only FS and GS have one).
pub(crate) fn segment_base(seg: Register) -> u64 {
    match seg {
        Register::FS => guest::FS_BASE,
        Register::GS => guest::GS_BASE,
        _ => 0,
    }
}

/// A fault to aim a memory operand of `size` bytes at, one case in
/// `one_in`: a special page (not present, read-only, supervisor; maybe
/// crossing into it), an unmapped address or a non-canonical one.
fn random_fault(rng: &mut Rng, one_in: u64, size: u32) -> Option<FaultTarget> {
    rng.chance(1, one_in).then(|| match rng.below(4) {
        0 | 1 => FaultTarget::Special {
            page: rng
                .pick(&guest::SPECIAL_PAGES)
                .unwrap_or(guest::PAGE_NOT_PRESENT),
            crossing: size > 1 && rng.chance(1, 2),
        },
        2 => FaultTarget::Unmapped,
        _ => FaultTarget::NonCanonical,
    })
}

/// A case's initial RFLAGS: IF and bit 1 set, random status flags and DF.
pub(crate) fn case_rflags(rng: &mut Rng) -> u64 {
    let status = rflags::STATUS | rflags::DF;
    rflags::FIXED1 | rflags::IF | (rng.next_u64() & status)
}

/// [`case_rflags`], with every status flag and DF set one time in eight
/// (the conditions that depend on several flags at once get exercised).
pub(crate) fn case_rflags_skewed(rng: &mut Rng) -> u64 {
    let mut fl = case_rflags(rng);
    if rng.chance(1, 8) {
        fl |= rflags::STATUS | rflags::DF;
    }
    fl
}

fn kind_bits(k: K) -> u32 {
    match k {
        K::r8_or_mem | K::r8_reg | K::r8_opcode | K::al | K::cl => 8,
        K::r16_or_mem | K::r16_reg | K::r16_rm | K::r16_opcode | K::ax => 16,
        K::r32_or_mem | K::r32_reg | K::r32_rm | K::r32_opcode | K::eax => 32,
        _ => 64,
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

fn sext(v: u64, bits: u32) -> i64 {
    let sh = 64 - bits;
    ((v << sh) as i64) >> sh
}

/// An operand of the instruction being built.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Reg(Register),
    Mem,
    Imm(i64),
}

/// The instruction `code` with `ops` (`mem` for the memory operand);
/// `None` for a combination iced refuses (or that the generator cannot
/// express), which the caller retries with other choices.
fn build(code: Code, ops: &[Op], mem: MemoryOperand) -> Option<Instruction> {
    build_inner(code, ops, mem).ok().flatten()
}

fn build_inner(
    code: Code,
    ops: &[Op],
    mem: MemoryOperand,
) -> Result<Option<Instruction>, IcedError> {
    use Op::*;
    // Non-negative immediates (at most 32 bits here) go as u32, negative
    // ones as i32 (the match arms below).
    let wide = |i: i64| i as u32;
    let insn = match *ops {
        [] => Ok(Instruction::with(code)),
        [Reg(a)] => Instruction::with1(code, a),
        [Mem] => Instruction::with1(code, mem),
        [Reg(a), Reg(b)] => Instruction::with2(code, a, b),
        [Reg(a), Mem] => Instruction::with2(code, a, mem),
        [Mem, Reg(b)] => Instruction::with2(code, mem, b),
        [Reg(a), Imm(i)] => Instruction::with2(code, a, i),
        [Mem, Imm(i)] if i < 0 => Instruction::with2(code, mem, i as i32),
        [Mem, Imm(i)] => Instruction::with2(code, mem, wide(i)),
        [Reg(a), Reg(b), Imm(i)] if i < 0 => Instruction::with3(code, a, b, i as i32),
        [Reg(a), Reg(b), Imm(i)] => Instruction::with3(code, a, b, wide(i)),
        [Reg(a), Mem, Imm(i)] if i < 0 => Instruction::with3(code, a, mem, i as i32),
        [Reg(a), Mem, Imm(i)] => Instruction::with3(code, a, mem, wide(i)),
        [Mem, Reg(b), Imm(i)] if i < 0 => Instruction::with3(code, mem, b, i as i32),
        [Mem, Reg(b), Imm(i)] => Instruction::with3(code, mem, b, wide(i)),
        [Reg(a), Reg(b), Reg(c)] => Instruction::with3(code, a, b, c),
        [Mem, Reg(b), Reg(c)] => Instruction::with3(code, mem, b, c),
        _ => return Ok(None),
    }?;
    Ok(Some(insn))
}

/// Shift counts that matter for some width (raw, before masking).
const COUNT_EDGES: [u64; 19] = [
    0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 255,
];

/// Where a faulting memory operand points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultTarget {
    /// Inside, or crossing into, one of the special pages.
    Special { page: u64, crossing: bool },
    /// Canonical but not mapped.
    Unmapped,
    /// Not canonical (or crossing the canonical boundary).
    NonCanonical,
    /// A bit offset far out of the operand (BT* with a register offset).
    FarBitOffset,
}

/// The generator for one run.
pub struct Generator {
    seed: u64,
    forms: Vec<Form>,
    next: u64,
    info: InstructionInfoFactory,
    failures: Vec<Code>,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator {
            seed,
            forms: forms(),
            next: 0,
            info: InstructionInfoFactory::new(),
            failures: Vec::new(),
        }
    }

    pub fn forms(&self) -> &[Form] {
        &self.forms
    }

    /// Keep only the forms `keep` accepts (a focused run).
    pub fn retain_forms(&mut self, keep: impl Fn(&Form) -> bool) {
        self.forms.retain(|f| keep(f));
    }

    /// The next case, laid out through `alloc`; `None` when the batch is
    /// full (start a new batch with a fresh [`Alloc`]).
    pub fn next_case(&mut self, alloc: &mut Alloc) -> Option<Case> {
        if !alloc.has_room(32, 256) {
            return None;
        }
        // A form that cannot be generated is skipped and counted (see
        // `failures`), never run as an empty case that "passes".
        for _ in 0..self.forms.len() {
            let index = self.next;
            self.next += 1;
            let form = self.forms[(index % self.forms.len() as u64) as usize].clone();
            let mut rng = Rng::new(self.seed ^ index.wrapping_mul(0xa076_1d64_78bd_642f));
            // A few tries: some random choices cannot be encoded (AH with
            // a REX prefix); the next try chooses again.
            for _ in 0..16 {
                if let Some(c) = self.try_case(&mut rng, &form, index, alloc) {
                    alloc.commit_case(&c);
                    return Some(c);
                }
            }
            self.failures.push(form.code);
        }
        None
    }

    /// Forms the generator failed to build a case for (a generator bug:
    /// the test asserts there are none).
    pub fn failures(&self) -> &[Code] {
        &self.failures
    }

    fn try_case(
        &mut self,
        rng: &mut Rng,
        form: &Form,
        index: u64,
        alloc: &mut Alloc,
    ) -> Option<Case> {
        if let Some(c) = gen_bmi::try_case(self, rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_sse::try_case(self, rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_x87::try_case(self, rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_more::hook(rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_mmx::try_case(self, rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_sse4::try_case(self, rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_crypto::try_case(self, rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_legacy::try_case(self, rng, form, index, alloc) {
            return c;
        }
        if let Some(c) = gen_ext::try_case(self, rng, form, index, alloc) {
            return c;
        }
        let m = form.code.mnemonic();
        let has_rm = form.kinds.iter().any(|k| {
            matches!(
                k,
                K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem
            )
        });
        let is_lea = form.kinds.contains(&K::mem);
        let mem_form = is_lea || (has_rm && rng.chance(1, 2));
        let is_shift = matches!(
            m,
            Mnemonic::Shl
                | Mnemonic::Sal
                | Mnemonic::Shr
                | Mnemonic::Sar
                | Mnemonic::Rol
                | Mnemonic::Ror
                | Mnemonic::Rcl
                | Mnemonic::Rcr
                | Mnemonic::Shld
                | Mnemonic::Shrd
        );
        let is_div = matches!(m, Mnemonic::Div | Mnemonic::Idiv);

        // Operands other than memory.
        let mut ops = Vec::with_capacity(form.kinds.len());
        let mut mem_bits = 0;
        let mut used_mem = false;
        for &k in &form.kinds {
            let bits = kind_bits(k);
            let op = match k {
                K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem | K::mem
                    if mem_form && !used_mem =>
                {
                    used_mem = true;
                    mem_bits = if k == K::mem { 0 } else { bits };
                    Op::Mem
                }
                K::al => Op::Reg(Register::AL),
                K::cl => Op::Reg(Register::CL),
                K::ax => Op::Reg(Register::AX),
                K::eax => Op::Reg(Register::EAX),
                K::rax => Op::Reg(Register::RAX),
                K::imm8_const_1 => Op::Imm(1),
                K::imm8 if is_shift => Op::Imm(count(rng) as i64),
                K::imm8 => Op::Imm(value(rng, 8) as i64),
                K::imm8sex16 | K::imm8sex32 | K::imm8sex64 => {
                    Op::Imm(i64::from(value(rng, 8) as u8 as i8))
                }
                K::imm16 => Op::Imm(value(rng, 16) as i64),
                K::imm32 => Op::Imm(value(rng, 32) as i64),
                K::imm32sex64 => Op::Imm(i64::from(value(rng, 32) as u32 as i32)),
                K::imm64 => Op::Imm(value(rng, 64) as i64),
                _ => {
                    let table: &[Register] = match bits {
                        8 => &R8,
                        16 => &R16,
                        32 => &R32,
                        _ => &R64,
                    };
                    let mut r = rng.pick(table)?;
                    // DIV/IDIV: keep the divisor out of rDX:rAX mostly, so
                    // that the dividend can be built around it.
                    if is_div && rng.chance(9, 10) {
                        while matches!(r.full_register(), Register::RAX | Register::RDX) {
                            r = rng.pick(table)?;
                        }
                    }
                    Op::Reg(r)
                }
            };
            ops.push(op);
        }

        // Registers the instruction uses (explicitly or implicitly): the
        // address registers are chosen among the others.
        let placeholder = MemoryOperand::with_base_displ(Register::None, guest::DATA_BASE as i64);
        let probe = build(form.code, &ops, placeholder)?;
        let used: Vec<Register> = self
            .info
            .info(&probe)
            .used_registers()
            .iter()
            .map(|u| u.register().full_register())
            .collect();
        let free: Vec<usize> = (0..16).filter(|&i| !used.contains(&R64[i])).collect();

        let mut gpr = [0u64; 16];
        for g in gpr.iter_mut() {
            *g = match rng.below(4) {
                0 | 1 => rng.next_u64(),
                2 => value(rng, 64),
                _ => rng.below(256),
            };
        }

        // Memory operand: target and window.
        let code_addr = alloc.code_addr();
        let mut windows = Vec::new();
        let mut note = String::from(if mem_form { "mem" } else { "reg" });
        let mut target: Option<MemTarget> = None;
        let mut mem_op = placeholder;
        let mut lock = false;
        let mut fault = None;
        let bt_reg_offset = matches!(
            m,
            Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
        ) && matches!(ops.get(1), Some(Op::Reg(_)));
        let mut addr_regs: Vec<(Register, u64)> = Vec::new();
        if mem_form {
            let size = mem_bits / 8;
            if is_lea {
                let (mo, regs) = random_address(rng, &free);
                mem_op = mo;
                addr_regs = regs;
                note = "lea".into();
            } else {
                // A 16-bit bit offset reaches only ±4 KiB: never far.
                let far_ok = bt_reg_offset && mem_bits >= 32;
                if rng.chance(1, 10) {
                    fault = Some(match rng.below(if far_ok { 5 } else { 4 }) {
                        0 | 1 => FaultTarget::Special {
                            page: rng.pick(&guest::SPECIAL_PAGES)?,
                            crossing: size > 1 && rng.chance(1, 2),
                        },
                        2 => FaultTarget::Unmapped,
                        3 => FaultTarget::NonCanonical,
                        _ => FaultTarget::FarBitOffset,
                    });
                }
                let (t, w, n) = place_operand(rng, alloc, size, bt_reg_offset, fault);
                note = n;
                target = Some(MemTarget {
                    addr: t,
                    size: size.max(1),
                });
                if let Some(w) = w {
                    windows.push(w);
                }
                // Segment prefix: the linear address is base + EA.
                let seg = match rng.below(20) {
                    0 => Register::ES,
                    1 => Register::CS,
                    2 => Register::SS,
                    3 => Register::DS,
                    4 | 5 => Register::FS,
                    6 | 7 => Register::GS,
                    _ => Register::None,
                };
                let seg_base = segment_base(seg);
                if seg != Register::None {
                    note.push_str(&format!(" {seg:?}:"));
                }
                let ea = t.wrapping_sub(seg_base);
                let (mo, regs) = solve_address(rng, &free, ea, code_addr, seg)?;
                mem_op = mo;
                addr_regs = regs;
                if form.lockable && rng.chance(1, 4) {
                    lock = true;
                }
            }
        } else if form.lockable && rng.chance(1, 50) {
            // LOCK on a register destination: #UD.
            lock = true;
        }
        if !form.lockable && mem_form && !is_lea && rng.chance(1, 50) {
            // LOCK on an instruction that does not allow it: #UD.
            lock = true;
        }
        if lock {
            note.push_str(" lock");
        }

        let mut insn = build(form.code, &ops, mem_op)?;
        insn.set_has_lock_prefix(lock);
        let mut enc = Encoder::new(64);
        enc.encode(&insn, code_addr).ok()?;
        let code = enc.take_buffer();
        let insns = decode_all(&code, code_addr);
        if insns.len() != 1 || insns.iter().any(|i| i.is_invalid() && !lock) {
            return None;
        }

        // Values of the explicit operands.
        for op in &ops {
            match *op {
                Op::Reg(r) => {
                    let bits = r.size() as u32 * 8;
                    let v = value(rng, bits);
                    set_reg(&mut gpr, r, v);
                }
                Op::Mem => {
                    // (The special pages keep their fixed contents.)
                    let special = (guest::SPECIAL_BASE..guest::SPECIAL_END)
                        .contains(&target.map_or(0, |t| t.addr));
                    if let (Some(t), Some(w), false) = (target, windows.first_mut(), special) {
                        let v = value(rng, t.size * 8);
                        put_bytes(w, t.addr, &v.to_le_bytes()[..t.size as usize]);
                    }
                }
                Op::Imm(_) => {}
            }
        }

        // Mnemonic-specific values.
        if is_shift && form.kinds.contains(&K::cl) {
            let c = count(rng);
            gpr[1] = (gpr[1] & !0xff) | c;
        }
        if is_div {
            let bits = kind_bits(form.kinds[0]);
            let divisor = match ops.first() {
                Some(Op::Reg(r)) => get_reg(&gpr, *r),
                _ => match (target, windows.first()) {
                    (Some(t), Some(w)) => get_bytes(w, t.addr, t.size),
                    _ => rng.next_u64() & mask(bits),
                },
            };
            let (lo, hi) = dividend(rng, divisor, bits, m == Mnemonic::Idiv);
            if bits == 8 {
                gpr[0] = (gpr[0] & !0xffff) | (lo & 0xff) | ((hi & 0xff) << 8);
            } else {
                // The bits above the operand keep their random values: a
                // 32-bit DIV must zero them, narrower ones keep them.
                let mk = mask(bits);
                gpr[0] = (gpr[0] & !mk) | (lo & mk);
                gpr[2] = (gpr[2] & !mk) | (hi & mk);
            }
            if divisor & mask(bits) == 0 {
                note.push_str(" div0");
            }
        }
        if m == Mnemonic::Cmpxchg && rng.chance(1, 2) {
            // Make the comparison succeed.
            let bits = kind_bits(form.kinds[0]);
            let dest = match ops.first() {
                Some(Op::Reg(r)) => get_reg(&gpr, *r),
                _ => match (target, windows.first()) {
                    (Some(t), Some(w)) => get_bytes(w, t.addr, t.size),
                    _ => 0,
                },
            };
            gpr[0] = (gpr[0] & !mask(bits)) | (dest & mask(bits));
            note.push_str(" equal");
        }
        if bt_reg_offset && mem_form {
            // The bit offset register: small (inside the 128-byte window
            // around the operand), or far out for a faulting case.
            if let Some(Op::Reg(r)) = ops.get(1) {
                let bits = r.size() as u32 * 8;
                let off = if fault == Some(FaultTarget::FarBitOffset) {
                    far_bit_offset(rng, bits)
                } else {
                    (rng.below(1024) as i64 - 512) as u64
                };
                set_reg(&mut gpr, *r, off & mask(bits));
            }
        }
        // Address registers last: nothing else may change them.
        for (r, v) in &addr_regs {
            set_reg(&mut gpr, *r, *v);
        }

        // RFLAGS: random status flags and DF (all set now and then).
        let fl = case_rflags_skewed(rng);

        let mut case = Case {
            mode: crate::difftest::case::CaseMode::Long64,
            index,
            pinned: false,
            code_addr,
            code,
            insns,
            gpr,
            rflags: fl,
            simd: Default::default(),
            windows,
            mem: target,
            note,
        };
        if rng.chance(1, 4) {
            add_consumer(rng, &mut case)?;
        }
        Some(case)
    }
}

/// The flags condition code `cc` (the low nibble of Jcc/SETcc/CMOVcc)
/// reads.
fn cc_inputs(cc: u8) -> u64 {
    use rflags::{CF, OF, PF, SF, ZF};
    match cc >> 1 {
        0 => OF,
        1 => CF,
        2 => ZF,
        3 => CF | ZF,
        4 => SF,
        5 => PF,
        6 => SF | OF,
        _ => ZF | SF | OF,
    }
}

const SETCC: [Code; 16] = {
    use Code as C;
    [
        C::Seto_rm8,
        C::Setno_rm8,
        C::Setb_rm8,
        C::Setae_rm8,
        C::Sete_rm8,
        C::Setne_rm8,
        C::Setbe_rm8,
        C::Seta_rm8,
        C::Sets_rm8,
        C::Setns_rm8,
        C::Setp_rm8,
        C::Setnp_rm8,
        C::Setl_rm8,
        C::Setge_rm8,
        C::Setle_rm8,
        C::Setg_rm8,
    ]
};

const CMOVCC: [Code; 16] = {
    use Code as C;
    [
        C::Cmovo_r64_rm64,
        C::Cmovno_r64_rm64,
        C::Cmovb_r64_rm64,
        C::Cmovae_r64_rm64,
        C::Cmove_r64_rm64,
        C::Cmovne_r64_rm64,
        C::Cmovbe_r64_rm64,
        C::Cmova_r64_rm64,
        C::Cmovs_r64_rm64,
        C::Cmovns_r64_rm64,
        C::Cmovp_r64_rm64,
        C::Cmovnp_r64_rm64,
        C::Cmovl_r64_rm64,
        C::Cmovge_r64_rm64,
        C::Cmovle_r64_rm64,
        C::Cmovg_r64_rm64,
    ]
};

const JCC: [Code; 16] = {
    use Code as C;
    [
        C::Jo_rel8_64,
        C::Jno_rel8_64,
        C::Jb_rel8_64,
        C::Jae_rel8_64,
        C::Je_rel8_64,
        C::Jne_rel8_64,
        C::Jbe_rel8_64,
        C::Ja_rel8_64,
        C::Js_rel8_64,
        C::Jns_rel8_64,
        C::Jp_rel8_64,
        C::Jnp_rel8_64,
        C::Jl_rel8_64,
        C::Jge_rel8_64,
        C::Jle_rel8_64,
        C::Jg_rel8_64,
    ]
};

/// Append a flag reader to `case`: SETcc, CMOVcc, Jcc over a NOT, ADC or
/// SBB, RCL or RCR by 1, or LAHF. The interpreter keeps flags lazily, so
/// a reader right after the producer checks the evaluation of conditions
/// from that lazy state, which RFLAGS stored by PUSHF alone never
/// exercises. Only flags the producer defines are read (an undefined flag
/// copied into a register would make the register undefined too), except
/// by LAHF, whose undefined AH bits the policy masks.
fn add_consumer(rng: &mut Rng, case: &mut Case) -> Option<()> {
    let u = super::policy::undefined(case);
    let ccs: Vec<u8> = (0..16u8)
        .filter(|&cc| cc_inputs(cc) & u.flags == 0)
        .collect();
    let cf_defined = u.flags & rflags::CF == 0;
    let at = case.code_addr + case.code.len() as u64;
    let r64 = |rng: &mut Rng| rng.pick(&R64);
    let mut insns: Vec<Instruction> = Vec::new();
    let kind = rng.below(6);
    match kind {
        0..=2 if !ccs.is_empty() => {
            let cc = usize::from(rng.pick(&ccs)?);
            match kind {
                0 => insns.push(Instruction::with1(SETCC[cc], rng.pick(&R8)?).ok()?),
                1 => insns.push(Instruction::with2(CMOVCC[cc], r64(rng)?, r64(rng)?).ok()?),
                _ => {
                    // jcc over `not r64` (3 bytes).
                    let not = Instruction::with1(Code::Not_rm64, r64(rng)?).ok()?;
                    insns.push(Instruction::with_branch(JCC[cc], at + 2 + 3).ok()?);
                    insns.push(not);
                }
            }
        }
        3 if cf_defined => {
            let code = if rng.chance(1, 2) {
                Code::Adc_r64_rm64
            } else {
                Code::Sbb_r64_rm64
            };
            insns.push(Instruction::with2(code, r64(rng)?, r64(rng)?).ok()?);
        }
        4 if cf_defined => {
            let code = if rng.chance(1, 2) {
                Code::Rcl_rm64_1
            } else {
                Code::Rcr_rm64_1
            };
            insns.push(Instruction::with2(code, r64(rng)?, 1u32).ok()?);
        }
        _ if u.reg.is_none() => insns.push(Instruction::with(Code::Lahf)),
        _ => return Some(()),
    }
    let mut enc = Encoder::new(64);
    let mut ip = at;
    let mut bytes = Vec::new();
    for i in &insns {
        let n = enc.encode(i, ip).ok()?;
        ip += n as u64;
        bytes.extend_from_slice(&enc.take_buffer());
    }
    case.code.extend_from_slice(&bytes);
    case.insns = decode_all(&case.code, case.code_addr);
    case.note.push_str(" + flag reader");
    Some(())
}

/// An edge-biased value of `bits` width.
pub fn value(rng: &mut Rng, bits: u32) -> u64 {
    let m = mask(bits);
    let min = 1u64 << (bits - 1);
    let v = match rng.below(24) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => m,
        4 => m - 1,
        5 => min,
        6 => min - 1,
        7 => min + 1,
        8 => rng.below(16),
        9 => 1 << rng.below(u64::from(bits)),
        10 => !(1u64 << rng.below(u64::from(bits))),
        11 => 0x5555_5555_5555_5555,
        12 => 0xaaaa_aaaa_aaaa_aaaa,
        13 => 0x8080_8080_8080_8080,
        14 => 0x0f0f_0f0f_0f0f_0f0f,
        15 => m.wrapping_sub(rng.below(16)),
        16 => min.wrapping_add(rng.below(16)).wrapping_sub(8),
        17 => rng.next_u64() & rng.next_u64(),
        18 => rng.next_u64() | rng.next_u64(),
        _ => rng.next_u64(),
    };
    v & m
}

/// A raw shift count.
fn count(rng: &mut Rng) -> u64 {
    if rng.chance(3, 4) {
        rng.pick(&COUNT_EDGES).unwrap_or(1)
    } else {
        rng.below(256)
    }
}

/// A dividend (low, high halves) for DIV/IDIV by `divisor`: mostly one
/// whose quotient fits, sometimes an arbitrary one (often #DE).
fn dividend(rng: &mut Rng, divisor: u64, bits: u32, signed: bool) -> (u64, u64) {
    let m = mask(bits);
    let d = divisor & m;
    if d == 0 || rng.chance(1, 5) {
        if signed && rng.chance(1, 3) {
            // The IDIV overflow edge: MIN / -1 (when the divisor is -1).
            let min = 1u128 << (2 * bits - 1);
            let n = min;
            return ((n as u64) & m, ((n >> bits) as u64) & m);
        }
        return (value(rng, bits), value(rng, bits));
    }
    let n: u128 = if signed {
        let ds = sext(d, bits) as i128;
        let q = sext(value(rng, bits), bits) as i128;
        let r = (rng.below(ds.unsigned_abs() as u64)) as i128;
        let p = q * ds;
        let n = if p < 0 { p - r } else { p + r };
        n as u128
    } else {
        let q = value(rng, bits) as u128;
        let r = rng.below(d) as u128;
        q * d as u128 + r
    };
    let wide_mask = if bits == 64 {
        u128::MAX
    } else {
        (1u128 << (2 * bits)) - 1
    };
    let n = n & wide_mask;
    ((n as u64) & m, ((n >> bits) as u64) & m)
}

/// A BT* register bit offset (32 or 64 bits wide) whose target unit lies
/// outside guest RAM, non-canonical or unmapped, so that the access
/// faults instead of writing somewhere in the harness: at least 2^30 bits
/// (128 MiB) away from the operand, far beyond the 16 MiB of RAM.
fn far_bit_offset(rng: &mut Rng, bits: u32) -> u64 {
    let top = 1u64 << (bits - 1);
    match rng.below(3) {
        0 => top,                          // the most negative
        1 => top - 1 - rng.below(top / 4), // far positive
        _ => top | rng.below(top / 2),     // far negative
    }
}

fn set_reg(gpr: &mut [u64; 16], r: Register, v: u64) {
    if let Some((i, m)) = reg_bits(r) {
        let shift = m.trailing_zeros();
        gpr[i] = (gpr[i] & !m) | ((v << shift) & m);
    }
}

fn get_reg(gpr: &[u64; 16], r: Register) -> u64 {
    match reg_bits(r) {
        Some((i, m)) => (gpr[i] & m) >> m.trailing_zeros(),
        None => 0,
    }
}

fn put_bytes(w: &mut Window, addr: u64, bytes: &[u8]) {
    for (k, b) in bytes.iter().enumerate() {
        let off = addr.wrapping_add(k as u64).wrapping_sub(w.addr) as usize;
        if let Some(slot) = w.init.get_mut(off) {
            *slot = *b;
        }
    }
}

fn get_bytes(w: &Window, addr: u64, size: u32) -> u64 {
    let mut v = [0u8; 8];
    for (k, b) in v.iter_mut().enumerate().take(size as usize) {
        let off = addr.wrapping_add(k as u64).wrapping_sub(w.addr) as usize;
        *b = w.init.get(off).copied().unwrap_or(0);
    }
    u64::from_le_bytes(v)
}

/// Choose where a memory operand of `size` bytes points; returns the
/// target, its window (if the memory there is compared) and a note.
fn place_operand(
    rng: &mut Rng,
    alloc: &mut Alloc,
    size: u32,
    bt_reg_offset: bool,
    fault: Option<FaultTarget>,
) -> (u64, Option<Window>, String) {
    let size = u64::from(size.max(1));
    match fault {
        Some(FaultTarget::Special { page, crossing }) => {
            let t = if crossing {
                page - 1 - rng.below(size - 1)
            } else {
                page + rng.below(0x1000 - size)
            };
            let start = t.saturating_sub(8).max(guest::SPECIAL_BASE);
            let end = (t + size + 8).min(guest::SPECIAL_END);
            let init = (start..end).map(guest::special_byte).collect();
            let what = match page {
                guest::PAGE_NOT_PRESENT => "not-present",
                guest::PAGE_READ_ONLY => "read-only",
                _ => "supervisor",
            };
            let how = if crossing { "crossing into" } else { "in" };
            (
                t,
                Some(Window { addr: start, init }),
                format!("mem {how} {what} page"),
            )
        }
        Some(FaultTarget::Unmapped) => {
            let t = match rng.below(3) {
                0 => guest::RAM_SIZE + rng.below(0x10_0000),
                1 => guest::TOP_CANONICAL_PAGE - 0x1000 + rng.below(0x1000),
                _ => 0xffff_8000_0000_0000 + rng.below(0x1_0000_0000),
            };
            (t, None, "mem unmapped".into())
        }
        Some(FaultTarget::NonCanonical) => {
            let t = match rng.below(4) {
                0 => 0x8000_0000_0000 + rng.below(0x1000),
                1 => 0xffff_7fff_ffff_f000 + rng.below(0x1000),
                // Crossing the canonical boundary from the (mapped) top
                // canonical page (a byte cannot cross: it starts at the
                // boundary instead).
                2 if size == 1 => 0x8000_0000_0000,
                2 => 0x8000_0000_0000 - 1 - rng.below(size - 1),
                _ => 0x1234_5678_9abc_def0 ^ rng.below(0x1000),
            };
            (t, None, "mem non-canonical".into())
        }
        Some(FaultTarget::FarBitOffset) | None => {
            let far = fault == Some(FaultTarget::FarBitOffset);
            let (len, base_off) = if bt_reg_offset { (128, 64) } else { (64, 0) };
            let cross = !bt_reg_offset && size > 1 && rng.chance(1, 6);
            let (addr, off, what) = if cross {
                // The page boundary falls inside the operand.
                let k = 32;
                let addr = alloc.data(len, Some(k));
                (addr, k - 1 - rng.below(size - 1), "page-crossing")
            } else {
                let addr = alloc.data(len, None);
                let room = if bt_reg_offset { 1 } else { len - size + 1 };
                let off = base_off + rng.below(room);
                if rng.chance(1, 2) || bt_reg_offset {
                    let aligned = off & !(size - 1);
                    (addr, aligned, "aligned")
                } else {
                    (
                        addr,
                        off,
                        if off & (size - 1) == 0 {
                            "aligned"
                        } else {
                            "misaligned"
                        },
                    )
                }
            };
            let init: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let note = if far {
                "mem far bit offset".to_string()
            } else {
                format!("mem {what}")
            };
            (addr + off, Some(Window { addr, init }), note)
        }
    }
}

/// Random addressing for LEA (nothing is accessed): any registers, any
/// displacement, any address size.
fn random_address(rng: &mut Rng, free: &[usize]) -> (MemoryOperand, Vec<(Register, u64)>) {
    let a32 = rng.chance(1, 5);
    let table: &[Register; 16] = if a32 { &R32 } else { &R64 };
    let base = if rng.chance(4, 5) {
        free.get(rng.below(free.len() as u64) as usize)
            .map(|&i| table[i])
    } else {
        None
    };
    let index = if rng.chance(1, 2) {
        free.iter()
            .copied()
            .filter(|&i| i != 4)
            .nth(rng.below(free.len() as u64) as usize % free.len().max(1))
            .map(|i| table[i])
    } else {
        None
    };
    let scale = [1u32, 2, 4, 8][rng.below(4) as usize];
    let (disp, dsize) = match rng.below(3) {
        0 if base.is_some() => (0i64, 0u32),
        1 if base.is_some() => (i64::from(rng.next_u64() as i8), 1),
        _ => (i64::from(rng.next_u64() as i32), 4),
    };
    let mut regs = Vec::new();
    for r in [base, index].into_iter().flatten() {
        regs.push((r, value(rng, 64)));
    }
    let mo = MemoryOperand::new(
        base.unwrap_or(Register::None),
        index.unwrap_or(Register::None),
        if index.is_some() { scale } else { 1 },
        disp,
        dsize,
        false,
        Register::None,
    );
    (mo, regs)
}

/// A memory operand whose effective address is `ea`, in a random
/// addressing form, with the values its registers must hold.
fn solve_address(
    rng: &mut Rng,
    free: &[usize],
    ea: u64,
    code_addr: u64,
    seg: Register,
) -> Option<(MemoryOperand, Vec<(Register, u64)>)> {
    let pick = |rng: &mut Rng, no_rsp: bool| -> Option<usize> {
        let c: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&i| !(no_rsp && i == 4))
            .collect();
        rng.pick(&c)
    };
    // 32-bit address size only when the address fits.
    let a32 = ea < (1 << 32) && rng.chance(1, 8);
    let fits_i32 = |v: i64| i32::try_from(v).is_ok();
    let mut form = rng.below(6);
    let abs_ok = fits_i32(ea as i64) && !a32;
    if (form == 0 && !abs_ok) || free.is_empty() {
        form = if abs_ok { 0 } else { 2 };
    }
    let (base, index, scale, disp, dsize): (Option<Register>, Option<Register>, u32, i64, u32);
    let mut regs = Vec::new();
    let wrap = |v: u64| if a32 { v & 0xffff_ffff } else { v };
    let garbage = |rng: &mut Rng| if a32 { rng.next_u64() << 32 } else { 0 };
    let table: &[Register; 16] = if a32 { &R32 } else { &R64 };
    match form {
        0 => {
            // [disp32]: iced picks the address size from the displacement
            // size here (8: 64-bit, 4: 32-bit with 0x67).
            let ds = if ea < (1 << 31) && rng.chance(1, 4) {
                4
            } else {
                8
            };
            (base, index, scale, disp, dsize) = (None, None, 1, ea as i64, ds);
        }
        1 if !a32 && fits_i32(ea.wrapping_sub(code_addr + 16) as i64) => {
            // [rip + disp32]: iced takes the target as the displacement.
            (base, index, scale, disp, dsize) = (Some(Register::RIP), None, 1, ea as i64, 8);
        }
        1..=3 => {
            // [base + disp]
            let b = pick(rng, false)?;
            let (d, ds) = match rng.below(3) {
                0 => (0i64, 0u32),
                1 => (i64::from(rng.next_u64() as i8), 1),
                _ => (i64::from(rng.next_u64() as i32), 4),
            };
            let v = wrap(ea.wrapping_sub(d as u64)) | garbage(rng);
            regs.push((table[b], v));
            (base, index, scale, disp, dsize) = (Some(table[b]), None, 1, d, ds);
        }
        4 => {
            // [base + index*scale + disp]
            let b = pick(rng, false)?;
            let i = pick(rng, true)?;
            let s = [1u32, 2, 4, 8][rng.below(4) as usize];
            let (d, ds) = if rng.chance(1, 2) {
                (i64::from(rng.next_u64() as i8), 1)
            } else {
                (0, 0)
            };
            let iv = value(rng, 64);
            let bv = ea
                .wrapping_sub(d as u64)
                .wrapping_sub(iv.wrapping_mul(u64::from(s)));
            if b == i {
                // Same register twice: value v with v*(1+s) + d = ea.
                return None;
            }
            regs.push((table[b], wrap(bv) | garbage(rng)));
            regs.push((table[i], wrap(iv) | garbage(rng)));
            (base, index, scale, disp, dsize) = (Some(table[b]), Some(table[i]), s, d, ds);
        }
        _ => {
            // [index*scale + disp32]
            let i = pick(rng, true)?;
            let s = [1u32, 2, 4, 8][rng.below(4) as usize];
            let mut d = i64::from(rng.below(0x2000) as i32 - 0x1000);
            let rem = wrap(ea.wrapping_sub(d as u64)) % u64::from(s);
            d += rem as i64;
            let iv = wrap(ea.wrapping_sub(d as u64)) / u64::from(s);
            regs.push((table[i], iv | garbage(rng)));
            (base, index, scale, disp, dsize) = (None, Some(table[i]), s, d, 4);
        }
    }
    let mo = MemoryOperand::new(
        base.unwrap_or(Register::None),
        index.unwrap_or(Register::None),
        scale,
        disp,
        dsize,
        false,
        seg,
    );
    Some((mo, regs))
}

/// A hand-specified case: code assembled with iced's code assembler at
/// the case's address, an initial state, and the windows it reads or
/// writes. For regression cases (a divergence once found and fixed stays
/// tested with the exact condition that showed it).
pub struct Fixed {
    pub note: &'static str,
    pub gpr: [(usize, u64); 4],
    pub rflags: u64,
    pub mem: Option<MemTarget>,
    pub asm: fn(&mut iced_x86::code_asm::CodeAssembler) -> Result<(), IcedError>,
}

/// Build `f` at the next code address of `alloc`.
pub fn fixed_case(f: &Fixed, index: u64, alloc: &mut Alloc) -> Option<Case> {
    let code_addr = alloc.code_addr();
    let mut a = iced_x86::code_asm::CodeAssembler::new(64).ok()?;
    (f.asm)(&mut a).ok()?;
    let code = a.assemble(code_addr).ok()?;
    let insns = decode_all(&code, code_addr);
    let mut gpr = [0u64; 16];
    for (i, v) in f.gpr {
        if let Some(g) = gpr.get_mut(i) {
            *g = v;
        }
    }
    let windows = match f.mem {
        Some(m) if (guest::SPECIAL_BASE..guest::SPECIAL_END).contains(&m.addr) => {
            let start = m.addr.saturating_sub(8).max(guest::SPECIAL_BASE);
            let end = (m.addr + u64::from(m.size) + 8).min(guest::SPECIAL_END);
            vec![Window {
                addr: start,
                init: (start..end).map(guest::special_byte).collect(),
            }]
        }
        _ => Vec::new(),
    };
    alloc.commit(code.len() as u64);
    Some(Case {
        mode: crate::difftest::case::CaseMode::Long64,
        index,
        pinned: true,
        code_addr,
        code,
        insns,
        gpr,
        rflags: f.rflags,
        simd: Default::default(),
        windows,
        mem: f.mem,
        note: f.note.to_string(),
    })
}

/// Regression cases: divergences found by this suite and fixed, pinned
/// down with the exact condition that showed them. They run first in
/// every run.
pub fn regressions() -> Vec<Fixed> {
    use iced_x86::code_asm::*;
    const RO: u64 = guest::PAGE_READ_ONLY;
    const SUP: u64 = guest::PAGE_SUPERVISOR;
    let fl = rflags::FIXED1 | rflags::IF | rflags::CF | rflags::ZF;
    vec![
        // A shift or rotate by 0 of a memory operand is a read-modify-write
        // access: #PF with W = 1 on a read-only or supervisor page
        // (ringside used to only read it: #PF with W = 0 or no fault).
        Fixed {
            note: "regression: SHL m32 by 0 on a read-only page faults as a write",
            gpr: [(0, 0); 4],
            rflags: fl,
            mem: Some(MemTarget {
                addr: RO + 0x10,
                size: 4,
            }),
            asm: |a| a.shl(dword_ptr(RO + 0x10), 0),
        },
        Fixed {
            note: "regression: ROL m16 by CL=0x20 (masked 0) on a read-only page",
            gpr: [(1, 0x20), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: RO + 0x20,
                size: 2,
            }),
            asm: |a| a.rol(word_ptr(RO + 0x20), cl),
        },
        Fixed {
            note: "regression: SHRD m32, r32, 0 on a read-only page",
            gpr: [(0, 0x1234_5678), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: RO + 0x30,
                size: 4,
            }),
            asm: |a| a.shrd(dword_ptr(RO + 0x30), eax, 0),
        },
        Fixed {
            note: "regression: SHR m8 by 0 on a supervisor page",
            gpr: [(0, 0); 4],
            rflags: fl,
            mem: Some(MemTarget {
                addr: SUP + 0x40,
                size: 1,
            }),
            asm: |a| a.shr(byte_ptr(SUP + 0x40), 0),
        },
        Fixed {
            note:
                "pinned: POPCNT crossing the canonical boundary (kvm-pvm: #UD, the CPU raised #GP)",
            gpr: [(3, 0x7fff_ffff_fffc), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: 0x7fff_ffff_fffc,
                size: 8,
            }),
            asm: |a| a.popcnt(rax, qword_ptr(rbx)),
        },
        Fixed {
            note: "pinned: ES: POPCNT [rbp] non-canonical (the CPU ignores ES: #SS)",
            gpr: [(5, 0x8000_0000_0000), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: 0x8000_0000_0000,
                size: 2,
            }),
            asm: |a| a.popcnt(ax, word_ptr(rbp).es()),
        },
        Fixed {
            note: "pinned: POPCNT [rbx] non-canonical (kvm-pvm: #UD, the CPU raised #GP)",
            gpr: [(3, 0x8000_0000_0000), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: 0x8000_0000_0000,
                size: 8,
            }),
            asm: |a| a.popcnt(rax, qword_ptr(rbx)),
        },
        Fixed {
            note: "pinned: POPCNT [rbp] non-canonical (#SS, not emulated)",
            gpr: [(5, 0x8000_0000_0000), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: 0x8000_0000_0000,
                size: 8,
            }),
            asm: |a| a.popcnt(rax, qword_ptr(rbp)),
        },
        Fixed {
            note: "pinned: ES: ADD [rbp] non-canonical (#SS)",
            gpr: [(5, 0x8000_0000_0000), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: 0x8000_0000_0000,
                size: 8,
            }),
            asm: |a| a.add(qword_ptr(rbp).es(), rax),
        },
        Fixed {
            note: "pinned: ADD [rbp] non-canonical (#SS)",
            gpr: [(5, 0x8000_0000_0000), (0, 0), (0, 0), (0, 0)],
            rflags: fl,
            mem: Some(MemTarget {
                addr: 0x8000_0000_0000,
                size: 8,
            }),
            asm: |a| a.add(qword_ptr(rbp), rax),
        },
    ]
}
