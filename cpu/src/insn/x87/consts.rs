//! The constant loads: FLD1, FLDZ, FLDPI, FLDL2E, FLDL2T, FLDLG2,
//! FLDLN2. The processor holds each constant with more than 64 bits and
//! rounds it to 64 per RC (PC does not apply; no PE is signalled: SDM
//! Vol. 1, 8.3.8). Here the constants have 128 bits, so every rounding
//! is the correctly rounded one — which is what the 66-bit internal
//! constants give too, as none of them has bits 65-66 both zero.

use super::env;
use super::softfloat;
use super::stack::push;
use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::F80;
use iced_x86::{Code, Instruction};

/// (unbiased exponent, 128-bit significand) of each constant.
const L2T: (i32, u128) = (1, 0xd49a_784b_cd1b_8afe_492b_f6ff_4daf_db4c);
const L2E: (i32, u128) = (0, 0xb8aa_3b29_5c17_f0bb_be87_fed0_691d_3e88);
const PI: (i32, u128) = (1, 0xc90f_daa2_2168_c234_c4c6_628b_80dc_1cd1);
const LG2: (i32, u128) = (-2, 0x9a20_9a84_fbcf_f798_8f89_59ac_0b7c_9178);
const LN2: (i32, u128) = (-1, 0xb172_17f7_d1cf_79ab_c9e3_b398_03f2_f6af);

pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Fld1 => fld_const::<1>,
        C::Fldz => fld_const::<0>,
        C::Fldl2t => fld_const::<2>,
        C::Fldl2e => fld_const::<3>,
        C::Fldpi => fld_const::<4>,
        C::Fldlg2 => fld_const::<5>,
        C::Fldln2 => fld_const::<6>,
        _ => return None,
    })
}

/// The constant `k` rounded per RC `rc`.
pub(crate) fn constant(k: u8, rc: u8) -> F80 {
    let (e, sig) = match k {
        0 => return F80::ZERO,
        1 => return F80::ONE,
        2 => L2T,
        3 => L2E,
        4 => PI,
        5 => LG2,
        _ => LN2,
    };
    let mut en = softfloat::Env::from_fcw(0x037f | (u16::from(rc & 3) << 10));
    softfloat::round_exact(&mut en, false, e, sig)
}

fn fld_const<const K: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let mut x = super::begin(cpu, insn)?;
    let rc = env(&x).rc;
    push(&mut x, constant(K, rc));
    cpu.state.x87 = x;
    Ok(())
}
