//! Hugging Face model folders: engine `torch` runs one as it runs the GGUF it was made from;
//! every other engine refuses it (a sweep skips it) saying that it reads GGUF files only, and
//! a folder that is no Llama model is refused naming its file and key.

use crate::torch::{torch_envs, PROMPT};
use crate::util::{
    llamaperf, run_json_of, skipped, smollm2, statuses, stderr_of, summary, sweep_with,
};
use llamaperf::torch::env::{python_in, ENVS_ENV};
use llamaperf::torch::{TorchBackend, TorchDtype};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::Path;

/// A config.json of a 2-layer Llama of width 64.
const CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
  "max_position_embeddings": 256, "rms_norm_eps": 1e-05, "tie_word_embeddings": true
}"#;

/// Writes a folder with `config` and the two tensors llamaperf sizes a folder by (zeros in
/// BF16): enough to be planned, not to be run.
fn sized_folder(dir: &Path, config: &str) {
    std::fs::write(dir.join("config.json"), config).unwrap();
    let tensors = [
        ("model.embed_tokens.weight", vec![100, 64]),
        ("model.layers.0.self_attn.q_proj.weight", vec![64, 64]),
    ];
    let data: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, shape)| vec![0u8; 2 * shape.iter().product::<usize>()])
        .collect();
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .zip(&data)
        .map(|((name, shape), bytes)| {
            let view = TensorView::new(Dtype::BF16, shape.clone(), bytes).unwrap();
            (*name, view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
}

/// `llamaperf run` of 2 tokens of `model` on `engine`, with no torch environment.
fn run_folder(model: &Path, engine: &str) -> std::process::Output {
    let empty = tempfile::tempdir().unwrap();
    llamaperf()
        .env(ENVS_ENV, empty.path())
        .args(["run", "--model"])
        .arg(model)
        .args(["--engine", engine, "--gen-tokens", "2", "--cores", "1"])
        .args(["--repetitions", "1", "--warmup", "0"])
        .output()
        .unwrap()
}

#[test]
fn engines_that_read_gguf_refuse_a_folder_and_a_sweep_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("tiny-hf");
    std::fs::create_dir(&folder).unwrap();
    sized_folder(&folder, CONFIG);
    for engine in ["tuned", "llama.cpp", "reference"] {
        let out = run_folder(&folder, engine);
        assert_eq!(out.status.code(), Some(2), "{engine}: {}", stderr_of(&out));
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains(&format!("engine '{engine}' reads GGUF files only; a Hugging Face model folder runs on engine 'torch'")),
            "{stderr}"
        );
    }
    // torch takes it: refused here only for its missing environment
    let out = run_folder(&folder, "torch");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("bash scripts/setup-torch.sh ipex"),
        "{}",
        stderr_of(&out)
    );

    let empty = tempfile::tempdir().unwrap();
    let body = format!(
        "[defaults]\nmodel = \"{}\"\nprompt_tokens = 4\ngen_tokens = 2\nrepetitions = 1\nwarmup = 0\ncores = 1\n\
         [matrix]\nengine = [\"tuned\", \"llama.cpp\", \"torch\"]\n",
        folder.display()
    );
    let mut cmd = llamaperf();
    cmd.env(ENVS_ENV, empty.path());
    let (_, out) = sweep_with(cmd, dir.path(), &body);
    let rows = summary(&out);
    assert_eq!(
        statuses(&rows),
        [
            ("tuned", "skipped"),
            ("llama.cpp", "skipped"),
            ("torch:eager:bf16", "skipped")
        ]
    );
    assert!(rows[0].reason.contains("reads GGUF files only"), "{rows:?}");
    assert!(rows[2].reason.contains("setup-torch.sh ipex"), "{rows:?}");
    assert_eq!(rows[0].model, folder.display().to_string());
}

#[test]
fn folders_that_are_no_llama_model_are_refused_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_folder(dir.path(), "torch");
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("is a folder without config.json"),
        "{stderr}"
    );

    sized_folder(dir.path(), &CONFIG.replace(r#""rms_norm_eps": 1e-05,"#, ""));
    let out = run_folder(dir.path(), "torch");
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("config.json: missing field `rms_norm_eps`"),
        "{stderr}"
    );

    sized_folder(
        dir.path(),
        &CONFIG.replace("LlamaForCausalLM", "GPT2LMHeadModel"),
    );
    let out = run_folder(dir.path(), "torch");
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("not a Llama model: architectures is [\"GPT2LMHeadModel\"]"),
        "{stderr}"
    );
}

/// Saves the GGUF `model` as a Hugging Face folder `out` with transformers (`python` of the
/// ipex environment): the weights dequantized to F32, the tokenizer without the BOS token that
/// transformers' GGUF conversion adds where the file says `tokenizer.ggml.add_bos_token = false`.
const SAVE_FOLDER: &str = r#"
import os, sys
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, name = os.path.split(os.path.abspath(sys.argv[1]))
AutoModelForCausalLM.from_pretrained(folder, gguf_file=name).save_pretrained(sys.argv[2])
AutoTokenizer.from_pretrained(folder, gguf_file=name, add_bos_token=False).save_pretrained(sys.argv[2])
"#;

/// `llamaperf run --engine torch` eager f32 of 16 greedy tokens after [`PROMPT`] on 2 cores.
fn run_eager_f32(model: &Path) -> crate::util::RunJson {
    let out = llamaperf()
        .env(ENVS_ENV, torch_envs())
        .args(["run", "--json", "--model"])
        .arg(model)
        .args(["--prompt", PROMPT, "--gen-tokens", "16", "--cores", "2"])
        .args(["--repetitions", "1", "--warmup", "0"])
        .args(["--engine", "torch", "--torch-backend", "eager"])
        .args(["--torch-dtype", "f32"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    run_json_of(&out.stdout)
}

#[test]
fn a_folder_saved_from_the_gguf_says_what_the_gguf_says() {
    let test = "a_folder_saved_from_the_gguf_says_what_the_gguf_says";
    let Ok(python) = python_in(&torch_envs(), TorchBackend::Eager) else {
        skipped(
            test,
            "the torch ipex environment is not installed (scripts/test.sh --with-torch installs it)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("smollm2-hf");
    let saved = std::process::Command::new(&python)
        .args(["-c", SAVE_FOLDER])
        .arg(smollm2())
        .arg(&folder)
        .output()
        .unwrap();
    assert!(saved.status.success(), "{}", stderr_of(&saved));

    let gguf = run_eager_f32(&smollm2());
    let hf = run_eager_f32(&folder);
    let text = gguf.generated_text.clone().unwrap();
    assert!(text.starts_with(" Paris"), "{text:?}");
    assert_eq!(hf.generated_text.as_deref(), Some(text.as_str()));
    assert_eq!(hf.spec.model.name, folder.display().to_string());
    // the same shape and parameters from config.json and the safetensors header
    assert_eq!(hf.model.config, gguf.model.config);
    assert_eq!(hf.model.params, gguf.model.params);
    assert!(hf.model.tied_embeddings);
    // stored as F32 by save_pretrained, run in f32, nothing dequantized
    assert_eq!(hf.model.dtype, "f32");
    assert_eq!(hf.model.weight_bytes, 4 * hf.model.params);
    let torch = hf.torch.as_ref().expect("a torch record");
    assert_eq!(torch.dtype, TorchDtype::F32);
    assert!(
        !torch.dequantized && torch.dequantized_from.is_empty(),
        "{torch:?}"
    );
    assert!(gguf.torch.as_ref().unwrap().dequantized);
}
