//! Topology, placement and pinning, read back from the kernel.

use crate::util::{llamaperf, run_json_of, stderr_of, RunJson};
use llamaperf::machine::cpulist::parse_list;
use llamaperf::machine::{Machine, TopologySource};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn this_machine() -> Machine {
    Machine::load(&TopologySource::ThisMachine).unwrap()
}

fn run_record(args: &[&str]) -> RunJson {
    let out = llamaperf()
        .args([
            "run",
            "--model",
            "tiny",
            "--prompt-tokens",
            "8",
            "--gen-tokens",
            "4",
        ])
        .args(["--repetitions", "1", "--warmup", "0", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    run_json_of(&out.stdout)
}

#[test]
fn every_thread_is_pinned_to_its_own_pu_of_the_cpuset() {
    let m = this_machine();
    let r = run_record(&[]);
    let pus = &r.spec.placement.pus;
    let usable: usize = m
        .cores
        .iter()
        .filter(|c| !m.usable_pus(c).is_empty())
        .count();
    assert_eq!(pus.len(), usable, "default: one thread per usable core");
    assert_eq!(r.threads, pus.len());
    assert!(r.binding.threads.len() >= pus.len());
    for t in &r.binding.threads {
        assert_eq!(
            t.cpus.len(),
            1,
            "thread {} ({}) on {:?}",
            t.tid,
            t.name,
            t.cpus
        );
        assert!(pus.contains(&t.cpus[0]), "{t:?} outside {pus:?}");
    }
    let main = r
        .binding
        .threads
        .iter()
        .find(|t| t.name == "llamaperf")
        .unwrap();
    assert_eq!(main.cpus, [pus[0]]);
    assert_eq!(r.binding.memory_policy, "bind");
    assert_eq!(r.binding.memory_nodes, r.spec.placement.memory.nodes);
}

#[test]
fn cores_1_puts_every_thread_on_that_one_pu() {
    let r = run_record(&["--cores", "1"]);
    let pu = r.spec.placement.pus[0];
    assert_eq!(r.spec.placement.pus, [pu]);
    assert!(
        r.binding.threads.iter().all(|t| t.cpus == [pu]),
        "{:?}",
        r.binding
    );
}

/// The worker's pid: the child of `parent` (read from /proc).
fn worker_of(parent: u32) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Thread names and `Cpus_allowed_list` of every thread of a live process.
fn live_threads(pid: u32) -> Vec<(String, Vec<usize>)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let list = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            Some((name.trim().to_string(), parse_list(list.trim()).ok()?))
        })
        .collect()
}

#[test]
fn a_live_worker_with_cores_1_has_all_threads_on_one_pu() {
    let m = this_machine();
    let expected = m.usable_pus(
        m.cores
            .iter()
            .find(|c| !m.usable_pus(c).is_empty())
            .unwrap(),
    )[0];
    let mut parent = std::process::Command::new(env!("CARGO_BIN_EXE_llamaperf"))
        .env("LLAMAPERF_CACHE", crate::util::cache_dir())
        .env(llamaperf::measure::worker::FAULT_ENV, "hang")
        .args([
            "run",
            "--model",
            "tiny",
            "--cores",
            "1",
            "--prompt-tokens",
            "4",
            "--gen-tokens",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(worker) = worker_of(parent.id()) {
            seen = live_threads(worker);
            // The hook hangs only after the pools exist and every thread is pinned.
            if seen.iter().any(|(n, _)| n.starts_with("lp-rayon"))
                && seen.iter().all(|(_, c)| c == &[expected])
            {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(worker) = worker_of(parent.id()) {
        let _ = llamaperf_os::process::send_signal(worker, libc::SIGKILL);
    }
    let status = parent.wait().unwrap();
    assert!(!seen.is_empty(), "never saw the worker");
    assert!(
        seen.iter().all(|(_, cpus)| cpus == &[expected]),
        "threads: {seen:?}"
    );
    assert_eq!(status.code(), Some(1), "a killed worker fails the run");
}

#[test]
fn topology_json_of_this_and_of_a_synthetic_machine() {
    let out = llamaperf().args(["topology", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let m: Machine = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m, this_machine());
    let out = llamaperf()
        .args([
            "topology",
            "--json",
            "--topology",
            "synthetic:\"pack:2 numa:4 l3:3 core:8 pu:2\"",
        ])
        .output()
        .unwrap();
    let m: Machine = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (m.nps, m.l3_domains.len(), m.allowed_pus.len()),
        (Some(4), 24, 384)
    );
    let out = llamaperf()
        .args([
            "topology",
            "--topology",
            "synthetic:\"pack:2 numa:4 l3:3 core:8 pu:2\"",
        ])
        .output()
        .unwrap();
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(
        tree.contains(
            "2 packages, NPS4, 8 NUMA nodes, 24 L3 domains, 192 cores, 384 PUs, SMT active"
        ),
        "{tree}"
    );
    assert!(
        tree.contains("    L3 23: 16 MiB, 8 cores") && tree.contains("core 191  PUs 382-383"),
        "{tree}"
    );
}

#[test]
fn placement_errors_exit_2_with_the_numbers() {
    let m = this_machine();
    let fails = |args: &[&str], want: &str| {
        let out = llamaperf()
            .args(["run", "--model", "tiny"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(want),
            "want {want:?} in {}",
            stderr_of(&out)
        );
    };
    let nodes = m.numa_nodes.len();
    fails(
        &["--memory", &format!("bind:{nodes}")],
        &format!("bind:{nodes} but machine has {nodes} NUMA node"),
    );
    if !m.smt_active {
        fails(&["--smt", "on"], "SMT on but cores have 1 PU");
    }
    fails(
        &["--cores", "100000-100001"],
        "cpus 100000-100001 are not usable here",
    );
    fails(
        &["--placement", "wide"],
        "placement = 'wide' is not allowed; allowed: compact, scatter",
    );
    fails(
        &["--cores", "4", "--topology", "synthetic:\"pack:2 numa:4 l3:3 core:8 pu:2\""],
        "is not this machine: run can only plan there (it would use cpus 0,2,4,6 (4 threads), memory bind on nodes 0)",
    );
    fails(
        &["--topology", "/nonexistent/machine.xml"],
        "topology /nonexistent/machine.xml: no such file",
    );
}
