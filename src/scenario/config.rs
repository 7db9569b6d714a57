//! One run's configuration as a scenario describes it: its axes and settings, every value typed.

use crate::counters::CounterSet;
use crate::engine::EngineKind;
use crate::llama_cpp::settings::DEFAULT_UBATCH;
use crate::machine::placement::{
    CoreRequest, MemoryPolicy, NpsRequirement, PlacementPolicy, PlacementRequest, Smt,
};
use crate::model::memory::ScoreMemory;
use crate::model::source::dtype_label;
use crate::model::{find_preset, KvDtype, WeightDtype};
use crate::torch::{TorchBackend, TorchDtype, TorchSettings};
use llamaperf_llama_cpp::FlashAttn;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Tokens per forward pass of a depth fill: as llama.cpp's default physical batch, so that a
/// 32k-token depth never needs a prompt's worth of attention scores at once.
pub const DEPTH_FILL_CHUNK: usize = 512;

/// Every key a scenario may set, in the canonical order of run ids and expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Preset name or GGUF path.
    Model,
    /// Weight data type of presets.
    Dtype,
    /// The forward pass measured (tuned, reference, llama.cpp, openai, torch).
    Engine,
    /// What PyTorch does to the model (engine `torch`).
    TorchBackend,
    /// The data type PyTorch runs in (engine `torch`).
    TorchDtype,
    /// Sequences per batch.
    Batch,
    /// Prompt length, tokens.
    PromptTokens,
    /// Generated tokens per sequence.
    GenTokens,
    /// Tokens in each sequence's cache before the prompt.
    Depth,
    /// Cores: count, all or cpu list.
    Cores,
    /// SMT on/off.
    Smt,
    /// compact / scatter.
    Placement,
    /// `local` / `interleave` / `bind:<nodes>`.
    Memory,
    /// Required NPS: 1, 2, 4, any.
    Nps,
    /// Parallel instances.
    Instances,
    /// Measured repetitions (a setting, not an axis of the run id).
    Repetitions,
    /// Unrecorded warmup repetitions (setting).
    Warmup,
    /// Per-run time limit, seconds (setting).
    TimeoutS,
    /// Seed of the synthetic prompts (setting).
    Seed,
    /// Counters to read per phase (setting).
    Counters,
    /// A pure read after each decode step (setting).
    ReadProbe,
    /// KV cache type (the engine's own where unset; in the run id only where set).
    KvDtype,
    /// llama.cpp's flash attention (setting).
    FlashAttn,
    /// llama.cpp's physical batch, tokens (setting).
    Ubatch,
    /// Clients sending requests in a closed loop (engine `openai`).
    Concurrency,
    /// Open-loop Poisson arrivals, requests/s (engine `openai`).
    RequestRate,
    /// Base URL of a running OpenAI-compatible server (setting).
    Url,
    /// The command that starts the server of each run (setting).
    ServerCommand,
    /// Whether `url` may name a non-loopback host (setting).
    AllowRemote,
    /// Requests per run (setting).
    Requests,
    /// TTFT objective of goodput, ms (setting).
    SloTtftMs,
    /// TPOT objective of goodput, ms (setting).
    SloTpotMs,
    /// Time limit of one request, seconds (setting).
    RequestTimeoutS,
}

impl Key {
    /// Every key in canonical order.
    pub const ALL: [Key; 33] = [
        Key::Model,
        Key::Dtype,
        Key::Engine,
        Key::TorchBackend,
        Key::TorchDtype,
        Key::Batch,
        Key::PromptTokens,
        Key::GenTokens,
        Key::Depth,
        Key::Cores,
        Key::Smt,
        Key::Placement,
        Key::Memory,
        Key::Nps,
        Key::Instances,
        Key::Repetitions,
        Key::Warmup,
        Key::TimeoutS,
        Key::Seed,
        Key::Counters,
        Key::ReadProbe,
        Key::KvDtype,
        Key::FlashAttn,
        Key::Ubatch,
        Key::Concurrency,
        Key::RequestRate,
        Key::Url,
        Key::ServerCommand,
        Key::AllowRemote,
        Key::Requests,
        Key::SloTtftMs,
        Key::SloTpotMs,
        Key::RequestTimeoutS,
    ];

    /// The key as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Key::Model => "model",
            Key::Dtype => "dtype",
            Key::Engine => "engine",
            Key::TorchBackend => "torch_backend",
            Key::TorchDtype => "torch_dtype",
            Key::Batch => "batch",
            Key::PromptTokens => "prompt_tokens",
            Key::GenTokens => "gen_tokens",
            Key::Depth => "depth",
            Key::Cores => "cores",
            Key::Smt => "smt",
            Key::Placement => "placement",
            Key::Memory => "memory",
            Key::Nps => "nps",
            Key::Instances => "instances",
            Key::Repetitions => "repetitions",
            Key::Warmup => "warmup",
            Key::TimeoutS => "timeout_s",
            Key::Seed => "seed",
            Key::Counters => "counters",
            Key::ReadProbe => "read_probe",
            Key::KvDtype => "kv_dtype",
            Key::FlashAttn => "flash_attn",
            Key::Ubatch => "ubatch",
            Key::Concurrency => "concurrency",
            Key::RequestRate => "request_rate",
            Key::Url => "url",
            Key::ServerCommand => "server_command",
            Key::AllowRemote => "allow_remote",
            Key::Requests => "requests",
            Key::SloTtftMs => "slo_ttft_ms",
            Key::SloTpotMs => "slo_tpot_ms",
            Key::RequestTimeoutS => "request_timeout_s",
        }
    }

    /// The key called `name`.
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the key is part of what a run is (its id), rather than how it is measured.
    pub fn is_axis(self) -> bool {
        !matches!(
            self,
            Key::Repetitions
                | Key::Warmup
                | Key::TimeoutS
                | Key::Seed
                | Key::Counters
                | Key::ReadProbe
                | Key::FlashAttn
                | Key::Ubatch
                | Key::Url
                | Key::ServerCommand
                | Key::AllowRemote
                | Key::Requests
                | Key::SloTtftMs
                | Key::SloTpotMs
                | Key::RequestTimeoutS
        )
    }

    /// Whether run ids and results show the key inside the engine's name rather than as an
    /// axis of its own: torch's backend and data type make `torch:ipex:bf16` an engine to
    /// compare with the others.
    pub fn in_engine_label(self) -> bool {
        matches!(self, Key::TorchBackend | Key::TorchDtype)
    }

    /// What values the key takes, for error messages.
    pub fn allowed(self) -> String {
        match self {
            Key::Model => format!(
                "a preset ({}), a path to a .gguf file, or a Hugging Face model folder (engine torch)",
                crate::model::preset::preset_names().join(", ")
            ),
            Key::Dtype => WeightDtype::names().join(", "),
            Key::Engine => EngineKind::names().join(", "),
            Key::TorchBackend => TorchBackend::ALL.map(TorchBackend::name).join(", "),
            Key::TorchDtype => TorchDtype::ALL.map(TorchDtype::name).join(", "),
            Key::Batch
            | Key::PromptTokens
            | Key::GenTokens
            | Key::Instances
            | Key::Repetitions
            | Key::Ubatch
            | Key::Concurrency
            | Key::Requests => "an integer >= 1".into(),
            Key::SloTtftMs | Key::SloTpotMs => "an integer number of milliseconds >= 1".into(),
            Key::RequestTimeoutS => "an integer number of seconds >= 1".into(),
            Key::RequestRate => "a number of requests per second > 0".into(),
            Key::Url => "an http:// URL of a loopback address (127.0.0.1, localhost, [::1]), \
                         or of any host with allow_remote = true"
                .into(),
            Key::ServerCommand => "a command line with {model} {port} {threads} {cpus}".into(),
            Key::AllowRemote => "true, false".into(),
            Key::Warmup | Key::Seed | Key::Depth => "an integer >= 0".into(),
            Key::TimeoutS => "an integer number of seconds >= 1".into(),
            Key::Cores => "an integer >= 1, \"all\", or a cpu list like \"0-7,16-23\"".into(),
            Key::Smt => "on, off".into(),
            Key::Placement => "compact, scatter".into(),
            Key::Memory => "local, interleave, bind:<node list>".into(),
            Key::Nps => "1, 2, 4, \"any\"".into(),
            Key::Counters => crate::counters::counter_set_help(),
            Key::ReadProbe => "true, false".into(),
            Key::KvDtype => KvDtype::names().join(", "),
            Key::FlashAttn => "auto, on, off".into(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated value of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// `model`.
    Model(String),
    /// `dtype`.
    Dtype(WeightDtype),
    /// `engine`.
    Engine(EngineKind),
    /// `torch_backend`.
    TorchBackend(TorchBackend),
    /// `torch_dtype`.
    TorchDtype(TorchDtype),
    /// `cores`.
    Cores(CoreRequest),
    /// `smt`.
    Smt(Smt),
    /// `placement`.
    Placement(PlacementPolicy),
    /// `memory`.
    Memory(MemoryPolicy),
    /// `nps`.
    Nps(NpsRequirement),
    /// Any integer key.
    Count(u64),
    /// `counters`.
    Counters(CounterSet),
    /// A boolean key.
    Flag(bool),
    /// `kv_dtype`.
    KvDtype(KvDtype),
    /// `flash_attn`.
    FlashAttn(FlashAttn),
    /// A text key (`url`, `server_command`).
    Text(String),
    /// `request_rate`.
    Rate(RequestRate),
}

/// Open-loop arrival rate, requests per second: finite and > 0 (so it compares and hashes by
/// its bits).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestRate(f64);

impl RequestRate {
    /// The rate `per_s`, when finite and > 0.
    pub fn new(per_s: f64) -> Option<RequestRate> {
        (per_s.is_finite() && per_s > 0.0).then_some(RequestRate(per_s))
    }

    /// Requests per second.
    pub fn per_s(self) -> f64 {
        self.0
    }
}

impl Eq for RequestRate {}

impl std::hash::Hash for RequestRate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl fmt::Display for RequestRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How an `openai` run reaches its server and loads it; unused by the other engines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// Clients in a closed loop (each sends its next request when the last one ended).
    pub concurrency: usize,
    /// Open loop instead: seeded Poisson arrivals at this rate, requests/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_rate: Option<RequestRate>,
    /// Base URL of a running server; `None` with `server_command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The command that starts the server, with `{model} {port} {threads} {cpus}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_command: Option<String>,
    /// Whether `url` may name a non-loopback host.
    #[serde(default)]
    pub allow_remote: bool,
    /// Requests per run.
    pub requests: usize,
    /// TTFT objective of goodput, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_ttft_ms: Option<u64>,
    /// TPOT objective of goodput, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_tpot_ms: Option<u64>,
    /// Time limit of one request (send to last byte), s.
    pub request_timeout_s: u64,
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            concurrency: 1,
            request_rate: None,
            url: None,
            server_command: None,
            allow_remote: false,
            requests: 8,
            slo_ttft_ms: None,
            slo_tpot_ms: None,
            request_timeout_s: 60,
        }
    }
}

impl ServingConfig {
    fn is_default(&self) -> bool {
        *self == ServingConfig::default()
    }
}

/// The complete configuration of one run of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Preset name or GGUF path.
    pub model: String,
    /// Weight type of a preset; `None` for a GGUF file (its own types).
    pub dtype: Option<WeightDtype>,
    /// Engine.
    pub engine: EngineKind,
    /// Sequences per batch.
    pub batch: usize,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens per sequence.
    pub gen_tokens: usize,
    /// Tokens already in each sequence's KV cache when the prompt is measured (llama-bench's
    /// `-d`): filled untimed before every repetition.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: usize,
    /// Cores over all instances.
    pub cores: CoreRequest,
    /// SMT.
    pub smt: Smt,
    /// Placement policy.
    pub placement: PlacementPolicy,
    /// Memory policy.
    pub memory: MemoryPolicy,
    /// Required NPS.
    pub nps: NpsRequirement,
    /// Parallel instances.
    pub instances: usize,
    /// Measured repetitions.
    pub repetitions: usize,
    /// Warmup repetitions.
    pub warmup: usize,
    /// Time limit of the whole run, seconds.
    pub timeout_s: u64,
    /// Prompt seed.
    pub seed: u64,
    /// Counters read per phase.
    pub counters: CounterSet,
    /// Whether a pure read follows each decode step (decode's share of it is reported).
    #[serde(default)]
    pub read_probe: bool,
    /// KV cache type; `None`: the engine's own ([`EngineKind::kv_dtypes`]).
    #[serde(default, alias = "kv_cache", skip_serializing_if = "Option::is_none")]
    pub kv_dtype: Option<KvDtype>,
    /// llama.cpp's flash attention.
    #[serde(default, skip_serializing_if = "is_auto")]
    pub flash_attn: FlashAttn,
    /// llama.cpp's physical batch (`n_ubatch`), tokens; `None`: its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ubatch: Option<usize>,
    /// Server and load of engine `openai` (absent in records when every value is its default).
    #[serde(default, skip_serializing_if = "ServingConfig::is_default")]
    pub serving: ServingConfig,
    /// Backend and data type of engine `torch` (absent in records when both are defaults).
    #[serde(default, skip_serializing_if = "TorchSettings::is_default")]
    pub torch: TorchSettings,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_auto(f: &FlashAttn) -> bool {
    *f == FlashAttn::Auto
}

impl Default for RunConfig {
    /// The values a run gets when neither `[defaults]` nor `[matrix]` set a key (model excepted).
    fn default() -> Self {
        RunConfig {
            model: String::new(),
            dtype: Some(WeightDtype::Q4K),
            engine: EngineKind::Tuned,
            batch: 1,
            prompt_tokens: 128,
            gen_tokens: 32,
            depth: 0,
            cores: CoreRequest::All,
            smt: Smt::Off,
            placement: PlacementPolicy::Compact,
            memory: MemoryPolicy::Local,
            nps: NpsRequirement::Any,
            instances: 1,
            repetitions: 3,
            warmup: 1,
            timeout_s: 600,
            seed: 42,
            counters: CounterSet::Default,
            read_probe: false,
            kv_dtype: None,
            flash_attn: FlashAttn::Auto,
            ubatch: None,
            serving: ServingConfig::default(),
            torch: TorchSettings::default(),
        }
    }
}

impl RunConfig {
    /// Sets `key` to `value` (validated by the parser, so the kinds match).
    pub fn set(&mut self, key: Key, value: &Value) {
        let n = |v: &Value| match v {
            Value::Count(n) => *n,
            _ => unreachable!("the parser checks value kinds"),
        };
        match (key, value) {
            (Key::Model, Value::Model(m)) => self.model = m.clone(),
            (Key::Dtype, Value::Dtype(d)) => self.dtype = Some(*d),
            (Key::Engine, Value::Engine(e)) => self.engine = *e,
            (Key::TorchBackend, Value::TorchBackend(b)) => self.torch.backend = *b,
            (Key::TorchDtype, Value::TorchDtype(d)) => self.torch.dtype = *d,
            (Key::Cores, Value::Cores(c)) => self.cores = c.clone(),
            (Key::Smt, Value::Smt(s)) => self.smt = *s,
            (Key::Placement, Value::Placement(p)) => self.placement = *p,
            (Key::Memory, Value::Memory(m)) => self.memory = m.clone(),
            (Key::Nps, Value::Nps(n)) => self.nps = *n,
            (Key::Counters, Value::Counters(c)) => self.counters = c.clone(),
            (Key::ReadProbe, Value::Flag(b)) => self.read_probe = *b,
            (Key::KvDtype, Value::KvDtype(k)) => self.kv_dtype = Some(*k),
            (Key::FlashAttn, Value::FlashAttn(f)) => self.flash_attn = *f,
            (Key::Ubatch, v) => self.ubatch = Some(n(v) as usize),
            (Key::AllowRemote, Value::Flag(b)) => self.serving.allow_remote = *b,
            (Key::Url, Value::Text(t)) => self.serving.url = Some(t.clone()),
            (Key::ServerCommand, Value::Text(t)) => self.serving.server_command = Some(t.clone()),
            (Key::RequestRate, Value::Rate(r)) => self.serving.request_rate = Some(*r),
            (Key::Concurrency, v) => self.serving.concurrency = n(v) as usize,
            (Key::Requests, v) => self.serving.requests = n(v) as usize,
            (Key::SloTtftMs, v) => self.serving.slo_ttft_ms = Some(n(v)),
            (Key::SloTpotMs, v) => self.serving.slo_tpot_ms = Some(n(v)),
            (Key::RequestTimeoutS, v) => self.serving.request_timeout_s = n(v),
            (Key::Batch, v) => self.batch = n(v) as usize,
            (Key::PromptTokens, v) => self.prompt_tokens = n(v) as usize,
            (Key::GenTokens, v) => self.gen_tokens = n(v) as usize,
            (Key::Depth, v) => self.depth = n(v) as usize,
            (Key::Instances, v) => self.instances = n(v) as usize,
            (Key::Repetitions, v) => self.repetitions = n(v) as usize,
            (Key::Warmup, v) => self.warmup = n(v) as usize,
            (Key::TimeoutS, v) => self.timeout_s = n(v),
            (Key::Seed, v) => self.seed = n(v),
            (key, value) => unreachable!("{key} cannot hold {value:?}"),
        }
    }

    /// The value of `key`; `None` for the data type of a GGUF-file model, for engine settings
    /// left to the engine (`kv_dtype`, `ubatch`) and for serving keys that are not set.
    pub fn get(&self, key: Key) -> Option<Value> {
        let c = |n: usize| Value::Count(n as u64);
        Some(match key {
            Key::Model => Value::Model(self.model.clone()),
            Key::Dtype => Value::Dtype(self.dtype?),
            Key::Engine => Value::Engine(self.engine),
            Key::TorchBackend => Value::TorchBackend(self.torch.backend),
            Key::TorchDtype => Value::TorchDtype(self.torch.dtype),
            Key::Batch => c(self.batch),
            Key::PromptTokens => c(self.prompt_tokens),
            Key::GenTokens => c(self.gen_tokens),
            Key::Depth => c(self.depth),
            Key::Cores => Value::Cores(self.cores.clone()),
            Key::Smt => Value::Smt(self.smt),
            Key::Placement => Value::Placement(self.placement),
            Key::Memory => Value::Memory(self.memory.clone()),
            Key::Nps => Value::Nps(self.nps),
            Key::Instances => c(self.instances),
            Key::Repetitions => c(self.repetitions),
            Key::Warmup => c(self.warmup),
            Key::TimeoutS => Value::Count(self.timeout_s),
            Key::Seed => Value::Count(self.seed),
            Key::Counters => Value::Counters(self.counters.clone()),
            Key::ReadProbe => Value::Flag(self.read_probe),
            Key::KvDtype => Value::KvDtype(self.kv_dtype?),
            Key::FlashAttn => Value::FlashAttn(self.flash_attn),
            Key::Ubatch => c(self.ubatch?),
            Key::Concurrency => c(self.serving.concurrency),
            Key::RequestRate => Value::Rate(self.serving.request_rate?),
            Key::Url => Value::Text(self.serving.url.clone()?),
            Key::ServerCommand => Value::Text(self.serving.server_command.clone()?),
            Key::AllowRemote => Value::Flag(self.serving.allow_remote),
            Key::Requests => c(self.serving.requests),
            Key::SloTtftMs => Value::Count(self.serving.slo_ttft_ms?),
            Key::SloTpotMs => Value::Count(self.serving.slo_tpot_ms?),
            Key::RequestTimeoutS => Value::Count(self.serving.request_timeout_s),
        })
    }

    /// Drops the data type of GGUF-file models (their tensors keep their own types), the
    /// serving keys of in-process engines, the torch settings of other engines, and the
    /// concurrency of open-loop runs.
    pub fn normalize(&mut self) {
        if find_preset(&self.model).is_none() {
            self.dtype = None;
        }
        if self.engine != EngineKind::Torch {
            self.torch = TorchSettings::default();
        }
        if self.engine != EngineKind::OpenAi {
            self.serving = ServingConfig::default();
        } else if self.serving.request_rate.is_some() {
            self.serving.concurrency = 1;
        }
    }

    /// The run's id: its axes in canonical order, then the depth, the KV cache type and engine
    /// settings where set (so that ids of runs that keep their engine's own never change), e.g.
    /// `llama-3.2-1b q4_k tuned batch=1 prompt=128 gen=32 cores=4 smt=off compact local nps=any instances=1`
    /// or `... instances=1 depth=4096 kv_dtype=q8_0 flash_attn=on`; an `openai` run's axes end with its load,
    /// `concurrency=2` or `request_rate=1.5`.
    pub fn id(&self) -> String {
        self.id_with_engine(Some(&self.engine_label()))
    }

    /// The engine as run ids and results name it: its name, and for `torch` its backend and
    /// data type (`torch:ipex:bf16`), which make it another engine to compare.
    pub fn engine_label(&self) -> String {
        match self.engine {
            EngineKind::Torch => format!("{}:{}", self.engine, self.torch),
            other => other.to_string(),
        }
    }

    /// The run's id without its engine, e.g.
    /// `llama-3.2-1b q4_k batch=1 prompt=128 gen=32 cores=4 smt=off compact local nps=any instances=1`:
    /// what the runs of several engines on the same configuration share.
    pub fn configuration_id(&self) -> String {
        self.id_with_engine(None)
    }

    fn settings_suffix(&self) -> String {
        let mut suffix = String::new();
        if self.depth > 0 {
            suffix.push_str(&format!(" depth={}", self.depth));
        }
        if let Some(kv) = self.kv_dtype {
            suffix.push_str(&format!(" kv_dtype={kv}"));
        }
        if self.flash_attn != FlashAttn::Auto {
            suffix.push_str(&format!(" flash_attn={}", self.flash_attn));
        }
        if let Some(ubatch) = self.ubatch {
            suffix.push_str(&format!(" ubatch={ubatch}"));
        }
        suffix
    }

    fn id_with_engine(&self, engine: Option<&str>) -> String {
        let load = match (self.engine, self.serving.request_rate) {
            (EngineKind::OpenAi, Some(rate)) => format!(" request_rate={rate}"),
            (EngineKind::OpenAi, None) => format!(" concurrency={}", self.serving.concurrency),
            _ => String::new(),
        };
        format!(
            "{} {} {}batch={} prompt={} gen={} cores={} smt={} {} {} nps={} instances={}{load}{}",
            self.model,
            dtype_label(self.dtype),
            engine.map_or(String::new(), |e| format!("{e} ")),
            self.batch,
            self.prompt_tokens,
            self.gen_tokens,
            self.cores,
            self.smt,
            self.placement,
            self.memory,
            self.nps,
            self.instances,
            self.settings_suffix()
        )
    }

    /// The KV cache type the run keeps: the one set, else its engine's own (for `torch`, its
    /// data type).
    pub fn kv_dtype_kept(&self) -> KvDtype {
        match (self.engine, self.torch.dtype) {
            (EngineKind::Torch, TorchDtype::Bf16) => KvDtype::Bf16,
            (EngineKind::Torch, TorchDtype::F32) => KvDtype::F32,
            _ => self.kv_dtype.unwrap_or(self.engine.kv_dtypes()[0]),
        }
    }

    /// The most tokens of each sequence one forward pass of the run prefills, with a prompt of
    /// `prompt` tokens: the prompt, or a piece of its depth fill when that is longer; what its
    /// activations are sized for.
    pub fn most_tokens_per_pass(&self, prompt: usize) -> usize {
        prompt.max(self.depth.min(DEPTH_FILL_CHUNK))
    }

    /// The llama.cpp micro-batch the run keeps, tokens: the one set, else llama.cpp's default.
    pub fn ubatch_kept(&self) -> usize {
        self.ubatch.unwrap_or(DEFAULT_UBATCH)
    }

    /// How the run's engine holds a layer's attention scores in a prefill, on instances of at
    /// most `threads` threads.
    pub fn score_memory(&self, threads: usize) -> ScoreMemory {
        match self.engine {
            EngineKind::Tuned => ScoreMemory::Tiled { threads },
            EngineKind::LlamaCpp => ScoreMemory::Pieces(self.ubatch_kept()),
            _ => ScoreMemory::Whole,
        }
    }

    /// What placement needs to know of this run.
    pub fn placement_request(&self) -> PlacementRequest {
        PlacementRequest {
            cores: self.cores.clone(),
            smt: self.smt,
            placement: self.placement,
            memory: self.memory.clone(),
            nps: self.nps,
            instances: self.instances,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_prefills_the_prompt_or_a_piece_of_a_longer_fill() {
        let at = |depth| RunConfig {
            depth,
            ..RunConfig::default()
        };
        assert_eq!(at(32768).most_tokens_per_pass(1), DEPTH_FILL_CHUNK);
        assert_eq!(at(100).most_tokens_per_pass(1), 100);
        assert_eq!(at(0).most_tokens_per_pass(2048), 2048);
        assert_eq!(at(32768).most_tokens_per_pass(4096), 4096);
    }
}
