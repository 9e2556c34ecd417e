//! The parts of the task-state segment the processor reads without a task
//! switch: the privileged-level stacks (SDM 7.2.1, 16/32-bit TSS; 8.7, 64-bit
//! TSS), the interrupt stack table, and the I/O permission bitmap (19.5.2).
//!
//! Hardware task switching itself is not implemented (see `interrupt.rs`
//! and `far.rs`: task gates and TSS targets raise #GP).

use super::descriptor::{sel_code, sys_type as st};
use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;

/// Type field of the TR cache: a 16-bit TSS (types 1/3)?
fn tss_is_16bit(cpu: &Cpu) -> bool {
    matches!(
        (cpu.state.tr.attr & 0xf) as u8,
        st::TSS16_AVAIL | st::TSS16_BUSY
    )
}

/// TR must hold a usable TSS for the processor to read it; else #TS(TR).
fn check_tr(cpu: &Cpu, ext: bool) -> Result<(), Fault> {
    let tr = &cpu.state.tr;
    let ty = (tr.attr & 0xf) as u8;
    let is_tss = matches!(
        ty,
        st::TSS16_AVAIL | st::TSS16_BUSY | st::TSS_AVAIL | st::TSS_BUSY
    );
    if tr.unusable() || !tr.present() || !is_tss {
        return Err(Fault::ts(sel_code(tr.selector, ext)));
    }
    Ok(())
}

/// Read `size` bytes at TSS offset `off`, #TS(TR|ext) past the TSS limit.
fn read(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    off: u64,
    size: u8,
    ext: bool,
) -> Result<u64, Fault> {
    let tr = cpu.state.tr;
    if off + size as u64 - 1 > tr.limit as u64 {
        return Err(Fault::ts(sel_code(tr.selector, ext)));
    }
    let lin = super::descriptor::table_addr(cpu, tr.base, off);
    cpu.lin_read(plat, lin, size, false)
}

/// The SS:ESP for privilege level `dpl` from a 16- or 32-bit TSS.
pub(crate) fn legacy_stack(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    dpl: u8,
    ext: bool,
) -> Result<(u16, u64), Fault> {
    check_tr(cpu, ext)?;
    let d = dpl as u64;
    if tss_is_16bit(cpu) {
        let sp = read(cpu, plat, 2 + d * 4, 2, ext)?;
        let ss = read(cpu, plat, 4 + d * 4, 2, ext)?;
        Ok((ss as u16, sp))
    } else {
        let esp = read(cpu, plat, 4 + d * 8, 4, ext)?;
        let ss = read(cpu, plat, 8 + d * 8, 2, ext)?;
        Ok((ss as u16, esp))
    }
}

/// RSPn (`ist` = 0) or ISTn from the 64-bit TSS.
pub(crate) fn long_stack(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    dpl: u8,
    ist: u8,
    ext: bool,
) -> Result<u64, Fault> {
    check_tr(cpu, ext)?;
    let off = if ist == 0 {
        4 + dpl as u64 * 8
    } else {
        0x24 + (ist as u64 - 1) * 8
    };
    read(cpu, plat, off, 8, ext)
}

/// The I/O permission bitmap check (SDM 19.5.2): every bit for the `size`
/// ports starting at `port` must be clear, and the bytes holding them must
/// be inside the TSS limit. Only a 32/64-bit TSS has a bitmap.
pub(crate) fn io_bitmap_allows(
    cpu: &mut Cpu,
    plat: &mut dyn Platform,
    port: u16,
    size: u8,
) -> Result<bool, Fault> {
    let tr = cpu.state.tr;
    let ty = (tr.attr & 0xf) as u8;
    if tr.unusable() || !tr.present() || !matches!(ty, st::TSS_AVAIL | st::TSS_BUSY) {
        return Ok(false);
    }
    if (tr.limit as u64) < 0x67 {
        return Ok(false);
    }
    let map_base = cpu.lin_read(
        plat,
        super::descriptor::table_addr(cpu, tr.base, 0x66),
        2,
        false,
    )?;
    let byte = map_base + (port as u64 >> 3);
    // Two bytes are always read: an access may straddle a byte boundary.
    if byte + 1 > tr.limit as u64 {
        return Ok(false);
    }
    let bits = cpu.lin_read(
        plat,
        super::descriptor::table_addr(cpu, tr.base, byte),
        2,
        false,
    )?;
    let mask = ((1u64 << size) - 1) << (port & 7);
    Ok(bits & mask == 0)
}
