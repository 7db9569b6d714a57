//! Energy per token against batch size and against cores: RAPL package energy per token
//! (solid) and DRAM energy per token (dashed, where the machine has a DRAM zone), one panel
//! per phase, one line per configuration. Runs without energy (machines without RAPL,
//! aggregates of parallel instances) are left out.

use super::axes::{series_varying_along, Axis};
use super::canvas::{series_legend, Chart, ChartAxis, Color, Mark, Panel};
use super::runs::RunPoint;
use crate::scenario::Key;

/// The panel of one phase (`prefill` or `decode`): its package and DRAM J/token along `along`.
fn panel(series: &[(usize, Vec<&RunPoint>)], along: Axis, phase: &str) -> Option<Panel> {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut marks = Vec::new();
    for (i, points) in series {
        let color = Color::Series(*i);
        for (domain, dashed) in [("pkg", false), ("dram", true)] {
            let name = format!("{phase}_{domain}_j_per_tok");
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|p| Some((along.number(p)?, p.get(&name)?)))
                .collect();
            if pts.len() < 2 {
                continue;
            }
            xs.extend(pts.iter().map(|p| p.0));
            ys.extend(pts.iter().map(|p| p.1));
            marks.push(if dashed {
                Mark::dashed(pts, color)
            } else {
                Mark::series(pts, color)
            });
        }
    }
    if marks.is_empty() {
        return None;
    }
    let x_desc = match along {
        Axis::Run(Key::Batch) => "batch (sequences)",
        _ => "cores",
    };
    Some(Panel {
        title: phase.into(),
        x: ChartAxis::counts(x_desc, &xs),
        y: ChartAxis::fit(format!("{phase} energy, J/token"), &ys, true),
        marks,
    })
}

/// Energy per token along `along` (batch or cores), when some configuration has energy at two
/// or more of its values.
pub fn chart(points: &[RunPoint], along: Axis) -> Option<Chart> {
    let with_energy: Vec<&RunPoint> = points
        .iter()
        .filter(|p| {
            p.get("prefill_pkg_j_per_tok").is_some() || p.get("decode_pkg_j_per_tok").is_some()
        })
        .collect();
    let series = series_varying_along(&with_energy, along);
    let numbered: Vec<(usize, Vec<&RunPoint>)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.points.clone()))
        .collect();
    let panels: Vec<Panel> = ["decode", "prefill"]
        .into_iter()
        .filter_map(|phase| panel(&numbered, along, phase))
        .collect();
    if panels.is_empty() {
        return None;
    }
    let legend = series_legend(
        series.iter().map(|s| s.label.as_str()),
        "DRAM energy per token (same colour)",
    );
    let (name, what) = match along {
        Axis::Run(Key::Batch) => ("energy-batch", "batch size"),
        _ => ("energy-cores", "cores"),
    };
    Some(Chart {
        name: name.into(),
        title: format!("Energy per token vs {what}"),
        about: format!(
            "RAPL package energy per token (solid) and DRAM energy per token (dashed, where the \
             machine has a DRAM zone) against {what}, one line per configuration: a prefill \
             token is a prompt token of one sequence, a decode token one generated token. An \
             instance is given its packages' energy divided among the run's instances on them \
             (docs/metrics.md)."
        ),
        sources: vec!["runs.jsonl"],
        panels,
        stacked: false,
        legend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::metrics::{metric, MetricValues};
    use crate::scenario::RunConfig;

    fn point(batch: usize, decode_pkg: Option<f64>, decode_dram: Option<f64>) -> RunPoint {
        let mut metrics = MetricValues::none();
        metrics.set(metric("decode_pkg_j_per_tok"), decode_pkg);
        metrics.set(metric("decode_dram_j_per_tok"), decode_dram);
        RunPoint {
            set: "s".into(),
            set_index: 0,
            run_id: format!("b{batch}"),
            host: "lab-1".into(),
            config: RunConfig {
                model: "tiny".into(),
                batch,
                ..RunConfig::default()
            },
            cores: 4,
            metrics,
        }
    }

    #[test]
    fn runs_with_energy_give_a_panel_per_phase_measured() {
        let points = [
            point(1, Some(0.8), Some(0.2)),
            point(4, Some(0.3), Some(0.05)),
            point(8, None, None),
        ];
        let chart = chart(&points, Axis::Run(Key::Batch)).expect("two batches with energy");
        assert_eq!(chart.name, "energy-batch");
        assert_eq!(chart.panels.len(), 1, "no prefill energy in these points");
        let panel = &chart.panels[0];
        assert_eq!(panel.title, "decode");
        assert_eq!(panel.marks.len(), 2, "package and DRAM lines");
        assert!(panel.y.lo <= 0.05 && panel.y.hi >= 0.8);
    }

    #[test]
    fn no_energy_no_chart() {
        let points = [point(1, None, None), point(4, None, None)];
        assert!(chart(&points, Axis::Run(Key::Batch)).is_none());
        assert!(chart(&points, Axis::Run(Key::Cores)).is_none());
    }
}
