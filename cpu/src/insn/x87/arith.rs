//! x87 arithmetic: FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR in every operand form
//! (m32fp, m64fp, m16int, m32int, ST(0)←ST(0)∘ST(i), ST(i)←ST(i)∘ST(0)
//! and the popping forms), FSQRT, FRNDINT, FSCALE, FPREM/FPREM1,
//! FXTRACT. Results are exact per PC/RC ([`super::softfloat`]); C1 =
//! "rounded up", C0/C2/C3 are left as they were (undefined) except for
//! FPREM/FPREM1.

use super::softfloat::{self, Env};
use super::stack::{self, get, is_empty, set, set_c1, signal, stack_fault};
use super::{check_wait, env, note_pointers, read_src, sti, MemSrc};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{fsw, F80};
use iced_x86::{Code, Instruction};

const ADD: u8 = 0;
const MUL: u8 = 1;
const SUB: u8 = 2;
const SUBR: u8 = 3;
const DIV: u8 = 4;
const DIVR: u8 = 5;

/// Operand forms.
const M32: u8 = 0;
const M64: u8 = 1;
const I16: u8 = 2;
const I32: u8 = 3;
/// ST(0) ← ST(0) ∘ ST(i).
const ST0_STI: u8 = 4;
/// ST(i) ← ST(i) ∘ ST(0).
const STI_ST0: u8 = 5;
/// ST(i) ← ST(i) ∘ ST(0), pop.
const STI_ST0_P: u8 = 6;

macro_rules! forms {
    ($code:expr, $op:expr, $m32:ident, $m64:ident, $i16:ident, $i32:ident, $a:ident, $b:ident, $p:ident) => {
        match $code {
            Code::$m32 => return Some(binop::<{ $op }, M32>),
            Code::$m64 => return Some(binop::<{ $op }, M64>),
            Code::$i16 => return Some(binop::<{ $op }, I16>),
            Code::$i32 => return Some(binop::<{ $op }, I32>),
            Code::$a => return Some(binop::<{ $op }, ST0_STI>),
            Code::$b => return Some(binop::<{ $op }, STI_ST0>),
            Code::$p => return Some(binop::<{ $op }, STI_ST0_P>),
            _ => {}
        }
    };
}

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    forms!(
        code,
        ADD,
        Fadd_m32fp,
        Fadd_m64fp,
        Fiadd_m16int,
        Fiadd_m32int,
        Fadd_st0_sti,
        Fadd_sti_st0,
        Faddp_sti_st0
    );
    forms!(
        code,
        MUL,
        Fmul_m32fp,
        Fmul_m64fp,
        Fimul_m16int,
        Fimul_m32int,
        Fmul_st0_sti,
        Fmul_sti_st0,
        Fmulp_sti_st0
    );
    forms!(
        code,
        SUB,
        Fsub_m32fp,
        Fsub_m64fp,
        Fisub_m16int,
        Fisub_m32int,
        Fsub_st0_sti,
        Fsub_sti_st0,
        Fsubp_sti_st0
    );
    forms!(
        code,
        SUBR,
        Fsubr_m32fp,
        Fsubr_m64fp,
        Fisubr_m16int,
        Fisubr_m32int,
        Fsubr_st0_sti,
        Fsubr_sti_st0,
        Fsubrp_sti_st0
    );
    forms!(
        code,
        DIV,
        Fdiv_m32fp,
        Fdiv_m64fp,
        Fidiv_m16int,
        Fidiv_m32int,
        Fdiv_st0_sti,
        Fdiv_sti_st0,
        Fdivp_sti_st0
    );
    forms!(
        code,
        DIVR,
        Fdivr_m32fp,
        Fdivr_m64fp,
        Fidivr_m16int,
        Fidivr_m32int,
        Fdivr_st0_sti,
        Fdivr_sti_st0,
        Fdivrp_sti_st0
    );
    Some(match code {
        C::Fsqrt => unary::<0>,
        C::Frndint => unary::<1>,
        C::Fscale => fscale,
        C::Fprem => fprem::<false>,
        C::Fprem1 => fprem::<true>,
        C::Fxtract => fxtract,
        _ => return None,
    })
}

/// dst ∘ src for operation `op` (SUBR/DIVR reverse the operands).
fn apply(e: &mut Env, op: u8, dst: F80, src: F80) -> F80 {
    match op {
        ADD => softfloat::add(e, dst, src, false),
        MUL => softfloat::mul(e, dst, src),
        SUB => softfloat::add(e, dst, src, true),
        SUBR => softfloat::add(e, src, dst, true),
        DIV => softfloat::div(e, dst, src),
        _ => softfloat::div(e, src, dst),
    }
}

fn binop<const OP: u8, const FORM: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    let mut e = env(&x);
    // The memory operand first: its fault leaves the FPU untouched.
    let mem = match FORM {
        M32 => Some(read_src(cpu, plat, insn, MemSrc::F32, &mut e)?),
        M64 => Some(read_src(cpu, plat, insn, MemSrc::F64, &mut e)?),
        I16 => Some(read_src(cpu, plat, insn, MemSrc::I16, &mut e)?),
        I32 => Some(read_src(cpu, plat, insn, MemSrc::I32, &mut e)?),
        _ => None,
    };
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    let (d, s) = match FORM {
        ST0_STI => (0, sti(insn, 1)),
        STI_ST0 | STI_ST0_P => (sti(insn, 0), 0),
        _ => (0, 0),
    };
    let empty = is_empty(&x, d) || (mem.is_none() && is_empty(&x, s));
    let result = if empty {
        stack_fault(&mut x, false).then_some(F80::INDEFINITE)
    } else {
        let r = apply(&mut e, OP, get(&x, d), mem.unwrap_or_else(|| get(&x, s)));
        let ok = signal(&mut x, e.flags);
        // No result (an unmasked IE, DE or ZE): nothing was rounded, C1
        // stays 0 (measured on AMD with an unmasked DE).
        set_c1(&mut x, ok && e.up);
        ok.then_some(r)
    };
    if let Some(r) = result {
        set(&mut x, d, r);
        if FORM == STI_ST0_P {
            stack::pop(&mut x);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FSQRT (OP = 0), FRNDINT (OP = 1) on ST(0).
fn unary<const OP: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let (mut x, full) = super::begin_st0(cpu, insn)?;
    if full {
        let mut e = env(&x);
        let v = get(&x, 0);
        let r = if OP == 0 {
            softfloat::sqrt(&mut e, v)
        } else {
            softfloat::round_int(&mut e, v)
        };
        if signal(&mut x, e.flags) {
            set_c1(&mut x, e.up);
            set(&mut x, 0, r);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// Two-operand ST(0), ST(1) operations: underflow check, then `f`.
fn st0_st1(
    cpu: &mut Cpu,
    insn: &Instruction,
    f: impl FnOnce(&mut crate::state::X87State, &mut Env, F80, F80),
) {
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    if is_empty(&x, 0) || is_empty(&x, 1) {
        if stack_fault(&mut x, false) {
            set(&mut x, 0, F80::INDEFINITE);
        }
    } else {
        let mut e = env(&x);
        let (a, b) = (get(&x, 0), get(&x, 1));
        f(&mut x, &mut e, a, b);
    }
    cpu.state.x87 = x;
}

/// FSCALE: ST(0) ← ST(0) × 2^trunc(ST(1)).
fn fscale(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)?;
    st0_st1(cpu, insn, |x, e, a, b| {
        let r = softfloat::scale(e, a, b);
        if signal(x, e.flags) {
            set_c1(x, e.up);
            set(x, 0, r);
        }
    });
    Ok(())
}

/// FPREM / FPREM1: ST(0) ← partial remainder of ST(0) / ST(1); C0, C3,
/// C1 = quotient bits 2, 1, 0; C2 = reduction incomplete.
fn fprem<const IEEE: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    // A stack underflow clears C2 too (its result, the indefinite, is a
    // complete reduction; measured on AMD), as a NaN result does below.
    let x = &mut cpu.state.x87;
    if is_empty(x, 0) || is_empty(x, 1) {
        x.fsw &= !fsw::C2;
    }
    st0_st1(cpu, insn, |x, e, a, b| {
        let (r, q, done) = softfloat::prem(e, a, b, IEEE);
        if signal(x, e.flags) {
            let Some(q) = q else {
                // A NaN or invalid result: C2 and C1 cleared, C0 and C3
                // unchanged (SDM: not specified; measured on AMD).
                x.fsw &= !(fsw::C1 | fsw::C2);
                set(x, 0, r);
                return;
            };
            let mut w = x.fsw & !(fsw::C0 | fsw::C1 | fsw::C2 | fsw::C3);
            if !done {
                w |= fsw::C2;
            } else {
                if q & 4 != 0 {
                    w |= fsw::C0;
                }
                if q & 2 != 0 {
                    w |= fsw::C3;
                }
                if q & 1 != 0 {
                    w |= fsw::C1;
                }
            }
            x.fsw = w;
            set(x, 0, r);
        }
    });
    Ok(())
}

/// FXTRACT: ST(0) ← exponent, then push the significand.
fn fxtract(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    let below = (x.top() + 7) & 7;
    if is_empty(&x, 0) {
        // Underflow only, even with ST(7) full (C1 = 0; measured on AMD).
        if stack_fault(&mut x, false) {
            set(&mut x, 0, F80::INDEFINITE);
            stack::push_unchecked(&mut x, F80::INDEFINITE);
        }
    } else if x.ftw & (1 << below) != 0 {
        if stack_fault(&mut x, true) {
            set(&mut x, 0, F80::INDEFINITE);
            stack::push_unchecked(&mut x, F80::INDEFINITE);
        }
    } else {
        let mut e = env(&x);
        let (ex, sig) = softfloat::xtract(&mut e, get(&x, 0));
        if signal(&mut x, e.flags) {
            set(&mut x, 0, ex);
            stack::push(&mut x, sig);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}
