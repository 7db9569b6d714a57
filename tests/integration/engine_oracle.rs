//! The tuned engine against candle-transformers' quantized_llama (the oracle), and batching.

use crate::util::{argmax, largest, relative_diff, skipped, smollm2, synthetic};
use candle_core::{Device, Tensor};
use llamaperf::engine::kernels::{Isa, ISA_ENV};
use llamaperf::engine::{self, sampling::greedy, EngineKind};
use llamaperf::model::tokenizer::TextCodec;
use llamaperf::model::{KvDtype, ModelFile, WeightDtype};

/// Logits of the prefill and of `steps` greedy decode steps, per step `[batch][vocab]`, with
/// an f32 KV cache (the oracle's, so that the engines differ only in their arithmetic's order).
fn trace(
    kind: EngineKind,
    model: &ModelFile,
    prompts: &[Vec<u32>],
    steps: usize,
) -> Vec<Vec<Vec<f32>>> {
    forced_trace(kind, KvDtype::F32, model, prompts, steps, None)
}

/// [`trace`], each decode step fed `forced`'s logits' greedy tokens when given (so that two
/// engines are compared on the same inputs), else its own; the engine keeps a `kv` cache.
fn forced_trace(
    kind: EngineKind,
    kv: KvDtype,
    model: &ModelFile,
    prompts: &[Vec<u32>],
    steps: usize,
    forced: Option<&[Vec<Vec<f32>>]>,
) -> Vec<Vec<Vec<f32>>> {
    let batch = prompts.len();
    let len = prompts[0].len();
    let mut e = engine::load(kind, model, batch, len + steps + 1, kv).unwrap();
    let ids = Tensor::from_vec(prompts.concat(), (batch, len), &Device::Cpu).unwrap();
    let mut logits = e.forward(&ids, 0).unwrap();
    let mut out = vec![logits.to_vec2::<f32>().unwrap()];
    for step in 0..steps {
        let next = match forced {
            Some(f) => f[step].iter().map(|row| argmax(row) as u32).collect(),
            None => greedy(&logits).unwrap(),
        };
        let ids = Tensor::from_vec(next, (batch, 1), &Device::Cpu).unwrap();
        logits = e.forward(&ids, len + step).unwrap();
        out.push(logits.to_vec2::<f32>().unwrap());
    }
    out
}

/// Tolerance of the tuned engine against the oracle where both do the same arithmetic in a
/// different order: F32 and F16 weights on the 2-layer synthetic model.
const ORACLE_TOLERANCE: f32 = 1e-4;

/// Tolerance where the two engines round activations differently. The tuned engine quantizes
/// them as ggml does on x86 (llama.cpp's arithmetic: ties to even, `127 / amax`, Q8_1's sums at
/// f16, RMSNorm's sum in f64; see llama_cpp.rs), candle rounds ties away from zero with
/// `1 / d` and sums RMSNorm in f32, and our BF16 prefill rounds activations to BF16 (as
/// llama.cpp's). A value that lands on the other side of a rounding moves by a whole 8-bit step,
/// and the next layer's quantization spreads it: measured 0.2-0.8% (Q4_0, Q4_K), 1.1-1.8%
/// (Q4_1, Q8_0) and 0.3% (BF16) of the largest logit. Q4_K and Q6_K quantize activations per
/// super-block, as candle does (ggml's Q8_K), and agree to 2e-7 at most steps, but the same
/// spreading turns the last-bit differences of our attention into a whole rounding step now and
/// then: Q6_K measured 1.0% at one decode step.
const QUANTIZATION_TOLERANCE: f32 = 0.03;

/// Tolerance on the 30-layer SmolLM2 (Q4_1): the rounding differences above spread through 30
/// layers of activation quantization; measured 6.2% of the largest logit at this prompt.
const SMOLLM2_TOLERANCE: f32 = 0.08;

/// Compares the tuned engine's logits with the oracle's, fed the oracle's greedy tokens, and
/// their greedy choices where `same_argmax` (where the model is too small for rounding
/// differences to move the largest logit; on SmolLM2 they may part at a near tie, as tuned and
/// llama.cpp may: see llama_cpp.rs), up to a near tie within twice the engines' largest
/// difference. The tuned engine keeps a `kv` cache.
fn assert_matches_oracle(
    model: &ModelFile,
    prompt: Vec<u32>,
    tolerance: f32,
    same_argmax: bool,
    kv: KvDtype,
) {
    let oracle = trace(
        EngineKind::Reference,
        model,
        std::slice::from_ref(&prompt),
        4,
    );
    let tuned = forced_trace(EngineKind::Tuned, kv, model, &[prompt], 4, Some(&oracle));
    for (step, (t, o)) in tuned.iter().zip(&oracle).enumerate() {
        let d = relative_diff(&t[0], &o[0]);
        assert!(
            d < tolerance,
            "{} at {}: step {step} differs by {d} of the largest logit",
            model.path.display(),
            Isa::active()
        );
        if same_argmax {
            // the tuned engine's choice is the oracle's best up to twice the engines' largest
            // difference: rounding alone may swap a near tie (or pick another of tied rows)
            let (chosen, best) = (argmax(&t[0]), argmax(&o[0]));
            let (short, differ) = (o[0][best] - o[0][chosen], d * largest(&o[0]));
            assert!(
                short <= 2.0 * differ,
                "{} step {step} at {}: tuned chose {chosen}, {short} below the oracle's {best} \
                 where their logits differ by {differ}",
                model.path.display(),
                Isa::active()
            );
        }
    }
}

#[test]
fn tuned_matches_oracle_on_synthetic_tiny_in_every_dtype() {
    for dtype in [
        WeightDtype::F32,
        WeightDtype::F16,
        WeightDtype::Bf16,
        WeightDtype::Q8_0,
        WeightDtype::Q4_0,
        WeightDtype::Q4_1,
        WeightDtype::Q4K,
        WeightDtype::Q6K,
        WeightDtype::Q4KM,
        WeightDtype::Q5KM,
        WeightDtype::Q3KM,
        WeightDtype::Q2KMix,
    ] {
        let model = synthetic("tiny", dtype);
        let tolerance = match dtype {
            WeightDtype::F32 | WeightDtype::F16 => ORACLE_TOLERANCE,
            _ => QUANTIZATION_TOLERANCE,
        };
        assert_matches_oracle(
            &model,
            (0..23).map(|i| (i * 997 + 13) % 32_000).collect(),
            tolerance,
            true,
            KvDtype::F32,
        );
    }
}

#[test]
fn tuned_matches_oracle_on_smollm2() {
    let model = ModelFile::open(&smollm2()).unwrap();
    let codec = TextCodec::from_model(&model).unwrap();
    let prompt = codec
        .encode("The capital of France is a city of museums, and")
        .unwrap();
    assert_eq!(prompt.len(), 11, "a length where the gemm paths differ");
    assert_matches_oracle(&model, prompt, SMOLLM2_TOLERANCE, false, KvDtype::F32);
}

/// SmolLM2's prompt for the f16 cache's checks.
const F16_PROMPT: &str = "The capital of France is a city of museums, and";

/// Greedy tokens the f16 cache must keep.
const F16_GREEDY_TOKENS: usize = 16;

#[test]
fn tuned_with_an_f16_cache_matches_oracle_on_smollm2() {
    // f16 keys and values are within 2^-11 of f32's, a sixteenth of the 8-bit activation
    // quantization's step (2^-7) whose spreading SMOLLM2_TOLERANCE allows for, so the f16
    // cache stays within the same tolerance as the f32 one.
    let model = ModelFile::open(&smollm2()).unwrap();
    let codec = TextCodec::from_model(&model).unwrap();
    let prompt = codec.encode(F16_PROMPT).unwrap();
    assert_matches_oracle(
        &model,
        prompt.clone(),
        SMOLLM2_TOLERANCE,
        false,
        KvDtype::F16,
    );
    let text = |kind: EngineKind, kv: KvDtype| -> Vec<usize> {
        let steps = forced_trace(
            kind,
            kv,
            &model,
            std::slice::from_ref(&prompt),
            F16_GREEDY_TOKENS - 1,
            None,
        );
        steps.iter().map(|step| argmax(&step[0])).collect()
    };
    let half = text(EngineKind::Tuned, KvDtype::F16);
    assert_eq!(half.len(), F16_GREEDY_TOKENS);
    assert_eq!(
        half,
        text(EngineKind::Reference, KvDtype::F32),
        "greedy text at {}",
        Isa::active()
    );
}

/// The oracle tests above, which run at the process's kernel level ([`Isa::active`]).
const ORACLE_TESTS: [&str; 3] = [
    "engine_oracle::tuned_matches_oracle_on_synthetic_tiny_in_every_dtype",
    "engine_oracle::tuned_matches_oracle_on_smollm2",
    "engine_oracle::tuned_with_an_f16_cache_matches_oracle_on_smollm2",
];

#[test]
fn the_oracle_tests_pass_at_every_other_kernel_level() {
    // the level is chosen once per process, so each other level runs them in a child test
    // process of this binary, capped there by LLAMAPERF_ISA
    for isa in Isa::ALL {
        if let Some(reason) = isa.unavailable_reason() {
            skipped(&format!("the oracle tests at {isa}"), &reason);
            continue;
        }
        if isa == Isa::active() {
            continue;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(ISA_ENV, isa.name())
            .args(ORACLE_TESTS)
            .args(["--exact", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("test result: ok. 3 passed"),
            "the oracle tests at {isa}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_batch_of_different_prompts_equals_batch_one_runs() {
    for model in [
        synthetic("tiny", WeightDtype::Q4K),
        ModelFile::open(&smollm2()).unwrap(),
    ] {
        let prompts: Vec<Vec<u32>> = (0..3u32)
            .map(|b| (0..11).map(|i| (b * 7919 + i * 131 + 5) % 30_000).collect())
            .collect();
        let batched = trace(EngineKind::Tuned, &model, &prompts, 3);
        for (b, prompt) in prompts.iter().enumerate() {
            let single = trace(EngineKind::Tuned, &model, std::slice::from_ref(prompt), 3);
            for step in 0..batched.len() {
                let d = relative_diff(&batched[step][b], &single[step][0]);
                assert!(d < SMOLLM2_TOLERANCE, "sequence {b} step {step}: {d}");
            }
        }
        assert_ne!(
            batched[0][0], batched[0][1],
            "different prompts, different logits"
        );
    }
}

#[test]
fn reference_engine_refuses_batches() {
    let model = synthetic("tiny", WeightDtype::Q8_0);
    let err = engine::load(EngineKind::Reference, &model, 2, 16, KvDtype::F32)
        .err()
        .expect("batch 2 is refused")
        .to_string();
    assert!(err.contains("batch 1 only"), "{err}");
}

#[test]
fn engines_refuse_a_kv_cache_they_do_not_keep() {
    let model = synthetic("tiny", WeightDtype::Q8_0);
    let err = engine::load(EngineKind::Reference, &model, 1, 16, KvDtype::Q8_0)
        .err()
        .expect("q8_0 is refused")
        .to_string();
    assert!(
        err.contains("engine 'reference' keeps no q8_0 KV cache; it keeps f32"),
        "{err}"
    );
}
