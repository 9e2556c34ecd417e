//! The kvm accelerator: guest code runs on the host CPU through `/dev/kvm`.
//!
//! The same guest RAM mapping ([`GuestRam`]) is registered with KVM as
//! memory slots, so the interpreter and KVM share memory, and the same
//! device board (ringside's PIC, PIT, LAPIC, UART… through
//! [`cpu::Platform`]) serves both backends: no in-kernel irqchip (see
//! `vm.rs` for that choice and its cost).
//!
//! * [`probe`]: is KVM usable here, and which flavour (VT-x, AMD-V, kvm-pvm).
//! * `vm.rs`: the VM, its memory slots and helper pages.
//! * `cpuid.rs`: the CPUID table the guest sees.
//! * `regs.rs`: [`CpuState`] ⇄ KVM register structures.
//! * `vcpu.rs`: loading and saving the vCPU state.
//! * `run.rs`: the exit loop (I/O dispatch, interrupt injection).
//! * `kick.rs`: making `KVM_RUN` return at a slice deadline.
//!
//! # On kvm-pvm
//!
//! kvm-pvm runs without VT-x/AMD-V. Measured on the development host
//! (AMD EPYC, kvm-pvm nested in Firecracker):
//!
//! * Real mode, 32-bit protected mode (tested without paging) and long
//!   mode can all be entered. Only 64-bit user-mode code (CPL 3) runs
//!   natively;
//!   code at CPL 0, and all real-mode and 32-bit code, is executed by
//!   KVM's instruction emulator at about 1 µs per instruction. Every exit
//!   to userspace costs about 5 µs.
//! * The emulator does not know every instruction. POPCNT and CLAC end the
//!   run with [`VcpuExit::HostLimit`] naming the instruction; so does IRET
//!   in 32-bit protected mode (KVM emulates IRET for real mode only; PVM
//!   handles the 64-bit IRETQ itself). MOVBE is worse: the guest gets #UD
//!   although CPUID advertises MOVBE, which this backend cannot detect.
//! * kvm-pvm rewrites CPUID leaves 1, 7 and 0xd with the host's own
//!   feature words on `KVM_SET_CPUID2`, so the guest does not see
//!   ringside's CPU model exactly; [`KvmAccel::cpuid_notes`] lists the
//!   differences.
//! * Interrupt windows are noticed at the next exit or emulation batch
//!   boundary, so an interrupt may arrive an instruction or so later than
//!   on hardware virtualization (never while IF = 0).
//! * Guests that are not PVM-aware cannot use SYSCALL from ring 3: native
//!   ring-3 code reads the host's CS selector (0x33), and SYSCALL jumps to
//!   LSTAR but stays in ring 3. Nothing exits to ringside, so this shows
//!   up as guest misbehaviour (e.g. `images/rings` fails), not a message.

mod cpuid;
mod kick;
pub mod probe;
mod regs;
mod run;
mod vcpu;
mod vm;

#[cfg(test)]
mod tests;

pub use probe::{probe, KvmFlavour, KvmProbe};
pub use vm::{IDENTITY_MAP_ADDR, TSS_ADDR};

use crate::{AccelError, Accelerator, ExitStats, RunSlice, VcpuExit};
use cpu::{CpuState, Platform, TraceFlags};
use kick::Kicker;
use mmu::{GuestRam, PhysLayout};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vcpu::Vcpu;
use vm::Vm;

/// The shortest slice: a deadline earlier than this from the start of
/// `run()` is moved to it. About 100 emulated instructions on kvm-pvm,
/// far more on hardware virtualization.
const MIN_SLICE: Duration = Duration::from_micros(100);

/// One vCPU on the host's KVM.
///
/// Field order is drop order: the kicker thread is joined first (it may
/// hold a pointer into the vCPU's `kvm_run`), then the vCPU and VM file
/// descriptors are closed, and only then is our reference to guest RAM
/// released, so the memory KVM maps for the guest outlives the VM.
pub struct KvmAccel {
    kicker: Kicker,
    vcpu: Vcpu,
    vm: Vm,
    ram: Arc<GuestRam>,
    probe: KvmProbe,
    cpuid_notes: Vec<String>,
}

impl KvmAccel {
    /// A VM over `ram` (laid out as `layout`) with one vCPU in the RESET
    /// state. [`AccelError::Unavailable`] says why when KVM can't be used.
    pub fn new(ram: Arc<GuestRam>, layout: PhysLayout) -> Result<Self, AccelError> {
        let (kvm, probe) = probe::open();
        let Some(kvm) = kvm else {
            return Err(AccelError::Unavailable(format!(
                "kvm: {}",
                probe.reason.as_deref().unwrap_or("unavailable")
            )));
        };
        if layout.ram_size() != ram.size() {
            return Err(AccelError::BadState(format!(
                "layout describes {:#x} bytes of RAM but the mapping has {:#x}",
                layout.ram_size(),
                ram.size()
            )));
        }
        let vm = Vm::new(kvm, &ram, &layout)?;
        let fd = vm.create_vcpu()?;
        let cpuid_notes = cpuid::configure(&vm.kvm, &fd)?;
        let vcpu = Vcpu::new(
            fd,
            vm.caps,
            vm.fd.run_size(),
            ram.clone(),
            layout,
            probe.short(),
        );
        let mut accel = KvmAccel {
            kicker: Kicker::default(),
            vcpu,
            vm,
            ram,
            probe,
            cpuid_notes,
        };
        // Start from ringside's RESET state rather than KVM's, so fields
        // KVM leaves alone (the TSC offset, MSRs it does not hold) start
        // where the interpreter's do.
        accel.set_state(&CpuState::reset())?;
        Ok(accel)
    }

    /// What [`probe`] found when this VM was created.
    pub fn probe(&self) -> &KvmProbe {
        &self.probe
    }

    /// Differences between ringside's CPU model and what this guest sees
    /// or the host can do (empty when they agree).
    pub fn cpuid_notes(&self) -> &[String] {
        &self.cpuid_notes
    }

    /// Report port and MMIO accesses through [`Platform::event`] when
    /// `trace.io` is set (the other flags need an interpreter).
    pub fn set_trace(&mut self, trace: TraceFlags) {
        self.vcpu.trace = trace;
    }

    /// The guest RAM this VM runs on.
    pub fn ram(&self) -> &Arc<GuestRam> {
        &self.ram
    }

    /// Whether the host KVM reports exits for emulation failures with the
    /// instruction bytes (`KVM_CAP_EXIT_ON_EMULATION_FAILURE`).
    pub fn reports_emulation_failures(&self) -> bool {
        self.vm.caps.emulation_failure_exit
    }

    /// An event KVM is in the middle of delivering (an interrupt injected
    /// but not yet taken, an exception being delivered), which
    /// [`CpuState`] cannot carry. Check this before moving the state to
    /// another backend: `None` means [`Accelerator::get_state`] is the
    /// whole story.
    pub fn event_in_flight(&mut self) -> Result<Option<String>, AccelError> {
        self.vcpu.event_in_flight()
    }

    /// The vCPU file descriptor, for lockstep's own single-step loop
    /// (`crate::lockstep`), which drives `KVM_RUN` itself.
    pub(crate) fn vcpu_fd(&mut self) -> &mut kvm_ioctls::VcpuFd {
        &mut self.vcpu.fd
    }

    /// Run `f` (which enters the guest itself, as lockstep does) with the
    /// kicker armed for `deadline`: `KVM_RUN` returns `EINTR` by then.
    pub(crate) fn with_kick<R>(
        &mut self,
        deadline: Instant,
        f: impl FnOnce(&mut Self) -> R,
    ) -> Result<R, AccelError> {
        let flag = self.vcpu.immediate_exit_ptr();
        // The kicker is moved out for the call so `f` can borrow `self`.
        let mut kicker = std::mem::take(&mut self.kicker);
        let r = match kicker.arm(Some(deadline), flag) {
            Ok(_guard) => Ok(f(self)),
            Err(detail) => Err(AccelError::Host {
                what: "arming the vCPU kick",
                detail,
            }),
        };
        self.kicker = kicker;
        r
    }
}

impl Accelerator for KvmAccel {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn describe(&self) -> String {
        format!("kvm ({})", self.probe.short())
    }

    fn set_state(&mut self, state: &CpuState) -> Result<(), AccelError> {
        self.vcpu.set_state(state)
    }

    fn get_state(&mut self) -> Result<CpuState, AccelError> {
        self.vcpu.get_state()
    }

    /// Runs until an exit the machine must handle. `slice.insn_limit` is
    /// ignored: KVM does not count instructions.
    fn run(
        &mut self,
        platform: &mut dyn Platform,
        slice: RunSlice,
    ) -> Result<VcpuExit, AccelError> {
        // Every slice lets the guest run a little, even when the deadline
        // has already passed, so the guest makes progress however late the
        // machine is (the interpreter likewise runs a chunk first).
        let slice = RunSlice {
            deadline: slice.deadline.map(|d| d.max(Instant::now() + MIN_SLICE)),
            ..slice
        };
        let flag = self.vcpu.immediate_exit_ptr();
        let _armed = self
            .kicker
            .arm(slice.deadline, flag)
            .map_err(|detail| AccelError::Host {
                what: "arming the vCPU kick",
                detail,
            })?;
        self.vcpu.run(platform, slice)
    }

    fn set_trace(&mut self, trace: TraceFlags) {
        self.vcpu.trace = trace;
    }

    /// KVM does not count guest instructions.
    fn instructions(&self) -> Option<u64> {
        None
    }

    fn stats(&self) -> &ExitStats {
        &self.vcpu.stats
    }
}
