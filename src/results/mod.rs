//! The results folder of a sweep: its layout, schema, writers and readers.
//!
//! ```text
//! results/<scenario>-<UTC timestamp>/
//!   scenario.toml   the scenario file as run
//!   machine.json    topology, CPU, kernel, governor, THP, memory, versions, git commit
//!   plan.json       every planned run, skipped ones with their reason
//!   runs.jsonl      one SweepRecord per line, appended, flushed and synced as each run ends
//!   tokens.csv      per-step latencies: run, instance, repetition, step, phase, ms
//!   summary.csv     one row per run (and instance), rewritten atomically after each run
//! ```
//!
//! Every line names its host. A folder written by [`merge`] has the same files for all its
//! hosts (the top-level `machine.json` and `calibration.json` are the first host's) and
//! `hosts/<host>/{machine.json, plan.json, calibration.json}`: each host's machine, the runs it
//! executed or skipped, and the calibration its rows are computed against.
//!
//! Every file carries `schema_version` ([`crate::schema::SCHEMA_VERSION`]); a folder of
//! another version is refused. A run is recorded when the line that completes it
//! ([`record::SweepRecord::completes_run`]) is in `runs.jsonl`; an interrupted write leaves
//! at most a partial last line, which resuming drops together with the run's other lines.

pub mod merge;
pub mod metrics;
pub mod record;
pub mod store;
pub mod summary;

pub use record::{Outcome, SweepRecord};
pub use store::{ResultsDir, ResultsError};
