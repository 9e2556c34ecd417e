//! The TUI's controller state and how it drives the machine: stepping,
//! stepping over, running (fast, or instruction by instruction while
//! breakpoints are set), and logging what the CPU reports.
//!
//! The machine is the one `ringside run` uses ([`Machine`]); running goes
//! through [`Machine::run_until`] in bounded slices so the UI can redraw in
//! between, and stepping through [`Machine::step`].

use super::serial::SerialBuffer;
use crate::machine::Machine;
use crate::status::RunEnd;
use accel::AccelError;
use cpu::{CpuEvent, CpuState, TraceFlags};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tui::{Breakpoint, Snapshot};

/// What the machine is doing between redraws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Paused,
    /// Running until paused, a breakpoint or the end.
    Running,
    /// Single-stepping `left` more instructions.
    Stepping {
        left: u64,
    },
    /// Running instruction by instruction until RIP reaches `target`.
    StepOver {
        target: u64,
    },
}

/// Where the memory pane looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemTarget {
    /// At a register's value ("rsp").
    Follow(String),
    Virtual(u64),
    Physical(u64),
}

/// What a prompt is asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Break,
    Goto,
    Walk,
    Memory,
}

/// Why a run of steps stopped.
enum Stop {
    /// The time slice is used up; go on after the redraw.
    Slice,
    /// The steps asked for are done.
    Done,
    /// A breakpoint hit, the run ended, or an error: the text says which.
    Halt(String),
}

/// How a run ended, in the TUI's words (the traps pane, not `--trace`,
/// shows what led to a triple fault).
pub fn end_text(end: &RunEnd) -> String {
    match end {
        RunEnd::TripleFault { detail } => {
            format!("triple fault: {detail} (the traps pane shows the faults)")
        }
        other => other.to_string(),
    }
}

/// The `ringside tui` controller.
pub struct App {
    pub m: Machine,
    pub snap: Snapshot,
    pub(super) serial: SerialBuffer,
    pub(super) breakpoints: Vec<Breakpoint>,
    pub(super) mode: Mode,
    /// How the run ended, once it has.
    pub end: Option<RunEnd>,
    /// A ringside error stopped the machine (a bug, reported as such).
    pub error: Option<String>,
    pub(super) can_step: bool,
    /// The code pane shows this address instead of following RIP.
    pub(super) pin: Option<(u64, String)>,
    /// The code cursor (an address in the code pane); `None` = at RIP.
    pub(super) cursor: Option<u64>,
    /// The address the walk pane walks; `None` = the code cursor.
    pub(super) walk_target: Option<(u64, String)>,
    pub(super) mem: MemTarget,
    /// The prompt being typed, and its text so far.
    pub(super) prompt: Option<(PromptKind, String)>,
    pub(super) count: Option<u64>,
    pub quit: bool,
    /// The state before the last step or slice, for highlighting changes.
    pub(super) prev: Option<CpuState>,
    /// Exit counts already logged, and their total.
    last_exits: BTreeMap<&'static str, u64>,
    last_exit_total: u64,
    /// Bumped whenever the machine moves: cached views are stale.
    pub(super) generation: u64,
    /// When the range overview was last scanned, and for which generation.
    pub(super) ranges_at: Option<(u64, Instant)>,
}

impl App {
    /// Take over a freshly built machine: events are captured for the
    /// traps pane instead of printed.
    pub fn new(mut m: Machine, serial: SerialBuffer, input: bool) -> App {
        let can_step = m.accel.can_step();
        if can_step {
            // The interpreter reports exceptions, interrupts, CR writes,
            // mode changes and port I/O.
            m.capture_events(TraceFlags {
                int: true,
                mmu: true,
                io: true,
                exec: false,
            });
        } else {
            // KVM: what the host sees are exits, counted in its stats.
            m.capture_events(TraceFlags::default());
        }
        let mut snap = Snapshot::default();
        snap.header.accel = m.accel.describe();
        snap.serial.input = input;
        if !can_step {
            // Exceptions and interrupts stay inside KVM; the host sees exits.
            snap.limits = vec![
                "kvm: no single-step or breakpoints, runs in slices (use --accel tcg)".into(),
                "traps: VM exits only".into(),
            ];
        }
        snap.header.message = "paused at the first instruction: s steps, r runs, ? help".into();
        App {
            m,
            snap,
            serial,
            breakpoints: Vec::new(),
            mode: Mode::Paused,
            end: None,
            error: None,
            can_step,
            pin: None,
            cursor: None,
            walk_target: None,
            mem: MemTarget::Follow("rsp".into()),
            prompt: None,
            count: None,
            quit: false,
            prev: None,
            last_exits: BTreeMap::new(),
            last_exit_total: 0,
            generation: 0,
            ranges_at: None,
        }
    }

    /// The machine is doing something between redraws.
    pub fn busy(&self) -> bool {
        self.mode != Mode::Paused
    }

    /// The run is over (guest exit, triple fault, error): nothing can run.
    pub fn over(&self) -> bool {
        self.end.is_some() || self.error.is_some()
    }

    /// Start an action that moves the machine, if it can move.
    pub(super) fn start(&mut self, mode: Mode) {
        if self.over() {
            self.snap.header.message = "the run has ended: q quits".into();
            return;
        }
        let steps = !matches!(mode, Mode::Running | Mode::Paused);
        if steps && !self.can_step {
            self.snap.header.message = format!(
                "{} can't single-step: use --accel tcg (r runs, p pauses)",
                self.m.accel.name()
            );
            return;
        }
        // Steps typed while stepping add up ("s s s" is three steps).
        let mode = match (self.mode, mode) {
            (Mode::Stepping { left: a }, Mode::Stepping { left: b }) => Mode::Stepping {
                left: a.saturating_add(b),
            },
            (_, m) => {
                self.prev = self.m.accel.get_state().ok();
                m
            }
        };
        self.pin = None;
        self.cursor = None;
        self.snap.trap_sel = None;
        self.snap.header.message.clear();
        self.mode = mode;
    }

    /// Stop moving, with a message.
    pub(super) fn pause(&mut self, why: impl Into<String>) {
        self.mode = Mode::Paused;
        self.snap.header.message = why.into();
    }

    /// Breakpoints need each instruction checked (tcg only).
    fn checking(&self) -> bool {
        self.can_step && !self.breakpoints.is_empty()
    }

    /// Move the machine for up to one slice (until `until`).
    pub fn advance(&mut self, until: Instant) {
        if self.over() {
            self.mode = Mode::Paused;
            return;
        }
        self.generation += 1;
        let stop = match self.mode {
            Mode::Paused => return,
            Mode::Running if !self.checking() => self.run_slice(until),
            Mode::Running => self.step_loop(until, None, None),
            Mode::Stepping { left } => self.step_loop(until, Some(left), None),
            Mode::StepOver { target } => self.step_loop(until, None, Some(target)),
        };
        match stop {
            Stop::Slice => {}
            Stop::Done => self.pause(""),
            Stop::Halt(why) => self.pause(why),
        }
    }

    /// Run at full speed until `until` (no breakpoints to check).
    fn run_slice(&mut self, until: Instant) -> Stop {
        self.prev = self.m.accel.get_state().ok();
        let r = self.m.run_until(until);
        self.log_events(None);
        match r {
            Err(e) => Stop::Halt(self.fail(e)),
            Ok(Some(end)) => Stop::Halt(self.finish(end)),
            Ok(None) => Stop::Slice,
        }
    }

    /// Step instruction by instruction until `until`, `left` steps, RIP =
    /// `target`, a breakpoint, or the end.
    fn step_loop(&mut self, until: Instant, mut left: Option<u64>, target: Option<u64>) -> Stop {
        let mut before = match self.m.accel.get_state() {
            Ok(s) => s,
            Err(e) => return Stop::Halt(self.fail(e)),
        };
        let mut n: u32 = 0;
        loop {
            if left == Some(0) {
                self.remember_left(left);
                return Stop::Done;
            }
            n = n.wrapping_add(1);
            if n.is_multiple_of(64) && Instant::now() >= until {
                self.remember_left(left);
                return Stop::Slice;
            }
            if self.sleep_while_halted(until) {
                self.remember_left(left);
                return Stop::Slice;
            }
            let r = self.m.step();
            let hit = self.log_events(Some(before.rip));
            match r {
                Err(e) => return Stop::Halt(self.fail(e)),
                Ok(Some(end)) => return Stop::Halt(self.finish(end)),
                Ok(None) => {}
            }
            if let Some(l) = left.as_mut() {
                *l = l.saturating_sub(1);
            }
            let after = match self.m.accel.get_state() {
                Ok(s) => s,
                Err(e) => return Stop::Halt(self.fail(e)),
            };
            if let Some(why) = hit.or_else(|| self.state_hit(&before, &after)) {
                return Stop::Halt(why);
            }
            if target == Some(after.rip) {
                return Stop::Done;
            }
            before = after;
        }
    }

    /// Keep the count of steps still to do for the next slice.
    fn remember_left(&mut self, left: Option<u64>) {
        if let (Mode::Stepping { .. }, Some(l)) = (self.mode, left) {
            self.mode = Mode::Stepping { left: l };
        }
    }

    /// A halted vCPU with no interrupt to take: sleep until a timer is due
    /// or the slice ends, instead of spinning. True if the slice is over.
    fn sleep_while_halted(&mut self, until: Instant) -> bool {
        if self.m.halted() != Some(true) {
            return false;
        }
        self.m.platform.board.advance();
        if self.m.platform.board.interrupt_pending() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        let wake = self
            .m
            .platform
            .board
            .next_deadline()
            .map_or(until, |d| d.min(until));
        std::thread::sleep(
            wake.saturating_duration_since(now)
                .min(Duration::from_millis(50)),
        );
        Instant::now() >= until
    }

    /// Breakpoints that look at the state: an address, a ring change.
    fn state_hit(&self, before: &CpuState, after: &CpuState) -> Option<String> {
        self.breakpoints.iter().find_map(|b| match b {
            Breakpoint::Addr(a) if *a == after.rip => Some(format!("breakpoint at {a:#x}")),
            Breakpoint::RingChange if before.cpl() != after.cpl() => Some(format!(
                "breakpoint: ring change, CPL {} -> {}",
                before.cpl(),
                after.cpl()
            )),
            _ => None,
        })
    }

    /// Move reported events and exit counts into the trap log; the first
    /// breakpoint an event hits, if breakpoints are being checked.
    fn log_events(&mut self, rip: Option<u64>) -> Option<String> {
        let (events, dropped) = self.m.take_events();
        self.snap.traps.dropped += dropped;
        let mut hit = None;
        for ev in &events {
            self.snap.traps.push_event(ev, rip);
            if hit.is_none() && self.checking() {
                hit = self.event_hit(ev);
            }
        }
        // Exits are rare next to steps: compare totals before looking closer.
        // (A monitor reports each of its traps as an event already.)
        let total = self.m.accel.stats().total();
        if total != self.last_exit_total && self.m.accel.monitor_stats().is_none() {
            self.last_exit_total = total;
            let now: Vec<(&'static str, u64)> = self.m.accel.stats().iter().collect();
            for (kind, n) in now {
                let before = self.last_exits.insert(kind, n).unwrap_or(0);
                self.snap.traps.push_exits(kind, n.saturating_sub(before));
            }
        }
        hit
    }

    fn event_hit(&self, ev: &CpuEvent) -> Option<String> {
        self.breakpoints
            .iter()
            .find(|b| b.matches_event(ev))
            .map(|b| format!("breakpoint: {}", b.describe()))
    }

    /// The run ended: remember how, and say so.
    fn finish(&mut self, end: RunEnd) -> String {
        let why = end_text(&end);
        self.end = Some(end);
        why
    }

    /// A ringside error (not guest behaviour): stop everything.
    fn fail(&mut self, e: AccelError) -> String {
        let why = format!("ringside error: {e} (a ringside bug: please report it)");
        self.error = Some(why.clone());
        why
    }

    /// Add a breakpoint, or remove it if it is there already.
    pub(super) fn toggle_breakpoint(&mut self, bp: Breakpoint) {
        if !self.can_step {
            self.snap.header.message = format!(
                "breakpoints need single-stepping, which {} can't do here: use --accel tcg",
                self.m.accel.name()
            );
            return;
        }
        if let Some(i) = self.breakpoints.iter().position(|b| *b == bp) {
            self.breakpoints.remove(i);
            self.snap.header.message = format!("breakpoint {} removed", bp.describe());
        } else {
            self.breakpoints.push(bp);
            self.snap.header.message = format!("breakpoint {} set", bp.describe());
        }
    }
}
