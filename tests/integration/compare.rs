//! `llamaperf compare` on real results folders: two sweeps of `scenarios/ci-smoke.toml` on the
//! tiny model, committed under `tests/fixtures/results/` (ci-smoke-a and ci-smoke-b, measured one
//! after the other on a shared 2-core machine, so they carry real run-to-run noise).
//!
//! The slower, equally fast and high-variance candidates are NOT new measurements: each test
//! copies a fixture folder into a temp folder and rewrites the per-repetition numbers of its
//! `runs.jsonl` (every decode step of a repetition multiplied by a factor, the repetition's
//! metrics and the run's summary recomputed from the steps exactly as the worker computes them).
//! `compare` reads only `plan.json`, `machine.json` and `runs.jsonl`.

use crate::util::{llamaperf, stderr_of};
use llamaperf::compare::{Comparison, Side, Verdict, COMPARED};
use llamaperf::measure::generation::Timing;
use llamaperf::measure::metrics::RepetitionMetrics;
use llamaperf::measure::record::RunSummary;
use llamaperf::results::{Outcome, ResultsDir, SweepRecord};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results")
        .join(name)
}

/// Copies the fixture `name` into `dir`/`name`.
fn copy_fixture(name: &str, dir: &Path) -> PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to
}

/// The folder's lines, as the current version (the fixtures' version 1 lines migrated).
fn read_lines(dir: &Path) -> Vec<SweepRecord> {
    ResultsDir::read(dir).unwrap().records().to_vec()
}

fn write_lines(dir: &Path, lines: &[SweepRecord]) {
    let text: String = lines
        .iter()
        .map(|l| serde_json::to_string(l).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join("runs.jsonl"), text).unwrap();
}

/// A candidate made from fixture `name`: the decode steps of repetition i of every run are
/// multiplied by `factors[i % len]` (1.25 = decode 20% slower), metrics recomputed.
fn with_decode_factors(name: &str, dir: &Path, factors: &[f64]) -> PathBuf {
    let to = copy_fixture(name, dir);
    let mut lines = read_lines(&to);
    for line in &mut lines {
        let (batch, prompt) = (line.spec.config.batch, line.spec.prompt.tokens());
        let Outcome::Ok { record } = &mut line.outcome else {
            continue;
        };
        for (i, rep) in record.repetitions.iter_mut().enumerate() {
            let f = factors[i % factors.len()];
            rep.decode_steps_ms.iter_mut().for_each(|s| *s *= f);
            let timing = Timing {
                ttft_ms: rep.metrics.ttft_ms,
                decode_steps_ms: rep.decode_steps_ms.clone(),
                first_sequence: Vec::new(),
            };
            rep.metrics = RepetitionMetrics::from_timing(batch, prompt, &timing);
        }
        record.summary = RunSummary::of(&record.repetitions).unwrap();
    }
    write_lines(&to, &lines);
    to
}

/// Runs `compare --format json` and returns the exit code and the parsed comparison.
fn compare_json(base: &Path, candidate: &Path, extra: &[&str]) -> (i32, Comparison, String) {
    let out = llamaperf()
        .arg("compare")
        .arg(base)
        .arg(candidate)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let comparison = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", stderr_of(&out));
    });
    (out.status.code().unwrap(), comparison, stderr_of(&out))
}

fn verdicts(c: &Comparison, metric: &str) -> Vec<Verdict> {
    c.metrics
        .iter()
        .filter(|m| m.metric.name == metric)
        .map(|m| m.verdict)
        .collect()
}

#[test]
fn a_a_comparison_of_two_noisy_sweeps_is_no_regression_either_way() {
    for (base, candidate) in [("ci-smoke-a", "ci-smoke-b"), ("ci-smoke-b", "ci-smoke-a")] {
        let (code, c, stderr) = compare_json(&fixture(base), &fixture(candidate), &[]);
        assert_eq!(code, 0, "{base} vs {candidate}: {stderr}");
        assert_eq!(c.count(Verdict::Regression), 0, "{c:#?}");
        assert_eq!(c.metrics.len(), 4 * COMPARED.len());
        assert!(c
            .metrics
            .iter()
            .all(|m| m.base.n == 5 && m.candidate.n == 5));
        assert!(c.only_in_base.is_empty() && c.only_in_candidate.is_empty());
        assert!(c.machine_differences.is_empty(), "same machine");
        assert!(stderr.contains("no regression"), "{stderr}");
    }
}

#[test]
fn decode_twenty_percent_slower_is_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    let slower = with_decode_factors("ci-smoke-b", tmp.path(), &[1.25]);
    let (code, c, stderr) = compare_json(&fixture("ci-smoke-b"), &slower, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("REGRESSION"), "{stderr}");
    for m in c.metrics.iter().filter(|m| m.metric.name == "decode_tok_s") {
        assert!((m.change_pct + 20.0).abs() < 0.01, "{m:?}");
    }
    // The runs on one core are steady: their decode regression is certain. The runs on all
    // (both, shared) cores may be too noisy to call, but never an improvement.
    let decode = verdicts(&c, "decode_tok_s");
    assert_eq!(decode[0], Verdict::Regression, "{decode:?}");
    assert_eq!(decode[2], Verdict::Regression, "{decode:?}");
    assert!(decode
        .iter()
        .all(|v| matches!(v, Verdict::Regression | Verdict::Inconclusive)));
    assert!(verdicts(&c, "prefill_tok_s")
        .iter()
        .all(|v| *v == Verdict::Unchanged));
}

#[test]
fn decode_three_percent_slower_is_under_the_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let slower = with_decode_factors("ci-smoke-b", tmp.path(), &[1.0 / 0.97]);
    let (code, c, stderr) = compare_json(&fixture("ci-smoke-b"), &slower, &[]);
    assert_eq!(code, 0, "{stderr}");
    for m in c.metrics.iter().filter(|m| m.metric.name == "decode_tok_s") {
        assert!((m.change_pct + 3.0).abs() < 0.01, "{m:?}");
        assert_eq!(m.verdict, Verdict::Unchanged);
    }
    // Under a 2% threshold the same change is beyond it, and then up to the test.
    let (_, c, _) = compare_json(&fixture("ci-smoke-b"), &slower, &["--threshold", "2"]);
    assert!(verdicts(&c, "decode_tok_s")
        .iter()
        .all(|v| matches!(v, Verdict::Regression | Verdict::Inconclusive)));
}

#[test]
fn a_huge_change_with_high_variance_is_inconclusive_not_a_regression() {
    let tmp = tempfile::tempdir().unwrap();
    // Mean decode throughput about 30% lower, but the repetitions range from 10% faster to
    // four times slower.
    let erratic = with_decode_factors("ci-smoke-b", tmp.path(), &[0.9, 4.0, 1.0, 3.5, 1.1]);
    let (code, c, stderr) = compare_json(&fixture("ci-smoke-b"), &erratic, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(c.count(Verdict::Regression), 0, "{c:#?}");
    for m in c.metrics.iter().filter(|m| m.metric.name == "decode_tok_s") {
        assert!(m.change_pct < -20.0, "{m:?}");
        assert_eq!(m.verdict, Verdict::Inconclusive, "{m:?}");
    }
}

#[test]
fn one_repetition_is_too_few_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let single = copy_fixture("ci-smoke-b", tmp.path());
    let mut lines = read_lines(&single);
    for line in &mut lines {
        if let Outcome::Ok { record } = &mut line.outcome {
            record.repetitions.truncate(1);
            record.summary = RunSummary::of(&record.repetitions).unwrap();
        }
    }
    write_lines(&single, &lines);
    let (code, c, _) = compare_json(&fixture("ci-smoke-a"), &single, &[]);
    assert_eq!(code, 0);
    assert!(c
        .metrics
        .iter()
        .all(|m| m.verdict == Verdict::TooFewRepetitions && m.p_value.is_none()));
    let out = llamaperf()
        .args(["compare"])
        .arg(fixture("ci-smoke-a"))
        .arg(&single)
        .output()
        .unwrap();
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("| too few repetitions |"), "{md}");
    assert!(md.contains("28 too few repetitions"), "{md}");
}

#[test]
fn markdown_and_csv_render_every_metric() {
    let out = llamaperf()
        .arg("compare")
        .arg(fixture("ci-smoke-a"))
        .arg(fixture("ci-smoke-b"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("## llamaperf compare"), "{md}");
    assert_eq!(
        md.matches("| metric | base | candidate | change |").count(),
        4
    );
    assert_eq!(md.matches("| decode_tok_s ↑ |").count(), 4);
    assert_eq!(md.matches("| tpot_p99_ms ↓ |").count(), 4);
    let out = llamaperf()
        .arg("compare")
        .arg(fixture("ci-smoke-a"))
        .arg(fixture("ci-smoke-b"))
        .args(["--format", "csv"])
        .output()
        .unwrap();
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "host",
            "run_id",
            "instance",
            "metric",
            "direction",
            "base_n",
            "base_mean",
            "base_stddev",
            "candidate_n",
            "candidate_mean",
            "candidate_stddev",
            "change_pct",
            "p_value",
            "p_adjusted",
            "verdict"
        ]
    );
    assert_eq!(reader.records().count(), 28);
}

#[test]
fn unmatched_runs_failures_and_machine_differences_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let candidate = copy_fixture("ci-smoke-b", tmp.path());
    let mut lines = read_lines(&candidate);
    let dropped = lines.remove(3).run_id();
    lines[1].outcome = Outcome::Failed {
        reason: "worker killed by signal 9".into(),
        stderr_tail: Vec::new(),
    };
    write_lines(&candidate, &lines);
    let machine = candidate.join("machine.json");
    let text = std::fs::read_to_string(&machine).unwrap();
    let mut info: serde_json::Value = serde_json::from_str(&text).unwrap();
    info["cpu_model"] = "Another CPU".into();
    info["kernel"] = "9.9.9".into();
    std::fs::write(&machine, info.to_string()).unwrap();

    let (code, c, stderr) = compare_json(&fixture("ci-smoke-a"), &candidate, &[]);
    assert_eq!(
        code, 1,
        "a run failing in the candidate fails the gate: {stderr}"
    );
    assert_eq!(c.only_in_base, [dropped]);
    assert_eq!(c.failed.len(), 1);
    assert_eq!(c.failed[0].side, Side::Candidate);
    let differing: Vec<&str> = c
        .machine_differences
        .iter()
        .map(|d| d.property.as_str())
        .collect();
    assert_eq!(differing, ["cpu_model", "kernel"]);
    assert!(stderr.contains("warning: the machines differ"), "{stderr}");
    assert!(stderr.contains("Another CPU"), "{stderr}");
}

#[test]
fn bad_input_exits_with_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                tmp.path().display().to_string(),
                fixture("ci-smoke-a").display().to_string(),
            ],
            "not a llamaperf results folder",
        ),
        (
            vec![
                fixture("ci-smoke-a").display().to_string(),
                fixture("ci-smoke-b").display().to_string(),
                "--threshold=-1".into(),
            ],
            "--threshold -1",
        ),
        (
            vec![
                fixture("ci-smoke-a").display().to_string(),
                fixture("ci-smoke-b").display().to_string(),
                "--alpha=1.5".into(),
            ],
            "--alpha 1.5",
        ),
        (
            vec![
                fixture("ci-smoke-a").display().to_string(),
                fixture("ci-smoke-b").display().to_string(),
                "--format=xml".into(),
            ],
            "possible values",
        ),
    ];
    for (args, message) in cases {
        let out = llamaperf().arg("compare").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr_of(&out).contains(message),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    let other = copy_fixture("ci-smoke-b", tmp.path());
    let mut lines = read_lines(&other);
    lines
        .iter_mut()
        .for_each(|l| l.spec.config.model.push_str(" renamed"));
    write_lines(&other, &lines);
    let out = llamaperf()
        .arg("compare")
        .arg(fixture("ci-smoke-a"))
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("no measured run in common"));
}

#[test]
fn the_folders_are_only_read() {
    let tmp = tempfile::tempdir().unwrap();
    let base = copy_fixture("ci-smoke-a", tmp.path());
    // An interrupted write: resuming would drop this partial line, comparing must not touch it.
    let runs = base.join("runs.jsonl");
    let mut text = std::fs::read_to_string(&runs).unwrap();
    text.push_str("{\"schema_version\":1,\"run_id\":\"cut sh");
    std::fs::write(&runs, &text).unwrap();
    let before: Vec<(std::ffi::OsString, Vec<u8>)> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    let (code, c, _) = compare_json(&base, &fixture("ci-smoke-b"), &[]);
    assert_eq!(code, 0);
    assert_eq!(c.metrics.len(), 28);
    for (name, bytes) in before {
        assert_eq!(
            std::fs::read(base.join(&name)).unwrap(),
            bytes,
            "{name:?} changed"
        );
    }
}
