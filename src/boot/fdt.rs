//! The machine description: a flattened device tree (DTB) at a fixed
//! guest-physical address.
//!
//! x86 has no firmware-independent way to say "what is in this machine" —
//! PCs use ACPI, which is far too big for an educational machine. ringside
//! writes a small device tree instead, at [`FDT_ADDR`] (0xe0000), for every
//! boot protocol. A kernel finds it in one of two ways:
//!
//! 1. at the fixed address 0xe0000 (check the magic 0xd00dfeed, big-endian,
//!    and read `totalsize` from the header); or
//! 2. from the memory map: the e820 / PVH memmap / multiboot mmap entry of
//!    type 2 (reserved) that starts at 0xe0000 and is 64 KiB long is the
//!    device tree window.
//!
//! The tree (reg cells are big-endian; ISA I/O ports use the ISA binding's
//! `<1 port size>` with 1 = I/O space; interrupts are `<irq flags>` with
//! flags 1 = edge rising):
//!
//! ```text
//! / { compatible = "ringside,pc"; #address-cells = <2>; #size-cells = <2>;
//!   chosen { bootargs; linux,initrd-start; linux,initrd-end; stdout-path }
//!   memory@0 { device_type = "memory"; reg = <the e820 RAM ranges> }
//!   cpus { cpu@0 { device_type = "cpu"; reg = <0> /* APIC ID */ } }
//!   interrupt-controller@fee00000 { local APIC, phandle 2 }
//!   isa { #address-cells = <2>; #size-cells = <1>;
//!     interrupt-controller@i20 { i8259 pair: ports 0x20, 0xa0; phandle 1 }
//!     timer@i40   { i8254 PIT: ports 0x40-0x43, irq 0 }
//!     serial@i3f8 { ns16550a: ports 0x3f8-0x3ff, irq 4, 1.8432 MHz }
//!     debug-exit@if4 { port 0xf4: write v, ringside exits (v << 1) | 1 }
//!   }
//! }
//! ```

use super::e820::{E820Entry, E820Kind};
use super::lowmem::{FDT_ADDR, FDT_MAX};
use super::BootError;
use mmu::layout::LAPIC_BASE;
use vm_fdt::FdtWriter;

/// Phandle of the i8259 PIC (the ISA devices' interrupt parent).
pub const PHANDLE_PIC: u32 = 1;
/// Phandle of the local APIC.
pub const PHANDLE_LAPIC: u32 = 2;
/// ISA binding: address space 1 is I/O ports.
const ISA_IO: u32 = 1;
/// Interrupt specifier flag: edge triggered, rising.
const IRQ_EDGE_RISING: u32 = 1;
/// Path of the console UART, for /chosen/stdout-path.
pub const SERIAL_PATH: &str = "/isa/serial@i3f8";

/// Build the DTB. `initrd` is the (start, end) guest-physical range.
pub fn build(
    memmap: &[E820Entry],
    bootargs: Option<&str>,
    initrd: Option<(u64, u64)>,
) -> Result<Vec<u8>, BootError> {
    let blob = build_inner(memmap, bootargs, initrd)
        .map_err(|e| BootError::Internal(format!("building the device tree: {e}")))?;
    if blob.len() as u64 > FDT_MAX {
        return Err(BootError::BadCmdline {
            reason: format!(
                "the device tree grew to {} bytes, more than the {FDT_MAX}-byte window at {FDT_ADDR:#x}: shorten --append",
                blob.len()
            ),
        });
    }
    Ok(blob)
}

fn build_inner(
    memmap: &[E820Entry],
    bootargs: Option<&str>,
    initrd: Option<(u64, u64)>,
) -> Result<Vec<u8>, vm_fdt::Error> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "ringside,pc")?;
    fdt.property_string("model", "ringside educational PC")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;

    let chosen = fdt.begin_node("chosen")?;
    if let Some(args) = bootargs {
        fdt.property_string("bootargs", args)?;
    }
    if let Some((start, end)) = initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.property_string("stdout-path", SERIAL_PATH)?;
    fdt.end_node(chosen)?;

    let ram: Vec<u64> = memmap
        .iter()
        .filter(|e| e.kind == E820Kind::Ram)
        .flat_map(|e| [e.addr, e.size])
        .collect();
    let memory = fdt.begin_node("memory@0")?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &ram)?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    let cpu0 = fdt.begin_node("cpu@0")?;
    fdt.property_string("device_type", "cpu")?;
    fdt.property_u32("reg", 0)?;
    fdt.end_node(cpu0)?;
    fdt.end_node(cpus)?;

    // Linux's x86 device-tree code matches the local APIC by this
    // compatible; the binding is the plain xAPIC register page.
    let lapic = fdt.begin_node(&format!("interrupt-controller@{LAPIC_BASE:x}"))?;
    fdt.property_string_list(
        "compatible",
        vec!["ringside,xapic".into(), "intel,ce4100-lapic".into()],
    )?;
    fdt.property_array_u64("reg", &[LAPIC_BASE, 0x1000])?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 2)?;
    fdt.property_phandle(PHANDLE_LAPIC)?;
    fdt.end_node(lapic)?;

    let isa = fdt.begin_node("isa")?;
    fdt.property_string("compatible", "isa")?;
    fdt.property_string("device_type", "isa")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 1)?;

    let pic = fdt.begin_node("interrupt-controller@i20")?;
    fdt.property_string_list("compatible", vec!["intel,8259".into(), "pnpPNP,0".into()])?;
    fdt.property_array_u32("reg", &[ISA_IO, 0x20, 2, ISA_IO, 0xa0, 2])?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 2)?;
    fdt.property_phandle(PHANDLE_PIC)?;
    fdt.end_node(pic)?;

    let pit = fdt.begin_node("timer@i40")?;
    fdt.property_string_list("compatible", vec!["intel,8254".into(), "pnpPNP,100".into()])?;
    fdt.property_array_u32("reg", &[ISA_IO, 0x40, 4])?;
    fdt.property_array_u32("interrupts", &[0, IRQ_EDGE_RISING])?;
    fdt.property_u32("interrupt-parent", PHANDLE_PIC)?;
    fdt.property_u32("clock-frequency", 1_193_182)?;
    fdt.end_node(pit)?;

    let serial = fdt.begin_node("serial@i3f8")?;
    fdt.property_string("compatible", "ns16550a")?;
    fdt.property_array_u32("reg", &[ISA_IO, 0x3f8, 8])?;
    fdt.property_array_u32("interrupts", &[4, IRQ_EDGE_RISING])?;
    fdt.property_u32("interrupt-parent", PHANDLE_PIC)?;
    fdt.property_u32("clock-frequency", 1_843_200)?;
    fdt.end_node(serial)?;

    let exit = fdt.begin_node("debug-exit@if4")?;
    fdt.property_string_list(
        "compatible",
        vec!["ringside,debug-exit".into(), "qemu,isa-debug-exit".into()],
    )?;
    fdt.property_array_u32("reg", &[ISA_IO, 0xf4, 1])?;
    fdt.end_node(exit)?;

    fdt.end_node(isa)?;
    fdt.end_node(root)?;
    fdt.finish()
}

#[cfg(test)]
mod tests {
    use super::super::e820::memory_map;
    use super::super::testutil::parse_fdt;
    use super::*;
    use mmu::PhysLayout;

    #[test]
    fn tree_parses_back() {
        let map = memory_map(&PhysLayout::new(16 << 20));
        let blob = build(
            &map,
            Some("console=ttyS0 quiet"),
            Some((0xfff000, 0xfff800)),
        )
        .unwrap();
        let t = parse_fdt(&blob).unwrap();
        assert_eq!(
            t.string("/chosen", "bootargs").as_deref(),
            Some("console=ttyS0 quiet")
        );
        assert_eq!(t.u64s("/chosen", "linux,initrd-start"), vec![0xfff000]);
        assert_eq!(t.u64s("/chosen", "linux,initrd-end"), vec![0xfff800]);
        assert_eq!(
            t.string("/chosen", "stdout-path").as_deref(),
            Some(SERIAL_PATH)
        );
        assert_eq!(
            t.u64s("/memory@0", "reg"),
            vec![0, 0x9fc00, 0x100000, (16 << 20) - 0x100000]
        );
        assert_eq!(t.u32s("/isa/serial@i3f8", "reg"), vec![1, 0x3f8, 8]);
        assert_eq!(t.u32s("/isa/serial@i3f8", "interrupts"), vec![4, 1]);
        assert_eq!(
            t.string("/isa/serial@i3f8", "compatible").as_deref(),
            Some("ns16550a")
        );
        assert_eq!(
            t.u32s("/isa/interrupt-controller@i20", "reg"),
            vec![1, 0x20, 2, 1, 0xa0, 2]
        );
        assert_eq!(t.u32s("/isa/timer@i40", "reg"), vec![1, 0x40, 4]);
        assert_eq!(t.u32s("/isa/debug-exit@if4", "reg"), vec![1, 0xf4, 1]);
        assert_eq!(
            t.u64s("/interrupt-controller@fee00000", "reg"),
            vec![0xfee00000, 0x1000]
        );
        assert_eq!(t.u32s("/cpus/cpu@0", "reg"), vec![0]);
        assert!(t.has("/isa/interrupt-controller@i20", "interrupt-controller"));
    }

    #[test]
    fn no_bootargs_no_initrd() {
        let map = memory_map(&PhysLayout::new(16 << 20));
        let t = parse_fdt(&build(&map, None, None).unwrap()).unwrap();
        assert!(!t.has("/chosen", "bootargs"));
        assert!(!t.has("/chosen", "linux,initrd-start"));
        assert!(t.has("/chosen", "stdout-path"));
    }

    #[test]
    fn oversized_tree_is_refused() {
        let map = memory_map(&PhysLayout::new(16 << 20));
        let huge = "x".repeat(70_000);
        assert!(matches!(
            build(&map, Some(&huge), None),
            Err(BootError::BadCmdline { .. })
        ));
    }
}
