//! Cases for the x87 FPU instructions: a child module of [`super`] (the
//! case generator), reusing its operand placement and addressing.
//!
//! The forms are every legacy x87 Code (CPUID families FPU, FPU387,
//! FPU287) that is valid in 64-bit mode and that the interpreter
//! implements (`cpu::coverage::implemented`), so the suite grows with the
//! interpreter.
//!
//! Each case starts from a random FPU state, loaded by the guest runtime
//! with FRSTOR from `Simd::x87` (see guest.rs) and stored after the case
//! with FNSAVE:
//!
//! * a stack of 0-8 entries at a random TOP (so stack underflow and
//!   overflow happen), sometimes with holes (any register empty), the
//!   empty registers holding garbage;
//! * values: ±0, ±1, ±∞, QNaNs and SNaNs with payloads, the real
//!   indefinite, denormals, pseudo-denormals, unnormals, pseudo-infinities
//!   and pseudo-NaNs, values around the single and double denormal and
//!   overflow thresholds, around 2^15/2^31/2^63 (FIST overflow), integers,
//!   and values whose low significand bits sit at the rounding boundary
//!   of each precision (24/53/64 bits);
//! * FCW with random precision (24/53/64; not the reserved 01) and
//!   rounding control, and mostly all exceptions masked; now and then
//!   random masks, sticky flags already set, or an unmasked exception
//!   already pending (FSW.ES), which raises #MF at the case's first
//!   waiting instruction.
//!
//! A case whose FCW unmasks an exception (or that loads a new FCW/state:
//! FLDCW, FLDENV, FRSTOR) is followed by FWAIT, so that an exception the
//! instruction leaves pending is delivered as #MF at a defined point
//! (the runtime's FNSAVE does not wait; CR0.NE = 1).
//!
//! Memory operands: m16/m32/m64 integers, m32/m64/m80 reals, m2byte
//! control words, 14/28-byte environments and 94/108-byte states, aligned,
//! misaligned, page-crossing, or faulting (#PF, non-canonical, unmapped).

use super::{place_operand, put_bytes, solve_address, value, Form, Generator, Op, R64};
use crate::difftest::batch::Alloc;
use crate::difftest::case::{decode_all, x87img, Case, MemTarget, Simd, Window, X87_IMAGE};
use crate::difftest::guest;
use crate::difftest::rng::Rng;
use iced_x86::{
    Code, CpuidFeature, Encoder, EncodingKind, MemoryOperand, MemorySize, Mnemonic,
    OpCodeOperandKind as K, Register,
};

/// Does this generator own `code` (an x87 Code)?
fn is_x87(code: Code) -> bool {
    code.cpuid_features().iter().any(|f| {
        matches!(
            f,
            CpuidFeature::FPU | CpuidFeature::FPU387 | CpuidFeature::FPU287
        )
    })
}

fn supported(k: K) -> bool {
    matches!(k, K::st0 | K::sti_opcode | K::mem | K::ax)
}

/// The x87 forms the interpreter implements.
pub(super) fn forms() -> Vec<Form> {
    Code::values()
        .filter(|&c| is_x87(c))
        .filter_map(|code| {
            let op = code.op_code();
            if !op.is_instruction() || !op.mode64() || op.encoding() != EncodingKind::Legacy {
                return None;
            }
            if !cpu::coverage::implemented(code) {
                return None;
            }
            let kinds = op.op_kinds().to_vec();
            if !kinds.iter().all(|k| supported(*k)) {
                return None;
            }
            Some(Form {
                code,
                kinds,
                lockable: false,
            })
        })
        .collect()
}

/// Is `case` one of this generator's (possibly more than one
/// instruction: a WAIT-prefixed form decodes as WAIT + the FN form, and
/// a trailing FWAIT)?
#[cfg(test)]
pub fn sequence(case: &Case) -> bool {
    case.note.starts_with("x87 ")
}

pub(super) fn try_case(
    gen: &mut Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Option<Case>> {
    if !is_x87(form.code) {
        return None;
    }
    Some(build_case(gen, rng, form, index, alloc))
}

const ST: [Register; 8] = {
    use Register::*;
    [ST0, ST1, ST2, ST3, ST4, ST5, ST6, ST7]
};

/// An 80-bit value: (sign and exponent, significand).
type F80 = (u16, u64);

const J: u64 = 1 << 63;
const BIAS: u16 = 0x3fff;

/// The significand with its low `k` bits (below a precision of 64 - k
/// bits) set to a rounding-boundary pattern.
fn boundary(rng: &mut Rng, sig: u64, k: u32) -> u64 {
    if k == 0 {
        return sig;
    }
    let m = (1u64 << k) - 1;
    let half = 1u64 << (k - 1);
    let low = match rng.below(6) {
        0 => 0,
        1 => half,
        2 => half - 1,
        3 => half + 1,
        4 => m,
        _ => 1,
    };
    (sig & !m) | low
}

/// An edge-biased extended-precision value.
fn f80(rng: &mut Rng) -> F80 {
    let sign = if rng.chance(1, 2) { 0x8000 } else { 0 };
    let rsig = rng.next_u64();
    let payload = rsig & ((1 << 62) - 1);
    let (e, s): (u16, u64) = match rng.below(24) {
        0 => (0, 0),
        1 => (BIAS, J),
        2 => (0x7fff, J),
        3 => (0x7fff, J | (1 << 62) | payload),
        4 => (0x7fff, J | payload.max(1)),
        5 => (0x7fff, J | (1 << 62)),
        6 => (0, (rsig & !J).max(1)),
        7 => (0, J | rsig),
        8 => (1 + rng.below(0x7ffe) as u16, rsig & !J),
        9 => (0x7fff, rsig & !J),
        10 => (BIAS - 126 - rng.below(26) as u16, J | rsig),
        11 => (BIAS - 1022 - rng.below(55) as u16, J | rsig),
        12 => {
            let e = [BIAS + 127, BIAS + 128, BIAS + 1023, BIAS + 1024, 1, 0x7ffe];
            (
                rng.pick(&e).unwrap_or(BIAS) - 1 + rng.below(3) as u16,
                J | rsig,
            )
        }
        13 | 14 => {
            // Around the integer widths: FIST overflow and exact integers.
            let e = BIAS
                + rng
                    .pick(&[14u16, 15, 16, 30, 31, 32, 59, 62, 63, 64])
                    .unwrap_or(63);
            let k = 63u32.saturating_sub(u32::from(e - BIAS));
            let s = J | rsig;
            let s = if rng.chance(1, 2) && k > 0 {
                s & !((1u64 << k) - 1)
            } else {
                s
            };
            if e == BIAS + 59 && rng.chance(1, 2) {
                // 10^18 − 1 (the largest packed BCD magnitude) or 10^18,
                // ± 1/2 or exactly: FBSTP's range limit.
                let n = 999_999_999_999_999_999u64 + rng.below(2);
                let frac = rng.pick(&[0u64, 7, 8, 9]).unwrap_or(0);
                return (sign | e, (n << 4) | frac);
            }
            (e, if rng.chance(1, 4) { J } else { s })
        }
        15..=17 => {
            // The rounding boundary of a precision.
            let k = rng.pick(&[40u32, 11, 1, 0]).unwrap_or(0);
            (BIAS - 8 + rng.below(16) as u16, boundary(rng, J | rsig, k))
        }
        18 => {
            // A small integer.
            let n = 1 + rng.below(100);
            let lz = n.leading_zeros();
            (BIAS + 63 - lz as u16, n << lz)
        }
        19 => (BIAS - 1 + rng.below(3) as u16, J | (rsig >> rng.below(64))),
        _ => (BIAS - 64 + rng.below(128) as u16, J | rsig),
    };
    (sign | e, s)
}

/// The tag of a value (SDM Vol. 1, 8.1.7): 00 valid, 01 zero, 10 special.
fn tag_of(v: F80) -> u16 {
    let e = v.0 & 0x7fff;
    match (e, v.1) {
        (0, 0) => 1,
        (0, _) | (0x7fff, _) => 2,
        (_, s) if s & J == 0 => 2,
        _ => 0,
    }
}

/// A random FCW: precision 24/53/64, any rounding, masks mostly all set.
fn fcw(rng: &mut Rng) -> u16 {
    let masks = if rng.chance(5, 6) {
        0x3f
    } else {
        rng.below(64) as u16
    };
    let pc = rng.pick(&[0u16, 2, 3]).unwrap_or(3) << 8;
    let rc = (rng.below(4) as u16) << 10;
    let ic = if rng.chance(1, 16) { 0x1000 } else { 0 };
    0x40 | masks | pc | rc | ic
}

/// A random FPU state with control word `fcw_v`, as an FNSAVE image
/// (32-bit format).
fn state(rng: &mut Rng, fcw_v: u16) -> [u8; X87_IMAGE] {
    let mut img = [0u8; X87_IMAGE];
    let top = rng.below(8) as u16;
    let depth = rng.below(9) as usize;
    let masks = fcw_v & 0x3f;
    let mut flags = if rng.chance(1, 5) {
        rng.below(128) as u16
    } else {
        0
    };
    // Now and then an unmasked exception already pending.
    if rng.chance(1, 40) && masks != 0x3f {
        flags |= !masks & 0x3f & (1 << rng.below(6));
    }
    let es = if flags & !masks & 0x3f != 0 {
        0x8080
    } else {
        0
    };
    let cc = rng.next_u64() as u16 & 0x4700;
    let fsw = cc | (top << 11) | flags | es;
    let mut ftw = 0u16;
    let mut random_tags = rng.chance(1, 10);
    // Now and then a stack with holes (any register empty or not).
    let holes = rng.chance(1, 8).then(|| rng.below(256));
    for i in 0..8usize {
        let v = f80(rng);
        let phys = (top as usize + i) & 7;
        let full = match holes {
            Some(h) => h & (1 << i) != 0,
            None => i < depth,
        };
        let tag = if full {
            if random_tags && rng.chance(1, 2) {
                random_tags = false;
                rng.below(3) as u16
            } else {
                tag_of(v)
            }
        } else {
            3
        };
        ftw |= tag << (2 * phys);
        let o = x87img::ST + 10 * i;
        img[o..o + 8].copy_from_slice(&v.1.to_le_bytes());
        img[o + 8..o + 10].copy_from_slice(&v.0.to_le_bytes());
    }
    img[x87img::FCW..x87img::FCW + 2].copy_from_slice(&fcw_v.to_le_bytes());
    img[x87img::FSW..x87img::FSW + 2].copy_from_slice(&fsw.to_le_bytes());
    img[x87img::FTW..x87img::FTW + 2].copy_from_slice(&ftw.to_le_bytes());
    img
}

/// A value in the domain where a transcendental is defined and
/// interesting (the SDM's ranges: F2XM1 |x| ≤ 1, FYL2XP1
/// |x| < 1 − √2/2, FSIN… |x| < 2^63, with arguments near multiples of
/// π/2), or None for the other instructions.
fn domain_value(rng: &mut Rng, m: Mnemonic) -> Option<F80> {
    use Mnemonic as M;
    let sign = if rng.chance(1, 2) { 0x8000 } else { 0 };
    let sig = J | rng.next_u64();
    let (e, s) = match m {
        M::F2xm1 if rng.chance(1, 16) => (BIAS, J),
        M::F2xm1 => (BIAS - 1 - rng.below(70) as u16, sig),
        M::Fyl2xp1 => (BIAS - 3 - rng.below(70) as u16, sig),
        M::Fsin | M::Fcos | M::Fsincos | M::Fptan => {
            if rng.chance(1, 4) {
                // Close to k·π/2: π's significand × 2^j, last bits
                // perturbed.
                let pi = 0xc90f_daa2_2168_c235u64;
                let j = rng.below(64) as u16;
                let k = rng.below(12);
                (BIAS + j, pi ^ rng.below(1 << k))
            } else if rng.chance(1, 8) {
                (BIAS + 60 + rng.below(6) as u16, sig)
            } else {
                (BIAS - 20 + rng.below(84) as u16, sig)
            }
        }
        M::Fyl2x if rng.chance(1, 2) => {
            // Around 1, or any positive value.
            let e = if rng.chance(1, 2) {
                BIAS - rng.below(2) as u16
            } else {
                1 + rng.below(0x7ffd) as u16
            };
            return Some((e, sig));
        }
        M::Fpatan if rng.chance(1, 2) => (BIAS - 70 + rng.below(140) as u16, sig),
        _ => return None,
    };
    Some((sign | e, s))
}

/// Replace ST(0) of the FNSAVE image `img` by `v` if ST(0) is in use.
fn set_st0(img: &mut [u8; X87_IMAGE], v: F80) {
    let w = |img: &[u8; X87_IMAGE], o: usize| u16::from_le_bytes([img[o], img[o + 1]]);
    let top = (w(img, x87img::FSW) >> 11) & 7;
    let ftw = w(img, x87img::FTW);
    if (ftw >> (2 * top)) & 3 == 3 {
        return;
    }
    let ftw = (ftw & !(3 << (2 * top))) | (tag_of(v) << (2 * top));
    img[x87img::FTW..x87img::FTW + 2].copy_from_slice(&ftw.to_le_bytes());
    let o = x87img::ST;
    img[o..o + 8].copy_from_slice(&v.1.to_le_bytes());
    img[o + 8..o + 10].copy_from_slice(&v.0.to_le_bytes());
}

/// An edge-biased single (`bits` = 32) or double (64) in memory.
fn ieee(rng: &mut Rng, bits: u32) -> u64 {
    let (ebits, mbits) = if bits == 32 { (8u32, 23u32) } else { (11, 52) };
    let emax = (1u64 << ebits) - 1;
    let mmask = (1u64 << mbits) - 1;
    let sign = u64::from(rng.chance(1, 2)) << (bits - 1);
    let r = rng.next_u64();
    let bias = emax >> 1;
    let (e, m) = match rng.below(12) {
        0 => (0, 0),
        1 => (0, (r & mmask).max(1)),
        2 => (0, 1),
        3 => (emax, 0),
        4 => (emax, (1 << (mbits - 1)) | (r & mmask)),
        5 => (emax, (r & (mmask >> 1)).max(1)),
        6 => (bias, 0),
        7 => (emax - 1, r & mmask),
        8 => (1, r & mmask),
        9 => (bias + rng.below(70).min(emax - bias - 1), r & mmask),
        _ => (bias - 40 + rng.below(80), r & mmask),
    };
    sign | (e << mbits) | m
}

/// Bytes for a memory source operand of size `ms`.
fn mem_value(rng: &mut Rng, m: Mnemonic, ms: MemorySize, len: usize) -> Vec<u8> {
    let mut b: Vec<u8> = match ms {
        _ if m == Mnemonic::Fldcw => {
            // Any control word, reserved bits included now and then.
            let f = fcw(rng);
            (if rng.chance(1, 8) {
                value(rng, 16) as u16
            } else {
                f
            })
            .to_le_bytes()
            .to_vec()
        }
        MemorySize::Float32 => ieee(rng, 32).to_le_bytes().to_vec(),
        MemorySize::Float64 => ieee(rng, 64).to_le_bytes().to_vec(),
        MemorySize::Float80 => {
            let v = f80(rng);
            let mut b = v.1.to_le_bytes().to_vec();
            b.extend_from_slice(&v.0.to_le_bytes());
            b
        }
        MemorySize::Bcd => bcd(rng).to_vec(),
        MemorySize::Int16 => value(rng, 16).to_le_bytes().to_vec(),
        MemorySize::Int32 => value(rng, 32).to_le_bytes().to_vec(),
        MemorySize::Int64 => value(rng, 64).to_le_bytes().to_vec(),
        MemorySize::FpuEnv28 | MemorySize::FpuState108 => {
            let f = fcw(rng);
            let img = state(rng, f);
            let mut b = img.to_vec();
            // Garbage pointers (and reserved halves, sometimes).
            for x in b.iter_mut().take(x87img::ST).skip(x87img::POINTERS) {
                *x = rng.next_u64() as u8;
            }
            if ms == MemorySize::FpuEnv28 {
                b.truncate(28);
            }
            b
        }
        MemorySize::FpuEnv14 | MemorySize::FpuState94 => {
            let f = fcw(rng);
            let img = state(rng, f);
            let mut b = Vec::with_capacity(94);
            for off in [x87img::FCW, x87img::FSW, x87img::FTW] {
                b.extend_from_slice(&img[off..off + 2]);
            }
            for _ in 0..8 {
                b.push(rng.next_u64() as u8);
            }
            b.extend_from_slice(&img[x87img::ST..]);
            if ms == MemorySize::FpuEnv14 {
                b.truncate(14);
            }
            b
        }
        _ => (0..len).map(|_| rng.next_u64() as u8).collect(),
    };
    b.resize(len, 0);
    b
}

/// A packed BCD operand for FBLD: mostly valid (0-18 random digits,
/// either sign, now and then garbage in byte 9's bits 0-6), sometimes
/// with invalid digits (A-F, undefined by the SDM) or all random.
fn bcd(rng: &mut Rng) -> [u8; 10] {
    let mut b = [0u8; 10];
    let digits = rng.below(19) as usize;
    let invalid = rng.chance(1, 6);
    for k in 0..digits {
        let d = if invalid && rng.chance(1, 3) {
            10 + rng.below(6)
        } else {
            rng.below(10)
        } as u8;
        b[k / 2] |= d << (4 * (k % 2));
    }
    if rng.chance(1, 2) {
        b[9] = 0x80;
    }
    if rng.chance(1, 8) {
        b[9] |= rng.below(128) as u8;
    }
    if rng.chance(1, 12) {
        for x in b.iter_mut() {
            *x = rng.next_u64() as u8;
        }
    }
    b
}

/// Instructions that load a new control word or state: followed by
/// FWAIT, so that an exception they unmask is observed.
fn loads_control(m: Mnemonic) -> bool {
    matches!(m, Mnemonic::Fldcw | Mnemonic::Fldenv | Mnemonic::Frstor)
}

/// Does the instruction read its memory operand (rather than only write
/// it)?
fn reads_memory(m: Mnemonic) -> bool {
    use Mnemonic as M;
    !matches!(
        m,
        M::Fst
            | M::Fstp
            | M::Fist
            | M::Fistp
            | M::Fisttp
            | M::Fnstcw
            | M::Fstcw
            | M::Fnstsw
            | M::Fstsw
            | M::Fnstenv
            | M::Fstenv
            | M::Fnsave
            | M::Fsave
            | M::Fbstp
    )
}

fn build_case(
    gen: &mut Generator,
    rng: &mut Rng,
    form: &Form,
    index: u64,
    alloc: &mut Alloc,
) -> Option<Case> {
    let m = form.code.mnemonic();
    let mut ops = Vec::with_capacity(form.kinds.len());
    for &k in &form.kinds {
        ops.push(match k {
            K::mem => Op::Mem,
            K::st0 => Op::Reg(Register::ST0),
            K::sti_opcode => Op::Reg(rng.pick(&ST)?),
            K::ax => Op::Reg(Register::AX),
            _ => return None,
        });
    }
    let mem_form = ops.contains(&Op::Mem);
    let placeholder = MemoryOperand::with_base_displ(Register::None, guest::DATA_BASE as i64);
    let probe = super::build(form.code, &ops, placeholder)?;
    let ms = probe.memory_size();
    let size = ms.size() as u32;
    let used: Vec<Register> = gen
        .info
        .info(&probe)
        .used_registers()
        .iter()
        .map(|u| u.register().full_register())
        .collect();
    let free: Vec<usize> = (0..16).filter(|&i| !used.contains(&R64[i])).collect();

    let mut gpr = [0u64; 16];
    for g in gpr.iter_mut() {
        *g = match rng.below(3) {
            0 => rng.next_u64(),
            1 => value(rng, 64),
            _ => rng.below(256),
        };
    }
    let fcw_v = fcw(rng);
    let mut x87 = state(rng, fcw_v);
    if rng.chance(3, 4) {
        if let Some(v) = domain_value(rng, m) {
            set_st0(&mut x87, v);
        }
    }
    let simd = Simd {
        x87,
        ..Simd::default()
    };

    let code_addr = alloc.code_addr();
    let mut windows = Vec::new();
    let mut note = String::from(if mem_form { "x87 mem" } else { "x87 reg" });
    let mut target = None;
    let mut mem_op = placeholder;
    let mut addr_regs = Vec::new();
    if mem_form {
        let fault = super::random_fault(rng, 12, size);
        let (t, w, n) = match fault {
            Some(_) => place_operand(rng, alloc, size, false, fault),
            None => {
                // A window with room around the operand (up to 108 bytes).
                let len = u64::from(size) + 64;
                let cross = size > 1 && rng.chance(1, 6);
                let (addr, off, what) = if cross {
                    let k = 32;
                    let addr = alloc.data(len, Some(k));
                    (
                        addr,
                        k - 1 - rng.below(u64::from(size) - 1).min(k - 1),
                        "page-crossing",
                    )
                } else {
                    let addr = alloc.data(len, None);
                    let off = rng.below(64);
                    let off = if rng.chance(1, 2) { off & !15 } else { off };
                    let what = if off & 15 == 0 {
                        "aligned"
                    } else {
                        "misaligned"
                    };
                    (addr, off, what)
                };
                let init: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                (
                    addr + off,
                    Some(Window { addr, init }),
                    format!("mem {what}"),
                )
            }
        };
        note = format!("x87 {n}");
        target = Some(MemTarget { addr: t, size });
        if let Some(mut w) = w {
            if !(guest::SPECIAL_BASE..guest::SPECIAL_END).contains(&t) && reads_memory(m) {
                let bytes = mem_value(rng, m, ms, size as usize);
                put_bytes(&mut w, t, &bytes);
            }
            windows.push(w);
        }
        let seg = match rng.below(20) {
            0 => Register::ES,
            1 => Register::DS,
            2 => Register::FS,
            3 => Register::GS,
            _ => Register::None,
        };
        let seg_base = super::segment_base(seg);
        if seg != Register::None {
            note.push_str(&format!(" {seg:?}:"));
        }
        let (mo, regs) = solve_address(rng, &free, t.wrapping_sub(seg_base), code_addr, seg)?;
        mem_op = mo;
        addr_regs = regs;
    }
    let insn = super::build(form.code, &ops, mem_op)?;
    let mut enc = Encoder::new(64);
    enc.encode(&insn, code_addr).ok()?;
    let mut code = enc.take_buffer();
    if fcw_v & 0x3f != 0x3f || loads_control(m) {
        code.push(0x9b);
        note.push_str(" +fwait");
    }
    let insns = decode_all(&code, code_addr);
    if insns.is_empty() || insns.len() > 3 || insns.iter().any(|i| i.is_invalid()) {
        return None;
    }
    for (r, v) in &addr_regs {
        super::set_reg(&mut gpr, *r, *v);
    }
    let fl = super::case_rflags(rng);
    Some(Case {
        mode: crate::difftest::case::CaseMode::Long64,
        index,
        pinned: false,
        code_addr,
        code,
        insns,
        gpr,
        rflags: fl,
        simd,
        windows,
        mem: target,
        note,
    })
}
