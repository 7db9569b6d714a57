//! How the engine's benches time a call: wall-clock, or with `LLAMAPERF_BENCH_CPU=1` CPU time
//! divided by the rayon threads (what the call would take on otherwise idle cores, for a machine
//! shared with other work). Included by each bench with `#[path]`, as benches are separate crates.

use std::time::Instant;

/// Seconds of CPU time this process has used (all threads).
fn cpu_s() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// The clock of one series of calls, chosen by `LLAMAPERF_BENCH_CPU` when it is made.
pub struct CallClock {
    /// Whether calls are timed by CPU time (`LLAMAPERF_BENCH_CPU=1`) rather than wall-clock.
    cpu: bool,
    /// Rayon threads that CPU time is divided by.
    threads: f64,
}

impl CallClock {
    /// The clock `LLAMAPERF_BENCH_CPU` asks for, over the current rayon pool's threads.
    pub fn from_env() -> Self {
        Self {
            cpu: std::env::var("LLAMAPERF_BENCH_CPU").is_ok_and(|v| v == "1"),
            threads: rayon::current_num_threads() as f64,
        }
    }

    /// Seconds one call of `f` takes by this clock.
    pub fn seconds(&self, f: &mut impl FnMut()) -> f64 {
        let (t, c) = (Instant::now(), cpu_s());
        f();
        if self.cpu {
            (cpu_s() - c) / self.threads
        } else {
            t.elapsed().as_secs_f64()
        }
    }
}

/// The median of `times` in seconds (the upper one of an even count); `times` must not be empty.
pub fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
