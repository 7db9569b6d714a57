//! Bad input gets a clear error and exit code 2, before any worker starts.

use crate::util::{llamaperf, stderr_of};
use candle_core::quantized::GgmlDType;
use llamaperf::model::gguf_writer::{write_gguf, MetaValue, TensorHeader};
use std::io::Write;

/// Runs `llamaperf run ARGS` and returns its stderr after checking the exit code.
fn fails(args: &[&str], code: i32) -> String {
    let out = llamaperf().arg("run").args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", stderr_of(&out));
    stderr_of(&out)
}

fn assert_has(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "missing {p:?} in:\n{text}");
    }
}

#[test]
fn unknown_preset_lists_the_presets() {
    let err = fails(&["--model", "llama-9b"], 2);
    assert_has(
        &err,
        &[
            "unknown model 'llama-9b'",
            "did you mean 'llama-2-7b'?",
            "tiny",
            "llama-3.1-405b",
            ".gguf",
        ],
    );
}

#[test]
fn unknown_dtype_lists_the_dtypes() {
    let err = fails(&["--model", "tiny", "--dtype", "q5_k"], 2);
    assert_has(
        &err,
        &[
            "unknown dtype 'q5_k'",
            "f32",
            "bf16",
            "q4_k",
            "q6_k",
            "q4_k_m",
            "q5_k_m",
            "q3_k_m",
            "q2_k",
            "iq4_xs",
        ],
    );
}

#[test]
fn unknown_engine_lists_the_engines() {
    let err = fails(&["--model", "tiny", "--engine", "fast"], 2);
    assert_has(&err, &["unknown engine 'fast'", "tuned", "reference"]);
}

#[test]
fn missing_file() {
    let err = fails(&["--model", "/nonexistent/model.gguf"], 2);
    assert_has(&err, &["model file not found: /nonexistent/model.gguf"]);
}

#[test]
fn a_file_that_is_not_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.gguf");
    std::fs::write(&path, "these are not weights\n").unwrap();
    let err = fails(&["--model", path.to_str().unwrap()], 2);
    assert_has(&err, &["is not a GGUF model file"]);
}

#[test]
fn a_gguf_of_another_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpt2.gguf");
    let mut f = std::fs::File::create(&path).unwrap();
    let tensors = [TensorHeader {
        name: "token_embd.weight".into(),
        dims: vec![4, 8],
        dtype: GgmlDType::F32.into(),
    }];
    let meta = [("general.architecture", MetaValue::Str("gpt2".into()))];
    write_gguf(&mut f, &meta, &tensors, |_, w| w.write_all(&[1u8; 128])).unwrap();
    let err = fails(&["--model", path.to_str().unwrap()], 2);
    assert_has(&err, &["not a Llama model", "'gpt2'"]);
}

#[test]
fn prompt_and_generation_longer_than_the_context() {
    let err = fails(
        &[
            "--model",
            "tiny",
            "--prompt-tokens",
            "2000",
            "--gen-tokens",
            "100",
        ],
        2,
    );
    assert_has(&err, &["2100 exceeds the context of 2048 tokens"]);
    let err = fails(
        &[
            "--model",
            "tiny",
            "--engine",
            "reference",
            "--prompt-tokens",
            "2000",
            "--gen-tokens",
            "49",
        ],
        2,
    );
    assert_has(&err, &["exceeds the context of 2048"]);
}

#[test]
fn zero_tokens_threads_or_repetitions() {
    for (flag, what) in [
        ("--prompt-tokens", "--prompt-tokens must be at least 1"),
        ("--gen-tokens", "--gen-tokens must be at least 1"),
        ("--threads", "--threads must be at least 1"),
        ("--batch", "--batch must be at least 1"),
        ("--repetitions", "--repetitions must be at least 1"),
    ] {
        let err = fails(&["--model", "tiny", flag, "0"], 2);
        assert_has(&err, &[what]);
    }
}

#[test]
fn more_threads_than_allowed_cpus() {
    let err = fails(&["--model", "tiny", "--threads", "100000"], 2);
    assert_has(
        &err,
        &[
            "cannot place the run on this machine",
            "asks 100000 cores,",
            "allowed",
        ],
    );
}

#[test]
fn reference_engine_with_a_batch() {
    let err = fails(
        &["--model", "tiny", "--engine", "reference", "--batch", "2"],
        2,
    );
    assert_has(&err, &["engine 'reference' supports batch up to 1, got 2"]);
}

#[test]
fn a_text_prompt_needs_a_vocabulary() {
    let err = fails(&["--model", "tiny", "--prompt", "hello"], 2);
    assert_has(
        &err,
        &["no usable tokenizer", "tokenizer.ggml.model is 'none'"],
    );
}

#[test]
fn an_unwritable_cache_or_results_folder_names_the_path() {
    let out = llamaperf()
        .env("LLAMAPERF_CACHE", "/proc/llamaperf-cache")
        .args(["model", "synth", "tiny", "--dtype", "q8_0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_has(&stderr_of(&out), &["/proc/llamaperf-cache/models"]);
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci-smoke.toml");
    let out = llamaperf()
        .arg("sweep")
        .arg(scenario)
        .args(["--out", "/proc/llamaperf-results"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_has(&stderr_of(&out), &["/proc/llamaperf-results"]);
}

/// Runs `llamaperf run --model MODEL` with `RUST_BACKTRACE=1` and returns its stderr after
/// checking exit code 2.
fn fails_with_backtraces_on(model: &std::path::Path) -> String {
    let out = llamaperf()
        .env("RUST_BACKTRACE", "1")
        .args(["run", "--model"])
        .arg(model)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    stderr_of(&out)
}

#[test]
fn a_device_is_not_a_regular_file_and_a_folder_needs_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let device = std::path::Path::new("/dev/zero");
    for (path, says) in [
        (
            device,
            format!("{} is not a regular file", device.display()),
        ),
        (
            dir.path(),
            format!("{} is a folder without config.json", dir.path().display()),
        ),
    ] {
        let err = fails_with_backtraces_on(path);
        assert_has(&err, &[&says]);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn candle_errors_are_one_line_of_cause_without_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.gguf");
    std::fs::write(&path, [0u8; 64]).unwrap();
    let err = fails_with_backtraces_on(&path);
    assert_has(
        &err,
        &["is not a GGUF model file (unknown magic 0x00000000)"],
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn a_sweep_records_one_line_reasons_without_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.gguf");
    std::fs::write(&zeros, [0u8; 64]).unwrap();
    let file = crate::util::scenario(
        dir.path(),
        &format!(
            "[matrix]\nmodel = [\"/dev/zero\", \"{}\"]\n",
            zeros.display()
        ),
    );
    let out_dir = dir.path().join("out");
    let out = llamaperf()
        .env("RUST_BACKTRACE", "1")
        .arg("sweep")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let reasons: Vec<String> = crate::util::summary(&out_dir)
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(
        reasons,
        [
            "/dev/zero is not a regular file".to_string(),
            format!(
                "{} is not a GGUF model file (unknown magic 0x00000000)",
                zeros.display()
            )
        ]
    );
    let plan = std::fs::read_to_string(out_dir.join("plan.json")).unwrap();
    assert!(!plan.contains("backtrace") && !plan.contains("rust_begin_unwind"));
    assert!(plan.contains("unknown magic 0x00000000)\""), "{plan}");
}

#[test]
fn a_malformed_topology_xml_is_one_readable_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("machine.xml");
    std::fs::write(&path, "<not xml").unwrap();
    let out = llamaperf()
        .args(["topology", "--topology"])
        .arg(&path)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_has(
        &err,
        &[&format!(
            "topology {}: not an hwloc XML export (lstopo FILE.xml): hwloc_topology_load failed: ",
            path.display()
        )],
    );
    assert!(!err.contains("Errno") && !err.contains("Some("), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
