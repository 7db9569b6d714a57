//! The torch worker process: started with its load request, then driven as an [`Engine`]
//! whose forward passes answer greedy token ids.

use super::protocol::{LoadReply, LoadRequest, Ready, Reply, Request};
use crate::engine::{Engine, EngineError};
use candle_core::Tensor;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The Python worker's source, run with `python -u -c` (no file to install beside the binary).
const SCRIPT: &str = include_str!("../../python/torch_worker.py");

/// Why the torch worker did not load or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum TorchError {
    /// The interpreter could not be started.
    #[error("cannot start the torch worker with {}: {source}", .python.display())]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The worker reported that loading failed.
    #[error("the torch worker could not load the model: {0}")]
    Load(String),
    /// The worker answered a request with an error.
    #[error("the torch worker failed: {0}")]
    Request(String),
    /// The worker ended or broke the protocol (its stderr, above in the worker's, says why).
    #[error("the torch worker {0}")]
    Protocol(String),
}

impl From<TorchError> for EngineError {
    fn from(e: TorchError) -> Self {
        EngineError::External(e.to_string())
    }
}

/// A running torch worker with its model loaded.
pub struct TorchWorker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    ready: Ready,
    /// A failed reset, reported by the next forward ([`Engine::reset`] cannot fail).
    failed_reset: Option<String>,
}

impl TorchWorker {
    /// Starts `python` on the worker script and loads `request`'s model; returns once the
    /// model is loaded, compiled or optimized and warm. The process inherits this one's CPUs
    /// and memory policy, with `OMP_NUM_THREADS` set to the request's threads and its OpenMP
    /// team bound one thread per PU of `pus` (`OMP_PLACES`, `OMP_PROC_BIND`), and dies with
    /// the thread that started it.
    pub fn start(
        python: &Path,
        request: &LoadRequest<'_>,
        pus: &[usize],
    ) -> Result<TorchWorker, TorchError> {
        // OpenMP pins its own team, master on the first PU: the process's other threads
        // (loaders, pools) come between the team's in creation order, so pinning by order
        // from outside put two of the team on one PU.
        let places: Vec<String> = pus.iter().map(|p| format!("{{{p}}}")).collect();
        let mut command = Command::new(python);
        command
            .args(["-u", "-c", SCRIPT])
            .env("OMP_NUM_THREADS", request.threads.to_string())
            .env("OMP_PLACES", places.join(","))
            .env("OMP_PROC_BIND", "close")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        llamaperf_os::process::kill_child_with_parent(&mut command);
        let mut child = command.spawn().map_err(|source| TorchError::Spawn {
            python: python.to_path_buf(),
            source,
        })?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut worker = TorchWorker {
            child,
            stdin,
            stdout,
            ready: Ready::default(),
            failed_reset: None,
        };
        worker.send(request)?;
        match serde_json::from_str::<LoadReply>(&worker.receive()?) {
            Ok(LoadReply::Ready(ready)) => worker.ready = ready,
            Ok(LoadReply::Error(message)) => return Err(TorchError::Load(message)),
            Err(e) => return Err(TorchError::Protocol(format!("answered the load with {e}"))),
        }
        Ok(worker)
    }

    /// The process id of the Python worker.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the worker reported once loaded.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    fn send(&mut self, message: &impl serde::Serialize) -> Result<(), TorchError> {
        let mut line = serde_json::to_string(message).expect("requests serialize");
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| TorchError::Protocol(format!("{} ({e})", self.ended())))
    }

    fn receive(&mut self) -> Result<String, TorchError> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(TorchError::Protocol(self.ended())),
            Ok(_) => Ok(line),
            Err(e) => Err(TorchError::Protocol(format!(
                "sent an unreadable line: {e}"
            ))),
        }
    }

    /// How the process ended (waiting for it: its stdout closed), for an error message.
    fn ended(&mut self) -> String {
        match self.child.wait() {
            Ok(status) => format!("ended ({})", crate::child::describe_exit(status)),
            Err(e) => format!("cannot be waited for: {e}"),
        }
    }

    fn call(&mut self, request: &Request) -> Result<Reply, TorchError> {
        self.send(request)?;
        let line = self.receive()?;
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Error { error }) => Err(TorchError::Request(error)),
            Ok(reply) => Ok(reply),
            Err(e) => Err(TorchError::Protocol(format!(
                "sent {:?}: {e}",
                line.trim_end()
            ))),
        }
    }
}

impl Engine for TorchWorker {
    fn forward(&mut self, _: &Tensor, _: usize) -> Result<Tensor, EngineError> {
        Err(EngineError::Unsupported(
            "the torch worker answers greedy token ids, not logits".into(),
        ))
    }

    fn forward_greedy(&mut self, tokens: &Tensor, pos: usize) -> Result<Vec<u32>, EngineError> {
        if let Some(reason) = self.failed_reset.take() {
            return Err(TorchError::Request(reason).into());
        }
        let ids = tokens.to_vec2::<u32>()?;
        let batch = ids.len();
        match self.call(&Request::Forward { ids, pos })? {
            Reply::Next { next } if next.len() == batch => Ok(next),
            other => Err(TorchError::Protocol(format!(
                "answered a forward of {batch} sequences with {other:?}"
            ))
            .into()),
        }
    }

    fn reset(&mut self) {
        self.failed_reset = match self.call(&Request::Reset) {
            Ok(Reply::Ok { .. }) => None,
            Ok(other) => Some(format!("answered a reset with {other:?}")),
            Err(e) => Some(e.to_string()),
        };
    }
}

impl Drop for TorchWorker {
    /// Kills and reaps the worker: its run is over.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
