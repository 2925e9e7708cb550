//! The uncertainty every number augwise shows comes with: means with 95% intervals across
//! trajectories, paired comparisons (exact sign-flip test for small k, its interval from the
//! same test), the trajectories a comparison needs (simulated power of that test), Holm's
//! correction for several comparisons, rank correlations with Fisher-z intervals and
//! permutation p-values, and empirical p-values against a null distribution. Pure arithmetic, no tensors: cheap enough to run on every
//! report.

use std::fmt;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Two-sided level of every interval and test augwise reports.
pub const ALPHA: f64 = 0.05;

/// A mean over independent measurements (trajectories) with its 95% interval (Student t).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    /// Spread of one measurement (sample standard deviation; 0 for one measurement).
    pub sd: f64,
    pub n: usize,
    /// 95% interval of the mean; `None` with fewer than two measurements.
    pub ci95: Option<(f64, f64)>,
}

impl Default for Estimate {
    /// No measurements (what checkpoints written before intervals existed load as).
    fn default() -> Self {
        Self {
            mean: f64::NAN,
            sd: 0.0,
            n: 0,
            ci95: None,
        }
    }
}

impl Estimate {
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            xs.iter().sum::<f64>() / n as f64
        };
        let sd = sample_sd(xs);
        let ci95 = (n >= 2).then(|| {
            let h = student_t_quantile(1.0 - ALPHA / 2.0, (n - 1) as f64) * sd / (n as f64).sqrt();
            (mean - h, mean + h)
        });
        Self { mean, sd, n, ci95 }
    }

    /// Half the interval's width (`None` without an interval).
    pub fn half_width(&self) -> Option<f64> {
        self.ci95.map(|(lo, hi)| (hi - lo) / 2.0)
    }

    /// `67.12% ± 0.85 (95% CI, sd 0.53, n = 4)` for accuracies (fractions shown as percent).
    pub fn percent(&self) -> String {
        match self.half_width() {
            Some(h) => format!(
                "{:.2}% ± {:.2} (95% CI, sd {:.2}, n = {})",
                100.0 * self.mean,
                100.0 * h,
                100.0 * self.sd,
                self.n
            ),
            None => format!(
                "{:.2}% (n = {}, no interval from one trajectory)",
                100.0 * self.mean,
                self.n
            ),
        }
    }

    /// Compact `67.12 ± 0.85%` for tables.
    pub fn percent_short(&self) -> String {
        match self.half_width() {
            Some(h) => format!("{:.2} ± {:.2}%", 100.0 * self.mean, 100.0 * h),
            None => format!("{:.2}%", 100.0 * self.mean),
        }
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ci95 {
            Some((lo, hi)) => write!(
                f,
                "{:.4} (95% CI {lo:.4} to {hi:.4}, sd {:.4}, n = {})",
                self.mean, self.sd, self.n
            ),
            None => write!(f, "{:.4} (n = {})", self.mean, self.n),
        }
    }
}

/// Sample standard deviation (n − 1); 0 for fewer than two values.
pub fn sample_sd(xs: &[f64]) -> f64 {
    let n = xs.len();
    if n < 2 {
        return 0.0;
    }
    let m = xs.iter().sum::<f64>() / n as f64;
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
}

/// A paired comparison: differences d_i = A_i − B_i of trajectories that share every random
/// number but the policies' own draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    pub n: usize,
    /// Mean difference.
    pub difference: f64,
    pub sd: f64,
    /// 95% interval of the difference from the same test as the p-value, so the two always
    /// agree (p < 0.05 exactly when 0 is outside): the inverted sign-flip test for n ≤ 20, the
    /// paired t interval beyond. `None` where the test can reject nothing at 5% (n ≤ 5: no
    /// sign pattern is rarer than 2 in 2^n), so no finite interval exists.
    pub ci95: Option<(f64, f64)>,
    /// Two-sided p-value; `None` without differences.
    pub p_value: Option<f64>,
    /// `exact sign-flip` (all 2^n sign patterns, n ≤ 20) or `paired t`.
    pub method: String,
}

/// Largest n the sign-flip test enumerates exactly (2^20 patterns, counted by halves).
pub const EXACT_MAX: usize = 20;

impl PairedTest {
    pub fn of(diffs: &[f64]) -> Self {
        let e = Estimate::of(diffs);
        let n = diffs.len();
        let (p_value, ci95, method) = if n == 0 {
            (None, None, "none")
        } else if n <= EXACT_MAX {
            (
                Some(sign_flip_p(diffs)),
                sign_flip_interval(diffs, ALPHA),
                "exact sign-flip",
            )
        } else {
            (Some(paired_t_p(e.mean, e.sd, n)), e.ci95, "paired t")
        };
        Self {
            n,
            difference: e.mean,
            sd: e.sd,
            ci95,
            p_value,
            method: method.into(),
        }
    }
}

/// The signed sums ±x₁ ± x₂ … of `x`: all 2^len sign patterns.
fn signed_sums(x: &[f64]) -> Vec<f64> {
    let mut sums = Vec::with_capacity(1 << x.len());
    sums.push(0.0);
    for &v in x {
        for i in 0..sums.len() {
            let s = sums[i];
            sums[i] = s + v;
            sums.push(s - v);
        }
    }
    sums
}

/// Exact two-sided sign-flip (permutation) test of a zero mean: the share of the 2^n sign
/// patterns whose |Σ s_i d_i| reaches the observed |Σ d_i|. All-zero differences give 1.
/// Counted by meeting in the middle (the patterns of each half, one sorted): 2·2^(n/2) sums
/// instead of 2^n, so power can be simulated with it. Only for n ≤ EXACT_MAX.
pub fn sign_flip_p(d: &[f64]) -> f64 {
    let n = d.len();
    let observed = d.iter().sum::<f64>().abs();
    // Sums equal up to rounding count as reaching the observed one.
    let t = observed - 1e-12 * d.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
    if t <= 0.0 {
        return 1.0;
    }
    let (left, right) = d.split_at(n / 2);
    let mut right = signed_sums(right);
    right.sort_by(f64::total_cmp);
    let mut hits = 0usize;
    for a in signed_sums(left) {
        // a + b ≥ t or a + b ≤ −t (disjoint: t > 0).
        hits += right.len() - right.partition_point(|&b| b < t - a);
        hits += right.partition_point(|&b| b <= -t - a);
    }
    hits as f64 / (1u64 << n) as f64
}

/// The 1 − alpha interval of the mean difference that inverts the sign-flip test: every shift
/// δ the test would not reject on d − δ (the differences' distribution symmetric about δ).
/// Its ends are found by bisection between the mean (p = 1) and just past the extreme
/// difference (p = 2/2^n). `None` where 2/2^n ≥ alpha: the test rejects no shift, and the
/// interval is the whole line.
pub fn sign_flip_interval(d: &[f64], alpha: f64) -> Option<(f64, f64)> {
    let n = d.len();
    if n == 0 || n > EXACT_MAX || 2.0 / (1u64 << n) as f64 >= alpha || d.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mean = d.iter().sum::<f64>() / n as f64;
    let (min, max) = d.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    let pad = 1e-9 * (max - min).max(mean.abs()).max(1e-12);
    let accepts = |delta: f64| {
        let shifted: Vec<f64> = d.iter().map(|x| x - delta).collect();
        sign_flip_p(&shifted) >= alpha
    };
    // (inside, outside): accepted and rejected shifts; the end lies between.
    let end = |mut inside: f64, mut outside: f64| {
        for _ in 0..80 {
            let mid = 0.5 * (inside + outside);
            if mid == inside || mid == outside {
                break;
            }
            if accepts(mid) {
                inside = mid;
            } else {
                outside = mid;
            }
        }
        inside
    };
    Some((end(mean, min - pad), end(mean, max + pad)))
}

/// Two-sided test of equal means for two independent samples (no pairing): the exact
/// permutation test over all C(n+m, n) relabellings while that is ≤ 2·10⁶, Welch's t beyond.
/// The test for trajectories that share no random numbers.
pub fn two_sample_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return None;
    }
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let total: f64 = all.iter().sum();
    let observed = (a.iter().sum::<f64>() / n as f64 - b.iter().sum::<f64>() / m as f64).abs();
    let tol = 1e-12 * all.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
    let combos = (1..=n).fold(1.0f64, |c, i| c * (m + i) as f64 / i as f64);
    if combos <= 2e6 {
        // Enumerate the n-subsets of the pooled values that play "a".
        let (mut hits, mut count) = (0u64, 0u64);
        let mut idx: Vec<usize> = (0..n).collect();
        loop {
            let sa: f64 = idx.iter().map(|&i| all[i]).sum();
            let diff = (sa / n as f64 - (total - sa) / m as f64).abs();
            count += 1;
            if diff >= observed - tol {
                hits += 1;
            }
            // Next combination in lexicographic order.
            let mut i = n;
            while i > 0 && idx[i - 1] == i - 1 + m {
                i -= 1;
            }
            if i == 0 {
                break;
            }
            idx[i - 1] += 1;
            for j in i..n {
                idx[j] = idx[j - 1] + 1;
            }
        }
        return Some(hits as f64 / count as f64);
    }
    let (ea, eb) = (Estimate::of(a), Estimate::of(b));
    let (va, vb) = (ea.sd.powi(2) / n as f64, eb.sd.powi(2) / m as f64);
    if va + vb == 0.0 {
        return Some(if ea.mean == eb.mean { 1.0 } else { 0.0 });
    }
    let t = (ea.mean - eb.mean) / (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va.powi(2) / (n as f64 - 1.0) + vb.powi(2) / (m as f64 - 1.0));
    Some(2.0 * (1.0 - student_t_cdf(t.abs(), df)))
}

fn paired_t_p(mean: f64, sd: f64, n: usize) -> f64 {
    if sd == 0.0 {
        return if mean == 0.0 { 1.0 } else { 0.0 };
    }
    let t = mean / (sd / (n as f64).sqrt());
    2.0 * (1.0 - student_t_cdf(t.abs(), (n - 1) as f64))
}

/// Holm–Bonferroni adjusted p-values (same order as given): controls the chance of any false
/// "different" across all the comparisons at the nominal level.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in idx.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// The p-value of the paired test [`PairedTest::of`] runs, without its interval.
fn paired_p(d: &[f64]) -> f64 {
    if d.len() <= EXACT_MAX {
        sign_flip_p(d)
    } else {
        let e = Estimate::of(d);
        paired_t_p(e.mean, e.sd, d.len())
    }
}

/// Power wanted by [`trajectories_needed`].
pub const POWER: f64 = 0.8;
/// Simulated comparisons behind each power figure (Monte Carlo sd ≈ 0.009 at 80%).
const POWER_REPLICATES: usize = 2000;
/// The largest k [`trajectories_needed`] advises; beyond it, "more than".
pub const NEEDED_MAX: usize = 2000;

/// Share of `replicates` simulated comparisons of k pairs — differences normal with mean
/// `effect` (in units of their sd) — that the test augwise runs (exact sign-flip for k ≤ 20,
/// paired t beyond) finds at `level`. Seeded: the same arguments give the same figure.
pub fn paired_power(k: usize, effect: f64, level: f64, replicates: usize, seed: u64) -> f64 {
    let mut rng = crate::rng::Rng::new(seed);
    let mut d = vec![0.0; k];
    let mut hits = 0usize;
    for _ in 0..replicates {
        for x in d.iter_mut() {
            *x = effect + rng.normal();
        }
        if paired_p(&d) < level {
            hits += 1;
        }
    }
    hits as f64 / replicates.max(1) as f64
}

/// Trajectories per policy a paired comparison needs so that the test actually run finds a
/// true difference of `difference` (differences of spread `sd`) with 80% power, among
/// `comparisons` Holm-corrected comparisons: the smallest comparison's Holm threshold is
/// α/m, so the advice assumes this is the one real difference. Power is simulated with the
/// exact sign-flip test for k ≤ 20 (its discreteness included: with 3 comparisons no k below
/// 7 can reach α/3) and the paired t beyond. `None` when there is no difference to resolve;
/// `Some(NEEDED_MAX + 1)` when even NEEDED_MAX is not enough.
pub fn trajectories_needed(difference: f64, sd: f64, comparisons: usize) -> Option<usize> {
    if !difference.is_finite() || difference == 0.0 || !sd.is_finite() {
        return None;
    }
    let level = ALPHA / comparisons.max(1) as f64;
    // Fewest pairs whose most lopsided result (all one sign: p = 2/2^k) is below the level.
    let floor = (1..=EXACT_MAX)
        .find(|&k| 2.0 / ((1u64 << k) as f64) < level)
        .unwrap_or(EXACT_MAX + 1);
    if sd == 0.0 {
        // Every difference the same: the all-one-sign pattern is what every replicate gives.
        return Some(floor);
    }
    let effect = (difference / sd).abs();
    let power = |k: usize| paired_power(k, effect, level, POWER_REPLICATES, 0x5EED ^ k as u64);
    // Start from the normal approximation, then walk to the smallest k that has the power.
    let z = normal_quantile(1.0 - level / 2.0) + normal_quantile(POWER);
    let guess = ((z / effect).powi(2).ceil().min(1e9) as usize).clamp(floor, NEEDED_MAX);
    let mut k = guess;
    if power(k) >= POWER {
        while k > floor && power(k - 1) >= POWER {
            k -= 1;
        }
        return Some(k);
    }
    // Too few: grow geometrically past 20 (power rises smoothly there), then bisect.
    let mut lo = k;
    loop {
        let next = if lo < EXACT_MAX {
            lo + 1
        } else {
            (lo + lo / 4).min(NEEDED_MAX)
        };
        if power(next) >= POWER {
            let mut hi = next;
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if power(mid) >= POWER {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            return Some(hi);
        }
        if next == NEEDED_MAX {
            return Some(NEEDED_MAX + 1);
        }
        lo = next;
    }
}

/// The q-quantile of sorted values (linear interpolation).
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Empirical one-sided p-value of `observed` against `null` draws (larger = more extreme):
/// (1 + #{null ≥ observed}) / (R + 1), never 0.
pub fn empirical_p(observed: f64, null: &[f64]) -> f64 {
    let hits = null.iter().filter(|&&x| x >= observed).count();
    (1 + hits) as f64 / (null.len() + 1) as f64
}

// ---- distributions --------------------------------------------------------------------------

// Student's t and the normal from statrs. Its t agrees with the incomplete-beta code this
// replaced to 1e-13 at the quantiles intervals use; unlike that code its quantiles do not stop
// at ±1000 (df = 1, p = 0.9999: 3183.1) and its Φ has no flat spot of width 3e-5 around 0.

/// P(T ≤ t) for Student's t with `df` degrees of freedom (NaN for df ≤ 0 or t NaN).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |d| d.cdf(t))
}

/// The p-quantile of Student's t (NaN unless p in (0, 1) and df > 0).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |d| d.inverse_cdf(p))
}

/// Standard normal CDF.
pub fn normal_cdf(z: f64) -> f64 {
    Normal::standard().cdf(z)
}

/// The p-quantile of the standard normal (NaN unless p in (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    Normal::standard().inverse_cdf(p)
}

// ---- rank correlations (`correlate`: does the proxy rank policies like full training?) ------

/// Ranks from 1, ties sharing their average rank.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's ρ: Pearson correlation of the ranks (NaN with fewer than 2 points or no spread).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return f64::NAN;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx).powi(2);
        syy += (y[i] - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

/// Kendall's τ-b (tie-corrected).
pub fn kendall_tau(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    let (mut concordant, mut discordant, mut tx, mut ty) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = (x[i] - x[j]).signum() * f64::from(x[i] != x[j]);
            let dy = (y[i] - y[j]).signum() * f64::from(y[i] != y[j]);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => tx += 1.0,
                (false, true) => ty += 1.0,
                (false, false) if dx == dy => concordant += 1.0,
                _ => discordant += 1.0,
            }
        }
    }
    let denom = ((concordant + discordant + tx) * (concordant + discordant + ty)).sqrt();
    if denom == 0.0 {
        f64::NAN
    } else {
        (concordant - discordant) / denom
    }
}

/// Expected excess of the largest of several noisy means over the truth when every mean has
/// the same true value: E[max_i se_i·Z_i] for the means' standard errors `ses` (Z standard
/// normal), simulated with a fixed seed. What "best of N updates" reads too high on its own.
pub fn selection_bias(ses: &[f64]) -> f64 {
    if ses.len() < 2 || ses.iter().any(|s| !s.is_finite()) {
        return 0.0;
    }
    const DRAWS: usize = 4000;
    let mut rng = crate::rng::Rng::new(0xB1A5);
    let total: f64 = (0..DRAWS)
        .map(|_| ses.iter().map(|s| s * rng.normal()).fold(f64::NEG_INFINITY, f64::max))
        .sum();
    total / DRAWS as f64
}

/// Orderings of the policies a rank-correlation p-value enumerates exactly (8! = 40,320);
/// beyond, [`PERMUTATION_DRAWS`] seeded random ones.
pub const PERMUTATION_EXACT_MAX: usize = 8;
pub const PERMUTATION_DRAWS: usize = 20_000;

/// Two-sided permutation p-value of a rank statistic against "no association": the share of
/// orderings of `x` against `y` whose |stat| reaches the observed one — all n! for
/// n ≤ [`PERMUTATION_EXACT_MAX`], else (1 + hits)/(R + 1) over R seeded draws. `None` when
/// the statistic is undefined (fewer than 2 points, or no spread).
pub fn permutation_p(x: &[f64], y: &[f64], seed: u64, stat: impl Fn(&[f64], &[f64]) -> f64) -> Option<f64> {
    let n = x.len().min(y.len());
    let observed = stat(&x[..n], &y[..n]);
    if !observed.is_finite() {
        return None;
    }
    let t = observed.abs() - 1e-12;
    let mut perm: Vec<f64> = x[..n].to_vec();
    let reaches = |p: &[f64]| stat(p, &y[..n]).abs() >= t;
    if n <= PERMUTATION_EXACT_MAX {
        // Heap's algorithm: every ordering once.
        let (mut hits, mut total) = (usize::from(reaches(&perm)), 1usize);
        let mut c = vec![0usize; n];
        let mut i = 1;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    perm.swap(0, i);
                } else {
                    perm.swap(c[i], i);
                }
                hits += usize::from(reaches(&perm));
                total += 1;
                c[i] += 1;
                i = 1;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        return Some(hits as f64 / total as f64);
    }
    let mut rng = crate::rng::Rng::new(seed);
    let mut hits = 0usize;
    for _ in 0..PERMUTATION_DRAWS {
        rng.shuffle(&mut perm);
        hits += usize::from(reaches(&perm));
    }
    Some((1 + hits) as f64 / (PERMUTATION_DRAWS + 1) as f64)
}

/// The smallest two-sided permutation p-value n policies can give (perfect agreement or
/// reversal: 2 of n! orderings). Below 5 policies it is ≥ 2/24 > 0.05: no ranking can be
/// told from chance.
pub fn permutation_floor(n: usize) -> f64 {
    let orderings = (1..=n).fold(1.0f64, |f, i| f * i as f64);
    (2.0 / orderings).min(1.0)
}

/// Which rank correlation an interval is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankCorrelation {
    KendallTau,
    SpearmanRho,
}

/// 95% interval of a rank correlation over policies, by Fisher's z with the small-sample
/// variances of Fieller, Hartley & Pearson (τ: 0.437/(n − 4)) and Bonett & Wright (ρ:
/// (1 + ρ²/2)/(n − 3)), and a Student-t quantile on n − 2 degrees of freedom rather than the
/// normal's (coverage measured by simulation in the tests). A perfect ±1 — which z cannot
/// take — is widened from the next value the data could have given (one pair discordant), and
/// its outer end is ±1. `None` for too few policies (τ: n < 5, ρ: n < 4) or an undefined
/// correlation.
pub fn rank_correlation_ci(r: f64, n: usize, kind: RankCorrelation) -> Option<(f64, f64)> {
    if !r.is_finite() {
        return None;
    }
    let nf = n as f64;
    let (min_n, nearest) = match kind {
        RankCorrelation::KendallTau => (5, 1.0 - 4.0 / (nf * (nf - 1.0))),
        RankCorrelation::SpearmanRho => (4, 1.0 - 12.0 / (nf * (nf * nf - 1.0))),
    };
    if n < min_n {
        return None;
    }
    let inner = r.clamp(-nearest, nearest);
    let var = match kind {
        RankCorrelation::KendallTau => 0.437 / (nf - 4.0),
        RankCorrelation::SpearmanRho => (1.0 + inner * inner / 2.0) / (nf - 3.0),
    };
    let h = student_t_quantile(1.0 - ALPHA / 2.0, nf - 2.0) * var.sqrt();
    let z = inner.atanh();
    let (mut lo, mut hi) = ((z - h).tanh(), (z + h).tanh());
    if r >= 1.0 {
        hi = 1.0;
    }
    if r <= -1.0 {
        lo = -1.0;
    }
    Some((lo, hi))
}

/// A difference of accuracies in signed percentage points (`+1.25`).
pub fn signed_points(x: f64) -> String {
    format!("{:+.2}", 100.0 * x)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(spearman(&x, &[2.0, 4.0, 6.0, 8.0, 10.0]), 1.0);
        assert_eq!(kendall_tau(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]), -1.0);
        // One swapped pair of five: τ = (9 − 1)/10, ρ = 1 − 6·2/(5·24).
        let y = [1.0, 3.0, 2.0, 4.0, 5.0];
        assert!((kendall_tau(&x, &y) - 0.8).abs() < 1e-12);
        assert!((spearman(&x, &y) - 0.9).abs() < 1e-12);
        assert_eq!(ranks(&[10.0, 20.0, 10.0]), vec![1.5, 3.0, 1.5]);
        assert!(spearman(&[1.0], &[1.0]).is_nan());
    }

    #[test]
    fn distributions_match_tables() {
        // Student t 97.5% quantiles (any statistics table) and the normal's.
        for (df, q) in [
            (1.0, 12.706_204_736),
            (3.0, 3.182_446_305),
            (7.0, 2.364_624_252),
            (30.0, 2.042_272_456),
        ] {
            assert!(
                (student_t_quantile(0.975, df) - q).abs() < 1e-6,
                "df {df}: {}",
                student_t_quantile(0.975, df)
            );
        }
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-6);
        assert!((normal_quantile(0.8) - 0.841_621_234).abs() < 1e-6);
        assert!((student_t_cdf(0.0, 5.0) - 0.5).abs() < 1e-12);
        assert!((student_t_cdf(2.015_048_373, 5.0) - 0.95).abs() < 1e-7);
        // Where the hand-written versions were off: a quantile past ±1000, Φ near 0.
        assert!((student_t_quantile(0.9999, 1.0) - 3_183.098_757).abs() < 1e-3);
        assert!(normal_quantile(0.5).abs() < 1e-12);
        assert!((normal_cdf(-1.74) - 0.040_929_508_98).abs() < 1e-10);
        assert!(student_t_quantile(1.0, 3.0).is_nan() && student_t_cdf(1.0, 0.0).is_nan());
    }

    #[test]
    fn estimate_interval() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(e.mean, 2.5);
        assert!((e.sd - 1.290_994_448_7).abs() < 1e-9);
        let h = 3.182_446_305 * e.sd / 2.0;
        let (lo, hi) = e.ci95.unwrap();
        assert!((lo - (2.5 - h)).abs() < 1e-6 && (hi - (2.5 + h)).abs() < 1e-6);
        let one = Estimate::of(&[0.7]);
        assert_eq!((one.mean, one.sd, one.ci95), (0.7, 0.0, None));
        assert!(one.percent().contains("no interval"));
        assert!(Estimate::of(&[]).mean.is_nan());
    }

    #[test]
    fn sign_flip_test_is_exact() {
        // All eight differences positive: only the all-plus and all-minus patterns reach it.
        let t = PairedTest::of(&[0.3, 0.1, 0.2, 0.5, 0.4, 0.6, 0.7, 0.8]);
        assert_eq!(t.p_value, Some(2.0 / 256.0));
        assert_eq!(t.method, "exact sign-flip");
        // Identical results: no evidence at all.
        assert_eq!(PairedTest::of(&[0.0; 8]).p_value, Some(1.0));
        // Symmetric differences: mean zero, every pattern reaches |0|.
        assert_eq!(sign_flip_p(&[1.0, -1.0]), 1.0);
        // [1, 2, 3]: patterns with |sum| ≥ 6 are ±(1+2+3): 2 of 8.
        assert_eq!(sign_flip_p(&[1.0, 2.0, 3.0]), 0.25);
        assert_eq!(PairedTest::of(&[]).p_value, None);
        // Past the exact range, the paired t-test: large consistent differences are significant.
        let many: Vec<f64> = (0..30).map(|i| 1.0 + 0.1 * (i % 5) as f64).collect();
        let t = PairedTest::of(&many);
        assert_eq!(t.method, "paired t");
        assert!(t.p_value.unwrap() < 1e-10);
    }

    #[test]
    fn two_sample_permutation_test_is_exact() {
        // Completely separated samples of 3 and 3: only the observed split and its mirror
        // reach the observed |difference|, 2 of C(6, 3) = 20.
        assert_eq!(two_sample_p(&[1.0, 2.0, 3.0], &[10.0, 11.0, 12.0]), Some(0.1));
        // 4 and 4 separated: 2/70 < 0.05 — the smallest unpaired design that can resolve.
        assert!((two_sample_p(&[1.0, 2.0, 3.0, 4.0], &[10.0, 11.0, 12.0, 13.0]).unwrap() - 2.0 / 70.0).abs() < 1e-12);
        assert_eq!(two_sample_p(&[5.0, 5.0], &[5.0, 5.0]), Some(1.0));
        assert_eq!(two_sample_p(&[], &[1.0]), None);
        // Large samples go to Welch: clearly different means, tiny p.
        let a: Vec<f64> = (0..40).map(|i| (i % 7) as f64).collect();
        let b: Vec<f64> = (0..40).map(|i| 10.0 + (i % 5) as f64).collect();
        assert!(two_sample_p(&a, &b).unwrap() < 1e-10);
    }

    #[test]
    fn holm_adjusts_in_order() {
        // m = 3: sorted 0.01·3, 0.02·2, 0.04·1 → 0.03, 0.04, 0.04 (monotone).
        let adj = holm(&[0.04, 0.01, 0.02]);
        assert!((adj[1] - 0.03).abs() < 1e-12 && (adj[2] - 0.04).abs() < 1e-12 && (adj[0] - 0.04).abs() < 1e-12);
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
    }

    #[test]
    fn sample_size_floor_and_quantiles() {
        assert_eq!(
            trajectories_needed(1.0, 0.1, 1),
            Some(6),
            "never below what the exact test can resolve"
        );
        assert_eq!(trajectories_needed(1.0, 0.0, 3), Some(7), "2/2^7 < 0.05/3 < 2/2^6");
        assert_eq!(trajectories_needed(0.0, 1.0, 1), None);
        assert_eq!(empirical_p(5.0, &[1.0, 2.0, 6.0]), 0.5);
        assert_eq!(quantile_sorted(&[0.0, 10.0], 0.25), 2.5);
    }

    /// Brute force over every sign pattern, the definition the counted version must equal.
    fn brute_sign_flip(d: &[f64]) -> f64 {
        let observed = d.iter().sum::<f64>().abs();
        let tol = 1e-12 * d.iter().map(|x| x.abs()).sum::<f64>().max(1e-300);
        let total = 1u64 << d.len();
        let hits = (0..total)
            .filter(|mask| {
                let s: f64 = d
                    .iter()
                    .enumerate()
                    .map(|(i, &x)| if mask >> i & 1 == 1 { -x } else { x })
                    .sum();
                s.abs() >= observed - tol
            })
            .count();
        hits as f64 / total as f64
    }

    #[test]
    fn counted_sign_flip_equals_every_pattern() {
        let mut rng = crate::rng::Rng::new(3);
        for n in 1..=12 {
            for _ in 0..40 {
                // Rounded to a grid so ties between patterns occur, as with accuracies.
                let d: Vec<f64> = (0..n).map(|_| ((rng.normal() + 0.5) * 8.0).round() / 100.0).collect();
                assert_eq!(sign_flip_p(&d), brute_sign_flip(&d), "{d:?}");
            }
        }
    }

    /// The interval inverts the test that gives the p-value: 0 lies outside exactly when
    /// p < 0.05 (the Student-t interval and the exact p used to disagree: k = 5 all positive
    /// excluded 0 while p = 0.0625).
    #[test]
    fn paired_interval_agrees_with_its_p_value() {
        let five = PairedTest::of(&[0.01, 0.02, 0.015, 0.03, 0.012]);
        assert_eq!(five.p_value, Some(0.0625));
        assert_eq!(five.ci95, None, "k = 5 rejects no shift: no finite 95% interval");
        let mut rng = crate::rng::Rng::new(11);
        let (mut rejected, mut checked) = (0, 0);
        for i in 0..600 {
            let n = 6 + i % 9;
            let shift = [0.0, 0.3, 0.7, 1.2][i % 4];
            let d: Vec<f64> = (0..n)
                .map(|_| ((rng.normal() + shift) * 50.0).round() / 1000.0)
                .collect();
            let t = PairedTest::of(&d);
            let (lo, hi) = t.ci95.unwrap();
            assert!(lo <= t.difference && t.difference <= hi, "{d:?}: {lo} {hi}");
            let p = t.p_value.unwrap();
            let outside = lo > 0.0 || hi < 0.0;
            // An end that falls on 0 itself is where p crosses 0.05: either answer is the test's.
            if lo.abs() > 1e-9 && hi.abs() > 1e-9 {
                assert_eq!(p < ALPHA, outside, "{d:?}: p {p}, interval {lo}..{hi}");
                checked += 1;
            }
            rejected += usize::from(p < ALPHA);
        }
        assert!(
            checked > 550 && rejected > 100 && rejected < 500,
            "{checked} {rejected}"
        );
        // Identical differences: the interval is the point.
        let same = PairedTest::of(&[0.02; 8]);
        let (lo, hi) = same.ci95.unwrap();
        assert!((lo - 0.02).abs() < 1e-9 && (hi - 0.02).abs() < 1e-9);
    }

    /// The advised k has the power it promises under the test actually run, and the old
    /// normal approximation's k = 8 at d/sd = 1 did not (its power is about 65%).
    #[test]
    fn advised_trajectories_reach_their_power() {
        for (effect, m) in [(1.0, 1), (1.0, 3), (0.5, 1), (2.0, 3)] {
            let k = trajectories_needed(effect, 1.0, m).unwrap();
            let level = ALPHA / m as f64;
            // An independent simulation (other seed, 5× the replicates) of the advice.
            let power = paired_power(k, effect, level, 10_000, 99);
            eprintln!("d/sd {effect}, {m} comparison(s): k = {k}, power {power:.3}");
            assert!(
                power >= 0.77,
                "d/sd {effect}, {m} comparisons: k = {k} has power {power}"
            );
            if k > 7 {
                let fewer = paired_power(k - 1, effect, level, 10_000, 99);
                assert!(
                    fewer < 0.83,
                    "d/sd {effect}, m {m}: k − 1 = {} already has power {fewer}",
                    k - 1
                );
            }
        }
        let old = paired_power(8, 1.0, ALPHA, 10_000, 7);
        eprintln!("k = 8 at d/sd 1: power {old:.3}");
        assert!(old < 0.72, "k = 8 at d/sd = 1: power {old}");
        assert!(trajectories_needed(1.0, 1.0, 1).unwrap() > 8);
        // With 3 comparisons no k below 7 can reach 0.05/3: "about 6" could never conclude.
        assert!(trajectories_needed(5.0, 1.0, 3).unwrap() >= 7);
    }

    #[test]
    fn few_policies_claim_no_certainty() {
        // Three policies ranked identically happens 1 time in 6 by chance.
        let x = [0.1, 0.2, 0.3];
        assert!((permutation_p(&x, &x, 1, kendall_tau).unwrap() - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(rank_correlation_ci(1.0, 3, RankCorrelation::KendallTau), None);
        assert_eq!(rank_correlation_ci(1.0, 3, RankCorrelation::SpearmanRho), None);
        assert!(permutation_floor(4) > ALPHA && permutation_floor(5) < ALPHA);
        // Six in perfect order: 2 of 720 orderings; the interval is not the point (1, 1).
        let x6 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert!((permutation_p(&x6, &x6, 1, spearman).unwrap() - 2.0 / 720.0).abs() < 1e-12);
        let (lo, hi) = rank_correlation_ci(1.0, 6, RankCorrelation::KendallTau).unwrap();
        assert!(lo < 0.8 && hi == 1.0, "{lo} {hi}");
        // Past the exact range: seeded draws, never 0.
        let x10: Vec<f64> = (0..10).map(f64::from).collect();
        let p = permutation_p(&x10, &x10, 1, kendall_tau).unwrap();
        assert!(p > 0.0 && p < 1e-3, "{p}");
    }

    /// Coverage of the rank-correlation intervals, measured: policies' (proxy, full) pairs
    /// bivariate normal with correlation r, whose population τ = 2/π·asin r and
    /// ρ_s = 6/π·asin(r/2). Every interval must cover its population value in at least 92%
    /// of 1,000 draws (the percentile bootstrap it replaces was (1, 1) whenever ranks agreed).
    #[test]
    fn rank_correlation_intervals_cover() {
        use std::f64::consts::PI;
        let mut rng = crate::rng::Rng::new(5);
        for n in [5, 6, 8, 12, 20] {
            for r in [0.0, 0.5, 0.8, 0.95] {
                let (tau0, rho0) = (2.0 / PI * f64::asin(r), 6.0 / PI * f64::asin(r / 2.0));
                let (mut ct, mut cr) = (0, 0);
                let reps = 1000;
                for _ in 0..reps {
                    let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
                    let y: Vec<f64> = x.iter().map(|&a| r * a + (1.0 - r * r).sqrt() * rng.normal()).collect();
                    let inside = |c: Option<(f64, f64)>, v: f64| c.is_some_and(|(lo, hi)| lo <= v && v <= hi);
                    ct += usize::from(inside(
                        rank_correlation_ci(kendall_tau(&x, &y), n, RankCorrelation::KendallTau),
                        tau0,
                    ));
                    cr += usize::from(inside(
                        rank_correlation_ci(spearman(&x, &y), n, RankCorrelation::SpearmanRho),
                        rho0,
                    ));
                }
                let (ct, cr) = (ct as f64 / reps as f64, cr as f64 / reps as f64);
                eprintln!("n {n} r {r}: τ coverage {ct:.3}, ρ coverage {cr:.3}");
                assert!(ct >= 0.92 && cr >= 0.92, "n {n}, r {r}: τ {ct}, ρ {cr}");
            }
        }
    }
}
