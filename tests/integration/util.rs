//! Shared helpers: the binary with a test cache, the real test model, synthetic models.

use assert_cmd::Command;
use llamaperf::model::{find_preset, ModelCache, ModelFile, WeightDtype};
use std::path::PathBuf;

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
        .get_or_synthesize(&preset, dtype)
        .expect("synthesis works");
    ModelFile::open(&path).expect("synthetic model opens")
}

/// Stderr of a finished command, as text.
pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
