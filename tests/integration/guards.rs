//! Guards before work starts: memory against what the machine can give now, the size of a
//! scenario's matrix, SIGTERM while planning, and broken GGUF files refused in the parent.

use crate::util::{llamaperf, scenario, skipped, smollm2, stderr_of};
use llamaperf::planning::plan::{Plan, PlanStatus};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The skip reason of the only run of a `sweep --dry-run --json` of `body`, run by `cmd`.
fn only_skip_reason(mut cmd: Command, dir: &Path, body: &str) -> String {
    let file = scenario(dir, body);
    let out = cmd
        .arg("sweep")
        .arg(&file)
        .args(["--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let plan: Plan = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan.runs.len(), 1);
    match &plan.runs[0].status {
        PlanStatus::Skipped { reason } => reason.clone(),
        PlanStatus::Planned { memory, .. } => format!("planned, {} bytes", memory.total_bytes()),
    }
}

fn std_llamaperf() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("llamaperf"));
    cmd.env("LLAMAPERF_CACHE", crate::util::cache_dir());
    cmd
}

#[test]
fn a_run_above_the_available_memory_is_skipped_with_the_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    // tiny at batch 2000 with a 2000-token prompt: about 2.6 TB of activations
    let reason = only_skip_reason(
        std_llamaperf(),
        tmp.path(),
        "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 2000\n[matrix]\nbatch = [2000]\n",
    );
    assert!(reason.starts_with("needs "), "{reason}");
    assert!(
        reason.contains("usable: MemAvailable ") || reason.contains("usable: cgroup "),
        "{reason}"
    );
    assert!(reason.contains("less a margin of "), "{reason}");
    assert!(reason.contains("(10%, at least 0.3 GB)"), "{reason}");
}

/// A cgroup v1 memory folder or cgroup v2 folder with the memory controller this test may
/// create, and the names of its limit file.
fn writable_memory_cgroup() -> Result<(std::path::PathBuf, &'static str), String> {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let v2 = Path::new("/sys/fs/cgroup");
    let (root, limit) = if v1.join("memory.limit_in_bytes").is_file() {
        (v1, "memory.limit_in_bytes")
    } else if std::fs::read_to_string(v2.join("cgroup.subtree_control"))
        .is_ok_and(|c| c.split_whitespace().any(|w| w == "memory"))
    {
        (v2, "memory.max")
    } else {
        return Err(
            "no cgroup v1 memory controller, no cgroup v2 root with memory delegated".into(),
        );
    };
    let dir = root.join(format!("llamaperf-test-{}", std::process::id()));
    std::fs::create_dir(&dir)
        .map_err(|e| format!("cannot create a cgroup in {}: {e}", root.display()))?;
    Ok((dir, limit))
}

#[test]
fn a_run_above_its_memory_cgroup_limit_is_skipped() {
    let test = "a_run_above_its_memory_cgroup_limit_is_skipped";
    let (dir, limit_file) = match writable_memory_cgroup() {
        Ok(found) => found,
        Err(reason) => return skipped(test, &reason),
    };
    let limit: u64 = 1_500_000_000;
    std::fs::write(dir.join(limit_file), limit.to_string()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // tiny at batch 84 with a 2000-token prompt: about 2.6 GB (the tuned engine holds no
    // layer-wide attention scores, so it is the residual stream, FFN and KV cache)
    let body = "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 2000\n[matrix]\nbatch = [84]\n";
    let outside = only_skip_reason(std_llamaperf(), tmp.path(), body);
    let mut inside = Command::new("sh");
    inside
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
            dir.display()
        ))
        .arg(assert_cmd::cargo::cargo_bin("llamaperf"))
        .env("LLAMAPERF_CACHE", crate::util::cache_dir());
    let reason = only_skip_reason(inside, tmp.path(), body);
    let _ = std::fs::remove_dir(&dir);
    if !outside.starts_with("planned") {
        return skipped(
            test,
            &format!("not planned even outside the cgroup: {outside}"),
        );
    }
    assert!(reason.starts_with("needs 2.6 GB"), "{reason}");
    assert!(
        reason.contains("usable: cgroup ")
            && (reason.contains("limit_in_bytes 1.5 GB") || reason.contains("memory.max 1.5 GB")),
        "{reason}"
    );
}

/// A scenario of `batch` × `prompt_tokens` lists of `n` values each.
fn square_matrix(dir: &Path, n: usize) -> std::path::PathBuf {
    let list = |from: usize| {
        (from..from + n)
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    scenario(
        dir,
        &format!(
            "[defaults]\nmodel = \"tiny\"\n[matrix]\nbatch = [{}]\nprompt_tokens = [{}]\n",
            list(1),
            list(1)
        ),
    )
}

#[test]
fn a_matrix_of_a_million_runs_is_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let file = square_matrix(tmp.path(), 1000);
    let out = llamaperf()
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}: the matrix and includes make 1000000 runs (before excludes), more than the limit of 100000",
            file.display()
        )) && err.contains("--max-runs 1000000"),
        "{err}"
    );
}

#[test]
fn a_long_list_is_refused_by_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let values: Vec<String> = (1..=200_000).map(|v| v.to_string()).collect();
    let file = scenario(
        tmp.path(),
        &format!(
            "[defaults]\nmodel = \"tiny\"\n[matrix]\nbatch = [{}]\n",
            values.join(", ")
        ),
    );
    let out = llamaperf()
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("make 200000 runs"), "{err}");
}

/// Output of `cmd` sent SIGTERM `after` its start; it must end within 2 minutes of it.
fn stopped_by_sigterm(mut cmd: Command, after: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "still running 2 minutes after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_while_planning_a_million_runs_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let file = square_matrix(tmp.path(), 1000);
    let mut cmd = std_llamaperf();
    cmd.arg("sweep")
        .arg(&file)
        .args(["--dry-run", "--max-runs", "1000000"]);
    let out = stopped_by_sigterm(cmd, Duration::from_secs(1));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT or SIGTERM"), "{err}");
}

#[test]
fn sigterm_while_calibrating_exits_130_and_saves_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = std_llamaperf();
    cmd.env("LLAMAPERF_CACHE", cache.path()).arg("calibrate");
    let out = stopped_by_sigterm(cmd, Duration::from_secs(2));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("calibrating: "), "it had started: {err}");
    // the lock file of the calibration that was stopped may stay; no calibration does
    let saved: Vec<_> = walk(cache.path())
        .into_iter()
        .filter(|p| p.extension() != Some("lock".as_ref()))
        .collect();
    assert!(saved.is_empty(), "nothing saved, found {saved:?}");
}

/// The offset in `bytes` of the directory entry of tensor `name` just after its name: its
/// dimension count (u32), dimensions (u64 each), type (u32) and data offset (u64) follow.
fn entry_after_name(bytes: &[u8], name: &str) -> usize {
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    bytes
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .expect("the tensor is in the directory")
        + key.len()
}

/// `llamaperf run` on a copy of SmolLM2 changed by `damage`: its exit code and stderr.
fn run_damaged(damage: impl FnOnce(&mut Vec<u8>)) -> (Option<i32>, String, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("damaged.gguf");
    let mut bytes = std::fs::read(smollm2()).unwrap();
    damage(&mut bytes);
    std::fs::write(&path, &bytes).unwrap();
    let out = llamaperf()
        .args([
            "run",
            "--gen-tokens",
            "2",
            "--prompt-tokens",
            "2",
            "--model",
        ])
        .arg(&path)
        .output()
        .unwrap();
    (out.status.code(), stderr_of(&out), path)
}

#[test]
fn a_gguf_cut_to_90_percent_is_refused_before_a_worker() {
    let (code, err, path) = run_damaged(|b| b.truncate(b.len() * 9 / 10));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{} is not a usable GGUF model file: tensor '",
            path.display()
        )) && err.contains("past the end of the file")
            && err.contains("cut short"),
        "{err}"
    );
    assert!(!err.contains("worker"), "{err}");
}

#[test]
fn a_gguf_dimension_of_2_to_the_40_is_refused_before_a_worker() {
    let (code, err, _) = run_damaged(|b| {
        let at = entry_after_name(b, "blk.0.attn_q.weight") + 4;
        b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    });
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("tensor 'blk.0.attn_q.weight' has ") && err.contains("1099511627776"),
        "{err}"
    );
}

#[test]
fn a_gguf_tensor_of_an_unknown_type_is_refused_before_a_worker() {
    let (code, err, path) = run_damaged(|b| {
        let at = entry_after_name(b, "blk.0.attn_q.weight");
        let dims = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let ty = at + 4 + 8 * dims;
        b[ty..ty + 4].copy_from_slice(&99u32.to_le_bytes());
    });
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{} is not a GGUF model file", path.display())) && err.contains("99"),
        "{err}"
    );
}

#[test]
fn a_binary_scenario_is_reported_where_its_text_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, b"name = \"s\"\n\xff\xfe\x00\x01").unwrap();
    let out = llamaperf()
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:2:1: not UTF-8 text", file.display())),
        "{err}"
    );
    assert!(!err.contains(":0:0"), "{err}");
}

#[test]
fn bad_cores_say_what_is_allowed_in_one_readable_sentence() {
    for (value, part) in [("x", None), ("0", None), ("3-1", Some("'3-1' is not"))] {
        let out = llamaperf()
            .args(["run", "--model", "tiny", "--cores", value])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!(
                "cores = '{value}' is not allowed; allowed: a count of at least 1 like 8, 'all', or a cpu list like 0-7,16-23"
            )),
            "{err}"
        );
        assert!(part.is_none_or(|p| err.contains(p)), "{err}");
        assert!(
            !err.contains("allowed: not a number") && !err.contains("allowed: '"),
            "{err}"
        );
    }
}

#[test]
fn a_synthetic_topology_without_memory_warns_and_shows_the_form() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/numa-nps.toml");
    let plan = |topology: &str| {
        llamaperf()
            .arg("sweep")
            .arg(&scenario)
            .args(["--dry-run", "--topology", topology])
            .output()
            .unwrap()
    };
    let out = plan("synthetic:\"pack:2 numa:4 l3:3 core:8 pu:2\"");
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: synthetic:\"pack:2 numa:4 l3:3 core:8 pu:2\" gives no memory size")
            && err.contains("numa:4(memory=96GB)"),
        "{err}"
    );
    let sized = plan("synthetic:\"pack:2 numa:4(memory=64GB) l3:3 core:8 pu:2\"");
    let err = stderr_of(&sized);
    assert!(sized.status.success(), "{err}");
    assert!(!err.contains("warning: synthetic"), "{err}");
    assert!(
        String::from_utf8_lossy(&sized.stdout).contains("(6 planned, 0 skipped)"),
        "{}",
        String::from_utf8_lossy(&sized.stdout)
    );
}

#[test]
fn run_with_a_text_prompt_checks_memory_before_synthesizing() {
    let test = "run_with_a_text_prompt_checks_memory_before_synthesizing";
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let available = llamaperf::machine::memory::meminfo_bytes(&meminfo, "MemAvailable:").unwrap();
    if available > 150_000_000_000 {
        return skipped(test, "more than 150 GB available: llama-3.1-405b might fit");
    }
    let cache = tempfile::tempdir().unwrap();
    let out = llamaperf()
        .env("LLAMAPERF_CACHE", cache.path())
        .args(["run", "--model", "llama-3.1-405b", "--prompt", "Hello"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs ") && err.contains(" usable: "), "{err}");
    assert!(!err.contains("synthesiz"), "{err}");
    let files = walk(cache.path());
    assert!(files.is_empty(), "nothing synthesized, found {files:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn an_os_error_is_printed_once_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = llamaperf()
        .env("LLAMAPERF_CACHE", file.join("cache"))
        .args(["model", "synth", "tiny", "--dtype", "q4_k"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
}
