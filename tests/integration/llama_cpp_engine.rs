//! `--engine llama.cpp`: llama.cpp in the worker, measured like the other engines. Its greedy
//! text against what llama.cpp's own tools printed (tests/fixtures/llama-cpp, recorded with
//! f32 KV cache and no flash attention), its threads inside the placement, its settings.

use crate::util::{llamaperf, run_json_of, smollm2, stderr_of, RunJson};
use llamaperf::llama_cpp::amx::AmxSupport;
use llamaperf::llama_cpp::cpu_variant::VARIANT_ENV;
use llamaperf::llama_cpp::FlashAttn;
use llamaperf::measure::worker::FAULT_ENV;
use llamaperf::model::KvDtype;
use llamaperf::sweep::runner::SIGILL_WITH_AMX;
use serde::Deserialize;

/// One prompt's greedy tokens as llama.cpp computed them.
#[derive(Deserialize)]
struct Reference {
    prompt: String,
    prompt_ids: Vec<u32>,
    ids: Vec<u32>,
    text: String,
}

fn reference(prompt: &str) -> Reference {
    let text = std::fs::read_to_string("tests/fixtures/llama-cpp/smollm2-greedy.jsonl").unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Reference>(l).unwrap())
        .find(|r| r.prompt == prompt)
        .unwrap()
}

const PROMPT: &str = "The capital of France is";

/// `run --engine llama.cpp` with `args`, one repetition, as JSON.
fn run_command(args: &[&str]) -> assert_cmd::Command {
    let mut cmd = llamaperf();
    cmd.args([
        "run",
        "--engine",
        "llama.cpp",
        "--repetitions",
        "1",
        "--warmup",
        "0",
        "--json",
    ])
    .args(args);
    cmd
}

/// `run --engine llama.cpp` with `args`, one repetition, its JSON line.
fn run_json(args: &[&str]) -> RunJson {
    let out = run_command(args).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    run_json_of(&out.stdout)
}

#[test]
fn greedy_text_of_smollm2_is_what_llama_cpp_s_tools_print() {
    let r = reference(PROMPT);
    let model = smollm2();
    let gen = r.ids.len().to_string();
    let settings = ["--kv-dtype", "f32", "--flash-attn", "off"];
    let json = run_json(
        &[
            &[
                "--model",
                model.to_str().unwrap(),
                "--prompt",
                PROMPT,
                "--gen-tokens",
                &gen,
            ][..],
            &settings,
        ]
        .concat(),
    );
    let llamaperf::planning::Prompt::Text { ids, .. } = &json.spec.prompt else {
        panic!("a text prompt: {:?}", json.spec.prompt)
    };
    assert_eq!(ids, &r.prompt_ids, "llama.cpp's tokenizer");
    assert_eq!(json.generated_ids, r.ids);
    assert_eq!(json.generated_text.as_deref(), Some(r.text.as_str()));
    let info = json.llama_cpp.as_ref().expect("the llama.cpp record");
    eprintln!(
        "llama.cpp ran variant {} ({}), {:?}",
        info.cpu_variant, info.features, info.amx
    );

    // without --json, stdout is the text alone
    let out = llamaperf()
        .args([
            "run",
            "--engine",
            "llama.cpp",
            "--repetitions",
            "1",
            "--warmup",
            "0",
        ])
        .args([
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            PROMPT,
            "--gen-tokens",
            &gen,
        ])
        .args(settings)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", r.text)
    );
}

#[test]
fn a_synthetic_preset_runs_at_batch_2_with_every_thread_on_its_own_pu() {
    let json = run_json(&[
        "--model",
        "tiny",
        "--batch",
        "2",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "4",
    ]);
    let pus = &json.spec.placement.pus;
    assert_eq!(json.generated_ids.len(), 4);
    let decode = json.summary.decode_tok_s.as_ref().expect("decode steps");
    assert!(decode.mean > 0.0);
    let info = json.llama_cpp.as_ref().expect("the llama.cpp record");
    assert_eq!(info.threads, pus.len());
    assert!(
        !info.cpu_variant.is_empty() && !info.features.is_empty(),
        "{info:?}"
    );
    if info.cpu_variant == "sapphirerapids" {
        assert_eq!(
            info.amx,
            AmxSupport::Usable,
            "{info:?}: AMX kernels only where AMX runs"
        );
    }
    for t in &json.binding.threads {
        assert_eq!(t.cpus.len(), 1, "{t:?}");
        assert!(pus.contains(&t.cpus[0]), "{t:?} outside {pus:?}");
    }
    // the main thread and llama.cpp's OpenMP workers (named as the process) share no PU
    let mut team: Vec<usize> = json
        .binding
        .threads
        .iter()
        .filter(|t| t.name == "llamaperf")
        .map(|t| t.cpus[0])
        .collect();
    assert_eq!(team.len(), pus.len(), "{:?}", json.binding);
    team.sort_unstable();
    team.dedup();
    assert_eq!(team.len(), pus.len(), "{:?}", json.binding);
}

#[test]
fn settings_reach_llama_cpp_and_its_record() {
    let json = run_json(&[
        "--model",
        "tiny",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "3",
        "--kv-dtype",
        "q8_0",
        "--flash-attn",
        "on",
        "--ubatch",
        "4",
    ]);
    let info = json.llama_cpp.as_ref().expect("the llama.cpp record");
    assert_eq!(json.kv_dtype, KvDtype::Q8_0, "the KV type kept");
    assert_eq!(info.flash_attn, FlashAttn::On);
    assert_eq!(
        (info.n_batch, info.n_ubatch),
        (11, 4),
        "as llama.cpp's context reads them"
    );
    assert!(
        json.spec
            .config
            .id()
            .ends_with(" kv_dtype=q8_0 flash_attn=on ubatch=4"),
        "{}",
        json.spec.config.id()
    );
}

#[test]
fn settings_an_engine_cannot_take_exit_2_with_the_allowed_values() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--engine", "reference", "--kv-dtype", "q8_0"],
            "engine 'reference' cannot run kv_dtype = q8_0; allowed: f32",
        ),
        (
            &["--engine", "reference", "--flash-attn", "on"],
            "engine 'reference' cannot run flash_attn = on; allowed: only engine llama.cpp",
        ),
        (
            &[
                "--engine",
                "llama.cpp",
                "--kv-dtype",
                "q8_0",
                "--flash-attn",
                "off",
            ],
            "cannot run flash_attn = off with kv_dtype = q8_0; allowed: auto or on",
        ),
        (
            &["--engine", "llama.cpp", "--flash-attn", "maybe"],
            "unknown flash attention setting 'maybe'; valid: auto, on, off",
        ),
    ];
    for (args, message) in cases {
        let out = llamaperf()
            .args([
                "run",
                "--model",
                "tiny",
                "--prompt-tokens",
                "4",
                "--gen-tokens",
                "2",
            ])
            .args(args)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn a_scenario_names_the_line_and_the_kv_cache_types() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::util::scenario(
        dir.path(),
        "[defaults]\nmodel = \"tiny\"\nengine = \"llama.cpp\"\nkv_dtype = \"q4\"\n",
    );
    let out = llamaperf()
        .args(["sweep", "--dry-run"])
        .arg(&file)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("s.toml:5"), "{err}");
    assert!(err.contains("f32, f16, bf16, q8_0"), "{err}");
}

/// `run --engine llama.cpp` on the tiny preset whose worker dies by SIGILL until AMX is left
/// out (as llama.cpp's AMX kernels do on some VMs), with `variant` named by hand or not.
fn run_dying_by_sigill(variant: Option<&str>) -> std::process::Output {
    let mut cmd = run_command(&[
        "--model",
        "tiny",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "2",
    ]);
    cmd.env(FAULT_ENV, "sigill-with-amx");
    if let Some(name) = variant {
        cmd.env(VARIANT_ENV, name);
    }
    cmd.output().unwrap()
}

#[test]
fn a_run_dying_by_sigill_is_measured_again_without_amx_unless_its_variant_is_named() {
    let out = run_dying_by_sigill(None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json = run_json_of(&out.stdout);
    let info = json.llama_cpp.as_ref().expect("the llama.cpp record");
    assert_eq!(info.amx, AmxSupport::Refused(SIGILL_WITH_AMX.into()));
    assert_ne!(info.cpu_variant, "sapphirerapids");

    // a variant named by hand is what the user asked for: no second attempt
    let named = run_dying_by_sigill(Some(&info.cpu_variant));
    assert_eq!(named.status.code(), Some(1), "{}", stderr_of(&named));
    let err = stderr_of(&named);
    assert!(err.contains("SIGILL"), "{err}");
}
