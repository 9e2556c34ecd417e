//! The terminal: raw mode and the alternate screen while the TUI runs, and
//! the way back on every exit path (return, `?`, panic, SIGINT/SIGTERM/SIGHUP,
//! a terminal that hangs up).
//!
//! Restoring is idempotent and guarded by one flag, so the drop guard, the
//! panic hook and an error path can all call it.

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

/// The terminal is in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// A termination signal arrived: the event loop ends at its next turn.
static SIGNALLED: AtomicBool = AtomicBool::new(false);
static HOOKS: Once = Once::new();

/// Put the terminal back: cooked mode, the main screen, a visible cursor.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
    }
}

/// Was SIGINT, SIGTERM or SIGHUP received?
pub fn signalled() -> bool {
    SIGNALLED.load(Ordering::SeqCst)
}

/// How long the event loop has to end after a termination signal before
/// the watchdog ends the process itself.
const SIGNAL_GRACE: Duration = Duration::from_secs(2);

/// What the terminal has for us.
pub enum Input {
    /// Nothing within the timeout.
    Idle,
    /// Bytes to read: crossterm may parse them without blocking.
    Ready,
    /// The terminal hung up (closed window, killed tmux): nobody is
    /// watching, so the UI ends.
    Gone,
}

/// Wait up to `timeout` for terminal input on stdin.
///
/// crossterm's own reader loops forever when the tty reports end-of-file
/// or an error (its read loop only stops on EAGAIN), so it must only be
/// called when this says [`Input::Ready`].
pub fn wait_input(timeout: Duration) -> Input {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is one valid pollfd that outlives the call, and the
    // count passed is 1.
    let r = unsafe { libc::poll(&mut fds, 1, ms) };
    if r < 0 {
        // EINTR (a signal, e.g. SIGWINCH) is not a hang-up.
        return if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            Input::Idle
        } else {
            Input::Gone
        };
    }
    if fds.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
        Input::Gone
    } else if fds.revents & libc::POLLIN != 0 {
        Input::Ready
    } else {
        Input::Idle
    }
}

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Install the panic hook (restore, then the previous hook prints the
/// message on the main screen) and the signal handlers, once.
fn install_hooks() {
    HOOKS.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        // If the event loop can't end after a signal (stuck writing to a
        // terminal that is gone), end the process anyway.
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(100));
            if signalled() {
                std::thread::sleep(SIGNAL_GRACE);
                restore();
                std::process::exit(0);
            }
        });
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: `on_signal` only stores to an atomic, which is
            // async-signal-safe; the sigaction struct is zero-initialized
            // (a valid empty mask and no flags) before the handler is set,
            // and stays alive for the duration of the call.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

/// Restores the terminal when dropped.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Enter raw mode and the alternate screen. The guard restores them.
pub fn enter() -> io::Result<(Term, Guard)> {
    install_hooks();
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let guard = Guard;
    execute!(io::stdout(), EnterAlternateScreen, Hide)?;
    let term = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    Ok((term, guard))
}
