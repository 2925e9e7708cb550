//! PPO against a known signal and against pure noise, without a network: each trajectory's
//! pair counts are drawn from θ (as per-image sampling does) and its reward is computed from
//! them. These are the checks that would catch a PPO that learns nothing, and a null that
//! cries wolf. Pass rates are over seeds, measured (see each test), never one lucky seed.

use augwise::augment::space::{NUM_OPS, NUM_PAIRS};
use augwise::rng::Rng;
use augwise::search::null::{judge, simulate, NullInput};
use augwise::search::ppo::{self, PpoConfig, PpoState, Trajectory};

const SEEDS: u64 = 20;
const UPDATES: usize = 12;
const TRAJECTORIES: usize = 8;
/// Pair applications per trajectory (2,000 images × 2 fine-tune epochs).
const APPLICATIONS: u64 = 4000;
/// Reward noise between trajectories of one θ (half a point, as measured on Fashion-MNIST).
const SIGMA: f64 = 0.005;

/// The rewarded pairs: op1 one of four ops (144 of 1,296 pairs).
fn rewarded(k: usize) -> bool {
    [3, 11, 20, 30].contains(&(k / NUM_OPS))
}

fn rewarded_mass(state: &PpoState) -> f64 {
    let d = state.theta.distribution().unwrap();
    (0..NUM_PAIRS).filter(|&k| rewarded(k)).map(|k| d.probs()[k]).sum()
}

/// A search of `UPDATES` updates. Reward = 70% + effect × (share of rewarded pairs − 1/9)
/// + noise; `effect` 0 is pure noise.
fn search(seed: u64, effect: f64) -> (PpoState, Vec<NullInput>) {
    let cfg = PpoConfig::default();
    let mut rng = Rng::new(seed);
    let mut state = PpoState::default();
    let mut inputs = Vec::new();
    for _ in 0..UPDATES {
        let probs = state.theta.distribution().unwrap().probs().to_vec();
        let ts: Vec<Trajectory> = (0..TRAJECTORIES)
            .map(|i| {
                let counts = rng.multinomial(APPLICATIONS, &probs);
                let share = counts.iter().enumerate().filter(|(k, _)| rewarded(*k)).map(|(_, &c)| c as f64).sum::<f64>() / APPLICATIONS as f64;
                let reward = 0.70 + effect * (share - 1.0 / 9.0) + SIGMA * rng.normal();
                Trajectory { seed: i as u64, reward, accuracies: vec![reward], counts, seconds: 0.0 }
            })
            .collect();
        let out = ppo::update(&mut state, &ts, &cfg).unwrap();
        inputs.push(NullInput { rewards: out.rewards, applications: out.applications });
    }
    (state, inputs)
}

/// Measured over seeds 0–99: the rewarded pairs gain in 99 of 100 (their mass goes from
/// 11.1% to a median 14.8%, range 10.4–21.4%); 20 of 20 for the seeds here. An inverted
/// ratio, a flipped advantage or counts that stop reaching the update fail this.
#[test]
fn ppo_raises_rewarded_pairs_in_at_least_95_percent_of_seeds() {
    let uniform = 1.0 / 9.0;
    let raised: Vec<bool> = (0..SEEDS).map(|s| rewarded_mass(&search(s, 1.0).0) > uniform).collect();
    let n = raised.iter().filter(|&&r| r).count();
    assert!(n as f64 >= 0.95 * SEEDS as f64, "rewarded pairs gained in {n} of {SEEDS} seeds: {raised:?}");
}

/// The null's false-alarm rate: a search on rewards that carry no information, judged
/// against 60 null searches, says "found something" in at most 10% of seeds (measured: 3 of
/// 100 seeds, 0 of the 20 here, the smallest p 0.098; nominal ≤ 5%, Bonferroni over the KL
/// and op-marginal tests). Note what it does not claim: at this scale (12 updates × 8
/// trajectories, reward noise 0.5 points) the rewarded family's rise above is real in 99% of
/// seeds yet beyond the null in only ~0–5% — the null guards against noise, it cannot
/// conjure power.
#[test]
fn a_noise_only_search_rarely_passes_its_found_something_check() {
    let mut found = 0;
    for s in 0..SEEDS {
        let (state, inputs) = search(1000 + s, 0.0);
        let null = simulate(&inputs, &PpoConfig::default(), 60, 77 + s, &mut |_| true).unwrap();
        let report = judge(&state.theta, UPDATES, &null).unwrap();
        found += usize::from(report.found);
    }
    assert!(found as f64 <= 0.10 * SEEDS as f64, "noise judged as signal in {found} of {SEEDS} seeds");
}

