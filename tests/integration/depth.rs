//! `depth`: the cache filled untimed before the prompt. The fill, in pieces, must be the same
//! computation as one long prefill in every in-process engine; runs at a depth carry it in
//! their ids, summary.csv and memory estimate; engines and models that cannot hold it refuse.

use crate::util::{llamaperf, run_json_of, smollm2, stderr_of, summary, sweep_ok};
use llamaperf::engine::{self, Engine, EngineKind};
use llamaperf::llama_cpp::{FlashAttn, LlamaCppEngine, LlamaCppSettings};
use llamaperf::measure::generation::{generate, NoObserver};
use llamaperf::model::tokenizer::TextCodec;
use llamaperf::model::{KvDtype, ModelFile};

/// Greedy tokens compared after the fill.
const GEN: usize = 8;

/// English text of more than one fill piece (512 tokens) on SmolLM2, so that the fill takes
/// two forward passes, the second at a position > 0, and the prompt's answer stays clear.
fn long_fill(codec: &TextCodec) -> Vec<u32> {
    let paragraph = "Paris is the capital and largest city of France. It lies on the Seine \
                     river in the north of the country. The city is known for its museums, \
                     its cafes and the Eiffel Tower, built for the world fair of 1889. ";
    let ids = codec.encode(&paragraph.repeat(16)).unwrap();
    assert!(ids.len() > 600, "{} tokens", ids.len());
    ids
}

/// The engine `kind` on `model` for one sequence of `context` tokens, with an f32 cache.
fn load(
    kind: EngineKind,
    model: &ModelFile,
    path: &std::path::Path,
    context: usize,
) -> Box<dyn Engine> {
    if kind == EngineKind::LlamaCpp {
        let settings = LlamaCppSettings {
            flash_attn: FlashAttn::Off,
            kv_dtype: KvDtype::F32,
            ubatch: 512,
            threads: 2,
            amx_refused: None,
        };
        Box::new(LlamaCppEngine::load(path, &settings, 1, context).unwrap())
    } else {
        engine::load(kind, model, 1, context, KvDtype::F32).unwrap()
    }
}

fn fill_equals_one_long_prefill(kind: EngineKind) {
    let path = smollm2();
    let model = ModelFile::open(&path).unwrap();
    let codec = TextCodec::from_model(&model).unwrap();
    let fill = long_fill(&codec);
    let prompt = codec.encode(" The capital of France is").unwrap();
    let mut e = load(kind, &model, &path, fill.len() + prompt.len() + GEN);
    let at_depth = generate(
        e.as_mut(),
        std::slice::from_ref(&fill),
        std::slice::from_ref(&prompt),
        GEN,
        &mut NoObserver,
    )
    .unwrap()
    .first_sequence;
    let whole = generate(
        e.as_mut(),
        &[],
        &[[fill, prompt].concat()],
        GEN,
        &mut NoObserver,
    )
    .unwrap()
    .first_sequence;
    assert_eq!(
        codec.decode(&at_depth).unwrap(),
        codec.decode(&whole).unwrap(),
        "{kind}: after the fill as after one prefill of fill and prompt"
    );
    assert_eq!(at_depth, whole, "{kind}");
}

#[test]
fn tuned_fills_its_cache_as_one_long_prefill_would() {
    fill_equals_one_long_prefill(EngineKind::Tuned);
}

#[test]
fn reference_fills_its_cache_as_one_long_prefill_would() {
    fill_equals_one_long_prefill(EngineKind::Reference);
}

#[test]
fn llama_cpp_fills_its_cache_as_one_long_prefill_would() {
    fill_equals_one_long_prefill(EngineKind::LlamaCpp);
}

#[test]
fn a_depth_axis_is_in_ids_summary_and_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(
        tmp.path(),
        "[defaults]\nmodel = \"tiny\"\ndtype = \"f32\"\ncores = 1\nprompt_tokens = 4\n\
         gen_tokens = 3\nrepetitions = 1\nwarmup = 0\n[matrix]\ndepth = [0, 40]\n",
    );
    let rows = summary(&out_dir);
    assert_eq!(rows.iter().map(|r| r.depth).collect::<Vec<_>>(), [0, 40]);
    assert!(!rows[0].run_id.contains("depth"), "{}", rows[0].run_id);
    assert!(rows[1].run_id.ends_with(" depth=40"), "{}", rows[1].run_id);

    let out = llamaperf()
        .args(["run", "--model", "tiny", "--dtype", "f32", "--depth", "40"])
        .args([
            "--prompt-tokens",
            "4",
            "--gen-tokens",
            "3",
            "--repetitions",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json = run_json_of(&out.stdout);
    assert_eq!(json.spec.config.depth, 40);
    assert_eq!(json.spec.context_tokens(), 47, "depth + prompt + gen");
}

#[test]
fn a_depth_past_the_context_or_for_a_server_exits_2_naming_it() {
    let out = llamaperf()
        .args([
            "run",
            "--model",
            "tiny",
            "--depth",
            "2040",
            "--prompt-tokens",
            "8",
        ])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("depth (2040) + prompt (8) + gen tokens (32) = 2080 exceeds the context"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let file = crate::util::scenario(
        tmp.path(),
        "[defaults]\nmodel = \"tiny\"\nengine = \"openai\"\nurl = \"http://127.0.0.1:9\"\n\
         depth = 64\n",
    );
    let out = llamaperf()
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("skipped")
            && plan.contains("engine 'openai' cannot run depth = 64; allowed: 0"),
        "{plan}"
    );
}
