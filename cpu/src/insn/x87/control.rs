//! x87 control instructions: FNINIT, FLDCW/FNSTCW, FNSTSW (m16 and AX),
//! FNCLEX, FNSTENV/FLDENV, FNSAVE/FRSTOR, FINCSTP/FDECSTP, FNOP, FWAIT,
//! and the WAIT-prefixed forms iced decodes as one instruction (FINIT,
//! FSTSW…): those check for pending exceptions first.
//!
//! # Environment formats (SDM Vol. 1, Figures 8-9 to 8-12)
//!
//! The 14-byte (16-bit operand size) and 28-byte (32-bit) images, in the
//! protected-mode layout (selector + offset pointers, FOP in the FCS
//! dword of the 32-bit form) and in the real/virtual-8086 layout
//! (linear pointers split 16/16 or 16/4, FOP beside them). Reserved
//! upper halves of the 32-bit form are stored as ones. FNSAVE/FRSTOR add
//! ST(0)-ST(7) at 10 bytes each. A 16-bit address size does not wrap the
//! area at 64 KiB here (a segment-limit check covers the whole area).

use super::stack::{self, abridge, full_tags, update_es};
use super::{check_nm, check_wait, note_pointers, read_lin80, write_lin80};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::memory::canonical;
use crate::platform::Platform;
use crate::state::{cr0, fsw, reg, rflags, SegReg, X87State};
use iced_x86::{Code, Instruction};
use mmu::AccessKind;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Fninit => finit::<false>,
        C::Finit => finit::<true>,
        C::Fldcw_m2byte => fldcw,
        C::Fnstcw_m2byte => fstcw::<false>,
        C::Fstcw_m2byte => fstcw::<true>,
        C::Fnstsw_m2byte => fstsw_m::<false>,
        C::Fstsw_m2byte => fstsw_m::<true>,
        C::Fnstsw_AX => fstsw_ax::<false>,
        C::Fstsw_AX => fstsw_ax::<true>,
        C::Fnclex => fclex::<false>,
        C::Fclex => fclex::<true>,
        C::Fnstenv_m14byte => fstenv::<false, 14>,
        C::Fnstenv_m28byte => fstenv::<false, 28>,
        C::Fstenv_m14byte => fstenv::<true, 14>,
        C::Fstenv_m28byte => fstenv::<true, 28>,
        C::Fldenv_m14byte => fldenv::<14>,
        C::Fldenv_m28byte => fldenv::<28>,
        C::Fnsave_m94byte => fsave::<false, 14>,
        C::Fnsave_m108byte => fsave::<false, 28>,
        C::Fsave_m94byte => fsave::<true, 14>,
        C::Fsave_m108byte => fsave::<true, 28>,
        C::Frstor_m94byte => frstor::<14>,
        C::Frstor_m108byte => frstor::<28>,
        C::Fincstp => fincstp::<1>,
        C::Fdecstp => fincstp::<7>,
        C::Fnop => fnop,
        // 8087/287 controls that later FPUs execute as no-ops.
        C::Fneni | C::Fndisi | C::Fnsetpm => fnop_nowait,
        // Their WAIT forms (9B DB E0/E1/E4): the pending-exception check,
        // then nothing.
        C::Feni | C::Fdisi | C::Fsetpm => fnop_wait,
        C::Wait => fwait,
        _ => return None,
    })
}

/// #NM and, for the waiting forms, #MF.
fn prologue<const WAIT: bool>(cpu: &Cpu) -> Result<(), Fault> {
    if WAIT {
        check_wait(cpu)
    } else {
        check_nm(cpu)
    }
}

fn finit<const WAIT: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    prologue::<WAIT>(cpu)?;
    cpu.state.x87.init();
    Ok(())
}

/// FLDCW: reserved bits 7, 13-15 read as 0 and bit 6 as 1; unmasking a
/// flagged exception makes it pending (ES).
fn fldcw(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)?;
    let v = cpu.read_m::<2>(plat, insn)? as u16;
    let x = &mut cpu.state.x87;
    x.fcw = (v & 0x1f3f) | 0x40;
    update_es(x);
    Ok(())
}

fn fstcw<const WAIT: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    prologue::<WAIT>(cpu)?;
    let v = u64::from(cpu.state.x87.fcw);
    cpu.write_m::<2>(plat, insn, v)
}

fn fstsw_m<const WAIT: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    prologue::<WAIT>(cpu)?;
    let v = u64::from(cpu.state.x87.fsw);
    cpu.write_m::<2>(plat, insn, v)
}

fn fstsw_ax<const WAIT: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    prologue::<WAIT>(cpu)?;
    let v = u64::from(cpu.state.x87.fsw);
    cpu.set_gpr(reg::RAX, 2, v);
    Ok(())
}

/// FNCLEX: clear the exception flags, SF, ES and B.
fn fclex<const WAIT: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    _insn: &Instruction,
) -> Result<(), Fault> {
    prologue::<WAIT>(cpu)?;
    cpu.state.x87.fsw &= !(0xff | fsw::B);
    Ok(())
}

fn fincstp<const D: usize>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    let top = x.top() + D;
    stack::set_top(&mut x, top);
    cpu.state.x87 = x;
    Ok(())
}

fn fnop(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    cpu.state.x87 = x;
    Ok(())
}

fn fnop_nowait(cpu: &mut Cpu, _plat: &mut dyn Platform, _insn: &Instruction) -> Result<(), Fault> {
    check_nm(cpu)
}

fn fnop_wait(cpu: &mut Cpu, _plat: &mut dyn Platform, _insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)
}

/// WAIT/FWAIT: #NM only if CR0.MP and CR0.TS; then a pending unmasked
/// exception is delivered (#MF with CR0.NE).
fn fwait(cpu: &mut Cpu, _plat: &mut dyn Platform, _insn: &Instruction) -> Result<(), Fault> {
    let c0 = cpu.state.cr0;
    if c0 & (cr0::MP | cr0::TS) == cr0::MP | cr0::TS {
        return Err(Fault::NM);
    }
    if cpu.state.x87.fsw & fsw::ES != 0 && c0 & cr0::NE != 0 {
        return Err(Fault::MF);
    }
    Ok(())
}

/// The linear address of a `len`-byte memory area operand, with the
/// segmentation (or canonical) check over all of it.
fn area(cpu: &Cpu, insn: &Instruction, len: u64, kind: AccessKind) -> Result<u64, Fault> {
    let lin = cpu.operand_lin(insn, 1, kind)?;
    if cpu.in_long64() {
        if !canonical(lin.wrapping_add(len - 1)) {
            return Err(crate::memory::seg_fault(SegReg::Ds));
        }
    } else {
        let seg = crate::operand::sreg_of(insn.memory_segment());
        let off = cpu.ea(insn);
        cpu.seg_lin(seg, off, len as u8, kind)?;
    }
    Ok(lin)
}

/// Check that the whole environment/state area at `lin` is accessible
/// before any of it is accessed, in the order AMD processors do it
/// (measured for FNSTENV, FNSAVE, FLDENV and FRSTOR; the SDM leaves it
/// open): the first field (the control word: 2 bytes in the 16-bit
/// formats, a dword in the 32-bit ones), then the area's last byte. So
/// when only the second page faults, CR2 is the first byte of that page
/// if the first field crosses into it, else the area's *last* byte.
fn probe_area(cpu: &mut Cpu, lin: u64, len: u64, kind: AccessKind) -> Result<(), Fault> {
    let user = cpu.user_mode();
    let mask = cpu.lin_mask();
    let field = if len == 14 || len == 94 { 2 } else { 4 };
    let field_end = lin.wrapping_add(field - 1) & mask;
    let last = lin.wrapping_add(len - 1) & mask;
    cpu.translate(lin, kind, user)?;
    if field_end >> 12 != lin >> 12 {
        cpu.translate(field_end & !0xfff, kind, user)?;
    }
    if last >> 12 != lin >> 12 {
        cpu.translate(last, kind, user)?;
    }
    Ok(())
}

/// Real-address or virtual-8086 mode: the real-mode image layout.
fn real_layout(cpu: &Cpu) -> bool {
    cpu.state.cr0 & cr0::PE == 0 || cpu.state.rflags & rflags::VM != 0
}

/// The environment image (ENV = 14 or 28 bytes) as little-endian words
/// of ENV/7 bytes each.
fn env_image<const ENV: usize>(x: &X87State, real: bool) -> [u32; 7] {
    let tags = full_tags(x);
    let r = if ENV == 28 { 0xffff_0000u32 } else { 0 };
    let fop = u32::from(x.fop & 0x7ff);
    let (fip, fdp) = (x.fip as u32, x.fdp as u32);
    let mut w = [
        u32::from(x.fcw) | r,
        u32::from(x.fsw) | r,
        u32::from(tags) | r,
        0,
        0,
        0,
        0,
    ];
    if real {
        w[3] = (fip & 0xffff) | r;
        w[5] = (fdp & 0xffff) | r;
        if ENV == 28 {
            w[4] = ((fip >> 16) << 12) | fop;
            w[6] = (fdp >> 16) << 12;
        } else {
            w[4] = (((fip >> 16) & 0xf) << 12) | fop;
            w[6] = ((fdp >> 16) & 0xf) << 12;
        }
    } else {
        w[3] = if ENV == 28 { fip } else { fip & 0xffff };
        w[4] = u32::from(x.fcs) | if ENV == 28 { fop << 16 } else { 0 };
        w[5] = if ENV == 28 { fdp } else { fdp & 0xffff };
        w[6] = u32::from(x.fds) | r;
    }
    w
}

/// Load an environment image into `x` (the tags only say empty or not).
fn load_env<const ENV: usize>(x: &mut X87State, w: [u32; 7], real: bool) {
    x.fcw = (w[0] as u16 & 0x1f3f) | 0x40;
    x.fsw = w[1] as u16;
    x.ftw = abridge(w[2] as u16);
    if real {
        let hi_mask = if ENV == 28 { 0xffff } else { 0xf };
        x.fip = u64::from((w[3] & 0xffff) | (((w[4] >> 12) & hi_mask) << 16));
        x.fdp = u64::from((w[5] & 0xffff) | (((w[6] >> 12) & hi_mask) << 16));
        x.fop = (w[4] & 0x7ff) as u16;
        x.fcs = 0;
        x.fds = 0;
    } else {
        let m = if ENV == 28 { u32::MAX } else { 0xffff };
        x.fip = u64::from(w[3] & m);
        x.fcs = w[4] as u16;
        x.fop = if ENV == 28 {
            ((w[4] >> 16) & 0x7ff) as u16
        } else {
            0
        };
        x.fdp = u64::from(w[5] & m);
        x.fds = w[6] as u16;
    }
    update_es(x);
}

fn write_env<const ENV: usize>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    lin: u64,
    w: [u32; 7],
) -> Result<(), Fault> {
    let user = cpu.user_mode();
    let mask = cpu.lin_mask();
    for (k, v) in w.iter().enumerate() {
        if ENV == 28 {
            cpu.write_lin::<4>(
                plat,
                lin.wrapping_add(4 * k as u64) & mask,
                u64::from(*v),
                user,
            )?;
        } else {
            cpu.write_lin::<2>(
                plat,
                lin.wrapping_add(2 * k as u64) & mask,
                u64::from(*v),
                user,
            )?;
        }
    }
    Ok(())
}

fn read_env<const ENV: usize>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    lin: u64,
) -> Result<[u32; 7], Fault> {
    let user = cpu.user_mode();
    let mask = cpu.lin_mask();
    let mut w = [0u32; 7];
    for (k, v) in w.iter_mut().enumerate() {
        *v = if ENV == 28 {
            cpu.read_lin::<4>(plat, lin.wrapping_add(4 * k as u64) & mask, user)? as u32
        } else {
            cpu.read_lin::<2>(plat, lin.wrapping_add(2 * k as u64) & mask, user)? as u32
        };
    }
    Ok(w)
}

/// FNSTENV/FSTENV: store the environment, then mask all exceptions.
fn fstenv<const WAIT: bool, const ENV: usize>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    prologue::<WAIT>(cpu)?;
    let lin = area(cpu, insn, ENV as u64, AccessKind::Write)?;
    probe_area(cpu, lin, ENV as u64, AccessKind::Write)?;
    let w = env_image::<ENV>(&cpu.state.x87, real_layout(cpu));
    write_env::<ENV>(cpu, plat, lin, w)?;
    // All exceptions masked: nothing is pending any more (ES and B
    // clear; measured on AMD, as the SDM's definition of ES implies).
    cpu.state.x87.fcw |= 0x3f;
    update_es(&mut cpu.state.x87);
    Ok(())
}

fn fldenv<const ENV: usize>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    // A waiting instruction (only the FN- forms are not; measured on
    // AMD: FRSTOR with an exception pending raises #MF).
    check_wait(cpu)?;
    let lin = area(cpu, insn, ENV as u64, AccessKind::Read)?;
    probe_area(cpu, lin, ENV as u64, AccessKind::Read)?;
    let w = read_env::<ENV>(cpu, plat, lin)?;
    let real = real_layout(cpu);
    load_env::<ENV>(&mut cpu.state.x87, w, real);
    Ok(())
}

/// FNSAVE/FSAVE: environment + ST(0)-ST(7), then FNINIT.
fn fsave<const WAIT: bool, const ENV: usize>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    prologue::<WAIT>(cpu)?;
    let len = ENV as u64 + 80;
    let lin = area(cpu, insn, len, AccessKind::Write)?;
    probe_area(cpu, lin, len, AccessKind::Write)?;
    let x = cpu.state.x87;
    let w = env_image::<ENV>(&x, real_layout(cpu));
    write_env::<ENV>(cpu, plat, lin, w)?;
    let mask = cpu.lin_mask();
    for i in 0..8 {
        let v = stack::get(&x, i);
        write_lin80(
            cpu,
            plat,
            lin.wrapping_add(ENV as u64 + 10 * i as u64) & mask,
            v,
        )?;
    }
    cpu.state.x87.init();
    Ok(())
}

fn frstor<const ENV: usize>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    // A waiting instruction (only the FN- forms are not; measured on
    // AMD: FRSTOR with an exception pending raises #MF).
    check_wait(cpu)?;
    let len = ENV as u64 + 80;
    let lin = area(cpu, insn, len, AccessKind::Read)?;
    probe_area(cpu, lin, len, AccessKind::Read)?;
    let w = read_env::<ENV>(cpu, plat, lin)?;
    let mask = cpu.lin_mask();
    let mut st = [crate::state::F80::default(); 8];
    for (i, v) in st.iter_mut().enumerate() {
        *v = read_lin80(
            cpu,
            plat,
            lin.wrapping_add(ENV as u64 + 10 * i as u64) & mask,
        )?;
    }
    let real = real_layout(cpu);
    let mut x = cpu.state.x87;
    load_env::<ENV>(&mut x, w, real);
    for (i, v) in st.iter().enumerate() {
        let p = stack::phys(&x, i);
        x.regs[p] = *v;
    }
    cpu.state.x87 = x;
    Ok(())
}
