//! [`PcBoard`]: the devices of the ringside PC wired together, behind the
//! small API the CPU glue (tcg's `Platform`, the KVM exit loop) uses.
//!
//! ```text
//!  port 0x20/0x21, 0xa0/0xa1 ── 8259A pair ──INTR──┐ (virtual wire when the
//!  port 0x4d0/0x4d1 ──────────── ELCR              │  APIC is disabled or
//!  port 0x40-0x43 ── 8254 ─OUT0─→ IRQ 0            │  LINT0 is ExtINT)
//!  port 0x61 ─────── gate 2 / OUT2                 ├──→ CPU (ack_interrupt)
//!  port 0x3f8-0x3ff ─ 16550A ─INTRPT─→ IRQ 4       │
//!  port 0xf4-0xf7 ── isa-debug-exit                │
//!  port 0x80 ─────── POST code                     │
//!  port 0x510-0x511 ─ QEMU fw_cfg (0x514 DMA: inert)│
//!  port 0x1f0-0x1f7, 0x3f6 ─ ATA disk ─→ IRQ 14     │
//!  MMIO 0xd0000000 ─ virtio-console ──→ IRQ 5       │ (with a DMA view)
//!  MMIO 0xd0001000 ─ virtio-blk ──────→ IRQ 6       │ (with a DMA view)
//!  MMIO 0xfee00000 ─ local APIC (timer, IPIs) ─────┘ (APIC first)
//! ```
//!
//! The ATA disk and virtio-blk share one disk image (`--disk FILE` or a
//! 4 MiB scratch disk); COM1 and virtio-console share one output writer.
//! The virtio devices reach guest RAM through a [`DmaMemory`] built from
//! [`BoardConfig::dma`]; without one they are not on the bus.
//!
//! Time: the board owns a clock (the host's monotonic clock, or a
//! [`ManualClock`] for deterministic tests) and hands timestamps to the
//! timers; devices never read time themselves. [`PcBoard::advance`] runs the
//! timers, feeds host input to the UART and propagates interrupt lines;
//! accesses to the PIT, port 0x61 and the APIC bring those devices up to the
//! current time first, so counter reads are exact.

use crate::ata::{
    AtaDisk, AtaStats, ATA_PORTS, ATA_PRIMARY_CTL_PORT, ATA_PRIMARY_IRQ, ATA_PRIMARY_PORT,
};
use crate::bus::{
    BusError, BusStats, IoRecord, IoTraceLog, IoTraceSink, MmioBus, MmioDevice, MmioHandler,
    PioBus, PioDevice, PioHandler,
};
use crate::debug_exit::{DebugExit, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE};
use crate::disk::{DiskError, DiskImage, SharedDisk};
use crate::fw_cfg::{
    FwCfg, FwCfgDma, FW_CFG_DMA_PORT, FW_CFG_DMA_PORTS, FW_CFG_PORT, FW_CFG_PORTS,
};
use crate::lapic::{Lapic, LapicStats, LAPIC_PAGE_SIZE};
use crate::pic::{Chip, Pic, PicStats, ELCR_PORT, PIC_MASTER_PORT, PIC_SLAVE_PORT};
use crate::pit::{Pit, PitStats, PIT_IRQ, PIT_PORT, PIT_PORTS, PORT_61};
use crate::uart::{Uart, UartStats, COM1_IRQ, COM1_PORT, UART_PORTS};
use crate::virtio::mmio::VIRTIO_MMIO_SIZE;
use crate::virtio::{DmaError, DmaMemory, VirtioBlk, VirtioConsole, VirtioMmio, VirtioStats};
use mmu::layout::{VIRTIO_MMIO_BASE, VIRTIO_MMIO_SLOT};
use mmu::{GuestRam, MachineAddr, RamRegion};
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// The POST diagnostic port.
pub const POST_PORT: u16 = 0x80;

/// virtio-mmio slot 0: the console.
pub const VIRTIO_CONSOLE_BASE: u64 = VIRTIO_MMIO_BASE;
/// virtio-mmio slot 1: the block device.
pub const VIRTIO_BLK_BASE: u64 = VIRTIO_MMIO_BASE + VIRTIO_MMIO_SLOT;
/// ISA interrupt line of virtio-mmio slot 0.
pub const VIRTIO_CONSOLE_IRQ: u8 = 5;
/// ISA interrupt line of virtio-mmio slot 1.
pub const VIRTIO_BLK_IRQ: u8 = 6;

/// Host input waiting for room in the UART FIFO is capped here; the rest
/// stays in the channel (the guest is not reading).
const INPUT_BACKLOG_MAX: usize = 4096;

/// A clock the test drives: nanoseconds since the board was created.
/// Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn now_ns(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set_ns(&self, ns: u64) {
        self.0.store(ns, Ordering::SeqCst);
    }
    pub fn advance_ns(&self, ns: u64) {
        self.0.fetch_add(ns, Ordering::SeqCst);
    }
}

/// Where the board's time comes from.
#[derive(Debug, Clone, Default)]
pub enum ClockSource {
    /// The host's monotonic clock (`Instant`), from board creation.
    #[default]
    Host,
    /// A clock the caller moves explicitly.
    Manual(ManualClock),
}

/// The board's clock; `origin` maps board nanoseconds to `Instant`s.
#[derive(Debug, Clone)]
struct BoardClock {
    source: ClockSource,
    origin: Instant,
}

impl BoardClock {
    fn now_ns(&self) -> u64 {
        match &self.source {
            ClockSource::Host => {
                u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
            }
            ClockSource::Manual(m) => m.now_ns(),
        }
    }
}

/// How to build a [`PcBoard`].
pub struct BoardConfig {
    /// Where COM1's transmitter writes (stdout in the CLI).
    pub serial_out: Box<dyn Write + Send>,
    /// Host bytes for COM1's receiver, drained by [`PcBoard::advance`]
    /// (the CLI's stdin thread sends into it).
    pub serial_in: Option<Receiver<u8>>,
    pub clock: ClockSource,
    /// Record every bus access for `--trace io` ([`PcBoard::drain_trace`]).
    pub trace_io: bool,
    /// Guest RAM in bytes, as reported to the guest by fw_cfg's
    /// `RAM_SIZE` item (QEMU's `-m`).
    pub ram_size: u64,
    /// The disk image behind the ATA drive and virtio-blk (`--disk`),
    /// opened read-write; `None` gives a 4 MiB zero-filled scratch disk.
    pub disk: Option<PathBuf>,
    /// Guest RAM and its guest-physical regions (PA, length, MA), for
    /// device DMA: `PhysLayout::ram_regions()` without a monitor, the p2m's
    /// runs with one. `None` leaves the virtio devices off the bus.
    pub dma: Option<(Arc<GuestRam>, Vec<RamRegion>)>,
}

/// Why a [`PcBoard`] could not be built.
#[derive(Debug, Error)]
pub enum BoardError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(transparent)]
    Dma(#[from] DmaError),
    #[error("cannot place device: {0}")]
    Bus(#[from] BusError),
}

/// One host writer shared by COM1 and virtio-console; a poisoned lock
/// only means a writer panicked, and the stream is still usable.
#[derive(Clone)]
struct SharedWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

impl Default for BoardConfig {
    fn default() -> Self {
        Self {
            serial_out: Box::new(std::io::sink()),
            serial_in: None,
            clock: ClockSource::Host,
            trace_io: false,
            // ringside's default `-m`.
            ram_size: 128 << 20,
            disk: None,
            dma: None,
        }
    }
}

/// Port 0x80: POST codes are accepted and remembered; reads float.
#[derive(Debug, Clone, Default)]
pub struct PostCode {
    last: Option<u8>,
}

impl PioDevice for PostCode {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xff);
    }
    fn write(&mut self, _offset: u16, data: &[u8]) {
        if let Some(v) = data.first() {
            self.last = Some(*v);
        }
    }
}

/// Keys of the port-I/O bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PioSlot {
    Uart,
    DebugExit,
    PicMaster,
    PicSlave,
    Elcr,
    Pit,
    Port61,
    Post,
    FwCfg,
    FwCfgDma,
    Ata,
    AtaCtl,
    Extra(usize),
}

/// Keys of the MMIO bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MmioSlot {
    Lapic,
    VirtioConsole,
    VirtioBlk,
    Extra(usize),
}

/// The device objects; the buses' handler.
struct Devices {
    clock: BoardClock,
    uart: Uart,
    debug_exit: DebugExit,
    pic: Pic,
    pit: Pit,
    lapic: Lapic,
    post: PostCode,
    fw_cfg: FwCfg,
    fw_cfg_dma: FwCfgDma,
    ata: AtaDisk,
    virtio_console: Option<VirtioMmio<VirtioConsole>>,
    virtio_blk: Option<VirtioMmio<VirtioBlk>>,
    extra_pio: Vec<Box<dyn PioDevice + Send>>,
    extra_mmio: Vec<Box<dyn MmioDevice + Send>>,
    /// Set by accesses whose effects must be propagated to IRQ lines.
    uart_touched: bool,
    pit_touched: bool,
    ata_touched: bool,
    virtio_touched: bool,
}

impl Devices {
    fn pit_now(&mut self) -> &mut Pit {
        self.pit.advance(self.clock.now_ns());
        self.pit_touched = true;
        &mut self.pit
    }

    fn lapic_now(&mut self) -> &mut Lapic {
        self.lapic.advance(self.clock.now_ns());
        &mut self.lapic
    }
}

impl PioHandler<PioSlot> for Devices {
    fn pio_read(&mut self, key: PioSlot, offset: u16, data: &mut [u8]) {
        match key {
            PioSlot::Uart => {
                self.uart.read(offset, data);
                self.uart_touched = true;
            }
            PioSlot::DebugExit => self.debug_exit.read(offset, data),
            PioSlot::PicMaster => self.pic.chip_io(Chip::Master).read(offset, data),
            PioSlot::PicSlave => self.pic.chip_io(Chip::Slave).read(offset, data),
            PioSlot::Elcr => self.pic.elcr_io().read(offset, data),
            PioSlot::Pit => self.pit_now().read(offset, data),
            PioSlot::Port61 => self.pit_now().port61_io().read(offset, data),
            PioSlot::Post => self.post.read(offset, data),
            PioSlot::FwCfg => self.fw_cfg.read(offset, data),
            PioSlot::FwCfgDma => self.fw_cfg_dma.read(offset, data),
            PioSlot::Ata => {
                self.ata.read(offset, data);
                self.ata_touched = true;
            }
            PioSlot::AtaCtl => self.ata.control_port().read(offset, data),
            PioSlot::Extra(i) => self.extra_pio.pio_read(i, offset, data),
        }
    }

    fn pio_write(&mut self, key: PioSlot, offset: u16, data: &[u8]) {
        match key {
            PioSlot::Uart => {
                self.uart.write(offset, data);
                self.uart_touched = true;
            }
            PioSlot::DebugExit => self.debug_exit.write(offset, data),
            PioSlot::PicMaster => self.pic.chip_io(Chip::Master).write(offset, data),
            PioSlot::PicSlave => self.pic.chip_io(Chip::Slave).write(offset, data),
            PioSlot::Elcr => self.pic.elcr_io().write(offset, data),
            PioSlot::Pit => self.pit_now().write(offset, data),
            PioSlot::Port61 => self.pit_now().port61_io().write(offset, data),
            PioSlot::Post => self.post.write(offset, data),
            PioSlot::FwCfg => self.fw_cfg.write(offset, data),
            PioSlot::FwCfgDma => self.fw_cfg_dma.write(offset, data),
            PioSlot::Ata => {
                self.ata.write(offset, data);
                self.ata_touched = true;
            }
            PioSlot::AtaCtl => {
                self.ata.control_port().write(offset, data);
                self.ata_touched = true;
            }
            PioSlot::Extra(i) => self.extra_pio.pio_write(i, offset, data),
        }
    }
}

impl MmioHandler<MmioSlot> for Devices {
    fn mmio_read(&mut self, key: MmioSlot, offset: u64, data: &mut [u8]) {
        match key {
            MmioSlot::Lapic => self.lapic_now().read(offset, data),
            MmioSlot::VirtioConsole => match &mut self.virtio_console {
                Some(d) => d.read(offset, data),
                None => data.fill(0xff),
            },
            MmioSlot::VirtioBlk => match &mut self.virtio_blk {
                Some(d) => d.read(offset, data),
                None => data.fill(0xff),
            },
            MmioSlot::Extra(i) => self.extra_mmio.mmio_read(i, offset, data),
        }
    }

    fn mmio_write(&mut self, key: MmioSlot, offset: u64, data: &[u8]) {
        match key {
            MmioSlot::Lapic => self.lapic_now().write(offset, data),
            MmioSlot::VirtioConsole => {
                if let Some(d) = &mut self.virtio_console {
                    d.write(offset, data);
                }
                self.virtio_touched = true;
            }
            MmioSlot::VirtioBlk => {
                if let Some(d) = &mut self.virtio_blk {
                    d.write(offset, data);
                }
                self.virtio_touched = true;
            }
            MmioSlot::Extra(i) => self.extra_mmio.mmio_write(i, offset, data),
        }
    }
}

/// Counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoardStats {
    pub pio: BusStats,
    pub mmio: BusStats,
    pub uart: UartStats,
    pub pic: PicStats,
    pub pit: PitStats,
    pub lapic: LapicStats,
    pub ata: AtaStats,
    /// Zero when the device is absent (no DMA view).
    pub virtio_console: VirtioStats,
    pub virtio_blk: VirtioStats,
    /// Trace records lost because nobody drained the trace.
    pub trace_dropped: u64,
}

/// The PC platform.
pub struct PcBoard {
    pio: PioBus<PioSlot>,
    mmio: MmioBus<MmioSlot>,
    dev: Devices,
    input_rx: Option<Receiver<u8>>,
    /// The input channel's sender hung up.
    input_disconnected: bool,
    pending_input: VecDeque<u8>,
    trace: Option<Arc<Mutex<IoTraceLog>>>,
    lapic_mapped: bool,
    /// The CPU's INTR level, recomputed after every change (the CPU polls
    /// it at each instruction boundary, so it must be a load).
    intr: bool,
    disk: SharedDisk,
    dma: Option<Arc<DmaMemory>>,
}

impl PcBoard {
    /// Build the board for a configuration that cannot fail: no `disk`
    /// file and no `dma` view, or ones already known to be good (tests).
    ///
    /// # Panics
    ///
    /// If [`Self::try_new`] fails; use that with user-supplied paths and
    /// region lists.
    pub fn new(cfg: BoardConfig) -> PcBoard {
        match Self::try_new(cfg) {
            Ok(b) => b,
            Err(e) => panic!("PcBoard::new: {e}"),
        }
    }

    /// Build the board: open the disk image and the DMA view, place every
    /// device on the buses.
    pub fn try_new(cfg: BoardConfig) -> Result<PcBoard, BoardError> {
        let disk = match &cfg.disk {
            Some(path) => DiskImage::open(path)?,
            None => DiskImage::scratch(),
        }
        .shared();
        let dma = match cfg.dma {
            Some((ram, regions)) => Some(Arc::new(DmaMemory::new(ram, regions)?)),
            None => None,
        };
        let mut pio = PioBus::new();
        // The fixed PC port map: constants, disjoint by construction (and
        // checked by a unit test).
        let map: [(u16, u32, &'static str, PioSlot); 12] = [
            (PIC_MASTER_PORT, 2, "pic-master", PioSlot::PicMaster),
            (PIT_PORT, PIT_PORTS, "pit", PioSlot::Pit),
            (PORT_61, 1, "port61", PioSlot::Port61),
            (POST_PORT, 1, "post", PioSlot::Post),
            (PIC_SLAVE_PORT, 2, "pic-slave", PioSlot::PicSlave),
            (
                DEBUG_EXIT_PORT,
                DEBUG_EXIT_SIZE,
                "debug-exit",
                PioSlot::DebugExit,
            ),
            (COM1_PORT, UART_PORTS, "uart", PioSlot::Uart),
            (ELCR_PORT, 2, "elcr", PioSlot::Elcr),
            (FW_CFG_PORT, FW_CFG_PORTS, "fw-cfg", PioSlot::FwCfg),
            (
                FW_CFG_DMA_PORT,
                FW_CFG_DMA_PORTS,
                "fw-cfg-dma",
                PioSlot::FwCfgDma,
            ),
            (ATA_PRIMARY_PORT, ATA_PORTS, "ata", PioSlot::Ata),
            (ATA_PRIMARY_CTL_PORT, 1, "ata-ctl", PioSlot::AtaCtl),
        ];
        for (base, len, name, key) in map {
            pio.register(base, len, name, key)
                .expect("the fixed PC port map has no overlaps");
        }
        let pit = Pit::new();
        let serial_out = SharedWriter(Arc::new(Mutex::new(cfg.serial_out)));
        let uart = Uart::new(Box::new(serial_out.clone()));
        // The interrupt lines start at the devices' power-on levels.
        let levels = u16::from(pit.out(0)) << PIT_IRQ | u16::from(uart.irq_level()) << COM1_IRQ;
        let pic = Pic::with_line_levels(levels);
        let lapic = Lapic::new(0);
        let mut mmio = MmioBus::new();
        mmio.register(lapic.base(), LAPIC_PAGE_SIZE, "lapic", MmioSlot::Lapic)
            .expect("the MMIO bus is empty");
        let (virtio_console, virtio_blk) = match &dma {
            Some(dma) => {
                mmio.register(
                    VIRTIO_CONSOLE_BASE,
                    VIRTIO_MMIO_SIZE,
                    "virtio-console",
                    MmioSlot::VirtioConsole,
                )?;
                mmio.register(
                    VIRTIO_BLK_BASE,
                    VIRTIO_MMIO_SIZE,
                    "virtio-blk",
                    MmioSlot::VirtioBlk,
                )?;
                (
                    Some(VirtioMmio::new(
                        VirtioConsole::new(Box::new(serial_out.clone())),
                        dma.clone(),
                    )),
                    Some(VirtioMmio::new(VirtioBlk::new(disk.clone()), dma.clone())),
                )
            }
            None => (None, None),
        };

        let mut board = PcBoard {
            pio,
            mmio,
            dev: Devices {
                clock: BoardClock {
                    source: cfg.clock,
                    origin: Instant::now(),
                },
                uart,
                debug_exit: DebugExit::new(),
                pic,
                pit,
                lapic,
                post: PostCode::default(),
                fw_cfg: FwCfg::new(cfg.ram_size),
                fw_cfg_dma: FwCfgDma,
                ata: AtaDisk::new(disk.clone()),
                virtio_console,
                virtio_blk,
                extra_pio: Vec::new(),
                extra_mmio: Vec::new(),
                uart_touched: false,
                pit_touched: false,
                ata_touched: false,
                virtio_touched: false,
            },
            input_rx: cfg.serial_in,
            input_disconnected: false,
            pending_input: VecDeque::new(),
            trace: None,
            lapic_mapped: true,
            intr: false,
            disk,
            dma,
        };
        board.set_trace_io(cfg.trace_io);
        Ok(board)
    }

    // ----- bus accesses -----

    /// IN: `size` 1, 2 or 4 bytes from `port`. Unassigned bytes read 0xff;
    /// other sizes are a caller bug and read all-ones without an access.
    pub fn pio_read(&mut self, port: u16, size: u8) -> u32 {
        let mut buf = [0u8; 4];
        let Some(data) = valid_size(size, 4).and_then(|n| buf.get_mut(..n)) else {
            return u32::MAX;
        };
        self.pio.read(port, data, &mut self.dev);
        self.after_access();
        u32::from_le_bytes(buf)
    }

    /// OUT: the low `size` bytes of `val` to `port`.
    pub fn pio_write(&mut self, port: u16, size: u8, val: u32) {
        let bytes = val.to_le_bytes();
        let Some(data) = valid_size(size, 4).and_then(|n| bytes.get(..n)) else {
            return;
        };
        self.pio.write(port, data, &mut self.dev);
        self.after_access();
    }

    /// Load `size` (1, 2, 4, 8) bytes at a non-RAM physical address.
    /// Unassigned bytes read 0xff.
    pub fn mmio_read(&mut self, pa: u64, size: u8) -> u64 {
        let mut buf = [0u8; 8];
        let Some(data) = valid_size(size, 8).and_then(|n| buf.get_mut(..n)) else {
            return u64::MAX;
        };
        self.mmio.read(pa, data, &mut self.dev);
        self.after_access();
        u64::from_le_bytes(buf)
    }

    /// Store the low `size` bytes of `val` at a non-RAM physical address.
    pub fn mmio_write(&mut self, pa: u64, size: u8, val: u64) {
        let bytes = val.to_le_bytes();
        let Some(data) = valid_size(size, 8).and_then(|n| bytes.get(..n)) else {
            return;
        };
        self.mmio.write(pa, data, &mut self.dev);
        self.after_access();
    }

    /// Propagate what an access changed to the interrupt lines.
    fn after_access(&mut self) {
        if std::mem::take(&mut self.dev.uart_touched) {
            // An RBR read may have made room for waiting host input.
            self.pump_input();
            self.sync_uart_irq();
        }
        if std::mem::take(&mut self.dev.pit_touched) {
            self.sync_pit_irq();
        }
        if std::mem::take(&mut self.dev.ata_touched) {
            let level = self.dev.ata.irq_level();
            self.dev.pic.set_irq(ATA_PRIMARY_IRQ, level);
        }
        if std::mem::take(&mut self.dev.virtio_touched) {
            self.sync_virtio_irqs();
        }
        self.update_intr();
    }

    fn sync_virtio_irqs(&mut self) {
        if let Some(d) = &self.dev.virtio_console {
            self.dev.pic.set_irq(VIRTIO_CONSOLE_IRQ, d.irq_level());
        }
        if let Some(d) = &self.dev.virtio_blk {
            self.dev.pic.set_irq(VIRTIO_BLK_IRQ, d.irq_level());
        }
    }

    // ----- interrupts -----

    /// The CPU's INTR: the APIC has a deliverable interrupt, or the 8259
    /// requests one and reaches the CPU (virtual wire). A cached level:
    /// cheap enough for every instruction boundary.
    pub fn interrupt_pending(&self) -> bool {
        self.intr
    }

    fn update_intr(&mut self) {
        self.intr = self.dev.lapic.interrupt_pending()
            || (self.dev.lapic.pic_passthrough() && self.dev.pic.interrupt_pending());
    }

    /// INTA: the APIC's highest deliverable vector first, then the 8259's
    /// (its INTA cycle: IRR → ISR, possibly a spurious IRQ 15 vector).
    /// `None` if nothing is pending.
    pub fn ack_interrupt(&mut self) -> Option<u8> {
        let v = if self.dev.lapic.interrupt_pending() {
            self.dev.lapic.acknowledge()
        } else if self.dev.lapic.pic_passthrough() && self.dev.pic.interrupt_pending() {
            Some(self.dev.pic.acknowledge())
        } else {
            None
        };
        self.update_intr();
        v
    }

    /// Drive ISA line `line` from an added device. Lines 0 (PIT), 4
    /// (COM1), 14 (ATA) and, when the virtio devices are present, 5 and 6
    /// are driven by the board itself.
    pub fn set_irq(&mut self, line: u8, level: bool) {
        let virtio = self.dma.is_some() && matches!(line, VIRTIO_CONSOLE_IRQ | VIRTIO_BLK_IRQ);
        if !matches!(line, PIT_IRQ | COM1_IRQ | ATA_PRIMARY_IRQ) && !virtio {
            self.dev.pic.set_irq(line, level);
            self.update_intr();
        }
    }

    fn sync_pit_irq(&mut self) {
        let pic = &mut self.dev.pic;
        if self.dev.pit.take_irq0_edges() > 0 {
            // Edges between two samples: show the PIC a rising edge even if
            // OUT0 is high at both ends (mode 2's one-clock low pulse).
            pic.set_irq(PIT_IRQ, false);
            pic.set_irq(PIT_IRQ, true);
        }
        pic.set_irq(PIT_IRQ, self.dev.pit.out(0));
    }

    fn sync_uart_irq(&mut self) {
        let level = self.dev.uart.irq_level();
        self.dev.pic.set_irq(COM1_IRQ, level);
    }

    // ----- time -----

    /// Board time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.dev.clock.now_ns()
    }

    /// Bring the board up to the current time: run the PIT and APIC timers,
    /// take host input into the UART, and propagate interrupt lines.
    pub fn advance(&mut self) {
        let now = self.dev.clock.now_ns();
        self.dev.pit.advance(now);
        self.dev.lapic.advance(now);
        self.drain_input_channel();
        self.pump_input();
        self.sync_uart_irq();
        self.sync_pit_irq();
        self.update_intr();
    }

    /// When the next timer interrupt is due (board nanoseconds); `None`
    /// when no timer is armed.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        match (
            self.dev.pit.next_deadline_ns(),
            self.dev.lapic.next_deadline_ns(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// [`Self::next_deadline_ns`] as a host `Instant` (for sleeping in HLT
    /// and for kicking a KVM vCPU). With a manual clock the instant is
    /// relative to board creation and only useful for ordering.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline_ns()
            .map(|ns| self.dev.clock.origin + Duration::from_nanos(ns))
    }

    // ----- serial input -----

    /// Queue host bytes for COM1's receiver; they enter the FIFO as it has
    /// room (now, on RBR reads, and in [`Self::advance`]).
    pub fn queue_input(&mut self, bytes: &[u8]) {
        self.pending_input.extend(bytes);
        self.pump_input();
        self.sync_uart_irq();
        self.update_intr();
    }

    /// Host bytes waiting for room in the UART.
    pub fn input_backlog(&self) -> usize {
        self.pending_input.len()
    }

    /// The input channel's sender is gone (stdin reached EOF) and every
    /// byte it sent is in the UART. False when the board was built without
    /// an input channel.
    pub fn input_closed(&self) -> bool {
        self.input_disconnected && self.pending_input.is_empty()
    }

    fn drain_input_channel(&mut self) {
        let Some(rx) = self.input_rx.as_ref() else {
            return;
        };
        while self.pending_input.len() < INPUT_BACKLOG_MAX {
            match rx.try_recv() {
                Ok(b) => self.pending_input.push_back(b),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.input_rx = None;
                    self.input_disconnected = true;
                    break;
                }
            }
        }
    }

    fn pump_input(&mut self) {
        while !self.pending_input.is_empty() {
            let (front, _) = self.pending_input.as_slices();
            let n = self.dev.uart.receive(front);
            if n == 0 {
                break;
            }
            self.pending_input.drain(..n);
        }
    }

    // ----- CPU-side registers -----

    /// The debug-exit status `(v << 1) | 1`, once the guest asked to exit.
    pub fn exit_request(&self) -> Option<u32> {
        self.dev.debug_exit.exit_request()
    }

    /// IA32_APIC_BASE written: move (or unmap) the APIC's register page.
    /// If the new page overlaps an added MMIO device, the APIC page stays
    /// unmapped ([`Self::lapic_mapped`]).
    pub fn set_apic_base(&mut self, apic_base: u64) {
        let now = self.dev.clock.now_ns();
        self.dev.lapic.advance(now);
        self.dev.lapic.set_apic_base(apic_base);
        self.mmio.unregister(MmioSlot::Lapic);
        self.lapic_mapped = self.dev.lapic.mmio_enabled()
            && self
                .mmio
                .register(
                    self.dev.lapic.base(),
                    LAPIC_PAGE_SIZE,
                    "lapic",
                    MmioSlot::Lapic,
                )
                .is_ok();
        self.update_intr();
    }

    /// The APIC register page is decoded.
    pub fn lapic_mapped(&self) -> bool {
        self.lapic_mapped
    }

    /// Task priority written through CR8 or synced from KVM: the full TPR
    /// value (`TPR[7:4]` = `CR8[3:0]`; see [`Self::set_cr8`]).
    pub fn set_tpr(&mut self, tpr: u8) {
        self.dev.lapic.set_tpr(tpr);
        self.update_intr();
    }

    /// MOV to CR8: TPR = `CR8[3:0]` << 4.
    pub fn set_cr8(&mut self, cr8: u64) {
        self.set_tpr(((cr8 & 0xf) as u8) << 4);
    }

    /// The APIC's TPR (MOV from CR8 returns `tpr() >> 4`).
    pub fn tpr(&self) -> u8 {
        self.dev.lapic.tpr()
    }

    // ----- extension -----

    /// Add a port-I/O device (future ISA devices).
    pub fn add_pio_device(
        &mut self,
        base: u16,
        len: u32,
        name: &'static str,
        dev: Box<dyn PioDevice + Send>,
    ) -> Result<(), BusError> {
        let key = PioSlot::Extra(self.dev.extra_pio.len());
        self.pio.register(base, len, name, key)?;
        self.dev.extra_pio.push(dev);
        Ok(())
    }

    /// Add an MMIO device (e.g. virtio-mmio slots).
    pub fn add_mmio_device(
        &mut self,
        base: u64,
        len: u64,
        name: &'static str,
        dev: Box<dyn MmioDevice + Send>,
    ) -> Result<(), BusError> {
        let key = MmioSlot::Extra(self.dev.extra_mmio.len());
        self.mmio.register(base, len, name, key)?;
        self.dev.extra_mmio.push(dev);
        Ok(())
    }

    // ----- observation -----

    pub fn stats(&self) -> BoardStats {
        BoardStats {
            pio: self.pio.stats(),
            mmio: self.mmio.stats(),
            uart: self.dev.uart.stats(),
            pic: self.dev.pic.stats(),
            pit: self.dev.pit.stats(),
            lapic: self.dev.lapic.stats(),
            ata: self.dev.ata.stats(),
            virtio_console: self
                .dev
                .virtio_console
                .as_ref()
                .map(|d| d.stats())
                .unwrap_or_default(),
            virtio_blk: self
                .dev
                .virtio_blk
                .as_ref()
                .map(|d| d.stats())
                .unwrap_or_default(),
            trace_dropped: self
                .trace
                .as_ref()
                .map(|t| t.lock().unwrap_or_else(|e| e.into_inner()).dropped())
                .unwrap_or(0),
        }
    }

    /// Turn `--trace io` recording on or off.
    pub fn set_trace_io(&mut self, on: bool) {
        if on == self.trace.is_some() {
            return;
        }
        if on {
            let log = Arc::new(Mutex::new(IoTraceLog::default()));
            let sink = |l: &Arc<Mutex<IoTraceLog>>| -> Option<Box<dyn IoTraceSink>> {
                Some(Box::new(l.clone()))
            };
            self.pio.set_trace_sink(sink(&log));
            self.mmio.set_trace_sink(sink(&log));
            self.trace = Some(log);
        } else {
            self.pio.set_trace_sink(None);
            self.mmio.set_trace_sink(None);
            self.trace = None;
        }
    }

    /// Take the recorded accesses, oldest first (empty when tracing is off).
    pub fn drain_trace(&mut self) -> Vec<IoRecord> {
        match &self.trace {
            Some(t) => t.lock().unwrap_or_else(|e| e.into_inner()).drain(),
            None => Vec::new(),
        }
    }

    /// The last POST code written to port 0x80.
    pub fn post_code(&self) -> Option<u8> {
        self.dev.post.last
    }

    pub fn pic(&self) -> &Pic {
        &self.dev.pic
    }

    pub fn pit(&self) -> &Pit {
        &self.dev.pit
    }

    pub fn lapic(&self) -> &Lapic {
        &self.dev.lapic
    }

    pub fn uart(&self) -> &Uart {
        &self.dev.uart
    }

    pub fn ata(&self) -> &AtaDisk {
        &self.dev.ata
    }

    /// virtio-mmio slot 0, present when the board has a DMA view.
    pub fn virtio_console(&self) -> Option<&VirtioMmio<VirtioConsole>> {
        self.dev.virtio_console.as_ref()
    }

    /// virtio-mmio slot 1, present when the board has a DMA view.
    pub fn virtio_blk(&self) -> Option<&VirtioMmio<VirtioBlk>> {
        self.dev.virtio_blk.as_ref()
    }

    /// The disk image shared by the ATA drive and virtio-blk.
    pub fn disk(&self) -> &SharedDisk {
        &self.disk
    }

    /// Machine-address ranges devices wrote by DMA since the last call,
    /// so the machine can drop decoded code there. Empty without a DMA
    /// view (the ATA drive moves data through the CPU, not by DMA).
    pub fn take_dma_writes(&self) -> Vec<(MachineAddr, u64)> {
        self.dma
            .as_ref()
            .map(|d| d.take_writes())
            .unwrap_or_default()
    }
}

/// `size` as a byte count if it is 1, 2, 4 (or 8 when `max` is 8).
fn valid_size(size: u8, max: u8) -> Option<usize> {
    (matches!(size, 1 | 2 | 4 | 8) && size <= max).then_some(usize::from(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uart::tests::SharedBuf;

    fn board() -> (PcBoard, ManualClock, SharedBuf) {
        let clock = ManualClock::new();
        let out = SharedBuf::default();
        let b = PcBoard::new(BoardConfig {
            serial_out: Box::new(out.clone()),
            serial_in: None,
            clock: ClockSource::Manual(clock.clone()),
            trace_io: false,
            ram_size: 128 << 20,
            disk: None,
            dma: None,
        });
        (b, clock, out)
    }

    /// Linux's init_8259A(): vectors 0x30/0x38, cascade on IR2, x86 mode.
    fn init_pic(b: &mut PcBoard, imr_master: u8) {
        for (port, v) in [
            (0x21, 0xff),
            (0xa1, 0xff),
            (0x20, 0x11),
            (0x21, 0x30),
            (0x21, 0x04),
            (0x21, 0x01),
            (0xa0, 0x11),
            (0xa1, 0x38),
            (0xa1, 0x02),
            (0xa1, 0x01),
            (0x21, imr_master),
            (0xa1, 0xff),
        ] {
            b.pio_write(port, 1, u32::from(v));
        }
    }

    #[test]
    fn board_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<PcBoard>();
    }

    #[test]
    fn pit_irq0_through_pic_to_cpu() {
        let (mut b, clock, _) = board();
        init_pic(&mut b, 0xfe);
        assert_eq!(b.pio_read(0x21, 1), 0xfe, "IMR reads back");
        // PIT channel 0, mode 2, 1193 clocks (≈1 ms).
        b.pio_write(0x43, 1, 0x34);
        b.pio_write(0x40, 1, 1193 & 0xff);
        b.pio_write(0x40, 1, 1193 >> 8);
        assert!(b.next_deadline_ns().is_some());
        b.advance();
        assert!(!b.interrupt_pending());
        let mut taken = 0;
        for _ in 0..1000 {
            clock.advance_ns(100_000);
            b.advance();
            if b.interrupt_pending() {
                assert_eq!(b.ack_interrupt(), Some(0x30), "vector base + 0");
                b.pio_write(0x20, 1, 0x20); // EOI
                taken += 1;
            }
        }
        assert_eq!(taken, 100, "100 ms of a 1 kHz timer");
        assert_eq!(b.stats().pic.acks, 100);
        // Masked: no interrupt.
        b.pio_write(0x21, 1, 0xff);
        clock.advance_ns(10_000_000);
        b.advance();
        assert!(!b.interrupt_pending());
        assert_eq!(b.ack_interrupt(), None);
    }

    #[test]
    fn unassigned_ports_and_mmio_read_all_ones() {
        let (mut b, _, _) = board();
        assert_eq!(b.pio_read(0x1234, 1), 0xff);
        assert_eq!(b.pio_read(0x1234, 2), 0xffff);
        assert_eq!(b.pio_read(0xcf8, 4), 0xffff_ffff);
        b.pio_write(0x1234, 1, 0x55);
        assert_eq!(b.mmio_read(0xd000_0000, 4), 0xffff_ffff);
        assert_eq!(b.mmio_read(0xc000_0000, 8), u64::MAX);
        assert_eq!(b.mmio_read(0xfec0_0000, 1), 0xff);
        b.mmio_write(0xd000_0000, 4, 1);
        let s = b.stats();
        assert_eq!((s.pio.unassigned_reads, s.pio.unassigned_writes), (3, 1));
        assert_eq!((s.mmio.unassigned_reads, s.mmio.unassigned_writes), (3, 1));
        // Port 0x80 is assigned (POST codes), silently.
        b.pio_write(0x80, 1, 0xaa);
        assert_eq!(b.post_code(), Some(0xaa));
        assert_eq!(b.stats().pio.unassigned_writes, 1);
        // Bad sizes are not accesses.
        assert_eq!(b.pio_read(0x3f8, 3), u32::MAX);
        assert_eq!(b.mmio_read(0xfee0_0030, 0), u64::MAX);
    }

    #[test]
    fn serial_output_and_input_with_irq4() {
        let (mut b, _, out) = board();
        for c in b"ok\n" {
            while b.pio_read(0x3fd, 1) & 0x20 == 0 {}
            b.pio_write(0x3f8, 1, u32::from(*c));
        }
        assert_eq!(out.contents(), b"ok\n");
        assert_eq!(b.stats().uart.tx_bytes, 3);

        init_pic(&mut b, 0xef); // unmask IRQ 4
        b.pio_write(0x3f9, 1, 0x01); // IER: RDA
        assert!(!b.interrupt_pending());
        b.queue_input(b"xy");
        assert!(b.interrupt_pending());
        assert_eq!(b.ack_interrupt(), Some(0x34), "IRQ 4");
        assert_eq!(b.pio_read(0x3fa, 1) & 0x0f, 0x04, "IIR: RDA");
        assert_eq!(b.pio_read(0x3fd, 1) & 1, 1);
        assert_eq!(b.pio_read(0x3f8, 1), u32::from(b'x'));
        assert_eq!(b.pio_read(0x3f8, 1), u32::from(b'y'));
        assert_eq!(b.pio_read(0x3fd, 1) & 1, 0);
        b.pio_write(0x20, 1, 0x20);
        assert!(!b.interrupt_pending());
    }

    #[test]
    fn serial_input_larger_than_fifo_and_from_channel() {
        let (tx, rx) = std::sync::mpsc::channel();
        let clock = ManualClock::new();
        let mut b = PcBoard::new(BoardConfig {
            serial_in: Some(rx),
            clock: ClockSource::Manual(clock),
            ..BoardConfig::default()
        });
        let text: Vec<u8> = (0..200u32).map(|i| b'a' + (i % 26) as u8).collect();
        for c in &text {
            tx.send(*c).unwrap();
        }
        drop(tx);
        assert!(!b.input_closed());
        b.advance();
        assert_eq!(b.input_backlog(), 200 - 64);
        let mut got = Vec::new();
        while b.pio_read(0x3fd, 1) & 1 != 0 {
            got.push(b.pio_read(0x3f8, 1) as u8);
        }
        assert_eq!(got, text, "the FIFO refills as the guest reads");
        b.advance();
        assert!(b.input_closed());
    }

    #[test]
    fn debug_exit_port() {
        let (mut b, _, _) = board();
        assert_eq!(b.exit_request(), None);
        assert_eq!(b.pio_read(0xf4, 1), 0xff);
        b.pio_write(0xf4, 4, 0x31);
        assert_eq!(b.exit_request(), Some(0x63));
    }

    #[test]
    fn fw_cfg_ports() {
        let mut b = PcBoard::new(BoardConfig {
            clock: ClockSource::Manual(ManualClock::new()),
            ram_size: 256 << 20,
            ..BoardConfig::default()
        });
        // kvm-unit-tests: outw(key, 0x510), then inb(0x511) per byte.
        let mut get = |key: u16, n: usize| -> Vec<u8> {
            b.pio_write(0x510, 2, u32::from(key));
            (0..n).map(|_| b.pio_read(0x511, 1) as u8).collect()
        };
        assert_eq!(get(0x00, 4), b"QEMU");
        assert_eq!(get(0x01, 4), [1, 0, 0, 0]);
        assert_eq!(get(0x05, 2), [1, 0], "NB_CPUS");
        assert_eq!(get(0x0f, 2), [1, 0], "MAX_CPUS");
        assert_eq!(get(0x03, 9), [0, 0, 0, 0x10, 0, 0, 0, 0, 0], "RAM_SIZE");
        assert_eq!(get(0x19, 4), [0; 4], "FILE_DIR");
        assert_eq!(get(0x1234, 2), [0, 0], "unknown key");
        // An 8-bit OUT does not select (QEMU: an ignored data write).
        b.pio_write(0x510, 2, 0x05);
        b.pio_write(0x510, 1, 0x00);
        assert_eq!(b.pio_read(0x511, 1), 1, "still NB_CPUS");
        // The DMA address register is decoded but inert.
        assert_eq!(b.pio_read(0x514, 4), 0);
        assert_eq!(b.pio_read(0x518, 4), 0);
        b.pio_write(0x518, 4, 0x1000);
        assert_eq!(b.stats().pio.unassigned_reads, 0);
        assert_eq!(b.stats().pio.unassigned_writes, 0);
        // 0x512-0x513 stay unassigned, as on QEMU.
        assert_eq!(b.pio_read(0x512, 2), 0xffff);
    }

    #[test]
    fn lapic_mmio_self_ipi_and_timer() {
        let (mut b, clock, _) = board();
        let apic = 0xfee0_0000;
        assert_eq!(b.mmio_read(apic + 0x30, 4), 0x0005_0014);
        b.mmio_write(apic + 0xf0, 4, 0x1ff); // SVR: enable
        b.mmio_write(apic + 0x300, 4, 0x0004_0050); // self-IPI 0x50
        assert!(b.interrupt_pending());
        assert_eq!(b.ack_interrupt(), Some(0x50));
        b.mmio_write(apic + 0xb0, 4, 0);
        // One-shot timer, divide by 1, 1 ms.
        b.mmio_write(apic + 0x3e0, 4, 0xb);
        b.mmio_write(apic + 0x320, 4, 0x60);
        b.mmio_write(apic + 0x380, 4, 1_000_000);
        assert_eq!(b.next_deadline_ns(), Some(1_000_000));
        clock.advance_ns(400_000);
        assert_eq!(b.mmio_read(apic + 0x390, 4), 600_000, "fresh count on read");
        clock.advance_ns(600_000);
        b.advance();
        assert_eq!(b.ack_interrupt(), Some(0x60));
        assert_eq!(b.next_deadline_ns(), None);
        // CR8 masking.
        b.set_cr8(0xf);
        assert_eq!(b.tpr(), 0xf0);
        b.mmio_write(apic + 0x300, 4, 0x0004_0070);
        assert!(!b.interrupt_pending());
        b.set_tpr(0);
        assert!(b.interrupt_pending(), "lowering TPR updates INTR");
        assert_eq!(b.ack_interrupt(), Some(0x70));
        assert!(!b.interrupt_pending());
    }

    #[test]
    fn pic_reaches_cpu_only_in_virtual_wire_mode() {
        let (mut b, _, _) = board();
        init_pic(&mut b, 0xef);
        b.pio_write(0x3f9, 1, 0x02); // IER: THRE → IRQ 4 now
        assert!(
            b.interrupt_pending(),
            "APIC software-disabled: virtual wire"
        );
        let apic = 0xfee0_0000;
        b.mmio_write(apic + 0xf0, 4, 0x1ff);
        assert!(!b.interrupt_pending(), "APIC on, LINT0 masked: PIC cut off");
        b.mmio_write(apic + 0x350, 4, 0x700);
        assert!(b.interrupt_pending(), "LINT0 ExtINT");
        // APIC interrupts come first.
        b.mmio_write(apic + 0x300, 4, 0x0004_0080);
        assert_eq!(b.ack_interrupt(), Some(0x80));
        assert_eq!(b.ack_interrupt(), Some(0x34));
        // Globally disabled: PIC again, page not decoded.
        b.set_apic_base(0xfee0_0000 | 1 << 8);
        assert!(!b.lapic_mapped());
        assert_eq!(b.mmio_read(apic + 0x30, 4), 0xffff_ffff);
    }

    #[test]
    fn apic_relocation() {
        let (mut b, _, _) = board();
        b.set_apic_base(0xfed0_0000 | 1 << 11 | 1 << 8);
        assert!(b.lapic_mapped());
        assert_eq!(b.mmio_read(0xfee0_0030, 4), 0xffff_ffff);
        assert_eq!(b.mmio_read(0xfed0_0030, 4), 0x0005_0014);
        b.set_apic_base(0xfee0_0000 | 1 << 11 | 1 << 8);
        assert_eq!(b.mmio_read(0xfee0_0030, 4), 0x0005_0014);
    }

    #[test]
    fn pit_counter_and_port61_read_fresh_time() {
        let (mut b, clock, _) = board();
        b.pio_write(0x61, 1, 0x01);
        b.pio_write(0x43, 1, 0xb0);
        b.pio_write(0x42, 1, 0xff);
        b.pio_write(0x42, 1, 0xff);
        clock.set_ns(crate::pit::clocks_to_ns(0x100));
        b.pio_write(0x43, 1, 0x80); // latch channel 2
        let lo = b.pio_read(0x42, 1);
        let hi = b.pio_read(0x42, 1);
        assert_eq!(lo | hi << 8, 0xffff - 0x100);
        assert_eq!(b.pio_read(0x61, 1) & 0x20, 0);
        clock.set_ns(crate::pit::clocks_to_ns(0xffff));
        assert_eq!(b.pio_read(0x61, 1) & 0x20, 0x20);
    }

    #[test]
    fn trace_records_accesses_in_order() {
        let (mut b, _, _) = board();
        b.pio_write(0x80, 1, 0x12); // not traced yet
        b.set_trace_io(true);
        b.pio_write(0x3f8, 1, u32::from(b'A'));
        b.mmio_read(0xfee0_0030, 4);
        b.pio_read(0x1234, 2);
        let t = b.drain_trace();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].device, Some("uart"));
        assert_eq!(t[1].device, Some("lapic"));
        assert_eq!(t[1].value, 0x0005_0014);
        assert!(t[2].unassigned);
        assert_eq!(t[2].to_string(), "pio  in  0x1234/2 = 0xffff (unassigned)");
        assert!(b.drain_trace().is_empty());
        b.set_trace_io(false);
        b.pio_read(0x1234, 2);
        assert!(b.drain_trace().is_empty());
    }

    #[test]
    fn added_devices_share_the_buses() {
        let (mut b, _, _) = board();
        let e = b.add_pio_device(0x3f8, 8, "com1-again", Box::new(PostCode::default()));
        assert!(matches!(e, Err(BusError::Overlap { .. })));
        b.add_mmio_device(
            0xd000_0000,
            0x1000,
            "virtio",
            Box::new(crate::lapic::Lapic::new(7)),
        )
        .unwrap();
        assert_eq!(b.mmio_read(0xd000_0020, 4), 7 << 24);
        // Relocating the APIC onto it fails cleanly.
        b.set_apic_base(0xd000_0000 | 1 << 11);
        assert!(!b.lapic_mapped());
    }

    /// A board with 1 MiB of RAM and the virtio devices.
    fn virtio_board() -> (PcBoard, Arc<GuestRam>, SharedBuf) {
        let ram = Arc::new(GuestRam::new(1 << 20).unwrap());
        let regions = mmu::PhysLayout::new(1 << 20).ram_regions();
        let out = SharedBuf::default();
        let b = PcBoard::try_new(BoardConfig {
            serial_out: Box::new(out.clone()),
            clock: ClockSource::Manual(ManualClock::new()),
            dma: Some((ram.clone(), regions)),
            ..BoardConfig::default()
        })
        .unwrap();
        (b, ram, out)
    }

    /// Driver setup of queue `q` of the slot at `base`, with 8 entries at
    /// PA `ring` (descriptors, avail at +0x100, used at +0x200), DRIVER_OK.
    fn virtio_setup(b: &mut PcBoard, base: u64, q: u64, ring: u64) {
        for (off, v) in [
            (0x070, 0),
            (0x070, 1),
            (0x070, 3),
            (0x024, 1),
            (0x020, 1),
            (0x070, 0x0b),
            (0x030, q),
            (0x038, 8),
            (0x080, ring),
            (0x090, ring + 0x100),
            (0x0a0, ring + 0x200),
            (0x044, 1),
            (0x070, 0x0f),
        ] {
            b.mmio_write(base + off, 4, v);
        }
        assert_eq!(b.mmio_read(base + 0x070, 4), 0x0f);
    }

    /// Publish a chain of (addr, len, device-writable) descriptors at
    /// descriptor 0 as available entry `n`.
    fn virtio_submit(ram: &GuestRam, ring: u64, n: u16, descs: &[(u64, u32, bool)]) {
        for (i, &(addr, len, w)) in descs.iter().enumerate() {
            let more = i + 1 < descs.len();
            let flags = u16::from(more) | if w { 2 } else { 0 };
            let d = ring + 16 * i as u64;
            ram.write_le(MachineAddr(d), 8, addr).unwrap();
            ram.write_le(MachineAddr(d + 8), 4, u64::from(len)).unwrap();
            ram.write_le(MachineAddr(d + 12), 2, u64::from(flags))
                .unwrap();
            ram.write_le(MachineAddr(d + 14), 2, (i + 1) as u64)
                .unwrap();
        }
        ram.write_le(MachineAddr(ring + 0x104 + 2 * u64::from(n % 8)), 2, 0)
            .unwrap();
        ram.write_le(MachineAddr(ring + 0x102), 2, u64::from(n + 1))
            .unwrap();
    }

    #[test]
    fn ata_disk_on_the_primary_channel_with_irq14() {
        let (mut b, _, _) = board();
        init_pic(&mut b, 0xfb); // cascade open
        b.pio_write(0xa1, 1, 0xbf); // unmask IRQ 14
        assert_eq!(b.pio_read(0x1f7, 1), 0x50);
        b.pio_write(0x1f6, 1, 0xe0);
        b.pio_write(0x1f7, 1, 0xec);
        assert!(b.interrupt_pending(), "IDENTIFY data ready: IRQ 14");
        assert_eq!(b.ack_interrupt(), Some(0x38 + 6));
        assert_eq!(b.pio_read(0x3f6, 1), 0x58, "alternate status: DRQ");
        let words: Vec<u32> = (0..256).map(|_| b.pio_read(0x1f0, 2)).collect();
        assert_eq!(words[60], 8192 & 0xffff, "4 MiB scratch disk");
        assert_eq!(b.pio_read(0x1f7, 1), 0x50);
        let s = b.stats().ata;
        assert_eq!((s.commands, s.data_accesses), (1, 256));
        assert_eq!(b.stats().pio.unassigned_reads, 0);
    }

    #[test]
    fn virtio_console_output_joins_com1_and_raises_irq5() {
        let (mut b, ram, out) = virtio_board();
        assert_eq!(b.mmio_read(0xd000_0000, 4), 0x7472_6976);
        assert_eq!(b.mmio_read(0xd000_0008, 4), 3);
        assert_eq!(b.mmio_read(0xd000_1008, 4), 2);
        init_pic(&mut b, 0xdf); // unmask IRQ 5
        b.pio_write(0x3f8, 1, u32::from(b'A'));
        virtio_setup(&mut b, 0xd000_0000, 1, 0x10000);
        ram.write(MachineAddr(0x20000), b"virtio").unwrap();
        virtio_submit(&ram, 0x10000, 0, &[(0x20000, 6, false)]);
        assert!(b.take_dma_writes().is_empty());
        b.mmio_write(0xd000_0050, 4, 1);
        b.pio_write(0x3f8, 1, u32::from(b'Z'));
        assert_eq!(out.contents(), b"AvirtioZ");
        assert_eq!(ram.read_le(MachineAddr(0x10202), 2).unwrap(), 1);
        assert!(b.interrupt_pending());
        assert_eq!(b.ack_interrupt(), Some(0x35));
        b.pio_write(0x20, 1, 0x20);
        b.mmio_write(0xd000_0064, 4, 1);
        assert!(!b.interrupt_pending(), "InterruptACK drops the line");
        let writes = b.take_dma_writes();
        assert!(writes
            .iter()
            .all(|&(ma, len)| ma.0 >= 0x10200 && ma.0 + len <= 0x10210));
        assert!(!writes.is_empty());
        let s = b.stats().virtio_console;
        assert_eq!((s.notifies, s.chains, s.bytes_from_guest), (1, 1, 6));
    }

    #[test]
    fn ata_and_virtio_blk_share_the_disk() {
        let (mut b, ram, _) = virtio_board();
        // ATA: write sector 7.
        b.pio_write(0x1f6, 1, 0xe0);
        b.pio_write(0x1f2, 1, 1);
        b.pio_write(0x1f3, 1, 7);
        b.pio_write(0x1f4, 1, 0);
        b.pio_write(0x1f5, 1, 0);
        b.pio_write(0x1f7, 1, 0x30);
        for i in 0..128u32 {
            b.pio_write(0x1f0, 4, 0x0101_0101 * (i & 0xff));
        }
        assert_eq!(b.pio_read(0x1f7, 1), 0x50);
        // virtio-blk: read it back.
        virtio_setup(&mut b, 0xd000_1000, 0, 0x10000);
        let mut hdr = [0u8; 16];
        hdr[8] = 7;
        ram.write(MachineAddr(0x20000), &hdr).unwrap();
        virtio_submit(
            &ram,
            0x10000,
            0,
            &[
                (0x20000, 16, false),
                (0x21000, 512, true),
                (0x22000, 1, true),
            ],
        );
        b.mmio_write(0xd000_1050, 4, 0);
        assert_eq!(ram.read_le(MachineAddr(0x22000), 1).unwrap(), 0, "S_OK");
        assert_eq!(
            ram.read_le(MachineAddr(0x21000 + 4 * 5), 4).unwrap(),
            0x0505_0505
        );
        assert_eq!(
            ram.read_le(MachineAddr(0x21000 + 508), 4).unwrap(),
            0x7f7f_7f7f
        );
        let writes = b.take_dma_writes();
        assert!(writes.contains(&(MachineAddr(0x21000), 512)));
        assert!(writes.contains(&(MachineAddr(0x22000), 1)));
        assert_eq!(b.stats().virtio_blk.bytes_to_guest, 512);
    }

    #[test]
    fn board_errors_for_bad_disk_and_dma() {
        let e = PcBoard::try_new(BoardConfig {
            disk: Some(PathBuf::from("/nonexistent/ringside.img")),
            ..BoardConfig::default()
        })
        .err()
        .unwrap();
        assert!(matches!(e, BoardError::Disk(DiskError::Open { .. })), "{e}");
        let ram = Arc::new(GuestRam::new(1 << 20).unwrap());
        let e = PcBoard::try_new(BoardConfig {
            dma: Some((ram, mmu::PhysLayout::new(2 << 20).ram_regions())),
            ..BoardConfig::default()
        })
        .err()
        .unwrap();
        assert!(
            matches!(e, BoardError::Dma(DmaError::OutsideRam { .. })),
            "{e}"
        );
        // Without a DMA view there are no virtio devices.
        let (mut b, _, _) = board();
        assert_eq!(b.mmio_read(0xd000_0000, 4), 0xffff_ffff);
        assert!(b.virtio_console().is_none());
        assert!(b.take_dma_writes().is_empty());
    }
}
