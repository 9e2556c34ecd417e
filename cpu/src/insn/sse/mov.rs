//! SSE/SSE2 data movement: the full-register moves (MOVAPS/MOVAPD/MOVDQA
//! aligned, MOVUPS/MOVUPD/MOVDQU not), the non-temporal stores (MOVNTPS,
//! MOVNTPD, MOVNTDQ; MOVNTI from a GPR), MOVD/MOVQ between XMM and GPRs
//! or memory, the scalar moves MOVSS/MOVSD, the half moves MOVLPS/MOVHPS/
//! MOVLPD/MOVHPD/MOVHLPS/MOVLHPS, and the sign-mask extractions
//! MOVMSKPS/MOVMSKPD/PMOVMSKB.
//!
//! Non-temporal hints change nothing architecturally here (ringside has
//! no caches), so those stores are ordinary stores.

use super::{check, lane, read_xm128, set_xmm, write_m128, xmm, xmm_index};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind};

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Movaps_xmm_xmmm128 | C::Movapd_xmm_xmmm128 | C::Movdqa_xmm_xmmm128 => mov_load::<true>,
        C::Movups_xmm_xmmm128 | C::Movupd_xmm_xmmm128 | C::Movdqu_xmm_xmmm128 => mov_load::<false>,
        C::Movaps_xmmm128_xmm
        | C::Movapd_xmmm128_xmm
        | C::Movdqa_xmmm128_xmm
        | C::Movntps_m128_xmm
        | C::Movntpd_m128_xmm
        | C::Movntdq_m128_xmm => mov_store::<true>,
        C::Movups_xmmm128_xmm | C::Movupd_xmmm128_xmm | C::Movdqu_xmmm128_xmm => mov_store::<false>,
        C::Movnti_m32_r32 => movnti::<4>,
        C::Movnti_m64_r64 => movnti::<8>,
        C::Movd_xmm_rm32 => movd_to_xmm::<4>,
        C::Movq_xmm_rm64 => movd_to_xmm::<8>,
        C::Movd_rm32_xmm => movd_from_xmm::<4>,
        C::Movq_rm64_xmm => movd_from_xmm::<8>,
        C::Movq_xmm_xmmm64 => movq_load,
        C::Movq_xmmm64_xmm => movq_store,
        C::Movss_xmm_xmmm32 => movs_load::<4>,
        C::Movsd_xmm_xmmm64 => movs_load::<8>,
        C::Movss_xmmm32_xmm => movs_store::<4>,
        C::Movsd_xmmm64_xmm => movs_store::<8>,
        C::Movlps_xmm_m64 | C::Movlpd_xmm_m64 => movhl_load::<false>,
        C::Movhps_xmm_m64 | C::Movhpd_xmm_m64 => movhl_load::<true>,
        C::Movlps_m64_xmm | C::Movlpd_m64_xmm => movhl_store::<false>,
        C::Movhps_m64_xmm | C::Movhpd_m64_xmm => movhl_store::<true>,
        C::Movhlps_xmm_xmm => movhlps::<true>,
        C::Movlhps_xmm_xmm => movhlps::<false>,
        C::Movmskps_r32_xmm | C::Movmskps_r64_xmm => movmsk::<32>,
        C::Movmskpd_r32_xmm | C::Movmskpd_r64_xmm => movmsk::<64>,
        C::Pmovmskb_r32_xmm | C::Pmovmskb_r64_xmm => movmsk::<8>,
        _ => return None,
    })
}

/// Write a GPR of 4 or 8 bytes (a 32-bit write zero-extends).
fn set_gpr_sized(cpu: &mut Cpu, r: iced_x86::Register, v: u64) {
    if r.size() == 8 {
        cpu.set_reg::<8>(r, v);
    } else {
        cpu.set_reg::<4>(r, v);
    }
}

/// MOVAPS/MOVAPD/MOVDQA (`ALIGNED`), MOVUPS/MOVUPD/MOVDQU xmm, xmm/m128.
pub(crate) fn mov_load<const ALIGNED: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = read_xm128(cpu, plat, insn, 1, ALIGNED)?;
    set_xmm(cpu, insn.op0_register(), v);
    Ok(())
}

/// The store direction: xmm/m128, xmm (and MOVNTPS/PD/DQ m128, xmm).
pub(crate) fn mov_store<const ALIGNED: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = xmm(cpu, insn.op1_register());
    match insn.op0_kind() {
        OpKind::Register => {
            set_xmm(cpu, insn.op0_register(), v);
            Ok(())
        }
        _ => write_m128(cpu, plat, insn, ALIGNED, v),
    }
}

/// MOVNTI m32/m64, r32/r64: an ordinary store of a GPR. A general-purpose
/// instruction: no CR0.EM/TS or CR4.OSFXSR check (SDM: only #UD without
/// SSE2 or with LOCK).
pub(crate) fn movnti<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.reg::<SZ>(insn.op1_register());
    cpu.write_m::<SZ>(plat, insn, v)
}

/// MOVD xmm, r/m32 and MOVQ xmm, r/m64: zero-extend into the register.
pub(crate) fn movd_to_xmm<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = cpu.read_op::<SZ>(plat, insn, 1)?;
    set_xmm(cpu, insn.op0_register(), u128::from(v));
    Ok(())
}

/// MOVD r/m32, xmm and MOVQ r/m64, xmm: the low 32/64 bits.
pub(crate) fn movd_from_xmm<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = xmm(cpu, insn.op1_register()) as u64;
    cpu.write_op::<SZ>(plat, insn, 0, v & crate::operand::size_mask(SZ))
}

/// MOVQ xmm, xmm/m64 (F3 0F 7E): the low quadword, zero-extended.
pub(crate) fn movq_load(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = match insn.op1_kind() {
        OpKind::Register => xmm(cpu, insn.op1_register()) as u64,
        _ => cpu.read_m::<8>(plat, insn)?,
    };
    set_xmm(cpu, insn.op0_register(), u128::from(v));
    Ok(())
}

/// MOVQ xmm/m64, xmm (66 0F D6): to a register, zero-extended; to memory,
/// 8 bytes.
pub(crate) fn movq_store(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = xmm(cpu, insn.op1_register()) as u64;
    match insn.op0_kind() {
        OpKind::Register => {
            set_xmm(cpu, insn.op0_register(), u128::from(v));
            Ok(())
        }
        _ => cpu.write_m::<8>(plat, insn, v),
    }
}

/// Mask of the low `SZ` bytes of an XMM register.
const fn low_mask(sz: u8) -> u128 {
    (1u128 << (8 * sz as u32)) - 1
}

/// MOVSS xmm, xmm/m32 and MOVSD xmm, xmm/m64: from a register, only the
/// low element changes; from memory, the rest is zeroed.
pub(crate) fn movs_load<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let d = insn.op0_register();
    let m = low_mask(SZ);
    let v = match insn.op1_kind() {
        OpKind::Register => (xmm(cpu, d) & !m) | (xmm(cpu, insn.op1_register()) & m),
        _ => u128::from(cpu.read_m::<SZ>(plat, insn)?),
    };
    set_xmm(cpu, d, v);
    Ok(())
}

/// MOVSS xmm/m32, xmm and MOVSD xmm/m64, xmm: the low element (a register
/// destination keeps its other elements).
pub(crate) fn movs_store<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let s = xmm(cpu, insn.op1_register());
    let m = low_mask(SZ);
    match insn.op0_kind() {
        OpKind::Register => {
            let d = insn.op0_register();
            let v = (xmm(cpu, d) & !m) | (s & m);
            set_xmm(cpu, d, v);
            Ok(())
        }
        _ => cpu.write_m::<SZ>(plat, insn, s as u64),
    }
}

/// MOVLPS/MOVLPD (`HIGH` = false), MOVHPS/MOVHPD xmm, m64: replace one
/// quadword.
pub(crate) fn movhl_load<const HIGH: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let q = u128::from(cpu.read_m::<8>(plat, insn)?);
    let i = xmm_index(insn.op0_register());
    let old = cpu.state.xmm[i];
    cpu.state.xmm[i] = if HIGH {
        (old & u128::from(u64::MAX)) | (q << 64)
    } else {
        (old & !u128::from(u64::MAX)) | q
    };
    Ok(())
}

/// MOVLPS/MOVLPD (`HIGH` = false), MOVHPS/MOVHPD m64, xmm.
pub(crate) fn movhl_store<const HIGH: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = xmm(cpu, insn.op1_register());
    let q = if HIGH { (v >> 64) as u64 } else { v as u64 };
    cpu.write_m::<8>(plat, insn, q)
}

/// MOVHLPS (`HL`): dst.low = src.high; MOVLHPS: dst.high = src.low.
pub(crate) fn movhlps<const HL: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let s = xmm(cpu, insn.op1_register());
    let i = xmm_index(insn.op0_register());
    let old = cpu.state.xmm[i];
    let lo = u128::from(u64::MAX);
    cpu.state.xmm[i] = if HL {
        (old & !lo) | (s >> 64)
    } else {
        (old & lo) | (s << 64)
    };
    Ok(())
}

/// MOVMSKPS (`W` = 32), MOVMSKPD (64), PMOVMSKB (8) r32/r64, xmm: the
/// sign bit of each lane, zero-extended.
pub(crate) fn movmsk<const W: u32>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = xmm(cpu, insn.op1_register());
    let m = (0..128 / W).fold(0u64, |m, i| m | ((lane(v, W, i) >> (W - 1)) << i));
    set_gpr_sized(cpu, insn.op0_register(), m);
    Ok(())
}
