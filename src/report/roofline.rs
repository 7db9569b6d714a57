//! Roofline: the decode bandwidth (GB/s) and prefill compute rate (GFLOP/s) of each run against
//! the machine's calibrated ceilings at the same core count.

use super::axes::{series_along, Axis};
use super::canvas::{number, Axis as ChartAxis, Chart, Color, Mark, Panel};
use super::runs::RunPoint;
use std::collections::BTreeMap;

/// A ceiling curve: its name and its value at each core count.
type Ceiling = (String, BTreeMap<usize, f64>);

fn panel(
    title: &str,
    desc: &str,
    points: &[&RunPoint],
    value: fn(&RunPoint) -> Option<f64>,
    ceilings: Vec<Ceiling>,
) -> Option<Panel> {
    let measured: Vec<&RunPoint> = points
        .iter()
        .copied()
        .filter(|p| value(p).is_some())
        .collect();
    if measured.is_empty() {
        return None;
    }
    let mut marks = Vec::new();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (i, s) in series_along(&measured, Axis::Cores).iter().enumerate() {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|p| Some((p.cores as f64, value(p)?)))
            .collect();
        xs.extend(pts.iter().map(|p| p.0));
        ys.extend(pts.iter().map(|p| p.1));
        marks.push(Mark::series(pts, Color::Series(i), Some(s.label.clone())));
    }
    for (_, curve) in &ceilings {
        xs.extend(curve.keys().map(|&c| c as f64));
        ys.extend(curve.values().copied());
    }
    let x = ChartAxis::fit("cores", &xs, true);
    for (n, (name, curve)) in ceilings.iter().enumerate() {
        let mut line: Vec<(f64, f64)> = curve.iter().map(|(&c, &v)| (c as f64, v)).collect();
        let (first, last) = (line[0], line[line.len() - 1]);
        line.insert(0, (x.lo.max(f64::MIN_POSITIVE), first.1));
        line.push((x.hi, last.1));
        marks.push(Mark::dashed(
            line,
            Color::Ceiling,
            (n == 0).then(|| "dashed: calibrated ceiling".to_string()),
        ));
        marks.push(Mark::Note {
            at: last,
            text: format!("{name} {}", number(last.1)),
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
            let at = curves.entry(key(p)).or_default().entry(p.cores).or_insert(c);
            *at = at.max(c);
        }
    }
    curves.into_iter().collect()
}

/// The roofline chart, when some run has a decode bandwidth or prefill rate.
pub fn chart(points: &[RunPoint], several_sets: bool) -> Option<Chart> {
    let single: Vec<&RunPoint> = points.iter().filter(|p| p.roofline.is_some()).collect();
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
        &single,
        |p| p.roofline?.decode_gb_s,
        ceilings(
            &single,
            |p| format!("{}read", set(p)),
            RunPoint::decode_ceiling_gb_s,
        ),
    );
    let prefill = panel(
        "prefill (compute bound)",
        "prefill compute, GFLOP/s",
        &single,
        |p| p.roofline.map(|r| r.prefill_gflop_s),
        ceilings(
            &single,
            |p| {
                format!(
                    "{}{} GEMM",
                    set(p),
                    Axis::Dtype.value(p)
                )
            },
            RunPoint::prefill_ceiling_gflop_s,
        ),
    );
    let panels: Vec<Panel> = [decode, prefill].into_iter().flatten().collect();
    if panels.is_empty() {
        return None;
    }
    let calibrated = single
        .iter()
        .any(|p| p.decode_ceiling_gb_s().is_some() || p.prefill_ceiling_gflop_s().is_some());
    Some(Chart {
        name: "roofline".into(),
        title: "Roofline: achieved rates vs calibrated ceilings".into(),
        about: if calibrated {
            "Decode GB/s (weights + KV cache read per step / mean step) and prefill GFLOP/s \
             (prefill FLOPs / TTFT) of each run against the cores it used; the dashed lines \
             are the machine's calibrated read bandwidth and GEMM rate per data type with at \
             most that many cores (`calibration.json`)."
                .into()
        } else {
            "Decode GB/s and prefill GFLOP/s of each run against the cores it used; the results \
             have no calibration (`llamaperf calibrate`), so no ceilings are drawn."
                .into()
        },
        sources: vec!["runs.jsonl", "calibration.json"],
        panels,
    })
}
