//! Roofline: the decode bandwidth (GB/s) and prefill compute rate (GFLOP/s) of each run against
//! the machine's calibrated ceilings at the same core count.

use super::axes::{series_along, Axis, Series};
use super::canvas::{number, Chart, ChartAxis, Color, LegendEntry, Mark, Panel};
use super::runs::RunPoint;
use crate::scenario::Key;
use std::collections::BTreeMap;

/// A ceiling curve: its name and its value at each core count.
type Ceiling = (String, BTreeMap<usize, f64>);

fn panel(
    title: &str,
    desc: &str,
    series: &[Series<'_>],
    value: fn(&RunPoint) -> Option<f64>,
    ceilings: Vec<Ceiling>,
) -> Option<Panel> {
    let mut marks = Vec::new();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| Some((p.cores as f64, value(p)?)))
            .collect();
        xs.extend(pts.iter().map(|p| p.0));
        ys.extend(pts.iter().map(|p| p.1));
        if !pts.is_empty() {
            marks.push(Mark::series(pts, Color::Series(i)));
        }
    }
    if marks.is_empty() {
        return None;
    }
    for (_, curve) in &ceilings {
        xs.extend(curve.keys().map(|&c| c as f64));
        ys.extend(curve.values().copied());
    }
    let x = ChartAxis::counts("cores", &xs);
    for (name, curve) in &ceilings {
        let mut line: Vec<(f64, f64)> = curve.iter().map(|(&c, &v)| (c as f64, v)).collect();
        let (first, last) = (line[0], line[line.len() - 1]);
        let left = (x.lo.max(f64::MIN_POSITIVE), first.1);
        line.insert(0, left);
        line.push((x.hi, last.1));
        marks.insert(0, Mark::dashed(line, Color::Ceiling));
        marks.push(Mark::Note {
            at: left,
            text: format!("{name} {}", number(first.1)),
            color: Color::Ceiling,
        });
    }
    Some(Panel {
        title: title.into(),
        x,
        y: ChartAxis::fit(desc, &ys, true),
        marks,
    })
}

/// The ceilings of `points` by core count, one curve per key (`key` names the curve).
fn ceilings(
    points: &[&RunPoint],
    key: impl Fn(&RunPoint) -> String,
    ceiling: fn(&RunPoint) -> Option<f64>,
) -> Vec<Ceiling> {
    let mut curves: BTreeMap<String, BTreeMap<usize, f64>> = BTreeMap::new();
    for p in points {
        if let Some(c) = ceiling(p) {
            let at = curves
                .entry(key(p))
                .or_default()
                .entry(p.cores)
                .or_insert(c);
            *at = at.max(c);
        }
    }
    curves.into_iter().collect()
}

/// The roofline chart, when some run has a decode bandwidth or prefill rate.
pub fn chart(points: &[RunPoint], several_sets: bool) -> Option<Chart> {
    let single: Vec<&RunPoint> = points.iter().filter(|p| p.has_roofline()).collect();
    if single.is_empty() {
        return None;
    }
    let series = series_along(&single, Axis::Run(Key::Cores));
    let set = move |p: &RunPoint| {
        if several_sets {
            format!("{} ", p.set)
        } else {
            String::new()
        }
    };
    let decode = panel(
        "decode (memory bound)",
        "decode bandwidth (weights + KV cache), GB/s",
        &series,
        |p| p.get("decode_gb_s"),
        ceilings(
            &single,
            |p| format!("{}read", set(p)),
            RunPoint::decode_ceiling_gb_s,
        ),
    );
    let prefill = panel(
        "prefill (compute bound)",
        "prefill compute, GFLOP/s",
        &series,
        |p| p.get("prefill_gflop_s"),
        ceilings(
            &single,
            |p| format!("{}{} GEMM", set(p), Axis::Run(Key::Dtype).value(p)),
            RunPoint::prefill_ceiling_gflop_s,
        ),
    );
    let panels: Vec<Panel> = [decode, prefill].into_iter().flatten().collect();
    let calibrated = single
        .iter()
        .any(|p| p.decode_ceiling_gb_s().is_some() || p.prefill_ceiling_gflop_s().is_some());
    let mut legend: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry::series(s.label.clone(), Color::Series(i)))
        .collect();
    if calibrated {
        legend.push(LegendEntry::dashed(
            "calibrated ceiling at the run's cores (named, with its value)",
            Color::Ceiling,
        ));
    }
    Some(Chart {
        name: "roofline".into(),
        title: "Roofline: achieved rates vs calibrated ceilings".into(),
        about: if calibrated {
            "Decode GB/s (weights + KV cache read per step / mean step) and prefill GFLOP/s \
             (prefill FLOPs / TTFT) of each run against the physical cores it used; the dashed \
             lines are the machine's calibrated read bandwidth and GEMM rate per data type with \
             at most the run's cores (`calibration.json`). A model whose weights fit in the \
             caches can decode above the DRAM ceiling."
                .into()
        } else {
            "Decode GB/s and prefill GFLOP/s of each run against the physical cores it used; \
             the results have no calibration (`llamaperf calibrate`), so no ceilings are drawn."
                .into()
        },
        sources: vec!["runs.jsonl", "calibration.json"],
        panels,
        stacked: false,
        legend,
    })
}
