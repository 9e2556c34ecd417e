//! One test case and what became of it on a backend.

use super::guest::NO_EXCEPTION;
use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};
use std::fmt::Write as _;

/// GPR names in `CpuState::gpr` order.
pub const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// Guest memory a case sets up before it runs and whose final bytes are
/// compared afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub addr: u64,
    pub init: Vec<u8>,
}

/// The SSE and x87 state of a case: XMM0-15, MXCSR and the x87 FPU,
/// loaded before the case runs (`Case::simd`) and stored after it
/// (`Outcome::simd`). (The x87 state lives here, not in its own `Case`
/// field, so that the generators that do not care need no change.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simd {
    pub xmm: [u128; 16],
    pub mxcsr: u32,
    /// The x87 state as an FNSAVE image (see [`X87_IMAGE`]).
    pub x87: [u8; X87_IMAGE],
}

/// Bytes of an FNSAVE image in the 32-bit protected-mode format (what
/// FNSAVE/FRSTOR use in 64-bit mode; SDM Vol. 1, Figure 8-9): FCW (+0),
/// FSW (+4), FTW with the full 2-bit tags (+8), FIP (+12), FCS and FOP
/// (+16), FDP (+20), FDS (+24), each in a dword, then ST(0)-ST(7), 10
/// bytes each, from +28.
pub const X87_IMAGE: usize = 108;

/// Offsets into the x87 image.
pub mod x87img {
    pub const FCW: usize = 0;
    pub const FSW: usize = 4;
    pub const FTW: usize = 8;
    /// FIP, FCS/FOP, FDP, FDS: the pointer registers (16 bytes).
    pub const POINTERS: usize = 12;
    pub const ST: usize = 28;
}

/// The FNSAVE image of the FPU after FNINIT: FCW 0x37f, FSW 0, all
/// registers empty (FTW 0xffff), zero pointers and registers.
pub const X87_INIT: [u8; X87_IMAGE] = {
    let mut b = [0u8; X87_IMAGE];
    b[x87img::FCW] = 0x7f;
    b[x87img::FCW + 1] = 0x03;
    b[x87img::FTW] = 0xff;
    b[x87img::FTW + 1] = 0xff;
    b
};

/// A 16-bit field of an x87 image.
pub fn x87_word(img: &[u8; X87_IMAGE], off: usize) -> u16 {
    img.get(off..off + 2)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

/// ST(i) of an x87 image as (sign+exponent, significand).
pub fn x87_st(img: &[u8; X87_IMAGE], i: usize) -> (u16, u64) {
    let o = x87img::ST + 10 * (i & 7);
    let sig = img
        .get(o..o + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    (x87_word(img, o + 8), sig)
}

/// The 2-bit tag of ST(i) in an x87 image (tags are by physical
/// register: ST(i) is physical register (TOP + i) mod 8).
pub fn x87_tag(img: &[u8; X87_IMAGE], i: usize) -> u16 {
    let top = (x87_word(img, x87img::FSW) >> 11) & 7;
    let phys = (top + i as u16) & 7;
    (x87_word(img, x87img::FTW) >> (2 * phys)) & 3
}

impl Default for Simd {
    /// All XMM registers zero, MXCSR at its reset value, the FPU as
    /// FNINIT leaves it.
    fn default() -> Self {
        Simd {
            xmm: [0; 16],
            mxcsr: cpu::state::MXCSR_RESET,
            x87: X87_INIT,
        }
    }
}

/// Offset of the x87 image in a case's SIMD block.
pub const SIMD_X87: usize = 16 * 16 + 16;

/// Bytes of a case's SIMD block: XMM0-15 (16 bytes each, little-endian),
/// then MXCSR (dword), padded to 16 bytes, then the x87 image
/// ([`X87_IMAGE`] bytes at [`SIMD_X87`]), padded to a multiple of 16.
pub const SIMD_BLOCK: usize = (SIMD_X87 + X87_IMAGE + 15) & !15;

impl Simd {
    /// The block's bytes (see [`SIMD_BLOCK`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self.xmm.iter().flat_map(|x| x.to_le_bytes()).collect();
        v.extend_from_slice(&self.mxcsr.to_le_bytes());
        v.resize(SIMD_X87, 0);
        v.extend_from_slice(&self.x87);
        v.resize(SIMD_BLOCK, 0);
        v
    }

    /// Parse a block; `None` if it is too short.
    pub fn from_bytes(b: &[u8]) -> Option<Simd> {
        let mut s = Simd::default();
        for (i, x) in s.xmm.iter_mut().enumerate() {
            *x = u128::from_le_bytes(b.get(16 * i..16 * i + 16)?.try_into().ok()?);
        }
        s.mxcsr = u32::from_le_bytes(b.get(256..260)?.try_into().ok()?);
        s.x87 = b.get(SIMD_X87..SIMD_X87 + X87_IMAGE)?.try_into().ok()?;
        Some(s)
    }
}

/// The memory operand of the instruction under test, as the generator
/// aimed it: `addr` is the linear address of the first byte accessed
/// (for faulting cases, possibly non-canonical or unmapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemTarget {
    pub addr: u64,
    pub size: u32,
}

/// The mode the code under test runs in (always at CPL 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseMode {
    /// 64-bit mode (CS.L = 1).
    #[default]
    Long64,
    /// Compatibility mode with a 32-bit code segment (CS.L = 0, CS.D = 1):
    /// where the Codes that do not exist in 64-bit mode run.
    Compat32,
}

impl CaseMode {
    /// The code size (iced's bitness) the case's code is decoded with.
    pub fn bits(self) -> u32 {
        match self {
            CaseMode::Long64 => 64,
            CaseMode::Compat32 => 32,
        }
    }

    /// For reports.
    pub fn name(self) -> &'static str {
        match self {
            CaseMode::Long64 => "64-bit mode",
            CaseMode::Compat32 => "compatibility mode (CS 0x23, 32-bit)",
        }
    }
}

/// One case: an initial state and the code to run from it.
#[derive(Debug, Clone)]
pub struct Case {
    /// Position in the generated stream: with the seed, reproduces it.
    /// For a pinned case (`gen::regressions`), its position in that list.
    pub index: u64,
    /// A hand-specified case rather than a generated one.
    pub pinned: bool,
    /// Guest address of the code.
    pub code_addr: u64,
    /// The instruction(s) under test, encoded at `code_addr`.
    pub code: Vec<u8>,
    /// `code` decoded (what both CPUs execute).
    pub insns: Vec<Instruction>,
    /// The mode the case's code runs in.
    pub mode: CaseMode,
    /// Initial GPRs (`CpuState::gpr` order).
    pub gpr: [u64; 16],
    /// Initial RFLAGS.
    pub rflags: u64,
    /// Initial XMM registers and MXCSR.
    pub simd: Simd,
    /// Data set up for the case (compared after the run).
    pub windows: Vec<Window>,
    pub mem: Option<MemTarget>,
    /// What the generator aimed at, for the report ("reg", "mem
    /// misaligned", "#PF not-present" ...).
    pub note: String,
}

/// An exception a case raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub vector: u8,
    pub error_code: u64,
    pub cr2: u64,
    /// RIP of the faulting instruction.
    pub rip: u64,
}

/// What became of a case on one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The case loop stored this case's results.
    pub done: bool,
    pub gpr: [u64; 16],
    pub rflags: u64,
    pub exception: Option<Exception>,
    /// DS, ES, FS, GS, SS selectors.
    pub segs: [u16; 5],
    /// Final bytes of each of the case's windows.
    pub windows: Vec<Vec<u8>>,
    /// Final XMM registers and MXCSR (set by the batch runner after
    /// [`Outcome::from_result`]); boxed, it is most of the outcome.
    pub simd: Box<Simd>,
}

impl Outcome {
    /// Decode a result block (see guest.rs for the layout).
    pub fn from_result(
        gpr: [u64; 16],
        rflags: u64,
        exc: [u64; 4],
        segs: [u16; 5],
        done: bool,
        windows: Vec<Vec<u8>>,
    ) -> Self {
        let exception = (exc[0] != NO_EXCEPTION).then(|| Exception {
            vector: exc[0] as u8,
            error_code: exc[1],
            cr2: exc[2],
            rip: exc[3],
        });
        Outcome {
            done,
            gpr,
            rflags,
            exception,
            segs,
            windows,
            simd: Box::default(),
        }
    }
}

/// Intel-syntax disassembly of `insn`.
pub fn disasm(insn: &Instruction) -> String {
    let mut s = String::new();
    IntelFormatter::new().format(insn, &mut s);
    s
}

/// Decode `bytes` (64-bit code at `ip`) into instructions.
pub fn decode_all(bytes: &[u8], ip: u64) -> Vec<Instruction> {
    decode_bits(bytes, ip, 64)
}

/// Decode `bytes` (code of `bits` bitness at `ip`) into instructions.
pub fn decode_bits(bytes: &[u8], ip: u64, bits: u32) -> Vec<Instruction> {
    let mut d = Decoder::with_ip(bits, bytes, ip, DecoderOptions::NONE);
    let mut v = Vec::new();
    while d.can_decode() {
        v.push(d.decode());
    }
    v
}

pub fn hex(bytes: &[u8]) -> String {
    let v: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    v.join(" ")
}

/// RFLAGS status bits as letters (upper case = set), e.g. "o d s Z a P c".
pub fn flag_letters(f: u64) -> String {
    const BITS: [(u64, char); 7] = [
        (1 << 11, 'o'),
        (1 << 10, 'd'),
        (1 << 7, 's'),
        (1 << 6, 'z'),
        (1 << 4, 'a'),
        (1 << 2, 'p'),
        (1 << 0, 'c'),
    ];
    let v: Vec<String> = BITS
        .iter()
        .map(|(m, c)| {
            if f & m != 0 {
                c.to_ascii_uppercase().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    v.join("")
}

impl Case {
    /// The instruction(s) as text, `; `-separated.
    pub fn text(&self) -> String {
        let v: Vec<String> = self.insns.iter().map(disasm).collect();
        v.join("; ")
    }

    /// A self-contained description of the case: enough to rebuild it by
    /// hand (state, bytes, memory), plus the seed and index to regenerate.
    pub fn describe(&self, seed: u64) -> String {
        let mut s = String::new();
        let codes: Vec<String> = self
            .insns
            .iter()
            .map(|i| format!("{:?}", i.code()))
            .collect();
        let which = if self.pinned {
            format!("pinned case {}", self.index)
        } else {
            format!("case #{} (seed {seed:#x})", self.index)
        };
        let _ = writeln!(
            s,
            "{which}: `{}` [{}] ({})",
            self.text(),
            codes.join(", "),
            self.note
        );
        let _ = writeln!(
            s,
            "  {}, CPL 3; code at {:#x}: {}",
            self.mode.name(),
            self.code_addr,
            hex(&self.code)
        );
        let _ = writeln!(
            s,
            "  rflags {:#x} ({})",
            self.rflags,
            flag_letters(self.rflags)
        );
        for row in 0..4 {
            let mut line = String::from(" ");
            for col in 0..4 {
                let i = row * 4 + col;
                let _ = write!(line, " {:>3}={:#018x}", GPR_NAMES[i], self.gpr[i]);
            }
            let _ = writeln!(s, "{line}");
        }
        if self.simd.x87 != X87_INIT {
            describe_x87(&mut s, "", &self.simd.x87);
        }
        if self.simd.xmm != [0; 16] || self.simd.mxcsr != cpu::state::MXCSR_RESET {
            let _ = writeln!(s, "  mxcsr {:#x}", self.simd.mxcsr);
            for (i, x) in self.simd.xmm.iter().enumerate() {
                if *x != 0 {
                    let _ = writeln!(s, "  xmm{i:<2} {x:#034x}");
                }
            }
        }
        if let Some(m) = self.mem {
            let _ = writeln!(s, "  memory operand: {} bytes at {:#x}", m.size, m.addr);
        }
        for w in &self.windows {
            let _ = writeln!(s, "  memory {:#x}: {}", w.addr, hex(&w.init));
        }
        s
    }
}

/// The x87 state of an image: control, status and tag words, then the
/// non-empty registers (ST(i), tag, value).
fn describe_x87(s: &mut String, who: &str, img: &[u8; X87_IMAGE]) {
    let _ = writeln!(
        s,
        "  {who}x87: fcw {:#06x} fsw {:#06x} (top {}) ftw {:#06x}",
        x87_word(img, x87img::FCW),
        x87_word(img, x87img::FSW),
        (x87_word(img, x87img::FSW) >> 11) & 7,
        x87_word(img, x87img::FTW)
    );
    for i in 0..8 {
        if x87_tag(img, i) != 3 {
            let (se, sig) = x87_st(img, i);
            let _ = writeln!(
                s,
                "    {who}st{i}: {se:04x}_{sig:016x} (tag {})",
                x87_tag(img, i)
            );
        }
    }
}

/// Two outcomes side by side, marking the fields that differ.
pub fn describe_outcomes(case: &Case, names: [&str; 2], o: [&Outcome; 2]) -> String {
    let mut s = String::new();
    let mark = |same: bool| if same { "  " } else { "≠ " };
    if o[0].done != o[1].done {
        let _ = writeln!(
            s,
            "  ≠ reached the end of the case: {} {}, {} {}",
            names[0], o[0].done, names[1], o[1].done
        );
    }
    let exc = |e: &Option<Exception>| match e {
        None => "none".to_string(),
        Some(e) => format!(
            "{}({:#x}) at rip {:#x}{}",
            cpu::fault::vector_name(e.vector),
            e.error_code,
            e.rip,
            if e.vector == 14 {
                format!(" cr2 {:#x}", e.cr2)
            } else {
                String::new()
            }
        ),
    };
    let _ = writeln!(
        s,
        "  {}exception: {} {} | {} {}",
        mark(o[0].exception == o[1].exception),
        names[0],
        exc(&o[0].exception),
        names[1],
        exc(&o[1].exception)
    );
    let _ = writeln!(
        s,
        "  {}rflags: {} {:#x} ({}) | {} {:#x} ({})",
        mark(o[0].rflags == o[1].rflags),
        names[0],
        o[0].rflags,
        flag_letters(o[0].rflags),
        names[1],
        o[1].rflags,
        flag_letters(o[1].rflags)
    );
    for (i, name) in GPR_NAMES.iter().enumerate() {
        let same = o[0].gpr[i] == o[1].gpr[i];
        let changed = o[0].gpr[i] != case.gpr[i] || o[1].gpr[i] != case.gpr[i];
        if !same || changed {
            let _ = writeln!(
                s,
                "  {}{:>3}: {} {:#018x} | {} {:#018x}   (was {:#018x})",
                mark(same),
                name,
                names[0],
                o[0].gpr[i],
                names[1],
                o[1].gpr[i],
                case.gpr[i]
            );
        }
    }
    for i in 0..16 {
        let (a, b) = (o[0].simd.xmm[i], o[1].simd.xmm[i]);
        let was = case.simd.xmm[i];
        if a != b || a != was {
            let _ = writeln!(
                s,
                "  {}xmm{i:<2}: {} {a:#034x} | {} {b:#034x}   (was {was:#034x})",
                mark(a == b),
                names[0],
                names[1],
            );
        }
    }
    if o[0].simd.mxcsr != o[1].simd.mxcsr || o[0].simd.mxcsr != case.simd.mxcsr {
        let _ = writeln!(
            s,
            "  {}mxcsr: {} {:#x} | {} {:#x}   (was {:#x})",
            mark(o[0].simd.mxcsr == o[1].simd.mxcsr),
            names[0],
            o[0].simd.mxcsr,
            names[1],
            o[1].simd.mxcsr,
            case.simd.mxcsr
        );
    }
    if o[0].simd.x87 != o[1].simd.x87 || o[0].simd.x87 != case.simd.x87 {
        describe_x87(&mut s, &format!("{}: ", names[0]), &o[0].simd.x87);
        describe_x87(&mut s, &format!("{}: ", names[1]), &o[1].simd.x87);
    }
    if o[0].segs != o[1].segs {
        let _ = writeln!(
            s,
            "  ≠ ds/es/fs/gs/ss: {} {:x?} | {} {:x?}",
            names[0], o[0].segs, names[1], o[1].segs
        );
    }
    for (k, w) in case.windows.iter().enumerate() {
        let a = o[0].windows.get(k);
        let b = o[1].windows.get(k);
        if a != b || a.is_some_and(|a| *a != w.init) {
            let _ = writeln!(
                s,
                "  {}memory {:#x}:\n      {:<5} {}\n      {:<5} {}",
                mark(a == b),
                w.addr,
                names[0],
                a.map(|v| hex(v)).unwrap_or_default(),
                names[1],
                b.map(|v| hex(v)).unwrap_or_default()
            );
        }
    }
    s
}
