//! Orchestration: every measurement runs in its own worker process.

pub mod child;
pub mod plan;
pub mod progress;
pub mod runner;
pub mod slurm;
