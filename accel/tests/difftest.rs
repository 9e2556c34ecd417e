//! The interpreter against the host CPU: generated cases of the integer
//! instructions, run on KVM (the oracle) and on ringside's interpreter,
//! compared field by field (see `accel::difftest`).
//!
//! `RINGSIDE_DIFFTEST_CASES=N` runs N cases instead of the CI default
//! (a soak run); `RINGSIDE_DIFFTEST_SEED=S` changes the seed;
//! `RINGSIDE_DIFFTEST_ONLY=Pshufb,SSE4_1` runs only those mnemonics or
//! families. Skips, saying
//! why, when KVM is not usable.

use accel::difftest::{self, Config};
use accel::AccelError;

/// Cases per CI run. Measured on the 2-core development host (kvm-pvm):
/// about 2 s (5 s while other builds load the machine).
const CI_CASES: u64 = 200_000;

#[test]
fn interpreter_matches_the_host_cpu() {
    let config = Config::from_env(CI_CASES);
    eprintln!(
        "difftest: seed {:#x}, {} cases (RINGSIDE_DIFFTEST_SEED / RINGSIDE_DIFFTEST_CASES)",
        config.seed, config.cases
    );
    let sum = match difftest::run(&config, &mut |text| eprintln!("{text}")) {
        Ok(s) => s,
        Err(AccelError::Unavailable(why)) => {
            eprintln!("skipping: {why}");
            return;
        }
        Err(e) => panic!("difftest could not run: {e}"),
    };
    eprintln!("{}", sum.line());
    for (why, n) in &sum.unavailable {
        eprintln!("  oracle unavailable ({n} cases): {why}");
    }
    for (condition, n) in &sum.known {
        eprintln!("  known divergence ({n} cases): {condition}");
    }
    assert_eq!(
        sum.divergences, 0,
        "unexplained divergences between the interpreter and the host CPU (reports above)"
    );
    assert_eq!(sum.cases, config.cases);
    assert!(
        sum.generator_failures.is_empty(),
        "the generator could not build cases for {:?}",
        sum.generator_failures
    );
    // Not passing by comparing nothing: most status-flag bits are
    // compared (the rest are undefined by the SDM).
    assert!(sum.flag_bits_compared * 4 > sum.flag_bits_total * 3);
    if config.cases >= 10_000 && config.only.is_none() {
        assert!(sum.codes >= 480, "only {} distinct Codes", sum.codes);
    }
}
