//! The TUI's controller on real machines: guest images booted on the
//! interpreter, driven with the same keys a user presses, and the screen
//! rendered on ratatui's `TestBackend`.

use super::app::App;
use super::serial::SerialBuffer;
use crate::cli::{Cli, Command};
use clap::Parser;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tui::{InsnClass, RunStatus};

fn image(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("images/build")
        .join(format!("{name}.elf"))
}

/// `ringside tui` with these options, built but not started.
fn app_with(args: &[&str]) -> App {
    let mut argv = vec!["ringside", "tui", "-m", "32"];
    argv.extend_from_slice(args);
    let Command::Tui(run) = Cli::try_parse_from(argv).expect("arguments").command else {
        panic!("not the tui command");
    };
    let serial = SerialBuffer::default();
    let m = super::build(&run, &serial).expect("machine");
    App::new(m, serial, !run.no_stdin)
}

fn app(name: &str) -> App {
    let k = image(name);
    app_with(&["--kernel", k.to_str().expect("utf-8 path")])
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// Type characters as key presses.
fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// Type a prompt's text and press Enter.
fn prompt(app: &mut App, open: char, text: &str) {
    key(app, KeyCode::Char(open));
    typed(app, text);
    key(app, KeyCode::Enter);
}

/// Let the machine move until it pauses (bounded).
fn settle(app: &mut App) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.busy() {
        assert!(Instant::now() < deadline, "the machine did not pause");
        app.advance(Instant::now() + Duration::from_millis(25));
    }
}

/// The whole screen, 160x50, as text.
fn screen(app: &mut App) -> String {
    app.refresh();
    let mut t = Terminal::new(TestBackend::new(160, 50)).expect("terminal");
    t.draw(|f| tui::screen::draw(f, &app.snap)).expect("draw");
    let buf = t.backend().buffer().clone();
    buf.content()
        .chunks(usize::from(buf.area.width))
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn state(app: &mut App) -> cpu::CpuState {
    app.m.accel.get_state().expect("state")
}

#[test]
fn starts_paused_and_steps() {
    let mut a = app("rings");
    let s = screen(&mut a);
    assert!(s.contains("PAUSED │ 0 insns"), "{s}");
    assert!(s.contains("CPL 0 (kernel) · protected 32-bit"), "{s}");
    assert!(s.contains("▶ 00100000"), "{s}");
    // s, s, s and a counted 10s.
    typed(&mut a, "sss");
    settle(&mut a);
    assert_eq!(a.m.accel.instructions(), Some(3));
    typed(&mut a, "10s");
    settle(&mut a);
    assert_eq!(a.m.accel.instructions(), Some(13));
    let rip = state(&mut a).rip;
    let s = screen(&mut a);
    assert!(s.contains("13 insns"), "{s}");
    assert!(s.contains(&format!("RIP {rip:016x}")), "{s}");
    assert!(s.contains(&format!("▶ {rip:08x}")), "{s}");
}

#[test]
fn ring_change_and_gp_at_cpl3() {
    let mut a = app("rings");
    prompt(&mut a, 'b', "ring");
    typed(&mut a, "r");
    settle(&mut a);
    let st = state(&mut a);
    assert_eq!(st.cpl(), 3, "stopped at CPL {}", st.cpl());
    let s = screen(&mut a);
    assert!(s.contains("breakpoint: ring change, CPL 0 -> 3"), "{s}");
    assert!(s.contains("CPL 3 (user) · long 64-bit"), "{s}");
    assert!(s.contains("CS   0033"), "{s}");
    // The instruction that got there was an IRETQ: the trap log's mode
    // and CR rows came before it, and the CPU pane marks what changed.
    assert!(a.snap.cpu.prev.as_ref().is_some_and(|p| p.cpl() == 0));

    // Now the first #GP, taken at CPL 3.
    typed(&mut a, "B");
    prompt(&mut a, 'b', "#gp");
    typed(&mut a, "r");
    settle(&mut a);
    let s = screen(&mut a);
    assert!(s.contains("breakpoint: #GP"), "{s}");
    let gp = a
        .snap
        .traps
        .rows()
        .find(|r| r.cause == "#GP")
        .cloned()
        .expect("a #GP row");
    assert_eq!(gp.cpl, Some(3));
    let rip = gp.rip.expect("the #GP's rip");
    let row = format!("{:<10} {:>10} 3 ec=0x0", "#GP", format!("{rip:#x}"));
    assert!(s.contains(&row), "no '{row}' in\n{s}");
    // Delivered: the handler runs in ring 0.
    assert_eq!(state(&mut a).cpl(), 0);

    // Selecting the trap jumps the code pane to the faulting instruction:
    // HLT, privileged.
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Up);
    let s = screen(&mut a);
    assert!(s.contains(&format!("Code @ trap #{} #GP", gp.seq)), "{s}");
    let line = a
        .snap
        .code
        .lines
        .iter()
        .find(|l| l.addr == rip)
        .expect("the trap's line");
    assert!(line.text.starts_with("hlt"), "{}", line.text);
    assert_eq!(line.class, InsnClass::Privileged);
    assert_eq!(a.snap.code.cursor, Some(rip));
}

#[test]
fn step_over_a_call() {
    let mut a = app("rings");
    // Step until RIP is on a CALL.
    for _ in 0..5000 {
        a.refresh();
        let rip = a.snap.code.rip;
        let on_call = a
            .snap
            .code
            .lines
            .iter()
            .any(|l| l.addr == rip && l.text.starts_with("call"));
        if on_call {
            break;
        }
        typed(&mut a, "s");
        settle(&mut a);
    }
    let rip = a.snap.code.rip;
    let call = a
        .snap
        .code
        .lines
        .iter()
        .find(|l| l.addr == rip)
        .cloned()
        .expect("RIP's line");
    assert!(
        call.text.starts_with("call"),
        "no CALL reached: {}",
        call.text
    );
    let before = a.m.accel.instructions().unwrap_or(0);
    typed(&mut a, "n");
    settle(&mut a);
    assert!(a.end.is_none(), "{:?}", a.end);
    assert_eq!(state(&mut a).rip, call.next);
    assert!(a.m.accel.instructions().unwrap_or(0) > before + 1);
}

#[test]
fn cr3_breakpoint_and_a_four_level_walk() {
    let mut a = app("paging");
    prompt(&mut a, 'b', "cr3");
    // The boot tables, then paging.elf's own.
    typed(&mut a, "r");
    settle(&mut a);
    typed(&mut a, "r");
    settle(&mut a);
    let st = state(&mut a);
    let s = screen(&mut a);
    assert!(s.contains("breakpoint: CR3 write"), "{s}");
    assert!(s.contains("CR3 write"), "{s}");
    // TEST_VA + 0x38 in paging.c: PML4[1] → PDPT[0] → PD[0] → PT[0], 4 KiB.
    prompt(&mut a, 'W', "0x8000000038");
    let s = screen(&mut a);
    let walk = a.snap.walk.trace.clone().expect("a walk");
    let levels: Vec<u8> = walk.steps.iter().map(|s| s.level).collect();
    assert_eq!(levels, [4, 3, 2, 1], "{s}");
    assert_eq!(walk.steps[0].entry_pa.raw(), (st.cr3 & !0xfff) + 8);
    for (i, step) in walk.steps.iter().enumerate().skip(1) {
        // Each level's table is the one the level above pointed at.
        let table = walk.steps[i - 1].entry & mmu::pte::ADDR_MASK;
        assert_eq!(step.entry_pa.raw() & !0xfff, table, "{s}");
    }
    assert!(
        s.contains("VA 0x0000008000000038 (typed: 0x8000000038) · 4-level paging"),
        "{s}"
    );
    for t in [" 4  PML4 ", " 3  PDPT ", " 2  PD   ", " 1  PT   "] {
        assert!(s.contains(t), "no {t} line:\n{s}");
    }
    assert!(s.contains("leaf: 4 KiB page at"), "{s}");
    assert!(s.contains("0x8000000038 → GPA"), "{s}");
    assert!(s.contains("(RAM, by the layout (PA = MA))"), "{s}");
    assert!(s.contains("mapped ranges (info mem)"), "{s}");
}

#[test]
fn memory_pane_follows_a_register_and_reads_physical() {
    let mut a = app("rings");
    typed(&mut a, "m");
    let s = screen(&mut a);
    assert!(s.contains("follows RSP"), "{s}");
    prompt(&mut a, 'M', "p 0x100000");
    let s = screen(&mut a);
    assert!(s.contains("Memory · physical 0x100000"), "{s}");
    // The kernel's first byte (CLI, 0xfa) as loaded.
    assert!(s.contains("0000000000100000  fa "), "{s}");
}

#[test]
fn guest_exit_ends_the_run_and_serial_shows_the_console() {
    let mut a = app("hello");
    typed(&mut a, "r");
    settle(&mut a);
    assert_eq!(a.end.as_ref().map(|e| e.exit_code()), Some(1));
    let s = screen(&mut a);
    assert!(s.contains("ENDED: guest exited with code 0"), "{s}");
    assert!(
        a.snap.serial.text.contains("hello"),
        "{}",
        a.snap.serial.text
    );
    // Nothing more can run.
    typed(&mut a, "s");
    assert!(!a.busy());
    assert!(screen(&mut a).contains("the run has ended: q quits"));
}

#[test]
fn triple_fault_ends_the_run() {
    // Real mode: LIDT with a zero limit, then INT3: #GP, #DF, shutdown.
    let dir = std::env::temp_dir().join(format!("ringside-tui-tf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("triple.bin");
    std::fs::write(
        &bin,
        [0x2e, 0x0f, 0x01, 0x1e, 0x07, 0x00, 0xcc, 0, 0, 0, 0, 0, 0],
    )
    .expect("write");
    let mut a = app_with(&[
        "--kernel",
        bin.to_str().expect("utf-8"),
        "--flat-addr",
        "0x7c00",
    ]);
    typed(&mut a, "r");
    settle(&mut a);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(a.end.as_ref().map(|e| e.exit_code()), Some(20));
    let s = screen(&mut a);
    assert!(s.contains("ENDED: triple fault"), "{s}");
    assert!(s.contains("triple fault 1"), "{s}");
    assert!(s.contains("#DF"), "{s}");
    assert!(matches!(a.snap.header.status, RunStatus::Ended(_)));
}

#[test]
fn serial_input_reaches_the_guest_uart() {
    let mut a = app("hello");
    // Focus order: code, traps, inspector, serial.
    for _ in 0..3 {
        key(&mut a, KeyCode::Tab);
    }
    assert_eq!(a.snap.focus, tui::Pane::Serial);
    typed(&mut a, "hi");
    let board = &a.m.platform.board;
    assert_eq!(
        board.input_backlog() as u64 + board.stats().uart.rx_bytes,
        2
    );
    // q goes to the guest too; Esc leaves the pane.
    typed(&mut a, "q");
    assert!(!a.quit);
    key(&mut a, KeyCode::Esc);
    typed(&mut a, "q");
    assert!(a.quit);
}

#[test]
fn kvm_runs_in_slices_and_says_what_it_cannot_show() {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        eprintln!("skipping the kvm TUI test: /dev/kvm is not usable ({e})");
        return;
    }
    let k = image("hello");
    let mut a = app_with(&["--accel", "kvm", "--kernel", k.to_str().expect("utf-8")]);
    typed(&mut a, "s");
    assert!(!a.busy());
    let s = screen(&mut a);
    assert!(s.contains("can't single-step"), "{s}");
    assert!(
        s.contains("limited: kvm: no single-step or breakpoints"),
        "{s}"
    );
    typed(&mut a, "r");
    settle(&mut a);
    let s = screen(&mut a);
    assert!(s.contains("ENDED: guest exited with code 0"), "{s}");
    assert!(s.contains("exit io"), "{s}");
}

#[test]
fn bad_options_are_refused() {
    let Command::Tui(run) =
        Cli::try_parse_from(["ringside", "tui", "--kernel", "k", "--trace", "int"])
            .expect("arguments")
            .command
    else {
        panic!("not tui");
    };
    assert!(super::check_args(&run).is_err());
    let Command::Tui(run) =
        Cli::try_parse_from(["ringside", "tui", "--kernel", "k", "--timeout", "3"])
            .expect("arguments")
            .command
    else {
        panic!("not tui");
    };
    assert!(super::check_args(&run).is_err());
    let Command::Tui(run) = Cli::try_parse_from([
        "ringside",
        "tui",
        "--kernel",
        "k",
        "--accel",
        "kvm",
        "--max-insns",
        "5",
    ])
    .expect("arguments")
    .command
    else {
        panic!("not tui");
    };
    assert!(super::check_args(&run).is_err());
}

#[test]
fn halted_guests_wake_on_timers_in_both_run_modes() {
    // timer.elf waits in HLT for PIT and APIC timer interrupts.
    for checked in [false, true] {
        let mut a = app("timer");
        if checked {
            // A breakpoint that never hits: every instruction is checked.
            prompt(&mut a, 'b', "int 0x99");
        }
        typed(&mut a, "r");
        settle(&mut a);
        assert_eq!(
            a.end.as_ref().map(|e| e.exit_code()),
            Some(1),
            "checked={checked}: {:?} {:?}\n{}",
            a.end,
            a.error,
            a.snap.serial.text
        );
        // The timer interrupts are in the trap log, and HLT exits counted.
        assert!(
            a.snap.traps.rows().any(|r| r.cause.starts_with("IRQ")),
            "checked={checked}"
        );
        assert!(a.snap.traps.count("exit hlt") > 0, "checked={checked}");
    }
}

#[test]
fn virt_full_shows_traps_both_cpls_and_the_p2m() {
    let k = image("paging");
    let mut a = app_with(&[
        "--kernel",
        k.to_str().expect("utf-8 path"),
        "--virt",
        "full",
    ]);
    // The 32-bit boot path turns on PAE, long mode and paging: privileged
    // instructions that trap to the monitor at real CPL 1.
    typed(&mut a, "300s");
    settle(&mut a);
    let s = screen(&mut a);
    let row = a
        .snap
        .traps
        .rows()
        .find(|r| r.cause == "trap privileged")
        .cloned()
        .unwrap_or_else(|| panic!("no privileged-instruction trap row:\n{s}"));
    let rip = row.rip.expect("the trap's rip");
    assert_eq!(row.cpl, Some(0), "the guest believed CPL 0");
    assert!(s.contains("trap privileged"), "{s}");
    assert!(
        !s.contains("exit privileged"),
        "traps are logged once:\n{s}"
    );
    // Selecting the row jumps the code pane to the trapping instruction.
    key(&mut a, KeyCode::Tab);
    for _ in 0..a.snap.traps.rows().count() {
        key(&mut a, KeyCode::Up);
    }
    let s = screen(&mut a);
    assert!(s.contains("Code @ trap #"), "{s}");
    let _ = rip;
    // The CPU pane: the guest kernel believes ring 0 and runs in ring 1.
    assert!(s.contains("guest CPL 0 real CPL 1"), "{s}");
    // The walk pane goes VA → PA by the guest's tables, PA → MA by the
    // monitor's p2m, and the two physical addresses differ.
    prompt(&mut a, 'W', "rip");
    let s = screen(&mut a);
    assert!(s.contains("by the monitor's p2m (PA != MA)"), "{s}");
    match a.snap.walk.target {
        Some(mmu::PhysTarget::Ram(ma)) => {
            let pa = a
                .snap
                .walk
                .trace
                .as_ref()
                .and_then(|t| t.result)
                .and_then(|r| r.ok())
                .map(|t| t.pa.raw())
                .unwrap_or_else(|| panic!("no translation:\n{s}"));
            assert_ne!(pa, ma.0, "PA = MA under the monitor:\n{s}");
        }
        other => panic!("walk target {other:?}:\n{s}"),
    }
}

#[test]
fn virt_hw_walk_pane_shows_the_two_dimensional_walk() {
    let k = image("paging");
    let mut a = app_with(&["--kernel", k.to_str().expect("utf-8 path"), "--virt", "hw"]);
    prompt(&mut a, 'b', "cr3");
    typed(&mut a, "r");
    settle(&mut a);
    typed(&mut a, "r");
    settle(&mut a);
    // TEST_VA + 0x38 in paging.c: 4-level guest tables over 4-level
    // nested tables — 4 guest entries, each found by a 4-reference nested
    // walk, then the final nested walk: 24 references.
    prompt(&mut a, 'W', "0x8000000038");
    let s = screen(&mut a);
    assert!(s.contains("2-D walk (nested paging)"), "{s}");
    assert!(s.contains("24 memory references"), "{s}");
    assert!(s.contains("by the nested tables (hw)"), "{s}");
}

#[test]
fn breaks_on_a_monitor_trap_cause() {
    let k = image("ptupdate");
    let mut a = app_with(&[
        "--kernel",
        k.to_str().expect("utf-8 path"),
        "--virt",
        "full",
    ]);
    prompt(&mut a, 'b', "trap pt_write");
    typed(&mut a, "r");
    settle(&mut a);
    let s = screen(&mut a);
    assert!(s.contains("breakpoint: trap pt_write"), "{s}");
    let row = a
        .snap
        .traps
        .rows()
        .find(|r| r.cause == "trap pt_write")
        .cloned()
        .unwrap_or_else(|| panic!("no pt_write row:\n{s}"));
    // A page-table write carries its VA → PA → MA steps.
    assert!(
        row.detail.contains("VA 0x") && row.detail.contains("MA 0x"),
        "{}",
        row.detail
    );
}
