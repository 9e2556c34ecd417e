//! Bit instructions: BT, BTS, BTR, BTC, BSF, BSR, POPCNT, LZCNT, TZCNT.
//!
//! Flag rules where the SDM leaves flags undefined (ringside's choice):
//! * BT/BTS/BTR/BTC change only CF (OF, SF, AF, PF keep their values).
//! * BSF/BSR change only ZF; with a zero source the destination is left
//!   unchanged (all 64 bits), as Intel and AMD cores do.
//! * LZCNT/TZCNT clear OF, SF, AF and PF.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::flags::sext;
use crate::operand::{addr_mask, sreg_of};
use crate::platform::Platform;
use crate::state::rflags::{CF, ZF};
use iced_x86::{Instruction, OpKind};

pub(crate) const BT: u8 = 0;
pub(crate) const BTS: u8 = 1;
pub(crate) const BTR: u8 = 2;
pub(crate) const BTC: u8 = 3;

#[inline(always)]
fn apply<const OP: u8>(v: u64, bit: u64) -> u64 {
    match OP {
        BTS => v | (1 << bit),
        BTR => v & !(1 << bit),
        BTC => v ^ (1 << bit),
        _ => v,
    }
}

/// BT/BTS/BTR/BTC r/m, reg|imm8.
///
/// With a memory operand and a register offset, the offset is a signed
/// bit index relative to the operand's address: the operand-sized unit at
/// `ea + (offset >> log2(width)) * size` is accessed. An immediate offset
/// is taken modulo the width.
pub(crate) fn bt<const OP: u8, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let bits = SZ as u64 * 8;
    let imm = insn.op1_kind() != OpKind::Register;
    let off_raw = if imm {
        insn.immediate(1) & 0xff
    } else {
        cpu.reg::<SZ>(insn.op1_register())
    };
    let bit = off_raw & (bits - 1);
    if insn.op0_kind() == OpKind::Register {
        let d = insn.op0_register();
        let v = cpu.reg::<SZ>(d);
        cpu.flags.set_cf((v >> bit) & 1 != 0);
        if OP != BT {
            cpu.set_reg::<SZ>(d, apply::<OP>(v, bit));
        }
        return Ok(());
    }
    let mut off = cpu.ea(insn);
    if !imm {
        let signed = sext(off_raw, bits as u32) as i64;
        let unit = signed >> bits.trailing_zeros();
        off = off.wrapping_add((unit as u64).wrapping_mul(SZ as u64)) & addr_mask(insn);
    }
    let seg = sreg_of(insn.memory_segment());
    if OP == BT {
        let v = cpu.read_mem::<SZ>(plat, seg, off)?;
        cpu.flags.set_cf((v >> bit) & 1 != 0);
    } else {
        let (loc, v) = cpu.rmw_begin::<SZ>(plat, seg, off)?;
        cpu.rmw_end::<SZ>(plat, loc, apply::<OP>(v, bit))?;
        cpu.flags.set_cf((v >> bit) & 1 != 0);
    }
    Ok(())
}

/// BSF (`REVERSE` = false) / BSR.
pub(crate) fn bsf<const REVERSE: bool, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.read_op::<SZ>(plat, insn, 1)?;
    if v == 0 {
        cpu.flags.set_bits(ZF, ZF);
        return Ok(());
    }
    let idx = if REVERSE {
        63 - v.leading_zeros() as u64
    } else {
        v.trailing_zeros() as u64
    };
    cpu.set_reg::<SZ>(insn.op0_register(), idx);
    cpu.flags.set_bits(ZF, 0);
    Ok(())
}

/// POPCNT: ZF = (source == 0); CF, OF, SF, AF, PF cleared.
pub(crate) fn popcnt<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.read_op::<SZ>(plat, insn, 1)?;
    cpu.set_reg::<SZ>(insn.op0_register(), v.count_ones() as u64);
    cpu.flags.load(if v == 0 { ZF } else { 0 });
    Ok(())
}

/// LZCNT (`LEADING`) / TZCNT: the count of leading/trailing zero bits
/// (the width for a zero source); CF = (source == 0), ZF = (count == 0).
pub(crate) fn zcnt<const LEADING: bool, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let bits = SZ as u32 * 8;
    let v = cpu.read_op::<SZ>(plat, insn, 1)?;
    let n = if v == 0 {
        bits
    } else if LEADING {
        v.leading_zeros() - (64 - bits)
    } else {
        v.trailing_zeros()
    } as u64;
    cpu.set_reg::<SZ>(insn.op0_register(), n);
    let mut f = 0;
    if v == 0 {
        f |= CF;
    }
    if n == 0 {
        f |= ZF;
    }
    cpu.flags.load(f);
    Ok(())
}
