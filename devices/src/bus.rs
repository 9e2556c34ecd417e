//! The port-I/O and MMIO buses: address decoding from a guest access to the
//! device that claims it.
//!
//! A bus maps non-overlapping address ranges to *keys*. The devices
//! themselves live in a handler ([`PioHandler`] / [`MmioHandler`]) that the
//! caller passes to each access, so one device object may claim several
//! ranges (the 8259 pair answers at 0x20, 0xa0 and 0x4d0) and the board can
//! still reach its devices directly for interrupt lines and timers without
//! shared ownership or locks. `Vec<Box<dyn PioDevice + Send>>` is a handler
//! keyed by index, for the simple case.
//!
//! Like the ISA bus (and QEMU's memory core), an access that does not fit
//! inside one device's range is split into byte accesses, each decoded on
//! its own. Bytes no device claims are *unassigned*: reads return all-ones
//! (the floating data bus), writes are dropped. Unassigned accesses are never
//! fatal; they are counted in [`BusStats`] and, like every access, reported
//! to the optional [`IoTraceSink`].

use std::fmt;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// A device on the port-I/O bus.
pub trait PioDevice {
    /// IN: fill `data` (1, 2 or 4 bytes, little-endian) from `offset`
    /// bytes into the device's range.
    fn read(&mut self, offset: u16, data: &mut [u8]);
    /// OUT: `data` (1, 2 or 4 bytes, little-endian) to `offset`.
    fn write(&mut self, offset: u16, data: &[u8]);
}

/// A device on the memory bus (a non-RAM physical range).
pub trait MmioDevice {
    /// Load `data` (1, 2, 4 or 8 bytes, little-endian) at `offset` bytes
    /// into the device's range.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Store `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// The owner of the devices behind a [`PioBus`]: it resolves a key to a
/// device and performs the access.
pub trait PioHandler<K> {
    fn pio_read(&mut self, key: K, offset: u16, data: &mut [u8]);
    fn pio_write(&mut self, key: K, offset: u16, data: &[u8]);
}

/// The owner of the devices behind an [`MmioBus`].
pub trait MmioHandler<K> {
    fn mmio_read(&mut self, key: K, offset: u64, data: &mut [u8]);
    fn mmio_write(&mut self, key: K, offset: u64, data: &[u8]);
}

impl PioHandler<usize> for Vec<Box<dyn PioDevice + Send>> {
    fn pio_read(&mut self, key: usize, offset: u16, data: &mut [u8]) {
        match self.get_mut(key) {
            Some(dev) => dev.read(offset, data),
            None => data.fill(0xff),
        }
    }
    fn pio_write(&mut self, key: usize, offset: u16, data: &[u8]) {
        if let Some(dev) = self.get_mut(key) {
            dev.write(offset, data);
        }
    }
}

impl MmioHandler<usize> for Vec<Box<dyn MmioDevice + Send>> {
    fn mmio_read(&mut self, key: usize, offset: u64, data: &mut [u8]) {
        match self.get_mut(key) {
            Some(dev) => dev.read(offset, data),
            None => data.fill(0xff),
        }
    }
    fn mmio_write(&mut self, key: usize, offset: u64, data: &[u8]) {
        if let Some(dev) = self.get_mut(key) {
            dev.write(offset, data);
        }
    }
}

/// A half-open address range `[base, base + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusRange {
    pub base: u64,
    pub len: u64,
}

impl BusRange {
    pub fn new(base: u64, len: u64) -> Self {
        Self { base, len }
    }

    /// One past the last address (u128: a range may end at 2^64).
    fn end(&self) -> u128 {
        self.base as u128 + self.len as u128
    }

    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.base && (addr as u128) < self.end()
    }

    fn overlaps(&self, other: &BusRange) -> bool {
        (self.base as u128) < other.end() && (other.base as u128) < self.end()
    }
}

impl fmt::Display for BusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.base, self.end())
    }
}

/// Why a range could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BusError {
    #[error("empty range at {0:#x}")]
    Empty(u64),
    #[error("range {range} does not fit in the {space} address space")]
    OutOfSpace { range: BusRange, space: IoSpace },
    #[error("range {range} ({name}) overlaps {existing} ({existing_name})")]
    Overlap {
        range: BusRange,
        name: &'static str,
        existing: BusRange,
        existing_name: &'static str,
    },
}

/// Which address space an access is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoSpace {
    Pio,
    Mmio,
}

impl fmt::Display for IoSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoSpace::Pio => "port I/O",
            IoSpace::Mmio => "MMIO",
        })
    }
}

/// Direction of an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDir {
    Read,
    Write,
}

/// One bus access, for `--trace io`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoRecord {
    pub space: IoSpace,
    pub dir: IoDir,
    pub addr: u64,
    pub size: u8,
    /// The value read or written (little-endian bytes of the access).
    pub value: u64,
    /// The device that claimed the first byte; `None` when unassigned.
    pub device: Option<&'static str>,
    /// At least one byte of the access was unassigned.
    pub unassigned: bool,
}

impl fmt::Display for IoRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (space, dir) = match (self.space, self.dir) {
            (IoSpace::Pio, IoDir::Read) => ("pio ", "in "),
            (IoSpace::Pio, IoDir::Write) => ("pio ", "out"),
            (IoSpace::Mmio, IoDir::Read) => ("mmio", "rd "),
            (IoSpace::Mmio, IoDir::Write) => ("mmio", "wr "),
        };
        let width = usize::from(self.size) * 2;
        write!(
            f,
            "{space} {dir} {:#06x}/{} = {:#0w$x}",
            self.addr,
            self.size,
            self.value,
            w = width + 2
        )?;
        match (self.device, self.unassigned) {
            (Some(d), false) => write!(f, " ({d})"),
            (Some(d), true) => write!(f, " ({d}, partly unassigned)"),
            (None, _) => write!(f, " (unassigned)"),
        }
    }
}

/// Where a bus reports its accesses.
pub trait IoTraceSink: Send {
    fn record(&mut self, rec: &IoRecord);
}

impl<F: FnMut(&IoRecord) + Send> IoTraceSink for F {
    fn record(&mut self, rec: &IoRecord) {
        self(rec)
    }
}

/// A bounded in-memory list of trace records. Bounded because nobody may
/// drain it: a guest polling a port in a loop must not exhaust host memory.
#[derive(Debug, Clone)]
pub struct IoTraceLog {
    records: Vec<IoRecord>,
    capacity: usize,
    dropped: u64,
}

impl IoTraceLog {
    /// Default bound on buffered records.
    pub const DEFAULT_CAPACITY: usize = 1 << 16;

    pub fn new(capacity: usize) -> Self {
        Self {
            records: Vec::new(),
            capacity,
            dropped: 0,
        }
    }

    pub fn push(&mut self, rec: &IoRecord) {
        if self.records.len() < self.capacity {
            self.records.push(rec.clone());
        } else {
            self.dropped += 1;
        }
    }

    /// Take the buffered records.
    pub fn drain(&mut self) -> Vec<IoRecord> {
        std::mem::take(&mut self.records)
    }

    /// Records lost because the log was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Default for IoTraceLog {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

/// A log shared by several buses (the board's PIO and MMIO buses write to
/// one, so records stay in access order).
impl IoTraceSink for Arc<Mutex<IoTraceLog>> {
    fn record(&mut self, rec: &IoRecord) {
        // A poisoned lock only means another holder panicked; the log
        // itself is still a valid Vec.
        let mut log = self.lock().unwrap_or_else(|e| e.into_inner());
        log.push(rec);
    }
}

/// Access counters of one bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    pub reads: u64,
    pub writes: u64,
    pub unassigned_reads: u64,
    pub unassigned_writes: u64,
}

struct Entry<K> {
    range: BusRange,
    name: &'static str,
    key: K,
}

/// The address decoder shared by both buses: ranges sorted by base.
struct AddressMap<K> {
    entries: Vec<Entry<K>>,
    space: IoSpace,
    /// One past the highest address of the space.
    limit: u128,
}

impl<K: Copy> AddressMap<K> {
    fn new(space: IoSpace, limit: u128) -> Self {
        Self {
            entries: Vec::new(),
            space,
            limit,
        }
    }

    fn insert(&mut self, range: BusRange, name: &'static str, key: K) -> Result<(), BusError> {
        if range.len == 0 {
            return Err(BusError::Empty(range.base));
        }
        if range.end() > self.limit {
            return Err(BusError::OutOfSpace {
                range,
                space: self.space,
            });
        }
        if let Some(e) = self.entries.iter().find(|e| e.range.overlaps(&range)) {
            return Err(BusError::Overlap {
                range,
                name,
                existing: e.range,
                existing_name: e.name,
            });
        }
        let at = self.entries.partition_point(|e| e.range.base < range.base);
        self.entries.insert(at, Entry { range, name, key });
        Ok(())
    }

    fn remove(&mut self, key: K) -> Option<BusRange>
    where
        K: PartialEq,
    {
        let at = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(at).range)
    }

    fn lookup(&self, addr: u64) -> Option<&Entry<K>> {
        let at = self.entries.partition_point(|e| e.range.base <= addr);
        let e = self.entries.get(at.checked_sub(1)?)?;
        e.range.contains(addr).then_some(e)
    }

    /// The entry that holds the whole access `[addr, addr + len)`.
    fn lookup_whole(&self, addr: u64, len: usize) -> Option<&Entry<K>> {
        let e = self.lookup(addr)?;
        (addr as u128 + len as u128 <= e.range.end()).then_some(e)
    }
}

/// Bus bookkeeping common to PIO and MMIO: counters and the trace sink.
struct Accounting {
    stats: BusStats,
    sink: Option<Box<dyn IoTraceSink>>,
}

impl Accounting {
    fn new() -> Self {
        Self {
            stats: BusStats::default(),
            sink: None,
        }
    }

    fn note(
        &mut self,
        space: IoSpace,
        dir: IoDir,
        addr: u64,
        data: &[u8],
        device: Option<&'static str>,
        unassigned: bool,
    ) {
        match (dir, unassigned) {
            (IoDir::Read, false) => self.stats.reads += 1,
            (IoDir::Read, true) => {
                self.stats.reads += 1;
                self.stats.unassigned_reads += 1
            }
            (IoDir::Write, false) => self.stats.writes += 1,
            (IoDir::Write, true) => {
                self.stats.writes += 1;
                self.stats.unassigned_writes += 1
            }
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.record(&IoRecord {
                space,
                dir,
                addr,
                size: u8::try_from(data.len()).unwrap_or(u8::MAX),
                value: le_value(data),
                device,
                unassigned,
            });
        }
    }
}

/// The little-endian value of up to 8 bytes.
pub(crate) fn le_value(data: &[u8]) -> u64 {
    data.iter()
        .take(8)
        .enumerate()
        .fold(0u64, |v, (i, b)| v | (u64::from(*b) << (8 * i)))
}

/// Outcome of decoding one access, for the caller's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// The device that claimed the first byte.
    pub device: Option<&'static str>,
    /// Some byte was unassigned.
    pub unassigned: bool,
}

/// Decode `[addr, addr + len)` and call `piece` for each part of it with
/// the claiming (key, offset), or `None` for unassigned bytes, and the
/// byte range of the access it covers.
fn decode<K: Copy>(
    map: &AddressMap<K>,
    addr: u64,
    len: usize,
    mut piece: impl FnMut(Option<(K, u64)>, std::ops::Range<usize>),
) -> Decoded {
    if let Some(e) = map.lookup_whole(addr, len) {
        piece(Some((e.key, addr - e.range.base)), 0..len);
        return Decoded {
            device: Some(e.name),
            unassigned: false,
        };
    }
    // Straddles a range boundary or is (partly) unassigned: byte by byte,
    // as the ISA bus splits a wide cycle for 8-bit devices.
    let mut out = Decoded {
        device: None,
        unassigned: false,
    };
    for i in 0..len {
        let a = addr as u128 + i as u128;
        let hit = if a < map.limit {
            u64::try_from(a)
                .ok()
                .and_then(|a| map.lookup(a).map(|e| (e, a - e.range.base)))
        } else {
            None
        };
        match hit {
            Some((e, off)) => {
                if i == 0 {
                    out.device = Some(e.name);
                }
                piece(Some((e.key, off)), i..i + 1);
            }
            None => {
                out.unassigned = true;
                piece(None, i..i + 1);
            }
        }
    }
    out
}

/// The port-I/O bus (64 Ki ports).
pub struct PioBus<K> {
    map: AddressMap<K>,
    acct: Accounting,
}

impl<K: Copy> Default for PioBus<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy> PioBus<K> {
    pub fn new() -> Self {
        Self {
            map: AddressMap::new(IoSpace::Pio, 0x1_0000),
            acct: Accounting::new(),
        }
    }

    /// Claim ports `[base, base + len)` for `key`. Fails on an empty range,
    /// one past port 0xffff, or one overlapping a registered range.
    pub fn register(
        &mut self,
        base: u16,
        len: u32,
        name: &'static str,
        key: K,
    ) -> Result<(), BusError> {
        self.map
            .insert(BusRange::new(base.into(), len.into()), name, key)
    }

    /// Release the range of `key`; returns it if there was one.
    pub fn unregister(&mut self, key: K) -> Option<BusRange>
    where
        K: PartialEq,
    {
        self.map.remove(key)
    }

    /// The registered ranges, in address order.
    pub fn ranges(&self) -> impl Iterator<Item = (BusRange, &'static str)> + '_ {
        self.map.entries.iter().map(|e| (e.range, e.name))
    }

    /// Install (or remove) the trace sink.
    pub fn set_trace_sink(&mut self, sink: Option<Box<dyn IoTraceSink>>) {
        self.acct.sink = sink;
    }

    pub fn stats(&self) -> BusStats {
        self.acct.stats
    }

    /// IN from `port`: fills `data`.
    pub fn read<H: PioHandler<K>>(&mut self, port: u16, data: &mut [u8], h: &mut H) -> Decoded {
        let d = decode(&self.map, port.into(), data.len(), |target, r| {
            let Some(chunk) = data.get_mut(r) else { return };
            match target {
                // PIO ranges end at 0x10000, so offsets fit in u16.
                Some((key, off)) => h.pio_read(key, off as u16, chunk),
                None => chunk.fill(0xff),
            }
        });
        self.acct.note(
            IoSpace::Pio,
            IoDir::Read,
            port.into(),
            data,
            d.device,
            d.unassigned,
        );
        d
    }

    /// OUT of `data` to `port`.
    pub fn write<H: PioHandler<K>>(&mut self, port: u16, data: &[u8], h: &mut H) -> Decoded {
        let d = decode(&self.map, port.into(), data.len(), |target, r| {
            if let (Some((key, off)), Some(chunk)) = (target, data.get(r)) {
                h.pio_write(key, off as u16, chunk);
            }
        });
        self.acct.note(
            IoSpace::Pio,
            IoDir::Write,
            port.into(),
            data,
            d.device,
            d.unassigned,
        );
        d
    }
}

/// The MMIO bus (the full 64-bit physical space; the caller sends only
/// addresses that are not RAM).
pub struct MmioBus<K> {
    map: AddressMap<K>,
    acct: Accounting,
}

impl<K: Copy> Default for MmioBus<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Copy> MmioBus<K> {
    pub fn new() -> Self {
        Self {
            map: AddressMap::new(IoSpace::Mmio, 1u128 << 64),
            acct: Accounting::new(),
        }
    }

    /// Claim `[base, base + len)` for `key`.
    pub fn register(
        &mut self,
        base: u64,
        len: u64,
        name: &'static str,
        key: K,
    ) -> Result<(), BusError> {
        self.map.insert(BusRange::new(base, len), name, key)
    }

    /// Release the range of `key`; returns it if there was one.
    pub fn unregister(&mut self, key: K) -> Option<BusRange>
    where
        K: PartialEq,
    {
        self.map.remove(key)
    }

    /// The registered ranges, in address order.
    pub fn ranges(&self) -> impl Iterator<Item = (BusRange, &'static str)> + '_ {
        self.map.entries.iter().map(|e| (e.range, e.name))
    }

    pub fn set_trace_sink(&mut self, sink: Option<Box<dyn IoTraceSink>>) {
        self.acct.sink = sink;
    }

    pub fn stats(&self) -> BusStats {
        self.acct.stats
    }

    /// Load from `pa`: fills `data`.
    pub fn read<H: MmioHandler<K>>(&mut self, pa: u64, data: &mut [u8], h: &mut H) -> Decoded {
        let d = decode(&self.map, pa, data.len(), |target, r| {
            let Some(chunk) = data.get_mut(r) else { return };
            match target {
                Some((key, off)) => h.mmio_read(key, off, chunk),
                None => chunk.fill(0xff),
            }
        });
        self.acct
            .note(IoSpace::Mmio, IoDir::Read, pa, data, d.device, d.unassigned);
        d
    }

    /// Store `data` at `pa`.
    pub fn write<H: MmioHandler<K>>(&mut self, pa: u64, data: &[u8], h: &mut H) -> Decoded {
        let d = decode(&self.map, pa, data.len(), |target, r| {
            if let (Some((key, off)), Some(chunk)) = (target, data.get(r)) {
                h.mmio_write(key, off, chunk);
            }
        });
        self.acct.note(
            IoSpace::Mmio,
            IoDir::Write,
            pa,
            data,
            d.device,
            d.unassigned,
        );
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that remembers its last write and reads back a pattern.
    struct Scratch {
        last: Vec<(u16, Vec<u8>)>,
        fill: u8,
    }

    impl PioDevice for Scratch {
        fn read(&mut self, offset: u16, data: &mut [u8]) {
            for (i, b) in data.iter_mut().enumerate() {
                *b = self.fill.wrapping_add(offset as u8).wrapping_add(i as u8);
            }
        }
        fn write(&mut self, offset: u16, data: &[u8]) {
            self.last.push((offset, data.to_vec()));
        }
    }

    impl MmioDevice for Scratch {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            PioDevice::read(self, offset as u16, data)
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            PioDevice::write(self, offset as u16, data)
        }
    }

    fn scratch(fill: u8) -> Box<Scratch> {
        Box::new(Scratch {
            last: Vec::new(),
            fill,
        })
    }

    #[test]
    fn register_rejects_overlap_empty_and_out_of_space() {
        let mut bus: PioBus<usize> = PioBus::new();
        bus.register(0x3f8, 8, "uart", 0).unwrap();
        assert!(matches!(
            bus.register(0x3ff, 2, "x", 1),
            Err(BusError::Overlap {
                existing_name: "uart",
                ..
            })
        ));
        assert!(matches!(
            bus.register(0x3f0, 9, "x", 1),
            Err(BusError::Overlap { .. })
        ));
        assert_eq!(bus.register(0x10, 0, "x", 1), Err(BusError::Empty(0x10)));
        assert!(matches!(
            bus.register(0xfffe, 3, "x", 1),
            Err(BusError::OutOfSpace { .. })
        ));
        bus.register(0xfffe, 2, "top", 1).unwrap();
        bus.register(0x3f0, 8, "below", 2).unwrap();
        let names: Vec<_> = bus.ranges().map(|(_, n)| n).collect();
        assert_eq!(names, ["below", "uart", "top"]);
        assert_eq!(bus.unregister(0), Some(BusRange::new(0x3f8, 8)));
        bus.register(0x3f8, 8, "uart", 0).unwrap();
    }

    #[test]
    fn dispatch_with_offset_and_unassigned_all_ones() {
        let mut bus: PioBus<usize> = PioBus::new();
        let mut devs: Vec<Box<dyn PioDevice + Send>> = vec![scratch(0x10)];
        bus.register(0x40, 4, "dev", 0).unwrap();

        let mut b = [0u8; 2];
        let d = bus.read(0x41, &mut b, &mut devs);
        assert_eq!(b, [0x11, 0x12]);
        assert_eq!(d.device, Some("dev"));

        let mut w = [0u8; 4];
        let d = bus.read(0x1234, &mut w, &mut devs);
        assert!(d.unassigned && d.device.is_none());
        assert_eq!(w, [0xff; 4]);
        bus.write(0x1234, &[1, 2], &mut devs);

        let s = bus.stats();
        assert_eq!(
            (s.reads, s.writes, s.unassigned_reads, s.unassigned_writes),
            (2, 1, 1, 1)
        );
    }

    #[test]
    fn straddling_access_is_split_into_bytes() {
        let mut bus: PioBus<usize> = PioBus::new();
        let mut devs: Vec<Box<dyn PioDevice + Send>> = vec![scratch(0x10), scratch(0x80)];
        bus.register(0x40, 2, "a", 0).unwrap();
        bus.register(0x42, 1, "b", 1).unwrap();
        // 0x41 -> a+1, 0x42 -> b+0, 0x43 unassigned, 0x44 unassigned.
        let mut w = [0u8; 4];
        let d = bus.read(0x41, &mut w, &mut devs);
        assert_eq!(w, [0x11, 0x80, 0xff, 0xff]);
        assert_eq!(d.device, Some("a"));
        assert!(d.unassigned);
        // The top of the port space does not wrap to port 0.
        bus.register(0, 1, "zero", 1).unwrap();
        let mut w = [0u8; 2];
        bus.read(0xffff, &mut w, &mut devs);
        assert_eq!(w, [0xff, 0xff]);
    }

    #[test]
    fn trace_sink_sees_every_access() {
        let log = Arc::new(Mutex::new(IoTraceLog::new(2)));
        let mut bus: MmioBus<usize> = MmioBus::new();
        let mut devs: Vec<Box<dyn MmioDevice + Send>> = vec![scratch(0)];
        bus.register(0xfee0_0000, 0x1000, "lapic", 0).unwrap();
        bus.set_trace_sink(Some(Box::new(log.clone())));
        bus.write(0xfee0_00b0, &[0, 0, 0, 0], &mut devs);
        let mut q = [0u8; 8];
        bus.read(0xffff_ffff_ffff_fffc, &mut q, &mut devs);
        assert_eq!(q, [0xff; 8]);
        bus.read(0x1000, &mut q, &mut devs); // dropped: log full
        let mut l = log.lock().unwrap();
        let recs = l.drain();
        assert_eq!(l.dropped(), 1);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].device, Some("lapic"));
        assert_eq!(recs[0].dir, IoDir::Write);
        assert!(recs[1].unassigned);
        assert_eq!(recs[1].value, u64::MAX);
        assert_eq!(
            recs[0].to_string(),
            "mmio wr  0xfee000b0/4 = 0x00000000 (lapic)"
        );
    }

    #[test]
    fn mmio_dispatch_offsets() {
        let mut bus: MmioBus<usize> = MmioBus::new();
        let mut devs: Vec<Box<dyn MmioDevice + Send>> = vec![scratch(0x20)];
        bus.register(0xd000_0000, 0x1000, "virtio", 0).unwrap();
        let mut d = [0u8; 4];
        bus.read(0xd000_0004, &mut d, &mut devs);
        assert_eq!(d, [0x24, 0x25, 0x26, 0x27]);
        assert!(matches!(
            bus.register(0xd000_0800, 0x1000, "x", 1),
            Err(BusError::Overlap { .. })
        ));
        assert!(bus.register(u64::MAX, 1, "last", 1).is_ok());
    }
}
