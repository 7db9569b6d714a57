//! The folder where synthetic models are kept between runs.

use super::dtype::WeightDtype;
use super::preset::Preset;
use super::source::{dtype_label, ResolvedModel};
use super::synth::{check_free_space, synthesize_to, SYNTH_VERSION};
use super::{find_preset, ModelError, ModelFileError};
use llamaperf_os::lock::FileLock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Environment variable that overrides the cache folder.
pub const CACHE_ENV: &str = "LLAMAPERF_CACHE";
/// Seed of every cached synthetic model, so that all tools measure identical weights.
pub const SYNTH_SEED: u64 = 0x11a_3a9e;

/// The model cache: `$LLAMAPERF_CACHE`, or the XDG cache folder (`~/.cache/llamaperf`).
#[derive(Debug, Clone)]
pub struct ModelCache {
    root: PathBuf,
}

impl ModelCache {
    /// A cache at an explicit folder.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        ModelCache { root: root.into() }
    }

    /// The cache named by the environment, or the platform's cache folder.
    pub fn from_env() -> Result<Self, ModelError> {
        if let Some(dir) = std::env::var_os(CACHE_ENV).filter(|d| !d.is_empty()) {
            return Ok(Self::at(dir));
        }
        directories::ProjectDirs::from("", "", "llamaperf")
            .map(|d| Self::at(d.cache_dir()))
            .ok_or(ModelError::NoCacheDir)
    }

    /// The cache's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the synthetic `preset` in `dtype` lives (whether or not it exists yet).
    pub fn synthetic_path(&self, preset: &Preset, dtype: WeightDtype) -> PathBuf {
        self.root
            .join("models")
            .join(format!("{}-{}-v{SYNTH_VERSION}.gguf", preset.name, dtype))
    }

    /// Makes sure `model`'s file (or folder) exists: a synthetic model missing from the cache
    /// is written now (stopped by `interrupted`); a missing file of the user's is an error.
    /// Returns whether a model was synthesized.
    pub fn materialize(
        &self,
        model: &ResolvedModel,
        interrupted: &AtomicBool,
    ) -> Result<bool, ModelError> {
        if model.path.is_file() || (!model.synthetic && model.path.is_dir()) {
            return Ok(false);
        }
        let preset = find_preset(&model.name).filter(|_| model.synthetic);
        match (preset, model.dtype) {
            (Some(preset), Some(dtype)) => self
                .get_or_synthesize(&preset, dtype, interrupted)
                .map(|(_, fresh)| fresh),
            _ if model.path.exists() => {
                Err(ModelFileError::NotRegularFile(model.path.clone()).into())
            }
            _ => Err(ModelFileError::NotFound(model.path.clone()).into()),
        }
    }

    /// Refuses, before anything is written, when the synthetic models among `models` that
    /// are not cached yet need more space together than the cache's file system has free
    /// (after removing the partial files that interrupted syntheses left).
    pub fn check_space<'a>(
        &self,
        models: impl IntoIterator<Item = &'a ResolvedModel>,
    ) -> Result<(), ModelError> {
        let mut missing: Vec<&ResolvedModel> = models
            .into_iter()
            .filter(|m| m.synthetic && !m.path.is_file())
            .collect();
        missing.sort_by(|a, b| a.path.cmp(&b.path));
        missing.dedup_by(|a, b| a.path == b.path);
        let sized: Vec<(String, u64)> = missing
            .iter()
            .filter_map(|m| {
                let bytes = find_preset(&m.name)?.weight_bytes(m.dtype?);
                Some((format!("{} {}", m.name, dtype_label(m.dtype)), bytes))
            })
            .collect();
        if sized.is_empty() {
            return Ok(());
        }
        let dir = self.root.join("models");
        std::fs::create_dir_all(&dir).map_err(|e| ModelError::io(&dir, e))?;
        remove_stale_partials(&dir)?;
        let names: Vec<&str> = sized.iter().map(|(name, _)| name.as_str()).collect();
        check_free_space(names.join(", "), sized.iter().map(|(_, b)| b).sum(), &dir)
    }

    /// The synthetic model's path, writing it first when it is not cached yet: under the
    /// entry's lock (`<file>.lock`; waiting while another process synthesizes it), after
    /// removing the partial files that interrupted syntheses left. Stops, removing its partial
    /// file, once `interrupted` is set. Returns the path and whether it was synthesized now.
    pub fn get_or_synthesize(
        &self,
        preset: &Preset,
        dtype: WeightDtype,
        interrupted: &AtomicBool,
    ) -> Result<(PathBuf, bool), ModelError> {
        let path = self.synthetic_path(preset, dtype);
        if path.is_file() {
            return Ok((path, false));
        }
        let dir = path.parent().expect("a model file has a folder");
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let lock_path = path.with_extension("gguf.lock");
        let mut told = false;
        let _entry =
            FileLock::acquire_or_give_up(&lock_path, Duration::from_millis(100), &mut |holder| {
                if !told {
                    eprintln!("waiting for {holder}, which synthesizes {}", path.display());
                    told = true;
                }
                !interrupted.load(Ordering::SeqCst)
            })
            .map_err(|e| ModelError::io(&lock_path, e))?
            .ok_or(ModelError::Interrupted)?;
        if path.is_file() {
            return Ok((path, false));
        }
        remove_stale_partials(dir)?;
        synthesize_to(preset, dtype, SYNTH_SEED, &path, interrupted)?;
        Ok((path, true))
    }
}

/// Removes the partial files of syntheses that died in `dir`, saying so on stderr.
fn remove_stale_partials(dir: &Path) -> Result<(), ModelError> {
    let (files, bytes) = super::partials::remove_stale(dir)?;
    if files > 0 {
        eprintln!(
            "removed {files} partial file{} ({:.2} GB) of interrupted syntheses from {}",
            if files == 1 { "" } else { "s" },
            bytes as f64 / 1e9,
            dir.display()
        );
    }
    Ok(())
}
