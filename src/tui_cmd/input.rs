//! Keys: what each one does (the reference is `tui::keys::KEYS`), the
//! prompts, and keyboard input forwarded to the guest's serial port.

use super::app::{App, MemTarget, Mode, PromptKind};
use super::inspect::{self, linear};
use cpu::SegReg;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui::breakpoint::parse_addr;
use tui::{Breakpoint, Inspector, Pane};

impl PromptKind {
    pub fn label(self) -> &'static str {
        match self {
            PromptKind::Break => {
                "break at (0xADDR, #gp, int 0x80, cr3, io 0xf4, mode, ring; empty: cursor)"
            }
            PromptKind::Goto => "go to address or register (empty: RIP)",
            PromptKind::Walk => "walk virtual address or register",
            PromptKind::Memory => "memory at (0xADDR virtual, p 0xADDR physical, or a register)",
        }
    }
}

/// The bytes a key sends to the guest's serial port, as a VT100 would.
pub fn key_bytes(k: &KeyEvent) -> Vec<u8> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    match k.code {
        KeyCode::Char(c) if ctrl => match c.to_ascii_lowercase() {
            c @ 'a'..='z' => vec![c as u8 & 0x1f],
            '[' => vec![0x1b],
            '\\' => vec![0x1c],
            ']' => vec![0x1d],
            _ => Vec::new(),
        },
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => b"\r".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Tab => b"\t".to_vec(),
        KeyCode::Up => b"\x1b[A".to_vec(),
        KeyCode::Down => b"\x1b[B".to_vec(),
        KeyCode::Right => b"\x1b[C".to_vec(),
        KeyCode::Left => b"\x1b[D".to_vec(),
        KeyCode::Home => b"\x1b[H".to_vec(),
        KeyCode::End => b"\x1b[F".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        _ => Vec::new(),
    }
}

impl App {
    /// Handle one key.
    pub fn on_key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c') | KeyCode::Char('C')) {
            self.quit = true;
            return;
        }
        if self.prompt.is_some() {
            self.prompt_key(k);
            return;
        }
        if self.snap.help {
            // Any key closes the help; q still quits.
            self.quit = k.code == KeyCode::Char('q');
            self.snap.help = false;
            return;
        }
        if self.snap.focus == Pane::Serial && self.snap.serial.input {
            if k.code == KeyCode::Esc {
                self.snap.focus = Pane::Code;
            } else {
                let bytes = key_bytes(&k);
                self.m.platform.board.queue_input(&bytes);
            }
            return;
        }
        self.command_key(k);
    }

    fn command_key(&mut self, k: KeyEvent) {
        if let KeyCode::Char(c @ '0'..='9') = k.code {
            let d = u64::from(c as u8 - b'0');
            self.count = Some(self.count.unwrap_or(0).saturating_mul(10).saturating_add(d));
            return;
        }
        let count = self.count.take();
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.snap.help = true,
            KeyCode::Char('s') => self.start(Mode::Stepping {
                left: count.unwrap_or(1).max(1),
            }),
            KeyCode::Char('n') => self.step_over(),
            KeyCode::Char('r') => self.start(Mode::Running),
            KeyCode::Char('p') => self.pause("paused"),
            KeyCode::Char(' ') => {
                if self.busy() {
                    self.pause("paused");
                } else {
                    self.start(Mode::Running);
                }
            }
            KeyCode::Char('b') => self.open_prompt(PromptKind::Break),
            KeyCode::Char('B') => {
                self.breakpoints.clear();
                self.snap.header.message = "breakpoints cleared".into();
            }
            KeyCode::Char('g') => self.open_prompt(PromptKind::Goto),
            KeyCode::Char('.') => {
                self.pin = None;
                self.cursor = None;
            }
            KeyCode::Char('t') => self.snap.code.syntax = self.snap.code.syntax.toggled(),
            KeyCode::Char('w') => {
                self.walk_target = None;
                self.snap.inspector = Inspector::Walk;
                self.snap.focus = Pane::Inspector;
            }
            KeyCode::Char('W') => self.open_prompt(PromptKind::Walk),
            KeyCode::Char('m') => {
                self.snap.inspector = Inspector::Memory;
                self.snap.focus = Pane::Inspector;
            }
            KeyCode::Char('M') => self.open_prompt(PromptKind::Memory),
            KeyCode::Char('i') => {
                self.snap.show_io = !self.snap.show_io;
                self.snap.trap_sel = None;
            }
            KeyCode::Tab => self.snap.focus = self.snap.focus.next(),
            KeyCode::BackTab => {
                for _ in 0..Pane::ORDER.len() - 1 {
                    self.snap.focus = self.snap.focus.next();
                }
            }
            KeyCode::Up => self.move_in_pane(-1),
            KeyCode::Down => self.move_in_pane(1),
            KeyCode::PageUp => self.move_in_pane(-16),
            KeyCode::PageDown => self.move_in_pane(16),
            KeyCode::Enter if self.snap.focus == Pane::Traps => self.jump_to_trap(),
            KeyCode::Esc => self.snap.header.message.clear(),
            _ => {}
        }
    }

    fn open_prompt(&mut self, kind: PromptKind) {
        self.prompt = Some((kind, String::new()));
    }

    fn prompt_key(&mut self, k: KeyEvent) {
        let Some((kind, text)) = self.prompt.as_mut() else {
            return;
        };
        match k.code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            KeyCode::Enter => {
                let (kind, text) = (*kind, text.clone());
                self.prompt = None;
                self.submit(kind, text.trim());
            }
            _ => {}
        }
    }

    /// An address typed at a prompt: hex, or a register name (its value as
    /// an offset in its usual segment, for `linear`).
    fn typed_addr(&mut self, text: &str) -> Option<(u64, Option<SegReg>)> {
        let s = self.m.accel.get_state().ok()?;
        if let Some((v, seg)) = inspect::register(&s, text) {
            return Some((v, Some(seg)));
        }
        parse_addr(text).map(|a| (a, None))
    }

    fn submit(&mut self, kind: PromptKind, text: &str) {
        match kind {
            PromptKind::Break => {
                let bp = if text.is_empty() {
                    let at = self.snap.code.cursor.unwrap_or(self.snap.code.rip);
                    Ok(Breakpoint::Addr(at))
                } else {
                    Breakpoint::parse(text)
                };
                match bp {
                    Ok(bp) => self.toggle_breakpoint(bp),
                    Err(e) => self.snap.header.message = e,
                }
            }
            PromptKind::Goto if text.is_empty() => {
                self.pin = None;
                self.cursor = None;
            }
            PromptKind::Goto => match self.typed_addr(text) {
                Some((a, _)) => {
                    self.pin = Some((a, format!("{a:#x}")));
                    self.cursor = Some(a);
                }
                None => self.snap.header.message = format!("'{text}' is not an address"),
            },
            PromptKind::Walk => match (self.typed_addr(text), self.m.accel.get_state()) {
                (Some((a, seg)), Ok(s)) => {
                    let va = seg.map_or(a, |seg| linear(&s, seg, a));
                    self.walk_target = Some((va, format!("typed: {text}")));
                    self.snap.inspector = Inspector::Walk;
                    self.snap.focus = Pane::Inspector;
                }
                _ => self.snap.header.message = format!("'{text}' is not an address"),
            },
            PromptKind::Memory => self.memory_at(text),
        }
    }

    fn memory_at(&mut self, text: &str) {
        let lower = text.to_ascii_lowercase();
        let phys = ["p ", "p:", "phys ", "phys:"]
            .iter()
            .find_map(|p| lower.strip_prefix(p));
        let target = if let Some(rest) = phys {
            parse_addr(rest).map(MemTarget::Physical)
        } else if self
            .m
            .accel
            .get_state()
            .ok()
            .and_then(|s| inspect::register(&s, &lower))
            .is_some()
        {
            Some(MemTarget::Follow(lower.trim().to_string()))
        } else {
            parse_addr(&lower).map(MemTarget::Virtual)
        };
        match target {
            Some(t) => {
                self.mem = t;
                self.snap.inspector = Inspector::Memory;
                self.snap.focus = Pane::Inspector;
            }
            None => {
                self.snap.header.message =
                    format!("'{text}' is not an address: 0x1000, p 0x1000, or a register")
            }
        }
    }

    /// Step over a CALL, REP string instruction or INT n: run to the line
    /// after it. Anything else is one step.
    fn step_over(&mut self) {
        match self.line_at_rip() {
            Some(l) if l.steps_over => {
                let target = l.next;
                self.start(Mode::StepOver { target });
            }
            _ => self.start(Mode::Stepping { left: 1 }),
        }
    }

    /// Up/Down/PgUp/PgDn in the focused pane.
    fn move_in_pane(&mut self, delta: i64) {
        match self.snap.focus {
            Pane::Code => self.move_cursor(delta),
            Pane::Traps => self.move_trap_selection(delta),
            Pane::Inspector if self.snap.inspector == Inspector::Memory => {
                let base = self.snap.memory.addr;
                let addr = base.wrapping_add_signed(delta.saturating_mul(16));
                self.mem = match self.snap.memory.space {
                    tui::Space::Physical => MemTarget::Physical(addr),
                    tui::Space::Virtual => MemTarget::Virtual(addr),
                };
            }
            _ => {}
        }
    }

    fn move_cursor(&mut self, delta: i64) {
        let lines = &self.snap.code.lines;
        let at = self.snap.code.cursor.unwrap_or(self.snap.code.rip);
        let Some(i) = lines.iter().position(|l| l.addr == at) else {
            return;
        };
        let j = i
            .saturating_add_signed(delta as isize)
            .min(lines.len().saturating_sub(1));
        let Some(l) = lines.get(j) else {
            return;
        };
        self.cursor = Some(l.addr);
        // Near the ends of the disassembled window: re-centre on the cursor.
        if j < 4 || j + 4 >= lines.len() {
            self.pin = Some((l.addr, format!("cursor {:#x}", l.addr)));
        }
        self.walk_target = None;
    }

    fn move_trap_selection(&mut self, delta: i64) {
        let n = self.snap.traps.visible(self.snap.show_io).len();
        if n == 0 {
            return;
        }
        let cur = self.snap.trap_sel.unwrap_or(n);
        let next = cur.saturating_add_signed(delta as isize).min(n - 1);
        self.snap.trap_sel = Some(next);
        self.jump_to_trap();
    }

    /// Centre the code pane on the selected trap's RIP.
    fn jump_to_trap(&mut self) {
        let rows = self.snap.traps.visible(self.snap.show_io);
        let Some(row) = self.snap.trap_sel.and_then(|i| rows.get(i)) else {
            return;
        };
        match row.rip {
            Some(rip) => {
                let label = format!("trap #{} {}", row.seq, row.cause);
                self.pin = Some((rip, label));
                self.cursor = Some(rip);
                self.walk_target = None;
            }
            None => {
                self.snap.header.message = format!("trap #{} has no RIP", row.seq);
            }
        }
    }
}
