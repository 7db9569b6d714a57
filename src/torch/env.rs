//! Where each backend's Python environment lives (made by `scripts/setup-torch.sh`), and the
//! refusal a run gets when it is missing.

use super::settings::TorchBackend;
use crate::model::cache::ModelCache;
use std::path::{Path, PathBuf};

/// The script that installs the environments, relative to the repository.
pub const SETUP_SCRIPT: &str = "scripts/setup-torch.sh";

/// Why a torch run cannot start here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TorchUnavailable {
    /// The backend's environment is not installed.
    #[error("torch_backend = \"{backend}\" needs the Python environment {}, which is not installed; install it with `bash {SETUP_SCRIPT} {family}`",
        .python.display(), family = .backend.family())]
    NotInstalled {
        /// The backend asked for.
        backend: TorchBackend,
        /// The interpreter looked for.
        python: PathBuf,
    },
    /// No folder to look in.
    #[error("no folder to find the torch environments in (set LLAMAPERF_TORCH_ENVS): {0}")]
    NoCache(String),
}

/// Environment variable naming the folder of the environments (default: `torch/` in the
/// cache folder, `$LLAMAPERF_CACHE` or `~/.cache/llamaperf`).
pub const ENVS_ENV: &str = "LLAMAPERF_TORCH_ENVS";

/// The folder holding one environment per family: `$LLAMAPERF_TORCH_ENVS`, else `torch/` in
/// the cache folder.
pub fn envs_root() -> Result<PathBuf, TorchUnavailable> {
    if let Some(dir) = std::env::var_os(ENVS_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let cache = ModelCache::from_env().map_err(|e| TorchUnavailable::NoCache(e.to_string()))?;
    Ok(cache.root().join("torch"))
}

/// The Python interpreter of `backend`'s environment, when it is installed.
pub fn python_for(backend: TorchBackend) -> Result<PathBuf, TorchUnavailable> {
    python_in(&envs_root()?, backend)
}

/// The file `scripts/setup-torch.sh` writes in an environment once everything is installed (its
/// package list): an environment without it is half made.
pub const READY_MARKER: &str = "llamaperf-packages.txt";

/// The Python interpreter of `backend`'s environment under `envs`, when it is installed.
pub fn python_in(envs: &Path, backend: TorchBackend) -> Result<PathBuf, TorchUnavailable> {
    let env = envs.join(backend.family());
    let python = env.join("bin").join("python");
    if python.is_file() && env.join(READY_MARKER).is_file() {
        Ok(python)
    } else {
        Err(TorchUnavailable::NotInstalled { backend, python })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_environment_names_the_install_command() {
        let cache = tempfile::tempdir().unwrap();
        let e = python_in(cache.path(), TorchBackend::Zentorch).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("bash scripts/setup-torch.sh zentorch"),
            "{text}"
        );
        assert!(text.contains("zentorch/bin/python"), "{text}");
    }

    #[test]
    fn an_installed_environment_is_found_by_family() {
        let cache = tempfile::tempdir().unwrap();
        let bin = cache.path().join("ipex").join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python"), "").unwrap();
        assert!(
            python_in(cache.path(), TorchBackend::Eager).is_err(),
            "half made"
        );
        std::fs::write(cache.path().join("ipex").join(READY_MARKER), "").unwrap();
        for backend in [
            TorchBackend::Eager,
            TorchBackend::Compile,
            TorchBackend::Ipex,
        ] {
            assert_eq!(
                python_in(cache.path(), backend).unwrap(),
                bin.join("python")
            );
        }
        assert!(python_in(cache.path(), TorchBackend::Zentorch).is_err());
    }
}
