//! A minimal virtio driver for the unit tests: it programs the MMIO
//! registers and builds split virtqueues in a small guest RAM, the way a
//! guest kernel would, with no help from virtio-queue's own mocks.
//!
//! Guest-physical layout: PA 0x0-0x10000 is MA 0x0-0x10000 and PA
//! 0x10000-0x20000 is MA 0x20000-0x30000 (two regions, so translation is
//! exercised). Queue `q` lives at PA 0x10000 + q * 0x4000: descriptors,
//! then the available ring at +0x1000, the used ring at +0x2000.

use super::dma::DmaMemory;
use super::{VirtioDevice, VirtioMmio};
use crate::bus::MmioDevice;
use mmu::{GuestPhysAddr, GuestRam, MachineAddr, RamRegion};
use std::sync::Arc;

const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;

/// One descriptor as the driver writes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

impl Desc {
    /// A device-readable buffer.
    pub(crate) fn read(addr: u64, len: u32) -> Self {
        Self {
            addr,
            len,
            flags: 0,
            next: 0,
        }
    }
    /// A device-writable buffer.
    pub(crate) fn write(addr: u64, len: u32) -> Self {
        Self {
            flags: VIRTQ_DESC_F_WRITE,
            ..Self::read(addr, len)
        }
    }
    /// Chain to descriptor `n`.
    pub(crate) fn next(self, n: u16) -> Self {
        Self {
            flags: self.flags | VIRTQ_DESC_F_NEXT,
            next: n,
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct QueueState {
    size: u16,
    avail_idx: u16,
    next_desc: u16,
}

pub(crate) struct Driver<D> {
    pub(crate) mmio: VirtioMmio<D>,
    pub(crate) dma: Arc<DmaMemory>,
    ram: Arc<GuestRam>,
    queues: [QueueState; 4],
}

fn queue_base(q: usize) -> u64 {
    0x10000 + q as u64 * 0x4000
}

impl<D: VirtioDevice> Driver<D> {
    pub(crate) fn new(make: impl FnOnce(Arc<DmaMemory>) -> VirtioMmio<D>) -> Self {
        let ram = Arc::new(GuestRam::new(0x30000).unwrap());
        let regions = vec![
            RamRegion {
                start: GuestPhysAddr(0x10000),
                len: 0x10000,
                machine: MachineAddr(0x20000),
            },
            RamRegion {
                start: GuestPhysAddr(0),
                len: 0x10000,
                machine: MachineAddr(0),
            },
        ];
        let dma = Arc::new(DmaMemory::new(ram.clone(), regions).unwrap());
        let mmio = make(dma.clone());
        Self {
            mmio,
            dma,
            ram,
            queues: [QueueState::default(); 4],
        }
    }

    fn ma(pa: u64) -> MachineAddr {
        if pa >= 0x10000 {
            MachineAddr(pa + 0x10000)
        } else {
            MachineAddr(pa)
        }
    }

    pub(crate) fn put_bytes(&self, pa: u64, bytes: &[u8]) {
        self.ram.write(Self::ma(pa), bytes).unwrap();
    }

    pub(crate) fn get_bytes(&self, pa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.ram.read(Self::ma(pa), &mut v).unwrap();
        v
    }

    fn put_u16(&self, pa: u64, v: u16) {
        self.put_bytes(pa, &v.to_le_bytes());
    }

    pub(crate) fn mmio_read(&mut self, off: u64, size: usize) -> u64 {
        let mut b = [0u8; 8];
        self.mmio.read(off, &mut b[..size]);
        u64::from_le_bytes(b)
    }

    pub(crate) fn mmio_write(&mut self, off: u64, size: usize, val: u64) {
        self.mmio.write(off, &val.to_le_bytes()[..size]);
    }

    pub(crate) fn reg(&mut self, off: u64) -> u32 {
        self.mmio_read(off, 4) as u32
    }

    pub(crate) fn set_reg(&mut self, off: u64, val: u32) {
        self.mmio_write(off, 4, u64::from(val));
    }

    /// Reset, ACKNOWLEDGE, DRIVER, accept `features`, FEATURES_OK.
    pub(crate) fn handshake(&mut self, features: u64) {
        self.set_reg(0x070, 0);
        self.set_reg(0x070, 1);
        self.set_reg(0x070, 3);
        self.set_reg(0x024, 0);
        self.set_reg(0x020, features as u32);
        self.set_reg(0x024, 1);
        self.set_reg(0x020, (features >> 32) as u32);
        self.set_reg(0x070, 0x0b);
        assert_eq!(self.reg(0x070), 0x0b, "FEATURES_OK accepted");
        self.queues = [QueueState::default(); 4];
    }

    pub(crate) fn setup_queue(&mut self, q: usize, size: u16) {
        let base = queue_base(q);
        self.set_reg(0x030, q as u32);
        assert!(self.reg(0x034) >= u32::from(size));
        assert_eq!(self.reg(0x044), 0);
        self.set_reg(0x038, u32::from(size));
        for (off, addr) in [
            (0x080, base),
            (0x090, base + 0x1000),
            (0x0a0, base + 0x2000),
        ] {
            self.set_reg(off, addr as u32);
            self.set_reg(off + 4, (addr >> 32) as u32);
        }
        self.set_reg(0x044, 1);
        assert_eq!(self.reg(0x044), 1, "queue {q} ready");
        self.queues[q] = QueueState {
            size,
            ..QueueState::default()
        };
    }

    pub(crate) fn driver_ok(&mut self) {
        self.set_reg(0x070, 0x0f);
    }

    fn write_desc(&self, q: usize, index: u16, d: Desc) {
        let pa = queue_base(q) + u64::from(index) * 16;
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&d.addr.to_le_bytes());
        raw[8..12].copy_from_slice(&d.len.to_le_bytes());
        raw[12..14].copy_from_slice(&d.flags.to_le_bytes());
        raw[14..].copy_from_slice(&d.next.to_le_bytes());
        self.put_bytes(pa, &raw);
    }

    /// Put `head` in the available ring and publish it.
    pub(crate) fn push_avail(&mut self, q: usize, head: u16) {
        let st = &mut self.queues[q];
        let avail = queue_base(q) + 0x1000;
        let slot = avail + 4 + u64::from(st.avail_idx % st.size) * 2;
        st.avail_idx = st.avail_idx.wrapping_add(1);
        let idx = st.avail_idx;
        self.put_u16(slot, head);
        self.put_u16(avail + 2, idx);
    }

    /// Write `descs` as one chain in free descriptor slots and publish it.
    pub(crate) fn submit(&mut self, q: usize, descs: &[Desc]) {
        let size = self.queues[q].size;
        let start = self.queues[q].next_desc;
        let n = descs.len() as u16;
        for (i, d) in descs.iter().enumerate() {
            let index = (start + i as u16) % size;
            let d = if (i as u16) + 1 < n {
                d.next((index + 1) % size)
            } else {
                *d
            };
            self.write_desc(q, index, d);
        }
        self.queues[q].next_desc = (start + n) % size;
        self.push_avail(q, start);
    }

    /// Write descriptors at `head..` exactly as given (links included).
    pub(crate) fn submit_raw(&mut self, q: usize, head: u16, descs: &[Desc]) {
        for (i, d) in descs.iter().enumerate() {
            self.write_desc(q, head + i as u16, *d);
        }
        self.push_avail(q, head);
    }

    pub(crate) fn notify(&mut self, q: u32) {
        self.set_reg(0x050, q);
    }

    pub(crate) fn used_idx(&self, q: usize) -> u16 {
        let b = self.get_bytes(queue_base(q) + 0x2000 + 2, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    /// Used element `i`: (id, len).
    pub(crate) fn used_elem(&self, q: usize, i: u16) -> (u32, u32) {
        let b = self.get_bytes(queue_base(q) + 0x2000 + 4 + u64::from(i) * 8, 8);
        (
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        )
    }
}
