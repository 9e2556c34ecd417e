//! The x87 FPU (SDM Vol. 1, chapter 8), one file per family:
//!
//! * [`softfloat`]: exact 80-bit arithmetic with precision and rounding
//!   control (no host floating point).
//! * [`stack`]: the register stack, TOP, tags, stack faults.
//! * [`load_store`]: FLD/FST/FSTP, FILD/FIST/FISTP/FISTTP, FBLD/FBSTP,
//!   FXCH, FCMOVcc, FCHS/FABS, FFREE.
//! * [`arith`]: FADD…FDIVR in all operand forms, FSQRT, FRNDINT,
//!   FSCALE, FPREM/FPREM1, FXTRACT.
//! * [`cmp`]: FCOM/FUCOM(P/PP), FCOMI/FUCOMI(P), FICOM(P), FTST, FXAM.
//! * [`consts`]: FLD1, FLDZ, FLDPI, FLDL2E, FLDL2T, FLDLG2, FLDLN2.
//! * [`control`]: FNINIT, FLDCW/FNSTCW, FNSTSW, FNCLEX, FNSTENV/FLDENV,
//!   FNSAVE/FRSTOR, FINCSTP/FDECSTP, FNOP, FWAIT, the 8087/287 leftovers
//!   (FENI, FDISI, FSETPM: no-ops).
//! * [`transcend`]: FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X,
//!   FYL2XP1, evaluated in [`wide`] (128-bit working precision).
//!
//! # Availability and pending exceptions
//!
//! Every x87 instruction raises #NM if CR0.EM or CR0.TS is set (WAIT:
//! only if CR0.MP and CR0.TS). A *waiting* instruction (all but the
//! FN-forms of the control instructions) first delivers a pending
//! unmasked exception (FSW.ES) as #MF when CR0.NE = 1. With CR0.NE = 0
//! the PC-compatible FERR#/IRQ 13 path is not modelled: the exception
//! stays pending in FSW and execution goes on.
//!
//! # Not modelled
//!
//! FOP is not recorded (reads as 0).

pub(crate) mod arith;
pub(crate) mod cmp;
pub(crate) mod consts;
pub(crate) mod control;
pub(crate) mod load_store;
pub(crate) mod softfloat;
pub(crate) mod stack;
pub(crate) mod transcend;
pub(crate) mod wide;

use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, fsw, SegReg, X87State, F80};
use iced_x86::{Instruction, OpKind, Register};
use mmu::AccessKind;
use softfloat::Env;

/// The handler of an x87 instruction, if ringside has one.
pub(crate) fn select(insn: &Instruction) -> Option<Handler> {
    let code = insn.code();
    load_store::select(code)
        .or_else(|| arith::select(code))
        .or_else(|| cmp::select(code))
        .or_else(|| consts::select(code))
        .or_else(|| control::select(code))
        .or_else(|| transcend::select(code))
}

/// #NM if CR0.EM or CR0.TS (SDM Vol. 3A, Table 2-2 and 13.1).
#[inline(always)]
pub(crate) fn check_nm(cpu: &Cpu) -> Result<(), Fault> {
    if cpu.state.cr0 & (cr0::EM | cr0::TS) != 0 {
        return Err(Fault::NM);
    }
    Ok(())
}

/// The prologue of a waiting x87 instruction: #NM, then #MF for a
/// pending unmasked exception (CR0.NE = 1; see the module doc for NE = 0).
#[inline(always)]
pub(crate) fn check_wait(cpu: &Cpu) -> Result<(), Fault> {
    check_nm(cpu)?;
    if cpu.state.x87.fsw & fsw::ES != 0 && cpu.state.cr0 & cr0::NE != 0 {
        return Err(Fault::MF);
    }
    Ok(())
}

/// The rounding environment of the current FCW.
pub(crate) fn env(x: &X87State) -> Env {
    Env::from_fcw(x.fcw)
}

/// ST register number of operand `n` (ST0-ST7).
pub(crate) fn sti(insn: &Instruction, n: u32) -> usize {
    (insn.op_register(n) as usize).wrapping_sub(Register::ST0 as usize) & 7
}

/// The common start of most x87 instructions: the pending-exception
/// check (#MF / #NM), then a copy of the x87 state with the pointer
/// registers noted and C1 cleared, to be stored back when the
/// instruction completes.
pub(crate) fn begin(cpu: &Cpu, insn: &Instruction) -> Result<X87State, Fault> {
    check_wait(cpu)?;
    let mut x = cpu.state.x87;
    note_pointers(cpu, &mut x, insn);
    stack::set_c1(&mut x, false);
    Ok(x)
}

/// The common start of an instruction that works on ST(0) alone: the
/// pending-exception check, the pointer registers, C1 cleared, and — when
/// ST(0) is empty — the stack-underflow response (ST(0) ← the indefinite
/// when IE is masked). Returns the x87 state to go on with and whether
/// ST(0) holds an operand.
pub(crate) fn begin_st0(cpu: &Cpu, insn: &Instruction) -> Result<(X87State, bool), Fault> {
    let mut x = begin(cpu, insn)?;
    if stack::is_empty(&x, 0) {
        if stack::stack_fault(&mut x, false) {
            stack::set(&mut x, 0, F80::INDEFINITE);
        }
        return Ok((x, false));
    }
    Ok((x, true))
}

/// Record FIP/FCS (and FDP/FDS for a memory operand) of a non-control
/// instruction into `x`.
pub(crate) fn note_pointers(cpu: &Cpu, x: &mut X87State, insn: &Instruction) {
    x.fip = cpu.insn_start;
    x.fcs = cpu.state.sreg(SegReg::Cs).selector;
    x.fop = 0;
    if (0..insn.op_count()).any(|n| insn.op_kind(n) == OpKind::Memory) {
        x.fdp = cpu.ea(insn);
        x.fds = cpu
            .state
            .sreg(crate::operand::sreg_of(insn.memory_segment()))
            .selector;
    }
}

/// Read the 10-byte memory operand.
pub(crate) fn read_m80(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<F80, Fault> {
    let lin = cpu.operand_lin(insn, 10, AccessKind::Read)?;
    read_lin80(cpu, plat, lin)
}

pub(crate) fn read_lin80(cpu: &mut Cpu, plat: &mut dyn Platform, lin: u64) -> Result<F80, Fault> {
    let user = cpu.user_mode();
    let sig = cpu.read_lin::<8>(plat, lin, user)?;
    let se = cpu.read_lin::<2>(plat, lin.wrapping_add(8) & cpu.lin_mask(), user)? as u16;
    Ok(F80 { se, sig })
}

/// Write 10 bytes at linear `lin` (the caller has probed the range).
pub(crate) fn write_lin80(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    lin: u64,
    v: F80,
) -> Result<(), Fault> {
    let user = cpu.user_mode();
    cpu.write_lin::<8>(plat, lin, v.sig, user)?;
    cpu.write_lin::<2>(
        plat,
        lin.wrapping_add(8) & cpu.lin_mask(),
        u64::from(v.se),
        user,
    )
}

/// Write the 10-byte memory operand, all or nothing.
pub(crate) fn write_m80(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    v: F80,
) -> Result<(), Fault> {
    let lin = cpu.operand_lin(insn, 10, AccessKind::Write)?;
    crate::insn::sse::probe_write(cpu, lin, 10)?;
    write_lin80(cpu, plat, lin, v)
}

/// A memory source operand of the arithmetic and compare instructions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemSrc {
    F32,
    F64,
    I16,
    I32,
}

/// Read a memory source operand as an extended value (exact; an SNaN or
/// denormal single/double raises IE/DE into `env`).
pub(crate) fn read_src(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
    kind: MemSrc,
    env: &mut Env,
) -> Result<F80, Fault> {
    Ok(match kind {
        MemSrc::F32 => softfloat::from_ieee(env, cpu.read_m::<4>(plat, insn)?, 32, true),
        MemSrc::F64 => softfloat::from_ieee(env, cpu.read_m::<8>(plat, insn)?, 64, true),
        MemSrc::I16 => softfloat::from_int(i64::from(cpu.read_m::<2>(plat, insn)? as u16 as i16)),
        MemSrc::I32 => softfloat::from_int(i64::from(cpu.read_m::<4>(plat, insn)? as u32 as i32)),
    })
}

/// Put the x87 fields of an FXSAVE image through `put(offset, value)`
/// (`w64`: the FXSAVE64 pointer format).
pub(crate) fn fx_put(x: &X87State, w64: bool, put: &mut impl FnMut(u64, u64)) {
    put(0, u64::from(x.fcw));
    put(2, u64::from(x.fsw));
    put(4, u64::from(x.ftw));
    put(6, u64::from(x.fop & 0x7ff));
    if w64 {
        put(8, x.fip);
        put(16, x.fdp);
    } else {
        put(8, x.fip & 0xffff_ffff);
        put(12, u64::from(x.fcs));
        put(16, x.fdp & 0xffff_ffff);
        put(20, u64::from(x.fds));
    }
    for i in 0..8 {
        let v = stack::get(x, i);
        put(32 + 16 * i as u64, v.sig);
        put(40 + 16 * i as u64, u64::from(v.se));
    }
}

/// Load the x87 fields of an FXRSTOR image: `img` = its first 32 bytes,
/// `st` = ST0-ST7 from its register slots.
pub(crate) fn fx_load(x: &mut X87State, img: &[u64; 4], st: &[F80; 8], w64: bool) {
    let [q0, q1, q2, _] = *img;
    x.fcw = (q0 as u16 & 0x1f3f) | 0x40;
    x.fsw = (q0 >> 16) as u16;
    x.ftw = (q0 >> 32) as u8;
    x.fop = (q0 >> 48) as u16 & 0x7ff;
    if w64 {
        x.fip = q1;
        x.fdp = q2;
        x.fcs = 0;
        x.fds = 0;
    } else {
        x.fip = q1 & 0xffff_ffff;
        x.fcs = (q1 >> 32) as u16;
        x.fdp = q2 & 0xffff_ffff;
        x.fds = (q2 >> 32) as u16;
    }
    for (i, v) in st.iter().enumerate() {
        let p = stack::phys(x, i);
        x.regs[p] = *v;
    }
    stack::update_es(x);
}
