//! Engine `openai`: sweeps against a scripted local server (every failure a request can meet,
//! the server dying, a server that never starts), a server reached by `url`, the refusal of a
//! remote `url`, and llama.cpp's own llama-server on SmolLM2.

use crate::util::{
    llamaperf, records, scenario, skipped, smollm2, stderr_of, summary, sweep, sweep_ok,
};
use llamaperf::measure::record::RunRecord;
use llamaperf::results::requests::RequestRow;
use llamaperf::results::{Outcome, SweepRecord};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn scripted_server() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openai/scripted_server.py")
}

fn requests_csv(dir: &Path) -> Vec<RequestRow> {
    csv::Reader::from_path(dir.join("requests.csv"))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

/// The record of the run whose id ends with `gen=<gen> …`, which must have measured.
fn record_of(lines: &[SweepRecord], gen: usize) -> &RunRecord {
    let line = lines
        .iter()
        .find(|l| l.config().gen_tokens == gen)
        .unwrap_or_else(|| panic!("no run with gen_tokens = {gen}"));
    match &line.outcome {
        Outcome::Ok { record } => record,
        other => panic!("run gen={gen} did not measure: {other:?}"),
    }
}

/// Whether python3 is here to run the scripted server.
fn python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn each_scripted_failure_is_a_failed_request_with_its_reason_and_the_sweep_goes_on() {
    if !python3() {
        return skipped("openai scripted failures", "python3 is not installed");
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = scripted_server();
    // one run per mode, told apart by gen_tokens; request 1 of each (from 0) fails
    let mode = |gen: usize, mode: &str| {
        format!(
            "[[include]]\ngen_tokens = {gen}\nserver_command = \"python3 {} --port {{port}} --mode {mode}\"\n",
            server.display()
        )
    };
    let body = format!(
        "[defaults]\nmodel = \"{}\"\nengine = \"openai\"\ncores = 1\nprompt_tokens = 4\nrequests = 4\n\
         request_timeout_s = 2\ntimeout_s = 60\nslo_ttft_ms = 5000\n{}{}{}{}{}{}",
        smollm2().display(),
        mode(4, "ok"),
        mode(5, "http500"),
        mode(6, "stall"),
        mode(7, "malformed-sse"),
        mode(8, "die-mid-run"),
        mode(9, "exit-at-start"),
    );
    let (out, out_dir) = sweep(tmp.path(), &body);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("1 of 6 runs failed"),
        "{}",
        stderr_of(&out)
    );

    let lines = records(&out_dir);
    let failed_reason = |gen: usize| -> Vec<Option<String>> {
        let serving = record_of(&lines, gen).serving.as_ref().unwrap();
        assert_eq!(serving.requests.len(), 4, "gen={gen}");
        serving.requests.iter().map(|r| r.error.clone()).collect()
    };
    assert!(failed_reason(4).iter().all(Option::is_none));
    let reason_of_1 = |gen: usize| failed_reason(gen)[1].clone().unwrap();
    assert!(reason_of_1(5).starts_with("HTTP 500"), "{}", reason_of_1(5));
    assert!(reason_of_1(6).contains("timed out"), "{}", reason_of_1(6));
    assert!(
        reason_of_1(7).starts_with("malformed SSE"),
        "{}",
        reason_of_1(7)
    );
    for gen in [5, 6, 7] {
        let reasons = failed_reason(gen);
        assert!(
            [0, 2, 3].iter().all(|&i| reasons[i].is_none()),
            "gen={gen}: only request 1 fails: {reasons:?}"
        );
        let r = record_of(&lines, gen);
        assert_eq!(
            r.repetitions.len(),
            3,
            "completed requests are the repetitions"
        );
        let load = &r.serving.as_ref().unwrap().summary;
        assert_eq!((load.completed, load.failed), (3, 1));
        assert!(load.output_tok_s > 0.0 && load.goodput_pct == Some(75.0));
    }
    // the server dies in request 1: that one is cut, the later ones find no server
    let died = record_of(&lines, 8);
    let reasons = failed_reason(8);
    assert!(reasons[0].is_none() && reasons[1].is_some(), "{reasons:?}");
    assert!(
        reasons[2..].iter().all(|r| r
            .as_deref()
            .is_some_and(|r| r.starts_with("connection failed"))),
        "{reasons:?}"
    );
    let server = died.serving.as_ref().unwrap().server.as_ref().unwrap();
    assert_eq!(server.died.as_deref(), Some("exited with code 3"));
    assert!(server
        .stderr_tail
        .iter()
        .any(|l| l.contains("dying during request 1")));
    assert!(
        died.notes.iter().any(|n| n.contains("exited with code 3")),
        "{:?}",
        died.notes
    );
    // a server that never starts fails its run, with its stderr
    let never = lines.iter().find(|l| l.config().gen_tokens == 9).unwrap();
    let Outcome::Failed { reason, .. } = &never.outcome else {
        panic!(
            "the run of a server that never starts fails: {:?}",
            never.outcome
        );
    };
    assert!(reason.contains("before it was healthy"), "{reason}");
    assert!(reason.contains("cannot load the model"), "{reason}");

    // the server ran inside the run's placement, and was read back
    let ok = lines.iter().find(|l| l.config().gen_tokens == 4).unwrap();
    let server = record_of(&lines, 4)
        .serving
        .as_ref()
        .unwrap()
        .server
        .as_ref()
        .unwrap();
    assert!(!server.threads.is_empty());
    assert!(
        server
            .threads
            .iter()
            .all(|t| t.cpus == ok.spec.placement.pus),
        "server threads {:?} vs placement {:?}",
        server.threads,
        ok.spec.placement.pus
    );
    assert!(server.command.contains("--mode ok") && !server.command.contains("{port}"));

    let rows = requests_csv(&out_dir);
    assert_eq!(
        rows.len(),
        5 * 4,
        "one row per request of the five measured runs"
    );
    let failed: Vec<&RequestRow> = rows.iter().filter(|r| r.status == "failed").collect();
    assert_eq!(failed.len(), 1 + 1 + 1 + 3);
    assert!(failed.iter().all(|r| !r.reason.is_empty()));
    let rows = summary(&out_dir);
    let ok_row = rows.iter().find(|r| r.gen_tokens == 4).unwrap();
    assert_eq!(ok_row.concurrency, Some(1));
    assert_eq!(ok_row.get("failed_requests"), Some(0.0));
    assert!(ok_row.get("serve_output_tok_s").unwrap() > 0.0);
    assert!(ok_row.get("request_ttft_p99_ms").unwrap() > 0.0);
    let report = llamaperf().arg("report").arg(&out_dir).output().unwrap();
    assert!(report.status.success(), "{}", stderr_of(&report));
}

/// The scripted server on a free port, started by the test, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_scripted(port: u16) -> Running {
    let child = Command::new("python3")
        .arg(scripted_server())
        .args(["--port", &port.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the scripted server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

#[test]
fn a_server_at_a_loopback_url_is_measured_closed_and_open_loop_and_a_remote_one_refused() {
    if !python3() {
        return skipped("openai url", "python3 is not installed");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = start_scripted(port);
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(
        tmp.path(),
        &format!(
            "[defaults]\nmodel = \"{}\"\nengine = \"openai\"\ncores = 1\nprompt_tokens = 4\n\
             gen_tokens = 3\nrequests = 5\nurl = \"http://localhost:{port}/\"\n\
             [matrix]\nconcurrency = [1, 2]\n[[include]]\nrequest_rate = 50.0\n",
            smollm2().display()
        ),
    );
    let lines = records(&out_dir);
    let ids: Vec<String> = lines.iter().map(SweepRecord::run_id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(
        ids[0].ends_with("concurrency=1") && ids[1].ends_with("concurrency=2"),
        "{ids:?}"
    );
    assert!(ids[2].ends_with("request_rate=50"), "{ids:?}");
    for line in &lines {
        let Outcome::Ok { record } = &line.outcome else {
            panic!("{:?}", line.outcome)
        };
        let serving = record.serving.as_ref().unwrap();
        assert!(serving.server.is_none(), "nothing is launched for a url");
        assert_eq!(
            serving.endpoint,
            format!("http://localhost:{port}/v1/completions")
        );
        assert_eq!(serving.summary.completed, 5);
        assert!(serving
            .requests
            .iter()
            .all(|r| r.output_tokens == 3 && r.prompt_tokens == Some(4)));
    }
    // open loop: requests are sent when due, not when the last one ended
    let Outcome::Ok { record } = &lines[2].outcome else {
        unreachable!()
    };
    let starts: Vec<f64> = record
        .serving
        .as_ref()
        .unwrap()
        .requests
        .iter()
        .map(|r| r.start_ms)
        .collect();
    assert!(starts.windows(2).all(|w| w[1] >= w[0]), "{starts:?}");

    let file = scenario(
        tmp.path(),
        &format!(
            "[defaults]\nmodel = \"{}\"\nengine = \"openai\"\nurl = \"http://10.1.2.3:8000\"\n",
            smollm2().display()
        ),
    );
    let out = llamaperf()
        .arg("sweep")
        .arg(&file)
        .arg("--dry-run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.contains("s.toml:5:7") && err.contains("allow_remote = true"),
        "{err}"
    );
}

/// Writes `line` to the test output (in one write, as [`skipped`] does).
fn note(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("note: {line}\n").as_bytes());
}

/// Cores no other task is using now: the CPUs this process may use, less the load average
/// (rounded up), at least 1.
fn free_cores() -> (usize, f64) {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    ((cpus as f64 - load.ceil()).max(1.0) as usize, load)
}

#[test]
fn llama_server_on_smollm2_sweeps_concurrency_1_and_2() {
    let Some(binary) = std::env::var_os("LLAMAPERF_LLAMA_SERVER").map(PathBuf::from) else {
        return skipped(
            "llama-server on SmolLM2",
            "LLAMAPERF_LLAMA_SERVER is not set (scripts/build-llama-server.sh builds llama-server; \
             scripts/test.sh sets it)",
        );
    };
    assert!(
        binary.is_file(),
        "LLAMAPERF_LLAMA_SERVER={} is no file",
        binary.display()
    );
    let (cores, load) = free_cores();
    let cores = cores.min(2);
    note(&format!(
        "llama-server on SmolLM2: measured under cores = {cores}, load average {load:.2}, {} CPUs",
        std::thread::available_parallelism().map_or(1, usize::from)
    ));
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(
        tmp.path(),
        &format!(
            "[defaults]\nmodel = \"{}\"\nengine = \"openai\"\ncores = {cores}\nprompt_tokens = 16\n\
             gen_tokens = 8\nrequests = 4\nrequest_timeout_s = 120\ntimeout_s = 600\n\
             server_command = \"{} -m {{model}} --host 127.0.0.1 --port {{port}} -t {{threads}} -tb {{threads}} -c 512 -np 2\"\n\
             [matrix]\nconcurrency = [1, 2]\n",
            smollm2().display(),
            binary.display()
        ),
    );
    let lines = records(&out_dir);
    assert_eq!(lines.len(), 2);
    for line in &lines {
        let Outcome::Ok { record } = &line.outcome else {
            panic!("{:?}", line.outcome)
        };
        let serving = record.serving.as_ref().unwrap();
        assert_eq!(serving.summary.failed, 0, "{:?}", serving.requests);
        for r in &serving.requests {
            assert!(r.ttft_ms.is_some_and(|t| t > 0.0), "{r:?}");
            assert!(r.output_tokens > 0 && r.output_tokens <= 8, "{r:?}");
        }
        assert!(serving.summary.output_tok_s > 0.0);
        let server = serving.server.as_ref().unwrap();
        let pus = &line.spec.placement.pus;
        assert!(server.threads.len() > 1, "{:?}", server.threads);
        assert!(
            server
                .threads
                .iter()
                .all(|t| t.cpus.iter().all(|c| pus.contains(c))),
            "server threads {:?} outside the placement {pus:?}",
            server.threads
        );
        note(&format!(
            "llama-server on SmolLM2: {}: {:.1} output tok/s, TTFT p50 {:.1} ms, TPOT p50 {:?} ms",
            line.run_id(),
            serving.summary.output_tok_s,
            serving.summary.ttft_ms.unwrap().p50,
            serving.summary.tpot_ms.map(|p| p.p50)
        ));
    }
    let rows = summary(&out_dir);
    let concurrency: Vec<Option<usize>> = rows.iter().map(|r| r.concurrency).collect();
    assert_eq!(concurrency, [Some(1), Some(2)]);
}
