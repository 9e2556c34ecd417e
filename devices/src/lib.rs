//! Platform devices of the ringside PC, modelled on rust-vmm's vm-superio:
//! each device is plain state plus register accessors, and knows nothing of
//! the CPU, KVM or the accelerators.
//!
//! * [`bus`]: the port-I/O and MMIO buses and the device traits.
//! * [`uart`]: 16550A UART (COM1), on vm-superio's `Serial`.
//! * [`debug_exit`]: QEMU's isa-debug-exit port.
//! * [`fw_cfg`]: QEMU's firmware configuration device (CPU count, RAM size).
//! * [`pic`]: the cascaded 8259A pair and the ELCR.
//! * [`pit`]: the 8254 timer and port 0x61.
//! * [`lapic`]: the xAPIC local APIC.
//! * [`disk`]: the disk image shared by the ATA drive and virtio-blk.
//! * [`ata`]: the ATA PIO disk on the primary IDE channel.
//! * [`virtio`]: virtio-mmio console and block devices, and the DMA view
//!   of guest memory they use.
//! * [`board`]: [`PcBoard`], the PC platform composing them.

pub mod ata;
pub mod board;
pub mod bus;
pub mod debug_exit;
pub mod disk;
pub mod fw_cfg;
pub mod lapic;
pub mod pic;
pub mod pit;
pub mod uart;
pub mod virtio;

pub use ata::{AtaDisk, AtaStats};
pub use board::{BoardConfig, BoardError, BoardStats, ClockSource, ManualClock, PcBoard};
pub use bus::{
    BusError, BusRange, BusStats, IoDir, IoRecord, IoSpace, IoTraceLog, IoTraceSink, MmioBus,
    MmioDevice, MmioHandler, PioBus, PioDevice, PioHandler,
};
pub use debug_exit::DebugExit;
pub use disk::{DiskError, DiskImage, SharedDisk};
pub use fw_cfg::FwCfg;
pub use lapic::Lapic;
pub use pic::Pic;
pub use pit::Pit;
pub use uart::Uart;
pub use virtio::{DmaError, DmaMemory, VirtioBlk, VirtioConsole, VirtioMmio, VirtioStats};
