//! Address-space newtypes.
//!
//! ringside juggles three address spaces, and mixing them up is the classic
//! hypervisor bug. Each gets its own type so the compiler keeps them apart:
//!
//! * [`GuestVirtAddr`] (VA): what the guest's instructions use, after
//!   segmentation (a *linear* address in SDM terms).
//! * [`GuestPhysAddr`] (PA): what the guest believes is physical memory, the
//!   output of the guest's own page tables.
//! * [`MachineAddr`] (MA): an offset into the host mapping that backs guest
//!   RAM. With no monitor, PA→MA is the fixed [`crate::PhysLayout`]; under a
//!   monitor it is the p2m table of a later stage.

use std::fmt;

macro_rules! addr_newtype {
    ($(#[$m:meta])* $name:ident, $short:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw 64-bit value.
            #[inline(always)]
            pub const fn raw(self) -> u64 {
                self.0
            }
            /// This address plus `off`, wrapping like the hardware adder.
            #[inline(always)]
            pub const fn add(self, off: u64) -> Self {
                Self(self.0.wrapping_add(off))
            }
            /// The 4 KiB page this address lies in.
            #[inline(always)]
            pub const fn page(self) -> Self {
                Self(self.0 & !0xfff)
            }
            /// Offset inside the 4 KiB page.
            #[inline(always)]
            pub const fn page_offset(self) -> u64 {
                self.0 & 0xfff
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($short, ":{:#x}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

addr_newtype!(
    /// A guest-virtual (linear) address: segmentation applied, paging not yet.
    GuestVirtAddr,
    "VA"
);
addr_newtype!(
    /// A guest-physical address: what the guest's page tables produce.
    GuestPhysAddr,
    "PA"
);
addr_newtype!(
    /// A machine address: an offset into the host mapping backing guest RAM.
    MachineAddr,
    "MA"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_helpers() {
        let a = GuestVirtAddr(0x1234_5678);
        assert_eq!(a.page(), GuestVirtAddr(0x1234_5000));
        assert_eq!(a.page_offset(), 0x678);
        assert_eq!(GuestPhysAddr(u64::MAX).add(1), GuestPhysAddr(0));
        assert_eq!(format!("{:?}", MachineAddr(0x10)), "MA:0x10");
    }
}
