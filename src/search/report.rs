//! What each primitive returns: plain data (serde). `present` renders it as text and HTML.

use serde::{Deserialize, Serialize};

use super::ppo::{PpoOutcome, Trajectory};
use super::stats::Estimate;
use crate::train::EpochReport;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PretrainReport {
    pub epochs: Vec<EpochReport>,
    /// Stage-1 epochs done so far, of `schedule_epochs`.
    pub epochs_done: usize,
    pub schedule_epochs: usize,
    /// Divergence without NaN (`train::divergence_warning`).
    #[serde(default)]
    pub warning: Option<String>,
}

/// Pairs drawn from θ, and a preview of their effect on a few validation images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleReport {
    /// (pair index, name, probability under θ).
    pub pairs: Vec<(usize, String, f64)>,
    /// uint8 N×C×H×W originals and their augmented versions, flattened (for image grids).
    pub preview_shape: Vec<i64>,
    pub preview_original: Vec<u8>,
    pub preview_augmented: Vec<u8>,
    /// What was applied to each preview image (signs included).
    pub preview_ops: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateReport {
    /// Mean reward of these trajectories with its 95% interval; `sd` is the spread from
    /// trajectory to trajectory.
    pub reward: Estimate,
    pub trajectories: Vec<Trajectory>,
    /// Trajectories dropped (NaN/Inf loss), with why.
    pub discarded: Vec<String>,
    /// Trajectories now waiting for `update`.
    pub pending: usize,
    /// Every trajectory at chance accuracy (`train::chance_warning`).
    #[serde(default)]
    pub warning: Option<String>,
}

impl EvaluateReport {
    pub fn new(trajectories: Vec<Trajectory>, discarded: Vec<String>, pending: usize) -> Self {
        let rewards: Vec<f64> = trajectories.iter().map(|t| t.reward).collect();
        Self {
            reward: Estimate::of(&rewards),
            trajectories,
            discarded,
            pending,
            warning: None,
        }
    }
}

/// One update in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// 1-based.
    pub update: usize,
    #[serde(flatten)]
    pub ppo: PpoOutcome,
    /// The mean reward with its 95% interval across the update's trajectories.
    #[serde(default)]
    pub reward: Estimate,
    pub op1_marginal: Vec<f64>,
    pub op2_marginal: Vec<f64>,
    pub top_pairs: Vec<(String, f64)>,
    pub best_update: usize,
    pub best_mean_reward: f64,
    /// The best update's reward with its interval, and how high the best of the updates'
    /// noisy means reads from selection alone (`BestTheta`).
    #[serde(default)]
    pub best_reward: Estimate,
    #[serde(default)]
    pub best_selection_bias: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub policy: String,
    /// The mean proxy reward (= `estimate.mean`).
    pub reward: f64,
    /// The mean with its 95% interval over the probe's trajectories.
    #[serde(default)]
    pub estimate: Estimate,
    pub trajectories: Vec<Trajectory>,
}

impl ProbeReport {
    pub fn new(policy: String, trajectories: Vec<Trajectory>) -> Self {
        let rewards: Vec<f64> = trajectories.iter().map(|t| t.reward).collect();
        let estimate = Estimate::of(&rewards);
        Self {
            policy,
            reward: estimate.mean,
            estimate,
            trajectories,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulltrainReport {
    pub policy: String,
    pub epochs: Vec<EpochReport>,
    /// Test accuracy after each epoch (reported: the last).
    pub test_accuracy: Vec<f64>,
    /// Divergence without NaN (`train::divergence_warning`).
    #[serde(default)]
    pub warning: Option<String>,
}

impl FulltrainReport {
    pub fn final_test_accuracy(&self) -> f64 {
        self.test_accuracy.last().copied().unwrap_or(f64::NAN)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrelateReport {
    /// (policy, proxy reward, full-training test accuracy).
    pub rows: Vec<(String, f64, f64)>,
    /// Each policy's proxy reward with its 95% interval over its probe trajectories.
    pub proxy: Vec<Estimate>,
    pub kendall_tau: f64,
    pub spearman_rho: f64,
    /// 95% intervals over policies (`stats::rank_correlation_ci`: Fisher's z with
    /// small-sample variances); `None` for too few policies (τ: < 5, ρ: < 4).
    pub kendall_tau_ci95: Option<(f64, f64)>,
    pub spearman_rho_ci95: Option<(f64, f64)>,
    /// Two-sided permutation p-values against "no association" (every ordering of the proxy
    /// ranks for ≤ 8 policies); `None` when the correlation is undefined.
    #[serde(default)]
    pub kendall_tau_p: Option<f64>,
    #[serde(default)]
    pub spearman_rho_p: Option<f64>,
}

fn interval(ci: Option<(f64, f64)>) -> String {
    ci.map(|(lo, hi)| format!("95% CI {lo:+.2} to {hi:+.2}"))
        .unwrap_or_else(|| "no interval: too few policies".into())
}

fn p_text(p: Option<f64>) -> String {
    p.map(|p| format!("p = {p:.3}")).unwrap_or_else(|| "p undefined".into())
}

impl CorrelateReport {
    pub fn new(rows: Vec<(String, f64, f64)>, proxy: Vec<Estimate>, seed: u64) -> Self {
        use super::stats::{kendall_tau, permutation_p, rank_correlation_ci, spearman, RankCorrelation};
        let x: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let y: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let (tau, rho) = (kendall_tau(&x, &y), spearman(&x, &y));
        Self {
            kendall_tau: tau,
            spearman_rho: rho,
            kendall_tau_ci95: rank_correlation_ci(tau, rows.len(), RankCorrelation::KendallTau),
            spearman_rho_ci95: rank_correlation_ci(rho, rows.len(), RankCorrelation::SpearmanRho),
            kendall_tau_p: permutation_p(&x, &y, seed, kendall_tau),
            spearman_rho_p: permutation_p(&x, &y, seed ^ 1, spearman),
            rows,
            proxy,
        }
    }

    /// Whether any ranking of this many policies could be told from chance at 5%.
    pub fn can_conclude(&self) -> bool {
        super::stats::permutation_floor(self.rows.len()) < super::stats::ALPHA
    }

    /// The rank correlations with their intervals and p-values, in one sentence, and what
    /// they can and cannot support.
    pub fn summary(&self) -> String {
        let n = self.rows.len();
        let head = format!(
            "Kendall τ = {:.3} ({}, {}), Spearman ρ = {:.3} ({}, {}) over {n} policies",
            self.kendall_tau,
            interval(self.kendall_tau_ci95),
            p_text(self.kendall_tau_p),
            self.spearman_rho,
            interval(self.spearman_rho_ci95),
            p_text(self.spearman_rho_p),
        );
        if !self.can_conclude() {
            return format!(
                "{head}. With {n} policies even a perfect agreement has p = {:.3} (2 of {n}! orderings): no conclusion about the proxy is possible; correlate 5 or more",
                super::stats::permutation_floor(n)
            );
        }
        let verdict = match self.kendall_tau_p {
            Some(p) if p < super::stats::ALPHA => "the proxy's ranking agrees with full training beyond chance",
            Some(_) => "the agreement is within what chance orderings give",
            None => "no ranking: the rewards are all tied",
        };
        format!(
            "{head}: {verdict}. Each full training ran once with one seed, so its own noise is part of the spread the interval covers, not separated from it"
        )
    }
}

/// One image under each of the 36 operations (positive sign), the original first: what each
/// operation of the search space does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpGallery {
    /// uint8 N×C×H×W, N = 37.
    pub shape: Vec<i64>,
    pub pixels: Vec<u8>,
    pub labels: Vec<String>,
}

/// θ now: its most likely pairs, entropy and marginals (`policy`), judged against the
/// search's noise-only null when one was run at this update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyReport {
    pub updates: usize,
    pub entropy: f64,
    pub top: Vec<(String, f64)>,
    pub op1: Vec<f64>,
    pub op2: Vec<f64>,
    /// Which θ this is: the best (`None` before the first update, when θ is uniform).
    #[serde(default)]
    pub best: Option<BestSummary>,
    #[serde(default)]
    pub null: Option<super::NullReport>,
}

/// The best θ's update and reward, without θ itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestSummary {
    /// θ after `update − 1` updates, the one update `update`'s trajectories ran under.
    pub update: usize,
    pub mean_reward: f64,
    pub reward: Estimate,
    pub selection_bias: f64,
}

impl BestSummary {
    /// `update 3 (θ after 2 updates): 68.12 ± 0.80%, the highest of 5 noisy means (≈ +0.45 points from that alone)`.
    pub fn describe(&self, updates: usize) -> String {
        let reward = if self.reward.n > 0 {
            self.reward.percent_short()
        } else {
            format!("{:.2}%", 100.0 * self.mean_reward)
        };
        let selection = if updates > 1 {
            format!(
                ", the highest of {updates} noisy means (≈ {:+.2} points from choosing the highest alone; `compare` it on fresh trajectories)",
                100.0 * self.selection_bias
            )
        } else {
            String::new()
        };
        format!(
            "update {} (θ after {} updates): {reward}{selection}",
            self.update,
            self.update.saturating_sub(1)
        )
    }
}

impl PolicyReport {
    /// The last line: what θ's movement means.
    pub fn judgement(&self) -> String {
        match &self.null {
            Some(n) => n.to_string(),
            None if self.updates == 0 => "θ is uniform: no updates yet".into(),
            None => "not yet judged against noise: `null` replays this search on rewards that carry no information (seconds) and says whether θ moved further than noise moves it".into(),
        }
    }
}

/// How the trajectories of the policies in a `compare` are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// Trajectory i of every policy shares the data order, crops, flips and Cutout holes.
    CommonRandomNumbers,
    /// Every trajectory has random numbers of its own (separate runs, as the official code).
    Independent,
}

/// Two policies of a `compare`, paired trajectory by trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    /// Pairs of trajectories both of which finished.
    pub k: usize,
    /// Mean of A − B (accuracy, fraction) with its 95% interval from the same test as
    /// `p_value` (`stats::PairedTest`): they agree on whether 0 is plausible. With several
    /// comparisons the verdict follows `p_adjusted`; the interval is not adjusted.
    pub difference: f64,
    pub ci95: Option<(f64, f64)>,
    pub sd: f64,
    pub p_value: Option<f64>,
    /// Holm-adjusted across all the comparisons of this `compare` (= p_value for one).
    pub p_adjusted: Option<f64>,
    pub method: String,
    /// `A better`, `B better` or `no difference detectable with k = …`.
    pub verdict: String,
    /// Trajectories per policy with which the test run here (exact sign-flip, Holm over this
    /// compare's comparisons) finds a true difference of the observed size with 80% power
    /// (simulated, `stats::trajectories_needed`); `None` when the observed difference is 0.
    pub trajectories_needed: Option<usize>,
}

/// `compare A B [C…] [k]`: each policy's proxy reward and every pair's paired difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    pub policies: Vec<String>,
    pub k: usize,
    pub pairing: Pairing,
    /// Each policy's reward per trajectory (`None`: that trajectory diverged).
    pub rewards: Vec<Vec<Option<f64>>>,
    pub estimates: Vec<Estimate>,
    pub comparisons: Vec<Comparison>,
    /// With two policies: their comparison's difference, interval and p-value, at the top.
    pub difference: Option<f64>,
    pub ci95: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub discarded: Vec<String>,
    pub seconds: f64,
    /// How an early-stopping compare (`compare A B early`) ended; `None` for a fixed k.
    #[serde(default)]
    pub early: Option<EarlyStop>,
}

/// How a compare that may stop early ended (`Session::compare_early`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// The most pairs it would have run.
    pub max_k: usize,
    /// Pairs both of whose trajectories finished, up to the stop.
    pub pairs: usize,
    /// Whether the evidence crossed 1/α (else it ran all `max_k`).
    pub stopped: bool,
    /// The e-process's wealth at the end: the evidence against "no difference".
    pub e_value: f64,
    /// +1 when the evidence favours A, −1 for B.
    pub direction: f64,
    /// The anytime-valid 95% confidence sequence for A − B at the end.
    pub interval: Option<(f64, f64)>,
}

impl CompareReport {
    /// Replace the fixed-k test of a two-policy report with the anytime-valid one it stopped
    /// by: its p-value (1/E), its interval and its verdict (the fixed test's would be
    /// optimistic after a data-dependent stop).
    pub fn stopped_early(&mut self, early: EarlyStop) {
        if let Some(c) = self.comparisons.first_mut() {
            let p = super::sequential::anytime_p(early.e_value);
            c.p_value = Some(p);
            c.p_adjusted = Some(p);
            c.ci95 = early.interval;
            c.method = format!("anytime-valid sign-flip e-process, E = {:.1}", early.e_value);
            c.verdict = match (early.stopped, early.direction > 0.0) {
                (true, true) => format!("{} better", c.a),
                (true, false) => format!("{} better", c.b),
                (false, _) => format!("no difference detectable within {} pairs", early.max_k),
            };
            self.p_value = c.p_value;
            self.ci95 = c.ci95;
        }
        self.early = Some(early);
    }

    pub fn new(
        policies: Vec<String>,
        rewards: Vec<Vec<Option<f64>>>,
        pairing: Pairing,
        discarded: Vec<String>,
        seconds: f64,
    ) -> Self {
        use super::stats::{holm, trajectories_needed, PairedTest, ALPHA};
        let k = rewards.first().map(Vec::len).unwrap_or(0);
        let estimates: Vec<Estimate> = rewards
            .iter()
            .map(|r| Estimate::of(&r.iter().flatten().copied().collect::<Vec<_>>()))
            .collect();
        let mut comparisons = Vec::new();
        let m = policies.len() * policies.len().saturating_sub(1) / 2;
        for i in 0..policies.len() {
            for j in i + 1..policies.len() {
                let diffs: Vec<f64> = rewards[i]
                    .iter()
                    .zip(&rewards[j])
                    .filter_map(|(a, b)| Some((*a)? - (*b)?))
                    .collect();
                let t = PairedTest::of(&diffs);
                comparisons.push(Comparison {
                    a: policies[i].clone(),
                    b: policies[j].clone(),
                    k: t.n,
                    difference: t.difference,
                    ci95: t.ci95,
                    sd: t.sd,
                    p_value: t.p_value,
                    p_adjusted: None,
                    method: t.method,
                    verdict: String::new(),
                    trajectories_needed: trajectories_needed(t.difference, t.sd, m),
                });
            }
        }
        let ps: Vec<f64> = comparisons.iter().map(|c| c.p_value.unwrap_or(1.0)).collect();
        for (c, adj) in comparisons.iter_mut().zip(holm(&ps)) {
            c.p_adjusted = c.p_value.map(|_| adj);
            c.verdict = match c.p_adjusted {
                Some(p) if p < ALPHA && c.difference > 0.0 => format!("{} better", c.a),
                Some(p) if p < ALPHA && c.difference < 0.0 => format!("{} better", c.b),
                _ => format!("no difference detectable with k = {}", c.k),
            };
        }
        let one = (comparisons.len() == 1).then(|| &comparisons[0]);
        Self {
            difference: one.map(|c| c.difference).filter(|d| d.is_finite()),
            ci95: one.and_then(|c| c.ci95),
            p_value: one.and_then(|c| c.p_value),
            policies,
            k,
            pairing,
            rewards,
            estimates,
            comparisons,
            discarded,
            seconds,
            early: None,
        }
    }
}

/// One `step`: the trajectories evaluated, then the PPO update they fed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub evaluate: EvaluateReport,
    pub update: UpdateRecord,
}

/// `step n`: each update's trajectories and PPO outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub steps: Vec<Step>,
}

/// The θ with the best mean reward so far (what a search returns, not the last θ): the θ
/// update `update`'s trajectories ran under, i.e. θ after `update − 1` updates. `export`,
/// `policy`, `null` and the θ charts all mean this one (`Session::best_theta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestTheta {
    pub update: usize,
    pub mean_reward: f64,
    pub theta: crate::policy::Theta,
    /// Its update's mean reward with the 95% interval over that update's trajectories.
    #[serde(default)]
    pub reward: Estimate,
    /// How far the highest of the updates' noisy means lies above its θ's true reward on
    /// average when no θ is better than another (`stats::selection_bias`): the best is
    /// chosen *because* its noise was high.
    #[serde(default)]
    pub selection_bias: f64,
}
