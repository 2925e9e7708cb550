//! Policies: the AWS space's θ, a single pair, and the published policies (AutoAugment,
//! RandAugment, TrivialAugmentWide, user-written sub-policy lists) as values of one type,
//! each sampled per image and applied batched. Spec strings (`spec`) name any of them; serde
//! gives the same as JSON; `export` writes them for PyTorch users.

mod augment;
mod export;
pub mod spec;
mod tables;
mod theta;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use crate::augment::Draw;
pub use augment::PolicyAugment;
pub use export::{torchvision_export, EXPORT_NOTE};
pub use tables::{linspace_f32, magnitude, AutoAugmentTable, Grid, SubOp, RAND_OPS};
pub use theta::{PairDistribution, Theta};

use crate::augment::space::{aws_ops, pair_ops, NUM_OPS, NUM_PAIRS};
use crate::augment::{apply_ops, AugmentError, Op, OpKind, OpOptions};
use crate::rng::Rng;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy spec at column {column}: {message}\n  {spec}\n  {caret}^\nvalid policies: {valid}", caret = " ".repeat(column.saturating_sub(1)), valid = spec::GRAMMAR_SHORT)]
    Parse {
        spec: String,
        column: usize,
        message: String,
    },
    #[error("invalid θ: {0}")]
    Theta(String),
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error(transparent)]
    Augment(#[from] AugmentError),
    /// A libtorch op on θ failed (PPO's update, a distribution's tensors).
    #[error("libtorch failed on θ: {0}")]
    Torch(#[from] tch::TchError),
}

/// Any augmentation policy augwise can sample and apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Policy {
    /// No policy ops (crop, flip and Cutout still apply in the pipeline).
    None,
    /// A published AutoAugment table: one of 25 sub-policies per image.
    AutoAugment { table: AutoAugmentTable },
    /// User-written sub-policies, AutoAugment-style (bins on the 10-level grid).
    SubPolicies { sub_policies: Vec<Vec<SubOp>> },
    /// N ops drawn uniformly, all at magnitude bin M of `bins`.
    RandAugment { n: usize, m: usize, bins: usize },
    /// One op drawn uniformly with a uniform magnitude bin (TrivialAugmentWide).
    TrivialAugment { bins: usize },
    /// The AWS space with θ = 0: every pair equally likely.
    AwsUniform,
    /// One fixed AWS pair (both ops always applied).
    AwsPair { op1: usize, op2: usize },
    /// Any distribution over the AWS pairs, e.g. a searched θ; `source` is the file it came
    /// from, kept so the spec prints back as `theta:PATH`.
    AwsTheta {
        probs: PairDistribution,
        source: Option<PathBuf>,
    },
}

/// A policy ready to sample quickly: its pair distribution computed once.
#[derive(Debug, Clone)]
pub struct Sampler {
    policy: Policy,
    dist: Option<PairDistribution>,
}

/// torchvision's `if signed and torch.rand(()) <= 0.5: magnitude *= -1`, except that the
/// uniform is drawn for every op, signed or not: each image then takes the same count of
/// numbers from the stream whatever it drew, so two policies given one stream stay in step
/// image by image (coupled draws, `compare`).
fn signed(op: Op, rng: &mut Rng) -> Op {
    let u = rng.next_f64();
    if op.kind.signed() && u <= 0.5 {
        op.negated()
    } else {
        op
    }
}

fn bin_op(grid: Grid, kind: OpKind, bin: usize, bins: usize, h: i64, w: i64) -> Op {
    Op {
        kind,
        magnitude: magnitude(grid, kind, bin, bins, h, w).unwrap_or(0.0),
    }
}

impl Policy {
    /// The AWS distribution this policy samples pairs from, if it is an AWS policy.
    pub fn distribution(&self) -> Option<PairDistribution> {
        match self {
            Policy::AwsUniform => Some(PairDistribution::uniform()),
            Policy::AwsPair { op1, op2 } => Some(PairDistribution::one_hot(op1 * NUM_OPS + op2)),
            Policy::AwsTheta { probs, .. } => Some(probs.clone()),
            _ => None,
        }
    }

    /// Check everything a hand-written value could get wrong.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError::Theta(m));
        match self {
            Policy::SubPolicies { sub_policies } => {
                if sub_policies.is_empty() || sub_policies.iter().any(Vec::is_empty) {
                    return bad("a sub-policy list needs at least one sub-policy of at least one op".into());
                }
                for s in sub_policies.iter().flatten() {
                    if !(0.0..=1.0).contains(&s.prob) {
                        return bad(format!("{}: probability {} is outside 0..=1", s.op, s.prob));
                    }
                    match (s.op.range(), s.bin) {
                        (Some(_), None) => return bad(format!("{} needs a magnitude bin 0..=9", s.op)),
                        (Some(_), Some(b)) if b > 9 => return bad(format!("{}: bin {b} is outside 0..=9", s.op)),
                        _ => {}
                    }
                }
                Ok(())
            }
            Policy::RandAugment { n, m, bins } => {
                if *bins < 2 || m >= bins || *n > 16 {
                    return bad(format!(
                        "randaugment needs 2 ≤ bins, m < bins and n ≤ 16 (got n={n}, m={m}, bins={bins})"
                    ));
                }
                Ok(())
            }
            Policy::TrivialAugment { bins } if *bins < 2 => bad(format!("trivialaugment needs bins ≥ 2, got {bins}")),
            Policy::AwsPair { op1, op2 } if *op1 >= NUM_OPS || *op2 >= NUM_OPS => {
                bad(format!("AWS op indices must be below {NUM_OPS}, got ({op1}, {op2})"))
            }
            Policy::AwsTheta { probs, .. } => PairDistribution::new(probs.probs().to_vec()).map(|_| ()),
            _ => Ok(()),
        }
    }

    pub fn sampler(&self) -> Result<Sampler, PolicyError> {
        self.validate()?;
        Ok(Sampler {
            policy: self.clone(),
            dist: self.distribution(),
        })
    }
}

impl crate::augment::OpSampler for Sampler {
    fn draw(&self, n: usize, h: i64, w: i64, rng: &mut Rng) -> Draw {
        Sampler::draw(self, n, h, w, rng)
    }
}

impl Sampler {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Draw each of `n` images' ops for H×W images, on the host (a few numbers per image).
    pub fn draw(&self, n: usize, h: i64, w: i64, rng: &mut Rng) -> Draw {
        match &self.policy {
            Policy::None => Draw {
                stages: vec![],
                pairs: None,
            },
            Policy::AutoAugment { table } => self.draw_sub_policies(&table.sub_policies(), n, h, w, rng),
            Policy::SubPolicies { sub_policies } => self.draw_sub_policies(sub_policies, n, h, w, rng),
            Policy::RandAugment { n: ops, m, bins } => {
                let stages = (0..*ops)
                    .map(|_| {
                        (0..n)
                            .map(|_| {
                                let kind = RAND_OPS[(rng.next_f64() * RAND_OPS.len() as f64) as usize % RAND_OPS.len()];
                                signed(bin_op(Grid::Standard, kind, *m, *bins, h, w), rng)
                            })
                            .collect()
                    })
                    .collect();
                Draw { stages, pairs: None }
            }
            Policy::TrivialAugment { bins } => {
                let stage = (0..n)
                    .map(|_| {
                        let kind = RAND_OPS[(rng.next_f64() * RAND_OPS.len() as f64) as usize % RAND_OPS.len()];
                        let bin = (rng.next_f64() * *bins as f64) as usize % bins;
                        signed(bin_op(Grid::Wide, kind, bin, *bins, h, w), rng)
                    })
                    .collect();
                Draw {
                    stages: vec![stage],
                    pairs: None,
                }
            }
            Policy::AwsUniform | Policy::AwsPair { .. } | Policy::AwsTheta { .. } => {
                let Some(dist) = &self.dist else {
                    return Draw {
                        stages: vec![],
                        pairs: None,
                    };
                };
                let ops = aws_ops();
                let (mut first, mut second, mut pairs) =
                    (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                for _ in 0..n {
                    // One key per image (the coupled race) and one uniform per op's sign.
                    let k = dist.sample_coupled(rng.next_u64());
                    let (a, b) = pair_ops(k);
                    first.push(signed(ops[a], rng));
                    second.push(signed(ops[b], rng));
                    pairs.push(k as i64);
                }
                Draw {
                    stages: vec![first, second],
                    pairs: Some(pairs),
                }
            }
        }
    }

    fn draw_sub_policies(&self, subs: &[Vec<SubOp>], n: usize, h: i64, w: i64, rng: &mut Rng) -> Draw {
        let width = subs.iter().map(Vec::len).max().unwrap_or(0);
        let mut stages = vec![Vec::with_capacity(n); width];
        for _ in 0..n {
            let sub = &subs[(rng.next_f64() * subs.len() as f64) as usize % subs.len()];
            for (j, stage) in stages.iter_mut().enumerate() {
                // Both uniforms drawn whatever the sub-policy's length (see `signed`).
                let apply = rng.next_f64();
                let op = signed(
                    match sub.get(j) {
                        Some(s) if apply <= s.prob => bin_op(Grid::Standard, s.op, s.bin.unwrap_or(0), 10, h, w),
                        _ => Op::IDENTITY,
                    },
                    rng,
                );
                stage.push(op);
            }
        }
        Draw { stages, pairs: None }
    }

    /// Draw and apply to a uint8 batch; returns the augmented batch and the draw.
    pub fn apply(&self, x: &Tensor, opts: &OpOptions, rng: &mut Rng) -> Result<(Tensor, Draw), AugmentError> {
        let (n, _, h, w) = x.size4()?;
        let draw = self.draw(n as usize, h, w, rng);
        let mut y = x.shallow_clone();
        for stage in &draw.stages {
            y = apply_ops(&y, stage, opts)?;
        }
        Ok((y, draw))
    }
}

/// Per-pair application counts of a batch's draw (what PPO weights its surrogate with).
pub fn pair_counts(pairs: &[i64]) -> Vec<u32> {
    let mut c = vec![0u32; NUM_PAIRS];
    for &p in pairs {
        if let Some(v) = c.get_mut(p as usize) {
            *v += 1;
        }
    }
    c
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn aws_pairs_follow_the_distribution_with_random_signs() {
        let mut t = Theta::uniform();
        t.a[16] = 50.0; // Rotate:20 as op1, almost surely
        let policy = Policy::AwsTheta {
            probs: t.distribution().unwrap(),
            source: None,
        };
        let draw = policy.sampler().unwrap().draw(400, 32, 32, &mut Rng::new(1));
        let pairs = draw.pairs.unwrap();
        assert!(pairs.iter().all(|&k| k / 36 == 16));
        let rot = &draw.stages[0];
        let neg = rot.iter().filter(|o| o.magnitude < 0.0).count();
        assert!(rot
            .iter()
            .all(|o| o.kind == OpKind::Rotate && o.magnitude.abs() == 20.0));
        assert!((150..250).contains(&neg), "{neg} of 400 negative");
        let counts = pair_counts(&pairs);
        assert_eq!(counts.iter().sum::<u32>(), 400);
        // op2 is spread over all 36.
        assert!(counts[16 * 36..17 * 36].iter().filter(|&&c| c > 0).count() > 30);
    }

    #[test]
    fn autoaugment_draws_table_ops_with_probabilities() {
        let p = Policy::AutoAugment {
            table: AutoAugmentTable::Cifar10,
        };
        let draw = p.sampler().unwrap().draw(2000, 32, 32, &mut Rng::new(0));
        assert_eq!(draw.stages.len(), 2);
        let identity = draw.stages[0].iter().filter(|o| o.kind == OpKind::Identity).count() as f64 / 2000.0;
        // Mean skip probability of the first ops of the CIFAR-10 table is 1 − mean(p) = 0.464.
        assert!((identity - 0.464).abs() < 0.04, "{identity}");
        assert!(draw.pairs.is_none());
        let ra = Policy::RandAugment { n: 3, m: 9, bins: 31 }
            .sampler()
            .unwrap()
            .draw(10, 32, 32, &mut Rng::new(0));
        assert_eq!(ra.stages.len(), 3);
        assert!(ra.stages.iter().flatten().all(|o| o.kind != OpKind::Invert));
    }

    /// Property: for random θ, the distribution is valid, its marginals agree with p1, and
    /// per-image draws follow it (the most likely pairs are drawn about as often as predicted).
    #[test]
    fn random_theta_draws_follow_the_distribution() {
        let mut rng = Rng::new(9);
        for trial in 0..20 {
            let scale = 0.5 + trial as f64 * 0.25;
            let mut t = Theta::uniform();
            for v in t.a.iter_mut().chain(t.b.iter_mut().flatten()) {
                *v = (rng.next_f64() - 0.5) * 2.0 * scale;
            }
            let d = t.distribution().unwrap();
            assert!((d.probs().iter().sum::<f64>() - 1.0).abs() < 1e-9);
            let (m1, _) = d.marginals();
            for (a, b) in m1.iter().zip(t.op1_marginal()) {
                assert!((a - b).abs() < 1e-12);
            }
            let n = 20_000;
            let draw = Policy::AwsTheta {
                probs: d.clone(),
                source: None,
            }
            .sampler()
            .unwrap()
            .draw(n, 8, 8, &mut rng);
            let counts = pair_counts(&draw.pairs.unwrap());
            for (k, p) in d.top(3) {
                let expected = p * n as f64;
                let sd = (expected * (1.0 - p)).sqrt();
                let got = counts[k] as f64;
                assert!(
                    (got - expected).abs() < 5.0 * sd + 1.0,
                    "trial {trial}: pair {k} drawn {got} times, expected {expected:.1}"
                );
            }
        }
    }

    #[test]
    fn invalid_policies_are_rejected() {
        assert!(Policy::SubPolicies { sub_policies: vec![] }.sampler().is_err());
        let bad = SubOp {
            op: OpKind::Rotate,
            prob: 1.5,
            bin: Some(3),
        };
        assert!(Policy::SubPolicies {
            sub_policies: vec![vec![bad]]
        }
        .sampler()
        .is_err());
        assert!(Policy::RandAugment { n: 2, m: 40, bins: 31 }.sampler().is_err());
        assert!(Policy::AwsPair { op1: 36, op2: 0 }.sampler().is_err());
    }
}
