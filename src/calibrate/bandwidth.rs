//! Memory bandwidth: pinned threads streaming their own buffers, far larger than the caches.

use crate::machine::MachineError;
use hwlocality::cpu::binding::CpuBindingFlags;
use hwlocality::memory::binding::{MemoryBindingFlags, MemoryBindingPolicy};
use hwlocality::Topology;
use llamaperf_engine::read::read_kernel;
use llamaperf_os::HugeBuffer;
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
    fn triad_computes_what_it_claims() {
        let mut a = vec![0.0; 3];
        triad_kernel(&mut a, &[1.0, 2.0, 3.0], &[1.0, 1.0, 2.0], 3.0);
        assert_eq!(a, [4.0, 5.0, 9.0]);
    }
}
