//! What a results folder records about the machine and the software: `machine.json`.

use super::memory::meminfo_bytes;
use super::topology::Machine;
use crate::schema::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};

/// CPU flags worth recording for inference kernels, when the CPU has them.
const INTERESTING_FLAGS: [&str; 12] = [
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
];

/// The machine and software a sweep ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Version of the results schema.
    pub schema_version: u32,
    /// Host name.
    pub hostname: String,
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// SIMD flags the CPU has, of those that matter for the kernels.
    pub cpu_flags: Vec<String>,
    /// Kernel release.
    pub kernel: String,
    /// Frequency governor of cpu0, or `unavailable` (common in VMs).
    pub governor: String,
    /// Transparent hugepage mode (the bracketed value of `enabled`).
    pub transparent_hugepages: String,
    /// Total memory, bytes.
    pub mem_total_bytes: u64,
    /// Available memory when the sweep started, bytes.
    pub mem_available_bytes: u64,
    /// Whether SMT is active for this process.
    pub smt_active: bool,
    /// NUMA nodes per package.
    pub nps: Option<usize>,
    /// llamaperf version.
    pub llamaperf_version: String,
    /// Git commit of the llamaperf build (`-dirty` with local changes).
    pub git_commit: String,
    /// rustc that built it.
    pub rustc_version: String,
    /// candle-core version.
    pub candle_version: String,
    /// The topology.
    pub topology: Machine,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// This machine's host name (`/proc/sys/kernel/hostname`), or `unknown`.
pub fn hostname() -> String {
    read("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into())
}

impl MachineInfo {
    /// Captures this machine's environment around `topology`.
    pub fn capture(topology: &Machine) -> Self {
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let flags = field("flags").unwrap_or_default();
        let meminfo = read("/proc/meminfo").unwrap_or_default();
        let thp = read("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        MachineInfo {
            schema_version: SCHEMA_VERSION,
            hostname: hostname(),
            cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
            cpu_flags: INTERESTING_FLAGS
                .iter()
                .filter(|f| flags.split_whitespace().any(|g| g == **f))
                .map(|f| f.to_string())
                .collect(),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
                .unwrap_or_else(|| "unavailable".into()),
            transparent_hugepages: thp
                .split_whitespace()
                .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))
                .unwrap_or("unavailable")
                .to_string(),
            mem_total_bytes: meminfo_bytes(&meminfo, "MemTotal:").unwrap_or(0),
            mem_available_bytes: meminfo_bytes(&meminfo, "MemAvailable:").unwrap_or(0),
            smt_active: topology.smt_active,
            nps: topology.nps,
            llamaperf_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("LLAMAPERF_GIT_COMMIT").to_string(),
            rustc_version: env!("LLAMAPERF_RUSTC_VERSION").to_string(),
            candle_version: env!("LLAMAPERF_CANDLE_VERSION").to_string(),
            topology: topology.clone(),
        }
    }
}
