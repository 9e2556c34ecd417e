//! Filling the [`tui::Snapshot`] from the machine before each redraw.

use super::app::{App, MemTarget, Mode};
use super::inspect::{self, linear, paging_regs, read_phys, read_virt};
use cpu::{CpuState, SegReg};
use std::time::{Duration, Instant};
use tui::{disassemble, Breakpoint, CodeBytes, RunStatus, Space};

/// Code bytes read before the centre address: room for the lines above it.
const CODE_BEFORE: u64 = 64;
/// Code bytes read from the centre address on.
const CODE_AFTER: usize = 512;
/// Memory pane bytes (32 rows of 16).
const MEM_BYTES: usize = 512;
/// Mapped ranges listed, and the entry reads the scan may spend.
const RANGES_MAX: usize = 256;
const RANGES_BUDGET: usize = 1 << 18;
/// While running, the range overview is rescanned at most this often.
const RANGES_EVERY: Duration = Duration::from_secs(1);

impl App {
    /// Bring the snapshot up to date with the machine.
    pub fn refresh(&mut self) {
        let state = match self.m.accel.get_state() {
            Ok(s) => s,
            Err(e) => {
                self.snap.header.message = format!("cannot read the vCPU state: {e}");
                return;
            }
        };
        self.refresh_header();
        self.snap.cpu.state = state.clone();
        self.snap.cpu.prev = self.prev.clone();
        self.snap.cpu.halted = self.m.halted().is_some() || state.halted;
        self.snap.cpu.real_cpl = self.m.accel.real_cpl().filter(|r| *r != state.cpl());
        self.refresh_code(&state);
        self.refresh_walk(&state);
        self.refresh_memory(&state);
        self.snap.serial.text = self.serial.text();
        self.snap.prompt = self.prompt.as_ref().map(|(k, text)| tui::Prompt {
            label: k.label().into(),
            text: text.clone(),
        });
    }

    fn refresh_header(&mut self) {
        let h = &mut self.snap.header;
        h.instructions = self.m.accel.instructions();
        h.breakpoints = self.breakpoints.iter().map(Breakpoint::describe).collect();
        h.count = self.count;
        h.status = if let Some(e) = &self.error {
            RunStatus::Ended(e.clone())
        } else if let Some(end) = &self.end {
            RunStatus::Ended(super::app::end_text(end))
        } else {
            match self.mode {
                Mode::Paused => RunStatus::Paused,
                Mode::Running if self.breakpoints.is_empty() || !self.can_step => {
                    RunStatus::Running
                }
                _ => RunStatus::RunningChecked,
            }
        };
    }

    /// The code pane: disassembly around the pinned address or RIP.
    fn refresh_code(&mut self, s: &CpuState) {
        let bitness = s.code_bitness();
        let centre = self.pin.as_ref().map_or(s.rip, |p| p.0);
        let start = centre.saturating_sub(CODE_BEFORE);
        let regs = paging_regs(s);
        let lin = linear(s, SegReg::Cs, start);
        let bytes = read_virt(
            &self.m.ram,
            &*self.m.guest_phys(),
            &regs,
            lin,
            CODE_AFTER + 64,
        );
        let mem = CodeBytes { start, bytes };
        let syntax = self.snap.code.syntax;
        let lines = disassemble(&mem, centre, bitness, syntax, 24, 48);
        if self
            .cursor
            .is_some_and(|c| !lines.iter().any(|l| l.addr == c))
        {
            self.cursor = None;
        }
        let code = &mut self.snap.code;
        code.lines = lines;
        code.rip = s.rip;
        code.cursor = Some(self.cursor.unwrap_or(centre));
        code.bitness = bitness;
        code.pinned = self.pin.as_ref().map(|p| p.1.clone());
        code.breakpoints = self
            .breakpoints
            .iter()
            .filter_map(|b| match b {
                Breakpoint::Addr(a) => Some(*a),
                _ => None,
            })
            .collect();
    }

    /// The instruction at RIP, decoded now (the code pane may show
    /// another address).
    pub(super) fn line_at_rip(&mut self) -> Option<tui::CodeLine> {
        let s = self.m.accel.get_state().ok()?;
        let regs = paging_regs(&s);
        let lin = linear(&s, SegReg::Cs, s.rip);
        let bytes = read_virt(&self.m.ram, &*self.m.guest_phys(), &regs, lin, 16);
        let mem = CodeBytes {
            start: s.rip,
            bytes,
        };
        let syntax = self.snap.code.syntax;
        disassemble(&mem, s.rip, s.code_bitness(), syntax, 0, 0)
            .into_iter()
            .next()
            .filter(|l| !l.unreadable)
    }

    /// The linear address of the code cursor.
    pub(super) fn cursor_linear(&self, s: &CpuState) -> u64 {
        let at = self
            .cursor
            .or(self.pin.as_ref().map(|p| p.0))
            .unwrap_or(s.rip);
        linear(s, SegReg::Cs, at)
    }

    /// The walk pane: the walk of the typed address or the code cursor,
    /// and the mapped-range overview (rescanned when the machine moved,
    /// at most once a second while it runs).
    fn refresh_walk(&mut self, s: &CpuState) {
        let (va, origin) = match &self.walk_target {
            Some((va, origin)) => (*va, origin.clone()),
            None => (self.cursor_linear(s), "code cursor".to_string()),
        };
        let now = Instant::now();
        let rescan = match self.ranges_at {
            None => true,
            Some((gen, _)) if gen == self.generation => false,
            Some((_, at)) => !self.busy() || now.duration_since(at) >= RANGES_EVERY,
        };
        let old_ranges = self.snap.walk.ranges.take();
        let mut view = inspect::walk_view(
            &self.m.ram,
            &*self.m.guest_phys(),
            paging_regs(s),
            va,
            &origin,
            rescan.then_some((RANGES_MAX, RANGES_BUDGET)),
        );
        if let Some(lines) = self.m.accel.walk_2d_lines(va) {
            view.stage2 = "the nested tables (hw)".into();
            view.nested = lines;
        }
        if rescan {
            self.ranges_at = Some((self.generation, now));
        } else {
            view.ranges = old_ranges;
        }
        self.snap.walk = view;
    }

    /// The memory pane.
    fn refresh_memory(&mut self, s: &CpuState) {
        let regs = paging_regs(s);
        let (addr, space, follow) = match &self.mem {
            MemTarget::Follow(reg) => match inspect::register(s, reg) {
                Some((v, seg)) => (linear(s, seg, v), Space::Virtual, Some(reg.clone())),
                None => (0, Space::Virtual, None),
            },
            MemTarget::Virtual(a) => (*a, Space::Virtual, None),
            MemTarget::Physical(a) => (*a, Space::Physical, None),
        };
        // Rows start on a 16-byte boundary.
        let addr = addr & !0xf;
        let bytes = match space {
            Space::Virtual => read_virt(&self.m.ram, &*self.m.guest_phys(), &regs, addr, MEM_BYTES),
            Space::Physical => read_phys(&self.m.ram, &*self.m.guest_phys(), addr, MEM_BYTES),
        };
        self.snap.memory = tui::MemoryView {
            addr,
            space,
            bytes,
            follow,
        };
    }
}
