//! Whether the machine is quiet enough to measure: warnings a sweep prints before it starts,
//! each with what to do about it, as hyperfine warns about outliers.

use super::cpu_time::CpuTimes;
use super::cpulist::format_list;
use super::environment::MachineInfo;
use std::time::{Duration, Instant};

/// Busy share of the sweep's CPUs, %, above which other work is warned about.
const BUSY_WARN_PCT: f64 = 10.0;

/// How long the CPUs are watched before the sweep.
const WATCH: Duration = Duration::from_millis(500);

/// What could make this machine's measurements noisy: other work on `cpus` (watched for half a
/// second now), a frequency governor other than `performance`, turbo, transparent huge pages
/// off. Empty on a quiet, tuned machine.
pub fn warnings(info: &MachineInfo, cpus: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(busy) = busy_pct(cpus) {
        if busy > BUSY_WARN_PCT {
            out.push(format!(
                "cpus {} were {busy:.0}% busy with other work just before the sweep: stop it, or \
                 expect runs flagged contended (summary.csv contention_pct)",
                format_list(cpus)
            ));
        }
    }
    out.extend(setting_warnings(info, turbo_on()));
    out
}

/// Warnings about the machine's settings, given whether turbo/boost is on.
fn setting_warnings(info: &MachineInfo, turbo: Option<bool>) -> Vec<String> {
    let mut out = Vec::new();
    let governed = !matches!(info.governor.as_str(), "" | "unavailable" | "performance");
    if governed {
        out.push(format!(
            "the cpufreq governor is '{}': clocks follow the load; for steadier numbers set \
             'performance' (cpupower frequency-set -g performance)",
            info.governor
        ));
    }
    if turbo == Some(true) {
        out.push(
            "turbo/boost is on: clocks vary with temperature and the number of busy cores; \
             compare runs of one session, or turn it off for steadier numbers"
                .into(),
        );
    }
    if info.transparent_hugepages.contains("[never]") {
        out.push(
            "transparent huge pages are off ([never]): decode streams its weights on 4 KiB \
             pages; echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"
                .into(),
        );
    }
    out
}

/// Share of `cpus`' time, %, spent busy over [`WATCH`]; `None` without `/proc`.
fn busy_pct(cpus: &[usize]) -> Option<f64> {
    let (before, start) = (CpuTimes::now(cpus)?, Instant::now());
    std::thread::sleep(WATCH);
    let after = CpuTimes::now(cpus)?;
    let contention = before.contention_until(&after, start.elapsed().as_secs_f64(), cpus.len());
    contention.pct()
}

/// Whether turbo (Intel `no_turbo` = 0) or boost (`cpufreq/boost` = 1) is on; `None` where
/// the machine does not say.
fn turbo_on() -> Option<bool> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if let Some(no_turbo) = read("/sys/devices/system/cpu/intel_pstate/no_turbo") {
        return Some(no_turbo == "0");
    }
    read("/sys/devices/system/cpu/cpufreq/boost").map(|b| b == "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Machine, TopologySource};
    use std::io::Write as _;

    fn info(governor: &str, thp: &str) -> MachineInfo {
        let machine = Machine::load(&TopologySource::ThisMachine).expect("this machine");
        MachineInfo {
            governor: governor.into(),
            transparent_hugepages: thp.into(),
            ..MachineInfo::capture(&machine)
        }
    }

    #[test]
    fn settings_that_make_numbers_noisy_are_named_with_the_fix() {
        let tuned = info("performance", "always [madvise] never");
        assert!(setting_warnings(&tuned, Some(false)).is_empty());
        assert!(setting_warnings(&tuned, None).is_empty());
        let vm = info("unavailable", "always [madvise] never");
        assert!(
            setting_warnings(&vm, None).is_empty(),
            "no cpufreq, nothing to warn about"
        );
        let noisy = setting_warnings(&info("powersave", "always madvise [never]"), Some(true));
        assert_eq!(noisy.len(), 3, "{noisy:?}");
        assert!(noisy[0].contains("'powersave'") && noisy[0].contains("cpupower"));
        assert!(noisy[1].contains("turbo"));
        assert!(noisy[2].contains("madvise"));
    }

    #[test]
    fn a_cpu_kept_busy_by_another_process_is_seen_busy() {
        let mut yes = std::process::Command::new("yes")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("yes runs");
        let cpus: Vec<usize> =
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        let busy = busy_pct(&cpus);
        yes.kill().unwrap();
        yes.wait().unwrap();
        let Some(busy) = busy else {
            // past libtest's capture, which hides what a passing test prints
            let _ = writeln!(
                std::io::stderr(),
                "skipped: /proc/stat is not readable here"
            );
            return;
        };
        // one of the CPUs ran `yes` the whole time
        let one_cpu = 100.0 / cpus.len() as f64;
        assert!(
            busy >= 0.6 * one_cpu,
            "{busy}% busy with yes running on {cpus:?}"
        );
    }
}
