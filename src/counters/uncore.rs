//! DRAM and data-fabric events that PMUs publish in sysfs
//! (`/sys/bus/event_source/devices/<pmu>/events`), read system-wide on the CPUs of the PMU's
//! `cpumask` to measure memory bandwidth per phase.
//!
//! An event file holds terms like `event=0x04,umask=0x03`; the PMU's `format/<term>` files say
//! which bits of `config`/`config1`/`config2` each term fills (`config:0-7`). A `<event>.scale`
//! and `<event>.unit` turn counts into bytes (Intel's `cas_count_read` counts 64-byte lines:
//! scale 6.103515625e-5, unit MiB).

use perf_event::{Builder, Counter};
use std::path::Path;

/// PMU name prefixes whose events count DRAM or data-fabric traffic.
const MEMORY_PMUS: [&str; 3] = ["uncore_imc", "amd_umc", "amd_df"];
/// Event name fragments that are memory reads or writes.
const MEMORY_EVENTS: [&str; 6] = [
    "cas_count_read",
    "cas_count_write",
    "data_read",
    "data_write",
    "dram_read",
    "dram_write",
];

/// A memory-traffic event, encoded for `perf_event_open`.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEvent {
    /// PMU name, e.g. `uncore_imc_0`.
    pub pmu: String,
    /// Event name, e.g. `cas_count_read`.
    pub name: String,
    /// The PMU's perf type id.
    pub pmu_type: u32,
    /// `attr.config`.
    pub config: u64,
    /// `attr.config1`.
    pub config1: u64,
    /// Bytes per count.
    pub bytes_per_count: f64,
    /// CPUs to open the event on (one per socket, usually).
    pub cpus: Vec<usize>,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Sets the bits `spec` (`config:0-7,32-35`) of `value` into `config`/`config1`.
fn apply_format(spec: &str, value: u64, config: &mut u64, config1: &mut u64) -> Option<()> {
    let (field, ranges) = spec.split_once(':')?;
    let target = match field {
        "config" => config,
        "config1" => config1,
        _ => return None,
    };
    let mut shift_in = 0u32;
    for range in ranges.split(',') {
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => (range.parse().ok()?, range.parse().ok()?),
        };
        let width = hi - lo + 1;
        let part = (value >> shift_in)
            & (if width >= 64 {
                u64::MAX
            } else {
                (1 << width) - 1
            });
        *target |= part << lo;
        shift_in += width;
    }
    Some(())
}

fn unit_bytes(unit: &str) -> Option<f64> {
    match unit {
        "B" | "Bytes" | "bytes" => Some(1.0),
        "KiB" => Some(1024.0),
        "MiB" => Some(1024.0 * 1024.0),
        "GiB" => Some(1024.0 * 1024.0 * 1024.0),
        "KB" => Some(1e3),
        "MB" => Some(1e6),
        _ => None,
    }
}

/// Parses one event of a PMU directory.
fn parse_event(pmu_dir: &Path, pmu: &str, name: &str) -> Option<MemoryEvent> {
    let terms = read(&pmu_dir.join("events").join(name))?;
    let (mut config, mut config1) = (0u64, 0u64);
    for term in terms.split(',') {
        let (key, value) = term.split_once('=').unwrap_or((term, "1"));
        let value = match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok()?,
            None => value.parse().ok()?,
        };
        let format = read(&pmu_dir.join("format").join(key))?;
        apply_format(&format, value, &mut config, &mut config1)?;
    }
    let scale: f64 = read(&pmu_dir.join("events").join(format!("{name}.scale")))?
        .parse()
        .ok()?;
    let unit = unit_bytes(&read(&pmu_dir.join("events").join(format!("{name}.unit")))?)?;
    let cpus = read(&pmu_dir.join("cpumask"))
        .and_then(|m| crate::machine::cpulist::parse_list(&m).ok())
        .unwrap_or_else(|| vec![0]);
    Some(MemoryEvent {
        pmu: pmu.to_string(),
        name: name.to_string(),
        pmu_type: read(&pmu_dir.join("type"))?.parse().ok()?,
        config,
        config1,
        bytes_per_count: scale * unit,
        cpus,
    })
}

/// Every memory-traffic event with a byte scale under `devices` (normally
/// `/sys/bus/event_source/devices`).
pub fn memory_events(devices: &Path) -> Vec<MemoryEvent> {
    let Ok(dir) = std::fs::read_dir(devices) else {
        return Vec::new();
    };
    let mut pmus: Vec<(String, std::path::PathBuf)> = dir
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(name, _)| MEMORY_PMUS.iter().any(|p| name.starts_with(p)))
        .collect();
    pmus.sort();
    let mut out = Vec::new();
    for (pmu, path) in pmus {
        let Ok(events) = std::fs::read_dir(path.join("events")) else {
            continue;
        };
        let mut names: Vec<String> = events
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.contains('.') && MEMORY_EVENTS.iter().any(|m| n.contains(m)))
            .collect();
        names.sort();
        out.extend(names.iter().filter_map(|n| parse_event(&path, &pmu, n)));
    }
    out
}

/// Opens `event` system-wide on each of its CPUs.
pub fn open(event: &MemoryEvent) -> std::io::Result<Vec<Counter>> {
    event
        .cpus
        .iter()
        .map(|&cpu| {
            let mut b = Builder::new().any_pid().one_cpu(cpu);
            let attrs = b.attrs_mut();
            attrs.type_ = event.pmu_type;
            attrs.config = event.config;
            attrs.__bindgen_anon_3.config1 = event.config1;
            attrs.set_exclude_kernel(0);
            attrs.set_exclude_hv(0);
            b.build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_bits_are_placed_where_sysfs_says() {
        let (mut c, mut c1) = (0, 0);
        apply_format("config:0-7", 0x04, &mut c, &mut c1).unwrap();
        apply_format("config:8-15", 0x03, &mut c, &mut c1).unwrap();
        assert_eq!(c, 0x0304);
        let (mut c, mut c1) = (0, 0);
        // A value split over two ranges: low 4 bits at 0-3, the next 4 at 32-35.
        apply_format("config:0-3,32-35", 0xAB, &mut c, &mut c1).unwrap();
        assert_eq!(c, 0xB | (0xA << 32));
        apply_format("config1:0-15", 0x1234, &mut c, &mut c1).unwrap();
        assert_eq!(c1, 0x1234);
    }

    #[test]
    fn events_of_a_fixture_sysfs_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/devices");
        let events = memory_events(&root);
        let names: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.pmu.as_str(), e.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("uncore_imc_0", "cas_count_read"),
                ("uncore_imc_0", "cas_count_write")
            ],
            "cpu PMU events and events without a byte scale are left out"
        );
        let read = &events[0];
        assert_eq!(read.pmu_type, 13);
        assert_eq!(read.config, 0x0304);
        assert_eq!(read.bytes_per_count, 64.0);
        assert_eq!(read.cpus, [0, 48]);
        assert_eq!(events[1].config, 0x0c04);
    }

    #[test]
    fn this_machine_is_parsed_without_error() {
        // Whatever this machine has (a VM usually has none), parsing never fails.
        let events = memory_events(Path::new("/sys/bus/event_source/devices"));
        assert!(events
            .iter()
            .all(|e| e.bytes_per_count > 0.0 && !e.cpus.is_empty()));
    }
}
