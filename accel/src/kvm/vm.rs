//! The KVM virtual machine: memory slots, the real-mode helper pages, VM
//! capabilities, and the one vCPU.
//!
//! Interrupt controllers: we do **not** call `KVM_CREATE_IRQCHIP`. The PIC,
//! PIT and local APIC are ringside's own device models (the `devices`
//! crate), shared with the tcg backend, so both backends see exactly the
//! same interrupt behaviour and the same device bugs. The price is that
//! every local-APIC access (EOI, timer programming, TPR) is an MMIO exit to
//! userspace (~5 µs each on kvm-pvm, ~1-2 µs on VT-x/AMD-V) instead of
//! being handled in the kernel or by APIC virtualization, and interrupts are
//! injected from userspace with `KVM_INTERRUPT` when the vCPU opens its
//! interrupt window (see `run.rs`).

use crate::AccelError;
use kvm_bindings::{
    kvm_enable_cap, kvm_userspace_memory_region, KVM_CAP_DEBUGREGS,
    KVM_CAP_EXIT_ON_EMULATION_FAILURE,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};
use mmu::{GuestRam, PhysLayout};

/// Guest-physical address of the three pages KVM needs for a real-mode TSS
/// on Intel hosts without "unrestricted guest" (`KVM_SET_TSS_ADDR`). It
/// must be unused by RAM and devices: this is in the 32-bit MMIO hole
/// (0xc000_0000-0x1_0000_0000), above the virtio-mmio window (0xd000_0000)
/// and the APICs (0xfec0_0000, 0xfee0_0000), below the firmware area near
/// 4 GiB. The same choice as Firecracker. Harmless on AMD-V and kvm-pvm.
pub const TSS_ADDR: u64 = 0xfffb_d000;
/// The one page KVM uses for an identity-mapped page table when it runs
/// real mode with paging emulation on Intel (`KVM_SET_IDENTITY_MAP_ADDR`);
/// the page just below the TSS.
pub const IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;

/// What the host KVM can do, checked once at VM creation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caps {
    /// `KVM_GET/SET_XCRS` (XCR0).
    pub xcrs: bool,
    /// `KVM_GET/SET_VCPU_EVENTS` (interrupt shadow, NMI blocking).
    pub vcpu_events: bool,
    /// `KVM_GET/SET_DEBUGREGS`.
    pub debugregs: bool,
    /// Emulation failures exit to userspace with the instruction bytes
    /// (`KVM_CAP_EXIT_ON_EMULATION_FAILURE` enabled), at any CPL. Without
    /// it KVM injects #UD into user-mode guests instead, which would make
    /// the two backends silently disagree.
    pub emulation_failure_exit: bool,
}

/// The VM file descriptors, kept in one place so they are dropped together.
pub struct Vm {
    pub kvm: Kvm,
    pub fd: VmFd,
    pub caps: Caps,
}

fn host_err(what: &'static str) -> impl Fn(vmm_sys_util::errno::Error) -> AccelError {
    move |e| AccelError::Host {
        what,
        detail: e.to_string(),
    }
}

impl Vm {
    /// Create the VM and register guest RAM.
    ///
    /// `ram` must be the RAM `layout` describes; the caller keeps the `Arc`
    /// alive for as long as this `Vm` exists (see [`super::KvmAccel`]).
    pub fn new(kvm: Kvm, ram: &GuestRam, layout: &PhysLayout) -> Result<Vm, AccelError> {
        if !kvm.check_extension(Cap::ImmediateExit) {
            return Err(AccelError::Unavailable(
                "the host KVM lacks KVM_CAP_IMMEDIATE_EXIT (Linux < 4.11), which ringside's \
                 timer kicks need"
                    .to_string(),
            ));
        }
        let fd = kvm.create_vm().map_err(host_err("KVM_CREATE_VM"))?;
        let caps = Caps {
            xcrs: kvm.check_extension(Cap::Xcrs),
            vcpu_events: kvm.check_extension(Cap::VcpuEvents),
            debugregs: kvm.check_extension_raw(KVM_CAP_DEBUGREGS.into()) > 0,
            emulation_failure_exit: false,
        };
        let mut vm = Vm { kvm, fd, caps };
        vm.register_ram(ram, layout)?;
        vm.fd
            .set_identity_map_address(IDENTITY_MAP_ADDR)
            .map_err(host_err("KVM_SET_IDENTITY_MAP_ADDR"))?;
        vm.fd
            .set_tss_address(TSS_ADDR as usize)
            .map_err(host_err("KVM_SET_TSS_ADDR"))?;
        if vm
            .kvm
            .check_extension_raw(KVM_CAP_EXIT_ON_EMULATION_FAILURE.into())
            > 0
        {
            let cap = kvm_enable_cap {
                cap: KVM_CAP_EXIT_ON_EMULATION_FAILURE,
                args: [1, 0, 0, 0],
                ..Default::default()
            };
            vm.caps.emulation_failure_exit = vm.fd.enable_cap(&cap).is_ok();
        }
        Ok(vm)
    }

    /// One memory slot per RAM region of the layout, backed by the shared
    /// [`GuestRam`] mapping: KVM and the interpreter see the same bytes.
    fn register_ram(&self, ram: &GuestRam, layout: &PhysLayout) -> Result<(), AccelError> {
        for (slot, region) in layout.ram_regions().iter().enumerate() {
            let end = region.machine.0.checked_add(region.len);
            if end.is_none_or(|e| e > ram.size()) {
                return Err(AccelError::BadState(format!(
                    "RAM region at GPA {:#x} (+{:#x}) lies outside guest RAM ({:#x} bytes)",
                    region.start.0,
                    region.len,
                    ram.size()
                )));
            }
            let region_desc = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start.0,
                memory_size: region.len,
                userspace_addr: ram.host_base() as u64 + region.machine.0,
            };
            // SAFETY: the host range [host_base + machine, +len) was just
            // checked to lie inside the `GuestRam` mapping. `KvmAccel` holds
            // an `Arc<GuestRam>` and drops it only after the vCPU and VM file
            // descriptors (field order), so the mapping outlives every use
            // KVM makes of this slot. Guest writes racing with host reads is
            // the accepted model for guest memory (see `mmu::ram`).
            unsafe { self.fd.set_user_memory_region(region_desc) }
                .map_err(host_err("KVM_SET_USER_MEMORY_REGION"))?;
        }
        Ok(())
    }

    /// Create vCPU 0.
    pub fn create_vcpu(&self) -> Result<VcpuFd, AccelError> {
        self.fd.create_vcpu(0).map_err(host_err("KVM_CREATE_VCPU"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmu::layout::{IOAPIC_BASE, LAPIC_BASE, MMIO_HOLE_END, MMIO_HOLE_START, VIRTIO_MMIO_BASE};
    use mmu::layout::{VIRTIO_MMIO_SLOT, VIRTIO_MMIO_SLOTS};

    #[test]
    fn helper_pages_avoid_ram_and_devices() {
        let tss = TSS_ADDR..TSS_ADDR + 3 * 4096;
        let idmap = IDENTITY_MAP_ADDR..IDENTITY_MAP_ADDR + 4096;
        for r in [&tss, &idmap] {
            assert!(r.start >= MMIO_HOLE_START && r.end <= MMIO_HOLE_END);
            for dev in [LAPIC_BASE, IOAPIC_BASE] {
                assert!(!r.contains(&dev));
            }
            let virtio_end = VIRTIO_MMIO_BASE + VIRTIO_MMIO_SLOT * VIRTIO_MMIO_SLOTS;
            assert!(r.start >= virtio_end);
        }
        assert!(idmap.end <= tss.start);
    }
}
