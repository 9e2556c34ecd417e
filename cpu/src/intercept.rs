//! Intercepts: events that leave the guest for a monitor instead of
//! happening inside it — the interpreter's model of the control fields a
//! hypervisor programs (VT-x's VMCS execution controls and exception
//! bitmap), and of a trap-and-emulate monitor that owns the real IDT.
//!
//! With [`Cpu::set_intercepts`] a monitor chooses what exits. The CPU then
//! stops *before* the event takes effect and returns
//! [`crate::CpuExit::VmExit`] with a [`VmExit`]: an exit reason, the RIP of
//! the instruction (not yet executed) and its length, like a VT-x exit's
//! basic reason, qualification and instruction-length fields. The monitor
//! handles it (often by emulating the instruction on a virtual CPU, or
//! with [`Cpu::step_bypass`], which executes one instruction with the
//! intercepts off) and resumes the guest.
//!
//! `sensitive` is the binary-translation switch of `--virt full`: when a
//! block is decoded, every sensitive-but-unprivileged instruction (the
//! Robin & Irvine list: PUSHF/POPF, SGDT/SIDT/SLDT/STR/SMSW, LAR/LSL/VERR/
//! VERW, PUSH/POP/MOV of segment registers, far CALL/JMP/RET, INT n, IRET)
//! gets a redirect instead of its semantic function. Code at CPL 3 is not
//! translated (it runs directly, as in VMware's monitor).

use crate::cpu::Cpu;
use crate::event::IntKind;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};
use mmu::AccessKind;

/// Which port accesses exit.
#[derive(Clone, Default)]
pub enum IoIntercept {
    /// None (the guest reaches the devices directly).
    #[default]
    None,
    /// Every port ("unconditional I/O exiting").
    All,
    /// A 65536-bit bitmap, one bit per port (VT-x's I/O bitmaps A and B).
    Bitmap(Box<[u64; 1024]>),
}

impl IoIntercept {
    /// Does an access of `size` bytes at `port` exit?
    pub fn exits(&self, port: u16, size: u8) -> bool {
        match self {
            IoIntercept::None => false,
            IoIntercept::All => true,
            IoIntercept::Bitmap(b) => (0..u32::from(size.max(1))).any(|i| {
                let p = (u32::from(port) + i) & 0xffff;
                b[(p / 64) as usize] & (1 << (p % 64)) != 0
            }),
        }
    }
}

/// The intercept controls (all off by default).
#[derive(Clone, Default)]
pub struct Intercepts {
    /// Bit n set: exception vector n exits instead of being delivered
    /// through the IDT (VT-x exception bitmap; a monitor that owns the IDT
    /// sets all 32). NMI is bit 2.
    pub exceptions: u32,
    /// INT n / INT3 / INTO / INT1 exit before executing.
    pub software_interrupts: bool,
    /// A maskable interrupt the CPU would accept (IF = 1, no shadow) is
    /// acknowledged and exits instead of being delivered ("external-
    /// interrupt exiting" with "acknowledge interrupt on exit").
    pub external_interrupts: bool,
    /// Binary translation: sensitive-but-unprivileged instructions at
    /// CPL 0-2 exit (see the module doc).
    pub sensitive: bool,
    /// HLT exiting.
    pub hlt: bool,
    /// Bit n: MOV to CRn exits (CLTS and LMSW count as CR0 writes).
    pub cr_writes: u16,
    /// Bit n: MOV from CRn exits.
    pub cr_reads: u16,
    /// RDMSR exits.
    pub msr_reads: bool,
    /// WRMSR exits.
    pub msr_writes: bool,
    /// Port I/O exiting.
    pub io: IoIntercept,
    /// CPUID exits (always, under VT-x).
    pub cpuid: bool,
    /// INVLPG exits.
    pub invlpg: bool,
    /// VMCALL/VMMCALL exit (otherwise #UD).
    pub vmcall: bool,
    /// RDTSC/RDTSCP exit.
    pub rdtsc: bool,
}

/// Why the guest exited. The names follow VT-x basic exit reasons
/// (SDM Vol. 3D, Appendix C) where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// An exception whose bit is set in the exception bitmap. It has not
    /// been delivered; for a #PF, CR2 has not been written either.
    Exception {
        vector: u8,
        error_code: Option<u32>,
        cr2: Option<u64>,
    },
    /// INT n / INT3 / INTO / INT1, before it executes.
    SoftwareInterrupt {
        vector: u8,
        kind: IntKind,
    },
    /// A maskable interrupt was acknowledged at the controller.
    ExternalInterrupt {
        vector: u8,
    },
    /// A sensitive instruction found by the block scan.
    Sensitive {
        mnemonic: Mnemonic,
    },
    Hlt,
    /// MOV to/from CRn, CLTS, LMSW.
    CrAccess {
        cr: u8,
        write: bool,
    },
    Msr {
        index: u32,
        write: bool,
    },
    /// IN/OUT/INS/OUTS.
    Io {
        port: u16,
        size: u8,
        write: bool,
        string: bool,
        rep: bool,
    },
    Cpuid {
        leaf: u32,
        subleaf: u32,
    },
    Invlpg {
        lin: u64,
    },
    Vmcall,
    Rdtsc,
    /// Nested paging had no entry for a guest-physical address (the
    /// guest's own page walk or the final access).
    EptViolation {
        gpa: u64,
        access: AccessKind,
    },
}

impl ExitReason {
    /// The VT-x basic exit reason number, where one exists (for displays).
    pub fn vmx_basic_reason(&self) -> Option<u16> {
        Some(match self {
            ExitReason::Exception { .. } => 0,
            ExitReason::ExternalInterrupt { .. } => 1,
            ExitReason::Cpuid { .. } => 10,
            ExitReason::Hlt => 12,
            ExitReason::Invlpg { .. } => 14,
            ExitReason::Rdtsc => 16,
            ExitReason::Vmcall => 18,
            ExitReason::CrAccess { .. } => 28,
            ExitReason::Io { .. } => 30,
            ExitReason::Msr { write: false, .. } => 31,
            ExitReason::Msr { write: true, .. } => 32,
            ExitReason::EptViolation { .. } => 48,
            ExitReason::SoftwareInterrupt { .. } | ExitReason::Sensitive { .. } => return None,
        })
    }

    /// A short name ("EXCEPTION", "CR_ACCESS", …).
    pub fn name(&self) -> &'static str {
        match self {
            ExitReason::Exception { .. } => "EXCEPTION",
            ExitReason::SoftwareInterrupt { .. } => "SOFTWARE_INT",
            ExitReason::ExternalInterrupt { .. } => "EXTERNAL_INT",
            ExitReason::Sensitive { .. } => "SENSITIVE",
            ExitReason::Hlt => "HLT",
            ExitReason::CrAccess { .. } => "CR_ACCESS",
            ExitReason::Msr { write: false, .. } => "RDMSR",
            ExitReason::Msr { write: true, .. } => "WRMSR",
            ExitReason::Io { .. } => "IO_INSTRUCTION",
            ExitReason::Cpuid { .. } => "CPUID",
            ExitReason::Invlpg { .. } => "INVLPG",
            ExitReason::Vmcall => "VMCALL",
            ExitReason::Rdtsc => "RDTSC",
            ExitReason::EptViolation { .. } => "EPT_VIOLATION",
        }
    }
}

/// One exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExit {
    pub reason: ExitReason,
    /// RIP of the instruction that exited (not executed), or of the next
    /// instruction for interrupts and traps.
    pub rip: u64,
    /// Length of that instruction (0 for events between instructions).
    pub insn_len: u8,
}

/// Is `code` sensitive but unprivileged (Robin & Irvine 2000)? These are
/// the instructions the block scan of `--virt full` redirects.
pub fn is_sensitive(insn: &Instruction) -> bool {
    use Mnemonic as M;
    match insn.mnemonic() {
        M::Pushf | M::Pushfd | M::Pushfq | M::Popf | M::Popfd | M::Popfq => true,
        M::Sgdt | M::Sidt | M::Sldt | M::Str | M::Smsw => true,
        M::Lar | M::Lsl | M::Verr | M::Verw => true,
        M::Int | M::Int3 | M::Into | M::Int1 => true,
        M::Iret | M::Iretd | M::Iretq => true,
        M::Retf => true,
        M::Jmp | M::Call => {
            matches!(insn.op0_kind(), OpKind::FarBranch16 | OpKind::FarBranch32)
                || insn.is_jmp_far_indirect()
                || insn.is_call_far_indirect()
        }
        M::Push | M::Pop => is_sreg(insn.op0_register()),
        M::Mov => is_sreg(insn.op0_register()) || is_sreg(insn.op1_register()),
        M::Lds | M::Les | M::Lfs | M::Lgs | M::Lss => true,
        _ => false,
    }
}

fn is_sreg(r: Register) -> bool {
    r.is_segment_register()
}

/// The fault value that carries "a VM exit is pending" through the
/// interpreter's `Result<(), Fault>` plumbing; the exit itself waits in
/// `Cpu::pending_exit`.
pub(crate) const VM_EXIT_FAULT: Fault = Fault {
    vector: 0xff,
    error_code: Some(0x7e57_e417),
    cr2: Some(u64::MAX),
};

impl Cpu {
    /// Install (or remove, with `None`) the intercept controls. Drops the
    /// decoded blocks, which depend on the binary-translation switch.
    pub fn set_intercepts(&mut self, i: Option<Intercepts>) {
        self.intercepts = i.map(Box::new);
        self.flush_code_cache();
    }

    /// The intercept controls in force.
    pub fn intercepts(&self) -> Option<&Intercepts> {
        self.intercepts.as_deref()
    }

    /// Record `reason` as the pending exit and return the marker fault.
    pub(crate) fn vm_exit(&mut self, reason: ExitReason, insn_len: u8) -> Fault {
        self.pending_exit = Some(VmExit {
            reason,
            rip: self.insn_start,
            insn_len,
        });
        VM_EXIT_FAULT
    }

    /// Would exception `vector` exit now?
    #[inline]
    pub(crate) fn exception_exits(&self, vector: u8) -> bool {
        !self.bypass
            && vector < 32
            && self
                .intercepts
                .as_ref()
                .is_some_and(|i| i.exceptions & (1 << vector) != 0)
    }

    /// The instruction-level intercepts, checked by `system::exec` before
    /// a system instruction runs. `Err(VM_EXIT_FAULT)` if it exits.
    pub(crate) fn check_insn_intercept(
        &mut self,
        plat: &mut dyn Platform,
        insn: &Instruction,
    ) -> Result<(), Fault> {
        let _ = plat;
        if self.bypass {
            return Ok(());
        }
        let Some(ic) = self.intercepts.as_deref() else {
            return Ok(());
        };
        let cpl = self.state.cpl();
        let len = insn.len() as u8;
        use Mnemonic as M;
        let reason = match insn.mnemonic() {
            M::Int | M::Int3 | M::Into | M::Int1 if ic.software_interrupts => {
                let (vector, kind) = match insn.mnemonic() {
                    M::Int => (insn.immediate8(), IntKind::Software),
                    M::Int3 => (3, IntKind::SoftwareException),
                    M::Into => (4, IntKind::SoftwareException),
                    _ => (1, IntKind::Exception),
                };
                Some(ExitReason::SoftwareInterrupt { vector, kind })
            }
            // Privilege checks come first (SDM 26.1: faults have priority
            // over instruction exits): these exit only at CPL 0.
            M::Hlt if ic.hlt && cpl == 0 => Some(ExitReason::Hlt),
            M::Mov if cpl == 0 && is_cr_move(insn) => {
                let (cr, write) = cr_operand(insn);
                let mask = if write { ic.cr_writes } else { ic.cr_reads };
                (mask & (1 << cr) != 0).then_some(ExitReason::CrAccess { cr, write })
            }
            M::Clts | M::Lmsw if cpl == 0 && ic.cr_writes & 1 != 0 => {
                Some(ExitReason::CrAccess { cr: 0, write: true })
            }
            M::Rdmsr if ic.msr_reads && cpl == 0 => Some(ExitReason::Msr {
                index: self.state.gpr[1] as u32,
                write: false,
            }),
            M::Wrmsr if ic.msr_writes && cpl == 0 => Some(ExitReason::Msr {
                index: self.state.gpr[1] as u32,
                write: true,
            }),
            M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd
                if cpl == 0 || cpl <= self.state.iopl() =>
            {
                let (port, size, write, string) = io_operands(self, insn);
                ic.io.exits(port, size).then_some(ExitReason::Io {
                    port,
                    size,
                    write,
                    string,
                    rep: insn.has_rep_prefix(),
                })
            }
            M::Cpuid if ic.cpuid => Some(ExitReason::Cpuid {
                leaf: self.state.gpr[0] as u32,
                subleaf: self.state.gpr[1] as u32,
            }),
            M::Invlpg if ic.invlpg && cpl == 0 => {
                let lin = self.operand_lin(insn, 1, AccessKind::Read).unwrap_or(0);
                Some(ExitReason::Invlpg { lin })
            }
            M::Vmcall | M::Vmmcall if ic.vmcall => Some(ExitReason::Vmcall),
            M::Rdtsc | M::Rdtscp if ic.rdtsc => Some(ExitReason::Rdtsc),
            _ => None,
        };
        match reason {
            Some(r) => Err(self.vm_exit(r, len)),
            None => Ok(()),
        }
    }

    /// Execute exactly one instruction (or deliver one pending event) with
    /// every intercept off: how a monitor emulates an instruction the
    /// guest exited on, when the guest's state is the real state (`hw`),
    /// or lets an access it has checked go through. Nested-paging misses
    /// become plain device accesses meanwhile.
    /// No pending interrupt is delivered first (unlike [`Cpu::step`]).
    pub fn step_bypass(&mut self, plat: &mut dyn Platform) -> crate::CpuExit {
        self.bypass = true;
        self.flags.load(self.state.rflags);
        self.refresh_mode();
        let r = crate::exec::step_only(self, plat);
        self.state.rflags = self.rflags();
        self.bypass = false;
        r
    }

    /// Execute exactly one instruction with the intercepts in force but
    /// no event servicing first: the monitor's virtual CPU emulating the
    /// instruction a guest trapped on.
    pub fn step_instruction(&mut self, plat: &mut dyn Platform) -> crate::CpuExit {
        self.flags.load(self.state.rflags);
        self.refresh_mode();
        let r = crate::exec::step_only(self, plat);
        self.state.rflags = self.rflags();
        r
    }

    /// Deliver an event through the guest's IDT now (VT-x event injection;
    /// the monitor's reflection of an exception or interrupt). Intercepts
    /// are off during the delivery. `Some(Shutdown)` on a triple fault.
    pub fn inject_event(
        &mut self,
        plat: &mut dyn Platform,
        vector: u8,
        kind: IntKind,
        error_code: Option<u32>,
        cr2: Option<u64>,
    ) -> Option<crate::CpuExit> {
        self.bypass = true;
        self.flags.load(self.state.rflags);
        self.refresh_mode();
        let r = if kind == IntKind::Exception {
            self.raise_exception(
                plat,
                Fault {
                    vector,
                    error_code,
                    cr2,
                },
            )
        } else {
            self.deliver_interrupt(plat, vector, kind)
        };
        self.state.rflags = self.rflags();
        self.bypass = false;
        self.blocks.new_epoch();
        self.event_countdown = 0;
        r
    }

    /// The exit a `VmExit` return came from, if one is pending (used by
    /// the run loop).
    pub(crate) fn take_pending_exit(&mut self) -> Option<VmExit> {
        self.pending_exit.take()
    }
}

/// MOV to or from a control register?
fn is_cr_move(insn: &Instruction) -> bool {
    matches!(
        insn.code(),
        Code::Mov_cr_r32 | Code::Mov_cr_r64 | Code::Mov_r32_cr | Code::Mov_r64_cr
    )
}

/// (CR number, is a write) of a MOV CR.
fn cr_operand(insn: &Instruction) -> (u8, bool) {
    let write = matches!(insn.code(), Code::Mov_cr_r32 | Code::Mov_cr_r64);
    let r = if write {
        insn.op0_register()
    } else {
        insn.op1_register()
    };
    let n = (r as u32).wrapping_sub(Register::CR0 as u32) as u8;
    (n.min(15), write)
}

/// (port, size, is a write, is a string instruction) of an I/O instruction.
fn io_operands(cpu: &Cpu, insn: &Instruction) -> (u16, u8, bool, bool) {
    use Mnemonic as M;
    let dx = cpu.state.gpr[2] as u16;
    match insn.mnemonic() {
        M::In => {
            let port = if insn.op1_kind() == OpKind::Immediate8 {
                u16::from(insn.immediate8())
            } else {
                dx
            };
            (port, insn.op0_register().size() as u8, false, false)
        }
        M::Out => {
            let port = if insn.op0_kind() == OpKind::Immediate8 {
                u16::from(insn.immediate8())
            } else {
                dx
            };
            (port, insn.op1_register().size() as u8, true, false)
        }
        M::Insb => (dx, 1, false, true),
        M::Insw => (dx, 2, false, true),
        M::Insd => (dx, 4, false, true),
        M::Outsb => (dx, 1, true, true),
        M::Outsw => (dx, 2, true, true),
        _ => (dx, 4, true, true),
    }
}
