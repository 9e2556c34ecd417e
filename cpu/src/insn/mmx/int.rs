//! Packed integer operations on MM registers: the MMX arithmetic,
//! compares, logic, shifts, unpacks and packs, the SSE integer additions
//! (PAVGB/W, PMINUB/PMAXUB, PMINSW/PMAXSW, PMULHUW, PSADBW, PSHUFW) and
//! the SSE2 ones (PADDQ, PSUBQ, PMULUDQ). The lane operations are the
//! SSE ones on the low 64 bits of a vector (the upper 64 bits are zero
//! going in and dropped coming out): every one of them works lane by
//! lane, or on 64-bit groups (PSADBW), except the unpacks and packs,
//! which take the vector width.

use super::{binop, check, mm, read_mm, set_mm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::insn::sse::arith::{self, *};
use crate::insn::sse::logic::{self, AND, ANDN, OR, XOR};
use crate::insn::sse::shift::{shift_lanes, SLL, SRA, SRL};
use crate::insn::sse::{cmp, shuffle};
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind};

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Paddb_mm_mmm64 => arith_op::<PADDB>,
        C::Paddw_mm_mmm64 => arith_op::<PADDW>,
        C::Paddd_mm_mmm64 => arith_op::<PADDD>,
        C::Paddq_mm_mmm64 => arith_op::<PADDQ>,
        C::Psubb_mm_mmm64 => arith_op::<PSUBB>,
        C::Psubw_mm_mmm64 => arith_op::<PSUBW>,
        C::Psubd_mm_mmm64 => arith_op::<PSUBD>,
        C::Psubq_mm_mmm64 => arith_op::<PSUBQ>,
        C::Paddsb_mm_mmm64 => arith_op::<PADDSB>,
        C::Paddsw_mm_mmm64 => arith_op::<PADDSW>,
        C::Paddusb_mm_mmm64 => arith_op::<PADDUSB>,
        C::Paddusw_mm_mmm64 => arith_op::<PADDUSW>,
        C::Psubsb_mm_mmm64 => arith_op::<PSUBSB>,
        C::Psubsw_mm_mmm64 => arith_op::<PSUBSW>,
        C::Psubusb_mm_mmm64 => arith_op::<PSUBUSB>,
        C::Psubusw_mm_mmm64 => arith_op::<PSUBUSW>,
        C::Pmullw_mm_mmm64 => arith_op::<PMULLW>,
        C::Pmulhw_mm_mmm64 => arith_op::<PMULHW>,
        C::Pmulhuw_mm_mmm64 => arith_op::<PMULHUW>,
        C::Pmuludq_mm_mmm64 => arith_op::<PMULUDQ>,
        C::Pmaddwd_mm_mmm64 => arith_op::<PMADDWD>,
        C::Psadbw_mm_mmm64 => arith_op::<PSADBW>,
        C::Pavgb_mm_mmm64 => arith_op::<PAVGB>,
        C::Pavgw_mm_mmm64 => arith_op::<PAVGW>,
        C::Pminub_mm_mmm64 => arith_op::<PMINUB>,
        C::Pmaxub_mm_mmm64 => arith_op::<PMAXUB>,
        C::Pminsw_mm_mmm64 => arith_op::<PMINSW>,
        C::Pmaxsw_mm_mmm64 => arith_op::<PMAXSW>,
        C::Pcmpeqb_mm_mmm64 => pcmp::<false, 8>,
        C::Pcmpeqw_mm_mmm64 => pcmp::<false, 16>,
        C::Pcmpeqd_mm_mmm64 => pcmp::<false, 32>,
        C::Pcmpgtb_mm_mmm64 => pcmp::<true, 8>,
        C::Pcmpgtw_mm_mmm64 => pcmp::<true, 16>,
        C::Pcmpgtd_mm_mmm64 => pcmp::<true, 32>,
        C::Pand_mm_mmm64 => logic_op::<AND>,
        C::Pandn_mm_mmm64 => logic_op::<ANDN>,
        C::Por_mm_mmm64 => logic_op::<OR>,
        C::Pxor_mm_mmm64 => logic_op::<XOR>,
        C::Psllw_mm_mmm64 | C::Psllw_mm_imm8 => pshift::<SLL, 16>,
        C::Pslld_mm_mmm64 | C::Pslld_mm_imm8 => pshift::<SLL, 32>,
        C::Psllq_mm_mmm64 | C::Psllq_mm_imm8 => pshift::<SLL, 64>,
        C::Psrlw_mm_mmm64 | C::Psrlw_mm_imm8 => pshift::<SRL, 16>,
        C::Psrld_mm_mmm64 | C::Psrld_mm_imm8 => pshift::<SRL, 32>,
        C::Psrlq_mm_mmm64 | C::Psrlq_mm_imm8 => pshift::<SRL, 64>,
        C::Psraw_mm_mmm64 | C::Psraw_mm_imm8 => pshift::<SRA, 16>,
        C::Psrad_mm_mmm64 | C::Psrad_mm_imm8 => pshift::<SRA, 32>,
        C::Punpcklbw_mm_mmm32 => unpck::<false, 8>,
        C::Punpcklwd_mm_mmm32 => unpck::<false, 16>,
        C::Punpckldq_mm_mmm32 => unpck::<false, 32>,
        C::Punpckhbw_mm_mmm64 => unpck::<true, 8>,
        C::Punpckhwd_mm_mmm64 => unpck::<true, 16>,
        C::Punpckhdq_mm_mmm64 => unpck::<true, 32>,
        C::Packsswb_mm_mmm64 => pack::<true, 16>,
        C::Packssdw_mm_mmm64 => pack::<true, 32>,
        C::Packuswb_mm_mmm64 => pack::<false, 16>,
        C::Pshufw_mm_mmm64_imm8 => pshufw,
        _ => return None,
    })
}

/// The arithmetic of sse/arith.rs on MM registers.
fn arith_op<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| arith::compute(OP, a, b))
}

/// PCMPEQ (`GT` = false) / PCMPGT mm, mm/m64.
fn pcmp<const GT: bool, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| cmp::compare(GT, W, a, b))
}

/// PAND, PANDN, POR, PXOR mm, mm/m64.
fn logic_op<const OP: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| logic::compute(OP, a, b))
}

/// PSLL/PSRL/PSRA mm, mm/m64 (the count is all 64 bits) or mm, imm8.
fn pshift<const OP: u8, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let count = match insn.op1_kind() {
        OpKind::Immediate8 => u64::from(insn.immediate8()),
        _ => read_mm(cpu, plat, insn, 1)?,
    };
    let d = insn.op0_register();
    let v = u128::from(mm(cpu, d));
    set_mm(cpu, d, shift_lanes(OP, W, v, count) as u64);
    Ok(())
}

/// PUNPCKL (mm, mm/m32: only the low halves are used) and PUNPCKH
/// (mm, mm/m64).
fn unpck<const HIGH: bool, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| {
        shuffle::unpack_lanes(HIGH, W, 64, a, b)
    })
}

/// PACKSSWB / PACKSSDW (`SIGNED`), PACKUSWB mm, mm/m64.
fn pack<const SIGNED: bool, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| {
        shuffle::pack_lanes(SIGNED, W, 64, a, b)
    })
}

/// PSHUFW mm, mm/m64, imm8: PSHUFLW's word selection on 64 bits.
fn pshufw(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let imm = insn.immediate8();
    binop(cpu, plat, insn, |_, b| {
        shuffle::shuffle(shuffle::PSHUFLW, b, imm)
    })
}
