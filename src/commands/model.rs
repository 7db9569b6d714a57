//! `llamaperf model list` and `llamaperf model synth`.

use crate::cli::ModelCommand;
use crate::error::Context;
use llamaperf::interrupt;
use llamaperf::model::source::ResolvedModel;
use llamaperf::model::{find_preset, presets, ModelCache, ModelError, ModelRef, WeightDtype};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// One row of `model list`.
#[derive(Debug, Serialize)]
struct PresetRow {
    name: &'static str,
    layers: usize,
    hidden: usize,
    ffn: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
    context: usize,
    params: u64,
    tied_embeddings: bool,
    weight_bytes: BTreeMap<&'static str, u64>,
}

/// Runs a `model` subcommand.
pub fn model(cmd: ModelCommand) -> crate::error::Result<()> {
    match cmd {
        ModelCommand::List { json } => list(json),
        ModelCommand::Synth { preset, dtype } => synth(&preset, dtype),
    }
}

fn list(json: bool) -> crate::error::Result<()> {
    let rows: Vec<PresetRow> = presets()
        .into_iter()
        .map(|p| PresetRow {
            name: p.name,
            layers: p.config.layers,
            hidden: p.config.hidden,
            ffn: p.config.ffn,
            heads: p.config.heads,
            kv_heads: p.config.kv_heads,
            vocab: p.config.vocab,
            context: p.config.context,
            params: p.param_count(),
            tied_embeddings: p.tied_embeddings,
            weight_bytes: WeightDtype::ALL
                .iter()
                .map(|&d| (d.name(), p.weight_bytes(d)))
                .collect(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print!(
        "{:<15} {:>6} {:>6} {:>6} {:>9} {:>7} {:>8}",
        "preset", "layers", "hidden", "ffn", "heads/kv", "vocab", "params"
    );
    for d in WeightDtype::ALL {
        print!(" {:>9}", format!("{d} GB"));
    }
    println!();
    for r in &rows {
        print!(
            "{:<15} {:>6} {:>6} {:>6} {:>9} {:>7} {:>7.2}B",
            r.name,
            r.layers,
            r.hidden,
            r.ffn,
            format!("{}/{}", r.heads, r.kv_heads),
            r.vocab,
            r.params as f64 / 1e9
        );
        for d in WeightDtype::ALL {
            print!(" {:>9.3}", r.weight_bytes[d.name()] as f64 / 1e9);
        }
        println!();
    }
    Ok(())
}

fn synth(name: &str, dtype: WeightDtype) -> crate::error::Result<()> {
    let preset = find_preset(name).ok_or_else(|| ModelError::UnknownModel {
        given: name.to_string(),
    })?;
    let cache = ModelCache::from_env()?;
    let model = ModelRef::Preset { preset, dtype }.locate(&cache);
    interrupt::install().context("installing the signal handler")?;
    materialize_reporting(&cache, &model, interrupt::flag())
        .with_context(|| format!("model {name}"))?;
    println!("{}", model.path.display());
    Ok(())
}

/// Makes sure `model`'s file exists, telling on stderr when a synthetic model has to be
/// written first (and refusing one that does not fit on the cache's disk before that); a
/// synthesis stops once `interrupted` is set.
pub fn materialize_reporting(
    cache: &ModelCache,
    model: &ResolvedModel,
    interrupted: &AtomicBool,
) -> Result<(), ModelError> {
    cache.check_space([model])?;
    if let (Some(preset), Some(dtype), false) =
        (find_preset(&model.name), model.dtype, model.path.is_file())
    {
        eprintln!(
            "synthesizing {} {dtype} ({:.2} GB) into {} (once; later runs reuse it)",
            preset.name,
            preset.weight_bytes(dtype) as f64 / 1e9,
            model.path.display()
        );
    }
    let start = Instant::now();
    if cache.materialize(model, interrupted)? {
        eprintln!("synthesized in {:.1} s", start.elapsed().as_secs_f64());
    }
    Ok(())
}
