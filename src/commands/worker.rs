//! `llamaperf worker` (hidden): one RunSpec in on stdin, one RunRecord out on stdout.

use anyhow::Context;
use llamaperf::machine::binding::bind_process;
use llamaperf::measure::spec::RunSpec;
use llamaperf::measure::worker::{execute, init_thread_pool};
use std::io::{Read, Write};

/// Reads the spec, sizes the thread pool before any tensor exists, measures, writes the record.
pub fn worker() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the run spec from stdin")?;
    let spec: RunSpec = serde_json::from_str(&input).context("parsing the run spec")?;
    let topology = bind_process(&spec.placement)?;
    init_thread_pool(spec.threads())?;
    let record = execute(&spec, &topology)?;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &record).context("writing the run record")?;
    stdout.flush().context("writing the run record")?;
    Ok(())
}
