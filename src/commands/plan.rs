//! `llamaperf plan`: memory, packing, projected throughput, SLO batch and machines for a load.

use crate::cli::PlanArgs;
use llamaperf::calibrate::Calibration;
use llamaperf::machine::{Machine, TopologySource};
use llamaperf::model::source::dtype_label;
use llamaperf::model::{ModelCache, ModelRef};
use llamaperf::plan::slo::Slo;
use llamaperf::plan::{
    plan_capacity, read_calibration, CapacityPlan, MachinePoint, ModelShape, PlanRequest, Projector,
};
use llamaperf::results::ResultsDir;
use std::fmt::Write as _;

/// Builds the request, picks the projection, plans and prints.
pub fn plan(args: PlanArgs) -> crate::error::Result<()> {
    let model = ModelRef::parse(&args.model, args.dtype)?;
    if args.dtype.is_some() && model.keeps_own_dtypes() {
        eprintln!("warning: --dtype is ignored for a GGUF file or a model folder (its tensors keep their types)");
    }
    let shape = ModelShape::of(&model)?;
    let results = args.from.as_deref().map(ResultsDir::read).transpose()?;
    let machine = match (&args.topology.topology, &results) {
        (Some(_), _) => args.topology.machine()?,
        (None, Some(dir)) => {
            let info = dir.machine()?;
            Machine {
                source: format!(
                    "{} (machine.json of {})",
                    info.hostname,
                    dir.path().display()
                ),
                ..info.topology
            }
        }
        (None, None) => Machine::load(&TopologySource::ThisMachine)?,
    };
    let request = PlanRequest::new(
        &shape,
        &machine,
        args.batch,
        args.prompt_tokens,
        args.context,
        args.kv_dtype,
        args.cores_per_instance,
        Slo {
            ttft_ms: args.slo_ttft_ms,
            tpot_ms: args.slo_tpot_ms,
        },
        args.target_tok_s,
    )?;
    let projector = match (&results, &args.calibration) {
        (Some(dir), _) => Ok(Projector::measured(dir, &shape, args.engine.as_deref())?),
        (None, Some(path)) => Projector::roofline(&read_calibration(path)?, &shape, &request, &machine),
        (None, None) => match Calibration::latest(&ModelCache::from_env()?, &machine) {
            Some(c) => Projector::roofline(&c, &shape, &request, &machine),
            None => Err(format!(
                "no calibration of {}: run `llamaperf calibrate` on it, or give --calibration FILE or --from RESULTS_DIR",
                machine.source
            )),
        },
    };
    let plan = plan_capacity(&shape, &request, &machine, projector);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan));
    }
    Ok(())
}

fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

fn plural(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn point_line(m: &MachinePoint) -> String {
    format!(
        "TTFT {:.1} ms, TPOT {:.2} ms, {:.1} tok/s per instance x {} = {:.1} tok/s per machine{}",
        m.ttft_ms,
        m.tpot_ms,
        m.tok_s_per_instance,
        plural(m.instances_per_machine as u64, "instance"),
        m.tok_s_per_machine,
        m.tok_per_j
            .map_or(String::new(), |t| format!(", {t:.2} tok/J"))
    )
}

/// The plan as text: memory, packing, projection, SLO search, target, notes.
fn render(p: &CapacityPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}, KV cache {}, batch {}, prompt {}, context {} on {}\n",
        p.model,
        dtype_label(p.dtype),
        p.kv_dtype,
        p.batch,
        p.prompt_tokens,
        p.context,
        p.machine
    );
    let m = &p.memory;
    let _ = writeln!(out, "memory per instance");
    let _ = writeln!(out, "  weights      {:>12}", gb(m.weights_bytes));
    let _ = writeln!(
        out,
        "  KV cache     {:>12}  ({} bytes per token x {} tokens x {})",
        gb(m.kv_cache_bytes),
        p.kv_bytes_per_token,
        p.context,
        plural(p.batch as u64, "sequence")
    );
    let _ = writeln!(out, "  activations  {:>12}", gb(m.activation_bytes));
    let _ = writeln!(out, "  total        {:>12}\n", gb(p.memory_total_bytes));
    let k = &p.packing;
    let _ = writeln!(
        out,
        "instances of {} cores and {}",
        k.cores_per_instance,
        gb(k.instance_bytes)
    );
    let _ = writeln!(
        out,
        "  {:<10} {:>5} {:>12} {:>6} {:>10} {:>9} {:>5} {:>6}",
        "scope", "count", "memory", "cores", "by memory", "by cores", "each", "total"
    );
    for s in &k.scopes {
        let _ = writeln!(
            out,
            "  {:<10} {:>5} {:>12} {:>6} {:>10} {:>9} {:>5} {:>6}",
            s.scope.replace('_', " "),
            s.count,
            gb(s.memory_bytes),
            s.cores,
            s.by_memory,
            s.by_cores,
            s.each,
            s.total
        );
    }
    let _ = writeln!(
        out,
        "  -> {} per machine ({})\n",
        plural(k.instances_per_machine as u64, "instance"),
        serde_json::to_value(k.layout)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', "-")))
            .unwrap_or_default()
    );
    if let (Some(source), Some(at)) = (&p.projection, &p.at_batch) {
        let source = match &p.engine {
            Some(engine) => format!("{source}, engine {engine}"),
            None => source.clone(),
        };
        let _ = writeln!(out, "projection ({source}) at batch {}", at.batch);
        let _ = writeln!(out, "  {}\n", point_line(at));
    }
    if let Some(s) = &p.slo {
        let objectives: Vec<String> = [("TTFT", s.slo.ttft_ms), ("TPOT", s.slo.tpot_ms)]
            .iter()
            .filter_map(|(n, v)| v.map(|v| format!("{n} <= {v} ms")))
            .collect();
        match &s.best {
            Some(best) => {
                let _ = writeln!(
                    out,
                    "SLO {}: largest batch {} (searched 1-{})\n  {}\n",
                    objectives.join(", "),
                    best.batch,
                    s.searched_up_to,
                    point_line(best)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "SLO {}: no batch from 1 to {} meets it\n",
                    objectives.join(", "),
                    s.searched_up_to
                );
            }
        }
    }
    if let Some(t) = &p.target {
        let _ = writeln!(
            out,
            "target {} tok/s: {} at batch {}\n",
            t.tok_s,
            plural(t.machines, "machine"),
            t.batch
        );
    }
    if !p.notes.is_empty() {
        let _ = writeln!(out, "notes:");
        for n in &p.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}
