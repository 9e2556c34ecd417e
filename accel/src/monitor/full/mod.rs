//! The trap-and-emulate monitor: `--virt full`, `--virt trap-only` and
//! `--virt para` (docs/VIRTUALIZATION.md).
//!
//! Two interpreter CPUs share machine memory:
//!
//! * the **real CPU** runs guest code, deprivileged (the guest kernel at
//!   CPL 1, see [`vcpu`]), over the monitor's shadow page tables
//!   ([`shadow`]) and descriptor tables ([`tables`]). Every exception,
//!   software interrupt and external interrupt exits to the monitor
//!   instead of going through an IDT; in `full` mode the block scan also
//!   redirects sensitive-but-unprivileged instructions (binary
//!   translation).
//! * the **virtual CPU** holds what the guest believes (its CR0/CR3/CR4/
//!   EFER, descriptor-table registers, IF/IOPL, CPL 0) and is the
//!   monitor's instruction emulator, as KVM uses its x86 emulator: to
//!   emulate a trapped instruction the monitor copies the real registers
//!   in, executes that one instruction with full architectural semantics
//!   on the virtual state (through the guest's page tables and the p2m,
//!   to the real devices), and derives the real state back. A fault the
//!   instruction raises is delivered through the guest's IDT: reflection.
//!
//! This file: the [`FullMonitor`] accelerator, the run loop and the exit
//! dispatch. [`para`] has the hypercalls, [`events`] the trap counting.

pub mod events;
pub mod para;
pub mod platform;
pub mod shadow;
pub mod tables;
pub mod vcpu;

#[cfg(test)]
mod tests;

use crate::monitor::{MachineMemory, MonitorStats, TrapCause, VirtMode};
use crate::{AccelError, Accelerator, ExitStats, RunSlice, VcpuExit};
use cpu::state::rflags;
use cpu::{Cpu, CpuExit, CpuState, ExitReason, IntKind, Intercepts, Platform, TraceFlags};
use cpu::{TrapTranslation, VmExit};
use events::{TrapLog, TrapSite};
use iced_x86::{Instruction, Mnemonic, Register};
use mmu::paging::{pf_ec, Access, AccessKind};
use mmu::{GuestRam, MachineAddr, P2m};
use platform::{GuestPlatform, IrqGate};
use shadow::{Fill, Shadow};
use std::sync::Arc;
use std::time::Instant;
use tables::RealTables;

/// Guest instructions run between two looks at the host clock (as tcg).
const CHUNK: u64 = 20_000;
/// A hidden fault that comes back this many times in a row at the same
/// place is emulated instead (a guard against a shadow that can't satisfy
/// the access: the guest must progress whatever it does).
const REFAULT_LIMIT: u32 = 3;

/// The intercept controls for `mode`: the real CPU's IDT is the monitor's.
pub fn intercepts(mode: VirtMode) -> Intercepts {
    Intercepts {
        exceptions: u32::MAX,
        software_interrupts: true,
        external_interrupts: true,
        sensitive: mode == VirtMode::Full,
        cpuid: mode == VirtMode::Para,
        ..Intercepts::default()
    }
}

/// The system registers whose change needs the monitor's attention.
#[derive(Clone, Copy, PartialEq, Eq)]
struct SysRegs {
    gdtr: cpu::DescTable,
    ldtr: u16,
    tr: u16,
}

impl SysRegs {
    fn of(s: &CpuState) -> Self {
        SysRegs {
            gdtr: s.gdtr,
            ldtr: s.ldtr.selector,
            tr: s.tr.selector,
        }
    }
}

/// What one emulation on the virtual CPU led to.
struct Emulated {
    /// The run must stop (HLT, debug-exit, triple fault, monitor stop).
    exit: Option<VcpuExit>,
    /// It ended in a delivery through the guest's IDT.
    delivered: Option<(u8, IntKind)>,
    /// It re-enabled interrupts with one waiting.
    irq_window: bool,
}

/// The trap-and-emulate monitor as an [`Accelerator`].
pub struct FullMonitor {
    mode: VirtMode,
    real: Cpu,
    vcpu: Cpu,
    ram: Arc<GuestRam>,
    p2m: Arc<P2m>,
    shadow: Shadow,
    tables: RealTables,
    log: TrapLog,
    /// Set once the monitor can't go on: every later run reports it.
    stop: Option<String>,
    /// An interrupt acknowledged while the guest could not take it.
    held_irq: Option<u8>,
    /// para: machine address of the registered shared page.
    shared: Option<u64>,
    /// The last hidden fault (rip, va page, error code) and its repeats.
    last_fault: (u64, u64, u32, u32),
}

impl FullMonitor {
    /// A monitor in `mode` over `mem` (the guest image already loaded).
    pub fn new(mode: VirtMode, mem: MachineMemory) -> Result<Self, AccelError> {
        let MachineMemory {
            ram,
            layout,
            p2m,
            pool,
        } = mem;
        let shadow = Shadow::new(ram.clone(), p2m.clone(), pool).ok_or_else(|| {
            AccelError::BadState("the monitor's frame pool can't hold its own tables".into())
        })?;
        let mut real = Cpu::new(ram.clone(), layout);
        real.set_intercepts(Some(intercepts(mode)));
        let mut vcpu = Cpu::new(ram.clone(), layout);
        vcpu.set_stage2(Some(p2m.clone()));
        vcpu.set_write_log(true);
        vcpu.trace = TraceFlags {
            int: true,
            ..TraceFlags::default()
        };
        let tables = tables::build(&ram, &shadow.area, &[]);
        Ok(FullMonitor {
            mode,
            real,
            vcpu,
            ram,
            p2m,
            shadow,
            tables,
            log: TrapLog::new(mode.name()),
            stop: None,
            held_irq: None,
            shared: None,
            last_fault: (0, 0, 0, 0),
        })
    }

    /// The guest's virtual CPU state (registers merged in).
    pub fn guest_state(&mut self) -> CpuState {
        self.sync_in();
        self.vcpu.get_state()
    }

    /// The real CPU's state (what the hardware would hold).
    pub fn real_state(&self) -> &CpuState {
        &self.real.state
    }

    /// The shadow paging (tests, displays).
    pub fn shadow(&mut self) -> &mut Shadow {
        &mut self.shadow
    }

    /// Whether the guest can take a maskable interrupt now.
    fn gate(&self) -> IrqGate {
        match (self.mode, self.shared) {
            (VirtMode::Para, Some(ma)) => IrqGate::SharedMask(self.ram.clone(), ma),
            _ => IrqGate::Fixed(self.vcpu.state.rflags & rflags::IF != 0),
        }
    }

    fn irq_open(&self) -> bool {
        self.gate().open()
    }

    /// Real → virtual: what guest code changed while it ran.
    fn sync_in(&mut self) {
        vcpu::absorb_real(&self.real.state, &mut self.vcpu.state);
    }

    /// Virtual → real: the shadow root for the guest's paging, the real
    /// registers. `Err` when the guest did something the monitor can't
    /// virtualize.
    fn sync_out(&mut self) -> Result<(), String> {
        if let Some(why) = vcpu::unsupported(&self.vcpu.state) {
            return Err(why);
        }
        let regs = vcpu::paging_regs(&self.vcpu.state);
        let key = shadow::RootKey::of(&regs);
        match self.shadow.current_key() {
            Some(k) if k == key => self.shadow.set_current_regs(&regs),
            current => {
                if current.is_some_and(|k| !k.same_format(&key)) {
                    // CR0/CR4/EFER paging change: every shadow is stale.
                    self.shadow.drop_all();
                }
                if self.shadow.activate(&regs).is_err() {
                    self.shadow.drop_all();
                    self.shadow.activate(&regs).map_err(|_| {
                        "the monitor's frame pool is too small for one shadow root".to_string()
                    })?;
                }
            }
        }
        let root = self.shadow.current_pml4().unwrap_or(0);
        vcpu::derive_real(&self.vcpu.state, &mut self.real.state, root, &self.tables);
        self.apply_stale();
        Ok(())
    }

    /// Flush the real CPU's TLB where shadow entries changed.
    fn apply_stale(&mut self) {
        if self.shadow.stale_all || self.shadow.stale.len() > 64 {
            self.real.flush_tlb_all();
            self.shadow.stale_all = false;
            self.shadow.stale.clear();
        } else {
            for va in self.shadow.stale.drain(..) {
                self.real.flush_tlb_page(va);
            }
        }
    }

    /// Rebuild the shadow GDT from the guest's GDT.
    fn rebuild_tables(&mut self) {
        let gdtr = self.vcpu.state.gdtr;
        let regs = vcpu::paging_regs(&self.vcpu.state);
        let len = usize::from(gdtr.limit) + 1;
        let mut bytes = vec![0u8; len];
        // Page by page: an unmapped part reads as zero (not-present
        // descriptors), which faults on the real CPU and is emulated.
        let mut off = 0usize;
        while off < len {
            let lin = gdtr.base.wrapping_add(off as u64);
            let n = ((4096 - (lin & 0xfff)) as usize).min(len - off);
            if !vcpu::read_linear(&self.ram, &self.p2m, &regs, lin, &mut bytes[off..off + n]) {
                bytes[off..off + n].fill(0);
            }
            off += n;
        }
        self.tables = tables::build(&self.ram, &self.shadow.area, &bytes);
    }

    fn site(&self) -> TrapSite {
        TrapSite {
            rip: self.vcpu.state.rip,
            guest_cpl: self.vcpu.state.cpl(),
            real_cpl: self.real.state.cpl(),
        }
    }

    /// Stop for good with `reason`.
    fn monitor_stop(&mut self, reason: String) -> Option<VcpuExit> {
        self.stop = Some(reason.clone());
        Some(VcpuExit::MonitorStop { reason })
    }

    /// What the virtual CPU's exit means for the run.
    fn vcpu_exit(&mut self, exit: CpuExit) -> Option<VcpuExit> {
        match exit {
            CpuExit::Budget => None,
            CpuExit::Halted => Some(VcpuExit::Hlt {
                interrupts_enabled: self.irq_open(),
            }),
            CpuExit::Stopped => Some(VcpuExit::Stopped),
            CpuExit::Shutdown(f) => {
                self.log.stats.bump("shutdown");
                Some(VcpuExit::Shutdown {
                    reason: format!(
                        "{f} could not be delivered at rip {:#x}",
                        self.vcpu.state.rip
                    ),
                })
            }
            CpuExit::VmExit(e) => self.monitor_stop(format!(
                "the virtual CPU exited ({}) at rip {:#x}",
                e.reason.name(),
                e.rip
            )),
        }
    }

    /// After the virtual CPU ran: keep the real CPU's decoded code and
    /// the shadows coherent with what it wrote. `pt` is the page-table
    /// page an emulated write targeted, with its bytes before.
    fn after_vcpu(&mut self, pt: Option<(u64, Vec<u8>)>) {
        let written = self.vcpu.take_write_log();
        let pt_page = pt.as_ref().map(|(p, _)| *p);
        if let Some((page, before)) = pt {
            self.shadow.invalidate_changed(page, &before);
        }
        for page in written {
            self.real.invalidate_code(MachineAddr(page), 4096);
            if Some(page) != pt_page {
                self.shadow.invalidate_page(page);
            }
        }
    }

    /// Emulate the instruction at the guest's RIP on the virtual CPU
    /// (the real state must be absorbed already).
    fn emulate(
        &mut self,
        plat: &mut dyn Platform,
        insn: Option<&Instruction>,
        pt: Option<(u64, Vec<u8>)>,
    ) -> Emulated {
        let was_open = self.irq_open();
        let before = SysRegs::of(&self.vcpu.state);
        let invlpg = insn
            .filter(|i| i.mnemonic() == Mnemonic::Invlpg)
            .and_then(|i| operand_address(i, &self.vcpu.state));
        let reload_tables = insn.is_some_and(|i| {
            matches!(
                i.mnemonic(),
                Mnemonic::Lgdt | Mnemonic::Ltr | Mnemonic::Lldt
            )
        });
        self.vcpu.state.halted = false;
        // The virtual CPU's TLB caches guest translations; the guest may
        // have changed its tables through the real CPU since.
        self.vcpu.flush_tlb_all();
        let (exit, delivered) = {
            let mut gp = GuestPlatform::new(plat, self.gate(), self.log.trace.int);
            let exit = self.vcpu.step_instruction(&mut gp);
            (exit, gp.delivered)
        };
        self.log.mstats.emulated += 1;
        self.after_vcpu(pt);
        if let Some(va) = invlpg {
            self.shadow.invlpg(va);
        }
        if reload_tables || SysRegs::of(&self.vcpu.state) != before {
            self.rebuild_tables();
        }
        let halted = self.vcpu.state.halted;
        let mut out = Emulated {
            exit: self.vcpu_exit(exit),
            delivered,
            irq_window: false,
        };
        if out.exit.is_none() && halted {
            out.exit = Some(VcpuExit::Hlt {
                interrupts_enabled: self.irq_open(),
            });
        }
        if let Err(why) = self.sync_out() {
            out.exit = self.monitor_stop(why);
        }
        out.irq_window =
            !was_open && self.irq_open() && (self.held_irq.is_some() || plat.interrupt_pending());
        out
    }

    /// Emulate a trapped instruction and count it. `classify` picks the
    /// cause from the instruction and whether it ended in a delivery.
    fn emulate_trap(
        &mut self,
        plat: &mut dyn Platform,
        classify: impl FnOnce(Option<&Instruction>, bool) -> TrapCause,
        pt: Option<(u64, Vec<u8>)>,
        translation: Option<TrapTranslation>,
    ) -> Option<VcpuExit> {
        self.sync_in();
        let insn = vcpu::fetch_insn(&self.ram, &self.p2m, &self.vcpu.state);
        let site = self.site();
        let r = self.emulate(plat, insn.as_ref(), pt);
        let cause = match &r.exit {
            Some(VcpuExit::Hlt { .. }) => TrapCause::Hlt,
            _ => classify(insn.as_ref(), r.delivered.is_some()),
        };
        let wants = self.log.wants_events();
        let text = if wants {
            insn.map_or_else(|| "(undecodable)".to_string(), |i| i.to_string())
        } else {
            String::new()
        };
        let delivered = r.delivered;
        self.log
            .trap(plat, cause, &site, translation, || match delivered {
                Some((v, _)) => format!("{text} -> vector {v:#x} through the guest's IDT"),
                None => text.clone(),
            });
        if r.irq_window {
            let site = self.site();
            self.log
                .trap(plat, TrapCause::InterruptWindow, &site, None, || {
                    format!("{text}: interrupts re-enabled with one pending")
                });
        }
        r.exit
    }

    /// Deliver external interrupt `vector` through the guest's IDT.
    fn deliver_irq(&mut self, plat: &mut dyn Platform, vector: u8) -> Option<VcpuExit> {
        self.sync_in();
        if let (VirtMode::Para, Some(ma)) = (self.mode, self.shared) {
            // Like an interrupt gate clearing IF: mask, and nothing waits.
            let _ = self.ram.write_le(MachineAddr(ma), 1, 1);
            let _ = self.ram.write_le(MachineAddr(ma + 1), 1, 0);
            self.real.invalidate_code(MachineAddr(ma), 2);
        }
        let r = {
            let mut gp = GuestPlatform::new(plat, self.gate(), self.log.trace.int);
            self.vcpu
                .inject_event(&mut gp, vector, IntKind::External, None, None)
        };
        self.after_vcpu(None);
        let exit = r.and_then(|e| self.vcpu_exit(e));
        if let Err(why) = self.sync_out() {
            return self.monitor_stop(why);
        }
        exit
    }

    /// Before running guest code: wake from HLT, deliver a held
    /// interrupt, tell a para guest that one waits.
    fn pre_entry(&mut self, plat: &mut dyn Platform) -> Option<VcpuExit> {
        if self.vcpu.state.halted {
            if self.irq_open() {
                if let Some(v) = self.held_irq.take() {
                    return self.deliver_irq(plat, v);
                }
                if plat.interrupt_pending() {
                    if let Some(v) = plat.ack_interrupt() {
                        let site = self.site();
                        self.log
                            .trap(plat, TrapCause::ExternalInterrupt, &site, None, || {
                                format!("vector {v:#x} wakes the guest from HLT")
                            });
                        return self.deliver_irq(plat, v);
                    }
                }
            }
            return Some(VcpuExit::Hlt {
                interrupts_enabled: self.irq_open(),
            });
        }
        if self.held_irq.is_some() && self.irq_open() {
            if let Some(v) = self.held_irq.take() {
                return self.deliver_irq(plat, v);
            }
        }
        if let (VirtMode::Para, Some(ma)) = (self.mode, self.shared) {
            if !self.irq_open() && (self.held_irq.is_some() || plat.interrupt_pending()) {
                let _ = self.ram.write_le(MachineAddr(ma + 1), 1, 1);
            }
        }
        None
    }

    /// One exit of the real CPU.
    fn handle_exit(&mut self, plat: &mut dyn Platform, e: VmExit) -> Option<VcpuExit> {
        if !matches!(e.reason, ExitReason::Exception { vector: 14, .. }) {
            // Only back-to-back identical faults count as a refault loop.
            self.last_fault = (0, 0, 0, 0);
        }
        match e.reason {
            ExitReason::Exception {
                vector: 14,
                error_code,
                cr2,
            } => self.page_fault(plat, error_code.unwrap_or(0), cr2.unwrap_or(0), e.rip),
            ExitReason::Exception { vector: 6, .. }
                if self.mode == VirtMode::Para && self.is_hypercall() =>
            {
                self.hypercall(plat)
            }
            ExitReason::Exception {
                vector: 6 | 10 | 11 | 12 | 13,
                ..
            } => self.emulate_trap(
                plat,
                |insn, delivered| {
                    insn_class(insn).unwrap_or(if delivered {
                        TrapCause::Exception
                    } else {
                        TrapCause::Privileged
                    })
                },
                None,
                None,
            ),
            ExitReason::Exception {
                vector, error_code, ..
            } => self.reflect(plat, vector, error_code),
            ExitReason::SoftwareInterrupt { .. } => {
                self.emulate_trap(plat, |_, _| TrapCause::Exception, None, None)
            }
            ExitReason::Sensitive { .. } => {
                self.emulate_trap(plat, |_, _| TrapCause::Sensitive, None, None)
            }
            ExitReason::ExternalInterrupt { vector } => {
                self.sync_in();
                let site = self.site();
                self.log
                    .trap(plat, TrapCause::ExternalInterrupt, &site, None, || {
                        format!("vector {vector:#x}")
                    });
                if self.irq_open() {
                    self.deliver_irq(plat, vector)
                } else {
                    self.held_irq = Some(vector);
                    None
                }
            }
            ExitReason::Cpuid { leaf, subleaf } if self.mode == VirtMode::Para => {
                self.cpuid(plat, leaf, subleaf, e.insn_len)
            }
            other => self.monitor_stop(format!(
                "unexpected {} exit at rip {:#x}",
                other.name(),
                e.rip
            )),
        }
    }

    /// Reflect an exception the guest raised to its own IDT.
    fn reflect(
        &mut self,
        plat: &mut dyn Platform,
        vector: u8,
        ec: Option<u32>,
    ) -> Option<VcpuExit> {
        self.sync_in();
        let site = self.site();
        let kind = if vector == 2 {
            IntKind::Nmi
        } else {
            IntKind::Exception
        };
        let r = {
            let mut gp = GuestPlatform::new(plat, self.gate(), self.log.trace.int);
            self.vcpu.inject_event(&mut gp, vector, kind, ec, None)
        };
        self.after_vcpu(None);
        self.log.trap(plat, TrapCause::Exception, &site, None, || {
            format!("vector {vector:#x} reflected to the guest's IDT")
        });
        let exit = r.and_then(|e| self.vcpu_exit(e));
        if let Err(why) = self.sync_out() {
            return self.monitor_stop(why);
        }
        exit
    }

    /// A #PF on the real CPU: a shadow miss, a guest fault, MMIO or a
    /// page-table write.
    fn page_fault(
        &mut self,
        plat: &mut dyn Platform,
        ec: u32,
        va: u64,
        rip: u64,
    ) -> Option<VcpuExit> {
        let kind = if ec & pf_ec::W != 0 {
            AccessKind::Write
        } else if ec & pf_ec::ID != 0 {
            AccessKind::Execute
        } else {
            AccessKind::Read
        };
        let access = Access::new(kind, ec & pf_ec::U != 0);
        let what = match kind {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
            AccessKind::Execute => "fetch",
        };
        let here = (rip, va & !0xfff, ec);
        if (self.last_fault.0, self.last_fault.1, self.last_fault.2) == here {
            self.last_fault.3 += 1;
        } else {
            self.last_fault = (here.0, here.1, here.2, 0);
        }
        let tr = |pa: Option<u64>, ma: Option<u64>| Some(TrapTranslation { va, pa, ma });
        if self.last_fault.3 >= REFAULT_LIMIT {
            self.last_fault.3 = 0;
            return self.emulate_trap(
                plat,
                |_, _| TrapCause::HiddenPageFault,
                None,
                tr(None, None),
            );
        }
        let fill = match self.shadow.fill(va, access) {
            Ok(f) => f,
            Err(_) => {
                self.shadow.drop_all();
                if let Err(why) = self.sync_out() {
                    return self.monitor_stop(why);
                }
                match self.shadow.fill(va, access) {
                    Ok(f) => f,
                    Err(_) => {
                        return self.monitor_stop(
                            "the monitor's frame pool can't hold one shadow walk".into(),
                        )
                    }
                }
            }
        };
        match fill {
            Fill::Installed { pa, ma } => {
                self.apply_stale();
                self.sync_in();
                let site = self.site();
                self.log.trap(
                    plat,
                    TrapCause::HiddenPageFault,
                    &site,
                    tr(Some(pa), Some(ma)),
                    || format!("{what} at {va:#x}: shadow entry installed"),
                );
                None
            }
            Fill::GuestFault(pf) => {
                self.sync_in();
                let site = self.site();
                let r = {
                    let mut gp = GuestPlatform::new(plat, self.gate(), self.log.trace.int);
                    self.vcpu.inject_event(
                        &mut gp,
                        14,
                        IntKind::Exception,
                        Some(pf.error_code),
                        Some(va),
                    )
                };
                self.after_vcpu(None);
                self.log.trap(
                    plat,
                    TrapCause::GuestPageFault,
                    &site,
                    tr(None, None),
                    || {
                        format!(
                            "{what} at {va:#x}: #PF error code {:#x} reflected",
                            pf.error_code
                        )
                    },
                );
                let exit = r.and_then(|e| self.vcpu_exit(e));
                if let Err(why) = self.sync_out() {
                    return self.monitor_stop(why);
                }
                exit
            }
            Fill::Mmio { pa } => {
                self.emulate_trap(plat, |_, _| TrapCause::Mmio, None, tr(Some(pa), None))
            }
            Fill::PtWrite { pa, ma } => {
                let page = ma & !0xfff;
                let before = self.shadow.snapshot(page);
                self.emulate_trap(
                    plat,
                    |_, _| TrapCause::PtWrite,
                    Some((page, before)),
                    tr(Some(pa), Some(ma)),
                )
            }
            Fill::Emulate { pa, ma } => self.emulate_trap(
                plat,
                |_, _| TrapCause::HiddenPageFault,
                None,
                tr(Some(pa), Some(ma)),
            ),
        }
    }

    /// What a real-CPU exit means for the run.
    fn on_real_exit(&mut self, plat: &mut dyn Platform, exit: CpuExit) -> Option<VcpuExit> {
        match exit {
            CpuExit::Budget => None,
            CpuExit::VmExit(e) => self.handle_exit(plat, e),
            CpuExit::Stopped => Some(VcpuExit::Stopped),
            // HLT faults at CPL 1 and 3: the real CPU can't halt.
            CpuExit::Halted => Some(VcpuExit::Hlt {
                interrupts_enabled: self.irq_open(),
            }),
            CpuExit::Shutdown(f) => self.monitor_stop(format!(
                "the real CPU shut down ({f}) although every exception exits: a monitor bug"
            )),
        }
    }

    /// Guest instructions retired: on the real CPU, plus those the
    /// virtual CPU emulated (each guest instruction is counted once: an
    /// instruction that exits does not retire on the real CPU).
    fn retired(&self) -> u64 {
        self.real.instructions() + self.vcpu.instructions()
    }

    /// One real-CPU run or step, timed.
    fn enter(&mut self, plat: &mut dyn Platform, budget: Option<u64>) -> Option<VcpuExit> {
        if let Some(x) = self.pre_entry(plat) {
            return Some(x);
        }
        let t0 = Instant::now();
        let exit = {
            let mut gp = GuestPlatform::new(plat, self.gate(), self.log.trace.int);
            match budget {
                Some(b) => self.real.run(&mut gp, b),
                None => self.real.step(&mut gp),
            }
        };
        let t1 = Instant::now();
        self.log.mstats.guest_time += t1 - t0;
        let r = self.on_real_exit(plat, exit);
        self.log.mstats.monitor_time += t1.elapsed();
        r
    }
}

/// The trap cause an instruction's class implies, if any.
fn insn_class(insn: Option<&Instruction>) -> Option<TrapCause> {
    use Mnemonic as M;
    let i = insn?;
    match i.mnemonic() {
        M::Invlpg => Some(TrapCause::Cr3Invlpg),
        M::Mov if i.op0_register() == Register::CR3 => Some(TrapCause::Cr3Invlpg),
        M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => {
            Some(TrapCause::Io)
        }
        M::Hlt => Some(TrapCause::Hlt),
        _ => None,
    }
}

/// The linear address of `insn`'s memory operand on state `s`.
fn operand_address(insn: &Instruction, s: &CpuState) -> Option<u64> {
    insn.virtual_address(0, 0, |reg, _, _| {
        use cpu::SegReg as S;
        let seg = |r: S| Some(s.sreg(r).base);
        match reg {
            Register::ES => seg(S::Es),
            Register::CS => seg(S::Cs),
            Register::SS => seg(S::Ss),
            Register::DS => seg(S::Ds),
            Register::FS => seg(S::Fs),
            Register::GS => seg(S::Gs),
            Register::RIP | Register::EIP => Some(insn.next_ip()),
            r => {
                let full = r.full_register();
                let n = (full as usize).checked_sub(Register::RAX as usize)?;
                let v = *s.gpr.get(n)?;
                Some(match r.size() {
                    1 => v & 0xff,
                    2 => v & 0xffff,
                    4 => v & 0xffff_ffff,
                    _ => v,
                })
            }
        }
    })
}

impl Accelerator for FullMonitor {
    fn name(&self) -> &'static str {
        "tcg"
    }

    fn describe(&self) -> String {
        let how = match self.mode {
            VirtMode::Full => "binary translation",
            VirtMode::TrapOnly => "trap-and-emulate only",
            _ => "hypercalls",
        };
        format!(
            "tcg + monitor ({}: CPL 1, {how}, shadow paging)",
            self.mode.name()
        )
    }

    fn set_state(&mut self, state: &CpuState) -> Result<(), AccelError> {
        self.vcpu.set_state(state);
        self.stop = None;
        self.held_irq = None;
        self.shadow.drop_all();
        if let Some(why) = vcpu::unsupported(&self.vcpu.state) {
            self.stop = Some(if self.vcpu.state.cr0 & cpu::state::cr0::PE == 0 {
                format!(
                    "--virt {} needs a kernel that starts in protected mode: PVH or multiboot",
                    self.mode.name()
                )
            } else {
                why
            });
            return Ok(());
        }
        self.rebuild_tables();
        if let Err(why) = self.sync_out() {
            self.stop = Some(why);
            return Ok(());
        }
        // A full load: drops the real CPU's TLB and decoded blocks.
        let real = self.real.state.clone();
        self.real.set_state(&real);
        Ok(())
    }

    fn get_state(&mut self) -> Result<CpuState, AccelError> {
        Ok(self.guest_state())
    }

    fn run(
        &mut self,
        platform: &mut dyn Platform,
        slice: RunSlice,
    ) -> Result<VcpuExit, AccelError> {
        if let Some(r) = &self.stop {
            return Ok(VcpuExit::MonitorStop { reason: r.clone() });
        }
        loop {
            let mut budget = CHUNK;
            if let Some(limit) = slice.insn_limit {
                let done = self.retired();
                if done >= limit {
                    return Ok(VcpuExit::InsnLimit);
                }
                budget = budget.min(limit - done);
            }
            if let Some(x) = self.enter(platform, Some(budget)) {
                return Ok(x);
            }
            if let Some(deadline) = slice.deadline {
                if Instant::now() >= deadline {
                    return Ok(VcpuExit::SliceEnd);
                }
            }
        }
    }

    fn step(&mut self, platform: &mut dyn Platform) -> Result<VcpuExit, AccelError> {
        if let Some(r) = &self.stop {
            return Ok(VcpuExit::MonitorStop { reason: r.clone() });
        }
        Ok(self.enter(platform, None).unwrap_or(VcpuExit::SliceEnd))
    }

    fn can_step(&self) -> bool {
        true
    }

    fn set_trace(&mut self, trace: TraceFlags) {
        self.log.trace = trace;
        self.real.trace = trace;
        self.vcpu.trace = TraceFlags {
            int: true,
            exec: false,
            ..trace
        };
    }

    fn instructions(&self) -> Option<u64> {
        Some(self.retired())
    }

    fn stats(&self) -> &ExitStats {
        &self.log.stats
    }

    fn monitor_stats(&self) -> Option<MonitorStats> {
        let mut s = self.log.mstats.clone();
        s.shadow_flushes = self.shadow.counts.flushes;
        s.shadow_fills = self.shadow.counts.fills;
        Some(s)
    }

    fn cpu_stats(&self) -> Option<cpu::CpuStats> {
        Some(self.real.stats())
    }

    fn real_cpl(&self) -> Option<u8> {
        Some(self.real.state.cpl())
    }
}
