//! Coupled draws: what the policies' own draws add to the noise of a `compare` between two
//! similar AWS policies, and what coupling them takes away. Each image's pair is drawn by a race
//! keyed by one number from the trajectory's policy stream (`PairDistribution::sample_coupled`),
//! and every image takes the same count of numbers whatever it drew, so two policies on one
//! stream pick the same pair wherever their distributions allow; with streams of their own they
//! agree only by chance.
//!
//!     cargo bench --bench coupling -- [k]        # k pairs per mode (default 10: ≈ 10 min)
//!
//! Data: Fashion-MNIST as `make run` has it (data/fashion-mnist), the `cpu` preset (2,000
//! search-train images, 500 validation, ResNet-20, stage 1 then 2 fine-tune epochs per
//! trajectory). Policies: the uniform θ and θ with the label-breaking family (Invert-containing
//! pairs) at half weight — what a search that learns to avoid it produces, 2.7% of the mass away
//! from uniform. Trajectory i of uniform is paired with trajectory i of that θ on the same data
//! order, crops, flips and Cutout (common random numbers), once with the same policy stream
//! (coupled: the default) and once with a stream of its own (independent). Prints per mode the
//! mean difference, the sd of one difference, the seconds a pair costs and the minimum detectable
//! difference at 80% power within 5 minutes of pairs — and the share of images whose pair agrees.
//! Runtime on 2 CPU cores: stage 1 ≈ 1 min, then 3·k trajectories at ≈ 11 s.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use std::time::Instant;

use anyhow::Result;
use augwise::augment::space::{aws_index, pair_contains, NUM_PAIRS};
use augwise::policy::{PairDistribution, Policy};
use augwise::rng::mix;
use augwise::search::stats::{sample_sd, Estimate};
use augwise::search::{SearchConfig, Session};
use common::{machine, mdd_sd};

const BUDGET_S: f64 = 300.0;

fn half_invert() -> Result<PairDistribution> {
    let invert = aws_index("Invert")?;
    let w: Vec<f64> = (0..NUM_PAIRS)
        .map(|k| if pair_contains(k, invert) { 0.5 } else { 1.0 })
        .collect();
    let sum: f64 = w.iter().sum();
    Ok(PairDistribution::new(w.iter().map(|v| v / sum).collect())?)
}

fn main() -> Result<()> {
    let k: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10);
    let theta = half_invert()?;
    let uniform = PairDistribution::uniform();
    let keys = 200_000u64;
    let agree = (0..keys)
        .filter(|&key| theta.sample_coupled(key) == uniform.sample_coupled(key))
        .count() as f64
        / keys as f64;
    let by_chance: f64 = theta.probs().iter().zip(uniform.probs()).map(|(a, b)| a * b).sum();
    let tv = 0.5
        * theta
            .probs()
            .iter()
            .zip(uniform.probs())
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>();
    println!(
        "θ: the Invert family at half weight (TV {:.1}% from uniform); images whose pair agrees: coupled {:.1}%, independent {:.2}%",
        100.0 * tv,
        100.0 * agree,
        100.0 * by_chance
    );

    let dir = std::env::temp_dir().join(format!("augwise-coupling-{}", std::process::id()));
    let mut s = Session::new(SearchConfig::cpu(), &dir)?;
    let t0 = Instant::now();
    s.pretrain(None)?;
    println!("stage 1: {:.0}s", t0.elapsed().as_secs_f64());
    let theta = Policy::AwsTheta {
        probs: theta,
        source: None,
    };
    let (mut coupled, mut independent, mut secs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..k {
        let seeds = s.probe_seeds(i);
        let own = augwise::search::TrajectorySeeds {
            policy: mix(seeds.policy, 0xC0FFEE),
            ..seeds
        };
        let u = s.probe_observed(&Policy::AwsUniform, seeds, i, &mut |_, _| Ok(()))?;
        let c = s.probe_observed(&theta, seeds, i, &mut |_, _| Ok(()))?;
        let o = s.probe_observed(&theta, own, i, &mut |_, _| Ok(()))?;
        coupled.push(100.0 * (c.reward - u.reward));
        independent.push(100.0 * (o.reward - u.reward));
        secs.extend([u.seconds, c.seconds, o.seconds]);
        println!(
            "pair {:>2}/{k}: uniform {:.2}%, θ coupled {:.2}%, θ independent {:.2}% ({:.0}s so far)",
            i + 1,
            100.0 * u.reward,
            100.0 * c.reward,
            100.0 * o.reward,
            t0.elapsed().as_secs_f64()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    secs.sort_by(f64::total_cmp);
    let pair_s = 2.0 * secs[secs.len() / 2];
    let k5 = (BUDGET_S / pair_s).floor() as usize;
    println!(
        "\nmachine: {}; a pair {pair_s:.1}s (median trajectory × 2), {k5} pairs in 5 min\n",
        machine()
    );
    println!("| draws | Δ θ − uniform (points), 95% CI | sd of a difference | MDD in 5 min (80% power) |");
    println!("|---|---|---|---|");
    for (label, d) in [("coupled (default)", &coupled), ("independent", &independent)] {
        let e = Estimate::of(d);
        let ci = e
            .ci95
            .map_or("no interval".into(), |(lo, hi)| format!("{lo:+.2} to {hi:+.2}"));
        println!(
            "| {label} | {:+.2} ({ci}) | {:.2} | {:.2} |",
            e.mean,
            e.sd,
            mdd_sd(k5) * e.sd
        );
    }
    println!(
        "\nsd ratio coupled / independent: {:.2} (an F test of the two variances on {k} pairs each: variances within a factor of {:.1} are indistinguishable at 95%)",
        sample_sd(&coupled) / sample_sd(&independent),
        f_crit(k)
    );
    Ok(())
}

/// Two-sided 95% F ratio for two samples of k (k − 1 degrees of freedom each), by simulation.
fn f_crit(k: usize) -> f64 {
    let mut rng = augwise::rng::Rng::new(3);
    let mut ratios: Vec<f64> = (0..20_000)
        .map(|_| {
            let a: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
            let b: Vec<f64> = (0..k).map(|_| rng.normal()).collect();
            (sample_sd(&a) / sample_sd(&b)).powi(2)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[(0.975 * ratios.len() as f64) as usize]
}
