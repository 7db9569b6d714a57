//! Merging results folders of one scenario (the shards of a sweep split over machines, and
//! whole sweeps of several machines) into one folder of the standard layout, every line
//! carrying its host, after checking that every planned run is there exactly once.

use super::record::SweepRecord;
use super::store::{HostFiles, HostPart, ResultsDir, ResultsError, MACHINE_FILE, SCENARIO_FILE};
use crate::planning::plan::{Plan, RunPlan};
use crate::schema::SCHEMA_VERSION;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Over which inputs every planned run must appear exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// All inputs together ran the plan once (a sweep split over machines).
    Once,
    /// Every host ran the whole plan (comparing machines).
    PerHost,
    /// Every CPU model ran the whole plan, possibly split over several hosts of that model.
    PerCpu,
}

impl FromStr for Coverage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "once" => Ok(Coverage::Once),
            "per-host" => Ok(Coverage::PerHost),
            "per-cpu" => Ok(Coverage::PerCpu),
            _ => Err(format!(
                "coverage '{s}' is not allowed; allowed: once, per-host, per-cpu"
            )),
        }
    }
}

/// A run not covered exactly once in its coverage group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No input's shard includes the run.
    Missing {
        /// The coverage group (empty for [`Coverage::Once`]).
        group: String,
        /// The run.
        run_id: String,
    },
    /// Several inputs' shards include the run.
    Duplicated {
        /// The coverage group.
        group: String,
        /// The run.
        run_id: String,
        /// The inputs that include it.
        folders: Vec<PathBuf>,
    },
    /// The run is planned in its input but not recorded there (the sweep was interrupted,
    /// killed or is still running).
    NotRecorded {
        /// The coverage group.
        group: String,
        /// The run.
        run_id: String,
        /// The input that should hold it.
        folder: PathBuf,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let within = |group: &str| {
            if group.is_empty() {
                String::new()
            } else {
                format!(" ({group})")
            }
        };
        match self {
            Problem::Missing { group, run_id } => {
                write!(f, "missing{}: {run_id}: in no folder's shard", within(group))
            }
            Problem::Duplicated {
                group,
                run_id,
                folders,
            } => write!(
                f,
                "duplicated{}: {run_id}: in {}",
                within(group),
                folders
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Problem::NotRecorded {
                group,
                run_id,
                folder,
            } => write!(
                f,
                "missing{}: {run_id}: planned but not recorded in {} (continue it with llamaperf sweep --resume {})",
                within(group),
                folder.display(),
                folder.display()
            ),
        }
    }
}

/// Why folders cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// An input or the output folder.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// An input is itself a merged folder.
    #[error("{0} is a merged folder: merge the folders it was merged from instead")]
    MergedInput(PathBuf),
    /// Inputs of different scenarios.
    #[error("{}/{SCENARIO_FILE} differs from {}/{SCENARIO_FILE}: only results of the same scenario file merge", .other.display(), .first.display())]
    ScenarioDiffers {
        /// The first input.
        first: PathBuf,
        /// The input whose scenario differs.
        other: PathBuf,
    },
    /// Inputs whose plans list different runs.
    #[error("the plans of {} and {} list different runs (run {run_id} is in one only)", .first.display(), .other.display())]
    PlanDiffers {
        /// The first input.
        first: PathBuf,
        /// The input whose plan differs.
        other: PathBuf,
        /// A run in one plan only.
        run_id: String,
    },
    /// Runs in several inputs: which copy counts is not for the merge to guess.
    #[error("{} duplicated run{}, nothing written:\n  {}{}", .problems.len(), if .problems.len() == 1 { "" } else { "s" }, .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "), .hint)]
    Duplicated {
        /// Every duplicated run.
        problems: Vec<Problem>,
        /// What to do when the duplicates come from different hosts.
        hint: String,
    },
}

impl MergeError {
    /// Whether the user can fix it by choosing other folders or another --out (all but a
    /// failed read or write).
    pub fn is_input_error(&self) -> bool {
        match self {
            MergeError::Results(e) => e.is_input_error(),
            _ => true,
        }
    }
}

/// What a merge wrote.
pub struct Merged {
    /// The merged folder.
    pub dir: ResultsDir,
    /// Runs missing from the inputs (the merged folder holds everything else).
    pub problems: Vec<Problem>,
    /// What the inputs' readers warned of: runs recorded more than once in one input (the
    /// merge keeps the first).
    pub warnings: Vec<String>,
}

/// An input folder.
struct Input {
    path: PathBuf,
    dir: ResultsDir,
    scenario: String,
    machine_json: Vec<u8>,
    host: String,
    cpu_model: String,
}

/// The fields of `machine.json` a merge needs.
#[derive(Deserialize)]
struct MachineHead {
    schema_version: u32,
    hostname: String,
    #[serde(default)]
    cpu_model: String,
}

fn read_input(path: &Path) -> Result<Input, MergeError> {
    let dir = ResultsDir::read(path)?;
    if dir.is_merged() {
        return Err(MergeError::MergedInput(path.to_path_buf()));
    }
    let io = |file: PathBuf| {
        move |source| ResultsError::Io {
            path: file.clone(),
            source,
        }
    };
    let scenario_path = path.join(SCENARIO_FILE);
    let scenario = std::fs::read_to_string(&scenario_path).map_err(io(scenario_path.clone()))?;
    let machine_path = path.join(MACHINE_FILE);
    let machine_json = std::fs::read(&machine_path).map_err(io(machine_path.clone()))?;
    let head: MachineHead =
        serde_json::from_slice(&machine_json).map_err(|e| ResultsError::Corrupt {
            file: machine_path.clone(),
            line: 1,
            reason: e.to_string(),
        })?;
    if head.schema_version != SCHEMA_VERSION {
        return Err(ResultsError::Schema {
            file: machine_path,
            found: head.schema_version,
            reads: SCHEMA_VERSION,
        }
        .into());
    }
    Ok(Input {
        path: path.to_path_buf(),
        host: head.hostname,
        cpu_model: head.cpu_model,
        scenario,
        machine_json,
        dir,
    })
}

/// Refuses inputs of different scenarios or plans.
fn check_same_scenario(inputs: &[Input]) -> Result<(), MergeError> {
    let first = &inputs[0];
    let ids =
        |i: &Input| -> HashSet<String> { i.dir.plan().runs.iter().map(|r| r.id.clone()).collect() };
    let first_ids = ids(first);
    for other in &inputs[1..] {
        if other.scenario != first.scenario {
            return Err(MergeError::ScenarioDiffers {
                first: first.path.clone(),
                other: other.path.clone(),
            });
        }
        let other_ids = ids(other);
        if let Some(run_id) = first_ids.symmetric_difference(&other_ids).next() {
            return Err(MergeError::PlanDiffers {
                first: first.path.clone(),
                other: other.path.clone(),
                run_id: run_id.clone(),
            });
        }
    }
    Ok(())
}

fn group_of(input: &Input, coverage: Coverage) -> String {
    match coverage {
        Coverage::Once => String::new(),
        Coverage::PerHost => format!("host {}", input.host),
        Coverage::PerCpu => format!("cpu {}", input.cpu_model),
    }
}

/// Every run of the plan covered exactly once in each group: each run in exactly one input's
/// shard, and recorded there when planned there.
fn coverage_problems(inputs: &[Input], coverage: Coverage) -> Vec<Problem> {
    let mut groups: BTreeMap<String, Vec<&Input>> = BTreeMap::new();
    for input in inputs {
        groups
            .entry(group_of(input, coverage))
            .or_default()
            .push(input);
    }
    let mut problems = Vec::new();
    for (group, members) in groups {
        for run in &members[0].dir.plan().runs {
            let covering: Vec<&&Input> = members
                .iter()
                .filter(|i| i.dir.plan().selected().any(|r| r.id == run.id))
                .collect();
            match covering.as_slice() {
                [] => problems.push(Problem::Missing {
                    group: group.clone(),
                    run_id: run.id.clone(),
                }),
                [one] => {
                    let planned = one.dir.plan().planned().any(|r| r.id == run.id);
                    if planned && !one.dir.completed().contains(&run.id) {
                        problems.push(Problem::NotRecorded {
                            group: group.clone(),
                            run_id: run.id.clone(),
                            folder: one.path.clone(),
                        });
                    }
                }
                several => problems.push(Problem::Duplicated {
                    group: group.clone(),
                    run_id: run.id.clone(),
                    folders: several.iter().map(|i| i.path.clone()).collect(),
                }),
            }
        }
    }
    problems
}

/// Each host's part: the runs its inputs selected, as its plan has them, and its calibration.
fn host_files(inputs: &[Input]) -> Vec<HostFiles> {
    let mut by_host: BTreeMap<&str, Vec<&Input>> = BTreeMap::new();
    for input in inputs {
        by_host.entry(&input.host).or_default().push(input);
    }
    by_host
        .into_iter()
        .map(|(host, members)| {
            let mut runs: BTreeMap<usize, RunPlan> = BTreeMap::new();
            for input in &members {
                for run in input.dir.plan().selected() {
                    runs.entry(run.index).or_insert_with(|| run.clone());
                }
            }
            let first = members[0];
            HostFiles {
                part: HostPart {
                    host: host.to_string(),
                    plan: Plan {
                        shard: None,
                        runs: runs.into_values().collect(),
                        ..first.dir.plan().clone()
                    },
                    calibration: members
                        .iter()
                        .find_map(|i| i.dir.hosts()[0].calibration.clone()),
                },
                machine_json: first.machine_json.clone(),
            }
        })
        .collect()
}

/// The merged plan: every run once, as the first host (by name) that covered it planned it.
fn merged_plan(hosts: &[HostFiles]) -> Plan {
    let mut runs: BTreeMap<usize, RunPlan> = BTreeMap::new();
    for h in hosts {
        for run in &h.part.plan.runs {
            runs.entry(run.index).or_insert_with(|| run.clone());
        }
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.part.host.as_str()).collect();
    Plan {
        machine: format!("merged: {}", names.join(", ")),
        shard: None,
        runs: runs.into_values().collect(),
        ..hosts[0].part.plan.clone()
    }
}

/// Every recorded line of every input, its host filled in, in plan order then host order.
fn merged_records(inputs: &[Input]) -> Vec<SweepRecord> {
    let mut records: Vec<SweepRecord> = inputs
        .iter()
        .flat_map(|input| {
            input.dir.records().iter().cloned().map(|mut r| {
                r.host.get_or_insert_with(|| input.host.clone());
                r
            })
        })
        .collect();
    records.sort_by(|a, b| (a.index, &a.host).cmp(&(b.index, &b.host)));
    records
}

/// Merges `inputs` into a new folder `out`. Refuses folders of another schema version or
/// scenario, and duplicated runs (nothing is written then); runs missing from the inputs are
/// returned as problems, the merged folder holding everything else.
pub fn merge(inputs: &[PathBuf], out: &Path, coverage: Coverage) -> Result<Merged, MergeError> {
    let inputs: Vec<Input> = inputs
        .iter()
        .map(|p| read_input(p))
        .collect::<Result<_, _>>()?;
    check_same_scenario(&inputs)?;
    let problems = coverage_problems(&inputs, coverage);
    let (duplicated, missing): (Vec<Problem>, Vec<Problem>) = problems
        .into_iter()
        .partition(|p| matches!(p, Problem::Duplicated { .. }));
    if !duplicated.is_empty() {
        let hosts: HashSet<&str> = inputs.iter().map(|i| i.host.as_str()).collect();
        let hint = if coverage == Coverage::Once && hosts.len() > 1 {
            "\nif each host ran the whole scenario (comparing machines), merge with --coverage per-host"
                .to_string()
        } else {
            String::new()
        };
        return Err(MergeError::Duplicated {
            problems: duplicated,
            hint,
        });
    }
    let hosts = host_files(&inputs);
    let plan = merged_plan(&hosts);
    let dir = ResultsDir::create_merged(
        out,
        &inputs[0].scenario,
        &plan,
        &hosts,
        merged_records(&inputs),
    )?;
    let warnings = inputs
        .iter()
        .flat_map(|i| i.dir.warnings().iter().cloned())
        .collect();
    Ok(Merged {
        dir,
        problems: missing,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_names_parse_and_others_are_refused_with_the_allowed_ones() {
        assert_eq!("once".parse(), Ok(Coverage::Once));
        assert_eq!("per-host".parse(), Ok(Coverage::PerHost));
        assert_eq!("per-cpu".parse(), Ok(Coverage::PerCpu));
        let err = "host".parse::<Coverage>().unwrap_err();
        assert!(err.contains("allowed: once, per-host, per-cpu"), "{err}");
    }

    #[test]
    fn problems_name_the_run_and_the_folders() {
        let p = Problem::Duplicated {
            group: "host a".into(),
            run_id: "tiny q4_k".into(),
            folders: vec!["x/a-1".into(), "y/a-1".into()],
        };
        assert_eq!(
            p.to_string(),
            "duplicated (host a): tiny q4_k: in x/a-1 and y/a-1"
        );
        let p = Problem::NotRecorded {
            group: String::new(),
            run_id: "r".into(),
            folder: "s/h-2".into(),
        };
        assert_eq!(
            p.to_string(),
            "missing: r: planned but not recorded in s/h-2 (continue it with llamaperf sweep --resume s/h-2)"
        );
    }
}
