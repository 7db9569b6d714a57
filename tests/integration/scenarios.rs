//! Scenario files: every shipped scenario plans, every bad one fails at its exact location.

use crate::util::{llamaperf, stderr_of};
use llamaperf::scenario::{expand, Scenario, DEFAULT_MAX_RUNS};
use std::path::{Path, PathBuf};

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_scenario_fails_at_its_location_with_its_message() {
    let files = fixtures("tests/fixtures/scenarios/bad");
    assert!(files.len() >= 15);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .unwrap();
        let err = Scenario::load(&path)
            .and_then(|s| expand(&s, DEFAULT_MAX_RUNS).map(|_| s))
            .expect_err(&format!("{} should fail", path.display()));
        let got = err.to_string();
        let want = format!("{}:{expect}", path.display());
        assert!(got.starts_with(&want), "\n got: {got}\nwant: {want}...");
    }
}

#[test]
fn a_bad_scenario_exits_2_before_running_anything() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios/bad/unknown_key.toml");
    let out = llamaperf()
        .arg("sweep")
        .arg(&path)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("unknown_key.toml:5:1: unknown key 'promt_tokens'"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn every_shipped_scenario_is_valid_and_plans_on_a_big_machine() {
    let files = fixtures("scenarios");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "quickstart",
        "ci-smoke",
        "decode-scaling",
        "prefill-compute",
        "batch-latency",
        "smt",
        "numa-nps",
        "instances",
        "dtype",
        "frameworks",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "scenarios/{want}.toml is missing"
        );
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with('#'),
            "{} starts with a comment saying what it answers",
            path.display()
        );
        let out = llamaperf()
            .arg("sweep")
            .arg(&path)
            .args([
                "--dry-run",
                "--topology",
                "synthetic:\"pack:2 numa:4(memory=68719476736) l3:3 core:8 pu:2\"",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            stderr_of(&out)
        );
        let plan = String::from_utf8(out.stdout).unwrap();
        assert!(
            plan.contains(" planned "),
            "{}: nothing runs on a 384-thread machine:\n{plan}",
            path.display()
        );
    }
}

#[test]
fn a_misspelled_preset_is_an_error_in_a_dry_run_and_a_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let file = crate::util::scenario(tmp.path(), "[matrix]\nmodel = [\"llama-9-1b\"]\n");
    for extra in [&["--dry-run"][..], &["--out", "never"][..]] {
        let out = llamaperf()
            .current_dir(tmp.path())
            .arg("sweep")
            .arg(&file)
            .args(extra)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("s.toml:3:10: [matrix] model = \"llama-9-1b\" is neither a preset nor a path; did you mean 'llama-2-7b'?"),
            "{err}"
        );
        assert!(!tmp.path().join("never").exists());
    }
}
