//! virtio-console (device ID 3) with one port and no optional features:
//! receiveq 0 (host → guest) and transmitq 1 (guest → host).
//!
//! Transmitted bytes go to the writer the board gives it, the same one
//! COM1 writes to, so both consoles interleave on the host's output in
//! the order the guest produced them. Host input goes to COM1 only: the
//! receive queue's buffers stay available, unused.

use super::{DmaGuestMemory, VirtioDevice, VirtioStats, VIRTIO_F_VERSION_1};
use std::io::{Read, Write};
use virtio_bindings::virtio_ids::VIRTIO_ID_CONSOLE;
use virtio_queue::{Queue, QueueOwnedT, QueueT, Reader};

const RECEIVEQ: usize = 0;
const TRANSMITQ: usize = 1;

/// Bytes copied from the guest per write to the host sink.
const CHUNK: usize = 4096;

/// The console device model.
pub struct VirtioConsole {
    out: Box<dyn Write + Send>,
    /// Transmitted bytes the host writer refused.
    tx_lost: u64,
}

impl VirtioConsole {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out, tx_lost: 0 }
    }

    /// Bytes lost because the host writer failed.
    pub fn tx_lost(&self) -> u64 {
        self.tx_lost
    }

    /// Copy one chain's readable buffers to the sink.
    fn transmit(&mut self, mut reader: Reader<'_, super::DmaWriteTracker>) -> u64 {
        let mut buf = [0u8; CHUNK];
        let mut moved = 0u64;
        let mut failed = false;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            moved += n as u64;
            let data = buf.get(..n).unwrap_or_default();
            if failed || self.out.write_all(data).is_err() {
                failed = true;
                self.tx_lost += n as u64;
            }
        }
        if !failed && moved > 0 && self.out.flush().is_err() {
            self.tx_lost += moved;
        }
        moved
    }
}

impl VirtioDevice for VirtioConsole {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_CONSOLE
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }

    fn num_queues(&self) -> usize {
        2
    }

    /// `struct virtio_console_config`: cols, rows, max_nr_ports,
    /// emerg_wr; meaningful only with features this device does not
    /// offer, so all zero.
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        mem: &DmaGuestMemory,
        stats: &mut VirtioStats,
    ) -> Result<bool, virtio_queue::Error> {
        match index {
            TRANSMITQ => {
                let chains: Vec<_> = queue.iter(mem)?.collect();
                let any = !chains.is_empty();
                for chain in chains {
                    let head = chain.head_index();
                    match Reader::new(mem, chain) {
                        Ok(reader) => stats.bytes_from_guest += self.transmit(reader),
                        Err(_) => stats.bad_requests += 1,
                    }
                    // Nothing written into the chain.
                    queue.add_used(mem, head, 0)?;
                    stats.chains += 1;
                }
                Ok(any)
            }
            // No host input: receive buffers wait.
            RECEIVEQ => Ok(false),
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uart::tests::SharedBuf;
    use crate::virtio::testing::{Desc, Driver};
    use crate::virtio::VirtioMmio;

    fn console() -> (Driver<VirtioConsole>, SharedBuf) {
        let out = SharedBuf::default();
        let d = Driver::new(|mem| VirtioMmio::new(VirtioConsole::new(Box::new(out.clone())), mem));
        (d, out)
    }

    #[test]
    fn identity_and_handshake() {
        let (mut d, _) = console();
        assert_eq!(d.reg(0x000), 0x7472_6976);
        assert_eq!(d.reg(0x004), 2);
        assert_eq!(d.reg(0x008), 3);
        assert_eq!(d.reg(0x00c), u32::from_le_bytes(*b"RSVM"));
        d.set_reg(0x014, 1);
        assert_eq!(d.reg(0x010), 1, "VERSION_1 is bit 32");
        d.set_reg(0x014, 0);
        assert_eq!(d.reg(0x010), 0, "no MULTIPORT, no SIZE");
        d.handshake(1 << 32);
        d.driver_ok();
        assert_eq!(d.reg(0x070), 0x0f);
        d.set_reg(0x030, 1);
        assert_eq!(d.reg(0x034), 256);
        d.set_reg(0x030, 2);
        assert_eq!(d.reg(0x034), 0, "no queue 2");
    }

    #[test]
    fn features_ok_refused_without_version_1() {
        let (mut d, _) = console();
        d.set_reg(0x070, 1);
        d.set_reg(0x070, 3);
        d.set_reg(0x024, 0);
        d.set_reg(0x020, 0);
        d.set_reg(0x070, 0x0b);
        assert_eq!(d.reg(0x070) & 0x08, 0, "legacy-only driver refused");
        // Accepting an unoffered feature is refused too.
        d.set_reg(0x024, 1);
        d.set_reg(0x020, 1 | 2);
        d.set_reg(0x070, 0x0b);
        assert_eq!(d.reg(0x070) & 0x08, 0);
        d.set_reg(0x020, 1);
        d.set_reg(0x070, 0x0b);
        assert_eq!(d.reg(0x070) & 0x08, 0x08);
    }

    #[test]
    fn transmit_chain_reaches_the_sink() {
        let (mut d, out) = console();
        d.handshake(1 << 32);
        d.setup_queue(1, 16);
        d.driver_ok();
        d.put_bytes(0x8000, b"hello, ");
        d.put_bytes(0x9000, b"virtio\n");
        d.submit(1, &[Desc::read(0x8000, 7), Desc::read(0x9000, 7)]);
        d.notify(1);
        assert_eq!(out.contents(), b"hello, virtio\n");
        assert_eq!(d.used_idx(1), 1);
        assert_eq!(d.used_elem(1, 0), (0, 0));
        assert_eq!(d.reg(0x060), 1, "used-buffer interrupt");
        assert!(d.mmio.irq_level());
        d.set_reg(0x064, 1);
        assert!(!d.mmio.irq_level(), "acknowledged");
        let s = d.mmio.stats();
        assert_eq!((s.notifies, s.chains, s.bytes_from_guest), (1, 1, 14));
        // The used-ring update is a DMA write, logged by machine address.
        let writes = d.dma.take_writes();
        assert!(!writes.is_empty());
        // The used ring is at PA 0x16000, which the map puts at MA 0x26000.
        assert!(writes
            .iter()
            .all(|(ma, _)| (0x26000..0x27000).contains(&ma.0)));
        // Notifying the empty receive queue does nothing.
        d.setup_queue(0, 16);
        d.notify(0);
        assert_eq!(d.mmio.stats().chains, 1);
    }

    #[test]
    fn bad_buffer_address_is_completed_without_output() {
        let (mut d, out) = console();
        d.handshake(1 << 32);
        d.setup_queue(1, 16);
        d.driver_ok();
        d.submit(1, &[Desc::read(0xffff_0000, 64)]);
        d.notify(1);
        assert!(out.contents().is_empty());
        assert_eq!(d.used_idx(1), 1, "the chain is still returned");
        assert_eq!(d.mmio.stats().bad_requests, 1);
        assert_eq!(d.reg(0x070) & 0x40, 0, "no NEEDS_RESET for a bad buffer");
    }
}
