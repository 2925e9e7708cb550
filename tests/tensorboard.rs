//! TensorBoard reads what a search writes: the event files of `RUN_DIR/tensorboard` read back
//! with the `tensorboard` package's own reader (EventAccumulator, from the project's .venv),
//! and every scalar equal to the figure the session reported.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use augwise::search::Session;

const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}))
"#;

/// Every scalar tag of `dir` → its (step, value) points, as TensorBoard reads them.
fn read(dir: &Path) -> BTreeMap<String, Vec<(i64, f64)>> {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let out = Command::new(python)
        .args(["-c", READER])
        .arg(dir)
        .output()
        .expect("the project's .venv (scripts/setup.sh installs tensorboard there)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn points(tags: &BTreeMap<String, Vec<(i64, f64)>>, tag: &str) -> Vec<(i64, f64)> {
    tags.get(tag)
        .cloned()
        .unwrap_or_else(|| panic!("no `{tag}` in {:?}", tags.keys()))
}

#[test]
fn tensorboard_reads_the_scalars_a_search_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(common::tiny_config(), dir.path()).unwrap();
    let pretrain = s.pretrain(None).unwrap();
    let step = s.step(2).unwrap();
    let fulltrain = s.fulltrain(&augwise::policy::Policy::None, Some(1)).unwrap();
    let tags = read(&dir.path().join("tensorboard"));
    let f32 = |v: f64| v as f32 as f64;

    let loss: Vec<(i64, f64)> = pretrain.epochs.iter().map(|e| (e.epoch as i64, f32(e.loss))).collect();
    assert_eq!(points(&tags, "pretrain/loss"), loss);
    assert_eq!(points(&tags, "pretrain/val_accuracy").len(), pretrain.epochs.len());
    assert_eq!(points(&tags, "pretrain/lr").len(), pretrain.epochs.len());

    let rewards: Vec<(i64, f64)> = step
        .steps
        .iter()
        .map(|st| (st.update.update as i64, f32(st.update.reward.mean)))
        .collect();
    assert_eq!(points(&tags, "update/reward_mean"), rewards);
    let (lo, hi) = step.steps[1].update.reward.ci95.unwrap();
    assert_eq!(points(&tags, "update/reward_ci95_low")[1], (2, f32(lo)));
    assert_eq!(points(&tags, "update/reward_ci95_high")[1], (2, f32(hi)));
    for tag in [
        "baseline",
        "entropy",
        "kl",
        "inner_steps",
        "ppo_lr",
        "finetune_lr",
        "best_mean_reward",
    ] {
        assert_eq!(points(&tags, &format!("update/{tag}")).len(), 2, "update/{tag}");
    }
    assert_eq!(points(&tags, "update/kl")[0], (1, f32(step.steps[0].update.ppo.kl)));
    // Each trajectory's reward at the update it fed.
    for (u, st) in step.steps.iter().enumerate() {
        for (i, t) in st.evaluate.trajectories.iter().enumerate() {
            let p = points(&tags, &format!("trajectory/{i}/reward"));
            assert_eq!(p[u], ((u + 1) as i64, f32(t.reward)));
        }
    }
    let test = points(&tags, "fulltrain/none/test_accuracy");
    assert_eq!(test, vec![(1, f32(fulltrain.test_accuracy[0]))]);
}

#[test]
fn a_resumed_session_adds_an_event_file_and_tensorboard_reads_both() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Session::new(common::tiny_config(), dir.path()).unwrap();
        s.pretrain(None).unwrap();
    }
    let mut s = Session::resume(dir.path()).unwrap();
    s.step(1).unwrap();
    let files = std::fs::read_dir(dir.path().join("tensorboard")).unwrap().count();
    assert_eq!(files, 2);
    let tags = read(&dir.path().join("tensorboard"));
    assert_eq!(points(&tags, "pretrain/loss").len(), 2);
    assert_eq!(points(&tags, "update/reward_mean").len(), 1);
}
