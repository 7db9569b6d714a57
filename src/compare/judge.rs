//! Testing and judging every metric of the matched runs: the samples of each side, Welch's
//! t-test over them, the p-values adjusted together, a verdict per metric.

use super::matching::Key;
use super::{adjust, verdict, welch, CompareOptions, MetricComparison, NoiseSource, COMPARED};
use super::{Direction, Metric, Samples};
use crate::measure::record::RunRecord;
use crate::results::metrics::metric;

/// One metric of one matched run, tested but not yet judged (the verdict needs the p-values
/// of every test of the comparison).
pub struct Tested {
    key: Key,
    metric: &'static Metric,
    direction: Direction,
    base: Samples,
    candidate: Samples,
    p_value: Option<f64>,
}

/// Every metric with samples on both sides of one matched run, tested; `base` and `candidate`
/// are the records of the run in each side's folders that measured it.
pub fn test_run(
    key: &Key,
    noise: NoiseSource,
    base: &[&RunRecord],
    candidate: &[&RunRecord],
) -> Vec<Tested> {
    let side = |metric: &Metric, records: &[&RunRecord]| {
        let per_folder: Vec<Vec<f64>> = records.iter().map(|r| metric.samples(r)).collect();
        noise.samples(&per_folder)
    };
    COMPARED
        .into_iter()
        .map(metric)
        .filter_map(|metric| {
            test_samples(key, metric, &side(metric, base), &side(metric, candidate))
        })
        .collect()
}

/// `metric` of one matched run tested over the samples of each side; `None` when a side has
/// none or the metric has no better direction.
pub fn test_samples(
    key: &Key,
    metric: &'static Metric,
    base: &[f64],
    candidate: &[f64],
) -> Option<Tested> {
    let direction = metric.better?;
    (!base.is_empty() && !candidate.is_empty()).then(|| Tested {
        key: key.clone(),
        metric,
        direction,
        base: Samples::of(base),
        candidate: Samples::of(candidate),
        p_value: welch::welch(base, candidate).map(|w| w.p_value),
    })
}

/// Adjusts the p-values of all `tests` together and judges each.
pub fn judge(tests: Vec<Tested>, options: &CompareOptions) -> Vec<MetricComparison> {
    let raw: Vec<f64> = tests.iter().filter_map(|t| t.p_value).collect();
    let mut adjusted = adjust::benjamini_hochberg(&raw).into_iter();
    tests
        .into_iter()
        .map(|t| {
            let p_adjusted = t.p_value.and_then(|_| adjusted.next());
            let change_pct = 100.0 * (t.candidate.mean - t.base.mean) / t.base.mean;
            let (host, run_id, instance) = t.key;
            MetricComparison {
                verdict: verdict::decide(
                    t.direction,
                    change_pct,
                    p_adjusted,
                    options.threshold_pct,
                    options.alpha,
                ),
                host,
                run_id,
                instance,
                metric: t.metric,
                direction: t.direction,
                base: t.base,
                candidate: t.candidate,
                change_pct,
                p_value: t.p_value,
                p_adjusted,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Verdict;

    fn tested(name: &str, base: &[f64], candidate: &[f64]) -> Tested {
        let metric = metric(name);
        Tested {
            key: (None, "run".into(), None),
            metric,
            direction: metric.better.expect("compared metrics have a direction"),
            base: Samples::of(base),
            candidate: Samples::of(candidate),
            p_value: welch::welch(base, candidate).map(|w| w.p_value),
        }
    }

    #[test]
    fn p_values_are_adjusted_together_and_each_change_judged() {
        let options = CompareOptions::new(5.0, 0.05, false).unwrap();
        let tests = vec![
            // 20% fewer tokens/s, tight: p about 1e-5, a regression after adjustment too
            tested("decode_tok_s", &[100.0, 101.0, 99.0], &[80.0, 81.0, 79.0]),
            // 20% longer, but one process of three doubled: not significant
            tested("ttft_ms", &[1.0, 1.0, 1.0], &[1.0, 1.0, 1.6]),
            // one sample on a side: no test
            tested("e2e_ms", &[10.0], &[12.0, 12.0]),
        ];
        let judged = judge(tests, &options);
        let verdicts: Vec<Verdict> = judged.iter().map(|m| m.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Regression,
                Verdict::Inconclusive,
                Verdict::TooFewSamples
            ]
        );
        // Two tests: the smaller p doubles, the larger stays.
        let p = |i: usize| (judged[i].p_value.unwrap(), judged[i].p_adjusted.unwrap());
        assert!((p(0).1 - 2.0 * p(0).0).abs() < 1e-12, "{:?}", p(0));
        assert_eq!(p(1).1, p(1).0);
        assert!((judged[0].change_pct + 20.0).abs() < 1e-9);
        assert_eq!(judged[0].run_id, "run");
        assert!(judged[2].p_adjusted.is_none());
    }
}
