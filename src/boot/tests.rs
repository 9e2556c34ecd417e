//! End-to-end loader tests: build kernels in memory, load them into a
//! 16 MiB machine and read back what the guest would see.

use super::testutil::{multiboot_header, parse_fdt, ElfBuilder, TempDir};
use super::*;
use cpu::state::{reg, seg_attr, SegReg, Segment};
use cpu::CpuMode;
use mmu::MachineAddr;

const MIB: u64 = 1 << 20;
const RAM: u64 = 16 * MIB;

fn machine() -> (GuestRam, PhysLayout) {
    let ram = GuestRam::new(RAM).unwrap();
    // Poison RAM so zeroing (.bss, structures) is observable.
    ram.fill(MachineAddr(0), RAM, 0xcc).unwrap();
    (ram, PhysLayout::new(RAM))
}

fn cfg(kernel: &Path) -> BootConfig {
    BootConfig {
        kernel: kernel.to_path_buf(),
        ..BootConfig::default()
    }
}

fn read(ram: &GuestRam, pa: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    ram.read(MachineAddr(pa), &mut v).unwrap();
    v
}
fn rd32(ram: &GuestRam, pa: u64) -> u32 {
    ram.read_le(MachineAddr(pa), 4).unwrap() as u32
}
fn rd64(ram: &GuestRam, pa: u64) -> u64 {
    ram.read_le(MachineAddr(pa), 8).unwrap()
}
fn cstr(ram: &GuestRam, pa: u64) -> String {
    let bytes = read(ram, pa, 4096);
    let end = bytes.iter().position(|&b| b == 0).expect("NUL");
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A PVH ELF64 kernel: code at 1 MiB with a .bss, data at 2 MiB.
fn pvh64() -> ElfBuilder {
    ElfBuilder::new64()
        .segment(
            0x100000,
            0xffff_ffff_8010_0000,
            &[0x90, 0x90, 0xf4, 0x11],
            0x3000,
        )
        .segment(0x200000, 0xffff_ffff_8020_0000, b"data!", 5)
        .pvh_note(0x100001)
}

/// A multiboot ELF32 kernel linked at 3 GiB + 1 MiB, loaded at 1 MiB.
fn multiboot32(flags: u32) -> ElfBuilder {
    ElfBuilder::new32()
        .segment(0x100000, 0xc010_0000, &[0xf4; 64], 0x2000)
        .entry(0xc010_0010)
        .multiboot(flags, &[])
}

fn assert_flat_protected(s: &CpuState) {
    assert_eq!(s.mode(), CpuMode::Protected32);
    assert_eq!(s.cr0, 0x11, "CR0 = PE|ET");
    assert_eq!((s.cr3, s.cr4, s.efer), (0, 0, 0));
    assert_eq!(s.rflags, 2);
    let cs = s.cs();
    assert_eq!(
        (cs.selector, cs.base, cs.limit),
        (gdt::SEL_CODE32, 0, 0xffff_ffff)
    );
    assert!(cs.is_code() && cs.big() && cs.dpl() == 0);
    for r in [SegReg::Ds, SegReg::Es, SegReg::Ss, SegReg::Fs, SegReg::Gs] {
        let d = s.sreg(r);
        assert_eq!(
            (d.selector, d.base, d.limit),
            (gdt::SEL_DATA32, 0, 0xffff_ffff),
            "{}",
            r.name()
        );
        assert_eq!(d.attr & seg_attr::TYPE_MASK, 3);
    }
    assert_eq!(s.tr.attr & seg_attr::TYPE_MASK, 0xb, "busy 32-bit TSS");
    assert_eq!((s.tr.base, s.tr.limit), (0, 0x67));
    assert!(s.ldtr.unusable());
    assert_eq!((s.idtr.base, s.idtr.limit), (0, 0));
    assert_eq!((s.gdtr.base, s.gdtr.limit), (0x500, 31));
}

/// The GDT in guest memory reproduces every selector's hidden cache.
fn assert_gdt_matches(ram: &GuestRam, s: &CpuState) {
    let desc = |sel: u16| rd64(ram, 0x500 + u64::from(sel & !7));
    for r in SegReg::ALL {
        let seg = s.sreg(r);
        assert_eq!(
            Segment::from_descriptor(seg.selector, desc(seg.selector)),
            *seg,
            "{}",
            r.name()
        );
    }
    assert_eq!(
        Segment::from_descriptor(s.tr.selector, desc(s.tr.selector)),
        s.tr
    );
}

#[test]
fn pvh_elf64_with_cmdline_and_initrd() {
    let dir = TempDir::new();
    let k = dir.file("k.elf", &pvh64().build());
    let initrd: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let i = dir.file("initrd.img", &initrd);
    let (ram, layout) = machine();
    let c = BootConfig {
        append: Some("console=ttyS0 loglevel=8".into()),
        initrd: Some(i.clone()),
        ..cfg(&k)
    };
    let info = load(&ram, &layout, &c).unwrap();
    assert_eq!(info.format, KernelFormat::Pvh);
    assert_eq!(info.entry, 0x100001);
    assert_eq!(info.fdt, GuestPhysAddr(0xe0000));
    assert!(info.summary.contains("PVH ELF64"), "{}", info.summary);

    // Segments, and .bss zeroed up to memsz but not beyond.
    assert_eq!(read(&ram, 0x100000, 4), [0x90, 0x90, 0xf4, 0x11]);
    assert!(read(&ram, 0x100004, 0x3000 - 4).iter().all(|&b| b == 0));
    assert_eq!(read(&ram, 0x103000, 1), [0xcc]);
    assert_eq!(read(&ram, 0x200000, 5), *b"data!");

    // Entry state.
    let s = &info.state;
    assert_flat_protected(s);
    assert_eq!(s.rip, 0x100001);
    assert_eq!(s.gpr[reg::RBX], 0x1000);
    for (n, v) in s.gpr.iter().enumerate() {
        if n != reg::RBX {
            assert_eq!(*v, 0, "GPR {n}");
        }
    }
    assert_gdt_matches(&ram, s);

    // hvm_start_info.
    let si = 0x1000;
    assert_eq!(rd32(&ram, si), 0x336e_c578);
    assert_eq!(rd32(&ram, si + 4), 1, "version");
    assert_eq!(rd32(&ram, si + 8), 0, "flags");
    assert_eq!(rd32(&ram, si + 12), 1, "nr_modules");
    let modlist = rd64(&ram, si + 16);
    assert_eq!(cstr(&ram, rd64(&ram, si + 24)), "console=ttyS0 loglevel=8");
    assert_eq!(rd64(&ram, si + 32), 0, "rsdp");
    let memmap = rd64(&ram, si + 40);
    let n = rd32(&ram, si + 48) as u64;
    let want = e820::memory_map(&layout);
    assert_eq!(n, want.len() as u64);
    for (i, e) in want.iter().enumerate() {
        let a = memmap + 24 * i as u64;
        assert_eq!(
            (rd64(&ram, a), rd64(&ram, a + 8), rd32(&ram, a + 16)),
            (e.addr, e.size, e.kind.code())
        );
        assert_eq!(rd32(&ram, a + 20), 0);
    }
    // The map reserves the legacy hole with the FDT window as its own entry.
    assert!(want
        .iter()
        .any(|e| e.addr == 0xe0000 && e.size == 0x10000 && e.kind == e820::E820Kind::Reserved));
    assert!(want
        .iter()
        .any(|e| e.addr == 0xfee00000 && e.kind == e820::E820Kind::Reserved));

    // The module: page-aligned at the top of low RAM.
    let start = rd64(&ram, modlist);
    assert_eq!(start, RAM - 0x2000);
    assert_eq!(rd64(&ram, modlist + 8), 5000);
    assert_eq!(cstr(&ram, rd64(&ram, modlist + 16)), i.to_str().unwrap());
    assert_eq!(read(&ram, start, 5000), initrd);

    // The device tree, read from guest memory.
    let total = u32::from_be_bytes(read(&ram, 0xe0000, 8)[4..8].try_into().unwrap());
    assert_eq!(read(&ram, 0xe0000, 4), [0xd0, 0x0d, 0xfe, 0xed]);
    let t = parse_fdt(&read(&ram, 0xe0000, total as usize)).unwrap();
    assert_eq!(
        t.string("/chosen", "bootargs").as_deref(),
        Some("console=ttyS0 loglevel=8")
    );
    assert_eq!(t.u64s("/chosen", "linux,initrd-start"), vec![start]);
    assert_eq!(t.u64s("/chosen", "linux,initrd-end"), vec![start + 5000]);
    assert_eq!(t.u64s("/memory@0", "reg"), vec![0, 0x9fc00, MIB, RAM - MIB]);
    assert!(t.nodes.contains("/isa/serial@i3f8"));
    // The rest of the window is zero.
    assert!(
        read(&ram, 0xe0000 + u64::from(total), (0x10000 - total) as usize)
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn pvh_elf32_without_options() {
    let dir = TempDir::new();
    let k = dir.file(
        "k32.elf",
        &ElfBuilder::new32()
            .segment(0x100000, 0x100000, &[0xf4; 8], 8)
            .pvh_note(0x100000)
            .build(),
    );
    let (ram, layout) = machine();
    let info = load(&ram, &layout, &cfg(&k)).unwrap();
    assert_eq!(info.format, KernelFormat::Pvh);
    assert!(info.summary.contains("PVH ELF32"));
    assert_eq!(rd32(&ram, 0x1000 + 12), 0, "nr_modules");
    assert_eq!(rd64(&ram, 0x1000 + 16), 0, "modlist_paddr");
    assert_eq!(rd64(&ram, 0x1000 + 24), 0, "cmdline_paddr");
    let total = u32::from_be_bytes(read(&ram, 0xe0004, 4).try_into().unwrap()) as usize;
    let tree = parse_fdt(&read(&ram, 0xe0000, total)).unwrap();
    assert!(!tree.has("/chosen", "bootargs"));
    assert!(!tree.has("/chosen", "linux,initrd-start"));
}

#[test]
fn pvh_wins_over_multiboot() {
    let dir = TempDir::new();
    let k = dir.file("both.elf", &pvh64().multiboot(3, &[]).build());
    let (ram, layout) = machine();
    assert_eq!(
        load(&ram, &layout, &cfg(&k)).unwrap().format,
        KernelFormat::Pvh
    );
}

#[test]
fn multiboot_elf32() {
    let dir = TempDir::new();
    let k = dir.file("mb.elf", &multiboot32(3).build());
    let i = dir.file("mod.bin", b"module bytes");
    let (ram, layout) = machine();
    let c = BootConfig {
        append: Some("arg1 arg2".into()),
        initrd: Some(i.clone()),
        ..cfg(&k)
    };
    let info = load(&ram, &layout, &c).unwrap();
    assert_eq!(info.format, KernelFormat::Multiboot);
    // e_entry is virtual: translated through the segment to physical.
    assert_eq!(info.entry, 0x100010);
    let s = &info.state;
    assert_flat_protected(s);
    assert_eq!(s.rip, 0x100010);
    assert_eq!(s.gpr[reg::RAX], 0x2bad_b002);
    assert_eq!(s.gpr[reg::RBX], 0x1000);
    assert_gdt_matches(&ram, s);
    assert!(read(&ram, 0x100040, 0x2000 - 0x40).iter().all(|&b| b == 0));

    let mbi = 0x1000;
    let flags = rd32(&ram, mbi);
    assert_eq!(flags, 1 | 1 << 2 | 1 << 3 | 1 << 6 | 1 << 9);
    assert_eq!(rd32(&ram, mbi + 4), 639, "mem_lower");
    assert_eq!(rd32(&ram, mbi + 8), 15 * 1024, "mem_upper");
    assert_eq!(rd32(&ram, mbi + 12), 0, "boot_device not provided");
    assert_eq!(
        cstr(&ram, rd32(&ram, mbi + 16).into()),
        format!("{} arg1 arg2", k.display())
    );
    assert_eq!(rd32(&ram, mbi + 20), 1, "mods_count");
    let m = u64::from(rd32(&ram, mbi + 24));
    let (ms, me) = (rd32(&ram, m), rd32(&ram, m + 4));
    assert_eq!(u64::from(ms), RAM - 0x1000);
    assert_eq!(me - ms, 12);
    assert_eq!(ms % 4096, 0, "page-aligned module");
    assert_eq!(read(&ram, ms.into(), 12), b"module bytes");
    assert_eq!(cstr(&ram, rd32(&ram, m + 8).into()), i.to_str().unwrap());
    // mmap: {size=20, base, len, type} entries.
    let want = e820::memory_map(&layout);
    assert_eq!(rd32(&ram, mbi + 44) as usize, 24 * want.len());
    let mut p = u64::from(rd32(&ram, mbi + 48));
    for e in &want {
        assert_eq!(rd32(&ram, p), 20);
        assert_eq!(
            (rd64(&ram, p + 4), rd64(&ram, p + 12), rd32(&ram, p + 20)),
            (e.addr, e.size, e.kind.code())
        );
        p += 24;
    }
    assert_eq!(cstr(&ram, rd32(&ram, mbi + 64).into()), "ringside");
    // Fields we don't announce are zero.
    assert_eq!(rd32(&ram, mbi + 28), 0);
    assert_eq!(rd32(&ram, mbi + 72), 0);
}

#[test]
fn multiboot_without_append_or_initrd() {
    let dir = TempDir::new();
    // Flags: page-align modules + video mode (ignored, with a note).
    let k = dir.file("mb2.elf", &multiboot32(1 | 4).build());
    let (ram, layout) = machine();
    let info = load(&ram, &layout, &cfg(&k)).unwrap();
    assert_eq!(
        cstr(&ram, rd32(&ram, 0x1000 + 16).into()),
        k.to_str().unwrap()
    );
    assert_eq!(rd32(&ram, 0x1000 + 20), 0, "mods_count");
    assert!(info.summary.contains("video mode"), "{}", info.summary);
}

/// A non-ELF kernel described by the a.out kludge: 0x40 bytes of file
/// header, then code; the multiboot header at file offset 0x40 describes a
/// load at 1 MiB of everything from file offset 0.
fn aout_kernel() -> Vec<u8> {
    let mut f = vec![0x5au8; 0x40];
    f.extend(multiboot_header(
        multiboot::FLAG_AOUT_KLUDGE | 2,
        &[0x100040, 0x100000, 0x100100, 0x104000, 0x100080],
    ));
    f.resize(0x100, 0xf4);
    f.extend_from_slice(&[0xee; 0x80]); // past load_end_addr: not loaded
    f
}

#[test]
fn multiboot_aout_kludge() {
    let dir = TempDir::new();
    let k = dir.file("aout.bin", &aout_kernel());
    let (ram, layout) = machine();
    let info = load(&ram, &layout, &cfg(&k)).unwrap();
    assert_eq!(info.format, KernelFormat::Multiboot);
    assert!(info.summary.contains("a.out-kludge"));
    assert_eq!(info.state.rip, 0x100080);
    assert_eq!(read(&ram, 0x100000, 0x40), vec![0x5a; 0x40]);
    assert_eq!(rd32(&ram, 0x100040), 0x1bad_b002);
    assert_eq!(read(&ram, 0x1000ff, 1), [0xf4]);
    assert!(read(&ram, 0x100100, 0x3f00).iter().all(|&b| b == 0), "bss");
    assert_eq!(read(&ram, 0x104000, 1), [0xcc]);
}

#[test]
fn flat_binary() {
    let dir = TempDir::new();
    let code = [0xb0, 0x41, 0xe6, 0xf4, 0xf4];
    let k = dir.file("boot.bin", &code);
    let (ram, layout) = machine();
    let c = BootConfig {
        flat_addr: Some(0x7c00),
        append: Some("hello".into()),
        ..cfg(&k)
    };
    let info = load(&ram, &layout, &c).unwrap();
    assert_eq!(info.format, KernelFormat::Flat);
    assert_eq!(info.entry, 0x7c00);
    assert_eq!(read(&ram, 0x7c00, 5), code);
    let s = &info.state;
    assert_eq!(s.mode(), CpuMode::Real);
    assert_eq!((s.cs().selector, s.cs().base, s.rip), (0x7c0, 0x7c00, 0));
    assert_eq!(s.ss().selector, 0x7c0);
    assert_eq!(s.gpr[reg::RSP], 0xfffe);
    assert_eq!(s.gpr[reg::RDX] & 0xff, 0x80);
    assert!(info.summary.contains("07c0:0000"), "{}", info.summary);
    let total = u32::from_be_bytes(read(&ram, 0xe0004, 4).try_into().unwrap()) as usize;
    let t = parse_fdt(&read(&ram, 0xe0000, total)).unwrap();
    assert_eq!(t.string("/chosen", "bootargs").as_deref(), Some("hello"));
    // Flat mode takes any bytes, even an ELF.
    let k2 = dir.file("elf-as-flat", &pvh64().build());
    let c2 = BootConfig {
        flat_addr: Some(0x10000),
        ..cfg(&k2)
    };
    assert_eq!(load(&ram, &layout, &c2).unwrap().format, KernelFormat::Flat);
}

// ---- errors -------------------------------------------------------------

fn load_err(kernel: &[u8], c: impl FnOnce(BootConfig) -> BootConfig) -> BootError {
    let dir = TempDir::new();
    let k = dir.file("kernel", kernel);
    let (ram, layout) = machine();
    let e = load(&ram, &layout, &c(cfg(&k))).expect_err("load should fail");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one-line message: {msg}");
    e
}

#[test]
fn file_errors() {
    let (ram, layout) = machine();
    let e = load(
        &ram,
        &layout,
        &cfg(Path::new("/nonexistent/ringside/kernel")),
    )
    .unwrap_err();
    assert!(matches!(e, BootError::KernelNotFound { .. }));
    assert_eq!(e.exit_code(), 4);
    assert!(e.to_string().contains("/nonexistent/ringside/kernel"));

    let dir = TempDir::new();
    let e = load(&ram, &layout, &cfg(dir.path())).unwrap_err();
    assert!(matches!(e, BootError::KernelUnreadable { .. }), "{e}");
    assert_eq!(e.exit_code(), 4);

    let k = dir.file("k", &pvh64().build());
    let e = load(
        &ram,
        &layout,
        &BootConfig {
            initrd: Some("/nonexistent/initrd".into()),
            ..cfg(&k)
        },
    )
    .unwrap_err();
    assert!(matches!(e, BootError::InitrdNotFound { .. }));
    assert_eq!(e.exit_code(), 4);
    let e = load(
        &ram,
        &layout,
        &BootConfig {
            initrd: Some(dir.path().to_path_buf()),
            ..cfg(&k)
        },
    )
    .unwrap_err();
    assert!(matches!(e, BootError::InitrdUnreadable { .. }), "{e}");
    assert_eq!(e.exit_code(), 4);
}

#[test]
fn initrd_too_large() {
    let dir = TempDir::new();
    let k = dir.file("k", &pvh64().build());
    let (ram, layout) = machine();
    // Larger than RAM: refused from its size, without reading it.
    let big = dir.path().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(RAM + 1)
        .unwrap();
    let e = load(
        &ram,
        &layout,
        &BootConfig {
            initrd: Some(big),
            ..cfg(&k)
        },
    )
    .unwrap_err();
    assert!(matches!(e, BootError::InitrdTooLarge { .. }));
    assert_eq!(e.exit_code(), 8);
    // Fits in RAM, but not above the kernel (which ends at 0x200005).
    let mid = dir.path().join("mid");
    std::fs::File::create(&mid)
        .unwrap()
        .set_len(RAM - 0x200000)
        .unwrap();
    let e = load(
        &ram,
        &layout,
        &BootConfig {
            initrd: Some(mid),
            ..cfg(&k)
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            BootError::InitrdTooLarge {
                floor: 0x200005,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn format_errors() {
    let e = load_err(b"", |c| c);
    assert!(matches!(e, BootError::KernelEmpty { .. }));
    assert_eq!(e.exit_code(), 6);

    let e = load_err(b"#!/bin/sh\necho not a kernel\n", |c| c);
    assert!(matches!(e, BootError::NotElf { .. }));
    assert!(e.to_string().contains("--flat-addr"));
    assert_eq!(e.exit_code(), 6);

    let full = pvh64().build();
    let e = load_err(&full[..full.len() - 1], |c| c);
    assert!(matches!(e, BootError::MalformedElf { .. }), "{e}");
    assert_eq!(e.exit_code(), 6);

    let mut be = full.clone();
    be[5] = 2;
    let e = load_err(&be, |c| c);
    assert!(matches!(e, BootError::UnsupportedElf { .. }));
    assert_eq!(e.exit_code(), 6);
    let e = load_err(
        &ElfBuilder::new64()
            .machine(40)
            .segment(0x100000, 0, &[1], 1)
            .pvh_note(0x100000)
            .build(),
        |c| c,
    );
    assert!(matches!(e, BootError::UnsupportedElf { .. }));

    let e = load_err(
        &ElfBuilder::new64()
            .segment(0x100000, 0x100000, &[0xf4], 1)
            .build(),
        |c| c,
    );
    assert!(matches!(e, BootError::NoEntryPoint { .. }));
    assert_eq!(e.exit_code(), 6);

    // Entry in .bss, and entry outside every segment.
    let e = load_err(
        &ElfBuilder::new64()
            .segment(0x100000, 0, &[0xf4], 0x1000)
            .pvh_note(0x100800)
            .build(),
        |c| c,
    );
    assert!(matches!(
        e,
        BootError::BadEntry {
            entry: 0x100800,
            ..
        }
    ));
    assert_eq!(e.exit_code(), 6);
    let e = load_err(&multiboot32(3).entry(0x5000).build(), |c| c);
    assert!(matches!(e, BootError::BadEntry { entry: 0x5000, .. }));

    let e = load_err(&multiboot32(1 << 5).build(), |c| c);
    assert!(matches!(
        e,
        BootError::MultibootUnsupportedFlags {
            unsupported: 0x20,
            ..
        }
    ));
    assert_eq!(e.exit_code(), 6);

    // Not ELF, header without the kludge.
    let mut f = multiboot_header(3, &[]);
    f.resize(64, 0);
    let e = load_err(&f, |c| c);
    assert!(matches!(e, BootError::BadMultiboot { .. }), "{e}");
    assert_eq!(e.exit_code(), 6);
    // Kludge whose load_end_addr is past the end of the file.
    let mut f = aout_kernel();
    f.truncate(0xf0);
    let e = load_err(&f, |c| c);
    assert!(matches!(e, BootError::BadMultiboot { .. }), "{e}");

    // Overlapping segments.
    let e = load_err(
        &ElfBuilder::new64()
            .segment(0x100000, 0, &[0xf4], 0x2000)
            .segment(0x101000, 0, &[0xf4], 0x10)
            .pvh_note(0x100000)
            .build(),
        |c| c,
    );
    assert!(
        matches!(&e, BootError::MalformedElf { reason, .. } if reason.contains("overlap")),
        "{e}"
    );
}

#[test]
fn fit_errors() {
    let pvh_at = |paddr: u64, memsz: u64| {
        ElfBuilder::new64()
            .segment(paddr, paddr, &[0xf4], memsz)
            .pvh_note(paddr as u32)
            .build()
    };
    let e = load_err(&pvh_at(0x100000, 32 * MIB), |c| c);
    assert!(matches!(e, BootError::KernelTooLarge { .. }));
    assert_eq!(e.exit_code(), 8);
    let e = load_err(&pvh_at(0x7000_0000, 0x1000), |c| c);
    assert!(matches!(e, BootError::SegmentOutsideRam { .. }));
    assert_eq!(e.exit_code(), 8);
    let e = load_err(&pvh_at(0xfee0_0000, 0x1000), |c| c);
    assert!(matches!(e, BootError::SegmentInMmioHole { .. }));
    assert_eq!(e.exit_code(), 8);
    let e = load_err(&pvh_at(0x1000, 0x1000), |c| c);
    assert!(matches!(
        e,
        BootError::SegmentOverlapsBootArea { area_start: 0, .. }
    ));
    assert_eq!(e.exit_code(), 8);
    let e = load_err(&pvh_at(0xe0000, 0x100), |c| c);
    assert!(matches!(
        e,
        BootError::SegmentOverlapsBootArea {
            area_start: 0xe0000,
            ..
        }
    ));
    // 0x8000 is free for kernels that want it.
    let dir = TempDir::new();
    let k = dir.file("low", &pvh_at(0x8000, 0x100));
    let (ram, layout) = machine();
    assert!(load(&ram, &layout, &cfg(&k)).is_ok());
}

#[test]
fn usage_and_memory_errors() {
    let flat = |addr| {
        move |c: BootConfig| BootConfig {
            flat_addr: Some(addr),
            ..c
        }
    };
    let e = load_err(&[0xf4; 16], flat(0x100000));
    assert!(matches!(e, BootError::BadFlatAddress { .. }));
    assert_eq!(e.exit_code(), 2);
    let e = load_err(&[0xf4; 16], flat(0xdfff8));
    assert!(matches!(e, BootError::BadFlatAddress { .. }));

    let k = pvh64().build();
    let e = load_err(&k, |c| BootConfig {
        append: Some("a\0b".into()),
        ..c
    });
    assert!(matches!(e, BootError::BadCmdline { .. }));
    assert_eq!(e.exit_code(), 2);
    let e = load_err(&k, |c| BootConfig {
        append: Some("x".repeat(4096)),
        ..c
    });
    assert!(matches!(e, BootError::BadCmdline { .. }));
    // 4095 bytes fit for PVH, but not with the file name for multiboot.
    let dir = TempDir::new();
    let kp = dir.file("pvh", &k);
    let (ram, layout) = machine();
    let long = BootConfig {
        append: Some("x".repeat(4095)),
        ..cfg(&kp)
    };
    assert!(load(&ram, &layout, &long).is_ok());
    assert_eq!(cstr(&ram, 0x2000).len(), 4095);
    let e = load_err(&multiboot32(3).build(), |c| BootConfig {
        append: Some("x".repeat(4095)),
        ..c
    });
    assert!(matches!(e, BootError::BadCmdline { .. }));

    let small = GuestRam::new(512 << 10).unwrap();
    let e = load(&small, &PhysLayout::new(512 << 10), &cfg(&kp)).unwrap_err();
    assert!(matches!(e, BootError::RamTooSmall { .. }));
    assert_eq!(e.exit_code(), 10);

    // A layout describing more RAM than is mapped is a ringside bug.
    let e = load(&ram, &PhysLayout::new(32 * MIB), &cfg(&kp)).unwrap_err();
    assert!(matches!(e, BootError::Internal(_)));
    assert_eq!(e.exit_code(), 30);
}

#[test]
fn refused_kernel_leaves_memory_untouched() {
    let dir = TempDir::new();
    let k = dir.file("k", &pvh64().build());
    let mid = dir.path().join("mid");
    std::fs::File::create(&mid)
        .unwrap()
        .set_len(RAM - 0x180000)
        .unwrap();
    let (ram, layout) = machine();
    let before = ram.as_slice().to_vec();
    assert!(load(
        &ram,
        &layout,
        &BootConfig {
            initrd: Some(mid),
            ..cfg(&k)
        }
    )
    .is_err());
    assert!(
        ram.as_slice() == &before[..],
        "a failed load wrote guest memory"
    );
}

// ---- robustness ---------------------------------------------------------

/// Load `kernel` from memory; Ok or Err, never a panic.
fn try_load(ram: &GuestRam, layout: &PhysLayout, kernel: &[u8]) -> Result<BootInfo, BootError> {
    let c = cfg(Path::new("fuzz"));
    load_bytes(ram, layout, &c, kernel, None)
}

#[test]
fn every_truncation_is_an_error() {
    let (ram, layout) = machine();
    let images = [
        pvh64().build(),
        ElfBuilder::new32()
            .segment(0x100000, 0x100000, &[0xf4; 40], 0x100)
            .pvh_note_section_only(0x100000)
            .build(),
        multiboot32(3).build(),
        // Without the unloaded tail, so every cut removes needed bytes.
        aout_kernel()[..0x100].to_vec(),
    ];
    for img in &images {
        assert!(try_load(&ram, &layout, img).is_ok());
        for cut in (0..img.len()).step_by(7).chain([img.len() - 1]) {
            let r = try_load(&ram, &layout, &img[..cut]);
            assert!(r.is_err(), "truncated at {cut} of {} loaded", img.len());
        }
    }
}

/// xorshift64*: deterministic pseudo-random numbers for corruption tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn corrupted_headers_never_panic() {
    let (ram, layout) = machine();
    let images = [
        pvh64().build(),
        ElfBuilder::new32()
            .segment(0x100000, 0x100000, &[0xf4; 40], 0x100)
            .pvh_note_section_only(0x100000)
            .build(),
        multiboot32(3).build(),
        aout_kernel(),
    ];
    let extremes: [u64; 8] = [
        0,
        1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        u64::MAX,
        u64::MAX - 7,
        0x1000,
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes = [0usize; 2];
    for img in &images {
        let header_len = img.len().min(0x200);
        // Overwrite every naturally aligned 2/4/8-byte field position (ELF
        // and multiboot fields are aligned) with extreme values.
        for size in [2usize, 4, 8] {
            for off in (0..header_len).step_by(size) {
                for &v in &extremes {
                    if off + size > img.len() {
                        continue;
                    }
                    let mut f = img.clone();
                    f[off..off + size].copy_from_slice(&v.to_le_bytes()[..size]);
                    outcomes[usize::from(try_load(&ram, &layout, &f).is_ok())] += 1;
                }
            }
        }
        // Random byte flips.
        for _ in 0..500 {
            let mut f = img.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() % header_len as u64) as usize;
                f[i] ^= 1 << (rng.next() % 8);
            }
            outcomes[usize::from(try_load(&ram, &layout, &f).is_ok())] += 1;
        }
    }
    // Both outcomes happen: corruption is caught, harmless bytes are not
    // mistaken for corruption.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}
