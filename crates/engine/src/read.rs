//! The memory read kernel of the bandwidth calibration and the read probe: it streams a
//! buffer as decode streams its weights (several parts at once, prefetched ahead), so decode's
//! GB/s can be set against a pure read of the same memory.

/// Parts of its buffer each read thread streams at once: several streams per thread keep more
/// loads in flight than one sequential stream, which leaves the memory idle — and decode's
/// kernels keep several streams in flight too (4 float rows per tile).
const READ_STREAMS: usize = 4;

/// Bytes ahead of its reads that each read stream prefetches, so its lines are on their way
/// before the loads need them, as far as decode's kernels prefetch.
const READ_AHEAD_BYTES: usize = 1024;

/// Words of a cache line.
const LINE_WORDS: usize = 8;

/// The read kernel: the sum of every word of `words`, streamed as the calibration streams
/// them (several parts at once, prefetched, where the CPU has AVX2).
pub fn read_kernel(words: &[u64]) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_kernels_sum_every_word() {
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
    }
}
