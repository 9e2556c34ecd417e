//! `ringside tui`: the machine of `ringside run`, paused at its first
//! instruction, under a terminal UI (ratatui + crossterm).
//!
//! This module owns the event loop: keys from crossterm, the machine moved
//! in slices of at most [`SLICE`] between redraws, and redraws at most every
//! [`FRAME`] (≤ 30 per second) however fast the guest runs. The panes are
//! drawn by the `tui` crate from a [`tui::Snapshot`] that [`App::refresh`]
//! fills.
//!
//! * [`app`]: the controller and how it drives the machine.
//! * [`input`]: keys and prompts.
//! * [`view`]: machine → snapshot.
//! * [`inspect`]: guest memory and page walks, without side effects.
//! * [`term`]: raw mode, the alternate screen, and restoring them on every
//!   exit path.
//! * [`serial`]: the guest console buffer.

mod app;
mod input;
mod inspect;
mod serial;
mod term;
mod view;

#[cfg(test)]
mod tests;

use crate::cli::RunArgs;
use crate::machine::{Machine, MachineConfig};
use crate::status::code;
use app::App;
use crossterm::event::{self, Event};
use serial::SerialBuffer;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Shortest time between two redraws: at most ~30 frames per second.
const FRAME: Duration = Duration::from_millis(33);
/// Longest time the machine runs between two looks at the keyboard.
const SLICE: Duration = Duration::from_millis(25);
/// How long an idle UI waits for a key before looking at signals again.
const IDLE: Duration = Duration::from_millis(250);

/// Check the options `ringside tui` can't honour.
fn check_args(args: &RunArgs) -> Result<(), String> {
    if !args.trace.is_empty() {
        return Err(
            "ringside tui shows events in its traps pane: --trace is for `ringside run`".into(),
        );
    }
    if args.timeout.is_some() {
        return Err("ringside tui runs until you quit: --timeout is for `ringside run`".into());
    }
    if args.max_insns.is_some() && args.accel == crate::machine::AccelKind::Kvm {
        return Err(
            "--max-insns needs an accelerator that counts instructions: use --accel tcg".into(),
        );
    }
    if args.virt.mode().is_some() && args.accel != crate::machine::AccelKind::Tcg {
        return Err(
            "--virt runs ringside's own monitor on the software CPU: use --accel tcg".into(),
        );
    }
    Ok(())
}

/// Build the machine the way `ringside run` does, with the guest console
/// kept for the serial pane.
fn build(args: &RunArgs, serial: &SerialBuffer) -> Result<Machine, i32> {
    let memory = cli_memory(args)?;
    let cfg = MachineConfig {
        memory,
        accel: args.accel,
        virt: args.virt.mode(),
        disk: args.disk.clone(),
        boot: crate::boot::BootConfig {
            kernel: args.kernel.clone(),
            append: args.append.clone(),
            initrd: args.initrd.clone(),
            flat_addr: args.flat_addr,
        },
        trace: cpu::TraceFlags::default(),
        serial_out: Box::new(serial.clone()),
        // The terminal is the TUI's: keys reach the guest from the serial pane.
        stdin: false,
        max_insns: args.max_insns,
        timeout: None,
    };
    Machine::new(cfg).map_err(|e| crate::fail(crate::machine_error_code(&e), e))
}

fn cli_memory(args: &RunArgs) -> Result<u64, i32> {
    crate::cli::parse_memory(&args.memory).map_err(|e| crate::fail(code::MEMORY, e))
}

/// `ringside tui`: returns the process exit status (the guest's, if its
/// run ended; 0 if the user quit first).
pub fn run(args: &RunArgs) -> i32 {
    if let Err(e) = check_args(args) {
        return crate::fail(code::USAGE, e);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return crate::fail(
            code::USAGE,
            "ringside tui needs a terminal (stdin and stdout must be a tty); use `ringside run` in scripts",
        );
    }
    let serial = SerialBuffer::default();
    let m = match build(args, &serial) {
        Ok(m) => m,
        Err(status) => return status,
    };
    let mut app = App::new(m, serial, !args.no_stdin);
    let start = Instant::now();
    let result = match term::enter() {
        Ok((mut t, guard)) => {
            let r = event_loop(&mut t, &mut app);
            drop(t);
            drop(guard);
            r
        }
        Err(e) => {
            term::restore();
            return crate::fail(code::INTERNAL, format!("cannot set up the terminal: {e}"));
        }
    };
    if let Err(e) = result {
        let _ = writeln!(std::io::stderr(), "ringside: error: terminal: {e}");
        return code::INTERNAL;
    }
    if !args.quiet {
        // The terminal may be gone (hang-up): never panic on the write.
        let line = summary(&mut app, start.elapsed());
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    if app.error.is_some() {
        code::INTERNAL
    } else {
        app.end.as_ref().map_or(0, |e| e.exit_code())
    }
}

/// The line printed after the terminal is back.
fn summary(app: &mut App, wall: Duration) -> String {
    let m = &mut app.m;
    let mut parts = vec![format!("ringside tui: {}", m.accel.describe())];
    parts.push(match (&app.error, &app.end) {
        (Some(e), _) => e.clone(),
        (None, Some(end)) => app::end_text(end),
        (None, None) => format!(
            "quit at rip {:#x}",
            m.accel.get_state().map(|s| s.rip).unwrap_or(0)
        ),
    });
    if let Some(n) = m.accel.instructions() {
        parts.push(format!("{} insns", crate::group(n)));
    }
    parts.push(format!("{:.1} s", wall.as_secs_f64()));
    parts.join(" · ")
}

/// Keys, machine slices and redraws until the user quits.
fn event_loop(t: &mut term::Term, app: &mut App) -> std::io::Result<()> {
    // Test hook (tests/tui_tmux.rs): panic once the UI is up, to check
    // that the panic hook gives the terminal back.
    let panic_test = std::env::var_os("RINGSIDE_TUI_TEST_PANIC").is_some();
    let mut last_draw: Option<Instant> = None;
    let mut last_size = crossterm::terminal::size().ok();
    let mut dirty = true;
    loop {
        if term::signalled() {
            app.quit = true;
        }
        if app.quit {
            return Ok(());
        }
        let since = last_draw.map(|d| d.elapsed());
        if dirty && since.is_none_or(|s| s >= FRAME) {
            app.refresh();
            t.draw(|f| tui::screen::draw(f, &app.snap))?;
            last_draw = Some(Instant::now());
            dirty = false;
            if panic_test {
                panic!("RINGSIDE_TUI_TEST_PANIC: testing the terminal restore on panic");
            }
        }
        let wait = if app.busy() {
            Duration::ZERO
        } else if dirty {
            FRAME.saturating_sub(since.unwrap_or(FRAME))
        } else {
            IDLE
        };
        match term::wait_input(wait) {
            term::Input::Gone => return Ok(()),
            term::Input::Idle => {}
            term::Input::Ready => {
                while !app.quit && event::poll(Duration::ZERO)? {
                    if let Event::Key(k) = event::read()? {
                        app.on_key(k);
                    }
                    dirty = true;
                }
            }
        }
        // A resize: redraw (ratatui resizes its buffers on draw).
        let size = crossterm::terminal::size().ok();
        if size != last_size {
            last_size = size;
            dirty = true;
        }
        if app.busy() {
            app.advance(Instant::now() + SLICE);
            dirty = true;
        }
    }
}
