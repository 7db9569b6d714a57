//! The results folder of a sweep: its writers and readers. The layout, each file's contents
//! and versions are described once, in docs/results.md.
//!
//! Every file carries `schema_version` ([`crate::schema`]); a folder of an unknown version is
//! refused, and `plan.json` and `runs.jsonl` of version 1 are still read. A run is recorded
//! when the line that completes it ([`record::SweepRecord::completes_run`]) is in
//! `runs.jsonl`; an interrupted write leaves at most a partial last line, which resuming drops
//! together with the run's other lines.

pub mod history;
pub mod merge;
pub mod metrics;
pub mod record;
pub mod requests;
pub mod runs_v1;
pub mod store;
pub mod summary;

pub use record::{Outcome, SweepRecord};
pub use store::{ResultsDir, ResultsError};
