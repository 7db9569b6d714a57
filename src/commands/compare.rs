//! `llamaperf compare BASE CANDIDATE` (or `--base DIR... --candidate DIR...`, or `DIR
//! --engine-base A --engine-candidate B` for two engines): the comparison on stdout, exit code
//! 1 on a regression (or, with --fail-on-inconclusive, an undecided metric). With
//! `--baseline-history N`, the one folder is the candidate, judged against the history database.

use crate::cli::{CompareArgs, CompareFormat};
use crate::error::{Context, Error};
use llamaperf::compare::history::compare_with_history;
use llamaperf::compare::{
    compare as compare_dirs, render, CompareError, CompareOptions, EnginePair,
};
use llamaperf::results::history::History;
use llamaperf::results::ResultsDir;
use std::path::PathBuf;

/// Reads every folder of a side, naming the side in an error.
fn read_side(dirs: &[PathBuf], side: &str) -> crate::error::Result<Vec<ResultsDir>> {
    dirs.iter()
        .map(|dir| {
            let read = ResultsDir::read(dir).with_context(|| format!("reading the {side}"))?;
            for w in read.warnings() {
                eprintln!("warning: {w}");
            }
            Ok(read)
        })
        .collect()
}

/// Reads the folders of both sides, compares, prints, and fails the gate.
pub fn compare(args: CompareArgs) -> crate::error::Result<()> {
    let options = CompareOptions::new(args.threshold, args.alpha, args.fail_on_inconclusive)?;
    let (base_dirs, mut candidate_dirs) = args.sides();
    let engines = match (args.engine_base, args.engine_candidate) {
        (Some(base), Some(candidate)) => Some(EnginePair { base, candidate }),
        _ => None,
    };
    if candidate_dirs.is_empty() && args.baseline_history.is_none() {
        if engines.is_none() {
            return Err(CompareError::NoCandidate.into());
        }
        candidate_dirs = base_dirs.clone();
    }
    let first_side = if args.baseline_history.is_some() {
        "candidate"
    } else {
        "base"
    };
    let base = read_side(&base_dirs, first_side)?;
    let candidate = read_side(&candidate_dirs, "candidate")?;
    let comparison = match args.baseline_history {
        Some(n) => {
            let db = args.db.map_or_else(History::default_path, Ok)?;
            compare_with_history(&History::open(&db, false)?, &base[0], n as usize, options)?
        }
        None => compare_dirs(&base, &candidate, options, engines.as_ref())?,
    };
    print!(
        "{}",
        match args.format {
            CompareFormat::Md => render::markdown(&comparison),
            CompareFormat::Json => render::json(&comparison),
            CompareFormat::Csv => render::csv(&comparison),
        }
    );
    if let Some(w) = render::machine_warning(&comparison) {
        eprintln!("warning: {w}");
    }
    for note in &comparison.notes {
        eprintln!("note: {note}");
    }
    let summary = render::summary_line(&comparison);
    if comparison.fails() {
        return Err(Error::GateFailed(summary));
    }
    eprintln!("{summary}");
    Ok(())
}
