//! Segmentation, paging, page-crossing accesses, MMIO, alignment checks,
//! self-modifying code.

use super::{Machine, CODE, DATA};
use crate::cpu::CpuExit;
use crate::event::CpuEvent;
use crate::fault::Fault;
use crate::state::{cr0, rflags, seg_attr, SegReg};
use iced_x86::code_asm::*;
use mmu::MachineAddr;

/// Map the 2 MiB region at 0x200000 with 4 KiB pages: PD[1] → PT at
/// 0x4000, PT[i] = `frames[i]` (0 = not present).
fn map_4k(m: &Machine, frames: &[u64]) {
    m.write(0x3000 + 8, 8, 0x4000 | 0x7);
    for i in 0..512u64 {
        m.write(0x4000 + i * 8, 8, 0);
    }
    for (i, &f) in frames.iter().enumerate() {
        if f != 0 {
            m.write(0x4000 + i as u64 * 8, 8, f | 0x7);
        }
    }
}

#[test]
fn page_crossing_write_faults_on_second_page_before_any_byte() {
    let mut m = Machine::long64();
    map_4k(&m, &[0x30_0000]);
    m.cpu.tlb.flush_all();
    m.write(0x30_0ff8, 8, 0x1111_1111_1111_1111);
    m.cpu.state.gpr[0] = 0xaabb_ccdd_eeff_0011;
    m.load(|a| {
        a.mov(qword_ptr(0x20_0ffcu64), rax).unwrap();
    });
    let f = m.exec_one().unwrap_err();
    assert_eq!(f, Fault::pf(0x20_1000, 0x2), "write to a not-present page");
    assert_eq!(
        m.read(0x30_0ff8, 8),
        0x1111_1111_1111_1111,
        "no byte written"
    );
    assert_eq!(m.cpu.state.rip, CODE);
}

#[test]
fn page_crossing_read_joins_discontiguous_frames() {
    let mut m = Machine::long64();
    map_4k(&m, &[0x30_0000, 0x30_5000, 0x30_2000]);
    m.cpu.tlb.flush_all();
    m.write(0x30_5ffc, 4, 0x4433_2211);
    m.write(0x30_2000, 4, 0x8877_6655);
    m.exec(|a| {
        a.mov(rax, qword_ptr(0x20_1ffcu64)).unwrap();
        // And a write across the same boundary.
        a.mov(rbx, 0x0102_0304_0506_0708u64).unwrap();
        a.mov(qword_ptr(0x20_1ffeu64), rbx).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0x8877_6655_4433_2211);
    assert_eq!(m.read(0x30_5ffe, 2), 0x0708);
    assert_eq!(m.read(0x30_2000, 6), 0x0102_0304_0506);
}

#[test]
fn read_only_page_and_user_page_faults() {
    let mut m = Machine::long64();
    map_4k(&m, &[0x30_0000]);
    // PT[0] present, read-only, supervisor.
    m.write(0x4000, 8, 0x30_0000 | 0x1);
    m.cpu.tlb.flush_all();
    m.load(|a| {
        a.mov(byte_ptr(0x20_0010u64), 1).unwrap();
    });
    // CR0.WP = 1: supervisor write to read-only page faults (P | W).
    assert_eq!(m.exec_one(), Err(Fault::pf(0x20_0010, 0x3)));
    // With WP = 0 the supervisor write goes through.
    m.cpu.state.cr0 &= !cr0::WP;
    m.cpu.tlb.flush_all();
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.read(0x30_0010, 1), 1);
}

#[test]
fn instruction_fetch_across_pages_reports_second_page_cr2() {
    let mut m = Machine::long64();
    map_4k(&m, &[0x30_0000]);
    m.cpu.tlb.flush_all();
    // A 10-byte MOV starting 3 bytes before the end of the mapped page.
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(rax, 0x1122_3344_5566_7788u64).unwrap();
    let code = a.assemble(0x20_0ffd).unwrap();
    assert_eq!(code.len(), 10);
    m.ram.write(MachineAddr(0x30_0ffd), &code[..3]).unwrap();
    m.cpu.state.rip = 0x20_0ffd;
    assert_eq!(
        m.exec_one(),
        Err(Fault::pf(0x20_1000, 0x10)),
        "fetch: ID bit with NXE"
    );
    // Map the second page: the instruction runs, joined across frames.
    map_4k(&m, &[0x30_0000, 0x30_8000]);
    m.cpu.tlb.flush_all();
    m.ram.write(MachineAddr(0x30_8000), &code[3..]).unwrap();
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.gpr(0), 0x1122_3344_5566_7788);
    assert_eq!(m.cpu.state.rip, 0x20_1007);
}

#[test]
fn overlong_instruction_is_gp() {
    let mut m = Machine::long64();
    // 15 operand-size prefixes then NOP: 16 bytes.
    let mut code = vec![0x66u8; 15];
    code.push(0x90);
    m.ram.write(MachineAddr(CODE), &code).unwrap();
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    // 14 prefixes + NOP = 15 bytes is fine.
    m.ram.write(MachineAddr(CODE), &code[1..]).unwrap();
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.cpu.state.rip, CODE + 15);
}

#[test]
fn real_mode_limits_are_checked() {
    let mut m = Machine::real();
    m.load(|a| {
        a.mov(ax, word_ptr(0xffff)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    m.load(|a| {
        a.mov(ax, word_ptr(bp + 0xffff)).unwrap();
    });
    m.cpu.state.gpr[5] = 0;
    assert_eq!(m.exec_one(), Err(Fault::ss(0)), "BP-based: SS");
    m.load(|a| {
        a.mov(al, byte_ptr(0xffff)).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
}

#[test]
fn protected_mode_segment_checks() {
    let mut m = Machine::prot32();
    // Read-only data segment in DS.
    m.cpu.state.seg[SegReg::Ds as usize].attr &= !seg_attr::TYPE_WR;
    m.load(|a| {
        a.mov(dword_ptr(DATA), eax).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    m.load(|a| {
        a.mov(eax, dword_ptr(DATA)).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
    // Null (unusable) ES.
    m.cpu.state.seg[SegReg::Es as usize].attr = seg_attr::UNUSABLE;
    m.load(|a| {
        a.mov(eax, dword_ptr(DATA).es()).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    // Expand-down 16-bit stack segment with limit 0x0fff: valid 0x1000..=0xffff.
    let stack_seg = &mut m.cpu.state.seg[SegReg::Ss as usize];
    stack_seg.attr = 0x7 | seg_attr::S | seg_attr::P;
    stack_seg.limit = 0x0fff;
    m.cpu.state.gpr[4] = 0x1002;
    m.load(|a| {
        a.push(eax).unwrap();
    });
    assert_eq!(
        m.exec_one(),
        Err(Fault::ss(0)),
        "push to 0xffe is below the limit"
    );
    m.cpu.state.gpr[4] = 0x2000;
    assert_eq!(m.exec_one(), Ok(()));
    assert_eq!(m.gpr(4), 0x1ffc);
    // Writes through a code segment override fault.
    m.load(|a| {
        a.mov(dword_ptr(DATA).cs(), eax).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
}

#[test]
fn long_mode_canonical_and_fs_base() {
    let mut m = Machine::long64();
    m.load(|a| {
        a.mov(rax, qword_ptr(rbx)).unwrap();
    });
    m.cpu.state.gpr[3] = 0x0000_8000_0000_0000;
    assert_eq!(m.exec_one(), Err(Fault::gp0()));
    m.load(|a| {
        a.mov(rax, qword_ptr(rsp)).unwrap();
    });
    m.cpu.state.gpr[4] = 0x0000_8000_0000_0000;
    assert_eq!(m.exec_one(), Err(Fault::ss(0)));
    m.cpu.state.gpr[4] = super::STACK;
    m.cpu.state.seg[SegReg::Fs as usize].base = DATA;
    m.write(DATA + 8, 8, 0x1234);
    m.exec(|a| {
        a.mov(rax, qword_ptr(8).fs()).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0x1234);
}

#[test]
fn alignment_check_at_cpl3() {
    let mut m = Machine::long64();
    m.cpu.state.cr0 |= cr0::AM;
    m.cpu.set_rflags(rflags::FIXED1 | rflags::AC);
    m.cpu.state.seg[SegReg::Cs as usize].attr |= 3 << seg_attr::DPL_SHIFT;
    m.cpu.state.seg[SegReg::Ss as usize].attr |= 3 << seg_attr::DPL_SHIFT;
    m.load(|a| {
        a.mov(eax, dword_ptr(DATA + 2)).unwrap();
    });
    assert_eq!(m.exec_one(), Err(Fault::ac()));
    m.load(|a| {
        a.mov(eax, dword_ptr(DATA + 4)).unwrap();
    });
    assert_eq!(m.exec_one(), Ok(()));
}

#[test]
fn mmio_reads_and_writes_reach_the_platform() {
    let mut m = Machine::prot32();
    m.cpu.trace.io = true;
    m.plat.mmio_value = 0xfeed_f00d;
    m.exec(|a| {
        a.mov(eax, dword_ptr(0xd000_0010u32)).unwrap();
        a.mov(dword_ptr(0xd000_0020u32), 0x55u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 0xfeed_f00d);
    assert_eq!(m.plat.mmio_writes, vec![(0xd000_0020, 4, 0x55)]);
    let mmio: Vec<_> = m
        .plat
        .events
        .iter()
        .filter(|e| matches!(e, CpuEvent::Mmio { .. }))
        .collect();
    assert_eq!(mmio.len(), 2);
}

/// Length of the code `f` assembles to (64-bit, at CODE).
fn len_of(f: impl FnOnce(&mut CodeAssembler)) -> u64 {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a);
    a.assemble(CODE).unwrap().len() as u64
}

#[test]
fn self_modifying_code_is_seen() {
    let mut m = Machine::long64();
    // A loop whose body's immediate is patched by the body itself:
    //   again: mov eax, imm32   (imm at `again + 1`)
    //          add ebx, eax
    //          inc dword [again+1]
    //          dec ecx ; jnz again
    let head = |a: &mut CodeAssembler| {
        a.mov(ecx, 3u32).unwrap();
        a.xor(ebx, ebx).unwrap();
    };
    let imm = CODE + len_of(head) + 1;
    m.exec(|a| {
        let mut again = a.create_label();
        head(a);
        a.set_label(&mut again).unwrap();
        a.mov(eax, 10u32).unwrap();
        a.add(ebx, eax).unwrap();
        a.inc(dword_ptr(imm)).unwrap();
        a.dec(ecx).unwrap();
        a.jne(again).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3), 10 + 11 + 12);
    assert!(m.cpu.stats().blocks_invalidated >= 2);
}

#[test]
fn store_into_the_current_block_takes_effect_immediately() {
    let mut m = Machine::long64();
    // The store patches the very next instruction (same block): `mov al, 1`
    // becomes `mov al, 2` before it runs.
    let store_len = len_of(|a| a.mov(byte_ptr(CODE), 2).unwrap());
    let imm = CODE + store_len + 1;
    m.exec(|a| {
        a.mov(byte_ptr(imm), 2).unwrap();
        a.mov(al, 1).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0) & 0xff, 2);
}

#[test]
fn external_writes_need_invalidate_code() {
    let mut m = Machine::long64();
    m.exec(|a| {
        a.mov(eax, 1u32).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(0), 1);
    // Patch the immediate behind the CPU's back, then tell it.
    m.write(CODE + 1, 4, 7);
    m.cpu.invalidate_code(MachineAddr(CODE + 1), 4);
    m.cpu.state.rip = CODE;
    m.cpu.state.halted = false;
    assert_eq!(m.run(), CpuExit::Halted);
    assert_eq!(m.gpr(0), 7);
}

#[test]
fn code_written_before_it_is_decoded_is_still_protected() {
    // The program writes a routine into a data page (creating a writable
    // TLB entry), calls it (the page becomes a code page), patches it
    // through the same mapping and calls it again.
    let mut m = Machine::long64();
    let mut r = CodeAssembler::new(64).unwrap();
    r.mov(eax, 1u32).unwrap();
    r.ret().unwrap();
    let routine = r.assemble(DATA).unwrap();
    let word = u32::from_le_bytes([routine[0], routine[1], routine[2], routine[3]]);
    m.exec(|a| {
        // Copy the routine's 6 bytes with stores.
        a.mov(dword_ptr(DATA), word).unwrap();
        a.mov(
            word_ptr(DATA + 4),
            u32::from(routine[4]) | (u32::from(routine[5]) << 8),
        )
        .unwrap();
        a.mov(rdx, DATA).unwrap();
        a.call(rdx).unwrap();
        a.mov(ebx, eax).unwrap();
        a.mov(byte_ptr(DATA + 1), 5).unwrap(); // mov eax, 5
        a.call(rdx).unwrap();
        a.add(ebx, eax).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3), 6);
}

#[test]
fn remapped_code_is_not_reached_through_stale_links() {
    // The same linear page maps two frames in turn; INVLPG in between.
    let mut m = Machine::long64();
    map_4k(&m, &[0x30_0000]);
    m.cpu.tlb.flush_all();
    for (frame, val) in [(0x30_0000u64, 1u32), (0x30_8000, 2)] {
        let mut r = CodeAssembler::new(64).unwrap();
        r.mov(eax, val).unwrap();
        r.ret().unwrap();
        let code = r.assemble(0x20_0000).unwrap();
        m.ram.write(MachineAddr(frame), &code).unwrap();
    }
    m.exec(|a| {
        let mut top = a.create_label();
        let mut done = a.create_label();
        a.xor(ebx, ebx).unwrap();
        a.mov(ecx, 2u32).unwrap();
        a.mov(rdx, 0x20_0000u64).unwrap();
        a.set_label(&mut top).unwrap();
        a.call(rdx).unwrap();
        a.add(ebx, eax).unwrap();
        a.dec(ecx).unwrap();
        a.jz(done).unwrap();
        // PT[0] = second frame, then INVLPG.
        a.mov(qword_ptr(0x4000u64), 0x30_8007).unwrap();
        a.invlpg(byte_ptr(rdx)).unwrap();
        a.jmp(top).unwrap();
        a.set_label(&mut done).unwrap();
        a.hlt().unwrap();
    });
    assert_eq!(m.gpr(3), 3);
}
