//! Read bandwidth per set of L3 domains: one CCD of a socket reads a fraction of the socket's
//! memory bandwidth (40-60 of 400 GB/s on a chiplet EPYC), so a run's read ceiling is that of
//! the L3 domains its placement spans. The sets are 1, 2, 4 ... domains taken compact (one NUMA
//! node after the other) and scatter (round-robin over the NUMA nodes), read with every usable
//! core of the set.

use super::{default_core_counts, local_nodes};
use crate::machine::placement::PlacementPolicy;
use crate::machine::topology::L3Domain;
use crate::machine::Machine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// L3 domains to read from, with one thread on each of their usable cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSet {
    /// How the domains were chosen.
    pub placement: PlacementPolicy,
    /// The domains' indices.
    pub l3: Vec<usize>,
    /// NUMA nodes (OS indices) of their cores, where the threads' memory is bound.
    pub nodes: Vec<usize>,
    /// One PU (OS index) per usable core of the domains.
    pub pus: Vec<usize>,
}

/// The read bandwidth of one set of L3 domains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct L3ReadPoint {
    /// How the domains were chosen.
    pub placement: PlacementPolicy,
    /// Domains read from.
    pub domains: usize,
    /// NUMA nodes the domains are in.
    pub numa_nodes: usize,
    /// The domains' indices.
    pub l3: Vec<usize>,
    /// Physical cores that read, one thread each.
    pub cores: usize,
    /// Read kernel, GB/s.
    pub read_gb_s: f64,
}

/// The domains of `machine` that have usable cores, in compact order (package, NUMA node,
/// domain) and in scatter order (the i-th domain of every node, nodes in compact order, before
/// the (i+1)-th of any).
fn orders(machine: &Machine) -> (Vec<&L3Domain>, Vec<&L3Domain>) {
    let mut compact: Vec<&L3Domain> = machine
        .l3_domains
        .iter()
        .filter(|d| !pus_of(machine, d).is_empty())
        .collect();
    compact.sort_by_key(|d| (d.package, d.numa_node.unwrap_or(0), d.index));
    let mut per_node: BTreeMap<(usize, usize), Vec<&L3Domain>> = BTreeMap::new();
    for d in &compact {
        per_node
            .entry((d.package, d.numa_node.unwrap_or(0)))
            .or_default()
            .push(d);
    }
    let depth = per_node.values().map(Vec::len).max().unwrap_or(0);
    let scatter = (0..depth)
        .flat_map(|i| per_node.values().filter_map(move |ds| ds.get(i).copied()))
        .collect();
    (compact, scatter)
}

/// One PU of each usable core of domain `d`.
fn pus_of(machine: &Machine, d: &L3Domain) -> Vec<usize> {
    machine
        .cores
        .iter()
        .filter(|c| c.l3 == Some(d.index))
        .filter_map(|c| machine.usable_pus(c).first().copied())
        .collect()
}

/// The sets of L3 domains to measure on `machine`: for 1, 2, 4 ... all of its domains (those
/// with usable cores), the first ones in compact order, and in scatter order where that picks
/// other domains. Empty when the topology reports no L3.
pub fn domain_sets(machine: &Machine) -> Vec<DomainSet> {
    let (compact, scatter) = orders(machine);
    let set = |placement, domains: &[&L3Domain]| {
        let pus: Vec<usize> = domains.iter().flat_map(|d| pus_of(machine, d)).collect();
        let nodes = local_nodes(machine, &pus);
        let mut l3: Vec<usize> = domains.iter().map(|d| d.index).collect();
        l3.sort_unstable();
        DomainSet {
            placement,
            l3,
            nodes,
            pus,
        }
    };
    if compact.is_empty() {
        return Vec::new();
    }
    let mut sets = Vec::new();
    for n in default_core_counts(compact.len()) {
        let packed = set(PlacementPolicy::Compact, &compact[..n]);
        let spread = set(PlacementPolicy::Scatter, &scatter[..n]);
        let differs = spread.l3 != packed.l3;
        sets.push(packed);
        if differs {
            sets.push(spread);
        }
    }
    sets
}

/// Why `calibrate` measures no more than it does per L3 domain on `machine`, for its progress
/// line; `None` when it has several domains to spread over.
pub fn limitation(machine: &Machine) -> Option<&'static str> {
    match orders(machine).0.len() {
        0 => Some("the topology reports no L3 cache: no read per L3 domain"),
        1 => Some(
            "one L3 domain: its read is the whole machine's, and compact and scatter are the \
             same set (chiplet machines get 1, 2, 4 ... domains)",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::TopologySource;

    fn synthetic(desc: &str) -> Machine {
        Machine::load(&TopologySource::Synthetic(desc.into())).unwrap()
    }

    #[test]
    fn a_dual_socket_nps4_machine_gets_compact_and_scatter_sets() {
        let m = synthetic("pack:2 numa:4 l3:3 core:8 pu:2");
        let sets = domain_sets(&m);
        let keys: Vec<(PlacementPolicy, usize, usize, usize)> = sets
            .iter()
            .map(|s| (s.placement, s.l3.len(), s.nodes.len(), s.pus.len()))
            .collect();
        use PlacementPolicy::{Compact, Scatter};
        assert_eq!(
            keys,
            [
                (Compact, 1, 1, 8),
                (Compact, 2, 1, 16),
                (Scatter, 2, 2, 16),
                (Compact, 4, 2, 32),
                (Scatter, 4, 4, 32),
                (Compact, 8, 3, 64),
                (Scatter, 8, 8, 64),
                (Compact, 16, 6, 128),
                (Scatter, 16, 8, 128),
                (Compact, 24, 8, 192),
            ]
        );
        // every thread of a set sits on a core of its domains, one per core, no siblings
        for s in &sets {
            let shape = m.shape_of(&s.pus);
            assert_eq!((shape.cores, shape.smt), (s.pus.len(), false));
            assert_eq!(shape.l3_domains, s.l3.len());
            assert_eq!(shape.numa_nodes, s.nodes.len());
        }
        // scatter takes one domain of each node before a second of any
        let spread = &sets[6];
        let mut nodes_of_domains: Vec<Option<usize>> = spread
            .l3
            .iter()
            .map(|&i| {
                m.l3_domains
                    .iter()
                    .find(|d| d.index == i)
                    .unwrap()
                    .numa_node
            })
            .collect();
        nodes_of_domains.dedup();
        assert_eq!(nodes_of_domains.len(), 8);
        assert_eq!(limitation(&m), None);
    }

    #[test]
    fn a_machine_of_one_domain_gets_one_set_and_says_why() {
        let m = synthetic("pack:1 l3:1 core:2 pu:1");
        let sets = domain_sets(&m);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].pus.len(), 2);
        assert!(limitation(&m).unwrap().contains("one L3 domain"));
        let bare = synthetic("pack:1 core:2 pu:1");
        assert!(domain_sets(&bare).is_empty());
        assert!(limitation(&bare).unwrap().contains("no L3"));
        // one node, 8 CCDs: scatter picks the same domains as compact, so only compact
        let one_node = synthetic("pack:1 l3:8 core:8 pu:2");
        let sets = domain_sets(&one_node);
        assert!(sets.iter().all(|s| s.placement == PlacementPolicy::Compact));
        assert_eq!(
            sets.iter().map(|s| s.l3.len()).collect::<Vec<_>>(),
            [1, 2, 4, 8]
        );
    }
}
