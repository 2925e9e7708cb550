//! The policy update (docs/method.md): PPO on θ = (a, B) from a batch of trajectories sampled under
//! the same θ_old.
//!
//! ```text
//! b ← 0.9·b + 0.1·mean(R)            (b starts at the first update's mean reward)
//! A_t = (R_t − b) · 100 · 0.5        (rewards in percent, the official units)
//! r_k = π_new(k) / π_old(k)          (the released code inverts this ratio; we do not)
//! L(θ) = mean_t Σ_k f_t(k) · min(r_k·A_t, clip(r_k, 0.8, 1.2)·A_t)
//!        f_t(k) = how often pair k was applied in trajectory t, as a frequency
//! maximise L with Adam(β = 0.5, 0.999), ≤ 5 steps; each step measures KL(π_old‖π_θ) at
//! the θ it starts from and, if that exceeds 0.002, is the last one (the official schedule)
//! lr = 0.0125 → 0.1 linearly over the first 10 updates, then 0.1; no entropy bonus
//! ```
//! Units matter: Adam divides by √v + ε, so advantages in fractions (±0.005) would leave the
//! gradients of rarely applied pairs within reach of ε and damp their steps; in percent, as
//! the official code feeds them, ε is negligible and the step is scale-free.
//! θ lives on the CPU in float64: it is tiny and this keeps updates bit-reproducible.

use serde::{Deserialize, Serialize};
use tch::{Kind, TchError, Tensor};

use crate::augment::space::{pair_ops, NUM_OPS, NUM_PAIRS};
use crate::policy::{PairDistribution, PolicyError, Theta};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PpoConfig {
    pub clip: f64,
    pub max_inner_steps: usize,
    pub kl_stop: f64,
    pub baseline_momentum: f64,
    pub advantage_scale: f64,
    pub lr_start: f64,
    pub lr: f64,
    pub warmup_updates: usize,
    pub betas: (f64, f64),
    pub eps: f64,
    /// Rewards (accuracies, fractions) enter the advantage × this: 100 = percent, the
    /// official units.
    pub reward_unit: f64,
}

impl Default for PpoConfig {
    /// docs/method.md's official settings.
    fn default() -> Self {
        Self {
            clip: 0.2,
            max_inner_steps: 5,
            kl_stop: 0.002,
            baseline_momentum: 0.9,
            advantage_scale: 0.5,
            lr_start: 0.0125,
            lr: 0.1,
            warmup_updates: 10,
            betas: (0.5, 0.999),
            eps: 1e-8,
            reward_unit: 100.0,
        }
    }
}

/// Most inner Adam steps one update may take (official 5): what bounds an update's time
/// whatever `kl_stop` says, and with [`crate::limits::UPDATES`] Adam's step count.
pub const MAX_INNER_STEPS: usize = 100;

impl PpoConfig {
    /// Every field within a range an update can finish in and Adam can represent; the
    /// message names the key (`config ppo.<key>=…`) and its range.
    pub fn validate(&self) -> Result<(), String> {
        // Each written so that NaN fails too.
        let checks: [(&str, bool, &str); 11] = [
            ("clip", self.clip > 0.0 && self.clip <= 1.0, "in (0, 1]"),
            (
                "max_inner_steps",
                (1..=MAX_INNER_STEPS).contains(&self.max_inner_steps),
                "between 1 and 100",
            ),
            ("kl_stop", self.kl_stop > 0.0 && self.kl_stop <= 10.0, "in (0, 10] nats"),
            (
                "baseline_momentum",
                (0.0..1.0).contains(&self.baseline_momentum),
                "in [0, 1)",
            ),
            (
                "advantage_scale",
                self.advantage_scale > 0.0 && self.advantage_scale <= 1e3,
                "in (0, 1000]",
            ),
            ("lr_start", self.lr_start > 0.0 && self.lr_start <= 10.0, "in (0, 10]"),
            ("lr", self.lr > 0.0 && self.lr <= 10.0, "in (0, 10]"),
            (
                "warmup_updates",
                self.warmup_updates <= crate::limits::UPDATES.max as usize,
                "at most the updates a search may have (1,000,000)",
            ),
            (
                "betas",
                (0.0..1.0).contains(&self.betas.0) && (0.0..1.0).contains(&self.betas.1),
                "two numbers in [0, 1)",
            ),
            ("eps", self.eps > 0.0 && self.eps <= 1.0, "in (0, 1]"),
            (
                "reward_unit",
                self.reward_unit > 0.0 && self.reward_unit <= 1e4,
                "in (0, 10000] (100 = percent)",
            ),
        ];
        match checks.iter().find(|(_, ok, _)| !ok) {
            Some((key, _, range)) => Err(format!("ppo.{key} must be {range}")),
            None => Ok(()),
        }
    }

    /// Adam's rate at update `u` (0-based): linear warm-up, then constant.
    pub fn lr_at(&self, u: usize) -> f64 {
        if self.warmup_updates == 0 || u >= self.warmup_updates {
            self.lr
        } else {
            self.lr_start + (self.lr - self.lr_start) * u as f64 / self.warmup_updates as f64
        }
    }
}

/// What PPO needs from one trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    pub seed: u64,
    pub reward: f64,
    /// Validation accuracy after each fine-tune epoch.
    pub accuracies: Vec<f64>,
    /// Applications of each of the 1,296 pairs.
    pub counts: Vec<u32>,
    pub seconds: f64,
    /// Pairs the trajectory drew from θ up front (`SearchConfig::pairs_per_trajectory`);
    /// 0 = each image drew its own, the paper's sampling.
    #[serde(default)]
    pub pairs_drawn: usize,
}

/// PPO's state across updates: θ, Adam's moments and the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoState {
    pub theta: Theta,
    pub baseline: Option<f64>,
    pub adam_m: Theta,
    pub adam_v: Theta,
    pub adam_steps: u64,
    pub updates: usize,
}

impl PpoState {
    /// Everything a resumed or freshly updated state must satisfy before it is used or
    /// written: θ and Adam's moments of the right shapes and finite (JSON cannot hold an
    /// infinity: it would be written as `null` and the checkpoint could not be read back),
    /// second moments non-negative, a finite baseline, a count of updates within its limit.
    pub fn validate(&self) -> Result<(), PolicyError> {
        self.theta.validate()?;
        for (name, t) in [
            ("Adam's first moment", &self.adam_m),
            ("Adam's second moment", &self.adam_v),
        ] {
            t.validate().map_err(|e| PolicyError::Theta(format!("{name}: {e}")))?;
        }
        if self
            .adam_v
            .a
            .iter()
            .chain(self.adam_v.b.iter().flatten())
            .any(|&v| v < 0.0)
        {
            return Err(PolicyError::Theta("Adam's second moment has a negative entry".into()));
        }
        if self.baseline.is_some_and(|b| !b.is_finite()) {
            return Err(PolicyError::Theta(format!(
                "the reward baseline is not finite ({:?})",
                self.baseline
            )));
        }
        crate::limits::UPDATES
            .check_usize(self.updates)
            .map_err(|e| PolicyError::Theta(e.to_string()))?;
        // Adam's bias correction takes the step count as an i32 power: past what the updates
        // could have taken it would overflow and make θ NaN.
        let most = self.updates as u64 * MAX_INNER_STEPS as u64;
        if self.adam_steps > most {
            return Err(PolicyError::Theta(format!(
                "Adam has taken {} steps, more than {} updates × {MAX_INNER_STEPS} inner steps could ({most})",
                self.adam_steps, self.updates
            )));
        }
        Ok(())
    }
}

impl Default for PpoState {
    fn default() -> Self {
        Self {
            theta: Theta::uniform(),
            baseline: None,
            adam_m: Theta::uniform(),
            adam_v: Theta::uniform(),
            adam_steps: 0,
            updates: 0,
        }
    }
}

/// What one update did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PpoOutcome {
    pub rewards: Vec<f64>,
    pub mean_reward: f64,
    pub baseline: f64,
    /// (R − b) × reward_unit × advantage_scale: percentage points × 0.5 by default.
    pub advantages: Vec<f64>,
    /// Pair applications in each trajectory (its images × fine-tune epochs): what a null
    /// search needs to replay this update with rewards that carry no information.
    #[serde(default)]
    pub applications: Vec<u64>,
    /// Each trajectory's op1 then op2 application counts (72): the evidence the null's
    /// score test relates to the rewards (`search::score`).
    #[serde(default)]
    pub op_counts: Vec<Vec<u32>>,
    /// How the trajectories sampled (their `pairs_drawn`): the null replays the same way.
    #[serde(default)]
    pub pairs_per_trajectory: usize,
    pub lr: f64,
    pub inner_steps: usize,
    pub kl: f64,
    pub surrogate: f64,
    pub entropy_before: f64,
    pub entropy_after: f64,
}

fn to_tensor(t: &Theta) -> Result<(Tensor, Tensor), TchError> {
    let a = Tensor::f_from_slice(&t.a)?;
    let b = Tensor::f_from_slice(&t.b.concat())?.f_view([NUM_OPS as i64, NUM_OPS as i64])?;
    Ok((a, b))
}

fn from_tensor(a: &Tensor, b: &Tensor) -> Result<Theta, TchError> {
    let a: Vec<f64> = Vec::try_from(a.f_to_kind(Kind::Double)?.f_contiguous()?)?;
    let flat: Vec<f64> = Vec::try_from(b.f_to_kind(Kind::Double)?.f_contiguous()?.f_view([-1])?)?;
    Ok(Theta {
        a,
        b: flat.chunks(NUM_OPS).map(<[f64]>::to_vec).collect(),
    })
}

/// log π(op1, op2) for all pairs, flattened op1-major.
fn log_pairs(a: &Tensor, b: &Tensor) -> Result<Tensor, TchError> {
    a.f_log_softmax(0, Kind::Double)?
        .f_view([NUM_OPS as i64, 1])?
        .f_add(&b.f_log_softmax(1, Kind::Double)?)?
        .f_view([-1])
}

/// Σ_k p(k)·(log p(k) − log q(k)) = KL(p‖q), as a number.
fn kl(p: &Tensor, log_p: &Tensor, log_q: &Tensor) -> Result<f64, TchError> {
    p.f_mul(&log_p.f_sub(log_q)?)?.f_sum(Kind::Double)?.f_double_value(&[])
}

/// L = mean_t Σ_k f_t(k) · min(r_k·A_t, clip(r_k)·A_t), r = exp(log π_new − log π_old);
/// `freq` is T × 1296, `adv` T × 1.
fn surrogate_of(
    log_new: &Tensor,
    log_old: &Tensor,
    freq: &Tensor,
    adv: &Tensor,
    clip: f64,
) -> Result<Tensor, TchError> {
    let ratio = log_new.f_sub(log_old)?.f_exp()?.f_view([1, NUM_PAIRS as i64])?;
    let unclipped = ratio.f_mul(adv)?;
    let clipped = ratio.f_clamp(1.0 - clip, 1.0 + clip)?.f_mul(adv)?;
    unclipped
        .f_minimum(&clipped)?
        .f_mul(freq)?
        .f_sum_dim_intlist(&[1i64][..], false, Kind::Double)?
        .f_mean(Kind::Double)
}

/// One Adam step on `p` (β, ε as configured; `t` steps so far including this one).
fn adam_step(
    p: &Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    (beta1, beta2): (f64, f64),
    eps: f64,
    lr: f64,
    t: i32,
) -> Result<(), TchError> {
    let g = p.f_grad()?;
    *m = m.f_mul_scalar(beta1)?.f_add(&g.f_mul_scalar(1.0 - beta1)?)?;
    *v = v
        .f_mul_scalar(beta2)?
        .f_add(&g.f_square()?.f_mul_scalar(1.0 - beta2)?)?;
    let m_hat = m.f_div_scalar(1.0 - beta1.powi(t))?;
    let v_hat = v.f_div_scalar(1.0 - beta2.powi(t))?;
    let step = m_hat.f_div(&v_hat.f_sqrt()?.f_add_scalar(eps)?)?.f_mul_scalar(lr)?;
    let _ = p.shallow_clone().f_sub_(&step)?;
    Ok(())
}

/// PPO's inner loop on `state`'s θ and Adam moments: returns (lr, steps taken, the last
/// surrogate, KL(π_old‖π_new), the entropy before). `state` changes only if every op succeeds.
fn optimise(
    state: &mut PpoState,
    freq: &[f64],
    advantages: &[f64],
    n_t: i64,
    cfg: &PpoConfig,
) -> Result<(f64, usize, f64, f64, f64), TchError> {
    let (a0, b0) = to_tensor(&state.theta)?;
    let log_old = log_pairs(&a0, &b0)?.f_detach()?;
    let p_old = log_old.f_exp()?;
    let entropy_before = -p_old.f_mul(&log_old)?.f_sum(Kind::Double)?.f_double_value(&[])?;
    let freq = Tensor::f_from_slice(freq)?.f_view([n_t, NUM_PAIRS as i64])?;
    let adv = Tensor::f_from_slice(advantages)?.f_view([n_t, 1])?;
    let fresh = |t: &Tensor| -> Result<Tensor, TchError> {
        let mut copy = t.f_zeros_like()?;
        copy.f_copy_(t)?;
        copy.f_set_requires_grad(true)
    };
    let (a, b) = (fresh(&a0)?, fresh(&b0)?);
    let (mut ma, mut mb) = to_tensor(&state.adam_m)?;
    let (mut va, mut vb) = to_tensor(&state.adam_v)?;
    let lr = cfg.lr_at(state.updates);
    let (mut inner_steps, mut surrogate, mut adam_steps) = (0, 0.0, state.adam_steps);
    for _ in 0..cfg.max_inner_steps {
        let log_new = log_pairs(&a, &b)?;
        // The official schedule: KL at the θ this step starts from, from the same forward
        // pass as the loss; the step is taken, and is the last if that KL is past the bound.
        let kl_before = kl(&p_old, &log_old, &log_new.f_detach()?)?;
        let objective = surrogate_of(&log_new, &log_old, &freq, &adv, cfg.clip)?;
        surrogate = objective.f_double_value(&[])?;
        let loss = objective.f_neg()?;
        crate::train::zero_grad(&a)?;
        crate::train::zero_grad(&b)?;
        loss.f_backward()?;
        adam_steps += 1;
        let t = adam_steps as i32;
        tch::no_grad(|| {
            adam_step(&a, &mut ma, &mut va, cfg.betas, cfg.eps, lr, t)?;
            adam_step(&b, &mut mb, &mut vb, cfg.betas, cfg.eps, lr, t)
        })?;
        inner_steps += 1;
        if kl_before > cfg.kl_stop {
            break;
        }
    }
    // What the update did in the end: KL(π_old‖π_new) of the θ it keeps.
    let kl_after = tch::no_grad(|| kl(&p_old, &log_old, &log_pairs(&a, &b)?))?;
    let theta = from_tensor(&a.f_detach()?, &b.f_detach()?)?;
    let (adam_m, adam_v) = (from_tensor(&ma, &mb)?, from_tensor(&va, &vb)?);
    (state.theta, state.adam_m, state.adam_v, state.adam_steps) = (theta, adam_m, adam_v, adam_steps);
    state.updates += 1;
    Ok((lr, inner_steps, surrogate, kl_after, entropy_before))
}

/// One PPO update of `state` from `trajectories` (all sampled under `state.theta`).
pub fn update(state: &mut PpoState, trajectories: &[Trajectory], cfg: &PpoConfig) -> Result<PpoOutcome, PolicyError> {
    if trajectories.is_empty() {
        return Err(PolicyError::Theta(
            "no trajectories to learn from: run `evaluate` first".into(),
        ));
    }
    if let Some(t) = trajectories
        .iter()
        .find(|t| !t.reward.is_finite() || t.counts.len() != NUM_PAIRS)
    {
        return Err(PolicyError::Theta(format!(
            "trajectory {} has a non-finite reward or bad counts",
            t.seed
        )));
    }
    // Rewards are accuracies; one far outside [0, 1] (a hand-edited checkpoint) would overflow
    // Adam's second moment.
    if let Some(t) = trajectories.iter().find(|t| !(-1.0..=2.0).contains(&t.reward)) {
        return Err(PolicyError::Theta(format!(
            "trajectory {} has reward {}: rewards are accuracies in 0..=1",
            t.seed, t.reward
        )));
    }
    state.theta.validate()?;
    let rewards: Vec<f64> = trajectories.iter().map(|t| t.reward).collect();
    let mean_reward = rewards.iter().sum::<f64>() / rewards.len() as f64;
    let m = cfg.baseline_momentum;
    let baseline = match state.baseline {
        None => mean_reward,
        Some(b) => m * b + (1.0 - m) * mean_reward,
    };
    state.baseline = Some(baseline);
    let advantages: Vec<f64> = rewards
        .iter()
        .map(|r| (r - baseline) * cfg.reward_unit * cfg.advantage_scale)
        .collect();
    let applications: Vec<u64> = trajectories
        .iter()
        .map(|t| t.counts.iter().map(|&c| c as u64).sum())
        .collect();

    // Frequencies f_t(k): T × 1296, and advantages T × 1.
    let freq: Vec<f64> = trajectories
        .iter()
        .flat_map(|t| {
            let total = t.counts.iter().map(|&c| c as f64).sum::<f64>().max(1.0);
            t.counts.iter().map(move |&c| c as f64 / total)
        })
        .collect();
    let n_t = trajectories.len() as i64;
    let steps = optimise(state, &freq, &advantages, n_t, cfg)?;
    let (lr, inner_steps, surrogate, kl, entropy_before) = steps;
    let entropy_after = state.theta.distribution()?.entropy();
    Ok(PpoOutcome {
        rewards,
        mean_reward,
        baseline,
        advantages,
        applications,
        op_counts: trajectories.iter().map(|t| op_counts(&t.counts)).collect(),
        pairs_per_trajectory: trajectories.iter().map(|t| t.pairs_drawn).max().unwrap_or(0),
        lr,
        inner_steps,
        kl,
        surrogate,
        entropy_before,
        entropy_after,
    })
}

/// π over pairs of a θ (convenience for reports).
pub fn distribution(theta: &Theta) -> Result<PairDistribution, PolicyError> {
    theta.distribution()
}

/// Per-trajectory op applications: op1 counts (36) then op2 counts (36) — what the score
/// test needs from an update, 72 numbers instead of 1,296.
pub fn op_counts(pair_counts: &[u32]) -> Vec<u32> {
    let mut out = vec![0u32; 2 * NUM_OPS];
    for (k, &c) in pair_counts.iter().enumerate().take(NUM_PAIRS) {
        let (a, b) = pair_ops(k);
        out[a] += c;
        out[NUM_OPS + b] += c;
    }
    out
}

/// A trajectory whose loss went NaN/Inf: discarded, not an error of the primitive (docs/method.md:
/// such trajectories carry no reward).
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub struct Diverged {
    /// The trajectory's policy seed (its name in reports).
    pub seed: u64,
    pub epoch: usize,
    pub batch: usize,
    pub loss: f64,
}

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trajectory seed {}: loss {} at fine-tune epoch {}, batch {}",
            self.seed, self.loss, self.epoch, self.batch
        )
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn op_counts_split_pairs_into_op1_and_op2() {
        let mut pairs = vec![0u32; NUM_PAIRS];
        pairs[3 * NUM_OPS + 5] = 7;
        pairs[5 * NUM_OPS + 3] = 2;
        let c = op_counts(&pairs);
        assert_eq!((c[3], c[5], c[NUM_OPS + 5], c[NUM_OPS + 3]), (7, 2, 7, 2));
        assert_eq!(c.iter().sum::<u32>(), 18);
    }

    fn traj(reward: f64, pairs: &[(usize, u32)]) -> Trajectory {
        let mut counts = vec![0; NUM_PAIRS];
        for &(k, c) in pairs {
            counts[k] = c;
        }
        Trajectory {
            seed: 0,
            reward,
            accuracies: vec![reward],
            counts,
            seconds: 0.0,
            pairs_drawn: 0,
        }
    }

    fn prob(state: &PpoState, k: usize) -> f64 {
        state.theta.distribution().unwrap().probs()[k]
    }

    #[test]
    fn rewarded_pairs_gain_and_penalised_pairs_lose() {
        let mut s = PpoState::default();
        let (good, bad) = (5 * 36 + 7, 11 * 36 + 11);
        let before = (prob(&s, good), prob(&s, bad));
        // Both trajectories also apply a shared pair; only the difference carries signal.
        let out = update(
            &mut s,
            &[traj(0.9, &[(good, 50), (0, 50)]), traj(0.5, &[(bad, 50), (0, 50)])],
            &PpoConfig::default(),
        )
        .unwrap();
        assert!(prob(&s, good) > before.0, "rewarded pair did not gain");
        assert!(prob(&s, bad) < before.1, "penalised pair did not lose");
        assert_eq!(out.baseline, 0.7);
        // (0.9 − 0.7) in points × 0.5 = +10, and −10.
        assert!(
            (out.advantages[0] - 10.0).abs() < 1e-9 && (out.advantages[1] + 10.0).abs() < 1e-9,
            "{:?}",
            out.advantages
        );
        assert_eq!(out.applications, vec![100, 100]);
        assert!(out.entropy_after < out.entropy_before);
        // The rest of the pairs keep (nearly) their share relative to each other.
        let d = s.theta.distribution().unwrap();
        assert!((d.probs()[20 * 36 + 3] - d.probs()[30 * 36 + 9]).abs() < 1e-12);
    }

    #[test]
    fn ratio_orientation_is_new_over_old() {
        // With a positive advantage on one pair, a correct (π_new/π_old) surrogate increases
        // that pair's probability; the released code's inverted ratio would decrease it.
        let mut s = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        let k = 3 * 36 + 4;
        update(
            &mut s,
            &[traj(1.0, &[(k, 10)])],
            &PpoConfig {
                max_inner_steps: 1,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(prob(&s, k) > 1.0 / 1296.0);
        // The surrogate at θ_old equals Σ f·A (r = 1).
        let mut s2 = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        let out = update(
            &mut s2,
            &[traj(1.0, &[(k, 10)])],
            &PpoConfig {
                max_inner_steps: 1,
                ..Default::default()
            },
        )
        .unwrap();
        // b = 0.9·0 + 0.1·1 = 0.1, A = (1 − 0.1)·100·0.5 = 45, all of the trajectory on pair k.
        assert!((out.surrogate - 45.0).abs() < 1e-9, "{}", out.surrogate);
    }

    #[test]
    fn kl_stop_and_clip_bound_the_step() {
        let k = 7;
        let strong = PpoConfig {
            lr_start: 1.0,
            lr: 1.0,
            ..Default::default()
        };
        let mut s = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        let out = update(&mut s, &[traj(1.0, &[(k, 10)])], &strong).unwrap();
        assert!(out.inner_steps < 5, "a big step must trip the KL stop");
        assert!(out.kl > 0.002);
        // Without the KL stop, the clip caps the gain: once r > 1.2 the positive-advantage term
        // is flat, so the pair's probability stops near 1.2× (a little over, from Adam's momentum).
        let no_kl = PpoConfig {
            kl_stop: f64::INFINITY,
            max_inner_steps: 50,
            lr_start: 0.05,
            lr: 0.05,
            ..Default::default()
        };
        let mut s = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        update(&mut s, &[traj(1.0, &[(k, 10)])], &no_kl).unwrap();
        let r = prob(&s, k) * 1296.0;
        assert!(r > 1.15 && r < 1.6, "ratio after clipped optimisation: {r}");
        let unclipped = PpoConfig { clip: 1e9, ..no_kl };
        let mut s = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        update(&mut s, &[traj(1.0, &[(k, 10)])], &unclipped).unwrap();
        assert!(
            prob(&s, k) * 1296.0 > r + 0.5,
            "without the clip the pair keeps gaining"
        );
    }

    /// Realistic counts: 2,000 images × 2 epochs spread over all pairs by θ's draws.
    fn spread(reward: f64, seed: u64) -> Trajectory {
        let mut rng = crate::rng::Rng::new(seed);
        let counts = rng.multinomial(4000, &[1.0 / 1296.0; NUM_PAIRS]);
        Trajectory {
            seed,
            reward,
            accuracies: vec![reward],
            counts,
            seconds: 0.0,
            pairs_drawn: 0,
        }
    }

    /// ‖x − y‖₂ over all 36 + 1,296 logits.
    fn distance(x: &Theta, y: &Theta) -> f64 {
        x.a.iter()
            .zip(&y.a)
            .chain(x.b.concat().iter().zip(y.b.concat().iter()))
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn rewards_in_percent_make_the_step_scale_free() {
        // Adam's step is invariant to the scale of the advantages unless ε matters. With
        // rewards half a point apart, percent units (official) keep ε negligible: rewards
        // ten times further apart give the same θ. In fractions, ε damps the step.
        let run = |unit: f64, spread_by: f64| {
            let cfg = PpoConfig {
                reward_unit: unit,
                ..Default::default()
            };
            let mut s = PpoState {
                baseline: Some(0.66),
                ..Default::default()
            };
            let ts: Vec<Trajectory> = (0..4)
                .map(|i| spread(0.66 + spread_by * (i as f64 - 1.5) * 0.002, i))
                .collect();
            update(&mut s, &ts, &cfg).unwrap();
            s.theta
        };
        let (p1, p10) = (run(100.0, 1.0), run(100.0, 10.0));
        let (f1, f10) = (run(1.0, 1.0), run(1.0, 10.0));
        let moved = distance(&p10, &Theta::uniform());
        // Measured: percent 0.3% of the movement, fractions 12.7%.
        assert!(
            distance(&p1, &p10) < 1e-2 * moved,
            "percent: {} of {moved}",
            distance(&p1, &p10)
        );
        assert!(
            distance(&f1, &f10) > 5e-2 * moved,
            "fractions should be damped by ε: {}",
            distance(&f1, &f10)
        );
    }

    #[test]
    fn kl_is_checked_before_each_step_as_the_official_code_does() {
        // A rate at which one step already passes the KL bound: the official schedule measures
        // KL at the θ a step starts from, so the first step (KL 0) is followed by a second,
        // which sees KL > bound and is the last. Checking after each step would stop at one.
        let k = 7;
        let cfg = PpoConfig {
            lr_start: 1.0,
            lr: 1.0,
            ..Default::default()
        };
        let one = PpoConfig {
            max_inner_steps: 1,
            ..cfg.clone()
        };
        let mut s1 = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        let after_one = update(&mut s1, &[traj(1.0, &[(k, 10)])], &one).unwrap();
        assert!(
            after_one.kl > cfg.kl_stop,
            "the first step must pass the bound for this test: {}",
            after_one.kl
        );
        let mut s = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        let out = update(&mut s, &[traj(1.0, &[(k, 10)])], &cfg).unwrap();
        assert_eq!(out.inner_steps, 2);
        assert!(out.kl > after_one.kl, "the reported KL is the kept θ's");
        // A small rate never reaches the bound: all five steps.
        let mut s = PpoState {
            baseline: Some(0.0),
            ..Default::default()
        };
        let gentle = PpoConfig {
            lr_start: 1e-4,
            lr: 1e-4,
            ..Default::default()
        };
        assert_eq!(
            update(&mut s, &[traj(1.0, &[(k, 10)])], &gentle).unwrap().inner_steps,
            5
        );
    }

    /// docs/method.md's surrogate written out with loops over pairs, independent of the tensor code.
    fn reference_surrogate(theta: &Theta, old: &Theta, ts: &[Trajectory], adv: &[f64], clip: f64) -> f64 {
        let (new, old) = (theta.distribution().unwrap(), old.distribution().unwrap());
        let mut total = 0.0;
        for (t, a) in ts.iter().zip(adv) {
            let n: f64 = t.counts.iter().map(|&c| c as f64).sum();
            for k in 0..NUM_PAIRS {
                let r = new.probs()[k] / old.probs()[k];
                total += t.counts[k] as f64 / n * (r * a).min(r.clamp(1.0 - clip, 1.0 + clip) * a);
            }
        }
        total / ts.len() as f64
    }

    #[test]
    fn surrogate_gradient_matches_finite_differences() {
        let mut rng = crate::rng::Rng::new(5);
        let mut old = Theta::uniform();
        old.a.iter_mut().for_each(|x| *x = 0.3 * rng.normal());
        old.b.iter_mut().flatten().for_each(|x| *x = 0.3 * rng.normal());
        let mut theta = old.clone();
        theta.a.iter_mut().for_each(|x| *x += 0.05 * rng.normal());
        theta.b.iter_mut().flatten().for_each(|x| *x += 0.05 * rng.normal());
        let ts: Vec<Trajectory> = (0..3).map(|i| spread(0.6, 10 + i)).collect();
        let adv = [1.5, -0.7, 0.2];
        let clip = 0.2;
        // The tensor objective and its autograd gradient at θ.
        let freq: Vec<f64> = ts
            .iter()
            .flat_map(|t| t.counts.iter().map(|&c| c as f64 / 4000.0))
            .collect();
        let freq = Tensor::from_slice(&freq).view([3, NUM_PAIRS as i64]);
        let advt = Tensor::from_slice(&adv).view([3, 1]);
        let (ao, bo) = to_tensor(&old).unwrap();
        let log_old = log_pairs(&ao, &bo).unwrap();
        let (a, b) = to_tensor(&theta).unwrap();
        let (a, b) = (a.set_requires_grad(true), b.set_requires_grad(true));
        let obj = surrogate_of(&log_pairs(&a, &b).unwrap(), &log_old, &freq, &advt, clip).unwrap();
        assert!((obj.double_value(&[]) - reference_surrogate(&theta, &old, &ts, &adv, clip)).abs() < 1e-12);
        obj.backward();
        let (ga, gb) = (a.grad(), b.grad());
        // Central differences of the loop version, on a spread of coordinates.
        let h = 1e-6;
        for i in [0usize, 5, 17, 35] {
            let (mut p, mut m) = (theta.clone(), theta.clone());
            p.a[i] += h;
            m.a[i] -= h;
            let fd = (reference_surrogate(&p, &old, &ts, &adv, clip) - reference_surrogate(&m, &old, &ts, &adv, clip))
                / (2.0 * h);
            let g = ga.double_value(&[i as i64]);
            assert!(
                (fd - g).abs() < 1e-6 * (1.0 + g.abs()),
                "∂L/∂a[{i}]: autograd {g}, finite difference {fd}"
            );
        }
        for (i, j) in [(0usize, 0usize), (3, 30), (20, 7), (35, 35)] {
            let (mut p, mut m) = (theta.clone(), theta.clone());
            p.b[i][j] += h;
            m.b[i][j] -= h;
            let fd = (reference_surrogate(&p, &old, &ts, &adv, clip) - reference_surrogate(&m, &old, &ts, &adv, clip))
                / (2.0 * h);
            let g = gb.double_value(&[i as i64, j as i64]);
            assert!(
                (fd - g).abs() < 1e-6 * (1.0 + g.abs()),
                "∂L/∂B[{i}][{j}]: autograd {g}, finite difference {fd}"
            );
        }
    }

    #[test]
    fn warmup_schedule_and_bad_input() {
        let c = PpoConfig::default();
        assert_eq!(c.lr_at(0), 0.0125);
        assert!((c.lr_at(5) - 0.05625).abs() < 1e-12);
        assert_eq!(c.lr_at(10), 0.1);
        assert_eq!(c.lr_at(300), 0.1);
        let mut s = PpoState::default();
        assert!(update(&mut s, &[], &c).is_err());
        assert!(update(&mut s, &[traj(f64::NAN, &[(0, 1)])], &c).is_err());
        assert_eq!(s, PpoState::default(), "a refused update changes nothing");
    }
}
