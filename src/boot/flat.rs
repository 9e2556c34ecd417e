//! Flat binaries: raw bytes loaded at a user-chosen address below 1 MiB and
//! entered in real mode, the way a BIOS hands over to a boot sector.
//!
//! Entry state (documented in docs/BOOT.md):
//! * CS:IP = (addr >> 4):(addr & 0xf), so the image's first byte is at
//!   offset `addr & 0xf` of its code segment and near jumps within the
//!   first 64 KiB work; DS = ES = SS = CS; FS = GS = 0.
//! * SP = 0xfffe: the stack starts at the top of the image's 64 KiB segment
//!   and grows down towards the image, as DOS does for .COM programs. With
//!   SS = CS required, that is the only place a stack can be without
//!   sitting on the image's first bytes; images of more than ~60 KiB should
//!   set up their own stack first thing.
//! * DL = 0x80 (booted from the first hard disk, as a BIOS reports).
//! * CR0 = ET (caches enabled, as a BIOS leaves it), IDTR = base 0 limit
//!   0x3ff (the real-mode IVT, all zero: ringside has no BIOS services),
//!   RFLAGS = 0x2, every other register zero.
//!
//! The image must end at or below 0xe0000, where the device tree lives.

use super::lowmem::{FDT_ADDR, HIGH_MEMORY};
use super::BootError;
use cpu::state::{cr0, reg, rflags, DescTable, SegReg, Segment};
use cpu::CpuState;

/// The initial stack pointer, relative to SS = CS.
pub const INITIAL_SP: u64 = 0xfffe;
/// DL at entry: the BIOS boot drive number of the first hard disk.
pub const BOOT_DRIVE: u64 = 0x80;

/// Check that a `len`-byte image fits at `addr`.
pub fn check(addr: u64, len: u64) -> Result<(), BootError> {
    let bad = |reason: String| BootError::BadFlatAddress { addr, reason };
    if addr >= HIGH_MEMORY {
        return Err(bad(
            "flat images start in real mode and must load below 1 MiB (0x100000); use e.g. --flat-addr 0x7c00".into(),
        ));
    }
    match addr.checked_add(len) {
        Some(end) if end <= FDT_ADDR => Ok(()),
        _ => Err(bad(format!(
            "the {len}-byte image would end at {:#x}, past {FDT_ADDR:#x} where the device tree lives; load it lower or make it smaller",
            addr.saturating_add(len)
        ))),
    }
}

/// The real-mode entry state for an image loaded at `addr` (< 1 MiB).
pub fn entry_state(addr: u64) -> CpuState {
    let mut s = CpuState::reset();
    let sel = (addr >> 4) as u16;
    for r in SegReg::ALL {
        *s.sreg_mut(r) = match r {
            SegReg::Cs => Segment::real_mode(sel, true),
            SegReg::Fs | SegReg::Gs => Segment::real_mode(0, false),
            _ => Segment::real_mode(sel, false),
        };
    }
    s.rip = addr & 0xf;
    s.rflags = rflags::FIXED1;
    s.gpr = [0; 16];
    s.gpr[reg::RSP] = INITIAL_SP;
    s.gpr[reg::RDX] = BOOT_DRIVE;
    s.cr0 = cr0::ET;
    s.idtr = DescTable {
        base: 0,
        limit: 0x3ff,
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpu::CpuMode;

    #[test]
    fn state_for_0x7c00() {
        let s = entry_state(0x7c00);
        assert_eq!(s.mode(), CpuMode::Real);
        assert_eq!(s.code_bitness(), 16);
        assert_eq!((s.cs().selector, s.cs().base, s.rip), (0x7c0, 0x7c00, 0));
        for r in [SegReg::Ds, SegReg::Es, SegReg::Ss] {
            assert_eq!(s.sreg(r).selector, 0x7c0);
            assert_eq!(s.sreg(r).base, 0x7c00);
        }
        assert_eq!(s.gpr[reg::RSP], 0xfffe);
        assert_eq!(s.gpr[reg::RDX], 0x80);
        let s = entry_state(0x7c05);
        assert_eq!((s.cs().selector, s.rip), (0x7c0, 5));
    }

    #[test]
    fn address_checks() {
        assert!(check(0x7c00, 512).is_ok());
        assert!(check(0xdff00, 0x100).is_ok());
        assert!(matches!(
            check(0xdff00, 0x101),
            Err(BootError::BadFlatAddress { .. })
        ));
        assert!(matches!(
            check(0x100000, 1),
            Err(BootError::BadFlatAddress { .. })
        ));
        assert!(matches!(
            check(0x7c00, u64::MAX),
            Err(BootError::BadFlatAddress { .. })
        ));
    }
}
