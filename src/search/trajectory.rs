//! Stage 2 (docs/method.md): a trajectory fine-tunes the stage-1 snapshot under a policy for
//! `finetune_epochs` at a constant rate and is scored by its reward — the mean of its best
//! `reward_top` validation accuracies. [`Runner`] runs one trajectory or a grouped batch of
//! them; [`Workers`] keeps the models besides the shared one; [`Bench`] is what they run on
//! and the local [`Execute`]or, which spreads a request's trajectories over devices.

use std::time::Instant;

use tch::Device;

use super::config::{DataOrder, SearchConfig};
use super::error::SearchError;
use super::ppo::{Diverged, Trajectory};
use super::progress::{BatchAt, Progress, ProgressSink, Purpose};
use super::stage1::{shared_model, Stage1};
use super::stream;
use crate::augment::Pipeline;
use crate::data::{Dataset, Splits};
use crate::device;
use crate::model::Model;
use crate::policy::Policy;
use crate::policy::PolicyAugment;
use crate::rng::{mix, Rng};
use crate::train::{
    BatchProgress, BatchedTrainer, CancelFlag, LrSchedule, TrainConfig, TrainError, Trainer, TrainerState,
};

/// The random numbers of one stage-2 trajectory, by source. Two trajectories with equal
/// `order` and `augment` seeds see the same batches, crops, flips and Cutout holes and differ
/// only in the policy's own draws (common random numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrajectorySeeds {
    /// Data order (`SearchConfig::data_order`: the trajectory's own, or stage 1's).
    pub order: u64,
    /// Crop, flip and Cutout.
    pub augment: u64,
    /// Which ops, signs and magnitudes the policy draws per image.
    pub policy: u64,
}

/// What a trajectory came to.
pub(super) type Outcome = Result<Trajectory, Diverged>;

/// The trajectories of one request that finished, and those that diverged.
#[derive(Debug, Default)]
pub(super) struct Ran {
    pub done: Vec<Trajectory>,
    pub diverged: Vec<Diverged>,
}

impl Ran {
    fn push(&mut self, outcome: Outcome) {
        match outcome {
            Ok(t) => self.done.push(t),
            Err(d) => self.diverged.push(d),
        }
    }

    /// The diverged ones, as report lines.
    pub fn diverged_lines(&self) -> Vec<String> {
        self.diverged.iter().map(ToString::to_string).collect()
    }
}

/// What every trajectory of one request needs; each worker thread owns a copy (tensors are
/// not shareable across threads, only movable).
pub(super) struct Runner {
    pub config: SearchConfig,
    pub pipeline: Pipeline,
    pub snapshot: TrainerState,
    pub policy: Policy,
    pub cancel: CancelFlag,
    pub purpose: Purpose,
    pub total: usize,
    /// The caller's index of these seeds' first trajectory, for progress labels (an early
    /// `compare` runs pair i of at most `total` as a request of its own).
    pub first: usize,
    /// `SearchConfig::pairs_per_trajectory` for the search's trajectories, else 0.
    pub pairs: usize,
}

impl Runner {
    fn copy(&self) -> Result<Self, SearchError> {
        Ok(Self {
            config: self.config.clone(),
            pipeline: self.pipeline.clone(),
            snapshot: self.snapshot.copy().map_err(crate::train::TrainError::from)?,
            policy: self.policy.clone(),
            cancel: self.cancel.clone(),
            purpose: self.purpose,
            total: self.total,
            first: self.first,
            pairs: self.pairs,
        })
    }

    /// The trajectory's augmentation: the policy's per-image sampler, or under the
    /// `pairs_per_trajectory` variant the empirical law of `pairs` draws from θ, drawn from
    /// the trajectory's own policy stream.
    fn augment(&self, seeds: TrajectorySeeds) -> Result<PolicyAugment, SearchError> {
        let policy = match self.policy.distribution() {
            Some(d) if self.pairs > 0 => Policy::AwsTheta {
                probs: d.draw_pairs(self.pairs, &mut Rng::derive(seeds.policy, &[stream::PAIRS_DRAWN])),
                source: None,
            },
            _ => self.policy.clone(),
        };
        Ok(PolicyAugment::new(self.pipeline.clone(), policy.sampler()?))
    }

    fn progress(&self, first: usize, together: usize, epoch: usize, b: &BatchProgress) -> Progress {
        Progress::Trajectories {
            purpose: self.purpose,
            first: self.first + first,
            together,
            total: self.total,
            at: BatchAt {
                epoch: epoch + 1,
                epochs: self.config.finetune_epochs,
                batch: b.batch,
                batches: b.batches,
                loss: b.loss,
            },
        }
    }

    /// One trajectory: reset weights and momentum to the snapshot, fine-tune at the constant
    /// rate drawing pairs per image, validation accuracy per epoch, then the reward.
    pub fn run(
        &self,
        trainer: &mut Trainer,
        train: &Dataset,
        val: &Dataset,
        seeds: TrajectorySeeds,
        index: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Outcome, SearchError> {
        self.run_observed(trainer, train, val, seeds, index, progress, &mut |_, _| Ok(()))
    }

    /// [`Runner::run`], handing the fine-tuned model to `on_epoch` after each epoch (0-based)
    /// and its validation accuracy: what a study measures beside the reward.
    #[allow(clippy::too_many_arguments)]
    pub fn run_observed(
        &self,
        trainer: &mut Trainer,
        train: &Dataset,
        val: &Dataset,
        seeds: TrajectorySeeds,
        index: usize,
        progress: &mut dyn FnMut(Progress),
        on_epoch: &mut dyn FnMut(usize, &Trainer) -> Result<(), SearchError>,
    ) -> Result<Outcome, SearchError> {
        trainer.restore(&self.snapshot)?;
        trainer.config = self.train_config(seeds);
        let mut aug = self.augment(seeds)?;
        let start = Instant::now();
        let epochs = self.config.finetune_epochs;
        let mut accuracies = Vec::with_capacity(epochs);
        for e in 0..epochs {
            let r = trainer.train_epoch(train, &mut aug, &self.cancel, &mut |b| {
                progress(self.progress(index, 1, e, b))
            });
            match r {
                Ok(_) => {}
                // The trainer counts epochs from stage 1's start; a trajectory names its own.
                Err(TrainError::NonFinite { batch, loss, .. }) => {
                    return Ok(Err(Diverged {
                        seed: seeds.policy,
                        epoch: e + 1,
                        batch,
                        loss,
                    }))
                }
                Err(e) => return Err(e.into()),
            }
            accuracies.push(trainer.evaluate(val)?);
            on_epoch(e, trainer)?;
        }
        Ok(Ok(Trajectory {
            seed: seeds.policy,
            reward: reward(&accuracies, self.config.reward_top),
            accuracies,
            counts: aug.take_counts(),
            seconds: start.elapsed().as_secs_f64(),
            pairs_drawn: self.pairs,
        }))
    }

    /// Stage 2's training recipe for one trajectory: the constant fine-tune rate, its seeds.
    fn train_config(&self, seeds: TrajectorySeeds) -> TrainConfig {
        TrainConfig {
            seed: seeds.order,
            augment_seed: Some(seeds.augment),
            policy_seed: Some(seeds.policy),
            schedule: LrSchedule::Constant {
                lr: self.config.finetune_rate(),
            },
            ..self.config.stage1_train_config()
        }
    }

    /// The trajectories of `seeds` (indices `first`.. of `total`) as one grouped model: the
    /// same per-trajectory results `run` gives each, up to float error (tests/batched.rs).
    fn run_batched(
        &self,
        trainer: &mut BatchedTrainer,
        train: &Dataset,
        val: &Dataset,
        seeds: &[TrajectorySeeds],
        first: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Outcome>, SearchError> {
        trainer.restore(&self.snapshot)?;
        let mut augs = seeds
            .iter()
            .map(|s| self.augment(*s))
            .collect::<Result<Vec<_>, SearchError>>()?;
        let start = Instant::now();
        let epochs = self.config.finetune_epochs;
        let k = seeds.len();
        let mut accuracies = vec![Vec::with_capacity(epochs); k];
        let mut diverged: Vec<Option<Diverged>> = vec![None; k];
        for e in 0..epochs {
            let reports = trainer.train_epoch(train, &mut augs, &self.cancel, &mut |b| {
                progress(self.progress(first, k, e, b))
            })?;
            for (j, r) in reports.into_iter().enumerate() {
                if let (Err(TrainError::NonFinite { batch, loss, .. }), None) = (r, &diverged[j]) {
                    diverged[j] = Some(Diverged {
                        seed: seeds[j].policy,
                        epoch: e + 1,
                        batch,
                        loss,
                    });
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
            .zip(diverged)
            .map(|(((s, aug), accuracies), diverged)| match diverged {
                Some(d) => Err(d),
                None => Ok(Trajectory {
                    seed: s.policy,
                    reward: reward(&accuracies, self.config.reward_top),
                    accuracies,
                    counts: aug.take_counts(),
                    seconds,
                    pairs_drawn: self.pairs,
                }),
            })
            .collect())
    }
}

/// The epochs (0-based) whose validation accuracies make the reward: the best `top`, best
/// first (all of them when there are fewer). One definition for the reward and its chart.
pub fn best_epochs(accuracies: &[f64], top: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..accuracies.len()).collect();
    order.sort_by(|&a, &b| accuracies[b].total_cmp(&accuracies[a]));
    order.truncate(top.max(1));
    order
}

/// docs/method.md's reward: the mean of the best `top` validation accuracies.
pub(super) fn reward(accuracies: &[f64], top: usize) -> f64 {
    let best = best_epochs(accuracies, top);
    best.iter().map(|&j| accuracies[j]).sum::<f64>() / best.len().max(1) as f64
}

/// A model replica on another device, for parallel trajectories.
struct Replica {
    device: Device,
    trainer: Trainer,
    train: Dataset,
    val: Dataset,
}

/// The models trajectories train on besides the shared one: replicas on other devices, and
/// the grouped model of batched trajectories, kept from update to update (k members of
/// WRN-28-10 are 290 M parameters to initialise).
#[derive(Default)]
pub(super) struct Workers {
    replicas: Vec<Replica>,
    batched: Option<BatchedTrainer>,
}

/// What trajectories run on, borrowed from the session for one primitive: its configuration,
/// data, pipeline, the shared model with its snapshot, the replicas and grouped model, and
/// where cancellation and progress go. Running on it is the local executor.
pub(super) struct Bench<'a> {
    pub config: &'a SearchConfig,
    pub device: Device,
    pub splits: &'a Splits,
    pub pipeline: &'a Pipeline,
    pub stage1: &'a mut Stage1,
    pub workers: &'a mut Workers,
    pub cancel: &'a CancelFlag,
    pub progress: &'a mut ProgressSink,
}

/// Where a request's trajectories run: this machine ([`Bench`]) or a Slurm job array
/// (`slurm::SlurmRequests`). Both return every trajectory or an error: all or nothing.
pub(super) trait Execute {
    fn config(&self) -> &SearchConfig;

    /// How many trajectories train together as one grouped model (an early `compare` takes
    /// that many pairs at a time).
    fn trajectory_batch(&self) -> usize;

    /// Trajectories of `policy`, one per seed; `frame` = (the first's index, the count the
    /// caller runs in pieces) labels progress "trajectory first + i of total". `pairs`: the
    /// `pairs_per_trajectory` variant (0: per image), for the search's own trajectories only
    /// — probes and comparisons sample a policy as it will be used.
    fn trajectories(
        &mut self,
        policy: &Policy,
        seeds: &[TrajectorySeeds],
        purpose: Purpose,
        pairs: usize,
        frame: (usize, usize),
    ) -> Result<Ran, SearchError>;
}

/// Seeds of trajectory `index` of update `update` (0-based). With `common_random_numbers`
/// the update's trajectories share crops, flips, Cutout and (per `data_order`) the data
/// order, so only θ's draws differ between them; without, each has its own.
pub(super) fn search_seeds(config: &SearchConfig, update: usize, index: usize) -> TrajectorySeeds {
    let update = mix(mix(config.seed, stream::TRAJECTORY), update as u64);
    let own = mix(update, index as u64);
    let (augment, order) = if config.common_random_numbers {
        (mix(update, u64::MAX), mix(update, stream::ORDER))
    } else {
        (own, mix(own, stream::ORDER))
    };
    TrajectorySeeds {
        order: data_order(config, order),
        augment,
        policy: own,
    }
}

/// Seeds of probe trajectory `index`: the same for every policy, so probes and `compare`
/// pair trajectories with common random numbers.
pub(super) fn probe_seeds(config: &SearchConfig, index: usize) -> TrajectorySeeds {
    let s = mix(mix(config.seed, stream::PROBE), index as u64);
    TrajectorySeeds {
        order: data_order(config, mix(s, stream::ORDER)),
        augment: s,
        policy: s,
    }
}

/// A trajectory's data-order seed: its `own` under `DataOrder::PerTrajectory`, stage 1's
/// under `Shared`.
fn data_order(config: &SearchConfig, own: u64) -> u64 {
    match config.data_order {
        DataOrder::PerTrajectory => own,
        DataOrder::Shared => config.seed,
    }
}

/// The config's `trajectory_batch` on `device` (0 = 8 on CUDA, 1 on the CPU).
pub(super) fn trajectory_batch(config: &SearchConfig, device: Device) -> usize {
    match config.trajectory_batch {
        0 if device.is_cuda() => 8,
        0 => 1,
        n => n,
    }
}

impl Bench<'_> {
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
        Ok(match self.device {
            Device::Cuda(_) if n > 1 => (0..n).map(Device::Cuda).collect(),
            d => vec![d],
        })
    }

    /// Model replicas (and data copies) for every trajectory device after the first.
    fn ensure_replicas(&mut self) -> Result<(), SearchError> {
        let devices = self.trajectory_devices()?;
        let replicas = &self.workers.replicas;
        if replicas.len() + 1 == devices.len() && replicas.iter().zip(&devices[1..]).all(|(r, d)| r.device == *d) {
            return Ok(());
        }
        let info = &self.splits.train.info;
        self.workers.replicas = devices[1..]
            .iter()
            .map(|&d| {
                Ok(Replica {
                    device: d,
                    trainer: Trainer::new(
                        shared_model(self.config, info, d, self.config.seed)?,
                        self.pipeline.normalize.clone(),
                        self.config.stage1_train_config(),
                    )?,
                    train: self.splits.train.to_device(d)?,
                    val: self.splits.val.to_device(d)?,
                })
            })
            .collect::<Result<_, SearchError>>()?;
        Ok(())
    }

    /// What `total` trajectories of `policy` need, once stage 1 is complete.
    pub fn runner(&self, policy: &Policy, purpose: Purpose, total: usize, pairs: usize) -> Result<Runner, SearchError> {
        Ok(Runner {
            config: self.config.clone(),
            pipeline: self.pipeline.clone(),
            snapshot: self
                .stage1
                .complete(self.config)?
                .copy()
                .map_err(crate::train::TrainError::from)?,
            policy: policy.clone(),
            cancel: self.cancel.clone(),
            purpose,
            total,
            first: 0,
            pairs,
        })
    }

    /// Trajectory i on worker i mod w; the calling thread works too, on the session's own
    /// device, and reports progress.
    fn parallel_trajectories(&mut self, runner: &Runner, seeds: &[TrajectorySeeds]) -> Result<Ran, SearchError> {
        let workers = self.workers.replicas.len() + 1;
        let mut results: Vec<Option<Result<Outcome, SearchError>>> = (0..seeds.len()).map(|_| None).collect();
        let (progress, trainer, splits) = (&mut *self.progress, &mut self.stage1.trainer, self.splits);
        let copies = (1..workers).map(|_| runner.copy()).collect::<Result<Vec<_>, _>>()?;
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for ((w, replica), runner) in self.workers.replicas.iter_mut().enumerate().zip(copies) {
                handles.push(scope.spawn(move || {
                    (w + 1..seeds.len())
                        .step_by(workers)
                        .map(|i| {
                            let r = runner.run(
                                &mut replica.trainer,
                                &replica.train,
                                &replica.val,
                                seeds[i],
                                i,
                                &mut |_| {},
                            );
                            (i, r)
                        })
                        .collect::<Vec<_>>()
                }));
            }
            for i in (0..seeds.len()).step_by(workers) {
                results[i] = Some(runner.run(trainer, &splits.train, &splits.val, seeds[i], i, &mut |p| {
                    progress.emit(p)
                }));
            }
            for h in handles {
                // A panicked worker leaves its slots empty; they are reported as failures below.
                if let Ok(done) = h.join() {
                    done.into_iter().for_each(|(i, r)| results[i] = Some(r));
                }
            }
        });
        let mut ran = Ran::default();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Some(r) => ran.push(r?),
                None => return Err(SearchError::WorkerLost { trajectory: i }),
            }
        }
        Ok(ran)
    }

    /// Trajectories on the session's device, `batch` at a time as one grouped model.
    fn batched_trajectories(
        &mut self,
        runner: &Runner,
        seeds: &[TrajectorySeeds],
        batch: usize,
    ) -> Result<Ran, SearchError> {
        let info = &self.splits.train.info;
        let mut ran = Ran::default();
        for (c, chunk) in seeds.chunks(batch).enumerate() {
            let configs: Vec<TrainConfig> = chunk.iter().map(|s| runner.train_config(*s)).collect();
            let reusable = match self.workers.batched.as_mut() {
                Some(t) if t.members() == chunk.len() && t.model.arch == self.config.model => {
                    t.set_configs(configs.clone()).is_ok()
                }
                _ => false,
            };
            if !reusable {
                self.workers.batched = None; // free the old network before building the next
                let model = Model::members(
                    self.config.model,
                    info.channels,
                    info.num_classes(),
                    chunk.len() as i64,
                    self.device,
                )?;
                self.workers.batched = Some(BatchedTrainer::new(model, self.pipeline.normalize.clone(), configs)?);
            }
            let Some(trainer) = self.workers.batched.as_mut() else {
                continue;
            };
            let progress = &mut *self.progress;
            let outcomes = runner.run_batched(
                trainer,
                &self.splits.train,
                &self.splits.val,
                chunk,
                c * batch,
                &mut |p| progress.emit(p),
            )?;
            outcomes.into_iter().for_each(|o| ran.push(o));
        }
        Ok(ran)
    }
}

/// The local executor: grouped models on one device, or the trajectory devices in parallel
/// threads. The shared model is back at the snapshot afterwards.
impl Execute for Bench<'_> {
    fn config(&self) -> &SearchConfig {
        self.config
    }

    fn trajectory_batch(&self) -> usize {
        trajectory_batch(self.config, self.device)
    }

    fn trajectories(
        &mut self,
        policy: &Policy,
        seeds: &[TrajectorySeeds],
        purpose: Purpose,
        pairs: usize,
        (first, total): (usize, usize),
    ) -> Result<Ran, SearchError> {
        let runner = Runner {
            first,
            ..self.runner(policy, purpose, total.max(seeds.len()), pairs)?
        };
        self.cancel.reset();
        self.ensure_replicas()?;
        let batch = Execute::trajectory_batch(self);
        let ran = if self.workers.replicas.is_empty() && batch > 1 && seeds.len() > 1 {
            self.batched_trajectories(&runner, seeds, batch)
        } else {
            self.parallel_trajectories(&runner, seeds)
        };
        self.stage1.back_to_snapshot(self.config)?;
        ran
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn reward_is_the_mean_of_the_best_top_accuracies() {
        assert_eq!(reward(&[0.5, 0.9, 0.7], 2), 0.8);
        assert_eq!(reward(&[0.5, 0.9, 0.7], 1), 0.9);
        assert_eq!(reward(&[0.5], 2), 0.5, "top past the epochs takes them all");
    }
}
