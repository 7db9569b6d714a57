//! One streaming completion request, timed as its client sees it: sent, first content token,
//! each later token, end of stream, or the reason it failed.

use super::sse::{excerpt, read_stream};
use crate::measure::requests::RequestRecord;
use serde_json::{json, Value};
use std::io::{BufReader, Read};
use std::time::{Duration, Instant};

/// What every request of a run asks for, and where.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    endpoint: String,
    model: String,
    max_tokens: usize,
    seed: u64,
    timeout: Duration,
}

/// The prompt of one request: a text, or token ids (which OpenAI-compatible servers accept in
/// place of a text, so a synthetic prompt is exactly `prompt_tokens` long).
#[derive(Debug, Clone, PartialEq)]
pub enum RequestPrompt {
    /// A text.
    Text(String),
    /// Token ids.
    Ids(Vec<u32>),
}

impl Client {
    /// A client of the completions `endpoint` (`…/v1/completions`) asking `model` for
    /// `max_tokens` tokens, each request limited to `timeout`.
    pub fn new(
        endpoint: &str,
        model: &str,
        max_tokens: usize,
        seed: u64,
        timeout: Duration,
    ) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Client {
            agent,
            endpoint: endpoint.to_string(),
            model: model.to_string(),
            max_tokens,
            seed,
            timeout,
        }
    }

    /// The JSON body of a request for `prompt`: streamed, with usage, greedy, ignoring the
    /// end-of-sequence token so every request generates `max_tokens` tokens.
    pub fn body(&self, prompt: &RequestPrompt) -> Value {
        let prompt = match prompt {
            RequestPrompt::Text(text) => json!(text),
            RequestPrompt::Ids(ids) => json!(ids),
        };
        json!({
            "model": self.model,
            "prompt": prompt,
            "max_tokens": self.max_tokens,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.0,
            "seed": self.seed,
            "ignore_eos": true,
        })
    }

    /// Sends request `index` with `prompt` and times it; `start_ms` is when it was sent, ms
    /// after the load's start. Never fails: a failure is a record with its reason.
    pub fn send(&self, index: usize, prompt: &RequestPrompt, start_ms: f64) -> RequestRecord {
        let sent = Instant::now();
        let mut tokens: Vec<Instant> = Vec::new();
        let outcome = self.stream(prompt, &mut tokens);
        let ms = |t: Instant| t.duration_since(sent).as_secs_f64() * 1e3;
        let e2e_ms = ms(Instant::now());
        let ttft_ms = tokens.first().map(|&t| ms(t));
        let inter_token_ms = tokens
            .windows(2)
            .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
            .collect();
        let (output_tokens, prompt_tokens, error) = match outcome {
            Ok(end) => {
                let n = end.completion_tokens.unwrap_or(end.chunks);
                let error = (end.chunks == 0).then(|| "no content token in the stream".into());
                (n, end.prompt_tokens, error)
            }
            Err(reason) => (tokens.len(), None, Some(reason)),
        };
        let tpot_ms = match (ttft_ms, &error) {
            (Some(ttft), None) if output_tokens > 1 => {
                Some((e2e_ms - ttft) / (output_tokens - 1) as f64)
            }
            _ => None,
        };
        RequestRecord {
            index,
            start_ms,
            ttft_ms,
            tpot_ms,
            e2e_ms,
            output_tokens,
            prompt_tokens,
            inter_token_ms,
            error,
        }
    }

    /// Posts the request and reads its stream, pushing the arrival of each content token.
    fn stream(
        &self,
        prompt: &RequestPrompt,
        tokens: &mut Vec<Instant>,
    ) -> Result<super::sse::StreamEnd, String> {
        let response = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream")
            .send(self.body(prompt).to_string())
            .map_err(|e| self.describe(&e))?;
        let status = response.status().as_u16();
        let mut reader = response.into_body().into_reader();
        if !(200..300).contains(&status) {
            let mut text = String::new();
            let _ = reader.by_ref().take(4096).read_to_string(&mut text);
            return Err(format!("HTTP {status}: {}", excerpt(text.trim(), 200)));
        }
        read_stream(BufReader::new(reader), |t| tokens.push(t)).map_err(|e| e.to_string())
    }

    /// Words for a request that got no response.
    fn describe(&self, e: &ureq::Error) -> String {
        match e {
            ureq::Error::Timeout(_) => format!(
                "timed out after {} s without a response",
                self.timeout.as_secs()
            ),
            ureq::Error::Io(io) => format!("connection failed: {io}"),
            other => format!("request failed: {other}"),
        }
    }
}
