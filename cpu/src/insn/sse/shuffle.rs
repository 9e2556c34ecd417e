//! Shuffles, unpacks and packs (SSE/SSE2): PSHUFD, PSHUFLW, PSHUFHW,
//! SHUFPS, SHUFPD; PUNPCKL/H BW/WD/DQ/QDQ, UNPCKL/H PS/PD; PACKSSWB,
//! PACKSSDW, PACKUSWB; and the word insert/extract PEXTRW, PINSRW.

use super::arith::{sat_s, sat_u};
use super::{binop, check, from_lanes, lane, read_xm128, set_xmm, sx, xmm, xmm_index};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind};

pub(crate) const PSHUFD: u8 = 0;
pub(crate) const PSHUFLW: u8 = 1;
pub(crate) const PSHUFHW: u8 = 2;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Pshufd_xmm_xmmm128_imm8 => pshuf::<PSHUFD>,
        C::Pshuflw_xmm_xmmm128_imm8 => pshuf::<PSHUFLW>,
        C::Pshufhw_xmm_xmmm128_imm8 => pshuf::<PSHUFHW>,
        C::Shufps_xmm_xmmm128_imm8 => shufp::<32>,
        C::Shufpd_xmm_xmmm128_imm8 => shufp::<64>,
        C::Punpcklbw_xmm_xmmm128 => unpck::<false, 8>,
        C::Punpcklwd_xmm_xmmm128 => unpck::<false, 16>,
        C::Punpckldq_xmm_xmmm128 | C::Unpcklps_xmm_xmmm128 => unpck::<false, 32>,
        C::Punpcklqdq_xmm_xmmm128 | C::Unpcklpd_xmm_xmmm128 => unpck::<false, 64>,
        C::Punpckhbw_xmm_xmmm128 => unpck::<true, 8>,
        C::Punpckhwd_xmm_xmmm128 => unpck::<true, 16>,
        C::Punpckhdq_xmm_xmmm128 | C::Unpckhps_xmm_xmmm128 => unpck::<true, 32>,
        C::Punpckhqdq_xmm_xmmm128 | C::Unpckhpd_xmm_xmmm128 => unpck::<true, 64>,
        C::Packsswb_xmm_xmmm128 => pack::<true, 16>,
        C::Packssdw_xmm_xmmm128 => pack::<true, 32>,
        C::Packuswb_xmm_xmmm128 => pack::<false, 16>,
        C::Pextrw_r32_xmm_imm8 | C::Pextrw_r64_xmm_imm8 => pextrw,
        C::Pinsrw_xmm_r32m16_imm8 | C::Pinsrw_xmm_r64m16_imm8 => pinsrw,
        _ => return None,
    })
}

/// PSHUFD / PSHUFLW / PSHUFHW of `s` by `imm`: lanes of the source
/// picked by 2-bit fields of imm8 (the other half copied for LW/HW).
/// PSHUFLW on the low 64 bits is also the MMX PSHUFW.
pub(crate) fn shuffle(op: u8, s: u128, imm: u8) -> u128 {
    let imm = u32::from(imm);
    let sel = |i: u32| (imm >> (2 * (i & 3))) & 3;
    match op {
        PSHUFD => from_lanes(32, |i| lane(s, 32, sel(i))),
        PSHUFLW => from_lanes(16, |i| {
            if i < 4 {
                lane(s, 16, sel(i))
            } else {
                lane(s, 16, i)
            }
        }),
        _ => from_lanes(16, |i| {
            if i < 4 {
                lane(s, 16, i)
            } else {
                lane(s, 16, 4 + sel(i))
            }
        }),
    }
}

/// PSHUFD / PSHUFLW / PSHUFHW xmm, xmm/m128, imm8.
pub(crate) fn pshuf<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let s = read_xm128(cpu, plat, insn, 1, true)?;
    set_xmm(cpu, insn.op0_register(), shuffle(OP, s, insn.immediate8()));
    Ok(())
}

/// SHUFPS (`W` = 32) / SHUFPD (64) xmm, xmm/m128, imm8: the low half of
/// the result from the destination, the high half from the source.
pub(crate) fn shufp<const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let imm = u32::from(insn.immediate8());
    binop(cpu, plat, insn, |a, b| {
        if W == 32 {
            from_lanes(32, |i| {
                let k = (imm >> (2 * i)) & 3;
                lane(if i < 2 { a } else { b }, 32, k)
            })
        } else {
            from_lanes(64, |i| lane(if i == 0 { a } else { b }, 64, (imm >> i) & 1))
        }
    })
}

/// Interleave the low (`high` = false) or high halves of `a`
/// (destination) and `b` (source), `w`-bit lanes, in a vector of `bits`
/// (128, or 64 for the MMX forms: the result is then in the low 64 bits).
pub(crate) fn unpack_lanes(high: bool, w: u32, bits: u32, a: u128, b: u128) -> u128 {
    let base = if high { bits / 2 / w } else { 0 };
    let r = from_lanes(w, |i| lane(if i & 1 == 0 { a } else { b }, w, base + i / 2));
    r & (u128::MAX >> (128 - bits))
}

/// PUNPCKL/H and UNPCKL/H: interleave the low (`HIGH` = false) or high
/// halves of destination and source, `W`-bit lanes.
pub(crate) fn unpck<const HIGH: bool, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| unpack_lanes(HIGH, W, 128, a, b))
}

/// Narrow the `w`-bit signed lanes of `a` (destination, low half of the
/// result) and `b` (source, high half) to `w/2` bits with signed or
/// unsigned saturation, in a vector of `bits` (128, or 64 for MMX).
pub(crate) fn pack_lanes(signed: bool, w: u32, bits: u32, a: u128, b: u128) -> u128 {
    let n = bits / w;
    let r = from_lanes(w / 2, |i| {
        if i >= 2 * n {
            return 0;
        }
        let v = sx(lane(if i < n { a } else { b }, w, i % n), w);
        if signed {
            sat_s(v, w / 2)
        } else {
            sat_u(v, w / 2)
        }
    });
    r & (u128::MAX >> (128 - bits))
}

/// PACKSSWB / PACKSSDW (`SIGNED`) and PACKUSWB: narrow `W`-bit signed
/// lanes to `W/2` bits with saturation; destination lanes go low, source
/// lanes high.
pub(crate) fn pack<const SIGNED: bool, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| pack_lanes(SIGNED, W, 128, a, b))
}

/// PEXTRW r32/r64, xmm, imm8: word imm8[2:0], zero-extended.
pub(crate) fn pextrw(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = lane(
        xmm(cpu, insn.op1_register()),
        16,
        u32::from(insn.immediate8() & 7),
    );
    let r = insn.op0_register();
    if r.size() == 8 {
        cpu.set_reg::<8>(r, v);
    } else {
        cpu.set_reg::<4>(r, v);
    }
    Ok(())
}

/// PINSRW xmm, r32/m16, imm8: replace word imm8[2:0].
pub(crate) fn pinsrw(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let w = match insn.op1_kind() {
        OpKind::Register => {
            let r = insn.op1_register();
            let v = if r.size() == 8 {
                cpu.reg::<8>(r)
            } else {
                cpu.reg::<4>(r)
            };
            v & 0xffff
        }
        _ => cpu.read_m::<2>(plat, insn)?,
    };
    let k = 16 * u32::from(insn.immediate8() & 7);
    let i = xmm_index(insn.op0_register());
    let old = cpu.state.xmm[i];
    cpu.state.xmm[i] = (old & !(0xffffu128 << k)) | (u128::from(w) << k);
    Ok(())
}
