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

/// The note a run's record carries when IPC or LLC MPKI were derived over `threads` > 1 compute
/// threads: the pool's threads spin while they wait for their next parallel step (the engine's
/// thread team, as llama.cpp's), so the waiting's instructions and cycles are in the counts.
/// Leaving them out would take counter switches (system calls) by every thread at every meeting
/// point (about 5 per layer), inside the steps being measured.
pub fn waiting_note(phases: [&Derived; 2], threads: usize) -> Option<String> {
    let derived = phases
        .iter()
        .any(|d| d.ipc.is_some() || d.llc_mpki.is_some());
    (derived && threads > 1).then(|| {
        "ipc, llc_mpki: counted over every compute thread, waiting included: pool threads spin \
         between a pass's parallel steps (and yield when a wait is long), so these describe the \
         whole pool, not the kernels alone"
            .to_string()
    })
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
    fn ipc_over_several_threads_says_that_it_includes_waiting() {
        let with_ipc = Derived {
            ipc: Some(1.5),
            ..Derived::default()
        };
        let without = Derived::default();
        let note = waiting_note([&without, &with_ipc], 2).expect("a note");
        assert!(
            note.starts_with("ipc, llc_mpki: ") && note.contains("spin"),
            "{note}"
        );
        assert_eq!(
            waiting_note([&with_ipc, &with_ipc], 1),
            None,
            "nobody waits"
        );
        assert_eq!(
            waiting_note([&without, &without], 4),
            None,
            "no ipc, no note"
        );
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
