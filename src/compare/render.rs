//! A comparison as Markdown (for a pull-request comment), JSON or CSV. Pure functions.

use super::{Comparison, Direction, MetricComparison, Samples, Side, Verdict};
use serde::Serialize;
use std::fmt::Write as _;

/// A value with about four significant digits.
fn value(v: f64) -> String {
    match v.abs() {
        a if a >= 1000.0 => format!("{v:.0}"),
        a if a >= 100.0 => format!("{v:.1}"),
        a if a >= 10.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

fn samples(s: &Samples) -> String {
    match s.stddev {
        Some(sd) => format!("{} ± {} (n={})", value(s.mean), value(sd), s.n),
        None => format!("{} (n={})", value(s.mean), s.n),
    }
}

fn p_value(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

fn heading(m: &MetricComparison) -> String {
    let run = match m.instance {
        Some(i) => format!("{}, instance {i}", m.run_id),
        None => m.run_id.clone(),
    };
    match &m.host {
        Some(host) => format!("{host}: {run}"),
        None => run,
    }
}

/// The summary sentence: the gate's outcome and the count of each verdict.
pub fn summary_line(c: &Comparison) -> String {
    let failed = c
        .failed
        .iter()
        .filter(|f| f.side == Side::Candidate)
        .count();
    format!(
        "{}: {} regression{}, {} improvement{}, {} inconclusive, {} too few repetitions, {} unchanged{} (threshold {}%, Welch's t-test, Benjamini-Hochberg adjusted p < {})",
        if c.regressed() { "REGRESSION" } else { "no regression" },
        c.count(Verdict::Regression),
        if c.count(Verdict::Regression) == 1 { "" } else { "s" },
        c.count(Verdict::Improvement),
        if c.count(Verdict::Improvement) == 1 { "" } else { "s" },
        c.count(Verdict::Inconclusive),
        c.count(Verdict::TooFewRepetitions),
        c.count(Verdict::Unchanged),
        if failed > 0 {
            format!(", {failed} run{} failed in the candidate", if failed == 1 { "" } else { "s" })
        } else {
            String::new()
        },
        c.options.threshold_pct,
        c.options.alpha
    )
}

/// The warning shown when the machines differ, if they do.
pub fn machine_warning(c: &Comparison) -> Option<String> {
    (!c.machine_differences.is_empty()).then(|| {
        let diffs: Vec<String> = c
            .machine_differences
            .iter()
            .map(|d| format!("{} `{}` -> `{}`", d.property, d.base, d.candidate))
            .collect();
        format!(
            "the machines differ ({}): changes may come from the machine, not the code",
            diffs.join("; ")
        )
    })
}

/// Markdown for a pull-request comment: the outcome, warnings, one table per run (metric, base,
/// candidate, change, adjusted p, verdict), failed and unmatched runs.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## llamaperf compare\n");
    let _ = writeln!(out, "**{}**\n", summary_line(c));
    let _ = writeln!(
        out,
        "base `{}`, candidate `{}`\n",
        c.base_dir, c.candidate_dir
    );
    if let Some(w) = machine_warning(c) {
        let _ = writeln!(out, "> **Warning:** {w}\n");
    }
    for note in &c.notes {
        let _ = writeln!(out, "> **Note:** {note}\n");
    }
    for run in c.metrics.chunk_by(|a, b| heading(a) == heading(b)) {
        let _ = writeln!(out, "### `{}`\n", heading(&run[0]));
        let _ = writeln!(
            out,
            "| metric | base | candidate | change | p (adjusted) | verdict |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
        for m in run {
            let verdict = match m.verdict {
                Verdict::Regression => format!("**{}**", m.verdict),
                v => v.to_string(),
            };
            let arrow = match m.direction {
                Direction::HigherIsBetter => "↑",
                Direction::LowerIsBetter => "↓",
            };
            let _ = writeln!(
                out,
                "| {} {arrow} | {} | {} | {:+.1}% | {} | {verdict} |",
                m.metric,
                samples(&m.base),
                samples(&m.candidate),
                m.change_pct,
                p_value(m.p_adjusted)
            );
        }
        out.push('\n');
    }
    if !c.failed.is_empty() {
        let _ = writeln!(out, "### Failed runs\n");
        for f in &c.failed {
            let instance = f
                .instance
                .map_or(String::new(), |i| format!(", instance {i}"));
            let host = f.host.as_ref().map_or(String::new(), |h| format!("{h}: "));
            let _ = writeln!(
                out,
                "- {host}`{}`{instance} ({}): {}",
                f.run_id, f.side, f.reason
            );
        }
        out.push('\n');
    }
    if !c.only_in_base.is_empty() || !c.only_in_candidate.is_empty() {
        let _ = writeln!(out, "### Unmatched runs\n");
        for id in &c.only_in_base {
            let _ = writeln!(out, "- only in base: `{id}`");
        }
        for id in &c.only_in_candidate {
            let _ = writeln!(out, "- only in candidate: `{id}`");
        }
        out.push('\n');
    }
    out
}

/// The whole comparison as pretty JSON.
pub fn json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).expect("comparisons serialize") + "\n"
}

/// One row of the CSV output.
#[derive(Serialize)]
struct CsvRow<'a> {
    host: &'a str,
    run_id: &'a str,
    instance: Option<usize>,
    metric: &'a str,
    direction: Direction,
    base_n: usize,
    base_mean: f64,
    base_stddev: Option<f64>,
    candidate_n: usize,
    candidate_mean: f64,
    candidate_stddev: Option<f64>,
    change_pct: f64,
    p_value: Option<f64>,
    p_adjusted: Option<f64>,
    verdict: Verdict,
}

/// One CSV row per run and metric (failed and unmatched runs are in the JSON and Markdown).
pub fn csv(c: &Comparison) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for m in &c.metrics {
        w.serialize(CsvRow {
            host: m.host.as_deref().unwrap_or_default(),
            run_id: &m.run_id,
            instance: m.instance,
            metric: &m.metric.name,
            direction: m.direction,
            base_n: m.base.n,
            base_mean: m.base.mean,
            base_stddev: m.base.stddev,
            candidate_n: m.candidate.n,
            candidate_mean: m.candidate.mean,
            candidate_stddev: m.candidate.stddev,
            change_pct: m.change_pct,
            p_value: m.p_value,
            p_adjusted: m.p_adjusted,
            verdict: m.verdict,
        })
        .expect("rows serialize");
    }
    String::from_utf8(w.into_inner().expect("in-memory writer")).expect("csv is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::machines::MachineDifference;
    use crate::compare::{CompareOptions, FailedRun};
    use crate::results::metrics::{metric as named, Metric};

    fn comparison() -> Comparison {
        let metric =
            |metric: &'static Metric, change_pct: f64, p: Option<f64>, verdict| MetricComparison {
                host: None,
                run_id: "tiny q4_k batch=1".into(),
                instance: None,
                metric,
                direction: metric.better.expect("compared metrics have a direction"),
                base: Samples {
                    n: 5,
                    mean: 1000.0,
                    stddev: Some(10.0),
                },
                candidate: Samples {
                    n: if p.is_some() { 5 } else { 1 },
                    mean: 1000.0 * (1.0 + change_pct / 100.0),
                    stddev: p.map(|_| 12.5),
                },
                change_pct,
                p_value: p,
                p_adjusted: p,
                verdict,
            };
        Comparison {
            schema_version: 1,
            base_dir: "base".into(),
            candidate_dir: "cand".into(),
            options: CompareOptions::new(5.0, 0.05).unwrap(),
            metrics: vec![
                metric(
                    named("decode_tok_s"),
                    -20.0,
                    Some(0.0001),
                    Verdict::Regression,
                ),
                metric(named("ttft_ms"), 1.0, None, Verdict::TooFewRepetitions),
            ],
            failed: vec![FailedRun {
                host: None,
                run_id: "tiny q4_k batch=2".into(),
                instance: Some(1),
                side: Side::Candidate,
                reason: "killed".into(),
            }],
            only_in_base: vec!["tiny q4_k batch=4".into()],
            only_in_candidate: Vec::new(),
            machine_differences: vec![MachineDifference {
                property: "nps".into(),
                base: "1".into(),
                candidate: "4".into(),
            }],
            notes: Vec::new(),
        }
    }

    #[test]
    fn markdown_has_the_outcome_warnings_table_failures_and_unmatched_runs() {
        let md = markdown(&comparison());
        assert!(md.contains("**REGRESSION: 1 regression, 0 improvements, 0 inconclusive, 1 too few repetitions, 0 unchanged, 1 run failed in the candidate"), "{md}");
        assert!(
            md.contains("> **Warning:** the machines differ (nps `1` -> `4`)"),
            "{md}"
        );
        assert!(md.contains("### `tiny q4_k batch=1`"), "{md}");
        assert!(md.contains("| decode_tok_s ↑ | 1000 ± 10.00 (n=5) | 800.0 ± 12.50 (n=5) | -20.0% | <0.001 | **regression** |"), "{md}");
        assert!(
            md.contains(
                "| ttft_ms ↓ | 1000 ± 10.00 (n=5) | 1010 (n=1) | +1.0% | – | too few repetitions |"
            ),
            "{md}"
        );
        assert!(
            md.contains("- `tiny q4_k batch=2`, instance 1 (candidate): killed"),
            "{md}"
        );
        assert!(md.contains("- only in base: `tiny q4_k batch=4`"), "{md}");
    }

    #[test]
    fn csv_has_one_row_per_metric_and_json_round_trips() {
        let c = comparison();
        let text = csv(&c);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with(",tiny q4_k batch=1,,decode_tok_s,higher_is_better,5,1000.0,10.0,5,800.0,12.5,-20.0,0.0001,0.0001,regression"), "{text}");
        assert!(lines[2].ends_with(",,,too_few_repetitions"), "{text}");
        let back: Comparison = serde_json::from_str(&json(&c)).unwrap();
        assert_eq!(back, c);
    }
}
