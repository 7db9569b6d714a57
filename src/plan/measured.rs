//! Latency and throughput of one instance from measured results, interpolated over batch and
//! cores (never extrapolated).

use super::projection::Point;
use crate::machine::placement::Smt;
use crate::measure::record::RunRecord;
use crate::model::WeightDtype;
use crate::results::metrics::{metric, Source};
use crate::results::{Outcome, ResultsDir, SweepRecord};
use serde::{Deserialize, Serialize};

/// One measured single-instance run: its cores, batch and mean figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredPoint {
    /// Compute threads (cores; SMT-off runs only).
    pub cores: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Mean time to first token, ms.
    pub ttft_ms: f64,
    /// Mean time per decode step, ms.
    pub tpot_ms: f64,
    /// Mean decode throughput, tokens/s.
    pub tok_s: f64,
    /// Decode tokens per joule of RAPL package and DRAM energy; `None` without energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tok_per_j: Option<f64>,
}

/// The measured points of one model on one engine, with what they were measured at.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The engine of the runs, as results name it.
    pub engine: String,
    /// Points, averaged where several runs share cores and batch, sorted by cores then batch.
    pub points: Vec<MeasuredPoint>,
    /// Prompt lengths of the runs, tokens.
    pub prompt_tokens: Vec<usize>,
    /// Context lengths (prompt + generated) of the runs, tokens.
    pub context: Vec<usize>,
}

/// The measured single-instance, SMT-off lines of `model` (in `dtype` for presets) in `dir`,
/// with their records.
fn single_instances<'a>(
    dir: &'a ResultsDir,
    model: &'a str,
    dtype: Option<WeightDtype>,
) -> impl Iterator<Item = (&'a SweepRecord, &'a RunRecord)> + 'a {
    dir.records().iter().filter_map(move |line| {
        let c = line.config();
        let Outcome::Ok { record } = &line.outcome else {
            return None;
        };
        let single = line.instance.is_none() && c.instances == 1 && c.smt == Smt::Off;
        let same_model = c.model == model && (dtype.is_none() || c.dtype == dtype);
        (single && same_model).then_some((line, record.as_ref()))
    })
}

impl Measured {
    /// The engines of the single-instance, SMT-off runs of `model` (in `dtype` for presets)
    /// in `dir`, in the order first measured.
    pub fn engines(dir: &ResultsDir, model: &str, dtype: Option<WeightDtype>) -> Vec<String> {
        let mut engines: Vec<String> = Vec::new();
        for (line, _) in single_instances(dir, model, dtype) {
            let engine = line.config().engine_label();
            if !engines.contains(&engine) {
                engines.push(engine);
            }
        }
        engines
    }

    /// The single-instance, SMT-off runs of `model` (in `dtype` for presets) on `engine` in
    /// `dir`.
    pub fn from_results(
        dir: &ResultsDir,
        model: &str,
        dtype: Option<WeightDtype>,
        engine: &str,
    ) -> Self {
        let mut raw: Vec<MeasuredPoint> = Vec::new();
        let (mut prompt_tokens, mut context) = (Vec::new(), Vec::new());
        for (line, record) in single_instances(dir, model, dtype) {
            let c = line.config();
            if c.engine_label() != engine {
                continue;
            }
            let source = Source::Run {
                spec: &line.spec,
                record,
                calibration: None,
            };
            let read = |name| metric(name).value(&source);
            let (Some(ttft_ms), Some(tpot_ms), Some(tok_s)) =
                (read("ttft_ms"), read("tpot_mean_ms"), read("decode_tok_s"))
            else {
                continue;
            };
            raw.push(MeasuredPoint {
                cores: record.threads,
                batch: c.batch,
                ttft_ms,
                tpot_ms,
                tok_s,
                tok_per_j: read("decode_tok_per_j"),
            });
            prompt_tokens.push(c.prompt_tokens);
            context.push(c.depth + c.prompt_tokens + c.gen_tokens);
        }
        for list in [&mut prompt_tokens, &mut context] {
            list.sort_unstable();
            list.dedup();
        }
        Measured {
            engine: engine.to_string(),
            points: average(raw),
            prompt_tokens,
            context,
        }
    }

    /// Core counts measured.
    pub fn cores(&self) -> Vec<usize> {
        let mut cores: Vec<usize> = self.points.iter().map(|p| p.cores).collect();
        cores.dedup();
        cores
    }

    /// The largest batch measured at `cores` (or at both neighbouring core counts), 0 if none.
    pub fn max_batch(&self, cores: usize) -> usize {
        let max_at = |c: usize| {
            self.points
                .iter()
                .filter(|p| p.cores == c)
                .map(|p| p.batch)
                .max()
                .unwrap_or(0)
        };
        match self.neighbours(cores) {
            Some((lo, hi)) => max_at(lo).min(max_at(hi)),
            None => 0,
        }
    }

    /// The measured core counts at or around `cores`.
    fn neighbours(&self, cores: usize) -> Option<(usize, usize)> {
        let all = self.cores();
        let lo = all.iter().copied().filter(|&c| c <= cores).max()?;
        let hi = all.iter().copied().filter(|&c| c >= cores).min()?;
        Some((lo, hi))
    }

    /// One instance of `cores` cores at `batch`: linear between the measured batches at a
    /// measured core count, then linear between the two measured core counts around `cores`;
    /// `None` outside what was measured.
    pub fn at(&self, cores: usize, batch: usize) -> Option<Point> {
        let (lo, hi) = self.neighbours(cores)?;
        let a = self.at_cores(lo, batch)?;
        if lo == hi {
            return Some(a);
        }
        let b = self.at_cores(hi, batch)?;
        let f = (cores - lo) as f64 / (hi - lo) as f64;
        Some(lerp(&a, &b, f, batch))
    }

    fn at_cores(&self, cores: usize, batch: usize) -> Option<Point> {
        let at: Vec<&MeasuredPoint> = self.points.iter().filter(|p| p.cores == cores).collect();
        let lo = at
            .iter()
            .filter(|p| p.batch <= batch)
            .max_by_key(|p| p.batch)?;
        let hi = at
            .iter()
            .filter(|p| p.batch >= batch)
            .min_by_key(|p| p.batch)?;
        let point = |p: &MeasuredPoint| Point {
            batch: p.batch,
            ttft_ms: p.ttft_ms,
            tpot_ms: p.tpot_ms,
            tok_s: p.tok_s,
            tok_per_j: p.tok_per_j,
        };
        if lo.batch == hi.batch {
            return Some(point(lo));
        }
        let f = (batch - lo.batch) as f64 / (hi.batch - lo.batch) as f64;
        Some(lerp(&point(lo), &point(hi), f, batch))
    }
}

fn lerp(a: &Point, b: &Point, f: f64, batch: usize) -> Point {
    let mix = |x: f64, y: f64| x + (y - x) * f;
    Point {
        batch,
        ttft_ms: mix(a.ttft_ms, b.ttft_ms),
        tpot_ms: mix(a.tpot_ms, b.tpot_ms),
        tok_s: mix(a.tok_s, b.tok_s),
        tok_per_j: a.tok_per_j.zip(b.tok_per_j).map(|(x, y)| mix(x, y)),
    }
}

/// Points sorted by cores and batch, the runs sharing both averaged.
fn average(mut raw: Vec<MeasuredPoint>) -> Vec<MeasuredPoint> {
    raw.sort_by_key(|p| (p.cores, p.batch));
    raw.chunk_by(|a, b| (a.cores, a.batch) == (b.cores, b.batch))
        .map(|group| {
            let n = group.len() as f64;
            let mean = |f: fn(&MeasuredPoint) -> f64| group.iter().map(f).sum::<f64>() / n;
            MeasuredPoint {
                cores: group[0].cores,
                batch: group[0].batch,
                ttft_ms: mean(|p| p.ttft_ms),
                tpot_ms: mean(|p| p.tpot_ms),
                tok_s: mean(|p| p.tok_s),
                tok_per_j: group
                    .iter()
                    .map(|p| p.tok_per_j)
                    .sum::<Option<f64>>()
                    .map(|sum| sum / n),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(cores: usize, batch: usize, tpot_ms: f64, tok_s: f64) -> MeasuredPoint {
        MeasuredPoint {
            cores,
            batch,
            ttft_ms: 10.0 * batch as f64 / cores as f64,
            tpot_ms,
            tok_s,
            tok_per_j: Some(tok_s / 100.0),
        }
    }

    fn measured() -> Measured {
        Measured {
            engine: "tuned".into(),
            points: average(vec![
                p(4, 1, 10.0, 100.0),
                p(4, 4, 16.0, 250.0),
                p(8, 1, 6.0, 160.0),
                p(8, 4, 8.0, 500.0),
                p(8, 4, 10.0, 300.0),
            ]),
            prompt_tokens: vec![128],
            context: vec![160],
        }
    }

    #[test]
    fn duplicates_are_averaged() {
        let m = measured();
        assert_eq!(m.points.len(), 4);
        assert_eq!((m.points[3].tpot_ms, m.points[3].tok_s), (9.0, 400.0));
        assert_eq!(m.points[3].tok_per_j, Some(4.0));
    }

    #[test]
    fn interpolates_over_batch_and_cores() {
        let m = measured();
        assert_eq!(m.at(4, 4).unwrap().tpot_ms, 16.0);
        // Batch 2 at 4 cores: a third of the way from batch 1 to 4.
        assert!((m.at(4, 2).unwrap().tpot_ms - 12.0).abs() < 1e-12);
        // Batch 4 at 6 cores: half way between 4 and 8 cores.
        let mid = m.at(6, 4).unwrap();
        assert!((mid.tpot_ms - 12.5).abs() < 1e-12, "{mid:?}");
        assert!((mid.tok_s - 325.0).abs() < 1e-12, "{mid:?}");
        assert!((mid.tok_per_j.unwrap() - 3.25).abs() < 1e-12, "{mid:?}");
        let mut no_energy = m.clone();
        no_energy.points[0].tok_per_j = None;
        assert_eq!(no_energy.at(4, 2).unwrap().tok_per_j, None);
        assert_eq!(mid.batch, 4);
    }

    #[test]
    fn never_extrapolates() {
        let m = measured();
        assert!(m.at(4, 5).is_none());
        assert!(m.at(2, 1).is_none());
        assert!(m.at(16, 1).is_none());
        assert_eq!(m.max_batch(6), 4);
        assert_eq!(m.max_batch(16), 0);
    }
}
