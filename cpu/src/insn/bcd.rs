//! Decimal arithmetic adjustments: DAA, DAS, AAA, AAS, AAM, AAD (invalid
//! in 64-bit mode; iced decodes them as invalid there).
//!
//! Flag rules where the SDM leaves flags undefined (ringside's choice):
//! SF, ZF and PF always follow the final AL; OF is cleared; AAM/AAD also
//! clear AF and CF.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::flags::sext;
use crate::platform::Platform;
use crate::state::rflags::AF;
use iced_x86::Instruction;

fn al(cpu: &Cpu) -> u64 {
    cpu.state.gpr[0] & 0xff
}

/// Record SF/ZF/PF from `al` with the given CF and AF, OF = 0.
fn set_flags(cpu: &mut Cpu, al: u64, cf: bool, af: bool) {
    cpu.flags.res = sext(al & 0xff, 8);
    cpu.flags.aux = cf as u64 | if af { AF } else { 0 };
}

/// DAA: decimal adjust AL after addition. (The SDM's intermediate CF of
/// the low-nibble step is always overwritten by the high-nibble step.)
pub(crate) fn daa(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    let old_al = al(cpu);
    let old_cf = cpu.flags.cf();
    let mut a = old_al;
    let af = (a & 0xf) > 9 || cpu.flags.af();
    if af {
        a = (a + 6) & 0xff;
    }
    let cf = old_al > 0x99 || old_cf;
    if cf {
        a = (a + 0x60) & 0xff;
    }
    cpu.set_gpr(0, 1, a);
    set_flags(cpu, a, cf, af);
    Ok(())
}

/// DAS: decimal adjust AL after subtraction.
pub(crate) fn das(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    let old_al = al(cpu);
    let old_cf = cpu.flags.cf();
    let mut a = old_al;
    let mut cf = false;
    let af = if (a & 0xf) > 9 || cpu.flags.af() {
        cf = old_cf || a < 6;
        a = a.wrapping_sub(6) & 0xff;
        true
    } else {
        false
    };
    if old_al > 0x99 || old_cf {
        a = a.wrapping_sub(0x60) & 0xff;
        cf = true;
    }
    cpu.set_gpr(0, 1, a);
    set_flags(cpu, a, cf, af);
    Ok(())
}

/// AAA: ASCII adjust after addition (AX += 0x106 on adjustment).
pub(crate) fn aaa(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    let adjust = (al(cpu) & 0xf) > 9 || cpu.flags.af();
    let mut ax = cpu.state.gpr[0] & 0xffff;
    if adjust {
        ax = (ax + 0x106) & 0xffff;
    }
    ax &= 0xff0f;
    cpu.set_gpr(0, 2, ax);
    set_flags(cpu, ax & 0xff, adjust, adjust);
    Ok(())
}

/// AAS: ASCII adjust after subtraction.
pub(crate) fn aas(cpu: &mut Cpu, _p: &mut dyn Platform, _i: &Instruction) -> Result<(), Fault> {
    let adjust = (al(cpu) & 0xf) > 9 || cpu.flags.af();
    let mut ax = cpu.state.gpr[0] & 0xffff;
    if adjust {
        ax = ax.wrapping_sub(6) & 0xffff;
        ax = ax.wrapping_sub(0x100) & 0xffff;
    }
    ax &= 0xff0f;
    cpu.set_gpr(0, 2, ax);
    set_flags(cpu, ax & 0xff, adjust, adjust);
    Ok(())
}

/// AAM imm8: AH = AL / imm8, AL = AL mod imm8; #DE if imm8 = 0.
pub(crate) fn aam(cpu: &mut Cpu, _p: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let base = insn.immediate8() as u64;
    if base == 0 {
        return Err(Fault::DE);
    }
    let a = al(cpu);
    let ax = ((a / base) << 8) | (a % base);
    cpu.set_gpr(0, 2, ax);
    set_flags(cpu, ax & 0xff, false, false);
    Ok(())
}

/// AAD imm8: AL = AL + AH × imm8, AH = 0.
pub(crate) fn aad(cpu: &mut Cpu, _p: &mut dyn Platform, insn: &Instruction) -> Result<(), Fault> {
    let base = insn.immediate8() as u64;
    let a = al(cpu);
    let h = (cpu.state.gpr[0] >> 8) & 0xff;
    let r = (a + h * base) & 0xff;
    cpu.set_gpr(0, 2, r);
    set_flags(cpu, r, false, false);
    Ok(())
}
