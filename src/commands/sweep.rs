//! `llamaperf sweep`: scenario -> plan -> pinned runs -> results folder.

use crate::cli::SweepArgs;
use crate::error::{Context, Error};
use llamaperf::calibrate::{
    calibrate, complete_compute, default_buffer_bytes, usable_cores, Calibration, CalibrationError,
};
use llamaperf::counters::rapl::{self, EnergyMeter};
use llamaperf::interrupt;
use llamaperf::machine::cpulist::format_list;
use llamaperf::machine::environment::MachineInfo;
use llamaperf::machine::quiet;
use llamaperf::machine::{Machine, MachineError};
use llamaperf::model::ModelCache;
use llamaperf::model::WeightDtype;
use llamaperf::planning::plan::{plan, Plan, PlanStatus};
use llamaperf::results::ResultsDir;
use llamaperf::scenario::{expand, Scenario};
use llamaperf::sweep::runner::{run_sweep, SweepEnd};
use std::path::{Path, PathBuf};

/// Plans, then executes or shows the plan.
pub fn sweep(args: SweepArgs) -> crate::error::Result<()> {
    interrupt::install().context("installing the signal handler")?;
    let mut dir = match &args.resume {
        Some(path) => {
            let dir = ResultsDir::open(path)?;
            for w in dir.warnings() {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "resuming {}: {} runs already recorded",
                path.display(),
                dir.completed().len()
            );
            let done = dir.completed();
            ModelCache::from_env()?.check_space(dir.plan().planned().filter_map(
                |r| match &r.status {
                    PlanStatus::Planned { specs, .. } if !done.contains(&r.id) => {
                        Some(&specs[0].model)
                    }
                    _ => None,
                },
            ))?;
            dir
        }
        None => {
            let path = args
                .scenario
                .as_deref()
                .expect("clap requires a scenario without --resume");
            let scenario = Scenario::load(path)?;
            let machine = args.topology.machine()?;
            let cache = ModelCache::from_env()?;
            let plan = plan(
                &scenario.name,
                expand(&scenario, args.max_runs)?,
                &machine,
                &cache,
                args.shard,
            )?;
            if args.dry_run {
                // a dry run starts no child: it only prints
                llamaperf_os::process::die_on_closed_pipe();
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&plan)?);
                } else {
                    print!("{}", render_plan(&plan));
                }
                return Ok(());
            }
            if !machine.this_system {
                return Err(MachineError::OtherMachine {
                    topology: machine.source,
                    placement: "the plan shown by --dry-run".into(),
                }
                .into());
            }
            cache.check_space(plan.planned().filter_map(|r| match &r.status {
                PlanStatus::Planned { specs, .. } => Some(&specs[0].model),
                PlanStatus::Skipped { .. } => None,
            }))?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| default_out(&scenario.name));
            let info = MachineInfo::capture(&machine);
            let mut cpus: Vec<usize> = plan
                .planned()
                .flat_map(|r| r.status.placements())
                .flat_map(|p| p.pus.iter().copied())
                .collect();
            cpus.sort_unstable();
            cpus.dedup();
            for warning in quiet::warnings(&info, &cpus) {
                eprintln!("warning: {warning}");
            }
            let (powercap, cpu_sysfs) = (rapl::root(), Path::new(rapl::CPU_SYSFS));
            let energy = (!cpus.is_empty()).then(|| EnergyMeter::open(&powercap, cpu_sysfs, &cpus));
            if let Some(Err(reason)) = energy {
                eprintln!("warning: energy not measured: {reason}; the energy columns stay empty");
            }
            let calibration = match plan.planned().next() {
                Some(_) => Some(calibration_for(&machine, &plan)?),
                None => None,
            };
            let dir = ResultsDir::create(&out, &scenario.text, &info, &plan, calibration.as_ref())?;
            eprintln!(
                "{}: {} runs planned, results in {}",
                scenario.name,
                plan.selected().count(),
                out.display()
            );
            dir
        }
    };
    let cache = ModelCache::from_env()?;
    let end = run_sweep(&mut dir, &cache, interrupt::flag());
    let shown = dir.path().display().to_string();
    let planned = dir.plan().planned().count();
    match end.map_err(|e| Error::Unfinished {
        cause: Box::new(e.into()),
        recorded: dir.completed().len(),
        total: planned,
        dir: shown.clone(),
    })? {
        SweepEnd::Interrupted => Err(Error::Interrupted {
            recorded: dir.completed().len(),
            total: planned,
            dir: shown,
        }),
        SweepEnd::Completed { failed, .. } if failed > 0 => Err(Error::RunsFailed {
            failed,
            total: planned,
            dir: shown,
        }),
        // every selected run skipped (a shard that selects none has nothing to measure)
        SweepEnd::Completed { .. } if planned == 0 && dir.plan().selected().count() > 0 => {
            Err(Error::NothingMeasured {
                skipped: dir.plan().selected().count(),
                dir: shown,
            })
        }
        SweepEnd::Completed { ok, .. } => {
            let skipped = dir.plan().selected().count() - planned;
            eprintln!("done: {ok} runs measured, {skipped} skipped; results in {shown}");
            llamaperf_os::process::die_on_closed_pipe();
            println!("{shown}");
            Ok(())
        }
    }
}

/// The machine's latest calibration, or a quick one (all cores, the plan's data types). While
/// another process calibrates the machine, waits for its calibration.
fn calibration_for(machine: &Machine, plan: &Plan) -> crate::error::Result<Calibration> {
    let cache = ModelCache::from_env()?;
    let mut dtypes: Vec<WeightDtype> = plan.runs.iter().filter_map(|r| r.config.dtype).collect();
    dtypes.sort_by_key(|d| d.name());
    dtypes.dedup();
    let covers = |c: &Calibration| {
        let measured = |d: &WeightDtype| {
            c.compute
                .iter()
                .any(|p| p.results.iter().any(|r| r.dtype == *d))
        };
        dtypes.iter().all(measured)
    };
    if let Some(c) = Calibration::latest(&cache, machine).filter(covers) {
        return Ok(c);
    }
    let mut told = false;
    let _lock = loop {
        match Calibration::lock(&cache, machine) {
            Ok(lock) => break lock,
            Err(CalibrationError::Locked { holder }) => {
                if !told {
                    eprintln!("waiting for {holder}, which calibrates this machine");
                    told = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let progress = &mut |step: &str| eprintln!("calibrating: {step}");
    if let Some(mut c) = Calibration::latest(&cache, machine) {
        if complete_compute(&mut c, machine, &dtypes, progress)? {
            c.save(&cache)?;
        }
        return Ok(c);
    }
    let cores = usable_cores(machine);
    eprintln!("no calibration of this machine yet: a quick one on all {cores} cores (llamaperf calibrate measures 1..N)");
    let c = calibrate(
        machine,
        &[cores],
        &dtypes,
        default_buffer_bytes(machine, cores),
        progress,
    )?;
    c.save(&cache)?;
    Ok(c)
}

/// `results/<name>-<UTC timestamp>`.
pub(crate) fn default_out(name: &str) -> PathBuf {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("constant format");
    Path::new("results").join(format!("{name}-{stamp}"))
}

/// The plan as a table: one line per run with its placement, memory estimate or skip reason.
fn render_plan(plan: &Plan) -> String {
    let selected: Vec<_> = plan.selected().collect();
    let planned = plan.planned().count();
    let mut out = format!(
        "{}: {} runs on {} ({} planned, {} skipped){}\n",
        plan.scenario,
        selected.len(),
        plan.machine,
        planned,
        selected.len() - planned,
        plan.shard.map_or(String::new(), |s| format!(
            ", shard {s} of {} runs",
            plan.runs.len()
        ))
    );
    for run in selected {
        match &run.status {
            PlanStatus::Planned { memory, .. } => {
                let instances: Vec<_> = run.status.placements().collect();
                let first = instances[0];
                out.push_str(&format!(
                    "{:>4}  planned  {}\n        {} x {} threads on cpus {}{}, memory {} on nodes {}, est. {:.2} GB each\n",
                    run.index,
                    run.id,
                    instances.len(),
                    first.pus.len(),
                    format_list(&first.pus),
                    if instances.len() > 1 { " (first instance)" } else { "" },
                    first.memory.mode,
                    format_list(&first.memory.nodes),
                    memory.total_bytes() as f64 / 1e9
                ));
            }
            PlanStatus::Skipped { reason } => {
                out.push_str(&format!(
                    "{:>4}  skipped  {}\n        {reason}\n",
                    run.index, run.id
                ));
            }
        }
    }
    out
}
