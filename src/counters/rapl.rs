//! RAPL energy counters of the powercap sysfs tree (`/sys/class/powercap`), read around each
//! phase of a run: the package zones (`intel-rapl:<n>` named `package-<id>` or
//! `package-<id>-die-<d>`) of the packages the run's PUs are on, and their DRAM subzones
//! (`intel-rapl:<n>:<m>` named `dram`). AMD processors register the same `intel-rapl` tree on
//! recent kernels (package zones only). `intel-rapl-mmio` zones repeat the package counter
//! through another interface and `psys` counts the whole platform: both are left out.
//!
//! A zone's `energy_uj` counts microjoules and wraps to 0 after `max_energy_range_uj`; a
//! reading that went down wrapped once (a phase longer than a whole range, minutes at full
//! power, would be undercounted). The counters update about once a millisecond.

use super::energy::{PackageEnergy, PhaseJoules};
use std::path::{Path, PathBuf};

/// Environment variable naming another powercap root than [`DEFAULT_ROOT`] (tests point it
/// at a fixture tree laid out like `/sys/class/powercap`).
pub const ROOT_ENV: &str = "LLAMAPERF_POWERCAP_ROOT";
/// Where the kernel publishes powercap zones.
pub const DEFAULT_ROOT: &str = "/sys/class/powercap";
/// Where the kernel publishes each CPU's topology (`cpu<n>/topology/physical_package_id`).
pub const CPU_SYSFS: &str = "/sys/devices/system/cpu";

/// The powercap root: `$LLAMAPERF_POWERCAP_ROOT`, else [`DEFAULT_ROOT`].
pub fn root() -> PathBuf {
    std::env::var_os(ROOT_ENV).map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from)
}

/// What a zone's counter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// The whole package (cores, caches, uncore).
    Package,
    /// The DRAM attached to the package.
    Dram,
}

/// One RAPL energy counter.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Physical package id (`physical_package_id` of its CPUs).
    pub package: usize,
    /// What it measures.
    pub domain: Domain,
    /// Its `energy_uj` file.
    pub energy_uj: PathBuf,
    /// The value after which the counter wraps to 0, µJ.
    pub max_energy_range_uj: u64,
}

/// Why reading `path` failed, with the fix where there is one.
fn unreadable(path: &Path, err: &std::io::Error) -> String {
    let fix = if err.kind() == std::io::ErrorKind::PermissionDenied {
        ": energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694); run as root \
         or make the files readable (chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj)"
    } else {
        ""
    };
    format!("{}: {err}{fix}", path.display())
}

/// A number in a sysfs file.
fn read_number(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
    text.trim()
        .parse()
        .map_err(|e| format!("{}: '{}' is not a count ({e})", path.display(), text.trim()))
}

/// The package id of a zone name `package-<id>` or `package-<id>-die-<d>`.
fn package_of_name(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("package-")?;
    rest.split('-').next()?.parse().ok()
}

/// The physical package ids of `pus`, sorted, from `cpu_sysfs` (normally [`CPU_SYSFS`]).
pub fn packages_of(cpu_sysfs: &Path, pus: &[usize]) -> Result<Vec<usize>, String> {
    let mut packages = pus
        .iter()
        .map(|pu| {
            let path = cpu_sysfs.join(format!("cpu{pu}/topology/physical_package_id"));
            read_number(&path).map(|p| p as usize)
        })
        .collect::<Result<Vec<usize>, String>>()?;
    packages.sort_unstable();
    packages.dedup();
    Ok(packages)
}

/// The zones under `root` of `packages`: their package zones (one per die on multi-die
/// packages) and DRAM subzones, each checked readable. `Err` says why energy cannot be
/// measured.
pub fn zones(root: &Path, packages: &[usize]) -> Result<Vec<Zone>, String> {
    let entries = std::fs::read_dir(root).map_err(|e| {
        format!(
            "no RAPL powercap zones: {} cannot be read ({e}); the machine exposes no RAPL (most \
             virtual machines do not)",
            root.display()
        )
    })?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("intel-rapl:"))
        .collect();
    names.sort();
    let zone_name = |dir: &str| {
        std::fs::read_to_string(root.join(dir).join("name")).map(|s| s.trim().to_string())
    };
    let mut zones = Vec::new();
    for top in names.iter().filter(|n| n.matches(':').count() == 1) {
        let Some(package) = zone_name(top).ok().as_deref().and_then(package_of_name) else {
            continue;
        };
        if !packages.contains(&package) {
            continue;
        }
        let prefix = format!("{top}:");
        let dram = names
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .filter(|n| zone_name(n).is_ok_and(|name| name == "dram"));
        for (dir, domain) in
            std::iter::once((top, Domain::Package)).chain(dram.map(|d| (d, Domain::Dram)))
        {
            let zone = Zone {
                package,
                domain,
                energy_uj: root.join(dir).join("energy_uj"),
                max_energy_range_uj: read_number(&root.join(dir).join("max_energy_range_uj"))?,
            };
            read_number(&zone.energy_uj)?;
            zones.push(zone);
        }
    }
    let missing: Vec<String> = packages
        .iter()
        .filter(|p| {
            !zones
                .iter()
                .any(|z| z.package == **p && z.domain == Domain::Package)
        })
        .map(usize::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "no RAPL package zone (intel-rapl:<n> named package-<id>) for package {} in {}",
            missing.join(", "),
            root.display()
        ));
    }
    Ok(zones)
}

/// The energy between two readings of a counter that wraps after `max_uj`, µJ.
pub fn delta_uj(before: u64, after: u64, max_uj: u64) -> u64 {
    if after >= before {
        after - before
    } else {
        max_uj.saturating_sub(before) + after
    }
}

/// Energy counted over the spans of one phase, µJ per zone; or why it is unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseTotals {
    uj: Vec<u64>,
    failure: Option<String>,
}

/// The zones of a run's packages, read at the start and end of each span of a phase.
#[derive(Debug)]
pub struct EnergyMeter {
    zones: Vec<Zone>,
    started: Option<Vec<u64>>,
    failure: Option<String>,
}

impl EnergyMeter {
    /// The meter of the packages `pus` are on, from the powercap tree at `root` and CPU
    /// topology at `cpu_sysfs`; `Err` says why energy cannot be measured.
    pub fn open(root: &Path, cpu_sysfs: &Path, pus: &[usize]) -> Result<Self, String> {
        let packages = packages_of(cpu_sysfs, pus)?;
        Ok(EnergyMeter {
            zones: zones(root, &packages)?,
            started: None,
            failure: None,
        })
    }

    /// Empty totals for one phase of this meter.
    pub fn totals(&self) -> PhaseTotals {
        PhaseTotals {
            uj: vec![0; self.zones.len()],
            failure: None,
        }
    }

    fn read(&mut self) -> Option<Vec<u64>> {
        let readings: Result<Vec<u64>, String> = self
            .zones
            .iter()
            .map(|z| read_number(&z.energy_uj))
            .collect();
        readings
            .map_err(|e| self.failure = Some(format!("a reading failed: {e}")))
            .ok()
    }

    /// Reads every zone: a span of a phase begins.
    pub fn start(&mut self) {
        self.started = self.read();
    }

    /// Reads every zone again and adds the energy since [`EnergyMeter::start`] to `totals`.
    pub fn stop(&mut self, totals: &mut PhaseTotals) {
        let (Some(before), Some(after)) = (self.started.take(), self.read()) else {
            totals.failure = self.failure.clone();
            return;
        };
        for (i, zone) in self.zones.iter().enumerate() {
            totals.uj[i] += delta_uj(before[i], after[i], zone.max_energy_range_uj);
        }
    }

    /// The energy of each package over the `prefill` and `decode` totals (each package used
    /// by this instance alone until [`super::energy::mark_sharing`] says otherwise); `Err`
    /// says why a phase has no energy.
    pub fn packages(
        &self,
        prefill: &PhaseTotals,
        decode: &PhaseTotals,
    ) -> Result<Vec<PackageEnergy>, String> {
        if let Some(failure) = prefill.failure.as_ref().or(decode.failure.as_ref()) {
            return Err(failure.clone());
        }
        let mut ids: Vec<usize> = self.zones.iter().map(|z| z.package).collect();
        ids.sort_unstable();
        ids.dedup();
        let phase = |package: usize, totals: &PhaseTotals| {
            let sum = |domain: Domain| {
                let mut of = self
                    .zones
                    .iter()
                    .zip(&totals.uj)
                    .filter(|(z, _)| z.package == package && z.domain == domain)
                    .map(|(_, uj)| *uj as f64 / 1e6)
                    .peekable();
                of.peek().is_some().then(|| of.sum::<f64>())
            };
            PhaseJoules {
                package_j: sum(Domain::Package).unwrap_or(0.0),
                dram_j: sum(Domain::Dram),
            }
        };
        Ok(ids
            .into_iter()
            .map(|package| PackageEnergy {
                package,
                shared_by: 1,
                prefill: phase(package, prefill),
                decode: phase(package, decode),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture laid out like `/sys/class/powercap` and `/sys/devices/system/cpu`.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let f = Fixture {
                dir: tempfile::tempdir().unwrap(),
            };
            f.zone("intel-rapl:0", "package-0", 1_000, 10_000_000);
            f.zone("intel-rapl:0:0", "core", 7, 10_000_000);
            f.zone("intel-rapl:0:1", "dram", 500, 10_000_000);
            f.zone("intel-rapl:1", "package-1", 9_000, 10_000_000);
            f.zone("intel-rapl:1:0", "dram", 0, 10_000_000);
            f.zone("intel-rapl:2", "psys", 0, 10_000_000);
            f.zone("intel-rapl-mmio:0", "package-0", 0, 10_000_000);
            for (cpu, package) in [(0, 0), (1, 0), (2, 1)] {
                let topo = f.cpus().join(format!("cpu{cpu}/topology"));
                std::fs::create_dir_all(&topo).unwrap();
                std::fs::write(topo.join("physical_package_id"), format!("{package}\n")).unwrap();
            }
            f
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("powercap")
        }

        fn cpus(&self) -> PathBuf {
            self.dir.path().join("cpu")
        }

        fn zone(&self, dir: &str, name: &str, uj: u64, max: u64) {
            let d = self.root().join(dir);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
            std::fs::write(d.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
            self.set(dir, uj);
        }

        fn set(&self, dir: &str, uj: u64) {
            std::fs::write(self.root().join(dir).join("energy_uj"), format!("{uj}\n")).unwrap();
        }
    }

    #[test]
    fn package_and_dram_zones_of_the_touched_packages_only() {
        let f = Fixture::new();
        let zones = zones(&f.root(), &[0]).unwrap();
        let found: Vec<(usize, Domain, String)> = zones
            .iter()
            .map(|z| {
                let dir = z.energy_uj.parent().unwrap().file_name().unwrap();
                (z.package, z.domain, dir.to_string_lossy().into_owned())
            })
            .collect();
        assert_eq!(
            found,
            [
                (0, Domain::Package, "intel-rapl:0".into()),
                (0, Domain::Dram, "intel-rapl:0:1".into())
            ],
            "core subzones, psys, mmio duplicates and package 1 are left out"
        );
        assert_eq!(zones[0].max_energy_range_uj, 10_000_000);
        assert_eq!(packages_of(&f.cpus(), &[2, 0, 1]).unwrap(), [0, 1]);
    }

    #[test]
    fn a_missing_tree_or_package_is_one_reason() {
        let f = Fixture::new();
        let none = zones(&f.dir.path().join("absent"), &[0]).unwrap_err();
        assert!(none.starts_with("no RAPL powercap zones: "), "{none}");
        let missing = zones(&f.root(), &[0, 3]).unwrap_err();
        assert!(missing.contains("for package 3 in"), "{missing}");
        let cpu = packages_of(&f.cpus(), &[9]).unwrap_err();
        assert!(cpu.contains("cpu9/topology/physical_package_id"), "{cpu}");
    }

    #[test]
    fn wrap_around_counts_the_rest_of_the_range() {
        assert_eq!(delta_uj(100, 350, 1_000), 250);
        assert_eq!(delta_uj(900, 50, 1_000), 150);
        assert_eq!(delta_uj(7, 7, 1_000), 0);
    }

    #[test]
    fn each_phase_gets_the_energy_of_its_own_spans() {
        let f = Fixture::new();
        let mut meter = EnergyMeter::open(&f.root(), &f.cpus(), &[0, 1]).unwrap();
        let (mut prefill, mut decode) = (meter.totals(), meter.totals());
        // two repetitions: prefill then decode, with energy spent between them too
        meter.start();
        f.set("intel-rapl:0", 3_000);
        f.set("intel-rapl:0:1", 600);
        meter.stop(&mut prefill);
        f.set("intel-rapl:0", 4_000); // between the phases: nobody's
        meter.start();
        f.set("intel-rapl:0", 9_004_000);
        f.set("intel-rapl:0:1", 1_600);
        meter.stop(&mut decode);
        meter.start();
        // the package counter wraps at 10 J
        f.set("intel-rapl:0", 1_000);
        meter.stop(&mut prefill);
        meter.start();
        f.set("intel-rapl:0", 2_001_000);
        f.set("intel-rapl:0:1", 2_600);
        meter.stop(&mut decode);
        let packages = meter.packages(&prefill, &decode).unwrap();
        assert_eq!(packages.len(), 1);
        let p = &packages[0];
        assert_eq!((p.package, p.shared_by), (0, 1));
        assert!((p.prefill.package_j - (2_000.0 + 997_000.0) / 1e6).abs() < 1e-12);
        assert_eq!(p.prefill.dram_j, Some(100.0 / 1e6));
        assert!((p.decode.package_j - 11.0).abs() < 1e-12, "{p:?}");
        assert_eq!(p.decode.dram_j, Some(2_000.0 / 1e6));
    }

    #[test]
    fn the_dies_of_a_package_are_summed_into_one_package() {
        let f = Fixture::new();
        // package 0's second die sorts after package 1: intel-rapl:10 after intel-rapl:1
        f.zone("intel-rapl:10", "package-0-die-1", 100, 10_000_000);
        let mut meter = EnergyMeter::open(&f.root(), &f.cpus(), &[0, 2]).unwrap();
        let (mut prefill, decode) = (meter.totals(), meter.totals());
        meter.start();
        f.set("intel-rapl:0", 1_500);
        f.set("intel-rapl:10", 400);
        f.set("intel-rapl:1", 9_001);
        meter.stop(&mut prefill);
        let packages = meter.packages(&prefill, &decode).unwrap();
        let found: Vec<(usize, f64)> = packages
            .iter()
            .map(|p| (p.package, (p.prefill.package_j * 1e6).round()))
            .collect();
        assert_eq!(found, [(0, 800.0), (1, 1.0)]);
    }

    #[test]
    fn a_reading_that_fails_mid_run_leaves_no_energy_and_says_why() {
        let f = Fixture::new();
        let mut meter = EnergyMeter::open(&f.root(), &f.cpus(), &[2]).unwrap();
        let (mut prefill, decode) = (meter.totals(), meter.totals());
        meter.start();
        std::fs::write(f.root().join("intel-rapl:1/energy_uj"), "garbage").unwrap();
        meter.stop(&mut prefill);
        let err = meter.packages(&prefill, &decode).unwrap_err();
        assert!(
            err.starts_with("a reading failed: ") && err.contains("is not a count"),
            "{err}"
        );
    }
}
