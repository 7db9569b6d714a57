//! Versions of what llamaperf writes and reads: the worker's RunSpec / RunRecord JSON and the
//! files of a results folder (docs/results.md). A reader refuses a version it does not know
//! with both numbers in the message.

/// Version of the results files other than `plan.json` and `runs.jsonl` (`machine.json`,
/// `summary.csv`, `tokens.csv`, `calibration.json`); bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Version of a `runs.jsonl` line: 2 holds the run once, in its spec; 1 held it three times
/// (`run_id`, `config` and the record's spec), and is still read.
pub const RUNS_VERSION: u32 = 2;

/// Version of `plan.json`: 2 holds each planned instance's complete RunSpec; 1 held its
/// placement only, and is still read (the specs are rebuilt from the run's configuration).
pub const PLAN_VERSION: u32 = 2;
