//! The virtio-mmio transport, version 2 (virtio 1.x spec, section 4.2).
//!
//! Registers are 32 bits wide at 4-byte-aligned offsets below 0x100; the
//! device-specific configuration starts at 0x100 and may be accessed at
//! any width. An access of another width or alignment to the register
//! block reads 0 and writes nothing (the spec makes it undefined).
//!
//! The driver's setup values of a queue (size, ring addresses) are kept
//! here and handed to the `virtio_queue::Queue` when the driver writes
//! QueueReady = 1; a queue that is misaligned, of an invalid size or not
//! inside guest RAM is refused there: QueueReady stays 0 and the device
//! enters DEVICE_NEEDS_RESET (with a configuration-change interrupt, as
//! the spec requires once DRIVER_OK is set). Notifications are processed
//! synchronously; completions set InterruptStatus bit 0, whose level is
//! the device's interrupt line.

use super::dma::DmaMemory;
use super::{VirtioDevice, VirtioStats, QUEUE_SIZE_MAX, VIRTIO_F_VERSION_1};
use crate::bus::MmioDevice;
use std::sync::Arc;
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestAddress;

/// MagicValue: "virt".
pub const VIRTIO_MMIO_MAGIC: u32 = 0x7472_6976;
/// The modern (virtio 1.x) register layout.
pub const VIRTIO_MMIO_VERSION: u32 = 2;
/// VendorID: "RSVM" (ringside VM) in little-endian ASCII.
pub const VIRTIO_MMIO_VENDOR_ID: u32 = u32::from_le_bytes(*b"RSVM");
/// Offset of the device-specific configuration space.
pub const VIRTIO_MMIO_CONFIG: u64 = 0x100;
/// Size of one slot.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;

// Register offsets (virtio 1.2, table 4.1).
const MAGIC_VALUE: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const VENDOR_ID: u64 = 0x00c;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC_LOW: u64 = 0x080;
const QUEUE_DESC_HIGH: u64 = 0x084;
const QUEUE_DRIVER_LOW: u64 = 0x090;
const QUEUE_DRIVER_HIGH: u64 = 0x094;
const QUEUE_DEVICE_LOW: u64 = 0x0a0;
const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
const SHM_LEN_LOW: u64 = 0x0b0;
const SHM_LEN_HIGH: u64 = 0x0b4;
const CONFIG_GENERATION: u64 = 0x0fc;

/// InterruptStatus bits.
pub const INT_VRING: u32 = 1;
pub const INT_CONFIG: u32 = 2;

const S_FEATURES_OK: u8 = VIRTIO_CONFIG_S_FEATURES_OK as u8;
const S_DRIVER_OK: u8 = VIRTIO_CONFIG_S_DRIVER_OK as u8;
const S_NEEDS_RESET: u8 = VIRTIO_CONFIG_S_NEEDS_RESET as u8;

/// The driver's setup of one queue, applied at QueueReady = 1.
#[derive(Debug, Clone, Copy)]
struct QueueSetup {
    size: u16,
    desc: u64,
    driver: u64,
    device: u64,
}

impl Default for QueueSetup {
    fn default() -> Self {
        Self {
            size: QUEUE_SIZE_MAX,
            desc: 0,
            driver: 0,
            device: 0,
        }
    }
}

fn set_low(v: &mut u64, low: u32) {
    *v = (*v & !0xffff_ffff) | u64::from(low);
}

fn set_high(v: &mut u64, high: u32) {
    *v = (*v & 0xffff_ffff) | u64::from(high) << 32;
}

/// One virtio-mmio slot: the transport around device model `D`.
pub struct VirtioMmio<D> {
    dev: D,
    mem: Arc<DmaMemory>,
    queues: Vec<Queue>,
    setup: Vec<QueueSetup>,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    status: u8,
    interrupt_status: u32,
    stats: VirtioStats,
}

impl<D: VirtioDevice> VirtioMmio<D> {
    pub fn new(dev: D, mem: Arc<DmaMemory>) -> Self {
        let n = dev.num_queues();
        let queues = (0..n)
            .filter_map(|_| Queue::new(QUEUE_SIZE_MAX).ok())
            .collect();
        Self {
            dev,
            mem,
            queues,
            setup: vec![QueueSetup::default(); n],
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            status: 0,
            interrupt_status: 0,
            stats: VirtioStats::default(),
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn stats(&self) -> VirtioStats {
        self.stats
    }

    /// The device status register.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// Level of the device's interrupt line: an InterruptStatus bit set.
    pub fn irq_level(&self) -> bool {
        self.interrupt_status != 0
    }

    /// Reset (status 0 written): back to the power-on state.
    fn reset(&mut self) {
        for q in &mut self.queues {
            q.reset();
        }
        self.setup.fill(QueueSetup::default());
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.status = 0;
        self.interrupt_status = 0;
        self.dev.reset();
        self.stats.resets += 1;
    }

    /// The device hit a driver error it cannot recover from alone.
    fn set_needs_reset(&mut self) {
        if self.status & S_NEEDS_RESET == 0 {
            self.status |= S_NEEDS_RESET;
            self.stats.needs_reset += 1;
            if self.status & S_DRIVER_OK != 0 {
                self.interrupt_status |= INT_CONFIG;
            }
        }
    }

    fn selected(&self) -> usize {
        self.queue_sel as usize
    }

    /// The selected queue's setup, if the queue exists and is not live
    /// (the driver must not change a ready queue).
    fn setup_mut(&mut self) -> Option<&mut QueueSetup> {
        let i = self.selected();
        if self.queues.get(i).is_none_or(|q| q.ready()) {
            return None;
        }
        self.setup.get_mut(i)
    }

    fn write_status(&mut self, val: u8) {
        if val == 0 {
            self.reset();
            return;
        }
        let mut new = val & !S_NEEDS_RESET;
        if new & S_FEATURES_OK != 0 && self.status & S_FEATURES_OK == 0 {
            let offered = self.dev.features();
            let ok = self.driver_features & !offered == 0
                && self.driver_features & VIRTIO_F_VERSION_1 != 0;
            if !ok {
                // Not accepted: FEATURES_OK reads back clear.
                new &= !S_FEATURES_OK;
            }
        }
        self.status = new | (self.status & S_NEEDS_RESET);
    }

    fn write_queue_ready(&mut self, val: u32) {
        let i = self.selected();
        let (Some(q), Some(s)) = (self.queues.get_mut(i), self.setup.get(i)) else {
            return;
        };
        if val & 1 == 0 {
            q.set_ready(false);
            return;
        }
        if q.ready() {
            return;
        }
        let ok = q.try_set_size(s.size).is_ok()
            && q.try_set_desc_table_address(GuestAddress(s.desc)).is_ok()
            && q.try_set_avail_ring_address(GuestAddress(s.driver)).is_ok()
            && q.try_set_used_ring_address(GuestAddress(s.device)).is_ok();
        q.set_ready(true);
        if !ok || !q.is_valid(self.mem.memory()) {
            q.set_ready(false);
            self.set_needs_reset();
        }
    }

    fn notify(&mut self, val: u32) {
        self.stats.notifies += 1;
        let index = val as usize;
        let live = self.status & S_DRIVER_OK != 0 && self.status & S_NEEDS_RESET == 0;
        let Some(q) = self.queues.get_mut(index).filter(|q| live && q.ready()) else {
            self.stats.ignored_notifies += 1;
            return;
        };
        let mem = self.mem.memory();
        match self.dev.process_queue(index, q, mem, &mut self.stats) {
            Ok(true) => {
                // VIRTQ_AVAIL_F_NO_INTERRUPT asks for no interrupt.
                if q.needs_notification(mem).unwrap_or(true) {
                    self.interrupt_status |= INT_VRING;
                }
            }
            Ok(false) => {}
            Err(_) => {
                q.set_ready(false);
                self.set_needs_reset();
            }
        }
    }

    fn read_reg(&self, offset: u64) -> u32 {
        let q = self.queues.get(self.selected());
        match offset {
            MAGIC_VALUE => VIRTIO_MMIO_MAGIC,
            VERSION => VIRTIO_MMIO_VERSION,
            DEVICE_ID => self.dev.device_id(),
            VENDOR_ID => VIRTIO_MMIO_VENDOR_ID,
            DEVICE_FEATURES => match self.device_features_sel {
                0 => self.dev.features() as u32,
                1 => (self.dev.features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => q.map_or(0, |q| u32::from(q.max_size())),
            QUEUE_NUM => self
                .setup
                .get(self.selected())
                .map_or(0, |s| u32::from(s.size)),
            QUEUE_READY => q.map_or(0, |q| u32::from(q.ready())),
            INTERRUPT_STATUS => self.interrupt_status,
            STATUS => u32::from(self.status),
            // No shared memory regions: length all-ones.
            SHM_LEN_LOW | SHM_LEN_HIGH => u32::MAX,
            // The configuration never changes.
            CONFIG_GENERATION => 0,
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, val: u32) {
        match offset {
            DEVICE_FEATURES_SEL => self.device_features_sel = val,
            // Features are fixed once FEATURES_OK is set.
            DRIVER_FEATURES if self.status & S_FEATURES_OK == 0 => match self.driver_features_sel {
                0 => set_low(&mut self.driver_features, val),
                1 => set_high(&mut self.driver_features, val),
                _ => {}
            },
            DRIVER_FEATURES_SEL => self.driver_features_sel = val,
            QUEUE_SEL => self.queue_sel = val,
            QUEUE_NUM => {
                if let Some(s) = self.setup_mut() {
                    // Validated (≤ QueueNumMax, power of two) at QueueReady.
                    s.size = u16::try_from(val).unwrap_or(0);
                }
            }
            QUEUE_READY => self.write_queue_ready(val),
            QUEUE_NOTIFY => self.notify(val),
            INTERRUPT_ACK => self.interrupt_status &= !val,
            STATUS => self.write_status(val as u8),
            QUEUE_DESC_LOW | QUEUE_DESC_HIGH | QUEUE_DRIVER_LOW | QUEUE_DRIVER_HIGH
            | QUEUE_DEVICE_LOW | QUEUE_DEVICE_HIGH => {
                if let Some(s) = self.setup_mut() {
                    let (field, high) = match offset {
                        QUEUE_DESC_LOW => (&mut s.desc, false),
                        QUEUE_DESC_HIGH => (&mut s.desc, true),
                        QUEUE_DRIVER_LOW => (&mut s.driver, false),
                        QUEUE_DRIVER_HIGH => (&mut s.driver, true),
                        QUEUE_DEVICE_LOW => (&mut s.device, false),
                        _ => (&mut s.device, true),
                    };
                    if high {
                        set_high(field, val);
                    } else {
                        set_low(field, val);
                    }
                }
            }
            _ => {}
        }
    }
}

impl<D: VirtioDevice> MmioDevice for VirtioMmio<D> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= VIRTIO_MMIO_CONFIG {
            self.dev.read_config(offset - VIRTIO_MMIO_CONFIG, data);
        } else if data.len() == 4 && offset.is_multiple_of(4) {
            data.copy_from_slice(&self.read_reg(offset).to_le_bytes());
        } else {
            data.fill(0);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // Configuration writes: neither device has writable fields.
        if offset >= VIRTIO_MMIO_CONFIG || !offset.is_multiple_of(4) {
            return;
        }
        if let Ok(bytes) = <[u8; 4]>::try_from(data) {
            self.write_reg(offset, u32::from_le_bytes(bytes));
        }
    }
}
