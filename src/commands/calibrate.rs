//! `llamaperf calibrate` and its hidden per-core-count compute child.

use crate::cli::CalibrateArgs;
use crate::error::Context;
use llamaperf::calibrate::{
    calibrate as measure_machine, compute, default_buffer_bytes, default_core_counts, usable_cores,
    ComputeRequest,
};
use llamaperf::machine::binding::bind_process;
use llamaperf::machine::{Machine, TopologySource};
use llamaperf::measure::worker::init_thread_pool;
use llamaperf::model::{ModelCache, WeightDtype};
use std::io::Read;

/// Measures this machine's ceilings, saves them, prints them.
pub fn calibrate(args: CalibrateArgs) -> crate::error::Result<()> {
    let machine = Machine::load(&TopologySource::ThisMachine)?;
    let cores = if args.cores.is_empty() {
        default_core_counts(usable_cores(&machine))
    } else {
        args.cores.clone()
    };
    let dtypes = if args.dtypes.is_empty() {
        WeightDtype::ALL.to_vec()
    } else {
        args.dtypes.clone()
    };
    let max_cores = cores.iter().copied().max().unwrap_or(1);
    let buffer = args
        .buffer_mb
        .map_or_else(|| default_buffer_bytes(&machine, max_cores), |mb| mb << 20);
    let calibration = measure_machine(&machine, &cores, &dtypes, buffer, &mut |step| {
        eprintln!("calibrating: {step}")
    })?;
    let path = calibration.save(&ModelCache::from_env()?)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&calibration)?);
        return Ok(());
    }
    println!("memory bandwidth (GB/s, {} MB per thread)", buffer >> 20);
    println!(
        "  {:<10} {:>6} {:>4} {:>10} {:>10}",
        "scope", "cores", "smt", "read", "triad"
    );
    let smt = |on: bool| if on { "on" } else { "off" };
    for b in &calibration.bandwidth {
        println!(
            "  {:<10} {:>6} {:>4} {:>10.1} {:>10.1}",
            b.scope,
            b.cores,
            smt(b.smt),
            b.read_gb_s,
            b.triad_gb_s
        );
    }
    println!(
        "GEMM {}x{}x{} (GFLOP/s)",
        compute::GEMM_M,
        compute::GEMM_K,
        compute::GEMM_K
    );
    print!("  {:>6} {:>4}", "cores", "smt");
    for d in &dtypes {
        print!(" {:>8}", d.name());
    }
    println!();
    for p in &calibration.compute {
        print!("  {:>6} {:>4}", p.cores, smt(p.smt));
        for r in &p.results {
            print!(" {:>8.1}", r.gflop_s);
        }
        println!();
    }
    eprintln!("saved as {}", path.display());
    Ok(())
}

/// The child: bind to the request's PUs, size the pool, measure, answer in JSON.
pub fn compute_child() -> crate::error::Result<()> {
    llamaperf_os::process::die_with_parent();
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the request")?;
    let request: ComputeRequest = serde_json::from_str(&input).context("parsing the request")?;
    let machine = Machine::load(&TopologySource::ThisMachine)?;
    bind_process(&request.placement(&machine))?;
    init_thread_pool(request.pus.len())?;
    let results = compute::measure(&request.dtypes, request.repeats)?;
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}
