//! `ringside tui` driven like a person would: the real binary in a tmux
//! pane (160x50, a private tmux server per test), keys sent with
//! `send-keys`, the screen read with `capture-pane`.
//!
//! Also checks that every way out — `q`, Ctrl-C, SIGTERM, after a guest
//! exit, after a triple fault — leaves the terminal usable: cooked mode
//! (`stty` shows `icanon` and `echo`), the main screen, a visible cursor.
//!
//! Skips, saying why, only where tmux is missing and can't be installed.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for something to appear on the screen.
const WAIT: Duration = Duration::from_secs(30);

fn run_tmux(args: &[&str]) -> Option<Output> {
    Command::new("tmux")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// Is tmux here? If not, try to install it (as scripts/deps.sh does).
fn tmux_missing() -> Option<String> {
    let have = || run_tmux(&["-V"]).is_some_and(|o| o.status.success());
    if have() {
        return None;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        eprintln!("tmux is missing: trying apt-get install tmux");
        for args in [
            &["install", "-y", "-qq", "--no-install-recommends", "tmux"][..],
            &["update", "-qq"][..],
            &["install", "-y", "-qq", "--no-install-recommends", "tmux"][..],
        ] {
            let _ = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if have() {
                return None;
            }
        }
    }
    Some("tmux is not installed and could not be installed (scripts/deps.sh installs it)".into())
}

/// A private tmux server (its socket in a temporary directory of its
/// own) with one 160x50 pane; killed on drop.
struct Pane {
    socket: PathBuf,
    dir: PathBuf,
}

impl Pane {
    /// Start `ringside tui ARGS` in a pane. After it exits, the pane's
    /// shell prints `EXIT=<status>` and saves `stty -a` to a file.
    fn start(name: &str, args: &[&str]) -> Pane {
        Self::start_env(name, "", args)
    }

    /// [`Pane::start`] with `env` ("VAR=value") set for ringside.
    fn start_env(name: &str, env: &str, args: &[&str]) -> Pane {
        let dir = std::env::temp_dir().join(format!("ringside-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("tmux.sock");
        let mut cmd = format!("env {env} '{}' tui", ringside().display());
        for a in args {
            cmd.push_str(&format!(" '{a}'"));
        }
        let script = format!(
            "{cmd}; echo EXIT=$?; stty -a > '{}'; sleep 120",
            dir.join("stty.txt").display()
        );
        let pane = Pane { socket, dir };
        let out = pane.tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "160",
            "-y",
            "50",
            &script,
            ";",
            "set-option",
            "-g",
            "status",
            "off",
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pane
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let socket = self.socket.to_str().expect("utf-8 temp path");
        let mut all = vec!["-S", socket, "-f", "/dev/null"];
        all.extend_from_slice(args);
        run_tmux(&all).expect("tmux runs")
    }

    /// Send keys by tmux name ("s", "Enter", "C-c", "Up").
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Type text literally.
    fn text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Wait until the screen contains `needle`; the screen then.
    fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if screen.contains(needle) {
                return screen;
            }
            if start.elapsed() > WAIT {
                panic!("'{needle}' did not appear within {WAIT:?}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn display(&self, format: &str) -> String {
        let out = self.tmux(&["display-message", "-p", "-t", "t", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// After `ringside tui` exited: its status, and a check that the
    /// terminal is usable again.
    fn exited(&self) -> i32 {
        let screen = self.wait_for("EXIT=");
        let status = screen
            .lines()
            .find_map(|l| l.trim().strip_prefix("EXIT="))
            .and_then(|s| s.trim().parse().ok())
            .expect("exit status");
        let stty = self.dir.join("stty.txt");
        let start = Instant::now();
        let modes = loop {
            match std::fs::read_to_string(&stty) {
                Ok(s) if s.contains("icanon") => break s,
                _ if start.elapsed() > WAIT => panic!("no stty output in {}", stty.display()),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let words: Vec<&str> = modes.split_whitespace().collect();
        for mode in ["icanon", "echo", "isig"] {
            assert!(
                words.contains(&mode),
                "raw mode left behind: no '{mode}' in stty -a:\n{modes}"
            );
        }
        assert_eq!(
            self.display("#{alternate_on}"),
            "0",
            "still on the alternate screen"
        );
        assert_eq!(self.display("#{cursor_flag}"), "1", "the cursor is hidden");
        status
    }

    /// The process id of `ringside tui` (the pane shell's child).
    fn tui_pid(&self) -> i32 {
        let shell: i32 = self.display("#{pane_pid}").parse().expect("pane pid");
        let children = format!("/proc/{shell}/task/{shell}/children");
        std::fs::read_to_string(&children)
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
            .expect("ringside tui's pid")
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kernel(name: &str) -> String {
    image(name).to_str().expect("utf-8 path").to_string()
}

/// The value after "RIP " in the CPU pane (at the start of its line there).
fn rip_on(screen: &str) -> u64 {
    let at = screen.find("│RIP ").expect("a RIP line");
    let hex: String = screen[at + "│RIP ".len()..].chars().take(16).collect();
    u64::from_str_radix(&hex, 16).expect("hex RIP")
}

#[test]
fn step_break_run_and_walk_on_rings() {
    if let Some(why) = tmux_missing() {
        eprintln!("skipping the tmux TUI test: {why}");
        return;
    }
    let p = Pane::start("rings", &["--kernel", &kernel("rings")]);
    let s = p.wait_for("PAUSED │ 0 insns");
    assert!(s.contains("CPL 0 (kernel)"), "{s}");
    assert_eq!(rip_on(&s), 0x10_0000, "{s}");

    // Three single steps, one key at a time.
    for n in 1..=3 {
        p.keys(&["s"]);
        p.wait_for(&format!("PAUSED │ {n} insns"));
    }
    let s = p.capture();
    let rip = rip_on(&s);
    assert!(rip > 0x10_0000, "{s}");
    assert!(
        s.contains(&format!("▶ {rip:08x}")),
        "the code pane's arrow is not at RIP:\n{s}"
    );

    // Break on #GP, run: rings.elf's HLT at CPL 3.
    p.keys(&["b"]);
    p.wait_for("break at");
    p.text("#gp");
    p.keys(&["Enter"]);
    p.wait_for("bp: #GP");
    p.keys(&["r"]);
    let s = p.wait_for("breakpoint: #GP");
    let row = s
        .lines()
        .find(|l| l.contains(" #GP ") && l.contains(" 3 ec=0x0"))
        .unwrap_or_else(|| panic!("no #GP row at CPL 3:\n{s}"));
    assert!(row.contains("0x10"), "{row}");
    assert!(
        s.contains("IRETQ to ring 3"),
        "the serial pane shows the guest's output:\n{s}"
    );
    assert!(s.contains("#GP 1"), "the per-cause counter:\n{s}");

    // The page walk of the address under the cursor (RIP, in the handler):
    // rings.elf maps its kernel with 2 MiB pages.
    p.keys(&["w"]);
    // The walk pane takes the focus (◆).
    let s = p.wait_for("Page walk (w/W) · memory: m ◆");
    assert!(s.contains("(code cursor) · 4-level paging"), "{s}");
    for t in [
        " 4  PML4 ",
        " 3  PDPT ",
        " 2  PD   ",
        "leaf: 2 MiB page",
        "VA→PA",
        "PA→MA",
    ] {
        assert!(s.contains(t), "no '{t}' in the walk pane:\n{s}");
    }
    save_screenshot("rings", &s);

    // Help lists the keys; any key closes it; q quits.
    p.keys(&["?"]);
    p.wait_for("Keys · ringside tui");
    p.keys(&["x"]);
    std::thread::sleep(Duration::from_millis(200));
    p.keys(&["q"]);
    assert_eq!(p.exited(), 0);
}

#[test]
fn typed_four_level_walk_on_paging() {
    if let Some(why) = tmux_missing() {
        eprintln!("skipping the tmux TUI test: {why}");
        return;
    }
    let p = Pane::start("paging", &["--kernel", &kernel("paging")]);
    p.wait_for("PAUSED │ 0 insns");
    p.keys(&["b"]);
    p.text("cr3");
    p.keys(&["Enter"]);
    p.wait_for("bp: CR3 write");
    // The boot tables' CR3 load, then paging.elf's own.
    p.keys(&["r"]);
    p.wait_for("breakpoint: CR3 write");
    p.keys(&["r"]);
    p.wait_for("paging: 4-level page tables");
    p.wait_for("PAUSED");
    p.keys(&["W"]);
    p.wait_for("walk virtual address");
    p.text("0x8000000038");
    p.keys(&["Enter"]);
    let s = p.wait_for("VA 0x0000008000000038");
    for t in [
        " 4  PML4 ",
        " 3  PDPT ",
        " 2  PD   ",
        " 1  PT   ",
        "leaf: 4 KiB page",
        "0x8000000038 → GPA",
    ] {
        assert!(s.contains(t), "no '{t}' in the walk pane:\n{s}");
    }
    p.keys(&["q"]);
    assert_eq!(p.exited(), 0);
}

#[test]
fn ctrl_c_and_sigterm_restore_the_terminal() {
    if let Some(why) = tmux_missing() {
        eprintln!("skipping the tmux TUI test: {why}");
        return;
    }
    let p = Pane::start(
        "ctrlc",
        &["--kernel", &kernel("compute"), "--append", "scale=100"],
    );
    p.wait_for("PAUSED │ 0 insns");
    // Ctrl-C while the guest runs.
    p.keys(&["r"]);
    p.wait_for("RUNNING");
    p.keys(&["C-c"]);
    assert_eq!(p.exited(), 0);
    drop(p);

    let p = Pane::start(
        "sigterm",
        &["--kernel", &kernel("compute"), "--append", "scale=100"],
    );
    p.wait_for("PAUSED │ 0 insns");
    p.keys(&["r"]);
    p.wait_for("RUNNING");
    let pid = p.tui_pid();
    // SAFETY: kill(2) with a pid we just read and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(p.exited(), 0);
}

#[test]
fn a_panic_restores_the_terminal() {
    if let Some(why) = tmux_missing() {
        eprintln!("skipping the tmux TUI test: {why}");
        return;
    }
    // The test hook panics after the first frame is drawn.
    let p = Pane::start_env(
        "panic",
        "RINGSIDE_TUI_TEST_PANIC=1",
        &["--kernel", &kernel("hello")],
    );
    assert_eq!(p.exited(), 101, "Rust's status for a panic");
    let s = p.capture();
    assert!(
        s.contains("RINGSIDE_TUI_TEST_PANIC"),
        "the panic message is on the main screen:\n{s}"
    );
}

#[test]
fn a_closed_terminal_ends_the_tui() {
    if let Some(why) = tmux_missing() {
        eprintln!("skipping the tmux TUI test: {why}");
        return;
    }
    // Paused (waiting for keys) and running (drawing).
    for running in [false, true] {
        let name = if running {
            "hangup-running"
        } else {
            "hangup-paused"
        };
        let p = Pane::start(
            name,
            &["--kernel", &kernel("compute"), "--append", "scale=100"],
        );
        p.wait_for("PAUSED │ 0 insns");
        if running {
            p.keys(&["r"]);
            p.wait_for("RUNNING");
        }
        let pid = p.tui_pid();
        // Closing the terminal under it: SIGHUP, and a tty at end-of-file.
        drop(p);
        let start = Instant::now();
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for its (dead) parent's reaper.
            let alive = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|st| st != "Z" && st != "X");
            if !alive {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                // SAFETY: kill(2) on the pid we found; don't leave it spinning.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("{name}: ringside tui (pid {pid}) still runs 10 s after its terminal closed: {stat}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Well before the watchdog's 2 s: the hang-up itself was noticed.
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{name}: {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn guest_exit_and_triple_fault_leave_a_usable_terminal() {
    if let Some(why) = tmux_missing() {
        eprintln!("skipping the tmux TUI test: {why}");
        return;
    }
    let p = Pane::start("exit", &["--kernel", &kernel("hello")]);
    p.wait_for("PAUSED │ 0 insns");
    p.keys(&["r"]);
    p.wait_for("ENDED: guest exited with code 0");
    p.keys(&["q"]);
    assert_eq!(p.exited(), 1, "the guest's status, (0 << 1) | 1");
    drop(p);

    // Real mode: LIDT with a zero limit, then INT3 → #GP → #DF → shutdown.
    let dir = std::env::temp_dir().join(format!("ringside-tmux-tf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("triple.bin");
    std::fs::write(
        &bin,
        [0x2e, 0x0f, 0x01, 0x1e, 0x07, 0x00, 0xcc, 0, 0, 0, 0, 0, 0],
    )
    .expect("write");
    let p = Pane::start(
        "triple",
        &[
            "--kernel",
            bin.to_str().expect("utf-8"),
            "--flat-addr",
            "0x7c00",
        ],
    );
    p.wait_for("PAUSED │ 0 insns");
    p.keys(&["r"]);
    let s = p.wait_for("ENDED: triple fault");
    assert!(s.contains("triple fault 1"), "{s}");
    p.keys(&["q"]);
    assert_eq!(p.exited(), 20);
    drop(p);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Keep a screen for the README ("screenshot as text") under target/.
fn save_screenshot(name: &str, screen: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tui-screens");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(format!("{name}.txt")), screen);
    }
}

#[test]
fn without_a_terminal_it_says_so() {
    let out = run_bounded(
        Command::new(ringside()).args(["tui", "--kernel", &kernel("hello")]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ringside tui needs a terminal"), "{err}");
    // Options it can't honour are refused the same way as run's bad ones.
    let out = run_bounded(
        Command::new(ringside()).args(["tui", "--kernel", &kernel("hello"), "--trace", "int"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("traps pane"));
}
