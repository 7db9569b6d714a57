//! Nothing lost, nothing doubled: one writer per results folder, whole lines only, readers of
//! interrupted and doubled folders, a full disk, and syntheses stopped or killed midway.

use crate::util::{cache_dir, llamaperf, records, scenario, skipped, stderr_of, sweep_ok, Tmpfs};
use llamaperf::results::ResultsDir;
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SMALL: &str =
    "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 16\ngen_tokens = 6\nrepetitions = 2\n[matrix]\nbatch = [1, 2]\n";
/// Six runs of a few seconds each: long enough to act on a sweep while it runs.
const SLOW: &str = "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 32\ngen_tokens = 100\nrepetitions = 6\n[matrix]\nbatch = [1, 2, 3, 4, 5, 6]\n";

/// `llamaperf ARGS` with the cache `cache`, in the background, stderr captured.
fn spawn(cache: &Path, args: &[&std::ffi::OsStr]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_llamaperf"))
        .env("LLAMAPERF_CACHE", cache)
        .env_remove(llamaperf::measure::worker::FAULT_ENV)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `ready` holds, failing the test after `limit` with `what`.
fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `llamaperf ARGS` with the test cache, run to its end.
fn run(args: &[&std::ffi::OsStr]) -> Output {
    llamaperf().args(args).output().unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// Checks that `dir` holds every run of its plan exactly once.
fn every_run_once(dir: &Path, runs: usize) {
    let recs = records(dir);
    let ids: HashSet<String> = recs.iter().map(|r| r.run_id()).collect();
    assert_eq!(
        (recs.len(), ids.len()),
        (runs, runs),
        "every planned run once"
    );
}

/// Ends an interrupted sweep `sweep` and checks that a resume completes `dir`.
fn interrupt_and_resume(sweep: Child, dir: &Path, runs: usize) {
    let _ = llamaperf_os::process::send_signal(sweep.id(), libc::SIGINT);
    let out = sweep.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr_of(&out));
    let resumed = run(&[os("sweep"), os("--resume"), dir.as_os_str()]);
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    every_run_once(dir, runs);
}

#[test]
fn a_second_writer_of_a_folder_is_refused_with_the_holders_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), SLOW);
    let dir = tmp.path().join("out");
    let sweep = spawn(
        &cache_dir(),
        &[os("sweep"), file.as_os_str(), os("--out"), dir.as_os_str()],
    );
    wait_for(Duration::from_secs(120), "the sweep made no folder", || {
        dir.join("plan.json").is_file()
    });
    let second = run(&[os("sweep"), os("--resume"), dir.as_os_str()]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr_of(&second));
    assert!(
        stderr_of(&second).contains(&format!("is being written by pid {} on host", sweep.id())),
        "{}",
        stderr_of(&second)
    );
    let again = run(&[os("sweep"), file.as_os_str(), os("--out"), dir.as_os_str()]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr_of(&again));
    interrupt_and_resume(sweep, &dir, 6);
}

/// `runs.jsonl` and `tokens.csv` of `dir` with every line written twice, as two writers left
/// them before folders were locked.
fn double_the_logs(dir: &Path) {
    let runs = dir.join("runs.jsonl");
    let text = std::fs::read_to_string(&runs).unwrap();
    std::fs::write(&runs, text.repeat(2)).unwrap();
    let tokens = dir.join("tokens.csv");
    let text = std::fs::read_to_string(&tokens).unwrap();
    let rows = &text[text.find('\n').unwrap() + 1..];
    std::fs::write(&tokens, format!("{text}{rows}")).unwrap();
}

#[test]
fn readers_warn_of_a_run_recorded_twice_and_resume_keeps_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_ok(tmp.path(), SMALL);
    let tokens_before = std::fs::read_to_string(dir.join("tokens.csv")).unwrap();
    double_the_logs(&dir);
    let warned = |out: &Output| {
        assert!(out.status.success(), "{}", stderr_of(out));
        assert!(
            stderr_of(out).contains("is recorded 2 times (again on line"),
            "{}",
            stderr_of(out)
        );
    };
    warned(&run(&[os("report"), dir.as_os_str()]));
    warned(&run(&[os("compare"), dir.as_os_str(), dir.as_os_str()]));
    let merged = tmp.path().join("merged");
    warned(&run(&[
        os("merge"),
        dir.as_os_str(),
        os("--out"),
        merged.as_os_str(),
    ]));
    every_run_once(&merged, 2);
    let resumed = run(&[os("sweep"), os("--resume"), dir.as_os_str()]);
    warned(&resumed);
    every_run_once(&dir, 2);
    assert_eq!(
        std::fs::read_to_string(dir.join("tokens.csv")).unwrap(),
        tokens_before
    );
}

/// Report, compare (when a run is recorded) and merge of `dir` succeed.
fn readers_accept(dir: &Path, scratch: &Path) {
    let report = run(&[
        os("report"),
        dir.as_os_str(),
        os("--out"),
        scratch.join("report").as_os_str(),
    ]);
    assert!(report.status.success(), "{}", stderr_of(&report));
    if !ResultsDir::read(dir).unwrap().completed().is_empty() {
        let compare = run(&[os("compare"), dir.as_os_str(), dir.as_os_str()]);
        assert!(compare.status.success(), "{}", stderr_of(&compare));
    }
    let merged = scratch.join("merged");
    let _ = std::fs::remove_dir_all(&merged);
    let merge = run(&[
        os("merge"),
        dir.as_os_str(),
        os("--out"),
        merged.as_os_str(),
    ]);
    // a folder cut before its last run is recorded merges with that run missing (exit 1)
    assert!(
        matches!(merge.status.code(), Some(0 | 1)),
        "{}",
        stderr_of(&merge)
    );
    assert!(merged.join("runs.jsonl").is_file(), "{}", stderr_of(&merge));
}

#[test]
fn a_folder_cut_at_any_byte_of_its_logs_is_read_by_report_compare_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_ok(tmp.path(), SMALL);
    let runs = std::fs::read(dir.join("runs.jsonl")).unwrap();
    let tokens = std::fs::read(dir.join("tokens.csv")).unwrap();
    let first_run = runs.iter().position(|&b| b == b'\n').unwrap() + 1;
    // Where a write can be cut: inside the first line, at its end, inside the second line.
    for at in [first_run - 1, first_run, first_run + 1, runs.len() - 1] {
        std::fs::write(dir.join("runs.jsonl"), &runs[..at]).unwrap();
        std::fs::write(
            dir.join("tokens.csv"),
            &tokens[..tokens.len() * at / runs.len()],
        )
        .unwrap();
        readers_accept(&dir, tmp.path());
    }
    let resumed = run(&[os("sweep"), os("--resume"), dir.as_os_str()]);
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    every_run_once(&dir, 2);
}

#[test]
fn a_full_disk_stops_the_sweep_with_whole_lines_and_the_resume_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = match Tmpfs::mount(&tmp.path().join("disk"), 256 << 10) {
        Ok(d) => d,
        Err(reason) => return skipped("a_full_disk_stops_the_sweep", &reason),
    };
    let file = scenario(tmp.path(), SLOW);
    let dir = disk.0.join("out");
    let out = run(&[os("sweep"), file.as_os_str(), os("--out"), dir.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains(&format!(
            "continue with: llamaperf sweep --resume {}",
            dir.display()
        )),
        "{err}"
    );
    for log in ["runs.jsonl", "tokens.csv"] {
        let text = std::fs::read(dir.join(log)).unwrap_or_default();
        assert!(
            text.is_empty() || text.ends_with(b"\n"),
            "{log} ends in a partial line"
        );
    }
    let before = records(&dir).len();
    assert!(before < 6, "the disk was not full: {before} runs recorded");
    let report = run(&[
        os("report"),
        dir.as_os_str(),
        os("--out"),
        tmp.path().join("report").as_os_str(),
    ]);
    assert!(report.status.success(), "{}", stderr_of(&report));
    disk.resize(64 << 20);
    let resumed = run(&[os("sweep"), os("--resume"), dir.as_os_str()]);
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    every_run_once(&dir, 6);
}

/// The partial files of syntheses in the models folder of `cache`.
fn partials(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache.join("models"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `model synth` of a 1B-parameter f32 model (about 5 GB) into `cache` and waits
/// until its partial file holds some data; `None` when the disk lacks the room.
fn synthesizing(cache: &Path) -> Option<Child> {
    let args = [
        os("model"),
        os("synth"),
        os("llama-3.2-1b"),
        os("--dtype"),
        os("f32"),
    ];
    synthesizing_by(cache, &args)
}

/// Starts `llamaperf ARGS`, which synthesizes a 1B-parameter f32 model into `cache`, and
/// waits until its partial file holds some data; `None` when the disk lacks the room.
fn synthesizing_by(cache: &Path, args: &[&std::ffi::OsStr]) -> Option<Child> {
    std::fs::create_dir_all(cache).unwrap();
    let free = llamaperf_os::fs::free_bytes(cache).unwrap();
    if free < 12 << 30 {
        skipped(
            "synthesis interrupted",
            "less than 12 GB free for a 5 GB model",
        );
        return None;
    }
    let synth = spawn(cache, args);
    // a sweep may calibrate the machine first
    wait_for(Duration::from_secs(120), "no partial file grew", || {
        partials(cache)
            .iter()
            .any(|p| p.metadata().is_ok_and(|m| m.len() > 64 << 20))
    });
    Some(synth)
}

#[test]
fn sigint_or_sigterm_stop_a_synthesis_within_seconds_and_leave_no_partial_file() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        let Some(synth) = synthesizing(&cache) else {
            return;
        };
        let sent = Instant::now();
        let _ = llamaperf_os::process::send_signal(synth.id(), signal);
        let out = synth.wait_with_output().unwrap();
        let took = sent.elapsed();
        assert_eq!(out.status.code(), Some(130), "{}", stderr_of(&out));
        assert!(took < Duration::from_secs(5), "stopped after {took:?}");
        assert!(stderr_of(&out).contains("interrupted while synthesizing"));
        assert_eq!(partials(&cache), Vec::<PathBuf>::new());
        assert!(!cache.join("models/llama-3.2-1b-f32-v1.gguf").exists());
    }
}

#[test]
fn the_partial_file_of_a_killed_synthesis_is_removed_by_the_next_one_but_a_live_one_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let Some(mut synth) = synthesizing(&cache) else {
        return;
    };
    synth.kill().unwrap();
    synth.wait().unwrap();
    let stale = partials(&cache);
    assert_eq!(stale.len(), 1, "kill -9 leaves its partial file");
    // a synthesis in progress in another process: its file is locked
    let live = cache.join("models/.synth-live00.partial");
    let held = File::create(&live).unwrap();
    held.lock().unwrap();
    let next = llamaperf()
        .env("LLAMAPERF_CACHE", &cache)
        .args(["model", "synth", "tiny", "--dtype", "f32"])
        .output()
        .unwrap();
    assert!(next.status.success(), "{}", stderr_of(&next));
    assert!(
        stderr_of(&next).contains("removed 1 partial file"),
        "{}",
        stderr_of(&next)
    );
    assert_eq!(partials(&cache), vec![live]);
}

#[test]
fn ctrl_c_stops_a_sweep_during_synthesis_with_the_resume_hint_and_no_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // the test cache's calibration, when there is one, spares a quick calibration
    let calibrations = cache_dir().join("calibration");
    std::fs::create_dir_all(cache.join("calibration")).unwrap();
    for entry in std::fs::read_dir(&calibrations)
        .into_iter()
        .flatten()
        .flatten()
    {
        let _ = std::fs::copy(
            entry.path(),
            cache.join("calibration").join(entry.file_name()),
        );
    }
    let file = scenario(
        tmp.path(),
        "[defaults]\nmodel = \"llama-3.2-1b\"\ndtype = \"f32\"\nprompt_tokens = 16\ngen_tokens = 2\n",
    );
    let dir = tmp.path().join("out");
    let args = [os("sweep"), file.as_os_str(), os("--out"), dir.as_os_str()];
    let Some(sweep) = synthesizing_by(&cache, &args) else {
        return;
    };
    let sent = Instant::now();
    let _ = llamaperf_os::process::send_signal(sweep.id(), libc::SIGINT);
    let out = sweep.wait_with_output().unwrap();
    let took = sent.elapsed();
    assert_eq!(out.status.code(), Some(130), "{}", stderr_of(&out));
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    assert!(
        stderr_of(&out).contains(&format!(
            "continue with: llamaperf sweep --resume {}",
            dir.display()
        )),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(partials(&cache), Vec::<PathBuf>::new());
}

#[test]
fn a_second_calibration_of_the_machine_is_refused_with_the_holders_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let args = ["calibrate", "--cores", "1", "--dtypes", "f32"];
    let first = spawn(&cache, &args.map(os));
    let locked = || {
        std::fs::read_dir(cache.join("calibration"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".json.lock"))
    };
    wait_for(Duration::from_secs(60), "no calibration lock", locked);
    let second = llamaperf()
        .env("LLAMAPERF_CACHE", &cache)
        .args(args)
        .output()
        .unwrap();
    let pid = first.id();
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr_of(&first));
    assert_eq!(second.status.code(), Some(2), "{}", stderr_of(&second));
    assert!(
        stderr_of(&second).contains(&format!("being calibrated by pid {pid} on host")),
        "{}",
        stderr_of(&second)
    );
}

#[test]
fn two_sweeps_that_need_a_calibration_calibrate_once_and_both_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let file = scenario(tmp.path(), SMALL);
    let sweeps: Vec<Child> = ["a", "b"]
        .map(|out| {
            let dir = tmp.path().join(out);
            spawn(
                &cache,
                &[os("sweep"), file.as_os_str(), os("--out"), dir.as_os_str()],
            )
        })
        .into_iter()
        .collect();
    let errs: Vec<String> = sweeps
        .into_iter()
        .map(|s| {
            let out = s.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr_of(&out));
            stderr_of(&out)
        })
        .collect();
    let count = |what: &str| errs.iter().filter(|e| e.contains(what)).count();
    assert_eq!(count("no calibration of this machine yet"), 1, "{errs:?}");
    every_run_once(&tmp.path().join("a"), 2);
    every_run_once(&tmp.path().join("b"), 2);
}
