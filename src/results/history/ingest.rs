//! Storing a results folder in the history. Each line of `runs.jsonl` is a run, identified by
//! the SHA-256 of the line as serialized: a line stored before is not stored again, so
//! ingesting a folder twice (or from another path) stores it once, and ingesting it again
//! after `sweep --resume` added runs stores the new runs in the same folder.

use super::identity::{machines_of, MachineIdentity};
use super::{sql, History, HistoryError};
use crate::calibrate::Calibration;
use crate::machine::environment::MachineInfo;
use crate::results::metrics::catalogue;
use crate::results::summary::row_of;
use crate::results::{Outcome, ResultsDir, SweepRecord};
use crate::scenario::Key;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// What ingesting one folder did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ingested {
    /// The folder.
    pub path: PathBuf,
    /// The label its results are shown under (a commit, or `--label`).
    pub label: String,
    /// Its id in the database.
    pub folder: i64,
    /// Lines of `runs.jsonl` stored now.
    pub stored: usize,
    /// Lines that were stored before (the folder, or part of it, was ingested already).
    pub known: usize,
}

/// The identity of one line of `runs.jsonl`: the SHA-256 of its serialization, in hex.
pub fn line_hash(line: &SweepRecord) -> String {
    let bytes = serde_json::to_vec(line).expect("records serialize");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The label of a folder without `--label`: the commit of the llamaperf that measured it,
/// else its version.
fn default_label(info: &MachineInfo) -> String {
    if info.git_commit.is_empty() || info.git_commit == "unknown" {
        format!("v{}", info.llamaperf_version)
    } else {
        info.git_commit.clone()
    }
}

fn now_unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// When the folder's measurements started: its first measured repetition, or now when
/// nothing was measured.
fn started_unix_s(dir: &ResultsDir) -> f64 {
    dir.records()
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Ok { record } => Some(record.measure_start_unix_s),
            _ => None,
        })
        .reduce(f64::min)
        .unwrap_or_else(now_unix_s)
}

impl History {
    /// Stores the results folder `dir` under `label` (default: the commit its machine.json
    /// names), in one transaction.
    pub fn ingest(
        &mut self,
        dir: &ResultsDir,
        label: Option<&str>,
    ) -> Result<Ingested, HistoryError> {
        let machines = machines_of(dir)?;
        let first = machines
            .values()
            .next()
            .ok_or_else(|| crate::results::ResultsError::NotResults(dir.path().to_path_buf()))?;
        let label = label.map_or_else(|| default_label(first), str::to_string);
        let (git_commit, version) = (first.git_commit.clone(), first.llamaperf_version.clone());
        let started = started_unix_s(dir);
        let path = std::fs::canonicalize(dir.path()).unwrap_or_else(|_| dir.path().to_path_buf());
        let db = self.path.clone();
        let err = sql(&db);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let lines: Vec<(String, &SweepRecord)> =
            dir.records().iter().map(|r| (line_hash(r), r)).collect();
        let mut known_folder = None;
        let mut fresh = Vec::new();
        for (hash, line) in &lines {
            let folder: Option<i64> = tx
                .query_row(
                    "SELECT folder FROM runs WHERE content_sha256 = ?1",
                    [hash],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            match folder {
                Some(f) => known_folder = known_folder.or(Some(f)),
                None => fresh.push((hash, *line)),
            }
        }
        let folder = match known_folder {
            Some(f) => f,
            None => {
                tx.execute(
                    "INSERT INTO folders (path, label, git_commit, llamaperf_version, started_unix_s, ingested_unix_s)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![path.display().to_string(), label, git_commit, version, started, now_unix_s()],
                )
                .map_err(&err)?;
                tx.last_insert_rowid()
            }
        };
        let stored_label: String = tx
            .query_row("SELECT label FROM folders WHERE id = ?1", [folder], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        let first_host = machines.keys().next().cloned().unwrap_or_default();
        for (hash, line) in &fresh {
            let host = line.host.clone().unwrap_or_else(|| first_host.clone());
            let info = machines.get(&host).unwrap_or(first);
            let calibration = dir
                .hosts()
                .iter()
                .find(|h| h.host == host)
                .and_then(|h| h.calibration.as_ref());
            let machine = machine_id(&tx, &MachineIdentity::of(info)).map_err(&err)?;
            store_line(&tx, folder, machine, &host, hash, line, calibration).map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(Ingested {
            path,
            label: stored_label,
            folder,
            stored: fresh.len(),
            known: lines.len() - fresh.len(),
        })
    }

    /// Stores each folder of `dirs`, with its label of `labels` (none, or one per folder).
    pub fn ingest_all(
        &mut self,
        dirs: &[ResultsDir],
        labels: &[String],
    ) -> Result<Vec<Ingested>, HistoryError> {
        if !labels.is_empty() && labels.len() != dirs.len() {
            return Err(HistoryError::Labels {
                labels: labels.len(),
                dirs: dirs.len(),
            });
        }
        dirs.iter()
            .enumerate()
            .map(|(i, dir)| self.ingest(dir, labels.get(i).map(String::as_str)))
            .collect()
    }
}

/// The id of the machine `identity`, stored now if it is new.
fn machine_id(tx: &Transaction<'_>, identity: &MachineIdentity) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT OR IGNORE INTO machines (cpu_model, cores, mem_gib, kernel) VALUES (?1, ?2, ?3, ?4)",
        params![identity.cpu_model, identity.cores, identity.mem_gib, identity.kernel],
    )?;
    tx.query_row(
        "SELECT id FROM machines WHERE cpu_model = ?1 AND cores = ?2 AND mem_gib = ?3 AND kernel = ?4",
        params![identity.cpu_model, identity.cores, identity.mem_gib, identity.kernel],
        |r| r.get(0),
    )
}

/// Stores one line: the run, its axes, its metrics (as summary.csv has them) and the
/// per-repetition samples of the metrics that have them.
fn store_line(
    tx: &Transaction<'_>,
    folder: i64,
    machine: i64,
    host: &str,
    hash: &str,
    line: &SweepRecord,
    calibration: Option<&Calibration>,
) -> rusqlite::Result<()> {
    let row = row_of(line, host, calibration);
    tx.execute(
        "INSERT INTO runs (folder, machine, host, run_id, instance, status, reason, content_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            folder,
            machine,
            host,
            row.run_id,
            row.instance,
            row.status,
            row.reason,
            hash
        ],
    )?;
    let run = tx.last_insert_rowid();
    let axes: BTreeMap<&str, String> = Key::ALL
        .into_iter()
        .filter(|k| k.is_axis())
        .map(|k| (k.name(), row.axis_value(k)))
        .collect();
    let mut insert = tx.prepare_cached("INSERT INTO axes (run, key, value) VALUES (?1, ?2, ?3)")?;
    for (key, value) in &axes {
        insert.execute(params![run, key, value])?;
    }
    let mut insert =
        tx.prepare_cached("INSERT INTO metrics (run, metric, value) VALUES (?1, ?2, ?3)")?;
    for (metric, value) in row.metrics.iter() {
        if let Some(v) = value.filter(|v| v.is_finite()) {
            insert.execute(params![run, metric.name, v])?;
        }
    }
    if let Outcome::Ok { record } = &line.outcome {
        let mut insert = tx.prepare_cached(
            "INSERT INTO samples (run, metric, repetition, value) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for metric in catalogue() {
            for (i, v) in metric.samples(record).into_iter().enumerate() {
                if v.is_finite() {
                    insert.execute(params![run, metric.name, i, v])?;
                }
            }
        }
    }
    Ok(())
}
