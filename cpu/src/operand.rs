//! Operand access: general-purpose registers by iced [`Register`], effective
//! addresses of memory operands, and "read/write operand n" helpers that the
//! instruction families share.
//!
//! Sizes are in bytes (1, 2, 4, 8) throughout. Register writes follow the
//! architecture: 8- and 16-bit writes merge into the full register, 32-bit
//! writes zero-extend to 64 bits (in 64-bit mode that is architectural; in
//! legacy modes the upper half is invisible, so zero-extending is harmless).

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::SegReg;
use iced_x86::{Instruction, OpKind, Register};
use mmu::AccessKind;

// iced's Register numbering: AL..BL = 1..4, AH..BH = 5..8, SPL..R15L =
// 9..20, AX..R15W = 21..36, EAX..R15D = 37..52, RAX..R15 = 53..68, EIP = 69,
// RIP = 70, ES..GS = 71..76. The `& 15` masks below keep every index in
// bounds whatever value arrives.
const R8_BASE: usize = Register::AL as usize;
const R8H_BASE: usize = Register::AH as usize;
const R8X_BASE: usize = Register::SPL as usize;
const R16_BASE: usize = Register::AX as usize;
const R32_BASE: usize = Register::EAX as usize;
const R64_BASE: usize = Register::RAX as usize;

/// Mask of the low `size` bytes.
#[inline(always)]
pub(crate) const fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size as u32 * 8)) - 1
    }
}

/// The GPR number (0-15) of a 16/32/64-bit register.
#[cfg(test)]
pub(crate) fn gpr_index(r: Register) -> usize {
    let n = r as usize;
    if n >= R64_BASE {
        (n - R64_BASE) & 15
    } else if n >= R32_BASE {
        (n - R32_BASE) & 15
    } else {
        n.wrapping_sub(R16_BASE) & 15
    }
}

/// The size in bytes of a general-purpose register (0 if not a GPR).
#[inline(always)]
pub(crate) fn gpr_size(r: Register) -> u8 {
    let n = r as usize;
    match n {
        1..=20 => 1,
        21..=36 => 2,
        37..=52 => 4,
        53..=68 => 8,
        _ => 0,
    }
}

/// The segment register an iced segment `Register` names (DS if it is not one).
#[inline(always)]
pub(crate) fn sreg_of(r: Register) -> SegReg {
    match r {
        Register::ES => SegReg::Es,
        Register::CS => SegReg::Cs,
        Register::SS => SegReg::Ss,
        Register::FS => SegReg::Fs,
        Register::GS => SegReg::Gs,
        _ => SegReg::Ds,
    }
}

/// How an iced `Register` takes part in address arithmetic: which GPR,
/// which bits of it (0 for none, RIP and EIP, whose value iced already
/// folded into the displacement), and the address-size mask it implies.
#[derive(Clone, Copy)]
pub(crate) struct AddrReg {
    idx: u8,
    val_mask: u64,
    size_mask: u64,
}

const fn addr_reg_table() -> [AddrReg; 256] {
    let mut t = [AddrReg {
        idx: 0,
        val_mask: 0,
        size_mask: u64::MAX,
    }; 256];
    let mut i = 0;
    while i < 16 {
        t[R16_BASE + i] = AddrReg {
            idx: i as u8,
            val_mask: u64::MAX,
            size_mask: 0xffff,
        };
        t[R32_BASE + i] = AddrReg {
            idx: i as u8,
            val_mask: u64::MAX,
            size_mask: 0xffff_ffff,
        };
        t[R64_BASE + i] = AddrReg {
            idx: i as u8,
            val_mask: u64::MAX,
            size_mask: u64::MAX,
        };
        i += 1;
    }
    t[Register::EIP as usize].size_mask = 0xffff_ffff;
    t
}

static ADDR_REG: [AddrReg; 256] = addr_reg_table();

/// Address-size mask of an absolute address (no base, no index), from the
/// displacement size iced recorded, which follows the address size.
#[inline(always)]
fn displ_addr_mask(insn: &Instruction) -> u64 {
    match insn.memory_displ_size() {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// Address-size mask of a memory operand: from the base or index register,
/// or (absolute addresses) from the displacement size.
#[inline(always)]
pub(crate) fn addr_mask(insn: &Instruction) -> u64 {
    let base = insn.memory_base() as usize & 0xff;
    let index = insn.memory_index() as usize & 0xff;
    if base | index == 0 {
        displ_addr_mask(insn)
    } else {
        ADDR_REG[base].size_mask & ADDR_REG[index].size_mask
    }
}

impl Cpu {
    /// Read a GPR of known size `SZ`.
    #[inline(always)]
    pub(crate) fn reg<const SZ: u8>(&self, r: Register) -> u64 {
        let n = r as usize;
        match SZ {
            8 => self.state.gpr[n.wrapping_sub(R64_BASE) & 15],
            4 => self.state.gpr[n.wrapping_sub(R32_BASE) & 15] & 0xffff_ffff,
            2 => self.state.gpr[n.wrapping_sub(R16_BASE) & 15] & 0xffff,
            _ => self.reg8(r),
        }
    }

    /// Write a GPR of known size `SZ` (merging 8/16-bit, zero-extending 32).
    #[inline(always)]
    pub(crate) fn set_reg<const SZ: u8>(&mut self, r: Register, v: u64) {
        let n = r as usize;
        match SZ {
            8 => self.state.gpr[n.wrapping_sub(R64_BASE) & 15] = v,
            4 => self.state.gpr[n.wrapping_sub(R32_BASE) & 15] = v & 0xffff_ffff,
            2 => {
                let g = &mut self.state.gpr[n.wrapping_sub(R16_BASE) & 15];
                *g = (*g & !0xffff) | (v & 0xffff);
            }
            _ => self.set_reg8(r, v),
        }
    }

    #[inline(always)]
    fn reg8(&self, r: Register) -> u64 {
        let n = r as usize;
        if n < R8H_BASE {
            self.state.gpr[n.wrapping_sub(R8_BASE) & 15] & 0xff
        } else if n < R8X_BASE {
            (self.state.gpr[(n - R8H_BASE) & 15] >> 8) & 0xff
        } else {
            self.state.gpr[(n - R8H_BASE) & 15] & 0xff
        }
    }

    #[inline(always)]
    fn set_reg8(&mut self, r: Register, v: u64) {
        let n = r as usize;
        let v = v & 0xff;
        if n < R8H_BASE {
            let g = &mut self.state.gpr[n.wrapping_sub(R8_BASE) & 15];
            *g = (*g & !0xff) | v;
        } else if n < R8X_BASE {
            let g = &mut self.state.gpr[(n - R8H_BASE) & 15];
            *g = (*g & !0xff00) | (v << 8);
        } else {
            let g = &mut self.state.gpr[(n - R8H_BASE) & 15];
            *g = (*g & !0xff) | v;
        }
    }

    /// Read GPR number `i` (0-15) at `size` bytes (no high-byte registers).
    #[inline(always)]
    pub(crate) fn gpr(&self, i: usize, size: u8) -> u64 {
        self.state.gpr[i & 15] & size_mask(size)
    }

    /// Write GPR number `i` at `size` bytes.
    #[inline(always)]
    pub(crate) fn set_gpr(&mut self, i: usize, size: u8, v: u64) {
        let g = &mut self.state.gpr[i & 15];
        *g = match size {
            8 => v,
            4 => v & 0xffff_ffff,
            _ => (*g & !size_mask(size)) | (v & size_mask(size)),
        };
    }

    /// Effective address (segment offset) of the memory operand, wrapped to
    /// the address size. Table-driven and branch-light: this runs for
    /// every memory operand.
    #[inline(always)]
    pub(crate) fn ea(&self, insn: &Instruction) -> u64 {
        let base = insn.memory_base() as usize & 0xff;
        let index = insn.memory_index() as usize & 0xff;
        let b = self.state.gpr[ADDR_REG[base].idx as usize & 15] & ADDR_REG[base].val_mask;
        let i = self.state.gpr[ADDR_REG[index].idx as usize & 15] & ADDR_REG[index].val_mask;
        let ea = insn
            .memory_displacement64()
            .wrapping_add(b)
            .wrapping_add(i.wrapping_mul(insn.memory_index_scale() as u64));
        let mask = if base | index == 0 {
            displ_addr_mask(insn)
        } else {
            ADDR_REG[base].size_mask & ADDR_REG[index].size_mask
        };
        ea & mask
    }

    /// Read the memory operand of `insn` (`SZ` bytes).
    #[inline(always)]
    pub(crate) fn read_m<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        insn: &Instruction,
    ) -> Result<u64, Fault> {
        let lin = self.operand_lin(insn, SZ, AccessKind::Read)?;
        let user = self.user_mode();
        self.read_lin::<SZ>(plat, lin, user)
    }

    /// Write the memory operand of `insn`.
    #[inline(always)]
    pub(crate) fn write_m<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        insn: &Instruction,
        v: u64,
    ) -> Result<(), Fault> {
        let lin = self.operand_lin(insn, SZ, AccessKind::Write)?;
        let user = self.user_mode();
        self.write_lin::<SZ>(plat, lin, v, user)
    }

    /// Read operand `n` (register, memory or immediate) at `SZ` bytes.
    /// Immediates are masked to `SZ` (sign-extension to the operand size is
    /// iced's, per the operand kind).
    #[inline(always)]
    pub(crate) fn read_op<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        insn: &Instruction,
        n: u32,
    ) -> Result<u64, Fault> {
        match insn.op_kind(n) {
            OpKind::Register => Ok(self.reg::<SZ>(insn.op_register(n))),
            OpKind::Memory => self.read_m::<SZ>(plat, insn),
            _ => Ok(insn.immediate(n) & size_mask(SZ)),
        }
    }

    /// Write operand `n` (register or memory) at `SZ` bytes.
    #[inline(always)]
    pub(crate) fn write_op<const SZ: u8>(
        &mut self,
        plat: &mut dyn Platform,
        insn: &Instruction,
        n: u32,
        v: u64,
    ) -> Result<(), Fault> {
        match insn.op_kind(n) {
            OpKind::Register => {
                self.set_reg::<SZ>(insn.op_register(n), v);
                Ok(())
            }
            _ => self.write_m::<SZ>(plat, insn, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::Decoder;

    fn dec(bits: u32, bytes: &[u8]) -> Instruction {
        let mut d = Decoder::with_ip(bits, bytes, 0x1000, 0);
        d.decode()
    }

    #[test]
    fn address_size_from_operand() {
        // mov al, [bx+si]  (16-bit)
        assert_eq!(addr_mask(&dec(16, &[0x8a, 0x00])), 0xffff);
        // mov al, [0x1234] (16-bit absolute)
        assert_eq!(addr_mask(&dec(16, &[0x8a, 0x06, 0x34, 0x12])), 0xffff);
        // mov al, [0x12345678] (32-bit absolute)
        assert_eq!(
            addr_mask(&dec(32, &[0x8a, 0x05, 0x78, 0x56, 0x34, 0x12])),
            0xffff_ffff
        );
        // 64-bit: mov al, [abs disp32] via SIB (no base, no index)
        assert_eq!(
            addr_mask(&dec(64, &[0x8a, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12])),
            u64::MAX
        );
        // 64-bit with 0x67: 32-bit addressing
        assert_eq!(
            addr_mask(&dec(64, &[0x67, 0x8a, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12])),
            0xffff_ffff
        );
        // 64-bit moffs: mov al, [qword abs]
        assert_eq!(
            addr_mask(&dec(64, &[0xa0, 1, 2, 3, 4, 5, 6, 7, 8])),
            u64::MAX
        );
        // 64-bit moffs with 0x67: 32-bit moffs
        assert_eq!(addr_mask(&dec(64, &[0x67, 0xa0, 1, 2, 3, 4])), 0xffff_ffff);
        // 32-bit code, 0x67: 16-bit moffs
        assert_eq!(addr_mask(&dec(32, &[0x67, 0xa0, 1, 2])), 0xffff);
        // RIP-relative, and EIP-relative with 0x67
        assert_eq!(addr_mask(&dec(64, &[0x8a, 0x05, 0, 0, 0, 0])), u64::MAX);
        assert_eq!(
            addr_mask(&dec(64, &[0x67, 0x8a, 0x05, 0, 0, 0, 0])),
            0xffff_ffff
        );
    }

    #[test]
    fn register_indices() {
        assert_eq!(gpr_index(Register::R13), 13);
        assert_eq!(gpr_index(Register::R9D), 9);
        assert_eq!(gpr_index(Register::SP), 4);
        assert_eq!(gpr_size(Register::DIL), 1);
        assert_eq!(gpr_size(Register::BH), 1);
        assert_eq!(gpr_size(Register::RIP), 0);
    }
}
