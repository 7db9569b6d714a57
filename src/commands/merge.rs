//! `llamaperf merge`: results folders of one scenario -> one folder, every run once.

use crate::cli::MergeArgs;
use crate::error::Error;
use llamaperf::results::merge::merge as merge_dirs;
use llamaperf::results::Outcome;

/// Merges the folders and reports what is missing.
pub fn merge(args: MergeArgs) -> crate::error::Result<()> {
    let merged = merge_dirs(&args.dirs, &args.out, args.coverage)?;
    for w in &merged.warnings {
        eprintln!("warning: {w}");
    }
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
        return Err(Error::Incomplete {
            missing: merged.problems.len(),
            dir: shown,
        });
    }
    println!("{shown}");
    Ok(())
}
