//! Executing a plan: each run in its own pinned worker process (K of them, started together,
//! for K instances), recorded as it ends, stopped cleanly on SIGINT/SIGTERM.

use super::progress::Progress;
use super::worker::spawn_worker;
use crate::child::{ChildError, Limits};
use crate::counters::energy::mark_sharing;
use crate::engine::EngineKind;
use crate::machine::environment::hostname;
use crate::measure::record::RunRecord;
use crate::model::ModelCache;
use crate::planning::plan::{PlanStatus, RunPlan};
use crate::planning::spec::RunSpec;
use crate::results::record::Aggregate;
use crate::results::{Outcome, ResultsDir, ResultsError, SweepRecord};
use crate::schema::RUNS_VERSION;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepEnd {
    /// Every selected run is recorded.
    Completed {
        /// Runs measured.
        ok: usize,
        /// Runs that failed.
        failed: usize,
    },
    /// Stopped by SIGINT/SIGTERM; the run in progress was dropped, the rest stays recorded.
    Interrupted,
}

/// Why the second attempt of a llama.cpp run leaves out the AMX variants.
pub const SIGILL_WITH_AMX: &str =
    "the run's first attempt died by SIGILL (llama.cpp's AMX kernels, where the probe passed)";

/// Runs the K instances of one run from their specs: spawn all, wait until all are loaded,
/// start all, collect; the whole run is stopped at `limits`. A llama.cpp run whose worker dies
/// by SIGILL is measured once more without llama.cpp's AMX variants (some virtual machines list
/// AMX and pass its probe, yet its kernels die), unless its CPU variant is named by hand; the
/// record's `llama_cpp.amx` then says why. Instances that counted the energy of one package
/// share it ([`mark_sharing`]).
pub fn measure(specs: &[RunSpec], limits: Limits) -> Result<Vec<RunRecord>, (usize, ChildError)> {
    let mut records = measure_with_amx_retry(specs, limits)?;
    let mut energies: Vec<&mut Vec<_>> = records.iter_mut().map(|r| &mut r.energy).collect();
    mark_sharing(&mut energies);
    Ok(records)
}

fn measure_with_amx_retry(
    specs: &[RunSpec],
    limits: Limits,
) -> Result<Vec<RunRecord>, (usize, ChildError)> {
    match measure_once(specs, limits) {
        Err((_, ChildError::Failed { signal, .. }))
            if signal == Some(libc::SIGILL) && may_leave_out_amx(specs) =>
        {
            let without_amx: Vec<RunSpec> = specs
                .iter()
                .map(|s| RunSpec {
                    amx_refused: Some(SIGILL_WITH_AMX.to_string()),
                    ..s.clone()
                })
                .collect();
            measure_once(&without_amx, limits)
        }
        other => other,
    }
}

fn may_leave_out_amx(specs: &[RunSpec]) -> bool {
    specs
        .iter()
        .all(|s| s.config.engine == EngineKind::LlamaCpp && s.amx_refused.is_none())
        && std::env::var_os(crate::llama_cpp::cpu_variant::VARIANT_ENV).is_none()
}

fn measure_once(specs: &[RunSpec], limits: Limits) -> Result<Vec<RunRecord>, (usize, ChildError)> {
    let mut workers = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        workers.push(spawn_worker(spec).map_err(|e| (i, e))?);
    }
    if specs.len() > 1 {
        for (i, w) in workers.iter_mut().enumerate() {
            w.wait_ready(limits).map_err(|e| (i, e))?;
        }
        for w in workers.iter_mut() {
            w.start();
        }
    }
    workers
        .iter_mut()
        .enumerate()
        .map(|(i, w)| w.finish(limits).map_err(|e| (i, e)))
        .collect()
}

fn describe(records: &[SweepRecord]) -> String {
    match records.last().map(|r| &r.outcome) {
        Some(Outcome::Ok { record }) => format!(
            "ok, prefill {:.1} tok/s, decode {}",
            record.summary.prefill_tok_s.mean,
            record
                .summary
                .decode_tok_s
                .map_or("-".into(), |d| format!("{:.2} tok/s", d.mean))
        ),
        Some(Outcome::Aggregate { aggregate }) => format!(
            "ok, {} instances, decode {} total",
            aggregate.instances,
            aggregate
                .decode_tok_s
                .map_or("-".into(), |d| format!("{d:.2} tok/s"))
        ),
        Some(Outcome::Failed { reason, .. }) => {
            format!("FAILED: {}", reason.lines().next().unwrap_or(""))
        }
        None => String::new(),
    }
}

/// Executes every selected, planned run of `dir`'s plan not recorded yet; synthetic models
/// missing from `cache` are written before their first run.
pub fn run_sweep(
    dir: &mut ResultsDir,
    cache: &ModelCache,
    interrupted: &AtomicBool,
) -> Result<SweepEnd, ResultsError> {
    let done = dir.completed();
    let todo: Vec<RunPlan> = dir
        .plan()
        .planned()
        .filter(|r| !done.contains(&r.id))
        .cloned()
        .collect();
    let total = dir.plan().planned().count();
    let host = hostname();
    let mut progress = Progress::new(total, total - todo.len());
    let mut models: HashMap<PathBuf, Result<(), String>> = HashMap::new();
    let (mut ok, mut failed) = (0, 0);
    for run in &todo {
        if interrupted.load(Ordering::SeqCst) {
            progress.close();
            return Ok(SweepEnd::Interrupted);
        }
        let PlanStatus::Planned { specs, .. } = &run.status else {
            continue;
        };
        progress.start(&run.id);
        // a line about `instance` (None: the run as a whole), with the spec of instance `of`
        let line = |instance: Option<usize>, of: usize, outcome| SweepRecord {
            schema_version: RUNS_VERSION,
            index: run.index,
            host: Some(host.clone()),
            instance,
            spec: specs[of].clone(),
            outcome,
        };
        let model = &specs[0].model;
        let ready = models
            .entry(model.path.clone())
            .or_insert_with(|| {
                cache
                    .materialize(model, interrupted)
                    .map(|_| ())
                    .map_err(|e| format!("model {}: {e}", model.name))
            })
            .clone();
        if ready.is_err() && interrupted.load(Ordering::SeqCst) {
            progress.close();
            return Ok(SweepEnd::Interrupted);
        }
        let limits = Limits {
            deadline: Some((
                Instant::now() + Duration::from_secs(run.config.timeout_s),
                run.config.timeout_s,
            )),
            interrupted,
        };
        let lines = match ready
            .map_err(|reason| (None, reason, Vec::new()))
            .and_then(|()| {
                measure(specs, limits).map_err(|(i, e)| {
                    let who = if specs.len() > 1 { Some(i) } else { None };
                    (who, e.to_string(), e.stderr_tail().to_vec())
                })
            }) {
            Ok(records) if records.len() == 1 => {
                let record = records.into_iter().next().expect("one record");
                vec![line(
                    None,
                    0,
                    Outcome::Ok {
                        record: Box::new(record),
                    },
                )]
            }
            Ok(records) => {
                let aggregate = Aggregate::of(&records);
                let mut lines: Vec<SweepRecord> = records
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| {
                        line(
                            Some(i),
                            i,
                            Outcome::Ok {
                                record: Box::new(r),
                            },
                        )
                    })
                    .collect();
                lines.push(line(None, 0, Outcome::Aggregate { aggregate }));
                lines
            }
            Err(_) if interrupted.load(Ordering::SeqCst) => {
                progress.close();
                return Ok(SweepEnd::Interrupted);
            }
            Err((who, reason, stderr_tail)) => {
                let reason = match who {
                    Some(i) => format!("instance {i}: {reason}"),
                    None => reason,
                };
                vec![line(
                    None,
                    who.unwrap_or(0),
                    Outcome::Failed {
                        reason,
                        stderr_tail,
                    },
                )]
            }
        };
        if matches!(
            lines.last().map(|l| &l.outcome),
            Some(Outcome::Failed { .. })
        ) {
            failed += 1;
        } else {
            ok += 1;
        }
        let described = describe(&lines);
        dir.record_run(lines)?;
        progress.finish(&run.id, &described);
    }
    progress.close();
    Ok(SweepEnd::Completed { ok, failed })
}
