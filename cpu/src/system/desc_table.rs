//! Descriptor-table instructions: LGDT/LIDT/SGDT/SIDT, LLDT/SLDT, LTR/STR,
//! and the unprivileged descriptor probes LAR/LSL/VERR/VERW/ARPL (SDM
//! Vol. 2). UMIP is not offered, so the "store" forms are unprivileged.

use super::descriptor::{self, sel_code, sys_type};
use super::operand::{addr_size, effective_address, mem_seg, read_op, reg_read, write_op};
use super::{canonical, long_mode, mode64, require_cpl0, require_protected};
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{rflags, DescTable, Segment};
use iced_x86::{Code, Instruction, OpKind};

/// LGDT/LIDT m16&32 (m16&24 with a 16-bit operand, m16&64 in 64-bit mode).
pub(crate) fn lgdt_lidt(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    idt: bool,
) -> Result<(), Fault> {
    if insn.op0_kind() != OpKind::Memory {
        return Err(Fault::UD);
    }
    require_cpl0(cpu)?;
    let ea = effective_address(cpu, insn);
    let seg = mem_seg(insn);
    let limit = cpu.seg_read(plat, seg, ea, 2)? as u16;
    let base_ea = super::operand::mask(ea.wrapping_add(2), addr_size(insn));
    let base = match insn.code() {
        Code::Lgdt_m1664 | Code::Lidt_m1664 => {
            let b = cpu.seg_read(plat, seg, base_ea, 8)?;
            if !canonical(b) {
                return Err(Fault::gp0());
            }
            b
        }
        Code::Lgdt_m1632_16 | Code::Lidt_m1632_16 => {
            cpu.seg_read(plat, seg, base_ea, 4)? & 0xff_ffff
        }
        _ => cpu.seg_read(plat, seg, base_ea, 4)?,
    };
    let t = DescTable { base, limit };
    if idt {
        cpu.state.idtr = t;
    } else {
        cpu.state.gdtr = t;
    }
    Ok(())
}

/// SGDT/SIDT m: limit, then a 32-bit base (the full base, as P6 and later
/// store it even for a 16-bit operand) or a 64-bit base in 64-bit mode.
pub(crate) fn sgdt_sidt(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    idt: bool,
) -> Result<(), Fault> {
    if insn.op0_kind() != OpKind::Memory {
        return Err(Fault::UD);
    }
    let t = if idt { cpu.state.idtr } else { cpu.state.gdtr };
    let ea = effective_address(cpu, insn);
    let seg = mem_seg(insn);
    let base_ea = super::operand::mask(ea.wrapping_add(2), addr_size(insn));
    let wide = mode64(cpu);
    cpu.seg_write(plat, seg, ea, 2, t.limit as u64)?;
    if wide {
        cpu.seg_write(plat, seg, base_ea, 8, t.base)
    } else {
        cpu.seg_write(plat, seg, base_ea, 4, t.base & 0xffff_ffff)
    }
}

/// LLDT r/m16.
pub(crate) fn lldt(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = read_op(cpu, plat, insn, 0, 2)? as u16;
    if sel & 0xfffc == 0 {
        // A null selector marks LDTR unusable; later LDT references #GP.
        cpu.state.ldtr = descriptor::null_segment(sel);
        return Ok(());
    }
    if sel & 4 != 0 {
        return Err(Fault::gp(sel_code(sel, false)));
    }
    let d = descriptor::fetch(cpu, plat, sel, false)?;
    if d.is_code_data() || d.typ() != sys_type::LDT {
        return Err(Fault::gp(sel_code(sel, false)));
    }
    let s = system_segment(cpu, plat, sel, &d, long_mode(cpu))?;
    if !d.present() {
        return Err(Fault::np(sel_code(sel, false)));
    }
    cpu.state.ldtr = s;
    Ok(())
}

/// The hidden cache for an LDT or TSS descriptor. In IA-32e mode system
/// descriptors are 16 bytes: the upper half holds base bits 63:32 and must
/// have a zero type field, and the base must be canonical (SDM 7.2.3).
fn system_segment(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    sel: u16,
    d: &descriptor::Desc,
    long_mode: bool,
) -> Result<Segment, Fault> {
    let mut s = Segment::from_descriptor(sel, d.raw);
    if long_mode {
        let hi = descriptor::fetch_high(cpu, plat, d, false)?;
        if (hi >> 8) & 0x1f != 0 {
            return Err(Fault::gp(sel_code(sel, false)));
        }
        s.base |= (hi & 0xffff_ffff) << 32;
        if !canonical(s.base) {
            return Err(Fault::gp(sel_code(sel, false)));
        }
    }
    Ok(s)
}

/// LTR r/m16: load an available TSS and mark it busy.
pub(crate) fn ltr(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    require_protected(cpu)?;
    require_cpl0(cpu)?;
    let sel = read_op(cpu, plat, insn, 0, 2)? as u16;
    if sel & 0xfffc == 0 {
        return Err(Fault::gp0());
    }
    if sel & 4 != 0 {
        return Err(Fault::gp(sel_code(sel, false)));
    }
    let d = descriptor::fetch(cpu, plat, sel, false)?;
    let lm = long_mode(cpu);
    let ok_type = if lm {
        d.typ() == sys_type::TSS_AVAIL
    } else {
        matches!(d.typ(), sys_type::TSS_AVAIL | sys_type::TSS16_AVAIL)
    };
    if d.is_code_data() || !ok_type {
        return Err(Fault::gp(sel_code(sel, false)));
    }
    let mut s = system_segment(cpu, plat, sel, &d, lm)?;
    if !d.present() {
        return Err(Fault::np(sel_code(sel, false)));
    }
    descriptor::set_busy(cpu, plat, &d)?;
    s.attr |= 2; // busy
    cpu.state.tr = s;
    Ok(())
}

/// SLDT / STR r/m16 (a register destination is zero-extended).
pub(crate) fn sldt_str(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    tr: bool,
) -> Result<(), Fault> {
    require_protected(cpu)?;
    let sel = if tr {
        cpu.state.tr.selector
    } else {
        cpu.state.ldtr.selector
    };
    write_op(cpu, plat, insn, 0, 2, sel as u64)
}

fn set_zf(cpu: &mut Cpu, on: bool) {
    let f = cpu.rflags();
    cpu.set_rflags(if on { f | rflags::ZF } else { f & !rflags::ZF });
}

/// The descriptor `sel` names, if it is visible to LAR/LSL/VERR/VERW at the
/// current CPL (`None` → ZF = 0). Memory faults while reading the table
/// still fault.
fn probe(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    sel: u16,
) -> Result<Option<descriptor::Desc>, Fault> {
    if sel & 0xfffc == 0 {
        return Ok(None);
    }
    match descriptor::fetch(cpu, plat, sel, false) {
        Ok(d) => Ok(Some(d)),
        Err(f) if f.vector == crate::fault::vector::GP => Ok(None),
        Err(f) => Err(f),
    }
}

/// Privilege rule shared by LAR/LSL/VERR/VERW: conforming code is always
/// visible; anything else needs DPL ≥ CPL and DPL ≥ RPL.
fn visible(cpu: &Cpu, d: &descriptor::Desc) -> bool {
    d.conforming() || (d.dpl() >= cpu.state.cpl() && d.dpl() >= (d.sel & 3) as u8)
}

/// LAR / LSL r, r/m16.
pub(crate) fn lar_lsl(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    lsl: bool,
) -> Result<(), Fault> {
    require_protected(cpu)?;
    let sel = read_op(cpu, plat, insn, 1, 2)? as u16;
    let Some(d) = probe(cpu, plat, sel)? else {
        set_zf(cpu, false);
        return Ok(());
    };
    let lm = long_mode(cpu);
    let type_ok = d.is_code_data()
        || match (lsl, lm) {
            (false, false) => matches!(d.typ(), 1 | 2 | 3 | 4 | 5 | 9 | 0xb | 0xc),
            (false, true) => matches!(d.typ(), 2 | 9 | 0xb | 0xc),
            (true, false) => matches!(d.typ(), 1 | 2 | 3 | 9 | 0xb),
            (true, true) => matches!(d.typ(), 2 | 9 | 0xb),
        };
    if !type_ok || !visible(cpu, &d) {
        set_zf(cpu, false);
        return Ok(());
    }
    let dst = insn.op0_register();
    let v = if lsl {
        Segment::from_descriptor(sel, d.raw).limit as u64
    } else {
        // Access rights: type, S, DPL, P and AVL/L/D/G of the high dword.
        // Bits 19:16 (limit) are "undefined" in the SDM; they read as 0 here.
        (d.raw >> 32) & 0x00f0_ff00
    };
    let v = if dst.size() == 2 { v & 0xffff } else { v };
    super::operand::reg_write(cpu, dst, v);
    set_zf(cpu, true);
    Ok(())
}

/// VERR / VERW r/m16.
pub(crate) fn verr_verw(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    write: bool,
) -> Result<(), Fault> {
    require_protected(cpu)?;
    let sel = read_op(cpu, plat, insn, 0, 2)? as u16;
    let ok = match probe(cpu, plat, sel)? {
        None => false,
        Some(d) => {
            let kind_ok = if write {
                d.is_data() && d.rw()
            } else {
                d.is_data() || (d.is_code() && d.rw())
            };
            kind_ok && visible(cpu, &d)
        }
    };
    set_zf(cpu, ok);
    Ok(())
}

/// ARPL r/m16, r16: raise the destination selector's RPL to the source's.
pub(crate) fn arpl(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    require_protected(cpu)?;
    let dst = read_op(cpu, plat, insn, 0, 2)?;
    let src = reg_read(cpu, insn.op1_register()) & 0xffff;
    if dst & 3 < src & 3 {
        let v = (dst & !3) | (src & 3);
        if insn.op0_kind() == OpKind::Register {
            // Only the low 16 bits of a register destination change.
            super::operand::reg_write16(cpu, insn.op0_register(), v);
        } else {
            write_op(cpu, plat, insn, 0, 2, v)?;
        }
        set_zf(cpu, true);
    } else {
        set_zf(cpu, false);
    }
    Ok(())
}
