//! llamaperf: performance characterization of Llama-family inference on CPUs.
//!
//! The library holds every pipeline stage, in the order data flows (docs/development.md); a
//! stage imports only the ones before it. The `llamaperf` binary is a thin command-line layer
//! over it, and the engines are the crate `llamaperf-engine`, re-exported as [`engine`], and
//! llama.cpp's, `llamaperf-llama-cpp`, re-exported as [`llama_cpp`].
//!
//! - [`schema`]: versions of the worker's JSON and of the results files.
//! - [`interrupt`]: SIGINT/SIGTERM as a flag that long loops poll.
//! - [`child`]: JSON child processes (worker, calibration): deadline, process group, stderr tail.
//! - [`model`]: presets with true shapes, synthetic GGUF files and their cache, local GGUF files.
//! - [`machine`]: the machine a run executes on: topology, placement, binding, environment.
//! - [`counters`]: perf-event counters per phase, derived rates, uncore.
//! - [`calibrate`]: the machine's ceilings: read bandwidth and GEMM throughput.
//! - [`torch`]: engine `torch`: its settings, its Python environments, and the Python worker
//!   process driven forward by forward.
//! - [`scenario`]: scenario files, validation, matrix expansion into run configurations.
//! - [`planning`]: run configurations on a machine into run plans and their RunSpecs.
//! - [`measure`]: the worker's timed generation loop, statistics and the run record.
//! - [`serve`]: engine `openai`: a server started or reached per run, its load of streaming
//!   requests timed as clients see them.
//! - [`results`]: the results folder of a sweep: writers, readers, summary, merge.
//! - [`sweep`]: execution of a plan in pinned worker processes; Slurm job arrays.
//! - [`report`]: charts and the Markdown report of results folders.
//! - [`compare`]: a baseline results folder against a candidate, with a noise-aware verdict.
//! - [`plan`]: capacity planning: memory per instance, packing, throughput, SLOs, machines.

#![forbid(unsafe_code)]

pub use llamaperf_engine as engine;
pub use llamaperf_llama_cpp as llama_cpp;

pub mod calibrate;
pub mod child;
pub mod compare;
pub mod counters;
pub mod interrupt;
pub mod machine;
pub mod measure;
pub mod model;
pub mod plan;
pub mod planning;
pub mod report;
pub mod results;
pub mod scenario;
pub mod schema;
pub mod serve;
pub mod sweep;
pub mod torch;
