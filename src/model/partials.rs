//! The partial files of syntheses in progress (`.synth-*.partial` in the cache's model
//! folder): each is locked by the process writing it for as long as it writes, so one that is
//! not locked was left by a synthesis that died (kill -9, a crash, a power cut) and is removed.

use super::ModelError;
use llamaperf_os::lock::FileLock;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of a partial file's name.
const PREFIX: &str = ".synth-";
/// Suffix of a partial file's name.
const SUFFIX: &str = ".partial";
/// Lock taken while a partial file is created or the stale ones are looked for, so that a
/// new file is locked before anyone can take it for stale.
const FOLDER_LOCK: &str = ".partials.lock";

/// Runs `f` holding the folder lock of `dir`, held only for a moment by anyone.
fn with_folder_lock<T>(
    dir: &Path,
    f: impl FnOnce() -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    let path = dir.join(FOLDER_LOCK);
    let _lock = FileLock::acquire_or_give_up(&path, Duration::from_millis(10), &mut |_| true)
        .map_err(|e| ModelError::io(&path, e))?;
    f()
}

/// A new partial file in `dir`, locked by this process until dropped (and removed then, unless
/// persisted).
pub fn create(dir: &Path) -> Result<tempfile::NamedTempFile, ModelError> {
    with_folder_lock(dir, || {
        let tmp = tempfile::Builder::new()
            .prefix(PREFIX)
            .suffix(SUFFIX)
            .tempfile_in(dir)
            .map_err(|e| ModelError::io(dir, e))?;
        tmp.as_file()
            .try_lock()
            .map_err(|e| ModelError::io(tmp.path(), e.into()))?;
        Ok(tmp)
    })
}

/// The partial files in `dir` (none when it does not exist).
fn partial_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))? {
        let path = entry.map_err(|e| ModelError::io(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(SUFFIX) {
            found.push(path);
        }
    }
    Ok(found)
}

/// Removes the partial files in `dir` that no process writes; returns how many and their
/// bytes. Writes nothing into a folder without partial files.
pub fn remove_stale(dir: &Path) -> Result<(usize, u64), ModelError> {
    if partial_files(dir)?.is_empty() {
        return Ok((0, 0));
    }
    with_folder_lock(dir, || {
        let mut removed = (0, 0);
        for path in partial_files(dir)? {
            if FileLock::is_held(&path) {
                continue;
            }
            let bytes = path.metadata().map_or(0, |m| m.len());
            std::fs::remove_file(&path).map_err(|e| ModelError::io(&path, e))?;
            removed = (removed.0 + 1, removed.1 + bytes);
        }
        Ok(removed)
    })
}
