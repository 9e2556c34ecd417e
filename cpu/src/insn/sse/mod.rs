//! SSE through SSE4.2, AES-NI, PCLMULQDQ and SHA in their legacy (non-VEX)
//! encodings, XMM forms: one file per family, like the integer instruction set.
//!
//! * [`mov`]: data movement between XMM registers, memory and GPRs.
//! * [`logic`]: the bitwise operations (PAND..., ANDPS..., ANDPD...).
//! * [`arith`]: packed integer arithmetic (PADD/PSUB with and without
//!   saturation, the multiplies, PMADDWD, PSADBW, PAVG, PMIN/PMAX).
//! * [`cmp`]: packed integer compares.
//! * [`shift`]: packed shifts by XMM/m128 or imm8, byte shifts.
//! * [`shuffle`]: shuffles, unpacks, packs, PEXTRW/PINSRW.
//! * [`state`]: LDMXCSR, STMXCSR, FXSAVE, FXRSTOR.
//! * [`fp_arith`], [`fp_cmp`], [`fp_cvt`]: the floating-point arithmetic,
//!   compares and conversions, on the soft-float of [`softfloat`] (exact
//!   MXCSR rounding, FZ/DAZ, flags and #XM).
//!
//! Also here, one file per extension: [`sse3`], [`ssse3`], [`sse41`] and
//! [`sse41_fp`], [`sse42`], [`aes`] (AES-NI and PCLMULQDQ), [`sha`]. The
//! MMX-register forms of all of them are in insn/mmx/.
//!
//! Every handler starts with the SIMD availability check the SDM's
//! exception tables give for legacy SSE: #UD if CR0.EM = 1 or
//! CR4.OSFXSR = 0, then #NM if CR0.TS = 1 ([`check`]). A 128-bit memory
//! operand must be 16-byte aligned (#GP(0) otherwise) except for the
//! explicitly unaligned moves (MOVUPS, MOVUPD, MOVDQU); scalar and 64-bit
//! operands have no alignment requirement.

pub(crate) mod aes;
pub(crate) mod arith;
pub(crate) mod cmp;
pub(crate) mod fp_arith;
pub(crate) mod fp_cmp;
pub(crate) mod fp_cvt;
pub(crate) mod logic;
pub(crate) mod mov;
pub(crate) mod sha;
pub(crate) mod shift;
pub(crate) mod shuffle;
pub(crate) mod softfloat;
pub(crate) mod sse3;
pub(crate) mod sse41;
pub(crate) mod sse41_fp;
pub(crate) mod sse42;
pub(crate) mod ssse3;
pub(crate) mod state;

use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, cr4};
use iced_x86::{Instruction, OpKind, Register};
use mmu::AccessKind;

/// The handler of a legacy SSE/SSE2 instruction, if ringside has one.
pub(crate) fn select(insn: &Instruction) -> Option<Handler> {
    let code = insn.code();
    mov::select(code)
        .or_else(|| logic::select(code))
        .or_else(|| arith::select(code))
        .or_else(|| cmp::select(code))
        .or_else(|| shift::select(code))
        .or_else(|| shuffle::select(code))
        .or_else(|| state::select(code))
        .or_else(|| fp_arith::select(code))
        .or_else(|| fp_cmp::select(code))
        .or_else(|| fp_cvt::select(code))
        .or_else(|| sse3::select(code))
        .or_else(|| ssse3::select(code))
        .or_else(|| sse41::select(code))
        .or_else(|| sse42::select(code))
        .or_else(|| aes::select(code))
        .or_else(|| sha::select(code))
        .or_else(|| crate::insn::mmx::select(code))
}

/// The availability check of an SSE/SSE2 instruction: #UD if CR0.EM = 1
/// or CR4.OSFXSR = 0, #NM if CR0.TS = 1 (SDM Vol. 2, 2.5, exception
/// types 1-5; Vol. 3A, 13.1 and Table 13-1).
#[inline(always)]
pub(crate) fn check(cpu: &Cpu) -> Result<(), Fault> {
    let c0 = cpu.state.cr0;
    if c0 & cr0::EM != 0 || cpu.state.cr4 & cr4::OSFXSR == 0 {
        return Err(Fault::UD);
    }
    if c0 & cr0::TS != 0 {
        return Err(Fault::NM);
    }
    Ok(())
}

/// XMM register number (0-15) of an iced `Register` (masked: always in
/// bounds).
#[inline(always)]
pub(crate) fn xmm_index(r: Register) -> usize {
    (r as usize).wrapping_sub(Register::XMM0 as usize) & 15
}

#[inline(always)]
pub(crate) fn xmm(cpu: &Cpu, r: Register) -> u128 {
    cpu.state.xmm[xmm_index(r)]
}

#[inline(always)]
pub(crate) fn set_xmm(cpu: &mut Cpu, r: Register, v: u128) {
    cpu.state.xmm[xmm_index(r)] = v;
}

/// Linear address of the 16-byte memory operand of `insn`, with the
/// legacy-SSE alignment rule when `aligned` (#GP(0) if not on a 16-byte
/// boundary, checked after segmentation, before paging).
#[inline(always)]
fn m128_lin(cpu: &Cpu, insn: &Instruction, aligned: bool, kind: AccessKind) -> Result<u64, Fault> {
    let lin = cpu.operand_lin(insn, 16, kind)?;
    if aligned && lin & 15 != 0 {
        return Err(Fault::gp0());
    }
    Ok(lin)
}

/// Read 16 bytes at linear `lin` (two 8-byte halves; reads have no side
/// effect on RAM, so a fault in the second half loses nothing).
pub(crate) fn read_lin128(cpu: &mut Cpu, plat: &mut dyn Platform, lin: u64) -> Result<u128, Fault> {
    let user = cpu.user_mode();
    let lo = cpu.read_lin::<8>(plat, lin, user)?;
    let hi = cpu.read_lin::<8>(plat, lin.wrapping_add(8) & cpu.lin_mask(), user)?;
    Ok(u128::from(lo) | (u128::from(hi) << 64))
}

/// Make sure `len` bytes at linear `lin` can be written before any of
/// them is: translate the first and the last page for writing (the
/// access must not be half done when it faults).
pub(crate) fn probe_write(cpu: &mut Cpu, lin: u64, len: u64) -> Result<(), Fault> {
    let user = cpu.user_mode();
    let last = lin.wrapping_add(len - 1) & cpu.lin_mask();
    cpu.translate(lin, AccessKind::Write, user)?;
    if last >> 12 != lin >> 12 {
        // A fault on the second page reports its first byte in CR2 (the
        // first byte of the access that faults), as the CPU does.
        cpu.translate(last & !0xfff, AccessKind::Write, user)?;
    }
    Ok(())
}

/// Write 16 bytes at linear `lin`, all or nothing.
pub(crate) fn write_lin128(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    lin: u64,
    v: u128,
) -> Result<(), Fault> {
    probe_write(cpu, lin, 16)?;
    let user = cpu.user_mode();
    cpu.write_lin::<8>(plat, lin, v as u64, user)?;
    cpu.write_lin::<8>(
        plat,
        lin.wrapping_add(8) & cpu.lin_mask(),
        (v >> 64) as u64,
        user,
    )
}

/// Read the 16-byte memory operand of `insn`.
pub(crate) fn read_m128(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    aligned: bool,
) -> Result<u128, Fault> {
    let lin = m128_lin(cpu, insn, aligned, AccessKind::Read)?;
    read_lin128(cpu, plat, lin)
}

/// Write the 16-byte memory operand of `insn`.
pub(crate) fn write_m128(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    aligned: bool,
    v: u128,
) -> Result<(), Fault> {
    let lin = m128_lin(cpu, insn, aligned, AccessKind::Write)?;
    write_lin128(cpu, plat, lin, v)
}

/// Operand `n` as xmm/m128 (legacy SSE: a memory operand must be aligned
/// unless `aligned` is false).
#[inline(always)]
pub(crate) fn read_xm128(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    n: u32,
    aligned: bool,
) -> Result<u128, Fault> {
    match insn.op_kind(n) {
        OpKind::Register => Ok(xmm(cpu, insn.op_register(n))),
        _ => read_m128(cpu, plat, insn, aligned),
    }
}

/// Mask of the low `w` bits (1..=64).
#[inline(always)]
pub(crate) const fn lane_mask(w: u32) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

/// Lane `i` of width `w` bits.
#[inline(always)]
pub(crate) fn lane(v: u128, w: u32, i: u32) -> u64 {
    ((v >> ((w * i) & 127)) as u64) & lane_mask(w)
}

/// `x` sign-extended from `w` bits.
#[inline(always)]
pub(crate) fn sx(x: u64, w: u32) -> i64 {
    let sh = 64 - w;
    ((x << sh) as i64) >> sh
}

/// Build a vector from `128 / w` lanes of width `w`.
#[inline(always)]
pub(crate) fn from_lanes(w: u32, f: impl Fn(u32) -> u64) -> u128 {
    let mut r = 0u128;
    for i in 0..128 / w {
        r |= u128::from(f(i) & lane_mask(w)) << ((w * i) & 127);
    }
    r
}

/// Lane-wise binary operation on lanes of `w` bits.
#[inline(always)]
pub(crate) fn map2(w: u32, a: u128, b: u128, f: impl Fn(u64, u64) -> u64) -> u128 {
    from_lanes(w, |i| f(lane(a, w, i), lane(b, w, i)))
}

/// `dst op= xmm/m128` for a lane-wise or whole-vector operation `f`
/// (the common shape of the packed integer and logic instructions).
#[inline(always)]
pub(crate) fn binop(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    f: impl Fn(u128, u128) -> u128,
) -> Result<(), Fault> {
    check(cpu)?;
    let b = read_xm128(cpu, plat, insn, 1, true)?;
    let d = insn.op0_register();
    let a = xmm(cpu, d);
    set_xmm(cpu, d, f(a, b));
    Ok(())
}
