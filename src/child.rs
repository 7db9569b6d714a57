//! JSON child processes: a hidden subcommand of this same executable (`llamaperf worker`,
//! `llamaperf calibrate-compute`) that reads one JSON line on stdin and answers with one JSON
//! value on stdout.
//!
//! Protocol: the request as one JSON line on the child's stdin; a child that must wait for its
//! siblings (parallel instances) prints [`READY_LINE`] on stderr when ready and waits for a
//! `go` line on stdin. Children run in their own process group, so a Ctrl-C in the terminal
//! reaches only the parent, which stops them; each child asks to die with its parent
//! (`llamaperf_os::process::die_with_parent`). A child that crashes, exits with an error or
//! runs past its deadline becomes a [`ChildError`] with its last stderr lines.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines of a child's stderr kept for error reports.
pub const STDERR_TAIL_LINES: usize = 20;
/// The line a child prints on stderr when it is loaded, pinned and waiting for `go`.
pub const READY_LINE: &str = "llamaperf-worker: ready";
const POLL: Duration = Duration::from_millis(20);

/// Why a child produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The child process could not be started or talked to.
    #[error("cannot run {role} {exe}: {source}")]
    Spawn {
        /// What the child is for ("worker").
        role: &'static str,
        /// The executable.
        exe: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The child ended without an answer.
    #[error("{role} {status}{}", tail_text(.stderr_tail))]
    Failed {
        /// What the child is for ("worker").
        role: &'static str,
        /// How it ended, e.g. "was killed by signal 6 (SIGABRT)".
        status: String,
        /// The signal that ended it, if one did.
        signal: Option<i32>,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
    /// The child ran past its time limit and was killed.
    #[error("{role} timed out after {limit_s} s and was killed{}", tail_text(.stderr_tail))]
    TimedOut {
        /// What the child is for ("worker").
        role: &'static str,
        /// The limit, seconds.
        limit_s: u64,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
    /// The parent was interrupted (SIGINT/SIGTERM); the child was stopped.
    #[error("interrupted")]
    Interrupted,
    /// The child's stdout was not the JSON value expected.
    #[error("{role} wrote an unreadable record ({reason}){}", tail_text(.stderr_tail))]
    BadRecord {
        /// What the child is for ("worker").
        role: &'static str,
        /// The JSON error.
        reason: String,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
}

impl ChildError {
    /// The child's last stderr lines, when there are any.
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
    /// Kill the child at this instant, with its limit in seconds for the message.
    pub deadline: Option<(Instant, u64)>,
    /// Stop the child when this becomes true.
    pub interrupted: &'a AtomicBool,
}

/// Never set: the interruption flag of a wait without one.
static NEVER: AtomicBool = AtomicBool::new(false);

impl Limits<'static> {
    /// No deadline, no interruption: wait until the child ends.
    pub fn none() -> Self {
        Limits {
            deadline: None,
            interrupted: &NEVER,
        }
    }
}

/// A running child process of this executable.
pub struct JsonChild {
    role: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<JoinHandle<std::io::Result<String>>>,
    stderr: Option<JoinHandle<Vec<String>>>,
    ready: Receiver<()>,
}

impl JsonChild {
    /// Starts `llamaperf SUBCOMMAND` (the child's `role` in messages) with thread pools of
    /// `threads` threads and sends it `request`.
    pub fn spawn(
        subcommand: &str,
        role: &'static str,
        threads: usize,
        request: &impl Serialize,
    ) -> Result<Self, ChildError> {
        let exe = std::env::current_exe().map_err(|source| ChildError::Spawn {
            role,
            exe: PathBuf::from("llamaperf"),
            source,
        })?;
        let spawn_err = |source| ChildError::Spawn {
            role,
            exe: exe.clone(),
            source,
        };
        let threads = threads.to_string();
        let mut child = Command::new(&exe)
            .arg(subcommand)
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
        let mut line = serde_json::to_vec(request).expect("requests always serialize");
        line.push(b'\n');
        // A child that dies at once closes its stdin; its exit status tells why.
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
        Ok(JsonChild {
            role,
            child,
            stdin: Some(stdin),
            stdout: Some(stdout),
            stderr: Some(stderr),
            ready,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the child is ready (it printed [`READY_LINE`]); a child that ends instead
    /// is reported as its `finish` would.
    pub fn wait_ready(&mut self, limits: Limits) -> Result<(), ChildError> {
        loop {
            match self.ready.recv_timeout(POLL) {
                Ok(()) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => {
                    return self.finish::<serde_json::Value>(limits).map(|_| ())
                }
                Err(RecvTimeoutError::Timeout) => self.check(limits)?,
            }
        }
    }

    /// Lets a child waiting at the start barrier begin.
    pub fn start(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // A dead child is reported by `finish`.
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
                    role: self.role,
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

    /// Kills the child (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the child to end and returns its answer.
    pub fn finish<T: DeserializeOwned>(&mut self, limits: Limits) -> Result<T, ChildError> {
        drop(self.stdin.take());
        let role = self.role;
        let lost = |source| ChildError::Spawn {
            role,
            exe: PathBuf::from(role),
            source,
        };
        let status = loop {
            if let Some(status) = self.child.try_wait().map_err(lost)? {
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
            .map_err(lost)?
            .unwrap_or_default();
        if !status.success() {
            return Err(ChildError::Failed {
                role,
                status: describe_exit(status),
                signal: status.signal(),
                stderr_tail,
            });
        }
        serde_json::from_str(&stdout).map_err(|e| ChildError::BadRecord {
            role,
            reason: e.to_string(),
            stderr_tail,
        })
    }
}

impl Drop for JsonChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
