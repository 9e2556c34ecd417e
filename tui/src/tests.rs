//! Every pane drawn on ratatui's `TestBackend` from known machine states,
//! with assertions on the buffer: what the user would see.

// Snapshots are filled field by field here, as the controller does.
#![allow(clippy::field_reassign_with_default)]

use crate::disasm::{disassemble, CodeBytes, Syntax};
use crate::panes;
use crate::screen;
use crate::snapshot::*;
use crate::traps::TrapLog;
use cpu::state::{cr0, cr4, efer};
use cpu::{CpuEvent, CpuState, IntKind, SegReg, Segment};
use mmu::{GuestPhysAddr, GuestRam, GuestVirtAddr, PagingRegs, PhysLayout, RamPtes, WalkTrace};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

/// The buffer as text rows.
fn rows(buf: &Buffer) -> Vec<String> {
    let w = usize::from(buf.area.width);
    buf.content()
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect()
}

fn text(buf: &Buffer) -> String {
    rows(buf).join("\n")
}

/// The cell at the first occurrence of `needle` (single-width text only).
fn cell_of<'a>(buf: &'a Buffer, needle: &str) -> &'a ratatui::buffer::Cell {
    for (y, row) in rows(buf).iter().enumerate() {
        if let Some(byte_x) = row.find(needle) {
            let x = row[..byte_x].chars().count();
            return &buf[(x as u16, y as u16)];
        }
    }
    panic!("'{needle}' not on screen:\n{}", text(buf));
}

fn draw(w: u16, h: u16, f: impl FnOnce(&mut ratatui::Frame)) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(f).unwrap();
    t.backend().buffer().clone()
}

/// A long-mode ring-0 state, as a 64-bit kernel runs.
fn kernel_state() -> CpuState {
    let mut s = CpuState::reset();
    s.cr0 = cr0::PE | cr0::ET | cr0::WP | cr0::PG;
    s.cr4 = cr4::PAE | cr4::PGE;
    s.efer = efer::SCE | efer::LME | efer::LMA | efer::NXE;
    s.cr3 = 0x1000;
    s.seg[SegReg::Cs as usize] = Segment::from_descriptor(0x08, 0x00af_9a00_0000_ffff);
    for r in [SegReg::Ss, SegReg::Ds, SegReg::Es] {
        s.seg[r as usize] = Segment::from_descriptor(0x10, 0x00cf_9200_0000_ffff);
    }
    s.rip = 0x10_0230;
    s.gpr[4] = 0x11_f000;
    s
}

/// The state right after IRETQ to a ring-3 64-bit code segment.
fn after_iretq_to_user() -> CpuState {
    let mut s = kernel_state();
    s.seg[SegReg::Cs as usize] = Segment::from_descriptor(0x33, 0x00af_fa00_0000_ffff);
    s.seg[SegReg::Ss as usize] = Segment::from_descriptor(0x2b, 0x00cf_f200_0000_ffff);
    s.rip = 0x10_05c0;
    s.gpr[4] = 0x12_0000;
    s.rflags = 0x202;
    s
}

#[test]
fn cpu_pane_shows_the_ring_change_after_iretq() {
    let mut snap = Snapshot::default();
    snap.cpu.prev = Some(kernel_state());
    snap.cpu.state = after_iretq_to_user();
    let buf = draw(52, 28, |f| panes::cpu::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(t.contains("CPL 3 (user) · long 64-bit"), "{t}");
    assert!(t.contains("long 64-bit"), "{t}");
    assert!(
        t.contains("CS   0033 0000000000000000 ffffffff 3   code 64"),
        "{t}"
    );
    assert!(t.contains("SS   002b"), "{t}");
    assert!(t.contains("RIP 00000000001005c0"), "{t}");
    assert!(t.contains("IF IOPL 0"), "{t}");
    assert!(t.contains("EFER 0000000000000d01 SCE LME LMA NXE"), "{t}");
    assert!(t.contains("CR4  00000000000000a0 PAE PGE"), "{t}");
    assert!(t.contains("CR3  0000000000001000 4-level paging"), "{t}");
    // The ring changed: shown reversed; RIP, RSP and CS changed: highlighted.
    let ring = cell_of(&buf, "CPL 3");
    assert_eq!(ring.fg, Color::Green);
    assert!(ring.modifier.contains(Modifier::REVERSED));
    assert_eq!(cell_of(&buf, "00000000001005c0").fg, Color::Yellow);
    assert_eq!(cell_of(&buf, "0033 ").fg, Color::Yellow);
    // Unchanged values are not.
    assert_ne!(cell_of(&buf, "0000000000001000 4-level").fg, Color::Yellow);

    // Before the IRETQ: ring 0, nothing highlighted without a previous state.
    let mut snap = Snapshot::default();
    snap.cpu.state = kernel_state();
    let buf = draw(52, 28, |f| panes::cpu::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(t.contains("CPL 0 (kernel)"), "{t}");
    assert_eq!(cell_of(&buf, "CPL 0").fg, Color::Red);
    assert!(!cell_of(&buf, "CPL 0").modifier.contains(Modifier::REVERSED));
}

#[test]
fn cpu_pane_modes_and_virtual_cpl() {
    let mut snap = Snapshot::default();
    snap.cpu.state = CpuState::reset();
    let buf = draw(52, 28, |f| panes::cpu::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(t.contains("real mode"), "{t}");
    assert!(t.contains("CR3  0000000000000000 paging off"), "{t}");
    // A compatibility-mode code segment under EFER.LMA.
    let mut s = kernel_state();
    s.seg[SegReg::Cs as usize] = Segment::from_descriptor(0x23, 0x00cf_fa00_0000_ffff);
    s.seg[SegReg::Cs as usize] = Segment::from_descriptor(0x20, 0x00cf_9a00_0000_ffff);
    snap.cpu.state = s;
    // A ring-compressed guest kernel: it believes CPL 0, really runs at 1.
    snap.cpu.real_cpl = Some(1);
    let buf = draw(52, 28, |f| panes::cpu::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(t.contains("compat 32-bit"), "{t}");
    assert!(t.contains("guest CPL 0 real CPL 1"), "{t}");
}

#[test]
fn traps_pane_shows_a_gp_at_cpl3() {
    // Under `--virt full` (not there yet) the privileged instruction would
    // show as a monitor trap; with the guest alone it is the #GP the CPU
    // raises for HLT at CPL 3, which is what rings.elf does.
    let mut snap = Snapshot::default();
    let mut log = TrapLog::new();
    log.push_event(
        &CpuEvent::ModeChange {
            from: "compat32",
            to: "long64",
        },
        None,
    );
    log.push_event(
        &CpuEvent::Interrupt {
            vector: 13,
            kind: IntKind::Exception,
            error_code: Some(0),
            rip: 0x1005d2,
            cpl: 3,
        },
        None,
    );
    log.push_event(
        &CpuEvent::Interrupt {
            vector: 0x80,
            kind: IntKind::Software,
            error_code: None,
            rip: 0x100602,
            cpl: 3,
        },
        None,
    );
    snap.traps = log;
    let buf = draw(60, 12, |f| panes::traps::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(t.contains("Traps · 3 events"), "{t}");
    assert!(t.contains("#GP 1"), "{t}");
    assert!(t.contains("INT 0x80 1"), "{t}");
    assert!(t.contains("mode 1"), "{t}");
    assert!(t.contains("    2 #GP          0x1005d2 3 ec=0x0"), "{t}");
    assert!(t.contains("    3 INT 0x80     0x100602 3"), "{t}");
    assert_eq!(cell_of(&buf, "#GP      ").fg, Color::Red);

    // Selecting a row highlights it.
    snap.trap_sel = Some(1);
    let buf = draw(60, 12, |f| panes::traps::render(f, f.area(), &snap));
    assert!(cell_of(&buf, "#GP      ")
        .modifier
        .contains(Modifier::REVERSED));
}

/// Page tables for one 4 KiB page at a 4-level address with a distinct
/// index at every level: PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000.
fn four_level_tables() -> (GuestRam, PhysLayout, PagingRegs, u64) {
    let ram = GuestRam::new(0x10_0000).unwrap();
    let layout = PhysLayout::new(0x10_0000);
    // VA indices: PML4 1, PDPT 2, PD 3, PT 4, offset 0x567.
    let va = (1u64 << 39) | (2 << 30) | (3 << 21) | (4 << 12) | 0x567;
    let w = |pa: u64, v: u64| ram.write_le(mmu::MachineAddr(pa), 8, v).unwrap();
    w(0x1000 + 8, 0x2000 | 0x7); // P RW US
    w(0x2000 + 2 * 8, 0x3000 | 0x27); // P RW US A
    w(0x3000 + 3 * 8, 0x4000 | 0x3); // P RW
    w(0x4000 + 4 * 8, 0x8_9000 | 0x63 | (1 << 63)); // P RW A D XD
    let regs = PagingRegs {
        cr0: cr0::PE | cr0::PG,
        cr3: 0x1000,
        cr4: cr4::PAE,
        efer: efer::LME | efer::LMA | efer::NXE,
    };
    (ram, layout, regs, va)
}

fn walk_view(ram: &GuestRam, layout: &PhysLayout, regs: PagingRegs, va: u64) -> WalkView {
    let mut trace = WalkTrace::default();
    let mut mem = RamPtes::new(ram, layout);
    let r = mmu::walk_debug(&regs, &mut mem, GuestVirtAddr(va), Some(&mut trace));
    let target = r.ok().map(|t| layout.translate(t.pa));
    let ranges = Some(mmu::scan_mapped_ranges(&regs, &mut mem, 16, 1 << 16));
    WalkView {
        va,
        origin: "typed".into(),
        regs,
        trace: Some(trace),
        target,
        stage2: "the layout (PA = MA)".into(),
        nested: Vec::new(),
        ranges,
    }
}

#[test]
fn walk_pane_shows_a_four_level_walk() {
    let (ram, layout, regs, va) = four_level_tables();
    let mut snap = Snapshot::default();
    snap.walk = walk_view(&ram, &layout, regs, va);
    let buf = draw(110, 14, |f| panes::walk::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(
        t.contains("VA 0x0000008080604567 (typed) · 4-level paging · CR3 0x1000"),
        "{t}"
    );
    assert!(
        t.contains(" 4  PML4  0x0000000000001008 0x0000000000002007 P RW US "),
        "{t}"
    );
    assert!(t.contains("→ next table at 0x2000"), "{t}");
    assert!(
        t.contains(" 3  PDPT  0x0000000000002010 0x0000000000003027 P RW US A "),
        "{t}"
    );
    assert!(
        t.contains(" 2  PD    0x0000000000003018 0x0000000000004003 P RW "),
        "{t}"
    );
    assert!(
        t.contains(" 1  PT    0x0000000000004020 0x8000000000089063 P RW A D XD "),
        "{t}"
    );
    assert!(t.contains("leaf: 4 KiB page at 0x89000"), "{t}");
    assert!(
        t.contains("0x8080604567 → GPA 0x89567 (4 KiB page, supervisor, writable, no-exec)"),
        "{t}"
    );
    assert!(
        t.contains("GPA 0x89567 → MA 0x89567 (RAM, by the layout (PA = MA))"),
        "{t}"
    );
    assert!(t.contains("mapped ranges (info mem): 1"), "{t}");
    assert!(
        t.contains(" 0000008080604000-0000008080605000 0000000000001000 -rw- → GPA 0x89000"),
        "{t}"
    );
    assert_eq!(cell_of(&buf, "leaf: 4 KiB").fg, Color::Green);
}

#[test]
fn walk_pane_shows_a_not_present_entry() {
    let (ram, layout, regs, _) = four_level_tables();
    let mut snap = Snapshot::default();
    // PML4 index 2 is empty.
    snap.walk = walk_view(&ram, &layout, regs, 2 << 39);
    let buf = draw(110, 8, |f| panes::walk::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(
        t.contains(" 4  PML4  0x0000000000001010 0x0000000000000000"),
        "{t}"
    );
    assert!(t.contains("not present → #PF"), "{t}");
    assert!(t.contains("#PF error code 0x0"), "{t}");
    let _ = GuestPhysAddr(0);
}

#[test]
fn code_pane_marks_rip_breakpoints_and_classes() {
    // mov rax, cr3 ; out dx, al ; int 0x80 ; add rax, rbx
    let code = [0x0f, 0x20, 0xd8, 0xee, 0xcd, 0x80, 0x48, 0x01, 0xd8];
    let mem = CodeBytes {
        start: 0x1000,
        bytes: code.iter().map(|&b| Some(b)).collect(),
    };
    let mut snap = Snapshot::default();
    snap.code.lines = disassemble(&mem, 0x1003, 64, Syntax::Intel, 4, 2);
    snap.code.rip = 0x1003;
    snap.code.bitness = 64;
    snap.code.breakpoints = vec![0x1004];
    let buf = draw(80, 8, |f| panes::code::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(t.contains("Code · RIP 0x1003 · 64-bit Intel"), "{t}");
    assert!(t.contains(" ▶ 00001003  ee"), "{t}");
    assert!(t.contains("●  00001004  cd 80"), "{t}");
    assert_eq!(cell_of(&buf, "mov ").fg, Color::Red);
    assert_eq!(cell_of(&buf, "out ").fg, Color::Yellow);
    assert_eq!(cell_of(&buf, "int ").fg, Color::Cyan);
    assert_eq!(cell_of(&buf, "add ").fg, Color::Reset);
    assert!(t.contains("priv"), "{t}");

    snap.code.syntax = Syntax::Att;
    snap.code.lines = disassemble(&mem, 0x1003, 64, Syntax::Att, 4, 2);
    let buf = draw(80, 8, |f| panes::code::render(f, f.area(), &snap));
    let t = text(&buf);
    assert!(t.contains("%cr3,%rax"), "{t}");
    assert!(t.contains("AT&T"), "{t}");
}

#[test]
fn memory_and_serial_panes() {
    let mut snap = Snapshot::default();
    snap.inspector = Inspector::Memory;
    snap.memory = MemoryView {
        addr: 0x11_eff0,
        space: Space::Virtual,
        bytes: (0..32u8)
            .map(|i| if i < 20 { Some(b'A' + i) } else { None })
            .collect(),
        follow: Some("rsp".into()),
    };
    snap.serial = SerialView {
        text: "rings: ring 0 <-> ring 3\nok   kernel starts in ring 0\n".into(),
        input: true,
    };
    let buf = draw(160, 50, |f| screen::draw(f, &snap));
    let t = text(&buf);
    assert!(t.contains("Memory · virtual 0x11eff0 · follows RSP"), "{t}");
    assert!(
        t.contains("000000000011eff0  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|"),
        "{t}"
    );
    assert!(
        t.contains("000000000011f000  51 52 53 54 ?? ?? ?? ??"),
        "{t}"
    );
    assert!(t.contains("ok   kernel starts in ring 0"), "{t}");
    assert!(t.contains("Serial COM1"), "{t}");
}

#[test]
fn whole_screen_header_footer_prompt_and_help() {
    let mut snap = Snapshot::default();
    snap.header.accel = "tcg (ringside interpreter)".into();
    snap.header.instructions = Some(1_234_567);
    snap.header.breakpoints = vec!["#GP".into(), "0x100000".into()];
    snap.header.message = "stopped: breakpoint #GP".into();
    snap.limits = vec!["step: not on kvm".into()];
    snap.code.bitness = 64;
    let buf = draw(160, 50, |f| screen::draw(f, &snap));
    let t = text(&buf);
    let first = rows(&buf)[0].clone();
    assert!(first.contains("ringside tui │ tcg (ringside interpreter) │ PAUSED │ 1,234,567 insns │ bp: #GP, 0x100000 │ stopped: breakpoint #GP"), "{first}");
    assert!(t.contains("s step · n over"), "{t}");
    assert!(t.contains("limited: step: not on kvm"), "{t}");
    // The focused pane (code, by default) is marked.
    assert!(t.contains("Code · RIP 0x0 · 64-bit Intel ◆"), "{t}");

    snap.prompt = Some(Prompt {
        label: "break at".into(),
        text: "#gp".into(),
    });
    let buf = draw(160, 50, |f| screen::draw(f, &snap));
    let last = rows(&buf).last().cloned().unwrap_or_default();
    assert!(last.contains("break at: #gp█"), "{last}");

    snap.prompt = None;
    snap.help = true;
    let buf = draw(160, 50, |f| screen::draw(f, &snap));
    let t = text(&buf);
    assert!(t.contains("Keys · ringside tui"), "{t}");
    for (k, _) in crate::keys::KEYS {
        assert!(t.contains(k), "help lacks {k}:\n{t}");
    }
}

#[test]
fn small_terminals_do_not_panic() {
    let mut snap = Snapshot::default();
    snap.help = true;
    snap.cpu.state = after_iretq_to_user();
    for (w, h) in [(1, 1), (10, 5), (40, 12), (80, 24), (300, 100)] {
        let _ = draw(w, h, |f| screen::draw(f, &snap));
    }
}

#[test]
fn readme_lists_every_key() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Terminal UI")
        .nth(1)
        .expect("README has a Terminal UI section");
    for (k, what) in crate::keys::KEYS {
        let row = format!("| `{k}` | {what} |");
        assert!(section.contains(&row), "README's key table lacks: {row}");
    }
}
