//! Grouped bars: runs that differ in one setting (SMT, memory policy, NPS, instances, engine,
//! data type, placement, the machine, or the results set), side by side within each
//! configuration.

use super::axes::{series_varying_along, Axis, AxisValue};
use super::canvas::{Chart, ChartAxis, Color, LegendEntry, Mark, Panel, Scale, Swatch, WIDTH};
use super::runs::{Measured, RunPoint};
use crate::scenario::Key;

/// The settings compared, in the order their charts appear.
pub const COMPARED: [Axis; 9] = [
    Axis::Set,
    Axis::Host,
    Axis::Run(Key::Smt),
    Axis::Run(Key::Memory),
    Axis::Run(Key::Nps),
    Axis::Run(Key::Instances),
    Axis::Run(Key::Engine),
    Axis::Run(Key::Dtype),
    Axis::Run(Key::Placement),
];

/// One group of bars: its configuration's name and each compared value's measurement.
type Group = (String, Vec<(AxisValue, Option<Measured>)>);

/// Names of groups on the category axis: their labels when they fit side by side, else their
/// numbers from 1 (keyed in the legend).
fn group_names(labels: &[String]) -> (Vec<String>, bool) {
    let slot_px = (WIDTH as usize - 140) / labels.len().max(1);
    let fits = labels.iter().all(|l| 8 * l.chars().count() + 10 <= slot_px);
    if fits {
        (labels.to_vec(), false)
    } else {
        ((1..=labels.len()).map(|i| i.to_string()).collect(), true)
    }
}

fn panel(
    title: &str,
    desc: &str,
    groups: &[Group],
    values: &[AxisValue],
    names: &[String],
) -> Option<Panel> {
    let width = 0.8 / values.len() as f64;
    let mut marks = Vec::new();
    let mut ys = Vec::new();
    for (g, (_, bars)) in groups.iter().enumerate() {
        for (value, m) in bars {
            let Some(m) = m else { continue };
            let j = values.iter().position(|v| v == value).unwrap_or(0);
            let x0 = g as f64 - 0.4 + j as f64 * width;
            marks.push(Mark::Bar {
                x0,
                x1: x0 + width * 0.9,
                y: m.mean,
                color: Color::Series(j),
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
        x: ChartAxis::categories("configuration", names.to_vec()),
        y: ChartAxis {
            desc: desc.into(),
            lo: 0.0,
            hi: if top > 0.0 { top * 1.1 } else { 1.0 },
            scale: Scale::Linear,
            ticks: None,
            names: Vec::new(),
        },
        marks,
    })
}

/// Bars comparing the values of `axis` within each configuration, when some configuration was
/// measured with two or more of them.
pub fn chart(points: &[RunPoint], axis: Axis) -> Option<Chart> {
    let all: Vec<&RunPoint> = points.iter().collect();
    let groups = series_varying_along(&all, axis);
    if groups.is_empty() {
        return None;
    }
    let mut values: Vec<AxisValue> = groups
        .iter()
        .flat_map(|g| g.points.iter().map(|p| axis.value(p)))
        .collect();
    values.sort();
    values.dedup();
    let metric = |f: fn(&RunPoint) -> Option<Measured>| -> Vec<Group> {
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
    let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    let (names, numbered) = group_names(&labels);
    let what = if axis == Axis::Run(Key::Instances) {
        "aggregate "
    } else {
        ""
    };
    let panels: Vec<Panel> = [
        panel(
            "decode",
            &format!("{what}decode, tokens/s"),
            &metric(|p| p.measured("decode_tok_s", "decode_cv")),
            &values,
            &names,
        ),
        panel(
            "prefill",
            &format!("{what}prefill, tokens/s"),
            &metric(|p| p.measured("prefill_tok_s", "prefill_cv")),
            &values,
            &names,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (name, title) = match axis {
        Axis::Set => ("results", "results set (before / after)"),
        Axis::Host => ("host", "machines side by side"),
        Axis::Run(Key::Smt) => ("smt", "SMT off / on"),
        Axis::Run(Key::Memory) => ("memory", "NUMA memory policy"),
        Axis::Run(Key::Nps) => ("nps", "NPS mode"),
        Axis::Run(Key::Instances) => ("instances", "1 vs K parallel instances"),
        Axis::Run(Key::Engine) => ("engine", "engine"),
        Axis::Run(Key::Dtype) => ("dtype", "data type"),
        _ => ("placement", "placement policy"),
    };
    let mut legend: Vec<LegendEntry> = values
        .iter()
        .enumerate()
        .map(|(j, v)| LegendEntry {
            label: axis.label(v),
            color: Color::Series(j),
            swatch: Swatch::Bar,
        })
        .collect();
    if numbered {
        legend.extend(labels.iter().enumerate().map(|(i, l)| LegendEntry {
            label: format!("{}: {l}", i + 1),
            color: Color::Ceiling,
            swatch: Swatch::Text,
        }));
    }
    Some(Chart {
        name: format!("compare-{name}"),
        title: format!("Throughput by {title}"),
        about: format!(
            "Decode and prefill tokens/s of runs that differ only in {} (one bar each, ± one \
             standard deviation), grouped by the rest of their configuration{}.",
            axis.name(),
            if axis == Axis::Run(Key::Instances) {
                "; K instances show their aggregate throughput (sum over instances)"
            } else {
                ""
            }
        ),
        sources: vec!["runs.jsonl"],
        panels,
        stacked: true,
        legend,
    })
}
