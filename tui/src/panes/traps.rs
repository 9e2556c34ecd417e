//! The traps pane: per-cause counters on top, then the scrolling log of
//! traps, interrupts and exits (newest at the bottom), with a selection.

use super::{dim, pane_block};
use crate::snapshot::{Pane, Snapshot};
use crate::traps::TrapRow;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// One log row as text: sequence, cause, RIP, CPL, detail, count.
pub fn row_text(r: &TrapRow) -> String {
    let rip = r.rip.map_or_else(|| "-".to_string(), |v| format!("{v:#x}"));
    let cpl = r.cpl.map_or_else(|| "-".to_string(), |c| c.to_string());
    let count = if r.count > 1 {
        format!(" ×{}", r.count)
    } else {
        String::new()
    };
    format!(
        "{:>5} {:<10} {:>10} {} {}{}",
        r.seq, r.cause, rip, cpl, r.detail, count
    )
}

fn row_style(r: &TrapRow) -> Style {
    let c = if r.cause.starts_with('#') || r.cause == "triple fault" {
        Color::Red
    } else if r.cause.starts_with("INT") || r.cause.starts_with("IRQ") {
        Color::Cyan
    } else if r.cause.starts_with("CR") || r.cause == "mode" {
        Color::Yellow
    } else {
        Color::Reset
    };
    Style::default().fg(c)
}

/// The counters line: "#GP 4 · INT 0x80 1 · CR3 write 1".
pub fn counters_text(snap: &Snapshot) -> String {
    let mut parts: Vec<String> = snap
        .traps
        .counts()
        .filter(|(k, _)| {
            snap.show_io
                || !(k.starts_with("in ") || k.starts_with("out ") || k.starts_with("mmio"))
        })
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let hidden: u64 = snap
        .traps
        .counts()
        .filter(|(k, _)| k.starts_with("in ") || k.starts_with("out ") || k.starts_with("mmio"))
        .map(|(_, v)| v)
        .sum();
    if !snap.show_io && hidden > 0 {
        parts.push(format!("port/MMIO {hidden} (i: show)"));
    }
    if snap.traps.dropped > 0 {
        parts.push(format!("dropped {}", snap.traps.dropped));
    }
    if parts.is_empty() {
        "no traps yet".into()
    } else {
        parts.join(" · ")
    }
}

/// Draw the traps pane.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let rows = snap.traps.visible(snap.show_io);
    let title = format!("Traps · {} events", snap.traps.total());
    let block = pane_block(snap, Pane::Traps, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [counts_area, log_area] =
        Layout::vertical([Constraint::Length(3), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(
        Paragraph::new(counters_text(snap))
            .style(Style::default().add_modifier(Modifier::BOLD))
            .wrap(Wrap { trim: true }),
        counts_area,
    );
    let height = usize::from(log_area.height).saturating_sub(1);
    let sel = snap.trap_sel.filter(|&i| i < rows.len());
    // Newest at the bottom; with a selection, keep it in view.
    let end = match sel {
        Some(i) => (i + 1).max(height.min(rows.len())),
        None => rows.len(),
    };
    let start = end.saturating_sub(height);
    let mut lines = vec![Line::styled(
        format!(
            "{:>5} {:<10} {:>10} {} {}",
            "#", "cause", "rip", "cpl", "detail"
        ),
        dim(),
    )];
    for (i, r) in rows.iter().enumerate().take(end).skip(start) {
        let mut st = row_style(r);
        if sel == Some(i) {
            st = st.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::from(Span::styled(row_text(r), st)));
    }
    frame.render_widget(Paragraph::new(lines), log_area);
}
