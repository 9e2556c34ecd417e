//! The key reference: one table used by the `?` help overlay, the footer
//! and the README (a test checks the README lists every key).

/// (keys, what they do), in the order the help shows them.
pub const KEYS: &[(&str, &str)] = &[
    ("s", "step one instruction (tcg)"),
    ("N s", "step N instructions: type a count, then s (e.g. 10s)"),
    ("n", "step over: run to the next line past a CALL, REP string op or INT"),
    ("r", "run (until a breakpoint, the guest's end, or p)"),
    ("p", "pause"),
    ("space", "run / pause"),
    ("b", "add a breakpoint, or remove it if set: 0xADDR, #gp, #pf, int 0x80, irq, cr3, io 0xf4, mode, ring; empty = at the code cursor"),
    ("B", "remove every breakpoint"),
    ("g", "go to an address in the code pane (empty = back to RIP)"),
    (".", "code pane back to RIP"),
    ("t", "switch Intel / AT&T syntax"),
    ("w", "page walk of the address under the code cursor"),
    ("W", "page walk of a typed address"),
    ("m", "memory pane (follows RSP at first)"),
    ("M", "memory at a typed address: 0x.. virtual, p 0x.. physical, or a register to follow (rsp, rsi…)"),
    ("i", "show / hide port and MMIO rows in the trap log"),
    ("Tab, Shift-Tab", "next / previous pane (the focused one has ◆ in its title)"),
    ("Up/Down PgUp/PgDn", "move in the focused pane: code cursor, trap selection, memory"),
    ("Enter", "traps pane: jump the code pane to the selected trap's RIP"),
    ("Esc", "cancel a prompt; leave the serial pane (any key closes the help)"),
    ("(serial focused)", "keys go to the guest's COM1; Esc leaves"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit (the terminal is restored on every exit)"),
];

/// The short hint line at the bottom of the screen.
pub const FOOTER: &str =
    "s step · n over · r run · p pause · b break · g goto · w walk · m memory · t syntax · Tab pane · ? help · q quit";
