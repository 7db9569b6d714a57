//! Command-line definitions (clap derive); doc comments are the help text.

use clap::{Args, Parser, Subcommand};
use llamaperf::engine::EngineKind;
use llamaperf::model::WeightDtype;

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
    /// List model presets, or synthesize a preset's GGUF file into the cache.
    #[command(subcommand)]
    Model(ModelCommand),
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
    #[arg(long, value_parser = parse_dtype)]
    pub dtype: Option<WeightDtype>,
    /// Sequences processed together.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Prompt length of the synthetic (random token) prompt.
    #[arg(long, default_value_t = 128, conflicts_with = "prompt")]
    pub prompt_tokens: usize,
    /// A text prompt, tokenized by the model's own tokenizer; the generated text goes to stdout.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Tokens generated per sequence (the first one ends the prefill).
    #[arg(long, default_value_t = 32)]
    pub gen_tokens: usize,
    /// Compute threads [default: every CPU this process may use].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Unrecorded repetitions before measuring.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Measured repetitions.
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Forward pass to measure: tuned (this project's) or reference (candle-transformers).
    #[arg(long, default_value = "tuned", value_parser = parse_engine)]
    pub engine: EngineKind,
    /// Seed of the synthetic prompt tokens.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the full run record as JSON on stdout.
    #[arg(long)]
    pub json: bool,
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
        #[arg(long, value_parser = parse_dtype)]
        dtype: WeightDtype,
    },
}

fn parse_dtype(s: &str) -> Result<WeightDtype, String> {
    s.parse()
        .map_err(|e: llamaperf::model::dtype::UnknownDtype| e.to_string())
}

fn parse_engine(s: &str) -> Result<EngineKind, String> {
    s.parse()
        .map_err(|e: llamaperf::engine::UnknownEngine| e.to_string())
}
