//! llamaperf: performance characterization of Llama-family inference on CPUs.
//!
//! The library holds every pipeline stage (see `DESIGN.md` of the project and the README's
//! architecture section); the `llamaperf` binary is a thin command-line layer over it.
//!
//! - [`model`]: presets with true shapes, synthetic GGUF files and their cache, local GGUF files.
//! - [`engine`]: the Llama forward pass (`tuned`) and the candle-transformers oracle (`reference`).
//! - [`measure`]: the run specification, the timed generation loop, statistics and the run record.
//! - [`scenario`]: scenario files, validation, matrix expansion.
//! - [`sweep`]: orchestration of measurement in child processes.
//! - [`machine`]: the machine a run executes on.
//! - [`results`]: the results folder of a sweep.
//! - [`compare`]: a baseline results folder against a candidate, with a noise-aware verdict.
//! - [`plan`]: capacity planning: memory per instance, packing, throughput, SLOs, machines.
//! - [`report`]: charts and the Markdown report of results folders.

pub mod calibrate;
pub mod compare;
pub mod counters;
pub mod engine;
pub mod machine;
pub mod measure;
pub mod model;
pub mod plan;
pub mod report;
pub mod results;
pub mod scenario;
pub mod sweep;
