//! The code pane's disassembly: iced-x86 decoding of guest bytes around an
//! address, and the virtualization class of each instruction.
//!
//! x86 code can't be decoded backwards: the bytes before an address may be
//! the tail of a longer instruction. [`disassemble`] tries every start in a
//! window before the target and keeps the earliest that decodes in step
//! onto it exactly; x86 decoding re-synchronizes within a few instructions,
//! so the lines just above the target are right even when the window's
//! first ones are not (GDB and radare2 do the same).

use iced_x86::{
    Decoder, DecoderOptions, Formatter, GasFormatter, Instruction, IntelFormatter, Mnemonic,
    OpKind, Register,
};

/// Assembly syntax of the code pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Syntax {
    #[default]
    Intel,
    /// AT&T (GNU as).
    Att,
}

impl Syntax {
    pub fn toggled(self) -> Self {
        match self {
            Syntax::Intel => Syntax::Att,
            Syntax::Att => Syntax::Intel,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Syntax::Intel => "Intel",
            Syntax::Att => "AT&T",
        }
    }
}

/// What an instruction means to a virtual-machine monitor: whether it traps
/// outside ring 0, depends on IOPL, switches rings, or reads or changes
/// privileged state without trapping (the Popek–Goldberg "sensitive but
/// unprivileged" instructions that made x86 hard to virtualize).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InsnClass {
    /// Nothing special.
    Plain,
    /// Privileged: #GP(0) unless CPL = 0 (HLT, MOV CRn, LGDT, WRMSR, INVLPG…).
    Privileged,
    /// IOPL-sensitive: IN/OUT/INS/OUTS (also the TSS I/O bitmap), CLI/STI.
    Io,
    /// Changes rings through a gate or MSR-defined entry: INT n, INT3,
    /// SYSCALL, SYSENTER, IRET.
    Gate,
    /// Sensitive but unprivileged: runs at CPL 3 without trapping yet reads
    /// or depends on privileged state (SGDT, SIDT, SMSW, PUSHF/POPF, LAR,
    /// MOV from a segment register, far transfers, CPUID, RDTSC…).
    Sensitive,
}

impl InsnClass {
    pub fn label(self) -> &'static str {
        match self {
            InsnClass::Plain => "",
            InsnClass::Privileged => "priv",
            InsnClass::Io => "iopl",
            InsnClass::Gate => "gate",
            InsnClass::Sensitive => "sens",
        }
    }
}

/// Classify one decoded instruction.
pub fn classify(insn: &Instruction) -> InsnClass {
    use Mnemonic as M;
    let m = insn.mnemonic();
    let regs = || {
        (0..insn.op_count())
            .filter(|&i| insn.op_kind(i) == OpKind::Register)
            .map(move |i| insn.op_register(i))
    };
    let has_reg = |f: fn(Register) -> bool| regs().any(f);
    if m == M::Mov && has_reg(|r| r.is_cr() || r.is_dr()) {
        return InsnClass::Privileged;
    }
    match m {
        M::Hlt
        | M::Lgdt
        | M::Lidt
        | M::Lldt
        | M::Ltr
        | M::Lmsw
        | M::Clts
        | M::Invd
        | M::Wbinvd
        | M::Wbnoinvd
        | M::Invlpg
        | M::Invpcid
        | M::Rdmsr
        | M::Wrmsr
        | M::Swapgs
        | M::Sysret
        | M::Sysexit
        | M::Xsetbv
        | M::Monitor
        | M::Mwait => InsnClass::Privileged,
        M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => {
            InsnClass::Io
        }
        M::Cli | M::Sti => InsnClass::Io,
        M::Int | M::Int1 | M::Int3 | M::Into | M::Syscall | M::Sysenter => InsnClass::Gate,
        M::Iret | M::Iretd | M::Iretq => InsnClass::Gate,
        M::Sgdt
        | M::Sidt
        | M::Sldt
        | M::Str
        | M::Smsw
        | M::Pushf
        | M::Pushfd
        | M::Pushfq
        | M::Popf
        | M::Popfd
        | M::Popfq
        | M::Lar
        | M::Lsl
        | M::Verr
        | M::Verw
        | M::Retf
        | M::Cpuid
        | M::Rdtsc
        | M::Rdtscp
        | M::Rdpmc => InsnClass::Sensitive,
        M::Call if insn.is_call_far() || insn.is_call_far_indirect() => InsnClass::Sensitive,
        M::Jmp if insn.is_jmp_far() || insn.is_jmp_far_indirect() => InsnClass::Sensitive,
        M::Mov | M::Push | M::Pop if has_reg(|r| r.is_segment_register()) => InsnClass::Sensitive,
        _ => InsnClass::Plain,
    }
}

/// One line of the code pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeLine {
    /// The instruction's address (an offset in CS, as RIP counts).
    pub addr: u64,
    pub bytes: Vec<u8>,
    /// The formatted instruction, or why there is none ("not mapped").
    pub text: String,
    pub class: InsnClass,
    /// The instruction at `addr` is a CALL, or a string instruction with a
    /// REP prefix, or INT n: "step over" runs to [`CodeLine::next`].
    pub steps_over: bool,
    /// Address of the next instruction.
    pub next: u64,
    /// True for a line that is not an instruction (unreadable bytes).
    pub unreadable: bool,
}

/// Guest bytes in a window: `bytes[i]` is the byte at `start + i`, `None`
/// where the address is not readable (not mapped, MMIO).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeBytes {
    pub start: u64,
    pub bytes: Vec<Option<u8>>,
}

impl CodeBytes {
    /// The readable bytes from `addr` on, at most 15 (one instruction).
    fn run_at(&self, addr: u64) -> Vec<u8> {
        let Some(off) = addr.checked_sub(self.start) else {
            return Vec::new();
        };
        let Ok(off) = usize::try_from(off) else {
            return Vec::new();
        };
        self.bytes
            .iter()
            .skip(off)
            .take(15)
            .map_while(|b| *b)
            .collect()
    }
}

fn format(insn: &Instruction, syntax: Syntax) -> String {
    let mut out = String::new();
    match syntax {
        Syntax::Intel => {
            let mut f = IntelFormatter::new();
            f.options_mut().set_first_operand_char_index(8);
            f.format(insn, &mut out);
        }
        Syntax::Att => {
            let mut f = GasFormatter::new();
            f.options_mut().set_first_operand_char_index(8);
            f.format(insn, &mut out);
        }
    }
    out
}

/// Decode one instruction at `addr`, if its bytes are readable and valid.
fn decode_at(mem: &CodeBytes, addr: u64, bitness: u32) -> Option<Instruction> {
    let run = mem.run_at(addr);
    if run.is_empty() {
        return None;
    }
    let mut d = Decoder::with_ip(bitness, &run, addr, DecoderOptions::NONE);
    let insn = d.decode();
    (!insn.is_invalid()).then_some(insn)
}

/// Mask of an instruction pointer for the code size (IP wraps at 64 KiB in
/// 16-bit code, EIP at 4 GiB in 32-bit code).
fn ip_mask(bitness: u32) -> u64 {
    match bitness {
        16 => 0xffff,
        32 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

fn line_for(mem: &CodeBytes, addr: u64, bitness: u32, syntax: Syntax) -> CodeLine {
    match decode_at(mem, addr, bitness) {
        Some(insn) => {
            let len = insn.len();
            let run = mem.run_at(addr);
            let steps_over = insn.is_call_near()
                || insn.is_call_near_indirect()
                || insn.is_call_far()
                || insn.is_call_far_indirect()
                || insn.has_rep_prefix()
                || insn.has_repne_prefix()
                || matches!(insn.mnemonic(), Mnemonic::Int | Mnemonic::Int3);
            CodeLine {
                addr,
                bytes: run.get(..len).map(<[u8]>::to_vec).unwrap_or_default(),
                text: format(&insn, syntax),
                class: classify(&insn),
                steps_over,
                next: insn.next_ip() & ip_mask(bitness),
                unreadable: false,
            }
        }
        None => {
            let readable = !mem.run_at(addr).is_empty();
            CodeLine {
                addr,
                bytes: mem.run_at(addr).into_iter().take(1).collect(),
                text: if readable {
                    "(bad)".to_string()
                } else {
                    "?? not readable (not mapped, or not RAM)".to_string()
                },
                class: InsnClass::Plain,
                steps_over: false,
                next: addr.wrapping_add(1) & ip_mask(bitness),
                unreadable: !readable,
            }
        }
    }
}

/// The lines around `target`: up to `before` instructions that lead onto it
/// (see the module comment), the instruction at `target`, and `after` more.
/// `mem` should start a few dozen bytes before `target`.
pub fn disassemble(
    mem: &CodeBytes,
    target: u64,
    bitness: u32,
    syntax: Syntax,
    before: usize,
    after: usize,
) -> Vec<CodeLine> {
    let mut lines = Vec::new();
    if before > 0 && target > mem.start {
        let window = (target - mem.start).min(64);
        for start in (target - window)..target {
            let mut addrs = Vec::new();
            let mut at = start;
            while at < target {
                match decode_at(mem, at, bitness) {
                    Some(insn) => {
                        addrs.push(at);
                        at = insn.next_ip();
                    }
                    None => break,
                }
            }
            if at == target && !addrs.is_empty() {
                let skip = addrs.len().saturating_sub(before);
                lines.extend(
                    addrs
                        .iter()
                        .skip(skip)
                        .map(|&a| line_for(mem, a, bitness, syntax)),
                );
                break;
            }
        }
    }
    let mut at = target;
    for _ in 0..=after {
        let line = line_for(mem, at, bitness, syntax);
        let stop = line.unreadable;
        at = line.next;
        lines.push(line);
        if stop {
            break;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(start: u64, b: &[u8]) -> CodeBytes {
        CodeBytes {
            start,
            bytes: b.iter().map(|&x| Some(x)).collect(),
        }
    }

    fn one(b: &[u8], bitness: u32) -> Instruction {
        let mut d = Decoder::with_ip(bitness, b, 0, DecoderOptions::NONE);
        d.decode()
    }

    #[test]
    fn classes() {
        assert_eq!(classify(&one(&[0xf4], 64)), InsnClass::Privileged); // hlt
        assert_eq!(
            classify(&one(&[0x0f, 0x20, 0xd8], 64)),
            InsnClass::Privileged
        ); // mov rax, cr3
        assert_eq!(
            classify(&one(&[0x0f, 0x22, 0xd8], 64)),
            InsnClass::Privileged
        ); // mov cr3, rax
        assert_eq!(classify(&one(&[0x0f, 0x30], 64)), InsnClass::Privileged); // wrmsr
        assert_eq!(classify(&one(&[0xee], 64)), InsnClass::Io); // out dx, al
        assert_eq!(classify(&one(&[0xfa], 64)), InsnClass::Io); // cli
        assert_eq!(classify(&one(&[0xcd, 0x80], 64)), InsnClass::Gate); // int 0x80
        assert_eq!(classify(&one(&[0x0f, 0x05], 64)), InsnClass::Gate); // syscall
        assert_eq!(classify(&one(&[0x48, 0xcf], 64)), InsnClass::Gate); // iretq
        assert_eq!(
            classify(&one(&[0x0f, 0x01, 0x00], 64)),
            InsnClass::Sensitive
        ); // sgdt [rax]
        assert_eq!(classify(&one(&[0x9c], 64)), InsnClass::Sensitive); // pushfq
        assert_eq!(classify(&one(&[0x8c, 0xc8], 64)), InsnClass::Sensitive); // mov eax, cs
        assert_eq!(classify(&one(&[0x0f, 0xa2], 64)), InsnClass::Sensitive); // cpuid
        assert_eq!(classify(&one(&[0x48, 0x01, 0xd8], 64)), InsnClass::Plain); // add rax, rbx
        assert_eq!(classify(&one(&[0x48, 0x89, 0xd8], 64)), InsnClass::Plain); // mov rax, rbx
    }

    #[test]
    fn syntaxes() {
        // mov rax, cr3
        let mem = bytes(0x1000, &[0x0f, 0x20, 0xd8]);
        let intel = disassemble(&mem, 0x1000, 64, Syntax::Intel, 0, 0);
        assert_eq!(
            intel[0].text.split_whitespace().collect::<Vec<_>>(),
            ["mov", "rax,cr3"]
        );
        let att = disassemble(&mem, 0x1000, 64, Syntax::Att, 0, 0);
        assert!(att[0].text.contains("%cr3,%rax"), "{}", att[0].text);
    }

    #[test]
    fn context_before_target_is_in_step() {
        // nop; mov eax, 0x11223344; push rbx; hlt — target = hlt.
        let code = [0x90, 0xb8, 0x44, 0x33, 0x22, 0x11, 0x53, 0xf4];
        let mem = bytes(0x2000, &code);
        let lines = disassemble(&mem, 0x2007, 64, Syntax::Intel, 8, 0);
        let addrs: Vec<u64> = lines.iter().map(|l| l.addr).collect();
        assert_eq!(addrs, [0x2000, 0x2001, 0x2006, 0x2007]);
        assert!(lines[3].text.starts_with("hlt"));
        assert_eq!(lines[3].class, InsnClass::Privileged);
        // Only two lines before wanted.
        let lines = disassemble(&mem, 0x2007, 64, Syntax::Intel, 2, 0);
        assert_eq!(lines.first().map(|l| l.addr), Some(0x2001));
    }

    #[test]
    fn unreadable_bytes_end_the_listing() {
        let mut mem = bytes(0x3000, &[0x90, 0x90]);
        mem.bytes.push(None);
        let lines = disassemble(&mem, 0x3000, 64, Syntax::Intel, 0, 10);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].unreadable);
        // Before the window, nothing is readable either.
        let lines = disassemble(&mem, 0x10, 64, Syntax::Intel, 4, 4);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].unreadable);
    }

    #[test]
    fn step_over_candidates() {
        // call rel32; rep movsb; int 0x80; add
        let code = [0xe8, 0, 0, 0, 0, 0xf3, 0xa4, 0xcd, 0x80, 0x48, 0x01, 0xd8];
        let mem = bytes(0, &code);
        let lines = disassemble(&mem, 0, 64, Syntax::Intel, 0, 3);
        let over: Vec<bool> = lines.iter().map(|l| l.steps_over).collect();
        assert_eq!(over, [true, true, true, false]);
        assert_eq!(lines[0].next, 5);
    }

    #[test]
    fn sixteen_bit_ip_wraps() {
        let mem = bytes(0xffff, &[0x90]);
        let lines = disassemble(&mem, 0xffff, 16, Syntax::Intel, 0, 0);
        assert_eq!(lines[0].next, 0);
    }
}
