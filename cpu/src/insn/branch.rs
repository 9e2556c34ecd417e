//! Near control transfers: JMP, Jcc, CALL, RET (incl. RET imm16), LOOP,
//! LOOPE/LOOPNE and JCXZ/JECXZ/JRCXZ. Far transfers are system/'s.
//!
//! The target is checked before anything is committed: beyond the CS limit
//! (legacy modes) or non-canonical (64-bit mode) is #GP(0) with RIP still
//! on the branch, and a CALL pushes nothing.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::memory::canonical;
use crate::operand::size_mask;
use crate::platform::Platform;
use iced_x86::{Code, Instruction};

/// Check a near branch target and load it into RIP.
#[inline(always)]
pub(crate) fn jump_to(cpu: &mut Cpu, target: u64) -> Result<(), Fault> {
    if cpu.in_long64() {
        if !canonical(target) {
            return Err(Fault::gp0());
        }
    } else if target > cpu.state.cs().limit as u64 {
        return Err(Fault::gp0());
    }
    cpu.state.rip = target;
    Ok(())
}

/// JMP rel (iced resolved the target, wrapped to the operand size).
pub(crate) fn jmp_rel(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    jump_to(cpu, insn.near_branch_target())
}

/// Jcc rel.
pub(crate) fn jcc<const CC: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    if cpu.flags.cond(CC) {
        // Taken: leave the block (it continues with the fall-through path).
        cpu.exit_block = true;
        jump_to(cpu, insn.near_branch_target())
    } else {
        Ok(())
    }
}

/// JMP r/m (operand size `SZ`).
pub(crate) fn jmp_ind<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let t = cpu.read_op::<SZ>(plat, insn, 0)?;
    jump_to(cpu, t)
}

/// The return address pushed by a CALL of operand size `SZ`.
#[inline(always)]
fn ret_addr<const SZ: u8>(cpu: &Cpu) -> u64 {
    cpu.state.rip & size_mask(SZ)
}

/// Check the target, push the return address, jump.
#[inline(always)]
fn call_to<const SZ: u8>(cpu: &mut Cpu, plat: &mut dyn Platform, target: u64) -> Result<(), Fault> {
    let ret = ret_addr::<SZ>(cpu);
    // Target check first: a faulting CALL pushes nothing.
    let next = cpu.state.rip;
    jump_to(cpu, target)?;
    if let Err(f) = cpu.push_n::<SZ>(plat, ret) {
        cpu.state.rip = next;
        return Err(f);
    }
    Ok(())
}

/// CALL rel.
pub(crate) fn call_rel<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    call_to::<SZ>(cpu, plat, insn.near_branch_target())
}

/// CALL r/m.
pub(crate) fn call_ind<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let t = cpu.read_op::<SZ>(plat, insn, 0)?;
    call_to::<SZ>(cpu, plat, t)
}

/// RET / RET imm16 (near).
pub(crate) fn ret<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let old_sp = cpu.state.gpr[4];
    let t = cpu.pop_n::<SZ>(plat)?;
    if let Err(f) = jump_to(cpu, t) {
        cpu.state.gpr[4] = old_sp;
        return Err(f);
    }
    if insn.op_count() == 1 {
        let sp = cpu.sp_masked(insn.immediate16() as u64);
        cpu.set_sp(sp);
    }
    Ok(())
}

/// The counter register size (address size) of LOOP/JrCXZ, from the code.
fn counter_size(code: Code) -> u8 {
    use Code as C;
    match code {
        C::Loop_rel8_16_CX
        | C::Loop_rel8_32_CX
        | C::Loope_rel8_16_CX
        | C::Loope_rel8_32_CX
        | C::Loopne_rel8_16_CX
        | C::Loopne_rel8_32_CX
        | C::Jcxz_rel8_16
        | C::Jcxz_rel8_32 => 2,
        C::Loop_rel8_16_ECX
        | C::Loop_rel8_32_ECX
        | C::Loop_rel8_64_ECX
        | C::Loope_rel8_16_ECX
        | C::Loope_rel8_32_ECX
        | C::Loope_rel8_64_ECX
        | C::Loopne_rel8_16_ECX
        | C::Loopne_rel8_32_ECX
        | C::Loopne_rel8_64_ECX
        | C::Jecxz_rel8_16
        | C::Jecxz_rel8_32
        | C::Jecxz_rel8_64 => 4,
        _ => 8,
    }
}

pub(crate) const LOOP: u8 = 0;
pub(crate) const LOOPE: u8 = 1;
pub(crate) const LOOPNE: u8 = 2;
pub(crate) const JCXZ: u8 = 3;

/// LOOP/LOOPE/LOOPNE (decrement the counter, branch if non-zero [and ZF
/// condition]) and JCXZ/JECXZ/JRCXZ (branch if the counter is zero).
/// Flags are not modified.
pub(crate) fn loop_<const KIND: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let n = counter_size(insn.code());
    let c = cpu.gpr(1, n);
    let take = if KIND == JCXZ {
        c == 0
    } else {
        let c2 = c.wrapping_sub(1) & size_mask(n);
        let target = insn.near_branch_target();
        let take = c2 != 0
            && match KIND {
                LOOPE => cpu.flags.zf(),
                LOOPNE => !cpu.flags.zf(),
                _ => true,
            };
        if take {
            // Check the target before the counter changes.
            let next = cpu.state.rip;
            jump_to(cpu, target)?;
            cpu.state.rip = next;
        }
        cpu.set_gpr(1, n, c2);
        take
    };
    if take {
        cpu.exit_block = true;
        jump_to(cpu, insn.near_branch_target())?;
    }
    Ok(())
}
