//! Scaling: decode and prefill tokens/s against cores, one series per configuration, with the
//! ideal linear line from each series' smallest core count and the parallel efficiency.

use super::axes::{series_varying_along, Axis};
use super::canvas::{number, series_legend, Chart, ChartAxis, Color, Mark, Panel};
use super::runs::{Measured, RunPoint};
use crate::scenario::Key;

/// Parallel efficiency of `value` on `cores` relative to `base` on `base_cores`:
/// speed-up divided by the ratio of cores (1.0 is linear scaling).
pub fn efficiency(base_cores: usize, base: f64, cores: usize, value: f64) -> f64 {
    (value / base) / (cores as f64 / base_cores as f64)
}

/// One series of one metric: its colour index and its (cores, value) points.
type MetricSeries = (usize, Vec<(usize, Measured)>);

fn panel(title: &str, desc: &str, series: &[MetricSeries]) -> Option<Panel> {
    let mut marks = Vec::new();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (color, points) in series.iter().filter(|s| s.1.len() >= 2) {
        let color = Color::Series(*color);
        let (c0, v0) = (points[0].0, points[0].1.mean);
        let last = points[points.len() - 1].0;
        let ideal = v0 * last as f64 / c0 as f64;
        marks.push(Mark::dashed(
            vec![(c0 as f64, v0), (last as f64, ideal)],
            color,
        ));
        marks.push(Mark::series(
            points.iter().map(|(c, v)| (*c as f64, v.mean)).collect(),
            color,
        ));
        let bars: Vec<_> = points
            .iter()
            .map(|(c, v)| (*c as f64, v.mean, v.stddev))
            .collect();
        marks.extend(Mark::error_bars(&bars));
        for (c, v) in &points[1..] {
            marks.push(Mark::Note {
                at: (*c as f64, v.mean),
                text: format!("{:.0}%", 100.0 * efficiency(c0, v0, *c, v.mean)),
                color,
            });
        }
        xs.extend(points.iter().map(|(c, _)| *c as f64));
        ys.extend(points.iter().map(|(_, v)| v.mean + v.stddev.unwrap_or(0.0)));
        ys.push(ideal);
    }
    if marks.is_empty() {
        return None;
    }
    Some(Panel {
        title: title.into(),
        x: ChartAxis::counts("cores", &xs),
        y: ChartAxis::fit(desc, &ys, true),
        marks,
    })
}

/// The scaling chart, when some configuration was measured on two or more core counts.
pub fn chart(points: &[RunPoint]) -> Option<Chart> {
    let all: Vec<&RunPoint> = points.iter().collect();
    let series = series_varying_along(&all, Axis::Run(Key::Cores));
    if series.is_empty() {
        return None;
    }
    let metric = |f: fn(&RunPoint) -> Option<Measured>| -> Vec<MetricSeries> {
        series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pts = s
                    .points
                    .iter()
                    .filter_map(|p| f(p).map(|m| (p.cores, m)))
                    .collect();
                (i, pts)
            })
            .collect()
    };
    let panels: Vec<Panel> = [
        panel(
            "decode",
            "decode throughput, tokens/s",
            &metric(|p| p.measured("decode_tok_s", "decode_cv")),
        ),
        panel(
            "prefill",
            "prefill throughput, tokens/s",
            &metric(|p| p.measured("prefill_tok_s", "prefill_cv")),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let legend = series_legend(
        series.iter().map(|s| s.label.as_str()),
        "ideal linear scaling (same colour); % = parallel efficiency",
    );
    let best = series
        .iter()
        .filter_map(|s| {
            let (first, last) = (s.points.first()?, s.points.last()?);
            let (d0, d1) = (first.get("decode_tok_s")?, last.get("decode_tok_s")?);
            Some(efficiency(first.cores, d0, last.cores, d1))
        })
        .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))));
    Some(Chart {
        name: "scaling".into(),
        title: "Throughput vs cores".into(),
        about: format!(
            "Decode and prefill tokens/s (± one standard deviation) against physical cores, one \
             line per configuration; the dashed line of the same colour is ideal linear scaling \
             from the smallest core count, and each point is labelled with its parallel \
             efficiency (speed-up / core ratio){}.",
            best.map_or(String::new(), |e| format!(
                "; the best decode efficiency at a series' largest core count is {}%",
                number(100.0 * e)
            ))
        ),
        sources: vec!["runs.jsonl", "plan.json", "machine.json"],
        panels,
        stacked: false,
        legend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_scaling_is_full_efficiency() {
        assert_eq!(efficiency(1, 10.0, 4, 40.0), 1.0);
        assert_eq!(efficiency(2, 10.0, 4, 15.0), 0.75);
    }
}
