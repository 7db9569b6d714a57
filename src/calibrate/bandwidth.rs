//! Memory bandwidth: pinned threads streaming their own buffers, far larger than the caches.

use super::pinned::timed_passes;
use crate::machine::MachineError;
use llamaperf_engine::read::read_kernel;
use llamaperf_os::HugeBuffer;

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
    let n = bytes_per_thread / 8;
    // Buffers are first touched by their pinned thread, after the binding: on the right node.
    let setup = |pu: usize| match kernel {
        Kernel::Read => Buffers::Read(HugeBuffer::filled(n, pu as u64 + 1)),
        Kernel::Triad => Buffers::Triad(
            HugeBuffer::filled(n * 2 / 3, 0.0),
            HugeBuffer::filled(n * 2 / 3, 1.0),
            HugeBuffer::filled(n * 2 / 3, 2.0),
        ),
    };
    // black_box on the inputs: the buffers do not change between passes, so without it the
    // compiler may hoist the kernel out of the timed loop.
    let work = |buffers: &mut Buffers| match buffers {
        Buffers::Read(read) => {
            std::hint::black_box(read_kernel(std::hint::black_box(read)));
        }
        Buffers::Triad(a, b, c) => {
            triad_kernel(
                std::hint::black_box(&mut **a),
                std::hint::black_box(&**b),
                std::hint::black_box(&**c),
                3.0,
            );
            std::hint::black_box(&**a);
        }
    };
    let elements = match kernel {
        Kernel::Read => n,
        Kernel::Triad => n * 2 / 3,
    };
    let bytes = bytes_per_element(kernel) * elements as f64 * pus.len() as f64;
    let (spans, _) = timed_passes(pus, nodes, repeats, setup, work)?;
    Ok(spans.iter().map(|s| bytes / s / 1e9).fold(0f64, f64::max))
}

/// What one bandwidth thread streams.
enum Buffers {
    /// The read kernel's buffer.
    Read(HugeBuffer<u64>),
    /// The triad's `a`, `b` and `c`.
    Triad(HugeBuffer<f32>, HugeBuffer<f32>, HugeBuffer<f32>),
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
