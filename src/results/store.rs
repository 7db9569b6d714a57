//! Writing and re-opening a results folder.

use super::record::{Outcome, SweepRecord};
use super::requests::{request_rows, RequestRow, REQUESTS_FILE};
use super::runs_v1;
use super::summary::{rows, SummaryRow};
use crate::calibrate::Calibration;
use crate::machine::environment::MachineInfo;
use crate::machine::Machine;
use crate::model::ModelCache;
use crate::planning::plan::Plan;
use crate::planning::plan_v1::read_plan_v1;
use crate::schema::{PLAN_VERSION, RUNS_VERSION, SCHEMA_VERSION};
use llamaperf_os::lock::FileLock;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
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
/// The lock file of a folder being written: it names the writer (`pid 123 on host h`) and is
/// locked (`flock`) for as long as that process writes the folder.
pub const LOCK_FILE: &str = ".llamaperf.lock";
/// In a merged folder: one subfolder per host with its `machine.json`, `plan.json` (the runs
/// that host executed or skipped) and `calibration.json`.
pub const HOSTS_DIR: &str = "hosts";

/// What can go wrong with a results folder.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The folder exists and this is not a resume.
    #[error(
        "results folder {0} already exists: continue it with --resume {0}, or choose another --out"
    )]
    Exists(PathBuf),
    /// The output folder of a merge exists.
    #[error("{0} already exists: choose another --out")]
    OutExists(PathBuf),
    /// Another process writes the folder.
    #[error("{dir} is being written by {holder}: wait for it to end, or stop it; one folder has one writer")]
    Locked {
        /// The folder.
        dir: PathBuf,
        /// Who writes it (`pid 123 on host h`).
        holder: String,
    },
    /// The folder is not a results folder.
    #[error("{0} is not a llamaperf results folder (no plan.json)")]
    NotResults(PathBuf),
    /// A merged folder cannot be continued.
    #[error("{0} is a merged results folder (it has hosts/): resume the shard folders it was merged from, then merge again")]
    Merged(PathBuf),
    /// Written by another schema version.
    #[error("{file} has schema_version {found}, this llamaperf reads {reads}")]
    Schema {
        /// The file.
        file: PathBuf,
        /// Its version.
        found: u32,
        /// The newest version of that file this llamaperf reads.
        reads: u32,
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
    /// The machine it ran on; empty in files written before hosts were recorded.
    #[serde(default)]
    pub host: String,
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
        run_id: r.run_id(),
        host: r.host.clone().unwrap_or_default(),
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

/// One machine of a results folder: its host name, the plan of the runs it executed or skipped,
/// and the calibration its roofline columns use. A sweep's folder has one; a merged folder one
/// per host (in `hosts/<host>/`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostPart {
    /// Host name, as in its `machine.json`.
    pub host: String,
    /// The runs of the plan this host executed or skipped (a sweep's folder: its whole plan).
    pub plan: Plan,
    /// Its calibration, when it has one.
    pub calibration: Option<Calibration>,
}

/// What a merged folder keeps of one host: its part and its `machine.json` as written.
#[derive(Debug, Clone)]
pub struct HostFiles {
    /// Host name, plan and calibration.
    pub part: HostPart,
    /// The host's `machine.json`, byte for byte.
    pub machine_json: Vec<u8>,
}

/// An open results folder.
pub struct ResultsDir {
    path: PathBuf,
    plan: Plan,
    hosts: Vec<HostPart>,
    merged: bool,
    records: Vec<SweepRecord>,
    warnings: Vec<String>,
    /// Held by a writer (a sweep creating or resuming the folder) until it is dropped.
    _lock: Option<FileLock>,
}

/// The schema version field of any JSON file.
#[derive(Deserialize)]
struct Versioned {
    schema_version: u32,
}

/// The host name field of `machine.json`.
#[derive(Deserialize)]
struct HostName {
    hostname: String,
}

/// Reads `plan.json` of the current version, or of version 1 with its specs rebuilt.
fn read_plan(path: &Path) -> Result<Plan, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let corrupt = |reason: String| ResultsError::Corrupt {
        file: path.to_path_buf(),
        line: 1,
        reason,
    };
    let version: Versioned = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    match version.schema_version {
        PLAN_VERSION => serde_json::from_str(&text).map_err(|e| corrupt(e.to_string())),
        1 => {
            let cache = ModelCache::from_env().map_err(|e| corrupt(e.to_string()))?;
            read_plan_v1(&text, &cache).map_err(|e| corrupt(e.to_string()))
        }
        found => Err(ResultsError::Schema {
            file: path.to_path_buf(),
            found,
            reads: PLAN_VERSION,
        }),
    }
}

/// The host named by `dir/machine.json`, or `unknown` when it cannot be read.
pub fn machine_host(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(MACHINE_FILE))
        .ok()
        .and_then(|t| serde_json::from_str::<HostName>(&t).ok())
        .map_or_else(|| "unknown".into(), |h| h.hostname)
}

fn read_calibration(dir: &Path) -> Option<Calibration> {
    std::fs::read_to_string(dir.join(CALIBRATION_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// Every completed line of `runs.jsonl`, each run once, and warnings: per run recorded more
/// than once (its first record is kept), and for a partial last line. Lines of runs without
/// their completing line, and a partial last line, are left out.
fn read_records(
    runs_path: &Path,
    plan: &Plan,
) -> Result<(Vec<SweepRecord>, Vec<String>), ResultsError> {
    let text = match std::fs::read_to_string(runs_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(runs_path)(e)),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut records = Vec::new();
    let mut cut = None;
    for (i, line) in lines.iter().enumerate() {
        let complete = line.ends_with('\n');
        match parse_line(line.trim_end(), plan) {
            Ok(r) if complete => records.push((i + 1, r)),
            Err(LineError::Schema(found)) if complete => {
                return Err(ResultsError::Schema {
                    file: runs_path.to_path_buf(),
                    found,
                    reads: RUNS_VERSION,
                })
            }
            // Only the last line can be cut short by an interrupted write.
            _ if i + 1 == lines.len() => {
                cut = Some(format!(
                    "{}:{}: the last line is cut short (an interrupted write) and left out",
                    runs_path.display(),
                    i + 1
                ))
            }
            Ok(_) | Err(LineError::Schema(_)) => {
                unreachable!("only the last line lacks its newline")
            }
            Err(LineError::Corrupt(reason)) => {
                return Err(ResultsError::Corrupt {
                    file: runs_path.to_path_buf(),
                    line: i + 1,
                    reason,
                })
            }
        }
    }
    let (records, mut warnings) = first_of_each_run(records, runs_path);
    warnings.extend(cut);
    Ok((records, warnings))
}

/// The lines of each completed run once: those of its first completion (the last line of each
/// instance before its completing line), in the order runs completed; and a warning naming
/// every run completed more than once, with the lines of its repeats.
fn first_of_each_run(
    records: Vec<(usize, SweepRecord)>,
    runs_path: &Path,
) -> (Vec<SweepRecord>, Vec<String>) {
    type Key = (Option<String>, usize);
    let mut pending: HashMap<Key, Vec<SweepRecord>> = HashMap::new();
    let mut repeats: HashMap<Key, (String, Vec<usize>)> = HashMap::new();
    let mut kept = Vec::new();
    let mut order: Vec<Key> = Vec::new();
    for (line, r) in records {
        let key = (r.host.clone(), r.index);
        if let Some((_, again)) = repeats.get_mut(&key) {
            if r.completes_run() {
                again.push(line);
            }
            continue;
        }
        let group = pending.entry(key.clone()).or_default();
        group.retain(|g| g.instance != r.instance);
        group.push(r);
        if group.last().is_some_and(SweepRecord::completes_run) {
            let group = pending.remove(&key).expect("just inserted");
            let id = group.last().expect("not empty").run_id();
            kept.extend(group);
            repeats.insert(key.clone(), (id, Vec::new()));
            order.push(key);
        }
    }
    let warnings = order
        .iter()
        .filter_map(|key| {
            let (id, again) = &repeats[key];
            (!again.is_empty()).then(|| {
                let lines: Vec<String> = again.iter().map(ToString::to_string).collect();
                format!(
                    "{}: run {id} is recorded {} times (again on line {}): the first is read; \
                     two processes wrote this folder",
                    runs_path.display(),
                    again.len() + 1,
                    lines.join(", ")
                )
            })
        })
        .collect();
    (kept, warnings)
}

/// Why a line of `runs.jsonl` cannot be read.
enum LineError {
    /// It has this unknown schema version.
    Schema(u32),
    /// It is not a line of any known version.
    Corrupt(String),
}

/// A line of the current version, or of version 1 (its spec completed from `plan`).
fn parse_line(line: &str, plan: &Plan) -> Result<SweepRecord, LineError> {
    let corrupt = |e: String| LineError::Corrupt(e);
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| corrupt(e.to_string()))?;
    match value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(RUNS_VERSION) => {
            serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
        }
        Some(1) => runs_v1::migrate(value, plan).map_err(corrupt),
        Some(v) => Err(LineError::Schema(v as u32)),
        None => Err(corrupt("no schema_version".into())),
    }
}

/// The topology in `dir/machine.json`, if it can be read.
fn read_topology(dir: &Path) -> Option<Machine> {
    #[derive(Deserialize)]
    struct Topology {
        topology: Machine,
    }
    let text = std::fs::read_to_string(dir.join(MACHINE_FILE)).ok()?;
    serde_json::from_str::<Topology>(&text)
        .ok()
        .map(|t| t.topology)
}

/// Gives the records written before placement shapes were recorded theirs, from the topology
/// of their host (`machines`, by host name; a line without a host is the first host's).
fn fill_shapes(records: &mut [SweepRecord], machines: &[(&str, Machine)]) {
    for r in records {
        let host = r.host.as_deref();
        let machine = machines
            .iter()
            .find(|(h, _)| Some(*h) == host)
            .or(machines.first().filter(|_| host.is_none()));
        if let (Outcome::Ok { record }, Some((_, machine))) = (&mut r.outcome, machine) {
            if record.shape.is_none() {
                record.shape = Some(machine.shape_of(&r.spec.placement.pus));
            }
        }
    }
}

/// The host parts of a merged folder, from `hosts/<host>/`, in name order.
fn read_hosts(dir: &Path) -> Result<Vec<HostPart>, ResultsError> {
    let hosts_dir = dir.join(HOSTS_DIR);
    let mut names: Vec<String> = std::fs::read_dir(&hosts_dir)
        .map_err(io(&hosts_dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let sub = hosts_dir.join(&name);
            Ok(HostPart {
                host: machine_host(&sub),
                plan: read_plan(&sub.join(PLAN_FILE))?,
                calibration: read_calibration(&sub),
            })
        })
        .collect()
}

/// Prefix of the temporary folder a new results folder is written into before its rename.
const NEW_PREFIX: &str = ".llamaperf-new-";

/// Removes from `parent` the temporary folders of creations that died before their rename
/// (kill -9): those whose lock no process holds, untouched for a minute (a creation locks
/// its folder within moments of making it).
fn remove_abandoned_new_folders(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(60));
        if entry.file_name().to_string_lossy().starts_with(NEW_PREFIX)
            && old
            && !FileLock::is_held(&path.join(LOCK_FILE))
        {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Locks the folder `dir` for this process, or names the process that writes it.
fn lock_folder(dir: &Path) -> Result<FileLock, ResultsError> {
    let path = dir.join(LOCK_FILE);
    FileLock::try_acquire(&path)
        .map_err(io(&path))?
        .map_err(|holder| ResultsError::Locked {
            dir: dir.to_path_buf(),
            holder,
        })
}

/// A host name as a folder name: characters other than letters, digits, `.`, `-` and `_`
/// become `_`.
pub fn host_folder(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ResultsDir {
    /// Creates the folder with its scenario, machine, plan and calibration, locked for this
    /// process; refuses an existing folder. The files are written into a temporary folder
    /// beside it, which is then renamed: the folder appears whole or not at all.
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
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        remove_abandoned_new_folders(parent);
        let tmp = tempfile::Builder::new()
            .prefix(NEW_PREFIX)
            .tempdir_in(parent)
            .map_err(io(path))?;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(io(tmp.path()))?;
        let lock = lock_folder(tmp.path())?;
        write_atomic(&tmp.path().join(SCENARIO_FILE), scenario_text.as_bytes())?;
        write_atomic(&tmp.path().join(MACHINE_FILE), &to_json(machine))?;
        write_atomic(&tmp.path().join(PLAN_FILE), &to_json(plan))?;
        if let Some(c) = calibration {
            write_atomic(&tmp.path().join(CALIBRATION_FILE), &to_json(c))?;
        }
        let mut dir = ResultsDir {
            path: tmp.path().to_path_buf(),
            plan: plan.clone(),
            hosts: vec![HostPart {
                host: machine.hostname.clone(),
                plan: plan.clone(),
                calibration: calibration.cloned(),
            }],
            merged: false,
            records: Vec::new(),
            warnings: Vec::new(),
            _lock: Some(lock),
        };
        dir.write_summary()?;
        let written = tmp.keep();
        // Another sweep may have created the folder meanwhile: renaming onto its files fails.
        std::fs::rename(&written, path).map_err(|e| {
            let _ = std::fs::remove_dir_all(&written);
            if path.exists() {
                ResultsError::Exists(path.to_path_buf())
            } else {
                io(path)(e)
            }
        })?;
        dir.path = path.to_path_buf();
        Ok(dir)
    }

    /// Writes a merged folder at `path` (which must not exist) in one step: every file is
    /// written into a temporary folder beside it, which is then renamed. The first host's
    /// machine and calibration are also the folder's top-level ones, so readers of a one-host
    /// folder read it unchanged.
    pub fn create_merged(
        path: &Path,
        scenario_text: &str,
        plan: &Plan,
        hosts: &[HostFiles],
        records: Vec<SweepRecord>,
    ) -> Result<Self, ResultsError> {
        if path.exists() {
            return Err(ResultsError::OutExists(path.to_path_buf()));
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let tmp = tempfile::Builder::new()
            .prefix(".llamaperf-merge-")
            .tempdir_in(parent)
            .map_err(io(parent))?;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(io(tmp.path()))?;
        let first = hosts.first().expect("a merge has at least one host");
        write_atomic(&tmp.path().join(SCENARIO_FILE), scenario_text.as_bytes())?;
        write_atomic(&tmp.path().join(MACHINE_FILE), &first.machine_json)?;
        write_atomic(&tmp.path().join(PLAN_FILE), &to_json(plan))?;
        if let Some(c) = &first.part.calibration {
            write_atomic(&tmp.path().join(CALIBRATION_FILE), &to_json(c))?;
        }
        for h in hosts {
            let sub = tmp.path().join(HOSTS_DIR).join(host_folder(&h.part.host));
            std::fs::create_dir_all(&sub).map_err(io(&sub))?;
            write_atomic(&sub.join(MACHINE_FILE), &h.machine_json)?;
            write_atomic(&sub.join(PLAN_FILE), &to_json(&h.part.plan))?;
            if let Some(c) = &h.part.calibration {
                write_atomic(&sub.join(CALIBRATION_FILE), &to_json(c))?;
            }
        }
        let mut dir = ResultsDir {
            path: tmp.path().to_path_buf(),
            plan: plan.clone(),
            hosts: hosts.iter().map(|h| h.part.clone()).collect(),
            merged: true,
            records,
            warnings: Vec::new(),
            _lock: None,
        };
        dir.rewrite_logs()?;
        dir.write_summary()?;
        let written = tmp.keep();
        std::fs::rename(&written, path).map_err(|e| {
            let _ = std::fs::remove_dir_all(&written);
            io(path)(e)
        })?;
        dir.path = path.to_path_buf();
        Ok(dir)
    }

    /// Reads a folder without changing it: its plan, hosts and every completed run.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let plan_path = path.join(PLAN_FILE);
        if !plan_path.is_file() {
            return Err(ResultsError::NotResults(path.to_path_buf()));
        }
        let plan = read_plan(&plan_path)?;
        let (mut records, warnings) = read_records(&path.join(RUNS_FILE), &plan)?;
        let merged = path.join(HOSTS_DIR).is_dir();
        let hosts = if merged {
            read_hosts(path)?
        } else {
            vec![HostPart {
                host: machine_host(path),
                plan: plan.clone(),
                calibration: read_calibration(path),
            }]
        };
        let machines: Vec<(&str, Machine)> = hosts
            .iter()
            .filter_map(|h| {
                let dir = if merged {
                    path.join(HOSTS_DIR).join(host_folder(&h.host))
                } else {
                    path.to_path_buf()
                };
                Some((h.host.as_str(), read_topology(&dir)?))
            })
            .collect();
        fill_shapes(&mut records, &machines);
        Ok(ResultsDir {
            path: path.to_path_buf(),
            plan,
            hosts,
            merged,
            records,
            warnings,
            _lock: None,
        })
    }

    /// Opens an existing sweep folder to continue it, locked for this process (a folder
    /// another process writes is refused): its plan and every completed run. Lines of runs
    /// that did not complete (an interrupted write) and repeated runs are dropped from
    /// `runs.jsonl` and `tokens.csv`. A merged folder is refused.
    pub fn open(path: &Path) -> Result<Self, ResultsError> {
        if Self::read(path)?.merged {
            return Err(ResultsError::Merged(path.to_path_buf()));
        }
        let lock = lock_folder(path)?;
        // read again: the last writer may have appended until it let go of the lock
        let mut dir = Self::read(path)?;
        dir._lock = Some(lock);
        dir.rewrite_logs()?;
        dir.write_summary()?;
        Ok(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plan (of a merged folder: every run once, as the first host that covered it planned it).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The machines: one for a sweep's folder, one per host for a merged folder.
    pub fn hosts(&self) -> &[HostPart] {
        &self.hosts
    }

    /// The folder's top-level calibration (the first host's, in a merged folder), which its
    /// roofline columns were computed against, if it has one.
    pub fn calibration(&self) -> Option<&Calibration> {
        self.hosts.first().and_then(|h| h.calibration.as_ref())
    }

    /// The machine the sweep ran on (`machine.json`; the first host's, in a merged folder).
    pub fn machine(&self) -> Result<MachineInfo, ResultsError> {
        let path = self.path.join(MACHINE_FILE);
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|e| ResultsError::Corrupt {
            file: path,
            line: e.line(),
            reason: e.to_string(),
        })
    }

    /// Whether the folder was written by `llamaperf merge`.
    pub fn is_merged(&self) -> bool {
        self.merged
    }

    /// What a reader should know about the folder: runs recorded more than once.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Every recorded line, each run once.
    pub fn records(&self) -> &[SweepRecord] {
        &self.records
    }

    /// Ids of the runs already recorded.
    pub fn completed(&self) -> HashSet<String> {
        self.records
            .iter()
            .filter(|r| r.completes_run())
            .map(SweepRecord::run_id)
            .collect()
    }

    fn rewrite_logs(&self) -> Result<(), ResultsError> {
        write_atomic(&self.path.join(RUNS_FILE), &jsonl(&self.records))?;
        let tokens: Vec<TokenRow> = self.records.iter().flat_map(token_rows).collect();
        write_atomic(&self.path.join(TOKENS_FILE), &csv_bytes(&tokens, true))?;
        let requests: Vec<RequestRow> = self.records.iter().flat_map(request_rows).collect();
        if requests.is_empty() {
            return Ok(());
        }
        write_atomic(&self.path.join(REQUESTS_FILE), &csv_bytes(&requests, true))
    }

    /// `summary.csv`: per host, its plan's rows with its records and calibration; in plan
    /// order, hosts by name within a run.
    fn write_summary(&self) -> Result<(), ResultsError> {
        write_atomic(
            &self.path.join(SUMMARY_FILE),
            &csv_bytes(&self.summary_rows(), true),
        )
    }

    /// The rows of `summary.csv`: per host, its recorded lines and skipped runs, in plan order.
    pub fn summary_rows(&self) -> Vec<SummaryRow> {
        let mut summary: Vec<_> = self
            .hosts
            .iter()
            .flat_map(|part| {
                let records: Vec<SweepRecord> = self
                    .records
                    .iter()
                    .filter(|r| !self.merged || r.host.as_deref() == Some(part.host.as_str()))
                    .cloned()
                    .collect();
                rows(&part.plan, &records, &part.host, part.calibration.as_ref())
            })
            .collect();
        if self.merged {
            let index: HashMap<&str, usize> = self
                .plan
                .runs
                .iter()
                .map(|r| (r.id.as_str(), r.index))
                .collect();
            summary.sort_by_key(|row| index.get(row.run_id.as_str()).copied());
        }
        summary
    }

    /// Appends `bytes` (whole lines) to `file` in one write, synced; a failed write (a full
    /// disk) is cut off again, so the file keeps only whole lines.
    fn append(&self, file: &str, bytes: &[u8]) -> Result<(), ResultsError> {
        let path = self.path.join(file);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let before = f.metadata().map_err(io(&path))?.len();
        f.write_all(bytes)
            .and_then(|()| f.sync_data())
            .map_err(|e| {
                let _ = f.set_len(before);
                io(&path)(e)
            })
    }

    /// Whether `file` of the folder has content (then a CSV appended to it has its header).
    fn has_rows(&self, file: &str) -> bool {
        self.path.join(file).metadata().is_ok_and(|m| m.len() > 0)
    }

    /// Records the lines of one run: token and request rows first, then the run's lines in one
    /// write (the commit point), then the summary.
    pub fn record_run(&mut self, lines: Vec<SweepRecord>) -> Result<(), ResultsError> {
        let tokens: Vec<TokenRow> = lines.iter().flat_map(token_rows).collect();
        self.append(
            TOKENS_FILE,
            &csv_bytes(&tokens, !self.has_rows(TOKENS_FILE)),
        )?;
        let requests: Vec<RequestRow> = lines.iter().flat_map(request_rows).collect();
        if !requests.is_empty() {
            let header = !self.has_rows(REQUESTS_FILE);
            self.append(REQUESTS_FILE, &csv_bytes(&requests, header))?;
        }
        self.append(RUNS_FILE, &jsonl(&lines))?;
        self.records.extend(lines);
        self.write_summary()
    }
}

#[cfg(test)]
mod tests {
    /// A resumed folder's `runs.jsonl` is rewritten from the records read back from it, so every
    /// f64 must read back bit for bit (serde_json's `float_roundtrip`) or old lines change.
    #[test]
    fn floats_read_back_from_a_line_are_the_ones_written() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let changed: Vec<f64> = (0..100_000)
            .filter_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // magnitudes of tokens/s and seconds
                let v = (x >> 11) as f64 / (1u64 << 53) as f64 * 1e5;
                let line = serde_json::to_string(&v).unwrap();
                let back: f64 = serde_json::from_str(&line).unwrap();
                (back.to_bits() != v.to_bits()).then_some(v)
            })
            .collect();
        assert!(
            changed.is_empty(),
            "{} of 100000 changed, e.g. {:?}",
            changed.len(),
            &changed[..changed.len().min(3)]
        );
    }
}
