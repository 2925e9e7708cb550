//! The PPO update on θ from the waiting trajectories (the math is in `ppo.rs`), `step` =
//! evaluate + update, and the policy report of θ now.

use std::time::Instant;

use super::session::within;
use super::{ppo, stats, BestTheta, PolicyReport, SearchError, Session, Step, StepReport, UpdateRecord};
use crate::augment::space::pair_name;

impl Session {
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
            reward: stats::Estimate::of(&outcome.rewards),
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
        self.update_scalars(&record);
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

    /// θ now: the `top` most likely pairs, entropy, marginals.
    pub fn policy(&self, top: usize) -> Result<PolicyReport, SearchError> {
        let top = within(&crate::limits::TOP_PAIRS, top)?;
        let dist = self.theta().distribution()?;
        let (op1, op2) = dist.marginals();
        let top = dist.top(top).into_iter().map(|(k, p)| (pair_name(k), p)).collect();
        Ok(PolicyReport {
            updates: self.ppo.updates,
            entropy: dist.entropy(),
            top,
            op1,
            op2,
            null: self.current_null().cloned(),
        })
    }
}
