//! The memory pane: a hex view at a virtual or physical address, which can
//! follow a register.

use super::{dim, pane_block};
use crate::snapshot::{Pane, Snapshot, Space};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Bytes per row.
pub const ROW: usize = 16;

/// One hex-dump row: address, 16 bytes ("??" where unreadable), ASCII.
pub fn row_text(addr: u64, bytes: &[Option<u8>]) -> String {
    let mut hex = String::new();
    let mut ascii = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i == ROW / 2 {
            hex.push(' ');
        }
        match b {
            Some(v) => {
                hex.push_str(&format!("{v:02x} "));
                ascii.push(if v.is_ascii_graphic() || *v == b' ' {
                    char::from(*v)
                } else {
                    '.'
                });
            }
            None => {
                hex.push_str("?? ");
                ascii.push(' ');
            }
        }
    }
    format!("{addr:016x}  {hex} |{ascii}|")
}

/// The pane's title.
pub fn title(snap: &Snapshot) -> String {
    let m = &snap.memory;
    let space = match m.space {
        Space::Virtual => "virtual",
        Space::Physical => "physical",
    };
    let follow = m
        .follow
        .as_ref()
        .map(|r| format!(" · follows {}", r.to_uppercase()))
        .unwrap_or_default();
    format!("Memory · {space} {:#x}{follow} · walk: w", m.addr)
}

/// The pane's lines.
pub fn lines(snap: &Snapshot) -> Vec<Line<'static>> {
    let m = &snap.memory;
    let mut out = Vec::new();
    if m.bytes.is_empty() {
        out.push(Line::styled(
            "M: type an address (0x1000, p 0x1000 for physical) or a register (rsp)",
            dim(),
        ));
    }
    for (i, chunk) in m.bytes.chunks(ROW).enumerate() {
        let addr = m.addr.wrapping_add((i * ROW) as u64);
        let style = if chunk.iter().all(Option::is_none) {
            dim()
        } else {
            Style::default()
        };
        out.push(Line::from(Span::styled(row_text(addr, chunk), style)));
    }
    out
}

/// Draw the memory pane.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let block = pane_block(snap, Pane::Inspector, title(snap));
    frame.render_widget(Paragraph::new(lines(snap)).block(block), area);
}
