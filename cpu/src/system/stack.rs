//! Stack accesses on an explicit SS:RSP.
//!
//! Event delivery, far CALL through gates and RET/IRET to another privilege
//! level work on a stack that is not (yet) the current one, and must not
//! change RSP until the whole transfer has succeeded. [`Stack`] carries its
//! own copy of the SS cache and stack pointer; the caller commits
//! [`Stack::rsp`] to the register file at the end.

use crate::cpu::Cpu;
use crate::fault::Fault;
use crate::platform::Platform;
use crate::state::{reg, seg_attr, Segment};

/// Is `[off, off + size)` inside the segment limit? Handles expand-down data
/// segments (valid offsets are limit+1 ..= 0xffff or 0xffffffff per D/B).
pub(crate) fn within_limit(seg: &Segment, off: u64, size: u64) -> bool {
    let Some(last) = off.checked_add(size.saturating_sub(1)) else {
        return false;
    };
    let expand_down = seg.attr & seg_attr::S != 0
        && seg.attr & seg_attr::TYPE_CODE == 0
        && seg.attr & seg_attr::TYPE_EC != 0;
    if expand_down {
        let upper = if seg.big() { 0xffff_ffff } else { 0xffff };
        off > seg.limit as u64 && last <= upper
    } else {
        last <= seg.limit as u64
    }
}

/// A stack being built or unwound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stack {
    pub ss: Segment,
    /// The full RSP register value this stack will leave behind.
    pub rsp: u64,
    /// Stack-pointer width in bytes: 2 (SP), 4 (ESP) or 8 (RSP).
    pub width: u8,
    /// 64-bit mode: no base or limit, canonical check instead.
    pub flat64: bool,
    /// Accesses are user-mode accesses (the stack's privilege is 3).
    pub user: bool,
    /// What a limit/canonical violation raises (#SS(0) or #SS(sel|ext)).
    pub fault: Fault,
}

impl Stack {
    /// The current stack (SS:RSP, current mode and privilege).
    pub fn current(cpu: &Cpu) -> Stack {
        let ss = *cpu.state.ss();
        let flat64 = super::mode64(cpu);
        Stack {
            ss,
            rsp: cpu.state.gpr[reg::RSP],
            width: if flat64 {
                8
            } else if ss.big() {
                4
            } else {
                2
            },
            flat64,
            user: cpu.state.cpl() == 3,
            fault: Fault::ss(0),
        }
    }

    /// A stack on segment `ss` at `rsp`. `flat64` selects 64-bit stack
    /// semantics (used for delivery in IA-32e mode, which always builds a
    /// 64-bit frame).
    pub fn new(ss: Segment, rsp: u64, flat64: bool, user: bool, fault: Fault) -> Stack {
        let width = if flat64 {
            8
        } else if ss.big() {
            4
        } else {
            2
        };
        let rsp = match width {
            2 => rsp,
            4 => rsp & 0xffff_ffff,
            _ => rsp,
        };
        Stack {
            ss,
            rsp,
            width,
            flat64,
            user,
            fault,
        }
    }

    /// The stack-pointer offset (SP, ESP or RSP).
    #[inline]
    pub fn sp(&self) -> u64 {
        match self.width {
            2 => self.rsp & 0xffff,
            4 => self.rsp & 0xffff_ffff,
            _ => self.rsp,
        }
    }

    /// Set the stack-pointer offset, keeping RSP bits above the width (a
    /// 16-bit stack only changes SP).
    #[inline]
    pub fn set_sp(&mut self, sp: u64) {
        self.rsp = match self.width {
            2 => (self.rsp & !0xffff) | (sp & 0xffff),
            4 => sp & 0xffff_ffff,
            _ => sp,
        };
    }

    /// Move the stack pointer by `delta` bytes (wrapping at the width).
    #[inline]
    pub fn adjust(&mut self, delta: i64) {
        let sp = self.sp().wrapping_add(delta as u64);
        self.set_sp(sp);
    }

    /// Linear address of `size` bytes at stack offset `off`, after the
    /// limit (or canonical) check.
    fn linear(&self, off: u64, size: u8) -> Result<u64, Fault> {
        if self.flat64 {
            if !super::canonical(off) || !super::canonical(off.wrapping_add(size as u64 - 1)) {
                return Err(self.fault);
            }
            Ok(off)
        } else {
            if !within_limit(&self.ss, off, size as u64) {
                return Err(self.fault);
            }
            Ok(self.ss.base.wrapping_add(off) & 0xffff_ffff)
        }
    }

    /// Push `size` bytes.
    pub fn push(
        &mut self,
        cpu: &mut Cpu,
        plat: &mut dyn Platform,
        size: u8,
        val: u64,
    ) -> Result<(), Fault> {
        let off = self.wrap(self.sp().wrapping_sub(size as u64));
        let lin = self.linear(off, size)?;
        cpu.lin_write(plat, lin, size, val, self.user)?;
        self.set_sp(off);
        Ok(())
    }

    /// Write `size` bytes at the current stack pointer without moving it
    /// (PUSH Sreg writes 2 bytes into a 4/8-byte slot).
    pub fn push_at_sp(
        &mut self,
        cpu: &mut Cpu,
        plat: &mut dyn Platform,
        size: u8,
        val: u64,
    ) -> Result<(), Fault> {
        let lin = self.linear(self.sp(), size)?;
        cpu.lin_write(plat, lin, size, val, self.user)
    }

    /// Pop `size` bytes.
    pub fn pop(&mut self, cpu: &mut Cpu, plat: &mut dyn Platform, size: u8) -> Result<u64, Fault> {
        let v = self.peek(cpu, plat, 0, size)?;
        self.adjust(size as i64);
        Ok(v)
    }

    /// Read `size` bytes at `sp + off` without moving the stack pointer.
    pub fn peek(
        &self,
        cpu: &mut Cpu,
        plat: &mut dyn Platform,
        off: u64,
        size: u8,
    ) -> Result<u64, Fault> {
        let a = self.wrap(self.sp().wrapping_add(off));
        let lin = self.linear(a, size)?;
        cpu.lin_read(plat, lin, size, self.user)
    }

    /// Check that `n` bytes below the stack pointer can be pushed (the SDM's
    /// "stack does not have room" check made before a frame is written).
    pub fn check_room(&self, n: u64) -> Result<(), Fault> {
        if n == 0 {
            return Ok(());
        }
        // Both ends of the frame must be addressable; each push checks
        // its own bytes again (a 16-bit SP of 0 legitimately wraps to 0xfffe).
        self.linear(self.wrap(self.sp().wrapping_sub(n)), 1)?;
        self.linear(self.wrap(self.sp().wrapping_sub(1)), 1)?;
        Ok(())
    }

    #[inline]
    fn wrap(&self, v: u64) -> u64 {
        match self.width {
            2 => v & 0xffff,
            4 => v & 0xffff_ffff,
            _ => v,
        }
    }
}
