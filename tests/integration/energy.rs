//! RAPL energy through the real binary: on this host's powercap tree (empty columns and one
//! note where it has none), and on a fixture tree whose counters a thread advances while
//! the sweep runs (`LLAMAPERF_POWERCAP_ROOT`).

use crate::util::{llamaperf, records, skipped, stderr_of, summary, sweep_with};
use llamaperf::counters::rapl::{self, EnergyMeter};
use llamaperf::plan::CapacityPlan;
use llamaperf::results::Outcome;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SMALL: &str = "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 32\ngen_tokens = 160\n\
                     repetitions = 2\ncounters = \"none\"\n";

const ENERGY_COLUMNS: [&str; 9] = [
    "prefill_pkg_j_per_tok",
    "prefill_dram_j_per_tok",
    "prefill_pkg_w",
    "prefill_dram_w",
    "decode_pkg_j_per_tok",
    "decode_dram_j_per_tok",
    "decode_pkg_w",
    "decode_dram_w",
    "decode_tok_per_j",
];

/// Sweeps `body` into `dir/out` with the powercap root `root` (`None`: this machine's).
fn sweep(dir: &Path, body: &str, root: Option<&Path>) -> (PathBuf, String) {
    let mut cmd = llamaperf();
    cmd.env_remove(rapl::ROOT_ENV);
    if let Some(root) = root {
        cmd.env(rapl::ROOT_ENV, root);
    }
    let (out, out_dir) = sweep_with(cmd, dir, body);
    assert!(out.status.success(), "{}", stderr_of(&out));
    (out_dir, stderr_of(&out))
}

#[test]
fn without_rapl_the_energy_columns_are_empty_and_one_warning_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let root = PathBuf::from(rapl::DEFAULT_ROOT);
    let (out_dir, stderr) = sweep(
        tmp.path(),
        &format!("{SMALL}[matrix]\nbatch = [1, 2]\ncores = [1]\n"),
        None,
    );
    let header = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    let header = header.lines().next().unwrap();
    for column in ENERGY_COLUMNS {
        assert!(header.split(',').any(|c| c == column), "{column}: {header}");
    }
    let rows = summary(&out_dir);
    assert_eq!(rows.len(), 2);
    if let Ok(meter) = EnergyMeter::open(&root, Path::new(rapl::CPU_SYSFS), &[0]) {
        // a machine with readable RAPL: every run has its package energy
        assert!(
            rows.iter().all(|r| r.get("decode_pkg_w").is_some()),
            "{meter:?}"
        );
        skipped(
            "without_rapl_the_energy_columns_are_empty_and_one_warning_says_why",
            "this host has RAPL: checked that the columns are filled instead",
        );
        return;
    }
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: energy not measured: "))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning for the sweep: {stderr}");
    assert!(
        warnings[0].ends_with("the energy columns stay empty"),
        "{}",
        warnings[0]
    );
    for row in &rows {
        for column in ENERGY_COLUMNS {
            assert_eq!(row.get(column), None, "{column} of {}", row.run_id);
        }
    }
    for line in records(&out_dir) {
        let Outcome::Ok { record } = &line.outcome else {
            panic!("{:?}", line.outcome);
        };
        assert!(record.energy.is_empty());
        let notes: Vec<&String> = record
            .notes
            .iter()
            .filter(|n| n.starts_with("energy not measured: "))
            .collect();
        assert_eq!(notes.len(), 1, "{:?}", record.notes);
    }
    let out = llamaperf().arg("report").arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        report.contains("- energy-batch: no configuration has RAPL energy"),
        "{report}"
    );
}

/// A powercap tree with a package zone and a DRAM subzone for every package of this
/// machine's CPUs, and a thread that adds 20 mJ to each package counter and 2 mJ to each
/// DRAM counter every millisecond (wrapping at `MAX_UJ`) until dropped.
struct AdvancingTree {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// Where the fixture's counters wrap, µJ: 2.5 s of its package counter, longer than a phase
/// span of these runs (a span over a whole range would be undercounted).
const MAX_UJ: u64 = 50_000_000;

impl AdvancingTree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cpus = std::fs::read_dir(rapl::CPU_SYSFS).unwrap();
        let mut packages: Vec<u64> = cpus
            .filter_map(Result::ok)
            .filter_map(|e| {
                let id = e.path().join("topology/physical_package_id");
                std::fs::read_to_string(id).ok()?.trim().parse().ok()
            })
            .collect();
        packages.sort_unstable();
        packages.dedup();
        let mut zones = Vec::new();
        for (i, package) in packages.iter().enumerate() {
            for (zone, name, step) in [
                (
                    format!("intel-rapl:{i}"),
                    format!("package-{package}"),
                    20_000,
                ),
                (format!("intel-rapl:{i}:0"), "dram".to_string(), 2_000),
            ] {
                let path = dir.path().join(&zone);
                std::fs::create_dir_all(&path).unwrap();
                std::fs::write(path.join("name"), format!("{name}\n")).unwrap();
                std::fs::write(path.join("max_energy_range_uj"), format!("{MAX_UJ}\n")).unwrap();
                // near the top, so that the counters wrap early in the sweep
                let start = MAX_UJ - 50 * step;
                write_atomic(&path.join("energy_uj"), start);
                zones.push((path.join("energy_uj"), start, step));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    for (path, value, step) in &mut zones {
                        *value = (*value + *step) % MAX_UJ;
                        write_atomic(path, *value);
                    }
                }
            })
        };
        AdvancingTree {
            dir,
            stop,
            writer: Some(writer),
        }
    }
}

impl Drop for AdvancingTree {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Writes `value` as a sysfs counter file does, replacing the file at once.
fn write_atomic(path: &Path, value: u64) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{value}\n")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn energy_of_an_advancing_fixture_tree_reaches_records_summary_report_and_plan() {
    let pus = llamaperf::machine::Machine::load(&llamaperf::machine::TopologySource::ThisMachine)
        .unwrap()
        .allowed_pus
        .len();
    if pus < 2 {
        skipped(
            "energy_of_an_advancing_fixture_tree_reaches_records_summary_report_and_plan",
            "two parallel instances need 2 usable PUs",
        );
        return;
    }
    let tree = AdvancingTree::new();
    let tmp = tempfile::tempdir().unwrap();
    let (out_dir, stderr) = sweep(
        tmp.path(),
        &format!("{SMALL}cores = 2\n[matrix]\nbatch = [1, 2]\ninstances = [1, 2]\n"),
        Some(tree.dir.path()),
    );
    drop(tree);
    assert!(!stderr.contains("energy not measured"), "{stderr}");
    let lines = records(&out_dir);
    let mut instances = 0;
    for line in &lines {
        let Outcome::Ok { record } = &line.outcome else {
            continue;
        };
        assert!(!record.energy.is_empty(), "{:?}", record.notes);
        let shared_by = if line.instance.is_some() { 2 } else { 1 };
        instances += usize::from(line.instance.is_some());
        for p in &record.energy {
            assert_eq!(p.shared_by, shared_by, "{}", line.run_id());
            let decode_dram = p.decode.dram_j.expect("the fixture has a DRAM zone");
            assert!(p.decode.package_j > 0.0, "{p:?}");
            // both counters advance together, 10:1, wrapping on their own
            let ratio = decode_dram / p.decode.package_j;
            assert!((0.05..0.2).contains(&ratio), "{p:?}");
        }
    }
    assert_eq!(instances, 4, "two runs of two instances");
    let rows = summary(&out_dir);
    for row in &rows {
        let energy = row.get("decode_pkg_w");
        if row.status == "aggregate" {
            assert_eq!(energy, None, "aggregates carry no energy");
            continue;
        }
        // at most 20 mJ a millisecond: 20 W, over phases of a few ms; never µJ taken for J
        let watts = energy.expect("a measured run has energy");
        assert!(watts > 0.0 && watts < 200.0, "{watts} W: {row:?}");
        let j_per_tok = row.get("decode_pkg_j_per_tok").unwrap();
        // J/token over W is the time per token: a mean decode step per sequence
        let step_s = row.get("tpot_mean_ms").unwrap() / 1e3 / row.batch as f64;
        let consistent = j_per_tok / watts / step_s;
        assert!((consistent - 1.0).abs() < 1e-9, "{consistent}: {row:?}");
        let total = j_per_tok + row.get("decode_dram_j_per_tok").unwrap();
        let tok_per_j = row.get("decode_tok_per_j").unwrap();
        assert!((tok_per_j * total - 1.0).abs() < 1e-9);
        assert!(row.get("prefill_pkg_j_per_tok").is_some());
    }
    let out = llamaperf().arg("report").arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out_dir.join("charts/energy-batch.png").is_file());
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        report.contains("Energy per token vs batch size"),
        "{report}"
    );
    let out = llamaperf()
        .args([
            "plan",
            "--model",
            "tiny",
            "--context",
            "192",
            "--prompt-tokens",
            "32",
        ])
        .args([
            "--cores-per-instance",
            "2",
            "--batch",
            "1",
            "--json",
            "--from",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let plan: CapacityPlan = serde_json::from_slice(&out.stdout).unwrap();
    let at = plan.at_batch.expect("batch 1 at 2 cores was measured");
    let single = rows
        .iter()
        .find(|r| r.instances == 1 && r.batch == 1)
        .unwrap();
    let (planned, measured) = (
        at.tok_per_j.unwrap(),
        single.get("decode_tok_per_j").unwrap(),
    );
    assert!(
        (planned / measured - 1.0).abs() < 1e-12,
        "{planned} vs {measured}"
    );
    assert!(plan
        .notes
        .iter()
        .any(|n| n.starts_with("tokens per joule as measured")));
}

#[test]
fn the_run_table_shows_energy_or_says_once_why_not() {
    let run = |root: Option<&Path>| {
        let mut cmd = llamaperf();
        cmd.env_remove(rapl::ROOT_ENV);
        if let Some(root) = root {
            cmd.env(rapl::ROOT_ENV, root);
        }
        let out = cmd
            .args(["run", "--model", "tiny", "--prompt-tokens", "16"])
            .args(["--gen-tokens", "96", "--threads", "1", "--counters", "none"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stderr_of(&out)
    };
    let tree = AdvancingTree::new();
    let with = run(Some(tree.dir.path()));
    drop(tree);
    let line = with
        .lines()
        .find(|l| l.starts_with("  energy (RAPL, package "))
        .unwrap_or_else(|| panic!("{with}"));
    assert!(
        line.contains(" J/tok DRAM (") && line.contains("| decode "),
        "{line}"
    );
    let absent = tempfile::tempdir().unwrap();
    let without = run(Some(&absent.path().join("powercap")));
    let notes = without
        .lines()
        .filter(|l| l.starts_with("  note: energy not measured: no RAPL powercap zones: "))
        .count();
    assert_eq!(notes, 1, "{without}");
    assert!(!without.contains("energy (RAPL"), "{without}");
}
