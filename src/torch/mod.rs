//! Engine `torch`: a Hugging Face model on PyTorch (eager, `torch.compile`, IPEX or zentorch)
//! in a Python process the worker starts inside the run's placement.
//!
//! The Python side (`python/torch_worker.py`) only loads the model and answers forward passes
//! with greedy token ids ([`protocol`]); the Rust worker drives it as any other engine
//! ([`worker::TorchWorker`]), so timers, phases, counters, the read probe and the record are
//! the same code for every engine. The process inherits the worker's CPUs and memory policy
//! before torch creates a thread; once warm, its threads are pinned one per PU and read back.

pub mod env;
pub mod protocol;
pub mod record;
pub mod settings;
pub mod worker;

pub use record::TorchRecord;
pub use settings::{TorchBackend, TorchDtype, TorchSettings};
