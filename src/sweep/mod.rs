//! Orchestration: every measurement runs in its own worker process.

pub mod child;
