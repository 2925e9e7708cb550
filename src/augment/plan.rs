//! Every random choice of a batch's augmentation, drawn on the host before any tensor work.
//!
//! On a GPU the augmentation is launch-bound: a batch of 256 CIFAR images costs the same few
//! milliseconds of kernel launches as a batch of 2,048 (BENCHMARKS.md, CUDA). Drawing first
//! and applying later lets a trainer apply the plans of several batches — or of the k
//! trajectories of an update — in one call: the same launches for k times the images, and one
//! upload of the per-image numbers instead of five per batch. Every op is per image, so the
//! result is bit-for-bit the images that applying each plan on its own gives.

use tch::Tensor;

use super::ops::{apply_ops, AugmentError, Op};
use super::pipeline::Pipeline;
use crate::rng::Rng;

/// What a policy drew for a batch: the ops of each stage (stage-major, one op per image,
/// Identity where an image skips), and for AWS policies the pair index of each image.
#[derive(Debug, Clone, PartialEq)]
pub struct Draw {
    pub stages: Vec<Vec<Op>>,
    pub pairs: Option<Vec<i64>>,
}

/// What chooses each image's policy ops, on the host: a policy's sampler (`policy::Sampler`).
/// The pipeline knows only this, so augmentation does not depend on policies.
pub trait OpSampler {
    /// The ops of `n` images of `h`×`w`, drawn from `rng`.
    fn draw(&self, n: usize, h: i64, w: i64, rng: &mut Rng) -> Draw;
}

/// What [`Pipeline::plan`] drew for `n` images: crop offsets, flips, the policy's ops (stage
/// by stage) and Cutout centres. Fields a pipeline does not use are empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AugmentPlan {
    pub(crate) n: usize,
    pub(crate) crop_y: Vec<i64>,
    pub(crate) crop_x: Vec<i64>,
    pub(crate) flip: Vec<bool>,
    /// Stage-major, one op per image (Identity where an image skips a stage).
    pub(crate) stages: Vec<Vec<Op>>,
    pub(crate) cut_y: Vec<i64>,
    pub(crate) cut_x: Vec<i64>,
}

impl AugmentPlan {
    /// Images the plan is for.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// One plan for the images of `plans`, in order. Stages missing from a plan (a policy with
    /// fewer stages, or none) are Identity for its images, which changes nothing.
    pub fn concat(plans: &[AugmentPlan]) -> Result<AugmentPlan, AugmentError> {
        let n = plans.iter().map(|p| p.n).sum();
        let width = plans.iter().map(|p| p.stages.len()).max().unwrap_or(0);
        let mut out = AugmentPlan {
            n,
            stages: vec![Vec::with_capacity(n); width],
            ..Default::default()
        };
        // A field is drawn for every image or for none (one pipeline's plans).
        let field = |get: fn(&AugmentPlan) -> usize, what: &str| -> Result<(), AugmentError> {
            let drawn = plans.iter().filter(|p| get(p) > 0).count();
            if drawn != 0 && plans.iter().any(|p| get(p) != p.n) {
                return Err(AugmentError::Invalid(format!(
                    "plans disagree on {what}: they come from different pipelines"
                )));
            }
            Ok(())
        };
        field(|p| p.crop_y.len(), "the crop")?;
        field(|p| p.flip.len(), "the flip")?;
        field(|p| p.cut_y.len(), "Cutout")?;
        for p in plans {
            out.crop_y.extend_from_slice(&p.crop_y);
            out.crop_x.extend_from_slice(&p.crop_x);
            out.flip.extend_from_slice(&p.flip);
            out.cut_y.extend_from_slice(&p.cut_y);
            out.cut_x.extend_from_slice(&p.cut_x);
            for (j, stage) in out.stages.iter_mut().enumerate() {
                match p.stages.get(j) {
                    Some(ops) => stage.extend_from_slice(ops),
                    None => stage.extend(std::iter::repeat_n(Op::IDENTITY, p.n)),
                }
            }
        }
        Ok(out)
    }
}

impl Pipeline {
    /// Apply a plan to a uint8 batch of as many images: crop, flip, the policy's stages,
    /// Cutout. The per-image numbers travel to the device in one non-blocking upload.
    pub fn apply_plan(&self, x: &Tensor, plan: &AugmentPlan) -> Result<Tensor, AugmentError> {
        let n = x.size4()?.0;
        if n != plan.n as i64 {
            return Err(AugmentError::Invalid(format!(
                "a plan for {} images given a batch of {n}",
                plan.n
            )));
        }
        let crop = self.crop_padding > 0 && n > 0;
        let flip = self.hflip && n > 0;
        let cut = self.cutout > 0 && n > 0;
        let want = |on: bool, v: usize, what: &str| -> Result<(), AugmentError> {
            if on && v != plan.n {
                return Err(AugmentError::Invalid(format!(
                    "the plan has no {what} for this pipeline: draw it with the same pipeline"
                )));
            }
            Ok(())
        };
        want(crop, plan.crop_y.len().min(plan.crop_x.len()), "crop offsets")?;
        want(flip, plan.flip.len(), "flips")?;
        want(cut, plan.cut_y.len().min(plan.cut_x.len()), "Cutout centres")?;
        // One upload when anything is drawn: rows crop y, crop x, flip, Cutout y, Cutout x
        // (unused rows zero).
        let numbers = if crop || flip || cut {
            let mut numbers = vec![0i64; 5 * plan.n];
            let rows: [&mut dyn Iterator<Item = i64>; 5] = [
                &mut plan.crop_y.iter().copied(),
                &mut plan.crop_x.iter().copied(),
                &mut plan.flip.iter().map(|&f| f as i64),
                &mut plan.cut_y.iter().copied(),
                &mut plan.cut_x.iter().copied(),
            ];
            for (chunk, row) in numbers.chunks_mut(plan.n.max(1)).zip(rows) {
                chunk.iter_mut().zip(row).for_each(|(slot, x)| *slot = x);
            }
            Some(crate::device::upload(
                Tensor::f_from_slice(&numbers)?.f_view([5, n])?,
                x.device(),
            )?)
        } else {
            None
        };
        let row = |r: i64, shape: &[i64]| -> Result<Tensor, AugmentError> {
            let t = numbers
                .as_ref()
                .ok_or_else(|| AugmentError::Invalid("plan numbers missing".into()))?;
            Ok(t.f_get(r)?.f_view(shape)?)
        };
        let mut y = x.shallow_clone();
        if crop {
            y = super::crop_at(&y, self.crop_padding, &row(0, &[n, 1])?, &row(1, &[n, 1])?)?;
        }
        if flip {
            y = super::flip_where(&y, &row(2, &[n, 1, 1, 1])?.f_ne(0)?)?;
        }
        for stage in &plan.stages {
            y = apply_ops(&y, stage, &self.ops)?;
        }
        if cut {
            y = super::cutout_at(&y, self.cutout, &row(3, &[n, 1, 1])?, &row(4, &[n, 1, 1])?)?;
        }
        Ok(y)
    }

    /// [`Pipeline::apply_plan`] for several batches (`xs[i]` with `plans[i]`) in one call, then
    /// normalised and split back; what each batch gets is exactly what applying its own plan
    /// gives. Batches of other sizes or kinds go through one at a time.
    pub fn apply_plans(&self, xs: &[Tensor], plans: &[AugmentPlan]) -> Result<Vec<Tensor>, AugmentError> {
        if xs.len() != plans.len() {
            return Err(AugmentError::Invalid(format!(
                "{} batches for {} plans",
                xs.len(),
                plans.len()
            )));
        }
        if xs.len() == 1 {
            return Ok(vec![self.normalize.apply(&self.apply_plan(&xs[0], &plans[0])?)?]);
        }
        let lens: Vec<i64> = xs.iter().map(|x| x.size().first().copied().unwrap_or(0)).collect();
        let y = self.apply_plan(&Tensor::f_cat(xs, 0)?, &AugmentPlan::concat(plans)?)?;
        let y = self.normalize.apply(&y)?;
        let mut out = Vec::with_capacity(xs.len());
        let mut start = 0;
        for len in lens {
            out.push(y.f_narrow(0, start, len)?);
            start += len;
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::rng::Rng;
    use tch::{Device, Kind};

    fn images(seed: u64, n: i64) -> Tensor {
        Rng::new(seed)
            .randint(256, &[n, 3, 12, 12], Device::Cpu)
            .unwrap()
            .to_kind(Kind::Uint8)
    }

    fn pipeline() -> Pipeline {
        let info = crate::data::DatasetInfo {
            name: "test".into(),
            channels: 3,
            height: 12,
            width: 12,
            classes: vec!["a".into(), "b".into()],
            hflip: true,
        };
        Pipeline::for_dataset(&info, vec![0.5; 3], vec![0.25; 3])
    }

    /// The plan draws from the streams in the order the step-by-step functions do, so a seed
    /// gives the images it gave before plans existed.
    #[test]
    fn a_plan_applies_what_the_step_by_step_functions_draw() {
        let p = pipeline();
        let x = images(1, 9);
        let sampler = "aws:uniform".parse::<Policy>().unwrap().sampler().unwrap();
        let (planned, draw) = p
            .augment_u8(&x, Some((&sampler, &mut Rng::new(7))), &mut Rng::new(3))
            .unwrap();
        let (mut rng, mut policy_rng) = (Rng::new(3), Rng::new(7));
        let y = crate::augment::random_crop(&x, p.crop_padding, &mut rng).unwrap();
        let y = crate::augment::random_hflip(&y, 0.5, &mut rng).unwrap();
        let (y, step_draw) = sampler.apply(&y, &p.ops, &mut policy_rng).unwrap();
        let y = crate::augment::cutout(&y, p.cutout, &mut rng).unwrap();
        assert_eq!(draw.as_ref(), Some(&step_draw));
        assert!(planned.equal(&y));
    }

    /// Several batches (different policies, different stage counts, none) in one call give
    /// each batch exactly what its own plan gives.
    #[test]
    fn plans_applied_together_equal_plans_applied_alone() {
        let p = pipeline();
        let policies = ["none", "aws:uniform", "randaugment:n=3,m=9", "autoaugment:cifar10"];
        let (mut xs, mut plans) = (Vec::new(), Vec::new());
        for (i, spec) in policies.iter().enumerate() {
            let sampler = spec.parse::<Policy>().unwrap().sampler().unwrap();
            let n = 5 + i as i64;
            xs.push(images(10 + i as u64, n));
            plans.push(
                p.plan(
                    n as usize,
                    12,
                    12,
                    Some((&sampler, &mut Rng::new(i as u64))),
                    &mut Rng::new(50 + i as u64),
                )
                .0,
            );
        }
        let together = p.apply_plans(&xs, &plans).unwrap();
        assert_eq!(together.len(), xs.len());
        let mut changed = 0;
        for ((x, plan), y) in xs.iter().zip(&plans).zip(&together) {
            let alone = p.normalize.apply(&p.apply_plan(x, plan).unwrap()).unwrap();
            assert!(y.equal(&alone));
            changed += i64::from(!alone.equal(&p.normalize.apply(x).unwrap()));
        }
        assert_eq!(changed, 4, "every batch was augmented");
        assert_eq!(AugmentPlan::concat(&plans).unwrap().len(), 5 + 6 + 7 + 8);
    }

    #[test]
    fn mismatched_plans_are_errors() {
        let p = pipeline();
        let plan = p.plan(4, 12, 12, None, &mut Rng::new(0)).0;
        let err = p.apply_plan(&images(0, 5), &plan).unwrap_err().to_string();
        assert!(err.contains("a plan for 4 images given a batch of 5"), "{err}");
        let bare = p.clone().with_crop_padding(0).with_hflip(false).with_cutout(0);
        let other = bare.plan(4, 12, 12, None, &mut Rng::new(0)).0;
        assert!(AugmentPlan::concat(&[plan.clone(), other.clone()])
            .unwrap_err()
            .to_string()
            .contains("different pipelines"));
        let err = p.apply_plan(&images(0, 4), &other).unwrap_err().to_string();
        assert!(err.contains("no crop offsets"), "{err}");
        assert!(p.apply_plans(&[images(0, 4)], &[]).is_err());
    }
}
