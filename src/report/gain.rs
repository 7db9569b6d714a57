//! The software gain: for each configuration measured with several engines (every setting
//! equal but the engine), each engine's prefill tokens/s, decode tokens/s and TTFT over those
//! of a base engine, with the ratio's uncertainty from the repetitions' spread.
//!
//! Engines are the names results carry (`tuned`, `reference`, `llama.cpp`, ...): none is
//! special but the base, `tuned` unless another is chosen (or, without a `tuned` run, the
//! first engine measured).

use super::load::ResultSet;
use super::ReportError;
use crate::results::summary::SummaryRow;
use crate::scenario::Key;

/// The engine the gain is taken over when none is chosen and it was measured.
pub const DEFAULT_BASE: &str = "tuned";

/// The metrics of the gain: (summary.csv column, its coefficient of variation's column, as
/// the table names it).
pub const GAIN_METRICS: [(&str, &str, &str); 3] = [
    ("prefill_tok_s", "prefill_cv", "prefill tok/s"),
    ("decode_tok_s", "decode_cv", "decode tok/s"),
    ("ttft_ms", "ttft_cv", "TTFT ms"),
];

/// One metric of one engine on one configuration, against the base engine's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gain {
    /// The engine's mean, in the metric's unit.
    pub value: f64,
    /// The engine's mean over the base engine's mean (for TTFT below 1 is faster).
    pub ratio: f64,
    /// One standard deviation of the ratio, propagated from both means' coefficients of
    /// variation (`ratio * sqrt(cv² + cv_base²)`); `None` when a side has no repetition
    /// statistics.
    pub stddev: Option<f64>,
}

impl Gain {
    /// The gain of `row`'s metric `name` (coefficient of variation `cv`) over `base`'s.
    fn of(row: &SummaryRow, base: &SummaryRow, name: &str, cv: &str) -> Option<Gain> {
        let (value, base_value) = (row.get(name)?, base.get(name)?);
        if base_value <= 0.0 {
            return None;
        }
        let ratio = value / base_value;
        let stddev = match (row.get(cv), base.get(cv)) {
            (Some(a), Some(b)) => Some(ratio * (a * a + b * b).sqrt()),
            _ => None,
        };
        Some(Gain {
            value,
            ratio,
            stddev,
        })
    }
}

/// A geometric mean of ratios and how many ratios it is of.
pub type MeanRatio = (f64, usize);

/// One engine on one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GainRow {
    /// The configuration: the settings that vary among the table's rows, engine excepted
    /// (the model when none does).
    pub configuration: String,
    /// The engine.
    pub engine: String,
    /// The run's id.
    pub run_id: String,
    /// Per metric of [`GAIN_METRICS`], the engine's mean and its ratio to the base engine's.
    pub gains: [Option<Gain>; 3],
}

/// The software gain of a report's results.
#[derive(Debug, Clone, PartialEq)]
pub struct GainTable {
    /// The engine the ratios are taken over.
    pub base: String,
    /// Every engine measured: the base first, then the others in the order first measured.
    pub engines: Vec<String>,
    /// Per configuration measured with the base and another engine, the base's row then the
    /// others', in configuration order.
    pub rows: Vec<GainRow>,
    /// Configurations measured with several engines but not the base.
    pub without_base: usize,
}

impl GainTable {
    /// Per engine other than the base, the geometric mean of each metric's ratio over the
    /// configurations that have it, with how many those are.
    pub fn geometric_means(&self) -> Vec<(String, [Option<MeanRatio>; 3])> {
        self.engines[1..]
            .iter()
            .map(|engine| {
                let mut means = [None; 3];
                for (i, mean) in means.iter_mut().enumerate() {
                    let ratios: Vec<f64> = self
                        .rows
                        .iter()
                        .filter(|r| &r.engine == engine)
                        .filter_map(|r| r.gains[i].map(|g| g.ratio))
                        .collect();
                    if !ratios.is_empty() {
                        let log: f64 = ratios.iter().map(|r| r.ln()).sum::<f64>();
                        *mean = Some(((log / ratios.len() as f64).exp(), ratios.len()));
                    }
                }
                (engine.clone(), means)
            })
            .collect()
    }
}

/// A measured row of the run as a whole (a single instance, or the aggregate of several).
fn measured(row: &SummaryRow) -> bool {
    row.instance.is_none() && (row.status == "ok" || row.status == "aggregate")
}

/// The engines measured in `sets`, in the order first measured.
pub fn engines(sets: &[ResultSet]) -> Vec<String> {
    let mut engines: Vec<String> = Vec::new();
    for row in sets.iter().flat_map(|s| &s.rows).filter(|r| measured(r)) {
        if !engines.contains(&row.engine) {
            engines.push(row.engine.clone());
        }
    }
    engines
}

/// The run axes a configuration is made of: every one but the engine (and the settings its
/// name holds).
fn setting_keys() -> impl Iterator<Item = Key> {
    Key::ALL
        .into_iter()
        .filter(|k| k.is_axis() && *k != Key::Engine && !k.in_engine_label())
}

/// What a row's configuration is: its set (when sets are kept apart), host and every setting
/// but the engine.
type ConfigurationKey = (Option<usize>, String, Vec<String>);

/// A configuration and its measured rows, one per engine when well formed.
type Configuration<'a> = (ConfigurationKey, Vec<&'a SummaryRow>);

/// The measured rows of `sets` grouped by configuration, in order of first appearance; with
/// `by_set`, each set's configurations apart.
fn configurations(sets: &[ResultSet], by_set: bool) -> Vec<Configuration<'_>> {
    let mut configurations: Vec<Configuration<'_>> = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        for row in set.rows.iter().filter(|r| measured(r)) {
            let key = (
                by_set.then_some(i),
                row.host.clone(),
                setting_keys().map(|k| row.axis_value(k)).collect(),
            );
            match configurations.iter_mut().find(|c| c.0 == key) {
                Some(c) => c.1.push(row),
                None => configurations.push((key, vec![row])),
            }
        }
    }
    configurations
}

/// Whether an engine has two rows in one configuration (the same engine in several sets).
fn repeats_an_engine(configuration: &Configuration<'_>) -> bool {
    let rows = &configuration.1;
    rows.iter()
        .enumerate()
        .any(|(i, r)| rows[..i].iter().any(|o| o.engine == r.engine))
}

/// The software gain of `sets` over the engine `base` (by default [`DEFAULT_BASE`], else the
/// first engine measured); `None` when fewer than two engines were measured. Engines of
/// several sets are matched across them (a sweep per engine), unless a set repeats an engine
/// of another (before/after sets): then each set's configurations stay apart.
pub fn table(sets: &[ResultSet], base: Option<&str>) -> Result<Option<GainTable>, ReportError> {
    let mut engines = engines(sets);
    let base = match base {
        Some(b) if engines.iter().any(|e| e == b) => b.to_string(),
        Some(b) => {
            return Err(ReportError::GainBase {
                base: b.to_string(),
                engines: if engines.is_empty() {
                    "none".into()
                } else {
                    engines.join(", ")
                },
            })
        }
        None if engines.iter().any(|e| e == DEFAULT_BASE) => DEFAULT_BASE.to_string(),
        None => match engines.first() {
            Some(e) => e.clone(),
            None => return Ok(None),
        },
    };
    if engines.len() < 2 {
        return Ok(None);
    }
    engines.retain(|e| *e != base);
    engines.insert(0, base.clone());
    let mut configurations = configurations(sets, false);
    if configurations.iter().any(repeats_an_engine) {
        configurations = self::configurations(sets, true);
    }
    let several_engines = |rows: &[&SummaryRow]| rows.iter().any(|r| r.engine != rows[0].engine);
    let with_base = |rows: &[&SummaryRow]| rows.iter().any(|r| r.engine == base);
    let without_base = configurations
        .iter()
        .filter(|c| several_engines(&c.1) && !with_base(&c.1))
        .count();
    configurations.retain(|c| several_engines(&c.1) && with_base(&c.1));
    let label = labeller(sets, &configurations);
    let mut rows = Vec::new();
    for (key, members) in &configurations {
        let base_row = members.iter().find(|r| r.engine == base).copied();
        for engine in &engines {
            let (Some(row), Some(base_row)) =
                (members.iter().find(|r| &r.engine == engine), base_row)
            else {
                continue;
            };
            let gains = GAIN_METRICS.map(|(name, cv, _)| Gain::of(row, base_row, name, cv));
            rows.push(GainRow {
                configuration: label(key, row),
                engine: engine.clone(),
                run_id: row.run_id.clone(),
                gains,
            });
        }
    }
    Ok(Some(GainTable {
        base,
        engines,
        rows,
        without_base,
    }))
}

/// Names configurations by what varies among `configurations`: the set (of several kept
/// apart), the host, and each setting, as `name=value` (model and data type by their names
/// alone).
fn labeller<'a>(
    sets: &'a [ResultSet],
    configurations: &[Configuration<'_>],
) -> impl Fn(&ConfigurationKey, &SummaryRow) -> String + 'a {
    let keys: Vec<&ConfigurationKey> = configurations.iter().map(|c| &c.0).collect();
    let varies =
        |f: &dyn Fn(&ConfigurationKey) -> String| keys.windows(2).any(|w| f(w[0]) != f(w[1]));
    let several_sets = sets.len() > 1;
    let hosts = varies(&|k| k.1.clone());
    let settings: Vec<(usize, Key)> = setting_keys()
        .enumerate()
        .filter(|(i, _)| varies(&|k| k.2[*i].clone()))
        .collect();
    move |key, row| {
        let mut parts: Vec<String> = Vec::new();
        if let (true, Some(set)) = (several_sets, key.0) {
            parts.push(sets[set].label.clone());
        }
        if hosts {
            parts.push(format!("host={}", key.1));
        }
        for (i, k) in &settings {
            let value = &key.2[*i];
            parts.push(match k {
                Key::Model | Key::Dtype => value.clone(),
                Key::PromptTokens => format!("prompt={value}"),
                Key::GenTokens => format!("gen={value}"),
                k => format!("{}={value}", k.name()),
            });
        }
        if parts.is_empty() {
            row.model.clone()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture() -> Vec<ResultSet> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/tiny");
        super::super::load_sets(&[dir], &[]).expect("the fixture loads")
    }

    #[test]
    fn the_base_is_tuned_unless_chosen_and_the_ratios_divide_by_it() {
        let sets = fixture();
        let gain = table(&sets, None).unwrap().expect("two engines");
        assert_eq!(gain.base, "tuned");
        assert_eq!(gain.engines, ["tuned", "reference"]);
        assert_eq!(gain.rows.len(), 2, "one configuration has both engines");
        let (tuned, reference) = (&gain.rows[0], &gain.rows[1]);
        assert_eq!(
            (tuned.engine.as_str(), reference.engine.as_str()),
            ("tuned", "reference")
        );
        let decode = |r: &GainRow| r.gains[1].unwrap();
        assert_eq!(decode(tuned).ratio, 1.0);
        let want = decode(reference).value / decode(tuned).value;
        assert!((decode(reference).ratio - want).abs() < 1e-12);
        assert!(decode(reference).stddev.unwrap() > 0.0, "two repetitions");
        let means = gain.geometric_means();
        assert_eq!(means.len(), 1);
        assert!((means[0].1[1].unwrap().0 - want).abs() < 1e-12);

        let flipped = table(&sets, Some("reference")).unwrap().unwrap();
        assert_eq!(flipped.engines, ["reference", "tuned"]);
        let back = flipped.rows[1].gains[1].unwrap().ratio;
        assert!((back * want - 1.0).abs() < 1e-12, "the inverse ratio");
    }

    #[test]
    fn sets_of_one_engine_each_are_matched_across_and_before_after_sets_kept_apart() {
        let both = fixture().remove(0);
        let only = |engine: &str, label: &str| {
            let mut set = both.clone();
            set.label = label.into();
            set.rows.retain(|r| r.engine == engine);
            set
        };
        let split = [only("tuned", "ours"), only("reference", "candle")];
        let gain = table(&split, None).unwrap().expect("two engines");
        let configurations: Vec<&str> =
            gain.rows.iter().map(|r| r.configuration.as_str()).collect();
        assert_eq!(
            configurations,
            ["tiny", "tiny"],
            "one configuration, no set"
        );
        assert_eq!(gain.rows[1].engine, "reference");

        let mut after = both.clone();
        after.label = "after".into();
        let twice = [both, after];
        let gain = table(&twice, None).unwrap().unwrap();
        let configurations: Vec<&str> =
            gain.rows.iter().map(|r| r.configuration.as_str()).collect();
        assert_eq!(configurations, ["tiny", "tiny", "after", "after"]);
    }

    #[test]
    fn an_engine_not_measured_is_an_error_naming_those_that_were() {
        let err = table(&fixture(), Some("llama.cpp"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--gain-base llama.cpp") && err.contains("tuned, reference"),
            "{err}"
        );
    }
}
