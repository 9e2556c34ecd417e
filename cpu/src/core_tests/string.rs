//! String instructions: REP prefixes, both directions, all address sizes,
//! resumption across `run` calls.

use super::f::*;
use super::{Machine, CODE, DATA};
use crate::cpu::CpuExit;
use iced_x86::code_asm::*;

fn fill(m: &Machine, at: u64, bytes: &[u8]) {
    m.ram.write(mmu::MachineAddr(at), bytes).unwrap();
}

fn bytes(m: &Machine, at: u64, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    m.ram.read(mmu::MachineAddr(at), &mut v).unwrap();
    v
}

#[test]
fn rep_movsb_forward_and_backward() {
    let mut m = Machine::long64();
    let src: Vec<u8> = (0..100u8).collect();
    fill(&m, DATA, &src);
    m.exec(|a| {
        a.mov(rsi, DATA).unwrap();
        a.mov(rdi, DATA + 0x1000).unwrap();
        a.mov(rcx, 100u64).unwrap();
        a.cld().unwrap();
        a.rep().movsb().unwrap();
        // Backward copy of dwords: the last dword first.
        a.mov(rsi, DATA + 96).unwrap();
        a.mov(rdi, DATA + 0x2000 + 96).unwrap();
        a.mov(ecx, 25u32).unwrap();
        a.std().unwrap();
        a.rep().movsd().unwrap();
        a.cld().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(bytes(&m, DATA + 0x1000, 100), src);
    assert_eq!(bytes(&m, DATA + 0x2000, 100), src);
    assert_eq!(m.gpr(1), 0);
    assert_eq!(m.gpr(6), DATA - 4);
    assert_eq!(m.gpr(7), DATA + 0x2000 - 4);
}

#[test]
fn rep_stos_lods_and_zero_count() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(rdi, DATA).unwrap();
        a.mov(eax, 0xaabb_ccddu32).unwrap();
        a.mov(ecx, 4u32).unwrap();
        a.rep().stosd().unwrap();
        a.mov(rdi, DATA + 0x100).unwrap();
        a.xor(ecx, ecx).unwrap();
        a.rep().stosq().unwrap(); // count 0: nothing
        a.mov(rsi, DATA + 4).unwrap();
        a.lodsw().unwrap();
        a.hlt().unwrap();
    });
    for i in 0..4 {
        assert_eq!(m.read(DATA + 4 * i, 4), 0xaabb_ccdd);
    }
    assert_eq!(m.read(DATA + 16, 4), 0);
    assert_eq!(m.gpr(7), DATA + 0x100);
    assert_eq!(m.gpr(0), 0xaabb_ccdd);
    assert_eq!(m.gpr(6), DATA + 6);
}

#[test]
fn repe_cmps_and_repne_scas() {
    let mut m = Machine::long64();
    fill(&m, DATA, b"hello, world");
    fill(&m, DATA + 0x100, b"hello, there");
    m.exec(|a| {
        a.mov(rsi, DATA).unwrap();
        a.mov(rdi, DATA + 0x100).unwrap();
        a.mov(rcx, 12u64).unwrap();
        a.repe().cmpsb().unwrap(); // stops after 'w' vs 't'
        a.mov(r8, rcx).unwrap();
        a.mov(r9, rsi).unwrap();
        a.setb(r10b).unwrap(); // 'w' (0x77) > 't' (0x74): CF = 0
        a.mov(rdi, DATA).unwrap();
        a.mov(al, b',' as u32).unwrap();
        a.mov(rcx, 12u64).unwrap();
        a.repne().scasb().unwrap(); // finds ',' at index 5
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(8), 4);
    assert_eq!(m.gpr(9), DATA + 8);
    assert_eq!(m.gpr(10) & 0xff, 0);
    assert_eq!(m.gpr(1), 6);
    assert_eq!(m.gpr(7), DATA + 6);
    assert_eq!(m.flags() & ZF, ZF);
}

#[test]
fn address_size_16_wraps_si_di() {
    // Real mode: DI = 0xffff, DF = 0: after one STOSW DI wraps to 1, and
    // the word at 0xffff crosses the 64 KiB limit → #GP... so store bytes.
    let mut m = Machine::real();
    m.exec(|a| {
        a.mov(ax, 0x2000u32).unwrap();
        a.mov(es, ax).unwrap();
        a.mov(di, 0xfffeu32).unwrap();
        a.mov(cx, 3u32).unwrap();
        a.mov(al, 0x5a).unwrap();
        a.rep().stosb().unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.read(0x2fffe, 1), 0x5a);
    assert_eq!(m.read(0x2ffff, 1), 0x5a);
    assert_eq!(m.read(0x20000, 1), 0x5a);
    assert_eq!(m.gpr(7) & 0xffff, 1);
}

#[test]
fn rep_is_resumable_across_runs() {
    let mut m = Machine::long64();
    let n = crate::insn::string::REP_CHUNK as u64 * 3 + 17;
    let code = m.load(|a| {
        a.mov(rdi, DATA).unwrap();
        a.mov(rcx, n).unwrap();
        a.mov(al, 0x77).unwrap();
        a.rep().stosb().unwrap();
        a.hlt().unwrap();
    });
    // 3 setup instructions, then one REP chunk per budget unit.
    assert_eq!(m.cpu.run(&mut m.plat, 4), CpuExit::Budget);
    let left = m.gpr(1);
    assert_eq!(left, n - crate::insn::string::REP_CHUNK as u64);
    // F3 AA, then F4.
    let rep_ip = CODE + code.len() as u64 - 3;
    assert_eq!(m.cpu.state.rip, rep_ip, "RIP stays on the REP STOSB");
    assert_eq!(m.run(), CpuExit::Halted);
    assert_eq!(m.gpr(1), 0);
    assert_eq!(m.gpr(7), DATA + n);
    assert_eq!(m.read(DATA + n - 1, 1), 0x77);
    assert_eq!(m.read(DATA + n, 1), 0);
}

#[test]
fn rep_movs_fault_midway_keeps_progress() {
    // 32-bit flat, paging off: the destination runs past the end of a
    // 64 KiB expand-up ES segment → #GP(0) after the bytes that fit.
    let mut m = Machine::prot32();
    m.cpu.state.seg[crate::state::SegReg::Es as usize].limit = 0xffff;
    m.cpu.state.seg[crate::state::SegReg::Es as usize].attr &= !crate::state::seg_attr::G;
    m.cpu.state.gpr[6] = DATA;
    m.cpu.state.gpr[7] = 0xfff0;
    m.cpu.state.gpr[1] = 0x20;
    m.load(|a| {
        a.rep().movsb().unwrap();
    });
    assert_eq!(m.exec_one(), Err(crate::fault::Fault::gp0()));
    assert_eq!(m.gpr(1), 0x10);
    assert_eq!(m.gpr(7), 0x10000);
    assert_eq!(m.cpu.state.rip, CODE);
}
