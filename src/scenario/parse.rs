//! Reading a scenario file: TOML with every key, type and value checked, errors located at
//! `file:line:column`.

use super::config::{Key, Value};
use super::{Entry, Scenario, ScenarioError};
use crate::counters::CounterSet;
use crate::interrupt::{self, Interrupted};
use crate::machine::placement::{CoreRequest, MemoryPolicy, NpsRequirement, PlacementPolicy, Smt};
use crate::model::preset::nearest_preset;
use crate::model::ModelRef;
use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

const TOP_LEVEL: [&str; 6] = [
    "name",
    "description",
    "defaults",
    "matrix",
    "exclude",
    "include",
];

/// Values read between two checks for SIGINT/SIGTERM.
const INTERRUPT_CHECK_EVERY: usize = 4096;

/// Turns byte offsets of one file into `file:line:column` errors.
struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
    /// Whether some table sets `allow_remote = true` (then `url` may name any host).
    allow_remote: bool,
}

impl Locator<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ScenarioError {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// "did you mean 'x'?" for the closest of `candidates`, when one is close.
fn suggestion(given: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(given, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map_or(String::new(), |(_, c)| format!("; did you mean '{c}'?"))
}

fn unknown_key(
    loc: &Locator,
    key: &Spanned<std::borrow::Cow<str>>,
    section: &str,
    allowed: &[&str],
) -> ScenarioError {
    loc.error(
        key.span(),
        format!(
            "unknown key '{}' in {section}{}; allowed: {}",
            key.get_ref(),
            suggestion(key.get_ref(), allowed),
            allowed.join(", ")
        ),
    )
}

fn type_name(v: &DeValue) -> &'static str {
    v.type_str()
}

/// Converts one TOML value of `key` into a typed [`Value`].
fn value_of(
    loc: &Locator,
    key: Key,
    v: &Spanned<DeValue>,
    ctx: &str,
) -> Result<Value, ScenarioError> {
    let wrong = |what: String| {
        loc.error(
            v.span(),
            format!("{ctx}{key} = {what}; allowed: {}", key.allowed()),
        )
    };
    let string = || -> Result<&str, ScenarioError> {
        v.get_ref()
            .as_str()
            .ok_or_else(|| wrong(format!("{} is the wrong type", type_name(v.get_ref()))))
    };
    let integer = |min: u64| -> Result<u64, ScenarioError> {
        let i = v
            .get_ref()
            .as_integer()
            .ok_or_else(|| wrong(format!("{} is the wrong type", type_name(v.get_ref()))))?;
        let n = i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| wrong(format!("{} is out of range", i.as_str())))?;
        if n < min as i64 {
            return Err(wrong(format!("{n} is out of range")));
        }
        Ok(n as u64)
    };
    let parsed = |r: Result<Value, String>| r.map_err(|e| loc.error(v.span(), format!("{ctx}{e}")));
    match key {
        Key::Model => {
            let s = string()?;
            if s.is_empty() {
                return Err(wrong("\"\" is empty".into()));
            }
            if ModelRef::parse(s, None).is_err() {
                return Err(wrong(format!(
                    "\"{s}\" is neither a preset nor a path; did you mean '{}'?",
                    nearest_preset(s)
                )));
            }
            Ok(Value::Model(s.to_string()))
        }
        Key::Dtype => parsed(
            string()?
                .parse()
                .map(Value::Dtype)
                .map_err(|e: crate::model::dtype::UnknownDtype| format!("dtype: {e}")),
        ),
        Key::Engine => parsed(
            string()?
                .parse()
                .map(Value::Engine)
                .map_err(|e: crate::engine::UnknownEngine| format!("engine: {e}")),
        ),
        Key::TorchBackend => parsed(
            string()?
                .parse()
                .map(Value::TorchBackend)
                .map_err(|e: crate::torch::settings::UnknownTorchBackend| e.to_string()),
        ),
        Key::TorchDtype => parsed(
            string()?
                .parse()
                .map(Value::TorchDtype)
                .map_err(|e: crate::torch::settings::UnknownTorchDtype| e.to_string()),
        ),
        Key::Batch
        | Key::PromptTokens
        | Key::GenTokens
        | Key::Instances
        | Key::Repetitions
        | Key::TimeoutS
        | Key::Ubatch => integer(1).map(Value::Count),
        Key::KvDtype => parsed(
            string()?
                .parse()
                .map(Value::KvDtype)
                .map_err(|e: crate::model::dtype::UnknownKvDtype| format!("kv_dtype: {e}")),
        ),
        Key::FlashAttn => parsed(
            string()?
                .parse()
                .map(Value::FlashAttn)
                .map_err(|e: llamaperf_llama_cpp::settings::UnknownFlashAttn| e.to_string()),
        ),
        Key::Warmup | Key::Seed | Key::Depth => integer(0).map(Value::Count),
        Key::Cores => match v.get_ref() {
            DeValue::Integer(_) => integer(1).map(|n| Value::Cores(CoreRequest::Count(n as usize))),
            DeValue::String(s) => parsed(
                s.parse()
                    .map(Value::Cores)
                    .map_err(|e: crate::machine::MachineError| e.to_string()),
            ),
            other => Err(wrong(format!("{} is the wrong type", type_name(other)))),
        },
        Key::Smt => match v.get_ref() {
            DeValue::Boolean(b) => Ok(Value::Smt(if *b { Smt::On } else { Smt::Off })),
            _ => parsed(
                string()?
                    .parse()
                    .map(Value::Smt)
                    .map_err(|e: crate::machine::MachineError| e.to_string()),
            ),
        },
        Key::Placement => parsed(
            string()?
                .parse::<PlacementPolicy>()
                .map(Value::Placement)
                .map_err(|e| e.to_string()),
        ),
        Key::Memory => parsed(
            string()?
                .parse::<MemoryPolicy>()
                .map(Value::Memory)
                .map_err(|e| e.to_string()),
        ),
        Key::Counters => {
            let items: Vec<String> = match v.get_ref() {
                DeValue::String(s) => vec![s.to_string()],
                DeValue::Array(a) => a
                    .as_ref()
                    .iter()
                    .map(|i| i.get_ref().as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| wrong("a list with a non-string item".into()))?,
                other => return Err(wrong(format!("{} is the wrong type", type_name(other)))),
            };
            parsed(CounterSet::parse(&items).map(Value::Counters))
        }
        Key::Url => {
            let url = string()?;
            match super::url::check(url, loc.allow_remote) {
                Ok(()) => Ok(Value::Text(url.to_string())),
                Err(e) => Err(wrong(format!("\"{url}\": {e}"))),
            }
        }
        Key::ServerCommand => {
            let command = string()?;
            if shlex::split(command).is_none_or(|words| words.is_empty()) {
                return Err(wrong(format!(
                    "\"{command}\" is empty or has unbalanced quotes"
                )));
            }
            if !command.contains("{port}") {
                return Err(wrong(format!(
                    "\"{command}\" has no {{port}}: the server must listen where llamaperf looks"
                )));
            }
            Ok(Value::Text(command.to_string()))
        }
        Key::Concurrency | Key::Requests | Key::SloTtftMs | Key::SloTpotMs => {
            integer(1).map(Value::Count)
        }
        Key::RequestTimeoutS => integer(1).map(Value::Count),
        Key::RequestRate => {
            let rate = match v.get_ref() {
                DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
                DeValue::Integer(_) => integer(0).ok().map(|n| n as f64),
                other => return Err(wrong(format!("{} is the wrong type", type_name(other)))),
            };
            rate.and_then(super::config::RequestRate::new)
                .map(Value::Rate)
                .ok_or_else(|| wrong("a rate that is not > 0".into()))
        }
        Key::ReadProbe | Key::AllowRemote => match v.get_ref() {
            DeValue::Boolean(b) => Ok(Value::Flag(*b)),
            other => Err(wrong(format!("{} is the wrong type", type_name(other)))),
        },
        Key::Nps => match v.get_ref() {
            DeValue::Integer(i) => parsed(
                i.as_str()
                    .parse::<NpsRequirement>()
                    .map(Value::Nps)
                    .map_err(|e| e.to_string()),
            ),
            _ => parsed(
                string()?
                    .parse::<NpsRequirement>()
                    .map(Value::Nps)
                    .map_err(|e| e.to_string()),
            ),
        },
    }
}

fn key_names(keys: impl Iterator<Item = Key>) -> Vec<&'static str> {
    keys.map(Key::name).collect()
}

/// Reads a table of single values (`[defaults]`, an `[[exclude]]` or `[[include]]` entry).
fn entry_of(
    loc: &Locator,
    table: &Spanned<DeValue>,
    section: &str,
    axes_only: bool,
) -> Result<Entry, ScenarioError> {
    let DeValue::Table(t) = table.get_ref() else {
        return Err(loc.error(table.span(), format!("{section} must be a table")));
    };
    let allowed: Vec<Key> = Key::ALL
        .into_iter()
        .filter(|k| !axes_only || k.is_axis())
        .collect();
    let mut values = Vec::new();
    for (k, v) in t.iter() {
        let key = Key::from_name(k.get_ref())
            .filter(|key| allowed.contains(key))
            .ok_or_else(|| unknown_key(loc, k, section, &key_names(allowed.iter().copied())))?;
        if v.get_ref().is_array() && key != Key::Counters {
            return Err(loc.error(
                v.span(),
                format!("{section}: {key} takes one value here, not a list (lists go in [matrix])"),
            ));
        }
        values.push((key, value_of(loc, key, v, "")?));
    }
    Ok(Entry {
        values,
        line: loc.line(table.span().start),
    })
}

fn string_field(
    loc: &Locator,
    root: &DeTable,
    name: &str,
) -> Result<Option<String>, ScenarioError> {
    let Some((_, v)) = root.iter().find(|(k, _)| k.get_ref() == name) else {
        return Ok(None);
    };
    v.get_ref()
        .as_str()
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| {
            loc.error(
                v.span(),
                format!("{name} must be a string, got {}", type_name(v.get_ref())),
            )
        })
}

fn array_of_tables<'a>(
    loc: &Locator,
    v: &'a Spanned<DeValue<'a>>,
    name: &str,
) -> Result<&'a [Spanned<DeValue<'a>>], ScenarioError> {
    v.get_ref().as_array().map(|a| a.as_ref()).ok_or_else(|| {
        loc.error(
            v.span(),
            format!("{name} must be written as [[{name}]] tables"),
        )
    })
}

/// Whether `[defaults]` or an `[[include]]` sets `allow_remote = true`.
fn sets_allow_remote(root: &DeTable) -> bool {
    let sets = |table: &DeValue| {
        table.as_table().is_some_and(|t| {
            t.iter().any(|(k, v)| {
                k.get_ref() == Key::AllowRemote.name()
                    && matches!(v.get_ref(), DeValue::Boolean(true))
            })
        })
    };
    root.iter().any(|(k, v)| match k.get_ref().as_ref() {
        "defaults" => sets(v.get_ref()),
        "include" => v
            .get_ref()
            .as_array()
            .is_some_and(|a| a.as_ref().iter().any(|t| sets(t.get_ref()))),
        _ => false,
    })
}

/// Parses and validates the text of a scenario file.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let mut loc = Locator {
        file: path,
        text,
        allow_remote: false,
    };
    let root = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let mut message = e.message().trim().to_string();
        if message == "duplicate key" {
            let key = text.get(span.clone()).unwrap_or_default().trim();
            message = format!("duplicate key '{key}': a key is set once per table");
        }
        loc.error(span, format!("invalid TOML: {message}"))
    })?;
    let root = root.get_ref();
    loc.allow_remote = sets_allow_remote(root);
    let loc = loc;
    for (k, _) in root.iter() {
        if !TOP_LEVEL.contains(&k.get_ref().as_ref()) {
            return Err(unknown_key(&loc, k, "the scenario", &TOP_LEVEL));
        }
    }
    let name = string_field(&loc, root, "name")?.ok_or_else(|| {
        loc.error(
            0..0,
            "missing key 'name' (a short name for the results folder)",
        )
    })?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        let span = root
            .iter()
            .find(|(k, _)| k.get_ref() == "name")
            .map_or(0..0, |(_, v)| v.span());
        return Err(loc.error(span, format!("name = \"{name}\" must be letters, digits, '-', '_' or '.' (it names the results folder)")));
    }
    let mut scenario = Scenario {
        name,
        description: string_field(&loc, root, "description")?.unwrap_or_default(),
        path: path.to_path_buf(),
        text: text.to_string(),
        defaults: Entry::default(),
        matrix: Vec::new(),
        excludes: Vec::new(),
        includes: Vec::new(),
    };
    for (k, v) in root.iter() {
        match k.get_ref().as_ref() {
            "defaults" => scenario.defaults = entry_of(&loc, v, "[defaults]", false)?,
            "matrix" => {
                let DeValue::Table(t) = v.get_ref() else {
                    return Err(loc.error(v.span(), "matrix must be a table"));
                };
                for (mk, mv) in t.iter() {
                    let key = Key::from_name(mk.get_ref())
                        .filter(|k| k.is_axis())
                        .ok_or_else(|| {
                            unknown_key(
                                &loc,
                                mk,
                                "[matrix]",
                                &key_names(Key::ALL.into_iter().filter(|k| k.is_axis())),
                            )
                        })?;
                    let Some(items) = mv.get_ref().as_array() else {
                        return Err(loc.error(
                            mv.span(),
                            format!(
                                "[matrix] {key} must be a list, e.g. {key} = [{}]",
                                if key == Key::Model {
                                    "\"tiny\""
                                } else {
                                    "1, 2"
                                }
                            ),
                        ));
                    };
                    if items.as_ref().is_empty() {
                        return Err(loc.error(
                            mv.span(),
                            format!("[matrix] {key} is an empty list; give at least one value"),
                        ));
                    }
                    let mut values: Vec<Value> = Vec::with_capacity(items.as_ref().len());
                    let mut seen: HashSet<Value> = HashSet::with_capacity(values.capacity());
                    for item in items.as_ref() {
                        if values.len().is_multiple_of(INTERRUPT_CHECK_EVERY)
                            && interrupt::requested()
                        {
                            return Err(loc.error(item.span(), Interrupted.to_string()));
                        }
                        let value = value_of(&loc, key, item, "[matrix] ")?;
                        if !seen.insert(value.clone()) {
                            return Err(loc.error(
                                item.span(),
                                format!(
                                    "[matrix] {key} lists the same value twice: {}",
                                    &loc.text[item.span()]
                                ),
                            ));
                        }
                        values.push(value);
                    }
                    scenario.matrix.push((key, values));
                }
                scenario.matrix.sort_by_key(|(k, _)| *k);
            }
            "exclude" => {
                for t in array_of_tables(&loc, v, "exclude")? {
                    scenario
                        .excludes
                        .push(entry_of(&loc, t, "[[exclude]]", true)?);
                }
            }
            "include" => {
                for t in array_of_tables(&loc, v, "include")? {
                    scenario
                        .includes
                        .push(entry_of(&loc, t, "[[include]]", false)?);
                }
            }
            _ => {}
        }
    }
    let has_model = |values: &[(Key, Value)]| values.iter().any(|(k, _)| *k == Key::Model);
    let sets_model = has_model(&scenario.defaults.values)
        || scenario.matrix.iter().any(|(k, _)| *k == Key::Model);
    let every_include =
        !scenario.includes.is_empty() && scenario.includes.iter().all(|e| has_model(&e.values));
    if !sets_model && !every_include {
        return Err(loc.error(
            0..0,
            "no model: set model in [defaults] or [matrix] (or in every [[include]])",
        ));
    }
    Ok(scenario)
}
