//! The measurement side of a worker process: load, warm up, measure, record.

use super::engine_load::load_engine;
use super::generation::{generate, NoObserver, Phase, PhaseObserver};
use super::metrics::RepetitionMetrics;
use super::prompt::{batch_prompts, depth_fill, opening};
use super::read_share::ReadShare;
use super::record::{RepetitionRecord, RunCounters, RunRecord, RunSummary};
use crate::calibrate::read_probe::{probe_bytes, ReadProbe};
use crate::counters::derived::{waiting_note, Derived};
use crate::counters::rapl::{self, EnergyMeter, PhaseTotals};
use crate::counters::PhaseCounters;
use crate::engine::kernels::Isa;
use crate::engine::{EngineError, EngineKind};
use crate::machine::binding::{pin_threads, read_back, thread_ids};
use crate::machine::cpu_time::CpuTimes;
use crate::machine::{process, Machine, MachineError, TopologySource};
use crate::model::flops::decode_bytes_per_step;
use crate::model::{ModelError, OpenedModel};
use crate::planning::spec::RunSpec;
use hwlocality::Topology;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Environment variable of a test hook that makes the worker fail on purpose after loading:
/// `abort` (dies by SIGABRT) or `hang` (sleeps until killed). Used by crash-isolation tests.
pub const FAULT_ENV: &str = "LLAMAPERF_TEST_WORKER_FAULT";

/// Prompt tokens per sequence of the pass that creates the compute pools before the pinning:
/// more than one, so that it goes through the prefill path.
const POOL_PASS_TOKENS: usize = 8;

/// What can stop a worker from producing a record.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The compute thread pool could not be created.
    #[error("cannot create the compute thread pool: {0}")]
    ThreadPool(String),
    /// Binding to the placement failed.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// The parent's start signal did not arrive.
    #[error("waiting for the start signal: {0}")]
    StartGate(String),
    /// The model file or folder cannot be opened.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Loading or running the engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Sizes the process-wide compute pool (used by candle) to `threads`; must run before any
/// tensor operation.
pub fn init_thread_pool(threads: usize) -> Result<(), WorkerError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("lp-rayon-{i}"))
        .build_global()
        .map_err(|e| WorkerError::ThreadPool(e.to_string()))
}

/// Runs `f` on a thread of the compute pool, the main thread waiting: the parallel loops of
/// the matrix products then start from inside the pool instead of being injected into it
/// and waited for from outside, once per product.
fn on_compute_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| f())
}

/// Runs `f` on the thread the engine computes from: the compute pool for the project's
/// engines; the main thread for llama.cpp, whose OpenMP team belongs to the thread that first
/// decodes (another thread would get a team of its own, created after the pinning), and for
/// torch, whose threads are another process's.
fn on_engine_thread<R: Send>(engine: EngineKind, f: impl FnOnce() -> R + Send) -> R {
    if matches!(engine, EngineKind::LlamaCpp | EngineKind::Torch) {
        f()
    } else {
        on_compute_pool(f)
    }
}

/// Counts prefill and decode into separate counter sets and energy totals; with a read
/// probe, reads after each decode step, its counters and energy off.
struct PhaseSwitch {
    prefill: PhaseCounters,
    decode: PhaseCounters,
    probe: Option<ReadProbe>,
    /// GB/s of the probe's reads since the last [`PhaseSwitch::take_reads`].
    reads: Vec<f64>,
    /// The RAPL zones of the run's packages, with each phase's totals; `None` where energy
    /// cannot be measured.
    energy: Option<(EnergyMeter, PhaseTotals, PhaseTotals)>,
}

impl PhaseSwitch {
    /// The reads of the repetition that just ended.
    fn take_reads(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.reads)
    }
}

impl PhaseObserver for PhaseSwitch {
    fn begin(&mut self, phase: Phase) {
        // energy around the counters, so that its sysfs reads are in no count
        if let Some((meter, ..)) = &mut self.energy {
            meter.start();
        }
        match phase {
            Phase::Prefill => self.prefill.enable(),
            Phase::Decode => self.decode.enable(),
        }
    }

    fn end(&mut self, phase: Phase) {
        match phase {
            Phase::Prefill => self.prefill.disable(),
            Phase::Decode => self.decode.disable(),
        }
        if let Some((meter, prefill, decode)) = &mut self.energy {
            meter.stop(match phase {
                Phase::Prefill => prefill,
                Phase::Decode => decode,
            });
        }
    }

    fn between_steps(&mut self) {
        if let Some(probe) = self.probe.take() {
            self.end(Phase::Decode);
            self.reads.push(probe.pass());
            self.begin(Phase::Decode);
            self.probe = Some(probe);
        }
    }
}

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn fault_hook(spec: &RunSpec) {
    match std::env::var(FAULT_ENV).as_deref() {
        Ok("abort") => {
            eprintln!("{FAULT_ENV}=abort: aborting after load");
            std::process::abort()
        }
        Ok("hang") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        // as llama.cpp's AMX kernels die where a VM lists AMX but does not run it
        Ok("sigill-with-amx") if spec.amx_refused.is_none() => {
            eprintln!("{FAULT_ENV}=sigill-with-amx: SIGILL after load");
            let _ = llamaperf_os::process::send_signal(std::process::id(), libc::SIGILL);
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        _ => {}
    }
}

/// Executes `spec` in this process: loads the model, pins every compute thread, runs warmup and
/// measured repetitions. The process must already be bound
/// ([`crate::machine::binding::bind_process`], which returns `topology`) and the thread pool
/// sized ([`init_thread_pool`]). `start_gate` is called once everything is loaded and pinned,
/// before the first repetition: parallel instances wait there for each other.
pub fn execute(
    spec: &RunSpec,
    topology: &Topology,
    start_gate: &mut dyn FnMut() -> std::io::Result<()>,
) -> Result<RunRecord, WorkerError> {
    let load_start = Instant::now();
    let model = OpenedModel::open(&spec.model.path)?;
    let c = &spec.config;
    let loaded = load_engine(spec, &model)?;
    let mut engine = loaded.engine;
    let load_s = load_start.elapsed().as_secs_f64();

    let vocab = model.summary().config.vocab;
    let prompts = batch_prompts(&spec.prompt, c.batch, vocab, c.seed);
    let fill = depth_fill(c.depth, c.batch, vocab, c.seed);
    // One short pass creates every compute pool (prefill and decode paths), then each of their
    // threads gets its own PU. It runs on the pool as the measured passes do: from the main
    // thread, the main thread would compute beside every pool thread, one thread more than
    // the run's cores. llama.cpp creates its thread team here. Only the prompts' opening: a
    // 32k-token prompt's whole prefill here took as long as the measured one, and its
    // activations would be first touched before the pinning.
    on_engine_thread(c.engine, || {
        generate(
            engine.as_mut(),
            &[],
            &opening(&prompts, POOL_PASS_TOKENS),
            c.gen_tokens.min(2),
            &mut NoObserver,
        )
    })?;
    // the torch worker's OpenMP team pinned itself (OMP_PLACES)
    pin_threads(topology, &spec.placement, std::process::id())?;
    let tids = thread_ids(loaded.pid)?;
    let (prefill_counters, missing) = PhaseCounters::open(&c.counters, &tids);
    let (decode_counters, _) = PhaseCounters::open(&c.counters, &tids);
    // the probe's buffers are touched by the pinned pool threads: on the run's memory nodes
    let machine = Machine::describe(topology, &TopologySource::ThisMachine)?;
    let probe = if c.read_probe {
        let bytes = probe_bytes(&machine);
        Some(on_compute_pool(|| ReadProbe::on_pool(bytes)))
    } else {
        None
    };
    let read_bytes = probe.as_ref().map_or(0, ReadProbe::bytes) as u64;
    let (energy, energy_note) = match EnergyMeter::open(
        &rapl::root(),
        std::path::Path::new(rapl::CPU_SYSFS),
        &spec.placement.pus,
    ) {
        Ok(meter) => {
            let (prefill, decode) = (meter.totals(), meter.totals());
            (Some((meter, prefill, decode)), None)
        }
        Err(reason) => (None, Some(format!("energy not measured: {reason}"))),
    };
    let mut counters = PhaseSwitch {
        prefill: prefill_counters,
        decode: decode_counters,
        probe,
        reads: Vec::new(),
        energy,
    };
    fault_hook(spec);
    start_gate().map_err(|e| WorkerError::StartGate(e.to_string()))?;
    let measure_start = SystemTime::now();
    for _ in 0..c.warmup {
        on_engine_thread(c.engine, || {
            generate(
                engine.as_mut(),
                &fill,
                &prompts,
                c.gen_tokens,
                &mut NoObserver,
            )
        })?;
    }
    let mut repetitions = Vec::with_capacity(c.repetitions);
    let mut generated_ids = Vec::new();
    let cpus = &spec.placement.pus;
    for rep in 0..c.repetitions {
        let (before, start) = (CpuTimes::now(cpus), Instant::now());
        let timing = on_engine_thread(c.engine, || {
            generate(
                engine.as_mut(),
                &fill,
                &prompts,
                c.gen_tokens,
                &mut counters,
            )
        })?;
        let wall_s = start.elapsed().as_secs_f64();
        let contention = before
            .zip(CpuTimes::now(cpus))
            .map(|(b, a)| b.contention_until(&a, wall_s, cpus.len()));
        if rep == 0 {
            generated_ids = timing.first_sequence.clone();
        }
        repetitions.push(RepetitionRecord {
            metrics: RepetitionMetrics::from_timing(c.batch, spec.prompt.tokens(), &timing),
            decode_steps_ms: timing.decode_steps_ms,
            read_probe_gb_s: counters.take_reads(),
            contention,
        });
    }
    let measure_end = SystemTime::now();
    let mut summary = RunSummary::of(&repetitions).ok_or_else(|| {
        EngineError::Unsupported("a run needs at least one measured repetition".into())
    })?;
    let step_reads = repetitions.iter().flat_map(|r| {
        let reads = r.read_probe_gb_s.iter().copied();
        r.decode_steps_ms.iter().copied().zip(reads)
    });
    summary.read_share = ReadShare::of(
        step_reads,
        read_bytes,
        decode_bytes_per_step(
            &model.summary().config,
            &model.summary().step_weights(),
            c.batch,
            c.depth + spec.prompt.tokens(),
            c.gen_tokens,
            c.kv_dtype_kept(),
        ),
    );
    let prefill_s: f64 = repetitions.iter().map(|r| r.metrics.ttft_ms / 1e3).sum();
    let decode_s: f64 = repetitions
        .iter()
        .map(|r| r.decode_steps_ms.iter().sum::<f64>() / 1e3)
        .sum();
    let (energy, energy_note) = match &counters.energy {
        Some((meter, prefill, decode)) => match meter.packages(prefill, decode) {
            Ok(packages) => (packages, energy_note),
            Err(reason) => (Vec::new(), Some(format!("energy not measured: {reason}"))),
        },
        None => (Vec::new(), energy_note),
    };
    let (prefill, prefill_notes) = counters.prefill.read("prefill");
    let (decode, decode_notes) = counters.decode.read("decode");
    let counters = RunCounters {
        prefill_derived: Derived::of(&prefill, prefill_s, spec.threads()),
        decode_derived: Derived::of(&decode, decode_s, spec.threads()),
        prefill,
        decode,
    };
    let mut notes = loaded.notes;
    notes.extend(missing);
    notes.extend(prefill_notes.into_iter().chain(decode_notes));
    notes.extend(waiting_note(
        [&counters.prefill_derived, &counters.decode_derived],
        spec.threads(),
    ));
    notes.extend(energy_note);
    if spec.model.synthetic {
        notes.push("synthetic model: random weights, generated text is meaningless".into());
    }
    Ok(RunRecord {
        model: model.into_summary(),
        threads: loaded.threads,
        kernels: (c.engine == EngineKind::Tuned).then(Isa::active),
        llama_cpp: loaded.llama_cpp,
        torch: loaded.torch,
        kv_dtype: c.kv_dtype_kept(),
        measure_start_unix_s: unix_s(measure_start),
        measure_end_unix_s: unix_s(measure_end),
        load_s,
        peak_rss_mb: process::peak_rss_mb(loaded.pid),
        repetitions,
        summary,
        generated_ids,
        generated_text: None,
        counters,
        energy,
        binding: read_back(topology, loaded.pid)?,
        shape: Some(machine.shape_of(&spec.placement.pus)),
        notes,
        serving: None,
    })
}
