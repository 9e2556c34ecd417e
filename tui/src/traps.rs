//! The traps pane's model: a bounded log of CPU events and VM exits, and a
//! counter per cause.
//!
//! Rows come from the CPU's event stream ([`CpuEvent`], the same one
//! `--trace` prints) on the interpreter, and from exit counts on KVM, where
//! exceptions and interrupts happen inside the hardware and only exits
//! reach the host. Consecutive events with the same cause at the same RIP
//! fold into one row with a count, so a polling loop doesn't flood the log.

use cpu::fault::vector_name;
use cpu::{CpuEvent, IntKind};
use std::collections::{BTreeMap, VecDeque};

/// Rows kept; older ones are dropped (the counters keep counting).
pub const MAX_ROWS: usize = 5000;

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrapRow {
    /// Sequence number of the (first) event of this row, from 1.
    pub seq: u64,
    /// Short cause: "#GP", "INT 0x80", "IRQ 0x20", "CR3 write", "mode"…
    pub cause: String,
    /// Where it happened (the faulting instruction for a fault, the next
    /// one for a trap or interrupt), when known.
    pub rip: Option<u64>,
    /// CPL when it happened, when known.
    pub cpl: Option<u8>,
    /// Error code, old → new values, port and value…
    pub detail: String,
    /// Events folded into this row.
    pub count: u64,
    /// Port or MMIO access: hidden from the log unless asked for.
    pub io: bool,
}

/// The log and its counters.
#[derive(Debug, Clone, Default)]
pub struct TrapLog {
    rows: VecDeque<TrapRow>,
    /// Port and MMIO rows, kept apart so a chatty device can't push the
    /// traps out of the log.
    io_rows: VecDeque<TrapRow>,
    /// Which log the last event went to (`true`: port/MMIO): only a
    /// repeat of the very last event folds into its row.
    last_io: Option<bool>,
    counts: BTreeMap<String, u64>,
    seq: u64,
    /// Events the machine dropped before they reached the log.
    pub dropped: u64,
}

/// How one event is shown: (cause, counter key, rip, cpl, detail, io).
struct Described {
    cause: String,
    key: String,
    rip: Option<u64>,
    cpl: Option<u8>,
    detail: String,
    io: bool,
}

fn describe(ev: &CpuEvent, rip_hint: Option<u64>) -> Option<Described> {
    let plain = |cause: String, detail: String| Described {
        key: cause.clone(),
        cause,
        rip: rip_hint,
        cpl: None,
        detail,
        io: false,
    };
    Some(match ev {
        CpuEvent::Exec { .. } => return None,
        CpuEvent::Interrupt {
            vector,
            kind,
            error_code,
            rip,
            cpl,
        } => {
            let cause = match kind {
                IntKind::Exception | IntKind::SoftwareException => {
                    let name = vector_name(*vector);
                    if name == "INT" {
                        format!("exc {vector:#04x}")
                    } else {
                        name.to_string()
                    }
                }
                IntKind::Nmi => "NMI".to_string(),
                IntKind::External => format!("IRQ {vector:#04x}"),
                IntKind::Software => format!("INT {vector:#04x}"),
            };
            let mut detail = match error_code {
                Some(ec) => format!("ec={ec:#x}"),
                None => String::new(),
            };
            if *kind == IntKind::SoftwareException {
                detail.push_str("INT3/INTO");
            }
            Described {
                key: cause.clone(),
                cause,
                rip: Some(*rip),
                cpl: Some(*cpl),
                detail,
                io: false,
            }
        }
        CpuEvent::Unimplemented { rip, text, .. } => Described {
            rip: Some(*rip),
            ..plain("#UD unimpl".into(), text.clone())
        },
        CpuEvent::DoubleFault { first, second } => {
            plain("#DF".into(), format!("{second} while delivering {first}"))
        }
        CpuEvent::TripleFault { last } => plain(
            "triple fault".into(),
            format!("{last} could not be delivered: shutdown"),
        ),
        CpuEvent::CrWrite { cr, old, new } => {
            plain(format!("CR{cr} write"), format!("{old:#x} -> {new:#x}"))
        }
        CpuEvent::ModeChange { from, to } => plain("mode".into(), format!("{from} -> {to}")),
        CpuEvent::Trap(t) => {
            let mut detail = t.detail.clone();
            if let Some(tr) = t.translation {
                let part = |v: Option<u64>| v.map_or("-".to_string(), |a| format!("{a:#x}"));
                detail.push_str(&format!(
                    " [VA {:#x} -> PA {} -> MA {}]",
                    tr.va,
                    part(tr.pa),
                    part(tr.ma)
                ));
            }
            Described {
                key: format!("trap {}", t.cause),
                cause: format!("trap {}", t.cause),
                rip: Some(t.rip),
                cpl: Some(t.guest_cpl),
                detail,
                io: false,
            }
        }
        CpuEvent::TlbFlush { va, global } => match va {
            Some(va) => plain("INVLPG".into(), format!("{va:#x}")),
            None => plain(
                "TLB flush".into(),
                if *global { "incl. global" } else { "" }.into(),
            ),
        },
        CpuEvent::Pio {
            port,
            size,
            write,
            val,
        } => {
            let dir = if *write { "out" } else { "in" };
            Described {
                cause: format!("{dir} {port:#x}"),
                key: format!("{dir} {port:#x}"),
                rip: rip_hint,
                cpl: None,
                detail: format!("size {size} value {val:#x}"),
                io: true,
            }
        }
        CpuEvent::Mmio {
            pa,
            size,
            write,
            val,
        } => {
            let dir = if *write { "mmio wr" } else { "mmio rd" };
            Described {
                cause: dir.to_string(),
                key: format!("{dir} {:#x}", pa & !0xfff),
                rip: rip_hint,
                cpl: None,
                detail: format!("pa {pa:#x} size {size} value {val:#x}"),
                io: true,
            }
        }
    })
}

impl TrapLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Log one CPU event. `rip_hint` is the RIP of the instruction that
    /// caused it, for events that don't carry one, when the caller knows it.
    pub fn push_event(&mut self, ev: &CpuEvent, rip_hint: Option<u64>) {
        if let Some(d) = describe(ev, rip_hint) {
            self.add(d, 1);
        }
    }

    /// Log `n` VM exits of `kind` ("io", "hlt", "mmio"…) seen since the
    /// last call: KVM's view of the guest.
    pub fn push_exits(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        let cause = format!("exit {kind}");
        self.add(
            Described {
                key: cause.clone(),
                cause,
                rip: None,
                cpl: None,
                detail: String::new(),
                io: false,
            },
            n,
        );
    }

    fn add(&mut self, d: Described, n: u64) {
        *self.counts.entry(d.key).or_insert(0) += n;
        let first = self.seq + 1;
        self.seq += n;
        let consecutive = self.last_io == Some(d.io);
        self.last_io = Some(d.io);
        let rows = if d.io {
            &mut self.io_rows
        } else {
            &mut self.rows
        };
        if let Some(last) = rows.back_mut().filter(|_| consecutive) {
            if last.cause == d.cause && last.rip == d.rip && last.cpl == d.cpl {
                last.count += n;
                last.detail = d.detail;
                return;
            }
        }
        if rows.len() >= MAX_ROWS {
            rows.pop_front();
        }
        rows.push_back(TrapRow {
            seq: first,
            cause: d.cause,
            rip: d.rip,
            cpl: d.cpl,
            detail: d.detail,
            count: n,
            io: d.io,
        });
    }

    /// Trap rows (no port/MMIO rows), oldest first.
    pub fn rows(&self) -> impl DoubleEndedIterator<Item = &TrapRow> + ExactSizeIterator {
        self.rows.iter()
    }

    /// Rows shown with or without port/MMIO rows, oldest first.
    pub fn visible(&self, show_io: bool) -> Vec<&TrapRow> {
        if !show_io {
            return self.rows.iter().collect();
        }
        // Merge the two logs by sequence number.
        let mut out = Vec::with_capacity(self.rows.len() + self.io_rows.len());
        let (mut a, mut b) = (self.rows.iter().peekable(), self.io_rows.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.seq <= y.seq => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            out.extend(next);
        }
        out
    }

    /// Events counted by cause.
    pub fn counts(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The count for one cause key.
    pub fn count(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// Events logged in total.
    pub fn total(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpu::Fault;

    fn gp(rip: u64) -> CpuEvent {
        CpuEvent::Interrupt {
            vector: 13,
            kind: IntKind::Exception,
            error_code: Some(0),
            rip,
            cpl: 3,
        }
    }

    #[test]
    fn rows_and_counters() {
        let mut log = TrapLog::new();
        log.push_event(&gp(0x1005d2), None);
        log.push_event(&gp(0x1005df), None);
        log.push_event(
            &CpuEvent::CrWrite {
                cr: 3,
                old: 0x1000,
                new: 0x2000,
            },
            Some(0x100040),
        );
        log.push_event(
            &CpuEvent::Interrupt {
                vector: 0x80,
                kind: IntKind::Software,
                error_code: None,
                rip: 0x100602,
                cpl: 3,
            },
            None,
        );
        let rows: Vec<_> = log.rows().collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].cause, "#GP");
        assert_eq!(rows[0].rip, Some(0x1005d2));
        assert_eq!(rows[0].cpl, Some(3));
        assert!(rows[0].detail.starts_with("ec=0x0"));
        assert_eq!(rows[2].cause, "CR3 write");
        assert_eq!(rows[2].rip, Some(0x100040));
        assert_eq!(rows[2].detail, "0x1000 -> 0x2000");
        assert_eq!(rows[3].cause, "INT 0x80");
        assert_eq!(log.count("#GP"), 2);
        assert_eq!(log.count("INT 0x80"), 1);
        assert_eq!(log.total(), 4);
    }

    #[test]
    fn repeats_fold_and_io_is_hidden_by_default() {
        let mut log = TrapLog::new();
        let out = CpuEvent::Pio {
            port: 0x3f8,
            size: 1,
            write: true,
            val: 0x41,
        };
        for _ in 0..3 {
            log.push_event(&out, Some(0x1000));
        }
        log.push_event(&gp(0x2000), None);
        log.push_event(&out, Some(0x1000));
        assert_eq!(log.rows().len(), 1);
        let all = log.visible(true);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].count, 3);
        assert_eq!(all[1].cause, "#GP");
        assert_eq!(all[2].seq, 5);
        assert_eq!(log.visible(false).len(), 1);
        assert_eq!(log.count("out 0x3f8"), 4);
        // Sequence numbers count events, not rows.
        assert_eq!(log.rows().last().map(|r| r.seq), Some(4));
        // A flood of port I/O doesn't push traps out.
        for i in 0..MAX_ROWS as u32 + 5 {
            log.push_event(
                &CpuEvent::Pio {
                    port: 0x80,
                    size: 1,
                    write: true,
                    val: i,
                },
                Some(u64::from(i)),
            );
        }
        assert_eq!(log.rows().len(), 1);
        assert_eq!(log.visible(true).len(), MAX_ROWS + 1);
    }

    #[test]
    fn bounded() {
        let mut log = TrapLog::new();
        for i in 0..(MAX_ROWS as u64 + 10) {
            log.push_event(&gp(i), None);
        }
        assert_eq!(log.rows().len(), MAX_ROWS);
        assert_eq!(log.count("#GP"), MAX_ROWS as u64 + 10);
        assert_eq!(log.rows().next().map(|r| r.rip), Some(Some(10)));
    }

    #[test]
    fn kvm_exits_and_faults_by_name() {
        let mut log = TrapLog::new();
        log.push_exits("io", 12);
        log.push_exits("hlt", 0);
        log.push_event(&CpuEvent::TripleFault { last: Fault::gp0() }, None);
        let rows: Vec<_> = log.rows().collect();
        assert_eq!(rows[0].cause, "exit io");
        assert_eq!(rows[0].count, 12);
        assert_eq!(rows[1].cause, "triple fault");
        assert_eq!(log.rows().len(), 2);
    }
}
