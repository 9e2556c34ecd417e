//! The SSE state instructions: LDMXCSR, STMXCSR, FXSAVE, FXRSTOR.
//!
//! # The x87 part
//!
//! The x87 fields of the image (SDM Vol. 1, Table 10-2: FCW, FSW,
//! abridged FTW, FOP, FIP/FCS, FDP/FDS, ST0-ST7 in 16-byte slots) are
//! built and parsed by `insn::x87::{fx_put, fx_load}`. MXCSR_MASK is
//! [`MXCSR_MASK`]. Bytes 416-511 (reserved and software-available) are
//! not written.
//!
//! XMM8-XMM15 are saved and restored only in 64-bit mode (they do not
//! exist elsewhere). The REX.W forms (FXSAVE64/FXRSTOR64) differ only in
//! the x87 pointer format (64-bit FIP/FDP, no selectors).

use super::{check, probe_write, read_lin128};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::memory::{canonical, seg_fault};
use crate::operand::{addr_mask, sreg_of};
use crate::platform::Platform;
use crate::state::{cr0, SegReg, MXCSR_MASK};
use iced_x86::{Code, Instruction, Register};
use mmu::AccessKind;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Ldmxcsr_m32 => ldmxcsr,
        C::Stmxcsr_m32 => stmxcsr,
        C::Fxsave_m512byte | C::Fxsave64_m512byte => fxsave,
        C::Fxrstor_m512byte | C::Fxrstor64_m512byte => fxrstor,
        _ => return None,
    })
}

/// Offsets in the FXSAVE image.
pub(crate) mod fx {
    pub const MXCSR: u64 = 24;
    pub const MXCSR_MASK: u64 = 28;
    pub const ST0: u64 = 32;
    pub const XMM0: u64 = 160;
    /// Bytes the processor writes (0-415).
    pub const WRITTEN: u64 = 416;
}

/// LDMXCSR m32: #GP(0) if a reserved bit is set.
pub(crate) fn ldmxcsr(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = cpu.read_m::<4>(plat, insn)? as u32;
    if v & !MXCSR_MASK != 0 {
        return Err(Fault::gp0());
    }
    cpu.state.mxcsr = v;
    Ok(())
}

/// STMXCSR m32.
pub(crate) fn stmxcsr(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = u64::from(cpu.state.mxcsr);
    cpu.write_m::<4>(plat, insn, v)
}

/// FXSAVE/FXRSTOR availability (SDM Vol. 2, FXSAVE "Protected Mode
/// Exceptions"): #NM if CR0.TS or CR0.EM — not #UD for EM, and CR4.OSFXSR
/// is not required (without it, whether the XMM state is saved is
/// implementation-specific; ringside always saves it). Then segmentation
/// (or the canonical check) over the whole 512-byte area, and 16-byte
/// alignment (#GP(0)). Returns the linear address of the area.
fn fx_area(cpu: &Cpu, insn: &Instruction, kind: AccessKind) -> Result<u64, Fault> {
    if cpu.state.cr0 & (cr0::TS | cr0::EM) != 0 {
        return Err(Fault::NM);
    }
    // `operand_lin` takes the size as a u8: the first 255 bytes there,
    // the rest below.
    let lin = cpu.operand_lin(insn, 255, kind)?;
    let off = cpu.ea(insn);
    let am = addr_mask(insn);
    if cpu.in_long64() {
        let last = lin.wrapping_add(511);
        if !canonical(last) {
            // As `operand_lin`: #SS(0) for an RSP/RBP base without an
            // FS/GS override, #GP(0) otherwise.
            let stack = !matches!(insn.segment_prefix(), Register::FS | Register::GS)
                && matches!(
                    insn.memory_base(),
                    Register::RSP | Register::RBP | Register::ESP | Register::EBP
                );
            return Err(seg_fault(if stack { SegReg::Ss } else { SegReg::Ds }));
        }
    } else {
        let seg = sreg_of(insn.memory_segment());
        cpu.seg_lin(seg, off.wrapping_add(255) & am, 255, kind)?;
        cpu.seg_lin(seg, off.wrapping_add(510) & am, 2, kind)?;
    }
    if lin & 15 != 0 {
        return Err(Fault::gp0());
    }
    Ok(lin)
}

/// XMM registers in the FXSAVE image: 16 in 64-bit mode, 8 elsewhere.
fn xmm_count(cpu: &Cpu) -> usize {
    if cpu.in_long64() {
        16
    } else {
        8
    }
}

/// FXSAVE / FXSAVE64 m512byte.
pub(crate) fn fxsave(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let lin = fx_area(cpu, insn, AccessKind::Write)?;
    probe_write(cpu, lin, fx::WRITTEN)?;
    let user = cpu.user_mode();
    let mask = cpu.lin_mask();
    let mut img = [0u64; (fx::WRITTEN / 8) as usize];
    let mut put = |off: u64, v: u64| {
        if let Some(q) = img.get_mut((off / 8) as usize) {
            *q |= v << (8 * (off % 8));
        }
    };
    crate::insn::x87::fx_put(
        &cpu.state.x87,
        insn.code() == Code::Fxsave64_m512byte,
        &mut put,
    );
    put(fx::MXCSR, u64::from(cpu.state.mxcsr));
    put(fx::MXCSR_MASK, u64::from(MXCSR_MASK));
    for (i, x) in cpu.state.xmm.iter().enumerate().take(xmm_count(cpu)) {
        let off = fx::XMM0 + 16 * i as u64;
        put(off, *x as u64);
        put(off + 8, (*x >> 64) as u64);
    }
    for (k, q) in img.iter().enumerate() {
        let off = 8 * k as u64;
        // Without XMM8-15 (outside 64-bit mode) their slots are left as
        // they are.
        if off >= fx::XMM0 + 16 * xmm_count(cpu) as u64 {
            break;
        }
        cpu.write_lin::<8>(plat, lin.wrapping_add(off) & mask, *q, user)?;
    }
    Ok(())
}

/// FXRSTOR / FXRSTOR64 m512byte: MXCSR (#GP(0) for reserved bits, before
/// anything changes) and the XMM registers.
pub(crate) fn fxrstor(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let lin = fx_area(cpu, insn, AccessKind::Read)?;
    let user = cpu.user_mode();
    let mask = cpu.lin_mask();
    let mxcsr = cpu.read_lin::<4>(plat, lin.wrapping_add(fx::MXCSR) & mask, user)? as u32;
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(Fault::gp0());
    }
    let mut x87_img = [0u64; 4];
    for (k, q) in x87_img.iter_mut().enumerate() {
        *q = cpu.read_lin::<8>(plat, lin.wrapping_add(8 * k as u64) & mask, user)?;
    }
    let mut regs = [crate::state::F80::default(); 8];
    for (i, r) in regs.iter_mut().enumerate() {
        *r = crate::insn::x87::read_lin80(
            cpu,
            plat,
            lin.wrapping_add(fx::ST0 + 16 * i as u64) & mask,
        )?;
    }
    let n = xmm_count(cpu);
    let mut xmm = cpu.state.xmm;
    for (i, x) in xmm.iter_mut().enumerate().take(n) {
        *x = read_lin128(cpu, plat, lin.wrapping_add(fx::XMM0 + 16 * i as u64) & mask)?;
    }
    // The last byte of the area must be readable too (#PF on the area's
    // last page even though ringside reads nothing there).
    cpu.read_lin::<1>(plat, lin.wrapping_add(511) & mask, user)?;
    cpu.state.xmm = xmm;
    cpu.state.mxcsr = mxcsr;
    let w64 = insn.code() == Code::Fxrstor64_m512byte;
    crate::insn::x87::fx_load(&mut cpu.state.x87, &x87_img, &regs, w64);
    Ok(())
}
