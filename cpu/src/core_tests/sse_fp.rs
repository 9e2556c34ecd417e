//! SSE/SSE2 floating point: rounding modes, NaN rules, FZ/DAZ, overflow
//! and underflow flags, integer-indefinite conversions, COMISS flags,
//! #XM vs #UD. Values are checked against bit patterns worked out by
//! hand from the SDM; the differential suite compares the rest with the
//! host CPU.

use super::*;
use crate::state::rflags::{AF, CF, OF, PF, SF, ZF};
use iced_x86::code_asm::*;

const RESET: u32 = crate::state::MXCSR_RESET;
const IE: u32 = 1;
const DE: u32 = 2;
const ZE: u32 = 4;
const OE: u32 = 8;
const UE: u32 = 0x10;
const PE: u32 = 0x20;
const DAZ: u32 = 0x40;
const FZ: u32 = 0x8000;
const RN: u32 = 0;
const RD: u32 = 1 << 13;
const RU: u32 = 2 << 13;
const RZ: u32 = 3 << 13;

const ONE_S: u128 = 0x3f80_0000;
const S_MIN_NORMAL: u128 = 0x0080_0000;
const S_MAX: u128 = 0x7f7f_ffff;
const S_QNAN_IND: u128 = 0xffc0_0000;

fn sse_machine() -> Machine {
    let mut m = Machine::long64();
    m.cpu.state.cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT;
    m
}

/// Run one instruction with xmm0 = `a`, xmm1 = `b`, MXCSR = `mxcsr`;
/// return the outcome, xmm0 and MXCSR.
fn run1(
    f: impl FnOnce(&mut CodeAssembler),
    a: u128,
    b: u128,
    mxcsr: u32,
) -> (Result<(), Fault>, u128, u32) {
    let mut m = sse_machine();
    m.load(f);
    m.cpu.state.xmm[0] = a;
    m.cpu.state.xmm[1] = b;
    m.cpu.state.mxcsr = mxcsr;
    let r = m.exec_one();
    (r, m.cpu.state.xmm[0], m.cpu.state.mxcsr)
}

fn addss(a: u128, b: u128, mx: u32) -> (Result<(), Fault>, u128, u32) {
    run1(|c| c.addss(xmm0, xmm1).unwrap(), a, b, mx)
}

#[test]
fn rounding_modes() {
    // 1 + 2^-24 is halfway between 1 and 1 + 2^-23.
    let half_ulp = 0x3380_0000;
    for (rc, want) in [
        (RN, 0x3f80_0000),
        (RD, 0x3f80_0000),
        (RU, 0x3f80_0001),
        (RZ, 0x3f80_0000),
    ] {
        assert_eq!(
            addss(ONE_S, half_ulp, RESET | rc),
            (Ok(()), want, RESET | rc | PE)
        );
    }
    // -(1 + 2^-24): RD goes away from zero, RU toward it.
    let neg = |x: u128| x | 0x8000_0000;
    assert_eq!(addss(neg(ONE_S), neg(half_ulp), RESET | RD).1, 0xbf80_0001);
    assert_eq!(addss(neg(ONE_S), neg(half_ulp), RESET | RU).1, 0xbf80_0000);
    // 1 + 3·2^-25 (above the midpoint): RN rounds up.
    assert_eq!(addss(ONE_S, 0x33c0_0000, RESET).1, 0x3f80_0001);
    // x - x is +0, except -0 under RD.
    assert_eq!(
        run1(|c| c.subss(xmm0, xmm1).unwrap(), ONE_S, ONE_S, RESET).1,
        0
    );
    assert_eq!(
        run1(|c| c.subss(xmm0, xmm1).unwrap(), ONE_S, ONE_S, RESET | RD).1,
        0x8000_0000
    );
    // Exact double results: 1/3 and sqrt(2) round to nearest.
    let one_d = 0x3ff0_0000_0000_0000u128;
    let three_d = 0x4008_0000_0000_0000u128;
    let (r, x, mx) = run1(|c| c.divsd(xmm0, xmm1).unwrap(), one_d, three_d, RESET);
    assert_eq!((r, x, mx), (Ok(()), 0x3fd5_5555_5555_5555, RESET | PE));
    let (_, x, _) = run1(|c| c.divsd(xmm0, xmm1).unwrap(), one_d, three_d, RESET | RU);
    assert_eq!(x, 0x3fd5_5555_5555_5556);
    let two_d = 0x4000_0000_0000_0000u128;
    let (_, x, _) = run1(|c| c.sqrtsd(xmm0, xmm1).unwrap(), 0, two_d, RESET);
    assert_eq!(x, 0x3ff6_a09e_667f_3bcd);
    // Exact: sqrt(4) = 2 with no PE; scalar keeps the upper lanes.
    let (_, x, mx) = run1(
        |c| c.sqrtss(xmm0, xmm1).unwrap(),
        0x1111_2222_3333_4444_5555_6666_0000_0000,
        0x4080_0000,
        RESET,
    );
    assert_eq!((x, mx), (0x1111_2222_3333_4444_5555_6666_4000_0000, RESET));
}

#[test]
fn nan_rules() {
    let snan = 0x7f80_0001u128;
    let qnan = 0x7fc0_0002u128;
    // Both NaN: the first source's, quieted; IE for the SNaN.
    assert_eq!(addss(snan, qnan, RESET), (Ok(()), 0x7fc0_0001, RESET | IE));
    assert_eq!(addss(qnan, snan, RESET), (Ok(()), qnan, RESET | IE));
    // One NaN: that one; QNaN raises nothing.
    assert_eq!(addss(ONE_S, qnan, RESET), (Ok(()), qnan, RESET));
    // Invalid operations: the QNaN indefinite.
    let inf = 0x7f80_0000u128;
    assert_eq!(
        run1(|c| c.subss(xmm0, xmm1).unwrap(), inf, inf, RESET),
        (Ok(()), S_QNAN_IND, RESET | IE)
    );
    assert_eq!(
        run1(|c| c.sqrtss(xmm0, xmm1).unwrap(), 0, 0xbf80_0000, RESET),
        (Ok(()), S_QNAN_IND, RESET | IE)
    );
    // MINSS/MAXSS: any NaN gives the second operand unchanged, and IE.
    assert_eq!(
        run1(|c| c.minss(xmm0, xmm1).unwrap(), qnan, ONE_S, RESET),
        (Ok(()), ONE_S, RESET | IE)
    );
    assert_eq!(
        run1(|c| c.maxss(xmm0, xmm1).unwrap(), ONE_S, snan, RESET),
        (Ok(()), snan, RESET | IE)
    );
    // Both zeros: the second.
    assert_eq!(
        run1(|c| c.minss(xmm0, xmm1).unwrap(), 0x8000_0000, 0, RESET).1,
        0
    );
    // CVTSS2SD keeps the payload's top bits and quiets.
    let (_, x, mx) = run1(|c| c.cvtss2sd(xmm0, xmm1).unwrap(), 0, 0xff80_0001, RESET);
    assert_eq!((x, mx), (0xfff8_0000_2000_0000, RESET | IE));
}

#[test]
fn denormals_fz_daz() {
    // min_normal / 2: an exact denormal; no UE while masked.
    let half = 0x3f00_0000u128;
    let mul = |a, b, mx| run1(|c| c.mulss(xmm0, xmm1).unwrap(), a, b, mx);
    assert_eq!(mul(S_MIN_NORMAL, half, RESET), (Ok(()), 0x0040_0000, RESET));
    // FZ: the tiny result is flushed, UE and PE set.
    assert_eq!(
        mul(S_MIN_NORMAL, half, RESET | FZ),
        (Ok(()), 0, RESET | FZ | UE | PE)
    );
    // Inexact denormal result: UE and PE.
    let (_, x, mx) = mul(S_MIN_NORMAL, 0x3f00_0001, RESET);
    assert_eq!((x, mx), (0x0040_0000, RESET | UE | PE));
    // Tininess after rounding: (2^-126)(1 - 2^-24) rounds up to the
    // smallest normal with unbounded exponent: not tiny, only PE.
    let (_, x, mx) = mul(0x0080_0001, 0x3f7f_fffe, RESET);
    assert_eq!((x, mx & 0x3f), (0x0080_0000, PE));
    // A denormal operand: DE; with DAZ it is a zero and DE stays clear.
    let den = 0x0000_0001u128;
    assert_eq!(addss(den, ONE_S, RESET).2, RESET | DE | PE);
    assert_eq!(addss(den, 0, RESET), (Ok(()), den, RESET | DE));
    assert_eq!(addss(den, 0, RESET | DAZ), (Ok(()), 0, RESET | DAZ));
    // DAZ: x / denormal is a division by zero.
    assert_eq!(
        run1(|c| c.divss(xmm0, xmm1).unwrap(), ONE_S, den, RESET | DAZ),
        (Ok(()), 0x7f80_0000, RESET | DAZ | ZE)
    );
}

#[test]
fn overflow_and_underflow() {
    let two = 0x4000_0000u128;
    let mul = |a, b, mx| run1(|c| c.mulss(xmm0, xmm1).unwrap(), a, b, mx);
    assert_eq!(
        mul(S_MAX, two, RESET),
        (Ok(()), 0x7f80_0000, RESET | OE | PE)
    );
    assert_eq!(mul(S_MAX, two, RESET | RZ).1, S_MAX);
    assert_eq!(
        mul(S_MAX | 0x8000_0000, two, RESET | RU).1,
        S_MAX | 0x8000_0000
    );
    assert_eq!(mul(S_MAX | 0x8000_0000, two, RESET | RD).1, 0xff80_0000);
    // CVTSD2SS of a huge double overflows; of a tiny one underflows.
    let (_, x, mx) = run1(
        |c| c.cvtsd2ss(xmm0, xmm1).unwrap(),
        0,
        0x7fe0_0000_0000_0000,
        RESET,
    );
    assert_eq!((x, mx), (0x7f80_0000, RESET | OE | PE));
    let (_, x, mx) = run1(
        |c| c.cvtsd2ss(xmm0, xmm1).unwrap(),
        0,
        0x0010_0000_0000_0000,
        RESET,
    );
    assert_eq!((x, mx), (0, RESET | UE | PE));
    let (_, x, _) = run1(
        |c| c.cvtsd2ss(xmm0, xmm1).unwrap(),
        0,
        0x0010_0000_0000_0000,
        RESET | RU,
    );
    assert_eq!(x, 1);
}

#[test]
fn integer_conversions() {
    let mut m = sse_machine();
    type Asm = fn(&mut CodeAssembler);
    let cases: [(Asm, u128, u32, u64, u32); 8] = [
        // NaN → indefinite, IE.
        (
            |c| c.cvttss2si(eax, xmm1).unwrap(),
            0x7fc0_0000,
            RESET,
            0x8000_0000,
            IE,
        ),
        (
            |c| c.cvtss2si(rax, xmm1).unwrap(),
            0xff80_0000,
            RESET,
            1 << 63,
            IE,
        ),
        // 2^31 does not fit in 32 bits.
        (
            |c| c.cvtss2si(eax, xmm1).unwrap(),
            0x4f00_0000,
            RESET,
            0x8000_0000,
            IE,
        ),
        // -2^31 does.
        (
            |c| c.cvtss2si(eax, xmm1).unwrap(),
            0xcf00_0000,
            RESET,
            0x8000_0000,
            0,
        ),
        // 2.5: RN → 2, RU → 3, truncation → 2, all inexact.
        (
            |c| c.cvtss2si(eax, xmm1).unwrap(),
            0x4020_0000,
            RESET,
            2,
            PE,
        ),
        (
            |c| c.cvtss2si(eax, xmm1).unwrap(),
            0x4020_0000,
            RESET | RU,
            3,
            PE,
        ),
        (
            |c| c.cvttsd2si(rax, xmm1).unwrap(),
            0xc004_0000_0000_0000,
            RESET | RU,
            (-2i64) as u64,
            PE,
        ),
        // 2^63 as a double → 64-bit indefinite.
        (
            |c| c.cvtsd2si(rax, xmm1).unwrap(),
            0x43e0_0000_0000_0000,
            RESET,
            1 << 63,
            IE,
        ),
    ];
    for (i, (f, src, mx, want, flags)) in cases.into_iter().enumerate() {
        m.load(f);
        m.cpu.state.gpr[0] = u64::MAX;
        m.cpu.state.xmm[1] = src;
        m.cpu.state.mxcsr = mx;
        assert_eq!(m.exec_one(), Ok(()), "case {i}");
        assert_eq!(m.gpr(0), want, "case {i}");
        assert_eq!(m.cpu.state.mxcsr, mx | flags, "case {i}");
    }
    // Packed: CVTTPD2DQ zeroes the upper quadword.
    let (_, x, mx) = run1(
        |c| c.cvttpd2dq(xmm0, xmm1).unwrap(),
        u128::MAX,
        (0x7ff8_0000_0000_0000u128 << 64) | 0xc000_0000_0000_0000,
        RESET,
    );
    assert_eq!((x, mx), (0x8000_0000_ffff_fffe, RESET | IE));
    // CVTSI2SS of 2^24 + 1 is inexact.
    let mut m = sse_machine();
    m.load(|c| c.cvtsi2ss(xmm0, eax).unwrap());
    m.cpu.state.gpr[0] = (1 << 24) + 1;
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(
        (m.cpu.state.xmm[0], m.cpu.state.mxcsr),
        (0x4b80_0000, RESET | PE)
    );
}

#[test]
fn compares() {
    let qnan = 0x7fc0_0000u128;
    let two = 0x4000_0000u128;
    // CMPPS lanes: LT on (1, 2), (2, 1), (NaN, 1), (-0, +0).
    let a = ONE_S | (two << 32) | (qnan << 64) | (0x8000_0000u128 << 96);
    let b = two | (ONE_S << 32) | (ONE_S << 64);
    let (_, x, mx) = run1(|c| c.cmpps(xmm0, xmm1, 1).unwrap(), a, b, RESET);
    assert_eq!((x, mx), (0xffff_ffff, RESET | IE));
    // EQ is quiet on a QNaN; -0 == +0.
    let (_, x, mx) = run1(|c| c.cmpps(xmm0, xmm1, 0).unwrap(), a, b, RESET);
    assert_eq!((x, mx), (0xffff_ffffu128 << 96, RESET));
    // NLE: true when unordered.
    let (_, x, _) = run1(|c| c.cmpps(xmm0, xmm1, 6).unwrap(), a, b, RESET);
    assert_eq!(x, (0xffff_ffffu128 << 32) | (0xffff_ffffu128 << 64));

    // COMISS / UCOMISS: ZF, PF, CF; OF, SF, AF cleared.
    let mut m = sse_machine();
    for (ucom, a, b, want, fl) in [
        (false, ONE_S, two, CF, 0),
        (false, two, ONE_S, 0, 0),
        (false, ONE_S, ONE_S, ZF, 0),
        (false, qnan, ONE_S, ZF | PF | CF, IE),
        (true, qnan, ONE_S, ZF | PF | CF, 0),
    ] {
        if ucom {
            m.load(|c| c.ucomiss(xmm0, xmm1).unwrap());
        } else {
            m.load(|c| c.comiss(xmm0, xmm1).unwrap());
        }
        m.cpu.set_rflags(rflags::FIXED1 | OF | SF | AF);
        m.cpu.state.xmm[0] = a;
        m.cpu.state.xmm[1] = b;
        m.cpu.state.mxcsr = RESET;
        assert_eq!(m.exec_one(), Ok(()));
        assert_eq!(m.flags(), want);
        assert_eq!(m.cpu.state.mxcsr, RESET | fl);
    }
}

#[test]
fn unmasked_exceptions() {
    let mut m = sse_machine();
    m.load(|c| c.divps(xmm0, xmm1).unwrap());
    // ZE unmasked: #XM, destination unchanged, ZE set (and the masked
    // pre-computation IE of another lane), no PE from the inexact lane.
    let a = ONE_S | (ONE_S << 32);
    let b = 0x4040_0000u128 << 32 | (ONE_S << 96);
    m.cpu.state.xmm[0] = a;
    m.cpu.state.xmm[1] = b;
    let mx = RESET & !(ZE << 7);
    m.cpu.state.mxcsr = mx;
    assert_eq!(m.exec_one(), Err(Fault::XM));
    assert_eq!(m.cpu.state.xmm[0], a);
    assert_eq!(m.cpu.state.mxcsr, mx | ZE | IE);
    // CR4.OSXMMEXCPT = 0: #UD instead.
    m.cpu.state.cr4 &= !cr4::OSXMMEXCPT;
    m.cpu.state.mxcsr = mx;
    assert_eq!(m.exec_one(), Err(Fault::UD));
    // PE unmasked: a post-computation exception; all flags set.
    m.cpu.state.cr4 |= cr4::OSXMMEXCPT;
    m.cpu.state.xmm[0] = ONE_S | (ONE_S << 32);
    m.cpu.state.xmm[1] = 0x4040_0000 | (0x4040_0000 << 32) | (ONE_S << 64) | (ONE_S << 96);
    let mx = RESET & !(PE << 7);
    m.cpu.state.mxcsr = mx;
    assert_eq!(m.exec_one(), Err(Fault::XM));
    assert_eq!(m.cpu.state.mxcsr, mx | PE);
    // Unmasked UE on an exact tiny result (masked, no UE at all).
    m.load(|c| c.mulss(xmm0, xmm1).unwrap());
    m.cpu.state.xmm[0] = S_MIN_NORMAL;
    m.cpu.state.xmm[1] = 0x3f00_0000;
    let mx = RESET & !(UE << 7);
    m.cpu.state.mxcsr = mx;
    assert_eq!(m.exec_one(), Err(Fault::XM));
    assert_eq!(m.cpu.state.mxcsr, mx | UE);
    assert_eq!(m.cpu.state.xmm[0], S_MIN_NORMAL);
    // COMISS with IE unmasked leaves RFLAGS alone.
    m.load(|c| c.comiss(xmm0, xmm1).unwrap());
    m.cpu.set_rflags(rflags::FIXED1 | OF);
    m.cpu.state.xmm[0] = 0x7fc0_0000;
    let mx = RESET & !(IE << 7);
    m.cpu.state.mxcsr = mx;
    assert_eq!(m.exec_one(), Err(Fault::XM));
    assert_eq!(m.flags(), OF);
    assert_eq!(m.cpu.state.mxcsr, mx | IE);
}

#[test]
fn approximations_within_bound() {
    // RCPSS/RSQRTSS: relative error ≤ 1.5·2^-12, checked in f64 (exact
    // for these magnitudes); MXCSR untouched.
    for bits in [
        0x3f80_0000u32,
        0x4040_0000,
        0x3eaa_aaab,
        0x4b12_3456,
        0x0080_0000,
    ] {
        let x = f64::from(f32::from_bits(bits));
        let (_, r, mx) = run1(|c| c.rcpss(xmm0, xmm1).unwrap(), 0, u128::from(bits), RESET);
        let r = f64::from(f32::from_bits(r as u32));
        assert!(((r - 1.0 / x) * x).abs() <= 1.5 / 4096.0, "rcp {bits:#x}");
        assert_eq!(mx, RESET);
        let (_, r, _) = run1(
            |c| c.rsqrtss(xmm0, xmm1).unwrap(),
            0,
            u128::from(bits),
            RESET,
        );
        let r = f64::from(f32::from_bits(r as u32));
        assert!(
            ((r - 1.0 / x.sqrt()) * x.sqrt()).abs() <= 1.5 / 4096.0,
            "rsqrt {bits:#x}"
        );
    }
    // ±0 → ±∞, denormal → ∞, negative → indefinite for RSQRT.
    assert_eq!(
        run1(|c| c.rcpss(xmm0, xmm1).unwrap(), 0, 0x8000_0000, RESET).1,
        0xff80_0000
    );
    assert_eq!(
        run1(|c| c.rcpss(xmm0, xmm1).unwrap(), 0, 1, RESET).1,
        0x7f80_0000
    );
    assert_eq!(
        run1(|c| c.rsqrtss(xmm0, xmm1).unwrap(), 0, 0xbf80_0000, RESET).1,
        S_QNAN_IND
    );
}
