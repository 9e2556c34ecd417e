//! Multiplication and division: MUL, IMUL (one, two and three operands),
//! DIV, IDIV.
//!
//! Flag rules where the SDM leaves flags undefined (ringside's choice):
//! * MUL/IMUL: SF, ZF and PF follow the low half of the product (the
//!   value written to the destination / rAX), AF is cleared. CF and OF are
//!   as defined.
//! * DIV/IDIV: all six flags are left unchanged.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::flags::sext;
use crate::operand::size_mask;
use crate::platform::Platform;
use iced_x86::Instruction;

/// One-operand MUL (`SIGNED` = false) / IMUL: rDX:rAX (AX for bytes) =
/// accumulator × r/m. CF = OF = the upper half is significant.
pub(crate) fn mul1<const SZ: u8, const SIGNED: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let src = cpu.read_op::<SZ>(plat, insn, 0)?;
    let bits = SZ as u32 * 8;
    let m = size_mask(SZ);
    let acc = cpu.state.gpr[0] & m;
    let (lo, hi, wide) = if SIGNED {
        let p = (sext(acc, bits) as i64 as i128) * (sext(src, bits) as i64 as i128);
        let lo = p as u64 & m;
        let hi = (p >> bits) as u64 & m;
        // Significant if the product differs from its sign-extended low half.
        (lo, hi, p != sext(lo, bits) as i64 as i128)
    } else {
        let p = (acc as u128) * (src as u128);
        let lo = p as u64 & m;
        let hi = (p >> bits) as u64 & m;
        (lo, hi, hi != 0)
    };
    if SZ == 1 {
        cpu.set_gpr(0, 2, lo | (hi << 8));
    } else {
        cpu.set_gpr(0, SZ, lo);
        cpu.set_gpr(2, SZ, hi);
    }
    cpu.flags.result_cf_of(lo, bits, wide, wide);
    Ok(())
}

/// Two- and three-operand IMUL: reg = r/m × (reg | imm), truncated.
pub(crate) fn imul_n<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let bits = SZ as u32 * 8;
    let m = size_mask(SZ);
    let (a, b) = if insn.op_count() == 3 {
        let a = cpu.read_op::<SZ>(plat, insn, 1)?;
        (a, insn.immediate(2) & m)
    } else {
        let b = cpu.read_op::<SZ>(plat, insn, 1)?;
        (cpu.reg::<SZ>(insn.op0_register()), b)
    };
    let p = (sext(a, bits) as i64 as i128) * (sext(b, bits) as i64 as i128);
    let lo = p as u64 & m;
    let wide = p != sext(lo, bits) as i64 as i128;
    cpu.set_reg::<SZ>(insn.op0_register(), lo);
    cpu.flags.result_cf_of(lo, bits, wide, wide);
    Ok(())
}

/// DIV (`SIGNED` = false) / IDIV: rDX:rAX (AX for bytes) ÷ r/m; quotient
/// to rAX (AL), remainder to rDX (AH). #DE on a zero divisor or a quotient
/// that does not fit. The remainder has the dividend's sign.
pub(crate) fn div<const SZ: u8, const SIGNED: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let d = cpu.read_op::<SZ>(plat, insn, 0)?;
    if d == 0 {
        return Err(Fault::DE);
    }
    let bits = SZ as u32 * 8;
    let m = size_mask(SZ);
    let (lo_in, hi_in) = if SZ == 1 {
        (cpu.state.gpr[0] & 0xff, (cpu.state.gpr[0] >> 8) & 0xff)
    } else {
        (cpu.state.gpr[0] & m, cpu.state.gpr[2] & m)
    };
    let dividend = ((hi_in as u128) << bits) | lo_in as u128;
    let (q, r) = if SIGNED {
        // Sign-extend the 2×bits dividend to 128 bits.
        let sh = 128 - 2 * bits;
        let n = ((dividend << sh) as i128) >> sh;
        let dv = sext(d, bits) as i64 as i128;
        let q = n.checked_div(dv).ok_or(Fault::DE)?;
        let r = n.checked_rem(dv).ok_or(Fault::DE)?;
        let max = (1i128 << (bits - 1)) - 1;
        let min = -(1i128 << (bits - 1));
        if q > max || q < min {
            return Err(Fault::DE);
        }
        (q as u64 & m, r as u64 & m)
    } else {
        let q = dividend / d as u128;
        if q > m as u128 {
            return Err(Fault::DE);
        }
        (q as u64, (dividend % d as u128) as u64)
    };
    if SZ == 1 {
        cpu.set_gpr(0, 2, q | (r << 8));
    } else {
        cpu.set_gpr(0, SZ, q);
        cpu.set_gpr(2, SZ, r);
    }
    Ok(())
}
