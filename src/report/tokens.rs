//! Per-token latency of every run from `tokens.csv`: the decode step latency by step (mean over
//! repetitions, where warm-up shows as slow first steps) and its cumulative distribution
//! (where outliers show as a long tail).

use super::canvas::{Chart, ChartAxis, Color, LegendEntry, Mark, Panel, Scale};
use crate::results::store::TokenRow;
use std::collections::BTreeMap;

/// The decode steps of one run (or one instance of it): latencies by repetition and step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLatencies {
    /// The run's id.
    pub run_id: String,
    /// The instance, for multi-instance runs.
    pub instance: Option<usize>,
    /// Legend label of the run.
    pub label: String,
    /// Per repetition, its decode steps in order, ms.
    pub repetitions: Vec<Vec<f64>>,
}

impl StepLatencies {
    /// Every decode step of every repetition, ms.
    pub fn all(&self) -> Vec<f64> {
        self.repetitions.iter().flatten().copied().collect()
    }

    /// Mean latency of each step over the repetitions that have it, ms.
    pub fn mean_by_step(&self) -> Vec<f64> {
        let steps = self.repetitions.iter().map(Vec::len).max().unwrap_or(0);
        (0..steps)
            .map(|i| {
                let v: Vec<f64> = self
                    .repetitions
                    .iter()
                    .filter_map(|r| r.get(i).copied())
                    .collect();
                v.iter().sum::<f64>() / v.len() as f64
            })
            .collect()
    }
}

/// The decode steps of each run in `tokens`, labelled by `label(run_id, instance)`, in the
/// order of `tokens`.
pub fn step_latencies(
    tokens: &[TokenRow],
    label: impl Fn(&str, Option<usize>) -> String,
) -> Vec<StepLatencies> {
    let mut order: Vec<(String, Option<usize>)> = Vec::new();
    type Steps = BTreeMap<usize, BTreeMap<usize, f64>>;
    let mut runs: BTreeMap<(String, Option<usize>), Steps> = BTreeMap::new();
    for t in tokens.iter().filter(|t| t.phase == "decode") {
        let key = (t.run_id.clone(), t.instance);
        if !runs.contains_key(&key) {
            order.push(key.clone());
        }
        runs.entry(key)
            .or_default()
            .entry(t.repetition)
            .or_default()
            .insert(t.step, t.ms);
    }
    order
        .into_iter()
        .map(|key| StepLatencies {
            label: label(&key.0, key.1),
            run_id: key.0.clone(),
            instance: key.1,
            repetitions: runs[&key]
                .values()
                .map(|steps| steps.values().copied().collect())
                .collect(),
        })
        .collect()
}

/// The per-token latency chart, when some run has two or more decode steps.
pub fn chart(runs: &[StepLatencies]) -> Option<Chart> {
    if !runs.iter().any(|r| r.all().len() >= 2) {
        return None;
    }
    let (mut by_step, mut cdf, mut legend) = (Vec::new(), Vec::new(), Vec::new());
    let (mut steps, mut ms) = (Vec::new(), Vec::new());
    for (i, r) in runs.iter().enumerate() {
        let color = Color::Series(i);
        let means: Vec<(f64, f64)> = r
            .mean_by_step()
            .into_iter()
            .enumerate()
            .map(|(s, v)| ((s + 1) as f64, v))
            .collect();
        steps.extend(means.iter().map(|p| p.0));
        ms.extend(means.iter().map(|p| p.1));
        by_step.push(Mark::series(means, color));
        legend.push(LegendEntry::series(r.label.clone(), color));
        let mut all = r.all();
        all.sort_by(f64::total_cmp);
        let n = all.len() as f64;
        ms.extend(all.iter().copied());
        cdf.push(Mark::Line {
            points: all
                .iter()
                .enumerate()
                .map(|(k, &v)| (v, (k + 1) as f64 / n))
                .collect(),
            color,
            dashed: false,
            marker: None,
        });
    }
    let latency = ChartAxis::fit("decode step latency, ms", &ms, false);
    Some(Chart {
        name: "token-latency".into(),
        title: "Per-token latency distribution".into(),
        about: "Left: the latency of each decode step (mean over repetitions) by its position, \
                where warm-up shows as slow first steps; right: the cumulative distribution of \
                every decode step of every repetition, where outliers show as a long tail to \
                the right."
            .into(),
        sources: vec!["tokens.csv"],
        panels: vec![
            Panel {
                title: "by decode step".into(),
                x: ChartAxis::counts("decode step", &steps),
                y: ChartAxis {
                    desc: latency.desc.clone(),
                    ..latency.clone()
                },
                marks: by_step,
            },
            Panel {
                title: "cumulative distribution".into(),
                x: latency,
                y: ChartAxis {
                    desc: "fraction of steps".into(),
                    lo: 0.0,
                    hi: 1.02,
                    scale: Scale::Linear,
                    ticks: None,
                    names: Vec::new(),
                },
                marks: cdf,
            },
        ],
        stacked: false,
        legend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(run: &str, rep: usize, step: usize, phase: &str, ms: f64) -> TokenRow {
        TokenRow {
            schema_version: 1,
            run_id: run.into(),
            host: String::new(),
            instance: None,
            repetition: rep,
            step,
            phase: phase.into(),
            ms,
        }
    }

    #[test]
    fn steps_are_grouped_by_run_and_averaged_over_repetitions() {
        let tokens = [
            row("b", 0, 0, "prefill", 9.0),
            row("b", 0, 1, "decode", 4.0),
            row("b", 0, 2, "decode", 2.0),
            row("b", 1, 1, "decode", 2.0),
            row("b", 1, 2, "decode", 2.0),
            row("a", 0, 1, "decode", 1.0),
        ];
        let runs = step_latencies(&tokens, |id, _| id.to_uppercase());
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].label, "B", "first seen first");
        assert_eq!(runs[0].mean_by_step(), vec![3.0, 2.0]);
        assert_eq!(runs[0].all(), vec![4.0, 2.0, 2.0, 2.0]);
        assert!(chart(&runs).is_some());
        assert!(chart(&runs[1..]).is_none(), "one step is no distribution");
    }
}
