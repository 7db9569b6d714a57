//! Placement: which PUs each instance of a run computes on and where its memory lives.
//!
//! `compact` fills one L3 domain, then the next in the same NUMA node, then the next node;
//! `scatter` takes cores round-robin over L3 domains taken round-robin across NUMA nodes.
//! With K instances the chosen cores, in compact order, are cut into K equal groups, so groups
//! follow L3 and NUMA boundaries whenever the counts allow.

use super::cpulist::{format_list, parse_list};
use super::topology::{Core, Machine};
use super::MachineError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Which cores a run uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreRequest {
    /// This many cores, chosen by the placement policy.
    Count(usize),
    /// Every usable core.
    All,
    /// Exactly these PUs (OS indices), one compute thread each.
    List(Vec<usize>),
}

impl FromStr for CoreRequest {
    type Err = MachineError;

    /// `all`, a count (`8`), or a cpu list (`0-7,16-23`; a single cpu as `5-5`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALLOWED: &str =
            "a count of at least 1 like 8, 'all', or a cpu list like 0-7,16-23 (a single cpu as 5-5)";
        let bad = |allowed: String| MachineError::BadValue {
            key: "cores",
            value: s.to_string(),
            allowed,
        };
        if s == "all" {
            return Ok(CoreRequest::All);
        }
        if s.contains(['-', ',']) {
            return parse_list(s).map(CoreRequest::List).map_err(|e| {
                bad(format!(
                    "{ALLOWED}; in a list each part is a cpu or a range low-high, and '{}' is not",
                    e.part
                ))
            });
        }
        match s.parse::<usize>() {
            Ok(0) | Err(_) => Err(bad(ALLOWED.to_string())),
            Ok(n) => Ok(CoreRequest::Count(n)),
        }
    }
}

impl fmt::Display for CoreRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreRequest::Count(n) => write!(f, "{n}"),
            CoreRequest::All => f.write_str("all"),
            CoreRequest::List(l) => f.write_str(&format_list(l)),
        }
    }
}

/// Whether SMT siblings of the chosen cores compute too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Smt {
    /// One compute thread per core.
    Off,
    /// One compute thread per PU of each chosen core.
    On,
}

/// How cores are chosen across L3 domains and NUMA nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementPolicy {
    /// Fill one L3 domain, then the next in the node, then the next node.
    Compact,
    /// Round-robin over L3 domains across NUMA nodes.
    Scatter,
}

/// Where an instance's memory is placed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryPolicy {
    /// Bound to the NUMA nodes of the instance's cores.
    Local,
    /// Interleaved over every node of the packages of the instance's cores.
    Interleave,
    /// Bound to these nodes (OS indices).
    Bind(Vec<usize>),
}

/// Required NUMA nodes per socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NpsRequirement {
    /// Whatever the machine has.
    Any,
    /// Exactly this NPS mode (1, 2 or 4).
    Exactly(usize),
}

macro_rules! keyword_enum {
    ($ty:ty, $key:literal, $($name:literal => $value:expr),+) => {
        impl FromStr for $ty {
            type Err = MachineError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($value),)+
                    _ => Err(MachineError::BadValue {
                        key: $key,
                        value: s.to_string(),
                        allowed: [$($name),+].join(", "),
                    }),
                }
            }
        }
    };
}

keyword_enum!(Smt, "smt", "off" => Smt::Off, "on" => Smt::On);

impl fmt::Display for Smt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Smt::Off => "off",
            Smt::On => "on",
        })
    }
}

impl fmt::Display for PlacementPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlacementPolicy::Compact => "compact",
            PlacementPolicy::Scatter => "scatter",
        })
    }
}

impl fmt::Display for MemoryPolicy {
    /// As written in scenarios: `local`, `interleave`, `bind:0-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryPolicy::Local => f.write_str("local"),
            MemoryPolicy::Interleave => f.write_str("interleave"),
            MemoryPolicy::Bind(nodes) => write!(f, "bind:{}", format_list(nodes)),
        }
    }
}

impl fmt::Display for NpsRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpsRequirement::Any => f.write_str("any"),
            NpsRequirement::Exactly(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for MemoryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryMode::Bind => "bind",
            MemoryMode::Interleave => "interleave",
        })
    }
}
keyword_enum!(PlacementPolicy, "placement", "compact" => PlacementPolicy::Compact, "scatter" => PlacementPolicy::Scatter);

impl FromStr for MemoryPolicy {
    type Err = MachineError;

    /// `local`, `interleave` or `bind:<node list>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MachineError::BadValue {
            key: "memory",
            value: s.to_string(),
            allowed: "local, interleave, bind:<node list> (e.g. bind:0 or bind:0-1)".into(),
        };
        match s {
            "local" => Ok(MemoryPolicy::Local),
            "interleave" => Ok(MemoryPolicy::Interleave),
            _ => s
                .strip_prefix("bind:")
                .and_then(|l| parse_list(l).ok())
                .map(MemoryPolicy::Bind)
                .ok_or_else(bad),
        }
    }
}

impl FromStr for NpsRequirement {
    type Err = MachineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any" => Ok(NpsRequirement::Any),
            "1" | "2" | "4" => Ok(NpsRequirement::Exactly(s.parse().expect("digit"))),
            _ => Err(MachineError::BadValue {
                key: "nps",
                value: s.to_string(),
                allowed: "1, 2, 4, any".into(),
            }),
        }
    }
}

/// Everything placement needs to know about a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementRequest {
    /// Cores to use (in total over all instances).
    pub cores: CoreRequest,
    /// SMT on or off.
    pub smt: Smt,
    /// Compact or scatter.
    pub placement: PlacementPolicy,
    /// Memory placement.
    pub memory: MemoryPolicy,
    /// Required NPS mode.
    pub nps: NpsRequirement,
    /// Parallel instances splitting the cores (at least 1).
    pub instances: usize,
}

/// How memory is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    /// Allocate on the given nodes only.
    Bind,
    /// Spread pages round-robin over the given nodes.
    Interleave,
}

/// Where one instance's memory goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryPlacement {
    /// NUMA nodes (OS indices).
    pub nodes: Vec<usize>,
    /// Binding mode.
    pub mode: MemoryMode,
}

/// The placement of one instance: one compute thread per PU, memory on `memory.nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancePlacement {
    /// PUs (OS indices) in thread order: compute thread i runs on `pus[i]`.
    pub pus: Vec<usize>,
    /// Memory nodes and mode.
    pub memory: MemoryPlacement,
}

/// Why a run cannot execute on a machine, with the numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// Not enough usable cores.
    #[error("asks {asked} cores, {allowed} allowed")]
    NotEnoughCores {
        /// Cores asked for.
        asked: usize,
        /// Usable cores.
        allowed: usize,
    },
    /// SMT asked for on a machine without usable siblings.
    #[error("SMT on but cores have 1 PU")]
    NoSmt,
    /// Not enough cores with usable siblings.
    #[error("asks {asked} cores with SMT, {available} have 2 or more usable PUs")]
    NotEnoughSmtCores {
        /// Cores asked for.
        asked: usize,
        /// Cores with siblings.
        available: usize,
    },
    /// The machine is in another NPS mode.
    #[error("scenario needs NPS{wanted}, machine is {}", .machine.map_or("uneven (NUMA nodes differ per package)".to_string(), |n| format!("NPS{n}")))]
    NpsMismatch {
        /// NPS asked for.
        wanted: usize,
        /// The machine's NPS.
        machine: Option<usize>,
    },
    /// A bind node does not exist.
    #[error("bind:{} but machine has {} NUMA node{} ({})", format_list(.asked), .nodes.len(), if .nodes.len() == 1 { "" } else { "s" }, format_list(.nodes))]
    NoSuchNode {
        /// Nodes asked for.
        asked: Vec<usize>,
        /// The machine's nodes.
        nodes: Vec<usize>,
    },
    /// An explicit cpu list names PUs this process may not use.
    #[error("cpus {} are not usable here (allowed: {})", format_list(.cpus), format_list(.allowed))]
    CpusNotAllowed {
        /// Offending PUs.
        cpus: Vec<usize>,
        /// Usable PUs.
        allowed: Vec<usize>,
    },
    /// An explicit cpu list holds siblings while SMT is off.
    #[error("cpu list holds SMT siblings {first} and {second} but smt = off")]
    SiblingsWithSmtOff {
        /// One sibling.
        first: usize,
        /// The other.
        second: usize,
    },
    /// The cores do not divide into the instances.
    #[error("{cores} cores do not split into {instances} equal instances")]
    UnevenInstances {
        /// Cores (or PUs for a list).
        cores: usize,
        /// Instances asked for.
        instances: usize,
    },
}

/// Sort key of compact order: package, NUMA node, L3 domain, core.
fn compact_key(c: &Core) -> (usize, usize, usize, usize) {
    (
        c.package,
        c.numa_node.unwrap_or(0),
        c.l3.unwrap_or(0),
        c.index,
    )
}

/// Cores in scatter order: round-robin over L3 domains, the domains round-robin over NUMA nodes.
fn scatter_order<'a>(cores: &[&'a Core]) -> Vec<&'a Core> {
    let mut domains: BTreeMap<(usize, usize), Vec<&Core>> = BTreeMap::new();
    for c in cores {
        let node = (c.package, c.numa_node.unwrap_or(0));
        domains.entry(node).or_default().push(c);
    }
    let mut per_node: Vec<Vec<Vec<&Core>>> = domains
        .into_values()
        .map(|node_cores| {
            let mut l3s: BTreeMap<usize, Vec<&Core>> = BTreeMap::new();
            for c in node_cores {
                l3s.entry(c.l3.unwrap_or(0)).or_default().push(c);
            }
            l3s.into_values().collect()
        })
        .collect();
    let mut ordered_domains = Vec::new();
    let depth = per_node.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..depth {
        for node in per_node.iter_mut() {
            if let Some(d) = node.get_mut(i) {
                ordered_domains.push(std::mem::take(d));
            }
        }
    }
    let width = ordered_domains.iter().map(Vec::len).max().unwrap_or(0);
    (0..width)
        .flat_map(|j| {
            ordered_domains
                .iter()
                .filter_map(move |d| d.get(j).copied())
        })
        .collect()
}

fn memory_for(machine: &Machine, pus: &[usize], policy: &MemoryPolicy) -> MemoryPlacement {
    let mut local: Vec<usize> = pus
        .iter()
        .filter_map(|&p| machine.node_of_pu(p).map(|n| n.os_index))
        .collect();
    local.sort_unstable();
    local.dedup();
    match policy {
        MemoryPolicy::Local => MemoryPlacement {
            nodes: local,
            mode: MemoryMode::Bind,
        },
        MemoryPolicy::Interleave => {
            let packages: Vec<usize> = pus
                .iter()
                .filter_map(|&p| machine.node_of_pu(p).map(|n| n.package))
                .collect();
            MemoryPlacement {
                nodes: machine
                    .numa_nodes
                    .iter()
                    .filter(|n| packages.contains(&n.package))
                    .map(|n| n.os_index)
                    .collect(),
                mode: MemoryMode::Interleave,
            }
        }
        MemoryPolicy::Bind(nodes) => MemoryPlacement {
            nodes: nodes.clone(),
            mode: MemoryMode::Bind,
        },
    }
}

fn split<T: Clone>(items: &[T], instances: usize) -> Result<Vec<Vec<T>>, SkipReason> {
    if instances == 0 || !items.len().is_multiple_of(instances) || items.len() < instances {
        return Err(SkipReason::UnevenInstances {
            cores: items.len(),
            instances,
        });
    }
    Ok(items
        .chunks(items.len() / instances)
        .map(<[T]>::to_vec)
        .collect())
}

fn list_groups(
    machine: &Machine,
    pus: &[usize],
    request: &PlacementRequest,
) -> Result<Vec<Vec<usize>>, SkipReason> {
    let bad: Vec<usize> = pus
        .iter()
        .copied()
        .filter(|p| !machine.allowed_pus.contains(p))
        .collect();
    if !bad.is_empty() {
        return Err(SkipReason::CpusNotAllowed {
            cpus: bad,
            allowed: machine.allowed_pus.clone(),
        });
    }
    if request.smt == Smt::Off {
        for core in &machine.cores {
            let inside: Vec<usize> = core
                .pus
                .iter()
                .copied()
                .filter(|p| pus.contains(p))
                .collect();
            if inside.len() > 1 {
                return Err(SkipReason::SiblingsWithSmtOff {
                    first: inside[0],
                    second: inside[1],
                });
            }
        }
    }
    split(pus, request.instances)
}

fn counted_groups(
    machine: &Machine,
    request: &PlacementRequest,
) -> Result<Vec<Vec<usize>>, SkipReason> {
    let candidates: Vec<(&Core, Vec<usize>)> = machine
        .cores
        .iter()
        .filter_map(|c| {
            let usable = machine.usable_pus(c);
            match request.smt {
                Smt::Off => usable.first().map(|&p| (c, vec![p])),
                Smt::On => (usable.len() >= 2).then_some((c, usable)),
            }
        })
        .collect();
    let usable_cores = machine
        .cores
        .iter()
        .filter(|c| !machine.usable_pus(c).is_empty())
        .count();
    if request.smt == Smt::On && candidates.is_empty() {
        return Err(SkipReason::NoSmt);
    }
    let asked = match request.cores {
        CoreRequest::Count(n) => n,
        _ => candidates.len(),
    };
    if asked > candidates.len() {
        return Err(match request.smt {
            Smt::Off => SkipReason::NotEnoughCores {
                asked,
                allowed: usable_cores,
            },
            Smt::On => SkipReason::NotEnoughSmtCores {
                asked,
                available: candidates.len(),
            },
        });
    }
    let mut cores: Vec<&Core> = candidates.iter().map(|(c, _)| *c).collect();
    cores.sort_by_key(|c| compact_key(c));
    let mut chosen: Vec<&Core> = match request.placement {
        PlacementPolicy::Compact => cores.into_iter().take(asked).collect(),
        PlacementPolicy::Scatter => scatter_order(&cores).into_iter().take(asked).collect(),
    };
    chosen.sort_by_key(|c| compact_key(c));
    let pus_of = |c: &Core| -> Vec<usize> {
        candidates
            .iter()
            .find(|(k, _)| k.index == c.index)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    Ok(split(&chosen, request.instances)?
        .into_iter()
        .map(|group| group.into_iter().flat_map(pus_of).collect())
        .collect())
}

/// Places `request` on `machine`: one placement per instance, or why it cannot run there.
pub fn place(
    machine: &Machine,
    request: &PlacementRequest,
) -> Result<Vec<InstancePlacement>, SkipReason> {
    if let NpsRequirement::Exactly(wanted) = request.nps {
        if machine.nps != Some(wanted) {
            return Err(SkipReason::NpsMismatch {
                wanted,
                machine: machine.nps,
            });
        }
    }
    if let MemoryPolicy::Bind(asked) = &request.memory {
        let nodes: Vec<usize> = machine.numa_nodes.iter().map(|n| n.os_index).collect();
        if asked.is_empty() || asked.iter().any(|n| !nodes.contains(n)) {
            return Err(SkipReason::NoSuchNode {
                asked: asked.clone(),
                nodes,
            });
        }
    }
    let groups = match &request.cores {
        CoreRequest::List(pus) => list_groups(machine, pus, request)?,
        CoreRequest::Count(_) | CoreRequest::All => counted_groups(machine, request)?,
    };
    Ok(groups
        .into_iter()
        .map(|pus| InstancePlacement {
            memory: memory_for(machine, &pus, &request.memory),
            pus,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::topology::TopologySource;

    const ONE_SOCKET_8_CCD: &str = "pack:1 numa:1 l3:8 core:8 pu:2";
    const TWO_SOCKET_NPS1: &str = "pack:2 numa:1 l3:12 core:8 pu:2";
    const TWO_SOCKET_NPS4: &str = "pack:2 numa:4 l3:3 core:8 pu:2";
    const INTEL_LIKE: &str = "pack:2 numa:1 l3:1 core:28 pu:2";

    fn machine(desc: &str) -> Machine {
        Machine::load(&TopologySource::Synthetic(desc.into())).unwrap()
    }

    fn request(
        cores: &str,
        smt: &str,
        placement: &str,
        memory: &str,
        nps: &str,
        k: usize,
    ) -> PlacementRequest {
        PlacementRequest {
            cores: cores.parse().unwrap(),
            smt: smt.parse().unwrap(),
            placement: placement.parse().unwrap(),
            memory: memory.parse().unwrap(),
            nps: nps.parse().unwrap(),
            instances: k,
        }
    }

    /// (topology, cores, smt, placement, memory, nps, instances) -> per instance (cpus, nodes)
    /// or the skip reason.
    #[allow(clippy::type_complexity)]
    const CASES: &[(&str, &str, &str, &str, &str, &str, usize, Result<&[(&str, &str)], &str>)] = &[
        (ONE_SOCKET_8_CCD, "8", "off", "compact", "local", "any", 1, Ok(&[("0,2,4,6,8,10,12,14", "0")])),
        (ONE_SOCKET_8_CCD, "8", "off", "scatter", "local", "any", 1, Ok(&[("0,16,32,48,64,80,96,112", "0")])),
        (ONE_SOCKET_8_CCD, "4", "on", "compact", "local", "any", 1, Ok(&[("0-7", "0")])),
        (ONE_SOCKET_8_CCD, "16", "off", "compact", "local", "any", 2, Ok(&[("0,2,4,6,8,10,12,14", "0"), ("16,18,20,22,24,26,28,30", "0")])),
        (ONE_SOCKET_8_CCD, "65", "off", "compact", "local", "any", 1, Err("asks 65 cores, 64 allowed")),
        (ONE_SOCKET_8_CCD, "all", "off", "compact", "local", "4", 1, Err("scenario needs NPS4, machine is NPS1")),
        (ONE_SOCKET_8_CCD, "6", "off", "compact", "local", "any", 4, Err("6 cores do not split into 4 equal instances")),
        (TWO_SOCKET_NPS1, "2", "off", "scatter", "local", "1", 1, Ok(&[("0,192", "0-1")])),
        (TWO_SOCKET_NPS1, "8", "off", "compact", "interleave", "any", 1, Ok(&[("0,2,4,6,8,10,12,14", "0")])),
        (TWO_SOCKET_NPS1, "4", "off", "scatter", "interleave", "any", 1, Ok(&[("0,16,192,208", "0-1")])),
        (TWO_SOCKET_NPS4, "all", "on", "compact", "local", "4", 8, Ok(&[
            ("0-47", "0"), ("48-95", "1"), ("96-143", "2"), ("144-191", "3"),
            ("192-239", "4"), ("240-287", "5"), ("288-335", "6"), ("336-383", "7"),
        ])),
        (TWO_SOCKET_NPS4, "24", "off", "compact", "interleave", "any", 1, Ok(&[("0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,38,40,42,44,46", "0-3")])),
        (TWO_SOCKET_NPS4, "8", "off", "scatter", "local", "any", 2, Ok(&[("0,48,96,144", "0-3"), ("192,240,288,336", "4-7")])),
        (TWO_SOCKET_NPS4, "2", "off", "compact", "bind:5", "any", 1, Ok(&[("0,2", "5")])),
        (TWO_SOCKET_NPS4, "2", "off", "compact", "bind:9", "any", 1, Err("bind:9 but machine has 8 NUMA nodes (0-7)")),
        (TWO_SOCKET_NPS4, "all", "off", "compact", "local", "1", 1, Err("scenario needs NPS1, machine is NPS4")),
        (INTEL_LIKE, "4", "off", "scatter", "local", "any", 1, Ok(&[("0,2,56,58", "0-1")])),
        (INTEL_LIKE, "all", "off", "compact", "local", "any", 2, Ok(&[(
            "0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,38,40,42,44,46,48,50,52,54", "0")
            , ("56,58,60,62,64,66,68,70,72,74,76,78,80,82,84,86,88,90,92,94,96,98,100,102,104,106,108,110", "1")])),
        (INTEL_LIKE, "0-1", "off", "compact", "local", "any", 1, Err("cpu list holds SMT siblings 0 and 1 but smt = off")),
        (INTEL_LIKE, "0-3", "on", "compact", "local", "any", 2, Ok(&[("0-1", "0"), ("2-3", "0")])),
    ];

    #[test]
    fn placements_on_synthetic_machines() {
        for (i, (topo, cores, smt, pol, mem, nps, k, want)) in CASES.iter().enumerate() {
            let m = machine(topo);
            let got = place(&m, &request(cores, smt, pol, mem, nps, *k));
            match (got, want) {
                (Ok(instances), Ok(want)) => {
                    let got: Vec<(String, String)> = instances
                        .iter()
                        .map(|p| (format_list(&p.pus), format_list(&p.memory.nodes)))
                        .collect();
                    let want: Vec<(String, String)> = want
                        .iter()
                        .map(|(c, n)| (format_list(&parse_list(c).unwrap()), n.to_string()))
                        .collect();
                    assert_eq!(got, want, "case {i}: {topo} cores={cores} {pol}");
                }
                (Err(reason), Err(want)) => assert_eq!(reason.to_string(), *want, "case {i}"),
                (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn thread_order_follows_compact_order_even_for_scatter() {
        let m = machine(TWO_SOCKET_NPS4);
        let p = place(&m, &request("8", "off", "scatter", "local", "any", 1)).unwrap();
        assert_eq!(p[0].pus, [0, 48, 96, 144, 192, 240, 288, 336]);
        assert_eq!(p[0].memory.mode, MemoryMode::Bind);
        let p = place(&m, &request("8", "off", "compact", "interleave", "any", 1)).unwrap();
        assert_eq!(p[0].memory.mode, MemoryMode::Interleave);
    }

    #[test]
    fn this_machine() {
        let m = Machine::load(&TopologySource::ThisMachine).unwrap();
        let usable = m
            .cores
            .iter()
            .filter(|c| !m.usable_pus(c).is_empty())
            .count();
        let one = place(&m, &request("1", "off", "compact", "local", "any", 1)).unwrap();
        assert_eq!(one[0].pus.len(), 1);
        assert!(m.allowed_pus.contains(&one[0].pus[0]));
        let err = place(
            &m,
            &request(
                &(usable + 1).to_string(),
                "off",
                "compact",
                "local",
                "any",
                1,
            ),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("asks {} cores, {usable} allowed", usable + 1)
        );
        let smt = place(&m, &request("1", "on", "compact", "local", "any", 1));
        assert_eq!(smt.is_ok(), m.smt_active, "{smt:?}");
        let nodes = m.numa_nodes.len();
        let remote = place(
            &m,
            &request("1", "off", "compact", &format!("bind:{nodes}"), "any", 1),
        );
        assert!(remote
            .unwrap_err()
            .to_string()
            .starts_with(&format!("bind:{nodes} but machine has {nodes} NUMA node")));
    }

    #[test]
    fn bad_values_name_the_key_and_the_allowed_ones() {
        let e = "sideways"
            .parse::<PlacementPolicy>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("placement") && e.contains("compact, scatter"),
            "{e}"
        );
        let e = "bind:x".parse::<MemoryPolicy>().unwrap_err().to_string();
        assert!(e.contains("bind:<node list>"), "{e}");
        let e = "3".parse::<NpsRequirement>().unwrap_err().to_string();
        assert!(e.contains("1, 2, 4, any"), "{e}");
        let e = "0".parse::<CoreRequest>().unwrap_err().to_string();
        assert!(e.contains("at least 1"), "{e}");
    }
}
