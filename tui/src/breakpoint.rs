//! Breakpoints: on an instruction address, on a trap cause ("stop on the
//! next CR3 write", "on #GP", "on INT 0x80"), on a processor-mode switch or
//! on a ring change. Parsed from what the user types at the `b` prompt.

use cpu::{CpuEvent, IntKind};

/// One breakpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakpoint {
    /// Stop before executing the instruction at this RIP.
    Addr(u64),
    /// Stop after an exception or interrupt with this vector is delivered.
    Vector(u8),
    /// Stop after any exception or interrupt is delivered.
    AnyInterrupt,
    /// Stop after an external interrupt is delivered.
    Irq,
    /// Stop after a write to this control register (any, if `None`).
    CrWrite(Option<u8>),
    /// Stop after a port access (to this port, if given).
    Io(Option<u16>),
    /// Stop after the processor mode changes (real → protected → long…).
    ModeSwitch,
    /// Stop after the CPL changes.
    RingChange,
    /// Stop after the virtualization monitor takes a trap (of this cause,
    /// one of [`cpu::TRAP_CAUSES`], if given).
    Trap(Option<&'static str>),
}

/// Exception mnemonics the prompt accepts, with or without '#'.
const EXCEPTIONS: &[(&str, u8)] = &[
    ("de", 0),
    ("db", 1),
    ("nmi", 2),
    ("bp", 3),
    ("of", 4),
    ("br", 5),
    ("ud", 6),
    ("nm", 7),
    ("df", 8),
    ("ts", 10),
    ("np", 11),
    ("ss", 12),
    ("gp", 13),
    ("pf", 14),
    ("mf", 16),
    ("ac", 17),
    ("mc", 18),
    ("xm", 19),
];

/// What the `b` prompt accepts, for the help text and error messages.
pub const SYNTAX: &str =
    "0xADDR | #gp #pf #ud … | int [N] | irq | cr [N] | io [PORT] | mode | ring | trap [CAUSE]";

/// Parse a number: 0x-prefixed hex, or decimal.
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parse an address: 0x-prefixed or bare hex (the code pane shows hex).
pub fn parse_addr(s: &str) -> Option<u64> {
    let s = s.trim();
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.is_empty() {
        return None;
    }
    u64::from_str_radix(&h.replace('_', ""), 16).ok()
}

impl Breakpoint {
    /// Parse the text typed at the breakpoint prompt.
    pub fn parse(text: &str) -> Result<Breakpoint, String> {
        let t = text.trim().to_ascii_lowercase();
        let mut words = t.split_whitespace();
        let first = words.next().unwrap_or("");
        let arg = words.next();
        if words.next().is_some() {
            return Err(format!("'{text}': too many words; use {SYNTAX}"));
        }
        let need_number = |what: &str, max: u64| -> Result<Option<u64>, String> {
            match arg {
                None => Ok(None),
                Some(a) => match number(a) {
                    Some(n) if n <= max => Ok(Some(n)),
                    _ => Err(format!("'{a}' is not a {what}")),
                },
            }
        };
        let name = first.trim_start_matches('#');
        if let Some(&(_, v)) = EXCEPTIONS.iter().find(|(n, _)| *n == name) {
            if arg.is_none() {
                return Ok(Breakpoint::Vector(v));
            }
        }
        Ok(match first {
            "int" | "vector" | "exc" => match need_number("vector (0-255)", 255)? {
                Some(v) => Breakpoint::Vector(v as u8),
                None => Breakpoint::AnyInterrupt,
            },
            "irq" => Breakpoint::Irq,
            "cr" => Breakpoint::CrWrite(need_number("control register", 8)?.map(|n| n as u8)),
            "cr0" | "cr2" | "cr3" | "cr4" | "cr8" if arg.is_none() => {
                Breakpoint::CrWrite(first[2..].parse().ok())
            }
            "io" | "port" => Breakpoint::Io(need_number("port", 0xffff)?.map(|n| n as u16)),
            "mode" if arg.is_none() => Breakpoint::ModeSwitch,
            "ring" | "cpl" if arg.is_none() => Breakpoint::RingChange,
            "trap" => match arg {
                None => Breakpoint::Trap(None),
                Some(a) => match cpu::TRAP_CAUSES.iter().find(|c| **c == a) {
                    Some(c) => Breakpoint::Trap(Some(c)),
                    None => {
                        return Err(format!(
                            "'{a}' is not a trap cause: use one of {}",
                            cpu::TRAP_CAUSES.join(", ")
                        ))
                    }
                },
            },
            _ if arg.is_none() => match parse_addr(first) {
                Some(a) => Breakpoint::Addr(a),
                None => return Err(format!("'{text}' is not a breakpoint: use {SYNTAX}")),
            },
            _ => return Err(format!("'{text}' is not a breakpoint: use {SYNTAX}")),
        })
    }

    /// Does this event trigger the breakpoint? (Addresses and ring changes
    /// are checked against the CPU state, not events.)
    pub fn matches_event(&self, ev: &CpuEvent) -> bool {
        match (self, ev) {
            (Breakpoint::Vector(v), CpuEvent::Interrupt { vector, .. }) => v == vector,
            (Breakpoint::AnyInterrupt, CpuEvent::Interrupt { .. }) => true,
            (Breakpoint::Irq, CpuEvent::Interrupt { kind, .. }) => *kind == IntKind::External,
            (Breakpoint::CrWrite(want), CpuEvent::CrWrite { cr, .. }) => {
                want.is_none_or(|w| w == *cr)
            }
            (Breakpoint::Io(want), CpuEvent::Pio { port, .. }) => want.is_none_or(|w| w == *port),
            (Breakpoint::ModeSwitch, CpuEvent::ModeChange { .. }) => true,
            (Breakpoint::Trap(want), CpuEvent::Trap(t)) => want.is_none_or(|w| w == t.cause),
            _ => false,
        }
    }

    /// Needs port-I/O events from the CPU.
    pub fn needs_io_events(&self) -> bool {
        matches!(self, Breakpoint::Io(_))
    }

    /// How the breakpoint list shows it.
    pub fn describe(&self) -> String {
        match self {
            Breakpoint::Addr(a) => format!("{a:#x}"),
            Breakpoint::Vector(v) => {
                let n = cpu::fault::vector_name(*v);
                if n == "INT" {
                    format!("vector {v:#04x}")
                } else {
                    n.to_string()
                }
            }
            Breakpoint::AnyInterrupt => "any int".into(),
            Breakpoint::Irq => "irq".into(),
            Breakpoint::CrWrite(Some(n)) => format!("CR{n} write"),
            Breakpoint::CrWrite(None) => "CR write".into(),
            Breakpoint::Io(Some(p)) => format!("port {p:#x}"),
            Breakpoint::Io(None) => "port I/O".into(),
            Breakpoint::ModeSwitch => "mode switch".into(),
            Breakpoint::RingChange => "ring change".into(),
            Breakpoint::Trap(Some(c)) => format!("trap {c}"),
            Breakpoint::Trap(None) => "any trap".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let p = |s| Breakpoint::parse(s).unwrap();
        assert_eq!(p("0x1005d2"), Breakpoint::Addr(0x1005d2));
        assert_eq!(p("1005d2"), Breakpoint::Addr(0x1005d2));
        assert_eq!(p("#GP"), Breakpoint::Vector(13));
        assert_eq!(p("pf"), Breakpoint::Vector(14));
        assert_eq!(p("int 0x80"), Breakpoint::Vector(0x80));
        assert_eq!(p("int 128"), Breakpoint::Vector(0x80));
        assert_eq!(p("int"), Breakpoint::AnyInterrupt);
        assert_eq!(p("cr3"), Breakpoint::CrWrite(Some(3)));
        assert_eq!(p("cr 0"), Breakpoint::CrWrite(Some(0)));
        assert_eq!(p("cr"), Breakpoint::CrWrite(None));
        assert_eq!(p("io 0xf4"), Breakpoint::Io(Some(0xf4)));
        assert_eq!(p(" Mode "), Breakpoint::ModeSwitch);
        assert_eq!(p("ring"), Breakpoint::RingChange);
        assert_eq!(p("trap"), Breakpoint::Trap(None));
        assert_eq!(p("trap pt_write"), Breakpoint::Trap(Some("pt_write")));
        for bad in [
            "",
            "zz",
            "int 300",
            "cr 9",
            "io 0x10000",
            "mode x",
            "a b c",
            "trap nope",
        ] {
            assert!(Breakpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches() {
        let cr3 = CpuEvent::CrWrite {
            cr: 3,
            old: 0,
            new: 0x1000,
        };
        let cr0 = CpuEvent::CrWrite {
            cr: 0,
            old: 0,
            new: 1,
        };
        assert!(Breakpoint::CrWrite(Some(3)).matches_event(&cr3));
        assert!(!Breakpoint::CrWrite(Some(3)).matches_event(&cr0));
        assert!(Breakpoint::CrWrite(None).matches_event(&cr0));
        let gp = CpuEvent::Interrupt {
            vector: 13,
            kind: IntKind::Exception,
            error_code: Some(0),
            rip: 0,
            cpl: 3,
        };
        assert!(Breakpoint::Vector(13).matches_event(&gp));
        assert!(Breakpoint::AnyInterrupt.matches_event(&gp));
        assert!(!Breakpoint::Irq.matches_event(&gp));
        assert!(!Breakpoint::Addr(0).matches_event(&gp));
        let mode = CpuEvent::ModeChange {
            from: "compat32",
            to: "long64",
        };
        assert!(Breakpoint::ModeSwitch.matches_event(&mode));
        let trap = CpuEvent::Trap(cpu::TrapEvent {
            cause: "pt_write",
            rip: 0x1000,
            mode: "full",
            guest_cpl: 0,
            real_cpl: 1,
            detail: String::new(),
            translation: None,
        });
        assert!(Breakpoint::Trap(Some("pt_write")).matches_event(&trap));
        assert!(Breakpoint::Trap(None).matches_event(&trap));
        assert!(!Breakpoint::Trap(Some("io")).matches_event(&trap));
        assert_eq!(Breakpoint::Vector(13).describe(), "#GP");
        assert_eq!(Breakpoint::CrWrite(Some(3)).describe(), "CR3 write");
    }
}
