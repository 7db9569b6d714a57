//! The machine's ceilings (`llamaperf calibrate`): memory bandwidth for 1..N cores, per NUMA node,
//! per set of L3 domains and for the whole machine; the GEMM GFLOP/s of the engine's matmul per
//! data type; the instruction set's peak rates. Saved per machine in the cache, so `sweep` can
//! say how close each run came (its `_pct_roofline` and `_pct_peak`).

pub mod bandwidth;
pub mod compute;
pub mod domains;
pub mod gemm_checks;
pub mod peak;
mod pinned;
pub mod read_probe;

use crate::child::{JsonChild, Limits};
use crate::machine::placement::{MemoryMode, MemoryPlacement};
use crate::machine::PlacementShape;
use crate::machine::{InstancePlacement, Machine};
use crate::model::{ModelCache, WeightDtype};
use crate::schema::SCHEMA_VERSION;
use bandwidth::Kernel;
use compute::{GemmFlag, GemmResult};
use domains::L3ReadPoint;
use llamaperf_engine::peak::PeakKernel;
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

/// Measures `request` in a child process bound to its PUs.
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
        let nodes: Vec<usize> = match node {
            Some(n) => vec![*n],
            None => machine.numa_nodes.iter().map(|n| n.os_index).collect(),
        };
        for point in calibration_points(machine, *node, core_counts) {
            let smt = if point.smt { " with SMT" } else { "" };
            progress(&format!("bandwidth, {scope}, {} cores{smt}", point.cores));
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
        progress(&format!(
            "read, {} L3 domains {} ({} cores)",
            set.l3.len(),
            set.placement,
            set.pus.len()
        ));
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
        progress(&format!("ISA peak, {label}"));
        let placement = ComputeRequest {
            pus: point.pus.clone(),
            dtypes: Vec::new(),
            passes: 0,
        }
        .placement(machine);
        peak.push(PeakPoint {
            cores: point.cores,
            smt: point.smt,
            results: peak::measure(&point.pus, &placement.memory.nodes)?,
        });
        progress(&format!("GEMM, {label}"));
        let one_core = compute
            .iter()
            .find(|p| p.cores == 1 && p.smt == point.smt && point.cores > 1)
            .map(|p| p.results.clone())
            .unwrap_or_default();
        let results = gemm_checks::measure_checked(&point.pus, dtypes, &one_core, &mut |why| {
            progress(&format!("GEMM, {label}: {why}"))
        })?;
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

    /// Read bandwidth ceiling for a run on `cores` physical cores, on their SMT siblings too
    /// when `smt`: the best machine-wide point of that SMT state measured with at most that
    /// many cores (the smallest point if none), GB/s. Without points of that SMT state (a
    /// machine without siblings, a calibration from before SMT points) those of the other.
    pub fn read_gb_s(&self, cores: usize, smt: bool) -> Option<f64> {
        let machine = self.bandwidth.iter().filter(|b| b.scope == "machine");
        let points: Vec<(usize, bool, f64)> =
            machine.map(|b| (b.cores, b.smt, b.read_gb_s)).collect();
        ceiling(&points, cores, smt)
    }

    /// Read bandwidth ceiling of a run of `shape`, GB/s: with a point of the L3 domains it
    /// spans (as many domains, over as many NUMA nodes where measured, else the best of that
    /// many), that point's read, at most the run's cores times one core's read (a run on a
    /// few cores of a domain cannot use all of it); else [`Self::read_gb_s`] of its cores.
    pub fn read_ceiling(&self, shape: &PlacementShape) -> Option<f64> {
        let spanned: Vec<&L3ReadPoint> = self
            .l3_read
            .iter()
            .filter(|p| shape.l3_domains > 0 && p.domains == shape.l3_domains)
            .collect();
        let same_nodes = spanned.iter().any(|p| p.numa_nodes == shape.numa_nodes);
        let domains = spanned
            .iter()
            .filter(|p| !same_nodes || p.numa_nodes == shape.numa_nodes)
            .map(|p| p.read_gb_s)
            .reduce(f64::max);
        let Some(domains) = domains else {
            return self.read_gb_s(shape.cores, shape.smt);
        };
        Some(
            self.read_gb_s(1, shape.smt)
                .map_or(domains, |one| domains.min(one * shape.cores as f64)),
        )
    }

    /// The instruction set's peak of `kernel` on `cores` cores, 10^9 operations per second:
    /// `cores` times the best per-core rate of the points of that SMT state (of the other state
    /// when there are none). An issue rate times cores: a point of several cores that a
    /// shared host slowed must not lower the roof below what a quieter moment reaches.
    pub fn peak_gop_s(&self, kernel: PeakKernel, cores: usize, smt: bool) -> Option<f64> {
        let points: Vec<(usize, bool, f64)> = self
            .peak
            .iter()
            .filter_map(|p| {
                let r = p.results.iter().find(|r| r.kernel == kernel)?;
                Some((p.cores, p.smt, r.gop_s))
            })
            .collect();
        let state = if points.iter().any(|p| p.1 == smt) {
            smt
        } else {
            !smt
        };
        points
            .iter()
            .filter(|p| p.1 == state && p.0 > 0)
            .map(|p| p.2 / p.0 as f64)
            .reduce(f64::max)
            .map(|per_core| per_core * cores as f64)
    }

    /// The hard roof of prefill of `dtype` on `cores` cores, GFLOP/s: the peak of the
    /// instruction its products use ([`roof_kernels`]; the first the calibration has).
    pub fn isa_peak_gflop_s(&self, dtype: WeightDtype, cores: usize, smt: bool) -> Option<f64> {
        roof_kernels(dtype)
            .iter()
            .find_map(|&k| self.peak_gop_s(k, cores, smt))
    }

    /// GEMM ceiling of `dtype` on `cores` cores, like [`Self::read_gb_s`], GFLOP/s. A point
    /// flagged below one core counts as its cores times the one-core figure (linear scaling,
    /// which no GEMM passes): a calibration that others disturbed makes the ceiling loose,
    /// never lower than what a quiet moment reaches.
    pub fn gflop_s(&self, dtype: WeightDtype, cores: usize, smt: bool) -> Option<f64> {
        let result = |p: &ComputePoint| p.results.iter().find(|r| r.dtype == dtype).cloned();
        let points: Vec<(usize, bool, f64)> = self
            .compute
            .iter()
            .filter_map(|p| {
                let r = result(p)?;
                let one_core = self
                    .compute
                    .iter()
                    .filter(|o| o.cores == 1 && o.smt == p.smt)
                    .find_map(result)
                    .filter(|_| r.flags.contains(&GemmFlag::BelowOneCore));
                let value = one_core.map_or(r.gflop_s, |o| o.gflop_s * p.cores as f64);
                Some((p.cores, p.smt, value))
            })
            .collect();
        ceiling(&points, cores, smt)
    }
}

/// The instructions that bound prefill of `dtype`, the engine's first: 8-bit dots for the
/// quantized types (their activations are quantized to 8 bits), BF16 dots (or FMA, where the
/// weights are widened) for BF16, single-precision FMA for F32 and F16.
pub fn roof_kernels(dtype: WeightDtype) -> &'static [PeakKernel] {
    match dtype {
        WeightDtype::F32 | WeightDtype::F16 => &[PeakKernel::F32Fma],
        WeightDtype::Bf16 => &[PeakKernel::Bf16Dot, PeakKernel::F32Fma],
        WeightDtype::Q8_0
        | WeightDtype::Q4_0
        | WeightDtype::Q4_1
        | WeightDtype::Q4K
        | WeightDtype::Q6K => &[PeakKernel::Int8Dot],
    }
}

/// The best value of the `(cores, smt, value)` points of SMT state `smt` (of the other state
/// when there are none) with at most `cores` cores; the value of the smallest point if none.
fn ceiling(points: &[(usize, bool, f64)], cores: usize, smt: bool) -> Option<f64> {
    let state = if points.iter().any(|p| p.1 == smt) {
        smt
    } else {
        !smt
    };
    let points: Vec<&(usize, bool, f64)> = points.iter().filter(|p| p.1 == state).collect();
    points
        .iter()
        .filter(|p| p.0 <= cores)
        .map(|p| p.2)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .or_else(|| points.iter().min_by_key(|p| p.0).map(|p| p.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemm(dtype: WeightDtype, gflop_s: f64) -> GemmResult {
        GemmResult {
            dtype,
            gflop_s,
            spread_pct: None,
            flags: Vec::new(),
        }
    }

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
                smt: false,
                results: vec![gemm(WeightDtype::Q4K, 100.0)],
            }],
            peak: Vec::new(),
            l3_read: Vec::new(),
        };
        assert_eq!(c.read_gb_s(1, false), Some(20.0));
        assert_eq!(c.read_gb_s(6, false), Some(60.0));
        assert_eq!(c.read_gb_s(16, false), Some(60.0));
        assert_eq!(
            c.gflop_s(WeightDtype::Q4K, 1, false),
            Some(100.0),
            "below the smallest point"
        );
        assert_eq!(c.gflop_s(WeightDtype::F32, 4, false), None);
        // without SMT points (no siblings, or an old file), SMT runs get those of their cores
        assert_eq!(c.read_gb_s(4, true), Some(60.0));
        assert_eq!(default_core_counts(12), [1, 2, 4, 8, 12]);
        assert_eq!(default_core_counts(1), [1]);
    }

    #[test]
    fn smt_runs_are_held_against_the_points_of_their_cores_with_siblings() {
        let smt = |cores, read| BandwidthPoint {
            smt: true,
            ..point("machine", cores, read)
        };
        let c = Calibration {
            schema_version: SCHEMA_VERSION,
            kernels_version: KERNELS_VERSION,
            machine_id: "m".into(),
            created_unix_s: 0.0,
            buffer_bytes_per_thread: 1,
            bandwidth: vec![
                point("machine", 1, 20.0),
                smt(1, 24.0),
                point("machine", 2, 35.0),
                smt(2, 41.0),
                point("machine", 4, 60.0),
            ],
            compute: vec![
                ComputePoint {
                    cores: 2,
                    smt: false,
                    results: vec![gemm(WeightDtype::Q4K, 100.0)],
                },
                ComputePoint {
                    cores: 2,
                    smt: true,
                    results: vec![gemm(WeightDtype::Q4K, 130.0)],
                },
            ],
            peak: Vec::new(),
            l3_read: Vec::new(),
        };
        // 2 cores with SMT (4 PUs): the 2-core SMT point, not the 4-core one
        assert_eq!(c.read_gb_s(2, true), Some(41.0));
        assert_eq!(c.read_gb_s(2, false), Some(35.0));
        assert_eq!(c.read_gb_s(4, true), Some(41.0));
        assert_eq!(c.read_gb_s(4, false), Some(60.0));
        assert_eq!(c.gflop_s(WeightDtype::Q4K, 2, true), Some(130.0));
        assert_eq!(c.gflop_s(WeightDtype::Q4K, 8, false), Some(100.0));
        // a calibration file from before SMT points reads, its points without SMT
        let mut old = serde_json::to_value(&c).unwrap();
        for b in old["bandwidth"].as_array_mut().unwrap() {
            b.as_object_mut().unwrap().remove("smt");
        }
        let old: Calibration = serde_json::from_value(old).unwrap();
        assert!(old.bandwidth.iter().all(|b| !b.smt));
        let written = serde_json::to_string(&point("machine", 1, 1.0)).unwrap();
        assert!(!written.contains("smt"), "{written}");
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

    #[test]
    fn a_run_s_read_ceiling_is_that_of_the_l3_domains_its_placement_spans() {
        use crate::machine::placement::{PlacementPolicy, PlacementRequest};
        let m = Machine::load(&crate::machine::TopologySource::Synthetic(
            "pack:2 numa:4 l3:3 core:8 pu:2".into(),
        ))
        .unwrap();
        // the sets calibrate plans on this machine, with a CCD reading 40 GB/s, 15 per core,
        // and a NUMA node's memory 90 GB/s
        let l3_read: Vec<L3ReadPoint> = domains::domain_sets(&m)
            .into_iter()
            .map(|s| L3ReadPoint {
                placement: s.placement,
                domains: s.l3.len(),
                numa_nodes: s.nodes.len(),
                cores: s.pus.len(),
                read_gb_s: (40.0 * s.l3.len() as f64).min(90.0 * s.nodes.len() as f64),
                l3: s.l3,
            })
            .collect();
        let c = Calibration {
            schema_version: SCHEMA_VERSION,
            kernels_version: KERNELS_VERSION,
            machine_id: "m".into(),
            created_unix_s: 0.0,
            buffer_bytes_per_thread: 1,
            bandwidth: vec![point("machine", 1, 15.0), point("machine", 8, 40.0)],
            compute: Vec::new(),
            peak: Vec::new(),
            l3_read,
        };
        let ceiling = |cores: &str, placement| {
            let request = PlacementRequest {
                cores: cores.parse().unwrap(),
                smt: "off".parse().unwrap(),
                placement,
                memory: "local".parse().unwrap(),
                nps: "any".parse().unwrap(),
                instances: 1,
            };
            let pus = crate::machine::place(&m, &request).unwrap().remove(0).pus;
            let shape = m.shape_of(&pus);
            (shape.l3_domains, shape.numa_nodes, c.read_ceiling(&shape))
        };
        // 8 cores compact: one CCD
        assert_eq!(ceiling("8", PlacementPolicy::Compact), (1, 1, Some(40.0)));
        // 8 cores scatter: one CCD on each of the 8 nodes, bound by its 8 cores' reads, not
        // by the compact 8-core point (40) a scatter run would pass
        assert_eq!(ceiling("8", PlacementPolicy::Scatter), (8, 8, Some(120.0)));
        // 16 cores compact: 2 CCDs of one node, bound by the node's memory
        assert_eq!(ceiling("16", PlacementPolicy::Compact), (2, 1, Some(80.0)));
        // 2 cores scatter: 2 nodes, the scatter set of 2 domains, bound by its 2 cores
        assert_eq!(ceiling("2", PlacementPolicy::Scatter), (2, 2, Some(30.0)));
        // 1 core: one core's read, not its CCD's
        assert_eq!(ceiling("1", PlacementPolicy::Compact), (1, 1, Some(15.0)));
        // 40 cores compact span 5 CCDs over 2 nodes: no set of 5; the points of its cores
        assert_eq!(ceiling("40", PlacementPolicy::Compact), (5, 2, Some(40.0)));
        // a record from before domains were recorded: the points of its cores
        let old = PlacementShape {
            cores: 8,
            smt: false,
            l3_bytes: 0,
            l3_domains: 0,
            numa_nodes: 0,
        };
        assert_eq!(c.read_ceiling(&old), Some(40.0));
    }

    #[test]
    fn the_isa_peak_is_the_issue_rate_of_the_best_core_times_the_cores() {
        use peak::PeakResult;
        let peak_point = |cores, f32_fma: f64| PeakPoint {
            cores,
            smt: false,
            results: vec![PeakResult {
                kernel: PeakKernel::F32Fma,
                width_bits: 512,
                gop_s: f32_fma,
            }],
        };
        let c = Calibration {
            schema_version: SCHEMA_VERSION,
            kernels_version: KERNELS_VERSION,
            machine_id: "m".into(),
            created_unix_s: 0.0,
            buffer_bytes_per_thread: 1,
            bandwidth: Vec::new(),
            compute: Vec::new(),
            // 2 cores measured while another task took one of them
            peak: vec![peak_point(1, 117.0), peak_point(2, 125.0)],
            l3_read: Vec::new(),
        };
        assert_eq!(c.peak_gop_s(PeakKernel::F32Fma, 2, false), Some(234.0));
        assert_eq!(c.peak_gop_s(PeakKernel::F32Fma, 4, true), Some(468.0));
        assert_eq!(c.isa_peak_gflop_s(WeightDtype::F16, 1, false), Some(117.0));
        // the BF16 dot is not measured: BF16 is held against FMA
        assert_eq!(c.isa_peak_gflop_s(WeightDtype::Bf16, 1, false), Some(117.0));
        // the 8-bit dot is not measured: no roof for quantized types
        assert_eq!(c.isa_peak_gflop_s(WeightDtype::Q4_0, 1, false), None);
        // a calibration from before peaks has none, and reads
        let mut old = serde_json::to_value(&c).unwrap();
        old.as_object_mut().unwrap().remove("peak");
        let old: Calibration = serde_json::from_value(old).unwrap();
        assert_eq!(old.peak_gop_s(PeakKernel::F32Fma, 1, false), None);
    }

    #[test]
    fn a_gemm_point_flagged_below_one_core_counts_as_linear_scaling() {
        let flagged = GemmResult {
            flags: vec![GemmFlag::BelowOneCore],
            ..gemm(WeightDtype::Q4_0, 308.0)
        };
        let c = Calibration {
            schema_version: SCHEMA_VERSION,
            kernels_version: KERNELS_VERSION,
            machine_id: "m".into(),
            created_unix_s: 0.0,
            buffer_bytes_per_thread: 1,
            bandwidth: Vec::new(),
            compute: vec![
                ComputePoint {
                    cores: 1,
                    smt: false,
                    results: vec![
                        gemm(WeightDtype::Q4_0, 310.0),
                        gemm(WeightDtype::F32, 130.0),
                    ],
                },
                ComputePoint {
                    cores: 2,
                    smt: false,
                    results: vec![flagged, gemm(WeightDtype::F32, 250.0)],
                },
            ],
            peak: Vec::new(),
            l3_read: Vec::new(),
        };
        // the issue's calibration: 2 cores at 308 below 1 core's 310, flagged
        assert_eq!(c.gflop_s(WeightDtype::Q4_0, 2, false), Some(620.0));
        assert_eq!(c.gflop_s(WeightDtype::Q4_0, 1, false), Some(310.0));
        // an unflagged point counts as measured
        assert_eq!(c.gflop_s(WeightDtype::F32, 2, false), Some(250.0));
    }
}
