//! Port I/O: IN/OUT/INS/OUTS (with REP) and their protection (SDM Vol. 1
//! 19.5: I/O privilege level and the TSS I/O permission bitmap).
//!
//! In protected mode with CPL > IOPL, and always in VM86, the access is
//! allowed only if every bitmap bit for the accessed ports is 0; otherwise
//! #GP(0). Accesses go to `Platform::pio_in/pio_out` and are reported as
//! `CpuEvent::Pio` when `trace.io` is on.
//!
//! REP INS/OUTS run in chunks of [`REP_CHUNK`] iterations: after a chunk the
//! instruction is restarted (RIP back at it, counters updated), so pending
//! interrupts are taken between chunks as hardware takes them between
//! iterations. A fault in the middle leaves RCX/RSI/RDI describing the
//! iterations already done, as the architecture requires.

use super::operand::{mask, reg_read, reg_write};
use super::{protected, tss, vm86};
use crate::cpu::Cpu;
use crate::event::CpuEvent;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, reg, rflags, SegReg};
use iced_x86::{Code, Instruction, OpKind};

/// Iterations of a REP string I/O instruction per execution.
pub(crate) const REP_CHUNK: u64 = 1024;

/// #GP(0) unless the current code may access `size` ports at `port`.
pub(crate) fn check_io(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    port: u16,
    size: u8,
) -> Result<(), Fault> {
    if cpu.state.cr0 & cr0::PE == 0 {
        return Ok(());
    }
    if protected(cpu) && cpu.state.cpl() <= cpu.state.iopl() {
        return Ok(());
    }
    debug_assert!(vm86(cpu) || cpu.state.cpl() > cpu.state.iopl());
    if tss::io_bitmap_allows(cpu, plat, port, size)? {
        Ok(())
    } else {
        Err(Fault::gp0())
    }
}

fn io_size(code: Code) -> u8 {
    use Code as C;
    match code {
        C::In_AL_imm8 | C::In_AL_DX | C::Out_imm8_AL | C::Out_DX_AL => 1,
        C::Insb_m8_DX | C::Outsb_DX_m8 => 1,
        C::In_AX_imm8 | C::In_AX_DX | C::Out_imm8_AX | C::Out_DX_AX => 2,
        C::Insw_m16_DX | C::Outsw_DX_m16 => 2,
        _ => 4,
    }
}

fn trace(cpu: &Cpu, plat: &mut dyn Platform, port: u16, size: u8, write: bool, val: u32) {
    if cpu.trace.io {
        plat.event(&CpuEvent::Pio {
            port,
            size,
            write,
            val,
        });
    }
}

fn port_of(cpu: &Cpu, insn: &Instruction, op: u32) -> u16 {
    match insn.op_kind(op) {
        OpKind::Immediate8 => insn.immediate8() as u16,
        _ => cpu.state.gpr[reg::RDX] as u16,
    }
}

/// IN AL/AX/EAX, imm8/DX.
pub(crate) fn in_(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let size = io_size(insn.code());
    let port = port_of(cpu, insn, 1);
    check_io(cpu, plat, port, size)?;
    let v = plat.pio_in(port, size) as u64 & mask(u64::MAX, size);
    trace(cpu, plat, port, size, false, v as u32);
    reg_write(cpu, insn.op0_register(), v);
    Ok(())
}

/// OUT imm8/DX, AL/AX/EAX.
pub(crate) fn out(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let size = io_size(insn.code());
    let port = port_of(cpu, insn, 0);
    check_io(cpu, plat, port, size)?;
    let v = reg_read(cpu, insn.op1_register()) as u32;
    trace(cpu, plat, port, size, true, v);
    plat.pio_out(port, size, v);
    Ok(())
}

/// Address size of a string operand (DI/ESI/RSI… forms).
fn string_addr_size(kind: OpKind) -> u8 {
    match kind {
        OpKind::MemorySegSI | OpKind::MemoryESDI => 2,
        OpKind::MemorySegESI | OpKind::MemoryESEDI => 4,
        _ => 8,
    }
}

/// Write an index/counter register at the address size (16-bit: merge;
/// 32-bit: zero-extend; 64-bit: whole).
fn set_areg(cpu: &mut Cpu, r: usize, asize: u8, v: u64) {
    let old = cpu.state.gpr[r];
    cpu.state.gpr[r] = match asize {
        2 => (old & !0xffff) | (v & 0xffff),
        4 => v & 0xffff_ffff,
        _ => v,
    };
}

/// INS/OUTS, with or without REP.
fn string_io(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    input: bool,
) -> Result<(), Fault> {
    let size = io_size(insn.code());
    let port = cpu.state.gpr[reg::RDX] as u16;
    let (mem_op, idx_reg) = if input { (0, reg::RDI) } else { (1, reg::RSI) };
    let asize = string_addr_size(insn.op_kind(mem_op));
    let seg = if input {
        SegReg::Es
    } else {
        super::sreg_of(insn.memory_segment()).unwrap_or(SegReg::Ds)
    };
    let rep = insn.has_rep_prefix() || insn.has_repne_prefix();
    let step = if cpu.rflags() & rflags::DF != 0 {
        (size as u64).wrapping_neg()
    } else {
        size as u64
    };
    // The I/O permission check comes first, even for a REP with a zero
    // count: the host CPU raises #GP(0) for `rep outsb` with RCX = 0 at
    // CPL 3 with IOPL 0 (found by the differential suite), as do QEMU's
    // and Bochs's models (the check before the repeat loop).
    check_io(cpu, plat, port, size)?;
    let mut done = 0u64;
    loop {
        let count = mask(cpu.state.gpr[reg::RCX], asize);
        if rep && count == 0 {
            return Ok(());
        }
        if rep && done == REP_CHUNK {
            // Let the run loop look at interrupts, then resume.
            cpu.state.rip = cpu.insn_start;
            return Ok(());
        }
        let idx = mask(cpu.state.gpr[idx_reg], asize);
        if input {
            let v = plat.pio_in(port, size) as u64 & mask(u64::MAX, size);
            trace(cpu, plat, port, size, false, v as u32);
            cpu.seg_write(plat, seg, idx, size, v)?;
        } else {
            let v = cpu.seg_read(plat, seg, idx, size)?;
            trace(cpu, plat, port, size, true, v as u32);
            plat.pio_out(port, size, v as u32);
        }
        set_areg(cpu, idx_reg, asize, idx.wrapping_add(step));
        if !rep {
            return Ok(());
        }
        set_areg(cpu, reg::RCX, asize, count.wrapping_sub(1));
        done += 1;
    }
}

/// INSB/INSW/INSD.
pub(crate) fn ins(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    string_io(cpu, plat, insn, true)
}

/// OUTSB/OUTSW/OUTSD.
pub(crate) fn outs(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    string_io(cpu, plat, insn, false)
}
