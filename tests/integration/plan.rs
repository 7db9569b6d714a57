//! `llamaperf plan`: memory figures by hand, packing on a synthetic dual-socket NPS4 machine,
//! the roofline projection from a calibration file, and the SLO search on the committed
//! ci-smoke results folder (`tests/fixtures/results/ci-smoke-b`, a real sweep of the tiny model).

use crate::util::{llamaperf, stderr_of};
use llamaperf::plan::packing::Layout;
use llamaperf::plan::CapacityPlan;
use llamaperf::results::{Outcome, ResultsDir};
use std::path::PathBuf;

/// Two sockets, NPS4: 8 NUMA nodes of 64 GB (10^9 bytes) and 24 cores (3 CCDs of 8), SMT.
const NPS4: &str = "synthetic:\"pack:2 numa:4(memory=64GB) l3:3 core:8 pu:2\"";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/results")
        .join(name)
}

fn plan_json(args: &[&str]) -> CapacityPlan {
    let out = llamaperf()
        .arg("plan")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn memory_of_llama_3_1_8b_by_hand() {
    let p = plan_json(&[
        "--model",
        "llama-3.1-8b",
        "--dtype",
        "f16",
        "--batch",
        "4",
        "--context",
        "8192",
        "--prompt-tokens",
        "512",
        "--topology",
        NPS4,
    ]);
    // 2 (K and V) x 32 layers x 8 KV heads x 128 dims x 2 bytes (f16, the default).
    assert_eq!(p.kv_bytes_per_token, 131_072);
    assert_eq!(p.memory.kv_cache_bytes, 131_072 * 8192 * 4);
    // 8,029,995,008 matrix weights x 2 bytes + 65 norms of 4096 x 4 bytes + 64 RoPE factors x 4.
    assert_eq!(
        p.memory.weights_bytes,
        8_029_995_008 * 2 + 65 * 4096 * 4 + 64 * 4
    );
    assert_eq!(p.memory.weights_bytes, 16_061_055_232);
    // f32 activations: 512 prompt tokens x (4 x 4096 + 2 x 1024 + 3 x 14336) values, one
    // layer's scores 32 heads x 512 x 8192, the logits 128256; for each of 4 sequences.
    let activations = 4 * 4 * (512 * (4 * 4096 + 2 * 1024 + 3 * 14336) + 32 * 512 * 8192 + 128_256);
    assert_eq!(p.memory.activation_bytes, activations);
    assert_eq!(
        p.memory_total_bytes,
        16_061_055_232 + 4_294_967_296 + 2_652_852_224
    );
    assert_eq!(p.kv_dtype.name(), "f16");

    let q8 = plan_json(&[
        "--model",
        "llama-3.1-8b",
        "--context",
        "8192",
        "--kv-dtype",
        "q8_0",
        "--topology",
        NPS4,
    ]);
    // 32 layers x 2048 values in blocks of 32, 34 bytes each.
    assert_eq!(q8.kv_bytes_per_token, 32 * 2048 / 32 * 34);
    assert_eq!(q8.prompt_tokens, 512, "the default prompt");
}

#[test]
fn llama_3_1_70b_in_f16_spans_a_socket_of_an_nps4_machine() {
    let p = plan_json(&[
        "--model",
        "llama-3.1-70b",
        "--dtype",
        "f16",
        "--context",
        "8192",
        "--topology",
        NPS4,
    ]);
    assert_eq!(p.kv_bytes_per_token, 2 * 80 * 8 * 128 * 2);
    assert_eq!(p.memory.kv_cache_bytes, 2_684_354_560);
    assert_eq!(p.memory.weights_bytes, 141_110_051_072);
    let activations = 4 * (512 * (4 * 8192 + 2 * 1024 + 3 * 28672) + 64 * 512 * 8192 + 128_256);
    assert_eq!(p.memory.activation_bytes, activations);
    assert_eq!(p.memory_total_bytes, 145_116_124_416);
    let k = &p.packing;
    assert_eq!(
        k.cores_per_instance, 24,
        "default: the cores of a NUMA node"
    );
    let each: Vec<(u64, usize, usize)> = k
        .scopes
        .iter()
        .map(|s| (s.by_memory, s.by_cores, s.each))
        .collect();
    assert_eq!(each, [(0, 1, 0), (1, 4, 1), (3, 8, 3)]);
    assert_eq!((k.instances_per_machine, k.layout), (2, Layout::SocketWide));
}

#[test]
fn small_instances_pack_by_cores_on_every_node() {
    let p = plan_json(&[
        "--model",
        "llama-3.1-8b",
        "--context",
        "4096",
        "--cores-per-instance",
        "8",
        "--topology",
        NPS4,
    ]);
    let node = &p.packing.scopes[0];
    assert_eq!(
        (
            node.scope.as_str(),
            node.count,
            node.memory_bytes,
            node.cores
        ),
        ("numa_node", 8, 64_000_000_000, 24)
    );
    assert_eq!((node.by_cores, node.each, node.total), (3, 3, 24));
    assert!(node.by_memory > 3, "{node:?}");
    assert_eq!(
        (p.packing.instances_per_machine, p.packing.layout),
        (24, Layout::NodeLocal)
    );
    // No calibration of a synthetic machine: the plan says what to run.
    assert_eq!(p.projection, None);
    assert!(
        p.notes.iter().any(|n| n.contains("llamaperf calibrate")),
        "{:?}",
        p.notes
    );
}

#[test]
fn roofline_from_a_calibration_file() {
    let calibration = fixture("ci-smoke-a").join("calibration.json");
    let cal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&calibration).unwrap()).unwrap();
    let read_gb_s = cal["bandwidth"][0]["read_gb_s"].as_f64().unwrap();
    let p = plan_json(&[
        "--model",
        "llama-3.1-8b",
        "--context",
        "4096",
        "--topology",
        NPS4,
        "--calibration",
        calibration.to_str().unwrap(),
        "--target-tok-s",
        "1000",
    ]);
    assert_eq!(p.projection.as_deref(), Some("roofline"));
    let at = p.at_batch.unwrap();
    assert_eq!(at.instances_per_machine, 8);
    // Decode at batch 1 streams the weights but one row of the untied 128256 x 4096 q4_k
    // embedding table (2304 bytes a row) and a full f16 KV cache; 8 instances share the
    // machine's bandwidth (the calibration's only point).
    let table = 128_256 * 2304;
    let weights = p.memory.weights_bytes - table + 2304 - 256;
    let bytes = weights as f64 + 131_072.0 * 4096.0;
    let want_ms = bytes / (read_gb_s * 1e9 / 8.0) * 1e3;
    assert!(
        (at.tpot_ms - want_ms).abs() < 1e-6 * want_ms,
        "{at:?} vs {want_ms}"
    );
    assert!((at.tok_s_per_machine - 8.0 * 1e3 / at.tpot_ms).abs() < 1e-6);
    let target = p.target.unwrap();
    assert_eq!(
        target.machines,
        (1000.0 / at.tok_s_per_machine).ceil() as u64
    );
    assert!(
        p.notes.iter().any(|n| n.contains("at most 2 cores")),
        "{:?}",
        p.notes
    );
}

/// Mean TPOT (ms) and decode tokens/s of the fixture's run at `threads` threads and `batch`.
fn measured(threads: usize, batch: usize) -> (f64, f64) {
    ResultsDir::read(&fixture("ci-smoke-b"))
        .unwrap()
        .records()
        .iter()
        .find_map(|r| match &r.outcome {
            Outcome::Ok { record } if record.threads == threads && r.config().batch == batch => {
                Some((
                    record.summary.tpot_ms.unwrap().mean,
                    record.summary.decode_tok_s.unwrap().mean,
                ))
            }
            _ => None,
        })
        .unwrap()
}

#[test]
fn slo_search_on_measured_results() {
    let dir = fixture("ci-smoke-b");
    let (tpot_1, tok_s_1) = measured(1, 1);
    let (tpot_2, tok_s_2) = measured(1, 2);
    assert!(tpot_1 < tpot_2, "a batch of 2 takes longer per step");
    let plan_at = |slo: f64, extra: &[&str]| {
        let slo = slo.to_string();
        let mut args = vec![
            "--model",
            "tiny",
            "--context",
            "48",
            "--prompt-tokens",
            "32",
            "--cores-per-instance",
            "1",
            "--slo-tpot-ms",
            &slo,
            "--from",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        plan_json(&args)
    };
    // Between the two: batch 1 meets it, batch 2 does not.
    let p = plan_at((tpot_1 + tpot_2) / 2.0, &["--target-tok-s", "100000"]);
    assert_eq!(p.projection.as_deref(), Some("measured"));
    let slo = p.slo.unwrap();
    assert_eq!(slo.searched_up_to, 2);
    let best = slo.best.unwrap();
    assert_eq!(best.batch, 1);
    assert!((best.tpot_ms - tpot_1).abs() < 1e-9);
    assert!((best.tok_s_per_instance - tok_s_1).abs() < 1e-9);
    // The fixture's machine (2 cores) holds 2 one-core instances.
    assert_eq!(best.instances_per_machine, 2);
    assert!((best.tok_s_per_machine - 2.0 * tok_s_1).abs() < 1e-9);
    assert_eq!(
        p.target.unwrap().machines,
        (100_000.0 / (2.0 * tok_s_1)).ceil() as u64
    );
    assert!(p.machine.contains("machine.json of"), "{}", p.machine);

    let loose = plan_at(tpot_2 * 1.001, &[]).slo.unwrap().best.unwrap();
    assert_eq!(loose.batch, 2);
    assert!((loose.tok_s_per_instance - tok_s_2).abs() < 1e-9);

    assert!(plan_at(tpot_1 * 0.5, &[]).slo.unwrap().best.is_none());
    let out = llamaperf()
        .args([
            "plan",
            "--model",
            "tiny",
            "--context",
            "48",
            "--prompt-tokens",
            "32",
        ])
        .args(["--cores-per-instance", "1", "--slo-tpot-ms"])
        .arg((tpot_1 * 0.5).to_string())
        .arg("--from")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("no batch from 1 to 2 meets it"), "{text}");
    assert!(text.contains("memory per instance"), "{text}");
}

#[test]
fn bad_input_exits_with_2() {
    let from = fixture("ci-smoke-b");
    let from = from.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["--model", "llama-9b", "--context", "10"], "llama-9b"),
        (&["--model", "tiny", "--context", "0"], "--context 0"),
        (&["--model", "tiny", "--context", "4096"], "at most 2048"),
        (
            &[
                "--model",
                "tiny",
                "--context",
                "64",
                "--prompt-tokens",
                "65",
            ],
            "--prompt-tokens 65",
        ),
        (
            &["--model", "tiny", "--context", "64", "--kv-dtype", "q4_k"],
            "unknown KV cache dtype",
        ),
        (
            &["--model", "tiny", "--context", "64", "--slo-tpot-ms=-1"],
            "--slo-tpot-ms -1",
        ),
        (
            &[
                "--model",
                "tiny",
                "--context",
                "64",
                "--cores-per-instance",
                "100000",
            ],
            "--cores-per-instance 100000",
        ),
        (
            &["--model", "tiny", "--context", "64", "--from", empty],
            "not a llamaperf results folder",
        ),
        (
            &["--model", "llama-3.2-1b", "--context", "64", "--from", from],
            "has no measured",
        ),
    ];
    for (args, message) in cases {
        let out = llamaperf().arg("plan").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(message),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
}
