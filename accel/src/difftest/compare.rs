//! Comparing the interpreter's outcome of a case with the oracle's.

use super::batch::CaseRun;
use super::case::{
    describe_outcomes, x87_st, x87_tag, x87_word, x87img, Case, CaseMode, Outcome, GPR_NAMES,
    X87_IMAGE,
};
use super::guest::has_error_code;
use super::policy::{self, Known, Undefined};
use cpu::state::rflags::STATUS;

/// The verdict on one case.
#[derive(Debug)]
pub enum Verdict {
    /// Same outcome (up to the undefined parts).
    Pass,
    /// The oracle could not run the case (host KVM limit): neither pass
    /// nor fail.
    OracleUnavailable(String),
    /// Different, and explained by an entry of [`policy::KNOWN`].
    Known(&'static Known),
    /// Different and unexplained: the report says what differs.
    Divergence(String),
}

/// The status-flag bits one comparison looked at (for the summary: a
/// suite must not pass by comparing nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct Compared {
    pub flag_bits: u32,
}

/// Which fields of `a` and `b` differ, given what is undefined.
fn differences(
    case: &Case,
    a: &Outcome,
    b: &Outcome,
    u: &Undefined,
    fsw_undefined: u16,
) -> Vec<String> {
    let mut d = Vec::new();
    if a.done != b.done {
        d.push("completion".to_string());
    }
    match (&a.exception, &b.exception) {
        (None, None) => {}
        (Some(x), Some(y)) => {
            if x.vector != y.vector {
                d.push("exception vector".into());
            } else {
                if has_error_code(x.vector) && x.error_code != y.error_code {
                    d.push("error code".into());
                }
                if x.vector == 14 && x.cr2 != y.cr2 {
                    d.push("CR2".into());
                }
            }
            if x.rip != y.rip {
                d.push("faulting RIP".into());
            }
        }
        _ => d.push("exception".into()),
    }
    for (i, name) in GPR_NAMES.iter().enumerate() {
        let undefined = match u.reg {
            Some((r, m)) if r == i => m,
            _ => 0,
        } | compat_undefined(case, i);
        if (a.gpr[i] ^ b.gpr[i]) & !undefined != 0 {
            d.push(name.to_string());
        }
    }
    if (a.rflags ^ b.rflags) & !u.flags != 0 {
        d.push("rflags".into());
    }
    if a.segs != b.segs {
        d.push("segment selectors".into());
    }
    for i in 0..16 {
        if a.simd.xmm[i] != b.simd.xmm[i] {
            d.push(format!("xmm{i}"));
        }
    }
    if a.simd.mxcsr != b.simd.mxcsr {
        d.push("mxcsr".into());
    }
    x87_differences(&a.simd.x87, &b.simd.x87, fsw_undefined, &mut d);
    let by_rule = policy::fxsave_unchecked(case);
    for (k, w) in case.windows.iter().enumerate() {
        let (Some(x), Some(y)) = (a.windows.get(k), b.windows.get(k)) else {
            d.push("memory".into());
            continue;
        };
        let differs = x.iter().zip(y).enumerate().any(|(j, (p, q))| {
            let addr = w.addr + j as u64;
            let undefined = u
                .mem
                .is_some_and(|(s, l)| addr >= s && addr < s + u64::from(l))
                || by_rule.iter().any(|(s, e)| addr >= *s && addr < *e);
            p != q && !undefined
        });
        if differs || x.len() != y.len() {
            d.push(format!("memory at {:#x}", w.addr));
        }
    }
    d
}

/// GPR bits a compatibility-mode case does not compare: the upper 32
/// bits of RAX-RDI (and RSP). The SDM (Vol. 1, 3.4.1.1) leaves them
/// undefined after a switch from compatibility mode back to 64-bit mode;
/// code running in compatibility mode can neither read nor set them, so
/// whatever a CPU leaves there is not a result of the instructions under
/// test (measured: on kvm-pvm, whose instruction emulator runs
/// compatibility-mode code, 32-bit results come back zero-extended).
/// R8-R15, which compatibility mode cannot reach at all, are compared in
/// full (the host and ringside both preserve them).
fn compat_undefined(case: &Case, gpr: usize) -> u64 {
    match case.mode {
        CaseMode::Compat32 if gpr < 8 => 0xffff_ffff_0000_0000,
        _ => 0,
    }
}

/// The x87 fields of two FNSAVE images that differ: FCW, FSW (but the
/// `fsw_undefined` bits), the full tag word, and the 80 bits of every
/// register that is non-empty on either side. Not compared: the reserved
/// upper halves of the FCW/FSW/FTW dwords, and the pointer registers
/// (FIP, FCS, FOP, FDP, FDS): AMD processors store FIP/FDP/FOP only when
/// an exception is pending (AMD APM Vol. 2, 11.4.4.3), and ringside does
/// not record FOP.
fn x87_differences(
    a: &[u8; X87_IMAGE],
    b: &[u8; X87_IMAGE],
    fsw_undefined: u16,
    d: &mut Vec<String>,
) {
    if x87_word(a, x87img::FCW) != x87_word(b, x87img::FCW) {
        d.push("fcw".into());
    }
    if (x87_word(a, x87img::FSW) ^ x87_word(b, x87img::FSW)) & !fsw_undefined != 0 {
        d.push("fsw".into());
    }
    if x87_word(a, x87img::FTW) != x87_word(b, x87img::FTW) {
        d.push("ftw".into());
    }
    for i in 0..8 {
        if (x87_tag(a, i) != 3 || x87_tag(b, i) != 3) && x87_st(a, i) != x87_st(b, i) {
            d.push(format!("st{i}"));
        }
    }
}

/// What the comparison needs to know about the run.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub seed: u64,
    /// Oracle and interpreter names, for reports.
    pub names: [&'a str; 2],
    /// The oracle is kvm-pvm ([`policy::PVM_ARTIFACTS`] apply).
    pub pvm: bool,
}

/// Compare the oracle's run of `case` with the interpreter's.
pub fn compare(cx: &Context, case: &Case, oracle: &CaseRun, tcg: &CaseRun) -> (Verdict, Compared) {
    let (seed, names) = (cx.seed, cx.names);
    let none = Compared::default();
    let (a, b) = match (oracle, tcg) {
        (CaseRun::Unavailable(why), _) => return (Verdict::OracleUnavailable(why.clone()), none),
        (CaseRun::Ran(a), CaseRun::Ran(b)) => (a, b),
        (a, b) => {
            let show = |r: &CaseRun| match r {
                CaseRun::Ran(_) => "ran".to_string(),
                CaseRun::Unavailable(w) => format!("unavailable: {w}"),
                CaseRun::Broken(w) => format!("harness broke: {w}"),
            };
            return (
                Verdict::Divergence(format!(
                    "{}  {}: {}\n  {}: {}\n",
                    case.describe(seed),
                    names[0],
                    show(a),
                    names[1],
                    show(b)
                )),
                none,
            );
        }
    };
    // A faulting instruction changes nothing: compare everything then.
    let u = if a.exception.is_some() || b.exception.is_some() {
        Undefined::default()
    } else {
        policy::undefined(case)
    };
    let compared = Compared {
        flag_bits: (STATUS & !u.flags).count_ones(),
    };
    let fsw_undefined = if a.exception.is_some() || b.exception.is_some() {
        0
    } else {
        policy::x87_fsw_undefined(case)
    };
    let diffs = differences(case, a, b, &u, fsw_undefined);
    if diffs.is_empty() && a.done {
        return (Verdict::Pass, compared);
    }
    if let Some(art) = policy::oracle_artifact(cx.pvm, case, a, b) {
        return (Verdict::OracleUnavailable(art.condition.to_string()), none);
    }
    if let Some(k) = policy::known(case, a, b) {
        return (Verdict::Known(k), compared);
    }
    let what = if diffs.is_empty() {
        "the case did not complete on either backend".to_string()
    } else {
        diffs.join(", ")
    };
    let mut text = case.describe(seed);
    text.push_str(&format!("  differs in: {what}"));
    if !u.rule.is_empty() {
        text.push_str(&format!(
            " (undefined, not compared: {}{})",
            u.rule,
            match u.reg {
                Some((r, m)) => format!(", {} bits {m:#x}", GPR_NAMES[r]),
                None => String::new(),
            }
        ));
    }
    text.push('\n');
    text.push_str(&describe_outcomes(case, names, [a, b]));
    (Verdict::Divergence(text), compared)
}
