//! The shape of the source tree: the library's stage folders import only earlier stages
//! (docs/development.md), and no two files of a crate import each other, directly or in a
//! circle. Read from the sources themselves, so a new reverse import fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's stages in pipeline order: a stage may import the ones before it.
const STAGES: [&str; 17] = [
    "schema",
    "interrupt",
    "child",
    "model",
    "machine",
    "counters",
    "calibrate",
    "torch",
    "scenario",
    "planning",
    "measure",
    "serve",
    "results",
    "sweep",
    "report",
    "compare",
    "plan",
];

/// One crate's source files by module path (`["planning", "spec"]` is `planning/spec.rs`).
struct Crate {
    modules: BTreeMap<Vec<String>, PathBuf>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let mut modules = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("source folder is readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    modules.insert(module_path(src, &path), path);
                }
            }
        }
        Crate { modules }
    }

    /// The file that defines the longest prefix of `path`.
    fn file_of(&self, path: &[String]) -> Option<&Vec<String>> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.modules.get_key_value(&path[..n]).map(|(k, _)| k))
    }

    /// Which module files each file imports, by module path.
    fn imports(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        self.modules
            .iter()
            .map(|(module, file)| {
                let text = std::fs::read_to_string(file).expect("source is readable");
                let targets = paths_in(&code_of(&text))
                    .into_iter()
                    .filter_map(|p| absolute(module, &p))
                    .filter_map(|p| self.file_of(&p).cloned())
                    .filter(|t| t != module)
                    .collect();
                (module.clone(), targets)
            })
            .collect()
    }
}

fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("inside src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn is_module_root(file: &Path) -> bool {
    matches!(
        file.file_name().and_then(|n| n.to_str()),
        Some("mod.rs" | "lib.rs" | "main.rs")
    )
}

/// The source without comments and string literals, so a path in a doc comment or a message
/// is no import.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_string {
                if c == '"' && prev != '\\' {
                    in_string = false;
                }
                prev = if prev == '\\' { ' ' } else { c };
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' {
                in_string = true;
                prev = ' ';
                continue;
            }
            out.push(c);
        }
        out.push('\n');
    }
    out
}

/// Every path in `code` that starts with `crate`, `super` or `self`, with `use` groups
/// (`use crate::{a::b, c}`) expanded.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        if starts_word {
            for head in ["crate::", "super::", "self::"] {
                if bytes[i..].starts_with(&head.chars().collect::<Vec<_>>()) {
                    let (found, end) = parse_tree(&bytes, i);
                    paths.extend(found);
                    i = end;
                    break;
                }
            }
        }
        i += 1;
    }
    paths
}

/// Parses a path (tree) at `start`: `a::b::{c, d::e}::f`; returns the paths and where it ended.
fn parse_tree(chars: &[char], start: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = start;
    loop {
        let word_start = i;
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        if i > word_start {
            prefix.push(chars[word_start..i].iter().collect::<String>());
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if chars[i..].starts_with(&[':', ':']) {
            i += 2;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '{' {
                let mut paths = Vec::new();
                i += 1;
                loop {
                    while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                        i += 1;
                    }
                    if i >= chars.len() || chars[i] == '}' {
                        break;
                    }
                    let (inner, end) = parse_tree(chars, i);
                    for p in inner {
                        let mut full = prefix.clone();
                        if p != ["self"] {
                            full.extend(p);
                        }
                        paths.push(full);
                    }
                    i = end;
                    // skip `as alias`
                    while i < chars.len() && !matches!(chars[i], ',' | '}') {
                        i += 1;
                    }
                }
                return (paths, i + 1);
            }
            continue;
        }
        return (vec![prefix], i);
    }
}

/// `path` as seen from `module` made absolute from the crate root; `None` for paths outside
/// the crate.
fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

fn crate_src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn no_stage_imports_a_later_stage() {
    let krate = Crate::read(&crate_src("src"));
    let rank = |m: &[String]| {
        m.first()
            .and_then(|top| STAGES.iter().position(|s| s == top))
    };
    let mut reverse = Vec::new();
    for (module, targets) in krate.imports() {
        let Some(from) = rank(&module) else { continue };
        for target in targets {
            if let Some(to) = rank(&target) {
                if to > from {
                    reverse.push(format!(
                        "{} imports {} ({} comes after {})",
                        module.join("::"),
                        target.join("::"),
                        STAGES[to],
                        STAGES[from]
                    ));
                }
            }
        }
    }
    let unknown: Vec<_> = krate
        .modules
        .keys()
        .filter_map(|m| m.first())
        .filter(|top| !STAGES.contains(&top.as_str()))
        .filter(|top| !["cli", "commands", "error"].contains(&top.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        unknown.is_empty(),
        "modules outside the stage list (add them to STAGES and docs/development.md): {unknown:?}"
    );
    assert!(
        reverse.is_empty(),
        "reverse imports:\n  {}",
        reverse.join("\n  ")
    );
}

/// Files that import each other, directly or through others: the strongly connected
/// components of more than one file. A module's root file (mod.rs, lib.rs) may use its own
/// children; every other import counts.
fn file_circles(krate: &Crate) -> Vec<Vec<String>> {
    let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = krate
        .imports()
        .into_iter()
        .map(|(module, targets)| {
            let root = is_module_root(&krate.modules[&module]);
            let kept = targets
                .into_iter()
                .filter(|t| !(root && t.starts_with(&module)))
                .collect();
            (module, kept)
        })
        .collect();
    let reach = |from: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for t in graph.get(&m).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<_, _> = graph.keys().map(|m| (m.clone(), reach(m))).collect();
    let mut circles: Vec<Vec<String>> = Vec::new();
    let mut placed = BTreeSet::new();
    for m in graph.keys() {
        if placed.contains(m) || !reachable[m].contains(m) {
            continue;
        }
        let circle: Vec<String> = graph
            .keys()
            .filter(|o| reachable[m].contains(*o) && reachable[*o].contains(m))
            .map(|o| {
                placed.insert(o.clone());
                krate.modules[o].display().to_string()
            })
            .collect();
        circles.push(circle);
    }
    circles
}

#[test]
fn no_files_import_each_other() {
    let mut circles = Vec::new();
    for src in [
        "src",
        "crates/engine/src",
        "crates/os/src",
        "crates/llama-cpp/src",
    ] {
        circles.extend(file_circles(&Crate::read(&crate_src(src))));
    }
    let shown: Vec<String> = circles.iter().map(|c| c.join(" <-> ")).collect();
    assert!(
        shown.is_empty(),
        "circles of files:\n  {}",
        shown.join("\n  ")
    );
}

#[test]
fn the_checker_sees_groups_and_parents() {
    let code = code_of("use crate::{model::X, planning::spec::{A, B as C}};\n// crate::report\nlet s = \"crate::plan\"; super::super::f();");
    let paths = paths_in(&code);
    let expect: Vec<Vec<String>> = [
        vec!["crate", "model", "X"],
        vec!["crate", "planning", "spec", "A"],
        vec!["crate", "planning", "spec", "B"],
        vec!["super", "super", "f"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(paths, expect);
    let module: Vec<String> = vec!["a".into(), "b".into()];
    assert_eq!(absolute(&module, &expect[3]), Some(vec!["f".to_string()]));
}
