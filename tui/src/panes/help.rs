//! The `?` overlay: every key and what it does.

use crate::breakpoint::SYNTAX;
use crate::keys::KEYS;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

/// The help text's lines.
pub fn lines() -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:>18}  "),
                    Style::default()
                        .fg(Color::Cyan)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    out.push(Line::raw(""));
    out.push(Line::raw(format!("breakpoints: {SYNTAX}")));
    out.push(Line::raw(
        "colours: red = privileged (#GP outside ring 0), yellow = IOPL-sensitive, cyan = gate (INT/SYSCALL/IRET), magenta = sensitive but unprivileged",
    ));
    out.push(Line::raw(""));
    out.push(Line::styled(
        "Esc or ? closes this help",
        Style::default().fg(Color::DarkGray),
    ));
    out
}

/// Draw the overlay centred in `area`.
pub fn render(frame: &mut Frame, area: Rect) {
    let w = area.width.min(110);
    let h = area.height.min(KEYS.len() as u16 + 8);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines())
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Keys · ringside tui ")),
        popup,
    );
}
