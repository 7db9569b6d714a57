//! Executing a plan: each run in its own pinned worker process (K of them, started together,
//! for K instances), recorded as it ends, stopped cleanly on SIGINT/SIGTERM.

use super::progress::Progress;
use super::worker::spawn_worker;
use crate::child::{ChildError, Limits};
use crate::machine::environment::hostname;
use crate::machine::InstancePlacement;
use crate::measure::record::RunRecord;
use crate::model::source::ResolvedModel;
use crate::model::{ModelCache, ModelRef};
use crate::planning::plan::{PlanStatus, RunPlan};
use crate::planning::spec::{Prompt, RunSpec};
use crate::results::record::Aggregate;
use crate::results::{Outcome, ResultsDir, ResultsError, SweepRecord};
use crate::schema::SCHEMA_VERSION;
use std::collections::HashMap;
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

fn spec_of(run: &RunPlan, model: &ResolvedModel, placement: &InstancePlacement) -> RunSpec {
    let c = &run.config;
    RunSpec {
        schema_version: SCHEMA_VERSION,
        model: model.clone(),
        engine: c.engine,
        batch: c.batch,
        prompt: Prompt::Synthetic {
            tokens: c.prompt_tokens,
        },
        gen_tokens: c.gen_tokens,
        placement: placement.clone(),
        warmup: c.warmup,
        repetitions: c.repetitions,
        seed: c.seed,
        counters: c.counters.clone(),
        start_barrier: c.instances > 1,
        read_probe: c.read_probe,
    }
}

/// Runs the K instances of one run: spawn all, wait until all are loaded, start all, collect.
fn measure(
    run: &RunPlan,
    model: &ResolvedModel,
    instances: &[InstancePlacement],
    interrupted: &AtomicBool,
) -> Result<Vec<RunRecord>, (usize, ChildError)> {
    let limits = Limits {
        deadline: Some((
            Instant::now() + Duration::from_secs(run.config.timeout_s),
            run.config.timeout_s,
        )),
        interrupted,
    };
    let mut workers = Vec::with_capacity(instances.len());
    for (i, placement) in instances.iter().enumerate() {
        workers.push(spawn_worker(&spec_of(run, model, placement)).map_err(|e| (i, e))?);
    }
    if instances.len() > 1 {
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

/// Executes every selected, planned run of `dir`'s plan not recorded yet.
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
    let mut models: HashMap<String, Result<ResolvedModel, String>> = HashMap::new();
    let (mut ok, mut failed) = (0, 0);
    for run in &todo {
        if interrupted.load(Ordering::SeqCst) {
            progress.close();
            return Ok(SweepEnd::Interrupted);
        }
        let PlanStatus::Planned { instances, .. } = &run.status else {
            continue;
        };
        progress.start(&run.id);
        let line = |instance, outcome| SweepRecord {
            schema_version: SCHEMA_VERSION,
            run_id: run.id.clone(),
            index: run.index,
            host: Some(host.clone()),
            config: run.config.clone(),
            instance,
            outcome,
        };
        let model = models
            .entry(format!("{} {:?}", run.config.model, run.config.dtype))
            .or_insert_with(|| {
                ModelRef::parse(&run.config.model, run.config.dtype)
                    .and_then(|m| m.resolve(cache))
                    .map(|(resolved, _)| resolved)
                    .map_err(|e| format!("model {}: {e}", run.config.model))
            })
            .clone();
        let lines = match model
            .map_err(|reason| (None, reason, Vec::new()))
            .and_then(|m| {
                measure(run, &m, instances, interrupted).map_err(|(i, e)| {
                    let who = if instances.len() > 1 { Some(i) } else { None };
                    (who, e.to_string(), e.stderr_tail().to_vec())
                })
            }) {
            Ok(records) if records.len() == 1 => {
                let record = records.into_iter().next().expect("one record");
                vec![line(
                    None,
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
                            Outcome::Ok {
                                record: Box::new(r),
                            },
                        )
                    })
                    .collect();
                lines.push(line(None, Outcome::Aggregate { aggregate }));
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
        progress.finish(&run.id, &describe(&lines));
        dir.record_run(lines)?;
    }
    progress.close();
    Ok(SweepEnd::Completed { ok, failed })
}
