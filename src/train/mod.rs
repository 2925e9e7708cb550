//! Training as docs/method.md's official settings need it: SGD Nesterov without decay on BN and
//! biases, warm-up + cosine or constant rates, label smoothing, gradient-norm clipping, top-1
//! evaluation, per-epoch reports, NaN/Inf detection, cancellation between batches, and state
//! (weights + momentum) that can be snapshotted and restored.

mod batched;
mod optim;
mod schedule;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, TchError, Tensor};

pub use batched::BatchedTrainer;
pub use optim::{Sgd, SgdConfig, SgdState};
pub use schedule::LrSchedule;

use crate::augment::{AugmentError, AugmentPlan, Normalize, Pipeline};
use crate::data::Dataset;
use crate::model::{Model, ModelError, Weights};
use crate::rng::Rng;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cancelled at epoch {epoch}, batch {batch}; the weights are partly updated — restore the last snapshot or checkpoint")]
    Cancelled { epoch: usize, batch: usize },
    #[error("loss became {loss} at epoch {epoch}, batch {batch}; this batch was not trained on. Lower the learning rate or check the data, then restore the last snapshot")]
    NonFinite { epoch: usize, batch: usize, loss: f64 },
    #[error("dataset `{0}` is empty")]
    EmptyData(String),
    #[error("model expects {expected} input channels and {classes} classes; dataset `{name}` has {got} channels and {got_classes} classes")]
    Incompatible {
        expected: i64,
        classes: i64,
        name: String,
        got: i64,
        got_classes: i64,
    },
    /// A libtorch op failed (the source names the op and the shapes).
    #[error("libtorch: {0}")]
    Torch(#[from] TchError),
    /// An augmented batch the trainer planned was not there (a bug).
    #[error("augmented batch {batch} of epoch {epoch} is missing")]
    MissingBatch { epoch: usize, batch: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("augmentation failed: {0}")]
    Augment(#[from] AugmentError),
}

/// A flag a front-end sets (Ctrl-C, a notebook interrupt) to stop between batches.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub batch_size: i64,
    pub eval_batch_size: i64,
    pub schedule: LrSchedule,
    pub sgd: SgdConfig,
    pub label_smoothing: f64,
    /// Global gradient-norm bound (official: 3.0); `None` disables clipping.
    pub grad_clip: Option<f64>,
    /// Seeds the data order and, unless `augment_seed` is set, the augmentation draws.
    pub seed: u64,
    /// Seeds the pipeline's own draws (crop, flip, Cutout) alone, and the policy's draws
    /// unless `policy_seed` is set (AWS trajectories: same data order, own draws).
    pub augment_seed: Option<u64>,
    /// Seeds the policy's draws alone (which ops, signs, magnitudes): common random numbers
    /// for two policies share everything else.
    pub policy_seed: Option<u64>,
    /// Forward-pass precision (bf16 autocast acts on CUDA only; see `amp`).
    pub precision: crate::amp::Precision,
    /// Channels-last (NHWC) weights and inputs; on the CPU it is left off.
    pub channels_last: bool,
    /// Training batches augmented in one call (their plans drawn in order, so the images are
    /// the same whatever this is); `None`: as many as [`augment_ahead`] picks.
    pub augment_ahead: Option<usize>,
}

impl Default for TrainConfig {
    /// docs/method.md's stage-1 settings, with a CPU-sized batch; `official` has batch 256.
    fn default() -> Self {
        Self {
            batch_size: 128,
            eval_batch_size: 500,
            schedule: LrSchedule::official(200.0),
            sgd: SgdConfig::default(),
            label_smoothing: 0.05,
            grad_clip: Some(3.0),
            seed: 0,
            augment_seed: None,
            policy_seed: None,
            precision: crate::amp::Precision::Fp32,
            channels_last: false,
            augment_ahead: None,
        }
    }
}

impl TrainConfig {
    /// The official stage-1 settings for `epochs` epochs.
    pub fn official(epochs: f64) -> Self {
        Self {
            batch_size: 256,
            schedule: LrSchedule::official(epochs),
            ..Default::default()
        }
    }
    pub fn with_precision(mut self, p: crate::amp::Precision) -> Self {
        self.precision = p;
        self
    }
    pub fn with_channels_last(mut self, on: bool) -> Self {
        self.channels_last = on;
        self
    }
    pub fn with_augment_ahead(mut self, batches: Option<usize>) -> Self {
        self.augment_ahead = batches;
        self
    }
    pub fn with_batch_size(mut self, b: i64) -> Self {
        self.batch_size = b;
        self
    }
    pub fn with_schedule(mut self, s: LrSchedule) -> Self {
        self.schedule = s;
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_label_smoothing(mut self, ls: f64) -> Self {
        self.label_smoothing = ls;
        self
    }
    pub fn with_grad_clip(mut self, c: Option<f64>) -> Self {
        self.grad_clip = c;
        self
    }
    pub fn with_sgd(mut self, sgd: SgdConfig) -> Self {
        self.sgd = sgd;
        self
    }
}

/// Anything that turns a uint8 training batch into the model's float input, in two steps:
/// draw a batch's [`AugmentPlan`] on the host, then apply plans with the pipeline — several
/// batches' (or trajectories') plans in one call where the trainer can. Its random choices
/// come from the trainer's per-epoch streams, so a run replays exactly: `rng` for the
/// pipeline's own draws (crop, flip, Cutout), `policy_rng` for the policy's.
pub trait Augmenter {
    /// The pipeline that applies this augmenter's plans.
    fn pipeline(&self) -> &Pipeline;

    /// The plan of a batch of `n` images of `h`×`w`.
    fn plan(&mut self, n: usize, h: i64, w: i64, rng: &mut Rng, policy_rng: &mut Rng) -> AugmentPlan;

    /// One batch, planned and applied on its own.
    fn augment(&mut self, images: &Tensor, rng: &mut Rng, policy_rng: &mut Rng) -> Result<Tensor, AugmentError> {
        let (n, _, h, w) = images.size4()?;
        let plan = self.plan(n as usize, h, w, rng, policy_rng);
        let mut out = self
            .pipeline()
            .apply_plans(std::slice::from_ref(images), std::slice::from_ref(&plan))?;
        out.pop()
            .ok_or_else(|| AugmentError::Invalid("no batch came back".into()))
    }
}

impl Augmenter for Pipeline {
    fn pipeline(&self) -> &Pipeline {
        self
    }
    fn plan(&mut self, n: usize, h: i64, w: i64, rng: &mut Rng, _policy_rng: &mut Rng) -> AugmentPlan {
        Pipeline::plan(self, n, h, w, None, rng).0
    }
}

impl Augmenter for crate::policy::PolicyAugment {
    fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
    fn plan(&mut self, n: usize, h: i64, w: i64, rng: &mut Rng, policy_rng: &mut Rng) -> AugmentPlan {
        crate::policy::PolicyAugment::plan(self, n, h, w, rng, policy_rng).0
    }
}

/// Bytes of uint8 images one augmentation call may hold (its float temporaries are a few
/// times this).
const AUGMENT_AHEAD_BYTES: i64 = 16 << 20;

/// Training batches to augment per call: up to 8 within [`AUGMENT_AHEAD_BYTES`]. Small images'
/// augmentation is bound by per-call overhead — kernel launches on a GPU, dispatch on a CPU —
/// which 8 batches share (BENCHMARKS.md: 6.0 → 3.5 ms per CIFAR batch on 2 CPU cores); large
/// images go one batch at a time, memory flat. The images are the same whatever this is.
pub fn augment_ahead(config: &TrainConfig, batch_bytes: i64) -> usize {
    match config.augment_ahead {
        Some(k) => k.max(1),
        None => (AUGMENT_AHEAD_BYTES / batch_bytes.max(1)).clamp(1, 8) as usize,
    }
}

/// Bytes of one uint8 image of `data`.
fn image_bytes(data: &Dataset) -> i64 {
    data.images.size().iter().skip(1).product()
}

/// Images of batches `first..first + count` of an epoch (batch size `bs`, `n` images in
/// `perm`'s order), augmented in one call: one plan per batch, drawn in batch order from the
/// epoch's streams, so the result is the same whatever `count` is.
#[allow(clippy::too_many_arguments)]
fn augment_window(
    data: &Dataset,
    perm: &Tensor,
    first: usize,
    count: usize,
    bs: i64,
    aug: &mut dyn Augmenter,
    rng: &mut Rng,
    policy_rng: &mut Rng,
) -> Result<Vec<Tensor>, TrainError> {
    let n = data.len();
    let (_, _, h, w) = data.images.size4()?;
    let start = first as i64 * bs;
    let len = (count as i64 * bs).min(n - start);
    let images = data.images.f_index_select(0, &perm.f_narrow(0, start, len)?)?;
    let mut plans = Vec::with_capacity(count);
    let mut batches = Vec::with_capacity(count);
    let mut at = 0;
    while at < len {
        let b = bs.min(len - at);
        plans.push(aug.plan(b as usize, h, w, rng, policy_rng));
        batches.push(images.f_narrow(0, at, b)?);
        at += b;
    }
    Ok(aug.pipeline().apply_plans(&batches, &plans)?)
}

/// Divergence without NaN: the last epoch's loss far above where training starts (ln of the
/// class count, what a fresh classifier scores) while its accuracy sits at chance. NaN stops
/// training on its own; this kind runs on, wasting every epoch after it, and says nothing.
pub fn divergence_warning(reports: &[EpochReport], classes: usize) -> Option<String> {
    let last = reports.last()?;
    let k = classes.max(2) as f64;
    let start = k.ln();
    let chance = 1.0 / k;
    // Worse than a fresh network (which scores about ln k) and no better than guessing: a
    // rate too high for the network (pretrain_lr=10 lands here with a loss of 2-3× ln k).
    let at_chance = last.train_acc < 1.5 * chance && last.val_acc.is_none_or(|v| v < 1.5 * chance);
    (last.loss > 1.5 * start && at_chance).then(|| {
        format!(
            "warning: training diverged without NaN — the loss is {:.3e}, above where a fresh network starts (ln {k} = {start:.2}), and training accuracy {:.1}% is at chance ({:.1}%). Lower the learning rate, then start again from a checkpoint before this",
            last.loss,
            100.0 * last.train_acc,
            100.0 * chance
        )
    })
}

/// Stage-2 trajectories that never rose above chance: every validation accuracy of every one
/// within 10% of 1/classes. Their rewards carry no information about θ.
pub fn chance_warning(accuracies: &[&[f64]], classes: usize, finetune_lr: f64) -> Option<String> {
    let chance = 1.0 / classes.max(2) as f64;
    let all = accuracies.iter().flat_map(|a| a.iter());
    let at_chance =
        !accuracies.is_empty() && accuracies.iter().all(|a| !a.is_empty()) && all.clone().all(|&a| a <= 1.1 * chance);
    at_chance.then(|| {
        format!(
            "warning: every trajectory stayed at chance validation accuracy ({:.1}%), so these rewards say nothing about θ. The fine-tune rate ({finetune_lr}) is likely far too high for these weights, or stage 1 did not learn (see `pretrain`'s accuracies): lower it with `config finetune_lr=…` and `reset`",
            100.0 * chance
        )
    })
}

/// Live figures for a progress bar, after each batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchProgress {
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    pub loss: f64,
    pub lr: f64,
    pub images_per_sec: f64,
}

/// What [`Trainer::fit`] reports as it goes: each batch, then each epoch (with its validation
/// accuracy when there is a validation set).
#[derive(Debug, Clone, Copy)]
pub enum FitEvent<'a> {
    Batch(&'a BatchProgress),
    Epoch(&'a EpochReport),
}

/// Per-image results of one evaluation ([`Trainer::evaluate_each`]), in the dataset's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageOutcomes {
    pub correct: Vec<bool>,
    /// Cross-entropy of each image's logits, without label smoothing.
    pub loss: Vec<f64>,
}

/// What one epoch did. Timing fields aside, identical for identical seeds on CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based count of epochs this trainer has run.
    pub epoch: usize,
    pub lr_start: f64,
    pub lr_end: f64,
    pub loss: f64,
    pub train_acc: f64,
    pub val_acc: Option<f64>,
    pub images: i64,
    pub seconds: f64,
    pub images_per_sec: f64,
}

/// Weights, momentum and position in the schedule: everything needed to continue exactly.
#[derive(Debug)]
pub struct TrainerState {
    pub weights: Weights,
    pub momentum: SgdState,
    pub epochs_done: usize,
}

impl TrainerState {
    pub fn copy(&self) -> Result<Self, TchError> {
        Ok(Self {
            weights: self.weights.copy()?,
            momentum: self.momentum.copy()?,
            epochs_done: self.epochs_done,
        })
    }
}

/// A model, its optimiser and where it is in its schedule.
#[derive(Debug)]
pub struct Trainer {
    pub model: Model,
    pub opt: Sgd,
    pub config: TrainConfig,
    /// Evaluation applies only this.
    pub normalize: Normalize,
    pub epochs_done: usize,
}

/// Stream ids of [`Rng::derive`], so data order and augmentation never share numbers.
const STREAM_TRAIN: u64 = 1;
const STREAM_AUGMENT: u64 = 2;
const STREAM_POLICY: u64 = 3;

/// The three random streams of one epoch (data order, crop/flip/Cutout, the policy's draws):
/// one per (seed, epoch), so any epoch replays alone, and the batched trainer's member j sees
/// exactly what a `Trainer` with member j's config sees.
fn epoch_streams(config: &TrainConfig, epoch: usize) -> (Rng, Rng, Rng) {
    let order = Rng::derive(config.seed, &[STREAM_TRAIN, epoch as u64]);
    let aug_seed = config.augment_seed.unwrap_or(config.seed);
    let augment = Rng::derive(aug_seed, &[STREAM_AUGMENT, epoch as u64]);
    let policy = Rng::derive(config.policy_seed.unwrap_or(aug_seed), &[STREAM_POLICY, epoch as u64]);
    (order, augment, policy)
}

/// Batches of an epoch over `n` images: a final batch of one cannot be batch-normalised, so
/// it is dropped.
fn batch_count(n: i64, bs: i64) -> usize {
    ((n / bs) + i64::from(n % bs >= 2)).max(1) as usize
}

/// What one batch's step did, for [`EpochWalk`]: the loss to show, or that nothing is left
/// to train (every member of a batched trainer dropped).
enum Stepped {
    Loss(f64),
    Stop,
}

/// How an epoch went, as [`EpochWalk::run`] saw it.
struct Walked {
    lr_start: f64,
    /// The rate of the last batch trained.
    lr_end: f64,
    /// Images per member trained on.
    seen: i64,
    seconds: f64,
}

/// The walk through one epoch that the trainer and the batched trainer share: batches in
/// order, a cancel check before each, the learning rate at the batch's point in the epoch,
/// augmented batches prepared `ahead` at a time (the augmentation of a window runs as one
/// batched pass), progress after each batch. What a batch does is the caller's `step`.
struct EpochWalk<'a> {
    schedule: &'a LrSchedule,
    /// 0-based.
    epoch: usize,
    n: i64,
    batch_size: i64,
    ahead: usize,
    /// Images one item of a batch stands for (a batched trainer's k members).
    images_per_item: i64,
}

impl EpochWalk<'_> {
    /// `prepare(first, count)`: the augmented inputs of batches first..first + count;
    /// `step(batch, len, lr, input)`: train on one.
    fn run<T>(
        &self,
        cancel: &CancelFlag,
        on_batch: &mut dyn FnMut(&BatchProgress),
        mut prepare: impl FnMut(usize, usize) -> Result<Vec<T>, TrainError>,
        mut step: impl FnMut(usize, i64, f64, T) -> Result<Stepped, TrainError>,
    ) -> Result<Walked, TrainError> {
        let (epoch, n, bs) = (self.epoch, self.n, self.batch_size);
        let batches = batch_count(n, bs);
        let start = Instant::now();
        let lr_start = self.schedule.at(epoch as f64);
        let (mut lr, mut seen) = (lr_start, 0i64);
        let mut ready: std::collections::VecDeque<T> = Default::default();
        for b in 0..batches {
            if cancel.is_cancelled() {
                return Err(TrainError::Cancelled {
                    epoch: epoch + 1,
                    batch: b,
                });
            }
            let len = bs.min(n - b as i64 * bs);
            lr = self.schedule.at(epoch as f64 + b as f64 / batches as f64);
            if ready.is_empty() {
                ready.extend(prepare(b, self.ahead.min(batches - b))?);
            }
            let input = ready.pop_front().ok_or(TrainError::MissingBatch {
                epoch: epoch + 1,
                batch: b,
            })?;
            let stepped = step(b, len, lr, input)?;
            seen += len;
            let Stepped::Loss(loss) = stepped else {
                break;
            };
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            on_batch(&BatchProgress {
                epoch: epoch + 1,
                batch: b + 1,
                batches,
                loss,
                lr,
                images_per_sec: (seen * self.images_per_item) as f64 / secs,
            });
        }
        Ok(Walked {
            lr_start,
            lr_end: lr,
            seen,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// The model's input in the configured layout (channels-last on CUDA when asked).
fn layout(config: &TrainConfig, model: &Model, x: Tensor) -> Result<Tensor, TchError> {
    if config.channels_last && model.device().is_cuda() {
        crate::amp::channels_last(&x)
    } else {
        Ok(x)
    }
}

/// `data` is non-empty and fits the model's input channels and classes.
fn check_data(model: &Model, data: &Dataset) -> Result<(), TrainError> {
    if data.is_empty() {
        return Err(TrainError::EmptyData(data.info.name.clone()));
    }
    if data.info.channels != model.in_channels || data.info.num_classes() > model.classes {
        return Err(TrainError::Incompatible {
            expected: model.in_channels,
            classes: model.classes,
            name: data.info.name.clone(),
            got: data.info.channels,
            got_classes: data.info.num_classes(),
        });
    }
    Ok(())
}

/// Run a closure that calls panicking tch ops, turning a libtorch panic into an error so a
/// notebook or REPL session survives it.
/// Zero `t`'s gradient if it has one (tch's `zero_grad`, fallible).
pub fn zero_grad(t: &Tensor) -> Result<(), TchError> {
    let mut g = t.f_grad()?;
    if g.defined() {
        let _ = g.f_detach_()?.f_zero_()?;
    }
    Ok(())
}

impl Trainer {
    pub fn new(mut model: Model, normalize: Normalize, config: TrainConfig) -> Result<Self, TrainError> {
        if config.channels_last && model.device().is_cuda() {
            model.to_channels_last()?;
        }
        let opt = Sgd::new(&model, config.sgd.clone())?;
        Ok(Self {
            model,
            opt,
            config,
            normalize,
            epochs_done: 0,
        })
    }

    /// The model's input in the configured layout.
    fn layout(&self, x: Tensor) -> Result<Tensor, tch::TchError> {
        layout(&self.config, &self.model, x)
    }

    fn check(&self, data: &Dataset) -> Result<(), TrainError> {
        check_data(&self.model, data)
    }

    /// One epoch over `data` in a seeded random order. On error the weights are as after the
    /// last completed batch; callers that must not lose state snapshot first.
    pub fn train_epoch(
        &mut self,
        data: &Dataset,
        aug: &mut dyn Augmenter,
        cancel: &CancelFlag,
        on_batch: &mut dyn FnMut(&BatchProgress),
    ) -> Result<EpochReport, TrainError> {
        self.check(data)?;
        let epoch = self.epochs_done;
        let (mut order_rng, mut rng, mut policy_rng) = epoch_streams(&self.config, epoch);
        let dev = self.model.device();
        let n = data.len();
        let bs = self.config.batch_size.max(2);
        let perm = order_rng.permutation(n, dev)?;
        let mut loss_sum = 0.0;
        let mut correct = Tensor::f_zeros([], (Kind::Int64, dev))?;
        let ahead = augment_ahead(&self.config, bs * image_bytes(data));
        let schedule = self.config.schedule.clone();
        let walk = EpochWalk {
            schedule: &schedule,
            epoch,
            n,
            batch_size: bs,
            ahead,
            images_per_item: 1,
        };
        let walked = walk.run(
            cancel,
            on_batch,
            |first, count| augment_window(data, &perm, first, count, bs, aug, &mut rng, &mut policy_rng),
            |b, len, lr, x| {
                let x = self.layout(x)?;
                let idx = perm.f_narrow(0, b as i64 * bs, len)?;
                let y = data.labels.f_index_select(0, &idx)?;
                let (logits, loss) = crate::amp::forward(self.config.precision, dev, || {
                    let logits = self.model.forward_t(&x, true)?;
                    let loss = logits.f_cross_entropy_loss::<Tensor>(
                        &y,
                        None,
                        Reduction::Mean,
                        -100,
                        self.config.label_smoothing,
                    )?;
                    Ok::<_, tch::TchError>((logits, loss))
                })?;
                let value = crate::device::host_read(&loss)?[0];
                if !value.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch: epoch + 1,
                        batch: b,
                        loss: value,
                    });
                }
                self.opt.zero_grad()?;
                loss.f_backward()?;
                if let Some(c) = self.config.grad_clip {
                    let _ = self.opt.clip_grad_norm(c)?;
                }
                self.opt.step(lr)?;
                let _ = correct.f_add_(&logits.f_argmax(1, false)?.f_eq_tensor(&y)?.f_sum(Kind::Int64)?)?;
                loss_sum += value * len as f64;
                Ok(Stepped::Loss(value))
            },
        )?;
        self.epochs_done += 1;
        let (seen, seconds) = (walked.seen, walked.seconds);
        Ok(EpochReport {
            epoch: self.epochs_done,
            lr_start: walked.lr_start,
            lr_end: walked.lr_end,
            loss: loss_sum / seen as f64,
            train_acc: crate::device::host_read(&correct)?[0] / seen as f64,
            val_acc: None,
            images: seen,
            seconds,
            images_per_sec: seen as f64 / seconds.max(1e-9),
        })
    }

    /// Top-1 accuracy on `data` (no augmentation, BN in eval mode, one host sync).
    pub fn evaluate(&self, data: &Dataset) -> Result<f64, TrainError> {
        let mut correct = Tensor::f_zeros([], (Kind::Int64, self.model.device()))?;
        self.eval_batches(data, |logits, y| {
            let _ = correct.f_add_(&logits.f_argmax(1, false)?.f_eq_tensor(y)?.f_sum(Kind::Int64)?)?;
            Ok(())
        })?;
        Ok(crate::device::host_read(&correct)?[0] / data.len() as f64)
    }

    /// Each image's outcome on `data`: whether the prediction was right, and its cross-entropy
    /// (no label smoothing). What a reward is a mean of, kept per image so a study can ask how
    /// much of a reward's noise is the validation sample's (`benches/resolution.rs`).
    pub fn evaluate_each(&self, data: &Dataset) -> Result<ImageOutcomes, TrainError> {
        let (mut correct, mut loss) = (Vec::new(), Vec::new());
        self.eval_batches(data, |logits, y| {
            let right = logits.f_argmax(1, false)?.f_eq_tensor(y)?;
            let ce =
                logits
                    .f_to_kind(Kind::Float)?
                    .f_cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)?;
            correct.push(right);
            loss.push(ce);
            Ok(())
        })?;
        let host = |parts: Vec<Tensor>| -> Result<Vec<f64>, TrainError> {
            if parts.is_empty() {
                return Ok(Vec::new());
            }
            Ok(crate::device::host_read(
                &Tensor::f_cat(&parts, 0)?.f_to_kind(Kind::Double)?,
            )?)
        };
        Ok(ImageOutcomes {
            correct: host(correct)?.into_iter().map(|c| c > 0.5).collect(),
            loss: host(loss)?,
        })
    }

    /// `data` in evaluation batches through the model (BN in eval mode, no grad), each batch's
    /// logits and labels handed to `each`.
    fn eval_batches(
        &self,
        data: &Dataset,
        mut each: impl FnMut(&Tensor, &Tensor) -> Result<(), TchError>,
    ) -> Result<(), TrainError> {
        self.check(data)?;
        let n = data.len();
        let bs = self.config.eval_batch_size.max(1);
        tch::no_grad(|| -> Result<_, TrainError> {
            let mut start = 0;
            while start < n {
                let len = bs.min(n - start);
                let x = self.layout(self.normalize.apply(&data.images.f_narrow(0, start, len)?)?)?;
                let y = data.labels.f_narrow(0, start, len)?;
                let logits = crate::amp::forward(self.config.precision, self.model.device(), || {
                    self.model.forward_t(&x, false)
                })?;
                each(&logits, &y)?;
                start += len;
            }
            Ok(())
        })
    }

    /// Train `epochs` more epochs, evaluating on `val` after each when given.
    pub fn fit(
        &mut self,
        train: &Dataset,
        val: Option<&Dataset>,
        epochs: usize,
        aug: &mut dyn Augmenter,
        cancel: &CancelFlag,
        on_event: &mut dyn FnMut(FitEvent),
    ) -> Result<Vec<EpochReport>, TrainError> {
        let mut reports = Vec::with_capacity(epochs);
        for _ in 0..epochs {
            let mut r = self.train_epoch(train, aug, cancel, &mut |b| on_event(FitEvent::Batch(b)))?;
            if let Some(v) = val {
                r.val_acc = Some(self.evaluate(v)?);
            }
            on_event(FitEvent::Epoch(&r));
            reports.push(r);
        }
        Ok(reports)
    }

    /// Deep copy of weights, momentum and schedule position.
    pub fn snapshot(&self) -> Result<TrainerState, TrainError> {
        Ok(TrainerState {
            weights: self.model.snapshot()?,
            momentum: self.opt.state()?,
            epochs_done: self.epochs_done,
        })
    }

    /// Put weights, momentum and schedule position back to `s`.
    pub fn restore(&mut self, s: &TrainerState) -> Result<(), TrainError> {
        self.model.restore(&s.weights)?;
        self.opt
            .load_state(&s.momentum)
            .map_err(|e| TrainError::Model(ModelError::Mismatch(e)))?;
        self.epochs_done = s.epochs_done;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    fn epoch(loss: f64, train_acc: f64) -> EpochReport {
        EpochReport {
            epoch: 1,
            lr_start: 0.1,
            lr_end: 0.1,
            loss,
            train_acc,
            val_acc: None,
            images: 10,
            seconds: 1.0,
            images_per_sec: 10.0,
        }
    }

    #[test]
    fn divergence_without_nan_is_named_and_ordinary_training_is_not() {
        // 10 classes: training starts near ln 10 = 2.3; 1e14 at chance accuracy diverged.
        let w = divergence_warning(&[epoch(2.2, 0.2), epoch(1e14, 0.101)], 10).unwrap();
        assert!(
            w.contains("diverged without NaN") && w.contains("1.000e14") && w.contains("Lower the learning rate"),
            "{w}"
        );
        // A high loss that still learns, or a low one at chance, is no divergence.
        assert!(divergence_warning(&[epoch(1e14, 0.6)], 10).is_none());
        assert!(divergence_warning(&[epoch(2.3, 0.1)], 10).is_none());
        assert!(divergence_warning(&[], 10).is_none());
        // pretrain_lr=10 on 4 classes ends near 3× ln 4 at chance: named. A validation
        // accuracy above chance means the network still learns something: not named.
        assert!(divergence_warning(&[epoch(4.16, 0.25)], 4).is_some());
        let learning = EpochReport {
            val_acc: Some(0.6),
            ..epoch(4.16, 0.25)
        };
        assert!(divergence_warning(&[learning], 4).is_none());
    }

    #[test]
    fn trajectories_at_chance_are_named_and_any_learning_one_clears_the_warning() {
        let chance: &[f64] = &[0.25, 0.25];
        let learnt: &[f64] = &[0.25, 0.40];
        let w = chance_warning(&[chance, chance], 4, 1e4).unwrap();
        assert!(
            w.contains("25.0%") && w.contains("(10000)") && w.contains("finetune_lr"),
            "{w}"
        );
        assert!(chance_warning(&[chance, learnt], 4, 1e4).is_none());
        assert!(chance_warning(&[], 4, 1e4).is_none());
        assert!(chance_warning(&[&[]], 4, 1e4).is_none());
    }
}
