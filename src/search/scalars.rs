//! What a long search writes for TensorBoard, in `RUN_DIR/tensorboard/` (`tensorboard
//! --logdir RUN_DIR`): stage 1 per epoch, each trajectory per update, each update's PPO
//! figures, and the retrain per epoch — written after the primitive's checkpoint, so a
//! rolled-back step writes nothing. The x axis is the schedule epoch for stages that train
//! and the update (1-based) for the search. Scalars are a window on the run, not its record:
//! a failure to write them is reported once and turns them off, never fails a step.

use std::path::Path;

use super::ppo::Trajectory;
use super::progress::ProgressSink;
use super::report::{FulltrainReport, UpdateRecord};
use super::stats;
use crate::tensorboard::EventWriter;
use crate::train::EpochReport;

/// The session's event file, opened on first use; `Off` after a write failed.
#[derive(Default)]
pub(super) enum Scalars {
    #[default]
    Closed,
    Open(EventWriter),
    Off,
}

/// The event file of the run in `run_dir`, with where a failure is reported.
pub(super) struct ScalarWriter<'a> {
    pub scalars: &'a mut Scalars,
    pub run_dir: &'a Path,
    pub progress: &'a mut ProgressSink,
}

impl ScalarWriter<'_> {
    /// Run `write` on the session's event file and flush it.
    fn scalars(&mut self, write: impl FnOnce(&mut EventWriter) -> std::io::Result<()>) {
        if let Scalars::Closed = self.scalars {
            let dir = self.run_dir.join("tensorboard");
            *self.scalars = match EventWriter::create(&dir) {
                Ok(w) => Scalars::Open(w),
                Err(e) => {
                    self.progress.notice(
                        "tensorboard",
                        format!(
                            "could not create an event file in {}: {e}; scalars are off for this session",
                            dir.display()
                        ),
                    );
                    Scalars::Off
                }
            };
        }
        let Scalars::Open(w) = &mut *self.scalars else { return };
        if let Err(e) = write(w).and_then(|()| w.flush()) {
            let message = format!(
                "could not write {}: {e}; scalars are off for this session",
                w.path().display()
            );
            *self.scalars = Scalars::Off;
            self.progress.notice("tensorboard", message);
        }
    }

    /// Stage-1 epochs (and `fulltrain`'s under `prefix` = "fulltrain").
    pub fn epochs(&mut self, prefix: &str, epochs: &[EpochReport], test: &[f64]) {
        self.scalars(|w| {
            for (i, e) in epochs.iter().enumerate() {
                let step = e.epoch as i64;
                w.scalar(&format!("{prefix}/loss"), step, e.loss)?;
                w.scalar(&format!("{prefix}/train_accuracy"), step, e.train_acc)?;
                w.scalar(&format!("{prefix}/lr"), step, e.lr_end)?;
                w.scalar(&format!("{prefix}/images_per_sec"), step, e.images_per_sec)?;
                if let Some(v) = e.val_acc {
                    w.scalar(&format!("{prefix}/val_accuracy"), step, v)?;
                }
                if let Some(t) = test.get(i) {
                    w.scalar(&format!("{prefix}/test_accuracy"), step, *t)?;
                }
            }
            Ok(())
        });
    }

    /// Trajectories `first..` of update `update` (1-based, the one to come): each one's
    /// reward and accuracies.
    pub fn trajectories(&mut self, update: usize, first: usize, done: &[Trajectory]) {
        let step = update as i64;
        self.scalars(|w| {
            for (i, t) in done.iter().enumerate() {
                let tag = format!("trajectory/{}", first + i);
                w.scalar(&format!("{tag}/reward"), step, t.reward)?;
                if let Some(a) = t.accuracies.last() {
                    w.scalar(&format!("{tag}/final_val_accuracy"), step, *a)?;
                }
                w.scalar(&format!("{tag}/seconds"), step, t.seconds)?;
            }
            Ok(())
        });
    }

    /// One PPO update: the reward with its interval, baseline, entropy, KL, inner steps and
    /// the rates.
    pub fn update(&mut self, r: &UpdateRecord, finetune_lr: f64) {
        self.scalars(|w| {
            let step = r.update as i64;
            let stats::Estimate { mean, sd, n, ci95 } = r.reward;
            w.scalar("update/reward_mean", step, mean)?;
            w.scalar("update/reward_sd", step, sd)?;
            w.scalar("update/trajectories", step, n as f64)?;
            if let Some((lo, hi)) = ci95 {
                w.scalar("update/reward_ci95_low", step, lo)?;
                w.scalar("update/reward_ci95_high", step, hi)?;
            }
            w.scalar("update/baseline", step, r.ppo.baseline)?;
            w.scalar("update/entropy", step, r.ppo.entropy_after)?;
            w.scalar("update/kl", step, r.ppo.kl)?;
            w.scalar("update/inner_steps", step, r.ppo.inner_steps as f64)?;
            w.scalar("update/ppo_lr", step, r.ppo.lr)?;
            w.scalar("update/finetune_lr", step, finetune_lr)?;
            w.scalar("update/best_mean_reward", step, r.best_mean_reward)?;
            w.scalar("update/seconds", step, r.seconds)
        });
    }

    pub fn fulltrain(&mut self, r: &FulltrainReport) {
        let prefix = format!("fulltrain/{}", r.policy);
        self.epochs(&prefix, &r.epochs, &r.test_accuracy);
    }
}
