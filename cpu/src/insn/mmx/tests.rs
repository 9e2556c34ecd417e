//! MMX: the aliasing with the x87 register file (TOP, tags, exponent),
//! the availability faults, and a few lane operations (the differential
//! suite checks them all against the host CPU).

use crate::core_tests::{Machine, DATA};
use crate::fault::Fault;
use crate::insn::sse::ssse3;
use crate::state::{cr0, cr4, fsw, F80};
use iced_x86::code_asm::*;

/// A 64-bit machine with SSE enabled and an x87 stack of three values
/// at TOP = 5 (R5, R6, R7 full).
fn machine() -> Machine {
    let mut m = Machine::long64();
    m.cpu.state.cr4 |= cr4::OSFXSR | cr4::OSXMMEXCPT;
    let x = &mut m.cpu.state.x87;
    x.fsw = 5 << fsw::TOP_SHIFT;
    x.ftw = 0b1110_0000;
    for (i, r) in x.regs.iter_mut().enumerate() {
        *r = F80 {
            se: 0x3fff + i as u16,
            sig: 0x8000_0000_0000_0000 | i as u64,
        };
    }
    m
}

#[test]
fn mm_registers_are_the_physical_significands() {
    let mut m = machine();
    m.exec(|a| {
        // MM6 = R6's significand whatever TOP is; MM2 := MM6 + 1.
        a.movq(rax, mm6).unwrap();
        a.mov(rcx, 1u64).unwrap();
        a.movq(mm2, rcx).unwrap();
        a.paddq(mm2, mm6).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0x8000_0000_0000_0006);
    let x = &m.cpu.state.x87;
    assert_eq!(x.top(), 0, "TOP = 0");
    assert_eq!(x.ftw, 0xff, "all tags valid");
    assert_eq!(
        x.regs[2],
        F80 {
            se: 0xffff,
            sig: 0x8000_0000_0000_0007
        }
    );
    // Registers only read keep their sign and exponent.
    assert_eq!(x.regs[6].se, 0x3fff + 6);
    assert_eq!(x.regs[0].se, 0x3fff);
}

#[test]
fn a_store_or_a_read_alone_also_makes_the_transition() {
    let mut m = machine();
    m.exec(|a| {
        a.movq(qword_ptr(DATA), mm7).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(DATA, 8), 0x8000_0000_0000_0007);
    let x = &m.cpu.state.x87;
    assert_eq!((x.top(), x.ftw), (0, 0xff));
    assert_eq!(x.regs[7].se, 0x3fff + 7, "no register written");
}

#[test]
fn emms_empties_the_tags_and_clears_top() {
    let mut m = machine();
    m.exec(|a| {
        a.emms().unwrap();
        a.hlt().unwrap();
    });
    let x = &m.cpu.state.x87;
    assert_eq!(x.ftw, 0);
    assert_eq!(x.top(), 0);
    assert_eq!(x.regs[3].se, 0x3fff + 3);
}

#[test]
fn a_faulting_instruction_changes_nothing() {
    let mut m = machine();
    let before = m.cpu.state.x87;
    m.load(|a| {
        // Non-canonical address: #GP(0).
        a.mov(rax, 0x8000_0000_0000_0000u64).unwrap();
        a.paddb(mm0, qword_ptr(rax)).unwrap();
        a.hlt().unwrap();
    });
    m.exec_one().unwrap();
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    assert_eq!(m.cpu.state.x87, before);
}

#[test]
fn maskmovq_makes_the_transition_before_its_store_faults() {
    // As the AMD host does (an ordinary MOVQ store does not).
    let mut m = machine();
    let regs = m.cpu.state.x87.regs;
    m.cpu.state.gpr[7] = 0x8000_0000_0000_0000;
    m.load(|a| {
        a.maskmovq(mm1, mm2).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    let x = &m.cpu.state.x87;
    assert_eq!((x.top(), x.ftw), (0, 0xff));
    assert_eq!(x.regs, regs, "registers unchanged");
}

#[test]
fn availability_faults() {
    // CR0.EM: #UD (x87 would give #NM); CR0.TS: #NM; pending unmasked
    // x87 exception: #MF (CR0.NE = 1).
    for (setup, want) in [(0u8, Fault::UD), (1, Fault::NM), (2, Fault::MF)] {
        let mut m = machine();
        match setup {
            0 => m.cpu.state.cr0 |= cr0::EM | cr0::TS,
            1 => m.cpu.state.cr0 |= cr0::TS,
            _ => {
                m.cpu.state.x87.fcw = 0x037e;
                m.cpu.state.x87.fsw |= fsw::IE | fsw::ES | fsw::B;
            }
        }
        m.load(|a| {
            a.por(mm1, mm2).unwrap();
            a.hlt().unwrap();
        });
        assert_eq!(m.exec_one(), Err(want), "setup {setup}");
    }
    // CR4.OSFXSR = 0: the 64-bit integer forms run, the XMM ones do not.
    let mut m = machine();
    m.cpu.state.cr4 &= !cr4::OSFXSR;
    m.load(|a| {
        a.pshufw(mm1, mm2, 0x1b).unwrap();
        a.pshufb(mm1, mm2).unwrap();
        a.movq2dq(xmm0, mm1).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.exec_one(), Err(Fault::UD));
    // A pending x87 exception does not stop CVTPI2PS from memory.
    let mut m = machine();
    m.cpu.state.x87.fcw = 0x037e;
    m.cpu.state.x87.fsw |= fsw::IE | fsw::ES | fsw::B;
    m.write(DATA, 8, 0xffff_ffff_0000_0002);
    m.load(|a| {
        a.cvtpi2ps(xmm3, qword_ptr(DATA)).unwrap();
        a.cvtpi2ps(xmm3, mm0).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.cpu.state.xmm[3] as u64, 0xbf80_0000_4000_0000);
    assert_eq!(m.cpu.state.x87.top(), 5, "no transition from m64");
    assert_eq!(m.exec_one(), Err(Fault::MF));
}

#[test]
fn lane_operations() {
    let mut m = machine();
    m.exec(|a| {
        a.mov(rax, 0x7fff_8000_0001_fffeu64).unwrap();
        a.movq(mm0, rax).unwrap();
        a.mov(rax, 0x0001_ffff_ffff_0002u64).unwrap();
        a.movq(mm1, rax).unwrap();
        a.movq(mm2, mm0).unwrap();
        a.paddsw(mm2, mm1).unwrap();
        a.movq(mm3, mm0).unwrap();
        a.packsswb(mm3, mm1).unwrap();
        a.movq(mm4, mm0).unwrap();
        a.punpckhwd(mm4, mm1).unwrap();
        a.movq(mm5, mm0).unwrap();
        a.psraw(mm5, 20).unwrap();
        a.pmovmskb(ecx, mm0).unwrap();
        a.hlt().unwrap();
    });
    let mm = |i: usize| m.cpu.state.x87.regs[i].sig;
    assert_eq!(mm(2), 0x7fff_8000_0000_0000, "PADDSW saturates");
    assert_eq!(mm(3), 0x01ff_ff02_7f80_01fe, "PACKSSWB");
    assert_eq!(mm(4), 0x0001_7fff_ffff_8000, "PUNPCKHWD");
    assert_eq!(mm(5), 0x0000_ffff_0000_ffff, "PSRAW by 20 fills the sign");
    assert_eq!(m.gpr(1), 0b0110_0011, "PMOVMSKB");
}

#[test]
fn ssse3_widths() {
    let a = 0x0706_0504_0302_0100u128;
    // PSHUFB mm: the index uses 3 bits; bit 7 zeroes.
    assert_eq!(
        ssse3::compute(ssse3::PSHUFB, 64, 0, a, 0x80_0f_09_00_01_02_03_07),
        0x00_07_01_00_01_02_03_07
    );
    // PALIGNR mm by 3: bytes 3.. of dst:src.
    let src = 0x1716_1514_1312_1110u128;
    assert_eq!(
        ssse3::compute(ssse3::PALIGNR, 64, 3, a, src),
        0x0201_0017_1615_1413
    );
    assert_eq!(ssse3::compute(ssse3::PALIGNR, 64, 16, a, src), 0);
    assert_eq!(ssse3::compute(ssse3::PALIGNR, 128, 16, a, src), a);
    // PHADDW mm: dst pairs low, src pairs high.
    assert_eq!(
        ssse3::compute(
            ssse3::PHADDW,
            64,
            0,
            0x0004_0003_0002_0001,
            0x8000_8000_0001_ffff
        ),
        0x0000_0000_0007_0003
    );
    // PHADDSW saturates; PMULHRSW rounds; PABSW of 0x8000 stays 0x8000.
    assert_eq!(
        ssse3::compute(
            ssse3::PHADDSW,
            64,
            0,
            0x0004_0003_0002_0001,
            0x8000_8000_0001_ffff
        ),
        0x8000_0000_0007_0003
    );
    assert_eq!(
        ssse3::compute(ssse3::PMULHRSW, 64, 0, 0x8000_4000, 0x8000_4000),
        0x8000_2000,
        "0x8000 * 0x8000 overflows to 0x8000"
    );
    assert_eq!(
        ssse3::compute(ssse3::PABSW, 64, 0, 0, 0x8000_fffe),
        0x8000_0002
    );
}
