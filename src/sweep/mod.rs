//! Orchestration: every measurement runs in its own worker process.

pub mod progress;
pub mod runner;
pub mod slurm;
pub mod worker;
