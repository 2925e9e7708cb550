//! θ = (a ∈ R³⁶, B ∈ R³⁶ˣ³⁶): p(op1, op2) = softmax(a)[op1] · softmax(B[op1])[op2]
//! (docs/method.md; softmax where the official code normalises sigmoids — same expressiveness).
//! Zero logits are the uniform distribution over the 1,296 pairs.

use serde::{Deserialize, Serialize};

use super::PolicyError;
use crate::augment::space::{pair_ops, NUM_OPS, NUM_PAIRS};

/// The policy parameters, as logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theta {
    pub a: Vec<f64>,
    pub b: Vec<Vec<f64>>,
}

fn softmax(x: &[f64]) -> Vec<f64> {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

impl Theta {
    /// θ at initialisation: all zeros, the uniform distribution.
    pub fn uniform() -> Self {
        Self {
            a: vec![0.0; NUM_OPS],
            b: vec![vec![0.0; NUM_OPS]; NUM_OPS],
        }
    }

    /// Shapes 36 and 36×36, every logit finite.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.a.len() != NUM_OPS || self.b.len() != NUM_OPS || self.b.iter().any(|r| r.len() != NUM_OPS) {
            return Err(PolicyError::Theta(format!(
                "θ must have a of length {NUM_OPS} and B of {NUM_OPS}×{NUM_OPS}; got a: {}, B: {} rows",
                self.a.len(),
                self.b.len()
            )));
        }
        if let Some(v) = self.a.iter().chain(self.b.iter().flatten()).find(|v| !v.is_finite()) {
            return Err(PolicyError::Theta(format!("θ has a non-finite logit ({v})")));
        }
        Ok(())
    }

    /// p1(op1), the first op's marginal.
    pub fn op1_marginal(&self) -> Vec<f64> {
        softmax(&self.a)
    }

    /// The full pair distribution.
    pub fn distribution(&self) -> Result<PairDistribution, PolicyError> {
        self.validate()?;
        let p1 = softmax(&self.a);
        let probs = (0..NUM_OPS)
            .flat_map(|i| {
                let p = p1[i];
                softmax(&self.b[i]).into_iter().map(move |q| p * q)
            })
            .collect();
        PairDistribution::new(probs)
    }
}

/// A validated probability distribution over the 1,296 ordered pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct PairDistribution {
    probs: Vec<f64>,
}

impl PairDistribution {
    /// Check length, finiteness, non-negativity and normalisation (|Σ − 1| ≤ 1e-6).
    pub fn new(probs: Vec<f64>) -> Result<Self, PolicyError> {
        if probs.len() != NUM_PAIRS {
            return Err(PolicyError::Theta(format!(
                "{} probabilities; expected one per pair, {NUM_PAIRS}",
                probs.len()
            )));
        }
        if let Some((k, p)) = probs.iter().enumerate().find(|(_, p)| !p.is_finite()) {
            return Err(PolicyError::Theta(format!("probability of pair {k} is {p}")));
        }
        if let Some((k, p)) = probs.iter().enumerate().find(|(_, p)| **p < 0.0) {
            return Err(PolicyError::Theta(format!("probability of pair {k} is negative ({p})")));
        }
        let sum: f64 = probs.iter().sum();
        if (sum - 1.0).abs() > 1e-6 {
            return Err(PolicyError::Theta(format!("probabilities sum to {sum}, not 1")));
        }
        Ok(Self { probs })
    }

    pub fn uniform() -> Self {
        Self {
            probs: vec![1.0 / NUM_PAIRS as f64; NUM_PAIRS],
        }
    }

    /// All the mass on one pair.
    pub fn one_hot(pair: usize) -> Self {
        let mut probs = vec![0.0; NUM_PAIRS];
        probs[pair.min(NUM_PAIRS - 1)] = 1.0;
        Self { probs }
    }

    pub fn probs(&self) -> &[f64] {
        &self.probs
    }

    /// The empirical distribution of `pairs` draws from this one: what a trajectory samples
    /// per image from under the `pairs_per_trajectory` variant (`SearchConfig`).
    pub fn draw_pairs(&self, pairs: usize, rng: &mut crate::rng::Rng) -> Self {
        let counts = rng.multinomial(pairs.max(1) as u64, &self.probs);
        let total: f64 = counts.iter().map(|&c| f64::from(c)).sum::<f64>().max(1.0);
        Self {
            probs: counts.iter().map(|&c| f64::from(c) / total).collect(),
        }
    }

    /// Cumulative sums, for inverse-CDF sampling.
    pub fn cdf(&self) -> Vec<f64> {
        self.probs
            .iter()
            .scan(0.0, |acc, p| {
                *acc += p;
                Some(*acc)
            })
            .collect()
    }

    /// The pair for a uniform draw `u` in [0, 1) (never a zero-probability pair).
    pub fn sample_with(&self, cdf: &[f64], u: f64) -> usize {
        let target = u * cdf.last().copied().unwrap_or(1.0);
        let k = cdf.partition_point(|&c| c <= target);
        // Skip trailing zero-mass pairs that rounding could land on.
        let k = k.min(NUM_PAIRS - 1);
        if self.probs[k] > 0.0 {
            k
        } else {
            self.probs.iter().rposition(|&p| p > 0.0).unwrap_or(0)
        }
    }

    /// Marginal of op1 and of op2.
    pub fn marginals(&self) -> (Vec<f64>, Vec<f64>) {
        let mut m1 = vec![0.0; NUM_OPS];
        let mut m2 = vec![0.0; NUM_OPS];
        for (k, p) in self.probs.iter().enumerate() {
            let (i, j) = pair_ops(k);
            m1[i] += p;
            m2[j] += p;
        }
        (m1, m2)
    }

    /// Shannon entropy in nats (ln 1296 ≈ 7.17 when uniform).
    pub fn entropy(&self) -> f64 {
        -self.probs.iter().filter(|p| **p > 0.0).map(|p| p * p.ln()).sum::<f64>()
    }

    /// Pairs by decreasing probability.
    pub fn top(&self, k: usize) -> Vec<(usize, f64)> {
        let mut v: Vec<(usize, f64)> = self.probs.iter().copied().enumerate().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }
}

impl TryFrom<Vec<f64>> for PairDistribution {
    type Error = PolicyError;
    fn try_from(v: Vec<f64>) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<PairDistribution> for Vec<f64> {
    fn from(d: PairDistribution) -> Vec<f64> {
        d.probs
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn uniform_theta_is_the_uniform_distribution() {
        let d = Theta::uniform().distribution().unwrap();
        assert!(d.probs().iter().all(|p| (p - 1.0 / 1296.0).abs() < 1e-15));
        assert!((d.entropy() - (1296f64).ln()).abs() < 1e-9);
        let (m1, m2) = d.marginals();
        assert!(m1.iter().chain(&m2).all(|p| (p - 1.0 / 36.0).abs() < 1e-12));
    }

    #[test]
    fn logits_shift_mass_and_bad_values_are_rejected() {
        let mut t = Theta::uniform();
        t.a[5] = 3.0;
        t.b[5][7] = 2.0;
        let d = t.distribution().unwrap();
        assert_eq!(d.top(1)[0].0, 5 * 36 + 7);
        t.b[1][1] = f64::NAN;
        assert!(t.distribution().unwrap_err().to_string().contains("non-finite"));
        assert!(PairDistribution::new(vec![0.5; 1296])
            .unwrap_err()
            .to_string()
            .contains("sum"));
        let mut neg = vec![1.0 / 1295.0; 1296];
        neg[0] = -0.0001;
        assert!(PairDistribution::new(neg).unwrap_err().to_string().contains("negative"));
        assert!(PairDistribution::new(vec![1.0]).is_err());
        let mut nan = vec![1.0 / 1296.0; 1296];
        nan[3] = f64::NAN;
        assert!(PairDistribution::new(nan).is_err());
    }

    #[test]
    fn inverse_cdf_sampling_never_picks_zero_mass() {
        let d = PairDistribution::one_hot(1000);
        let cdf = d.cdf();
        for u in [0.0, 0.3, 0.999_999_999, 1.0] {
            assert_eq!(d.sample_with(&cdf, u), 1000);
        }
        let u = PairDistribution::uniform();
        let c = u.cdf();
        assert_eq!(u.sample_with(&c, 0.0), 0);
        assert_eq!(u.sample_with(&c, 0.5001), 648);
    }
}
