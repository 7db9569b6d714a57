//! Energy per token and average power of a run's phases, from the RAPL energy in its record
//! (see [`crate::counters::energy`] for what an instance is given of its packages' energy).

use super::generation::Phase;
use super::record::RunRecord;
use crate::counters::energy::{attributed, PackageEnergy, PhaseJoules};
use crate::planning::RunSpec;

/// Energy figures of one phase of a run (or one instance of it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhasePower {
    /// Package energy per token the phase processed, J/token.
    pub package_j_per_tok: f64,
    /// DRAM energy per token, J/token; `None` without a DRAM zone.
    pub dram_j_per_tok: Option<f64>,
    /// Package energy / phase time, W.
    pub package_w: f64,
    /// DRAM energy / phase time, W; `None` without a DRAM zone.
    pub dram_w: Option<f64>,
}

impl PhasePower {
    /// Tokens per joule of package and DRAM energy together (package alone without a DRAM
    /// zone).
    pub fn tok_per_j(&self) -> f64 {
        1.0 / (self.package_j_per_tok + self.dram_j_per_tok.unwrap_or(0.0))
    }
}

/// The figures of `phase` of `record` (measured as `spec`): the tokens it processed are
/// B x prompt tokens per prefill and B per decode step, over the measured repetitions; its
/// time is the sum of their TTFTs or decode steps. `None` without energy, or for a phase that
/// did not run.
pub fn phase_power(spec: &RunSpec, record: &RunRecord, phase: Phase) -> Option<PhasePower> {
    let batch = spec.config.batch as f64;
    let reps = &record.repetitions;
    let (tokens, seconds, of): (f64, f64, fn(&PackageEnergy) -> PhaseJoules) = match phase {
        Phase::Prefill => (
            batch * spec.prompt.tokens() as f64 * reps.len() as f64,
            reps.iter().map(|r| r.metrics.ttft_ms / 1e3).sum(),
            |p| p.prefill,
        ),
        Phase::Decode => (
            batch * reps.iter().map(|r| r.decode_steps_ms.len()).sum::<usize>() as f64,
            reps.iter()
                .map(|r| r.decode_steps_ms.iter().sum::<f64>() / 1e3)
                .sum(),
            |p| p.decode,
        ),
    };
    if tokens == 0.0 || seconds <= 0.0 {
        return None;
    }
    let joules = attributed(&record.energy, of)?;
    Some(PhasePower {
        package_j_per_tok: joules.package_j / tokens,
        dram_j_per_tok: joules.dram_j.map(|j| j / tokens),
        package_w: joules.package_j / seconds,
        dram_w: joules.dram_j.map(|j| j / seconds),
    })
}
