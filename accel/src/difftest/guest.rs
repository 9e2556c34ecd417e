//! The test guest: a tiny 64-bit machine whose user-mode loop runs many
//! cases per `run()`, identical on every backend.
//!
//! Guest memory map (identity-mapped, guest-physical = linear):
//!
//! ```text
//! 0x0000_1000 GDT (Linux's layout: kernel CS 0x10, DS 0x18, user DS 0x2b, CS 0x33, TSS 0x40)
//! 0x0000_2000 IDT: vectors 0-31, 64-bit interrupt gates, DPL 0
//! 0x0000_3000 TSS (RSP0 = KSTACK_TOP)
//! 0x0000_4000 CPL-0 code: 16-byte stub per vector, then the common handler
//! 0x0000_8000 kernel stack top
//! 0x0000_8000 control block (user-accessible; see the CTL_* offsets)
//! 0x0000_9000 CPL-3 runtime: `load` / `store` / `finish`
//! 0x0000_a000 low code zone (to 0x1_0000): case code whose branches
//!             truncate IP to 16 bits (see "Compatibility-mode cases")
//! 0x0001_0000 page tables
//! 0x7fff_ffff_f000 the top canonical page, mapped to HIGH_PAGE
//! 0x0010_0000 case code (bump-allocated)
//! 0x0040_0000 case records (state in, results out; RECORD_SIZE each)
//! 0x0060_0000 special pages, mapped with 4 KiB pages (not-present,
//!             read-only, supervisor-only) for #PF cases
//! 0x0080_0000 data windows (bump-allocated, one or more per case)
//! 0x0100_0000 end of RAM
//! ```
//!
//! Everything is mapped user-accessible, writable, 2 MiB pages, except the
//! special region. The guest uses Linux's GDT selectors on purpose: kvm-pvm
//! runs ring-3 code natively, where reading CS/SS shows the *host's* user
//! selectors, which are Linux's (0x33/0x2b), so they agree with ours.
//!
//! # The case loop (CPL 3)
//!
//! `load` takes the record at `CTL_CUR` (state block first), publishes the
//! record's code pointer and result pointer in the control block, points
//! RSP at the state block and pops RFLAGS and the 16 GPRs (RSP last), then
//! jumps to the case code through `[CTL_CODE]`: no register is needed for
//! the jump. Before that it loads XMM0-15 (MOVDQU) and MXCSR (LDMXCSR)
//! from the record's SSE block (`REC_SIMD`), and the x87 FPU with FRSTOR
//! from the FNSAVE image in the same block; `store` stores them back
//! into it (FNSAVE), so the SSE and x87 state is part of every case's
//! result. CR0 has NE = 1 (x87 exceptions are #MF, at the next waiting
//! x87 instruction), MP = 1, EM = TS = 0. The case code is the instruction(s) under test followed by
//! `jmp store`. `store` saves RSP with an absolute move, points RSP at the
//! record's result block and pushes RFLAGS and the GPRs, copies the
//! exception record of the control block into the result block, advances
//! `CTL_CUR` and falls into `load`. After the last record, `finish`
//! executes HLT, which at CPL 3 raises #GP.
//!
//! # The exception handler (CPL 0)
//!
//! Every exception of vector 0-31 goes through a stub that pushes a dummy
//! error code when the CPU pushed none, then the vector, and jumps to the
//! common handler. That records vector, error code, CR2 and the faulting
//! RIP in the control block, rewrites the frame's RIP to `store` and
//! returns with IRETQ: the case ends with the state the exception left.
//! A #GP from `finish`'s HLT instead halts at CPL 0, which ends `run()`
//! with a HLT exit on both backends. A second exception in the same case
//! (the runtime itself broke) records itself in `CTL_BROKEN_*` and halts.
//!
//! # Compatibility-mode cases
//!
//! A case with `CaseMode::Compat32` runs its code at CPL 3 in
//! compatibility mode, CS = [`USER_CS32`] (0x23, a 32-bit DPL-3 code
//! segment: the same selector as Linux's `__USER32_CS`, because kvm-pvm
//! runs ring-3 code natively on the host's GDT; measured on the
//! development host, the host's entry 4 is not usable by the guest's
//! ring 3, so there the far jump faults and KVM's instruction emulator
//! runs the case until it returns to 64-bit mode: see gen_legacy.rs). The batch loader puts a
//! 64-bit entry trampoline after the case's code ([`compat_tail`]): `load`
//! jumps to it as to any case code, and it enters the case with
//! `JMP FAR m16:32` (0x23:code), which needs no register and no stack.
//! DS and ES hold [`USER_DS`] in every case (a null DS would fault in
//! compatibility mode). The case code ends with `JMP FAR ptr16:32` to 0x33:`store`
//! (valid in compatibility mode; `store` is below 4 GiB), and the
//! exception handler rewrites the frame's CS to [`USER_CS`] as well as
//! its RIP, so a fault also returns to 64-bit mode. `store` records DS
//! and ES and then loads [`USER_DS`] into them again, so every case
//! starts with the same selectors (kvm-pvm's `set_state` does not reset
//! them).
//! Code, stack and data all lie below 4 GiB. Cases whose branches
//! truncate IP to 16 bits (a 0x66 prefix in compatibility mode, or the
//! AMD behaviour of 0x66 near branches in 64-bit mode) get their code in
//! the low code zone, below 64 KiB.
//!
//! kvm-pvm runs CPL-0 code in the host's instruction emulator (~1 µs per
//! instruction), so the handler is kept to a dozen instructions and only
//! faulting cases pay for it; the case loop itself runs natively.

use super::case::SIMD_X87;
use cpu::state::{cr0, cr4, efer, rflags, DescTable, SegReg, Segment};
use cpu::CpuState;
use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;
use mmu::{GuestRam, MachineAddr};

pub const RAM_SIZE: u64 = 16 << 20;

pub const GDT: u64 = 0x1000;
pub const IDT: u64 = 0x2000;
pub const TSS: u64 = 0x3000;
pub const KCODE: u64 = 0x4000;
/// The common exception handler, after the 32 stubs of 16 bytes.
pub const KCOMMON: u64 = KCODE + 32 * 16;
pub const KSTACK_TOP: u64 = 0x8000;
pub const CTL: u64 = 0x8000;
pub const UCODE: u64 = 0x9000;
/// The low code zone: case code that needs a 16-bit instruction pointer
/// (near branches with a 16-bit operand size truncate IP to 16 bits).
pub const LOW_CODE_BASE: u64 = 0xa000;
pub const LOW_CODE_END: u64 = 0x1_0000;
pub const PML4: u64 = 0x10000;
pub const CODE_BASE: u64 = 0x10_0000;
pub const CODE_END: u64 = 0x40_0000;
pub const RECORD_BASE: u64 = 0x40_0000;
pub const RECORD_END: u64 = 0x60_0000;
pub const SPECIAL_BASE: u64 = 0x60_0000;
pub const SPECIAL_END: u64 = 0x80_0000;
pub const DATA_BASE: u64 = 0x80_0000;
pub const DATA_END: u64 = RAM_SIZE;

/// Special pages (4 KiB each) in the special region. Each faulting page
/// follows an ordinary one, so accesses can cross into it.
pub const PAGE_NOT_PRESENT: u64 = SPECIAL_BASE + 0x1000;
pub const PAGE_READ_ONLY: u64 = SPECIAL_BASE + 0x3000;
pub const PAGE_SUPERVISOR: u64 = SPECIAL_BASE + 0x5000;
/// The physical page behind the highest canonical user page
/// ([`TOP_CANONICAL_PAGE`]), in the special region.
pub const HIGH_PAGE: u64 = SPECIAL_BASE + 0x10000;
/// The last 4 KiB page below the non-canonical hole.
pub const TOP_CANONICAL_PAGE: u64 = 0x7fff_ffff_f000;
/// The special pages (each follows an ordinary one).
pub const SPECIAL_PAGES: [u64; 3] = [PAGE_NOT_PRESENT, PAGE_READ_ONLY, PAGE_SUPERVISOR];

/// The fixed contents of the special region (rewritten before every
/// batch, so cases that read it see the same bytes on every backend).
pub fn special_byte(addr: u64) -> u8 {
    (addr.wrapping_mul(0x9e37_79b9) >> 11) as u8
}

// Control block offsets (absolute addresses).
pub const CTL_CUR: u64 = CTL;
pub const CTL_END: u64 = CTL + 0x08;
pub const CTL_CODE: u64 = CTL + 0x10;
pub const CTL_RES_TOP: u64 = CTL + 0x18;
pub const CTL_SAVED_RSP: u64 = CTL + 0x20;
pub const CTL_EXC_VEC: u64 = CTL + 0x28;
pub const CTL_EXC_EC: u64 = CTL + 0x30;
pub const CTL_EXC_CR2: u64 = CTL + 0x38;
pub const CTL_EXC_RIP: u64 = CTL + 0x40;
pub const CTL_SAVE_RAX: u64 = CTL + 0x48;
pub const CTL_BROKEN_VEC: u64 = CTL + 0x50;
pub const CTL_BROKEN_RIP: u64 = CTL + 0x58;
/// "No exception" in `CTL_EXC_VEC` and in result blocks.
pub const NO_EXCEPTION: u64 = u64::MAX;

// Case record layout.
pub const RECORD_SIZE: u64 = 0x300;
/// State block: RFLAGS, then RAX RCX RDX RBX RBP RSI RDI R8-R15, then RSP
/// (the order `load` pops them in).
pub const REC_STATE: u64 = 0;
pub const REC_CODE_PTR: u64 = 0x88;
/// Result block: RAX RCX RDX RBX RBP RSI RDI R8-R15, RFLAGS (the order
/// `store`'s pushes leave them in), then the fields below.
pub const REC_RESULT: u64 = 0x90;
/// `store` pushes down from here.
pub const REC_RES_TOP: u64 = REC_RESULT + 16 * 8;
pub const RES_RSP: u64 = REC_RES_TOP;
pub const RES_EXC_VEC: u64 = REC_RES_TOP + 0x08;
pub const RES_EXC_EC: u64 = REC_RES_TOP + 0x10;
pub const RES_EXC_CR2: u64 = REC_RES_TOP + 0x18;
pub const RES_EXC_RIP: u64 = REC_RES_TOP + 0x20;
/// DS, ES, FS, GS, SS selectors, one word each.
pub const RES_SEGS: u64 = REC_RES_TOP + 0x28;
pub const RES_DONE: u64 = REC_RES_TOP + 0x38;
/// The case's SSE and x87 block (`case::SIMD_BLOCK` bytes: XMM0-15,
/// MXCSR, then an FNSAVE image at `case::SIMD_X87`): `load` loads
/// XMM0-15, MXCSR (LDMXCSR) and the FPU (FRSTOR) from it, `store` stores
/// them back into it (FNSAVE).
pub const REC_SIMD: u64 = 0x160;
const _: () = assert!(REC_SIMD + super::case::SIMD_BLOCK as u64 <= RECORD_SIZE);
/// Written to `RES_DONE` by `store`: the case reached its end.
pub const DONE_MAGIC: u64 = 0x0d0e_5eed_c0de_d0e5;

/// The GPRs in the state block's pop order (after RFLAGS), as indices into
/// `CpuState::gpr`; RSP (4) comes last.
pub const STATE_ORDER: [usize; 16] = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 4];
/// The GPRs in the result block, in memory order (RSP is in `RES_RSP`).
pub const RESULT_ORDER: [usize; 15] = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

// Selectors (Linux's layout).
pub const KERNEL_CS: u16 = 0x10;
pub const KERNEL_DS: u16 = 0x18;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
/// The 32-bit user code segment (compatibility mode), Linux's `__USER32_CS`.
pub const USER_CS32: u16 = 0x23;
pub const TSS_SEL: u16 = 0x40;

const DESC_KERNEL_CODE64: u64 = 0x00af_9b00_0000_ffff;
const DESC_KERNEL_DATA: u64 = 0x00cf_9300_0000_ffff;
const DESC_USER_CODE32: u64 = 0x00cf_fb00_0000_ffff;
const DESC_USER_DATA: u64 = 0x00cf_f300_0000_ffff;
const DESC_USER_CODE64: u64 = 0x00af_fb00_0000_ffff;

/// FS and GS bases of the case loop, for segment-override cases: an FS or
/// GS override adds these to the effective address.
pub const FS_BASE: u64 = 0x10_0000;
pub const GS_BASE: u64 = 0x40_0000;

/// Vectors for which the CPU pushes an error code (SDM Vol. 3A, 6.13).
pub fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// The runtime's entry points, once assembled.
#[derive(Debug, Clone, Copy)]
pub struct Runtime {
    pub load: u64,
    pub store: u64,
    pub finish: u64,
}

/// Why the image could not be built (an assembler error: a harness bug).
#[derive(Debug)]
pub struct BuildError(pub String);

impl From<IcedError> for BuildError {
    fn from(e: IcedError) -> Self {
        BuildError(e.to_string())
    }
}

impl From<mmu::ram::OutOfRange> for BuildError {
    fn from(e: mmu::ram::OutOfRange) -> Self {
        BuildError(format!("{e:?}"))
    }
}

fn assemble(
    ip: u64,
    f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<Vec<u8>, BuildError> {
    let mut a = CodeAssembler::new(64)?;
    f(&mut a)?;
    Ok(a.assemble(ip)?)
}

fn put(ram: &GuestRam, addr: u64, bytes: &[u8]) -> Result<(), BuildError> {
    ram.write(MachineAddr(addr), bytes)?;
    Ok(())
}

fn put64(ram: &GuestRam, addr: u64, v: u64) -> Result<(), BuildError> {
    put(ram, addr, &v.to_le_bytes())
}

/// Write the fixed part of the guest (tables, handler, runtime) into
/// `ram`. Case code, records and data are written per batch.
pub fn build(ram: &GuestRam) -> Result<Runtime, BuildError> {
    // GDT.
    let gdt = [
        0,
        0,
        DESC_KERNEL_CODE64,
        DESC_KERNEL_DATA,
        DESC_USER_CODE32,
        DESC_USER_DATA,
        DESC_USER_CODE64,
        0,
    ];
    for (i, d) in gdt.iter().enumerate() {
        put64(ram, GDT + 8 * i as u64, *d)?;
    }
    // 64-bit TSS descriptor (available; TR's cache says busy).
    let tss_lo = 0x67 | ((TSS & 0xff_ffff) << 16) | (0x89u64 << 40) | (((TSS >> 24) & 0xff) << 56);
    put64(ram, GDT + u64::from(TSS_SEL), tss_lo)?;
    put64(ram, GDT + u64::from(TSS_SEL) + 8, TSS >> 32)?;
    // TSS: RSP0 at offset 4, no I/O bitmap (base past the limit).
    put64(ram, TSS + 4, KSTACK_TOP)?;
    put(ram, TSS + 0x66, &0x68u16.to_le_bytes())?;

    // Page tables: PML4 → PDPT → PD (2 MiB pages, U/W/P), except the
    // special region, which has a page table.
    let pdpt = PML4 + 0x1000;
    let pd = PML4 + 0x2000;
    let pt = PML4 + 0x3000;
    put64(ram, PML4, pdpt | 7)?;
    put64(ram, pdpt, pd | 7)?;
    for i in 0..RAM_SIZE / (2 << 20) {
        let base = i * (2 << 20);
        let entry = if base == SPECIAL_BASE {
            pt | 7
        } else {
            base | 0x87
        };
        put64(ram, pd + 8 * i, entry)?;
    }
    for i in 0..512u64 {
        let page = SPECIAL_BASE + i * 0x1000;
        let entry = match page {
            PAGE_NOT_PRESENT => 0,
            PAGE_READ_ONLY => page | 5,
            PAGE_SUPERVISOR => page | 3,
            _ => page | 7,
        };
        put64(ram, pt + 8 * i, entry)?;
    }

    // The highest canonical user page, 0x7fff_ffff_f000, maps HIGH_PAGE:
    // accesses that cross the canonical boundary start in a mapped page.
    let (pdpt_hi, pd_hi, pt_hi) = (PML4 + 0x4000, PML4 + 0x5000, PML4 + 0x6000);
    put64(ram, PML4 + 8 * 255, pdpt_hi | 7)?;
    put64(ram, pdpt_hi + 8 * 511, pd_hi | 7)?;
    put64(ram, pd_hi + 8 * 511, pt_hi | 7)?;
    put64(ram, pt_hi + 8 * 511, HIGH_PAGE | 7)?;

    let rt = build_runtime(ram)?;

    // Exception stubs and IDT gates.
    for v in 0..32u8 {
        let stub = KCODE + 16 * u64::from(v);
        let code = assemble(stub, |a| {
            if !has_error_code(v) {
                a.push(0)?;
            }
            a.push(i32::from(v))?;
            a.jmp(KCOMMON)
        })?;
        if code.len() > 16 {
            return Err(BuildError(format!("stub {v} is {} bytes", code.len())));
        }
        put(ram, stub, &code)?;
        let lo = (stub & 0xffff)
            | (u64::from(KERNEL_CS) << 16)
            | (0x8e00u64 << 32)
            | (((stub >> 16) & 0xffff) << 48);
        put64(ram, IDT + 16 * u64::from(v), lo)?;
        put64(ram, IDT + 16 * u64::from(v) + 8, stub >> 32)?;
    }
    let common = assemble(KCOMMON, |a| {
        let mut halt = a.create_label();
        let mut broken = a.create_label();
        // Frame: [rsp] vector, [rsp+8] error code, [rsp+16] RIP, CS, RFLAGS, RSP, SS.
        a.mov(qword_ptr(CTL_SAVE_RAX), rax)?;
        a.mov(rax, qword_ptr(rsp + 16))?;
        a.cmp(rax, rt.finish as i32)?;
        a.je(halt)?;
        a.cmp(qword_ptr(CTL_EXC_VEC), -1)?;
        a.jne(broken)?;
        a.mov(qword_ptr(CTL_EXC_RIP), rax)?;
        a.mov(rax, qword_ptr(rsp))?;
        a.mov(qword_ptr(CTL_EXC_VEC), rax)?;
        a.mov(rax, qword_ptr(rsp + 8))?;
        a.mov(qword_ptr(CTL_EXC_EC), rax)?;
        a.mov(rax, cr2)?;
        a.mov(qword_ptr(CTL_EXC_CR2), rax)?;
        a.mov(qword_ptr(rsp + 16), rt.store as i32)?;
        // Back to 64-bit mode (a compatibility-mode case faulted with
        // CS = USER_CS32 in the frame; for the others this is a no-op).
        a.mov(qword_ptr(rsp + 24), i32::from(USER_CS))?;
        a.mov(rax, qword_ptr(CTL_SAVE_RAX))?;
        a.add(rsp, 16)?;
        a.iretq()?;
        a.set_label(&mut broken)?;
        a.mov(rax, qword_ptr(rsp))?;
        a.mov(qword_ptr(CTL_BROKEN_VEC), rax)?;
        a.mov(rax, qword_ptr(rsp + 16))?;
        a.mov(qword_ptr(CTL_BROKEN_RIP), rax)?;
        a.set_label(&mut halt)?;
        a.hlt()?;
        a.jmp(halt)
    })?;
    if KCOMMON + common.len() as u64 > KSTACK_TOP - 0x1000 {
        return Err(BuildError("exception handler too long".into()));
    }
    put(ram, KCOMMON, &common)?;
    Ok(rt)
}

/// XMM0-15, for the runtime's loads and stores.
const XMM: [AsmRegisterXmm; 16] = [
    xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8, xmm9, xmm10, xmm11, xmm12, xmm13, xmm14,
    xmm15,
];

/// Assemble the CPL-3 runtime at `UCODE` (two passes: the handler needs
/// the addresses, the runtime is position-fixed).
fn build_runtime(ram: &GuestRam) -> Result<Runtime, BuildError> {
    let mut a = CodeAssembler::new(64)?;
    let mut store = a.create_label();
    let mut load = a.create_label();
    let mut finish = a.create_label();

    a.set_label(&mut store)?;
    a.mov(qword_ptr(CTL_SAVED_RSP), rsp)?;
    a.mov(rsp, qword_ptr(CTL_RES_TOP))?;
    a.pushfq()?;
    for r in [
        r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax,
    ] {
        a.push(r)?;
    }
    a.mov(rbx, qword_ptr(CTL_RES_TOP))?;
    let simd = REC_SIMD as i32 - REC_RES_TOP as i32;
    for (i, x) in XMM.iter().enumerate() {
        a.movdqu(xmmword_ptr(rbx + simd + 16 * i as i32), *x)?;
    }
    a.stmxcsr(dword_ptr(rbx + simd + 256))?;
    // FNSAVE: non-waiting, so an unmasked exception the case left pending
    // stays pending (and is stored: FSW.ES) instead of raising #MF here;
    // it also reinitialises the FPU, as FNINIT.
    a.fnsave(ptr(rbx + simd + SIMD_X87 as i32))?;
    a.mov(rax, qword_ptr(CTL_SAVED_RSP))?;
    a.mov(qword_ptr(rbx + (RES_RSP - REC_RES_TOP) as i32), rax)?;
    for (from, to) in [
        (CTL_EXC_VEC, RES_EXC_VEC),
        (CTL_EXC_EC, RES_EXC_EC),
        (CTL_EXC_CR2, RES_EXC_CR2),
        (CTL_EXC_RIP, RES_EXC_RIP),
    ] {
        a.mov(rax, qword_ptr(from))?;
        a.mov(qword_ptr(rbx + (to - REC_RES_TOP) as i32), rax)?;
    }
    a.mov(qword_ptr(CTL_EXC_VEC), -1)?;
    let segs = (RES_SEGS - REC_RES_TOP) as i32;
    a.mov(ax, ds)?;
    a.mov(word_ptr(rbx + segs), ax)?;
    a.mov(ax, es)?;
    a.mov(word_ptr(rbx + segs + 2), ax)?;
    a.mov(ax, fs)?;
    a.mov(word_ptr(rbx + segs + 4), ax)?;
    a.mov(ax, gs)?;
    a.mov(word_ptr(rbx + segs + 6), ax)?;
    a.mov(ax, ss)?;
    a.mov(word_ptr(rbx + segs + 8), ax)?;
    // DS and ES back to USER_DS (a compatibility-mode case may have
    // loaded others): every case starts with the selectors `user_state`
    // gives (kvm-pvm's set_state does not reset them between runs).
    a.mov(eax, u32::from(USER_DS))?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.mov(rax, DONE_MAGIC)?;
    a.mov(qword_ptr(rbx + (RES_DONE - REC_RES_TOP) as i32), rax)?;
    a.add(qword_ptr(CTL_CUR), RECORD_SIZE as i32)?;

    a.set_label(&mut load)?;
    a.mov(rax, qword_ptr(CTL_CUR))?;
    a.cmp(rax, qword_ptr(CTL_END))?;
    a.jae(finish)?;
    a.mov(rbx, qword_ptr(rax + REC_CODE_PTR as i32))?;
    a.mov(qword_ptr(CTL_CODE), rbx)?;
    a.lea(rbx, qword_ptr(rax + REC_RES_TOP as i32))?;
    a.mov(qword_ptr(CTL_RES_TOP), rbx)?;
    // SSE state (CR4.OSFXSR is set): MOVDQU, so no alignment demands.
    for (i, x) in XMM.iter().enumerate() {
        a.movdqu(*x, xmmword_ptr(rax + (REC_SIMD + 16 * i as u64) as i32))?;
    }
    a.ldmxcsr(dword_ptr(rax + (REC_SIMD + 256) as i32))?;
    // The FPU (the previous case's FNSAVE left it initialised, so no
    // exception is pending here). An image with FSW.ES set makes the
    // case's first waiting x87 instruction raise #MF (CR0.NE = 1).
    a.frstor(ptr(rax + (REC_SIMD + SIMD_X87 as u64) as i32))?;
    a.mov(rsp, rax)?;
    a.popfq()?;
    for r in [
        rax, rcx, rdx, rbx, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
    ] {
        a.pop(r)?;
    }
    a.pop(rsp)?;
    a.jmp(qword_ptr(CTL_CODE))?;

    a.set_label(&mut finish)?;
    a.hlt()?;
    a.jmp(finish)?;

    let result = a.assemble_options(UCODE, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let rt = Runtime {
        load: result.label_ip(&load)?,
        store: result.label_ip(&store)?,
        finish: result.label_ip(&finish)?,
    };
    let bytes = &result.inner.code_buffer;
    if UCODE + bytes.len() as u64 > LOW_CODE_BASE {
        return Err(BuildError("runtime too long".into()));
    }
    put(ram, UCODE, bytes)?;
    Ok(rt)
}

/// The bytes that follow a compatibility-mode case's code at `at`: the
/// exit (`JMP FAR 0x33:store`, 32-bit code), then the 64-bit entry
/// trampoline (`JMP FAR m16:32` to 0x23:`code`) and its far pointer.
/// Returns the bytes and the trampoline's address (what the record's
/// code pointer gets).
pub fn compat_tail(code: u64, at: u64, store: u64) -> Result<(Vec<u8>, u64), BuildError> {
    use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
    let code32 = u32::try_from(code).map_err(|_| BuildError("compat code above 4 GiB".into()))?;
    let store32 = u32::try_from(store).map_err(|_| BuildError("store above 4 GiB".into()))?;
    let mut bytes = Vec::with_capacity(COMPAT_TAIL as usize);
    let mut enc32 = Encoder::new(32);
    let exit = Instruction::with_far_branch(Code::Jmp_ptr1632, USER_CS, store32)?;
    enc32.encode(&exit, at)?;
    bytes.extend_from_slice(&enc32.take_buffer());
    let entry = at + bytes.len() as u64;
    // `jmp far [rip + x]` (6 bytes), then the far pointer.
    let far_ptr = entry + 6;
    let mut enc = Encoder::new(64);
    let jmp = Instruction::with1(
        Code::Jmp_m1632,
        MemoryOperand::with_base_displ(Register::RIP, far_ptr as i64),
    )?;
    if entry + enc.encode(&jmp, entry)? as u64 != far_ptr {
        return Err(BuildError("compat trampoline layout".into()));
    }
    bytes.extend_from_slice(&enc.take_buffer());
    bytes.extend_from_slice(&code32.to_le_bytes());
    bytes.extend_from_slice(&USER_CS32.to_le_bytes());
    Ok((bytes, entry))
}

/// Bytes [`compat_tail`] appends (7 + 6 + 6).
pub const COMPAT_TAIL: u64 = 19;

/// The state `run()` starts each batch in: 64-bit mode, CPL 3, at `load`.
pub fn user_state(rt: &Runtime) -> CpuState {
    let mut s = CpuState::reset();
    // Null FS/GS, as Linux runs 64-bit user code, SS = user data.
    let null = |base: u64| Segment {
        selector: 0,
        base,
        limit: 0,
        attr: cpu::state::seg_attr::UNUSABLE,
    };
    s.seg = [null(0); 6];
    *s.sreg_mut(SegReg::Ss) = Segment::from_descriptor(USER_DS, DESC_USER_DATA);
    // DS and ES hold the user data segment (64-bit mode ignores them;
    // compatibility-mode cases address through them). On kvm-pvm this
    // is also the DS/ES its instruction emulator sees (it does not read
    // back selectors loaded natively), which runs the compatibility-mode
    // cases.
    *s.sreg_mut(SegReg::Ds) = Segment::from_descriptor(USER_DS, DESC_USER_DATA);
    *s.sreg_mut(SegReg::Es) = Segment::from_descriptor(USER_DS, DESC_USER_DATA);
    *s.sreg_mut(SegReg::Cs) = Segment::from_descriptor(USER_CS, DESC_USER_CODE64);
    *s.sreg_mut(SegReg::Fs) = null(FS_BASE);
    *s.sreg_mut(SegReg::Gs) = null(GS_BASE);
    s.tr = Segment {
        selector: TSS_SEL,
        base: TSS,
        limit: 0x67,
        attr: 0x8b,
    };
    s.ldtr = Segment {
        selector: 0,
        base: 0,
        limit: 0,
        attr: cpu::state::seg_attr::UNUSABLE,
    };
    s.gdtr = DescTable {
        base: GDT,
        limit: 0x4f,
    };
    s.idtr = DescTable {
        base: IDT,
        limit: 32 * 16 - 1,
    };
    s.cr0 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG;
    s.cr3 = PML4;
    s.cr4 = cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT;
    s.efer = efer::SCE | efer::LME | efer::LMA | efer::NXE;
    s.rip = rt.load;
    s.rflags = rflags::FIXED1 | rflags::IF;
    s.gpr[4] = KSTACK_TOP - 0x100;
    s
}
