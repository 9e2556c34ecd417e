//! The 8254 programmable interval timer (ports 0x40-0x43) and the PC's
//! system control port B (port 0x61), which gates channel 2 and reads back
//! its output.
//!
//! The input clock is 1.193182 MHz (the PC's 14.31818 MHz crystal / 12).
//! Time is *given* to the device: [`Pit::advance`] moves it to a host
//! nanosecond timestamp, and [`Pit::next_deadline_ns`] says when channel 0's
//! output next rises. Counter values and outputs are computed from the
//! elapsed clock count, so a read between two `advance` calls is exact and
//! the model is deterministic for a given sequence of timestamps.
//!
//! Channel wiring on a PC: channel 0 OUT → IRQ 0 (gate tied high), channel
//! 1 (DRAM refresh, gate tied high; its output is not connected), channel 2
//! gate = port 0x61 bit 0, OUT2 → speaker and port 0x61 bit 5.
//!
//! Counting follows the 8254 datasheet mode by mode. `d` below is the
//! number of CLK pulses since the count was loaded into the counting
//! element (CE), excluding clocks while the gate disabled counting; `N` is
//! the count (0 means 2^16, or 10^4 in BCD).
//!
//! | mode | OUT                                 | rising edges of OUT |
//! |------|-------------------------------------|---------------------|
//! | 0    | low until `d = N`, then high        | `d = N`             |
//! | 1    | low from trigger until `d = N`      | `d = N`             |
//! | 2    | low for one clock at `d ≡ N-1 mod N`| `d = kN`            |
//! | 3    | high for `⌈N/2⌉`, low for `⌊N/2⌋`   | `d = kN`            |
//! | 4    | low for one clock at `d = N`        | `d = N + 1`         |
//! | 5    | as 4, from a gate trigger           | `d = N + 1`         |
//!
//! The one-clock delay between a count write and its load into the CE is
//! not modelled (838 ns).

use crate::bus::PioDevice;

/// Input clock of the 8254 on a PC, Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// First PIT port (channel 0); 0x43 is the control word register.
pub const PIT_PORT: u16 = 0x40;
/// Number of PIT ports.
pub const PIT_PORTS: u32 = 4;
/// System control port B (NMI status and control).
pub const PORT_61: u16 = 0x61;
/// ISA line of channel 0.
pub const PIT_IRQ: u8 = 0;
/// PIT clocks per DRAM refresh request (15.08 µs): port 0x61 bit 4 toggles
/// at this rate, as on PIIX/ICH chipsets.
pub const REFRESH_CLOCKS: u64 = 18;

/// Convert host nanoseconds to PIT clocks elapsed (floor).
pub fn ns_to_clocks(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(PIT_HZ) / 1_000_000_000) as u64
}

/// The first nanosecond at which [`ns_to_clocks`] reaches `clocks`.
pub fn clocks_to_ns(clocks: u64) -> u64 {
    let ns = (u128::from(clocks) * 1_000_000_000).div_ceil(u128::from(PIT_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// RW field of the control word: how the count is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Lsb,
    Msb,
    LsbMsb,
}

fn bcd_to_bin(v: u16) -> u32 {
    // Nibbles above 9 are undefined on the chip; weigh them as written.
    let d = |s: u32| u32::from((v >> s) & 0xf);
    d(12) * 1000 + d(8) * 100 + d(4) * 10 + d(0)
}

fn bin_to_bcd(v: u32) -> u16 {
    let v = v % 10_000;
    ((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10)) as u16
}

/// One counter of the 8254.
#[derive(Debug, Clone)]
struct Channel {
    /// Bits 5:0 of the last control word (RW, M, BCD), for read-back status.
    control: u8,
    /// Effective mode 0-5 (M = 6, 7 are modes 2, 3).
    mode: u8,
    access: Access,
    bcd: bool,
    /// The count register: last count written, decoded (1..=modulus).
    cr: u32,
    /// The count the counting element works with.
    n: u32,
    /// A count has been loaded since the control word.
    armed: bool,
    /// Clock at which `d` was 0.
    start: u64,
    /// Counting disabled by the gate since this clock (modes 0, 2, 3, 4).
    paused_at: Option<u64>,
    /// Modes 1 and 5: a gate trigger started the current cycle.
    triggered: bool,
    /// Modes 2 and 3: a new count waits for the end of the current period.
    reload_pending: bool,
    gate: bool,
    /// LSB of a two-byte count write, waiting for the MSB.
    write_lsb: Option<u8>,
    /// Two-byte reads: the MSB comes next.
    read_msb_next: bool,
    /// Counter latch: (value, MSB next).
    latch: Option<(u16, bool)>,
    /// Read-back status latch.
    status: Option<u8>,
    /// Status bit 6: the last count written is not in the CE yet.
    null_count: bool,
    /// Value shown while the counter is not counting (before the first
    /// count, or during a two-byte write in mode 0).
    frozen: u16,
}

impl Channel {
    /// Power-on: the datasheet leaves mode, count and OUT undefined. Like
    /// KVM's PIT the counter is idle until programmed; OUT is high (mode 3
    /// is shown in the status), so the first control word for a periodic
    /// mode is not a rising edge on IRQ 0.
    fn new(gate: bool) -> Self {
        Self {
            control: 0x36,
            mode: 3,
            access: Access::LsbMsb,
            bcd: false,
            cr: 0x1_0000,
            n: 0x1_0000,
            armed: false,
            start: 0,
            paused_at: None,
            triggered: false,
            reload_pending: false,
            gate,
            write_lsb: None,
            read_msb_next: false,
            latch: None,
            status: None,
            null_count: false,
            frozen: 0,
        }
    }

    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    fn gate_disables_counting(&self) -> bool {
        matches!(self.mode, 0 | 2 | 3 | 4)
    }

    /// Clocks counted at time `t` since `start`.
    fn elapsed(&self, t: u64) -> u64 {
        self.paused_at
            .unwrap_or(t)
            .min(t)
            .saturating_sub(self.start)
    }

    /// Is the counting element running the current count?
    fn counting(&self) -> bool {
        self.armed && (!matches!(self.mode, 1 | 5) || self.triggered)
    }

    /// The counting element's value (binary) at `t`.
    fn value(&self, t: u64) -> u32 {
        let m = u64::from(self.modulus());
        let n = u64::from(self.n);
        let d = self.elapsed(t);
        let v = match self.mode {
            2 => n - d % n,
            3 => (n - (2 * d) % n) & !1,
            _ => (n + m - d % m) % m,
        };
        (v % m) as u32
    }

    /// The counter as the guest reads it (BCD-encoded if programmed so).
    fn read_value(&self, t: u64) -> u16 {
        if !self.counting() {
            return self.frozen;
        }
        let v = self.value(t);
        if self.bcd {
            bin_to_bcd(v)
        } else {
            v as u16
        }
    }

    fn out(&self, t: u64) -> bool {
        if !self.armed {
            return self.mode != 0;
        }
        let n = u64::from(self.n);
        let d = self.elapsed(t);
        match self.mode {
            0 => d >= n,
            1 => !self.triggered || d >= n,
            // Low for the one clock when the count is 1 (never for N = 1).
            2 => !self.gate || n <= 1 || d % n != n - 1,
            3 => !self.gate || d % n < n.div_ceil(2),
            4 => d != n,
            _ => !self.triggered || d != n,
        }
    }

    /// Rising edges of OUT for counted clocks in `(d0, d1]`.
    fn rising_edges(&self, d0: u64, d1: u64) -> u64 {
        if !self.armed || d1 <= d0 {
            return 0;
        }
        let n = u64::from(self.n);
        let once = |at: u64| u64::from(d0 < at && at <= d1);
        match self.mode {
            0 => once(n),
            1 => u64::from(self.triggered) * once(n),
            2 => d1 / n - d0 / n,
            3 if n >= 2 => d1 / n - d0 / n,
            3 => 0,
            4 => once(n + 1),
            _ => u64::from(self.triggered) * once(n + 1),
        }
    }

    /// Move from clock `from` to `to`; returns rising edges of OUT.
    fn run(&mut self, from: u64, to: u64) -> u64 {
        if to <= from || !self.armed {
            return 0;
        }
        let mut edges = 0;
        let mut from = from;
        if self.reload_pending && self.paused_at.is_none() {
            // Modes 2/3: the new count is loaded at the end of the period.
            let n = u64::from(self.n);
            let d = self.elapsed(from);
            let boundary = self.start.saturating_add(n.saturating_mul(d / n + 1));
            if boundary <= to {
                edges += self.rising_edges(d, self.elapsed(boundary));
                self.start = boundary;
                self.n = self.cr;
                self.reload_pending = false;
                self.null_count = false;
                from = boundary;
            }
        }
        edges + self.rising_edges(self.elapsed(from), self.elapsed(to))
    }

    /// Start counting `n` from clock `now`.
    fn load(&mut self, now: u64) {
        self.n = self.cr;
        self.armed = true;
        self.start = now;
        self.reload_pending = false;
        self.null_count = false;
        self.paused_at = (!self.gate && self.gate_disables_counting()).then_some(now);
    }

    /// A complete count was written to the count register.
    fn count_written(&mut self, raw: u16, now: u64) {
        self.cr = match (self.bcd, raw) {
            (_, 0) => self.modulus(),
            (true, r) => match bcd_to_bin(r) % 10_000 {
                0 => 10_000,
                v => v,
            },
            (false, r) => u32::from(r),
        };
        self.null_count = true;
        match self.mode {
            0 | 4 => self.load(now),
            2 | 3 if self.armed => self.reload_pending = true,
            2 | 3 => self.load(now),
            // Modes 1, 5: used at the next gate trigger.
            _ => self.armed = true,
        }
    }

    fn write_count_byte(&mut self, v: u8, now: u64) {
        match self.access {
            Access::Lsb => self.count_written(u16::from(v), now),
            Access::Msb => self.count_written(u16::from(v) << 8, now),
            Access::LsbMsb => match self.write_lsb.take() {
                None => {
                    self.write_lsb = Some(v);
                    if self.mode == 0 {
                        // Mode 0: writing the first byte stops counting
                        // and OUT goes low at once.
                        self.frozen = self.read_value(now);
                        self.armed = false;
                    }
                }
                Some(lsb) => self.count_written(u16::from(lsb) | u16::from(v) << 8, now),
            },
        }
    }

    fn read_byte(&mut self, now: u64) -> u8 {
        if let Some(s) = self.status.take() {
            return s;
        }
        if let Some((v, msb_next)) = self.latch {
            let [lo, hi] = v.to_le_bytes();
            return match self.access {
                Access::Lsb => {
                    self.latch = None;
                    lo
                }
                Access::Msb => {
                    self.latch = None;
                    hi
                }
                Access::LsbMsb if !msb_next => {
                    self.latch = Some((v, true));
                    lo
                }
                Access::LsbMsb => {
                    self.latch = None;
                    hi
                }
            };
        }
        let [lo, hi] = self.read_value(now).to_le_bytes();
        match self.access {
            Access::Lsb => lo,
            Access::Msb => hi,
            Access::LsbMsb => {
                self.read_msb_next = !self.read_msb_next;
                if self.read_msb_next {
                    lo
                } else {
                    hi
                }
            }
        }
    }

    /// Counter latch command (ignored while a latched count is unread).
    fn latch_count(&mut self, now: u64) {
        if self.latch.is_none() {
            self.latch = Some((self.read_value(now), false));
        }
    }

    fn latch_status(&mut self, now: u64) {
        if self.status.is_none() {
            let out = u8::from(self.out(now)) << 7;
            let null = u8::from(self.null_count) << 6;
            self.status = Some(out | null | self.control);
        }
    }

    /// A control word for this counter (not a latch command).
    fn program(&mut self, cw: u8, now: u64) {
        self.frozen = self.read_value(now);
        self.control = cw & 0x3f;
        self.access = match (cw >> 4) & 3 {
            1 => Access::Lsb,
            2 => Access::Msb,
            _ => Access::LsbMsb,
        };
        let m = (cw >> 1) & 7;
        self.mode = if m >= 6 { m - 4 } else { m };
        self.bcd = cw & 1 != 0;
        self.armed = false;
        self.triggered = false;
        self.reload_pending = false;
        self.paused_at = None;
        self.write_lsb = None;
        self.read_msb_next = false;
        self.latch = None;
        self.status = None;
        self.null_count = true;
    }

    fn set_gate(&mut self, level: bool, now: u64) {
        if level == self.gate {
            return;
        }
        self.gate = level;
        if !self.armed {
            return;
        }
        match (self.mode, level) {
            (0 | 4, true) => {
                if let Some(p) = self.paused_at.take() {
                    self.start = self.start.saturating_add(now.saturating_sub(p));
                }
            }
            (2 | 3, true) => self.load(now),
            (1 | 5, true) => {
                self.load(now);
                self.triggered = true;
            }
            (0 | 2 | 3 | 4, false) => self.paused_at = Some(now),
            _ => {}
        }
    }

    /// Clock of the next rising edge of OUT after `now`.
    fn next_rising(&self, now: u64) -> Option<u64> {
        if !self.armed || self.paused_at.is_some() {
            return None;
        }
        let n = u64::from(self.n);
        let d = self.elapsed(now);
        let at = |target: u64| (d < target).then(|| self.start.saturating_add(target));
        match self.mode {
            0 => at(n),
            1 if self.triggered => at(n),
            2 => Some(self.start.saturating_add(n.saturating_mul(d / n + 1))),
            3 if n >= 2 => Some(self.start.saturating_add(n.saturating_mul(d / n + 1))),
            4 => at(n + 1),
            5 if self.triggered => at(n + 1),
            _ => None,
        }
    }
}

/// Counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PitStats {
    /// Rising edges of channel 0's OUT (IRQ 0 requests before collapsing).
    pub irq0_edges: u64,
}

/// The 8254 and port 0x61.
#[derive(Debug, Clone)]
pub struct Pit {
    ch: [Channel; 3],
    /// Current time in PIT clocks.
    now: u64,
    /// Channel 0 rising edges not yet taken by the board.
    pending_edges: u64,
    /// Port 0x61 bits 1-3 (speaker data, parity and I/O check enables).
    port61: u8,
    stats: PitStats,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// Power-on: all counters waiting for a control word; channel 2's gate
    /// low (port 0x61 = 0).
    pub fn new() -> Self {
        Self {
            ch: [Channel::new(true), Channel::new(true), Channel::new(false)],
            now: 0,
            pending_edges: 0,
            port61: 0,
            stats: PitStats::default(),
        }
    }

    /// Move time to `now_ns` (host nanoseconds on the board's clock).
    /// Time never goes backwards: an older timestamp is ignored.
    pub fn advance(&mut self, now_ns: u64) {
        let to = ns_to_clocks(now_ns);
        if to <= self.now {
            return;
        }
        let from = self.now;
        let e0 = self.ch[0].run(from, to);
        self.ch[1].run(from, to);
        self.ch[2].run(from, to);
        self.now = to;
        self.pending_edges = self.pending_edges.saturating_add(e0);
        self.stats.irq0_edges = self.stats.irq0_edges.saturating_add(e0);
    }

    /// Rising edges of OUT0 since the last call. More than one means
    /// IRQ 0 requests collapsed into one, as in an 8259 IRR bit.
    pub fn take_irq0_edges(&mut self) -> u64 {
        std::mem::take(&mut self.pending_edges)
    }

    /// Output of `channel` (0-2) now.
    pub fn out(&self, channel: usize) -> bool {
        self.ch.get(channel).is_some_and(|c| c.out(self.now))
    }

    /// When OUT0 next rises (IRQ 0), in board nanoseconds.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.ch[0].next_rising(self.now).map(clocks_to_ns)
    }

    /// Current time in PIT clocks.
    pub fn now_clocks(&self) -> u64 {
        self.now
    }

    pub fn stats(&self) -> PitStats {
        self.stats
    }

    /// Read port 0x40 + `offset`.
    pub fn read_port(&mut self, offset: u16) -> u8 {
        let now = self.now;
        match self.ch.get_mut(usize::from(offset)) {
            Some(c) => c.read_byte(now),
            // The control word register cannot be read (bus floats).
            None => 0xff,
        }
    }

    /// Write port 0x40 + `offset`.
    pub fn write_port(&mut self, offset: u16, v: u8) {
        let now = self.now;
        match self.ch.get_mut(usize::from(offset)) {
            Some(c) => c.write_count_byte(v, now),
            None => self.control_word(v),
        }
    }

    fn control_word(&mut self, v: u8) {
        let now = self.now;
        let sc = usize::from(v >> 6);
        if sc == 3 {
            // Read-back: bit 5 = !COUNT, bit 4 = !STATUS, bits 3:1 = CNT2..0.
            for (i, c) in self.ch.iter_mut().enumerate() {
                if v & (2 << i) != 0 {
                    // Status first: if both are latched, status reads first.
                    if v & 0x10 == 0 {
                        c.latch_status(now);
                    }
                    if v & 0x20 == 0 {
                        c.latch_count(now);
                    }
                }
            }
            return;
        }
        if let Some(c) = self.ch.get_mut(sc) {
            if (v >> 4) & 3 == 0 {
                c.latch_count(now);
            } else {
                c.program(v, now);
            }
        }
    }

    /// Read port 0x61: bit 0 gate 2, bit 1 speaker data, bits 2-3 check
    /// enables, bit 4 refresh toggle, bit 5 OUT2; bits 6-7 (NMI sources)
    /// read 0: this board has no parity or I/O channel errors.
    pub fn read_port61(&self) -> u8 {
        let refresh = u8::from((self.now / REFRESH_CLOCKS) & 1 == 1) << 4;
        let out2 = u8::from(self.ch[2].out(self.now)) << 5;
        u8::from(self.ch[2].gate) | self.port61 | refresh | out2
    }

    /// Write port 0x61: bit 0 gates channel 2, bits 1-3 are stored.
    pub fn write_port61(&mut self, v: u8) {
        self.port61 = v & 0x0e;
        let now = self.now;
        self.ch[2].set_gate(v & 1 != 0, now);
    }

    /// The speaker is sounding (gate 2 and speaker data enabled).
    pub fn speaker_enabled(&self) -> bool {
        self.ch[2].gate && self.port61 & 0x02 != 0
    }

    /// [`PioDevice`] view of port 0x61.
    pub fn port61_io(&mut self) -> Port61Io<'_> {
        Port61Io { pit: self }
    }
}

impl PioDevice for Pit {
    /// Wide accesses reach consecutive ports a byte at a time.
    fn read(&mut self, offset: u16, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.read_port(offset.wrapping_add(i as u16));
        }
    }
    fn write(&mut self, offset: u16, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.write_port(offset.wrapping_add(i as u16), *b);
        }
    }
}

/// [`PioDevice`] view of port 0x61.
pub struct Port61Io<'a> {
    pit: &'a mut Pit,
}

impl PioDevice for Port61Io<'_> {
    fn read(&mut self, _offset: u16, data: &mut [u8]) {
        data.fill(self.pit.read_port61());
    }
    fn write(&mut self, _offset: u16, data: &[u8]) {
        if let Some(v) = data.first() {
            self.pit.write_port61(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTRL: u16 = 3;

    /// Program `ch` with lo/hi access, `mode`, binary, and count `n`.
    fn program(p: &mut Pit, ch: u8, mode: u8, n: u16) {
        p.write_port(CTRL, ch << 6 | 0x30 | mode << 1);
        p.write_port(u16::from(ch), n as u8);
        p.write_port(u16::from(ch), (n >> 8) as u8);
    }

    fn read16(p: &mut Pit, ch: u16) -> u16 {
        let lo = p.read_port(ch);
        let hi = p.read_port(ch);
        u16::from(lo) | u16::from(hi) << 8
    }

    /// Count IRQ 0 requests while advancing in `step_ns` steps to `end_ns`.
    fn edges_over(p: &mut Pit, start_ns: u64, end_ns: u64, step_ns: u64) -> u64 {
        let mut t = start_ns;
        let mut total = 0;
        while t < end_ns {
            t = (t + step_ns).min(end_ns);
            p.advance(t);
            total += p.take_irq0_edges();
        }
        total
    }

    #[test]
    fn clock_conversion() {
        assert_eq!(ns_to_clocks(1_000_000_000), PIT_HZ);
        assert_eq!(ns_to_clocks(838), 0);
        assert_eq!(ns_to_clocks(839), 1);
        assert_eq!(clocks_to_ns(1), 839);
        for c in [1u64, 17, 1193, 65536, 1 << 40] {
            let ns = clocks_to_ns(c);
            assert_eq!(ns_to_clocks(ns), c);
            assert_eq!(ns_to_clocks(ns - 1), c - 1);
        }
    }

    #[test]
    fn mode2_periodic_irq0_count() {
        // 1193 clocks ≈ 1 kHz (Linux's HZ=1000 LATCH).
        let mut p = Pit::new();
        program(&mut p, 0, 2, 1193);
        let secs = 1;
        let n = edges_over(&mut p, 0, secs * 1_000_000_000, 100_000);
        assert_eq!(n, PIT_HZ * secs / 1193);
        // Coarse steps see the same edges (they would collapse in the PIC,
        // but the PIT counts them all).
        let mut q = Pit::new();
        program(&mut q, 0, 2, 1193);
        assert_eq!(edges_over(&mut q, 0, 1_000_000_000, 7_777_777), n);
        assert_eq!(q.stats().irq0_edges, n);
    }

    #[test]
    fn mode3_square_wave() {
        let mut p = Pit::new();
        program(&mut p, 0, 3, 100);
        // OUT high for the first 50 clocks, low for the next 50.
        p.advance(clocks_to_ns(49));
        assert!(p.out(0));
        p.advance(clocks_to_ns(50));
        assert!(!p.out(0));
        p.advance(clocks_to_ns(99));
        assert!(!p.out(0));
        assert_eq!(p.take_irq0_edges(), 0);
        p.advance(clocks_to_ns(100));
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 1);
        // Counter decrements by two.
        p.advance(clocks_to_ns(110));
        assert_eq!(read16(&mut p, 0), 80);
        let n = edges_over(&mut p, clocks_to_ns(110), clocks_to_ns(100_000), 333_333);
        assert_eq!(n, 999);
        assert_eq!(p.next_deadline_ns(), Some(clocks_to_ns(100_100)));
        // Odd count: high one clock longer.
        program(&mut p, 0, 3, 5);
        let t0 = p.now_clocks();
        p.advance(clocks_to_ns(t0 + 2));
        assert!(p.out(0));
        p.advance(clocks_to_ns(t0 + 3));
        assert!(!p.out(0));
    }

    #[test]
    fn mode0_one_shot_and_deadline() {
        let mut p = Pit::new();
        p.write_port(CTRL, 0x30);
        assert!(!p.out(0), "mode 0 OUT low after control word");
        p.write_port(0, 0x10);
        assert!(!p.out(0));
        p.write_port(0, 0x00); // N = 16
        assert_eq!(p.next_deadline_ns(), Some(clocks_to_ns(16)));
        p.advance(clocks_to_ns(15));
        assert!(!p.out(0));
        assert_eq!(read16(&mut p, 0), 1);
        p.advance(clocks_to_ns(16));
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 1);
        assert_eq!(p.next_deadline_ns(), None, "one shot");
        // Counter wraps after terminal count.
        p.advance(clocks_to_ns(18));
        assert_eq!(read16(&mut p, 0), 0xfffe);
        p.advance(clocks_to_ns(1_000_000));
        assert_eq!(p.take_irq0_edges(), 0);
    }

    #[test]
    fn mode4_strobe() {
        let mut p = Pit::new();
        program(&mut p, 0, 4, 10);
        assert!(p.out(0));
        p.advance(clocks_to_ns(10));
        assert!(!p.out(0), "strobe at terminal count");
        assert_eq!(p.take_irq0_edges(), 0);
        p.advance(clocks_to_ns(11));
        assert!(p.out(0));
        assert_eq!(p.take_irq0_edges(), 1);
        // A strobe skipped over entirely is still one edge.
        program(&mut p, 0, 4, 10);
        p.advance(clocks_to_ns(500));
        assert_eq!(p.take_irq0_edges(), 1);
    }

    #[test]
    fn latch_and_lohi_reads() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 1000);
        p.advance(clocks_to_ns(100));
        p.write_port(CTRL, 0x00); // latch channel 0
        p.advance(clocks_to_ns(300));
        assert_eq!(read16(&mut p, 0), 900, "latched value, not live");
        assert_eq!(read16(&mut p, 0), 700, "latch released: live");
        // A second latch before reading is ignored.
        p.write_port(CTRL, 0x00);
        p.advance(clocks_to_ns(400));
        p.write_port(CTRL, 0x00);
        assert_eq!(read16(&mut p, 0), 700);
        // LSB-only and MSB-only access modes.
        p.write_port(CTRL, 0x10 | 2 << 1); // LSB only, mode 2
        p.write_port(0, 200);
        let t = p.now_clocks();
        p.advance(clocks_to_ns(t + 50));
        assert_eq!(p.read_port(0), 150);
        assert_eq!(p.read_port(0), 150);
        p.write_port(CTRL, 0x20 | 2 << 1); // MSB only
        p.write_port(0, 0x02); // N = 0x200
        assert_eq!(p.read_port(0), 0x02);
    }

    #[test]
    fn read_back_command() {
        let mut p = Pit::new();
        program(&mut p, 2, 0, 100);
        p.write_port61(0x01);
        p.advance(clocks_to_ns(40));
        // Latch count and status of channel 2.
        p.write_port(CTRL, 0xc0 | 0x08);
        p.advance(clocks_to_ns(80));
        let status = p.read_port(2);
        assert_eq!(status & 0x3f, 0x30, "RW=lo/hi, mode 0, binary");
        assert_eq!(status & 0x80, 0, "OUT low before terminal count");
        assert_eq!(status & 0x40, 0, "count loaded");
        assert_eq!(read16(&mut p, 2), 60);
        // Status only, after terminal count.
        p.advance(clocks_to_ns(200));
        p.write_port(CTRL, 0xe0 | 0x08);
        assert_eq!(p.read_port(2) & 0x80, 0x80);
        // Null count right after a control word.
        p.write_port(CTRL, 0x34);
        p.write_port(CTRL, 0xe2);
        assert_eq!(p.read_port(0) & 0x40, 0x40);
    }

    #[test]
    fn bcd_counting() {
        let mut p = Pit::new();
        p.write_port(CTRL, 0x31); // lo/hi, mode 0, BCD
        p.write_port(0, 0x00);
        p.write_port(0, 0x10); // 1000 decimal
        p.advance(clocks_to_ns(1));
        assert_eq!(read16(&mut p, 0), 0x0999);
        assert_eq!(p.next_deadline_ns(), Some(clocks_to_ns(1000)));
    }

    #[test]
    fn port61_gate_and_out2_like_linux_calibration() {
        // Linux pit_calibrate_tsc(): gate on, speaker off, channel 2 mode 0,
        // then poll port 0x61 bit 5.
        let mut p = Pit::new();
        let v = p.read_port61();
        p.write_port61((v & !0x02) | 0x01);
        p.write_port(CTRL, 0xb0);
        p.write_port(2, 0x2e);
        p.write_port(2, 0x17); // 5934 clocks ≈ 5 ms
        assert_eq!(p.read_port61() & 0x21, 0x01, "gate set, OUT2 low");
        p.advance(clocks_to_ns(5933));
        assert_eq!(p.read_port61() & 0x20, 0);
        p.advance(clocks_to_ns(5934));
        assert_eq!(p.read_port61() & 0x20, 0x20, "OUT2 high at terminal count");
        assert_eq!(p.take_irq0_edges(), 0, "channel 2 is not IRQ 0");
    }

    #[test]
    fn gate_low_pauses_mode0_and_restarts_mode2() {
        let mut p = Pit::new();
        program(&mut p, 2, 0, 100);
        p.advance(clocks_to_ns(10));
        p.write_port61(0x01); // gate high only now: loaded with gate low
        p.advance(clocks_to_ns(60));
        assert_eq!(read16(&mut p, 2), 50);
        p.write_port61(0x00);
        p.advance(clocks_to_ns(1000));
        assert_eq!(read16(&mut p, 2), 50, "gate low suspends mode 0");
        p.write_port61(0x01);
        p.advance(clocks_to_ns(1049));
        assert_eq!(p.read_port61() & 0x20, 0);
        p.advance(clocks_to_ns(1050));
        assert_eq!(p.read_port61() & 0x20, 0x20);

        program(&mut p, 2, 2, 100);
        let t = p.now_clocks();
        p.advance(clocks_to_ns(t + 30));
        p.write_port61(0x00);
        assert!(p.out(2), "mode 2: gate low forces OUT high");
        p.advance(clocks_to_ns(t + 500));
        p.write_port61(0x01);
        assert_eq!(read16(&mut p, 2), 100, "rising gate reloads");
    }

    #[test]
    fn refresh_toggle() {
        let mut p = Pit::new();
        let a = p.read_port61() & 0x10;
        p.advance(clocks_to_ns(REFRESH_CLOCKS));
        let b = p.read_port61() & 0x10;
        assert_ne!(a, b);
        p.write_port61(0xff);
        assert_eq!(p.read_port61() & 0xcf, 0x0f, "bits 6-7 read 0");
    }

    #[test]
    fn mode2_new_count_takes_effect_at_period_end() {
        let mut p = Pit::new();
        program(&mut p, 0, 2, 100);
        p.advance(clocks_to_ns(30));
        p.write_port(0, 50);
        p.write_port(0, 0);
        assert_eq!(read16(&mut p, 0), 70, "current period continues");
        p.advance(clocks_to_ns(100));
        assert_eq!(p.take_irq0_edges(), 1);
        assert_eq!(read16(&mut p, 0), 50, "new count loaded at reload");
        p.advance(clocks_to_ns(250));
        assert_eq!(p.take_irq0_edges(), 3);
    }

    #[test]
    fn mode1_and_5_wait_for_gate_trigger() {
        let mut p = Pit::new();
        p.write_port61(0x01);
        program(&mut p, 2, 1, 20);
        assert!(p.out(2));
        p.advance(clocks_to_ns(100));
        assert!(p.out(2), "no trigger yet");
        p.write_port61(0x00);
        p.write_port61(0x01); // trigger
        assert!(!p.out(2));
        p.advance(clocks_to_ns(119));
        assert!(!p.out(2));
        p.advance(clocks_to_ns(120));
        assert!(p.out(2));

        program(&mut p, 2, 5, 10);
        let t = p.now_clocks();
        p.write_port61(0x00);
        p.write_port61(0x01);
        p.advance(clocks_to_ns(t + 10));
        assert!(!p.out(2), "strobe");
        p.advance(clocks_to_ns(t + 11));
        assert!(p.out(2));
    }

    #[test]
    fn unprogrammed_pit_is_quiet() {
        let mut p = Pit::new();
        assert_eq!(p.next_deadline_ns(), None);
        p.advance(10_000_000_000);
        assert_eq!(p.take_irq0_edges(), 0);
        assert_eq!(p.read_port(3), 0xff);
    }
}
