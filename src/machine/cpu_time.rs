//! CPU time as Linux accounts it per CPU (`/proc/stat`) and per process (`/proc/self/stat`):
//! what other tasks used of a run's CPUs while it measured, and what a hypervisor took from
//! them (steal), so a slow run can be told apart from a run that had to share.

use serde::{Deserialize, Serialize};

/// CPU time of a set of CPUs and of this process at one instant, seconds since boot.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuTimes {
    /// Time the CPUs ran anything (user, nice, system, irq, softirq), s.
    pub busy_s: f64,
    /// Time the hypervisor ran something else on the CPUs (steal), s.
    pub steal_s: f64,
    /// Time this process ran (user and system, all its threads), s.
    pub own_s: f64,
}

/// What a measurement had to share: the time of its CPUs that went to other tasks or to the
/// hypervisor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contention {
    /// CPU time other tasks ran on the run's CPUs during the measurement, s.
    pub other_cpu_s: f64,
    /// CPU time the hypervisor took from the run's CPUs (steal), s.
    pub steal_s: f64,
    /// The run's CPUs times the measurement's wall-clock time, s: what it could have had.
    pub capacity_cpu_s: f64,
}

/// Least capacity, CPU-seconds, whose contention is told: Linux counts CPU time in ticks of
/// 10 ms, so shorter windows are mostly rounding.
pub const MIN_CAPACITY_CPU_S: f64 = 1.0;

impl Contention {
    /// Other tasks' and steal time as a share of the capacity, %; `None` for a window too
    /// short to tell ([`MIN_CAPACITY_CPU_S`]).
    pub fn pct(&self) -> Option<f64> {
        (self.capacity_cpu_s >= MIN_CAPACITY_CPU_S)
            .then(|| 100.0 * (self.other_cpu_s + self.steal_s) / self.capacity_cpu_s)
    }

    /// The contention of several windows taken together.
    pub fn total(windows: impl IntoIterator<Item = Contention>) -> Option<Contention> {
        windows.into_iter().reduce(|a, b| Contention {
            other_cpu_s: a.other_cpu_s + b.other_cpu_s,
            steal_s: a.steal_s + b.steal_s,
            capacity_cpu_s: a.capacity_cpu_s + b.capacity_cpu_s,
        })
    }
}

impl CpuTimes {
    /// The CPU times of `cpus` (OS indices) and of this process now; `None` where `/proc` is
    /// not readable.
    pub fn now(cpus: &[usize]) -> Option<Self> {
        let ticks = llamaperf_os::process::clock_ticks_per_s();
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (busy_s, steal_s) = cpus_of(&stat, cpus, ticks)?;
        Some(CpuTimes {
            busy_s,
            steal_s,
            own_s: process_cpu_s(&own, ticks)?,
        })
    }

    /// What happened on `cpus` CPUs between `self` and `later`, `wall_s` seconds apart, that
    /// this process did not do.
    pub fn contention_until(&self, later: &CpuTimes, wall_s: f64, cpus: usize) -> Contention {
        let busy = later.busy_s - self.busy_s;
        let own = later.own_s - self.own_s;
        Contention {
            other_cpu_s: (busy - own).max(0.0),
            steal_s: (later.steal_s - self.steal_s).max(0.0),
            capacity_cpu_s: wall_s * cpus as f64,
        }
    }
}

/// Busy and steal seconds of `cpus` from the text of `/proc/stat` (`cpuN user nice system idle
/// iowait irq softirq steal ...`, in ticks); `None` if a CPU is missing.
fn cpus_of(stat: &str, cpus: &[usize], ticks_per_s: f64) -> Option<(f64, f64)> {
    let mut busy = 0u64;
    let mut steal = 0u64;
    for &cpu in cpus {
        let name = format!("cpu{cpu}");
        let line = stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        busy += at(0) + at(1) + at(2) + at(5) + at(6);
        steal += at(7);
    }
    Some((busy as f64 / ticks_per_s, steal as f64 / ticks_per_s))
}

/// User plus system seconds of a process from the text of its `/proc/<pid>/stat` (fields 14
/// and 15, counted after the command name, which may hold spaces).
fn process_cpu_s(stat: &str, ticks_per_s: f64) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after the name, field 3 (state) is at 0, so field 14 (utime) is at 11
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const STAT: &str = "cpu  500 0 300 9000 10 0 0 40 0 0\n\
        cpu0 200 10 100 4500 5 3 2 30 0 0\n\
        cpu1 300 0 200 4500 5 0 0 10 0 0\n\
        intr 1 2 3\n";

    #[test]
    fn busy_and_steal_of_the_chosen_cpus() {
        assert_eq!(cpus_of(STAT, &[0], 100.0), Some((3.15, 0.3)));
        assert_eq!(cpus_of(STAT, &[0, 1], 100.0), Some((8.15, 0.4)));
        assert_eq!(cpus_of(STAT, &[2], 100.0), None);
    }

    #[test]
    fn process_time_survives_spaces_and_parentheses_in_its_name() {
        let stat = "4242 (my (odd) name) R 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 3";
        assert_eq!(process_cpu_s(stat, 100.0), Some(2.0));
    }

    #[test]
    fn other_tasks_time_is_what_the_cpus_did_beyond_this_process() {
        let before = CpuTimes {
            busy_s: 10.0,
            steal_s: 1.0,
            own_s: 5.0,
        };
        let after = CpuTimes {
            busy_s: 13.5,
            steal_s: 1.5,
            own_s: 7.5,
        };
        let c = before.contention_until(&after, 2.0, 2);
        assert_eq!(
            (c.other_cpu_s, c.steal_s, c.capacity_cpu_s),
            (1.0, 0.5, 4.0)
        );
        assert_eq!(c.pct(), Some(37.5));
        let short = before.contention_until(&after, 0.1, 2);
        assert_eq!(short.pct(), None, "0.2 CPU-s is mostly tick rounding");
        let both = Contention::total([c, short]).unwrap();
        assert_eq!(both.capacity_cpu_s, 4.2);
    }

    #[test]
    fn this_process_is_seen_spinning() {
        let Some(before) = CpuTimes::now(&[0]) else {
            // past libtest's capture, which hides what a passing test prints
            let _ = writeln!(
                std::io::stderr(),
                "skipped: /proc/stat is not readable here"
            );
            return;
        };
        // spin until this process has run 0.2 s more (however loaded the host), within 10 s
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after.own_s - before.own_s < 0.2 && start.elapsed().as_secs() < 10 {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            after = CpuTimes::now(&[0]).unwrap();
        }
        assert!(after.own_s - before.own_s >= 0.2, "{before:?} {after:?}");
        assert!(after.busy_s >= before.busy_s, "{before:?} {after:?}");
    }
}
