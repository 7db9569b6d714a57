//! llama.cpp initialised once per process: its log captured, the CPU variant chosen and
//! loaded, the backend started.

use crate::amx::{self, AmxSupport};
use crate::cpu_variant::{self, Candidate};
use crate::{log, LlamaCppError};
use llama_cpp_2::llama_backend::LlamaBackend;
use std::ffi::CStr;
use std::sync::OnceLock;

/// llama.cpp's backend with the CPU variant that runs it.
#[derive(Debug)]
pub struct Backend {
    /// The started backend.
    pub llama: LlamaBackend,
    /// The CPU variant loaded.
    pub variant: Candidate,
    /// What the AMX probe found.
    pub amx: AmxSupport,
}

static BACKEND: OnceLock<Result<Backend, String>> = OnceLock::new();

/// The process's backend, started on the first call (no NUMA initialisation: the worker's
/// own binding decides where threads run and memory lives); `amx_refused` keeps AMX variants
/// out without probing, for the reason given (the first call decides).
pub fn backend(amx_refused: Option<&str>) -> Result<&'static Backend, LlamaCppError> {
    BACKEND
        .get_or_init(|| start(amx_refused).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| LlamaCppError::Backend(e.clone()))
}

fn start(amx_refused: Option<&str>) -> Result<Backend, LlamaCppError> {
    log::capture();
    let amx = match amx_refused {
        Some(reason) => AmxSupport::Refused(reason.to_string()),
        None => amx::probe(),
    };
    let dir = cpu_variant::backends_dir()?;
    let candidates = cpu_variant::candidates(dir)?;
    let variant = match std::env::var(cpu_variant::VARIANT_ENV) {
        Ok(name) => cpu_variant::named(&candidates, &name)?,
        Err(_) => cpu_variant::choose(&candidates, &amx).ok_or_else(|| {
            LlamaCppError::Backend(format!(
                "none of llama.cpp's CPU variants in {} runs on this CPU",
                dir.display()
            ))
        })?,
    }
    .clone();
    cpu_variant::load(&variant)?;
    let llama = LlamaBackend::init().map_err(|e| LlamaCppError::Backend(e.to_string()))?;
    Ok(Backend {
        llama,
        variant,
        amx,
    })
}

/// The CPU features of the loaded variant, as llama.cpp's system info lists them
/// (`AVX2 = 1 | FMA = 1 | ...`, the features that are on).
pub fn features() -> String {
    // SAFETY: llama_print_system_info returns a NUL-terminated string it owns.
    let info = unsafe { CStr::from_ptr(llama_cpp_sys_2::llama_print_system_info()) };
    let info = info.to_string_lossy();
    info.split('|')
        .map(str::trim)
        .filter(|f| f.ends_with("= 1"))
        .map(|f| f.trim_end_matches("= 1").trim())
        .collect::<Vec<_>>()
        .join(" ")
}
