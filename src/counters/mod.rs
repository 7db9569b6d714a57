//! Hardware and software counters per phase (prefill, decode), summed over every thread of the
//! worker, with multiplexed counts (core and uncore alike) scaled by time enabled / time running.
//!
//! A counter the machine cannot provide (no PMU in a VM, `perf_event_paranoid` too high), or one
//! that was enabled but never scheduled on the PMU, is `None` in the results — never 0 — and
//! explained once in the run's notes. Package and DRAM energy per phase come from RAPL
//! ([`rapl`], [`energy`]).

pub mod columns;
pub mod derived;
pub mod energy;
pub mod rapl;
pub mod uncore;

use perf_event::events::{Cache, CacheOp, CacheResult, Event, Hardware, Software, WhichCache};
use perf_event::{Builder, CountAndTime, Counter};
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Smallest time_running / time_enabled over the counters, uncore ones included (1.0 =
    /// never multiplexed).
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
    notes_by_reason(
        "not counted",
        missing
            .into_iter()
            .map(|(kind, r)| (kind.name().to_string(), r)),
    )
}

/// One note per distinct reason: "<lead>: <names>: <reason>".
fn notes_by_reason(lead: &str, missing: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, reason) in missing {
        by_reason.entry(reason).or_default().push(name);
    }
    by_reason
        .into_iter()
        .map(|(reason, names)| format!("{lead}: {}: {reason}", names.join(", ")))
        .collect()
}

/// Counters of one phase on a set of threads, and machine-wide memory-traffic counters.
pub struct PhaseCounters {
    counters: Vec<(CounterKind, Counter)>,
    raw: Vec<(String, Counter)>,
    memory: Vec<(f64, Counter)>,
}

/// Why a counter that was enabled has no count.
const NEVER_SCHEDULED: &str = "enabled but never scheduled on the PMU (more events than it has counters, or another user holds them), so the count is unknown";

/// A count scaled by time enabled / time running (multiplexing), and that ratio (`None` while it
/// was never enabled, as in a phase that did not run: the count is then the 0 it read); `None`
/// when it was enabled but never running, so nothing is known of it.
fn scale(count: u64, time_enabled_ns: u64, time_running_ns: u64) -> Option<(f64, Option<f64>)> {
    if time_enabled_ns == 0 {
        return Some((count as f64, None));
    }
    if time_running_ns == 0 {
        return None;
    }
    let ratio = time_running_ns as f64 / time_enabled_ns as f64;
    Some((count as f64 / ratio, Some(ratio)))
}

/// Sums of counters over threads (or a machine-wide event's CPUs), scaled for multiplexing.
/// A counter whose count is unknown on any of them has no sum, only the reason.
struct Sums<K> {
    sums: BTreeMap<K, f64>,
    unknown: BTreeMap<K, String>,
    running_ratio: Option<f64>,
}

impl<K: Ord> Sums<K> {
    fn new() -> Self {
        Sums {
            sums: BTreeMap::new(),
            unknown: BTreeMap::new(),
            running_ratio: None,
        }
    }

    /// Adds one reading of `key`, scaled and then multiplied by `weight` (bytes per count for
    /// memory events, 1 otherwise).
    fn add(&mut self, key: K, reading: std::io::Result<CountAndTime>, weight: f64) {
        if self.unknown.contains_key(&key) {
            return;
        }
        let scaled = match reading {
            Ok(c) => scale(c.count, c.time_enabled, c.time_running).ok_or(NEVER_SCHEDULED.into()),
            Err(e) => Err(format!("could not be read ({e})")),
        };
        match scaled {
            Ok((count, ratio)) => {
                *self.sums.entry(key).or_insert(0.0) += count * weight;
                self.running_ratio = min_ratio(self.running_ratio, ratio);
            }
            Err(reason) => {
                self.sums.remove(&key);
                self.unknown.insert(key, reason);
            }
        }
    }
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

    /// The counts of the phase named `phase` so far, scaled for multiplexing and summed over
    /// threads, and one note per reason a counter has no count ("not counted in decode: ...").
    pub fn read(&mut self, phase: &str) -> (PhaseCounts, Vec<String>) {
        let mut counts = Sums::new();
        for (kind, c) in &mut self.counters {
            counts.add(*kind, c.read_count_and_time(), 1.0);
        }
        let mut raw = Sums::new();
        for (name, c) in &mut self.raw {
            raw.add(name.clone(), c.read_count_and_time(), 1.0);
        }
        let mut memory = Sums::new();
        for (bytes_per_count, c) in &mut self.memory {
            memory.add(DRAM_BYTES, c.read_count_and_time(), *bytes_per_count);
        }
        let lead = format!("not counted in {phase}");
        let unknown = counts
            .unknown
            .iter()
            .map(|(k, r)| (k.name().to_string(), r));
        let unknown = unknown
            .chain(raw.unknown.iter().map(|(k, r)| (k.clone(), r)))
            .chain(memory.unknown.iter().map(|(k, r)| (k.to_string(), r)));
        let notes = notes_by_reason(&lead, unknown.map(|(k, r)| (k, r.clone())));
        let running_ratio = min_ratio(
            min_ratio(counts.running_ratio, raw.running_ratio),
            memory.running_ratio,
        );
        let out = PhaseCounts {
            dram_bytes: memory.sums.get(DRAM_BYTES).copied(),
            counts: counts.sums,
            raw: raw.sums,
            running_ratio,
        };
        (out, notes)
    }
}

/// The name of the DRAM traffic in notes.
const DRAM_BYTES: &str = "dram_bytes";

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

    fn reading(count: u64, time_enabled: u64, time_running: u64) -> std::io::Result<CountAndTime> {
        Ok(CountAndTime {
            count,
            time_enabled,
            time_running,
        })
    }

    #[test]
    fn multiplexed_counts_are_scaled_and_unscheduled_ones_are_unknown() {
        // ran a quarter of the time it was enabled: 4x the count
        assert_eq!(scale(1000, 400, 100), Some((4000.0, Some(0.25))));
        assert_eq!(scale(1000, 400, 400), Some((1000.0, Some(1.0))));
        // never enabled (its phase did not run): the 0 it read, no ratio
        assert_eq!(scale(0, 0, 0), Some((0.0, None)));
        // enabled but never on the PMU: unknown, not 0
        assert_eq!(scale(0, 400, 0), None);
    }

    #[test]
    fn a_counter_unscheduled_on_one_thread_has_no_sum_and_a_note() {
        let mut sums = Sums::new();
        sums.add(CounterKind::Cycles, reading(100, 10, 10), 1.0);
        sums.add(CounterKind::Instructions, reading(300, 10, 5), 1.0);
        sums.add(CounterKind::Cycles, reading(0, 10, 0), 1.0);
        sums.add(CounterKind::Cycles, reading(100, 10, 10), 1.0);
        sums.add(CounterKind::Instructions, reading(300, 10, 10), 1.0);
        assert_eq!(sums.sums.get(&CounterKind::Cycles), None);
        assert_eq!(sums.sums.get(&CounterKind::Instructions), Some(&900.0));
        assert_eq!(sums.running_ratio, Some(0.5));
        assert_eq!(sums.unknown[&CounterKind::Cycles], NEVER_SCHEDULED);
        let unreadable = Err(std::io::Error::from_raw_os_error(libc::EBADF));
        sums.add(CounterKind::BranchMisses, unreadable, 1.0);
        assert!(sums.unknown[&CounterKind::BranchMisses].starts_with("could not be read"));
    }

    #[test]
    fn uncore_counts_are_scaled_like_core_counts() {
        // two sockets' DRAM events of 64 bytes a count, one multiplexed half of the time
        let mut sums = Sums::new();
        sums.add(DRAM_BYTES, reading(1000, 20, 20), 64.0);
        sums.add(DRAM_BYTES, reading(1000, 20, 10), 64.0);
        assert_eq!(sums.sums[DRAM_BYTES], 3000.0 * 64.0);
        assert_eq!(sums.running_ratio, Some(0.5));
        sums.add(DRAM_BYTES, reading(0, 20, 0), 64.0);
        assert!(sums.sums.is_empty() && sums.unknown.contains_key(DRAM_BYTES));
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
        let (counts, notes) = counters.read("decode");
        assert!(notes.iter().all(|n| !n.contains("task_clock")), "{notes:?}");
        let task_ns = counts
            .get(CounterKind::TaskClock)
            .expect("task-clock is a software counter");
        assert!(task_ns > 1e6, "{task_ns} ns of CPU for a busy loop");
        assert_eq!(counts.running_ratio, Some(1.0));
    }
}
