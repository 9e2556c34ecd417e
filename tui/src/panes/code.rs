//! The code pane: disassembly around RIP (or a pinned address), the RIP
//! arrow, breakpoint markers, the cursor, and privileged or sensitive
//! instructions coloured by class.

use super::{dim, pane_block};
use crate::disasm::{CodeLine, InsnClass};
use crate::snapshot::{Pane, Snapshot};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The colour of an instruction class.
pub fn class_color(c: InsnClass) -> Option<Color> {
    match c {
        InsnClass::Plain => None,
        InsnClass::Privileged => Some(Color::Red),
        InsnClass::Io => Some(Color::Yellow),
        InsnClass::Gate => Some(Color::Cyan),
        InsnClass::Sensitive => Some(Color::Magenta),
    }
}

fn addr_digits(lines: &[CodeLine]) -> usize {
    if lines.iter().all(|l| l.addr <= u64::from(u32::MAX)) {
        8
    } else {
        16
    }
}

/// One rendered line; `width` is the pane's inner width.
fn line(snap: &Snapshot, l: &CodeLine, digits: usize, width: usize) -> Line<'static> {
    let code = &snap.code;
    let bp = code.breakpoints.contains(&l.addr);
    let is_rip = l.addr == code.rip;
    let mut spans = vec![
        Span::styled(if bp { "●" } else { " " }, Style::default().fg(Color::Red)),
        Span::styled(
            if is_rip { "▶ " } else { "  " },
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("{:0digits$x}  ", l.addr), dim()),
    ];
    // The bytes column only where there is room for it.
    if width >= 64 {
        let mut hex: String = l
            .bytes
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        if l.bytes.len() > 6 {
            hex.push('…');
        }
        spans.push(Span::styled(format!("{hex:<18} "), dim()));
    }
    let mut st = Style::default();
    if let Some(c) = class_color(l.class) {
        st = st.fg(c);
    }
    if l.unreadable {
        st = dim();
    }
    if is_rip {
        st = st.add_modifier(Modifier::BOLD);
    }
    spans.push(Span::styled(format!("{:<30}", l.text), st));
    if l.class != InsnClass::Plain {
        spans.push(Span::styled(format!(" {}", l.class.label()), st));
    }
    let mut line = Line::from(spans);
    if code.cursor == Some(l.addr) {
        // Reverse video while the pane has the focus, underlined otherwise.
        let m = if snap.focus == Pane::Code {
            Modifier::REVERSED
        } else {
            Modifier::UNDERLINED
        };
        line = line.style(Style::default().add_modifier(m));
    }
    line
}

/// Draw the code pane, scrolled so the cursor (or RIP) line is visible.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let code = &snap.code;
    let title = match &code.pinned {
        Some(p) => format!("Code @ {p} · {}-bit {}", code.bitness, code.syntax.name()),
        None => format!(
            "Code · RIP {:#x} · {}-bit {}",
            code.rip,
            code.bitness,
            code.syntax.name()
        ),
    };
    let block = pane_block(snap, Pane::Code, title);
    let inner = block.inner(area);
    let height = usize::from(inner.height);
    let width = usize::from(inner.width);
    let digits = addr_digits(&code.lines);
    let focus_addr = code.cursor.unwrap_or(code.rip);
    let focus_idx = code
        .lines
        .iter()
        .position(|l| l.addr == focus_addr)
        .unwrap_or(0);
    // Keep the focus line about a third of the way down.
    let first = focus_idx
        .saturating_sub(height / 3)
        .min(code.lines.len().saturating_sub(height));
    let lines: Vec<Line> = code
        .lines
        .iter()
        .skip(first)
        .take(height)
        .map(|l| line(snap, l, digits, width))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
