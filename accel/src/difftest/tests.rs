//! Tests of the harness itself, on the interpreter only (no KVM needed):
//! the generator, the undefined-flags rules, the comparator, and the case
//! loop running a batch.

use super::batch::{Alloc, Backend, CaseRun};
use super::case::{Case, MemTarget};
use super::compare::{compare, Context, Verdict};
use super::gen::{self, Fixed, Generator};
use super::guest;
use super::policy::{undefined, Undefined};
use super::rng::Rng;
use cpu::state::rflags::{AF, CF, FIXED1, IF, OF, PF, SF, STATUS, ZF};
use iced_x86::code_asm::*;
use iced_x86::Mnemonic;

const CX: Context = Context {
    seed: 0,
    names: ["oracle", "tcg"],
    pvm: false,
};

/// A pinned case from assembly with `gpr` ((index, value) pairs, in
/// order), alone in its batch.
fn case_of(
    asm: fn(&mut CodeAssembler) -> Result<(), IcedError>,
    gpr: [(usize, u64); 4],
    mem: Option<MemTarget>,
) -> Case {
    case_in(&mut Alloc::default(), asm, gpr, mem)
}

/// A pinned case laid out through `alloc`.
fn case_in(
    alloc: &mut Alloc,
    asm: fn(&mut CodeAssembler) -> Result<(), IcedError>,
    gpr: [(usize, u64); 4],
    mem: Option<MemTarget>,
) -> Case {
    let f = Fixed {
        note: "test",
        gpr,
        rflags: FIXED1 | IF,
        mem,
        asm,
    };
    gen::fixed_case(&f, 0, alloc).expect("assembles")
}

#[test]
fn every_mnemonic_has_forms() {
    let forms = gen::forms();
    for m in gen::MNEMONICS {
        assert!(
            forms.iter().any(|f| f.code.mnemonic() == *m),
            "no form for {m:?}"
        );
    }
    assert!(forms.len() >= 450, "only {} forms", forms.len());
}

#[test]
fn generation_is_reproducible() {
    let run = |seed: u64| {
        let mut g = Generator::new(seed);
        let mut alloc = Alloc::default();
        (0..600)
            .filter_map(|_| g.next_case(&mut alloc))
            .map(|c| (c.code, c.gpr, c.rflags, c.windows))
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a.len(), 600);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
}

#[test]
fn generated_cases_encode_what_they_say() {
    let mut g = Generator::new(1);
    let mut alloc = Alloc::default();
    let (mut mem, mut readers) = (0, 0);
    // (More than one round of the forms: the generic forms, which add the
    // flag readers, are about half of them.)
    for _ in 0..4000 {
        let c = match g.next_case(&mut alloc) {
            Some(c) => c,
            None => {
                // A full batch: start the next one.
                alloc = Alloc::default();
                g.next_case(&mut alloc).expect("room")
            }
        };
        if c.note.contains("flag reader") {
            readers += 1;
            assert!((2..=3).contains(&c.insns.len()), "{}", c.note);
            assert!(c.insns[1..].iter().all(|i| !i.is_invalid()));
        } else if !gen::gen_more::sequence(c.insns[0].code()) && !gen::gen_x87::sequence(&c) {
            assert_eq!(c.insns.len(), 1, "{}", c.note);
        }
        assert!(
            !c.insns[0].is_invalid() || c.note.contains("lock"),
            "{}",
            c.note
        );
        assert!(
            (guest::CODE_BASE..guest::CODE_END).contains(&c.code_addr)
                || (guest::LOW_CODE_BASE..guest::LOW_CODE_END).contains(&c.code_addr)
        );
        for w in &c.windows {
            assert!(
                w.addr >= guest::SPECIAL_BASE && w.addr + (w.init.len() as u64) <= guest::RAM_SIZE
            );
        }
        if c.mem.is_some() {
            mem += 1;
        }
    }
    assert!(mem > 500, "memory forms: {mem}");
    assert!(readers > 300, "flag readers: {readers}");
}

#[test]
fn edge_values_are_always_in_the_mix() {
    let mut rng = Rng::new(3);
    for bits in [8u32, 16, 32, 64] {
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        };
        let min = 1u64 << (bits - 1);
        let seen: Vec<u64> = (0..3000).map(|_| gen::value(&mut rng, bits)).collect();
        for want in [0, 1, mask, min, min - 1, min + 1, mask - 1] {
            assert!(seen.contains(&want), "{bits}-bit: {want:#x} never drawn");
        }
        assert!(seen.iter().all(|v| v & !mask == 0));
    }
}

#[test]
fn page_crossing_windows_straddle_a_boundary() {
    let mut a = Alloc::default();
    for _ in 0..100 {
        let w = a.data(64, Some(32));
        assert_eq!((w + 32) % 0x1000, 0);
        let plain = a.data(64, None);
        assert_eq!(plain % 64, 0);
    }
}

#[test]
fn undefined_flags_follow_the_count() {
    let u = |c: &Case| undefined(c).flags;
    assert_eq!(u(&case_of(|a| a.add(eax, ebx), [(0, 0); 4], None)), 0);
    assert_eq!(u(&case_of(|a| a.and(eax, ebx), [(0, 0); 4], None)), AF);
    assert_eq!(u(&case_of(|a| a.shl(eax, 0), [(0, 0); 4], None)), 0);
    assert_eq!(u(&case_of(|a| a.shl(eax, 1), [(0, 0); 4], None)), AF);
    assert_eq!(u(&case_of(|a| a.shl(eax, 5), [(0, 0); 4], None)), AF | OF);
    // 32 masks to 0 for a 32-bit operand, not for a 64-bit one.
    assert_eq!(u(&case_of(|a| a.shl(eax, 32), [(0, 0); 4], None)), 0);
    assert_eq!(u(&case_of(|a| a.shl(rax, 32), [(0, 0); 4], None)), AF | OF);
    // CF: undefined for SHL/SHR by >= the width, defined for SAR.
    let cl8 = [(1, 8), (0, 0), (0, 0), (0, 0)];
    assert_eq!(u(&case_of(|a| a.shr(al, cl), cl8, None)), AF | OF | CF);
    assert_eq!(u(&case_of(|a| a.sar(al, cl), cl8, None)), AF | OF);
    assert_eq!(u(&case_of(|a| a.rol(al, 1), [(0, 0); 4], None)), 0);
    assert_eq!(u(&case_of(|a| a.rcr(al, cl), cl8, None)), OF);
    assert_eq!(
        u(&case_of(|a| a.mul(ecx), [(0, 0); 4], None)),
        SF | ZF | AF | PF
    );
    assert_eq!(u(&case_of(|a| a.div(ecx), [(0, 0); 4], None)), STATUS);
    assert_eq!(
        u(&case_of(|a| a.bt(eax, 3), [(0, 0); 4], None)),
        OF | SF | AF | PF
    );
    assert_eq!(u(&case_of(|a| a.popcnt(eax, ecx), [(0, 0); 4], None)), 0);
    // 16-bit SHLD by more than 16: result and flags undefined.
    let c = case_of(|a| a.shld(ax, bx, 17), [(0, 0); 4], None);
    assert_eq!(
        undefined(&c),
        Undefined {
            flags: STATUS,
            reg: Some((0, 0xffff)),
            mem: None,
            rule: "16-bit SHLD/SHRD by >16: result and flags undefined",
        }
    );
    let c = case_of(|a| a.bswap(ax), [(0, 0); 4], None);
    assert_eq!(undefined(&c).reg, Some((0, 0xffff)));
    assert_eq!(c.insns[0].mnemonic(), Mnemonic::Bswap);
}

/// Run `cases` on the interpreter.
fn run_tcg(cases: &[Case]) -> Vec<CaseRun> {
    let mut tcg = Backend::tcg().expect("tcg");
    tcg.run(cases).expect("batch runs")
}

fn ran(r: &CaseRun) -> &super::case::Outcome {
    match r {
        CaseRun::Ran(o) => o,
        other => panic!("case did not run: {other:?}"),
    }
}

#[test]
fn the_case_loop_runs_a_batch_on_the_interpreter() {
    let mut g = Generator::new(11);
    let mut alloc = Alloc::default();
    let mut cases: Vec<Case> = gen::regressions()
        .iter()
        .enumerate()
        .filter_map(|(k, f)| gen::fixed_case(f, k as u64, &mut alloc))
        .collect();
    while let Some(c) = g.next_case(&mut alloc) {
        cases.push(c);
        if cases.len() == 3000 {
            break;
        }
    }
    let runs = run_tcg(&cases);
    assert_eq!(runs.len(), cases.len());
    let mut faults = 0;
    for (c, r) in cases.iter().zip(&runs) {
        let o = ran(r);
        assert!(o.done, "{}", c.describe(11));
        if let Some(e) = o.exception {
            faults += 1;
            // INT1 is a trap: the frame's RIP follows it.
            let first = &c.insns[0];
            let want = if first.code() == iced_x86::Code::Int1 {
                first.next_ip()
            } else if gen::gen_x87::sequence(c) && c.insns.iter().any(|i| i.ip() == e.rip) {
                // x87 sequences (WAIT + FN-form, a trailing FWAIT): the
                // fault is at one of their instructions.
                e.rip
            } else {
                c.code_addr
            };
            assert_eq!(e.rip, want, "{}", c.describe(11));
        }
        // The interpreter agrees with itself.
        let (v, cmp) = compare(&CX, c, r, r);
        assert!(matches!(v, Verdict::Pass), "{v:?}");
        if o.exception.is_none() {
            assert!(cmp.flag_bits >= 1 || undefined(c).flags == STATUS);
        }
    }
    assert!(faults > 50, "only {faults} faulting cases");
    // The first regression case: SHL by 0 on a read-only page is a write.
    let e = ran(&runs[0]).exception.expect("faults");
    assert_eq!(
        (e.vector, e.error_code, e.cr2),
        (14, 7, guest::PAGE_READ_ONLY + 0x10)
    );
}

#[test]
fn exceptions_are_recorded_with_error_code_and_cr2() {
    let a = &mut Alloc::default();
    let cases = [
        case_in(a, |a| a.div(ecx), [(1, 0), (2, 0), (1, 0), (0, 5)], None),
        case_in(
            a,
            |a| a.mov(rax, qword_ptr(guest::PAGE_NOT_PRESENT + 8)),
            [(0, 0); 4],
            Some(MemTarget {
                addr: guest::PAGE_NOT_PRESENT + 8,
                size: 8,
            }),
        ),
        case_in(a, |a| a.ud2(), [(0, 0); 4], None),
        case_in(
            a,
            |a| a.add(eax, 1),
            [(1, 0), (1, 0), (1, 0), (0, 0x7fff_ffff)],
            None,
        ),
    ];
    let runs = run_tcg(&cases);
    let exc = |i: usize| {
        ran(&runs[i])
            .exception
            .map(|e| (e.vector, e.error_code, e.cr2))
    };
    assert_eq!(exc(0).map(|e| e.0), Some(0));
    assert_eq!(exc(1), Some((14, 4, guest::PAGE_NOT_PRESENT + 8)));
    assert_eq!(exc(2).map(|e| e.0), Some(6));
    assert_eq!(exc(3), None);
    let o = ran(&runs[3]);
    assert_eq!(o.gpr[0], 0x8000_0000);
    assert_eq!(o.rflags & STATUS, OF | SF | AF | PF);
    // The registers survive a fault unchanged.
    assert_eq!(ran(&runs[0]).gpr[0], 5);
}

#[test]
fn the_comparison_sees_every_field() {
    let c = case_of(
        |a| a.and(eax, ebx),
        [(0, 0x0f), (3, 0xf0), (0, 0), (0, 0)],
        None,
    );
    let runs = run_tcg(std::slice::from_ref(&c));
    let good = ran(&runs[0]).clone();
    let check = |tamper: fn(&mut super::case::Outcome), diverges: bool| {
        let mut bad = good.clone();
        tamper(&mut bad);
        let (v, _) = compare(&CX, &c, &CaseRun::Ran(good.clone()), &CaseRun::Ran(bad));
        assert_eq!(matches!(v, Verdict::Divergence(_)), diverges, "{v:?}");
    };
    check(|o| o.rflags ^= AF, false); // AND: AF undefined
    check(|o| o.rflags ^= CF, true);
    check(|o| o.rflags ^= ZF, true);
    check(|o| o.gpr[0] ^= 1 << 40, true);
    check(|o| o.gpr[15] ^= 1, true);
    check(|o| o.segs[0] ^= 8, true);
    check(|o| o.done = false, true);
    check(
        |o| {
            o.exception = Some(super::case::Exception {
                vector: 13,
                error_code: 0,
                cr2: 0,
                rip: 0,
            })
        },
        true,
    );
}

/// An independent check of the undefined-flags table: where the SDM's
/// rule does not depend on the count, it must name exactly the flags
/// iced-x86's instruction tables (built from the same manuals) call
/// undefined, for every form of the suite.
#[test]
fn undefined_flags_agree_with_iced() {
    use super::policy::{from_iced_rflags, undefined_insn};
    use Mnemonic as M;
    let count_dependent = [
        M::Shl,
        M::Sal,
        M::Shr,
        M::Sar,
        M::Rol,
        M::Ror,
        M::Rcl,
        M::Rcr,
        M::Shld,
        M::Shrd,
    ];
    let mut g = Generator::new(5);
    let mut alloc = Alloc::default();
    let mut checked = std::collections::BTreeSet::new();
    while let Some(c) = g.next_case(&mut alloc) {
        let insn = c.insns[0];
        if insn.is_invalid() {
            continue;
        }
        let ours = undefined_insn(&c, &insn).flags;
        let iced = from_iced_rflags(insn.rflags_undefined());
        if count_dependent.contains(&insn.mnemonic()) {
            // The count decides. iced's static tables call OF of a
            // rotate "written" and CF of SHL/SHR defined; the SDM makes
            // them undefined for counts > 1 (rotates) or >= the width
            // (SHL/SHR), and everything for 16-bit SHLD/SHRD by > 16.
            let allowed = match insn.mnemonic() {
                M::Rol | M::Ror | M::Rcl | M::Rcr => OF,
                M::Shl | M::Sal | M::Shr => CF | OF | AF,
                M::Shld | M::Shrd => STATUS,
                _ => 0,
            };
            let extra = ours & !iced;
            assert_eq!(extra & !allowed, 0, "{} ({:?})", c.text(), insn.code());
            continue;
        }
        assert_eq!(ours, iced, "{} ({:?})", c.text(), insn.code());
        checked.insert(insn.code());
    }
    assert!(checked.len() > 350, "{} forms checked", checked.len());
}
