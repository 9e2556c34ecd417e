//! The ringside machine: guest RAM, the PC board of devices, one vCPU on
//! an accelerator, and the loop that runs them.
//!
//! Like Firecracker's `vmm` crate, this is the only place that knows all the
//! pieces: the CPU knows nothing of devices, devices nothing of the CPU, and
//! the accelerators only see the board through [`cpu::Platform`].

use crate::boot::{self, BootConfig, BootError};
use crate::status::RunEnd;
use crate::trace;
use accel::{AccelError, Accelerator, RunSlice, VcpuExit};
use cpu::{CpuEvent, Platform, TraceFlags};
use devices::{BoardConfig, PcBoard};
use mmu::{GuestPhysAddr, GuestRam, PhysLayout, RamError};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Which engine runs the vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelKind {
    /// ringside's own interpreter.
    Tcg,
    /// The host CPU through /dev/kvm.
    Kvm,
    /// Both together, compared instruction by instruction; stops at the
    /// first divergence with a report (accel/src/lockstep/).
    Lockstep,
}

/// Everything needed to build a machine.
pub struct MachineConfig {
    pub memory: u64,
    pub accel: AccelKind,
    /// The virtualization monitor's mode (`--virt`); `None`: no monitor.
    pub virt: Option<accel::monitor::VirtMode>,
    /// `--disk`: the ATA / virtio-blk backing file.
    pub disk: Option<std::path::PathBuf>,
    pub boot: BootConfig,
    pub trace: TraceFlags,
    pub serial_out: Box<dyn Write + Send>,
    /// Forward the host's stdin to the guest's COM1.
    pub stdin: bool,
    pub max_insns: Option<u64>,
    pub timeout: Option<Duration>,
}

/// Failure to build the machine.
#[derive(Debug, Error)]
pub enum MachineError {
    #[error("{0}")]
    Ram(#[from] RamError),
    #[error("{0}")]
    Boot(#[from] BootError),
    #[error("{0}")]
    Accel(#[from] AccelError),
    #[error("{0}")]
    Board(#[from] devices::BoardError),
    /// A memory size this configuration can't use.
    #[error("{0}")]
    MemorySize(String),
}

/// The board as the CPU sees it: ringside's [`Platform`].
pub struct BoardPlatform {
    pub board: PcBoard,
    trace: TraceFlags,
    tsc_epoch: Instant,
    /// Where events go instead of stderr when someone else shows them (the
    /// TUI): see [`Machine::capture_events`].
    captured: Option<EventSink>,
}

/// Events kept between two [`Machine::take_events`] calls, at most
/// [`EVENT_SINK_MAX`]; the rest are counted as dropped.
#[derive(Debug, Default)]
struct EventSink {
    events: Vec<CpuEvent>,
    dropped: u64,
}

/// The longest a vCPU runs before the machine looks at its devices again.
/// The slice deadline is the next device timer *known when the slice
/// starts*; a guest that arms a timer and then computes without any exit
/// (no HLT, no I/O) would otherwise never see it fire. 10 ms costs one
/// extra exit per 10 ms on KVM and nothing measurable on tcg.
const MAX_SLICE: Duration = Duration::from_millis(10);

/// Bound on kept events: a guest hammering a port between two redraws must
/// not make the host's memory grow without limit.
pub const EVENT_SINK_MAX: usize = 100_000;

impl Platform for BoardPlatform {
    fn pio_in(&mut self, port: u16, size: u8) -> u32 {
        self.board.pio_read(port, size)
    }
    fn pio_out(&mut self, port: u16, size: u8, val: u32) {
        self.board.pio_write(port, size, val)
    }
    fn mmio_read(&mut self, pa: GuestPhysAddr, size: u8) -> u64 {
        self.board.mmio_read(pa.raw(), size)
    }
    fn mmio_write(&mut self, pa: GuestPhysAddr, size: u8, val: u64) {
        self.board.mmio_write(pa.raw(), size, val)
    }
    fn interrupt_pending(&self) -> bool {
        self.board.interrupt_pending()
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        self.board.ack_interrupt()
    }
    fn stop_requested(&self) -> bool {
        self.board.exit_request().is_some()
    }
    /// A 1 GHz time-stamp counter: nanoseconds since the machine started.
    /// Invariant and monotonic, like a modern TSC.
    fn tsc(&mut self) -> u64 {
        self.tsc_epoch.elapsed().as_nanos() as u64
    }
    fn apic_base_changed(&mut self, apic_base: u64) {
        self.board.set_apic_base(apic_base)
    }
    /// The CPU reports CR8 (the TPR's priority class, 0-15).
    fn tpr_changed(&mut self, cr8: u8) {
        self.board.set_cr8(cr8 as u64)
    }
    fn event(&mut self, ev: &CpuEvent) {
        if let Some(sink) = &mut self.captured {
            if sink.events.len() < EVENT_SINK_MAX {
                sink.events.push(ev.clone());
            } else {
                sink.dropped += 1;
            }
            return;
        }
        trace::print_event(&self.trace, ev);
    }
}

/// A built machine, ready to run.
pub struct Machine {
    pub platform: BoardPlatform,
    pub accel: Box<dyn Accelerator>,
    /// Guest RAM and its physical layout, for inspectors (the TUI reads
    /// guest memory and walks the guest's page tables here).
    pub ram: Arc<GuestRam>,
    pub layout: PhysLayout,
    /// Under a monitor: guest-physical → machine (the guest's memory
    /// lives in `ram` at the machine addresses this gives).
    pub p2m: Option<Arc<mmu::P2m>>,
    max_insns: Option<u64>,
    timeout: Option<Duration>,
    stdin: bool,
    /// The vCPU is in the HLT state between two [`Machine::run_until`] or
    /// [`Machine::step`] calls: `Some(RFLAGS.IF)`.
    halted: Option<bool>,
}

impl Machine {
    /// Create RAM, load the kernel, build the board and the vCPU.
    pub fn new(cfg: MachineConfig) -> Result<Machine, MachineError> {
        // The loaders write the guest-physical image; without a monitor
        // that is machine memory itself (PA = MA).
        let image = Arc::new(GuestRam::new(cfg.memory)?);
        let guest_layout = PhysLayout::new(cfg.memory);
        let boot = boot::load(&image, &guest_layout, &cfg.boot)?;

        let (mut accel, ram, layout, p2m): (Box<dyn Accelerator>, _, _, _) = match (
            cfg.virt, cfg.accel,
        ) {
            (None, AccelKind::Tcg) => (
                Box::new(accel::tcg::TcgAccel::new(image.clone(), guest_layout)),
                image,
                guest_layout,
                None,
            ),
            (None, AccelKind::Kvm) => (
                Box::new(accel::kvm::KvmAccel::new(image.clone(), guest_layout)?),
                image,
                guest_layout,
                None,
            ),
            (None, AccelKind::Lockstep) => (
                Box::new(accel::lockstep::LockstepAccel::new(
                    image.clone(),
                    guest_layout,
                )?),
                image,
                guest_layout,
                None,
            ),
            (Some(mode), _) => {
                if cfg.memory > accel::monitor::memory::MAX_GUEST_RAM {
                    return Err(MachineError::MemorySize(format!(
                            "--virt {} needs -m {}M or less: the monitor's machine memory (guest RAM plus its own tables) must fit below the 3 GiB MMIO hole",
                            mode.name(),
                            accel::monitor::memory::MAX_GUEST_RAM >> 20
                        )));
                }
                // The monitor scatters the guest over machine memory.
                let mem = accel::monitor::MachineMemory::new(guest_layout)?;
                mem.load_image(&image)?;
                drop(image);
                let (ram, layout, p2m) = (mem.ram.clone(), mem.layout, mem.p2m.clone());
                (accel::monitor::create(mode, mem)?, ram, layout, Some(p2m))
            }
        };
        // Each backend reports what it can see (KVM: port and MMIO exits).
        accel.set_trace(cfg.trace);
        accel.set_state(&boot.state)?;
        if cfg.trace != TraceFlags::default() {
            eprintln!(
                "[trace] boot  {:?} kernel, entry {:#x}, device tree at {}: {}",
                boot.format, boot.entry, boot.fdt, boot.summary
            );
        }

        let input = cfg.stdin.then(spawn_stdin_reader);
        // Devices doing DMA see guest-physical addresses: under a monitor
        // they go through the p2m's runs, otherwise PA = MA.
        let dma_regions = match &p2m {
            Some(p2m) => p2m.regions(),
            None => layout.ram_regions(),
        };
        let board = PcBoard::try_new(BoardConfig {
            serial_out: cfg.serial_out,
            serial_in: input,
            trace_io: cfg.trace.io,
            ram_size: cfg.memory,
            disk: cfg.disk.clone(),
            dma: Some((ram.clone(), dma_regions)),
            ..BoardConfig::default()
        })?;
        Ok(Machine {
            platform: BoardPlatform {
                board,
                trace: cfg.trace,
                tsc_epoch: Instant::now(),
                captured: None,
            },
            accel,
            ram,
            layout,
            p2m,
            max_insns: cfg.max_insns,
            timeout: cfg.timeout,
            stdin: cfg.stdin,
            halted: None,
        })
    }

    /// Guest-physical → machine as the guest's memory is really laid out:
    /// the monitor's p2m, or the fixed layout (PA = MA).
    pub fn guest_phys(&self) -> Arc<dyn mmu::GuestPhysMap> {
        match &self.p2m {
            Some(p) => p.clone(),
            None => Arc::new(mmu::LayoutMap(self.layout)),
        }
    }

    /// Can serial input still arrive to wake a halted guest?
    fn input_open(&self) -> bool {
        self.stdin && !self.platform.board.input_closed()
    }

    /// Run until the guest exits or ringside stops it.
    pub fn run(&mut self) -> Result<RunEnd, AccelError> {
        let start = Instant::now();
        let hard_deadline = self.timeout.map(|t| start + t);
        loop {
            self.platform.board.advance();
            if let Some(d) = hard_deadline {
                if Instant::now() >= d {
                    return Ok(self.timeout_end());
                }
            }
            let deadline = match (self.platform.board.next_deadline(), hard_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // A timer the guest arms during the slice is not in this
            // deadline: never run longer than MAX_SLICE without looking.
            let deadline = Some(deadline.map_or(Instant::now() + MAX_SLICE, |d| {
                d.min(Instant::now() + MAX_SLICE)
            }));
            let slice = RunSlice {
                deadline,
                insn_limit: self.max_insns,
            };
            let exit = self.accel.run(&mut self.platform, slice)?;
            self.dma_invalidate();
            let end = match exit {
                VcpuExit::Hlt { interrupts_enabled } => {
                    self.wait_for_interrupt(interrupts_enabled, hard_deadline)?
                }
                exit => self.end_of(exit),
            };
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }

    /// Devices wrote guest memory by DMA (virtio): the CPU must not run
    /// code it decoded from those bytes before.
    fn dma_invalidate(&mut self) {
        for (ma, len) in self.platform.board.take_dma_writes() {
            self.accel.invalidate_code(ma, len);
        }
    }

    /// What a vCPU exit other than HLT means for the run: `Some(end)` when
    /// it is over. (HLT needs waiting, which `run` and the debugger's
    /// piecewise runs do differently.)
    fn end_of(&self, exit: VcpuExit) -> Option<RunEnd> {
        match exit {
            // The device holds QEMU's status, (v << 1) | 1.
            VcpuExit::Stopped => self
                .platform
                .board
                .exit_request()
                .map(|status| RunEnd::GuestExit { value: status >> 1 }),
            VcpuExit::SliceEnd | VcpuExit::Hlt { .. } => None,
            VcpuExit::InsnLimit => Some(RunEnd::InsnLimit {
                limit: self.max_insns.unwrap_or(0),
            }),
            VcpuExit::Shutdown { reason } => Some(RunEnd::TripleFault { detail: reason }),
            VcpuExit::HostLimit { detail } => Some(RunEnd::HostLimit { detail }),
            VcpuExit::MonitorStop { reason } => Some(RunEnd::MonitorStop { reason }),
            VcpuExit::Divergence { report } => Some(RunEnd::Divergence { report }),
        }
    }

    fn timeout_end(&self) -> RunEnd {
        RunEnd::Timeout {
            secs: self.timeout.map(|t| t.as_secs_f64()).unwrap_or(0.0),
        }
    }

    /// The vCPU is halted: sleep until a device has an interrupt for it.
    /// Returns `Some(end)` if it can never wake up or the timeout passes.
    fn wait_for_interrupt(
        &mut self,
        interrupts_enabled: bool,
        hard_deadline: Option<Instant>,
    ) -> Result<Option<RunEnd>, AccelError> {
        loop {
            self.platform.board.advance();
            if interrupts_enabled && self.platform.board.interrupt_pending() {
                return Ok(None);
            }
            let rip = self.accel.get_state().map(|s| s.rip).unwrap_or(0);
            if !interrupts_enabled {
                // Only an NMI could wake it, and nothing on this board sends one.
                return Ok(Some(RunEnd::DeadHalt { rip }));
            }
            let now = Instant::now();
            if hard_deadline.is_some_and(|d| now >= d) {
                return Ok(Some(self.timeout_end()));
            }
            let mut wake = self.platform.board.next_deadline();
            if wake.is_none() && !self.input_open() {
                return Ok(Some(RunEnd::StuckHalt { rip }));
            }
            if self.input_open() {
                // Serial input may arrive at any time: poll it often.
                let poll = now + Duration::from_millis(5);
                wake = Some(wake.map_or(poll, |w| w.min(poll)));
            }
            if let Some(d) = hard_deadline {
                wake = Some(wake.map_or(d, |w| w.min(d)));
            }
            if let Some(w) = wake {
                if w > now {
                    std::thread::sleep(w - now);
                }
            }
        }
    }
}

/// Running a piece at a time, for a debugger (the TUI): the same machine,
/// board and accelerator as [`Machine::run`], stopped and resumed at will.
impl Machine {
    /// Report CPU events of the `flags` categories to
    /// [`Machine::take_events`] instead of printing them.
    pub fn capture_events(&mut self, flags: TraceFlags) {
        self.accel.set_trace(flags);
        self.platform.trace = TraceFlags::default();
        self.platform.captured = Some(EventSink::default());
    }

    /// The events reported since the last call, and how many were dropped
    /// because too many came at once.
    pub fn take_events(&mut self) -> (Vec<CpuEvent>, u64) {
        match &mut self.platform.captured {
            Some(sink) => (
                std::mem::take(&mut sink.events),
                std::mem::take(&mut sink.dropped),
            ),
            None => (Vec::new(), 0),
        }
    }

    /// `Some(RFLAGS.IF)` while the vCPU waits in HLT.
    pub fn halted(&self) -> Option<bool> {
        self.halted
    }

    /// What a vCPU exit means for a run that goes on piece by piece:
    /// `Some(end)` when it is over.
    fn piece_end(&mut self, exit: VcpuExit) -> Option<RunEnd> {
        match exit {
            VcpuExit::Hlt { interrupts_enabled } => {
                self.halted = Some(interrupts_enabled);
                (!interrupts_enabled).then(|| self.dead_halt())
            }
            exit => self.end_of(exit),
        }
    }

    fn dead_halt(&mut self) -> RunEnd {
        // Only an NMI could wake it, and nothing on this board sends one.
        RunEnd::DeadHalt {
            rip: self.accel.get_state().map(|s| s.rip).unwrap_or(0),
        }
    }

    /// Leave HLT if an interrupt can wake the vCPU now. `Err(end)` if it
    /// never can; `Ok(true)` if it is still halted.
    fn still_halted(&mut self) -> Result<bool, RunEnd> {
        match self.halted {
            None => Ok(false),
            Some(false) => Err(self.dead_halt()),
            Some(true) if self.platform.board.interrupt_pending() => {
                self.halted = None;
                Ok(false)
            }
            Some(true) => Ok(true),
        }
    }

    /// Execute one instruction (or deliver one pending interrupt) on a
    /// backend that can single-step ([`Accelerator::can_step`]). A halted
    /// vCPU with nothing to wake it stays halted: see [`Machine::halted`].
    pub fn step(&mut self) -> Result<Option<RunEnd>, AccelError> {
        self.platform.board.advance();
        if let (Some(limit), Some(done)) = (self.max_insns, self.accel.instructions()) {
            if done >= limit {
                return Ok(Some(RunEnd::InsnLimit { limit }));
            }
        }
        match self.still_halted() {
            Err(end) => return Ok(Some(end)),
            Ok(true) => return Ok(None),
            Ok(false) => {}
        }
        let exit = self.accel.step(&mut self.platform)?;
        self.dma_invalidate();
        Ok(self.piece_end(exit))
    }

    /// Run until the host time `until` (or soon after: the backends look at
    /// the clock every ~0.2 ms), or until the run ends. A halted vCPU
    /// sleeps until a timer or `until`, as in [`Machine::run`]; unlike
    /// there, a halt with no timer armed doesn't end the run, because the
    /// caller may still send serial input.
    pub fn run_until(&mut self, until: Instant) -> Result<Option<RunEnd>, AccelError> {
        loop {
            self.platform.board.advance();
            let now = Instant::now();
            match self.still_halted() {
                Err(end) => return Ok(Some(end)),
                Ok(true) => {
                    if now >= until {
                        return Ok(None);
                    }
                    let wake = self
                        .platform
                        .board
                        .next_deadline()
                        .map_or(until, |d| d.min(until));
                    if wake > now {
                        std::thread::sleep(wake - now);
                    }
                    continue;
                }
                Ok(false) => {}
            }
            if now >= until {
                return Ok(None);
            }
            let deadline = self
                .platform
                .board
                .next_deadline()
                .map_or(until, |d| d.min(until));
            let slice = RunSlice {
                deadline: Some(deadline),
                insn_limit: self.max_insns,
            };
            let exit = self.accel.run(&mut self.platform, slice)?;
            self.dma_invalidate();
            if let Some(end) = self.piece_end(exit) {
                return Ok(Some(end));
            }
        }
    }
}

/// Forward the host's stdin to the guest byte by byte from a thread. At EOF
/// the channel hangs up, so the board reports its input closed and a halted
/// guest with no other event source is reported instead of waiting forever.
fn spawn_stdin_reader() -> std::sync::mpsc::Receiver<u8> {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf[..n].iter().any(|b| tx.send(*b).is_err()) {
                        break;
                    }
                }
            }
        }
    });
    rx
}
