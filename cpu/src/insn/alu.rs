//! Two-operand integer arithmetic and logic: ADD, OR, ADC, SBB, AND, SUB,
//! XOR, CMP, TEST; the one-operand INC, DEC, NEG, NOT; and the exchanging
//! XADD, CMPXCHG, CMPXCHG8B/16B.
//!
//! Each handler is monomorphized over the operation, the operand size and
//! the operand form (register/memory/immediate), so the per-instruction
//! work is just the arithmetic and the flag record.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::operand::{size_mask, sreg_of};
use crate::platform::Platform;
use crate::state::rflags;
use iced_x86::{Instruction, Register};

pub(crate) const ADD: u8 = 0;
pub(crate) const OR: u8 = 1;
pub(crate) const ADC: u8 = 2;
pub(crate) const SBB: u8 = 3;
pub(crate) const AND: u8 = 4;
pub(crate) const SUB: u8 = 5;
pub(crate) const XOR: u8 = 6;
pub(crate) const CMP: u8 = 7;
pub(crate) const TEST: u8 = 8;

/// Does the operation write its destination?
#[inline(always)]
const fn writes(op: u8) -> bool {
    op != CMP && op != TEST
}

/// Compute `a OP b` at `SZ` bytes, record the flags, return the result.
#[inline(always)]
pub(crate) fn compute<const OP: u8, const SZ: u8>(cpu: &mut Cpu, a: u64, b: u64) -> u64 {
    let bits = SZ as u32 * 8;
    let m = size_mask(SZ);
    match OP {
        ADD => {
            let r = a.wrapping_add(b) & m;
            cpu.flags.add(a, b, r, bits);
            // The deliberate bug of the test-only `inject-flag-bug`
            // feature: lockstep must catch it (accel/tests/lockstep_injected.rs).
            #[cfg(feature = "inject-flag-bug")]
            cpu.flags.set_cf(!cpu.flags.cf());
            r
        }
        ADC => {
            let c = cpu.flags.cf() as u64;
            let r = a.wrapping_add(b).wrapping_add(c) & m;
            cpu.flags.add(a, b, r, bits);
            r
        }
        SUB | CMP => {
            let r = a.wrapping_sub(b) & m;
            cpu.flags.sub(a, b, r, bits);
            r
        }
        SBB => {
            let c = cpu.flags.cf() as u64;
            let r = a.wrapping_sub(b).wrapping_sub(c) & m;
            cpu.flags.sub(a, b, r, bits);
            r
        }
        AND | TEST => {
            let r = a & b;
            cpu.flags.logic(r, bits);
            r
        }
        OR => {
            let r = a | b;
            cpu.flags.logic(r, bits);
            r
        }
        _ => {
            let r = a ^ b;
            cpu.flags.logic(r, bits);
            r
        }
    }
}

/// `op reg, reg`
pub(crate) fn rr<const OP: u8, const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let d = insn.op0_register();
    let a = cpu.reg::<SZ>(d);
    let b = cpu.reg::<SZ>(insn.op1_register());
    let r = compute::<OP, SZ>(cpu, a, b);
    if writes(OP) {
        cpu.set_reg::<SZ>(d, r);
    }
    Ok(())
}

/// `op reg, imm`
pub(crate) fn ri<const OP: u8, const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let d = insn.op0_register();
    let a = cpu.reg::<SZ>(d);
    let b = insn.immediate(1) & size_mask(SZ);
    let r = compute::<OP, SZ>(cpu, a, b);
    if writes(OP) {
        cpu.set_reg::<SZ>(d, r);
    }
    Ok(())
}

/// `op reg, [mem]`
pub(crate) fn rm<const OP: u8, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let b = cpu.read_m::<SZ>(plat, insn)?;
    let d = insn.op0_register();
    let a = cpu.reg::<SZ>(d);
    let r = compute::<OP, SZ>(cpu, a, b);
    if writes(OP) {
        cpu.set_reg::<SZ>(d, r);
    }
    Ok(())
}

/// `op [mem], reg` (operand 1 a register) or `op [mem], imm`.
pub(crate) fn m_src<const OP: u8, const SZ: u8, const IMM: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let b = if IMM {
        insn.immediate(1) & size_mask(SZ)
    } else {
        cpu.reg::<SZ>(insn.op1_register())
    };
    if writes(OP) {
        let (loc, a) = cpu.rmw_m::<SZ>(plat, insn)?;
        let r = compute::<OP, SZ>(cpu, a, b);
        cpu.rmw_end::<SZ>(plat, loc, r)
    } else {
        let a = cpu.read_m::<SZ>(plat, insn)?;
        compute::<OP, SZ>(cpu, a, b);
        Ok(())
    }
}

pub(crate) const INC: u8 = 0;
pub(crate) const DEC: u8 = 1;
pub(crate) const NEG: u8 = 2;
pub(crate) const NOT: u8 = 3;

#[inline(always)]
fn unary_compute<const OP: u8, const SZ: u8>(cpu: &mut Cpu, a: u64) -> u64 {
    let bits = SZ as u32 * 8;
    let m = size_mask(SZ);
    match OP {
        INC => {
            let r = a.wrapping_add(1) & m;
            cpu.flags.inc(a, r, bits);
            r
        }
        DEC => {
            let r = a.wrapping_sub(1) & m;
            cpu.flags.dec(a, r, bits);
            r
        }
        NEG => {
            // CF = (source != 0), the rest as for 0 - source.
            let r = a.wrapping_neg() & m;
            cpu.flags.sub(0, a, r, bits);
            r
        }
        _ => !a & m,
    }
}

/// INC/DEC/NEG/NOT on a register.
pub(crate) fn unary_r<const OP: u8, const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let d = insn.op0_register();
    let a = cpu.reg::<SZ>(d);
    let r = unary_compute::<OP, SZ>(cpu, a);
    cpu.set_reg::<SZ>(d, r);
    Ok(())
}

/// INC/DEC/NEG/NOT on memory.
pub(crate) fn unary_m<const OP: u8, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let (loc, a) = cpu.rmw_m::<SZ>(plat, insn)?;
    let r = unary_compute::<OP, SZ>(cpu, a);
    cpu.rmw_end::<SZ>(plat, loc, r)
}

/// XADD: dst = dst + src, src = old dst; flags as ADD.
pub(crate) fn xadd<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let s = insn.op1_register();
    let b = cpu.reg::<SZ>(s);
    if insn.op0_kind() == iced_x86::OpKind::Register {
        let d = insn.op0_register();
        let a = cpu.reg::<SZ>(d);
        let r = compute::<ADD, SZ>(cpu, a, b);
        cpu.set_reg::<SZ>(s, a);
        cpu.set_reg::<SZ>(d, r);
    } else {
        let (loc, a) = cpu.rmw_m::<SZ>(plat, insn)?;
        let r = compute::<ADD, SZ>(cpu, a, b);
        cpu.rmw_end::<SZ>(plat, loc, r)?;
        cpu.set_reg::<SZ>(s, a);
    }
    Ok(())
}

/// CMPXCHG: compare the accumulator with dst (flags as CMP acc, dst); if
/// equal dst = src, else acc = dst. The memory form always writes (the old
/// value back on a mismatch), as the locked bus cycle does. With a 32-bit
/// operand in 64-bit mode RAX is only written (zero-extended) on a mismatch.
pub(crate) fn cmpxchg<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let acc_reg = match SZ {
        1 => Register::AL,
        2 => Register::AX,
        4 => Register::EAX,
        _ => Register::RAX,
    };
    let acc = cpu.reg::<SZ>(acc_reg);
    let src = cpu.reg::<SZ>(insn.op1_register());
    let dst = if insn.op0_kind() == iced_x86::OpKind::Register {
        let d = insn.op0_register();
        let v = cpu.reg::<SZ>(d);
        if v == acc {
            cpu.set_reg::<SZ>(d, src);
        }
        v
    } else {
        let (loc, v) = cpu.rmw_m::<SZ>(plat, insn)?;
        cpu.rmw_end::<SZ>(plat, loc, if v == acc { src } else { v })?;
        v
    };
    compute::<CMP, SZ>(cpu, acc, dst);
    if dst != acc {
        cpu.set_reg::<SZ>(acc_reg, dst);
    }
    Ok(())
}

/// CMPXCHG8B (`SZ` = 8) / CMPXCHG16B (`SZ` = 16): compare EDX:EAX
/// (RDX:RAX) with m64 (m128); equal: store ECX:EBX (RCX:RBX), ZF = 1; else
/// load it into EDX:EAX, ZF = 0. Only ZF changes. CMPXCHG16B needs a
/// 16-byte aligned operand (#GP(0)).
pub(crate) fn cmpxchg_wide<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let off = cpu.ea(insn);
    let seg = sreg_of(insn.memory_segment());
    let half: u8 = SZ / 2;
    let hm = size_mask(half);
    if SZ == 16 {
        let lin = cpu.seg_lin(seg, off, 16, mmu::AccessKind::Write)?;
        if lin & 15 != 0 {
            return Err(Fault::gp0());
        }
    }
    // Check the whole operand for writing before touching it, low half
    // first: a fault reports the lowest faulting address in CR2, as the
    // CPU's single access does.
    let (loc_lo, lo) = if SZ == 16 {
        cpu.rmw_begin::<8>(plat, seg, off)?
    } else {
        cpu.rmw_begin::<4>(plat, seg, off)?
    };
    let (loc_hi, hi) = if SZ == 16 {
        cpu.rmw_begin::<8>(
            plat,
            seg,
            off.wrapping_add(8) & crate::operand::addr_mask(insn),
        )?
    } else {
        cpu.rmw_begin::<4>(
            plat,
            seg,
            off.wrapping_add(4) & crate::operand::addr_mask(insn),
        )?
    };
    let ax = cpu.state.gpr[0] & hm;
    let dx = cpu.state.gpr[2] & hm;
    let equal = lo == ax && hi == dx;
    let (new_lo, new_hi) = if equal {
        (cpu.state.gpr[3] & hm, cpu.state.gpr[1] & hm)
    } else {
        (lo, hi)
    };
    if SZ == 16 {
        cpu.rmw_end::<8>(plat, loc_lo, new_lo)?;
        cpu.rmw_end::<8>(plat, loc_hi, new_hi)?;
    } else {
        cpu.rmw_end::<4>(plat, loc_lo, new_lo)?;
        cpu.rmw_end::<4>(plat, loc_hi, new_hi)?;
    }
    if !equal {
        cpu.set_gpr(0, half, lo);
        cpu.set_gpr(2, half, hi);
    }
    cpu.flags
        .set_bits(rflags::ZF, if equal { rflags::ZF } else { 0 });
    Ok(())
}
