//! Lazy arithmetic flags.
//!
//! Almost every integer instruction writes the six status flags, and almost
//! none of those values are ever read: the next instruction overwrites them.
//! So the interpreter keeps them in a compact form that is cheap to write
//! and is turned into RFLAGS bits only when something reads them.
//!
//! The representation (ringside's own; QEMU's `cc_op` and Bochs'
//! `oszapc` solve the same problem differently):
//!
//! * `res`: the result of the last flag-setting operation, sign-extended
//!   from the operand size to 64 bits. ZF, SF and PF are *derived* from it:
//!   ZF = (res == 0), SF = bit 63, PF = even parity of the low byte. This is
//!   the part that is computed lazily.
//! * `aux`: CF, AF and OF computed eagerly (a few ALU operations, all in
//!   registers), stored at their RFLAGS bit positions, plus two override
//!   bits that flip the derived SF and PF (at the SF and PF positions).
//!
//! Eager CF/AF/OF makes instructions that write only some flags (rotates:
//! CF/OF; BT: CF; INC/DEC: all but CF) cheap: they edit `aux` without
//! materializing. Any combination of flags can be represented (see
//! [`LazyFlags::load`]), so POPF/SAHF/IRET round-trip exactly.
//!
//! Conditions (Jcc/SETcc/CMOVcc) are evaluated straight from `res`/`aux`
//! without building RFLAGS: [`LazyFlags::cond`].

use crate::state::rflags::{AF, CF, OF, PF, SF, STATUS, ZF};

/// The six status flags in lazy form. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LazyFlags {
    /// Last result, sign-extended to 64 bits.
    pub res: u64,
    /// CF | AF | OF at their RFLAGS positions, plus SF/PF flip bits at the
    /// SF/PF positions.
    pub aux: u64,
}

impl Default for LazyFlags {
    /// All six flags clear (the RESET value).
    fn default() -> Self {
        let mut f = LazyFlags { res: 0, aux: 0 };
        f.load(0);
        f
    }
}

/// Sign-extend the low `bits` of `v` to 64 bits.
#[inline(always)]
pub(crate) const fn sext(v: u64, bits: u32) -> u64 {
    let sh = 64 - bits;
    (((v << sh) as i64) >> sh) as u64
}

/// Even parity of the low byte (the PF rule).
#[inline(always)]
const fn parity_even(v: u64) -> bool {
    (v as u8).count_ones() & 1 == 0
}

/// Bit `b` of `v`, as 0 or 1.
#[inline(always)]
const fn bit(v: u64, b: u32) -> u64 {
    (v >> b) & 1
}

impl LazyFlags {
    /// The six status flags as RFLAGS bits (all other bits zero).
    #[inline]
    pub fn materialize(&self) -> u64 {
        let mut f = self.aux & (CF | AF | OF);
        if self.res == 0 {
            f |= ZF;
        }
        if (bit(self.res, 63) ^ bit(self.aux, 7)) != 0 {
            f |= SF;
        }
        if parity_even(self.res) ^ (self.aux & PF != 0) {
            f |= PF;
        }
        f
    }

    /// Load the six status flags from RFLAGS bits (other bits ignored).
    ///
    /// Picks a `res` that yields the wanted ZF, then uses the flip bits to
    /// correct SF and PF.
    #[inline]
    pub fn load(&mut self, rflags: u64) {
        let want_sf = rflags & SF != 0;
        let want_pf = rflags & PF != 0;
        // res = 0 gives ZF=1, SF=0, PF=1; res = 1 gives ZF=0, SF=0, PF=0.
        let (res, nat_pf) = if rflags & ZF != 0 {
            (0, true)
        } else {
            (1, false)
        };
        let mut aux = rflags & (CF | AF | OF);
        if want_sf {
            aux |= SF;
        }
        if want_pf != nat_pf {
            aux |= PF;
        }
        self.res = res;
        self.aux = aux;
    }

    /// Replace some status flags (`mask` selects which) and keep the rest.
    #[inline]
    pub fn set_bits(&mut self, mask: u64, val: u64) {
        let mask = mask & STATUS;
        if mask & !(CF | AF | OF) == 0 {
            // Only eagerly stored flags change: edit aux in place.
            self.aux = (self.aux & !mask) | (val & mask);
        } else {
            let cur = self.materialize();
            self.load((cur & !mask) | (val & mask));
        }
    }

    #[inline(always)]
    pub fn cf(&self) -> bool {
        self.aux & CF != 0
    }
    #[inline(always)]
    pub fn of(&self) -> bool {
        self.aux & OF != 0
    }
    #[inline(always)]
    pub fn zf(&self) -> bool {
        self.res == 0
    }
    #[inline(always)]
    pub fn sf(&self) -> bool {
        (bit(self.res, 63) ^ bit(self.aux, 7)) != 0
    }
    #[inline(always)]
    pub fn pf(&self) -> bool {
        parity_even(self.res) ^ (self.aux & PF != 0)
    }
    #[inline(always)]
    pub fn af(&self) -> bool {
        self.aux & AF != 0
    }

    #[inline(always)]
    pub fn set_cf(&mut self, cf: bool) {
        self.aux = (self.aux & !CF) | cf as u64;
    }

    /// Evaluate condition code `cc` (the low nibble of the Jcc/SETcc/CMOVcc
    /// opcode: 0 = O, 1 = NO, 2 = B, ... 0xf = G).
    #[inline(always)]
    pub fn cond(&self, cc: u8) -> bool {
        let r = match cc >> 1 {
            0 => self.of(),
            1 => self.cf(),
            2 => self.zf(),
            3 => self.cf() || self.zf(),
            4 => self.sf(),
            5 => self.pf(),
            6 => self.sf() != self.of(),
            _ => self.zf() || (self.sf() != self.of()),
        };
        r ^ (cc & 1 != 0)
    }

    // ---- producers: one per flag rule family (SDM Vol. 1, Appendix A) ----

    /// ADD/ADC/XADD (`c` = carry in, 0 or 1): r = a + b + c.
    ///
    /// The carry-out vector of a ripple adder is `(a & b) | ((a | b) & !r)`
    /// for every bit, whatever came in; CF is its top bit, AF its bit 3, and
    /// OF is carry-in XOR carry-out of the top bit.
    #[inline(always)]
    pub fn add(&mut self, a: u64, b: u64, r: u64, bits: u32) {
        let co = (a & b) | ((a | b) & !r);
        let cf = bit(co, bits - 1);
        let of = bit((a ^ r) & (b ^ r), bits - 1);
        let af = (a ^ b ^ r) & AF;
        self.res = sext(r, bits);
        self.aux = cf | af | (of << 11);
    }

    /// SUB/SBB/CMP/NEG/CMPXCHG/SCAS/CMPS: r = a - b - c.
    ///
    /// The borrow-out vector is `(!a & b) | ((!a | b) & r)`: the bit
    /// borrows when b > a at that bit, or when they tie and a borrow came in
    /// (which then shows as r = 1).
    #[inline(always)]
    pub fn sub(&mut self, a: u64, b: u64, r: u64, bits: u32) {
        let bo = (!a & b) | ((!a | b) & r);
        let cf = bit(bo, bits - 1);
        let of = bit((a ^ b) & (a ^ r), bits - 1);
        let af = (a ^ b ^ r) & AF;
        self.res = sext(r, bits);
        self.aux = cf | af | (of << 11);
    }

    /// AND/OR/XOR/TEST: CF = OF = 0, SF/ZF/PF from the result.
    /// AF is undefined by the SDM; ringside clears it, which is what
    /// current Intel and AMD cores do.
    #[inline(always)]
    pub fn logic(&mut self, r: u64, bits: u32) {
        self.res = sext(r, bits);
        self.aux = 0;
    }

    /// INC: like ADD a, 1 but CF is preserved.
    #[inline(always)]
    pub fn inc(&mut self, a: u64, r: u64, bits: u32) {
        let cf = self.aux & CF;
        self.add(a, 1, r, bits);
        self.aux = (self.aux & !CF) | cf;
    }

    /// DEC: like SUB a, 1 but CF is preserved.
    #[inline(always)]
    pub fn dec(&mut self, a: u64, r: u64, bits: u32) {
        let cf = self.aux & CF;
        self.sub(a, 1, r, bits);
        self.aux = (self.aux & !CF) | cf;
    }

    /// Set every flag from a result with explicit CF and OF and AF = 0
    /// (shifts, multiplies, bit scans use this with their own rules).
    #[inline(always)]
    pub fn result_cf_of(&mut self, r: u64, bits: u32, cf: bool, of: bool) {
        self.res = sext(r, bits);
        self.aux = cf as u64 | ((of as u64) << 11);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference flags for 8-bit add/sub, computed the long way.
    fn reference(a: u8, b: u8, c: u8, sub: bool) -> u64 {
        let (wide, r) = if sub {
            let w = a as i32 - b as i32 - c as i32;
            (w, w as u8)
        } else {
            let w = a as i32 + b as i32 + c as i32;
            (w, w as u8)
        };
        let mut f = 0;
        if !(0..=255).contains(&wide) {
            f |= CF;
        }
        let sa = a as i8 as i32;
        let sb = b as i8 as i32;
        let sw = if sub {
            sa - sb - c as i32
        } else {
            sa + sb + c as i32
        };
        if !(-128..=127).contains(&sw) {
            f |= OF;
        }
        let lo = if sub {
            (a & 15) as i32 - (b & 15) as i32 - c as i32
        } else {
            (a & 15) as i32 + (b & 15) as i32 + c as i32
        };
        if !(0..=15).contains(&lo) {
            f |= AF;
        }
        if r == 0 {
            f |= ZF;
        }
        if r & 0x80 != 0 {
            f |= SF;
        }
        if r.count_ones() % 2 == 0 {
            f |= PF;
        }
        f
    }

    #[test]
    fn add_sub_exhaustive_8bit() {
        let mut lf = LazyFlags::default();
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for c in 0..=1u8 {
                    let r = a.wrapping_add(b).wrapping_add(c);
                    lf.add(a as u64, b as u64, r as u64, 8);
                    assert_eq!(
                        lf.materialize(),
                        reference(a, b, c, false),
                        "add {a} {b} {c}"
                    );
                    let r = a.wrapping_sub(b).wrapping_sub(c);
                    lf.sub(a as u64, b as u64, r as u64, 8);
                    assert_eq!(
                        lf.materialize(),
                        reference(a, b, c, true),
                        "sub {a} {b} {c}"
                    );
                }
            }
        }
    }

    #[test]
    fn wide_edges() {
        let mut lf = LazyFlags::default();
        lf.add(u64::MAX, 1, 0, 64);
        assert_eq!(lf.materialize(), CF | ZF | PF | AF);
        lf.add(0x7fff_ffff, 1, 0x8000_0000, 32);
        assert_eq!(lf.materialize(), OF | SF | AF | PF);
        lf.sub(0, 1, 0xffff, 16);
        assert_eq!(lf.materialize(), CF | SF | AF | PF);
        lf.sub(0x8000_0000_0000_0000, 1, 0x7fff_ffff_ffff_ffff, 64);
        assert_eq!(lf.materialize(), OF | AF | PF);
    }

    #[test]
    fn load_round_trips_every_combination() {
        let mut lf = LazyFlags::default();
        for v in 0..64u64 {
            // Spread 6 bits over the six flag positions.
            let bits = [CF, PF, AF, ZF, SF, OF];
            let f = bits
                .iter()
                .enumerate()
                .filter(|(i, _)| v & (1 << i) != 0)
                .fold(0, |acc, (_, b)| acc | b);
            lf.load(f);
            assert_eq!(lf.materialize(), f);
            for cc in 0..16u8 {
                let cf = f & CF != 0;
                let zf = f & ZF != 0;
                let sf = f & SF != 0;
                let of = f & OF != 0;
                let pf = f & PF != 0;
                let want = match cc >> 1 {
                    0 => of,
                    1 => cf,
                    2 => zf,
                    3 => cf || zf,
                    4 => sf,
                    5 => pf,
                    6 => sf != of,
                    _ => zf || sf != of,
                } ^ (cc & 1 != 0);
                assert_eq!(lf.cond(cc), want, "cc {cc} flags {f:#x}");
            }
        }
    }

    #[test]
    fn inc_dec_keep_cf() {
        let mut lf = LazyFlags::default();
        lf.load(CF);
        lf.inc(0xff, 0, 8);
        assert_eq!(lf.materialize(), CF | ZF | PF | AF);
        lf.load(0);
        lf.dec(0, 0xffff_ffff, 32);
        assert_eq!(lf.materialize(), SF | PF | AF);
        lf.dec(0x80, 0x7f, 8);
        assert_eq!(lf.materialize(), OF | AF);
    }

    #[test]
    fn set_bits_partial() {
        let mut lf = LazyFlags::default();
        lf.sub(5, 5, 0, 32);
        lf.set_bits(CF, CF);
        assert_eq!(lf.materialize(), ZF | PF | CF);
        lf.set_bits(ZF | SF, SF);
        assert_eq!(lf.materialize(), PF | CF | SF);
    }
}
