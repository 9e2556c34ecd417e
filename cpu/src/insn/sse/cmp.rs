//! Packed integer compares (SSE2): PCMPEQB/W/D and the signed
//! PCMPGTB/W/D. Each lane becomes all ones (true) or zero.

use super::{binop, map2, sx};
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use iced_x86::{Code, Instruction};

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Pcmpeqb_xmm_xmmm128 => pcmp::<false, 8>,
        C::Pcmpeqw_xmm_xmmm128 => pcmp::<false, 16>,
        C::Pcmpeqd_xmm_xmmm128 => pcmp::<false, 32>,
        C::Pcmpgtb_xmm_xmmm128 => pcmp::<true, 8>,
        C::Pcmpgtw_xmm_xmmm128 => pcmp::<true, 16>,
        C::Pcmpgtd_xmm_xmmm128 => pcmp::<true, 32>,
        _ => return None,
    })
}

/// PCMPEQ (`gt` = false) or PCMPGT on `w`-bit lanes of `a` (destination)
/// and `b` (source); also the MMX forms (on the low 64 bits).
pub(crate) fn compare(gt: bool, w: u32, a: u128, b: u128) -> u128 {
    map2(w, a, b, |x, y| {
        let t = if gt { sx(x, w) > sx(y, w) } else { x == y };
        if t {
            u64::MAX
        } else {
            0
        }
    })
}

/// PCMPEQ (`GT` = false) or PCMPGT on `W`-bit lanes.
pub(crate) fn pcmp<const GT: bool, const W: u32>(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    binop(cpu, plat, insn, |a, b| compare(GT, W, a, b))
}
