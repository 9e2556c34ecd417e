//! `ringside isa --coverage`: how much of the x86 instruction set the
//! interpreter implements, and how much of that the differential tester
//! checks against the real CPU.
//!
//! The denominator is every iced-x86 [`Code`] except the non-instructions
//! (`INVALID`, the `DeclareByte/Word/Dword/Qword` data directives and
//! `Zero_bytes`): 16-, 32- and 64-bit forms, legacy, VEX, EVEX, XOP,
//! 3DNow! and the other vendors' encodings alike, grouped by family so
//! the picture is honest about what is missing. The family of a Code is
//! the first CPUID feature iced-x86 lists for it (INTEL386, X64, SSE2,
//! FPU, AVX512F…).
//!
//! The two sources are the interpreter's own dispatch
//! ([`cpu::coverage::implemented`]) and the differential generator's form
//! table ([`accel::difftest::tested_codes`]); nothing here lists
//! instructions by hand.

use crate::cli::{IsaArgs, IsaBucket};
use iced_x86::Code;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The counts of one family (or of all of them).
#[derive(Default, Clone, Copy)]
struct Counts {
    total: usize,
    /// Implemented and differentially tested.
    tested: usize,
    /// Implemented, not covered by the differential generator.
    untested: usize,
    not_implemented: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.total += o.total;
        self.tested += o.tested;
        self.untested += o.untested;
        self.not_implemented += o.not_implemented;
    }
}

/// The report: families sorted by total (descending), the totals, and
/// the Codes the generator tests although the interpreter does not
/// implement them (a bug; the integration test asserts there are none).
struct Report {
    families: Vec<(String, Counts)>,
    totals: Counts,
    tested_not_implemented: Vec<Code>,
}

/// Pseudo-Codes that are not instructions.
fn is_instruction(code: Code) -> bool {
    !matches!(
        code,
        Code::INVALID
            | Code::DeclareByte
            | Code::DeclareWord
            | Code::DeclareDword
            | Code::DeclareQword
            | Code::Zero_bytes
    )
}

/// The family of a Code: its first CPUID feature as iced-x86 names it.
fn family(code: Code) -> String {
    match code.cpuid_features().first() {
        Some(f) => format!("{f:?}"),
        None => "NONE".to_string(),
    }
}

fn build() -> Report {
    let tested: BTreeSet<Code> = accel::difftest::tested_codes();
    let mut by_family: BTreeMap<String, Counts> = BTreeMap::new();
    let mut tested_not_implemented = Vec::new();
    for code in Code::values().filter(|c| is_instruction(*c)) {
        let c = by_family.entry(family(code)).or_default();
        c.total += 1;
        match bucket(code, &tested) {
            IsaBucket::Tested => c.tested += 1,
            IsaBucket::Untested => c.untested += 1,
            IsaBucket::Missing => {
                c.not_implemented += 1;
                if tested.contains(&code) {
                    tested_not_implemented.push(code);
                }
            }
        }
    }
    let mut families: Vec<(String, Counts)> = by_family.into_iter().collect();
    families.sort_by(|a, b| b.1.total.cmp(&a.1.total).then_with(|| a.0.cmp(&b.0)));
    let mut totals = Counts::default();
    for (_, c) in &families {
        totals.add(*c);
    }
    Report {
        families,
        totals,
        tested_not_implemented,
    }
}

/// Width of the bar column.
const BAR: usize = 24;

/// `#` tested, `+` implemented but untested, `.` not implemented, in
/// proportion to the family's total.
fn bar(c: &Counts) -> String {
    if c.total == 0 {
        return String::new();
    }
    let cells = |n: usize| (n * BAR + c.total / 2) / c.total;
    let t = cells(c.tested);
    // Round the cumulative sum so the bar is always BAR wide.
    let tu = cells(c.tested + c.untested).max(t);
    let mut s = String::with_capacity(BAR);
    s.extend(std::iter::repeat_n('#', t));
    s.extend(std::iter::repeat_n('+', tu - t));
    s.extend(std::iter::repeat_n('.', BAR.saturating_sub(tu)));
    s
}

fn text(r: &Report) -> String {
    let mut out = String::new();
    let w = r
        .families
        .iter()
        .map(|(f, _)| f.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:<w$} {:>6} {:>7} {:>12} {:>8}  bar (# tested, + untested, . missing)",
        "family", "total", "tested", "impl.untest.", "missing"
    );
    let row = |out: &mut String, name: &str, c: &Counts| {
        let _ = writeln!(
            out,
            "{:<w$} {:>6} {:>7} {:>12} {:>8}  {}",
            name,
            c.total,
            c.tested,
            c.untested,
            c.not_implemented,
            bar(c)
        );
    };
    for (f, c) in &r.families {
        row(&mut out, f, c);
    }
    row(&mut out, "TOTAL", &r.totals);
    let t = &r.totals;
    let _ = writeln!(
        out,
        "\n{} iced-x86 Codes in {} families: {} implemented ({} differentially tested, \
         {} untested), {} not implemented.",
        t.total,
        r.families.len(),
        t.tested + t.untested,
        t.tested,
        t.untested,
        t.not_implemented
    );
    if !r.tested_not_implemented.is_empty() {
        let _ = writeln!(
            out,
            "BUG: tested by difftest but not implemented: {:?}",
            r.tested_not_implemented
        );
    }
    out
}

fn counts_json(c: &Counts) -> String {
    format!(
        "\"total\":{},\"tested\":{},\"implemented_untested\":{},\"not_implemented\":{}",
        c.total, c.tested, c.untested, c.not_implemented
    )
}

fn json(r: &Report) -> String {
    // Family and Code names are Rust identifiers: no JSON escaping needed.
    let families: Vec<String> = r
        .families
        .iter()
        .map(|(f, c)| format!("{{\"family\":\"{f}\",{}}}", counts_json(c)))
        .collect();
    let bad: Vec<String> = r
        .tested_not_implemented
        .iter()
        .map(|c| format!("\"{c:?}\""))
        .collect();
    format!(
        "{{\"denominator\":\"iced-x86 Code values except INVALID, DeclareByte/Word/Dword/Qword, Zero_bytes\",\
         \"families\":[{}],\"totals\":{{{}}},\"tested_not_implemented\":[{}]}}\n",
        families.join(","),
        counts_json(&r.totals),
        bad.join(",")
    )
}

/// The bucket a Code falls in.
fn bucket(code: Code, tested: &BTreeSet<Code>) -> IsaBucket {
    match (cpu::coverage::implemented(code), tested.contains(&code)) {
        (true, true) => IsaBucket::Tested,
        (true, false) => IsaBucket::Untested,
        (false, _) => IsaBucket::Missing,
    }
}

/// `--list BUCKET [--family F]`: one `FAMILY Code` line per Code.
fn list(which: IsaBucket, only: Option<&str>) -> String {
    let tested = accel::difftest::tested_codes();
    let mut out = String::new();
    for code in Code::values().filter(|c| is_instruction(*c)) {
        let f = family(code);
        if only.is_some_and(|o| !o.eq_ignore_ascii_case(&f)) {
            continue;
        }
        if bucket(code, &tested) == which {
            let _ = writeln!(out, "{f} {code:?}");
        }
    }
    out
}

/// The body of `ringside isa`; returns the exit status.
pub fn run(args: &IsaArgs) -> i32 {
    let mut r = build();
    if let Some(f) = &args.family {
        if !r.families.iter().any(|(n, _)| n.eq_ignore_ascii_case(f)) {
            eprintln!(
                "ringside: no instruction family {f:?}; `ringside isa --coverage` lists them (e.g. INTEL386, SSE2, FPU)"
            );
            return 2;
        }
    }
    let out = match (args.list, &args.family) {
        (Some(b), f) => list(b, f.as_deref()),
        (None, Some(f)) => {
            r.families.retain(|(n, _)| n.eq_ignore_ascii_case(f));
            r.totals = r.families.iter().fold(Counts::default(), |mut t, (_, c)| {
                t.add(*c);
                t
            });
            if args.json {
                json(&r)
            } else {
                text(&r)
            }
        }
        (None, None) if args.json => json(&r),
        (None, None) => text(&r),
    };
    print!("{out}");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_is_full_width() {
        let c = Counts {
            total: 7,
            tested: 1,
            untested: 3,
            not_implemented: 3,
        };
        let b = bar(&c);
        assert_eq!(b.len(), BAR);
        assert!(b.starts_with("###+"));
        assert!(b.ends_with('.'));
    }

    #[test]
    fn families_partition_the_codes() {
        let r = build();
        let t = r.totals;
        assert_eq!(t.total, t.tested + t.untested + t.not_implemented);
        assert_eq!(family(Code::Add_rm32_r32), "INTEL386");
    }
}
