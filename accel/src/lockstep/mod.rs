//! Lockstep: the whole guest runs on the interpreter and on KVM together,
//! instruction by instruction, and the run stops at the first divergence
//! with a report (`ringside run --accel lockstep`).
//!
//! # Two machines, one set of devices
//!
//! The interpreter ([`TcgAccel`]) runs on the machine's RAM and is the only
//! CPU that talks to the devices. KVM runs on a second [`GuestRam`] that
//! starts as a byte copy. Every port and MMIO access of an interpreter
//! step is recorded ([`replay::Recorder`]) and KVM's I/O exits of the same
//! step are answered from that record ([`replay::Replay`]); a different
//! access is a divergence. An interrupt the interpreter takes is injected
//! into KVM (`KVM_INTERRUPT`) at the same instruction boundary.
//!
//! # Stepping KVM (what this host allows)
//!
//! KVM is single-stepped with `KVM_GUESTDBG_SINGLESTEP` ([`oracle`]). On
//! kvm-pvm that works for everything the host emulates (real mode, 32-bit
//! code, 64-bit CPL 0), but not for the one thing it runs natively, 64-bit
//! CPL-3 code: there the debug trap is delivered to the guest. So lockstep
//! is **fine-grained** (compared after every instruction) outside native
//! ring 3, and **coarse** inside: the interpreter runs the whole ring-3
//! stretch first (interrupts held back), until its first instruction
//! outside ring 3 (an interrupt or exception handler, the SYSCALL entry);
//! KVM then runs natively with a hardware breakpoint there, which the
//! host's emulator honours, and the two states (and every page the
//! stretch wrote) are compared at that boundary. A stretch that does not
//! leave ring 3 within [`STRETCH_MAX`] instructions, or ends in a way KVM
//! can't be stopped at, is counted as "oracle unavailable" and KVM is
//! resynchronised from the interpreter. The instruction that *enters*
//! native ring 3 (IRETQ, SYSRET) can't be single-stepped either (KVM
//! would run on in ring 3 with the trap going to the guest): KVM takes the
//! interpreter's state after it, and it counts as oracle-unavailable. The
//! summary counts every kind.
//!
//! Interrupts are delivered by the interpreter and injected into KVM
//! before its step; during a native stretch they are held back until the
//! stretch ends.
//!
//! # Oracle unavailable
//!
//! When the host's instruction emulator gives up (`KVM_EXIT_INTERNAL_ERROR`)
//! the instruction is neither a pass nor a failure: it is counted, KVM's
//! state and the pages the interpreter wrote are copied from the
//! interpreter, and the run goes on.
//!
//! * `replay.rs`: device I/O record and replay.
//! * `oracle.rs`: `KVM_SET_GUEST_DEBUG`, the KVM_RUN loop of one step.
//! * `compare.rs`: the state comparison, undefined flags, compare-by-rule.
//! * `report.rs`: the side-by-side divergence report.

mod compare;
mod oracle;
mod replay;
mod report;

#[cfg(test)]
mod tests;

use crate::kvm::KvmAccel;
use crate::tcg::TcgAccel;
use crate::{AccelError, Accelerator, ExitStats, RunSlice, VcpuExit};
use compare::{Masks, Row};
use cpu::{CpuState, Platform, TraceFlags};
use iced_x86::Mnemonic;
use mmu::{GuestRam, GuestVirtAddr, MachineAddr, PhysLayout, PhysTarget};
use oracle::{DebugMode, Stop};
use replay::{Recorder, Replay};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest native ring-3 stretch the interpreter runs before giving up
/// on comparing it (it cannot stop KVM inside ring 3).
pub const STRETCH_MAX: u64 = 20_000_000;

/// How long KVM may take to reach the end of a native stretch.
const STRETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The counters printed in the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Instructions compared one by one.
    pub stepped: u64,
    /// Instructions of native ring-3 stretches compared at their end.
    pub stretch_insns: u64,
    pub stretches: u64,
    /// Instructions for which KVM could not answer.
    pub unavailable: u64,
    pub divergences: u64,
}

impl Counts {
    /// `lockstep: N instructions compared, M oracle-unavailable, D divergences`.
    pub fn line(&self) -> String {
        format!(
            "lockstep: {} instructions compared ({} single-stepped, {} in {} native ring-3 \
             stretches compared at their end), {} oracle-unavailable, {} divergences",
            self.stepped + self.stretch_insns,
            self.stepped,
            self.stretch_insns,
            self.stretches,
            self.unavailable,
            self.divergences
        )
    }
}

/// Interpreter and KVM in lockstep, as one [`Accelerator`].
///
/// Field order is drop order: KVM (which maps `kvm_ram`) goes first.
pub struct LockstepAccel {
    kvm: KvmAccel,
    tcg: TcgAccel,
    ram: Arc<GuestRam>,
    kvm_ram: Arc<GuestRam>,
    layout: PhysLayout,
    stats: ExitStats,
    counts: Counts,
    /// KVM's last TSC value seen by a compare-by-rule (must not go back).
    last_tsc: u64,
    /// The report, once the run diverged (the run cannot go on).
    diverged: Option<String>,
    /// Native stretches longer than this are not compared.
    stretch_max: u64,
    /// The user asked for interrupt events (`--trace int`).
    trace_int: bool,
}

/// Does KVM run this state natively (64-bit mode, CPL 3)? Only then can't
/// it be single-stepped on kvm-pvm.
fn native(s: &CpuState) -> bool {
    s.mode() == cpu::CpuMode::Long64 && s.cpl() == 3
}

fn ram_err(e: impl std::fmt::Display) -> AccelError {
    AccelError::Host {
        what: "allocating KVM's copy of guest RAM",
        detail: e.to_string(),
    }
}

/// One interpreter step (or stretch) as recorded.
struct Recorded {
    exit: VcpuExit,
    log: Vec<replay::Access>,
    acked: Option<u8>,
    nmi: bool,
    /// An exception or interrupt was delivered.
    delivered: bool,
    /// Hold pending interrupts back.
    hold: bool,
}

impl LockstepAccel {
    /// The interpreter over `ram`, KVM over a copy of it. Fails like
    /// [`KvmAccel::new`] ([`AccelError::Unavailable`]) without a usable KVM.
    pub fn new(ram: Arc<GuestRam>, layout: PhysLayout) -> Result<Self, AccelError> {
        let kvm_ram = Arc::new(GuestRam::new(ram.size()).map_err(ram_err)?);
        kvm_ram
            .write(MachineAddr(0), ram.as_slice())
            .map_err(ram_err)?;
        let mut kvm = KvmAccel::new(kvm_ram.clone(), layout)?;
        oracle::set_debug(&mut kvm, DebugMode::SingleStep)?;
        let mut tcg = TcgAccel::new(ram.clone(), layout);
        tcg.cpu().set_write_log(true);
        // Exception delivery changes how KVM's single step ends (below).
        tcg.set_trace(TraceFlags {
            int: true,
            ..TraceFlags::default()
        });
        Ok(LockstepAccel {
            kvm,
            tcg,
            ram,
            kvm_ram,
            layout,
            stats: ExitStats::default(),
            counts: Counts::default(),
            last_tsc: 0,
            diverged: None,
            stretch_max: STRETCH_MAX,
            trace_int: false,
        })
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The interpreter (tests corrupt it to check that lockstep notices).
    pub fn interpreter(&mut self) -> &mut cpu::Cpu {
        self.tcg.cpu()
    }

    /// Up to 15 bytes of code at `s`'s CS:RIP, through the guest's page
    /// tables in the interpreter's RAM (no A/D bits set).
    fn code_bytes(&self, s: &CpuState) -> Vec<u8> {
        let lin = if s.mode() == cpu::CpuMode::Long64 {
            s.rip
        } else {
            s.cs().base.wrapping_add(s.rip) & 0xffff_ffff
        };
        let regs = mmu::PagingRegs {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
        };
        let mut out = Vec::with_capacity(15);
        while out.len() < 15 {
            let va = lin.wrapping_add(out.len() as u64);
            let mut mem = mmu::RamPtes::new(&self.ram, &self.layout);
            let Ok(t) = mmu::walk_debug(&regs, &mut mem, GuestVirtAddr(va), None) else {
                break;
            };
            let PhysTarget::Ram(ma) = self.layout.translate(t.pa) else {
                break;
            };
            let n = (0x1000 - (va & 0xfff) as usize).min(15 - out.len());
            let mut buf = vec![0u8; n];
            if self.ram.read(ma, &mut buf).is_err() {
                break;
            }
            out.extend_from_slice(&buf);
        }
        out
    }

    /// Make KVM's state and the given pages equal to the interpreter's.
    fn resync(&mut self, state: &CpuState, pages: &[u64]) -> Result<(), AccelError> {
        compare::copy_pages(&self.ram, &self.kvm_ram, pages);
        self.kvm.set_state(state)
    }

    /// Step the interpreter once with the recorder around `platform`.
    fn interp_step(
        &mut self,
        platform: &mut dyn Platform,
        rec: &mut Recorded,
    ) -> Result<(), AccelError> {
        let mut r = Recorder::new(platform, rec.hold);
        r.forward_int = self.trace_int;
        let exit = self.tcg.step(&mut r)?;
        rec.log.append(&mut r.log);
        rec.acked = rec.acked.or(r.acked);
        rec.nmi |= r.nmi;
        rec.delivered |= r.delivered;
        rec.exit = exit;
        Ok(())
    }

    /// One lockstep step: `Some(exit)` when the machine must see it.
    fn step_pair(
        &mut self,
        platform: &mut dyn Platform,
        limit: Option<u64>,
    ) -> Result<Option<VcpuExit>, AccelError> {
        if let Some(r) = &self.diverged {
            return Ok(Some(VcpuExit::Divergence { report: r.clone() }));
        }
        let pre = self.tcg.get_state()?;
        if native(&pre) && !pre.halted {
            return self.stretch(platform, pre, limit);
        }
        let index = self.tcg.instructions().unwrap_or(0);
        let bytes = self.code_bytes(&pre);
        let (insn, asm) = report::disassemble(&bytes, pre.code_bitness(), pre.rip);
        let rep_string = insn.as_ref().is_some_and(is_rep_string);
        let mut rec = Recorded {
            exit: VcpuExit::SliceEnd,
            log: Vec::new(),
            acked: None,
            nmi: false,
            delivered: false,
            hold: false,
        };
        self.interp_step(platform, &mut rec)?;
        let delivered = rec.acked.is_some() || rec.nmi;
        if matches!(rec.exit, VcpuExit::Hlt { .. }) && !delivered {
            // Still halted, nothing delivered: nothing ran on either side.
            return Ok(Some(rec.exit));
        }
        if delivered {
            if rec.nmi {
                oracle::inject_nmi(&mut self.kvm)?;
            }
            if let Some(v) = rec.acked {
                oracle::inject(&mut self.kvm, v)?;
            }
            self.stats.bump("interrupt");
        }
        let mut mask_src = (insn, bytes.clone(), pre.clone());
        let iret = mask_src.0.as_ref().is_some_and(|i| {
            matches!(
                i.mnemonic(),
                Mnemonic::Iret | Mnemonic::Iretd | Mnemonic::Iretq
            )
        });
        // Measured on kvm-pvm: when an instruction delivers an event
        // (external interrupt, exception, INT n) or is an IRET, KVM's
        // single step sometimes ends one instruction later (the new RFLAGS
        // has TF clear, so the trap comes after the next instruction).
        // If KVM is found there, the interpreter takes that instruction
        // too (events held back) and the two are compared again.
        let may_lag = rec.delivered || iret;
        // A REP string instruction may stop after some iterations (RIP
        // stays, RF is set) at a different point on each CPU: both run it
        // to completion before they are compared.
        if rep_string && !delivered {
            let mut n = 0u64;
            while rec.exit == VcpuExit::SliceEnd
                && self.tcg.cpu().state.rip == pre.rip
                && n < MAX_REP_STEPS
            {
                let mut r = Recorder::new(platform, true);
                rec.exit = self.tcg.step(&mut r)?;
                rec.log.append(&mut r.log);
                n += 1;
            }
        }
        let mut written = self.tcg.cpu().take_write_log();
        let mut post = self.tcg.get_state()?;
        if native(&post) {
            // The instruction enters native ring 3 (IRETQ, SYSRET...):
            // single-stepping it would leave KVM in ring 3 with the debug
            // trap going to the guest. KVM takes the interpreter's state
            // and the stretch that follows is compared at its end.
            self.counts.unavailable += 1;
            self.stats.bump("ring3-entry");
            self.resync(&post, &written)?;
            return Ok(self.after(rec.exit, &post));
        }
        let mut replay = Replay::new(std::mem::take(&mut rec.log));
        let mut stop = oracle::run(&mut self.kvm, &mut replay, None)?;
        if rep_string && !delivered {
            let mut n = 0u64;
            while stop == Stop::Done && n < MAX_REP_STEPS && self.kvm.get_state()?.rip == pre.rip {
                stop = oracle::run(&mut self.kvm, &mut replay, None)?;
                n += 1;
            }
        }
        let how = "single-stepped".to_string();
        let what = match stop {
            Stop::Done | Stop::Halted => None,
            Stop::Shutdown if matches!(rec.exit, VcpuExit::Shutdown { .. }) => None,
            Stop::Shutdown => Some("KVM shut down (triple fault), the interpreter did not".into()),
            Stop::Unavailable(why) => {
                self.counts.unavailable += 1;
                self.stats.bump("oracle-unavailable");
                self.resync(&post, &written)?;
                let _ = why;
                return Ok(self.after(rec.exit, &post));
            }
            Stop::AccessMismatch(e) => Some(e),
            Stop::TimedOut => Some("KVM did not stop after one instruction".into()),
        };
        let what = what.or_else(|| {
            replay
                .remaining()
                .first()
                .map(|a| format!("device access differs: interpreter made {a}, KVM made none"))
        });
        let mut kvm_state = self.kvm.get_state()?;
        if let Some(insn) = &insn {
            let rule = compare::apply_rules(insn, &pre, &post, &mut kvm_state, &mut self.last_tsc);
            if let Some(name) = rule.name {
                self.stats.bump(name);
            }
            if let Some(v) = rule.violation {
                return Ok(Some(self.diverge(
                    index,
                    how,
                    &pre,
                    &bytes,
                    &asm,
                    v,
                    &post,
                    &kvm_state,
                    &Masks::default(),
                    &written,
                )));
            }
            if rule.changed {
                self.kvm.set_state(&kvm_state)?;
            }
        }
        let mut masks = Masks::default();
        if compare::any_differs(&post, &kvm_state, &masks) {
            if let (Some(last), b, at) = &mask_src {
                masks = compare::masks(last, b, at);
            }
        }
        let mut regs_differ = compare::any_differs(&post, &kvm_state, &masks);
        if regs_differ
            && may_lag
            && what.is_none()
            && kvm_state.rip != post.rip
            && rec.exit == VcpuExit::SliceEnd
            && !post.halted
        {
            let b = self.code_bytes(&post);
            mask_src = (
                report::disassemble(&b, post.code_bitness(), post.rip).0,
                b,
                post.clone(),
            );
            rec.hold = true;
            self.interp_step(platform, &mut rec)?;
            self.stats.bump("step-after-event");
            written.append(&mut self.tcg.cpu().take_write_log());
            post = self.tcg.get_state()?;
            if native(&post) {
                self.counts.unavailable += 1;
                self.stats.bump("ring3-entry");
                self.resync(&post, &written)?;
                return Ok(self.after(rec.exit, &post));
            }
            masks = Masks::default();
            if compare::any_differs(&post, &kvm_state, &masks) {
                if let (Some(last), b, at) = &mask_src {
                    masks = compare::masks(last, b, at);
                }
            }
            regs_differ = compare::any_differs(&post, &kvm_state, &masks);
        }
        let (mem, _) = compare::pages(&self.ram, &self.kvm_ram, &written);
        if what.is_some() || regs_differ || !mem.is_empty() {
            let rows = compare::rows(&post, &kvm_state, &masks);
            let what = what.unwrap_or_else(|| differing(&rows, !mem.is_empty()));
            return Ok(Some(self.diverge(
                index, how, &pre, &bytes, &asm, what, &post, &kvm_state, &masks, &written,
            )));
        }
        // Undefined bits that differ would show up at the next
        // instruction: KVM takes the interpreter's.
        if compare::take_undefined(&post, &mut kvm_state, &masks) {
            self.stats.bump("undefined-synced");
            self.kvm.set_state(&kvm_state)?;
        }
        self.counts.stepped += 1;
        Ok(self.after(rec.exit, &post))
    }

    /// What the machine sees after a compared step.
    fn after(&mut self, exit: VcpuExit, post: &CpuState) -> Option<VcpuExit> {
        match exit {
            VcpuExit::SliceEnd => {
                if post.halted {
                    Some(VcpuExit::Hlt {
                        interrupts_enabled: post.rflags & cpu::state::rflags::IF != 0,
                    })
                } else {
                    None
                }
            }
            e => Some(e),
        }
    }

    /// A native ring-3 stretch: the interpreter runs it, KVM catches up to
    /// the interpreter's first instruction after it, and they are compared.
    fn stretch(
        &mut self,
        platform: &mut dyn Platform,
        pre: CpuState,
        limit: Option<u64>,
    ) -> Result<Option<VcpuExit>, AccelError> {
        let index = self.tcg.instructions().unwrap_or(0);
        let cap = limit.map_or(self.stretch_max, |l| {
            self.stretch_max.min(l.saturating_sub(index).max(1))
        });
        let mut r = Recorder::new(platform, true);
        let mut n = 0u64;
        let exit = loop {
            let exit = self.tcg.step(&mut r)?;
            n += 1;
            if exit != VcpuExit::SliceEnd || !native(&self.tcg.cpu().state) || n >= cap {
                break exit;
            }
        };
        let log = std::mem::take(&mut r.log);
        drop(r);
        let written = self.tcg.cpu().take_write_log();
        let post = self.tcg.get_state()?;
        if exit != VcpuExit::SliceEnd || native(&post) {
            // KVM can't be stopped where the interpreter is now.
            self.counts.unavailable += n;
            self.stats.bump("stretch-unavailable");
            self.resync(&post, &written)?;
            return Ok(self.after(exit, &post));
        }
        let target = if post.mode() == cpu::CpuMode::Long64 {
            post.rip
        } else {
            post.cs().base.wrapping_add(post.rip) & 0xffff_ffff
        };
        oracle::set_debug(&mut self.kvm, DebugMode::Breakpoint(target))?;
        let mut replay = Replay::new(log);
        let stop = oracle::run(
            &mut self.kvm,
            &mut replay,
            Some(Instant::now() + STRETCH_TIMEOUT),
        );
        oracle::set_debug(&mut self.kvm, DebugMode::SingleStep)?;
        let stop = stop?;
        let bytes = self.code_bytes(&pre);
        let (_, asm) = report::disassemble(&bytes, pre.code_bitness(), pre.rip);
        let how = format!(
            "end of a native ring-3 stretch of {n} instructions starting here, compared at \
             the first instruction after it, {target:#x}"
        );
        let what = match stop {
            Stop::Done => None,
            Stop::Unavailable(_) => {
                self.counts.unavailable += n;
                self.stats.bump("oracle-unavailable");
                self.resync(&post, &written)?;
                return Ok(None);
            }
            Stop::Halted => Some("KVM halted inside the stretch".to_string()),
            Stop::Shutdown => Some("KVM shut down (triple fault) inside the stretch".to_string()),
            Stop::AccessMismatch(e) => Some(e),
            Stop::TimedOut => Some(format!(
                "KVM did not reach {target:#x} within {} s",
                STRETCH_TIMEOUT.as_secs()
            )),
        };
        let kvm_state = self.kvm.get_state()?;
        let masks = Masks::default();
        let (mem, _) = compare::pages(&self.ram, &self.kvm_ram, &written);
        if what.is_some() || compare::any_differs(&post, &kvm_state, &masks) || !mem.is_empty() {
            let rows = compare::rows(&post, &kvm_state, &masks);
            let what = what.unwrap_or_else(|| differing(&rows, !mem.is_empty()));
            return Ok(Some(self.diverge(
                index, how, &pre, &bytes, &asm, what, &post, &kvm_state, &masks, &written,
            )));
        }
        self.counts.stretches += 1;
        self.counts.stretch_insns += n;
        Ok(None)
    }

    /// Build the report, remember it, and stop.
    #[allow(clippy::too_many_arguments)]
    fn diverge(
        &mut self,
        index: u64,
        how: String,
        pre: &CpuState,
        bytes: &[u8],
        asm: &str,
        what: String,
        interp: &CpuState,
        kvm: &CpuState,
        masks: &Masks,
        written: &[u64],
    ) -> VcpuExit {
        let rows = compare::rows(interp, kvm, masks);
        let (mem, more_mem) = compare::pages(&self.ram, &self.kvm_ram, written);
        let insn_len = report::disassemble(bytes, pre.code_bitness(), pre.rip)
            .0
            .map_or(bytes.len(), |i| i.len().min(bytes.len()));
        let d = report::Divergence {
            index,
            how,
            pre,
            bytes: bytes.get(..insn_len).unwrap_or(bytes),
            asm,
            what,
            rows: &rows,
            masks,
            mem: &mem,
            more_mem,
        };
        let mut text = d.render();
        text.push_str(&self.counts_after_divergence());
        self.diverged = Some(text.clone());
        VcpuExit::Divergence { report: text }
    }

    fn counts_after_divergence(&mut self) -> String {
        self.counts.divergences += 1;
        format!("  {}\n", self.counts.line())
    }
}

/// The most resumptions of one REP string instruction lockstep waits for.
const MAX_REP_STEPS: u64 = 1 << 24;

/// A string instruction with a REP/REPE/REPNE prefix.
fn is_rep_string(i: &iced_x86::Instruction) -> bool {
    (i.has_rep_prefix() || i.has_repe_prefix() || i.has_repne_prefix()) && i.is_string_instruction()
}

/// "RFLAGS, RAX, memory" from the differing rows.
fn differing(rows: &[Row], mem: bool) -> String {
    let mut v: Vec<String> = rows
        .iter()
        .filter(|r| r.differs)
        .map(|r| r.name.clone())
        .collect();
    if mem {
        v.push("memory".into());
    }
    v.join(", ")
}

impl Accelerator for LockstepAccel {
    fn name(&self) -> &'static str {
        "lockstep"
    }

    fn describe(&self) -> String {
        format!(
            "lockstep (tcg vs {}: single-stepped outside native ring 3, ring-3 stretches \
             compared at their end) · {}",
            self.kvm.describe(),
            self.counts.line()
        )
    }

    fn set_state(&mut self, state: &CpuState) -> Result<(), AccelError> {
        self.tcg.set_state(state)?;
        // The state may come with memory changed behind both CPUs' backs
        // (a loader): KVM starts again from a full copy.
        self.kvm_ram
            .write(MachineAddr(0), self.ram.as_slice())
            .map_err(ram_err)?;
        self.tcg.cpu().take_write_log();
        self.kvm.set_state(state)
    }

    fn get_state(&mut self) -> Result<CpuState, AccelError> {
        self.tcg.get_state()
    }

    fn run(
        &mut self,
        platform: &mut dyn Platform,
        slice: RunSlice,
    ) -> Result<VcpuExit, AccelError> {
        let mut n = 0u32;
        loop {
            if let (Some(limit), Some(done)) = (slice.insn_limit, self.tcg.instructions()) {
                if done >= limit {
                    return Ok(VcpuExit::InsnLimit);
                }
            }
            if let Some(exit) = self.step_pair(platform, slice.insn_limit)? {
                return Ok(exit);
            }
            n = n.wrapping_add(1);
            if n.is_multiple_of(64) && slice.deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(VcpuExit::SliceEnd);
            }
        }
    }

    fn step(&mut self, platform: &mut dyn Platform) -> Result<VcpuExit, AccelError> {
        Ok(self
            .step_pair(platform, None)?
            .unwrap_or(VcpuExit::SliceEnd))
    }

    fn can_step(&self) -> bool {
        true
    }

    fn set_trace(&mut self, trace: TraceFlags) {
        self.trace_int = trace.int;
        self.tcg.set_trace(TraceFlags { int: true, ..trace });
    }

    fn instructions(&self) -> Option<u64> {
        self.tcg.instructions()
    }

    fn stats(&self) -> &ExitStats {
        &self.stats
    }

    fn cpu_stats(&self) -> Option<cpu::CpuStats> {
        self.tcg.cpu_stats()
    }

    fn invalidate_code(&mut self, ma: MachineAddr, len: u64) {
        // A device wrote the interpreter's RAM by DMA: KVM's copy gets the
        // same bytes.
        self.tcg.invalidate_code(ma, len);
        let mut buf = vec![0u8; 4096];
        let mut at = ma.0;
        let end = ma.0.saturating_add(len);
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            let Some(chunk) = buf.get_mut(..n) else { break };
            if self.ram.read(MachineAddr(at), chunk).is_err()
                || self.kvm_ram.write(MachineAddr(at), chunk).is_err()
            {
                break;
            }
            at += n as u64;
        }
    }
}
