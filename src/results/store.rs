//! Writing and re-opening a results folder.

use super::record::{Outcome, SweepRecord};
use super::summary::rows;
use crate::calibrate::Calibration;
use crate::machine::environment::MachineInfo;
use crate::measure::SCHEMA_VERSION;
use crate::sweep::plan::Plan;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// File names inside a results folder.
pub const SCENARIO_FILE: &str = "scenario.toml";
/// See [`SCENARIO_FILE`].
pub const MACHINE_FILE: &str = "machine.json";
/// See [`SCENARIO_FILE`].
pub const PLAN_FILE: &str = "plan.json";
/// See [`SCENARIO_FILE`].
pub const RUNS_FILE: &str = "runs.jsonl";
/// See [`SCENARIO_FILE`].
pub const TOKENS_FILE: &str = "tokens.csv";
/// See [`SCENARIO_FILE`].
pub const SUMMARY_FILE: &str = "summary.csv";
/// See [`SCENARIO_FILE`]; present when the machine was calibrated.
pub const CALIBRATION_FILE: &str = "calibration.json";

/// What can go wrong with a results folder.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The folder exists and this is not a resume.
    #[error(
        "results folder {0} already exists: continue it with --resume {0}, or choose another --out"
    )]
    Exists(PathBuf),
    /// The folder is not a results folder.
    #[error("{0} is not a llamaperf results folder (no plan.json)")]
    NotResults(PathBuf),
    /// Written by another schema version.
    #[error("{file} has schema_version {found}, this llamaperf reads {SCHEMA_VERSION}")]
    Schema {
        /// The file.
        file: PathBuf,
        /// Its version.
        found: u32,
    },
    /// A file is unreadable.
    #[error("{file}:{line}: {reason}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed (a full disk, permissions).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl ResultsError {
    /// Whether the user can fix it by changing an argument.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, ResultsError::Io { .. })
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ResultsError + '_ {
    move |source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, renamed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(path))?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(value).expect("results types serialize");
    v.push(b'\n');
    v
}

/// One row of `tokens.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRow {
    /// Results schema version.
    pub schema_version: u32,
    /// Run id.
    pub run_id: String,
    /// Instance (empty for single-instance runs).
    pub instance: Option<usize>,
    /// Measured repetition, from 0.
    pub repetition: usize,
    /// Step: 0 is the prefill (TTFT), then one per decode step.
    pub step: usize,
    /// `prefill` or `decode`.
    pub phase: String,
    /// Duration, ms.
    pub ms: f64,
}

fn token_rows(r: &SweepRecord) -> Vec<TokenRow> {
    let Outcome::Ok { record } = &r.outcome else {
        return Vec::new();
    };
    let row = |repetition, step, phase: &str, ms| TokenRow {
        schema_version: SCHEMA_VERSION,
        run_id: r.run_id.clone(),
        instance: r.instance,
        repetition,
        step,
        phase: phase.to_string(),
        ms,
    };
    record
        .repetitions
        .iter()
        .enumerate()
        .flat_map(|(rep, m)| {
            std::iter::once(row(rep, 0, "prefill", m.metrics.ttft_ms)).chain(
                m.decode_steps_ms
                    .iter()
                    .enumerate()
                    .map(move |(i, &ms)| row(rep, i + 1, "decode", ms)),
            )
        })
        .collect()
}

fn csv_bytes<T: Serialize>(rows: &[T], header: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::new());
    for r in rows {
        w.serialize(r).expect("rows serialize");
    }
    if header && rows.is_empty() {
        // The csv writer emits a header only with the first row.
        return Vec::new();
    }
    w.into_inner().expect("in-memory writer")
}

/// Records as JSON lines.
fn jsonl(records: &[SweepRecord]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|r| {
            let mut line = serde_json::to_vec(r).expect("records serialize");
            line.push(b'\n');
            line
        })
        .collect()
}

/// An open results folder.
pub struct ResultsDir {
    path: PathBuf,
    plan: Plan,
    calibration: Option<Calibration>,
    records: Vec<SweepRecord>,
}

/// The schema version field of any JSON file.
#[derive(Deserialize)]
struct Versioned {
    schema_version: u32,
}

impl ResultsDir {
    /// Creates the folder with its scenario, machine, plan and calibration; refuses an existing
    /// folder.
    pub fn create(
        path: &Path,
        scenario_text: &str,
        machine: &MachineInfo,
        plan: &Plan,
        calibration: Option<&Calibration>,
    ) -> Result<Self, ResultsError> {
        if path.exists() {
            return Err(ResultsError::Exists(path.to_path_buf()));
        }
        std::fs::create_dir_all(path).map_err(io(path))?;
        write_atomic(&path.join(SCENARIO_FILE), scenario_text.as_bytes())?;
        write_atomic(&path.join(MACHINE_FILE), &to_json(machine))?;
        write_atomic(&path.join(PLAN_FILE), &to_json(plan))?;
        if let Some(c) = calibration {
            write_atomic(&path.join(CALIBRATION_FILE), &to_json(c))?;
        }
        let dir = ResultsDir {
            path: path.to_path_buf(),
            plan: plan.clone(),
            calibration: calibration.cloned(),
            records: Vec::new(),
        };
        dir.write_summary()?;
        Ok(dir)
    }

    /// Opens an existing folder: its plan and every completed run. Lines of runs that did not
    /// complete (an interrupted write) are dropped from `runs.jsonl` and `tokens.csv`.
    pub fn open(path: &Path) -> Result<Self, ResultsError> {
        let dir = Self::read(path)?;
        dir.rewrite_logs()?;
        dir.write_summary()?;
        Ok(dir)
    }

    /// Reads an existing folder without changing it: its plan, its calibration and every
    /// completed run (lines of runs that did not complete are left out).
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let plan_path = path.join(PLAN_FILE);
        if !plan_path.is_file() {
            return Err(ResultsError::NotResults(path.to_path_buf()));
        }
        let text = std::fs::read_to_string(&plan_path).map_err(io(&plan_path))?;
        let corrupt = |reason: String| ResultsError::Corrupt {
            file: plan_path.clone(),
            line: 1,
            reason,
        };
        let version: Versioned = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if version.schema_version != SCHEMA_VERSION {
            return Err(ResultsError::Schema {
                file: plan_path,
                found: version.schema_version,
            });
        }
        let plan: Plan = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let runs_path = path.join(RUNS_FILE);
        let text = match std::fs::read_to_string(&runs_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&runs_path)(e)),
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut records = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let complete = line.ends_with('\n');
            match serde_json::from_str::<SweepRecord>(line.trim_end()) {
                Ok(r) if complete => {
                    if r.schema_version != SCHEMA_VERSION {
                        return Err(ResultsError::Schema {
                            file: runs_path,
                            found: r.schema_version,
                        });
                    }
                    records.push(r);
                }
                // Only the last line can be cut short by an interrupted write.
                _ if i + 1 == lines.len() => {}
                Ok(_) => unreachable!("only the last line lacks its newline"),
                Err(e) => {
                    return Err(ResultsError::Corrupt {
                        file: runs_path,
                        line: i + 1,
                        reason: e.to_string(),
                    })
                }
            }
        }
        let done: HashSet<String> = records
            .iter()
            .filter(|r| r.completes_run())
            .map(|r| r.run_id.clone())
            .collect();
        let kept: Vec<SweepRecord> = records
            .into_iter()
            .filter(|r| done.contains(&r.run_id))
            .collect();
        let calibration = std::fs::read_to_string(path.join(CALIBRATION_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        Ok(ResultsDir {
            path: path.to_path_buf(),
            plan,
            calibration,
            records: kept,
        })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The calibration the roofline columns were computed against, when there is one.
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// Every recorded line.
    pub fn records(&self) -> &[SweepRecord] {
        &self.records
    }

    /// Ids of the runs already recorded.
    pub fn completed(&self) -> HashSet<String> {
        self.records
            .iter()
            .filter(|r| r.completes_run())
            .map(|r| r.run_id.clone())
            .collect()
    }

    fn rewrite_logs(&self) -> Result<(), ResultsError> {
        write_atomic(&self.path.join(RUNS_FILE), &jsonl(&self.records))?;
        let tokens: Vec<TokenRow> = self.records.iter().flat_map(token_rows).collect();
        write_atomic(&self.path.join(TOKENS_FILE), &csv_bytes(&tokens, true))
    }

    fn write_summary(&self) -> Result<(), ResultsError> {
        write_atomic(
            &self.path.join(SUMMARY_FILE),
            &csv_bytes(
                &rows(&self.plan, &self.records, self.calibration.as_ref()),
                true,
            ),
        )
    }

    fn append(&self, file: &str, bytes: &[u8]) -> Result<(), ResultsError> {
        let path = self.path.join(file);
        let mut f: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(bytes).map_err(io(&path))?;
        f.sync_data().map_err(io(&path))
    }

    /// Records the lines of one run: token rows first, then the run's lines in one write (the
    /// commit point), then the summary.
    pub fn record_run(&mut self, lines: Vec<SweepRecord>) -> Result<(), ResultsError> {
        let tokens: Vec<TokenRow> = lines.iter().flat_map(token_rows).collect();
        let has_tokens = self
            .path
            .join(TOKENS_FILE)
            .metadata()
            .is_ok_and(|m| m.len() > 0);
        self.append(TOKENS_FILE, &csv_bytes(&tokens, !has_tokens))?;
        self.append(RUNS_FILE, &jsonl(&lines))?;
        self.records.extend(lines);
        self.write_summary()
    }
}
