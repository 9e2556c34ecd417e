//! Driving KVM one instruction (or one native stretch) at a time.
//!
//! What this host's KVM can do was measured, not assumed (a probe of
//! `KVM_SET_GUEST_DEBUG` on real-mode, CPL-0 and CPL-3 64-bit guests, and
//! the images under lockstep): on kvm-pvm
//!
//! * `KVM_GUESTDBG_SINGLESTEP` works for every instruction the host
//!   *emulates*: real mode, 16/32-bit protected mode, and 64-bit code at
//!   CPL 0. `KVM_RUN` returns `KVM_EXIT_DEBUG` after each instruction.
//! * For native 64-bit CPL-3 code it does not: the single-step trap, and
//!   likewise hardware and software breakpoints, are delivered *to the
//!   guest* as #DB/#BP instead of exiting to userspace.
//! * A hardware breakpoint (`KVM_GUESTDBG_USE_HW_BP`) on CPL-0 code *is*
//!   honoured by the emulator, so a native stretch can be ended at the
//!   first kernel instruction after it: measured for a #PF and a #GP from
//!   ring 3. After an `INT 0x80` from ring 3 it is not (KVM runs on into
//!   the kernel; lockstep then reports the device access KVM made that
//!   the interpreter had not).
//! * After an instruction that delivers an event (exception, interrupt,
//!   INT n) or an IRET, the debug exit sometimes comes one instruction
//!   late (the new RFLAGS has TF clear); lockstep notices KVM one
//!   instruction ahead and steps the interpreter once more.
//!
//! An instruction that exits for I/O (`KVM_EXIT_IO`, `KVM_EXIT_MMIO`) is
//! answered from the interpreter's log and completed by re-entering with
//! `immediate_exit` set, which finishes the instruction without running
//! guest code; that ends the step (KVM reports no debug exit for it).

use super::replay::Replay;
use crate::kvm::KvmAccel;
use crate::AccelError;
use kvm_bindings::{
    kvm_guest_debug, kvm_interrupt, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP,
    KVM_GUESTDBG_USE_HW_BP,
};
use kvm_ioctls::VcpuExit as KvmExit;
use std::time::Instant;

const KVMIO: u32 = 0xAE;
vmm_sys_util::ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);

/// How KVM is made to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugMode {
    /// `KVM_EXIT_DEBUG` after every instruction.
    SingleStep,
    /// `KVM_EXIT_DEBUG` when the instruction at this linear address is
    /// about to execute (DR0, execute breakpoint).
    Breakpoint(u64),
}

/// How one KVM step (or stretch) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The instruction completed (debug exit, or an I/O completed).
    Done,
    /// HLT: the vCPU waits for an interrupt.
    Halted,
    /// A triple fault.
    Shutdown,
    /// The host's emulator gave up (`KVM_EXIT_INTERNAL_ERROR`).
    Unavailable(String),
    /// KVM made a device access the interpreter did not make.
    AccessMismatch(String),
    /// The kick deadline passed before KVM stopped.
    TimedOut,
}

fn host(what: &'static str) -> impl Fn(vmm_sys_util::errno::Error) -> AccelError {
    move |e| AccelError::Host {
        what,
        detail: e.to_string(),
    }
}

/// Program `KVM_SET_GUEST_DEBUG`.
pub fn set_debug(kvm: &mut KvmAccel, mode: DebugMode) -> Result<(), AccelError> {
    let mut dbg = kvm_guest_debug::default();
    match mode {
        DebugMode::SingleStep => dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP,
        DebugMode::Breakpoint(lin) => {
            dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
            dbg.arch.debugreg[0] = lin;
            // DR7: L0, R/W0 = 00 (execute), LEN0 = 00 (1 byte).
            dbg.arch.debugreg[7] = 1;
        }
    }
    kvm.vcpu_fd()
        .set_guest_debug(&dbg)
        .map_err(host("KVM_SET_GUEST_DEBUG"))
}

/// Queue external interrupt `vector` for delivery at the next entry
/// (`KVM_INTERRUPT`; ringside's interrupt controller is in userspace).
pub fn inject(kvm: &mut KvmAccel, vector: u8) -> Result<(), AccelError> {
    let irq = kvm_interrupt {
        irq: u32::from(vector),
    };
    let fd = kvm.vcpu_fd();
    // SAFETY: `fd` is a vCPU file descriptor; KVM_INTERRUPT reads a
    // `struct kvm_interrupt` through the pointer, and `irq` outlives the
    // call.
    let r = unsafe { vmm_sys_util::ioctl::ioctl_with_ref(&*fd, KVM_INTERRUPT(), &irq) };
    if r != 0 {
        return Err(AccelError::Host {
            what: "KVM_INTERRUPT",
            detail: std::io::Error::last_os_error().to_string(),
        });
    }
    Ok(())
}

/// Queue an NMI.
pub fn inject_nmi(kvm: &mut KvmAccel) -> Result<(), AccelError> {
    kvm.vcpu_fd().nmi().map_err(host("KVM_NMI"))
}

/// What one `KVM_RUN` returned, with the I/O already answered.
enum Turn {
    Stop(Stop),
    /// An I/O exit was answered: re-enter with `immediate_exit` to
    /// complete the instruction.
    Complete,
    /// A signal interrupted the run (a kick, or another signal).
    Interrupted,
    /// Nothing to report: enter again.
    Again,
}

fn one_run(kvm: &mut KvmAccel, replay: &mut Replay) -> Result<Turn, AccelError> {
    let fd = kvm.vcpu_fd();
    Ok(match fd.run() {
        Ok(KvmExit::Debug(_)) => Turn::Stop(Stop::Done),
        Ok(KvmExit::IoIn(port, data)) => match replay.pio_in(port, data) {
            Ok(()) => Turn::Complete,
            Err(e) => Turn::Stop(Stop::AccessMismatch(e)),
        },
        Ok(KvmExit::IoOut(port, data)) => match replay.pio_out(port, data) {
            Ok(()) => Turn::Complete,
            Err(e) => Turn::Stop(Stop::AccessMismatch(e)),
        },
        Ok(KvmExit::MmioRead(pa, data)) => match replay.mmio_read(pa, data) {
            Ok(()) => Turn::Complete,
            Err(e) => Turn::Stop(Stop::AccessMismatch(e)),
        },
        Ok(KvmExit::MmioWrite(pa, data)) => match replay.mmio_write(pa, data) {
            Ok(()) => Turn::Complete,
            Err(e) => Turn::Stop(Stop::AccessMismatch(e)),
        },
        Ok(KvmExit::Hlt) => Turn::Stop(Stop::Halted),
        Ok(KvmExit::Shutdown) => Turn::Stop(Stop::Shutdown),
        Ok(KvmExit::InternalError) => Turn::Stop(Stop::Unavailable(
            "the host KVM could not emulate the instruction (KVM_EXIT_INTERNAL_ERROR)".into(),
        )),
        Ok(KvmExit::IrqWindowOpen) => Turn::Again,
        Ok(KvmExit::Intr) => Turn::Interrupted,
        Ok(other) => {
            return Err(AccelError::Host {
                what: "KVM_RUN",
                detail: format!("unexpected exit {other:?} while single-stepping"),
            })
        }
        Err(e) if e.errno() == libc::EINTR => Turn::Interrupted,
        Err(e) => return Err(host("KVM_RUN")(e)),
    })
}

/// Run KVM until it stops as `set_debug` asked, answering I/O from
/// `replay`. With `deadline`, the kvm kicker ends a run that goes on too
/// long ([`Stop::TimedOut`]); single steps run without it (a step cannot
/// loop, and arming the kicker costs a thread wake-up).
pub fn run(
    kvm: &mut KvmAccel,
    replay: &mut Replay,
    deadline: Option<Instant>,
) -> Result<Stop, AccelError> {
    match deadline {
        Some(d) => kvm.with_kick(d, |kvm| run_loop(kvm, replay, true))?,
        None => run_loop(kvm, replay, false),
    }
}

fn run_loop(kvm: &mut KvmAccel, replay: &mut Replay, kicked: bool) -> Result<Stop, AccelError> {
    // Spurious signals (not ours) are retried a few times.
    let mut spurious = 0;
    loop {
        match one_run(kvm, replay)? {
            Turn::Stop(s) => return Ok(s),
            Turn::Again => {}
            Turn::Interrupted => {
                if kicked && kvm.vcpu_fd().get_kvm_run().immediate_exit != 0 {
                    return Ok(Stop::TimedOut);
                }
                spurious += 1;
                if spurious > 1000 {
                    return Ok(Stop::TimedOut);
                }
            }
            Turn::Complete => {
                // Finish the I/O instruction without running guest code.
                kvm.vcpu_fd().set_kvm_immediate_exit(1);
                let r = kvm.vcpu_fd().run().map(|_| ()).map_err(|e| e.errno());
                kvm.vcpu_fd().set_kvm_immediate_exit(0);
                match r {
                    Err(libc::EINTR) | Ok(()) => return Ok(Stop::Done),
                    Err(errno) => {
                        return Err(AccelError::Host {
                            what: "KVM_RUN (completing I/O)",
                            detail: std::io::Error::from_raw_os_error(errno).to_string(),
                        })
                    }
                }
            }
        }
    }
}
