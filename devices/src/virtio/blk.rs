//! virtio-blk (device ID 2): one request queue over the shared disk.
//!
//! A request is a descriptor chain: the 16-byte header (`type`,
//! reserved, `sector`) in readable buffers, then the data (readable for
//! T_OUT, writable for T_IN and T_GET_ID), then one writable status byte,
//! the chain's last byte, written after everything else. Supported:
//! T_IN, T_OUT, T_FLUSH (VIRTIO_BLK_F_FLUSH is offered), T_GET_ID
//! (serial "ringside-blk"); other types complete with S_UNSUPP. A chain
//! whose buffers are not all in guest RAM, a short header, a data length
//! that is not whole sectors or a range past the end of the disk complete
//! with S_IOERR (when there is a status byte to write at all).

use super::{DmaGuestMemory, DmaWriteTracker, VirtioDevice, VirtioStats, VIRTIO_F_VERSION_1};
use crate::disk::{self, SharedDisk, SECTOR_SIZE};
use std::io::{Read, Write};
use virtio_bindings::virtio_blk::{
    VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
    VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
};
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT, Reader, Writer};

/// The serial number T_GET_ID returns (zero-padded to 20 bytes).
pub const BLK_SERIAL: &[u8] = b"ringside-blk";

/// Size of `struct virtio_blk_outhdr`.
const HEADER_LEN: usize = 16;
/// Bounce buffer between guest buffers and the disk.
const CHUNK: usize = 64 * 1024;

const S_OK: u8 = VIRTIO_BLK_S_OK as u8;
const S_IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;
const S_UNSUPP: u8 = VIRTIO_BLK_S_UNSUPP as u8;

/// The block device model.
pub struct VirtioBlk {
    disk: SharedDisk,
    /// Capacity in 512-byte sectors (config field `capacity`).
    capacity: u64,
}

impl VirtioBlk {
    pub fn new(disk: SharedDisk) -> Self {
        let capacity = disk::lock(&disk).sectors();
        Self { disk, capacity }
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Complete one chain; returns the used length (bytes written into
    /// the chain, status byte included).
    fn request(
        &mut self,
        chain: DescriptorChain<&DmaGuestMemory>,
        mem: &DmaGuestMemory,
        stats: &mut VirtioStats,
    ) -> u32 {
        let reader = Reader::new(mem, chain.clone());
        let Ok(mut writer) = Writer::new(mem, chain) else {
            // Writable buffers outside RAM: not even a status byte.
            stats.bad_requests += 1;
            return 0;
        };
        let Some(data_len) = writer.available_bytes().checked_sub(1) else {
            stats.bad_requests += 1;
            return 0;
        };
        let Ok(mut status_writer) = writer.split_at(data_len) else {
            stats.bad_requests += 1;
            return 0;
        };
        let status = match reader {
            Ok(reader) => self.execute(reader, &mut writer, stats),
            Err(_) => S_IOERR,
        };
        if status != S_OK {
            stats.bad_requests += 1;
        }
        let written = writer.bytes_written();
        stats.bytes_to_guest += written as u64;
        // The status byte goes last, after all data.
        if status_writer.write_all(&[status]).is_err() {
            return u32::try_from(written).unwrap_or(u32::MAX);
        }
        u32::try_from(written + 1).unwrap_or(u32::MAX)
    }

    /// Run the request; returns the status byte.
    fn execute(
        &mut self,
        mut reader: Reader<'_, DmaWriteTracker>,
        writer: &mut Writer<'_, DmaWriteTracker>,
        stats: &mut VirtioStats,
    ) -> u8 {
        let mut hdr = [0u8; HEADER_LEN];
        if reader.read_exact(&mut hdr).is_err() {
            return S_IOERR;
        }
        let (ty, sector) = parse_header(&hdr);
        match ty {
            VIRTIO_BLK_T_IN => {
                let len = writer.available_bytes() as u64;
                let Some(offset) = self.range(sector, len) else {
                    return S_IOERR;
                };
                self.read_into(offset, len, writer)
            }
            VIRTIO_BLK_T_OUT => {
                let len = reader.available_bytes() as u64;
                let Some(offset) = self.range(sector, len) else {
                    return S_IOERR;
                };
                let status = self.write_from(offset, &mut reader);
                let data = reader.bytes_read().saturating_sub(HEADER_LEN);
                stats.bytes_from_guest += data as u64;
                status
            }
            VIRTIO_BLK_T_FLUSH => match disk::lock(&self.disk).flush() {
                Ok(()) => S_OK,
                Err(_) => S_IOERR,
            },
            VIRTIO_BLK_T_GET_ID => {
                let mut id = [0u8; VIRTIO_BLK_ID_BYTES as usize];
                let n = BLK_SERIAL.len().min(id.len());
                if let (Some(dst), Some(src)) = (id.get_mut(..n), BLK_SERIAL.get(..n)) {
                    dst.copy_from_slice(src);
                }
                let n = writer.available_bytes().min(id.len());
                match writer.write_all(id.get(..n).unwrap_or_default()) {
                    Ok(()) => S_OK,
                    Err(_) => S_IOERR,
                }
            }
            _ => S_UNSUPP,
        }
    }

    /// Byte offset of a `len`-byte transfer at `sector`, if `len` is
    /// whole sectors and the range is on the disk.
    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return None;
        }
        let end = sector.checked_add(len / SECTOR_SIZE)?;
        (end <= self.capacity).then(|| sector * SECTOR_SIZE)
    }

    fn read_into(&mut self, offset: u64, len: u64, writer: &mut Writer<'_, DmaWriteTracker>) -> u8 {
        let mut buf = vec![0u8; CHUNK.min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let n = CHUNK.min((len - done) as usize);
            let Some(chunk) = buf.get_mut(..n) else {
                return S_IOERR;
            };
            if disk::lock(&self.disk)
                .read_at(offset + done, chunk)
                .is_err()
                || writer.write_all(chunk).is_err()
            {
                return S_IOERR;
            }
            done += n as u64;
        }
        S_OK
    }

    fn write_from(&mut self, offset: u64, reader: &mut Reader<'_, DmaWriteTracker>) -> u8 {
        let mut buf = vec![0u8; CHUNK.min(reader.available_bytes())];
        let mut done = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return S_OK,
                Ok(n) => n,
                Err(_) => return S_IOERR,
            };
            let Some(chunk) = buf.get(..n) else {
                return S_IOERR;
            };
            if disk::lock(&self.disk)
                .write_at(offset + done, chunk)
                .is_err()
            {
                return S_IOERR;
            }
            done += n as u64;
        }
    }
}

/// `type` (le32) and `sector` (le64) of a request header.
fn parse_header(hdr: &[u8; HEADER_LEN]) -> (u32, u64) {
    let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = *hdr;
    (
        u32::from_le_bytes([t0, t1, t2, t3]),
        u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
    )
}

impl VirtioDevice for VirtioBlk {
    fn device_id(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | 1 << VIRTIO_BLK_F_FLUSH
    }

    fn num_queues(&self) -> usize {
        1
    }

    /// `struct virtio_blk_config`: only `capacity` (le64 at 0) is
    /// meaningful without further features; the rest reads as 0.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let cap = self.capacity.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = usize::try_from(offset)
                .ok()
                .and_then(|o| o.checked_add(i))
                .and_then(|o| cap.get(o))
                .copied()
                .unwrap_or(0);
        }
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        mem: &DmaGuestMemory,
        stats: &mut VirtioStats,
    ) -> Result<bool, virtio_queue::Error> {
        if index != 0 {
            return Ok(false);
        }
        let chains: Vec<_> = queue.iter(mem)?.collect();
        let any = !chains.is_empty();
        for chain in chains {
            let head = chain.head_index();
            let len = self.request(chain, mem, stats);
            queue.add_used(mem, head, len)?;
            stats.chains += 1;
        }
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::DiskImage;
    use crate::virtio::testing::{Desc, Driver};
    use crate::virtio::VirtioMmio;

    const HDR: u64 = 0x8000;
    const DATA: u64 = 0x9000;
    const STATUS: u64 = 0xa000;

    fn blk() -> (Driver<VirtioBlk>, SharedDisk) {
        let disk = DiskImage::memory_sectors(64).shared();
        let mut d = Driver::new(|mem| VirtioMmio::new(VirtioBlk::new(disk.clone()), mem));
        d.handshake(1 << 32 | 1 << 9);
        d.setup_queue(0, 16);
        d.driver_ok();
        (d, disk)
    }

    fn header(d: &mut Driver<VirtioBlk>, ty: u32, sector: u64) {
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&ty.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        d.put_bytes(HDR, &h);
        d.put_bytes(STATUS, &[0xee]);
    }

    fn status(d: &Driver<VirtioBlk>) -> u8 {
        d.get_bytes(STATUS, 1)[0]
    }

    #[test]
    fn config_capacity_and_features() {
        let (mut d, _) = blk();
        assert_eq!(d.reg(0x008), 2);
        assert_eq!(d.reg(0x100), 64);
        assert_eq!(d.reg(0x104), 0);
        assert_eq!(d.mmio_read(0x100, 8), 64);
        assert_eq!(d.mmio_read(0x101, 1), 0);
        d.set_reg(0x014, 0);
        assert_eq!(d.reg(0x010), 1 << 9, "FLUSH");
    }

    #[test]
    fn write_then_read_back() {
        let (mut d, disk) = blk();
        let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        header(&mut d, VIRTIO_BLK_T_OUT, 3);
        d.put_bytes(DATA, &pattern);
        d.submit(
            0,
            &[
                Desc::read(HDR, 16),
                Desc::read(DATA, 512),
                Desc::read(DATA + 512, 512),
                Desc::write(STATUS, 1),
            ],
        );
        d.notify(0);
        assert_eq!(status(&d), S_OK);
        assert_eq!(d.used_elem(0, 0), (0, 1), "only the status byte written");
        let mut on_disk = vec![0u8; 1024];
        disk::lock(&disk).read_at(3 * 512, &mut on_disk).unwrap();
        assert_eq!(on_disk, pattern);

        header(&mut d, VIRTIO_BLK_T_IN, 3);
        d.put_bytes(0xb000, &[0; 1024]);
        d.submit(
            0,
            &[
                Desc::read(HDR, 16),
                Desc::write(0xb000, 1024),
                Desc::write(STATUS, 1),
            ],
        );
        let before = d.dma.take_writes();
        assert!(
            before.iter().any(|(ma, _)| ma.0 == STATUS),
            "OUT wrote status"
        );
        d.notify(0);
        assert_eq!(status(&d), S_OK);
        assert_eq!(d.get_bytes(0xb000, 1024), pattern);
        assert_eq!(d.used_idx(0), 2);
        assert_eq!(d.used_elem(0, 1).1, 1025);
        let writes = d.dma.take_writes();
        assert!(writes
            .iter()
            .any(|&(ma, len)| ma.0 == 0xb000 && len >= 1024));
        let s = d.mmio.stats();
        assert_eq!(
            (s.chains, s.bytes_from_guest, s.bytes_to_guest),
            (2, 1024, 1024)
        );
        assert_eq!(s.bad_requests, 0);
    }

    #[test]
    fn get_id_flush_and_unsupported() {
        let (mut d, _) = blk();
        header(&mut d, VIRTIO_BLK_T_GET_ID, 0);
        d.submit(
            0,
            &[
                Desc::read(HDR, 16),
                Desc::write(DATA, 20),
                Desc::write(STATUS, 1),
            ],
        );
        d.notify(0);
        assert_eq!(status(&d), S_OK);
        let id = d.get_bytes(DATA, 20);
        assert_eq!(&id[..12], b"ringside-blk");
        assert_eq!(&id[12..], &[0; 8]);

        header(&mut d, VIRTIO_BLK_T_FLUSH, 0);
        d.submit(0, &[Desc::read(HDR, 16), Desc::write(STATUS, 1)]);
        d.notify(0);
        assert_eq!(status(&d), S_OK);

        header(&mut d, 11, 0); // DISCARD
        d.submit(0, &[Desc::read(HDR, 16), Desc::write(STATUS, 1)]);
        d.notify(0);
        assert_eq!(status(&d), S_UNSUPP);
    }

    #[test]
    fn bad_requests_end_in_ioerr() {
        let (mut d, _) = blk();
        // Past the end of the disk.
        header(&mut d, VIRTIO_BLK_T_IN, 64);
        d.submit(
            0,
            &[
                Desc::read(HDR, 16),
                Desc::write(DATA, 512),
                Desc::write(STATUS, 1),
            ],
        );
        d.notify(0);
        assert_eq!(status(&d), S_IOERR);
        // Sector number overflow.
        header(&mut d, VIRTIO_BLK_T_OUT, u64::MAX);
        d.submit(
            0,
            &[
                Desc::read(HDR, 16),
                Desc::read(DATA, 512),
                Desc::write(STATUS, 1),
            ],
        );
        d.notify(0);
        assert_eq!(status(&d), S_IOERR);
        // Not whole sectors.
        header(&mut d, VIRTIO_BLK_T_IN, 0);
        d.submit(
            0,
            &[
                Desc::read(HDR, 16),
                Desc::write(DATA, 100),
                Desc::write(STATUS, 1),
            ],
        );
        d.notify(0);
        assert_eq!(status(&d), S_IOERR);
        // A data buffer outside guest RAM.
        header(&mut d, VIRTIO_BLK_T_OUT, 0);
        d.submit(
            0,
            &[
                Desc::read(HDR, 16),
                Desc::read(0x7fff_f000, 512),
                Desc::write(STATUS, 1),
            ],
        );
        d.notify(0);
        assert_eq!(status(&d), S_IOERR);
        // Short header.
        header(&mut d, VIRTIO_BLK_T_IN, 0);
        d.submit(0, &[Desc::read(HDR, 8), Desc::write(STATUS, 1)]);
        d.notify(0);
        assert_eq!(status(&d), S_IOERR);
        // No status byte at all: completed with length 0.
        d.submit(0, &[Desc::read(HDR, 16)]);
        d.notify(0);
        assert_eq!(d.used_idx(0), 6);
        assert_eq!(d.used_elem(0, 5).1, 0);
        assert_eq!(d.mmio.stats().bad_requests, 6);
        assert_eq!(d.reg(0x070) & 0x40, 0, "still usable");
    }

    #[test]
    fn descriptor_loop_terminates() {
        let (mut d, _) = blk();
        header(&mut d, VIRTIO_BLK_T_IN, 0);
        // Descriptors 0 → 1 → 0 → ...: the chain ends after queue-size
        // descriptors (virtio-queue's TTL).
        d.submit_raw(
            0,
            0,
            &[Desc::read(HDR, 16).next(1), Desc::write(DATA, 512).next(0)],
        );
        d.notify(0);
        assert_eq!(d.used_idx(0), 1, "completed, no hang");
        // A head index beyond the queue: the used ring refuses it.
        d.push_avail(0, 200);
        d.notify(0);
        assert_ne!(d.reg(0x070) & 0x40, 0, "NEEDS_RESET");
        assert_eq!(d.reg(0x060) & 2, 2, "configuration-change interrupt");
        let n = d.mmio.stats().notifies;
        d.notify(0);
        assert_eq!(d.mmio.stats().ignored_notifies, 1);
        assert_eq!(d.mmio.stats().notifies, n + 1);
        // Reset brings it back.
        d.set_reg(0x070, 0);
        assert_eq!(d.reg(0x070), 0);
        assert_eq!(d.reg(0x060), 0);
        assert_eq!(d.mmio.stats().resets, 2, "the handshake's and this one");
        d.handshake(1 << 32);
        d.setup_queue(0, 16);
        d.driver_ok();
        header(&mut d, VIRTIO_BLK_T_FLUSH, 0);
        d.submit(0, &[Desc::read(HDR, 16), Desc::write(STATUS, 1)]);
        d.notify(0);
        assert_eq!(status(&d), S_OK);
    }

    #[test]
    fn bad_queue_setup_and_notifies() {
        let disk = DiskImage::memory_sectors(8).shared();
        let mut d = Driver::new(|mem| VirtioMmio::new(VirtioBlk::new(disk.clone()), mem));
        // Notify before DRIVER_OK: ignored.
        d.notify(0);
        assert_eq!(d.mmio.stats().ignored_notifies, 1);
        d.handshake(1 << 32);
        // A descriptor table outside guest RAM: QueueReady stays 0.
        d.set_reg(0x030, 0);
        d.set_reg(0x038, 16);
        d.set_reg(0x080, 0);
        d.set_reg(0x084, 0x10);
        d.set_reg(0x090, 0x2000);
        d.set_reg(0x0a0, 0x3000);
        d.set_reg(0x044, 1);
        assert_eq!(d.reg(0x044), 0);
        assert_ne!(d.reg(0x070) & 0x40, 0);
        d.set_reg(0x070, 0);
        d.handshake(1 << 32);
        // Not a power of two.
        d.set_reg(0x038, 12);
        d.set_reg(0x044, 1);
        assert_eq!(d.reg(0x044), 0);
        d.set_reg(0x070, 0);
        d.handshake(1 << 32);
        d.setup_queue(0, 16);
        d.driver_ok();
        d.notify(5);
        d.notify(0xffff_ffff);
        assert_eq!(d.mmio.stats().ignored_notifies, 3);
        // Narrow register accesses read 0 and write nothing.
        assert_eq!(d.mmio_read(0x000, 2), 0);
        d.mmio_write(0x070, 1, 0);
        assert_eq!(d.reg(0x070), 0x0f);
    }
}
