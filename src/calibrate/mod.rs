//! The machine's ceilings (`llamaperf calibrate`): memory bandwidth for 1..N cores, per NUMA node,
//! per set of L3 domains and for the whole machine; the GEMM GFLOP/s of the engine's matmul per
//! data type; the instruction set's peak rates. Saved per machine in the cache, so `sweep` can
//! say how close each run came (its `_pct_roofline` and `_pct_peak`).

pub mod bandwidth;
mod ceilings;
pub mod compute;
pub mod domains;
pub mod gemm_checks;
pub mod peak;
mod pinned;
pub mod read_probe;

use crate::child::{JsonChild, Limits};
use crate::interrupt::{self, Interrupted};
use crate::machine::placement::{MemoryMode, MemoryPlacement};
use crate::machine::{InstancePlacement, Machine};
use crate::model::{ModelCache, WeightDtype};
use crate::schema::SCHEMA_VERSION;
use bandwidth::Kernel;
use compute::GemmResult;
use domains::L3ReadPoint;
use llamaperf_os::lock::FileLock;
use peak::PeakPoint;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// Bandwidth of one scope at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandwidthPoint {
    /// `machine`, or `node <os index>`.
    pub scope: String,
    /// Physical cores.
    pub cores: usize,
    /// Whether every core computed on all its usable PUs (SMT siblings), one thread each;
    /// else on one PU per core. Absent (false) in calibrations from before SMT points.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub smt: bool,
    /// Read kernel, GB/s.
    pub read_gb_s: f64,
    /// Triad kernel, GB/s (STREAM counting: 3 x 4 bytes per element).
    pub triad_gb_s: f64,
}

/// GEMM throughput at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputePoint {
    /// Physical cores.
    pub cores: usize,
    /// Whether every core computed on all its usable PUs (as [`BandwidthPoint::smt`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub smt: bool,
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
    /// The instruction set's peak rates per core count; absent in calibrations from before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peak: Vec<PeakPoint>,
    /// Read bandwidth per set of L3 domains; absent in calibrations from before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l3_read: Vec<L3ReadPoint>,
}

/// What a calibration child measures (JSON on its stdin).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComputeRequest {
    /// PUs to compute on.
    pub pus: Vec<usize>,
    /// Data types to measure.
    pub dtypes: Vec<WeightDtype>,
    /// Timed passes per data type, after a warm-up.
    pub passes: usize,
}

impl ComputeRequest {
    /// The request's placement: its PUs, memory local to them.
    pub fn placement(&self, machine: &Machine) -> InstancePlacement {
        InstancePlacement {
            pus: self.pus.clone(),
            memory: MemoryPlacement {
                nodes: local_nodes(machine, &self.pus),
                mode: MemoryMode::Bind,
            },
        }
    }
}

/// The NUMA nodes (OS indices) of `pus` on `machine`, sorted, each once.
pub fn local_nodes(machine: &Machine, pus: &[usize]) -> Vec<usize> {
    let mut nodes: Vec<usize> = pus
        .iter()
        .filter_map(|&p| machine.node_of_pu(p).map(|n| n.os_index))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
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
    /// SIGINT or SIGTERM arrived between two measurements.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// Another process calibrates this machine.
    #[error("this machine is being calibrated by {holder}: wait for it to end (two calibrations at once measure each other)")]
    Locked {
        /// Who calibrates it (`pid 123 on host h`).
        holder: String,
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

/// One measurement of a calibration: its physical cores, whether on their SMT siblings too,
/// and the PUs (OS indices) it runs a thread on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationPoint {
    /// Physical cores.
    pub cores: usize,
    /// Whether the cores' SMT siblings compute too.
    pub smt: bool,
    /// One thread per PU.
    pub pus: Vec<usize>,
}

/// The points to measure of `machine`, restricted to `node` if given: the first `n` usable
/// cores in compact order for each `n` of `core_counts`, on one PU each, and again on all
/// their usable PUs where some of them have siblings.
pub fn calibration_points(
    machine: &Machine,
    node: Option<usize>,
    core_counts: &[usize],
) -> Vec<CalibrationPoint> {
    let mut cores: Vec<_> = machine
        .cores
        .iter()
        .filter(|c| node.is_none() || c.numa_node == node)
        .map(|c| {
            (
                (c.package, c.numa_node, c.l3, c.index),
                machine.usable_pus(c),
            )
        })
        .filter(|(_, pus)| !pus.is_empty())
        .collect();
    cores.sort_unstable();
    let mut points = Vec::new();
    for &n in core_counts.iter().filter(|&&n| n <= cores.len()) {
        let chosen = &cores[..n];
        points.push(CalibrationPoint {
            cores: n,
            smt: false,
            pus: chosen.iter().map(|(_, pus)| pus[0]).collect(),
        });
        if chosen.iter().any(|(_, pus)| pus.len() > 1) {
            points.push(CalibrationPoint {
                cores: n,
                smt: true,
                pus: chosen.iter().flat_map(|(_, pus)| pus.clone()).collect(),
            });
        }
    }
    points
}

/// Reports the next measurement to `progress`, unless SIGINT or SIGTERM arrived.
fn step(progress: &mut dyn FnMut(&str), what: &str) -> Result<(), CalibrationError> {
    interrupt::check()?;
    progress(what);
    Ok(())
}

/// Measures `request` in a child process bound to its PUs; SIGINT or SIGTERM stops it.
fn run_compute_child(request: &ComputeRequest) -> Result<Vec<GemmResult>, CalibrationError> {
    let cores = request.pus.len();
    JsonChild::spawn("calibrate-compute", "calibration child", cores, request)
        .and_then(|mut child| {
            child.finish(Limits {
                deadline: None,
                interrupted: interrupt::flag(),
            })
        })
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
        let nodes: Vec<usize> = match node {
            Some(n) => vec![*n],
            None => machine.numa_nodes.iter().map(|n| n.os_index).collect(),
        };
        for point in calibration_points(machine, *node, core_counts) {
            let smt = if point.smt { " with SMT" } else { "" };
            step(
                progress,
                &format!("bandwidth, {scope}, {} cores{smt}", point.cores),
            )?;
            let measure = |kernel| {
                bandwidth::measure(
                    kernel,
                    &point.pus,
                    &nodes,
                    buffer_bytes_per_thread,
                    BANDWIDTH_PASSES,
                )
            };
            bandwidth.push(BandwidthPoint {
                scope: scope.clone(),
                cores: point.cores,
                smt: point.smt,
                read_gb_s: measure(Kernel::Read)?,
                triad_gb_s: measure(Kernel::Triad)?,
            });
        }
    }
    let mut l3_read = Vec::new();
    if let Some(why) = domains::limitation(machine) {
        progress(why);
    }
    for set in domains::domain_sets(machine) {
        step(
            progress,
            &format!(
                "read, {} L3 domains {} ({} cores)",
                set.l3.len(),
                set.placement,
                set.pus.len()
            ),
        )?;
        l3_read.push(L3ReadPoint {
            placement: set.placement,
            domains: set.l3.len(),
            numa_nodes: set.nodes.len(),
            cores: set.pus.len(),
            read_gb_s: bandwidth::measure(
                Kernel::Read,
                &set.pus,
                &set.nodes,
                buffer_bytes_per_thread,
                BANDWIDTH_PASSES,
            )?,
            l3: set.l3,
        });
    }
    let mut compute: Vec<ComputePoint> = Vec::new();
    let mut peak = Vec::new();
    for point in calibration_points(machine, None, core_counts) {
        let smt = if point.smt { " with SMT" } else { "" };
        let label = format!("{} cores{smt}", point.cores);
        step(progress, &format!("ISA peak, {label}"))?;
        peak.push(PeakPoint {
            cores: point.cores,
            smt: point.smt,
            results: peak::measure(&point.pus, &local_nodes(machine, &point.pus))?,
        });
        let results = measure_gemm(&point, dtypes, &compute, progress)?;
        compute.push(ComputePoint {
            cores: point.cores,
            smt: point.smt,
            results,
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
        peak,
        l3_read,
    })
}

/// GEMM of `dtypes` at `point`, checked against the 1-core results among `so_far` (the
/// compute points measured before it).
fn measure_gemm(
    point: &CalibrationPoint,
    dtypes: &[WeightDtype],
    so_far: &[ComputePoint],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<GemmResult>, CalibrationError> {
    let smt = if point.smt { " with SMT" } else { "" };
    let label = format!("{} cores{smt}", point.cores);
    step(progress, &format!("GEMM, {label}"))?;
    let one_core = so_far
        .iter()
        .find(|p| p.cores == 1 && p.smt == point.smt && point.cores > 1)
        .map(|p| p.results.clone())
        .unwrap_or_default();
    gemm_checks::measure_checked(&point.pus, dtypes, &one_core, &mut |why| {
        progress(&format!("GEMM, {label}: {why}"))
    })
}

/// Measures GEMM of each data type of `dtypes` that a compute point of `calibration` lacks, at
/// that point's cores, and adds it there; the bandwidth points stay as they were. Returns
/// whether anything was added (a sweep of a data type its saved calibration did not measure
/// would otherwise get no compute ceiling).
pub fn complete_compute(
    calibration: &mut Calibration,
    machine: &Machine,
    dtypes: &[WeightDtype],
    progress: &mut dyn FnMut(&str),
) -> Result<bool, CalibrationError> {
    let core_counts: Vec<usize> = calibration.compute.iter().map(|p| p.cores).collect();
    let mut added = false;
    for point in calibration_points(machine, None, &core_counts) {
        let Some(i) = calibration
            .compute
            .iter()
            .position(|p| p.cores == point.cores && p.smt == point.smt)
        else {
            continue;
        };
        let have = &calibration.compute[i].results;
        let missing: Vec<WeightDtype> = dtypes
            .iter()
            .copied()
            .filter(|d| !have.iter().any(|r| r.dtype == *d))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let results = measure_gemm(&point, &missing, &calibration.compute, progress)?;
        calibration.compute[i].results.extend(results);
        added = true;
    }
    Ok(added)
}

impl Calibration {
    /// Where the calibration of `machine_id` is kept.
    pub fn path(cache: &ModelCache, machine_id: &str) -> PathBuf {
        cache
            .root()
            .join("calibration")
            .join(format!("{machine_id}.json"))
    }

    /// Locks the calibration of `machine` in `cache` (`calibration/<machine>.json.lock`) for
    /// this process, to hold while it measures and saves one; refused while another process
    /// holds it.
    pub fn lock(cache: &ModelCache, machine: &Machine) -> Result<FileLock, CalibrationError> {
        let path = Self::path(cache, &machine_id(machine)).with_extension("json.lock");
        let io = |source| CalibrationError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
        FileLock::try_acquire(&path)
            .map_err(io)?
            .map_err(|holder| CalibrationError::Locked { holder })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scope: &str, cores: usize, read: f64) -> BandwidthPoint {
        BandwidthPoint {
            scope: scope.into(),
            cores,
            smt: false,
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
            peak: Vec::new(),
            l3_read: Vec::new(),
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
    fn calibration_measures_smt_siblings_where_the_machine_has_them() {
        let m = Machine::load(&crate::machine::TopologySource::Synthetic(
            "pack:2 numa:4 l3:3 core:8 pu:2".into(),
        ))
        .unwrap();
        let points = calibration_points(&m, None, &[1, 2, 192]);
        let keys: Vec<(usize, bool, usize)> = points
            .iter()
            .map(|p| (p.cores, p.smt, p.pus.len()))
            .collect();
        assert_eq!(
            keys,
            [
                (1, false, 1),
                (1, true, 2),
                (2, false, 2),
                (2, true, 4),
                (192, false, 192),
                (192, true, 384)
            ]
        );
        // the SMT point adds the siblings of the same cores
        let (one, both) = (&points[2], &points[3]);
        let shape = m.shape_of(&both.pus);
        assert_eq!((shape.cores, shape.smt), (2, true));
        assert!(one.pus.iter().all(|p| both.pus.contains(p)));
        assert_eq!(m.shape_of(&one.pus).cores, 2);
        // on one node: its 24 cores at most
        let node = m.numa_nodes[1].os_index;
        let points = calibration_points(&m, Some(node), &[4, 24, 48]);
        assert_eq!(points.len(), 4);
        assert!(points
            .iter()
            .flat_map(|p| &p.pus)
            .all(|&p| m.node_of_pu(p).is_some_and(|n| n.os_index == node)));
        // no siblings: no SMT points
        let flat = Machine::load(&crate::machine::TopologySource::Synthetic(
            "pack:1 core:4 pu:1".into(),
        ))
        .unwrap();
        let points = calibration_points(&flat, None, &[1, 4]);
        assert!(points.iter().all(|p| !p.smt), "{points:?}");
        assert_eq!(points.len(), 2);
    }
}
