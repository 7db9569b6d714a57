//! A pure read beside a measured run: the calibration's read kernel over buffers of the run's
//! own compute threads, on demand, so decode's bandwidth can be set against the memory's at
//! the same moment (a shared host's bandwidth drifts by tens of percent within minutes, so a
//! calibration taken before the run blurs decode's share of it).

use crate::machine::Machine;
use llamaperf_engine::read::read_kernel;
use llamaperf_os::HugeBuffer;
use std::sync::Mutex;
use std::time::Instant;

/// Least bytes of a probe: far beyond the caches of a small machine.
const LEAST_PROBE_BYTES: usize = 256 << 20;

/// Bytes one probe pass reads on `machine`: 4 x its total L3 and at least 256 MiB, so the
/// pass reads memory, not a cache, on a 2-core VM and on a 2-socket server alike.
pub fn probe_bytes(machine: &Machine) -> usize {
    let l3: u64 = machine.l3_domains.iter().map(|l| l.size_bytes).sum();
    (4 * l3 as usize).max(LEAST_PROBE_BYTES)
}

/// One buffer per thread of the rayon pool it was made on, each allocated and first touched by
/// its thread (so its pages follow that thread's CPU and memory binding), read by all the
/// threads at once on [`ReadProbe::pass`].
pub struct ReadProbe {
    /// The buffer of pool thread `i` at `i`.
    buffers: Vec<HugeBuffer<u64>>,
    /// Bytes of all buffers.
    bytes: usize,
}

impl ReadProbe {
    /// `bytes` in all, split evenly over the threads of the current rayon pool (each part a
    /// whole number of cache lines).
    ///
    /// # Panics
    /// If the memory cannot be mapped, as a `Vec` aborts when it cannot allocate.
    pub fn on_pool(bytes: usize) -> Self {
        let threads = rayon::current_num_threads();
        let words = (bytes / 8 / threads).next_multiple_of(8);
        let made = Mutex::new(Vec::with_capacity(threads));
        rayon::broadcast(|ctx| {
            let buffer = HugeBuffer::filled(words, ctx.index() as u64 + 1);
            made.lock()
                .expect("no probe thread panics holding the lock")
                .push((ctx.index(), buffer));
        });
        let mut made = made
            .into_inner()
            .expect("no probe thread panics holding the lock");
        made.sort_unstable_by_key(|(i, _)| *i);
        ReadProbe {
            buffers: made.into_iter().map(|(_, b)| b).collect(),
            bytes: words * 8 * threads,
        }
    }

    /// Bytes one pass reads.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// One pass: every thread of the pool reads its buffer; GB/s (10^9 bytes per second) of
    /// the whole pass, from the first thread's start to the last one's end as the calling
    /// thread sees them. Must run on the pool the probe was made on.
    pub fn pass(&self) -> f64 {
        let start = Instant::now();
        rayon::broadcast(|ctx| {
            // black_box: the buffers never change, so the sum could be hoisted out of a loop
            std::hint::black_box(read_kernel(std::hint::black_box(
                &self.buffers[ctx.index()],
            )));
        });
        self.bytes as f64 / start.elapsed().as_secs_f64() / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::TopologySource;

    #[test]
    fn a_pass_reads_every_thread_buffer() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            let probe = ReadProbe::on_pool(3 << 20);
            assert_eq!(probe.buffers.len(), 3);
            assert_eq!(probe.bytes(), 3 * (1 << 20));
            // each thread filled its own buffer with its index + 1
            let mut fills: Vec<u64> = probe.buffers.iter().map(|b| b[b.len() - 1]).collect();
            fills.sort_unstable();
            assert_eq!(fills, [1, 2, 3]);
            let gb_s = probe.pass();
            assert!(gb_s.is_finite() && gb_s > 0.0, "{gb_s}");
        });
    }

    #[test]
    fn probes_read_far_beyond_the_caches() {
        let small =
            Machine::load(&TopologySource::Synthetic("pack:1 l3:1 core:2 pu:1".into())).unwrap();
        assert_eq!(probe_bytes(&small), LEAST_PROBE_BYTES);
        let big = Machine::load(&TopologySource::Synthetic(
            "pack:2 numa:4 l3:3(size=32MB) core:8 pu:2".into(),
        ))
        .unwrap();
        assert_eq!(big.l3_domains.len(), 24);
        assert_eq!(
            probe_bytes(&big),
            4 * 24 * 32_000_000,
            "hwloc's MB is 10^6 bytes"
        );
    }
}
