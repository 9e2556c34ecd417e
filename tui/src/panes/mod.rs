//! The pane renderers: pure functions from a [`Snapshot`] to ratatui
//! widgets drawn into an area of a frame.

pub mod code;
pub mod cpu;
pub mod help;
pub mod memory;
pub mod serial;
pub mod traps;
pub mod walk;

use crate::snapshot::{Pane, Snapshot};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Block;

/// A value that changed since the last step.
pub(crate) fn changed_style() -> Style {
    Style::default()
        .fg(Color::Yellow)
        .add_modifier(Modifier::BOLD)
}

/// Labels and other text that matters less.
pub(crate) fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// The bordered block of a pane; the focused one has a cyan border.
pub(crate) fn pane_block(snap: &Snapshot, pane: Pane, title: String) -> Block<'static> {
    let focused = snap.focus == pane && !snap.help;
    let style = if focused {
        Style::default().fg(Color::Cyan)
    } else {
        Style::default()
    };
    let title = if focused {
        format!(" {title} ◆ ")
    } else {
        format!(" {title} ")
    };
    Block::bordered().border_style(style).title(title)
}
