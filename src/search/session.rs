//! The resumable session: a small coordinator over the method's parts — stage 1 and its
//! snapshot (`stage1.rs`), stage-2 trajectories (`trajectory.rs`), the PPO update
//! (`update.rs`), probes (`probe.rs`), the null (`null.rs`), the history and the run
//! directory (`store.rs`). Each primitive returns a report and ends with an atomic
//! checkpoint; a cancelled or failed primitive leaves the session as it was before it.

use std::path::{Path, PathBuf};

use super::ppo::{PpoState, Trajectory};
use super::progress::Progress;
use super::stage1::{shared_model, Stage1};
use super::trajectory::Workers;
use super::{store, BestTheta, History, SearchConfig, SearchError};
use crate::augment::Pipeline;
use crate::checkpoint::{RunLock, SnapshotRef};
use crate::data::Splits;
use crate::device::{self, DeviceChoice};
use crate::limits::Limit;
use crate::policy::{Policy, Theta};
use crate::train::{CancelFlag, Trainer};

/// A count checked against its range, as a search error.
pub(super) fn within(limit: &Limit, n: usize) -> Result<usize, SearchError> {
    Ok(limit.check_usize(n)?)
}

/// `k` trajectories for `primitive`, or the default; refused outside their range before
/// anything is allocated for them.
pub(super) fn trajectory_count(
    k: Option<usize>,
    default: usize,
    primitive: &'static str,
) -> Result<usize, SearchError> {
    crate::limits::TRAJECTORIES
        .check_usize(k.unwrap_or(default))
        .map_err(|source| SearchError::CountFor { primitive, source })
}

/// A front-end's handler of progress events.
type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// Where a session's progress events go (none until a front-end asks).
#[derive(Default)]
pub(super) struct ProgressSink(Option<ProgressFn>);

impl ProgressSink {
    /// To the front-end's renderer; a notice with no renderer attached (a program using the
    /// library directly) still reaches stderr, as the only place left to say it.
    pub fn emit(&mut self, p: Progress) {
        match (self.0.as_mut(), &p) {
            (Some(f), _) => f(&p),
            (None, Progress::Notice { stage, message }) => eprintln!("{stage}: {message}"),
            (None, _) => {}
        }
    }

    /// A [`Progress::Notice`] from `stage`.
    pub fn notice(&mut self, stage: &'static str, message: String) {
        self.emit(Progress::Notice { stage, message });
    }
}

/// What a configuration makes before anything trains: the device, the data and its splits,
/// the augmentation pipeline (normalised by the search-train split's statistics) and the
/// shared model with stage 1's recipe. A session and a Slurm worker build them alike.
pub(super) struct Parts {
    pub device: DeviceChoice,
    pub splits: Splits,
    pub pipeline: Pipeline,
    pub trainer: Trainer,
}

impl Parts {
    pub fn new(config: &SearchConfig) -> Result<Self, SearchError> {
        Self::build(config, true)
    }

    /// A Slurm worker's parts: the test split, which only the final retrain reads, stays on
    /// the host (a worker trains and scores on train and val alone).
    pub fn for_worker(config: &SearchConfig) -> Result<Self, SearchError> {
        Self::build(config, false)
    }

    fn build(config: &SearchConfig, upload_test: bool) -> Result<Self, SearchError> {
        config.validate()?;
        let device = device::resolve(config.device)?;
        let source = config.data.load()?;
        let splits = Splits::new(&source, &config.split)?;
        let splits = if upload_test {
            splits.to_device(device.device)?
        } else {
            Splits {
                train: splits.train.to_device(device.device)?,
                val: splits.val.to_device(device.device)?,
                test: splits.test,
            }
        };
        let info = splits.train.info.clone();
        let (mean, std) = splits.train.channel_stats()?;
        let mut pipeline = Pipeline::for_dataset(&info, mean, std);
        if let Some(c) = config.cutout {
            pipeline = pipeline.with_cutout(c);
        }
        check_activation_memory(config, &info, splits.train.len(), device.device)?;
        let model = shared_model(config, &info, device.device, config.seed)?;
        let trainer = Trainer::new(model, pipeline.normalize.clone(), config.stage1_train_config())?;
        Ok(Self {
            device,
            splits,
            pipeline,
            trainer,
        })
    }
}

/// An AWS search, step by step.
pub struct Session {
    pub config: SearchConfig,
    pub run_dir: PathBuf,
    pub device: DeviceChoice,
    pub splits: Splits,
    pub pipeline: Pipeline,
    pub(super) stage1: Stage1,
    pub ppo: PpoState,
    pub pending: Vec<Trajectory>,
    pub best: Option<BestTheta>,
    pub history: History,
    pub(super) cancel: CancelFlag,
    pub(super) progress: ProgressSink,
    /// `sample` calls so far: each draws fresh pairs.
    pub(super) samples: u64,
    pub(super) workers: Workers,
    /// The run directory's lock, held for the session's life.
    pub(super) lock: RunLock,
    /// The snapshot file the run directory's `session.json` names.
    pub(super) snapshot_ref: Option<SnapshotRef>,
    /// `RUN_DIR/tensorboard`'s event file of this session.
    pub(super) scalars: super::scalars::Scalars,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status())
    }
}

/// On the CPU an allocation past the machine's memory is not an error but the kernel's OOM
/// killer: a batch whose activations cannot fit is refused before the first step instead (on
/// CUDA, libtorch's out-of-memory error is caught where it happens).
fn check_activation_memory(
    config: &SearchConfig,
    info: &crate::data::DatasetInfo,
    train_images: i64,
    device: tch::Device,
) -> Result<(), SearchError> {
    if device != tch::Device::Cpu {
        return Ok(());
    }
    let batch = config.batch_size.clamp(1, train_images.max(1)) * config.trajectory_batch.max(1) as i64;
    let needs = config
        .model
        .activation_count(info.channels, info.height, info.width)
        .saturating_mul(4 * batch as u64);
    let available = crate::limits::available_memory();
    // The count is an upper bound (`Arch::activation_count`): refused only past all of it.
    if needs > available {
        return Err(SearchError::ActivationMemory {
            batch,
            width: info.width,
            height: info.height,
            model: config.model.to_string(),
            needs,
            available,
        });
    }
    Ok(())
}

impl Session {
    /// A new session: loads and splits the data, builds the model; nothing trained yet. Takes
    /// the run directory's lock (another session on it is an error naming its holder).
    /// A directory that already holds a run is refused ([`SearchError::RunExists`]) and left
    /// byte for byte as it was: `resume` continues a run, a new one needs its own directory.
    pub fn new(config: SearchConfig, run_dir: impl AsRef<Path>) -> Result<Self, SearchError> {
        config.validate()?;
        let dir = run_dir.as_ref();
        store::refuse_existing(dir)?;
        let lock = RunLock::acquire(dir)?;
        // Again under the lock: a run another process finished in the meantime.
        store::refuse_existing(dir)?;
        Self::build(config, lock)
    }

    fn build(config: SearchConfig, lock: RunLock) -> Result<Self, SearchError> {
        let Parts {
            device,
            splits,
            pipeline,
            trainer,
        } = Parts::new(&config)?;
        Ok(Self {
            config,
            run_dir: lock.dir().to_owned(),
            device,
            splits,
            pipeline,
            stage1: Stage1::new(trainer),
            ppo: PpoState::default(),
            pending: Vec::new(),
            best: None,
            history: History::default(),
            cancel: CancelFlag::new(),
            progress: ProgressSink::default(),
            samples: 0,
            workers: Workers::default(),
            lock,
            snapshot_ref: None,
            scalars: Default::default(),
        })
    }

    /// Continue a run from its directory: the last checkpoint, exactly, once it has checked
    /// out — `session.json` whole and consistent, the snapshot it names present with its
    /// recorded checksum and epoch.
    pub fn resume(dir: impl AsRef<Path>) -> Result<Self, SearchError> {
        let stored = store::open(dir.as_ref())?;
        let (state, state_file) = (stored.state, stored.state_file);
        // Its configuration must still make a session here (valid numbers, the data present).
        let mut s = Self::build(state.config.clone(), stored.lock).map_err(|e| SearchError::ResumeConfig {
            path: state_file.clone(),
            source: Box::new(e),
        })?;
        if let Some((tensors, path)) = stored.tensors {
            let snapshot = s
                .stage1
                .snapshot_from_tensors(tensors, state.pretrain_epochs_done, &s.config, s.device.device)
                .map_err(|why| store::corrupt(&path, why))?;
            s.stage1.trainer.restore(&snapshot)?;
            s.stage1.snapshot = Some(snapshot);
        }
        s.snapshot_ref = state.snapshot;
        s.ppo = state.ppo;
        s.pending = state.pending;
        s.best = state.best;
        s.history = state.history;
        Ok(s)
    }

    /// Back to a fresh session with the same config (θ uniform, no snapshot), in `dir` — a
    /// directory without a run; this run stays where it is.
    pub fn reset(&mut self, dir: impl AsRef<Path>) -> Result<(), SearchError> {
        let fresh = Session::new(self.config.clone(), dir)?;
        let progress = std::mem::take(&mut self.progress);
        *self = fresh;
        self.progress = progress;
        Ok(())
    }

    /// The flag a front-end sets to cancel the running primitive (Ctrl-C, kernel interrupt).
    pub fn cancel_flag(&self) -> CancelFlag {
        self.cancel.clone()
    }

    /// Use a front-end's flag (one Ctrl-C handler for every session it builds).
    pub fn set_cancel_flag(&mut self, flag: CancelFlag) {
        self.cancel = flag;
    }

    /// Where progress events go (a progress bar, a notebook line, JSON lines).
    pub fn set_progress(&mut self, f: impl FnMut(&Progress) + Send + 'static) {
        self.progress = ProgressSink(Some(Box::new(f)));
    }

    /// One line: device, stage, updates — the REPL prompt's content.
    pub fn status(&self) -> String {
        let done = self.pretrain_epochs_done();
        let stage = match (&self.stage1.snapshot, done < self.config.pretrain_epochs) {
            (None, _) => "new".to_owned(),
            (Some(_), true) => format!("pretrain {done}/{}", self.config.pretrain_epochs),
            (Some(_), false) => "search".to_owned(),
        };
        let pending = match self.pending.len() {
            0 => String::new(),
            n => format!(" · {n} pending"),
        };
        format!(
            "{} · {stage} · update {}{pending}",
            device::device_name(self.device.device),
            self.ppo.updates,
        )
    }

    /// Why the run directory is open read-only (it cannot be written here), if it is.
    pub fn read_only(&self) -> Option<&str> {
        self.lock.read_only()
    }

    /// Refuses before a primitive computes what it could not checkpoint (a read-only run, a
    /// directory a newer session took over).
    pub(super) fn writable(&self) -> Result<(), SearchError> {
        Ok(self.lock.check_current()?)
    }

    /// Stage-1 epochs behind the snapshot (0 before the first `pretrain`).
    pub fn pretrain_epochs_done(&self) -> usize {
        self.stage1.epochs_done()
    }

    /// Whether any stage has run: until then `config` changes rebuild the session.
    pub fn started(&self) -> bool {
        self.stage1.snapshot.is_some() || !self.history.probes.is_empty() || !self.history.fulltrains.is_empty()
    }

    /// θ's pair distribution now.
    pub fn theta(&self) -> &Theta {
        &self.ppo.theta
    }

    /// The policy of the current θ.
    pub fn current_policy(&self) -> Result<Policy, SearchError> {
        Ok(Policy::AwsTheta {
            probs: self.ppo.theta.distribution()?,
            source: None,
        })
    }

    /// The searched θ: the best so far (`BestTheta`) — what `policy`, `null`, `export` and
    /// the θ charts mean — and the current θ before the first update.
    pub fn best_theta(&self) -> &Theta {
        self.best.as_ref().map(|b| &b.theta).unwrap_or(&self.ppo.theta)
    }

    /// The policy of the best θ so far (the current θ before the first update).
    pub fn best_policy(&self) -> Result<Policy, SearchError> {
        Ok(Policy::AwsTheta {
            probs: self.best_theta().distribution()?,
            source: None,
        })
    }
}
