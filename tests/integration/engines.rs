//! Several engines in one results folder: the report's software-gain table and charts,
//! `compare` between engines, and `plan --engine`, on one real sweep of the tiny model with
//! the tuned and the reference engine.

use crate::util::{llamaperf, scenario, stderr_of, summary};
use llamaperf::compare::{Comparison, EnginePair};
use llamaperf::plan::CapacityPlan;
use llamaperf::report::canvas::number;
use llamaperf::results::summary::SummaryRow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Both engines on 1 and 2 cores at batch 1 and 2: the reference engine's batch-2 runs are
/// skipped (it computes batch 1 only), so batch 2 has the tuned engine alone.
const SCENARIO: &str = r#"
[defaults]
model = "tiny"
dtype = "q8_0"
prompt_tokens = 16
gen_tokens = 8
warmup = 1
repetitions = 3
timeout_s = 120
counters = ["none"]

[matrix]
engine = ["tuned", "reference"]
cores = [1, 2]
batch = [1, 2]
"#;

/// The results folder of [`SCENARIO`], swept once for every test of this module. The sweep
/// has a model cache of its own: the quick calibration it saves holds its data type only,
/// which tests of other data types must not find as the machine's latest.
fn swept() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let file = scenario(tmp.path(), SCENARIO);
        let dir = tmp.path().join("out");
        let out = llamaperf()
            .env("LLAMAPERF_CACHE", tmp.path().join("cache"))
            .arg("sweep")
            .arg(&file)
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        (tmp, dir)
    });
    dir
}

/// The summary row of `engine` at `cores` and `batch`.
fn row<'a>(rows: &'a [SummaryRow], engine: &str, cores: &str, batch: usize) -> &'a SummaryRow {
    rows.iter()
        .find(|r| r.engine == engine && r.cores == cores && r.batch == batch)
        .unwrap_or_else(|| panic!("no row of {engine} at {cores} cores, batch {batch}"))
}

/// The ratio cell the report should write for `metric` of `engine` over `base`.
fn expected_ratio(engine: &SummaryRow, base: &SummaryRow, metric: &str, cv: &str) -> String {
    let ratio = engine.get(metric).unwrap() / base.get(metric).unwrap();
    let (a, b) = (engine.get(cv).unwrap(), base.get(cv).unwrap());
    format!(
        "{} ± {}",
        number(ratio),
        number(ratio * (a * a + b * b).sqrt())
    )
}

/// The rows of the report's software-gain table, as cells.
fn gain_rows(md: &str) -> Vec<Vec<String>> {
    let section = md
        .split("## Software gain\n")
        .nth(1)
        .expect("a software gain section");
    let table: Vec<&str> = section
        .lines()
        .skip_while(|l| !l.starts_with("| configuration |"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    table[2..]
        .iter()
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Writes the report of the sweep into a fresh folder with `extra` arguments.
fn report(extra: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let done = llamaperf()
        .arg("report")
        .arg(swept())
        .arg("--out")
        .arg(out.path())
        .args(["--format", "svg"])
        .args(extra)
        .output()
        .unwrap();
    (done, out)
}

#[test]
fn the_report_has_the_software_gain_of_each_configuration_and_engines_as_series() {
    let rows = summary(swept());
    let (done, out) = report(&[]);
    assert!(done.status.success(), "{}", stderr_of(&done));
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(
        md.contains("Engines measured: `tuned`, `reference`.") && md.contains("engine `tuned`'s"),
        "tuned is the base by default:\n{md}"
    );
    let table = gain_rows(&md);
    assert_eq!(
        table.len(),
        4,
        "batch 1 on 1 and 2 cores, both engines; batch 2 has one engine:\n{md}"
    );
    for (i, cores) in ["1", "2"].into_iter().enumerate() {
        let (tuned, reference) = (
            row(&rows, "tuned", cores, 1),
            row(&rows, "reference", cores, 1),
        );
        let base = &table[2 * i];
        let other = &table[2 * i + 1];
        assert_eq!(base[..2], [format!("cores={cores}"), "tuned".into()]);
        assert_eq!(base[3], "base");
        assert_eq!(other[..2], [format!("cores={cores}"), "reference".into()]);
        assert_eq!(other[2], number(reference.get("prefill_tok_s").unwrap()));
        assert_eq!(
            other[3],
            expected_ratio(reference, tuned, "prefill_tok_s", "prefill_cv")
        );
        assert_eq!(
            other[5],
            expected_ratio(reference, tuned, "decode_tok_s", "decode_cv")
        );
        assert_eq!(
            other[7],
            expected_ratio(reference, tuned, "ttft_ms", "ttft_cv")
        );
    }
    assert!(
        md.contains("| reference | "),
        "the geometric mean over configurations"
    );
    let scaling = std::fs::read_to_string(out.path().join("charts/scaling.svg")).unwrap();
    for engine in ["tuned", "reference"] {
        assert!(
            scaling.contains(&format!("\n{engine} batch=1\n")),
            "the scaling chart has a series of {engine} at batch 1"
        );
    }
    assert!(out.path().join("charts/compare-engine.svg").is_file());
}

#[test]
fn the_gain_base_is_chosen_by_flag_and_an_absent_one_is_an_input_error() {
    let rows = summary(swept());
    let (done, out) = report(&["--gain-base", "reference"]);
    assert!(done.status.success(), "{}", stderr_of(&done));
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    let table = gain_rows(&md);
    assert_eq!(table[0][..2], ["cores=1".to_string(), "reference".into()]);
    assert_eq!(
        table[1][5],
        expected_ratio(
            row(&rows, "tuned", "1", 1),
            row(&rows, "reference", "1", 1),
            "decode_tok_s",
            "decode_cv"
        )
    );
    let (done, _out) = report(&["--gain-base", "llama.cpp"]);
    assert_eq!(done.status.code(), Some(2));
    assert!(
        stderr_of(&done).contains("--gain-base llama.cpp")
            && stderr_of(&done).contains("engines measured: tuned, reference"),
        "{}",
        stderr_of(&done)
    );
}

/// `compare` of the sweep's two engines with `args`: exit code, stdout, stderr.
fn compare(args: &[&str]) -> (i32, String, String) {
    let out = llamaperf().arg("compare").args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr_of(&out),
    )
}

#[test]
fn compare_matches_two_engines_on_the_same_configurations() {
    let dir = swept().to_str().unwrap();
    let rows = summary(swept());
    let engines = ["--engine-base", "tuned", "--engine-candidate", "reference"];
    let (code, json, err) = compare(&[&[dir, "--format", "json"][..], &engines].concat());
    let c: Comparison = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(code, if c.fails() { 1 } else { 0 }, "{err}");
    assert_eq!(
        c.engines,
        Some(EnginePair {
            base: "tuned".into(),
            candidate: "reference".into()
        })
    );
    let id = |cores: usize, batch: usize| {
        format!("tiny q8_0 batch={batch} prompt=16 gen=8 cores={cores} smt=off compact local nps=any instances=1")
    };
    let mut ids: Vec<&str> = c.metrics.iter().map(|m| m.run_id.as_str()).collect();
    ids.dedup();
    assert_eq!(
        ids,
        [id(1, 1), id(2, 1)],
        "batch 1, matched without the engine"
    );
    assert_eq!(
        c.only_in_base,
        [id(1, 2), id(2, 2)],
        "the tuned engine alone"
    );
    assert!(c.only_in_candidate.is_empty());
    let decode = c
        .metrics
        .iter()
        .find(|m| m.run_id == id(2, 1) && m.metric.name == "decode_tok_s")
        .unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    let (tuned, reference) = (row(&rows, "tuned", "2", 1), row(&rows, "reference", "2", 1));
    assert!(close(decode.base.mean, tuned.get("decode_tok_s").unwrap()));
    assert!(close(
        decode.candidate.mean,
        reference.get("decode_tok_s").unwrap()
    ));
    assert!(
        err.contains("of engine reference against tuned:"),
        "the verdict names the engines: {err}"
    );

    // the Markdown names them too; two folders (a copy) give the same matching
    let copy = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(swept()).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let other = copy.path().to_str().unwrap();
    let (_, md, _) = compare(&[&[dir, other][..], &engines].concat());
    assert!(
        md.contains("Engines: candidate `reference` against base `tuned`"),
        "{md}"
    );
    assert_eq!(
        md.matches("### `tiny q8_0 batch=1").count(),
        2,
        "one table per matched configuration:\n{md}"
    );
}

#[test]
fn compare_between_engines_refuses_an_absent_engine_and_a_missing_side() {
    let dir = swept().to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &[dir, "--engine-base", "tuned", "--engine-candidate", "tuned"],
            "both 'tuned' on the same folders",
        ),
        (
            &[
                dir,
                "--engine-base",
                "tuned",
                "--engine-candidate",
                "llama.cpp",
            ],
            "engine 'llama.cpp' has no measured run in the candidate",
        ),
        (&[dir, "--engine-base", "tuned"], "--engine-candidate"),
        (&["--base", dir], "no candidate folders"),
    ];
    for (args, message) in cases {
        let (code, _, err) = compare(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let (_, _, err) = compare(cases[1].0);
    assert!(
        err.contains("engines measured there: tuned, reference"),
        "{err}"
    );
}

/// `plan` from the sweep with `extra` arguments: exit code, stdout, stderr.
fn plan(extra: &[&str]) -> (i32, String, String) {
    let out = llamaperf()
        .arg("plan")
        .args([
            "--model",
            "tiny",
            "--dtype",
            "q8_0",
            "--context",
            "24",
            "--prompt-tokens",
            "16",
            "--cores-per-instance",
            "1",
            "--json",
            "--from",
        ])
        .arg(swept())
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr_of(&out),
    )
}

#[test]
fn plan_projects_from_the_chosen_engines_runs_only() {
    let rows = summary(swept());
    for engine in ["tuned", "reference"] {
        let (code, json, err) = plan(&["--engine", engine]);
        assert_eq!(code, 0, "{err}");
        let p: CapacityPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(p.engine.as_deref(), Some(engine));
        let want = row(&rows, engine, "1", 1).get("tpot_mean_ms").unwrap();
        let at = p.at_batch.expect("batch 1 on 1 core was measured");
        assert!(
            (at.tpot_ms - want).abs() <= 1e-9 * want,
            "{engine}: {} vs {want}",
            at.tpot_ms
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains(&format!("engine {engine} at"))),
            "{:?}",
            p.notes
        );
    }
    let (code, _, err) = plan(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("on several engines (tuned, reference)") && err.contains("--engine ENGINE"),
        "{err}"
    );
    let (code, _, err) = plan(&["--engine", "openai"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("engine 'openai'") && err.contains("engines measured: tuned, reference"),
        "{err}"
    );
}
