//! `llamaperf report`: charts and a Markdown report of one or more results folders, or the
//! same report as one self-contained HTML file.
//!
//! ```text
//! results folders --load--> ResultSet (typed files) --> RunPoint per measured run
//!   --> Chart (panels of marks, drawn only when the data varies along their axes)
//!   --> OUT/charts/<name>.png|svg (plotters, shipped font) and OUT/report.md,
//!       or OUT/report.html with the charts inlined as SVG
//! ```
//!
//! Several folders are overlaid on the same axes, the folder's name (or a label) being one
//! more axis of every run. Output is byte-stable: no timestamps, everything ordered.

pub mod axes;
pub mod canvas;
pub mod compare;
pub mod energy;
pub mod gain;
pub mod html;
pub mod latency;
pub mod load;
pub mod markdown;
pub mod outliers;
pub mod roofline;
pub mod runs;
pub mod scaling;
pub mod tokens;
pub mod trend;
pub mod ttft;

use crate::results::store::write_atomic;
use crate::results::ResultsError;
use crate::scenario::Key;
use axes::{varying, Axis};
use canvas::Chart;
use load::ResultSet;
use outliers::{step_outliers, RunOutliers};
use runs::{run_points, RunPoint};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tokens::{step_latencies, StepLatencies};

/// The report's Markdown file, in the output folder.
pub const REPORT_FILE: &str = "report.md";
/// The folder of the charts, in the output folder.
pub const CHARTS_DIR: &str = "charts";

/// What can go wrong while making a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A results folder cannot be read.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The shipped font does not load.
    #[error("the chart font (assets/fonts/LiberationSans-Regular.ttf) could not be loaded")]
    Font,
    /// plotters or the PNG encoder failed.
    #[error("drawing chart {chart}: {reason}")]
    Draw {
        /// The chart.
        chart: String,
        /// What failed.
        reason: String,
    },
    /// `--label` given, but not once per folder.
    #[error("{labels} --label values for {dirs} results folders: give one label per folder, in the same order")]
    Labels {
        /// Labels given.
        labels: usize,
        /// Folders given.
        dirs: usize,
    },
    /// Two folders would be called the same.
    #[error(
        "results folders {first} and {second} are both called '{label}': name them with --label"
    )]
    SameLabel {
        /// The name.
        label: String,
        /// The first folder.
        first: PathBuf,
        /// The second.
        second: PathBuf,
    },
    /// Several folders and no `--out`.
    #[error(
        "a report of several results folders needs --out DIR (where report.md and charts/ go)"
    )]
    OutRequired,
    /// An unknown `--format`.
    #[error("unknown report format '{0}': allowed are png, svg, both, html")]
    Format(String),
    /// `--gain-base` names an engine the results do not hold.
    #[error("--gain-base {base}: no run of that engine was measured; engines measured: {engines}")]
    GainBase {
        /// The engine asked for.
        base: String,
        /// The engines measured, joined by ", ".
        engines: String,
    },
}

impl ReportError {
    /// Whether the user can fix it by changing an argument.
    pub fn is_input_error(&self) -> bool {
        match self {
            ReportError::Results(e) => e.is_input_error(),
            ReportError::Font | ReportError::Draw { .. } => false,
            _ => true,
        }
    }
}

/// Which image files each chart is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formats {
    /// PNG only.
    Png,
    /// SVG only.
    Svg,
    /// PNG and SVG.
    Both,
    /// One self-contained `report.html`, the charts inlined as SVG; no chart files.
    Html,
}

impl Formats {
    /// File extensions written, in order.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Formats::Png => &["png"],
            Formats::Svg => &["svg"],
            Formats::Both => &["png", "svg"],
            Formats::Html => &[],
        }
    }
}

impl FromStr for Formats {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "png" => Ok(Formats::Png),
            "svg" => Ok(Formats::Svg),
            "both" => Ok(Formats::Both),
            "html" => Ok(Formats::Html),
            _ => Err(ReportError::Format(s.to_string())),
        }
    }
}

impl fmt::Display for Formats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Formats::Png => "png",
            Formats::Svg => "svg",
            Formats::Both => "both",
            Formats::Html => "html",
        })
    }
}

/// Reads the results folders `dirs`, named by `labels` (one per folder) or by their folder
/// names, which must then differ.
pub fn load_sets(dirs: &[PathBuf], labels: &[String]) -> Result<Vec<ResultSet>, ReportError> {
    if !labels.is_empty() && labels.len() != dirs.len() {
        return Err(ReportError::Labels {
            labels: labels.len(),
            dirs: dirs.len(),
        });
    }
    let mut sets: Vec<ResultSet> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let set = ResultSet::load(dir, labels.get(i).map(String::as_str))?;
        if let Some(other) = sets.iter().find(|s| s.label == set.label) {
            return Err(ReportError::SameLabel {
                label: set.label,
                first: other.path.clone(),
                second: dir.clone(),
            });
        }
        sets.push(set);
    }
    Ok(sets)
}

/// A report, ready to be written.
#[derive(Debug, Clone)]
pub struct Report {
    /// The charts drawn, in report order.
    pub charts: Vec<Chart>,
    /// The text of `report.md`.
    pub markdown: String,
}

/// The measured runs of every set, set by set.
fn all_points(sets: &[ResultSet]) -> Vec<RunPoint> {
    sets.iter()
        .enumerate()
        .flat_map(|(i, s)| run_points(i, s))
        .collect()
}

/// The decode steps of every run of every set with the label of its set, each run labelled
/// with the axes that vary among `points`.
fn all_steps(sets: &[ResultSet], points: &[RunPoint]) -> Vec<(String, StepLatencies)> {
    let all: Vec<&RunPoint> = points.iter().collect();
    let axes = varying(&all, &[]);
    let mut out = Vec::new();
    for set in sets {
        let label = |run_id: &str, instance: Option<usize>| {
            let point = points
                .iter()
                .find(|p| p.set == set.label && p.run_id == run_id);
            let mut text = match point {
                Some(p) if !axes.is_empty() => axes
                    .iter()
                    .map(|a| a.label(&a.value(p)))
                    .collect::<Vec<_>>()
                    .join(" "),
                Some(p) => p.config.model.clone(),
                None => run_id.to_string(),
            };
            if let Some(i) = instance {
                text.push_str(&format!(" #{i}"));
            }
            text
        };
        out.extend(
            step_latencies(&set.tokens, label)
                .into_iter()
                .map(|steps| (set.label.clone(), steps)),
        );
    }
    out
}

/// Why the energy-per-token charts are not drawn.
const ENERGY_BATCH: &str = "no configuration has RAPL energy at two or more batch sizes (machines without RAPL, as most VMs, record none: see the runs' notes)";
const ENERGY_CORES: &str = "no configuration has RAPL energy on two or more core counts (machines without RAPL, as most VMs, record none: see the runs' notes)";

/// The charts of `sets` (those whose data varies along their axes) and why the others are not
/// drawn.
pub fn charts(sets: &[ResultSet]) -> (Vec<Chart>, Vec<(&'static str, &'static str)>) {
    let points = all_points(sets);
    let steps: Vec<StepLatencies> = all_steps(sets, &points).into_iter().map(|s| s.1).collect();
    let candidates: Vec<(&'static str, &'static str, Option<Chart>)> = vec![
        (
            "scaling",
            "no configuration was measured on two or more core counts",
            scaling::chart(&points),
        ),
        (
            "latency-throughput",
            "no configuration was measured at two or more batch sizes",
            latency::chart(&points),
        ),
        (
            "ttft-prompt",
            "no configuration was measured with two or more prompt lengths",
            ttft::chart(&points, Axis::Run(Key::PromptTokens)),
        ),
        (
            "ttft-batch",
            "no configuration was measured at two or more batch sizes",
            ttft::chart(&points, Axis::Run(Key::Batch)),
        ),
    ];
    let mut drawn = Vec::new();
    let mut not_drawn = Vec::new();
    for (name, why, chart) in candidates {
        match chart {
            Some(c) => drawn.push(c),
            None => not_drawn.push((name, why)),
        }
    }
    let comparisons: Vec<Chart> = compare::COMPARED
        .iter()
        .filter_map(|&a| compare::chart(&points, a))
        .collect();
    if comparisons.is_empty() {
        not_drawn.push(("compare-*", "no two runs differ in only SMT, memory policy, NPS, instances, engine, data type, placement or results set"));
    }
    drawn.extend(comparisons);
    match roofline::chart(&points, sets.len() > 1) {
        Some(c) => drawn.push(c),
        None => not_drawn.push(("roofline", "no run was measured")),
    }
    match tokens::chart(&steps) {
        Some(c) => drawn.push(c),
        None => not_drawn.push(("token-latency", "no run has two or more decode steps")),
    }
    for (name, why, along) in [
        ("energy-batch", ENERGY_BATCH, Key::Batch),
        ("energy-cores", ENERGY_CORES, Key::Cores),
    ] {
        match energy::chart(&points, Axis::Run(along)) {
            Some(c) => drawn.push(c),
            None => not_drawn.push((name, why)),
        }
    }
    (drawn, not_drawn)
}

/// How `dir` is named in the report written into `out`: empty when it is `out` itself.
fn shown_path(dir: &Path, out: &Path) -> String {
    if dir == out {
        String::new()
    } else {
        dir.display().to_string()
    }
}

/// The report of `sets` as written into `out`, with charts as `formats` and the software gain
/// over the engine `gain_base` (see [`gain::table`]).
pub fn build(
    sets: &[ResultSet],
    out: &Path,
    formats: Formats,
    gain_base: Option<&str>,
) -> Result<Report, ReportError> {
    let gain = gain::table(sets, gain_base)?;
    let (charts, not_drawn) = charts(sets);
    let outliers: Vec<RunOutliers> = all_steps(sets, &all_points(sets))
        .into_iter()
        .filter_map(|(set, steps)| {
            Some(RunOutliers {
                set,
                steps: step_outliers(&steps)?,
                run_id: steps.run_id,
                instance: steps.instance,
            })
        })
        .collect();
    let set_paths: Vec<String> = sets.iter().map(|s| shown_path(&s.path, out)).collect();
    let markdown = markdown::render(&markdown::ReportInput {
        sets,
        charts: &charts,
        not_drawn: &not_drawn,
        outliers: &outliers,
        formats,
        set_paths: &set_paths,
        gain: gain.as_ref(),
    });
    Ok(Report { charts, markdown })
}

/// Writes `report` into `out` (`report.md`, `charts/<name>.<ext>`), each file atomically;
/// chart images of an earlier report that this one does not draw are removed. As
/// [`Formats::Html`], writes `report.html` alone. Returns the path of the report's file.
pub fn write(report: &Report, out: &Path, formats: Formats) -> Result<PathBuf, ReportError> {
    if formats == Formats::Html {
        let path = out.join(html::HTML_FILE);
        std::fs::create_dir_all(out).map_err(|source| ResultsError::Io {
            path: out.to_path_buf(),
            source,
        })?;
        write_atomic(&path, html::render(report)?.as_bytes())?;
        return Ok(path);
    }
    let charts_dir = out.join(CHARTS_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ResultsError::Io { path, source }
    };
    std::fs::create_dir_all(&charts_dir).map_err(io(&charts_dir))?;
    let mut written = Vec::new();
    for chart in &report.charts {
        for ext in formats.extensions() {
            let path = charts_dir.join(format!("{}.{ext}", chart.name));
            let bytes = match *ext {
                "png" => canvas::png(chart)?,
                _ => canvas::svg(chart)?.into_bytes(),
            };
            write_atomic(&path, &bytes)?;
            written.push(path);
        }
    }
    for entry in std::fs::read_dir(&charts_dir).map_err(io(&charts_dir))? {
        let path = entry.map_err(io(&charts_dir))?.path();
        let image = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("png" | "svg")
        );
        if image && !written.contains(&path) {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    let report_path = out.join(REPORT_FILE);
    write_atomic(&report_path, report.markdown.as_bytes())?;
    Ok(report_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<ResultSet> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/tiny");
        load_sets(&[dir], &[]).expect("the fixture loads")
    }

    #[test]
    fn the_fixture_gives_the_charts_its_axes_vary_along() {
        let sets = fixture();
        let (drawn, not_drawn) = charts(&sets);
        let names: Vec<&str> = drawn.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "scaling",
                "latency-throughput",
                "ttft-prompt",
                "ttft-batch",
                "compare-instances",
                "compare-engine",
                "compare-dtype",
                "roofline",
                "token-latency"
            ]
        );
        assert_eq!(
            not_drawn,
            [
                ("energy-batch", ENERGY_BATCH),
                ("energy-cores", ENERGY_CORES)
            ],
            "the fixture's machine has no RAPL"
        );
        for chart in &drawn {
            assert!(
                !chart.panels.is_empty() && !chart.legend.is_empty(),
                "{}",
                chart.name
            );
            for panel in &chart.panels {
                assert!(!panel.marks.is_empty(), "{}: {}", chart.name, panel.title);
                assert!(panel.x.lo < panel.x.hi && panel.y.lo < panel.y.hi);
            }
        }
    }

    #[test]
    fn the_markdown_lists_runs_skips_and_charts() {
        let sets = fixture();
        let report = build(&sets, &sets[0].path, Formats::Both, None).unwrap();
        let md = &report.markdown;
        assert!(md.starts_with("# llamaperf report: report-fixture\n"));
        assert!(md.contains("| skipped |"));
        assert!(md.contains("SMT on but cores have 1 PU"));
        assert!(
            md.contains("![Throughput vs cores](charts/scaling.png) ([SVG](charts/scaling.svg))")
        );
        assert!(
            md.contains("- `runs.jsonl`: "),
            "files of a report in its own folder are relative"
        );
        let runs = md
            .split("## Runs\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a runs section");
        let rows = runs.lines().filter(|l| l.starts_with("| tiny |")).count();
        assert_eq!(rows, sets[0].rows.len(), "one table row per summary row");
        assert_eq!(
            rows, 15,
            "9 runs, 2 instances and their aggregate, 2 skipped"
        );
        assert!(
            md.contains("| tiny | reference | ")
                && md.contains("Engines measured: `tuned`, `reference`."),
            "the software gain of the fixture's two engines"
        );
    }

    #[test]
    fn formats_parse_and_name_their_files() {
        assert_eq!(
            "both".parse::<Formats>().unwrap().extensions(),
            ["png", "svg"]
        );
        assert!("html".parse::<Formats>().unwrap().extensions().is_empty());
        assert!(matches!(
            "gif".parse::<Formats>(),
            Err(ReportError::Format(_))
        ));
    }
}
