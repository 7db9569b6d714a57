//! How many instances of a model fit on a machine: per NUMA node, per socket and per machine,
//! by memory and by cores.

use crate::machine::Machine;
use serde::{Deserialize, Serialize};

/// The instances that fit in one kind of scope (every NUMA node, every socket, the machine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeFit {
    /// `numa_node`, `socket` or `machine`.
    pub scope: String,
    /// How many such scopes the machine has.
    pub count: usize,
    /// Memory of the smallest one, bytes.
    pub memory_bytes: u64,
    /// Usable cores of the smallest one.
    pub cores: usize,
    /// Instances its memory holds (smallest scope).
    pub by_memory: u64,
    /// Instances its cores give (smallest scope).
    pub by_cores: usize,
    /// Instances that fit in each (the smaller of the two, smallest scope).
    pub each: usize,
    /// Instances over all scopes of this kind, each kept inside one scope.
    pub total: usize,
}

/// Where instances live when they are packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Each instance inside one NUMA node (local memory, best bandwidth).
    NodeLocal,
    /// An instance needs more than a node: each spans the nodes of one socket.
    SocketWide,
    /// An instance needs more than a socket: it spans sockets.
    MachineWide,
    /// Not even one instance fits the machine.
    DoesNotFit,
}

/// The packing of instances of `instance_bytes` and `cores_per_instance` cores on a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packing {
    /// Memory of one instance, bytes.
    pub instance_bytes: u64,
    /// Cores of one instance.
    pub cores_per_instance: usize,
    /// NUMA node, socket and machine.
    pub scopes: Vec<ScopeFit>,
    /// Instances per machine in the tightest layout that holds one.
    pub instances_per_machine: usize,
    /// That layout.
    pub layout: Layout,
}

/// Memory and usable cores of each unit of one scope kind.
fn fit(scope: &str, units: &[(u64, usize)], instance_bytes: u64, cpi: usize) -> ScopeFit {
    let one = |(memory, cores): (u64, usize)| {
        let by_memory = memory / instance_bytes.max(1);
        let by_cores = cores / cpi.max(1);
        (by_memory, by_cores, (by_memory as usize).min(by_cores))
    };
    let smallest = units
        .iter()
        .copied()
        .min_by_key(|&u| one(u).2)
        .unwrap_or((0, 0));
    let (by_memory, by_cores, each) = one(smallest);
    ScopeFit {
        scope: scope.into(),
        count: units.len(),
        memory_bytes: smallest.0,
        cores: smallest.1,
        by_memory,
        by_cores,
        each,
        total: units.iter().map(|&u| one(u).2).sum(),
    }
}

/// Usable cores of `machine` that `keep` selects.
fn usable_cores(
    machine: &Machine,
    keep: impl Fn(&crate::machine::topology::Core) -> bool,
) -> usize {
    machine
        .cores
        .iter()
        .filter(|c| keep(c) && !machine.usable_pus(c).is_empty())
        .count()
}

/// Cores of the smallest NUMA node (at least 1): the default size of an instance.
pub fn node_cores(machine: &Machine) -> usize {
    machine
        .numa_nodes
        .iter()
        .map(|n| usable_cores(machine, |c| c.numa_node == Some(n.os_index)))
        .min()
        .unwrap_or_else(|| usable_cores(machine, |_| true))
        .max(1)
}

/// Packs instances of `instance_bytes` bytes and `cores_per_instance` cores on `machine`.
pub fn pack(machine: &Machine, instance_bytes: u64, cores_per_instance: usize) -> Packing {
    let nodes: Vec<(u64, usize)> = machine
        .numa_nodes
        .iter()
        .map(|n| {
            (
                n.memory_bytes,
                usable_cores(machine, |c| c.numa_node == Some(n.os_index)),
            )
        })
        .collect();
    let sockets: Vec<(u64, usize)> = (0..machine.packages)
        .map(|p| {
            (
                machine
                    .numa_nodes
                    .iter()
                    .filter(|n| n.package == p)
                    .map(|n| n.memory_bytes)
                    .sum(),
                usable_cores(machine, |c| c.package == p),
            )
        })
        .collect();
    let whole = [(
        machine.numa_nodes.iter().map(|n| n.memory_bytes).sum(),
        usable_cores(machine, |_| true),
    )];
    let scopes = vec![
        fit("numa_node", &nodes, instance_bytes, cores_per_instance),
        fit("socket", &sockets, instance_bytes, cores_per_instance),
        fit("machine", &whole, instance_bytes, cores_per_instance),
    ];
    let (instances_per_machine, layout) =
        [Layout::NodeLocal, Layout::SocketWide, Layout::MachineWide]
            .into_iter()
            .zip(&scopes)
            .map(|(layout, s)| (s.total, layout))
            .find(|(total, _)| *total > 0)
            .unwrap_or((0, Layout::DoesNotFit));
    Packing {
        instance_bytes,
        cores_per_instance,
        scopes,
        instances_per_machine,
        layout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::TopologySource;

    /// Dual-socket EPYC-like machine in NPS4: 8 nodes of 64 GB and 24 cores (3 CCDs of 8).
    fn nps4() -> Machine {
        Machine::load(&TopologySource::Synthetic(
            "pack:2 numa:4(memory=64GB) l3:3 core:8 pu:2".into(),
        ))
        .unwrap()
    }

    #[test]
    fn small_instances_are_limited_by_cores() {
        let m = nps4();
        assert_eq!(node_cores(&m), 24);
        let p = pack(&m, 10_000_000_000, 8);
        let node = &p.scopes[0];
        assert_eq!(
            (node.count, node.memory_bytes, node.cores),
            (8, 64_000_000_000, 24)
        );
        assert_eq!(
            (node.by_memory, node.by_cores, node.each, node.total),
            (6, 3, 3, 24)
        );
        let socket = &p.scopes[1];
        assert_eq!((socket.count, socket.cores, socket.by_memory), (2, 96, 25));
        assert_eq!((socket.each, socket.total), (12, 24));
        let machine = &p.scopes[2];
        assert_eq!(
            (machine.by_memory, machine.by_cores, machine.each),
            (51, 24, 24)
        );
        assert_eq!((p.instances_per_machine, p.layout), (24, Layout::NodeLocal));
    }

    #[test]
    fn large_instances_are_limited_by_memory() {
        let p = pack(&nps4(), 20_000_000_000, 4);
        assert_eq!((p.scopes[0].by_memory, p.scopes[0].by_cores), (3, 6));
        assert_eq!((p.scopes[0].each, p.scopes[0].total), (3, 24));
        assert_eq!(p.scopes[2].by_memory, 25);
    }

    #[test]
    fn an_instance_larger_than_a_node_spans_its_socket() {
        // 141 GB: Llama-3.1-70B in f16.
        let p = pack(&nps4(), 141_110_051_072, 24);
        assert_eq!(p.scopes[0].total, 0);
        assert_eq!((p.scopes[1].each, p.scopes[1].total), (1, 2));
        assert_eq!((p.instances_per_machine, p.layout), (2, Layout::SocketWide));
        let too_big = pack(&nps4(), 300_000_000_000, 24);
        assert_eq!(
            (too_big.instances_per_machine, too_big.layout),
            (1, Layout::MachineWide)
        );
        let none = pack(&nps4(), 600_000_000_000, 24);
        assert_eq!(
            (none.instances_per_machine, none.layout),
            (0, Layout::DoesNotFit)
        );
    }
}
