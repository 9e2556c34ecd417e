//! The local APIC in xAPIC mode: a 4 KiB register page at IA32_APIC_BASE
//! (default 0xfee00000), registers at 16-byte strides (Intel SDM vol. 3A,
//! chapter "Advanced Programmable Interrupt Controller").
//!
//! Modelled: ID, version, TPR, APR, PPR, EOI, LDR, DFR, SVR, ISR/TMR/IRR,
//! ESR, ICR, the six LVT entries (timer, thermal, performance counters,
//! LINT0, LINT1, error) and the timer (initial/current count, divide
//! configuration; one-shot and periodic — TSC-deadline is not advertised).
//!
//! * **Timer clock.** The APIC bus clock is 1 GHz: one tick per
//!   nanosecond before the divider, as in QEMU and KVM. Guests calibrate the
//!   timer against the PIT or TSC anyway; a round frequency keeps traces easy
//!   to read. Time is given to the device ([`Lapic::advance`]); a periodic
//!   timer that expired several times between two calls delivers one
//!   interrupt (the IRR bit holds one), like a real APIC whose vector is
//!   still pending.
//! * **Interrupt acceptance.** Fixed interrupts set IRR (and TMR for level).
//!   One is presented to the CPU when the highest IRR vector's priority class
//!   (`vector[7:4]`) is above the processor priority class (`PPR[7:4]`); INTA
//!   moves it to ISR; EOI clears the highest ISR bit.
//! * **IPIs.** Only one CPU exists: fixed (and lowest-priority) IPIs whose
//!   destination includes this APIC (shorthand self, all-including-self, or
//!   a matching physical/logical destination) are accepted; others, and the
//!   INIT/SIPI/NMI/SMI delivery modes, are dropped.
//! * **Disabled states.** Globally disabled (IA32_APIC_BASE bit 11 clear)
//!   the register page is not decoded and the APIC returns to its power-up
//!   state; software-disabled (SVR bit 8 clear, the reset state) the LVTs are
//!   masked and nothing is presented to the CPU. Whether the 8259's INTR
//!   reaches the CPU directly (virtual-wire mode) is [`Lapic::pic_passthrough`].

use crate::bus::MmioDevice;

/// Default IA32_APIC_BASE address.
pub const LAPIC_DEFAULT_BASE: u64 = 0xfee0_0000;
/// Size of the register page.
pub const LAPIC_PAGE_SIZE: u64 = 0x1000;
/// APIC bus (timer input) frequency before the divider.
pub const LAPIC_BUS_HZ: u64 = 1_000_000_000;

/// IA32_APIC_BASE bits.
pub const APIC_BASE_BSP: u64 = 1 << 8;
pub const APIC_BASE_EXTD: u64 = 1 << 10;
pub const APIC_BASE_ENABLE: u64 = 1 << 11;
/// Address bits of IA32_APIC_BASE (up to MAXPHYADDR = 52).
const APIC_BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Version register: version 0x14 (integrated APIC), max LVT entry 5
/// (six LVTs, no CMCI), no EOI-broadcast suppression.
pub const LAPIC_VERSION: u32 = 0x0005_0014;

// Register indices (offset >> 4).
const REG_ID: u64 = 0x02;
const REG_VERSION: u64 = 0x03;
const REG_TPR: u64 = 0x08;
const REG_APR: u64 = 0x09;
const REG_PPR: u64 = 0x0a;
const REG_EOI: u64 = 0x0b;
const REG_RRD: u64 = 0x0c;
const REG_LDR: u64 = 0x0d;
const REG_DFR: u64 = 0x0e;
const REG_SVR: u64 = 0x0f;
const REG_ISR0: u64 = 0x10;
const REG_TMR0: u64 = 0x18;
const REG_IRR0: u64 = 0x20;
const REG_ESR: u64 = 0x28;
const REG_ICR_LO: u64 = 0x30;
const REG_ICR_HI: u64 = 0x31;
const REG_LVT0: u64 = 0x32;
const REG_TIMER_INIT: u64 = 0x38;
const REG_TIMER_CUR: u64 = 0x39;
const REG_TIMER_DCR: u64 = 0x3e;

/// LVT indices (registers 0x320-0x370).
pub const LVT_TIMER: usize = 0;
pub const LVT_THERMAL: usize = 1;
pub const LVT_PERF: usize = 2;
pub const LVT_LINT0: usize = 3;
pub const LVT_LINT1: usize = 4;
pub const LVT_ERROR: usize = 5;
const LVT_COUNT: usize = 6;

pub const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const DELIVERY_EXTINT: u32 = 7;

/// Writable bits per LVT: timer (vector, mask, periodic — bit 18
/// TSC-deadline is reserved without the feature), thermal and perf (vector,
/// delivery mode, mask), LINT0/1 (+ polarity, trigger mode), error.
const LVT_WRITABLE: [u32; LVT_COUNT] = [
    0x0003_00ff,
    0x0001_07ff,
    0x0001_07ff,
    0x0001_a7ff,
    0x0001_a7ff,
    0x0001_00ff,
];

const SVR_ENABLE: u32 = 1 << 8;
/// Spurious vector, APIC enable, focus processor checking.
const SVR_WRITABLE: u32 = 0x3ff;

/// ESR bits.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
pub const ESR_RECV_ILLEGAL_VECTOR: u32 = 1 << 6;
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// Writable bits of ICR low (delivery status, bit 12, is read-only).
const ICR_LO_WRITABLE: u32 = 0x000c_dfff;

/// A 256-bit vector register (ISR, TMR, IRR).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct VecReg([u32; 8]);

impl VecReg {
    fn set(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] |= 1 << (v & 31);
    }
    fn clear(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] &= !(1 << (v & 31));
    }
    fn highest(&self) -> Option<u8> {
        (0..8u8).rev().find_map(|w| {
            let bits = self.0[usize::from(w)];
            (bits != 0).then(|| w * 32 + (31 - bits.leading_zeros() as u8))
        })
    }
    fn word(&self, i: u64) -> u32 {
        self.0.get(i as usize).copied().unwrap_or(0)
    }
}

/// Counters for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LapicStats {
    /// Interrupts acknowledged by the CPU.
    pub acks: u64,
    pub eois: u64,
    /// Timer expirations that delivered an interrupt.
    pub timer_interrupts: u64,
    pub self_ipis: u64,
}

/// The local APIC of the single vCPU.
#[derive(Debug, Clone)]
pub struct Lapic {
    apic_base: u64,
    id: u32,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: VecReg,
    tmr: VecReg,
    irr: VecReg,
    /// ESR as last latched by a write.
    esr: u32,
    /// Errors detected since the last ESR write.
    esr_pending: u32,
    icr_lo: u32,
    icr_hi: u32,
    lvt: [u32; LVT_COUNT],
    timer_initial: u32,
    timer_dcr: u32,
    /// Time (ns) from which the current divider counts.
    timer_start_ns: u64,
    /// Ticks counted before `timer_start_ns` (kept across DCR changes).
    timer_base_ticks: u64,
    /// Expirations already handled since the count was written.
    timer_fired: u64,
    now_ns: u64,
    stats: LapicStats,
}

impl Default for Lapic {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Lapic {
    /// Power-up state of the APIC with ID `apic_id`: enabled at the
    /// default base (BSP), software-disabled, LVTs masked.
    pub fn new(apic_id: u8) -> Self {
        let mut l = Self {
            apic_base: LAPIC_DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP,
            id: u32::from(apic_id) << 24,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            isr: VecReg::default(),
            tmr: VecReg::default(),
            irr: VecReg::default(),
            esr: 0,
            esr_pending: 0,
            icr_lo: 0,
            icr_hi: 0,
            lvt: [LVT_MASKED; LVT_COUNT],
            timer_initial: 0,
            timer_dcr: 0,
            timer_start_ns: 0,
            timer_base_ticks: 0,
            timer_fired: 0,
            now_ns: 0,
            stats: LapicStats::default(),
        };
        l.reset_registers();
        l
    }

    /// The register state of SDM "power-up or reset" (the ID and base stay).
    fn reset_registers(&mut self) {
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = 0xffff_ffff;
        self.svr = 0xff;
        self.isr = VecReg::default();
        self.tmr = VecReg::default();
        self.irr = VecReg::default();
        self.esr = 0;
        self.esr_pending = 0;
        self.icr_lo = 0;
        self.icr_hi = 0;
        self.lvt = [LVT_MASKED; LVT_COUNT];
        self.timer_initial = 0;
        self.timer_dcr = 0;
        self.timer_base_ticks = 0;
        self.timer_fired = 0;
        self.timer_start_ns = self.now_ns;
    }

    // ----- state queries -----

    /// IA32_APIC_BASE bit 11.
    pub fn hw_enabled(&self) -> bool {
        self.apic_base & APIC_BASE_ENABLE != 0
    }

    /// SVR bit 8.
    pub fn sw_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    /// Physical base of the register page.
    pub fn base(&self) -> u64 {
        self.apic_base & APIC_BASE_ADDR_MASK
    }

    /// The register page is decoded: globally enabled, xAPIC (not x2APIC)
    /// mode.
    pub fn mmio_enabled(&self) -> bool {
        self.hw_enabled() && self.apic_base & APIC_BASE_EXTD == 0
    }

    pub fn apic_id(&self) -> u8 {
        (self.id >> 24) as u8
    }

    pub fn tpr(&self) -> u8 {
        self.tpr as u8
    }

    /// The 8259's INTR goes to the CPU directly (virtual-wire mode): the
    /// APIC is globally or software disabled, or LINT0 is an unmasked
    /// ExtINT input. Otherwise the PIC is cut off (e.g. Linux masks LINT0
    /// once it uses the APIC timer and an I/O APIC).
    pub fn pic_passthrough(&self) -> bool {
        let lint0 = self.lvt[LVT_LINT0];
        !self.hw_enabled()
            || !self.sw_enabled()
            || (lint0 & LVT_MASKED == 0 && (lint0 >> 8) & 7 == DELIVERY_EXTINT)
    }

    pub fn lvt(&self, index: usize) -> Option<u32> {
        self.lvt.get(index).copied()
    }

    pub fn stats(&self) -> LapicStats {
        self.stats
    }

    /// Processor priority: TPR, or the in-service class if higher.
    pub fn ppr(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0);
        let tpr = self.tpr as u8;
        if tpr >> 4 >= isrv >> 4 {
            tpr
        } else {
            isrv & 0xf0
        }
    }

    /// Arbitration priority (P6-era register, kept for completeness).
    fn apr(&self) -> u8 {
        let tpr = self.tpr as u8;
        let top = self
            .irr
            .highest()
            .unwrap_or(0)
            .max(self.isr.highest().unwrap_or(0));
        if tpr >> 4 >= top >> 4 {
            tpr
        } else {
            top & 0xf0
        }
    }

    // ----- the CPU side -----

    /// IA32_APIC_BASE was written (the CPU checked reserved bits).
    /// Clearing the global enable returns the APIC to its power-up state.
    pub fn set_apic_base(&mut self, value: u64) {
        let was_enabled = self.hw_enabled();
        self.apic_base = value;
        if was_enabled && !self.hw_enabled() {
            self.reset_registers();
        }
    }

    /// TPR written through CR8 (CR8 = `TPR[7:4]`) or by the accelerator:
    /// `tpr` is the full register value.
    pub fn set_tpr(&mut self, tpr: u8) {
        self.tpr = u32::from(tpr);
    }

    /// An interrupt is presented to the CPU.
    pub fn interrupt_pending(&self) -> bool {
        self.hw_enabled()
            && self.sw_enabled()
            && self.irr.highest().is_some_and(|v| v >> 4 > self.ppr() >> 4)
    }

    /// INTA: move the highest deliverable IRR vector to ISR and return it.
    /// `None` if nothing is deliverable (the caller checks
    /// [`Self::interrupt_pending`] first; a real APIC would answer a late
    /// INTA with the spurious vector).
    pub fn acknowledge(&mut self) -> Option<u8> {
        if !self.interrupt_pending() {
            return None;
        }
        let v = self.irr.highest()?;
        self.irr.clear(v);
        self.isr.set(v);
        self.stats.acks += 1;
        Some(v)
    }

    /// The spurious-interrupt vector (`SVR[7:0]`).
    pub fn spurious_vector(&self) -> u8 {
        self.svr as u8
    }

    // ----- interrupt sources -----

    /// Accept a fixed interrupt (from an IPI, an LVT or a future I/O APIC).
    /// Vectors 0-15 are illegal and set ESR bit 6 instead.
    pub fn accept_fixed(&mut self, vector: u8, level_triggered: bool) {
        if vector < 16 {
            self.signal_error(ESR_RECV_ILLEGAL_VECTOR);
            return;
        }
        self.irr.set(vector);
        if level_triggered {
            self.tmr.set(vector);
        } else {
            self.tmr.clear(vector);
        }
    }

    /// Record an error; the error LVT fires once per new error bit.
    fn signal_error(&mut self, bits: u32) {
        if self.esr_pending & bits == bits {
            return;
        }
        self.esr_pending |= bits;
        let lvt = self.lvt[LVT_ERROR];
        if lvt & LVT_MASKED == 0 {
            // An illegal error vector sets ESR bit 6, already handled by
            // the guard above on the next round.
            self.accept_fixed(lvt as u8, false);
        }
    }

    fn eoi(&mut self) {
        if let Some(v) = self.isr.highest() {
            self.isr.clear(v);
            // A level-triggered vector would be EOI-broadcast to the I/O
            // APIC here; there is none.
            self.tmr.clear(v);
            self.stats.eois += 1;
        }
    }

    fn send_ipi(&mut self) {
        let lo = self.icr_lo;
        let vector = lo as u8;
        let delivery = (lo >> 8) & 7;
        let logical = lo & (1 << 11) != 0;
        let level = lo & (1 << 15) != 0;
        let to_self = match (lo >> 18) & 3 {
            0 => self.destination_matches((self.icr_hi >> 24) as u8, logical),
            1 | 2 => true,
            _ => false,
        };
        if !matches!(delivery, 0 | 1) {
            return; // SMI, NMI, INIT, SIPI, ExtINT: no other CPU, not modelled
        }
        if vector < 16 {
            self.signal_error(ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        if to_self {
            self.stats.self_ipis += 1;
            self.accept_fixed(vector, level);
        }
    }

    fn destination_matches(&self, dest: u8, logical: bool) -> bool {
        if dest == 0xff {
            return true;
        }
        if !logical {
            return dest == self.apic_id();
        }
        let ldr = (self.ldr >> 24) as u8;
        if self.dfr >> 28 == 0xf {
            ldr & dest != 0 // flat model
        } else {
            ldr >> 4 == dest >> 4 && ldr & dest & 0xf != 0 // cluster model
        }
    }

    // ----- timer -----

    fn timer_divisor(&self) -> u64 {
        let v = (self.timer_dcr & 3) | ((self.timer_dcr >> 1) & 4);
        1u64 << ((v + 1) & 7)
    }

    fn timer_periodic(&self) -> bool {
        self.lvt[LVT_TIMER] & LVT_TIMER_PERIODIC != 0
    }

    fn timer_ticks(&self, now_ns: u64) -> u64 {
        self.timer_base_ticks
            .saturating_add(now_ns.saturating_sub(self.timer_start_ns) / self.timer_divisor())
    }

    fn timer_current_count(&self) -> u32 {
        let init = u64::from(self.timer_initial);
        if init == 0 {
            return 0;
        }
        let t = self.timer_ticks(self.now_ns);
        let cur = if self.timer_periodic() {
            init - t % init
        } else {
            init.saturating_sub(t)
        };
        cur as u32
    }

    /// Move time to `now_ns`: fire the timer if it expired.
    pub fn advance(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
        let init = u64::from(self.timer_initial);
        if init == 0 {
            return;
        }
        let t = self.timer_ticks(self.now_ns);
        let expirations = if self.timer_periodic() {
            t / init
        } else {
            u64::from(t >= init)
        };
        if expirations > self.timer_fired {
            self.timer_fired = expirations;
            let lvt = self.lvt[LVT_TIMER];
            if lvt & LVT_MASKED == 0 {
                self.stats.timer_interrupts += 1;
                self.accept_fixed(lvt as u8, false);
            }
        }
    }

    /// When the timer next delivers an interrupt, in board nanoseconds.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let init = u64::from(self.timer_initial);
        if init == 0 || self.lvt[LVT_TIMER] & LVT_MASKED != 0 {
            return None;
        }
        let target = if self.timer_periodic() {
            self.timer_fired.saturating_add(1).saturating_mul(init)
        } else if self.timer_fired == 0 {
            init
        } else {
            return None;
        };
        let remaining = target.saturating_sub(self.timer_base_ticks);
        Some(
            self.timer_start_ns
                .saturating_add(remaining.saturating_mul(self.timer_divisor())),
        )
    }

    fn timer_set_initial(&mut self, v: u32) {
        self.timer_initial = v;
        self.timer_start_ns = self.now_ns;
        self.timer_base_ticks = 0;
        self.timer_fired = 0;
    }

    fn timer_set_dcr(&mut self, v: u32) {
        // Keep the ticks counted so far; count on with the new divider.
        self.timer_base_ticks = self.timer_ticks(self.now_ns);
        self.timer_start_ns = self.now_ns;
        self.timer_dcr = v & 0xb;
    }

    // ----- registers -----

    /// Register `reg` (offset >> 4) without side effects; `None` if there
    /// is no such register.
    fn reg_value(&self, reg: u64) -> Option<u32> {
        Some(match reg {
            REG_ID => self.id,
            REG_VERSION => LAPIC_VERSION,
            REG_TPR => self.tpr,
            REG_APR => u32::from(self.apr()),
            REG_PPR => u32::from(self.ppr()),
            REG_EOI | REG_RRD => 0,
            REG_LDR => self.ldr,
            REG_DFR => self.dfr,
            REG_SVR => self.svr,
            0x10..=0x17 => self.isr.word(reg - REG_ISR0),
            0x18..=0x1f => self.tmr.word(reg - REG_TMR0),
            0x20..=0x27 => self.irr.word(reg - REG_IRR0),
            REG_ESR => self.esr,
            REG_ICR_LO => self.icr_lo,
            REG_ICR_HI => self.icr_hi,
            0x32..=0x37 => self.lvt[(reg - REG_LVT0) as usize],
            REG_TIMER_INIT => self.timer_initial,
            REG_TIMER_CUR => self.timer_current_count(),
            REG_TIMER_DCR => self.timer_dcr,
            _ => return None,
        })
    }

    /// Read register `reg`; reserved ones read 0 and set ESR bit 7.
    pub fn read_reg(&mut self, reg: u64) -> u32 {
        match self.reg_value(reg) {
            Some(v) => v,
            None => {
                self.signal_error(ESR_ILLEGAL_REGISTER);
                0
            }
        }
    }

    /// Write register `reg` (offset >> 4). Read-only registers ignore
    /// writes; reserved ones set ESR bit 7.
    pub fn write_reg(&mut self, reg: u64, v: u32) {
        match reg {
            REG_ID => self.id = v & 0xff00_0000,
            REG_TPR => self.tpr = v & 0xff,
            REG_EOI => self.eoi(),
            REG_LDR => self.ldr = v & 0xff00_0000,
            REG_DFR => self.dfr = v | 0x0fff_ffff,
            REG_SVR => {
                self.svr = v & SVR_WRITABLE;
                if !self.sw_enabled() {
                    for l in self.lvt.iter_mut() {
                        *l |= LVT_MASKED;
                    }
                }
            }
            REG_ESR => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            REG_ICR_LO => {
                self.icr_lo = v & ICR_LO_WRITABLE;
                self.send_ipi();
            }
            REG_ICR_HI => self.icr_hi = v & 0xff00_0000,
            0x32..=0x37 => {
                let i = (reg - REG_LVT0) as usize;
                let mut val = v & LVT_WRITABLE[i];
                if !self.sw_enabled() {
                    val |= LVT_MASKED;
                }
                self.lvt[i] = val;
            }
            REG_TIMER_INIT => self.timer_set_initial(v),
            REG_TIMER_DCR => self.timer_set_dcr(v),
            REG_VERSION | REG_APR | REG_PPR | REG_RRD | 0x10..=0x27 | REG_TIMER_CUR => {}
            _ => self.signal_error(ESR_ILLEGAL_REGISTER),
        }
    }
}

/// The register page. Registers are 32 bits at 16-byte strides and the SDM
/// requires aligned 32-bit accesses; other widths are handled byte-wise
/// within each 16-byte slot (bytes 4-15 of a slot read 0, ignore writes),
/// and a narrow write merges into the register's current value.
impl MmioDevice for Lapic {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let mut slot: Option<(u64, [u8; 4])> = None;
        for (i, b) in data.iter_mut().enumerate() {
            let off = offset.wrapping_add(i as u64);
            let reg = (off & (LAPIC_PAGE_SIZE - 1)) >> 4;
            let byte = (off & 0xf) as usize;
            if byte >= 4 {
                *b = 0;
                continue;
            }
            let bytes = match slot {
                Some((r, bytes)) if r == reg => bytes,
                _ => {
                    let bytes = self.read_reg(reg).to_le_bytes();
                    slot = Some((reg, bytes));
                    bytes
                }
            };
            *b = bytes[byte];
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        // Group the bytes by register, then write each register once.
        let mut i = 0;
        while i < data.len() {
            let off = offset.wrapping_add(i as u64);
            let reg = (off & (LAPIC_PAGE_SIZE - 1)) >> 4;
            let mut bytes = self.reg_value(reg).unwrap_or(0).to_le_bytes();
            let mut touched = false;
            while i < data.len() {
                let o = offset.wrapping_add(i as u64);
                if (o & (LAPIC_PAGE_SIZE - 1)) >> 4 != reg {
                    break;
                }
                let byte = (o & 0xf) as usize;
                if let (Some(dst), Some(src)) = (bytes.get_mut(byte), data.get(i)) {
                    *dst = *src;
                    touched = true;
                }
                i += 1;
            }
            if touched {
                self.write_reg(reg, u32::from_le_bytes(bytes));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(l: &mut Lapic, off: u64, v: u32) {
        l.write(off, &v.to_le_bytes());
    }

    fn r(l: &mut Lapic, off: u64) -> u32 {
        let mut b = [0u8; 4];
        l.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    /// Software-enabled APIC with spurious vector 0xff.
    fn enabled() -> Lapic {
        let mut l = Lapic::new(0);
        w(&mut l, 0xf0, 0x1ff);
        l
    }

    #[test]
    fn reset_state_and_identification() {
        let mut l = Lapic::new(3);
        assert_eq!(r(&mut l, 0x20), 3 << 24);
        assert_eq!(r(&mut l, 0x30), 0x0005_0014);
        assert_eq!(r(&mut l, 0xe0), 0xffff_ffff);
        assert_eq!(r(&mut l, 0xf0), 0xff);
        assert_eq!(r(&mut l, 0x350), LVT_MASKED);
        assert!(l.hw_enabled() && !l.sw_enabled());
        assert!(l.pic_passthrough(), "software-disabled: virtual wire");
        assert_eq!(l.base(), LAPIC_DEFAULT_BASE);
    }

    #[test]
    fn lvt_masked_while_software_disabled() {
        let mut l = Lapic::new(0);
        w(&mut l, 0x350, 0x700); // LINT0 ExtINT unmasked
        assert_eq!(r(&mut l, 0x350), 0x10700, "stays masked when disabled");
        w(&mut l, 0xf0, 0x1ff);
        w(&mut l, 0x350, 0x700);
        assert_eq!(r(&mut l, 0x350), 0x700);
        assert!(l.pic_passthrough(), "ExtINT LINT0");
        w(&mut l, 0x350, 0x10700);
        assert!(!l.pic_passthrough(), "masked LINT0 cuts the PIC off");
        w(&mut l, 0xf0, 0x0ff);
        assert_eq!(
            r(&mut l, 0x320) & LVT_MASKED,
            LVT_MASKED,
            "disable masks all LVTs"
        );
    }

    #[test]
    fn self_ipi_ack_eoi() {
        let mut l = enabled();
        w(&mut l, 0x300, 0x0004_0040); // shorthand self, fixed, vector 0x40
        assert!(l.interrupt_pending());
        assert_eq!(r(&mut l, 0x200 + 0x20), 1, "IRR bit 0x40 (word 2, bit 0)");
        assert_eq!(l.acknowledge(), Some(0x40));
        assert!(!l.interrupt_pending());
        assert_eq!(r(&mut l, 0x100 + 0x20), 1, "ISR bit 0x40");
        assert_eq!(l.ppr(), 0x40);
        w(&mut l, 0xb0, 0);
        assert_eq!(r(&mut l, 0x120), 0);
        assert_eq!(l.acknowledge(), None);
        // All-including-self, and physical destination = own ID.
        w(&mut l, 0x300, 0x0008_0041);
        w(&mut l, 0x310, 0);
        w(&mut l, 0x300, 0x0000_0042);
        // All-excluding-self: nobody else.
        w(&mut l, 0x300, 0x000c_0043);
        // Another physical ID: dropped.
        w(&mut l, 0x310, 5 << 24);
        w(&mut l, 0x300, 0x0000_0044);
        assert_eq!(l.acknowledge(), Some(0x42), "highest vector first");
        assert_eq!(l.acknowledge(), None, "0x41 is in the in-service class");
        w(&mut l, 0xb0, 0);
        assert_eq!(l.acknowledge(), Some(0x41));
        w(&mut l, 0xb0, 0);
        assert_eq!(l.acknowledge(), None, "0x43 and 0x44 were not for us");
        assert_eq!(l.stats().self_ipis, 3);
    }

    #[test]
    fn priority_nesting_and_eoi_order() {
        let mut l = enabled();
        l.accept_fixed(0x31, false);
        assert_eq!(l.acknowledge(), Some(0x31));
        l.accept_fixed(0x35, false);
        assert!(!l.interrupt_pending(), "same priority class as in service");
        l.accept_fixed(0x50, false);
        assert_eq!(l.acknowledge(), Some(0x50), "higher class nests");
        w(&mut l, 0xb0, 0); // EOI clears 0x50
        assert!(!l.interrupt_pending());
        w(&mut l, 0xb0, 0); // EOI clears 0x31
        assert_eq!(l.acknowledge(), Some(0x35));
    }

    #[test]
    fn tpr_masking() {
        let mut l = enabled();
        w(&mut l, 0x80, 0x50);
        l.accept_fixed(0x55, false);
        assert!(!l.interrupt_pending(), "class 5 not above TPR class 5");
        l.accept_fixed(0x61, false);
        assert!(l.interrupt_pending());
        assert_eq!(l.acknowledge(), Some(0x61));
        w(&mut l, 0xb0, 0);
        l.set_tpr(0x40); // CR8 = 4
        assert_eq!(r(&mut l, 0x80), 0x40);
        assert_eq!(l.acknowledge(), Some(0x55));
        assert_eq!(r(&mut l, 0xa0), 0x50, "PPR = in-service class");
    }

    #[test]
    fn illegal_vectors_and_registers_set_esr() {
        let mut l = enabled();
        w(&mut l, 0x370, 0xfe); // error LVT vector 0xfe
        w(&mut l, 0x300, 0x0004_0005); // self-IPI vector 5
        assert_eq!(r(&mut l, 0x40), 0, "reserved register reads 0");
        w(&mut l, 0x280, 0);
        assert_eq!(
            r(&mut l, 0x280),
            ESR_SEND_ILLEGAL_VECTOR | ESR_ILLEGAL_REGISTER
        );
        assert_eq!(l.acknowledge(), Some(0xfe), "error interrupt");
        w(&mut l, 0x280, 0);
        assert_eq!(r(&mut l, 0x280), 0, "write latches (now empty) errors");
        l.accept_fixed(3, false);
        assert!(!l.interrupt_pending());
    }

    #[test]
    fn timer_one_shot() {
        let mut l = enabled();
        w(&mut l, 0x3e0, 0x3); // divide by 16
        w(&mut l, 0x320, 0x30); // one-shot, vector 0x30
        w(&mut l, 0x380, 1000);
        assert_eq!(l.next_deadline_ns(), Some(16_000));
        l.advance(8_000);
        assert_eq!(r(&mut l, 0x390), 500);
        assert!(!l.interrupt_pending());
        l.advance(16_000);
        assert_eq!(r(&mut l, 0x390), 0);
        assert_eq!(l.acknowledge(), Some(0x30));
        w(&mut l, 0xb0, 0);
        assert_eq!(l.next_deadline_ns(), None);
        l.advance(1_000_000);
        assert!(!l.interrupt_pending(), "fires once");
        assert_eq!(l.stats().timer_interrupts, 1);
    }

    #[test]
    fn timer_periodic_count() {
        let mut l = enabled();
        w(&mut l, 0x3e0, 0xb); // divide by 1
        w(&mut l, 0x320, 0x2_0031); // periodic
        w(&mut l, 0x380, 100_000); // 100 µs
        let mut fired = 0;
        let mut t = 0;
        while t < 10_000_000 {
            t += 10_000;
            l.advance(t);
            while let Some(v) = l.acknowledge() {
                assert_eq!(v, 0x31);
                fired += 1;
                w(&mut l, 0xb0, 0);
            }
        }
        assert_eq!(fired, 100);
        assert_eq!(l.next_deadline_ns(), Some(10_100_000));
        l.advance(10_050_000);
        assert_eq!(r(&mut l, 0x390), 50_000);
        // Masked: counts on, no interrupts, no deadline.
        w(&mut l, 0x320, 0x3_0031);
        assert_eq!(l.next_deadline_ns(), None);
        l.advance(20_000_000);
        assert!(!l.interrupt_pending());
        // Writing 0 stops it.
        w(&mut l, 0x380, 0);
        assert_eq!(r(&mut l, 0x390), 0);
    }

    #[test]
    fn timer_divider_change_keeps_elapsed_ticks() {
        let mut l = enabled();
        w(&mut l, 0x3e0, 0x0); // divide by 2
        w(&mut l, 0x320, 0x30);
        w(&mut l, 0x380, 1000);
        l.advance(200); // 100 ticks
        w(&mut l, 0x3e0, 0x1); // divide by 4
        l.advance(600); // +100 ticks
        assert_eq!(r(&mut l, 0x390), 800);
        assert_eq!(l.next_deadline_ns(), Some(600 + 800 * 4));
    }

    #[test]
    fn global_disable_resets_and_unmaps() {
        let mut l = enabled();
        l.accept_fixed(0x40, false);
        l.set_apic_base(LAPIC_DEFAULT_BASE | APIC_BASE_BSP);
        assert!(!l.mmio_enabled());
        assert!(l.pic_passthrough());
        assert!(!l.interrupt_pending());
        l.set_apic_base(0xfed0_0000 | APIC_BASE_ENABLE);
        assert_eq!(l.base(), 0xfed0_0000);
        assert!(!l.sw_enabled(), "back to power-up state");
        assert_eq!(r(&mut l, 0x200 + 0x20), 0);
    }

    #[test]
    fn access_widths() {
        let mut l = enabled();
        w(&mut l, 0x80, 0x12);
        let mut b = [0u8; 1];
        l.read(0x80, &mut b);
        assert_eq!(b, [0x12]);
        let mut q = [0u8; 8];
        l.read(0x30, &mut q);
        assert_eq!(
            q,
            [0x14, 0, 0x05, 0, 0, 0, 0, 0],
            "bytes 4-15 of a slot read 0"
        );
        // 64-bit write to TPR's slot: low dword is the register.
        l.write(0x80, &0xdead_0000_0000_0020u64.to_le_bytes());
        assert_eq!(r(&mut l, 0x80), 0x20);
        // Byte write to ICR high merges.
        l.write(0x313, &[0x07]);
        assert_eq!(r(&mut l, 0x310), 0x0700_0000);
    }
}
