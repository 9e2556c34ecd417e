//! Data movement: MOV (incl. moffs), MOVZX/MOVSX/MOVSXD, LEA, XCHG, BSWAP,
//! MOVBE, CMOVcc, SETcc, XLAT, and the accumulator extensions CBW/CWDE/
//! CDQE/CWD/CDQ/CQO.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::flags::sext;
use crate::operand::{addr_mask, size_mask, sreg_of};
use crate::platform::Platform;
use iced_x86::{Instruction, OpKind};

/// `mov reg, reg`
pub(crate) fn mov_rr<const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.reg::<SZ>(insn.op1_register());
    cpu.set_reg::<SZ>(insn.op0_register(), v);
    Ok(())
}

/// `mov reg, imm`
pub(crate) fn mov_ri<const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    cpu.set_reg::<SZ>(insn.op0_register(), insn.immediate(1));
    Ok(())
}

/// `mov reg, [mem]` (also the moffs forms)
pub(crate) fn mov_rm<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.read_m::<SZ>(plat, insn)?;
    cpu.set_reg::<SZ>(insn.op0_register(), v);
    Ok(())
}

/// `mov [mem], reg`
pub(crate) fn mov_mr<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.reg::<SZ>(insn.op1_register());
    cpu.write_m::<SZ>(plat, insn, v)
}

/// `mov [mem], imm`
pub(crate) fn mov_mi<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    cpu.write_m::<SZ>(plat, insn, insn.immediate(1))
}

/// MOVZX / MOVSX / MOVSXD: `DSZ`-byte destination from an `SSZ`-byte source.
pub(crate) fn movx<const DSZ: u8, const SSZ: u8, const SIGNED: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.read_op::<SSZ>(plat, insn, 1)?;
    let v = if SIGNED { sext(v, SSZ as u32 * 8) } else { v };
    cpu.set_reg::<DSZ>(insn.op0_register(), v);
    Ok(())
}

/// LEA: the effective address (at the address size), truncated or
/// zero-extended to the operand size. No memory access, no segment.
pub(crate) fn lea<const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let ea = cpu.ea(insn);
    cpu.set_reg::<SZ>(insn.op0_register(), ea & size_mask(SZ));
    Ok(())
}

/// XCHG (register/register or register/memory; the memory form is an
/// implicitly locked read-modify-write).
pub(crate) fn xchg<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let (mem_op, reg) = if insn.op0_kind() == OpKind::Memory {
        (true, insn.op1_register())
    } else if insn.op1_kind() == OpKind::Memory {
        (true, insn.op0_register())
    } else {
        (false, insn.op0_register())
    };
    if mem_op {
        let (loc, m) = cpu.rmw_m::<SZ>(plat, insn)?;
        let r = cpu.reg::<SZ>(reg);
        cpu.rmw_end::<SZ>(plat, loc, r)?;
        cpu.set_reg::<SZ>(reg, m);
    } else {
        let r2 = insn.op1_register();
        let a = cpu.reg::<SZ>(reg);
        let b = cpu.reg::<SZ>(r2);
        cpu.set_reg::<SZ>(reg, b);
        cpu.set_reg::<SZ>(r2, a);
    }
    Ok(())
}

/// BSWAP r32/r64. The 16-bit form is undefined in the SDM; ringside
/// clears the low word, which is what Intel and AMD cores do.
pub(crate) fn bswap<const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let r = insn.op0_register();
    let v = cpu.reg::<SZ>(r);
    let s = match SZ {
        8 => v.swap_bytes(),
        4 => (v as u32).swap_bytes() as u64,
        _ => 0,
    };
    cpu.set_reg::<SZ>(r, s);
    Ok(())
}

#[inline(always)]
fn swap_sized<const SZ: u8>(v: u64) -> u64 {
    match SZ {
        8 => v.swap_bytes(),
        4 => (v as u32).swap_bytes() as u64,
        _ => (v as u16).swap_bytes() as u64,
    }
}

/// MOVBE: a load or store with the bytes reversed.
pub(crate) fn movbe<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    if insn.op0_kind() == OpKind::Memory {
        let v = swap_sized::<SZ>(cpu.reg::<SZ>(insn.op1_register()));
        cpu.write_m::<SZ>(plat, insn, v)
    } else {
        let v = cpu.read_m::<SZ>(plat, insn)?;
        cpu.set_reg::<SZ>(insn.op0_register(), swap_sized::<SZ>(v));
        Ok(())
    }
}

/// CMOVcc. The source is always read (a memory source faults even when
/// the condition is false), and with a 32-bit operand the destination is
/// zero-extended to 64 bits whether or not the move happens.
pub(crate) fn cmov<const CC: u8, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.read_op::<SZ>(plat, insn, 1)?;
    let d = insn.op0_register();
    if cpu.flags.cond(CC) {
        cpu.set_reg::<SZ>(d, v);
    } else if SZ == 4 {
        let old = cpu.reg::<4>(d);
        cpu.set_reg::<4>(d, old);
    }
    Ok(())
}

/// SETcc r/m8.
pub(crate) fn setcc<const CC: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.flags.cond(CC) as u64;
    cpu.write_op::<1>(plat, insn, 0, v)
}

/// XLAT: AL = [seg:rBX + AL] (AL zero-extended, address-size wrap).
pub(crate) fn xlat(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let off = cpu.state.gpr[3].wrapping_add(cpu.state.gpr[0] & 0xff) & addr_mask(insn);
    let v = cpu.read_mem::<1>(plat, sreg_of(insn.memory_segment()), off)?;
    cpu.set_gpr(0, 1, v);
    Ok(())
}

/// CBW/CWDE/CDQE: sign-extend the low half of the accumulator into the
/// whole of it (`SZ` = destination size).
pub(crate) fn cbw<const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    let half = SZ as u32 * 4;
    let v = sext(cpu.state.gpr[0], half);
    cpu.set_gpr(0, SZ, v);
    Ok(())
}

/// CWD/CDQ/CQO: rDX = all copies of the accumulator's sign bit.
pub(crate) fn cwd<const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    let bits = SZ as u32 * 8;
    let sign = (cpu.state.gpr[0] >> (bits - 1)) & 1;
    cpu.set_gpr(2, SZ, if sign != 0 { u64::MAX } else { 0 });
    Ok(())
}
