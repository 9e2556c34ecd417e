//! ringside's terminal UI: the panes of `ringside tui` as pure renderers.
//!
//! The crate draws; it does not run anything. The `ringside tui` command
//! (root package, `src/tui_cmd/`) owns the machine and the event loop: it
//! fills a [`Snapshot`] from the machine between steps and calls
//! [`screen::draw`]. Keeping the renderers pure lets tests draw every pane
//! from a state they build, on ratatui's `TestBackend`.
//!
//! * [`snapshot`]: the view model.
//! * [`panes`]: CPU, code, traps, page walk, memory, serial, help.
//! * [`screen`]: the layout of the whole screen.
//! * [`disasm`]: iced-x86 disassembly and instruction classes.
//! * [`traps`]: the trap log and its counters.
//! * [`breakpoint`]: breakpoints and their syntax.
//! * [`keys`]: the key reference.

pub mod breakpoint;
pub mod disasm;
pub mod keys;
pub mod panes;
pub mod screen;
pub mod snapshot;
pub mod traps;

pub use breakpoint::Breakpoint;
pub use disasm::{disassemble, CodeBytes, CodeLine, InsnClass, Syntax};
pub use snapshot::{
    CodeView, CpuView, Header, Inspector, MemoryView, Pane, Prompt, RunStatus, SerialView,
    Snapshot, Space, WalkView,
};
pub use traps::{TrapLog, TrapRow};

#[cfg(test)]
mod tests;
