//! Cases for the Codes that do not exist in 64-bit mode, run in
//! compatibility mode (CS 0x23, a 32-bit code segment, CPL 3; see
//! guest.rs, "Compatibility-mode cases"), and for a few 64-bit-mode
//! forms the other generators leave (FXSAVE/FXRSTOR, WAIT).
//!
//! Cases are built on gen_more's [`Draft`] in `CaseMode::Compat32`: the
//! instruction under test first, then (for control transfers and POP SS,
//! whose interrupt shadow covers it) a `NOT r32`. Operands use the eight
//! legacy registers and 32-bit addressing (base, index*scale,
//! displacement, optional DS/ES/SS override; the flat segments make the
//! linear address the effective address). Memory operands are aligned,
//! misaligned, page-crossing, or aimed at the fault pages and at unmapped
//! memory. Near branches with a 16-bit operand size (0x66) truncate IP to
//! 16 bits: their code goes to the low code zone (below 64 KiB), where
//! the truncated target is the end of the case.
//!
//! # The oracle for compatibility mode on kvm-pvm
//!
//! kvm-pvm does *not* run compatibility-mode code on the CPU (measured on
//! the development host, nested kvm-pvm on AMD EPYC): the host's GDT
//! entry 4 is not a usable 32-bit code segment for the guest's ring 3
//! (LAR of 0x23 fails there, see `policy::PVM_ARTIFACTS`), so the far
//! jump to 0x23 faults and KVM's instruction emulator executes the case
//! until the far jump back to 64-bit mode. The evidence: DAA, AAA, AAS,
//! BOUND and ARPL raise #UD (the emulator does not implement them), AAM
//! and AAD set SF/ZF/PF from a 32-bit OR of EAX, and a case costs ~50 µs
//! on the oracle instead of ~0.2 µs. So on this host these cases check
//! ringside against KVM's emulator, an independent implementation but
//! not the CPU; on a VT-x/AMD-V host the same cases run on the CPU. The
//! cases avoid what that emulator is known to get wrong (each noted where
//! it is avoided): random upper halves of the legacy registers (it forms
//! addresses and ESP from the full 64-bit registers), segment loads other
//! than of the selector already there (its copy of DS/ES is not the
//! native one), POPFD of NT, and writes crossing into a fault page (it
//! writes the part before the boundary). Its #UD for instructions or
//! forms it cannot run, and its AAM/AAD flags, are `PVM_ARTIFACTS`
//! entries (oracle unavailable). [`ORACLE_CANNOT_RUN`] lists the Codes
//! that therefore never pass here; they are not among the forms.
//!
//! Not covered, and why:
//! * `Jrcxz_rel8_16`, `Loop*_rel8_16_RCX` (0x66 near branches in 64-bit
//!   mode): ringside models an Intel CPU (CPUID "GenuineIntel"), which
//!   ignores 0x66 there, so its decoder produces the 64-bit forms and
//!   these Codes never run; the AMD host honours the prefix and
//!   truncates RIP. A vendor difference, not a case.
//! * `Ud0` without a ModRM byte: the AMD decoding of 0F FF; the Intel
//!   decoder reads a ModRM byte (`Ud0_r32_rm32`, tested elsewhere).
//! * SYSENTER: at CPL 3 in 64-bit mode the AMD host raises #UD (AMD has
//!   no SYSENTER in long mode), ringside #GP(0) (Intel, SYSENTER_CS = 0):
//!   a vendor difference; in compatibility mode the oracle is the
//!   emulator. SYSCALL: the guest has no SYSCALL MSRs, ringside would
//!   enter CPL 0 at LSTAR = 0 (the harness cannot survive that), and
//!   kvm-pvm's ring-3 SYSCALL does not reach the guest's CPL 0.
//!   VMCALL/VMMCALL at CPL 3: the host hypervisor answers them (measured:
//!   VMMCALL is a hypercall, VMCALL #GP(0); ringside: #UD, no VMX/SVM).
//! * POP FS/GS that succeed: a loaded FS/GS would lose the bases the
//!   64-bit cases' overrides rely on; refused selectors only (as
//!   gen_more does for POP FS/GS in 64-bit mode).
//! * 16-bit addressing (0x67 in compatibility mode): effective addresses
//!   below 64 KiB would reach the guest's tables and runtime.
//! * FXSAVE/FXRSTOR faults: misaligned (the CPU's #GP goes to the
//!   emulator, which performs the access), on a fault page (the AMD host
//!   reports the image's last byte in CR2, ringside the first faulting
//!   byte), FXRSTOR of reserved MXCSR bits (#GP goes to the emulator,
//!   #UD).

use super::gen_more::{self, Draft};
use super::*;
use crate::difftest::case::{x87img, CaseMode, X87_IMAGE, X87_INIT};

/// What a family builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fam {
    /// Jcc/JMP/LOOP/JCXZ rel: over a `NOT r32`.
    BranchRel,
    /// CALL rel16/rel32.
    CallRel,
    /// CALL/JMP r/m16, r/m32.
    BranchIndirect,
    /// RET, RET imm16 (16- and 32-bit).
    Ret,
    /// PUSH ES/CS/SS/DS/FS/GS.
    PushSreg,
    /// POP ES/SS/DS/FS/GS.
    PopSreg,
    /// PUSH r32 / r/m32 / imm, PUSHA(D).
    Push,
    /// POP r32 / r/m32, POPA(D).
    Pop,
    Pushf,
    Popf,
    Enter,
    Leave,
    /// DAA/DAS/AAA/AAS/AAM/AAD.
    Bcd,
    /// INC/DEC r16/r32 (0x40-0x4f), the 0x82 group.
    Alu,
    Arpl,
    Bound,
    /// LES/LDS.
    LoadFar,
    /// INTO.
    Plain,
    /// WAIT/FWAIT (64-bit mode): a no-op, or #MF with an unmasked x87
    /// exception pending.
    Wait,
    /// SGDT/SIDT m16:32 (and the 0x66 forms).
    StoreTable,
    /// LGDT/LIDT m16:32: #GP(0) at CPL 3.
    LoadTable,
    /// MOV r32, CRn/DRn and back: #GP(0) at CPL 3.
    MovCrDr,
    /// CALL/JMP FAR ptr16:16 / ptr16:32.
    FarDirect,
    /// FXSAVE/FXRSTOR (64-bit mode).
    Fx,
}

/// A near branch with a 16-bit operand size (IP truncated to 16 bits).
fn near16(code: Code) -> bool {
    let branch = code.is_jcc_short_or_near()
        || code.is_jmp_short_or_near()
        || code.is_jcx_short()
        || code.is_loop()
        || code.is_loopcc()
        || code.is_call_near()
        || code.is_call_near_indirect()
        || code.is_jmp_near_indirect()
        || code.mnemonic() == iced_x86::Mnemonic::Ret;
    branch && code.op_code().operand_size() == 16
}

fn family(code: Code) -> Option<Fam> {
    use Code as C;
    Some(match code {
        C::Fxsave_m512byte | C::Fxsave64_m512byte | C::Fxrstor_m512byte | C::Fxrstor64_m512byte => {
            Fam::Fx
        }
        C::Jrcxz_rel8_16 | C::Loop_rel8_16_RCX | C::Loope_rel8_16_RCX | C::Loopne_rel8_16_RCX => {
            return None
        }
        C::Wait => Fam::Wait,
        // 16-bit near branches exist in 64-bit mode too (AMD honours
        // 0x66 there, Intel ignores it): in compatibility mode both
        // agree, so that is where they run.
        _ if code.op_code().mode64() && !near16(code) => return None,
        _ if code.is_call_near() => Fam::CallRel,
        _ if code.is_call_near_indirect() || code.is_jmp_near_indirect() => Fam::BranchIndirect,
        _ if code.is_jcc_short_or_near()
            || code.is_jmp_short_or_near()
            || code.is_jcx_short()
            || code.is_loop()
            || code.is_loopcc() =>
        {
            Fam::BranchRel
        }
        _ if code.is_call_far() || code.is_jmp_far() => Fam::FarDirect,
        C::Retnw | C::Retnw_imm16 | C::Retnd | C::Retnd_imm16 => Fam::Ret,
        C::Pushw_ES
        | C::Pushd_ES
        | C::Pushw_CS
        | C::Pushd_CS
        | C::Pushw_SS
        | C::Pushd_SS
        | C::Pushw_DS
        | C::Pushd_DS
        | C::Pushd_FS
        | C::Pushd_GS => Fam::PushSreg,
        C::Popw_ES
        | C::Popd_ES
        | C::Popw_SS
        | C::Popd_SS
        | C::Popw_DS
        | C::Popd_DS
        | C::Popd_FS
        | C::Popd_GS => Fam::PopSreg,
        C::Push_r32 | C::Push_rm32 | C::Pushd_imm8 | C::Pushd_imm32 | C::Pushaw | C::Pushad => {
            Fam::Push
        }
        C::Pop_r32 | C::Pop_rm32 | C::Popaw | C::Popad => Fam::Pop,
        C::Pushfd => Fam::Pushf,
        C::Popfd => Fam::Popf,
        C::Enterd_imm16_imm8 => Fam::Enter,
        C::Leaved => Fam::Leave,
        C::Daa | C::Das | C::Aaa | C::Aas | C::Aam_imm8 | C::Aad_imm8 => Fam::Bcd,
        C::Inc_r16 | C::Inc_r32 | C::Dec_r16 | C::Dec_r32 => Fam::Alu,
        _ if matches!(
            code,
            C::Add_rm8_imm8_82
                | C::Or_rm8_imm8_82
                | C::Adc_rm8_imm8_82
                | C::Sbb_rm8_imm8_82
                | C::And_rm8_imm8_82
                | C::Sub_rm8_imm8_82
                | C::Xor_rm8_imm8_82
                | C::Cmp_rm8_imm8_82
        ) =>
        {
            Fam::Alu
        }
        C::Arpl_rm16_r16 | C::Arpl_r32m16_r32 => Fam::Arpl,
        C::Bound_r16_m1616 | C::Bound_r32_m3232 => Fam::Bound,
        C::Les_r16_m1616 | C::Les_r32_m1632 | C::Lds_r16_m1616 | C::Lds_r32_m1632 => Fam::LoadFar,
        C::Into => Fam::Plain,
        C::Sgdt_m1632_16 | C::Sgdt_m1632 | C::Sidt_m1632_16 | C::Sidt_m1632 => Fam::StoreTable,
        C::Lgdt_m1632_16 | C::Lgdt_m1632 | C::Lidt_m1632_16 | C::Lidt_m1632 => Fam::LoadTable,
        C::Mov_r32_cr | C::Mov_cr_r32 | C::Mov_r32_dr | C::Mov_dr_r32 => Fam::MovCrDr,
        _ => return None,
    })
}

/// Codes the generator builds cases for but that are not among its
/// forms: on kvm-pvm, the oracle for compatibility mode is KVM's
/// instruction emulator (see the module doc), which raises #UD for them
/// (it does not implement DAA, AAA, AAS, BOUND or ARPL: measured), so no
/// case of theirs can pass here. On a host where compatibility-mode code
/// runs on the CPU, drop this list.
const ORACLE_CANNOT_RUN: [Code; 7] = {
    use Code as C;
    [
        C::Daa,
        C::Aaa,
        C::Aas,
        C::Bound_r16_m1616,
        C::Bound_r32_m3232,
        C::Arpl_rm16_r16,
        C::Arpl_r32m16_r32,
    ]
};

/// This generator's forms.
pub(super) fn forms() -> Vec<Form> {
    Code::values()
        .filter(|c| family(*c).is_some() && !ORACLE_CANNOT_RUN.contains(c))
        .map(Form::of)
        .collect()
}

/// Do `code`'s cases run more than the instruction under test (a
/// control transfer's skipped `NOT`)? (For the harness's own tests.)
#[cfg(test)]
pub(crate) fn sequence(code: Code) -> bool {
    matches!(
        family(code),
        Some(
            Fam::BranchRel
                | Fam::CallRel
                | Fam::BranchIndirect
                | Fam::Ret
                | Fam::FarDirect
                | Fam::PopSreg
        )
    )
}

/// A case for `form` if it is one of this generator's: `Some(None)` when
/// this try's random choices cannot be encoded (the caller tries again).
pub(super) fn try_case(
    gen: &mut super::Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Option<Case>> {
    let _ = gen;
    let fam = family(form.code)?;
    Some(build_case(rng, form, fam, index, alloc))
}

const R32L: [Register; 8] = {
    use Register::*;
    [EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI]
};
const R16L: [Register; 8] = {
    use Register::*;
    [AX, CX, DX, BX, SP, BP, SI, DI]
};
const R8L: [Register; 8] = {
    use Register::*;
    [AL, CL, DL, BL, AH, CH, DH, BH]
};
const ESP: usize = 4;

/// A compatibility-mode draft: code in the low zone if `low`; the
/// legacy registers' upper halves zero (see [`upper`]).
fn compat_draft(rng: &mut Rng, alloc: &Alloc, low: bool) -> Draft {
    let mut d = Draft::new(rng, alloc);
    d.mode = CaseMode::Compat32;
    if low {
        d.code_addr = alloc.low_code_addr();
    }
    for g in &mut d.gpr[..8] {
        *g &= 0xffff_ffff;
    }
    d
}

/// The upper 32 bits a legacy register gets in a compatibility-mode
/// case: zero. Compatibility mode ignores them, but on kvm-pvm the oracle
/// for compatibility mode is KVM's instruction emulator (see the module
/// doc), which does not: it forms addresses and stack pointers from the
/// full 64-bit registers (measured: #GP(0) and #SS(0) where the CPU uses
/// the low halves). So that part of the architecture is not checked.
fn upper(_rng: &mut Rng) -> u64 {
    0
}

/// RSP's upper half (see [`upper`]).
fn garble_rsp(rng: &mut Rng, d: &mut Draft) {
    d.gpr[ESP] |= upper(rng);
}

/// A 32-bit-addressing memory operand whose effective (= linear) address
/// is `ea`, registers from `free` (indices < 8), optional DS/ES/SS
/// override (flat segments).
fn mem32(
    rng: &mut Rng,
    d: &mut Draft,
    ea: u64,
    size: u32,
    free: &[usize],
) -> Option<MemoryOperand> {
    let seg = match rng.below(10) {
        0 => Register::DS,
        1 => Register::ES,
        2 => Register::SS,
        _ => Register::None,
    };
    let ea = ea & 0xffff_ffff;
    let garbage = upper;
    let pick = |rng: &mut Rng, no_esp: bool| -> Option<usize> {
        let c: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&i| i < 8 && !(no_esp && i == ESP))
            .collect();
        rng.pick(&c)
    };
    let form = if free.is_empty() { 0 } else { rng.below(4) };
    let mo = match form {
        0 => MemoryOperand::new(Register::None, Register::None, 1, ea as i64, 4, false, seg),
        1 => {
            let b = pick(rng, false)?;
            let (disp, ds) = match rng.below(3) {
                0 => (0i64, 0u32),
                1 => (i64::from(rng.next_u64() as i8), 1),
                _ => (i64::from(rng.next_u64() as i32), 4),
            };
            d.gpr[b] = (ea.wrapping_sub(disp as u64) & 0xffff_ffff) | garbage(rng);
            MemoryOperand::new(R32L[b], Register::None, 1, disp, ds, false, seg)
        }
        2 => {
            let b = pick(rng, false)?;
            let i = pick(rng, true)?;
            if b == i {
                return None;
            }
            let s = [1u32, 2, 4, 8][rng.below(4) as usize];
            let disp = i64::from(rng.next_u64() as i8);
            let iv = rng.next_u64();
            let bv = ea
                .wrapping_sub(disp as u64)
                .wrapping_sub(iv.wrapping_mul(u64::from(s)));
            d.gpr[b] = (bv & 0xffff_ffff) | garbage(rng);
            d.gpr[i] = (iv & 0xffff_ffff) | garbage(rng);
            MemoryOperand::new(R32L[b], R32L[i], s, disp, 1, false, seg)
        }
        _ => {
            let i = pick(rng, true)?;
            let s = [1u32, 2, 4, 8][rng.below(4) as usize];
            let mut disp = rng.below(0x2000) as i64 - 0x1000;
            let rem = ea.wrapping_sub(disp as u64) & 0xffff_ffff;
            disp += (rem % u64::from(s)) as i64;
            let iv = (ea.wrapping_sub(disp as u64) & 0xffff_ffff) / u64::from(s);
            d.gpr[i] = iv | garbage(rng);
            MemoryOperand::new(Register::None, R32L[i], s, disp, 4, false, seg)
        }
    };
    d.mem = Some(MemTarget {
        addr: ea,
        size: size.max(1),
    });
    Some(mo)
}

/// Where a memory operand of `size` bytes goes: a fresh window (aligned,
/// misaligned or page-crossing) mostly, a fault page or unmapped memory
/// one time in `fault_one_in`. The window (if any) joins the draft.
fn target(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, size: u32, fault_one_in: u64) -> u64 {
    let _ = size;
    let fault = rng.chance(1, fault_one_in).then(|| {
        if rng.chance(3, 4) {
            FaultTarget::Special {
                page: rng
                    .pick(&guest::SPECIAL_PAGES)
                    .unwrap_or(guest::PAGE_NOT_PRESENT),
                // Not crossing into it: on kvm-pvm, KVM's emulator writes
                // the part before a faulting page boundary (measured), the
                // CPU does not.
                crossing: false,
            }
        } else {
            FaultTarget::Unmapped
        }
    });
    let (t, w, note) = match fault {
        Some(FaultTarget::Unmapped) => (
            guest::RAM_SIZE + rng.below(0x10_0000),
            None,
            "mem unmapped".to_string(),
        ),
        f => place_operand(rng, alloc, size, false, f),
    };
    if let Some(w) = w {
        d.windows.push(w);
    }
    d.note = note;
    t
}

/// Legacy registers not in `used`, ESP excluded.
fn free_legacy(used: &[usize]) -> Vec<usize> {
    (0..8).filter(|i| *i != ESP && !used.contains(i)).collect()
}

fn build_case(rng: &mut Rng, form: &Form, fam: Fam, index: u64, alloc: &mut Alloc) -> Option<Case> {
    let code = form.code;
    let osz16 = code.op_code().operand_size() == 16;
    let low = osz16
        && matches!(
            fam,
            Fam::BranchRel | Fam::CallRel | Fam::BranchIndirect | Fam::Ret
        );
    let mut d = if matches!(fam, Fam::Fx | Fam::Wait) {
        Draft::new(rng, alloc)
    } else {
        compat_draft(rng, alloc, low)
    };
    match fam {
        Fam::BranchRel => {
            gen_more::branch_rel(rng, &mut d, code)?;
        }
        Fam::CallRel => {
            d.stack(rng, alloc);
            garble_rsp(rng, &mut d);
            d.items
                .push((Instruction::with_branch(code, 0).ok()?, Some(2)));
            d.skipped(rng)?;
            d.note = "call over not".into();
        }
        Fam::BranchIndirect => branch_indirect(rng, alloc, &mut d, code, osz16)?,
        Fam::Ret => {
            gen_more::ret(rng, alloc, &mut d, code)?;
            garble_rsp(rng, &mut d);
        }
        Fam::PushSreg => {
            d.stack(rng, alloc);
            garble_rsp(rng, &mut d);
            let r = code.op_code().op0_kind();
            let sreg = sreg_of_kind(r)?;
            d.push(Instruction::with1(code, sreg).ok()?);
            d.note = "push sreg".into();
        }
        Fam::PopSreg => pop_sreg(rng, alloc, &mut d, code)?,
        Fam::Push => push(rng, alloc, &mut d, code)?,
        Fam::Pop => pop(rng, alloc, &mut d, code)?,
        Fam::Pushf => {
            d.stack(rng, alloc);
            garble_rsp(rng, &mut d);
            d.push(Instruction::with(code));
            d.note = "pushfd".into();
        }
        Fam::Popf => {
            let esp = d.stack(rng, alloc);
            garble_rsp(rng, &mut d);
            // Every bit but TF and RF (see gen_more); IF, IOPL, VM, VIF,
            // VIP: CPL 3 with IOPL 0 may not change them.
            // NT too: kvm-pvm's emulator sets it, the native ring 3 it
            // returns to does not keep it (measured), so it is not
            // checkable here.
            let v = rng.next_u64() & !(rflags::TF | (1 << 16) | rflags::NT);
            d.poke(esp, v, 4);
            d.push(Instruction::with(code));
            d.note = "popfd at CPL 3, IOPL 0".into();
        }
        Fam::Enter => {
            let w = d.window(rng, alloc, 1024);
            d.gpr[ESP] = w + 512 + if rng.chance(1, 6) { rng.below(8) } else { 0 };
            d.gpr[5] = (w + 768 + 4 * rng.below(48)) | upper(rng);
            garble_rsp(rng, &mut d);
            let level = match rng.below(6) {
                0 | 1 => 0,
                2 => 1,
                3 => 2 + rng.below(4),
                4 => rng.below(32),
                _ => 32 + rng.below(224),
            };
            let size = match rng.below(4) {
                0 => 0,
                1 => 4 * rng.below(8),
                2 => rng.below(0x1_0000),
                _ => rng.below(64),
            };
            d.push(Instruction::with2(code, size as u32, level as u32).ok()?);
            d.note = format!("enter {size:#x}, {level}");
        }
        Fam::Leave => {
            let w = d.window(rng, alloc, 512);
            d.gpr[5] = w + 4 * (16 + rng.below(96));
            if rng.chance(1, 8) {
                d.gpr[5] += rng.below(4);
            }
            d.gpr[5] |= upper(rng);
            d.push(Instruction::with(code));
            d.note = "leave".into();
        }
        Fam::Bcd => bcd(rng, &mut d, code)?,
        Fam::Alu => alu(rng, alloc, &mut d, form)?,
        Fam::Arpl => arpl(rng, alloc, &mut d, code)?,
        Fam::Bound => bound(rng, alloc, &mut d, code)?,
        Fam::LoadFar => load_far(rng, alloc, &mut d, code)?,
        Fam::Plain => {
            if code == Code::Into && rng.chance(1, 2) {
                d.rflags |= rflags::OF;
            }
            d.push(Instruction::with(code));
            d.note = "no operands".into();
        }
        Fam::StoreTable | Fam::LoadTable => {
            let at = target(rng, alloc, &mut d, 6, 6);
            let mo = mem32(rng, &mut d, at, 6, &free_legacy(&[]))?;
            d.push(Instruction::with1(code, mo).ok()?);
        }
        Fam::MovCrDr => mov_cr_dr(rng, &mut d, code)?,
        Fam::FarDirect => far_direct(rng, alloc, &mut d, code)?,
        Fam::Fx => return fx(rng, alloc, d, code, index),
        Fam::Wait => {
            d.push(Instruction::with(code));
            d.note = "wait".into();
            let mut c = d.finish(code, index)?;
            c.simd.x87 = x87_image(rng, 2);
            return Some(c);
        }
    }
    d.finish(code, index)
}

fn sreg_of_kind(k: K) -> Option<Register> {
    Some(match k {
        K::es => Register::ES,
        K::cs => Register::CS,
        K::ss => Register::SS,
        K::ds => Register::DS,
        K::fs => Register::FS,
        K::gs => Register::GS,
        _ => return None,
    })
}

/// Selectors POP DS/ES and LDS/LES load (or refuse) identically on the
/// guest's GDT and on the Linux host's (kvm-pvm runs ring 3 on the
/// host's GDT): the user data segment, and refused ones:
/// the DPL-0 segments, entry 7, the TSS halves, LDT selectors (no LDT)
/// and selectors beyond both tables. Not 0x50-0x7f (the host's LDT, TLS
/// and per-CPU entries), and no null or code-segment loads: on kvm-pvm
/// the compatibility-mode oracle is KVM's instruction emulator, whose
/// copy of the DS/ES descriptors is not refreshed when `store` reloads
/// the selectors natively, so such a load would leave the next cases
/// addressing through a stale null or read-only segment.
/// Only 0x2b itself loads: a selector loaded by the emulator does not
/// reach the native DS/ES that `store` records (measured: POP DS of 0x2a
/// left the native DS at 0x2b, and later emulated PUSH DS pushed 0x2a).
const DATA_SELECTORS: [u64; 14] = [
    0x2b, 0x2b, 0x2b, 0x2b, 0x08, 0x10, 0x1b, 0x3b, 0x43, 0x4b, 0x0f, 0x18, 0x40, 0xfffb,
];

fn pop_sreg(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let esp = d.stack(rng, alloc);
    garble_rsp(rng, d);
    let sreg = sreg_of_kind(code.op_code().op0_kind())?;
    let sel = match sreg {
        // Only a refused selector (see the module doc).
        Register::FS | Register::GS => rng.pick(&[0x18u64, 0x10, 0x13, 0x40, 0x4b, 0x1b, 0x0c])?,
        // SS takes only a writable DPL-3 data segment with RPL 3.
        Register::SS if rng.chance(2, 3) => u64::from(guest::USER_DS),
        _ => rng.pick(&DATA_SELECTORS)?,
    };
    d.poke(esp, sel | (rng.next_u64() << 16), 4);
    d.push(Instruction::with1(code, sreg).ok()?);
    if sreg == Register::SS {
        // The interrupt shadow: the next instruction completes before
        // anything could be delivered (nothing is pending here).
        d.skipped(rng)?;
    }
    d.note = format!("pop {sreg:?} {sel:#x}");
    Some(())
}

fn push(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    d.stack(rng, alloc);
    let insn = match code {
        Code::Push_r32 => Instruction::with1(code, rng.pick(&R32L)?).ok()?,
        Code::Pushd_imm8 => Instruction::with1(code, i32::from(value(rng, 8) as u8 as i8)).ok()?,
        Code::Pushd_imm32 => Instruction::with1(code, value(rng, 32) as u32).ok()?,
        Code::Push_rm32 if rng.chance(1, 2) => Instruction::with1(code, rng.pick(&R32L)?).ok()?,
        Code::Push_rm32 => {
            let at = target(rng, alloc, d, 4, 8);
            let mo = mem32(rng, d, at, 4, &free_legacy(&[]))?;
            Instruction::with1(code, mo).ok()?
        }
        _ => Instruction::with(code),
    };
    garble_rsp(rng, d);
    d.push(insn);
    if d.note.is_empty() {
        d.note = "push".into();
    }
    Some(())
}

fn pop(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    d.stack(rng, alloc);
    let insn = match code {
        Code::Pop_r32 => Instruction::with1(code, rng.pick(&R32L)?).ok()?,
        Code::Pop_rm32 if rng.chance(1, 2) => Instruction::with1(code, rng.pick(&R32L)?).ok()?,
        Code::Pop_rm32 => {
            let at = target(rng, alloc, d, 4, 8);
            // An ESP base is allowed: POP computes it after the pop.
            let mo = mem32(rng, d, at, 4, &free_legacy(&[]))?;
            Instruction::with1(code, mo).ok()?
        }
        _ => Instruction::with(code),
    };
    garble_rsp(rng, d);
    d.push(insn);
    if d.note.is_empty() {
        d.note = "pop".into();
    }
    Some(())
}

/// AL/AH values that reach every BCD adjustment: digits, non-BCD nibbles,
/// the carry edges (0x99/0x9a/0xf9/0xfa), and random bytes.
fn bcd_byte(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => rng
            .pick(&[
                0u64, 0x09, 0x0a, 0x0f, 0x10, 0x19, 0x1a, 0x90, 0x99, 0x9a, 0x9f, 0xa0, 0xf9, 0xfa,
                0xff, 0x66,
            ])
            .unwrap_or(0),
        1 => rng.below(10) * 16 + rng.below(10),
        _ => rng.below(256),
    }
}

fn bcd(rng: &mut Rng, d: &mut Draft, code: Code) -> Option<()> {
    let al = bcd_byte(rng);
    let ah = bcd_byte(rng);
    d.gpr[0] = (d.gpr[0] & !0xffff) | al | (ah << 8);
    // AF and CF drive the adjustments: both values of each.
    d.rflags &= !(rflags::AF | rflags::CF);
    if rng.chance(1, 2) {
        d.rflags |= rflags::AF;
    }
    if rng.chance(1, 2) {
        d.rflags |= rflags::CF;
    }
    let insn = match code {
        Code::Aam_imm8 | Code::Aad_imm8 => {
            let imm = match rng.below(6) {
                0 => 0,
                1 | 2 => 10,
                3 => 1,
                _ => rng.below(256),
            };
            d.note = format!("al {al:#x} ah {ah:#x} base {imm}");
            Instruction::with1(code, imm as u32).ok()?
        }
        _ => {
            d.note = format!("al {al:#x} ah {ah:#x}");
            Instruction::with(code)
        }
    };
    d.push(insn);
    Some(())
}

/// INC/DEC r16/r32 (short forms) and the 0x82 group (r/m8, imm8).
fn alu(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, form: &Form) -> Option<()> {
    let code = form.code;
    let insn = match form.kinds.first()? {
        K::r16_opcode => {
            let r = rng.pick(&R16L)?;
            set_reg(&mut d.gpr, r, value(rng, 16));
            Instruction::with1(code, r).ok()?
        }
        K::r32_opcode => {
            let r = rng.pick(&R32L)?;
            set_reg(&mut d.gpr, r, value(rng, 32));
            Instruction::with1(code, r).ok()?
        }
        _ => {
            let imm = value(rng, 8) as u32;
            if rng.chance(1, 2) {
                let r = rng.pick(&R8L)?;
                set_reg(&mut d.gpr, r, value(rng, 8));
                Instruction::with2(code, r, imm).ok()?
            } else {
                let at = target(rng, alloc, d, 1, 10);
                let mo = mem32(rng, d, at, 1, &free_legacy(&[]))?;
                let v = value(rng, 8) as u8;
                d.poke(at, u64::from(v), 1);
                let mut i = Instruction::with2(code, mo, imm).ok()?;
                if code != Code::Cmp_rm8_imm8_82 && rng.chance(1, 4) {
                    i.set_has_lock_prefix(true);
                    d.note.push_str(" lock");
                }
                i
            }
        }
    };
    d.push(insn);
    if d.note.is_empty() {
        d.note = "reg".into();
    }
    Some(())
}

/// ARPL r/m16, r16: RPL values of both operands in every order.
fn arpl(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let src = rng.pick(&R16L)?;
    let sel = |rng: &mut Rng| (rng.next_u64() & !3) | rng.below(4);
    let (si, _) = reg_bits(src)?;
    let insn = if rng.chance(1, 2) {
        let dst = rng.pick(&R16L)?;
        let dst = if code == Code::Arpl_r32m16_r32 {
            R32L[reg_bits(dst)?.0]
        } else {
            dst
        };
        d.gpr[reg_bits(dst)?.0] = sel(rng);
        d.gpr[si] = sel(rng);
        let src = if code == Code::Arpl_r32m16_r32 {
            R32L[si]
        } else {
            src
        };
        d.note = "reg".into();
        Instruction::with2(code, dst, src).ok()?
    } else {
        let at = target(rng, alloc, d, 2, 10);
        let mo = mem32(rng, d, at, 2, &free_legacy(&[si]))?;
        let v = sel(rng);
        d.poke(at, v, 2);
        d.gpr[si] = sel(rng);
        let src = if code == Code::Arpl_r32m16_r32 {
            R32L[si]
        } else {
            src
        };
        Instruction::with2(code, mo, src).ok()?
    };
    d.push(insn);
    Some(())
}

/// BOUND r, m: the index below, inside (edges included) and above the
/// bounds; #BR when outside.
fn bound(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let bits = if code == Code::Bound_r16_m1616 {
        16
    } else {
        32
    };
    let size = bits / 8;
    let r = rng.pick(&R32L)?;
    let (ri, _) = reg_bits(r)?;
    let reg = if bits == 16 { R16L[ri] } else { r };
    let at = target(rng, alloc, d, 2 * size, 10);
    let mo = mem32(rng, d, at, 2 * size, &free_legacy(&[ri]))?;
    let m = mask(bits);
    let (lo, hi) = (value(rng, bits) & m, value(rng, bits) & m);
    d.poke(at, lo, size as usize);
    d.poke(at + u64::from(size), hi, size as usize);
    let (slo, shi) = (sext(lo, bits), sext(hi, bits));
    let idx = match rng.below(6) {
        0 => lo,
        1 => hi,
        2 if shi > slo => (slo + (rng.below((shi - slo) as u64)) as i64) as u64,
        3 => lo.wrapping_sub(1),
        4 => hi.wrapping_add(1),
        _ => value(rng, bits),
    } & m;
    set_reg(&mut d.gpr, reg, idx);
    d.push(Instruction::with2(code, reg, mo).ok()?);
    Some(())
}

/// LES/LDS r, m16:16/m16:32 with the selectors of [`DATA_SELECTORS`].
fn load_far(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    let osz = code.op_code().operand_size() / 8;
    let r = rng.pick(&R32L)?;
    let (ri, _) = reg_bits(r)?;
    let reg = if osz == 2 { R16L[ri] } else { r };
    let at = target(rng, alloc, d, osz + 2, 10);
    let mo = mem32(rng, d, at, osz + 2, &free_legacy(&[ri]))?;
    let sel = rng.pick(&DATA_SELECTORS)?;
    d.poke(at, rng.next_u64(), osz as usize);
    d.poke(at + u64::from(osz), sel, 2);
    d.push(Instruction::with2(code, reg, mo).ok()?);
    d.note.push_str(&format!(" sel {sel:#x}"));
    Some(())
}

/// CALL/JMP r/m16 or r/m32 to the end of the case (16-bit: the code is
/// in the low zone, the target a 16-bit offset).
fn branch_indirect(
    rng: &mut Rng,
    alloc: &mut Alloc,
    d: &mut Draft,
    code: Code,
    osz16: bool,
) -> Option<()> {
    if code.is_call_near_indirect() {
        d.stack(rng, alloc);
        garble_rsp(rng, d);
    }
    let size = if osz16 { 2 } else { 4 };
    let reg: Option<usize>;
    if rng.chance(1, 2) {
        let r = rng.pick(&free_legacy(&[]))?;
        reg = Some(r);
        let op = if osz16 { R16L[r] } else { R32L[r] };
        d.push(Instruction::with1(code, op).ok()?);
        d.note = "reg".into();
    } else {
        reg = None;
        let at = target(rng, alloc, d, size, 12);
        let mo = mem32(rng, d, at, size, &free_legacy(&[]))?;
        d.push(Instruction::with1(code, mo).ok()?);
    }
    d.skipped(rng)?;
    let end = *d.layout()?.last()?;
    match reg {
        Some(r) => {
            let m = mask(size * 8);
            d.gpr[r] = (d.gpr[r] & !m) | (end & m);
        }
        None => {
            let at = d.mem?.addr;
            d.poke(at, end, size as usize);
        }
    }
    Some(())
}

fn mov_cr_dr(rng: &mut Rng, d: &mut Draft, code: Code) -> Option<()> {
    use Register as R;
    let op = code.op_code();
    let special = if op.op_kinds().contains(&K::cr_reg) {
        rng.pick(&[R::CR0, R::CR2, R::CR3, R::CR4, R::CR0])?
    } else {
        rng.pick(&[R::DR0, R::DR1, R::DR3, R::DR6, R::DR7])?
    };
    let gpr = rng.pick(&R32L)?;
    let insn = if matches!(op.op0_kind(), K::r32_reg | K::r32_rm) {
        Instruction::with2(code, gpr, special).ok()?
    } else {
        Instruction::with2(code, special, gpr).ok()?
    };
    d.push(insn);
    d.note = format!("{special:?} at CPL 3");
    Some(())
}

/// CALL/JMP FAR ptr16:16 / ptr16:32: to 0x33:`store` (64-bit mode:
/// the case ends there, as any case does), to 0x23 at the end of the case
/// (compatibility mode, over a `NOT r32`), or to a refused selector
/// (#GP with the selector).
fn far_direct(rng: &mut Rng, alloc: &mut Alloc, d: &mut Draft, code: Code) -> Option<()> {
    if code.is_call_far() {
        d.stack(rng, alloc);
        garble_rsp(rng, d);
    }
    let osz16 = code.op_code().operand_size() == 16;
    let store = gen_more::STORE;
    let choice = rng.below(8);
    let (sel, off): (u16, Option<u64>) = match choice {
        0..=2 => (guest::USER_CS, Some(store)),
        3..=5 if !osz16 => (guest::USER_CS32, None),
        _ => {
            let s = rng.pick(&[0u16, 3, 0x2b, 0x13, 0x10, 0x40, 0x48, 0x1b, 0x0b, 0xfff8])?;
            (s, Some(store))
        }
    };
    let mut i = Instruction::with_far_branch(code, sel, off.unwrap_or(0) as u32).ok()?;
    d.push(i);
    d.skipped(rng)?;
    if off.is_none() {
        let end = *d.layout()?.last()?;
        i.set_far_branch32(end as u32);
        d.items.first_mut()?.0 = i;
    }
    d.note = format!("far to {sel:#x}");
    Some(())
}

/// A random x87 state as an FNSAVE image: any FCW (masks mostly set),
/// TOP anywhere, a few registers holding normal values (tags consistent
/// with them), the others empty; one time in `pending_one_in`, an
/// unmasked exception flagged (FSW.ES), so the next waiting x87
/// instruction raises #MF.
fn x87_image(rng: &mut Rng, pending_one_in: u64) -> [u8; X87_IMAGE] {
    let pending = rng.chance(1, pending_one_in);
    let mut img = X87_INIT;
    let masks = if pending {
        0x3f & !(1u16 << rng.below(6))
    } else if rng.chance(1, 2) {
        0x3f
    } else {
        rng.below(64) as u16
    };
    let fcw = 0x40 | masks | (rng.below(4) as u16) << 8 | (rng.below(4) as u16) << 10;
    let top = rng.below(8) as u16;
    let raised = if pending { !masks & 0x3f } else { 0 };
    let es = if raised != 0 { 0x8080 } else { 0 };
    let fsw = (rng.next_u64() as u16 & 0x4700) | (top << 11) | raised | es;
    let mut ftw = 0xffffu16;
    for i in 0..8usize {
        let o = x87img::ST + 10 * i;
        if rng.chance(1, 2) {
            let phys = (usize::from(top) + i) & 7;
            ftw &= !(3 << (2 * phys));
            let sig = rng.next_u64() | (1 << 63);
            let se = (rng.below(0x7ffe) as u16 + 1) | if rng.chance(1, 2) { 0x8000 } else { 0 };
            img[o..o + 8].copy_from_slice(&sig.to_le_bytes());
            img[o + 8..o + 10].copy_from_slice(&se.to_le_bytes());
        }
    }
    img[x87img::FCW..x87img::FCW + 2].copy_from_slice(&fcw.to_le_bytes());
    img[x87img::FSW..x87img::FSW + 2].copy_from_slice(&fsw.to_le_bytes());
    img[x87img::FTW..x87img::FTW + 2].copy_from_slice(&ftw.to_le_bytes());
    img
}

/// A valid MXCSR (all defined bits random; the AMD-only MM bit 17, which
/// ringside does not model, clear), or, one time in `reserved_one_in`
/// (0: never), one with a reserved bit.
fn mxcsr(rng: &mut Rng, reserved_one_in: u64) -> u32 {
    let reserved = reserved_one_in != 0 && rng.chance(1, reserved_one_in);
    let v = rng.next_u64() as u32 & 0xffff;
    if reserved {
        v | 1 << (16 + rng.below(16))
    } else {
        v
    }
}

/// FXSAVE/FXRSTOR (64-bit mode) on a 16-byte-aligned 512-byte area. FXSAVE stores
/// a random SSE/x87 state into random bytes; FXRSTOR loads a random
/// image. The image field compared by rule is in
/// `policy::fxsave_unchecked`.
fn fx(rng: &mut Rng, alloc: &mut Alloc, mut d: Draft, code: Code, index: u64) -> Option<Case> {
    let save = code.mnemonic() == iced_x86::Mnemonic::Fxsave
        || code.mnemonic() == iced_x86::Mnemonic::Fxsave64;
    let len = 512 + 64;
    // Aligned, in ordinary memory only. Not misaligned: on kvm-pvm the
    // CPU's #GP(0) goes to KVM's instruction emulator, which performs the
    // access instead (measured). Not on or across a fault page: the AMD
    // host reports the image's last byte in CR2 (measured, also when
    // only the last 256 bytes are on the faulting page), ringside the
    // first faulting byte; the SDM leaves that to the implementation.
    let w = d.window(rng, alloc, len);
    d.note = "aligned".into();
    let at = w + 32;
    let free: Vec<usize> = (0..16).filter(|&i| i != 4).collect();
    let (mo, regs) = solve_address(rng, &free, at, d.code_addr, Register::None)?;
    for (r, v) in regs {
        set_reg(&mut d.gpr, r, v);
    }
    d.mem = Some(MemTarget {
        addr: at,
        size: 512,
    });
    if !save {
        // An image to load: x87 state (FCW, FSW, abridged FTW, registers),
        // MXCSR, XMM0-15; the rest stays random.
        let x = x87_image(rng, 8);
        let word = |o: usize| u64::from(u16::from_le_bytes([x[o], x[o + 1]]));
        d.poke(at, word(x87img::FCW), 2);
        d.poke(at + 2, word(x87img::FSW), 2);
        let full = word(x87img::FTW);
        let abridged = (0..8).fold(0u64, |a, i| a | u64::from((full >> (2 * i)) & 3 != 3) << i);
        d.poke(at + 4, abridged, 1);
        // (No reserved MXCSR bits: on kvm-pvm the CPU's #GP(0) goes to
        // KVM's instruction emulator, which injects #UD.)
        d.poke(at + 24, u64::from(mxcsr(rng, 0)), 4);
        let top = (word(x87img::FSW) >> 11) & 7;
        for i in 0..8u64 {
            // Image slot i is ST(i); register contents from the FNSAVE
            // image (also ST order).
            let o = x87img::ST + 10 * i as usize;
            let sig = u64::from_le_bytes(x.get(o..o + 8)?.try_into().ok()?);
            let se = word(o + 8);
            let _ = top;
            d.poke(at + 32 + 16 * i, sig, 8);
            d.poke(at + 40 + 16 * i, se, 2);
        }
    }
    d.push(Instruction::with1(code, mo).ok()?);
    let mut c = d.finish(code, index)?;
    if save {
        c.simd.x87 = x87_image(rng, 8);
        c.simd.mxcsr = mxcsr(rng, 0);
        for x in c.simd.xmm.iter_mut() {
            *x = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        }
    }
    Some(c)
}
