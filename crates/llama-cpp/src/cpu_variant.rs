//! Which build of ggml's CPU backend runs: llama.cpp is built with every x86 variant
//! (`GGML_CPU_ALL_VARIANTS`, as its own packages are) and one is chosen at run time, as
//! `ggml_backend_load_best` chooses, by the score each variant gives this CPU; except that the
//! AMX variants are left out where [`crate::amx`] finds AMX unusable.

use crate::amx::AmxSupport;
use crate::LlamaCppError;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// Variants whose kernels use AMX tile instructions.
const AMX_VARIANTS: [&str; 1] = ["sapphirerapids"];

/// File name prefix of the CPU variants in the backends folder.
const PREFIX: &str = "libggml-cpu-";

/// One build of the CPU backend found in the backends folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Variant name (`haswell`, `zen4`, `sapphirerapids`, ...).
    pub name: String,
    /// Its shared library.
    pub path: PathBuf,
    /// How well it fits this CPU (0: it cannot run here; higher is better).
    pub score: i32,
}

/// The variant to load: the best-scoring one that runs here, AMX variants excluded unless
/// `amx` is usable; `None` when none can run.
pub fn choose<'a>(candidates: &'a [Candidate], amx: &AmxSupport) -> Option<&'a Candidate> {
    candidates
        .iter()
        .filter(|c| c.score > 0)
        .filter(|c| amx.usable() || !AMX_VARIANTS.contains(&c.name.as_str()))
        .max_by_key(|c| c.score)
}

/// Environment variable that names the variant to load instead of the best-scoring one
/// (e.g. `icelake` where the AMX variant is chosen but dies).
pub const VARIANT_ENV: &str = "LLAMAPERF_LLAMA_CPP_VARIANT";

/// The variant named `name`, which must run here; the error lists those that do.
pub fn named<'a>(candidates: &'a [Candidate], name: &str) -> Result<&'a Candidate, LlamaCppError> {
    candidates
        .iter()
        .find(|c| c.name == name && c.score > 0)
        .ok_or_else(|| {
            let runnable: Vec<&str> = candidates
                .iter()
                .filter(|c| c.score > 0)
                .map(|c| c.name.as_str())
                .collect();
            LlamaCppError::Backend(format!(
                "{VARIANT_ENV}={name}: no such CPU variant runs here; valid: {}",
                runnable.join(", ")
            ))
        })
}

/// Folder of the CPU variants built with this program.
pub fn backends_dir() -> Result<&'static Path, LlamaCppError> {
    llama_cpp_sys_2::BACKENDS_DIR
        .map(Path::new)
        .ok_or_else(|| LlamaCppError::Backend("built without llama.cpp's backend folder".into()))
}

/// Every CPU variant in `dir`, each scored by its own `ggml_backend_score`.
pub fn candidates(dir: &Path) -> Result<Vec<Candidate>, LlamaCppError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LlamaCppError::Backend(format!("{}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(".so"))
        else {
            continue;
        };
        out.push(Candidate {
            name: name.to_string(),
            score: score(&path)?,
            path,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The variant's own judgement of this CPU.
fn score(path: &Path) -> Result<i32, LlamaCppError> {
    let fail = |e: libloading::Error| LlamaCppError::Backend(format!("{}: {e}", path.display()));
    // SAFETY: a ggml CPU variant's initializers only register nothing and read CPUID;
    // ggml_backend_load_best opens each variant the same way.
    let library = unsafe { libloading::Library::new(path) }.map_err(fail)?;
    // SAFETY: every ggml backend variant exports `int ggml_backend_score(void)`.
    let score = unsafe {
        let f: libloading::Symbol<unsafe extern "C" fn() -> std::ffi::c_int> =
            library.get(b"ggml_backend_score").map_err(fail)?;
        f()
    };
    Ok(score)
}

/// Registers `variant` as ggml's CPU backend.
pub fn load(variant: &Candidate) -> Result<(), LlamaCppError> {
    let path = CString::new(variant.path.to_string_lossy().as_bytes())
        .map_err(|e| LlamaCppError::Backend(e.to_string()))?;
    // SAFETY: `path` is a valid C string naming a ggml backend library.
    let registered = unsafe { llama_cpp_sys_2::ggml_backend_load(path.as_ptr()) };
    if registered.is_null() {
        return Err(LlamaCppError::Backend(format!(
            "ggml could not load {}",
            variant.path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str, score: i32) -> Candidate {
        Candidate {
            name: name.into(),
            path: PathBuf::from(format!("{PREFIX}{name}.so")),
            score,
        }
    }

    #[test]
    fn the_best_scoring_variant_wins_unless_it_needs_unusable_amx() {
        let all = [
            candidate("haswell", 10),
            candidate("sapphirerapids", 40),
            candidate("icelake", 30),
            candidate("zen4", 0),
        ];
        assert_eq!(
            choose(&all, &AmxSupport::Usable).unwrap().name,
            "sapphirerapids"
        );
        let refused = AmxSupport::Refused("SIGILL".into());
        assert_eq!(choose(&all, &refused).unwrap().name, "icelake");
        assert_eq!(
            choose(&all, &AmxSupport::NotListed).unwrap().name,
            "icelake"
        );
        assert_eq!(choose(&[candidate("zen4", 0)], &AmxSupport::Usable), None);
        assert_eq!(named(&all, "haswell").unwrap().name, "haswell");
        let err = named(&all, "zen4").unwrap_err().to_string();
        assert!(
            err.contains("valid: haswell, sapphirerapids, icelake"),
            "{err}"
        );
    }
}
