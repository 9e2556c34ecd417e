//! QEMU's firmware configuration device (`fw_cfg`), traditional I/O-port
//! interface only.
//!
//! Third-party test kernels written for QEMU (kvm-unit-tests is the
//! canonical example) ask fw_cfg how many CPUs and how much RAM the machine
//! has. Without the device they read all-ones: 65535 CPUs, and they wait
//! forever for application processors that never start. So ringside answers
//! with the handful of items such kernels read, following QEMU's
//! `docs/specs/fw_cfg.rst` and what QEMU's x86 port decoder does:
//!
//! * Ports 0x510-0x511 are one 2-byte window. A **16-bit OUT** (at 0x510)
//!   is a write to the *selector*: it selects item `key` (little-endian)
//!   and resets the data offset to 0. An **8-bit IN** at either port reads
//!   the next byte of the selected item from the *data register* and
//!   advances the offset; past the item's end it reads 0 and the offset
//!   stays put. An **8-bit OUT** is a write to the data register, not to
//!   the selector: QEMU ignores those since v2.4, and so does ringside (an
//!   8-bit OUT of a key to 0x510 selects nothing on QEMU either).
//!   Wider INs are not valid accesses on QEMU, which returns 0 for them
//!   without consuming data; a 16-bit IN does the same here. (A 32-bit
//!   access at 0x510 reaches past the window, so ringside's bus splits it
//!   into byte cycles: two data-register bytes plus two unassigned ones.)
//! * Selector bit 15 picks the architecture-specific item table, bit 14 is
//!   the obsolete "write channel" and is ignored, as in QEMU. ringside has
//!   no architecture-specific items (ACPI tables, e820, …): they read
//!   as empty items, like unknown keys.
//! * Ports 0x514-0x51b hold the DMA address register on QEMU. They are
//!   decoded here (so a probing guest does not show up as unassigned
//!   accesses), but DMA is not implemented and not advertised: `FW_CFG_ID`
//!   has bit 1 clear, reads return 0 (never the `"QEMU CFG"` DMA
//!   signature) and writes are ignored. Guests must then fall back to the
//!   traditional interface, which the specification says is always there.
//!
//! The items ([`key`]): the signature `"QEMU"`, `FW_CFG_ID` = 1
//! (traditional interface only), a zero UUID, the RAM size, "no graphics",
//! one boot CPU and one possible CPU, an empty NUMA description and an
//! empty file directory.

use crate::bus::PioDevice;
use std::collections::BTreeMap;

/// The selector port; the data port is the next one.
pub const FW_CFG_PORT: u16 = 0x510;
/// The selector/data window: 0x510-0x511.
pub const FW_CFG_PORTS: u32 = 2;
/// The DMA address register (8 bytes, big-endian on QEMU).
pub const FW_CFG_DMA_PORT: u16 = 0x514;
/// Size of the DMA address register.
pub const FW_CFG_DMA_PORTS: u32 = 8;

/// Item keys (QEMU's `FW_CFG_*` selector values).
pub mod key {
    /// The four bytes `"QEMU"`.
    pub const SIGNATURE: u16 = 0x00;
    /// Feature bitmap, u32 LE: bit 0 traditional interface, bit 1 DMA.
    pub const ID: u16 = 0x01;
    /// The VM's UUID, 16 bytes.
    pub const UUID: u16 = 0x02;
    /// Guest RAM in bytes (QEMU's `-m`), u64 LE.
    pub const RAM_SIZE: u16 = 0x03;
    /// Running without a display, u16 LE.
    pub const NOGRAPHIC: u16 = 0x04;
    /// CPUs present at boot, u16 LE.
    pub const NB_CPUS: u16 = 0x05;
    /// NUMA description: node count, then each CPU's node, then each
    /// node's memory, all u64 LE.
    pub const NUMA: u16 = 0x0d;
    /// Possible CPUs (hot-plug limit), u16 LE.
    pub const MAX_CPUS: u16 = 0x0f;
    /// The file directory: a u32 **big-endian** entry count, then entries.
    pub const FILE_DIR: u16 = 0x19;
}

/// Selector bit 14: QEMU's pre-2.4 "write channel", ignored for reads.
const WRITE_CHANNEL: u16 = 0x4000;

/// `FW_CFG_ID` bit 0: the traditional I/O interface (always set).
const ID_TRADITIONAL: u32 = 1 << 0;

/// The fw_cfg selector/data window (ports 0x510-0x511).
#[derive(Debug, Clone)]
pub struct FwCfg {
    /// Item contents by key (write-channel bit clear). Absent keys are
    /// empty items.
    items: BTreeMap<u16, Vec<u8>>,
    /// The selected key, write-channel bit cleared.
    selected: u16,
    /// Next byte of the selected item to read.
    offset: usize,
}

impl FwCfg {
    /// The items of a one-CPU machine with `ram_size` bytes of RAM.
    pub fn new(ram_size: u64) -> Self {
        /// ringside boots one vCPU and cannot hot-plug more.
        const CPUS: u16 = 1;
        let mut items = BTreeMap::new();
        items.insert(key::SIGNATURE, b"QEMU".to_vec());
        items.insert(key::ID, ID_TRADITIONAL.to_le_bytes().to_vec());
        items.insert(key::UUID, vec![0; 16]);
        items.insert(key::RAM_SIZE, ram_size.to_le_bytes().to_vec());
        items.insert(key::NOGRAPHIC, 1u16.to_le_bytes().to_vec());
        items.insert(key::NB_CPUS, CPUS.to_le_bytes().to_vec());
        // QEMU's layout with no NUMA nodes: the node count (0) and one
        // node number per possible CPU, (1 + CPUS) u64s, all zero.
        items.insert(key::NUMA, vec![0; 8 * (1 + usize::from(CPUS))]);
        items.insert(key::MAX_CPUS, CPUS.to_le_bytes().to_vec());
        // No files: the count alone, big-endian like the rest of the
        // directory.
        items.insert(key::FILE_DIR, 0u32.to_be_bytes().to_vec());
        FwCfg {
            items,
            selected: key::SIGNATURE,
            offset: 0,
        }
    }

    /// Write the selector: choose item `key`, back to its first byte.
    pub fn select(&mut self, key: u16) {
        self.selected = key & !WRITE_CHANNEL;
        self.offset = 0;
    }

    /// The selected key (write-channel bit cleared).
    pub fn selected(&self) -> u16 {
        self.selected
    }

    /// Read the data register: the next byte of the selected item, or 0
    /// past its end (the offset then stops advancing).
    pub fn read_data(&mut self) -> u8 {
        let byte = self
            .items
            .get(&self.selected)
            .and_then(|item| item.get(self.offset))
            .copied();
        match byte {
            Some(b) => {
                self.offset += 1;
                b
            }
            None => 0,
        }
    }

    /// The contents of item `key` (empty for keys ringside does not know).
    pub fn item(&self, key: u16) -> &[u8] {
        self.items
            .get(&(key & !WRITE_CHANNEL))
            .map_or(&[], Vec::as_slice)
    }
}

impl Default for FwCfg {
    /// A machine with ringside's default 128 MiB.
    fn default() -> Self {
        Self::new(128 << 20)
    }
}

impl PioDevice for FwCfg {
    /// Byte reads at 0x510 or 0x511 read the data register; wider reads
    /// are invalid on QEMU and read 0 without consuming data.
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        match data {
            [b] => *b = self.read_data(),
            _ => data.fill(0),
        }
    }

    /// A 16-bit write selects an item; byte writes go to the data register
    /// and are ignored (read-only since QEMU v2.4).
    fn write(&mut self, _offset: u16, data: &[u8]) {
        if let [lo, hi] = data {
            self.select(u16::from_le_bytes([*lo, *hi]));
        }
    }
}

/// The DMA address register at 0x514-0x51b, decoded but inert: DMA is not
/// advertised in `FW_CFG_ID`, reads return 0 (the register's idle value,
/// and not the `"QEMU CFG"` signature a guest could take for DMA support)
/// and writes are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct FwCfgDma;

impl PioDevice for FwCfgDma {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0);
    }
    fn write(&mut self, _offset: u16, _data: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kvm-unit-tests' `fwcfg_get_u` does: `outw(key, 0x510)`, then
    /// `inb(0x511)` `n` times.
    fn get(f: &mut FwCfg, key: u16, n: usize) -> Vec<u8> {
        f.write(0, &key.to_le_bytes());
        (0..n)
            .map(|_| {
                let mut b = [0u8];
                f.read(1, &mut b);
                b[0]
            })
            .collect()
    }

    #[test]
    fn signature_and_id() {
        let mut f = FwCfg::new(64 << 20);
        assert_eq!(get(&mut f, key::SIGNATURE, 4), b"QEMU");
        assert_eq!(get(&mut f, key::ID, 4), [1, 0, 0, 0], "no DMA bit");
        assert_eq!(get(&mut f, key::UUID, 17), [0; 17]);
    }

    #[test]
    fn cpu_counts() {
        let mut f = FwCfg::default();
        assert_eq!(get(&mut f, key::NB_CPUS, 2), [1, 0]);
        assert_eq!(get(&mut f, key::MAX_CPUS, 2), [1, 0]);
        assert_eq!(get(&mut f, key::NOGRAPHIC, 2), [1, 0]);
        assert_eq!(get(&mut f, key::NUMA, 8), [0; 8]);
    }

    #[test]
    fn ram_size_is_little_endian() {
        let mut f = FwCfg::new(0x1_2345_6000);
        assert_eq!(
            get(&mut f, key::RAM_SIZE, 8),
            [0x00, 0x60, 0x45, 0x23, 0x01, 0, 0, 0]
        );
        assert_eq!(f.item(key::RAM_SIZE), 0x1_2345_6000u64.to_le_bytes());
    }

    #[test]
    fn file_dir_count_is_big_endian_zero() {
        let mut f = FwCfg::default();
        assert_eq!(f.item(key::FILE_DIR), [0, 0, 0, 0]);
        assert_eq!(get(&mut f, key::FILE_DIR, 4), [0; 4]);
    }

    #[test]
    fn past_the_end_reads_zero() {
        let mut f = FwCfg::default();
        assert_eq!(get(&mut f, key::SIGNATURE, 10), b"QEMU\0\0\0\0\0\0");
        assert_eq!(get(&mut f, key::NB_CPUS, 5), [1, 0, 0, 0, 0]);
    }

    #[test]
    fn reselect_resets_offset() {
        let mut f = FwCfg::default();
        assert_eq!(get(&mut f, key::SIGNATURE, 2), b"QE");
        assert_eq!(get(&mut f, key::SIGNATURE, 4), b"QEMU");
        // Past the end, then re-select: from the start again.
        get(&mut f, key::SIGNATURE, 9);
        assert_eq!(get(&mut f, key::SIGNATURE, 1), b"Q");
        // Both ports of the window read the data register.
        f.select(key::SIGNATURE);
        let mut b = [0u8];
        f.read(0, &mut b);
        assert_eq!(b, *b"Q");
        f.read(1, &mut b);
        assert_eq!(b, *b"E");
    }

    #[test]
    fn unknown_and_arch_keys_are_empty() {
        let mut f = FwCfg::default();
        for k in [0x06, 0x20, 0x3fff, 0x8000, 0x8003, 0xffff] {
            assert_eq!(get(&mut f, k, 4), [0; 4], "key {k:#x}");
            assert!(f.item(k).is_empty());
        }
        // Bit 14 (the old write channel) does not change the item.
        assert_eq!(get(&mut f, key::NB_CPUS | 0x4000, 2), [1, 0]);
        assert_eq!(f.selected(), key::NB_CPUS);
    }

    #[test]
    fn byte_writes_and_wide_reads_follow_qemu() {
        let mut f = FwCfg::default();
        f.select(key::NB_CPUS);
        // An 8-bit OUT is a (ignored) data write, not a selection.
        f.write(0, &[key::SIGNATURE as u8]);
        f.write(1, &[0x55]);
        assert_eq!(f.selected(), key::NB_CPUS);
        // A 16-bit IN is not a valid access: 0, nothing consumed.
        let mut w = [0xffu8; 2];
        f.read(0, &mut w);
        assert_eq!(w, [0, 0]);
        assert_eq!(f.read_data(), 1);
        assert_eq!(f.read_data(), 0);
    }

    #[test]
    fn dma_register_is_inert() {
        let mut d = FwCfgDma;
        let mut q = [0xffu8; 4];
        d.read(0, &mut q);
        assert_eq!(q, [0; 4]);
        d.write(4, &[0, 0x10, 0, 0]);
    }
}
