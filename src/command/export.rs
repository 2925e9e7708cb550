//! `export`: the searched policy for PyTorch users, θ's logits, or every pair's probability.

use std::path::Path;

use serde_json::{json, Value};

use crate::augment::space::pair_name;
use crate::policy::torchvision_export;
use crate::search::SearchError;
use crate::suggest::Named;

use super::{Arg, Args, CommandError, Output, Shell};

/// What `export` writes: the PyTorch-ready document (default), θ's logits as the search
/// holds them (loads back with `theta:FILE`), or every pair's probability as CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Json,
    Theta,
    Csv,
}

impl Named for ExportFormat {
    const ALL: &'static [Self] = &[ExportFormat::Json, ExportFormat::Theta, ExportFormat::Csv];
    const WHAT: &'static str = "format";

    fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Theta => "theta",
            ExportFormat::Csv => "csv",
        }
    }
}

pub(super) fn cmd_export(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    // `export [format] [file]`, or `export FILE` (json).
    let format = args
        .find(|a| match a {
            Arg::Format(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_default();
    let file = args.find(|a| match a {
        Arg::Path(p) => Some(p.clone()),
        _ => None,
    });
    let policy = args.find(|a| match a {
        Arg::Policy(p) => Some(p.clone()),
        _ => None,
    });
    // A policy of its own needs no session (as `augwise export POLICY`); the default is the
    // session's best θ.
    let (best, theta) = match policy {
        Some(p) => {
            // `best` (resolved to the best θ's policy) keeps its logits and its name.
            let theta = match &sh.session {
                Some(s) if s.best_policy().is_ok_and(|b| b == p) => Some(s.best_theta().clone()),
                _ => None,
            };
            (p, theta)
        }
        None => {
            let s = sh.session()?;
            (s.best_policy()?, Some(s.best_theta().clone()))
        }
    };
    let what = if theta.is_some() {
        "best θ".to_owned()
    } else {
        format!("`{best}`")
    };
    if let Some(file) = &file {
        refuse_to_replace(file, &sh.run_dir)?;
    }
    let (doc, text) = match format {
        ExportFormat::Theta => {
            let theta = theta.ok_or_else(|| CommandError::NoLogits {
                policy: best.to_string(),
            })?;
            let doc = serde_json::to_value(&theta).unwrap_or(Value::Null);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            (doc, text)
        }
        ExportFormat::Csv => {
            let dist = best.distribution().ok_or_else(|| CommandError::NoPairTable {
                policy: best.to_string(),
            })?;
            let rows = dist.top(crate::augment::space::NUM_PAIRS);
            let mut text = String::from("rank,pair,op1,op2,probability\n");
            for (rank, (k, p)) in rows.iter().enumerate() {
                let (a, b) = crate::augment::space::pair_ops(*k);
                let (a, b) = (crate::augment::space::aws_name(a), crate::augment::space::aws_name(b));
                text.push_str(&format!("{},{},{a},{b},{p:.12e}\n", rank + 1, pair_name(*k)));
            }
            (json!({"rows": rows.len()}), text)
        }
        ExportFormat::Json => {
            let doc = torchvision_export(&best, 25);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            (doc, text)
        }
    };
    match file {
        Some(file) => {
            crate::checkpoint::write_atomic(&file, text.as_bytes()).map_err(SearchError::from)?;
            Ok(Output {
                data: doc,
                ..Output::text(
                    "export",
                    format!("{what} exported as {} to {}", format.name(), file.display()),
                )
            })
        }
        None => Ok(Output {
            data: doc,
            ..Output::text("export", text)
        }),
    }
}

/// A file outside the run directory is the user's: never replaced (as `save` never replaces a
/// run). The run's own exports are its to refresh (`search --resume` writes them again).
fn refuse_to_replace(file: &Path, run_dir: &Path) -> Result<(), CommandError> {
    if !file.exists() {
        return Ok(());
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let inside = match (
        file.parent()
            .and_then(|d| canonical(if d.as_os_str().is_empty() { Path::new(".") } else { d })),
        canonical(run_dir),
    ) {
        (Some(d), Some(r)) => d.starts_with(r),
        _ => false,
    };
    if inside {
        return Ok(());
    }
    Err(CommandError::FileExists { path: file.to_owned() })
}
