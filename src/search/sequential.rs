//! An anytime-valid paired test, for a `compare` that stops as soon as the evidence suffices.
//!
//! The fixed-k test (`stats::sign_flip_p`) is valid only if k is chosen before looking: peeking
//! after every pair and stopping at the first p < 0.05 rejects a true null far more often than
//! 5%. A test martingale does not have that problem. Under the same null as the exact
//! sign-flip test — each paired difference is symmetric about 0 given the ones before it —
//! any odd function of the next difference has mean 0, so betting on it,
//!
//! ```text
//! E_t = Π_{i ≤ t} (1 + λ_i · f_i),   f_i = clamp(d_i / s_i, −1, 1),
//! ```
//!
//! with a scale s_i and a stake λ_i ∈ [−c, c] fixed from d_1..d_{i−1} alone, is a nonnegative
//! martingale with E_0 = 1. Ville's inequality bounds the chance it *ever* reaches 1/α by α,
//! however often it is looked at: stop the first time E_t ≥ 1/α and the error rate is at most α
//! (`tests` below measure it). Betting in both directions makes the test two-sided; the stake
//! follows the past bets' mean over their second moment (the "aGRAPA" plug-in of Waudby-Smith
//! and Ramdas, 2023), clipped to ±c so one adverse pair cannot wipe the wealth out.
//!
//! Honest cost: anytime validity is paid in power. The wealth grows at most 1.75× a pair, so no
//! comparison stops before 7 pairs, where the fixed test can decide at 6; and at a fixed budget
//! the fixed test is more powerful (`examples/sequential_power.rs`: at an effect of 1 sd, 0.66
//! power at k = 8 for the fixed test vs 0.05 here, and at up to 30 pairs 0.96 power here using
//! 14.8 pairs on average). What it buys is not having to choose k for an effect of unknown size:
//! large effects stop near 8 pairs, small ones go on towards the maximum.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// The largest stake: a pair against the bet keeps at least 1 − c of the wealth.
const MAX_STAKE: f64 = 0.75;

/// The e-process over paired differences, fed one difference at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignFlipEProcess {
    /// E_t: the evidence against "no difference" (reject at 1/α).
    pub wealth: f64,
    /// Pairs seen.
    pub n: usize,
    /// Σ |d| of the pairs seen: their mean is the next difference's scale.
    sum_abs: f64,
    /// Σ f and Σ f² of the bets so far, for the next stake.
    sum_f: f64,
    sum_f2: f64,
}

impl Default for SignFlipEProcess {
    fn default() -> Self {
        Self {
            wealth: 1.0,
            n: 0,
            sum_abs: 0.0,
            sum_f: 0.0,
            sum_f2: 0.0,
        }
    }
}

impl SignFlipEProcess {
    /// The next difference's scale: the mean |d| so far (a past-only choice, as validity needs;
    /// the mean rather than the max, so a typical difference bets near ±1).
    fn scale(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum_abs / self.n as f64
        }
    }

    /// The stake on the next pair, from the pairs before it only.
    fn stake(&self) -> f64 {
        if self.n == 0 || self.scale() == 0.0 {
            return 0.0; // the first pair sets the scale; nothing to bet with yet
        }
        let n = self.n as f64;
        let (mean, second) = (self.sum_f / n, self.sum_f2 / n);
        // Shrunk toward 0 by one pseudo-observation at f = 0, so one lucky pair is no certainty.
        let shrunk = mean * n / (n + 1.0);
        (shrunk / second.max(1e-12)).clamp(-MAX_STAKE, MAX_STAKE)
    }

    /// Take the next paired difference; returns the wealth after it. A non-finite difference
    /// is skipped (a diverged trajectory carries no evidence).
    pub fn push(&mut self, d: f64) -> f64 {
        if !d.is_finite() {
            return self.wealth;
        }
        let (lambda, scale) = (self.stake(), self.scale());
        let f = if scale > 0.0 { (d / scale).clamp(-1.0, 1.0) } else { 0.0 };
        self.wealth *= 1.0 + lambda * f;
        if scale > 0.0 {
            self.sum_f += f;
            self.sum_f2 += f * f;
        }
        self.sum_abs += d.abs();
        self.n += 1;
        self.wealth
    }

    /// Has the evidence crossed 1/α? Valid at every t at once (Ville's inequality).
    pub fn rejects(&self, alpha: f64) -> bool {
        self.wealth >= 1.0 / alpha
    }

    /// The anytime-valid p-value: min(1, 1 / sup E), here of the current wealth (callers keep
    /// the running sup by stopping at the first crossing).
    pub fn p(&self) -> f64 {
        (1.0 / self.wealth).min(1.0)
    }
}

/// Monitor `diffs` one at a time from the start, stopping at the first crossing of 1/α:
/// the pairs used and whether it stopped (for simulations and for `compare`'s report).
pub fn first_crossing(diffs: &[f64], alpha: f64) -> (usize, bool) {
    let mut e = SignFlipEProcess::default();
    for (i, &d) in diffs.iter().enumerate() {
        e.push(d);
        if e.rejects(alpha) {
            return (i + 1, true);
        }
    }
    (diffs.len(), false)
}

/// Share of `runs` simulated monitored comparisons — up to `max` pairs, differences drawn by
/// `draw`, looked at after every pair — that stop with a rejection at `alpha`, and the mean
/// number of pairs they used. Seeded: the same arguments give the same figures.
pub fn simulate(draw: impl Fn(&mut Rng) -> f64, runs: usize, max: usize, alpha: f64, seed: u64) -> (f64, f64) {
    let mut rng = Rng::new(seed);
    let (mut hits, mut used) = (0usize, 0usize);
    let mut d = vec![0.0; max];
    for _ in 0..runs {
        d.iter_mut().for_each(|x| *x = draw(&mut rng));
        let (n, stopped) = first_crossing(&d, alpha);
        hits += usize::from(stopped);
        used += n;
    }
    (hits as f64 / runs.max(1) as f64, used as f64 / runs.max(1) as f64)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    fn simulate(draw: impl Fn(&mut Rng) -> f64, runs: usize, max: usize, seed: u64) -> (f64, f64) {
        super::simulate(draw, runs, max, 0.05, seed)
    }

    /// Under the null, looked at after every one of 100 pairs, the test rejects at most 5% of
    /// the time (Ville's bound); measured over 4000 runs per shape of noise, with three
    /// binomial standard errors (1%) of allowance. Peeking at the fixed-k sign-flip test the
    /// same way rejects far more often, which is why a compare that stops early needs this.
    #[test]
    fn monitored_after_every_pair_the_error_rate_stays_within_alpha() {
        let normal = |r: &mut Rng| r.normal();
        let heavy = |r: &mut Rng| {
            let (a, b) = (r.normal(), r.normal());
            a * b * 3.0 // symmetric, heavy-tailed
        };
        let lumpy = |r: &mut Rng| if r.normal() > 0.0 { 1.0 } else { -1.0 } * if r.normal() > 1.0 { 5.0 } else { 0.2 };
        for (name, rate) in [
            ("normal", simulate(normal, 4000, 100, 1).0),
            ("heavy-tailed", simulate(heavy, 4000, 100, 2).0),
            ("two-scale", simulate(lumpy, 4000, 100, 3).0),
        ] {
            assert!(rate <= 0.06, "{name}: rejected {rate} of true nulls");
        }
        // The naive alternative: the fixed-k exact test, peeked at after every pair from 6 on.
        let mut rng = Rng::new(4);
        let mut naive = 0usize;
        for _ in 0..500 {
            let d: Vec<f64> = (0..20).map(|_| rng.normal()).collect();
            naive += usize::from((6..=20).any(|k| super::super::stats::sign_flip_p(&d[..k]) < 0.05));
        }
        assert!(
            naive as f64 / 500.0 > 0.08,
            "peeking at the fixed test should inflate its error rate"
        );
    }

    /// A large effect stops early, a small one goes on: the point of a sequential compare.
    #[test]
    fn large_differences_stop_early_and_small_ones_need_more_pairs() {
        let (power_big, n_big) = simulate(|r| 2.0 + r.normal(), 2000, 30, 5);
        let (power_small, n_small) = simulate(|r| 0.5 + r.normal(), 2000, 30, 6);
        assert!(
            power_big > 0.95 && n_big < 10.0,
            "effect 2 sd: power {power_big}, mean stop {n_big}"
        );
        assert!(
            n_small > n_big && power_small < power_big,
            "effect 0.5 sd: {power_small}, {n_small}"
        );
        // Wealth is multiplicative and never negative: a lost bet costs at most 75%.
        let mut e = SignFlipEProcess::default();
        for d in [1.0, 1.0, 1.0, -1.0, f64::NAN, -1.0] {
            let before = e.wealth;
            e.push(d);
            assert!(e.wealth >= before * (1.0 - MAX_STAKE) - 1e-15 && e.wealth > 0.0);
        }
        assert_eq!(e.n, 5, "a NaN difference is skipped");
    }
}
