//! Scenario files: the TOML format, validation with `file:line:column` errors, and expansion of
//! the matrix into run configurations.
//!
//! ```toml
//! name = "decode-scaling"
//! description = "How decode throughput scales with cores"
//! [defaults]                 # any key, one value
//! gen_tokens = 64
//! [matrix]                   # axis keys, lists: the cartesian product
//! model = ["llama-3.2-1b"]
//! cores = [1, 2, "all"]
//! [[exclude]]                # axis values; a run matching all of them is dropped
//! cores = 1
//! [[include]]                # extra single runs (defaults apply)
//! model = "tiny"
//! ```

pub mod config;
pub mod expand;
pub mod parse;
pub mod url;

pub use config::{Key, RunConfig, Value};
pub use expand::{expand, DEFAULT_MAX_RUNS};

use std::path::{Path, PathBuf};

/// An invalid scenario: where, and what is wrong and allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", file.display(), if *.line == 0 { String::new() } else { format!(":{line}:{column}") })]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based line; 0 for the whole file (no `:line:column` is shown).
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// What is wrong, with the allowed values.
    pub message: String,
}

/// Key/value pairs of one table (`[defaults]`, an `[[exclude]]` or `[[include]]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    /// The values, validated.
    pub values: Vec<(Key, Value)>,
    /// Line of the table in the file.
    pub line: usize,
}

/// A parsed, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Short name; names the results folder.
    pub name: String,
    /// What question the scenario answers.
    pub description: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's text, copied into results.
    pub text: String,
    /// `[defaults]`.
    pub defaults: Entry,
    /// `[matrix]`: each axis with its values, in canonical key order.
    pub matrix: Vec<(Key, Vec<Value>)>,
    /// `[[exclude]]` tables.
    pub excludes: Vec<Entry>,
    /// `[[include]]` tables.
    pub includes: Vec<Entry>,
}

impl Scenario {
    /// Reads and validates the scenario at `path`.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let at = |line: usize, column: usize, message: String| ScenarioError {
            file: path.to_path_buf(),
            line,
            column,
            message,
        };
        let bytes =
            std::fs::read(path).map_err(|e| at(0, 0, format!("cannot read the scenario: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
            at(
                line,
                column,
                "not UTF-8 text: a scenario is a TOML text file (is this a binary file?)".into(),
            )
        })?;
        parse::parse(path, &text)
    }
}
