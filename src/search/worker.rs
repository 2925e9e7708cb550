//! `augwise worker DIR [INDEX]`: one task of a Slurm request — the session's data, pipeline and
//! model rebuilt from the request's configuration, the stage-1 snapshot read and verified, then
//! exactly a local trajectory's code; its result written for the coordinator.

use std::path::Path;
use std::time::Instant;

use super::error::{SearchError, SlurmError};
use super::parts::Parts;
use super::ppo::{Diverged, Trajectory};
use super::progress::Progress;
use super::stage1::Stage1;
use super::trajectory::Runner;
use super::wire::{
    result_path, write_json, Inputs, TaskOutcome, TaskResult, INPUTS_FILE, INPUTS_FORMAT, RESULT_FORMAT,
};
use crate::checkpoint::{self, CheckpointError};
use crate::train::CancelFlag;

/// `augwise worker DIR [INDEX]`: run trajectory `index` of the request in `dir` (default: the
/// task's `SLURM_ARRAY_TASK_ID`) and write its result. `Ok(Err(why))` when the trajectory could
/// not run: that is written as a `failed` result too, so the coordinator can say why (a
/// diverged trajectory finished: it has no reward by the method's rule). A request that cannot
/// be read, or an index it does not have, is an error and writes nothing. `progress` gets the
/// trajectory's events (the `augwise worker` command prints a line per epoch to the task's log).
pub fn run_worker(
    dir: &Path,
    index: Option<usize>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Result<(), String>, SearchError> {
    let index = match index {
        Some(i) => i,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or(SlurmError::NoIndex)?,
    };
    // libtorch's intra-op threads: the CPUs Slurm gave the task, not the whole node (two
    // tasks of 2 threads each on 2 cores ran 4× slower than one after the other).
    if let Some(n) = task_cpus() {
        tch::set_num_threads(n);
    }
    let path = dir.join(INPUTS_FILE);
    let inputs: Inputs = checkpoint::read_json(&path, INPUTS_FORMAT).map_err(|e| {
        let why = match e {
            CheckpointError::Foreign { why, .. }
            | CheckpointError::Corrupt { why, .. }
            | CheckpointError::Io { why, .. } => why,
            other => other.to_string(),
        };
        SlurmError::UnreadableRequest {
            path: path.clone(),
            why,
        }
    })?;
    if inputs.format != INPUTS_FORMAT || inputs.digest()? != inputs.key {
        return Err(SlurmError::AlteredRequest { path }.into());
    }
    if index >= inputs.seeds.len() {
        return Err(SlurmError::NoSuchTrajectory {
            index,
            trajectories: inputs.seeds.len(),
        }
        .into());
    }
    let start = Instant::now();
    let outcome = match run_task(dir, &inputs, index, progress) {
        Ok(Ok(trajectory)) => TaskOutcome::Done { trajectory },
        Ok(Err(diverged)) => TaskOutcome::Diverged { diverged },
        Err(e) => TaskOutcome::Failed { error: e.to_string() },
    };
    let failure = match &outcome {
        TaskOutcome::Failed { error } => Err(format!("worker: trajectory {index} failed: {error}")),
        _ => Ok(()),
    };
    let result = TaskResult {
        format: RESULT_FORMAT.into(),
        key: inputs.key.clone(),
        index,
        outcome,
        host: checkpoint::hostname(),
        slurm_job: std::env::var("SLURM_JOB_ID").unwrap_or_default(),
        seconds: start.elapsed().as_secs_f64(),
    };
    write_json(&result_path(dir, index), &result)?;
    Ok(failure)
}

/// CPUs Slurm allotted this task: `--cpus-per-task`, else the job's CPUs on this node
/// (`SLURM_JOB_CPUS_PER_NODE` reads like `2` or `2(x3)`).
fn task_cpus() -> Option<i32> {
    let var = |k: &str| std::env::var(k).ok();
    var("SLURM_CPUS_PER_TASK")
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            var("SLURM_JOB_CPUS_PER_NODE").and_then(|v| {
                let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
        })
        .filter(|&n: &i32| n > 0)
}

/// The trajectory itself: the session's data, pipeline and model rebuilt from the config, the
/// snapshot read and verified, then exactly a local trajectory's code.
fn run_task(
    dir: &Path,
    inputs: &Inputs,
    index: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Result<Trajectory, Diverged>, SearchError> {
    let seeds = *inputs.seeds.get(index).ok_or(SlurmError::NoSuchTrajectory {
        index,
        trajectories: inputs.seeds.len(),
    })?;
    let run_dir = dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| SlurmError::OutsideRun { dir: dir.to_owned() })?;
    let parts = Parts::for_worker(&inputs.config)?;
    let stage1 = Stage1::new(parts.trainer);
    let tensors = checkpoint::read_snapshot(&run_dir.join(&inputs.snapshot_dir), &inputs.snapshot)?;
    let snapshot = stage1
        .snapshot_from_tensors(tensors, inputs.epochs_done, &inputs.config, parts.device.device)
        .map_err(|why| SlurmError::Snapshot {
            file: inputs.snapshot.file.clone(),
            why,
        })?;
    let mut trainer = stage1.trainer;
    let runner = Runner {
        config: inputs.config.clone(),
        pipeline: parts.pipeline,
        snapshot,
        policy: inputs.policy.clone(),
        cancel: CancelFlag::new(),
        purpose: inputs.purpose,
        total: inputs.seeds.len(),
        first: 0,
        pairs: inputs.pairs,
    };
    let (train, val) = (&parts.splits.train, &parts.splits.val);
    runner.run(&mut trainer, train, val, seeds, index, &mut |p| progress(&p))
}

// ---- the coordinator ----------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use crate::checkpoint::SnapshotRef;
    use crate::policy::Policy;
    use crate::search::config::SearchConfig;
    use crate::search::progress::Purpose;
    use crate::search::trajectory::TrajectorySeeds;

    /// A damaged request or an index it does not have: an error for the worker's user, and no
    /// result file the coordinator would read (issue 24).
    #[test]
    fn a_worker_refuses_a_damaged_request_or_a_missing_index_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let seed = TrajectorySeeds {
            order: 1,
            augment: 2,
            policy: 3,
        };
        let mut inputs = Inputs {
            format: INPUTS_FORMAT.into(),
            key: String::new(),
            update: 0,
            purpose: Purpose::Evaluate,
            config: SearchConfig::cpu(),
            policy: Policy::None,
            pairs: 0,
            seeds: vec![seed, seed],
            snapshot_dir: ".".into(),
            snapshot: SnapshotRef {
                file: "weights-0.safetensors".into(),
                sha256: String::new(),
                bytes: 0,
            },
            epochs_done: 1,
        };
        inputs.key = inputs.digest().unwrap();
        write_json(&dir.path().join(INPUTS_FILE), &inputs).unwrap();
        let e = run_worker(dir.path(), Some(2), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("trajectories 0..2 and no index 2") && e.contains("nothing was run"),
            "{e}"
        );
        assert!(
            !dir.path().join("results").exists(),
            "a result was written for a missing index"
        );

        std::fs::write(
            dir.path().join(INPUTS_FILE),
            "{\"format\": \"augwise-slurm-inputs/1\", trunc",
        )
        .unwrap();
        let e = run_worker(dir.path(), Some(0), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("cannot read the request") && !e.contains("restore a backup") && !e.contains("point `resume`"),
            "{e}"
        );
        assert!(!dir.path().join("results").exists());
    }
}
