//! Comparing the interpreter's state with KVM's after a step.
//!
//! Compared: the 16 GPRs, RIP, RFLAGS (minus the flags the SDM leaves
//! undefined for the instruction just executed: difftest's table,
//! [`crate::difftest::policy::undefined_insn`]), the six segment registers
//! (selector, base, limit, attributes), TR, LDTR, GDTR, IDTR, CR0, CR2,
//! CR3, CR4, EFER, and the bytes of every page the interpreter wrote.
//!
//! Some instructions are compared by *rule*, not by value, because their
//! results legitimately differ between two CPUs ([`apply_rules`]): RDTSC,
//! RDTSCP and RDMSR of IA32_TSC (each CPU has its own clock; KVM's value
//! must not go backwards), RDRAND/RDSEED (random), and CPUID leaves the
//! host's KVM rewrites (kvm-pvm: 1, 7, 0xd). After checking the rule the
//! interpreter's result is copied into KVM, so the runs stay comparable.

use crate::difftest::case::Case;
use crate::difftest::policy;
use cpu::state::{reg, rflags, SegReg, Segment};
use cpu::CpuState;
use iced_x86::{Instruction, Mnemonic};
use mmu::{GuestRam, MachineAddr};

/// Register names in `CpuState::gpr` order.
pub const GPR_NAMES: [&str; 16] = [
    "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12", "R13",
    "R14", "R15",
];

/// One register row of a report: name, the interpreter's value, KVM's
/// value, and the bits that count (the rest are undefined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub interp: String,
    pub kvm: String,
    pub differs: bool,
}

fn row(name: impl Into<String>, a: u64, b: u64, mask: u64) -> Row {
    Row {
        name: name.into(),
        interp: format!("{a:#018x}"),
        kvm: format!("{b:#018x}"),
        differs: (a ^ b) & mask != 0,
    }
}

fn seg_text(s: &Segment) -> String {
    format!(
        "{:04x} base {:#x} limit {:#x} attr {:#x}",
        s.selector, s.base, s.limit, s.attr
    )
}

/// A segment register holding no usable segment: KVM reports a null SS
/// of 64-bit mode as attributes 0 (not present), ringside as "unusable";
/// both mean the same, and only the selector is state.
fn nullish(s: &Segment) -> bool {
    s.unusable() || (s.selector & !3 == 0 && !s.present())
}

/// The attribute bits that matter: for an unusable (null) segment only
/// the selector and the unusable bit are state; the rest is whatever the
/// last load left in the hidden cache, which KVM and VMX report
/// differently.
fn seg_row(name: &str, a: &Segment, b: &Segment) -> Row {
    let differs = if nullish(a) && nullish(b) {
        a.selector != b.selector
    } else {
        a != b
    };
    Row {
        name: name.to_string(),
        interp: seg_text(a),
        kvm: seg_text(b),
        differs,
    }
}

/// What the comparison may not look at for this step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Masks {
    /// RFLAGS status bits undefined after the instruction.
    pub flags: u64,
    /// A GPR and its undefined bits.
    pub reg: Option<(usize, u64)>,
    /// The SDM rule, for the report.
    pub rule: &'static str,
}

/// The undefined parts of `insn`'s result, executed from `pre`.
pub fn masks(insn: &Instruction, bytes: &[u8], pre: &CpuState) -> Masks {
    let case = Case {
        mode: crate::difftest::case::CaseMode::Long64,
        index: 0,
        pinned: false,
        code_addr: pre.rip,
        code: bytes.to_vec(),
        insns: vec![*insn],
        gpr: pre.gpr,
        rflags: pre.rflags,
        simd: Default::default(),
        windows: Vec::new(),
        mem: None,
        note: String::new(),
    };
    let u = policy::undefined_insn(&case, insn);
    Masks {
        flags: u.flags,
        reg: u.reg,
        rule: u.rule,
    }
}

/// Whether any compared register differs (the fast path: no text).
pub fn any_differs(a: &CpuState, b: &CpuState, m: &Masks) -> bool {
    let gpr = a
        .gpr
        .iter()
        .zip(b.gpr.iter())
        .enumerate()
        .any(|(i, (x, y))| {
            let undefined = match m.reg {
                Some((r, bits)) if r == i => bits,
                _ => 0,
            };
            (x ^ y) & !undefined != 0
        });
    let seg = |x: &Segment, y: &Segment| {
        if nullish(x) && nullish(y) {
            x.selector != y.selector
        } else {
            x != y
        }
    };
    gpr || a.rip != b.rip
        || (a.rflags ^ b.rflags) & !m.flags != 0
        || a.seg.iter().zip(b.seg.iter()).any(|(x, y)| seg(x, y))
        || seg(&a.tr, &b.tr)
        || seg(&a.ldtr, &b.ldtr)
        || a.gdtr != b.gdtr
        || a.idtr != b.idtr
        || a.cr0 != b.cr0
        || a.cr2 != b.cr2
        || a.cr3 != b.cr3
        || a.cr4 != b.cr4
        || a.efer != b.efer
}

/// Every compared register, side by side.
pub fn rows(a: &CpuState, b: &CpuState, m: &Masks) -> Vec<Row> {
    let mut out = Vec::with_capacity(40);
    for (i, name) in GPR_NAMES.iter().enumerate() {
        let undefined = match m.reg {
            Some((r, bits)) if r == i => bits,
            _ => 0,
        };
        out.push(row(*name, a.gpr[i], b.gpr[i], !undefined));
    }
    out.push(row("RIP", a.rip, b.rip, !0));
    let mut fl = row("RFLAGS", a.rflags, b.rflags, !m.flags);
    fl.interp = format!("{:#018x} {}", a.rflags, flag_names(a.rflags));
    fl.kvm = format!("{:#018x} {}", b.rflags, flag_names(b.rflags));
    out.push(fl);
    for s in SegReg::ALL {
        out.push(seg_row(s.name(), a.sreg(s), b.sreg(s)));
    }
    out.push(seg_row("TR", &a.tr, &b.tr));
    out.push(seg_row("LDTR", &a.ldtr, &b.ldtr));
    let dt = |name: &str, x: &cpu::DescTable, y: &cpu::DescTable| Row {
        name: name.to_string(),
        interp: format!("{:#x}/{:#x}", x.base, x.limit),
        kvm: format!("{:#x}/{:#x}", y.base, y.limit),
        differs: x != y,
    };
    out.push(dt("GDTR", &a.gdtr, &b.gdtr));
    out.push(dt("IDTR", &a.idtr, &b.idtr));
    out.push(row("CR0", a.cr0, b.cr0, !0));
    out.push(row("CR2", a.cr2, b.cr2, !0));
    out.push(row("CR3", a.cr3, b.cr3, !0));
    out.push(row("CR4", a.cr4, b.cr4, !0));
    out.push(row("EFER", a.efer, b.efer, !0));
    out
}

/// RFLAGS' set flags by name.
pub fn flag_names(f: u64) -> String {
    let names = [
        (rflags::OF, "OF"),
        (rflags::DF, "DF"),
        (rflags::IF, "IF"),
        (rflags::TF, "TF"),
        (rflags::SF, "SF"),
        (rflags::ZF, "ZF"),
        (rflags::AF, "AF"),
        (rflags::PF, "PF"),
        (rflags::CF, "CF"),
        (rflags::RF, "RF"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("[{}]", set.join(" "))
}

/// A byte of guest RAM that differs: machine address, interpreter, KVM.
pub type ByteDiff = (u64, u8, u8);

/// At most this many differing bytes are kept for a report.
pub const MAX_BYTE_DIFFS: usize = 64;

/// Compare the 4 KiB pages at machine addresses `pages` in the two RAMs.
/// Returns the differing bytes (at most [`MAX_BYTE_DIFFS`]) and whether
/// there were more.
pub fn pages(a: &GuestRam, b: &GuestRam, pages: &[u64]) -> (Vec<ByteDiff>, bool) {
    let mut out = Vec::new();
    let mut more = false;
    let (mut x, mut y) = ([0u8; 4096], [0u8; 4096]);
    for &p in pages {
        let p = p & !0xfff;
        if a.read(MachineAddr(p), &mut x).is_err() || b.read(MachineAddr(p), &mut y).is_err() {
            continue;
        }
        if x == y {
            continue;
        }
        for (i, (u, v)) in x.iter().zip(y.iter()).enumerate() {
            if u != v {
                if out.len() >= MAX_BYTE_DIFFS {
                    more = true;
                    break;
                }
                out.push((p + i as u64, *u, *v));
            }
        }
    }
    (out, more)
}

/// Copy the pages at `pages` from `from` into `to` (resynchronising KVM's
/// RAM with the interpreter's).
pub fn copy_pages(from: &GuestRam, to: &GuestRam, pages: &[u64]) {
    let mut buf = [0u8; 4096];
    for &p in pages {
        let p = p & !0xfff;
        if from.read(MachineAddr(p), &mut buf).is_ok() {
            let _ = to.write(MachineAddr(p), &buf);
        }
    }
}

/// What a rule did to KVM's state.
#[derive(Debug, Default)]
pub struct RuleOutcome {
    /// KVM's state was changed (must be written back).
    pub changed: bool,
    /// The rule itself failed (e.g. the TSC went backwards): a divergence.
    pub violation: Option<String>,
    /// The rule applied, for counting ("rdtsc", "cpuid"...).
    pub name: Option<&'static str>,
}

/// Leaves of CPUID the host's KVM may rewrite (kvm-pvm writes the host's
/// own feature words into 1, 7 and 0xd on `KVM_SET_CPUID2`; see
/// `kvm/mod.rs`).
pub const REWRITTEN_CPUID_LEAVES: [u32; 3] = [1, 7, 0xd];

/// Apply the compare-by-rule instructions: `pre` is the state before the
/// step, `interp` after it on the interpreter, `kvm` after it on KVM.
/// `last_tsc` is KVM's last TSC value seen by a rule.
pub fn apply_rules(
    insn: &Instruction,
    pre: &CpuState,
    interp: &CpuState,
    kvm: &mut CpuState,
    last_tsc: &mut u64,
) -> RuleOutcome {
    let mut o = RuleOutcome::default();
    // Only an instruction that completed (RIP moved on as the
    // interpreter's did) produced a result to take over.
    if interp.rip != kvm.rip || interp.rip == pre.rip {
        return o;
    }
    let edx_eax = |s: &CpuState| (s.gpr[reg::RDX] << 32) | (s.gpr[reg::RAX] & 0xffff_ffff);
    let copy = |kvm: &mut CpuState, regs: &[usize]| {
        for &r in regs {
            kvm.gpr[r] = interp.gpr[r];
        }
    };
    match insn.mnemonic() {
        Mnemonic::Rdtsc | Mnemonic::Rdtscp => {
            let t = edx_eax(kvm);
            if t < *last_tsc {
                o.violation = Some(format!(
                    "{:?}: KVM's TSC went backwards ({t:#x} after {:#x})",
                    insn.mnemonic(),
                    *last_tsc
                ));
            }
            *last_tsc = t;
            copy(kvm, &[reg::RAX, reg::RDX]);
            o.changed = true;
            o.name = Some("rdtsc");
        }
        Mnemonic::Rdmsr if pre.gpr[reg::RCX] as u32 == cpu::state::msr::IA32_TSC => {
            let t = edx_eax(kvm);
            if t < *last_tsc {
                o.violation = Some(format!(
                    "RDMSR IA32_TSC: KVM's TSC went backwards ({t:#x} after {:#x})",
                    *last_tsc
                ));
            }
            *last_tsc = t;
            copy(kvm, &[reg::RAX, reg::RDX]);
            o.changed = true;
            o.name = Some("rdtsc");
        }
        Mnemonic::Rdrand | Mnemonic::Rdseed => {
            if let Some((r, _)) = policy::reg_bits(insn.op0_register()) {
                copy(kvm, &[r]);
            }
            kvm.rflags = (kvm.rflags & !rflags::STATUS) | (interp.rflags & rflags::STATUS);
            o.changed = true;
            o.name = Some("rdrand");
        }
        Mnemonic::Cpuid => {
            let leaf = pre.gpr[reg::RAX] as u32;
            if REWRITTEN_CPUID_LEAVES.contains(&leaf) {
                copy(kvm, &[reg::RAX, reg::RBX, reg::RCX, reg::RDX]);
                o.changed = true;
                o.name = Some("cpuid");
            }
        }
        _ => {}
    }
    o
}

/// Copy the bits `m` leaves undefined from the interpreter's state into
/// KVM's, so an undefined result that differs is not reported later as a
/// divergence of an instruction that did not produce it. True when KVM's
/// state changed.
pub fn take_undefined(interp: &CpuState, kvm: &mut CpuState, m: &Masks) -> bool {
    let mut changed = false;
    if (interp.rflags ^ kvm.rflags) & m.flags != 0 {
        kvm.rflags = (kvm.rflags & !m.flags) | (interp.rflags & m.flags);
        changed = true;
    }
    if let Some((r, bits)) = m.reg {
        if let (Some(a), Some(b)) = (interp.gpr.get(r), kvm.gpr.get_mut(r)) {
            if (*a ^ *b) & bits != 0 {
                *b = (*b & !bits) | (*a & bits);
                changed = true;
            }
        }
    }
    changed
}
