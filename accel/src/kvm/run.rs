//! The exit loop: enter the guest with `KVM_RUN`, handle what comes back.
//!
//! Each turn of the loop:
//! 1. ends the slice if its deadline has passed;
//! 2. offers pending events: an NMI goes in with `KVM_NMI`; a maskable
//!    interrupt with `KVM_INTERRUPT` when KVM says the vCPU can take one
//!    (`ready_for_interrupt_injection`, RFLAGS.IF = 1), acknowledging it
//!    from the platform only at that moment (INTA); otherwise we set
//!    `request_interrupt_window` and KVM exits as soon as the guest can
//!    take it (`KVM_EXIT_IRQ_WINDOW_OPEN`);
//! 3. runs the guest and dispatches the exit: port I/O and MMIO go to the
//!    platform, HLT/shutdown/errors end `run()`.
//!
//! Instructions that exit to userspace (IN/OUT, MMIO) are finished by KVM
//! on the next `KVM_RUN`: an IN's result is written to RAX, RIP moves past
//! the instruction. If the platform asks to stop after an I/O, we re-enter
//! once with `immediate_exit` set, which completes the instruction without
//! running guest code, so that `run()` never returns with half an
//! instruction done and `get_state` sees the architectural state after
//! the OUT.

use super::vcpu::Vcpu;
use crate::{AccelError, RunSlice, VcpuExit};
use cpu::event::CpuEvent;
use cpu::Platform;
use kvm_bindings::{
    kvm_interrupt, kvm_run, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_IO, KVM_EXIT_IO_IN,
    KVM_INTERNAL_ERROR_DELIVERY_EV, KVM_INTERNAL_ERROR_EMULATION,
    KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES, KVM_INTERNAL_ERROR_SIMUL_EX,
    KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::VcpuExit as KvmExit;
use mmu::{GuestPhysAddr, PhysTarget};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

/// `KVM_INTERRUPT` (not wrapped by kvm-ioctls): queue an external interrupt
/// vector for injection at the next entry. Only valid with a userspace
/// interrupt controller, which is what ringside uses.
const KVMIO: u32 = 0xAE;
vmm_sys_util::ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);

/// The longest x86 instruction.
const MAX_INSN_LEN: usize = 15;

/// What one `KVM_RUN` asked of us.
enum Step {
    /// Go round the loop again.
    Continue,
    /// Port I/O to dispatch (read from `kvm_run.io`).
    Pio,
    /// MMIO or port I/O was dispatched: check for a stop request.
    IoDone,
    /// `KVM_RUN` returned EINTR (a kick, or another signal).
    Interrupted,
    Hlt,
    InternalError,
    Return(VcpuExit),
}

impl Vcpu {
    /// `kvm_run.immediate_exit`, accessed atomically because the kicker
    /// thread writes it too.
    fn immediate_exit(&mut self) -> &AtomicU8 {
        let p: *mut u8 = &mut self.fd.get_kvm_run().immediate_exit;
        // SAFETY: `p` points into the vCPU's kvm_run mapping, which lives as
        // long as `self.fd`; the returned reference borrows `self`. Every
        // access ringside makes to this byte is atomic (here and in
        // kick.rs); the kernel reads it with READ_ONCE.
        unsafe { AtomicU8::from_ptr(p) }
    }

    /// Pointer to `kvm_run.immediate_exit` for the kicker.
    pub fn immediate_exit_ptr(&mut self) -> *mut u8 {
        &mut self.fd.get_kvm_run().immediate_exit
    }

    fn inject(&mut self, vector: u8) -> Result<(), AccelError> {
        let irq = kvm_interrupt {
            irq: u32::from(vector),
        };
        // SAFETY: `self.fd` is a vCPU file descriptor, KVM_INTERRUPT takes a
        // pointer to a `struct kvm_interrupt` that the kernel only reads,
        // and `irq` outlives the call.
        let r = unsafe { vmm_sys_util::ioctl::ioctl_with_ref(&self.fd, KVM_INTERRUPT(), &irq) };
        if r != 0 {
            return Err(AccelError::Host {
                what: "KVM_INTERRUPT",
                detail: std::io::Error::last_os_error().to_string(),
            });
        }
        Ok(())
    }

    /// Offer pending events before entering. Returns `Some(exit)` when the
    /// vCPU must not be entered (it stays halted).
    fn offer_events(
        &mut self,
        platform: &mut dyn Platform,
    ) -> Result<Option<VcpuExit>, AccelError> {
        if platform.take_nmi() {
            self.fd.nmi().map_err(|e| AccelError::Host {
                what: "KVM_NMI",
                detail: e.to_string(),
            })?;
            self.halted = false;
        }
        let mut window = false;
        if platform.interrupt_pending() {
            if self.ready_for_injection && self.if_flag {
                if let Some(vector) = platform.ack_interrupt() {
                    self.inject(vector)?;
                    self.halted = false;
                    self.ready_for_injection = false;
                }
                // More waiting behind it: exit again as soon as the guest
                // can take the next one.
                window = platform.interrupt_pending();
            } else if self.halted && self.if_flag {
                // HLT with IF = 1 should leave KVM ready for injection; if
                // this KVM says otherwise, let it run to the window rather
                // than report HLT forever while an interrupt waits.
                self.halted = false;
                window = true;
            } else {
                window = true;
            }
        }
        if self.halted {
            return Ok(Some(VcpuExit::Hlt {
                interrupts_enabled: self.if_flag,
            }));
        }
        self.fd.get_kvm_run().request_interrupt_window = u8::from(window);
        Ok(None)
    }

    /// Run until an exit the machine must see.
    pub fn run(
        &mut self,
        platform: &mut dyn Platform,
        slice: RunSlice,
    ) -> Result<VcpuExit, AccelError> {
        if self.tsc_pending {
            let tsc = platform.tsc();
            self.write_tsc(tsc)?;
        }
        // Set once the platform asked to stop: we only re-enter to complete
        // the last I/O instruction (immediate_exit = 1), then return.
        let mut stopping = false;
        loop {
            if !stopping {
                if slice.deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(VcpuExit::SliceEnd);
                }
                if let Some(exit) = self.offer_events(platform)? {
                    return Ok(exit);
                }
            }
            let step = self.enter(platform)?;
            self.after_exit(platform);
            match step {
                Step::Continue => {}
                Step::Pio => {
                    self.dispatch_pio(platform)?;
                    if !stopping && platform.stop_requested() {
                        stopping = true;
                        self.immediate_exit().store(1, Ordering::SeqCst);
                    }
                }
                Step::IoDone => {
                    if !stopping && platform.stop_requested() {
                        stopping = true;
                        self.immediate_exit().store(1, Ordering::SeqCst);
                    }
                }
                Step::Interrupted => {
                    // When stopping, this EINTR is our own immediate_exit
                    // flush, not a kick: not counted.
                    if stopping {
                        return Ok(VcpuExit::Stopped);
                    }
                    self.stats.bump("intr");
                    return Ok(VcpuExit::SliceEnd);
                }
                Step::Hlt => {
                    self.halted = true;
                    return Ok(VcpuExit::Hlt {
                        interrupts_enabled: self.if_flag,
                    });
                }
                Step::InternalError => {
                    return Ok(VcpuExit::HostLimit {
                        detail: self.internal_error_detail(),
                    })
                }
                Step::Return(exit) => return Ok(exit),
            }
        }
    }

    /// One `KVM_RUN`, classified. MMIO is dispatched here, while KVM's data
    /// buffer is borrowed.
    fn enter(&mut self, platform: &mut dyn Platform) -> Result<Step, AccelError> {
        let trace_io = self.trace.io;
        let stats = &mut self.stats;
        let step = match self.fd.run() {
            Ok(exit) => match exit {
                KvmExit::IoIn(..) | KvmExit::IoOut(..) => {
                    stats.bump("io");
                    Step::Pio
                }
                KvmExit::MmioRead(addr, data) => {
                    stats.bump("mmio");
                    let n = data.len().min(8);
                    let val = platform.mmio_read(GuestPhysAddr(addr), n as u8);
                    if let Some(dst) = data.get_mut(..n) {
                        dst.copy_from_slice(&val.to_le_bytes()[..n]);
                    }
                    if trace_io {
                        platform.event(&CpuEvent::Mmio {
                            pa: addr,
                            size: n as u8,
                            write: false,
                            val,
                        });
                    }
                    Step::IoDone
                }
                KvmExit::MmioWrite(addr, data) => {
                    stats.bump("mmio");
                    let n = data.len().min(8);
                    let mut b = [0u8; 8];
                    b[..n].copy_from_slice(&data[..n]);
                    let val = u64::from_le_bytes(b);
                    platform.mmio_write(GuestPhysAddr(addr), n as u8, val);
                    if trace_io {
                        platform.event(&CpuEvent::Mmio {
                            pa: addr,
                            size: n as u8,
                            write: true,
                            val,
                        });
                    }
                    Step::IoDone
                }
                KvmExit::Hlt => {
                    stats.bump("hlt");
                    Step::Hlt
                }
                KvmExit::IrqWindowOpen => {
                    stats.bump("irq-window");
                    Step::Continue
                }
                KvmExit::Intr => Step::Interrupted,
                KvmExit::Shutdown => {
                    stats.bump("shutdown");
                    Step::Return(VcpuExit::Shutdown {
                        reason: "KVM_EXIT_SHUTDOWN: the CPU shut down on a triple fault"
                            .to_string(),
                    })
                }
                KvmExit::InternalError => {
                    stats.bump("internal-error");
                    Step::InternalError
                }
                KvmExit::FailEntry(reason, cpu) => {
                    stats.bump("fail-entry");
                    Step::Return(VcpuExit::HostLimit {
                        detail: format!(
                            "the host KVM ({}) could not enter the guest (KVM_EXIT_FAIL_ENTRY, \
                             hardware entry failure reason {reason:#x} on host CPU {cpu}): the \
                             guest state is one this host cannot run",
                            self.host
                        ),
                    })
                }
                KvmExit::SystemEvent(kind, _) => {
                    stats.bump("system-event");
                    Step::Return(match kind {
                        KVM_SYSTEM_EVENT_SHUTDOWN | KVM_SYSTEM_EVENT_RESET => VcpuExit::Shutdown {
                            reason: format!("KVM system event {kind} (shutdown/reset)"),
                        },
                        _ => VcpuExit::HostLimit {
                            detail: format!("unexpected KVM system event {kind}"),
                        },
                    })
                }
                other => {
                    stats.bump("other");
                    Step::Return(VcpuExit::HostLimit {
                        detail: format!(
                            "unexpected KVM exit {other:?} from the host KVM ({})",
                            self.host
                        ),
                    })
                }
            },
            Err(e) if e.errno() == libc::EINTR => Step::Interrupted,
            Err(e) => {
                return Err(AccelError::Host {
                    what: "KVM_RUN",
                    detail: e.to_string(),
                })
            }
        };
        Ok(step)
    }

    /// Pick up what KVM reports on every exit: interrupt readiness, and
    /// changes the guest made without an exit that the platform's
    /// interrupt controller must follow (IA32_APIC_BASE, CR8).
    fn after_exit(&mut self, platform: &mut dyn Platform) {
        let run = self.fd.get_kvm_run();
        self.ready_for_injection = run.ready_for_interrupt_injection != 0;
        self.if_flag = run.if_flag != 0;
        let (apic_base, cr8) = (run.apic_base, run.cr8);
        if apic_base != self.last_apic_base {
            self.last_apic_base = apic_base;
            platform.apic_base_changed(apic_base);
        }
        if cr8 != self.last_cr8 {
            self.last_cr8 = cr8;
            // The platform takes the CR8 value (priority class 0-15).
            platform.tpr_changed((cr8 & 0xf) as u8);
        }
    }

    /// Hand a `KVM_EXIT_IO` to the platform: every repetition of a string
    /// instruction (KVM batches `count` of them, `size` bytes each).
    fn dispatch_pio(&mut self, platform: &mut dyn Platform) -> Result<(), AccelError> {
        let run_size = self.run_size;
        let trace_io = self.trace.io;
        let run: *mut kvm_run = self.fd.get_kvm_run();
        // SAFETY: `run` points to the live kvm_run mapping; reading plain
        // fields by value.
        let exit_reason = unsafe { (*run).exit_reason };
        if exit_reason != KVM_EXIT_IO {
            return Err(AccelError::Host {
                what: "KVM_RUN",
                detail: format!("expected an I/O exit, kvm_run says {exit_reason}"),
            });
        }
        // SAFETY: exit_reason is KVM_EXIT_IO, so `io` is the union's active
        // member; it is plain data, copied out.
        let io = unsafe { (*run).__bindgen_anon_1.io };
        let size = usize::from(io.size);
        let len = size.checked_mul(io.count as usize);
        let off = usize::try_from(io.data_offset).ok();
        let (Some(len), Some(off)) = (len, off) else {
            return Err(bad_io(&io));
        };
        if !matches!(size, 1 | 2 | 4) || off.checked_add(len).is_none_or(|end| end > run_size) {
            return Err(bad_io(&io));
        }
        // SAFETY: [off, off+len) lies inside the vCPU mapping (checked just
        // above against its size) and beyond `struct kvm_run` itself, in the
        // page KVM reserves for PIO data; nothing else references those
        // bytes while this slice lives (the kernel only touches them inside
        // KVM_RUN).
        let data = unsafe { std::slice::from_raw_parts_mut(run.cast::<u8>().add(off), len) };
        let input = u32::from(io.direction) == KVM_EXIT_IO_IN;
        for chunk in data.chunks_exact_mut(size) {
            let val = if input {
                let v = platform.pio_in(io.port, size as u8);
                chunk.copy_from_slice(&v.to_le_bytes()[..size]);
                v
            } else {
                let mut b = [0u8; 4];
                b[..size].copy_from_slice(chunk);
                let v = u32::from_le_bytes(b);
                platform.pio_out(io.port, size as u8, v);
                v
            };
            if trace_io {
                platform.event(&CpuEvent::Pio {
                    port: io.port,
                    size: size as u8,
                    write: !input,
                    val,
                });
            }
        }
        Ok(())
    }

    /// Explain a `KVM_EXIT_INTERNAL_ERROR`, with the instruction's bytes.
    fn internal_error_detail(&mut self) -> String {
        let run: *mut kvm_run = self.fd.get_kvm_run();
        // SAFETY: plain field read from the live mapping.
        let exit_reason = unsafe { (*run).exit_reason };
        if exit_reason != KVM_EXIT_INTERNAL_ERROR {
            return format!("KVM reported an internal error (exit reason {exit_reason})");
        }
        // SAFETY: exit_reason is KVM_EXIT_INTERNAL_ERROR: `internal` (and,
        // for emulation failures, its superset `emulation_failure`) is the
        // active union member; plain data, copied out.
        let internal = unsafe { (*run).__bindgen_anon_1.internal };
        let mut bytes = Vec::new();
        if internal.suberror == KVM_INTERNAL_ERROR_EMULATION {
            // SAFETY: as above; `emulation_failure` shares its header with
            // `internal` and is what KVM fills for this sub-error.
            let ef = unsafe { (*run).__bindgen_anon_1.emulation_failure };
            if ef.flags & u64::from(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) != 0 {
                // SAFETY: the flag says the instruction fields are valid;
                // the union has a single member.
                let insn = unsafe { ef.__bindgen_anon_1.__bindgen_anon_1 };
                let n = usize::from(insn.insn_size).min(insn.insn_bytes.len());
                bytes = insn.insn_bytes[..n].to_vec();
            }
        }
        let what = match internal.suberror {
            KVM_INTERNAL_ERROR_EMULATION => "could not emulate the instruction",
            KVM_INTERNAL_ERROR_SIMUL_EX => "hit an exception while delivering an exception",
            KVM_INTERNAL_ERROR_DELIVERY_EV => "could not deliver an event (interrupt/exception)",
            KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => "got a hardware exit it does not handle",
            _ => "hit an internal error",
        };
        let ndata = (internal.ndata as usize).min(internal.data.len());
        let data = &internal.data[..ndata];
        let place = match self.code_location() {
            Some((rip, linear, bitness)) => {
                if bytes.is_empty() {
                    bytes = self.read_code(linear);
                }
                let text = if bytes.is_empty() {
                    String::new()
                } else {
                    // KVM hands over a full 15-byte fetch: show just the
                    // instruction when it decodes.
                    let (asm, len) = match disassemble(&bytes, bitness, rip) {
                        Some((t, len)) => (format!(" = `{t}`"), len.min(bytes.len())),
                        None => (String::new(), bytes.len()),
                    };
                    let hex: Vec<String> =
                        bytes[..len].iter().map(|b| format!("{b:02x}")).collect();
                    format!(" (bytes {}{asm})", hex.join(" "))
                };
                format!("at RIP {rip:#x}{text}")
            }
            None => "at an unknown RIP".to_string(),
        };
        format!(
            "the host KVM {what} {place}: this is a limit of the host's KVM ({}), not a \
             ringside bug; run it on ringside's CPU with --accel tcg \
             [KVM_EXIT_INTERNAL_ERROR suberror {}, data {data:x?}]",
            self.host, internal.suberror
        )
    }

    /// RIP, the linear address of the instruction, and the code bitness.
    fn code_location(&mut self) -> Option<(u64, u64, u32)> {
        let regs = self.fd.get_regs().ok()?;
        let sregs = self.fd.get_sregs().ok()?;
        let long = sregs.efer & cpu::state::efer::LMA != 0 && sregs.cs.l != 0;
        let (linear, bitness) = if long {
            (regs.rip, 64)
        } else {
            let bits = if sregs.cs.db != 0 { 32 } else { 16 };
            (sregs.cs.base.wrapping_add(regs.rip) & 0xffff_ffff, bits)
        };
        Some((regs.rip, linear, bitness))
    }

    /// Up to 15 bytes of guest code at `linear`, through the guest's page
    /// tables (KVM_TRANSLATE) and the RAM layout; stops at the first byte
    /// that is not readable RAM.
    pub(super) fn read_code(&self, linear: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_INSN_LEN);
        let mut va = linear;
        while out.len() < MAX_INSN_LEN {
            let Ok(t) = self.fd.translate_gva(va) else {
                break;
            };
            if t.valid == 0 {
                break;
            }
            let page_left = 0x1000 - (va & 0xfff) as usize;
            let n = page_left.min(MAX_INSN_LEN - out.len());
            let PhysTarget::Ram(ma) = self.layout.translate(GuestPhysAddr(t.physical_address))
            else {
                break;
            };
            let mut buf = vec![0u8; n];
            if self.ram.read(ma, &mut buf).is_err() {
                break;
            }
            out.extend_from_slice(&buf);
            va = va.wrapping_add(n as u64);
        }
        out
    }
}

fn bad_io(io: &kvm_bindings::kvm_run__bindgen_ty_1__bindgen_ty_4) -> AccelError {
    AccelError::Host {
        what: "KVM_RUN",
        detail: format!(
            "malformed I/O exit: size {} count {} data offset {:#x}",
            io.size, io.count, io.data_offset
        ),
    }
}

/// The first instruction of `bytes` in Intel syntax, and its length, if
/// the bytes decode.
fn disassemble(bytes: &[u8], bitness: u32, rip: u64) -> Option<(String, usize)> {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let mut dec = Decoder::with_ip(bitness, bytes, rip, DecoderOptions::NONE);
    let insn = dec.decode();
    if insn.is_invalid() {
        return None;
    }
    let mut text = String::new();
    IntelFormatter::new().format(&insn, &mut text);
    Some((text, insn.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disassembles_one_instruction() {
        // movbe eax, [ebx], then the start of the next instruction
        let (t, len) = disassemble(&[0x0f, 0x38, 0xf0, 0x03, 0x66, 0xba], 32, 0x1000).unwrap();
        assert!(t.starts_with("movbe"), "{t}");
        assert_eq!(len, 4);
        assert!(disassemble(&[0x0f, 0x0b], 64, 0)
            .unwrap()
            .0
            .starts_with("ud2"));
        assert!(disassemble(&[0x0f], 64, 0).is_none());
    }
}
