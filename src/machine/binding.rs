//! Binding a worker process to its [`InstancePlacement`] and reading the binding back.
//!
//! Order matters: [`bind_process`] runs before any thread exists, so every thread inherits the
//! instance's cpuset and the memory policy (Linux binds memory per thread, and threads inherit
//! their creator's policy); the weights, read by the main thread afterwards, land on the policy's
//! nodes. Once the compute pools exist, [`pin_threads`] gives every thread its own PU.

use super::placement::{InstancePlacement, MemoryMode};
use super::process::{self, ThreadBinding};
use super::MachineError;
use hwlocality::cpu::binding::CpuBindingFlags;
use hwlocality::cpu::cpuset::CpuSet;
use hwlocality::memory::binding::{MemoryBindingFlags, MemoryBindingPolicy};
use hwlocality::memory::nodeset::NodeSet;
use hwlocality::Topology;
use serde::{Deserialize, Serialize};

/// The binding of a worker as read back from the OS after it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingReadback {
    /// Every thread of the process.
    pub threads: Vec<ThreadBinding>,
    /// Memory policy of the main thread (`bind`, `interleave`, `default`, ...).
    pub memory_policy: String,
    /// Nodes of that policy, OS indices.
    pub memory_nodes: Vec<usize>,
}

fn cpuset(pus: &[usize]) -> CpuSet {
    pus.iter()
        .copied()
        .map(|p| hwlocality::bitmap::BitmapIndex::try_from(p).expect("PU index fits"))
        .collect()
}

fn nodeset(nodes: &[usize]) -> NodeSet {
    nodes
        .iter()
        .copied()
        .map(|n| hwlocality::bitmap::BitmapIndex::try_from(n).expect("node index fits"))
        .collect()
}

/// Binds this process (all its threads, of which there should be one) to the placement's PUs,
/// and the calling thread's memory to its nodes. Returns the loaded topology for later pinning.
pub fn bind_process(placement: &InstancePlacement) -> Result<Topology, MachineError> {
    let topology = Topology::new().map_err(|e| MachineError::Binding(e.to_string()))?;
    let set = cpuset(&placement.pus);
    topology
        .bind_cpu(&set, CpuBindingFlags::PROCESS | CpuBindingFlags::STRICT)
        .map_err(|e| MachineError::Binding(format!("cannot bind to cpus {set}: {e}")))?;
    let policy = match placement.memory.mode {
        MemoryMode::Bind => MemoryBindingPolicy::Bind,
        MemoryMode::Interleave => MemoryBindingPolicy::Interleave,
    };
    let nodes = nodeset(&placement.memory.nodes);
    topology
        .bind_memory(&nodes, policy, MemoryBindingFlags::THREAD)
        .map_err(|e| {
            MachineError::Binding(format!(
                "cannot bind memory to nodes {nodes} ({policy:?}): {e}"
            ))
        })?;
    Ok(topology)
}

/// Kernel thread ids of process `pid`, in creation order.
pub fn thread_ids(pid: u32) -> Result<Vec<u32>, MachineError> {
    Ok(threads(pid)?.into_iter().map(|(tid, _)| tid).collect())
}

/// Kernel thread ids and names of process `pid`, in creation order (main thread first); an
/// error when it has none (it is gone, or /proc is missing).
fn threads(pid: u32) -> Result<Vec<(u32, String)>, MachineError> {
    let threads = process::threads(pid);
    if threads.is_empty() {
        return Err(MachineError::Binding(format!(
            "/proc/{pid}/task lists no thread"
        )));
    }
    Ok(threads)
}

/// Which PU (index into the placement) a thread computes on: the main thread and candle's
/// barrier-pool workers form one team (`candle-bp-i` is member i + 1), rayon pools number
/// their threads; other threads (llama.cpp's OpenMP team, whose master is the main thread)
/// go round-robin in creation order from member 1.
fn slot_of(name: &str, is_main: bool, fallback: usize) -> usize {
    if is_main {
        return 0;
    }
    if let Some(i) = name
        .strip_prefix("candle-bp-")
        .and_then(|i| i.parse::<usize>().ok())
    {
        return i + 1;
    }
    if let Some(i) = name
        .strip_prefix("lp-rayon-")
        .and_then(|i| i.parse::<usize>().ok())
    {
        return i;
    }
    fallback
}

/// Pins every thread of process `pid` (this worker, or the torch worker it started) to one
/// PU of the placement.
pub fn pin_threads(
    topology: &Topology,
    placement: &InstancePlacement,
    pid: u32,
) -> Result<(), MachineError> {
    let n = placement.pus.len();
    let mut others = 1;
    for (tid, name) in threads(pid)? {
        let slot = slot_of(&name, tid == pid, others);
        if tid != pid && !name.starts_with("candle-bp-") && !name.starts_with("lp-rayon-") {
            others += 1;
        }
        let pu = placement.pus[slot % n];
        topology
            .bind_process_cpu(tid, &cpuset(&[pu]), CpuBindingFlags::THREAD)
            .map_err(|e| {
                MachineError::Binding(format!("cannot pin thread {tid} ({name}) to cpu {pu}: {e}"))
            })?;
    }
    Ok(())
}

/// Reads back every thread of process `pid` with its allowed CPUs, and the memory policy of
/// this process's main thread (which a process it started inherited).
pub fn read_back(topology: &Topology, pid: u32) -> Result<BindingReadback, MachineError> {
    threads(pid)?;
    let threads = process::thread_bindings(pid);
    let (nodes, policy) = topology
        .memory_binding::<NodeSet>(MemoryBindingFlags::THREAD)
        .map_err(|e| MachineError::Binding(format!("reading the memory policy: {e}")))?;
    Ok(BindingReadback {
        threads,
        memory_policy: policy.map_or("mixed".to_string(), |p| format!("{p:?}").to_lowercase()),
        memory_nodes: nodes.iter_set().map(usize::from).collect(),
    })
}
