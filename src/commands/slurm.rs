//! `llamaperf slurm`: a scenario -> an sbatch script of a job array of shards -> sbatch.

use super::sweep::default_out;
use crate::cli::SlurmArgs;
use crate::error::{Context, Error};
use llamaperf::scenario::{expand, Scenario, DEFAULT_MAX_RUNS};
use llamaperf::sweep::slurm::ArrayJob;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first executable `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn absolute(path: &Path) -> crate::error::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("making {} absolute", path.display()))
}

/// Writes the job array's script (or prints it with --dry-run) and submits it with --submit.
pub fn slurm(args: SlurmArgs) -> crate::error::Result<()> {
    let scenario = Scenario::load(&args.scenario)?;
    let runs = expand(&scenario, args.max_runs.unwrap_or(DEFAULT_MAX_RUNS))?.len();
    let llamaperf = match &args.llamaperf {
        Some(p) => absolute(p)?,
        None => std::env::current_exe().context("finding this llamaperf binary")?,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&format!("{}-slurm", scenario.name)));
    let job = ArrayJob {
        llamaperf,
        scenario: absolute(&args.scenario)?,
        name: scenario.name.clone(),
        shards: args.shards,
        out: absolute(&out)?,
        partition: args.partition,
        nodelist: args.nodelist,
        constraint: args.constraint,
        time: args.time,
        max_runs: args.max_runs,
    };
    job.validate(runs)?;
    let script = job.render();
    if args.dry_run {
        print!("{script}");
        return Ok(());
    }
    let path = job.script_path();
    let shown = path.display().to_string();
    let sbatch = if args.submit {
        Some(on_path("sbatch").ok_or_else(|| Error::SbatchMissing {
            script: shown.clone(),
        })?)
    } else {
        None
    };
    std::fs::create_dir_all(&job.out).with_context(|| format!("creating {}", job.out.display()))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(&job.out).with_context(|| format!("writing {shown}"))?;
    tmp.write_all(script.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {shown}"))?;
    tmp.persist(&path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {shown}"))?;
    let merge_hint = format!(
        "when it is done: llamaperf merge {}/*/ --out {}-merged",
        job.out.display(),
        job.out.display()
    );
    let Some(sbatch) = sbatch else {
        eprintln!(
            "wrote {shown}: {} tasks; submit it with: sbatch {shown}\n{merge_hint}",
            job.shards
        );
        println!("{shown}");
        return Ok(());
    };
    let output = Command::new(&sbatch)
        .arg("--parsable")
        .arg(&path)
        .output()
        .with_context(|| format!("running {}", sbatch.display()))?;
    if !output.status.success() {
        return Err(Error::SbatchFailed {
            script: shown,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let id = stdout.trim().split(';').next().unwrap_or_default();
    eprintln!(
        "submitted job array {id} ({} tasks, script {shown}); results in {}/<host>-<task>\n{merge_hint}",
        job.shards,
        job.out.display()
    );
    println!("{id}");
    Ok(())
}
