//! Synthetic models: shapes, values that are never zero pages, atomic and cached writes.

use crate::util::{llamaperf, run_json_of, stderr_of, synthetic, Tmpfs};
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use llamaperf::model::{find_preset, ModelFile, WeightDtype};
use llamaperf::plan::CapacityPlan;
use std::fs::File;
use std::io::BufReader;

#[test]
fn synthetic_file_has_the_preset_shape_and_random_weights() {
    let model = synthetic("tiny", WeightDtype::F32);
    let preset = find_preset("tiny").unwrap();
    assert_eq!(model.summary.config, preset.config);
    assert_eq!(
        model.summary.weight_bytes,
        preset.weight_bytes(WeightDtype::F32)
    );
    assert_eq!(model.summary.params, preset.param_count());
    assert!(!model.summary.tied_embeddings);
    let mut reader = BufReader::new(File::open(&model.path).unwrap());
    let q: Vec<f32> = model
        .content
        .tensor(&mut reader, "blk.1.attn_q.weight", &Device::Cpu)
        .unwrap()
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(q.iter().all(|&v| v != 0.0), "no zero weights");
    let mean = q.iter().sum::<f32>() / q.len() as f32;
    let std = (q.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / q.len() as f32).sqrt();
    assert!(
        mean.abs() < 1e-3 && (std - 0.02).abs() < 2e-3,
        "mean {mean} std {std}"
    );
    assert_ne!(q[..256], q[256..512], "rows differ");
}

/// The type llama.cpp's `llama-quantize` gives the tensor `name` of tiny (2 layers, output not
/// tied) in the file type `dtype`, written out from its rules: of 2 layers, `use_more_bits`
/// picks layer 1; Q3_K_M's first 2 value projections get Q5_K, its down projections before
/// layer 2 / 16 = 0 none; Q2_K's value projections are shared by 2 query heads, fewer than
/// the 4 that would raise them to Q4_K.
fn llama_cpp_type_in_tiny(dtype: WeightDtype, name: &str) -> GgmlDType {
    use GgmlDType::{F32, Q2K, Q3K, Q4K, Q5K, Q6K};
    if name.contains("norm") {
        return F32;
    }
    let more_bits = [
        "output.weight",
        "blk.1.attn_v.weight",
        "blk.1.ffn_down.weight",
    ];
    match dtype {
        WeightDtype::Q4KM if more_bits.contains(&name) => Q6K,
        WeightDtype::Q4KM => Q4K,
        WeightDtype::Q5KM if more_bits.contains(&name) => Q6K,
        WeightDtype::Q5KM => Q5K,
        WeightDtype::Q3KM if name == "output.weight" => Q6K,
        WeightDtype::Q3KM if name.contains("attn_v") => Q5K,
        WeightDtype::Q3KM if name.contains("attn_output") || name.contains("ffn_down") => Q4K,
        WeightDtype::Q3KM => Q3K,
        WeightDtype::Q2KMix if name == "output.weight" => Q6K,
        WeightDtype::Q2KMix
            if ["attn_v", "attn_output", "ffn_down"]
                .iter()
                .any(|m| name.contains(m)) =>
        {
            Q3K
        }
        WeightDtype::Q2KMix => Q2K,
        WeightDtype::Q6K => Q6K,
        other => panic!("no rule written for {other}"),
    }
}

#[test]
fn mixed_presets_have_llama_cpp_tensor_types_and_their_estimated_bytes() {
    for (dtype, file_type, main) in [
        (WeightDtype::Q4KM, 15, "q4_k"),
        (WeightDtype::Q5KM, 17, "q5_k"),
        (WeightDtype::Q3KM, 12, "q3_k"),
        (WeightDtype::Q2KMix, 10, "q2_k"),
        (WeightDtype::Q6K, 18, "q6_k"),
    ] {
        let model = synthetic("tiny", dtype);
        let infos = &model.content.tensor_infos;
        assert_eq!(infos.len(), 2 * 9 + 3);
        for (name, info) in infos {
            let want = llama_cpp_type_in_tiny(dtype, name);
            assert_eq!(info.ggml_dtype, want, "{dtype} {name}");
        }
        assert_eq!(
            model.content.metadata["general.file_type"]
                .to_u32()
                .unwrap(),
            file_type
        );
        let stored: u64 = infos
            .values()
            .map(|t| {
                (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64
            })
            .sum();
        let plan: CapacityPlan = {
            let out = llamaperf()
                .args(["plan", "--json", "--model", "tiny", "--context", "64"])
                .args(["--dtype", dtype.name()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr_of(&out));
            serde_json::from_slice(&out.stdout).unwrap()
        };
        assert_eq!(plan.memory.weights_bytes, stored, "{dtype}");
        assert_eq!(model.summary.weight_bytes, stored);
        assert_eq!(model.summary.dtype, main, "the main type");
    }
}

#[test]
fn run_measures_a_q4_k_m_preset_end_to_end() {
    let out = llamaperf()
        .args(["run", "--json", "--model", "tiny", "--dtype", "q4_k_m"])
        .args([
            "--prompt-tokens",
            "16",
            "--gen-tokens",
            "4",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = run_json_of(&out.stdout);
    assert_eq!(r.spec.model.dtype, Some(WeightDtype::Q4KM));
    assert!(r.spec.model.path.ends_with("tiny-q4_k_m-v1.gguf"));
    assert_eq!(r.model.dtype, "q4_k");
    assert_eq!(
        r.model.weight_bytes,
        find_preset("tiny").unwrap().weight_bytes(WeightDtype::Q4KM)
    );
    assert_eq!(r.generated_ids.len(), 4);
    let decode = r.repetitions[0].metrics.decode_tok_s.unwrap();
    assert!(decode > 0.0, "{decode}");
}

#[test]
fn run_measures_an_iq4_xs_preset_in_the_tuned_engine_and_reference_refuses_it() {
    let run = |engine: &str| {
        llamaperf()
            .args(["run", "--json", "--model", "tiny", "--dtype", "iq4_xs"])
            .args(["--engine", engine, "--prompt-tokens", "16"])
            .args(["--gen-tokens", "4", "--threads", "1"])
            .output()
            .unwrap()
    };
    let out = run("tuned");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = run_json_of(&out.stdout);
    assert_eq!(r.spec.model.dtype, Some(WeightDtype::Iq4Xs));
    assert!(r.spec.model.path.ends_with("tiny-iq4_xs-v1.gguf"));
    assert_eq!(r.model.dtype, "iq4_xs");
    assert_eq!(
        r.model.weight_bytes,
        find_preset("tiny")
            .unwrap()
            .weight_bytes(WeightDtype::Iq4Xs)
    );
    assert_eq!(r.generated_ids.len(), 4);
    assert!(r.repetitions[0].metrics.decode_tok_s.unwrap() > 0.0);
    let refused = run("reference");
    let err = stderr_of(&refused);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("cannot read iq4_xs tensors") && err.contains("use engine 'tuned'"),
        "{err}"
    );
}

#[test]
fn quantized_file_has_no_zero_page() {
    let model = synthetic("tiny", WeightDtype::Q4K);
    let bytes = std::fs::read(&model.path).unwrap();
    let data = &bytes[model.content.tensor_data_offset as usize..];
    let zero_page = data
        .chunks_exact(4096)
        .position(|page| page.iter().all(|&b| b == 0));
    assert_eq!(zero_page, None);
}

#[test]
fn llama3_presets_carry_rope_factors_and_tied_embeddings() {
    // llama-3.2-1b in q4_0 is 0.7 GB: check the directory only, through `model synth`.
    let out = llamaperf()
        .args(["model", "synth", "llama-3.2-1b", "--dtype", "q4_0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let model = ModelFile::open(path.as_ref()).unwrap();
    assert!(model.summary.rope_freqs && model.summary.tied_embeddings);
    assert_eq!(model.summary.config.vocab, 128_256);
    assert_eq!(
        model.summary.weight_bytes,
        find_preset("llama-3.2-1b")
            .unwrap()
            .weight_bytes(WeightDtype::Q4_0)
    );
}

#[test]
fn synth_reuses_the_cached_file_and_leaves_no_partial_files() {
    let cache = tempfile::tempdir().unwrap();
    let first = llamaperf()
        .env("LLAMAPERF_CACHE", cache.path())
        .args(["model", "synth", "tiny", "--dtype", "q6_k"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", stderr_of(&first));
    let path = String::from_utf8(first.stdout).unwrap().trim().to_string();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let second = llamaperf()
        .env("LLAMAPERF_CACHE", cache.path())
        .args(["model", "synth", "tiny", "--dtype", "q6_k"])
        .output()
        .unwrap();
    assert!(
        stderr_of(&second).contains("already cached")
            || !stderr_of(&second).contains("synthesizing")
    );
    assert_eq!(String::from_utf8(second.stdout).unwrap().trim(), path);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    let partial = std::fs::read_dir(cache.path().join("models"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .count();
    assert_eq!(partial, 0);
}

#[test]
fn model_list_shows_every_preset_with_sizes() {
    let out = llamaperf()
        .args(["model", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "tiny",
            "llama-3.2-1b",
            "llama-3.2-3b",
            "llama-3.1-8b",
            "llama-2-7b",
            "llama-2-13b",
            "llama-3.1-70b",
            "llama-3.1-405b"
        ]
    );
    let b8 = &rows[3];
    assert_eq!(b8["layers"], 32);
    assert_eq!(b8["kv_heads"], 8);
    // 8,029,995,008 matrix weights x 2 bytes + 65 norms x 4096 x 4 bytes + 64 RoPE factors x 4.
    assert_eq!(
        b8["weight_bytes"]["f16"].as_u64().unwrap(),
        8_029_995_008 * 2 + 65 * 4096 * 4 + 64 * 4
    );
    assert_eq!(b8["params"].as_u64().unwrap(), 8_030_261_248);
    // Q4_K_M: 144 bytes per 256 weights, 210 in Q6_K for the output and for 16 of the 32
    // value (1024 x 4096) and down (4096 x 14336) projections; bartowski's Q4_K_M file of
    // Llama-3.1-8B-Instruct is 4.92 GB with its tokenizer.
    let q4 = |n: u64| n / 256 * 144;
    let q6 = |n: u64| n / 256 * 210;
    let (embd, q, kv, ffn) = (128_256 * 4096, 4096 * 4096, 1024 * 4096, 14_336 * 4096);
    let matrices = q4(embd)
        + q6(embd)
        + 32 * (2 * q4(q) + q4(kv) + 2 * q4(ffn))
        + 16 * (q6(kv) + q6(ffn))
        + 16 * (q4(kv) + q4(ffn));
    assert_eq!(
        b8["weight_bytes"]["q4_k_m"].as_u64().unwrap(),
        matrices + 65 * 4096 * 4 + 64 * 4
    );
    assert_eq!(matrices + 65 * 4096 * 4 + 64 * 4, 4_912_898_304);
}

/// A temporary cache with less free space than `needed` bytes: the temporary folder when it
/// has less, else a tmpfs of half of them (nothing is written there); `None` (reported as
/// skipped) where neither is possible.
fn small_cache(test: &str, needed: u64) -> Option<SmallCache> {
    let tmp = tempfile::tempdir().unwrap();
    let free = llamaperf_os::fs::free_bytes(tmp.path()).unwrap();
    if free < needed {
        return Some(SmallCache { tmpfs: None, tmp });
    }
    match Tmpfs::mount(&tmp.path().join("disk"), needed / 2) {
        Ok(tmpfs) => Some(SmallCache {
            tmpfs: Some(tmpfs),
            tmp,
        }),
        Err(e) => {
            let reason =
                format!("the temporary folder has {free} bytes free, {needed} needed, and {e}");
            crate::util::skipped(test, &reason);
            None
        }
    }
}

/// The folder of [`small_cache`]; the tmpfs is unmounted before its folder is removed.
struct SmallCache {
    tmpfs: Option<Tmpfs>,
    tmp: tempfile::TempDir,
}

impl SmallCache {
    fn path(&self) -> &std::path::Path {
        self.tmpfs
            .as_ref()
            .map_or(self.tmp.path(), |t| t.0.as_path())
    }
}

/// Bytes of the weights of `preset` in each of `dtypes`.
fn weight_bytes(preset: &str, dtypes: &[WeightDtype]) -> u64 {
    let preset = find_preset(preset).unwrap();
    dtypes.iter().map(|d| preset.weight_bytes(*d)).sum()
}

/// Runs `llamaperf ARGS` with the cache `cache`, checks exit code 2, the message (from the
/// start of its list of models, `wanted`, then the numbers and the folder), and that nothing was written into the cache's
/// models folder.
fn refused_for_space(cache: &std::path::Path, args: &[&str], wanted: &str) {
    let out = llamaperf()
        .env("LLAMAPERF_CACHE", cache)
        .current_dir(cache)
        .args(args)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("later runs reuse it"), "announced: {err}");
    let models = cache.join("models");
    assert!(
        err.contains(&format!("synthesizing {wanted}"))
            && err.contains(&format!(" GB, but {} has ", models.display()))
            && err.contains(" GB free: free space there or set LLAMAPERF_CACHE"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left in the cache: {left:?}");
}

const HUGE: &str = "llama-3.1-405b f32";

#[test]
fn model_synth_refuses_a_model_larger_than_the_free_space() {
    let needed = weight_bytes("llama-3.1-405b", &[WeightDtype::F32]);
    let test = "model_synth_refuses_a_model_larger_than_the_free_space";
    let Some(cache) = small_cache(test, needed) else {
        return;
    };
    let args = ["model", "synth", "llama-3.1-405b", "--dtype", "f32"];
    refused_for_space(cache.path(), &args, &format!("{HUGE} needs "));
}

#[test]
fn run_refuses_a_model_larger_than_the_free_space() {
    let test = "run_refuses_a_model_larger_than_the_free_space";
    // run checks memory before synthesis, so the model must fit in memory but not on the disk:
    // a small tmpfs is the disk where one can be mounted
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("disk"), 64 << 20);
    let cache = disk.as_ref().map_or(tmp.path(), |d| d.0.as_path());
    let free = llamaperf_os::fs::free_bytes(cache).unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let available = llamaperf::machine::memory::meminfo_bytes(&meminfo, "MemAvailable:").unwrap();
    let fits = |bytes: u64| bytes > free && bytes < available / 10 * 8;
    let choice = llamaperf::model::preset::presets()
        .into_iter()
        .flat_map(|p| WeightDtype::ALL.map(|d| (p.name.to_string(), d, p.weight_bytes(d))))
        .find(|(_, _, bytes)| fits(*bytes));
    let Some((preset, dtype, _)) = choice else {
        let no_tmpfs = disk
            .err()
            .map_or(String::new(), |e| format!(" (no small disk: {e})"));
        let reason = format!(
            "no preset is larger than the {free} bytes free on the disk and smaller than 80% of \
             the {available} bytes of memory available{no_tmpfs}"
        );
        return crate::util::skipped(test, &reason);
    };
    let args = [
        "run",
        "--model",
        &preset,
        "--dtype",
        dtype.name(),
        "--prompt",
        "hi",
    ];
    refused_for_space(cache, &args, &format!("{preset} {} needs ", dtype.name()));
}

#[test]
fn a_sweep_refuses_models_larger_than_the_free_space_before_it_starts() {
    use WeightDtype::*;
    // Each fits in the memory of a small machine; together they outgrow its disk.
    let dtypes = [F16, Q8_0, Q6K, Q4K, Q4_1, Q4_0];
    let test = "a_sweep_refuses_models_larger_than_the_free_space_before_it_starts";
    let Some(cache) = small_cache(test, weight_bytes("llama-3.1-8b", &dtypes)) else {
        return;
    };
    let file = crate::util::scenario(
        cache.path(),
        "[defaults]\nprompt_tokens = 16\ngen_tokens = 4\n[matrix]\nmodel = [\"llama-3.1-8b\"]\n\
         dtype = [\"f16\", \"q8_0\", \"q6_k\", \"q4_k\", \"q4_1\", \"q4_0\"]\n",
    );
    let args = ["sweep", file.to_str().unwrap(), "--out", "out"];
    refused_for_space(cache.path(), &args, "llama-3.1-8b f16, llama-3.1-8b q4_0, ");
    assert!(!cache.path().join("out").exists());
}
