//! A server llamaperf starts for one run: `server_command` with `{model} {port} {threads}
//! {cpus}` filled in, started by the worker (so it inherits the worker's CPU set and memory
//! policy) in a process group of its own, waited for on its health endpoint, read back from
//! /proc, and stopped with its whole group.

use crate::child::{describe_exit, STDERR_TAIL_LINES};
use crate::machine::cpulist::format_list;
use crate::machine::process;
use crate::machine::process::ThreadBinding;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);
/// How long a server may take to end after SIGTERM before its group gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What fills the placeholders of a server command.
#[derive(Debug, Clone, PartialEq)]
pub struct Placeholders {
    /// `{model}`: the GGUF file.
    pub model: String,
    /// `{port}`: the port to listen on (loopback).
    pub port: u16,
    /// `{threads}`: one per PU of the placement.
    pub threads: usize,
    /// `{cpus}`: the placement's PUs as a cpu list (`0-3,8`).
    pub cpus: Vec<usize>,
}

/// Why a server could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The command is not a command line.
    #[error("server_command \"{0}\" has unbalanced quotes or is empty")]
    BadCommand(String),
    /// It could not be started.
    #[error("cannot start the server {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// It ended before it was healthy.
    #[error("the server {status} before it was healthy{}", tail_text(.stderr_tail))]
    Died {
        /// How it ended.
        status: String,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
    /// Its health endpoint did not answer 200 in time.
    #[error("the server was not healthy at {url} within {limit_s} s{}", tail_text(.stderr_tail))]
    NotHealthy {
        /// The health URL.
        url: String,
        /// The limit, s.
        limit_s: u64,
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

/// The words of `template` with the placeholders filled in (split as a shell would, but run
/// without one, so the server's pid is the process llamaperf reads back and stops).
pub fn command_line(template: &str, fill: &Placeholders) -> Result<Vec<String>, ServerError> {
    let words = shlex::split(template)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| ServerError::BadCommand(template.to_string()))?;
    Ok(words
        .into_iter()
        .map(|w| {
            w.replace("{model}", &fill.model)
                .replace("{port}", &fill.port.to_string())
                .replace("{threads}", &fill.threads.to_string())
                .replace("{cpus}", &format_list(&fill.cpus))
        })
        .collect())
}

/// A free TCP port on the loopback interface (free when asked: the server binds it next).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running server.
pub struct Server {
    child: Child,
    /// The command line as run.
    pub command: String,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `words` in a process group of its own; stdout is discarded, stderr kept (its
    /// last lines). The server dies with the calling thread (a worker killed at its deadline
    /// leaves no server behind).
    pub fn start(words: &[String]) -> Result<Server, ServerError> {
        let mut command = Command::new(&words[0]);
        command
            .args(&words[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        llamaperf_os::process::kill_child_with_parent(&mut command);
        let mut child = command.spawn().map_err(|source| ServerError::Spawn {
            program: words[0].clone(),
            source,
        })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL_LINES)));
        let keep = Arc::clone(&tail);
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut tail = keep.lock().expect("the tail is never poisoned");
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Ok(Server {
            child,
            command: shlex::try_join(words.iter().map(String::as_str))
                .unwrap_or_else(|_| words.join(" ")),
            tail,
            stderr: Some(stderr),
        })
    }

    /// Its process id (and process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its last stderr lines so far.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .expect("the tail is never poisoned")
            .iter()
            .cloned()
            .collect()
    }

    /// How it ended, when it has.
    pub fn exited(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(describe_exit)
    }

    /// How it ended, waiting up to `grace` for an end under way: a dying server closes its
    /// sockets before the kernel reports its exit, so its clients can fail first.
    pub fn exited_within(&mut self, grace: Duration) -> Option<String> {
        let start = Instant::now();
        loop {
            let ended = self.exited();
            if ended.is_some() || start.elapsed() >= grace {
                return ended;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `url` answers 200, at most `limit`; the server ending first is an error.
    pub fn wait_healthy(&mut self, url: &str, limit: Duration) -> Result<Duration, ServerError> {
        let start = Instant::now();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        loop {
            if let Some(status) = self.exited() {
                self.join_stderr();
                return Err(ServerError::Died {
                    status,
                    stderr_tail: self.stderr_tail(),
                });
            }
            if agent
                .get(url)
                .call()
                .is_ok_and(|r| r.status().as_u16() == 200)
            {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= limit {
                return Err(ServerError::NotHealthy {
                    url: url.to_string(),
                    limit_s: limit.as_secs(),
                    stderr_tail: self.stderr_tail(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Every thread of the server with its allowed CPUs (`/proc/<pid>/task/*/status`).
    pub fn threads(&self) -> Vec<ThreadBinding> {
        process::thread_bindings(self.pid())
    }

    /// The server's memory policy ([`process::numa_policy`]).
    pub fn memory_policy(&self) -> Option<String> {
        process::numa_policy(self.pid())
    }

    /// Its peak resident memory (VmHWM), MB.
    pub fn peak_rss_mb(&self) -> Option<f64> {
        process::peak_rss_mb(self.pid())
    }

    fn join_stderr(&mut self) {
        if let Some(h) = self.stderr.take() {
            let _ = h.join();
        }
    }

    /// Stops the server's process group (SIGTERM, then SIGKILL after a grace period) and
    /// reaps it; returns its stderr tail.
    pub fn stop(mut self) -> Vec<String> {
        let pgid = self.pid();
        if self.exited().is_none() {
            let _ = llamaperf_os::process::signal_group(pgid, libc::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(POLL);
            }
        }
        // whatever else of its group is left (a process it started)
        let _ = llamaperf_os::process::signal_group(pgid, libc::SIGKILL);
        let _ = self.child.wait();
        self.join_stderr();
        self.stderr_tail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_each_word_without_a_shell() {
        let fill = Placeholders {
            model: "/m/a b.gguf".into(),
            port: 8123,
            threads: 4,
            cpus: vec![0, 1, 2, 3, 8],
        };
        let words = command_line(
            "llama-server -m '{model}' --port {port} -t {threads} --cpus={cpus}",
            &fill,
        )
        .unwrap();
        assert_eq!(
            words,
            [
                "llama-server",
                "-m",
                "/m/a b.gguf",
                "--port",
                "8123",
                "-t",
                "4",
                "--cpus=0-3,8"
            ]
        );
        assert!(command_line("srv '{port}", &fill).is_err());
        assert!(command_line("  ", &fill).is_err());
    }
}
