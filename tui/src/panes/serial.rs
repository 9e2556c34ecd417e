//! The serial pane: the guest's COM1 console. When focused, typed keys go
//! to the guest.

use super::pane_block;
use crate::snapshot::{Pane, Snapshot};
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The console's last lines that fit `height` rows of `width` columns,
/// long lines wrapped.
pub fn tail(text: &str, width: usize, height: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        // A carriage return in the middle starts the line over, as on a tty.
        let line = line.rsplit('\r').next().unwrap_or(line);
        let chars: Vec<char> = line
            .chars()
            .map(|c| if c.is_control() { '·' } else { c })
            .collect();
        if chars.is_empty() {
            rows.push(String::new());
        }
        for chunk in chars.chunks(width) {
            rows.push(chunk.iter().collect());
        }
    }
    // The text's final newline leaves an empty row: it is where the cursor is.
    let skip = rows.len().saturating_sub(height);
    rows.split_off(skip)
}

/// Draw the serial pane.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let title = if snap.focus == Pane::Serial && snap.serial.input {
        "Serial COM1 · typing goes to the guest, Esc leaves".to_string()
    } else if snap.serial.input {
        "Serial COM1 · Tab here to type".to_string()
    } else {
        "Serial COM1 (--no-stdin: no input)".to_string()
    };
    let block = pane_block(snap, Pane::Serial, title);
    let inner = block.inner(area);
    let rows = tail(
        &snap.serial.text,
        usize::from(inner.width),
        usize::from(inner.height),
    );
    let lines: Vec<Line> = rows.into_iter().map(Line::raw).collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn wraps_and_keeps_the_end() {
        let t = tail("abcdef\nxy\n", 4, 3);
        assert_eq!(t, ["ef", "xy", ""]);
        assert_eq!(tail("a\rb\n", 10, 5), ["b", ""]);
        assert_eq!(tail("\x1b[0m", 10, 1), ["·[0m"]);
    }
}
