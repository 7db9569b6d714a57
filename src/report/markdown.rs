//! `report.md`: the machine, one table row per run (value ± stddev, like llama-bench's
//! Markdown), noisy runs and outliers, skipped and failed runs with their reasons, the charts,
//! and the files they came from.

use super::axes::Axis;
use super::canvas::{number, Chart};
use super::gain::{Gain, GainTable, GAIN_METRICS};
use super::load::ResultSet;
use super::outliers::RunOutliers;
use super::Formats;
use crate::results::metrics::CONTENDED_PCT;
use crate::results::summary::{SummaryRow, NOISY_CV};
use crate::scenario::Key;
use std::collections::BTreeSet;
use std::fmt::Write;

/// What the Markdown is made from.
pub struct ReportInput<'a> {
    /// The results sets, in the order given.
    pub sets: &'a [ResultSet],
    /// The charts drawn.
    pub charts: &'a [Chart],
    /// Charts not drawn, with why.
    pub not_drawn: &'a [(&'static str, &'static str)],
    /// Outliers and warm-up per run.
    pub outliers: &'a [RunOutliers],
    /// Image formats written.
    pub formats: Formats,
    /// How each set's folder is named in links (relative to the report where possible).
    pub set_paths: &'a [String],
    /// The software gain, when several engines were measured.
    pub gain: Option<&'a GainTable>,
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `mean ± stddev` where the coefficient of variation is known.
fn pm(mean: Option<f64>, cv: Option<f64>) -> String {
    match (mean, cv) {
        (Some(m), Some(cv)) => format!("{} ± {}", number(m), number(m * cv)),
        (Some(m), None) => number(m),
        (None, _) => String::new(),
    }
}

fn with_pct(value: Option<f64>, pct: Option<f64>) -> String {
    match (value, pct) {
        (Some(v), Some(p)) => format!("{} ({}%)", number(v), number(p)),
        (Some(v), None) => number(v),
        (None, _) => String::new(),
    }
}

/// Decode GB/s with its roofline share, and with a read probe its share of the reads after
/// its steps: "26.1 (71%; 85% of reads)".
fn decode_gb_s_cell(r: &SummaryRow) -> String {
    let cell = with_pct(r.get("decode_gb_s"), r.get("decode_pct_roofline"));
    match (r.get("decode_pct_read"), cell.strip_suffix(')')) {
        (Some(read), Some(open)) => format!("{open}; {}% of reads)", number(read)),
        (Some(read), None) if !cell.is_empty() => format!("{cell} ({}% of reads)", number(read)),
        _ => cell,
    }
}

/// Prefill GFLOP/s with its share of the GEMM ceiling, and with a calibrated ISA peak its
/// share of that hard roof: "457.1 (126%; 49% of peak)".
fn prefill_gflop_s_cell(r: &SummaryRow) -> String {
    let cell = with_pct(r.get("prefill_gflop_s"), r.get("prefill_pct_roofline"));
    match (r.get("prefill_pct_peak"), cell.strip_suffix(')')) {
        (Some(peak), Some(open)) => format!("{open}; {}% of peak)", number(peak)),
        (Some(peak), None) if !cell.is_empty() => format!("{cell} ({}% of peak)", number(peak)),
        _ => cell,
    }
}

fn machine_section(out: &mut String, sets: &[ResultSet]) {
    out.push_str("## Machine\n\n|  |");
    for s in sets {
        let _ = write!(out, " {} |", cell(&s.label));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(sets.len()));
    out.push('\n');
    type Field = (&'static str, fn(&ResultSet) -> String);
    let fields: [Field; 11] = [
        ("CPU", |s| s.machine.cpu_model.clone()),
        ("SIMD", |s| s.machine.cpu_flags.join(" ")),
        ("cores / PUs", |s| {
            format!(
                "{} / {} ({} package{})",
                s.machine.topology.cores.len(),
                s.machine.topology.allowed_pus.len(),
                s.machine.topology.packages,
                if s.machine.topology.packages == 1 {
                    ""
                } else {
                    "s"
                }
            )
        }),
        ("NUMA nodes (NPS)", |s| {
            format!(
                "{} ({})",
                s.machine.topology.numa_nodes.len(),
                s.machine.nps.map_or("mixed".into(), |n| format!("NPS{n}"))
            )
        }),
        ("SMT", |s| {
            if s.machine.smt_active {
                "active"
            } else {
                "off"
            }
            .to_string()
        }),
        ("memory", |s| {
            format!(
                "{:.1} GiB",
                s.machine.mem_total_bytes as f64 / (1u64 << 30) as f64
            )
        }),
        ("kernel", |s| s.machine.kernel.clone()),
        ("governor / THP", |s| {
            format!(
                "{} / {}",
                s.machine.governor, s.machine.transparent_hugepages
            )
        }),
        ("llamaperf", |s| {
            format!(
                "{} ({}), candle {}",
                s.machine.llamaperf_version, s.machine.git_commit, s.machine.candle_version
            )
        }),
        ("read bandwidth", |s| {
            s.calibration.as_ref().map_or("not calibrated".into(), |c| {
                c.bandwidth
                    .iter()
                    .filter(|b| b.scope == "machine")
                    .map(|b| {
                        let smt = if b.smt { " with SMT" } else { "" };
                        format!("{} GB/s on {} cores{smt}", number(b.read_gb_s), b.cores)
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        }),
        ("GEMM", |s| {
            s.calibration.as_ref().map_or("not calibrated".into(), |c| {
                c.compute
                    .iter()
                    .map(|p| {
                        let rates: Vec<String> = p
                            .results
                            .iter()
                            .map(|r| format!("{} {}", r.dtype, number(r.gflop_s)))
                            .collect();
                        let smt = if p.smt { " with SMT" } else { "" };
                        format!("{} GFLOP/s on {} cores{smt}", rates.join(", "), p.cores)
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        }),
    ];
    for (name, value) in fields {
        let _ = write!(out, "| {name} |");
        for s in sets {
            let _ = write!(out, " {} |", cell(&value(s)));
        }
        out.push('\n');
    }
    out.push('\n');
}

fn runs_section(out: &mut String, input: &ReportInput<'_>) {
    let rows: Vec<(&str, &SummaryRow)> = input
        .sets
        .iter()
        .flat_map(|s| s.rows.iter().map(move |r| (s.label.as_str(), r)))
        .collect();
    let varies = |key: Key| {
        rows.windows(2)
            .any(|w| w[0].1.axis_value(key) != w[1].1.axis_value(key))
    };
    // the run's axes (the one Axis list), each shown where it varies; the model always
    let columns: Vec<Key> = Axis::all()
        .filter_map(|axis| match axis {
            Axis::Run(key) => Some(key),
            Axis::Set | Axis::Host => None,
        })
        .filter(|&key| key == Key::Model || varies(key))
        .collect();
    let several = input.sets.len() > 1;
    let instances = rows.iter().any(|(_, r)| r.instance.is_some());
    out.push_str(
        "## Runs\n\nOne row per run (per instance and their aggregate for parallel instances), in \
         plan order; values are the mean over the measured repetitions ± their sample \
         standard deviation; roofline shares in parentheses (and, for runs with a read probe, \
         decode's median share of a pure read after each step).\n\n|",
    );
    let mut headers: Vec<&str> = Vec::new();
    if several {
        headers.push("results");
    }
    headers.extend(columns.iter().map(|&key| Axis::Run(key).name()));
    if instances {
        headers.push("instance");
    }
    headers.extend([
        "status",
        "threads",
        "TTFT ms",
        "TPOT p50 ms",
        "TPOT p99 ms",
        "prefill tok/s",
        "decode tok/s",
        "output tok/s",
        "decode GB/s",
        "prefill GFLOP/s",
        "flags",
        "run id",
    ]);
    for h in &headers {
        let _ = write!(out, " {h} |");
    }
    out.push_str("\n|");
    for h in &headers {
        out.push_str(if h.contains("ms") || h.contains("/s") || *h == "threads" {
            "---:|"
        } else {
            "---|"
        });
    }
    out.push('\n');
    for (set, r) in &rows {
        let mut cells: Vec<String> = Vec::new();
        if several {
            cells.push(set.to_string());
        }
        cells.extend(columns.iter().map(|&key| r.axis_value(key)));
        if instances {
            cells.push(r.instance.map_or(String::new(), |i| i.to_string()));
        }
        let mut flags = Vec::new();
        if r.noisy == Some(true) {
            flags.push("noisy".to_string());
        }
        if let Some(pct) = r.get("contention_pct").filter(|p| *p > CONTENDED_PCT) {
            flags.push(format!("contended ({}% to others)", number(pct)));
        }
        if r.in_cache == Some(true) {
            flags.push("in cache".to_string());
        }
        if let Some(o) = input
            .outliers
            .iter()
            .find(|o| o.set == *set && o.run_id == r.run_id && o.instance == r.instance)
            .map(|o| &o.steps)
        {
            if o.outliers > 0 {
                flags.push(format!("{} outliers", o.outliers));
            }
            if o.first_step_ratio >= super::outliers::WARMUP_RATIO {
                flags.push("warm-up".into());
            }
        }
        cells.extend([
            r.status.clone(),
            r.threads.map_or(String::new(), |t| t.to_string()),
            pm(r.get("ttft_ms"), r.get("ttft_cv")),
            r.get("tpot_p50_ms").map_or(String::new(), number),
            r.get("tpot_p99_ms").map_or(String::new(), number),
            pm(r.get("prefill_tok_s"), r.get("prefill_cv")),
            pm(r.get("decode_tok_s"), r.get("decode_cv")),
            r.get("output_tok_s").map_or(String::new(), number),
            decode_gb_s_cell(r),
            prefill_gflop_s_cell(r),
            flags.join(", "),
            format!("`{}`", r.run_id),
        ]);
        out.push('|');
        for c in cells {
            let _ = write!(out, " {} |", cell(&c));
        }
        out.push('\n');
    }
    out.push('\n');
    if rows.iter().any(|(_, r)| r.in_cache == Some(true)) {
        out.push_str(
            "In cache: the weights and KV cache a decode step reads fit in the L3 of the run's \
             cores, so its decode GB/s is not bounded by memory bandwidth and is given without \
             a share of the read ceiling.\n\n",
        );
    }
}

/// A ratio with its standard deviation: "0.85 ± 0.02".
fn ratio_cell(gain: Option<Gain>) -> String {
    match gain {
        Some(Gain {
            ratio,
            stddev: Some(sd),
            ..
        }) => format!("{} ± {}", number(ratio), number(sd)),
        Some(g) => number(g.ratio),
        None => String::new(),
    }
}

fn gain_section(out: &mut String, gain: &GainTable) {
    let _ = writeln!(
        out,
        "## Software gain\n\nEngines measured: {}. Per configuration (every setting equal but \
         the engine), each engine's mean and its ratio to the base engine `{}`'s (x base, ± one \
         standard deviation propagated from both runs' coefficients of variation over \
         repetitions): above 1 is faster for tokens/s, below 1 is faster for TTFT.\n",
        gain.engines
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", "),
        gain.base
    );
    let mut headers = vec!["configuration".to_string(), "engine".to_string()];
    for (_, _, name) in GAIN_METRICS {
        headers.push(name.to_string());
        headers.push(format!("{} x base", name.split(' ').next().unwrap_or(name)));
    }
    out.push('|');
    for h in &headers {
        let _ = write!(out, " {h} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---:|".repeat(2 * GAIN_METRICS.len()));
    out.push('\n');
    for row in &gain.rows {
        let _ = write!(
            out,
            "| {} | {} |",
            cell(&row.configuration),
            cell(&row.engine)
        );
        for g in row.gains {
            let ratio = if row.engine == gain.base {
                "base".to_string()
            } else {
                ratio_cell(g)
            };
            let _ = write!(
                out,
                " {} | {ratio} |",
                g.map_or(String::new(), |g| number(g.value))
            );
        }
        out.push('\n');
    }
    out.push('\n');
    if gain.rows.is_empty() {
        out.push_str("No configuration was measured with the base and another engine.\n\n");
    } else {
        out.push_str(
            "Over all configurations (geometric mean of the ratios, configurations counted):\n\n\
             | engine | prefill x base | decode x base | TTFT x base |\n|---|---:|---:|---:|\n",
        );
        for (engine, means) in gain.geometric_means() {
            let _ = write!(out, "| {} |", cell(&engine));
            for mean in means {
                let _ = write!(
                    out,
                    " {} |",
                    mean.map_or(String::new(), |(m, n)| format!("{} ({n})", number(m)))
                );
            }
            out.push('\n');
        }
        out.push('\n');
    }
    if gain.without_base > 0 {
        let _ = writeln!(
            out,
            "{} configuration{} measured with several engines but not `{}` {} not listed; \
             choose another base with `--gain-base ENGINE`.\n",
            gain.without_base,
            if gain.without_base == 1 { "" } else { "s" },
            gain.base,
            if gain.without_base == 1 { "is" } else { "are" }
        );
    }
}

fn noise_section(out: &mut String, input: &ReportInput<'_>) {
    out.push_str("## Noisy runs and outliers\n\n");
    let noisy: Vec<(&str, &SummaryRow)> = input
        .sets
        .iter()
        .flat_map(|s| {
            s.rows
                .iter()
                .filter(|r| r.noisy == Some(true))
                .map(move |r| (s.label.as_str(), r))
        })
        .collect();
    let _ = writeln!(
        out,
        "Noisy: a coefficient of variation (stddev / mean over repetitions) above {}% in TTFT, \
         prefill or decode throughput; repeat such runs, or give them more repetitions.\n",
        number(100.0 * NOISY_CV)
    );
    if noisy.is_empty() {
        out.push_str("No run is noisy.\n\n");
    } else {
        out.push_str(
            "| run | instance | TTFT CV | prefill CV | decode CV |\n|---|---|---:|---:|---:|\n",
        );
        let pct = |cv: Option<f64>| cv.map_or(String::new(), |c| format!("{}%", number(100.0 * c)));
        for (set, r) in noisy {
            let name = if input.sets.len() > 1 {
                format!("{set}: `{}`", r.run_id)
            } else {
                format!("`{}`", r.run_id)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&name),
                r.instance.map_or(String::new(), |i| i.to_string()),
                pct(r.get("ttft_cv")),
                pct(r.get("prefill_cv")),
                pct(r.get("decode_cv"))
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Outliers: decode steps whose modified Z-score (0.6745 x |step - median| / median \
         absolute deviation) exceeds {} and that are at least {}% off the median; warm-up: a \
         first decode step at least {}x the median (from `tokens.csv`).\n",
        number(super::outliers::OUTLIER_Z),
        number(100.0 * super::outliers::OUTLIER_DISTANCE),
        number(super::outliers::WARMUP_RATIO)
    );
    let notable: Vec<&RunOutliers> = input
        .outliers
        .iter()
        .filter(|o| o.steps.notable())
        .collect();
    if notable.is_empty() {
        out.push_str("No run has outlying decode steps or a slow first step.\n\n");
        return;
    }
    out.push_str(
        "| run | instance | decode steps | median ms | outliers | slowest ms | first step / median |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for RunOutliers {
        set,
        run_id,
        instance,
        steps: o,
    } in notable
    {
        let name = if input.sets.len() > 1 {
            format!("{set}: `{run_id}`")
        } else {
            format!("`{run_id}`")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {}x |",
            cell(&name),
            instance.map_or(String::new(), |i| i.to_string()),
            o.samples,
            number(o.median_ms),
            o.outliers,
            number(o.max_ms),
            number(o.first_step_ratio)
        );
    }
    out.push('\n');
}

/// A run that was not measured: its set, id, instance, status and why.
type Unmeasured<'a> = (&'a str, &'a str, Option<usize>, &'a str, String);

fn skipped_section(out: &mut String, sets: &[ResultSet]) {
    out.push_str("## Skipped, failed and missing runs\n\n");
    let mut rows: Vec<Unmeasured<'_>> = Vec::new();
    for s in sets {
        rows.extend(
            s.rows
                .iter()
                .filter(|r| r.status == "skipped" || r.status == "failed")
                .map(|r| {
                    (
                        s.label.as_str(),
                        r.run_id.as_str(),
                        r.instance,
                        r.status.as_str(),
                        r.reason.clone(),
                    )
                }),
        );
        let recorded: BTreeSet<String> = s.records.iter().map(|r| r.run_id()).collect();
        rows.extend(
            s.plan
                .planned()
                .filter(|run| !recorded.contains(run.id.as_str()))
                .map(|run| {
                    (
                        s.label.as_str(),
                        run.id.as_str(),
                        None,
                        "missing",
                        format!(
                            "not recorded (an interrupted sweep): continue \
                             with llamaperf sweep --resume {}",
                            s.path.display()
                        ),
                    )
                }),
        );
    }
    if rows.is_empty() {
        out.push_str("None: every planned run was measured.\n\n");
        return;
    }
    let several = sets.len() > 1;
    out.push_str(if several {
        "| results | run | status | reason |\n|---|---|---|---|\n"
    } else {
        "| run | status | reason |\n|---|---|---|\n"
    });
    for (set, id, instance, status, reason) in rows {
        if several {
            let _ = write!(out, "| {} ", cell(set));
        }
        let _ = writeln!(
            out,
            "| `{}`{} | {status} | {} |",
            cell(id),
            instance.map_or(String::new(), |i| format!(" instance {i}")),
            cell(&reason)
        );
    }
    out.push('\n');
}

fn charts_section(out: &mut String, input: &ReportInput<'_>) {
    out.push_str("## Charts\n\n");
    for c in input.charts {
        let _ = writeln!(out, "### {}\n\n{}\n", c.title, c.about);
        let (image, link) = match input.formats {
            Formats::Png => ("png", None),
            Formats::Svg | Formats::Html => ("svg", None),
            Formats::Both => ("png", Some("svg")),
        };
        let _ = write!(out, "![{}](charts/{}.{image})", c.title, c.name);
        if let Some(ext) = link {
            let _ = write!(out, " ([SVG](charts/{}.{ext}))", c.name);
        }
        let sources: Vec<String> = c.sources.iter().map(|s| format!("`{s}`")).collect();
        let _ = writeln!(out, "\n\nData: {}.\n", sources.join(", "));
    }
    if !input.not_drawn.is_empty() {
        out.push_str(
            "Not drawn, because the data does not vary along their axes or is missing:\n\n",
        );
        for (name, why) in input.not_drawn {
            let _ = writeln!(out, "- {name}: {why}");
        }
        out.push('\n');
    }
}

fn files_section(out: &mut String, input: &ReportInput<'_>) {
    out.push_str("## Files\n\n");
    for (set, path) in input.sets.iter().zip(input.set_paths) {
        if input.sets.len() > 1 {
            let _ = writeln!(out, "{} (`{path}`):\n", cell(&set.label));
        }
        let files: [(&str, &str, bool); 7] = [
            ("scenario.toml", "the scenario as run", true),
            (
                "machine.json",
                "the machine and software (machine table)",
                true,
            ),
            (
                "plan.json",
                "every run, skipped ones with their reason",
                true,
            ),
            (
                "runs.jsonl",
                "every run's full record (the runs table and the charts)",
                true,
            ),
            ("summary.csv", "one row per run (the runs table)", true),
            (
                "tokens.csv",
                "per-step latencies (outliers, per-token latency chart)",
                !set.tokens.is_empty(),
            ),
            (
                "calibration.json",
                "the calibrated ceilings (roofline)",
                set.calibration.is_some(),
            ),
        ];
        for (file, what, _) in files.into_iter().filter(|f| f.2) {
            let shown = if path.is_empty() {
                file.to_string()
            } else {
                format!("{path}/{file}")
            };
            let _ = writeln!(out, "- `{shown}`: {what}");
        }
        out.push('\n');
    }
    if !input.charts.is_empty() && !input.formats.extensions().is_empty() {
        out.push_str("Charts (1200 x 800):\n\n");
        for c in input.charts {
            for ext in input.formats.extensions() {
                let _ = writeln!(out, "- `charts/{}.{ext}`", c.name);
            }
        }
        out.push('\n');
    }
}

/// The whole of `report.md`.
pub fn render(input: &ReportInput<'_>) -> String {
    let mut out = String::new();
    let mut scenarios: Vec<&str> = input
        .sets
        .iter()
        .map(|s| s.plan.scenario.as_str())
        .collect();
    scenarios.dedup();
    let _ = writeln!(out, "# llamaperf report: {}\n", scenarios.join(", "));
    for s in input.sets {
        let count = |status: &str| {
            s.rows
                .iter()
                .filter(|r| r.status == status && r.instance.is_none())
                .count()
        };
        let _ = writeln!(
            out,
            "- {}: {} runs measured, {} skipped, {} failed on {} ({})",
            cell(&s.label),
            count("ok") + count("aggregate"),
            count("skipped"),
            count("failed"),
            cell(&s.plan.machine),
            cell(&s.machine.cpu_model)
        );
    }
    out.push('\n');
    machine_section(&mut out, input.sets);
    runs_section(&mut out, input);
    if let Some(gain) = input.gain {
        gain_section(&mut out, gain);
    }
    noise_section(&mut out, input);
    skipped_section(&mut out, input.sets);
    charts_section(&mut out, input);
    files_section(&mut out, input);
    out
}
