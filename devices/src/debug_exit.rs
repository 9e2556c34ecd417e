//! QEMU's `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,iosize=4`).
//!
//! Test kernels end a run by writing a value `v` to the port; the host
//! process then exits with status `(v << 1) | 1`, so a guest can never
//! produce status 0 and a clean QEMU shutdown stays distinguishable from a
//! guest-reported result. ringside follows the same convention so the same
//! test kernels and scripts work under QEMU, ringside-tcg and ringside-kvm.

use crate::bus::{le_value, PioDevice};

/// Conventional I/O base.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Conventional I/O size.
pub const DEBUG_EXIT_SIZE: u32 = 4;

/// The exit port: remembers the first exit request.
#[derive(Debug, Clone, Default)]
pub struct DebugExit {
    status: Option<u32>,
}

impl DebugExit {
    pub fn new() -> Self {
        Self::default()
    }

    /// The exit status requested by the guest, `(v << 1) | 1`, if any.
    pub fn exit_request(&self) -> Option<u32> {
        self.status
    }
}

impl PioDevice for DebugExit {
    /// Reads float (QEMU's device has no read handler: all-ones).
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(0xff);
    }

    /// Any write, of any width at any offset in the window, is an exit
    /// request with the written value. The first one wins: the machine is
    /// already stopping.
    fn write(&mut self, _offset: u16, data: &[u8]) {
        if self.status.is_none() {
            let v = le_value(data) as u32;
            self.status = Some((v << 1) | 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_value_shifted_with_low_bit_set() {
        let mut d = DebugExit::new();
        assert_eq!(d.exit_request(), None);
        d.write(0, &[0x10]);
        assert_eq!(d.exit_request(), Some(0x21));
        d.write(0, &[0x00]);
        assert_eq!(d.exit_request(), Some(0x21), "first request wins");

        let mut d = DebugExit::new();
        d.write(0, &0u32.to_le_bytes());
        assert_eq!(d.exit_request(), Some(1));

        let mut d = DebugExit::new();
        d.write(0, &0x1234u16.to_le_bytes());
        assert_eq!(d.exit_request(), Some(0x2469));

        let mut d = DebugExit::new();
        d.write(0, &0x8000_0001u32.to_le_bytes());
        assert_eq!(d.exit_request(), Some(0x0000_0003), "bit 31 shifts out");
    }

    #[test]
    fn reads_are_all_ones() {
        let mut d = DebugExit::new();
        let mut b = [0u8; 4];
        d.read(0, &mut b);
        assert_eq!(b, [0xff; 4]);
        assert_eq!(d.exit_request(), None);
    }
}
