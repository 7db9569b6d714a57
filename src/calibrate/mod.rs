//! The machine's ceilings (`llamaperf calibrate`): memory bandwidth for 1..N cores, per NUMA node
//! and for the whole machine, and the GEMM GFLOP/s of the engine's matmul per data type. Saved per
//! machine in the cache, so `sweep` can say how close each run came (its `_pct_roofline`).

pub mod bandwidth;
pub mod compute;
pub mod read_probe;

use crate::child::{JsonChild, Limits};
use crate::machine::placement::{MemoryMode, MemoryPlacement};
use crate::machine::{InstancePlacement, Machine};
use crate::model::{ModelCache, WeightDtype};
use crate::schema::SCHEMA_VERSION;
use bandwidth::Kernel;
use compute::GemmResult;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// Bandwidth of one scope at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandwidthPoint {
    /// `machine`, or `node <os index>`.
    pub scope: String,
    /// Cores (one thread each).
    pub cores: usize,
    /// Read kernel, GB/s.
    pub read_gb_s: f64,
    /// Triad kernel, GB/s (STREAM counting: 3 x 4 bytes per element).
    pub triad_gb_s: f64,
}

/// GEMM throughput at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputePoint {
    /// Cores (one thread each).
    pub cores: usize,
    /// Per data type.
    pub results: Vec<GemmResult>,
}

/// Version of the calibration's kernels. 1: the read kernel streams 4 parts of each thread's
/// buffer at once, prefetched, on huge pages (before, one stream on 4 KiB pages read less than
/// decode could, so decode's share of it was overstated).
pub const KERNELS_VERSION: u32 = 1;

/// A calibration of one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Results schema version.
    pub schema_version: u32,
    /// Version of the measuring kernels ([`KERNELS_VERSION`]; 0 when absent, from before it
    /// was recorded). A saved calibration of older kernels is not reused.
    #[serde(default)]
    pub kernels_version: u32,
    /// Which machine: host, CPU model and PUs.
    pub machine_id: String,
    /// When it was measured, seconds since the Unix epoch.
    pub created_unix_s: f64,
    /// Bytes streamed per thread, far beyond the caches.
    pub buffer_bytes_per_thread: u64,
    /// Memory bandwidth points.
    pub bandwidth: Vec<BandwidthPoint>,
    /// Compute points.
    pub compute: Vec<ComputePoint>,
}

/// What a calibration child measures (JSON on its stdin).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComputeRequest {
    /// PUs to compute on.
    pub pus: Vec<usize>,
    /// Data types to measure.
    pub dtypes: Vec<WeightDtype>,
    /// Passes per data type.
    pub repeats: usize,
}

impl ComputeRequest {
    /// The request's placement: its PUs, memory local to them.
    pub fn placement(&self, machine: &Machine) -> InstancePlacement {
        let mut nodes: Vec<usize> = self
            .pus
            .iter()
            .filter_map(|&p| machine.node_of_pu(p).map(|n| n.os_index))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        InstancePlacement {
            pus: self.pus.clone(),
            memory: MemoryPlacement {
                nodes,
                mode: MemoryMode::Bind,
            },
        }
    }
}

/// What can go wrong while calibrating.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// Binding or topology trouble.
    #[error(transparent)]
    Machine(#[from] crate::machine::MachineError),
    /// A compute child failed.
    #[error("compute calibration on {cores} cores failed: {reason}")]
    Child {
        /// Cores of the child.
        cores: usize,
        /// Its exit status and stderr.
        reason: String,
    },
    /// Reading or writing the calibration file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The identity calibrations are saved under: host, CPU model and PU count.
pub fn machine_id(machine: &Machine) -> String {
    let info = crate::machine::environment::MachineInfo::capture(machine);
    let raw = format!(
        "{}-{}-{}pu",
        info.hostname,
        info.cpu_model,
        machine.allowed_pus.len()
    );
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Bytes each bandwidth thread streams: at least twice the largest L3, a share of 8x the total L3
/// when `threads` run, and 64 MiB — far beyond what caches hold, without needing more memory
/// than large machines have.
pub fn default_buffer_bytes(machine: &Machine, threads: usize) -> usize {
    let largest = machine
        .l3_domains
        .iter()
        .map(|l| l.size_bytes)
        .max()
        .unwrap_or(0) as usize;
    let total: usize = machine
        .l3_domains
        .iter()
        .map(|l| l.size_bytes as usize)
        .sum();
    (2 * largest).max(8 * total / threads.max(1)).max(64 << 20)
}

/// Usable cores of `machine`.
pub fn usable_cores(machine: &Machine) -> usize {
    machine
        .cores
        .iter()
        .filter(|c| !machine.usable_pus(c).is_empty())
        .count()
}

/// Core counts 1, 2, 4, ... up to `max`, and `max` itself.
pub fn default_core_counts(max: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |c| Some(c * 2))
        .take_while(|&c| c < max)
        .collect();
    counts.push(max);
    counts
}

/// Usable cores of `machine` in compact order, restricted to `node` if given: their first PU.
fn compact_pus(machine: &Machine, node: Option<usize>) -> Vec<usize> {
    let mut cores: Vec<_> = machine
        .cores
        .iter()
        .filter(|c| node.is_none() || c.numa_node == node)
        .filter_map(|c| {
            machine
                .usable_pus(c)
                .first()
                .map(|&p| (c.package, c.numa_node, c.l3, c.index, p))
        })
        .collect();
    cores.sort_unstable();
    cores.into_iter().map(|c| c.4).collect()
}

fn run_compute_child(request: &ComputeRequest) -> Result<Vec<GemmResult>, CalibrationError> {
    let cores = request.pus.len();
    JsonChild::spawn("calibrate-compute", "calibration child", cores, request)
        .and_then(|mut child| child.finish(Limits::none()))
        .map_err(|e| CalibrationError::Child {
            cores,
            reason: e.to_string(),
        })
}

/// Passes over the buffers per bandwidth measurement, of which the best counts: the ceiling is
/// what the memory gave at its best, and a shared host's bandwidth moves from pass to pass (with
/// 3 passes, decode later streamed more than the ceiling).
const BANDWIDTH_PASSES: usize = 10;

/// Measures `machine` at `core_counts` (bandwidth per node and for the machine; GEMM for
/// `dtypes`), with buffers of `buffer_bytes_per_thread`. `progress` hears each step.
pub fn calibrate(
    machine: &Machine,
    core_counts: &[usize],
    dtypes: &[WeightDtype],
    buffer_bytes_per_thread: usize,
    progress: &mut dyn FnMut(&str),
) -> Result<Calibration, CalibrationError> {
    let mut scopes: Vec<(String, Option<usize>)> = vec![("machine".into(), None)];
    if machine.numa_nodes.len() > 1 {
        scopes.extend(
            machine
                .numa_nodes
                .iter()
                .map(|n| (format!("node {}", n.os_index), Some(n.os_index))),
        );
    }
    let mut bandwidth = Vec::new();
    for (scope, node) in &scopes {
        let pus = compact_pus(machine, *node);
        let nodes: Vec<usize> = match node {
            Some(n) => vec![*n],
            None => machine.numa_nodes.iter().map(|n| n.os_index).collect(),
        };
        for &cores in core_counts.iter().filter(|&&c| c <= pus.len()) {
            progress(&format!("bandwidth, {scope}, {cores} cores"));
            let pus = &pus[..cores];
            bandwidth.push(BandwidthPoint {
                scope: scope.clone(),
                cores,
                read_gb_s: bandwidth::measure(
                    Kernel::Read,
                    pus,
                    &nodes,
                    buffer_bytes_per_thread,
                    BANDWIDTH_PASSES,
                )?,
                triad_gb_s: bandwidth::measure(
                    Kernel::Triad,
                    pus,
                    &nodes,
                    buffer_bytes_per_thread,
                    BANDWIDTH_PASSES,
                )?,
            });
        }
    }
    let all = compact_pus(machine, None);
    let mut compute = Vec::new();
    for &cores in core_counts.iter().filter(|&&c| c <= all.len()) {
        progress(&format!("GEMM, {cores} cores"));
        let request = ComputeRequest {
            pus: all[..cores].to_vec(),
            dtypes: dtypes.to_vec(),
            repeats: 3,
        };
        compute.push(ComputePoint {
            cores,
            results: run_compute_child(&request)?,
        });
    }
    Ok(Calibration {
        schema_version: SCHEMA_VERSION,
        kernels_version: KERNELS_VERSION,
        machine_id: machine_id(machine),
        created_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        buffer_bytes_per_thread: buffer_bytes_per_thread as u64,
        bandwidth,
        compute,
    })
}

impl Calibration {
    /// Where the calibration of `machine_id` is kept.
    pub fn path(cache: &ModelCache, machine_id: &str) -> PathBuf {
        cache
            .root()
            .join("calibration")
            .join(format!("{machine_id}.json"))
    }

    /// Saves this calibration as the machine's latest.
    pub fn save(&self, cache: &ModelCache) -> Result<PathBuf, CalibrationError> {
        let path = Self::path(cache, &self.machine_id);
        let io = |source| CalibrationError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
        let mut tmp =
            tempfile::NamedTempFile::new_in(path.parent().expect("has a parent")).map_err(io)?;
        tmp.write_all(&serde_json::to_vec_pretty(self).expect("serializes"))
            .map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(path)
    }

    /// The latest saved calibration of `machine`, if any (of this schema version, measured by
    /// these kernels).
    pub fn latest(cache: &ModelCache, machine: &Machine) -> Option<Self> {
        let text = std::fs::read_to_string(Self::path(cache, &machine_id(machine))).ok()?;
        serde_json::from_str::<Calibration>(&text)
            .ok()
            .filter(|c| c.schema_version == SCHEMA_VERSION && c.kernels_version == KERNELS_VERSION)
    }

    /// Read bandwidth ceiling for a run on `cores` cores: the best machine-wide point measured
    /// with at most that many cores (the smallest point if none), GB/s.
    pub fn read_gb_s(&self, cores: usize) -> Option<f64> {
        let machine: Vec<&BandwidthPoint> = self
            .bandwidth
            .iter()
            .filter(|b| b.scope == "machine")
            .collect();
        machine
            .iter()
            .filter(|b| b.cores <= cores)
            .map(|b| b.read_gb_s)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            .or_else(|| machine.iter().min_by_key(|b| b.cores).map(|b| b.read_gb_s))
    }

    /// GEMM ceiling of `dtype` on `cores` cores, like [`Self::read_gb_s`], GFLOP/s.
    pub fn gflop_s(&self, dtype: WeightDtype, cores: usize) -> Option<f64> {
        let of = |p: &ComputePoint| {
            p.results
                .iter()
                .find(|r| r.dtype == dtype)
                .map(|r| r.gflop_s)
        };
        self.compute
            .iter()
            .filter(|p| p.cores <= cores)
            .filter_map(of)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            .or_else(|| self.compute.iter().min_by_key(|p| p.cores).and_then(of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scope: &str, cores: usize, read: f64) -> BandwidthPoint {
        BandwidthPoint {
            scope: scope.into(),
            cores,
            read_gb_s: read,
            triad_gb_s: read,
        }
    }

    #[test]
    fn only_calibrations_of_these_kernels_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::at(dir.path());
        let machine = Machine::load(&crate::machine::TopologySource::Synthetic(
            "core:2 pu:1".into(),
        ))
        .unwrap();
        let mut c = Calibration {
            schema_version: SCHEMA_VERSION,
            kernels_version: KERNELS_VERSION,
            machine_id: machine_id(&machine),
            created_unix_s: 0.0,
            buffer_bytes_per_thread: 1,
            bandwidth: vec![point("machine", 1, 20.0)],
            compute: Vec::new(),
        };
        let path = c.save(&cache).unwrap();
        assert_eq!(Calibration::latest(&cache, &machine), Some(c.clone()));
        // a calibration saved before the version was recorded: the field is absent
        let mut old = serde_json::to_value(&c).unwrap();
        old.as_object_mut().unwrap().remove("kernels_version");
        std::fs::write(&path, old.to_string()).unwrap();
        assert_eq!(Calibration::latest(&cache, &machine), None);
        c.kernels_version = KERNELS_VERSION + 1;
        c.save(&cache).unwrap();
        assert_eq!(Calibration::latest(&cache, &machine), None);
    }

    #[test]
    fn ceilings_come_from_points_with_at_most_the_run_s_cores() {
        let c = Calibration {
            schema_version: SCHEMA_VERSION,
            kernels_version: KERNELS_VERSION,
            machine_id: "m".into(),
            created_unix_s: 0.0,
            buffer_bytes_per_thread: 1,
            bandwidth: vec![
                point("machine", 1, 20.0),
                point("machine", 4, 60.0),
                point("machine", 8, 55.0),
                point("node 0", 8, 99.0),
            ],
            compute: vec![ComputePoint {
                cores: 2,
                results: vec![GemmResult {
                    dtype: WeightDtype::Q4K,
                    gflop_s: 100.0,
                }],
            }],
        };
        assert_eq!(c.read_gb_s(1), Some(20.0));
        assert_eq!(c.read_gb_s(6), Some(60.0));
        assert_eq!(c.read_gb_s(16), Some(60.0));
        assert_eq!(
            c.gflop_s(WeightDtype::Q4K, 1),
            Some(100.0),
            "below the smallest point"
        );
        assert_eq!(c.gflop_s(WeightDtype::F32, 4), None);
        assert_eq!(default_core_counts(12), [1, 2, 4, 8, 12]);
        assert_eq!(default_core_counts(1), [1]);
    }
}
