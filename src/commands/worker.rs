//! `llamaperf worker` (hidden): one RunSpec in on stdin, one RunRecord out on stdout.

use crate::error::Context;
use llamaperf::child::READY_LINE;
use llamaperf::engine::EngineKind;
use llamaperf::machine::binding::bind_process;
use llamaperf::measure::record::RunRecord;
use llamaperf::measure::worker::{execute, init_thread_pool};
use llamaperf::planning::spec::RunSpec;
use llamaperf::serve;
use std::io::{BufRead, Write};

/// Reads the spec, binds before any thread exists, measures, writes the record.
pub fn worker() -> crate::error::Result<()> {
    // A worker outlives no parent: if the sweep dies, so does its measurement.
    llamaperf_os::process::die_with_parent();
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("reading the run spec from stdin")?;
    let spec: RunSpec = serde_json::from_str(&line).context("parsing the run spec")?;
    let topology = bind_process(&spec.placement)?;
    if spec.config.engine == EngineKind::OpenAi {
        let record = serve::execute(&spec, &topology)?;
        return write_record(&record);
    }
    init_thread_pool(spec.threads())?;
    let mut start_gate = || -> std::io::Result<()> {
        if spec.start_barrier {
            eprintln!("{READY_LINE}");
            stdin.read_line(&mut String::new())?;
        }
        Ok(())
    };
    let record = execute(&spec, &topology, &mut start_gate)?;
    write_record(&record)
}

fn write_record(record: &RunRecord) -> crate::error::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, record).context("writing the run record")?;
    stdout.flush().context("writing the run record")?;
    Ok(())
}
