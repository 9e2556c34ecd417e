//! Loading DS/ES/FS/GS/SS with all protection checks (SDM Vol. 2, MOV/POP/
//! LDS "Protected Mode Exceptions"; Vol. 3A 5.5-5.7), and the instructions
//! that do it: MOV Sreg, PUSH/POP Sreg, LDS/LES/LFS/LGS/LSS.
//!
//! CS is only loaded by far transfers (`far.rs`); `MOV CS, r/m` is #UD.

use super::descriptor::{self, null_segment, sel_code};
use super::operand::{read_far_pointer, read_op, write_op};
use super::stack::Stack;
use super::{mode64, protected, vm86};
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{reg, seg_attr, SegReg, Segment};
use iced_x86::{Code, Instruction};

/// The hidden cache a load of `sel` into `sreg` (not CS) would produce,
/// after every check. The descriptor's Accessed bit is set in memory here
/// (it has no register effect, so doing it before the commit is safe).
pub(crate) fn check_load(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    sreg: SegReg,
    sel: u16,
) -> Result<Segment, Fault> {
    if vm86(cpu) {
        return Ok(Segment {
            selector: sel,
            base: (sel as u64) << 4,
            limit: 0xffff,
            attr: 0x3 | seg_attr::S | (3 << seg_attr::DPL_SHIFT) | seg_attr::P,
        });
    }
    if !protected(cpu) {
        return Ok(real_mode_load(cpu.state.sreg(sreg), sel));
    }
    let cpl = cpu.state.cpl();
    let rpl = (sel & 3) as u8;
    let null = sel & 0xfffc == 0;
    if sreg == SegReg::Ss {
        if null {
            // IA-32e 64-bit mode allows a null SS below ring 3 (SDM 3.4.4).
            if mode64(cpu) && cpl < 3 && rpl == cpl {
                return Ok(null_segment(sel));
            }
            return Err(Fault::gp0());
        }
        let d = descriptor::fetch(cpu, plat, sel, false)?;
        if rpl != cpl || !d.is_data() || !d.rw() || d.dpl() != cpl {
            return Err(Fault::gp(sel_code(sel, false)));
        }
        if !d.present() {
            return Err(Fault::ss(sel_code(sel, false)));
        }
        descriptor::set_accessed(cpu, plat, &d)?;
        return Ok(d.segment_cache(sel));
    }
    if null {
        // Intel clears the hidden base of a null FS/GS load in 64-bit mode;
        // pre-Zen-2 AMD kept it (CPUID 0x80000021 EAX[6] "NullSelectorClearsBase").
        return Ok(null_segment(sel));
    }
    let d = descriptor::fetch(cpu, plat, sel, false)?;
    let readable = d.is_data() || (d.is_code() && d.rw());
    if !readable {
        return Err(Fault::gp(sel_code(sel, false)));
    }
    if !d.conforming() && (rpl > d.dpl() || cpl > d.dpl()) {
        return Err(Fault::gp(sel_code(sel, false)));
    }
    if !d.present() {
        return Err(Fault::np(sel_code(sel, false)));
    }
    descriptor::set_accessed(cpu, plat, &d)?;
    Ok(d.segment_cache(sel))
}

/// Real mode: only the selector and base change; limit and attributes stay
/// as they were (this is what makes "unreal mode" work). A segment left
/// unusable by protected mode becomes a plain 64 KiB data segment.
pub(crate) fn real_mode_load(old: &Segment, sel: u16) -> Segment {
    let mut s = *old;
    s.selector = sel;
    s.base = (sel as u64) << 4;
    if s.unusable() {
        s.limit = 0xffff;
        s.attr = 0x3 | seg_attr::S | seg_attr::P;
    }
    s
}

/// Check and commit a data/stack segment load. (The MOV SS / POP SS
/// interrupt shadow is set by those instructions, not here: LSS has none.)
pub(crate) fn load(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    sreg: SegReg,
    sel: u16,
) -> Result<(), Fault> {
    let s = check_load(cpu, plat, sreg, sel)?;
    *cpu.state.sreg_mut(sreg) = s;
    Ok(())
}

/// MOV Sreg, r/m16.
pub(crate) fn mov_to_sreg(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let sreg = super::sreg_of(insn.op0_register()).ok_or(Fault::UD)?;
    if sreg == SegReg::Cs {
        return Err(Fault::UD);
    }
    let sel = read_op(cpu, plat, insn, 1, 2)? as u16;
    load(cpu, plat, sreg, sel)?;
    if sreg == SegReg::Ss {
        cpu.state.intr.shadow = true;
    }
    Ok(())
}

/// MOV r/m16, Sreg. A 32/64-bit register destination is zero-extended (P6
/// and later); memory always receives 16 bits.
pub(crate) fn mov_from_sreg(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let sreg = super::sreg_of(insn.op1_register()).ok_or(Fault::UD)?;
    let sel = cpu.state.sreg(sreg).selector as u64;
    write_op(cpu, plat, insn, 0, 2, sel)
}

fn sreg_of_push_pop(code: Code) -> Option<SegReg> {
    use Code as C;
    Some(match code {
        C::Pushw_ES | C::Pushd_ES | C::Popw_ES | C::Popd_ES => SegReg::Es,
        C::Pushw_CS | C::Pushd_CS => SegReg::Cs,
        C::Pushw_SS | C::Pushd_SS | C::Popw_SS | C::Popd_SS => SegReg::Ss,
        C::Pushw_DS | C::Pushd_DS | C::Popw_DS | C::Popd_DS => SegReg::Ds,
        C::Pushw_FS | C::Pushd_FS | C::Pushq_FS | C::Popw_FS | C::Popd_FS | C::Popq_FS => {
            SegReg::Fs
        }
        C::Pushw_GS | C::Pushd_GS | C::Pushq_GS | C::Popw_GS | C::Popd_GS | C::Popq_GS => {
            SegReg::Gs
        }
        _ => return None,
    })
}

/// PUSH Sreg. With a 32/64-bit operand size the stack pointer moves by 4/8
/// but, as on recent Intel Core processors, only the 16-bit selector is
/// written; the rest of the slot keeps its old contents. (AMD, and older
/// Intel parts, zero-extend; the SDM allows both.)
pub(crate) fn push_sreg(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    size: u8,
) -> Result<(), Fault> {
    let sreg = sreg_of_push_pop(insn.code()).ok_or(Fault::UD)?;
    let sel = cpu.state.sreg(sreg).selector as u64;
    let mut st = Stack::current(cpu);
    st.check_room(size as u64)?;
    st.adjust(-(size as i64));
    st.push_at_sp(cpu, plat, 2, sel)?;
    cpu.state.gpr[reg::RSP] = st.rsp;
    Ok(())
}

/// POP Sreg. RSP moves only if the load succeeds; POP SS sets the
/// interrupt shadow.
pub(crate) fn pop_sreg(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    size: u8,
) -> Result<(), Fault> {
    let sreg = sreg_of_push_pop(insn.code()).ok_or(Fault::UD)?;
    if sreg == SegReg::Cs {
        return Err(Fault::UD);
    }
    let mut st = Stack::current(cpu);
    let sel = st.peek(cpu, plat, 0, size)? as u16;
    let s = check_load(cpu, plat, sreg, sel)?;
    st.adjust(size as i64);
    cpu.state.gpr[reg::RSP] = st.rsp;
    *cpu.state.sreg_mut(sreg) = s;
    if sreg == SegReg::Ss {
        cpu.state.intr.shadow = true;
    }
    Ok(())
}

/// LDS/LES/LFS/LGS/LSS r, m16:16/32/64. The segment is checked first; the
/// register is written only if the load succeeds.
pub(crate) fn load_far_pointer(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    off_size: u8,
) -> Result<(), Fault> {
    use Code as C;
    let sreg = match insn.code() {
        C::Lds_r16_m1616 | C::Lds_r32_m1632 => SegReg::Ds,
        C::Les_r16_m1616 | C::Les_r32_m1632 => SegReg::Es,
        C::Lfs_r16_m1616 | C::Lfs_r32_m1632 | C::Lfs_r64_m1664 => SegReg::Fs,
        C::Lgs_r16_m1616 | C::Lgs_r32_m1632 | C::Lgs_r64_m1664 => SegReg::Gs,
        C::Lss_r16_m1616 | C::Lss_r32_m1632 | C::Lss_r64_m1664 => SegReg::Ss,
        _ => return Err(Fault::UD),
    };
    let (sel, off) = read_far_pointer(cpu, plat, insn, off_size)?;
    let s = check_load(cpu, plat, sreg, sel)?;
    *cpu.state.sreg_mut(sreg) = s;
    super::operand::reg_write(cpu, insn.op0_register(), off);
    Ok(())
}

/// After a return to an outer privilege level (RETF, IRET), DS/ES/FS/GS
/// that the new CPL may not use are made null (SDM RET/IRET pseudocode:
/// data or non-conforming code segments with DPL < CPL).
pub(crate) fn null_inaccessible_data_segs(cpu: &mut Cpu, new_cpl: u8) {
    for s in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
        let seg = cpu.state.sreg(s);
        if seg.unusable() || seg.attr & seg_attr::S == 0 {
            continue;
        }
        let conforming_code =
            seg.attr & seg_attr::TYPE_CODE != 0 && seg.attr & seg_attr::TYPE_EC != 0;
        if !conforming_code && seg.dpl() < new_cpl {
            // Only the selector is invalidated; the base survives (it is
            // what a 64-bit FS/GS base written by WRMSR depends on).
            let base = seg.base;
            let mut n = null_segment(0);
            n.base = base;
            *cpu.state.sreg_mut(s) = n;
        }
    }
}
