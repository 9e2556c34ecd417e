//! Converting ringside's [`CpuState`] to and from KVM's register structures:
//! `kvm_regs`, `kvm_sregs`, MSR entries, `kvm_debugregs`, `kvm_xcrs`, the
//! SSE part of `kvm_fpu` (XMM0-15, MXCSR) and the interruptibility part of
//! `kvm_vcpu_events`.
//!
//! Pure functions, no ioctls: the vCPU (`vcpu.rs`) does the I/O. The
//! segment `attr` field of ringside is the VMX access-rights layout (SDM
//! Vol. 3C, 24.4.1), which `kvm_segment` spells out field by field, so the
//! conversion is a bit-for-bit split and join.

use cpu::state::{msr, seg_attr, DescTable, MsrFile, SegReg, Segment};
use cpu::CpuState;
use kvm_bindings::{
    kvm_debugregs, kvm_dtable, kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs,
    kvm_vcpu_events, kvm_xcrs, KVM_VCPUEVENT_VALID_SHADOW, KVM_X86_SHADOW_INT_MOV_SS,
    KVM_X86_SHADOW_INT_STI,
};

const IF: u64 = cpu::state::rflags::IF;

/// A segment register's hidden cache in KVM's layout.
pub fn segment_to_kvm(s: &Segment) -> kvm_segment {
    let bit = |mask: u32| u8::from(s.attr & mask != 0);
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: (s.attr & seg_attr::TYPE_MASK) as u8,
        s: bit(seg_attr::S),
        dpl: s.dpl(),
        present: bit(seg_attr::P),
        avl: bit(seg_attr::AVL),
        l: bit(seg_attr::L),
        db: bit(seg_attr::DB),
        g: bit(seg_attr::G),
        unusable: bit(seg_attr::UNUSABLE),
        padding: 0,
    }
}

/// The inverse of [`segment_to_kvm`].
pub fn segment_from_kvm(k: &kvm_segment) -> Segment {
    let flag = |v: u8, mask: u32| if v & 1 != 0 { mask } else { 0 };
    let attr = (u32::from(k.type_) & seg_attr::TYPE_MASK)
        | flag(k.s, seg_attr::S)
        | ((u32::from(k.dpl) & 3) << seg_attr::DPL_SHIFT)
        | flag(k.present, seg_attr::P)
        | flag(k.avl, seg_attr::AVL)
        | flag(k.l, seg_attr::L)
        | flag(k.db, seg_attr::DB)
        | flag(k.g, seg_attr::G)
        | flag(k.unusable, seg_attr::UNUSABLE);
    Segment {
        selector: k.selector,
        base: k.base,
        limit: k.limit,
        attr,
    }
}

fn dtable_to_kvm(d: &DescTable) -> kvm_dtable {
    kvm_dtable {
        base: d.base,
        limit: d.limit,
        padding: [0; 3],
    }
}

fn dtable_from_kvm(d: &kvm_dtable) -> DescTable {
    DescTable {
        base: d.base,
        limit: d.limit,
    }
}

/// GPRs, RIP and RFLAGS. `kvm_regs` names the registers; ringside indexes
/// them in encoding order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15).
pub fn regs_to_kvm(s: &CpuState) -> kvm_regs {
    let g = &s.gpr;
    kvm_regs {
        rax: g[0],
        rcx: g[1],
        rdx: g[2],
        rbx: g[3],
        rsp: g[4],
        rbp: g[5],
        rsi: g[6],
        rdi: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: s.rip,
        rflags: s.rflags,
    }
}

/// Store `kvm_regs` into `s`.
pub fn regs_from_kvm(s: &mut CpuState, r: &kvm_regs) {
    s.gpr = [
        r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15,
    ];
    s.rip = r.rip;
    s.rflags = r.rflags;
}

/// Segments, descriptor tables, control registers, EFER and the APIC base.
/// `interrupt_bitmap` is all zeroes: with a userspace interrupt controller
/// a set bit would make KVM inject that vector, and a loaded state has no
/// interrupt in flight.
pub fn sregs_to_kvm(s: &CpuState) -> kvm_sregs {
    let seg = |r: SegReg| segment_to_kvm(s.sreg(r));
    kvm_sregs {
        cs: seg(SegReg::Cs),
        ds: seg(SegReg::Ds),
        es: seg(SegReg::Es),
        fs: seg(SegReg::Fs),
        gs: seg(SegReg::Gs),
        ss: seg(SegReg::Ss),
        tr: segment_to_kvm(&s.tr),
        ldt: segment_to_kvm(&s.ldtr),
        gdt: dtable_to_kvm(&s.gdtr),
        idt: dtable_to_kvm(&s.idtr),
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: s.efer,
        apic_base: s.msr.apic_base,
        interrupt_bitmap: [0; 4],
    }
}

/// Store `kvm_sregs` into `s`.
pub fn sregs_from_kvm(s: &mut CpuState, k: &kvm_sregs) {
    *s.sreg_mut(SegReg::Cs) = segment_from_kvm(&k.cs);
    *s.sreg_mut(SegReg::Ds) = segment_from_kvm(&k.ds);
    *s.sreg_mut(SegReg::Es) = segment_from_kvm(&k.es);
    *s.sreg_mut(SegReg::Fs) = segment_from_kvm(&k.fs);
    *s.sreg_mut(SegReg::Gs) = segment_from_kvm(&k.gs);
    *s.sreg_mut(SegReg::Ss) = segment_from_kvm(&k.ss);
    s.tr = segment_from_kvm(&k.tr);
    s.ldtr = segment_from_kvm(&k.ldt);
    s.gdtr = dtable_from_kvm(&k.gdt);
    s.idtr = dtable_from_kvm(&k.idt);
    s.cr0 = k.cr0;
    s.cr2 = k.cr2;
    s.cr3 = k.cr3;
    s.cr4 = k.cr4;
    s.cr8 = k.cr8;
    s.efer = k.efer;
    s.msr.apic_base = k.apic_base;
}

/// The MSRs of [`MsrFile`] that travel through `KVM_SET/GET_MSRS`, in the
/// order we send them. FS/GS base travel in the segment caches, EFER and
/// the APIC base in `kvm_sregs`, the TSC separately (see `vcpu.rs`).
pub const STATE_MSRS: [u32; 11] = [
    msr::IA32_STAR,
    msr::IA32_LSTAR,
    msr::IA32_CSTAR,
    msr::IA32_FMASK,
    msr::IA32_KERNEL_GS_BASE,
    msr::IA32_SYSENTER_CS,
    msr::IA32_SYSENTER_ESP,
    msr::IA32_SYSENTER_EIP,
    msr::IA32_PAT,
    msr::IA32_MISC_ENABLE,
    msr::IA32_TSC_AUX,
];

/// MSRs whose value KVM may refuse for reasons that are not the guest
/// state's fault (e.g. MISC_ENABLE bits tied to host CPUID, TSC_AUX when
/// the host hides RDTSCP): a refusal keeps ringside's value instead of
/// failing the whole load.
pub const BEST_EFFORT_MSRS: [u32; 2] = [msr::IA32_MISC_ENABLE, msr::IA32_TSC_AUX];

/// The value of MSR `index` in `m`, for the MSRs of [`STATE_MSRS`].
pub fn msr_get(m: &MsrFile, index: u32) -> Option<u64> {
    Some(match index {
        msr::IA32_STAR => m.star,
        msr::IA32_LSTAR => m.lstar,
        msr::IA32_CSTAR => m.cstar,
        msr::IA32_FMASK => m.fmask,
        msr::IA32_KERNEL_GS_BASE => m.kernel_gs_base,
        msr::IA32_SYSENTER_CS => m.sysenter_cs,
        msr::IA32_SYSENTER_ESP => m.sysenter_esp,
        msr::IA32_SYSENTER_EIP => m.sysenter_eip,
        msr::IA32_PAT => m.pat,
        msr::IA32_MISC_ENABLE => m.misc_enable,
        msr::IA32_TSC_AUX => m.tsc_aux,
        _ => return None,
    })
}

/// Store MSR `index` into `m`; false for an MSR not in [`STATE_MSRS`].
pub fn msr_set(m: &mut MsrFile, index: u32, v: u64) -> bool {
    let slot = match index {
        msr::IA32_STAR => &mut m.star,
        msr::IA32_LSTAR => &mut m.lstar,
        msr::IA32_CSTAR => &mut m.cstar,
        msr::IA32_FMASK => &mut m.fmask,
        msr::IA32_KERNEL_GS_BASE => &mut m.kernel_gs_base,
        msr::IA32_SYSENTER_CS => &mut m.sysenter_cs,
        msr::IA32_SYSENTER_ESP => &mut m.sysenter_esp,
        msr::IA32_SYSENTER_EIP => &mut m.sysenter_eip,
        msr::IA32_PAT => &mut m.pat,
        msr::IA32_MISC_ENABLE => &mut m.misc_enable,
        msr::IA32_TSC_AUX => &mut m.tsc_aux,
        _ => return false,
    };
    *slot = v;
    true
}

/// MSR entries for `indices` (a subset of [`STATE_MSRS`]).
pub fn msr_entries(m: &MsrFile, indices: &[u32]) -> Vec<kvm_msr_entry> {
    indices
        .iter()
        .filter_map(|&index| {
            msr_get(m, index).map(|data| kvm_msr_entry {
                index,
                reserved: 0,
                data,
            })
        })
        .collect()
}

/// A printable name for the MSRs we move, for error messages.
pub fn msr_name(index: u32) -> &'static str {
    match index {
        msr::IA32_STAR => "IA32_STAR",
        msr::IA32_LSTAR => "IA32_LSTAR",
        msr::IA32_CSTAR => "IA32_CSTAR",
        msr::IA32_FMASK => "IA32_FMASK",
        msr::IA32_KERNEL_GS_BASE => "IA32_KERNEL_GS_BASE",
        msr::IA32_SYSENTER_CS => "IA32_SYSENTER_CS",
        msr::IA32_SYSENTER_ESP => "IA32_SYSENTER_ESP",
        msr::IA32_SYSENTER_EIP => "IA32_SYSENTER_EIP",
        msr::IA32_PAT => "IA32_PAT",
        msr::IA32_MISC_ENABLE => "IA32_MISC_ENABLE",
        msr::IA32_TSC_AUX => "IA32_TSC_AUX",
        msr::IA32_TSC => "IA32_TSC",
        _ => "MSR",
    }
}

/// DR0-DR3, DR6, DR7. (DR4/DR5 are aliases, not registers: not sent.)
pub fn debugregs_to_kvm(s: &CpuState) -> kvm_debugregs {
    kvm_debugregs {
        db: [s.dr[0], s.dr[1], s.dr[2], s.dr[3]],
        dr6: s.dr[6],
        dr7: s.dr[7],
        flags: 0,
        reserved: [0; 9],
    }
}

/// Store `kvm_debugregs` into `s` (DR4/DR5 left as they are).
pub fn debugregs_from_kvm(s: &mut CpuState, d: &kvm_debugregs) {
    s.dr[..4].copy_from_slice(&d.db);
    s.dr[6] = d.dr6;
    s.dr[7] = d.dr7;
}

/// XCR0 as the single entry of `kvm_xcrs`.
pub fn xcrs_to_kvm(xcr0: u64) -> kvm_xcrs {
    let mut x = kvm_xcrs {
        nr_xcrs: 1,
        ..Default::default()
    };
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = xcr0;
    x
}

/// XCR0 out of `kvm_xcrs`, if KVM reported it.
pub fn xcr0_from_kvm(x: &kvm_xcrs) -> Option<u64> {
    let n = (x.nr_xcrs as usize).min(x.xcrs.len());
    x.xcrs[..n].iter().find(|e| e.xcr == 0).map(|e| e.value)
}

/// Fill the SSE state of `s` (XMM0-15, MXCSR) and the x87 state into `f`.
///
/// `kvm_fpu` is the FXSAVE image's layout: `fpr[i]` is ST(i) (stack
/// order, 10 bytes used of 16), `ftwx` the abridged tag word (bit i =
/// physical register i in use), `last_ip`/`last_dp` the 64-bit
/// (FXSAVE64) pointers, so FCS/FDS are not carried.
pub fn fpu_to_kvm(s: &CpuState, f: &mut kvm_fpu) {
    for (k, x) in f.xmm.iter_mut().zip(&s.xmm) {
        *k = x.to_le_bytes();
    }
    f.mxcsr = s.mxcsr;
    let x = &s.x87;
    let top = x.top();
    for (i, r) in f.fpr.iter_mut().enumerate() {
        let mut b = [0u8; 16];
        b[..10].copy_from_slice(&x.regs[(top + i) & 7].to_bytes());
        *r = b;
    }
    f.fcw = x.fcw;
    f.fsw = x.fsw;
    f.ftwx = x.ftw;
    f.last_opcode = x.fop;
    f.last_ip = x.fip;
    f.last_dp = x.fdp;
}

/// Store the SSE state of `f` into `s`. (Not used by the vCPU yet: see
/// `Vcpu::get_state`.)
#[allow(dead_code)]
pub fn fpu_from_kvm(s: &mut CpuState, f: &kvm_fpu) {
    for (x, k) in s.xmm.iter_mut().zip(&f.xmm) {
        *x = u128::from_le_bytes(*k);
    }
    s.mxcsr = f.mxcsr;
    let x = &mut s.x87;
    x.fcw = f.fcw;
    x.fsw = f.fsw;
    x.ftw = f.ftwx;
    x.fop = f.last_opcode;
    x.fip = f.last_ip;
    x.fdp = f.last_dp;
    let top = x.top();
    for (i, r) in f.fpr.iter().enumerate() {
        let mut b = [0u8; 10];
        b.copy_from_slice(&r[..10]);
        x.regs[(top + i) & 7] = cpu::state::F80::from_bytes(b);
    }
}

/// Fill the interruptibility state of `s` into `ev` (read from KVM first,
/// so fields we don't model keep KVM's values) and drop any event in
/// flight: a loaded state sits at an instruction boundary with nothing
/// being delivered.
///
/// KVM, like VMX, distinguishes blocking by STI from blocking by MOV SS;
/// ringside has one "shadow" bit. VM entry refuses STI blocking with
/// RFLAGS.IF = 0 (SDM Vol. 3C, 26.3.1.5), so we pick STI blocking when
/// IF = 1 and MOV-SS blocking otherwise. Both block maskable interrupts
/// for one instruction, which is what the shadow means.
pub fn events_to_kvm(s: &CpuState, ev: &mut kvm_vcpu_events) {
    ev.interrupt.shadow = if !s.intr.shadow {
        0
    } else if s.rflags & IF != 0 {
        KVM_X86_SHADOW_INT_STI as u8
    } else {
        KVM_X86_SHADOW_INT_MOV_SS as u8
    };
    ev.nmi.masked = u8::from(s.intr.nmi_blocked);
    ev.exception.injected = 0;
    ev.exception.pending = 0;
    ev.exception_has_payload = 0;
    ev.interrupt.injected = 0;
    ev.nmi.injected = 0;
    ev.flags |= KVM_VCPUEVENT_VALID_SHADOW;
}

/// Store the interruptibility state of `ev` into `s`.
pub fn events_from_kvm(s: &mut CpuState, ev: &kvm_vcpu_events) {
    s.intr.shadow = ev.interrupt.shadow != 0;
    s.intr.nmi_blocked = ev.nmi.masked != 0;
}

/// An event KVM is in the middle of delivering, which [`CpuState`] cannot
/// express; `None` when there is none.
pub fn event_in_flight(ev: &kvm_vcpu_events, sregs: &kvm_sregs) -> Option<String> {
    if ev.exception.injected != 0 || ev.exception.pending != 0 {
        return Some(format!("exception {} being delivered", ev.exception.nr));
    }
    if ev.interrupt.injected != 0 {
        return Some(format!("interrupt {:#x} being delivered", ev.interrupt.nr));
    }
    if ev.nmi.injected != 0 {
        return Some("NMI being delivered".to_string());
    }
    if sregs.interrupt_bitmap.iter().any(|w| *w != 0) {
        return Some("interrupt queued in KVM".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_attr_round_trip() {
        // Every combination of the access-rights bits survives the split.
        let bits = [
            0xf,
            seg_attr::S,
            seg_attr::DPL_MASK,
            seg_attr::P,
            seg_attr::AVL,
            seg_attr::L,
            seg_attr::DB,
            seg_attr::G,
            seg_attr::UNUSABLE,
        ];
        for combo in 0u32..(1 << bits.len()) {
            let attr = bits
                .iter()
                .enumerate()
                .filter(|(i, _)| combo & (1 << i) != 0)
                .fold(0, |a, (_, b)| a | b);
            let s = Segment {
                selector: 0x2b,
                base: 0xffff_8000_1234_0000,
                limit: 0xfffff,
                attr,
            };
            assert_eq!(segment_from_kvm(&segment_to_kvm(&s)), s, "attr {attr:#x}");
        }
    }

    #[test]
    fn flat_code_segment_fields() {
        let cs = Segment::from_descriptor(0x08, 0x00cf_9b00_0000_ffff);
        let k = segment_to_kvm(&cs);
        assert_eq!(
            (k.type_, k.s, k.dpl, k.present, k.db, k.g, k.l),
            (0xb, 1, 0, 1, 1, 1, 0)
        );
        assert_eq!(k.limit, 0xffff_ffff);
        let user64 = Segment::from_descriptor(0x33, 0x00af_fb00_0000_ffff);
        let k = segment_to_kvm(&user64);
        assert_eq!((k.dpl, k.l, k.db), (3, 1, 0));
    }

    #[test]
    fn regs_and_sregs_round_trip() {
        let mut s = CpuState::reset();
        for (i, g) in s.gpr.iter_mut().enumerate() {
            *g = 0x1111_1111_1111_1111u64.wrapping_mul(i as u64 + 1);
        }
        s.rip = 0xdead_beef;
        s.rflags = 0x246;
        s.cr2 = 0x1234;
        s.efer = 0xd01;
        let mut back = CpuState::reset();
        regs_from_kvm(&mut back, &regs_to_kvm(&s));
        sregs_from_kvm(&mut back, &sregs_to_kvm(&s));
        debugregs_from_kvm(&mut back, &debugregs_to_kvm(&s));
        assert_eq!(back, s);
        // RBX is encoding 3 but the fourth field of kvm_regs is rdx.
        assert_eq!(regs_to_kvm(&s).rbx, s.gpr[cpu::state::reg::RBX]);
    }

    #[test]
    fn msr_table_is_complete() {
        let mut m = MsrFile::default();
        for (i, &idx) in STATE_MSRS.iter().enumerate() {
            assert!(msr_set(&mut m, idx, i as u64 + 100));
            assert_ne!(msr_name(idx), "MSR");
        }
        for (i, e) in msr_entries(&m, &STATE_MSRS).iter().enumerate() {
            assert_eq!(e.data, i as u64 + 100);
        }
        assert!(!msr_set(&mut m, 0x10, 1));
    }

    #[test]
    fn shadow_kind_follows_if() {
        let mut s = CpuState::reset();
        s.intr.shadow = true;
        let mut ev = kvm_vcpu_events::default();
        s.rflags = 0x202;
        events_to_kvm(&s, &mut ev);
        assert_eq!(u32::from(ev.interrupt.shadow), KVM_X86_SHADOW_INT_STI);
        s.rflags = 0x2;
        events_to_kvm(&s, &mut ev);
        assert_eq!(u32::from(ev.interrupt.shadow), KVM_X86_SHADOW_INT_MOV_SS);
        let mut back = CpuState::reset();
        events_from_kvm(&mut back, &ev);
        assert!(back.intr.shadow && !back.intr.nmi_blocked);
    }

    #[test]
    fn fpu_round_trip() {
        let mut s = CpuState::reset();
        for (i, x) in s.xmm.iter_mut().enumerate() {
            *x = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128.rotate_left(8 * i as u32);
        }
        s.mxcsr = 0x7f80 | 0x3d;
        s.x87.init();
        s.x87.fsw = 5 << 11;
        s.x87.ftw = 0b1010_0000;
        s.x87.fip = 0x1234;
        s.x87.fdp = 0x5678;
        s.x87.regs[5] = cpu::state::F80 {
            se: 0x3fff,
            sig: 1 << 63,
        };
        let mut f = kvm_fpu::default();
        fpu_to_kvm(&s, &mut f);
        // XMM0's low byte is the u128's low byte (little-endian, as FXSAVE).
        assert_eq!(f.xmm[0][0], 0x10);
        assert_eq!(f.xmm[0][15], 0x01);
        assert_eq!(f.mxcsr, 0x7fbd);
        assert_eq!(f.fcw, 0x37f);
        assert_eq!(f.ftwx, 0b1010_0000);
        // ST(0) is physical R5 (TOP = 5).
        assert_eq!(f.fpr[0][7], 0x80);
        assert_eq!(f.fpr[0][9], 0x3f);
        let mut back = CpuState::reset();
        fpu_from_kvm(&mut back, &f);
        assert_eq!(back, s);
    }

    #[test]
    fn xcr0_round_trip() {
        assert_eq!(xcr0_from_kvm(&xcrs_to_kvm(7)), Some(7));
        assert_eq!(xcr0_from_kvm(&kvm_xcrs::default()), None);
    }
}
