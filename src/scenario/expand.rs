//! Expansion of a scenario into run configurations: defaults, the matrix's cartesian product,
//! excludes, then includes.

use super::config::{Key, RunConfig, Value};
use super::{Entry, Scenario, ScenarioError};

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

/// Every run of `scenario`, in matrix order (the first key varies slowest) then includes.
/// GGUF-file models ignore `dtype`, so their dtype variants collapse into one run; an include
/// that repeats a run is an error.
pub fn expand(scenario: &Scenario) -> Result<Vec<RunConfig>, ScenarioError> {
    let mut base = RunConfig::default();
    apply(&mut base, &scenario.defaults.values);
    let mut combos: Vec<RunConfig> = vec![base.clone()];
    for (key, values) in &scenario.matrix {
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
    let mut runs: Vec<RunConfig> = Vec::new();
    for mut c in combos {
        c.normalize();
        if !scenario.excludes.iter().any(|e| matches(&c, e)) && !runs.contains(&c) {
            runs.push(c);
        }
    }
    if scenario.matrix.is_empty() && !scenario.includes.is_empty() {
        runs.clear();
    }
    for include in &scenario.includes {
        let mut c = base.clone();
        apply(&mut c, &include.values);
        c.normalize();
        if let Some(other) = runs.iter().find(|r| r.id() == c.id()) {
            return Err(ScenarioError {
                file: scenario.path.clone(),
                line: include.line,
                column: 1,
                message: format!("duplicate run: this [[include]] repeats '{}'", other.id()),
            });
        }
        runs.push(c);
    }
    Ok(runs)
}
