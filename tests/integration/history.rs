//! `llamaperf history` and `compare --baseline-history`: real results folders (short real
//! sweeps of the tiny synthetic model, and the committed A/A fixtures of
//! `scenarios/ci-smoke.toml`) stored in a real SQLite file by the real binary; two ingests at
//! once as two processes; corrupt, foreign and newer database files refused untouched.

use crate::compare::{copy_fixture, fixture, scale_decode};
use crate::util::{llamaperf, stderr_of, sweep_ok};
use llamaperf::compare::{Comparison, NoiseSource, Verdict};
use llamaperf::results::metrics::metric;
use llamaperf::results::{Outcome, ResultsDir};
use serde_json::Value;
use statrs::statistics::{Data, OrderStatistics};
use std::path::{Path, PathBuf};

const SCENARIO: &str = "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 16\ngen_tokens = 6\nrepetitions = 3\ntimeout_s = 120\n[matrix]\nbatch = [1, 2]\n";

/// Runs `llamaperf history ARGS --db DB`: exit code, stdout, stderr.
fn history(db: &Path, args: &[&str]) -> (i32, String, String) {
    let out = llamaperf()
        .arg("history")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr_of(&out),
    )
}

fn ingest(db: &Path, dirs: &[PathBuf], labels: &[&str]) -> Value {
    let mut args: Vec<String> = vec!["ingest".into(), "--json".into()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    for l in labels {
        args.extend(["--label".to_string(), l.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = history(db, &args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn list(db: &Path) -> Value {
    let (code, out, err) = history(db, &["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The median of the per-repetition decode_tok_s of the batch-1 run of `dir`.
fn decode_median(dir: &Path) -> (f64, usize) {
    let read = ResultsDir::read(dir).unwrap();
    let record = read
        .records()
        .iter()
        .find_map(|r| match &r.outcome {
            Outcome::Ok { record } if r.config().batch == 1 => Some(record.clone()),
            _ => None,
        })
        .expect("the batch-1 run was measured");
    let values = metric("decode_tok_s").samples(&record);
    (Data::new(values.clone()).median(), values.len())
}

#[test]
fn sweeps_are_stored_once_listed_and_trended_with_their_spread() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let first = sweep_ok(&a, SCENARIO);
    let second = sweep_ok(&b, SCENARIO);
    let db = tmp.path().join("h/history.sqlite");
    let done = ingest(&db, &[first.clone(), second.clone()], &["c1", "c2"]);
    let lines = |d: &Path| ResultsDir::read(d).unwrap().records().len();
    assert_eq!(done[0]["stored"], lines(&first) as u64);
    assert_eq!(done[1]["label"], "c2");

    // again, and from another path: nothing new
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&first).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let again = ingest(&db, &[first.clone(), copy], &[]);
    for d in again.as_array().unwrap() {
        assert_eq!(d["stored"], 0, "{d}");
        assert_eq!(d["known"], lines(&first) as u64);
        assert_eq!(d["label"], "c1", "the label it was stored under");
    }

    let listing = list(&db);
    let machines = listing["machines"].as_array().unwrap();
    assert_eq!(machines.len(), 1);
    let info = ResultsDir::read(&first).unwrap().machine().unwrap();
    assert_eq!(
        machines[0]["identity"]["cpu_model"],
        info.cpu_model.as_str()
    );
    assert_eq!(machines[0]["identity"]["cores"], info.topology.cores.len());
    assert_eq!(machines[0]["identity"]["kernel"], info.kernel.as_str());
    let folders = listing["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 2, "{listing}");
    assert_eq!(folders[0]["label"], "c1");
    assert_eq!(folders[0]["runs"], lines(&first) as u64);
    assert_eq!(folders[1]["runs"], lines(&second) as u64);
    let (code, text, _) = history(&db, &["list"]);
    assert_eq!(code, 0);
    assert!(text.contains("c1") && text.contains("c2") && text.contains(&info.cpu_model));

    for ext in ["png", "svg"] {
        let chart = tmp.path().join(format!("trend.{ext}"));
        let (code, out, err) = history(
            &db,
            &[
                "trend",
                "--metric",
                "decode_tok_s",
                "--where",
                "batch=1,model=tiny",
                "--json",
                "--chart",
                chart.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{err}");
        let trend: Value = serde_json::from_str(&out).unwrap();
        let series = trend["series"].as_array().unwrap();
        assert_eq!(series.len(), 1, "only the batch-1 run: {trend}");
        let points = series[0]["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        for (point, dir, label) in [(&points[0], &first, "c1"), (&points[1], &second, "c2")] {
            let (median, n) = decode_median(dir);
            assert_eq!(point["x"], label);
            assert_eq!(point["n"], n as u64);
            let got = point["median"].as_f64().unwrap();
            assert!((got - median).abs() < 1e-9 * median, "{got} vs {median}");
            let (lo, hi) = (
                point["min"].as_f64().unwrap(),
                point["max"].as_f64().unwrap(),
            );
            assert!(lo <= got && got <= hi);
        }
        let bytes = std::fs::read(&chart).unwrap();
        if ext == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert_eq!(&bytes[12..16], b"IHDR");
            let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
            assert_eq!(width, 1200);
        } else {
            let text = String::from_utf8(bytes).unwrap();
            let doc = roxmltree::Document::parse(&text).unwrap();
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            let texts: Vec<&str> = doc
                .descendants()
                .filter_map(|n| n.text())
                .map(str::trim)
                .collect();
            assert!(texts.contains(&"c1") && texts.contains(&"c2"), "{texts:?}");
        }
    }

    // the table shows the same medians
    let (code, table, err) = history(
        &db,
        &[
            "trend",
            "--metric",
            "decode_tok_s",
            "--where",
            "batch=1",
            "--chart",
            tmp.path().join("t.svg").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (median, _) = decode_median(&second);
    assert!(
        table.contains(&format!("| c2 | 1 | 3 | {median:.2} |")),
        "{table}"
    );
}

/// A database holding the A/A fixture sweeps `numbers`, in `dir`.
fn aa_history(dir: &Path, numbers: &[usize]) -> PathBuf {
    let db = dir.join("history.sqlite");
    let dirs: Vec<PathBuf> = numbers
        .iter()
        .map(|n| fixture(&format!("ci-smoke-aa/{n:02}")))
        .collect();
    ingest(&db, &dirs, &[]);
    db
}

fn compare_history(db: &Path, candidate: &Path, n: &str) -> (i32, Comparison, String) {
    let out = llamaperf()
        .arg("compare")
        .arg(candidate)
        .args(["--baseline-history", n, "--format", "json", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let comparison =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr_of(&out)));
    (out.status.code().unwrap(), comparison, stderr_of(&out))
}

fn decode_verdicts(c: &Comparison) -> Vec<Verdict> {
    c.metrics
        .iter()
        .filter(|m| m.metric.name == "decode_tok_s")
        .map(|m| m.verdict)
        .collect()
}

#[test]
fn a_candidate_is_judged_against_the_last_n_stored_results() {
    let tmp = tempfile::tempdir().unwrap();
    let db = aa_history(tmp.path(), &[1, 2, 3, 4, 5]);

    // another sweep of the same build: passes
    let (code, c, stderr) = compare_history(&db, &fixture("ci-smoke-aa/06"), "5");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(c.noise, NoiseSource::History);
    assert_eq!(c.base_dirs.len(), 5, "{:?}", c.base_dirs);
    // one sample per stored result; on one core the results are steady, and none is left out
    assert!(c.metrics.iter().all(|m| (3..=5).contains(&m.base.n)));
    assert!(c
        .metrics
        .iter()
        .filter(|m| m.run_id.contains("cores=1 "))
        .all(|m| m.base.n == 5));
    assert_eq!(decode_verdicts(&c).len(), 4, "every ci-smoke run");
    assert!(!decode_verdicts(&c).contains(&Verdict::Regression));

    // decode 20% slower: a regression
    let slower = copy_fixture("ci-smoke-aa/06", tmp.path());
    scale_decode(&slower, &[1.25]);
    let (code, c, stderr) = compare_history(&db, &slower, "5");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        decode_verdicts(&c)
            .iter()
            .all(|v| *v == Verdict::Regression),
        "{:?}",
        decode_verdicts(&c)
    );
    assert!(stderr.contains("regression"), "{stderr}");

    // N = 3: the three newest stored results only
    let (_, c, _) = compare_history(&db, &fixture("ci-smoke-aa/06"), "3");
    assert_eq!(c.base_dirs.len(), 3);
    for n in ["03", "04", "05"] {
        assert!(
            c.base_dirs
                .iter()
                .any(|d| d.contains(&format!("ci-smoke-aa/{n}"))),
            "{:?}",
            c.base_dirs
        );
    }

    // the candidate itself, once stored, is not its own baseline
    ingest(&db, &[fixture("ci-smoke-aa/06")], &[]);
    let (_, c, _) = compare_history(&db, &fixture("ci-smoke-aa/06"), "10");
    assert_eq!(c.base_dirs.len(), 5);
}

#[test]
fn one_noisy_stored_result_does_not_spoil_the_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let noisy = copy_fixture("ci-smoke-aa/03", tmp.path());
    scale_decode(&noisy, &[2.0]);
    let db = tmp.path().join("history.sqlite");
    let dirs: Vec<PathBuf> = [1, 2, 4, 5]
        .iter()
        .map(|n| fixture(&format!("ci-smoke-aa/{n:02}")))
        .chain([noisy])
        .collect();
    ingest(&db, &dirs, &[]);
    let (code, c, stderr) = compare_history(&db, &fixture("ci-smoke-aa/06"), "5");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("decode_tok_s") && n.contains("outliers")),
        "{:?}",
        c.notes
    );
    // on one core the stored results are steady: the halved one stands out and is left out
    // (on all cores this machine's results are bimodal, and a halving is within their spread)
    let decode: Vec<usize> = c
        .metrics
        .iter()
        .filter(|m| m.metric.name == "decode_tok_s" && m.run_id.contains("cores=1 "))
        .map(|m| m.base.n)
        .collect();
    assert_eq!(decode, [4, 4], "the halved result left out");
}

#[test]
fn a_candidate_without_history_on_its_machine_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = aa_history(tmp.path(), &[1, 2]);
    let other = copy_fixture("ci-smoke-aa/06", tmp.path());
    let machine = other.join("machine.json");
    let text = std::fs::read_to_string(&machine).unwrap();
    std::fs::write(&machine, text.replace("\"AMD EPYC\"", "\"Another CPU\"")).unwrap();
    let out = llamaperf()
        .arg("compare")
        .arg(&other)
        .args(["--baseline-history", "5", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("Another CPU"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn two_ingests_at_once_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("history.sqlite");
    let spawn = |numbers: &[usize]| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("llamaperf"))
            .env("LLAMAPERF_CACHE", crate::util::cache_dir())
            .args(["history", "ingest", "--db"])
            .arg(&db)
            .args(
                numbers
                    .iter()
                    .map(|n| fixture(&format!("ci-smoke-aa/{n:02}"))),
            )
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // both create the file, and both store 01 and 04
    let one = spawn(&[1, 2, 3, 4]);
    let two = spawn(&[4, 5, 6, 1]);
    for child in [one, two] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    let listing = list(&db);
    let folders = listing["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 6, "{listing}");
    let stored: u64 = folders.iter().map(|f| f["runs"].as_u64().unwrap()).sum();
    let expected: usize = (1..=6)
        .map(|n| {
            ResultsDir::read(&fixture(&format!("ci-smoke-aa/{n:02}")))
                .unwrap()
                .records()
                .len()
        })
        .sum();
    assert_eq!(stored, expected as u64);
}

/// Runs `history list` on `db` and checks that it fails with exit 2 naming the file and
/// saying `why`, and leaves the file byte for byte as it was.
fn refused(db: &Path, why: &str) {
    let before = std::fs::read(db).unwrap();
    for args in [
        &["list"][..],
        &["ingest", fixture("ci-smoke-aa/01").to_str().unwrap()],
    ] {
        let (code, _, err) = history(db, args);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(db.to_str().unwrap()) && err.contains(why),
            "{err}"
        );
        assert_eq!(
            std::fs::read(db).unwrap(),
            before,
            "the file is left as it was"
        );
    }
}

#[test]
fn a_corrupt_foreign_or_newer_database_is_refused_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("notes.sqlite");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(50)).unwrap();
    refused(
        &text,
        "not a llamaperf history database (not an SQLite file",
    );

    let foreign = tmp.path().join("other.sqlite");
    let conn = rusqlite::Connection::open(&foreign).unwrap();
    conn.execute_batch("CREATE TABLE accounts (name TEXT); INSERT INTO accounts VALUES ('x');")
        .unwrap();
    drop(conn);
    refused(&foreign, "an SQLite file with application_id 0x0");

    let newer = aa_history(tmp.path(), &[1]);
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(conn);
    refused(
        &newer,
        "history schema version 99, but this llamaperf knows versions up to 1",
    );

    let (code, _, err) = history(&tmp.path().join("none.sqlite"), &["list"]);
    assert_eq!(code, 2);
    assert!(err.contains("no history database here"), "{err}");
    assert!(
        !tmp.path().join("none.sqlite").exists(),
        "list creates nothing"
    );
}

#[test]
fn bad_trend_arguments_name_what_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let db = aa_history(tmp.path(), &[1]);
    let (code, _, err) = history(&db, &["trend", "--metric", "speed"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--metric speed") && err.contains("decode_tok_s"),
        "{err}"
    );
    let (code, _, err) = history(
        &db,
        &["trend", "--metric", "ttft_ms", "--where", "colour=red"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("'colour' is not an axis") && err.contains("batch"),
        "{err}"
    );
}

#[test]
fn runs_a_resume_adds_join_the_stored_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture("ci-smoke-aa/01", tmp.path());
    let runs = dir.join("runs.jsonl");
    let all = std::fs::read_to_string(&runs).unwrap();
    let first_two: String = all.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&runs, first_two).unwrap();
    let db = tmp.path().join("history.sqlite");
    let done = ingest(&db, std::slice::from_ref(&dir), &["before"]);
    assert_eq!(done[0]["stored"], 2);
    std::fs::write(&runs, all).unwrap();
    let done = ingest(&db, &[dir], &[]);
    assert_eq!(
        (done[0]["stored"].as_u64(), done[0]["known"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(done[0]["label"], "before", "the folder keeps its label");
    let listing = list(&db);
    let folders = listing["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 1, "{listing}");
    assert_eq!(folders[0]["runs"], 4);
}
