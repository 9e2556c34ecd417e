//! What the CPU needs from the machine around it.
//!
//! The interpreter is a CPU, not a computer: port I/O, MMIO, interrupt
//! acknowledgement and time come from a [`Platform`]. The tcg accelerator
//! implements it over the device board; tests implement it with a few
//! fields. The CPU never sees a device type, and devices never see the CPU.

use crate::event::CpuEvent;
use mmu::GuestPhysAddr;

/// The machine as seen from one CPU.
pub trait Platform {
    /// IN: read `size` (1, 2 or 4) bytes from `port`.
    fn pio_in(&mut self, port: u16, size: u8) -> u32;
    /// OUT: write the low `size` bytes of `val` to `port`.
    fn pio_out(&mut self, port: u16, size: u8, val: u32);
    /// Read `size` (1, 2, 4 or 8) bytes of MMIO at a non-RAM physical address.
    fn mmio_read(&mut self, pa: GuestPhysAddr, size: u8) -> u64;
    /// Write `size` bytes of MMIO at a non-RAM physical address.
    fn mmio_write(&mut self, pa: GuestPhysAddr, size: u8, val: u64);
    /// Cheap check, made at instruction boundaries while RFLAGS.IF = 1: is a
    /// maskable external interrupt pending?
    fn interrupt_pending(&self) -> bool;
    /// INTA: acknowledge the highest-priority pending maskable interrupt and
    /// return its vector. `None` if it went away (spurious).
    fn ack_interrupt(&mut self) -> Option<u8>;
    /// Is a non-maskable interrupt pending? Taking it clears it.
    fn take_nmi(&mut self) -> bool {
        false
    }
    /// The guest asked the machine to stop (debug-exit, reset): the CPU
    /// finishes the current instruction and returns [`crate::CpuExit::Stopped`].
    fn stop_requested(&self) -> bool;
    /// The time-stamp counter before the guest's offset (RDTSC, IA32_TSC).
    fn tsc(&mut self) -> u64;
    /// The local APIC base moved (WRMSR IA32_APIC_BASE).
    fn apic_base_changed(&mut self, _apic_base: u64) {}
    /// MOV to CR8: the new task-priority class (CR8 value, 0-15; the
    /// APIC's TPR is `cr8 << 4`) the interrupt controller must honour.
    fn tpr_changed(&mut self, _cr8: u8) {}
    /// A trace or trap event (enabled by [`crate::TraceFlags`]). Default: dropped.
    fn event(&mut self, _ev: &CpuEvent) {}
}
