//! FSGSBASE: RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE r32/r64 (SDM Vol. 2;
//! CPUID.(EAX=7,ECX=0):EBX.FSGSBASE[0]).
//!
//! They read or write the FS/GS segment base directly, at any privilege
//! level, in 64-bit mode only, once CR4.FSGSBASE is set:
//! * #UD outside 64-bit mode (the encodings do not exist there) or with
//!   CR4.FSGSBASE = 0;
//! * RD r32 stores the low 32 bits of the base, zero-extended; RD r64 the
//!   whole base;
//! * WR r32 loads the zero-extended 32-bit value; WR r64 raises #GP(0)
//!   for a non-canonical value (48-bit linear addresses). The selector
//!   and the rest of the segment are left as they are.
//!
//! (iced decodes a LOCK prefix on these as an invalid instruction, #UD.)

use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::memory::canonical;
use crate::platform::Platform;
use crate::state::{cr4, SegReg};
use iced_x86::{Code, Instruction};

const FS: bool = false;
const GS: bool = true;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Rdfsbase_r32 => rd::<FS, 4>,
        C::Rdfsbase_r64 => rd::<FS, 8>,
        C::Rdgsbase_r32 => rd::<GS, 4>,
        C::Rdgsbase_r64 => rd::<GS, 8>,
        C::Wrfsbase_r32 => wr::<FS, 4>,
        C::Wrfsbase_r64 => wr::<FS, 8>,
        C::Wrgsbase_r32 => wr::<GS, 4>,
        C::Wrgsbase_r64 => wr::<GS, 8>,
        _ => return None,
    })
}

/// #UD unless 64-bit mode with CR4.FSGSBASE = 1.
fn check(cpu: &Cpu) -> Result<(), Fault> {
    if !cpu.in_long64() || cpu.state.cr4 & cr4::FSGSBASE == 0 {
        return Err(Fault::UD);
    }
    Ok(())
}

fn seg(gs: bool) -> SegReg {
    if gs {
        SegReg::Gs
    } else {
        SegReg::Fs
    }
}

/// RDFSBASE / RDGSBASE.
fn rd<const GS_: bool, const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let base = cpu.state.sreg(seg(GS_)).base;
    cpu.set_reg::<SZ>(insn.op0_register(), base);
    Ok(())
}

/// WRFSBASE / WRGSBASE.
fn wr<const GS_: bool, const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let v = cpu.reg::<SZ>(insn.op0_register());
    if SZ == 8 && !canonical(v) {
        return Err(Fault::gp0());
    }
    cpu.state.sreg_mut(seg(GS_)).base = v;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core_tests::Machine;
    use iced_x86::Register;

    fn run(m: &mut Machine, code: Code, r: Register) -> Result<(), Fault> {
        let insn = Instruction::with1(code, r).unwrap();
        let h = select(code).unwrap();
        h(&mut m.cpu, &mut m.plat, &insn)
    }

    #[test]
    fn read_write_and_faults() {
        let mut m = Machine::long64();
        m.cpu.state.gpr[0] = 0xffff_8000_1234_5678;
        // CR4.FSGSBASE = 0: #UD.
        assert_eq!(
            run(&mut m, Code::Wrfsbase_r64, Register::RAX),
            Err(Fault::UD)
        );
        m.cpu.state.cr4 |= cr4::FSGSBASE;
        assert_eq!(run(&mut m, Code::Wrfsbase_r64, Register::RAX), Ok(()));
        assert_eq!(m.cpu.state.sreg(SegReg::Fs).base, 0xffff_8000_1234_5678);
        // RD r32: low half, zero-extended; RD r64: all of it.
        m.cpu.state.gpr[1] = u64::MAX;
        run(&mut m, Code::Rdfsbase_r32, Register::ECX).unwrap();
        assert_eq!(m.cpu.state.gpr[1], 0x1234_5678);
        run(&mut m, Code::Rdfsbase_r64, Register::RCX).unwrap();
        assert_eq!(m.cpu.state.gpr[1], 0xffff_8000_1234_5678);
        // WR r32 zero-extends; WR r64 non-canonical: #GP(0), unchanged.
        m.cpu.state.gpr[2] = 0xdead_beef_8765_4321;
        run(&mut m, Code::Wrgsbase_r32, Register::EDX).unwrap();
        assert_eq!(m.cpu.state.sreg(SegReg::Gs).base, 0x8765_4321);
        assert_eq!(
            run(&mut m, Code::Wrgsbase_r64, Register::RDX),
            Err(Fault::gp0())
        );
        assert_eq!(m.cpu.state.sreg(SegReg::Gs).base, 0x8765_4321);
        run(&mut m, Code::Rdgsbase_r64, Register::RBX).unwrap();
        assert_eq!(m.cpu.state.gpr[3], 0x8765_4321);
        // Outside 64-bit mode: #UD.
        let mut p = Machine::prot32();
        p.cpu.state.cr4 |= cr4::FSGSBASE;
        assert_eq!(
            run(&mut p, Code::Rdfsbase_r32, Register::EAX),
            Err(Fault::UD)
        );
    }
}
