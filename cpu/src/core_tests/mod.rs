//! Unit tests of the interpreter core: small programs assembled with
//! iced's `CodeAssembler`, run on flat 64-bit, 32-bit and real-mode states
//! set up directly in `CpuState`, with a tiny test platform.

mod alu;
mod bmi;
mod control;
mod debug;
mod machine;
mod memory;
mod shift;
mod sse;
mod sse_fp;
mod string;
mod workload;
mod x87;

use crate::cpu::{Cpu, CpuExit};
use crate::event::CpuEvent;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{cr0, cr4, efer, rflags, seg_attr, CpuState, SegReg, Segment};
use iced_x86::code_asm::CodeAssembler;
use mmu::{GuestPhysAddr, GuestRam, MachineAddr, PhysLayout};
use std::collections::VecDeque;
use std::sync::Arc;

/// Where test programs are loaded.
pub(crate) const CODE: u64 = 0x10000;
/// Initial stack pointer.
pub(crate) const STACK: u64 = 0x80000;
/// A scratch data area.
pub(crate) const DATA: u64 = 0x40000;
/// RAM size of the test machines.
pub(crate) const RAM: u64 = 4 << 20;
/// Identity page tables (64-bit machines): PML4, PDPT, PD.
const PML4: u64 = 0x1000;

/// A platform with a few knobs: a queue of interrupt vectors, an MMIO
/// scratch register, port writes recorded, a stop port.
#[derive(Default)]
pub(crate) struct TestPlat {
    pub irqs: VecDeque<u8>,
    pub events: Vec<CpuEvent>,
    pub mmio_writes: Vec<(u64, u8, u64)>,
    pub mmio_value: u64,
    pub pio_writes: Vec<(u16, u8, u32)>,
    pub stop: bool,
}

impl Platform for TestPlat {
    fn pio_in(&mut self, _port: u16, _size: u8) -> u32 {
        0xffff_ffff
    }
    fn pio_out(&mut self, port: u16, size: u8, val: u32) {
        self.pio_writes.push((port, size, val));
        if port == 0xf4 {
            self.stop = true;
        }
    }
    fn mmio_read(&mut self, _pa: GuestPhysAddr, _size: u8) -> u64 {
        self.mmio_value
    }
    fn mmio_write(&mut self, pa: GuestPhysAddr, size: u8, val: u64) {
        self.mmio_writes.push((pa.0, size, val));
    }
    fn interrupt_pending(&self) -> bool {
        !self.irqs.is_empty()
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        self.irqs.pop_front()
    }
    fn stop_requested(&self) -> bool {
        self.stop
    }
    fn tsc(&mut self) -> u64 {
        0
    }
    fn event(&mut self, ev: &CpuEvent) {
        self.events.push(ev.clone());
    }
}

/// A CPU, its RAM and a test platform.
pub(crate) struct Machine {
    pub cpu: Cpu,
    pub plat: TestPlat,
    pub ram: Arc<GuestRam>,
    pub bits: u32,
}

fn data_seg(sel: u16) -> Segment {
    Segment {
        selector: sel,
        base: 0,
        limit: 0xffff_ffff,
        attr: 0x3 | seg_attr::S | seg_attr::P | seg_attr::DB | seg_attr::G,
    }
}

impl Machine {
    fn with_state(bits: u32, state: CpuState) -> Machine {
        let ram = Arc::new(GuestRam::new(RAM).unwrap());
        let mut cpu = Cpu::new(Arc::clone(&ram), PhysLayout::new(RAM));
        cpu.set_state(&state);
        Machine {
            cpu,
            plat: TestPlat::default(),
            ram,
            bits,
        }
    }

    /// IA-32e 64-bit mode, CPL 0, identity-mapped first GiB (2 MiB pages).
    pub fn long64() -> Machine {
        let mut s = CpuState::reset();
        s.cr0 = cr0::PE | cr0::PG | cr0::ET | cr0::NE | cr0::WP;
        s.cr4 = cr4::PAE;
        s.efer = efer::LME | efer::LMA | efer::NXE;
        s.cr3 = PML4;
        let code = Segment {
            selector: 0x08,
            base: 0,
            limit: 0xffff_ffff,
            attr: 0xb | seg_attr::S | seg_attr::P | seg_attr::L | seg_attr::G,
        };
        s.seg = [data_seg(0x10); 6];
        s.seg[SegReg::Cs as usize] = code;
        s.rip = CODE;
        s.gpr[4] = STACK;
        let m = Machine::with_state(64, s);
        // PML4[0] → PDPT, PDPT[0] → PD, PD[i] = 2 MiB page i.
        m.ram.write_le(MachineAddr(PML4), 8, 0x2000 | 0x7).unwrap();
        m.ram
            .write_le(MachineAddr(0x2000), 8, 0x3000 | 0x7)
            .unwrap();
        for i in 0..512u64 {
            m.ram
                .write_le(MachineAddr(0x3000 + i * 8), 8, (i << 21) | 0x87)
                .unwrap();
        }
        m
    }

    /// 32-bit protected mode, flat 4 GiB segments, paging off.
    pub fn prot32() -> Machine {
        let mut s = CpuState::reset();
        s.cr0 = cr0::PE | cr0::ET | cr0::NE;
        let code = Segment {
            selector: 0x08,
            base: 0,
            limit: 0xffff_ffff,
            attr: 0xb | seg_attr::S | seg_attr::P | seg_attr::DB | seg_attr::G,
        };
        s.seg = [data_seg(0x10); 6];
        s.seg[SegReg::Cs as usize] = code;
        s.rip = CODE;
        s.gpr[4] = STACK;
        Machine::with_state(32, s)
    }

    /// Real mode, CS = 0x1000 (so IP 0 = linear 0x10000), DS = ES = SS = 0.
    pub fn real() -> Machine {
        let mut s = CpuState::reset();
        s.seg = [Segment::real_mode(0, false); 6];
        s.seg[SegReg::Cs as usize] = Segment::real_mode((CODE >> 4) as u16, true);
        s.rip = 0;
        s.gpr[4] = 0xfff0;
        Machine::with_state(16, s)
    }

    /// Assemble `f` for this machine's code size, load it at CODE, point
    /// RIP at it.
    pub fn load(&mut self, f: impl FnOnce(&mut CodeAssembler)) -> Vec<u8> {
        let mut a = CodeAssembler::new(self.bits).unwrap();
        f(&mut a);
        let ip = if self.bits == 16 { 0 } else { CODE };
        let bytes = a.assemble(ip).unwrap();
        self.ram.write(MachineAddr(CODE), &bytes).unwrap();
        self.cpu
            .invalidate_code(MachineAddr(CODE), bytes.len() as u64);
        self.cpu.state.rip = ip;
        self.cpu.state.halted = false;
        bytes
    }

    /// Run until HLT (or the budget); returns the exit.
    pub fn run(&mut self) -> CpuExit {
        self.cpu.run(&mut self.plat, 10_000_000)
    }

    /// Load and run to HLT, asserting it got there.
    pub fn exec(&mut self, f: impl FnOnce(&mut CodeAssembler)) {
        self.load(f);
        let e = self.run();
        assert_eq!(
            e,
            CpuExit::Halted,
            "program did not reach HLT; rip={:#x}",
            self.cpu.state.rip
        );
    }

    pub fn gpr(&self, i: usize) -> u64 {
        self.cpu.state.gpr[i]
    }

    pub fn flags(&self) -> u64 {
        self.cpu.rflags() & rflags::STATUS
    }

    pub fn read(&self, addr: u64, size: usize) -> u64 {
        self.ram.read_le(MachineAddr(addr), size).unwrap()
    }

    pub fn write(&self, addr: u64, size: usize, v: u64) {
        self.ram.write_le(MachineAddr(addr), size, v).unwrap();
    }

    /// Decode the first instruction at RIP and execute only its handler,
    /// returning the fault (if any) without delivering it.
    pub fn exec_one(&mut self) -> Result<(), Fault> {
        // The test edited `state` directly: refresh what the CPU caches.
        self.cpu.refresh_mode();
        let insn = self.cpu.fetch_decode(&mut self.plat)?;
        let sel = crate::exec::select(&insn);
        self.cpu.insn_start = insn.ip();
        self.cpu.state.rip = insn.next_ip();
        self.cpu.exit_block = false;
        let r = (sel.handler)(&mut self.cpu, &mut self.plat, &insn);
        if r.is_err() {
            self.cpu.state.rip = self.cpu.insn_start;
        }
        r
    }
}

/// Flag-bit shorthands for expectations.
pub(crate) mod f {
    pub use crate::state::rflags::{AF, CF, OF, PF, SF, ZF};
}
