//! Test helpers: a small ELF writer, a minimal FDT reader and a temporary
//! directory. Test-only code: indexing and `expect` are fine here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Builds ELF32/ELF64 executables byte by byte. Layout: headers, program
/// headers, section headers, multiboot header, notes, then segment data,
/// so the file ends with bytes a loader needs (every truncation is an
/// error).
#[derive(Clone)]
pub struct ElfBuilder {
    is64: bool,
    machine: Option<u16>,
    entry: Option<u64>,
    segs: Vec<(u64, u64, Vec<u8>, u64)>,
    notes: Vec<u8>,
    section_notes: Vec<u8>,
    multiboot: Vec<u8>,
}

fn note_bytes(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(name);
    v.push(0);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v.extend_from_slice(desc);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// A multiboot v1 header with a valid checksum, followed by `extra` words.
pub fn multiboot_header(flags: u32, extra: &[u32]) -> Vec<u8> {
    let magic = 0x1bad_b002u32;
    let mut v = Vec::new();
    for w in [magic, flags, 0u32.wrapping_sub(magic).wrapping_sub(flags)]
        .iter()
        .chain(extra)
    {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

impl ElfBuilder {
    fn new(is64: bool) -> Self {
        ElfBuilder {
            is64,
            machine: None,
            entry: None,
            segs: Vec::new(),
            notes: Vec::new(),
            section_notes: Vec::new(),
            multiboot: Vec::new(),
        }
    }
    pub fn new64() -> Self {
        Self::new(true)
    }
    pub fn new32() -> Self {
        Self::new(false)
    }
    /// A PT_LOAD segment.
    pub fn segment(mut self, paddr: u64, vaddr: u64, data: &[u8], memsz: u64) -> Self {
        self.segs.push((paddr, vaddr, data.to_vec(), memsz));
        self
    }
    /// A PT_LOAD segment whose sizes are written as given, even if
    /// inconsistent (filesz > memsz).
    pub fn raw_segment(self, paddr: u64, vaddr: u64, data: &[u8], memsz: u64) -> Self {
        self.segment(paddr, vaddr, data, memsz)
    }
    pub fn entry(mut self, e: u64) -> Self {
        self.entry = Some(e);
        self
    }
    pub fn machine(mut self, m: u16) -> Self {
        self.machine = Some(m);
        self
    }
    /// A note in the PT_NOTE segment.
    pub fn note(mut self, name: &[u8], ty: u32, desc: &[u8]) -> Self {
        self.notes.extend(note_bytes(name, ty, desc));
        self
    }
    /// The Xen PVH entry note (4-byte descriptor), in a PT_NOTE segment.
    pub fn pvh_note(self, entry: u32) -> Self {
        self.note(b"Xen", 18, &entry.to_le_bytes())
    }
    /// The PVH note only in an SHT_NOTE section, not in any segment.
    pub fn pvh_note_section_only(mut self, entry: u32) -> Self {
        self.section_notes
            .extend(note_bytes(b"Xen", 18, &entry.to_le_bytes()));
        self
    }
    /// A multiboot header early in the file.
    pub fn multiboot(mut self, flags: u32, extra: &[u32]) -> Self {
        self.multiboot = multiboot_header(flags, extra);
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let (ehsize, phentsize, shentsize) = if self.is64 {
            (64, 56, 64)
        } else {
            (52, 32, 40)
        };
        let phnum = self.segs.len() + usize::from(!self.notes.is_empty());
        let shnum = if self.section_notes.is_empty() { 0 } else { 2 };
        let phoff = ehsize;
        let shoff = phoff + phnum * phentsize;
        let mb_off = shoff + shnum * shentsize;
        let notes_off = mb_off + self.multiboot.len();
        let snotes_off = notes_off + self.notes.len();
        let mut data_off = snotes_off + self.section_notes.len();
        let mut f = vec![0u8; data_off];

        let put = |f: &mut Vec<u8>, off: usize, v: u64, n: usize| {
            f[off..off + n].copy_from_slice(&v.to_le_bytes()[..n]);
        };
        let w = if self.is64 { 8 } else { 4 };
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = if self.is64 { 2 } else { 1 };
        f[5] = 1;
        f[6] = 1;
        put(&mut f, 16, 2, 2);
        put(
            &mut f,
            18,
            u64::from(self.machine.unwrap_or(if self.is64 { 62 } else { 3 })),
            2,
        );
        put(&mut f, 20, 1, 4);
        let entry = self.entry.or(self.segs.first().map(|s| s.1)).unwrap_or(0);
        put(&mut f, 24, entry, w);
        put(&mut f, 24 + w, if phnum > 0 { phoff as u64 } else { 0 }, w);
        put(
            &mut f,
            24 + 2 * w,
            if shnum > 0 { shoff as u64 } else { 0 },
            w,
        );
        let tail = 24 + 3 * w + 4;
        put(&mut f, tail, ehsize as u64, 2);
        put(&mut f, tail + 2, phentsize as u64, 2);
        put(&mut f, tail + 4, phnum as u64, 2);
        put(&mut f, tail + 6, shentsize as u64, 2);
        put(&mut f, tail + 8, shnum as u64, 2);

        f[mb_off..mb_off + self.multiboot.len()].copy_from_slice(&self.multiboot);
        f[notes_off..notes_off + self.notes.len()].copy_from_slice(&self.notes);
        f[snotes_off..snotes_off + self.section_notes.len()].copy_from_slice(&self.section_notes);

        let write_phdr = |f: &mut Vec<u8>,
                          i: usize,
                          ty: u32,
                          off: u64,
                          va: u64,
                          pa: u64,
                          filesz: u64,
                          memsz: u64| {
            let p = phoff + i * phentsize;
            if self.is64 {
                put(f, p, u64::from(ty), 4);
                put(f, p + 4, 5, 4);
                put(f, p + 8, off, 8);
                put(f, p + 16, va, 8);
                put(f, p + 24, pa, 8);
                put(f, p + 32, filesz, 8);
                put(f, p + 40, memsz, 8);
                put(f, p + 48, 4, 8);
            } else {
                put(f, p, u64::from(ty), 4);
                put(f, p + 4, off, 4);
                put(f, p + 8, va, 4);
                put(f, p + 12, pa, 4);
                put(f, p + 16, filesz, 4);
                put(f, p + 20, memsz, 4);
                put(f, p + 24, 5, 4);
                put(f, p + 28, 4, 4);
            }
        };
        let mut i = 0;
        if !self.notes.is_empty() {
            let n = self.notes.len() as u64;
            write_phdr(&mut f, 0, 4, notes_off as u64, 0, 0, n, n);
            i = 1;
        }
        if shnum > 0 {
            // Section 1: SHT_NOTE.
            let s = shoff + shentsize;
            put(&mut f, s + 4, 7, 4);
            let n = self.section_notes.len() as u64;
            put(&mut f, s + 8 + 2 * w, snotes_off as u64, w);
            put(&mut f, s + 8 + 3 * w, n, w);
            put(&mut f, s + 8 + 4 * w + 8, 4, w);
        }
        for (paddr, vaddr, data, memsz) in &self.segs {
            write_phdr(
                &mut f,
                i,
                1,
                data_off as u64,
                *vaddr,
                *paddr,
                data.len() as u64,
                *memsz,
            );
            f.extend_from_slice(data);
            data_off += data.len();
            i += 1;
        }
        f
    }
}

/// A device tree read back into (node path, property) → value.
#[derive(Debug, Default)]
pub struct FdtTree {
    pub nodes: BTreeSet<String>,
    pub props: BTreeMap<(String, String), Vec<u8>>,
}

impl FdtTree {
    pub fn has(&self, node: &str, prop: &str) -> bool {
        self.props
            .contains_key(&(node.to_string(), prop.to_string()))
    }
    fn get(&self, node: &str, prop: &str) -> Option<&Vec<u8>> {
        self.props.get(&(node.to_string(), prop.to_string()))
    }
    /// The first string of a string (list) property.
    pub fn string(&self, node: &str, prop: &str) -> Option<String> {
        let v = self.get(node, prop)?;
        let end = v.iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&v[..end]).into_owned())
    }
    pub fn u32s(&self, node: &str, prop: &str) -> Vec<u32> {
        self.get(node, prop)
            .map(|v| {
                v.chunks(4)
                    .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn u64s(&self, node: &str, prop: &str) -> Vec<u64> {
        self.get(node, prop)
            .map(|v| {
                v.chunks(8)
                    .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Parse a DTB (version 17 layout) without any library, to check what
/// vm-fdt produced independently of it.
pub fn parse_fdt(blob: &[u8]) -> Result<FdtTree, String> {
    let be = |off: usize| -> Result<u32, String> {
        blob.get(off..off + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .ok_or_else(|| format!("read past end at {off:#x}"))
    };
    if be(0)? != 0xd00d_feed {
        return Err("bad magic".into());
    }
    if be(4)? as usize != blob.len() {
        return Err(format!(
            "totalsize {} != blob length {}",
            be(4)?,
            blob.len()
        ));
    }
    let structs = be(8)? as usize;
    let strings = be(12)? as usize;
    let mut tree = FdtTree::default();
    let mut stack: Vec<String> = Vec::new();
    let mut off = structs;
    loop {
        let tok = be(off)?;
        off += 4;
        match tok {
            1 => {
                let end = off
                    + blob[off..]
                        .iter()
                        .position(|&b| b == 0)
                        .ok_or("unterminated name")?;
                let name = String::from_utf8_lossy(&blob[off..end]).into_owned();
                off = (end + 1 + 3) & !3;
                let path = match stack.last() {
                    None => "/".to_string(),
                    Some(p) if p == "/" => format!("/{name}"),
                    Some(p) => format!("{p}/{name}"),
                };
                tree.nodes.insert(path.clone());
                stack.push(path);
            }
            2 => {
                stack.pop().ok_or("unbalanced END_NODE")?;
            }
            3 => {
                let len = be(off)? as usize;
                let nameoff = be(off + 4)? as usize;
                off += 8;
                let value = blob
                    .get(off..off + len)
                    .ok_or("property past end")?
                    .to_vec();
                off = (off + len + 3) & !3;
                let s = strings + nameoff;
                let e = s + blob[s..].iter().position(|&b| b == 0).ok_or("bad string")?;
                let pname = String::from_utf8_lossy(&blob[s..e]).into_owned();
                let node = stack.last().ok_or("property outside a node")?.clone();
                tree.props.insert((node, pname), value);
            }
            4 => {}
            9 => break,
            t => return Err(format!("bad token {t:#x} at {:#x}", off - 4)),
        }
    }
    if !stack.is_empty() {
        return Err("unclosed nodes".into());
    }
    Ok(tree)
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ringside-boot-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Write `bytes` to a file `name` in the directory.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
