//! The PPO update on θ from the waiting trajectories (the math is in `ppo.rs`), `step` =
//! evaluate + update, and the policy report of θ now.

use std::time::Instant;

use super::session::within;
use super::{ppo, stats, BestTheta, PolicyReport, SearchError, Session, Step, StepReport, UpdateRecord};
use crate::augment::space::pair_name;

impl Session {
    /// PPO from the waiting trajectories; keeps the best θ by mean reward; checkpoints.
    pub fn update(&mut self) -> Result<UpdateRecord, SearchError> {
        self.writable()?;
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
        let reward = stats::Estimate::of(&outcome.rewards);
        let mut best = match &self.best {
            Some(b) if b.mean_reward >= outcome.mean_reward => b.clone(),
            _ => BestTheta {
                update,
                mean_reward: outcome.mean_reward,
                theta: theta_old,
                reward,
                selection_bias: 0.0,
            },
        };
        // Standard errors of every update's mean so far, this one included.
        let se = |e: &stats::Estimate| e.sd / (e.n.max(1) as f64).sqrt();
        let ses: Vec<f64> = self
            .history
            .updates
            .iter()
            .map(|u| se(&u.reward))
            .chain([se(&reward)])
            .collect();
        best.selection_bias = stats::selection_bias(&ses);
        let dist = next.theta.distribution()?;
        let (op1_marginal, op2_marginal) = dist.marginals();
        let record = UpdateRecord {
            update,
            reward,
            ppo: outcome,
            op1_marginal,
            op2_marginal,
            top_pairs: dist.top(5).into_iter().map(|(k, p)| (pair_name(k), p)).collect(),
            best_update: best.update,
            best_mean_reward: best.mean_reward,
            best_reward: best.reward,
            best_selection_bias: best.selection_bias,
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

    /// The searched θ — the best so far ([`BestTheta`]; θ = 0 before the first update): the
    /// `top` most likely pairs, entropy, marginals, and the null's verdict on it.
    pub fn policy(&self, top: usize) -> Result<PolicyReport, SearchError> {
        let top = within(&crate::limits::TOP_PAIRS, top)?;
        let dist = self.best_theta().distribution()?;
        let (op1, op2) = dist.marginals();
        let top = dist.top(top).into_iter().map(|(k, p)| (pair_name(k), p)).collect();
        Ok(PolicyReport {
            updates: self.ppo.updates,
            entropy: dist.entropy(),
            top,
            op1,
            op2,
            best: self.best.as_ref().map(|b| super::BestSummary {
                update: b.update,
                reward: b.reward,
                mean_reward: b.mean_reward,
                selection_bias: b.selection_bias,
            }),
            null: self.current_null().cloned(),
        })
    }
}
