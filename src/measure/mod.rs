//! Measurement: what a run is ([`spec::RunSpec`]), the timed generation loop, the metrics and
//! statistics of DESIGN.md, and what a run produced ([`record::RunRecord`]).

pub mod generation;
pub mod metrics;
pub mod prompt;
pub mod read_share;
pub mod record;
pub mod roofline;
pub mod spec;
pub mod stats;
pub mod worker;

/// Version of the RunSpec / RunRecord JSON schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;
