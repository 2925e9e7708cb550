//! The PPO update as the search records it (the math is in `ppo.rs`): θ's next state, the
//! best θ so far with its selection bias, the update's record; and the policy report of θ.

use std::time::Instant;

use super::error::SearchError;
use super::null::NullReport;
use super::ppo::{self, PpoConfig, PpoState, Trajectory};
use super::report::{BestSummary, BestTheta, PolicyReport, UpdateRecord};
use super::stats;
use crate::augment::space::pair_name;
use crate::policy::Theta;

/// What one update makes: θ's next PPO state, the best θ so far and the update's record.
pub(super) struct Updated {
    pub ppo: PpoState,
    pub best: BestTheta,
    pub record: UpdateRecord,
}

/// PPO from the waiting trajectories `pending` on `state`; keeps `best` unless this update's
/// mean reward beats it. `earlier`: the updates so far, for the best's selection bias.
pub(super) fn update(
    state: &PpoState,
    pending: &[Trajectory],
    best: Option<&BestTheta>,
    earlier: &[UpdateRecord],
    config: &PpoConfig,
) -> Result<Updated, SearchError> {
    if pending.is_empty() {
        return Err(SearchError::NothingToUpdate);
    }
    let start = Instant::now();
    let mut next = state.clone();
    let outcome = ppo::update(&mut next, pending, config)?;
    // Nothing that could not be written and read back is kept.
    next.validate()?;
    let update = next.updates;
    let reward = stats::Estimate::of(&outcome.rewards);
    let mut best = match best {
        Some(b) if b.mean_reward >= outcome.mean_reward => b.clone(),
        _ => BestTheta {
            update,
            mean_reward: outcome.mean_reward,
            theta: state.theta.clone(),
            reward,
            selection_bias: 0.0,
        },
    };
    // Standard errors of every update's mean so far, this one included.
    let se = |e: &stats::Estimate| e.sd / (e.n.max(1) as f64).sqrt();
    let ses: Vec<f64> = earlier.iter().map(|u| se(&u.reward)).chain([se(&reward)]).collect();
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
        seconds: start.elapsed().as_secs_f64() + pending.iter().map(|t| t.seconds).sum::<f64>(),
    };
    Ok(Updated {
        ppo: next,
        best,
        record,
    })
}

/// The searched θ (`theta`, the best so far) after `updates` updates: the `top` most likely
/// pairs, entropy, marginals, and the null's verdict on it.
pub(super) fn policy_report(
    theta: &Theta,
    updates: usize,
    best: Option<&BestTheta>,
    null: Option<&NullReport>,
    top: usize,
) -> Result<PolicyReport, SearchError> {
    let dist = theta.distribution()?;
    let (op1, op2) = dist.marginals();
    let top = dist.top(top).into_iter().map(|(k, p)| (pair_name(k), p)).collect();
    Ok(PolicyReport {
        updates,
        entropy: dist.entropy(),
        top,
        op1,
        op2,
        best: best.map(|b| BestSummary {
            update: b.update,
            reward: b.reward,
            mean_reward: b.mean_reward,
            selection_bias: b.selection_bias,
        }),
        null: null.cloned(),
    })
}
