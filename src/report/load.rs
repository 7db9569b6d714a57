//! Reading results folders into typed data for the report, without changing them.

use super::ReportError;
use crate::calibrate::Calibration;
use crate::machine::environment::MachineInfo;
use crate::planning::plan::Plan;
use crate::results::store::{TokenRow, MACHINE_FILE, TOKENS_FILE};
use crate::results::summary::SummaryRow;
use crate::results::{ResultsDir, ResultsError, SweepRecord};
use crate::schema::SCHEMA_VERSION;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One results folder as the report reads it.
#[derive(Debug, Clone)]
pub struct ResultSet {
    /// Name of the set in charts and tables: the folder's name, or the label given.
    pub label: String,
    /// The folder.
    pub path: PathBuf,
    /// The machine and software the sweep ran on (`machine.json`).
    pub machine: MachineInfo,
    /// Every run, skipped ones with their reason (`plan.json`).
    pub plan: Plan,
    /// The ceilings of the roofline columns (`calibration.json`), when there are some.
    pub calibration: Option<Calibration>,
    /// Every completed line of `runs.jsonl`.
    pub records: Vec<SweepRecord>,
    /// The rows of `summary.csv`, as the results module computes them.
    pub rows: Vec<SummaryRow>,
    /// Every row of `tokens.csv` of a completed run, once.
    pub tokens: Vec<TokenRow>,
    /// What the reader should know: runs recorded more than once, a partial last line.
    pub warnings: Vec<String>,
}

impl ResultSet {
    /// Reads the results folder `path`, named `label` or else after the folder.
    pub fn load(path: &Path, label: Option<&str>) -> Result<ResultSet, ReportError> {
        let dir = ResultsDir::read(path)?;
        let machine_path = path.join(MACHINE_FILE);
        let text = std::fs::read_to_string(&machine_path).map_err(|source| ResultsError::Io {
            path: machine_path.clone(),
            source,
        })?;
        let machine: MachineInfo =
            serde_json::from_str(&text).map_err(|e| ResultsError::Corrupt {
                file: machine_path.clone(),
                line: e.line(),
                reason: e.to_string(),
            })?;
        if machine.schema_version != SCHEMA_VERSION {
            return Err(ResultsError::Schema {
                file: machine_path,
                found: machine.schema_version,
                reads: SCHEMA_VERSION,
            }
            .into());
        }
        let rows = dir.summary_rows();
        let mut warnings = dir.warnings().to_vec();
        let tokens = read_tokens(path, &dir, &mut warnings)?;
        let label = label.map(str::to_string).unwrap_or_else(|| {
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        Ok(ResultSet {
            label,
            path: path.to_path_buf(),
            machine,
            plan: dir.plan().clone(),
            calibration: dir.calibration().cloned(),
            records: dir.records().to_vec(),
            rows,
            tokens,
            warnings,
        })
    }
}

/// The rows of `tokens.csv` that belong to completed runs, each once (a folder without the
/// file has none). A partial last line, cut by an interrupted write, is left out with a
/// warning.
fn read_tokens(
    path: &Path,
    dir: &ResultsDir,
    warnings: &mut Vec<String>,
) -> Result<Vec<TokenRow>, ReportError> {
    let file = path.join(TOKENS_FILE);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ResultsError::Io { path: file, source }.into()),
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < bytes.len() {
        warnings.push(format!(
            "{}: its last line is cut short (an interrupted write) and left out",
            file.display()
        ));
    }
    let completed = dir.completed();
    let mut seen = HashSet::new();
    let mut reader = csv::Reader::from_reader(&bytes[..whole]);
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<TokenRow>().enumerate() {
        let row = row.map_err(|e| corrupt(&file, i + 2, &e))?;
        let key = (
            row.run_id.clone(),
            row.host.clone(),
            row.instance,
            row.repetition,
            row.step,
        );
        if completed.contains(&row.run_id) && seen.insert(key) {
            out.push(row);
        }
    }
    Ok(out)
}

fn corrupt(file: &Path, line: usize, e: &csv::Error) -> ReportError {
    ResultsError::Corrupt {
        file: file.to_path_buf(),
        line: e.position().map_or(line, |p| p.line() as usize),
        reason: e.to_string(),
    }
    .into()
}
