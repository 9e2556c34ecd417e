//! The whole screen: the header line, the panes, and the footer (key hints
//! or the prompt being typed).
//!
//! ```text
//!  ringside tui │ tcg │ PAUSED │ 1,234 insns │ bp: #GP │ message
//! ┌ CPU ──────────┐┌ Code ───────────────────┐┌ Traps ─────────────┐
//! │ ring, mode,   ││ disassembly around RIP  ││ counters           │
//! │ registers     ││                         ││ log                │
//! └───────────────┘└─────────────────────────┘└────────────────────┘
//! ┌ Page walk / Memory ────────────────────┐┌ Serial ─────────────┐
//! └────────────────────────────────────────┘└─────────────────────┘
//!  s step · n over · r run · …                  (or: break at: _)
//! ```

use crate::keys::FOOTER;
use crate::panes;
use crate::snapshot::{Inspector, RunStatus, Snapshot};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// "1234567" → "1,234,567".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn status_span(status: &RunStatus) -> Span<'static> {
    let (text, color) = match status {
        RunStatus::Paused => ("PAUSED".to_string(), Color::Yellow),
        RunStatus::Running => ("RUNNING".to_string(), Color::Green),
        RunStatus::RunningChecked => ("RUNNING (checking breakpoints)".to_string(), Color::Green),
        RunStatus::Ended(why) => (format!("ENDED: {why}"), Color::Red),
    };
    Span::styled(
        text,
        Style::default().fg(color).add_modifier(Modifier::BOLD),
    )
}

/// The header line.
pub fn header(snap: &Snapshot) -> Line<'static> {
    let h = &snap.header;
    let sep = || Span::styled(" │ ", Style::default().fg(Color::DarkGray));
    let mut spans = vec![
        Span::styled(
            " ringside tui",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        sep(),
        Span::raw(h.accel.clone()),
        sep(),
        status_span(&h.status),
    ];
    if let Some(n) = h.instructions {
        spans.push(sep());
        spans.push(Span::raw(format!("{} insns", group(n))));
    }
    if !h.breakpoints.is_empty() {
        spans.push(sep());
        spans.push(Span::styled(
            format!("bp: {}", h.breakpoints.join(", ")),
            Style::default().fg(Color::Red),
        ));
    }
    if let Some(c) = h.count {
        spans.push(sep());
        spans.push(Span::raw(format!("count {c}")));
    }
    if !h.message.is_empty() {
        spans.push(sep());
        spans.push(Span::styled(
            h.message.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// The footer line: the prompt, or the key hints and the backend's limits.
pub fn footer(snap: &Snapshot) -> Line<'static> {
    match &snap.prompt {
        Some(p) => Line::from(vec![
            Span::styled(
                format!(" {}: ", p.label),
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(p.text.clone()),
            Span::styled("█", Style::default().fg(Color::Cyan)),
            Span::styled(
                "  (Enter: ok, Esc: cancel)",
                Style::default().fg(Color::DarkGray),
            ),
        ]),
        None => {
            // What this backend can't show comes first: it must not be cut.
            let mut spans = Vec::new();
            if !snap.limits.is_empty() {
                spans.push(Span::styled(
                    format!(" limited: {} │", snap.limits.join("; ")),
                    Style::default().fg(Color::Magenta),
                ));
            }
            spans.push(Span::styled(
                format!(" {FOOTER}"),
                Style::default().fg(Color::DarkGray),
            ));
            Line::from(spans)
        }
    }
}

/// The areas of the screen.
pub struct Areas {
    pub header: Rect,
    pub cpu: Rect,
    pub code: Rect,
    pub traps: Rect,
    pub inspector: Rect,
    pub serial: Rect,
    pub footer: Rect,
}

/// Split the screen. The top row is tall enough for the whole CPU pane
/// (28 rows) when the terminal has room for it.
pub fn areas(area: Rect) -> Areas {
    let [header, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let top_h = if main.height >= 40 {
        Constraint::Length(28)
    } else {
        Constraint::Percentage(60)
    };
    let [top, bottom] = Layout::vertical([top_h, Constraint::Fill(1)]).areas(main);
    let [cpu, code, traps] = Layout::horizontal([
        Constraint::Length(52),
        Constraint::Fill(1),
        Constraint::Fill(1),
    ])
    .areas(top);
    let [inspector, serial] =
        Layout::horizontal([Constraint::Fill(3), Constraint::Fill(2)]).areas(bottom);
    Areas {
        header,
        cpu,
        code,
        traps,
        inspector,
        serial,
        footer,
    }
}

/// Draw everything.
pub fn draw(frame: &mut Frame, snap: &Snapshot) {
    let a = areas(frame.area());
    frame.render_widget(Paragraph::new(header(snap)), a.header);
    panes::cpu::render(frame, a.cpu, snap);
    panes::code::render(frame, a.code, snap);
    panes::traps::render(frame, a.traps, snap);
    match snap.inspector {
        Inspector::Walk => panes::walk::render(frame, a.inspector, snap),
        Inspector::Memory => panes::memory::render(frame, a.inspector, snap),
    }
    panes::serial::render(frame, a.serial, snap);
    frame.render_widget(Paragraph::new(footer(snap)), a.footer);
    if snap.help {
        panes::help::render(frame, frame.area());
    }
}

#[cfg(test)]
mod group_tests {
    #[test]
    fn grouping() {
        assert_eq!(super::group(0), "0");
        assert_eq!(super::group(999), "999");
        assert_eq!(super::group(1000), "1,000");
        assert_eq!(super::group(1234567), "1,234,567");
    }
}
