//! llama.cpp's log, kept instead of printed: its warnings and errors explain the failures its
//! API reports only as a null pointer, so they go into the error message.

use std::ffi::{c_char, c_void, CStr};
use std::sync::Mutex;

/// The latest warning and error lines, oldest first.
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Most lines kept.
const KEEP: usize = 8;

/// Routes llama.cpp's and ggml's log here; call before anything else of llama.cpp.
pub fn capture() {
    // SAFETY: `keep` matches ggml_log_callback and lives for the whole program.
    unsafe { llama_cpp_sys_2::llama_log_set(Some(keep), std::ptr::null_mut()) }
}

/// The warnings and errors logged since the last call, one per line; empty if none.
pub fn take() -> String {
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *lines).join("; ")
}

unsafe extern "C" fn keep(
    level: llama_cpp_sys_2::ggml_log_level,
    text: *const c_char,
    _: *mut c_void,
) {
    if text.is_null()
        || (level != llama_cpp_sys_2::GGML_LOG_LEVEL_WARN
            && level != llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR)
    {
        return;
    }
    // SAFETY: ggml passes a NUL-terminated message valid for the call.
    let line = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let line = line.trim();
    if line.is_empty() {
        return;
    }
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    if lines.len() == KEEP {
        lines.remove(0);
    }
    lines.push(line.to_string());
}
