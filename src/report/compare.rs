//! Grouped bars: runs that differ in one setting (SMT, memory policy, NPS, instances, engine,
//! data type, placement, or the results set), side by side within each configuration.

use super::axes::{series_along, varies_along, Axis, AxisValue};
use super::canvas::{Axis as ChartAxis, Chart, Color, Mark, Panel, Scale};
use super::runs::{Measured, RunPoint};

/// The settings compared, in the order their charts appear.
pub const COMPARED: [Axis; 8] = [
    Axis::Set,
    Axis::Smt,
    Axis::Memory,
    Axis::Nps,
    Axis::Instances,
    Axis::Engine,
    Axis::Dtype,
    Axis::Placement,
];

fn panel(
    title: &str,
    desc: &str,
    axis: Axis,
    groups: &[(String, Vec<(AxisValue, Option<Measured>)>)],
    values: &[AxisValue],
) -> Option<Panel> {
    let width = 0.8 / values.len() as f64;
    let mut marks = Vec::new();
    let mut labelled = vec![false; values.len()];
    let mut ys = Vec::new();
    for (g, (_, bars)) in groups.iter().enumerate() {
        for (value, m) in bars {
            let Some(m) = m else { continue };
            let j = values.iter().position(|v| v == value).expect("collected");
            let x0 = g as f64 - 0.4 + j as f64 * width;
            let label = (!labelled[j]).then(|| axis.label(value));
            labelled[j] = true;
            marks.push(Mark::Bar {
                x0,
                x1: x0 + width * 0.9,
                y: m.mean,
                color: Color::Series(j),
                label,
            });
            marks.extend(Mark::error_bars(&[(x0 + width * 0.45, m.mean, m.stddev)]));
            ys.push(m.mean + m.stddev.unwrap_or(0.0));
        }
    }
    if marks.is_empty() {
        return None;
    }
    let top = ys.iter().copied().fold(0.0, f64::max);
    Some(Panel {
        title: title.into(),
        x: ChartAxis::categories(
            "configuration",
            groups.iter().map(|(name, _)| name.clone()).collect(),
        ),
        y: ChartAxis {
            desc: desc.into(),
            lo: 0.0,
            hi: if top > 0.0 { top * 1.3 } else { 1.0 },
            scale: Scale::Linear,
        },
        marks,
    })
}

/// Bars comparing the values of `axis` within each configuration, when some configuration was
/// measured with two or more of them.
pub fn chart(points: &[RunPoint], axis: Axis) -> Option<Chart> {
    let all: Vec<&RunPoint> = points.iter().collect();
    let groups: Vec<_> = series_along(&all, axis)
        .into_iter()
        .filter(|s| varies_along(s, axis))
        .collect();
    if groups.is_empty() {
        return None;
    }
    let mut values: Vec<AxisValue> = groups
        .iter()
        .flat_map(|g| g.points.iter().map(|p| axis.value(p)))
        .collect();
    values.sort();
    values.dedup();
    let metric = |f: fn(&RunPoint) -> Option<Measured>| -> Vec<(String, Vec<(AxisValue, Option<Measured>)>)> {
        groups
            .iter()
            .map(|g| {
                (
                    g.label.clone(),
                    g.points.iter().map(|p| (axis.value(p), f(p))).collect(),
                )
            })
            .collect()
    };
    let what = match axis {
        Axis::Instances => "aggregate ",
        _ => "",
    };
    let panels: Vec<Panel> = [
        panel(
            "decode",
            &format!("{what}decode throughput, tokens/s"),
            axis,
            &metric(|p| p.decode_tok_s),
            &values,
        ),
        panel(
            "prefill",
            &format!("{what}prefill throughput, tokens/s"),
            axis,
            &metric(|p| Some(p.prefill_tok_s)),
            &values,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (name, title) = match axis {
        Axis::Set => ("results", "results sets (before / after)"),
        Axis::Smt => ("smt", "SMT off / on"),
        Axis::Memory => ("memory", "NUMA memory policies"),
        Axis::Nps => ("nps", "NPS modes"),
        Axis::Instances => ("instances", "1 vs K parallel instances"),
        Axis::Engine => ("engine", "engines (tuned vs reference)"),
        Axis::Dtype => ("dtype", "data types"),
        _ => ("placement", "placement policies"),
    };
    Some(Chart {
        name: format!("compare-{name}"),
        title: format!("Throughput by {title}"),
        about: format!(
            "Decode and prefill tokens/s of runs that differ only in {} (one bar each, ± one \
             standard deviation), grouped by the rest of their configuration{}.",
            axis.name(),
            if axis == Axis::Instances {
                "; K instances show their aggregate throughput (sum over instances)"
            } else {
                ""
            }
        ),
        sources: vec!["runs.jsonl"],
        panels,
    })
}
