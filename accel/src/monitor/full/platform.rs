//! The machine as the monitor's two CPUs see it: the board's
//! [`Platform`], with maskable interrupts gated by the *virtual* IF.
//!
//! The real CPU always runs with IF = 1 and intercepts external
//! interrupts; if it acknowledged one the guest can't take yet, the
//! monitor would have to hold it. Instead the real CPU is told that
//! nothing is pending while the guest's virtual IF is 0 (or, under para,
//! while the shared page's `irq_mask` is set), so the interrupt stays in
//! the controller until the guest can take it.
//!
//! The virtual CPU's deliveries are watched here too: the monitor learns
//! from them whether an emulated instruction ended in an exception.

use cpu::{CpuEvent, IntKind, Platform};
use mmu::{GuestPhysAddr, GuestRam, MachineAddr};
use std::sync::Arc;

/// Whether the guest can take a maskable interrupt.
#[derive(Clone)]
pub enum IrqGate {
    /// Fixed for this run (the virtual RFLAGS.IF).
    Fixed(bool),
    /// Under para: open while the shared page's `irq_mask` byte (at this
    /// machine address) is 0. Read at every check: the guest writes it
    /// with plain stores, without an exit.
    SharedMask(Arc<GuestRam>, u64),
}

impl IrqGate {
    pub fn open(&self) -> bool {
        match self {
            IrqGate::Fixed(b) => *b,
            IrqGate::SharedMask(ram, ma) => ram.read_le(MachineAddr(*ma), 1).is_ok_and(|m| m == 0),
        }
    }
}

/// A [`Platform`] wrapper for the monitor's CPUs.
pub struct GuestPlatform<'a> {
    pub inner: &'a mut dyn Platform,
    pub gate: IrqGate,
    /// Forward interrupt-delivery events (the user traces `int`).
    pub forward_int: bool,
    /// The last event delivered through the guest's IDT.
    pub delivered: Option<(u8, IntKind)>,
}

impl<'a> GuestPlatform<'a> {
    pub fn new(inner: &'a mut dyn Platform, gate: IrqGate, forward_int: bool) -> Self {
        GuestPlatform {
            inner,
            gate,
            forward_int,
            delivered: None,
        }
    }
}

impl Platform for GuestPlatform<'_> {
    fn pio_in(&mut self, port: u16, size: u8) -> u32 {
        self.inner.pio_in(port, size)
    }
    fn pio_out(&mut self, port: u16, size: u8, val: u32) {
        self.inner.pio_out(port, size, val)
    }
    fn mmio_read(&mut self, pa: GuestPhysAddr, size: u8) -> u64 {
        self.inner.mmio_read(pa, size)
    }
    fn mmio_write(&mut self, pa: GuestPhysAddr, size: u8, val: u64) {
        self.inner.mmio_write(pa, size, val)
    }
    fn interrupt_pending(&self) -> bool {
        self.gate.open() && self.inner.interrupt_pending()
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        self.inner.ack_interrupt()
    }
    fn take_nmi(&mut self) -> bool {
        self.inner.take_nmi()
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
        match ev {
            CpuEvent::Interrupt { vector, kind, .. } => {
                self.delivered = Some((*vector, *kind));
                if self.forward_int {
                    self.inner.event(ev);
                }
            }
            CpuEvent::DoubleFault { .. } if !self.forward_int => {}
            _ => self.inner.event(ev),
        }
    }
}
