//! Expansion of a scenario into run configurations: defaults, the matrix's cartesian product,
//! excludes, then includes.

use super::config::{Key, RunConfig, Value};
use super::{Entry, Scenario, ScenarioError};
use crate::interrupt::{self, Interrupted};
use std::collections::{HashMap, HashSet};

fn matches(config: &RunConfig, entry: &Entry) -> bool {
    entry
        .values
        .iter()
        .all(|(k, v)| config.get(*k).as_ref() == Some(v))
}

fn apply(config: &mut RunConfig, values: &[(Key, Value)]) {
    for (k, v) in values {
        config.set(*k, v);
    }
}

/// The most runs a scenario may expand to unless the user lifts the limit (`--max-runs`): a
/// sweep of this many runs at a few seconds each already takes days, so more is a typo.
pub const DEFAULT_MAX_RUNS: usize = 100_000;

/// Runs expanded between two checks for SIGINT/SIGTERM.
const INTERRUPT_CHECK_EVERY: usize = 4096;

fn error(scenario: &Scenario, line: usize, message: String) -> ScenarioError {
    ScenarioError {
        file: scenario.path.clone(),
        line,
        column: 1,
        message,
    }
}

/// Every run of `scenario`, in matrix order (the first key varies slowest) then includes.
/// GGUF-file models ignore `dtype`, so their dtype variants collapse into one run; an include
/// that repeats a run is an error, and so is a matrix of more than `max_runs` combinations and
/// includes (checked before any is built). Time and memory grow linearly with the runs; SIGINT
/// or SIGTERM stops it ([`crate::interrupt`]).
pub fn expand(scenario: &Scenario, max_runs: usize) -> Result<Vec<RunConfig>, ScenarioError> {
    let combinations = scenario
        .matrix
        .iter()
        .fold(1usize, |n, (_, values)| n.saturating_mul(values.len()));
    let count = combinations.saturating_add(scenario.includes.len());
    if count > max_runs {
        let shown = if count == usize::MAX {
            "more than 2^64".to_string()
        } else {
            count.to_string()
        };
        return Err(error(
            scenario,
            0,
            format!(
                "the matrix and includes make {shown} runs (before excludes), more than the limit of \
                 {max_runs}; shorten the lists, or lift the limit with --max-runs {shown}"
            ),
        ));
    }
    let interrupted = || error(scenario, 0, Interrupted.to_string());
    let mut base = RunConfig::default();
    apply(&mut base, &scenario.defaults.values);
    let mut combos: Vec<RunConfig> = vec![base.clone()];
    for (key, values) in &scenario.matrix {
        interrupt::check().map_err(|_| interrupted())?;
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.set(*key, v);
                    c
                })
            })
            .collect();
    }
    let mut runs: Vec<RunConfig> = Vec::with_capacity(combos.len());
    let mut seen: HashSet<RunConfig> = HashSet::with_capacity(combos.len());
    for (i, mut c) in combos.into_iter().enumerate() {
        if i.is_multiple_of(INTERRUPT_CHECK_EVERY) {
            interrupt::check().map_err(|_| interrupted())?;
        }
        c.normalize();
        if !scenario.excludes.iter().any(|e| matches(&c, e)) && seen.insert(c.clone()) {
            runs.push(c);
        }
    }
    if scenario.matrix.is_empty() && !scenario.includes.is_empty() {
        runs.clear();
    }
    if scenario.includes.is_empty() {
        return Ok(runs);
    }
    let mut ids: HashMap<String, usize> =
        runs.iter().enumerate().map(|(i, r)| (r.id(), i)).collect();
    for include in &scenario.includes {
        let mut c = base.clone();
        apply(&mut c, &include.values);
        c.normalize();
        if let Some(&other) = ids.get(&c.id()) {
            return Err(error(
                scenario,
                include.line,
                format!(
                    "duplicate run: this [[include]] repeats '{}'",
                    runs[other].id()
                ),
            ));
        }
        ids.insert(c.id(), runs.len());
        runs.push(c);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse::parse;
    use std::path::Path;

    fn runs(text: &str) -> Vec<RunConfig> {
        expand(&parse(Path::new("t.toml"), text).unwrap(), DEFAULT_MAX_RUNS).unwrap()
    }

    #[test]
    fn torch_settings_name_the_engine_and_collapse_for_other_engines() {
        let r = runs(
            "name = \"t\"\n[matrix]\nmodel = [\"tiny\"]\nengine = [\"tuned\", \"torch\"]\n\
             torch_backend = [\"eager\", \"zentorch\"]\ntorch_dtype = [\"f32\"]\n",
        );
        let labels: Vec<String> = r.iter().map(RunConfig::engine_label).collect();
        assert_eq!(labels, ["tuned", "torch:eager:f32", "torch:zentorch:f32"]);
        assert!(r[2]
            .id()
            .starts_with("tiny q4_k torch:zentorch:f32 batch=1"));
        assert_eq!(r[1].configuration_id(), r[0].configuration_id());
        assert_eq!(r[1].kv_dtype_kept(), crate::model::KvDtype::F32);
        let e = parse(
            Path::new("t.toml"),
            "name = \"t\"\n[defaults]\ntorch_backend = \"ipx\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.toml:3") && e.contains("valid: eager, compile, ipex, zentorch"),
            "{e}"
        );
    }

    #[test]
    fn cartesian_product_with_defaults() {
        let r = runs(
            "name = \"t\"\n[defaults]\ngen_tokens = 7\n[matrix]\nmodel = [\"tiny\", \"llama-3.2-1b\"]\nbatch = [1, 2, 4]\ncores = [1, \"all\"]\n",
        );
        assert_eq!(r.len(), 12);
        assert!(r
            .iter()
            .all(|c| c.gen_tokens == 7 && c.prompt_tokens == 128));
        assert_eq!(
            (r[0].model.as_str(), r[0].batch, &r[0].cores),
            ("tiny", 1, &crate::machine::placement::CoreRequest::Count(1))
        );
        assert_eq!((r[11].model.as_str(), r[11].batch), ("llama-3.2-1b", 4));
    }

    #[test]
    fn excludes_drop_matching_runs_and_includes_add_runs() {
        let r = runs(
            "name = \"t\"\n[matrix]\nmodel = [\"tiny\", \"llama-3.2-1b\"]\ndtype = [\"q4_k\", \"f32\"]\nbatch = [1, 8]\n\
             [[exclude]]\nmodel = \"llama-3.2-1b\"\ndtype = \"f32\"\n\
             [[exclude]]\nbatch = 8\ndtype = \"q4_k\"\n\
             [[include]]\nmodel = \"llama-3.1-8b\"\nbatch = 16\nrepetitions = 9\n",
        );
        // 8 combinations - 2 (1b in f32) - 2 (batch 8 in q4_k) + 1 include.
        assert_eq!(r.len(), 5);
        let last = r.last().unwrap();
        assert_eq!(
            (last.model.as_str(), last.batch, last.repetitions),
            ("llama-3.1-8b", 16, 9)
        );
        assert!(!r
            .iter()
            .any(|c| c.model == "llama-3.2-1b" && c.dtype == Some(crate::model::WeightDtype::F32)));
    }

    #[test]
    fn file_models_ignore_dtype_so_their_variants_collapse() {
        let r = runs("name = \"t\"\n[matrix]\nmodel = [\"tiny\", \"./m.gguf\"]\ndtype = [\"q4_k\", \"q8_0\"]\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().filter(|c| c.dtype.is_none()).count(), 1);
    }

    #[test]
    fn run_ids_are_unique_and_name_every_axis() {
        let r = runs("name = \"t\"\n[matrix]\nmodel = [\"tiny\"]\nsmt = [\"off\", \"on\"]\nmemory = [\"local\", \"bind:0-1\"]\n");
        let ids: std::collections::HashSet<String> = r.iter().map(RunConfig::id).collect();
        assert_eq!(ids.len(), 4);
        assert!(ids.contains("tiny q4_k tuned batch=1 prompt=128 gen=32 cores=all smt=on compact bind:0-1 nps=any instances=1"));
        let engines = runs(
            "name = \"t\"\n[matrix]\nmodel = [\"tiny\"]\nengine = [\"tuned\", \"reference\"]\n",
        );
        assert_ne!(engines[0].id(), engines[1].id());
        assert_eq!(
            engines[0].configuration_id(),
            engines[1].configuration_id(),
            "the engine is all that differs"
        );
        assert_eq!(
            engines[1].configuration_id(),
            "tiny q4_k batch=1 prompt=128 gen=32 cores=all smt=off compact local nps=any instances=1"
        );
    }

    #[test]
    fn read_probe_is_a_setting_that_takes_a_boolean() {
        let r = runs("name = \"t\"\n[defaults]\nread_probe = true\n[matrix]\nmodel = [\"tiny\"]\n");
        assert!(r[0].read_probe);
        assert!(
            !r[0].id().contains("probe"),
            "a setting, not an axis of the run id"
        );
        assert!(!runs("name = \"t\"\n[matrix]\nmodel = [\"tiny\"]\n")[0].read_probe);
        let err = parse(
            Path::new("t.toml"),
            "name = \"t\"\n[defaults]\nread_probe = \"yes\"\n[matrix]\nmodel = [\"tiny\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("t.toml:3") && err.contains("read_probe") && err.contains("true, false"),
            "{err}"
        );
    }
}
