//! Forms the generic generator cannot build: instructions whose operands
//! are implicit (string instructions, the stack, control transfers),
//! system instructions (faulting at CPL 3, or compared by rule where the
//! result is not architectural), and the register/memory forms with
//! operand kinds [`super::supported`] does not know (moffs, segment
//! registers, far pointers, hint NOPs).
//!
//! Each family below builds a whole case: the instruction under test
//! first, then (for control transfers) a `NOT r64` the transfer must
//! skip, or (for results compared by rule) the instructions that reduce
//! the result to what is architectural. Cases use the same machinery as
//! the generic ones ([`Case`], windows, the fault pages) and are compared
//! the same way. A case whose first decoded instruction is not the form's
//! [`Code`] is rejected and drawn again, so a form is only counted as
//! tested by cases that run it.
//!
//! Results the host cannot give honestly are reduced by rule (RDTSC,
//! RDTSCP, CPUID, XGETBV: the upper halves of the outputs, which the
//! instructions zero, and every other register and flag) or left to the
//! policy's undefined table and `PVM_ARTIFACTS` (kvm-pvm runs ring 3 on
//! the host's GDT, IDT and CR4 and hands ring-3 #GPs to KVM's instruction
//! emulator; each such condition is named there with its evidence).
//!
//! Not here, and why:
//! * 16-bit near branches (`66` JMP/Jcc/CALL/RET/LOOP/JRCXZ): iced's
//!   decoder, with the Intel rules the interpreter uses, decodes them in
//!   64-bit mode as the 64-bit forms (Intel ignores the prefix; AMD
//!   honours it), so those Codes never run in a 64-bit guest; gen_legacy
//!   runs them in compatibility mode. Likewise UD0 without a ModRM byte
//!   (an AMD-decoder form).
//! * SYSCALL, SYSENTER: the guest has no MSR set-up for a CPL-0 entry and
//!   kvm-pvm's ring-3 SYSCALL does not reach the guest's CPL 0.
//! * VMCALL/VMMCALL: the host hypervisor answers them (hypercalls).
//! * Segment loads that succeed (other than the selector already there,
//!   and LSS of the user stack segment): they would change the FS/GS
//!   bases the later cases' overrides rely on, and kvm-pvm's `set_state`
//!   does not reset the ring-3 data segment registers between batches, so
//!   a changed selector outlives its case. Refused selectors are loaded
//!   instead (#GP with the selector's error code).
//! * MOVBE, CMPXCHG8B/16B: gen_bmi.rs's.

use super::*;
use crate::difftest::case::CaseMode;
use iced_x86::{Mnemonic as M, RepPrefixKind};

/// What a family builds (one per form, from its [`Code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fam {
    /// Jcc/JMP/JRCXZ/LOOP rel: jump over a `NOT r64`.
    BranchRel,
    /// JMP/CALL r/m64 (near indirect).
    BranchIndirect,
    CallRel,
    /// RET, RET imm16.
    Ret,
    /// RETF, IRET (same privilege level) and far JMP/CALL m16:xx.
    Far,
    Str,
    /// INS/OUTS/IN/OUT: #GP(0) at CPL 3 with IOPL 0.
    Io,
    Push,
    Pop,
    Enter,
    Leave,
    Pushf,
    Popf,
    /// No operands, #GP(0) or #UD at CPL 3 (HLT, CLI, RDMSR, ...), or
    /// flag-only (CLD/STD), or no effect (fences, PAUSE, ENDBR).
    Plain,
    /// A privileged instruction with an r/m or memory operand (#GP(0)).
    PrivRm,
    MovCrDr,
    /// SGDT/SIDT/SLDT/STR/SMSW: store descriptor-table state (no UMIP).
    StoreSys,
    /// LAR/LSL/VERR/VERW.
    SelCheck,
    /// INT n, INT3, INT1, UD0/1/2.
    Trap,
    /// RDTSC/RDTSCP/CPUID/XGETBV: compared by rule.
    ByRule,
    /// Hint NOPs with an r/m operand, prefetches, CLFLUSH(OPT).
    HintRm,
    Xlat,
    Moffs,
    /// MOV r/m, Sreg.
    MovFromSreg,
    /// MOV Sreg, r/m.
    MovToSreg,
    /// LSS/LFS/LGS.
    LoadFar,
}

fn family(code: Code) -> Option<Fam> {
    let op = code.op_code();
    let near_branch = code.is_jcc_short_or_near()
        || code.is_jmp_short_or_near()
        || code.is_jcx_short()
        || code.is_loop()
        || code.is_loopcc()
        || code.is_call_near()
        || code.is_jmp_near_indirect()
        || code.is_call_near_indirect()
        || code.mnemonic() == M::Ret;
    if near_branch && op.operand_size() == 16 {
        return None;
    }
    if near_branch && matches!(code.mnemonic(), M::Jcxz) {
        return None;
    }
    let string = op
        .op_kinds()
        .iter()
        .any(|k| matches!(k, K::seg_rSI | K::es_rDI | K::seg_rDI));
    Some(match code.mnemonic() {
        M::Movsd | M::Cmpsd if !string => return None,
        _ if code.is_call_near_indirect() || code.is_jmp_near_indirect() => Fam::BranchIndirect,
        _ if code.is_call_near() => Fam::CallRel,
        _ if code.is_jcc_short_or_near()
            || code.is_jmp_short_or_near()
            || code.is_jcx_short()
            || code.is_loop()
            || code.is_loopcc() =>
        {
            Fam::BranchRel
        }
        M::Ret => Fam::Ret,
        M::Retf | M::Iret | M::Iretd | M::Iretq => Fam::Far,
        _ if code.is_call_far_indirect() || code.is_jmp_far_indirect() => Fam::Far,
        M::Movsb | M::Movsw | M::Movsd | M::Movsq => Fam::Str,
        M::Cmpsb | M::Cmpsw | M::Cmpsd | M::Cmpsq => Fam::Str,
        M::Scasb | M::Scasw | M::Scasd | M::Scasq => Fam::Str,
        M::Lodsb | M::Lodsw | M::Lodsd | M::Lodsq => Fam::Str,
        M::Stosb | M::Stosw | M::Stosd | M::Stosq => Fam::Str,
        M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd | M::In | M::Out => Fam::Io,
        M::Push => Fam::Push,
        M::Pop => Fam::Pop,
        M::Enter => Fam::Enter,
        M::Leave => Fam::Leave,
        M::Pushf | M::Pushfq => Fam::Pushf,
        M::Popf | M::Popfq => Fam::Popf,
        M::Hlt
        | M::Cli
        | M::Sti
        | M::Clts
        | M::Invd
        | M::Wbinvd
        | M::Rdmsr
        | M::Wrmsr
        | M::Swapgs
        | M::Sysretq
        | M::Sysret
        | M::Xsetbv
        | M::Sysexit
        | M::Sysexitq
        | M::Cld
        | M::Std
        | M::Lfence
        | M::Mfence
        | M::Sfence
        | M::Pause
        | M::Endbr32
        | M::Endbr64 => Fam::Plain,
        M::Nop if op.op_count() == 0 => Fam::Plain,
        M::Lgdt | M::Lidt | M::Lldt | M::Ltr | M::Lmsw | M::Invlpg => Fam::PrivRm,
        M::Mov if is_cr_dr(code) => Fam::MovCrDr,
        M::Sgdt | M::Sidt | M::Sldt | M::Str | M::Smsw => Fam::StoreSys,
        M::Lar | M::Lsl | M::Verr | M::Verw => Fam::SelCheck,
        M::Int | M::Int3 | M::Int1 | M::Ud0 | M::Ud1 | M::Ud2 => Fam::Trap,
        M::Rdtsc | M::Rdtscp | M::Cpuid | M::Xgetbv => Fam::ByRule,
        M::Nop
        | M::Reservednop
        | M::Prefetch
        | M::Prefetchw
        | M::Prefetchnta
        | M::Prefetcht0
        | M::Prefetcht1
        | M::Prefetcht2
        | M::Clflush
        | M::Clflushopt => Fam::HintRm,
        M::Xlatb => Fam::Xlat,
        M::Mov if is_moffs(code) => Fam::Moffs,
        M::Mov if op.op_kinds().contains(&K::seg_reg) && op.op0_kind() == K::seg_reg => {
            Fam::MovToSreg
        }
        M::Mov if op.op_kinds().contains(&K::seg_reg) => Fam::MovFromSreg,
        M::Lss | M::Lfs | M::Lgs => Fam::LoadFar,
        _ => return None,
    })
}

fn is_cr_dr(code: Code) -> bool {
    code.op_code()
        .op_kinds()
        .iter()
        .any(|k| matches!(k, K::cr_reg | K::dr_reg))
}

fn is_moffs(code: Code) -> bool {
    code.op_code().op_kinds().contains(&K::mem_offs)
}

/// Is `code` one of this module's forms: a family above knows it, and
/// the generic table does not hold it?
pub(super) fn owns(code: Code) -> bool {
    let op = code.op_code();
    let generic =
        MNEMONICS.contains(&code.mnemonic()) && op.op_kinds().iter().all(|k| supported(*k));
    !generic
        && op.is_instruction()
        && op.mode64()
        && op.encoding() == EncodingKind::Legacy
        && !NOT_IN_64BIT_DECODING.contains(&code)
        && family(code).is_some()
}

/// Do `code`'s cases run more than the instruction under test (a
/// control transfer's skipped `NOT`, the reduction of a result compared
/// by rule)? The instruction under test is always the first. (For the
/// harness's own tests.)
#[cfg(test)]
pub(crate) fn sequence(code: Code) -> bool {
    super::gen_legacy::sequence(code)
        || owns(code)
            && matches!(
                family(code),
                Some(
                    Fam::BranchRel
                        | Fam::BranchIndirect
                        | Fam::CallRel
                        | Fam::Ret
                        | Fam::Far
                        | Fam::ByRule
                )
            )
}

/// Codes iced's 64-bit decoder (Intel options, as the interpreter's)
/// never produces: their bytes decode as another Code.
const NOT_IN_64BIT_DECODING: [Code; 1] = [Code::Ud0];

/// The forms of this module.
pub(super) fn forms() -> Vec<Form> {
    Code::values().filter(|c| owns(*c)).map(Form::of).collect()
}

/// A case under construction.
pub(super) struct Draft {
    pub(super) code_addr: u64,
    /// The mode the case runs in (its code's bitness).
    pub(super) mode: CaseMode,
    /// Instructions, each with the index of the instruction its branch
    /// targets (`items.len()`: the end of the case).
    pub(super) items: Vec<(Instruction, Option<usize>)>,
    pub(super) gpr: [u64; 16],
    pub(super) rflags: u64,
    pub(super) windows: Vec<Window>,
    pub(super) mem: Option<MemTarget>,
    pub(super) note: String,
}

/// Point a near branch at `target` (its operand size decides how).
fn set_target(i: &mut Instruction, target: u64) {
    match i.op0_kind() {
        iced_x86::OpKind::NearBranch16 => i.set_near_branch16(target as u16),
        iced_x86::OpKind::NearBranch32 => i.set_near_branch32(target as u32),
        _ => i.set_near_branch64(target),
    }
}

const RSP: usize = 4;
/// `store`, the first instruction of the CPL-3 runtime: a target a 16-bit
/// offset reaches (far transfers with a 16-bit operand size).
pub(super) const STORE: u64 = guest::UCODE;

impl Draft {
    pub(super) fn new(rng: &mut Rng, alloc: &Alloc) -> Self {
        let mut gpr = [0u64; 16];
        for g in gpr.iter_mut() {
            *g = match rng.below(4) {
                0 | 1 => rng.next_u64(),
                2 => value(rng, 64),
                _ => rng.below(256),
            };
        }
        let fl = super::case_rflags_skewed(rng);
        Draft {
            code_addr: alloc.code_addr(),
            mode: CaseMode::Long64,
            items: Vec::new(),
            gpr,
            rflags: fl,
            windows: Vec::new(),
            mem: None,
            note: String::new(),
        }
    }

    pub(super) fn push(&mut self, i: Instruction) {
        self.items.push((i, None));
    }

    /// A `NOT r64` (not RSP) that a control transfer must skip (`NOT
    /// r32` in compatibility mode).
    pub(super) fn skipped(&mut self, rng: &mut Rng) -> Option<()> {
        let i = match self.mode {
            CaseMode::Long64 => Instruction::with1(Code::Not_rm64, rng.pick(&R64[..4])?),
            CaseMode::Compat32 => Instruction::with1(Code::Not_rm32, rng.pick(&R32[..4])?),
        };
        self.push(i.ok()?);
        Some(())
    }

    /// A fresh data window of `len` random bytes; its address.
    pub(super) fn window(&mut self, rng: &mut Rng, alloc: &mut Alloc, len: u64) -> u64 {
        let addr = alloc.data(len, None);
        let init = (0..len).map(|_| rng.next_u64() as u8).collect();
        self.windows.push(Window { addr, init });
        addr
    }

    /// A stack window, RSP in its middle (8-aligned mostly); RSP.
    pub(super) fn stack(&mut self, rng: &mut Rng, alloc: &mut Alloc) -> u64 {
        let w = self.window(rng, alloc, 512);
        let mut rsp = w + 256;
        if rng.chance(1, 6) {
            rsp += rng.below(8);
        }
        self.gpr[RSP] = rsp;
        rsp
    }

    /// Write `size` bytes of `v` at `addr` in whichever window holds it.
    pub(super) fn poke(&mut self, addr: u64, v: u64, size: usize) {
        let bytes = v.to_le_bytes();
        for w in &mut self.windows {
            put_bytes(w, addr, &bytes[..size.min(8)]);
        }
    }

    /// Addresses of the instructions (and of the end), from their lengths.
    pub(super) fn layout(&self) -> Option<Vec<u64>> {
        let mut enc = Encoder::new(self.mode.bits());
        let mut ip = self.code_addr;
        let mut addrs = Vec::with_capacity(self.items.len() + 1);
        for (i, t) in &self.items {
            let mut i = *i;
            if t.is_some() {
                set_target(&mut i, ip);
            }
            addrs.push(ip);
            ip += enc.encode(&i, ip).ok()? as u64;
        }
        addrs.push(ip);
        Some(addrs)
    }

    /// The case, if it encodes, decodes back to as many instructions and
    /// its first instruction is `code`.
    pub(super) fn finish(self, code: Code, index: u64) -> Option<Case> {
        let addrs = self.layout()?;
        let mut enc = Encoder::new(self.mode.bits());
        let mut bytes = Vec::new();
        for (k, (i, t)) in self.items.iter().enumerate() {
            let mut i = *i;
            if let Some(t) = t {
                set_target(&mut i, *addrs.get(*t)?);
            }
            let at = *addrs.get(k)?;
            let n = enc.encode(&i, at).ok()? as u64;
            if at + n != *addrs.get(k + 1)? {
                return None;
            }
            bytes.extend_from_slice(&enc.take_buffer());
        }
        let insns = super::decode_bits(&bytes, self.code_addr, self.mode.bits());
        if insns.len() != self.items.len()
            || insns.first().map(|i| i.code()) != Some(code)
            || insns.iter().any(|i| i.is_invalid())
        {
            return None;
        }
        Some(Case {
            mode: self.mode,
            index,
            pinned: false,
            code_addr: self.code_addr,
            code: bytes,
            insns,
            gpr: self.gpr,
            rflags: self.rflags,
            windows: self.windows,
            mem: self.mem,
            note: self.note,
            simd: Default::default(),
        })
    }
}

/// The generator's hook: `Some(case or retry)` for this module's forms,
/// `None` for the others.
pub(super) fn hook(
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Option<Case>> {
    owns(form.code).then(|| try_case(rng, form, index, alloc))
}

/// The case for one of this module's forms (`None`: retry with other
/// choices).
pub(super) fn try_case(rng: &mut Rng, form: &Form, index: u64, alloc: &mut Alloc) -> Option<Case> {
    let code = form.code;
    let mut d = Draft::new(rng, alloc);
    match family(code)? {
        Fam::BranchRel => branch_rel(rng, &mut d, code)?,
        Fam::BranchIndirect => branch_indirect(rng, alloc, &mut d, code)?,
        Fam::CallRel => {
            d.stack(rng, alloc);
            d.items
                .push((Instruction::with_branch(code, 0).ok()?, Some(2)));
            d.skipped(rng)?;
            d.note = "call over not".into();
        }
        Fam::Ret => ret(rng, alloc, &mut d, code)?,
        Fam::Far => far(rng, alloc, &mut d, code)?,
        Fam::Str => string(rng, alloc, &mut d, code)?,
        Fam::Io => io(rng, alloc, &mut d, code)?,
        Fam::Push => push(rng, alloc, &mut d, code)?,
        Fam::Pop => pop(rng, alloc, &mut d, code)?,
        Fam::Enter => enter(rng, alloc, &mut d, code)?,
        Fam::Leave => {
            let w = d.window(rng, alloc, 512);
            d.gpr[5] = w + 8 * (8 + rng.below(48));
            if rng.chance(1, 8) {
                d.gpr[5] += rng.below(8);
            }
            d.push(Instruction::with(code));
            d.note = "leave".into();
        }
        Fam::Pushf => {
            d.stack(rng, alloc);
            d.push(Instruction::with(code));
            d.note = "pushf".into();
        }
        Fam::Popf => {
            let rsp = d.stack(rng, alloc);
            // Every bit but TF (a trap on the next instruction would
            // end the case inside the runtime) and RF; IF, IOPL, VIF,
            // VIP, VM: CPL 3 with IOPL 0 may not change them.
            let v = rng.next_u64() & !(rflags::TF | (1 << 16));
            d.poke(rsp, v, 8);
            d.push(Instruction::with(code));
            d.note = "popf at CPL 3, IOPL 0".into();
        }
        Fam::Plain => {
            d.push(Instruction::with(code));
            d.note = "no operands".into();
        }
        Fam::PrivRm => priv_rm(rng, alloc, &mut d, form)?,
        Fam::MovCrDr => mov_cr_dr(rng, &mut d, code)?,
        Fam::StoreSys => store_sys(rng, alloc, &mut d, form)?,
        Fam::SelCheck => sel_check(rng, alloc, &mut d, form)?,
        Fam::Trap => trap(rng, &mut d, form)?,
        Fam::ByRule => by_rule(rng, &mut d, code)?,
        Fam::HintRm => hint_rm(rng, alloc, &mut d, form)?,
        Fam::Xlat => xlat(rng, alloc, &mut d)?,
        Fam::Moffs => moffs(rng, alloc, &mut d, code)?,
        Fam::MovFromSreg => mov_from_sreg(rng, alloc, &mut d, form)?,
        Fam::MovToSreg => mov_to_sreg(rng, alloc, &mut d, form)?,
        Fam::LoadFar => load_far(rng, alloc, &mut d, form)?,
    }
    d.finish(code, index)
}

/// A memory operand at a fresh window of `len` bytes (`size` accessed at
/// offset `off`), in a random addressing form with an optional segment
/// override; the registers it uses are taken from `free`.
fn mem_at(
    rng: &mut Rng,
    d: &mut Draft,
    addr: u64,
    size: u32,
    free: &[usize],
) -> Option<MemoryOperand> {
    let seg = match rng.below(12) {
        0 => Register::FS,
        1 => Register::GS,
        2 => Register::DS,
        3 => Register::ES,
        _ => Register::None,
    };
    let base = match seg {
        Register::FS => guest::FS_BASE,
        Register::GS => guest::GS_BASE,
        _ => 0,
    };
    let (mo, regs) = solve_address(rng, free, addr.wrapping_sub(base), d.code_addr, seg)?;
    for (r, v) in regs {
        set_reg(&mut d.gpr, r, v);
    }
    d.mem = Some(MemTarget {
        addr,
        size: size.max(1),
    });
    Some(mo)
}

/// Registers not in `used` (indices), RSP excluded.
fn free_of(used: &[usize]) -> Vec<usize> {
    (0..16).filter(|i| *i != RSP && !used.contains(i)).collect()
}

/// A window of `len` bytes with an operand of `size` bytes in it
/// (aligned or not); the operand's address.
pub(super) fn operand(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, len: u64, size: u64) -> u64 {
    let w = d.window(rng, alloc, len);
    let room = len.saturating_sub(size) / 2;
    let mut off = len / 4 + rng.below(room.max(1));
    if rng.chance(2, 3) {
        off &= !(size.next_power_of_two() - 1);
    }
    w + off
}

pub(super) fn branch_rel(rng: &mut Rng, d: &mut Draft, code: Code) -> Option<()> {
    d.items
        .push((Instruction::with_branch(code, 0).ok()?, Some(2)));
    d.skipped(rng)?;
    if code.is_jcx_short() || code.is_loop() || code.is_loopcc() {
        const RCX: [u64; 8] = [
            0,
            1,
            2,
            3,
            0x1_0000_0000,
            0x1_0000_0001,
            0xffff_ffff,
            u64::MAX,
        ];
        d.gpr[1] = if rng.chance(3, 4) {
            rng.pick(&RCX)?
        } else {
            rng.next_u64()
        };
    }
    d.note = "branch over not".into();
    Some(())
}

/// JMP/CALL r/m64 to the end of the case (or, now and then, to a
/// non-canonical address: #GP at the branch).
fn branch_indirect(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    if code.is_call_near_indirect() {
        d.stack(rng, alloc);
    }
    let bad = rng
        .chance(1, 12)
        .then(|| 0x8000_0000_0000 + rng.below(0x1000) * 8);
    let target_reg;
    if rng.chance(1, 2) {
        let r = rng.pick(&free_of(&[]))?;
        target_reg = Some(r);
        d.push(Instruction::with1(code, R64[r]).ok()?);
        d.note = "reg".into();
    } else {
        target_reg = None;
        let at = operand(rng, alloc, d, 64, 8);
        let mo = mem_at(rng, d, at, 8, &free_of(&[]))?;
        d.push(Instruction::with1(code, mo).ok()?);
        d.note = "mem".into();
    }
    d.skipped(rng)?;
    let end = *d.layout()?.last()?;
    let target = bad.unwrap_or(end);
    match target_reg {
        Some(r) => d.gpr[r] = target,
        None => {
            let at = d.mem?.addr;
            d.poke(at, target, 8);
        }
    }
    if bad.is_some() {
        d.note.push_str(" non-canonical target");
    }
    Some(())
}

pub(super) fn ret(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let rsp = d.stack(rng, alloc);
    let insn = if code.op_code().op_count() == 1 {
        const IMM: [u32; 6] = [0, 8, 16, 0x100, 0xfff8, 0xffff];
        let imm = if rng.chance(2, 3) {
            rng.pick(&IMM)?
        } else {
            rng.below(0x1_0000) as u32
        };
        Instruction::with1(code, imm).ok()?
    } else {
        Instruction::with(code)
    };
    d.push(insn);
    d.skipped(rng)?;
    let end = *d.layout()?.last()?;
    d.poke(rsp, end, 8);
    d.note = "ret over not".into();
    Some(())
}

/// Same-privilege far transfers: RETF, IRET, far JMP/CALL through memory,
/// to CS 0x33 at the end of the case (16-bit offsets: to `store`), or to
/// an unusable CS (#GP with its selector).
fn far(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let osz = u64::from(code.op_code().operand_size() / 8);
    let rsp = d.stack(rng, alloc);
    let iret = matches!(code.mnemonic(), M::Iret | M::Iretd | M::Iretq);
    // Refused selectors: null, data, DPL 0 (RPL 3), the TSS. Not for
    // IRET: kvm-pvm runs a ring-3 IRET through its own code, which left
    // the case loop broken when CS was refused.
    let cs = if !iret && rng.chance(1, 8) {
        rng.pick(&[0u64, 0x2b, 0x13, 0x10, 0x40])?
    } else {
        u64::from(guest::USER_CS)
    };
    let indirect = code.is_call_far_indirect() || code.is_jmp_far_indirect();
    let mut ptr = 0;
    if indirect {
        let at = operand(rng, alloc, d, 64, osz + 2);
        let mo = mem_at(rng, d, at, (osz + 2) as u32, &free_of(&[]))?;
        d.push(Instruction::with1(code, mo).ok()?);
        ptr = at;
    } else if code.op_code().op_count() == 1 {
        let imm = rng.pick(&[0u32, 8, 0x10, 0xfff0])?;
        d.push(Instruction::with1(code, imm).ok()?);
    } else {
        d.push(Instruction::with(code));
    }
    d.skipped(rng)?;
    let end = *d.layout()?.last()?;
    let target = if osz == 2 { STORE } else { end };
    let size = osz as usize;
    if indirect {
        d.poke(ptr, target, size);
        d.poke(ptr + osz, cs, 2);
    } else {
        d.poke(rsp, target, size);
        d.poke(rsp + osz, cs, size);
        if iret {
            // RFLAGS image (IF, IOPL stay: CPL 3), then RSP, SS.
            let fl = (rng.next_u64() & !(rflags::TF | (1 << 16))) | rflags::FIXED1;
            d.poke(rsp + 2 * osz, fl, size);
            let new_rsp = if osz == 2 {
                rng.below(0x1_0000)
            } else {
                rsp - 64 + rng.below(128)
            };
            d.poke(rsp + 3 * osz, new_rsp, size);
            d.poke(rsp + 4 * osz, u64::from(guest::USER_DS), size);
        }
    }
    d.note = format!("far to {cs:#x}");
    Some(())
}

fn string(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    use Mnemonic as N;
    let m = code.mnemonic();
    let w = u64::from(code.op_code().operand_size() / 8).max(1);
    let w = match m {
        N::Movsb | N::Cmpsb | N::Scasb | N::Lodsb | N::Stosb => 1,
        _ => w,
    };
    let a32 = rng.chance(1, 4);
    let asz = if a32 { 32 } else { 64 };
    let cmp = matches!(m, N::Cmpsb | N::Cmpsw | N::Cmpsd | N::Cmpsq)
        || matches!(m, N::Scasb | N::Scasw | N::Scasd | N::Scasq);
    let rep = match rng.below(3) {
        0 => RepPrefixKind::None,
        1 => RepPrefixKind::Repe,
        _ if cmp => RepPrefixKind::Repne,
        _ => RepPrefixKind::Repe,
    };
    let reads_src = !matches!(
        m,
        N::Scasb | N::Scasw | N::Scasd | N::Scasq | N::Stosb | N::Stosw | N::Stosd | N::Stosq
    );
    let uses_dst = !matches!(m, N::Lodsb | N::Lodsw | N::Lodsd | N::Lodsq);
    let seg = if reads_src {
        match rng.below(10) {
            0 => Register::FS,
            1 => Register::GS,
            2 => Register::ES,
            3 => Register::SS,
            _ => Register::None,
        }
    } else {
        Register::None
    };
    let r = rep;
    let insn = match code {
        Code::Movsb_m8_m8 => Instruction::with_movsb(asz, seg, r),
        Code::Movsw_m16_m16 => Instruction::with_movsw(asz, seg, r),
        Code::Movsd_m32_m32 => Instruction::with_movsd(asz, seg, r),
        Code::Movsq_m64_m64 => Instruction::with_movsq(asz, seg, r),
        Code::Cmpsb_m8_m8 => Instruction::with_cmpsb(asz, seg, r),
        Code::Cmpsw_m16_m16 => Instruction::with_cmpsw(asz, seg, r),
        Code::Cmpsd_m32_m32 => Instruction::with_cmpsd(asz, seg, r),
        Code::Cmpsq_m64_m64 => Instruction::with_cmpsq(asz, seg, r),
        Code::Lodsb_AL_m8 => Instruction::with_lodsb(asz, seg, r),
        Code::Lodsw_AX_m16 => Instruction::with_lodsw(asz, seg, r),
        Code::Lodsd_EAX_m32 => Instruction::with_lodsd(asz, seg, r),
        Code::Lodsq_RAX_m64 => Instruction::with_lodsq(asz, seg, r),
        Code::Scasb_AL_m8 => Instruction::with_scasb(asz, r),
        Code::Scasw_AX_m16 => Instruction::with_scasw(asz, r),
        Code::Scasd_EAX_m32 => Instruction::with_scasd(asz, r),
        Code::Scasq_RAX_m64 => Instruction::with_scasq(asz, r),
        Code::Stosb_m8_AL => Instruction::with_stosb(asz, r),
        Code::Stosw_m16_AX => Instruction::with_stosw(asz, r),
        Code::Stosd_m32_EAX => Instruction::with_stosd(asz, r),
        Code::Stosq_m64_RAX => Instruction::with_stosq(asz, r),
        _ => return None,
    }
    .ok()?;
    d.push(insn);
    // Count: edges mostly (0, 1, a few), ECX with garbage above it.
    // (Under 0x67 the count is ECX: garbage above it, 0x1_0000_0000
    // is a count of 0.)
    const COUNTS: [u64; 8] = [0, 1, 2, 3, 4, 5, 7, 8];
    let mut count = rng.pick(&COUNTS)?;
    if a32 && rng.chance(1, 2) {
        count |= rng.next_u64() << 32;
    }
    d.gpr[1] = count;
    let down = rng.chance(1, 3);
    d.rflags = (d.rflags & !rflags::DF) | if down { rflags::DF } else { 0 };
    let eff = if a32 { count & 0xffff_ffff } else { count };
    let n = if rep == RepPrefixKind::None {
        1
    } else {
        eff.min(8)
    };
    // Few distinct values, so REPE/REPNE stop at varying points.
    let small = cmp && rng.chance(2, 3);
    let fill = |rng: &mut Rng, d: &mut Draft, alloc: &mut Alloc| -> u64 {
        let len = 160;
        let addr = alloc.data(len, None);
        let init = (0..len)
            .map(|_| {
                if small {
                    rng.below(2) as u8
                } else {
                    rng.next_u64() as u8
                }
            })
            .collect();
        d.windows.push(Window { addr, init });
        let mut p = addr + 80;
        if rng.chance(1, 4) {
            p += rng.below(w);
        }
        p
    };
    // A pointer that reaches a faulting page after k elements.
    let faulting = |rng: &mut Rng, d: &mut Draft, write: bool| -> Option<u64> {
        let page = if write && rng.chance(1, 2) {
            guest::PAGE_READ_ONLY
        } else {
            guest::PAGE_NOT_PRESENT
        };
        let k = rng.below(n.max(1));
        // Elements 0..k lie before the page, element k reaches into it.
        let p = if down {
            page + 0x1000 - w + rng.below(w) + k * w
        } else {
            page - k * w - rng.below(w)
        };
        let start = p.saturating_sub(80).max(guest::SPECIAL_BASE);
        let end = (p + 80).min(guest::SPECIAL_END);
        d.windows.push(Window {
            addr: start,
            init: (start..end).map(guest::special_byte).collect(),
        });
        d.note.push_str(" into a faulting page");
        Some(p)
    };
    let fault = rng.chance(1, 8);
    let fault_src = fault && reads_src && (!uses_dst || rng.chance(1, 2));
    let (mut src, mut dst) = (0, 0);
    if reads_src {
        src = if fault_src {
            faulting(rng, d, false)?
        } else {
            fill(rng, d, alloc)
        };
    }
    if uses_dst {
        let write = matches!(m, N::Movsb | N::Movsw | N::Movsd | N::Movsq)
            || matches!(m, N::Stosb | N::Stosw | N::Stosd | N::Stosq);
        dst = if fault && !fault_src {
            faulting(rng, d, write)?
        } else {
            fill(rng, d, alloc)
        };
    }
    let garbage = |rng: &mut Rng| if a32 { rng.next_u64() << 32 } else { 0 };
    if reads_src {
        let base = match seg {
            Register::FS => guest::FS_BASE,
            Register::GS => guest::GS_BASE,
            _ => 0,
        };
        d.gpr[6] = src.wrapping_sub(base) | garbage(rng);
    }
    if uses_dst {
        d.gpr[7] = dst | garbage(rng);
    }
    if small && rng.chance(1, 2) {
        // SCAS: a value the 0/1 bytes often match.
        d.gpr[0] = 0;
    }
    d.note = format!(
        "{}{}{} count {:#x}{}",
        match rep {
            RepPrefixKind::None => "",
            RepPrefixKind::Repe => "rep ",
            _ => "repne ",
        },
        if a32 { "a32 " } else { "" },
        if down { "DF=1" } else { "DF=0" },
        count,
        d.note
    );
    Some(())
}

fn io(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let op = code.op_code();
    let insn = match code.mnemonic() {
        M::In | M::Out if op.op_kinds().contains(&K::imm8) => {
            let port = rng.pick(&[0x20u32, 0x40, 0x60, 0x80, 0xf4, 0xff])?;
            match op.op0_kind() {
                K::imm8 => Instruction::with2(code, port, reg_of(op.op1_kind())?).ok()?,
                k => Instruction::with2(code, reg_of(k)?, port).ok()?,
            }
        }
        M::In | M::Out => match op.op0_kind() {
            K::dx => Instruction::with2(code, Register::DX, reg_of(op.op1_kind())?).ok()?,
            k => Instruction::with2(code, reg_of(k)?, Register::DX).ok()?,
        },
        _ => {
            let rep = if rng.chance(1, 2) {
                RepPrefixKind::Repe
            } else {
                RepPrefixKind::None
            };
            let buf = d.window(rng, alloc, 64) + 16;
            d.gpr[6] = buf;
            d.gpr[7] = buf;
            d.gpr[1] = rng.pick(&[0u64, 1, 2, 5])?;
            match code {
                Code::Insb_m8_DX => Instruction::with_insb(64, rep),
                Code::Insw_m16_DX => Instruction::with_insw(64, rep),
                Code::Insd_m32_DX => Instruction::with_insd(64, rep),
                Code::Outsb_DX_m8 => Instruction::with_outsb(64, Register::None, rep),
                Code::Outsw_DX_m16 => Instruction::with_outsw(64, Register::None, rep),
                Code::Outsd_DX_m32 => Instruction::with_outsd(64, Register::None, rep),
                _ => return None,
            }
            .ok()?
        }
    };
    d.push(insn);
    d.note = "port I/O at CPL 3, IOPL 0".into();
    Some(())
}

fn reg_of(k: K) -> Option<Register> {
    Some(match k {
        K::al => Register::AL,
        K::ax => Register::AX,
        K::eax => Register::EAX,
        K::dx => Register::DX,
        _ => return None,
    })
}

fn push(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: Code) -> Option<()> {
    d.stack(rng, alloc);
    let op = form.op_code();
    let insn = match op.op_kinds().first().copied() {
        None => Instruction::with(form),
        Some(K::fs) => Instruction::with1(form, Register::FS).ok()?,
        Some(K::gs) => Instruction::with1(form, Register::GS).ok()?,
        Some(K::r16_opcode | K::r64_opcode) => {
            let t: &[Register] = if op.op0_kind() == K::r16_opcode {
                &R16
            } else {
                &R64
            };
            Instruction::with1(form, rng.pick(t)?).ok()?
        }
        Some(K::imm8sex16 | K::imm8sex64) => {
            Instruction::with1(form, i32::from(value(rng, 8) as u8 as i8)).ok()?
        }
        Some(K::imm16) => Instruction::with1(form, value(rng, 16) as u32).ok()?,
        Some(K::imm32sex64) => Instruction::with1(form, value(rng, 32) as u32 as i32).ok()?,
        Some(K::r16_or_mem | K::r64_or_mem) => {
            let bits = if op.op0_kind() == K::r16_or_mem {
                16
            } else {
                64
            };
            if rng.chance(1, 2) {
                let t: &[Register] = if bits == 16 { &R16 } else { &R64 };
                Instruction::with1(form, rng.pick(t)?).ok()?
            } else {
                let at = operand(rng, alloc, d, 64, bits / 8);
                let mo = mem_at(rng, d, at, (bits / 8) as u32, &free_of(&[]))?;
                Instruction::with1(form, mo).ok()?
            }
        }
        _ => return None,
    };
    d.push(insn);
    d.note = "push".into();
    Some(())
}

fn pop(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: Code) -> Option<()> {
    let rsp = d.stack(rng, alloc);
    let op = form.op_code();
    let insn = match op.op_kinds().first().copied() {
        Some(K::fs | K::gs) => {
            // POP FS/GS: a selector the CPU refuses (#GP(selector)), so
            // that the FS/GS bases later cases rely on stay (and the
            // selector: kvm-pvm's set_state does not reset it).
            let sel = rng.pick(&[0x18u64, 0x10, 0x13, 0x40, 0x4b, 0x1b])?;
            d.poke(rsp, sel | (rng.next_u64() << 16), 8);
            d.note = format!("pop sreg {sel:#x}");
            let r = if op.op0_kind() == K::fs {
                Register::FS
            } else {
                Register::GS
            };
            d.push(Instruction::with1(form, r).ok()?);
            return Some(());
        }
        Some(K::r16_opcode | K::r64_opcode) => {
            let t: &[Register] = if op.op0_kind() == K::r16_opcode {
                &R16
            } else {
                &R64
            };
            Instruction::with1(form, rng.pick(t)?).ok()?
        }
        Some(K::r16_or_mem | K::r64_or_mem) => {
            let bits = if op.op0_kind() == K::r16_or_mem {
                16
            } else {
                64
            };
            if rng.chance(1, 2) {
                let t: &[Register] = if bits == 16 { &R16 } else { &R64 };
                Instruction::with1(form, rng.pick(t)?).ok()?
            } else {
                let at = operand(rng, alloc, d, 64, bits / 8);
                let mo = mem_at(rng, d, at, (bits / 8) as u32, &free_of(&[]))?;
                Instruction::with1(form, mo).ok()?
            }
        }
        _ => return None,
    };
    d.push(insn);
    d.note = "pop".into();
    Some(())
}

fn enter(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let w = d.window(rng, alloc, 1024);
    d.gpr[RSP] = w + 512 + if rng.chance(1, 6) { rng.below(8) } else { 0 };
    d.gpr[5] = w + 768 + 8 * rng.below(24);
    let level = match rng.below(6) {
        0 | 1 => 0,
        2 => 1,
        3 => 2 + rng.below(4),
        4 => rng.below(32),
        _ => 32 + rng.below(224),
    };
    let size = match rng.below(4) {
        0 => 0,
        1 => 8 * rng.below(8),
        2 => rng.below(0x1_0000),
        _ => rng.below(64),
    };
    d.push(Instruction::with2(code, size as u32, level as u32).ok()?);
    d.note = format!("enter {size:#x}, {level}");
    Some(())
}

/// The r/m operand of `form` (operand 0): a register of its width or a
/// fresh memory window of `size` bytes; `None` if it has none.
fn rm(
    rng: &mut Rng,
    alloc: &mut Alloc,
    d: &mut Draft,
    form: &Form,
    size: u32,
    reg_ok: bool,
) -> Option<Op> {
    let k = *form.kinds.first()?;
    let reg_form = reg_ok
        && matches!(
            k,
            K::r16_or_mem | K::r32_or_mem | K::r64_or_mem | K::r8_or_mem
        )
        && rng.chance(1, 2);
    if reg_form {
        let t: &[Register] = match kind_bits(k) {
            8 => &R8,
            16 => &R16,
            32 => &R32,
            _ => &R64,
        };
        return Some(Op::Reg(rng.pick(t)?));
    }
    d.window(rng, alloc, 64 + 2 * u64::from(size));
    Some(Op::Mem)
}

/// An instruction of `form` with operand 0 `op0` (`Op::Mem`: at the
/// draft's last window, `size` bytes) and operand 1 `op1`.
fn with_ops(
    rng: &mut Rng,
    d: &mut Draft,
    code: Code,
    ops: &[Op],
    size: u32,
    used: &[usize],
) -> Option<Instruction> {
    let mut mo = MemoryOperand::with_base_displ(Register::None, 0);
    if ops.contains(&Op::Mem) {
        let w = d.windows.last()?;
        let len = w.init.len() as u64;
        let mut at = w.addr + len / 4 + rng.below(len / 2);
        if rng.chance(2, 3) {
            at &= !(u64::from(size.max(1)).next_power_of_two() - 1);
        }
        let mut used = used.to_vec();
        for op in ops {
            if let Op::Reg(r) = op {
                if let Some((i, _)) = reg_bits(*r) {
                    used.push(i);
                }
            }
        }
        mo = mem_at(rng, d, at, size, &free_of(&used))?;
    }
    build(code, ops, mo)
}

fn priv_rm(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    let op = rm(rng, alloc, d, form, 10, true)?;
    let insn = with_ops(rng, d, form.code, &[op], 10, &[])?;
    d.push(insn);
    d.note = "privileged at CPL 3".into();
    Some(())
}

fn mov_cr_dr(rng: &mut Rng, d: &mut Draft, code: Code) -> Option<()> {
    use Register as R;
    let op = code.op_code();
    let special = if op.op_kinds().contains(&K::cr_reg) {
        rng.pick(&[
            R::CR0,
            R::CR2,
            R::CR3,
            R::CR4,
            R::CR8,
            R::CR0,
            R::CR1,
            R::CR5,
        ])?
    } else {
        rng.pick(&[R::DR0, R::DR1, R::DR3, R::DR6, R::DR7, R::DR4, R::DR5])?
    };
    let gpr = rng.pick(&R64)?;
    let insn = if op.op0_kind() == K::r64_rm {
        Instruction::with2(code, gpr, special).ok()?
    } else {
        Instruction::with2(code, special, gpr).ok()?
    };
    d.push(insn);
    d.note = format!("{special:?} at CPL 3");
    Some(())
}

fn store_sys(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    let size = if matches!(form.code.mnemonic(), M::Sgdt | M::Sidt) {
        10
    } else {
        2
    };
    let op = rm(rng, alloc, d, form, size, true)?;
    let insn = with_ops(rng, d, form.code, &[op], size, &[])?;
    d.push(insn);
    d.note = "store system register at CPL 3 (UMIP off)".into();
    Some(())
}

/// Selectors for LAR/LSL/VERR/VERW: null, the guest's GDT entries (which
/// match the Linux host's for every entry a CPL-3 check can accept), LDT
/// selectors (no LDT) and the TSS halves.
const SELECTORS: [u64; 16] = [
    0, 3, 0x08, 0x10, 0x13, 0x18, 0x1b, 0x20, 0x23, 0x28, 0x2b, 0x30, 0x33, 0x40, 0x4b, 0x0c,
];

fn sel_check(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    let sel = rng.pick(&SELECTORS)?
        | if rng.chance(1, 4) {
            rng.next_u64() << 16
        } else {
            0
        };
    let two = form.kinds.len() == 2;
    let mut ops = Vec::new();
    let dst = if two {
        let t: &[Register] = match kind_bits(form.kinds[0]) {
            16 => &R16,
            32 => &R32,
            _ => &R64,
        };
        let r = rng.pick(t)?;
        ops.push(Op::Reg(r));
        reg_bits(r).map(|(i, _)| i)
    } else {
        None
    };
    let src_kind = *form.kinds.last()?;
    let used: Vec<usize> = dst.into_iter().collect();
    if matches!(src_kind, K::r16_or_mem | K::r32_or_mem | K::r64_or_mem) && rng.chance(1, 2) {
        let at = operand(rng, alloc, d, 32, 2);
        let _ = at;
        ops.push(Op::Mem);
        let insn = with_ops(rng, d, form.code, &ops, 2, &used)?;
        let at = d.mem?.addr;
        d.poke(at, sel, 2);
        d.push(insn);
    } else {
        let t: &[Register] = match kind_bits(src_kind) {
            16 => &R16,
            32 => &R32,
            _ => &R64,
        };
        let r = rng.pick(t)?;
        ops.push(Op::Reg(r));
        let insn = with_ops(rng, d, form.code, &ops, 2, &used)?;
        set_reg(&mut d.gpr, r, sel);
        d.push(insn);
    }
    d.note = format!("selector {:#x}", sel & 0xffff);
    Some(())
}

fn trap(rng: &mut Rng, d: &mut Draft, form: &Form) -> Option<()> {
    let code = form.code;
    let insn = match code.mnemonic() {
        M::Int => {
            let n = match rng.below(4) {
                0 => rng.below(32),
                1 => rng.pick(&[3u64, 4, 0x80, 0x20, 0xff])?,
                _ => rng.below(256),
            };
            d.note = format!("int {n:#x} (DPL-0 gate or beyond the IDT)");
            Instruction::with1(code, n as u32).ok()?
        }
        M::Ud0 | M::Ud1 if !form.kinds.is_empty() => {
            let t: &[Register] = match kind_bits(form.kinds[0]) {
                16 => &R16,
                32 => &R32,
                _ => &R64,
            };
            let a = rng.pick(t)?;
            let b = rng.pick(t)?;
            Instruction::with2(code, a, b).ok()?
        }
        _ => Instruction::with(code),
    };
    if d.note.is_empty() {
        d.note = "trap".into();
    }
    d.push(insn);
    Some(())
}

/// Instructions whose results are not the same on two machines (the time
/// stamp counter, the CPUID leaves and XCR0 a host hypervisor chooses):
/// the case keeps what is architectural about them. The instruction is
/// followed by code that folds the upper halves of RAX/RCX/RDX/RBX (which
/// these instructions zero) into R8 and then clears the low halves (MOV,
/// flags untouched); the flags, R8 and every other register are compared.
fn by_rule(rng: &mut Rng, d: &mut Draft, code: Code) -> Option<()> {
    use Register as R;
    match code {
        Code::Cpuid => {
            d.gpr[0] = rng.pick(&[0u64, 1, 7, 0xd, 0x8000_0000, 0x8000_0001, 0x4000_0000])?
                | (rng.next_u64() << 32);
            d.gpr[1] = rng.below(3) | (rng.next_u64() << 32);
        }
        Code::Xgetbv => d.gpr[1] = rng.below(2),
        _ => {}
    }
    d.push(Instruction::with(code));
    let outs: &[R] = match code {
        Code::Cpuid => &[R::RAX, R::RBX, R::RCX, R::RDX],
        Code::Rdtscp => &[R::RAX, R::RCX, R::RDX],
        _ => &[R::RAX, R::RDX],
    };
    // r8 = rax >> 32 | rdx >> 32 | ... : zero.
    d.push(Instruction::with2(Code::Mov_r64_rm64, R::R8, outs[0]).ok()?);
    d.push(Instruction::with2(Code::Shr_rm64_imm8, R::R8, 32u32).ok()?);
    for &r in &outs[1..] {
        d.push(Instruction::with2(Code::Mov_r64_rm64, R::R9, r).ok()?);
        d.push(Instruction::with2(Code::Shr_rm64_imm8, R::R9, 32u32).ok()?);
        d.push(Instruction::with2(Code::Or_r64_rm64, R::R8, R::R9).ok()?);
    }
    for &r in outs {
        let r32 = match r {
            R::RAX => R::EAX,
            R::RBX => R::EBX,
            R::RCX => R::ECX,
            _ => R::EDX,
        };
        d.push(Instruction::with2(Code::Mov_r32_imm32, r32, 0u32).ok()?);
    }
    d.push(Instruction::with2(Code::Mov_r32_imm32, R::R9D, 0u32).ok()?);
    d.note = "by rule: upper halves of the results zero".into();
    Some(())
}

fn hint_rm(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    let mut ops = Vec::new();
    let first = rm(rng, alloc, d, form, 1, true)?;
    ops.push(first);
    if let Some(k) = form.kinds.get(1) {
        let t: &[Register] = match kind_bits(*k) {
            16 => &R16,
            32 => &R32,
            _ => &R64,
        };
        ops.push(Op::Reg(rng.pick(t)?));
    }
    if first == Op::Mem && !d.windows.is_empty() {
        let insn = with_ops(rng, d, form.code, &ops, 1, &[])?;
        d.push(insn);
    } else {
        d.push(build(
            form.code,
            &ops,
            MemoryOperand::with_base_displ(Register::None, 0),
        )?);
    }
    d.note = "hint".into();
    Some(())
}

fn xlat(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft) -> Option<()> {
    let w = d.window(rng, alloc, 512);
    let a32 = rng.chance(1, 4);
    let base = w + rng.below(256);
    d.gpr[3] = base | if a32 { rng.next_u64() << 32 } else { 0 };
    let b = if a32 { Register::EBX } else { Register::RBX };
    let seg = rng.pick(&[Register::None, Register::None, Register::DS, Register::ES])?;
    let mo = MemoryOperand::new(b, Register::AL, 1, 0, 0, false, seg);
    d.push(Instruction::with1(Code::Xlat_m8, mo).ok()?);
    d.note = "xlat".into();
    Some(())
}

fn moffs(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let op = code.op_code();
    let (reg, bits) = match op.op_kinds().iter().find(|k| **k != K::mem_offs)? {
        K::al => (Register::AL, 8),
        K::ax => (Register::AX, 16),
        K::eax => (Register::EAX, 32),
        _ => (Register::RAX, 64),
    };
    let at = operand(rng, alloc, d, 64, bits / 8);
    let seg = rng.pick(&[Register::None, Register::None, Register::FS, Register::GS])?;
    let base = match seg {
        Register::FS => guest::FS_BASE,
        Register::GS => guest::GS_BASE,
        _ => 0,
    };
    let mo = MemoryOperand::new(
        Register::None,
        Register::None,
        1,
        at.wrapping_sub(base) as i64,
        8,
        false,
        seg,
    );
    let insn = if op.op0_kind() == K::mem_offs {
        Instruction::with2(code, mo, reg).ok()?
    } else {
        Instruction::with2(code, reg, mo).ok()?
    };
    d.mem = Some(MemTarget {
        addr: at,
        size: (bits / 8) as u32,
    });
    d.push(insn);
    d.note = "moffs".into();
    Some(())
}

const SREGS: [Register; 6] = [
    Register::ES,
    Register::CS,
    Register::SS,
    Register::DS,
    Register::FS,
    Register::GS,
];

fn mov_from_sreg(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    let s = rng.pick(&SREGS)?;
    let dst = rm(rng, alloc, d, form, 2, true)?;
    let insn = with_ops(rng, d, form.code, &[dst, Op::Reg(s)], 2, &[])?;
    d.push(insn);
    d.note = format!("mov r/m, {s:?}");
    Some(())
}

fn mov_to_sreg(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    use Register as R;
    // Only loads that leave the segment registers as they were: the
    // selector already there, or one the CPU refuses (a readable code
    // segment such as 0x33 is accepted into DS-GS; no LDT selectors: the
    // host's LDT, which kvm-pvm's ring 3 sees, has usable entries). A changed selector
    // would outlive the case: kvm-pvm's set_state does not reset the
    // ring-3 data segment registers between batches.
    let (s, sel) = match rng.below(4) {
        0 | 1 => (
            rng.pick(&[R::DS, R::ES])?,
            rng.pick(&[0u64, 0x10, 0x18, 0x1b, 0x4b])?,
        ),
        2 => (R::SS, rng.pick(&[0x2bu64, 0, 3, 0x28, 0x33, 0x1b])?),
        _ => (
            rng.pick(&[R::FS, R::GS])?,
            rng.pick(&[0x10u64, 0x18, 0x4b, 0x1b])?,
        ),
    };
    let src = rm(rng, alloc, d, &form_second(form)?, 2, true)?;
    let insn = with_ops(rng, d, form.code, &[Op::Reg(s), src], 2, &[])?;
    match src {
        Op::Reg(r) => set_reg(&mut d.gpr, r, sel | (rng.next_u64() << 16)),
        _ => {
            let at = d.mem?.addr;
            d.poke(at, sel, 2);
        }
    }
    d.push(insn);
    d.note = format!("mov {s:?}, {sel:#x}");
    Some(())
}

/// `form` with its operands swapped (to draw the source of MOV Sreg, r/m
/// with [`rm`]).
fn form_second(form: &Form) -> Option<Form> {
    Some(Form {
        code: form.code,
        kinds: vec![*form.kinds.get(1)?],
        lockable: false,
    })
}

fn load_far(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    let bits = kind_bits(*form.kinds.first()?);
    let t: &[Register] = match bits {
        16 => &R16,
        32 => &R32,
        _ => &R64,
    };
    let r = rng.pick(t)?;
    let osz = u64::from(bits / 8);
    operand(rng, alloc, d, 64, osz + 2);
    let used: Vec<usize> = reg_bits(r).map(|(i, _)| i).into_iter().collect();
    let insn = with_ops(
        rng,
        d,
        form.code,
        &[Op::Reg(r), Op::Mem],
        (osz + 2) as u32,
        &used,
    )?;
    // LSS: the user data segment (or a refused selector); LFS/LGS: only
    // refused ones (code, the TSS's upper half), which leave FS/GS and
    // their bases as later cases need them. (With the DPL-0 data segment
    // 0x18|3, kvm-pvm's oracle once completed an LFS r64 the CPU refuses.)
    let sel = if form.code.mnemonic() == M::Lss && rng.chance(2, 3) {
        u64::from(guest::USER_DS)
    } else {
        rng.pick(&[0x10u64, 0x13, 0x4b])?
    };
    let at = d.mem?.addr;
    d.poke(at + osz, sel, 2);
    if osz == 8 {
        // AMD CPUs ignore REX.W here (m16:32: the selector at +4); the
        // same selector there keeps the segment loads alike on both
        // vendors (see policy::KNOWN for the offsets).
        d.poke(at + 4, sel, 2);
    }
    d.push(insn);
    d.note = format!("{:?} selector {sel:#x}", form.code.mnemonic());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::super::{forms as all_forms, Generator};
    use super::{forms, owns};
    use crate::difftest::batch::Alloc;
    use std::collections::BTreeSet;

    /// Every form of this module builds cases that run it (the first
    /// instruction decodes to the form's Code), in any seed's first rounds.
    #[test]
    fn every_form_builds_cases_of_its_code() {
        let mine: BTreeSet<_> = forms().iter().map(|f| f.code).collect();
        assert!(mine.len() >= 290, "only {} forms", mine.len());
        for seed in [1, 2] {
            let mut g = Generator::new(seed);
            let mut alloc = Alloc::default();
            let mut seen = BTreeSet::new();
            for _ in 0..g.forms().len() * 3 {
                let c = match g.next_case(&mut alloc) {
                    Some(c) => c,
                    None => {
                        alloc = Alloc::default();
                        g.next_case(&mut alloc).expect("room")
                    }
                };
                let code = c.insns[0].code();
                if owns(code) {
                    seen.insert(code);
                }
            }
            assert!(g.failures().is_empty(), "{:?}", g.failures());
            let missing: Vec<_> = mine.difference(&seen).collect();
            assert!(missing.is_empty(), "never generated: {missing:?}");
        }
    }

    /// No Code is both a generic form and one of this module's.
    #[test]
    fn forms_are_not_duplicated() {
        let all = all_forms();
        let distinct: BTreeSet<_> = all.iter().map(|f| f.code).collect();
        assert_eq!(distinct.len(), all.len());
    }
}
