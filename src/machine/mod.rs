//! The machine: its topology (hwloc), placement of runs on it, and binding of a worker to its
//! placement.

pub mod binding;
pub mod cpu_time;
pub mod cpulist;
pub mod environment;
pub mod memory;
pub mod placement;
pub mod process;
pub mod quiet;
pub mod topology;

pub use placement::{place, InstancePlacement, PlacementRequest, SkipReason};
pub use topology::{Machine, PlacementShape, TopologySource};

/// What can go wrong with topologies, placement values and binding.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// A topology could not be loaded.
    #[error("topology {source_text}: {reason}")]
    BadTopology {
        /// The `--topology` value.
        source_text: String,
        /// What hwloc said.
        reason: String,
    },
    /// A placement value is not allowed.
    #[error("{key} = '{value}' is not allowed; allowed: {allowed}")]
    BadValue {
        /// The key (`cores`, `smt`, `placement`, `memory`, `nps`).
        key: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: String,
    },
    /// A run was asked to execute on a topology that is not this machine.
    #[error("--topology {topology} is not this machine: run can only plan there (it would use {placement})")]
    OtherMachine {
        /// The topology given.
        topology: String,
        /// The placement it would get.
        placement: String,
    },
    /// Binding to the placement failed.
    #[error("binding failed: {0}")]
    Binding(String),
}

impl MachineError {
    /// Whether the user can fix it by changing an argument.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, MachineError::Binding(_))
    }
}
