//! `llamaperf history ingest|list|trend`: results folders into the history database, what it
//! holds, and a metric over commits (docs/history.md).

use crate::cli::{
    HistoryCommand, HistoryDbArg, HistoryIngestArgs, HistoryListArgs, HistoryTrendArgs,
};
use crate::error::Context;
use llamaperf::report::trend::{chart, table, trend, write_chart};
use llamaperf::results::history::query::{parse_where, Filter, Listing};
use llamaperf::results::history::{History, HistoryError};
use llamaperf::results::metrics::find;
use llamaperf::results::ResultsDir;
use std::path::PathBuf;

/// Runs a history subcommand.
pub fn history(cmd: HistoryCommand) -> crate::error::Result<()> {
    match cmd {
        HistoryCommand::Ingest(args) => ingest(args),
        HistoryCommand::List(args) => list(args),
        HistoryCommand::Trend(args) => trend_of(args),
    }
}

/// The database `--db` names, or the default one.
pub fn db_path(arg: &HistoryDbArg) -> Result<PathBuf, HistoryError> {
    arg.db.clone().map_or_else(History::default_path, Ok)
}

fn ingest(args: HistoryIngestArgs) -> crate::error::Result<()> {
    let path = db_path(&args.db)?;
    let dirs = args
        .dirs
        .iter()
        .map(|d| ResultsDir::read(d).with_context(|| format!("reading {}", d.display())))
        .collect::<crate::error::Result<Vec<_>>>()?;
    let mut db = History::open(&path, true)?;
    let done = db.ingest_all(&dirs, &args.label)?;
    for d in &done {
        if d.stored == 0 {
            eprintln!(
                "{}: already stored ({} lines, label {}), nothing added",
                d.path.display(),
                d.known,
                d.label
            );
        } else {
            eprintln!(
                "{}: stored {} lines as {}{}",
                d.path.display(),
                d.stored,
                d.label,
                if d.known > 0 {
                    format!(" ({} stored before)", d.known)
                } else {
                    String::new()
                }
            );
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    }
    eprintln!("history: {}", path.display());
    Ok(())
}

/// The listing as text: machines, then per machine its folders.
fn listing_text(l: &Listing) -> String {
    let mut out = format!("{} (schema version {})\n", l.db.display(), l.schema_version);
    for m in &l.machines {
        out.push_str(&format!(
            "\nmachine {}: {} (hosts: {})\n",
            m.id,
            m.identity,
            m.hosts.join(", ")
        ));
        out.push_str("  folder  label         started (UTC)        runs  failed  path\n");
        for f in l.folders.iter().filter(|f| f.machine == m.id) {
            out.push_str(&format!(
                "  {:>6}  {:<12}  {:<19}  {:>4}  {:>6}  {}\n",
                f.id,
                f.label,
                utc(f.started_unix_s),
                f.runs,
                f.failed,
                f.path
            ));
        }
    }
    out
}

fn utc(unix_s: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn list(args: HistoryListArgs) -> crate::error::Result<()> {
    let db = History::open(&db_path(&args.db)?, false)?;
    let listing = db.list()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", listing_text(&listing));
    }
    Ok(())
}

fn trend_of(args: HistoryTrendArgs) -> crate::error::Result<()> {
    let metric =
        find(&args.metric).ok_or_else(|| HistoryError::UnknownMetric(args.metric.clone()))?;
    let filter = Filter {
        metric,
        conditions: parse_where(args.conditions.as_deref().unwrap_or(""))?,
        machine: args.machine,
    };
    let db = History::open(&db_path(&args.db)?, false)?;
    let values = db.values(&filter)?;
    let t = trend(&values, metric, args.by);
    if t.series.is_empty() {
        eprintln!(
            "{}: no stored value of {} matches",
            db.path().display(),
            metric.name
        );
        return Ok(());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        print!("{}", table(&t, &db.list()?.machines));
    }
    let path = args
        .chart
        .unwrap_or_else(|| PathBuf::from(format!("trend-{}.png", metric.name)));
    write_chart(&chart(&t), &path)?;
    eprintln!("chart: {}", path.display());
    Ok(())
}
