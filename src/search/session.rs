//! The resumable session, the one coordinator: it owns the state and each primitive checks
//! its counts, runs its stage's function over the narrow part of the state it needs (stage 1
//! in `stage1.rs`, trajectories through an executor of `trajectory.rs` or `slurm.rs`, the
//! update in `update.rs`, probes in `probe.rs`, the null in `null.rs`), records the result,
//! and ends with an atomic checkpoint (`store.rs`); a cancelled or failed primitive leaves the
//! session as it was before it. The only `impl Session` of the crate is here.

use std::path::{Path, PathBuf};

use super::config::{Executor, SearchConfig};
use super::error::SearchError;
use super::history::History;
use super::null::{self, NullReport};
use super::parts::Parts;
use super::ppo::{PpoState, Trajectory};
use super::probe::{self, EARLY_MAX_DEFAULT};
use super::progress::{Progress, ProgressSink, Purpose};
use super::report::{
    BestTheta, CompareReport, CorrelateReport, EvaluateReport, FulltrainReport, OpGallery, Pairing, PolicyReport,
    PretrainReport, ProbeReport, SampleReport, Step, StepReport, UpdateRecord,
};
use super::sample;
use super::scalars::{ScalarWriter, Scalars};
use super::slurm::SlurmRequests;
use super::stage1::Stage1;
use super::store::{self, SessionState};
use super::stream;
use super::trajectory::{self, search_seeds, Bench, Execute, TrajectorySeeds, Workers};
use super::update::{self, Updated};
use crate::augment::Pipeline;
use crate::checkpoint::{CheckpointError, RunLock, SnapshotRef};
use crate::data::Splits;
use crate::device::{self, DeviceChoice};
use crate::limits::Limit;
use crate::policy::{Policy, Theta};
use crate::rng::Rng;
use crate::train::{CancelFlag, Trainer};

/// A count checked against its range, as a search error.
fn within(limit: &Limit, n: usize) -> Result<usize, SearchError> {
    Ok(limit.check_usize(n)?)
}

/// `k` trajectories for `primitive`, or the default; refused outside their range before
/// anything is allocated for them.
fn trajectory_count(k: Option<usize>, default: usize, primitive: &'static str) -> Result<usize, SearchError> {
    crate::limits::TRAJECTORIES
        .check_usize(k.unwrap_or(default))
        .map_err(|source| SearchError::CountFor { primitive, source })
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
    pub(super) scalars: Scalars,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.status())
    }
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
        self.progress = ProgressSink::to(f);
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

/// The primitives: each checks its counts, runs its stage's function over the parts it needs,
/// records the result and commits; a failed commit undoes what the primitive changed.
impl Session {
    /// The parts trajectories and retrains run on.
    fn bench(&mut self) -> Bench<'_> {
        Bench {
            config: &self.config,
            device: self.device.device,
            splits: &self.splits,
            pipeline: &self.pipeline,
            stage1: &mut self.stage1,
            workers: &mut self.workers,
            cancel: &self.cancel,
            progress: &mut self.progress,
        }
    }

    /// Where this session's trajectories run (`config.executor`).
    fn executor(&mut self) -> Box<dyn Execute + '_> {
        let slurm = (self.config.executor == Executor::Slurm)
            .then(|| (self.run_dir.clone(), self.snapshot_ref.clone(), self.ppo.updates));
        let bench = self.bench();
        match slurm {
            None => Box::new(bench),
            Some((run_dir, snapshot_ref, update)) => Box::new(SlurmRequests {
                bench,
                run_dir,
                snapshot_ref,
                update,
            }),
        }
    }

    /// This session's TensorBoard scalars.
    fn scalars(&mut self) -> ScalarWriter<'_> {
        ScalarWriter {
            scalars: &mut self.scalars,
            run_dir: &self.run_dir,
            progress: &mut self.progress,
        }
    }

    /// Stage 1: `epochs` more epochs (default: the rest of the schedule) with pairs drawn
    /// uniformly per image; then snapshot weights and momentum and checkpoint.
    pub fn pretrain(&mut self, epochs: Option<usize>) -> Result<PretrainReport, SearchError> {
        self.writable()?;
        if self.ppo.updates > 0 || !self.pending.is_empty() {
            return Err(SearchError::SearchStarted);
        }
        let done = self.pretrain_epochs_done();
        let n = match epochs {
            Some(n) => within(&crate::limits::EPOCHS, n)?,
            None => self.config.pretrain_epochs.saturating_sub(done),
        };
        if n == 0 {
            return Err(SearchError::Stage1Complete {
                done,
                total: self.config.pretrain_epochs,
            });
        }
        self.cancel.reset();
        let (epochs, undo) = self.stage1.train(
            &self.config,
            &self.splits,
            &self.pipeline,
            n,
            &self.cancel,
            &mut self.progress,
        )?;
        let old_epochs = self.history.pretrain.len();
        self.history.pretrain.extend(epochs.iter().cloned());
        self.commit(true, move |s| {
            s.stage1.undo(undo);
            s.history.pretrain.truncate(old_epochs);
        })?;
        self.scalars().epochs("pretrain", &epochs, &[]);
        let warning = crate::train::divergence_warning(&epochs, self.splits.train.info.classes.len());
        Ok(PretrainReport {
            epochs,
            epochs_done: self.stage1.epochs_done(),
            schedule_epochs: self.config.pretrain_epochs,
            warning,
        })
    }

    /// Stage 2: `k` trajectories (default: the config's) under the current θ; they wait for
    /// `update`. NaN/Inf trajectories are discarded and reported.
    pub fn evaluate(&mut self, k: Option<usize>) -> Result<EvaluateReport, SearchError> {
        self.writable()?;
        let k = trajectory_count(k, self.config.trajectories, "evaluate")?;
        let policy = self.current_policy()?;
        let before = self.pending.len();
        let seeds: Vec<TrajectorySeeds> = (0..k)
            .map(|i| search_seeds(&self.config, self.ppo.updates, before + i))
            .collect();
        let pairs = self.config.pairs_per_trajectory;
        let ran = self
            .executor()
            .trajectories(&policy, &seeds, Purpose::Evaluate, pairs, (0, k))?;
        self.pending.extend(ran.done.iter().cloned());
        self.commit(false, |s| s.pending.truncate(before))?;
        let update = self.ppo.updates + 1;
        self.scalars().trajectories(update, before, &ran.done);
        let accuracies: Vec<&[f64]> = ran.done.iter().map(|t| t.accuracies.as_slice()).collect();
        let classes = self.splits.train.info.classes.len();
        let warning = crate::train::chance_warning(&accuracies, classes, self.config.finetune_rate());
        Ok(EvaluateReport {
            warning,
            ..EvaluateReport::new(ran.done.clone(), ran.diverged_lines(), self.pending.len())
        })
    }

    /// PPO from the waiting trajectories; keeps the best θ by mean reward; checkpoints.
    pub fn update(&mut self) -> Result<UpdateRecord, SearchError> {
        self.writable()?;
        let Updated { ppo, best, record } = update::update(
            &self.ppo,
            &self.pending,
            self.best.as_ref(),
            &self.history.updates,
            &self.config.ppo,
        )?;
        let undo = (
            std::mem::replace(&mut self.ppo, ppo),
            self.best.replace(best),
            std::mem::take(&mut self.pending),
        );
        self.history.updates.push(record.clone());
        self.commit(false, move |s| {
            (s.ppo, s.best, s.pending) = undo;
            s.history.updates.pop();
        })?;
        let finetune_lr = self.config.finetune_rate();
        self.scalars().update(&record, finetune_lr);
        Ok(record)
    }

    /// `n` × (evaluate, update). Ctrl-C keeps the completed updates and rolls back the one
    /// in flight.
    pub fn step(&mut self, n: usize) -> Result<StepReport, SearchError> {
        let mut steps = Vec::with_capacity(within(&crate::limits::STEPS, n)?);
        for _ in 0..n {
            let pending_before = self.pending.len();
            let evaluate = self.evaluate(None)?;
            if evaluate.trajectories.is_empty() && pending_before == 0 {
                return Err(SearchError::AllDiverged {
                    update: self.ppo.updates + 1,
                    first: evaluate.discarded.first().cloned().unwrap_or_default(),
                    finetune_lr: self.config.finetune_lr,
                });
            }
            match self.update() {
                Ok(update) => steps.push(Step { evaluate, update }),
                Err(err) => {
                    self.pending.truncate(pending_before);
                    return Err(err);
                }
            }
        }
        Ok(StepReport { steps })
    }

    /// The searched θ — the best so far ([`BestTheta`]; θ = 0 before the first update): the
    /// `top` most likely pairs, entropy, marginals, and the null's verdict on it.
    pub fn policy(&self, top: usize) -> Result<PolicyReport, SearchError> {
        let top = within(&crate::limits::TOP_PAIRS, top)?;
        update::policy_report(
            self.best_theta(),
            self.ppo.updates,
            self.best.as_ref(),
            self.current_null(),
            top,
        )
    }

    /// Run the search's noise-only null (`replicates` searches, default the config's) over
    /// the updates so far and judge θ against it; kept in the history.
    pub fn null(&mut self, replicates: Option<usize>) -> Result<NullReport, SearchError> {
        self.writable()?;
        let replicates = within(
            &crate::limits::NULL_REPLICATES,
            replicates.unwrap_or(self.config.null_replicates),
        )?;
        if self.history.updates.is_empty() {
            return Err(SearchError::NoUpdates);
        }
        let inputs = null::inputs_of(self.history.updates.iter().map(|u| (u.update, &u.ppo)))?;
        // The θ judged is the searched one, the best; its null searches stop where it stood.
        let after = self
            .best
            .as_ref()
            .map_or(self.ppo.updates, |b| b.update.saturating_sub(1));
        self.cancel.reset();
        let seed = crate::rng::mix(self.config.seed, stream::NULL);
        let report = null::searched(
            &self.best_theta().clone(),
            &inputs,
            after,
            &self.config.ppo,
            (replicates, seed),
            &self.cancel,
            &mut self.progress,
        )?;
        let before = self.history.null.replace(report.clone());
        self.commit(false, move |s| s.history.null = before)?;
        Ok(report)
    }

    /// The null of the current θ, if one was run since the last update.
    pub fn current_null(&self) -> Option<&NullReport> {
        self.history.null.as_ref().filter(|n| n.updates == self.ppo.updates)
    }

    /// Seeds of probe trajectory `index`: the same for every policy, so probes and `compare`
    /// pair trajectories with common random numbers.
    pub fn probe_seeds(&self, index: usize) -> TrajectorySeeds {
        trajectory::probe_seeds(&self.config, index)
    }

    /// The proxy reward of any fixed policy, without touching θ.
    pub fn probe(&mut self, policy: &Policy, k: Option<usize>) -> Result<ProbeReport, SearchError> {
        self.writable()?;
        let k = trajectory_count(k, self.config.probe_trajectories, "probe")?;
        let report = probe::probe(&mut *self.executor(), policy, k)?;
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
        probe::trajectory_with_model(&mut self.bench(), policy, index)
    }

    /// One probe trajectory of `policy` with `seeds` (`probe_seeds(i)` is `probe`'s i-th; a
    /// study may vary one stream, e.g. the policy's own draws), on the session's shared model,
    /// handing the fine-tuned model to `on_epoch` after each epoch: per-image outcomes, other
    /// rewards, anything a study measures beside the reward. `index` only labels progress.
    pub fn probe_observed(
        &mut self,
        policy: &Policy,
        seeds: TrajectorySeeds,
        index: usize,
        on_epoch: &mut dyn FnMut(usize, &Trainer) -> Result<(), SearchError>,
    ) -> Result<Trajectory, SearchError> {
        probe::probe_observed(&mut self.bench(), policy, seeds, index, on_epoch)
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
        pairing: Pairing,
    ) -> Result<CompareReport, SearchError> {
        let k = trajectory_count(k, self.config.probe_trajectories, "compare")?;
        probe::compare(&mut *self.executor(), policies, k, pairing)
    }

    /// A paired comparison of two policies that stops as soon as the evidence suffices: pairs
    /// of trajectories (common random numbers, as `compare`) one at a time — a grouped batch
    /// at a time where trajectories train together — up to `max_k` pairs (default
    /// [`EARLY_MAX_DEFAULT`]), judged after every pair by the anytime-valid sign-flip
    /// e-process (`sequential`), whose error rate stays at most α however early it stops. The
    /// report's p-value (1/E) and interval (a confidence sequence) are the anytime-valid ones;
    /// trajectory i is `compare`'s trajectory i, so the rewards equal a fixed `compare`'s
    /// first pairs.
    pub fn compare_early(
        &mut self,
        a: &Policy,
        b: &Policy,
        max_k: Option<usize>,
    ) -> Result<CompareReport, SearchError> {
        let max_k = trajectory_count(max_k, EARLY_MAX_DEFAULT, "compare early")?;
        probe::compare_early(&mut *self.executor(), a, b, max_k)
    }

    /// Train from scratch on search-train + validation with `policy`, and report test accuracy
    /// after each epoch (the after-search retrain; the ground truth for `correlate`).
    pub fn fulltrain(&mut self, policy: &Policy, epochs: Option<usize>) -> Result<FulltrainReport, SearchError> {
        self.writable()?;
        let epochs = within(&crate::limits::EPOCHS, epochs.unwrap_or(self.config.fulltrain_epochs))?;
        let report = probe::fulltrain(&mut self.bench(), policy, epochs)?;
        self.history.fulltrains.push(report.clone());
        self.commit(false, |s| {
            s.history.fulltrains.pop();
        })?;
        self.scalars().fulltrain(&report);
        Ok(report)
    }

    /// Probe and full-train each policy; compare the rankings.
    pub fn correlate(
        &mut self,
        policies: &[Policy],
        fulltrain_epochs: Option<usize>,
    ) -> Result<CorrelateReport, SearchError> {
        if policies.len() < 2 {
            return Err(SearchError::TooFewPolicies {
                primitive: "correlate",
                min: 2,
            });
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
            crate::rng::mix(self.config.seed, stream::BOOTSTRAP),
        ))
    }

    /// The random numbers of the next `sample` or `preview`: each call draws afresh.
    fn sample_rng(&mut self) -> Rng {
        self.samples += 1;
        Rng::derive(
            self.config.seed,
            &[stream::SAMPLE, self.ppo.updates as u64, self.samples],
        )
    }

    /// `n` pairs drawn from θ with their probabilities, and the current θ applied to up to `n`
    /// validation images (the same draws) for a preview.
    pub fn sample(&mut self, n: usize) -> Result<SampleReport, SearchError> {
        let n = within(&crate::limits::SAMPLES, n)?;
        let dist = self.ppo.theta.distribution()?;
        let rng = self.sample_rng();
        sample::sample(&self.splits.val, &self.pipeline, &dist, n, rng)
    }

    /// Any policy applied to the first `n` validation images — what it does to this data,
    /// before spending a trajectory on it (AWS policies also list the pairs they drew).
    pub fn preview(&mut self, policy: &Policy, n: usize) -> Result<SampleReport, SearchError> {
        let n = within(&crate::limits::SAMPLES, n)?;
        let rng = self.sample_rng();
        Ok(sample::preview(&self.splits.val, &self.pipeline, policy, n, rng)?.0)
    }

    /// Validation image `index` under each of the 36 operations (positive sign).
    pub fn gallery(&self, index: usize) -> Result<OpGallery, SearchError> {
        sample::gallery(&self.splits.val, &self.pipeline, index)
    }

    /// This session as `session.json` records it.
    fn state(&self) -> SessionState {
        SessionState::new(
            self.config.clone(),
            self.pretrain_epochs_done(),
            self.ppo.clone(),
            self.pending.clone(),
            self.best.clone(),
            self.history.clone(),
            self.snapshot_ref.clone(),
        )
    }

    /// Checkpoint after a primitive changed the session (the snapshot too when `weights`); if
    /// that fails, `undo` puts the in-memory session back as it was, so memory never runs
    /// ahead of disk.
    pub(super) fn commit(&mut self, weights: bool, undo: impl FnOnce(&mut Self)) -> Result<(), SearchError> {
        let snapshot = self.stage1.snapshot.as_ref().filter(|_| weights);
        let written = store::write_checkpoint(
            &self.run_dir,
            &self.lock,
            self.state(),
            snapshot,
            self.snapshot_ref.as_ref(),
        );
        match written {
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
    /// lock; one that holds another run is refused) and goes on there.
    pub fn save(&mut self, dir: Option<&Path>) -> Result<PathBuf, SearchError> {
        let target = dir.map(Path::to_owned).unwrap_or_else(|| self.run_dir.clone());
        let moving = target != self.run_dir;
        let lock = if moving {
            store::refuse_existing(&target)?;
            let lock = RunLock::acquire(&target)?;
            store::refuse_existing(&target)?;
            Some(lock)
        } else {
            None
        };
        let keep = self.snapshot_ref.as_ref().filter(|_| !moving);
        let r = store::write_checkpoint(
            &target,
            lock.as_ref().unwrap_or(&self.lock),
            self.state(),
            self.stage1.snapshot.as_ref(),
            keep,
        )?;
        self.snapshot_ref = r;
        if let Some(l) = lock {
            self.lock = l;
            self.run_dir = target;
            // Later scalars go to the new directory's tensorboard/.
            self.scalars = Default::default();
        }
        Ok(self.run_dir.clone())
    }
}
