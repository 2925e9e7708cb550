//! How many trajectories does an AWS search need before its judge can tell signal from
//! noise? A simulation of PPO's arithmetic (no network), calibrated by what `compare_power`
//! measured on Fashion-MNIST: each trajectory's pair counts are drawn from θ per image (or,
//! under the `pairs_per_trajectory` variant, among K pairs drawn from θ up front), and its
//! reward is a base accuracy, minus `harm` points per unit share of a label-breaking family
//! of pairs, plus Gaussian noise of `sigma` points (one θ's trajectory-to-trajectory spread).
//!
//!     cargo run --release --example signal_study -- [harm] [sigma] [family_ops] [seeds] [K,K..] [UxT,UxT..]
//!
//! Defaults: harm 16.4 points (none − pair:Invert+Equalize on the cpu preset), sigma 1.1
//! points (uniform θ's trajectories), family = pairs containing Invert (71 of 1,296), 8
//! seeds, K = 0 (per image, the paper) and 16, sizes 8x4 (cpu preset), 20x8 (gpu preset), 50x8,
//! 150x8 and 350x8 (the paper); 40 null searches each. Prints, per (updates,
//! trajectories, K): the family's mass after the search, how often the verdict (the score
//! test) and θ's movement alone judge the search beyond noise. Runtime: ~5 min on 2 cores.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use augwise::augment::space::{pair_ops, NUM_PAIRS};
use augwise::rng::Rng;
use augwise::search::null::{judge, score, simulate, trajectory_counts, NullInput};
use augwise::search::ppo::{self, PpoConfig, PpoState, Trajectory};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let harm: f64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(16.4) / 100.0;
    let sigma: f64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1.1) / 100.0;
    // Invert is op 11 of the 36 (augwise::augment::space order).
    let family: Vec<usize> = args
        .get(2)
        .map(|s| s.split(',').map(|x| x.parse()).collect::<Result<_, _>>())
        .transpose()?
        .unwrap_or_else(|| vec![11]);
    let seeds: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let ks: Vec<usize> = args
        .get(4)
        .map(|s| s.split(',').map(|x| x.parse()).collect::<Result<_, _>>())
        .transpose()?
        .unwrap_or_else(|| vec![0, 16]);
    let sizes: Vec<(usize, usize)> = match args.get(5) {
        Some(list) => list
            .split(',')
            .map(|x| {
                let (u, t) = x
                    .split_once('x')
                    .ok_or_else(|| anyhow::anyhow!("size `{x}`: expected UPDATESxTRAJECTORIES, e.g. 20x8"))?;
                Ok((u.parse()?, t.parse()?))
            })
            .collect::<anyhow::Result<_>>()?,
        None => vec![(8, 4), (20, 8), (50, 8), (150, 8), (350, 8)],
    };
    let applications = 4000u64; // 2,000 images × 2 fine-tune epochs (cpu preset)
    let in_family = |k: usize| {
        let (a, b) = pair_ops(k);
        family.contains(&a) || family.contains(&b)
    };
    let uniform_mass = (0..NUM_PAIRS).filter(|&k| in_family(k)).count() as f64 / NUM_PAIRS as f64;
    println!("harm {:.1} points per unit share, σ {:.2} points, family of {:.1}% of pairs, {applications} applications per trajectory, {seeds} seeds", 100.0 * harm, 100.0 * sigma, 100.0 * uniform_mass);
    println!(
        "{:>8} {:>13} {:>4} {:>26} {:>22} {:>22}",
        "updates", "trajectories", "K", "family mass (median)", "verdict: found", "θ movement alone"
    );
    for &(updates, trajectories) in &sizes {
        for &k in &ks {
            let cfg = PpoConfig::default();
            let (mut masses, mut found, mut moved) = (Vec::new(), 0, 0);
            for seed in 0..seeds {
                let mut rng = Rng::new(seed);
                let mut state = PpoState::default();
                let mut inputs = Vec::new();
                for _ in 0..updates {
                    let dist = state.theta.distribution()?;
                    let ts: Vec<Trajectory> = (0..trajectories)
                        .map(|i| {
                            let counts = trajectory_counts(&dist, applications, k, &mut rng);
                            let share = counts
                                .iter()
                                .enumerate()
                                .filter(|(p, _)| in_family(*p))
                                .map(|(_, &c)| c as f64)
                                .sum::<f64>()
                                / applications as f64;
                            let reward = 0.70 - harm * share + sigma * rng.normal();
                            Trajectory {
                                seed: i as u64,
                                reward,
                                accuracies: vec![reward],
                                counts,
                                seconds: 0.0,
                                pairs_drawn: k,
                            }
                        })
                        .collect();
                    let out = ppo::update(&mut state, &ts, &cfg)?;
                    inputs.push(NullInput::of(&out));
                }
                let d = state.theta.distribution()?;
                masses.push(
                    (0..NUM_PAIRS)
                        .filter(|&p| in_family(p))
                        .map(|p| d.probs()[p])
                        .sum::<f64>(),
                );
                let null = simulate(&inputs, &cfg, 40, 1000 + seed, &mut |_| true)?;
                let report = judge(&state.theta, updates, &null, score(&inputs, 2000 + seed))?;
                found += usize::from(report.found);
                moved += usize::from(report.p_movement < 0.05);
            }
            masses.sort_by(f64::total_cmp);
            println!(
                "{updates:>8} {trajectories:>13} {k:>4} {:>10.2}% → {:>6.2}% {:>17} of {seeds} {:>17} of {seeds}",
                100.0 * uniform_mass,
                100.0 * masses[masses.len() / 2],
                found,
                moved
            );
        }
    }
    Ok(())
}
