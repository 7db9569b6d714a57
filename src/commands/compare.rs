//! `llamaperf compare BASE CANDIDATE`: the comparison on stdout, exit code 1 on a regression.

use crate::cli::{CompareArgs, CompareFormat};
use crate::error::{Context, Error};
use llamaperf::compare::{compare as compare_dirs, render, CompareOptions};
use llamaperf::results::ResultsDir;

/// Reads both folders, compares, prints, and fails on a regression.
pub fn compare(args: CompareArgs) -> crate::error::Result<()> {
    let options = CompareOptions::new(args.threshold, args.alpha)?;
    let base = ResultsDir::read(&args.base).context("reading the base")?;
    let candidate = ResultsDir::read(&args.candidate).context("reading the candidate")?;
    let comparison = compare_dirs(&base, &candidate, options)?;
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
    let summary = render::summary_line(&comparison);
    if comparison.regressed() {
        return Err(Error::Regressed(summary));
    }
    eprintln!("{summary}");
    Ok(())
}
