//! RDRAND and RDSEED (SDM Vol. 2; CPUID.1:ECX.RDRAND[30],
//! CPUID.(EAX=7,ECX=0):EBX.RDSEED[18]).
//!
//! Both deliver a random value of the operand size to the destination
//! register (a 16-bit destination keeps bits 63:16, a 32-bit one zeroes
//! bits 63:32) with CF = 1 ("a random value was available"); OF, SF, ZF,
//! AF and PF are cleared. The entropy is the host's: bytes of
//! `/dev/urandom`, buffered; should it be unreadable, a value of the
//! standard library's randomly keyed SipHash (seeded from the host's
//! entropy when the process started) stands in. ringside's entropy source
//! never runs dry, so CF is always 1 (the SDM allows CF = 0 with a zero
//! destination when none is available; software must retry then).
//! RDSEED is served from the same source: it is a non-deterministic
//! source either way.

use crate::cpu::Cpu;
use crate::exec::Handler;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::rflags;
use iced_x86::{Code, Instruction};
use std::cell::RefCell;
use std::io::Read;

/// The handler of one of this family's Codes, if ringside has one.
pub(crate) fn select(code: Code) -> Option<Handler> {
    use Code as C;
    Some(match code {
        C::Rdrand_r16 | C::Rdseed_r16 => rdrand::<2>,
        C::Rdrand_r32 | C::Rdseed_r32 => rdrand::<4>,
        C::Rdrand_r64 | C::Rdseed_r64 => rdrand::<8>,
        _ => return None,
    })
}

/// A buffer of host entropy (per thread: each vCPU thread has its own).
struct Pool {
    file: Option<std::fs::File>,
    buf: [u8; 512],
    at: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool {
        file: std::fs::File::open("/dev/urandom").ok(),
        buf: [0; 512],
        at: 512,
    });
}

/// 64 random bits from the host.
pub(crate) fn random_u64() -> u64 {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.at + 8 > p.buf.len() {
            let Pool { file, buf, at } = &mut *p;
            match file.as_mut().map(|f| f.read_exact(buf)) {
                Some(Ok(())) => *at = 0,
                _ => {
                    *file = None;
                    return fallback();
                }
            }
        }
        let at = p.at;
        p.at += 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&p.buf[at..at + 8]);
        u64::from_le_bytes(b)
    })
}

/// SipHash with the standard library's random keys (host entropy at
/// start-up; each `RandomState` gets fresh keys).
fn fallback() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5244_5241_4e44);
    h.finish()
}

/// RDRAND / RDSEED r16/r32/r64.
fn rdrand<const SZ: u8>(
    cpu: &mut Cpu,
    _plat: &mut dyn Platform,
    insn: &Instruction,
) -> Result<(), Fault> {
    let v = random_u64();
    cpu.set_reg::<SZ>(insn.op0_register(), v);
    let f = (cpu.rflags() & !rflags::STATUS) | rflags::CF;
    cpu.flags.load(f);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ() {
        let a: Vec<u64> = (0..100).map(|_| random_u64()).collect();
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert!(distinct.len() > 95);
        assert_ne!(fallback(), fallback());
    }
}
