//! SSE4.1 (legacy encodings), the integer and data-movement part: the
//! blends (BLENDPS/PD, PBLENDW by imm8; BLENDVPS/PD, PBLENDVB by the
//! implicit XMM0), PTEST, the sign/zero extensions PMOVSX*/PMOVZX*,
//! PMULDQ, PMULLD, PCMPEQQ, PACKUSDW, PMIN/PMAX SB/SD/UW/UD,
//! PHMINPOSUW, MPSADBW, MOVNTDQA, the inserts and extracts (PEXTRB/W/D/Q,
//! EXTRACTPS, PINSRB/D/Q, INSERTPS). The floating-point part (ROUND*,
//! DPPS, DPPD) is [`super::sse41_fp`].
//!
//! Alignment (SDM Vol. 2, 2.4): a full m128 operand must be 16-byte
//! aligned (exception type 4; MOVNTDQA type 1); the narrower memory
//! operands (PMOVSX/ZX m16/m32/m64, INSERTPS m32, the inserts' and
//! extracts' m8-m64) have no alignment requirement (type 5).

use super::shuffle::pack_lanes;
use super::{binop, check, from_lanes, lane, map2, read_xm128, set_xmm, sx, xmm, xmm_index};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::rflags::{AF, CF, OF, PF, SF, ZF};
use iced_x86::{Code, Instruction, OpKind, Register};

const MINS: u8 = 0;
const MAXS: u8 = 1;
const MINU: u8 = 2;
const MAXU: u8 = 3;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Pblendvb_xmm_xmmm128 => blendv::<8>,
        C::Blendvps_xmm_xmmm128 => blendv::<32>,
        C::Blendvpd_xmm_xmmm128 => blendv::<64>,
        C::Blendps_xmm_xmmm128_imm8 => blend_imm::<32>,
        C::Blendpd_xmm_xmmm128_imm8 => blend_imm::<64>,
        C::Pblendw_xmm_xmmm128_imm8 => blend_imm::<16>,
        C::Ptest_xmm_xmmm128 => ptest,
        C::Pmovsxbw_xmm_xmmm64 => pmovx::<true, 8, 16>,
        C::Pmovsxbd_xmm_xmmm32 => pmovx::<true, 8, 32>,
        C::Pmovsxbq_xmm_xmmm16 => pmovx::<true, 8, 64>,
        C::Pmovsxwd_xmm_xmmm64 => pmovx::<true, 16, 32>,
        C::Pmovsxwq_xmm_xmmm32 => pmovx::<true, 16, 64>,
        C::Pmovsxdq_xmm_xmmm64 => pmovx::<true, 32, 64>,
        C::Pmovzxbw_xmm_xmmm64 => pmovx::<false, 8, 16>,
        C::Pmovzxbd_xmm_xmmm32 => pmovx::<false, 8, 32>,
        C::Pmovzxbq_xmm_xmmm16 => pmovx::<false, 8, 64>,
        C::Pmovzxwd_xmm_xmmm64 => pmovx::<false, 16, 32>,
        C::Pmovzxwq_xmm_xmmm32 => pmovx::<false, 16, 64>,
        C::Pmovzxdq_xmm_xmmm64 => pmovx::<false, 32, 64>,
        C::Pmuldq_xmm_xmmm128 => pmuldq,
        C::Pmulld_xmm_xmmm128 => pmulld,
        C::Pcmpeqq_xmm_xmmm128 => pcmpeqq,
        C::Packusdw_xmm_xmmm128 => packusdw,
        C::Pminsb_xmm_xmmm128 => minmax::<MINS, 8>,
        C::Pminsd_xmm_xmmm128 => minmax::<MINS, 32>,
        C::Pminuw_xmm_xmmm128 => minmax::<MINU, 16>,
        C::Pminud_xmm_xmmm128 => minmax::<MINU, 32>,
        C::Pmaxsb_xmm_xmmm128 => minmax::<MAXS, 8>,
        C::Pmaxsd_xmm_xmmm128 => minmax::<MAXS, 32>,
        C::Pmaxuw_xmm_xmmm128 => minmax::<MAXU, 16>,
        C::Pmaxud_xmm_xmmm128 => minmax::<MAXU, 32>,
        C::Phminposuw_xmm_xmmm128 => phminposuw,
        C::Mpsadbw_xmm_xmmm128_imm8 => mpsadbw,
        C::Movntdqa_xmm_m128 => movntdqa,
        C::Pextrb_r32m8_xmm_imm8 | C::Pextrb_r64m8_xmm_imm8 => pextr::<1>,
        C::Pextrw_r32m16_xmm_imm8 | C::Pextrw_r64m16_xmm_imm8 => pextr::<2>,
        C::Pextrd_rm32_xmm_imm8 | C::Extractps_rm32_xmm_imm8 | C::Extractps_r64m32_xmm_imm8 => {
            pextr::<4>
        }
        C::Pextrq_rm64_xmm_imm8 => pextr::<8>,
        C::Pinsrb_xmm_r32m8_imm8 | C::Pinsrb_xmm_r64m8_imm8 => pinsr::<1>,
        C::Pinsrd_xmm_rm32_imm8 => pinsr::<4>,
        C::Pinsrq_xmm_rm64_imm8 => pinsr::<8>,
        C::Insertps_xmm_xmmm32_imm8 => insertps,
        _ => return super::sse41_fp::select(code),
    })
}

/// Take lane i from `b` where `pick(i)`, else from `a` (`w`-bit lanes).
fn blend(w: u32, a: u128, b: u128, pick: impl Fn(u32) -> bool) -> u128 {
    from_lanes(w, |i| lane(if pick(i) { b } else { a }, w, i))
}

/// PBLENDVB (`W` = 8), BLENDVPS (32), BLENDVPD (64) xmm, xmm/m128,
/// <XMM0>: lane i from the source where the top bit of lane i of XMM0 is
/// set.
fn blendv<const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let mask = cpu.state.xmm[xmm_index(Register::XMM0)];
    binop(cpu, plat, insn, |a, b| {
        blend(W, a, b, |i| lane(mask, W, i) >> (W - 1) != 0)
    })
}

/// BLENDPS (`W` = 32), BLENDPD (64), PBLENDW (16) xmm, xmm/m128, imm8:
/// lane i from the source where imm8 bit i is set.
fn blend_imm<const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let imm = u32::from(insn.immediate8());
    binop(cpu, plat, insn, |a, b| {
        blend(W, a, b, |i| imm >> i & 1 != 0)
    })
}

/// The status flags of PTEST `dst`, `src`: ZF if `src AND dst` is zero,
/// CF if `src AND NOT dst` is zero; AF, OF, PF, SF cleared.
pub(crate) fn ptest_flags(dst: u128, src: u128) -> u64 {
    let mut f = 0;
    if src & dst == 0 {
        f |= ZF;
    }
    if src & !dst == 0 {
        f |= CF;
    }
    f
}

/// PTEST xmm, xmm/m128 (aligned).
fn ptest(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let s = read_xm128(cpu, plat, insn, 1, true)?;
    let d = xmm(cpu, insn.op0_register());
    cpu.flags
        .set_bits(ZF | CF | AF | OF | PF | SF, ptest_flags(d, s));
    Ok(())
}

/// PMOVSX (`SIGNED`) / PMOVZX: the low `128 / TO * FROM` bits of the
/// source (an XMM register, or m16/m32/m64 without alignment), `FROM`-bit
/// lanes extended to `TO` bits.
fn pmovx<const SIGNED: bool, const FROM: u32, const TO: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let bytes = 16 / (TO / FROM);
    let s = match insn.op1_kind() {
        OpKind::Register => xmm(cpu, insn.op1_register()),
        _ => u128::from(match bytes {
            2 => cpu.read_m::<2>(plat, insn)?,
            4 => cpu.read_m::<4>(plat, insn)?,
            _ => cpu.read_m::<8>(plat, insn)?,
        }),
    };
    let r = from_lanes(TO, |i| {
        let v = lane(s, FROM, i);
        if SIGNED {
            sx(v, FROM) as u64
        } else {
            v
        }
    });
    set_xmm(cpu, insn.op0_register(), r);
    Ok(())
}

/// PMULDQ xmm, xmm/m128: the signed 64-bit products of dwords 0 and 2.
fn pmuldq(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| {
        from_lanes(64, |i| {
            let x = sx(lane(a, 32, 2 * i), 32);
            let y = sx(lane(b, 32, 2 * i), 32);
            x.wrapping_mul(y) as u64
        })
    })
}

/// PMULLD xmm, xmm/m128: the low 32 bits of each dword product.
fn pmulld(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| {
        map2(32, a, b, |x, y| x.wrapping_mul(y))
    })
}

/// PCMPEQQ xmm, xmm/m128: all ones where the quadwords are equal.
fn pcmpeqq(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| {
        map2(64, a, b, |x, y| if x == y { u64::MAX } else { 0 })
    })
}

/// PACKUSDW xmm, xmm/m128: signed dwords to unsigned words with
/// saturation, destination's low, source's high.
fn packusdw(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| pack_lanes(false, 32, 128, a, b))
}

/// PMINSB/SD, PMAXSB/SD (signed), PMINUW/UD, PMAXUW/UD (unsigned).
fn minmax<const OP: u8, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| {
        map2(W, a, b, |x, y| {
            let (kx, ky) = if OP == MINS || OP == MAXS {
                (sx(x, W), sx(y, W))
            } else {
                (x as i64, y as i64)
            };
            let take_x = if OP == MINS || OP == MINU {
                kx <= ky
            } else {
                kx >= ky
            };
            if take_x {
                x
            } else {
                y
            }
        })
    })
}

/// PHMINPOSUW of `s`: the smallest unsigned word in bits 15:0, the index
/// of its first occurrence in bits 18:16, the rest zero.
pub(crate) fn phminpos(s: u128) -> u128 {
    let (idx, min) = (0..8u32)
        .map(|i| (i, lane(s, 16, i)))
        .fold(
            (0, u64::MAX),
            |best, (i, v)| {
                if v < best.1 {
                    (i, v)
                } else {
                    best
                }
            },
        );
    u128::from(min) | (u128::from(idx) << 16)
}

/// PHMINPOSUW xmm, xmm/m128 (aligned).
fn phminposuw(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let s = read_xm128(cpu, plat, insn, 1, true)?;
    set_xmm(cpu, insn.op0_register(), phminpos(s));
    Ok(())
}

/// MPSADBW of `a` (destination) and `b` (source) by `imm`: eight sums of
/// absolute differences between the 4-byte block of `b` at dword
/// imm8[1:0] and the eight overlapping 4-byte windows of `a` starting
/// at byte 4 · imm8[2] + i.
pub(crate) fn mpsadbw_value(a: u128, b: u128, imm: u8) -> u128 {
    let off_a = 4 * u32::from(imm >> 2 & 1);
    let off_b = 4 * u32::from(imm & 3);
    from_lanes(16, |i| {
        (0..4)
            .map(|k| {
                let x = lane(a, 8, off_a + i + k);
                let y = lane(b, 8, off_b + k);
                x.abs_diff(y)
            })
            .sum()
    })
}

/// MPSADBW xmm, xmm/m128, imm8.
fn mpsadbw(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let imm = insn.immediate8();
    binop(cpu, plat, insn, |a, b| mpsadbw_value(a, b, imm))
}

/// MOVNTDQA xmm, m128: an aligned load (the non-temporal hint changes
/// nothing architecturally).
fn movntdqa(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let v = super::read_m128(cpu, plat, insn, true)?;
    set_xmm(cpu, insn.op0_register(), v);
    Ok(())
}

/// PEXTRB (`SZ` = 1), PEXTRW (0F 3A 15, 2), PEXTRD and EXTRACTPS (4),
/// PEXTRQ (8) reg/m, xmm, imm8: the element selected by the low imm8
/// bits, to memory at its size or to a GPR zero-extended (a 32-bit
/// register write clears bits 63:32; the r64 forms of PEXTRB/W and
/// EXTRACTPS write the zero-extended value to the 64-bit register).
fn pextr<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let w = u32::from(SZ) * 8;
    let n = 128 / w;
    let v = lane(
        xmm(cpu, insn.op1_register()),
        w,
        u32::from(insn.immediate8()) % n,
    );
    match insn.op0_kind() {
        OpKind::Register => {
            let r = insn.op0_register();
            if r.size() == 8 {
                cpu.set_reg::<8>(r, v);
            } else {
                cpu.set_reg::<4>(r, v);
            }
            Ok(())
        }
        _ => match SZ {
            1 => cpu.write_m::<1>(plat, insn, v),
            2 => cpu.write_m::<2>(plat, insn, v),
            4 => cpu.write_m::<4>(plat, insn, v),
            _ => cpu.write_m::<8>(plat, insn, v),
        },
    }
}

/// PINSRB (`SZ` = 1), PINSRD (4), PINSRQ (8) xmm, reg/m, imm8: replace
/// the element selected by the low imm8 bits with the low `SZ` bytes of
/// the GPR, or the memory operand of that size.
fn pinsr<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let w = u32::from(SZ) * 8;
    let v = match insn.op1_kind() {
        OpKind::Register => {
            let r = insn.op1_register();
            if r.size() == 8 {
                cpu.reg::<8>(r)
            } else {
                cpu.reg::<4>(r)
            }
        }
        _ => match SZ {
            1 => cpu.read_m::<1>(plat, insn)?,
            4 => cpu.read_m::<4>(plat, insn)?,
            _ => cpu.read_m::<8>(plat, insn)?,
        },
    };
    let i = u32::from(insn.immediate8()) % (128 / w);
    let d = insn.op0_register();
    let old = xmm(cpu, d);
    let r = from_lanes(w, |k| if k == i { v } else { lane(old, w, k) });
    set_xmm(cpu, d, r);
    Ok(())
}

/// INSERTPS of the single `s` into `d` by `imm`: dword imm8[5:4] of the
/// destination gets `s`, then the dwords set in imm8[3:0] are zeroed.
/// (For a register source the caller has picked dword imm8[7:6] of it;
/// a memory source is the m32 itself.)
pub(crate) fn insertps_value(d: u128, s: u64, imm: u8) -> u128 {
    let count_d = u32::from(imm >> 4 & 3);
    let zmask = u32::from(imm & 15);
    from_lanes(32, |i| {
        if zmask >> i & 1 != 0 {
            0
        } else if i == count_d {
            s
        } else {
            lane(d, 32, i)
        }
    })
}

/// INSERTPS xmm, xmm/m32, imm8.
fn insertps(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let imm = insn.immediate8();
    let s = match insn.op1_kind() {
        OpKind::Register => lane(xmm(cpu, insn.op1_register()), 32, u32::from(imm >> 6)),
        _ => cpu.read_m::<4>(plat, insn)?,
    };
    let d = insn.op0_register();
    let r = insertps_value(xmm(cpu, d), s, imm);
    set_xmm(cpu, d, r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptest_sets_zf_cf_only() {
        assert_eq!(ptest_flags(0, 0), ZF | CF);
        // src AND dst = 0 but src has bits outside dst: ZF only.
        assert_eq!(ptest_flags(0xf0, 0x0f), ZF);
        // src inside dst: CF only.
        assert_eq!(ptest_flags(0xff, 0x0f), CF);
        // Overlap and bits outside: neither.
        assert_eq!(ptest_flags(0x18, 0x0f), 0);
        assert_eq!(ptest_flags(1 << 127, 1 << 127), CF);
    }

    #[test]
    fn phminposuw_first_minimum() {
        let v = from_lanes(16, |i| [9, 7, 3, 8, 3, 0xffff, 4, 3][i as usize]);
        assert_eq!(phminpos(v), 3 | (2 << 16));
        assert_eq!(phminpos(u128::MAX), 0xffff);
        let v = from_lanes(16, |i| if i == 7 { 0 } else { 1 });
        assert_eq!(phminpos(v), 7 << 16);
    }

    #[test]
    fn insertps_select_and_zero() {
        let d = from_lanes(32, |i| 0x10 + u64::from(i));
        // Into dword 2, zero dword 0.
        assert_eq!(
            insertps_value(d, 0xaa, 0b0010_0001),
            from_lanes(32, |i| [0, 0x11, 0xaa, 0x13][i as usize])
        );
        // The zero mask wins over the inserted dword.
        assert_eq!(
            insertps_value(d, 0xaa, 0b0001_0010),
            from_lanes(32, |i| [0x10, 0, 0x12, 0x13][i as usize])
        );
    }

    /// INSERTPS from a register takes dword imm8[7:6] of it; from
    /// memory the m32 itself (imm8[7:6] ignored, no alignment); PTEST
    /// writes ZF/CF and clears the other status flags.
    #[test]
    fn insertps_register_vs_memory_and_ptest_flags() {
        use crate::core_tests::{Machine, DATA};
        use crate::state::cr4;
        use iced_x86::code_asm::*;
        let mut m = Machine::long64();
        m.cpu.state.cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT;
        let src = from_lanes(32, |i| 0xa0 + u64::from(i));
        m.cpu.state.xmm[1] = src;
        m.cpu.state.xmm[0] = from_lanes(32, |i| 0x10 + u64::from(i));
        m.load(|a| a.insertps(xmm0, xmm1, 0b1110_0001).unwrap());
        assert_eq!(m.exec_one(), Ok(()));
        let want = from_lanes(32, |i| [0, 0x11, 0xa3, 0x13][i as usize]);
        assert_eq!(m.cpu.state.xmm[0], want);
        m.write(DATA + 3, 4, 0x5555_5555);
        m.load(|a| a.insertps(xmm0, dword_ptr(DATA + 3), 0b1100_0000).unwrap());
        assert_eq!(m.exec_one(), Ok(()));
        assert_eq!(m.cpu.state.xmm[0] as u32, 0x5555_5555);
        // PTEST xmm0, xmm1 with xmm1 inside xmm0: CF only.
        m.cpu.state.xmm[0] = u128::MAX;
        m.cpu.state.rflags |= ZF | SF | OF | AF | PF;
        m.load(|a| a.ptest(xmm0, xmm1).unwrap());
        assert_eq!(m.exec_one(), Ok(()));
        assert_eq!(m.cpu.rflags() & (CF | ZF | SF | OF | AF | PF), CF);
    }

    #[test]
    fn mpsadbw_blocks() {
        let a = u128::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        let b = u128::from_le_bytes([0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Source block 1 (four ones) against windows from byte 4.
        let r = mpsadbw_value(a, b, 0b101);
        let sum = |s: u64| (s..s + 4).map(|x| x.abs_diff(1)).sum::<u64>();
        assert_eq!(r, from_lanes(16, |i| sum(4 + u64::from(i))));
    }
}
