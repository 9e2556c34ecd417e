//! Exact arithmetic on the x87 80-bit double extended-precision format,
//! written for ringside (no host floating point anywhere).
//!
//! Values are [`F80`]s: a 15-bit biased exponent and a 64-bit significand
//! with an explicit integer bit (SDM Vol. 1, 4.2.2 and 8.2.2). Every
//! operation works on the exact value in 128-bit integers (64 significand
//! bits plus 64 guard bits and a sticky bit) and rounds once, in
//! [`round`], with the precision control (24/53/64-bit significand) and
//! rounding control of the FCW, the extended exponent range, and the x86
//! rules: tininess detected *after* rounding, masked underflow signalled
//! only when tiny and inexact, unmasked overflow/underflow delivering the
//! result with its exponent wrapped by 24576 (SDM Vol. 1, 8.5.4/8.5.5).
//!
//! Encodings the 387 and later reject (unnormals, pseudo-NaNs,
//! pseudo-infinities) are "unsupported": an invalid operation with the
//! QNaN indefinite as masked result. Pseudo-denormals are accepted as
//! denormals (SDM Vol. 1, 8.2.2).

use crate::state::F80;

/// Exception flag bits, as in FSW and FCW (SDM Vol. 1, 8.1.3).
pub(crate) mod exc {
    pub const IE: u8 = 1;
    pub const DE: u8 = 2;
    pub const ZE: u8 = 4;
    pub const OE: u8 = 8;
    pub const UE: u8 = 0x10;
    pub const PE: u8 = 0x20;
}
use exc::*;

/// The rounding environment of one operation and what it raised.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Env {
    /// Significand bits of results: 24, 53 or 64 (FCW.PC).
    pub pc: u32,
    /// FCW.RC: 0 nearest-even, 1 down, 2 up, 3 toward zero.
    pub rc: u8,
    /// FCW exception masks (bits 0-5; set = masked).
    pub masks: u8,
    /// Exceptions raised so far.
    pub flags: u8,
    /// The last rounding increased the magnitude (becomes FSW.C1).
    pub up: bool,
    /// A single/double memory source was a denormal: DE, but only once
    /// the operation has passed the higher-priority checks (NaN operands,
    /// invalid operations; SDM Vol. 1, 4.9.2), like a denormal register
    /// operand. Measured on AMD: QNaN + m32 denormal raises no DE.
    pub src_denormal: bool,
}

impl Env {
    /// The environment an FCW value selects. PC = 01 is reserved; it
    /// rounds like 64 bits here.
    pub(crate) fn from_fcw(fcw: u16) -> Env {
        Env {
            pc: match (fcw >> 8) & 3 {
                0 => 24,
                2 => 53,
                _ => 64,
            },
            rc: ((fcw >> 10) & 3) as u8,
            masks: (fcw & 0x3f) as u8,
            flags: 0,
            up: false,
            src_denormal: false,
        }
    }
    fn masked(&self, e: u8) -> bool {
        self.masks & e != 0
    }
}

/// What an encoding is (the classes FXAM reports, plus NaN kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Zero,
    /// Denormal or pseudo-denormal.
    Denormal,
    Normal,
    Inf,
    QNaN,
    SNaN,
    /// Unnormal, pseudo-NaN, pseudo-infinity.
    Unsupported,
}

const INT_BIT: u64 = 1 << 63;
const QUIET: u64 = 1 << 62;
/// Biased exponent of 1.0.
pub(crate) const BIAS: i32 = 16383;

impl F80 {
    pub const fn new(sign: bool, exp: u16, sig: u64) -> F80 {
        F80 {
            se: ((sign as u16) << 15) | (exp & 0x7fff),
            sig,
        }
    }
    /// The QNaN floating-point indefinite.
    pub const INDEFINITE: F80 = F80::new(true, 0x7fff, 0xc000_0000_0000_0000);
    pub const ZERO: F80 = F80::new(false, 0, 0);
    pub const ONE: F80 = F80::new(false, 0x3fff, INT_BIT);

    pub fn sign(self) -> bool {
        self.se & 0x8000 != 0
    }
    pub fn exp(self) -> u16 {
        self.se & 0x7fff
    }
    pub fn negate(self) -> F80 {
        F80 {
            se: self.se ^ 0x8000,
            sig: self.sig,
        }
    }
    pub fn abs(self) -> F80 {
        F80 {
            se: self.se & 0x7fff,
            sig: self.sig,
        }
    }
    pub(crate) fn class(self) -> Class {
        let e = self.exp();
        let int = self.sig & INT_BIT != 0;
        match e {
            0 if self.sig == 0 => Class::Zero,
            0 => Class::Denormal,
            0x7fff if !int => Class::Unsupported,
            0x7fff if self.sig << 1 == 0 => Class::Inf,
            0x7fff if self.sig & QUIET != 0 => Class::QNaN,
            0x7fff => Class::SNaN,
            _ if !int => Class::Unsupported,
            _ => Class::Normal,
        }
    }
    pub(crate) fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNaN | Class::SNaN)
    }
    pub(crate) fn quiet(self) -> F80 {
        F80 {
            se: self.se,
            sig: self.sig | QUIET,
        }
    }
}

/// A finite value as sign, unbounded biased exponent and significand
/// normalized to bit 63 (0 for zero).
#[derive(Clone, Copy, Debug)]
struct Unp {
    sign: bool,
    exp: i32,
    sig: u64,
}

fn unpack(a: F80) -> Unp {
    let mut exp = a.exp() as i32;
    let mut sig = a.sig;
    if exp == 0 {
        // Denormals and pseudo-denormals have the exponent of 1.
        exp = 1;
    }
    if sig == 0 {
        return Unp {
            sign: a.sign(),
            exp: 0,
            sig: 0,
        };
    }
    let lz = sig.leading_zeros();
    sig <<= lz;
    exp -= lz as i32;
    Unp {
        sign: a.sign(),
        exp,
        sig,
    }
}

/// Shift right, ORing every bit shifted out into bit 0.
fn shr_jam(x: u128, n: u32) -> u128 {
    if n == 0 {
        x
    } else if n >= 128 {
        (x != 0) as u128
    } else {
        (x >> n) | ((x << (128 - n) != 0) as u128)
    }
}

/// Round `sig` (bit 127 set) × 2^(exp − bias − 127) to `p` significand
/// bits for a format whose largest finite biased exponent is `emax`.
/// Returns the exponent field and the 64-bit significand (integer bit at
/// 63; clear for a denormal), or None for an unmasked overflow/underflow
/// when `wrap` is 0 (a store: nothing is written).
fn round(
    env: &mut Env,
    sign: bool,
    mut exp: i32,
    mut sig: u128,
    p: u32,
    emax: i32,
    wrap: i32,
) -> Option<(i32, u64)> {
    let mask: u128 = (1u128 << (128 - p)) - 1;
    let half: u128 = 1u128 << (127 - p);
    let inc = match env.rc {
        0 => half,
        1 if sign => mask,
        2 if !sign => mask,
        _ => 0,
    };
    env.up = false;
    if exp <= 0 {
        let tiny = exp < 0 || sig.checked_add(inc).is_some();
        if tiny && !env.masked(UE) {
            env.flags |= UE;
            if wrap == 0 {
                return None;
            }
            exp += wrap;
        } else {
            sig = shr_jam(sig, (1 - exp) as u32);
            let rb = sig & mask;
            if rb != 0 {
                env.flags |= PE | if tiny { UE } else { 0 };
            }
            let trunc = sig & !mask;
            let mut s = (sig + inc) & !mask;
            if env.rc == 0 && rb == half {
                s &= !(mask + 1);
            }
            env.up = s > trunc;
            let e = (s >> 127) as i32;
            return Some((e, (s >> 64) as u64));
        }
    }
    if exp > emax || (exp == emax && sig.checked_add(inc).is_none()) {
        if !env.masked(OE) {
            env.flags |= OE;
            if wrap == 0 {
                return None;
            }
            exp -= wrap;
        } else {
            env.flags |= OE | PE;
            let to_inf = match env.rc {
                0 => true,
                1 => sign,
                2 => !sign,
                _ => false,
            };
            env.up = to_inf;
            return Some(if to_inf {
                (emax + 1, INT_BIT)
            } else {
                (emax, (!mask >> 64) as u64)
            });
        }
    }
    let rb = sig & mask;
    if rb != 0 {
        env.flags |= PE;
    }
    let trunc = sig & !mask;
    let mut s = match sig.checked_add(inc) {
        Some(s) => s & !mask,
        None => {
            exp += 1;
            env.up = true;
            1u128 << 127
        }
    };
    if env.rc == 0 && rb == half {
        s &= !(mask + 1);
    }
    env.up |= s > trunc;
    Some((exp, (s >> 64) as u64))
}

/// Round an exact extended result (precision control applies; the
/// unmasked overflow/underflow response wraps the exponent).
pub(crate) fn round_f80(env: &mut Env, sign: bool, exp: i32, sig: u128) -> F80 {
    if sig == 0 {
        return F80::new(sign, 0, 0);
    }
    let lz = sig.leading_zeros();
    let (e, s) = round(
        env,
        sign,
        exp - lz as i32,
        sig << lz,
        env.pc,
        0x7ffe,
        0x6000,
    )
    .unwrap_or((0, 0));
    F80::new(sign, e as u16, s)
}

/// Round sig (bit 127 set) × 2^(e − 127), `e` unbiased, to the extended
/// format at full precision (the constant loads).
pub(crate) fn round_exact(env: &mut Env, sign: bool, e: i32, sig: u128) -> F80 {
    let mut e2 = *env;
    e2.pc = 64;
    round_f80(&mut e2, sign, e + BIAS, sig)
}

/// The NaN result of an operation with NaN operand(s) (SDM Vol. 1,
/// Table 4-7, x87 column): an SNaN raises IE; the result is the QNaN
/// operand, or the one with the larger significand, quieted.
pub(crate) fn propagate(env: &mut Env, a: F80, b: F80) -> F80 {
    let (an, bn) = (a.is_nan(), b.is_nan());
    if a.class() == Class::SNaN || b.class() == Class::SNaN {
        env.flags |= IE;
    }
    if an && bn {
        let (qa, qb) = (a.sig & QUIET != 0, b.sig & QUIET != 0);
        let pick_a = if qa != qb {
            qa
        } else if a.sig != b.sig {
            (a.sig << 1) > (b.sig << 1)
        } else {
            a.se < b.se
        };
        if pick_a {
            a.quiet()
        } else {
            b.quiet()
        }
    } else if an {
        a.quiet()
    } else {
        b.quiet()
    }
}

/// The checks shared by the two-operand operations, in the SDM's
/// priority order (Vol. 1, 4.9.2): unsupported encodings and SNaNs,
/// then QNaNs; then the denormal-operand flag. Some(result) ends the
/// operation.
fn prologue2(env: &mut Env, a: F80, b: F80) -> Option<F80> {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        env.flags |= IE;
        return Some(F80::INDEFINITE);
    }
    if a.is_nan() || b.is_nan() {
        return Some(propagate(env, a, b));
    }
    None
}

fn denormal_check(env: &mut Env, a: F80, b: F80) {
    if a.class() == Class::Denormal || b.class() == Class::Denormal || env.src_denormal {
        env.flags |= DE;
    }
}

fn zero_sign(env: &Env) -> bool {
    env.rc == 1
}

/// a + b (or a − b when `sub`).
pub(crate) fn add(env: &mut Env, a: F80, b: F80, sub: bool) -> F80 {
    if let Some(r) = prologue2(env, a, b) {
        return r;
    }
    let b = if sub { b.negate() } else { b };
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Inf || cb == Class::Inf {
        if ca == Class::Inf && cb == Class::Inf && a.sign() != b.sign() {
            env.flags |= IE;
            return F80::INDEFINITE;
        }
        denormal_check(env, a, b);
        return if ca == Class::Inf { a } else { b };
    }
    denormal_check(env, a, b);
    let (x, y) = (unpack(a), unpack(b));
    if x.sig == 0 && y.sig == 0 {
        let s = if x.sign == y.sign {
            x.sign
        } else {
            zero_sign(env)
        };
        return F80::new(s, 0, 0);
    }
    if x.sig == 0 {
        return round_f80(env, y.sign, y.exp, (y.sig as u128) << 64);
    }
    if y.sig == 0 {
        return round_f80(env, x.sign, x.exp, (x.sig as u128) << 64);
    }
    // Order by magnitude: x ≥ y.
    let (x, y) = if (x.exp, x.sig) >= (y.exp, y.sig) {
        (x, y)
    } else {
        (y, x)
    };
    let d = (x.exp - y.exp) as u32;
    // One spare bit on top for the carry of an addition.
    let xs = (x.sig as u128) << 63;
    let ys = shr_jam((y.sig as u128) << 63, d);
    if x.sign == y.sign {
        round_f80(env, x.sign, x.exp + 1, xs + ys)
    } else {
        let r = xs - ys;
        if r == 0 {
            return F80::new(zero_sign(env), 0, 0);
        }
        round_f80(env, x.sign, x.exp + 1, r)
    }
}

/// a × b.
pub(crate) fn mul(env: &mut Env, a: F80, b: F80) -> F80 {
    if let Some(r) = prologue2(env, a, b) {
        return r;
    }
    let sign = a.sign() != b.sign();
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Inf || cb == Class::Inf {
        if ca == Class::Zero || cb == Class::Zero {
            env.flags |= IE;
            return F80::INDEFINITE;
        }
        denormal_check(env, a, b);
        return F80::new(sign, 0x7fff, INT_BIT);
    }
    denormal_check(env, a, b);
    let (x, y) = (unpack(a), unpack(b));
    if x.sig == 0 || y.sig == 0 {
        return F80::new(sign, 0, 0);
    }
    let p = (x.sig as u128) * (y.sig as u128);
    // p = x.sig·y.sig, value p × 2^(ex + ey − 2·bias − 126).
    round_f80(env, sign, x.exp + y.exp - BIAS + 1, p)
}

/// a ÷ b.
pub(crate) fn div(env: &mut Env, a: F80, b: F80) -> F80 {
    if let Some(r) = prologue2(env, a, b) {
        return r;
    }
    let sign = a.sign() != b.sign();
    let (ca, cb) = (a.class(), b.class());
    match (ca, cb) {
        (Class::Inf, Class::Inf) | (Class::Zero, Class::Zero) => {
            env.flags |= IE;
            return F80::INDEFINITE;
        }
        (Class::Inf, _) => {
            denormal_check(env, a, b);
            return F80::new(sign, 0x7fff, INT_BIT);
        }
        (_, Class::Inf) => {
            denormal_check(env, a, b);
            return F80::new(sign, 0, 0);
        }
        (_, Class::Zero) => {
            // Divide-by-zero ranks above the denormal operand.
            env.flags |= ZE;
            return F80::new(sign, 0x7fff, INT_BIT);
        }
        _ => {}
    }
    denormal_check(env, a, b);
    let (x, y) = (unpack(a), unpack(b));
    if x.sig == 0 {
        return F80::new(sign, 0, 0);
    }
    let (n, adj) = if x.sig >= y.sig {
        ((x.sig as u128) << 63, 0)
    } else {
        ((x.sig as u128) << 64, -1)
    };
    let d = y.sig as u128;
    let q1 = n / d;
    let r1 = n % d;
    let q2 = (r1 << 64) / d;
    let r2 = (r1 << 64) % d;
    let q = (q1 << 64) | q2 | (r2 != 0) as u128;
    round_f80(env, sign, x.exp - y.exp + BIAS + adj, q)
}

/// Integer square root of `m` and the remainder m − r².
pub(crate) fn isqrt(m: u128) -> (u128, u128) {
    let mut r: u128 = 0;
    let mut rem: u128 = 0;
    // Two bits of m per step, from the top.
    for i in (0..64).rev() {
        rem = (rem << 2) | ((m >> (2 * i)) & 3);
        let t = (r << 2) | 1;
        r <<= 1;
        if rem >= t {
            rem -= t;
            r |= 1;
        }
    }
    (r, rem)
}

/// √a.
pub(crate) fn sqrt(env: &mut Env, a: F80) -> F80 {
    match a.class() {
        Class::Unsupported => {
            env.flags |= IE;
            return F80::INDEFINITE;
        }
        Class::SNaN => {
            env.flags |= IE;
            return a.quiet();
        }
        Class::QNaN | Class::Zero => return a,
        _ => {}
    }
    // The invalid operation (a negative operand) has priority over the
    // denormal operand (SDM Vol. 1, 4.9.2): no DE for −denormal.
    if a.sign() {
        env.flags |= IE;
        return F80::INDEFINITE;
    }
    if a.class() == Class::Denormal {
        env.flags |= DE;
    }
    if a.class() == Class::Inf {
        return a;
    }
    let u = unpack(a);
    let e = u.exp - BIAS;
    let (m, re) = if e & 1 == 0 {
        ((u.sig as u128) << 63, e / 2)
    } else {
        ((u.sig as u128) << 64, (e - 1) / 2)
    };
    let (r, rem) = isqrt(m);
    // The next root bit is 1 iff rem > r; a square root is never a tie.
    let sig = (r << 64) | (((rem > r) as u128) << 63) | (rem != 0) as u128;
    round_f80(env, false, re + BIAS, sig)
}

/// The three-way (or unordered) result of a compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Less,
    Equal,
    Greater,
    Unordered,
}

/// Compare a with b. `quiet`: FUCOM-style (only SNaNs raise IE);
/// otherwise any NaN does.
pub(crate) fn compare(env: &mut Env, a: F80, b: F80, quiet: bool) -> Cmp {
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Unsupported || cb == Class::Unsupported {
        env.flags |= IE;
        return Cmp::Unordered;
    }
    if a.is_nan() || b.is_nan() {
        if !quiet || ca == Class::SNaN || cb == Class::SNaN {
            env.flags |= IE;
        }
        return Cmp::Unordered;
    }
    denormal_check(env, a, b);
    let key = |v: F80| -> (i32, u64) {
        if v.class() == Class::Inf {
            (i32::MAX, 0)
        } else {
            let u = unpack(v);
            (u.exp, u.sig)
        }
    };
    let (ka, kb) = (key(a), key(b));
    let (za, zb) = (ca == Class::Zero, cb == Class::Zero);
    let by_sign = |neg: bool| if neg { Cmp::Less } else { Cmp::Greater };
    match (za, zb) {
        (true, true) => return Cmp::Equal,
        // Against a zero only the sign counts (a normalized denormal has
        // an exponent below a zero's in `key`).
        (false, true) => return by_sign(a.sign()),
        (true, false) => return by_sign(!b.sign()),
        _ => {}
    }
    let ord = match (a.sign() && !za, b.sign() && !zb) {
        (false, false) => ka.cmp(&kb),
        (true, true) => kb.cmp(&ka),
        (false, true) => std::cmp::Ordering::Greater,
        (true, false) => std::cmp::Ordering::Less,
    };
    match ord {
        std::cmp::Ordering::Less => Cmp::Less,
        std::cmp::Ordering::Equal => Cmp::Equal,
        std::cmp::Ordering::Greater => Cmp::Greater,
    }
}

/// An integer converted exactly.
pub(crate) fn from_int(v: i64) -> F80 {
    if v == 0 {
        return F80::ZERO;
    }
    let m = v.unsigned_abs();
    let lz = m.leading_zeros();
    F80::new(v < 0, (BIAS + 63 - lz as i32) as u16, m << lz)
}

/// Round to an integer per RC, as a signed 128-bit value (the magnitude
/// bound is checked by the caller). None: NaN, infinity, unsupported, or
/// too large for 64 bits (all invalid). Raises PE when inexact; `up` as
/// for arithmetic.
fn to_integer(env: &mut Env, a: F80) -> Option<(bool, u128)> {
    match a.class() {
        Class::Zero => return Some((a.sign(), 0)),
        Class::Normal | Class::Denormal => {}
        _ => return None,
    }
    let u = unpack(a);
    let e = u.exp - BIAS; // value = sig × 2^(e − 63)
    if e >= 64 {
        return None;
    }
    // 64.64 fixed point.
    let fx = shr_jam((u.sig as u128) << 64, (63 - e) as u32);
    let (int, frac) = (fx >> 64, fx as u64);
    let half = 1u64 << 63;
    let bump = match env.rc {
        0 => frac > half || (frac == half && int & 1 == 1),
        1 => u.sign && frac != 0,
        2 => !u.sign && frac != 0,
        _ => false,
    };
    env.up = bump;
    if frac != 0 {
        env.flags |= PE;
    }
    Some((u.sign, int + bump as u128))
}

/// Convert to a `bits`-bit signed integer (FIST). None = invalid (the
/// caller stores the integer indefinite if IE is masked).
pub(crate) fn to_int(env: &mut Env, a: F80, bits: u32) -> Option<i64> {
    let mut e = *env;
    e.flags = 0;
    let (sign, m) = match to_integer(&mut e, a) {
        Some(r) => r,
        None => {
            env.flags |= IE;
            return None;
        }
    };
    let lim = 1u128 << (bits - 1);
    if (sign && m > lim) || (!sign && m >= lim) {
        env.flags |= IE;
        return None;
    }
    env.flags |= e.flags;
    env.up = e.up;
    let v = m as i128;
    Some(if sign { -v } else { v } as i64)
}

/// The largest magnitude packed BCD holds: 18 nines.
const BCD_MAX: u128 = 999_999_999_999_999_999;

/// A packed BCD integer (the 10 bytes as an [`F80`]'s bit pattern:
/// digits in `sig` and the low byte of `se`, sign in bit 15 of `se`) as
/// an exact extended value. Each nibble counts as a digit, also the
/// invalid ones (A-F, undefined by the SDM).
pub(crate) fn from_bcd(raw: F80) -> F80 {
    let bytes = (raw.sig as u128) | (u128::from(raw.se & 0xff) << 64);
    let mut m: u64 = 0;
    for k in (0..18).rev() {
        let d = ((bytes >> (4 * k)) & 0xf) as u64;
        m = m.wrapping_mul(10).wrapping_add(d);
    }
    let sign = raw.se & 0x8000 != 0;
    if m == 0 {
        return F80::new(sign, 0, 0);
    }
    let lz = m.leading_zeros();
    F80::new(sign, (BIAS + 63 - lz as i32) as u16, m << lz)
}

/// FBSTP's conversion: `a` rounded to an integer per RC, as packed BCD
/// bytes in an [`F80`]'s bit pattern (see [`from_bcd`]). None = invalid
/// (NaN, infinity, unsupported, or 18 digits are not enough), with IE.
pub(crate) fn to_bcd(env: &mut Env, a: F80) -> Option<F80> {
    let mut e = *env;
    e.flags = 0;
    let (sign, mut m) = match to_integer(&mut e, a) {
        Some(r) if r.1 <= BCD_MAX => r,
        _ => {
            env.flags |= IE;
            return None;
        }
    };
    env.flags |= e.flags;
    env.up = e.up;
    let mut bytes: u128 = 0;
    for k in 0..18 {
        bytes |= (m % 10) << (4 * k);
        m /= 10;
    }
    Some(F80 {
        sig: bytes as u64,
        se: ((bytes >> 64) as u16) | if sign { 0x8000 } else { 0 },
    })
}

/// FRNDINT: round to an integral value per RC.
pub(crate) fn round_int(env: &mut Env, a: F80) -> F80 {
    match a.class() {
        Class::Unsupported => {
            env.flags |= IE;
            return F80::INDEFINITE;
        }
        Class::SNaN => {
            env.flags |= IE;
            return a.quiet();
        }
        Class::QNaN | Class::Inf | Class::Zero => return a,
        Class::Denormal => env.flags |= DE,
        Class::Normal => {}
    }
    let u = unpack(a);
    if u.exp - BIAS >= 63 {
        return a;
    }
    match to_integer(env, a) {
        Some((s, 0)) => F80::new(s, 0, 0),
        Some((s, m)) => {
            let lz = (m as u64).leading_zeros();
            // m ≤ 2^63 here: exact.
            F80::new(s, (BIAS + 63 - lz as i32) as u16, (m as u64) << lz)
        }
        None => F80::INDEFINITE,
    }
}

/// Load a binary32/binary64 value (`bits` = 32 or 64) exactly. A
/// denormal raises DE; an SNaN raises IE and is quieted, unless
/// `keep_snan` (an arithmetic source: the operation deals with it).
pub(crate) fn from_ieee(env: &mut Env, v: u64, bits: u32, keep_snan: bool) -> F80 {
    let (m, ebits) = if bits == 32 { (23u32, 8u32) } else { (52, 11) };
    let sign = (v >> (bits - 1)) & 1 != 0;
    let emax = (1u64 << ebits) - 1;
    let e = (v >> m) & emax;
    let f = v & ((1u64 << m) - 1);
    let bias = (emax >> 1) as i32;
    if e == emax {
        if f == 0 {
            return F80::new(sign, 0x7fff, INT_BIT);
        }
        let nan = F80::new(sign, 0x7fff, INT_BIT | (f << (63 - m)));
        if keep_snan {
            return nan;
        }
        if nan.sig & QUIET == 0 {
            env.flags |= IE;
        }
        return nan.quiet();
    }
    if e == 0 {
        if f == 0 {
            return F80::new(sign, 0, 0);
        }
        // An arithmetic source (`keep_snan`) defers DE to the operation
        // (see `Env::src_denormal`); FLD raises it here.
        if keep_snan {
            env.src_denormal = true;
        } else {
            env.flags |= DE;
        }
        let lz = f.leading_zeros();
        // value = f × 2^(1 − bias − m)
        let exp = 1 - bias - m as i32 + 63 - lz as i32 + BIAS;
        return F80::new(sign, exp as u16, f << lz);
    }
    F80::new(
        sign,
        (e as i32 - bias + BIAS) as u16,
        INT_BIT | (f << (63 - m)),
    )
}

/// Store to binary32/binary64 (`bits` = 32 or 64), rounded per RC (the
/// precision control does not apply). None: an unmasked exception that
/// leaves the destination unchanged.
pub(crate) fn to_ieee(env: &mut Env, a: F80, bits: u32) -> Option<u64> {
    let (m, ebits) = if bits == 32 { (23u32, 8u32) } else { (52, 11) };
    let emaxf = (1u64 << ebits) - 1;
    let bias = (emaxf >> 1) as i32;
    let s = (a.sign() as u64) << (bits - 1);
    let pack = |e: u64, sig: u64| s | (e << m) | ((sig >> (63 - m)) & ((1u64 << m) - 1));
    match a.class() {
        Class::Unsupported => {
            env.flags |= IE;
            return env
                .masked(IE)
                .then(|| pack(emaxf, QUIET) | (1 << (bits - 1)));
        }
        Class::SNaN | Class::QNaN => {
            if a.class() == Class::SNaN {
                env.flags |= IE;
                if !env.masked(IE) {
                    return None;
                }
            }
            return Some(pack(emaxf, a.sig | QUIET));
        }
        Class::Inf => return Some(pack(emaxf, 0)),
        Class::Zero => return Some(s),
        _ => {}
    }
    let u = unpack(a);
    let exp = u.exp - BIAS + bias;
    let (e, sig) = round(
        env,
        u.sign,
        exp,
        (u.sig as u128) << 64,
        m + 1,
        emaxf as i32 - 1,
        0,
    )?;
    Some(pack(e as u64, sig))
}

/// FSCALE: a × 2^trunc(b).
pub(crate) fn scale(env: &mut Env, a: F80, b: F80) -> F80 {
    if let Some(r) = prologue2(env, a, b) {
        return r;
    }
    let (ca, cb) = (a.class(), b.class());
    if cb == Class::Inf {
        let bad = if b.sign() {
            ca == Class::Inf
        } else {
            ca == Class::Zero
        };
        if bad {
            env.flags |= IE;
            return F80::INDEFINITE;
        }
        denormal_check(env, a, b);
        return if ca == Class::Zero || ca == Class::Inf {
            a
        } else if b.sign() {
            F80::new(a.sign(), 0, 0)
        } else {
            F80::new(a.sign(), 0x7fff, INT_BIT)
        };
    }
    denormal_check(env, a, b);
    if ca == Class::Zero || ca == Class::Inf {
        return a;
    }
    // trunc(b), clamped: anything beyond ±2^16 over/underflows anyway.
    let ub = unpack(b);
    let eb = ub.exp - BIAS;
    let n: i32 = if eb < 0 {
        0
    } else if eb >= 17 {
        if ub.sign {
            -0x10000
        } else {
            0x10000
        }
    } else {
        let m = (ub.sig >> (63 - eb)) as i32;
        if ub.sign {
            -m
        } else {
            m
        }
    };
    let u = unpack(a);
    // The precision control does not apply to FSCALE.
    let mut e2 = *env;
    e2.pc = 64;
    let r = round_f80(&mut e2, u.sign, u.exp + n, (u.sig as u128) << 64);
    env.flags |= e2.flags;
    env.up = e2.up;
    r
}

/// The partial remainder of FPREM (`ieee` = false: quotient truncated)
/// and FPREM1 (quotient rounded to nearest-even). Returns the result,
/// the low three quotient bits (None: a NaN or invalid operation, no
/// quotient), and whether the reduction is complete
/// (C2 clear). Exact: the remainder is always representable.
pub(crate) fn prem(env: &mut Env, a: F80, b: F80, ieee: bool) -> (F80, Option<u8>, bool) {
    if let Some(r) = prologue2(env, a, b) {
        return (r, None, true);
    }
    let (ca, cb) = (a.class(), b.class());
    if ca == Class::Inf || cb == Class::Zero {
        env.flags |= IE;
        return (F80::INDEFINITE, None, true);
    }
    denormal_check(env, a, b);
    // ST(0) itself is the remainder: exact, but a pseudo-denormal comes
    // out normalized (its value with exponent 1; measured on AMD).
    let itself = if a.exp() == 0 && a.sig & INT_BIT != 0 {
        F80::new(a.sign(), 1, a.sig)
    } else {
        a
    };
    if cb == Class::Inf || ca == Class::Zero {
        return (itself, Some(0), true);
    }
    let (x, y) = (unpack(a), unpack(b));
    let d = x.exp - y.exp;
    if d >= 64 {
        // Partial reduction: subtract a multiple of b·2^(d − n), with n
        // = 32 + d mod 32 (an implementation choice; the SDM allows
        // 32..63 bits per step).
        let n = 32 + (d % 32);
        let shift = d - n;
        // Remainder of x.sig·2^n by y.sig, then rescaled.
        let num = (x.sig as u128) << n;
        let r = num % (y.sig as u128);
        // Exact: the partial remainder is below y, 64 bits at most (the
        // precision control does not apply to FPREM).
        let mut e2 = *env;
        e2.pc = 64;
        let v = round_f80(&mut e2, x.sign, y.exp + shift, r << 64);
        return (v, Some(0), false);
    }
    if d < -1 {
        // |a| < |b|/2: the quotient is 0 for both.
        return (itself, Some(0), true);
    }
    // Exact: x = q·y + r with q = trunc or nearest(x/y), using a common
    // scale 2^(y.exp − 63 − 1).
    let (num, den) = if d >= 0 {
        ((x.sig as u128) << d, y.sig as u128)
    } else {
        (x.sig as u128, (y.sig as u128) << 1)
    };
    // den is y·2^(−min(d,0)); q counts multiples of y.
    let mut q = num / den;
    let mut r = num % den;
    let mut rsign = x.sign;
    if ieee {
        let twice = r << 1;
        if twice > den || (twice == den && q & 1 == 1) {
            q += 1;
            r = den - r;
            rsign = !rsign;
        }
    }
    let base_exp = if d >= 0 { y.exp } else { y.exp - 1 };
    let v = if r == 0 {
        F80::new(x.sign, 0, 0)
    } else {
        let mut e2 = *env;
        e2.pc = 64;
        let v = round_f80(&mut e2, rsign, base_exp, r << 64);
        env.flags |= e2.flags & UE;
        v
    };
    (v, Some((q & 7) as u8), true)
}

/// FXTRACT: (exponent as a value, significand with exponent 0).
pub(crate) fn xtract(env: &mut Env, a: F80) -> (F80, F80) {
    match a.class() {
        Class::Unsupported => {
            env.flags |= IE;
            (F80::INDEFINITE, F80::INDEFINITE)
        }
        Class::SNaN | Class::QNaN => {
            if a.class() == Class::SNaN {
                env.flags |= IE;
            }
            (a.quiet(), a.quiet())
        }
        Class::Inf => (F80::new(false, 0x7fff, INT_BIT), a),
        Class::Zero => {
            env.flags |= ZE;
            (F80::new(true, 0x7fff, INT_BIT), a)
        }
        _ => {
            if a.class() == Class::Denormal {
                env.flags |= DE;
            }
            let u = unpack(a);
            (
                from_int((u.exp - BIAS) as i64),
                F80::new(u.sign, BIAS as u16, u.sig),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pc: u32, rc: u8) -> Env {
        Env {
            pc,
            rc,
            masks: 0x3f,
            flags: 0,
            up: false,
            src_denormal: false,
        }
    }

    #[test]
    fn one_third_in_every_precision_and_rounding() {
        let three = from_int(3);
        let cases = [
            // (pc, rc, significand)
            (64, 0, 0xaaaa_aaaa_aaaa_aaab),
            (64, 1, 0xaaaa_aaaa_aaaa_aaaa),
            (64, 2, 0xaaaa_aaaa_aaaa_aaab),
            (64, 3, 0xaaaa_aaaa_aaaa_aaaa),
            (53, 0, 0xaaaa_aaaa_aaaa_a800),
            (53, 2, 0xaaaa_aaaa_aaaa_b000),
            (24, 0, 0xaaaa_ab00_0000_0000),
            (24, 3, 0xaaaa_aa00_0000_0000),
        ];
        for (pc, rc, sig) in cases {
            let mut e = env(pc, rc);
            let r = div(&mut e, F80::ONE, three);
            assert_eq!(r, F80::new(false, 0x3ffd, sig), "pc {pc} rc {rc}");
            assert_eq!(e.flags, PE);
        }
    }

    #[test]
    fn sqrt_and_isqrt() {
        let mut e = env(64, 0);
        assert_eq!(sqrt(&mut e, from_int(4)), from_int(2));
        assert_eq!(e.flags, 0);
        let r = sqrt(&mut e, from_int(2));
        assert_eq!(r, F80::new(false, 0x3fff, 0xb504_f333_f9de_6484));
        assert_eq!(isqrt(1 << 126).0, 1 << 63);
    }

    /// Regressions found by the difftest against an AMD host.
    #[test]
    fn difftest_regressions() {
        // A positive denormal is greater than zero (was: less).
        let den = F80::new(false, 0, 0x3759_1f7b_ca3d_e1dd);
        let mut e = env(64, 0);
        assert_eq!(compare(&mut e, den, F80::ZERO, false), Cmp::Greater);
        assert_eq!(compare(&mut e, F80::ZERO, den, false), Cmp::Less);
        assert_eq!(compare(&mut e, den.negate(), F80::ZERO, false), Cmp::Less);
        assert_eq!(e.flags, DE);
        // sqrt(−denormal): IE only.
        let mut e = env(64, 0);
        assert_eq!(sqrt(&mut e, den.negate()), F80::INDEFINITE);
        assert_eq!(e.flags, IE);
        // QNaN op m32 denormal: no DE (the NaN has priority).
        let mut e = env(64, 0);
        let d = from_ieee(&mut e, 0x8042_dbf9, 32, true);
        let qnan = F80::new(false, 0x7fff, 0xc000_0000_0000_0001);
        let _ = div(&mut e, qnan, d);
        assert_eq!(e.flags, 0);
        let mut e = env(64, 0);
        let d = from_ieee(&mut e, 0x8042_dbf9, 32, true);
        let _ = add(&mut e, F80::ONE, d, false);
        assert_eq!(e.flags & DE, DE);
        // FPREM partial remainder: exact whatever the precision control.
        let (a, b) = (
            F80::new(true, 0x400d, 0xd27c_77e7_9db4_b068),
            F80::new(false, 0x3bec, 0xbd83_c276_9495_4dba),
        );
        let mut e = env(53, 0);
        let (r, q, done) = prem(&mut e, a, b, false);
        assert!(!done);
        assert_eq!(q, Some(0));
        assert_eq!(r, F80::new(true, 0x3feb, 0xa1ff_0f98_3ada_b928));
        // x rem ∞ of a pseudo-denormal: normalized; NaN: no quotient.
        let pd = F80::new(false, 0, 0x9e5a_5fcd_2523_f389);
        let mut e = env(64, 0);
        let inf = F80::new(true, 0x7fff, 1 << 63);
        assert_eq!(prem(&mut e, pd, inf, false).0, F80::new(false, 1, pd.sig));
        assert_eq!(prem(&mut e, qnan, F80::ONE, true).1, None);
    }
}
