//! The PC's two 8259A programmable interrupt controllers: the master at
//! 0x20/0x21 (IRQ 0-7) and the slave at 0xa0/0xa1 (IRQ 8-15) cascaded into
//! master IR2, plus the PIIX/ICH edge/level control registers (ELCR) at
//! 0x4d0/0x4d1.
//!
//! Vocabulary and behaviour follow the Intel 8259A datasheet:
//! IRR (interrupt request), ISR (in service), IMR (mask), ICW1-ICW4
//! (initialization), OCW1-OCW3 (operation), INTA (acknowledge cycle).
//!
//! Modelling choices:
//! * An edge-triggered request is latched in IRR on the rising edge and
//!   stays there until acknowledged, even if the line falls first (as QEMU
//!   and KVM do): time is sampled, so a timer's short OUT pulse may be seen
//!   only as "there was an edge". A level-triggered request (ELCR, or LTIM in
//!   ICW1) follows the line.
//! * If nothing is requested at INTA (a level request went away, or the
//!   request was masked meanwhile), the chip answers with IR7 of its vector
//!   base without setting ISR: the spurious IRQ 7 / IRQ 15 of the datasheet.
//! * ICW4 µPM = 0 (8080/8085 mode) and buffered mode are recorded but x86
//!   vectors are always produced; single mode (SNGL) only skips ICW3 — the
//!   PC wiring of the slave on IR2 is fixed.
//! * Power-on state is that of QEMU's and KVM's 8259 model (all registers
//!   zero, vector base 0, nothing masked), so guests that do not program the
//!   PIC behave the same on `--accel tcg` and on KVM's in-kernel PIC.

use crate::bus::PioDevice;

/// Master command/status port (OCW2/OCW3/ICW1 writes; IRR/ISR/poll reads).
pub const PIC_MASTER_PORT: u16 = 0x20;
/// Slave command/status port.
pub const PIC_SLAVE_PORT: u16 = 0xa0;
/// Edge/level control registers (master at +0, slave at +1).
pub const ELCR_PORT: u16 = 0x4d0;
/// The master input the slave's INT output drives.
pub const CASCADE_IRQ: u8 = 2;

/// Which 8259 of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chip {
    Master = 0,
    Slave = 1,
}

/// Where we are in the ICW1..ICW4 sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Init {
    #[default]
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Debug, Clone, Default)]
struct I8259 {
    irr: u8,
    isr: u8,
    imr: u8,
    /// Current levels of the IR inputs (the edge detector's memory).
    lines: u8,
    /// ELCR: inputs in level-triggered mode.
    elcr: u8,
    /// ELCR bits that exist (IRQ 0, 1, 2, 8, 13 are always edge on a PC).
    elcr_mask: u8,
    /// ICW1 LTIM: all inputs level-triggered.
    ltim: bool,
    /// The IR with the highest priority (rotation: OCW2 R / set priority).
    lowest_priority_plus_one: u8,
    vector_base: u8,
    /// OCW3 RIS: status reads return ISR instead of IRR.
    read_isr: bool,
    /// OCW3 P: the next read is a poll.
    poll: bool,
    /// OCW3 SMM: special mask mode.
    special_mask: bool,
    init: Init,
    /// ICW1 IC4.
    icw4_needed: bool,
    /// ICW1 SNGL.
    single: bool,
    icw3: u8,
    /// ICW4 AEOI.
    auto_eoi: bool,
    /// OCW2 "rotate in automatic EOI mode".
    rotate_on_aeoi: bool,
    /// ICW4 SFNM: special fully nested mode.
    sfnm: bool,
    /// ICW4 as written (µPM, BUF, M/S are recorded only).
    icw4: u8,
}

/// Bit of IR `irq` (0-7).
fn bit(irq: u8) -> u8 {
    1u8 << (irq & 7)
}

impl I8259 {
    fn new(elcr_mask: u8) -> Self {
        Self {
            elcr_mask,
            ..Self::default()
        }
    }

    fn level_mask(&self) -> u8 {
        if self.ltim {
            0xff
        } else {
            self.elcr
        }
    }

    /// Priority rank of the highest-priority bit of `mask` (0 = highest),
    /// given the current rotation.
    fn rank(&self, mask: u8) -> Option<u8> {
        (0..8u8).find(|r| mask & bit(r.wrapping_add(self.lowest_priority_plus_one)) != 0)
    }

    fn irq_of_rank(&self, rank: u8) -> u8 {
        rank.wrapping_add(self.lowest_priority_plus_one) & 7
    }

    /// The IR this chip would present at INTA, if its INT output is high.
    /// `is_master` enables the SFNM rule for the cascade input.
    fn output(&self, is_master: bool) -> Option<u8> {
        let req = self.rank(self.irr & !self.imr)?;
        let irq = self.irq_of_rank(req);
        // In special mask mode, masked in-service levels don't block.
        let in_service = if self.special_mask {
            self.isr & !self.imr
        } else {
            self.isr
        };
        match self.rank(in_service) {
            None => Some(irq),
            Some(cur) if req < cur => Some(irq),
            // SFNM: the cascade input may interrupt its own in-service
            // level, so a higher-priority slave request gets through.
            Some(cur) if req == cur && is_master && self.sfnm && irq == CASCADE_IRQ => Some(irq),
            Some(_) => None,
        }
    }

    /// Drive IR input `irq` to `level`.
    fn set_line(&mut self, irq: u8, level: bool) {
        let m = bit(irq);
        if self.level_mask() & m != 0 {
            if level {
                self.irr |= m;
            } else {
                self.irr &= !m;
            }
        } else if level && self.lines & m == 0 {
            self.irr |= m;
        }
        if level {
            self.lines |= m;
        } else {
            self.lines &= !m;
        }
    }

    /// The acknowledge of IR `irq`: IRR -> ISR (or automatic EOI).
    fn intack(&mut self, irq: u8) {
        let m = bit(irq);
        if self.auto_eoi {
            if self.rotate_on_aeoi {
                self.lowest_priority_plus_one = (irq + 1) & 7;
            }
        } else {
            self.isr |= m;
        }
        // A level request stays in IRR while the line is high.
        if self.level_mask() & m == 0 {
            self.irr &= !m;
        }
    }

    /// The poll word (OCW3 P=1, then a read): bit 7 = request present,
    /// bits 2:0 = its level; the read acts as INTA.
    fn poll_read(&mut self, is_master: bool) -> u8 {
        self.poll = false;
        match self.output(is_master) {
            Some(irq) => {
                self.intack(irq);
                0x80 | irq
            }
            None => 0,
        }
    }

    fn eoi_highest(&mut self, rotate: bool) {
        if let Some(r) = self.rank(self.isr) {
            let irq = self.irq_of_rank(r);
            self.isr &= !bit(irq);
            if rotate {
                self.lowest_priority_plus_one = (irq + 1) & 7;
            }
        }
    }

    /// ICW1: start initialization. Datasheet: edge sense reset (an input
    /// must make a low-to-high transition to request: latched edges are
    /// dropped, and a line already high stays without request until it
    /// falls and rises), IMR cleared, IR7 lowest priority, special mask mode
    /// off, status read = IRR, ICW4 functions zeroed if IC4 = 0. ISR is
    /// cleared as well (QEMU, KVM), so a re-initialised chip has nothing
    /// stuck in service.
    fn icw1(&mut self, v: u8) {
        self.ltim = v & 0x08 != 0;
        let lm = self.level_mask();
        self.irr = self.lines & lm;
        self.isr = 0;
        self.imr = 0;
        self.lowest_priority_plus_one = 0;
        self.read_isr = false;
        self.poll = false;
        self.special_mask = false;
        self.icw4_needed = v & 0x01 != 0;
        self.single = v & 0x02 != 0;
        self.auto_eoi = false;
        self.rotate_on_aeoi = false;
        self.sfnm = false;
        self.icw4 = 0;
        self.init = Init::Icw2;
    }

    fn ocw2(&mut self, v: u8) {
        let level = v & 7;
        match v >> 5 {
            0b001 => self.eoi_highest(false),
            0b011 => self.isr &= !bit(level),
            0b101 => self.eoi_highest(true),
            0b100 => self.rotate_on_aeoi = true,
            0b000 => self.rotate_on_aeoi = false,
            0b111 => {
                self.isr &= !bit(level);
                self.lowest_priority_plus_one = (level + 1) & 7;
            }
            0b110 => self.lowest_priority_plus_one = (level + 1) & 7,
            _ => {} // 0b010: no operation
        }
    }

    fn ocw3(&mut self, v: u8) {
        if v & 0x04 != 0 {
            self.poll = true;
        }
        if v & 0x02 != 0 {
            self.read_isr = v & 0x01 != 0;
        }
        if v & 0x40 != 0 {
            self.special_mask = v & 0x20 != 0;
        }
    }

    fn write(&mut self, a0: bool, v: u8) {
        if !a0 {
            if v & 0x10 != 0 {
                self.icw1(v);
            } else if v & 0x08 != 0 {
                self.ocw3(v);
            } else {
                self.ocw2(v);
            }
            return;
        }
        match self.init {
            Init::Ready => self.imr = v, // OCW1
            Init::Icw2 => {
                self.vector_base = v & 0xf8;
                self.init = if !self.single {
                    Init::Icw3
                } else if self.icw4_needed {
                    Init::Icw4
                } else {
                    Init::Ready
                };
            }
            Init::Icw3 => {
                self.icw3 = v;
                self.init = if self.icw4_needed {
                    Init::Icw4
                } else {
                    Init::Ready
                };
            }
            Init::Icw4 => {
                self.icw4 = v & 0x1f;
                self.auto_eoi = v & 0x02 != 0;
                self.sfnm = v & 0x10 != 0;
                self.init = Init::Ready;
            }
        }
    }

    fn read(&mut self, a0: bool, is_master: bool) -> u8 {
        if self.poll {
            return self.poll_read(is_master);
        }
        match (a0, self.read_isr) {
            (true, _) => self.imr,
            (false, true) => self.isr,
            (false, false) => self.irr,
        }
    }

    fn set_elcr(&mut self, v: u8) {
        self.elcr = v & self.elcr_mask;
        // A line now level-triggered requests exactly while it is high.
        let lm = self.level_mask();
        self.irr = (self.irr & !lm) | (self.lines & lm);
    }
}

/// A snapshot of one chip's registers, for debugging and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChipState {
    pub irr: u8,
    pub isr: u8,
    pub imr: u8,
    pub elcr: u8,
    pub vector_base: u8,
    pub auto_eoi: bool,
    pub special_mask: bool,
    pub initializing: bool,
}

/// Counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PicStats {
    /// INTA cycles.
    pub acks: u64,
    /// INTA cycles answered with a spurious IR7/IR15.
    pub spurious: u64,
}

/// The cascaded master/slave pair.
#[derive(Debug, Clone)]
pub struct Pic {
    chips: [I8259; 2],
    stats: PicStats,
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    pub fn new() -> Self {
        Self {
            // PIIX ELCR: IRQ 0, 1, 2 (master) and 8, 13 (slave) are edge only.
            chips: [I8259::new(0xf8), I8259::new(0xde)],
            stats: PicStats::default(),
        }
    }

    /// Power-on with the IR inputs already at `levels` (bit n = line n),
    /// e.g. a timer output that is high from reset. Nothing is requested:
    /// a request needs a transition after power-on.
    pub fn with_line_levels(levels: u16) -> Self {
        let mut p = Self::new();
        let [lo, hi] = levels.to_le_bytes();
        p.chips[0].lines = lo & !bit(CASCADE_IRQ);
        p.chips[1].lines = hi;
        p
    }

    fn chip(&mut self, c: Chip) -> &mut I8259 {
        match c {
            Chip::Master => &mut self.chips[0],
            Chip::Slave => &mut self.chips[1],
        }
    }

    /// Propagate the slave's INT output to master IR2.
    fn update_cascade(&mut self) {
        let slave_int = self.chips[1].output(false).is_some();
        self.chips[0].set_line(CASCADE_IRQ, slave_int);
    }

    /// Drive ISA interrupt line `line` (0-15) to `level`. Line 2 is the
    /// cascade and not an external input; it and lines above 15 are ignored.
    pub fn set_irq(&mut self, line: u8, level: bool) {
        match line {
            0..=7 if line != CASCADE_IRQ => self.chips[0].set_line(line, level),
            8..=15 => {
                self.chips[1].set_line(line - 8, level);
                self.update_cascade();
            }
            _ => {}
        }
    }

    /// The master's INT output (the CPU's INTR pin, or LINT0).
    pub fn interrupt_pending(&self) -> bool {
        self.chips[0].output(true).is_some()
    }

    /// The INTA cycle: returns the vector and moves the request to ISR
    /// (unless AEOI). Through the cascade when the master picks IR2. If
    /// the request vanished, returns the spurious IR7 vector of the chip
    /// that found nothing, without setting its ISR.
    pub fn acknowledge(&mut self) -> u8 {
        self.stats.acks += 1;
        let vector = match self.chips[0].output(true) {
            Some(irq) => {
                self.chips[0].intack(irq);
                if irq == CASCADE_IRQ && !self.chips[0].single {
                    match self.chips[1].output(false) {
                        Some(irq2) => {
                            self.chips[1].intack(irq2);
                            self.chips[1].vector_base | irq2
                        }
                        None => {
                            self.stats.spurious += 1;
                            self.chips[1].vector_base | 7
                        }
                    }
                } else {
                    self.chips[0].vector_base | irq
                }
            }
            None => {
                self.stats.spurious += 1;
                self.chips[0].vector_base | 7
            }
        };
        self.update_cascade();
        vector
    }

    /// A read of port `offset` (0 or 1) of `chip`.
    pub fn read_port(&mut self, chip: Chip, offset: u16) -> u8 {
        let a0 = offset & 1 != 0;
        let v = match chip {
            Chip::Master => self.chips[0].read(a0, true),
            Chip::Slave => {
                let polled = self.chips[1].poll;
                let v = self.chips[1].read(a0, false);
                if polled && self.chips[1].output(false).is_none() {
                    // The poll served the slave's request: it must not
                    // also be delivered later through the master's IR2
                    // edge latch.
                    self.chips[0].irr &= !bit(CASCADE_IRQ);
                }
                v
            }
        };
        self.update_cascade();
        v
    }

    /// A write to port `offset` (0 or 1) of `chip`.
    pub fn write_port(&mut self, chip: Chip, offset: u16, val: u8) {
        self.chip(chip).write(offset & 1 != 0, val);
        self.update_cascade();
    }

    /// ELCR of `chip`.
    pub fn elcr(&self, chip: Chip) -> u8 {
        self.chips[chip as usize].elcr
    }

    pub fn set_elcr(&mut self, chip: Chip, val: u8) {
        self.chip(chip).set_elcr(val);
        self.update_cascade();
    }

    pub fn state(&self, chip: Chip) -> ChipState {
        let c = &self.chips[chip as usize];
        ChipState {
            irr: c.irr,
            isr: c.isr,
            imr: c.imr,
            elcr: c.elcr,
            vector_base: c.vector_base,
            auto_eoi: c.auto_eoi,
            special_mask: c.special_mask,
            initializing: c.init != Init::Ready,
        }
    }

    pub fn stats(&self) -> PicStats {
        self.stats
    }

    /// The port-I/O view of one chip's command/data pair.
    pub fn chip_io(&mut self, chip: Chip) -> ChipIo<'_> {
        ChipIo { pic: self, chip }
    }

    /// The port-I/O view of the two ELCR bytes.
    pub fn elcr_io(&mut self) -> ElcrIo<'_> {
        ElcrIo { pic: self }
    }
}

/// [`PioDevice`] view of one 8259 (2 ports). Wide accesses reach
/// consecutive ports a byte at a time.
pub struct ChipIo<'a> {
    pic: &'a mut Pic,
    chip: Chip,
}

impl PioDevice for ChipIo<'_> {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.pic.read_port(self.chip, offset.wrapping_add(i as u16));
        }
    }
    fn write(&mut self, offset: u16, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.pic
                .write_port(self.chip, offset.wrapping_add(i as u16), *b);
        }
    }
}

/// [`PioDevice`] view of ELCR1/ELCR2 (0x4d0/0x4d1).
pub struct ElcrIo<'a> {
    pic: &'a mut Pic,
}

impl ElcrIo<'_> {
    fn chip(off: u16) -> Chip {
        if off & 1 == 0 {
            Chip::Master
        } else {
            Chip::Slave
        }
    }
}

impl PioDevice for ElcrIo<'_> {
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.pic.elcr(Self::chip(offset.wrapping_add(i as u16)));
        }
    }
    fn write(&mut self, offset: u16, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.pic
                .set_elcr(Self::chip(offset.wrapping_add(i as u16)), *b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Chip::{Master, Slave};

    /// The initialization Linux and most kernels use: edge, cascade,
    /// ICW4 x86 mode, vector bases 0x20 / 0x28.
    fn init_pair(p: &mut Pic, master_base: u8, slave_base: u8, icw4: u8) {
        p.write_port(Master, 0, 0x11);
        p.write_port(Master, 1, master_base);
        p.write_port(Master, 1, 0x04);
        p.write_port(Master, 1, icw4);
        p.write_port(Slave, 0, 0x11);
        p.write_port(Slave, 1, slave_base);
        p.write_port(Slave, 1, 0x02);
        p.write_port(Slave, 1, icw4);
    }

    fn pic() -> Pic {
        let mut p = Pic::new();
        init_pair(&mut p, 0x20, 0x28, 0x01);
        p.write_port(Master, 1, 0x00);
        p.write_port(Slave, 1, 0x00);
        p
    }

    fn pulse(p: &mut Pic, line: u8) {
        p.set_irq(line, true);
        p.set_irq(line, false);
    }

    fn eoi(p: &mut Pic, chip: Chip) {
        p.write_port(chip, 0, 0x20);
    }

    #[test]
    fn init_sequence_sets_bases_and_imr_reads_back() {
        let mut p = Pic::new();
        p.write_port(Master, 1, 0x5a);
        assert_eq!(p.read_port(Master, 1), 0x5a);
        init_pair(&mut p, 0x20, 0x28, 0x01);
        assert_eq!(p.read_port(Master, 1), 0x00, "ICW1 clears IMR");
        assert!(!p.state(Master).initializing);
        assert_eq!(p.state(Master).vector_base, 0x20);
        assert_eq!(p.state(Slave).vector_base, 0x28);
        p.write_port(Master, 1, 0xff);
        p.write_port(Slave, 1, 0xff);
        assert_eq!(p.read_port(Master, 1), 0xff);
        assert_eq!(p.read_port(Slave, 1), 0xff);
        // Low 3 bits of ICW2 are not part of the base.
        let mut q = Pic::new();
        init_pair(&mut q, 0x27, 0x2f, 0x01);
        assert_eq!(q.state(Master).vector_base, 0x20);
        // Single mode, no ICW4: ICW2 then ready.
        let mut s = Pic::new();
        s.write_port(Master, 0, 0x12);
        s.write_port(Master, 1, 0x40);
        assert!(!s.state(Master).initializing);
        s.write_port(Master, 1, 0xfe);
        assert_eq!(s.read_port(Master, 1), 0xfe);
    }

    #[test]
    fn edge_request_ack_eoi() {
        let mut p = pic();
        assert!(!p.interrupt_pending());
        pulse(&mut p, 0);
        assert!(
            p.interrupt_pending(),
            "latched edge survives the line falling"
        );
        assert_eq!(p.acknowledge(), 0x20);
        assert!(!p.interrupt_pending());
        assert_eq!(p.state(Master).isr, 0x01);
        // OCW3: read ISR, then IRR.
        p.write_port(Master, 0, 0x0b);
        assert_eq!(p.read_port(Master, 0), 0x01);
        p.write_port(Master, 0, 0x0a);
        assert_eq!(p.read_port(Master, 0), 0x00);
        eoi(&mut p, Master);
        assert_eq!(p.state(Master).isr, 0);
        // A line held high gives one request, not a stream.
        p.set_irq(1, true);
        assert_eq!(p.acknowledge(), 0x21);
        eoi(&mut p, Master);
        assert!(!p.interrupt_pending());
    }

    #[test]
    fn masking() {
        let mut p = pic();
        p.write_port(Master, 1, 0x01);
        pulse(&mut p, 0);
        assert!(!p.interrupt_pending(), "masked");
        assert_eq!(p.state(Master).irr, 0x01, "but requested");
        p.write_port(Master, 1, 0x00);
        assert!(p.interrupt_pending(), "unmasking delivers the held request");
        assert_eq!(p.acknowledge(), 0x20);
    }

    #[test]
    fn priority_and_nesting() {
        let mut p = pic();
        pulse(&mut p, 3);
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x21, "IR1 beats IR3");
        assert!(!p.interrupt_pending(), "IR3 waits for IR1's EOI");
        pulse(&mut p, 0);
        assert!(p.interrupt_pending(), "IR0 preempts IR1");
        assert_eq!(p.acknowledge(), 0x20);
        assert_eq!(p.state(Master).isr, 0x03);
        eoi(&mut p, Master); // clears IR0 (highest in service)
        assert_eq!(p.state(Master).isr, 0x02);
        eoi(&mut p, Master);
        assert_eq!(p.acknowledge(), 0x23);
        // Specific EOI.
        p.write_port(Master, 0, 0x63);
        assert_eq!(p.state(Master).isr, 0);
    }

    #[test]
    fn rotation() {
        let mut p = pic();
        pulse(&mut p, 0);
        assert_eq!(p.acknowledge(), 0x20);
        p.write_port(Master, 0, 0xa0); // rotate on non-specific EOI: IR0 lowest
        pulse(&mut p, 0);
        pulse(&mut p, 5);
        assert_eq!(p.acknowledge(), 0x25, "after rotation IR5 beats IR0");
        p.write_port(Master, 0, 0x20);
        // Set priority: IR7 lowest again.
        p.write_port(Master, 0, 0xc7);
        pulse(&mut p, 5);
        assert_eq!(p.acknowledge(), 0x20, "IR0 highest again");
    }

    #[test]
    fn cascade() {
        let mut p = pic();
        pulse(&mut p, 12);
        assert!(p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x2c);
        assert_eq!(p.state(Master).isr, 0x04, "master IR2 in service");
        assert_eq!(p.state(Slave).isr, 0x10);
        // A second slave request of lower priority waits.
        pulse(&mut p, 14);
        assert!(!p.interrupt_pending());
        eoi(&mut p, Slave);
        assert!(!p.interrupt_pending(), "master IR2 still in service");
        eoi(&mut p, Master);
        assert!(p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x2e);
        eoi(&mut p, Slave);
        eoi(&mut p, Master);
        // Slave mask applies.
        p.write_port(Slave, 1, 0x01);
        pulse(&mut p, 8);
        assert!(!p.interrupt_pending());
        // Master IR1 beats slave requests; master IR3 does not.
        p.write_port(Slave, 1, 0x00);
        pulse(&mut p, 3);
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x21);
        eoi(&mut p, Master);
        assert_eq!(p.acknowledge(), 0x28);
        eoi(&mut p, Slave);
        eoi(&mut p, Master);
        assert_eq!(p.acknowledge(), 0x23);
        // External line 2 is the cascade: ignored.
        eoi(&mut p, Master);
        pulse(&mut p, 2);
        assert!(!p.interrupt_pending());
    }

    #[test]
    fn special_fully_nested_lets_higher_slave_request_through() {
        let mut p = Pic::new();
        init_pair(&mut p, 0x20, 0x28, 0x11);
        pulse(&mut p, 12);
        assert_eq!(p.acknowledge(), 0x2c);
        pulse(&mut p, 9);
        assert!(p.interrupt_pending(), "SFNM: IR2 may nest");
        assert_eq!(p.acknowledge(), 0x29);
        pulse(&mut p, 14);
        assert!(!p.interrupt_pending(), "lower slave priority still waits");
    }

    #[test]
    fn spurious_irq7_and_irq15() {
        let mut p = pic();
        // Level-triggered IRQ 5 goes away before INTA.
        p.set_elcr(Master, 0x20);
        assert_eq!(p.elcr(Master), 0x20);
        p.set_irq(5, true);
        assert!(p.interrupt_pending());
        p.set_irq(5, false);
        assert!(!p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x27, "spurious IRQ7");
        assert_eq!(p.state(Master).isr, 0, "spurious does not set ISR");
        // Slave request masked after it reached the master.
        pulse(&mut p, 10);
        p.write_port(Slave, 1, 0x04);
        assert!(p.interrupt_pending(), "master IR2 edge latched");
        assert_eq!(p.acknowledge(), 0x2f, "spurious IRQ15");
        assert_eq!(p.state(Slave).isr, 0);
        assert_eq!(
            p.state(Master).isr,
            0x04,
            "master IR2 in service: OS must EOI it"
        );
        assert_eq!(p.stats().spurious, 2);
    }

    #[test]
    fn level_triggered_reasserts_until_line_drops() {
        let mut p = pic();
        p.set_elcr(Slave, 0xff);
        assert_eq!(p.elcr(Slave), 0xde, "IRQ 8 and 13 cannot be level");
        p.set_irq(11, true);
        assert_eq!(p.acknowledge(), 0x2b);
        eoi(&mut p, Slave);
        eoi(&mut p, Master);
        assert!(p.interrupt_pending(), "line still high: requested again");
        p.set_irq(11, false);
        assert_eq!(p.state(Slave).irr, 0, "level request follows the line");
        // The master's IR2 edge latch still holds the cascade request
        // (QEMU and KVM do the same): the INTA finds nothing on the slave.
        assert_eq!(p.acknowledge(), 0x2f, "spurious IRQ15");
        eoi(&mut p, Master);
        assert!(!p.interrupt_pending());
    }

    #[test]
    fn lines_high_at_power_on_do_not_request() {
        let mut p = Pic::with_line_levels(0x0001);
        p.set_irq(0, true);
        assert!(!p.interrupt_pending());
        init_pair(&mut p, 0x20, 0x28, 0x01);
        p.set_irq(0, true);
        assert!(!p.interrupt_pending(), "ICW1: still high, no new edge");
        p.set_irq(0, false);
        p.set_irq(0, true);
        assert_eq!(p.acknowledge(), 0x20);
    }

    #[test]
    fn auto_eoi() {
        let mut p = Pic::new();
        init_pair(&mut p, 0x20, 0x28, 0x03);
        assert!(p.state(Master).auto_eoi);
        pulse(&mut p, 4);
        assert_eq!(p.acknowledge(), 0x24);
        assert_eq!(p.state(Master).isr, 0);
        pulse(&mut p, 6);
        assert_eq!(p.acknowledge(), 0x26, "nothing in service blocks IR6");
    }

    #[test]
    fn poll_mode() {
        let mut p = pic();
        p.write_port(Master, 0, 0x0c);
        assert_eq!(p.read_port(Master, 0), 0x00, "nothing pending");
        pulse(&mut p, 3);
        p.write_port(Master, 0, 0x0c);
        assert_eq!(p.read_port(Master, 0), 0x83);
        assert_eq!(p.state(Master).isr, 0x08, "poll acts as INTA");
        assert_eq!(p.read_port(Master, 1), 0x00, "one read only; then IMR");
        eoi(&mut p, Master);
        // Polling the slave serves the request without a later IR2.
        pulse(&mut p, 9);
        p.write_port(Slave, 0, 0x0c);
        assert_eq!(p.read_port(Slave, 0), 0x81);
        assert!(!p.interrupt_pending());
    }

    #[test]
    fn special_mask_mode() {
        let mut p = pic();
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x21);
        pulse(&mut p, 4);
        assert!(!p.interrupt_pending());
        // Mask own level and enter SMM: lower priorities get through.
        p.write_port(Master, 1, 0x02);
        p.write_port(Master, 0, 0x68);
        assert!(p.state(Master).special_mask);
        assert!(p.interrupt_pending());
        assert_eq!(p.acknowledge(), 0x24);
        p.write_port(Master, 0, 0x48); // leave SMM
        assert!(!p.state(Master).special_mask);
    }

    #[test]
    fn io_views_split_wide_accesses() {
        let mut p = pic();
        let mut io = p.chip_io(Master);
        io.write(1, &[0xf0]);
        let mut b = [0u8; 2];
        io.read(0, &mut b);
        assert_eq!(b, [0x00, 0xf0], "IRR then IMR");
        let mut e = p.elcr_io();
        e.write(0, &[0xff, 0xff]);
        let mut b = [0u8; 2];
        e.read(0, &mut b);
        assert_eq!(b, [0xf8, 0xde]);
    }
}
