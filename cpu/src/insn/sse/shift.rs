//! Packed shifts (SSE2): PSLLW/D/Q, PSRLW/D/Q, PSRAW/D by the low 64 bits
//! of an XMM register or m128, or by imm8; and the whole-register byte
//! shifts PSLLDQ/PSRLDQ (imm8). A logical shift by more than the lane
//! width minus one clears the lane; an arithmetic one fills it with the
//! sign (the count saturates, it is not masked).

use super::{check, from_lanes, lane, read_xm128, set_xmm, sx, xmm};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction, OpKind};

pub(crate) const SLL: u8 = 0;
pub(crate) const SRL: u8 = 1;
pub(crate) const SRA: u8 = 2;

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Psllw_xmm_xmmm128 | C::Psllw_xmm_imm8 => pshift::<SLL, 16>,
        C::Pslld_xmm_xmmm128 | C::Pslld_xmm_imm8 => pshift::<SLL, 32>,
        C::Psllq_xmm_xmmm128 | C::Psllq_xmm_imm8 => pshift::<SLL, 64>,
        C::Psrlw_xmm_xmmm128 | C::Psrlw_xmm_imm8 => pshift::<SRL, 16>,
        C::Psrld_xmm_xmmm128 | C::Psrld_xmm_imm8 => pshift::<SRL, 32>,
        C::Psrlq_xmm_xmmm128 | C::Psrlq_xmm_imm8 => pshift::<SRL, 64>,
        C::Psraw_xmm_xmmm128 | C::Psraw_xmm_imm8 => pshift::<SRA, 16>,
        C::Psrad_xmm_xmmm128 | C::Psrad_xmm_imm8 => pshift::<SRA, 32>,
        C::Pslldq_xmm_imm8 => byte_shift::<true>,
        C::Psrldq_xmm_imm8 => byte_shift::<false>,
        _ => return None,
    })
}

/// Shift every `W`-bit lane of `v` by `count`.
pub(crate) fn shift_lanes(op: u8, w: u32, v: u128, count: u64) -> u128 {
    from_lanes(w, |i| {
        let x = lane(v, w, i);
        match op {
            SLL if count < u64::from(w) => x << count,
            SRL if count < u64::from(w) => x >> count,
            SRA => (sx(x, w) >> count.min(u64::from(w) - 1)) as u64,
            _ => 0,
        }
    })
}

/// PSLL/PSRL/PSRA xmm, xmm/m128 or xmm, imm8.
pub(crate) fn pshift<const OP: u8, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let count = match insn.op1_kind() {
        OpKind::Immediate8 => u64::from(insn.immediate8()),
        _ => read_xm128(cpu, plat, insn, 1, true)? as u64,
    };
    let d = insn.op0_register();
    let v = xmm(cpu, d);
    set_xmm(cpu, d, shift_lanes(OP, W, v, count));
    Ok(())
}

/// PSLLDQ (`LEFT`) / PSRLDQ xmm, imm8: shift the register by imm8 bytes;
/// more than 15 clears it.
pub(crate) fn byte_shift<const LEFT: bool>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    check(cpu)?;
    let n = u32::from(insn.immediate8());
    let d = insn.op0_register();
    let v = xmm(cpu, d);
    let r = match (n, LEFT) {
        (16.., _) => 0,
        (_, true) => v << (8 * n),
        (_, false) => v >> (8 * n),
    };
    set_xmm(cpu, d, r);
    Ok(())
}
