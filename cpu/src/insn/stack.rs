//! The stack: PUSH/POP (register, memory, immediate), PUSHA/POPA, ENTER
//! and LEAVE. Segment-register pushes and PUSHF/POPF belong to system/.
//!
//! Every access goes through SS with the stack-address size (SS.B, or 64
//! bits in 64-bit mode); the operand size decides how many bytes move.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::operand::size_mask;
use crate::platform::Platform;
use crate::state::SegReg;
use iced_x86::Instruction;

/// PUSH reg
pub(crate) fn push_r<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.reg::<SZ>(insn.op0_register());
    cpu.push_n::<SZ>(plat, v)
}

/// PUSH imm (sign-extended to the operand size by iced's operand kind).
pub(crate) fn push_i<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    cpu.push_n::<SZ>(plat, insn.immediate(0) & size_mask(SZ))
}

/// PUSH [mem]: the operand is read with the old RSP.
pub(crate) fn push_m<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.read_m::<SZ>(plat, insn)?;
    cpu.push_n::<SZ>(plat, v)
}

/// POP reg (POP rSP loads the popped value).
pub(crate) fn pop_r<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = cpu.pop_n::<SZ>(plat)?;
    cpu.set_reg::<SZ>(insn.op0_register(), v);
    Ok(())
}

/// POP [mem]: an RSP-based address is computed after the increment (SDM:
/// POP). If the store faults, RSP is restored.
pub(crate) fn pop_m<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let old = cpu.state.gpr[4];
    let v = cpu.pop_n::<SZ>(plat)?;
    if let Err(f) = cpu.write_m::<SZ>(plat, insn, v) {
        cpu.state.gpr[4] = old;
        return Err(f);
    }
    Ok(())
}

/// PUSHA/PUSHAD: AX, CX, DX, BX, original SP, BP, SI, DI. All eight
/// stores are checked by doing them below the old SP first, then RSP is
/// committed.
pub(crate) fn pusha<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    let old_sp = cpu.gpr(4, SZ);
    let mut sp = cpu.sp_masked(0);
    let mask = match cpu.stack_addr_size() {
        4 => 0xffff_ffff,
        2 => 0xffff,
        _ => u64::MAX,
    };
    for i in 0..8usize {
        let v = if i == 4 { old_sp } else { cpu.gpr(i, SZ) };
        sp = sp.wrapping_sub(SZ as u64) & mask;
        cpu.write_mem::<SZ>(plat, SegReg::Ss, sp, v)?;
    }
    cpu.set_sp(sp);
    Ok(())
}

/// POPA/POPAD: the reverse, skipping the saved SP.
pub(crate) fn popa<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    let mask = match cpu.stack_addr_size() {
        4 => 0xffff_ffff,
        2 => 0xffff,
        _ => u64::MAX,
    };
    let mut sp = cpu.sp_masked(0);
    let mut vals = [0u64; 8];
    for i in (0..8usize).rev() {
        vals[i] = cpu.read_mem::<SZ>(plat, SegReg::Ss, sp)?;
        sp = sp.wrapping_add(SZ as u64) & mask;
    }
    for (i, v) in vals.iter().enumerate() {
        if i != 4 {
            cpu.set_gpr(i, SZ, *v);
        }
    }
    cpu.set_sp(sp);
    Ok(())
}

/// ENTER imm16, imm8 (SDM: ENTER). The nesting level is taken mod 32;
/// frame pointers of outer levels are copied from the old frame.
pub(crate) fn enter<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let alloc = insn.immediate16() as u64;
    let level = insn.immediate8_2nd() as u64 & 31;
    let asz = cpu.stack_addr_size();
    let mask = size_mask(asz);
    let mut sp = cpu.sp_masked(0);
    let rbp = cpu.state.gpr[5];
    // Push rBP.
    sp = sp.wrapping_sub(SZ as u64) & mask;
    cpu.write_mem::<SZ>(plat, SegReg::Ss, sp, rbp)?;
    let frame_temp = sp;
    if level > 0 {
        let mut bp = rbp & mask;
        for _ in 1..level {
            bp = bp.wrapping_sub(SZ as u64) & mask;
            let v = cpu.read_mem::<SZ>(plat, SegReg::Ss, bp)?;
            sp = sp.wrapping_sub(SZ as u64) & mask;
            cpu.write_mem::<SZ>(plat, SegReg::Ss, sp, v)?;
        }
        sp = sp.wrapping_sub(SZ as u64) & mask;
        cpu.write_mem::<SZ>(plat, SegReg::Ss, sp, frame_temp)?;
    }
    let new_sp = sp.wrapping_sub(alloc) & mask;
    // The SDM checks that the final stack pointer is addressable.
    cpu.seg_lin(SegReg::Ss, new_sp, 1, mmu::AccessKind::Write)?;
    cpu.set_gpr(5, SZ, frame_temp);
    cpu.set_sp(new_sp);
    Ok(())
}

/// LEAVE: rSP = rBP (stack-address size), then POP rBP (operand size).
pub(crate) fn leave<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    let asz = cpu.stack_addr_size();
    let bp = cpu.state.gpr[5] & size_mask(asz);
    let v = cpu.read_mem::<SZ>(plat, SegReg::Ss, bp)?;
    cpu.set_sp(bp.wrapping_add(SZ as u64));
    cpu.set_gpr(5, SZ, v);
    Ok(())
}
