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
    #[error("unknown preset `{name}`{}; expected {}", crate::suggest::hint(name, known.iter().copied()), known.join(", "))]
    UnknownPreset {
        name: String,
        known: &'static [&'static str],
    },
    #[error("unknown config key `{key}`{}; keys: {}", crate::suggest::hint(key, keys.iter().map(String::as_str)), keys.join(", "))]
    UnknownConfigKey { key: String, keys: Vec<String> },
    /// `config key=value` whose value does not fit the setting.
    #[error("`{key}={value}`: {why}")]
    ConfigValue { key: String, value: String, why: String },
    /// A configuration that contradicts itself or leaves a setting's range (the message names
    /// the setting and its range).
    #[error("{0}")]
    Config(String),
    /// Data that serde could not write (a bug: every record is plain data).
    #[error("could not serialise {what}: {why}")]
    Serialise { what: &'static str, why: String },
    /// An update recorded by an older augwise, without what the null replays.
    #[error("update {update} was recorded before augwise kept pair-application totals; a null needs a search run with this version")]
    RecordTooOld { update: usize },
    #[error("the validation split is empty")]
    NoValidationImages,
    #[error("image {index} is past the validation split's {images} images (0 to {})", images - 1)]
    NoSuchImage { index: usize, images: i64 },
    /// Every probe trajectory diverged: the probe has no reward.
    #[error("every probe trajectory of {policy} diverged: {}", reasons.join("; "))]
    ProbeDiverged { policy: String, reasons: Vec<String> },
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
    /// The slurm executor could not submit or follow its jobs, or a worker could not run.
    #[error("slurm: {0}")]
    Slurm(#[from] SlurmError),
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

/// What the slurm executor and its workers fail with, besides a task's own failure.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("could not {action} {}: {why}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("worker: no trajectory index: pass one, or run as a Slurm array task")]
    NoIndex,
    #[error("worker: cannot read the request {} ({why}); nothing was run or written. The session that submitted the job writes its requests: if it is still running it retries this trajectory, and its next step writes a new request", path.display())]
    UnreadableRequest { path: PathBuf, why: String },
    #[error("worker: {}: its key does not match its contents (edited or damaged); nothing was run. The submitting session writes it anew on its next step", path.display())]
    AlteredRequest { path: PathBuf },
    #[error(
        "worker: this request has trajectories 0..{trajectories} and no index {index}; nothing was run or written"
    )]
    NoSuchTrajectory { index: usize, trajectories: usize },
    #[error("{} is not inside a run directory", dir.display())]
    OutsideRun { dir: PathBuf },
    #[error("stage-1 snapshot {file}: {why}")]
    Snapshot { file: String, why: String },
    #[error("`{cmd}` not found: the slurm executor needs Slurm's client commands on PATH (a login node, or SLURM_CONF set); `config executor=local` runs trajectories here")]
    ClientMissing { cmd: String },
    #[error("could not run `timeout {cmd}`: {why}")]
    ClientSpawn { cmd: String, why: String },
    #[error("`{cmd}` did not answer in {seconds} s: is slurmctld up and reachable (`scontrol ping`)?")]
    ClientTimeout { cmd: String, seconds: u32 },
    #[error("`{command}` failed ({status}): {stderr} — the slurm executor runs Slurm's clients here: on a login node, or with SLURM_CONF naming the cluster's slurm.conf")]
    ClientFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("the slurm executor needs the augwise binary the tasks run: `config slurm.worker=/path/to/augwise` (or set AUGWISE_WORKER)")]
    NoWorkerBinary,
    #[error("no working directory: {0}")]
    NoWorkingDirectory(String),
    #[error("sbatch answered `{0}`, not a job id")]
    NotAJobId(String),
}
