//! `requests.csv`: one row per request of every `openai` run, failed ones with their reason.

use super::record::{Outcome, SweepRecord};
use crate::schema::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};

/// File name of the requests table inside a results folder.
pub const REQUESTS_FILE: &str = "requests.csv";

/// One row of `requests.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRow {
    /// Results schema version.
    pub schema_version: u32,
    /// Run id.
    pub run_id: String,
    /// The machine it ran on.
    pub host: String,
    /// Index of the request in its run, from 0.
    pub request: usize,
    /// `ok` or `failed`.
    pub status: String,
    /// When it was sent, ms after the load's start.
    pub start_ms: f64,
    /// Sent to first content token, ms; empty when none came.
    pub ttft_ms: Option<f64>,
    /// `(e2e - ttft) / (output_tokens - 1)`, ms; empty for failed requests.
    pub tpot_ms: Option<f64>,
    /// Sent to the end of the stream or the failure, ms.
    pub e2e_ms: f64,
    /// Generated tokens (the server's usage count, else content chunks).
    pub output_tokens: usize,
    /// Prompt tokens as the server counted them; empty without usage.
    pub prompt_tokens: Option<usize>,
    /// Why it failed; empty when it completed.
    pub reason: String,
}

/// The rows of one `runs.jsonl` line: its requests, when it is an `openai` run's record.
pub fn request_rows(r: &SweepRecord) -> Vec<RequestRow> {
    let Outcome::Ok { record } = &r.outcome else {
        return Vec::new();
    };
    let Some(serving) = &record.serving else {
        return Vec::new();
    };
    serving
        .requests
        .iter()
        .map(|q| RequestRow {
            schema_version: SCHEMA_VERSION,
            run_id: r.run_id(),
            host: r.host.clone().unwrap_or_default(),
            request: q.index,
            status: if q.ok() { "ok" } else { "failed" }.to_string(),
            start_ms: q.start_ms,
            ttft_ms: q.ttft_ms,
            tpot_ms: q.tpot_ms,
            e2e_ms: q.e2e_ms,
            output_tokens: q.output_tokens,
            prompt_tokens: q.prompt_tokens,
            reason: q.error.clone().unwrap_or_default(),
        })
        .collect()
}
