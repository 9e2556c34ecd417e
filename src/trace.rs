//! `--trace`: one line on stderr per CPU event, filtered by category.

use cpu::{CpuEvent, TraceFlags};

/// Parse `--trace int,exec,io,mmu` items into flags.
pub fn parse_flags(items: &[String]) -> Result<TraceFlags, String> {
    let mut t = TraceFlags::default();
    for item in items {
        match item.trim() {
            "int" => t.int = true,
            "exec" => t.exec = true,
            "io" => t.io = true,
            "mmu" => t.mmu = true,
            "all" => {
                t = TraceFlags {
                    int: true,
                    exec: true,
                    io: true,
                    mmu: true,
                }
            }
            "" => {}
            other => {
                return Err(format!(
                    "unknown trace category '{other}': use a comma-separated list of int, exec, io, mmu (or all)"
                ))
            }
        }
    }
    Ok(t)
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Render one event, or `None` if its category is off.
pub fn format_event(t: &TraceFlags, ev: &CpuEvent) -> Option<String> {
    Some(match ev {
        CpuEvent::Exec {
            rip,
            cpl,
            bytes,
            text,
        } if t.exec => format!("exec  {rip:#018x} cpl{cpl} {:<24} {text}", hex_bytes(bytes)),
        CpuEvent::Unimplemented { rip, bytes, text } if t.int || t.exec || t.io || t.mmu => {
            format!(
                "#UD   {rip:#018x} not implemented: {text} [{}]",
                hex_bytes(bytes)
            )
        }
        CpuEvent::Interrupt {
            vector,
            kind,
            error_code,
            rip,
            cpl,
        } if t.int => {
            let ec = error_code
                .map(|e| format!(" ec={e:#x}"))
                .unwrap_or_default();
            format!(
                "int   {} vector {vector:#04x} ({kind:?}){ec} at rip {rip:#x} cpl{cpl}",
                cpu::fault::vector_name(*vector)
            )
        }
        CpuEvent::DoubleFault { first, second } if t.int => {
            format!("int   #DF: {second} while delivering {first}")
        }
        CpuEvent::TripleFault { last } if t.int => {
            format!("int   triple fault: {last} could not be delivered")
        }
        CpuEvent::Pio {
            port,
            size,
            write,
            val,
        } if t.io => {
            let dir = if *write { "out" } else { "in " };
            format!("io    {dir} port {port:#06x} size {size} value {val:#x}")
        }
        CpuEvent::Mmio {
            pa,
            size,
            write,
            val,
        } if t.io => {
            let dir = if *write { "write" } else { "read " };
            format!("mmio  {dir} pa {pa:#x} size {size} value {val:#x}")
        }
        CpuEvent::CrWrite { cr, old, new } if t.mmu || t.int => {
            format!("cr    cr{cr} {old:#x} -> {new:#x}")
        }
        CpuEvent::TlbFlush { va, global } if t.mmu => match va {
            Some(va) => format!("tlb   invlpg {va:#x}"),
            None => format!(
                "tlb   flush{}",
                if *global { " (incl. global)" } else { "" }
            ),
        },
        CpuEvent::ModeChange { from, to } if t.mmu || t.int => format!("mode  {from} -> {to}"),
        CpuEvent::Trap(tr) if t.int || t.mmu => {
            let mut line = format!(
                "trap  {:<12} rip {:#x} [{}: guest CPL {}, real CPL {}] {}",
                tr.cause, tr.rip, tr.mode, tr.guest_cpl, tr.real_cpl, tr.detail
            );
            if let Some(x) = tr.translation {
                let part = |v: Option<u64>| v.map_or("-".to_string(), |a| format!("{a:#x}"));
                line.push_str(&format!(
                    "  VA {:#x} -> PA {} -> MA {}",
                    x.va,
                    part(x.pa),
                    part(x.ma)
                ));
            }
            line
        }
        _ => return None,
    })
}

/// Print an event on stderr if its category is enabled.
pub fn print_event(t: &TraceFlags, ev: &CpuEvent) {
    if let Some(line) = format_event(t, ev) {
        eprintln!("[trace] {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_categories() {
        let t = parse_flags(&["int".into(), "io".into()]).unwrap();
        assert!(t.int && t.io && !t.exec && !t.mmu);
        assert!(parse_flags(&["bogus".into()]).is_err());
        assert!(parse_flags(&["all".into()]).unwrap().exec);
    }

    #[test]
    fn unimplemented_names_bytes_under_any_trace() {
        let ev = CpuEvent::Unimplemented {
            rip: 0x1000,
            bytes: vec![0x0f, 0x0b],
            text: "ud2".into(),
        };
        assert!(format_event(&TraceFlags::default(), &ev).is_none());
        let int = TraceFlags {
            int: true,
            ..TraceFlags::default()
        };
        let line = format_event(&int, &ev).unwrap();
        assert!(line.contains("0f 0b"));
        let io = CpuEvent::Pio {
            port: 0x3f8,
            size: 1,
            write: true,
            val: 0x41,
        };
        assert!(format_event(&TraceFlags::default(), &io).is_none());
    }
}
