//! A golden record of the step-wise primitives, for refactors that must not change a result:
//! a small search script on synthetic data through the command table (pretrain, step, null,
//! probe, compare fixed and early, sample, evaluate, update, policy, history), every command's structured output with its
//! wall-clock fields removed, as one JSON document.
//!
//!     cargo run --release --example golden_session -- target/golden-before.json
//!     … refactor …
//!     cargo run --release --example golden_session -- target/golden-after.json --check target/golden-before.json
//!
//! Floats are this machine's: record both files on the same machine (another CPU's last bits
//! differ, so the record is not a CI fixture). Runtime on 2 CPU cores: about a minute.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use anyhow::{bail, Context, Result};
use augwise::command::Shell;
use augwise::data::SplitConfig;
use augwise::search::SearchConfig;
use serde_json::Value;

const SCRIPT: &[&str] = &[
    "pretrain",
    "step 2",
    "sample 4",
    "null 20",
    "probe aws:uniform 2",
    "compare none pair:Invert+Equalize 2",
    "compare none aws:uniform early 3",
    "evaluate",
    "update",
    "policy",
    "history",
];

/// Wall-clock fields (and what is derived from them) out; everything else stays.
fn timeless(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !(k.contains("second") || k.contains("per_sec") || k.ends_with("_s") || k == "elapsed"));
            m.values_mut().for_each(timeless);
        }
        Value::Array(a) => a.iter_mut().for_each(timeless),
        _ => {}
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .context("usage: golden_session OUT.json [--check BEFORE.json]")?;
    let config = SearchConfig::cpu()
        .with_data("synthetic:kind=frequency,classes=3,n=24,size=16".parse()?)
        .with_split(SplitConfig::default().with_val_fraction(0.25))
        .with_pretrain_epochs(2)
        .with_batch_size(16)
        .with_finetune(1, Some(0.02))
        .with_trajectories(2)
        .with_fulltrain_epochs(1);
    let dir = std::env::temp_dir().join(format!("augwise-golden-{}", std::process::id()));
    let mut shell = Shell::new(config, &dir);
    let mut record = serde_json::Map::new();
    for line in SCRIPT {
        let output = shell.run(line).with_context(|| format!("`{line}`"))?;
        let mut data = output.data;
        timeless(&mut data);
        record.insert((*line).to_owned(), data);
    }
    std::fs::remove_dir_all(&dir).ok();
    let record = Value::Object(record);
    std::fs::write(out, serde_json::to_string_pretty(&record)?)?;
    println!("{out}: {} commands recorded", SCRIPT.len());
    if let Some(i) = args.iter().position(|a| a == "--check") {
        let before_path = args.get(i + 1).context("--check needs the earlier record")?;
        let before: Value = serde_json::from_str(&std::fs::read_to_string(before_path)?)?;
        for line in SCRIPT {
            if before.get(*line) != record.get(*line) {
                bail!("`{line}` differs from {before_path} (diff the two files)");
            }
        }
        println!("identical to {before_path}");
    }
    Ok(())
}
