//! PPO against a known signal and against pure noise, without a network: each trajectory's
//! pair counts are drawn from θ (as per-image sampling does) and its reward is computed from
//! them. These are the checks that would catch a PPO that learns nothing, and a null that
//! cries wolf. Pass rates are over seeds, measured (see each test), never one lucky seed.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use augwise::augment::space::{NUM_OPS, NUM_PAIRS};
use augwise::rng::Rng;
use augwise::search::null::{judge, score, simulate, NullInput};
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
                let share = counts
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| rewarded(*k))
                    .map(|(_, &c)| c as f64)
                    .sum::<f64>()
                    / APPLICATIONS as f64;
                let reward = 0.70 + effect * (share - 1.0 / 9.0) + SIGMA * rng.normal();
                Trajectory {
                    seed: i as u64,
                    reward,
                    accuracies: vec![reward],
                    counts,
                    seconds: 0.0,
                    pairs_drawn: 0,
                }
            })
            .collect();
        let out = ppo::update(&mut state, &ts, &cfg).unwrap();
        inputs.push(NullInput::of(&out));
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
    assert!(
        n as f64 >= 0.95 * SEEDS as f64,
        "rewarded pairs gained in {n} of {SEEDS} seeds: {raised:?}"
    );
}

/// The null's verdict on one search: the score test (primary) and θ's movement.
fn judged(seed: u64, effect: f64) -> augwise::search::NullReport {
    let (state, inputs) = search(seed, effect);
    let null = simulate(&inputs, &PpoConfig::default(), 60, 77 + seed, &mut |_| true).unwrap();
    judge(&state.theta, UPDATES, &null, score(&inputs, 5 + seed)).unwrap()
}

/// The null's false-alarm rate: a search on rewards that carry no information says "found
/// something" in at most 10% of seeds — for the verdict (the score test; nominal 5%,
/// measured 2 of 100 seeds 1000–1099) and for θ's movement alone (measured 3 of 100).
/// `measure_pass_rates` below reproduces the figures.
#[test]
fn a_noise_only_search_rarely_passes_its_found_something_check() {
    let reports: Vec<_> = (0..SEEDS).map(|s| judged(1000 + s, 0.0)).collect();
    let found = reports.iter().filter(|r| r.found).count();
    let moved = reports.iter().filter(|r| r.p_movement < 0.05).count();
    assert!(
        found as f64 <= 0.10 * SEEDS as f64,
        "noise judged as signal in {found} of {SEEDS} seeds"
    );
    assert!(
        moved as f64 <= 0.10 * SEEDS as f64,
        "θ's movement judged beyond noise in {moved} of {SEEDS} seeds"
    );
}

/// Found, with a rewarded op (`op1` of the family, rewards higher) as the strongest.
fn found_and_named(r: &augwise::search::NullReport) -> bool {
    let family: Vec<String> = [3, 11, 20, 30]
        .iter()
        .map(|&o| format!("op1 {}", augwise::augment::space::aws_name(o)))
        .collect();
    r.found
        && r.score
            .as_ref()
            .is_some_and(|sc| family.contains(&sc.ops[0].op) && sc.ops[0].z > 0.0)
}

/// The power the movement test lacks: on the signal PPO learns from above (12 updates × 8,
/// a 144-pair family, noise 0.5 points) the verdict finds it with a rewarded op strongest in
/// at least 70% of seeds (measured: found in 91 of 100, found and named in 90 of
/// 100 — a binomial at 0.9 falls under 14 of 20 with probability < 0.2%); θ's movement alone is
/// beyond its null in only 4 of 100.
#[test]
fn the_score_test_finds_a_signal_the_movement_test_misses() {
    let reports: Vec<_> = (0..SEEDS).map(|s| judged(s, 1.0)).collect();
    let named = reports.iter().filter(|r| found_and_named(r)).count();
    let moved = reports.iter().filter(|r| r.p_movement < 0.05).count();
    assert!(
        named as f64 >= 0.70 * SEEDS as f64,
        "signal found and a rewarded op named first in {named} of {SEEDS} seeds"
    );
    assert!(
        named > moved,
        "the score test should beat θ's movement: {named} vs {moved}"
    );
}

/// Prints the pass rates the tests above quote, over 100 seeds (minutes):
/// `cargo test --release --test ppo_signal -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_pass_rates() {
    for (name, base, effect) in [("noise", 1000, 0.0), ("signal", 0, 1.0)] {
        let reports: Vec<_> = (0..100).map(|s| judged(base + s, effect)).collect();
        let found = reports.iter().filter(|r| r.found).count();
        let named = reports.iter().filter(|r| found_and_named(r)).count();
        let moved = reports.iter().filter(|r| r.p_movement < 0.05).count();
        println!("{name}: verdict (score test) found {found}/100 (a rewarded op strongest: {named}), θ's movement beyond null {moved}/100");
    }
}
