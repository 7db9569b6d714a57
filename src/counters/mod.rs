//! Hardware and software counters per phase (prefill, decode), summed over every thread of the
//! worker, with multiplexed counts scaled by time enabled / time running.
//!
//! A counter the machine cannot provide (no PMU in a VM, `perf_event_paranoid` too high) is
//! `None` in the results — never 0 — and explained once in the run's notes.

pub mod columns;
pub mod derived;
pub mod uncore;

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

/// Which counters a run reads (`counters` in scenarios, `--counters` for `run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterSet {
    /// Every counter of [`CounterKind`] and the DRAM events.
    Default,
    /// Cache and memory traffic: cache references/misses, LLC read misses, task-clock, DRAM.
    Memory,
    /// No counters at all.
    None,
    /// These counters by name, and raw PMU events `r<hex>` (perf's raw syntax).
    Events(Vec<String>),
}

/// The allowed values of a counter set, for error messages.
pub fn counter_set_help() -> String {
    let names: Vec<&str> = CounterKind::ALL.iter().map(|k| k.name()).collect();
    format!(
        "[\"default\"], [\"memory\"], [\"none\"], or counter names ({}) and raw events r<hex>",
        names.join(", ")
    )
}

impl CounterSet {
    /// Parses a list of names: one of default / memory / none, or counter names and raw events.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        match items {
            [one] if one == "default" => return Ok(CounterSet::Default),
            [one] if one == "memory" => return Ok(CounterSet::Memory),
            [one] if one == "none" => return Ok(CounterSet::None),
            [] => {
                return Err(format!(
                    "counters is empty; allowed: {}",
                    counter_set_help()
                ))
            }
            _ => {}
        }
        for item in items {
            let known = CounterKind::ALL.iter().any(|k| k.name() == item);
            if !known && raw_config(item).is_none() {
                return Err(format!(
                    "counters: '{item}' is not allowed; allowed: {}",
                    counter_set_help()
                ));
            }
        }
        Ok(CounterSet::Events(items.to_vec()))
    }

    /// Whether the set reads `kind`.
    pub fn reads(&self, kind: CounterKind) -> bool {
        match self {
            CounterSet::Default => true,
            CounterSet::Memory => matches!(
                kind,
                CounterKind::CacheReferences
                    | CounterKind::CacheMisses
                    | CounterKind::LlcReadMisses
                    | CounterKind::TaskClock
            ),
            CounterSet::None => false,
            CounterSet::Events(names) => names.iter().any(|n| n == kind.name()),
        }
    }

    /// Whether the set reads DRAM traffic.
    pub fn reads_memory_traffic(&self) -> bool {
        matches!(self, CounterSet::Default | CounterSet::Memory)
    }

    /// The raw events of the set.
    pub fn raw_events(&self) -> Vec<(String, u64)> {
        match self {
            CounterSet::Events(names) => names
                .iter()
                .filter_map(|n| raw_config(n).map(|c| (n.clone(), c)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl std::fmt::Display for CounterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CounterSet::Default => f.write_str("default"),
            CounterSet::Memory => f.write_str("memory"),
            CounterSet::None => f.write_str("none"),
            CounterSet::Events(names) => f.write_str(&names.join("+")),
        }
    }
}

/// The config of a raw event `r<hex>`.
fn raw_config(name: &str) -> Option<u64> {
    let hex = name.strip_prefix('r')?;
    (!hex.is_empty()).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// Counts of one phase, summed over threads and repetitions; `None` where unavailable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseCounts {
    /// Scaled count per counter (only the available ones are present).
    pub counts: BTreeMap<CounterKind, f64>,
    /// Bytes moved to and from DRAM machine-wide (uncore/data-fabric events), when the PMU
    /// publishes such events.
    pub dram_bytes: Option<f64>,
    /// Raw PMU events (`r<hex>`) asked for by name, scaled like the others.
    pub raw: BTreeMap<String, f64>,
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

/// Counters of one phase on a set of threads, and machine-wide memory-traffic counters.
pub struct PhaseCounters {
    counters: Vec<(CounterKind, Counter)>,
    raw: Vec<(String, Counter)>,
    memory: Vec<(f64, Counter)>,
}

/// A counter's count scaled by time enabled / time running (multiplexing), and that ratio
/// (`None` while it was never enabled); `None` when it cannot be read.
fn scaled(c: &mut Counter) -> Option<(f64, Option<f64>)> {
    let cat = c.read_count_and_time().ok()?;
    if cat.time_enabled == 0 {
        return Some((cat.count as f64, None));
    }
    let ratio = cat.time_running as f64 / cat.time_enabled as f64;
    let count = if ratio > 0.0 {
        cat.count as f64 / ratio
    } else {
        0.0
    };
    Some((count, Some(ratio)))
}

/// The smaller of two running ratios, either possibly absent.
fn min_ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where PMUs publish their events.
const SYSFS_PMUS: &str = "/sys/bus/event_source/devices";

/// Opens the memory-traffic events of `devices`: (bytes per count, counter) pairs, or a note.
fn open_memory(devices: &std::path::Path, paranoid: &str) -> (Vec<(f64, Counter)>, Option<String>) {
    let events = uncore::memory_events(devices);
    if events.is_empty() {
        return (
            Vec::new(),
            Some(format!(
                "not counted: dram_bytes: no DRAM or data-fabric events (uncore_imc*, amd_umc*, amd_df*) in {}",
                devices.display()
            )),
        );
    }
    let mut out = Vec::new();
    for e in &events {
        match uncore::open(e) {
            Ok(counters) => out.extend(counters.into_iter().map(|c| (e.bytes_per_count, c))),
            Err(err) => {
                return (
                    Vec::new(),
                    Some(format!(
                        "not counted: dram_bytes ({}/{}): {}",
                        e.pmu,
                        e.name,
                        unavailable_reason(&err, paranoid)
                    )),
                )
            }
        }
    }
    (out, None)
}

impl PhaseCounters {
    /// Opens the counters of `set` on each thread `tids`; returns notes on the missing ones.
    pub fn open(set: &CounterSet, tids: &[u32]) -> (Self, Vec<String>) {
        let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let mut counters = Vec::new();
        let mut missing = Vec::new();
        for kind in CounterKind::ALL.into_iter().filter(|k| set.reads(*k)) {
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
        let mut raw = Vec::new();
        let mut raw_notes = Vec::new();
        for (name, config) in set.raw_events() {
            let opened: std::io::Result<Vec<(String, Counter)>> = tids
                .iter()
                .map(|&tid| {
                    let mut b = Builder::new().observe_pid(tid as i32).any_cpu();
                    let attrs = b.attrs_mut();
                    attrs.type_ = perf_event_open_sys::bindings::PERF_TYPE_RAW;
                    attrs.config = config;
                    b.build().map(|c| (name.clone(), c))
                })
                .collect();
            match opened {
                Ok(c) => raw.extend(c),
                Err(e) => raw_notes.push(format!(
                    "not counted: {name}: {}",
                    unavailable_reason(&e, &paranoid)
                )),
            }
        }
        let mut notes = notes_of(missing);
        notes.extend(raw_notes);
        if set.reads_memory_traffic() {
            let (memory, memory_note) = open_memory(std::path::Path::new(SYSFS_PMUS), &paranoid);
            notes.extend(memory_note);
            return (
                PhaseCounters {
                    counters,
                    raw,
                    memory,
                },
                notes,
            );
        }
        (
            PhaseCounters {
                counters,
                raw,
                memory: Vec::new(),
            },
            notes,
        )
    }

    fn all(&mut self) -> impl Iterator<Item = &mut Counter> {
        self.counters
            .iter_mut()
            .map(|(_, c)| c)
            .chain(self.raw.iter_mut().map(|(_, c)| c))
            .chain(self.memory.iter_mut().map(|(_, c)| c))
    }

    /// Starts counting (counts accumulate over enable/disable spans).
    pub fn enable(&mut self) {
        for c in self.all() {
            let _ = c.enable();
        }
    }

    /// Stops counting.
    pub fn disable(&mut self) {
        for c in self.all() {
            let _ = c.disable();
        }
    }

    /// The counts so far, scaled for multiplexing and summed over threads.
    pub fn read(&mut self) -> PhaseCounts {
        let mut out = PhaseCounts::default();
        for (kind, c) in &mut self.counters {
            if let Some((count, ratio)) = scaled(c) {
                *out.counts.entry(*kind).or_insert(0.0) += count;
                out.running_ratio = min_ratio(out.running_ratio, ratio);
            }
        }
        for (name, c) in &mut self.raw {
            if let Some((count, ratio)) = scaled(c) {
                *out.raw.entry(name.clone()).or_insert(0.0) += count;
                out.running_ratio = min_ratio(out.running_ratio, ratio);
            }
        }
        for (bytes_per_count, c) in &mut self.memory {
            if let Ok(n) = c.read() {
                *out.dram_bytes.get_or_insert(0.0) += n as f64 * *bytes_per_count;
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
    fn counter_sets_parse_with_the_allowed_values_in_errors() {
        let p = |items: &[&str]| {
            CounterSet::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(p(&["none"]).unwrap(), CounterSet::None);
        assert_eq!(p(&["memory"]).unwrap(), CounterSet::Memory);
        let events = p(&["cycles", "r01c2"]).unwrap();
        assert!(events.reads(CounterKind::Cycles) && !events.reads(CounterKind::Instructions));
        assert_eq!(events.raw_events(), [("r01c2".to_string(), 0x01c2)]);
        let err = p(&["cycels"]).unwrap_err();
        assert!(
            err.contains("'cycels' is not allowed") && err.contains("r<hex>"),
            "{err}"
        );
        assert!(
            CounterSet::Memory.reads(CounterKind::LlcReadMisses)
                && !CounterSet::Memory.reads(CounterKind::Cycles)
        );
    }

    #[test]
    fn software_counters_count_this_thread() {
        let tid = llamaperf_os::process::thread_id();
        let (mut counters, _) = PhaseCounters::open(&CounterSet::Default, &[tid]);
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
