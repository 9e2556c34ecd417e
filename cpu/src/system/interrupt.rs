//! Exception and interrupt delivery (SDM Vol. 3A chapter 6; Vol. 2 "INT n"
//! pseudocode).
//!
//! * Real mode: through the IVT (FLAGS, CS, IP pushed; IF, TF, AC cleared).
//! * Protected mode: through 8-byte IDT gates. Interrupt and trap gates
//!   (16/32-bit) are supported, with the stack switch through the TSS on a
//!   privilege change and the VM86 → ring 0 frame. **Task gates are not
//!   supported**: hardware task switching is not implemented, so an event
//!   whose IDT entry is a task gate raises #GP(vector·8+2+EXT) (and, for the
//!   classic 32-bit "#DF through a task gate", that ends in a triple fault
//!   with a clear message instead of a task switch).
//! * IA-32e mode: 16-byte gates, 64-bit frames that always hold SS:RSP,
//!   RSP aligned down to 16, IST stacks, null SS with RPL = new CPL.
//!
//! Faults raised while an event is being delivered are combined as in
//! SDM Table 6-5: contributory + contributory, or #PF + (#PF or
//! contributory) become #DF; a fault while delivering #DF shuts the
//! processor down (triple fault, [`CpuExit::Shutdown`]).
//!
//! RF: the RFLAGS image pushed for a fault-class exception has RF set (SDM
//! 17.3.1.1), so that the IRET back to the faulting instruction does not
//! take an instruction breakpoint twice; traps, interrupts and INT n push
//! RF as it is. The handler runs with RF, TF, NT and VM cleared, and IF
//! cleared for interrupt gates. (IRET restores RF from the frame; clearing
//! it again when the next instruction completes is the run loop's job.)

use super::descriptor::{self, sel_code, sys_type, Desc};
use super::stack::Stack;
use super::{long_mode, note_mode_change, tss, vm86};
use crate::cpu::{Cpu, CpuExit};
use crate::event::{CpuEvent, IntKind};
use crate::fault::{vector, Fault};
use crate::platform::Platform;
use crate::state::{cr0, reg, rflags, SegReg, Segment};

/// One event to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    pub vector: u8,
    pub kind: IntKind,
    pub error_code: Option<u32>,
    pub cr2: Option<u64>,
}

impl Event {
    fn exception(f: Fault) -> Event {
        Event {
            vector: f.vector,
            kind: IntKind::Exception,
            error_code: f.error_code,
            cr2: f.cr2,
        }
    }
    fn as_fault(&self) -> Fault {
        Fault {
            vector: self.vector,
            error_code: self.error_code,
            cr2: self.cr2,
        }
    }
    /// INT n / INT3 / INTO: the gate DPL is checked and EXT is 0 in the
    /// error codes of faults raised while delivering them.
    fn software(&self) -> bool {
        matches!(self.kind, IntKind::Software | IntKind::SoftwareException)
    }
    /// A fault-class exception (restartable; RF set in the pushed image).
    fn is_fault_class(&self) -> bool {
        self.kind == IntKind::Exception
            && matches!(
                self.vector,
                vector::DE
                    | vector::BR
                    | vector::UD
                    | vector::NM
                    | vector::TS
                    | vector::NP
                    | vector::SS
                    | vector::GP
                    | vector::PF
                    | vector::MF
                    | vector::AC
                    | vector::XM
            )
    }
}

/// SDM Table 6-4 classes, for the double-fault rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Benign,
    Contributory,
    PageFault,
    DoubleFault,
}

fn class(ev: &Event) -> Class {
    if ev.kind != IntKind::Exception {
        return Class::Benign;
    }
    match ev.vector {
        vector::DF => Class::DoubleFault,
        vector::PF => Class::PageFault,
        vector::DE | vector::TS | vector::NP | vector::SS | vector::GP => Class::Contributory,
        _ => Class::Benign,
    }
}

/// Enough for the longest legal chain (benign → #PF → #PF → #DF → shutdown)
/// with room to spare; a chain longer than this is treated as a shutdown
/// rather than risking a livelock.
const MAX_CHAIN: usize = 8;

impl Cpu {
    /// Deliver an exception raised by an instruction (RIP already points at
    /// it, or past it for traps). `None`: delivered, continue.
    /// `Some(CpuExit::Shutdown(f))`: triple fault; `f` is the fault that
    /// occurred while delivering #DF (the reason the machine stopped).
    pub(crate) fn raise_exception(&mut self, plat: &mut dyn Platform, f: Fault) -> Option<CpuExit> {
        if self.exception_exits(f.vector) {
            // Intercepted: the monitor sees the exception instead of the
            // guest's IDT (CR2 is not written).
            return Some(CpuExit::VmExit(crate::intercept::VmExit {
                reason: crate::intercept::ExitReason::Exception {
                    vector: f.vector,
                    error_code: f.error_code,
                    cr2: f.cr2,
                },
                rip: self.state.rip,
                insn_len: 0,
            }));
        }
        deliver_chain(self, plat, Event::exception(f))
    }

    /// Deliver an external interrupt, an NMI, or a software interrupt the
    /// run loop decided to inject. Clears the HLT state on delivery.
    pub(crate) fn deliver_interrupt(
        &mut self,
        plat: &mut dyn Platform,
        vector: u8,
        kind: IntKind,
    ) -> Option<CpuExit> {
        deliver_chain(
            self,
            plat,
            Event {
                vector,
                kind,
                error_code: None,
                cr2: None,
            },
        )
    }
}

/// Deliver `first`, folding faults raised during delivery by Table 6-5.
fn deliver_chain(cpu: &mut Cpu, plat: &mut dyn Platform, first: Event) -> Option<CpuExit> {
    let mut ev = first;
    for _ in 0..MAX_CHAIN {
        // CR2 is loaded when the #PF is recognized, before its delivery
        // (a #DF handler sees it too).
        if ev.vector == vector::PF && ev.kind == IntKind::Exception {
            if let Some(a) = ev.cr2 {
                cpu.state.cr2 = a;
            }
        }
        let second = match deliver(cpu, plat, &ev) {
            Ok(()) => return None,
            Err(f) => f,
        };
        if second == crate::intercept::VM_EXIT_FAULT {
            // A nested-paging miss while delivering: the monitor sees the
            // EPT violation; the event being delivered is dropped (VT-x
            // would report it in the IDT-vectoring field for re-injection).
            if let Some(mut e) = cpu.take_pending_exit() {
                e.rip = cpu.state.rip;
                return Some(CpuExit::VmExit(e));
            }
        }
        let second_ev = Event::exception(second);
        let escalate = match (class(&ev), class(&second_ev)) {
            (Class::DoubleFault, _) => return Some(shutdown(plat, second)),
            (Class::Contributory, Class::Contributory) => true,
            (Class::PageFault, Class::Contributory | Class::PageFault) => true,
            _ => false,
        };
        if escalate {
            plat.event(&CpuEvent::DoubleFault {
                first: ev.as_fault(),
                second,
            });
            ev = Event::exception(Fault::df());
        } else {
            // Handled serially: the second fault is delivered instead.
            ev = second_ev;
        }
    }
    Some(shutdown(plat, ev.as_fault()))
}

fn shutdown(plat: &mut dyn Platform, last: Fault) -> CpuExit {
    plat.event(&CpuEvent::TripleFault { last });
    CpuExit::Shutdown(last)
}

/// Deliver one event, all or nothing: registers change only on success.
pub(crate) fn deliver(cpu: &mut Cpu, plat: &mut dyn Platform, ev: &Event) -> Result<(), Fault> {
    let before = cpu.state.mode();
    let old_cpl = cpu.state.cpl();
    let ret_rip = cpu.state.rip;
    if cpu.state.cr0 & cr0::PE == 0 {
        deliver_real(cpu, plat, ev)?;
    } else if long_mode(cpu) {
        deliver_long(cpu, plat, ev)?;
    } else {
        deliver_protected(cpu, plat, ev)?;
    }
    cpu.state.halted = false;
    cpu.state.intr.shadow = false;
    if ev.vector == vector::DB && ev.kind == IntKind::Exception {
        // Entering the #DB handler clears DR7.GD (SDM Vol. 3B 17.2.4).
        cpu.state.dr[7] &= !crate::debug::DR7_GD;
    }
    if ev.kind == IntKind::Nmi {
        cpu.state.intr.nmi_blocked = true;
    }
    if cpu.trace.int {
        plat.event(&CpuEvent::Interrupt {
            vector: ev.vector,
            kind: ev.kind,
            error_code: ev.error_code,
            rip: ret_rip,
            cpl: old_cpl,
        });
    }
    note_mode_change(cpu, plat, before);
    Ok(())
}

/// The RFLAGS image to push.
fn pushed_rflags(cpu: &Cpu, ev: &Event) -> u64 {
    let f = cpu.rflags();
    if ev.is_fault_class() {
        f | rflags::RF
    } else {
        f
    }
}

/// Real-address mode: the IVT at IDTR.base, 4 bytes per vector.
fn deliver_real(cpu: &mut Cpu, plat: &mut dyn Platform, ev: &Event) -> Result<(), Fault> {
    let off = ev.vector as u64 * 4;
    if off + 3 > cpu.state.idtr.limit as u64 {
        return Err(Fault::gp0());
    }
    let entry = cpu.lin_read(
        plat,
        cpu.state.idtr.base.wrapping_add(off) & 0xffff_ffff,
        4,
        false,
    )?;
    let new_ip = entry & 0xffff;
    let new_cs = (entry >> 16) as u16;
    let mut st = Stack::current(cpu);
    st.check_room(6)?;
    let flags = pushed_rflags(cpu, ev);
    st.push(cpu, plat, 2, flags & 0xffff)?;
    st.push(cpu, plat, 2, cpu.state.cs().selector as u64)?;
    st.push(cpu, plat, 2, cpu.state.rip & 0xffff)?;
    // Commit.
    cpu.state.gpr[reg::RSP] = st.rsp;
    let cs = super::segment::real_mode_load(cpu.state.cs(), new_cs);
    *cpu.state.sreg_mut(SegReg::Cs) = cs;
    cpu.state.rip = new_ip;
    let f = cpu.rflags() & !(rflags::IF | rflags::TF | rflags::AC | rflags::RF);
    cpu.set_rflags(f);
    Ok(())
}

/// Check the SS named by the TSS for a stack switch to privilege `dpl`
/// (SDM INT n: every failure is #TS(SS|EXT), not-present is #SS).
pub(crate) fn check_tss_ss(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    ss_sel: u16,
    dpl: u8,
    ext: bool,
) -> Result<Segment, Fault> {
    if ss_sel & 0xfffc == 0 {
        return Err(Fault::ts(ext as u32));
    }
    let code = sel_code(ss_sel, ext);
    if (ss_sel & 3) as u8 != dpl {
        return Err(Fault::ts(code));
    }
    let d = descriptor::fetch(cpu, plat, ss_sel, ext).map_err(|f| {
        if f.vector == vector::GP {
            Fault::ts(code)
        } else {
            f
        }
    })?;
    if !d.is_data() || !d.rw() || d.dpl() != dpl {
        return Err(Fault::ts(code));
    }
    if !d.present() {
        return Err(Fault::ss(code));
    }
    descriptor::set_accessed(cpu, plat, &d)?;
    Ok(d.segment_cache(ss_sel))
}

/// The CS cache for a code descriptor entered at privilege `cpl`. For a
/// conforming segment the cached DPL is set to the CPL (which does not
/// change), because `CpuState::cpl()` reads CS.DPL.
pub(crate) fn code_segment_cache(d: &Desc, sel: u16, cpl: u8) -> Segment {
    let mut s = d.segment_cache((sel & !3) | cpl as u16);
    s.attr = (s.attr & !crate::state::seg_attr::DPL_MASK)
        | ((cpl as u32) << crate::state::seg_attr::DPL_SHIFT);
    s
}

/// Read and check an IDT gate's target code segment (shared by the
/// protected and IA-32e paths).
fn gate_target(cpu: &mut Cpu, plat: &mut dyn Platform, sel: u16, ext: bool) -> Result<Desc, Fault> {
    if sel & 0xfffc == 0 {
        return Err(Fault::gp(ext as u32));
    }
    let cs = descriptor::fetch(cpu, plat, sel, ext)?;
    if !cs.is_code() || cs.dpl() > cpu.state.cpl() {
        return Err(Fault::gp(sel_code(sel, ext)));
    }
    if long_mode(cpu) && !cs.is_64bit_code() {
        return Err(Fault::gp(sel_code(sel, ext)));
    }
    if !cs.present() {
        return Err(Fault::np(sel_code(sel, ext)));
    }
    Ok(cs)
}

/// Protected mode (EFER.LMA = 0), including events taken in VM86.
fn deliver_protected(cpu: &mut Cpu, plat: &mut dyn Platform, ev: &Event) -> Result<(), Fault> {
    let ext = !ev.software();
    let cpl = cpu.state.cpl();
    let idt_code = ev.vector as u32 * 8 + 2 + ext as u32;
    let off = ev.vector as u64 * 8;
    if off + 7 > cpu.state.idtr.limit as u64 {
        return Err(Fault::gp(idt_code));
    }
    let addr = descriptor::table_addr(cpu, cpu.state.idtr.base, off);
    let raw = cpu.lin_read(plat, addr, 8, false)?;
    let gate = Desc { sel: 0, raw, addr };
    let t = gate.typ();
    let valid = matches!(
        t,
        sys_type::TASK_GATE
            | sys_type::INT_GATE16
            | sys_type::TRAP_GATE16
            | sys_type::INT_GATE
            | sys_type::TRAP_GATE
    );
    if gate.is_code_data() || !valid {
        return Err(Fault::gp(idt_code));
    }
    if ev.software() && gate.dpl() < cpl {
        return Err(Fault::gp(idt_code));
    }
    if !gate.present() {
        return Err(Fault::np(idt_code));
    }
    if t == sys_type::TASK_GATE {
        // Hardware task switching is not implemented (see module doc).
        return Err(Fault::gp(idt_code));
    }
    let gate32 = t == sys_type::INT_GATE || t == sys_type::TRAP_GATE;
    let interrupt_gate = t == sys_type::INT_GATE || t == sys_type::INT_GATE16;
    let offset = if gate32 {
        gate.gate_offset32()
    } else {
        raw & 0xffff
    };
    let sel = gate.gate_selector();
    let cs = gate_target(cpu, plat, sel, ext)?;
    let from_vm86 = vm86(cpu);

    let (new_cpl, mut st, switched) = if !cs.conforming() && cs.dpl() < cpl {
        let dpl = cs.dpl();
        if from_vm86 && (dpl != 0 || !gate32) {
            return Err(Fault::gp(sel_code(sel, ext)));
        }
        let (ss_sel, sp) = tss::legacy_stack(cpu, plat, dpl, ext)?;
        let ss = check_tss_ss(cpu, plat, ss_sel, dpl, ext)?;
        let st = Stack::new(ss, sp, false, dpl == 3, Fault::ss(sel_code(ss_sel, ext)));
        (dpl, st, true)
    } else if from_vm86 {
        return Err(Fault::gp(sel_code(sel, ext)));
    } else if cs.conforming() || cs.dpl() == cpl {
        let mut st = Stack::current(cpu);
        st.fault = Fault::ss(ext as u32);
        (cpl, st, false)
    } else {
        return Err(Fault::gp(sel_code(sel, ext)));
    };

    let sz: u8 = if gate32 { 4 } else { 2 };
    let slots = 3
        + ev.error_code.is_some() as u64
        + if switched { 2 } else { 0 }
        + if from_vm86 { 4 } else { 0 };
    st.check_room(slots * sz as u64)?;
    let new_cs = code_segment_cache(&cs, sel, new_cpl);
    if offset > new_cs.limit as u64 {
        return Err(Fault::gp(ext as u32));
    }
    descriptor::set_accessed(cpu, plat, &cs)?;

    let flags = pushed_rflags(cpu, ev);
    if from_vm86 {
        for s in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
            let v = cpu.state.sreg(s).selector as u64;
            st.push(cpu, plat, 4, v)?;
        }
    }
    if switched {
        let old_ss = cpu.state.ss().selector as u64;
        let old_sp = cpu.state.gpr[reg::RSP];
        st.push(cpu, plat, sz, old_ss)?;
        st.push(cpu, plat, sz, old_sp)?;
    }
    st.push(cpu, plat, sz, flags)?;
    st.push(cpu, plat, sz, cpu.state.cs().selector as u64)?;
    st.push(cpu, plat, sz, cpu.state.rip)?;
    if let Some(ec) = ev.error_code {
        st.push(cpu, plat, sz, ec as u64)?;
    }

    // Commit.
    if from_vm86 {
        for s in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
            *cpu.state.sreg_mut(s) = descriptor::null_segment(0);
        }
    }
    if switched {
        *cpu.state.sreg_mut(SegReg::Ss) = st.ss;
    }
    cpu.state.gpr[reg::RSP] = st.rsp;
    *cpu.state.sreg_mut(SegReg::Cs) = new_cs;
    cpu.state.rip = offset;
    let mut f = cpu.rflags() & !(rflags::TF | rflags::NT | rflags::RF | rflags::VM);
    if interrupt_gate {
        f &= !rflags::IF;
    }
    cpu.set_rflags(f);
    Ok(())
}

/// IA-32e mode (64-bit and compatibility mode): 16-byte gates, 64-bit
/// frames (SDM 6.14).
fn deliver_long(cpu: &mut Cpu, plat: &mut dyn Platform, ev: &Event) -> Result<(), Fault> {
    let ext = !ev.software();
    let cpl = cpu.state.cpl();
    // The error code names the IDT entry in selector format (index in bits
    // 3-15, IDT flag in bit 1), so it is vector·8 even though 64-bit gates
    // are 16 bytes apart (SDM Vol. 3A, 6.13). QEMU 7.2's TCG got this wrong
    // (vector·16); the hardware and KVM don't.
    let idt_code = ev.vector as u32 * 8 + 2 + ext as u32;
    let off = ev.vector as u64 * 16;
    if off + 15 > cpu.state.idtr.limit as u64 {
        return Err(Fault::gp(idt_code));
    }
    let addr = cpu.state.idtr.base.wrapping_add(off);
    let lo = cpu.lin_read(plat, addr, 8, false)?;
    let hi = cpu.lin_read(plat, addr.wrapping_add(8), 8, false)?;
    let gate = Desc {
        sel: 0,
        raw: lo,
        addr,
    };
    let t = gate.typ();
    if gate.is_code_data() || !(t == sys_type::INT_GATE || t == sys_type::TRAP_GATE) {
        return Err(Fault::gp(idt_code));
    }
    if ev.software() && gate.dpl() < cpl {
        return Err(Fault::gp(idt_code));
    }
    if !gate.present() {
        return Err(Fault::np(idt_code));
    }
    let offset = gate.gate_offset32() | ((hi & 0xffff_ffff) << 32);
    let ist = ((lo >> 32) & 7) as u8;
    let sel = gate.gate_selector();
    let cs = gate_target(cpu, plat, sel, ext)?;

    let (new_cpl, switched) = if !cs.conforming() && cs.dpl() < cpl {
        (cs.dpl(), true)
    } else if cs.conforming() || cs.dpl() == cpl {
        (cpl, false)
    } else {
        return Err(Fault::gp(sel_code(sel, ext)));
    };
    let rsp = if ist != 0 {
        tss::long_stack(cpu, plat, new_cpl, ist, ext)?
    } else if switched {
        tss::long_stack(cpu, plat, new_cpl, 0, ext)?
    } else {
        cpu.state.gpr[reg::RSP]
    };
    if !super::canonical(rsp) {
        return Err(Fault::ss(ext as u32));
    }
    let ss = if switched {
        descriptor::null_segment(new_cpl as u16)
    } else {
        *cpu.state.ss()
    };
    let mut st = Stack::new(ss, rsp & !0xf, true, new_cpl == 3, Fault::ss(ext as u32));
    if !super::canonical(offset) {
        return Err(Fault::gp(ext as u32));
    }
    let new_cs = code_segment_cache(&cs, sel, new_cpl);
    descriptor::set_accessed(cpu, plat, &cs)?;

    let flags = pushed_rflags(cpu, ev);
    let old_ss = cpu.state.ss().selector as u64;
    let old_rsp = cpu.state.gpr[reg::RSP];
    st.push(cpu, plat, 8, old_ss)?;
    st.push(cpu, plat, 8, old_rsp)?;
    st.push(cpu, plat, 8, flags)?;
    st.push(cpu, plat, 8, cpu.state.cs().selector as u64)?;
    st.push(cpu, plat, 8, cpu.state.rip)?;
    if let Some(ec) = ev.error_code {
        st.push(cpu, plat, 8, ec as u64)?;
    }

    // Commit.
    *cpu.state.sreg_mut(SegReg::Ss) = st.ss;
    cpu.state.gpr[reg::RSP] = st.rsp;
    *cpu.state.sreg_mut(SegReg::Cs) = new_cs;
    cpu.state.rip = offset;
    let mut f = cpu.rflags() & !(rflags::TF | rflags::NT | rflags::RF | rflags::VM);
    if t == sys_type::INT_GATE {
        f &= !rflags::IF;
    }
    cpu.set_rflags(f);
    Ok(())
}

// ---- the software-interrupt instructions ----

/// INT n. IOPL-sensitive in VM86 (no VME: #GP(0) when IOPL < 3).
pub(crate) fn int_n(cpu: &mut Cpu, plat: &mut dyn Platform, n: u8) -> Result<(), Fault> {
    if vm86(cpu) && cpu.state.iopl() < 3 {
        return Err(Fault::gp0());
    }
    deliver_software(cpu, plat, n, IntKind::Software)
}

/// INT3 (0xCC): #BP as a software exception (gate DPL checked).
pub(crate) fn int3(cpu: &mut Cpu, plat: &mut dyn Platform) -> Result<(), Fault> {
    deliver_software(cpu, plat, vector::BP, IntKind::SoftwareException)
}

/// INTO: #OF if OF = 1.
pub(crate) fn into(cpu: &mut Cpu, plat: &mut dyn Platform) -> Result<(), Fault> {
    if cpu.rflags() & rflags::OF == 0 {
        return Ok(());
    }
    deliver_software(cpu, plat, vector::OF, IntKind::SoftwareException)
}

/// INT1 (ICEBP, 0xF1): a #DB trap delivered like a hardware exception — no
/// gate DPL check, EXT set in nested error codes — with the return address
/// of the next instruction. `IntKind::Exception` describes exactly that.
pub(crate) fn int1(cpu: &mut Cpu, plat: &mut dyn Platform) -> Result<(), Fault> {
    deliver_software(cpu, plat, vector::DB, IntKind::Exception)
}

/// Deliver an instruction-generated event whose return address is the next
/// instruction. A fault during delivery is returned to the core, which
/// restores RIP to this instruction and delivers it (software interrupts
/// are benign, so no #DF combination applies).
fn deliver_software(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    vector: u8,
    kind: IntKind,
) -> Result<(), Fault> {
    deliver(
        cpu,
        plat,
        &Event {
            vector,
            kind,
            error_code: None,
            cr2: None,
        },
    )
}
