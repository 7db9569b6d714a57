//! Latency against throughput across batch sizes: x = output tokens/s, y = TPOT p50 and p99,
//! points labelled with their batch, one curve per configuration. A capacity planner reads an
//! operating point off it: the largest throughput whose p99 still meets the latency target.

use super::axes::{series_varying_along, Axis};
use super::canvas::{Chart, ChartAxis, Color, LegendEntry, Mark, Marker, Panel, Swatch};
use super::runs::RunPoint;
use crate::scenario::Key;

/// The latency-throughput chart, when some configuration was measured at two or more batch
/// sizes.
pub fn chart(points: &[RunPoint]) -> Option<Chart> {
    let with_tpot: Vec<&RunPoint> = points
        .iter()
        .filter(|p| p.get("tpot_p50_ms").is_some())
        .collect();
    let series = series_varying_along(&with_tpot, Axis::Run(Key::Batch));
    if series.is_empty() {
        return None;
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut marks = Vec::new();
    let mut legend = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let color = Color::Series(i);
        let pts: Vec<(f64, f64, f64, usize)> = s
            .points
            .iter()
            .filter_map(|p| {
                Some((
                    p.get("output_tok_s")?,
                    p.get("tpot_p50_ms")?,
                    p.get("tpot_p99_ms")?,
                    p.config.batch,
                ))
            })
            .collect();
        marks.push(Mark::Line {
            points: pts.iter().map(|p| (p.0, p.2)).collect(),
            color,
            dashed: true,
            marker: Some(Marker::Triangle),
        });
        marks.push(Mark::series(
            pts.iter().map(|p| (p.0, p.1)).collect(),
            color,
        ));
        marks.extend(pts.iter().map(|p| Mark::Note {
            at: (p.0, p.1),
            text: format!("B={}", p.3),
            color,
        }));
        legend.push(LegendEntry::series(format!("{} p50", s.label), color));
        legend.push(LegendEntry {
            label: format!("{} p99", s.label),
            color,
            swatch: Swatch::Line {
                dashed: true,
                marker: Some(Marker::Triangle),
            },
        });
        xs.extend(pts.iter().map(|p| p.0));
        ys.extend(pts.iter().flat_map(|p| [p.1, p.2]));
    }
    Some(Chart {
        name: "latency-throughput".into(),
        title: "Per-token latency vs throughput across batch sizes".into(),
        about: "Output tokens/s (x) against the time per output token (y): p50 solid with \
                circles, p99 dashed with triangles, each point labelled with its batch size B. \
                Read an operating point as the rightmost point whose p99 meets the latency \
                target."
            .into(),
        sources: vec!["runs.jsonl"],
        panels: vec![Panel {
            title: "TPOT p50 / p99".into(),
            x: ChartAxis::fit("output throughput, tokens/s", &xs, true),
            y: ChartAxis::fit("time per output token, ms", &ys, true),
            marks,
        }],
        stacked: false,
        legend,
    })
}
