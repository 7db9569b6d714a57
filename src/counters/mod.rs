//! Hardware and software counters per phase (prefill, decode), summed over every thread of the
//! worker, with multiplexed counts scaled by time enabled / time running.
//!
//! A counter the machine cannot provide (no PMU in a VM, `perf_event_paranoid` too high) is
//! `None` in the results — never 0 — and explained once in the run's notes.

pub mod derived;

use perf_event::events::{Cache, CacheOp, CacheResult, Event, Hardware, Software, WhichCache};
use perf_event::{Builder, Counter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The counters llamaperf reads, by the name their columns carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterKind {
    /// Core cycles.
    Cycles,
    /// Retired instructions.
    Instructions,
    /// Last-level-cache references (as the PMU defines them).
    CacheReferences,
    /// Last-level-cache misses (as the PMU defines them).
    CacheMisses,
    /// LLC read misses (cache event LL/read/miss).
    LlcReadMisses,
    /// Mispredicted branches.
    BranchMisses,
    /// Cycles stalled in the back end, where the PMU exposes it.
    StalledCyclesBackend,
    /// CPU time of the threads, ns.
    #[serde(rename = "task_clock_ns")]
    TaskClock,
    /// Page faults.
    PageFaults,
    /// Context switches.
    ContextSwitches,
    /// Migrations between CPUs.
    CpuMigrations,
}

impl CounterKind {
    /// Every counter, in column order.
    pub const ALL: [CounterKind; 11] = [
        CounterKind::Cycles,
        CounterKind::Instructions,
        CounterKind::CacheReferences,
        CounterKind::CacheMisses,
        CounterKind::LlcReadMisses,
        CounterKind::BranchMisses,
        CounterKind::StalledCyclesBackend,
        CounterKind::TaskClock,
        CounterKind::PageFaults,
        CounterKind::ContextSwitches,
        CounterKind::CpuMigrations,
    ];

    /// Column name (without the phase prefix).
    pub fn name(self) -> &'static str {
        match self {
            CounterKind::Cycles => "cycles",
            CounterKind::Instructions => "instructions",
            CounterKind::CacheReferences => "cache_references",
            CounterKind::CacheMisses => "cache_misses",
            CounterKind::LlcReadMisses => "llc_read_misses",
            CounterKind::BranchMisses => "branch_misses",
            CounterKind::StalledCyclesBackend => "stalled_cycles_backend",
            CounterKind::TaskClock => "task_clock_ns",
            CounterKind::PageFaults => "page_faults",
            CounterKind::ContextSwitches => "context_switches",
            CounterKind::CpuMigrations => "cpu_migrations",
        }
    }

    /// Whether the kernel counts it in software (available without a PMU).
    pub fn is_software(self) -> bool {
        matches!(
            self,
            CounterKind::TaskClock
                | CounterKind::PageFaults
                | CounterKind::ContextSwitches
                | CounterKind::CpuMigrations
        )
    }

    fn event(self) -> Event {
        match self {
            CounterKind::Cycles => Hardware::CPU_CYCLES.into(),
            CounterKind::Instructions => Hardware::INSTRUCTIONS.into(),
            CounterKind::CacheReferences => Hardware::CACHE_REFERENCES.into(),
            CounterKind::CacheMisses => Hardware::CACHE_MISSES.into(),
            CounterKind::LlcReadMisses => Cache {
                which: WhichCache::LL,
                operation: CacheOp::READ,
                result: CacheResult::MISS,
            }
            .into(),
            CounterKind::BranchMisses => Hardware::BRANCH_MISSES.into(),
            CounterKind::StalledCyclesBackend => Hardware::STALLED_CYCLES_BACKEND.into(),
            CounterKind::TaskClock => Software::TASK_CLOCK.into(),
            CounterKind::PageFaults => Software::PAGE_FAULTS.into(),
            CounterKind::ContextSwitches => Software::CONTEXT_SWITCHES.into(),
            CounterKind::CpuMigrations => Software::CPU_MIGRATIONS.into(),
        }
    }
}

/// Counts of one phase, summed over threads and repetitions; `None` where unavailable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseCounts {
    /// Scaled count per counter (only the available ones are present).
    pub counts: BTreeMap<CounterKind, f64>,
    /// Smallest time_running / time_enabled over the counters (1.0 = never multiplexed).
    pub running_ratio: Option<f64>,
}

impl PhaseCounts {
    /// The count of `kind`, if the machine provides it.
    pub fn get(&self, kind: CounterKind) -> Option<f64> {
        self.counts.get(&kind).copied()
    }
}

/// Why counters fail to open, with the fix (`paranoid` is `perf_event_paranoid`).
pub fn unavailable_reason(err: &std::io::Error, paranoid: &str) -> String {
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) | Some(libc::ENODEV) => format!(
            "this machine exposes no such hardware events (no PMU, as in most VMs: {err}); run on bare metal or a VM with a virtual PMU"
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "perf_event_paranoid = {paranoid}; needs <= 2 for user-space counts and <= 1 for kernel ones, or CAP_PERFMON ({err})"
        ),
        _ => err.to_string(),
    }
}

/// One note per distinct reason: "not counted: cycles, instructions: <reason>".
fn notes_of(missing: Vec<(CounterKind, String)>) -> Vec<String> {
    let mut by_reason: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for (kind, reason) in missing {
        by_reason.entry(reason).or_default().push(kind.name());
    }
    by_reason
        .into_iter()
        .map(|(reason, kinds)| format!("not counted: {}: {reason}", kinds.join(", ")))
        .collect()
}

/// Counters of one phase on a set of threads.
pub struct PhaseCounters {
    counters: Vec<(CounterKind, Counter)>,
}

impl PhaseCounters {
    /// Opens every available counter on each thread `tids`; returns notes on the missing ones.
    pub fn open(tids: &[u32]) -> (Self, Vec<String>) {
        let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let mut counters = Vec::new();
        let mut missing = Vec::new();
        for kind in CounterKind::ALL {
            let mut opened = Vec::new();
            let mut failure = None;
            for &tid in tids {
                let mut builder = Builder::new()
                    .kind(kind.event())
                    .observe_pid(tid as i32)
                    .any_cpu();
                if kind.is_software() {
                    builder.include_kernel();
                }
                match builder.build() {
                    Ok(c) => opened.push((kind, c)),
                    Err(e) => {
                        failure = Some(unavailable_reason(&e, &paranoid));
                        break;
                    }
                }
            }
            match failure {
                Some(reason) => missing.push((kind, reason)),
                None => counters.extend(opened),
            }
        }
        (PhaseCounters { counters }, notes_of(missing))
    }

    /// Starts counting (counts accumulate over enable/disable spans).
    pub fn enable(&mut self) {
        for (_, c) in &mut self.counters {
            let _ = c.enable();
        }
    }

    /// Stops counting.
    pub fn disable(&mut self) {
        for (_, c) in &mut self.counters {
            let _ = c.disable();
        }
    }

    /// The counts so far, scaled for multiplexing and summed over threads.
    pub fn read(&mut self) -> PhaseCounts {
        let mut out = PhaseCounts::default();
        for (kind, c) in &mut self.counters {
            let Ok(cat) = c.read_count_and_time() else {
                continue;
            };
            let ratio = if cat.time_enabled == 0 {
                1.0
            } else {
                cat.time_running as f64 / cat.time_enabled as f64
            };
            let scaled = if ratio > 0.0 {
                cat.count as f64 / ratio
            } else {
                0.0
            };
            *out.counts.entry(*kind).or_insert(0.0) += scaled;
            if cat.time_enabled > 0 {
                out.running_ratio = Some(out.running_ratio.map_or(ratio, |r: f64| r.min(ratio)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_cause_and_the_fix() {
        let no_pmu = unavailable_reason(&std::io::Error::from_raw_os_error(libc::ENOENT), "2");
        assert!(no_pmu.contains("no PMU"), "{no_pmu}");
        let denied = unavailable_reason(&std::io::Error::from_raw_os_error(libc::EACCES), "3");
        assert!(
            denied.contains("perf_event_paranoid = 3") && denied.contains("CAP_PERFMON"),
            "{denied}"
        );
        let notes = notes_of(vec![
            (CounterKind::Cycles, no_pmu.clone()),
            (CounterKind::Instructions, no_pmu),
            (CounterKind::TaskClock, denied),
        ]);
        assert_eq!(notes.len(), 2);
        assert!(notes
            .iter()
            .any(|n| n.starts_with("not counted: cycles, instructions: ")));
    }

    #[test]
    fn software_counters_count_this_thread() {
        let tid = unsafe { libc::gettid() } as u32;
        let (mut counters, _) = PhaseCounters::open(&[tid]);
        counters.enable();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        counters.disable();
        let counts = counters.read();
        let task_ns = counts
            .get(CounterKind::TaskClock)
            .expect("task-clock is a software counter");
        assert!(task_ns > 1e6, "{task_ns} ns of CPU for a busy loop");
        assert_eq!(counts.running_ratio, Some(1.0));
    }
}
