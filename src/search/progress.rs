//! What a running primitive reports as it goes, as data: front-ends render it (a terminal bar,
//! one notebook line, JSON lines) without parsing text.

use serde::Serialize;

/// Why trajectories are running: the search's own (`evaluate`) or a measurement of a fixed
/// policy (`probe`, `compare`, `trajectory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum Purpose {
    Evaluate,
    Probe,
    /// Policy `policy` (1-based) of `of` in a paired comparison.
    Compare {
        policy: usize,
        of: usize,
    },
    /// One probe trajectory kept with its model.
    Trajectory,
}

impl Purpose {
    pub fn name(&self) -> &'static str {
        match self {
            Purpose::Evaluate => "evaluate",
            Purpose::Probe => "probe",
            Purpose::Compare { .. } => "compare",
            Purpose::Trajectory => "trajectory",
        }
    }
}

/// A batch's figures, where a batch is the unit of progress.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BatchAt {
    /// 1-based epoch within this primitive's run (of `epochs`).
    pub epoch: usize,
    pub epochs: usize,
    /// 1-based batch of `batches`.
    pub batch: usize,
    pub batches: usize,
    pub loss: f64,
}

impl BatchAt {
    /// Fraction of the `epochs` done after this batch.
    pub fn fraction(&self) -> f64 {
        ((self.epoch.max(1) - 1) as f64 + self.batch as f64 / self.batches.max(1) as f64) / self.epochs.max(1) as f64
    }
}

/// One progress event of a running primitive.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// Stage 1; `at.epoch` counts this call's epochs, `epoch` the schedule's.
    Pretrain {
        at: BatchAt,
        schedule_epoch: usize,
        images_per_sec: f64,
    },
    /// Stage-2 trajectories `first..first + together` (0-based) of `total`, trained together
    /// when `together > 1`.
    Trajectories {
        purpose: Purpose,
        first: usize,
        together: usize,
        total: usize,
        at: BatchAt,
    },
    /// Trajectories on the slurm executor: `done`, `running` and `waiting` (queued or to be
    /// resubmitted) array tasks of `total`; `reason`: Slurm's reason most pending tasks wait.
    Queued {
        purpose: Purpose,
        done: usize,
        running: usize,
        waiting: usize,
        total: usize,
        reason: Option<String>,
    },
    /// The after-search retrain.
    Fulltrain { at: BatchAt },
    /// `done` of `replicates` null searches.
    Null { done: usize, replicates: usize },
    /// Something the user should know that stops nothing (a file refused and recomputed, a
    /// queue that did not answer, scalars turned off): printed as a line of its own, never a
    /// step of a bar. `stage` says where it comes from.
    Notice { stage: &'static str, message: String },
}

impl Progress {
    /// The primitive's name, as typed.
    pub fn stage(&self) -> &'static str {
        match self {
            Progress::Pretrain { .. } => "pretrain",
            Progress::Trajectories { purpose, .. } | Progress::Queued { purpose, .. } => purpose.name(),
            Progress::Fulltrain { .. } => "fulltrain",
            Progress::Null { .. } => "null",
            Progress::Notice { stage, .. } => stage,
        }
    }

    /// Fraction of the primitive done, 0..=1.
    pub fn fraction(&self) -> f64 {
        let f = match self {
            Progress::Pretrain { at, .. } | Progress::Fulltrain { at } => at.fraction(),
            Progress::Trajectories {
                first,
                together,
                total,
                at,
                ..
            } => (*first as f64 + at.fraction() * *together as f64) / (*total).max(1) as f64,
            Progress::Null { done, replicates } => *done as f64 / (*replicates).max(1) as f64,
            Progress::Queued { done, total, .. } => *done as f64 / (*total).max(1) as f64,
            Progress::Notice { .. } => 0.0,
        };
        f.clamp(0.0, 1.0)
    }
}

/// A front-end's handler of progress events.
type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// Where a session's progress events go (none until a front-end asks).
#[derive(Default)]
pub(super) struct ProgressSink(Option<ProgressFn>);

impl ProgressSink {
    /// Events to `f`.
    pub fn to(f: impl FnMut(&Progress) + Send + 'static) -> Self {
        Self(Some(Box::new(f)))
    }

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

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    fn at(epoch: usize, batch: usize) -> BatchAt {
        BatchAt {
            epoch,
            epochs: 2,
            batch,
            batches: 10,
            loss: 1.0,
        }
    }

    #[test]
    fn fractions_run_from_zero_to_one_across_epochs_and_trajectories() {
        assert_eq!(Progress::Fulltrain { at: at(1, 5) }.fraction(), 0.25);
        assert_eq!(Progress::Fulltrain { at: at(2, 10) }.fraction(), 1.0);
        let t = |first, together| Progress::Trajectories {
            purpose: Purpose::Probe,
            first,
            together,
            total: 4,
            at: at(2, 10),
        };
        assert_eq!(t(0, 1).fraction(), 0.25, "the first of four trajectories done");
        assert_eq!(t(0, 4).fraction(), 1.0, "four together, done");
        assert_eq!(t(3, 1).fraction(), 1.0);
        assert_eq!(
            Progress::Null {
                done: 5,
                replicates: 20
            }
            .fraction(),
            0.25
        );
        assert_eq!(t(0, 1).stage(), "probe");
    }

    #[test]
    fn json_names_the_stage_and_purpose() {
        let p = Progress::Trajectories {
            purpose: Purpose::Compare { policy: 2, of: 3 },
            first: 0,
            together: 1,
            total: 4,
            at: at(1, 1),
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["event"], "trajectories");
        assert_eq!(v["purpose"]["purpose"], "compare");
        assert_eq!(v["purpose"]["policy"], 2);
    }
}
