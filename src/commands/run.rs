//! `llamaperf run`: one run's flags become a run configuration, which is planned on this
//! machine and executed in a worker process exactly as a sweep's run is; shown as a table.

use super::model::materialize_reporting;
use crate::cli::RunArgs;
use crate::error::{Context, Error, Result};
use llamaperf::calibrate::Calibration;
use llamaperf::child::Limits;
use llamaperf::counters::CounterKind;
use llamaperf::engine::{EngineError, EngineKind};
use llamaperf::interrupt;
use llamaperf::llama_cpp::LlamaCppVocab;
use llamaperf::machine::cpu_time::Contention;
use llamaperf::machine::cpulist::format_list;
use llamaperf::machine::environment::hostname;
use llamaperf::machine::memory::MemoryBudget;
use llamaperf::machine::placement::{CoreRequest, NpsRequirement};
use llamaperf::machine::{InstancePlacement, MachineError};
use llamaperf::measure::energy::phase_power;
use llamaperf::measure::generation::Phase;
use llamaperf::measure::record::RunRecord;
use llamaperf::measure::roofline::Roofline;
use llamaperf::measure::stats::Spread;
use llamaperf::model::source::FILE_DTYPE;
use llamaperf::model::tokenizer::TextCodec;
use llamaperf::model::{ModelCache, ModelRef, OpenedModel};
use llamaperf::planning::{plan_config, ModelSize, Prompt, RunSpec, SpecError, Unplannable};
use llamaperf::results::metrics::CONTENDED_PCT;
use llamaperf::results::{Outcome, SweepRecord};
use llamaperf::scenario::RunConfig;
use llamaperf::schema::RUNS_VERSION;
use llamaperf::sweep::runner::measure;
use llamaperf::torch::TorchSettings;
use std::fmt::Write as _;

/// The run configuration the flags describe: one instance, no NPS requirement, no time limit
/// of its own; everything else as a scenario's run with the same keys.
fn config_of(args: &RunArgs) -> Result<RunConfig, SpecError> {
    let p = &args.placement;
    let cores = match (&p.cores, p.threads) {
        (Some(cores), _) => cores.clone(),
        (None, Some(0)) => return Err(SpecError::Zero { what: "--threads" }),
        (None, Some(threads)) => CoreRequest::Count(threads),
        (None, None) => CoreRequest::All,
    };
    if args.ubatch == Some(0) {
        return Err(SpecError::Zero { what: "--ubatch" });
    }
    let mut config = RunConfig {
        model: args.model.clone(),
        dtype: args.dtype.or(RunConfig::default().dtype),
        engine: args.engine,
        batch: args.batch,
        prompt_tokens: args.prompt_tokens,
        gen_tokens: args.gen_tokens,
        depth: args.depth,
        cores,
        smt: p.smt,
        placement: p.placement,
        memory: p.memory.clone(),
        nps: NpsRequirement::Any,
        instances: 1,
        repetitions: args.repetitions,
        warmup: args.warmup,
        seed: args.seed,
        counters: args.counters.clone(),
        read_probe: args.read_probe,
        kv_dtype: args.kv_dtype,
        flash_attn: args.flash_attn,
        ubatch: args.ubatch,
        torch: TorchSettings {
            backend: args.torch_backend,
            dtype: args.torch_dtype,
        },
        ..RunConfig::default()
    };
    config.normalize();
    Ok(config)
}

/// Why the run cannot execute, with where it was placed for a placement error.
fn placement_error(e: Unplannable, machine: &str) -> Error {
    match e {
        Unplannable::Place(reason) => Error::Context {
            what: format!("cannot place the run on {machine}"),
            source: Box::new(reason.into()),
        },
        e => e.into(),
    }
}

/// Plans the flags' run on this machine (or shows its placement on another), measures it in
/// a worker process, reports.
pub fn run(args: RunArgs) -> Result<()> {
    let config = config_of(&args)?;
    let machine = args.placement.topology.machine()?;
    let cache = ModelCache::from_env()?;
    let model_ref = ModelRef::parse(&config.model, config.dtype)?;
    if args.dtype.is_some() && model_ref.keeps_own_dtypes() {
        eprintln!("warning: --dtype is ignored for a GGUF file or a model folder: its tensors keep their own types");
    }
    let in_model = || format!("model {}", model_ref.name());
    // `run` installs no signal handler: Ctrl-C ends it, and the next synthesis removes the
    // partial file it leaves
    let model = model_ref.locate(&cache);
    let size = ModelSize::of(&model_ref).with_context(in_model)?;
    let budget = MemoryBudget::of(&machine);
    let (prompt, codec) = match &args.prompt {
        Some(text) => {
            // placement and memory (of a one-token prompt) before minutes of synthesis
            let shortest = Prompt::Synthetic { tokens: 1 };
            plan_config(&config, &model, &size, &shortest, &machine, &budget)
                .map_err(|e| placement_error(e, &machine.source))?;
            materialize_reporting(&cache, &model, interrupt::flag()).with_context(in_model)?;
            let with_prompt = || format!("--prompt with model {}", model_ref.name());
            let codec = match config.engine {
                EngineKind::LlamaCpp => Codec::LlamaCpp(
                    LlamaCppVocab::load(&model.path)
                        .map_err(EngineError::from)
                        .with_context(with_prompt)?,
                ),
                EngineKind::Tuned
                | EngineKind::Reference
                | EngineKind::OpenAi
                | EngineKind::Torch => {
                    let opened = OpenedModel::open(&model.path).with_context(in_model)?;
                    Codec::File(Box::new(TextCodec::of(&opened).with_context(with_prompt)?))
                }
            };
            let ids = codec.encode(text)?;
            let text = text.clone();
            (Prompt::Text { text, ids }, Some(codec))
        }
        None => (
            Prompt::Synthetic {
                tokens: config.prompt_tokens,
            },
            None,
        ),
    };
    let (specs, _memory) = plan_config(&config, &model, &size, &prompt, &machine, &budget)
        .map_err(|e| placement_error(e, &machine.source))?;
    if !machine.this_system {
        return Err(MachineError::OtherMachine {
            topology: machine.source,
            placement: describe_placement(&specs[0].placement),
        }
        .into());
    }
    materialize_reporting(&cache, &model, interrupt::flag()).with_context(in_model)?;

    let spec = specs[0].clone();
    let mut record = measure(&specs, Limits::none())
        .map(|mut records| records.remove(0))
        .map_err(|(_, e)| Error::from(e))
        .context("measuring the run")?;
    if let Some(codec) = &codec {
        record.generated_text = Some(codec.decode(&record.generated_ids)?);
    }
    let calibration = Calibration::latest(&cache, &machine);
    eprint!("{}", render_table(&spec, &record, calibration.as_ref()));
    let text = record.generated_text.clone();
    // the worker is done: from here on only stdout is written
    llamaperf_os::process::die_on_closed_pipe();
    if args.json {
        let line = SweepRecord {
            schema_version: RUNS_VERSION,
            index: 0,
            host: Some(hostname()),
            instance: None,
            spec,
            outcome: Outcome::Ok {
                record: Box::new(record),
            },
        };
        println!("{}", serde_json::to_string_pretty(&line)?);
    } else if let Some(text) = text {
        println!("{text}");
    }
    Ok(())
}

/// The tokenizer of a text prompt and of the generated ids: llama.cpp's own for its engine,
/// the model file's (tokenizing as llama.cpp does) or folder's for the others.
enum Codec {
    /// The GGUF file's tokenizer, rebuilt in Rust, or the folder's `tokenizer.json`.
    File(Box<TextCodec>),
    /// llama.cpp's.
    LlamaCpp(LlamaCppVocab),
}

impl Codec {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(match self {
            Codec::File(c) => c.encode(text)?,
            Codec::LlamaCpp(v) => v.encode(text),
        })
    }

    fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(match self {
            Codec::File(c) => c.decode(ids)?,
            Codec::LlamaCpp(v) => v.decode(ids),
        })
    }
}

/// "cpus 0-7 (8 threads), memory bind on nodes 0".
fn describe_placement(p: &InstancePlacement) -> String {
    format!(
        "cpus {} ({} threads), memory {} on nodes {}",
        format_list(&p.pus),
        p.pus.len(),
        p.memory.mode,
        format_list(&p.memory.nodes)
    )
}

fn spread_row(out: &mut String, name: &str, s: &Spread) {
    let opt =
        |v: Option<f64>, scale: f64| v.map_or("-".to_string(), |v| format!("{:.2}", v * scale));
    let _ = writeln!(
        out,
        "  {name:<15} {:>11.2} {:>10} {:>7} {:>11.2} {:>11.2}",
        s.mean,
        opt(s.stddev, 1.0),
        opt(s.cv, 100.0),
        s.min,
        s.max
    );
}

/// The human-readable summary of a record, for stderr.
fn render_table(s: &RunSpec, r: &RunRecord, calibration: Option<&Calibration>) -> String {
    let c = &s.config;
    let mut out = String::new();
    // a file's run names its own main type beside the label
    let dtype = match s.model.dtype {
        Some(d) => d.to_string(),
        None => format!("{FILE_DTYPE} {}", r.model.dtype),
    };
    let _ = writeln!(
        out,
        "\n{} ({dtype}, {:.3} B params, {:.1} MB) | engine {} | batch {} | {} threads",
        s.model.name,
        r.model.params as f64 / 1e9,
        r.model.weight_bytes as f64 / 1e6,
        c.engine,
        c.batch,
        r.threads
    );
    let rss = r
        .peak_rss_mb
        .map_or("-".to_string(), |m| format!("{m:.0} MB"));
    let depth = if c.depth > 0 {
        format!("depth {} | ", c.depth)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{depth}prompt {} tokens | gen {} tokens | warmup {} | {} repetitions | load {:.2} s | peak RSS {rss}\n",
        s.prompt.tokens(),
        c.gen_tokens,
        c.warmup,
        c.repetitions,
        r.load_s
    );
    let _ = writeln!(
        out,
        "  {:<15} {:>11} {:>10} {:>7} {:>11} {:>11}",
        "metric", "mean", "stddev", "cv %", "min", "max"
    );
    let m = &r.summary;
    spread_row(&mut out, "ttft_ms", &m.ttft_ms);
    spread_row(&mut out, "prefill_tok_s", &m.prefill_tok_s);
    if let Some(d) = &m.decode_tok_s {
        spread_row(&mut out, "decode_tok_s", d);
    }
    spread_row(&mut out, "e2e_ms", &m.e2e_ms);
    spread_row(&mut out, "output_tok_s", &m.output_tok_s);
    spread_row(&mut out, "total_tok_s", &m.total_tok_s);
    if let Some(t) = &m.tpot_ms {
        let _ = writeln!(
            out,
            "\n  tpot_ms over {} steps: mean {:.2} | p50 {:.2} | p90 {:.2} | p99 {:.2} | max {:.2}",
            t.samples, t.mean, t.p50, t.p90, t.p99, t.max
        );
    }
    let _ = writeln!(out, "\n  placement: {}", describe_placement(&s.placement));
    let roof = Roofline::of(s, r, calibration);
    let pct = |v: Option<f64>| {
        v.map_or("no calibration (llamaperf calibrate)".to_string(), |p| {
            format!("{p:.0}% of roofline")
        })
    };
    let _ = writeln!(
        out,
        "  roofline: prefill {:.1} GFLOP/s ({}; {}) | decode {} ({})",
        roof.prefill_gflop_s,
        pct(roof.prefill_pct_roofline),
        roof.prefill_pct_peak
            .map_or("no ISA peak".to_string(), |p| format!(
                "{p:.0}% of the ISA peak"
            )),
        roof.decode_gb_s
            .map_or("-".to_string(), |g| format!("{g:.1} GB/s")),
        if roof.in_cache == Some(true) {
            "in cache: no DRAM roofline".to_string()
        } else {
            pct(roof.decode_pct_roofline)
        }
    );
    let contention = Contention::total(r.repetitions.iter().filter_map(|rep| rep.contention));
    if let Some(c) = contention {
        let share = match c.pct() {
            Some(p) if p > CONTENDED_PCT => format!(
                "{p:.1}%: CONTENDED, its numbers say as much about its neighbours as about the engine"
            ),
            Some(p) => format!("{p:.1}%"),
            None => "too short a window to tell".into(),
        };
        let _ = writeln!(
            out,
            "  contention: other tasks {:.2} s and steal {:.2} s of the run's {:.2} CPU-s while it measured ({share})",
            c.other_cpu_s, c.steal_s, c.capacity_cpu_s
        );
    }
    if let (Some(true), Some(shape)) = (roof.in_cache, r.shape) {
        let _ = writeln!(
            out,
            "  in cache: weights + KV cache read per step fit in the {:.0} MB L3 of its cores",
            shape.l3_bytes as f64 / 1e6
        );
    }
    if let Some(share) = &m.read_share {
        let _ = writeln!(
            out,
            "  read probe: decode streamed {:.0}% of a pure read after each step (median of {}; \
             p10 {:.0}%, p90 {:.0}%; reads of {:.0} MB at {:.1} GB/s)",
            share.p50_pct,
            share.pairs,
            share.p10_pct,
            share.p90_pct,
            share.read_bytes as f64 / 1e6,
            share.read_p50_gb_s
        );
    }
    let c = &r.counters;
    for (phase, counts, d) in [
        ("prefill", &c.prefill, &c.prefill_derived),
        ("decode", &c.decode, &c.decode_derived),
    ] {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let n = |k| counts.get(k).map_or("-".to_string(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "  {phase} counters: ipc {} | LLC MPKI {} | {} GHz | cpu utilisation {} | ctx switches {} | migrations {} | page faults {}",
            f(d.ipc),
            f(d.llc_mpki),
            f(d.effective_ghz),
            f(d.cpu_utilization),
            n(CounterKind::ContextSwitches),
            n(CounterKind::CpuMigrations),
            n(CounterKind::PageFaults)
        );
    }
    if let Some(line) = energy_line(s, r) {
        let _ = writeln!(out, "{line}");
    }
    for note in &r.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

/// `v` with three significant digits (energies per token span many decades).
fn significant(v: f64) -> String {
    let decimals = if v > 0.0 {
        (2 - v.log10().floor() as i32).max(0) as usize
    } else {
        0
    };
    format!("{v:.decimals$}")
}

/// "energy (RAPL, package 0): prefill 0.0123 J/tok + 0.00141 J/tok DRAM (41.0 W package +
/// 4.71 W DRAM) | decode ..."; `None` where the record has none (a note says why).
fn energy_line(s: &RunSpec, r: &RunRecord) -> Option<String> {
    let phase = |name: &str, phase: Phase| {
        phase_power(s, r, phase).map(|p| {
            let dram = |v: Option<f64>, unit: &str| {
                v.map_or(String::new(), |v| {
                    format!(" + {} {unit} DRAM", significant(v))
                })
            };
            format!(
                "{name} {} J/tok{} ({} W package{})",
                significant(p.package_j_per_tok),
                dram(p.dram_j_per_tok, "J/tok"),
                significant(p.package_w),
                dram(p.dram_w, "W")
            )
        })
    };
    let phases: Vec<String> = [("prefill", Phase::Prefill), ("decode", Phase::Decode)]
        .into_iter()
        .filter_map(|(name, p)| phase(name, p))
        .collect();
    if phases.is_empty() {
        return None;
    }
    let packages: Vec<String> = r.energy.iter().map(|p| p.package.to_string()).collect();
    Some(format!(
        "  energy (RAPL, package {}): {}",
        packages.join(", "),
        phases.join(" | ")
    ))
}
