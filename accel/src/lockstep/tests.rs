//! Lockstep on tiny guests. Each test skips (with a printed reason) when
//! `/dev/kvm` is not usable.

use super::*;
use crate::kvm::probe;
use cpu::state::{reg, SegReg, Segment};
use mmu::GuestPhysAddr;

const RAM: u64 = 1 << 20;

/// A machine with a stop port (0xf4) and nothing else.
#[derive(Default)]
struct Plat {
    out: Vec<(u16, u32)>,
    stop: bool,
}

impl Platform for Plat {
    fn pio_in(&mut self, _port: u16, _size: u8) -> u32 {
        0x5a
    }
    fn pio_out(&mut self, port: u16, _size: u8, val: u32) {
        self.out.push((port, val));
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

/// Real mode at 0x1000 (emulated by kvm-pvm, so single-stepped):
/// a loop of ADD/INC/IN/OUT, then OUT to the stop port.
fn guest() -> Option<LockstepAccel> {
    let p = probe();
    if !p.available {
        eprintln!("skipping: {}", p.reason.unwrap_or_default());
        return None;
    }
    let ram = Arc::new(GuestRam::new(RAM).ok()?);
    let code: &[u8] = &[
        0xb9, 0x10, 0x00, // mov cx, 16
        0x05, 0x01, 0x00, // l: add ax, 1
        0x43, // inc bx
        0xe4, 0x60, // in al, 0x60
        0xe6, 0x80, // out 0x80, al
        0xe2, 0xf6, // loop l
        0xe6, 0xf4, // out 0xf4, al
        0xf4, // hlt
    ];
    ram.write(MachineAddr(0x1000), code).ok()?;
    let mut acc = LockstepAccel::new(ram, PhysLayout::new(RAM)).ok()?;
    let mut s = CpuState::reset();
    *s.sreg_mut(SegReg::Cs) = Segment::real_mode(0x0100, true);
    s.rip = 0;
    s.gpr[reg::RSP] = 0x8000;
    acc.set_state(&s).ok()?;
    Some(acc)
}

#[test]
fn clean_guest_runs_without_divergence() {
    let Some(mut acc) = guest() else { return };
    let mut p = Plat::default();
    let exit = acc.run(&mut p, RunSlice::default()).unwrap();
    assert_eq!(exit, VcpuExit::Stopped);
    let c = acc.counts();
    assert_eq!(c.divergences, 0);
    // mov + 16 × 5 + out
    assert_eq!(c.stepped, 82, "{}", c.line());
    assert_eq!(p.out.len(), 17);
    assert!(
        acc.describe().contains("0 divergences"),
        "{}",
        acc.describe()
    );
}

#[test]
fn corrupted_interpreter_is_reported_at_the_next_instruction() {
    let Some(mut acc) = guest() else { return };
    let mut p = Plat::default();
    // mov cx, 16; add ax, 1 — then corrupt CF behind both CPUs' backs,
    // as an interpreter bug in ADD would; INC leaves CF alone, so the
    // step that shows it is the INC.
    for _ in 0..2 {
        assert_eq!(acc.step(&mut p).unwrap(), VcpuExit::SliceEnd);
    }
    acc.interpreter().state.rflags ^= cpu::state::rflags::CF;
    let exit = acc.step(&mut p).unwrap();
    let VcpuExit::Divergence { report } = exit else {
        panic!("expected a divergence, got {exit:?}");
    };
    eprintln!("{report}");
    assert!(report.contains("at instruction 2 "), "{report}");
    assert!(report.contains("inc bx"), "{report}");
    assert!(report.contains("differs in: RFLAGS"), "{report}");
    assert!(report.contains(">> RFLAGS"), "{report}");
    assert!(!report.contains(">> RAX"), "{report}");
    assert_eq!(acc.counts().divergences, 1);
    // The run stays stopped.
    assert!(matches!(
        acc.run(&mut p, RunSlice::default()).unwrap(),
        VcpuExit::Divergence { .. }
    ));
}

#[test]
fn different_device_access_is_a_divergence() {
    let Some(mut acc) = guest() else { return };
    let mut p = Plat::default();
    for _ in 0..4 {
        assert_eq!(acc.step(&mut p).unwrap(), VcpuExit::SliceEnd);
    }
    // Before `out 0x80, al`: the interpreter's AL differs, so the two
    // CPUs write different values to the port.
    acc.interpreter().state.gpr[reg::RAX] ^= 1;
    let VcpuExit::Divergence { report } = acc.step(&mut p).unwrap() else {
        panic!("expected a divergence");
    };
    assert!(report.contains("device access differs"), "{report}");
    assert!(report.contains("OUT port 0x80"), "{report}");
}
