//! A comparison as Markdown (for a pull-request comment), JSON or CSV. Pure functions.

use super::{Comparison, Direction, MetricComparison, NoiseSource, Samples, Side, Verdict};
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

fn cv(s: &Samples) -> String {
    s.cv_pct.map_or("–".into(), |cv| format!("{cv:.1}%"))
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

/// The median, over every metric and side, of the samples' coefficient of variation,
/// percent; `None` when no side has 2 samples.
fn median_cv(c: &Comparison) -> Option<f64> {
    let mut cvs: Vec<f64> = c
        .metrics
        .iter()
        .flat_map(|m| [m.base.cv_pct, m.candidate.cv_pct])
        .flatten()
        .collect();
    cvs.sort_by(f64::total_cmp);
    let n = cvs.len();
    (n > 0).then(|| (cvs[(n - 1) / 2] + cvs[n / 2]) / 2.0)
}

/// How the samples were taken and the noise they showed, for the summary.
fn method(c: &Comparison) -> String {
    let noise = median_cv(c).map_or("no noise estimate".into(), |cv| {
        format!("median CV {cv:.1}%")
    });
    match c.noise {
        NoiseSource::BetweenProcesses => format!(
            "Welch's t-test over {} base and {} candidate processes (the median repetition of each), noise between processes: {noise}",
            c.base_dirs.len(),
            c.candidate_dirs.len()
        ),
        NoiseSource::Repetitions => format!(
            "Welch's t-test over the repetitions, noise inside one process: {noise}; noise between processes not estimated (one folder on a side)"
        ),
        NoiseSource::History => format!(
            "Welch's t-test of the candidate's repetitions against {} stored results (the median repetition of each), noise: {noise}",
            c.base_dirs.len()
        ),
    }
}

/// The summary sentence: the gate's outcome, the count of each verdict and the noise judged
/// against.
pub fn summary_line(c: &Comparison) -> String {
    let failed = c
        .failed
        .iter()
        .filter(|f| f.side == Side::Candidate)
        .count();
    let outcome = if c.regressed() {
        "REGRESSION"
    } else if c.fails() {
        "INCONCLUSIVE (--fail-on-inconclusive)"
    } else {
        "no regression"
    };
    let engines = c.engines.as_ref().map_or(String::new(), |e| {
        format!(" of engine {} against {}", e.candidate, e.base)
    });
    format!(
        "{outcome}{engines}: {} regression{}, {} improvement{}, {} inconclusive, {} too few samples, {} unchanged{} (threshold {}%, {}, Benjamini-Hochberg adjusted p < {})",
        c.count(Verdict::Regression),
        if c.count(Verdict::Regression) == 1 { "" } else { "s" },
        c.count(Verdict::Improvement),
        if c.count(Verdict::Improvement) == 1 { "" } else { "s" },
        c.count(Verdict::Inconclusive),
        c.count(Verdict::TooFewSamples),
        c.count(Verdict::Unchanged),
        if failed > 0 {
            format!(", {failed} run{} failed in the candidate", if failed == 1 { "" } else { "s" })
        } else {
            String::new()
        },
        c.options.threshold_pct,
        method(c),
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

/// Markdown for a pull-request comment: the outcome, warnings and notes, one table per run
/// (metric, base, candidate, change, noise, adjusted p, verdict), failed and unmatched runs.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## llamaperf compare\n");
    let _ = writeln!(out, "**{}**\n", summary_line(c));
    let folders = |dirs: &[String]| {
        dirs.iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "base {}; candidate {}\n",
        folders(&c.base_dirs),
        folders(&c.candidate_dirs)
    );
    if let Some(e) = &c.engines {
        let _ = writeln!(
            out,
            "Engines: candidate `{}` against base `{}`, runs matched on every setting but the \
             engine (run ids leave it out).\n",
            e.candidate, e.base
        );
    }
    let _ = writeln!(
        out,
        "{}\n",
        match c.noise {
            NoiseSource::BetweenProcesses => "Samples: one per folder (process), the median of its repetitions; noise: their coefficient of variation (CV), base / candidate.",
            NoiseSource::Repetitions => "Samples: the repetitions; noise: their coefficient of variation (CV) inside one process, base / candidate.",
            NoiseSource::History => "Samples: base, one per stored result (the median of its repetitions); candidate, its repetitions; noise: their coefficient of variation (CV), base / candidate.",
        }
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
            "| metric | base | candidate | change | noise (CV) | p (adjusted) | verdict |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
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
                "| {} {arrow} | {} | {} | {:+.1}% | {} / {} | {} | {verdict} |",
                m.metric,
                samples(&m.base),
                samples(&m.candidate),
                m.change_pct,
                cv(&m.base),
                cv(&m.candidate),
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
                "- {host}`{}`{instance} ({}, `{}`): {}",
                f.run_id, f.side, f.dir, f.reason
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
    noise: NoiseSource,
    base_n: usize,
    base_mean: f64,
    base_stddev: Option<f64>,
    base_cv_pct: Option<f64>,
    candidate_n: usize,
    candidate_mean: f64,
    candidate_stddev: Option<f64>,
    candidate_cv_pct: Option<f64>,
    change_pct: f64,
    p_value: Option<f64>,
    p_adjusted: Option<f64>,
    verdict: Verdict,
}

/// One CSV row per run and metric, with the noise source and each side's CV (failed and
/// unmatched runs are in the JSON and Markdown).
pub fn csv(c: &Comparison) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for m in &c.metrics {
        w.serialize(CsvRow {
            host: m.host.as_deref().unwrap_or_default(),
            run_id: &m.run_id,
            instance: m.instance,
            metric: &m.metric.name,
            direction: m.direction,
            noise: c.noise,
            base_n: m.base.n,
            base_mean: m.base.mean,
            base_stddev: m.base.stddev,
            base_cv_pct: m.base.cv_pct,
            candidate_n: m.candidate.n,
            candidate_mean: m.candidate.mean,
            candidate_stddev: m.candidate.stddev,
            candidate_cv_pct: m.candidate.cv_pct,
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
                    n: 3,
                    mean: 1000.0,
                    stddev: Some(10.0),
                    cv_pct: Some(1.0),
                },
                candidate: Samples {
                    n: if p.is_some() { 3 } else { 1 },
                    mean: 1000.0 * (1.0 + change_pct / 100.0),
                    stddev: p.map(|_| 12.5),
                    cv_pct: p.map(|_| 1.5625),
                },
                change_pct,
                p_value: p,
                p_adjusted: p,
                verdict,
            };
        Comparison {
            schema_version: 1,
            base_dirs: vec!["b1".into(), "b2".into(), "b3".into()],
            candidate_dirs: vec!["c1".into(), "c2".into(), "c3".into()],
            engines: None,
            options: CompareOptions::new(5.0, 0.05, false).unwrap(),
            noise: NoiseSource::BetweenProcesses,
            metrics: vec![
                metric(
                    named("decode_tok_s"),
                    -20.0,
                    Some(0.0001),
                    Verdict::Regression,
                ),
                metric(named("ttft_ms"), 1.0, None, Verdict::TooFewSamples),
            ],
            failed: vec![FailedRun {
                host: None,
                run_id: "tiny q4_k batch=2".into(),
                instance: Some(1),
                side: Side::Candidate,
                dir: "c2".into(),
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
    fn markdown_has_the_outcome_noise_warnings_table_failures_and_unmatched_runs() {
        let md = markdown(&comparison());
        assert!(md.contains("**REGRESSION: 1 regression, 0 improvements, 0 inconclusive, 1 too few samples, 0 unchanged, 1 run failed in the candidate (threshold 5%, Welch's t-test over 3 base and 3 candidate processes (the median repetition of each), noise between processes: median CV 1.0%, Benjamini-Hochberg adjusted p < 0.05)**"), "{md}");
        assert!(
            md.contains("base `b1`, `b2`, `b3`; candidate `c1`, `c2`, `c3`"),
            "{md}"
        );
        assert!(md.contains("Samples: one per folder (process)"), "{md}");
        assert!(
            md.contains("> **Warning:** the machines differ (nps `1` -> `4`)"),
            "{md}"
        );
        assert!(md.contains("### `tiny q4_k batch=1`"), "{md}");
        assert!(md.contains("| decode_tok_s ↑ | 1000 ± 10.00 (n=3) | 800.0 ± 12.50 (n=3) | -20.0% | 1.0% / 1.6% | <0.001 | **regression** |"), "{md}");
        assert!(
            md.contains(
                "| ttft_ms ↓ | 1000 ± 10.00 (n=3) | 1010 (n=1) | +1.0% | 1.0% / – | – | too few samples |"
            ),
            "{md}"
        );
        assert!(
            md.contains("- `tiny q4_k batch=2`, instance 1 (candidate, `c2`): killed"),
            "{md}"
        );
        assert!(md.contains("- only in base: `tiny q4_k batch=4`"), "{md}");
    }

    #[test]
    fn undecided_metrics_fail_only_when_asked() {
        let mut c = comparison();
        c.failed.clear();
        c.metrics[0].verdict = Verdict::Inconclusive;
        assert!(!c.fails());
        assert!(summary_line(&c).starts_with(
            "no regression: 0 regressions, 0 improvements, 1 inconclusive, 1 too few samples"
        ));
        c.options.fail_on_inconclusive = true;
        assert!(c.fails() && !c.regressed());
        assert!(
            summary_line(&c).starts_with("INCONCLUSIVE (--fail-on-inconclusive): 0 regressions")
        );
        c.metrics
            .iter_mut()
            .for_each(|m| m.verdict = Verdict::Unchanged);
        assert!(!c.fails());
    }

    #[test]
    fn repetitions_are_named_as_the_noise_when_processes_cannot_be() {
        let mut c = comparison();
        c.noise = NoiseSource::Repetitions;
        c.base_dirs.truncate(1);
        let line = summary_line(&c);
        assert!(line.contains("Welch's t-test over the repetitions, noise inside one process: median CV 1.0%; noise between processes not estimated (one folder on a side)"), "{line}");
        c.metrics.iter_mut().for_each(|m| {
            m.base.cv_pct = None;
            m.candidate.cv_pct = None;
        });
        assert!(summary_line(&c).contains("no noise estimate"));
    }

    #[test]
    fn csv_has_one_row_per_metric_and_json_round_trips() {
        let c = comparison();
        let text = csv(&c);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("host,run_id,instance,metric,direction,noise,base_n,base_mean,base_stddev,base_cv_pct,candidate_n"), "{text}");
        assert!(lines[1].starts_with(",tiny q4_k batch=1,,decode_tok_s,higher_is_better,between_processes,3,1000.0,10.0,1.0,3,800.0,12.5,1.5625,-20.0,0.0001,0.0001,regression"), "{text}");
        assert!(lines[2].ends_with(",1.0,,,too_few_samples"), "{text}");
        let back: Comparison = serde_json::from_str(&json(&c)).unwrap();
        assert_eq!(back, c);
    }
}
