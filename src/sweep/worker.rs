//! Worker processes: one `llamaperf worker` per instance of a run, a RunSpec in, a RunRecord
//! out, through the JSON child protocol of [`crate::child`].

use crate::child::{ChildError, JsonChild, Limits};
use crate::measure::record::RunRecord;
use crate::planning::spec::RunSpec;

/// Starts a worker for `spec` and sends it the spec; its thread pools get one thread per PU.
pub fn spawn_worker(spec: &RunSpec) -> Result<JsonChild, ChildError> {
    JsonChild::spawn("worker", "worker", spec.threads(), spec)
}

/// Runs `spec` in a worker process (no time limit) and returns its record.
pub fn run_in_child(spec: &RunSpec) -> Result<RunRecord, ChildError> {
    spawn_worker(spec)?.finish(Limits::none())
}
