//! One run's configuration as a scenario describes it: its axes and settings, every value typed.

use crate::counters::CounterSet;
use crate::engine::EngineKind;
use crate::machine::placement::{
    CoreRequest, MemoryPolicy, NpsRequirement, PlacementPolicy, PlacementRequest, Smt,
};
use crate::model::source::dtype_label;
use crate::model::{find_preset, WeightDtype};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every key a scenario may set, in the canonical order of run ids and expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Preset name or GGUF path.
    Model,
    /// Weight data type of presets.
    Dtype,
    /// tuned or reference.
    Engine,
    /// Sequences per batch.
    Batch,
    /// Prompt length, tokens.
    PromptTokens,
    /// Generated tokens per sequence.
    GenTokens,
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
}

impl Key {
    /// Every key in canonical order.
    pub const ALL: [Key; 18] = [
        Key::Model,
        Key::Dtype,
        Key::Engine,
        Key::Batch,
        Key::PromptTokens,
        Key::GenTokens,
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
    ];

    /// The key as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Key::Model => "model",
            Key::Dtype => "dtype",
            Key::Engine => "engine",
            Key::Batch => "batch",
            Key::PromptTokens => "prompt_tokens",
            Key::GenTokens => "gen_tokens",
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
        )
    }

    /// What values the key takes, for error messages.
    pub fn allowed(self) -> String {
        match self {
            Key::Model => format!(
                "a preset ({}) or a path to a .gguf file",
                crate::model::preset::preset_names().join(", ")
            ),
            Key::Dtype => WeightDtype::names().join(", "),
            Key::Engine => "tuned, reference".into(),
            Key::Batch | Key::PromptTokens | Key::GenTokens | Key::Instances | Key::Repetitions => {
                "an integer >= 1".into()
            }
            Key::Warmup | Key::Seed => "an integer >= 0".into(),
            Key::TimeoutS => "an integer number of seconds >= 1".into(),
            Key::Cores => "an integer >= 1, \"all\", or a cpu list like \"0-7,16-23\"".into(),
            Key::Smt => "on, off".into(),
            Key::Placement => "compact, scatter".into(),
            Key::Memory => "local, interleave, bind:<node list>".into(),
            Key::Nps => "1, 2, 4, \"any\"".into(),
            Key::Counters => crate::counters::counter_set_help(),
            Key::ReadProbe => "true, false".into(),
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
            (Key::Cores, Value::Cores(c)) => self.cores = c.clone(),
            (Key::Smt, Value::Smt(s)) => self.smt = *s,
            (Key::Placement, Value::Placement(p)) => self.placement = *p,
            (Key::Memory, Value::Memory(m)) => self.memory = m.clone(),
            (Key::Nps, Value::Nps(n)) => self.nps = *n,
            (Key::Counters, Value::Counters(c)) => self.counters = c.clone(),
            (Key::ReadProbe, Value::Flag(b)) => self.read_probe = *b,
            (Key::Batch, v) => self.batch = n(v) as usize,
            (Key::PromptTokens, v) => self.prompt_tokens = n(v) as usize,
            (Key::GenTokens, v) => self.gen_tokens = n(v) as usize,
            (Key::Instances, v) => self.instances = n(v) as usize,
            (Key::Repetitions, v) => self.repetitions = n(v) as usize,
            (Key::Warmup, v) => self.warmup = n(v) as usize,
            (Key::TimeoutS, v) => self.timeout_s = n(v),
            (Key::Seed, v) => self.seed = n(v),
            (key, value) => unreachable!("{key} cannot hold {value:?}"),
        }
    }

    /// The value of `key`; `None` only for the data type of a GGUF-file model.
    pub fn get(&self, key: Key) -> Option<Value> {
        let c = |n: usize| Value::Count(n as u64);
        Some(match key {
            Key::Model => Value::Model(self.model.clone()),
            Key::Dtype => Value::Dtype(self.dtype?),
            Key::Engine => Value::Engine(self.engine),
            Key::Batch => c(self.batch),
            Key::PromptTokens => c(self.prompt_tokens),
            Key::GenTokens => c(self.gen_tokens),
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
        })
    }

    /// Drops the data type of GGUF-file models: their tensors keep their own types.
    pub fn normalize(&mut self) {
        if find_preset(&self.model).is_none() {
            self.dtype = None;
        }
    }

    /// The run's id: its axes in canonical order, e.g.
    /// `llama-3.2-1b q4_k tuned batch=1 prompt=128 gen=32 cores=4 smt=off compact local nps=any instances=1`.
    pub fn id(&self) -> String {
        self.id_with_engine(Some(&self.engine.to_string()))
    }

    /// The run's id without its engine, e.g.
    /// `llama-3.2-1b q4_k batch=1 prompt=128 gen=32 cores=4 smt=off compact local nps=any instances=1`:
    /// what the runs of several engines on the same configuration share.
    pub fn configuration_id(&self) -> String {
        self.id_with_engine(None)
    }

    fn id_with_engine(&self, engine: Option<&str>) -> String {
        format!(
            "{} {} {}batch={} prompt={} gen={} cores={} smt={} {} {} nps={} instances={}",
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
            self.instances
        )
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
