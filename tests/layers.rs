//! The dependency picture of `src/` (issue 12): modules form layers and every reference points
//! down — front-ends → command → present → search → train → policy → augment/model → data →
//! device and the utilities. A `crate::module` reference upwards or sideways within a layer
//! fails here, naming the file and the line. Unit tests (`#[cfg(test)]` to the end of a file)
//! may reach across: they check one layer against another. Inside `src/search/` (issue 26) the
//! files are ordered the same way, the coordinator `session.rs` last: `super::…` may name only
//! files below the one it is in.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module's layer: a module may use only modules of a lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("notebook", 10),
    ("command", 9),
    ("present", 8),
    ("search", 7),
    ("train", 6),
    ("policy", 5),
    ("augment", 4),
    ("model", 4),
    ("tensorboard", 4),
    ("checkpoint", 3),
    ("data", 3),
    ("amp", 2),
    ("rng", 2),
    ("device", 1),
    ("limits", 0),
    ("suggest", 0),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_owned())
}

/// `crate::name` references outside comments and the file's unit tests, with line numbers.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if after.starts_with('{') {
                // Grouped paths would hide modules from this check: one `use` per module.
                out.push((i + 1, "{".to_owned()));
            } else if !name.is_empty() {
                out.push((i + 1, name));
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_module_depends_only_on_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut edges: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let Some(own) = layer(&module) else {
            violations.push(format!(
                "{}: module `{module}` has no layer in tests/layers.rs",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in references(&text) {
            if used == module {
                continue;
            }
            if used == "{" {
                violations.push(format!(
                    "{}:{line}: write `use crate::module::…` once per module, not `crate::{{…}}`",
                    file.display()
                ));
                continue;
            }
            edges.entry(module.clone()).or_default().insert(used.clone());
            match layer(&used) {
                Some(l) if l < own => {}
                Some(l) => violations.push(format!(
                    "{}:{line}: `{module}` (layer {own}) uses `{used}` (layer {l})",
                    file.display()
                )),
                // Macros and other crate-root items (`crate::prelude`) are not modules.
                None => {}
            }
        }
    }
    assert_no_violations("the layers", &violations, &edges);
    // The check has something to check: the layers are used as drawn.
    assert!(edges["search"].contains("train") && edges["present"].contains("search"));
    assert!(edges["command"].contains("present") && edges["policy"].contains("augment"));
}

/// Fails with every violation and the whole dependency picture, so a failure shows what to move.
fn assert_no_violations<K: std::fmt::Display>(
    against: &str,
    violations: &[String],
    edges: &BTreeMap<K, std::collections::BTreeSet<String>>,
) {
    let picture: Vec<String> = edges
        .iter()
        .map(|(m, uses)| format!("{m} → {}", uses.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect();
    assert!(
        violations.is_empty(),
        "dependencies against {against}:\n{}\n\nthe picture now:\n{}",
        violations.join("\n"),
        picture.join("\n")
    );
}

/// The files of `src/search/`, lowest first: each may use only the files before it (and the
/// module root's own items, `stream` and `default_run_dir`). Results and their statistics come
/// first, then configuration, the stages over their narrow state (stage 1, trajectories and
/// their executors, the run directory, the update, probes), and the coordinator last.
const SEARCH_FILES: &[&str] = &[
    "stats",
    "sequential",
    "progress",
    "ppo",
    "error",
    "score",
    "null",
    "report",
    "history",
    "config",
    "explain",
    "stage1",
    "parts",
    "trajectory",
    "wire",
    "worker",
    "slurm",
    "scalars",
    "store",
    "sample",
    "update",
    "probe",
    "session",
];

/// A file's code without comments and without its unit tests.
fn code_of(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .map(|l| l.split("//").next().unwrap_or("").to_owned())
        .collect()
}

/// The first name of every `super::` path (and of each member of a `super::{…}` group) and of
/// every `crate::search::` path, with its line number.
fn sibling_references(text: &str) -> Vec<(usize, String)> {
    let code = code_of(text);
    let joined = code.join("\n");
    let line_of = |at: usize| joined[..at].matches('\n').count() + 1;
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut out = Vec::new();
    for prefix in ["super::", "crate::search::"] {
        let mut from = 0;
        while let Some(found) = joined[from..].find(prefix) {
            let at = from + found;
            from = at + prefix.len();
            let rest = &joined[from..];
            if rest.starts_with("super::") || (prefix == "super::" && joined[..at].ends_with("super::")) {
                continue; // a nested module's `super::super::`
            }
            let Some(group) = rest.strip_prefix('{') else {
                out.push((line_of(at), ident(rest)));
                continue;
            };
            // Members of the group at depth 0: their first names.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push((line_of(at), ident(group[start..i].trim())));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push((line_of(at), ident(group[start..i].trim())));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        }
    }
    out.retain(|(_, name)| !name.is_empty());
    out
}

/// What `src/search/mod.rs` re-exports, by item name → the file it comes from.
fn search_reexports(dir: &Path) -> BTreeMap<String, String> {
    let root = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let mut out = BTreeMap::new();
    for line in code_of(&root) {
        let Some(path) = line.trim().strip_prefix("pub use ").and_then(|p| p.strip_suffix(';')) else {
            continue;
        };
        let Some((file, items)) = path.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        if items == "*" {
            let text = std::fs::read_to_string(dir.join(format!("{file}.rs"))).unwrap();
            for l in code_of(&text) {
                for kind in [
                    "pub struct ",
                    "pub enum ",
                    "pub fn ",
                    "pub type ",
                    "pub const ",
                    "pub trait ",
                ] {
                    if let Some(rest) = l.strip_prefix(kind) {
                        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        out.insert(name, file.to_owned());
                    }
                }
            }
        } else {
            for item in items.split(',') {
                out.insert(item.trim().to_owned(), file.to_owned());
            }
        }
    }
    out
}

#[test]
fn every_search_file_depends_only_on_files_below_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("search");
    let reexports = search_reexports(&dir);
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().path().file_stem()?.to_str().map(str::to_owned))
        .filter(|f| f != "mod")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SEARCH_FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every file of src/search/ has its place in SEARCH_FILES"
    );
    let rank = |f: &str| SEARCH_FILES.iter().position(|s| *s == f);
    let mut violations = Vec::new();
    let mut edges: BTreeMap<&str, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (own, file) in SEARCH_FILES.iter().enumerate() {
        let text = std::fs::read_to_string(dir.join(format!("{file}.rs"))).unwrap();
        for (line, name) in sibling_references(&text) {
            let target = if rank(&name).is_some() {
                name.clone()
            } else if let Some(f) = reexports.get(&name) {
                f.clone()
            } else if ["stream", "default_run_dir"].contains(&name.as_str()) {
                continue; // the module root's own items, below every file
            } else {
                violations.push(format!(
                    "src/search/{file}.rs:{line}: `{name}` is no file of search/ nor re-exported by its mod.rs"
                ));
                continue;
            };
            if target == *file {
                continue;
            }
            edges.entry(file).or_default().insert(target.clone());
            match rank(&target) {
                Some(r) if r < own => {}
                _ => violations.push(format!(
                    "src/search/{file}.rs:{line}: `{file}` uses `{target}` (through `{name}`), which is not below it"
                )),
            }
        }
    }
    assert_no_violations("the order of src/search/", &violations, &edges);
    // The check has something to check: the coordinator uses the stages, a stage its parts.
    assert!(edges["session"].contains("trajectory") && edges["session"].contains("probe"));
    assert!(edges["slurm"].contains("trajectory") && edges["probe"].contains("trajectory"));
}

#[test]
fn sibling_references_read_groups_and_skip_comments_and_tests() {
    let text = "use super::{a, b::{c, d}, e};\nuse super::f::G;\n// super::h\nlet x = super::super::i;\nlet y = crate::search::j::k;\nuse super::{\n    l,\n};\n#[cfg(test)]\nuse super::m;\n";
    let names: Vec<(usize, String)> = sibling_references(text);
    let expect = [(1, "a"), (1, "b"), (1, "e"), (2, "f"), (6, "l"), (5, "j")];
    assert_eq!(names, expect.map(|(l, n)| (l, n.to_owned())).to_vec());
}

#[test]
fn references_skip_comments_and_unit_tests() {
    let text = "use crate::{a, b};\nuse crate::data;\n// crate::search in a comment\nlet x = crate::rng::mix(1, 2); // crate::train\n#[cfg(test)]\nuse crate::search;\n";
    assert_eq!(
        references(text),
        vec![(1, "{".to_owned()), (2, "data".to_owned()), (4, "rng".to_owned())]
    );
}
