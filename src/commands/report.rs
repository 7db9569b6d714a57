//! `llamaperf report`: results folders -> charts and `report.md`, or `report.html`.

use crate::cli::ReportArgs;
use llamaperf::report::{build, load_sets, write, Formats, ReportError};

/// Reads the folders, draws the charts, writes the report, prints its path on stdout.
pub fn report(args: ReportArgs) -> crate::error::Result<()> {
    let out = match (&args.out, args.dirs.as_slice()) {
        (Some(out), _) => out.clone(),
        (None, [dir]) => dir.clone(),
        (None, _) => return Err(ReportError::OutRequired.into()),
    };
    let sets = load_sets(&args.dirs, &args.label)?;
    for w in sets.iter().flat_map(|s| &s.warnings) {
        eprintln!("warning: {w}");
    }
    let report = build(&sets, &out, args.format, args.gain_base.as_deref())?;
    let path = write(&report, &out, args.format)?;
    let runs: usize = sets.iter().map(|s| s.rows.len()).sum();
    let charts_at = if args.format == Formats::Html {
        path.clone()
    } else {
        out.join(llamaperf::report::CHARTS_DIR)
    };
    eprintln!(
        "report of {} rows from {} results folder{}: {} charts ({}) in {}",
        runs,
        sets.len(),
        if sets.len() == 1 { "" } else { "s" },
        report.charts.len(),
        args.format,
        charts_at.display()
    );
    println!("{}", path.display());
    Ok(())
}
