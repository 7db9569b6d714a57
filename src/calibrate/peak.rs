//! The instruction set's peak rates on 1..N cores: the engine's [`PeakKernel`] chains on
//! threads pinned one per PU, as likwid-bench's `peakflops` runs them. The hard roof of prefill,
//! which no kernel can pass, beside the GEMM rate the engine's own kernels reach.
//!
//! Each thread's rate is its operations over the CPU time it ran (not the wall clock): the
//! issue rate of its core, which another task taking the core for a while does not lower (on
//! this 2-core host, with others compiling, wall-clock passes gave one core 38 of its 117
//! GFLOP/s of f32 FMA). The rate of N threads is the sum of theirs.

use super::pinned::timed_passes;
use crate::machine::MachineError;
use llamaperf_engine::peak::PeakKernel;
use llamaperf_os::process::thread_cpu_s;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Timed passes per kernel, of which each thread's best counts: a peak is what the core gave
/// at its best, and a shared host only ever takes cycles away.
const PEAK_PASSES: usize = 5;

/// Least seconds of one pass on one thread: long beside a timer tick and the threads' start.
const PASS_SECONDS: f64 = 0.05;

/// The peak of one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeakResult {
    /// The instruction.
    pub kernel: PeakKernel,
    /// Vector width it ran at, bits.
    pub width_bits: u32,
    /// Sum over the threads of each one's best pass, operations over the CPU time it ran,
    /// 10^9 per second (a multiply-add counts 2).
    pub gop_s: f64,
}

/// Peaks at one core count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakPoint {
    /// Physical cores.
    pub cores: usize,
    /// Whether every core ran on all its usable PUs (as the bandwidth points' `smt`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub smt: bool,
    /// Per kernel this CPU has.
    pub results: Vec<PeakResult>,
}

/// Rounds of `kernel` that take at least [`PASS_SECONDS`] on this thread, and the operations
/// they do; `None` when the CPU cannot run it.
fn rounds_for(kernel: PeakKernel) -> Option<(u64, u64)> {
    let mut rounds = 1 << 12;
    loop {
        let start = Instant::now();
        let ops = kernel.run(rounds)?;
        if start.elapsed().as_secs_f64() >= PASS_SECONDS {
            return Some((rounds, ops));
        }
        rounds *= 2;
    }
}

/// The peak of every kernel this CPU has, with one thread pinned to each of `pus` (their
/// memory on `nodes`, though the kernels touch none); the kernels it lacks are left out.
pub fn measure(pus: &[usize], nodes: &[usize]) -> Result<Vec<PeakResult>, MachineError> {
    let mut results = Vec::new();
    for kernel in PeakKernel::ALL {
        let (Some(width_bits), Some((rounds, ops))) = (kernel.width_bits(), rounds_for(kernel))
        else {
            continue;
        };
        let (_, rates) = timed_passes(
            pus,
            nodes,
            PEAK_PASSES,
            |_| 0f64,
            |best: &mut f64| {
                let start = thread_cpu_s();
                kernel.run(rounds);
                let ran = thread_cpu_s() - start;
                if ran > 0.0 {
                    *best = best.max(ops as f64 / ran);
                }
            },
        )?;
        results.push(PeakResult {
            kernel,
            width_bits,
            gop_s: rates.iter().sum::<f64>() / 1e9,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn one_core_peaks_are_within_physical_bounds() {
        let results = measure(&[0], &[0]).unwrap();
        for kernel in PeakKernel::ALL {
            let Some(r) = results.iter().find(|r| r.kernel == kernel) else {
                assert_eq!(
                    kernel.width_bits(),
                    None,
                    "{kernel} runs here but was left out"
                );
                // past libtest's capture, which hides what a passing test prints
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped {kernel}: this CPU lacks its instructions"
                );
                continue;
            };
            assert_eq!(Some(r.width_bits), kernel.width_bits());
            // one core: more than 1 GOP/s, less than 64 instructions per cycle at 6 GHz
            let most = 64.0 * 6.0 * kernel.ops_per_instruction(r.width_bits) as f64;
            assert!((1.0..most).contains(&r.gop_s), "{r:?}");
        }
    }
}
