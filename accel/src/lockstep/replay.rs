//! Device I/O record and replay.
//!
//! In lockstep the interpreter is the one CPU that talks to the machine's
//! devices. [`Recorder`] wraps the machine's [`Platform`] for one
//! interpreter step (or one native stretch) and keeps every port and MMIO
//! access it made, with the value read or written. KVM runs the same
//! instruction on its own copy of RAM; each of its `KVM_EXIT_IO` /
//! `KVM_EXIT_MMIO` exits is answered from that log by [`Replay`], which
//! also checks that KVM made the *same* access (port or address, size,
//! direction, value written): an access that differs is a divergence in
//! its own right.
//!
//! The recorder also notes the interrupt the interpreter acknowledged, so
//! the same vector can be injected into KVM at the same instruction
//! boundary, and can hold interrupts back while the interpreter runs a
//! stretch that KVM cannot single-step.

use cpu::{CpuEvent, Platform};
use mmu::GuestPhysAddr;

/// One device access made by the interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    PioIn { port: u16, size: u8, val: u32 },
    PioOut { port: u16, size: u8, val: u32 },
    MmioRead { pa: u64, size: u8, val: u64 },
    MmioWrite { pa: u64, size: u8, val: u64 },
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Access::PioIn { port, size, val } => {
                write!(f, "IN port {port:#x} size {size} -> {val:#x}")
            }
            Access::PioOut { port, size, val } => {
                write!(f, "OUT port {port:#x} size {size} <- {val:#x}")
            }
            Access::MmioRead { pa, size, val } => {
                write!(f, "MMIO read {pa:#x} size {size} -> {val:#x}")
            }
            Access::MmioWrite { pa, size, val } => {
                write!(f, "MMIO write {pa:#x} size {size} <- {val:#x}")
            }
        }
    }
}

/// The machine's platform, seen by the interpreter during one lockstep
/// step: every access passes through to the devices and is logged.
pub struct Recorder<'a> {
    inner: &'a mut dyn Platform,
    /// The accesses, in order.
    pub log: Vec<Access>,
    /// The vector acknowledged (INTA) during the step.
    pub acked: Option<u8>,
    /// An NMI was taken during the step.
    pub nmi: bool,
    /// Report no pending interrupt or NMI (a native stretch is running:
    /// KVM could not take the event at the same boundary).
    pub hold_events: bool,
    /// The interpreter delivered an exception or interrupt (reported as
    /// [`CpuEvent::Interrupt`]; lockstep always has `trace.int` on).
    pub delivered: bool,
    /// Forward interrupt events to the machine (the user asked for them).
    pub forward_int: bool,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a mut dyn Platform, hold_events: bool) -> Self {
        Recorder {
            inner,
            log: Vec::new(),
            acked: None,
            nmi: false,
            hold_events,
            delivered: false,
            forward_int: false,
        }
    }
}

impl Platform for Recorder<'_> {
    fn pio_in(&mut self, port: u16, size: u8) -> u32 {
        let val = self.inner.pio_in(port, size);
        self.log.push(Access::PioIn { port, size, val });
        val
    }
    fn pio_out(&mut self, port: u16, size: u8, val: u32) {
        self.inner.pio_out(port, size, val);
        self.log.push(Access::PioOut { port, size, val });
    }
    fn mmio_read(&mut self, pa: GuestPhysAddr, size: u8) -> u64 {
        let val = self.inner.mmio_read(pa, size);
        self.log.push(Access::MmioRead {
            pa: pa.0,
            size,
            val,
        });
        val
    }
    fn mmio_write(&mut self, pa: GuestPhysAddr, size: u8, val: u64) {
        self.inner.mmio_write(pa, size, val);
        self.log.push(Access::MmioWrite {
            pa: pa.0,
            size,
            val,
        });
    }
    fn interrupt_pending(&self) -> bool {
        !self.hold_events && self.inner.interrupt_pending()
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        if self.hold_events {
            return None;
        }
        let v = self.inner.ack_interrupt();
        if v.is_some() {
            self.acked = v;
        }
        v
    }
    fn take_nmi(&mut self) -> bool {
        if self.hold_events {
            return false;
        }
        let n = self.inner.take_nmi();
        self.nmi |= n;
        n
    }
    fn stop_requested(&self) -> bool {
        self.inner.stop_requested()
    }
    fn tsc(&mut self) -> u64 {
        self.inner.tsc()
    }
    fn apic_base_changed(&mut self, apic_base: u64) {
        self.inner.apic_base_changed(apic_base)
    }
    fn tpr_changed(&mut self, cr8: u8) {
        self.inner.tpr_changed(cr8)
    }
    fn event(&mut self, ev: &CpuEvent) {
        if matches!(ev, CpuEvent::Interrupt { .. }) {
            self.delivered = true;
            if !self.forward_int {
                return;
            }
        }
        self.inner.event(ev)
    }
}

/// The interpreter's accesses of one step, handed out to KVM's exits in
/// order.
#[derive(Debug, Default)]
pub struct Replay {
    log: Vec<Access>,
    next: usize,
}

impl Replay {
    pub fn new(log: Vec<Access>) -> Self {
        Replay { log, next: 0 }
    }

    /// Accesses KVM has not made (yet).
    pub fn remaining(&self) -> &[Access] {
        self.log.get(self.next..).unwrap_or(&[])
    }

    fn mismatch(&self, kvm: String) -> String {
        let interp = match self.log.get(self.next) {
            Some(a) => a.to_string(),
            None => "no further device access".to_string(),
        };
        format!("device access differs: interpreter made {interp}, KVM made {kvm}")
    }

    /// KVM executes `IN` (or `INS`): fill `data` (`size` × count bytes)
    /// with what the interpreter read. `Err` describes a different access.
    pub fn pio_in(&mut self, port: u16, data: &mut [u8]) -> Result<(), String> {
        let mut off = 0;
        while off < data.len() {
            match self.log.get(self.next) {
                Some(&Access::PioIn { port: p, size, val })
                    if p == port && matches!(size, 1 | 2 | 4) =>
                {
                    let n = usize::from(size);
                    let Some(dst) = data.get_mut(off..off + n) else {
                        return Err(
                            self.mismatch(format!("IN port {port:#x} of {} bytes", data.len()))
                        );
                    };
                    dst.copy_from_slice(&val.to_le_bytes()[..n]);
                    off += n;
                    self.next += 1;
                }
                _ => return Err(self.mismatch(format!("IN port {port:#x} ({} bytes)", data.len()))),
            }
        }
        Ok(())
    }

    /// KVM executes `OUT` (or `OUTS`) with `data`.
    pub fn pio_out(&mut self, port: u16, data: &[u8]) -> Result<(), String> {
        let mut off = 0;
        while off < data.len() {
            match self.log.get(self.next) {
                Some(&Access::PioOut { port: p, size, val })
                    if p == port && matches!(size, 1 | 2 | 4) =>
                {
                    let n = usize::from(size);
                    let mine = &val.to_le_bytes()[..n];
                    if data.get(off..off + n) != Some(mine) {
                        return Err(self.mismatch(format!("OUT port {port:#x} <- {data:02x?}")));
                    }
                    off += n;
                    self.next += 1;
                }
                _ => return Err(self.mismatch(format!("OUT port {port:#x} <- {data:02x?}"))),
            }
        }
        Ok(())
    }

    /// KVM reads MMIO at `pa` into `data`.
    pub fn mmio_read(&mut self, pa: u64, data: &mut [u8]) -> Result<(), String> {
        match self.log.get(self.next) {
            Some(&Access::MmioRead { pa: a, size, val })
                if a == pa && usize::from(size) == data.len() && data.len() <= 8 =>
            {
                data.copy_from_slice(&val.to_le_bytes()[..data.len()]);
                self.next += 1;
                Ok(())
            }
            _ => Err(self.mismatch(format!("MMIO read {pa:#x} size {}", data.len()))),
        }
    }

    /// KVM writes `data` to MMIO at `pa`.
    pub fn mmio_write(&mut self, pa: u64, data: &[u8]) -> Result<(), String> {
        match self.log.get(self.next) {
            Some(&Access::MmioWrite { pa: a, size, val })
                if a == pa
                    && usize::from(size) == data.len()
                    && data.len() <= 8
                    && data == &val.to_le_bytes()[..data.len()] =>
            {
                self.next += 1;
                Ok(())
            }
            _ => Err(self.mismatch(format!("MMIO write {pa:#x} <- {data:02x?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_answers_and_checks_in_order() {
        let mut r = Replay::new(vec![
            Access::PioIn {
                port: 0x3fd,
                size: 1,
                val: 0x60,
            },
            Access::PioOut {
                port: 0x3f8,
                size: 1,
                val: 0x41,
            },
            Access::MmioRead {
                pa: 0xfee0_0030,
                size: 4,
                val: 0x50014,
            },
        ]);
        let mut b = [0u8; 1];
        r.pio_in(0x3fd, &mut b).unwrap();
        assert_eq!(b, [0x60]);
        // A different value written is a divergence.
        assert!(Replay::new(r.remaining().to_vec())
            .pio_out(0x3f8, &[0x42])
            .is_err());
        r.pio_out(0x3f8, &[0x41]).unwrap();
        let mut m = [0u8; 4];
        r.mmio_read(0xfee0_0030, &mut m).unwrap();
        assert_eq!(u32::from_le_bytes(m), 0x50014);
        assert!(r.remaining().is_empty());
        let e = r.pio_out(0x80, &[0]).unwrap_err();
        assert!(e.contains("no further device access"), "{e}");
    }

    #[test]
    fn string_in_takes_several_accesses() {
        let a = Access::PioIn {
            port: 0x1f0,
            size: 2,
            val: 0xbeef,
        };
        let mut r = Replay::new(vec![a, a]);
        let mut b = [0u8; 4];
        r.pio_in(0x1f0, &mut b).unwrap();
        assert_eq!(b, [0xef, 0xbe, 0xef, 0xbe]);
    }
}
