//! What each primitive returns: plain data (serde) with a plain-text rendering; front-ends
//! render the same data richly.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ppo::{PpoOutcome, Trajectory};
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
}

impl fmt::Display for PretrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.epochs {
            writeln!(f, "{e}")?;
        }
        write!(f, "stage 1: {} of {} epochs done; shared weights and momentum snapshotted", self.epochs_done, self.schedule_epochs)
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
        write!(f, "preview: {} validation images augmented ({})", self.preview_ops.len(), self.preview_ops.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateReport {
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
            writeln!(f, "trajectory seed {:>20}  reward {}  val per epoch [{}]  {:.1}s", t.seed, pct(t.reward), accs.join(", "), t.seconds)?;
        }
        for d in &self.discarded {
            writeln!(f, "discarded: {d}")?;
        }
        write!(f, "{} trajectories waiting for `update`", self.pending)
    }
}

/// One update in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// 1-based.
    pub update: usize,
    #[serde(flatten)]
    pub ppo: PpoOutcome,
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
        let adv: Vec<String> = p.advantages.iter().map(|a| format!("{a:+.4}")).collect();
        writeln!(
            f,
            "update {:>3}  mean reward {}  baseline {}  advantages [{}]",
            self.update,
            pct(p.mean_reward),
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
        let top: Vec<String> = self.top_pairs.iter().take(3).map(|(n, p)| format!("{n} {:.3}%", 100.0 * p)).collect();
        write!(f, "            top pairs: {}   best θ: update {} ({})", top.join(", "), self.best_update, pct(self.best_mean_reward))
    }
}

/// The marginals as text bars.
pub fn marginal_table(op1: &[f64], op2: &[f64]) -> String {
    let mut s = format!("{:<18} {:>7} {:>7}\n", "op", "op1", "op2");
    for i in 0..NUM_OPS {
        s.push_str(&format!("{:<18} {:>6.2}% {:>6.2}%\n", aws_name(i), 100.0 * op1[i], 100.0 * op2[i]));
    }
    s
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub policy: String,
    pub reward: f64,
    pub trajectories: Vec<Trajectory>,
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r: Vec<String> = self.trajectories.iter().map(|t| pct(t.reward)).collect();
        write!(f, "proxy reward of {}: {} (trajectories: {})", self.policy, pct(self.reward), r.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FulltrainReport {
    pub policy: String,
    pub epochs: Vec<EpochReport>,
    /// Test accuracy after each epoch (reported: the last).
    pub test_accuracy: Vec<f64>,
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
        write!(f, "full training with {}: final test accuracy {} (error {})", self.policy, pct(self.final_test_accuracy()), pct(1.0 - self.final_test_accuracy()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrelateReport {
    /// (policy, proxy reward, full-training test accuracy).
    pub rows: Vec<(String, f64, f64)>,
    pub kendall_tau: f64,
    pub spearman_rho: f64,
}

impl fmt::Display for CorrelateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy: Vec<f64> = self.rows.iter().map(|r| r.1).collect();
        let full: Vec<f64> = self.rows.iter().map(|r| r.2).collect();
        let (rp, rf) = (super::stats::ranks(&proxy), super::stats::ranks(&full));
        writeln!(f, "{:<40} {:>9} {:>5} {:>9} {:>5}", "policy", "proxy", "rank", "full", "rank")?;
        for (i, (p, x, y)) in self.rows.iter().enumerate() {
            writeln!(f, "{p:<40} {:>9} {:>5} {:>9} {:>5}", pct(*x), rp[i], pct(*y), rf[i])?;
        }
        write!(f, "Kendall τ = {:.3}, Spearman ρ = {:.3} (1 = the proxy ranks exactly like full training)", self.kendall_tau, self.spearman_rho)
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
        write!(f, "{} operations applied to one validation image: {}", self.labels.len().saturating_sub(1), self.labels.iter().skip(1).cloned().collect::<Vec<_>>().join(", "))
    }
}

impl Rich for OpGallery {
    fn html(&self) -> String {
        crate::chart::ops(self).map(|c| chart_html(&c)).unwrap_or_else(|e| para(&e.to_string()))
    }
}

/// θ now: its most likely pairs, entropy and marginals (`policy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyReport {
    pub updates: usize,
    pub entropy: f64,
    pub top: Vec<(String, f64)>,
    pub op1: Vec<f64>,
    pub op2: Vec<f64>,
}

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "θ after {} updates: entropy {:.4} nats (uniform {:.4})", self.updates, self.entropy, (1296f64).ln())?;
        for (name, p) in &self.top {
            writeln!(f, "  {name:<36} {:.4}%  ({:.2}× uniform)", 100.0 * p, p * 1296.0)?;
        }
        write!(f, "{}", marginal_table(&self.op1, &self.op2).trim_end())
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
        let text: Vec<String> = self.steps.iter().map(|s| format!("{}\n{}", s.evaluate, s.update)).collect();
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
        t.push(vec![(i + 1).to_string(), pct(x.reward), accs.join(", "), format!("{:.1}", x.seconds)]);
    }
    t
}

impl Rich for PretrainReport {
    fn html(&self) -> String {
        let summary = format!("stage 1: {} of {} epochs done; shared weights and momentum snapshotted", self.epochs_done, self.schedule_epochs);
        epoch_table(&self.epochs, None).html() + &para(&summary)
    }
}

impl Rich for SampleReport {
    fn html(&self) -> String {
        let mut t = Table::new(&["pair", "ops", "π(pair)", "× uniform"]);
        for (k, name, p) in &self.pairs {
            t.push(vec![k.to_string(), name.clone(), format!("{:.4}%", 100.0 * p), format!("{:.2}", p * 1296.0)]);
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
        h + &para(&format!("{} trajectories waiting for `update`", self.pending))
    }
}

impl Rich for UpdateRecord {}

impl Rich for ProbeReport {
    fn html(&self) -> String {
        para(&format!("proxy reward of {}: {}", self.policy, pct(self.reward))) + &trajectory_table(&self.trajectories).html()
    }
}

impl Rich for FulltrainReport {
    fn html(&self) -> String {
        let summary = format!("full training with {}: final test accuracy {}", self.policy, pct(self.final_test_accuracy()));
        epoch_table(&self.epochs, Some(&self.test_accuracy)).html() + &para(&summary)
    }
}

impl Rich for CorrelateReport {
    fn html(&self) -> String {
        let mut t = Table::new(&["policy", "proxy reward", "full-training test accuracy"]);
        for (p, x, y) in &self.rows {
            t.push(vec![p.clone(), pct(*x), pct(*y)]);
        }
        let chart = crate::chart::correlate(self).map(|c| chart_html(&c)).unwrap_or_default();
        let summary = format!("Kendall τ = {:.3}, Spearman ρ = {:.3} (1 = the proxy ranks exactly like full training)", self.kendall_tau, self.spearman_rho);
        t.html() + &chart + &para(&summary)
    }
}

impl Rich for PolicyReport {
    fn html(&self) -> String {
        let mut t = Table::new(&["pair", "π(pair)", "× uniform"]);
        for (name, p) in &self.top {
            t.push(vec![name.clone(), format!("{:.4}%", 100.0 * p), format!("{:.2}", p * 1296.0)]);
        }
        let summary = format!("θ after {} updates: entropy {:.4} nats (uniform {:.4})", self.updates, self.entropy, (1296f64).ln());
        let bars = crate::chart::marginal_bars(&self.op1, &self.op2).map(|c| chart_html(&c)).unwrap_or_default();
        para(&summary) + &t.html() + &bars
    }
}

impl Rich for StepReport {
    fn html(&self) -> String {
        self.steps.iter().map(|s| s.evaluate.html() + &pre(&s.update.to_string())).collect()
    }
}

crate::evcxr_display!(OpGallery, PretrainReport, SampleReport, EvaluateReport, UpdateRecord, ProbeReport, FulltrainReport, CorrelateReport, PolicyReport, StepReport);
