//! Memory bandwidth: pinned threads streaming their own buffers, far larger than the caches.

use crate::machine::huge_pages::HugeBuffer;
use crate::machine::MachineError;
use hwlocality::cpu::binding::CpuBindingFlags;
use hwlocality::memory::binding::{MemoryBindingFlags, MemoryBindingPolicy};
use hwlocality::Topology;
use std::sync::{Arc, Barrier};
use std::time::Instant;

/// Which kernel streams the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Sum every 64-bit word of a buffer: pure reads.
    Read,
    /// STREAM triad `a[i] = b[i] + s * c[i]`: two reads and a write per element.
    Triad,
}

/// Parts of its buffer each read thread streams at once. One sequential stream per thread
/// leaves the memory idle: on 2 Zen 3 cores, 4 streams read 25-35% faster than 1, 8 no faster
/// than 4 — and decode's kernels keep several streams in flight too (4 float rows per tile).
const READ_STREAMS: usize = 4;

/// Bytes ahead of its reads that each read stream prefetches (5-10% more on top of the 4
/// streams on 2 Zen 3 cores; decode's kernels prefetch as far).
const READ_AHEAD_BYTES: usize = 1024;

/// Words of a cache line.
const LINE_WORDS: usize = 8;

/// The read kernel: the sum of every word of `words`, streamed as the calibration streams
/// them (several parts at once, prefetched, where the CPU has AVX2).
pub(super) fn read_kernel(words: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { read_kernel_avx2(words) };
    }
    read_kernel_portable(words)
}

/// Eight independent lanes so the loop vectorizes and is not bound by one add chain.
fn read_kernel_portable(words: &[u64]) -> u64 {
    let mut acc = [0u64; LINE_WORDS];
    let lines = words.chunks_exact(LINE_WORDS);
    let rest = lines.remainder();
    for line in lines {
        for (a, v) in acc.iter_mut().zip(line) {
            *a = a.wrapping_add(*v);
        }
    }
    acc.iter().chain(rest).fold(0, |s, a| s.wrapping_add(*a))
}

/// The same sum over [`READ_STREAMS`] parts of the cache-line-aligned body at once, each part
/// prefetched [`READ_AHEAD_BYTES`] ahead, with two 256-bit loads per line; the words before
/// the body and after the parts are summed one by one.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn read_kernel_avx2(words: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let head = words.as_ptr().align_offset(64).min(words.len());
    let (edge, body) = words.split_at(head);
    let per_stream = body.len() / LINE_WORDS / READ_STREAMS;
    let (streamed, tail) = body.split_at(per_stream * LINE_WORDS * READ_STREAMS);
    let p = streamed.as_ptr();
    let mut acc = [_mm256_setzero_si256(); 2 * READ_STREAMS];
    for line in 0..per_stream {
        for s in 0..READ_STREAMS {
            let at = (s * per_stream + line) * LINE_WORDS;
            // SAFETY: line `line` of part `s` lies in `streamed`, 64-byte aligned; the hint
            // may point past the buffer (it is dropped there).
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(
                    (p.add(at) as *const i8).wrapping_add(READ_AHEAD_BYTES),
                );
                let q = p.add(at) as *const __m256i;
                acc[2 * s] = _mm256_add_epi64(acc[2 * s], _mm256_load_si256(q));
                acc[2 * s + 1] = _mm256_add_epi64(acc[2 * s + 1], _mm256_load_si256(q.add(1)));
            }
        }
    }
    let sum = acc
        .iter()
        .fold(_mm256_setzero_si256(), |s, a| _mm256_add_epi64(s, *a));
    let mut lanes = [0u64; 4];
    // SAFETY: `lanes` is 256 bits.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, sum) };
    lanes
        .iter()
        .chain(edge)
        .chain(tail)
        .fold(0u64, |s, v| s.wrapping_add(*v))
}

fn triad_kernel(a: &mut [f32], b: &[f32], c: &[f32], s: f32) {
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + s * c;
    }
}

/// Bytes moved per element for `kernel`.
fn bytes_per_element(kernel: Kernel) -> f64 {
    match kernel {
        Kernel::Read => 8.0,
        Kernel::Triad => 12.0,
    }
}

/// GB/s (10^9 bytes) of `kernel` with one thread pinned to each of `pus`, memory bound to
/// `nodes`, each thread streaming `bytes_per_thread`; the best of `repeats` passes.
pub fn measure(
    kernel: Kernel,
    pus: &[usize],
    nodes: &[usize],
    bytes_per_thread: usize,
    repeats: usize,
) -> Result<f64, MachineError> {
    let topology = Arc::new(Topology::new().map_err(|e| MachineError::Binding(e.to_string()))?);
    let barrier = Arc::new(Barrier::new(pus.len() + 1));
    let done = Arc::new(Barrier::new(pus.len() + 1));
    let handles: Vec<_> = pus
        .iter()
        .map(|&pu| {
            let (topology, barrier, done) = (topology.clone(), barrier.clone(), done.clone());
            let nodes = nodes.to_vec();
            std::thread::spawn(move || -> Result<Vec<(Instant, Instant)>, MachineError> {
                let set = std::iter::once(pu)
                    .map(|p| hwlocality::bitmap::BitmapIndex::try_from(p).expect("PU index"))
                    .collect::<hwlocality::cpu::cpuset::CpuSet>();
                let nodeset = nodes
                    .iter()
                    .map(|&n| hwlocality::bitmap::BitmapIndex::try_from(n).expect("node index"))
                    .collect::<hwlocality::memory::nodeset::NodeSet>();
                let pinned = topology
                    .bind_cpu(&set, CpuBindingFlags::THREAD)
                    .map_err(|e| {
                        MachineError::Binding(format!(
                            "pinning a bandwidth thread to cpu {pu}: {e}"
                        ))
                    })
                    .and_then(|()| {
                        topology
                            .bind_memory(
                                &nodeset,
                                MemoryBindingPolicy::Bind,
                                MemoryBindingFlags::THREAD,
                            )
                            .map_err(|e| {
                                MachineError::Binding(format!(
                                    "binding bandwidth buffers to nodes {nodeset}: {e}"
                                ))
                            })
                    });
                // Buffers are first touched here, after the binding: on the right node.
                let n = bytes_per_thread / 8;
                let third = |v: f32| match kernel {
                    Kernel::Read => HugeBuffer::zeroed(0),
                    Kernel::Triad => HugeBuffer::filled(n * 2 / 3, v),
                };
                let read = match kernel {
                    Kernel::Read => HugeBuffer::filled(n, pu as u64 + 1),
                    Kernel::Triad => HugeBuffer::zeroed(0),
                };
                let (mut a, b, c) = (third(0.0), third(1.0), third(2.0));
                let mut spans = Vec::with_capacity(repeats);
                for _ in 0..repeats {
                    barrier.wait();
                    let start = Instant::now();
                    // black_box on the inputs: the buffers do not change between passes, so
                    // without it the compiler may hoist the kernel out of the timed loop.
                    match kernel {
                        Kernel::Read => {
                            std::hint::black_box(read_kernel(std::hint::black_box(&read)));
                        }
                        Kernel::Triad => triad_kernel(
                            std::hint::black_box(&mut a),
                            std::hint::black_box(&b),
                            std::hint::black_box(&c),
                            3.0,
                        ),
                    }
                    std::hint::black_box(&a);
                    spans.push((start, Instant::now()));
                    done.wait();
                }
                pinned.map(|()| spans)
            })
        })
        .collect();
    let elements = match kernel {
        Kernel::Read => bytes_per_thread / 8,
        Kernel::Triad => bytes_per_thread / 8 * 2 / 3,
    };
    let bytes = bytes_per_element(kernel) * elements as f64 * pus.len() as f64;
    // The threads time themselves: this thread may not get a core while they stream.
    for _ in 0..repeats {
        barrier.wait();
        done.wait();
    }
    let mut spans: Vec<Vec<(Instant, Instant)>> = Vec::with_capacity(handles.len());
    for h in handles {
        spans.push(
            h.join()
                .map_err(|_| MachineError::Binding("a bandwidth thread panicked".into()))??,
        );
    }
    let best = (0..repeats)
        .map(|r| {
            let start = spans.iter().map(|s| s[r].0).min().expect("threads");
            let end = spans.iter().map(|s| s[r].1).max().expect("threads");
            bytes / (end - start).as_secs_f64() / 1e9
        })
        .fold(0f64, f64::max);
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_compute_what_they_claim() {
        // every alignment of the body, and lengths with words before it, in every stream and
        // after the streams
        let words: Vec<u64> = (1..=200).collect();
        for start in 0..8 {
            for end in [start, start + 7, start + 40, 150, 200] {
                let part = &words[start..end];
                let sum: u64 = part.iter().sum();
                assert_eq!(read_kernel(part), sum, "words {start}..{end}");
                assert_eq!(read_kernel_portable(part), sum, "words {start}..{end}");
            }
        }
        let mut a = vec![0.0; 3];
        triad_kernel(&mut a, &[1.0, 2.0, 3.0], &[1.0, 1.0, 2.0], 3.0);
        assert_eq!(a, [4.0, 5.0, 9.0]);
    }
}
