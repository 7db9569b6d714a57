//! `llamaperf compare` on real results folders: sweeps of `scenarios/ci-smoke.toml` on the tiny
//! model, committed under `tests/fixtures/results/`: ci-smoke-a and ci-smoke-b, measured one
//! after the other on a shared 2-core machine, and ci-smoke-aa/01 to 06, six sweeps of one
//! build measured one after the other on the same machine (quiet then: load average 0.9), so
//! they carry real noise between processes.
//!
//! The slower, equally fast and high-variance candidates are NOT new measurements: each test
//! copies a fixture folder into a temp folder and rewrites the per-repetition numbers of its
//! `runs.jsonl` (every decode step of a repetition multiplied by a factor, the repetition's
//! metrics and the run's summary recomputed from the steps exactly as the worker computes them).
//! `compare` reads only `plan.json`, `machine.json` and `runs.jsonl`.

use crate::util::{llamaperf, stderr_of};
use llamaperf::compare::{Comparison, NoiseSource, Side, Verdict, COMPARED};
use llamaperf::measure::generation::Timing;
use llamaperf::measure::metrics::RepetitionMetrics;
use llamaperf::measure::record::RunSummary;
use llamaperf::results::{Outcome, ResultsDir, SweepRecord};
use std::path::{Path, PathBuf};

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results")
        .join(name)
}

/// Copies the fixture `name` into `dir`/`name`.
pub(crate) fn copy_fixture(name: &str, dir: &Path) -> PathBuf {
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
    scale_decode(&to, factors);
    to
}

/// Multiplies the decode steps of repetition i of every run of the folder `to` by
/// `factors[i % len]`, and recomputes the metrics from them.
pub(crate) fn scale_decode(to: &Path, factors: &[f64]) {
    let mut lines = read_lines(to);
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
    write_lines(to, &lines);
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

/// Runs `compare --base BASE... --candidate CANDIDATE... --format json`: the exit code, the
/// parsed comparison and stderr.
fn compare_sides(
    base: &[PathBuf],
    candidate: &[PathBuf],
    extra: &[&str],
) -> (i32, Comparison, String) {
    let out = llamaperf()
        .arg("compare")
        .arg("--base")
        .args(base)
        .arg("--candidate")
        .args(candidate)
        .args(["--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let comparison = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", stderr_of(&out));
    });
    (out.status.code().unwrap(), comparison, stderr_of(&out))
}

/// The A/A fixture sweeps `numbers` (1 to 6, in the order they were measured).
fn aa(numbers: &[usize]) -> Vec<PathBuf> {
    numbers
        .iter()
        .map(|n| fixture(&format!("ci-smoke-aa/{n:02}")))
        .collect()
}

/// Copies of the A/A fixture sweeps `numbers` in `dir`, each changed by `change`.
fn aa_copies(numbers: &[usize], dir: &Path, change: impl Fn(&Path)) -> Vec<PathBuf> {
    numbers
        .iter()
        .map(|n| {
            let to = copy_fixture(&format!("ci-smoke-aa/{n:02}"), dir);
            change(&to);
            to
        })
        .collect()
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
        .all(|m| m.verdict == Verdict::TooFewSamples && m.p_value.is_none()));
    let out = llamaperf()
        .args(["compare"])
        .arg(fixture("ci-smoke-a"))
        .arg(&single)
        .output()
        .unwrap();
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("| too few samples |"), "{md}");
    assert!(md.contains("28 too few samples"), "{md}");
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
            "noise",
            "base_n",
            "base_mean",
            "base_stddev",
            "base_cv_pct",
            "candidate_n",
            "candidate_mean",
            "candidate_stddev",
            "candidate_cv_pct",
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

#[test]
fn a_a_with_three_sweeps_per_side_is_no_regression_in_any_split() {
    // Alternating (as the CI job runs them) both ways, and first half against second half.
    let splits = [
        ([1, 3, 5], [2, 4, 6]),
        ([2, 4, 6], [1, 3, 5]),
        ([1, 2, 3], [4, 5, 6]),
        ([4, 5, 6], [1, 2, 3]),
    ];
    for (base, candidate) in splits {
        let (code, c, stderr) = compare_sides(&aa(&base), &aa(&candidate), &[]);
        assert_eq!(code, 0, "{base:?} vs {candidate:?}: {stderr}");
        assert_eq!(c.count(Verdict::Regression), 0, "{c:#?}");
        assert_eq!(c.noise, NoiseSource::BetweenProcesses);
        assert_eq!(c.metrics.len(), 4 * COMPARED.len());
        assert!(c.metrics.iter().all(|m| m.base.n == 3
            && m.candidate.n == 3
            && m.base.cv_pct.is_some()
            && m.candidate.cv_pct.is_some()));
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        assert!(
            stderr.contains("no regression")
                && stderr.contains("Welch's t-test over 3 base and 3 candidate processes")
                && stderr.contains("noise between processes: median CV"),
            "{stderr}"
        );
    }
}

#[test]
fn the_same_sweeps_one_by_one_can_look_like_a_regression() {
    // What the gate did before: one folder per side, tested over the repetitions inside one
    // process, calls the difference between two sweeps of the same build a regression.
    let (code, c, stderr) = compare_json(&aa(&[2])[0], &aa(&[1])[0], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(c.count(Verdict::Regression) > 0);
    assert_eq!(c.noise, NoiseSource::Repetitions);
}

#[test]
fn twenty_percent_slower_decode_fails_with_three_sweeps_per_side() {
    let tmp = tempfile::tempdir().unwrap();
    let slower = aa_copies(&[2, 4, 6], tmp.path(), |dir| scale_decode(dir, &[1.25]));
    let (code, c, stderr) = compare_sides(&aa(&[1, 3, 5]), &slower, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("REGRESSION"), "{stderr}");
    // The runs on one core are steady: their decode regression is certain. The runs on all
    // (both, shared) cores may be too noisy to call, but never an improvement.
    let decode = verdicts(&c, "decode_tok_s");
    assert_eq!(decode[0], Verdict::Regression, "{c:#?}");
    assert_eq!(decode[2], Verdict::Regression, "{c:#?}");
    assert!(decode
        .iter()
        .all(|v| matches!(v, Verdict::Regression | Verdict::Inconclusive)));
    let decode_changes: Vec<f64> = c
        .metrics
        .iter()
        .filter(|m| m.metric.name == "decode_tok_s" && m.run_id.contains("cores=1 "))
        .map(|m| m.change_pct)
        .collect();
    assert!(
        decode_changes.len() == 2 && decode_changes.iter().all(|&c| c < -15.0),
        "{decode_changes:?}"
    );
    assert!(verdicts(&c, "prefill_tok_s")
        .iter()
        .all(|v| *v != Verdict::Regression));
}

#[test]
fn one_folder_per_side_says_the_noise_between_processes_cannot_be_estimated() {
    let (_, c, stderr) = compare_json(&fixture("ci-smoke-a"), &fixture("ci-smoke-b"), &[]);
    assert_eq!(c.noise, NoiseSource::Repetitions);
    assert!(
        c.notes[0].starts_with(
            "1 base folder and 1 candidate folder: the noise between processes cannot be estimated"
        ),
        "{:?}",
        c.notes
    );
    assert!(
        stderr.contains("note: 1 base folder and 1 candidate folder: the noise between processes cannot be estimated"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Welch's t-test over the repetitions, noise inside one process: median CV")
            && stderr.contains("noise between processes not estimated"),
        "{stderr}"
    );
    // One folder on one side is enough to lose the estimate: the candidate's repetitions are
    // pooled.
    let (_, c, stderr) = compare_sides(&aa(&[1]), &aa(&[2, 4, 6]), &[]);
    assert_eq!(c.noise, NoiseSource::Repetitions);
    assert!(c
        .metrics
        .iter()
        .all(|m| m.base.n == 5 && m.candidate.n == 15));
    assert!(
        stderr.contains("note: 1 base folder and 3 candidate folders: the noise between processes cannot be estimated"),
        "{stderr}"
    );
}

#[test]
fn fail_on_inconclusive_fails_an_undecided_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    // One of three candidate sweeps decodes four times slower: a large mean change that the
    // spread between the sweeps cannot confirm.
    let mut candidate = aa(&[2, 4]);
    candidate.extend(aa_copies(&[6], tmp.path(), |dir| scale_decode(dir, &[4.0])));
    let base = aa(&[1, 3, 5]);
    let (code, c, stderr) = compare_sides(&base, &candidate, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(c.count(Verdict::Regression), 0, "{c:#?}");
    // On one core (steady) the decode change is clearly beyond the threshold, but unconfirmed.
    let decode = verdicts(&c, "decode_tok_s");
    assert_eq!([decode[0], decode[2]], [Verdict::Inconclusive; 2], "{c:#?}");
    assert!(stderr.contains("no regression"), "{stderr}");
    let (code, c, stderr) = compare_sides(&base, &candidate, &["--fail-on-inconclusive"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(c.options.fail_on_inconclusive);
    assert!(
        stderr.contains("INCONCLUSIVE (--fail-on-inconclusive): 0 regressions"),
        "{stderr}"
    );
    // Too few samples is undecided too.
    let single = copy_fixture("ci-smoke-b", tmp.path());
    let mut lines = read_lines(&single);
    for line in &mut lines {
        if let Outcome::Ok { record } = &mut line.outcome {
            record.repetitions.truncate(1);
            record.summary = RunSummary::of(&record.repetitions).unwrap();
        }
    }
    write_lines(&single, &lines);
    let args = ["--fail-on-inconclusive"];
    let (code, _, stderr) = compare_json(&fixture("ci-smoke-a"), &single, &args);
    assert_eq!(code, 1, "{stderr}");
}

#[test]
fn one_repetition_per_sweep_is_enough_with_several_sweeps() {
    let tmp = tempfile::tempdir().unwrap();
    let once = |dir: &Path| {
        let mut lines = read_lines(dir);
        for line in &mut lines {
            if let Outcome::Ok { record } = &mut line.outcome {
                record.repetitions.truncate(1);
                record.summary = RunSummary::of(&record.repetitions).unwrap();
            }
        }
        write_lines(dir, &lines);
    };
    let base = aa_copies(&[1, 3, 5], &tmp.path().join("base"), once);
    let candidate = aa_copies(&[2, 4, 6], &tmp.path().join("candidate"), once);
    let (code, c, stderr) = compare_sides(&base, &candidate, &["--fail-on-inconclusive"]);
    assert_eq!(c.count(Verdict::TooFewSamples), 0, "{c:#?}");
    assert!(c
        .metrics
        .iter()
        .all(|m| m.base.n == 3 && m.p_value.is_some()));
    assert_eq!(c.count(Verdict::Regression), 0, "{stderr}");
    assert!(code == 0 || c.count(Verdict::Inconclusive) > 0, "{stderr}");
}

#[test]
fn a_run_failing_in_one_candidate_folder_fails_the_gate_and_names_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = aa_copies(&[4], tmp.path(), |dir| {
        let mut lines = read_lines(dir);
        lines[1].outcome = Outcome::Failed {
            reason: "worker killed by signal 9".into(),
            stderr_tail: Vec::new(),
        };
        write_lines(dir, &lines);
    });
    let candidate = [aa(&[2]), broken.clone(), aa(&[6])].concat();
    let (code, c, stderr) = compare_sides(&aa(&[1, 3, 5]), &candidate, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(c.failed.len(), 1, "{:?}", c.failed);
    assert_eq!(c.failed[0].side, Side::Candidate);
    assert_eq!(c.failed[0].dir, broken[0].display().to_string());
    let run = &c.failed[0].run_id;
    assert!(c
        .metrics
        .iter()
        .all(|m| m.candidate.n == if &m.run_id == run { 2 } else { 3 }));
}

#[test]
fn sides_given_wrongly_exit_with_2() {
    let [a, b] = [fixture("ci-smoke-a"), fixture("ci-smoke-b")];
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec!["--base".as_ref(), a.as_ref(), b.as_ref()],
            "--candidate",
        ),
        (vec!["--candidate".as_ref(), a.as_ref()], "--base"),
        (
            vec![
                a.as_ref(),
                b.as_ref(),
                "--base".as_ref(),
                a.as_ref(),
                "--candidate".as_ref(),
                b.as_ref(),
            ],
            "cannot be used with",
        ),
        (vec![a.as_ref()], "required"),
        (
            vec![
                "--base".as_ref(),
                a.as_ref(),
                tmp.path().as_ref(),
                "--candidate".as_ref(),
                b.as_ref(),
            ],
            "reading the base",
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
}

#[test]
fn the_ci_gate_script_sweeps_both_builds_in_abba_rounds_and_compares_every_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gate");
    let bin = assert_cmd::cargo::cargo_bin("llamaperf");
    let run = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci-regression.sh"))
        .arg(&bin)
        .arg(&out)
        .env("LLAMAPERF_BIN", &bin)
        .env("LLAMAPERF_CACHE", crate::util::cache_dir())
        .env("ROUNDS", "2")
        .output()
        .unwrap();
    // the same binary on both sides: no regression, bar a false alarm at the 1% level
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(
        matches!(run.status.code(), Some(0 | 1)),
        "{}\n{md}",
        stderr_of(&run)
    );
    for side in ["base-01", "candidate-01", "candidate-02", "base-02"] {
        assert!(out.join(side).join("runs.jsonl").is_file(), "{side}");
    }
    assert!(
        md.contains("Welch's t-test over 2 base and 2 candidate processes"),
        "{md}"
    );
    let usage = std::process::Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci-regression.sh"))
        .arg(&bin)
        .env("ROUNDS", "1")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2), "{}", stderr_of(&usage));
    assert!(
        stderr_of(&usage).contains("ROUNDS=1"),
        "{}",
        stderr_of(&usage)
    );
}

#[test]
fn a_closed_pipe_ends_compare_quietly_by_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("llamaperf"))
        .arg("compare")
        .arg(fixture("ci-smoke-a"))
        .arg(fixture("ci-smoke-b"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(
        out.status.signal(),
        Some(13),
        "SIGPIPE, not {:?}: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{err}");
}
