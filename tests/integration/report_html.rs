//! `report --format html`: one self-contained file, opened in a real headless browser
//! (Chromium from Debian's packages, installed by scripts/setup.sh): no console errors, its
//! tables sortable, its charts in the DOM; a screenshot is kept in the test's output folder.

use crate::report::fixture;
use crate::util::{llamaperf, skipped, stderr_of};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Charts the fixture draws (see report.rs).
const FIXTURE_CHARTS: usize = 9;

/// `report --format html` of the fixture into `out`; the file's text.
fn html_report(out: &Path) -> String {
    let run = llamaperf()
        .arg("report")
        .arg(fixture())
        .args(["--format", "html", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr_of(&run));
    let path = out.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        path.display().to_string()
    );
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn the_html_report_is_one_file_with_every_chart_inlined() {
    let tmp = tempfile::tempdir().unwrap();
    let html = html_report(tmp.path());
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["report.html"], "no chart files, no report.md");
    assert_eq!(html.matches("<svg").count(), FIXTURE_CHARTS);
    for outside in [" src=", "<link", "@import", "url(", "<img"] {
        assert!(
            !html.contains(outside),
            "loads something outside: {outside}"
        );
    }
    assert!(html.contains("<title>llamaperf report: report-fixture</title>"));
    assert!(
        html.contains("<h2>Machine</h2>")
            && html.contains("<h2>Skipped, failed and missing runs</h2>")
    );
}

/// Chromium's binary, if installed.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .map(|name| {
            Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
        })
        .filter_map(Result::ok)
        .find(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// Headless Chromium with its own profile folder, as root in a container needs it.
fn headless(browser: &Path, profile: &Path) -> Command {
    let mut command = Command::new(browser);
    command
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// What headless Chromium made of `page` (with `fragment` after its address): the DOM after
/// its scripts ran, and the messages its pages logged to the console.
fn open(browser: &Path, page: &Path, fragment: &str, profile: &Path) -> (String, Vec<String>) {
    let out = headless(browser, profile)
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}{fragment}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let console = stderr_of(&out)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// The `index`th table of `dom`, from its opening tag's attributes to its end.
fn table(dom: &str, index: usize) -> &str {
    let table = dom.split("<table").nth(index + 1).unwrap();
    table.split("</table>").next().unwrap()
}

/// Where the header `name` is among the `index`th table's columns.
fn header(dom: &str, index: usize, name: &str) -> usize {
    let head = table(dom, index).split("</thead>").next().unwrap();
    head.split("<th")
        .skip(1)
        .position(|th| th.split_once('>').unwrap().1.starts_with(name))
        .unwrap_or_else(|| panic!("no column {name}: {head}"))
}

/// The text of column `column` of every body row of the `index`th table of `dom`.
fn column(dom: &str, index: usize, column: usize) -> Vec<String> {
    let body = table(dom, index).split("<tbody>").nth(1).unwrap();
    body.split("<tr")
        .skip(1)
        .map(|row| {
            let cell = row.split("<td").nth(column + 1).unwrap();
            let text = cell
                .split_once('>')
                .unwrap()
                .1
                .split("</td>")
                .next()
                .unwrap();
            text.trim().to_string()
        })
        .collect()
}

#[test]
fn chromium_opens_the_html_report_without_errors_and_sorts_its_tables() {
    let Some(browser) = chromium() else {
        skipped(
            "chromium_opens_the_html_report_without_errors_and_sorts_its_tables",
            "no chromium (scripts/setup.sh installs Debian's chromium)",
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let html = html_report(tmp.path());
    let page = tmp.path().join("report.html");
    let profile = tmp.path().join("profile");

    // the runs table (the second) sorted by TTFT, slowest first
    let ttft_column = header(&html, 1, "TTFT ms");
    let fragment = format!("#sort=1:{ttft_column}:desc");
    let (dom, console) = open(&browser, &page, &fragment, &profile);
    assert!(console.is_empty(), "console messages: {console:#?}");
    let tables = html.matches("<table").count();
    assert!(tables >= 6, "{tables} tables");
    assert_eq!(
        dom.matches("data-sortable=\"ready\"").count(),
        tables,
        "every table sorts"
    );
    assert_eq!(dom.matches("<svg").count(), FIXTURE_CHARTS);
    let ttft: Vec<f64> = column(&dom, 1, ttft_column)
        .iter()
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(ttft.len() >= 10, "{ttft:?}");
    assert!(
        ttft.windows(2).all(|w| w[0] >= w[1]),
        "sorted slowest first: {ttft:?}"
    );
    assert_ne!(
        column(&html, 1, ttft_column),
        column(&dom, 1, ttft_column),
        "the page's own order differs"
    );

    // the console check sees an error where there is one
    let broken = tmp.path().join("broken.html");
    std::fs::write(
        &broken,
        html.replace("</body>", "<script>notAFunction();</script></body>"),
    )
    .unwrap();
    let (_, console) = open(&browser, &broken, "", &profile);
    assert!(
        console
            .iter()
            .any(|l| l.contains("notAFunction is not defined")),
        "{console:#?}"
    );

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(&browser, &profile)
        .arg("--window-size=1280,2400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let bytes = std::fs::read(&shot).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
    eprintln!("screenshot: {}", shot.display());
}
