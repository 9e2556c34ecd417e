//! Paravirtualization (`--virt para`): the hypercall ABI of
//! docs/VIRTUALIZATION.md ("CONTRACT: the hypercall ABI"), CPUID
//! discovery, and the shared page's virtual interrupt flag.
//!
//! VMCALL is #UD on the real CPU (it is not in VMX non-root operation);
//! the #UD exit whose instruction is VMCALL, from the guest kernel, is a
//! hypercall. CPUID exits (modelled CPUID faulting) so the monitor can add
//! its signature leaves.

use super::{FullMonitor, VcpuExit};
use crate::monitor::TrapCause;
use cpu::state::{cr4, reg};
use cpu::Platform;
use iced_x86::Mnemonic;
use mmu::{GuestPhysAddr, MachineAddr};

pub const HC_NOP: u64 = 0;
pub const HC_MMU_UPDATE: u64 = 1;
pub const HC_SET_CR3: u64 = 2;
pub const HC_IRQ_EVENT_CHECK: u64 = 3;
pub const HC_SET_TIMER: u64 = 4;
pub const HC_REGISTER_SHARED: u64 = 5;

/// Unknown hypercall.
pub const ENOSYS: i64 = -1;
/// Bad argument.
pub const EINVAL: i64 = -2;

/// Requests one HC_MMU_UPDATE may carry.
pub const MMU_BATCH_MAX: u64 = 512;
const MMU_PT_UPDATE: u64 = 0;
const MMU_INVLPG: u64 = 1;
const MMU_FLUSH_TLB: u64 = 2;

/// CPUID leaves of the hypervisor range.
pub const CPUID_SIGNATURE_LEAF: u32 = 0x4000_0000;
pub const CPUID_VERSION_LEAF: u32 = 0x4000_0001;
/// "RingsideVMM\0" as EBX, ECX, EDX.
pub const SIGNATURE: [u32; 3] = [
    u32::from_le_bytes(*b"Ring"),
    u32::from_le_bytes(*b"side"),
    u32::from_le_bytes(*b"VMM\0"),
];
pub const ABI_VERSION: u32 = 1;
/// CPUID.1:ECX bit 31, "hypervisor present".
const HYPERVISOR_BIT: u32 = 1 << 31;

/// Local APIC registers HC_SET_TIMER programs (xAPIC offsets).
const APIC_SVR: u64 = 0x0f0;
const APIC_LVT_TIMER: u64 = 0x320;
const APIC_TIMER_INITIAL: u64 = 0x380;
const APIC_TIMER_DIVIDE: u64 = 0x3e0;
/// Divide by 16: the 1 GHz APIC bus clock counts 62.5 times per µs.
const APIC_DIVIDE_16: u64 = 0x3;
const LVT_PERIODIC: u64 = 1 << 17;
const LVT_MASKED: u64 = 1 << 16;
/// SVR: APIC software-enabled, spurious vector 0xff.
const SVR_ENABLED: u64 = 0x1ff;

/// The CPUID answer under para: the interpreter's model plus the
/// hypervisor leaves.
pub fn cpuid_answer(leaf: u32, subleaf: u32, apic_enabled: bool, osxsave: bool) -> [u32; 4] {
    match leaf {
        CPUID_SIGNATURE_LEAF => [CPUID_VERSION_LEAF, SIGNATURE[0], SIGNATURE[1], SIGNATURE[2]],
        CPUID_VERSION_LEAF => [ABI_VERSION, 0, 0, 0],
        _ => {
            let mut r = cpu::cpuid(leaf, subleaf);
            if leaf == 1 {
                r[2] |= HYPERVISOR_BIT;
                if !apic_enabled {
                    r[3] &= !(1 << 9);
                }
                if osxsave {
                    r[2] |= 1 << 27;
                }
            }
            r
        }
    }
}

impl FullMonitor {
    /// Is the #UD at the guest's RIP a hypercall (VMCALL at CPL 0)?
    pub(super) fn is_hypercall(&mut self) -> bool {
        self.sync_in();
        self.vcpu.state.cpl() == 0
            && super::vcpu::fetch_insn(&self.ram, &self.p2m, &self.vcpu.state)
                .is_some_and(|i| i.mnemonic() == Mnemonic::Vmcall)
    }

    /// Execute the hypercall at the guest's RIP (state absorbed).
    pub(super) fn hypercall(&mut self, plat: &mut dyn Platform) -> Option<VcpuExit> {
        let site = self.site();
        let g = &self.vcpu.state.gpr;
        let (nr, a1, a2) = (g[reg::RAX], g[reg::RDI], g[reg::RSI]);
        let ret = match nr {
            HC_NOP => 0,
            HC_MMU_UPDATE => self.hc_mmu_update(a1, a2),
            HC_SET_CR3 => self.hc_set_cr3(a1),
            HC_IRQ_EVENT_CHECK => 0,
            HC_SET_TIMER => self.hc_set_timer(plat, a1, a2),
            HC_REGISTER_SHARED => self.hc_register_shared(a1),
            _ => ENOSYS,
        };
        let s = &mut self.vcpu.state;
        s.gpr[reg::RAX] = ret as u64;
        s.rip = s.rip.wrapping_add(3);
        s.intr.shadow = false;
        s.rflags &= !cpu::state::rflags::RF;
        self.log.trap(plat, TrapCause::Hypercall, &site, None, || {
            format!("{} ({a1:#x}, {a2:#x}) = {ret}", hypercall_name(nr))
        });
        if let Err(why) = self.sync_out() {
            return self.monitor_stop(why);
        }
        if nr == HC_IRQ_EVENT_CHECK {
            return self.event_check(plat);
        }
        None
    }

    /// HC_IRQ_EVENT_CHECK: deliver what waits if the mask is clear.
    fn event_check(&mut self, plat: &mut dyn Platform) -> Option<VcpuExit> {
        if let Some(ma) = self.shared {
            let _ = self.ram.write_le(MachineAddr(ma + 1), 1, 0);
        }
        if !self.irq_open() {
            return None;
        }
        let vector = match self.held_irq.take() {
            Some(v) => Some(v),
            None if plat.interrupt_pending() => plat.ack_interrupt(),
            None => None,
        };
        let v = vector?;
        let site = self.site();
        self.log
            .trap(plat, TrapCause::InterruptWindow, &site, None, || {
                format!("HC_IRQ_EVENT_CHECK delivers vector {v:#x}")
            });
        self.deliver_irq(plat, v)
    }

    /// HC_MMU_UPDATE: apply a batch of page-table writes and TLB requests,
    /// updating the shadow entries in place. Returns the number done.
    fn hc_mmu_update(&mut self, array: u64, count: u64) -> i64 {
        if count > MMU_BATCH_MAX {
            return EINVAL;
        }
        let regs = super::vcpu::paging_regs(&self.vcpu.state);
        let mut done = 0i64;
        for i in 0..count {
            let mut req = [0u8; 16];
            let at = array.wrapping_add(i * 16);
            if !super::vcpu::read_linear(&self.ram, &self.p2m, &regs, at, &mut req) {
                return if done == 0 { EINVAL } else { done };
            }
            let (lo, hi) = req.split_at(8);
            let ptr = u64::from_le_bytes(lo.try_into().unwrap_or([0; 8]));
            let val = u64::from_le_bytes(hi.try_into().unwrap_or([0; 8]));
            match ptr & 3 {
                MMU_PT_UPDATE => {
                    let Some(ma) = self.p2m.lookup(GuestPhysAddr(ptr & !7)).map(|m| m.0) else {
                        return if done == 0 { EINVAL } else { done };
                    };
                    if self.ram.write_le(MachineAddr(ma), 8, val).is_err() {
                        return if done == 0 { EINVAL } else { done };
                    }
                    self.real.invalidate_code(MachineAddr(ma), 8);
                    if self.shadow.refresh_entry(ma).is_err() {
                        // Pool exhausted: start over; sync_out rebuilds the root.
                        self.shadow.drop_all();
                    }
                }
                MMU_INVLPG => {
                    // The shadow already follows every entry written through
                    // this hypercall: only the TLBs may hold the old one.
                    self.real.flush_tlb_page(val);
                }
                MMU_FLUSH_TLB => self.real.flush_tlb_all(),
                _ => return if done == 0 { EINVAL } else { done },
            }
            done += 1;
        }
        self.vcpu.flush_tlb_all();
        done
    }

    /// HC_SET_CR3: switch address space (PCID bits ignored).
    fn hc_set_cr3(&mut self, cr3: u64) -> i64 {
        let root = cr3 & 0x000f_ffff_ffff_f000;
        if self.vcpu.state.cr0 & cpu::state::cr0::PG == 0
            || self.p2m.lookup(GuestPhysAddr(root)).is_none()
        {
            return EINVAL;
        }
        self.vcpu.state.cr3 = root;
        self.vcpu.flush_tlb_all();
        0
    }

    /// HC_REGISTER_SHARED: the page holding `irq_mask` and `irq_pending`.
    fn hc_register_shared(&mut self, pa: u64) -> i64 {
        if pa & 0xfff != 0 {
            return EINVAL;
        }
        match self.p2m.lookup(GuestPhysAddr(pa)) {
            Some(ma) => {
                self.shared = Some(ma.0);
                0
            }
            None => EINVAL,
        }
    }

    /// HC_SET_TIMER: drive the local APIC timer for the guest, one exit
    /// instead of four trapped MMIO writes.
    fn hc_set_timer(&mut self, plat: &mut dyn Platform, vector: u64, period_us: u64) -> i64 {
        if !(32..=255).contains(&vector) {
            return EINVAL;
        }
        let base = self.vcpu.state.msr.apic_base & 0x000f_ffff_ffff_f000;
        let mut w = |off: u64, v: u64| plat.mmio_write(GuestPhysAddr(base + off), 4, v);
        if period_us == 0 {
            w(APIC_LVT_TIMER, LVT_MASKED | vector);
            w(APIC_TIMER_INITIAL, 0);
            return 0;
        }
        // 62.5 counts per microsecond at divide-by-16.
        let count = period_us.saturating_mul(125) / 2;
        let Ok(count) = u32::try_from(count) else {
            return EINVAL;
        };
        w(APIC_SVR, SVR_ENABLED);
        w(APIC_TIMER_DIVIDE, APIC_DIVIDE_16);
        w(APIC_LVT_TIMER, LVT_PERIODIC | vector);
        w(APIC_TIMER_INITIAL, u64::from(count.max(1)));
        0
    }

    /// A CPUID exit under para.
    pub(super) fn cpuid(
        &mut self,
        plat: &mut dyn Platform,
        leaf: u32,
        subleaf: u32,
        len: u8,
    ) -> Option<VcpuExit> {
        self.sync_in();
        let site = self.site();
        let s = &mut self.vcpu.state;
        let apic = s.msr.apic_base & (1 << 11) != 0;
        let r = cpuid_answer(leaf, subleaf, apic, s.cr4 & cr4::OSXSAVE != 0);
        for (i, v) in [reg::RAX, reg::RBX, reg::RCX, reg::RDX].into_iter().zip(r) {
            s.gpr[i] = u64::from(v);
        }
        s.rip = s.rip.wrapping_add(u64::from(len.max(2)));
        s.intr.shadow = false;
        self.log.trap(plat, TrapCause::Cpuid, &site, None, || {
            format!("leaf {leaf:#x}.{subleaf:#x} -> {:08x?}", r)
        });
        if let Err(why) = self.sync_out() {
            return self.monitor_stop(why);
        }
        None
    }
}

fn hypercall_name(nr: u64) -> &'static str {
    match nr {
        HC_NOP => "HC_NOP",
        HC_MMU_UPDATE => "HC_MMU_UPDATE",
        HC_SET_CR3 => "HC_SET_CR3",
        HC_IRQ_EVENT_CHECK => "HC_IRQ_EVENT_CHECK",
        HC_SET_TIMER => "HC_SET_TIMER",
        HC_REGISTER_SHARED => "HC_REGISTER_SHARED",
        _ => "unknown hypercall",
    }
}
