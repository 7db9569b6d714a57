//! A sweep as a Slurm job array: task I of N runs shard I/N of the scenario on a whole node,
//! into `<out>/<host>-<I>`, and resumes that folder when the task is submitted again.

use std::path::PathBuf;

/// Why a job array cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// A value that would break the `#SBATCH` line it goes in.
    #[error("--{flag} '{value}' is not allowed: {allowed}")]
    BadValue {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// More shards than runs.
    #[error("--shards {shards} but the scenario has {runs} run{}: at most {runs} shards", if *.runs == 1 { "" } else { "s" })]
    TooManyShards {
        /// Shards asked for.
        shards: usize,
        /// Runs in the scenario.
        runs: usize,
    },
}

/// Everything the sbatch script of a sweep says. Paths are absolute, so the script works from
/// any directory of any node that shares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayJob {
    /// The `llamaperf` binary the nodes run.
    pub llamaperf: PathBuf,
    /// The scenario file.
    pub scenario: PathBuf,
    /// The scenario's name (the job is called `llamaperf-<name>`).
    pub name: String,
    /// Array tasks = shards, >= 1.
    pub shards: usize,
    /// The shared folder that receives one results folder per task and the tasks' logs.
    pub out: PathBuf,
    /// Slurm partition.
    pub partition: Option<String>,
    /// Nodes the tasks may run on (Slurm node list).
    pub nodelist: Option<String>,
    /// Node features required (Slurm constraint expression).
    pub constraint: Option<String>,
    /// Time limit of each task, in a Slurm time format (`minutes`, `HH:MM:SS`, `D-HH:MM`, ...).
    pub time: Option<String>,
    /// `--max-runs` of each task's sweep, when the user lifted the default limit.
    pub max_runs: Option<usize>,
}

/// Refuses values that cannot stand in an `#SBATCH` line: empty, whitespace, quotes, `#`.
fn directive_value(flag: &'static str, value: &str) -> Result<(), SlurmError> {
    let bad = value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '#'));
    if bad {
        return Err(SlurmError::BadValue {
            flag,
            value: value.to_string(),
            allowed: "a non-empty value without spaces, quotes or #",
        });
    }
    Ok(())
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl ArrayJob {
    /// Checks what the `#SBATCH` lines and the array need: shards in 1..=runs, directive
    /// values without spaces or quotes, a time limit of digits, `-` and `:`, an output folder
    /// without whitespace or `%` (Slurm's file-name patterns).
    pub fn validate(&self, runs: usize) -> Result<(), SlurmError> {
        if self.shards == 0 {
            return Err(SlurmError::BadValue {
                flag: "shards",
                value: "0".into(),
                allowed: "1 or more",
            });
        }
        if self.shards > runs {
            return Err(SlurmError::TooManyShards {
                shards: self.shards,
                runs,
            });
        }
        for (flag, value) in [
            ("partition", &self.partition),
            ("nodelist", &self.nodelist),
            ("constraint", &self.constraint),
        ] {
            if let Some(v) = value {
                directive_value(flag, v)?;
            }
        }
        if let Some(t) = &self.time {
            let ok = t.starts_with(|c: char| c.is_ascii_digit())
                && t.chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == ':');
            if !ok {
                return Err(SlurmError::BadValue {
                    flag: "time",
                    value: t.clone(),
                    allowed: "a Slurm time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS",
                });
            }
        }
        let out = self.out.to_string_lossy();
        if out.chars().any(|c| c.is_whitespace() || c == '%') {
            return Err(SlurmError::BadValue {
                flag: "out",
                value: out.into_owned(),
                allowed: "a folder path without whitespace or % (it names the tasks' log files)",
            });
        }
        Ok(())
    }

    /// Where the script is written: `<out>/llamaperf-<name>.sbatch`.
    pub fn script_path(&self) -> PathBuf {
        self.out.join(format!("llamaperf-{}.sbatch", self.name))
    }

    /// The sbatch script.
    pub fn render(&self) -> String {
        let out = self.out.display().to_string();
        let mut s = String::from("#!/bin/bash\n");
        let mut directive = |line: String| s.push_str(&format!("#SBATCH {line}\n"));
        directive(format!("--job-name=llamaperf-{}", self.name));
        directive(format!("--array=1-{}", self.shards));
        directive("--nodes=1".into());
        directive("--ntasks=1".into());
        directive("--exclusive".into());
        directive("--mem=0".into());
        directive(format!("--output={out}/slurm-%A_%a.out"));
        for (flag, value) in [
            ("partition", &self.partition),
            ("nodelist", &self.nodelist),
            ("constraint", &self.constraint),
            ("time", &self.time),
        ] {
            if let Some(v) = value {
                directive(format!("--{flag}={v}"));
            }
        }
        s.push_str(&format!(
            r#"# Written by llamaperf slurm. Task I of this array runs shard I/{shards} of the scenario on a
# whole node into {out}/<host>-<I>; submitted again, a task resumes its folder on that host,
# so only the runs missing there are executed.
set -euo pipefail
llamaperf={bin}
scenario={scenario}
shard="${{SLURM_ARRAY_TASK_ID:?submit this script with sbatch}}"
out={out_q}/"$(hostname -s)-${{shard}}"
if [ -f "$out/plan.json" ]; then
  exec "$llamaperf" sweep --resume "$out"
fi
if [ -e "$out" ]; then
  # An earlier attempt stopped before its plan was written: keep it aside, start again.
  mkdir -p {out_q}/.incomplete
  mv "$out" {out_q}/.incomplete/"$(hostname -s)-${{shard}}-${{SLURM_JOB_ID:-$$}}"
fi
exec "$llamaperf" sweep "$scenario" --shard "${{shard}}/{shards}" --out "$out"{max_runs}
"#,
            shards = self.shards,
            max_runs = self
                .max_runs
                .map_or(String::new(), |n| format!(" --max-runs {n}")),
            bin = quote(&self.llamaperf.display().to_string()),
            scenario = quote(&self.scenario.display().to_string()),
            out_q = quote(&out),
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> ArrayJob {
        ArrayJob {
            llamaperf: "/opt/llamaperf/bin/llamaperf".into(),
            scenario: "/home/lab/scenarios/ci-smoke.toml".into(),
            name: "ci-smoke".into(),
            shards: 4,
            out: "/shared/sweeps/ci".into(),
            partition: Some("cpu".into()),
            nodelist: None,
            constraint: Some("epyc&nps4".into()),
            time: Some("02:00:00".into()),
            max_runs: None,
        }
    }

    #[test]
    fn the_script_is_an_exclusive_array_of_one_task_per_shard() {
        let script = job().render();
        let directives: Vec<&str> = script
            .lines()
            .filter_map(|l| l.strip_prefix("#SBATCH "))
            .collect();
        assert_eq!(
            directives,
            [
                "--job-name=llamaperf-ci-smoke",
                "--array=1-4",
                "--nodes=1",
                "--ntasks=1",
                "--exclusive",
                "--mem=0",
                "--output=/shared/sweeps/ci/slurm-%A_%a.out",
                "--partition=cpu",
                "--constraint=epyc&nps4",
                "--time=02:00:00",
            ]
        );
        assert!(script.starts_with("#!/bin/bash\n"));
        assert!(script.contains("\nset -euo pipefail\n"));
        assert!(script.contains(r#"out='/shared/sweeps/ci'/"$(hostname -s)-${shard}""#));
        assert!(script.contains(r#"exec "$llamaperf" sweep --resume "$out""#));
        assert!(script
            .contains(r#"exec "$llamaperf" sweep "$scenario" --shard "${shard}/4" --out "$out""#));
        assert!(script.contains("scenario='/home/lab/scenarios/ci-smoke.toml'\n"));
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        let mut j = job();
        j.scenario = "/home/o'brien/my scenario.toml".into();
        assert!(j
            .render()
            .contains(r#"scenario='/home/o'\''brien/my scenario.toml'"#));
    }

    #[test]
    fn values_that_would_break_a_directive_are_refused_naming_the_flag() {
        let mut j = job();
        j.partition = Some("cpu debug".into());
        let err = j.validate(10).unwrap_err().to_string();
        assert!(
            err.starts_with("--partition 'cpu debug' is not allowed"),
            "{err}"
        );
        let mut j = job();
        j.time = Some("2h".into());
        let err = j.validate(10).unwrap_err().to_string();
        assert!(
            err.contains("--time '2h'") && err.contains("HH:MM:SS"),
            "{err}"
        );
        let mut j = job();
        j.out = "/shared/100%".into();
        assert!(j.validate(10).unwrap_err().to_string().starts_with("--out"));
        assert!(job().validate(10).is_ok());
    }

    #[test]
    fn more_shards_than_runs_are_refused() {
        let err = job().validate(3).unwrap_err().to_string();
        assert_eq!(
            err,
            "--shards 4 but the scenario has 3 runs: at most 3 shards"
        );
        assert!(job().validate(4).is_ok());
        let mut j = job();
        j.shards = 0;
        assert_eq!(
            j.validate(4).unwrap_err().to_string(),
            "--shards '0' is not allowed: 1 or more"
        );
    }
}
