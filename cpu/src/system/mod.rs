//! The system side of the interpreter: privilege, segmentation, event
//! delivery, mode transitions and the system instructions.
//!
//! The core (`exec.rs`) forwards every instruction that touches protected
//! state to [`exec`]; the run loop calls [`Cpu::raise_exception`] and
//! [`Cpu::deliver_interrupt`] (in [`interrupt`]) to deliver events. Every
//! handler here is *transactional*: it performs all checks and memory reads
//! first and commits registers only when nothing can fault any more, so the
//! core's "restore RIP and deliver the fault" needs no undo log. (Stack
//! writes made before a later fault are not undone; the SDM allows that.)
//!
//! One file per job, named after the SDM:
//! * [`segment`] — descriptor-checked segment-register loads (MOV/POP/LxS).
//! * [`descriptor`] — GDT/LDT descriptor fetch, gates, the Accessed bit.
//! * [`stack`] — stack pushes/pops on an explicit SS:RSP (new stacks during
//!   delivery and far transfers).
//! * [`tss`] — ring stacks, IST and the I/O permission bitmap in the TSS.
//! * [`interrupt`] — exception/interrupt delivery, #DF and triple fault.
//! * [`far`] — far JMP/CALL/RET, call gates, IRET.
//! * [`syscall`] — SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS.
//! * [`control`] — MOV CR/DR, CLTS, LMSW/SMSW, XGETBV/XSETBV, mode changes.
//! * [`msr`] — RDMSR/WRMSR.
//! * [`desc_table`] — LGDT/LIDT/LLDT/LTR and friends, LAR/LSL/VERR/VERW/ARPL.
//! * [`flags`] — CLI/STI/PUSHF/POPF.
//! * [`io`] — IN/OUT/INS/OUTS and the I/O permission checks.
//! * [`cpuid`] — the CPUID model (public: the KVM backend uses it too).
//! * [`misc`] — HLT, INVLPG, WBINVD/INVD, RDTSC/RDTSCP.

pub mod cpuid;

mod control;
mod desc_table;
mod descriptor;
mod far;
mod flags;
mod interrupt;
mod io;
mod misc;
mod msr;
mod operand;
mod segment;
mod stack;
mod syscall;
mod tss;

#[cfg(test)]
mod tests;

use crate::cpu::Cpu;
use crate::event::CpuEvent;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, efer, rflags, CpuMode, SegReg};
use iced_x86::{Code, Instruction};

/// Execute one system instruction. `cpu.state.rip` already holds the next
/// RIP; on `Err` the core restores RIP to the instruction and delivers the
/// fault. Anything [`handler_for`] does not know is #UD.
pub(crate) fn exec(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    cpu.check_insn_intercept(plat, insn)?;
    match handler_for(insn.code()) {
        Some(handler) => handler(cpu, plat, insn),
        None => Err(Fault::UD),
    }
}

/// The semantic function of one system instruction.
pub(crate) type SysHandler = fn(&mut Cpu, &mut dyn Platform, &Instruction) -> Result<(), Fault>;

/// The handler of a system-instruction [`Code`], `None` if ringside does
/// not implement it (executing it raises #UD). A pure table lookup: both
/// [`exec`] and the coverage query ([`crate::coverage`]) use it, so the
/// report cannot drift from what runs.
// Every arm is a closure over the same three parameters; not every
// handler needs all of them.
#[allow(unused_variables)]
pub(crate) fn handler_for(code: Code) -> Option<SysHandler> {
    use Code as C;
    let handler: SysHandler = match code {
        // ---- segment registers ----
        C::Mov_Sreg_rm16 | C::Mov_Sreg_r32m16 | C::Mov_Sreg_r64m16 => {
            |cpu, plat, insn| segment::mov_to_sreg(cpu, plat, insn)
        }
        C::Mov_rm16_Sreg | C::Mov_r32m16_Sreg | C::Mov_r64m16_Sreg => {
            |cpu, plat, insn| segment::mov_from_sreg(cpu, plat, insn)
        }
        C::Pushw_ES | C::Pushw_CS | C::Pushw_SS | C::Pushw_DS | C::Pushw_FS | C::Pushw_GS => {
            |cpu, plat, insn| segment::push_sreg(cpu, plat, insn, 2)
        }
        C::Pushd_ES | C::Pushd_CS | C::Pushd_SS | C::Pushd_DS | C::Pushd_FS | C::Pushd_GS => {
            |cpu, plat, insn| segment::push_sreg(cpu, plat, insn, 4)
        }
        C::Pushq_FS | C::Pushq_GS => |cpu, plat, insn| segment::push_sreg(cpu, plat, insn, 8),
        C::Popw_ES | C::Popw_SS | C::Popw_DS | C::Popw_FS | C::Popw_GS => {
            |cpu, plat, insn| segment::pop_sreg(cpu, plat, insn, 2)
        }
        C::Popd_ES | C::Popd_SS | C::Popd_DS | C::Popd_FS | C::Popd_GS => {
            |cpu, plat, insn| segment::pop_sreg(cpu, plat, insn, 4)
        }
        C::Popq_FS | C::Popq_GS => |cpu, plat, insn| segment::pop_sreg(cpu, plat, insn, 8),
        C::Lds_r16_m1616
        | C::Les_r16_m1616
        | C::Lfs_r16_m1616
        | C::Lgs_r16_m1616
        | C::Lss_r16_m1616 => |cpu, plat, insn| segment::load_far_pointer(cpu, plat, insn, 2),
        C::Lds_r32_m1632
        | C::Les_r32_m1632
        | C::Lfs_r32_m1632
        | C::Lgs_r32_m1632
        | C::Lss_r32_m1632 => |cpu, plat, insn| segment::load_far_pointer(cpu, plat, insn, 4),
        C::Lfs_r64_m1664 | C::Lgs_r64_m1664 | C::Lss_r64_m1664 => {
            |cpu, plat, insn| segment::load_far_pointer(cpu, plat, insn, 8)
        }

        // ---- far transfers ----
        C::Jmp_ptr1616 | C::Jmp_ptr1632 | C::Jmp_m1616 | C::Jmp_m1632 | C::Jmp_m1664 => {
            |cpu, plat, insn| far::far_jmp_call(cpu, plat, insn, false)
        }
        C::Call_ptr1616 | C::Call_ptr1632 | C::Call_m1616 | C::Call_m1632 | C::Call_m1664 => {
            |cpu, plat, insn| far::far_jmp_call(cpu, plat, insn, true)
        }
        C::Retfw | C::Retfw_imm16 => |cpu, plat, insn| far::retf(cpu, plat, insn, 2),
        C::Retfd | C::Retfd_imm16 => |cpu, plat, insn| far::retf(cpu, plat, insn, 4),
        C::Retfq | C::Retfq_imm16 => |cpu, plat, insn| far::retf(cpu, plat, insn, 8),
        C::Iretw => |cpu, plat, insn| far::iret(cpu, plat, 2),
        C::Iretd => |cpu, plat, insn| far::iret(cpu, plat, 4),
        C::Iretq => |cpu, plat, insn| far::iret(cpu, plat, 8),

        // ---- software interrupts ----
        C::Int_imm8 => |cpu, plat, insn| interrupt::int_n(cpu, plat, insn.immediate8()),
        C::Int3 => |cpu, plat, insn| interrupt::int3(cpu, plat),
        C::Into => |cpu, plat, insn| interrupt::into(cpu, plat),
        C::Int1 => |cpu, plat, insn| interrupt::int1(cpu, plat),

        // ---- fast system calls ----
        C::Syscall => |cpu, plat, insn| syscall::syscall(cpu),
        C::Sysretd => |cpu, plat, insn| syscall::sysret(cpu, false),
        C::Sysretq => |cpu, plat, insn| syscall::sysret(cpu, true),
        C::Sysenter => |cpu, plat, insn| syscall::sysenter(cpu),
        C::Sysexitd => |cpu, plat, insn| syscall::sysexit(cpu, false),
        C::Sysexitq => |cpu, plat, insn| syscall::sysexit(cpu, true),
        C::Swapgs => |cpu, plat, insn| syscall::swapgs(cpu),

        // ---- flags ----
        C::Cli => |cpu, plat, insn| flags::cli(cpu),
        C::Sti => |cpu, plat, insn| flags::sti(cpu),
        C::Pushfw => |cpu, plat, insn| flags::pushf(cpu, plat, 2),
        C::Pushfd => |cpu, plat, insn| flags::pushf(cpu, plat, 4),
        C::Pushfq => |cpu, plat, insn| flags::pushf(cpu, plat, 8),
        C::Popfw => |cpu, plat, insn| flags::popf(cpu, plat, 2),
        C::Popfd => |cpu, plat, insn| flags::popf(cpu, plat, 4),
        C::Popfq => |cpu, plat, insn| flags::popf(cpu, plat, 8),

        // ---- control and debug registers ----
        C::Mov_cr_r32 | C::Mov_cr_r64 => |cpu, plat, insn| control::mov_to_cr(cpu, plat, insn),
        C::Mov_r32_cr | C::Mov_r64_cr => |cpu, plat, insn| control::mov_from_cr(cpu, insn),
        C::Mov_dr_r32 | C::Mov_dr_r64 => |cpu, plat, insn| control::mov_to_dr(cpu, insn),
        C::Mov_r32_dr | C::Mov_r64_dr => |cpu, plat, insn| control::mov_from_dr(cpu, insn),
        C::Clts => |cpu, plat, insn| control::clts(cpu, plat),
        C::Lmsw_rm16 | C::Lmsw_r32m16 | C::Lmsw_r64m16 => {
            |cpu, plat, insn| control::lmsw(cpu, plat, insn)
        }
        C::Smsw_rm16 | C::Smsw_r32m16 | C::Smsw_r64m16 => {
            |cpu, plat, insn| control::smsw(cpu, plat, insn)
        }
        C::Xgetbv => |cpu, plat, insn| control::xgetbv(cpu),
        C::Xsetbv => |cpu, plat, insn| control::xsetbv(cpu),
        C::Rdmsr => |cpu, plat, insn| msr::rdmsr(cpu, plat),
        C::Wrmsr => |cpu, plat, insn| msr::wrmsr(cpu, plat),

        // ---- descriptor tables ----
        C::Lgdt_m1632_16 | C::Lgdt_m1632 | C::Lgdt_m1664 => {
            |cpu, plat, insn| desc_table::lgdt_lidt(cpu, plat, insn, false)
        }
        C::Lidt_m1632_16 | C::Lidt_m1632 | C::Lidt_m1664 => {
            |cpu, plat, insn| desc_table::lgdt_lidt(cpu, plat, insn, true)
        }
        C::Sgdt_m1632_16 | C::Sgdt_m1632 | C::Sgdt_m1664 => {
            |cpu, plat, insn| desc_table::sgdt_sidt(cpu, plat, insn, false)
        }
        C::Sidt_m1632_16 | C::Sidt_m1632 | C::Sidt_m1664 => {
            |cpu, plat, insn| desc_table::sgdt_sidt(cpu, plat, insn, true)
        }
        C::Lldt_rm16 | C::Lldt_r32m16 | C::Lldt_r64m16 => {
            |cpu, plat, insn| desc_table::lldt(cpu, plat, insn)
        }
        C::Ltr_rm16 | C::Ltr_r32m16 | C::Ltr_r64m16 => {
            |cpu, plat, insn| desc_table::ltr(cpu, plat, insn)
        }
        C::Sldt_rm16 | C::Sldt_r32m16 | C::Sldt_r64m16 => {
            |cpu, plat, insn| desc_table::sldt_str(cpu, plat, insn, false)
        }
        C::Str_rm16 | C::Str_r32m16 | C::Str_r64m16 => {
            |cpu, plat, insn| desc_table::sldt_str(cpu, plat, insn, true)
        }
        C::Lar_r16_rm16 | C::Lar_r32_r32m16 | C::Lar_r64_r64m16 => {
            |cpu, plat, insn| desc_table::lar_lsl(cpu, plat, insn, false)
        }
        C::Lsl_r16_rm16 | C::Lsl_r32_r32m16 | C::Lsl_r64_r64m16 => {
            |cpu, plat, insn| desc_table::lar_lsl(cpu, plat, insn, true)
        }
        C::Verr_rm16 | C::Verr_r32m16 | C::Verr_r64m16 => {
            |cpu, plat, insn| desc_table::verr_verw(cpu, plat, insn, false)
        }
        C::Verw_rm16 | C::Verw_r32m16 | C::Verw_r64m16 => {
            |cpu, plat, insn| desc_table::verr_verw(cpu, plat, insn, true)
        }
        C::Arpl_rm16_r16 | C::Arpl_r32m16_r32 => {
            |cpu, plat, insn| desc_table::arpl(cpu, plat, insn)
        }

        // ---- I/O ----
        C::In_AL_imm8
        | C::In_AX_imm8
        | C::In_EAX_imm8
        | C::In_AL_DX
        | C::In_AX_DX
        | C::In_EAX_DX => |cpu, plat, insn| io::in_(cpu, plat, insn),
        C::Out_imm8_AL
        | C::Out_imm8_AX
        | C::Out_imm8_EAX
        | C::Out_DX_AL
        | C::Out_DX_AX
        | C::Out_DX_EAX => |cpu, plat, insn| io::out(cpu, plat, insn),
        C::Insb_m8_DX | C::Insw_m16_DX | C::Insd_m32_DX => {
            |cpu, plat, insn| io::ins(cpu, plat, insn)
        }
        C::Outsb_DX_m8 | C::Outsw_DX_m16 | C::Outsd_DX_m32 => {
            |cpu, plat, insn| io::outs(cpu, plat, insn)
        }

        // ---- identification, time, caches, halt ----
        C::Cpuid => |cpu, plat, insn| cpuid::exec_cpuid(cpu),
        C::Rdtsc => |cpu, plat, insn| misc::rdtsc(cpu, plat, false),
        C::Rdtscp => |cpu, plat, insn| misc::rdtsc(cpu, plat, true),
        C::Hlt => |cpu, plat, insn| misc::hlt(cpu),
        C::Invlpg_m => |cpu, plat, insn| misc::invlpg(cpu, insn),
        C::Wbinvd | C::Invd => |cpu, plat, insn| misc::wbinvd(cpu),
        // Outside VMX non-root operation VMCALL is #UD (a monitor that
        // intercepts it turns it into a hypercall exit first).
        C::Vmcall | C::Vmmcall => |cpu, plat, insn| Err(Fault::UD),

        _ => return None,
    };
    Some(handler)
}

// ---- mode and privilege predicates shared by the handlers ----

/// Protected mode, not virtual-8086: descriptors and privilege apply.
#[inline]
pub(crate) fn protected(cpu: &Cpu) -> bool {
    cpu.state.cr0 & cr0::PE != 0 && cpu.state.rflags & rflags::VM == 0
}

/// Virtual-8086 mode.
#[inline]
pub(crate) fn vm86(cpu: &Cpu) -> bool {
    cpu.state.cr0 & cr0::PE != 0 && cpu.state.rflags & rflags::VM != 0
}

/// IA-32e mode is active (EFER.LMA): 64-bit or compatibility mode.
#[inline]
pub(crate) fn long_mode(cpu: &Cpu) -> bool {
    cpu.state.efer & efer::LMA != 0
}

/// 64-bit mode: IA-32e with a CS.L = 1 code segment.
#[inline]
pub(crate) fn mode64(cpu: &Cpu) -> bool {
    long_mode(cpu) && cpu.state.cs().long()
}

/// #GP(0) unless CPL = 0 (VM86 counts as CPL 3).
#[inline]
pub(crate) fn require_cpl0(cpu: &Cpu) -> Result<(), Fault> {
    if cpu.state.cpl() != 0 {
        return Err(Fault::gp0());
    }
    Ok(())
}

/// #UD in real mode and VM86 (LLDT, LTR, LAR, ARPL… are protected-mode only).
#[inline]
pub(crate) fn require_protected(cpu: &Cpu) -> Result<(), Fault> {
    if !protected(cpu) {
        return Err(Fault::UD);
    }
    Ok(())
}

/// A 48-bit canonical linear address (4-level paging; LA57 is not offered).
#[inline]
pub(crate) fn canonical(a: u64) -> bool {
    (((a << 16) as i64) >> 16) as u64 == a
}

/// Report a processor-mode change (CR0/EFER writes, far transfers into or
/// out of 64-bit code, event delivery from compatibility mode…). Nothing is
/// flushed here: the core's decoded blocks must be keyed by code bitness.
pub(crate) fn note_mode_change(cpu: &Cpu, plat: &mut dyn Platform, before: CpuMode) {
    if !(cpu.trace.int || cpu.trace.mmu) {
        return;
    }
    let after = cpu.state.mode();
    if after != before {
        plat.event(&CpuEvent::ModeChange {
            from: before.name(),
            to: after.name(),
        });
    }
}

/// The segment register an iced register names.
pub(crate) fn sreg_of(r: iced_x86::Register) -> Option<SegReg> {
    use iced_x86::Register as R;
    Some(match r {
        R::ES => SegReg::Es,
        R::CS => SegReg::Cs,
        R::SS => SegReg::Ss,
        R::DS => SegReg::Ds,
        R::FS => SegReg::Fs,
        R::GS => SegReg::Gs,
        _ => return None,
    })
}
