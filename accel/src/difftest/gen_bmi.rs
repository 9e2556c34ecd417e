//! Cases for the bit-manipulation and byte-order instructions the generic
//! generator cannot fill: the VEX-encoded BMI1/BMI2 forms (a third
//! register in VEX.vvvv), ADCX/ADOX, MOVBE and CMPXCHG8B/CMPXCHG16B
//! (a `mem` operand that is really accessed, not an LEA address).
//!
//! A child module of `gen` (declared there with a `#[path]`), so it uses
//! the generic generator's pieces: edge values, operand placement (faulting
//! pages, page crossings, misalignment), addressing forms and segment
//! prefixes, flag readers. What it adds are the values that matter per
//! instruction:
//!
//! * BEXTR: start and length fields at 0, 1, width-1, width, width+1, 64,
//!   128, 255 (and random), with garbage above bit 15 of the control;
//! * BZHI: the index at the same edges, garbage above bit 7;
//! * SARX/SHLX/SHRX and RORX: counts at the masking edges;
//! * PDEP/PEXT: masks that are empty, full, single bits, runs, patterns;
//! * MULX: RDX/EDX edge values (its implicit source), the same register
//!   for both halves now and then (it must hold the high half);
//! * CMPXCHG8B/16B: the comparison made to succeed half the time; the
//!   m128 misaligned now and then (#GP);
//! * ADCX/ADOX: random RFLAGS, so both carry-ins and every other flag
//!   (which must survive) are covered.

use super::{
    add_consumer, count, place_operand, put_bytes, set_reg, solve_address, value, FaultTarget,
    Form, Generator, Op, R16, R32, R64,
};
use crate::difftest::batch::Alloc;
use crate::difftest::case::{decode_all, Case, MemTarget};
use crate::difftest::guest;
use crate::difftest::rng::Rng;
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, OpCodeOperandKind as K, Register};

/// The Codes this generator makes cases for.
const CODES: &[Code] = {
    use Code as C;
    &[
        C::VEX_Andn_r32_r32_rm32,
        C::VEX_Andn_r64_r64_rm64,
        C::VEX_Bextr_r32_rm32_r32,
        C::VEX_Bextr_r64_rm64_r64,
        C::VEX_Blsi_r32_rm32,
        C::VEX_Blsi_r64_rm64,
        C::VEX_Blsmsk_r32_rm32,
        C::VEX_Blsmsk_r64_rm64,
        C::VEX_Blsr_r32_rm32,
        C::VEX_Blsr_r64_rm64,
        C::VEX_Bzhi_r32_rm32_r32,
        C::VEX_Bzhi_r64_rm64_r64,
        C::VEX_Mulx_r32_r32_rm32,
        C::VEX_Mulx_r64_r64_rm64,
        C::VEX_Pdep_r32_r32_rm32,
        C::VEX_Pdep_r64_r64_rm64,
        C::VEX_Pext_r32_r32_rm32,
        C::VEX_Pext_r64_r64_rm64,
        C::VEX_Rorx_r32_rm32_imm8,
        C::VEX_Rorx_r64_rm64_imm8,
        C::VEX_Sarx_r32_rm32_r32,
        C::VEX_Sarx_r64_rm64_r64,
        C::VEX_Shlx_r32_rm32_r32,
        C::VEX_Shlx_r64_rm64_r64,
        C::VEX_Shrx_r32_rm32_r32,
        C::VEX_Shrx_r64_rm64_r64,
        C::Adcx_r32_rm32,
        C::Adcx_r64_rm64,
        C::Adox_r32_rm32,
        C::Adox_r64_rm64,
        C::Movbe_r16_m16,
        C::Movbe_r32_m32,
        C::Movbe_r64_m64,
        C::Movbe_m16_r16,
        C::Movbe_m32_r32,
        C::Movbe_m64_r64,
        C::Cmpxchg8b_m64,
        C::Cmpxchg16b_m128,
    ]
};

/// This generator's forms.
pub(super) fn forms() -> Vec<Form> {
    CODES.iter().map(|&code| Form::of(code)).collect()
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
    if !CODES.contains(&form.code) {
        return None;
    }
    Some(build_case(gen, rng, form, index, alloc))
}

/// The instruction `code` with `ops`: the generic builder, plus the
/// shapes with a VEX.vvvv register that it does not know: `reg, vvvv,
/// mem` (ANDN, MULX, PDEP, PEXT) and `reg, mem, vvvv` (BEXTR, BZHI,
/// SARX/SHLX/SHRX).
fn build(code: Code, ops: &[Op], mem: MemoryOperand) -> Option<Instruction> {
    match *ops {
        [Op::Reg(a), Op::Reg(b), Op::Mem] => Instruction::with3(code, a, b, mem).ok(),
        [Op::Reg(a), Op::Mem, Op::Reg(c)] => Instruction::with3(code, a, mem, c).ok(),
        _ => super::build(code, ops, mem),
    }
}

/// Width in bits of a register operand kind (the r/m kinds included).
fn reg_kind_bits(k: K) -> u32 {
    match k {
        K::r16_reg | K::r16_or_mem => 16,
        K::r32_reg | K::r32_or_mem | K::r32_vvvv => 32,
        _ => 64,
    }
}

/// A start/length/index field of BEXTR/BZHI (8 bits).
fn field(rng: &mut Rng, bits: u32) -> u64 {
    let b = u64::from(bits);
    let edges = [0, 1, 2, b / 2, b - 1, b, b + 1, 63, 64, 65, 127, 128, 255];
    if rng.chance(3, 4) {
        rng.pick(&edges).unwrap_or(0)
    } else {
        rng.below(256)
    }
}

/// Random bits above the low `keep` bits (ignored by the instruction),
/// half the time.
fn garbage(rng: &mut Rng, keep: u32) -> u64 {
    if rng.chance(1, 2) {
        rng.next_u64() & !((1u64 << keep) - 1)
    } else {
        0
    }
}

/// A PDEP/PEXT mask.
fn pdep_mask(rng: &mut Rng, bits: u32) -> u64 {
    match rng.below(4) {
        0 => {
            // A run of ones.
            let len = rng.below(u64::from(bits) + 1);
            let at = rng.below(u64::from(bits));
            let run = if len >= 64 { u64::MAX } else { (1 << len) - 1 };
            run << at
        }
        1 => rng.next_u64() & rng.next_u64() & rng.next_u64(),
        _ => value(rng, bits),
    }
}

fn build_case(
    gen: &mut Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Case> {
    use iced_x86::Mnemonic as M;
    let m = form.code.mnemonic();
    let mem_only = form.kinds.contains(&K::mem);
    let has_rm = form
        .kinds
        .iter()
        .any(|k| matches!(k, K::r32_or_mem | K::r64_or_mem));
    let mem_form = mem_only || (has_rm && rng.chance(1, 2));

    let mut ops = Vec::with_capacity(form.kinds.len());
    for &k in &form.kinds {
        let op = match k {
            K::mem => Op::Mem,
            K::r32_or_mem | K::r64_or_mem if mem_form => Op::Mem,
            K::imm8 => Op::Imm(count(rng) as i64),
            _ => {
                let table: &[Register] = match reg_kind_bits(k) {
                    16 => &R16,
                    32 => &R32,
                    _ => &R64,
                };
                Op::Reg(rng.pick(table)?)
            }
        };
        ops.push(op);
    }
    // MULX: the same register for both halves now and then.
    if m == M::Mulx && rng.chance(1, 8) {
        if let Some(&r) = ops.first() {
            if let Some(o) = ops.get_mut(1) {
                *o = r;
            }
        }
    }

    let placeholder = MemoryOperand::with_base_displ(Register::None, guest::DATA_BASE as i64);
    let probe = build(form.code, &ops, placeholder)?;
    let size = if mem_form {
        probe.memory_size().size() as u32
    } else {
        0
    };
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
        *g = match rng.below(4) {
            0 | 1 => rng.next_u64(),
            2 => value(rng, 64),
            _ => rng.below(256),
        };
    }

    let code_addr = alloc.code_addr();
    let mut windows = Vec::new();
    let mut note = String::from(if mem_form { "mem" } else { "reg" });
    let mut target = None;
    let mut mem_op = placeholder;
    let mut addr_regs = Vec::new();
    let mut lock = false;
    if mem_form {
        let fault = super::random_fault(rng, 10, size);
        let (mut t, w, n) = place_operand(rng, alloc, size, false, fault);
        note = n;
        if m == M::Cmpxchg16b
            && matches!(
                fault,
                Some(FaultTarget::Special {
                    crossing: false,
                    ..
                })
            )
            && rng.chance(1, 2)
        {
            // An aligned m128 in a faulting page: #PF (with the operand's
            // address in CR2) rather than the misalignment #GP. The page's
            // bytes are fixed, and a faulting CMPXCHG16B writes nothing.
            t &= !15;
            note.push_str(" aligned");
        }
        target = Some(MemTarget { addr: t, size });
        if let Some(w) = w {
            windows.push(w);
        }
        let seg = match rng.below(20) {
            0 => Register::ES,
            1 => Register::SS,
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
        lock = if form.lockable {
            rng.chance(1, 4)
        } else {
            // LOCK where it is not allowed (VEX included): #UD.
            rng.chance(1, 50)
        };
    } else if rng.chance(1, 50) {
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

    // Operand values.
    let special = |t: Option<MemTarget>| {
        (guest::SPECIAL_BASE..guest::SPECIAL_END).contains(&t.map_or(0, |t| t.addr))
    };
    for (k, op) in form.kinds.iter().zip(&ops) {
        match *op {
            Op::Reg(r) => set_reg(&mut gpr, r, value(rng, reg_kind_bits(*k))),
            Op::Mem => {
                if let (Some(t), Some(w), false) = (target, windows.first_mut(), special(target)) {
                    let bytes: Vec<u8> = (0..t.size.div_ceil(8))
                        .flat_map(|_| value(rng, 64).to_le_bytes())
                        .take(t.size as usize)
                        .collect();
                    put_bytes(w, t.addr, &bytes);
                }
            }
            Op::Imm(_) => {}
        }
    }
    let bits = form.kinds.first().map_or(64, |k| reg_kind_bits(*k));
    let reg_op = |n: usize| match ops.get(n) {
        Some(Op::Reg(r)) => Some(*r),
        _ => None,
    };
    match m {
        M::Bextr => {
            if let Some(r) = reg_op(2) {
                let ctl = field(rng, bits) | (field(rng, bits) << 8) | garbage(rng, 16);
                set_reg(&mut gpr, r, ctl);
            }
        }
        M::Bzhi => {
            if let Some(r) = reg_op(2) {
                set_reg(&mut gpr, r, field(rng, bits) | garbage(rng, 8));
            }
        }
        M::Sarx | M::Shlx | M::Shrx => {
            if let Some(r) = reg_op(2) {
                set_reg(&mut gpr, r, count(rng) | garbage(rng, 8));
            }
        }
        M::Pdep | M::Pext => {
            if let Some(r) = reg_op(2) {
                set_reg(&mut gpr, r, pdep_mask(rng, bits));
            } else if let (Some(t), Some(w), false) = (target, windows.first_mut(), special(target))
            {
                let v = pdep_mask(rng, bits);
                put_bytes(w, t.addr, &v.to_le_bytes()[..t.size as usize]);
            }
        }
        M::Mulx => {
            gpr[2] = value(rng, 64);
        }
        M::Cmpxchg8b | M::Cmpxchg16b if rng.chance(1, 2) => {
            // Make the comparison succeed: rDX:rAX = the memory operand.
            if let (Some(t), Some(w)) = (target, windows.first()) {
                let half = t.size / 2;
                let lo = super::get_bytes(w, t.addr, half);
                let hi = super::get_bytes(w, t.addr + u64::from(half), half);
                let mk = if half == 8 { u64::MAX } else { 0xffff_ffff };
                gpr[0] = (gpr[0] & !mk) | lo;
                gpr[2] = (gpr[2] & !mk) | hi;
                note.push_str(" equal");
            }
        }
        _ => {}
    }
    for (r, v) in &addr_regs {
        set_reg(&mut gpr, *r, *v);
    }

    let fl = super::case_rflags_skewed(rng);
    let mut case = Case {
        mode: crate::difftest::case::CaseMode::Long64,
        index,
        pinned: false,
        code_addr,
        code,
        insns,
        gpr,
        rflags: fl,
        windows,
        mem: target,
        note,
        simd: Default::default(),
    };
    if rng.chance(1, 4) {
        add_consumer(rng, &mut case)?;
    }
    Some(case)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::difftest::batch::{Backend, CaseRun};
    use crate::difftest::compare::{self, Verdict};
    use crate::AccelError;

    /// Only this generator's forms against the host CPU: a quick,
    /// focused run (the full suite in tests/difftest.rs runs them too,
    /// mixed with everything else). `RINGSIDE_DIFFTEST_CASES` scales it.
    #[test]
    fn bmi_forms_match_the_host_cpu() {
        let cfg = crate::difftest::Config::from_env(8_000);
        let (mut oracle, mut tcg) = match (Backend::kvm(), Backend::tcg()) {
            (Ok(o), Ok(t)) => (o, t),
            (Err(AccelError::Unavailable(why)), _) => {
                eprintln!("skipping: {why}");
                return;
            }
            (Err(e), _) | (_, Err(e)) => panic!("difftest could not start: {e}"),
        };
        let cx = compare::Context {
            seed: cfg.seed,
            names: [oracle.name(), tcg.name()],
            pvm: crate::kvm::probe().kind == crate::kvm::KvmFlavour::Pvm,
        };
        let mut gen = Generator::new(cfg.seed);
        gen.forms = forms();
        let (mut done, mut passed, mut unavailable, mut faulting) = (0u64, 0u64, 0u64, 0u64);
        let mut divergences = Vec::new();
        let mut why: std::collections::BTreeMap<String, u64> = Default::default();
        let mut first = true;
        while done < cfg.cases {
            let mut alloc = Alloc::default();
            let mut cases = Vec::new();
            while done + (cases.len() as u64) < cfg.cases {
                match gen.next_case(&mut alloc) {
                    Some(c) => cases.push(c),
                    None => break,
                }
            }
            if cases.is_empty() {
                break;
            }
            if first {
                // Warm the oracle's page tables (see difftest's module doc).
                oracle.run(&cases).unwrap();
                first = false;
            }
            let a = oracle.run(&cases).unwrap();
            let b = tcg.run(&cases).unwrap();
            for ((case, ra), rb) in cases.iter().zip(&a).zip(&b) {
                done += 1;
                if let CaseRun::Ran(o) = ra {
                    faulting += u64::from(o.exception.is_some());
                }
                match compare::compare(&cx, case, ra, rb).0 {
                    Verdict::Pass => passed += 1,
                    Verdict::OracleUnavailable(w) => {
                        unavailable += 1;
                        *why.entry(format!("{w} [{:?}]", case.insns[0].mnemonic()))
                            .or_default() += 1;
                    }
                    Verdict::Known(k) => {
                        unavailable += 1;
                        *why.entry(k.condition.to_string()).or_default() += 1;
                    }
                    Verdict::Divergence(text) => {
                        let again = oracle.run(std::slice::from_ref(case)).unwrap();
                        if again.first() != Some(ra) {
                            unavailable += 1;
                        } else {
                            divergences.push(text);
                        }
                    }
                }
            }
        }
        eprintln!(
            "gen_bmi: {done} cases, {passed} passed, {unavailable} oracle-unavailable, \
             {faulting} faulting, {} divergences",
            divergences.len()
        );
        for (w, n) in &why {
            eprintln!("  oracle unavailable ({n}): {w}");
        }
        for d in divergences.iter().take(10) {
            eprintln!("{d}");
        }
        assert!(gen.failures().is_empty(), "{:?}", gen.failures());
        assert!(divergences.is_empty());
        assert!(passed * 10 > done * 8, "too few cases compared");
    }
}
