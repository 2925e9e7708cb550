//! What each primitive returns: plain data (serde) with a plain-text rendering; front-ends
//! render the same data richly.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ppo::{PpoOutcome, Trajectory};
use super::stats::Estimate;
use crate::augment::space::{aws_name, NUM_OPS};
use crate::train::EpochReport;

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

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

impl fmt::Display for PretrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.epochs {
            writeln!(f, "{e}")?;
        }
        if let Some(w) = &self.warning {
            writeln!(f, "{w}")?;
        }
        write!(
            f,
            "stage 1: {} of {} epochs done; shared weights and momentum snapshotted",
            self.epochs_done, self.schedule_epochs
        )
    }
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

impl fmt::Display for SampleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:>5}  {:<36} {:>9}", "pair", "ops", "π(pair)")?;
        for (k, name, p) in &self.pairs {
            writeln!(f, "{k:>5}  {name:<36} {:>8.4}%", 100.0 * p)?;
        }
        write!(
            f,
            "preview: {} validation images augmented ({})",
            self.preview_ops.len(),
            self.preview_ops.join(", ")
        )
    }
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
}

impl fmt::Display for EvaluateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.trajectories {
            let accs: Vec<String> = t.accuracies.iter().map(|a| pct(*a)).collect();
            writeln!(
                f,
                "trajectory seed {:>20}  reward {}  val per epoch [{}]  {:.1}s",
                t.seed,
                pct(t.reward),
                accs.join(", "),
                t.seconds
            )?;
        }
        for d in &self.discarded {
            writeln!(f, "discarded: {d}")?;
        }
        if !self.trajectories.is_empty() {
            writeln!(f, "mean reward {}", self.reward.percent())?;
        }
        write!(f, "{} trajectories waiting for `update`", self.pending)
    }
}

impl EvaluateReport {
    pub fn new(trajectories: Vec<Trajectory>, discarded: Vec<String>, pending: usize) -> Self {
        let rewards: Vec<f64> = trajectories.iter().map(|t| t.reward).collect();
        Self {
            reward: Estimate::of(&rewards),
            trajectories,
            discarded,
            pending,
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
    pub seconds: f64,
}

impl fmt::Display for UpdateRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.ppo;
        let adv: Vec<String> = p.advantages.iter().map(|a| format!("{a:+.3}")).collect();
        writeln!(f, "update {:>3}  mean reward {}", self.update, self.reward.percent())?;
        writeln!(
            f,
            "            baseline {}  advantages [{}] (percentage points)",
            pct(p.baseline),
            adv.join(", ")
        )?;
        writeln!(
            f,
            "            lr {:.4}  PPO steps {}  KL {:.5}  entropy {:.4} → {:.4} (uniform {:.4})",
            p.lr,
            p.inner_steps,
            p.kl,
            p.entropy_before,
            p.entropy_after,
            (1296f64).ln()
        )?;
        let top: Vec<String> = self
            .top_pairs
            .iter()
            .take(3)
            .map(|(n, p)| format!("{n} {:.3}%", 100.0 * p))
            .collect();
        write!(
            f,
            "            top pairs: {}   best θ: update {} ({})",
            top.join(", "),
            self.best_update,
            pct(self.best_mean_reward)
        )
    }
}

/// The marginals as text bars.
pub fn marginal_table(op1: &[f64], op2: &[f64]) -> String {
    let mut s = format!("{:<18} {:>7} {:>7}\n", "op", "op1", "op2");
    for i in 0..NUM_OPS {
        s.push_str(&format!(
            "{:<18} {:>6.2}% {:>6.2}%\n",
            aws_name(i),
            100.0 * op1[i],
            100.0 * op2[i]
        ));
    }
    s
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

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r: Vec<String> = self.trajectories.iter().map(|t| pct(t.reward)).collect();
        write!(
            f,
            "proxy reward of {}: {} (trajectories: {})",
            self.policy,
            self.estimate.percent(),
            r.join(", ")
        )
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

impl fmt::Display for FulltrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (e, t) in self.epochs.iter().zip(&self.test_accuracy) {
            writeln!(f, "{e}  test {}", pct(*t))?;
        }
        if let Some(w) = &self.warning {
            writeln!(f, "{w}")?;
        }
        write!(
            f,
            "full training with {}: final test accuracy {} (error {})",
            self.policy,
            pct(self.final_test_accuracy()),
            pct(1.0 - self.final_test_accuracy())
        )
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
    /// Percentile-bootstrap 95% intervals (policies resampled); `None` when most resamples
    /// are all ties (too few policies).
    pub kendall_tau_ci95: Option<(f64, f64)>,
    pub spearman_rho_ci95: Option<(f64, f64)>,
}

fn interval(ci: Option<(f64, f64)>) -> String {
    ci.map(|(lo, hi)| format!("95% CI {lo:+.2} to {hi:+.2}"))
        .unwrap_or_else(|| "no interval: too few policies".into())
}

impl CorrelateReport {
    pub fn new(rows: Vec<(String, f64, f64)>, proxy: Vec<Estimate>, seed: u64) -> Self {
        use super::stats::{bootstrap_ci, kendall_tau, spearman};
        let x: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let y: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let pick = |idx: &[usize], v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let kendall_tau_ci95 = bootstrap_ci(rows.len(), 2000, seed, |idx| {
            kendall_tau(&pick(idx, &x), &pick(idx, &y))
        });
        let spearman_rho_ci95 = bootstrap_ci(rows.len(), 2000, seed ^ 1, |idx| {
            spearman(&pick(idx, &x), &pick(idx, &y))
        });
        Self {
            kendall_tau: kendall_tau(&x, &y),
            spearman_rho: spearman(&x, &y),
            kendall_tau_ci95,
            spearman_rho_ci95,
            rows,
            proxy,
        }
    }

    fn summary(&self) -> String {
        format!(
            "Kendall τ = {:.3} ({}), Spearman ρ = {:.3} ({}); 1 = the proxy ranks exactly like full training",
            self.kendall_tau,
            interval(self.kendall_tau_ci95),
            self.spearman_rho,
            interval(self.spearman_rho_ci95)
        )
    }
}

impl fmt::Display for CorrelateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy: Vec<f64> = self.rows.iter().map(|r| r.1).collect();
        let full: Vec<f64> = self.rows.iter().map(|r| r.2).collect();
        let (rp, rf) = (super::stats::ranks(&proxy), super::stats::ranks(&full));
        writeln!(
            f,
            "{:<40} {:>17} {:>5} {:>9} {:>5}",
            "policy", "proxy (95% CI)", "rank", "full", "rank"
        )?;
        for (i, (p, x, y)) in self.rows.iter().enumerate() {
            let proxy = self
                .proxy
                .get(i)
                .map(Estimate::percent_short)
                .unwrap_or_else(|| pct(*x));
            writeln!(f, "{p:<40} {proxy:>17} {:>5} {:>9} {:>5}", rp[i], pct(*y), rf[i])?;
        }
        write!(f, "{}", self.summary())
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

impl fmt::Display for OpGallery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} operations applied to one validation image: {}",
            self.labels.len().saturating_sub(1),
            self.labels.iter().skip(1).cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

impl Rich for OpGallery {
    fn html(&self) -> String {
        crate::chart::ops(self)
            .map(|c| chart_html(&c))
            .unwrap_or_else(|e| para(&e.to_string()))
    }
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
    #[serde(default)]
    pub null: Option<super::NullReport>,
}

impl PolicyReport {
    /// The last line: what θ's movement means.
    fn judgement(&self) -> String {
        match &self.null {
            Some(n) => n.to_string(),
            None if self.updates == 0 => "θ is uniform: no updates yet".into(),
            None => "not yet judged against noise: `null` replays this search on rewards that carry no information (seconds) and says whether θ moved further than noise moves it".into(),
        }
    }
}

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "θ after {} updates: entropy {:.4} nats (uniform {:.4}; drop = KL from uniform {:.4})",
            self.updates,
            self.entropy,
            (1296f64).ln(),
            (1296f64).ln() - self.entropy
        )?;
        for (name, p) in &self.top {
            writeln!(f, "  {name:<36} {:.4}%  ({:.2}× uniform)", 100.0 * p, p * 1296.0)?;
        }
        writeln!(f, "{}", marginal_table(&self.op1, &self.op2).trim_end())?;
        write!(f, "{}", self.judgement())
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
    /// Mean of A − B (accuracy, fraction) with its 95% interval.
    pub difference: f64,
    pub ci95: Option<(f64, f64)>,
    pub sd: f64,
    pub p_value: Option<f64>,
    /// Holm-adjusted across all the comparisons of this `compare` (= p_value for one).
    pub p_adjusted: Option<f64>,
    pub method: String,
    /// `A better`, `B better` or `no difference detectable with k = …`.
    pub verdict: String,
    /// Trajectories per policy that would resolve a true difference of the observed size
    /// (5% level, 80% power); `None` when the observed difference is 0.
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
}

fn signed_points(x: f64) -> String {
    format!("{:+.2}", 100.0 * x)
}

impl CompareReport {
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
                    trajectories_needed: trajectories_needed(t.difference, t.sd),
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
        }
    }

    fn comparison_line(c: &Comparison) -> String {
        let ci = c
            .ci95
            .map(|(lo, hi)| format!("95% CI {} to {}", signed_points(lo), signed_points(hi)))
            .unwrap_or_else(|| "no interval".into());
        let p = match (c.p_value, c.p_adjusted) {
            (Some(p), Some(a)) if (p - a).abs() > 1e-12 => format!("p = {p:.4}, Holm-adjusted {a:.4}"),
            (Some(p), _) => format!("p = {p:.4}"),
            _ => "p undefined".into(),
        };
        let mut need = match c.trajectories_needed {
            Some(n) if !c.verdict.ends_with("better") => {
                format!("; about {n} trajectories each would resolve a difference this size")
            }
            None if !c.verdict.ends_with("better") => "; the trajectories gave identical rewards".into(),
            _ => String::new(),
        };
        // The exact test's floor: with k pairs no result is rarer than 2 of 2^k sign patterns.
        if c.method == "exact sign-flip" && !c.verdict.ends_with("better") && c.k >= 1 && c.k < 6 {
            need.push_str(&format!(
                " (with k = {} the exact test cannot go below p = {})",
                c.k,
                2.0 / f64::powi(2.0, c.k as i32)
            ));
        }
        format!(
            "{} − {}: {} points ({ci}; {p}, {}, k = {}) → {}{need}",
            c.a,
            c.b,
            signed_points(c.difference),
            c.method,
            c.k,
            c.verdict
        )
    }
}

impl fmt::Display for CompareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.pairing {
            Pairing::CommonRandomNumbers => "paired: common random numbers",
            Pairing::Independent => "independent trajectories",
        };
        let holm = if self.comparisons.len() > 1 {
            format!(
                "; p-values Holm-corrected across {} comparisons",
                self.comparisons.len()
            )
        } else {
            String::new()
        };
        writeln!(
            f,
            "compare ({how}, {} trajectories per policy, {:.0}s{holm})",
            self.k, self.seconds
        )?;
        for (p, e) in self.policies.iter().zip(&self.estimates) {
            writeln!(f, "  {p:<40} {}", e.percent())?;
        }
        for d in &self.discarded {
            writeln!(f, "  discarded: {d}")?;
        }
        let lines: Vec<String> = self.comparisons.iter().map(Self::comparison_line).collect();
        write!(f, "{}", lines.join("\n"))
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

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{}\n{}", s.evaluate, s.update))
            .collect();
        write!(f, "{}", text.join("\n"))
    }
}

// ---- rich renderings (notebooks) ------------------------------------------------------------

use crate::display::{chart_html, para, pre, Rich, Table};

fn epoch_table(epochs: &[EpochReport], test: Option<&[f64]>) -> Table {
    let mut columns = vec!["epoch", "lr", "loss", "train", "val", "img/s", "s"];
    if test.is_some() {
        columns.push("test");
    }
    let mut t = Table::new(&columns);
    for (i, e) in epochs.iter().enumerate() {
        let mut row = vec![
            e.epoch.to_string(),
            format!("{:.4}→{:.4}", e.lr_start, e.lr_end),
            format!("{:.4}", e.loss),
            pct(e.train_acc),
            e.val_acc.map(pct).unwrap_or_default(),
            format!("{:.0}", e.images_per_sec),
            format!("{:.1}", e.seconds),
        ];
        if let Some(test) = test {
            row.push(test.get(i).copied().map(pct).unwrap_or_default());
        }
        t.push(row);
    }
    t
}

fn trajectory_table(ts: &[Trajectory]) -> Table {
    let mut t = Table::new(&["trajectory", "reward", "val accuracy per epoch", "s"]);
    for (i, x) in ts.iter().enumerate() {
        let accs: Vec<String> = x.accuracies.iter().map(|a| pct(*a)).collect();
        t.push(vec![
            (i + 1).to_string(),
            pct(x.reward),
            accs.join(", "),
            format!("{:.1}", x.seconds),
        ]);
    }
    t
}

impl Rich for PretrainReport {
    fn html(&self) -> String {
        let summary = format!(
            "stage 1: {} of {} epochs done; shared weights and momentum snapshotted",
            self.epochs_done, self.schedule_epochs
        );
        epoch_table(&self.epochs, None).html() + &para(&summary)
    }
}

impl Rich for SampleReport {
    fn html(&self) -> String {
        let mut t = Table::new(&["pair", "ops", "π(pair)", "× uniform"]);
        for (k, name, p) in &self.pairs {
            t.push(vec![
                k.to_string(),
                name.clone(),
                format!("{:.4}%", 100.0 * p),
                format!("{:.2}", p * 1296.0),
            ]);
        }
        let grid = crate::chart::images(self).map(|c| chart_html(&c)).unwrap_or_default();
        t.html() + &grid + &para(&format!("applied: {}", self.preview_ops.join(" | ")))
    }
}

impl Rich for EvaluateReport {
    fn html(&self) -> String {
        let mut h = trajectory_table(&self.trajectories).html();
        for d in &self.discarded {
            h.push_str(&para(&format!("discarded: {d}")));
        }
        if !self.trajectories.is_empty() {
            h.push_str(&para(&format!("mean reward {}", self.reward.percent())));
        }
        h + &para(&format!("{} trajectories waiting for `update`", self.pending))
    }
}

impl Rich for UpdateRecord {}

impl Rich for ProbeReport {
    fn html(&self) -> String {
        para(&format!("proxy reward of {}: {}", self.policy, self.estimate.percent()))
            + &trajectory_table(&self.trajectories).html()
    }
}

impl Rich for FulltrainReport {
    fn html(&self) -> String {
        let summary = format!(
            "full training with {}: final test accuracy {}",
            self.policy,
            pct(self.final_test_accuracy())
        );
        epoch_table(&self.epochs, Some(&self.test_accuracy)).html() + &para(&summary)
    }
}

impl Rich for CorrelateReport {
    fn html(&self) -> String {
        let mut t = Table::new(&["policy", "proxy reward (95% CI)", "full-training test accuracy"]);
        for (i, (p, x, y)) in self.rows.iter().enumerate() {
            t.push(vec![
                p.clone(),
                self.proxy
                    .get(i)
                    .map(Estimate::percent_short)
                    .unwrap_or_else(|| pct(*x)),
                pct(*y),
            ]);
        }
        let chart = crate::chart::correlate(self)
            .map(|c| chart_html(&c))
            .unwrap_or_default();
        t.html() + &chart + &para(&self.summary())
    }
}

impl Rich for PolicyReport {
    fn html(&self) -> String {
        let mut t = Table::new(&["pair", "π(pair)", "× uniform"]);
        for (name, p) in &self.top {
            t.push(vec![
                name.clone(),
                format!("{:.4}%", 100.0 * p),
                format!("{:.2}", p * 1296.0),
            ]);
        }
        let summary = format!(
            "θ after {} updates: entropy {:.4} nats (uniform {:.4})",
            self.updates,
            self.entropy,
            (1296f64).ln()
        );
        let bars = crate::chart::marginal_bars(&self.op1, &self.op2, self.null.as_ref())
            .map(|c| chart_html(&c))
            .unwrap_or_default();
        para(&summary) + &t.html() + &bars + &pre(&self.judgement())
    }
}

impl Rich for CompareReport {
    fn html(&self) -> String {
        let mut t = Table::new(&["policy", "proxy reward (95% CI)", "sd", "n"]);
        for (p, e) in self.policies.iter().zip(&self.estimates) {
            t.push(vec![
                p.clone(),
                e.percent_short(),
                format!("{:.2}", 100.0 * e.sd),
                e.n.to_string(),
            ]);
        }
        let mut c = Table::new(&["A − B", "difference (points)", "95% CI", "p", "verdict"]);
        for x in &self.comparisons {
            c.push(vec![
                format!("{} − {}", x.a, x.b),
                signed_points(x.difference),
                x.ci95
                    .map(|(lo, hi)| format!("{} to {}", signed_points(lo), signed_points(hi)))
                    .unwrap_or_default(),
                x.p_adjusted.map(|p| format!("{p:.4}")).unwrap_or_else(|| "—".into()),
                x.verdict.clone(),
            ]);
        }
        let chart = crate::chart::compare(self).map(|c| chart_html(&c)).unwrap_or_default();
        t.html() + &c.html() + &chart + &pre(&self.to_string())
    }
}

impl Rich for StepReport {
    fn html(&self) -> String {
        self.steps
            .iter()
            .map(|s| s.evaluate.html() + &pre(&s.update.to_string()))
            .collect()
    }
}

impl Rich for super::NullReport {}

crate::evcxr_display!(
    CompareReport,
    super::NullReport,
    OpGallery,
    PretrainReport,
    SampleReport,
    EvaluateReport,
    UpdateRecord,
    ProbeReport,
    FulltrainReport,
    CorrelateReport,
    PolicyReport,
    StepReport
);
