//! Build information recorded in every results folder: git commit, rustc and candle versions;
//! and an rpath so the binaries and tests find llama.cpp's shared libraries, which its build
//! puts beside them (`target/<profile>` and its `deps`).

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit =
        output("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    let candle = std::fs::read_to_string("Cargo.lock")
        .ok()
        .and_then(|lock| {
            let at = lock.find("name = \"candle-core\"")?;
            let rest = &lock[at..];
            let v = rest
                .lines()
                .nth(1)?
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            Some(v.to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "cargo:rustc-env=LLAMAPERF_GIT_COMMIT={commit}{}",
        if dirty { "-dirty" } else { "" }
    );
    println!("cargo:rustc-env=LLAMAPERF_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=LLAMAPERF_CANDLE_VERSION={candle}");
    // DT_RPATH, not RUNPATH: it also serves the libraries that libllama loads (libggml-base)
    println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags,-rpath,$ORIGIN");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
