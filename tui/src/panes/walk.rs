//! The page-walk pane: one address's walk through the guest's page tables,
//! level by level (entry address, entry value, flags, decision), the
//! resulting VA → GPA → machine address, and an overview of the mapped
//! ranges like QEMU's `info mem`.

use super::cpu::paging_name;
use super::{dim, pane_block};
use crate::snapshot::{Pane, Snapshot};
use mmu::pte;
use mmu::{PhysTarget, StepDecision, Translation, WalkStep};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// "4 KiB", "2 MiB", "1 GiB".
pub fn size_name(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// The flags of an entry: P RW US PWT PCD A D PS G XD (those set).
pub fn entry_flags(step: &WalkStep) -> String {
    let e = step.entry;
    let mut f = Vec::new();
    for (bit, name) in [
        (pte::P, "P"),
        (pte::RW, "RW"),
        (pte::US, "US"),
        (pte::PWT, "PWT"),
        (pte::PCD, "PCD"),
        (pte::A, "A"),
        (pte::D, "D"),
        (pte::PS, "PS"),
        (pte::G, "G"),
    ] {
        if e & bit != 0 {
            f.push(name);
        }
    }
    if e & pte::XD != 0 {
        f.push("XD");
    }
    f.join(" ")
}

/// What the walker decided at a step. `pa` is the walk's result, from
/// which a leaf's page base is shown (exact for every entry format).
pub fn decision_text(step: &WalkStep, pa: Option<u64>) -> String {
    match step.decision {
        StepDecision::Next(pa) => format!("→ next table at {:#x}", pa.raw()),
        StepDecision::Leaf { page_size } => {
            let mask = !(page_size - 1);
            let base = pa.map_or(step.entry & pte::ADDR_MASK & mask, |pa| pa & mask);
            format!("leaf: {} page at {base:#x}", size_name(page_size))
        }
        StepDecision::NotPresent => "not present → #PF".into(),
        StepDecision::Reserved => "reserved bit set → #PF(RSVD)".into(),
        StepDecision::Denied(why) => format!("denied: {why} → #PF"),
    }
}

fn rights(t: &Translation) -> String {
    format!(
        "{}, {}, {}{}",
        if t.user { "user" } else { "supervisor" },
        if t.writable { "writable" } else { "read-only" },
        if t.executable { "exec" } else { "no-exec" },
        if t.global { ", global" } else { "" }
    )
}

/// The pane's lines (all of them; the renderer cuts to the height).
pub fn lines(snap: &Snapshot) -> Vec<Line<'static>> {
    let w = &snap.walk;
    let mut out = Vec::new();
    let mode = w.regs.mode();
    out.push(Line::from(vec![
        Span::styled(
            format!("VA {:#018x}", w.va),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!(" ({})", w.origin), dim()),
        Span::raw(format!(" · {} · CR3 {:#x}", paging_name(mode), w.regs.cr3)),
    ]));
    let Some(trace) = &w.trace else {
        out.push(Line::styled(
            "press w to walk the address under the code cursor, W to type one",
            dim(),
        ));
        return out;
    };
    if !trace.steps.is_empty() {
        out.push(Line::styled(
            "lvl table entry at (GPA)       entry value        flags                decision",
            dim(),
        ));
    }
    let pa = match trace.result {
        Some(Ok(t)) => Some(t.pa.raw()),
        _ => None,
    };
    for s in &trace.steps {
        let st = match s.decision {
            StepDecision::Next(_) => Style::default(),
            StepDecision::Leaf { .. } => Style::default().fg(Color::Green),
            _ => Style::default().fg(Color::Red),
        };
        out.push(Line::from(vec![
            Span::raw(format!(
                " {}  {:<5} {:#018x} {:#018x} {:<20} ",
                s.level,
                s.table,
                s.entry_pa.raw(),
                s.entry,
                entry_flags(s)
            )),
            Span::styled(decision_text(s, pa), st),
        ]));
    }
    match trace.result {
        Some(Ok(t)) => {
            let how = if trace.steps.is_empty() {
                "paging off: linear = physical".to_string()
            } else {
                format!("{} page, {}", size_name(t.page_size), rights(&t))
            };
            out.push(Line::from(vec![
                Span::styled("VA→PA ", dim()),
                Span::styled(
                    format!("{:#x} → GPA {:#x}", w.va, t.pa.raw()),
                    Style::default().fg(Color::Green),
                ),
                Span::raw(format!(" ({how})")),
            ]));
            let ma = match w.target {
                Some(PhysTarget::Ram(ma)) => format!("→ MA {:#x} (RAM, by {})", ma.0, w.stage2),
                Some(PhysTarget::Mmio(pa)) => {
                    format!("→ MMIO at {:#x} (no RAM behind it)", pa.raw())
                }
                None => "→ ?".into(),
            };
            out.push(Line::from(vec![
                Span::styled("PA→MA ", dim()),
                Span::raw(format!("GPA {:#x} {ma}", t.pa.raw())),
            ]));
        }
        Some(Err(pf)) => {
            out.push(Line::styled(
                format!(
                    "VA→PA {:#x}: #PF error code {:#x} (CR2 would be {:#x})",
                    w.va,
                    pf.error_code,
                    pf.va.raw()
                ),
                Style::default().fg(Color::Red),
            ));
        }
        None => {}
    }
    if !w.nested.is_empty() {
        out.push(Line::styled(
            "2-D walk (nested paging): every guest-physical reference is itself a nested walk",
            dim(),
        ));
        for l in &w.nested {
            out.push(Line::raw(l.clone()));
        }
    }
    if let Some(scan) = &w.ranges {
        out.push(Line::styled(
            format!(
                "mapped ranges (info mem){}: {}",
                if scan.complete {
                    ""
                } else {
                    ", scan cut short"
                },
                scan.ranges.len()
            ),
            dim(),
        ));
        for r in &scan.ranges {
            let end = r.va.raw().wrapping_add(r.len);
            out.push(Line::raw(format!(
                " {:016x}-{:016x} {:016x} {}r{}{} → GPA {:#x}",
                r.va.raw(),
                end,
                r.len,
                if r.user { 'u' } else { '-' },
                if r.writable { 'w' } else { '-' },
                if r.executable { 'x' } else { '-' },
                r.pa.raw()
            )));
        }
    }
    out
}

/// Draw the walk pane.
pub fn render(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let block = pane_block(snap, Pane::Inspector, "Page walk (w/W) · memory: m".into());
    frame.render_widget(Paragraph::new(lines(snap)).block(block), area);
}
