//! Resolution per minute: the smallest difference `compare` detects with 80% power within
//! 5 minutes, and the time it takes to reach p < 0.05 for two reference comparisons, today and
//! with each lever that could sharpen it — all measured on the same trajectories in one run.
//!
//!     cargo bench --bench resolution -- [k] [out.json]        # measure, then analyse (k = 12: ~25 min)
//!     cargo bench --bench resolution -- analyse out.json      # analyse a saved measurement
//!     cargo bench --bench resolution -- analyse docs/data/resolution-2026-12-06.json.gz
//!
//! Data: Fashion-MNIST as `make run` has it (data/fashion-mnist); the `cpu` preset's stage 1
//! (2,000 search-train images, ResNet-20, 8 epochs), with 2,000 validation images instead of
//! 500 and 3 fine-tune epochs instead of 2. Every probe trajectory (k each of `none`,
//! `aws:uniform`, `autoaugment:cifar10`, in both data orders) records every validation image's
//! outcome (right or wrong, cross-entropy) after every epoch, so one set of trajectories
//! answers every lever that does not change training:
//! - validation size: nested random subsets of 250…2000 of the 2,000 images (the validation set
//!   never changes training, so a 500-image reward here *is* the preset's 500-image reward);
//! - the reward's definition: best-two (the method), last epoch, mean over epochs, and the
//!   negated cross-entropy of the last epoch;
//! - fine-tune length: the first E of 3 epochs (a constant rate, so the first 2 epochs of a
//!   3-epoch trajectory are the 2-epoch trajectory);
//! - the data order: each trajectory's own (the default) or stage 1's, as two passes;
//! - a sequential compare: the anytime-valid test's mean stopping time at the measured effect
//!   and spread (simulated on normal differences, up to the default 20 pairs).
//!
//! Coupling the policies' own draws does not apply to these comparisons: `none` draws nothing.
//!
//! Per lever and comparison it prints the mean difference, the sd of one paired difference,
//! the seconds a pair costs (train + validation, measured), the pairs 5 minutes buy, the
//! minimum detectable difference (MDD) at 80% power with them (exact sign-flip, simulated), and
//! the expected time to p < 0.05 (pairs for 80% power × seconds per pair). It also splits the
//! sd into the validation sample's part (each pair's own per-image disagreement / n) and the
//! rest — the training's own, which no larger validation set removes.
//! Runtime on 2 CPU cores: stage 1 ≈ 30 s, then ≈ 20 s per trajectory (three validations of
//! 2,000 images per epoch), 6·k trajectories: ≈ 25 min at k = 12.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::time::Instant;

use anyhow::{Context, Result};
use augwise::data::SplitConfig;
use augwise::policy::Policy;
use augwise::rng::Rng;
mod common;

use augwise::search::stats::{trajectories_needed, Estimate, ALPHA};
use augwise::search::{sequential, DataOrder, SearchConfig, Session, EARLY_MAX_DEFAULT};
use common::{machine, mdd_sd};
use serde::{Deserialize, Serialize};

const POLICIES: [&str; 3] = ["none", "aws:uniform", "autoaugment:cifar10"];
const VAL: i64 = 2000;
const EPOCHS: usize = 3;
const BUDGET_S: f64 = 300.0;

/// One trajectory's record: per epoch, each validation image's outcome.
#[derive(Serialize, Deserialize)]
struct Record {
    /// [epoch][image]: 1 if right.
    correct: Vec<Vec<u8>>,
    /// [epoch][image]: cross-entropy, rounded to 1e-4.
    loss: Vec<Vec<f32>>,
    /// Seconds of training alone (validation and recording taken out).
    train_s: f64,
    /// The trajectory's reward as the session computed it (best two of its epochs' accuracy).
    reward: f64,
}

#[derive(Serialize, Deserialize)]
struct Measurement {
    machine: String,
    /// Seconds to score the 2,000 validation images once.
    eval_s: f64,
    stage1_s: f64,
    /// [order][policy][trajectory].
    orders: Vec<(String, Vec<Vec<Record>>)>,
}

fn measure(k: usize) -> Result<Measurement> {
    let config = SearchConfig::cpu()
        .with_split(
            SplitConfig::default()
                .with_limit(Some(2000 + VAL))
                .with_val_fraction(VAL as f64 / (2000 + VAL) as f64)
                .with_test_limit(Some(100)),
        )
        .with_finetune(EPOCHS, Some(0.02));
    let dir = std::env::temp_dir().join(format!("augwise-resolution-{}", std::process::id()));
    let mut s = Session::new(config, &dir)?;
    let t0 = Instant::now();
    s.pretrain(None)?;
    let stage1_s = t0.elapsed().as_secs_f64();
    println!(
        "stage 1: {} search-train / {} validation images, {stage1_s:.0}s",
        s.splits.train.len(),
        s.splits.val.len()
    );
    // Its own handle on the validation images: the per-epoch hook reads them while the session
    // trains (one copy for the whole run).
    let val = s.splits.val.to_device(s.device.device)?;
    let mut eval_s = Vec::new();
    let mut orders = Vec::new();
    for order in [DataOrder::PerTrajectory, DataOrder::Shared] {
        s.config.data_order = order;
        let mut by_policy = Vec::new();
        for spec in POLICIES {
            let policy: Policy = spec.parse()?;
            let mut records = Vec::new();
            for i in 0..k {
                let (mut correct, mut loss, mut hook_s) = (Vec::new(), Vec::new(), 0.0);
                let t = s.probe_observed(&policy, s.probe_seeds(i), i, &mut |epoch, trainer| {
                    let t0 = Instant::now();
                    let o = trainer.evaluate_each(&val)?;
                    if i == 0 && epoch == 0 {
                        // The runner's own validation, timed alone (once per policy and order).
                        let t1 = Instant::now();
                        trainer.evaluate(&val)?;
                        eval_s.push(t1.elapsed().as_secs_f64());
                    }
                    hook_s += t0.elapsed().as_secs_f64();
                    correct.push(o.correct.iter().map(|&c| u8::from(c)).collect());
                    loss.push(o.loss.iter().map(|&l| ((l * 1e4).round() / 1e4) as f32).collect());
                    Ok(())
                })?;
                let eval_once = eval_s.iter().sum::<f64>() / eval_s.len().max(1) as f64;
                records.push(Record {
                    correct,
                    loss,
                    train_s: t.seconds - hook_s - EPOCHS as f64 * eval_once,
                    reward: t.reward,
                });
                println!(
                    "  {order:?} {spec:<22} trajectory {:>2}/{k}: reward {:.2}%, {:.1}s",
                    i + 1,
                    100.0 * t.reward,
                    t.seconds
                );
            }
            by_policy.push(records);
        }
        orders.push((format!("{order:?}"), by_policy));
    }
    std::fs::remove_dir_all(&dir).ok();
    eval_s.sort_by(f64::total_cmp);
    Ok(Measurement {
        machine: machine(),
        eval_s: eval_s[eval_s.len() / 2],
        stage1_s,
        orders,
    })
}

/// How a reward is read off a trajectory's record.
#[derive(Clone, Copy, Debug)]
enum Reward {
    /// Mean of the best two epochs' accuracy (the method's).
    BestTwo,
    Last,
    Mean,
    /// Minus the last epoch's mean cross-entropy.
    NegLoss,
}

/// A lever setting: validation images, fine-tune epochs, reward.
#[derive(Clone, Copy)]
struct Setting {
    label: &'static str,
    n: usize,
    epochs: usize,
    reward: Reward,
}

/// Per-image scores of one trajectory under `s` (their mean over the subset is the reward),
/// for the subset `idx`: an accuracy reward's score is a mean of 0/1 outcomes over the epochs
/// it uses (best-two picks its epochs by subset accuracy).
fn scores(r: &Record, s: Setting, idx: &[usize]) -> Vec<f64> {
    let acc = |e: usize| idx.iter().map(|&i| f64::from(r.correct[e][i])).sum::<f64>() / idx.len() as f64;
    let over = |epochs: &[usize]| -> Vec<f64> {
        idx.iter()
            .map(|&i| epochs.iter().map(|&e| f64::from(r.correct[e][i])).sum::<f64>() / epochs.len() as f64)
            .collect()
    };
    match s.reward {
        Reward::BestTwo => {
            let mut e: Vec<usize> = (0..s.epochs).collect();
            e.sort_by(|&a, &b| acc(b).total_cmp(&acc(a)));
            e.truncate(2);
            over(&e)
        }
        Reward::Last => over(&[s.epochs - 1]),
        Reward::Mean => over(&(0..s.epochs).collect::<Vec<_>>()),
        Reward::NegLoss => idx.iter().map(|&i| -f64::from(r.loss[s.epochs - 1][i])).collect(),
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn analyse(m: &Measurement) {
    // The median, so a trajectory slowed by other work on the machine does not set the cost.
    let train_epoch_s = {
        let mut all: Vec<f64> = m
            .orders
            .iter()
            .flat_map(|(_, p)| p.iter().flatten().map(|r| r.train_s / EPOCHS as f64))
            .collect();
        all.sort_by(f64::total_cmp);
        all.get(all.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let eval_image_s = m.eval_s / VAL as f64;
    println!(
        "\nmachine: {}; stage 1 {:.0}s; one fine-tune epoch on 2,000 images {:.2}s; validation {:.2} ms per image",
        m.machine,
        m.stage1_s,
        train_epoch_s,
        1e3 * eval_image_s
    );
    let mut perm: Vec<usize> = (0..VAL as usize).collect();
    let mut rng = Rng::new(7);
    for i in (1..perm.len()).rev() {
        perm.swap(i, (rng.next_f64() * (i + 1) as f64) as usize % (i + 1));
    }
    let today = Setting {
        label: "today: 500 val, best-two of 2 epochs",
        n: 500,
        epochs: 2,
        reward: Reward::BestTwo,
    };
    let settings = [
        today,
        Setting {
            label: "validation 250",
            n: 250,
            ..today
        },
        Setting {
            label: "validation 1000",
            n: 1000,
            ..today
        },
        Setting {
            label: "validation 2000",
            n: 2000,
            ..today
        },
        Setting {
            label: "reward: last epoch",
            reward: Reward::Last,
            ..today
        },
        Setting {
            label: "reward: −loss (last epoch)",
            reward: Reward::NegLoss,
            ..today
        },
        Setting {
            label: "fine-tune 1 epoch",
            epochs: 1,
            ..today
        },
        Setting {
            label: "fine-tune 3, best-two",
            epochs: 3,
            ..today
        },
        Setting {
            label: "fine-tune 3, mean",
            epochs: 3,
            reward: Reward::Mean,
            ..today
        },
        Setting {
            label: "fine-tune 1, val 2000",
            epochs: 1,
            n: 2000,
            ..today
        },
        Setting {
            label: "−loss, val 2000",
            n: 2000,
            reward: Reward::NegLoss,
            ..today
        },
        Setting {
            label: "−loss, 1 epoch, val 2000",
            n: 2000,
            epochs: 1,
            reward: Reward::NegLoss,
        },
    ];
    for (order, policies) in &m.orders {
        println!(
            "\n== data order {order}: k = {} pairs per comparison",
            policies[0].len()
        );
        println!(
            "{:<38} {:<22} {:>9} {:>7} {:>6} {:>7} {:>5} {:>9} {:>10} {:>10} {:>9}",
            "lever", "comparison", "Δ", "sd(d)", "val%", "s/pair", "k5m", "MDD5m", "t(p<.05)", "seq t", "seq pow"
        );
        for s in settings {
            let idx = &perm[..s.n];
            let points = !matches!(s.reward, Reward::NegLoss);
            let unit = if points { 100.0 } else { 1.0 };
            let pair_s = 2.0 * s.epochs as f64 * (train_epoch_s + s.n as f64 * eval_image_s);
            let k5 = (BUDGET_S / pair_s).floor() as usize;
            for (j, name) in [(1, "none − aws:uniform"), (2, "none − autoaugment")] {
                let (a, b) = (&policies[0], &policies[j]);
                let mut diffs = Vec::new();
                let mut meas_var = Vec::new();
                for (ra, rb) in a.iter().zip(b) {
                    let (sa, sb) = (scores(ra, s, idx), scores(rb, s, idx));
                    let per: Vec<f64> = sa.iter().zip(&sb).map(|(x, y)| x - y).collect();
                    diffs.push(mean(&per));
                    meas_var.push(Estimate::of(&per).sd.powi(2) / s.n as f64);
                }
                let e = Estimate::of(&diffs);
                let share = (mean(&meas_var) / e.sd.powi(2).max(1e-18)).min(9.99);
                let mdd = mdd_sd(k5) * e.sd * unit;
                let need = trajectories_needed(e.mean, e.sd, 1);
                let t_need = need.map_or("—".to_owned(), |n| {
                    if n > augwise::search::stats::NEEDED_MAX {
                        "> 200 pairs".to_owned()
                    } else {
                        format!("{:.0}s", n as f64 * pair_s)
                    }
                });
                let effect = (e.mean / e.sd.max(1e-12)).abs();
                let (pow, pairs) = sequential::simulate(|r| effect + r.normal(), 2000, EARLY_MAX_DEFAULT, ALPHA, 9);
                println!(
                    "{:<38} {:<22} {:>+9.3} {:>7.3} {:>5.0}% {:>7.1} {:>5} {:>9} {:>10} {:>9.0}s {:>9.2}",
                    s.label,
                    name,
                    e.mean * unit,
                    e.sd * unit,
                    100.0 * share,
                    pair_s,
                    k5,
                    if mdd.is_finite() {
                        format!("{mdd:.2}")
                    } else {
                        "—".into()
                    },
                    t_need,
                    pairs * pair_s,
                    pow
                );
            }
        }
    }
    println!(
        "\nΔ, sd(d), MDD5m in accuracy points (−loss rows: nats); val%: the share of a difference's variance that is the validation sample's; k5m: pairs in 5 min; t(p<.05): pairs for 80% power at the observed Δ × s/pair; seq: the early-stopping compare (≤ 20 pairs, the default) at the observed Δ/sd, mean time and power"
    );
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.first().map(String::as_str) == Some("analyse") {
        let path = args.get(1).context("analyse FILE")?;
        let bytes = std::fs::read(path)?;
        let m: Measurement = if path.ends_with(".gz") {
            serde_json::from_reader(flate2::read::GzDecoder::new(bytes.as_slice()))?
        } else {
            serde_json::from_slice(&bytes)?
        };
        analyse(&m);
        return Ok(());
    }
    let k: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(12);
    let out = args.get(1).cloned().unwrap_or_else(|| "target/resolution.json".into());
    let m = measure(k)?;
    std::fs::write(&out, serde_json::to_vec(&m)?)?;
    println!("measurement saved to {out} (`cargo bench --bench resolution -- analyse {out}`)");
    analyse(&m);
    Ok(())
}
