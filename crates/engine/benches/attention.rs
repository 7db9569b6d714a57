//! Attention over the KV cache of Llama-3.2-1B's shapes (32 query heads over 8 KV heads of 64
//! values) at a depth: what a step's attention costs apart from its weights.
//!
//! `cargo bench --bench attention` prints:
//! - decode: per KV type, the milliseconds of one step's attention over 16 layers (every layer
//!   once) and the GB/s of cache it reads, the medians of the steps. The 16 layers' caches
//!   (71-269 MB at depth 4096) are far beyond the caches, so each layer's read comes from
//!   memory. `LLAMAPERF_BENCH_DEPTH` sets the depth (default 4096), `LLAMAPERF_BENCH_BATCH`
//!   the sequences, each with its own cache at that depth (default 1).
//! - prefill: one layer's attention of a chunk of 512 new positions ending at a depth of 4096,
//!   16384 and 32768 (a long prompt's last chunk) over an f16 cache, in milliseconds and
//!   GFLOP/s (`4 · heads · head_dim` per query and key it attends to), the median of 5 calls.
//!
//! Both on all rayon threads at the active instruction-set level. `LLAMAPERF_BENCH_CPU=1` times
//! by CPU time divided by the threads instead of wall-clock, for a busy machine; `decode` or
//! `prefill` after `--` measures only that part, and KV types (`f32`, `f16`, `bf16`, `q8_0`)
//! only those in decode.

use llamaperf_engine::attention::causal_attention;
use llamaperf_engine::kernels::Isa;
use llamaperf_engine::kv_cache::KvCache;
use llamaperf_engine::kv_format::KvFormat;
use llamaperf_engine::kv_q8::Q8_0;
use llamaperf_engine::model::KvDtype;
use llamaperf_engine::team::Team;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::{median, CallClock};

/// Layers of decode's step.
const LAYERS: usize = 16;
const HEADS: usize = 32;
const KV_HEADS: usize = 8;
const HEAD_DIM: usize = 64;
/// Positions stored per write while filling the cache, and new positions of a prefill call.
const FILL_CHUNK: usize = 512;
/// Depths at which prefill's chunk ends.
const PREFILL_DEPTHS: [usize; 3] = [4096, 16384, 32768];

/// Random values in [-2, 2), the same for the same seed.
fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-2.0..2.0)).collect()
}

/// Median seconds of `calls` calls of `f` after one untimed call, by the clock
/// `LLAMAPERF_BENCH_CPU` asks for (see `cpu_time`).
fn median_s(calls: usize, mut f: impl FnMut()) -> f64 {
    let clock = CallClock::from_env();
    f();
    median((0..calls).map(|_| clock.seconds(&mut f)).collect())
}

/// `f` on a thread of rayon's pool with the pool's other threads as its team, as the engine's
/// generation loop runs: called from outside the pool, the team would be every pool thread
/// plus the caller, one more thread than the cores.
fn on_team<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| Team::scope(f))
}

/// A cache of `layers` layers and `batch` sequences holding random keys and values at
/// positions `0..positions`.
fn filled<F: KvFormat>(layers: usize, batch: usize, positions: usize) -> KvCache<F> {
    let mut cache = KvCache::<F>::new(layers, batch, KV_HEADS, positions, HEAD_DIM).unwrap();
    let row = batch * KV_HEADS * HEAD_DIM;
    for layer in 0..layers {
        let mut pos = 0;
        while pos < positions {
            let seq = FILL_CHUNK.min(positions - pos);
            let k = random(seq * row, (layer * 7919 + pos) as u64);
            let v = random(seq * row, (layer * 7919 + pos + 1) as u64);
            cache.store(layer, &k, &v, seq, pos).unwrap();
            pos += seq;
        }
    }
    cache
}

/// Median seconds of one decode step's attention of `batch` sequences at `depth` over an `F`
/// cache.
fn step_seconds<F: KvFormat>(batch: usize, depth: usize, steps: usize) -> f64 {
    let cache = filled::<F>(LAYERS, batch, depth + 1);
    let q = random(batch * HEADS * HEAD_DIM, 5);
    let mut out = vec![0f32; q.len()];
    on_team(|| {
        median_s(steps, || {
            for layer in 0..LAYERS {
                causal_attention(&q, cache.layer(layer), HEADS, 1, depth, &mut out);
            }
        })
    })
}

/// Prints the decode step of an `F` cache, if `wanted` its type.
fn report<F: KvFormat>(batch: usize, depth: usize, steps: usize, wanted: &dyn Fn(KvDtype) -> bool) {
    if !wanted(F::DTYPE) {
        return;
    }
    let seconds = step_seconds::<F>(batch, depth, steps);
    let rows = (2 * LAYERS * batch * KV_HEADS * (depth + 1)) as u64;
    let bytes = F::DTYPE.bytes_for(rows * HEAD_DIM as u64) as f64;
    println!(
        "{:<6} {:>10.2} {:>10.1} {:>10.1}",
        F::DTYPE.name(),
        seconds * 1e3,
        bytes / 1e6,
        bytes / seconds / 1e9
    );
}

/// One layer's prefill attention of `seq` new positions ending at `depth`, over an `F` cache:
/// prints its median milliseconds and GFLOP/s.
fn report_prefill<F: KvFormat>(depth: usize, seq: usize, calls: usize) {
    let cache = filled::<F>(1, 1, depth);
    let q = random(seq * HEADS * HEAD_DIM, 5);
    let mut out = vec![0f32; q.len()];
    let pos = depth - seq;
    let seconds = on_team(|| {
        median_s(calls, || {
            causal_attention(&q, cache.layer(0), HEADS, seq, pos, &mut out);
        })
    });
    // query-key pairs attended to: position pos + i attends to pos + i + 1 keys
    let pairs = (seq * (pos + 1) + seq * (seq - 1) / 2) as f64;
    let flops = 4.0 * (HEADS * HEAD_DIM) as f64 * pairs;
    println!(
        "{:<6} {:>8} {:>8} {:>10.1} {:>10.1}",
        F::DTYPE.name(),
        depth,
        seq,
        seconds * 1e3,
        flops / seconds / 1e9
    );
}

/// The number the environment variable `name` holds, else `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test` runs benches once as a smoke test, without `--bench`
    let full = std::env::args().any(|a| a == "--bench");
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let chose = |names: &[&str]| chosen.iter().any(|c| names.contains(&c.as_str()));
    let (parts, kvs) = (["decode", "prefill"], ["f32", "f16", "bf16", "q8_0"]);
    let wanted = |part: &str| !chose(&parts) || chosen.iter().any(|c| c == part);
    let wanted_kv = |kv: KvDtype| !chose(&kvs) || chosen.iter().any(|c| c == kv.name());
    println!(
        "{} threads, {}",
        rayon::current_num_threads(),
        Isa::active()
    );
    if wanted("decode") {
        let depth = env_or("LLAMAPERF_BENCH_DEPTH", if full { 4096 } else { 100 });
        let batch = env_or("LLAMAPERF_BENCH_BATCH", 1);
        let steps = if full { 15 } else { 1 };
        println!("decode attention of 16 layers, {batch} sequences at depth {depth}");
        println!("{:<6} {:>10} {:>10} {:>10}", "kv", "ms/step", "MB", "GB/s");
        report::<f32>(batch, depth, steps, &wanted_kv);
        report::<half::f16>(batch, depth, steps, &wanted_kv);
        report::<half::bf16>(batch, depth, steps, &wanted_kv);
        report::<Q8_0>(batch, depth, steps, &wanted_kv);
    }
    if wanted("prefill") {
        println!("prefill attention of one layer, a chunk ending at a depth");
        println!(
            "{:<6} {:>8} {:>8} {:>10} {:>10}",
            "kv", "depth", "chunk", "ms", "GFLOP/s"
        );
        if full {
            for depth in PREFILL_DEPTHS {
                report_prefill::<half::f16>(depth, FILL_CHUNK, 5);
            }
        } else {
            report_prefill::<half::f16>(100, 40, 1);
        }
    }
}
