//! `--accel lockstep` finds a deliberately injected semantic bug: built
//! with the test-only feature `inject-flag-bug`, the interpreter's ADD
//! computes CF inverted. Lockstep must stop at that ADD with a report
//! that names the instruction and marks RFLAGS as the difference.
//!
//! Run by scripts/test.sh as
//! `cargo test --release -p accel --features inject-flag-bug --test lockstep_injected`;
//! without the feature this file is empty. Skips, saying why, without KVM.
#![cfg(feature = "inject-flag-bug")]

use accel::lockstep::LockstepAccel;
use accel::{Accelerator, RunSlice, VcpuExit};
use cpu::platform::Platform;
use cpu::state::{reg, SegReg, Segment};
use cpu::CpuState;
use mmu::{GuestPhysAddr, GuestRam, MachineAddr, PhysLayout};
use std::sync::Arc;

/// Port I/O that stops at 0xf4; nothing else.
#[derive(Default)]
struct Plat {
    stop: bool,
}

impl Platform for Plat {
    fn pio_in(&mut self, _port: u16, _size: u8) -> u32 {
        0
    }
    fn pio_out(&mut self, port: u16, _size: u8, _val: u32) {
        self.stop |= port == 0xf4;
    }
    fn mmio_read(&mut self, _pa: GuestPhysAddr, _size: u8) -> u64 {
        !0
    }
    fn mmio_write(&mut self, _pa: GuestPhysAddr, _size: u8, _val: u64) {}
    fn interrupt_pending(&self) -> bool {
        false
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        None
    }
    fn stop_requested(&self) -> bool {
        self.stop
    }
    fn tsc(&mut self) -> u64 {
        0
    }
}

#[test]
fn lockstep_names_the_instruction_with_the_injected_bug() {
    let p = accel::kvm::probe();
    if !p.available {
        eprintln!("skipping: {}", p.reason.unwrap_or_default());
        return;
    }
    const RAM: u64 = 1 << 20;
    let ram = Arc::new(GuestRam::new(RAM).expect("guest RAM"));
    let code: &[u8] = &[
        0xb9, 0x03, 0x00, // mov cx, 3
        0x43, // inc bx
        0x05, 0x01, 0x00, // add ax, 1   <- CF computed wrong
        0x43, // inc bx
        0xe6, 0xf4, // out 0xf4, al
        0xf4, // hlt
    ];
    ram.write(MachineAddr(0x1000), code).expect("code");
    let mut acc = LockstepAccel::new(ram, PhysLayout::new(RAM)).expect("lockstep");
    let mut s = CpuState::reset();
    *s.sreg_mut(SegReg::Cs) = Segment::real_mode(0x0100, true);
    s.rip = 0;
    s.gpr[reg::RSP] = 0x8000;
    acc.set_state(&s).expect("state");
    let mut plat = Plat::default();
    let exit = acc.run(&mut plat, RunSlice::default()).expect("run");
    let VcpuExit::Divergence { report } = exit else {
        panic!("lockstep did not find the injected bug: {exit:?}");
    };
    eprintln!("{report}");
    assert!(report.contains("at instruction 2 "), "{report}");
    assert!(report.contains("add ax,1"), "{report}");
    assert!(report.contains("differs in: RFLAGS"), "{report}");
    assert!(report.contains(">> RFLAGS"), "{report}");
    assert!(!report.contains(">> RAX"), "{report}");
}
