//! The files a Slurm request is made of, under `RUN/slurm/<name>/` (docs/scale-out.md has the
//! contract): `inputs.json` (everything a task needs, keyed by its digest), `results/<i>.json`
//! (what task i came to) and `jobs.json` (the submissions, for a coordinator that resumes) —
//! written atomically and read back checked.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{Executor, SearchConfig, SlurmConfig};
use super::error::{SearchError, SlurmError};
use super::ppo::{Diverged, Trajectory};
use super::progress::Purpose;
use super::trajectory::TrajectorySeeds;
use crate::checkpoint::{self, SnapshotRef};
use crate::policy::Policy;

pub(super) const INPUTS_FORMAT: &str = "augwise-slurm-inputs/1";
pub(super) const RESULT_FORMAT: &str = "augwise-slurm-result/1";
pub(super) const INPUTS_FILE: &str = "inputs.json";
pub(super) const JOBS_FILE: &str = "jobs.json";
pub(super) const JOBS_FORMAT: &str = "augwise-slurm-jobs/1";

/// Everything a task needs, written once per request. `key` is the SHA-256 of the rest (with
/// the executor's own settings left out, so switching executor keeps results): a result
/// carries it, and one with another key is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Inputs {
    pub format: String,
    pub key: String,
    /// PPO updates done when the request was made.
    pub update: usize,
    pub purpose: Purpose,
    pub config: SearchConfig,
    pub policy: Policy,
    pub pairs: usize,
    pub seeds: Vec<TrajectorySeeds>,
    /// The stage-1 snapshot: its directory relative to the run directory, and its checksum.
    pub snapshot_dir: String,
    pub snapshot: SnapshotRef,
    pub epochs_done: usize,
}

impl Inputs {
    pub fn digest(&self) -> Result<String, SearchError> {
        let mut bare = self.clone();
        bare.key.clear();
        bare.config.executor = Executor::Local;
        bare.config.slurm = SlurmConfig::default();
        let bytes = serde_json::to_vec(&bare).map_err(|e| SearchError::Serialise {
            what: "a Slurm request",
            why: e.to_string(),
        })?;
        Ok(checkpoint::sha256_hex(&bytes))
    }
}

/// What a task came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(super) enum TaskOutcome {
    Done {
        trajectory: Trajectory,
    },
    Diverged {
        diverged: Diverged,
    },
    /// The worker could not run the trajectory (data missing on the node, out of memory…).
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TaskResult {
    pub format: String,
    pub key: String,
    pub index: usize,
    #[serde(flatten)]
    pub outcome: TaskOutcome,
    pub host: String,
    pub slurm_job: String,
    pub seconds: f64,
}

/// One submission of some array indices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Submitted {
    pub job: String,
    pub indices: Vec<usize>,
}

/// `jobs.json`: a request's submissions, for a coordinator that resumes it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Jobs {
    pub format: String,
    pub jobs: Vec<Submitted>,
}

/// The submissions recorded in `dir` (none when there is no file yet). A damaged file is
/// reported and read as none: the tasks it named are then submitted again.
pub(super) fn read_jobs(dir: &Path, notes: &mut Vec<String>) -> Vec<Submitted> {
    let path = dir.join(JOBS_FILE);
    if !path.exists() {
        return Vec::new();
    }
    match checkpoint::read_json::<Jobs>(&path, JOBS_FORMAT) {
        Ok(j) => j.jobs,
        Err(e) => {
            notes.push(format!("ignoring {}: {e}", path.display()));
            Vec::new()
        }
    }
}

pub(super) fn io_error(what: &'static str, path: &Path, e: impl std::fmt::Display) -> SearchError {
    SearchError::Slurm(SlurmError::File {
        action: what,
        path: path.to_owned(),
        why: e.to_string(),
    })
}

pub(super) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), SearchError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| SearchError::Serialise {
        what: "a Slurm file",
        why: e.to_string(),
    })?;
    Ok(checkpoint::write_atomic(path, &bytes)?)
}

pub(super) fn result_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("results").join(format!("{index}.json"))
}

/// The result of task `index`, if one with this request's key is there. A result of another
/// request (a different key) is refused: reported once and ignored, so it is recomputed.
pub(super) fn read_result(dir: &Path, key: &str, index: usize, notes: &mut Vec<String>) -> Option<TaskResult> {
    let path = result_path(dir, index);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<TaskResult>(&bytes) {
        Ok(r) if r.key == key && r.index == index && r.format == RESULT_FORMAT => Some(r),
        Ok(r) => {
            notes.push(format!(
                "refusing {}: it is the result of another request (key {}…, index {}), not this one; it will be recomputed",
                path.display(),
                r.key.get(..12).unwrap_or(&r.key),
                r.index
            ));
            let _ = std::fs::remove_file(&path);
            None
        }
        Err(e) => {
            notes.push(format!("refusing {}: {e}; it will be recomputed", path.display()));
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

// ---- the worker ---------------------------------------------------------------------------
