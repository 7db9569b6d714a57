//! `llamaperf report`: charts and report.md from the committed fixture results folder
//! (`tests/fixtures/results/tiny`, a real sweep of the synthetic tiny model made with
//! `llamaperf sweep tests/fixtures/results/tiny/scenario.toml`: cores 1/2, batch 1/2, q8_0/f32,
//! a longer prompt, the reference engine, 2 instances, and two runs this 2-core machine
//! without SMT skipped).

use crate::util::{llamaperf, stderr_of};
use llamaperf::machine::environment::MachineInfo;
use llamaperf::planning::plan::PlanStatus;
use llamaperf::report::canvas::{Color, Mark};
use llamaperf::report::{charts, load_sets};
use llamaperf::results::ResultsDir;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The committed fixture.
pub(crate) fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/tiny")
}

/// A copy of the fixture named `name` in `parent` (the report writes into its folder).
fn copy_fixture(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in walk(dir) {
        out.insert(
            entry
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Decodes a PNG and checks it is 1200 x 800 and not blank: text and axes in black and grey,
/// and data in colour (an empty chart has axes but no coloured pixel).
fn assert_png_drawn(path: &Path) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 800), "{}", path.display());
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    let inked = pixels.iter().filter(|p| p.iter().any(|&c| c < 128)).count();
    let coloured = pixels
        .iter()
        .filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 80)
        .count();
    assert!(
        inked > 2000,
        "{} is nearly blank: {inked} dark pixels",
        path.display()
    );
    assert!(
        coloured > 100,
        "{} shows no data: {coloured} coloured pixels",
        path.display()
    );
}

/// Parses an SVG and checks it is a 1200 x 800 drawing with text and lines.
fn assert_svg_drawn(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("width"), Some("1200"));
    assert_eq!(root.attribute("height"), Some("800"));
    let count = |tag: &str| {
        doc.descendants()
            .filter(|n| n.tag_name().name() == tag)
            .count()
    };
    assert!(count("text") > 5, "{} has no labels", path.display());
    assert!(
        count("polyline") + count("rect") + count("line") > 5,
        "{} draws nothing",
        path.display()
    );
}

/// Charts the fixture's data varies along.
const FIXTURE_CHARTS: [&str; 9] = [
    "scaling",
    "latency-throughput",
    "ttft-prompt",
    "ttft-batch",
    "compare-instances",
    "compare-engine",
    "compare-dtype",
    "roofline",
    "token-latency",
];

#[test]
fn the_fixture_gives_every_chart_in_png_and_svg_and_a_report_of_every_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture(tmp.path(), "tiny");
    let before = files(&dir);
    let out = llamaperf()
        .args(["report", "--format", "both"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = dir.join("report.md");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        report.display().to_string()
    );
    let mut expected = before.clone();
    expected.insert("report.md".into());
    for chart in FIXTURE_CHARTS {
        for ext in ["png", "svg"] {
            expected.insert(format!("charts/{chart}.{ext}"));
        }
    }
    assert_eq!(files(&dir), expected);
    for chart in FIXTURE_CHARTS {
        assert_png_drawn(&dir.join(format!("charts/{chart}.png")));
        assert_svg_drawn(&dir.join(format!("charts/{chart}.svg")));
    }
    for file in &before {
        assert_eq!(
            std::fs::read(dir.join(file)).unwrap(),
            std::fs::read(fixture().join(file)).unwrap(),
            "report changed {file}"
        );
    }

    let md = std::fs::read_to_string(&report).unwrap();
    let results = ResultsDir::read(&fixture()).unwrap();
    let mut skipped = 0;
    for run in &results.plan().runs {
        assert!(md.contains(&format!("`{}`", run.id)), "{} missing", run.id);
        if let PlanStatus::Skipped { reason } = &run.status {
            assert!(
                md.contains(reason.as_str()),
                "skip reason '{reason}' missing"
            );
            skipped += 1;
        }
    }
    assert_eq!(skipped, 2, "the fixture skips SMT on and 4 cores");
    for chart in FIXTURE_CHARTS {
        assert!(
            md.contains(&format!("](charts/{chart}.png)")),
            "{chart} not embedded"
        );
    }
    for section in [
        "## Machine",
        "## Runs",
        "## Noisy runs and outliers",
        "## Skipped, failed and missing runs",
        "## Charts",
        "## Files",
    ] {
        assert!(md.contains(section), "{section} missing");
    }
    assert!(md.contains(" ± "), "values carry their standard deviation");
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let outs = [tmp.path().join("a"), tmp.path().join("b")];
    for out in &outs {
        let run = llamaperf()
            .args(["report", "--format", "both"])
            .arg(fixture())
            .arg("--out")
            .arg(out)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", stderr_of(&run));
    }
    let (a, b) = (files(&outs[0]), files(&outs[1]));
    assert_eq!(a, b);
    assert_eq!(a.len(), 1 + 2 * FIXTURE_CHARTS.len());
    for f in &a {
        assert_eq!(
            std::fs::read(outs[0].join(f)).unwrap(),
            std::fs::read(outs[1].join(f)).unwrap(),
            "{f} differs between two reports of the same folder"
        );
    }
}

/// A results folder with only the fixture's first run, written by the results module itself.
fn single_run_folder(path: &Path) {
    let source = ResultsDir::read(&fixture()).unwrap();
    let mut plan = source.plan().clone();
    let mut run = plan.runs[0].clone();
    run.index = 0;
    plan.runs = vec![run.clone()];
    let machine: MachineInfo =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("machine.json")).unwrap())
            .unwrap();
    let scenario = std::fs::read_to_string(fixture().join("scenario.toml")).unwrap();
    let mut dir =
        ResultsDir::create(path, &scenario, &machine, &plan, source.calibration()).unwrap();
    let lines = source
        .records()
        .iter()
        .filter(|r| r.run_id() == run.id)
        .cloned()
        .map(|mut r| {
            r.index = 0;
            r
        })
        .collect();
    dir.record_run(lines).unwrap();
}

#[test]
fn a_single_run_gets_only_charts_with_something_to_show() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("single");
    single_run_folder(&dir);
    let out = llamaperf().arg("report").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let written: BTreeSet<String> = files(&dir.join("charts"));
    assert_eq!(
        written,
        BTreeSet::from(["roofline.png".to_string(), "token-latency.png".to_string()])
    );
    for chart in &written {
        assert_png_drawn(&dir.join("charts").join(chart));
    }
    let sets = load_sets(std::slice::from_ref(&dir), &[]).unwrap();
    for chart in charts(&sets).0 {
        for panel in &chart.panels {
            let series = panel
                .marks
                .iter()
                .filter(|m| match m {
                    Mark::Line {
                        points,
                        color: Color::Series(_),
                        ..
                    } => !points.is_empty(),
                    Mark::Bar { .. } => true,
                    _ => false,
                })
                .count();
            assert!(
                series >= 1,
                "{}: panel '{}' is empty",
                chart.name,
                panel.title
            );
        }
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("None: every planned run was measured."));
    assert!(md.contains("- scaling: no configuration was measured on two or more core counts"));
}

#[test]
fn several_folders_are_overlaid_under_their_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let before = copy_fixture(&tmp.path().join("x"), "tiny");
    let after = copy_fixture(&tmp.path().join("y"), "tiny");
    let out_dir = tmp.path().join("both");
    let out = llamaperf()
        .arg("report")
        .args([&before, &after])
        .args(["--label", "before", "--label", "after", "--format", "svg"])
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let charts = files(&out_dir.join("charts"));
    assert!(charts.contains("compare-results.svg"), "{charts:?}");
    assert!(charts.iter().all(|c| c.ends_with(".svg")));
    assert_svg_drawn(&out_dir.join("charts/compare-results.svg"));
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("| results |"), "the runs table names the set");
    assert!(md.contains("| before |") && md.contains("| after |"));
    assert!(md.contains(&format!("`{}/runs.jsonl`", before.display())));
}

#[test]
fn bad_report_arguments_are_input_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let a = copy_fixture(&tmp.path().join("x"), "tiny");
    let b = copy_fixture(&tmp.path().join("y"), "tiny");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (vec![a.as_os_str(), b.as_os_str()], "needs --out DIR"),
        (
            vec![
                a.as_os_str(),
                b.as_os_str(),
                "--out".as_ref(),
                tmp.path().as_os_str(),
            ],
            "both called 'tiny': name them with --label",
        ),
        (
            vec![
                a.as_os_str(),
                b.as_os_str(),
                "--out".as_ref(),
                tmp.path().as_os_str(),
                "--label".as_ref(),
                "one".as_ref(),
            ],
            "1 --label values for 2 results folders",
        ),
        (
            vec![tmp.path().as_os_str()],
            "is not a llamaperf results folder",
        ),
        (
            vec![a.as_os_str(), "--format".as_ref(), "jpg".as_ref()],
            "allowed are png, svg, both",
        ),
    ];
    for (args, message) in cases {
        let out = llamaperf().arg("report").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(message),
            "{args:?}: {}",
            stderr_of(&out)
        );
        assert!(!a.join("report.md").exists(), "{args:?} wrote a report");
    }
}

#[test]
fn runs_an_interrupted_sweep_has_not_recorded_are_listed_as_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fixture(tmp.path(), "cut");
    let runs = std::fs::read_to_string(dir.join("runs.jsonl")).unwrap();
    let first = runs.lines().next().unwrap();
    std::fs::write(dir.join("runs.jsonl"), format!("{first}\n{{\"schema_vers")).unwrap();
    let out = llamaperf().arg("report").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let missing = md.lines().filter(|l| l.contains("| missing |")).count();
    assert_eq!(missing, 10, "11 planned runs, 1 recorded");
    assert!(md.contains(&format!("llamaperf sweep --resume {}", dir.display())));
    let written = files(&dir.join("charts"));
    assert!(written.contains("token-latency.png") && !written.contains("scaling.png"));
}

/// The report of the committed fixtures is, byte for byte, the one committed in
/// `tests/fixtures/report-golden` (its README says how it was made).
#[test]
fn the_fixtures_report_matches_the_committed_bytes() {
    use sha2::{Digest, Sha256};
    // the report names its input folders as given: relative, from the repository root
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let golden = root.join("tests/fixtures/report-golden");
    let results = Path::new("tests/fixtures/results");
    let tmp = tempfile::tempdir().unwrap();
    let sets: [(&str, Vec<&str>); 2] = [
        ("tiny", vec!["tiny"]),
        (
            "ab",
            vec![
                "ci-smoke-a",
                "ci-smoke-b",
                "--label",
                "base",
                "--label",
                "candidate",
            ],
        ),
    ];
    for (set, args) in sets {
        let out = tmp.path().join(set);
        let dirs = args.iter().map(|a| match *a {
            "tiny" | "ci-smoke-a" | "ci-smoke-b" => results.join(a).into_os_string(),
            other => other.into(),
        });
        let done = llamaperf()
            .current_dir(&root)
            .arg("report")
            .args(dirs)
            .arg("--out")
            .arg(&out)
            .args(["--format", "both"])
            .output()
            .unwrap();
        assert!(done.status.success(), "{}", stderr_of(&done));
        let expected = golden.join(set);
        let mut written = files(&out);
        for name in files(&expected) {
            let want = std::fs::read(expected.join(&name)).unwrap();
            if name.ends_with("png.sha256") {
                for line in String::from_utf8(want).unwrap().lines() {
                    let (hash, png) = line.split_once("  ").expect("sha256sum format");
                    let png = format!("charts/{png}");
                    let bytes = std::fs::read(out.join(&png)).unwrap();
                    let got: String = Sha256::digest(&bytes)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    assert_eq!(got, hash, "{set}/{png} differs from the committed chart");
                    written.remove(&png);
                }
                continue;
            }
            let got = std::fs::read(out.join(&name))
                .unwrap_or_else(|e| panic!("{set}/{name} was not written: {e}"));
            assert!(
                got == want,
                "{set}/{name} differs from the committed report"
            );
            written.remove(&name);
        }
        assert!(
            written.is_empty(),
            "{set}: files not in the golden report: {written:?}"
        );
    }
}
