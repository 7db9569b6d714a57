//! The energy of a run's phases per package (RAPL, read by [`super::rapl`]), and the share of
//! it each instance is given.
//!
//! RAPL counts a whole package: every core of the socket and its uncore, whoever runs on
//! them. An instance's energy is its packages' energy during its phases, each package's
//! divided by the number of the run's instances computing on it at the same time
//! ([`PackageEnergy::shared_by`]). Other processes on the package are counted too.

use serde::{Deserialize, Serialize};

/// Energy counted during one phase (summed over the measured repetitions), J.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseJoules {
    /// The package domain (all dies of the package), J.
    pub package_j: f64,
    /// The DRAM domain, J; `None` where the package has no DRAM zone (AMD, client parts).
    pub dram_j: Option<f64>,
}

/// What RAPL counted on one package during a run's phases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageEnergy {
    /// Physical package id (the `package-<id>` zone; `physical_package_id` of its CPUs).
    pub package: usize,
    /// Instances of the run computing on this package at the same time (1 for a single
    /// instance): the package's energy is divided among them.
    pub shared_by: usize,
    /// During the prefills of the measured repetitions.
    pub prefill: PhaseJoules,
    /// During the decodes of the measured repetitions.
    pub decode: PhaseJoules,
}

/// The energy of one phase given to an instance: each package's divided by
/// [`PackageEnergy::shared_by`], summed over its packages; DRAM only when every package has
/// it. `None` without packages (energy not measured).
pub fn attributed(
    packages: &[PackageEnergy],
    phase: fn(&PackageEnergy) -> PhaseJoules,
) -> Option<PhaseJoules> {
    if packages.is_empty() {
        return None;
    }
    let share = |p: &PackageEnergy| 1.0 / p.shared_by.max(1) as f64;
    Some(PhaseJoules {
        package_j: packages.iter().map(|p| phase(p).package_j * share(p)).sum(),
        dram_j: packages
            .iter()
            .map(|p| phase(p).dram_j.map(|j| j * share(p)))
            .sum(),
    })
}

/// Sets [`PackageEnergy::shared_by`] of each instance's packages (the instances of one run,
/// measured at the same time) to the number of instances that counted the package.
pub fn mark_sharing(instances: &mut [&mut Vec<PackageEnergy>]) {
    let count = |package: usize, all: &[&mut Vec<PackageEnergy>]| {
        all.iter()
            .filter(|i| i.iter().any(|p| p.package == package))
            .count()
    };
    let counts: Vec<Vec<usize>> = instances
        .iter()
        .map(|i| i.iter().map(|p| count(p.package, instances)).collect())
        .collect();
    for (instance, counts) in instances.iter_mut().zip(counts) {
        for (p, n) in instance.iter_mut().zip(counts) {
            p.shared_by = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(package: usize, prefill_j: f64, dram_j: Option<f64>) -> PackageEnergy {
        PackageEnergy {
            package,
            shared_by: 1,
            prefill: PhaseJoules {
                package_j: prefill_j,
                dram_j,
            },
            decode: PhaseJoules::default(),
        }
    }

    #[test]
    fn instances_on_one_package_share_it_and_those_on_others_do_not() {
        // instances 0 and 1 on package 0, instance 2 on packages 0 and 1
        let mut a = vec![package(0, 10.0, Some(2.0))];
        let mut b = vec![package(0, 10.0, Some(2.0))];
        let mut c = vec![package(0, 12.0, Some(2.0)), package(1, 8.0, None)];
        mark_sharing(&mut [&mut a, &mut b, &mut c]);
        assert_eq!(a[0].shared_by, 3);
        assert_eq!((c[0].shared_by, c[1].shared_by), (3, 1));
        let prefill = |p: &PackageEnergy| p.prefill;
        let mine = attributed(&c, prefill).unwrap();
        assert!((mine.package_j - (4.0 + 8.0)).abs() < 1e-12);
        assert_eq!(mine.dram_j, None, "package 1 has no DRAM zone");
        let first = attributed(&a, prefill).unwrap();
        assert_eq!(first.dram_j.map(|j| (j * 3.0).round()), Some(2.0));
        assert_eq!(attributed(&[], prefill), None);
    }
}
