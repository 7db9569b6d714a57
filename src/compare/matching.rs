//! Which lines of the base's folders and the candidate's folders measure the same run.
//!
//! A line is keyed by host (when matching host by host), run id and instance; aggregate lines
//! are left out (their instances are compared one by one). A run is matched when some folder
//! of each side has it; a folder of a side that lacks it contributes no sample. Comparing two
//! engines, each side keeps its engine's lines only, keyed by the run id without the engine
//! ([`crate::scenario::RunConfig::configuration_id`]).

use super::{CompareError, EnginePair};
use crate::results::{Outcome, ResultsDir, SweepRecord};

/// What matches lines across folders: host (when matching host by host), run id and instance.
pub type Key = (Option<String>, String, Option<usize>);

/// One run found on both sides: its key and the line of every folder that has it.
pub struct Matched<'a> {
    /// The host (when matching host by host), run id and instance.
    pub key: Key,
    /// The lines of the base's folders that have the run, with the folder's index.
    pub base: Vec<(usize, &'a SweepRecord)>,
    /// The lines of the candidate's folders that have the run, with the folder's index.
    pub candidate: Vec<(usize, &'a SweepRecord)>,
}

/// The runs of both sides, matched.
pub struct Matching<'a> {
    /// Runs on both sides, in the order of the base's folders.
    pub matched: Vec<Matched<'a>>,
    /// Run ids in no folder of the candidate.
    pub only_in_base: Vec<String>,
    /// Run ids in no folder of the base.
    pub only_in_candidate: Vec<String>,
}

/// Whether lines are matched host by host: every folder holds several hosts (merged folders),
/// or none does; a mix is ambiguous.
pub fn by_host(folders: &[&ResultsDir]) -> Result<bool, CompareError> {
    let multi = folders.iter().find(|f| f.hosts().len() > 1);
    let single = folders.iter().find(|f| f.hosts().len() <= 1);
    match (multi, single) {
        (Some(multi), Some(single)) => Err(CompareError::MixedHosts {
            folder: multi.path().display().to_string(),
            hosts: multi.hosts().len(),
            other: single.path().display().to_string(),
        }),
        (multi, _) => Ok(multi.is_some()),
    }
}

/// The keyed lines of a side's folders that carry a run's own measurement, with the folder's
/// index; with `engine`, that engine's lines only, keyed without it.
fn measured<'a>(
    folders: &'a [ResultsDir],
    by_host: bool,
    engine: Option<&str>,
) -> Vec<(Key, usize, &'a SweepRecord)> {
    folders
        .iter()
        .enumerate()
        .flat_map(|(i, folder)| folder.records().iter().map(move |r| (i, r)))
        .filter(|(_, r)| !matches!(r.outcome, Outcome::Aggregate { .. }))
        .filter(|(_, r)| engine.is_none_or(|e| r.config().engine_label() == e))
        .map(|(i, r)| {
            let host = by_host.then(|| r.host.clone().unwrap_or_default());
            let id = match engine {
                Some(_) => r.config().configuration_id(),
                None => r.run_id(),
            };
            ((host, id, r.instance), i, r)
        })
        .collect()
}

/// The engines of the runs measured in `folders`, in the order first found.
pub fn engines(folders: &[ResultsDir]) -> Vec<String> {
    let mut engines: Vec<String> = Vec::new();
    for r in folders.iter().flat_map(|f| f.records()) {
        let engine = r.config().engine_label();
        if matches!(r.outcome, Outcome::Ok { .. }) && !engines.contains(&engine) {
            engines.push(engine);
        }
    }
    engines
}

/// The distinct keys of `lines`, in order.
fn keys(lines: &[(Key, usize, &SweepRecord)]) -> Vec<Key> {
    let mut keys: Vec<Key> = Vec::new();
    for (key, _, _) in lines {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// The run ids of `ours` with no line of the same host and run id in `theirs`, each once.
fn only(ours: &[Key], theirs: &[Key]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (host, id, _) in ours {
        let elsewhere = theirs.iter().any(|(h, i, _)| (h, i) == (host, id));
        if !elsewhere && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// Matches the runs of `base`'s folders with those of `candidate`'s; with `engines`, the base
/// engine's runs of `base` with the candidate engine's runs of `candidate`.
pub fn match_runs<'a>(
    base: &'a [ResultsDir],
    candidate: &'a [ResultsDir],
    by_host: bool,
    engines: Option<&EnginePair>,
) -> Matching<'a> {
    let (base_lines, cand_lines) = (
        measured(base, by_host, engines.map(|e| e.base.as_str())),
        measured(candidate, by_host, engines.map(|e| e.candidate.as_str())),
    );
    let (base_keys, cand_keys) = (keys(&base_lines), keys(&cand_lines));
    let lines_of = |lines: &[(Key, usize, &'a SweepRecord)], key: &Key| {
        lines
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|&(_, i, r)| (i, r))
            .collect::<Vec<_>>()
    };
    let matched = base_keys
        .iter()
        .filter(|key| cand_keys.contains(key))
        .map(|key| Matched {
            key: key.clone(),
            base: lines_of(&base_lines, key),
            candidate: lines_of(&cand_lines, key),
        })
        .collect();
    Matching {
        matched,
        only_in_base: only(&base_keys, &cand_keys),
        only_in_candidate: only(&cand_keys, &base_keys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: Option<&str>, id: &str, instance: Option<usize>) -> Key {
        (host.map(String::from), id.into(), instance)
    }

    #[test]
    fn keys_are_distinct_in_order_and_unmatched_ids_listed_once() {
        let ours = [
            key(None, "a", None),
            key(None, "b", Some(0)),
            key(None, "b", Some(1)),
            key(None, "c", None),
        ];
        let theirs = [key(None, "a", None), key(None, "b", Some(0))];
        assert_eq!(only(&ours, &theirs), ["c"]);
        assert!(only(&theirs, &ours).is_empty());
        let hosts = [key(Some("h1"), "a", None), key(Some("h2"), "a", None)];
        assert_eq!(only(&hosts, &[key(Some("h1"), "a", None)]), ["a"]);
    }
}
