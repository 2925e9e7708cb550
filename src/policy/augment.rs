//! A policy's training augmentation: the dataset's pipeline with the policy's ops, counting
//! how often each AWS pair was applied (PPO weights its surrogate by these counts).

use tch::Tensor;

use super::{Draw, Sampler};
use crate::augment::space::NUM_PAIRS;
use crate::augment::{AugmentError, AugmentPlan, OpSampler, Pipeline};
use crate::rng::Rng;

/// The training augmentation of a policy: the pipeline with the policy's ops, counting how
/// often each AWS pair was applied (PPO weights its surrogate by these counts).
#[derive(Debug, Clone)]
pub struct PolicyAugment {
    pub pipeline: Pipeline,
    pub sampler: Sampler,
    /// Applications per pair since the last [`PolicyAugment::take_counts`] (AWS policies).
    pub pair_counts: Vec<u32>,
}

impl PolicyAugment {
    pub fn new(pipeline: Pipeline, sampler: Sampler) -> Self {
        Self {
            pipeline,
            sampler,
            pair_counts: vec![0; NUM_PAIRS],
        }
    }

    /// Counts so far, resetting them.
    pub fn take_counts(&mut self) -> Vec<u32> {
        std::mem::replace(&mut self.pair_counts, vec![0; NUM_PAIRS])
    }

    /// The plan of one training batch (`rng`: crop, flip, Cutout; `policy_rng`: the policy's
    /// choices), counting the pairs it drew.
    pub fn plan(
        &mut self,
        n: usize,
        h: i64,
        w: i64,
        rng: &mut Rng,
        policy_rng: &mut Rng,
    ) -> (AugmentPlan, Option<Draw>) {
        let (plan, draw) = self
            .pipeline
            .plan(n, h, w, Some((&self.sampler as &dyn OpSampler, policy_rng)), rng);
        if let Some(pairs) = draw.as_ref().and_then(|d| d.pairs.as_ref()) {
            for &p in pairs {
                if let Some(c) = self.pair_counts.get_mut(p as usize) {
                    *c += 1;
                }
            }
        }
        (plan, draw)
    }

    /// One normalised training batch and its draw (`rng`: crop, flip, Cutout; `policy_rng`:
    /// the policy's choices).
    pub fn batch(
        &mut self,
        x: &Tensor,
        rng: &mut Rng,
        policy_rng: &mut Rng,
    ) -> Result<(Tensor, Option<Draw>), AugmentError> {
        let (n, _, h, w) = x.size4()?;
        let (plan, draw) = self.plan(n as usize, h, w, rng, policy_rng);
        let y = self.pipeline.apply_plan(x, &plan)?;
        Ok((self.pipeline.normalize.apply(&y)?, draw))
    }
}
