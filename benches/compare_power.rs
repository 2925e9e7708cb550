//! How many trajectories until a proxy comparison separates two policies at p < 0.05:
//! paired trajectories with common random numbers (augwise's `compare`) against independent
//! trajectories (every trajectory its own data order, crops, flips, Cutout — separate runs,
//! as the official code's are), in one run on the same stage-1 weights. Each design gets the
//! test that fits it: exact sign-flip on paired differences; exact permutation (two-sample)
//! for independent ones. Also prints what the study needs: one policy's reward σ, the
//! effect of each pair, the variance of a paired difference against an unpaired one, and the
//! reward spread of the search's own trajectories with and without shared crops/flips/Cutout.
//!
//!     cargo bench --bench compare_power -- [k_max] [preset] [pair …]
//!
//! Data: Fashion-MNIST as `make run` has it (data/fashion-mnist). Runtime on 2 CPU cores with
//! the cpu preset and k_max 12: about 2 min of stage 1, then ≈ 5 s per trajectory, 4·k_max
//! trajectories per pair. Defaults: k_max 12, preset cpu, pairs `pair:Invert+Equalize`
//! (harmful) and `pair:Rotate:30+ShearX:0.3` (mild).
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::time::Instant;

use anyhow::Result;
use augwise::policy::Policy;
use augwise::search::stats::{two_sample_p, Estimate, PairedTest};
use augwise::search::{Pairing, SearchConfig, Session};

/// The first k (≥ 2) at which `p(k)` < 0.05 with the difference in `sign`'s direction.
fn first_separating(k_max: usize, p_and_diff: impl Fn(usize) -> (Option<f64>, f64), sign: f64) -> Option<usize> {
    (2..=k_max).find(|&k| matches!(p_and_diff(k), (Some(p), d) if p < 0.05 && d * sign > 0.0))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let k_max: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(12);
    let preset = args.get(1).cloned().unwrap_or_else(|| "cpu".into());
    let mut pairs: Vec<String> = args.iter().skip(2).cloned().collect();
    if pairs.is_empty() {
        pairs = vec!["pair:Invert+Equalize".into(), "pair:Rotate:30+ShearX:0.3".into()];
    }
    let dir = tempfile_dir()?;
    let mut s = Session::new(SearchConfig::preset(&preset)?, &dir)?;
    let t0 = Instant::now();
    s.pretrain(None)?;
    println!(
        "preset {preset}: {} search-train / {} val images, stage 1 in {:.0}s",
        s.splits.train.len(),
        s.splits.val.len(),
        t0.elapsed().as_secs_f64()
    );
    let none: Policy = "none".parse()?;
    for pair in &pairs {
        let other: Policy = pair.parse()?;
        println!("\n== none vs {pair}, up to k = {k_max} trajectories per policy");
        let mut rows = Vec::new();
        for pairing in [Pairing::CommonRandomNumbers, Pairing::Independent] {
            let r = s.compare(&[none.clone(), other.clone()], Some(k_max), pairing)?;
            let a: Vec<f64> = r.rewards[0].iter().flatten().copied().collect();
            let b: Vec<f64> = r.rewards[1].iter().flatten().copied().collect();
            let k_used = a.len().min(b.len());
            let diff = Estimate::of(&a).mean - Estimate::of(&b).mean;
            let sign = diff.signum();
            let k = match pairing {
                Pairing::CommonRandomNumbers => first_separating(
                    k_used,
                    |k| {
                        let d: Vec<f64> = a[..k].iter().zip(&b[..k]).map(|(x, y)| x - y).collect();
                        let t = PairedTest::of(&d);
                        (t.p_value, t.difference)
                    },
                    sign,
                ),
                Pairing::Independent => first_separating(
                    k_used,
                    |k| {
                        (
                            two_sample_p(&a[..k], &b[..k]),
                            Estimate::of(&a[..k]).mean - Estimate::of(&b[..k]).mean,
                        )
                    },
                    sign,
                ),
            };
            let per_traj = r.seconds / (2 * k_max) as f64;
            let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
            let sd_diff = Estimate::of(&d).sd;
            let (ea, eb) = (Estimate::of(&a), Estimate::of(&b));
            println!(
                "  {:<22} none {}  {pair} {}  difference {:+.2} points, sd of a difference {:.2} (unpaired would be {:.2})",
                format!("{pairing:?}"),
                ea.percent_short(),
                eb.percent_short(),
                100.0 * diff,
                100.0 * sd_diff,
                100.0 * (ea.sd.powi(2) + eb.sd.powi(2)).sqrt()
            );
            match k {
                Some(k) => println!(
                    "  {:<22} separated at k = {k} per policy: {} trajectories, {:.0}s",
                    "",
                    2 * k,
                    2.0 * k as f64 * per_traj
                ),
                None => println!(
                    "  {:<22} not separated within k = {k_used} ({} trajectories, {:.0}s)",
                    "",
                    2 * k_used,
                    r.seconds
                ),
            }
            rows.push((pairing, k, per_traj));
        }
        if let [(_, Some(kc), tc), (_, Some(ki), ti)] = rows[..] {
            println!(
                "  ratio independent / paired: {:.1}× the trajectories, {:.1}× the wall time",
                ki as f64 / kc as f64,
                (ki as f64 * ti) / (kc as f64 * tc)
            );
        } else if let [(_, Some(kc), _), (_, None, _)] = rows[..] {
            println!(
                "  ratio independent / paired: > {:.1}× (independent did not separate within k = {k_max})",
                k_max as f64 / kc as f64
            );
        }
    }
    // The search's own trajectories: how much of their reward spread is not θ's draws?
    println!("\n== search trajectories under the uniform θ, k = {k_max}");
    for crn in [false, true] {
        s.config.common_random_numbers = crn;
        let e = s.evaluate(Some(k_max))?;
        s.pending.clear();
        let what = if crn {
            "sharing crops, flips, Cutout (common_random_numbers)"
        } else {
            "own crops, flips, Cutout (default)"
        };
        println!(
            "  {what:<54} reward {}  sd {:.2} points",
            e.reward.percent_short(),
            100.0 * e.reward.sd
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("augwise-compare-power-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
