//! The monitor's own machine frames: a bump allocator with a free list
//! over a machine-address range no guest frame maps to.
//!
//! Shadow page tables, nested tables and the monitor's descriptor tables
//! live here. Guests can't name these frames: the p2m never points at them.

use crate::addr::MachineAddr;
use crate::ram::GuestRam;

const PAGE: u64 = 4096;

/// Allocator of zeroed 4 KiB machine frames in `[start, end)`.
#[derive(Debug, Clone)]
pub struct FramePool {
    start: u64,
    end: u64,
    next: u64,
    free: Vec<u64>,
}

impl FramePool {
    /// A pool over `[start, end)` (both rounded inward to 4 KiB).
    pub fn new(start: MachineAddr, end: MachineAddr) -> Self {
        let s = start.0.div_ceil(PAGE) * PAGE;
        let e = (end.0 / PAGE) * PAGE;
        FramePool {
            start: s,
            end: e.max(s),
            next: s,
            free: Vec::new(),
        }
    }

    /// A zeroed frame, or `None` when the pool is exhausted.
    pub fn alloc(&mut self, ram: &GuestRam) -> Option<MachineAddr> {
        let f = if let Some(f) = self.free.pop() {
            f
        } else if self.next < self.end {
            let f = self.next;
            self.next += PAGE;
            f
        } else {
            return None;
        };
        ram.fill(MachineAddr(f), PAGE, 0).ok()?;
        Some(MachineAddr(f))
    }

    /// Give a frame back.
    pub fn release(&mut self, f: MachineAddr) {
        if self.contains(f) {
            self.free.push(f.0 & !(PAGE - 1));
        }
    }

    /// Forget every allocation (the caller dropped all users).
    pub fn reset(&mut self) {
        self.next = self.start;
        self.free.clear();
    }

    /// Whether `ma` lies in this pool.
    pub fn contains(&self, ma: MachineAddr) -> bool {
        ma.0 >= self.start && ma.0 < self.end
    }

    /// Frames handed out and not released.
    pub fn in_use(&self) -> u64 {
        (self.next - self.start) / PAGE - self.free.len() as u64
    }

    /// Total frames.
    pub fn capacity(&self) -> u64 {
        (self.end - self.start) / PAGE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_release_exhaust() {
        let ram = GuestRam::new(0x10000).unwrap();
        let mut p = FramePool::new(MachineAddr(0x8000), MachineAddr(0xa000));
        let a = p.alloc(&ram).unwrap();
        let b = p.alloc(&ram).unwrap();
        assert_ne!(a, b);
        assert!(p.alloc(&ram).is_none());
        p.release(a);
        assert_eq!(p.alloc(&ram), Some(a));
        assert_eq!(p.in_use(), 2);
        p.reset();
        assert_eq!(p.in_use(), 0);
    }
}
