//! The tcg accelerator: guest code runs on ringside's own interpreter.
//!
//! The name follows QEMU's (`-accel tcg`), where the software CPU is the
//! "Tiny Code Generator"; ringside's tcg is today an interpreter with a
//! decoded-block cache, and the JIT of a later stage plugs in here.

use crate::{AccelError, Accelerator, ExitStats, RunSlice, VcpuExit};
use cpu::{Cpu, CpuExit, CpuState, Platform, TraceFlags};
use mmu::{GuestRam, PhysLayout};
use std::sync::Arc;
use std::time::Instant;

/// Instructions run between two looks at the host clock. At ~100 MIPS this
/// is ~0.2 ms, well under the 1 ms period of a typical guest timer, and the
/// clock read is amortized over enough instructions to be free.
const CHUNK: u64 = 20_000;

/// The interpreter as an [`Accelerator`].
pub struct TcgAccel {
    cpu: Cpu,
    stats: ExitStats,
}

impl TcgAccel {
    /// A vCPU over `ram`, in the RESET state until [`Accelerator::set_state`].
    pub fn new(ram: Arc<GuestRam>, layout: PhysLayout) -> Self {
        TcgAccel {
            cpu: Cpu::new(ram, layout),
            stats: ExitStats::default(),
        }
    }

    /// Choose which events the CPU reports through [`Platform::event`].
    pub fn set_trace(&mut self, trace: TraceFlags) {
        self.cpu.trace = trace;
    }

    /// Direct access to the interpreter (single-stepping, the TUI, tests).
    pub fn cpu(&mut self) -> &mut Cpu {
        &mut self.cpu
    }

    /// What an interpreter exit means to the machine (counting it).
    fn vcpu_exit(&mut self, exit: CpuExit) -> VcpuExit {
        match exit {
            CpuExit::Halted => self.stats.bump("hlt"),
            CpuExit::Shutdown(_) => self.stats.bump("shutdown"),
            _ => {}
        }
        cpu_exit_to_vcpu(&self.cpu, exit)
    }
}

/// The machine's view of an interpreter exit (shared by every backend
/// built on `cpu::Cpu`). A `VmExit` reaching here had no monitor to
/// handle it: a clean stop naming it.
pub(crate) fn cpu_exit_to_vcpu(cpu: &Cpu, exit: CpuExit) -> VcpuExit {
    match exit {
        CpuExit::Budget => VcpuExit::SliceEnd,
        CpuExit::Halted => VcpuExit::Hlt {
            interrupts_enabled: cpu.state.rflags & cpu::state::rflags::IF != 0,
        },
        CpuExit::Stopped => VcpuExit::Stopped,
        CpuExit::Shutdown(fault) => VcpuExit::Shutdown {
            reason: format!("{fault} could not be delivered at rip {:#x}", cpu.state.rip),
        },
        CpuExit::VmExit(e) => VcpuExit::MonitorStop {
            reason: format!("unexpected {} exit at rip {:#x}", e.reason.name(), e.rip),
        },
    }
}

impl Accelerator for TcgAccel {
    fn name(&self) -> &'static str {
        "tcg"
    }

    fn describe(&self) -> String {
        "tcg (ringside interpreter)".to_string()
    }

    fn set_state(&mut self, state: &CpuState) -> Result<(), AccelError> {
        self.cpu.set_state(state);
        Ok(())
    }

    fn get_state(&mut self) -> Result<CpuState, AccelError> {
        Ok(self.cpu.get_state())
    }

    fn run(
        &mut self,
        platform: &mut dyn Platform,
        slice: RunSlice,
    ) -> Result<VcpuExit, AccelError> {
        loop {
            let mut budget = CHUNK;
            if let Some(limit) = slice.insn_limit {
                let done = self.cpu.instructions();
                if done >= limit {
                    return Ok(VcpuExit::InsnLimit);
                }
                budget = budget.min(limit - done);
            }
            let exit = self.cpu.run(platform, budget);
            if exit != CpuExit::Budget {
                return Ok(self.vcpu_exit(exit));
            }
            if let Some(deadline) = slice.deadline {
                if Instant::now() >= deadline {
                    return Ok(VcpuExit::SliceEnd);
                }
            }
        }
    }

    fn step(&mut self, platform: &mut dyn Platform) -> Result<VcpuExit, AccelError> {
        let exit = self.cpu.step(platform);
        Ok(self.vcpu_exit(exit))
    }

    fn can_step(&self) -> bool {
        true
    }

    fn set_trace(&mut self, trace: TraceFlags) {
        self.cpu.trace = trace;
    }

    fn instructions(&self) -> Option<u64> {
        Some(self.cpu.instructions())
    }

    fn stats(&self) -> &ExitStats {
        &self.stats
    }

    fn cpu_stats(&self) -> Option<cpu::CpuStats> {
        Some(self.cpu.stats())
    }

    fn invalidate_code(&mut self, ma: mmu::MachineAddr, len: u64) {
        self.cpu.invalidate_code(ma, len);
    }
}
