//! Decode attention over the KV cache of Llama-3.2-1B's shapes (16 layers, 32 query heads over 8
//! KV heads of 64 values) at a depth, for each cache type: what a decode step's attention costs
//! apart from its weights.
//!
//! `cargo bench --bench attention` prints, per KV type, the milliseconds of one step's attention
//! (every layer once) and the GB/s of cache it reads, the medians of the steps, on all rayon
//! threads at the active instruction-set level. The 16 layers' caches (71-269 MB at depth 4096)
//! are far beyond the caches, so each layer's read comes from memory.
//! `LLAMAPERF_BENCH_DEPTH` sets the depth (default 4096).

use llamaperf_engine::attention::causal_attention;
use llamaperf_engine::kernels::Isa;
use llamaperf_engine::kv_cache::KvCache;
use llamaperf_engine::kv_format::KvFormat;
use llamaperf_engine::kv_q8::Q8_0;
use llamaperf_engine::team::Team;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

const LAYERS: usize = 16;
const HEADS: usize = 32;
const KV_HEADS: usize = 8;
const HEAD_DIM: usize = 64;
/// Positions stored per write while filling the cache.
const FILL_CHUNK: usize = 512;

/// Random values in [-2, 2), the same for the same seed.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
}

/// Median seconds of one decode step's attention at `depth` over an `F` cache.
fn step_seconds<F: KvFormat>(depth: usize, steps: usize) -> f64 {
    let mut cache = KvCache::<F>::new(LAYERS, 1, KV_HEADS, depth + 1, HEAD_DIM).unwrap();
    let row = KV_HEADS * HEAD_DIM;
    for layer in 0..LAYERS {
        let mut pos = 0;
        while pos <= depth {
            let seq = FILL_CHUNK.min(depth + 1 - pos);
            let k = random(seq * row, (layer * 7919 + pos) as u64);
            let v = random(seq * row, (layer * 7919 + pos + 1) as u64);
            cache.store(layer, &k, &v, seq, pos).unwrap();
            pos += seq;
        }
    }
    let q = random(HEADS * HEAD_DIM, 5);
    let mut out = vec![0f32; q.len()];
    Team::scope(|| {
        let mut times: Vec<f64> = (0..steps + 1)
            .map(|_| {
                let start = Instant::now();
                for layer in 0..LAYERS {
                    causal_attention(&q, cache.layer(layer), HEADS, 1, depth, &mut out);
                }
                start.elapsed().as_secs_f64()
            })
            .skip(1)
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    })
}

fn report<F: KvFormat>(depth: usize, steps: usize) {
    let seconds = step_seconds::<F>(depth, steps);
    let rows = (2 * LAYERS * KV_HEADS * (depth + 1)) as u64;
    let bytes = F::DTYPE.bytes_for(rows * HEAD_DIM as u64) as f64;
    println!(
        "{:<6} {:>10.2} {:>10.1} {:>10.1}",
        F::DTYPE.name(),
        seconds * 1e3,
        bytes / 1e6,
        bytes / seconds / 1e9
    );
}

fn main() {
    // `cargo test` runs benches once as a smoke test, without `--bench`
    let full = std::env::args().any(|a| a == "--bench");
    let depth = std::env::var("LLAMAPERF_BENCH_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(if full { 4096 } else { 100 });
    let steps = if full { 15 } else { 1 };
    println!(
        "decode attention at depth {depth}, {} threads, {}",
        rayon::current_num_threads(),
        Isa::active()
    );
    println!("{:<6} {:>10} {:>10} {:>10}", "kv", "ms/step", "MB", "GB/s");
    report::<f32>(depth, steps);
    report::<half::f16>(depth, steps);
    report::<half::bf16>(depth, steps);
    report::<Q8_0>(depth, steps);
}
