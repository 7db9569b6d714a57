//! `summary.csv`: one row per run (per instance and aggregate for multi-instance runs),
//! skipped runs included, statistics and status in columns whose names carry units.

use super::metrics::{catalogue, find, MetricValues, Source};
use super::record::{Outcome, SweepRecord};
use crate::calibrate::Calibration;
use crate::engine::EngineKind;
use crate::measure::roofline::Roofline;
use crate::model::source::dtype_label;
use crate::planning::plan::{Plan, PlanStatus};
use crate::scenario::{Key, RunConfig};
use crate::schema::SCHEMA_VERSION;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Coefficient of variation above which a run is flagged as noisy.
pub const NOISY_CV: f64 = 0.05;

/// One row of `summary.csv`; empty cells are values the run does not have (never zero).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Results schema version.
    pub schema_version: u32,
    /// Run id.
    pub run_id: String,
    /// The machine (host name) the run ran on, or was skipped on; empty in files written
    /// before hosts were recorded.
    pub host: String,
    /// Instance number, empty for the run as a whole.
    pub instance: Option<usize>,
    /// ok, aggregate, failed or skipped.
    pub status: String,
    /// Why a run failed or was skipped.
    pub reason: String,
    /// Model.
    pub model: String,
    /// Data type (empty for GGUF files).
    pub dtype: String,
    /// Engine.
    pub engine: String,
    /// Batch.
    pub batch: usize,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens.
    pub gen_tokens: usize,
    /// Tokens in each sequence's KV cache before the prompt (0: none).
    pub depth: usize,
    /// Cores request.
    pub cores: String,
    /// SMT.
    pub smt: String,
    /// Placement.
    pub placement: String,
    /// Memory policy.
    pub memory: String,
    /// NPS requirement.
    pub nps: String,
    /// Instances.
    pub instances: usize,
    /// KV cache type where the run set one; empty where it kept its engine's own (as its id).
    pub kv_dtype: String,
    /// Closed-loop clients of an `openai` run; empty for other engines and open-loop runs.
    pub concurrency: Option<usize>,
    /// Open-loop arrival rate of an `openai` run, requests/s; empty otherwise.
    pub request_rate: Option<f64>,
    /// Compute threads of the instance.
    pub threads: Option<usize>,
    /// Measured repetitions.
    pub repetitions: usize,
    /// Whether a coefficient of variation exceeds [`NOISY_CV`]; `None` without repetition
    /// statistics.
    pub noisy: Option<bool>,
    /// Whether what a decode step reads fits in the L3 of the run's placement (its decode
    /// roofline share is then empty); empty when unknown, for aggregates and unmeasured runs.
    pub in_cache: Option<bool>,
    /// Every metric of the catalogue, in its units; written after the columns above, with
    /// `noisy` after [`NOISY_AFTER`].
    pub metrics: MetricValues,
}

/// The metric `summary.csv` writes the `noisy` column after.
pub const NOISY_AFTER: &str = "peak_rss_mb";

impl SummaryRow {
    /// A row of `c` without measurements.
    /// The row's value of the run axis `key`, as summary.csv writes it; empty for a key that
    /// is not an axis (a setting such as `repetitions` is a column of its own).
    pub fn axis_value(&self, key: Key) -> String {
        match key {
            Key::Model => self.model.clone(),
            Key::Dtype => self.dtype.clone(),
            Key::Engine => self.engine.clone(),
            Key::TorchBackend => self.torch_part(0),
            Key::TorchDtype => self.torch_part(1),
            Key::Batch => self.batch.to_string(),
            Key::PromptTokens => self.prompt_tokens.to_string(),
            Key::GenTokens => self.gen_tokens.to_string(),
            Key::Depth => self.depth.to_string(),
            Key::Cores => self.cores.clone(),
            Key::Smt => self.smt.clone(),
            Key::Placement => self.placement.clone(),
            Key::Memory => self.memory.clone(),
            Key::Nps => self.nps.clone(),
            Key::Instances => self.instances.to_string(),
            Key::Concurrency => self.concurrency.map_or(String::new(), |c| c.to_string()),
            Key::RequestRate => self.request_rate.map_or(String::new(), |r| r.to_string()),
            Key::KvDtype => self.kv_dtype.clone(),
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
            | Key::RequestTimeoutS => String::new(),
        }
    }

    /// The `i`th part after `torch:` of a torch run's engine (`torch:ipex:bf16`); empty for
    /// the other engines.
    fn torch_part(&self, i: usize) -> String {
        self.engine
            .strip_prefix("torch:")
            .and_then(|parts| parts.split(':').nth(i))
            .unwrap_or_default()
            .to_string()
    }

    fn unmeasured(
        run_id: &str,
        host: &str,
        c: &RunConfig,
        instance: Option<usize>,
        status: &str,
        reason: &str,
    ) -> SummaryRow {
        SummaryRow {
            schema_version: SCHEMA_VERSION,
            run_id: run_id.to_string(),
            host: host.to_string(),
            instance,
            status: status.to_string(),
            reason: reason.to_string(),
            model: c.model.clone(),
            dtype: dtype_label(c.dtype),
            engine: c.engine_label(),
            batch: c.batch,
            prompt_tokens: c.prompt_tokens,
            gen_tokens: c.gen_tokens,
            depth: c.depth,
            cores: c.cores.to_string(),
            smt: c.smt.to_string(),
            placement: c.placement.to_string(),
            memory: c.memory.to_string(),
            nps: c.nps.to_string(),
            instances: c.instances,
            kv_dtype: c.kv_dtype.map_or(String::new(), |k| k.to_string()),
            concurrency: (c.engine == EngineKind::OpenAi && c.serving.request_rate.is_none())
                .then_some(c.serving.concurrency),
            request_rate: (c.engine == EngineKind::OpenAi)
                .then_some(c.serving.request_rate)
                .flatten()
                .map(|r| r.per_s()),
            threads: None,
            repetitions: c.repetitions,
            noisy: None,
            in_cache: None,
            metrics: MetricValues::none(),
        }
    }

    /// The value of the metric called `name` (see [`MetricValues::get`]), in its unit.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name)
    }
}

impl Serialize for SummaryRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut row = serializer.serialize_struct("SummaryRow", 26 + catalogue().len())?;
        row.serialize_field("schema_version", &self.schema_version)?;
        row.serialize_field("run_id", &self.run_id)?;
        row.serialize_field("host", &self.host)?;
        row.serialize_field("instance", &self.instance)?;
        row.serialize_field("status", &self.status)?;
        row.serialize_field("reason", &self.reason)?;
        row.serialize_field("model", &self.model)?;
        row.serialize_field("dtype", &self.dtype)?;
        row.serialize_field("engine", &self.engine)?;
        row.serialize_field("batch", &self.batch)?;
        row.serialize_field("prompt_tokens", &self.prompt_tokens)?;
        row.serialize_field("gen_tokens", &self.gen_tokens)?;
        row.serialize_field("depth", &self.depth)?;
        row.serialize_field("cores", &self.cores)?;
        row.serialize_field("smt", &self.smt)?;
        row.serialize_field("placement", &self.placement)?;
        row.serialize_field("memory", &self.memory)?;
        row.serialize_field("nps", &self.nps)?;
        row.serialize_field("instances", &self.instances)?;
        row.serialize_field("kv_dtype", &self.kv_dtype)?;
        row.serialize_field("concurrency", &self.concurrency)?;
        row.serialize_field("request_rate", &self.request_rate)?;
        row.serialize_field("threads", &self.threads)?;
        row.serialize_field("repetitions", &self.repetitions)?;
        for (metric, value) in self.metrics.iter() {
            row.serialize_field(metric.name.as_str(), &value)?;
            if metric.name == NOISY_AFTER {
                row.serialize_field("noisy", &self.noisy)?;
            }
        }
        row.serialize_field("in_cache", &self.in_cache)?;
        row.end()
    }
}

/// Reads a row by its column names; `host`, `depth`, `kv_dtype`, `concurrency` and `request_rate` may be missing
/// (files written before they were recorded), and so may metrics added since a file was written.
impl<'de> Deserialize<'de> for SummaryRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RowVisitor)
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = SummaryRow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row of summary.csv")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SummaryRow, A::Error> {
        let mut row = SummaryRow::unmeasured("", "", &RunConfig::default(), None, "", "");
        let mut required = vec![
            "schema_version",
            "run_id",
            "instance",
            "status",
            "reason",
            "model",
            "dtype",
            "engine",
            "batch",
            "prompt_tokens",
            "gen_tokens",
            "cores",
            "smt",
            "placement",
            "memory",
            "nps",
            "instances",
            "threads",
            "repetitions",
            "noisy",
        ];
        while let Some(key) = map.next_key::<String>()? {
            required.retain(|r| *r != key);
            match key.as_str() {
                "schema_version" => row.schema_version = map.next_value()?,
                "run_id" => row.run_id = map.next_value()?,
                "host" => row.host = map.next_value()?,
                "instance" => row.instance = map.next_value()?,
                "status" => row.status = map.next_value()?,
                "reason" => row.reason = map.next_value()?,
                "model" => row.model = map.next_value()?,
                "dtype" => row.dtype = map.next_value()?,
                "engine" => row.engine = map.next_value()?,
                "batch" => row.batch = map.next_value()?,
                "prompt_tokens" => row.prompt_tokens = map.next_value()?,
                "gen_tokens" => row.gen_tokens = map.next_value()?,
                "depth" => row.depth = map.next_value()?,
                "cores" => row.cores = map.next_value()?,
                "smt" => row.smt = map.next_value()?,
                "placement" => row.placement = map.next_value()?,
                "memory" => row.memory = map.next_value()?,
                "nps" => row.nps = map.next_value()?,
                "instances" => row.instances = map.next_value()?,
                "kv_dtype" => row.kv_dtype = map.next_value()?,
                "concurrency" => row.concurrency = map.next_value()?,
                "request_rate" => row.request_rate = map.next_value()?,
                "threads" => row.threads = map.next_value()?,
                "repetitions" => row.repetitions = map.next_value()?,
                "noisy" => row.noisy = map.next_value()?,
                "in_cache" => row.in_cache = map.next_value()?,
                name => match find(name) {
                    Some(metric) => row.metrics.set(metric, map.next_value()?),
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        match required.first() {
            Some(missing) => Err(de::Error::missing_field(missing)),
            None => Ok(row),
        }
    }
}

/// The row of one `runs.jsonl` line; roofline percentages need a `calibration`; `host` names
/// the machine of a line that does not carry its own.
pub fn row_of(r: &SweepRecord, host: &str, calibration: Option<&Calibration>) -> SummaryRow {
    let host = r.host.as_deref().unwrap_or(host);
    let row = |instance, status| {
        SummaryRow::unmeasured(&r.run_id(), host, r.config(), instance, status, "")
    };
    match &r.outcome {
        Outcome::Ok { record } => {
            let metrics = MetricValues::of(&Source::Run {
                spec: &r.spec,
                record,
                calibration,
            });
            let in_cache = Roofline::of(&r.spec, record, calibration).in_cache;
            let cvs = ["ttft_cv", "prefill_cv", "decode_cv"].map(|cv| metrics.get(cv));
            SummaryRow {
                threads: Some(record.threads),
                noisy: cvs
                    .iter()
                    .any(Option::is_some)
                    .then(|| cvs.iter().flatten().any(|&cv| cv > NOISY_CV)),
                metrics,
                in_cache,
                ..row(r.instance, "ok")
            }
        }
        Outcome::Aggregate { aggregate } => SummaryRow {
            metrics: MetricValues::of(&Source::Aggregate(aggregate)),
            ..row(None, "aggregate")
        },
        Outcome::Failed { reason, .. } => {
            SummaryRow::unmeasured(&r.run_id(), host, r.config(), r.instance, "failed", reason)
        }
    }
}

/// Every row of `summary.csv` for one machine: recorded lines in plan order, skipped runs with
/// their reasons; `host` names the machine of the plan (and of lines without their own host).
pub fn rows(
    plan: &Plan,
    records: &[SweepRecord],
    host: &str,
    calibration: Option<&Calibration>,
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for run in plan.selected() {
        match &run.status {
            PlanStatus::Skipped { reason } => out.push(SummaryRow::unmeasured(
                &run.id,
                host,
                &run.config,
                None,
                "skipped",
                reason,
            )),
            PlanStatus::Planned { .. } => out.extend(
                records
                    .iter()
                    .filter(|r| r.run_id() == run.id)
                    .map(|r| row_of(r, host, calibration)),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_written_before_hosts_were_recorded_still_reads() {
        let config = RunConfig {
            model: "tiny".into(),
            ..RunConfig::default()
        };
        let new = csv_of(&SummaryRow::unmeasured(
            "r", "node01", &config, None, "skipped", "why",
        ));
        let header = new.lines().next().unwrap();
        assert!(header.starts_with("schema_version,run_id,host,instance,"));
        let old = new
            .replace("run_id,host,", "run_id,")
            .replace("r,node01,", "r,");
        let row: SummaryRow = csv::Reader::from_reader(old.as_bytes())
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!((row.run_id.as_str(), row.host.as_str()), ("r", ""));
    }

    fn csv_of(row: &SummaryRow) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(row).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }
}
