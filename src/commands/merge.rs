//! `llamaperf merge`: results folders of one scenario -> one folder, every run once.

use crate::cli::MergeArgs;
use llamaperf::results::merge::merge as merge_dirs;
use llamaperf::results::Outcome;

/// Some planned runs are in no input (exit code 1); the merged folder holds the rest.
#[derive(Debug, thiserror::Error)]
#[error("{missing} planned run{} missing (listed above); the merged folder {dir} holds the rest", if *.missing == 1 { " is" } else { "s are" })]
struct Incomplete {
    missing: usize,
    dir: String,
}

/// Merges the folders and reports what is missing.
pub fn merge(args: MergeArgs) -> anyhow::Result<()> {
    let merged = merge_dirs(&args.dirs, &args.out, args.coverage)?;
    let dir = &merged.dir;
    let shown = dir.path().display().to_string();
    let hosts: Vec<&str> = dir.hosts().iter().map(|h| h.host.as_str()).collect();
    let completed: Vec<_> = dir.records().iter().filter(|r| r.completes_run()).collect();
    let failed = completed
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
        .count();
    eprintln!(
        "merged {} folders of {} host{} ({}): {} runs recorded ({failed} failed) into {shown}",
        args.dirs.len(),
        hosts.len(),
        if hosts.len() == 1 { "" } else { "s" },
        hosts.join(", "),
        completed.len(),
    );
    if !merged.problems.is_empty() {
        for p in &merged.problems {
            eprintln!("  {p}");
        }
        return Err(Incomplete {
            missing: merged.problems.len(),
            dir: shown,
        }
        .into());
    }
    println!("{shown}");
    Ok(())
}
