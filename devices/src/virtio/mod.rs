//! virtio 1.x devices on the MMIO transport (version 2, "modern").
//!
//! * [`mmio`]: the transport: registers, feature negotiation, device
//!   status, queue setup, notification and interrupt status.
//! * [`console`]: virtio-console (device ID 3), one port.
//! * [`blk`]: virtio-blk (device ID 2) over the shared [`crate::disk`].
//! * [`dma`]: [`DmaMemory`], guest-physical memory for device DMA, which
//!   records the machine ranges devices write.
//!
//! The split virtqueues (descriptor chains, available and used rings) are
//! rust-vmm's `virtio-queue`, over `vm-memory`; a device here only turns
//! descriptor chains into work. All processing is synchronous, on the
//! guest's QueueNotify write.

pub mod blk;
pub mod console;
pub mod dma;
pub mod mmio;

pub use blk::{VirtioBlk, BLK_SERIAL};
pub use console::VirtioConsole;
pub use dma::{DmaError, DmaGuestMemory, DmaMemory, DmaWriteTracker};
pub use mmio::{VirtioMmio, VIRTIO_MMIO_VENDOR_ID};

use virtio_queue::Queue;

/// Queue size offered (QueueNumMax) on every queue.
pub const QUEUE_SIZE_MAX: u16 = 256;

/// VIRTIO_F_VERSION_1: the device is virtio 1.x (no legacy interface).
pub const VIRTIO_F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;

/// Counters of one virtio device, for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VirtioStats {
    /// QueueNotify writes.
    pub notifies: u64,
    /// Notifies that did nothing: device not live (DRIVER_OK clear or
    /// NEEDS_RESET set), no such queue, or queue not ready.
    pub ignored_notifies: u64,
    /// Descriptor chains completed (put in the used ring).
    pub chains: u64,
    /// Bytes the device read from guest buffers.
    pub bytes_from_guest: u64,
    /// Bytes the device wrote into guest buffers.
    pub bytes_to_guest: u64,
    /// Malformed chains or requests (bad addresses, missing header or
    /// status byte, out-of-range sectors...).
    pub bad_requests: u64,
    /// Times the device entered the NEEDS_RESET state.
    pub needs_reset: u64,
    /// Device resets by the driver (status 0).
    pub resets: u64,
}

/// What a device model implements; the transport does the rest.
pub trait VirtioDevice {
    /// The virtio device ID (2 block, 3 console).
    fn device_id(&self) -> u32;
    /// Feature bits offered; [`VIRTIO_F_VERSION_1`] must be among them.
    fn features(&self) -> u64;
    /// Number of virtqueues.
    fn num_queues(&self) -> usize;
    /// Read device-specific configuration at `offset` (from MMIO 0x100).
    /// Bytes past the structure read as 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Take the available chains of queue `index` and complete them.
    /// Returns whether any buffer was put in the used ring; an `Err` is a
    /// queue the driver broke (the transport sets NEEDS_RESET).
    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        mem: &DmaGuestMemory,
        stats: &mut VirtioStats,
    ) -> Result<bool, virtio_queue::Error>;
    /// Forget per-driver state (status 0 was written).
    fn reset(&mut self) {}
}

#[cfg(test)]
pub(crate) mod testing;
