//! The disk behind the ATA drive and virtio-blk: a host file (`--disk
//! FILE`) or a zero-filled in-memory scratch disk.
//!
//! Both devices see the same bytes, so a guest can write a sector through
//! one and read it back through the other. The image is shared as a
//! [`SharedDisk`] (`Arc<Mutex<DiskImage>>`): the board is used from one
//! thread at a time, the lock only makes sharing between two devices sound.
//!
//! Every access is bounds-checked here; an access past the end is a
//! [`DiskError::OutOfRange`] the device turns into a guest-visible error
//! status, never a panic.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use thiserror::Error;

/// Bytes per sector: ATA's and virtio-blk's unit.
pub const SECTOR_SIZE: u64 = 512;
/// Size of the scratch disk used when no `--disk` is given.
pub const SCRATCH_DISK_SIZE: u64 = 4 << 20;

/// Why a disk could not be opened or accessed.
#[derive(Debug, Error)]
pub enum DiskError {
    #[error("cannot open disk image {path} read-write: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("disk image {path} is {size} bytes, not a non-zero multiple of 512-byte sectors")]
    BadSize { path: PathBuf, size: u64 },
    #[error("disk access at byte {offset:#x}+{len} is past the end of the {size}-byte disk")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("disk I/O error: {0}")]
    Io(#[from] io::Error),
}

enum Backing {
    File(File),
    Memory(Vec<u8>),
}

/// A disk image: whole 512-byte sectors.
pub struct DiskImage {
    backing: Backing,
    size: u64,
}

/// The disk as the devices hold it.
pub type SharedDisk = Arc<Mutex<DiskImage>>;

impl DiskImage {
    /// Open a host file read-write. Its size must be a non-zero multiple of
    /// [`SECTOR_SIZE`]: a partial last sector could be neither read nor
    /// written by the guest, which almost always means the wrong file.
    pub fn open(path: &Path) -> Result<Self, DiskError> {
        let open_err = |source| DiskError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        let size = meta.len();
        if !meta.is_file() || size == 0 || !size.is_multiple_of(SECTOR_SIZE) {
            return Err(DiskError::BadSize {
                path: path.to_path_buf(),
                size,
            });
        }
        Ok(Self {
            backing: Backing::File(file),
            size,
        })
    }

    /// A zero-filled in-memory disk of [`SCRATCH_DISK_SIZE`] bytes.
    pub fn scratch() -> Self {
        Self::memory(SCRATCH_DISK_SIZE)
    }

    /// A zero-filled in-memory disk of `sectors` sectors.
    pub fn memory_sectors(sectors: u32) -> Self {
        Self::memory(u64::from(sectors) * SECTOR_SIZE)
    }

    fn memory(size: u64) -> Self {
        Self {
            backing: Backing::Memory(vec![0; size as usize]),
            size,
        }
    }

    /// Wrap in the shared handle the devices take.
    pub fn shared(self) -> SharedDisk {
        Arc::new(Mutex::new(self))
    }

    /// Size in bytes (a multiple of [`SECTOR_SIZE`]).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Size in sectors.
    pub fn sectors(&self) -> u64 {
        self.size / SECTOR_SIZE
    }

    /// True for a `--disk` file, false for the scratch disk.
    pub fn is_file(&self) -> bool {
        matches!(self.backing, Backing::File(_))
    }

    /// `[offset, offset + len)` as an in-bounds `usize` range start.
    fn check(&self, offset: u64, len: usize) -> Result<usize, DiskError> {
        let len64 = len as u64;
        match offset.checked_add(len64) {
            Some(end) if end <= self.size => Ok(offset as usize),
            _ => Err(DiskError::OutOfRange {
                offset,
                len: len64,
                size: self.size,
            }),
        }
    }

    /// Read `buf.len()` bytes at byte `offset`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let start = self.check(offset, buf.len())?;
        match &mut self.backing {
            Backing::File(f) => f.read_exact_at(buf, offset)?,
            Backing::Memory(m) => {
                let src = m
                    .get(start..start + buf.len())
                    .ok_or(DiskError::OutOfRange {
                        offset,
                        len: buf.len() as u64,
                        size: self.size,
                    })?;
                buf.copy_from_slice(src);
            }
        }
        Ok(())
    }

    /// Write `buf` at byte `offset`.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), DiskError> {
        let start = self.check(offset, buf.len())?;
        match &mut self.backing {
            Backing::File(f) => f.write_all_at(buf, offset)?,
            Backing::Memory(m) => {
                let size = self.size;
                let dst = m
                    .get_mut(start..start + buf.len())
                    .ok_or(DiskError::OutOfRange {
                        offset,
                        len: buf.len() as u64,
                        size,
                    })?;
                dst.copy_from_slice(buf);
            }
        }
        Ok(())
    }

    /// Make written data durable (fdatasync for a file).
    pub fn flush(&mut self) -> Result<(), DiskError> {
        if let Backing::File(f) = &self.backing {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// Lock a shared disk; a poisoned lock only means another holder panicked
/// mid-access, and the image is still a valid byte store.
pub(crate) fn lock(disk: &SharedDisk) -> MutexGuard<'_, DiskImage> {
    disk.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ringside-disk-{}-{name}", std::process::id()))
    }

    #[test]
    fn scratch_is_4mib_of_zeros_and_bounds_checked() {
        let mut d = DiskImage::scratch();
        assert_eq!(d.size(), 4 << 20);
        assert_eq!(d.sectors(), 8192);
        assert!(!d.is_file());
        let mut buf = [0xaau8; 512];
        d.read_at(0, &mut buf).unwrap();
        assert_eq!(buf, [0; 512]);
        d.write_at(4096, b"hello").unwrap();
        let mut five = [0u8; 5];
        d.read_at(4096, &mut five).unwrap();
        assert_eq!(&five, b"hello");
        // The last sector is fine, one byte more is not.
        d.read_at((4 << 20) - 512, &mut buf).unwrap();
        assert!(matches!(
            d.read_at((4 << 20) - 511, &mut buf),
            Err(DiskError::OutOfRange { .. })
        ));
        assert!(matches!(
            d.write_at(u64::MAX - 2, b"abc"),
            Err(DiskError::OutOfRange { .. })
        ));
    }

    #[test]
    fn file_disk_round_trip_and_size_checks() {
        let p = temp_path("ok.img");
        std::fs::write(&p, vec![0u8; 2048]).unwrap();
        let mut d = DiskImage::open(&p).unwrap();
        assert!(d.is_file());
        assert_eq!(d.sectors(), 4);
        d.write_at(1024, b"sector two").unwrap();
        d.flush().unwrap();
        drop(d);
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1024..1034], b"sector two");
        let mut d = DiskImage::open(&p).unwrap();
        let mut buf = [0u8; 512];
        assert!(matches!(
            d.read_at(2048, &mut buf),
            Err(DiskError::OutOfRange { .. })
        ));
        std::fs::remove_file(&p).unwrap();

        let bad = temp_path("odd.img");
        let mut f = File::create(&bad).unwrap();
        f.write_all(&[0u8; 700]).unwrap();
        drop(f);
        let e = DiskImage::open(&bad).err().unwrap();
        assert!(matches!(e, DiskError::BadSize { size: 700, .. }), "{e}");
        std::fs::remove_file(&bad).unwrap();

        let e = DiskImage::open(&temp_path("missing.img")).err().unwrap();
        assert!(matches!(e, DiskError::Open { .. }), "{e}");
        assert!(e.to_string().contains("missing.img"));
    }
}
