//! k trajectories trained together on one device (issue 13, item 3): the k models live in one
//! network of k members (`Model::members`: grouped convolutions, per-member BN channels, a
//! stacked classifier), so one forward/backward/step trains all of them — on a GPU the k
//! small ResNets become one kernel each instead of k launch-bound ones.
//!
//! Member j is exactly the trajectory a [`Trainer`](super::Trainer) with `configs[j]` would
//! run: its own weights, BN statistics, momentum, gradient-norm clip, data order and
//! augmentation draws (the same three random streams per epoch, consumed in the same order).
//! Its gradient is its own: the loss is the sum of the members' mean losses. A member whose
//! loss turns NaN/Inf is dropped from the sum (and reported) while the others go on.
use tch::{Kind, Reduction, Tensor};

use super::{
    check_data, epoch_streams, layout, Augmenter, BatchProgress, CancelFlag, EpochReport, EpochWalk, Sgd, Stepped,
    TrainConfig, TrainError, TrainerState,
};
use crate::augment::{AugmentPlan, Normalize};
use crate::data::Dataset;
use crate::model::{Model, ModelError};
use crate::rng::Rng;

/// A config with its seeds blanked: what the members of one batch must share.
fn shared(c: &TrainConfig) -> TrainConfig {
    TrainConfig {
        seed: 0,
        augment_seed: None,
        policy_seed: None,
        ..c.clone()
    }
}

/// k members trained in lock-step; see the module docs.
#[derive(Debug)]
pub struct BatchedTrainer {
    pub model: Model,
    pub opt: Sgd,
    /// One config per member: the seeds may differ, everything else is shared (checked).
    pub configs: Vec<TrainConfig>,
    pub normalize: Normalize,
    pub epochs_done: usize,
    /// Where a member's loss turned NaN/Inf (epoch, batch, loss), per member.
    dropped: Vec<Option<(usize, usize, f64)>>,
}

impl BatchedTrainer {
    /// `model` must have `configs.len()` members; the configs may differ only in their seeds.
    pub fn new(mut model: Model, normalize: Normalize, configs: Vec<TrainConfig>) -> Result<Self, TrainError> {
        if configs.is_empty() || model.members != configs.len() as i64 {
            return Err(ModelError::Mismatch(format!(
                "{} configs for a model of {} members",
                configs.len(),
                model.members
            ))
            .into());
        }
        if configs.iter().any(|c| shared(c) != shared(&configs[0])) {
            return Err(
                ModelError::Mismatch("batched trajectories must share every setting but their seeds".into()).into(),
            );
        }
        if configs[0].channels_last && model.device().is_cuda() {
            model.to_channels_last()?;
        }
        let opt = Sgd::new(&model, configs[0].sgd.clone())?;
        let dropped = vec![None; configs.len()];
        Ok(Self {
            model,
            opt,
            configs,
            normalize,
            epochs_done: 0,
            dropped,
        })
    }

    /// The next trajectories' configs on the same model (a new update reuses the network
    /// instead of building k fresh ones); the same rules as [`BatchedTrainer::new`].
    pub fn set_configs(&mut self, configs: Vec<TrainConfig>) -> Result<(), TrainError> {
        if configs.len() != self.configs.len() || configs.iter().any(|c| shared(c) != shared(&self.configs[0])) {
            return Err(
                ModelError::Mismatch("batched trajectories must share every setting but their seeds".into()).into(),
            );
        }
        self.configs = configs;
        Ok(())
    }

    pub fn members(&self) -> usize {
        self.configs.len()
    }

    /// Every member set to one trainer's state (the stage-1 snapshot): weights, momentum,
    /// position in the schedule; every member alive again.
    pub fn restore(&mut self, s: &TrainerState) -> Result<(), TrainError> {
        self.model.load_members(&s.weights)?;
        let tiled = s
            .momentum
            .0
            .iter()
            .map(|(n, t)| Ok((n.clone(), self.model.tile(n, t)?)))
            .collect::<Result<Vec<_>, tch::TchError>>()?;
        self.opt
            .load_state(&super::SgdState(tiled))
            .map_err(|e| TrainError::Model(ModelError::Mismatch(e)))?;
        self.epochs_done = s.epochs_done;
        self.dropped.iter_mut().for_each(|d| *d = None);
        Ok(())
    }

    /// One epoch of every member over `data`, member j augmented by `augs[j]`. Per member: its
    /// report, or the NaN/Inf error that dropped it (now or in an earlier epoch).
    pub fn train_epoch<A: Augmenter>(
        &mut self,
        data: &Dataset,
        augs: &mut [A],
        cancel: &CancelFlag,
        on_batch: &mut dyn FnMut(&BatchProgress),
    ) -> Result<Vec<Result<EpochReport, TrainError>>, TrainError> {
        check_data(&self.model, data)?;
        let k = self.members();
        if augs.len() != k {
            return Err(ModelError::Mismatch(format!("{} augmenters for {k} members", augs.len())).into());
        }
        let epoch = self.epochs_done;
        let cfg = self.configs[0].clone();
        let dev = self.model.device();
        let mut streams: Vec<_> = self.configs.iter().map(|c| epoch_streams(c, epoch)).collect();
        let n = data.len();
        let bs = cfg.batch_size.max(2);
        let perms = streams
            .iter_mut()
            .map(|(order, _, _)| order.permutation(n, dev))
            .collect::<Result<Vec<_>, _>>()?;
        let mut loss_sums = vec![0.0; k];
        let mut correct = Tensor::f_zeros([k as i64], (Kind::Int64, dev))?;
        // Which members' losses count; uploaded again only when a member drops.
        let alive_mask = |dropped: &[Option<(usize, usize, f64)>]| {
            let alive: Vec<bool> = dropped.iter().map(Option::is_none).collect();
            crate::device::upload(Tensor::f_from_slice(&alive)?, dev)
        };
        let mut mask = alive_mask(&self.dropped)?;
        let walk = EpochWalk {
            schedule: &cfg.schedule,
            epoch,
            n,
            batch_size: bs,
            ahead: super::augment_ahead(&cfg, bs * k as i64 * super::image_bytes(data)),
            images_per_item: k as i64,
        };
        // Each prepared batch: the k members' augmented images in member order.
        let walked = walk.run(
            cancel,
            on_batch,
            |first, count| augment_members(data, &perms, first, count, bs, augs, &mut streams),
            |b, len, lr, xs: Vec<Tensor>| {
                let mut ys = Vec::with_capacity(k);
                for perm in &perms {
                    ys.push(data.labels.f_index_select(0, &perm.f_narrow(0, b as i64 * bs, len)?)?);
                }
                // Member j's images become input channels j·C.. of one batch.
                let x = Tensor::f_stack(&xs, 1)?;
                let (c, h, w) = (x.size()[2], x.size()[3], x.size()[4]);
                let x = layout(&cfg, &self.model, x.f_reshape([len, k as i64 * c, h, w])?)?;
                let y = Tensor::f_cat(&ys, 0)?;
                let (logits, per_member) = crate::amp::forward(cfg.precision, dev, || {
                    let logits = self.model.forward_t(&x, true)?;
                    let per = logits
                        .f_cross_entropy_loss::<Tensor>(&y, None, Reduction::None, -100, cfg.label_smoothing)?
                        .f_view([k as i64, len])?
                        .f_mean_dim(1, false, Kind::Float)?;
                    Ok::<_, tch::TchError>((logits, per))
                })?;
                let values = crate::device::host_read(&per_member)?;
                for (sum, v) in loss_sums.iter_mut().zip(&values) {
                    *sum += v * len as f64;
                }
                let mut newly_dropped = false;
                for (d, v) in self.dropped.iter_mut().zip(&values) {
                    if d.is_none() && !v.is_finite() {
                        *d = Some((epoch + 1, b, *v));
                        newly_dropped = true;
                    }
                }
                let live: Vec<f64> = values
                    .iter()
                    .zip(&self.dropped)
                    .filter(|(_, d)| d.is_none())
                    .map(|(v, _)| *v)
                    .collect();
                if live.is_empty() {
                    return Ok(Stepped::Stop);
                }
                if newly_dropped {
                    mask = alive_mask(&self.dropped)?;
                }
                let loss = per_member
                    .f_where_self(&mask, &per_member.f_zeros_like()?)?
                    .f_sum(Kind::Float)?;
                self.opt.zero_grad()?;
                loss.f_backward()?;
                if let Some(clip) = cfg.grad_clip {
                    let _ = self.opt.clip_grad_norm(clip)?;
                }
                self.opt.step(lr)?;
                let hits = logits
                    .f_argmax(1, false)?
                    .f_eq_tensor(&y)?
                    .f_view([k as i64, len])?
                    .f_sum_dim_intlist(1, false, Kind::Int64)?;
                let _ = correct.f_add_(&hits)?;
                Ok(Stepped::Loss(live.iter().sum::<f64>() / live.len() as f64))
            },
        )?;
        self.epochs_done += 1;
        let (seen, seconds, lr_start, lr) = (walked.seen, walked.seconds, walked.lr_start, walked.lr_end);
        let hits = crate::device::host_read(&correct)?;
        Ok((0..k)
            .map(|j| match self.dropped[j] {
                Some((epoch, batch, loss)) => Err(TrainError::NonFinite { epoch, batch, loss }),
                None => Ok(EpochReport {
                    epoch: self.epochs_done,
                    lr_start,
                    lr_end: lr,
                    loss: loss_sums[j] / seen.max(1) as f64,
                    train_acc: hits[j] / seen.max(1) as f64,
                    val_acc: None,
                    images: seen,
                    seconds,
                    images_per_sec: seen as f64 / seconds.max(1e-9),
                }),
            })
            .collect())
    }

    /// Top-1 accuracy of every member on `data` (one forward per batch for all members).
    pub fn evaluate(&self, data: &Dataset) -> Result<Vec<f64>, TrainError> {
        check_data(&self.model, data)?;
        let (k, n) = (self.members() as i64, data.len());
        let cfg = &self.configs[0];
        let bs = cfg.eval_batch_size.max(1);
        let dev = self.model.device();
        tch::no_grad(|| -> Result<_, TrainError> {
            let mut correct = Tensor::f_zeros([k], (Kind::Int64, dev))?;
            let mut start = 0;
            while start < n {
                let len = bs.min(n - start);
                let x = self
                    .normalize
                    .apply(&data.images.f_narrow(0, start, len)?)?
                    .f_repeat([1, k, 1, 1])?;
                let x = layout(cfg, &self.model, x)?;
                let y = data.labels.f_narrow(0, start, len)?;
                let logits = crate::amp::forward(cfg.precision, dev, || self.model.forward_t(&x, false))?;
                let hits = logits
                    .f_argmax(1, false)?
                    .f_view([k, len])?
                    .f_eq_tensor(&y.f_unsqueeze(0)?)?
                    .f_sum_dim_intlist(1, false, Kind::Int64)?;
                let _ = correct.f_add_(&hits)?;
                start += len;
            }
            let hits = crate::device::host_read(&correct)?;
            Ok(hits.into_iter().map(|c| c / n as f64).collect())
        })
    }
}

/// Batches `first..first + count` of every member, augmented: each member's plans drawn from
/// its own streams in batch order, then applied in one call when the members share a pipeline
/// (an update's trajectories do: only their policies differ), else one call per member. Per
/// batch, the k members' images in member order.
fn augment_members<A: Augmenter>(
    data: &Dataset,
    perms: &[Tensor],
    first: usize,
    count: usize,
    bs: i64,
    augs: &mut [A],
    streams: &mut [(Rng, Rng, Rng)],
) -> Result<Vec<Vec<Tensor>>, TrainError> {
    let k = augs.len();
    let n = data.len();
    let (_, _, h, w) = data.images.size4()?;
    // [batch][member] images and plans.
    let mut images: Vec<Vec<Tensor>> = Vec::with_capacity(count);
    let mut plans: Vec<Vec<AugmentPlan>> = Vec::with_capacity(count);
    for b in first..first + count {
        let len = bs.min(n - b as i64 * bs);
        let (mut xs, mut ps) = (Vec::with_capacity(k), Vec::with_capacity(k));
        for ((perm, (_, rng, policy_rng)), aug) in perms.iter().zip(streams.iter_mut()).zip(augs.iter_mut()) {
            xs.push(data.images.f_index_select(0, &perm.f_narrow(0, b as i64 * bs, len)?)?);
            ps.push(aug.plan(len as usize, h, w, rng, policy_rng));
        }
        images.push(xs);
        plans.push(ps);
    }
    let fused = augs.windows(2).all(|a| a[0].pipeline() == a[1].pipeline());
    if fused {
        let Some(first_aug) = augs.first() else {
            return Ok(vec![]);
        };
        let flat_x: Vec<Tensor> = images.iter().flatten().map(Tensor::shallow_clone).collect();
        let flat_p: Vec<AugmentPlan> = plans.into_iter().flatten().collect();
        let mut out = first_aug.pipeline().apply_plans(&flat_x, &flat_p)?.into_iter();
        return Ok((0..count).map(|_| out.by_ref().take(k).collect()).collect());
    }
    let mut per_member: Vec<std::vec::IntoIter<Tensor>> = Vec::with_capacity(k);
    for (j, aug) in augs.iter().enumerate() {
        let xs: Vec<Tensor> = images.iter().map(|row| row[j].shallow_clone()).collect();
        let ps: Vec<AugmentPlan> = plans.iter().map(|row| row[j].clone()).collect();
        per_member.push(aug.pipeline().apply_plans(&xs, &ps)?.into_iter());
    }
    Ok((0..count)
        .map(|_| per_member.iter_mut().filter_map(Iterator::next).collect())
        .collect())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use crate::augment::Pipeline;
    use crate::data::DatasetInfo;
    use crate::policy::Policy;
    use crate::policy::PolicyAugment;
    use tch::Device;

    fn dataset(n: usize) -> Dataset {
        let info = DatasetInfo {
            name: "t".into(),
            channels: 3,
            height: 10,
            width: 10,
            classes: vec!["a".into(), "b".into()],
            hflip: true,
        };
        let pixels: Vec<u8> = (0..n * 300).map(|i| (i * 37 % 251) as u8).collect();
        Dataset::from_u8(info, pixels, (0..n as i64).map(|i| i % 2).collect()).unwrap()
    }

    /// The fused call gives every member, batch by batch, exactly the images its own augmenter
    /// gives it alone from the same streams — across a window of batches and a short last one.
    #[test]
    fn members_augmented_together_equal_members_augmented_alone() {
        let data = dataset(23);
        let p = Pipeline::for_dataset(&data.info, vec![0.5; 3], vec![0.25; 3]);
        for specs in [["aws:uniform", "none", "randaugment:n=3,m=9"], ["aws:uniform"; 3]] {
            let augs = || -> Vec<PolicyAugment> {
                specs
                    .iter()
                    .map(|s| PolicyAugment::new(p.clone(), s.parse::<Policy>().unwrap().sampler().unwrap()))
                    .collect()
            };
            let streams = || -> Vec<(Rng, Rng, Rng)> {
                (0..3)
                    .map(|j| (Rng::new(j), Rng::new(10 + j), Rng::new(20 + j)))
                    .collect()
            };
            let perms: Vec<Tensor> = (0..3u64)
                .map(|j| Rng::new(j).permutation(23, Device::Cpu).unwrap())
                .collect();
            let (mut fused_augs, mut fused_streams) = (augs(), streams());
            // Batches of 5: 0..3 in one window, then 3..5 (the last holds 3 images).
            let mut fused = augment_members(&data, &perms, 0, 3, 5, &mut fused_augs, &mut fused_streams).unwrap();
            fused.extend(augment_members(&data, &perms, 3, 2, 5, &mut fused_augs, &mut fused_streams).unwrap());
            assert_eq!(fused.len(), 5);
            let (mut alone_augs, mut alone_streams) = (augs(), streams());
            for (b, members) in fused.iter().enumerate() {
                let len = 5.min(23 - 5 * b as i64);
                for (j, x) in members.iter().enumerate() {
                    let idx = perms[j].narrow(0, 5 * b as i64, len);
                    let (_, rng, policy_rng) = &mut alone_streams[j];
                    let alone = alone_augs[j]
                        .augment(&data.images.index_select(0, &idx), rng, policy_rng)
                        .unwrap();
                    assert!(x.equal(&alone), "{specs:?}: batch {b} member {j}");
                }
            }
            for (f, a) in fused_augs.iter_mut().zip(alone_augs.iter_mut()) {
                assert_eq!(f.take_counts(), a.take_counts());
            }
        }
    }
}
