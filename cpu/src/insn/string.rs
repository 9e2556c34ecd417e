//! String instructions: MOVS, CMPS, STOS, LODS, SCAS, with REP/REPE/REPNE,
//! at every operand size and address size. INS/OUTS are system/'s (I/O).
//!
//! A repeated instruction runs at most [`REP_CHUNK`] iterations per
//! execution. If work is left, RIP stays on the instruction and the block
//! ends, so pending interrupts are taken between iterations (with RCX,
//! RSI, RDI describing exactly the iterations done, as the SDM requires)
//! and `run`'s budget is honoured; the next execution continues. A fault
//! in iteration k leaves the registers as after k-1 iterations.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::insn::alu;
use crate::operand::{size_mask, sreg_of};
use crate::platform::Platform;
use crate::state::{rflags, SegReg};
use iced_x86::{Instruction, OpKind};

pub(crate) const MOVS: u8 = 0;
pub(crate) const CMPS: u8 = 1;
pub(crate) const STOS: u8 = 2;
pub(crate) const LODS: u8 = 3;
pub(crate) const SCAS: u8 = 4;

/// Iterations of a REP string instruction per execution.
pub(crate) const REP_CHUNK: u32 = 4096;

/// Address size of a string instruction, from its implicit operands.
fn addr_size(insn: &Instruction) -> u8 {
    for i in 0..insn.op_count() {
        match insn.op_kind(i) {
            OpKind::MemorySegSI | OpKind::MemoryESDI | OpKind::MemorySegDI => return 2,
            OpKind::MemorySegESI | OpKind::MemoryESEDI | OpKind::MemorySegEDI => return 4,
            OpKind::MemorySegRSI | OpKind::MemoryESRDI | OpKind::MemorySegRDI => return 8,
            _ => {}
        }
    }
    8
}

/// One iteration.
#[inline(always)]
fn once<const KIND: u8, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    seg: SegReg,
    asz: u8,
) -> Result<(), Fault> {
    let am = size_mask(asz);
    let delta = if cpu.state.rflags & rflags::DF != 0 {
        (SZ as u64).wrapping_neg()
    } else {
        SZ as u64
    };
    let si = cpu.state.gpr[6] & am;
    let di = cpu.state.gpr[7] & am;
    match KIND {
        MOVS => {
            let v = cpu.read_mem::<SZ>(plat, seg, si)?;
            cpu.write_mem::<SZ>(plat, SegReg::Es, di, v)?;
            cpu.set_gpr(6, asz, si.wrapping_add(delta));
            cpu.set_gpr(7, asz, di.wrapping_add(delta));
        }
        CMPS => {
            let a = cpu.read_mem::<SZ>(plat, seg, si)?;
            let b = cpu.read_mem::<SZ>(plat, SegReg::Es, di)?;
            alu::compute::<{ alu::CMP }, SZ>(cpu, a, b);
            cpu.set_gpr(6, asz, si.wrapping_add(delta));
            cpu.set_gpr(7, asz, di.wrapping_add(delta));
        }
        STOS => {
            let v = cpu.state.gpr[0] & size_mask(SZ);
            cpu.write_mem::<SZ>(plat, SegReg::Es, di, v)?;
            cpu.set_gpr(7, asz, di.wrapping_add(delta));
        }
        LODS => {
            let v = cpu.read_mem::<SZ>(plat, seg, si)?;
            cpu.set_gpr(0, SZ, v);
            cpu.set_gpr(6, asz, si.wrapping_add(delta));
        }
        _ => {
            let a = cpu.state.gpr[0] & size_mask(SZ);
            let b = cpu.read_mem::<SZ>(plat, SegReg::Es, di)?;
            alu::compute::<{ alu::CMP }, SZ>(cpu, a, b);
            cpu.set_gpr(7, asz, di.wrapping_add(delta));
        }
    }
    Ok(())
}

/// MOVS/CMPS/STOS/LODS/SCAS, repeated or not.
pub(crate) fn string<const KIND: u8, const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let asz = addr_size(insn);
    // The DS:rSI operand's segment (overridable); STOS/SCAS only use ES.
    let seg = match KIND {
        STOS | SCAS => SegReg::Es,
        _ => sreg_of(insn.memory_segment()),
    };
    let repe = insn.has_rep_prefix();
    let repne = insn.has_repne_prefix();
    if !repe && !repne {
        return once::<KIND, SZ>(cpu, plat, seg, asz);
    }
    let compares = KIND == CMPS || KIND == SCAS;
    let mut n = 0u32;
    loop {
        let c = cpu.gpr(1, asz);
        if c == 0 {
            return Ok(());
        }
        once::<KIND, SZ>(cpu, plat, seg, asz)?;
        let c = c - 1;
        cpu.set_gpr(1, asz, c);
        if compares {
            let zf = cpu.flags.zf();
            if (repe && !zf) || (repne && zf) {
                return Ok(());
            }
        }
        if c == 0 {
            return Ok(());
        }
        n += 1;
        if n >= REP_CHUNK || cpu.exit_block {
            // Resume later: RIP back on this instruction, end the block.
            cpu.state.rip = cpu.insn_start;
            cpu.exit_block = true;
            return Ok(());
        }
    }
}
