//! The PVH boot protocol (Xen's "HVM direct boot", used by Linux, FreeBSD,
//! QEMU, Firecracker and cloud-hypervisor).
//!
//! The kernel advertises a 32-bit physical entry point in the Xen ELF note
//! `XEN_ELFNOTE_PHYS32_ENTRY`; the loader enters it in 32-bit protected
//! mode with paging off and EBX = the physical address of an
//! `hvm_start_info` structure (xen/include/public/arch-x86/hvm/start_info.h).
//! ringside writes version 1 of it, which adds the memory map:
//!
//! ```text
//! hvm_start_info (56 bytes) at BOOT_INFO_ADDR
//!   magic 0x336ec578, version 1, flags 0,
//!   nr_modules / modlist_paddr   → hvm_modlist_entry[1] (the initrd)
//!   cmdline_paddr                → NUL-terminated --append string, or 0
//!   rsdp_paddr 0                 (no ACPI tables)
//!   memmap_paddr / memmap_entries → hvm_memmap_table_entry[] (e820)
//! ```
//!
//! The structure definitions are linux-loader's bindings of the Xen header;
//! they are serialized field by field (little-endian, the header's layout)
//! rather than through linux-loader's `ByteValued`/`BootConfigurator`,
//! which write through vm-memory's `GuestMemory` trait that ringside's RAM
//! does not implement.

use super::e820::E820Entry;
use super::gdt::protected_mode_state;
use super::guest::GuestWriter;
use super::lowmem::{BOOT_INFO_ADDR, MEMMAP_ADDR, MEMMAP_MAX, MODLIST_ADDR};
use super::BootError;
use cpu::state::reg;
use cpu::CpuState;
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info, XEN_HVM_START_MAGIC_VALUE,
};

/// Size of `hvm_start_info` version 1.
pub const START_INFO_SIZE: usize = 56;
/// Size of one `hvm_modlist_entry`.
pub const MODLIST_ENTRY_SIZE: usize = 32;
/// Size of one `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;

/// A boot module already in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    pub paddr: u64,
    pub size: u64,
    /// PA of the module's NUL-terminated string, 0 if none.
    pub string: u64,
}

fn start_info_bytes(si: &hvm_start_info) -> [u8; START_INFO_SIZE] {
    let mut b = [0u8; START_INFO_SIZE];
    let fields: [(usize, &[u8]); 10] = [
        (0, &si.magic.to_le_bytes()),
        (4, &si.version.to_le_bytes()),
        (8, &si.flags.to_le_bytes()),
        (12, &si.nr_modules.to_le_bytes()),
        (16, &si.modlist_paddr.to_le_bytes()),
        (24, &si.cmdline_paddr.to_le_bytes()),
        (32, &si.rsdp_paddr.to_le_bytes()),
        (40, &si.memmap_paddr.to_le_bytes()),
        (48, &si.memmap_entries.to_le_bytes()),
        (52, &si.reserved.to_le_bytes()),
    ];
    for (off, f) in fields {
        b[off..off + f.len()].copy_from_slice(f);
    }
    b
}

fn modlist_bytes(m: &hvm_modlist_entry) -> [u8; MODLIST_ENTRY_SIZE] {
    let mut b = [0u8; MODLIST_ENTRY_SIZE];
    b[0..8].copy_from_slice(&m.paddr.to_le_bytes());
    b[8..16].copy_from_slice(&m.size.to_le_bytes());
    b[16..24].copy_from_slice(&m.cmdline_paddr.to_le_bytes());
    b[24..32].copy_from_slice(&m.reserved.to_le_bytes());
    b
}

fn memmap_bytes(e: &hvm_memmap_table_entry) -> [u8; MEMMAP_ENTRY_SIZE] {
    let mut b = [0u8; MEMMAP_ENTRY_SIZE];
    b[0..8].copy_from_slice(&e.addr.to_le_bytes());
    b[8..16].copy_from_slice(&e.size.to_le_bytes());
    b[16..20].copy_from_slice(&e.type_.to_le_bytes());
    b[20..24].copy_from_slice(&e.reserved.to_le_bytes());
    b
}

/// Write `hvm_start_info`, the module list and the memory map; return the
/// start_info PA. `cmdline` is the PA of the command line, if any.
pub fn write_start_info(
    w: &GuestWriter,
    memmap: &[E820Entry],
    cmdline: Option<u64>,
    module: Option<Module>,
) -> Result<u64, BootError> {
    let map: Vec<u8> = memmap
        .iter()
        .flat_map(|e| {
            memmap_bytes(&hvm_memmap_table_entry {
                addr: e.addr,
                size: e.size,
                type_: e.kind.code(),
                reserved: 0,
            })
        })
        .collect();
    if map.len() as u64 > MEMMAP_MAX {
        return Err(BootError::Internal(format!(
            "the memory map ({} entries) does not fit its area",
            memmap.len()
        )));
    }
    w.write(MEMMAP_ADDR, &map)?;
    if let Some(m) = module {
        w.write(
            MODLIST_ADDR,
            &modlist_bytes(&hvm_modlist_entry {
                paddr: m.paddr,
                size: m.size,
                cmdline_paddr: m.string,
                reserved: 0,
            }),
        )?;
    }
    let si = hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: 1,
        flags: 0,
        nr_modules: u32::from(module.is_some()),
        modlist_paddr: if module.is_some() { MODLIST_ADDR } else { 0 },
        cmdline_paddr: cmdline.unwrap_or(0),
        rsdp_paddr: 0,
        memmap_paddr: MEMMAP_ADDR,
        memmap_entries: memmap.len() as u32,
        reserved: 0,
    };
    w.write(BOOT_INFO_ADDR, &start_info_bytes(&si))?;
    Ok(BOOT_INFO_ADDR)
}

/// The PVH entry state: 32-bit flat protected mode (see `gdt.rs`) with
/// EBX = the start_info PA.
pub fn entry_state(entry: u32, start_info: u64) -> CpuState {
    let mut s = protected_mode_state(entry);
    s.gpr[reg::RBX] = start_info;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_header() {
        // The offsets we serialize at must be the repr(C) offsets of the
        // linux-loader bindings.
        assert_eq!(std::mem::size_of::<hvm_start_info>(), START_INFO_SIZE);
        assert_eq!(std::mem::offset_of!(hvm_start_info, memmap_paddr), 40);
        assert_eq!(std::mem::offset_of!(hvm_start_info, memmap_entries), 48);
        assert_eq!(std::mem::size_of::<hvm_modlist_entry>(), MODLIST_ENTRY_SIZE);
        assert_eq!(std::mem::offset_of!(hvm_modlist_entry, cmdline_paddr), 16);
        assert_eq!(
            std::mem::size_of::<hvm_memmap_table_entry>(),
            MEMMAP_ENTRY_SIZE
        );
        assert_eq!(std::mem::offset_of!(hvm_memmap_table_entry, type_), 16);
        let b = start_info_bytes(&hvm_start_info {
            magic: 1,
            cmdline_paddr: 0x2000,
            memmap_entries: 7,
            ..Default::default()
        });
        assert_eq!(&b[0..4], &[1, 0, 0, 0]);
        assert_eq!(&b[24..32], &0x2000u64.to_le_bytes());
        assert_eq!(&b[48..52], &7u32.to_le_bytes());
    }
}
