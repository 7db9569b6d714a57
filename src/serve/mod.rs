//! Engine `openai`: any OpenAI-compatible server, measured as its clients see it.
//!
//! The worker, already bound to the run's placement, either reaches the server at `url` or
//! starts `server_command` ([`server`]), which inherits the placement's CPUs and memory policy;
//! it then sends the run's load ([`load`]) of streaming completions ([`client`], [`sse`]) and
//! records every request. A request that fails (an HTTP error, a stall past
//! `request_timeout_s`, a malformed stream, a server gone) is a record with its reason; the
//! run fails only when no request completed.

pub mod client;
pub mod load;
pub mod repetition;
pub mod server;
pub mod sse;

use crate::machine::binding::read_back;
use crate::machine::{Machine, MachineError, TopologySource};
use crate::measure::prompt::batch_prompts;
use crate::measure::record::{RepetitionRecord, RunCounters, RunRecord, RunSummary};
use crate::measure::requests::{LoadSummary, ServerRecord, ServingRecord, Slo};
use crate::model::{ModelFile, ModelFileError};
use crate::planning::spec::{Prompt, RunSpec};
use client::{Client, RequestPrompt};
use hwlocality::Topology;
use load::{run_load, Load};
use repetition::repetition_of;
use server::{command_line, free_port, Placeholders, Server, ServerError};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why an `openai` run produced no record.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The model file could not be read.
    #[error(transparent)]
    Model(#[from] ModelFileError),
    /// The machine could not be read back.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// The server could not be started or never became healthy.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// No port was free for the server.
    #[error("no free loopback port for the server: {0}")]
    Port(std::io::Error),
    /// Not one request completed.
    #[error("all {requests} requests failed: {reasons}{}", tail_text(.stderr_tail))]
    AllFailed {
        /// Requests sent.
        requests: usize,
        /// Their reasons, each with how many requests it ended.
        reasons: String,
        /// The server's last stderr lines, when llamaperf started it.
        stderr_tail: Vec<String>,
    },
}

fn tail_text(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(
            "; the server's last stderr lines:\n  {}",
            lines.join("\n  ")
        )
    }
}

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The prompt of each request: the run's text, or seeded token ids different per request.
fn prompts(spec: &RunSpec, vocab: usize) -> Vec<RequestPrompt> {
    let n = spec.config.serving.requests;
    match &spec.prompt {
        Prompt::Text { text, .. } => vec![RequestPrompt::Text(text.clone()); n],
        synthetic => batch_prompts(synthetic, n, vocab, spec.config.seed)
            .into_iter()
            .map(RequestPrompt::Ids)
            .collect(),
    }
}

/// "HTTP 500: … (3), timed out … (1)": each failure reason with how many requests it ended.
fn reasons(requests: &[crate::measure::requests::RequestRecord]) -> String {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for e in requests.iter().filter_map(|r| r.error.as_deref()) {
        *count.entry(e).or_default() += 1;
    }
    count
        .iter()
        .map(|(e, n)| format!("{e} ({n})"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Measures `spec`'s load against its server. The process must already be bound
/// ([`crate::machine::binding::bind_process`], which returns `topology`): a server it starts
/// inherits the binding. Half the run's `timeout_s` bounds the wait for the server's health.
pub fn execute(spec: &RunSpec, topology: &Topology) -> Result<RunRecord, ServeError> {
    let c = &spec.config;
    let s = &c.serving;
    let model = ModelFile::open(&spec.model.path)?;
    let mut server = None;
    let mut ready_s = 0.0;
    let base = match (&s.url, &s.server_command) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(template)) => {
            let port = free_port().map_err(ServeError::Port)?;
            let words = command_line(
                template,
                &Placeholders {
                    model: spec.model.path.display().to_string(),
                    port,
                    threads: spec.threads(),
                    cpus: spec.placement.pus.clone(),
                },
            )?;
            let mut started = Server::start(&words)?;
            let base = format!("http://127.0.0.1:{port}");
            let limit = Duration::from_secs((c.timeout_s / 2).max(1));
            match started.wait_healthy(&format!("{base}/health"), limit) {
                Ok(took) => ready_s = took.as_secs_f64(),
                Err(e) => {
                    started.stop();
                    return Err(e.into());
                }
            }
            server = Some(started);
            base
        }
        (None, None) => unreachable!("planning checks that an openai run names its server"),
    };
    let endpoint = format!("{base}/v1/completions");
    let client = Client::new(
        &endpoint,
        &spec.model.name,
        c.gen_tokens,
        c.seed,
        Duration::from_secs(s.request_timeout_s),
    );
    let load = match s.request_rate {
        Some(rate) => Load::Open {
            per_s: rate.per_s(),
            seed: c.seed,
        },
        None => Load::Closed {
            clients: s.concurrency,
        },
    };
    let prompts = prompts(spec, model.summary.config.vocab);
    let measure_start = SystemTime::now();
    let outcome = run_load(&client, &prompts, load);
    let measure_end = SystemTime::now();
    // only a load with failed requests waits for a server that may be dying
    let any_failed = outcome.requests.iter().any(|r| r.error.is_some());
    let grace = Duration::from_secs(if any_failed { 2 } else { 0 });
    let server = server.map(|mut server| {
        let died = server.exited_within(grace);
        let record = ServerRecord {
            command: server.command.clone(),
            pid: server.pid(),
            ready_s,
            threads: server.threads(),
            memory_policy: server.memory_policy(),
            peak_rss_mb: server.peak_rss_mb(),
            died,
            stderr_tail: Vec::new(),
        };
        ServerRecord {
            stderr_tail: server.stop(),
            ..record
        }
    });
    let repetitions: Vec<RepetitionRecord> = outcome
        .requests
        .iter()
        .filter_map(|r| repetition_of(r, spec.prompt.tokens()))
        .collect();
    let Some(summary) = RunSummary::of(&repetitions) else {
        return Err(ServeError::AllFailed {
            requests: outcome.requests.len(),
            reasons: reasons(&outcome.requests),
            stderr_tail: server.map(|s| s.stderr_tail).unwrap_or_default(),
        });
    };
    let slo = Slo {
        ttft_ms: s.slo_ttft_ms,
        tpot_ms: s.slo_tpot_ms,
    };
    let load_summary = LoadSummary::of(&outcome.requests, outcome.wall_s, &slo);
    let mut notes = Vec::new();
    if load_summary.failed > 0 {
        notes.push(format!(
            "{} of {} requests failed: {}",
            load_summary.failed,
            outcome.requests.len(),
            reasons(&outcome.requests)
        ));
    }
    if let Some(died) = server.as_ref().and_then(|s| s.died.as_ref()) {
        notes.push(format!("the server {died} during the load"));
    }
    if spec.model.synthetic {
        notes.push("synthetic model: random weights, generated text is meaningless".into());
    }
    let machine = Machine::describe(topology, &TopologySource::ThisMachine)?;
    Ok(RunRecord {
        model: model.summary,
        threads: spec.threads(),
        kernels: None,
        llama_cpp: None,
        torch: None,
        kv_dtype: spec.config.kv_dtype_kept(),
        measure_start_unix_s: unix_s(measure_start),
        measure_end_unix_s: unix_s(measure_end),
        load_s: ready_s,
        peak_rss_mb: server.as_ref().and_then(|s| s.peak_rss_mb),
        repetitions,
        summary,
        generated_ids: Vec::new(),
        generated_text: None,
        counters: RunCounters::default(),
        energy: Vec::new(),
        binding: read_back(topology, std::process::id())?,
        shape: Some(machine.shape_of(&spec.placement.pus)),
        notes,
        serving: Some(ServingRecord {
            endpoint,
            slo,
            summary: load_summary,
            requests: outcome.requests,
            server,
        }),
    })
}
