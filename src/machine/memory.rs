//! How much memory runs may take now: the least of the kernel's `MemAvailable`, each memory
//! cgroup's limit less its usage, and the free memory of the NUMA nodes a run is bound to, less
//! a margin ([`margin_bytes`]) for the kernel, the worker's own code and buffers, and the error of
//! the estimate. Planning for another machine (`--topology`) uses its nodes' memory instead.

use super::topology::Machine;
use std::path::{Path, PathBuf};

/// Share of the usable memory kept free as the margin.
pub const MARGIN_FRACTION: f64 = 0.10;
/// Smallest margin, bytes (256 MiB).
pub const MARGIN_MIN_BYTES: u64 = 256 << 20;

/// The margin kept free of `bytes` of usable memory: 10%, at least 256 MiB.
pub fn margin_bytes(bytes: u64) -> u64 {
    ((bytes as f64 * MARGIN_FRACTION) as u64).max(MARGIN_MIN_BYTES)
}

/// One bound on the memory runs may take: how many bytes, and where the number comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// Bytes still free under this bound.
    pub bytes: u64,
    /// Where it comes from, with its numbers, e.g. `MemAvailable 21.1 GB`.
    pub source: String,
}

/// The memory runs may take on a machine: whole-machine bounds and each NUMA node's memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryBudget {
    /// Bounds on every run together: `MemAvailable` and memory cgroups (this machine only).
    pub system: Vec<Bound>,
    /// Memory of each NUMA node (OS index) for runs bound to it: free memory on this machine,
    /// the topology's memory on another.
    pub nodes: Vec<(usize, u64)>,
    /// How node memory was found, e.g. `free` or `in the topology`.
    pub nodes_source: &'static str,
}

/// A run that does not fit: the tightest bound and the usable bytes left after the margin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The tightest bound.
    pub bound: Bound,
    /// Bytes of it a run may use: the bound less [`margin_bytes`].
    pub usable_bytes: u64,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} usable: {} less a margin of {} ({:.0}%, at least {})",
            gb(self.usable_bytes),
            self.bound.source,
            gb(self.bound.bytes - self.usable_bytes),
            MARGIN_FRACTION * 100.0,
            gb(MARGIN_MIN_BYTES)
        )
    }
}

/// Bytes as decimal gigabytes with one decimal, e.g. `1.5 GB`.
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

impl MemoryBudget {
    /// The budget of `machine`: read from `/proc` and `/sys` when it is this machine, from its
    /// topology otherwise.
    pub fn of(machine: &Machine) -> Self {
        let topology_nodes = machine
            .numa_nodes
            .iter()
            .map(|n| (n.os_index, n.memory_bytes))
            .collect();
        if !machine.this_system {
            return MemoryBudget {
                system: Vec::new(),
                nodes: topology_nodes,
                nodes_source: "in the topology",
            };
        }
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let mut system = Vec::new();
        if let Some(bytes) = read(Path::new("/proc/meminfo"))
            .as_deref()
            .and_then(|t| meminfo_bytes(t, "MemAvailable:"))
        {
            system.push(Bound {
                bytes,
                source: format!("MemAvailable {}", gb(bytes)),
            });
        }
        if let Some(own) = read(Path::new("/proc/self/cgroup")) {
            system.extend(cgroup_bounds(&own, Path::new("/sys/fs/cgroup"), &read));
        }
        // One node: MemAvailable already counts what the kernel can reclaim, node files do not.
        let (nodes, nodes_source) = if machine.numa_nodes.len() > 1 {
            let free = machine
                .numa_nodes
                .iter()
                .map(|n| {
                    let path = format!("/sys/devices/system/node/node{}/meminfo", n.os_index);
                    let bytes = read(Path::new(&path))
                        .as_deref()
                        .and_then(node_free_bytes)
                        .unwrap_or(n.memory_bytes);
                    (n.os_index, bytes.min(n.memory_bytes))
                })
                .collect();
            (free, "free (MemFree + Inactive(file))")
        } else {
            (topology_nodes, "in total")
        };
        MemoryBudget {
            system,
            nodes,
            nodes_source,
        }
    }

    /// Whether `needed_bytes` fit in memory bound to `nodes` (OS indices) and in every
    /// whole-machine bound, each less its margin; the tightest bound when they do not.
    pub fn fit(&self, nodes: &[usize], needed_bytes: u64) -> Result<(), Shortfall> {
        let node_bytes: u64 = self
            .nodes
            .iter()
            .filter(|(n, _)| nodes.contains(n))
            .map(|(_, b)| b)
            .sum();
        let node_bound = Bound {
            bytes: node_bytes,
            source: format!(
                "NUMA node{} {} ha{} {} {}",
                if nodes.len() == 1 { "" } else { "s" },
                super::cpulist::format_list(nodes),
                if nodes.len() == 1 { "s" } else { "ve" },
                gb(node_bytes),
                self.nodes_source
            ),
        };
        let tightest = self
            .system
            .iter()
            .cloned()
            .chain([node_bound])
            .min_by_key(|b| b.bytes)
            .expect("the node bound is always there");
        let usable_bytes = tightest.bytes.saturating_sub(margin_bytes(tightest.bytes));
        if needed_bytes > usable_bytes {
            return Err(Shortfall {
                bound: tightest,
                usable_bytes,
            });
        }
        Ok(())
    }
}

/// The value of `key` (e.g. `MemAvailable:`) in `/proc/meminfo` text, bytes.
pub fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Free memory of a NUMA node from its `meminfo` text (`Node 0 MemFree: ... kB`): free pages
/// and the inactive page cache the kernel reclaims first, bytes.
pub fn node_free_bytes(meminfo: &str) -> Option<u64> {
    let field = |name: &str| {
        meminfo.lines().find_map(|l| {
            let mut words = l.split_whitespace().skip(2);
            (words.next() == Some(name))
                .then(|| words.next()?.parse::<u64>().ok())
                .flatten()
        })
    };
    Some((field("MemFree:")? + field("Inactive(file):").unwrap_or(0)) * 1024)
}

/// A cgroup limit file's value, bytes; `None` for no limit (`max`, or cgroup v1's huge value).
pub fn limit_bytes(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|&b| b < 1 << 60)
}

/// The folders of this process's memory cgroups with the names of their limit and usage files:
/// cgroup v2's (`0::/path`) and cgroup v1's memory controller, from `/proc/self/cgroup` text and
/// the cgroup mount `root`. Inside a container the mount shows only the container's own subtree,
/// so the longest tail of the path that exists under the mount is taken.
fn cgroup_dirs(
    own: &str,
    root: &Path,
    exists: &dyn Fn(&Path) -> bool,
) -> Vec<(PathBuf, PathBuf, &'static str, &'static str)> {
    let mut found = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (mount, limit, usage) = if controllers.is_empty() {
            (root.to_path_buf(), "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                root.join("memory"),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let leaf = (0..=parts.len())
            .map(|skip| parts[skip..].iter().fold(mount.clone(), |p, c| p.join(c)))
            .find(|dir| exists(&dir.join(limit)));
        if let Some(leaf) = leaf {
            found.push((mount, leaf, limit, usage));
        }
    }
    found
}

/// The limits of this process's memory cgroups and of their ancestors up to the mount, each
/// less its usage.
fn cgroup_bounds(own: &str, root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Vec<Bound> {
    let exists = |p: &Path| read(p).is_some();
    let mut bounds = Vec::new();
    for (mount, leaf, limit_file, usage_file) in cgroup_dirs(own, root, &exists) {
        let mut dir = leaf.as_path();
        loop {
            let limit = read(&dir.join(limit_file)).as_deref().and_then(limit_bytes);
            let usage = read(&dir.join(usage_file))
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if let Some(limit) = limit {
                bounds.push(Bound {
                    bytes: limit.saturating_sub(usage),
                    source: format!(
                        "cgroup {} has {} free ({limit_file} {}, {usage_file} {})",
                        dir.display(),
                        gb(limit.saturating_sub(usage)),
                        gb(limit),
                        gb(usage)
                    ),
                });
            }
            if dir == mount {
                break;
            }
            match dir.parent() {
                Some(parent) if parent.starts_with(&mount) => dir = parent,
                _ => break,
            }
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn files(entries: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let map: HashMap<PathBuf, String> = entries
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect();
        move |p: &Path| map.get(p).cloned()
    }

    #[test]
    fn meminfo_and_node_meminfo_give_bytes() {
        let meminfo = "MemTotal:       24683784 kB\nMemFree:         5854976 kB\nMemAvailable:   21075420 kB\n";
        assert_eq!(
            meminfo_bytes(meminfo, "MemAvailable:"),
            Some(21075420 * 1024)
        );
        let node = "Node 1 MemTotal:       24683784 kB\nNode 1 MemFree:         1000 kB\nNode 1 Inactive(file):   24 kB\n";
        assert_eq!(node_free_bytes(node), Some(1024 * 1024));
        assert_eq!(limit_bytes("max\n"), None);
        assert_eq!(
            limit_bytes("9223372036854771712\n"),
            None,
            "cgroup v1's no limit"
        );
        assert_eq!(limit_bytes("1610612736\n"), Some(1610612736));
    }

    #[test]
    fn cgroup_v2_limits_of_the_cgroup_and_its_ancestors_less_their_usage() {
        let read = files(&[
            ("/cg/user/job/memory.max", "1610612736\n"),
            ("/cg/user/job/memory.current", "200000000\n"),
            ("/cg/user/memory.max", "max\n"),
            ("/cg/user/memory.current", "5000000000\n"),
        ]);
        let bounds = cgroup_bounds("0::/user/job\n", Path::new("/cg"), &read);
        assert_eq!(bounds.len(), 1, "{bounds:?}");
        assert_eq!(bounds[0].bytes, 1610612736 - 200000000);
        assert!(
            bounds[0]
                .source
                .contains("has 1.4 GB free (memory.max 1.6 GB, memory.current 0.2 GB)"),
            "{}",
            bounds[0].source
        );
    }

    #[test]
    fn cgroup_v1_in_a_container_finds_its_folder_by_the_tail_of_its_path() {
        // The host path is /process_api/abc/test; the container mounts /process_api/abc.
        let read = files(&[
            ("/cg/memory/test/memory.limit_in_bytes", "1500000000\n"),
            ("/cg/memory/test/memory.usage_in_bytes", "500000000\n"),
            ("/cg/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/cg/memory/memory.usage_in_bytes", "9000000000\n"),
        ]);
        let own = "9:name=systemd:/\n4:memory:/process_api/abc/test\n0::/\n";
        let bounds = cgroup_bounds(own, Path::new("/cg"), &read);
        assert_eq!(bounds.len(), 1, "{bounds:?}");
        assert_eq!(bounds[0].bytes, 1_000_000_000);
    }

    #[test]
    fn the_tightest_bound_less_its_margin_decides() {
        let budget = MemoryBudget {
            system: vec![
                Bound {
                    bytes: 24_300_000_000,
                    source: "MemAvailable 24.3 GB".into(),
                },
                Bound {
                    bytes: 1_500_000_000,
                    source: "cgroup x".into(),
                },
            ],
            nodes: vec![(0, 25_000_000_000)],
            nodes_source: "in total",
        };
        // 1.5 GB less max(10%, 256 MiB) = 1.5e9 - 268435456.
        let usable = 1_500_000_000 - 268_435_456;
        assert_eq!(budget.fit(&[0], usable), Ok(()));
        let short = budget.fit(&[0], usable + 1).unwrap_err();
        assert_eq!(
            (short.usable_bytes, short.bound.source.as_str()),
            (usable, "cgroup x")
        );
        assert_eq!(
            short.to_string(),
            "1.2 GB usable: cgroup x less a margin of 0.3 GB (10%, at least 0.3 GB)"
        );
        let no_cgroup = MemoryBudget {
            system: budget.system[..1].to_vec(),
            ..budget.clone()
        };
        // 25.01 GB does not fit in 24.3 GB available less 2.43 GB.
        let short = no_cgroup.fit(&[0], 25_010_000_000).unwrap_err();
        assert_eq!(short.usable_bytes, 24_300_000_000 - 2_430_000_000);
        let nodes = MemoryBudget {
            system: Vec::new(),
            nodes: vec![(0, 1_100_000_000), (1, 1_100_000_000)],
            nodes_source: "in the topology",
        };
        assert!(nodes
            .fit(&[0], 1_000_000_000)
            .unwrap_err()
            .bound
            .source
            .starts_with("NUMA node 0 has 1.1 GB in the topology"));
        assert_eq!(nodes.fit(&[0, 1], 1_000_000_000), Ok(()));
    }
}
