//! Operand access for the system instructions: general registers by iced
//! register name, memory operands (effective address → segment), and the
//! r/m16 selector operands most of them take.
//!
//! Memory goes through the core's `seg_read`/`seg_write`, which apply the
//! segment limit/type checks and paging with the current privilege.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::SegReg;
use iced_x86::{Instruction, OpKind, Register};

/// Mask a value to `size` bytes.
#[inline]
pub(crate) fn mask(v: u64, size: u8) -> u64 {
    match size {
        1 => v & 0xff,
        2 => v & 0xffff,
        4 => v & 0xffff_ffff,
        _ => v,
    }
}

/// Index into `state.gpr` of a general register and whether it is one of
/// the legacy high-byte registers AH/CH/DH/BH.
fn gpr_slot(r: Register) -> Option<(usize, bool)> {
    if !r.is_gpr() {
        return None;
    }
    let high = matches!(r, Register::AH | Register::CH | Register::DH | Register::BH);
    let idx = if high {
        (r as usize) - (Register::AH as usize)
    } else {
        (r.full_register() as usize).checked_sub(Register::RAX as usize)?
    };
    (idx < 16).then_some((idx, high))
}

/// Read a general register (value masked to the register's width).
pub(crate) fn reg_read(cpu: &Cpu, r: Register) -> u64 {
    match gpr_slot(r) {
        Some((i, true)) => (cpu.state.gpr[i] >> 8) & 0xff,
        Some((i, false)) => mask(cpu.state.gpr[i], r.size() as u8),
        None => 0,
    }
}

/// Write a general register with x86-64 semantics: 32-bit writes
/// zero-extend, 8/16-bit writes merge.
pub(crate) fn reg_write(cpu: &mut Cpu, r: Register, v: u64) {
    let Some((i, high)) = gpr_slot(r) else {
        return;
    };
    let old = cpu.state.gpr[i];
    cpu.state.gpr[i] = if high {
        (old & !0xff00) | ((v & 0xff) << 8)
    } else {
        match r.size() {
            1 => (old & !0xff) | (v & 0xff),
            2 => (old & !0xffff) | (v & 0xffff),
            4 => v & 0xffff_ffff,
            _ => v,
        }
    };
}

/// Write the low 16 bits of a register's full GPR, keeping the rest (ARPL
/// with a 32-bit register operand changes only bits 15:0).
pub(crate) fn reg_write16(cpu: &mut Cpu, r: Register, v: u64) {
    if let Some((i, false)) = gpr_slot(r) {
        let old = cpu.state.gpr[i];
        cpu.state.gpr[i] = (old & !0xffff) | (v & 0xffff);
    }
}

/// Address size (2, 4 or 8) of the instruction's memory operand.
pub(crate) fn addr_size(insn: &Instruction) -> u8 {
    let base = insn.memory_base();
    let index = insn.memory_index();
    if base == Register::RIP {
        8
    } else if base == Register::EIP {
        4
    } else if base != Register::None {
        base.size() as u8
    } else if index != Register::None {
        index.size() as u8
    } else {
        // Displacement-only: iced records the displacement at address size.
        match insn.memory_displ_size() {
            2 => 2,
            8 => 8,
            _ => 4,
        }
    }
}

/// Effective address (offset within the segment) of the memory operand,
/// wrapped to the address size.
pub(crate) fn effective_address(cpu: &Cpu, insn: &Instruction) -> u64 {
    let asize = addr_size(insn);
    let base = insn.memory_base();
    let mut ea = if base == Register::RIP || base == Register::EIP {
        // iced folds the decode-time next IP into the displacement; rebase it
        // on the real next RIP so the result is independent of the IP the
        // decoder was given.
        let disp = insn.memory_displacement64().wrapping_sub(insn.next_ip());
        cpu.state.rip.wrapping_add(disp)
    } else {
        let mut ea = insn.memory_displacement64();
        if base != Register::None {
            ea = ea.wrapping_add(reg_read(cpu, base));
        }
        ea
    };
    let index = insn.memory_index();
    if index != Register::None {
        let scale = insn.memory_index_scale() as u64;
        ea = ea.wrapping_add(reg_read(cpu, index).wrapping_mul(scale));
    }
    mask(ea, asize)
}

/// The segment of the memory operand (default or override).
pub(crate) fn mem_seg(insn: &Instruction) -> SegReg {
    super::sreg_of(insn.memory_segment()).unwrap_or(SegReg::Ds)
}

/// Read operand `op` as `size` bytes (register, memory or immediate).
pub(crate) fn read_op(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    op: u32,
    size: u8,
) -> Result<u64, Fault> {
    match insn.op_kind(op) {
        OpKind::Register => Ok(mask(reg_read(cpu, insn.op_register(op)), size)),
        OpKind::Memory => {
            let ea = effective_address(cpu, insn);
            cpu.seg_read(plat, mem_seg(insn), ea, size)
        }
        OpKind::Immediate8 | OpKind::Immediate16 | OpKind::Immediate32 => {
            Ok(mask(insn.immediate(op), size))
        }
        _ => Err(Fault::UD),
    }
}

/// Write operand `op`. A register destination is written at the register's
/// own width (32-bit zero-extends); memory gets `size` bytes.
pub(crate) fn write_op(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    op: u32,
    size: u8,
    val: u64,
) -> Result<(), Fault> {
    match insn.op_kind(op) {
        OpKind::Register => {
            reg_write(cpu, insn.op_register(op), val);
            Ok(())
        }
        OpKind::Memory => {
            let ea = effective_address(cpu, insn);
            cpu.seg_write(plat, mem_seg(insn), ea, size, mask(val, size))
        }
        _ => Err(Fault::UD),
    }
}

/// Read a far pointer `m16:16/32/64` from the memory operand: the offset
/// (`off_size` bytes) followed by the 16-bit selector.
pub(crate) fn read_far_pointer(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    off_size: u8,
) -> Result<(u16, u64), Fault> {
    if insn.op_kind(insn.op_count().saturating_sub(1)) != OpKind::Memory {
        return Err(Fault::UD);
    }
    let ea = effective_address(cpu, insn);
    let seg = mem_seg(insn);
    let off = cpu.seg_read(plat, seg, ea, off_size)?;
    let sel_ea = mask(ea.wrapping_add(off_size as u64), addr_size(insn));
    let sel = cpu.seg_read(plat, seg, sel_ea, 2)? as u16;
    Ok((sel, off))
}
