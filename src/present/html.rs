//! The HTML rendering of every report for notebooks: tables, inline charts, the verdicts.

use super::text::pct;
use super::{chart, chart_html, para, pre, Rich, Table};
use crate::device::Diagnostics;
use crate::search::stats::{signed_points, Estimate};
use crate::search::{
    CompareReport, CorrelateReport, EvaluateReport, FulltrainReport, History, NullReport, OpGallery, PolicyReport,
    PretrainReport, ProbeReport, SampleReport, StepReport, Trajectory, UpdateRecord,
};
use crate::train::EpochReport;

impl Rich for OpGallery {
    fn html(&self) -> String {
        chart::ops(self)
            .map(|c| chart_html(&c))
            .unwrap_or_else(|e| para(&e.to_string()))
    }
}

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
        let grid = chart::images(self).map(|c| chart_html(&c)).unwrap_or_default();
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
        if let Some(w) = &self.warning {
            h.push_str(&para(w));
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
        let chart = chart::correlate(self).map(|c| chart_html(&c)).unwrap_or_default();
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
        let which = match &self.best {
            Some(b) => format!("best θ, {}", b.describe(self.updates)),
            None => format!("θ after {} updates (uniform)", self.updates),
        };
        let summary = format!(
            "{which}; entropy {:.4} nats (uniform {:.4})",
            self.entropy,
            (1296f64).ln()
        );
        let bars = chart::marginal_bars(&self.op1, &self.op2, self.null.as_ref())
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
                    .unwrap_or_else(|| match x.k {
                        1..=5 => format!("none (k = {}: the exact test cannot reach 5%)", x.k),
                        _ => "—".into(),
                    }),
                x.p_adjusted.map(|p| format!("{p:.4}")).unwrap_or_else(|| "—".into()),
                x.verdict.clone(),
            ]);
        }
        let chart = chart::compare(self).map(|c| chart_html(&c)).unwrap_or_default();
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

impl Rich for NullReport {}

impl Rich for History {
    /// The reward and accuracy charts over the text.
    fn html(&self) -> String {
        let charts: String = [chart::rewards(self), chart::accuracy(self)]
            .iter()
            .flatten()
            .map(chart_html)
            .collect();
        charts + &pre(&self.to_string())
    }
}

impl Rich for Diagnostics {}
