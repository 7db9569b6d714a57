//! The history database: results folders stored over time in one SQLite file, so that a
//! metric can be followed across commits (`history trend`) and a candidate judged against the
//! last N results of the same runs on the same machine (`compare --baseline-history N`).
//! The file, its tables and rules are described in docs/history.md.
//!
//! ```text
//! machines  one per machine identity (CPU model, cores, memory in GiB, kernel)
//! folders   one per results folder ingested: path, label (commit), start time
//! runs      one per line of runs.jsonl: machine, host, run id, instance, status, and the
//!           SHA-256 of the line, unique, which makes ingesting idempotent
//! axes, metrics, samples   a run's axis values, its summary.csv metrics, and the
//!           per-repetition values of the metrics that have them
//! ```
//!
//! Several processes may ingest at once: the file is in WAL mode, writers wait for each other
//! (busy timeout), and each folder is stored in one transaction.

pub mod identity;
pub mod ingest;
pub mod query;
pub mod schema;

use crate::model::{ModelCache, ModelError};
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use schema::{APPLICATION_ID, LATEST, MIGRATIONS};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name of the default database, in the cache folder.
pub const DEFAULT_FILE: &str = "history.sqlite";

/// How long a process waits for another that holds the database's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// What can go wrong with the history database.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// There is no database at the path (reading commands do not create one).
    #[error("{0}: no history database here: store results first with llamaperf history ingest DIR (and the same --db)")]
    Missing(PathBuf),
    /// The file is not SQLite at all.
    #[error("{path}: not a llamaperf history database (not an SQLite file: {reason}); it was left as it is: give another --db, or move the file away")]
    NotSqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        reason: String,
    },
    /// The file is an SQLite database of something else.
    #[error("{path}: not a llamaperf history database (an SQLite file with application_id {application_id:#x} and {tables} tables, expected application_id {APPLICATION_ID:#x}); it was left as it is: give another --db, or move the file away")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        application_id: i32,
        /// How many tables, indexes and views it has.
        tables: i64,
    },
    /// The database was written by a newer llamaperf.
    #[error("{path}: history schema version {found}, but this llamaperf knows versions up to {reads}: use a newer llamaperf (the file was left as it is)")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its `PRAGMA user_version`.
        found: u32,
        /// The latest version this build knows.
        reads: u32,
    },
    /// SQLite failed on the file (corrupt, unreadable, full disk).
    #[error("{path}: {source}")]
    Sql {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The folder for the database cannot be made.
    #[error("{path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No cache folder to hold the default database.
    #[error("no cache folder for the history database: {0}; give --db PATH")]
    NoCache(#[from] ModelError),
    /// A results folder cannot be read.
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
    /// `--label` given, but not once per folder.
    #[error("{labels} --label values for {dirs} results folders: give one label per folder, in the same order")]
    Labels {
        /// Labels given.
        labels: usize,
        /// Folders given.
        dirs: usize,
    },
    /// A metric name the catalogue does not have.
    #[error("--metric {0}: no such metric; the metrics are the columns of summary.csv (docs/metrics.md), e.g. decode_tok_s, prefill_tok_s, ttft_ms, tpot_p50_ms")]
    UnknownMetric(String),
    /// A `--where` condition that is not `axis=value`.
    #[error(
        "--where {condition}: {reason}; give axis=value pairs separated by commas, axes: {axes}"
    )]
    BadWhere {
        /// The condition as given.
        condition: String,
        /// What is wrong with it.
        reason: String,
        /// The axes allowed.
        axes: String,
    },
    /// The candidate's runs have no stored result to compare with.
    #[error("{db} holds no result of {candidate}'s runs on its machine ({machine}): ingest earlier results of the same scenario on this machine first")]
    NoBaseline {
        /// The database.
        db: PathBuf,
        /// The candidate folder.
        candidate: PathBuf,
        /// The candidate's machine.
        machine: String,
    },
}

impl HistoryError {
    /// Whether the error is the user's input (a file, a name, a value) rather than a failure.
    pub fn is_input_error(&self) -> bool {
        match self {
            HistoryError::Sql { .. } | HistoryError::Io { .. } => false,
            HistoryError::Results(e) => e.is_input_error(),
            _ => true,
        }
    }
}

/// An SQLite error on `path`, a foreign or corrupt file named as such.
pub(crate) fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
    move |source| match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => HistoryError::NotSqlite {
            path: path.to_path_buf(),
            reason: source.to_string(),
        },
        _ => HistoryError::Sql {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// An open history database, at the current schema version.
pub struct History {
    conn: Connection,
    path: PathBuf,
}

impl History {
    /// The default database: `history.sqlite` in the cache folder (`$LLAMAPERF_CACHE`, else
    /// `~/.cache/llamaperf`), beside the synthetic models.
    pub fn default_path() -> Result<PathBuf, HistoryError> {
        Ok(ModelCache::from_env()?.root().join(DEFAULT_FILE))
    }

    /// Opens the database at `path`, creating it (and its folder) when `create` and it does not
    /// exist, and brings its schema to the latest version. A file that is not a llamaperf
    /// history database, or is of a newer version, is refused before anything is written.
    pub fn open(path: &Path, create: bool) -> Result<Self, HistoryError> {
        if !create && !path.exists() {
            return Err(HistoryError::Missing(path.to_path_buf()));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| HistoryError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let flags = if create {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let err = sql(path);
        let mut conn = Connection::open_with_flags(path, flags).map_err(&err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
        // Switching a new file to WAL while another process opens it returns SQLITE_BUSY
        // without calling the busy handler: the whole set-up is tried again until the timeout.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            match set_up(&mut conn, path) {
                Err(HistoryError::Sql { source, .. })
                    if source.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                result => break result?,
            }
        }
        Ok(History {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks the file is ours, turns on WAL and foreign keys, and migrates it.
fn set_up(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let err = sql(path);
    // one read transaction, so that the three reads see one state of a file that another
    // process may be migrating
    let reads = conn.transaction().map_err(&err)?;
    check(&reads, path)?;
    reads.commit().map_err(&err)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .map_err(&err)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(&err)?;
    migrate(conn, path)
}

/// Refuses a file that is not ours (another application's SQLite database, or not SQLite) or
/// is of a newer schema; an empty database (a new file) passes.
fn check(conn: &Connection, path: &Path) -> Result<(), HistoryError> {
    let err = sql(path);
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(&err)?;
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(&err)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(&err)?;
    let empty = application_id == 0 && version == 0 && tables == 0;
    if application_id != APPLICATION_ID && !empty {
        return Err(HistoryError::Foreign {
            path: path.to_path_buf(),
            application_id,
            tables,
        });
    }
    if version > LATEST {
        return Err(HistoryError::TooNew {
            path: path.to_path_buf(),
            found: version,
            reads: LATEST,
        });
    }
    Ok(())
}

/// Applies the missing migrations in one transaction that holds the write lock, so that two
/// processes opening a new file migrate it once.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), HistoryError> {
    let err = sql(path);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    check(&tx, path)?;
    let version: u32 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(&err)?;
    if version < LATEST {
        for step in &MIGRATIONS[version as usize..] {
            tx.execute_batch(step).map_err(&err)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(&err)?;
        tx.pragma_update(None, "user_version", LATEST)
            .map_err(&err)?;
    }
    tx.commit().map_err(&err)
}
