//! Reading the history: what is stored (`history list`), a metric's values per run and folder
//! (`history trend`), and the last results of one run on one machine (`compare
//! --baseline-history`).

use super::identity::MachineIdentity;
use super::schema::LATEST;
use super::{sql, History, HistoryError};
use crate::results::metrics::Metric;
use crate::scenario::Key;
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One machine of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMachine {
    /// Its id (`--machine` of `history trend`).
    pub id: i64,
    /// What it is.
    pub identity: MachineIdentity,
    /// The host names its results were measured on.
    pub hosts: Vec<String>,
}

/// The runs one ingested folder holds of one machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredFolder {
    /// The folder's id.
    pub id: i64,
    /// The machine's id.
    pub machine: i64,
    /// Where the folder was when it was ingested.
    pub path: String,
    /// Its label (a commit, or `--label`).
    pub label: String,
    /// The commit of the llamaperf that measured it.
    pub git_commit: String,
    /// When its measurements started, Unix seconds.
    pub started_unix_s: f64,
    /// When it was ingested, Unix seconds.
    pub ingested_unix_s: f64,
    /// Lines of `runs.jsonl` stored (runs, instances and aggregates).
    pub runs: usize,
    /// Of those, the failed ones.
    pub failed: usize,
}

/// Everything the history holds, in short.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listing {
    /// The database.
    pub db: PathBuf,
    /// Its schema version.
    pub schema_version: u32,
    /// Its machines.
    pub machines: Vec<StoredMachine>,
    /// Its folders, per machine, oldest first.
    pub folders: Vec<StoredFolder>,
}

/// One metric's values in one stored line of `runs.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValues {
    /// The machine's id.
    pub machine: i64,
    /// The run id.
    pub run_id: String,
    /// The instance of a multi-instance run.
    pub instance: Option<usize>,
    /// The folder's id.
    pub folder: i64,
    /// The folder's label.
    pub label: String,
    /// When the folder's measurements started, Unix seconds.
    pub started_unix_s: f64,
    /// One value per repetition, or the run's one value for a metric without repetitions.
    pub values: Vec<f64>,
}

/// One stored result of a run: its folder and the per-repetition samples of each metric.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    /// The folder's id.
    pub folder: i64,
    /// Where the folder was when it was ingested.
    pub path: String,
    /// The folder's label.
    pub label: String,
    /// Per metric, one value per measured repetition.
    pub samples: BTreeMap<String, Vec<f64>>,
}

/// Which stored values a trend shows.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The metric.
    pub metric: &'static Metric,
    /// Axis values a run must have.
    pub conditions: Vec<(Key, String)>,
    /// Only this machine (all when `None`).
    pub machine: Option<i64>,
}

/// Parses `--where model=...,batch=...`: axis names of the scenario format, values as
/// summary.csv writes them; a piece without `=` belongs to the value before it (a cpu list
/// such as `cores=0-7,16-23`).
pub fn parse_where(text: &str) -> Result<Vec<(Key, String)>, HistoryError> {
    let axes = || {
        Key::ALL
            .into_iter()
            .filter(|k| k.is_axis())
            .map(Key::name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut conditions: Vec<String> = Vec::new();
    for piece in text.split(',').filter(|c| !c.trim().is_empty()) {
        match conditions.last_mut() {
            Some(last) if !piece.contains('=') => {
                last.push(',');
                last.push_str(piece);
            }
            _ => conditions.push(piece.to_string()),
        }
    }
    conditions
        .iter()
        .map(|condition| {
            let bad = |reason: &str| HistoryError::BadWhere {
                condition: condition.to_string(),
                reason: reason.to_string(),
                axes: axes(),
            };
            let (key, value) = condition.split_once('=').ok_or_else(|| bad("no '='"))?;
            let key = Key::from_name(key.trim())
                .filter(|k| k.is_axis())
                .ok_or_else(|| bad(&format!("'{}' is not an axis", key.trim())))?;
            Ok((key, value.trim().to_string()))
        })
        .collect()
}

impl History {
    /// The machines and folders stored.
    pub fn list(&self) -> Result<Listing, HistoryError> {
        let err = sql(&self.path);
        let mut machines = Vec::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, cpu_model, cores, mem_gib, kernel FROM machines ORDER BY id")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredMachine {
                    id: r.get(0)?,
                    identity: MachineIdentity {
                        cpu_model: r.get(1)?,
                        cores: r.get(2)?,
                        mem_gib: r.get(3)?,
                        kernel: r.get(4)?,
                    },
                    hosts: Vec::new(),
                })
            })
            .map_err(&err)?;
        for m in rows {
            let mut m = m.map_err(&err)?;
            let mut hosts = self
                .conn
                .prepare("SELECT DISTINCT host FROM runs WHERE machine = ?1 ORDER BY host")
                .map_err(&err)?;
            m.hosts = hosts
                .query_map([m.id], |r| r.get(0))
                .and_then(Iterator::collect)
                .map_err(&err)?;
            machines.push(m);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT f.id, r.machine, f.path, f.label, f.git_commit, f.started_unix_s,
                        f.ingested_unix_s, count(*), sum(r.status = 'failed')
                 FROM folders f JOIN runs r ON r.folder = f.id
                 GROUP BY f.id, r.machine
                 ORDER BY r.machine, f.started_unix_s, f.id",
            )
            .map_err(&err)?;
        let folders = stmt
            .query_map([], |r| {
                Ok(StoredFolder {
                    id: r.get(0)?,
                    machine: r.get(1)?,
                    path: r.get(2)?,
                    label: r.get(3)?,
                    git_commit: r.get(4)?,
                    started_unix_s: r.get(5)?,
                    ingested_unix_s: r.get(6)?,
                    runs: r.get(7)?,
                    failed: r.get(8)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(&err)?;
        Ok(Listing {
            db: self.path.clone(),
            schema_version: LATEST,
            machines,
            folders,
        })
    }

    /// The id of the machine `identity`, if the history has results of it.
    pub fn machine_id(&self, identity: &MachineIdentity) -> Result<Option<i64>, HistoryError> {
        self.conn
            .query_row(
                "SELECT id FROM machines WHERE cpu_model = ?1 AND cores = ?2 AND mem_gib = ?3 AND kernel = ?4",
                params![identity.cpu_model, identity.cores, identity.mem_gib, identity.kernel],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql(&self.path))
    }

    /// The values of the filter's metric in every measured line (runs, instances, aggregates)
    /// that matches it, by machine, run and time.
    pub fn values(&self, filter: &Filter) -> Result<Vec<StoredValues>, HistoryError> {
        let err = sql(&self.path);
        let mut query = String::from(
            "SELECT r.id, r.machine, r.run_id, r.instance, f.id, f.label, f.started_unix_s
             FROM runs r JOIN folders f ON f.id = r.folder
             WHERE r.status IN ('ok', 'aggregate')",
        );
        let mut args: Vec<Value> = Vec::new();
        if let Some(m) = filter.machine {
            args.push(Value::Integer(m));
            query.push_str(&format!(" AND r.machine = ?{}", args.len()));
        }
        for (key, value) in &filter.conditions {
            args.push(Value::Text(key.name().to_string()));
            args.push(Value::Text(value.clone()));
            query.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM axes a WHERE a.run = r.id AND a.key = ?{} AND a.value = ?{})",
                args.len() - 1,
                args.len()
            ));
        }
        query.push_str(" ORDER BY r.machine, r.run_id, r.instance, f.started_unix_s, f.id");
        let mut stmt = self.conn.prepare(&query).map_err(&err)?;
        let lines: Vec<(i64, StoredValues)> = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok((
                    r.get(0)?,
                    StoredValues {
                        machine: r.get(1)?,
                        run_id: r.get(2)?,
                        instance: r.get(3)?,
                        folder: r.get(4)?,
                        label: r.get(5)?,
                        started_unix_s: r.get(6)?,
                        values: Vec::new(),
                    },
                ))
            })
            .and_then(Iterator::collect)
            .map_err(&err)?;
        let mut out = Vec::new();
        for (run, mut line) in lines {
            line.values = self.samples(run, &filter.metric.name)?;
            if line.values.is_empty() {
                line.values = self
                    .conn
                    .query_row(
                        "SELECT value FROM metrics WHERE run = ?1 AND metric = ?2",
                        params![run, filter.metric.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(&err)?
                    .into_iter()
                    .collect();
            }
            if !line.values.is_empty() {
                out.push(line);
            }
        }
        Ok(out)
    }

    /// The per-repetition samples of `metric` in the stored line `run`, in order.
    fn samples(&self, run: i64, metric: &str) -> Result<Vec<f64>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT value FROM samples WHERE run = ?1 AND metric = ?2 ORDER BY repetition",
            )
            .map_err(sql(&self.path))?;
        stmt.query_map(params![run, metric], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(sql(&self.path))
    }

    /// The last `n` measured results of run `run_id` (instance `instance`) on `machine`, newest
    /// first (by the start of their folder's measurements), leaving out the folders that hold
    /// any of the lines `exclude` (by content hash: the candidate itself, if it was ingested).
    pub fn baseline(
        &self,
        machine: i64,
        run_id: &str,
        instance: Option<usize>,
        n: usize,
        exclude: &[String],
    ) -> Result<Vec<StoredRun>, HistoryError> {
        let err = sql(&self.path);
        let mut excluded = Vec::new();
        for hash in exclude {
            let folder: Option<i64> = self
                .conn
                .query_row(
                    "SELECT folder FROM runs WHERE content_sha256 = ?1",
                    [hash],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&err)?;
            excluded.extend(folder);
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.id, f.id, f.path, f.label FROM runs r JOIN folders f ON f.id = r.folder
                 WHERE r.machine = ?1 AND r.run_id = ?2 AND r.instance IS ?3 AND r.status = 'ok'
                 ORDER BY f.started_unix_s DESC, f.id DESC",
            )
            .map_err(&err)?;
        let found: Vec<(i64, i64, String, String)> = stmt
            .query_map(params![machine, run_id, instance], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .and_then(Iterator::collect)
            .map_err(&err)?;
        let mut runs = Vec::new();
        for (run, folder, path, label) in found
            .into_iter()
            .filter(|(_, folder, _, _)| !excluded.contains(folder))
            .take(n)
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT metric, value FROM samples WHERE run = ?1 ORDER BY metric, repetition",
                )
                .map_err(&err)?;
            let pairs: Vec<(String, f64)> = stmt
                .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(Iterator::collect)
                .map_err(&err)?;
            let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for (metric, value) in pairs {
                samples.entry(metric).or_default().push(value);
            }
            runs.push(StoredRun {
                folder,
                path,
                label,
                samples,
            });
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_axis_value_pairs_and_cpu_lists_keep_their_commas() {
        let parsed = parse_where("model=tiny, cores=0-7,16-23,batch=2").unwrap();
        assert_eq!(
            parsed,
            [
                (Key::Model, "tiny".to_string()),
                (Key::Cores, "0-7,16-23".to_string()),
                (Key::Batch, "2".to_string())
            ]
        );
        assert!(parse_where("").unwrap().is_empty());
        let err = parse_where("repetitions=3").unwrap_err().to_string();
        assert!(err.contains("'repetitions' is not an axis"), "{err}");
        assert!(parse_where("tiny").is_err());
    }
}
