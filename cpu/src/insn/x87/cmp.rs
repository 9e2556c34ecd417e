//! x87 compares: FCOM/FCOMP/FCOMPP, FUCOM/FUCOMP/FUCOMPP, FICOM/FICOMP,
//! FTST (condition codes C3, C2, C0), FCOMI/FCOMIP/FUCOMI/FUCOMIP
//! (ZF, PF, CF; OF, SF, AF cleared), and FXAM.
//!
//! The FCOM forms raise IE for any NaN, the FUCOM forms only for SNaNs
//! (SDM Vol. 2, FCOM and FUCOM). Unordered sets all three codes. On an
//! unmasked invalid operation the codes/flags are left unchanged and
//! nothing is popped.

use super::softfloat::{self, Class, Cmp};
use super::stack::{self, get, is_empty, set_c1, signal, stack_fault};
use super::{check_wait, env, note_pointers, read_src, sti, MemSrc};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{fsw, rflags, F80};
use iced_x86::{Code, Instruction};

/// Source forms.
const M32: u8 = 0;
const M64: u8 = 1;
const I16: u8 = 2;
const I32: u8 = 3;
const STI: u8 = 4;
/// FTST: compare with +0.0.
const ZERO: u8 = 5;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Fcom_m32fp => fcom::<M32, 0, false>,
        C::Fcom_m64fp => fcom::<M64, 0, false>,
        C::Fcom_st0_sti | C::Fcom_st0_sti_DCD0 => fcom::<STI, 0, false>,
        C::Fcomp_m32fp => fcom::<M32, 1, false>,
        C::Fcomp_m64fp => fcom::<M64, 1, false>,
        C::Fcomp_st0_sti | C::Fcomp_st0_sti_DCD8 | C::Fcomp_st0_sti_DED0 => fcom::<STI, 1, false>,
        C::Fcompp => fcom::<STI, 2, false>,
        C::Fucom_st0_sti => fcom::<STI, 0, true>,
        C::Fucomp_st0_sti => fcom::<STI, 1, true>,
        C::Fucompp => fcom::<STI, 2, true>,
        C::Ficom_m16int => fcom::<I16, 0, false>,
        C::Ficom_m32int => fcom::<I32, 0, false>,
        C::Ficomp_m16int => fcom::<I16, 1, false>,
        C::Ficomp_m32int => fcom::<I32, 1, false>,
        C::Ftst => fcom::<ZERO, 0, false>,
        C::Fcomi_st0_sti => fcomi::<false, false>,
        C::Fcomip_st0_sti => fcomi::<true, false>,
        C::Fucomi_st0_sti => fcomi::<false, true>,
        C::Fucomip_st0_sti => fcomi::<true, true>,
        C::Fxam => fxam,
        _ => return None,
    })
}

/// (C3, C2, C0) / (ZF, PF, CF) of a compare result.
fn codes(c: Cmp) -> (bool, bool, bool) {
    match c {
        Cmp::Greater => (false, false, false),
        Cmp::Less => (false, false, true),
        Cmp::Equal => (true, false, false),
        Cmp::Unordered => (true, true, true),
    }
}

fn set_codes(w: u16, (c3, c2, c0): (bool, bool, bool)) -> u16 {
    let mut w = w & !(fsw::C0 | fsw::C2 | fsw::C3);
    if c3 {
        w |= fsw::C3;
    }
    if c2 {
        w |= fsw::C2;
    }
    if c0 {
        w |= fsw::C0;
    }
    w
}

/// FCOM-family: compare ST(0) with the source, set C3/C2/C0, pop `POPS`
/// times.
fn fcom<const FORM: u8, const POPS: u8, const QUIET: bool>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    let mut e = env(&x);
    let mem = match FORM {
        M32 => Some(read_src(cpu, plat, insn, MemSrc::F32, &mut e)?),
        M64 => Some(read_src(cpu, plat, insn, MemSrc::F64, &mut e)?),
        I16 => Some(read_src(cpu, plat, insn, MemSrc::I16, &mut e)?),
        I32 => Some(read_src(cpu, plat, insn, MemSrc::I32, &mut e)?),
        ZERO => Some(F80::ZERO),
        _ => None,
    };
    note_pointers(cpu, &mut x, insn);
    set_c1(&mut x, false);
    // FCOMPP/FUCOMPP compare with ST(1); the operand-less decodings of
    // FCOM have ST(1) as operand 1 in iced.
    let i = if POPS == 2 || insn.op_count() < 2 {
        1
    } else {
        sti(insn, 1)
    };
    let ok = if is_empty(&x, 0) || (mem.is_none() && is_empty(&x, i)) {
        let masked = stack_fault(&mut x, false);
        if masked {
            x.fsw = set_codes(x.fsw, codes(Cmp::Unordered));
        }
        masked
    } else {
        // An SNaN single/double memory source is not quieted by the load:
        // the compare itself raises IE for it.
        let b = mem.unwrap_or_else(|| get(&x, i));
        let c = softfloat::compare(&mut e, get(&x, 0), b, QUIET);
        let ok = signal(&mut x, e.flags);
        // Only an unmasked IE leaves the condition codes alone (SDM
        // FCOM); with an unmasked DE they are still set (measured on
        // AMD), but nothing is popped.
        if ok || e.flags & !(x.fcw as u8) & softfloat::exc::IE == 0 {
            x.fsw = set_codes(x.fsw, codes(c));
        }
        ok
    };
    if ok {
        for _ in 0..POPS {
            stack::pop(&mut x);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// ZF, PF, CF from a comparison; OF, SF, AF cleared.
fn set_eflags(cpu: &mut Cpu, c: Cmp) {
    let (zf, pf, cf) = codes(c);
    let mut f = cpu.rflags()
        & !(rflags::ZF | rflags::PF | rflags::CF | rflags::OF | rflags::SF | rflags::AF);
    if zf {
        f |= rflags::ZF;
    }
    if pf {
        f |= rflags::PF;
    }
    if cf {
        f |= rflags::CF;
    }
    cpu.set_rflags(f);
}

/// FCOMI/FUCOMI (and the popping forms): ZF, PF, CF; OF, SF, AF cleared.
fn fcomi<const POP: bool, const QUIET: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    // C1 changes only on a stack underflow (to 0, by `stack_fault`):
    // SDM Vol. 1 Table 8-1 gives C1 as the stack-fault indicator here;
    // measured on AMD, C1 is otherwise left unchanged.
    let i = sti(insn, 1);
    let r = if is_empty(&x, 0) || is_empty(&x, i) {
        stack_fault(&mut x, false).then_some(Cmp::Unordered)
    } else {
        let mut e = env(&x);
        let c = softfloat::compare(&mut e, get(&x, 0), get(&x, i), QUIET);
        let ok = signal(&mut x, e.flags);
        // Only an unmasked IE leaves EFLAGS alone (SDM FCOMI); with an
        // unmasked DE the flags are still set (measured on AMD), but
        // nothing is popped.
        if !ok && e.flags & !(x.fcw as u8) & softfloat::exc::IE == 0 {
            set_eflags(cpu, c);
        }
        ok.then_some(c)
    };
    if let Some(c) = r {
        set_eflags(cpu, c);
        if POP {
            stack::pop(&mut x);
        }
    }
    cpu.state.x87 = x;
    Ok(())
}

/// FXAM: classify ST(0) into C3/C2/C0, C1 = sign (SDM Vol. 2, FXAM).
fn fxam(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    let v = get(&x, 0);
    let c = if is_empty(&x, 0) {
        (true, false, true)
    } else {
        match v.class() {
            Class::Unsupported => (false, false, false),
            Class::QNaN | Class::SNaN => (false, false, true),
            Class::Normal => (false, true, false),
            Class::Inf => (false, true, true),
            Class::Zero => (true, false, false),
            Class::Denormal => (true, true, false),
        }
    };
    x.fsw = set_codes(x.fsw, c);
    set_c1(&mut x, v.sign());
    cpu.state.x87 = x;
    Ok(())
}
