//! What `/proc` says of a process: its threads, where each may run, its memory policy and its
//! peak memory. The worker reads itself, and the processes it measures (a server, the torch
//! worker) the same way.

use super::cpulist::parse_list;
use serde::{Deserialize, Serialize};

/// One thread of a process as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadBinding {
    /// Kernel thread id.
    pub tid: u32,
    /// Thread name (`comm`).
    pub name: String,
    /// CPUs it may run on (`Cpus_allowed_list`), OS indices.
    pub cpus: Vec<usize>,
    /// CPU time it ran (user + system) when read back, s; `None` where `/proc` did not say
    /// (and in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<f64>,
}

/// Kernel thread ids and names (`comm`) of process `pid`, in creation order: the main thread
/// first, then by start time; empty when the process is gone.
pub fn threads(pid: u32) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, u64, String)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
            let start = start_ticks(pid, tid)?;
            Some((tid, start, name.trim().to_string()))
        })
        .collect();
    sort_by_creation(pid, &mut out);
    out.into_iter().map(|(tid, _, name)| (tid, name)).collect()
}

/// Orders `(tid, start ticks, name)` threads of process `pid` as they were created: the main
/// thread, then by start time, then by tid (ids wrap around at `pid_max`, so a later thread
/// may have a smaller id; the clock-tick start time only ties within one tick).
fn sort_by_creation(pid: u32, threads: &mut [(u32, u64, String)]) {
    threads.sort_unstable_by_key(|&(tid, start, _)| (tid != pid, start, tid));
}

/// Fields `first..` (numbered from 1 as in proc(5)) of thread `tid` of process `pid`'s
/// `/proc/.../stat`, counted after the name (field 2), which may hold spaces; `first` > 2.
fn stat_fields(pid: u32, tid: u32, first: usize) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    let after_name = stat.rsplit_once(')')?.1.split_whitespace();
    Some(after_name.skip(first - 3).map(str::to_string).collect())
}

/// When thread `tid` of process `pid` started, clock ticks after boot (stat field 22).
fn start_ticks(pid: u32, tid: u32) -> Option<u64> {
    stat_fields(pid, tid, 22)?.first()?.parse().ok()
}

/// The CPUs thread `tid` of process `pid` may run on (`Cpus_allowed_list`), OS indices.
fn cpus_allowed(pid: u32, tid: u32) -> Option<Vec<usize>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    parse_list(list).ok()
}

/// CPU time thread `tid` of process `pid` ran, user + system, s (stat fields 14 and 15).
fn cpu_time_s(pid: u32, tid: u32) -> Option<f64> {
    let fields = stat_fields(pid, tid, 14)?;
    let (user, system): (f64, f64) = (fields.first()?.parse().ok()?, fields.get(1)?.parse().ok()?);
    Some((user + system) / llamaperf_os::process::clock_ticks_per_s())
}

/// Every thread of process `pid` with the CPUs it may run on.
pub fn thread_bindings(pid: u32) -> Vec<ThreadBinding> {
    threads(pid)
        .into_iter()
        .map(|(tid, name)| ThreadBinding {
            cpus: cpus_allowed(pid, tid).unwrap_or_default(),
            cpu_s: cpu_time_s(pid, tid),
            tid,
            name,
        })
        .collect()
}

/// The memory policy of process `pid`'s first mapping as `/proc/<pid>/numa_maps` shows it (a
/// mapping without a policy of its own shows the process's: `bind:0`, `interleave:0-1`,
/// `default`).
pub fn numa_policy(pid: u32) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/numa_maps")).ok()?;
    Some(maps.lines().next()?.split_whitespace().nth(1)?.to_string())
}

/// Peak resident set size of process `pid` (VmHWM), MB; `None` where /proc is unavailable.
pub fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024.0 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llamaperf_os::process::{thread_cpu_s, thread_id};

    #[test]
    fn threads_sort_main_first_then_by_start_time_across_a_tid_wrap() {
        let name = |s: &str| s.to_string();
        let mut threads = vec![
            (314, 900, name("wrapped")),
            (32727, 500, name("second")),
            (32715, 100, name("main")),
            (32730, 500, name("third")),
        ];
        sort_by_creation(32715, &mut threads);
        let order: Vec<u32> = threads.iter().map(|t| t.0).collect();
        assert_eq!(order, [32715, 32727, 32730, 314]);
    }

    #[test]
    fn this_process_reads_back_with_its_main_thread_first() {
        let pid = std::process::id();
        let threads = thread_bindings(pid);
        assert_eq!(threads[0].tid, pid, "{threads:?}");
        assert!(!threads[0].cpus.is_empty());
        // spin to 100 ms of this thread's CPU time by its own clock, not by wall-clock: on a
        // loaded host 50 ms of wall-clock may give the thread far less CPU time
        let spin = std::time::Instant::now();
        while thread_cpu_s() < 0.1 {
            assert!(
                spin.elapsed().as_secs() < 60,
                "the thread CPU clock does not advance"
            );
            std::hint::black_box(0);
        }
        let before = thread_cpu_s();
        let threads = thread_bindings(pid);
        let after = thread_cpu_s();
        let me = thread_id();
        let ran = threads.iter().find(|t| t.tid == me).unwrap().cpu_s.unwrap();
        // /proc cuts user and system time to whole clock ticks (10 ms each at USER_HZ 100) and
        // may lag a scheduler tick, but never counts more than the thread ran
        assert!(
            ran > before - 0.03 && ran <= after + 0.01,
            "this thread ran {before}-{after} s by its clock and {ran} s by /proc"
        );
        assert!(peak_rss_mb(pid).is_some_and(|mb| mb > 1.0));
        assert!(numa_policy(pid).is_some());
    }

    #[test]
    fn a_process_that_is_gone_has_nothing() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(threads(pid).is_empty());
        assert_eq!(peak_rss_mb(pid), None);
    }
}
