//! Shifts and rotates: SHL/SAL, SHR, SAR, ROL, ROR, RCL, RCR, SHLD, SHRD.
//!
//! The count (1, CL or imm8) is masked to 5 bits (6 with a 64-bit
//! operand). A masked count of 0 changes neither the operand nor any flag,
//! but a memory operand is still accessed as a read-modify-write (so a
//! read-only page faults as for a write), as the host CPU does.
//!
//! Flag rules where the SDM leaves a flag undefined (ringside's choice,
//! applied for every count so the result is deterministic):
//! * OF for counts other than 1 uses the 1-bit formula (SHL/ROL/RCL:
//!   MSB(result) XOR CF; SHR: MSB(original); SAR: 0; ROR: XOR of the two
//!   top bits of the result; RCR: MSB(original) XOR CF-in; SHLD/SHRD:
//!   MSB(result) XOR MSB(original)).
//! * AF is cleared by the shifts (SHL/SHR/SAR/SHLD/SHRD).
//! * CF for SHL/SHR counts ≥ the width is the last bit shifted out of the
//!   mathematically extended operand (0 beyond the width).
//! * SHLD/SHRD of a 16-bit operand by 17-31 shift through DEST:SRC:DEST.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::flags::sext;
use crate::operand::size_mask;
use crate::platform::Platform;
use crate::state::rflags::{CF, OF};
use iced_x86::{Instruction, OpKind};

pub(crate) const ROL: u8 = 0;
pub(crate) const ROR: u8 = 1;
pub(crate) const RCL: u8 = 2;
pub(crate) const RCR: u8 = 3;
pub(crate) const SHL: u8 = 4;
pub(crate) const SHR: u8 = 5;
pub(crate) const SAR: u8 = 7;

#[inline(always)]
fn count_mask<const SZ: u8>() -> u64 {
    if SZ == 8 {
        63
    } else {
        31
    }
}

/// The raw count of a shift: CL, or the immediate (1 for the D0/D1 forms).
#[inline(always)]
fn raw_count(cpu: &Cpu, insn: &Instruction, n: u32) -> u64 {
    if insn.op_kind(n) == OpKind::Register {
        cpu.state.gpr[1] & 0xff
    } else {
        insn.immediate(n) & 0xff
    }
}

/// Only CF and OF change (rotates).
#[inline(always)]
fn set_cf_of(cpu: &mut Cpu, cf: u64, of: u64) {
    cpu.flags.aux = (cpu.flags.aux & !(CF | OF)) | (cf & 1) | ((of & 1) << 11);
}

/// Shift/rotate `a` by the masked, non-zero count `cnt`; record flags.
#[inline(always)]
fn compute<const OP: u8, const SZ: u8>(cpu: &mut Cpu, a: u64, cnt: u64) -> u64 {
    let bits = SZ as u64 * 8;
    let m = size_mask(SZ);
    let msb = |v: u64| (v >> (bits - 1)) & 1;
    match OP {
        ROL => {
            let c = cnt % bits;
            let r = if c == 0 {
                a
            } else {
                ((a << c) | (a >> (bits - c))) & m
            };
            let cf = r & 1;
            set_cf_of(cpu, cf, msb(r) ^ cf);
            r
        }
        ROR => {
            let c = cnt % bits;
            let r = if c == 0 {
                a
            } else {
                ((a >> c) | (a << (bits - c))) & m
            };
            set_cf_of(cpu, msb(r), msb(r) ^ ((r >> (bits - 2)) & 1));
            r
        }
        RCL => {
            let c = cnt % (bits + 1);
            let cf_in = cpu.flags.cf() as u128;
            let w = bits as u32 + 1;
            let v = (cf_in << bits) | a as u128;
            let wm = (1u128 << w) - 1;
            let rot = if c == 0 {
                v
            } else {
                ((v << c) | (v >> (w as u64 - c))) & wm
            };
            let r = (rot as u64) & m;
            let cf = ((rot >> bits) & 1) as u64;
            set_cf_of(cpu, cf, msb(r) ^ cf);
            r
        }
        RCR => {
            let c = cnt % (bits + 1);
            let cf_in = cpu.flags.cf() as u64;
            let of = msb(a) ^ cf_in;
            let w = bits as u32 + 1;
            let v = ((cf_in as u128) << bits) | a as u128;
            let wm = (1u128 << w) - 1;
            let rot = if c == 0 {
                v
            } else {
                ((v >> c) | (v << (w as u64 - c))) & wm
            };
            let r = (rot as u64) & m;
            let cf = ((rot >> bits) & 1) as u64;
            set_cf_of(cpu, cf, of);
            r
        }
        SHL => {
            let r = a.wrapping_shl(cnt as u32) & m;
            let r = if cnt >= 64 { 0 } else { r };
            let cf = if cnt <= bits {
                (a >> (bits - cnt)) & 1
            } else {
                0
            };
            cpu.flags
                .result_cf_of(r, bits as u32, cf != 0, (msb(r) ^ cf) != 0);
            r
        }
        SHR => {
            let r = a >> cnt;
            let cf = (a >> (cnt - 1)) & 1;
            cpu.flags.result_cf_of(r, bits as u32, cf != 0, msb(a) != 0);
            r
        }
        _ => {
            // SAR
            let sa = sext(a, bits as u32) as i64;
            let r = (sa >> cnt.min(63)) as u64 & m;
            let cf = ((sa >> (cnt - 1).min(63)) & 1) as u64;
            cpu.flags.result_cf_of(r, bits as u32, cf != 0, false);
            r
        }
    }
}

/// Shift/rotate of a register or memory operand (operand 1: 1, CL, imm8).
pub(crate) fn shift<const OP: u8, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let cnt = raw_count(cpu, insn, 1) & count_mask::<SZ>();
    if insn.op0_kind() == OpKind::Register {
        let d = insn.op0_register();
        let a = cpu.reg::<SZ>(d);
        let r = if cnt == 0 {
            a
        } else {
            compute::<OP, SZ>(cpu, a, cnt)
        };
        cpu.set_reg::<SZ>(d, r);
        Ok(())
    } else {
        // A memory operand is read and written back even when the masked
        // count is 0 (the access is a read-modify-write whatever the
        // count: a read-only page faults with W = 1, as on the host CPU).
        let (loc, a) = cpu.rmw_m::<SZ>(plat, insn)?;
        let r = if cnt == 0 {
            a
        } else {
            compute::<OP, SZ>(cpu, a, cnt)
        };
        cpu.rmw_end::<SZ>(plat, loc, r)
    }
}

/// SHLD (`LEFT`) / SHRD: shift DEST, filling from SRC.
#[inline(always)]
fn double_compute<const LEFT: bool, const SZ: u8>(
    cpu: &mut Cpu,
    dst: u64,
    src: u64,
    cnt: u64,
) -> u64 {
    let bits = SZ as u64 * 8;
    let m = size_mask(SZ);
    // Build the shifted-through value, widest first.
    let (v, w): (u128, u64) = if SZ == 2 && cnt > 16 {
        (
            ((dst as u128) << 32) | ((src as u128) << 16) | dst as u128,
            48,
        )
    } else if LEFT {
        (((dst as u128) << bits) | src as u128, 2 * bits)
    } else {
        (((src as u128) << bits) | dst as u128, 2 * bits)
    };
    let (r, cf) = if LEFT {
        let r = ((v << cnt) >> (w - bits)) as u64 & m;
        let cf = ((v >> (w - cnt)) & 1) as u64;
        (r, cf)
    } else {
        let r = (v >> cnt) as u64 & m;
        let cf = ((v >> (cnt - 1)) & 1) as u64;
        (r, cf)
    };
    let of = ((r ^ dst) >> (bits - 1)) & 1;
    cpu.flags.result_cf_of(r, bits as u32, cf != 0, of != 0);
    r
}

/// SHLD/SHRD r/m, reg, imm8|CL.
pub(crate) fn shxd<const LEFT: bool, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let cnt = raw_count(cpu, insn, 2) & count_mask::<SZ>();
    let src = cpu.reg::<SZ>(insn.op1_register());
    if insn.op0_kind() == OpKind::Register {
        let d = insn.op0_register();
        let a = cpu.reg::<SZ>(d);
        let r = if cnt == 0 {
            a
        } else {
            double_compute::<LEFT, SZ>(cpu, a, src, cnt)
        };
        cpu.set_reg::<SZ>(d, r);
        Ok(())
    } else {
        // Read-modify-write even for a count of 0 (see `shift`).
        let (loc, a) = cpu.rmw_m::<SZ>(plat, insn)?;
        let r = if cnt == 0 {
            a
        } else {
            double_compute::<LEFT, SZ>(cpu, a, src, cnt)
        };
        cpu.rmw_end::<SZ>(plat, loc, r)
    }
}
