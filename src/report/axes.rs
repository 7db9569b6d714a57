//! The axes a sweep varies, and grouping runs into series along one of them.

use super::runs::RunPoint;
use crate::model::source::dtype_label;
use crate::scenario::{Key, Value};
use std::collections::BTreeMap;
use std::fmt;

/// An axis of a sweep: what distinguishes one run (or one results set) from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Axis {
    /// The results set (when several are overlaid).
    Set,
    /// The machine the run ran on (merged folders of several hosts).
    Host,
    /// An axis of the scenario ([`Key::is_axis`]); `cores` counts the physical cores the run
    /// computed on over all instances, not the request.
    Run(Key),
}

/// The value of one axis for one run; numbers order numerically, results sets in the order
/// they were given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AxisValue {
    /// A count.
    Number(usize),
    /// A name.
    Text(String),
    /// A name that orders by its position.
    Ordered(usize, String),
}

impl fmt::Display for AxisValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxisValue::Number(n) => write!(f, "{n}"),
            AxisValue::Text(t) | AxisValue::Ordered(_, t) => f.write_str(t),
        }
    }
}

impl Axis {
    /// Every axis, in the order labels name them: the set, the host, then the scenario's axes
    /// in canonical order (torch's settings within the engine's).
    pub fn all() -> impl Iterator<Item = Axis> {
        [Axis::Set, Axis::Host].into_iter().chain(
            Key::ALL
                .into_iter()
                .filter(|k| k.is_axis() && !k.in_engine_label())
                .map(Axis::Run),
        )
    }

    /// The axis' name as labels and tables show it: the scenario's key, `prompt` and `gen`
    /// as in run ids, `results` for the set.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Set => "results",
            Axis::Host => "host",
            Axis::Run(Key::PromptTokens) => "prompt",
            Axis::Run(Key::GenTokens) => "gen",
            Axis::Run(key) => key.name(),
        }
    }

    /// The value of this axis for `p`.
    pub fn value(self, p: &RunPoint) -> AxisValue {
        let c = &p.config;
        let key = match self {
            Axis::Set => return AxisValue::Ordered(p.set_index, p.set.clone()),
            Axis::Host => return AxisValue::Text(p.host.clone()),
            Axis::Run(key) => key,
        };
        match key {
            Key::Cores => AxisValue::Number(p.cores),
            Key::Model => AxisValue::Text(c.model.clone()),
            Key::Dtype => AxisValue::Text(dtype_label(c.dtype)),
            Key::Engine => AxisValue::Text(c.engine_label()),
            Key::Smt => AxisValue::Text(c.smt.to_string()),
            Key::Placement => AxisValue::Text(c.placement.to_string()),
            Key::Memory => AxisValue::Text(c.memory.to_string()),
            Key::Nps => AxisValue::Text(c.nps.to_string()),
            Key::KvDtype => AxisValue::Text(c.kv_dtype.map_or("own".into(), |k| k.to_string())),
            // The counts (batch, prompt, gen, instances) and, should one be asked for, the
            // settings.
            key => match c.get(key) {
                Some(Value::Count(n)) => AxisValue::Number(n as usize),
                other => AxisValue::Text(format!("{other:?}")),
            },
        }
    }

    /// `value` as a reader sees it: names alone (`q8_0`), the rest as `axis=value`.
    pub fn label(self, value: &AxisValue) -> String {
        match self {
            Axis::Set | Axis::Run(Key::Model | Key::Dtype | Key::Engine) => value.to_string(),
            _ => format!("{}={value}", self.name()),
        }
    }

    /// The value of `p` on this axis as a number, for charts that plot along it.
    pub fn number(self, p: &RunPoint) -> Option<f64> {
        match self.value(p) {
            AxisValue::Number(n) => Some(n as f64),
            AxisValue::Text(_) | AxisValue::Ordered(..) => None,
        }
    }
}

/// The axes other than `except` on which `points` take more than one value.
pub fn varying(points: &[&RunPoint], except: &[Axis]) -> Vec<Axis> {
    Axis::all()
        .filter(|a| !except.contains(a))
        .filter(|a| {
            let mut values = points.iter().map(|p| a.value(p));
            let first = values.next();
            values.any(|v| Some(v) != first)
        })
        .collect()
}

/// Runs that differ only along one axis.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// The values of the axes that vary between series, as a reader sees them.
    pub label: String,
    /// The runs, ordered along the axis.
    pub points: Vec<&'a RunPoint>,
}

/// Groups `points` into series of runs equal on every axis but `along`; series are ordered by
/// their axis values, and labelled with the axes (other than `along`) that vary among `points`
/// (the model when none does).
pub fn series_along<'a>(points: &[&'a RunPoint], along: Axis) -> Vec<Series<'a>> {
    let others = varying(points, &[along]);
    let mut groups: BTreeMap<Vec<AxisValue>, Vec<&'a RunPoint>> = BTreeMap::new();
    for p in points {
        let key = Axis::all()
            .filter(|a| *a != along)
            .map(|a| a.value(p))
            .collect();
        groups.entry(key).or_default().push(p);
    }
    groups
        .into_values()
        .map(|mut members| {
            members.sort_by_key(|p| along.value(p));
            let first = members[0];
            let label = if others.is_empty() {
                first.config.model.clone()
            } else {
                others
                    .iter()
                    .map(|a| a.label(&a.value(first)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            Series {
                label,
                points: members,
            }
        })
        .collect()
}

/// Whether a series has two or more distinct values along `along`.
pub fn varies_along(series: &Series<'_>, along: Axis) -> bool {
    series
        .points
        .windows(2)
        .any(|w| along.value(w[0]) != along.value(w[1]))
}

/// Like [`series_along`], keeping only the series with two or more values along `along`,
/// labelled by the axes that vary among those.
pub fn series_varying_along<'a>(points: &[&'a RunPoint], along: Axis) -> Vec<Series<'a>> {
    let kept: Vec<&'a RunPoint> = series_along(points, along)
        .into_iter()
        .filter(|s| varies_along(s, along))
        .flat_map(|s| s.points)
        .collect();
    series_along(&kept, along)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::metrics::MetricValues;
    use crate::scenario::RunConfig;

    fn point(set: usize, batch: usize, cores: usize) -> RunPoint {
        RunPoint {
            set: format!("set{set}"),
            set_index: set,
            run_id: format!("{set}-{batch}-{cores}"),
            host: "lab-1".into(),
            config: RunConfig {
                model: "tiny".into(),
                batch,
                ..RunConfig::default()
            },
            cores,
            metrics: MetricValues::none(),
        }
    }

    #[test]
    fn series_keep_only_configurations_that_vary_and_name_what_differs() {
        let points = [
            point(1, 2, 4),
            point(0, 1, 1),
            point(0, 1, 2),
            point(0, 2, 1),
            point(0, 2, 2),
            point(1, 1, 1),
        ];
        let all: Vec<&RunPoint> = points.iter().collect();
        let series = series_varying_along(&all, Axis::Run(Key::Cores));
        let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            ["batch=1", "batch=2"],
            "set1 has one core count each"
        );
        let cores: Vec<usize> = series[0].points.iter().map(|p| p.cores).collect();
        assert_eq!(cores, [1, 2], "ordered along the axis");
        let by_set = series_along(&all, Axis::Run(Key::Cores));
        assert_eq!(by_set.len(), 4);
        assert_eq!(by_set[0].label, "set0 batch=1", "sets in the order given");
        assert_eq!(by_set[3].label, "set1 batch=2");
        assert_eq!(
            varying(&all, &[Axis::Set]),
            [Axis::Run(Key::Batch), Axis::Run(Key::Cores)]
        );
    }
}
