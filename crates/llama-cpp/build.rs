//! Puts llama.cpp's shared libraries, by the names the binaries load (`libllama.so.0`, ...),
//! beside the binaries in `target/<profile>/` (and its `deps/` and `examples/`), where their
//! `$ORIGIN` rpath finds them outside cargo.
//!
//! `llama-cpp-sys-2` links only the unversioned `lib*.so` names there, which are relative
//! symlinks to the versioned files it leaves in its own build folder: they dangle, and a second
//! run of its build script fails on them (`File exists`). With the versioned files beside them
//! they resolve, and that second run leaves them alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    let Ok(backends) = std::env::var("DEP_LLAMA_BACKENDS_DIR") else {
        return;
    };
    let libs = Path::new(&backends).with_file_name("lib");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is target/<profile>/build/<package>-<hash>/out
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    let targets = [
        profile_dir.to_path_buf(),
        profile_dir.join("deps"),
        profile_dir.join("examples"),
    ];
    for lib in versioned_libraries(&libs).unwrap_or_else(|e| panic!("{}: {e}", libs.display())) {
        let name = lib.file_name().expect("a file in a folder");
        for dir in targets.iter().filter(|d| d.is_dir()) {
            let dst = dir.join(name);
            place(&lib, &dst).unwrap_or_else(|e| panic!("{}: {e}", dst.display()));
        }
    }
}

/// The files whose names end in a version after `.so` (`libllama.so.0`), as the dynamic
/// loader asks for them.
fn versioned_libraries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some((_, version)) = name.split_once(".so.") {
            if !version.contains('.') {
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// Makes `dst` the file `src` resolves to: a hard link where the file system allows, else a copy.
fn place(src: &Path, dst: &Path) -> io::Result<()> {
    let real = fs::canonicalize(src)?;
    match fs::remove_file(dst) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::hard_link(&real, dst).or_else(|_| fs::copy(&real, dst).map(|_| ()))
}
