//! Laying a batch of cases out in guest memory and running it on one
//! backend.
//!
//! One VM per backend serves every batch: the fixed part of the guest
//! (guest.rs) is written once, each batch rewrites the case code, the
//! records and the data windows, and starts the CPL-3 case loop with
//! `set_state` (which also drops the interpreter's decoded blocks).

use super::case::{Case, CaseMode, Outcome, Simd, SIMD_BLOCK};
use super::guest::{self, Runtime};
use crate::kvm::KvmAccel;
use crate::tcg::TcgAccel;
use crate::{AccelError, Accelerator, RunSlice, VcpuExit};
use cpu::{CpuState, Platform};
use iced_x86::{Code, Encoder, Instruction};
use mmu::{GuestPhysAddr, GuestRam, MachineAddr, PhysLayout};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cases that fit in one batch (the record area is the limit).
pub const MAX_BATCH: usize =
    ((guest::RECORD_END - guest::RECORD_BASE) / guest::RECORD_SIZE) as usize;

/// Where the next case's code and data go. The generator asks it for
/// addresses while it builds a case (RIP-relative operands and page
/// crossings depend on them).
#[derive(Debug, Clone)]
pub struct Alloc {
    code: u64,
    data: u64,
    /// The next free byte of the low code zone (`guest::LOW_CODE_BASE`).
    low: u64,
    cases: usize,
}

/// Bytes of code reserved after a case's instructions: `jmp store`.
const JMP_LEN: u64 = 5;

/// Bytes of low code zone one case may need at most (its code and the
/// compatibility-mode tail).
const LOW_CASE_MAX: u64 = 64 + guest::COMPAT_TAIL;

impl Default for Alloc {
    fn default() -> Self {
        Alloc {
            code: guest::CODE_BASE,
            data: guest::DATA_BASE,
            low: guest::LOW_CODE_BASE,
            cases: 0,
        }
    }
}

impl Alloc {
    /// Room for one more case of up to `code_len` bytes and `data_len`
    /// bytes of data (plus a page of slack for page-crossing windows)?
    /// (Room for a compatibility-mode tail and for one case in the low
    /// code zone included.)
    pub fn has_room(&self, code_len: u64, data_len: u64) -> bool {
        self.cases < MAX_BATCH
            && self.code + code_len + guest::COMPAT_TAIL + 16 <= guest::CODE_END
            && self.data + data_len + 0x1000 <= guest::DATA_END
            && self.low + LOW_CASE_MAX <= guest::LOW_CODE_END
    }

    /// Address the next case's code will be placed at.
    pub fn code_addr(&self) -> u64 {
        self.code
    }

    /// Address the next case's code will be placed at if it needs the
    /// low code zone (a 16-bit instruction pointer).
    pub fn low_code_addr(&self) -> u64 {
        self.low
    }

    /// Reserve `len` bytes of code at [`Alloc::code_addr`] and count the case.
    pub fn commit(&mut self, len: u64) {
        self.code = (self.code + len + JMP_LEN + 15) & !15;
        self.cases += 1;
    }

    /// Reserve `case`'s code (at [`Alloc::code_addr`] or in the low code
    /// zone, with the tail its mode needs) and count the case.
    pub fn commit_case(&mut self, case: &Case) {
        let len = case.code.len() as u64;
        let tail = match case.mode {
            CaseMode::Long64 => JMP_LEN,
            CaseMode::Compat32 => guest::COMPAT_TAIL,
        };
        if (guest::LOW_CODE_BASE..guest::LOW_CODE_END).contains(&case.code_addr) {
            self.low = (self.low.max(case.code_addr) + len + tail + 15) & !15;
        } else {
            self.code = (self.code.max(case.code_addr) + len + tail + 15) & !15;
        }
        self.cases += 1;
    }

    /// A fresh data window of `len` bytes, 64-byte aligned, or (with
    /// `cross_at` = Some(k)) placed so that a page boundary falls `k` bytes
    /// into it.
    pub fn data(&mut self, len: u64, cross_at: Option<u64>) -> u64 {
        let addr = match cross_at {
            None => (self.data + 63) & !63,
            Some(k) => {
                let mut boundary = (self.data + k + 0xfff) & !0xfff;
                if boundary < self.data + k {
                    boundary += 0x1000;
                }
                boundary - k
            }
        };
        self.data = addr + len;
        addr
    }

    pub fn cases(&self) -> usize {
        self.cases
    }

    /// The ends of the code and data used so far.
    pub fn extent(&self) -> (u64, u64) {
        (self.code, self.data)
    }
}

/// A device-less platform: the test guest does no I/O.
#[derive(Default)]
struct NullPlatform;

impl Platform for NullPlatform {
    fn pio_in(&mut self, _port: u16, _size: u8) -> u32 {
        u32::MAX
    }
    fn pio_out(&mut self, _port: u16, _size: u8, _val: u32) {}
    fn mmio_read(&mut self, _pa: GuestPhysAddr, _size: u8) -> u64 {
        u64::MAX
    }
    fn mmio_write(&mut self, _pa: GuestPhysAddr, _size: u8, _val: u64) {}
    fn interrupt_pending(&self) -> bool {
        false
    }
    fn ack_interrupt(&mut self) -> Option<u8> {
        None
    }
    fn stop_requested(&self) -> bool {
        false
    }
    fn tsc(&mut self) -> u64 {
        0
    }
}

/// What became of one case on one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseRun {
    Ran(Outcome),
    /// The backend could not run the case (host KVM limit); the detail
    /// says why.
    Unavailable(String),
    /// The case loop itself broke during the case (a second exception
    /// inside one case, e.g. in the runtime): a harness failure.
    Broken(String),
}

/// A backend with its own copy of the guest.
pub struct Backend {
    accel: Box<dyn Accelerator>,
    ram: Arc<GuestRam>,
    rt: Runtime,
    platform: NullPlatform,
    /// Time spent inside `run()` (guest execution), for the cost report.
    pub run_time: Duration,
}

fn bad(what: &str, e: impl std::fmt::Debug) -> AccelError {
    AccelError::Host {
        what: "difftest",
        detail: format!("{what}: {e:?}"),
    }
}

impl Backend {
    fn with(
        make: impl FnOnce(Arc<GuestRam>) -> Result<Box<dyn Accelerator>, AccelError>,
    ) -> Result<Self, AccelError> {
        let ram = Arc::new(GuestRam::new(guest::RAM_SIZE).map_err(|e| bad("guest RAM", e))?);
        let rt = guest::build(&ram).map_err(|e| bad("building the test guest", e.0))?;
        let accel = make(ram.clone())?;
        Ok(Backend {
            accel,
            ram,
            rt,
            platform: NullPlatform,
            run_time: Duration::ZERO,
        })
    }

    /// The interpreter.
    pub fn tcg() -> Result<Self, AccelError> {
        Backend::with(|ram| {
            Ok(Box::new(TcgAccel::new(
                ram,
                PhysLayout::new(guest::RAM_SIZE),
            )))
        })
    }

    /// The host CPU through KVM ([`AccelError::Unavailable`] if there is
    /// none).
    pub fn kvm() -> Result<Self, AccelError> {
        Backend::with(|ram| {
            Ok(Box::new(KvmAccel::new(
                ram,
                PhysLayout::new(guest::RAM_SIZE),
            )?))
        })
    }

    pub fn name(&self) -> &'static str {
        self.accel.name()
    }

    pub fn describe(&self) -> String {
        self.accel.describe()
    }

    fn write(&self, addr: u64, bytes: &[u8]) -> Result<(), AccelError> {
        self.ram
            .write(MachineAddr(addr), bytes)
            .map_err(|e| bad("writing guest memory", e))
    }

    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, AccelError> {
        let mut v = vec![0; len];
        self.ram
            .read(MachineAddr(addr), &mut v)
            .map_err(|e| bad("reading guest memory", e))?;
        Ok(v)
    }

    fn read64(&self, addr: u64) -> Result<u64, AccelError> {
        self.ram
            .read_le(MachineAddr(addr), 8)
            .map_err(|e| bad("reading guest memory", e))
    }

    fn write64(&self, addr: u64, v: u64) -> Result<(), AccelError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Lay `cases` out in guest memory.
    fn load(&self, cases: &[Case]) -> Result<(), AccelError> {
        if cases.len() > MAX_BATCH {
            return Err(bad("batch too large", cases.len()));
        }
        // Special pages: the same pattern every batch.
        let pattern: Vec<u8> = (guest::SPECIAL_BASE..guest::SPECIAL_END)
            .map(guest::special_byte)
            .collect();
        self.write(guest::SPECIAL_BASE, &pattern)?;
        let mut enc = Encoder::new(64);
        for (i, c) in cases.iter().enumerate() {
            let rec = guest::RECORD_BASE + i as u64 * guest::RECORD_SIZE;
            let mut state = Vec::with_capacity(17 * 8);
            state.extend_from_slice(&c.rflags.to_le_bytes());
            for r in guest::STATE_ORDER {
                state.extend_from_slice(&c.gpr[r].to_le_bytes());
            }
            self.write(rec + guest::REC_STATE, &state)?;
            self.write64(rec + guest::REC_CODE_PTR, c.code_addr)?;
            // Results: poisoned, not done.
            self.write(
                rec + guest::REC_RESULT,
                &vec![0xcc; (guest::RECORD_SIZE - guest::REC_RESULT) as usize],
            )?;
            self.write64(rec + guest::RES_DONE, 0)?;
            // SSE state in (after the poison, which covers it).
            self.write(rec + guest::REC_SIMD, &c.simd.to_bytes())?;
            let jmp_at = c.code_addr + c.code.len() as u64;
            let mut code = c.code.clone();
            match c.mode {
                CaseMode::Long64 => {
                    let jmp = Instruction::with_branch(Code::Jmp_rel32_64, self.rt.store)
                        .map_err(|e| bad("jmp store", e))?;
                    enc.encode(&jmp, jmp_at).map_err(|e| bad("jmp store", e))?;
                    code.extend_from_slice(&enc.take_buffer());
                }
                CaseMode::Compat32 => {
                    // Entered through the 64-bit trampoline after the code.
                    let (tail, entry) = guest::compat_tail(c.code_addr, jmp_at, self.rt.store)
                        .map_err(|e| bad("compatibility-mode tail", e.0))?;
                    code.extend_from_slice(&tail);
                    self.write64(rec + guest::REC_CODE_PTR, entry)?;
                }
            }
            self.write(c.code_addr, &code)?;
            for w in &c.windows {
                self.write(w.addr, &w.init)?;
            }
        }
        Ok(())
    }

    /// Start the case loop at record `first`.
    fn start(&mut self, first: usize, n: usize) -> Result<(), AccelError> {
        let rec = |i: usize| guest::RECORD_BASE + i as u64 * guest::RECORD_SIZE;
        self.write64(guest::CTL_CUR, rec(first))?;
        self.write64(guest::CTL_END, rec(n))?;
        self.write64(guest::CTL_EXC_VEC, guest::NO_EXCEPTION)?;
        self.write64(guest::CTL_BROKEN_VEC, guest::NO_EXCEPTION)?;
        self.write64(guest::CTL_BROKEN_RIP, 0)?;
        let s: CpuState = guest::user_state(&self.rt);
        self.accel.set_state(&s)
    }

    /// Run `cases` (at most [`MAX_BATCH`]) and say what became of each.
    pub fn run(&mut self, cases: &[Case]) -> Result<Vec<CaseRun>, AccelError> {
        self.load(cases)?;
        let n = cases.len();
        let mut special: Vec<Option<CaseRun>> = vec![None; n];
        let mut first = 0;
        self.start(first, n)?;
        let begin = Instant::now();
        // A batch is a few ms of guest time; anything near this is a
        // runaway guest (a harness bug), not a slow host.
        let deadline = begin + Duration::from_secs(30);
        loop {
            let slice = RunSlice {
                deadline: Some(deadline),
                insn_limit: self
                    .accel
                    .instructions()
                    .map(|done| done + 2000 * n as u64 + 100_000),
            };
            let exit = self.accel.run(&mut self.platform, slice)?;
            let cur = self.read64(guest::CTL_CUR)?;
            let at = (cur.saturating_sub(guest::RECORD_BASE) / guest::RECORD_SIZE) as usize;
            let broken = self.read64(guest::CTL_BROKEN_VEC)?;
            let resume_after = |why: CaseRun, special: &mut Vec<Option<CaseRun>>| {
                if let Some(slot) = special.get_mut(at) {
                    *slot = Some(why);
                }
                at + 1
            };
            match exit {
                VcpuExit::Hlt { .. } if broken == guest::NO_EXCEPTION => break,
                VcpuExit::Hlt { .. } => {
                    let rip = self.read64(guest::CTL_BROKEN_RIP)?;
                    let why = CaseRun::Broken(format!(
                        "a second exception inside the case: {} at rip {rip:#x}",
                        cpu::fault::vector_name(broken as u8)
                    ));
                    first = resume_after(why, &mut special);
                }
                VcpuExit::HostLimit { detail } => {
                    first = resume_after(CaseRun::Unavailable(detail), &mut special);
                }
                VcpuExit::SliceEnd if Instant::now() < deadline => continue,
                other => {
                    return Err(bad(
                        &format!(
                            "{} did not finish the batch (at case {at} of {n})",
                            self.name()
                        ),
                        other,
                    ))
                }
            }
            if first >= n {
                break;
            }
            self.start(first, n)?;
        }
        self.run_time += begin.elapsed();
        let mut out = Vec::with_capacity(n);
        for (i, c) in cases.iter().enumerate() {
            if let Some(s) = special.get_mut(i).and_then(Option::take) {
                out.push(s);
                continue;
            }
            out.push(CaseRun::Ran(self.outcome(i, c)?));
        }
        Ok(out)
    }

    /// Read case `i`'s result block and windows.
    fn outcome(&self, i: usize, c: &Case) -> Result<Outcome, AccelError> {
        let rec = guest::RECORD_BASE + i as u64 * guest::RECORD_SIZE;
        let res = self.read(
            rec + guest::REC_RESULT,
            (guest::RECORD_SIZE - guest::REC_RESULT) as usize,
        )?;
        let q = |off: u64| -> u64 {
            let o = (off - guest::REC_RESULT) as usize;
            res.get(o..o + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .unwrap_or(0)
        };
        let mut gpr = [0u64; 16];
        for (k, r) in guest::RESULT_ORDER.iter().enumerate() {
            gpr[*r] = q(guest::REC_RESULT + 8 * k as u64);
        }
        gpr[4] = q(guest::RES_RSP);
        let rflags = q(guest::REC_RESULT + 15 * 8);
        let exc = [
            q(guest::RES_EXC_VEC),
            q(guest::RES_EXC_EC),
            q(guest::RES_EXC_CR2),
            q(guest::RES_EXC_RIP),
        ];
        let mut segs = [0u16; 5];
        let seg_off = (guest::RES_SEGS - guest::REC_RESULT) as usize;
        for (k, s) in segs.iter_mut().enumerate() {
            let o = seg_off + 2 * k;
            *s = res
                .get(o..o + 2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_le_bytes)
                .unwrap_or(0);
        }
        let done = q(guest::RES_DONE) == guest::DONE_MAGIC;
        let mut windows = Vec::with_capacity(c.windows.len());
        for w in &c.windows {
            windows.push(self.read(w.addr, w.init.len())?);
        }
        let at = (guest::REC_SIMD - guest::REC_RESULT) as usize;
        let mut o = Outcome::from_result(gpr, rflags, exc, segs, done, windows);
        *o.simd = res
            .get(at..at + SIMD_BLOCK)
            .and_then(Simd::from_bytes)
            .unwrap_or_default();
        Ok(o)
    }
}
