//! The search against its own noise-only null. PPO moves θ on any rewards — Adam normalises
//! its steps, so pure noise moves θ about as fast as signal does, only without a direction.
//! To say whether a search found anything, augwise replays the same search with rewards
//! that carry no information about θ and compares how far θ moved:
//!
//! ```text
//! for each of R null searches, from θ = 0 with PPO's own state:
//!   for each update u of the real search:
//!     rewards  = the real rewards of update u, permuted across its trajectories
//!     counts_t ~ Multinomial(applications_t, π_θ)     (the null θ's own per-image draws;
//!                with `pairs_per_trajectory` K: from the empirical law of K draws from π_θ)
//!     PPO update (same settings)
//! compare the real θ with the R null θs: KL from uniform (= the entropy drop ln 1296 − H),
//! each op's op1/op2 marginal and each pair's probability (simultaneous 95% bands)
//! ```
//! Only PPO's arithmetic runs — no network — so a null of a CPU search takes seconds.
//!
//! θ's movement is a weak judge: on information-free rewards PPO collapses θ about as far as
//! on real ones (docs/signal-study.md). The verdict's primary test is therefore the score test
//! of `search::score` — do each update's rewards follow the ops its trajectories drew, against
//! the same within-update permutations — with θ's movement reported beside it.

use serde::{Deserialize, Serialize};

use super::error::SearchError;
use super::ppo::{self, PpoConfig, PpoOutcome, PpoState, Trajectory};
use super::progress::{Progress, ProgressSink};
pub use super::score::NullInput;
use super::score::ScoreReport;
use super::stats::{empirical_p, quantile_sorted, ALPHA};
use crate::augment::space::{aws_name, pair_name, NUM_OPS, NUM_PAIRS};
use crate::policy::{PairDistribution, PolicyError, Theta};
use crate::rng::Rng;
use crate::train::CancelFlag;

/// Within-update permutations the score test runs: its p-value's resolution is 1/1,000, and
/// 1,000 shuffles of the paper's 2,800 trajectories take well under a second.
pub const SCORE_PERMUTATIONS: usize = 1000;

/// How far a θ is from uniform, in the terms the null is judged on.
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    /// KL(π‖uniform) = ln 1296 − H(π): the entropy drop.
    pub kl_from_uniform: f64,
    /// op1 marginals then op2 marginals (72).
    pub marginals: Vec<f64>,
    /// All 1,296 pair probabilities.
    pub pairs: Vec<f64>,
}

impl Movement {
    pub fn of(theta: &Theta) -> Result<Self, PolicyError> {
        let d = theta.distribution()?;
        let (op1, op2) = d.marginals();
        Ok(Self {
            kl_from_uniform: (NUM_PAIRS as f64).ln() - d.entropy(),
            marginals: op1.into_iter().chain(op2).collect(),
            pairs: d.probs().to_vec(),
        })
    }
}

/// Null searches one `null` may run (`limits::NULL_REPLICATES`).
pub const MAX_REPLICATES: usize = crate::limits::NULL_REPLICATES.max as usize;

/// A trajectory's pair counts as the search samples them: `n` applications each drawn from
/// θ (the paper), or from the empirical distribution of `pairs` draws from θ (the
/// `pairs_per_trajectory` variant).
pub fn trajectory_counts(dist: &PairDistribution, n: u64, pairs: usize, rng: &mut Rng) -> Vec<u32> {
    if pairs == 0 {
        rng.multinomial(n, dist.probs())
    } else {
        let drawn = dist.draw_pairs(pairs, rng);
        rng.multinomial(n, drawn.probs())
    }
}

/// θ after each of `replicates` null searches over `inputs`. `on_replicate(done)` returns
/// false to stop early (cancel).
pub fn simulate(
    inputs: &[NullInput],
    cfg: &PpoConfig,
    replicates: usize,
    seed: u64,
    on_replicate: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<Movement>, PolicyError> {
    let mut out = Vec::with_capacity(replicates.min(MAX_REPLICATES));
    for r in 0..replicates {
        let mut rng = Rng::derive(seed, &[r as u64]);
        let mut state = PpoState::default();
        for input in inputs {
            let dist = state.theta.distribution()?;
            let mut rewards = input.rewards.clone();
            rng.shuffle(&mut rewards);
            let trajectories: Vec<Trajectory> = rewards
                .iter()
                .zip(&input.applications)
                .map(|(&reward, &n)| {
                    let counts = trajectory_counts(&dist, n, input.pairs_per_trajectory, &mut rng);
                    Trajectory {
                        seed: 0,
                        reward,
                        accuracies: vec![reward],
                        counts,
                        seconds: 0.0,
                        pairs_drawn: input.pairs_per_trajectory,
                    }
                })
                .collect();
            ppo::update(&mut state, &trajectories, cfg)?;
        }
        out.push(Movement::of(&state.theta)?);
        if !on_replicate(r + 1) {
            return Err(PolicyError::Theta("cancelled".into()));
        }
    }
    Ok(out)
}

/// One op's marginal against its simultaneous null band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub name: String,
    pub observed: f64,
    pub null_mean: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Band {
    pub fn outside(&self) -> bool {
        self.observed < self.lo || self.observed > self.hi
    }
}

/// The real search judged against its null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NullReport {
    /// Null searches run.
    pub replicates: usize,
    /// Updates of the search (and of each null search).
    pub updates: usize,
    /// θ's KL from uniform (= entropy drop), nats.
    pub kl_from_uniform: f64,
    pub null_kl_median: f64,
    pub null_kl_q95: f64,
    /// Share of null searches that moved θ at least as far in KL (empirical, one-sided).
    pub p_kl: f64,
    /// Share of null searches with some op marginal at least as far out (max-|z| over the 72
    /// marginals): sensitive to a search that moves a few ops consistently.
    pub p_ops: f64,
    /// θ's movement as one p-value: Bonferroni over the two tests, min(1, 2·min(p_kl, p_ops)).
    #[serde(default)]
    pub p_movement: f64,
    /// Do the rewards follow the ops drawn? (`search::score`; `None` for searches recorded
    /// before augwise kept per-trajectory op counts.)
    #[serde(default)]
    pub score: Option<ScoreReport>,
    /// The verdict's p-value: the score test's when there is one (the pre-declared primary
    /// test: it has the power θ's movement lacks), else `p_movement`.
    pub p_value: f64,
    /// op1 marginals (names `op1 X`) then op2 marginals, each with its simultaneous 95% band
    /// (all 72 bands hold together in 95% of null searches).
    pub ops: Vec<Band>,
    /// Pairs whose probability lies outside their simultaneous 95% band.
    pub pairs_outside: Vec<Band>,
    /// The search moved θ further than noise does (p < 0.05).
    pub found: bool,
    /// Updates behind the θ whose movement was judged: the best θ's (`BestTheta`: θ after
    /// `update − 1` updates). Shuffling rewards within an update keeps every update's mean, so
    /// each null search picks the same update as best, and its θ there is the comparison.
    /// `None` in reports written before this field: they judged the last θ.
    #[serde(default)]
    pub theta_after: Option<usize>,
}

/// Simultaneous bands for coordinates of `null` rows: mean ± c·sd, with c the 95% quantile of
/// the largest standardised deviation across coordinates (max-|z|), so all bands hold
/// together in 95% of null searches. The coordinates are probabilities, so a band stops at 0
/// (a search whose nulls collapse onto random pairs has sd above the mean). Also returns the
/// observed max-|z| and its empirical p-value: the global test "does any coordinate lie further
/// out than noise puts one?".
fn bands(null: &[&[f64]], observed: &[f64], name: impl Fn(usize) -> String) -> (Vec<Band>, f64) {
    let dims = observed.len();
    let stats = |rows: &[&[f64]]| {
        let r = rows.len() as f64;
        let mean: Vec<f64> = (0..dims).map(|j| rows.iter().map(|x| x[j]).sum::<f64>() / r).collect();
        let sd: Vec<f64> = (0..dims)
            .map(|j| (rows.iter().map(|x| (x[j] - mean[j]).powi(2)).sum::<f64>() / (r - 1.0).max(1.0)).sqrt())
            .collect();
        (mean, sd)
    };
    let max_z = |x: &[f64], mean: &[f64], sd: &[f64]| {
        (0..dims)
            .filter(|&j| sd[j] > 0.0)
            .map(|j| (x[j] - mean[j]).abs() / sd[j])
            .fold(0.0, f64::max)
    };
    // The bands: from the null searches alone.
    let (mean, sd) = stats(null);
    let mut maxz: Vec<f64> = null.iter().map(|x| max_z(x, &mean, &sd)).collect();
    maxz.sort_by(f64::total_cmp);
    let c = quantile_sorted(&maxz, 1.0 - ALPHA);
    let bands = (0..dims)
        .map(|j| Band {
            name: name(j),
            observed: observed[j],
            null_mean: mean[j],
            lo: (mean[j] - c * sd[j]).max(0.0),
            hi: mean[j] + c * sd[j],
        })
        .collect();
    // The p-value: standardise with the observed row pooled in, so it and the null rows are
    // exchangeable under the null (standardising by the null rows alone would make them look
    // tamer than a new draw and the test too eager).
    let mut pooled: Vec<&[f64]> = null.to_vec();
    pooled.push(observed);
    let (pm, ps) = stats(&pooled);
    let null_z: Vec<f64> = null.iter().map(|x| max_z(x, &pm, &ps)).collect();
    (bands, empirical_p(max_z(observed, &pm, &ps), &null_z))
}

/// The score test over a search's updates (`None` when none carries op counts).
pub fn score(inputs: &[NullInput], seed: u64) -> Option<ScoreReport> {
    super::score::test(inputs, SCORE_PERMUTATIONS, seed)
}

/// Judge `theta` (after `updates` updates) against null searches' θs and, when given, the
/// score test of its rewards.
pub fn judge(
    theta: &Theta,
    updates: usize,
    null: &[Movement],
    score: Option<ScoreReport>,
) -> Result<NullReport, PolicyError> {
    if null.len() < 2 {
        return Err(PolicyError::Theta("a null needs at least 2 replicates".into()));
    }
    let obs = Movement::of(theta)?;
    let mut kls: Vec<f64> = null.iter().map(|m| m.kl_from_uniform).collect();
    let p_kl = empirical_p(obs.kl_from_uniform, &kls);
    kls.sort_by(f64::total_cmp);
    let marg: Vec<&[f64]> = null.iter().map(|m| m.marginals.as_slice()).collect();
    let (ops, p_ops) = bands(&marg, &obs.marginals, |j| {
        format!("op{} {}", 1 + j / NUM_OPS, aws_name(j % NUM_OPS))
    });
    let pairs: Vec<&[f64]> = null.iter().map(|m| m.pairs.as_slice()).collect();
    let mut pairs_outside: Vec<Band> = bands(&pairs, &obs.pairs, pair_name)
        .0
        .into_iter()
        .filter(Band::outside)
        .collect();
    let p_movement = (2.0 * p_kl.min(p_ops)).min(1.0);
    let p_value = score.as_ref().map_or(p_movement, |s| s.p_value);
    pairs_outside.sort_by(|a, b| b.observed.total_cmp(&a.observed));
    Ok(NullReport {
        replicates: null.len(),
        updates,
        kl_from_uniform: obs.kl_from_uniform,
        null_kl_median: quantile_sorted(&kls, 0.5),
        null_kl_q95: quantile_sorted(&kls, 1.0 - ALPHA),
        p_kl,
        p_ops,
        p_movement,
        score,
        p_value,
        ops,
        pairs_outside,
        found: p_value < ALPHA,
        theta_after: None,
    })
}

/// How much a p-value below 5% says, in words a user can weigh.
fn strength(p: f64) -> String {
    if p < 0.001 {
        "strong evidence".into()
    } else if p < 0.01 {
        format!(
            "evidence (a search on pure noise gets this far about once in {:.0})",
            1.0 / p
        )
    } else {
        format!(
            "weak evidence (a search on pure noise gets this far about once in {:.0})",
            1.0 / p
        )
    }
}

impl NullReport {
    pub fn ops_outside(&self) -> Vec<&Band> {
        self.ops.iter().filter(|b| b.outside()).collect()
    }

    /// θ's marginal now of a coordinate named `op1 X` / `op2 X`.
    fn marginal_of(&self, op: &str) -> Option<f64> {
        self.ops.iter().find(|b| b.name == op).map(|b| b.observed)
    }

    fn movement_clause(&self) -> String {
        let which = match self.theta_after {
            Some(n) => format!("the best θ's (θ after {n} updates)"),
            None => "θ's".into(),
        };
        format!(
            "{which} KL from uniform {:.4} nats (null 95th percentile {:.4}) and its op marginals are {} its null (p = {:.3}, {} null searches)",
            self.kl_from_uniform,
            self.null_kl_q95,
            if self.p_movement < ALPHA { "beyond" } else { "within" },
            self.p_movement,
            self.replicates
        )
    }

    /// One sentence: did the search find anything beyond noise?
    pub fn verdict(&self) -> String {
        match &self.score {
            Some(score) if self.found => {
                let named: Vec<String> = score
                    .named()
                    .iter()
                    .map(|o| {
                        let now = self.marginal_of(&o.op).map(|m| format!(", θ now draws it {:.2}% (uniform {:.2}%)", 100.0 * m, 100.0 / NUM_OPS as f64)).unwrap_or_default();
                        format!("rewards {} where {} was drawn more (z = {:+.2}, {:+.2} points per +1% of draws{now})", if o.z < 0.0 { "lower" } else { "higher" }, o.op, o.z, o.slope)
                    })
                    .collect();
                let what = if named.is_empty() { format!("rewards follow the ops drawn, spread over several ops with none alone beyond |z| {:.2}", score.z_critical) } else { named.join("; ") };
                format!(
                    "The search found signal beyond noise — {} (p = {:.3}, permutation score test over {} trajectories): {what}; {}. Confirm it on fresh trajectories: `export theta best.json`, then `compare theta:best.json aws:uniform 8`.",
                    strength(self.p_value),
                    self.p_value,
                    score.trajectories,
                    self.movement_clause()
                )
            }
            Some(score) => format!(
                "The search found nothing beyond noise (p = {:.3}): the ops drawn track the rewards no more than shuffled rewards do (Σz² {:.1} over 72 op marginals, {} trajectories), and {}; θ's top pairs are not evidence.",
                self.p_value,
                score.sum_z2,
                score.trajectories,
                self.movement_clause()
            ),
            None if self.found => format!(
                "The search moved θ beyond its noise-only null (p = {:.3}, {} null searches): KL from uniform {:.4} nats vs {:.4} at the null's 95th percentile (p = {:.3}); {} op marginal(s) outside their band (p = {:.3}).",
                self.p_value,
                self.replicates,
                self.kl_from_uniform,
                self.null_kl_q95,
                self.p_kl,
                self.ops_outside().len(),
                self.p_ops
            ),
            None => format!(
                "The search found nothing beyond noise (p = {:.3}, {} null searches on rewards carrying no information): θ's KL from uniform {:.4} nats (null 95th percentile {:.4}) and its op marginals are within what noise moves them to; θ's top pairs are not evidence.",
                self.p_value, self.replicates, self.kl_from_uniform, self.null_kl_q95
            ),
        }
    }
}

/// The null's inputs from a search's updates (number, PPO outcome); refused for updates
/// recorded before augwise kept pair-application totals.
pub(super) fn inputs_of<'a>(
    updates: impl Iterator<Item = (usize, &'a PpoOutcome)>,
) -> Result<Vec<NullInput>, SearchError> {
    updates
        .map(|(update, outcome)| {
            if outcome.applications.len() != outcome.rewards.len() {
                return Err(SearchError::RecordTooOld { update });
            }
            Ok(NullInput::of(outcome))
        })
        .collect()
}

/// The searched θ (`theta`, found after `after` of the `inputs`' updates) judged against
/// `replicates` null searches that stop where it stood, drawn from `seed`; the score test
/// reads every update. Cancelled through `cancel` between replicates.
pub(super) fn searched(
    theta: &Theta,
    inputs: &[NullInput],
    after: usize,
    ppo: &PpoConfig,
    (replicates, seed): (usize, u64),
    cancel: &CancelFlag,
    progress: &mut ProgressSink,
) -> Result<NullReport, SearchError> {
    let after = after.min(inputs.len());
    let sims = simulate(&inputs[..after], ppo, replicates, seed, &mut |done| {
        progress.emit(Progress::Null { done, replicates });
        !cancel.is_cancelled()
    });
    let sims = match sims {
        Ok(s) => s,
        Err(_) if cancel.is_cancelled() => return Err(SearchError::Cancelled),
        Err(e) => return Err(e.into()),
    };
    let score = score(inputs, crate::rng::mix(seed, 1));
    let mut report = judge(theta, inputs.len(), &sims, score)?;
    report.theta_after = Some(after);
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn trajectory_counts_sample_per_image_or_among_the_pairs_drawn() {
        let d = PairDistribution::uniform();
        let mut rng = Rng::new(4);
        let per_image = trajectory_counts(&d, 5000, 0, &mut rng);
        let drawn = trajectory_counts(&d, 5000, 3, &mut rng);
        assert_eq!((per_image.iter().sum::<u32>(), drawn.iter().sum::<u32>()), (5000, 5000));
        assert!(per_image.iter().filter(|&&c| c > 0).count() > 900);
        assert!((1..=3).contains(&drawn.iter().filter(|&&c| c > 0).count()));
    }

    #[test]
    fn bands_hold_together_and_flag_outliers() {
        // Null rows: coordinate j ~ j + 1 ± 1 (deterministic spread, never below 0); observed
        // far off in one.
        let rows: Vec<Vec<f64>> = (0..200)
            .map(|r| (0..5).map(|j| j as f64 + ((r * 7 + j * 3) % 11) as f64 / 5.0).collect())
            .collect();
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let mut obs: Vec<f64> = (0..5).map(|j| j as f64 + 1.0).collect();
        obs[2] = 50.0;
        let (b, p) = bands(&refs, &obs, |j| j.to_string());
        assert_eq!(p, 1.0 / 201.0, "the outlier is further out than every null row");
        let outside: Vec<&str> = b.iter().filter(|x| x.outside()).map(|x| x.name.as_str()).collect();
        assert_eq!(outside, vec!["2"]);
        // By construction at most 5% of the null rows leave any band.
        let escaped = rows
            .iter()
            .filter(|x| x.iter().zip(&b).any(|(v, band)| *v < band.lo || *v > band.hi))
            .count();
        assert!(escaped <= 10, "{escaped} of 200");
        // Coordinate 0 spreads 0..2: its band reaches 0 and stops there.
        assert_eq!(b[0].lo, 0.0);
        assert!(b.iter().all(|x| x.lo >= 0.0 && x.hi > x.lo));
    }
}
