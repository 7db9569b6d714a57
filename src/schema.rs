//! Versions of what llamaperf writes and reads: the worker's RunSpec / RunRecord JSON and the
//! files of a results folder (docs/results.md). A reader refuses a version it does not know
//! with both numbers in the message.

/// Version of the RunSpec / RunRecord JSON and of the results files; bumped on any
/// incompatible change.
pub const SCHEMA_VERSION: u32 = 1;
