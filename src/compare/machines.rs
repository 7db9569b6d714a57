//! What differs between the machines two results folders were measured on.

use crate::machine::environment::MachineInfo;
use serde::{Deserialize, Serialize};

/// One property that differs between the base's and the candidate's machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineDifference {
    /// The property: cpu_model, packages, cores, usable_pus, nps, smt, kernel.
    pub property: String,
    /// Its value on the base's machine.
    pub base: String,
    /// Its value on the candidate's machine.
    pub candidate: String,
}

fn properties(m: &MachineInfo) -> [(&'static str, String); 7] {
    let t = &m.topology;
    [
        ("cpu_model", m.cpu_model.clone()),
        ("packages", t.packages.to_string()),
        ("cores", t.cores.len().to_string()),
        ("usable_pus", t.allowed_pus.len().to_string()),
        ("nps", m.nps.map_or("uneven".into(), |n| n.to_string())),
        ("smt", if m.smt_active { "on" } else { "off" }.into()),
        ("kernel", m.kernel.clone()),
    ]
}

/// The properties that change performance (CPU model, packages, cores, usable PUs, NPS, SMT,
/// kernel) whose values differ between `base` and `candidate`.
pub fn differences(base: &MachineInfo, candidate: &MachineInfo) -> Vec<MachineDifference> {
    properties(base)
        .into_iter()
        .zip(properties(candidate))
        .filter(|((_, b), (_, c))| b != c)
        .map(|((property, base), (_, candidate))| MachineDifference {
            property: property.into(),
            base,
            candidate,
        })
        .collect()
}
