//! What one search trajectory's reward says about θ's draws, measured: the numbers
//! `examples/signal_study.rs` simulates a search with, taken from real trajectories instead of
//! assumed. Under the uniform θ with `pairs_per_trajectory = K` (each trajectory draws K pairs
//! up front, its images among those), n trajectories of the `cpu` preset on Fashion-MNIST; each
//! one's reward against its share of label-breaking (Invert-containing) pair applications:
//! the least-squares slope (points per unit share, with its standard error), the residual sd
//! (the noise a search's judge must see through), and the plain spread of the rewards.
//!
//!     cargo run --release --example search_calibration -- [n] [K]
//!
//! Data: Fashion-MNIST as `make run` has it. Defaults n = 32, K = 16. Runtime on 2 CPU cores:
//! stage 1 ≈ 1 min, then ≈ 15 s per trajectory (≈ 9 min at the defaults). Then feed the slope
//! and residual sd to the simulation:
//!
//!     cargo run --release --example signal_study -- SLOPE SD 11 16 16 8x4,12x8,20x8
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::time::Instant;

use augwise::augment::space::{aws_index, pair_contains, NUM_PAIRS};
use augwise::search::stats::Estimate;
use augwise::search::{SearchConfig, Session};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let k: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let config = SearchConfig::cpu().with_pairs_per_trajectory(k);
    let dir = std::env::temp_dir().join(format!("augwise-calibration-{}", std::process::id()));
    let mut s = Session::new(config, &dir)?;
    let t0 = Instant::now();
    s.pretrain(None)?;
    println!("stage 1: {:.0}s", t0.elapsed().as_secs_f64());
    let t1 = Instant::now();
    let e = s.evaluate(Some(n))?;
    let per = t1.elapsed().as_secs_f64() / n as f64;
    let invert = aws_index("Invert")?;
    let family = |p: usize| pair_contains(p, invert);
    let uniform_share = (0..NUM_PAIRS).filter(|&p| family(p)).count() as f64 / NUM_PAIRS as f64;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for t in &e.trajectories {
        let total: f64 = t.counts.iter().map(|&c| f64::from(c)).sum();
        let inv: f64 = t
            .counts
            .iter()
            .enumerate()
            .filter(|(p, _)| family(*p))
            .map(|(_, &c)| f64::from(c))
            .sum();
        x.push(inv / total.max(1.0));
        y.push(t.reward);
    }
    let (mx, my) = (Estimate::of(&x).mean, Estimate::of(&y).mean);
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx.max(1e-18);
    let resid: Vec<f64> = x.iter().zip(&y).map(|(a, b)| b - my - slope * (a - mx)).collect();
    let dof = (x.len() as f64 - 2.0).max(1.0);
    let sd_resid = (resid.iter().map(|r| r * r).sum::<f64>() / dof).sqrt();
    let se_slope = sd_resid / sxx.sqrt().max(1e-18);
    let r = sxy
        / (sxx * y.iter().map(|b| (b - my).powi(2)).sum::<f64>())
            .sqrt()
            .max(1e-18);
    println!(
        "{} trajectories, K = {k}, {per:.1}s each; Invert-family share {:.2}% ± {:.2}% (uniform {:.2}%)",
        e.trajectories.len(),
        100.0 * mx,
        100.0 * Estimate::of(&x).sd,
        100.0 * uniform_share
    );
    println!(
        "reward {}, sd {:.2} points; slope {:+.1} ± {:.1} points per unit share (r = {r:+.2}); residual sd {:.2} points",
        Estimate::of(&y).percent_short(),
        100.0 * Estimate::of(&y).sd,
        100.0 * slope,
        100.0 * se_slope,
        100.0 * sd_resid
    );
    println!(
        "simulate: cargo run --release --example signal_study -- {:.1} {:.2} {invert} 16 {k} 8x4,12x8,20x8",
        -100.0 * slope,
        100.0 * sd_resid
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
