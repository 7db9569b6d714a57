//! `llamaperf calibrate` and its hidden per-core-count compute child.

use crate::cli::CalibrateArgs;
use crate::error::Context;
use llamaperf::calibrate::gemm_checks::GEMM_PASSES;
use llamaperf::calibrate::{
    calibrate as measure_machine, compute, default_buffer_bytes, default_core_counts, usable_cores,
    Calibration, ComputeRequest,
};
use llamaperf::machine::binding::bind_process;
use llamaperf::machine::{Machine, TopologySource};
use llamaperf::measure::worker::init_thread_pool;
use llamaperf::model::{ModelCache, WeightDtype};
use llamaperf_engine::peak::PeakKernel;
use std::io::Read;

/// Measures this machine's ceilings, saves them, prints them.
pub fn calibrate(args: CalibrateArgs) -> crate::error::Result<()> {
    llamaperf::interrupt::install().context("installing the signal handler")?;
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
    let cache = ModelCache::from_env()?;
    let _lock = Calibration::lock(&cache, &machine)?;
    let calibration = measure_machine(&machine, &cores, &dtypes, buffer, &mut |step| {
        eprintln!("calibrating: {step}")
    })?;
    let path = calibration.save(&cache)?;
    // the children are done: from here on only stdout is written
    llamaperf_os::process::die_on_closed_pipe();
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
    if !calibration.l3_read.is_empty() {
        println!("read per set of L3 domains (GB/s, every core of the set)");
        println!(
            "  {:<10} {:>8} {:>6} {:>6} {:>10}",
            "placement", "domains", "nodes", "cores", "read"
        );
        for p in &calibration.l3_read {
            println!(
                "  {:<10} {:>8} {:>6} {:>6} {:>10.1}",
                p.placement.to_string(),
                p.domains,
                p.numa_nodes,
                p.cores,
                p.read_gb_s
            );
        }
    }
    println!(
        "GEMM {}x{}x{} (GFLOP/s, median of {} passes, (slowest - fastest) / median in brackets)",
        compute::GEMM_M,
        compute::GEMM_K,
        compute::GEMM_K,
        GEMM_PASSES
    );
    print!("  {:>6} {:>4}", "cores", "smt");
    for d in &dtypes {
        print!(" {:>14}", d.name());
    }
    println!();
    for p in &calibration.compute {
        print!("  {:>6} {:>4}", p.cores, smt(p.smt));
        for r in &p.results {
            let cell = format!("{:.1} ({:.0}%)", r.gflop_s, r.spread_pct.unwrap_or(0.0));
            print!(" {cell:>14}");
        }
        let flagged: Vec<String> = p
            .results
            .iter()
            .filter(|r| !r.flags.is_empty())
            .map(|r| {
                let flags: Vec<&str> = r.flags.iter().map(|f| f.name()).collect();
                format!("{}: {}", r.dtype.name(), flags.join(", "))
            })
            .collect();
        if flagged.is_empty() {
            println!();
        } else {
            println!("  flagged: {}", flagged.join("; "));
        }
    }
    println!(
        "ISA peak (10^9 operations/s, a multiply-add counts 2; per thread the best of 5 \
         passes over the CPU time it ran)"
    );
    let kernels: Vec<PeakKernel> = PeakKernel::ALL
        .into_iter()
        .filter(|k| {
            calibration
                .peak
                .iter()
                .any(|p| p.results.iter().any(|r| r.kernel == *k))
        })
        .collect();
    print!("  {:>6} {:>4}", "cores", "smt");
    for k in &kernels {
        print!(" {:>10}", k.name());
    }
    println!();
    for p in &calibration.peak {
        print!("  {:>6} {:>4}", p.cores, smt(p.smt));
        for k in &kernels {
            match p.results.iter().find(|r| r.kernel == *k) {
                Some(r) => print!(" {:>10.1}", r.gop_s),
                None => print!(" {:>10}", "-"),
            }
        }
        println!();
    }
    let missing: Vec<&str> = PeakKernel::ALL
        .into_iter()
        .filter(|k| k.width_bits().is_none())
        .map(|k| k.name())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "this CPU lacks the instructions of {}: no peak of them",
            missing.join(", ")
        );
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
    let results = compute::measure(&request.dtypes, request.passes)?;
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}
