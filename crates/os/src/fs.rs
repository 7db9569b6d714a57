//! File system calls the standard library does not offer.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes an unprivileged process may still write on the file system that holds `path`
/// (statvfs: available blocks times the fragment size).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a NUL-terminated string that outlives the call, and stat points to
    // writable memory of a statvfs, which the call fills when it returns 0.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialized the whole struct.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_bytes_of_a_folder_and_of_a_missing_path() {
        assert!(free_bytes(Path::new("/")).unwrap() > 0);
        let err = free_bytes(Path::new("/no/such/folder")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
