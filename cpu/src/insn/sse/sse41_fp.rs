//! SSE4.1 floating point (legacy encodings): ROUNDPS/PD/SS/SD and the
//! dot products DPPS/DPPD, on the soft-float of [`super::softfloat`].
//!
//! ROUND* (SDM Vol. 2, ROUNDPS): imm8[2] = 1 rounds by MXCSR.RC, else by
//! imm8[1:0]; imm8[3] = 1 suppresses the precision exception (neither PE
//! nor #XM for it). Only IE (an SNaN source) and PE can be raised; DAZ
//! applies to the source, FZ has nothing to flush.
//!
//! DPPS/DPPD follow the SDM's DP_primitive: the products of the lanes
//! selected by imm8[7:4] (a lane not selected is +0.0, not a product),
//! each rounded, then the pairwise sums (DPPS: (t0 + t1) + (t2 + t3);
//! DPPD: t0 + t1), each rounded, and the sum broadcast to the lanes
//! selected by imm8[3:0] (+0.0 elsewhere). Every multiply and add
//! reports its own exceptions; the instruction's flags are their union.

use super::fp_arith::{commit, read_scalar, simd_fault};
use super::softfloat::{self as sf, mx, Fmt, Op, Round, F32, F64};
use super::{check, from_lanes, lane, lane_mask, read_xm128, set_xmm, xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction};

/// The handler of one of these Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Roundps_xmm_xmmm128_imm8 => round::<false, true>,
        C::Roundpd_xmm_xmmm128_imm8 => round::<true, true>,
        C::Roundss_xmm_xmmm32_imm8 => round::<false, false>,
        C::Roundsd_xmm_xmmm64_imm8 => round::<true, false>,
        C::Dpps_xmm_xmmm128_imm8 => dp::<false>,
        C::Dppd_xmm_xmmm128_imm8 => dp::<true>,
        _ => return None,
    })
}

fn fmt(f64_: bool) -> Fmt {
    if f64_ {
        F64
    } else {
        F32
    }
}

/// One lane of ROUND* under `imm` and `mxcsr`.
pub(crate) fn round_lane(f: Fmt, a: u64, imm: u8, mxcsr: u32) -> (u64, u32) {
    let rc = if imm & 4 != 0 {
        Round::of(mxcsr)
    } else {
        Round::of(u32::from(imm & 3) << mx::RC_SHIFT)
    };
    let (r, fl) = sf::round_int(f, a, rc, mxcsr);
    let fl = if imm & 8 != 0 { fl & !mx::PE } else { fl };
    (r, fl)
}

/// ROUNDPS/PD xmm, xmm/m128 (aligned), imm8 (`PACKED`); ROUNDSS/SD xmm,
/// xmm/m32/m64, imm8 (the destination's other lanes are kept).
fn round<const F64_: bool, const PACKED: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let f = fmt(F64_);
    let w = f.w();
    let imm = insn.immediate8();
    let mxcsr = cpu.state.mxcsr;
    let d = insn.op0_register();
    let mut flags = 0;
    let r = if PACKED {
        let s = read_xm128(cpu, plat, insn, 1, true)?;
        let mut r = 0u128;
        for i in 0..128 / w {
            let (v, fl) = round_lane(f, lane(s, w, i), imm, mxcsr);
            flags |= fl;
            r |= u128::from(v) << (w * i);
        }
        r
    } else {
        let s = read_scalar(cpu, plat, insn, 1, f)?;
        let (v, fl) = round_lane(f, s, imm, mxcsr);
        flags = fl;
        (xmm(cpu, d) & !u128::from(lane_mask(w))) | u128::from(v)
    };
    commit(cpu, flags)?;
    set_xmm(cpu, d, r);
    Ok(())
}

/// The flags a multi-step instruction has raised so far, and whether
/// one of its steps has raised an unmasked exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Steps {
    pub flags: u32,
    pub fault: bool,
}

impl Steps {
    /// Account for one step's flags `fl` (the union over the step's
    /// parallel operations) with the rule of [`commit`]: an unmasked
    /// pre-computation exception contributes only the pre-computation
    /// flags; any unmasked exception ends the instruction after this
    /// step.
    fn step(&mut self, fl: u32, mxcsr: u32) {
        let unmasked = fl & !(mxcsr >> mx::MASK_SHIFT) & mx::FLAGS;
        if unmasked & mx::PRE != 0 {
            self.flags |= fl & mx::PRE;
        } else {
            self.flags |= fl & mx::FLAGS;
        }
        self.fault |= unmasked != 0;
    }
}

/// The dot product of `a` (destination) and `b` (source) by `imm`
/// (DP_primitive of the SDM) in its three steps: the products, the
/// pairwise sums, the final sum (DPPS; DPPD has two). Each step sees
/// the rounded results of the one before; an unmasked exception in a
/// step ends the instruction there (measured on the host: an unmasked
/// underflow of a product faults with UE, not with the DE its denormal
/// result would raise in the sums).
pub(crate) fn dot(f64_: bool, a: u128, b: u128, imm: u8, mxcsr: u32) -> (u128, Steps) {
    let f = fmt(f64_);
    let w = f.w();
    let mut st = Steps {
        flags: 0,
        fault: false,
    };
    let mut fl = 0;
    let mut t = [0u64; 4];
    for (i, ti) in (0..128 / w).zip(t.iter_mut()) {
        if imm >> (4 + i) & 1 != 0 {
            let (v, f1) = sf::arith(f, Op::Mul, lane(a, w, i), lane(b, w, i), mxcsr);
            *ti = v;
            fl |= f1;
        }
    }
    st.step(fl, mxcsr);
    if st.fault {
        return (0, st);
    }
    let sum = if f64_ {
        let (v, f2) = sf::arith(f, Op::Add, t[0], t[1], mxcsr);
        st.step(f2, mxcsr);
        v
    } else {
        let (lo, f2) = sf::arith(f, Op::Add, t[0], t[1], mxcsr);
        let (hi, f3) = sf::arith(f, Op::Add, t[2], t[3], mxcsr);
        st.step(f2 | f3, mxcsr);
        if st.fault {
            return (0, st);
        }
        let (v, f4) = sf::arith(f, Op::Add, lo, hi, mxcsr);
        st.step(f4, mxcsr);
        v
    };
    let r = from_lanes(w, |i| if imm >> i & 1 != 0 { sum } else { 0 });
    (r, st)
}

/// DPPS/DPPD xmm, xmm/m128 (aligned), imm8 (DPPD uses imm8[5:4] and
/// imm8[1:0] only).
fn dp<const F64_: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let b = read_xm128(cpu, plat, insn, 1, true)?;
    let d = insn.op0_register();
    let (r, st) = dot(F64_, xmm(cpu, d), b, insn.immediate8(), cpu.state.mxcsr);
    cpu.state.mxcsr |= st.flags;
    if st.fault {
        return Err(simd_fault(cpu));
    }
    set_xmm(cpu, d, r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MXCSR_RESET;

    const S_2_5: u64 = 0x4020_0000;
    const S_M2_5: u64 = 0xc020_0000;
    const S_2: u64 = 0x4000_0000;
    const S_3: u64 = 0x4040_0000;
    const S_M3: u64 = 0xc040_0000;

    fn r32(a: u64, imm: u8, mxcsr: u32) -> (u64, u32) {
        round_lane(F32, a, imm, mxcsr)
    }

    #[test]
    fn round_imm8_modes() {
        assert_eq!(r32(S_2_5, 0, MXCSR_RESET), (S_2, mx::PE));
        assert_eq!(r32(S_M2_5, 1, MXCSR_RESET), (S_M3, mx::PE));
        assert_eq!(r32(S_2_5, 2, MXCSR_RESET), (S_3, mx::PE));
        assert_eq!(r32(S_2_5, 3, MXCSR_RESET), (S_2, mx::PE));
        // imm8[3]: no precision exception.
        assert_eq!(r32(S_2_5, 8 | 2, MXCSR_RESET), (S_3, 0));
        // imm8[2]: MXCSR.RC (round up here), imm8[1:0] ignored.
        let ru = MXCSR_RESET | 2 << mx::RC_SHIFT;
        assert_eq!(r32(S_2_5, 4 | 3, ru), (S_3, mx::PE));
        // Integral values, zeros and infinities come back unchanged.
        assert_eq!(r32(S_3, 0, MXCSR_RESET), (S_3, 0));
        assert_eq!(r32(0x7f80_0000, 0, MXCSR_RESET), (0x7f80_0000, 0));
        // The sign survives a zero result.
        assert_eq!(r32(0xbecc_cccd, 0, MXCSR_RESET), (0x8000_0000, mx::PE));
    }

    #[test]
    fn round_nan_and_denormal() {
        // SNaN: quieted, IE, even with imm8[3] set; QNaN: no flag.
        assert_eq!(r32(0x7f80_0001, 8, MXCSR_RESET), (0x7fc0_0001, mx::IE));
        assert_eq!(r32(0xffc0_0000, 0, MXCSR_RESET), (0xffc0_0000, 0));
        // A denormal rounds up to 1 (PE, never DE); with DAZ it is +0.
        assert_eq!(r32(1, 2, MXCSR_RESET), (0x3f80_0000, mx::PE));
        assert_eq!(r32(1, 2, MXCSR_RESET | mx::DAZ), (0, 0));
        // Doubles: -1.5 toward zero is -1.
        let d = round_lane(F64, 0xbff8_0000_0000_0000, 3, MXCSR_RESET);
        assert_eq!(d, (0xbff0_0000_0000_0000, mx::PE));
    }

    #[test]
    fn dpps_sums_pairwise() {
        // Products 1, 2^24, 1, 1: (1 + 2^24) + (1 + 1) rounds the first
        // sum to 2^24 (a tie, to even) and then gives 2^24 + 2; summing
        // left to right would lose both ones.
        let one = 0x3f80_0000u128;
        let a = one | (0x4b80_0000u128 << 32) | (one << 64) | (one << 96);
        let b = one | (one << 32) | (one << 64) | (one << 96);
        let (r, st) = dot(false, a, b, 0xf1, MXCSR_RESET);
        assert_eq!(r, 0x4b80_0001);
        assert_eq!(
            st,
            Steps {
                flags: mx::PE,
                fault: false
            }
        );
        // Lanes not selected by imm8[7:4] are +0.0, not products: an SNaN
        // there raises nothing; the result goes to imm8[3:0]'s lanes.
        let a = a | 0x7f80_0001u128 << 96;
        // (1 + 2^24) + (1 + 0): 2^24 + 1, a tie, to even: 2^24.
        let (r, st) = dot(false, a, b, 0x7a, MXCSR_RESET);
        let v = 0x4b80_0000u128;
        assert_eq!(r, v << 32 | v << 96);
        assert_eq!(st.flags, mx::PE);
    }

    #[test]
    fn dpps_unmasked_product_underflow_stops() {
        // 2^-100 · 2^-100 underflows; with UM = 0 the instruction ends
        // there with UE (and PE: inexact), before the sums could report
        // the denormal.
        let tiny = 0x0d80_0000u128; // 2^-100
        let a = tiny | tiny << 32;
        let mx_ = MXCSR_RESET & !(mx::UM | mx::DE << mx::MASK_SHIFT);
        let (_, st) = dot(false, a, a, 0x31, mx_);
        assert!(st.fault);
        assert_eq!(st.flags & (mx::UE | mx::DE), mx::UE);
    }
}
