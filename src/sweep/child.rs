//! Running one [`RunSpec`] in a child `llamaperf worker` process and collecting its record.
//!
//! The child gets the spec as JSON on stdin and answers with one RunRecord as JSON on stdout;
//! its thread pools are sized by the environment before it starts. A child that crashes or
//! exits with an error becomes a [`ChildError`] carrying its exit status and last stderr lines.

use crate::measure::record::RunRecord;
use crate::measure::spec::RunSpec;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

/// Lines of the worker's stderr kept for error reports.
pub const STDERR_TAIL_LINES: usize = 20;

/// Why a worker produced no record.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The worker process could not be started or talked to.
    #[error("cannot run worker {exe}: {source}")]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The worker ended without a record.
    #[error("worker {status}{}", tail_text(.stderr_tail))]
    Failed {
        /// How it ended, e.g. "was killed by signal 6 (SIGABRT)".
        status: String,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
    /// The worker's stdout was not a RunRecord.
    #[error("worker wrote an unreadable record ({reason}){}", tail_text(.stderr_tail))]
    BadRecord {
        /// The JSON error.
        reason: String,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
}

fn tail_text(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its last stderr lines:\n  {}", lines.join("\n  "))
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGINT => "SIGINT",
        libc::SIGKILL => "SIGKILL (out of memory, or killed)",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// Words for how a process ended: "exited with code 3", "was killed by signal 9 (SIGKILL …)".
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        _ => "ended without an exit status".to_string(),
    }
}

/// The executable that runs workers: this program itself.
pub fn worker_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

/// Runs `spec` in a child worker process and returns its record.
pub fn run_in_child(spec: &RunSpec) -> Result<RunRecord, ChildError> {
    let exe = worker_exe().map_err(|source| ChildError::Spawn {
        exe: PathBuf::from("llamaperf"),
        source,
    })?;
    let spawn_err = |source| ChildError::Spawn {
        exe: exe.clone(),
        source,
    };
    let threads = spec.threads().to_string();
    let mut child = Command::new(&exe)
        .arg("worker")
        .env("RAYON_NUM_THREADS", &threads)
        .env("CANDLE_NUM_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;

    let spec_json = serde_json::to_vec(spec).expect("RunSpec always serializes");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(&spec_json));
    let stderr = child.stderr.take().expect("stderr is piped");
    let tail_reader = std::thread::spawn(move || {
        let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        Vec::from(tail)
    });
    let mut stdout = String::new();
    let read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut stdout);
    let status = child.wait().map_err(spawn_err)?;
    let stderr_tail = tail_reader.join().unwrap_or_default();
    // A worker that dies early closes its stdin; the exit status explains that better.
    let _ = writer.join();
    read.map_err(spawn_err)?;

    if !status.success() {
        return Err(ChildError::Failed {
            status: describe_exit(status),
            stderr_tail,
        });
    }
    serde_json::from_str(&stdout).map_err(|e| ChildError::BadRecord {
        reason: e.to_string(),
        stderr_tail,
    })
}
