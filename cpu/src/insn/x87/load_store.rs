//! x87 data transfer: FLD/FST/FSTP (m32/m64/m80/ST(i)), FILD,
//! FIST/FISTP, FXCH, FCMOVcc, and the sign operations FCHS/FABS, FFREE.
//!
//! Every handler works on a copy of the x87 state and stores it back
//! only after the memory access succeeded: a #PF or #GP leaves the FPU
//! as it was.

use super::softfloat;
use super::stack::{self, get, is_empty, push, set, set_c1, signal, stack_fault};
use super::{check_wait, env, note_pointers, read_m80, sti, write_m80};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{rflags, F80};
use iced_x86::{Code, Instruction};
use mmu::AccessKind;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Fld_m32fp => fld_m::<4>,
        C::Fld_m64fp => fld_m::<8>,
        C::Fld_m80fp => fld_m::<10>,
        C::Fld_sti => fld_sti,
        C::Fild_m16int => fild::<2>,
        C::Fild_m32int => fild::<4>,
        C::Fild_m64int => fild::<8>,
        C::Fst_m32fp => fst_m::<4, false>,
        C::Fst_m64fp => fst_m::<8, false>,
        C::Fstp_m32fp => fst_m::<4, true>,
        C::Fstp_m64fp => fst_m::<8, true>,
        C::Fstp_m80fp => fst_m::<10, true>,
        C::Fst_sti => fst_sti::<false>,
        C::Fstp_sti | C::Fstp_sti_DFD0 | C::Fstp_sti_DFD8 => fst_sti::<true>,
        C::Fstpnce_sti => fstpnce,
        C::Fist_m16int => fist::<2, false, false>,
        C::Fist_m32int => fist::<4, false, false>,
        C::Fistp_m16int => fist::<2, true, false>,
        C::Fistp_m32int => fist::<4, true, false>,
        C::Fistp_m64int => fist::<8, true, false>,
        C::Fisttp_m16int => fist::<2, true, true>,
        C::Fisttp_m32int => fist::<4, true, true>,
        C::Fisttp_m64int => fist::<8, true, true>,
        C::Fbld_m80bcd => fbld,
        C::Fbstp_m80bcd => fbstp,
        C::Fxch_st0_sti | C::Fxch_st0_sti_DDC8 | C::Fxch_st0_sti_DFC8 => fxch,
        C::Fchs => fsign::<0>,
        C::Fabs => fsign::<1>,
        C::Ffree_sti => ffree::<false>,
        C::Ffreep_sti => ffree::<true>,
        C::Fcmovb_st0_sti => fcmov::<0>,
        C::Fcmove_st0_sti => fcmov::<1>,
        C::Fcmovbe_st0_sti => fcmov::<2>,
        C::Fcmovu_st0_sti => fcmov::<3>,
        C::Fcmovnb_st0_sti => fcmov::<4>,
        C::Fcmovne_st0_sti => fcmov::<5>,
        C::Fcmovnbe_st0_sti => fcmov::<6>,
        C::Fcmovnu_st0_sti => fcmov::<7>,
        _ => return None,
    })
}

/// FLD m32fp / m64fp / m80fp. A single or double SNaN raises IE (and is
/// loaded quieted), a denormal one DE; an extended value loads as is.
fn fld_m<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    let mut e = env(&x);
    let v = match SZ {
        4 => softfloat::from_ieee(&mut e, cpu.read_m::<4>(plat, insn)?, 32, false),
        8 => softfloat::from_ieee(&mut e, cpu.read_m::<8>(plat, insn)?, 64, false),
        _ => read_m80(cpu, plat, insn)?,
    };
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    let below = (x.top() + 7) & 7;
    if x.ftw & (1 << below) != 0 || signal(&mut x, e.flags) {
        push(&mut x, v);
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FLD ST(i).
fn fld_sti(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    let i = sti(insn, 0);
    if is_empty(&x, i) {
        // Underflow only: a full ST(7) is overwritten without a second
        // (overflow) fault, C1 = 0 (measured on AMD).
        if stack_fault(&mut x, false) {
            stack::push_unchecked(&mut x, F80::INDEFINITE);
        }
        cpu.state.x87 = x;
        return Ok(());
    }
    let v = get(&x, i);
    push(&mut x, v);
    cpu.state.x87 = x;
    Ok(())
}

/// FILD m16int / m32int / m64int (exact).
fn fild<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    let raw = cpu.read_m::<SZ>(plat, insn)?;
    let sh = 64 - 8 * u32::from(SZ);
    let v = softfloat::from_int(((raw << sh) as i64) >> sh);
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    push(&mut x, v);
    cpu.state.x87 = x;
    Ok(())
}

/// The QNaN indefinite in a memory format of `sz` bytes.
fn indefinite_m(sz: u8) -> u64 {
    match sz {
        4 => 0xffc0_0000,
        _ => 0xfff8_0000_0000_0000,
    }
}

/// FST/FSTP m32fp/m64fp, FSTP m80fp: rounded per RC (not PC).
fn fst_m<const SZ: u8, const POP: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    probe_dest(cpu, insn, u64::from(SZ))?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    let mut e = env(&x);
    // What to store (None: nothing, an unmasked exception).
    let out: Option<(u64, F80)> = if is_empty(&x, 0) {
        stack_fault(&mut x, false).then_some((indefinite_m(SZ), F80::INDEFINITE))
    } else {
        let v = get(&x, 0);
        let r = match SZ {
            4 => softfloat::to_ieee(&mut e, v, 32),
            8 => softfloat::to_ieee(&mut e, v, 64),
            _ => Some(0),
        };
        let ok = signal(&mut x, e.flags);
        set_c1(&mut x, e.up);
        match r {
            Some(bits) if ok => Some((bits, v)),
            _ => None,
        }
    };
    if let Some((bits, v)) = out {
        match SZ {
            4 => cpu.write_m::<4>(plat, insn, bits)?,
            8 => cpu.write_m::<8>(plat, insn, bits)?,
            _ => write_m80(cpu, plat, insn, v)?,
        }
        if POP {
            stack::pop(&mut x);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// The memory destination of a store, checked before anything else: a
/// store an unmasked exception suppresses still faults on its
/// destination first (measured on AMD: FISTP to an unmapped page with an
/// unmasked invalid operation is #PF, with FSW unchanged).
fn probe_dest(cpu: &mut Cpu, insn: &Instruction, len: u64) -> Result<(), Fault> {
    let lin = cpu.operand_lin(insn, len as u8, AccessKind::Write)?;
    crate::insn::sse::probe_write(cpu, lin, len)
}

/// FSTPNCE ST(i) (D9 D8+i, the undocumented FSTP alias): as FSTP ST(i),
/// but an empty ST(0) is no stack underflow: ST(i) is left as it is and
/// ST(0) popped, without exception, C1 = 0 (measured on AMD).
fn fstpnce(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)?;
    if !is_empty(&cpu.state.x87, 0) {
        return fst_sti::<true>(cpu, plat, insn);
    }
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    stack::pop(&mut x);
    cpu.state.x87 = x;
    Ok(())
}

/// FST/FSTP ST(i): a copy, no rounding.
fn fst_sti<const POP: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    let i = sti(insn, 0);
    let v = if is_empty(&x, 0) {
        if !stack_fault(&mut x, false) {
            cpu.state.x87 = x;
            return Ok(());
        }
        F80::INDEFINITE
    } else {
        get(&x, 0)
    };
    set(&mut x, i, v);
    if POP {
        stack::pop(&mut x);
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FIST/FISTP: rounded per RC; NaN, infinity or out of range is IE with
/// the integer indefinite (the most negative integer) as masked result.
/// FISTTP (`TRUNC`, SSE3): the same, but always rounded toward zero
/// whatever FCW.RC says (so C1, "rounded up", is always 0), and it pops.
fn fist<const SZ: u8, const POP: bool, const TRUNC: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    probe_dest(cpu, insn, u64::from(SZ))?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    let bits = 8 * u32::from(SZ);
    let indefinite = 1u64 << (bits - 1);
    let out = if is_empty(&x, 0) {
        stack_fault(&mut x, false).then_some(indefinite)
    } else {
        let mut e = env(&x);
        if TRUNC {
            e.rc = 3;
        }
        let r = softfloat::to_int(&mut e, get(&x, 0), bits);
        let ok = signal(&mut x, e.flags);
        set_c1(&mut x, e.up);
        if ok {
            Some(r.map_or(indefinite, |v| v as u64))
        } else {
            None
        }
    };
    if let Some(v) = out {
        cpu.write_m::<SZ>(plat, insn, v)?;
        if POP {
            stack::pop(&mut x);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FBLD m80bcd: push the 18-digit packed BCD integer (bytes 0-8 two
/// digits each, least significant first; byte 9 bit 7 the sign, bits
/// 0-6 ignored). Exact (|value| < 10^18 < 2^60); −0 loads as −0.0. The
/// SDM leaves digits A-F undefined: they are weighted like decimal
/// digits here (nibble × 10^k), which is what the AMD host does
/// (measured by the difftest).
fn fbld(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)?;
    let raw = read_m80(cpu, plat, insn)?;
    let v = softfloat::from_bcd(raw);
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    push(&mut x, v);
    cpu.state.x87 = x;
    Ok(())
}

/// The packed BCD integer indefinite (SDM Vol. 1, 4.7): FFFF
/// C000 0000 0000 0000H.
const BCD_INDEFINITE: F80 = F80 {
    se: 0xffff,
    sig: 0xc000_0000_0000_0000,
};

/// FBSTP m80bcd: ST(0) rounded to an integer per RC, stored as packed
/// BCD, then popped. NaN, infinity, unsupported or |value| ≥ 10^18 is IE
/// (masked: the BCD indefinite); inexact is PE with C1 = rounded up.
fn fbstp(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)?;
    probe_dest(cpu, insn, 10)?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    let out = if is_empty(&x, 0) {
        stack_fault(&mut x, false).then_some(BCD_INDEFINITE)
    } else {
        let mut e = env(&x);
        let r = softfloat::to_bcd(&mut e, get(&x, 0));
        let ok = signal(&mut x, e.flags);
        set_c1(&mut x, e.up);
        ok.then(|| r.unwrap_or(BCD_INDEFINITE))
    };
    if let Some(v) = out {
        write_m80(cpu, plat, insn, v)?;
        stack::pop(&mut x);
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FXCH ST(i): an empty operand is a stack underflow; masked, it reads
/// as the QNaN indefinite.
fn fxch(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    let i = sti(insn, 1);
    let (mut a, mut b) = (get(&x, 0), get(&x, i));
    if is_empty(&x, 0) || is_empty(&x, i) {
        if !stack_fault(&mut x, false) {
            cpu.state.x87 = x;
            return Ok(());
        }
        if is_empty(&x, 0) {
            a = F80::INDEFINITE;
        }
        if is_empty(&x, i) {
            b = F80::INDEFINITE;
        }
    }
    set(&mut x, 0, b);
    set(&mut x, i, a);
    cpu.state.x87 = x;
    Ok(())
}

/// FCHS (OP = 0) / FABS (OP = 1): sign only, no exceptions but the
/// stack underflow.
fn fsign<const OP: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let (mut x, full) = super::begin_st0(cpu, insn)?;
    if full {
        let v = get(&x, 0);
        set(&mut x, 0, if OP == 0 { v.negate() } else { v.abs() });
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FFREE ST(i) (and the undocumented FFREEP, which pops too).
fn ffree<const POP: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    // SDM FFREE: C0-C3 undefined. AMD clears C1 (measured); so do we.
    set_c1(&mut x, false);
    let p = stack::phys(&x, sti(insn, 0));
    x.ftw &= !(1 << p);
    if POP {
        stack::pop(&mut x);
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FCMOVcc ST(0), ST(i): B, E, BE, U, NB, NE, NBE, NU.
fn fcmov<const CC: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    let f = cpu.rflags();
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    // SDM FCMOVcc: "C1 Set to 0 if stack underflow occurred" (by
    // `stack_fault`); otherwise unchanged (measured on AMD).
    let i = sti(insn, 1);
    if is_empty(&x, 0) || is_empty(&x, i) {
        if stack_fault(&mut x, false) {
            set(&mut x, 0, F80::INDEFINITE);
        }
        cpu.state.x87 = x;
        return Ok(());
    }
    let (cf, zf, pf) = (
        f & rflags::CF != 0,
        f & rflags::ZF != 0,
        f & rflags::PF != 0,
    );
    let c = match CC & 3 {
        0 => cf,
        1 => zf,
        2 => cf || zf,
        _ => pf,
    };
    if c != (CC >= 4) {
        let v = get(&x, i);
        set(&mut x, 0, v);
    }
    cpu.state.x87 = x;
    Ok(())
}
