//! The report as one self-contained HTML file, for people who open neither Markdown nor CSV:
//! the Markdown report rendered (pulldown-cmark), every chart inlined as SVG, every table
//! sortable by a click on a column's header. Nothing is loaded from the network or from other
//! files.

use super::{canvas, Report, ReportError};
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};
use std::collections::HashMap;

/// The report's HTML file, in the output folder.
pub const HTML_FILE: &str = "report.html";

/// Styles: readable widths, tables that scroll sideways, a header that shows it sorts.
const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[data-order="asc"]::after { content: " \25B2"; }
th[data-order="desc"]::after { content: " \25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
svg { max-width: 100%; height: auto; display: block; }
code { background: #f3f3f3; padding: 0 0.2em; }
"#;

/// Sorting: a click on a header sorts its table by that column (numbers by value, the rest as
/// text), again the other way. `#sort=T:C:asc|desc` in the address sorts table T (0-based) by
/// column C when the page opens. Every table gets `data-sortable="ready"`.
const SCRIPT: &str = r#"
"use strict";
function cellKey(row, column) {
  const text = row.cells[column] ? row.cells[column].textContent.trim() : "";
  const number = parseFloat(text);
  return Number.isNaN(number) ? { text: text } : { number: number };
}
function compareKeys(a, b) {
  if ("number" in a && "number" in b) return a.number - b.number;
  if ("number" in a) return -1;
  if ("number" in b) return 1;
  return a.text.localeCompare(b.text);
}
function sortTable(table, column, order) {
  const body = table.tBodies[0];
  if (!body) return;
  const sign = order === "desc" ? -1 : 1;
  const rows = Array.from(body.rows);
  rows.sort((a, b) => sign * compareKeys(cellKey(a, column), cellKey(b, column)));
  rows.forEach((row) => body.appendChild(row));
  Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
    if (i === column) th.dataset.order = order; else delete th.dataset.order;
  });
}
const tables = Array.from(document.querySelectorAll("table"));
tables.forEach((table) => {
  if (!table.tHead) return;
  Array.from(table.tHead.rows[0].cells).forEach((th, column) => {
    th.title = "sort by this column";
    th.addEventListener("click", () => {
      sortTable(table, column, th.dataset.order === "asc" ? "desc" : "asc");
    });
  });
  table.dataset.sortable = "ready";
});
const wanted = /^#sort=(\d+):(\d+):(asc|desc)$/.exec(window.location.hash);
if (wanted && tables[Number(wanted[1])]) {
  sortTable(tables[Number(wanted[1])], Number(wanted[2]), wanted[3]);
}
"#;

/// The whole of `report.html`: `report`'s Markdown (rendered with SVG chart links, see
/// [`super::Formats::Html`]) as HTML, each chart's image replaced by the chart itself.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let mut charts = HashMap::new();
    for chart in &report.charts {
        charts.insert(format!("charts/{}.svg", chart.name), canvas::svg(chart)?);
    }
    let title = report
        .markdown
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# "))
        .unwrap_or("llamaperf report");
    let mut events = Vec::new();
    let mut in_chart = false;
    for event in Parser::new_ext(&report.markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) if charts.contains_key(&*dest_url) => {
                let svg = charts[&*dest_url].clone();
                events.push(Event::Html(CowStr::from(svg)));
                in_chart = true;
            }
            Event::End(TagEnd::Image) if in_chart => in_chart = false,
            // the image's alt text: the chart's title, already its heading
            _ if in_chart => {}
            event => events.push(event),
        }
    }
    let mut body = String::new();
    html::push_html(&mut body, events.into_iter());
    let mut escaped_title = String::new();
    html::push_html(
        &mut escaped_title,
        std::iter::once(Event::Text(title.into())),
    );
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{escaped_title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    ))
}
