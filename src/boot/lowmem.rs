//! Where the loaders put things in the first megabyte of guest memory.
//!
//! ```text
//!  0x0000_0000 ┌───────────────────────────────┐
//!              │ real-mode IVT + BDA (zeroed)  │
//!  0x0000_0500 ├───────────────────────────────┤
//!              │ boot GDT (4 descriptors)      │  GDT_ADDR
//!  0x0000_1000 ├───────────────────────────────┤
//!              │ hvm_start_info / multiboot_info│ BOOT_INFO_ADDR
//!  0x0000_1100 │ module list (1 entry)         │  MODLIST_ADDR
//!  0x0000_1200 │ memory map (e820 entries)     │  MEMMAP_ADDR
//!  0x0000_2000 ├───────────────────────────────┤
//!              │ kernel command line (≤ 4 KiB) │  CMDLINE_ADDR
//!  0x0000_3000 │ module string (initrd name)   │  MODSTRING_ADDR
//!  0x0000_4000 │ boot loader name "ringside"   │  LOADER_NAME_ADDR
//!  0x0000_4100 │ (reserved for future tables)  │
//!  0x0000_7000 ├───────────────────────────────┤  BOOT_AREA_END
//!              │ free for the guest            │  (0x7c00 boot sectors,
//!              │                               │   flat images, stacks)
//!  0x0009_fc00 ├───────────────────────────────┤  EBDA_START
//!              │ reserved: EBDA, VGA, ROMs     │
//!  0x000e_0000 ├───────────────────────────────┤
//!              │ flattened device tree ≤64 KiB │  FDT_ADDR
//!  0x000f_0000 ├───────────────────────────────┤
//!              │ reserved: BIOS                │
//!  0x0010_0000 └───────────────────────────────┘  HIGH_MEMORY: kernels
//! ```
//!
//! The structures sit below the traditional boot-sector address 0x7c00 so
//! that a flat image or a guest's early stack in 0x7000–0x9fbff never meets
//! them, and the FDT sits in the legacy reserved hole so that no e820 RAM
//! range covers it. docs/BOOT.md has the same table.

/// The boot GDT (see `gdt.rs`).
pub const GDT_ADDR: u64 = 0x500;
/// `hvm_start_info` (PVH) or `multiboot_info` (multiboot); the PA in EBX.
pub const BOOT_INFO_ADDR: u64 = 0x1000;
/// The module list: one `hvm_modlist_entry` or multiboot module.
pub const MODLIST_ADDR: u64 = 0x1100;
/// The memory map (PVH `hvm_memmap_table_entry[]` / multiboot mmap).
pub const MEMMAP_ADDR: u64 = 0x1200;
/// Room for the memory map, in bytes (up to the command line page).
pub const MEMMAP_MAX: u64 = 0x2000 - MEMMAP_ADDR;
/// The kernel command line, NUL-terminated.
pub const CMDLINE_ADDR: u64 = 0x2000;
/// Maximum command line size, including the terminating NUL.
pub const CMDLINE_MAX: usize = 0x1000;
/// The module's string (the initrd file name), NUL-terminated.
pub const MODSTRING_ADDR: u64 = 0x3000;
/// Maximum module string size, including the terminating NUL.
pub const MODSTRING_MAX: usize = 0x1000;
/// The multiboot `boot_loader_name` string.
pub const LOADER_NAME_ADDR: u64 = 0x4000;
/// The loader name written at [`LOADER_NAME_ADDR`].
pub const LOADER_NAME: &[u8] = b"ringside\0";
/// First byte after the boot structures area `[0, BOOT_AREA_END)`.
pub const BOOT_AREA_END: u64 = 0x7000;
/// Start of the legacy reserved area (EBDA, VGA, option ROMs, BIOS): the
/// end of conventional memory, 639 KiB.
pub const EBDA_START: u64 = 0x9_fc00;
/// The flattened device tree (DTB), at a fixed address.
pub const FDT_ADDR: u64 = 0xe_0000;
/// Maximum DTB size; the whole window is reserved in the memory map.
pub const FDT_MAX: u64 = 0x1_0000;
/// 1 MiB: where "high memory" and kernels start.
pub const HIGH_MEMORY: u64 = 0x10_0000;
/// The least RAM ringside boots with: the first megabyte holds the boot
/// structures and the DTB.
pub const MIN_RAM: u64 = HIGH_MEMORY;

/// A range of guest memory ringside writes itself, which kernel segments
/// must not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedArea {
    pub start: u64,
    pub end: u64,
    pub name: &'static str,
}

/// The areas the loaders own: kernel segments overlapping them are refused
/// rather than silently clobbered (or clobbering the boot information).
pub const RESERVED_AREAS: [ReservedArea; 2] = [
    ReservedArea {
        start: 0,
        end: BOOT_AREA_END,
        name: "boot structures (IVT, GDT, start info, memory map, command line)",
    },
    ReservedArea {
        start: FDT_ADDR,
        end: FDT_ADDR + FDT_MAX,
        name: "device tree window",
    },
];

// The boot area stays below the boot-sector address; the FDT window lies
// inside the legacy reserved hole.
const _: () = assert!(BOOT_AREA_END <= 0x7c00);
const _: () = assert!(EBDA_START < FDT_ADDR && FDT_ADDR + FDT_MAX <= HIGH_MEMORY);

/// True if `[a_start, a_end)` and `[b_start, b_end)` share a byte.
pub fn overlaps(a_start: u64, a_end: u64, b_start: u64, b_end: u64) -> bool {
    a_start < b_end && b_start < a_end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_do_not_collide() {
        // Every structure lies inside the boot area, in order, without overlap.
        let spans = [
            (GDT_ADDR, GDT_ADDR + 4 * 8),
            (BOOT_INFO_ADDR, BOOT_INFO_ADDR + 116),
            (MODLIST_ADDR, MODLIST_ADDR + 32),
            (MEMMAP_ADDR, MEMMAP_ADDR + MEMMAP_MAX),
            (CMDLINE_ADDR, CMDLINE_ADDR + CMDLINE_MAX as u64),
            (MODSTRING_ADDR, MODSTRING_ADDR + MODSTRING_MAX as u64),
            (
                LOADER_NAME_ADDR,
                LOADER_NAME_ADDR + LOADER_NAME.len() as u64,
            ),
        ];
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "{w:x?}");
        }
        assert!(spans[spans.len() - 1].1 <= BOOT_AREA_END);
        assert!(overlaps(0, 2, 1, 3) && !overlaps(0, 1, 1, 2));
    }
}
