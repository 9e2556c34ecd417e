//! The 16550A UART of COM1 (ports 0x3f8-0x3ff, IRQ 4), on vm-superio's
//! [`Serial`].
//!
//! vm-superio models the registers, the receive FIFO, the divisor latch,
//! loopback and the host output (written and flushed per byte, so
//! interactive output appears at once). This module adds what a PC needs
//! around it:
//!
//! * **Interrupt identification and the INTRPT level.** vm-superio's IIR is
//!   not a priority encoder and a read of it clears every source, so a
//!   driver that reads IIR and then drains the FIFO would see the line fall
//!   and rise again. As on a 16550 (and QEMU's model), this module derives
//!   IIR and the interrupt output from the conditions: *received data
//!   available* while the FIFO holds data (trigger level 1), above
//!   *transmitter holding register empty*, which is pending from a THR write
//!   (the byte leaves at once) or from enabling ETBEI, until IIR reports it
//!   or THR is written again. The line is high while an enabled condition is
//!   pending, so the 8259 sees one rising edge per burst.
//! * **The transmitter is always idle**: LSR.THRE and LSR.TEMT read as set.
//! * Line-status and modem-status interrupts are not generated (no line
//!   errors, no modem lines change).

use crate::bus::PioDevice;
use std::cell::Cell;
use std::convert::Infallible;
use std::io::Write;
use vm_superio::serial::{Serial, SerialEvents};
use vm_superio::Trigger;

/// COM1's I/O base.
pub const COM1_PORT: u16 = 0x3f8;
/// Ports used by one 16550.
pub const UART_PORTS: u32 = 8;
/// COM1's ISA interrupt line.
pub const COM1_IRQ: u8 = 4;

// Register offsets (16550 datasheet; DLAB = LCR bit 7 selects DLL/DLM at 0/1).
const RBR_THR: u8 = 0;
const IER: u8 = 1;
const IIR: u8 = 2;
const LCR: u8 = 3;
const MCR: u8 = 4;
const LSR: u8 = 5;

const IER_RDA: u8 = 0x01;
const IER_THRE: u8 = 0x02;
/// IIR: no interrupt pending; FIFOs enabled (16550A identification).
const IIR_NONE: u8 = 0x01;
const IIR_THRE: u8 = 0x02;
const IIR_RDA: u8 = 0x04;
const IIR_FIFO: u8 = 0xc0;
const LCR_DLAB: u8 = 0x80;
const MCR_LOOP: u8 = 0x10;

/// vm-superio's notification hook; unused because the interrupt level is
/// derived from the conditions (see module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrigger;

impl Trigger for NoTrigger {
    type E = Infallible;
    fn trigger(&self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Counters fed by vm-superio's event callbacks. `Cell`: the callbacks
/// take `&self`, and the UART lives on one thread at a time.
#[derive(Debug, Default)]
pub struct UartEvents {
    tx_bytes: Cell<u64>,
    tx_lost: Cell<u64>,
}

impl SerialEvents for UartEvents {
    fn buffer_read(&self) {}
    fn out_byte(&self) {
        self.tx_bytes.set(self.tx_bytes.get() + 1);
    }
    fn tx_lost_byte(&self) {
        self.tx_lost.set(self.tx_lost.get() + 1);
    }
    fn in_buffer_empty(&self) {}
}

/// UART counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UartStats {
    /// Bytes the guest transmitted to the host writer.
    pub tx_bytes: u64,
    /// Bytes lost because the host writer failed.
    pub tx_lost: u64,
    /// Bytes of host input accepted into the receive FIFO.
    pub rx_bytes: u64,
}

/// A 16550A whose transmitter writes to a host writer.
pub struct Uart {
    serial: Serial<NoTrigger, UartEvents, Box<dyn Write + Send>>,
    /// Receive FIFO size (vm-superio's capacity when empty).
    fifo_size: usize,
    /// Mirrors of IER, LCR and MCR, so the interrupt logic needs no
    /// register reads (vm-superio shows DLM at offset 1 while DLAB is set).
    ier: u8,
    lcr: u8,
    mcr: u8,
    /// THRE interrupt condition (see module docs).
    thre_pending: bool,
    rx_bytes: u64,
}

impl Uart {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        let serial = Serial::with_events(NoTrigger, UartEvents::default(), out);
        let fifo_size = serial.fifo_capacity();
        let state = serial.state();
        Self {
            serial,
            fifo_size,
            ier: state.interrupt_enable,
            lcr: state.line_control,
            mcr: state.modem_control,
            thre_pending: false,
            rx_bytes: 0,
        }
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    /// Received data available (LSR.DR).
    fn data_ready(&self) -> bool {
        self.serial.fifo_capacity() < self.fifo_size
    }

    /// The interrupt identification, highest priority first.
    fn iir(&self) -> u8 {
        let id = if self.ier & IER_RDA != 0 && self.data_ready() {
            IIR_RDA
        } else if self.ier & IER_THRE != 0 && self.thre_pending {
            IIR_THRE
        } else {
            IIR_NONE
        };
        IIR_FIFO | id
    }

    /// Read register `offset` (0-7).
    pub fn read_reg(&mut self, offset: u8) -> u8 {
        let offset = offset & 7;
        if offset == IIR {
            let iir = self.iir();
            // Reading IIR acknowledges a THRE interrupt it reports.
            if iir & 0x0f == IIR_THRE {
                self.thre_pending = false;
            }
            return iir;
        }
        self.serial.read(offset)
    }

    /// Write register `offset` (0-7). Output errors of the host writer lose
    /// the byte (counted in [`UartStats::tx_lost`]); the guest never sees
    /// them, as on a real line with nobody listening.
    pub fn write_reg(&mut self, offset: u8, val: u8) {
        let offset = offset & 7;
        let _ = self.serial.write(offset, val);
        match offset {
            RBR_THR if !self.dlab() => {
                // The byte moved to the (instant) shift register: THR is
                // empty again.
                self.thre_pending = true;
            }
            IER if !self.dlab() => {
                let old = self.ier;
                self.ier = val & 0x0f;
                if self.ier & IER_THRE != 0 && old & IER_THRE == 0 {
                    self.thre_pending = true;
                }
            }
            LCR => self.lcr = val,
            MCR => self.mcr = val,
            _ => {}
        }
    }

    /// Level of the INTRPT output: an enabled condition is pending.
    pub fn irq_level(&self) -> bool {
        self.iir() & 0x0f != IIR_NONE
    }

    /// Free space in the receive FIFO.
    pub fn rx_capacity(&self) -> usize {
        self.serial.fifo_capacity()
    }

    /// Loopback mode (MCR bit 4): the receiver hears only the transmitter.
    pub fn in_loopback(&self) -> bool {
        self.mcr & MCR_LOOP != 0
    }

    /// Feed host input into the receive FIFO as far as it has room; returns
    /// how many bytes were taken (0 when full or in loopback mode).
    pub fn receive(&mut self, bytes: &[u8]) -> usize {
        if bytes.is_empty() || self.rx_capacity() == 0 || self.in_loopback() {
            return 0;
        }
        let n = self.serial.enqueue_raw_bytes(bytes).unwrap_or(0);
        self.rx_bytes += n as u64;
        n
    }

    /// Line status register (reads have no side effects).
    pub fn lsr(&mut self) -> u8 {
        self.serial.read(LSR)
    }

    pub fn stats(&self) -> UartStats {
        let ev = self.serial.events();
        UartStats {
            tx_bytes: ev.tx_bytes.get(),
            tx_lost: ev.tx_lost.get(),
            rx_bytes: self.rx_bytes,
        }
    }
}

impl PioDevice for Uart {
    /// A wide access reaches consecutive registers, one byte each (the
    /// 16550 is an 8-bit ISA device).
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.read_reg((offset as usize + i) as u8);
        }
    }

    fn write(&mut self, offset: u16, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.write_reg((offset as usize + i) as u8, *b);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test keeps a handle to.
    #[derive(Clone, Default)]
    pub(crate) struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuf {
        pub(crate) fn contents(&self) -> Vec<u8> {
            self.0.lock().unwrap().clone()
        }
    }

    fn uart() -> (Uart, SharedBuf) {
        let buf = SharedBuf::default();
        (Uart::new(Box::new(buf.clone())), buf)
    }

    #[test]
    fn output_reaches_writer_and_lsr_idle() {
        let (mut u, buf) = uart();
        assert_eq!(u.read_reg(LSR) & 0x60, 0x60, "THRE and TEMT set when idle");
        for b in b"hi\n" {
            u.write_reg(RBR_THR, *b);
            assert_eq!(u.read_reg(LSR) & 0x60, 0x60);
        }
        assert_eq!(buf.contents(), b"hi\n");
        assert_eq!(u.stats().tx_bytes, 3);
        // Divisor latch access does not transmit.
        u.write_reg(LCR, 0x80);
        u.write_reg(0, 0x01);
        u.write_reg(LCR, 0x03);
        assert_eq!(buf.contents(), b"hi\n");
        // A 16-bit OUT to 0x3f8 writes THR and IER.
        u.write(0, &[b'!', 0x00]);
        assert_eq!(buf.contents(), b"hi\n!");
    }

    #[test]
    fn input_readable_and_raises_irq_when_enabled() {
        let (mut u, _) = uart();
        assert_eq!(u.receive(b"ab"), 2);
        assert_eq!(u.read_reg(LSR) & 1, 1, "data ready");
        assert!(!u.irq_level(), "IER disabled: no interrupt");
        u.write_reg(IER, IER_RDA);
        assert!(u.irq_level(), "enabling RDA with data waiting asserts it");
        assert_eq!(u.read_reg(IIR), 0xc4, "IIR says RDA");
        assert!(u.irq_level(), "reading IIR does not clear RDA");
        // Reading one byte with data remaining keeps the interrupt up.
        assert_eq!(u.read_reg(RBR_THR), b'a');
        assert!(u.irq_level());
        assert_eq!(u.read_reg(RBR_THR), b'b');
        assert!(!u.irq_level(), "drained: interrupt drops");
        assert_eq!(u.read_reg(LSR) & 1, 0);
        assert_eq!(u.stats().rx_bytes, 2);
    }

    #[test]
    fn thre_interrupt_acknowledged_by_iir_read() {
        let (mut u, _) = uart();
        u.write_reg(IER, IER_THRE);
        assert!(u.irq_level(), "THR empty and enabled");
        assert_eq!(u.read_reg(IIR), 0xc2);
        assert!(!u.irq_level(), "IIR read acknowledges THRE");
        assert_eq!(u.read_reg(IIR), 0xc1, "nothing pending");
        u.write_reg(RBR_THR, b'x');
        assert!(u.irq_level(), "THR emptied again");
        u.write_reg(IER, 0);
        assert!(!u.irq_level(), "disabled in IER");
        // RDA outranks THRE; THRE stays pending behind it.
        u.write_reg(IER, IER_RDA | IER_THRE);
        u.receive(b"k");
        assert_eq!(u.read_reg(IIR), 0xc4);
        assert_eq!(u.read_reg(RBR_THR), b'k');
        assert_eq!(u.read_reg(IIR), 0xc2);
        assert!(!u.irq_level());
        // With DLAB set, offset 1 is DLM, not IER.
        u.write_reg(LCR, 0x83);
        u.write_reg(IER, 0x00);
        u.write_reg(LCR, 0x03);
        assert_eq!(u.read_reg(IER), IER_RDA | IER_THRE);
    }

    #[test]
    fn fifo_bounded_and_loopback_refuses_host_input() {
        let (mut u, _) = uart();
        let big = [b'z'; 100];
        assert_eq!(u.receive(&big), 64);
        assert_eq!(u.receive(&big), 0);
        let (mut u, _) = uart();
        u.write_reg(MCR, MCR_LOOP);
        assert_eq!(u.receive(b"q"), 0);
        u.write_reg(RBR_THR, b'L');
        assert_eq!(u.read_reg(RBR_THR), b'L', "loopback echoes THR");
    }
}
