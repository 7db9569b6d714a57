//! Shared helpers: the binary with a test cache, the real test model, synthetic models.

use assert_cmd::Command;
use llamaperf::measure::record::RunRecord;
use llamaperf::model::{find_preset, ModelCache, ModelFile, WeightDtype};
use llamaperf::planning::RunSpec;
use llamaperf::results::summary::SummaryRow;
use llamaperf::results::{Outcome, SweepRecord};
use std::path::{Path, PathBuf};

/// The model cache shared by all tests of this binary (synthesis is atomic, so concurrent
/// tests may race to write the same file safely).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("llamaperf-cache")
}

/// `llamaperf` with the test cache.
pub fn llamaperf() -> Command {
    let mut cmd = Command::cargo_bin("llamaperf").expect("binary is built");
    cmd.env("LLAMAPERF_CACHE", cache_dir());
    cmd.env_remove(llamaperf::measure::worker::FAULT_ENV);
    cmd
}

/// The real SmolLM2-135M-Instruct Q4_1 GGUF, fetched by `scripts/fetch-test-model.sh`.
pub fn smollm2() -> PathBuf {
    let path = std::env::var_os("LLAMAPERF_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    assert!(
        path.is_file(),
        "test model {} is missing: run scripts/fetch-test-model.sh",
        path.display()
    );
    path
}

/// A synthetic preset model in the test cache, opened.
pub fn synthetic(preset: &str, dtype: WeightDtype) -> ModelFile {
    let preset = find_preset(preset).expect("preset exists");
    let (path, _) = ModelCache::at(cache_dir())
        .get_or_synthesize(&preset, dtype, &Default::default())
        .expect("synthesis works");
    ModelFile::open(&path).expect("synthetic model opens")
}

/// Says in the test output that `test` did not run, or not in full, and why. It writes to
/// stderr itself: libtest shows what `eprintln!` prints only for a failing test.
pub fn skipped(test: &str, reason: &str) {
    use std::io::Write;
    // one write, so that the line is not cut by another test's output
    let line = format!("skipped: {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Stderr of a finished command, as text.
pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes a scenario named `s` with `body` into `dir`.
pub fn scenario(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("s.toml");
    std::fs::write(&path, format!("name = \"s\"\n{body}")).unwrap();
    path
}

/// Sweeps the scenario `body` (written by [`scenario`] into `dir`) into `dir/out`: the
/// command's output and the results folder.
pub fn sweep(dir: &Path, body: &str) -> (std::process::Output, PathBuf) {
    sweep_with(llamaperf(), dir, body)
}

/// [`sweep`] run by `cmd` (`llamaperf` with its environment set).
pub fn sweep_with(
    mut cmd: assert_cmd::Command,
    dir: &Path,
    body: &str,
) -> (std::process::Output, PathBuf) {
    let file = scenario(dir, body);
    let out_dir = dir.join("out");
    let out = cmd
        .arg("sweep")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    (out, out_dir)
}

/// [`sweep`], checking that the sweep succeeded; the results folder.
pub fn sweep_ok(dir: &Path, body: &str) -> PathBuf {
    let (out, out_dir) = sweep(dir, body);
    assert!(out.status.success(), "{}", stderr_of(&out));
    out_dir
}

/// The lines of a results folder's runs.jsonl.
pub fn records(dir: &Path) -> Vec<SweepRecord> {
    std::fs::read_to_string(dir.join("runs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The rows of a results folder's summary.csv.
pub fn summary(dir: &Path) -> Vec<SummaryRow> {
    csv::Reader::from_path(dir.join("summary.csv"))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

/// Each summary row's engine and status, in order: what a sweep ran or skipped.
pub fn statuses(rows: &[SummaryRow]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| (r.engine.as_str(), r.status.as_str()))
        .collect()
}

/// What `llamaperf run --json` prints, a `runs.jsonl` line: the spec it ran and its record
/// (the record's fields are reachable directly).
pub struct RunJson {
    /// The line's schema version.
    pub schema_version: u32,
    /// What the worker ran.
    pub spec: RunSpec,
    /// What it measured.
    pub record: RunRecord,
}

impl std::ops::Deref for RunJson {
    type Target = RunRecord;

    fn deref(&self) -> &RunRecord {
        &self.record
    }
}

/// Parses `run --json`'s stdout, which must be exactly one measured line.
pub fn run_json_of(stdout: &[u8]) -> RunJson {
    let line: SweepRecord =
        serde_json::from_slice(stdout).expect("stdout is exactly one runs.jsonl line");
    let Outcome::Ok { record } = line.outcome else {
        panic!(
            "run --json printed a line without a record: {:?}",
            line.outcome
        );
    };
    RunJson {
        schema_version: line.schema_version,
        spec: line.spec,
        record: *record,
    }
}

/// Largest magnitude of `row`.
pub fn largest(row: &[f32]) -> f32 {
    row.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// Largest |a - b| relative to the largest |b|.
pub fn relative_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = largest(b).max(1e-6);
    let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

/// The index of `row`'s largest value: the greedy choice among logits.
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

/// A tmpfs of `bytes` mounted at `at`, unmounted when dropped.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    /// Mounts it, or says why it cannot (not root, no mount).
    pub fn mount(at: &Path, bytes: u64) -> Result<Self, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mounting a tmpfs needs root: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Gives it `bytes`.
    pub fn resize(&self, bytes: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
