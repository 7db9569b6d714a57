//! Running one [`RunSpec`] in a child `llamaperf worker` process and collecting its record.
//!
//! Protocol: the spec as one JSON line on the child's stdin; with `start_barrier`, the child
//! loads and pins, prints [`READY_LINE`] on stderr and waits for a `go` line on stdin; it answers
//! with one RunRecord as JSON on stdout. Children run in their own process group, so a Ctrl-C in
//! the terminal reaches only the parent, which stops them. A child that crashes, exits with an
//! error or runs past its deadline becomes a [`ChildError`] with its last stderr lines.

use crate::measure::record::RunRecord;
use crate::measure::spec::RunSpec;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of the worker's stderr kept for error reports.
pub const STDERR_TAIL_LINES: usize = 20;
/// The line a worker prints on stderr when it is loaded, pinned and waiting for `go`.
pub const READY_LINE: &str = "llamaperf-worker: ready";
const POLL: Duration = Duration::from_millis(20);

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
    /// The worker ran past its time limit and was killed.
    #[error("worker timed out after {limit_s} s and was killed{}", tail_text(.stderr_tail))]
    TimedOut {
        /// The limit, seconds.
        limit_s: u64,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
    /// The sweep was interrupted (SIGINT/SIGTERM); the worker was stopped.
    #[error("interrupted")]
    Interrupted,
    /// The worker's stdout was not a RunRecord.
    #[error("worker wrote an unreadable record ({reason}){}", tail_text(.stderr_tail))]
    BadRecord {
        /// The JSON error.
        reason: String,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
}

impl ChildError {
    /// The worker's last stderr lines, when there are any.
    pub fn stderr_tail(&self) -> &[String] {
        match self {
            ChildError::Failed { stderr_tail, .. }
            | ChildError::TimedOut { stderr_tail, .. }
            | ChildError::BadRecord { stderr_tail, .. } => stderr_tail,
            ChildError::Spawn { .. } | ChildError::Interrupted => &[],
        }
    }
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

/// When a wait gives up: a deadline and an interruption flag.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// Kill the worker at this instant, with its limit in seconds for the message.
    pub deadline: Option<(Instant, u64)>,
    /// Stop the worker when this becomes true.
    pub interrupted: &'a AtomicBool,
}

/// A running worker process.
pub struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<std::io::Result<String>>>,
    stderr: Option<JoinHandle<Vec<String>>>,
    ready: Receiver<()>,
}

impl WorkerProcess {
    /// Starts a worker for `spec` and sends it the spec.
    pub fn spawn(spec: &RunSpec) -> Result<Self, ChildError> {
        let exe = std::env::current_exe().map_err(|source| ChildError::Spawn {
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
            .process_group(0)
            .spawn()
            .map_err(spawn_err)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut line = serde_json::to_vec(spec).expect("RunSpec always serializes");
        line.push(b'\n');
        // A worker that dies at once closes its stdin; its exit status tells why.
        let _ = stdin.write_all(&line).and_then(|()| stdin.flush());
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let stdout = std::thread::spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).map(|_| out)
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready_tx, ready) = channel();
        let stderr = std::thread::spawn(move || {
            let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line == READY_LINE {
                    let _ = ready_tx.send(());
                    continue;
                }
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Vec::from(tail)
        });
        Ok(WorkerProcess {
            child,
            stdin: Some(stdin),
            stdout: Some(stdout),
            stderr: Some(stderr),
            ready,
        })
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the worker is loaded and pinned (it printed [`READY_LINE`]).
    pub fn wait_ready(&mut self, limits: Limits) -> Result<(), ChildError> {
        loop {
            match self.ready.recv_timeout(POLL) {
                Ok(()) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => return self.finish(limits).map(|_| ()),
                Err(RecvTimeoutError::Timeout) => self.check(limits)?,
            }
        }
    }

    /// Lets a worker waiting at the start barrier begin measuring.
    pub fn start(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // A dead worker is reported by `finish`.
            let _ = stdin.write_all(b"go\n").and_then(|()| stdin.flush());
        }
    }

    fn check(&mut self, limits: Limits) -> Result<(), ChildError> {
        if limits.interrupted.load(Ordering::SeqCst) {
            self.kill();
            return Err(ChildError::Interrupted);
        }
        if let Some((deadline, limit_s)) = limits.deadline {
            if Instant::now() >= deadline {
                self.kill();
                return Err(ChildError::TimedOut {
                    limit_s,
                    stderr_tail: self
                        .stderr
                        .take()
                        .and_then(|h| h.join().ok())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(())
    }

    /// Kills the worker (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the worker to end and returns its record.
    pub fn finish(&mut self, limits: Limits) -> Result<RunRecord, ChildError> {
        drop(self.stdin.take());
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(|source| ChildError::Spawn {
                exe: PathBuf::from("worker"),
                source,
            })? {
                break status;
            }
            self.check(limits)?;
            std::thread::sleep(POLL);
        };
        let stderr_tail = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stdout = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .transpose()
            .map_err(|source| ChildError::Spawn {
                exe: PathBuf::from("worker"),
                source,
            })?
            .unwrap_or_default();
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
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Runs `spec` in a child worker process (no time limit) and returns its record.
pub fn run_in_child(spec: &RunSpec) -> Result<RunRecord, ChildError> {
    let never = AtomicBool::new(false);
    WorkerProcess::spawn(spec)?.finish(Limits {
        deadline: None,
        interrupted: &never,
    })
}
