//! The dependency picture of `src/` (issue 12): modules form layers and every reference points
//! down — front-ends → command → present → search → train → policy → augment/model → data →
//! device and the utilities. A `crate::module` reference upwards or sideways within a layer
//! fails here, naming the file and the line. Unit tests (`#[cfg(test)]` to the end of a file)
//! may reach across: they check one layer against another.
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
    let picture: Vec<String> = edges
        .iter()
        .map(|(m, uses)| format!("{m} → {}", uses.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect();
    assert!(
        violations.is_empty(),
        "dependencies against the layers:\n{}\n\nthe picture now:\n{}",
        violations.join("\n"),
        picture.join("\n")
    );
    // The check has something to check: the layers are used as drawn.
    assert!(edges["search"].contains("train") && edges["present"].contains("search"));
    assert!(edges["command"].contains("present") && edges["policy"].contains("augment"));
}

#[test]
fn references_skip_comments_and_unit_tests() {
    let text = "use crate::{a, b};\nuse crate::data;\n// crate::search in a comment\nlet x = crate::rng::mix(1, 2); // crate::train\n#[cfg(test)]\nuse crate::search;\n";
    assert_eq!(
        references(text),
        vec![(1, "{".to_owned()), (2, "data".to_owned()), (4, "rng".to_owned())]
    );
}
