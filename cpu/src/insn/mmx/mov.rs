//! MMX data movement: MOVD/MOVQ between MM registers, GPRs and memory,
//! MOVNTQ (an ordinary store: ringside has no caches), MOVQ2DQ/MOVDQ2Q,
//! PMOVMSKB r, mm, PEXTRW/PINSRW with an MM register, the byte-masked
//! stores MASKMOVQ and MASKMOVDQU, and EMMS.

use super::{check, check_xmm, enter, mm, set_mm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::insn::sse::{self, lane, probe_write, xmm};
use crate::operand::{size_mask, sreg_of};
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind, Register};
use mmu::AccessKind;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Movd_mm_rm32 => movd_to_mm::<4>,
        C::Movq_mm_rm64 => movd_to_mm::<8>,
        C::Movq_mm_mmm64 => movd_to_mm::<8>,
        C::Movd_rm32_mm => movd_from_mm::<4>,
        C::Movq_rm64_mm | C::Movq_mmm64_mm | C::Movntq_m64_mm => movd_from_mm::<8>,
        C::Movq2dq_xmm_mm => movq2dq,
        C::Movdq2q_mm_xmm => movdq2q,
        C::Pmovmskb_r32_mm | C::Pmovmskb_r64_mm => pmovmskb,
        C::Pextrw_r32_mm_imm8 | C::Pextrw_r64_mm_imm8 => pextrw,
        C::Pinsrw_mm_r32m16_imm8 | C::Pinsrw_mm_r64m16_imm8 => pinsrw,
        C::Maskmovq_rDI_mm_mm => maskmov::<8>,
        C::Maskmovdqu_rDI_xmm_xmm => maskmov::<16>,
        C::Emms => emms,
        _ => return None,
    })
}

/// Write a GPR of 4 or 8 bytes (a 32-bit write zero-extends).
fn set_gpr_sized(cpu: &mut Cpu, r: Register, v: u64) {
    if r.size() == 8 {
        cpu.set_reg::<8>(r, v);
    } else {
        cpu.set_reg::<4>(r, v);
    }
}

/// MOVD mm, r/m32 (zero-extended), MOVQ mm, r/m64 and MOVQ mm, mm/m64.
fn movd_to_mm<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = match insn.op1_kind() {
        OpKind::Register if insn.op1_register().is_mm() => mm(cpu, insn.op1_register()),
        _ => cpu.read_op::<SZ>(plat, insn, 1)?,
    };
    set_mm(cpu, insn.op0_register(), v);
    Ok(())
}

/// MOVD r/m32, mm; MOVQ r/m64, mm; MOVQ mm/m64, mm; MOVNTQ m64, mm. A
/// store that faults makes no transition (measured on the AMD host for
/// #PF; unlike MASKMOVQ).
fn movd_from_mm<const SZ: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = mm(cpu, insn.op1_register());
    match insn.op0_kind() {
        OpKind::Register if insn.op0_register().is_mm() => set_mm(cpu, insn.op0_register(), v),
        _ => {
            cpu.write_op::<SZ>(plat, insn, 0, v & size_mask(SZ))?;
            enter(cpu);
        }
    }
    Ok(())
}

/// MOVQ2DQ xmm, mm: the MM register, zero-extended.
fn movq2dq(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_xmm(cpu, true)?;
    let v = mm(cpu, insn.op1_register());
    sse::set_xmm(cpu, insn.op0_register(), u128::from(v));
    enter(cpu);
    Ok(())
}

/// MOVDQ2Q mm, xmm: the low quadword.
fn movdq2q(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check_xmm(cpu, true)?;
    let v = xmm(cpu, insn.op1_register()) as u64;
    set_mm(cpu, insn.op0_register(), v);
    Ok(())
}

/// PMOVMSKB r32/r64, mm: the sign bit of each byte, zero-extended.
fn pmovmskb(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let v = u128::from(mm(cpu, insn.op1_register()));
    let m = (0..8).fold(0u64, |m, i| m | ((lane(v, 8, i) >> 7) << i));
    set_gpr_sized(cpu, insn.op0_register(), m);
    enter(cpu);
    Ok(())
}

/// PEXTRW r32/r64, mm, imm8: word imm8[1:0], zero-extended.
fn pextrw(cpu: &mut Cpu, _plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let v = u128::from(mm(cpu, insn.op1_register()));
    let w = lane(v, 16, u32::from(insn.immediate8() & 3));
    set_gpr_sized(cpu, insn.op0_register(), w);
    enter(cpu);
    Ok(())
}

/// PINSRW mm, r32/m16, imm8: replace word imm8[1:0].
fn pinsrw(cpu: &mut Cpu, plat: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    let w = match insn.op1_kind() {
        OpKind::Register => cpu.reg::<4>(insn.op1_register()) & 0xffff,
        _ => cpu.read_m::<2>(plat, insn)?,
    };
    let k = 16 * u32::from(insn.immediate8() & 3);
    let d = insn.op0_register();
    let old = mm(cpu, d);
    set_mm(cpu, d, (old & !(0xffff << k)) | (w << k));
    Ok(())
}

/// MASKMOVQ mm1, mm2 (`LEN` = 8) and MASKMOVDQU xmm1, xmm2 (16): store
/// the bytes of the first register whose mask byte (second register) has
/// its top bit set, at DS:rDI (the segment can be overridden; the
/// address size is rDI's, 0x67 makes it EDI). Bytes not selected are not
/// written.
///
/// The access is checked (segmentation, then paging for writing, both
/// pages when it crosses one) for the whole `LEN` bytes whatever the
/// mask, even an all-zero mask: the SDM leaves the fault behaviour of a
/// zero mask to the implementation, and this is what the host CPU of the
/// differential tests (AMD) does.
///
/// MASKMOVQ makes the x87-to-MMX transition (TOP = 0, tags valid) before
/// its store, so a store that faults leaves it made: measured on the AMD
/// host for #PF (every page-fault kind, any mask); ringside does the same
/// for a segmentation fault (#GP/#SS), which kvm-pvm cannot measure.
fn maskmov<const LEN: u8>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let (data, mask) = if LEN == 8 {
        check(cpu)?;
        let v = (
            u128::from(mm(cpu, insn.op1_register())),
            u128::from(mm(cpu, insn.op2_register())),
        );
        enter(cpu);
        v
    } else {
        sse::check(cpu)?;
        (xmm(cpu, insn.op1_register()), xmm(cpu, insn.op2_register()))
    };
    let asz = if insn.op0_kind() == OpKind::MemorySegEDI {
        4
    } else {
        8
    };
    let off = cpu.state.gpr[7] & size_mask(asz);
    let seg = sreg_of(insn.memory_segment());
    let lin = cpu.seg_lin(seg, off, LEN, AccessKind::Write)?;
    // #AC as for any 8-byte store (MASKMOVDQU: none, as the other
    // 16-byte legacy SSE accesses), before paging.
    if LEN == 8 && cpu.mode.ac && lin & 7 != 0 {
        return Err(Fault::ac());
    }
    probe_write(cpu, lin, u64::from(LEN))?;
    let user = cpu.user_mode();
    let lmask = cpu.lin_mask();
    for i in 0..u32::from(LEN) {
        if lane(mask, 8, i) & 0x80 != 0 {
            let b = lane(data, 8, i);
            cpu.write_lin::<1>(plat, lin.wrapping_add(u64::from(i)) & lmask, b, user)?;
        }
    }
    Ok(())
}

/// EMMS: tag all x87 registers empty and set TOP to 0 (SDM Vol. 1,
/// Table 9-2 "Effects of MMX Instructions on x87 FPU State"; the
/// registers are unchanged). Measured on the AMD host too.
fn emms(cpu: &mut Cpu, _plat: &mut dyn Platform, _insn: &Instruction) -> Result<(), Fault> {
    check(cpu)?;
    enter(cpu);
    cpu.state.x87.ftw = 0;
    Ok(())
}
