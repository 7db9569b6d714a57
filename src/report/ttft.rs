//! Time to first token against prompt length and against batch size (± one standard
//! deviation over repetitions).

use super::axes::{series_varying_along, Axis};
use super::canvas::{Chart, ChartAxis, Color, LegendEntry, Mark, Panel};
use super::runs::RunPoint;
use crate::scenario::Key;

/// TTFT along `along` (prompt tokens or batch), when some configuration varies along it.
pub fn chart(points: &[RunPoint], along: Axis) -> Option<Chart> {
    let all: Vec<&RunPoint> = points.iter().collect();
    let series = series_varying_along(&all, along);
    if series.is_empty() {
        return None;
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut marks = Vec::new();
    let mut legend = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<(f64, f64, Option<f64>)> = s
            .points
            .iter()
            .filter_map(|p| {
                let ttft = p.measured("ttft_ms", "ttft_cv")?;
                Some((along.number(p)?, ttft.mean, ttft.stddev))
            })
            .collect();
        marks.push(Mark::series(
            pts.iter().map(|p| (p.0, p.1)).collect(),
            Color::Series(i),
        ));
        marks.extend(Mark::error_bars(&pts));
        legend.push(LegendEntry::series(s.label.clone(), Color::Series(i)));
        xs.extend(pts.iter().map(|p| p.0));
        ys.extend(pts.iter().map(|p| p.1 + p.2.unwrap_or(0.0)));
    }
    let (name, x_desc, what) = match along {
        Axis::Run(Key::PromptTokens) => ("ttft-prompt", "prompt tokens", "prompt length"),
        _ => ("ttft-batch", "batch (sequences)", "batch size"),
    };
    Some(Chart {
        name: name.into(),
        title: format!("Time to first token vs {what}"),
        about: format!(
            "Time to first token (mean over repetitions, ± one standard deviation) against \
             {what}, one line per configuration; prefill is compute bound, so TTFT grows with \
             the tokens it processes."
        ),
        sources: vec!["runs.jsonl"],
        panels: vec![Panel {
            title: "TTFT".into(),
            x: ChartAxis::counts(x_desc, &xs),
            y: ChartAxis::fit("time to first token, ms", &ys, true),
            marks,
        }],
        stacked: false,
        legend,
    })
}
