//! `--virt hw`: hardware-assisted virtualization (Intel VT-x with EPT),
//! modelled in software.
//!
//! The guest kernel runs in modelled **VMX non-root mode**: on the real
//! (interpreted) CPU, at its real CPL 0, with its own IDT, GDT and page
//! tables — its state *is* the CPU's state, as a VMCS guest-state area is
//! what the processor runs on between VM entry and VM exit. Two things
//! differ from running it bare:
//!
//! * **Memory.** Every guest-physical address — each entry the guest's
//!   own page walk reads, and the final access — goes through a nested
//!   (EPT-style) table built from the p2m ([`mmu::NestedTables`], the
//!   modelled EPTP). A TLB miss costs the 2-D walk: up to 24 memory
//!   references for 4-level guest tables over a 4-level nested table
//!   ([`walk2d`]). Guest page-table writes are plain memory writes: no
//!   exit, unlike shadow paging.
//! * **Exits.** The execution controls of a VMCS-like structure
//!   ([`vmcs::Vmcs`]) decide which events leave the guest; the CPU stops
//!   *before* the event takes effect and the monitor ("root mode", this
//!   module) handles it and resumes the guest.
//!
//! Exit handling: most exiting instructions are executed for the guest
//! with [`cpu::Cpu::step_bypass`] — exact, because guest state = real
//! state, and the devices are the machine's own. CPUID (the hypervisor
//! leaves), HLT (the vCPU sleeps in the monitor) and VMCALL (hypercalls)
//! are emulated here. External interrupts exit ("external-interrupt
//! exiting", acknowledged on exit) and are injected through the guest's
//! IDT (VT-x event injection), or held until the guest opens an interrupt
//! window. (Real VT-x exits on an external interrupt whatever RFLAGS.IF
//! says; the interpreter acknowledges one only where it could deliver it,
//! so the held-interrupt path is the general mechanism, rarely taken.)
//!
//! Not modelled: APIC virtualization (LAPIC accesses are EPT violations
//! on the device page, emulated one by one), the VMX-preemption timer,
//! nested VMX (CPUID does not offer VMX), unrestricted-guest details
//! (real mode runs as the interpreter runs it). CR8 accesses reach the
//! platform directly, as with a TPR shadow.

pub mod vmcs;
pub mod walk2d;

#[cfg(test)]
mod tests;

use super::{MachineMemory, MonitorStats, TrapCause};
use crate::{AccelError, Accelerator, ExitStats, RunSlice, VcpuExit};
use cpu::state::rflags;
use cpu::{
    Cpu, CpuEvent, CpuExit, CpuState, ExitReason, IntKind, Platform, TraceFlags, TrapEvent,
    TrapTranslation, VmExit,
};
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use mmu::{GuestPhysAddr, GuestRam, NestedTables, P2m, PhysLayout};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use vmcs::{proc1, InsnFacts, LmswSource, Vmcs};
pub use walk2d::{walk_2d, Walk2d, Walk2dLevel};

/// Guest instructions between two looks at the host clock when no exit
/// comes sooner (as tcg's chunk).
const CHUNK: u64 = 20_000;

/// Bound on interrupts held for injection (one per vector).
const MAX_HELD_IRQS: usize = 256;

/// The signature of CPUID leaf 0x4000_0000 under `--virt hw`: a modelled
/// VT-x, *not* the paravirtual ABI's "RingsideVMM".
pub const HW_SIGNATURE: &[u8; 12] = b"RingsideVMX\0";
/// Hypercall numbers the hw monitor knows.
pub const HC_NOP: u64 = 0;

/// The monitor for `--virt hw`.
pub struct HwMonitor {
    cpu: Cpu,
    ram: Arc<GuestRam>,
    p2m: Arc<P2m>,
    guest: PhysLayout,
    nested: NestedTables,
    vmcs: Vmcs,
    stats: ExitStats,
    mstats: MonitorStats,
    trace: TraceFlags,
    /// Interrupts acknowledged on exit that wait for the guest's
    /// interrupt window (pending VM-entry event injections), oldest
    /// first. At most [`MAX_HELD_IRQS`]: the controller acknowledges at
    /// most one per exit, and one exit per vector is possible at a time.
    held_irqs: VecDeque<u8>,
    /// Instructions the monitor completed for the guest itself (HLT,
    /// VMCALL); `step_bypass` counts its own in the CPU.
    emulated_retired: u64,
    /// Coarse interpreter exits that VT-x would not have taken (a CR
    /// write leaving the owned bits alone, an MSR with a clear bitmap
    /// bit): executed without counting an exit.
    passthrough: u64,
}

/// Whether an exit handler lets the guest go on.
type Handled = Option<VcpuExit>;

impl HwMonitor {
    /// Enter non-root mode over `mem`: build the nested tables from the
    /// p2m in monitor frames, program the VMCS, install its intercepts.
    pub fn new(mut mem: MachineMemory) -> Result<Self, AccelError> {
        let nested = NestedTables::build(&mem.ram, &mem.p2m, &mut mem.pool).map_err(|_| {
            AccelError::BadState(
                "--virt hw: the monitor's frame pool is too small for the nested tables".into(),
            )
        })?;
        let mut cpu = Cpu::new(mem.ram.clone(), mem.layout);
        cpu.set_stage2(Some(Arc::new(nested)));
        let vmcs = Vmcs::kvm_defaults(nested.root.0);
        cpu.set_intercepts(Some(vmcs.to_intercepts()));
        Ok(HwMonitor {
            cpu,
            ram: mem.ram.clone(),
            guest: mem.p2m.guest_layout(),
            p2m: mem.p2m.clone(),
            nested,
            vmcs,
            stats: ExitStats::default(),
            mstats: MonitorStats::default(),
            trace: TraceFlags::default(),
            held_irqs: VecDeque::new(),
            emulated_retired: 0,
            passthrough: 0,
        })
    }

    /// The control structure (its exit-information fields describe the
    /// last exit).
    pub fn vmcs(&self) -> &Vmcs {
        &self.vmcs
    }

    /// The nested table (the EPTP's root).
    pub fn nested(&self) -> NestedTables {
        self.nested
    }

    /// Machine memory.
    pub fn ram(&self) -> &Arc<GuestRam> {
        &self.ram
    }

    /// The 2-D walk of `va` under the guest's current paging registers.
    pub fn walk_2d(&self, va: u64) -> Walk2d {
        walk_2d(
            &self.ram,
            &self.nested,
            &walk2d::paging_regs(&self.cpu.state),
            va,
        )
    }

    /// Coarse interpreter exits VT-x would not have taken (not counted
    /// as exits; see the vmcs module doc).
    pub fn passthrough_accesses(&self) -> u64 {
        self.passthrough
    }

    /// The guest's physical layout (which GPAs are RAM).
    pub fn guest_layout(&self) -> PhysLayout {
        self.guest
    }

    /// Direct access to the CPU (tests, the TUI).
    pub fn cpu(&mut self) -> &mut Cpu {
        &mut self.cpu
    }

    // ---- the run loop ----

    /// Run guest code until the machine must act.
    fn run_guest(&mut self, plat: &mut dyn Platform, slice: RunSlice) -> VcpuExit {
        loop {
            let mut budget = CHUNK;
            if let Some(limit) = slice.insn_limit {
                let done = self.instructions_retired();
                if done >= limit {
                    return VcpuExit::InsnLimit;
                }
                budget = budget.min(limit - done);
            }
            if self.vmcs.proc_based & proc1::INTR_WINDOW_EXITING != 0 {
                if let Some(v) = self.window_step(plat) {
                    return v;
                }
                if slice.deadline.is_some_and(|d| Instant::now() >= d) {
                    return VcpuExit::SliceEnd;
                }
                continue;
            }
            let t0 = Instant::now();
            let exit = self.cpu.run(plat, budget);
            let t1 = Instant::now();
            self.mstats.guest_time += t1 - t0;
            let now = match exit {
                CpuExit::Budget => t1,
                CpuExit::VmExit(e) => {
                    let r = self.handle_exit(plat, e);
                    let t2 = Instant::now();
                    self.mstats.monitor_time += t2 - t1;
                    if let Some(v) = r {
                        return v;
                    }
                    t2
                }
                other => return self.plain_exit(other),
            };
            if slice.deadline.is_some_and(|d| now >= d) {
                return VcpuExit::SliceEnd;
            }
        }
    }

    /// Interrupt-window exiting is on (an interrupt waits for injection):
    /// if the window is open, that is the exit, and the held interrupt is
    /// injected; otherwise the guest runs one instruction, the hardware
    /// looking at the window at every boundary.
    fn window_step(&mut self, plat: &mut dyn Platform) -> Handled {
        let s = &self.cpu.state;
        if s.rflags & rflags::IF != 0 && !s.intr.shadow {
            let rip = s.rip;
            let t = Instant::now();
            self.count(TrapCause::InterruptWindow);
            let vector = self.held_irqs.pop_front();
            if self.held_irqs.is_empty() {
                self.vmcs.proc_based &= !proc1::INTR_WINDOW_EXITING;
            }
            if self.wants_events() {
                let detail = format!(
                    "exit 7 INTERRUPT_WINDOW (inject vector {})",
                    vector.map_or("none".into(), |v| format!("{v:#x}"))
                );
                self.emit(plat, TrapCause::InterruptWindow, rip, detail, None);
            }
            let r = vector.and_then(|v| self.inject(plat, v, IntKind::External, None, None));
            self.mstats.monitor_time += t.elapsed();
            return r;
        }
        let t0 = Instant::now();
        let exit = self.cpu.step(plat);
        let t1 = Instant::now();
        self.mstats.guest_time += t1 - t0;
        match exit {
            CpuExit::Budget => None,
            CpuExit::VmExit(e) => {
                let r = self.handle_exit(plat, e);
                self.mstats.monitor_time += t1.elapsed();
                r
            }
            other => Some(self.plain_exit(other)),
        }
    }

    /// A CPU exit that is not a VM exit: HLT state, stop, triple fault.
    /// (The vCPU sits in the HLT state the HLT exit put it in.)
    fn plain_exit(&mut self, exit: CpuExit) -> VcpuExit {
        if matches!(exit, CpuExit::Shutdown(_)) {
            self.stats.bump("shutdown");
        }
        crate::tcg::cpu_exit_to_vcpu(&self.cpu, exit)
    }

    fn instructions_retired(&self) -> u64 {
        self.cpu.instructions() + self.emulated_retired
    }

    // ---- exit handling ("root mode") ----

    /// Handle one VM exit. `None`: resume the guest.
    fn handle_exit(&mut self, plat: &mut dyn Platform, e: VmExit) -> Handled {
        let facts = self.insn_facts(&e);
        self.vmcs.exit = vmcs::exit_info(&e, &facts);
        match e.reason {
            ExitReason::Io { .. } => {
                self.exit_event(plat, &e, TrapCause::Io, &facts, None);
                self.emulate(plat)
            }
            ExitReason::CrAccess { cr, write } => self.cr_access(plat, &e, &facts, cr, write),
            ExitReason::Msr { index, write } => {
                if !self.vmcs.msr_exits(index, write) {
                    self.passthrough += 1;
                    return self.emulate_silently(plat);
                }
                self.exit_event(plat, &e, TrapCause::Privileged, &facts, None);
                self.emulate(plat)
            }
            ExitReason::Cpuid { leaf, .. } => self.cpuid(plat, &e, &facts, leaf),
            ExitReason::Hlt => {
                self.exit_event(plat, &e, TrapCause::Hlt, &facts, None);
                self.skip_insn(&e);
                self.emulated_retired += 1;
                self.mstats.emulated += 1;
                self.cpu.state.halted = true;
                Some(VcpuExit::Hlt {
                    interrupts_enabled: self.cpu.state.rflags & rflags::IF != 0,
                })
            }
            ExitReason::ExternalInterrupt { vector } => {
                self.exit_event(plat, &e, TrapCause::ExternalInterrupt, &facts, None);
                let s = &self.cpu.state;
                if s.rflags & rflags::IF != 0 && !s.intr.shadow && self.held_irqs.is_empty() {
                    self.inject(plat, vector, IntKind::External, None, None)
                } else {
                    // Not injectable now (or older ones wait): hold it
                    // and ask for an exit when the window opens.
                    if self.held_irqs.len() < MAX_HELD_IRQS {
                        self.held_irqs.push_back(vector);
                    }
                    self.vmcs.proc_based |= proc1::INTR_WINDOW_EXITING;
                    None
                }
            }
            ExitReason::Vmcall => {
                self.exit_event(plat, &e, TrapCause::Hypercall, &facts, None);
                self.hypercall(plat, &e)
            }
            ExitReason::Exception {
                vector,
                error_code,
                cr2,
            } => {
                self.exit_event(plat, &e, TrapCause::Exception, &facts, None);
                // Reflect it: the guest's IDT handles it as if no monitor
                // had looked (VM-entry event injection).
                let kind = if vector == cpu::fault::vector::NMI {
                    IntKind::Nmi
                } else {
                    IntKind::Exception
                };
                self.inject(plat, vector, kind, error_code, cr2)
            }
            ExitReason::EptViolation { gpa, .. } => {
                if self.p2m.lookup(GuestPhysAddr(gpa)).is_some() {
                    // All guest RAM is mapped RWX: a violation on RAM is
                    // a monitor bug, not guest behaviour.
                    return Some(VcpuExit::MonitorStop {
                        reason: format!(
                            "--virt hw: EPT violation on guest RAM {gpa:#x} at rip {:#x} (nested table out of step with the p2m)",
                            e.rip
                        ),
                    });
                }
                let translation = Some(TrapTranslation {
                    va: facts.linear.unwrap_or(0),
                    pa: Some(gpa),
                    ma: None,
                });
                self.exit_event(plat, &e, TrapCause::Mmio, &facts, translation);
                // A device (or nothing: all-ones / dropped) behind the
                // GPA; never a machine frame outside the p2m.
                self.emulate(plat)
            }
            ExitReason::Invlpg { .. } => {
                self.exit_event(plat, &e, TrapCause::Cr3Invlpg, &facts, None);
                self.emulate(plat)
            }
            ExitReason::Rdtsc => {
                self.exit_event(plat, &e, TrapCause::Privileged, &facts, None);
                self.emulate(plat)
            }
            ExitReason::SoftwareInterrupt { .. } | ExitReason::Sensitive { .. } => {
                Some(VcpuExit::MonitorStop {
                    reason: format!(
                        "--virt hw: {} exit at rip {:#x}, which the VMCS never enables",
                        e.reason.name(),
                        e.rip
                    ),
                })
            }
        }
    }

    /// MOV to/from CR, CLTS, LMSW. A write that leaves the host-owned bits
    /// as the read shadow says is no VT-x exit: executed silently.
    fn cr_access(
        &mut self,
        plat: &mut dyn Platform,
        e: &VmExit,
        facts: &InsnFacts,
        cr: u8,
        write: bool,
    ) -> Handled {
        if write {
            let exits = if facts.clts {
                self.vmcs.clts_exits()
            } else if let Some(l) = facts.lmsw {
                self.vmcs.lmsw_exits(l.value)
            } else if let Some(g) = facts.gpr {
                let v = self.cpu.state.gpr.get(usize::from(g)).copied().unwrap_or(0);
                self.vmcs.cr_write_exits(cr, v)
            } else {
                true
            };
            if !exits {
                self.passthrough += 1;
                return self.emulate_silently(plat);
            }
        }
        let cause = if cr == 3 {
            TrapCause::Cr3Invlpg
        } else {
            TrapCause::Privileged
        };
        self.exit_event(plat, e, cause, facts, None);
        let r = self.emulate(plat);
        self.sync_read_shadows();
        r
    }

    /// After the monitor changed CR0/CR4 for the guest, the read shadows
    /// follow (the guest reads its own values of the owned bits).
    fn sync_read_shadows(&mut self) {
        self.vmcs.cr0_read_shadow = self.cpu.state.cr0;
        self.vmcs.cr4_read_shadow = self.cpu.state.cr4;
    }

    /// CPUID: the CPU's model, executed for the guest, then the
    /// hypervisor's additions: leaf 1 ECX[31] ("hypervisor present"),
    /// leaves 0x4000_0000+ (the "RingsideVMX" signature).
    fn cpuid(
        &mut self,
        plat: &mut dyn Platform,
        e: &VmExit,
        facts: &InsnFacts,
        leaf: u32,
    ) -> Handled {
        let before = self.cpu.instructions();
        let r = self.emulate(plat);
        let mut out = None;
        if self.cpu.instructions() == before + 1 {
            let g = &mut self.cpu.state.gpr;
            let mut regs = [g[0] as u32, g[3] as u32, g[1] as u32, g[2] as u32];
            match leaf {
                1 => regs[2] |= 1 << 31,
                0x4000_0000 => {
                    let sig = HW_SIGNATURE;
                    let w =
                        |i: usize| u32::from_le_bytes([sig[i], sig[i + 1], sig[i + 2], sig[i + 3]]);
                    regs = [0x4000_0001, w(0), w(4), w(8)];
                }
                0x4000_0001..=0x4000_00ff => regs = [0; 4],
                _ => {}
            }
            g[0] = u64::from(regs[0]);
            g[3] = u64::from(regs[1]);
            g[1] = u64::from(regs[2]);
            g[2] = u64::from(regs[3]);
            out = Some(regs);
        }
        // The event is sent after emulation so that it can show the result.
        if self.wants_events() {
            let detail = self.detail(e, facts, out);
            self.emit(plat, TrapCause::Cpuid, e.rip, detail, None);
        }
        self.count(TrapCause::Cpuid);
        r
    }

    /// VMCALL: HC_NOP returns 0, anything else -1 (unknown); from CPL > 0
    /// -3 (not permitted), as KVM refuses hypercalls from guest user mode.
    fn hypercall(&mut self, plat: &mut dyn Platform, e: &VmExit) -> Handled {
        let rax = if self.cpu.state.cpl() != 0 {
            (-3i64) as u64
        } else if self.cpu.state.gpr[0] == HC_NOP {
            0
        } else {
            (-1i64) as u64
        };
        self.cpu.state.gpr[0] = rax;
        self.skip_insn(e);
        self.emulated_retired += 1;
        self.mstats.emulated += 1;
        self.single_step_trap(plat)
    }

    /// The emulated instruction completed with RFLAGS.TF set: the
    /// single-step #DB it owes.
    fn single_step_trap(&mut self, plat: &mut dyn Platform) -> Handled {
        if self.cpu.state.rflags & rflags::TF == 0 {
            return None;
        }
        self.cpu.state.dr[6] |= 1 << 14; // DR6.BS
        self.inject(plat, cpu::fault::vector::DB, IntKind::Exception, None, None)
    }

    /// RIP past the exiting instruction, wrapped to the code size.
    fn skip_insn(&mut self, e: &VmExit) {
        let mask = match self.cpu.state.code_bitness() {
            64 => u64::MAX,
            32 => 0xffff_ffff,
            _ => 0xffff,
        };
        self.cpu.state.rip = e.rip.wrapping_add(u64::from(e.insn_len)) & mask;
        self.cpu.state.intr.shadow = false;
    }

    /// Execute the exiting instruction for the guest (intercepts off).
    fn emulate(&mut self, plat: &mut dyn Platform) -> Handled {
        self.mstats.emulated += 1;
        self.emulate_silently(plat)
    }

    fn emulate_silently(&mut self, plat: &mut dyn Platform) -> Handled {
        let r = self.cpu.step_bypass(plat);
        match r {
            CpuExit::Budget | CpuExit::Halted => None,
            other => Some(self.plain_exit(other)),
        }
    }

    /// VM-entry event injection through the guest's IDT.
    fn inject(
        &mut self,
        plat: &mut dyn Platform,
        vector: u8,
        kind: IntKind,
        error_code: Option<u32>,
        cr2: Option<u64>,
    ) -> Handled {
        self.cpu.state.halted = false;
        self.cpu
            .inject_event(plat, vector, kind, error_code, cr2)
            .map(|exit| self.plain_exit(exit))
    }

    // ---- counting and reporting ----

    fn count(&mut self, cause: TrapCause) {
        self.mstats.count(cause);
        self.stats.bump(cause.key());
    }

    fn wants_events(&self) -> bool {
        self.trace.int || self.trace.mmu
    }

    /// Count an exit and report it (when tracing).
    fn exit_event(
        &mut self,
        plat: &mut dyn Platform,
        e: &VmExit,
        cause: TrapCause,
        facts: &InsnFacts,
        translation: Option<TrapTranslation>,
    ) {
        self.count(cause);
        if self.wants_events() {
            let detail = self.detail(e, facts, None);
            self.emit(plat, cause, e.rip, detail, translation);
        }
    }

    /// "exit 30 IO_INSTRUCTION qual=0x3f80000 (out 0x3f8, 1 byte)".
    fn detail(&self, e: &VmExit, facts: &InsnFacts, cpuid_out: Option<[u32; 4]>) -> String {
        let num = e
            .reason
            .vmx_basic_reason()
            .map_or("?".to_string(), |n| n.to_string());
        let mut s = format!(
            "exit {num} {} qual={:#x} ({})",
            e.reason.name(),
            self.vmcs.exit.qualification,
            vmcs::describe_exit(&e.reason, facts, cpuid_out)
        );
        if let Some(gpa) = self.vmcs.exit.guest_physical {
            let what = if is_device_gpa(&self.guest, gpa) {
                "device"
            } else {
                "no device: reads all-ones, writes dropped"
            };
            s.push_str(&format!(" gpa={gpa:#x} [{what}]"));
        }
        s
    }

    fn emit(
        &self,
        plat: &mut dyn Platform,
        cause: TrapCause,
        rip: u64,
        detail: String,
        translation: Option<TrapTranslation>,
    ) {
        let cpl = self.cpu.state.cpl();
        plat.event(&CpuEvent::Trap(TrapEvent {
            cause: event_cause(cause),
            rip,
            mode: "hw",
            guest_cpl: cpl,
            real_cpl: cpl,
            detail,
            translation,
        }));
    }

    // ---- looking at the exiting instruction ----

    /// Decode the exiting instruction where its qualification or the
    /// VT-x exit condition needs more than the exit carries.
    fn insn_facts(&self, e: &VmExit) -> InsnFacts {
        let mut f = InsnFacts::default();
        match e.reason {
            ExitReason::CrAccess { .. } | ExitReason::Io { .. } if e.insn_len > 0 => {}
            // A fetch: the linear address is the code's.
            ExitReason::EptViolation {
                access: mmu::AccessKind::Execute,
                gpa,
            } => {
                let lin = self.code_linear(e.rip);
                f.linear = Some(on_page_of(lin, gpa));
                return f;
            }
            ExitReason::EptViolation { .. } => {}
            _ => return f,
        }
        let Some(insn) = self.decode_at(e.rip) else {
            return f;
        };
        match insn.mnemonic() {
            Mnemonic::Clts => f.clts = true,
            Mnemonic::Lmsw => {
                f.lmsw = match insn.op0_kind() {
                    OpKind::Register => Some(LmswSource {
                        value: self.reg_value(insn.op0_register()).unwrap_or(0) as u16,
                        memory: false,
                    }),
                    _ => self.mem_operand(&insn).map(|lin| {
                        let mut b = [0u8; 2];
                        let regs = walk2d::paging_regs(&self.cpu.state);
                        walk2d::read_guest_virt(&self.ram, &self.nested, &regs, lin, &mut b);
                        LmswSource {
                            value: u16::from_le_bytes(b),
                            memory: true,
                        }
                    }),
                };
            }
            Mnemonic::Mov => {
                let r = if insn.op0_register().is_cr() {
                    insn.op1_register()
                } else {
                    insn.op0_register()
                };
                f.gpr = gpr_index(r);
            }
            Mnemonic::In => f.io_immediate = insn.op1_kind() == OpKind::Immediate8,
            Mnemonic::Out => f.io_immediate = insn.op0_kind() == OpKind::Immediate8,
            _ => {}
        }
        if let ExitReason::EptViolation { gpa, .. } = e.reason {
            // The operand whose bytes are on the GPA's page (MOVS has
            // two); an access crossing into the page names the next one.
            let lins: Vec<u64> = self.mem_operands(&insn).collect();
            f.linear = lins
                .iter()
                .find(|&&l| l & 0xfff == gpa & 0xfff)
                .or(lins.first())
                .map(|&l| on_page_of(l, gpa));
        }
        f
    }

    /// The linear address of code at `rip`.
    fn code_linear(&self, rip: u64) -> u64 {
        let s = &self.cpu.state;
        if s.code_bitness() == 64 {
            rip
        } else {
            s.cs().base.wrapping_add(rip) & 0xffff_ffff
        }
    }

    /// The instruction at `rip` (CS-relative), read without side effects.
    fn decode_at(&self, rip: u64) -> Option<Instruction> {
        let s = &self.cpu.state;
        let bits = s.code_bitness();
        let lin = self.code_linear(rip);
        let mut buf = [0u8; 15];
        let regs = walk2d::paging_regs(s);
        let n = walk2d::read_guest_virt(&self.ram, &self.nested, &regs, lin, &mut buf);
        let bytes = buf.get(..n)?;
        let mut d = Decoder::with_ip(bits, bytes, rip, DecoderOptions::NONE);
        let insn = d.decode();
        (!insn.is_invalid()).then_some(insn)
    }

    /// Value of a general or segment register (segment: its base), for
    /// effective-address computation.
    fn reg_value(&self, r: Register) -> Option<u64> {
        let s = &self.cpu.state;
        if r.is_segment_register() {
            // 64-bit mode ignores the ES/CS/SS/DS bases.
            if s.code_bitness() == 64 && !matches!(r, Register::FS | Register::GS) {
                return Some(0);
            }
            let seg = match r {
                Register::ES => cpu::SegReg::Es,
                Register::CS => cpu::SegReg::Cs,
                Register::SS => cpu::SegReg::Ss,
                Register::DS => cpu::SegReg::Ds,
                Register::FS => cpu::SegReg::Fs,
                _ => cpu::SegReg::Gs,
            };
            return Some(s.sreg(seg).base);
        }
        let i = gpr_index(r)?;
        let v = *s.gpr.get(usize::from(i))?;
        let mask = match r.size() {
            1 => 0xff,
            2 => 0xffff,
            4 => 0xffff_ffff,
            _ => u64::MAX,
        };
        Some(v & mask)
    }

    /// The linear address of `insn`'s first memory operand.
    fn mem_operand(&self, insn: &Instruction) -> Option<u64> {
        self.mem_operands(insn).next()
    }

    /// The linear addresses of `insn`'s memory operands.
    fn mem_operands<'a>(&'a self, insn: &'a Instruction) -> impl Iterator<Item = u64> + 'a {
        (0..insn.op_count()).filter_map(move |op| {
            let k = insn.op_kind(op);
            let is_mem = matches!(
                k,
                OpKind::Memory
                    | OpKind::MemorySegSI
                    | OpKind::MemorySegESI
                    | OpKind::MemorySegRSI
                    | OpKind::MemorySegDI
                    | OpKind::MemorySegEDI
                    | OpKind::MemorySegRDI
                    | OpKind::MemoryESDI
                    | OpKind::MemoryESEDI
                    | OpKind::MemoryESRDI
            );
            if !is_mem {
                return None;
            }
            insn.virtual_address(op, 0, |r, _, _| self.reg_value(r))
        })
    }
}

/// `lin` moved to the page whose offset matches `gpa`: for an access that
/// crosses into the next page, the part that faulted.
fn on_page_of(lin: u64, gpa: u64) -> u64 {
    if lin & 0xfff == gpa & 0xfff {
        lin
    } else if gpa & 0xfff < lin & 0xfff {
        (lin & !0xfff).wrapping_add(0x1000) | (gpa & 0xfff)
    } else {
        (lin & !0xfff) | (gpa & 0xfff)
    }
}

/// The trap event's cause name: the stable [`TrapCause::key`].
fn event_cause(cause: TrapCause) -> &'static str {
    cause.key()
}

/// Index 0-15 of a general register (any size), as the qualification
/// encodes it; `None` for AH..BH and non-GPRs.
fn gpr_index(r: Register) -> Option<u8> {
    if !r.is_gpr() || matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) {
        return None;
    }
    let full = r.full_register();
    let i = (full as u32).checked_sub(Register::RAX as u32)?;
    (i < 16).then_some(i as u8)
}

impl Accelerator for HwMonitor {
    fn name(&self) -> &'static str {
        "tcg"
    }

    fn describe(&self) -> String {
        "tcg + monitor (hw: modelled VT-x non-root, nested paging)".to_string()
    }

    fn set_state(&mut self, state: &CpuState) -> Result<(), AccelError> {
        self.cpu.set_state(state);
        self.sync_read_shadows();
        Ok(())
    }

    fn get_state(&mut self) -> Result<CpuState, AccelError> {
        Ok(self.cpu.get_state())
    }

    fn run(
        &mut self,
        platform: &mut dyn Platform,
        slice: RunSlice,
    ) -> Result<VcpuExit, AccelError> {
        Ok(self.run_guest(platform, slice))
    }

    fn step(&mut self, platform: &mut dyn Platform) -> Result<VcpuExit, AccelError> {
        if self.vmcs.proc_based & proc1::INTR_WINDOW_EXITING != 0 {
            return Ok(self.window_step(platform).unwrap_or(VcpuExit::SliceEnd));
        }
        let t0 = Instant::now();
        let exit = self.cpu.step(platform);
        let t1 = Instant::now();
        self.mstats.guest_time += t1 - t0;
        Ok(match exit {
            CpuExit::VmExit(e) => {
                let r = self.handle_exit(platform, e);
                self.mstats.monitor_time += t1.elapsed();
                r.unwrap_or(VcpuExit::SliceEnd)
            }
            other => self.plain_exit(other),
        })
    }

    fn can_step(&self) -> bool {
        true
    }

    fn set_trace(&mut self, trace: TraceFlags) {
        self.trace = trace;
        self.cpu.trace = trace;
    }

    fn instructions(&self) -> Option<u64> {
        Some(self.instructions_retired())
    }

    fn stats(&self) -> &ExitStats {
        &self.stats
    }

    fn monitor_stats(&self) -> Option<MonitorStats> {
        Some(self.mstats.clone())
    }

    fn cpu_stats(&self) -> Option<cpu::CpuStats> {
        Some(self.cpu.stats())
    }

    /// The guest runs at its own CPL: nothing to show.
    fn walk_2d_lines(&self, va: u64) -> Option<Vec<String>> {
        Some(self.walk_2d(va).lines())
    }

    fn real_cpl(&self) -> Option<u8> {
        None
    }
}

/// Is `pa` a device address of the guest's layout (the MMIO hole) rather
/// than nothing at all? For reports.
pub fn is_device_gpa(guest: &PhysLayout, pa: u64) -> bool {
    (mmu::layout::MMIO_HOLE_START..mmu::layout::MMIO_HOLE_END).contains(&pa)
        && !matches!(guest.translate(GuestPhysAddr(pa)), mmu::PhysTarget::Ram(_))
}
