//! A strict, bounds-checked reader for the parts of ELF a boot loader needs:
//! the file header, the program headers (PT_LOAD, PT_NOTE) and, as a
//! fallback for the PVH note, SHT_NOTE sections.
//!
//! Why not `linux_loader::loader::elf::Elf::load`: it writes through
//! vm-memory's `GuestMemory` trait, which ringside's single-mapping
//! `GuestRam` does not implement; it accepts only ELF64, while PVH and
//! multiboot kernels are often ELF32; and it cannot refuse segments that
//! overlap ringside's boot structures or the MMIO hole. So we parse the
//! file ourselves: every offset and size read from the file goes through
//! checked arithmetic and slice `get`, and any inconsistency is an
//! [`ElfError`], never a panic.

use super::image::LoadSegment;

/// ELF identification magic.
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const EI_NIDENT: usize = 16;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const EV_CURRENT: u8 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const PN_XNUM: u16 = 0xffff;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_NOTE: u32 = 7;

/// The most note bytes searched for the PVH note (see `pvh_entry`).
const NOTE_SCAN_LIMIT: u64 = 1 << 20;

/// Xen ELF note carrying the 32-bit physical PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// Why a file is not a usable ELF; the caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Truncated or internally inconsistent.
    Malformed(String),
    /// Well-formed but not something ringside can boot.
    Unsupported(String),
}

fn malformed<T>(msg: impl Into<String>) -> Result<T, ElfError> {
    Err(ElfError::Malformed(msg.into()))
}

/// True if `data` starts with the ELF magic.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(ELF_MAGIC)
}

/// `len` bytes at file offset `off`, if they are all inside `data`.
pub fn slice_at(data: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let len = usize::try_from(len).ok()?;
    data.get(start..start.checked_add(len)?)
}

/// Little-endian integer of `N` bytes at `off`.
fn le<const N: usize>(data: &[u8], off: usize) -> Option<u64> {
    let b = data.get(off..off.checked_add(N)?)?;
    let mut v = [0u8; 8];
    v.get_mut(..N)?.copy_from_slice(b);
    Some(u64::from_le_bytes(v))
}

/// A little-endian field of a structure we already bounds-checked as a
/// whole; `None` means the structure was shorter than its fixed layout,
/// which the callers rule out before reading fields.
fn field(data: &[u8], off: usize, size: usize) -> Result<u64, ElfError> {
    let v = match size {
        2 => le::<2>(data, off),
        4 => le::<4>(data, off),
        _ => le::<8>(data, off),
    };
    v.ok_or_else(|| ElfError::Malformed(format!("field at offset {off:#x} is past the end")))
}

/// ELF32 or ELF64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    Elf32,
    Elf64,
}

impl ElfClass {
    pub fn name(self) -> &'static str {
        match self {
            ElfClass::Elf32 => "ELF32",
            ElfClass::Elf64 => "ELF64",
        }
    }
    /// Size of an address/offset field.
    fn word(self) -> usize {
        match self {
            ElfClass::Elf32 => 4,
            ElfClass::Elf64 => 8,
        }
    }
    fn ehdr_size(self) -> usize {
        match self {
            ElfClass::Elf32 => 52,
            ElfClass::Elf64 => 64,
        }
    }
    fn phdr_size(self) -> u64 {
        match self {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 56,
        }
    }
    fn shdr_size(self) -> u64 {
        match self {
            ElfClass::Elf32 => 40,
            ElfClass::Elf64 => 64,
        }
    }
}

/// One program header, widened to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    pub p_type: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// A parsed ELF file: header fields and program headers, all validated to
/// lie inside the file.
#[derive(Debug)]
pub struct Elf<'a> {
    data: &'a [u8],
    pub class: ElfClass,
    pub entry: u64,
    pub phdrs: Vec<ProgramHeader>,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
}

impl<'a> Elf<'a> {
    /// Parse and validate the file header and the program header table.
    pub fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        if !is_elf(data) {
            return malformed("no ELF magic");
        }
        let ident = match data.get(..EI_NIDENT) {
            Some(i) => i,
            None => return malformed("the file is shorter than the 16-byte ELF identification"),
        };
        let class = match ident[4] {
            ELFCLASS32 => ElfClass::Elf32,
            ELFCLASS64 => ElfClass::Elf64,
            c => return malformed(format!("bad EI_CLASS {c}")),
        };
        match ident[5] {
            ELFDATA2LSB => {}
            ELFDATA2MSB => return Err(ElfError::Unsupported("big-endian ELF".into())),
            d => return malformed(format!("bad EI_DATA {d}")),
        }
        if ident[6] != EV_CURRENT {
            return malformed(format!("bad EI_VERSION {}", ident[6]));
        }
        let eh = match data.get(..class.ehdr_size()) {
            Some(h) => h,
            None => {
                return malformed(format!(
                    "the {}-byte {} header is truncated ({} bytes in the file)",
                    class.ehdr_size(),
                    class.name(),
                    data.len()
                ))
            }
        };
        let e_type = field(eh, 16, 2)? as u16;
        if e_type != ET_EXEC && e_type != ET_DYN {
            return Err(ElfError::Unsupported(format!(
                "ELF type {e_type} is not an executable (ET_EXEC)"
            )));
        }
        let machine = field(eh, 18, 2)? as u16;
        let want = match class {
            ElfClass::Elf32 => EM_386,
            ElfClass::Elf64 => EM_X86_64,
        };
        if machine != want {
            return Err(ElfError::Unsupported(format!(
                "{} file for machine {machine}, expected {want} ({})",
                class.name(),
                if want == EM_386 {
                    "EM_386"
                } else {
                    "EM_X86_64"
                }
            )));
        }
        let w = class.word();
        // e_entry, e_phoff, e_shoff follow e_version at 24.
        let entry = field(eh, 24, w)?;
        let phoff = field(eh, 24 + w, w)?;
        let shoff = field(eh, 24 + 2 * w, w)?;
        // e_flags (4), e_ehsize (2), then the 2-byte counts.
        let tail = 24 + 3 * w + 4 + 2;
        let phentsize = field(eh, tail, 2)?;
        let phnum = field(eh, tail + 2, 2)?;
        let shentsize = field(eh, tail + 4, 2)?;
        let shnum = field(eh, tail + 6, 2)?;

        if phnum == u64::from(PN_XNUM) {
            return Err(ElfError::Unsupported(
                "extended program header numbering (e_phnum = PN_XNUM)".into(),
            ));
        }
        let mut phdrs = Vec::new();
        if phnum > 0 {
            if phentsize < class.phdr_size() {
                return malformed(format!(
                    "e_phentsize {phentsize} is smaller than a {} program header ({})",
                    class.name(),
                    class.phdr_size()
                ));
            }
            let table = phentsize
                .checked_mul(phnum)
                .and_then(|len| slice_at(data, phoff, len));
            let Some(table) = table else {
                return malformed(format!(
                    "the program header table ({phnum} entries at {phoff:#x}) runs past the end of the file ({} bytes)",
                    data.len()
                ));
            };
            let step = phentsize as usize;
            for i in 0..phnum as usize {
                let ph = table
                    .get(i * step..i * step + step)
                    .ok_or_else(|| ElfError::Malformed("program header out of range".into()))?;
                phdrs.push(parse_phdr(class, ph)?);
            }
        }
        let elf = Elf {
            data,
            class,
            entry,
            phdrs,
            shoff,
            shentsize,
            shnum,
        };
        // The section header table is usually the last thing in the file,
        // so checking that it is all there is what catches a truncated
        // kernel even when the bytes we load are intact.
        elf.section_table()?;
        Ok(elf)
    }

    /// The section header table, validated to lie inside the file; empty
    /// when the file has none (stripped) or uses extended numbering
    /// (e_shnum = 0), which we never need.
    fn section_table(&self) -> Result<&'a [u8], ElfError> {
        if self.shoff == 0 || self.shnum == 0 {
            return Ok(&[]);
        }
        if self.shentsize < self.class.shdr_size() {
            return malformed(format!(
                "e_shentsize {} is smaller than a section header ({})",
                self.shentsize,
                self.class.shdr_size()
            ));
        }
        let table = self
            .shentsize
            .checked_mul(self.shnum)
            .and_then(|len| slice_at(self.data, self.shoff, len));
        match table {
            Some(t) => Ok(t),
            None => malformed(format!(
                "the section header table ({} entries at {:#x}) runs past the end of the file ({} bytes)",
                self.shnum,
                self.shoff,
                self.data.len()
            )),
        }
    }

    /// The PT_LOAD segments with memory size, each checked to have its file
    /// bytes inside the file and an address range that does not wrap.
    pub fn load_segments(&self) -> Result<Vec<LoadSegment<'a>>, ElfError> {
        let mut segs = Vec::new();
        for (i, ph) in self.phdrs.iter().enumerate() {
            if ph.p_type != PT_LOAD {
                continue;
            }
            if ph.filesz > ph.memsz {
                return malformed(format!(
                    "segment {i}: p_filesz {:#x} is larger than p_memsz {:#x}",
                    ph.filesz, ph.memsz
                ));
            }
            let Some(bytes) = slice_at(self.data, ph.offset, ph.filesz) else {
                return malformed(format!(
                    "segment {i}: file bytes {:#x}+{:#x} run past the end of the file ({} bytes)",
                    ph.offset,
                    ph.filesz,
                    self.data.len()
                ));
            };
            let limit = match self.class {
                ElfClass::Elf32 => 1u64 << 32,
                ElfClass::Elf64 => u64::MAX,
            };
            match ph.paddr.checked_add(ph.memsz) {
                Some(end) if end <= limit => {}
                _ => {
                    return malformed(format!(
                        "segment {i}: p_paddr {:#x} + p_memsz {:#x} wraps around the address space",
                        ph.paddr, ph.memsz
                    ))
                }
            }
            if ph.memsz == 0 {
                continue;
            }
            segs.push(LoadSegment {
                paddr: ph.paddr,
                data: bytes,
                memsz: ph.memsz,
            });
        }
        if segs.is_empty() {
            return malformed("no PT_LOAD segment with contents");
        }
        Ok(segs)
    }

    /// The PVH entry point from the Xen `XEN_ELFNOTE_PHYS32_ENTRY` note, if
    /// the kernel has one. PT_NOTE segments are searched first, then
    /// SHT_NOTE sections (a kernel whose linker script leaves the note out
    /// of every segment still boots, as with QEMU and linux-loader).
    pub fn pvh_entry(&self) -> Result<Option<u32>, ElfError> {
        let segments = self
            .phdrs
            .iter()
            .filter(|p| p.p_type == PT_NOTE)
            .map(|p| (p.offset, p.filesz, p.align, "PT_NOTE"));
        let sections = self
            .note_sections()?
            .into_iter()
            .map(|(off, size, align)| (off, size, align, "SHT_NOTE section"));
        // Tens of thousands of note areas each spanning a huge file would
        // make the search quadratic; real kernels have a few hundred bytes
        // of notes, so a generous 1 MiB budget keeps any file's load fast.
        let mut budget = NOTE_SCAN_LIMIT;
        for (off, size, align, what) in segments.chain(sections) {
            let Some(notes) = slice_at(self.data, off, size) else {
                return malformed(format!(
                    "{what} bytes {off:#x}+{size:#x} run past the end of the file"
                ));
            };
            budget = match budget.checked_sub(size) {
                Some(b) => b,
                None => {
                    return malformed(format!(
                        "the ELF notes add up to more than {NOTE_SCAN_LIMIT} bytes"
                    ))
                }
            };
            if let Some(desc) = find_note(notes, align, b"Xen", XEN_ELFNOTE_PHYS32_ENTRY)? {
                return pvh_desc(desc).map(Some);
            }
        }
        Ok(None)
    }

    /// (offset, size, alignment) of every SHT_NOTE section.
    fn note_sections(&self) -> Result<Vec<(u64, u64, u64)>, ElfError> {
        let table = self.section_table()?;
        if table.is_empty() {
            return Ok(Vec::new());
        }
        // Non-empty table: shentsize >= a section header, so never 0.
        let step = self.shentsize as usize;
        let w = self.class.word();
        let mut v = Vec::new();
        for sh in table.chunks_exact(step) {
            if field(sh, 4, 4)? as u32 != SHT_NOTE {
                continue;
            }
            // sh_name, sh_type (4 each), sh_flags, sh_addr, sh_offset,
            // sh_size (word each), sh_link, sh_info (4 each), sh_addralign.
            let off = field(sh, 8 + 2 * w, w)?;
            let size = field(sh, 8 + 3 * w, w)?;
            let align = field(sh, 8 + 4 * w + 8, w)?;
            v.push((off, size, align));
        }
        Ok(v)
    }

    /// Translate a virtual address (such as `e_entry`) to the physical
    /// address it is loaded at, through the PT_LOAD segment containing it;
    /// an address no segment maps is returned unchanged (it is already
    /// physical), as GRUB does for multiboot ELF kernels.
    pub fn virt_to_phys(&self, va: u64) -> u64 {
        self.phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .find(|p| va >= p.vaddr && va - p.vaddr < p.memsz)
            .map(|p| p.paddr.wrapping_add(va - p.vaddr))
            .unwrap_or(va)
    }
}

fn parse_phdr(class: ElfClass, ph: &[u8]) -> Result<ProgramHeader, ElfError> {
    Ok(match class {
        ElfClass::Elf32 => ProgramHeader {
            p_type: field(ph, 0, 4)? as u32,
            offset: field(ph, 4, 4)?,
            vaddr: field(ph, 8, 4)?,
            paddr: field(ph, 12, 4)?,
            filesz: field(ph, 16, 4)?,
            memsz: field(ph, 20, 4)?,
            align: field(ph, 28, 4)?,
        },
        ElfClass::Elf64 => ProgramHeader {
            p_type: field(ph, 0, 4)? as u32,
            offset: field(ph, 8, 8)?,
            vaddr: field(ph, 16, 8)?,
            paddr: field(ph, 24, 8)?,
            filesz: field(ph, 32, 8)?,
            memsz: field(ph, 40, 8)?,
            align: field(ph, 48, 8)?,
        },
    })
}

/// Round `x` up to a multiple of `align` (a power of two), or `None` on
/// overflow.
fn align_up(x: usize, align: usize) -> Option<usize> {
    Some(x.checked_add(align - 1)? & !(align - 1))
}

/// Search a note area for a note of type `ty` owned by `owner`; returns its
/// descriptor. Notes are padded to 4 bytes, or to 8 in areas aligned to 8
/// (as GNU property notes are). Trailing bytes too short for a note header
/// are padding and ignored.
fn find_note<'d>(
    notes: &'d [u8],
    area_align: u64,
    owner: &[u8],
    ty: u32,
) -> Result<Option<&'d [u8]>, ElfError> {
    let align = if area_align == 8 { 8 } else { 4 };
    let mut off = 0usize;
    while notes.len().saturating_sub(off) >= 12 {
        let namesz = field(notes, off, 4)? as usize;
        let descsz = field(notes, off + 4, 4)? as usize;
        let ntype = field(notes, off + 8, 4)? as u32;
        let name_start = off + 12;
        let bounds = name_start
            .checked_add(namesz)
            .and_then(|name_end| Some((name_end, align_up(name_end, align)?)))
            .and_then(|(name_end, desc_start)| {
                Some((name_end, desc_start, desc_start.checked_add(descsz)?))
            });
        let (name_end, desc_start, desc_end) = match bounds {
            Some(b) if b.2 <= notes.len() => b,
            _ => {
                return malformed(format!(
                    "ELF note at offset {off:#x} (namesz {namesz}, descsz {descsz}) runs past the end of its note area ({} bytes)",
                    notes.len()
                ))
            }
        };
        let name = notes.get(name_start..name_end).unwrap_or(&[]);
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        if ntype == ty && name == owner {
            return Ok(notes.get(desc_start..desc_end));
        }
        off = match align_up(desc_end, align) {
            Some(o) => o,
            None => break,
        };
    }
    Ok(None)
}

/// Decode the PVH note descriptor: a 32-bit physical address, stored as 4
/// bytes (current Linux) or as an 8-byte pointer (Linux before 4.19 on
/// x86-64 used `_ASM_PTR`).
fn pvh_desc(desc: &[u8]) -> Result<u32, ElfError> {
    let v = match desc.len() {
        4 => le::<4>(desc, 0),
        8 => le::<8>(desc, 0),
        n => {
            return malformed(format!(
                "the PVH entry note has a {n}-byte descriptor, expected 4 or 8"
            ))
        }
    };
    match v.map(u32::try_from) {
        Some(Ok(e)) => Ok(e),
        _ => malformed("the PVH entry point in the note is above 4 GiB"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::ElfBuilder;
    use super::*;

    #[test]
    fn parses_elf64_with_pvh_note() {
        let file = ElfBuilder::new64()
            .segment(0x100000, 0x100000, b"\x90\x90\xf4", 0x2000)
            .pvh_note(0x100001)
            .build();
        let elf = Elf::parse(&file).unwrap();
        assert_eq!(elf.class, ElfClass::Elf64);
        assert_eq!(elf.pvh_entry().unwrap(), Some(0x100001));
        let segs = elf.load_segments().unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].paddr, 0x100000);
        assert_eq!(segs[0].data, b"\x90\x90\xf4");
        assert_eq!(segs[0].memsz, 0x2000);
    }

    #[test]
    fn note_in_section_only() {
        let file = ElfBuilder::new32()
            .segment(0x200000, 0x200000, &[0xf4; 16], 16)
            .pvh_note_section_only(0x200004)
            .build();
        let elf = Elf::parse(&file).unwrap();
        assert_eq!(elf.pvh_entry().unwrap(), Some(0x200004));
    }

    #[test]
    fn eight_byte_descriptor_and_other_notes() {
        let file = ElfBuilder::new64()
            .segment(0x100000, 0x100000, &[0xf4], 1)
            .note(b"GNU", 3, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
            .note(b"Xen", 18, &0x100000u64.to_le_bytes())
            .build();
        assert_eq!(
            Elf::parse(&file).unwrap().pvh_entry().unwrap(),
            Some(0x100000)
        );
        let file = ElfBuilder::new64()
            .segment(0x100000, 0x100000, &[0xf4], 1)
            .note(b"Xen", 18, &0x1_0000_0000u64.to_le_bytes())
            .build();
        assert!(matches!(
            Elf::parse(&file).unwrap().pvh_entry(),
            Err(ElfError::Malformed(_))
        ));
        let file = ElfBuilder::new64()
            .segment(0x100000, 0x100000, &[0xf4], 1)
            .note(b"Xen", 18, &[1, 2])
            .build();
        assert!(matches!(
            Elf::parse(&file).unwrap().pvh_entry(),
            Err(ElfError::Malformed(_))
        ));
    }

    #[test]
    fn header_checks() {
        let good = ElfBuilder::new64()
            .segment(0x100000, 0x100000, &[0xf4], 1)
            .build();
        let mut f = good.clone();
        f[5] = 2;
        assert!(matches!(Elf::parse(&f), Err(ElfError::Unsupported(_))));
        let mut f = good.clone();
        f[18] = 3; // EM_386 in an ELF64
        assert!(matches!(Elf::parse(&f), Err(ElfError::Unsupported(_))));
        let mut f = good.clone();
        f[4] = 9;
        assert!(matches!(Elf::parse(&f), Err(ElfError::Malformed(_))));
        let mut f = good.clone();
        f[16] = 1; // ET_REL
        assert!(matches!(Elf::parse(&f), Err(ElfError::Unsupported(_))));
        let mut f = good.clone();
        f[0x38..0x3a].copy_from_slice(&0xffffu16.to_le_bytes());
        assert!(matches!(Elf::parse(&f), Err(ElfError::Unsupported(_))));
        let mut f = good.clone();
        f[0x36..0x38].copy_from_slice(&8u16.to_le_bytes()); // phentsize too small
        assert!(matches!(Elf::parse(&f), Err(ElfError::Malformed(_))));
        let mut f = good;
        f[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes()); // phoff
        assert!(matches!(Elf::parse(&f), Err(ElfError::Malformed(_))));
    }

    #[test]
    fn segment_checks() {
        // filesz > memsz
        let f = ElfBuilder::new32()
            .raw_segment(0x100000, 0x100000, &[1, 2, 3, 4], 2)
            .build();
        assert!(matches!(
            Elf::parse(&f).unwrap().load_segments(),
            Err(ElfError::Malformed(_))
        ));
        // 32-bit wrap
        let f = ElfBuilder::new32()
            .segment(0xffff_f000, 0xffff_f000, &[1], 0x2000)
            .build();
        assert!(matches!(
            Elf::parse(&f).unwrap().load_segments(),
            Err(ElfError::Malformed(_))
        ));
        // 64-bit wrap
        let f = ElfBuilder::new64()
            .segment(u64::MAX - 10, 0, &[1], 0x2000)
            .build();
        assert!(matches!(
            Elf::parse(&f).unwrap().load_segments(),
            Err(ElfError::Malformed(_))
        ));
        // no PT_LOAD
        let f = ElfBuilder::new64().build();
        assert!(matches!(
            Elf::parse(&f).unwrap().load_segments(),
            Err(ElfError::Malformed(_))
        ));
    }

    /// Append a section header table of `n` empty entries at the end of
    /// an ELF64 file, as linkers do.
    fn with_trailing_sections(mut f: Vec<u8>, n: u16) -> Vec<u8> {
        let shoff = f.len() as u64;
        f.extend(std::iter::repeat_n(0u8, 64 * n as usize));
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&n.to_le_bytes());
        f
    }

    #[test]
    fn truncated_section_table_is_malformed() {
        let f = with_trailing_sections(
            ElfBuilder::new64()
                .segment(0x100000, 0x100000, &[0xf4], 1)
                .pvh_note(0x100000)
                .build(),
            3,
        );
        assert_eq!(Elf::parse(&f).unwrap().pvh_entry().unwrap(), Some(0x100000));
        assert!(matches!(
            Elf::parse(&f[..f.len() - 1]),
            Err(ElfError::Malformed(_))
        ));
        // e_shoff = 0 means "no section table", whatever e_shnum says.
        let mut g = f.clone();
        g[0x28..0x30].fill(0);
        assert_eq!(Elf::parse(&g).unwrap().pvh_entry().unwrap(), Some(0x100000));
    }

    #[test]
    fn note_search_is_bounded() {
        // 40 PT_NOTE headers all covering the same 512 KiB of zeroes
        // (valid, empty notes): 20 MiB to scan, over the 1 MiB budget.
        let base = ElfBuilder::new64()
            .segment(0x100000, 0x100000, &[0xf4], 1)
            .build();
        let n = 40u16;
        let mut f = base[..64].to_vec();
        let area = 64 + 56 * u64::from(n);
        for _ in 0..n {
            let mut ph = [0u8; 56];
            ph[0..4].copy_from_slice(&PT_NOTE.to_le_bytes());
            ph[8..16].copy_from_slice(&area.to_le_bytes());
            ph[32..40].copy_from_slice(&(512u64 << 10).to_le_bytes());
            f.extend_from_slice(&ph);
        }
        f.resize(area as usize + (512 << 10), 0);
        f[0x38..0x3a].copy_from_slice(&n.to_le_bytes());
        f[0x28..0x30].fill(0); // no section table
        let elf = Elf::parse(&f).unwrap();
        assert!(
            matches!(elf.pvh_entry(), Err(ElfError::Malformed(m)) if m.contains("notes add up"))
        );
    }

    #[test]
    fn virt_to_phys_uses_the_containing_segment() {
        let f = ElfBuilder::new32()
            .segment(0x100000, 0xc0100000, &[0xf4; 32], 0x1000)
            .entry(0xc0100010)
            .build();
        let elf = Elf::parse(&f).unwrap();
        assert_eq!(elf.virt_to_phys(elf.entry), 0x100010);
        assert_eq!(elf.virt_to_phys(0x5000), 0x5000);
    }
}
