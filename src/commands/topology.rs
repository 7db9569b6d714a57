//! `llamaperf topology`: the machine as a tree or as JSON.

use crate::cli::TopologyArgs;
use llamaperf::machine::cpulist::format_list;
use llamaperf::machine::topology::Core;
use llamaperf::machine::{Machine, TopologySource};
use std::fmt::Write as _;

/// Describes the machine (this one, or `--topology`).
pub fn topology(args: TopologyArgs) -> crate::error::Result<()> {
    let source = args
        .topology
        .topology
        .unwrap_or(TopologySource::ThisMachine);
    let machine = Machine::load(&source)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&machine)?);
    } else {
        print!("{}", render(&machine));
    }
    Ok(())
}

fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn core_line(out: &mut String, m: &Machine, c: &Core, indent: &str) {
    let caches: Vec<String> = [("L2", c.l2_bytes), ("L1d", c.l1d_bytes)]
        .iter()
        .filter_map(|(n, b)| b.map(|b| format!("{n} {}", bytes(b))))
        .collect();
    let usable = m.usable_pus(c);
    let blocked = if usable.len() < c.pus.len() {
        format!(" (usable: {})", format_list(&usable))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{indent}core {:<4} PUs {}{blocked}{}",
        c.index,
        format_list(&c.pus),
        if caches.is_empty() {
            String::new()
        } else {
            format!("  [{}]", caches.join(", "))
        }
    );
}

/// The readable tree: package > NUMA node > L3 domain > core > PUs.
fn render(m: &Machine) -> String {
    let mut out = String::new();
    let pus: usize = m.cores.iter().map(|c| c.pus.len()).sum();
    let _ = writeln!(
        out,
        "{}: {} package{}, {}, {} NUMA node{}, {} L3 domain{}, {} cores, {} PUs, SMT {}",
        m.source,
        m.packages,
        if m.packages == 1 { "" } else { "s" },
        m.nps
            .map_or("uneven NPS".to_string(), |n| format!("NPS{n}")),
        m.numa_nodes.len(),
        if m.numa_nodes.len() == 1 { "" } else { "s" },
        m.l3_domains.len(),
        if m.l3_domains.len() == 1 { "" } else { "s" },
        m.cores.len(),
        pus,
        if m.smt_active {
            "active"
        } else {
            "off (1 usable PU per core)"
        }
    );
    let _ = writeln!(
        out,
        "usable cpuset: {} ({} PUs)",
        format_list(&m.allowed_pus),
        m.allowed_pus.len()
    );
    for p in 0..m.packages {
        let _ = writeln!(out, "package {p}");
        for node in m.numa_nodes.iter().filter(|n| n.package == p) {
            let _ = writeln!(
                out,
                "  NUMA node {}: {}, cpus {}",
                node.os_index,
                bytes(node.memory_bytes),
                format_list(&node.pus)
            );
            for l3 in m
                .l3_domains
                .iter()
                .filter(|l| l.numa_node == Some(node.os_index))
            {
                let _ = writeln!(
                    out,
                    "    L3 {}: {}, {} cores",
                    l3.index,
                    bytes(l3.size_bytes),
                    l3.cores.len()
                );
                for c in m.cores.iter().filter(|c| c.l3 == Some(l3.index)) {
                    core_line(&mut out, m, c, "      ");
                }
            }
            let orphan = |c: &&Core| {
                c.numa_node == Some(node.os_index)
                    && c.l3
                        .is_none_or(|l| m.l3_domains[l].numa_node != Some(node.os_index))
            };
            for c in m.cores.iter().filter(orphan) {
                core_line(&mut out, m, c, "    ");
            }
        }
    }
    out
}
