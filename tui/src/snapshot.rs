//! The view model: everything the panes show, as plain data.
//!
//! The `ringside tui` command fills a [`Snapshot`] from the machine (CPU
//! state, guest memory, walks, the event log) and the renderers in
//! [`crate::panes`] draw it. Nothing here touches a machine, so tests
//! render panes from states they build by hand.

use crate::disasm::{CodeLine, Syntax};
use crate::traps::TrapLog;
use cpu::CpuState;
use mmu::{PagingRegs, PhysTarget, RangeScan, WalkTrace};

/// Where the machine is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RunStatus {
    #[default]
    Paused,
    Running,
    /// Running, but single-stepping to check breakpoints.
    RunningChecked,
    /// The run ended (guest exit, triple fault…): the text says how.
    Ended(String),
}

/// The panes that take keyboard focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Pane {
    Cpu,
    #[default]
    Code,
    Traps,
    /// The bottom-left inspector: page walk or memory.
    Inspector,
    Serial,
}

impl Pane {
    pub const ORDER: [Pane; 5] = [
        Pane::Code,
        Pane::Traps,
        Pane::Inspector,
        Pane::Serial,
        Pane::Cpu,
    ];
    /// The next pane in Tab order.
    pub fn next(self) -> Pane {
        let i = Self::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        Self::ORDER[(i + 1) % Self::ORDER.len()]
    }
}

/// Which view the bottom-left pane shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inspector {
    #[default]
    Walk,
    Memory,
}

/// The top line.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// The accelerator, e.g. "tcg (ringside interpreter)".
    pub accel: String,
    pub status: RunStatus,
    /// Instructions retired (backends that count them).
    pub instructions: Option<u64>,
    /// Breakpoints, as the user typed them.
    pub breakpoints: Vec<String>,
    /// A repeat count being typed ("10" before `s`).
    pub count: Option<u64>,
    /// The last message: why the machine stopped, an error in what was typed.
    pub message: String,
}

/// The CPU pane's data.
#[derive(Debug, Clone, Default)]
pub struct CpuView {
    pub state: CpuState,
    /// The state before the last step or run, to highlight what changed.
    pub prev: Option<CpuState>,
    /// In a virtualized mode, the CPL the guest really runs at, when it
    /// differs from the CPL it believes it has (`state`'s): a
    /// ring-compressed guest kernel believes CPL 0 and really runs at 1.
    pub real_cpl: Option<u8>,
    /// The vCPU is in the HLT state.
    pub halted: bool,
}

/// The code pane's data.
#[derive(Debug, Clone, Default)]
pub struct CodeView {
    pub lines: Vec<CodeLine>,
    /// RIP, to mark its line.
    pub rip: u64,
    /// The line under the cursor (its address), if any.
    pub cursor: Option<u64>,
    /// Addresses with a breakpoint.
    pub breakpoints: Vec<u64>,
    pub syntax: Syntax,
    /// The code size the lines are decoded in (16, 32, 64): the current one.
    pub bitness: u32,
    /// What the view is centred on when it isn't RIP ("trap #12", "jump").
    pub pinned: Option<String>,
}

/// The page-walk pane's data.
#[derive(Debug, Clone, Default)]
pub struct WalkView {
    /// The linear address walked.
    pub va: u64,
    /// Where the address came from: "cursor", "typed".
    pub origin: String,
    pub regs: PagingRegs,
    /// The walk, level by level (`None` before the first walk).
    pub trace: Option<WalkTrace>,
    /// GPA → machine address through the second stage, for a walk that
    /// produced a physical address.
    pub target: Option<PhysTarget>,
    /// How GPA becomes MA here: "the layout (PA = MA)", "the monitor's
    /// p2m", "the nested tables: a 2-D walk of N references".
    pub stage2: String,
    /// Under nested paging: the 2-D walk, one line per guest level with
    /// the nested walk of its entry, and the reference count.
    pub nested: Vec<String>,
    /// The page-table overview (`info mem`).
    pub ranges: Option<RangeScan>,
}

/// The address space a memory view reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Space {
    /// Linear (virtual) addresses, through the guest's page tables.
    #[default]
    Virtual,
    /// Guest-physical addresses.
    Physical,
}

/// The memory pane's data.
#[derive(Debug, Clone, Default)]
pub struct MemoryView {
    pub addr: u64,
    pub space: Space,
    /// `bytes[i]` is at `addr + i`; `None` = not readable.
    pub bytes: Vec<Option<u8>>,
    /// The register the view follows ("rsp"), if any.
    pub follow: Option<String>,
}

/// The serial pane's data.
#[derive(Debug, Clone, Default)]
pub struct SerialView {
    /// The guest's console output (the tail of it).
    pub text: String,
    /// Keyboard input goes to the guest (not with `--no-stdin`).
    pub input: bool,
}

/// A line being typed at the bottom of the screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    pub label: String,
    pub text: String,
}

/// The whole screen.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub header: Header,
    pub cpu: CpuView,
    pub code: CodeView,
    pub traps: TrapLog,
    /// The selected row: an index into `traps.visible(show_io)` (oldest
    /// first); `None` follows the newest.
    pub trap_sel: Option<usize>,
    /// Show port/MMIO rows in the trap log.
    pub show_io: bool,
    pub walk: WalkView,
    pub memory: MemoryView,
    pub serial: SerialView,
    pub focus: Pane,
    pub inspector: Inspector,
    pub prompt: Option<Prompt>,
    pub help: bool,
    /// What this backend can't show, one note per limited pane
    /// (e.g. "code: no single-step on kvm").
    pub limits: Vec<String>,
}
