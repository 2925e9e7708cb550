//! How many updates does the faithful AWS search need before θ leaves its noise-only null?
//! A simulation of PPO's arithmetic (no network), calibrated by what `compare_power` measured
//! on Fashion-MNIST: each trajectory's pair counts are drawn from θ per image, and its reward
//! is a base accuracy, minus `harm` points per unit share of a label-breaking family of pairs,
//! plus Gaussian noise of `sigma` points (one θ's trajectory-to-trajectory spread).
//!
//!     cargo run --release --example signal_study -- [harm] [sigma] [family_ops] [seeds]
//!
//! Defaults: harm 16.4 points (none − pair:Invert+Equalize on the cpu preset), sigma 1.1
//! points (uniform θ's trajectories), family = pairs containing Invert (71 of 1,296), 6 seeds,
//! 40 null searches each. Prints, per (updates, trajectories): the family's mass after the
//! search and how often the null judges the search beyond noise. Runtime: a few minutes on 2
//! cores (PPO arithmetic only).

use augwise::augment::space::{pair_ops, NUM_PAIRS};
use augwise::rng::Rng;
use augwise::search::null::{judge, simulate, NullInput};
use augwise::search::ppo::{self, PpoConfig, PpoState, Trajectory};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let harm: f64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(16.4) / 100.0;
    let sigma: f64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1.1) / 100.0;
    // Invert is op 11 of the 36 (augwise::augment::space order).
    let family: Vec<usize> = args.get(2).map(|s| s.split(',').map(|x| x.parse()).collect::<Result<_, _>>()).transpose()?.unwrap_or_else(|| vec![11]);
    let seeds: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(6);
    let applications = 4000u64; // 2,000 images × 2 fine-tune epochs (cpu preset)
    let in_family = |k: usize| {
        let (a, b) = pair_ops(k);
        family.contains(&a) || family.contains(&b)
    };
    let uniform_mass = (0..NUM_PAIRS).filter(|&k| in_family(k)).count() as f64 / NUM_PAIRS as f64;
    println!("harm {:.1} points per unit share, σ {:.2} points, family of {:.1}% of pairs, {applications} applications per trajectory, {seeds} seeds", 100.0 * harm, 100.0 * sigma, 100.0 * uniform_mass);
    println!("{:>8} {:>13} {:>22} {:>24}", "updates", "trajectories", "family mass after", "judged beyond noise");
    for &(updates, trajectories) in &[(8usize, 4usize), (50, 8), (150, 8), (350, 8)] {
        let cfg = PpoConfig::default();
        let (mut masses, mut found) = (Vec::new(), 0);
        for seed in 0..seeds {
            let mut rng = Rng::new(seed);
            let mut state = PpoState::default();
            let mut inputs = Vec::new();
            for _ in 0..updates {
                let probs = state.theta.distribution()?.probs().to_vec();
                let ts: Vec<Trajectory> = (0..trajectories)
                    .map(|i| {
                        let counts = rng.multinomial(applications, &probs);
                        let share = counts.iter().enumerate().filter(|(k, _)| in_family(*k)).map(|(_, &c)| c as f64).sum::<f64>() / applications as f64;
                        let reward = 0.70 - harm * share + sigma * rng.normal();
                        Trajectory { seed: i as u64, reward, accuracies: vec![reward], counts, seconds: 0.0 }
                    })
                    .collect();
                let out = ppo::update(&mut state, &ts, &cfg)?;
                inputs.push(NullInput { rewards: out.rewards, applications: out.applications });
            }
            let d = state.theta.distribution()?;
            masses.push((0..NUM_PAIRS).filter(|&k| in_family(k)).map(|k| d.probs()[k]).sum::<f64>());
            let null = simulate(&inputs, &cfg, 40, 1000 + seed, &mut |_| true)?;
            found += usize::from(judge(&state.theta, updates, &null)?.found);
        }
        masses.sort_by(f64::total_cmp);
        println!(
            "{updates:>8} {trajectories:>13} {:>7.2}% → {:.2}% (median) {:>14} of {seeds}",
            100.0 * uniform_mass,
            100.0 * masses[masses.len() / 2],
            found
        );
    }
    Ok(())
}
