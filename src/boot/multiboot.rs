//! Multiboot v1 (the GRUB legacy protocol, also what QEMU's `-kernel`
//! implements for non-Linux kernels).
//!
//! The kernel carries a header — magic 0x1BADB002, flags, checksum (the
//! three sum to 0 mod 2^32) — 4-byte aligned in its first 8 KiB. The low 16
//! flag bits are requirements the loader must meet or refuse the kernel;
//! bit 16 (the "a.out kludge") says the load addresses are in the header
//! instead of an ELF program header table. The loader enters the kernel in
//! 32-bit flat protected mode with EAX = 0x2BADB002 and EBX = the physical
//! address of the `multiboot_info` structure (MBI).

use super::e820::{contiguous_above_1m, E820Entry};
use super::elf::slice_at;
use super::gdt::protected_mode_state;
use super::guest::GuestWriter;
use super::image::LoadSegment;
use super::lowmem::{
    BOOT_INFO_ADDR, CMDLINE_ADDR, EBDA_START, LOADER_NAME_ADDR, MEMMAP_ADDR, MEMMAP_MAX,
    MODLIST_ADDR,
};
use super::BootError;
use cpu::state::reg;
use cpu::CpuState;
use mmu::PhysLayout;

/// The header magic.
pub const HEADER_MAGIC: u32 = 0x1bad_b002;
/// The value in EAX at entry.
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// The header must lie entirely within this many bytes of the file start.
pub const SEARCH_LIMIT: usize = 8192;

/// Header flag: align modules on page boundaries (always done).
pub const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Header flag: provide mem_* and the memory map (always done).
pub const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Header flag: video mode table wanted (ignored: ringside has no display).
pub const FLAG_VIDEO_MODE: u32 = 1 << 2;
/// Header flag: the a.out kludge load address fields are valid.
pub const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// The required flags ringside can satisfy.
const SUPPORTED_REQUIRED: u32 = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE;

/// MBI flag bits ringside sets.
pub mod info_flags {
    pub const MEMORY: u32 = 1 << 0;
    pub const CMDLINE: u32 = 1 << 2;
    pub const MODS: u32 = 1 << 3;
    pub const MMAP: u32 = 1 << 6;
    pub const LOADER_NAME: u32 = 1 << 9;
}

/// Size of the MBI up to and including the framebuffer fields; ringside
/// zeroes all of it and fills the fields its flags announce.
pub const INFO_SIZE: usize = 116;
/// `mem_lower`: KiB of conventional memory, 639 as QEMU reports.
pub const MEM_LOWER_KIB: u32 = (EBDA_START / 1024) as u32;

/// The a.out kludge address fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AoutKludge {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// A found, checksummed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// File offset of the magic.
    pub offset: u64,
    pub flags: u32,
    pub aout: Option<AoutKludge>,
}

impl Header {
    /// The kernel asked for a video mode, which ringside ignores.
    pub fn wants_video(&self) -> bool {
        self.flags & FLAG_VIDEO_MODE != 0
    }
}

/// Why a multiboot header is unusable; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Bad {
        offset: u64,
        reason: String,
    },
    Unsupported {
        flags: u32,
        unsupported: u32,
    },
    /// The kludge's entry address is outside the loaded bytes.
    BadEntry {
        entry: u64,
    },
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    let b = data.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Find the first valid header: magic at a 4-byte aligned offset with
/// `magic + flags + checksum == 0`, wholly inside the first 8 KiB. A magic
/// with a wrong checksum is not a header (GRUB skips it too).
pub fn find_header(data: &[u8]) -> Result<Option<Header>, HeaderError> {
    let window = &data[..data.len().min(SEARCH_LIMIT)];
    let mut off = 0usize;
    while off + 12 <= window.len() {
        let (Some(magic), Some(flags), Some(sum)) = (
            u32_at(window, off),
            u32_at(window, off + 4),
            u32_at(window, off + 8),
        ) else {
            break;
        };
        if magic == HEADER_MAGIC && magic.wrapping_add(flags).wrapping_add(sum) == 0 {
            return parse_header(window, off, flags).map(Some);
        }
        off += 4;
    }
    Ok(None)
}

fn parse_header(window: &[u8], off: usize, flags: u32) -> Result<Header, HeaderError> {
    let unsupported = flags & 0xffff & !SUPPORTED_REQUIRED;
    if unsupported != 0 {
        return Err(HeaderError::Unsupported { flags, unsupported });
    }
    let aout = if flags & FLAG_AOUT_KLUDGE != 0 {
        let f = |i: usize| u32_at(window, off + 12 + 4 * i);
        match (f(0), f(1), f(2), f(3), f(4)) {
            (Some(header_addr), Some(load_addr), Some(load_end_addr), Some(bss_end_addr), Some(entry_addr)) => {
                Some(AoutKludge {
                    header_addr,
                    load_addr,
                    load_end_addr,
                    bss_end_addr,
                    entry_addr,
                })
            }
            _ => {
                return Err(HeaderError::Bad {
                    offset: off as u64,
                    reason: "the a.out kludge fields (header bytes 12..32) are past the end of the file or of its first 8 KiB".into(),
                })
            }
        }
    } else {
        None
    };
    Ok(Header {
        offset: off as u64,
        flags,
        aout,
    })
}

/// The image described by the a.out kludge: file bytes from the offset
/// matching `load_addr` up to `load_end_addr` (or the end of the file when
/// 0), then zeroes up to `bss_end_addr` (none when 0). Returns the segment
/// and the entry point.
pub fn kludge_segment<'a>(
    data: &'a [u8],
    h: &Header,
    k: &AoutKludge,
) -> Result<(LoadSegment<'a>, u32), HeaderError> {
    let bad = |reason: String| HeaderError::Bad {
        offset: h.offset,
        reason,
    };
    if k.load_addr > k.header_addr {
        return Err(bad(format!(
            "load_addr {:#x} is above header_addr {:#x}",
            k.load_addr, k.header_addr
        )));
    }
    let before_header = u64::from(k.header_addr - k.load_addr);
    let file_off = h.offset.checked_sub(before_header).ok_or_else(|| {
        bad(format!(
            "load_addr {:#x} would start {before_header:#x} bytes before the header, before the start of the file",
            k.load_addr
        ))
    })?;
    let load_len = if k.load_end_addr == 0 {
        (data.len() as u64).saturating_sub(file_off)
    } else {
        if k.load_end_addr <= k.header_addr {
            return Err(bad(format!(
                "load_end_addr {:#x} is not above header_addr {:#x}",
                k.load_end_addr, k.header_addr
            )));
        }
        u64::from(k.load_end_addr - k.load_addr)
    };
    let bytes = slice_at(data, file_off, load_len).ok_or_else(|| {
        bad(format!(
            "load_end_addr {:#x} asks for {load_len:#x} bytes from file offset {file_off:#x}, past the end of the file ({} bytes)",
            k.load_end_addr,
            data.len()
        ))
    })?;
    let load_end = u64::from(k.load_addr) + load_len;
    let memsz = if k.bss_end_addr == 0 {
        load_len
    } else if u64::from(k.bss_end_addr) < load_end {
        return Err(bad(format!(
            "bss_end_addr {:#x} is below the end of the loaded bytes {load_end:#x}",
            k.bss_end_addr
        )));
    } else {
        u64::from(k.bss_end_addr - k.load_addr)
    };
    let entry = u64::from(k.entry_addr);
    if entry < u64::from(k.load_addr) || entry >= load_end {
        return Err(HeaderError::BadEntry { entry });
    }
    Ok((
        LoadSegment {
            paddr: u64::from(k.load_addr),
            data: bytes,
            memsz,
        },
        k.entry_addr,
    ))
}

/// What the MBI points at, already written to guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    pub start: u32,
    pub end: u32,
    /// PA of the module string.
    pub string: u32,
}

/// Write the MBI, its module list and memory map; return the MBI PA. The
/// command line must already be at [`CMDLINE_ADDR`] and the loader name at
/// [`LOADER_NAME_ADDR`].
pub fn write_info(
    w: &GuestWriter,
    layout: &PhysLayout,
    memmap: &[E820Entry],
    module: Option<Module>,
) -> Result<u64, BootError> {
    // The mmap buffer: entries of { size = 20, base_addr, length, type },
    // where `size` excludes itself (the spec's odd convention).
    let mut map = Vec::with_capacity(memmap.len() * 24);
    for e in memmap {
        map.extend_from_slice(&20u32.to_le_bytes());
        map.extend_from_slice(&e.addr.to_le_bytes());
        map.extend_from_slice(&e.size.to_le_bytes());
        map.extend_from_slice(&e.kind.code().to_le_bytes());
    }
    if map.len() as u64 > MEMMAP_MAX {
        return Err(BootError::Internal(
            "the multiboot memory map does not fit its area".into(),
        ));
    }
    w.write(MEMMAP_ADDR, &map)?;
    if let Some(m) = module {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&m.start.to_le_bytes());
        b[4..8].copy_from_slice(&m.end.to_le_bytes());
        b[8..12].copy_from_slice(&m.string.to_le_bytes());
        w.write(MODLIST_ADDR, &b)?;
    }
    let mem_upper_kib = u32::try_from(contiguous_above_1m(layout) / 1024).unwrap_or(u32::MAX);
    let mut mbi = [0u8; INFO_SIZE];
    let mut put = |off: usize, v: u32| mbi[off..off + 4].copy_from_slice(&v.to_le_bytes());
    // Modules are always announced, with a count of 0 when there are none,
    // as QEMU does: a kernel can rely on the field being valid.
    put(
        0,
        info_flags::MEMORY
            | info_flags::CMDLINE
            | info_flags::MODS
            | info_flags::MMAP
            | info_flags::LOADER_NAME,
    );
    put(4, MEM_LOWER_KIB);
    put(8, mem_upper_kib);
    put(16, CMDLINE_ADDR as u32);
    put(20, u32::from(module.is_some()));
    put(24, MODLIST_ADDR as u32);
    put(44, map.len() as u32);
    put(48, MEMMAP_ADDR as u32);
    put(64, LOADER_NAME_ADDR as u32);
    w.write(BOOT_INFO_ADDR, &mbi)?;
    Ok(BOOT_INFO_ADDR)
}

/// The multiboot entry state: 32-bit flat protected mode (see `gdt.rs`),
/// EAX = 0x2BADB002, EBX = the MBI PA.
pub fn entry_state(entry: u32, mbi: u64) -> CpuState {
    let mut s = protected_mode_state(entry);
    s.gpr[reg::RAX] = u64::from(BOOTLOADER_MAGIC);
    s.gpr[reg::RBX] = mbi;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u32, extra: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags),
        ]
        .iter()
        .chain(extra)
        {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    }

    #[test]
    fn finds_aligned_checksummed_header() {
        let mut f = vec![0u8; 64];
        f.extend(header(3, &[]));
        assert_eq!(
            find_header(&f).unwrap(),
            Some(Header {
                offset: 64,
                flags: 3,
                aout: None
            })
        );
        // Misaligned: not found.
        let mut g = vec![0u8; 66];
        g.extend(header(3, &[]));
        assert_eq!(find_header(&g).unwrap(), None);
        // Bad checksum: not a header.
        let mut h = header(3, &[]);
        h[8] ^= 1;
        assert_eq!(find_header(&h).unwrap(), None);
        // Beyond 8 KiB: not found.
        let mut far = vec![0u8; SEARCH_LIMIT - 8];
        far.extend(header(3, &[]));
        assert_eq!(find_header(&far).unwrap(), None);
    }

    #[test]
    fn flags() {
        assert_eq!(
            find_header(&header(1 << 3, &[])),
            Err(HeaderError::Unsupported {
                flags: 8,
                unsupported: 8
            })
        );
        let h = find_header(&header(FLAG_VIDEO_MODE | (1 << 20), &[0; 8]))
            .unwrap()
            .unwrap();
        assert!(h.wants_video());
        // Kludge flag without the fields.
        assert!(matches!(
            find_header(&header(FLAG_AOUT_KLUDGE, &[1, 2])),
            Err(HeaderError::Bad { .. })
        ));
    }

    #[test]
    fn kludge_layout() {
        // Header at file offset 8, image linked at 0x100000.
        let mut f = vec![0xaa; 8];
        f.extend(header(
            FLAG_AOUT_KLUDGE,
            &[0x100008, 0x100000, 0x100040, 0x102000, 0x100020],
        ));
        f.resize(0x80, 0xbb);
        let h = find_header(&f).unwrap().unwrap();
        let k = h.aout.unwrap();
        let (seg, entry) = kludge_segment(&f, &h, &k).unwrap();
        assert_eq!(
            (seg.paddr, seg.data.len(), seg.memsz, entry),
            (0x100000, 0x40, 0x2000, 0x100020)
        );
        assert_eq!(seg.data[0], 0xaa);
        // load_end_addr = 0: the rest of the file; bss_end_addr = 0: no bss.
        let mut f2 = f.clone();
        f2[8 + 20..8 + 28].fill(0);
        let h2 = find_header(&f2).unwrap().unwrap();
        let (seg, _) = kludge_segment(&f2, &h2, &h2.aout.unwrap()).unwrap();
        assert_eq!((seg.data.len(), seg.memsz), (0x80, 0x80));
        // Errors.
        let bad = |k: AoutKludge| kludge_segment(&f, &h, &k);
        assert!(matches!(
            bad(AoutKludge {
                load_addr: 0x100010,
                ..k
            }),
            Err(HeaderError::Bad { .. })
        ));
        assert!(matches!(
            bad(AoutKludge {
                load_addr: 0xff000,
                ..k
            }),
            Err(HeaderError::Bad { .. })
        ));
        assert!(matches!(
            bad(AoutKludge {
                load_end_addr: 0x100100,
                ..k
            }),
            Err(HeaderError::Bad { .. })
        ));
        assert!(matches!(
            bad(AoutKludge {
                bss_end_addr: 0x100020,
                ..k
            }),
            Err(HeaderError::Bad { .. })
        ));
        assert!(matches!(
            bad(AoutKludge {
                entry_addr: 0x100040,
                ..k
            }),
            Err(HeaderError::BadEntry { entry: 0x100040 })
        ));
    }
}
