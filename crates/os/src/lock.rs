//! Exclusive advisory locks on lock files (`flock`), held by an open file: the kernel drops the
//! lock when its holder exits in any way, kill -9 included, so a lock never outlives its
//! process and a lock file left behind blocks nobody.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// An exclusive lock on a lock file, held until dropped. The file names its holder
/// (`pid 123 on host h`) for whoever is refused it.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Who holds a lock: the holder line of its lock file (`pid 123 on host h`), or `another
/// process` while the holder has not written it yet.
pub fn holder(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "another process".into())
}

/// This process as a lock file names it: `pid 123 on host h`.
fn this_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("pid {} on host {host}", std::process::id())
}

impl FileLock {
    /// Takes the lock of `path` (created when missing) if no one holds it; `Ok(Err(holder))`
    /// names the process that does.
    pub fn try_acquire(path: &Path) -> io::Result<Result<FileLock, String>> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Ok(Self::held(file)?)),
            Err(TryLockError::WouldBlock) => Ok(Err(holder(path))),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Takes the lock of `path`, waiting for its holder; `keep_waiting` is asked every
    /// `poll` with the holder's name and gives up the wait (`Ok(None)`) by returning false.
    pub fn acquire_or_give_up(
        path: &Path,
        poll: Duration,
        keep_waiting: &mut dyn FnMut(&str) -> bool,
    ) -> io::Result<Option<FileLock>> {
        loop {
            match Self::try_acquire(path)? {
                Ok(lock) => return Ok(Some(lock)),
                Err(holder) if keep_waiting(&holder) => std::thread::sleep(poll),
                Err(_) => return Ok(None),
            }
        }
    }

    /// Whether some process holds the lock of the existing file `path` (a file that cannot be
    /// opened is not held).
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        matches!(file.try_lock(), Err(TryLockError::WouldBlock))
    }

    fn held(file: File) -> io::Result<FileLock> {
        file.set_len(0)?;
        (&file).write_all(format!("{}\n", this_holder()).as_bytes())?;
        Ok(FileLock { _file: file })
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_and_granted_after_release() {
        let dir = std::env::temp_dir().join(format!("llamaperf-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.lock");
        let first = FileLock::try_acquire(&path).unwrap().unwrap();
        assert!(FileLock::is_held(&path));
        let refused = FileLock::try_acquire(&path).unwrap().unwrap_err();
        assert!(
            refused.starts_with(&format!("pid {} on host ", std::process::id())),
            "{refused}"
        );
        drop(first);
        assert!(!FileLock::is_held(&path));
        assert!(FileLock::try_acquire(&path).unwrap().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
