//! `ringside info`: what this host can run, and the CPU ringside models.

/// (leaf, register index (0=eax … 3=edx), bit, name) of the feature flags
/// worth showing, in the SDM's /proc/cpuinfo spelling.
const FEATURES: &[(u32, usize, u32, &str)] = &[
    (1, 3, 0, "fpu"),
    (1, 3, 3, "pse"),
    (1, 3, 4, "tsc"),
    (1, 3, 5, "msr"),
    (1, 3, 6, "pae"),
    (1, 3, 8, "cx8"),
    (1, 3, 9, "apic"),
    (1, 3, 11, "sep"),
    (1, 3, 13, "pge"),
    (1, 3, 15, "cmov"),
    (1, 3, 16, "pat"),
    (1, 3, 17, "pse36"),
    (1, 3, 19, "clflush"),
    (1, 3, 23, "mmx"),
    (1, 3, 24, "fxsr"),
    (1, 3, 25, "sse"),
    (1, 3, 26, "sse2"),
    (1, 2, 0, "sse3"),
    (1, 2, 9, "ssse3"),
    (1, 2, 13, "cx16"),
    (1, 2, 19, "sse4_1"),
    (1, 2, 20, "sse4_2"),
    (1, 2, 21, "x2apic"),
    (1, 2, 22, "movbe"),
    (1, 2, 23, "popcnt"),
    (1, 2, 26, "xsave"),
    (1, 2, 31, "hypervisor"),
    (7, 1, 3, "bmi1"),
    (7, 1, 7, "smep"),
    (7, 1, 8, "bmi2"),
    (7, 1, 19, "adx"),
    (0x8000_0001, 3, 11, "syscall"),
    (0x8000_0001, 3, 20, "nx"),
    (0x8000_0001, 3, 26, "pdpe1gb"),
    (0x8000_0001, 3, 27, "rdtscp"),
    (0x8000_0001, 3, 29, "lm"),
    (0x8000_0001, 2, 0, "lahf_lm"),
    (0x8000_0001, 2, 5, "abm"),
];

fn regs_str(r: &[u32]) -> String {
    r.iter()
        .flat_map(|v| v.to_le_bytes())
        .filter(|b| *b != 0)
        .map(|b| b as char)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Lines describing the modelled CPU, from the CPUID model itself.
pub fn cpu_lines() -> Vec<String> {
    let l0 = cpu::cpuid(0, 0);
    let vendor = regs_str(&[l0[1], l0[3], l0[2]]);
    let brand_regs: Vec<u32> = (0x8000_0002u32..=0x8000_0004)
        .flat_map(|l| cpu::cpuid(l, 0))
        .collect();
    let brand = regs_str(&brand_regs);
    let l1 = cpu::cpuid(1, 0)[0];
    let family = ((l1 >> 8) & 0xf) + ((l1 >> 20) & 0xff);
    let model = ((l1 >> 4) & 0xf) | (((l1 >> 16) & 0xf) << 4);
    let addr = cpu::cpuid(0x8000_0008, 0)[0];
    let mut have = Vec::new();
    let mut missing = Vec::new();
    for (leaf, reg, bit, name) in FEATURES {
        if cpu::cpuid(*leaf, 0)[*reg] & (1 << bit) != 0 {
            have.push(*name);
        } else {
            missing.push(*name);
        }
    }
    vec![
        format!("vendor {vendor}, \"{brand}\", family {family} model {model}"),
        format!(
            "{} physical / {} linear address bits",
            addr & 0xff,
            (addr >> 8) & 0xff
        ),
        format!("features: {}", have.join(" ")),
        format!("not modelled: {}", missing.join(" ")),
    ]
}

pub fn print() -> i32 {
    println!("Accelerators:");
    println!("  tcg  available    ringside's interpreter (x86-64 software CPU)");
    let p = accel::kvm::probe();
    if p.available {
        println!("  kvm  available    {}", p.flavour);
    } else {
        println!(
            "  kvm  unavailable  {}",
            p.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    println!();
    println!("CPU model (CPUID as guests see it; KVM is given the same table):");
    for line in cpu_lines() {
        println!("  {line}");
    }
    if p.available {
        // What this host's KVM changed in the table, if anything.
        let ram = mmu::GuestRam::new(2 << 20).map(std::sync::Arc::new);
        if let Ok(ram) = ram {
            let layout = mmu::PhysLayout::new(2 << 20);
            if let Ok(k) = accel::kvm::KvmAccel::new(ram, layout) {
                for note in k.cpuid_notes() {
                    println!("  kvm: {note}");
                }
            }
        }
    }
    0
}
