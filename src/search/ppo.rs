//! The policy update (METHOD.md): PPO on θ = (a, B) from a batch of trajectories sampled under
//! the same θ_old.
//!
//! ```text
//! b ← 0.9·b + 0.1·mean(R)            (b starts at the first update's mean reward)
//! A_t = (R_t − b) · 0.5
//! r_k = π_new(k) / π_old(k)          (the released code inverts this ratio; we do not)
//! L(θ) = mean_t Σ_k f_t(k) · min(r_k·A_t, clip(r_k, 0.8, 1.2)·A_t)
//!        f_t(k) = how often pair k was applied in trajectory t, as a frequency
//! maximise L with Adam(β = 0.5, 0.999), ≤ 5 steps, stop once KL(π_old‖π_new) > 0.002
//! lr = 0.0125 → 0.1 linearly over the first 10 updates, then 0.1; no entropy bonus
//! ```
//! θ lives on the CPU in float64: it is tiny and this keeps updates bit-reproducible.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::augment::space::{NUM_OPS, NUM_PAIRS};
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
}

impl Default for PpoConfig {
    /// METHOD.md's official settings.
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
        }
    }
}

impl PpoConfig {
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
    pub advantages: Vec<f64>,
    pub lr: f64,
    pub inner_steps: usize,
    pub kl: f64,
    pub surrogate: f64,
    pub entropy_before: f64,
    pub entropy_after: f64,
}

fn to_tensor(t: &Theta) -> (Tensor, Tensor) {
    let a = Tensor::from_slice(&t.a);
    let b = Tensor::from_slice(&t.b.concat()).view([NUM_OPS as i64, NUM_OPS as i64]);
    (a, b)
}

fn from_tensor(a: &Tensor, b: &Tensor) -> Theta {
    let a: Vec<f64> = Vec::try_from(a.to_kind(Kind::Double).contiguous()).unwrap_or_else(|_| vec![0.0; NUM_OPS]);
    let flat: Vec<f64> = Vec::try_from(b.to_kind(Kind::Double).contiguous().view([-1])).unwrap_or_else(|_| vec![0.0; NUM_PAIRS]);
    Theta { a, b: flat.chunks(NUM_OPS).map(<[f64]>::to_vec).collect() }
}

/// log π(op1, op2) for all pairs, flattened op1-major.
fn log_pairs(a: &Tensor, b: &Tensor) -> Tensor {
    (a.log_softmax(0, Kind::Double).view([NUM_OPS as i64, 1]) + b.log_softmax(1, Kind::Double)).view([-1])
}

/// One PPO update of `state` from `trajectories` (all sampled under `state.theta`).
pub fn update(state: &mut PpoState, trajectories: &[Trajectory], cfg: &PpoConfig) -> Result<PpoOutcome, PolicyError> {
    if trajectories.is_empty() {
        return Err(PolicyError::Theta("no trajectories to learn from: run `evaluate` first".into()));
    }
    if let Some(t) = trajectories.iter().find(|t| !t.reward.is_finite() || t.counts.len() != NUM_PAIRS) {
        return Err(PolicyError::Theta(format!("trajectory {} has a non-finite reward or bad counts", t.seed)));
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
    let advantages: Vec<f64> = rewards.iter().map(|r| (r - baseline) * cfg.advantage_scale).collect();

    let (a0, b0) = to_tensor(&state.theta);
    let log_old = log_pairs(&a0, &b0).detach();
    let p_old = log_old.exp();
    let entropy_before = -(&p_old * &log_old).sum(Kind::Double).double_value(&[]);
    // Frequencies f_t(k): T × 1296, and advantages T × 1.
    let freq: Vec<f64> = trajectories
        .iter()
        .flat_map(|t| {
            let total = t.counts.iter().map(|&c| c as f64).sum::<f64>().max(1.0);
            t.counts.iter().map(move |&c| c as f64 / total)
        })
        .collect();
    let n_t = trajectories.len() as i64;
    let freq = Tensor::from_slice(&freq).view([n_t, NUM_PAIRS as i64]);
    let adv = Tensor::from_slice(&advantages).view([n_t, 1]);

    let mut a = a0.copy().set_requires_grad(true);
    let mut b = b0.copy().set_requires_grad(true);
    let (mut ma, mut mb) = to_tensor(&state.adam_m);
    let (mut va, mut vb) = to_tensor(&state.adam_v);
    let lr = cfg.lr_at(state.updates);
    let (beta1, beta2) = cfg.betas;
    let (mut inner_steps, mut kl, mut surrogate) = (0, 0.0, 0.0);
    for _ in 0..cfg.max_inner_steps {
        let log_new = log_pairs(&a, &b);
        let ratio = (&log_new - &log_old).exp().view([1, NUM_PAIRS as i64]);
        let unclipped = &ratio * &adv;
        let clipped = ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip) * &adv;
        let objective = (unclipped.minimum(&clipped) * &freq).sum_dim_intlist(&[1i64][..], false, Kind::Double).mean(Kind::Double);
        surrogate = objective.double_value(&[]);
        let loss = -objective;
        a.zero_grad();
        b.zero_grad();
        loss.backward();
        state.adam_steps += 1;
        let t = state.adam_steps as i32;
        tch::no_grad(|| {
            for (p, m, v) in [(&a, &mut ma, &mut va), (&b, &mut mb, &mut vb)] {
                let g = p.grad();
                *m = &*m * beta1 + &g * (1.0 - beta1);
                *v = &*v * beta2 + g.square() * (1.0 - beta2);
                let m_hat = &*m / (1.0 - beta1.powi(t));
                let v_hat = &*v / (1.0 - beta2.powi(t));
                let mut p = p.shallow_clone();
                let _ = p.f_sub_(&(m_hat / (v_hat.sqrt() + cfg.eps) * lr));
            }
        });
        inner_steps += 1;
        let log_new = tch::no_grad(|| log_pairs(&a, &b));
        kl = (&p_old * (&log_old - &log_new)).sum(Kind::Double).double_value(&[]);
        if kl > cfg.kl_stop {
            break;
        }
    }
    state.theta = from_tensor(&a.detach(), &b.detach());
    state.adam_m = from_tensor(&ma, &mb);
    state.adam_v = from_tensor(&va, &vb);
    state.updates += 1;
    let entropy_after = state.theta.distribution().map(|d| d.entropy()).unwrap_or(f64::NAN);
    Ok(PpoOutcome {
        rewards,
        mean_reward,
        baseline,
        advantages,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn traj(reward: f64, pairs: &[(usize, u32)]) -> Trajectory {
        let mut counts = vec![0; NUM_PAIRS];
        for &(k, c) in pairs {
            counts[k] = c;
        }
        Trajectory { seed: 0, reward, accuracies: vec![reward], counts, seconds: 0.0 }
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
        let out = update(&mut s, &[traj(0.9, &[(good, 50), (0, 50)]), traj(0.5, &[(bad, 50), (0, 50)])], &PpoConfig::default()).unwrap();
        assert!(prob(&s, good) > before.0, "rewarded pair did not gain");
        assert!(prob(&s, bad) < before.1, "penalised pair did not lose");
        assert_eq!(out.baseline, 0.7);
        assert!((out.advantages[0] - 0.1).abs() < 1e-12 && (out.advantages[1] + 0.1).abs() < 1e-12);
        assert!(out.entropy_after < out.entropy_before);
        // The rest of the pairs keep (nearly) their share relative to each other.
        let d = s.theta.distribution().unwrap();
        assert!((d.probs()[20 * 36 + 3] - d.probs()[30 * 36 + 9]).abs() < 1e-12);
    }

    #[test]
    fn ratio_orientation_is_new_over_old() {
        // With a positive advantage on one pair, a correct (π_new/π_old) surrogate increases
        // that pair's probability; the released code's inverted ratio would decrease it.
        let mut s = PpoState::default();
        s.baseline = Some(0.0);
        let k = 3 * 36 + 4;
        update(&mut s, &[traj(1.0, &[(k, 10)])], &PpoConfig { max_inner_steps: 1, ..Default::default() }).unwrap();
        assert!(prob(&s, k) > 1.0 / 1296.0);
        // The surrogate at θ_old equals Σ f·A (r = 1).
        let mut s2 = PpoState::default();
        s2.baseline = Some(0.0);
        let out = update(&mut s2, &[traj(1.0, &[(k, 10)])], &PpoConfig { max_inner_steps: 1, ..Default::default() }).unwrap();
        // b = 0.9·0 + 0.1·1 = 0.1, A = (1 − 0.1)·0.5 = 0.45, all of the trajectory on pair k.
        assert!((out.surrogate - 0.45).abs() < 1e-12, "{}", out.surrogate);
    }

    #[test]
    fn kl_stop_and_clip_bound_the_step() {
        let k = 7;
        let strong = PpoConfig { lr_start: 1.0, lr: 1.0, ..Default::default() };
        let mut s = PpoState { baseline: Some(0.0), ..Default::default() };
        let out = update(&mut s, &[traj(1.0, &[(k, 10)])], &strong).unwrap();
        assert!(out.inner_steps < 5, "a big step must trip the KL stop");
        assert!(out.kl > 0.002);
        // Without the KL stop, the clip caps the gain: once r > 1.2 the positive-advantage term
        // is flat, so the pair's probability stops near 1.2× (a little over, from Adam's momentum).
        let no_kl = PpoConfig { kl_stop: f64::INFINITY, max_inner_steps: 50, lr_start: 0.05, lr: 0.05, ..Default::default() };
        let mut s = PpoState { baseline: Some(0.0), ..Default::default() };
        update(&mut s, &[traj(1.0, &[(k, 10)])], &no_kl).unwrap();
        let r = prob(&s, k) * 1296.0;
        assert!(r > 1.15 && r < 1.6, "ratio after clipped optimisation: {r}");
        let unclipped = PpoConfig { clip: 1e9, ..no_kl };
        let mut s = PpoState { baseline: Some(0.0), ..Default::default() };
        update(&mut s, &[traj(1.0, &[(k, 10)])], &unclipped).unwrap();
        assert!(prob(&s, k) * 1296.0 > r + 0.5, "without the clip the pair keeps gaining");
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
