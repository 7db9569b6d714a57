//! What an `openai` run measured: one record per request as its client saw it, and the load's
//! throughput, goodput and latency percentiles over them.

use super::stats::Percentiles;
use crate::machine::process::ThreadBinding;
use serde::{Deserialize, Serialize};

/// One request of the load, as its client saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRecord {
    /// Index of the request in the run, from 0 (the order of the seeded prompts).
    pub index: usize,
    /// When it was sent, ms after the first request was due.
    pub start_ms: f64,
    /// Request sent to the first content token received, ms; `None` when none came.
    pub ttft_ms: Option<f64>,
    /// `(e2e - ttft) / (output_tokens - 1)`, ms; `None` below 2 tokens or on failure.
    pub tpot_ms: Option<f64>,
    /// Request sent to the end of the stream (or to the failure), ms.
    pub e2e_ms: f64,
    /// Generated tokens: the server's `usage.completion_tokens` when it sends it, else the
    /// content chunks received.
    pub output_tokens: usize,
    /// Prompt tokens as the server's `usage` counts them; `None` without usage.
    pub prompt_tokens: Option<usize>,
    /// Time between consecutive content chunks, ms.
    pub inter_token_ms: Vec<f64>,
    /// Why the request failed; `None` when it completed.
    pub error: Option<String>,
}

impl RequestRecord {
    /// Whether the request completed (streamed to its end).
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Whether it completed within both objectives (an objective not given always holds).
    pub fn meets(&self, slo: &Slo) -> bool {
        let within = |value: Option<f64>, limit: Option<u64>| {
            limit.is_none_or(|l| value.is_some_and(|v| v <= l as f64))
        };
        self.ok() && within(self.ttft_ms, slo.ttft_ms) && within(self.tpot_ms, slo.tpot_ms)
    }
}

/// Service-level objectives of goodput, ms; `None` sets no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slo {
    /// Largest TTFT a good request has, ms.
    pub ttft_ms: Option<u64>,
    /// Largest TPOT a good request has, ms.
    pub tpot_ms: Option<u64>,
}

/// The load's outcome over all its requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSummary {
    /// First request due to the last one ended, s.
    pub wall_s: f64,
    /// Requests that completed.
    pub completed: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Output tokens of the completed requests per second of wall time.
    pub output_tok_s: f64,
    /// Completed requests per second of wall time.
    pub request_s: f64,
    /// Requests within both SLOs per second of wall time; `None` without an SLO.
    pub goodput_req_s: Option<f64>,
    /// Share of all requests within both SLOs, %; `None` without an SLO.
    pub goodput_pct: Option<f64>,
    /// TTFT of the completed requests, ms.
    pub ttft_ms: Option<Percentiles>,
    /// TPOT of the completed requests, ms.
    pub tpot_ms: Option<Percentiles>,
    /// End-to-end latency of the completed requests, ms.
    pub e2e_ms: Option<Percentiles>,
}

impl LoadSummary {
    /// The summary of `requests` that took `wall_s`, goodput under `slo`.
    pub fn of(requests: &[RequestRecord], wall_s: f64, slo: &Slo) -> LoadSummary {
        let done: Vec<&RequestRecord> = requests.iter().filter(|r| r.ok()).collect();
        let col = |f: fn(&RequestRecord) -> Option<f64>| -> Vec<f64> {
            done.iter().filter_map(|r| f(r)).collect()
        };
        let per_s = |n: f64| if wall_s > 0.0 { n / wall_s } else { 0.0 };
        let good = requests.iter().filter(|r| r.meets(slo)).count();
        let has_slo = slo.ttft_ms.is_some() || slo.tpot_ms.is_some();
        LoadSummary {
            wall_s,
            completed: done.len(),
            failed: requests.len() - done.len(),
            output_tok_s: per_s(done.iter().map(|r| r.output_tokens as f64).sum()),
            request_s: per_s(done.len() as f64),
            goodput_req_s: has_slo.then(|| per_s(good as f64)),
            goodput_pct: (has_slo && !requests.is_empty())
                .then(|| 100.0 * good as f64 / requests.len() as f64),
            ttft_ms: Percentiles::of(&col(|r| r.ttft_ms)),
            tpot_ms: Percentiles::of(&col(|r| r.tpot_ms)),
            e2e_ms: Percentiles::of(&col(|r| Some(r.e2e_ms))),
        }
    }
}

/// A server llamaperf started for the run, as /proc showed it before it was stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRecord {
    /// The command line as run, placeholders filled in.
    pub command: String,
    /// Its process id (and process group).
    pub pid: u32,
    /// Start to the first healthy answer, s.
    pub ready_s: f64,
    /// Every thread of the server with the CPUs it may run on.
    pub threads: Vec<ThreadBinding>,
    /// Memory policy of its mappings as `numa_maps` shows it (`bind:0`, `default`, ...).
    pub memory_policy: Option<String>,
    /// Its peak resident memory (VmHWM), MB (10^6 bytes).
    pub peak_rss_mb: Option<f64>,
    /// How it ended when it ended before llamaperf stopped it ("exited with code 1"); `None`
    /// when it ran to the end of the load.
    pub died: Option<String>,
    /// Its last stderr lines.
    pub stderr_tail: Vec<String>,
}

/// Everything an `openai` run measured beyond its repetitions (its completed requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingRecord {
    /// The endpoint the load was sent to.
    pub endpoint: String,
    /// The objectives of goodput.
    pub slo: Slo,
    /// Throughput, goodput and latency over the requests.
    pub summary: LoadSummary,
    /// Every request, in index order, failed ones included.
    pub requests: Vec<RequestRecord>,
    /// The server llamaperf started; `None` for a `url`.
    pub server: Option<ServerRecord>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request of `tokens` tokens evenly spaced between `ttft` and `e2e` ms, failed with
    /// `error` when given.
    pub(crate) fn request(
        index: usize,
        ttft: f64,
        e2e: f64,
        tokens: usize,
        error: Option<&str>,
    ) -> RequestRecord {
        RequestRecord {
            index,
            start_ms: 0.0,
            ttft_ms: Some(ttft),
            tpot_ms: (tokens > 1).then(|| (e2e - ttft) / (tokens - 1) as f64),
            e2e_ms: e2e,
            output_tokens: tokens,
            prompt_tokens: Some(10),
            inter_token_ms: vec![(e2e - ttft) / (tokens - 1) as f64; tokens - 1],
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn throughput_counts_completed_tokens_and_goodput_both_objectives() {
        let requests = [
            request(0, 100.0, 1000.0, 10, None), // tpot 100
            request(1, 300.0, 570.0, 10, None),  // ttft too slow
            request(2, 50.0, 320.0, 10, None),   // tpot 30: good
            request(3, 50.0, 60.0, 2, Some("HTTP 500")),
        ];
        let slo = Slo {
            ttft_ms: Some(200),
            tpot_ms: Some(120),
        };
        let s = LoadSummary::of(&requests, 2.0, &slo);
        assert_eq!((s.completed, s.failed), (3, 1));
        assert_eq!(s.output_tok_s, 15.0);
        assert_eq!(s.request_s, 1.5);
        assert_eq!(s.goodput_req_s, Some(1.0));
        assert_eq!(s.goodput_pct, Some(50.0));
        assert_eq!(s.ttft_ms.unwrap().samples, 3);
        let none = LoadSummary::of(&requests, 2.0, &Slo::default());
        assert_eq!((none.goodput_req_s, none.goodput_pct), (None, None));
    }
}
