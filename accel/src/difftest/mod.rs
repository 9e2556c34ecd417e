//! Differential testing: the host CPU (through KVM) is the oracle for
//! ringside's interpreter, instruction by instruction.
//!
//! A case is an initial state (GPRs, RFLAGS, memory around the operands;
//! 64-bit mode, CPL 3, fixed segments, control registers and page tables)
//! and an instruction, encoded with iced-x86's encoder from a [`Code`] and
//! generated operands (never hand-typed bytes). Both backends run the case
//! from the identical state and the harness compares the GPRs, RFLAGS
//! (minus the flags the SDM leaves undefined, [`policy`]), the data
//! segment selectors, the bytes of the case's memory windows, and the
//! exception raised, if any (vector, error code, CR2, faulting RIP).
//!
//! * `rng.rs`: the seeded PRNG.
//! * [`guest`]: the test guest: tables, the CPL-0 exception handler, the
//!   CPL-3 case loop.
//! * [`gen`]: the case generator (forms from iced's opcode tables, edge
//!   values, addressing forms, faulting cases, flag readers after the
//!   instruction under test, pinned regression cases).
//! * [`batch`]: laying a batch out in guest memory, running it on a
//!   backend.
//! * [`policy`]: the undefined-flags table and the known divergences.
//! * [`compare`]: the verdict on one case.
//! * [`case`]: cases, outcomes and their self-contained reports.
//!
//! # Why batches, measured
//!
//! Driving each case through the [`crate::Accelerator`] API (set_state,
//! run to a trapping instruction, get_state) costs a few `KVM_RUN`s and
//! register ioctls per case, and on kvm-pvm the trap is handled by CPL-0
//! code the host *emulates*. Instead each backend gets one VM, and a
//! user-mode loop in the guest runs a whole batch (up to
//! [`batch::MAX_BATCH`] cases) in one `run()`: a case that does not fault
//! costs ~40 native instructions of loop around the instruction under
//! test; only faulting cases pay for the (emulated) exception handler.
//! Measured on the development host (AMD EPYC, 2 cores, kvm-pvm), with
//! 500,000 cases: KVM ~0.2 µs per non-faulting case (native ring-3 code;
//! loading the batch included) and ~40 µs per faulting case (PVM's
//! exception routing plus the emulated CPL-0 handler; ~5% of the
//! generated cases fault); the interpreter ~1.6 µs per case (each case's
//! code is fresh, so decoding dominates). A 200,000-case run takes about
//! 2 s (5 s on a loaded machine). The summary line reports the averages
//! of each run.
//!
//! # Warming the oracle up
//!
//! On kvm-pvm (shadow paging), the first access to a guest page the host
//! has not mapped yet may be completed by KVM's instruction *emulator*
//! rather than by the CPU, at least for page-crossing operands. The
//! emulator is not the hardware: measured here, it executes LZCNT as BSR
//! (it ignores the F3 prefix) and completes the first half of a write that
//! crosses into a read-only page before raising #PF. A second run of the
//! same batch finds the pages mapped and runs natively. So the oracle runs
//! every batch that reaches pages no earlier batch touched twice and keeps
//! the second run (in practice: the first batch of a run).
//!
//! # Oracle unavailable
//!
//! A case counts as "oracle unavailable", neither pass nor fail, when
//! * the host KVM gave up on it (`KVM_EXIT_INTERNAL_ERROR`, i.e.
//!   [`crate::VcpuExit::HostLimit`]); the batch resumes after it;
//! * the oracle's answer is known to be the host hypervisor's rather than
//!   the CPU's ([`policy::PVM_ARTIFACTS`]: kvm-pvm hands a ring-3 #GP to
//!   KVM's instruction emulator);
//! * a divergence does not reproduce when the case runs again alone: the
//!   oracle changed its answer (every divergence is re-run before it is
//!   reported).
//!
//! The summary counts each reason separately.

pub mod batch;
pub mod case;
pub mod compare;
pub mod gen;
pub mod guest;
pub mod policy;
mod rng;

#[cfg(test)]
mod tests;

use crate::AccelError;
use batch::{Alloc, Backend};
use compare::Verdict;
use iced_x86::Code;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The Codes the differential generator makes cases for: exactly the
/// Codes of [`gen::forms`] (any run of at least that many cases covers
/// each of them). For the ISA coverage report.
pub fn tested_codes() -> BTreeSet<Code> {
    gen::forms().into_iter().map(|f| f.code).collect()
}

/// The seed used when none is given: fixed, so CI runs are reproducible;
/// set `RINGSIDE_DIFFTEST_SEED` to explore others.
pub const DEFAULT_SEED: u64 = 0x5249_4e47_5349_4445; // "RINGSIDE"

/// Why a case whose oracle outcome changed between two runs counts as
/// "oracle unavailable".
const INCONSISTENT: &str = "the oracle's outcome changed when the case ran again \
                            (the host completed one of the runs in its instruction emulator)";

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub cases: u64,
    /// Divergences reported in full (the rest are counted).
    pub max_reports: usize,
    /// Only the forms whose mnemonic or family (the first CPUID feature
    /// iced-x86 lists, as `ringside isa --coverage` names it) is in this
    /// list, compared case-insensitively; `None`: every form, with the
    /// pinned regression cases first.
    pub only: Option<Vec<String>>,
}

impl Config {
    /// Does [`Config::only`] select `code`?
    pub fn selects(&self, code: Code) -> bool {
        let Some(only) = &self.only else {
            return true;
        };
        let mnemonic = format!("{:?}", code.mnemonic());
        let family = code
            .cpuid_features()
            .first()
            .map(|f| format!("{f:?}"))
            .unwrap_or_default();
        only.iter()
            .any(|o| o.eq_ignore_ascii_case(&mnemonic) || o.eq_ignore_ascii_case(&family))
    }
}

impl Config {
    /// `default_cases` cases from [`DEFAULT_SEED`], unless the
    /// environment says otherwise: `RINGSIDE_DIFFTEST_CASES=N` (a soak
    /// run), `RINGSIDE_DIFFTEST_SEED=S` (decimal or 0x-hex),
    /// `RINGSIDE_DIFFTEST_REPORTS=N` (print up to N divergence reports
    /// instead of 20), `RINGSIDE_DIFFTEST_ONLY=A,B` (only the forms of
    /// these mnemonics or families, e.g. `Pshufb,SSE4_1`).
    pub fn from_env(default_cases: u64) -> Self {
        let num = |name: &str| -> Option<u64> {
            let v = std::env::var(name).ok()?;
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        };
        Config {
            seed: num("RINGSIDE_DIFFTEST_SEED").unwrap_or(DEFAULT_SEED),
            cases: num("RINGSIDE_DIFFTEST_CASES").unwrap_or(default_cases),
            max_reports: num("RINGSIDE_DIFFTEST_REPORTS").map_or(20, |n| n as usize),
            only: std::env::var("RINGSIDE_DIFFTEST_ONLY").ok().map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub seed: u64,
    pub cases: u64,
    pub passed: u64,
    pub oracle_unavailable: u64,
    /// Why the oracle was unavailable, with counts.
    pub unavailable: BTreeMap<String, u64>,
    /// Divergences explained by [`policy::KNOWN`], by entry.
    pub known: BTreeMap<&'static str, u64>,
    pub divergences: u64,
    /// Cases whose oracle outcome was an exception.
    pub faulting: u64,
    /// Distinct iced [`Code`]s among the cases run.
    pub codes: usize,
    /// Forms the generator knows (the coverage a long enough run reaches).
    pub forms: usize,
    /// Forms the generator could not build a case for (a harness bug).
    pub generator_failures: Vec<Code>,
    /// Status-flag bits compared, summed over cases, and the total
    /// possible (6 per compared case).
    pub flag_bits_compared: u64,
    pub flag_bits_total: u64,
    /// Batches the oracle ran twice to warm its page tables.
    pub warmups: u64,
    pub elapsed: Duration,
    pub oracle_time: Duration,
    pub tcg_time: Duration,
    pub oracle: String,
}

impl Summary {
    /// The one-line summary.
    pub fn line(&self) -> String {
        let known: u64 = self.known.values().sum();
        let per = |t: Duration| {
            if self.cases == 0 {
                0.0
            } else {
                t.as_secs_f64() * 1e6 / self.cases as f64
            }
        };
        format!(
            "difftest: {} cases (seed {:#x}), {} passed, {} oracle-unavailable, {} known, \
             {} divergences; {} faulting; {} distinct Codes of {} forms; status-flag bits \
             compared {}/{}; {:.1} s (oracle {} {:.2} µs/case, tcg {:.2} µs/case)",
            self.cases,
            self.seed,
            self.passed,
            self.oracle_unavailable,
            known,
            self.divergences,
            self.faulting,
            self.codes,
            self.forms,
            self.flag_bits_compared,
            self.flag_bits_total,
            self.elapsed.as_secs_f64(),
            self.oracle,
            per(self.oracle_time),
            per(self.tcg_time),
        )
    }
}

/// Run the suite: `config.cases` generated cases on KVM and on the
/// interpreter. `report` receives each divergence's full report (up to
/// `config.max_reports`). [`AccelError::Unavailable`] when there is no
/// usable KVM.
pub fn run(config: &Config, report: &mut dyn FnMut(&str)) -> Result<Summary, AccelError> {
    let start = Instant::now();
    let mut oracle = Backend::kvm()?;
    let mut tcg = Backend::tcg()?;
    let names = [oracle.name(), tcg.name()];
    let cx = compare::Context {
        seed: config.seed,
        names,
        pvm: crate::kvm::probe().kind == crate::kvm::KvmFlavour::Pvm,
    };
    let mut gen = gen::Generator::new(config.seed);
    gen.retain_forms(|f| config.selects(f.code));
    if gen.forms().is_empty() {
        return Err(AccelError::Unavailable(
            "RINGSIDE_DIFFTEST_ONLY selects no form of the generator".to_string(),
        ));
    }
    let mut sum = Summary {
        seed: config.seed,
        forms: gen.forms().len(),
        oracle: oracle.describe(),
        ..Summary::default()
    };
    let mut codes: BTreeSet<Code> = BTreeSet::new();
    let mut reported = 0;
    let mut warm = (0u64, 0u64);
    while sum.cases < config.cases {
        let mut alloc = Alloc::default();
        let mut cases = Vec::new();
        if sum.cases == 0 && config.only.is_none() {
            // The regression cases run first, in the first batch.
            for (k, f) in gen::regressions().iter().enumerate() {
                if let Some(c) = gen::fixed_case(f, k as u64, &mut alloc) {
                    cases.push(c);
                }
            }
        }
        while sum.cases + (cases.len() as u64) < config.cases {
            match gen.next_case(&mut alloc) {
                Some(c) => cases.push(c),
                None => break,
            }
        }
        if cases.is_empty() {
            break;
        }
        // Warm-up (see the module doc): a batch that reaches pages no
        // earlier batch touched runs twice on the oracle; the first run's
        // results are dropped.
        let (code_end, data_end) = alloc.extent();
        if code_end > warm.0 || data_end > warm.1 {
            oracle.run(&cases)?;
            warm = (warm.0.max(code_end), warm.1.max(data_end));
            sum.warmups += 1;
        }
        let a = oracle.run(&cases)?;
        let b = tcg.run(&cases)?;
        for ((case, ra), rb) in cases.iter().zip(&a).zip(&b) {
            sum.cases += 1;
            codes.extend(case.insns.iter().map(|i| i.code()));
            let (verdict, cmp) = compare::compare(&cx, case, ra, rb);
            if let batch::CaseRun::Ran(o) = ra {
                if o.exception.is_some() {
                    sum.faulting += 1;
                }
            }
            match verdict {
                Verdict::Pass => {
                    sum.passed += 1;
                    sum.flag_bits_compared += u64::from(cmp.flag_bits);
                    sum.flag_bits_total += 6;
                }
                Verdict::OracleUnavailable(why) => {
                    sum.oracle_unavailable += 1;
                    let n = sum.unavailable.entry(why).or_default();
                    *n += 1;
                }
                Verdict::Known(k) => *sum.known.entry(k.condition).or_default() += 1,
                Verdict::Divergence(text) => {
                    // Confirm: the same case, alone, on the oracle again. An
                    // oracle that changes its answer was not the CPU (a
                    // host emulation on a cold page, see above).
                    let again = oracle.run(std::slice::from_ref(case))?;
                    if again.first() != Some(ra) {
                        sum.oracle_unavailable += 1;
                        *sum.unavailable.entry(INCONSISTENT.to_string()).or_default() += 1;
                        continue;
                    }
                    sum.divergences += 1;
                    if reported < config.max_reports {
                        reported += 1;
                        report(&text);
                    }
                }
            }
        }
    }
    sum.codes = codes.len();
    sum.generator_failures = gen.failures().to_vec();
    sum.oracle_time = oracle.run_time;
    sum.tcg_time = tcg.run_time;
    sum.elapsed = start.elapsed();
    Ok(sum)
}
