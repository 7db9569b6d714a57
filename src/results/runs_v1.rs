//! `runs.jsonl` lines of schema version 1, which held the run three times (`run_id`, `config`
//! and the record's own spec, with the spec's and the record's `schema_version`): still read,
//! as the version 2 line they describe.

use super::record::SweepRecord;
use crate::planning::{Plan, PlanStatus};
use crate::schema::RUNS_VERSION;
use serde_json::{Map, Value};

/// Fields of a version 1 record's spec that version 2 keeps in the spec (the others are the
/// configuration's, which the line held once more).
const SPEC_FIELDS: [&str; 4] = ["model", "prompt", "placement", "start_barrier"];

/// The version 2 line a version 1 `line` describes. A line without a record (a failure, an
/// aggregate) takes its instance's spec from `plan`.
pub fn migrate(line: Value, plan: &Plan) -> Result<SweepRecord, String> {
    let Value::Object(mut old) = line else {
        return Err("a line of runs.jsonl is not a JSON object".into());
    };
    let mut take = |key: &str| {
        old.remove(key)
            .ok_or(format!("version 1 line without `{key}`"))
    };
    let (run_id, config) = (take("run_id")?, take("config")?);
    old.remove("schema_version");
    let mut new = Map::new();
    new.insert("schema_version".into(), RUNS_VERSION.into());
    for key in ["index", "host", "instance"] {
        new.insert(key.into(), old.remove(key).unwrap_or(Value::Null));
    }
    let spec = match old.get_mut("record").and_then(Value::as_object_mut) {
        Some(record) => {
            record.remove("schema_version");
            let Some(Value::Object(old_spec)) = record.remove("spec") else {
                return Err("version 1 record without its spec".into());
            };
            let mut spec: Map<String, Value> = SPEC_FIELDS
                .iter()
                .filter_map(|k| old_spec.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            spec.insert("config".into(), config);
            Value::Object(spec)
        }
        None => {
            let instance = new["instance"].as_u64().unwrap_or(0) as usize;
            let planned = plan
                .runs
                .iter()
                .find(|r| Some(r.id.as_str()) == run_id.as_str());
            match planned.map(|r| &r.status) {
                Some(PlanStatus::Planned { specs, .. }) if instance < specs.len() => {
                    serde_json::to_value(&specs[instance]).map_err(|e| e.to_string())?
                }
                _ => return Err(format!("run {run_id} of a version 1 line is not planned")),
            }
        }
    };
    new.insert("spec".into(), spec);
    new.extend(old);
    serde_json::from_value(Value::Object(new)).map_err(|e| e.to_string())
}
