//! `llamaperf slurm` and `llamaperf merge`: job-array scripts, and shards of real sweeps of
//! scenarios/ci-smoke.toml merged into one results folder with every planned run once.

use crate::util::{llamaperf, records, stderr_of, summary};
use llamaperf::planning::plan::Plan;
use llamaperf::results::{Outcome, ResultsDir};
use llamaperf::schema::PLAN_VERSION;
use std::path::{Path, PathBuf};

fn ci_smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci-smoke.toml")
}

/// Runs shard `shard` of ci-smoke into `out`.
fn sweep_shard(shard: &str, out: &Path) {
    let run = llamaperf()
        .arg("sweep")
        .arg(ci_smoke())
        .args(["--shard", shard, "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));
}

/// Both shards of ci-smoke, as a job array writes them: `<dir>/<host>-1`, `<dir>/<host>-2`.
fn two_shards(dir: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (dir.join("h-1"), dir.join("h-2"));
    sweep_shard("1/2", &a);
    sweep_shard("2/2", &b);
    (a, b)
}

fn merge(dirs: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    llamaperf()
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn planned_ids(dir: &Path) -> Vec<String> {
    let plan: Plan =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    plan.planned().map(|r| r.id.clone()).collect()
}

/// Completed run ids of a folder, sorted, duplicates kept.
fn completed_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = records(dir)
        .into_iter()
        .filter(|r| r.completes_run())
        .map(|r| r.run_id())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_shards_of_a_sweep_merge_into_one_folder_with_every_planned_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path());
    let out = tmp.path().join("merged");
    let merged = merge(&[&a, &b], &out, &[]);
    assert!(merged.status.success(), "{}", stderr_of(&merged));
    assert_eq!(
        String::from_utf8_lossy(&merged.stdout).trim(),
        out.display().to_string()
    );
    let mut planned = planned_ids(&out);
    planned.sort();
    assert_eq!(planned.len(), 4, "ci-smoke plans 4 runs");
    assert_eq!(
        completed_ids(&out),
        planned,
        "every planned run exactly once"
    );
    let host = hostname();
    assert!(records(&out)
        .iter()
        .all(|r| r.host.as_deref() == Some(host.as_str())));
    assert!(
        records(&a)
            .iter()
            .all(|r| r.host.as_deref() == Some(host.as_str())),
        "a sweep records its host on every line"
    );
    for f in [
        "scenario.toml",
        "machine.json",
        "plan.json",
        "calibration.json",
        "tokens.csv",
    ] {
        assert!(out.join(f).is_file(), "{f} is missing");
    }
    for f in ["machine.json", "plan.json"] {
        assert!(
            out.join("hosts").join(&host).join(f).is_file(),
            "hosts/{host}/{f} is missing"
        );
    }
    assert_eq!(
        std::fs::read(out.join("machine.json")).unwrap(),
        std::fs::read(a.join("machine.json")).unwrap()
    );
    let rows = summary(&out);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.status == "ok" && r.host == host));
    let tokens = |d: &Path| {
        std::fs::read_to_string(d.join("tokens.csv"))
            .unwrap()
            .lines()
            .count()
            - 1
    };
    assert_eq!(tokens(&out), tokens(&a) + tokens(&b));
    let dir = ResultsDir::read(&out).unwrap();
    assert!(dir.is_merged());
    assert_eq!(dir.hosts().len(), 1);
    assert_eq!(dir.plan().shard, None);
    let resume = llamaperf()
        .arg("sweep")
        .arg("--resume")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(resume.status.code(), Some(2));
    assert!(stderr_of(&resume).contains("is a merged results folder"));
    let again = merge(&[&a, &b], &out, &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr_of(&again).contains("already exists: choose another --out"));
}

#[test]
fn a_missing_shard_is_reported_and_the_rest_is_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("h-1");
    sweep_shard("1/2", &a);
    let out = tmp.path().join("merged");
    let merged = merge(&[&a], &out, &[]);
    assert_eq!(merged.status.code(), Some(1), "{}", stderr_of(&merged));
    let err = stderr_of(&merged);
    assert_eq!(err.matches("in no folder's shard").count(), 2, "{err}");
    assert!(err.contains("2 planned runs are missing"), "{err}");
    assert_eq!(completed_ids(&out).len(), 2);
}

#[test]
fn a_duplicated_shard_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path());
    let again = tmp.path().join("again-1");
    sweep_shard("1/2", &again);
    let out = tmp.path().join("merged");
    let merged = merge(&[&a, &b, &again], &out, &[]);
    assert_eq!(merged.status.code(), Some(2), "{}", stderr_of(&merged));
    let err = stderr_of(&merged);
    assert!(err.contains("2 duplicated runs, nothing written"), "{err}");
    assert!(
        err.contains(&format!("in {} and {}", a.display(), again.display())),
        "{err}"
    );
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".llamaperf-merge-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_interrupted_shard_is_reported_with_its_resume_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path());
    let runs = b.join("runs.jsonl");
    let text = std::fs::read_to_string(&runs).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(&runs, format!("{first}\n")).unwrap();
    let out = tmp.path().join("merged");
    let merged = merge(&[&a, &b], &out, &[]);
    assert_eq!(merged.status.code(), Some(1));
    let err = stderr_of(&merged);
    assert!(
        err.contains(&format!(
            "planned but not recorded in {0} (continue it with llamaperf sweep --resume {0})",
            b.display()
        )),
        "{err}"
    );
    // Resuming the shard runs only what is missing; then the merge is complete.
    let resumed = llamaperf()
        .arg("sweep")
        .arg("--resume")
        .arg(&b)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    assert!(stderr_of(&resumed).contains("1 runs already recorded"));
    let merged = merge(&[&a, &b], &tmp.path().join("merged-2"), &[]);
    assert!(merged.status.success(), "{}", stderr_of(&merged));
}

#[test]
fn other_schema_versions_and_other_scenarios_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path());
    let plan = b.join("plan.json");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(
        &plan,
        text.replacen(
            &format!("\"schema_version\": {PLAN_VERSION}"),
            "\"schema_version\": 99",
            1,
        ),
    )
    .unwrap();
    let merged = merge(&[&a, &b], &tmp.path().join("m1"), &[]);
    assert_eq!(merged.status.code(), Some(2));
    assert!(
        stderr_of(&merged).contains(&format!(
            "{} has schema_version 99, this llamaperf reads {PLAN_VERSION}",
            plan.display()
        )),
        "{}",
        stderr_of(&merged)
    );
    std::fs::write(&plan, text).unwrap();
    let scenario = b.join("scenario.toml");
    let s = std::fs::read_to_string(&scenario).unwrap();
    std::fs::write(&scenario, s.replace("repetitions = 5", "repetitions = 4")).unwrap();
    let merged = merge(&[&a, &b], &tmp.path().join("m2"), &[]);
    assert_eq!(merged.status.code(), Some(2));
    assert!(
        stderr_of(&merged).contains("scenario.toml differs from"),
        "{}",
        stderr_of(&merged)
    );
    assert!(!tmp.path().join("m1").exists() && !tmp.path().join("m2").exists());
}

/// A copy of `dir` as if another host named `host` had run it.
fn as_host(dir: &Path, host: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
    let machine = to.join("machine.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&machine).unwrap()).unwrap();
    m["hostname"] = host.into();
    std::fs::write(&machine, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let lines: Vec<String> = records(to)
        .into_iter()
        .map(|mut r| {
            r.host = Some(host.to_string());
            serde_json::to_string(&r).unwrap() + "\n"
        })
        .collect();
    std::fs::write(to.join("runs.jsonl"), lines.concat()).unwrap();
}

#[test]
fn two_hosts_that_each_ran_the_scenario_merge_with_per_host_coverage() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path());
    let (c, d) = (tmp.path().join("other-1"), tmp.path().join("other-2"));
    as_host(&a, "other", &c);
    as_host(&b, "other", &d);
    let out = tmp.path().join("merged");
    let once = merge(&[&a, &b, &c, &d], &out, &[]);
    assert_eq!(once.status.code(), Some(2));
    assert!(
        stderr_of(&once).contains("merge with --coverage per-host"),
        "{}",
        stderr_of(&once)
    );
    let per_host = merge(&[&a, &b, &c, &d], &out, &["--coverage", "per-host"]);
    assert!(per_host.status.success(), "{}", stderr_of(&per_host));
    let rows = summary(&out);
    let host = hostname();
    let count = |h: &str| {
        rows.iter()
            .filter(|r| r.host == h && r.status == "ok")
            .count()
    };
    assert_eq!((count(&host), count("other")), (4, 4));
    assert!(out.join("hosts/other/machine.json").is_file());
    assert!(out.join("hosts").join(&host).join("machine.json").is_file());
    let recs = records(&out);
    assert_eq!(recs.len(), 8);
    assert!(recs.iter().all(|r| matches!(r.outcome, Outcome::Ok { .. })));
    // compare matches two multi-host folders host by host, and refuses to guess a host
    let aa = llamaperf()
        .arg("compare")
        .args([&out, &out])
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(aa.status.success(), "{}", stderr_of(&aa));
    let comparison: serde_json::Value = serde_json::from_slice(&aa.stdout).unwrap();
    let mut compared: Vec<&str> = comparison["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["host"].as_str().expect("every comparison names its host"))
        .collect();
    compared.dedup();
    let mut expected = vec![host.as_str(), "other"];
    expected.sort();
    compared.sort();
    compared.dedup();
    assert_eq!(compared, expected);
    let mixed = llamaperf()
        .arg("compare")
        .args([&out, &a])
        .output()
        .unwrap();
    assert_eq!(mixed.status.code(), Some(2), "{}", stderr_of(&mixed));
    assert!(
        stderr_of(&mixed).contains("holds runs of 2 hosts"),
        "{}",
        stderr_of(&mixed)
    );
    // report draws the two machines side by side
    let report_dir = tmp.path().join("report");
    let report = llamaperf()
        .arg("report")
        .arg(&out)
        .arg("--out")
        .arg(&report_dir)
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", stderr_of(&report));
    assert!(report_dir.join("charts/compare-host.png").is_file());
    // One sweep split over two hosts: shard 1 here, shard 2 on "other".
    let split = tmp.path().join("split");
    let once = merge(&[&a, &d], &split, &[]);
    assert!(once.status.success(), "{}", stderr_of(&once));
    let rows = summary(&split);
    let hosts: Vec<&str> = rows.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(hosts, [host.as_str(), host.as_str(), "other", "other"]);
    let missing_host = merge(
        &[&a, &b, &c],
        &tmp.path().join("m2"),
        &["--coverage", "per-host"],
    );
    assert_eq!(missing_host.status.code(), Some(1));
    assert_eq!(
        stderr_of(&missing_host)
            .matches("missing (host other)")
            .count(),
        2
    );
}

#[test]
fn slurm_dry_run_prints_an_exclusive_array_of_absolute_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let out = llamaperf()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "slurm",
            "scenarios/ci-smoke.toml",
            "--shards",
            "2",
            "--partition",
            "debug",
        ])
        .args(["--time", "00:10:00", "--dry-run", "--out"])
        .arg(tmp.path().join("fleet"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let script = String::from_utf8(out.stdout).unwrap();
    for line in [
        "#SBATCH --array=1-2",
        "#SBATCH --exclusive",
        "#SBATCH --partition=debug",
        "#SBATCH --time=00:10:00",
        "set -euo pipefail",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "{line} missing:\n{script}"
        );
    }
    assert!(script.contains(&format!("scenario='{}'", ci_smoke().display())));
    assert!(script.contains(&format!("llamaperf='{}'", env!("CARGO_BIN_EXE_llamaperf"))));
    assert!(
        !tmp.path().join("fleet").exists(),
        "--dry-run writes nothing"
    );
}

#[test]
fn slurm_checks_shards_and_sbatch_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("fleet");
    let too_many = llamaperf()
        .arg("slurm")
        .arg(ci_smoke())
        .args(["--shards", "5", "--out"])
        .arg(&fleet)
        .output()
        .unwrap();
    assert_eq!(too_many.status.code(), Some(2));
    assert!(stderr_of(&too_many).contains("--shards 5 but the scenario has 4 runs"));
    let no_sbatch = llamaperf()
        .env("PATH", tmp.path())
        .arg("slurm")
        .arg(ci_smoke())
        .args(["--shards", "2", "--submit", "--out"])
        .arg(&fleet)
        .output()
        .unwrap();
    assert_eq!(no_sbatch.status.code(), Some(2));
    assert!(
        stderr_of(&no_sbatch).contains("sbatch is not on PATH"),
        "{}",
        stderr_of(&no_sbatch)
    );
    assert!(!fleet.exists());
    let written = llamaperf()
        .arg("slurm")
        .arg(ci_smoke())
        .args(["--shards", "2", "--out"])
        .arg(&fleet)
        .output()
        .unwrap();
    assert!(written.status.success(), "{}", stderr_of(&written));
    let script = fleet.join("llamaperf-ci-smoke.sbatch");
    assert_eq!(
        String::from_utf8_lossy(&written.stdout).trim(),
        script.display().to_string()
    );
    assert!(std::fs::read_to_string(&script)
        .unwrap()
        .contains("#SBATCH --array=1-2"));
}

#[test]
fn slurm_submit_hands_the_script_to_sbatch_and_prints_the_job_id() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let sbatch = bin.join("sbatch");
    let args_file = tmp.path().join("sbatch-args");
    std::fs::write(
        &sbatch,
        format!(
            "#!/bin/sh\necho \"$@\" > '{}'\necho '4242;cluster'\n",
            args_file.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fleet = tmp.path().join("fleet");
    let out = llamaperf()
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .arg("slurm")
        .arg(ci_smoke())
        .args(["--shards", "2", "--submit", "--out"])
        .arg(&fleet)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4242\n");
    assert_eq!(
        std::fs::read_to_string(&args_file).unwrap().trim(),
        format!(
            "--parsable {}",
            fleet.join("llamaperf-ci-smoke.sbatch").display()
        )
    );
}

#[test]
fn folders_written_before_hosts_were_recorded_resume_and_merge_with_their_machine_host() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path());
    for dir in [&a, &b] {
        let runs = dir.join("runs.jsonl");
        let old: String = std::fs::read_to_string(&runs)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("host").unwrap();
                v.to_string() + "\n"
            })
            .collect();
        std::fs::write(&runs, old).unwrap();
    }
    assert!(records(&a).iter().all(|r| r.host.is_none()));
    let resumed = llamaperf()
        .arg("sweep")
        .arg("--resume")
        .arg(&a)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr_of(&resumed));
    let host = hostname();
    assert!(
        summary(&a).iter().all(|r| r.host == host),
        "machine.json names the host"
    );
    let out = tmp.path().join("merged");
    let merged = merge(&[&a, &b], &out, &[]);
    assert!(merged.status.success(), "{}", stderr_of(&merged));
    assert!(records(&out)
        .iter()
        .all(|r| r.host.as_deref() == Some(host.as_str())));
}
