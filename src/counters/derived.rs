//! Metrics derived from a phase's counters.

use super::{CounterKind, PhaseCounts};
use serde::{Deserialize, Serialize};

/// Derived metrics of one phase; `None` where an input counter is missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Derived {
    /// Instructions per cycle.
    pub ipc: Option<f64>,
    /// LLC read misses per 1000 instructions.
    pub llc_mpki: Option<f64>,
    /// Cycles per second of CPU time: the effective clock, GHz.
    pub effective_ghz: Option<f64>,
    /// CPU time / (wall time x threads): 1.0 when every thread computed all the time.
    pub cpu_utilization: Option<f64>,
    /// DRAM traffic of the whole machine during the phase, GB/s.
    pub dram_gb_s: Option<f64>,
}

impl Derived {
    /// Derives from `counts` measured over `wall_s` seconds with `threads` compute threads.
    pub fn of(counts: &PhaseCounts, wall_s: f64, threads: usize) -> Self {
        let c = |k| counts.get(k);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let task_s = c(CounterKind::TaskClock).map(|ns| ns / 1e9);
        Derived {
            ipc: ratio(c(CounterKind::Instructions), c(CounterKind::Cycles)),
            llc_mpki: ratio(
                c(CounterKind::LlcReadMisses).map(|m| m * 1000.0),
                c(CounterKind::Instructions),
            ),
            effective_ghz: ratio(c(CounterKind::Cycles).map(|x| x / 1e9), task_s),
            cpu_utilization: ratio(task_s, Some(wall_s * threads as f64)),
            dram_gb_s: ratio(counts.dram_bytes.map(|b| b / 1e9), Some(wall_s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_from_known_counts() {
        let mut counts = PhaseCounts::default();
        counts.counts.insert(CounterKind::Cycles, 3e9);
        counts.counts.insert(CounterKind::Instructions, 6e9);
        counts.counts.insert(CounterKind::LlcReadMisses, 1.2e6);
        counts.counts.insert(CounterKind::TaskClock, 1.5e9);
        counts.dram_bytes = Some(30e9);
        let d = Derived::of(&counts, 1.0, 2);
        assert_eq!(d.dram_gb_s, Some(30.0));
        assert_eq!(d.ipc, Some(2.0));
        assert_eq!(d.llc_mpki, Some(0.2));
        assert_eq!(d.effective_ghz, Some(2.0));
        assert_eq!(d.cpu_utilization, Some(0.75));
    }

    #[test]
    fn missing_inputs_give_none_not_zero() {
        let mut counts = PhaseCounts::default();
        counts.counts.insert(CounterKind::TaskClock, 1e9);
        let d = Derived::of(&counts, 1.0, 1);
        assert_eq!(
            (d.ipc, d.llc_mpki, d.effective_ghz, d.dram_gb_s),
            (None, None, None, None)
        );
        assert_eq!(d.cpu_utilization, Some(1.0));
    }
}
