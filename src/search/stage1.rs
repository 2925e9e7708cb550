//! Stage 1 (docs/method.md): shared-weight pretraining with a pair drawn uniformly per image, and
//! the snapshot of weights and momentum at its end that every stage-2 trajectory starts from.

use tch::{Device, Tensor};

use super::progress::{BatchAt, Progress};
use super::{PretrainReport, SearchConfig, SearchError, Session};
use crate::model::{Model, Weights};
use crate::policy::Policy;
use crate::policy::PolicyAugment;
use crate::train::{FitEvent, SgdState, Trainer, TrainerState};

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

impl Session {
    /// Stage 1: `epochs` more epochs (default: the rest of the schedule) with pairs drawn
    /// uniformly per image; then snapshot weights and momentum and checkpoint.
    pub fn pretrain(&mut self, epochs: Option<usize>) -> Result<PretrainReport, SearchError> {
        self.writable()?;
        if self.ppo.updates > 0 || !self.pending.is_empty() {
            return Err(SearchError::SearchStarted);
        }
        let done = self.pretrain_epochs_done();
        let n = match epochs {
            Some(n) => super::session::within(&crate::limits::EPOCHS, n)?,
            None => self.config.pretrain_epochs.saturating_sub(done),
        };
        if n == 0 {
            return Err(SearchError::Stage1Complete {
                done,
                total: self.config.pretrain_epochs,
            });
        }
        self.cancel.reset();
        let stage1 = &mut self.stage1;
        let before = stage1.trainer.snapshot()?;
        stage1.trainer.config = self.config.stage1_train_config();
        let mut aug = PolicyAugment::new(self.pipeline.clone(), Policy::AwsUniform.sampler()?);
        let (cancel, progress) = (self.cancel.clone(), &mut self.progress);
        let result = stage1.trainer.fit(
            &self.splits.train,
            Some(&self.splits.val),
            n,
            &mut aug,
            &cancel,
            &mut |event| {
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
            },
        );
        let epochs = match result {
            Ok(r) => r,
            Err(e) => {
                stage1.trainer.restore(&before)?;
                return Err(e.into());
            }
        };
        let after = stage1.trainer.snapshot()?;
        let old_snapshot = stage1.snapshot.replace(after);
        let old_epochs = self.history.pretrain.len();
        self.history.pretrain.extend(epochs.iter().cloned());
        self.commit(true, move |s| {
            let _ = s.stage1.trainer.restore(&before);
            s.stage1.snapshot = old_snapshot;
            s.history.pretrain.truncate(old_epochs);
        })?;
        self.epoch_scalars("pretrain", &epochs, &[]);
        let warning = crate::train::divergence_warning(&epochs, self.splits.train.info.classes.len());
        Ok(PretrainReport {
            epochs,
            epochs_done: self.stage1.epochs_done(),
            schedule_epochs: self.config.pretrain_epochs,
            warning,
        })
    }
}
