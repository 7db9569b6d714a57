//! Worker processes: one `llamaperf worker` per instance of a run, a RunSpec in, a RunRecord
//! out, through the JSON child protocol of [`crate::child`].

use crate::child::{ChildError, JsonChild};
use crate::planning::spec::RunSpec;

/// Starts a worker for `spec` and sends it the spec; its thread pools get one thread per PU.
pub fn spawn_worker(spec: &RunSpec) -> Result<JsonChild, ChildError> {
    JsonChild::spawn("worker", "worker", spec.threads(), spec)
}
