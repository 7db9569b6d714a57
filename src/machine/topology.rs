//! The machine as an inspectable object: packages, NUMA nodes, L3 domains (CCD/CCX), cores and
//! their PUs, read from hwloc for this machine, an hwloc XML file or a synthetic description.

use super::MachineError;
use hwlocality::cpu::binding::CpuBindingFlags;
use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::errors::RawHwlocError;
use hwlocality::object::attributes::ObjectAttributes;
use hwlocality::object::types::ObjectType;
use hwlocality::object::TopologyObject;
use hwlocality::Topology;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a topology comes from (`--topology`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopologySource {
    /// The machine this process runs on.
    ThisMachine,
    /// An hwloc XML export (`lstopo file.xml`).
    Xml(PathBuf),
    /// An hwloc synthetic description, e.g. `pack:2 numa:4 l3:3 core:8 pu:2`.
    Synthetic(String),
}

impl FromStr for TopologySource {
    type Err = MachineError;

    /// `synthetic:"<description>"` (quotes optional), or a path to an XML file.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(desc) = s.strip_prefix("synthetic:") {
            let desc = desc.trim().trim_matches('"').trim();
            if desc.is_empty() {
                return Err(MachineError::BadTopology {
                    source_text: s.to_string(),
                    reason: "empty synthetic description".into(),
                });
            }
            return Ok(TopologySource::Synthetic(desc.to_string()));
        }
        Ok(TopologySource::Xml(PathBuf::from(s)))
    }
}

impl fmt::Display for TopologySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopologySource::ThisMachine => f.write_str("this machine"),
            TopologySource::Xml(p) => write!(f, "{}", p.display()),
            TopologySource::Synthetic(d) => write!(f, "synthetic:\"{d}\""),
        }
    }
}

impl TopologySource {
    /// Loads the hwloc topology.
    pub fn load(&self) -> Result<Topology, MachineError> {
        let bad = |reason: String| MachineError::BadTopology {
            source_text: self.to_string(),
            reason,
        };
        match self {
            TopologySource::ThisMachine => Topology::new().map_err(|e| bad(hwloc_said(&e))),
            TopologySource::Xml(path) => {
                if !path.is_file() {
                    return Err(bad("no such file".into()));
                }
                Topology::builder()
                    .from_xml_file(path)
                    .map_err(|e| bad(e.to_string()))?
                    .build()
                    .map_err(|e| {
                        bad(format!(
                            "not an hwloc XML export (lstopo FILE.xml): {}",
                            hwloc_said(&e)
                        ))
                    })
            }
            TopologySource::Synthetic(desc) => Topology::builder()
                .from_synthetic(desc)
                .map_err(|e| bad(format!("hwloc rejects the description: {e}")))?
                .build()
                .map_err(|e| bad(hwloc_said(&e))),
        }
    }
}

/// What a failed hwloc call said, as one line: the call and its errno's description.
fn hwloc_said(e: &RawHwlocError) -> String {
    match &e.errno {
        Some(errno) => format!("{} failed: {errno}", e.api),
        None => format!("{} failed", e.api),
    }
}

/// A NUMA node (memory domain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumaNode {
    /// Operating-system index (what `numactl` and memory policies use).
    pub os_index: usize,
    /// Package (socket) it belongs to, logical index.
    pub package: usize,
    /// Local memory, bytes.
    pub memory_bytes: u64,
    /// PUs (OS indices) local to it.
    pub pus: Vec<usize>,
}

/// An L3 cache domain: a CCD/CCX on AMD, a whole socket on most Intel parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct L3Domain {
    /// Logical index.
    pub index: usize,
    /// Cache size, bytes.
    pub size_bytes: u64,
    /// Package it belongs to.
    pub package: usize,
    /// NUMA node (OS index) holding all its PUs, if one does.
    pub numa_node: Option<usize>,
    /// Cores (logical indices) sharing it.
    pub cores: Vec<usize>,
}

/// A physical core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Core {
    /// Logical index.
    pub index: usize,
    /// Package it belongs to.
    pub package: usize,
    /// NUMA node (OS index) it is local to.
    pub numa_node: Option<usize>,
    /// L3 domain (logical index) it shares.
    pub l3: Option<usize>,
    /// Its hardware threads (SMT siblings), OS indices.
    pub pus: Vec<usize>,
    /// L1 data cache, bytes.
    pub l1d_bytes: Option<u64>,
    /// L2 cache, bytes.
    pub l2_bytes: Option<u64>,
}

/// The machine's topology in plain data: what placement plans against and `topology` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Where the topology came from.
    pub source: String,
    /// Whether it is the machine this process runs on (only then can runs execute).
    pub this_system: bool,
    /// Number of packages (sockets).
    pub packages: usize,
    /// NUMA nodes, by OS index order.
    pub numa_nodes: Vec<NumaNode>,
    /// L3 domains, by logical index.
    pub l3_domains: Vec<L3Domain>,
    /// Cores, by logical index.
    pub cores: Vec<Core>,
    /// PUs this process may use (cgroups and taskset applied), OS indices.
    pub allowed_pus: Vec<usize>,
    /// Whether any core has two or more usable PUs.
    pub smt_active: bool,
    /// NUMA nodes per package, when every package has the same number.
    pub nps: Option<usize>,
}

fn pus_of(set: &CpuSet) -> Vec<usize> {
    set.iter_set().map(usize::from).collect()
}

fn cache_size(obj: &TopologyObject) -> Option<u64> {
    match obj.attributes() {
        Some(ObjectAttributes::Cache(c)) => c.size().map(|s| s.get()),
        _ => None,
    }
}

fn ancestor(obj: &TopologyObject, ty: ObjectType) -> Option<&TopologyObject> {
    obj.ancestors().find(|a| a.object_type() == ty)
}

impl Machine {
    /// Describes `topology`; `allowed` restricts the usable PUs (this process's binding).
    pub fn describe(topology: &Topology, source: &TopologySource) -> Result<Self, MachineError> {
        let this_system = matches!(source, TopologySource::ThisMachine);
        let mut allowed = topology.allowed_cpuset().clone_target();
        if this_system {
            let bound = topology
                .cpu_binding(CpuBindingFlags::PROCESS)
                .map_err(|e| {
                    MachineError::Binding(format!("reading this process's cpuset: {e}"))
                })?;
            allowed &= bound;
        }
        let package_of = |obj: &TopologyObject| {
            ancestor(obj, ObjectType::Package).map_or(0, TopologyObject::logical_index)
        };
        let numa_nodes: Vec<NumaNode> = topology
            .objects_with_type(ObjectType::NUMANode)
            .map(|n| NumaNode {
                os_index: n.os_index().unwrap_or(n.logical_index()),
                package: package_of(n),
                memory_bytes: match n.attributes() {
                    Some(ObjectAttributes::NUMANode(a)) => a.local_memory().map_or(0, |m| m.get()),
                    _ => 0,
                },
                pus: n.cpuset().map(|s| pus_of(&s)).unwrap_or_default(),
            })
            .collect();
        let node_holding = |pus: &[usize]| {
            numa_nodes
                .iter()
                .find(|n| !pus.is_empty() && pus.iter().all(|p| n.pus.contains(p)))
                .map(|n| n.os_index)
        };
        let cores: Vec<Core> = topology
            .objects_with_type(ObjectType::Core)
            .map(|c| {
                let pus = c.cpuset().map(|s| pus_of(&s)).unwrap_or_default();
                Core {
                    index: c.logical_index(),
                    package: package_of(c),
                    numa_node: node_holding(&pus),
                    l3: ancestor(c, ObjectType::L3Cache).map(TopologyObject::logical_index),
                    l1d_bytes: ancestor(c, ObjectType::L1Cache).and_then(cache_size),
                    l2_bytes: ancestor(c, ObjectType::L2Cache).and_then(cache_size),
                    pus,
                }
            })
            .collect();
        let l3_domains: Vec<L3Domain> = topology
            .objects_with_type(ObjectType::L3Cache)
            .map(|l3| {
                let pus = l3.cpuset().map(|s| pus_of(&s)).unwrap_or_default();
                L3Domain {
                    index: l3.logical_index(),
                    size_bytes: cache_size(l3).unwrap_or(0),
                    package: package_of(l3),
                    numa_node: node_holding(&pus),
                    cores: cores
                        .iter()
                        .filter(|c| c.l3 == Some(l3.logical_index()))
                        .map(|c| c.index)
                        .collect(),
                }
            })
            .collect();
        let allowed_pus = pus_of(&allowed);
        let packages = topology
            .objects_with_type(ObjectType::Package)
            .count()
            .max(1);
        let per_package: Vec<usize> = (0..packages)
            .map(|p| numa_nodes.iter().filter(|n| n.package == p).count())
            .collect();
        let nps = per_package
            .windows(2)
            .all(|w| w[0] == w[1])
            .then(|| per_package[0])
            .filter(|&n| n > 0);
        let smt_active = cores
            .iter()
            .any(|c| c.pus.iter().filter(|p| allowed_pus.contains(p)).count() > 1);
        Ok(Machine {
            source: source.to_string(),
            this_system,
            packages,
            numa_nodes,
            l3_domains,
            cores,
            allowed_pus,
            smt_active,
            nps,
        })
    }

    /// Loads and describes the topology of `source`.
    pub fn load(source: &TopologySource) -> Result<Self, MachineError> {
        Self::describe(&source.load()?, source)
    }

    /// The PUs of `core` that this process may use.
    pub fn usable_pus(&self, core: &Core) -> Vec<usize> {
        core.pus
            .iter()
            .copied()
            .filter(|p| self.allowed_pus.contains(p))
            .collect()
    }

    /// The NUMA node (OS index) that PU `pu` is local to.
    pub fn node_of_pu(&self, pu: usize) -> Option<&NumaNode> {
        self.numa_nodes.iter().find(|n| n.pus.contains(&pu))
    }
}

/// What of a machine a set of PUs covers: the key of its calibrated ceilings (physical cores,
/// SMT, the L3 domains and NUMA nodes it spans) and the cache it has to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementShape {
    /// Physical cores holding the PUs.
    pub cores: usize,
    /// Whether some core computes on two or more of its PUs (SMT siblings).
    pub smt: bool,
    /// L3 of the domains the PUs span, bytes (0 when the machine reports none).
    pub l3_bytes: u64,
    /// L3 domains the PUs span (0 when the machine reports none, or in records from before).
    #[serde(default)]
    pub l3_domains: usize,
    /// NUMA nodes the PUs are in (0 in records from before).
    #[serde(default)]
    pub numa_nodes: usize,
}

impl Machine {
    /// The shape of `pus` (OS indices) on this machine.
    pub fn shape_of(&self, pus: &[usize]) -> PlacementShape {
        let used: Vec<&Core> = self
            .cores
            .iter()
            .filter(|c| c.pus.iter().any(|p| pus.contains(p)))
            .collect();
        let mut l3: Vec<usize> = used.iter().filter_map(|c| c.l3).collect();
        l3.sort_unstable();
        l3.dedup();
        let numa_nodes = self
            .numa_nodes
            .iter()
            .filter(|n| n.pus.iter().any(|p| pus.contains(p)))
            .count();
        PlacementShape {
            cores: used.len(),
            smt: used
                .iter()
                .any(|c| c.pus.iter().filter(|p| pus.contains(p)).count() > 1),
            l3_bytes: self
                .l3_domains
                .iter()
                .filter(|d| l3.contains(&d.index))
                .map(|d| d.size_bytes)
                .sum(),
            l3_domains: l3.len(),
            numa_nodes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synthetic(desc: &str) -> Machine {
        Machine::load(&TopologySource::Synthetic(desc.into())).unwrap()
    }

    #[test]
    fn dual_socket_nps4_with_24_ccds() {
        let m = synthetic("pack:2 numa:4 l3:3 core:8 pu:2");
        assert_eq!(m.packages, 2);
        assert_eq!(m.numa_nodes.len(), 8);
        assert_eq!(m.nps, Some(4));
        assert_eq!(m.l3_domains.len(), 24);
        assert_eq!(m.cores.len(), 192);
        assert_eq!(m.allowed_pus.len(), 384);
        assert!(m.smt_active);
        assert!(!m.this_system);
        let last = m.cores.last().unwrap();
        assert_eq!(
            (last.package, last.numa_node, last.l3),
            (1, Some(7), Some(23))
        );
        assert_eq!(m.l3_domains[5].numa_node, Some(1));
        assert_eq!(m.l3_domains[5].cores.len(), 8);
    }

    #[test]
    fn a_placement_s_shape_counts_cores_siblings_and_the_l3_it_spans() {
        let m = synthetic("pack:2 numa:4 l3:3 core:8 pu:2");
        let l3 = m.l3_domains[0].size_bytes;
        assert!(l3 > 0);
        let pus = |cores: std::ops::Range<usize>, siblings: usize| -> Vec<usize> {
            cores
                .flat_map(|c| m.cores[c].pus[..siblings].to_vec())
                .collect()
        };
        let shape = |cores, smt, domains: u64| PlacementShape {
            cores,
            smt,
            l3_bytes: domains * l3,
            l3_domains: domains as usize,
            numa_nodes: usize::from(domains > 0),
        };
        assert_eq!(m.shape_of(&pus(0..4, 1)), shape(4, false, 1));
        assert_eq!(m.shape_of(&pus(0..4, 2)), shape(4, true, 1));
        // 12 cores span two L3 domains of 8 cores
        assert_eq!(m.shape_of(&pus(0..12, 2)), shape(12, true, 2));
        assert_eq!(m.shape_of(&pus(6..7, 1)), shape(1, false, 1));
        assert_eq!(m.shape_of(&[]), shape(0, false, 0));
    }

    #[test]
    fn intel_like_socket_wide_l3() {
        let m = synthetic("pack:2 numa:1 l3:1 core:28 pu:2");
        assert_eq!(m.nps, Some(1));
        assert_eq!(m.l3_domains.len(), 2);
        assert_eq!(m.l3_domains[1].cores.len(), 28);
    }

    #[test]
    fn this_machine_can_be_described() {
        let m = Machine::load(&TopologySource::ThisMachine).unwrap();
        assert!(m.this_system);
        assert!(!m.cores.is_empty() && !m.allowed_pus.is_empty());
        assert!(!m.numa_nodes.is_empty());
        assert!(m.numa_nodes.iter().all(|n| n.memory_bytes > 0));
        // The node's own memory as the kernel states it (not a cgroup-limited total).
        for n in &m.numa_nodes {
            let path = format!("/sys/devices/system/node/node{}/meminfo", n.os_index);
            let Ok(meminfo) = std::fs::read_to_string(path) else {
                continue;
            };
            let kib: u64 = meminfo
                .lines()
                .find(|l| l.contains("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
                .unwrap();
            assert_eq!(n.memory_bytes, kib * 1024);
        }
    }

    #[test]
    fn topology_sources_parse() {
        assert_eq!(
            "synthetic:\"pack:2 core:4\""
                .parse::<TopologySource>()
                .unwrap(),
            TopologySource::Synthetic("pack:2 core:4".into())
        );
        assert!("synthetic:".parse::<TopologySource>().is_err());
        let err = TopologySource::Synthetic("bogus:7".into())
            .load()
            .unwrap_err();
        assert!(err.to_string().contains("bogus:7"), "{err}");
    }
}
