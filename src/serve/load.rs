//! The load: `requests` requests sent either by `concurrency` clients in a closed loop (each
//! sends its next request when its last one ended) or on seeded Poisson arrivals at a rate
//! (open loop: each request is sent when it is due, however many are in flight).

use super::client::{Client, RequestPrompt};
use crate::measure::requests::RequestRecord;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How requests are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// `clients` clients, each sending its next request as soon as its last one ended.
    Closed {
        /// Concurrent clients.
        clients: usize,
    },
    /// Poisson arrivals at `per_s` requests/s, the inter-arrival times drawn from `seed`.
    Open {
        /// Arrival rate, requests/s.
        per_s: f64,
        /// Seed of the arrival times.
        seed: u64,
    },
}

/// The requests of one load, in index order, and its wall time (first request due to the
/// last one ended), s.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOutcome {
    /// Every request.
    pub requests: Vec<RequestRecord>,
    /// Wall time, s.
    pub wall_s: f64,
}

/// Due times of `n` Poisson arrivals at `per_s`/s from `seed`, s after the start (the first
/// at 0).
pub fn arrivals(n: usize, per_s: f64, seed: u64) -> Vec<f64> {
    let gap = Exp::new(per_s).expect("rates are > 0");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = 0.0;
    (0..n)
        .map(|i| {
            if i > 0 {
                t += gap.sample(&mut rng);
            }
            t
        })
        .collect()
}

/// Sends one request per prompt under `load` and times each.
pub fn run_load(client: &Client, prompts: &[RequestPrompt], load: Load) -> LoadOutcome {
    let start = Instant::now();
    let since_start = || start.elapsed().as_secs_f64() * 1e3;
    let done = Mutex::new(Vec::with_capacity(prompts.len()));
    match load {
        Load::Closed { clients } => {
            let next = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..clients.min(prompts.len()) {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(prompt) = prompts.get(i) else { break };
                        let record = client.send(i, prompt, since_start());
                        done.lock().expect("no client panics").push(record);
                    });
                }
            });
        }
        Load::Open { per_s, seed } => {
            let due = arrivals(prompts.len(), per_s, seed);
            std::thread::scope(|s| {
                for (i, (prompt, due_s)) in prompts.iter().zip(due).enumerate() {
                    let at = start + Duration::from_secs_f64(due_s);
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    let done = &done;
                    s.spawn(move || {
                        let record = client.send(i, prompt, since_start());
                        done.lock().expect("no client panics").push(record);
                    });
                }
            });
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let mut requests = done.into_inner().expect("no client panics");
    requests.sort_by_key(|r| r.index);
    LoadOutcome { requests, wall_s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_seeded_increasing_and_at_the_rate() {
        let a = arrivals(2000, 4.0, 7);
        assert_eq!(a, arrivals(2000, 4.0, 7));
        assert_ne!(a, arrivals(2000, 4.0, 8));
        assert_eq!(a[0], 0.0);
        assert!(a.windows(2).all(|w| w[1] >= w[0]));
        let rate = (a.len() - 1) as f64 / a[a.len() - 1];
        assert!((rate - 4.0).abs() < 0.4, "{rate}");
    }
}
