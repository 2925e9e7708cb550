//! Everything a search primitive can fail with, one enum: what went wrong and what to do.

use std::path::PathBuf;

use super::Diverged;
use crate::augment::AugmentError;
use crate::checkpoint::CheckpointError;
use crate::data::DataError;
use crate::device::DeviceError;
use crate::model::ModelError;
use crate::policy::PolicyError;
use crate::train::TrainError;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("no shared weights yet: run `pretrain` first (stage 1)")]
    NotPretrained,
    #[error("stage 1 is not complete ({done} of {total} epochs): stage 2 measures rewards from the shared weights at the end of stage 1. Run `pretrain` to finish it")]
    Stage1Incomplete { done: usize, total: usize },
    /// No trajectory of an update finished: θ was not updated.
    #[error("every trajectory of update {update} diverged ({}), so θ was not updated; the fine-tune rate ({}) is likely too high for these weights: lower it with `config finetune_lr=…` and `reset`, or check the data", if first.is_empty() { "no reason recorded" } else { first.as_str() }, finetune_lr.map_or_else(|| "stage 1's final rate".to_owned(), |l| format!("finetune_lr={l}")))]
    AllDiverged {
        update: usize,
        /// The first trajectory's reason.
        first: String,
        finetune_lr: Option<f64>,
    },
    #[error("no trajectories waiting: run `evaluate` before `update`")]
    NothingToUpdate,
    /// Free-form validation (a configuration that contradicts itself, a record from an
    /// older version).
    #[error("{0}")]
    Invalid(String),
    /// A count outside its range.
    #[error(transparent)]
    OutOfRange(#[from] crate::limits::OutOfRange),
    /// A count outside its range, for a primitive.
    #[error("{primitive}: {source}")]
    CountFor {
        primitive: &'static str,
        source: crate::limits::OutOfRange,
    },
    /// Stage 1 changes the shared weights the search's rewards were measured from.
    #[error("the search has started: more pretraining would change the shared weights its rewards were measured from. `reset` to start over")]
    SearchStarted,
    #[error("stage 1 is complete ({done} of {total} epochs); `pretrain N` with N > 0 trains past the schedule at its final rate")]
    Stage1Complete { done: usize, total: usize },
    #[error("{primitive} needs at least {min} policies")]
    TooFewPolicies { primitive: &'static str, min: usize },
    #[error("no updates yet: the null replays the search's updates; run `step` first")]
    NoUpdates,
    /// A trajectory whose loss went NaN/Inf where its result was needed.
    #[error(transparent)]
    Diverged(#[from] Diverged),
    /// A checkpoint whose configuration cannot make a session on this machine.
    #[error("{}: its configuration cannot start a session here: {source}", path.display())]
    ResumeConfig { path: PathBuf, source: Box<SearchError> },
    /// A trajectory's worker thread died without a result (a bug; nothing was kept).
    #[error("trajectory {trajectory} was lost: its worker thread panicked; nothing of this step was kept")]
    WorkerLost { trajectory: usize },
    /// The slurm executor could not submit or follow its jobs.
    #[error("slurm: {0}")]
    Slurm(String),
    /// A trajectory's array task failed on every try: the request's jobs were cancelled and
    /// nothing of it was kept.
    #[error("trajectory {index} failed on Slurm {tries} time(s) (last: {why}); its log: {}. The other tasks were cancelled and the session is as it was before this step: fix the cause the log names and run it again (or `config slurm.tries=…`, or `config executor=local`)", log.display())]
    SlurmTask {
        index: usize,
        tries: usize,
        why: String,
        log: PathBuf,
    },
    #[error("cancelled; the session is as it was before this step")]
    Cancelled,
    /// A new session (or `save`) on a directory that holds a run: refused, so no run is lost.
    #[error("{} already holds a run ({what}); nothing in it was changed. `resume {}` continues it; for a new run choose another directory (`--run-dir DIR`; `reset DIR` in the REPL)", dir.display(), dir.display())]
    RunExists { dir: PathBuf, what: String },
    /// One training batch's activations would not fit in this machine's memory: refused
    /// before training, where the kernel would kill the process instead of failing an op.
    #[error("a training batch of {batch} images of {width}×{height} needs about {} for {model}'s activations, more than this machine has available ({}). Train on smaller images (resize an image folder on load: `folder:DIR,size=64`), lower `batch_size`, or choose a smaller model", crate::limits::gb(*needs), crate::limits::gb(*available))]
    ActivationMemory {
        batch: i64,
        width: i64,
        height: i64,
        model: String,
        needs: u64,
        available: u64,
    },
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Train(TrainError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Augment(#[from] AugmentError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A primitive's checkpoint could not be written: its in-memory changes were undone too.
    #[error("{0}. This step was undone in memory as well, so the session and its run directory still agree: free some space (or fix the directory's permissions) and run it again")]
    Unsaved(Box<CheckpointError>),
}

impl From<TrainError> for SearchError {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::Cancelled { .. } => SearchError::Cancelled,
            other => SearchError::Train(other),
        }
    }
}
