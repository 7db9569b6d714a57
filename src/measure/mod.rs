//! Measurement: the worker's timed generation loop over an engine, the metrics and statistics
//! of docs/metrics.md, and what a run produced ([`record::RunRecord`]).

pub mod energy;
pub mod engine_load;
pub mod generation;
pub mod metrics;
pub mod prompt;
pub mod read_share;
pub mod record;
pub mod requests;
pub mod roofline;
pub mod stats;
pub mod worker;
