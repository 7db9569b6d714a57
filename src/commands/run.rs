//! `llamaperf run`: one measured run in a worker process, shown as a table.

use super::model::resolve_reporting;
use crate::cli::PlacementArgs;
use crate::cli::RunArgs;
use crate::error::Context;
use llamaperf::calibrate::Calibration;
use llamaperf::counters::CounterKind;
use llamaperf::machine::cpulist::format_list;
use llamaperf::machine::placement::CoreRequest;
use llamaperf::machine::placement::NpsRequirement;
use llamaperf::machine::{place, InstancePlacement, Machine, MachineError, PlacementRequest};
use llamaperf::measure::record::RunRecord;
use llamaperf::measure::roofline::Roofline;
use llamaperf::measure::stats::Spread;
use llamaperf::model::tokenizer::TextCodec;
use llamaperf::model::ModelCache;
use llamaperf::model::{ModelFile, ModelRef};
use llamaperf::planning::spec::SpecError;
use llamaperf::planning::spec::{Prompt, RunSpec};
use llamaperf::schema::SCHEMA_VERSION;
use llamaperf::sweep::worker::run_in_child;
use std::fmt::Write as _;

/// Validates the arguments into a RunSpec, measures it in a child process, reports.
pub fn run(args: RunArgs) -> crate::error::Result<()> {
    let (placement, machine) = placement_of(&args.placement)?;
    let model_ref = ModelRef::parse(&args.model, args.dtype)?;
    if args.dtype.is_some() && matches!(model_ref, ModelRef::File(_)) {
        eprintln!("warning: --dtype is ignored for a GGUF file: its tensors keep their own types");
    }
    let resolved = resolve_reporting(&model_ref)?;
    let file = ModelFile::open(&resolved.path)
        .with_context(|| format!("model {}", resolved.path.display()))?;
    let (prompt, codec) = match args.prompt {
        Some(text) => {
            let codec = TextCodec::from_model(&file)
                .with_context(|| format!("--prompt with model {}", model_ref.name()))?;
            let ids = codec.encode(&text)?;
            (Prompt::Text { text, ids }, Some(codec))
        }
        None => (
            Prompt::Synthetic {
                tokens: args.prompt_tokens,
            },
            None,
        ),
    };
    let spec = RunSpec {
        schema_version: SCHEMA_VERSION,
        model: resolved,
        engine: args.engine,
        batch: args.batch,
        prompt,
        gen_tokens: args.gen_tokens,
        placement,
        warmup: args.warmup,
        repetitions: args.repetitions,
        seed: args.seed,
        counters: args.counters,
        start_barrier: false,
        read_probe: args.read_probe,
    };
    spec.validate(&file.summary)?;
    drop(file);

    let mut record = run_in_child(&spec).context("measuring the run")?;
    if let Some(codec) = &codec {
        record.generated_text = Some(codec.decode(&record.generated_ids)?);
    }
    let calibration = Calibration::latest(&ModelCache::from_env()?, &machine);
    eprint!("{}", render_table(&record, calibration.as_ref()));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else if let Some(text) = &record.generated_text {
        println!("{text}");
    }
    Ok(())
}

/// The placement of a single-instance run on this machine; with `--topology` of another
/// machine, the placement is computed and shown, and the run refused.
fn placement_of(args: &PlacementArgs) -> crate::error::Result<(InstancePlacement, Machine)> {
    let cores = match (&args.cores, args.threads) {
        (Some(cores), _) => cores.clone(),
        (None, Some(0)) => return Err(SpecError::Zero { what: "--threads" }.into()),
        (None, Some(threads)) => CoreRequest::Count(threads),
        (None, None) => CoreRequest::All,
    };
    let machine = args.topology.machine()?;
    let request = PlacementRequest {
        cores,
        smt: args.smt,
        placement: args.placement,
        memory: args.memory.clone(),
        nps: NpsRequirement::Any,
        instances: 1,
    };
    let mut instances = place(&machine, &request)
        .with_context(|| format!("cannot place the run on {}", machine.source))?;
    let placement = instances.remove(0);
    if !machine.this_system {
        return Err(MachineError::OtherMachine {
            topology: machine.source,
            placement: describe_placement(&placement),
        }
        .into());
    }
    Ok((placement, machine))
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
fn render_table(r: &RunRecord, calibration: Option<&Calibration>) -> String {
    let s = &r.spec;
    let mut out = String::new();
    let dtype = s
        .model
        .dtype
        .map_or(r.model.dtype.clone(), |d| d.to_string());
    let _ = writeln!(
        out,
        "\n{} ({dtype}, {:.3} B params, {:.1} MB) | engine {} | batch {} | {} threads",
        s.model.name,
        r.model.params as f64 / 1e9,
        r.model.weight_bytes as f64 / 1e6,
        s.engine,
        s.batch,
        r.threads
    );
    let rss = r
        .peak_rss_mb
        .map_or("-".to_string(), |m| format!("{m:.0} MB"));
    let _ = writeln!(
        out,
        "prompt {} tokens | gen {} tokens | warmup {} | {} repetitions | load {:.2} s | peak RSS {rss}\n",
        s.prompt.tokens(),
        s.gen_tokens,
        s.warmup,
        s.repetitions,
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
    let roof = Roofline::of(r, calibration);
    let pct = |v: Option<f64>| {
        v.map_or("no calibration (llamaperf calibrate)".to_string(), |p| {
            format!("{p:.0}% of roofline")
        })
    };
    let _ = writeln!(
        out,
        "  roofline: prefill {:.1} GFLOP/s ({}) | decode {} ({})",
        roof.prefill_gflop_s,
        pct(roof.prefill_pct_roofline),
        roof.decode_gb_s
            .map_or("-".to_string(), |g| format!("{g:.1} GB/s")),
        pct(roof.decode_pct_roofline)
    );
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
    for note in &r.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}
