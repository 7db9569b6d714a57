//! Which machine a result was measured on, as far as trends are concerned: CPU model, cores,
//! memory and kernel. Two results of the same identity are comparable; the host name is not
//! part of it (CI runners of one kind come and go under new names), and memory is rounded to
//! GiB (the kernel's reservations move the total by a few MiB between boots).

use crate::machine::environment::MachineInfo;
use crate::results::store::{host_folder, HOSTS_DIR, MACHINE_FILE};
use crate::results::{ResultsDir, ResultsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The identity of a machine in the history.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineIdentity {
    /// CPU model name, as `/proc/cpuinfo` gives it.
    pub cpu_model: String,
    /// Physical cores of the machine (its topology).
    pub cores: usize,
    /// Total memory, GiB, rounded.
    pub mem_gib: u64,
    /// Kernel release.
    pub kernel: String,
}

impl MachineIdentity {
    /// The identity of the machine `info` describes.
    pub fn of(info: &MachineInfo) -> Self {
        MachineIdentity {
            cpu_model: info.cpu_model.clone(),
            cores: info.topology.cores.len(),
            mem_gib: (info.mem_total_bytes as f64 / (1u64 << 30) as f64).round() as u64,
            kernel: info.kernel.clone(),
        }
    }
}

impl fmt::Display for MachineIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} cores, {} GiB, kernel {}",
            self.cpu_model, self.cores, self.mem_gib, self.kernel
        )
    }
}

/// Every host of `dir` with its `machine.json` (a merged folder keeps one per host, under
/// `hosts/`), by host name.
pub fn machines_of(dir: &ResultsDir) -> Result<BTreeMap<String, MachineInfo>, ResultsError> {
    if !dir.is_merged() {
        let info = dir.machine()?;
        return Ok(dir
            .hosts()
            .iter()
            .map(|h| (h.host.clone(), info.clone()))
            .collect());
    }
    dir.hosts()
        .iter()
        .map(|h| {
            let path = dir
                .path()
                .join(HOSTS_DIR)
                .join(host_folder(&h.host))
                .join(MACHINE_FILE);
            let text = std::fs::read_to_string(&path).map_err(|source| ResultsError::Io {
                path: path.clone(),
                source,
            })?;
            let info = serde_json::from_str(&text).map_err(|e| ResultsError::Corrupt {
                file: path,
                line: e.line(),
                reason: e.to_string(),
            })?;
            Ok((h.host.clone(), info))
        })
        .collect()
}
