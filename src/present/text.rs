//! The plain-text rendering of every report: what a terminal shows and the fallback of every
//! notebook output.

use std::fmt;

use crate::augment::space::{aws_name, NUM_OPS};
use crate::device::Diagnostics;
use crate::search::null::Band;
use crate::search::progress::{BatchAt, Purpose};
use crate::search::stats::{self, signed_points, Estimate};
use crate::search::{
    CompareReport, Comparison, CorrelateReport, EvaluateReport, FulltrainReport, History, NullReport, OpGallery,
    Pairing, PolicyReport, PretrainReport, ProbeReport, Progress, SampleReport, StepReport, UpdateRecord,
};
use crate::train::EpochReport;

/// A fraction as a percentage with two decimals.
pub(crate) fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
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
        if let Some(w) = &self.warning {
            writeln!(f, "{w}")?;
        }
        write!(f, "{} trajectories waiting for `update`", self.pending)
    }
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
        let best = if self.best_reward.n > 0 && self.update > 1 {
            format!(
                "{}, ≈ {:+.2} points from choosing the highest of {} means",
                self.best_reward.percent_short(),
                100.0 * self.best_selection_bias,
                self.update
            )
        } else if self.best_reward.n > 0 {
            self.best_reward.percent_short()
        } else {
            pct(self.best_mean_reward)
        };
        write!(
            f,
            "            top pairs: {}   best θ: update {} ({best})",
            top.join(", "),
            self.best_update
        )
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

impl fmt::Display for CorrelateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proxy: Vec<f64> = self.rows.iter().map(|r| r.1).collect();
        let full: Vec<f64> = self.rows.iter().map(|r| r.2).collect();
        let (rp, rf) = (stats::ranks(&proxy), stats::ranks(&full));
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

impl fmt::Display for PolicyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.best {
            Some(b) => writeln!(f, "best θ, {}", b.describe(self.updates))?,
            None => writeln!(f, "θ after {} updates (uniform)", self.updates)?,
        }
        writeln!(
            f,
            "entropy {:.4} nats (uniform {:.4}; drop = KL from uniform {:.4})",
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

impl fmt::Display for CompareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.pairing {
            Pairing::CommonRandomNumbers => "paired: common random numbers",
            Pairing::Independent => "independent trajectories",
        };
        let holm = if self.comparisons.len() > 1 {
            format!(
                "; verdicts follow p-values Holm-corrected across {} comparisons, intervals are each comparison's own",
                self.comparisons.len()
            )
        } else {
            String::new()
        };
        match &self.early {
            Some(e) if e.stopped => writeln!(
                f,
                "compare ({how}; stopped early after {} of at most {} pairs: the evidence E = {:.1} crossed 1/α = 20, anytime-valid however early; {:.0}s)",
                e.pairs, e.max_k, e.e_value, self.seconds
            )?,
            Some(e) => writeln!(
                f,
                "compare ({how}; ran all {} pairs without the evidence crossing 1/α = 20 (E = {:.2}); {:.0}s)",
                e.max_k, e.e_value, self.seconds
            )?,
            None => writeln!(
                f,
                "compare ({how}, {} trajectories per policy, {:.0}s{holm})",
                self.k, self.seconds
            )?,
        }
        for (p, e) in self.policies.iter().zip(&self.estimates) {
            writeln!(f, "  {p:<40} {}", e.percent())?;
        }
        for d in &self.discarded {
            writeln!(f, "  discarded: {d}")?;
        }
        let lines: Vec<String> = self.comparisons.iter().map(comparison_line).collect();
        write!(f, "{}", lines.join("\n"))
    }
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

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stage 1: {} epochs", self.pretrain.len())?;
        for u in &self.updates {
            write!(f, "\n{u}")?;
        }
        for p in &self.probes {
            write!(f, "\n{p}")?;
        }
        for t in &self.fulltrains {
            write!(
                f,
                "\nfull training with {}: final test accuracy {:.2}%",
                t.policy,
                100.0 * t.final_test_accuracy()
            )?;
        }
        if !self.updates.is_empty() {
            match &self.null {
                Some(n) if n.updates == self.updates.len() => write!(f, "\n{n}")?,
                Some(n) => write!(
                    f,
                    "\n(the null was run at update {}; `null` again to judge θ now)",
                    n.updates
                )?,
                None => write!(
                    f,
                    "\nθ has not been judged against its noise-only null: `null` runs it (seconds)"
                )?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for NullReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Null searches replay the updates behind the judged θ (the best θ's), the score test
        // every update.
        let (replayed, which) = match self.theta_after {
            Some(n) => (n, format!("the best θ's (θ after {n} of {} updates)", self.updates)),
            None => (self.updates, "θ's".to_owned()),
        };
        writeln!(
            f,
            "null: {} searches of {replayed} updates on rewards permuted across each update's trajectories; {which} KL from uniform (= entropy drop) {:.4} nats, null median {:.4}, 95th percentile {:.4}",
            self.replicates, self.kl_from_uniform, self.null_kl_median, self.null_kl_q95
        )?;
        let ops = self.ops_outside();
        if ops.is_empty() {
            writeln!(f, "ops outside their simultaneous 95% null band: none")?;
        } else {
            writeln!(
                f,
                "ops outside their simultaneous 95% null band: {}",
                ops.iter().map(|b| describe(b)).collect::<Vec<_>>().join("; ")
            )?;
        }
        if self.pairs_outside.is_empty() {
            writeln!(f, "pairs outside their simultaneous 95% null band: none")?;
        } else {
            let shown: Vec<String> = self.pairs_outside.iter().take(8).map(describe).collect();
            let more = self.pairs_outside.len().saturating_sub(8);
            writeln!(
                f,
                "pairs outside their simultaneous 95% null band: {}{}",
                shown.join("; "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )?;
        }
        match &self.score {
            Some(score) => writeln!(f, "score: {}", score.summary())?,
            None => writeln!(
                f,
                "score: not available (this search's updates were recorded without per-trajectory op counts)"
            )?,
        }
        write!(f, "{}", self.verdict())
    }
}

impl std::fmt::Display for EpochReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "epoch {:>3}  lr {:.4}→{:.4}  loss {:.4}  train {:5.2}%",
            self.epoch,
            self.lr_start,
            self.lr_end,
            self.loss,
            100.0 * self.train_acc
        )?;
        if let Some(v) = self.val_acc {
            write!(f, "  val {:5.2}%", 100.0 * v)?;
        }
        write!(f, "  {:6.0} img/s  {:5.1}s", self.images_per_sec, self.seconds)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "torch          {}", self.torch_version)?;
        writeln!(f, "libtorch       {} ({})", self.libtorch_loaded, self.libtorch_reason)?;
        let canon = |p: &str| std::fs::canonicalize(p).ok();
        if canon(&self.libtorch_loaded) != canon(&self.libtorch_dir) {
            writeln!(f, "built against  {}", self.libtorch_dir)?;
        }
        writeln!(f, "NVIDIA driver  {}", if self.nvidia_driver { "yes" } else { "no" })?;
        writeln!(f, "CUDA backend   {}", self.cuda_note)?;
        writeln!(
            f,
            "CUDA           {} ({} device(s), cuDNN {})",
            if self.cuda_available { "yes" } else { "no" },
            self.cuda_devices,
            if self.cudnn_available { "yes" } else { "no" }
        )?;
        writeln!(
            f,
            "CPU threads    {} intra-op, {} inter-op (MKL-DNN {}, OpenMP {})",
            self.threads,
            self.interop_threads,
            if self.mkldnn { "yes" } else { "no" },
            if self.openmp { "yes" } else { "no" }
        )?;
        write!(f, "default device {}", self.default_device)
    }
}

/// One comparison: the difference with its interval, the p-value and the verdict.
fn comparison_line(c: &Comparison) -> String {
    // An early compare's interval is a confidence sequence: valid at whichever pair it stopped.
    let anytime = c.method.starts_with("anytime-valid");
    let what = if anytime { "95% confidence sequence" } else { "95% CI" };
    let ci = c
        .ci95
        .map(|(lo, hi)| format!("{what} {} to {}", signed_points(lo), signed_points(hi)))
        .unwrap_or_else(|| "no 95% interval".into());
    let p = match (c.p_value, c.p_adjusted) {
        (Some(p), Some(a)) if (p - a).abs() > 1e-12 => format!("p = {p:.4}, Holm-adjusted {a:.4}"),
        (Some(p), _) => format!("p = {p:.4}"),
        _ => "p undefined".into(),
    };
    let mut need = match c.trajectories_needed {
        // An early compare's advice is about the fixed test it did not run.
        Some(n) if anytime && n <= crate::search::stats::NEEDED_MAX && !c.verdict.ends_with("better") => {
            format!("; a fixed `compare … {n}` would find a true difference this size with 80% power (simulated)")
        }
        _ if anytime => String::new(),
        Some(n) if n > crate::search::stats::NEEDED_MAX && !c.verdict.ends_with("better") => format!(
            "; more than {} trajectories each would be needed to find a difference this size",
            crate::search::stats::NEEDED_MAX
        ),
        Some(n) if !c.verdict.ends_with("better") => {
            format!("; k = {n} each would find a true difference this size with 80% power (simulated, this test and correction)")
        }
        None if !c.verdict.ends_with("better") => "; the trajectories gave identical rewards".into(),
        _ => String::new(),
    };
    // The exact test's floor: with k pairs no result is rarer than 2 of 2^k sign patterns.
    if c.method == "exact sign-flip" && !c.verdict.ends_with("better") && c.k >= 1 && c.k < 6 {
        need.push_str(&format!(
            " (with k = {} the exact test cannot go below p = {}, so no 95% interval exists)",
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

/// A band's value against its null band, in words.
fn describe(band: &Band) -> String {
    let dir = if band.observed > band.hi { "above" } else { "below" };
    format!(
        "{} {:.3}% ({dir} its null band {:.3}–{:.3}%)",
        band.name,
        100.0 * band.observed,
        100.0 * band.lo,
        100.0 * band.hi
    )
}

/// A progress event's message (renderers add the stage and the fraction).
impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let batch = |f: &mut std::fmt::Formatter<'_>, at: &BatchAt| {
            write!(f, "batch {}/{} loss {:.4}", at.batch, at.batches, at.loss)
        };
        match self {
            Progress::Pretrain {
                at,
                schedule_epoch,
                images_per_sec,
            } => {
                write!(f, "epoch {schedule_epoch} ")?;
                batch(f, at)?;
                write!(f, " {images_per_sec:.0} img/s")
            }
            Progress::Trajectories {
                purpose,
                first,
                together,
                total,
                at,
            } => {
                if let Purpose::Compare { policy, of } = purpose {
                    write!(f, "policy {policy}/{of}, ")?;
                }
                if *together > 1 {
                    write!(f, "trajectories {}–{}/{total} together, ", first + 1, first + together)?;
                } else {
                    write!(f, "trajectory {}/{total} ", first + 1)?;
                }
                write!(f, "epoch {}/{} ", at.epoch, at.epochs)?;
                batch(f, at)
            }
            Progress::Fulltrain { at } => {
                write!(f, "epoch {}/{} ", at.epoch, at.epochs)?;
                batch(f, at)
            }
            Progress::Null { done, replicates } => write!(f, "null search {done}/{replicates}"),
            Progress::Notice { message, .. } => write!(f, "note: {message}"),
            Progress::Queued {
                done,
                running,
                waiting,
                total,
                reason,
                ..
            } => {
                write!(
                    f,
                    "slurm: {done}/{total} trajectories done, {running} running, {waiting} queued"
                )?;
                match reason {
                    Some(r) if crate::search::reason_needs_a_change(r) => write!(
                        f,
                        " (Slurm: {r}: they cannot start as asked; Ctrl-C, then change slurm.* or `config executor=local`)"
                    ),
                    Some(r) => write!(f, " (Slurm: {r})"),
                    None => Ok(()),
                }
            }
        }
    }
}
