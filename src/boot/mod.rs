//! Kernel loaders and the machine description.
//!
//! [`load`] reads the kernel (and initrd), works out which boot protocol it
//! speaks, puts it into guest RAM with the protocol's boot information and
//! ringside's device tree, and returns the complete initial vCPU state.
//! Every backend starts from that same [`CpuState`]: the interpreter runs
//! on it directly and KVM loads it into `kvm_regs`/`kvm_sregs`.
//!
//! Formats, in the order they are tried:
//!
//! 1. `--flat-addr ADDR` given: a flat binary, entered in real mode
//!    ([`flat`]).
//! 2. An ELF (32 or 64-bit) with a PVH note: the PVH protocol ([`pvh`]).
//!    PVH is preferred when a kernel also has a multiboot header: it is the
//!    protocol KVM-based VMMs use, and it passes a richer start of day.
//! 3. A multiboot v1 header in the first 8 KiB: ELF loaded by its program
//!    headers, or any file by the header's a.out-kludge addresses
//!    ([`multiboot`]).
//!
//! Everything a kernel can be refused for is checked before the first byte
//! is written to guest memory. The low-memory layout is in [`lowmem`], the
//! memory map in [`e820`], the device tree in [`fdt`]; docs/BOOT.md
//! describes all of it for kernel writers.

mod e820;
mod elf;
mod error;
mod fdt;
mod flat;
mod gdt;
mod guest;
mod image;
mod lowmem;
mod multiboot;
mod pvh;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use error::BootError;

use cpu::CpuState;
use elf::{Elf, ElfError};
use guest::GuestWriter;
use image::LoadSegment;
use lowmem::{
    BOOT_AREA_END, CMDLINE_ADDR, CMDLINE_MAX, FDT_ADDR, FDT_MAX, LOADER_NAME, LOADER_NAME_ADDR,
    MIN_RAM, MODSTRING_ADDR, MODSTRING_MAX,
};
use mmu::{GuestPhysAddr, GuestRam, PhysLayout};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What to boot, from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootConfig {
    /// The kernel file.
    pub kernel: PathBuf,
    /// The kernel command line (`--append`).
    pub append: Option<String>,
    /// The initial ramdisk, passed as the single boot module.
    pub initrd: Option<PathBuf>,
    /// Load the kernel as a flat binary at this address (`--flat-addr`).
    pub flat_addr: Option<u64>,
}

/// The boot protocol a kernel was started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// ELF with a Xen PVH entry note: 32-bit protected mode, EBX =
    /// `hvm_start_info`.
    Pvh,
    /// Multiboot v1: 32-bit protected mode, EAX = 0x2BADB002, EBX = MBI.
    Multiboot,
    /// A raw binary entered in real mode.
    Flat,
}

/// The result of loading: the machine is ready to run from `state`.
#[derive(Debug, Clone)]
pub struct BootInfo {
    /// The complete initial vCPU state, identical for every backend.
    pub state: CpuState,
    pub format: KernelFormat,
    /// The entry point (physical; for flat binaries, CS base + IP).
    pub entry: u64,
    /// Where the device tree blob is (always [`lowmem::FDT_ADDR`]).
    pub fdt: GuestPhysAddr,
    /// A one-line human description of what was loaded where.
    pub summary: String,
}

/// Read the kernel and initrd named in `cfg`, load them into `ram` and
/// return the initial vCPU state.
pub fn load(ram: &GuestRam, layout: &PhysLayout, cfg: &BootConfig) -> Result<BootInfo, BootError> {
    let kernel = std::fs::read(&cfg.kernel).map_err(|source| match source.kind() {
        ErrorKind::NotFound => BootError::KernelNotFound {
            path: cfg.kernel.clone(),
        },
        _ => BootError::KernelUnreadable {
            path: cfg.kernel.clone(),
            source,
        },
    })?;
    let initrd = match &cfg.initrd {
        Some(path) => Some(read_initrd(path, layout)?),
        None => None,
    };
    load_bytes(ram, layout, cfg, &kernel, initrd.as_deref())
}

/// Read the initrd, refusing one larger than low RAM before reading it.
fn read_initrd(path: &Path, layout: &PhysLayout) -> Result<Vec<u8>, BootError> {
    let io_err = |source: std::io::Error| match source.kind() {
        ErrorKind::NotFound => BootError::InitrdNotFound {
            path: path.to_path_buf(),
        },
        _ => BootError::InitrdUnreadable {
            path: path.to_path_buf(),
            source,
        },
    };
    let size = std::fs::metadata(path).map_err(io_err)?.len();
    if size > layout.low_ram() {
        return Err(BootError::InitrdTooLarge {
            path: path.to_path_buf(),
            size,
            floor: lowmem::HIGH_MEMORY,
            top: layout.low_ram(),
        });
    }
    std::fs::read(path).map_err(io_err)
}

/// A kernel image, checked and ready to be written.
struct Plan<'a> {
    format: KernelFormat,
    /// "PVH ELF64", "multiboot a.out-kludge", ...
    kind: String,
    segments: Vec<LoadSegment<'a>>,
    entry: u64,
    /// Things the user should know (ignored requests).
    notes: Vec<String>,
}

fn elf_error(path: &Path, e: ElfError) -> BootError {
    match e {
        ElfError::Malformed(reason) => BootError::MalformedElf {
            path: path.to_path_buf(),
            reason,
        },
        ElfError::Unsupported(reason) => BootError::UnsupportedElf {
            path: path.to_path_buf(),
            reason,
        },
    }
}

fn multiboot_error(path: &Path, e: multiboot::HeaderError) -> BootError {
    match e {
        multiboot::HeaderError::Bad { offset, reason } => BootError::BadMultiboot {
            path: path.to_path_buf(),
            offset,
            reason,
        },
        multiboot::HeaderError::Unsupported { flags, unsupported } => {
            BootError::MultibootUnsupportedFlags {
                path: path.to_path_buf(),
                flags,
                unsupported,
            }
        }
        multiboot::HeaderError::BadEntry { entry } => BootError::BadEntry {
            path: path.to_path_buf(),
            entry,
        },
    }
}

/// Placement, then overlap between segments, then the entry point: the
/// order gives the most useful error first (a relocated or oversized
/// segment is reported as not fitting, not as overlapping its neighbour).
fn check_image(
    segs: &[LoadSegment],
    entry: u64,
    layout: &PhysLayout,
    path: &Path,
) -> Result<(), BootError> {
    image::check_placement(segs, layout, path)?;
    if let Err((a0, a1, b0, b1)) = image::check_disjoint(segs) {
        return Err(BootError::MalformedElf {
            path: path.to_path_buf(),
            reason: format!("segments {a0:#x}..{a1:#x} and {b0:#x}..{b1:#x} overlap"),
        });
    }
    if !image::contains_code(segs, entry) {
        return Err(BootError::BadEntry {
            path: path.to_path_buf(),
            entry,
        });
    }
    Ok(())
}

/// Work out the format and validate the image; writes nothing.
fn plan<'a>(data: &'a [u8], layout: &PhysLayout, cfg: &BootConfig) -> Result<Plan<'a>, BootError> {
    let path = cfg.kernel.as_path();
    if let Some(addr) = cfg.flat_addr {
        flat::check(addr, data.len() as u64)?;
        return Ok(Plan {
            format: KernelFormat::Flat,
            kind: "flat binary".into(),
            segments: vec![LoadSegment {
                paddr: addr,
                data,
                memsz: data.len() as u64,
            }],
            entry: addr,
            notes: Vec::new(),
        });
    }
    if elf::is_elf(data) {
        let elf = Elf::parse(data).map_err(|e| elf_error(path, e))?;
        if let Some(entry) = elf.pvh_entry().map_err(|e| elf_error(path, e))? {
            let segments = elf.load_segments().map_err(|e| elf_error(path, e))?;
            check_image(&segments, u64::from(entry), layout, path)?;
            return Ok(Plan {
                format: KernelFormat::Pvh,
                kind: format!("PVH {}", elf.class.name()),
                segments,
                entry: u64::from(entry),
                notes: Vec::new(),
            });
        }
        return match multiboot::find_header(data).map_err(|e| multiboot_error(path, e))? {
            Some(h) => plan_multiboot(data, Some(&elf), &h, layout, path),
            None => Err(BootError::NoEntryPoint {
                path: path.to_path_buf(),
            }),
        };
    }
    match multiboot::find_header(data).map_err(|e| multiboot_error(path, e))? {
        Some(h) if h.aout.is_some() => plan_multiboot(data, None, &h, layout, path),
        Some(h) => Err(BootError::BadMultiboot {
            path: path.to_path_buf(),
            offset: h.offset,
            reason: "the file is not an ELF and the header lacks the a.out kludge (flag bit 16), so it does not say where to load the kernel".into(),
        }),
        None => Err(BootError::NotElf {
            path: path.to_path_buf(),
        }),
    }
}

fn plan_multiboot<'a>(
    data: &'a [u8],
    elf: Option<&Elf<'a>>,
    h: &multiboot::Header,
    layout: &PhysLayout,
    path: &Path,
) -> Result<Plan<'a>, BootError> {
    let mut notes = Vec::new();
    if h.wants_video() {
        notes.push("the kernel's multiboot video mode request is ignored (no display)".to_string());
    }
    // The a.out kludge takes precedence over ELF headers (as in GRUB).
    let (kind, segments, entry) = match (h.aout, elf) {
        (Some(k), _) => {
            let (seg, entry) =
                multiboot::kludge_segment(data, h, &k).map_err(|e| multiboot_error(path, e))?;
            (
                "multiboot a.out-kludge".to_string(),
                vec![seg],
                u64::from(entry),
            )
        }
        (None, Some(elf)) => {
            let segs = elf.load_segments().map_err(|e| elf_error(path, e))?;
            (
                format!("multiboot {}", elf.class.name()),
                segs,
                elf.virt_to_phys(elf.entry),
            )
        }
        (None, None) => {
            return Err(BootError::Internal(
                "multiboot plan without ELF or a.out kludge".into(),
            ))
        }
    };
    check_image(&segments, entry, layout, path)?;
    // A multiboot kernel starts with paging off in 32-bit mode: all of it
    // must be below 4 GiB.
    if let Some(s) = segments.iter().find(|s| s.end() > 1 << 32) {
        return Err(BootError::BadMultiboot {
            path: path.to_path_buf(),
            offset: h.offset,
            reason: format!(
                "segment {:#x}..{:#x} is above 4 GiB, out of reach of a 32-bit kernel with paging off",
                s.paddr,
                s.end()
            ),
        });
    }
    Ok(Plan {
        format: KernelFormat::Multiboot,
        kind,
        segments,
        entry,
        notes,
    })
}

/// Check a NUL-terminated string fits its area (`max` includes the NUL).
fn check_string(bytes: &[u8], max: usize, what: &str) -> Result<(), BootError> {
    if bytes.contains(&0) {
        return Err(BootError::BadCmdline {
            reason: format!("the {what} contains a NUL byte"),
        });
    }
    if bytes.len() >= max {
        return Err(BootError::BadCmdline {
            reason: format!(
                "the {what} is {} bytes long; at most {} fit: shorten it",
                bytes.len(),
                max - 1
            ),
        });
    }
    Ok(())
}

/// The 32-bit entry of a protected-mode protocol.
fn entry32(entry: u64) -> Result<u32, BootError> {
    u32::try_from(entry).map_err(|_| BootError::Internal(format!("entry {entry:#x} above 4 GiB")))
}

/// [`load`] with the files already read: checks everything, then writes
/// the image, the initrd, the device tree and the protocol's structures.
fn load_bytes(
    ram: &GuestRam,
    layout: &PhysLayout,
    cfg: &BootConfig,
    kernel: &[u8],
    initrd: Option<&[u8]>,
) -> Result<BootInfo, BootError> {
    let w = GuestWriter::new(ram, layout)?;
    if layout.ram_size() < MIN_RAM {
        return Err(BootError::RamTooSmall {
            ram: layout.ram_size(),
            min: MIN_RAM,
        });
    }
    if kernel.is_empty() {
        return Err(BootError::KernelEmpty {
            path: cfg.kernel.clone(),
        });
    }
    if let Some(a) = &cfg.append {
        check_string(a.as_bytes(), CMDLINE_MAX, "--append string")?;
    }

    let plan = plan(kernel, layout, cfg)?;

    // The command line each protocol passes: PVH the --append string;
    // multiboot "<kernel file name> <append>" as QEMU does (so argv[0]-style
    // parsers work), the file name alone without --append.
    let cmdline: Option<Vec<u8>> = match plan.format {
        KernelFormat::Pvh => cfg.append.as_ref().map(|a| a.as_bytes().to_vec()),
        KernelFormat::Multiboot => {
            let mut c = cfg.kernel.as_os_str().as_bytes().to_vec();
            if let Some(a) = &cfg.append {
                c.push(b' ');
                c.extend_from_slice(a.as_bytes());
            }
            Some(c)
        }
        KernelFormat::Flat => None,
    };
    if let Some(c) = &cmdline {
        check_string(c, CMDLINE_MAX, "kernel command line")?;
    }
    let modstring = cfg.initrd.as_ref().map(|p| p.as_os_str().as_bytes());
    if let Some(s) = modstring {
        check_string(s, MODSTRING_MAX, "initrd file name")?;
    }
    let initrd_at = match (initrd, &cfg.initrd) {
        (Some(bytes), Some(path)) => {
            let start = image::place_initrd(layout, bytes.len() as u64, &plan.segments, path)?;
            Some((start, bytes))
        }
        _ => None,
    };
    let memmap = e820::memory_map(layout);
    let initrd_range = initrd_at.map(|(start, b)| (start, start + b.len() as u64));
    let dtb = fdt::build(&memmap, cfg.append.as_deref(), initrd_range)?;

    // Everything is checked: write. Our own areas are zeroed first so a
    // reused RAM never shows stale boot data.
    w.zero(0, BOOT_AREA_END)?;
    w.zero(FDT_ADDR, FDT_MAX)?;
    image::write_segments(&w, &plan.segments)?;
    if let Some((start, bytes)) = initrd_at {
        if !bytes.is_empty() {
            w.write(start, bytes)?;
        }
    }
    w.write(FDT_ADDR, &dtb)?;

    let mut parts = vec![format!(
        "{} kernel {}: {}, entry {:#x}",
        plan.kind,
        cfg.kernel.display(),
        describe_segments(&plan.segments),
        plan.entry
    )];
    let state = match plan.format {
        KernelFormat::Flat => {
            let s = flat::entry_state(plan.entry);
            parts.push(format!(
                "real mode CS:IP {:04x}:{:04x} SP {:#x}",
                s.cs().selector,
                s.rip,
                flat::INITIAL_SP
            ));
            s
        }
        KernelFormat::Pvh | KernelFormat::Multiboot => {
            gdt::write_gdt(&w)?;
            if let Some(c) = &cmdline {
                w.write_cstr(CMDLINE_ADDR, c)?;
            }
            if let Some(s) = modstring {
                w.write_cstr(MODSTRING_ADDR, s)?;
            }
            let entry = entry32(plan.entry)?;
            if plan.format == KernelFormat::Pvh {
                let module = initrd_at.map(|(start, b)| pvh::Module {
                    paddr: start,
                    size: b.len() as u64,
                    string: MODSTRING_ADDR,
                });
                let cmd = cmdline.as_ref().map(|_| CMDLINE_ADDR);
                let si = pvh::write_start_info(&w, &memmap, cmd, module)?;
                parts.push(format!("hvm_start_info at {si:#x}"));
                pvh::entry_state(entry, si)
            } else {
                w.write(LOADER_NAME_ADDR, LOADER_NAME)?;
                let module = match initrd_range {
                    Some((start, end)) => Some(multiboot::Module {
                        start: entry32(start)?,
                        end: entry32(end)?,
                        string: MODSTRING_ADDR as u32,
                    }),
                    None => None,
                };
                let mbi = multiboot::write_info(&w, layout, &memmap, module)?;
                parts.push(format!("multiboot info at {mbi:#x}"));
                multiboot::entry_state(entry, mbi)
            }
        }
    };
    if let Some((start, end)) = initrd_range {
        parts.push(format!("initrd {start:#x}..{end:#x}"));
    }
    parts.push(format!(
        "device tree at {FDT_ADDR:#x} ({} bytes)",
        dtb.len()
    ));
    parts.extend(plan.notes);
    Ok(BootInfo {
        state,
        format: plan.format,
        entry: plan.entry,
        fdt: GuestPhysAddr(FDT_ADDR),
        summary: parts.join("; "),
    })
}

fn describe_segments(segs: &[LoadSegment]) -> String {
    let lo = segs.iter().map(|s| s.paddr).min().unwrap_or(0);
    let hi = segs.iter().map(|s| s.end()).max().unwrap_or(0);
    let n = segs.len();
    format!(
        "{n} segment{} in {lo:#x}..{hi:#x}",
        if n == 1 { "" } else { "s" }
    )
}
