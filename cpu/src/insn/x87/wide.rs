//! The working precision of the x87 transcendentals: binary floating
//! point with a 128-bit significand, and the elementary functions on it.
//!
//! The SDM only bounds the error of FSIN, FCOS, FSINCOS, FPTAN, FPATAN,
//! F2XM1, FYL2X and FYL2XP1 (less than one ulp of the extended result on
//! Pentium and later processors, Vol. 1, 8.3.10). ringside evaluates each
//! function in this format — every operation truncates to 128 bits, and
//! the series below stop at 2^-130 — and rounds the result *once* to
//! the destination format with [`super::softfloat`]'s rounding (FCW.RC;
//! FCW.PC does not apply to transcendentals, Vol. 1, 8.1.5.2). The error
//! before that rounding is a few units of 2^-125 relative, so the
//! delivered result is the correctly rounded one except within that
//! distance of a rounding boundary: always within the SDM's bound.
//!
//! Argument reduction for the trigonometric functions uses π rounded to
//! 66 bits, as the SDM describes (Vol. 1, 8.3.10) and as the AMD host
//! does too: it is exact with respect to that π, so FSIN(x) is
//! sin(x mod π₆₆/2 …), which for large arguments differs from the true
//! sine far beyond one ulp — exactly like the hardware.

/// A finite value m × 2^(e − 127): `m` normalized (bit 127 set), or 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wide {
    pub neg: bool,
    pub e: i32,
    pub m: u128,
}

const TOP: u128 = 1 << 127;

/// π/2, ln 2 and 1/ln 2 = log2(e) (m, e).
const HALF_PI: Wide = Wide {
    neg: false,
    e: 0,
    m: 0xc90f_daa2_2168_c234_c4c6_628b_80dc_1cd1,
};
const LN2: Wide = Wide {
    neg: false,
    e: -1,
    m: 0xb172_17f7_d1cf_79ab_c9e3_b398_03f2_f6af,
};
const LOG2E: Wide = Wide {
    neg: false,
    e: 0,
    m: 0xb8aa_3b29_5c17_f0bb_be87_fed0_691d_3e88,
};

impl Wide {
    pub const ZERO: Wide = Wide {
        neg: false,
        e: 0,
        m: 0,
    };
    pub const ONE: Wide = Wide {
        neg: false,
        e: 0,
        m: TOP,
    };

    /// `m` × 2^(e − 127), normalized.
    pub fn new(neg: bool, e: i32, m: u128) -> Wide {
        if m == 0 {
            return Wide { neg, ..Wide::ZERO };
        }
        let lz = m.leading_zeros();
        Wide {
            neg,
            e: e - lz as i32,
            m: m << lz,
        }
    }

    /// A 64-bit significand `sig` × 2^(e − 63), exact.
    pub fn from_sig(neg: bool, e: i32, sig: u64) -> Wide {
        Wide::new(neg, e, (sig as u128) << 64)
    }

    pub fn from_u32(v: u32) -> Wide {
        Wide::new(false, 127, v as u128)
    }

    pub fn is_zero(self) -> bool {
        self.m == 0
    }

    pub fn neg(self) -> Wide {
        Wide {
            neg: !self.neg,
            ..self
        }
    }

    pub fn abs(self) -> Wide {
        Wide { neg: false, ..self }
    }

    /// × 2^k.
    pub fn scale(self, k: i32) -> Wide {
        if self.m == 0 {
            self
        } else {
            Wide {
                e: self.e + k,
                ..self
            }
        }
    }

    /// |self| compared with |o|.
    fn mag_cmp(self, o: Wide) -> std::cmp::Ordering {
        match (self.m == 0, o.m == 0) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => (self.e, self.m).cmp(&(o.e, o.m)),
        }
    }

    pub fn add(self, o: Wide) -> Wide {
        if o.m == 0 {
            return self;
        }
        if self.m == 0 {
            return o;
        }
        let (a, b) = if self.mag_cmp(o).is_ge() {
            (self, o)
        } else {
            (o, self)
        };
        let d = (a.e - b.e) as u32;
        let bm = if d >= 128 { 0 } else { b.m >> d };
        if a.neg == b.neg {
            match a.m.checked_add(bm) {
                Some(s) => Wide::new(a.neg, a.e, s),
                None => Wide {
                    neg: a.neg,
                    e: a.e + 1,
                    m: TOP | ((a.m.wrapping_add(bm)) >> 1),
                },
            }
        } else {
            Wide::new(a.neg, a.e, a.m - bm)
        }
    }

    pub fn sub(self, o: Wide) -> Wide {
        self.add(o.neg())
    }

    pub fn mul(self, o: Wide) -> Wide {
        let neg = self.neg != o.neg;
        if self.m == 0 || o.m == 0 {
            return Wide { neg, ..Wide::ZERO };
        }
        let (hi, lo) = mul_128(self.m, o.m);
        if hi & TOP != 0 {
            Wide {
                neg,
                e: self.e + o.e + 1,
                m: hi,
            }
        } else {
            Wide {
                neg,
                e: self.e + o.e,
                m: (hi << 1) | (lo >> 127),
            }
        }
    }

    /// self ÷ o (o ≠ 0), 128 quotient bits by long division.
    pub fn div(self, o: Wide) -> Wide {
        let neg = self.neg != o.neg;
        if self.m == 0 || o.m == 0 {
            return Wide { neg, ..Wide::ZERO };
        }
        let (mut r, d) = (self.m, o.m);
        let mut q: u128 = 0;
        let mut over = false;
        for _ in 0..128 {
            q <<= 1;
            if over || r >= d {
                r = r.wrapping_sub(d);
                q |= 1;
            }
            over = r & TOP != 0;
            r <<= 1;
        }
        // q = self.m / o.m × 2^127.
        Wide::new(neg, self.e - o.e, q)
    }

    pub fn div_u32(self, k: u32) -> Wide {
        self.div(Wide::from_u32(k))
    }

    /// √self (self ≥ 0): Newton's iteration from a 64-bit root.
    pub fn sqrt(self) -> Wide {
        if self.m == 0 {
            return self;
        }
        // self = mm × 2^ee with ee even, mm ∈ [2^126, 2^128).
        let ee = self.e - 127;
        let (mm, ee) = if ee & 1 == 0 {
            (self.m, ee)
        } else {
            (self.m >> 1, ee + 1)
        };
        let (r, _) = super::softfloat::isqrt(mm);
        // √self ≈ r × 2^(ee/2).
        let mut y = Wide::new(false, ee / 2 + 127, r);
        for _ in 0..3 {
            y = y.add(self.div(y)).scale(-1);
        }
        y
    }
}

/// The 256-bit product of two 128-bit integers, (high, low).
fn mul_128(a: u128, b: u128) -> (u128, u128) {
    let (a1, a0) = (a >> 64, a & u64::MAX as u128);
    let (b1, b0) = (b >> 64, b & u64::MAX as u128);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & u64::MAX as u128) + (p10 & u64::MAX as u128);
    let lo = (p00 & u64::MAX as u128) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// Sum a series from `first`: each next term is `next(term, k)` for k =
/// 1, 2, …, until a term no longer changes the sum at 2^-130. The
/// terms left out (alternating and decreasing, or all of one sign) add
/// up to something of the sign of the first of them: when that is
/// against the sum, the sum is nudged one unit toward zero, so that
/// the sticky bit of the final rounding ([`super::transcend`]) points
/// the right way even when the sum itself is a representable value
/// (sin x = x − x³/6 for a tiny x is *below* x).
fn series(first: Wide, mut next: impl FnMut(Wide, u32) -> Wide) -> Wide {
    let mut sum = first;
    let mut t = first;
    for k in 1..200 {
        t = next(t, k);
        if t.m == 0 || t.e < sum.e - 130 {
            break;
        }
        sum = sum.add(t);
    }
    if t.m != 0 && sum.m != 0 && t.neg != sum.neg {
        sum = Wide::new(sum.neg, sum.e, sum.m - 1);
    }
    sum
}

/// e^y − 1 for |y| ≤ 1 (Taylor).
fn expm1_small(y: Wide) -> Wide {
    series(y, |t, k| t.mul(y).div_u32(k + 1))
}

/// 2^x − 1 for |x| ≤ 1 (F2XM1's domain), with full relative precision
/// near 0.
pub(crate) fn exp2m1(x: Wide) -> Wide {
    expm1_small(x.mul(LN2))
}

/// atanh(t) for |t| ≤ 0.2 (Taylor: t + t³/3 + t⁵/5 + …).
fn atanh_small(t: Wide) -> Wide {
    let t2 = t.mul(t);
    let mut pow = t;
    series(t, |_, k| {
        pow = pow.mul(t2);
        pow.div_u32(2 * k + 1)
    })
}

/// log2(x) for x > 0. Exact (an integer) for a power of two.
pub(crate) fn log2(x: Wide) -> Wide {
    // x = m × 2^k, m ∈ [√2/2, √2).
    let mut k = x.e;
    let mut m = Wide {
        neg: false,
        e: 0,
        ..x
    };
    // √2 = 0xb504f333f9de6484… × 2^-63.
    if (x.m >> 64) as u64 > 0xb504_f333_f9de_6484 {
        m = m.scale(-1);
        k += 1;
    }
    let t = m.sub(Wide::ONE).div(m.add(Wide::ONE));
    let frac = atanh_small(t).scale(1).mul(LOG2E);
    Wide::new(k < 0, 127, k.unsigned_abs() as u128).add(frac)
}

/// log2(1 + x) for x > −1, precise near 0: 2·atanh(x / (2 + x)) / ln 2.
/// `x` must keep |x / (2 + x)| ≤ 0.2 (|x| < 1 − √2/2 does).
pub(crate) fn log2_1p(x: Wide) -> Wide {
    let t = x.div(Wide::new(false, 1, TOP).add(x));
    atanh_small(t).scale(1).mul(LOG2E)
}

/// sin and cos of |r| ≤ π/4 (Taylor).
fn sin_cos_small(r: Wide) -> (Wide, Wide) {
    let r2 = r.mul(r);
    let sin = series(r, |t, k| t.mul(r2).div_u32((2 * k) * (2 * k + 1)).neg());
    let cos = series(Wide::ONE, |t, k| {
        t.mul(r2).div_u32((2 * k - 1) * (2 * k)).neg()
    });
    (sin, cos)
}

/// π rounded to 66 significant bits, as the integer P with
/// π₆₆ = P × 2^-64 (so π₆₆/2 = P × 2^-65).
const PI66: u128 = 0x3_243f_6a88_85a3_08d3;

/// Reduce |x| = sig × 2^(e − 63) (< 2^63) modulo π₆₆/2: (n mod 4, r)
/// with |x| = n·π₆₆/2 + r, |r| ≤ π₆₆/4, exactly. This is the reduction
/// of SDM Vol. 1, 8.3.10 ("a 66-bit approximation of π"), which the
/// AMD host reproduces too (measured: FSIN/FCOS/FPTAN of large
/// arguments agree with sin/cos/tan of x mod π₆₆ to the last bit, not
/// with the true functions).
fn reduce(sig: u64, e: i32) -> (u32, Wide) {
    // Below 1/2 (< π/4): no reduction, r = x exactly.
    if e < -1 {
        return (0, Wide::from_sig(false, e, sig));
    }
    // |x| = N × 2^-65 with N = sig × 2^(e + 2) < 2^128 (e ≤ 62).
    let n_num = (sig as u128) << (e + 2);
    let (mut q, rem) = (n_num / PI66, n_num % PI66);
    // Nearest multiple (PI66 is odd: no ties).
    let r = if 2 * rem > PI66 {
        q += 1;
        Wide::new(true, 127 - 65, PI66 - rem)
    } else {
        Wide::new(false, 127 - 65, rem)
    };
    ((q & 3) as u32, r)
}

/// sin(x) and cos(x), x = (−1)^neg × sig × 2^(e − 63), |x| < 2^63.
pub(crate) fn sin_cos(neg: bool, sig: u64, e: i32) -> (Wide, Wide) {
    let (n, r) = reduce(sig, e);
    let (s, c) = sin_cos_small(r);
    let (s, c) = match n {
        0 => (s, c),
        1 => (c, s.neg()),
        2 => (s.neg(), c.neg()),
        _ => (c.neg(), s),
    };
    (if neg { s.neg() } else { s }, c)
}

/// atan(t) for 0 ≤ t ≤ 1: two argument halvings
/// (atan t = 2·atan(t / (1 + √(1 + t²)))), then Taylor.
fn atan_unit(t: Wide) -> Wide {
    let mut t = t;
    for _ in 0..2 {
        t = t.div(Wide::ONE.add(Wide::ONE.add(t.mul(t)).sqrt()));
    }
    let t2 = t.mul(t);
    let mut pow = t;
    let s = series(t, |_, k| {
        pow = pow.mul(t2).neg();
        pow.div_u32(2 * k + 1)
    });
    s.scale(2)
}

/// atan2(y, x) for finite nonzero x, y, in (−π, π].
pub(crate) fn atan2(y: Wide, x: Wide) -> Wide {
    let (ay, ax) = (y.abs(), x.abs());
    let mut a = if ay.mag_cmp(ax).is_le() {
        atan_unit(ay.div(ax))
    } else {
        HALF_PI.sub(atan_unit(ax.div(ay)))
    };
    if x.neg {
        a = HALF_PI.scale(1).sub(a);
    }
    if y.neg {
        a.neg()
    } else {
        a
    }
}

/// π/2, π/4 and 3π/4 (for FPATAN's special cases).
pub(crate) fn half_pi() -> Wide {
    HALF_PI
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The top 64 bits of a result, rounded to nearest.
    fn top64(w: Wide) -> (i32, u64) {
        let r = (w.m >> 64) + ((w.m >> 63) & 1);
        if r >> 64 != 0 {
            (w.e + 1, 1 << 63)
        } else {
            (w.e, r as u64)
        }
    }

    #[test]
    fn arithmetic() {
        let three = Wide::from_u32(3);
        let third = Wide::ONE.div(three);
        assert_eq!(third.e, -2);
        assert_eq!(third.m >> 1, 0x5555_5555_5555_5555_5555_5555_5555_5555);
        let two = Wide::from_u32(2);
        let r = two.sqrt();
        assert_eq!(top64(r), (0, 0xb504_f333_f9de_6484));
        assert_eq!(top64(Wide::from_u32(9).sqrt()), (1, 0xc000_0000_0000_0000));
    }

    #[test]
    fn functions() {
        // log2(8) = 3 exactly; log2(10) = 3.3219280948873623478703…
        assert_eq!(log2(Wide::from_u32(8)), Wide::from_u32(3));
        assert_eq!(log2(Wide::from_u32(1)), Wide::ZERO);
        let l10 = log2(Wide::from_u32(10));
        assert_eq!(top64(l10), (1, 0xd49a_784b_cd1b_8afe));
        // sin(1) = 0.8414709848078965066525…, cos(1) = 0.5403023058681397174009…
        let (s, c) = sin_cos(false, 1 << 63, 0);
        assert_eq!(top64(s), (-1, 0xd76a_a478_4867_7021));
        assert_eq!(top64(c), (-1, 0x8a51_407d_a834_5c92));
        // 2^1 − 1 = 1; atan2(1, 1) = π/4.
        assert_eq!(top64(exp2m1(Wide::ONE)), (0, 1 << 63));
        let q = atan2(Wide::ONE, Wide::ONE);
        assert_eq!(top64(q), (-1, 0xc90f_daa2_2168_c235));
    }
}
