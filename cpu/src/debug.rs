//! The debug-register breakpoints (SDM Vol. 3B chapter 17): DR0-DR3
//! addresses, DR7 enables and conditions, DR6 status.
//!
//! * Instruction breakpoints (R/W = 00) are fault-class #DB, checked by
//!   the run loop before the instruction at the breakpoint is fetched,
//!   unless RFLAGS.RF = 1 or the instruction follows MOV SS / POP SS.
//! * Data breakpoints (R/W = 01 write, 11 read or write) are checked on
//!   every data access by the memory layer ([`crate::memory`]) and
//!   collected while the instruction runs; the run loop raises one
//!   trap-class #DB after the instruction completes, with all the matches
//!   (and DR6.BS if it was also single-stepped).
//! * I/O breakpoints (R/W = 10) exist only with CR4.DE = 1; without it the
//!   encoding is undefined and ringside never matches it (no #GP: MOV DR7
//!   does not check the R/W fields). They are checked after IN/OUT/INS/OUTS
//!   complete.
//!
//! A breakpoint covers LEN bytes (00 = 1, 01 = 2, 11 = 4, 10 = 8) at its
//! address with the low bits masked off (the SDM requires the address to
//! be aligned to LEN; masking is what hardware effectively does). An
//! access matches when any of its bytes is covered, so both halves of a
//! page-crossing access are checked.
//!
//! The GE/LE bits are ignored, as on every processor since the P6 (exact
//! breakpoint matching is always on). DR6.B0-B3 report only enabled
//! breakpoints; hardware may also report disabled ones that matched, which
//! the SDM leaves model-specific.
//!
//! Cost when unused: the run loop and the memory fast path test one cached
//! byte ([`crate::memory::ModeCache::bp`]), refreshed whenever DR7 or CR4
//! can have changed.

use crate::state::{cr4, CpuState};

/// DR6.BD: the #DB is a general-detect fault (MOV DR with DR7.GD = 1).
pub(crate) const DR6_BD: u64 = 1 << 13;
/// DR6.BS: the #DB is a single-step trap.
pub(crate) const DR6_BS: u64 = 1 << 14;
/// DR6 bits that read as 1 (4-11, 16-31: no RTM, no bus-lock detection).
pub(crate) const DR6_FIXED1: u64 = 0xffff_0ff0;
/// DR7.GD: general-detect enable.
pub(crate) const DR7_GD: u64 = 1 << 13;
/// DR7 L0/G0-L3/G3.
const DR7_ENABLES: u64 = 0xff;

/// The R/W encodings.
const RW_EXEC: u64 = 0;
const RW_WRITE: u64 = 1;
const RW_IO: u64 = 2;
const RW_RW: u64 = 3;

/// Debug state that lives between memory accesses of one instruction and
/// across one MOV SS / POP SS shadow. Kept by the CPU next to its cached
/// mode facts; `refresh_mode` preserves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DebugPending {
    /// DR6.B0-B3 bits of the data breakpoints the current instruction hit.
    pub hits: u8,
    /// The current interrupt shadow was set by MOV SS / POP SS: the next
    /// instruction's instruction breakpoint is suppressed and the debug
    /// traps of the MOV SS are held until it completes (SDM Vol. 3A 6.8.3).
    pub movss_shadow: bool,
    /// DR6 bits of traps held by a MOV SS / POP SS shadow.
    pub deferred: u64,
}

/// Are any of the four breakpoints enabled in DR7?
#[inline]
pub(crate) fn armed(s: &CpuState) -> bool {
    s.dr[7] & DR7_ENABLES != 0
}

/// (enabled, R/W, length in bytes) of breakpoint `n`.
#[inline]
fn bp(s: &CpuState, n: usize) -> (bool, u64, u64) {
    let dr7 = s.dr[7];
    let enabled = (dr7 >> (2 * n)) & 3 != 0;
    let rw = (dr7 >> (16 + 4 * n)) & 3;
    let len = match (dr7 >> (18 + 4 * n)) & 3 {
        0 => 1,
        1 => 2,
        2 => 8,
        _ => 4,
    };
    (enabled, rw, len)
}

/// Does `[addr, addr+size)` overlap the `len` bytes of breakpoint `n`?
#[inline]
fn covers(s: &CpuState, n: usize, len: u64, addr: u64, size: u64, mask: u64) -> bool {
    let start = s.dr[n] & !(len - 1) & mask;
    let end = start.wrapping_add(len - 1);
    let last = addr.wrapping_add(size.max(1) - 1);
    // Intervals [addr, last] and [start, end]; neither wraps in practice
    // (an access that wraps the address space faults first).
    addr <= end && start <= last
}

/// DR6.Bn bits of the enabled instruction breakpoints at linear `lin`.
pub(crate) fn exec_hits(s: &CpuState, lin: u64, mask: u64) -> u64 {
    let mut hits = 0;
    for n in 0..4 {
        let (en, rw, _) = bp(s, n);
        // An instruction breakpoint needs LEN = 00; the address is the
        // first byte of the instruction (prefixes included).
        if en && rw == RW_EXEC && s.dr[n] & mask == lin & mask {
            hits |= 1 << n;
        }
    }
    hits
}

/// DR6.Bn bits of the enabled data breakpoints an access of `size` bytes
/// at linear `lin` matches (`write`: the access writes).
pub(crate) fn data_hits(s: &CpuState, lin: u64, size: u8, write: bool, mask: u64) -> u8 {
    let mut hits = 0;
    for n in 0..4 {
        let (en, rw, len) = bp(s, n);
        let kind_ok = rw == RW_RW || (rw == RW_WRITE && write);
        if en && kind_ok && covers(s, n, len, lin, size as u64, mask) {
            hits |= 1 << n;
        }
    }
    hits
}

/// DR6.Bn bits of the enabled I/O breakpoints (CR4.DE = 1 only) an access
/// of `size` bytes at `port` matches.
pub(crate) fn io_hits(s: &CpuState, port: u16, size: u8) -> u64 {
    if s.cr4 & cr4::DE == 0 {
        return 0;
    }
    let mut hits = 0;
    for n in 0..4 {
        let (en, rw, len) = bp(s, n);
        if en && rw == RW_IO && covers(s, n, len, port as u64, size as u64, 0xffff) {
            hits |= 1 << n;
        }
    }
    hits
}

/// Record a #DB's causes in DR6. B0-B3 accumulate (the processor never
/// clears DR6 bits; SDM 17.2.3 lets it clear B0-B3, which KVM does not).
#[inline]
pub(crate) fn set_dr6(s: &mut CpuState, bits: u64) {
    s.dr[6] |= bits | DR6_FIXED1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(dr7: u64, dr: [u64; 4]) -> CpuState {
        let mut s = CpuState::reset();
        s.dr[..4].copy_from_slice(&dr);
        s.dr[7] = dr7 | 0x400;
        s
    }

    #[test]
    fn lengths_and_alignment_masking() {
        // DR0: write, LEN=4 (11) at 0x1003 → covers 0x1000-0x1003.
        // DR1: read/write, LEN=8 (10) at 0x2000.
        // DR2: read/write, LEN=2 (01) at 0x3001 → 0x3000-0x3001.
        let dr7 = 1 | (1 << 2) | (1 << 4) | (0b1101 << 16) | (0b1011 << 20) | (0b0111 << 24);
        let s = st(dr7, [0x1003, 0x2000, 0x3001, 0]);
        let m = u64::MAX;
        assert_eq!(data_hits(&s, 0x1000, 1, true, m), 1);
        assert_eq!(data_hits(&s, 0x1000, 1, false, m), 0, "write-only");
        assert_eq!(data_hits(&s, 0x0ffe, 4, true, m), 1, "overlap from below");
        assert_eq!(data_hits(&s, 0x1004, 4, true, m), 0);
        assert_eq!(data_hits(&s, 0x2007, 1, false, m), 2);
        assert_eq!(data_hits(&s, 0x2008, 1, false, m), 0);
        assert_eq!(data_hits(&s, 0x3000, 1, false, m), 4);
        assert_eq!(data_hits(&s, 0x3002, 1, false, m), 0);
        assert_eq!(data_hits(&s, 0x1ff8, 0x10, false, m), 2, "16-byte access");
    }

    #[test]
    fn exec_and_io_breakpoints() {
        // DR0 exec at 0x5000 (L0); DR1 I/O at port 0x3f8 LEN=1 (G1).
        let dr7 = 1 | (1 << 3) | (0b0010 << 20);
        let mut s = st(dr7, [0x5000, 0x3f8, 0, 0]);
        assert_eq!(exec_hits(&s, 0x5000, u64::MAX), 1);
        assert_eq!(exec_hits(&s, 0x5001, u64::MAX), 0);
        assert_eq!(io_hits(&s, 0x3f8, 1), 0, "R/W=10 needs CR4.DE");
        s.cr4 |= cr4::DE;
        assert_eq!(io_hits(&s, 0x3f8, 1), 2);
        assert_eq!(io_hits(&s, 0x3f6, 4), 2, "overlapping port range");
        assert_eq!(io_hits(&s, 0x3f9, 1), 0);
        assert!(armed(&s));
        s.dr[7] = 0x400 | DR7_GD;
        assert!(!armed(&s), "GD alone arms no breakpoint");
    }
}
