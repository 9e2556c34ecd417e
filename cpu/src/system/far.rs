//! Far control transfers: JMP/CALL ptr16:x and m16:x, RETF [imm16], IRET
//! (SDM Vol. 2 JMP/CALL/RET/IRET pseudocode; Vol. 3A 5.8).
//!
//! Implemented: real mode and VM86 (selector << 4), protected mode to code
//! segments (conforming and non-conforming), call gates (16/32-bit with
//! parameter copy, 64-bit) for JMP, same-privilege CALL and CALL to an
//! inner privilege level with the TSS stack switch, RETF/IRET to the same or
//! an outer level (SS:ESP popped, inaccessible data segments nulled),
//! IRETQ, and transitions between 64-bit and compatibility mode by far
//! JMP/CALL/RETF/IRET.
//!
//! Not implemented (documented faults): hardware task switches (far
//! JMP/CALL to a TSS or task gate → #GP(selector); IRET with NT = 1 outside
//! IA-32e mode → #GP(0)) and IRET to virtual-8086 mode (→ #GP(0)).

use super::descriptor::{self, sel_code, sys_type, Desc};
use super::interrupt::{check_tss_ss, code_segment_cache};
use super::operand::{mask, read_far_pointer};
use super::segment::{null_inaccessible_data_segs, real_mode_load};
use super::stack::Stack;
use super::{canonical, long_mode, mode64, note_mode_change, protected, tss, vm86};
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{reg, rflags, seg_attr, SegReg, Segment};
use iced_x86::{Code, Instruction, OpKind};

/// The CS image for a real-mode / VM86 far transfer.
fn real_cs(cpu: &Cpu, sel: u16) -> Segment {
    if vm86(cpu) {
        Segment {
            selector: sel,
            base: (sel as u64) << 4,
            limit: 0xffff,
            attr: 0xb | seg_attr::S | (3 << seg_attr::DPL_SHIFT) | seg_attr::P,
        }
    } else {
        real_mode_load(cpu.state.cs(), sel)
    }
}

/// Is `off` a valid instruction pointer in `cs`?
fn ip_ok(cs: &Segment, target64: bool, off: u64) -> bool {
    if target64 {
        canonical(off)
    } else {
        off <= cs.limit as u64
    }
}

/// Checks for a code segment reached directly (no gate) by JMP/CALL.
fn check_direct_code(cpu: &Cpu, d: &Desc) -> Result<(), Fault> {
    let cpl = cpu.state.cpl();
    let rpl = (d.sel & 3) as u8;
    let ok = if d.conforming() {
        d.dpl() <= cpl
    } else {
        rpl <= cpl && d.dpl() == cpl
    };
    if !ok || (long_mode(cpu) && d.long() && d.big()) {
        return Err(Fault::gp(sel_code(d.sel, false)));
    }
    if !d.present() {
        return Err(Fault::np(sel_code(d.sel, false)));
    }
    Ok(())
}

/// Far JMP / far CALL, direct or indirect.
pub(crate) fn far_jmp_call(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    call: bool,
) -> Result<(), Fault> {
    use Code as C;
    let (sel, off, opsize) = match insn.code() {
        C::Jmp_ptr1616 | C::Call_ptr1616 => {
            (insn.far_branch_selector(), insn.far_branch16() as u64, 2u8)
        }
        C::Jmp_ptr1632 | C::Call_ptr1632 => {
            (insn.far_branch_selector(), insn.far_branch32() as u64, 4)
        }
        C::Jmp_m1616 | C::Call_m1616 => far_mem(cpu, plat, insn, 2)?,
        C::Jmp_m1632 | C::Call_m1632 => far_mem(cpu, plat, insn, 4)?,
        C::Jmp_m1664 | C::Call_m1664 => far_mem(cpu, plat, insn, 8)?,
        _ => return Err(Fault::UD),
    };
    let before = cpu.state.mode();
    if protected(cpu) {
        far_protected(cpu, plat, sel, off, opsize, call)?;
    } else {
        far_real(cpu, plat, sel, off, opsize, call)?;
    }
    note_mode_change(cpu, plat, before);
    Ok(())
}

fn far_mem(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    size: u8,
) -> Result<(u16, u64, u8), Fault> {
    if insn.op0_kind() != OpKind::Memory {
        return Err(Fault::UD);
    }
    let (sel, off) = read_far_pointer(cpu, plat, insn, size)?;
    Ok((sel, off, size))
}

/// Real mode and VM86.
fn far_real(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    sel: u16,
    off: u64,
    opsize: u8,
    call: bool,
) -> Result<(), Fault> {
    let off = mask(off, opsize.min(4));
    let cs = real_cs(cpu, sel);
    if off > cs.limit as u64 {
        return Err(Fault::gp0());
    }
    let mut st = Stack::current(cpu);
    if call {
        st.check_room(2 * opsize as u64)?;
        st.push(cpu, plat, opsize, cpu.state.cs().selector as u64)?;
        st.push(cpu, plat, opsize, mask(cpu.state.rip, opsize))?;
    }
    cpu.state.gpr[reg::RSP] = st.rsp;
    *cpu.state.sreg_mut(SegReg::Cs) = cs;
    cpu.state.rip = off;
    Ok(())
}

fn far_protected(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    sel: u16,
    off: u64,
    opsize: u8,
    call: bool,
) -> Result<(), Fault> {
    if sel & 0xfffc == 0 {
        return Err(Fault::gp0());
    }
    let d = descriptor::fetch(cpu, plat, sel, false)?;
    let cpl = cpu.state.cpl();
    if d.is_code() {
        check_direct_code(cpu, &d)?;
        let target64 = long_mode(cpu) && d.long();
        let off = if target64 { off } else { mask(off, opsize) };
        let cs = code_segment_cache(&d, sel, cpl);
        if !ip_ok(&cs, target64, off) {
            return Err(Fault::gp0());
        }
        let mut st = Stack::current(cpu);
        if call {
            st.check_room(2 * opsize as u64)?;
            st.push(cpu, plat, opsize, cpu.state.cs().selector as u64)?;
            st.push(cpu, plat, opsize, mask(cpu.state.rip, opsize))?;
        }
        descriptor::set_accessed(cpu, plat, &d)?;
        cpu.state.gpr[reg::RSP] = st.rsp;
        *cpu.state.sreg_mut(SegReg::Cs) = cs;
        cpu.state.rip = off;
        return Ok(());
    }
    if d.is_code_data() {
        // A data segment.
        return Err(Fault::gp(sel_code(sel, false)));
    }
    match d.typ() {
        sys_type::CALL_GATE => call_gate(cpu, plat, &d, call),
        sys_type::CALL_GATE16 if !long_mode(cpu) => call_gate(cpu, plat, &d, call),
        // TSS or task gate: a task switch, which ringside does not implement.
        _ => Err(Fault::gp(sel_code(sel, false))),
    }
}

/// JMP/CALL through a call gate (SDM 5.8.3-5.8.6).
fn call_gate(cpu: &mut Cpu, plat: &mut dyn Platform, gate: &Desc, call: bool) -> Result<(), Fault> {
    let cpl = cpu.state.cpl();
    let gsel = gate.sel;
    if gate.dpl() < cpl || ((gsel & 3) as u8) > gate.dpl() {
        return Err(Fault::gp(sel_code(gsel, false)));
    }
    if !gate.present() {
        return Err(Fault::np(sel_code(gsel, false)));
    }
    let lm = long_mode(cpu);
    let (tsel, toff, gsize, params) = if lm {
        let hi = descriptor::fetch_high(cpu, plat, gate, false)?;
        if (hi >> 8) & 0x1f != 0 {
            return Err(Fault::gp(sel_code(gsel, false)));
        }
        let off = gate.gate_offset32() | ((hi & 0xffff_ffff) << 32);
        (gate.gate_selector(), off, 8u8, 0u8)
    } else if gate.typ() == sys_type::CALL_GATE {
        (
            gate.gate_selector(),
            gate.gate_offset32(),
            4,
            gate.gate_param_count(),
        )
    } else {
        (
            gate.gate_selector(),
            gate.raw & 0xffff,
            2,
            gate.gate_param_count(),
        )
    };
    if tsel & 0xfffc == 0 {
        return Err(Fault::gp0());
    }
    let d = descriptor::fetch(cpu, plat, tsel, false)?;
    let tcode = sel_code(tsel, false);
    if !d.is_code() || d.dpl() > cpl || (lm && !d.is_64bit_code()) {
        return Err(Fault::gp(tcode));
    }
    if !d.present() {
        return Err(Fault::np(tcode));
    }
    let target64 = lm;
    let inner = !d.conforming() && d.dpl() < cpl;
    if !call && inner {
        // JMP through a gate never changes privilege.
        return Err(Fault::gp(tcode));
    }
    let new_cpl = if inner { d.dpl() } else { cpl };
    let cs = code_segment_cache(&d, tsel, new_cpl);
    if !ip_ok(&cs, target64, toff) {
        return Err(Fault::gp0());
    }
    if !call {
        descriptor::set_accessed(cpu, plat, &d)?;
        *cpu.state.sreg_mut(SegReg::Cs) = cs;
        cpu.state.rip = toff;
        return Ok(());
    }

    let old_ss = cpu.state.ss().selector as u64;
    let old_rsp = cpu.state.gpr[reg::RSP];
    let ret_cs = cpu.state.cs().selector as u64;
    let ret_ip = cpu.state.rip;
    let mut st = if inner {
        if lm {
            let rsp = tss::long_stack(cpu, plat, new_cpl, 0, false)?;
            if !canonical(rsp) {
                return Err(Fault::ss(0));
            }
            let ss = descriptor::null_segment(new_cpl as u16);
            Stack::new(ss, rsp, true, new_cpl == 3, Fault::ss(0))
        } else {
            let (ss_sel, sp) = tss::legacy_stack(cpu, plat, new_cpl, false)?;
            let ss = check_tss_ss(cpu, plat, ss_sel, new_cpl, false)?;
            Stack::new(
                ss,
                sp,
                false,
                new_cpl == 3,
                Fault::ss(sel_code(ss_sel, false)),
            )
        }
    } else if lm {
        // A 64-bit gate always lands in 64-bit mode: 8-byte pushes.
        let cur = *cpu.state.ss();
        Stack::new(cur, old_rsp, true, cpl == 3, Fault::ss(0))
    } else {
        Stack::current(cpu)
    };
    let slots = 2 + if inner { 2 + params as u64 } else { 0 };
    st.check_room(slots * gsize as u64)?;
    if inner {
        // Parameters are read from the caller's stack before anything moves.
        let caller = Stack::current(cpu);
        let mut copied = [0u64; 32];
        for (i, slot) in copied.iter_mut().enumerate().take(params as usize) {
            *slot = caller.peek(cpu, plat, i as u64 * gsize as u64, gsize)?;
        }
        st.push(cpu, plat, gsize, old_ss)?;
        st.push(cpu, plat, gsize, old_rsp)?;
        for i in (0..params as usize).rev() {
            st.push(cpu, plat, gsize, copied[i])?;
        }
    }
    st.push(cpu, plat, gsize, ret_cs)?;
    st.push(cpu, plat, gsize, ret_ip)?;
    descriptor::set_accessed(cpu, plat, &d)?;
    if inner {
        *cpu.state.sreg_mut(SegReg::Ss) = st.ss;
    }
    cpu.state.gpr[reg::RSP] = st.rsp;
    *cpu.state.sreg_mut(SegReg::Cs) = cs;
    cpu.state.rip = toff;
    Ok(())
}

/// Code-segment checks for a return (RETF/IRET) to selector `sel`.
fn check_return_cs(cpu: &mut Cpu, plat: &mut dyn Platform, sel: u16) -> Result<Desc, Fault> {
    if sel & 0xfffc == 0 {
        return Err(Fault::gp0());
    }
    let d = descriptor::fetch(cpu, plat, sel, false)?;
    let rpl = (sel & 3) as u8;
    let code = sel_code(sel, false);
    if !d.is_code() || rpl < cpu.state.cpl() {
        return Err(Fault::gp(code));
    }
    if d.conforming() {
        if d.dpl() > rpl {
            return Err(Fault::gp(code));
        }
    } else if d.dpl() != rpl {
        return Err(Fault::gp(code));
    }
    if long_mode(cpu) && d.long() && d.big() {
        return Err(Fault::gp(code));
    }
    if !d.present() {
        return Err(Fault::np(code));
    }
    Ok(d)
}

/// SS checks for a return to privilege `rpl` (RETF/IRET): #GP(sel) for a
/// bad selector or descriptor, #SS(sel) if not present. A null SS is
/// accepted only in IA-32e mode when returning to 64-bit code below ring 3.
fn check_return_ss(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    ss_sel: u16,
    rpl: u8,
    target64: bool,
) -> Result<Segment, Fault> {
    if ss_sel & 0xfffc == 0 {
        if long_mode(cpu) && target64 && rpl != 3 && (ss_sel & 3) as u8 == rpl {
            return Ok(descriptor::null_segment(ss_sel));
        }
        return Err(Fault::gp0());
    }
    let code = sel_code(ss_sel, false);
    if (ss_sel & 3) as u8 != rpl {
        return Err(Fault::gp(code));
    }
    let d = descriptor::fetch(cpu, plat, ss_sel, false)?;
    if !d.is_data() || !d.rw() || d.dpl() != rpl {
        return Err(Fault::gp(code));
    }
    if !d.present() {
        return Err(Fault::ss(code));
    }
    descriptor::set_accessed(cpu, plat, &d)?;
    Ok(d.segment_cache(ss_sel))
}

/// The RSP value a popped stack pointer of `opsize` bytes produces. In
/// IA-32e mode the SDM's IRET and RET (far) pseudocode assign the whole
/// register ("RSP ← tempRSP"): a 16-bit pop is zero-extended, as the CPU
/// does (found by the differential suite: a 16-bit IRET, 66 CF, in 64-bit
/// mode leaves RSP = the popped SP). Outside it, a 16-bit pop replaces SP only.
fn popped_rsp(old: u64, v: u64, opsize: u8, long_mode: bool) -> u64 {
    match opsize {
        2 if long_mode => v & 0xffff,
        2 => (old & !0xffff) | (v & 0xffff),
        4 => v & 0xffff_ffff,
        _ => v,
    }
}

/// RETF [imm16].
pub(crate) fn retf(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    opsize: u8,
) -> Result<(), Fault> {
    let imm = if insn.op_count() > 0 {
        insn.immediate16() as u64
    } else {
        0
    };
    let before = cpu.state.mode();
    let mut st = Stack::current(cpu);
    let ip = st.peek(cpu, plat, 0, opsize)?;
    let sel = st.peek(cpu, plat, opsize as u64, opsize)? as u16;
    if !protected(cpu) {
        let ip = mask(ip, opsize.min(4));
        let cs = real_cs(cpu, sel);
        if ip > cs.limit as u64 {
            return Err(Fault::gp0());
        }
        st.adjust(2 * opsize as i64 + imm as i64);
        cpu.state.gpr[reg::RSP] = st.rsp;
        *cpu.state.sreg_mut(SegReg::Cs) = cs;
        cpu.state.rip = ip;
        return Ok(());
    }
    let d = check_return_cs(cpu, plat, sel)?;
    let cpl = cpu.state.cpl();
    let rpl = (sel & 3) as u8;
    let target64 = long_mode(cpu) && d.long();
    let ip = if target64 { ip } else { mask(ip, opsize) };
    let cs = code_segment_cache(&d, sel, rpl);
    if rpl == cpl {
        if !ip_ok(&cs, target64, ip) {
            return Err(Fault::gp0());
        }
        descriptor::set_accessed(cpu, plat, &d)?;
        st.adjust(2 * opsize as i64 + imm as i64);
        cpu.state.gpr[reg::RSP] = st.rsp;
        *cpu.state.sreg_mut(SegReg::Cs) = cs;
        cpu.state.rip = ip;
        note_mode_change(cpu, plat, before);
        return Ok(());
    }
    // Return to an outer privilege level.
    let base = 2 * opsize as u64 + imm;
    let new_sp = st.peek(cpu, plat, base, opsize)?;
    let ss_sel = st.peek(cpu, plat, base + opsize as u64, opsize)? as u16;
    let ss = check_return_ss(cpu, plat, ss_sel, rpl, target64)?;
    if !ip_ok(&cs, target64, ip) {
        return Err(Fault::gp0());
    }
    descriptor::set_accessed(cpu, plat, &d)?;
    let mut outer = Stack::new(
        ss,
        popped_rsp(cpu.state.gpr[reg::RSP], new_sp, opsize, long_mode(cpu)),
        target64,
        rpl == 3,
        Fault::ss(0),
    );
    outer.adjust(imm as i64);
    *cpu.state.sreg_mut(SegReg::Cs) = cs;
    *cpu.state.sreg_mut(SegReg::Ss) = ss;
    cpu.state.gpr[reg::RSP] = outer.rsp;
    cpu.state.rip = ip;
    null_inaccessible_data_segs(cpu, rpl);
    note_mode_change(cpu, plat, before);
    Ok(())
}

/// The RFLAGS an IRET produces from the popped image `temp` (SDM IRET
/// pseudocode), for the CPL and IOPL in force *before* the IRET: IF only
/// if CPL ≤ IOPL, IOPL/VIF/VIP only at CPL 0; a 16-bit IRET touches only
/// FLAGS[15:0]. VM is never set here (IRET to VM86 is rejected earlier).
fn iret_flags(old: u64, temp: u64, opsize: u8, cpl: u8, iopl: u8, real: bool) -> u64 {
    let mut m = rflags::STATUS | rflags::TF | rflags::DF | rflags::NT;
    if real || cpl <= iopl {
        m |= rflags::IF;
    }
    if real || cpl == 0 {
        m |= rflags::IOPL;
    }
    if opsize >= 4 {
        m |= rflags::RF | rflags::AC | rflags::ID;
        if !real && cpl == 0 {
            m |= rflags::VIF | rflags::VIP;
        }
    }
    (old & !m) | (temp & m) | rflags::FIXED1
}

/// IRET / IRETD / IRETQ. IRET ends NMI blocking even when it faults
/// (SDM Vol. 3A 6.7.1: "NMIs are unmasked before the exception handler is
/// invoked"), but not when it is stopped by a VM exit (the monitor resumes
/// it and it runs again).
pub(crate) fn iret(cpu: &mut Cpu, plat: &mut dyn Platform, opsize: u8) -> Result<(), Fault> {
    let r = iret_inner(cpu, plat, opsize);
    if r != Err(crate::intercept::VM_EXIT_FAULT) {
        cpu.state.intr.nmi_blocked = false;
    }
    r
}

fn iret_inner(cpu: &mut Cpu, plat: &mut dyn Platform, opsize: u8) -> Result<(), Fault> {
    let before = cpu.state.mode();
    let old_flags = cpu.rflags();
    let cpl = cpu.state.cpl();
    let iopl = cpu.state.iopl();
    let mut st = Stack::current(cpu);

    if !protected(cpu) {
        if vm86(cpu) && iopl < 3 {
            // No VME: IRET in VM86 with IOPL < 3 is #GP(0).
            return Err(Fault::gp0());
        }
        let ip = mask(st.peek(cpu, plat, 0, opsize)?, opsize);
        let sel = st.peek(cpu, plat, opsize as u64, opsize)? as u16;
        let temp = st.peek(cpu, plat, 2 * opsize as u64, opsize)?;
        let cs = real_cs(cpu, sel);
        if ip > cs.limit as u64 {
            return Err(Fault::gp0());
        }
        let real = !vm86(cpu);
        let mut f = iret_flags(old_flags, temp, opsize, cpl, iopl, real);
        if !real {
            // VM86 with IOPL 3: IOPL itself is not writable, VM stays set.
            f = (f & !rflags::IOPL) | (old_flags & rflags::IOPL) | rflags::VM;
        }
        st.adjust(3 * opsize as i64);
        cpu.state.gpr[reg::RSP] = st.rsp;
        *cpu.state.sreg_mut(SegReg::Cs) = cs;
        cpu.state.rip = ip;
        cpu.set_rflags(f);
        return Ok(());
    }

    if old_flags & rflags::NT != 0 {
        // Task return (IA-32e: always #GP(0); legacy: a task switch, which
        // ringside does not implement).
        return Err(Fault::gp0());
    }
    let lm = long_mode(cpu);
    let ip = st.peek(cpu, plat, 0, opsize)?;
    let sel = st.peek(cpu, plat, opsize as u64, opsize)? as u16;
    let temp = st.peek(cpu, plat, 2 * opsize as u64, opsize)?;
    if opsize >= 4 && temp & rflags::VM != 0 && cpl == 0 {
        // Return to virtual-8086 mode (IA-32e mode: always #GP(0)); VM86 is
        // not implemented.
        return Err(Fault::gp0());
    }
    let d = check_return_cs(cpu, plat, sel)?;
    let rpl = (sel & 3) as u8;
    let target64 = lm && d.long();
    let ip = if target64 { ip } else { mask(ip, opsize) };
    let cs = code_segment_cache(&d, sel, rpl);
    let pops_stack = rpl > cpl || mode64(cpu);
    let new_flags = iret_flags(old_flags, temp, opsize, cpl, iopl, false);

    let (ss, rsp) = if pops_stack {
        let new_sp = st.peek(cpu, plat, 3 * opsize as u64, opsize)?;
        let ss_sel = st.peek(cpu, plat, 4 * opsize as u64, opsize)? as u16;
        let ss = check_return_ss(cpu, plat, ss_sel, rpl, target64)?;
        (ss, popped_rsp(cpu.state.gpr[reg::RSP], new_sp, opsize, lm))
    } else {
        st.adjust(3 * opsize as i64);
        (*cpu.state.ss(), st.rsp)
    };
    if !ip_ok(&cs, target64, ip) {
        return Err(Fault::gp0());
    }
    descriptor::set_accessed(cpu, plat, &d)?;

    *cpu.state.sreg_mut(SegReg::Cs) = cs;
    *cpu.state.sreg_mut(SegReg::Ss) = ss;
    cpu.state.gpr[reg::RSP] = rsp;
    cpu.state.rip = ip;
    cpu.set_rflags(new_flags);
    if rpl > cpl {
        null_inaccessible_data_segs(cpu, rpl);
    }
    note_mode_change(cpu, plat, before);
    Ok(())
}
