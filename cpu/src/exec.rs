//! The execution engine: handler selection at decode time, and the run
//! loop that walks decoded blocks between instruction boundaries.
//!
//! Every instruction has exactly one semantic function ([`Handler`]). It is
//! chosen once, when the instruction is decoded into a block, by
//! [`select`]; executing the block is then a loop of indirect calls. The
//! same handlers are what a later JIT calls for instructions it does not
//! translate itself.
//!
//! Around each handler the engine keeps the architectural contract:
//! `insn_start` = RIP of the instruction, `state.rip` = the next RIP
//! (wrapped to the code size) while it runs, and on `Err(fault)` RIP goes
//! back to the instruction and the fault is delivered through
//! [`Cpu::raise_exception`] (system/). Between instructions the run loop
//! looks for NMIs and maskable interrupts (honouring IF and the STI /
//! MOV SS shadow), the HLT state, TF single-step traps and the platform's
//! stop request.
//!
//! Debug events (TF single-step, RF, the DR0-DR7 breakpoints, the MOV SS
//! shadow's hold on them) are handled on the one-instruction path,
//! [`step_insn`]; the block path never sees TF, RF or an armed DR7.

use crate::cpu::{Cpu, CpuExit};
use crate::decode::{code_bits, ip_mask, Fetch};
use crate::event::{CpuEvent, IntKind};
use crate::fault::Fault;
use crate::insn::{alu, bcd, bit, branch, misc, mov, muldiv, shift, stack, string};
use crate::operand::gpr_size;
use crate::platform::Platform;
use crate::state::rflags;
use iced_x86::{Code, FlowControl, Instruction, Mnemonic, OpKind, Register};

/// The semantic function of one instruction.
pub(crate) type Handler = fn(&mut Cpu, &mut dyn Platform, &Instruction) -> Result<(), Fault>;

/// The decode-time choice for one instruction.
#[derive(Clone, Copy)]
pub(crate) struct Sel {
    pub handler: Handler,
    /// The block must end after this instruction.
    pub ends_block: bool,
}

// ---------------------------------------------------------------------
// The run loop
// ---------------------------------------------------------------------

/// What the event check at an instruction boundary did.
enum Boundary {
    /// Nothing to deliver.
    Idle,
    /// An event was delivered (counts as work for the budget).
    Delivered,
    /// The CPU must stop (triple fault while delivering).
    Exit(CpuExit),
}

/// NMI, then maskable interrupts (IF = 1). Called only outside an
/// interrupt shadow.
#[inline]
fn service_events(cpu: &mut Cpu, plat: &mut dyn Platform) -> Boundary {
    if !cpu.state.intr.nmi_blocked && cpu.exception_exits(crate::fault::vector::NMI) {
        if plat.take_nmi() {
            cpu.state.halted = false;
            return Boundary::Exit(event_exit(
                cpu,
                crate::intercept::ExitReason::Exception {
                    vector: crate::fault::vector::NMI,
                    error_code: None,
                    cr2: None,
                },
            ));
        }
    } else if !cpu.state.intr.nmi_blocked && plat.take_nmi() {
        cpu.state.halted = false;
        return match cpu.deliver_interrupt(plat, crate::fault::vector::NMI, IntKind::Nmi) {
            Some(e) => Boundary::Exit(e),
            None => Boundary::Delivered,
        };
    }
    if cpu.state.rflags & rflags::IF != 0 && plat.interrupt_pending() {
        if external_exits(cpu) {
            if let Some(vector) = plat.ack_interrupt() {
                cpu.state.halted = false;
                return Boundary::Exit(event_exit(
                    cpu,
                    crate::intercept::ExitReason::ExternalInterrupt { vector },
                ));
            }
            return Boundary::Idle;
        }
        if let Some(v) = plat.ack_interrupt() {
            cpu.state.halted = false;
            return match cpu.deliver_interrupt(plat, v, IntKind::External) {
                Some(e) => Boundary::Exit(e),
                None => Boundary::Delivered,
            };
        }
    }
    Boundary::Idle
}

/// Does an acceptable maskable interrupt exit to the monitor?
#[inline]
fn external_exits(cpu: &Cpu) -> bool {
    !cpu.bypass
        && cpu
            .intercepts
            .as_ref()
            .is_some_and(|i| i.external_interrupts)
}

/// An exit taken between instructions (RIP = the next instruction).
fn event_exit(cpu: &mut Cpu, reason: crate::intercept::ExitReason) -> CpuExit {
    after_event(cpu);
    CpuExit::VmExit(crate::intercept::VmExit {
        reason,
        rip: cpu.state.rip,
        insn_len: 0,
    })
}

/// Deliver a fault raised by an instruction (RIP already restored).
#[inline(never)]
fn deliver_fault(cpu: &mut Cpu, plat: &mut dyn Platform, f: Fault) -> Option<CpuExit> {
    if f == crate::intercept::VM_EXIT_FAULT {
        if let Some(mut e) = cpu.take_pending_exit() {
            // The instruction did not execute: no shadow change, no
            // delivery. RIP is back on it (or on the fetch that missed).
            e.rip = cpu.state.rip;
            after_event(cpu);
            return Some(CpuExit::VmExit(e));
        }
    }
    cpu.state.intr.shadow = false;
    let r = cpu.raise_exception(plat, f);
    after_event(cpu);
    r
}

/// After anything that may have changed CPL, CS, the mode or RFLAGS
/// behind the block engine's back: refresh the cached mode, drop block
/// links, look at events at the next boundary.
#[inline]
fn after_event(cpu: &mut Cpu) {
    cpu.refresh_mode();
    cpu.blocks.new_epoch();
    cpu.event_countdown = 0;
}

/// After I/O: has the platform asked to stop?
#[inline(always)]
fn stop_check(cpu: &mut Cpu, plat: &mut dyn Platform) -> bool {
    if cpu.io_done {
        cpu.io_done = false;
        return plat.stop_requested();
    }
    false
}

/// Blocks executed between two looks at pending interrupts when nothing
/// forces an earlier look. Anything that can make an interrupt deliverable
/// (STI, POPF, IRET, device I/O, event delivery) forces one at the next
/// boundary; this bound keeps the latency of an interrupt raised
/// asynchronously (a timer) to a few hundred instructions.
const EVENT_INTERVAL: u32 = 32;

/// The body of [`Cpu::run`].
pub(crate) fn run_loop(cpu: &mut Cpu, plat: &mut dyn Platform, budget: u64) -> CpuExit {
    let mut left = budget;
    // The block just executed, for chaining: (id, generation).
    let mut prev: Option<(u32, u32)> = None;
    loop {
        if left == 0 {
            return CpuExit::Budget;
        }
        if cpu.event_countdown == 0 {
            cpu.event_countdown = EVENT_INTERVAL;
            if !cpu.state.intr.shadow {
                match service_events(cpu, plat) {
                    Boundary::Idle => {}
                    Boundary::Delivered => {
                        prev = None;
                        after_event(cpu);
                        left -= 1;
                        continue;
                    }
                    Boundary::Exit(e) => return e,
                }
            }
            if cpu.state.halted {
                return CpuExit::Halted;
            }
            // One-instruction-at-a-time cases: an interrupt shadow (so the
            // window opens right after the next instruction),
            // single-stepping, RF to clear at the next instruction, armed
            // DR7 breakpoints, execution tracing.
            if cpu.state.intr.shadow
                || cpu.trace.exec
                || cpu.mode.bp
                || cpu.state.rflags & (rflags::TF | rflags::RF) != 0
            {
                prev = None;
                left -= 1;
                let r = step_insn(cpu, plat);
                cpu.event_countdown = 0;
                if let Some(e) = r {
                    return e;
                }
                if stop_check(cpu, plat) {
                    return CpuExit::Stopped;
                }
                continue;
            }
        } else {
            cpu.event_countdown -= 1;
        }
        let rip = cpu.state.rip;
        let chained = match prev {
            Some((from, gen)) => cpu.blocks.follow(from, gen, rip),
            None => None,
        };
        let id = match chained {
            Some(id) => id,
            None => match cpu.next_block() {
                Ok(Fetch::Block(id)) => {
                    if let Some((from, gen)) = prev {
                        cpu.blocks.link(from, gen, rip, id);
                    }
                    id
                }
                Ok(Fetch::Uncached) => {
                    prev = None;
                    left -= 1;
                    if let Some(e) = step_insn(cpu, plat) {
                        return e;
                    }
                    if stop_check(cpu, plat) {
                        return CpuExit::Stopped;
                    }
                    continue;
                }
                Err(f) => {
                    // Fetch fault (#PF on the code page, #GP past the CS
                    // limit): RIP is still on the instruction.
                    prev = None;
                    left -= 1;
                    if let Some(e) = deliver_fault(cpu, plat, f) {
                        return e;
                    }
                    continue;
                }
            },
        };
        let (done, gen, fault) = exec_block(cpu, plat, id, left);
        left -= done.min(left);
        prev = Some((id, gen));
        if let Some(f) = fault {
            prev = None;
            if let Some(e) = deliver_fault(cpu, plat, f) {
                return e;
            }
        }
        if stop_check(cpu, plat) {
            return CpuExit::Stopped;
        }
    }
}

/// Execute block `id`, at most `left` instructions. Returns the work done
/// (instructions retired, plus one for a faulting instruction), the
/// block's generation, and the fault to deliver, if any (RIP is already
/// back on the instruction).
#[inline(always)]
fn exec_block(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    id: u32,
    left: u64,
) -> (u64, u32, Option<Fault>) {
    let (insns, gen, mask) = cpu.blocks.take(id);
    let n = insns.len().min(usize::try_from(left).unwrap_or(usize::MAX));
    cpu.exit_block = false;
    let mut done = 0u64;
    let mut fault = None;
    for d in &insns[..n] {
        cpu.insn_start = d.insn.ip();
        cpu.state.rip = d.insn.next_ip() & mask;
        if let Err(f) = (d.handler)(cpu, plat, &d.insn) {
            cpu.state.rip = cpu.insn_start;
            fault = Some(f);
            break;
        }
        done += 1;
        if cpu.exit_block {
            break;
        }
    }
    cpu.blocks.put_back(id, gen, insns);
    cpu.retired += done;
    (done + fault.is_some() as u64, gen, fault)
}

/// Fetch, decode and execute one instruction without the block cache,
/// with tracing and the debug events around it (SDM Vol. 3B 17.3):
///
/// 1. An instruction breakpoint at the instruction is a fault-class #DB,
///    taken before the fetch (so before its #PF), unless RF = 1 or the
///    instruction follows MOV SS / POP SS.
/// 2. RF is cleared at the start of the instruction, after that check
///    (17.3.1.1): a fault pushes RF = 1 anyway, INT n and traps push 0,
///    and IRET loads it from its frame.
/// 3. After the instruction completes: one trap-class #DB for the data
///    and I/O breakpoints it hit and the single-step trap (TF set before
///    it), with DR6.Bn/BS. INT n/INT3/INTO/INT1 that deliver are not
///    single-stepped (the handler entry cleared TF; 17.3.1.4). A REP
///    string instruction is single-stepped per iteration, and a trap
///    between iterations pushes RF = 1 so the IRET back resumes it
///    without re-taking an instruction breakpoint.
/// 4. MOV SS / POP SS hold those traps until the next instruction has
///    completed (6.8.3); a second one in the shadow does not extend it.
fn step_insn(cpu: &mut Cpu, plat: &mut dyn Platform) -> Option<CpuExit> {
    cpu.stats.uncached_steps += 1;
    let shadow = cpu.state.intr.shadow;
    // The MOV SS kind of shadow (stale if the shadow was cleared since).
    let movss_shadow = shadow && cpu.mode.dbg.movss_shadow;
    cpu.mode.dbg.movss_shadow = false;
    if !movss_shadow {
        cpu.mode.dbg.deferred = 0;
    }
    let tf = cpu.state.rflags & rflags::TF != 0;
    let rf = cpu.state.rflags & rflags::RF != 0;
    if cpu.mode.bp && !rf && !movss_shadow {
        let hits = crate::debug::exec_hits(&cpu.state, code_lin(cpu), cpu.lin_mask());
        if hits != 0 {
            crate::debug::set_dr6(&mut cpu.state, hits);
            return deliver_fault(cpu, plat, Fault::DB);
        }
    }
    let insn = match cpu.fetch_decode(plat) {
        Ok(i) => i,
        Err(f) => return deliver_fault(cpu, plat, f),
    };
    if cpu.trace.exec {
        let ev = CpuEvent::Exec {
            rip: insn.ip(),
            cpl: cpu.state.cpl(),
            bytes: cpu.peek_code(&insn),
            text: misc::format_insn(&insn),
        };
        plat.event(&ev);
    }
    let sel = select_for(cpu, &insn);
    // Single-stepping a REP string instruction: one iteration per step.
    cpu.exit_block = tf;
    cpu.insn_start = insn.ip();
    cpu.state.rip = insn.next_ip() & ip_mask(code_bits(&cpu.state));
    // The shadow covers exactly this instruction.
    if shadow {
        cpu.state.intr.shadow = false;
    }
    if rf {
        cpu.state.rflags &= !rflags::RF;
    }
    cpu.mode.dbg.hits = 0;
    match (sel.handler)(cpu, plat, &insn) {
        Ok(()) => {
            cpu.retired += 1;
            let mut dr6 = cpu.mode.dbg.hits as u64;
            cpu.mode.dbg.hits = 0;
            if cpu.mode.bp && is_port_io(&insn) {
                dr6 |= io_breakpoints(cpu, &insn);
            }
            let delivered_int = matches!(
                insn.mnemonic(),
                Mnemonic::Int | Mnemonic::Int3 | Mnemonic::Into | Mnemonic::Int1
            ) && cpu.state.rflags & rflags::TF == 0;
            if tf && !delivered_int {
                dr6 |= crate::debug::DR6_BS;
            }
            if is_ss_load(&insn) && cpu.state.intr.shadow {
                if movss_shadow {
                    // Only the first of consecutive SS loads inhibits.
                    cpu.state.intr.shadow = false;
                } else {
                    cpu.mode.dbg.movss_shadow = true;
                    cpu.mode.dbg.deferred = dr6;
                    return None;
                }
            }
            if movss_shadow {
                dr6 |= cpu.mode.dbg.deferred;
                cpu.mode.dbg.deferred = 0;
            }
            if dr6 != 0 {
                if cpu.state.rip == cpu.insn_start && insn.has_rep_prefix() {
                    // Trap after an iteration that was not the last.
                    cpu.state.rflags |= rflags::RF;
                }
                crate::debug::set_dr6(&mut cpu.state, dr6);
                cpu.state.intr.shadow = false;
                let r = cpu.raise_exception(plat, Fault::DB);
                after_event(cpu);
                return r;
            }
            None
        }
        Err(f) => {
            cpu.mode.dbg.hits = 0;
            cpu.state.rip = cpu.insn_start;
            deliver_fault(cpu, plat, f)
        }
    }
}

/// The linear address of the instruction at RIP (CS.base is 0 in 64-bit
/// mode).
fn code_lin(cpu: &Cpu) -> u64 {
    if code_bits(&cpu.state) == 64 {
        cpu.state.rip
    } else {
        cpu.state.cs().base.wrapping_add(cpu.state.rip) & 0xffff_ffff
    }
}

/// MOV SS or POP SS (the loads that set an interrupt shadow).
fn is_ss_load(insn: &Instruction) -> bool {
    matches!(insn.mnemonic(), Mnemonic::Mov | Mnemonic::Pop)
        && insn.op0_kind() == OpKind::Register
        && insn.op0_register() == Register::SS
}

fn is_port_io(insn: &Instruction) -> bool {
    use Mnemonic as M;
    matches!(
        insn.mnemonic(),
        M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd
    )
}

/// DR6.Bn of the I/O breakpoints an IN/OUT/INS/OUTS that completed
/// matched: the port is its imm8 or DX (which none of them changes), the
/// size that of its AL/AX/EAX or memory operand.
fn io_breakpoints(cpu: &Cpu, insn: &Instruction) -> u64 {
    let mut port = cpu.state.gpr[crate::state::reg::RDX] as u16;
    let mut size = insn.memory_size().size() as u8;
    for i in 0..insn.op_count() {
        match insn.op_kind(i) {
            OpKind::Immediate8 => port = insn.immediate8() as u16,
            OpKind::Register if insn.op_register(i) != Register::DX => {
                size = gpr_size(insn.op_register(i));
            }
            _ => {}
        }
    }
    crate::debug::io_hits(&cpu.state, port, size.max(1))
}

/// One instruction, no event servicing (the monitor's emulation step).
pub(crate) fn step_only(cpu: &mut Cpu, plat: &mut dyn Platform) -> CpuExit {
    if let Some(e) = step_insn(cpu, plat) {
        return e;
    }
    if stop_check(cpu, plat) {
        return CpuExit::Stopped;
    }
    CpuExit::Budget
}

/// The body of [`Cpu::step`].
pub(crate) fn step(cpu: &mut Cpu, plat: &mut dyn Platform) -> CpuExit {
    if !cpu.state.intr.shadow {
        match service_events(cpu, plat) {
            Boundary::Idle => {}
            Boundary::Delivered => {
                after_event(cpu);
                return CpuExit::Budget;
            }
            Boundary::Exit(e) => return e,
        }
    }
    if cpu.state.halted {
        return CpuExit::Halted;
    }
    if let Some(e) = step_insn(cpu, plat) {
        return e;
    }
    if stop_check(cpu, plat) {
        return CpuExit::Stopped;
    }
    CpuExit::Budget
}

impl Cpu {
    /// The bytes of `insn` (for events), read without side effects beyond
    /// the translation; empty if the code is no longer mapped.
    pub(crate) fn peek_code(&mut self, insn: &Instruction) -> Vec<u8> {
        let bits = code_bits(&self.state);
        let base = if bits == 64 { 0 } else { self.state.cs().base };
        let mask = self.lin_mask();
        let user = self.user_mode();
        let mut out = Vec::with_capacity(insn.len());
        for i in 0..insn.len() as u64 {
            let lin = base.wrapping_add(insn.ip()).wrapping_add(i) & mask;
            match self.translate(lin, mmu::AccessKind::Execute, user) {
                Ok(crate::memory::Phys::Ram(ma)) => match self.ram.read_le(mmu::MachineAddr(ma), 1)
                {
                    Ok(b) => out.push(b as u8),
                    Err(_) => break,
                },
                _ => break,
            }
        }
        out
    }
}

// ---------------------------------------------------------------------
// Handler selection
// ---------------------------------------------------------------------

/// A system instruction: handled by system/, ends the block, and is
/// followed by a stop check (it may have done port I/O).
fn sys(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let r = crate::system::exec(cpu, plat, insn);
    cpu.io_done = true;
    cpu.exit_block = true;
    after_event(cpu);
    r
}

/// Size in bytes of operand `n` (register or memory), 0 otherwise.
fn op_size(insn: &Instruction, n: u32) -> u8 {
    match insn.op_kind(n) {
        OpKind::Register => gpr_size(insn.op_register(n)),
        OpKind::Memory => insn.memory_size().size() as u8,
        _ => 0,
    }
}

/// Pick a handler monomorphized on an operand size.
macro_rules! sized {
    ($sz:expr, $S:ident => $e:expr) => {
        match $sz {
            1 => {
                const $S: u8 = 1;
                Some($e as Handler)
            }
            2 => {
                const $S: u8 = 2;
                Some($e as Handler)
            }
            4 => {
                const $S: u8 = 4;
                Some($e as Handler)
            }
            8 => {
                const $S: u8 = 8;
                Some($e as Handler)
            }
            _ => None,
        }
    };
}

/// The same for 16/32/64-bit only forms.
macro_rules! sized_wdq {
    ($sz:expr, $S:ident => $e:expr) => {
        match $sz {
            2 => {
                const $S: u8 = 2;
                Some($e as Handler)
            }
            4 => {
                const $S: u8 = 4;
                Some($e as Handler)
            }
            8 => {
                const $S: u8 = 8;
                Some($e as Handler)
            }
            _ => None,
        }
    };
}

/// Pick a handler monomorphized on a condition code (0-15).
macro_rules! by_cc {
    ($cc:expr, $C:ident => $e:expr) => {
        match $cc {
            0 => {
                const $C: u8 = 0;
                $e
            }
            1 => {
                const $C: u8 = 1;
                $e
            }
            2 => {
                const $C: u8 = 2;
                $e
            }
            3 => {
                const $C: u8 = 3;
                $e
            }
            4 => {
                const $C: u8 = 4;
                $e
            }
            5 => {
                const $C: u8 = 5;
                $e
            }
            6 => {
                const $C: u8 = 6;
                $e
            }
            7 => {
                const $C: u8 = 7;
                $e
            }
            8 => {
                const $C: u8 = 8;
                $e
            }
            9 => {
                const $C: u8 = 9;
                $e
            }
            10 => {
                const $C: u8 = 10;
                $e
            }
            11 => {
                const $C: u8 = 11;
                $e
            }
            12 => {
                const $C: u8 = 12;
                $e
            }
            13 => {
                const $C: u8 = 13;
                $e
            }
            14 => {
                const $C: u8 = 14;
                $e
            }
            15 => {
                const $C: u8 = 15;
                $e
            }
            _ => None,
        }
    };
}

/// The 4-bit condition code (Jcc opcode low nibble) of a conditional
/// instruction, from iced's `ConditionCode` (None = 0, o = 1, … g = 16).
fn cc_of(insn: &Instruction) -> u8 {
    (insn.condition_code() as u8).wrapping_sub(1)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    RegReg,
    RegMem,
    RegImm,
    MemReg,
    MemImm,
}

fn form(insn: &Instruction) -> Option<Form> {
    let k1 = insn.op1_kind();
    match insn.op0_kind() {
        OpKind::Register => Some(match k1 {
            OpKind::Register => Form::RegReg,
            OpKind::Memory => Form::RegMem,
            _ => Form::RegImm,
        }),
        OpKind::Memory => Some(match k1 {
            OpKind::Register => Form::MemReg,
            _ => Form::MemImm,
        }),
        _ => None,
    }
}

fn sel_alu<const OP: u8>(insn: &Instruction) -> Option<Handler> {
    let sz = op_size(insn, 0);
    match form(insn)? {
        Form::RegReg => sized!(sz, S => alu::rr::<OP, S>),
        Form::RegMem => sized!(sz, S => alu::rm::<OP, S>),
        Form::RegImm => sized!(sz, S => alu::ri::<OP, S>),
        Form::MemReg => sized!(sz, S => alu::m_src::<OP, S, false>),
        Form::MemImm => sized!(sz, S => alu::m_src::<OP, S, true>),
    }
}

fn sel_unary<const OP: u8>(insn: &Instruction) -> Option<Handler> {
    let sz = op_size(insn, 0);
    if insn.op0_kind() == OpKind::Register {
        sized!(sz, S => alu::unary_r::<OP, S>)
    } else {
        sized!(sz, S => alu::unary_m::<OP, S>)
    }
}

fn sel_mov(insn: &Instruction) -> Option<Handler> {
    let sz = op_size(insn, 0);
    match form(insn)? {
        Form::RegReg => sized!(sz, S => mov::mov_rr::<S>),
        Form::RegMem => sized!(sz, S => mov::mov_rm::<S>),
        Form::RegImm => sized!(sz, S => mov::mov_ri::<S>),
        Form::MemReg => sized!(sz, S => mov::mov_mr::<S>),
        Form::MemImm => sized!(sz, S => mov::mov_mi::<S>),
    }
}

fn sel_movx<const SIGNED: bool>(insn: &Instruction) -> Option<Handler> {
    let d = op_size(insn, 0);
    let s = op_size(insn, 1);
    Some(match (d, s) {
        (2, 1) => mov::movx::<2, 1, SIGNED>,
        (4, 1) => mov::movx::<4, 1, SIGNED>,
        (8, 1) => mov::movx::<8, 1, SIGNED>,
        (2, 2) => mov::movx::<2, 2, SIGNED>,
        (4, 2) => mov::movx::<4, 2, SIGNED>,
        (8, 2) => mov::movx::<8, 2, SIGNED>,
        (4, 4) => mov::movx::<4, 4, SIGNED>,
        (8, 4) => mov::movx::<8, 4, SIGNED>,
        _ => return None,
    })
}

fn sel_shift<const OP: u8>(insn: &Instruction) -> Option<Handler> {
    sized!(op_size(insn, 0), S => shift::shift::<OP, S>)
}

fn sel_bt<const OP: u8>(insn: &Instruction) -> Option<Handler> {
    sized_wdq!(op_size(insn, 0), S => bit::bt::<OP, S>)
}

fn sel_loop<const KIND: u8>(_insn: &Instruction) -> Option<Handler> {
    Some(branch::loop_::<KIND>)
}

/// The string-instruction handler for `code`.
fn sel_string(code: Code) -> Option<Handler> {
    use string::{CMPS, LODS, MOVS, SCAS, STOS};
    use Code as C;
    Some(match code {
        C::Movsb_m8_m8 => string::string::<MOVS, 1>,
        C::Movsw_m16_m16 => string::string::<MOVS, 2>,
        C::Movsd_m32_m32 => string::string::<MOVS, 4>,
        C::Movsq_m64_m64 => string::string::<MOVS, 8>,
        C::Cmpsb_m8_m8 => string::string::<CMPS, 1>,
        C::Cmpsw_m16_m16 => string::string::<CMPS, 2>,
        C::Cmpsd_m32_m32 => string::string::<CMPS, 4>,
        C::Cmpsq_m64_m64 => string::string::<CMPS, 8>,
        C::Stosb_m8_AL => string::string::<STOS, 1>,
        C::Stosw_m16_AX => string::string::<STOS, 2>,
        C::Stosd_m32_EAX => string::string::<STOS, 4>,
        C::Stosq_m64_RAX => string::string::<STOS, 8>,
        C::Lodsb_AL_m8 => string::string::<LODS, 1>,
        C::Lodsw_AX_m16 => string::string::<LODS, 2>,
        C::Lodsd_EAX_m32 => string::string::<LODS, 4>,
        C::Lodsq_RAX_m64 => string::string::<LODS, 8>,
        C::Scasb_AL_m8 => string::string::<SCAS, 1>,
        C::Scasw_AX_m16 => string::string::<SCAS, 2>,
        C::Scasd_EAX_m32 => string::string::<SCAS, 4>,
        C::Scasq_RAX_m64 => string::string::<SCAS, 8>,
        _ => return None,
    })
}

/// Is this one of the instructions system/ owns?
fn is_system(insn: &Instruction) -> bool {
    use Mnemonic as M;
    let special_reg = |r: Register| r.is_segment_register() || r.is_cr() || r.is_dr();
    match insn.mnemonic() {
        M::Mov | M::Push | M::Pop => (0..insn.op_count())
            .any(|i| insn.op_kind(i) == OpKind::Register && special_reg(insn.op_register(i))),
        M::Jmp | M::Call => {
            insn.is_jmp_far()
                || insn.is_jmp_far_indirect()
                || insn.is_call_far()
                || insn.is_call_far_indirect()
        }
        M::Lds
        | M::Les
        | M::Lfs
        | M::Lgs
        | M::Lss
        | M::Retf
        | M::Iret
        | M::Iretd
        | M::Iretq
        | M::Int
        | M::Int1
        | M::Int3
        | M::Into
        | M::Syscall
        | M::Sysret
        | M::Sysretq
        | M::Sysenter
        | M::Sysexit
        | M::Sysexitq
        | M::Swapgs
        | M::Hlt
        | M::Cli
        | M::Sti
        | M::Pushf
        | M::Pushfd
        | M::Pushfq
        | M::Popf
        | M::Popfd
        | M::Popfq
        | M::Clts
        | M::Lmsw
        | M::Smsw
        | M::Lgdt
        | M::Lidt
        | M::Lldt
        | M::Ltr
        | M::Sgdt
        | M::Sidt
        | M::Sldt
        | M::Str
        | M::Lar
        | M::Lsl
        | M::Verr
        | M::Verw
        | M::Arpl
        | M::Rdmsr
        | M::Wrmsr
        | M::Rdtsc
        | M::Rdtscp
        | M::Cpuid
        | M::Invlpg
        | M::Wbinvd
        | M::Invd
        | M::In
        | M::Out
        | M::Insb
        | M::Insw
        | M::Insd
        | M::Outsb
        | M::Outsw
        | M::Outsd
        | M::Xgetbv
        | M::Xsetbv
        | M::Vmcall
        | M::Vmmcall => true,
        _ => false,
    }
}

/// [`select`], plus the binary-translation scan of `--virt full`: with
/// the `sensitive` intercept on, a sensitive-but-unprivileged instruction
/// gets [`bt_redirect`] instead of its own function.
#[inline]
pub(crate) fn select_for(cpu: &mut Cpu, insn: &Instruction) -> Sel {
    let sel = select(insn);
    if cpu.intercepts.as_ref().is_some_and(|i| i.sensitive) && crate::intercept::is_sensitive(insn)
    {
        cpu.stats.bt_redirected += 1;
        return Sel {
            handler: bt_redirect,
            ends_block: true,
        };
    }
    sel
}

/// The translated form of a sensitive instruction: exit to the monitor,
/// which emulates it on the guest's virtual CPU. Code at CPL 3 (and the
/// monitor's own emulation) runs the instruction itself.
fn bt_redirect(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    if cpu.bypass || cpu.state.cpl() == 3 || !cpu.intercepts.as_ref().is_some_and(|i| i.sensitive) {
        return (select(insn).handler)(cpu, plat, insn);
    }
    cpu.exit_block = true;
    Err(cpu.vm_exit(
        crate::intercept::ExitReason::Sensitive {
            mnemonic: insn.mnemonic(),
        },
        insn.len() as u8,
    ))
}

/// Choose the semantic function of a decoded instruction.
pub(crate) fn select(insn: &Instruction) -> Sel {
    let end = |handler: Handler| Sel {
        handler,
        ends_block: true,
    };
    if insn.is_invalid() {
        return end(misc::ud);
    }
    if is_system(insn) {
        return end(sys);
    }
    match select_core(insn) {
        Some(handler) => Sel {
            handler,
            // A taken conditional branch leaves the block through
            // `exit_block`; the fall-through path continues in it.
            ends_block: !matches!(
                insn.flow_control(),
                FlowControl::Next | FlowControl::ConditionalBranch
            ),
        },
        None => end(misc::unimplemented),
    }
}

/// Does [`select`] give `insn` a real handler, rather than
/// `misc::unimplemented` (or `sys` for a system instruction that
/// `system::exec` would answer with #UD)? The same decisions as
/// [`select`], made without executing anything: the coverage report
/// ([`crate::coverage`]) is built on it. A decoding that is #UD by
/// architecture (`insn.is_invalid()`) is not an implemented instruction.
pub(crate) fn is_implemented(insn: &Instruction) -> bool {
    if insn.is_invalid() {
        false
    } else if is_system(insn) {
        crate::system::handler_for(insn.code()).is_some()
    } else {
        select_core(insn).is_some()
    }
}

/// The general-purpose integer instructions.
fn select_core(insn: &Instruction) -> Option<Handler> {
    use Code as C;
    use Mnemonic as M;
    if let Some(h) = crate::insn::sse::select(insn) {
        return Some(h);
    }
    if let Some(h) = crate::insn::x87::select(insn) {
        return Some(h);
    }
    let code = insn.code();
    if let Some(h) =
        crate::insn::segbase::select(code).or_else(|| crate::insn::rdrand::select(code))
    {
        return Some(h);
    }
    let sz0 = op_size(insn, 0);
    match insn.mnemonic() {
        M::Add => sel_alu::<{ alu::ADD }>(insn),
        M::Or => sel_alu::<{ alu::OR }>(insn),
        M::Adc => sel_alu::<{ alu::ADC }>(insn),
        M::Sbb => sel_alu::<{ alu::SBB }>(insn),
        M::And => sel_alu::<{ alu::AND }>(insn),
        M::Sub => sel_alu::<{ alu::SUB }>(insn),
        M::Xor => sel_alu::<{ alu::XOR }>(insn),
        M::Cmp => sel_alu::<{ alu::CMP }>(insn),
        M::Test => sel_alu::<{ alu::TEST }>(insn),
        M::Inc => sel_unary::<{ alu::INC }>(insn),
        M::Dec => sel_unary::<{ alu::DEC }>(insn),
        M::Neg => sel_unary::<{ alu::NEG }>(insn),
        M::Not => sel_unary::<{ alu::NOT }>(insn),
        M::Xadd => sized!(sz0, S => alu::xadd::<S>),
        M::Cmpxchg => sized!(sz0, S => alu::cmpxchg::<S>),
        M::Cmpxchg8b => Some(alu::cmpxchg_wide::<8>),
        M::Cmpxchg16b => Some(alu::cmpxchg_wide::<16>),

        M::Mov => sel_mov(insn),
        M::Movzx => sel_movx::<false>(insn),
        M::Movsx | M::Movsxd => sel_movx::<true>(insn),
        M::Lea => sized_wdq!(sz0, S => mov::lea::<S>),
        M::Xchg => sized!(sz0, S => mov::xchg::<S>),
        M::Bswap => sized_wdq!(sz0, S => mov::bswap::<S>),
        M::Movbe => {
            let r = if insn.op0_kind() == OpKind::Register {
                0
            } else {
                1
            };
            sized_wdq!(op_size(insn, r), S => mov::movbe::<S>)
        }
        M::Cmovo
        | M::Cmovno
        | M::Cmovb
        | M::Cmovae
        | M::Cmove
        | M::Cmovne
        | M::Cmovbe
        | M::Cmova
        | M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg => by_cc!(cc_of(insn), K => sized_wdq!(sz0, S => mov::cmov::<K, S>)),
        M::Seto
        | M::Setno
        | M::Setb
        | M::Setae
        | M::Sete
        | M::Setne
        | M::Setbe
        | M::Seta
        | M::Sets
        | M::Setns
        | M::Setp
        | M::Setnp
        | M::Setl
        | M::Setge
        | M::Setle
        | M::Setg => by_cc!(cc_of(insn), K => Some(mov::setcc::<K> as Handler)),
        M::Xlatb => Some(mov::xlat),
        M::Cbw => Some(mov::cbw::<2>),
        M::Cwde => Some(mov::cbw::<4>),
        M::Cdqe => Some(mov::cbw::<8>),
        M::Cwd => Some(mov::cwd::<2>),
        M::Cdq => Some(mov::cwd::<4>),
        M::Cqo => Some(mov::cwd::<8>),

        M::Rol => sel_shift::<{ shift::ROL }>(insn),
        M::Ror => sel_shift::<{ shift::ROR }>(insn),
        M::Rcl => sel_shift::<{ shift::RCL }>(insn),
        M::Rcr => sel_shift::<{ shift::RCR }>(insn),
        M::Shl | M::Sal => sel_shift::<{ shift::SHL }>(insn),
        M::Shr => sel_shift::<{ shift::SHR }>(insn),
        M::Sar => sel_shift::<{ shift::SAR }>(insn),
        M::Shld => sized_wdq!(sz0, S => shift::shxd::<true, S>),
        M::Shrd => sized_wdq!(sz0, S => shift::shxd::<false, S>),

        M::Mul => sized!(sz0, S => muldiv::mul1::<S, false>),
        M::Imul => {
            if insn.op_count() == 1 {
                sized!(sz0, S => muldiv::mul1::<S, true>)
            } else {
                sized_wdq!(sz0, S => muldiv::imul_n::<S>)
            }
        }
        M::Div => sized!(sz0, S => muldiv::div::<S, false>),
        M::Idiv => sized!(sz0, S => muldiv::div::<S, true>),

        M::Bt => sel_bt::<{ bit::BT }>(insn),
        M::Bts => sel_bt::<{ bit::BTS }>(insn),
        M::Btr => sel_bt::<{ bit::BTR }>(insn),
        M::Btc => sel_bt::<{ bit::BTC }>(insn),
        M::Bsf => sized_wdq!(sz0, S => bit::bsf::<false, S>),
        M::Bsr => sized_wdq!(sz0, S => bit::bsf::<true, S>),
        M::Popcnt => sized_wdq!(sz0, S => bit::popcnt::<S>),
        M::Lzcnt => sized_wdq!(sz0, S => bit::zcnt::<true, S>),
        M::Tzcnt => sized_wdq!(sz0, S => bit::zcnt::<false, S>),

        M::Clc => Some(misc::clc),
        M::Stc => Some(misc::stc),
        M::Cmc => Some(misc::cmc),
        M::Cld => Some(misc::cld),
        M::Std => Some(misc::std),
        M::Lahf => Some(misc::lahf),
        M::Sahf => Some(misc::sahf),

        M::Jmp => match insn.op0_kind() {
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                Some(branch::jmp_rel)
            }
            _ => sized_wdq!(sz0, S => branch::jmp_ind::<S>),
        },
        M::Jo
        | M::Jno
        | M::Jb
        | M::Jae
        | M::Je
        | M::Jne
        | M::Jbe
        | M::Ja
        | M::Js
        | M::Jns
        | M::Jp
        | M::Jnp
        | M::Jl
        | M::Jge
        | M::Jle
        | M::Jg => by_cc!(cc_of(insn), K => Some(branch::jcc::<K> as Handler)),
        M::Call => match insn.code() {
            C::Call_rel16 => Some(branch::call_rel::<2>),
            C::Call_rel32_32 => Some(branch::call_rel::<4>),
            C::Call_rel32_64 => Some(branch::call_rel::<8>),
            _ => sized_wdq!(sz0, S => branch::call_ind::<S>),
        },
        M::Ret => match insn.code() {
            C::Retnw | C::Retnw_imm16 => Some(branch::ret::<2>),
            C::Retnd | C::Retnd_imm16 => Some(branch::ret::<4>),
            C::Retnq | C::Retnq_imm16 => Some(branch::ret::<8>),
            _ => None,
        },
        M::Loop => sel_loop::<{ branch::LOOP }>(insn),
        M::Loope => sel_loop::<{ branch::LOOPE }>(insn),
        M::Loopne => sel_loop::<{ branch::LOOPNE }>(insn),
        M::Jcxz | M::Jecxz | M::Jrcxz => sel_loop::<{ branch::JCXZ }>(insn),

        M::Push => match insn.op0_kind() {
            OpKind::Register => sized_wdq!(sz0, S => stack::push_r::<S>),
            OpKind::Memory => sized_wdq!(sz0, S => stack::push_m::<S>),
            _ => match insn.code() {
                C::Push_imm16 | C::Pushw_imm8 => Some(stack::push_i::<2>),
                C::Pushd_imm32 | C::Pushd_imm8 => Some(stack::push_i::<4>),
                C::Pushq_imm32 | C::Pushq_imm8 => Some(stack::push_i::<8>),
                _ => None,
            },
        },
        M::Pop => match insn.op0_kind() {
            OpKind::Register => sized_wdq!(sz0, S => stack::pop_r::<S>),
            OpKind::Memory => sized_wdq!(sz0, S => stack::pop_m::<S>),
            _ => None,
        },
        M::Pusha => Some(stack::pusha::<2>),
        M::Pushad => Some(stack::pusha::<4>),
        M::Popa => Some(stack::popa::<2>),
        M::Popad => Some(stack::popa::<4>),
        M::Enter => match insn.code() {
            C::Enterw_imm16_imm8 => Some(stack::enter::<2>),
            C::Enterd_imm16_imm8 => Some(stack::enter::<4>),
            _ => Some(stack::enter::<8>),
        },
        M::Leave => match insn.code() {
            C::Leavew => Some(stack::leave::<2>),
            C::Leaved => Some(stack::leave::<4>),
            _ => Some(stack::leave::<8>),
        },

        M::Movsb
        | M::Movsw
        | M::Movsd
        | M::Movsq
        | M::Cmpsb
        | M::Cmpsw
        | M::Cmpsd
        | M::Cmpsq
        | M::Stosb
        | M::Stosw
        | M::Stosd
        | M::Stosq
        | M::Lodsb
        | M::Lodsw
        | M::Lodsd
        | M::Lodsq
        | M::Scasb
        | M::Scasw
        | M::Scasd
        | M::Scasq => sel_string(insn.code()),

        M::Daa => Some(bcd::daa),
        M::Das => Some(bcd::das),
        M::Aaa => Some(bcd::aaa),
        M::Aas => Some(bcd::aas),
        M::Aam => Some(bcd::aam),
        M::Aad => Some(bcd::aad),
        M::Bound => sized_wdq!(op_size(insn, 0), S => misc::bound::<S>),

        M::Nop
        | M::Reservednop
        | M::Pause
        | M::Lfence
        | M::Sfence
        | M::Mfence
        | M::Prefetch
        | M::Prefetchnta
        | M::Prefetcht0
        | M::Prefetcht1
        | M::Prefetcht2
        | M::Prefetchw
        | M::Endbr32
        | M::Endbr64 => Some(misc::nop),
        M::Clflush | M::Clflushopt => Some(misc::clflush),
        M::Ud0 | M::Ud1 | M::Ud2 => Some(misc::ud),
        _ => crate::insn::bmi::select(insn),
    }
}
