//! The ceilings of a run, looked up in a calibration: the read of its cores or of the L3
//! domains it spans, the GEMM rate of its data type and cores, the instruction set's peak.

use super::compute::GemmFlag;
use super::domains::L3ReadPoint;
use super::{Calibration, ComputePoint};
use crate::machine::PlacementShape;
use crate::model::WeightDtype;
use llamaperf_engine::peak::PeakKernel;

impl Calibration {
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
/// weights are widened) for BF16, single-precision FMA for F32 and F16 (IQ4_XS: its table
/// lookups feed 8-bit dots too).
pub fn roof_kernels(dtype: WeightDtype) -> &'static [PeakKernel] {
    match dtype {
        WeightDtype::F32 | WeightDtype::F16 => &[PeakKernel::F32Fma],
        WeightDtype::Bf16 => &[PeakKernel::Bf16Dot, PeakKernel::F32Fma],
        WeightDtype::Q8_0
        | WeightDtype::Q4_0
        | WeightDtype::Q4_1
        | WeightDtype::Q4K
        | WeightDtype::Q6K
        | WeightDtype::Q4KM
        | WeightDtype::Q5KM
        | WeightDtype::Q3KM
        | WeightDtype::Q2KMix
        | WeightDtype::Iq4Xs => &[PeakKernel::Int8Dot],
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
    use crate::calibrate::compute::GemmResult;
    use crate::calibrate::peak::PeakPoint;
    use crate::calibrate::{default_core_counts, domains, BandwidthPoint, KERNELS_VERSION};
    use crate::machine::Machine;
    use crate::schema::SCHEMA_VERSION;

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
        use crate::calibrate::peak::PeakResult;
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
