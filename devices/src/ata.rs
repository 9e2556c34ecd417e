//! An ATA hard disk on the legacy primary IDE channel, PIO only (ports
//! 0x1f0-0x1f7, control 0x3f6, IRQ 14).
//!
//! The model follows the ATA/ATAPI-6 register interface: the host writes
//! the task file (sector count, LBA, device), then a command; the drive
//! shows BSY/DRDY/DRQ/ERR in the status register and moves each 512-byte
//! sector through the 16-bit data register. Commands complete instantly,
//! so BSY is only seen while SRST is held.
//!
//! * Commands: IDENTIFY DEVICE (0xEC), READ SECTORS (0x20/0x21), WRITE
//!   SECTORS (0x30/0x31), FLUSH CACHE (0xE7). Everything else is aborted
//!   (ERR, error = ABRT), as a drive does for commands it does not
//!   implement.
//! * Addressing: LBA28 (device bit 6), or CHS through the default geometry
//!   IDENTIFY reports (16 heads, 63 sectors per track). An address past the
//!   end aborts the command before any data moves (QEMU does the same).
//! * Only the master drive exists: with DEV = 1 selected, status reads 0
//!   (how drivers detect an absent drive) and commands are ignored.
//! * INTRQ is asserted when a data block is ready or a command ends, and
//!   cleared by reading the status register or writing a command; nIEN in
//!   the device control register keeps the line deasserted.
//! * Data register: 16-bit accesses move one word, 32-bit accesses (the
//!   `insd`/`outsd` drivers use on 32-bit-capable controllers) move two.
//!   Byte accesses transfer nothing and read 0xff.

use crate::bus::PioDevice;
use crate::disk::{self, SharedDisk, SECTOR_SIZE};

/// Command block base of the primary channel.
pub const ATA_PRIMARY_PORT: u16 = 0x1f0;
/// Ports of the command block.
pub const ATA_PORTS: u32 = 8;
/// Device control (write) / alternate status (read).
pub const ATA_PRIMARY_CTL_PORT: u16 = 0x3f6;
/// The primary channel's ISA interrupt line.
pub const ATA_PRIMARY_IRQ: u8 = 14;

/// Model string reported by IDENTIFY DEVICE.
pub const ATA_MODEL: &str = "RINGSIDE ATA DISK";
const ATA_SERIAL: &str = "RS0001";
const ATA_FIRMWARE: &str = "0.1";

// Command block register offsets.
const REG_DATA: u16 = 0;
const REG_ERROR_FEATURES: u16 = 1;
const REG_NSECT: u16 = 2;
const REG_LBA_LOW: u16 = 3;
const REG_LBA_MID: u16 = 4;
const REG_LBA_HIGH: u16 = 5;
const REG_DEVICE: u16 = 6;
const REG_STATUS_COMMAND: u16 = 7;

// Status register.
pub const STATUS_BSY: u8 = 0x80;
pub const STATUS_DRDY: u8 = 0x40;
/// Device seek complete: obsolete, but set by every drive when ready.
pub const STATUS_DSC: u8 = 0x10;
pub const STATUS_DRQ: u8 = 0x08;
pub const STATUS_ERR: u8 = 0x01;

// Error register.
pub const ERROR_ABRT: u8 = 0x04;

// Device register.
const DEVICE_LBA: u8 = 0x40;
const DEVICE_DEV: u8 = 0x10;

// Device control register.
const CTL_NIEN: u8 = 0x02;
const CTL_SRST: u8 = 0x04;

// Commands.
pub const CMD_READ_SECTORS: u8 = 0x20;
const CMD_READ_SECTORS_NORETRY: u8 = 0x21;
pub const CMD_WRITE_SECTORS: u8 = 0x30;
const CMD_WRITE_SECTORS_NORETRY: u8 = 0x31;
pub const CMD_IDENTIFY_DEVICE: u8 = 0xec;
pub const CMD_FLUSH_CACHE: u8 = 0xe7;

/// Default CHS geometry (the usual translation for LBA disks).
const HEADS: u64 = 16;
const SECTORS_PER_TRACK: u64 = 63;
/// Largest sector count LBA28 can address.
const LBA28_MAX: u64 = 1 << 28;
const SECTOR: usize = SECTOR_SIZE as usize;

/// ATA counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AtaStats {
    /// Commands written to the command register (master drive).
    pub commands: u64,
    /// Commands that ended with ERR.
    pub errors: u64,
    pub sectors_read: u64,
    pub sectors_written: u64,
    /// Accesses of the data register (each IN/OUT, whatever its width).
    pub data_accesses: u64,
}

/// What the data register is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    None,
    /// Device → host: `buf` holds a block; `remaining` sectors follow it
    /// (READ SECTORS), starting at `lba`.
    In {
        lba: u64,
        remaining: u32,
    },
    /// Host → device: `buf` fills with the sector for `lba`; `remaining`
    /// counts it and the ones after.
    Out {
        lba: u64,
        remaining: u32,
    },
}

/// The master drive of the primary channel.
pub struct AtaDisk {
    disk: SharedDisk,
    /// Sectors, as reported by IDENTIFY (LBA28-addressable part).
    sectors: u64,
    features: u8,
    nsect: u8,
    lba_low: u8,
    lba_mid: u8,
    lba_high: u8,
    device: u8,
    status: u8,
    error: u8,
    control: u8,
    buf: [u8; SECTOR],
    /// Byte position of the data register in `buf`.
    pos: usize,
    xfer: Transfer,
    /// INTRQ condition (before nIEN).
    irq_pending: bool,
    stats: AtaStats,
}

impl AtaDisk {
    pub fn new(disk: SharedDisk) -> Self {
        let sectors = disk::lock(&disk).sectors().min(LBA28_MAX - 1);
        let mut d = Self {
            disk,
            sectors,
            features: 0,
            nsect: 0,
            lba_low: 0,
            lba_mid: 0,
            lba_high: 0,
            device: 0,
            status: 0,
            error: 0,
            control: 0,
            buf: [0; SECTOR],
            pos: 0,
            xfer: Transfer::None,
            irq_pending: false,
            stats: AtaStats::default(),
        };
        d.reset();
        d
    }

    /// Power-on / software reset: the ATA signature in the task file,
    /// diagnostic code 01h ("no error") in the error register.
    fn reset(&mut self) {
        self.nsect = 1;
        self.lba_low = 1;
        self.lba_mid = 0;
        self.lba_high = 0;
        self.device = 0;
        self.features = 0;
        self.error = 0x01;
        self.status = STATUS_DRDY | STATUS_DSC;
        self.xfer = Transfer::None;
        self.pos = 0;
        self.irq_pending = false;
    }

    pub fn stats(&self) -> AtaStats {
        self.stats
    }

    /// Level of INTRQ: a pending interrupt and nIEN clear.
    pub fn irq_level(&self) -> bool {
        self.irq_pending && self.control & CTL_NIEN == 0
    }

    fn slave_selected(&self) -> bool {
        self.device & DEVICE_DEV != 0
    }

    /// The status register, or 0 when the absent slave is selected.
    fn status(&self) -> u8 {
        if self.slave_selected() {
            0
        } else {
            self.status
        }
    }

    /// Sector count, 0 meaning 256.
    fn count(&self) -> u32 {
        match self.nsect {
            0 => 256,
            n => u32::from(n),
        }
    }

    /// The starting sector of the task file (LBA28 or CHS); `None` for
    /// an invalid CHS address (sector 0 or beyond the geometry).
    fn start_lba(&self) -> Option<u64> {
        if self.device & DEVICE_LBA != 0 {
            Some(
                u64::from(self.device & 0x0f) << 24
                    | u64::from(self.lba_high) << 16
                    | u64::from(self.lba_mid) << 8
                    | u64::from(self.lba_low),
            )
        } else {
            let cyl = u64::from(self.lba_high) << 8 | u64::from(self.lba_mid);
            let head = u64::from(self.device & 0x0f);
            let sector = u64::from(self.lba_low);
            if sector == 0 || sector > SECTORS_PER_TRACK || head >= HEADS {
                return None;
            }
            Some((cyl * HEADS + head) * SECTORS_PER_TRACK + sector - 1)
        }
    }

    /// The command's range, if it lies on the disk.
    fn range(&self) -> Option<(u64, u32)> {
        let lba = self.start_lba()?;
        let count = self.count();
        (lba + u64::from(count) <= self.sectors).then_some((lba, count))
    }

    fn abort(&mut self) {
        self.xfer = Transfer::None;
        self.pos = 0;
        self.error = ERROR_ABRT;
        self.status = STATUS_DRDY | STATUS_DSC | STATUS_ERR;
        self.irq_pending = true;
        self.stats.errors += 1;
    }

    fn complete(&mut self) {
        self.xfer = Transfer::None;
        self.pos = 0;
        self.error = 0;
        self.status = STATUS_DRDY | STATUS_DSC;
        self.irq_pending = true;
    }

    /// A data block is in (or awaited in) `buf`.
    fn data_ready(&mut self, xfer: Transfer, irq: bool) {
        self.xfer = xfer;
        self.pos = 0;
        self.error = 0;
        self.status = STATUS_DRDY | STATUS_DSC | STATUS_DRQ;
        if irq {
            self.irq_pending = true;
        }
    }

    fn command(&mut self, cmd: u8) {
        if self.slave_selected() {
            return;
        }
        self.stats.commands += 1;
        self.irq_pending = false;
        match cmd {
            CMD_IDENTIFY_DEVICE => {
                self.buf = self.identify();
                self.data_ready(
                    Transfer::In {
                        lba: 0,
                        remaining: 0,
                    },
                    true,
                );
            }
            CMD_READ_SECTORS | CMD_READ_SECTORS_NORETRY => match self.range() {
                Some((lba, count)) => self.read_sector(lba, count),
                None => self.abort(),
            },
            CMD_WRITE_SECTORS | CMD_WRITE_SECTORS_NORETRY => match self.range() {
                // The first block is requested without an interrupt.
                Some((lba, count)) => self.data_ready(
                    Transfer::Out {
                        lba,
                        remaining: count,
                    },
                    false,
                ),
                None => self.abort(),
            },
            CMD_FLUSH_CACHE => {
                let r = disk::lock(&self.disk).flush();
                match r {
                    Ok(()) => self.complete(),
                    Err(_) => self.abort(),
                }
            }
            _ => self.abort(),
        }
    }

    /// Load sector `lba` into the buffer and raise DRQ; `count` sectors
    /// (this one included) remain.
    fn read_sector(&mut self, lba: u64, count: u32) {
        let r = disk::lock(&self.disk).read_at(lba * SECTOR_SIZE, &mut self.buf);
        match r {
            Ok(()) => {
                self.stats.sectors_read += 1;
                self.data_ready(
                    Transfer::In {
                        lba: lba + 1,
                        remaining: count - 1,
                    },
                    true,
                );
            }
            Err(_) => self.abort(),
        }
    }

    /// The host read `out.len()` bytes from the data register. An access
    /// that crosses a sector boundary continues in the next sector.
    fn data_in(&mut self, out: &mut [u8]) {
        for b in out.iter_mut() {
            let Transfer::In { lba, remaining } = self.xfer else {
                // No data phase: the bus reads as 0, as on QEMU.
                *b = 0;
                continue;
            };
            *b = self.buf.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            if self.pos >= SECTOR {
                if remaining > 0 {
                    self.read_sector(lba, remaining);
                } else {
                    self.complete_without_irq();
                }
            }
        }
    }

    /// The host wrote `data` to the data register.
    fn data_out(&mut self, data: &[u8]) {
        for b in data {
            let Transfer::Out { lba, remaining } = self.xfer else {
                return;
            };
            if let Some(slot) = self.buf.get_mut(self.pos) {
                *slot = *b;
            }
            self.pos += 1;
            if self.pos >= SECTOR {
                self.write_sector(lba, remaining);
            }
        }
    }

    /// The buffer holds sector `lba`; `remaining` sectors (this one
    /// included) were still to come.
    fn write_sector(&mut self, lba: u64, remaining: u32) {
        let r = disk::lock(&self.disk).write_at(lba * SECTOR_SIZE, &self.buf);
        if r.is_err() {
            self.abort();
            return;
        }
        self.stats.sectors_written += 1;
        if remaining > 1 {
            self.data_ready(
                Transfer::Out {
                    lba: lba + 1,
                    remaining: remaining - 1,
                },
                true,
            );
        } else {
            self.complete();
        }
    }

    /// The last word of a read was taken: DRQ drops. A PIO read raises
    /// its interrupts when blocks become ready, not at the end.
    fn complete_without_irq(&mut self) {
        let irq = self.irq_pending;
        self.complete();
        self.irq_pending = irq;
    }

    /// The 256 IDENTIFY DEVICE words (ATA/ATAPI-6 table 27), as the bytes
    /// the data register returns.
    fn identify(&self) -> [u8; SECTOR] {
        let mut w = [0u16; 256];
        let sectors = self.sectors;
        let cyls = (sectors / (HEADS * SECTORS_PER_TRACK)).clamp(1, 16383);
        let chs_sectors = cyls * HEADS * SECTORS_PER_TRACK;
        w[0] = 0x0040; // ATA device, fixed
        w[1] = cyls as u16;
        w[3] = HEADS as u16;
        w[6] = SECTORS_PER_TRACK as u16;
        put_string(&mut w[10..20], ATA_SERIAL);
        put_string(&mut w[23..27], ATA_FIRMWARE);
        put_string(&mut w[27..47], ATA_MODEL);
        w[47] = 0x8000; // READ/WRITE MULTIPLE not supported
        w[49] = 0x0200; // LBA supported (no DMA)
        w[50] = 0x4000;
        w[51] = 0x0200; // PIO mode 2 timing (obsolete field)
        w[53] = 0x0003; // words 54-58 and 64-70 valid
        w[54] = cyls as u16;
        w[55] = HEADS as u16;
        w[56] = SECTORS_PER_TRACK as u16;
        w[57] = chs_sectors as u16;
        w[58] = (chs_sectors >> 16) as u16;
        w[60] = sectors as u16; // LBA28 user-addressable sectors
        w[61] = (sectors >> 16) as u16;
        w[64] = 0x0003; // PIO modes 3 and 4
        w[65] = 120;
        w[66] = 120;
        w[67] = 120;
        w[68] = 120;
        w[80] = 0x007e; // ATA-1 .. ATA-6
        w[82] = 0x4000; // NOP supported (word valid)
        w[83] = 0x5000; // FLUSH CACHE; word valid; no LBA48
        w[84] = 0x4000;
        w[85] = 0x4000;
        w[86] = 0x1000;
        w[87] = 0x4000;
        // Integrity word: signature A5h, checksum making the sum 0.
        w[255] = 0x00a5;
        let mut bytes = [0u8; SECTOR];
        for (chunk, word) in bytes.chunks_exact_mut(2).zip(w.iter()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let sum = bytes
            .iter()
            .take(SECTOR - 1)
            .fold(0u8, |a, b| a.wrapping_add(*b));
        if let Some(last) = bytes.last_mut() {
            *last = sum.wrapping_neg();
        }
        bytes
    }

    /// Read a command block register.
    fn read_reg(&mut self, reg: u16) -> u8 {
        match reg {
            REG_ERROR_FEATURES => self.error,
            REG_NSECT => self.nsect,
            REG_LBA_LOW => self.lba_low,
            REG_LBA_MID => self.lba_mid,
            REG_LBA_HIGH => self.lba_high,
            // Bits 7 and 5 are obsolete and read as one on most drives.
            REG_DEVICE => self.device | 0xa0,
            REG_STATUS_COMMAND => {
                // Reading the status register acknowledges INTRQ.
                if !self.slave_selected() {
                    self.irq_pending = false;
                }
                self.status()
            }
            // Byte access to the data register: no transfer.
            _ => 0xff,
        }
    }

    fn write_reg(&mut self, reg: u16, val: u8) {
        match reg {
            REG_ERROR_FEATURES => self.features = val,
            REG_NSECT => self.nsect = val,
            REG_LBA_LOW => self.lba_low = val,
            REG_LBA_MID => self.lba_mid = val,
            REG_LBA_HIGH => self.lba_high = val,
            REG_DEVICE => self.device = val,
            REG_STATUS_COMMAND => self.command(val),
            _ => {}
        }
    }

    /// Read the alternate status (no interrupt acknowledge).
    pub fn alt_status(&self) -> u8 {
        self.status()
    }

    /// Write the device control register: nIEN and SRST.
    pub fn write_control(&mut self, val: u8) {
        let old = self.control;
        self.control = val;
        if val & CTL_SRST != 0 {
            // Held in reset: busy until SRST is cleared.
            self.reset();
            self.status = STATUS_BSY;
        } else if old & CTL_SRST != 0 {
            self.reset();
        }
    }

    /// The device control port (0x3f6) as its own device.
    pub fn control_port(&mut self) -> AtaControl<'_> {
        AtaControl(self)
    }
}

/// Write `s` into IDENTIFY words, two characters per word with the first
/// in the high byte, padded with spaces.
fn put_string(words: &mut [u16], s: &str) {
    let mut chars = s.bytes().chain(std::iter::repeat(b' '));
    for w in words {
        let hi = chars.next().unwrap_or(b' ');
        let lo = chars.next().unwrap_or(b' ');
        *w = u16::from(hi) << 8 | u16::from(lo);
    }
}

impl PioDevice for AtaDisk {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        if offset == REG_DATA && data.len() >= 2 {
            self.stats.data_accesses += 1;
            if self.slave_selected() {
                data.fill(0xff);
            } else {
                self.data_in(data);
            }
            return;
        }
        // Wider accesses elsewhere reach consecutive registers.
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.read_reg(offset + i as u16);
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) {
        if offset == REG_DATA && data.len() >= 2 {
            self.stats.data_accesses += 1;
            if !self.slave_selected() {
                self.data_out(data);
            }
            return;
        }
        for (i, b) in data.iter().enumerate() {
            self.write_reg(offset + i as u16, *b);
        }
    }
}

/// Port 0x3f6: alternate status / device control.
pub struct AtaControl<'a>(&'a mut AtaDisk);

impl PioDevice for AtaControl<'_> {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(self.0.alt_status());
    }
    fn write(&mut self, _offset: u16, data: &[u8]) {
        if let Some(v) = data.first() {
            self.0.write_control(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::DiskImage;

    const BASE: u16 = 0;

    fn drive(sectors: u32) -> (AtaDisk, SharedDisk) {
        let disk = DiskImage::memory_sectors(sectors).shared();
        (AtaDisk::new(disk.clone()), disk)
    }

    fn inw(d: &mut AtaDisk) -> u16 {
        let mut b = [0u8; 2];
        d.read(BASE, &mut b);
        u16::from_le_bytes(b)
    }

    fn outb(d: &mut AtaDisk, reg: u16, v: u8) {
        d.write(reg, &[v]);
    }

    fn inb(d: &mut AtaDisk, reg: u16) -> u8 {
        let mut b = [0u8];
        d.read(reg, &mut b);
        b[0]
    }

    fn task(d: &mut AtaDisk, lba: u32, count: u8, cmd: u8) {
        outb(d, REG_DEVICE, 0xe0 | ((lba >> 24) as u8 & 0x0f));
        outb(d, REG_NSECT, count);
        outb(d, REG_LBA_LOW, lba as u8);
        outb(d, REG_LBA_MID, (lba >> 8) as u8);
        outb(d, REG_LBA_HIGH, (lba >> 16) as u8);
        outb(d, REG_STATUS_COMMAND, cmd);
    }

    #[test]
    fn identify_reports_model_capacity_and_lba() {
        let (mut d, _) = drive(8192);
        assert_eq!(inb(&mut d, 7), STATUS_DRDY | STATUS_DSC);
        task(&mut d, 0, 0, CMD_IDENTIFY_DEVICE);
        assert_eq!(inb(&mut d, 7) & STATUS_DRQ, STATUS_DRQ);
        let words: Vec<u16> = (0..256).map(|_| inw(&mut d)).collect();
        assert_eq!(inb(&mut d, 7), STATUS_DRDY | STATUS_DSC, "DRQ drops");
        assert_ne!(words[49] & 0x0200, 0, "LBA supported");
        assert_eq!(u32::from(words[60]) | u32::from(words[61]) << 16, 8192);
        let model: Vec<u8> = words[27..47]
            .iter()
            .flat_map(|w| [(*w >> 8) as u8, *w as u8])
            .collect();
        assert_eq!(String::from_utf8(model).unwrap().trim_end(), ATA_MODEL);
        let sum = words
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .fold(0u8, |a, b| a.wrapping_add(b));
        assert_eq!(sum, 0, "integrity word checksum");
        assert_eq!(words[255] & 0xff, 0xa5);
        assert_eq!(d.stats().commands, 1);
        assert_eq!(d.stats().data_accesses, 256);
    }

    #[test]
    fn write_then_read_round_trip_with_32bit_data_accesses() {
        let (mut d, disk) = drive(64);
        task(&mut d, 5, 2, CMD_WRITE_SECTORS);
        for sector in 0..2u16 {
            assert_eq!(inb(&mut d, 7) & (STATUS_DRQ | STATUS_BSY), STATUS_DRQ);
            for i in 0..256u16 {
                d.write(BASE, &(sector << 12 | i).to_le_bytes());
            }
        }
        assert_eq!(inb(&mut d, 7), STATUS_DRDY | STATUS_DSC);
        let mut raw = [0u8; 4];
        disk::lock(&disk).read_at(5 * 512 + 2, &mut raw).unwrap();
        assert_eq!(raw, [1, 0, 2, 0], "words 1 and 2 of sector 5");

        task(&mut d, 5, 2, CMD_READ_SECTORS);
        for sector in 0..2u32 {
            assert_eq!(inb(&mut d, 7) & STATUS_DRQ, STATUS_DRQ);
            for i in 0..128u32 {
                let mut b = [0u8; 4];
                d.read(BASE, &mut b); // insd: two words
                let lo = (sector << 12) | (2 * i);
                assert_eq!(u32::from_le_bytes(b), (lo + 1) << 16 | lo);
            }
        }
        assert_eq!(inb(&mut d, 7), STATUS_DRDY | STATUS_DSC);
        let s = d.stats();
        assert_eq!((s.sectors_written, s.sectors_read, s.errors), (2, 2, 0));
        assert_eq!(s.data_accesses, 512 + 256);
    }

    #[test]
    fn count_zero_means_256_sectors() {
        let (mut d, disk) = drive(300);
        disk::lock(&disk).write_at(255 * 512, &[0x5a; 512]).unwrap();
        disk::lock(&disk).write_at(256 * 512, &[0x77; 512]).unwrap();
        task(&mut d, 0, 0, CMD_READ_SECTORS);
        let mut last = 0;
        let mut words = 0;
        while inb(&mut d, 7) & STATUS_DRQ != 0 {
            last = inw(&mut d);
            words += 1;
        }
        assert_eq!(words, 256 * 256);
        assert_eq!(last, 0x5a5a, "sector 255 was the last one");
        assert_eq!(d.stats().sectors_read, 256);
        // 256 sectors from 100 would pass the end of a 300-sector disk.
        task(&mut d, 100, 0, CMD_READ_SECTORS);
        assert_eq!(inb(&mut d, 7) & STATUS_ERR, STATUS_ERR);
    }

    #[test]
    fn bad_lba_and_unknown_command_abort() {
        let (mut d, _) = drive(16);
        task(&mut d, 16, 1, CMD_READ_SECTORS);
        assert_eq!(inb(&mut d, 7), STATUS_DRDY | STATUS_DSC | STATUS_ERR);
        assert_eq!(inb(&mut d, 1), ERROR_ABRT);
        assert_eq!(inw(&mut d), 0, "no data phase");
        task(&mut d, 15, 2, CMD_WRITE_SECTORS);
        assert_eq!(inb(&mut d, 7) & (STATUS_ERR | STATUS_DRQ), STATUS_ERR);
        task(&mut d, 0, 1, 0x99);
        assert_eq!(inb(&mut d, 1), ERROR_ABRT);
        // A good command clears the error.
        task(&mut d, 15, 1, CMD_READ_SECTORS);
        assert_eq!(inb(&mut d, 7), STATUS_DRDY | STATUS_DSC | STATUS_DRQ);
        assert_eq!(inb(&mut d, 1), 0);
        assert_eq!(d.stats().errors, 3);
    }

    #[test]
    fn chs_addressing_uses_the_identify_geometry() {
        let (mut d, disk) = drive(2048);
        // Cylinder 1, head 2, sector 3 = (1*16 + 2)*63 + 2.
        let lba = (16 + 2) * 63 + 2;
        disk::lock(&disk).write_at(lba * 512, &[0xc5; 2]).unwrap();
        outb(&mut d, REG_DEVICE, 0xa2);
        outb(&mut d, REG_NSECT, 1);
        outb(&mut d, REG_LBA_LOW, 3);
        outb(&mut d, REG_LBA_MID, 1);
        outb(&mut d, REG_LBA_HIGH, 0);
        outb(&mut d, REG_STATUS_COMMAND, CMD_READ_SECTORS);
        assert_eq!(inw(&mut d), 0xc5c5);
        // Sector 0 does not exist in CHS.
        outb(&mut d, REG_LBA_LOW, 0);
        outb(&mut d, REG_STATUS_COMMAND, CMD_READ_SECTORS);
        assert_eq!(inb(&mut d, 1), ERROR_ABRT);
    }

    #[test]
    fn slave_absent_interrupts_and_reset() {
        let (mut d, _) = drive(16);
        outb(&mut d, REG_DEVICE, 0xb0);
        assert_eq!(inb(&mut d, 7), 0, "no slave");
        outb(&mut d, REG_STATUS_COMMAND, CMD_IDENTIFY_DEVICE);
        assert_eq!(d.stats().commands, 0, "the slave ignores commands");
        outb(&mut d, REG_DEVICE, 0xa0);
        // INTRQ: raised by a command, cleared by a status read, masked by nIEN.
        task(&mut d, 0, 1, CMD_IDENTIFY_DEVICE);
        assert!(d.irq_level());
        assert_eq!(
            d.control_port().alt_status_for_test(),
            STATUS_DRDY | STATUS_DSC | STATUS_DRQ
        );
        assert!(d.irq_level(), "alternate status does not acknowledge");
        inb(&mut d, 7);
        assert!(!d.irq_level());
        d.control_port().write(0, &[CTL_NIEN]);
        task(&mut d, 0, 1, CMD_READ_SECTORS);
        assert!(!d.irq_level(), "nIEN masks INTRQ");
        d.control_port().write(0, &[0]);
        assert!(d.irq_level(), "pending interrupt shows once unmasked");
        // SRST: busy while held, then the signature and no transfer.
        d.control_port().write(0, &[CTL_SRST]);
        let mut st = [0u8];
        d.control_port().read(0, &mut st);
        assert_eq!(st[0], STATUS_BSY);
        d.control_port().write(0, &[0]);
        assert_eq!(inb(&mut d, 7), STATUS_DRDY | STATUS_DSC);
        assert_eq!(
            (
                inb(&mut d, 1),
                inb(&mut d, 2),
                inb(&mut d, 3),
                inb(&mut d, 4)
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(inw(&mut d), 0);
    }

    impl AtaControl<'_> {
        fn alt_status_for_test(&mut self) -> u8 {
            let mut b = [0u8];
            self.read(0, &mut b);
            b[0]
        }
    }
}
