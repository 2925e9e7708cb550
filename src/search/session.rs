//! The resumable session: owns the device, the splits, the model and optimiser, the stage-1
//! snapshot, θ and PPO's state, the history and the run directory. Each primitive returns a
//! report and ends with an atomic checkpoint; a cancelled or failed primitive leaves the
//! session as it was before it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::ppo::{self, PpoState, Trajectory};
use super::{
    BestTheta, CorrelateReport, EvaluateReport, FulltrainReport, PretrainReport, ProbeReport, SampleReport,
    SearchConfig, SearchError, UpdateRecord,
};
use crate::augment::space::{aws_ops, pair_name, pair_ops, NUM_PAIRS};
use crate::augment::{apply_ops, Pipeline, PolicyAugment};
use crate::checkpoint::{self, CheckpointError, RunLock, SnapshotRef};
use crate::data::Splits;
use crate::device::{self, DeviceChoice};
use crate::model::{Model, Weights};
use crate::policy::{Policy, Theta};
use crate::rng::{mix, Rng};
use crate::train::{
    BatchProgress, BatchedTrainer, CancelFlag, LrSchedule, SgdState, TrainConfig, Trainer, TrainerState,
};

const FORMAT: &str = "augwise-session/1";
const STATE_FILE: &str = "session.json";
/// Where runs written before content-addressed snapshots kept their weights (still read).
const LEGACY_WEIGHTS_FILE: &str = "snapshot.safetensors";
/// Stream ids for [`Rng::derive`] and seeds.
const STREAM_TRAJECTORY: u64 = 11;
const STREAM_PROBE: u64 = 12;
const STREAM_SAMPLE: u64 = 13;
const STREAM_FULLTRAIN: u64 = 14;
const STREAM_NULL: u64 = 15;
/// `k` trajectories for `what`, or the default; refused outside 1..=the limit before
/// anything is allocated for them.
fn trajectory_count(k: Option<usize>, default: usize, what: &str) -> Result<usize, SearchError> {
    let max = crate::limits::TRAJECTORIES.max as usize;
    match k.unwrap_or(default) {
        k @ 1.. if k <= max => Ok(k),
        k => Err(SearchError::Invalid(format!(
            "{what} takes 1 to {max} trajectories, not {k}"
        ))),
    }
}

const STREAM_BOOTSTRAP: u64 = 16;
/// The `pairs_per_trajectory` variant's up-front draws, per trajectory.
const STREAM_PAIRS_DRAWN: u64 = 17;

/// A count checked against its limit, as a search error.
fn within(limit: &crate::limits::Limit, n: usize) -> Result<usize, SearchError> {
    limit.check_usize(n).map_err(SearchError::Invalid)
}

/// A progress event for front-ends (progress bars, notebook lines).
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// `pretrain`, `evaluate`, `probe`, `fulltrain`.
    pub stage: String,
    /// Fraction of the primitive done, 0..1.
    pub fraction: f64,
    pub message: String,
}

/// Everything but the tensors, as written to `session.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionState {
    format: String,
    config: SearchConfig,
    pretrain_epochs_done: usize,
    ppo: PpoState,
    pending: Vec<Trajectory>,
    best: Option<BestTheta>,
    history: History,
    /// Stage 1's weights and momentum: the file and its checksum (absent before stage 1, and
    /// in runs written before snapshots were content-addressed, which used `snapshot.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot: Option<SnapshotRef>,
}

impl SessionState {
    /// What resume requires of a `session.json` before it trusts it (the snapshot aside):
    /// PPO's state sound, as many updates as the history records, pending trajectories whole.
    fn validate(&self) -> Result<(), String> {
        self.ppo.validate().map_err(|e| e.to_string())?;
        if self.ppo.updates != self.history.updates.len() {
            return Err(format!(
                "PPO has {} updates but the history records {}",
                self.ppo.updates,
                self.history.updates.len()
            ));
        }
        if let Some(t) = self
            .pending
            .iter()
            .find(|t| t.counts.len() != NUM_PAIRS || !t.reward.is_finite())
        {
            return Err(format!(
                "pending trajectory {} has {} pair counts (expected {NUM_PAIRS}) or a non-finite reward",
                t.seed,
                t.counts.len()
            ));
        }
        if let (Some(r), 0) = (&self.snapshot, self.pretrain_epochs_done) {
            return Err(format!(
                "it names a weights snapshot ({}) but says stage 1 has not run; one of the two was edited or damaged",
                r.file
            ));
        }
        Ok(())
    }
}

/// What happened so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub pretrain: Vec<crate::train::EpochReport>,
    pub updates: Vec<UpdateRecord>,
    pub probes: Vec<ProbeReport>,
    pub fulltrains: Vec<FulltrainReport>,
    /// The last noise-only null (`null`), judged at `null.updates` updates.
    #[serde(default)]
    pub null: Option<super::NullReport>,
}

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stage 1: {} epochs", self.pretrain.len())?;
        for u in &self.updates {
            write!(f, "\n{u}")?;
        }
        for p in &self.probes {
            write!(f, "\n{p}")?;
        }
        for t in &self.fulltrains {
            write!(
                f,
                "\nfull training with {}: final test accuracy {:.2}%",
                t.policy,
                100.0 * t.final_test_accuracy()
            )?;
        }
        if !self.updates.is_empty() {
            match &self.null {
                Some(n) if n.updates == self.updates.len() => write!(f, "\n{n}")?,
                Some(n) => write!(
                    f,
                    "\n(the null was run at update {}; `null` again to judge θ now)",
                    n.updates
                )?,
                None => write!(
                    f,
                    "\nθ has not been judged against its noise-only null: `null` runs it (seconds)"
                )?,
            }
        }
        Ok(())
    }
}

impl crate::display::Rich for History {
    /// The reward and accuracy charts over the text.
    fn html(&self) -> String {
        let charts: String = [crate::chart::rewards(self), crate::chart::accuracy(self)]
            .iter()
            .flatten()
            .map(crate::display::chart_html)
            .collect();
        charts + &crate::display::pre(&self.to_string())
    }
}

crate::evcxr_display!(History);

/// Where a session's progress events go.
type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// An AWS search, step by step.
pub struct Session {
    pub config: SearchConfig,
    pub run_dir: PathBuf,
    pub device: DeviceChoice,
    pub splits: Splits,
    pub pipeline: Pipeline,
    trainer: Trainer,
    snapshot: Option<TrainerState>,
    pub ppo: PpoState,
    pub pending: Vec<Trajectory>,
    pub best: Option<BestTheta>,
    pub history: History,
    cancel: CancelFlag,
    progress: Option<ProgressFn>,
    /// `sample` calls so far: each draws fresh pairs.
    samples: u64,
    /// Models on the other trajectory devices (built on first use).
    replicas: Vec<Replica>,
    /// The grouped model batched trajectories train on, kept from chunk to chunk and update
    /// to update (k members of WRN-28-10 are 290 M parameters to initialise).
    batched: Option<BatchedTrainer>,
    /// The run directory's lock, held for the session's life.
    lock: RunLock,
    /// The snapshot file the run directory's `session.json` names.
    snapshot_ref: Option<SnapshotRef>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status())
    }
}

impl Session {
    /// A new session: loads and splits the data, builds the model; nothing trained yet. Takes
    /// the run directory's lock (another session on it is an error naming its holder).
    pub fn new(config: SearchConfig, run_dir: impl AsRef<Path>) -> Result<Self, SearchError> {
        config.validate()?;
        let lock = RunLock::acquire(run_dir.as_ref())?;
        Self::build(config, lock)
    }

    fn build(config: SearchConfig, lock: RunLock) -> Result<Self, SearchError> {
        config.validate()?;
        let device = device::resolve(config.device)?;
        let source = config.data.load()?;
        let splits = Splits::new(&source, &config.split)?.to_device(device.device);
        let info = splits.train.info.clone();
        let (mean, std) = splits.train.channel_stats();
        let mut pipeline = Pipeline::for_dataset(&info, mean, std);
        if let Some(c) = config.cutout {
            pipeline = pipeline.with_cutout(c);
        }
        let model = Model::new(
            config.model,
            info.channels,
            info.num_classes(),
            device.device,
            config.seed,
        )?;
        let trainer = Trainer::new(model, pipeline.normalize.clone(), stage1_config(&config));
        Ok(Self {
            config,
            run_dir: lock.dir().to_owned(),
            device,
            splits,
            pipeline,
            trainer,
            snapshot: None,
            ppo: PpoState::default(),
            pending: Vec::new(),
            best: None,
            history: History::default(),
            cancel: CancelFlag::new(),
            progress: None,
            samples: 0,
            replicas: Vec::new(),
            batched: None,
            lock,
            snapshot_ref: None,
        })
    }

    /// Continue a run from its directory: the last checkpoint, exactly, once it has checked
    /// out — `session.json` whole and consistent, the snapshot it names present with its
    /// recorded checksum and epoch.
    pub fn resume(dir: impl AsRef<Path>) -> Result<Self, SearchError> {
        let dir = dir.as_ref();
        let state_file = dir.join(STATE_FILE);
        if !state_file.is_file() {
            // Not a run directory: say so without creating a lock file in it.
            return Err(CheckpointError::Foreign {
                path: state_file,
                why: "no session.json here".into(),
            }
            .into());
        }
        let lock = RunLock::acquire(dir)?;
        let state: SessionState = checkpoint::read_json(&state_file, FORMAT)?;
        let corrupt = |why: String| {
            SearchError::Checkpoint(CheckpointError::Corrupt {
                path: state_file.clone(),
                why,
            })
        };
        state.validate().map_err(corrupt)?;
        let legacy = dir.join(LEGACY_WEIGHTS_FILE);
        // Its configuration must still make a session here (valid numbers, the data present).
        let mut s = Self::build(state.config.clone(), lock).map_err(|e| {
            SearchError::Invalid(format!(
                "{}: its configuration cannot start a session here: {e}",
                state_file.display()
            ))
        })?;
        let tensors = match (&state.snapshot, state.pretrain_epochs_done) {
            (Some(r), _) => Some((checkpoint::read_snapshot(dir, r)?, dir.join(&r.file))),
            (None, 0) if legacy.exists() => {
                return Err(corrupt(format!(
                    "it says stage 1 has not run, yet {} holds weights; one of the two was edited or damaged",
                    legacy.display()
                )))
            }
            (None, 0) => None,
            (None, _) if legacy.exists() => Some((checkpoint::read_tensors(&legacy)?, legacy.clone())),
            (None, n) => {
                return Err(corrupt(format!(
                    "it records {n} stage-1 epochs but names no weights snapshot"
                )))
            }
        };
        if let Some((tensors, path)) = tensors {
            let snap = s
                .state_from_tensors(tensors, state.pretrain_epochs_done)
                .map_err(|why| {
                    SearchError::Checkpoint(CheckpointError::Corrupt {
                        path: path.clone(),
                        why,
                    })
                })?;
            s.trainer.restore(&snap)?;
            s.snapshot = Some(snap);
        }
        s.snapshot_ref = state.snapshot;
        s.ppo = state.ppo;
        s.pending = state.pending;
        s.best = state.best;
        s.history = state.history;
        Ok(s)
    }

    /// The flag a front-end sets to cancel the running primitive (Ctrl-C, kernel interrupt).
    pub fn cancel_flag(&self) -> CancelFlag {
        self.cancel.clone()
    }

    /// Use a front-end's flag (one Ctrl-C handler for every session it builds).
    pub fn set_cancel_flag(&mut self, flag: CancelFlag) {
        self.cancel = flag;
    }

    /// Where progress events go (a progress bar, notebook output).
    pub fn set_progress(&mut self, f: impl FnMut(&Progress) + Send + 'static) {
        self.progress = Some(Box::new(f));
    }

    fn emit(progress: &mut Option<ProgressFn>, stage: &str, fraction: f64, message: String) {
        if let Some(p) = progress.as_mut() {
            p(&Progress {
                stage: stage.to_owned(),
                fraction,
                message,
            });
        }
    }

    /// One line: device, stage, updates — the REPL prompt's content.
    pub fn status(&self) -> String {
        let stage = if self.snapshot.is_none() {
            "new".to_owned()
        } else if self.trainer.epochs_done < self.config.pretrain_epochs {
            format!("pretrain {}/{}", self.trainer.epochs_done, self.config.pretrain_epochs)
        } else {
            "search".to_owned()
        };
        format!(
            "{} · {} · update {}{}",
            device::device_name(self.device.device),
            stage,
            self.ppo.updates,
            if self.pending.is_empty() {
                String::new()
            } else {
                format!(" · {} pending", self.pending.len())
            }
        )
    }

    pub fn pretrain_epochs_done(&self) -> usize {
        if self.snapshot.is_some() {
            self.trainer.epochs_done
        } else {
            0
        }
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

    /// The policy of the best θ so far (the current θ before the first update).
    pub fn best_policy(&self) -> Result<Policy, SearchError> {
        let t = self.best.as_ref().map(|b| &b.theta).unwrap_or(&self.ppo.theta);
        Ok(Policy::AwsTheta {
            probs: t.distribution()?,
            source: None,
        })
    }

    // ---- stage 1 -------------------------------------------------------------------------

    /// Stage 1: `epochs` more epochs (default: the rest of the schedule) with pairs drawn
    /// uniformly per image; then snapshot weights and momentum and checkpoint.
    pub fn pretrain(&mut self, epochs: Option<usize>) -> Result<PretrainReport, SearchError> {
        if self.ppo.updates > 0 || !self.pending.is_empty() {
            return Err(SearchError::Invalid(
                "the search has started: more pretraining would change the shared weights its rewards were measured from. `reset` to start over".into(),
            ));
        }
        let done = self.pretrain_epochs_done();
        let n = within(
            &crate::limits::EPOCHS,
            epochs.unwrap_or(self.config.pretrain_epochs.saturating_sub(done)),
        )?;
        if n == 0 {
            return Err(SearchError::Invalid(format!(
                "stage 1 is complete ({done} of {} epochs); `pretrain N` with N > 0 trains past the schedule at its final rate",
                self.config.pretrain_epochs
            )));
        }
        self.cancel.reset();
        let before = self.trainer.snapshot();
        self.trainer.config = stage1_config(&self.config);
        let mut aug = PolicyAugment::new(self.pipeline.clone(), Policy::AwsUniform.sampler()?);
        let (cancel, progress, total, first) = (self.cancel.clone(), &mut self.progress, n, done);
        let result = self.trainer.fit(
            &self.splits.train,
            Some(&self.splits.val),
            n,
            &mut aug,
            &cancel,
            &mut |event| {
                let crate::train::FitEvent::Batch(b) = event else {
                    return;
                };
                let f = ((b.epoch - 1 - first) as f64 + b.batch as f64 / b.batches as f64) / total as f64;
                Self::emit(
                    progress,
                    "pretrain",
                    f,
                    format!(
                        "epoch {} batch {}/{} loss {:.4} {:.0} img/s",
                        b.epoch, b.batch, b.batches, b.loss, b.images_per_sec
                    ),
                );
            },
        );
        let epochs = match result {
            Ok(r) => r,
            Err(e) => {
                self.trainer.restore(&before)?;
                return Err(e.into());
            }
        };
        let old_snapshot = self.snapshot.replace(self.trainer.snapshot());
        let old_epochs = self.history.pretrain.len();
        self.history.pretrain.extend(epochs.iter().cloned());
        self.commit(true, move |s| {
            let _ = s.trainer.restore(&before);
            s.snapshot = old_snapshot;
            s.history.pretrain.truncate(old_epochs);
        })?;
        let warning = crate::train::divergence_warning(&epochs, self.splits.train.info.classes.len());
        Ok(PretrainReport {
            epochs,
            epochs_done: self.trainer.epochs_done,
            schedule_epochs: self.config.pretrain_epochs,
            warning,
        })
    }

    // ---- sampling ------------------------------------------------------------------------

    /// `n` pairs drawn from θ with their probabilities, and the current θ applied to a few
    /// validation images (the same draws) for a preview.
    pub fn sample(&mut self, n: usize) -> Result<SampleReport, SearchError> {
        let n = n.clamp(1, 64);
        let policy = self.current_policy()?;
        let sampler = policy.sampler()?;
        let dist = policy
            .distribution()
            .ok_or(SearchError::Invalid("θ has no distribution".into()))?;
        self.samples += 1;
        let mut rng = Rng::derive(
            self.config.seed,
            &[STREAM_SAMPLE, self.ppo.updates as u64, self.samples],
        );
        let take = (n as i64).min(self.splits.val.len());
        let originals = self.splits.val.images.narrow(0, 0, take).to_device(Device::Cpu);
        let (_, _, h, w) = originals.size4().map_err(crate::augment::AugmentError::from)?;
        let draw = sampler.draw(take as usize, h, w, &mut rng);
        let mut augmented = originals.shallow_clone();
        for stage in &draw.stages {
            augmented = apply_ops(&augmented, stage, &self.pipeline.ops)?;
        }
        let pairs = draw.pairs.clone().unwrap_or_default();
        let preview_ops = (0..take as usize)
            .map(|i| {
                draw.stages
                    .iter()
                    .map(|s| s[i].to_string())
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect();
        let to_vec = |t: &Tensor| Vec::<u8>::try_from(t.contiguous().view([-1])).unwrap_or_default();
        let mut listed: Vec<(usize, String, f64)> = pairs
            .iter()
            .map(|&k| (k as usize, pair_name(k as usize), dist.probs()[k as usize]))
            .collect();
        // More draws than previews: list n pairs, drawing the rest without images.
        let cdf = dist.cdf();
        while listed.len() < n {
            let k = dist.sample_with(&cdf, rng.next_f64());
            listed.push((k, pair_name(k), dist.probs()[k]));
        }
        Ok(SampleReport {
            pairs: listed,
            preview_shape: originals.size(),
            preview_original: to_vec(&originals),
            preview_augmented: to_vec(&augmented),
            preview_ops,
        })
    }

    /// Validation image `index` under each of the 36 operations (positive sign).
    pub fn gallery(&self, index: usize) -> Result<super::OpGallery, SearchError> {
        let n = self.splits.val.len();
        if n == 0 {
            return Err(SearchError::Invalid("the validation split is empty".into()));
        }
        let i = (index as i64).min(n - 1);
        let one = self.splits.val.images.narrow(0, i, 1).to_device(Device::Cpu);
        let ops = crate::augment::space::aws_ops();
        let batch = one
            .f_expand([ops.len() as i64, -1, -1, -1], false)
            .and_then(|t| t.f_contiguous())
            .map_err(crate::augment::AugmentError::from)?;
        let augmented = apply_ops(&batch, &ops, &self.pipeline.ops)?;
        let all = Tensor::f_cat(&[&one, &augmented], 0).map_err(crate::augment::AugmentError::from)?;
        let mut labels = vec!["original".to_owned()];
        labels.extend((0..ops.len()).map(crate::augment::space::aws_name));
        Ok(super::OpGallery {
            shape: all.size(),
            pixels: Vec::<u8>::try_from(all.contiguous().view([-1])).unwrap_or_default(),
            labels,
        })
    }

    // ---- stage 2 -------------------------------------------------------------------------

    /// Seeds of trajectory `index` of the current update: the data order is stage 1's; with
    /// `common_random_numbers` crops, flips and Cutout are shared by the update's trajectories
    /// too, so only θ's draws differ between them.
    fn trajectory_seeds(&self, index: usize) -> TrajectorySeeds {
        let update = mix(mix(self.config.seed, STREAM_TRAJECTORY), self.ppo.updates as u64);
        let own = mix(update, index as u64);
        let augment = if self.config.common_random_numbers {
            mix(update, u64::MAX)
        } else {
            own
        };
        TrajectorySeeds {
            order: self.config.seed,
            augment,
            policy: own,
        }
    }

    /// Seeds of probe trajectory `index`: the same for every policy, so probes and `compare`
    /// pair trajectories with common random numbers.
    fn probe_seeds(&self, index: usize) -> TrajectorySeeds {
        let s = mix(mix(self.config.seed, STREAM_PROBE), index as u64);
        TrajectorySeeds {
            order: self.config.seed,
            augment: s,
            policy: s,
        }
    }

    /// Stage 2 measures rewards from the weights at the *end* of stage 1; refuse before.
    fn require_stage1(&self) -> Result<(), SearchError> {
        let done = self.pretrain_epochs_done();
        if done == 0 {
            return Err(SearchError::NotPretrained);
        }
        if done < self.config.pretrain_epochs {
            return Err(SearchError::Stage1Incomplete {
                done,
                total: self.config.pretrain_epochs,
            });
        }
        Ok(())
    }

    /// Put the model back to the snapshot and the stage-1 config (after trajectories).
    fn back_to_snapshot(&mut self) -> Result<(), SearchError> {
        if let Some(s) = &self.snapshot {
            self.trainer.restore(s)?;
        }
        self.trainer.config = stage1_config(&self.config);
        Ok(())
    }

    /// The devices trajectories run on: the config's list, else every CUDA device when the
    /// session is on CUDA and there are several, else just the session's device.
    fn trajectory_devices(&self) -> Result<Vec<Device>, SearchError> {
        if !self.config.trajectory_devices.is_empty() {
            return self
                .config
                .trajectory_devices
                .iter()
                .map(|&d| Ok(device::resolve(d)?.device))
                .collect();
        }
        let n = device::cuda_device_count();
        Ok(match self.device.device {
            Device::Cuda(_) if n > 1 => (0..n).map(Device::Cuda).collect(),
            d => vec![d],
        })
    }

    /// Model replicas (and data copies) for every trajectory device after the first.
    fn ensure_replicas(&mut self) -> Result<(), SearchError> {
        let devices = self.trajectory_devices()?;
        if self.replicas.len() + 1 == devices.len()
            && self.replicas.iter().zip(&devices[1..]).all(|(r, d)| r.device == *d)
        {
            return Ok(());
        }
        let info = self.splits.train.info.clone();
        self.replicas = devices[1..]
            .iter()
            .map(|&d| {
                let model = Model::new(
                    self.config.model,
                    info.channels,
                    info.num_classes(),
                    d,
                    self.config.seed,
                )?;
                Ok(Replica {
                    device: d,
                    trainer: Trainer::new(model, self.pipeline.normalize.clone(), stage1_config(&self.config)),
                    train: self.splits.train.to_device(d),
                    val: self.splits.val.to_device(d),
                })
            })
            .collect::<Result<_, SearchError>>()?;
        Ok(())
    }

    /// Run trajectories of `policy`, one per seed, spread over the trajectory devices (in
    /// parallel threads when there are several); all or nothing.
    /// What `total` trajectories of `policy` need, once stage 1 is complete.
    /// `pairs`: the `pairs_per_trajectory` variant (0: per image), for the search's own
    /// trajectories only — probes and comparisons sample a policy as it will be used.
    fn fine_tune_job(&self, policy: &Policy, label: &str, total: usize, pairs: usize) -> Result<FineTune, SearchError> {
        self.require_stage1()?;
        let snap = self.snapshot.as_ref().ok_or(SearchError::NotPretrained)?.copy();
        Ok(FineTune {
            config: self.config.clone(),
            pipeline: self.pipeline.clone(),
            snap,
            policy: policy.clone(),
            cancel: self.cancel.clone(),
            label: label.to_owned(),
            total,
            pairs,
        })
    }

    /// How many trajectories train together as one grouped model (the config's
    /// `trajectory_batch`; 0 = 8 on CUDA, 1 on the CPU).
    fn trajectory_batch(&self) -> usize {
        match self.config.trajectory_batch {
            0 if self.device.device.is_cuda() => 8,
            0 => 1,
            n => n,
        }
    }

    fn trajectories(
        &mut self,
        policy: &Policy,
        seeds: &[TrajectorySeeds],
        label: &str,
        pairs: usize,
    ) -> Result<(Vec<Trajectory>, Vec<String>), SearchError> {
        let job = self.fine_tune_job(policy, label, seeds.len(), pairs)?;
        self.cancel.reset();
        self.ensure_replicas()?;
        let workers = self.replicas.len() + 1;
        let batch = self.trajectory_batch();
        if workers == 1 && batch > 1 && seeds.len() > 1 {
            return self.batched_trajectories(&job, seeds, batch);
        }
        let mut results: Vec<Option<TrajectoryResult>> = (0..seeds.len()).map(|_| None).collect();
        let progress = &mut self.progress;
        let (trainer, splits) = (&mut self.trainer, &self.splits);
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for (w, replica) in self.replicas.iter_mut().enumerate() {
                let job = FineTune {
                    snap: job.snap.copy(),
                    config: job.config.clone(),
                    pipeline: job.pipeline.clone(),
                    policy: job.policy.clone(),
                    cancel: job.cancel.clone(),
                    label: job.label.clone(),
                    total: job.total,
                    pairs: job.pairs,
                };
                handles.push(scope.spawn(move || {
                    (w + 1..seeds.len())
                        .step_by(workers)
                        .map(|i| {
                            (
                                i,
                                job.run(
                                    &mut replica.trainer,
                                    &replica.train,
                                    &replica.val,
                                    seeds[i],
                                    i,
                                    &mut |_| {},
                                ),
                            )
                        })
                        .collect::<Vec<_>>()
                }));
            }
            // The calling thread works too, on the session's own device, and reports progress.
            for i in (0..seeds.len()).step_by(workers) {
                let r = job.run(trainer, &splits.train, &splits.val, seeds[i], i, &mut |p| {
                    Self::emit(progress, &p.stage, p.fraction, p.message)
                });
                results[i] = Some(r);
            }
            for h in handles {
                // A panicked worker leaves its slots empty; they are reported as failures below.
                if let Ok(done) = h.join() {
                    done.into_iter().for_each(|(i, r)| results[i] = Some(r));
                }
            }
        });
        let mut outcome = Ok((Vec::new(), Vec::new()));
        for (i, r) in results.into_iter().enumerate() {
            match (r, &mut outcome) {
                (Some(Ok(Ok(t))), Ok((done, _))) => done.push(t),
                (Some(Ok(Err(why))), Ok((_, discarded))) => discarded.push(why),
                (Some(Err(e)), Ok(_)) => outcome = Err(e),
                (None, Ok(_)) => {
                    outcome = Err(SearchError::Invalid(format!(
                        "trajectory {i} was lost: a worker thread panicked"
                    )))
                }
                _ => {}
            }
        }
        self.back_to_snapshot()?;
        outcome
    }

    /// `trajectories` on the session's device, `batch` at a time as one grouped model.
    fn batched_trajectories(
        &mut self,
        job: &FineTune,
        seeds: &[TrajectorySeeds],
        batch: usize,
    ) -> Result<(Vec<Trajectory>, Vec<String>), SearchError> {
        let info = self.splits.train.info.clone();
        let (mut done, mut discarded) = (Vec::new(), Vec::new());
        let progress = &mut self.progress;
        for (c, chunk) in seeds.chunks(batch).enumerate() {
            let configs: Vec<TrainConfig> = chunk.iter().map(|s| job.trajectory_config(*s)).collect();
            let reusable = match self.batched.as_mut() {
                Some(t) if t.members() == chunk.len() && t.model.arch == self.config.model => {
                    t.set_configs(configs.clone()).is_ok()
                }
                _ => false,
            };
            if !reusable {
                self.batched = None; // free the old network before building the next
                let model = Model::members(
                    self.config.model,
                    info.channels,
                    info.num_classes(),
                    chunk.len() as i64,
                    self.device.device,
                )?;
                self.batched = Some(BatchedTrainer::new(model, self.pipeline.normalize.clone(), configs)?);
            }
            let Some(trainer) = self.batched.as_mut() else { continue };
            let results = job.run_batched(
                trainer,
                &self.splits.train,
                &self.splits.val,
                chunk,
                c * batch,
                &mut |p| Self::emit(progress, &p.stage, p.fraction, p.message),
            )?;
            for r in results {
                match r {
                    Ok(t) => done.push(t),
                    Err(why) => discarded.push(why),
                }
            }
        }
        self.back_to_snapshot()?;
        Ok((done, discarded))
    }

    /// Stage 2: `k` trajectories (default: the config's) under the current θ; they wait for
    /// `update`. NaN/Inf trajectories are discarded and reported.
    pub fn evaluate(&mut self, k: Option<usize>) -> Result<EvaluateReport, SearchError> {
        let k = trajectory_count(k, self.config.trajectories, "evaluate")?;
        let policy = self.current_policy()?;
        let seeds: Vec<TrajectorySeeds> = (0..k).map(|i| self.trajectory_seeds(self.pending.len() + i)).collect();
        let (done, discarded) = self.trajectories(&policy, &seeds, "evaluate", self.config.pairs_per_trajectory)?;
        let before = self.pending.len();
        self.pending.extend(done.iter().cloned());
        self.commit(false, |s| s.pending.truncate(before))?;
        Ok(EvaluateReport::new(done, discarded, self.pending.len()))
    }

    // ---- the update ----------------------------------------------------------------------

    /// PPO from the waiting trajectories; keeps the best θ by mean reward; checkpoints.
    pub fn update(&mut self) -> Result<UpdateRecord, SearchError> {
        if self.pending.is_empty() {
            return Err(SearchError::NothingToUpdate);
        }
        let start = Instant::now();
        let theta_old = self.ppo.theta.clone();
        let mut next = self.ppo.clone();
        let outcome = ppo::update(&mut next, &self.pending, &self.config.ppo)?;
        // Nothing that could not be written and read back is kept.
        next.validate()?;
        let update = next.updates;
        let best = match &self.best {
            Some(b) if b.mean_reward >= outcome.mean_reward => b.clone(),
            _ => BestTheta {
                update,
                mean_reward: outcome.mean_reward,
                theta: theta_old,
            },
        };
        let dist = next.theta.distribution()?;
        let (op1_marginal, op2_marginal) = dist.marginals();
        let record = UpdateRecord {
            update,
            reward: super::stats::Estimate::of(&outcome.rewards),
            ppo: outcome,
            op1_marginal,
            op2_marginal,
            top_pairs: dist.top(5).into_iter().map(|(k, p)| (pair_name(k), p)).collect(),
            best_update: best.update,
            best_mean_reward: best.mean_reward,
            seconds: start.elapsed().as_secs_f64() + self.pending.iter().map(|t| t.seconds).sum::<f64>(),
        };
        let undo = (
            std::mem::replace(&mut self.ppo, next),
            self.best.replace(best),
            std::mem::take(&mut self.pending),
        );
        self.history.updates.push(record.clone());
        self.commit(false, move |s| {
            (s.ppo, s.best, s.pending) = undo;
            s.history.updates.pop();
        })?;
        Ok(record)
    }

    /// `n` × (evaluate, update). Ctrl-C keeps the completed updates and rolls back the one
    /// in flight.
    pub fn step(&mut self, n: usize) -> Result<super::StepReport, SearchError> {
        let mut out = Vec::with_capacity(within(&crate::limits::STEPS, n)?);
        for _ in 0..n.max(1) {
            let pending_before = self.pending.len();
            let e = self.evaluate(None)?;
            if e.trajectories.is_empty() && pending_before == 0 {
                let lr = self
                    .config
                    .finetune_lr
                    .map_or_else(|| "stage 1's final rate".to_owned(), |l| format!("finetune_lr={l}"));
                return Err(SearchError::Invalid(format!(
                    "every trajectory of update {} diverged ({}), so θ was not updated; the fine-tune rate ({lr}) is likely too high for these weights: lower it with `config finetune_lr=…` and `reset`, or check the data",
                    self.ppo.updates + 1,
                    e.discarded.first().map(String::as_str).unwrap_or("no reason recorded")
                )));
            }
            match self.update() {
                Ok(u) => out.push(super::Step { evaluate: e, update: u }),
                Err(err) => {
                    self.pending.truncate(pending_before);
                    return Err(err);
                }
            }
        }
        Ok(super::StepReport { steps: out })
    }

    /// θ now: the `top` most likely pairs, entropy, marginals.
    pub fn policy(&self, top: usize) -> Result<super::PolicyReport, SearchError> {
        let top = top.min(crate::limits::TOP_PAIRS.max as usize);
        let dist = self.theta().distribution()?;
        let (op1, op2) = dist.marginals();
        let top = dist
            .top(top)
            .into_iter()
            .map(|(k, p)| (crate::augment::space::pair_name(k), p))
            .collect();
        Ok(super::PolicyReport {
            updates: self.ppo.updates,
            entropy: dist.entropy(),
            top,
            op1,
            op2,
            null: self.current_null().cloned(),
        })
    }

    // ---- probing and ground truth ------------------------------------------------------

    /// The proxy reward of any fixed policy, without touching θ.
    pub fn probe(&mut self, policy: &Policy, k: Option<usize>) -> Result<ProbeReport, SearchError> {
        let k = trajectory_count(k, self.config.probe_trajectories, "probe")?;
        let spec = policy.to_string();
        let seeds: Vec<TrajectorySeeds> = (0..k).map(|i| self.probe_seeds(i)).collect();
        let (done, discarded) = self.trajectories(policy, &seeds, "probe", 0)?;
        if done.is_empty() {
            return Err(SearchError::Invalid(format!(
                "every probe trajectory of {spec} diverged: {}",
                discarded.join("; ")
            )));
        }
        let report = ProbeReport::new(spec, done);
        self.history.probes.push(report.clone());
        self.commit(false, |s| {
            s.history.probes.pop();
        })?;
        Ok(report)
    }

    /// Probe trajectory `index` of `policy` on a model of its own, returned with the
    /// fine-tuned trainer: what the reward was measured on can be inspected (the same seeds,
    /// so the same trajectory as `probe`'s `index`-th).
    pub fn trajectory_with_model(
        &mut self,
        policy: &Policy,
        index: usize,
    ) -> Result<(Trajectory, Trainer), SearchError> {
        let job = self.fine_tune_job(policy, "trajectory", 1, 0)?;
        let info = &self.splits.train.info;
        let model = Model::new(
            self.config.model,
            info.channels,
            info.num_classes(),
            self.device.device,
            self.config.seed,
        )?;
        let mut trainer = Trainer::new(model, self.pipeline.normalize.clone(), stage1_config(&self.config));
        self.cancel.reset();
        let t = job
            .run(
                &mut trainer,
                &self.splits.train,
                &self.splits.val,
                self.probe_seeds(index),
                0,
                &mut |_| {},
            )?
            .map_err(SearchError::Invalid)?;
        Ok((t, trainer))
    }

    /// Paired proxy comparison of two or more policies: `k` trajectories each (default: the
    /// probe count) with common random numbers — trajectory i of every policy shares the data
    /// order, crops, flips and Cutout holes, so the differences are the policies' own. Every
    /// pair of policies is tested (exact sign-flip test, Holm-corrected across pairs).
    /// `pairing: Independent` runs each policy's trajectories on their own random numbers,
    /// as separate official-style runs would (the benchmark's baseline).
    pub fn compare(
        &mut self,
        policies: &[Policy],
        k: Option<usize>,
        pairing: super::Pairing,
    ) -> Result<super::CompareReport, SearchError> {
        if policies.len() < 2 {
            return Err(SearchError::Invalid(
                "compare needs at least two policies: `compare A B [k]`".into(),
            ));
        }
        let k = trajectory_count(k, self.config.probe_trajectories, "compare")?;
        let start = Instant::now();
        let mut rewards: Vec<Vec<Option<f64>>> = Vec::with_capacity(policies.len());
        let mut discarded = Vec::new();
        for (j, p) in policies.iter().enumerate() {
            let seeds: Vec<TrajectorySeeds> = (0..k)
                .map(|i| {
                    let s = self.probe_seeds(i);
                    match pairing {
                        super::Pairing::CommonRandomNumbers => s,
                        super::Pairing::Independent => {
                            let own = mix(s.policy, j as u64 + 1);
                            TrajectorySeeds {
                                order: own,
                                augment: own,
                                policy: own,
                            }
                        }
                    }
                })
                .collect();
            let label = format!("compare {}/{}", j + 1, policies.len());
            let (done, dropped) = self.trajectories(p, &seeds, &label, 0)?;
            discarded.extend(dropped.into_iter().map(|d| format!("{p}: {d}")));
            // Keep trajectory i's place so pairs stay aligned when one diverged.
            let by_seed: Vec<Option<f64>> = seeds
                .iter()
                .map(|s| done.iter().find(|t| t.seed == s.policy).map(|t| t.reward))
                .collect();
            rewards.push(by_seed);
        }
        let names: Vec<String> = policies.iter().map(ToString::to_string).collect();
        Ok(super::CompareReport::new(
            names,
            rewards,
            pairing,
            discarded,
            start.elapsed().as_secs_f64(),
        ))
    }

    /// Run the search's noise-only null (`replicates` searches, default the config's) over
    /// the updates so far and judge θ against it; kept in the history.
    pub fn null(&mut self, replicates: Option<usize>) -> Result<super::NullReport, SearchError> {
        let replicates = replicates.unwrap_or(self.config.null_replicates);
        if !(2..=super::null::MAX_REPLICATES).contains(&replicates) {
            return Err(SearchError::Invalid(format!(
                "a null takes 2 to {} replicates, not {replicates}",
                super::null::MAX_REPLICATES
            )));
        }
        if self.history.updates.is_empty() {
            return Err(SearchError::Invalid(
                "no updates yet: the null replays the search's updates; run `step` first".into(),
            ));
        }
        let mut inputs = Vec::with_capacity(self.history.updates.len());
        for u in &self.history.updates {
            if u.ppo.applications.len() != u.ppo.rewards.len() {
                return Err(SearchError::Invalid(format!("update {} was recorded before augwise kept pair-application totals; a null needs a search run with this version", u.update)));
            }
            inputs.push(super::null::NullInput::of(&u.ppo));
        }
        self.cancel.reset();
        let (cancel, progress) = (self.cancel.clone(), &mut self.progress);
        let seed = mix(self.config.seed, STREAM_NULL);
        let sims = super::null::simulate(&inputs, &self.config.ppo, replicates, seed, &mut |done| {
            Self::emit(
                progress,
                "null",
                done as f64 / replicates as f64,
                format!("null search {done}/{replicates}"),
            );
            !cancel.is_cancelled()
        });
        let sims = match sims {
            Ok(s) => s,
            Err(_) if self.cancel.is_cancelled() => return Err(SearchError::Cancelled),
            Err(e) => return Err(e.into()),
        };
        let score = super::null::score(&inputs, mix(seed, 1));
        let report = super::null::judge(&self.ppo.theta, self.ppo.updates, &sims, score)?;
        let before = self.history.null.replace(report.clone());
        self.commit(false, move |s| s.history.null = before)?;
        Ok(report)
    }

    /// The null of the current θ, if one was run since the last update.
    pub fn current_null(&self) -> Option<&super::NullReport> {
        self.history.null.as_ref().filter(|n| n.updates == self.ppo.updates)
    }

    /// Train from scratch on search-train + validation with `policy`, and report test accuracy
    /// after each epoch (the after-search retrain; the ground truth for `correlate`).
    pub fn fulltrain(&mut self, policy: &Policy, epochs: Option<usize>) -> Result<FulltrainReport, SearchError> {
        let epochs = within(&crate::limits::EPOCHS, epochs.unwrap_or(self.config.fulltrain_epochs))?.max(1);
        let data = self.splits.train.concat(&self.splits.val)?;
        let info = &data.info;
        let seed = mix(self.config.seed, STREAM_FULLTRAIN);
        let model = Model::new(
            self.config.model,
            info.channels,
            info.num_classes(),
            self.device.device,
            seed,
        )?;
        let cfg = TrainConfig {
            seed,
            schedule: self.config.fulltrain_schedule.for_epochs(epochs),
            ..stage1_config(&self.config)
        };
        let mut trainer = Trainer::new(model, self.pipeline.normalize.clone(), cfg);
        let mut aug = PolicyAugment::new(self.pipeline.clone(), policy.sampler()?);
        self.cancel.reset();
        let (mut reports, mut test) = (Vec::new(), Vec::new());
        for e in 0..epochs {
            let (cancel, progress) = (self.cancel.clone(), &mut self.progress);
            let r = trainer.train_epoch(&data, &mut aug, &cancel, &mut |b: &BatchProgress| {
                let f = (e as f64 + b.batch as f64 / b.batches as f64) / epochs as f64;
                Self::emit(
                    progress,
                    "fulltrain",
                    f,
                    format!(
                        "epoch {}/{} batch {}/{} loss {:.4}",
                        e + 1,
                        epochs,
                        b.batch,
                        b.batches,
                        b.loss
                    ),
                );
            })?;
            test.push(trainer.evaluate(&self.splits.test)?);
            reports.push(r);
        }
        let warning = crate::train::divergence_warning(&reports, data.info.classes.len());
        let report = FulltrainReport {
            policy: policy.to_string(),
            epochs: reports,
            test_accuracy: test,
            warning,
        };
        self.history.fulltrains.push(report.clone());
        self.commit(false, |s| {
            s.history.fulltrains.pop();
        })?;
        Ok(report)
    }

    /// Probe and full-train each policy; compare the rankings.
    pub fn correlate(
        &mut self,
        policies: &[Policy],
        fulltrain_epochs: Option<usize>,
    ) -> Result<CorrelateReport, SearchError> {
        if policies.len() < 2 {
            return Err(SearchError::Invalid("correlate needs at least two policies".into()));
        }
        let mut rows = Vec::with_capacity(policies.len());
        let mut proxies = Vec::with_capacity(policies.len());
        for p in policies {
            let proxy = self.probe(p, None)?.estimate;
            let full = self.fulltrain(p, fulltrain_epochs)?.final_test_accuracy();
            rows.push((p.to_string(), proxy.mean, full));
            proxies.push(proxy);
        }
        Ok(CorrelateReport::new(
            rows,
            proxies,
            mix(self.config.seed, STREAM_BOOTSTRAP),
        ))
    }

    /// Back to a fresh session with the same config (θ uniform, no snapshot).
    pub fn reset(&mut self) -> Result<(), SearchError> {
        // The fresh session takes the run directory over from this one (same process).
        let fresh = Session::new(self.config.clone(), &self.run_dir)?;
        let progress = self.progress.take();
        *self = fresh;
        self.progress = progress;
        Ok(())
    }

    // ---- checkpoints ---------------------------------------------------------------------

    /// Write the checkpoint to `dir`: the snapshot first when `weights` (stage 1 changed
    /// them, or `dir` is new), then `session.json` naming it — the one rename that commits.
    /// Returns the snapshot `session.json` now names. A state that would not read back (a
    /// non-finite number serde would write as `null`) is refused before `session.json` is
    /// written, and a snapshot written for it removed.
    fn write_checkpoint(&self, dir: &Path, weights: bool) -> Result<Option<SnapshotRef>, CheckpointError> {
        self.lock.check_current()?;
        let state_file = dir.join(STATE_FILE);
        let mut state = SessionState {
            format: FORMAT.into(),
            config: self.config.clone(),
            pretrain_epochs_done: self.pretrain_epochs_done(),
            ppo: self.ppo.clone(),
            pending: self.pending.clone(),
            best: self.best.clone(),
            history: self.history.clone(),
            snapshot: self.snapshot_ref.clone(),
        };
        let refuse = |why: String| CheckpointError::Io {
            action: "write",
            path: state_file.clone(),
            why: format!("augwise will not write a checkpoint it could not read back: {why}"),
        };
        let check = |state: &SessionState| -> Result<Vec<u8>, CheckpointError> {
            let json = serde_json::to_vec_pretty(state).map_err(|e| refuse(e.to_string()))?;
            let back: SessionState = serde_json::from_slice(&json).map_err(|e| refuse(e.to_string()))?;
            back.validate().map_err(refuse)?;
            Ok(json)
        };
        let mut written = None;
        if weights {
            if let Some(s) = &self.snapshot {
                let mut tensors: Vec<(String, Tensor)> = s
                    .weights
                    .0
                    .iter()
                    .map(|(k, t)| (format!("w/{k}"), t.shallow_clone()))
                    .collect();
                tensors.extend(s.momentum.0.iter().map(|(k, t)| (format!("m/{k}"), t.shallow_clone())));
                tensors.push(("meta/epochs".into(), Tensor::from_slice(&[s.epochs_done as i64])));
                let r = checkpoint::write_snapshot(dir, &tensors)?;
                written = Some(r.clone());
                state.snapshot = Some(r);
            }
        }
        let committed = check(&state).and_then(|json| checkpoint::write_atomic(&state_file, &json));
        if let Err(e) = committed {
            // The new snapshot is unreferenced: remove it unless the old checkpoint names it.
            if let Some(r) = written.filter(|r| Some(r) != self.snapshot_ref.as_ref() || dir != self.run_dir) {
                let _ = std::fs::remove_file(dir.join(&r.file));
            }
            return Err(e);
        }
        checkpoint::remove_other_snapshots(dir, state.snapshot.as_ref());
        if state.snapshot.is_some() {
            // A run from before content addressing: its old file is unreferenced now.
            let _ = std::fs::remove_file(dir.join(LEGACY_WEIGHTS_FILE));
        }
        Ok(state.snapshot)
    }

    /// Checkpoint after a primitive changed the session; if that fails, `undo` puts the
    /// in-memory session back as it was, so memory never runs ahead of disk.
    fn commit(&mut self, weights: bool, undo: impl FnOnce(&mut Self)) -> Result<(), SearchError> {
        let dir = self.run_dir.clone();
        match self.write_checkpoint(&dir, weights) {
            Ok(r) => {
                self.snapshot_ref = r;
                Ok(())
            }
            Err(e) => {
                undo(self);
                Err(match e {
                    e @ CheckpointError::Io { .. } => SearchError::Unsaved(Box::new(e)),
                    other => SearchError::Checkpoint(other),
                })
            }
        }
    }

    /// Write the whole checkpoint now; `save DIR` writes it to another directory (taking its
    /// lock) and goes on there.
    pub fn save(&mut self, dir: Option<&Path>) -> Result<PathBuf, SearchError> {
        let target = dir.map(Path::to_owned).unwrap_or_else(|| self.run_dir.clone());
        let moving = target != self.run_dir;
        let lock = if moving { Some(RunLock::acquire(&target)?) } else { None };
        let r = self.write_checkpoint(&target, true)?;
        self.snapshot_ref = r;
        if let Some(l) = lock {
            self.lock = l;
            self.run_dir = target;
        }
        Ok(self.run_dir.clone())
    }

    fn state_from_tensors(&self, tensors: Vec<(String, Tensor)>, epochs: usize) -> Result<TrainerState, String> {
        let mut weights = Vec::new();
        let mut momentum = Vec::new();
        let mut saved_epochs = None;
        let dev = self.device.device;
        for (k, t) in tensors {
            if let Some(name) = k.strip_prefix("w/") {
                weights.push((name.to_owned(), t.to_device(dev)));
            } else if let Some(name) = k.strip_prefix("m/") {
                momentum.push((name.to_owned(), t.to_device(dev)));
            } else if k == "meta/epochs" {
                saved_epochs = t.f_int64_value(&[0]).ok();
            }
        }
        if saved_epochs != Some(epochs as i64) {
            return Err(format!(
                "weights are from epoch {saved_epochs:?} but session.json says {epochs}"
            ));
        }
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        momentum.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = self.trainer.model.snapshot();
        if weights.len() != expected.0.len()
            || weights
                .iter()
                .zip(&expected.0)
                .any(|(a, b)| a.0 != b.0 || a.1.size() != b.1.size())
        {
            return Err(format!("the weights do not fit a {} model", self.config.model));
        }
        Ok(TrainerState {
            weights: Weights(weights),
            momentum: SgdState(momentum),
            epochs_done: epochs,
        })
    }

    /// The pair counts of every trajectory so far (for charts and teaching).
    pub fn pending_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; NUM_PAIRS];
        for t in &self.pending {
            for (a, b) in c.iter_mut().zip(&t.counts) {
                *a += b;
            }
        }
        c
    }

    /// The two ops of pair `k`, as operations.
    pub fn pair(k: usize) -> (crate::augment::Op, crate::augment::Op) {
        let (a, b) = pair_ops(k);
        let ops = aws_ops();
        (ops[a], ops[b])
    }

    /// Images of the training split (uint8, on the CPU), for previews.
    pub fn preview_images(&self, n: i64) -> Tensor {
        self.splits
            .val
            .images
            .narrow(0, 0, n.min(self.splits.val.len()))
            .to_device(Device::Cpu)
            .to_kind(Kind::Uint8)
    }
}

type TrajectoryResult = Result<Result<Trajectory, String>, SearchError>;

/// The random numbers of one stage-2 trajectory, by source. Two trajectories with equal
/// `order` and `augment` seeds see the same batches, crops, flips and Cutout holes and differ
/// only in the policy's own draws (common random numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrajectorySeeds {
    /// Data order (stage 1's seed unless the trajectories should be independent).
    pub order: u64,
    /// Crop, flip and Cutout.
    pub augment: u64,
    /// Which ops, signs and magnitudes the policy draws per image.
    pub policy: u64,
}

/// A model replica on another device, for parallel trajectories.
struct Replica {
    device: Device,
    trainer: Trainer,
    train: crate::data::Dataset,
    val: crate::data::Dataset,
}

/// What every trajectory of one `evaluate`/`probe` needs; each worker thread owns a copy
/// (tensors are not shareable across threads, only movable).
struct FineTune {
    config: SearchConfig,
    pipeline: Pipeline,
    snap: TrainerState,
    policy: Policy,
    cancel: CancelFlag,
    label: String,
    total: usize,
    /// `SearchConfig::pairs_per_trajectory` for the search's trajectories, else 0.
    pairs: usize,
}

impl FineTune {
    /// The trajectory's augmentation: the policy's per-image sampler, or under the
    /// `pairs_per_trajectory` variant the empirical law of `pairs` draws from θ, drawn from
    /// the trajectory's own policy stream.
    fn augment(&self, seeds: TrajectorySeeds) -> Result<PolicyAugment, SearchError> {
        let policy = match self.policy.distribution() {
            Some(d) if self.pairs > 0 => Policy::AwsTheta {
                probs: d.draw_pairs(self.pairs, &mut Rng::derive(seeds.policy, &[STREAM_PAIRS_DRAWN])),
                source: None,
            },
            _ => self.policy.clone(),
        };
        Ok(PolicyAugment::new(self.pipeline.clone(), policy.sampler()?))
    }

    /// Stage 2 for one seed: reset weights and momentum to the snapshot, fine-tune at the
    /// constant rate drawing pairs per image, validation accuracy per epoch, reward = mean of
    /// the best `reward_top`. `Ok(Err(why))` when the loss went NaN/Inf (discarded).
    fn run(
        &self,
        trainer: &mut Trainer,
        train: &crate::data::Dataset,
        val: &crate::data::Dataset,
        seeds: TrajectorySeeds,
        index: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> TrajectoryResult {
        trainer.restore(&self.snap)?;
        let seed = seeds.policy;
        trainer.config = self.trajectory_config(seeds);
        let mut aug = self.augment(seeds)?;
        let start = Instant::now();
        let epochs = self.config.finetune_epochs;
        let mut accuracies = Vec::with_capacity(epochs);
        for e in 0..epochs {
            let r = trainer.train_epoch(train, &mut aug, &self.cancel, &mut |b: &BatchProgress| {
                let within = (e as f64 + b.batch as f64 / b.batches as f64) / epochs as f64;
                progress(Progress {
                    stage: self.label.clone(),
                    fraction: (index as f64 + within) / self.total as f64,
                    message: format!(
                        "trajectory {}/{} epoch {}/{} batch {}/{} loss {:.4}",
                        index + 1,
                        self.total,
                        e + 1,
                        epochs,
                        b.batch,
                        b.batches,
                        b.loss
                    ),
                });
            });
            match r {
                Ok(_) => {}
                Err(crate::train::TrainError::NonFinite { epoch, batch, loss }) => {
                    return Ok(Err(format!(
                        "trajectory seed {seed}: loss {loss} at fine-tune epoch {epoch}, batch {batch}"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            accuracies.push(trainer.evaluate(val)?);
        }
        let reward = self.reward(&accuracies);
        Ok(Ok(Trajectory {
            seed,
            reward,
            accuracies,
            counts: aug.take_counts(),
            seconds: start.elapsed().as_secs_f64(),
            pairs_drawn: self.pairs,
        }))
    }

    /// Stage 2's training config for one trajectory: the constant fine-tune rate, its seeds.
    fn trajectory_config(&self, seeds: TrajectorySeeds) -> TrainConfig {
        let lr = self
            .config
            .finetune_lr
            .unwrap_or_else(|| stage1_config(&self.config).schedule.final_lr());
        TrainConfig {
            seed: seeds.order,
            augment_seed: Some(seeds.augment),
            policy_seed: Some(seeds.policy),
            schedule: LrSchedule::Constant { lr },
            ..stage1_config(&self.config)
        }
    }

    /// METHOD.md's reward: the mean of the best `reward_top` validation accuracies.
    fn reward(&self, accuracies: &[f64]) -> f64 {
        let mut best = accuracies.to_vec();
        best.sort_by(|a, b| b.total_cmp(a));
        let top = self.config.reward_top.min(best.len()).max(1);
        best[..top].iter().sum::<f64>() / top as f64
    }

    /// The trajectories of `seeds` (indices `first`.. of `total`) as one grouped model: the
    /// same per-trajectory results `run` gives each, up to float error (tests/batched.rs).
    fn run_batched(
        &self,
        trainer: &mut BatchedTrainer,
        train: &crate::data::Dataset,
        val: &crate::data::Dataset,
        seeds: &[TrajectorySeeds],
        first: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Result<Trajectory, String>>, SearchError> {
        trainer.restore(&self.snap)?;
        let mut augs = seeds
            .iter()
            .map(|s| self.augment(*s))
            .collect::<Result<Vec<_>, SearchError>>()?;
        let start = Instant::now();
        let epochs = self.config.finetune_epochs;
        let k = seeds.len();
        let mut accuracies = vec![Vec::with_capacity(epochs); k];
        let mut dropped: Vec<Option<String>> = vec![None; k];
        for e in 0..epochs {
            let reports = trainer.train_epoch(train, &mut augs, &self.cancel, &mut |b: &BatchProgress| {
                let within = (e as f64 + b.batch as f64 / b.batches as f64) / epochs as f64;
                progress(Progress {
                    stage: self.label.clone(),
                    fraction: (first as f64 + within * k as f64) / self.total as f64,
                    message: format!(
                        "trajectories {}–{}/{} together, epoch {}/{} batch {}/{} loss {:.4}",
                        first + 1,
                        first + k,
                        self.total,
                        e + 1,
                        epochs,
                        b.batch,
                        b.batches,
                        b.loss
                    ),
                });
            })?;
            for (j, r) in reports.into_iter().enumerate() {
                if let (Err(crate::train::TrainError::NonFinite { epoch, batch, loss }), None) = (r, &dropped[j]) {
                    dropped[j] = Some(format!(
                        "trajectory seed {}: loss {loss} at fine-tune epoch {epoch}, batch {batch}",
                        seeds[j].policy
                    ));
                }
            }
            for (j, a) in trainer.evaluate(val)?.into_iter().enumerate() {
                accuracies[j].push(a);
            }
        }
        let seconds = start.elapsed().as_secs_f64() / k as f64;
        Ok(seeds
            .iter()
            .zip(augs.iter_mut())
            .zip(accuracies)
            .zip(dropped)
            .map(|(((s, aug), accuracies), dropped)| match dropped {
                Some(why) => Err(why),
                None => Ok(Trajectory {
                    seed: s.policy,
                    reward: self.reward(&accuracies),
                    accuracies,
                    counts: aug.take_counts(),
                    seconds,
                    pairs_drawn: self.pairs,
                }),
            })
            .collect())
    }
}

/// Stage 1's training config for a search config.
fn stage1_config(c: &SearchConfig) -> TrainConfig {
    TrainConfig::default()
        .with_batch_size(c.batch_size)
        .with_seed(c.seed)
        .with_precision(c.precision)
        .with_channels_last(c.channels_last)
        .with_schedule(LrSchedule::WarmupCosine {
            start: c.pretrain_lr / 4.0,
            peak: c.pretrain_lr,
            floor: 0.001,
            warmup_epochs: 1.0f64.min(c.pretrain_epochs as f64),
            total_epochs: c.pretrain_epochs as f64,
        })
}
