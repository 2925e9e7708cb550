//! Stage 1 (docs/method.md): shared-weight pretraining with a pair drawn uniformly per image, and
//! the snapshot of weights and momentum at its end that every stage-2 trajectory starts from.

use tch::{Device, Tensor};

use super::config::SearchConfig;
use super::error::SearchError;
use super::progress::{BatchAt, Progress, ProgressSink};
use crate::augment::Pipeline;
use crate::data::Splits;
use crate::model::{Model, Weights};
use crate::policy::Policy;
use crate::policy::PolicyAugment;
use crate::train::{CancelFlag, EpochReport, FitEvent, SgdState, Trainer, TrainerState};

/// The shared model and the stage-1 snapshot (absent before the first `pretrain`).
pub(super) struct Stage1 {
    pub trainer: Trainer,
    pub snapshot: Option<TrainerState>,
}

impl Stage1 {
    pub fn new(trainer: Trainer) -> Self {
        Self {
            trainer,
            snapshot: None,
        }
    }

    /// Epochs of stage 1 behind the snapshot.
    pub fn epochs_done(&self) -> usize {
        self.snapshot.as_ref().map_or(0, |s| s.epochs_done)
    }

    /// The snapshot stage 2 fine-tunes from: only at the *end* of stage 1.
    pub fn complete(&self, config: &SearchConfig) -> Result<&TrainerState, SearchError> {
        let snapshot = self.snapshot.as_ref().ok_or(SearchError::NotPretrained)?;
        if snapshot.epochs_done < config.pretrain_epochs {
            return Err(SearchError::Stage1Incomplete {
                done: snapshot.epochs_done,
                total: config.pretrain_epochs,
            });
        }
        Ok(snapshot)
    }

    /// Put the shared model back to the snapshot and the stage-1 recipe (after trajectories
    /// trained on it).
    pub fn back_to_snapshot(&mut self, config: &SearchConfig) -> Result<(), SearchError> {
        if let Some(s) = &self.snapshot {
            self.trainer.restore(s)?;
        }
        self.trainer.config = config.stage1_train_config();
        Ok(())
    }

    /// The snapshot as named tensors for its file: `w/…` weights, `m/…` momentum and
    /// `meta/epochs`.
    pub fn to_tensors(snapshot: &TrainerState) -> Result<Vec<(String, Tensor)>, tch::TchError> {
        let mut tensors: Vec<(String, Tensor)> = snapshot
            .weights
            .0
            .iter()
            .map(|(k, t)| (format!("w/{k}"), t.shallow_clone()))
            .collect();
        tensors.extend(
            snapshot
                .momentum
                .0
                .iter()
                .map(|(k, t)| (format!("m/{k}"), t.shallow_clone())),
        );
        tensors.push((
            "meta/epochs".into(),
            Tensor::f_from_slice(&[snapshot.epochs_done as i64])?,
        ));
        Ok(tensors)
    }

    /// A snapshot file's tensors back on `device`, checked against `session.json`'s epoch
    /// count and this model's parameter names and shapes.
    pub fn snapshot_from_tensors(
        &self,
        tensors: Vec<(String, Tensor)>,
        epochs: usize,
        config: &SearchConfig,
        device: Device,
    ) -> Result<TrainerState, String> {
        let mut weights = Vec::new();
        let mut momentum = Vec::new();
        let mut saved_epochs = None;
        let to_device = |t: Tensor| {
            t.f_to_device(device)
                .map_err(|e| format!("could not load a tensor: {e}"))
        };
        for (k, t) in tensors {
            if let Some(name) = k.strip_prefix("w/") {
                weights.push((name.to_owned(), to_device(t)?));
            } else if let Some(name) = k.strip_prefix("m/") {
                momentum.push((name.to_owned(), to_device(t)?));
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
        let mut expected: Vec<(String, Tensor)> = self.trainer.model.vs.variables().into_iter().collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        if weights.len() != expected.len()
            || weights
                .iter()
                .zip(&expected)
                .any(|(a, b)| a.0 != b.0 || a.1.size() != b.1.size())
        {
            return Err(format!("the weights do not fit a {} model", config.model));
        }
        Ok(TrainerState {
            weights: Weights(weights),
            momentum: SgdState(momentum),
            epochs_done: epochs,
        })
    }
}

/// A fresh shared model for `config` on `device`.
pub(super) fn shared_model(
    config: &SearchConfig,
    info: &crate::data::DatasetInfo,
    device: Device,
    seed: u64,
) -> Result<Model, SearchError> {
    Ok(Model::new(
        config.model,
        info.channels,
        info.num_classes(),
        device,
        seed,
    )?)
}

/// What puts stage 1 back as it was before [`Stage1::train`] (its checkpoint failed).
pub(super) struct Stage1Undo {
    before: TrainerState,
    snapshot: Option<TrainerState>,
}

impl Stage1 {
    /// `n` more epochs with pairs drawn uniformly per image, then the snapshot of weights and
    /// momentum; a failed or cancelled epoch leaves the model as it was before.
    pub fn train(
        &mut self,
        config: &SearchConfig,
        splits: &Splits,
        pipeline: &Pipeline,
        n: usize,
        cancel: &CancelFlag,
        progress: &mut ProgressSink,
    ) -> Result<(Vec<EpochReport>, Stage1Undo), SearchError> {
        let done = self.epochs_done();
        let before = self.trainer.snapshot()?;
        self.trainer.config = config.stage1_train_config();
        let mut aug = PolicyAugment::new(pipeline.clone(), Policy::AwsUniform.sampler()?);
        let result = self
            .trainer
            .fit(&splits.train, Some(&splits.val), n, &mut aug, cancel, &mut |event| {
                let FitEvent::Batch(b) = event else { return };
                progress.emit(Progress::Pretrain {
                    at: BatchAt {
                        epoch: b.epoch - done,
                        epochs: n,
                        batch: b.batch,
                        batches: b.batches,
                        loss: b.loss,
                    },
                    schedule_epoch: b.epoch,
                    images_per_sec: b.images_per_sec,
                });
            });
        let epochs = match result {
            Ok(r) => r,
            Err(e) => {
                self.trainer.restore(&before)?;
                return Err(e.into());
            }
        };
        let snapshot = self.snapshot.replace(self.trainer.snapshot()?);
        Ok((epochs, Stage1Undo { before, snapshot }))
    }

    /// Back to before `train` (best effort: the weights were copied, restoring cannot fail
    /// for want of memory the copy did not need).
    pub fn undo(&mut self, undo: Stage1Undo) {
        let _ = self.trainer.restore(&undo.before);
        self.snapshot = undo.snapshot;
    }
}
