//! The CPU pane: general registers, RIP, RFLAGS decoded, the segment
//! registers with their hidden descriptor caches, the control registers and
//! EFER decoded, the mode and the ring. Values that changed since the last
//! step are highlighted.

use super::{changed_style, dim, pane_block};
use crate::snapshot::{Pane, Snapshot};
use cpu::state::{cr0, cr4, efer, rflags, seg_attr};
use cpu::{CpuState, SegReg, Segment};
use mmu::{PagingMode, PagingRegs};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Names of the set bits of `v`, from a (bit, name) table.
pub fn bit_names(v: u64, table: &[(u64, &'static str)]) -> String {
    table
        .iter()
        .filter(|(b, _)| v & b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

pub const RFLAGS_BITS: &[(u64, &str)] = &[
    (rflags::CF, "CF"),
    (rflags::PF, "PF"),
    (rflags::AF, "AF"),
    (rflags::ZF, "ZF"),
    (rflags::SF, "SF"),
    (rflags::TF, "TF"),
    (rflags::IF, "IF"),
    (rflags::DF, "DF"),
    (rflags::OF, "OF"),
    (rflags::NT, "NT"),
    (rflags::RF, "RF"),
    (rflags::VM, "VM"),
    (rflags::AC, "AC"),
    (rflags::VIF, "VIF"),
    (rflags::VIP, "VIP"),
    (rflags::ID, "ID"),
];

pub const CR0_BITS: &[(u64, &str)] = &[
    (cr0::PE, "PE"),
    (cr0::MP, "MP"),
    (cr0::EM, "EM"),
    (cr0::TS, "TS"),
    (cr0::ET, "ET"),
    (cr0::NE, "NE"),
    (cr0::WP, "WP"),
    (cr0::AM, "AM"),
    (cr0::NW, "NW"),
    (cr0::CD, "CD"),
    (cr0::PG, "PG"),
];

pub const CR4_BITS: &[(u64, &str)] = &[
    (cr4::VME, "VME"),
    (cr4::PVI, "PVI"),
    (cr4::TSD, "TSD"),
    (cr4::DE, "DE"),
    (cr4::PSE, "PSE"),
    (cr4::PAE, "PAE"),
    (cr4::MCE, "MCE"),
    (cr4::PGE, "PGE"),
    (cr4::PCE, "PCE"),
    (cr4::OSFXSR, "OSFXSR"),
    (cr4::OSXMMEXCPT, "OSXMMEXCPT"),
    (cr4::UMIP, "UMIP"),
    (cr4::FSGSBASE, "FSGSBASE"),
    (cr4::OSXSAVE, "OSXSAVE"),
    (cr4::SMEP, "SMEP"),
    (cr4::SMAP, "SMAP"),
];

pub const EFER_BITS: &[(u64, &str)] = &[
    (efer::SCE, "SCE"),
    (efer::LME, "LME"),
    (efer::LMA, "LMA"),
    (efer::NXE, "NXE"),
];

/// The paging registers of a state.
pub fn paging_regs(s: &CpuState) -> PagingRegs {
    PagingRegs {
        cr0: s.cr0,
        cr3: s.cr3,
        cr4: s.cr4,
        efer: s.efer,
    }
}

/// "4-level paging", "PAE paging", "32-bit paging", "paging off".
pub fn paging_name(mode: PagingMode) -> &'static str {
    match mode {
        PagingMode::Disabled => "paging off",
        PagingMode::Legacy32 => "32-bit paging",
        PagingMode::Pae => "PAE paging",
        PagingMode::Level4 => "4-level paging",
    }
}

/// The user-facing name of a mode: real, protected, long, compat, vm86.
pub fn mode_label(s: &CpuState) -> String {
    use cpu::CpuMode as M;
    match s.mode() {
        M::Real => "real mode".into(),
        M::Virtual8086 => "virtual-8086".into(),
        M::Protected16 => "protected 16-bit".into(),
        M::Protected32 => "protected 32-bit".into(),
        M::Compat16 => "compat 16-bit".into(),
        M::Compat32 => "compat 32-bit".into(),
        M::Long64 => "long 64-bit".into(),
    }
}

/// The ring in words.
pub fn ring_label(cpl: u8) -> &'static str {
    match cpl {
        0 => "kernel",
        3 => "user",
        _ => "driver",
    }
}

fn ring_style(cpl: u8) -> Style {
    let c = match cpl {
        0 => Color::Red,
        3 => Color::Green,
        _ => Color::Yellow,
    };
    Style::default().fg(c).add_modifier(Modifier::BOLD)
}

/// A short description of a segment's type: "code 64", "data rw", "TSS".
fn seg_kind(s: &Segment) -> String {
    if s.unusable() {
        return "unusable".into();
    }
    if s.attr & seg_attr::S == 0 {
        return match s.attr & seg_attr::TYPE_MASK {
            0x2 => "LDT".into(),
            0x1 | 0x3 => "TSS16".into(),
            0x9 | 0xb => "TSS".into(),
            t => format!("sys {t:#x}"),
        };
    }
    if s.is_code() {
        let size = if s.long() {
            "64"
        } else if s.big() {
            "32"
        } else {
            "16"
        };
        let conf = if s.attr & seg_attr::TYPE_EC != 0 {
            " conf"
        } else {
            ""
        };
        format!("code {size}{conf}")
    } else {
        let w = if s.attr & seg_attr::TYPE_WR != 0 {
            "rw"
        } else {
            "ro"
        };
        let size = if s.big() { " 32" } else { "" };
        format!("data {w}{size}")
    }
}

/// Spans for a labelled hex value, highlighted when it changed.
fn value<'a>(label: &'a str, v: u64, digits: usize, changed: bool) -> Vec<Span<'a>> {
    let style = if changed {
        changed_style()
    } else {
        Style::default()
    };
    vec![
        Span::styled(label, dim()),
        Span::styled(format!("{v:0digits$x}"), style),
    ]
}

const GPR_NAMES: [&str; 16] = [
    "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8 ", "R9 ", "R10", "R11", "R12",
    "R13", "R14", "R15",
];
/// Display order: the pairs RAX/R8, RBX/R9 … as most debuggers show them.
const GPR_ROWS: [(usize, usize); 8] = [
    (0, 8),
    (3, 9),
    (1, 10),
    (2, 11),
    (6, 12),
    (7, 13),
    (5, 14),
    (4, 15),
];

/// The pane's text lines (also used by tests to check content).
pub fn lines(snap: &Snapshot) -> Vec<Line<'static>> {
    let s = &snap.cpu.state;
    let prev = snap.cpu.prev.as_ref();
    let ch = |f: &dyn Fn(&CpuState) -> u64| prev.is_some_and(|p| f(p) != f(s));
    let mut out: Vec<Line<'static>> = Vec::new();

    // Ring and mode.
    let cpl = s.cpl();
    let cpl_changed = prev.is_some_and(|p| p.cpl() != cpl);
    let mut ring = vec![];
    match snap.cpu.real_cpl {
        Some(real) => {
            ring.push(Span::styled(format!("guest CPL {cpl}"), ring_style(cpl)));
            ring.push(Span::styled(format!(" real CPL {real}"), ring_style(real)));
        }
        None => {
            let mut st = ring_style(cpl);
            if cpl_changed {
                st = st.add_modifier(Modifier::REVERSED);
            }
            ring.push(Span::styled(format!("CPL {cpl} ({})", ring_label(cpl)), st));
        }
    }
    let mode_changed = prev.is_some_and(|p| p.mode() != s.mode());
    ring.push(Span::raw(" · "));
    ring.push(Span::styled(
        mode_label(s),
        if mode_changed {
            changed_style()
        } else {
            Style::default()
        },
    ));
    if snap.cpu.halted {
        ring.push(Span::styled(
            " HLT",
            Style::default()
                .fg(Color::Magenta)
                .add_modifier(Modifier::BOLD),
        ));
    }
    out.push(Line::from(ring));

    for (a, b) in GPR_ROWS {
        let mut l = value(GPR_NAMES[a], s.gpr[a], 16, ch(&|x| x.gpr[a]));
        l.insert(1, Span::raw(" "));
        l.push(Span::raw("  "));
        let mut r = value(GPR_NAMES[b], s.gpr[b], 16, ch(&|x| x.gpr[b]));
        r.insert(1, Span::raw(" "));
        l.extend(r);
        out.push(Line::from(l));
    }
    let mut l = value("RIP ", s.rip, 16, ch(&|x| x.rip));
    l.push(Span::raw("  "));
    l.extend(value("RFL ", s.rflags, 8, ch(&|x| x.rflags)));
    out.push(Line::from(l));
    out.push(Line::from(vec![
        Span::styled("    ", dim()),
        Span::styled(
            format!("{} IOPL {}", bit_names(s.rflags, RFLAGS_BITS), s.iopl()),
            if ch(&|x| x.rflags) {
                changed_style()
            } else {
                Style::default()
            },
        ),
    ]));

    out.push(Line::styled(
        "seg  sel  base             limit    dpl type",
        dim(),
    ));
    let mut seg_line = |name: &str, seg: &Segment, changed: bool| {
        let st = if changed {
            changed_style()
        } else {
            Style::default()
        };
        out.push(Line::from(vec![
            Span::styled(format!("{name:<5}"), dim()),
            Span::styled(
                format!(
                    "{:04x} {:016x} {:08x} {}   {}",
                    seg.selector,
                    seg.base,
                    seg.limit,
                    seg.dpl(),
                    seg_kind(seg)
                ),
                st,
            ),
        ]));
    };
    for r in SegReg::ALL {
        let changed = prev.is_some_and(|p| p.sreg(r) != s.sreg(r));
        seg_line(&r.name().to_uppercase(), s.sreg(r), changed);
    }
    seg_line("TR", &s.tr, prev.is_some_and(|p| p.tr != s.tr));
    seg_line("LDTR", &s.ldtr, prev.is_some_and(|p| p.ldtr != s.ldtr));

    let gd = prev.is_some_and(|p| p.gdtr != s.gdtr || p.idtr != s.idtr);
    out.push(Line::from(vec![
        Span::styled("GDTR ", dim()),
        Span::styled(
            format!("{:x}/{:x}", s.gdtr.base, s.gdtr.limit),
            if gd {
                changed_style()
            } else {
                Style::default()
            },
        ),
        Span::styled("  IDTR ", dim()),
        Span::styled(
            format!("{:x}/{:x}", s.idtr.base, s.idtr.limit),
            if gd {
                changed_style()
            } else {
                Style::default()
            },
        ),
    ]));

    let cr = |label: &'static str, v: u64, names: String, changed: bool| {
        let mut l = value(label, v, 16, changed);
        l.push(Span::raw(" "));
        l.push(Span::raw(names));
        Line::from(l)
    };
    out.push(cr(
        "CR0  ",
        s.cr0,
        bit_names(s.cr0, CR0_BITS),
        ch(&|x| x.cr0),
    ));
    out.push(cr("CR2  ", s.cr2, String::new(), ch(&|x| x.cr2)));
    out.push(cr(
        "CR3  ",
        s.cr3,
        paging_name(paging_regs(s).mode()).to_string(),
        ch(&|x| x.cr3),
    ));
    out.push(cr(
        "CR4  ",
        s.cr4,
        bit_names(s.cr4, CR4_BITS),
        ch(&|x| x.cr4),
    ));
    out.push(cr(
        "EFER ",
        s.efer,
        bit_names(s.efer, EFER_BITS),
        ch(&|x| x.efer),
    ));
    out
}

/// Draw the CPU pane.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let block = pane_block(snap, Pane::Cpu, "CPU".into());
    frame.render_widget(Paragraph::new(lines(snap)).block(block), area);
}
