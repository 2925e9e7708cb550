//! An anytime-valid paired test, for a `compare` that stops as soon as the evidence suffices.
//!
//! The fixed-k test (`stats::sign_flip_p`) is valid only if k is chosen before looking: peeking
//! after every pair and stopping at the first p < 0.05 rejects a true null far more often than
//! 5%. A test martingale does not have that problem. Under the same null as the exact
//! sign-flip test — each paired difference is symmetric about 0 given the ones before it —
//! any odd function of the next difference has mean 0, so betting on it,
//!
//! ```text
//! E_t = ½ Π_{i ≤ t} (1 + λ⁺_i · f_i) + ½ Π_{i ≤ t} (1 − λ⁻_i · f_i),   f_i = clamp(d_i / s_i, −1, 1),
//! ```
//!
//! with a scale s_i and stakes λ± ∈ [0, c] fixed from d_1..d_{i−1} alone, is a nonnegative
//! martingale with E_0 = 1 (the mean of two). Ville's inequality bounds the chance it *ever*
//! reaches 1/α by α, however often it is looked at: stop the first time E_t ≥ 1/α and the error
//! rate is at most α (`tests` below measure it). One half bets that A is better, the other that
//! B is: the test is two-sided, and each half may bet from the first pair on (f_1 = sign d_1).
//! Each stake follows its direction's past bets, mean over second moment (the "aGRAPA"
//! plug-in of Waudby-Smith and Ramdas, 2023), with one prior pseudo-bet at `PRIOR_STAKE`,
//! clipped to c so one adverse pair cannot wipe a half out.
//!
//! Inverting the test gives an anytime-valid confidence sequence for the mean difference: the
//! centres m for which the e-process of d − m has never crossed 1/α (`confidence_sequence`).
//!
//! Honest cost: anytime validity is paid in power. Each half grows at most 1.9× a pair and
//! holds half the wealth, so no comparison stops before 7 pairs (the fixed test can decide at
//! 6); at a fixed budget the fixed test is more powerful (`examples/sequential_power.rs`).
//! What it buys is not having to choose k for an effect of unknown size: large effects stop
//! near 7 pairs, small ones go on towards the maximum.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// The largest stake: a pair against a half's bet keeps at least 1 − c of that half.
const MAX_STAKE: f64 = 0.9;
/// The stake each half would take with no evidence yet (one pseudo-observation's worth).
const PRIOR_STAKE: f64 = 0.6;

/// The e-process over paired differences, fed one difference at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignFlipEProcess {
    /// E_t: the evidence against "no difference" (reject at 1/α).
    pub wealth: f64,
    /// The half betting on positive differences (A better), and the one betting on negative.
    up: f64,
    down: f64,
    /// Pairs seen.
    pub n: usize,
    /// Σ |d| of the pairs seen: their mean is the next difference's scale.
    sum_abs: f64,
    /// Σ f and Σ f² of the bets so far, for the next stakes.
    sum_f: f64,
    sum_f2: f64,
}

impl Default for SignFlipEProcess {
    fn default() -> Self {
        Self {
            wealth: 1.0,
            up: 1.0,
            down: 1.0,
            n: 0,
            sum_abs: 0.0,
            sum_f: 0.0,
            sum_f2: 0.0,
        }
    }
}

impl SignFlipEProcess {
    /// The next difference's scale: the mean |d| so far (a past-only choice, as validity needs;
    /// the mean rather than the max, so a typical difference bets near ±1); 0 before any.
    fn scale(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum_abs / self.n as f64
        }
    }

    /// The stakes of the two halves on the next pair, from the pairs before it only.
    fn stakes(&self) -> (f64, f64) {
        let n = self.n as f64;
        let second = (self.sum_f2 + 1.0) / (n + 1.0);
        let stake = |sum: f64| ((sum + PRIOR_STAKE) / (n + 1.0) / second.max(1e-12)).clamp(0.0, MAX_STAKE);
        (stake(self.sum_f), stake(-self.sum_f))
    }

    /// Take the next paired difference; returns the wealth after it. A non-finite difference
    /// is skipped (a diverged trajectory carries no evidence).
    pub fn push(&mut self, d: f64) -> f64 {
        if !d.is_finite() {
            return self.wealth;
        }
        let ((up, down), scale) = (self.stakes(), self.scale());
        // Before a scale exists (or while every difference was 0) the bet is on the sign alone.
        let f = if scale > 0.0 {
            (d / scale).clamp(-1.0, 1.0)
        } else if d == 0.0 {
            0.0
        } else {
            d.signum()
        };
        self.up *= 1.0 + up * f;
        self.down *= 1.0 - down * f;
        self.wealth = 0.5 * (self.up + self.down);
        self.sum_f += f;
        self.sum_f2 += f * f;
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
        anytime_p(self.wealth)
    }

    /// Which way the evidence points: +1 when the half betting on A is ahead, −1 for B.
    pub fn direction(&self) -> f64 {
        if self.up >= self.down {
            1.0
        } else {
            -1.0
        }
    }
}

/// An anytime-valid 1 − α confidence sequence for the centre of the paired differences `diffs`:
/// the centres m whose e-process on d − m has not crossed 1/α at any pair so far. It covers the
/// true centre at every t at once with probability at least 1 − α (under symmetric
/// differences), so it stays honest after an early stop, where the fixed-k interval would not.
/// Computed on a grid: the hull of the surviving centres, out to the nearest rejected grid
/// points on either side; `None` while it is unbounded (before 7 pairs no centre can be
/// rejected, so every centre is plausible). Non-finite differences are skipped, as `push` does.
pub fn confidence_sequence(diffs: &[f64], alpha: f64) -> Option<(f64, f64)> {
    let diffs: Vec<f64> = diffs.iter().copied().filter(|d| d.is_finite()).collect();
    if diffs.len() < 2 {
        return None;
    }
    let lo = diffs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = diffs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1e-9);
    // A fine grid over the data's range and one span beyond, and geometric tails out to ~500
    // spans: a centre just outside the data may survive where a far one does not (its bets are
    // all near ±1), so the tails decide whether the set is bounded at all.
    let step = 3.0 * span / GRID as f64;
    let tail = |j: i32| span * (1.0 + 2f64.powi(j) / 8.0);
    let mut m: Vec<f64> = (0..TAIL).rev().map(|j| lo - tail(j)).collect();
    m.extend((0..=GRID).map(|i| lo - span + step * i as f64));
    m.extend((0..TAIL).map(|j| hi + tail(j)));
    let survives = |c: f64| {
        let shifted: Vec<f64> = diffs.iter().map(|d| d - c).collect();
        !first_crossing(&shifted, alpha).1
    };
    let kept: Vec<usize> = (0..m.len()).filter(|&i| survives(m[i])).collect();
    match (kept.first(), kept.last()) {
        (Some(&a), Some(&b)) if a > 0 && b + 1 < m.len() => Some((m[a - 1], m[b + 1])),
        (Some(_), Some(_)) => None,
        // Nothing survives on the grid: the survivors lie between two grid points.
        _ => Some((lo, hi)),
    }
}

/// Grid points across the differences' range (and one range beyond) the sequence is computed on.
const GRID: usize = 400;
/// Geometric grid points beyond that on each side.
const TAIL: i32 = 13;

/// The anytime-valid p-value of evidence `wealth`: min(1, 1/E).
pub fn anytime_p(wealth: f64) -> f64 {
    (1.0 / wealth).min(1.0)
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

    /// The confidence sequence covers the true centre at every pair at once: over 1000 runs of
    /// 30 pairs, monitored after each, the centre is ever excluded in at most α of them (with
    /// three binomial standard errors of allowance), for normal and heavy-tailed noise; and it
    /// narrows as pairs accrue.
    #[test]
    fn the_confidence_sequence_covers_the_centre_at_every_pair() {
        for (name, centre, draw) in [
            (
                "normal",
                1.5,
                Box::new(|r: &mut Rng| 1.5 + r.normal()) as Box<dyn Fn(&mut Rng) -> f64>,
            ),
            (
                "heavy-tailed",
                -0.4,
                Box::new(|r: &mut Rng| -0.4 + 2.0 * r.normal() * r.normal()),
            ),
        ] {
            let mut rng = Rng::new(11);
            let mut missed = 0;
            let runs = 1000;
            for _ in 0..runs {
                let d: Vec<f64> = (0..30).map(|_| draw(&mut rng)).collect();
                let ever_out = (2..=d.len())
                    .any(|t| confidence_sequence(&d[..t], 0.05).is_some_and(|(lo, hi)| !(lo..=hi).contains(&centre)));
                missed += usize::from(ever_out);
            }
            assert!(
                missed as f64 / runs as f64 <= 0.05 + 3.0 * (0.05f64 * 0.95 / runs as f64).sqrt(),
                "{name}: centre excluded in {missed} of {runs} runs"
            );
        }
        // Seven large, consistent differences (a label-breaking policy's, as notebook 01 sees
        // them): the test stops and the interval is bounded, excluding 0 — a centre just past
        // the data survives where a far one does not, so the set is found out to its far ends.
        let d = [0.33, 0.35, 0.31, 0.36, 0.34, 0.38, 0.32];
        let mut e = SignFlipEProcess::default();
        d.iter().for_each(|&x| {
            e.push(x);
        });
        let (lo, hi) = confidence_sequence(&d, 0.05).expect("bounded after a rejection");
        assert!(
            e.rejects(0.05) && 0.0 < lo && lo < 0.31 && 0.38 < hi,
            "E {} {lo}..{hi}",
            e.wealth
        );

        let mut rng = Rng::new(12);
        let d: Vec<f64> = (0..60).map(|_| 2.0 + rng.normal()).collect();
        let mut widths = Vec::new();
        for t in [10, 60] {
            let (lo, hi) = confidence_sequence(&d[..t], 0.05).unwrap();
            assert!(lo < 2.0 && 2.0 < hi, "pair {t}: {lo}..{hi}");
            widths.push(hi - lo);
        }
        assert!(widths[1] < widths[0], "narrows: {widths:?}");
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
