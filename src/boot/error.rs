//! Everything that can stop a kernel from being loaded, as values.
//!
//! Each variant is one situation a user can hit, and its message is a single
//! line that says what went wrong *and* what to do next. The process exit
//! status comes from [`BootError::exit_code`]: ringside's statuses are even
//! numbers (see `crate::status`), so a script can tell a loader failure from
//! a guest that exited through the debug-exit port (always odd).
//!
//! docs/BOOT.md lists every error with its exit status.

use crate::status::code;
use std::path::PathBuf;
use thiserror::Error;

/// A kernel, initrd or boot-option problem found while loading.
#[derive(Debug, Error)]
pub enum BootError {
    #[error("kernel file {} not found: check the --kernel path", .path.display())]
    KernelNotFound { path: PathBuf },

    #[error("cannot read kernel file {}: {source}; check that it is a readable regular file", .path.display())]
    KernelUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("kernel file {} is empty: pass the built kernel image", .path.display())]
    KernelEmpty { path: PathBuf },

    #[error("{} is not an ELF file and has no multiboot a.out-kludge header: to boot a raw binary, pass --flat-addr ADDR (e.g. --flat-addr 0x7c00)", .path.display())]
    NotElf { path: PathBuf },

    #[error("{}: malformed ELF: {reason}; the file is truncated or corrupt: rebuild it", .path.display())]
    MalformedElf { path: PathBuf, reason: String },

    #[error("{}: unsupported ELF: {reason}; build a little-endian i386 (ELF32) or x86-64 (ELF64) executable", .path.display())]
    UnsupportedElf { path: PathBuf, reason: String },

    #[error("{}: no entry point ringside can use: the ELF has neither a PVH note (Xen ELF note type 18, XEN_ELFNOTE_PHYS32_ENTRY) nor a multiboot v1 header in its first 8 KiB; add one (see docs/BOOT.md) or boot it with --flat-addr", .path.display())]
    NoEntryPoint { path: PathBuf },

    #[error("{}: the entry point {entry:#x} is not inside the loaded image; check the linker script and the entry address in the PVH note / multiboot header", .path.display())]
    BadEntry { path: PathBuf, entry: u64 },

    #[error("{}: bad multiboot header at file offset {offset:#x}: {reason}; fix the header fields", .path.display())]
    BadMultiboot {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("{}: the multiboot header requires features ringside does not provide (flags {flags:#x}, unsupported required bits {unsupported:#x}); only bits 0 (page-aligned modules), 1 (memory info) and 2 (video mode, ignored) are supported: clear the others", .path.display())]
    MultibootUnsupportedFlags {
        path: PathBuf,
        flags: u32,
        unsupported: u32,
    },

    #[error("{}: the kernel needs {needed} bytes of memory but the guest has only {ram} bytes of RAM: give the guest more memory (-m)", .path.display())]
    KernelTooLarge {
        path: PathBuf,
        needed: u64,
        ram: u64,
    },

    #[error("{}: segment {start:#x}..{end:#x} is outside guest RAM ({ram}); give the guest more memory (-m) or link the kernel lower", .path.display())]
    SegmentOutsideRam {
        path: PathBuf,
        start: u64,
        end: u64,
        ram: String,
    },

    #[error("{}: segment {start:#x}..{end:#x} overlaps the MMIO hole 0xc0000000..0x100000000 where devices live; link the kernel below 3 GiB", .path.display())]
    SegmentInMmioHole { path: PathBuf, start: u64, end: u64 },

    #[error("{}: segment {start:#x}..{end:#x} overlaps ringside's {area} at {area_start:#x}..{area_end:#x}; link the kernel at or above 1 MiB (0x100000), see docs/BOOT.md", .path.display())]
    SegmentOverlapsBootArea {
        path: PathBuf,
        start: u64,
        end: u64,
        area: &'static str,
        area_start: u64,
        area_end: u64,
    },

    #[error("initrd file {} not found: check the --initrd path", .path.display())]
    InitrdNotFound { path: PathBuf },

    #[error("cannot read initrd {}: {source}; check that it is a readable regular file", .path.display())]
    InitrdUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("initrd {} ({size} bytes) does not fit in low RAM between 1 MiB / the end of the kernel ({floor:#x}) and the top of low RAM ({top:#x}): give the guest more memory (-m) or use a smaller initrd", .path.display())]
    InitrdTooLarge {
        path: PathBuf,
        size: u64,
        floor: u64,
        top: u64,
    },

    #[error("bad --flat-addr {addr:#x}: {reason}")]
    BadFlatAddress { addr: u64, reason: String },

    #[error("bad kernel command line: {reason}")]
    BadCmdline { reason: String },

    #[error("guest RAM ({ram} bytes) is too small to boot: ringside needs at least {min} bytes (1 MiB) for the boot structures and the machine description; give the guest more memory (-m)")]
    RamTooSmall { ram: u64, min: u64 },

    #[error("internal error while writing the boot structures: {0} (this is a ringside bug: please report it)")]
    Internal(String),
}

impl BootError {
    /// The process exit status for this error (documented in docs/BOOT.md
    /// and README "Exit statuses"):
    ///
    /// * 4 (`FILE`): the kernel or initrd file is missing or unreadable.
    /// * 6 (`FORMAT`): the kernel file is not a loadable image.
    /// * 8 (`FIT`): the image does not fit the machine's memory map.
    /// * 2 (`USAGE`): a boot option (`--flat-addr`, `--append`) is invalid.
    /// * 10 (`MEMORY`): the guest has too little RAM to boot at all.
    /// * 30 (`INTERNAL`): a ringside bug.
    pub fn exit_code(&self) -> i32 {
        use BootError::*;
        match self {
            KernelNotFound { .. }
            | KernelUnreadable { .. }
            | InitrdNotFound { .. }
            | InitrdUnreadable { .. } => code::FILE,
            KernelEmpty { .. }
            | NotElf { .. }
            | MalformedElf { .. }
            | UnsupportedElf { .. }
            | NoEntryPoint { .. }
            | BadEntry { .. }
            | BadMultiboot { .. }
            | MultibootUnsupportedFlags { .. } => code::FORMAT,
            KernelTooLarge { .. }
            | SegmentOutsideRam { .. }
            | SegmentInMmioHole { .. }
            | SegmentOverlapsBootArea { .. }
            | InitrdTooLarge { .. } => code::FIT,
            BadFlatAddress { .. } | BadCmdline { .. } => code::USAGE,
            RamTooSmall { .. } => code::MEMORY,
            Internal(_) => code::INTERNAL,
        }
    }
}

impl From<mmu::OutOfRange> for BootError {
    fn from(e: mmu::OutOfRange) -> Self {
        BootError::Internal(e.to_string())
    }
}
