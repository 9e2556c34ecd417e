//! The x87 register stack: TOP, ST(i) ↔ physical register, the tag word,
//! and the stack-fault responses (SDM Vol. 1, 8.1.2, 8.1.7, 8.5.1.1).

use super::softfloat::{exc, Class};
use crate::state::{fsw, X87State, F80};

/// Physical register number of ST(i).
#[inline(always)]
pub(crate) fn phys(x: &X87State, i: usize) -> usize {
    (x.top() + i) & 7
}

pub(crate) fn is_empty(x: &X87State, i: usize) -> bool {
    x.ftw & (1 << phys(x, i)) == 0
}

pub(crate) fn get(x: &X87State, i: usize) -> F80 {
    x.regs[phys(x, i)]
}

/// Write ST(i) and tag it non-empty.
pub(crate) fn set(x: &mut X87State, i: usize, v: F80) {
    let p = phys(x, i);
    x.regs[p] = v;
    x.ftw |= 1 << p;
}

pub(crate) fn set_top(x: &mut X87State, top: usize) {
    x.fsw = (x.fsw & !fsw::TOP) | (((top & 7) as u16) << fsw::TOP_SHIFT);
}

/// Tag ST(0) empty and increment TOP.
pub(crate) fn pop(x: &mut X87State) {
    let p = phys(x, 0);
    x.ftw &= !(1 << p);
    set_top(x, x.top() + 1);
}

/// FSW.C1 := v.
pub(crate) fn set_c1(x: &mut X87State, v: bool) {
    x.fsw = (x.fsw & !fsw::C1) | if v { fsw::C1 } else { 0 };
}

/// Merge exception flags into FSW, and ES and B if any of them is
/// unmasked. Returns whether the instruction may deliver its result: an
/// unmasked invalid-operation, denormal-operand or divide-by-zero
/// exception leaves the destination (and TOP) unchanged (SDM Vol. 1,
/// 8.5: unmasked OE/UE/PE still deliver a result).
pub(crate) fn signal(x: &mut X87State, flags: u8) -> bool {
    // An unmasked IE, DE or ZE stops the operation before it computes a
    // result, so the result's exceptions (OE, UE, PE) are not raised
    // (measured on AMD: unmasked DE on FMUL/FSUB leaves UE and PE clear).
    let pre = flags & !(x.fcw as u8) & (exc::IE | exc::DE | exc::ZE);
    let flags = if pre != 0 {
        flags & (exc::IE | exc::DE | exc::ZE)
    } else {
        flags
    };
    x.fsw |= u16::from(flags);
    let unmasked = flags & !(x.fcw as u8) & 0x3f;
    if unmasked != 0 {
        x.fsw |= fsw::ES | fsw::B;
    }
    unmasked & (exc::IE | exc::DE | exc::ZE) == 0
}

/// Recompute ES and B from the flags and the masks (after FLDCW, FLDENV,
/// FRSTOR, FNCLEX).
pub(crate) fn update_es(x: &mut X87State) {
    if x.fsw & !x.fcw & 0x3f != 0 {
        x.fsw |= fsw::ES | fsw::B;
    } else {
        x.fsw &= !(fsw::ES | fsw::B);
    }
}

/// A stack fault: IE and SF, C1 = 1 for an overflow and 0 for an
/// underflow. Returns whether IE is masked (the instruction then goes on
/// with the QNaN indefinite).
pub(crate) fn stack_fault(x: &mut X87State, overflow: bool) -> bool {
    x.fsw |= fsw::SF;
    set_c1(x, overflow);
    signal(x, exc::IE)
}

/// Push `v`, with the overflow response if ST(7) is in use. Returns
/// false if nothing was pushed (unmasked overflow).
pub(crate) fn push(x: &mut X87State, v: F80) -> bool {
    let below = (x.top() + 7) & 7;
    if x.ftw & (1 << below) != 0 {
        if !stack_fault(x, true) {
            return false;
        }
        set_top(x, below);
        set(x, 0, F80::INDEFINITE);
        return true;
    }
    set_top(x, below);
    set(x, 0, v);
    true
}

/// Decrement TOP and write ST(0), whatever was there.
pub(crate) fn push_unchecked(x: &mut X87State, v: F80) {
    set_top(x, x.top() + 7);
    set(x, 0, v);
}

/// The full 2-bit tag of a non-empty register: 00 valid, 01 zero,
/// 10 special (NaN, infinity, denormal, unsupported).
pub(crate) fn tag_of(v: F80) -> u16 {
    match v.class() {
        Class::Normal => 0,
        Class::Zero => 1,
        _ => 2,
    }
}

/// The full tag word (for FNSTENV/FNSAVE).
pub(crate) fn full_tags(x: &X87State) -> u16 {
    (0..8).fold(0u16, |t, p| {
        let tag = if x.ftw & (1 << p) == 0 {
            3
        } else {
            tag_of(x.regs[p])
        };
        t | (tag << (2 * p))
    })
}

/// The abridged tag of a full tag word: empty (11) or not.
pub(crate) fn abridge(ftw: u16) -> u8 {
    (0..8).fold(0u8, |t, p| {
        if (ftw >> (2 * p)) & 3 == 3 {
            t
        } else {
            t | (1 << p)
        }
    })
}
