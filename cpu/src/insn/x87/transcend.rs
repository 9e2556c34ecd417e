//! The x87 transcendental instructions: FSIN, FCOS, FSINCOS, FPTAN,
//! FPATAN, F2XM1, FYL2X, FYL2XP1 (SDM Vol. 2 and Vol. 1, 8.3.10).
//!
//! The special operands follow each instruction's table in the SDM
//! (zeros, infinities, the domain errors that are #IA, the divide-by-zero
//! of FYL2X); NaNs propagate as in arithmetic, unsupported encodings are
//! #IA. Finite results are computed in [`super::wide`] and rounded once,
//! to 64 bits (FCW.PC does not apply to these instructions, Vol. 1,
//! 8.1.5.2) per FCW.RC; C1 reports a rounding up. A result that is exact
//! (a power of two's logarithm, sin 0, 2^1 − 1…) is delivered without
//! PE.
//!
//! FSIN, FCOS, FSINCOS and FPTAN accept |ST(0)| < 2^63: a larger finite
//! operand sets C2 and leaves the stack as it is (no exception); C2 is
//! cleared otherwise. FPTAN pushes 1.0 after its result, FSINCOS pushes
//! the cosine after replacing ST(0) by the sine; both need ST(7) empty
//! (stack overflow otherwise).
//!
//! Outside the SDM's argument ranges (F2XM1: |x| ≤ 1, FYL2XP1:
//! |x| < 1 − √2/2) the results are undefined. ringside does what the
//! AMD host was measured to do: F2XM1 of |x| > 1 and FYL2XP1 of x ≤ −1
//! deliver the operand x unchanged with PE (C1 = 0) (FYL2XP1: for a
//! finite nonzero y; y = ±0 or ±∞ gives the zero or infinity of sign
//! −y); FYL2XP1 of x > −1 is y·log2(1 + x) anywhere.

use super::env;
use super::softfloat::{self, exc, Class, Env, BIAS};
use super::stack::{self, get, is_empty, set, set_c1, signal, stack_fault};
use super::wide::{self, Wide};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{fsw, X87State, F80};
use iced_x86::{Code, Instruction};

const SIN: u8 = 0;
const COS: u8 = 1;
const SINCOS: u8 = 2;
const TAN: u8 = 3;

const ATAN: u8 = 0;
const YL2X: u8 = 1;
const YL2XP1: u8 = 2;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Fsin => trig::<SIN>,
        C::Fcos => trig::<COS>,
        C::Fsincos => trig::<SINCOS>,
        C::Fptan => trig::<TAN>,
        C::F2xm1 => f2xm1,
        C::Fpatan => binary::<ATAN>,
        C::Fyl2x => binary::<YL2X>,
        C::Fyl2xp1 => binary::<YL2XP1>,
        _ => return None,
    })
}

/// The environment of a transcendental: FCW.RC and masks, 64 bits.
fn tenv(x: &X87State) -> Env {
    let mut e = env(x);
    e.pc = 64;
    e
}

/// A finite F80 as a [`Wide`] (exact).
fn widen(a: F80) -> Wide {
    let e = i32::from(a.exp().max(1)) - BIAS;
    Wide::from_sig(a.sign(), e, a.sig)
}

/// Round an inexact result (the truncated 128-bit approximation of a
/// value that is not exactly representable in it) to 64 bits.
fn round(env: &mut Env, w: Wide) -> F80 {
    if w.is_zero() {
        return F80::new(w.neg, 0, 0);
    }
    softfloat::round_f80(env, w.neg, w.e + BIAS, w.m | 1)
}

/// Round a result known to be exact in 128 bits (no sticky bit).
fn round_exact(env: &mut Env, w: Wide) -> F80 {
    if w.is_zero() {
        return F80::new(w.neg, 0, 0);
    }
    softfloat::round_f80(env, w.neg, w.e + BIAS, w.m)
}

/// Round a result that is exact in 128 bits but that the hardware
/// reports as inexact anyway (measured on AMD: 2^±1 − 1, y·log2 of a
/// power of two): PE, and UE when the result is tiny (masked underflow
/// is signalled for tiny inexact results).
fn round_reported_inexact(env: &mut Env, w: Wide) -> F80 {
    let v = round_exact(env, w);
    env.flags |= exc::PE;
    if v.exp() == 0 && v.sig != 0 {
        env.flags |= exc::UE;
    }
    v
}

const INF: u64 = 1 << 63;

fn inf(neg: bool) -> F80 {
    F80::new(neg, 0x7fff, INF)
}

/// The NaN/unsupported prologue of a one-operand instruction.
fn nan1(env: &mut Env, a: F80) -> Option<F80> {
    match a.class() {
        Class::Unsupported => {
            env.flags |= exc::IE;
            Some(F80::INDEFINITE)
        }
        Class::SNaN | Class::QNaN => Some(softfloat::propagate(env, a, a)),
        _ => None,
    }
}

/// The outcome of FSIN/FCOS/FSINCOS/FPTAN's evaluation.
enum Trig {
    /// |x| ≥ 2^63: C2 = 1, nothing else changes.
    OutOfRange,
    /// ST(0)'s new value and the pushed one, if any.
    Done(F80, Option<F80>),
}

/// Evaluate a trigonometric instruction on `a`.
fn trig_eval(env: &mut Env, op: u8, a: F80) -> Trig {
    let pair = |v: F80| Trig::Done(v, (op == SINCOS || op == TAN).then_some(v));
    if let Some(r) = nan1(env, a) {
        return pair(r);
    }
    match a.class() {
        Class::Inf => {
            env.flags |= exc::IE;
            return pair(F80::INDEFINITE);
        }
        Class::Zero => {
            return match op {
                SIN => Trig::Done(a, None),
                COS => Trig::Done(F80::ONE, None),
                SINCOS => Trig::Done(a, Some(F80::ONE)),
                _ => Trig::Done(a, Some(F80::ONE)),
            };
        }
        Class::Denormal => env.flags |= exc::DE,
        _ => {}
    }
    let w = widen(a);
    if w.e >= 63 {
        return Trig::OutOfRange;
    }
    let (s, c) = wide::sin_cos(w.neg, (w.m >> 64) as u64, w.e);
    match op {
        SIN => Trig::Done(round(env, s), None),
        COS => Trig::Done(round(env, c), None),
        SINCOS => {
            // C1 reports the sine's rounding (measured on AMD).
            let cv = round(env, c);
            let sv = round(env, s);
            Trig::Done(sv, Some(cv))
        }
        _ => Trig::Done(round(env, s.div(c)), Some(F80::ONE)),
    }
}

/// FSIN, FCOS, FSINCOS, FPTAN.
fn trig<const OP: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    x.fsw &= !fsw::C2;
    let pushes = OP == SINCOS || OP == TAN;
    let below = (x.top() + 7) & 7;
    let underflow = is_empty(&x, 0);
    if underflow || (pushes && x.ftw & (1 << below) != 0) {
        // Underflow takes precedence (C1 = 0); the masked response
        // writes the indefinite to ST(0) and, for the pushing forms,
        // pushes another.
        if stack_fault(&mut x, !underflow) {
            set(&mut x, 0, F80::INDEFINITE);
            if pushes {
                stack::push_unchecked(&mut x, F80::INDEFINITE);
            }
        }
        cpu.state.x87 = x;
        return Ok(());
    }
    let mut e = tenv(&x);
    match trig_eval(&mut e, OP, get(&x, 0)) {
        Trig::OutOfRange => x.fsw |= fsw::C2,
        Trig::Done(r, pushed) => {
            if signal(&mut x, e.flags) {
                set_c1(&mut x, e.up);
                set(&mut x, 0, r);
                if let Some(p) = pushed {
                    stack::push_unchecked(&mut x, p);
                }
            }
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// 2^a − 1.
fn f2xm1_eval(env: &mut Env, a: F80) -> F80 {
    if let Some(r) = nan1(env, a) {
        return r;
    }
    match a.class() {
        Class::Zero => return a,
        Class::Inf => {
            return if a.sign() { F80::ONE.negate() } else { a };
        }
        Class::Denormal => env.flags |= exc::DE,
        _ => {}
    }
    let w = widen(a);
    if w.e > 0 || (w.e == 0 && w.m != 1 << 127) {
        // |x| > 1, undefined by the SDM: the AMD host leaves the operand
        // as it is and reports an inexact result (C1 = 0); so does
        // ringside.
        env.flags |= exc::PE;
        env.up = false;
        return a;
    }
    if w.e == 0 {
        // 2^1 − 1 = 1 and 2^-1 − 1 = −1/2: exact, yet reported inexact
        // (measured on AMD: PE, C1 = 0).
        let one = if w.neg {
            Wide::ONE.scale(-1).neg()
        } else {
            Wide::ONE
        };
        return round_reported_inexact(env, one);
    }
    round(env, wide::exp2m1(w))
}

/// F2XM1: ST(0) ← 2^ST(0) − 1.
fn f2xm1(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let (mut x, full) = super::begin_st0(cpu, insn)?;
    if full {
        let mut e = tenv(&x);
        let r = f2xm1_eval(&mut e, get(&x, 0));
        if signal(&mut x, e.flags) {
            set_c1(&mut x, e.up);
            set(&mut x, 0, r);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// The NaN/unsupported prologue of a two-operand instruction, then DE.
fn nan2(env: &mut Env, a: F80, b: F80) -> Option<F80> {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        env.flags |= exc::IE;
        return Some(F80::INDEFINITE);
    }
    if a.is_nan() || b.is_nan() {
        return Some(softfloat::propagate(env, a, b));
    }
    None
}

fn denormal(env: &mut Env, a: F80, b: F80) {
    if a.class() == Class::Denormal || b.class() == Class::Denormal {
        env.flags |= exc::DE;
    }
}

fn invalid(env: &mut Env) -> F80 {
    env.flags |= exc::IE;
    F80::INDEFINITE
}

/// FPATAN: atan2(y = ST(1), x = ST(0)).
fn atan_eval(env: &mut Env, x: F80, y: F80) -> F80 {
    if let Some(r) = nan2(env, x, y) {
        return r;
    }
    denormal(env, x, y);
    let (cx, cy) = (x.class(), y.class());
    let half_pi = wide::half_pi();
    let signed = |w: Wide| if y.sign() { w.neg() } else { w };
    match (cy, cx) {
        (Class::Zero, _) => {
            if x.sign() {
                round(env, signed(half_pi.scale(1)))
            } else {
                y
            }
        }
        (Class::Inf, Class::Inf) => {
            let q = half_pi.scale(-1);
            let a = if x.sign() { half_pi.add(q) } else { q };
            round(env, signed(a))
        }
        (Class::Inf, _) | (_, Class::Zero) => round(env, signed(half_pi)),
        (_, Class::Inf) => {
            if x.sign() {
                round(env, signed(half_pi.scale(1)))
            } else {
                F80::new(y.sign(), 0, 0)
            }
        }
        _ => round(env, wide::atan2(widen(y), widen(x))),
    }
}

/// FYL2X: y·log2(x), y = ST(1), x = ST(0).
fn yl2x_eval(env: &mut Env, x: F80, y: F80) -> F80 {
    if let Some(r) = nan2(env, x, y) {
        return r;
    }
    let (cx, cy) = (x.class(), y.class());
    if x.sign() && cx != Class::Zero {
        return invalid(env);
    }
    match cx {
        Class::Zero => {
            return match cy {
                Class::Zero => invalid(env),
                Class::Inf => inf(!y.sign()),
                _ => {
                    env.flags |= exc::ZE;
                    inf(!y.sign())
                }
            };
        }
        Class::Inf => {
            return if cy == Class::Zero {
                invalid(env)
            } else {
                denormal(env, x, y);
                inf(y.sign())
            };
        }
        _ => {}
    }
    let wx = widen(x);
    let one = wx == Wide::ONE;
    let below_one = wx.e < 0;
    if one && cy == Class::Inf {
        return invalid(env);
    }
    denormal(env, x, y);
    match cy {
        Class::Inf => return inf(y.sign() != below_one),
        Class::Zero => return F80::new(y.sign() != below_one, 0, 0),
        _ => {}
    }
    if one {
        return F80::new(y.sign(), 0, 0);
    }
    let l = wide::log2(wx);
    let r = widen(y).mul(l);
    // A power of two: log2 is an integer, the product exact (yet
    // reported inexact, as the AMD host does: PE, C1 = 0).
    if wx.m == 1 << 127 {
        round_reported_inexact(env, r)
    } else {
        round(env, r)
    }
}

/// FYL2XP1: y·log2(x + 1), y = ST(1), x = ST(0).
fn yl2xp1_eval(env: &mut Env, x: F80, y: F80) -> F80 {
    if let Some(r) = nan2(env, x, y) {
        return r;
    }
    let (cx, cy) = (x.class(), y.class());
    if cx == Class::Inf {
        // Outside the SDM's domain: as log2 of +∞, invalid for −∞.
        return if x.sign() || cy == Class::Zero {
            invalid(env)
        } else {
            denormal(env, x, y);
            inf(y.sign())
        };
    }
    if cx == Class::Zero {
        if cy == Class::Inf {
            return invalid(env);
        }
        denormal(env, x, y);
        return F80::new(y.sign() != x.sign(), 0, 0);
    }
    let wx = widen(x);
    denormal(env, x, y);
    // y = ±∞ or ±0: the signed infinity or zero, log2(1 + x) counting
    // as negative for every x < 0 (also for x ≤ −1, measured on AMD).
    match cy {
        Class::Inf => return inf(y.sign() != x.sign()),
        Class::Zero => return F80::new(y.sign() != x.sign(), 0, 0),
        _ => {}
    }
    if wx.neg && (wx.e, wx.m) >= (0, 1 << 127) {
        // x ≤ −1 with a finite y (log2 of zero or of a negative number;
        // undefined by the SDM): the AMD host delivers x itself as the
        // result, inexact (C1 = 0); so does ringside.
        env.flags |= exc::PE;
        env.up = false;
        return x;
    }
    // |x| < 0.25 keeps x / (2 + x) within the series' range.
    let l = if wx.e < -2 {
        wide::log2_1p(wx)
    } else {
        wide::log2(Wide::ONE.add(wx))
    };
    round(env, widen(y).mul(l))
}

/// FPATAN, FYL2X, FYL2XP1: ST(1) ← f(ST(1), ST(0)), pop.
fn binary<const OP: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    if is_empty(&x, 0) || is_empty(&x, 1) {
        if stack_fault(&mut x, false) {
            set(&mut x, 1, F80::INDEFINITE);
            stack::pop(&mut x);
        }
    } else {
        let mut e = tenv(&x);
        let (a, b) = (get(&x, 0), get(&x, 1));
        let r = match OP {
            ATAN => atan_eval(&mut e, a, b),
            YL2X => yl2x_eval(&mut e, a, b),
            _ => yl2xp1_eval(&mut e, a, b),
        };
        if signal(&mut x, e.flags) {
            set_c1(&mut x, e.up);
            set(&mut x, 1, r);
            stack::pop(&mut x);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_fcw(0x037f)
    }

    #[test]
    fn specials() {
        let mut e = env();
        // log2(8) × 3 = 9 exactly.
        let r = yl2x_eval(&mut e, softfloat::from_int(8), softfloat::from_int(3));
        assert_eq!(r, softfloat::from_int(9));
        assert_eq!(e.flags, exc::PE);
        let mut e = env();
        // log2(0) × 1: −∞ with ZE; log2(−1): invalid.
        let r = yl2x_eval(&mut e, F80::ZERO, F80::ONE);
        assert_eq!(r, inf(true));
        assert_eq!(e.flags, exc::ZE);
        let mut e = env();
        assert_eq!(
            yl2x_eval(&mut e, F80::ONE.negate(), F80::ONE),
            F80::INDEFINITE
        );
        assert_eq!(e.flags, exc::IE);
        // 2^-∞ − 1 = −1 exactly; 2^1 − 1 = 1, flagged inexact (as the
        // host does).
        let mut e = env();
        assert_eq!(f2xm1_eval(&mut e, inf(true)), F80::ONE.negate());
        assert_eq!(e.flags, 0);
        assert_eq!(f2xm1_eval(&mut e, F80::ONE), F80::ONE);
        assert_eq!(e.flags, exc::PE);
        // Out of range: the operand, inexact.
        let mut e = env();
        let two = softfloat::from_int(2);
        assert_eq!(f2xm1_eval(&mut e, two), two);
        assert_eq!(e.flags, exc::PE);
        // sin of a tiny value is below it: rounded down (RC = 01) to
        // one unit less.
        let mut e = Env::from_fcw(0x077f);
        let d = F80::new(false, 0, 0x180a_51fe_8df7_d62c);
        let Trig::Done(s, None) = trig_eval(&mut e, SIN, d) else {
            panic!("sin denormal");
        };
        assert_eq!(s, F80::new(false, 0, 0x180a_51fe_8df7_d62b));
        // sin, cos of 2^63: out of range; of ∞: invalid.
        let big = F80::new(false, (BIAS + 63) as u16, INF);
        assert!(matches!(trig_eval(&mut e, SIN, big), Trig::OutOfRange));
        assert!(matches!(
            trig_eval(&mut e, COS, inf(false)),
            Trig::Done(F80::INDEFINITE, None)
        ));
    }

    #[test]
    fn values() {
        let mut e = env();
        // sin(1) = 0.84147098480789650665… → 0xd76aa47848677021 × 2^-64.
        let Trig::Done(s, None) = trig_eval(&mut e, SIN, F80::ONE) else {
            panic!("sin 1");
        };
        assert_eq!(s, F80::new(false, 0x3ffe, 0xd76a_a478_4867_7021));
        assert_eq!(e.flags, exc::PE);
        // atan2(1, −1) = 3π/4.
        let r = atan_eval(&mut e, F80::ONE.negate(), F80::ONE);
        assert_eq!(r, F80::new(false, 0x4000, 0x96cb_e3f9_990e_91a8));
        // sin(2^62): reduced modulo π₆₆/2, as the hardware does (the
        // true sine is −0.9184…; this is sin(2^62 mod π₆₆…)).
        let Trig::Done(s, None) = trig_eval(&mut e, SIN, F80::new(false, 0x403d, INF)) else {
            panic!("sin 2^62");
        };
        assert_eq!(s, F80::new(true, 0x3ffe, 0xb506_a9dd_559c_f157));
    }
}
