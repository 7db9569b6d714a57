//! The checks that make a GEMM figure stable on a shared host: a measurement whose passes
//! disagree, or that comes out below one core's figure, is remeasured; what stays doubtful is
//! flagged in `calibration.json`, never dropped or hidden. (Two calibrations a minute apart
//! gave 2 cores 308 then 586 GFLOP/s with the best of 3 passes while others compiled.)

use super::compute::{GemmFlag, GemmResult};
use super::{run_compute_child, CalibrationError, ComputeRequest};
use crate::model::WeightDtype;

/// Timed passes per data type and measurement, after a warm-up; the median counts.
pub const GEMM_PASSES: usize = 9;

/// Largest spread of a measurement's passes ((slowest - fastest) / median), percent, above
/// which it is remeasured, and flagged noisy if it stays above.
pub const GEMM_MAX_SPREAD_PCT: f64 = 10.0;

/// Measurements of one point at most: the first and the remeasurements.
pub const GEMM_ATTEMPTS: usize = 3;

/// What is doubtful about `result`, against `one_core`, the figures of one core (empty for
/// a one-core point).
pub fn doubts(result: &GemmResult, one_core: &[GemmResult]) -> Vec<GemmFlag> {
    let mut flags = Vec::new();
    if result.spread_pct.is_some_and(|s| s > GEMM_MAX_SPREAD_PCT) {
        flags.push(GemmFlag::Noisy);
    }
    let below = one_core
        .iter()
        .any(|o| o.dtype == result.dtype && o.gflop_s > result.gflop_s);
    if below {
        flags.push(GemmFlag::BelowOneCore);
    }
    flags
}

/// Keeps, of each data type, the higher of its figure in `kept` and in `again`: a shared
/// host only ever takes cycles away, so the higher median is the less disturbed one.
pub fn keep_better(kept: &mut [GemmResult], again: Vec<GemmResult>) {
    for new in again {
        if let Some(old) = kept.iter_mut().find(|k| k.dtype == new.dtype) {
            if new.gflop_s > old.gflop_s {
                *old = new;
            }
        }
    }
}

/// GEMM figures of `dtypes` on `pus` (one child process per measurement), each remeasured up to
/// [`GEMM_ATTEMPTS`] times while it is doubtful against `one_core`, then flagged with its
/// remaining doubts. `progress` hears each remeasurement and why.
pub fn measure_checked(
    pus: &[usize],
    dtypes: &[WeightDtype],
    one_core: &[GemmResult],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<GemmResult>, CalibrationError> {
    let request = |dtypes: Vec<WeightDtype>| ComputeRequest {
        pus: pus.to_vec(),
        dtypes,
        passes: GEMM_PASSES,
    };
    let mut results = run_compute_child(&request(dtypes.to_vec()))?;
    for attempt in 2..=GEMM_ATTEMPTS {
        let doubtful: Vec<(WeightDtype, Vec<GemmFlag>)> = results
            .iter()
            .map(|r| (r.dtype, doubts(r, one_core)))
            .filter(|(_, d)| !d.is_empty())
            .collect();
        if doubtful.is_empty() {
            break;
        }
        let why: Vec<String> = doubtful
            .iter()
            .map(|(d, flags)| {
                let flags: Vec<&str> = flags.iter().map(|f| f.name()).collect();
                format!("{d} ({})", flags.join(", "))
            })
            .collect();
        progress(&format!(
            "remeasuring {}, attempt {attempt} of {GEMM_ATTEMPTS}",
            why.join(", ")
        ));
        let again = run_compute_child(&request(doubtful.into_iter().map(|(d, _)| d).collect()))?;
        keep_better(&mut results, again);
    }
    for r in &mut results {
        r.flags = doubts(r, one_core);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemm(dtype: WeightDtype, gflop_s: f64, spread_pct: f64) -> GemmResult {
        GemmResult {
            dtype,
            gflop_s,
            spread_pct: Some(spread_pct),
            flags: Vec::new(),
        }
    }

    #[test]
    fn a_figure_below_one_core_or_with_disagreeing_passes_is_doubtful() {
        let one = [gemm(WeightDtype::Q4_0, 310.0, 2.0)];
        // the calibration: 2 cores at 308 against 1 core at 310
        let low = gemm(WeightDtype::Q4_0, 308.0, 4.0);
        assert_eq!(doubts(&low, &one), [GemmFlag::BelowOneCore]);
        let noisy = gemm(WeightDtype::Q4_0, 586.0, GEMM_MAX_SPREAD_PCT + 1.0);
        assert_eq!(doubts(&noisy, &one), [GemmFlag::Noisy]);
        let fine = gemm(WeightDtype::Q4_0, 586.0, GEMM_MAX_SPREAD_PCT);
        assert!(doubts(&fine, &one).is_empty());
        // another data type's one-core figure says nothing
        assert!(doubts(&gemm(WeightDtype::F32, 100.0, 1.0), &one).is_empty());
        // a figure from before spreads were recorded is not noisy for lack of one
        let old = GemmResult {
            spread_pct: None,
            ..gemm(WeightDtype::F32, 100.0, 0.0)
        };
        assert!(doubts(&old, &[]).is_empty());
    }

    #[test]
    fn remeasuring_keeps_the_less_disturbed_figure_of_each_dtype() {
        let mut kept = vec![
            gemm(WeightDtype::Q4_0, 308.0, 40.0),
            gemm(WeightDtype::F32, 277.0, 3.0),
        ];
        keep_better(
            &mut kept,
            vec![
                gemm(WeightDtype::Q4_0, 586.0, 5.0),
                gemm(WeightDtype::F32, 113.0, 2.0),
            ],
        );
        assert_eq!(kept[0].gflop_s, 586.0);
        assert_eq!(kept[1].gflop_s, 277.0);
    }
}
