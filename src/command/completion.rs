//! Tab completion and the usage hint, both driven by the table.

use serde_json::Value;

use crate::data::DataSpec;
use crate::model::Arch;
use crate::present::chart::ChartKind;
use crate::search::{SearchConfig, Topic};
use crate::suggest::Named;

use super::handlers::EARLY;
use super::{ArgKind, ExportFormat, COMMANDS};

/// What can complete the word under the cursor: (start of the word, candidates). Driven by
/// the table: command names first, then each argument's kind. Paths are left to the front-end
/// (`ArgKind::Path` returns `None`).
pub fn completions(line: &str, pos: usize) -> Option<(usize, Vec<String>)> {
    let before = &line[..pos.min(line.len())];
    let start = before.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
    let word = &before[start..];
    let index = before[..start].split_whitespace().count();
    let pick = |all: Vec<String>| {
        Some((
            start,
            all.into_iter().filter(|c| c.starts_with(word)).collect::<Vec<_>>(),
        ))
    };
    if index == 0 {
        return pick(COMMANDS.iter().map(|c| c.name.to_owned()).collect());
    }
    let cmd = COMMANDS
        .iter()
        .find(|c| Some(c.name) == before.split_whitespace().next())?;
    let spec = cmd.args.get(index - 1).or(cmd.args.last().filter(|a| a.repeated))?;
    match spec.kind {
        ArgKind::Policy | ArgKind::PolicyOrCount => {
            let mut v: Vec<String> = [
                "best",
                "none",
                "autoaugment:cifar10",
                "autoaugment:svhn",
                "autoaugment:imagenet",
                "randaugment",
                "trivialaugment",
                "aws",
                "theta:",
                "subpolicies:(",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if spec.kind == ArgKind::PolicyOrCount {
                v.push(EARLY.to_owned());
            }
            if let Some(rest) = word.strip_prefix("pair:") {
                let names = crate::augment::space::aws_names();
                let (head, tail) = rest
                    .split_once('+')
                    .map(|(a, b)| (format!("pair:{a}+"), b))
                    .unwrap_or(("pair:".into(), rest));
                v = names
                    .iter()
                    .filter(|n| n.starts_with(tail))
                    .map(|n| format!("{head}{n}"))
                    .collect();
            } else {
                v.push("pair:".into());
            }
            pick(v)
        }
        ArgKind::Topic => pick(Topic::names().iter().map(|s| s.to_string()).collect()),
        ArgKind::Chart => pick(ChartKind::names().iter().map(|s| s.to_string()).collect()),
        ArgKind::Format => pick(ExportFormat::names().iter().map(|s| s.to_string()).collect()),
        ArgKind::Model => pick(Arch::NAMES.iter().map(|s| s.to_string()).collect()),
        ArgKind::Data => pick(DataSpec::KINDS.iter().map(|s| s.to_string()).collect()),
        ArgKind::Text if cmd.name == "help" => pick(
            COMMANDS
                .iter()
                .map(|c| c.name.to_owned())
                .chain(["policies".to_owned()])
                .collect(),
        ),
        ArgKind::KeyValue => {
            // Nested settings by their dotted names (`slurm.partition=`), as `config` sets them.
            fn keys(prefix: &str, v: &Value, out: &mut Vec<String>) {
                let Some(map) = v.as_object() else { return };
                for (k, child) in map {
                    let name = format!("{prefix}{k}");
                    match child {
                        Value::Object(_) => keys(&format!("{name}."), child, out),
                        _ => out.push(format!("{name}=")),
                    }
                }
            }
            let mut v = Vec::new();
            keys("", &serde_json::to_value(SearchConfig::default()).ok()?, &mut v);
            pick(v)
        }
        _ => None,
    }
}

/// The usage still to type after a complete command word (`probe ` → `<policy>`).
pub fn usage_hint(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let cmd = COMMANDS.iter().find(|c| Some(&c.name) == words.first())?;
    if !line.ends_with(' ') {
        return None;
    }
    let rest: Vec<String> = cmd
        .args
        .iter()
        .skip(words.len() - 1)
        .map(|a| {
            if a.optional {
                format!("[{}]", a.name)
            } else {
                format!("<{}>", a.name)
            }
        })
        .collect();
    (!rest.is_empty()).then(|| rest.join(" "))
}
