//! Engine `torch`: refused with its install command where its Python environment is missing;
//! where `scripts/setup-torch.sh` installed it, SmolLM2 through every backend says what
//! `tuned` says on the same weights in F32, inside the run's placement, and a sweep over
//! engines gives the report's software gain with torch in it.

use crate::util::{
    llamaperf, run_json_of, skipped, smollm2, statuses, stderr_of, summary, sweep_with,
};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use llamaperf::torch::env::{python_in, ENVS_ENV};
use llamaperf::torch::{TorchBackend, TorchDtype};
use std::path::{Path, PathBuf};

pub const PROMPT: &str = "The capital of France is";

/// Where `scripts/setup-torch.sh` installs the environments: `$LLAMAPERF_TORCH_ENVS`, else
/// `torch/` in the user's cache folder (the tests' own cache is elsewhere).
pub fn torch_envs() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENVS_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    cache.join("llamaperf").join("torch")
}

/// The backends installed here; says which are not.
fn installed(test: &str) -> Vec<TorchBackend> {
    let envs = torch_envs();
    let (found, missing): (Vec<TorchBackend>, Vec<TorchBackend>) = TorchBackend::ALL
        .into_iter()
        .partition(|b| python_in(&envs, *b).is_ok());
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|b| b.name()).collect();
        skipped(
            test,
            &format!(
                "torch backends {} are not installed in {} (scripts/test.sh --with-torch installs them)",
                names.join(", "),
                envs.display()
            ),
        );
    }
    found
}

/// A copy of `model` with every tensor dequantized to F32: the weights torch runs.
fn f32_copy(model: &Path, to: &Path) {
    let mut file = std::fs::File::open(model).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let tensors: Vec<(String, QTensor)> = content
        .tensor_infos
        .keys()
        .map(|name| {
            let q = content.tensor(&mut file, name, &Device::Cpu).unwrap();
            let f = q.dequantize(&Device::Cpu).unwrap();
            (name.clone(), QTensor::quantize(&f, GgmlDType::F32).unwrap())
        })
        .collect();
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::fs::File::create(to).unwrap();
    gguf_file::write(&mut out, &metadata, &tensors).unwrap();
}

/// `llamaperf run` of 16 greedy tokens after [`PROMPT`] on 2 cores with `args`.
fn run_text(model: &Path, args: &[&str]) -> llamaperf::measure::record::RunRecord {
    let out = llamaperf()
        .env(ENVS_ENV, torch_envs())
        .args(["run", "--json", "--model"])
        .arg(model)
        .args(["--prompt", PROMPT, "--gen-tokens", "16", "--cores", "2"])
        .args(["--repetitions", "1", "--warmup", "0"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    run_json_of(&out.stdout).record
}

#[test]
fn a_backend_that_is_not_installed_is_refused_with_its_install_command() {
    let empty = tempfile::tempdir().unwrap();
    let out = llamaperf()
        .env(ENVS_ENV, empty.path())
        .args(["run", "--model"])
        .arg(smollm2())
        .args(["--engine", "torch", "--torch-backend", "zentorch"])
        .args(["--gen-tokens", "2", "--repetitions", "1", "--warmup", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("install it with `bash scripts/setup-torch.sh zentorch`"),
        "{stderr}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let body = format!(
        "[defaults]\nmodel = \"{}\"\nprompt_tokens = 4\ngen_tokens = 2\nrepetitions = 1\nwarmup = 0\ncores = 1\n\
         [matrix]\nengine = [\"tuned\", \"torch\"]\ntorch_backend = [\"eager\", \"ipex\"]\n",
        smollm2().display()
    );
    let mut cmd = llamaperf();
    cmd.env(ENVS_ENV, empty.path());
    let (out, dir) = sweep_with(cmd, tmp.path(), &body);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = summary(&dir);
    assert_eq!(
        statuses(&rows),
        [
            ("tuned", "ok"),
            ("torch:eager:bf16", "skipped"),
            ("torch:ipex:bf16", "skipped")
        ],
        "tuned runs once whatever the torch settings"
    );
    assert!(rows[1].reason.contains("bash scripts/setup-torch.sh ipex"));
}

#[test]
fn every_installed_backend_says_what_tuned_says_on_the_same_f32_weights() {
    let test = "every_installed_backend_says_what_tuned_says_on_the_same_f32_weights";
    let backends = installed(test);
    if backends.is_empty() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let f32_file = tmp.path().join("smollm2-f32.gguf");
    f32_copy(&smollm2(), &f32_file);
    let tuned = run_text(&f32_file, &["--engine", "tuned", "--kv-dtype", "f32"]);
    let expected = tuned.generated_text.clone().unwrap();
    assert!(expected.starts_with(" Paris"), "{expected:?}");
    for backend in backends {
        for dtype in TorchDtype::ALL {
            let record = run_text(
                &smollm2(),
                &[
                    "--engine",
                    "torch",
                    "--torch-backend",
                    backend.name(),
                    "--torch-dtype",
                    dtype.name(),
                ],
            );
            let torch = record.torch.as_ref().expect("a torch record");
            assert_eq!((torch.backend, torch.dtype), (backend, dtype));
            assert!(
                torch.dequantized_from.iter().any(|t| t == "Q4_1"),
                "{torch:?}"
            );
            assert_eq!(
                record.generated_text.as_deref(),
                Some(expected.as_str()),
                "{backend} {dtype}"
            );
            assert_eq!(record.threads, 2);
            // the Python process: every thread on one of the run's two PUs
            let threads = &record.binding.threads;
            assert!(threads.len() >= 2, "{threads:?}");
            for t in threads {
                assert_eq!(t.cpus.len(), 1, "{t:?}");
            }
            // the threads that computed (0.1 s or more; idle ones run milliseconds) cover
            // both PUs: OpenMP's team is not doubled up on one
            let mut pus: Vec<usize> = threads
                .iter()
                .filter(|t| t.cpu_s.is_some_and(|s| s >= 0.1))
                .map(|t| t.cpus[0])
                .collect();
            pus.sort_unstable();
            pus.dedup();
            assert_eq!(pus.len(), 2, "computing threads on both PUs: {threads:?}");
        }
    }
}

#[test]
fn a_sweep_over_engines_reports_torch_s_software_gain() {
    let test = "a_sweep_over_engines_reports_torch_s_software_gain";
    if !installed(test).contains(&TorchBackend::Eager) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let body = format!(
        "[defaults]\nmodel = \"{}\"\nprompt_tokens = 16\ngen_tokens = 8\nrepetitions = 2\nwarmup = 1\n\
         [matrix]\nengine = [\"tuned\", \"llama.cpp\", \"torch\"]\ntorch_backend = [\"eager\"]\n\
         cores = [1, 2]\nbatch = [1, 2]\n",
        smollm2().display()
    );
    let mut cmd = llamaperf();
    cmd.env(ENVS_ENV, torch_envs());
    let (out, dir) = sweep_with(cmd, tmp.path(), &body);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rows = summary(&dir);
    assert_eq!(
        rows.iter().filter(|r| r.status == "ok").count(),
        12,
        "{rows:?}"
    );
    let report = tmp.path().join("report");
    let out = llamaperf()
        .arg("report")
        .arg(&dir)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let markdown = std::fs::read_to_string(report.join("report.md")).unwrap();
    let gain = markdown
        .split("## Software gain")
        .nth(1)
        .expect("a software gain section");
    assert!(gain.contains("torch:eager:bf16"), "{gain}");
    assert!(gain.contains("llama.cpp"), "{gain}");
}
