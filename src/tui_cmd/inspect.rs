//! Looking into the guest without disturbing it: memory by virtual or
//! physical address, page walks and the mapped-range overview.
//!
//! Everything here reads guest RAM directly (the same mapping the backends
//! run on, so it works on KVM too) and walks page tables with
//! [`mmu::walk_debug`], which sets no Accessed/Dirty bits: looking must not
//! change what the guest sees.

use cpu::state::efer;
use cpu::{CpuState, SegReg};
use mmu::{
    GuestPhysAddr, GuestPhysMap, GuestRam, GuestVirtAddr, MappedPtes, PagingMode, PagingRegs,
    PhysTarget, RangeScan, WalkTrace,
};
use tui::WalkView;

pub use tui::panes::cpu::paging_regs;

/// Is `lin` an address the paging mode can translate at all? (4-level
/// paging: canonical; otherwise 32 bits.)
fn translatable(regs: &PagingRegs, lin: u64) -> bool {
    match regs.mode() {
        PagingMode::Level4 => (((lin << 16) as i64) >> 16) as u64 == lin,
        _ => lin <= u64::from(u32::MAX),
    }
}

/// Guest-physical bytes: `None` where there is no RAM (the MMIO hole,
/// beyond the end of RAM). Never touches devices.
pub fn read_phys(ram: &GuestRam, phys: &dyn GuestPhysMap, pa: u64, len: usize) -> Vec<Option<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut at = pa;
    while out.len() < len {
        let in_page = (0x1000 - (at & 0xfff)) as usize;
        let n = in_page.min(len - out.len());
        let mut buf = vec![0u8; n];
        let ok = match phys.translate(ram, GuestPhysAddr(at), &mut 0) {
            Some(ma) => ram.read(ma, &mut buf).is_ok(),
            None => false,
        };
        if ok {
            out.extend(buf.into_iter().map(Some));
        } else {
            out.extend(std::iter::repeat_n(None, n));
        }
        at = at.wrapping_add(n as u64);
    }
    out
}

/// Linear-address bytes through the guest's page tables: `None` where the
/// walk fails or the page is not RAM.
pub fn read_virt(
    ram: &GuestRam,
    phys: &dyn GuestPhysMap,
    regs: &PagingRegs,
    lin: u64,
    len: usize,
) -> Vec<Option<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut at = lin;
    while out.len() < len {
        let in_page = (0x1000 - (at & 0xfff)) as usize;
        let n = in_page.min(len - out.len());
        let pa = translatable(regs, at)
            .then(|| {
                let mut mem = MappedPtes::new(ram, phys);
                mmu::walk_debug(regs, &mut mem, GuestVirtAddr(at), None).ok()
            })
            .flatten();
        match pa {
            Some(t) => out.extend(read_phys(ram, phys, t.pa.raw(), n)),
            None => out.extend(std::iter::repeat_n(None, n)),
        }
        at = at.wrapping_add(n as u64);
        if regs.efer & efer::LMA == 0 {
            at &= 0xffff_ffff;
        }
    }
    out
}

/// The linear address of `offset` in segment `seg` (64-bit mode ignores
/// the bases of CS, DS, ES and SS; outside long mode linear addresses are
/// 32 bits).
pub fn linear(s: &CpuState, seg: SegReg, offset: u64) -> u64 {
    let long = s.efer & efer::LMA != 0 && s.cs().long();
    let base = match seg {
        SegReg::Fs | SegReg::Gs => s.sreg(seg).base,
        _ if long => 0,
        _ => s.sreg(seg).base,
    };
    let lin = base.wrapping_add(offset);
    if s.efer & efer::LMA == 0 {
        lin & 0xffff_ffff
    } else {
        lin
    }
}

/// The register a name denotes, with the segment it is usually an offset
/// in: "rsp" → (RSP, SS). Accepts the 64-bit names and "rip".
pub fn register(s: &CpuState, name: &str) -> Option<(u64, SegReg)> {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    let n = name.trim().to_ascii_lowercase();
    if n == "rip" {
        return Some((s.rip, SegReg::Cs));
    }
    let i = NAMES.iter().position(|r| *r == n)?;
    let seg = if i == 4 || i == 5 {
        SegReg::Ss
    } else {
        SegReg::Ds
    };
    s.gpr.get(i).map(|v| (*v, seg))
}

/// Walk `va` and describe it for the walk pane; with `ranges`, also scan
/// the mapped ranges (bounded: at most `max_ranges` ranges and `budget`
/// entry reads).
pub fn walk_view(
    ram: &GuestRam,
    phys: &dyn GuestPhysMap,
    regs: PagingRegs,
    va: u64,
    origin: &str,
    ranges: Option<(usize, usize)>,
) -> WalkView {
    let mut mem = MappedPtes::new(ram, phys);
    let mut trace = WalkTrace::default();
    let target = if translatable(&regs, va) {
        mmu::walk_debug(&regs, &mut mem, GuestVirtAddr(va), Some(&mut trace))
            .ok()
            .map(|t| match phys.translate(ram, t.pa, &mut 0) {
                Some(ma) => PhysTarget::Ram(ma),
                None => PhysTarget::Mmio(t.pa),
            })
    } else {
        trace.va = GuestVirtAddr(va);
        // Non-canonical: the CPU raises #GP before any walk.
        None
    };
    let ranges: Option<RangeScan> =
        ranges.map(|(max, budget)| mmu::scan_mapped_ranges(&regs, &mut mem, max, budget));
    WalkView {
        va,
        origin: if translatable(&regs, va) {
            origin.to_string()
        } else {
            format!("{origin}; not canonical: #GP, no walk")
        },
        regs,
        trace: Some(trace),
        target,
        stage2: stage2_label(phys),
        nested: Vec::new(),
        ranges,
    }
}

/// How the second stage is described in the walk pane.
fn stage2_label(phys: &dyn GuestPhysMap) -> String {
    match phys.name() {
        "layout" => "the layout (PA = MA)".into(),
        "p2m" => "the monitor's p2m (PA != MA)".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpu::state::{cr0, cr4};
    use mmu::MachineAddr;

    #[test]
    fn reads_through_tables_and_holes() {
        let ram = GuestRam::new(0x20_0000).unwrap();
        let layout = mmu::LayoutMap(mmu::PhysLayout::new(0x20_0000));
        // 4-level: VA 0x40_0000.. → PA 0x5000 (4 KiB), nothing else mapped.
        let w = |pa: u64, v: u64| ram.write_le(MachineAddr(pa), 8, v).unwrap();
        w(0x1000, 0x2003);
        w(0x2000, 0x3003);
        w(0x3000 + 2 * 8, 0x4003);
        w(0x4000, 0x5003);
        ram.write(MachineAddr(0x5ffe), b"hi").unwrap();
        let regs = PagingRegs {
            cr0: cr0::PE | cr0::PG,
            cr3: 0x1000,
            cr4: cr4::PAE,
            efer: efer::LME | efer::LMA,
        };
        let v = read_virt(&ram, &layout, &regs, 0x40_0ffe, 4);
        assert_eq!(v, [Some(b'h'), Some(b'i'), None, None]);
        // Non-canonical addresses are not walked.
        assert_eq!(read_virt(&ram, &layout, &regs, 1 << 47, 2), [None, None]);
        // Physical reads stop at the end of RAM and in the MMIO hole.
        let p = read_phys(&ram, &layout, 0x1f_ffff, 2);
        assert_eq!(p.len(), 2);
        assert!(p[0].is_some() && p[1].is_none());
        assert_eq!(read_phys(&ram, &layout, 0xfee0_0000, 1), [None]);
        let view = walk_view(&ram, &layout, regs, 0x40_0123, "typed", Some((8, 1000)));
        assert_eq!(view.trace.as_ref().map(|t| t.steps.len()), Some(4));
        assert_eq!(view.target, Some(PhysTarget::Ram(MachineAddr(0x5123))));
        assert_eq!(view.ranges.map(|r| r.ranges.len()), Some(1));
    }

    #[test]
    fn segments_and_registers() {
        let mut s = CpuState::reset();
        s.gpr[4] = 0x7000;
        // Real mode: SS base 0, CS base 0xffff0000.
        assert_eq!(linear(&s, SegReg::Cs, 0xfff0), 0xffff_fff0);
        assert_eq!(register(&s, "RSP"), Some((0x7000, SegReg::Ss)));
        assert_eq!(register(&s, "rip"), Some((0xfff0, SegReg::Cs)));
        assert_eq!(register(&s, "xyz"), None);
    }
}
