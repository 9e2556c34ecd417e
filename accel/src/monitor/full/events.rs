//! Trap accounting: every trap is counted once in [`MonitorStats`] and
//! [`ExitStats`] (by [`TrapCause::key`]), and reported as a
//! [`CpuEvent::Trap`] to whoever traces (`--trace int`/`mmu`, the TUI).

use crate::monitor::{MonitorStats, TrapCause};
use crate::ExitStats;
use cpu::{CpuEvent, Platform, TraceFlags, TrapEvent, TrapTranslation};

/// The observer interface's cause name: the stable [`TrapCause::key`]
/// (see [`TrapEvent::cause`]).
pub fn cause_name(c: TrapCause) -> &'static str {
    c.key()
}

/// Where a trap happened, for its event.
pub struct TrapSite {
    pub rip: u64,
    pub guest_cpl: u8,
    pub real_cpl: u8,
}

/// Counters and the event sink's switch.
pub struct TrapLog {
    pub mstats: MonitorStats,
    pub stats: ExitStats,
    pub trace: TraceFlags,
    pub mode: &'static str,
}

impl TrapLog {
    pub fn new(mode: &'static str) -> Self {
        TrapLog {
            mstats: MonitorStats::default(),
            stats: ExitStats::default(),
            trace: TraceFlags::default(),
            mode,
        }
    }

    /// Whether anyone wants trap events (then `detail` is worth building).
    pub fn wants_events(&self) -> bool {
        self.trace.int || self.trace.mmu
    }

    /// Count one trap and report it. `detail` is only called when someone
    /// listens.
    pub fn trap(
        &mut self,
        plat: &mut dyn Platform,
        cause: TrapCause,
        site: &TrapSite,
        translation: Option<TrapTranslation>,
        detail: impl FnOnce() -> String,
    ) {
        self.mstats.count(cause);
        self.stats.bump(cause.key());
        if self.wants_events() {
            plat.event(&CpuEvent::Trap(TrapEvent {
                cause: cause_name(cause),
                rip: site.rip,
                mode: self.mode,
                guest_cpl: site.guest_cpl,
                real_cpl: site.real_cpl,
                detail: detail(),
                translation,
            }));
        }
    }
}
