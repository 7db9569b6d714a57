//! Command-line definitions (clap derive); doc comments are the help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use llamaperf::counters::CounterSet;
use llamaperf::engine::EngineKind;
use llamaperf::llama_cpp::FlashAttn;
use llamaperf::machine::placement::{CoreRequest, MemoryPolicy, PlacementPolicy, Smt};
use llamaperf::machine::{Machine, MachineError, TopologySource};
use llamaperf::model::{KvDtype, WeightDtype};
use llamaperf::planning::plan::Shard;
use llamaperf::report::trend::TrendX;
use llamaperf::report::Formats;
use llamaperf::results::merge::Coverage;
use llamaperf::scenario::{RunConfig, DEFAULT_MAX_RUNS};
use llamaperf::torch::{TorchBackend, TorchDtype};
use std::path::PathBuf;

/// Performance characterization of Llama-family LLM inference on CPUs.
#[derive(Debug, Parser)]
#[command(name = "llamaperf", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure one inference run (in its own worker process): TTFT, TPOT, throughput.
    Run(RunArgs),
    /// Expand a scenario file into runs and execute each in its own pinned worker process,
    /// recording results as they finish (or, with --dry-run, show the plan).
    Sweep(SweepArgs),
    /// Write (and with --submit, submit) a Slurm job array that runs a scenario's sweep in N
    /// shards, one exclusive node per task, each into <out>/<host>-<shard>.
    Slurm(SlurmArgs),
    /// Combine results folders of one scenario (shards, hosts) into one, checking that every
    /// planned run is there exactly once; every line keeps its host.
    Merge(MergeArgs),
    /// Turn results folders into charts (PNG and/or SVG) and a Markdown report (report.md);
    /// several folders are overlaid on the same axes for before/after views.
    Report(ReportArgs),
    /// Show the machine: packages, NUMA nodes (NPS), L3 domains, cores and SMT siblings, caches,
    /// and the cpuset this process may use.
    Topology(TopologyArgs),
    /// List model presets, or synthesize a preset's GGUF file into the cache.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Measure the machine's ceilings: memory bandwidth (read, triad) for 1..N cores per NUMA
    /// node and machine-wide, and GEMM GFLOP/s of the engine's matmul per data type; saved per
    /// machine so sweeps report how close each run came.
    Calibrate(CalibrateArgs),
    /// Compare a candidate with a baseline, each one or more results folders (sweeps): per run
    /// and metric, the change, the noise and a verdict from a threshold and Welch's t-test over
    /// one sample per folder (or, with one folder on a side, over the repetitions). Exit code 1
    /// on a regression (for CI gates).
    Compare(CompareArgs),
    /// Plan capacity: memory per instance, instances per NUMA node, socket and machine,
    /// projected latency and throughput, the largest batch meeting TTFT/TPOT objectives, and the
    /// machines a target load needs.
    Plan(PlanArgs),
    /// Store results folders in a history database (SQLite) and follow a metric across
    /// commits on one machine.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Internal: GEMM GFLOP/s on the PUs of a request (JSON on stdin), JSON on stdout.
    #[command(hide = true)]
    CalibrateCompute,
    /// Internal: read one run spec (JSON) on stdin, measure it, write its record on stdout.
    #[command(hide = true)]
    Worker,
}

/// Arguments of `llamaperf run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A preset name (see `llamaperf model list`) or a path to a Llama GGUF file.
    #[arg(long)]
    pub model: String,
    /// Data type of a preset's weights [default: q4_k]; ignored for a GGUF file.
    #[arg(long, value_parser = parse_with::<WeightDtype>)]
    pub dtype: Option<WeightDtype>,
    /// Sequences processed together.
    #[arg(long, default_value_t = RunConfig::default().batch)]
    pub batch: usize,
    /// Prompt length of the synthetic (random token) prompt.
    #[arg(long, default_value_t = RunConfig::default().prompt_tokens, conflicts_with = "prompt")]
    pub prompt_tokens: usize,
    /// A text prompt, tokenized by the model's own tokenizer; the generated text goes to stdout.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Tokens generated per sequence (the first one ends the prefill).
    #[arg(long, default_value_t = RunConfig::default().gen_tokens)]
    pub gen_tokens: usize,
    /// Tokens in each sequence's KV cache before the prompt, filled untimed (llama-bench's
    /// -d): prefill and decode are measured at this depth.
    #[arg(long, default_value_t = RunConfig::default().depth)]
    pub depth: usize,
    /// Where the run computes and keeps its memory.
    #[command(flatten)]
    pub placement: PlacementArgs,
    /// Unrecorded repetitions before measuring.
    #[arg(long, default_value_t = RunConfig::default().warmup)]
    pub warmup: usize,
    /// Measured repetitions.
    #[arg(long, default_value_t = RunConfig::default().repetitions)]
    pub repetitions: usize,
    /// Forward pass to measure: tuned (this project's), reference (candle-transformers),
    /// llama.cpp (through its C API) or torch (PyTorch in a Python worker).
    #[arg(long, default_value_t = RunConfig::default().engine, value_parser = parse_with::<EngineKind>)]
    pub engine: EngineKind,
    /// Engine torch: what PyTorch does to the model: eager, compile, ipex, zentorch.
    #[arg(long, default_value_t = TorchBackend::default(), value_parser = parse_with::<TorchBackend>)]
    pub torch_backend: TorchBackend,
    /// Engine torch: the data type weights and KV cache are kept in: bf16, f32.
    #[arg(long, default_value_t = TorchDtype::default(), value_parser = parse_with::<TorchDtype>)]
    pub torch_dtype: TorchDtype,
    /// KV cache type: f32, f16, bf16, q8_0 [default: the engine's own: f16 for tuned and
    /// llama.cpp, f32 for reference].
    #[arg(long, value_parser = parse_with::<KvDtype>)]
    pub kv_dtype: Option<KvDtype>,
    /// llama.cpp's flash attention: auto, on, off.
    #[arg(long, default_value_t = FlashAttn::Auto, value_parser = parse_with::<FlashAttn>)]
    pub flash_attn: FlashAttn,
    /// llama.cpp's physical batch (n_ubatch), tokens: the prompt is computed in pieces of this
    /// many [default: 512].
    #[arg(long)]
    pub ubatch: Option<usize>,
    /// Seed of the synthetic prompt tokens.
    #[arg(long, default_value_t = RunConfig::default().seed)]
    pub seed: u64,
    /// Counters per phase: default, memory, none, or a comma list of counter names and raw
    /// PMU events r<hex> (e.g. cycles,instructions,r01c2).
    #[arg(long, default_value_t = RunConfig::default().counters, value_parser = parse_counters)]
    pub counters: CounterSet,
    /// After each measured decode step, read memory with the calibration's read kernel on the
    /// run's threads (4 x the L3, at least 256 MiB) and report decode's bandwidth as a share
    /// of that read: a share that a host's drifting bandwidth does not blur. The reads evict
    /// the caches between steps.
    #[arg(long)]
    pub read_probe: bool,
    /// Write the full run record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `llamaperf sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The scenario file (not needed with --resume, which uses the folder's copy).
    #[arg(required_unless_present = "resume")]
    pub scenario: Option<PathBuf>,
    /// Show the plan (placements, memory estimates, skip reasons) without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: write the plan as JSON on stdout.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// Results folder [default: results/<name>-<UTC timestamp>].
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue an interrupted sweep in this results folder: only missing runs are executed.
    #[arg(long, conflicts_with_all = ["scenario", "dry_run", "topology", "shard"])]
    pub resume: Option<PathBuf>,
    /// Execute only part I of N of the plan (contiguous, deterministic), e.g. 2/4.
    #[arg(long, value_parser = parse_with::<Shard>)]
    pub shard: Option<Shard>,
    /// Refuse a scenario of more runs than this (matrix combinations before excludes, plus
    /// includes): a guard against a typo that makes a sweep of years.
    #[arg(long, default_value_t = DEFAULT_MAX_RUNS, conflicts_with = "resume")]
    pub max_runs: usize,
    /// The machine to plan for.
    #[command(flatten)]
    pub topology: TopologyArg,
}

/// Arguments of `llamaperf slurm`.
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Array tasks: task I runs `sweep --shard I/N`.
    #[arg(long)]
    pub shards: usize,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Nodes the tasks may run on (a Slurm node list, e.g. node[01-04]).
    #[arg(long)]
    pub nodelist: Option<String>,
    /// Node features the tasks need (a Slurm constraint, e.g. epyc9654).
    #[arg(long)]
    pub constraint: Option<String>,
    /// Time limit of each task (minutes, HH:MM:SS, D-HH:MM, ...).
    #[arg(long)]
    pub time: Option<String>,
    /// Shared folder for the tasks' results folders and logs, visible from every node
    /// [default: results/<name>-slurm-<UTC timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The llamaperf binary the nodes run [default: this one].
    #[arg(long)]
    pub llamaperf: Option<PathBuf>,
    /// Print the script on stdout; write and submit nothing.
    /// Refuse a scenario of more runs than this (as `sweep --max-runs`; passed on to each task).
    #[arg(long)]
    pub max_runs: Option<usize>,
    #[arg(long, conflicts_with = "submit")]
    pub dry_run: bool,
    /// Submit the script with sbatch and print the job id on stdout.
    #[arg(long)]
    pub submit: bool,
}

/// Arguments of `llamaperf merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Results folders of one scenario: shards and hosts.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The merged folder (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Over what every planned run must be there exactly once: once (the folders together
    /// ran the scenario once, split over machines), per-host (every host ran it all), or
    /// per-cpu (every CPU model ran it all).
    #[arg(long, default_value = "once", value_parser = parse_with::<Coverage>)]
    pub coverage: Coverage,
}

/// Arguments of `llamaperf report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results folders written by `llamaperf sweep`; several are overlaid, each named by its
    /// folder name or its --label.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Image format of the charts: png, svg or both; or html: one self-contained report.html
    /// (charts inlined as SVG, sortable tables) instead of report.md and charts/.
    #[arg(long, default_value = "png", value_parser = parse_with::<Formats>)]
    pub format: Formats,
    /// Where report.md and charts/ are written [default: the results folder; required with
    /// several folders].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Name of a results folder in charts and tables: once per folder, in the same order
    /// [default: the folder names].
    #[arg(long)]
    pub label: Vec<String>,
    /// Engine the software-gain table divides by (results holding several engines)
    /// [default: tuned, else the first engine measured].
    #[arg(long, value_name = "ENGINE")]
    pub gain_base: Option<String>,
}

/// Arguments of `llamaperf calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Core counts to measure [default: 1, 2, 4, ... and all usable cores].
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
    /// Data types of the GEMM [default: every supported type].
    #[arg(long, value_delimiter = ',', value_parser = parse_with::<WeightDtype>)]
    pub dtypes: Vec<WeightDtype>,
    /// Bytes each bandwidth thread streams, MiB [default: the larger of 2 x the largest L3,
    /// 8 x the total L3 shared by the threads, and 64 MiB].
    #[arg(long)]
    pub buffer_mb: Option<usize>,
    /// Write the calibration as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Output formats of `llamaperf compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Markdown, for a pull-request comment.
    Md,
    /// The whole comparison as JSON.
    Json,
    /// One row per run and metric.
    Csv,
}

/// Arguments of `llamaperf compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Results folder of the baseline (one sweep); for several, use --base DIR... instead.
    /// With --baseline-history, the candidate's folder.
    #[arg(required_unless_present = "bases", conflicts_with_all = ["bases", "candidates"])]
    pub base: Option<PathBuf>,
    /// Results folder of the candidate (one sweep) [default with --engine-base: the base's
    /// folder].
    #[arg(required_unless_present_any = ["bases", "engine_base", "baseline_history"])]
    pub candidate: Option<PathBuf>,
    /// Results folders of the baseline, one sweep (a fresh process per run) each. With at
    /// least 2 folders per side each folder is one sample (the median of its repetitions), and
    /// verdicts are judged against the noise between processes.
    #[arg(long = "base", value_name = "DIR", num_args = 1..)]
    pub bases: Vec<PathBuf>,
    /// Results folders of the candidate, one sweep each (see --base).
    #[arg(long = "candidate", value_name = "DIR", num_args = 1.., requires = "bases")]
    pub candidates: Vec<PathBuf>,
    /// Smallest change of a mean, percent, that counts as a regression or improvement.
    #[arg(long, default_value_t = 5.0)]
    pub threshold: f64,
    /// Significance level of Welch's t-test over the samples (a change is significant when
    /// p < alpha).
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Fail (exit 1) also when a metric is inconclusive or has too few samples, not only on a
    /// regression.
    #[arg(long)]
    pub fail_on_inconclusive: bool,
    /// Output on stdout: md (Markdown), json or csv.
    #[arg(long, value_enum, default_value_t = CompareFormat::Md)]
    pub format: CompareFormat,
    /// Compare two engines on the same configurations: this engine's runs of the base folders
    /// are the baseline (e.g. tuned). Without candidate folders, the base folders hold both.
    #[arg(long, value_name = "ENGINE", requires = "engine_candidate")]
    pub engine_base: Option<String>,
    /// The engine whose runs of the candidate folders are judged (e.g. reference).
    #[arg(long, value_name = "ENGINE", requires = "engine_base")]
    pub engine_candidate: Option<String>,
    /// Judge the one folder given against the last N stored results of each of its runs on
    /// the same machine in the history database (docs/history.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          conflicts_with_all = ["bases", "candidate", "engine_base"])]
    pub baseline_history: Option<u32>,
    /// The history database of --baseline-history [default: history.sqlite in the cache
    /// folder].
    #[arg(long, value_name = "PATH", requires = "baseline_history")]
    pub db: Option<PathBuf>,
}

impl Command {
    /// Whether the command starts and talks to child processes (workers, calibration
    /// children) or is one.
    pub fn drives_children(&self) -> bool {
        match self {
            Command::Run(_)
            | Command::Sweep(_)
            | Command::Slurm(_)
            | Command::Calibrate(_)
            | Command::Worker
            | Command::CalibrateCompute => true,
            Command::Merge(_)
            | Command::Report(_)
            | Command::Model(_)
            | Command::Topology(_)
            | Command::Compare(_)
            | Command::Plan(_)
            | Command::History(_) => false,
        }
    }
}

impl CompareArgs {
    /// The base's folders and the candidate's, from the positional pair or the lists; the
    /// candidate's are empty when none were given.
    pub fn sides(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        match (&self.base, &self.candidate) {
            (Some(base), Some(candidate)) => (vec![base.clone()], vec![candidate.clone()]),
            (Some(base), None) => (vec![base.clone()], Vec::new()),
            _ => (self.bases.clone(), self.candidates.clone()),
        }
    }
}

/// Arguments of `llamaperf plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A preset name (see `llamaperf model list`) or a path to a Llama GGUF file.
    #[arg(long)]
    pub model: String,
    /// Data type of a preset's weights [default: q4_k]; ignored for a GGUF file.
    #[arg(long, value_parser = parse_with::<WeightDtype>)]
    pub dtype: Option<WeightDtype>,
    /// Sequences per batch of one instance.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Context of each sequence (its KV cache length), tokens.
    #[arg(long)]
    pub context: usize,
    /// Prompt tokens per sequence, for TTFT and activations [default: 512, or the context when
    /// shorter].
    #[arg(long)]
    pub prompt_tokens: Option<usize>,
    /// Data type of the KV cache: f32, f16, bf16, q8_0.
    #[arg(long, default_value_t = llamaperf::plan::DEFAULT_KV_DTYPE, value_parser = parse_with::<KvDtype>)]
    pub kv_dtype: KvDtype,
    /// Cores of one instance [default: the cores of one NUMA node].
    #[arg(long)]
    pub cores_per_instance: Option<usize>,
    /// Largest acceptable time to first token, ms.
    #[arg(long)]
    pub slo_ttft_ms: Option<f64>,
    /// Largest acceptable time per output token, ms.
    #[arg(long)]
    pub slo_tpot_ms: Option<f64>,
    /// Load to serve, decode tokens/s: prints the machines it needs.
    #[arg(long)]
    pub target_tok_s: Option<f64>,
    /// Project from the measured runs of this results folder (interpolated over batch and
    /// cores) instead of the roofline; plans for its machine unless --topology is given.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Plan from this engine's runs of the --from folder (as results name it, e.g. tuned)
    /// [default: the one engine the folder measured the model on].
    #[arg(long, value_name = "ENGINE", requires = "from")]
    pub engine: Option<String>,
    /// A calibration file (from `llamaperf calibrate --json` or a results folder's
    /// calibration.json) for the roofline [default: the machine's latest calibration].
    #[arg(long, conflicts_with = "from")]
    pub calibration: Option<PathBuf>,
    /// The machine to plan for.
    #[command(flatten)]
    pub topology: TopologyArg,
    /// Write the plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Which machine to describe or plan for.
#[derive(Debug, Clone, Args)]
pub struct TopologyArg {
    /// An hwloc XML file or synthetic:"<hwloc synthetic description>", e.g.
    /// synthetic:"pack:2 numa:4 l3:3 core:8 pu:2" [default: this machine].
    #[arg(long, value_parser = parse_with::<TopologySource>)]
    pub topology: Option<TopologySource>,
}

impl TopologyArg {
    /// The machine described by `--topology`, or this one; warns on stderr when a synthetic
    /// description leaves NUMA node memory to hwloc's small default.
    pub fn machine(&self) -> Result<Machine, MachineError> {
        let source = self
            .topology
            .as_ref()
            .unwrap_or(&TopologySource::ThisMachine);
        let machine = Machine::load(source)?;
        if let TopologySource::Synthetic(desc) = source {
            if !desc.contains("memory=") {
                let per_node = machine.numa_nodes.first().map_or(0, |n| n.memory_bytes);
                eprintln!(
                    "warning: {source} gives no memory size, so hwloc gives each NUMA node {:.1} GB \
                     and memory checks use that; give the real size, e.g. numa:4(memory=96GB)",
                    per_node as f64 / 1e9
                );
            }
        }
        Ok(machine)
    }
}

/// Arguments of `llamaperf topology`.
#[derive(Debug, Args)]
pub struct TopologyArgs {
    /// The machine.
    #[command(flatten)]
    pub topology: TopologyArg,
    /// Write the description as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Placement of a run: cores, SMT, policy, memory, machine.
#[derive(Debug, Clone, Args)]
pub struct PlacementArgs {
    /// Cores: a count, `all`, or a cpu list like 0-7,16-23 (a single cpu as 5-5) [default: all].
    #[arg(long, value_parser = parse_with::<CoreRequest>, conflicts_with = "threads")]
    pub cores: Option<CoreRequest>,
    /// Compute threads: shorthand for `--cores T` (one thread per core, SMT off).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Compute on the SMT siblings of the chosen cores too: on or off.
    #[arg(long, default_value_t = RunConfig::default().smt, value_parser = parse_with::<Smt>)]
    pub smt: Smt,
    /// compact (fill an L3 domain, then the next, then the next NUMA node) or scatter
    /// (round-robin over L3 domains across NUMA nodes).
    #[arg(long, default_value_t = RunConfig::default().placement, value_parser = parse_with::<PlacementPolicy>)]
    pub placement: PlacementPolicy,
    /// Memory: local (nodes of the chosen cores), interleave (all nodes of their packages),
    /// or bind:<node list>.
    #[arg(long, default_value_t = RunConfig::default().memory, value_parser = parse_with::<MemoryPolicy>)]
    pub memory: MemoryPolicy,
    /// The machine to place on; with another machine than this one, run only shows the placement.
    #[command(flatten)]
    pub topology: TopologyArg,
}

/// `llamaperf model …`
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Show every preset: layers, hidden size, heads, vocabulary, parameters, bytes per dtype.
    List {
        /// Write the table as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Write a preset's synthetic GGUF into the cache (if not there yet) and print its path.
    Synth {
        /// The preset (see `llamaperf model list`).
        preset: String,
        /// Data type of the weight matrices.
        #[arg(long, value_parser = parse_with::<WeightDtype>)]
        dtype: WeightDtype,
    },
}

fn parse_counters(s: &str) -> Result<CounterSet, String> {
    CounterSet::parse(&s.split(',').map(str::to_string).collect::<Vec<_>>())
}

fn parse_with<T>(s: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| e.to_string())
}

/// `llamaperf history` subcommands.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Store results folders; a folder (or run) stored before is not stored again.
    Ingest(HistoryIngestArgs),
    /// What the database holds: machines, and per machine the folders (label, date, runs).
    List(HistoryListArgs),
    /// One metric over commits (or dates): a table on stdout and a PNG or SVG chart, each
    /// point its median with whiskers from the smallest to the largest value.
    Trend(HistoryTrendArgs),
}

/// Where the history database is.
#[derive(Debug, Args)]
pub struct HistoryDbArg {
    /// The history database [default: history.sqlite in the cache folder, $LLAMAPERF_CACHE
    /// or ~/.cache/llamaperf].
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

/// Arguments of `llamaperf history ingest`.
#[derive(Debug, Args)]
pub struct HistoryIngestArgs {
    /// Results folders written by `llamaperf sweep` (or `merge`).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// What a folder's results are shown under, once per folder in the same order [default:
    /// the git commit of the llamaperf that measured it, from its machine.json].
    #[arg(long)]
    pub label: Vec<String>,
    /// The database.
    #[command(flatten)]
    pub db: HistoryDbArg,
    /// Write what was stored as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `llamaperf history list`.
#[derive(Debug, Args)]
pub struct HistoryListArgs {
    /// The database.
    #[command(flatten)]
    pub db: HistoryDbArg,
    /// Write the listing as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `llamaperf history trend`.
#[derive(Debug, Args)]
pub struct HistoryTrendArgs {
    /// The metric, a column of summary.csv (e.g. decode_tok_s, ttft_ms).
    #[arg(long)]
    pub metric: String,
    /// Only runs with these axis values, e.g. model=tiny,batch=1 (values as summary.csv
    /// writes them).
    #[arg(long = "where", value_name = "AXIS=VALUE,...")]
    pub conditions: Option<String>,
    /// Only this machine (its id in `history list`).
    #[arg(long)]
    pub machine: Option<i64>,
    /// Points: commit (every folder of a label) or date (each folder).
    #[arg(long, default_value = "commit", value_parser = parse_with::<TrendX>)]
    pub by: TrendX,
    /// The chart, .png or .svg [default: trend-<metric>.png in the current folder].
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// The database.
    #[command(flatten)]
    pub db: HistoryDbArg,
    /// Write the trend as JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}
