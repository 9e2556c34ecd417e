//! A VMCS-like control structure: what the modelled VT-x processor does
//! in non-root mode, and what it tells the monitor when it exits.
//!
//! The fields follow the SDM's VMCS layout (Vol. 3C, chapter 25) by name
//! and bit position, so a student can read them against the manual:
//!
//! * **Guest-state area** — not duplicated here. Under `--virt hw` the
//!   guest runs on the real (interpreted) CPU, so its architectural state
//!   *is* the `cpu::Cpu`'s [`cpu::CpuState`], exactly as the guest-state
//!   area holds the registers a VM entry loads and a VM exit saves. Only
//!   memory differs: guest-physical addresses go through the EPT
//!   ([`Vmcs::eptp`]).
//! * **Host-state area** — nominal ([`HostState`]): the monitor is Rust
//!   code, "VM exit" is a return from `Cpu::run`, so there is no host
//!   RIP/RSP to load; the fields say what they would hold.
//! * **VM-execution control fields** — pin-based and primary/secondary
//!   processor-based controls, the exception bitmap, CR0/CR4 guest/host
//!   masks and read shadows, I/O bitmaps A/B, the MSR bitmap, the EPTP.
//!   [`Vmcs::to_intercepts`] turns them into the interpreter's
//!   [`cpu::Intercepts`].
//! * **VM-exit information fields** — the basic exit reason, the exit
//!   qualification, the guest-physical / guest-linear address, the
//!   instruction length and the interruption information of the last
//!   exit ([`ExitInfo`], built by [`exit_info`]).
//!
//! The interpreter's intercepts are per instruction kind (every MOV to
//! CR0, every WRMSR); the finer VT-x conditions — "a write exits only if
//! it changes a bit the host owns", "only MSRs whose bitmap bit is set" —
//! are applied by the monitor when the coarse exit arrives
//! ([`Vmcs::cr_write_exits`], [`Vmcs::msr_exits`]). An access that passes
//! them is not a VM exit: the monitor executes it and resumes without
//! counting it, as the hardware would have done without leaving non-root
//! mode.

use cpu::state::{cr0, cr4, msr};
use cpu::{ExitReason, Intercepts, IoIntercept, VmExit};
use mmu::AccessKind;

/// Pin-based VM-execution controls (SDM Vol. 3C, Table 25-5).
pub mod pin {
    /// External-interrupt exiting.
    pub const EXT_INTR_EXITING: u32 = 1 << 0;
    /// NMI exiting.
    pub const NMI_EXITING: u32 = 1 << 3;
}

/// Primary processor-based VM-execution controls (Table 25-6).
pub mod proc1 {
    /// Interrupt-window exiting: exit at the first instruction boundary
    /// where RFLAGS.IF = 1 and there is no interrupt shadow.
    pub const INTR_WINDOW_EXITING: u32 = 1 << 2;
    pub const HLT_EXITING: u32 = 1 << 7;
    pub const INVLPG_EXITING: u32 = 1 << 9;
    pub const RDTSC_EXITING: u32 = 1 << 12;
    pub const CR3_LOAD_EXITING: u32 = 1 << 15;
    pub const CR3_STORE_EXITING: u32 = 1 << 16;
    pub const CR8_LOAD_EXITING: u32 = 1 << 19;
    pub const CR8_STORE_EXITING: u32 = 1 << 20;
    pub const UNCOND_IO_EXITING: u32 = 1 << 24;
    pub const USE_IO_BITMAPS: u32 = 1 << 25;
    pub const USE_MSR_BITMAPS: u32 = 1 << 28;
    pub const ACTIVATE_SECONDARY: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls (Table 25-7).
pub mod proc2 {
    pub const ENABLE_EPT: u32 = 1 << 1;
}

/// The nominal host-state area: what a VM exit would load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostState {
    /// The monitor's entry point for exits (a Rust function here).
    pub rip: &'static str,
    /// The monitor runs with no guest paging: its CR3 is meaningless.
    pub cr3: u64,
}

/// The VM-exit information fields of the last exit (Table 25-16 ff.).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitInfo {
    /// Basic exit reason (Appendix C); `None` for exits VT-x has no
    /// number for (never produced under `hw`).
    pub reason: Option<u16>,
    /// Exit qualification (27.2.1).
    pub qualification: u64,
    /// Guest-physical address (EPT violations).
    pub guest_physical: Option<u64>,
    /// Guest-linear address, when valid.
    pub guest_linear: Option<u64>,
    /// VM-exit instruction length.
    pub insn_len: u8,
    /// VM-exit interruption information (exceptions, external
    /// interrupts): vector, type, error-code-valid, valid.
    pub intr_info: u32,
    /// VM-exit interruption error code.
    pub intr_error_code: u32,
}

/// Interruption-information types (Table 25-17).
pub mod intr_type {
    pub const EXTERNAL: u32 = 0;
    pub const NMI: u32 = 2;
    pub const HW_EXCEPTION: u32 = 3;
}

/// Bits of an I/O-instruction exit qualification (Table 27-5).
pub mod io_qual {
    pub const IN: u64 = 1 << 3;
    pub const STRING: u64 = 1 << 4;
    pub const REP: u64 = 1 << 5;
    /// The port came from an immediate operand (0: from DX).
    pub const IMMEDIATE: u64 = 1 << 6;
}

/// Bits of an EPT-violation exit qualification (Table 27-7).
pub mod ept_qual {
    pub const READ: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const FETCH: u64 = 1 << 2;
    /// Bits 3-5: the GPA's EPT permissions (all 0: not mapped).
    /// Bit 7: the guest-linear-address field is valid.
    pub const LINEAR_VALID: u64 = 1 << 7;
    /// Bit 8: the access was to the translation of a linear address
    /// (not to a paging-structure entry).
    pub const TRANSLATED: u64 = 1 << 8;
}

/// CR-access qualification access types (Table 27-3, bits 5:4).
pub mod cr_qual {
    pub const MOV_TO_CR: u64 = 0;
    pub const MOV_FROM_CR: u64 = 1;
    pub const CLTS: u64 = 2;
    pub const LMSW: u64 = 3;
}

/// The control structure of the one vCPU.
#[derive(Clone)]
pub struct Vmcs {
    pub host: HostState,
    pub pin_based: u32,
    pub proc_based: u32,
    pub proc_based2: u32,
    /// Bit n: exception vector n exits.
    pub exception_bitmap: u32,
    /// CR0 bits the host owns: a guest write that would change one of
    /// them (relative to the read shadow) exits.
    pub cr0_guest_host_mask: u64,
    /// What the guest reads for owned CR0 bits.
    pub cr0_read_shadow: u64,
    pub cr4_guest_host_mask: u64,
    pub cr4_read_shadow: u64,
    /// I/O bitmap A (ports 0-0x7fff) and B (0x8000-0xffff): bit set = exit.
    pub io_bitmap_a: Box<[u8; 4096]>,
    pub io_bitmap_b: Box<[u8; 4096]>,
    /// The 4 KiB MSR bitmap: read-low (MSRs 0-0x1fff), read-high
    /// (0xc0000000-0xc0001fff), write-low, write-high, 1 KiB each.
    pub msr_bitmap: Box<[u8; 4096]>,
    /// EPT pointer: root table MA | (walk length - 1) << 3 | memory type.
    pub eptp: u64,
    /// The last exit's information fields.
    pub exit: ExitInfo,
}

/// EPTP memory type write-back (bits 2:0 = 6), 4-level walk (bits 5:3 = 3).
const EPTP_WB_4LEVEL: u64 = 6 | (3 << 3);

impl Vmcs {
    /// The controls KVM programs on EPT hardware (arch/x86/kvm/vmx):
    /// external-interrupt exiting, HLT exiting, I/O bitmaps with every
    /// port set (ringside's devices are all emulated), MSR bitmaps
    /// passing FS/GS/KERNEL_GS base and SYSENTER through, CR0.PE/PG and
    /// CR4.PAE owned by the host (mode changes exit), no CR3/INVLPG
    /// exiting (EPT makes them the guest's business), exception bitmap
    /// with only #MC. CPUID and VMCALL exit unconditionally.
    pub fn kvm_defaults(ept_root: u64) -> Self {
        let mut v = Vmcs {
            host: HostState {
                rip: "HwMonitor::handle_exit",
                cr3: 0,
            },
            pin_based: pin::EXT_INTR_EXITING | pin::NMI_EXITING,
            proc_based: proc1::HLT_EXITING
                | proc1::USE_IO_BITMAPS
                | proc1::USE_MSR_BITMAPS
                | proc1::ACTIVATE_SECONDARY,
            proc_based2: proc2::ENABLE_EPT,
            exception_bitmap: 1 << cpu::fault::vector::MC,
            cr0_guest_host_mask: cr0::PE | cr0::PG,
            cr0_read_shadow: 0,
            cr4_guest_host_mask: cr4::PAE,
            cr4_read_shadow: 0,
            io_bitmap_a: Box::new([0xff; 4096]),
            io_bitmap_b: Box::new([0xff; 4096]),
            msr_bitmap: Box::new([0xff; 4096]),
            eptp: (ept_root & !0xfff) | EPTP_WB_4LEVEL,
            exit: ExitInfo::default(),
        };
        for m in [
            msr::IA32_FS_BASE,
            msr::IA32_GS_BASE,
            msr::IA32_KERNEL_GS_BASE,
            msr::IA32_SYSENTER_CS,
            msr::IA32_SYSENTER_ESP,
            msr::IA32_SYSENTER_EIP,
        ] {
            v.set_msr_intercept(m, false, false);
            v.set_msr_intercept(m, true, false);
        }
        // Reading the TSC is harmless; writing it moves the guest's clock.
        v.set_msr_intercept(msr::IA32_TSC, false, false);
        v
    }

    /// The EPT root table (machine address) named by the EPTP.
    pub fn ept_root(&self) -> u64 {
        self.eptp & !0xfff
    }

    /// Byte index and bit of `index` in the MSR bitmap, or `None` for
    /// MSRs outside the two ranges (those always exit).
    fn msr_bit(index: u32, write: bool) -> Option<(usize, u8)> {
        let (base, n) = match index {
            0..=0x1fff => (0, index),
            0xc000_0000..=0xc000_1fff => (1024, index - 0xc000_0000),
            _ => return None,
        };
        let base = base + if write { 2048 } else { 0 };
        Some((base + (n / 8) as usize, (n % 8) as u8))
    }

    /// Set or clear the bitmap bit of one MSR.
    pub fn set_msr_intercept(&mut self, index: u32, write: bool, exits: bool) {
        if let Some((byte, bit)) = Self::msr_bit(index, write) {
            if let Some(b) = self.msr_bitmap.get_mut(byte) {
                if exits {
                    *b |= 1 << bit;
                } else {
                    *b &= !(1 << bit);
                }
            }
        }
    }

    /// Does RDMSR/WRMSR of `index` exit (SDM 25.1.3)?
    pub fn msr_exits(&self, index: u32, write: bool) -> bool {
        if self.proc_based & proc1::USE_MSR_BITMAPS == 0 {
            return true;
        }
        match Self::msr_bit(index, write) {
            Some((byte, bit)) => self
                .msr_bitmap
                .get(byte)
                .is_none_or(|b| b & (1 << bit) != 0),
            None => true,
        }
    }

    /// Does an access to `port` exit (the I/O bitmaps, or unconditional
    /// I/O exiting)? Multi-byte accesses exit if any byte's bit is set.
    pub fn io_exits(&self, port: u16, size: u8) -> bool {
        if self.proc_based & proc1::USE_IO_BITMAPS == 0 {
            return self.proc_based & proc1::UNCOND_IO_EXITING != 0;
        }
        (0..u32::from(size.max(1))).any(|i| {
            let p = (u32::from(port) + i) & 0xffff;
            self.io_bit(p as u16)
        })
    }

    fn io_bit(&self, port: u16) -> bool {
        let (map, p) = if port < 0x8000 {
            (&self.io_bitmap_a, port)
        } else {
            (&self.io_bitmap_b, port - 0x8000)
        };
        map.get(usize::from(p / 8))
            .is_some_and(|b| b & (1 << (p % 8)) != 0)
    }

    /// Would this MOV to CR0/CR4 (new value `val`) exit? VT-x exits when
    /// a bit set in the guest/host mask differs between the value and
    /// the read shadow (SDM 25.1.3). Other CRs: per their controls.
    pub fn cr_write_exits(&self, cr: u8, val: u64) -> bool {
        match cr {
            0 => (val ^ self.cr0_read_shadow) & self.cr0_guest_host_mask != 0,
            4 => (val ^ self.cr4_read_shadow) & self.cr4_guest_host_mask != 0,
            3 => self.proc_based & proc1::CR3_LOAD_EXITING != 0,
            8 => self.proc_based & proc1::CR8_LOAD_EXITING != 0,
            _ => true,
        }
    }

    /// CLTS exits iff the host owns CR0.TS and the shadow's TS is 1.
    pub fn clts_exits(&self) -> bool {
        self.cr0_guest_host_mask & self.cr0_read_shadow & cr0::TS != 0
    }

    /// LMSW with source `src` exits iff it would set an owned PE that the
    /// shadow has clear, or change an owned MP/EM/TS (SDM 25.1.3).
    pub fn lmsw_exits(&self, src: u16) -> bool {
        let src = u64::from(src);
        let m = self.cr0_guest_host_mask;
        let s = self.cr0_read_shadow;
        (m & cr0::PE != 0 && src & cr0::PE != 0 && s & cr0::PE == 0)
            || (src ^ s) & m & (cr0::MP | cr0::EM | cr0::TS) != 0
    }

    /// The interpreter's intercept controls for these VMCS controls. The
    /// interpreter's switches are coarser (see the module doc): a CR or
    /// MSR switch is on if any write/MSR could exit, and the monitor
    /// refines. Interrupt-window exiting is the monitor's own loop.
    pub fn to_intercepts(&self) -> Intercepts {
        let p = self.proc_based;
        let mut cr_writes = 0u16;
        if self.cr0_guest_host_mask != 0 {
            cr_writes |= 1 << 0;
        }
        if p & proc1::CR3_LOAD_EXITING != 0 {
            cr_writes |= 1 << 3;
        }
        if self.cr4_guest_host_mask != 0 {
            cr_writes |= 1 << 4;
        }
        if p & proc1::CR8_LOAD_EXITING != 0 {
            cr_writes |= 1 << 8;
        }
        let mut cr_reads = 0u16;
        if p & proc1::CR3_STORE_EXITING != 0 {
            cr_reads |= 1 << 3;
        }
        if p & proc1::CR8_STORE_EXITING != 0 {
            cr_reads |= 1 << 8;
        }
        let io = if p & proc1::USE_IO_BITMAPS != 0 {
            let mut b = Box::new([0u64; 1024]);
            for port in 0..=u16::MAX {
                if self.io_bit(port) {
                    if let Some(w) = b.get_mut(usize::from(port / 64)) {
                        *w |= 1 << (port % 64);
                    }
                }
            }
            IoIntercept::Bitmap(b)
        } else if p & proc1::UNCOND_IO_EXITING != 0 {
            IoIntercept::All
        } else {
            IoIntercept::None
        };
        let mut exceptions = self.exception_bitmap;
        if self.pin_based & pin::NMI_EXITING != 0 {
            exceptions |= 1 << cpu::fault::vector::NMI;
        }
        Intercepts {
            exceptions,
            software_interrupts: false,
            external_interrupts: self.pin_based & pin::EXT_INTR_EXITING != 0,
            sensitive: false,
            hlt: p & proc1::HLT_EXITING != 0,
            cr_writes,
            cr_reads,
            // MSRs outside the bitmap's two ranges always exit, so some
            // RDMSR/WRMSR always can: the switches stay on and the
            // monitor applies the bitmap ([`Vmcs::msr_exits`]).
            msr_reads: true,
            msr_writes: true,
            io,
            // CPUID and VMCALL exit unconditionally in VMX non-root mode.
            cpuid: true,
            invlpg: p & proc1::INVLPG_EXITING != 0,
            vmcall: true,
            rdtsc: p & proc1::RDTSC_EXITING != 0,
        }
    }
}

/// What the monitor knows about the exiting instruction beyond the exit
/// itself (from decoding it), for the qualification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsnFacts {
    /// MOV CR: the general register (0 = RAX … 15 = R15).
    pub gpr: Option<u8>,
    /// CLTS / LMSW rather than MOV CR.
    pub clts: bool,
    pub lmsw: Option<LmswSource>,
    /// I/O: the port is an immediate operand.
    pub io_immediate: bool,
    /// The linear address of the memory operand (EPT violations).
    pub linear: Option<u64>,
}

/// LMSW's operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmswSource {
    pub value: u16,
    /// From memory (qualification bit 6).
    pub memory: bool,
}

/// Build the VM-exit information fields of `e` (SDM 27.2.1).
pub fn exit_info(e: &VmExit, facts: &InsnFacts) -> ExitInfo {
    let mut info = ExitInfo {
        reason: e.reason.vmx_basic_reason(),
        insn_len: e.insn_len,
        ..ExitInfo::default()
    };
    const VALID: u32 = 1 << 31;
    const EC_VALID: u32 = 1 << 11;
    match e.reason {
        ExitReason::CrAccess { cr, write } => {
            let kind = if facts.clts {
                cr_qual::CLTS
            } else if facts.lmsw.is_some() {
                cr_qual::LMSW
            } else if write {
                cr_qual::MOV_TO_CR
            } else {
                cr_qual::MOV_FROM_CR
            };
            let mut q = u64::from(cr & 0xf) | (kind << 4);
            if let Some(g) = facts.gpr {
                q |= u64::from(g & 0xf) << 8;
            }
            if let Some(l) = facts.lmsw {
                q |= u64::from(l.memory) << 6;
                q |= u64::from(l.value) << 16;
            }
            info.qualification = q;
        }
        ExitReason::Io {
            port,
            size,
            write,
            string,
            rep,
        } => {
            let mut q = u64::from(size.saturating_sub(1) & 7) | (u64::from(port) << 16);
            if !write {
                q |= io_qual::IN;
            }
            if string {
                q |= io_qual::STRING;
            }
            if rep {
                q |= io_qual::REP;
            }
            if facts.io_immediate {
                q |= io_qual::IMMEDIATE;
            }
            info.qualification = q;
        }
        ExitReason::EptViolation { gpa, access } => {
            let mut q = match access {
                AccessKind::Read => ept_qual::READ,
                AccessKind::Write => ept_qual::WRITE,
                AccessKind::Execute => ept_qual::FETCH,
            };
            if let Some(lin) = facts.linear {
                q |= ept_qual::LINEAR_VALID | ept_qual::TRANSLATED;
                info.guest_linear = Some(lin);
            }
            info.qualification = q;
            info.guest_physical = Some(gpa);
        }
        ExitReason::Invlpg { lin } => {
            info.qualification = lin;
            info.guest_linear = Some(lin);
        }
        ExitReason::Exception {
            vector,
            error_code,
            cr2,
        } => {
            let ty = if vector == cpu::fault::vector::NMI {
                intr_type::NMI
            } else {
                intr_type::HW_EXCEPTION
            };
            info.intr_info = u32::from(vector) | (ty << 8) | VALID;
            if let Some(ec) = error_code {
                info.intr_info |= EC_VALID;
                info.intr_error_code = ec;
            }
            // #PF: the qualification is the faulting linear address.
            if let Some(a) = cr2 {
                info.qualification = a;
            }
        }
        ExitReason::ExternalInterrupt { vector } => {
            info.intr_info = u32::from(vector) | (intr_type::EXTERNAL << 8) | VALID;
        }
        ExitReason::Cpuid { .. }
        | ExitReason::Hlt
        | ExitReason::Msr { .. }
        | ExitReason::Vmcall
        | ExitReason::Rdtsc
        | ExitReason::SoftwareInterrupt { .. }
        | ExitReason::Sensitive { .. } => {}
    }
    info
}

/// The `(…)` part of a trap event's detail: the exit in words.
pub fn describe_exit(
    reason: &ExitReason,
    facts: &InsnFacts,
    cpuid_out: Option<[u32; 4]>,
) -> String {
    match *reason {
        ExitReason::Io {
            port,
            size,
            write,
            string,
            rep,
        } => {
            let op = match (write, string) {
                (true, false) => "out",
                (false, false) => "in",
                (true, true) => "outs",
                (false, true) => "ins",
            };
            let plural = if size == 1 { "" } else { "s" };
            let rep = if rep { "rep " } else { "" };
            format!("{rep}{op} {port:#x}, {size} byte{plural}")
        }
        ExitReason::CrAccess { cr, write } => {
            if facts.clts {
                "clts".into()
            } else if let Some(l) = facts.lmsw {
                format!("lmsw {:#x}", l.value)
            } else if write {
                format!("mov cr{cr}, {}", gpr_name(facts.gpr))
            } else {
                format!("mov {}, cr{cr}", gpr_name(facts.gpr))
            }
        }
        ExitReason::Msr { index, write } => {
            format!("{} {index:#x}", if write { "wrmsr" } else { "rdmsr" })
        }
        ExitReason::Cpuid { leaf, subleaf } => match cpuid_out {
            Some([a, b, c, d]) => format!(
                "cpuid leaf {leaf:#x}.{subleaf:#x} -> eax={a:#x} ebx={b:#x} ecx={c:#x} edx={d:#x}"
            ),
            None => format!("cpuid leaf {leaf:#x}.{subleaf:#x}"),
        },
        ExitReason::EptViolation { gpa, access } => {
            let a = match access {
                AccessKind::Read => "read",
                AccessKind::Write => "write",
                AccessKind::Execute => "fetch",
            };
            match facts.linear {
                Some(va) => format!("{a} gpa {gpa:#x} (va {va:#x})"),
                None => format!("{a} gpa {gpa:#x}"),
            }
        }
        ExitReason::ExternalInterrupt { vector } => format!("vector {vector:#x}"),
        ExitReason::Exception { vector, .. } => format!("vector {vector}"),
        ExitReason::Invlpg { lin } => format!("invlpg {lin:#x}"),
        ExitReason::Hlt => "hlt".into(),
        ExitReason::Vmcall => "vmcall".into(),
        ExitReason::Rdtsc => "rdtsc".into(),
        ExitReason::SoftwareInterrupt { vector, .. } => format!("int {vector:#x}"),
        ExitReason::Sensitive { mnemonic } => format!("{mnemonic:?}"),
    }
}

fn gpr_name(g: Option<u8>) -> &'static str {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    g.and_then(|g| NAMES.get(usize::from(g)).copied())
        .unwrap_or("?")
}
