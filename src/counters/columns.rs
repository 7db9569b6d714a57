//! The counter columns of one phase, in the order `summary.csv` writes them after the phase's
//! prefix (`prefill_`, `decode_`): raw counts and what [`Derived`] makes of them.

use super::derived::Derived;
use super::{CounterKind, PhaseCounts};

/// One per-phase counter column: a counted event or a rate derived from the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseColumn {
    /// A raw count, summed over threads and measured repetitions.
    Count(CounterKind),
    /// Instructions per cycle.
    Ipc,
    /// LLC read misses per 1000 instructions.
    LlcMpki,
    /// Cycles per second of CPU time, GHz.
    EffectiveGhz,
    /// CPU time / (wall time x threads).
    CpuUtilization,
    /// Machine-wide DRAM traffic (uncore events), GB/s.
    DramGbS,
}

impl PhaseColumn {
    /// Every column, in `summary.csv` order.
    pub const ALL: [PhaseColumn; 16] = [
        PhaseColumn::Count(CounterKind::Cycles),
        PhaseColumn::Count(CounterKind::Instructions),
        PhaseColumn::Ipc,
        PhaseColumn::LlcMpki,
        PhaseColumn::EffectiveGhz,
        PhaseColumn::CpuUtilization,
        PhaseColumn::Count(CounterKind::TaskClock),
        PhaseColumn::Count(CounterKind::PageFaults),
        PhaseColumn::Count(CounterKind::ContextSwitches),
        PhaseColumn::Count(CounterKind::CpuMigrations),
        PhaseColumn::DramGbS,
        PhaseColumn::Count(CounterKind::CacheReferences),
        PhaseColumn::Count(CounterKind::CacheMisses),
        PhaseColumn::Count(CounterKind::LlcReadMisses),
        PhaseColumn::Count(CounterKind::BranchMisses),
        PhaseColumn::Count(CounterKind::StalledCyclesBackend),
    ];

    /// The column's name without the phase prefix.
    pub fn name(self) -> &'static str {
        match self {
            PhaseColumn::Count(kind) => kind.name(),
            PhaseColumn::Ipc => "ipc",
            PhaseColumn::LlcMpki => "llc_mpki",
            PhaseColumn::EffectiveGhz => "effective_ghz",
            PhaseColumn::CpuUtilization => "cpu_utilization",
            PhaseColumn::DramGbS => "dram_gb_s",
        }
    }

    /// The unit of its values.
    pub fn unit(self) -> &'static str {
        match self {
            PhaseColumn::Count(CounterKind::TaskClock) => "ns",
            PhaseColumn::Count(CounterKind::Cycles | CounterKind::StalledCyclesBackend) => "cycles",
            PhaseColumn::Count(_) => "count",
            PhaseColumn::Ipc => "instructions/cycle",
            PhaseColumn::LlcMpki => "misses/1000 instructions",
            PhaseColumn::EffectiveGhz => "GHz",
            PhaseColumn::CpuUtilization => "ratio",
            PhaseColumn::DramGbS => "GB/s",
        }
    }

    /// What it counts, in one line.
    pub fn definition(self) -> &'static str {
        match self {
            PhaseColumn::Count(kind) => match kind {
                CounterKind::Cycles => "core cycles",
                CounterKind::Instructions => "retired instructions",
                CounterKind::CacheReferences => "cache references",
                CounterKind::CacheMisses => "cache misses",
                CounterKind::LlcReadMisses => "LLC read misses",
                CounterKind::BranchMisses => "mispredicted branches",
                CounterKind::StalledCyclesBackend => "back-end stall cycles",
                CounterKind::TaskClock => "CPU time of all threads",
                CounterKind::PageFaults => "page faults",
                CounterKind::ContextSwitches => "context switches",
                CounterKind::CpuMigrations => "CPU migrations",
            },
            PhaseColumn::Ipc => "instructions per cycle, waiting pool threads' spinning included",
            PhaseColumn::LlcMpki => {
                "LLC read misses per 1000 instructions, waiting pool threads' spinning included"
            }
            PhaseColumn::EffectiveGhz => "effective clock (cycles per second of CPU time)",
            PhaseColumn::CpuUtilization => "CPU time / (wall time x threads)",
            PhaseColumn::DramGbS => "machine-wide DRAM traffic (uncore events)",
        }
    }

    /// Its value in a phase's `counts` and their `derived` rates; `None` where the machine
    /// does not provide it.
    pub fn read(self, counts: &PhaseCounts, derived: &Derived) -> Option<f64> {
        match self {
            PhaseColumn::Count(kind) => counts.get(kind),
            PhaseColumn::Ipc => derived.ipc,
            PhaseColumn::LlcMpki => derived.llc_mpki,
            PhaseColumn::EffectiveGhz => derived.effective_ghz,
            PhaseColumn::CpuUtilization => derived.cpu_utilization,
            PhaseColumn::DramGbS => derived.dram_gb_s,
        }
    }
}
