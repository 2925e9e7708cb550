//! Do the rewards follow the ops drawn? The permutation score test — the evidence PPO learns
//! from, tested directly.
//!
//! PPO's gradient is Σ_t A_t · f_t: it moves θ towards ops whose share f_t is high in
//! trajectories with high rewards. Where θ ends up after a search is a noisy function of that
//! evidence (on rewards without information PPO collapses θ just as far — docs/signal-study.md),
//! so augwise tests the evidence itself:
//!
//! ```text
//! s_{u,t,o} = share of trajectory t's draws (update u) with op o as op1, resp. op2 (72 o's)
//! S_o = Σ_u Σ_t (R_{u,t} − R̄_u)(s_{u,t,o} − s̄_{u,o})       (within-update covariance, summed)
//! z_o = S_o / sd(S_o under permutation of R within each update)   (exact, no model)
//! statistic = Σ_o z_o²; p = share of P within-update permutations of the rewards with a
//! statistic at least as large (the observed one counted, so p ≥ 1/(P+1));
//! an op is named when its |z| exceeds the permutations' 95th percentile of max_o |z_o|
//! ```
//! Σz² rather than max |z|: measured on simulated searches (tests/ppo_signal.rs) it finds a
//! signal spread over four ops in 39 of 40 seeds where the max finds it in 37 and the 36
//! op-level shares (op1 and op2 pooled) in 27, with no more false alarms.
//! Under the null — trajectories of one update exchangeable, rewards independent of which
//! pairs were drawn — every within-update permutation is equally likely, so the test is exact
//! whatever the rewards' distribution, the number of updates or how θ moved between them.
//! `slope_o` = S_o / Σ(s − s̄)² is the reward change (accuracy points) per percentage point
//! more of the op in a trajectory's draws: the effect in units a user can read, measured over
//! the small range of shares the trajectories actually had (not an extrapolation to 100%).

use serde::{Deserialize, Serialize};

use super::ppo::PpoOutcome;
use super::stats::{empirical_p, ALPHA};
use crate::augment::space::{aws_name, NUM_OPS};
use crate::rng::Rng;

/// What one update of a search gives its null: the rewards (permuted there) and how many pair
/// applications each trajectory drew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NullInput {
    pub rewards: Vec<f64>,
    pub applications: Vec<u64>,
    /// Per trajectory, op1 then op2 counts (`ppo::op_counts`); empty for updates recorded
    /// before augwise kept them (the score test then skips the update).
    #[serde(default)]
    pub op_counts: Vec<Vec<u32>>,
    /// The search's `pairs_per_trajectory` (0: per image).
    #[serde(default)]
    pub pairs_per_trajectory: usize,
}

impl NullInput {
    /// What the null needs from one PPO update.
    pub fn of(outcome: &PpoOutcome) -> Self {
        Self {
            rewards: outcome.rewards.clone(),
            applications: outcome.applications.clone(),
            op_counts: outcome.op_counts.clone(),
            pairs_per_trajectory: outcome.pairs_per_trajectory,
        }
    }
}

/// One op's association with the rewards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpScore {
    pub op: String,
    /// Standardised within-update covariance of reward and the op's share.
    pub z: f64,
    /// Reward change in accuracy points per percentage point of share.
    pub slope: f64,
    /// The op's mean share over all trajectories (uniform θ: 1/36 = 2.78%).
    pub share: f64,
}

/// The permutation score test of a search's rewards against its ops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreReport {
    /// Updates with at least two trajectories (one alone carries no within-update contrast).
    pub updates: usize,
    pub trajectories: usize,
    pub permutations: usize,
    /// Σ_o z_o² of the real rewards: the test statistic (power against a signal spread over
    /// several ops as well as one).
    pub sum_z2: f64,
    /// max_o |z_o| of the real rewards.
    pub max_abs_z: f64,
    /// The 95th percentile of max |z| under permutation: the |z| an op needs to be named
    /// (simultaneous over all 72).
    pub z_critical: f64,
    /// Share of permutations with Σz² at least as large.
    pub p_value: f64,
    /// The 72 coordinates (`op1 X`, `op2 X`), strongest association first.
    pub ops: Vec<OpScore>,
}

impl ScoreReport {
    /// Ops whose |z| exceeds the permutation critical value (simultaneous over all 72).
    pub fn named(&self) -> Vec<&OpScore> {
        self.ops.iter().filter(|o| o.z.abs() > self.z_critical).collect()
    }

    pub fn significant(&self) -> bool {
        self.p_value < ALPHA
    }

    /// One line: what the rewards say about the ops.
    pub fn summary(&self) -> String {
        let top = self.ops.first();
        let strongest = top
            .map(|o| {
                format!(
                    "strongest: {} (z = {:+.2}, {:+.2} points per +1% of draws)",
                    o.op, o.z, o.slope
                )
            })
            .unwrap_or_default();
        let test = format!(
            "permutation score test over {} trajectories in {} updates: Σz² {:.1}, p = {:.3}",
            self.trajectories, self.updates, self.sum_z2, self.p_value
        );
        let named: Vec<String> = self
            .named()
            .iter()
            .map(|o| {
                format!(
                    "{} (z = {:+.2}, rewards {} where it was drawn more)",
                    o.op,
                    o.z,
                    if o.z < 0.0 { "lower" } else { "higher" }
                )
            })
            .collect();
        match (self.significant(), named.is_empty()) {
            (true, false) => format!("rewards follow the ops drawn ({test}): {}", named.join("; ")),
            (true, true) => format!("rewards follow the ops drawn ({test}), spread over several ops, none alone beyond |z| {:.2}; {strongest}", self.z_critical),
            (false, _) => format!("no op's share tracks the rewards beyond chance ({test}); {strongest}"),
        }
    }
}

/// Centred rewards and coordinates of one update.
struct Centred {
    rewards: Vec<f64>,
    /// Per trajectory, the centred shares.
    shares: Vec<Vec<f64>>,
    /// The update's mean share of each coordinate (what was centred away).
    mean_shares: Vec<f64>,
}

/// A trajectory's coordinates: op1 then op2 marginal shares (72), θ's own marginals' terms.
fn shares(c: &[u32]) -> Vec<f64> {
    let n: f64 = c[..NUM_OPS].iter().map(|&x| f64::from(x)).sum::<f64>().max(1.0);
    c.iter().map(|&x| f64::from(x) / n).collect()
}

fn centre(u: &NullInput) -> Centred {
    let t = u.rewards.len() as f64;
    let mean_r = u.rewards.iter().sum::<f64>() / t;
    let raw: Vec<Vec<f64>> = u.op_counts.iter().map(|c| shares(c)).collect();
    let dims = raw[0].len();
    let mean_s: Vec<f64> = (0..dims).map(|o| raw.iter().map(|s| s[o]).sum::<f64>() / t).collect();
    let shares = raw
        .iter()
        .map(|s| s.iter().zip(&mean_s).map(|(x, m)| x - m).collect())
        .collect();
    Centred {
        rewards: u.rewards.iter().map(|r| r - mean_r).collect(),
        shares,
        mean_shares: mean_s,
    }
}

/// Σ_u Σ_t a_{u,π(t)} · b_{u,t,o} for every coordinate, with `order[u]` update u's reward order.
fn covariances(updates: &[Centred], order: &[Vec<usize>], dims: usize) -> Vec<f64> {
    let mut s = vec![0.0; dims];
    for (u, idx) in updates.iter().zip(order) {
        for (t, &i) in idx.iter().enumerate() {
            let a = u.rewards[i];
            for (acc, b) in s.iter_mut().zip(&u.shares[t]) {
                *acc += a * b;
            }
        }
    }
    s
}

/// Run the test over a search's updates (their rewards and op counts) with `permutations`
/// within-update shuffles. `None` when no update has two trajectories with op counts, or
/// `permutations` is 0.
pub fn test(evidence: &[NullInput], permutations: usize, seed: u64) -> Option<ScoreReport> {
    if permutations == 0 {
        return None;
    }
    let usable: Vec<&NullInput> = evidence
        .iter()
        .filter(|u| {
            u.rewards.len() >= 2
                && u.op_counts.len() == u.rewards.len()
                && u.op_counts.iter().all(|c| c.len() == 2 * NUM_OPS)
        })
        .collect();
    if usable.is_empty() {
        return None;
    }
    let centred: Vec<Centred> = usable.iter().map(|u| centre(u)).collect();
    let dims = centred[0].shares[0].len();
    // Exact permutation variance: Var(S_o) = Σ_u (Σa²)(Σb_o²)/(T_u − 1).
    let mut var = vec![0.0; dims];
    let mut ss = vec![0.0; dims];
    for u in &centred {
        let aa: f64 = u.rewards.iter().map(|a| a * a).sum();
        let df = (u.rewards.len() - 1) as f64;
        for o in 0..dims {
            let bb: f64 = u.shares.iter().map(|b| b[o] * b[o]).sum();
            var[o] += aa * bb / df;
            ss[o] += bb;
        }
    }
    let z_of = |s: &[f64]| -> Vec<f64> {
        (0..dims)
            .map(|o| if var[o] > 0.0 { s[o] / var[o].sqrt() } else { 0.0 })
            .collect()
    };
    let sum_sq = |z: &[f64]| z.iter().map(|x| x * x).sum::<f64>();
    let max_abs = |z: &[f64]| z.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let identity: Vec<Vec<usize>> = centred.iter().map(|u| (0..u.rewards.len()).collect()).collect();
    let s_obs = covariances(&centred, &identity, dims);
    let z_obs = z_of(&s_obs);
    let mut rng = Rng::new(seed);
    let mut order = identity;
    let (mut null_sum, mut null_max) = (Vec::with_capacity(permutations), Vec::with_capacity(permutations));
    for _ in 0..permutations {
        for idx in order.iter_mut() {
            rng.shuffle(idx);
        }
        let z = z_of(&covariances(&centred, &order, dims));
        null_sum.push(sum_sq(&z));
        null_max.push(max_abs(&z));
    }
    let p_value = empirical_p(sum_sq(&z_obs), &null_sum);
    null_max.sort_by(f64::total_cmp);
    let z_critical = super::stats::quantile_sorted(&null_max, 1.0 - ALPHA);
    let trajectories: usize = centred.iter().map(|u| u.rewards.len()).sum();
    let mut ops: Vec<OpScore> = (0..dims)
        .map(|o| {
            let mean_share = centred
                .iter()
                .map(|u| u.rewards.len() as f64 * u.mean_shares[o])
                .sum::<f64>()
                / trajectories as f64;
            let op = format!("op{} {}", 1 + o / NUM_OPS, aws_name(o % NUM_OPS));
            OpScore {
                op,
                z: z_obs[o],
                slope: if ss[o] > 0.0 { s_obs[o] / ss[o] } else { 0.0 },
                share: mean_share,
            }
        })
        .collect();
    ops.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
    Some(ScoreReport {
        updates: centred.len(),
        trajectories,
        permutations,
        sum_z2: sum_sq(&z_obs),
        max_abs_z: max_abs(&z_obs),
        z_critical,
        p_value,
        ops,
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::super::ppo::op_counts;
    use super::*;
    use crate::augment::space::NUM_PAIRS;

    /// What the test reads of an update: rewards and op counts.
    fn evidence(rewards: Vec<f64>, op_counts: Vec<Vec<u32>>) -> NullInput {
        NullInput {
            applications: vec![2000; rewards.len()],
            rewards,
            op_counts,
            pairs_per_trajectory: 0,
        }
    }

    /// 2,000 applications drawn uniformly (per image), plus `extra` of the pair (op, op).
    fn counts_with(op: usize, extra: u32, rng: &mut Rng) -> Vec<u32> {
        let mut pairs = rng.multinomial(2000, &[1.0 / NUM_PAIRS as f64; NUM_PAIRS]);
        pairs[op * NUM_OPS + op] += extra;
        op_counts(&pairs)
    }

    #[test]
    fn a_reward_that_follows_one_op_is_found_and_named_and_its_shuffle_is_not() {
        // 10 updates × 6 trajectories; reward falls with op 11's extra applications.
        let mut rng = Rng::new(3);
        let mut real = Vec::new();
        for _ in 0..10 {
            let extras: Vec<u32> = (0..6).map(|_| (rng.next_f64() * 40.0) as u32).collect();
            let rewards = extras
                .iter()
                .map(|&e| 0.7 - 0.001 * f64::from(e) + 0.002 * rng.normal())
                .collect();
            real.push(evidence(
                rewards,
                extras.iter().map(|&e| counts_with(11, e, &mut rng)).collect(),
            ));
        }
        let r = test(&real, 400, 1).unwrap();
        assert_eq!(r.p_value, 1.0 / 401.0, "{}", r.summary());
        let named: Vec<&str> = r.named().iter().map(|o| o.op.as_str()).collect();
        assert_eq!(named.len(), 2, "{}", r.summary());
        assert!(
            named.contains(&"op1 Invert") && named.contains(&"op2 Invert"),
            "{}",
            r.summary()
        );
        assert!(r.ops[0].z < 0.0 && r.ops[0].slope < 0.0);
        // The same rewards with the op counts of another update's trajectory order carry no
        // information: p is not small in most such shuffles (exact: uniform under the null).
        let mut small = 0;
        for s in 0..40 {
            let mut shuffled = real.clone();
            let mut rng = Rng::new(100 + s);
            for u in &mut shuffled {
                rng.shuffle(&mut u.rewards);
            }
            small += usize::from(test(&shuffled, 200, s).unwrap().p_value < 0.05);
        }
        assert!(small <= 8, "{small} of 40 shuffles judged significant");
    }

    #[test]
    fn the_test_is_invariant_to_each_updates_reward_level_and_needs_two_trajectories() {
        let u = |rewards: Vec<f64>, extras: &[u32]| {
            evidence(
                rewards,
                extras
                    .iter()
                    .map(|&e| counts_with(2, e, &mut Rng::new(u64::from(e))))
                    .collect(),
            )
        };
        let a = [u(vec![0.5, 0.6, 0.7], &[0, 5, 9]), u(vec![0.4, 0.1, 0.3], &[3, 1, 2])];
        let b = [
            u(vec![10.5, 10.6, 10.7], &[0, 5, 9]),
            u(vec![-0.6, -0.9, -0.7], &[3, 1, 2]),
        ];
        let (ra, rb) = (test(&a, 50, 9).unwrap(), test(&b, 50, 9).unwrap());
        assert!((ra.max_abs_z - rb.max_abs_z).abs() < 1e-9 && ra.p_value == rb.p_value);
        assert!(test(&[u(vec![0.5], &[1])], 50, 9).is_none());
    }
}
