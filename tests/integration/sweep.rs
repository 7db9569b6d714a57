//! `llamaperf sweep`: plans, pinned runs, results folders, crashes, timeouts, Ctrl-C and resume.

use crate::util::{cache_dir, llamaperf, records, scenario, stderr_of, summary, sweep, sweep_ok};
use llamaperf::planning::plan::{Plan, PlanStatus};
use llamaperf::results::summary::SummaryRow;
use llamaperf::results::{Outcome, ResultsDir, SweepRecord};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SMALL: &str =
    "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 16\ngen_tokens = 6\nrepetitions = 2\n";

#[test]
fn a_scenario_with_a_read_probe_reports_decode_share_of_the_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(
        tmp.path(),
        &format!("{SMALL}read_probe = true\ncounters = \"none\"\n[matrix]\ncores = [1]\n"),
    );
    let recs = records(&out_dir);
    let Outcome::Ok { record } = &recs[0].outcome else {
        panic!("the run failed: {:?}", recs[0].outcome);
    };
    assert!(recs[0].spec.config.read_probe);
    assert!(record
        .repetitions
        .iter()
        .all(|r| r.read_probe_gb_s.len() == 5));
    let row = &summary(&out_dir)[0];
    let share = record.summary.read_share.unwrap();
    assert_eq!(row.get("decode_pct_read"), Some(share.p50_pct));
    assert!(share.p50_pct > 0.0);
    let out = llamaperf().arg("report").arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("% of reads)"), "{report}");
}

#[test]
fn a_scenario_sweeping_kv_dtype_records_each_cache_type() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(
        tmp.path(),
        &format!(
            "{SMALL}counters = \"none\"\ncores = 1\n[matrix]\nkv_dtype = [\"f16\", \"f32\", \"bf16\"]\n"
        ),
    );
    let recs = records(&out_dir);
    let rows = summary(&out_dir);
    assert_eq!((recs.len(), rows.len()), (3, 3));
    for ((rec, row), kv) in recs.iter().zip(&rows).zip(["f16", "f32", "bf16"]) {
        assert!(
            matches!(rec.outcome, Outcome::Ok { .. }),
            "{kv}: {:?}",
            rec.outcome
        );
        let config = rec.config();
        assert_eq!(config.kv_dtype.map(|k| k.to_string()).as_deref(), Some(kv));
        assert!(
            rec.run_id()
                .ends_with(&format!(" instances=1 kv_dtype={kv}")),
            "{}",
            rec.run_id()
        );
        assert_eq!(row.kv_dtype, kv);
    }
    // a run that keeps its engine's own cache has the id it always had
    let mut own = recs[0].config().clone();
    own.kv_dtype = None;
    assert!(own.id().ends_with(" instances=1"), "{}", own.id());
}

#[test]
fn a_sweep_writes_every_file_of_the_results_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(
        tmp.path(),
        &format!("{SMALL}[matrix]\nbatch = [1, 2]\ncores = [1, 100000]\n"),
    );
    let file = tmp.path().join("s.toml");
    for f in [
        "scenario.toml",
        "machine.json",
        "plan.json",
        "runs.jsonl",
        "tokens.csv",
        "summary.csv",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} is missing");
    }
    assert_eq!(
        std::fs::read_to_string(out_dir.join("scenario.toml")).unwrap(),
        std::fs::read_to_string(&file).unwrap()
    );
    let machine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("machine.json")).unwrap())
            .unwrap();
    for key in [
        "schema_version",
        "cpu_model",
        "kernel",
        "governor",
        "transparent_hugepages",
        "mem_total_bytes",
        "git_commit",
        "rustc_version",
        "candle_version",
        "topology",
    ] {
        assert!(machine.get(key).is_some(), "machine.json lacks {key}");
    }
    let recs = records(&out_dir);
    assert_eq!(recs.len(), 2, "2 runs executed, 2 skipped (too many cores)");
    assert!(recs.iter().all(|r| matches!(r.outcome, Outcome::Ok { .. })));
    let rows = summary(&out_dir);
    assert_eq!(rows.len(), 4);
    let skipped: Vec<&SummaryRow> = rows.iter().filter(|r| r.status == "skipped").collect();
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped[0].reason.starts_with("asks 100000 cores, "),
        "{}",
        skipped[0].reason
    );
    assert!(
        skipped
            .iter()
            .all(|r| r.get("decode_tok_s").is_none() && r.get("ttft_ms").is_none()),
        "skipped rows have empty metrics, not 0"
    );
    let ok = rows.iter().find(|r| r.status == "ok").unwrap();
    assert!(
        ok.get("decode_tok_s").unwrap() > 0.0
            && ok.get("tpot_p99_ms").unwrap() >= ok.get("tpot_p50_ms").unwrap()
    );
    assert!(
        ok.get("prefill_task_clock_ns").unwrap() > 0.0
            && ok.get("decode_cpu_utilization").unwrap() > 0.0
    );
    assert!(skipped
        .iter()
        .all(|r| r.get("decode_task_clock_ns").is_none()));
    assert_eq!(
        ok.get("decode_pct_read"),
        None,
        "no read probe unless the scenario asks"
    );
    let header = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    let header = header.lines().next().unwrap();
    for column in [
        "ttft_ms",
        "tpot_p99_ms",
        "decode_tok_s",
        "prefill_ipc",
        "decode_llc_mpki",
        "decode_task_clock_ns",
    ] {
        assert!(
            header.split(',').any(|c| c == column),
            "summary.csv lacks {column}"
        );
    }
    let tokens = std::fs::read_to_string(out_dir.join("tokens.csv")).unwrap();
    assert!(tokens.starts_with("schema_version,run_id,host,instance,repetition,step,phase,ms\n"));
    // 2 runs x 2 repetitions x (1 prefill + 5 decode steps).
    assert_eq!(tokens.lines().count(), 1 + 2 * 2 * 6);
    let again = llamaperf()
        .arg("sweep")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr_of(&again).contains("already exists: continue it with --resume"));
}

#[test]
fn dry_run_plans_a_dual_socket_nps4_machine_with_skip_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(
        tmp.path(),
        "[defaults]\nmodel = \"llama-3.1-8b\"\n[matrix]\ncores = [8, 500]\nnps = [1, 4]\nsmt = [\"off\", \"on\"]\n\
         [[include]]\nmodel = \"llama-3.1-405b\"\ndtype = \"bf16\"\ncores = \"all\"\n",
    );
    let out = llamaperf()
        .arg("sweep")
        .arg(&file)
        .args([
            "--dry-run",
            "--json",
            "--topology",
            "synthetic:\"pack:2 numa:4(memory=68719476736) l3:3 core:8 pu:2\"",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let plan: Plan = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan.runs.len(), 9);
    let reason = |id_part: &str| -> String {
        let run = plan.runs.iter().find(|r| r.id.contains(id_part)).unwrap();
        match &run.status {
            PlanStatus::Skipped { reason } => reason.clone(),
            PlanStatus::Planned { .. } => "planned".into(),
        }
    };
    assert_eq!(reason("cores=8 smt=off compact local nps=4"), "planned");
    assert_eq!(
        reason("cores=8 smt=off compact local nps=1"),
        "scenario needs NPS1, machine is NPS4"
    );
    assert_eq!(
        reason("cores=500 smt=off compact local nps=4"),
        "asks 500 cores, 192 allowed"
    );
    assert_eq!(
        reason("cores=500 smt=on compact local nps=4"),
        "asks 500 cores with SMT, 192 have 2 or more usable PUs"
    );
    let huge = reason("llama-3.1-405b");
    assert_eq!(
        huge,
        "needs 811.9 GB for 1 instance (weights 811.7 GB + KV cache 0.1 GB + activations 0.1 GB each), \
         494.8 GB usable: NUMA nodes 0-7 have 549.8 GB in the topology less a margin of 55.0 GB \
         (10%, at least 0.3 GB)"
    );
    let planned = plan
        .runs
        .iter()
        .find(|r| r.id.contains("cores=8 smt=on compact local nps=4"))
        .unwrap();
    let PlanStatus::Planned { specs, memory } = &planned.status else {
        panic!()
    };
    assert_eq!(specs[0].placement.pus, (0..16).collect::<Vec<_>>());
    assert_eq!(
        (specs[0].threads(), specs[0].config.batch),
        (16, planned.config.batch)
    );
    assert!(specs[0].model.path.ends_with("llama-3.1-8b-q4_k-v1.gguf"));
    assert!(memory.weights_bytes > 4_000_000_000);
}

#[test]
fn shards_split_the_plan_without_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(
        tmp.path(),
        &format!("{SMALL}[matrix]\nbatch = [1, 2, 3, 4, 5]\nprompt_tokens = [8, 16]\n"),
    );
    let mut seen = Vec::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let out = llamaperf()
            .arg("sweep")
            .arg(&file)
            .args(["--dry-run", "--json", "--shard", shard])
            .output()
            .unwrap();
        let plan: Plan = serde_json::from_slice(&out.stdout).unwrap();
        seen.extend(plan.selected().map(|r| r.id.clone()));
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (10, 10));
}

/// The pids of the worker processes among the children of `parent` (a sweep may also start
/// calibration children).
fn children(parent: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"worker"))
        })
        .collect()
}

fn spawn_sweep(file: &Path, out_dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_llamaperf"))
        .env("LLAMAPERF_CACHE", cache_dir())
        .env_remove(llamaperf::measure::worker::FAULT_ENV)
        .arg("sweep")
        .arg(file)
        .arg("--out")
        .arg(out_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_worker_killed_mid_run_fails_that_run_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(
        tmp.path(),
        "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 64\ngen_tokens = 400\nrepetitions = 20\n[matrix]\nbatch = [1, 2, 3]\n",
    );
    let out_dir = tmp.path().join("out");
    let sweep = spawn_sweep(&file, &out_dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(&w) = children(sweep.id()).first() {
            break w;
        }
        assert!(Instant::now() < deadline, "no worker appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = llamaperf_os::process::send_signal(victim, libc::SIGKILL);
    let out = sweep.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let recs = records(&out_dir);
    assert_eq!(recs.len(), 3, "every run has its record");
    let failed: Vec<&SweepRecord> = recs
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    let Outcome::Failed { reason, .. } = &failed[0].outcome else {
        unreachable!()
    };
    assert!(reason.contains("killed by signal 9 (SIGKILL"), "{reason}");
    assert!(stderr_of(&out).contains("1 of 3 runs failed"));
}

#[test]
fn a_hanging_worker_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), &format!("{SMALL}timeout_s = 2\n"));
    let out_dir = tmp.path().join("out");
    let out = llamaperf()
        .env(llamaperf::measure::worker::FAULT_ENV, "hang")
        .arg("sweep")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let rows = summary(&out_dir);
    assert_eq!(rows[0].status, "failed");
    assert!(
        rows[0].reason.starts_with("worker timed out after 2 s"),
        "{}",
        rows[0].reason
    );
}

#[test]
fn interrupted_then_resumed_ends_with_exactly_the_planned_records() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(
        tmp.path(),
        "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 32\ngen_tokens = 100\nrepetitions = 6\n[matrix]\nbatch = [1, 2, 3, 4, 5, 6]\n",
    );
    let out_dir = tmp.path().join("out");
    let sweep = spawn_sweep(&file, &out_dir);
    // Interrupt once the first run is recorded and the next worker runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(out_dir.join("runs.jsonl"))
        .map_or(true, |t| t.lines().count() < 1)
        || children(sweep.id()).is_empty()
    {
        assert!(Instant::now() < deadline, "the sweep made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = llamaperf_os::process::send_signal(sweep.id(), libc::SIGINT);
    let out = sweep.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(&format!(
        "continue with: llamaperf sweep --resume {}",
        out_dir.display()
    )));
    let before = records(&out_dir).len();
    assert!(
        (1..6).contains(&before),
        "{before} runs recorded before the interrupt"
    );
    assert!(
        ResultsDir::open(&out_dir).is_ok(),
        "what was recorded stays readable"
    );
    let resumed = llamaperf()
        .arg("sweep")
        .arg("--resume")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    let recs = records(&out_dir);
    let ids: std::collections::HashSet<String> = recs.iter().map(|r| r.run_id()).collect();
    assert_eq!(
        (recs.len(), ids.len()),
        (6, 6),
        "every planned run exactly once"
    );
    assert_eq!(summary(&out_dir).len(), 6);
}

#[test]
fn a_partial_last_line_is_dropped_on_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(tmp.path(), &format!("{SMALL}[matrix]\nbatch = [1, 2]\n"));
    let runs = out_dir.join("runs.jsonl");
    let text = std::fs::read_to_string(&runs).unwrap();
    let first_line_end = text.find('\n').unwrap() + 1;
    // The second record cut short, as by a crash in the middle of its write.
    std::fs::write(&runs, &text[..first_line_end + 100]).unwrap();
    let resumed = llamaperf()
        .arg("sweep")
        .arg("--resume")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    assert_eq!(records(&out_dir).len(), 2);
}

#[test]
fn two_instances_run_together_on_their_own_cores() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, out_dir) = sweep(tmp.path(), &format!("{SMALL}instances = 2\ncores = 2\n"));
    if llamaperf::machine::Machine::load(&llamaperf::machine::TopologySource::ThisMachine)
        .unwrap()
        .allowed_pus
        .len()
        < 2
    {
        return;
    }
    assert!(out.status.success(), "{}", stderr_of(&out));
    let recs = records(&out_dir);
    assert_eq!(recs.len(), 3, "two instances and their aggregate");
    let instance = |i: usize| match &recs[i].outcome {
        Outcome::Ok { record } => (&recs[i].spec, record.clone()),
        other => panic!("{other:?}"),
    };
    let (a, b) = (instance(0), instance(1));
    assert_ne!(a.0.placement.pus, b.0.placement.pus);
    for (spec, record) in [&a, &b] {
        let t = &record.binding;
        assert!(
            t.threads.iter().all(|t| t.cpus == spec.placement.pus),
            "{t:?}"
        );
    }
    let Outcome::Aggregate { aggregate } = &recs[2].outcome else {
        panic!()
    };
    let sum = a.1.summary.decode_tok_s.unwrap().mean + b.1.summary.decode_tok_s.unwrap().mean;
    assert!((aggregate.decode_tok_s.unwrap() - sum).abs() < 1e-6);
    assert_eq!(aggregate.tpot_ms.unwrap().samples, 2 * 2 * 5);
    assert!(
        aggregate.common_window_s > 0.0,
        "the start barrier made them overlap"
    );
    let rows = summary(&out_dir);
    assert_eq!(
        rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
        ["ok", "ok", "aggregate"]
    );
}

#[test]
fn a_sweep_whose_every_run_is_skipped_exits_2_and_keeps_the_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, out_dir) = sweep(tmp.path(), &format!("{SMALL}[matrix]\ncores = [100000]\n"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nothing measured: all 1 selected runs were skipped; see "),
        "{err}"
    );
    let rows = summary(&out_dir);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "skipped");
    assert!(rows[0].reason.starts_with("asks 100000 cores, "));
}
