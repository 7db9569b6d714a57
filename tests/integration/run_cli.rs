//! `llamaperf run` end to end: a worker process, its record, its metrics.

use crate::util::{llamaperf, run_json_of, skipped, stderr_of, RunJson};
use llamaperf::machine::placement::{MemoryMode, MemoryPlacement};
use llamaperf::machine::InstancePlacement;
use llamaperf::measure::record::RunRecord;
use llamaperf::model::source::ResolvedModel;
use llamaperf::planning::spec::{Prompt, RunSpec};
use llamaperf::scenario::RunConfig;
use llamaperf::schema::RUNS_VERSION;
use std::io::Write;
use std::process::Stdio;

fn run_json(args: &[&str]) -> RunJson {
    let out = llamaperf()
        .args(["run", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    run_json_of(&out.stdout)
}

#[test]
fn json_record_has_the_metrics_of_every_repetition() {
    let r = run_json(&[
        "--model",
        "tiny",
        "--dtype",
        "q8_0",
        "--batch",
        "2",
        "--prompt-tokens",
        "16",
        "--gen-tokens",
        "5",
        "--repetitions",
        "3",
        "--warmup",
        "1",
        "--threads",
        "1",
    ]);
    assert_eq!(r.schema_version, RUNS_VERSION);
    assert_eq!(
        r.threads, 1,
        "the worker's pool has exactly --threads threads"
    );
    assert_eq!(r.repetitions.len(), 3);
    for rep in &r.repetitions {
        let m = &rep.metrics;
        assert_eq!(rep.decode_steps_ms.len(), 4);
        assert!(m.ttft_ms > 0.0 && m.e2e_ms > m.ttft_ms);
        let prefill = 2.0 * 16.0 / (m.ttft_ms / 1e3);
        assert!((m.prefill_tok_s - prefill).abs() / prefill < 1e-9);
        let decode_ms: f64 = rep.decode_steps_ms.iter().sum();
        assert!((m.e2e_ms - m.ttft_ms - decode_ms).abs() < 1e-9);
        assert!((m.decode_tok_s.unwrap() - 2.0 * 4.0 / (decode_ms / 1e3)).abs() < 1e-6);
    }
    let tpot = r.summary.tpot_ms.unwrap();
    assert_eq!(tpot.samples, 12, "3 repetitions x 4 decode steps");
    assert!(tpot.p50 <= tpot.p90 && tpot.p90 <= tpot.p99 && tpot.p99 <= tpot.max);
    assert!(r.summary.ttft_ms.cv.is_some());
    assert!(r.load_s > 0.0);
    assert!(r.peak_rss_mb.unwrap() > 1.0);
    assert_eq!(r.generated_ids.len(), 5);
    assert_eq!(r.model.config.layers, 2);
    assert!(r
        .repetitions
        .iter()
        .all(|rep| rep.read_probe_gb_s.is_empty()));
    assert_eq!(r.summary.read_share, None, "no probe unless asked for");
}

#[test]
fn read_probe_sets_each_decode_step_against_a_read() {
    let out = llamaperf()
        .args([
            "run",
            "--json",
            "--read-probe",
            "--model",
            "tiny",
            "--dtype",
            "q4_0",
        ])
        .args([
            "--prompt-tokens",
            "8",
            "--gen-tokens",
            "4",
            "--repetitions",
            "2",
        ])
        .args(["--warmup", "1", "--threads", "1", "--counters", "none"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r = run_json_of(&out.stdout);
    assert!(r.spec.config.read_probe);
    for rep in &r.repetitions {
        assert_eq!(
            rep.read_probe_gb_s.len(),
            3,
            "one read per measured decode step"
        );
        assert!(
            rep.read_probe_gb_s
                .iter()
                .all(|g| *g > 0.1 && g.is_finite()),
            "{:?}",
            rep.read_probe_gb_s
        );
    }
    let share = r.summary.read_share.expect("a share with a probe");
    assert_eq!(
        share.pairs, 6,
        "2 repetitions x 3 steps, the warmup's not among them"
    );
    assert!(share.p10_pct <= share.p50_pct && share.p50_pct <= share.p90_pct);
    assert!(share.p50_pct > 0.0, "{share:?}");
    assert!(
        stderr_of(&out).contains("read probe: decode streamed"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn reference_engine_runs_batch_one() {
    let r = run_json(&[
        "--model",
        "tiny",
        "--dtype",
        "q4_0",
        "--engine",
        "reference",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "3",
        "--repetitions",
        "1",
        "--warmup",
        "0",
    ]);
    assert_eq!(r.repetitions.len(), 1);
    assert_eq!(r.spec.config.engine.name(), "reference");
}

#[test]
fn worker_stdout_is_nothing_but_the_record() {
    let model = crate::util::synthetic("tiny", llamaperf::model::WeightDtype::Q4K);
    let config = RunConfig {
        model: "tiny".into(),
        prompt_tokens: 4,
        gen_tokens: 2,
        warmup: 0,
        repetitions: 1,
        seed: 1,
        counters: llamaperf::counters::CounterSet::None,
        ..RunConfig::default()
    };
    let spec = RunSpec {
        config,
        model: ResolvedModel {
            name: "tiny".into(),
            dtype: None,
            path: model.path.clone(),
            synthetic: true,
        },
        prompt: Prompt::Synthetic { tokens: 4 },
        placement: InstancePlacement {
            pus: vec![0],
            memory: MemoryPlacement {
                nodes: vec![0],
                mode: MemoryMode::Bind,
            },
        },
        start_barrier: false,
        amx_refused: None,
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_llamaperf"))
        .arg("worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&spec).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let record: RunRecord = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record.repetitions.len(), 1);
    assert_eq!(record.generated_ids.len(), 2);
}

#[test]
fn a_crashing_worker_is_reported_with_its_signal_and_stderr() {
    let out = llamaperf()
        .env(llamaperf::measure::worker::FAULT_ENV, "abort")
        .args([
            "run",
            "--model",
            "tiny",
            "--prompt-tokens",
            "4",
            "--gen-tokens",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(err.contains("killed by signal 6 (SIGABRT)"), "{err}");
    assert!(
        err.contains("aborting after load"),
        "stderr tail is shown: {err}"
    );
}

#[test]
fn counters_per_phase_are_counted_or_explained() {
    use llamaperf::counters::CounterKind;
    let r = run_json(&[
        "--model",
        "tiny",
        "--dtype",
        "q8_0",
        "--prompt-tokens",
        "64",
        "--gen-tokens",
        "64",
        "--repetitions",
        "3",
        "--warmup",
        "1",
    ]);
    let c = &r.counters;
    for phase in [&c.prefill, &c.decode] {
        assert!(phase.get(CounterKind::TaskClock).unwrap() > 0.0);
        assert!(phase.get(CounterKind::ContextSwitches).is_some());
        let ratio = phase.running_ratio.unwrap();
        assert!(ratio > 0.0 && ratio <= 1.0);
    }
    // CPU time is consistent with wall time: some of it busy (even when other tests compete for
    // the cores), never more than every thread of the worker on every allowed CPU.
    let decode_wall_s: f64 = r
        .repetitions
        .iter()
        .map(|rep| rep.decode_steps_ms.iter().sum::<f64>() / 1e3)
        .sum();
    let task_s = c.decode.get(CounterKind::TaskClock).unwrap() / 1e9;
    let cpus = r.binding.threads.len().min(r.spec.placement.pus.len()) as f64;
    assert!(
        task_s > 0.1 * decode_wall_s,
        "{task_s} s of CPU in {decode_wall_s} s"
    );
    assert!(
        task_s <= 1.05 * cpus * decode_wall_s,
        "{task_s} s of CPU in {decode_wall_s} s on {cpus} cpus"
    );
    let util = c.decode_derived.cpu_utilization.unwrap();
    assert!((task_s / decode_wall_s / r.spec.threads() as f64 - util).abs() < 1e-9);
    for kind in [
        CounterKind::Cycles,
        CounterKind::Instructions,
        CounterKind::LlcReadMisses,
    ] {
        match c.decode.get(kind) {
            Some(n) => assert!(n > 0.0, "{kind:?} counted as {n}"),
            None => assert!(
                r.notes
                    .iter()
                    .any(|n| n.starts_with("not counted") && n.contains(kind.name())),
                "{kind:?} is missing without a note: {:?}",
                r.notes
            ),
        }
    }
    assert_eq!(
        c.decode.get(CounterKind::Cycles).is_some(),
        c.decode_derived.effective_ghz.is_some()
    );
    let waiting_noted = r.notes.iter().any(|n| n.starts_with("ipc, llc_mpki: "));
    let ipc = c.decode_derived.ipc.is_some() || c.prefill_derived.ipc.is_some();
    assert_eq!(
        waiting_noted,
        ipc && r.spec.threads() > 1,
        "IPC over several threads says that it counts their waiting: {:?}",
        r.notes
    );
}

#[test]
fn every_kernel_level_this_cpu_has_generates_the_same_tokens_and_is_recorded() {
    use llamaperf::engine::kernels::{Isa, ISA_ENV};
    let mut texts = Vec::new();
    for isa in Isa::ALL {
        if let Some(reason) = isa.unavailable_reason() {
            skipped(&format!("end-to-end tokens at {isa}"), &reason);
            continue;
        }
        let out = llamaperf()
            .env(ISA_ENV, isa.name())
            .args(["run", "--json", "--model", "tiny", "--dtype", "q4_0"])
            .args([
                "--prompt-tokens",
                "8",
                "--gen-tokens",
                "6",
                "--repetitions",
                "1",
            ])
            .args(["--warmup", "0", "--counters", "none"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let r = run_json_of(&out.stdout);
        assert_eq!(r.kernels, Some(isa), "the worker used the capped level");
        texts.push(r.record.generated_ids);
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:?}");
}
