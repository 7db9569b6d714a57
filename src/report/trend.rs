//! `history trend`: one metric over commits (or dates) from the history database, per machine
//! and run, as a table and a chart. Each point is a commit (all folders with that label) or a
//! folder (by the date its measurements started); its values are the metric's per-repetition
//! values of those folders (or the run's one value, for metrics without repetitions). The
//! point shows their median, with whiskers from the smallest to the largest value; the table
//! adds p10 and p90.

use super::canvas::{self, Chart, ChartAxis, Color, LegendEntry, Mark, Panel};
use super::ReportError;
use crate::results::history::query::{StoredMachine, StoredValues};
use crate::results::metrics::Metric;
use crate::results::store::write_atomic;
use serde::Serialize;
use statrs::statistics::{Data, OrderStatistics};
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;

/// What a trend's points are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendX {
    /// One point per label (commit): every folder ingested under it.
    Commit,
    /// One point per folder, at the date its measurements started (UTC).
    Date,
}

impl FromStr for TrendX {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "commit" => Ok(TrendX::Commit),
            "date" => Ok(TrendX::Date),
            _ => Err(format!("'{s}': allowed are commit, date")),
        }
    }
}

/// One point of a trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    /// The commit (label), or the folder's start as `YYYY-MM-DD HH:MM:SS` UTC.
    pub x: String,
    /// When its first folder's measurements started, Unix seconds.
    pub started_unix_s: f64,
    /// Folders it holds.
    pub folders: usize,
    /// Values: repetitions over its folders (or one per folder).
    pub n: usize,
    /// Median of the values, in the metric's unit.
    pub median: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// The points of one run (or instance) on one machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendSeries {
    /// The machine's id in the history.
    pub machine: i64,
    /// The run id.
    pub run_id: String,
    /// The instance of a multi-instance run.
    pub instance: Option<usize>,
    /// Its points, oldest first.
    pub points: Vec<TrendPoint>,
}

/// A metric over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// The metric.
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// What the points are.
    pub x: TrendX,
    /// One series per machine and run.
    pub series: Vec<TrendSeries>,
}

/// The folder's start as `YYYY-MM-DD HH:MM:SS` (UTC).
fn date(unix_s: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("{unix_s:.0}"))
}

/// The statistics of one point's values.
fn point(x: String, started_unix_s: f64, folders: usize, values: Vec<f64>) -> TrendPoint {
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let n = values.len();
    let mut data = Data::new(values);
    TrendPoint {
        x,
        started_unix_s,
        folders,
        n,
        median: data.median(),
        p10: data.quantile(0.1),
        p90: data.quantile(0.9),
        min,
        max,
    }
}

/// The trend of `metric` from its stored values (ordered by machine, run, instance and time).
pub fn trend(values: &[StoredValues], metric: &Metric, x: TrendX) -> Trend {
    let mut series: Vec<TrendSeries> = Vec::new();
    for chunk in values
        .chunk_by(|a, b| (a.machine, &a.run_id, a.instance) == (b.machine, &b.run_id, b.instance))
    {
        let mut groups: Vec<(String, f64, Vec<i64>, Vec<f64>)> = Vec::new();
        for v in chunk {
            let key = match x {
                TrendX::Commit => v.label.clone(),
                TrendX::Date => format!("{} #{}", date(v.started_unix_s), v.folder),
            };
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => {
                    g.2.push(v.folder);
                    g.3.extend(&v.values);
                }
                None => groups.push((key, v.started_unix_s, vec![v.folder], v.values.clone())),
            }
        }
        let points = groups
            .into_iter()
            .map(|(key, started, mut folders, values)| {
                folders.dedup();
                let x = match x {
                    TrendX::Commit => key,
                    TrendX::Date => date(started),
                };
                point(x, started, folders.len(), values)
            })
            .collect();
        series.push(TrendSeries {
            machine: chunk[0].machine,
            run_id: chunk[0].run_id.clone(),
            instance: chunk[0].instance,
            points,
        });
    }
    Trend {
        metric: metric.name.clone(),
        unit: metric.unit.to_string(),
        x,
        series,
    }
}

fn series_name(s: &TrendSeries) -> String {
    match s.instance {
        Some(i) => format!("{} (instance {i})", s.run_id),
        None => s.run_id.clone(),
    }
}

/// The trend as a Markdown table: a section per machine and run, a row per point.
pub fn table(trend: &Trend, machines: &[StoredMachine]) -> String {
    let mut out = String::new();
    for s in &trend.series {
        let machine = machines.iter().find(|m| m.id == s.machine).map_or_else(
            || format!("machine {}", s.machine),
            |m| m.identity.to_string(),
        );
        let _ = writeln!(
            out,
            "## {} on machine {} ({machine})\n",
            series_name(s),
            s.machine
        );
        let unit = &trend.unit;
        let what = match trend.x {
            TrendX::Commit => "commit",
            TrendX::Date => "date (UTC)",
        };
        let _ = writeln!(
            out,
            "| {what} | folders | n | median {unit} | p10 | p90 | min | max |\n|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for p in &s.points {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                p.x, p.folders, p.n, p.median, p.p10, p.p90, p.min, p.max
            );
        }
        out.push('\n');
    }
    out
}

/// The trend as a chart: one line of medians per machine and run over the points (in time
/// order), each point with a whisker from its smallest to its largest value.
pub fn chart(trend: &Trend) -> Chart {
    let mut xs: Vec<(f64, String)> = trend
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.started_unix_s, p.x.clone())))
        .collect();
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut names: Vec<String> = Vec::new();
    for (_, x) in xs {
        if !names.contains(&x) {
            names.push(x);
        }
    }
    let count = trend.series.len() as f64;
    let mut marks = Vec::new();
    let mut legend = Vec::new();
    let mut ys = Vec::new();
    for (i, s) in trend.series.iter().enumerate() {
        // series side by side around each slot, so their whiskers do not hide each other
        let offset = (i as f64 - (count - 1.0) / 2.0) * 0.3 / count.max(1.0);
        let at = |p: &TrendPoint| names.iter().position(|n| *n == p.x).unwrap_or(0) as f64 + offset;
        let points: Vec<(f64, f64)> = s.points.iter().map(|p| (at(p), p.median)).collect();
        marks.push(Mark::series(points, Color::Series(i)));
        for p in &s.points {
            if p.max > p.min {
                marks.push(Mark::ErrorBar {
                    x: at(p),
                    lo: p.min,
                    hi: p.max,
                });
            }
            ys.extend([p.min, p.max]);
        }
        legend.push(LegendEntry::series(
            format!("machine {}: {}", s.machine, series_name(s)),
            Color::Series(i),
        ));
    }
    let what = match trend.x {
        TrendX::Commit => "commit",
        TrendX::Date => "date (UTC)",
    };
    Chart {
        name: format!("trend-{}", trend.metric),
        title: format!("{} by {what}", trend.metric),
        about: "Median of each point's values, whiskers from the smallest to the largest.".into(),
        sources: vec!["history database"],
        panels: vec![Panel {
            title: String::new(),
            x: ChartAxis::categories(what, names),
            y: ChartAxis::fit(format!("{} ({})", trend.metric, trend.unit), &ys, false),
            marks,
        }],
        stacked: false,
        legend,
    }
}

/// Draws `chart` into `path`, as SVG when its extension is `svg`, as PNG when `png`.
pub fn write_chart(chart: &Chart, path: &Path) -> Result<(), ReportError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let bytes = match ext.as_str() {
        "png" => canvas::png(chart)?,
        "svg" => canvas::svg(chart)?.into_bytes(),
        _ => return Err(ReportError::Format(ext)),
    };
    write_atomic(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::metrics::metric;

    fn stored(run: &str, folder: i64, label: &str, started: f64, values: &[f64]) -> StoredValues {
        StoredValues {
            machine: 1,
            run_id: run.into(),
            instance: None,
            folder,
            label: label.into(),
            started_unix_s: started,
            values: values.to_vec(),
        }
    }

    #[test]
    fn a_commit_pools_its_folders_and_a_date_point_is_one_folder() {
        let values = [
            stored("a", 1, "c1", 100.0, &[10.0, 12.0, 11.0]),
            stored("a", 2, "c1", 200.0, &[13.0, 9.0]),
            stored("a", 3, "c2", 300.0, &[20.0]),
            stored("b", 1, "c1", 100.0, &[5.0]),
        ];
        let t = trend(&values, metric("decode_tok_s"), TrendX::Commit);
        assert_eq!(t.series.len(), 2);
        let a = &t.series[0].points;
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].x.as_str(), a[0].folders, a[0].n), ("c1", 2, 5));
        assert_eq!((a[0].median, a[0].min, a[0].max), (11.0, 9.0, 13.0));
        assert_eq!((a[1].x.as_str(), a[1].median), ("c2", 20.0));
        let t = trend(&values, metric("decode_tok_s"), TrendX::Date);
        assert_eq!(t.series[0].points.len(), 3);
        assert_eq!(t.series[0].points[0].x, "1970-01-01 00:01:40");
    }

    #[test]
    fn the_chart_has_a_slot_per_point_and_a_whisker_per_spread() {
        let values = [
            stored("a", 1, "c1", 100.0, &[10.0, 12.0]),
            stored("a", 2, "c2", 200.0, &[11.0]),
        ];
        let c = chart(&trend(&values, metric("decode_tok_s"), TrendX::Commit));
        assert_eq!(c.panels[0].x.names, ["c1", "c2"]);
        let whiskers = c.panels[0]
            .marks
            .iter()
            .filter(|m| matches!(m, Mark::ErrorBar { .. }))
            .count();
        assert_eq!(whiskers, 1, "one point has a spread");
        assert!(canvas::svg(&c).unwrap().contains("<svg"));
    }
}
