//! The divergence report: where, what, and the two states side by side.

use super::compare::{flag_names, ByteDiff, Masks, Row};
use cpu::CpuState;
use std::fmt::Write;

/// Everything a report shows.
pub struct Divergence<'a> {
    /// Instructions retired by the interpreter before the one that
    /// diverged (its index, counting from 0).
    pub index: u64,
    /// How the instruction was compared ("single-stepped", or "end of a
    /// native ring-3 stretch of N instructions").
    pub how: String,
    /// The state before the instruction (interpreter = KVM then).
    pub pre: &'a CpuState,
    /// Its bytes and Intel-syntax disassembly.
    pub bytes: &'a [u8],
    pub asm: &'a str,
    /// What differs, in words (e.g. "RFLAGS", or a device access).
    pub what: String,
    pub rows: &'a [Row],
    pub masks: &'a Masks,
    pub mem: &'a [ByteDiff],
    pub more_mem: bool,
}

/// The mark in front of a differing row.
pub const MARK: &str = ">>";

impl Divergence<'_> {
    pub fn render(&self) -> String {
        let mut t = String::new();
        let hex: Vec<String> = self.bytes.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(
            t,
            "lockstep divergence at instruction {} ({})",
            self.index, self.how
        );
        let _ = writeln!(
            t,
            "  RIP {:#x} ({}, CPL {}): {:<30} {}",
            self.pre.rip,
            self.pre.mode().name(),
            self.pre.cpl(),
            hex.join(" "),
            self.asm
        );
        let _ = writeln!(t, "  differs in: {}", self.what);
        if self.masks.flags != 0 || self.masks.reg.is_some() {
            let _ = writeln!(
                t,
                "  not compared (undefined per the SDM): {} {}",
                self.masks.rule,
                flag_names(self.masks.flags)
            );
        }
        let _ = writeln!(
            t,
            "  state before: RFLAGS {:#x} {}",
            self.pre.rflags,
            flag_names(self.pre.rflags)
        );
        let _ = writeln!(t, "     {:<8} {:<52} kvm", "", "interpreter");
        for r in self.rows {
            let mark = if r.differs { MARK } else { "  " };
            let _ = writeln!(t, "  {mark} {:<8} {:<52} {}", r.name, r.interp, r.kvm);
        }
        if !self.mem.is_empty() {
            let _ = writeln!(
                t,
                "  memory written by the instruction that differs (machine address: interpreter | kvm):"
            );
            for (a, x, y) in self.mem {
                let _ = writeln!(t, "  {MARK} {a:#012x}: {x:02x} | {y:02x}");
            }
            if self.more_mem {
                let _ = writeln!(t, "     ... (more bytes differ)");
            }
        }
        t
    }
}

/// Intel-syntax text of `bytes` decoded at `rip` for `bitness`.
pub fn disassemble(
    bytes: &[u8],
    bitness: u32,
    rip: u64,
) -> (Option<iced_x86::Instruction>, String) {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let mut dec = Decoder::with_ip(bitness, bytes, rip, DecoderOptions::NONE);
    let insn = dec.decode();
    if insn.is_invalid() {
        return (None, "(invalid or unreadable instruction)".to_string());
    }
    let mut text = String::new();
    IntelFormatter::new().format(&insn, &mut text);
    (Some(insn), text)
}
