//! Looking at θ before trusting it: `sample` draws pairs from θ and shows them applied to
//! validation images; `gallery` shows one image under each of the 36 operations.

use tch::{Device, Tensor};

use super::{stream, OpGallery, SampleReport, SearchError, Session};
use crate::augment::space::{aws_name, aws_ops, pair_name};
use crate::augment::{apply_ops, AugmentError};
use crate::policy::Policy;
use crate::rng::Rng;

/// A uint8 tensor's bytes on the host, in row-major order.
fn host_bytes(t: &Tensor) -> Result<Vec<u8>, AugmentError> {
    let flat = t.f_contiguous()?.f_view([-1])?;
    Ok(Vec::<u8>::try_from(flat)?)
}

impl Session {
    /// `n` pairs drawn from θ with their probabilities, and the current θ applied to up to `n`
    /// validation images (the same draws) for a preview.
    pub fn sample(&mut self, n: usize) -> Result<SampleReport, SearchError> {
        let n = super::session::within(&crate::limits::SAMPLES, n)?;
        let policy = self.current_policy()?;
        let dist = self.ppo.theta.distribution()?;
        let (mut report, mut rng) = self.draw_preview(&policy, n)?;
        // More draws than previews: list n pairs, drawing the rest without images.
        while report.pairs.len() < n {
            let k = dist.sample_coupled(rng.next_u64());
            report.pairs.push((k, pair_name(k), dist.probs()[k]));
        }
        Ok(report)
    }

    /// Any policy applied to the first `n` validation images — what it does to this data,
    /// before spending a trajectory on it (AWS policies also list the pairs they drew).
    pub fn preview(&mut self, policy: &Policy, n: usize) -> Result<SampleReport, SearchError> {
        let n = super::session::within(&crate::limits::SAMPLES, n)?;
        Ok(self.draw_preview(policy, n)?.0)
    }

    /// `policy`'s draws for up to `n` validation images, applied; each call draws afresh.
    fn draw_preview(&mut self, policy: &Policy, n: usize) -> Result<(SampleReport, Rng), SearchError> {
        let sampler = policy.sampler()?;
        self.samples += 1;
        let mut rng = Rng::derive(
            self.config.seed,
            &[stream::SAMPLE, self.ppo.updates as u64, self.samples],
        );
        let take = (n as i64).min(self.splits.val.len());
        let originals = self
            .splits
            .val
            .images
            .f_narrow(0, 0, take)
            .and_then(|t| t.f_to_device(Device::Cpu))
            .map_err(AugmentError::from)?;
        let (_, _, h, w) = originals.size4().map_err(AugmentError::from)?;
        let draw = sampler.draw(take as usize, h, w, &mut rng);
        let mut augmented = originals.shallow_clone();
        for stage in &draw.stages {
            augmented = apply_ops(&augmented, stage, &self.pipeline.ops)?;
        }
        let preview_ops = (0..take as usize)
            .map(|i| {
                let ops: Vec<String> = draw.stages.iter().map(|s| s[i].to_string()).collect();
                if ops.is_empty() {
                    "(nothing)".to_owned()
                } else {
                    ops.join(" + ")
                }
            })
            .collect();
        let probs = policy.distribution().map(|d| d.probs().to_vec());
        let pairs = draw
            .pairs
            .unwrap_or_default()
            .iter()
            .map(|&k| {
                let p = probs.as_ref().map_or(f64::NAN, |p| p[k as usize]);
                (k as usize, pair_name(k as usize), p)
            })
            .collect();
        let report = SampleReport {
            pairs,
            preview_shape: originals.size(),
            preview_original: host_bytes(&originals)?,
            preview_augmented: host_bytes(&augmented)?,
            preview_ops,
        };
        Ok((report, rng))
    }

    /// Validation image `index` under each of the 36 operations (positive sign).
    pub fn gallery(&self, index: usize) -> Result<OpGallery, SearchError> {
        let n = self.splits.val.len();
        if n == 0 {
            return Err(SearchError::Invalid("the validation split is empty".into()));
        }
        if index as i64 >= n {
            return Err(SearchError::Invalid(format!(
                "image {index} is past the validation split's {n} images (0 to {})",
                n - 1
            )));
        }
        let one = self
            .splits
            .val
            .images
            .f_narrow(0, index as i64, 1)
            .and_then(|t| t.f_to_device(Device::Cpu))
            .map_err(AugmentError::from)?;
        let ops = aws_ops();
        let batch = one
            .f_expand([ops.len() as i64, -1, -1, -1], false)
            .and_then(|t| t.f_contiguous())
            .map_err(AugmentError::from)?;
        let augmented = apply_ops(&batch, &ops, &self.pipeline.ops)?;
        let all = Tensor::f_cat(&[&one, &augmented], 0).map_err(AugmentError::from)?;
        let mut labels = vec!["original".to_owned()];
        labels.extend((0..ops.len()).map(aws_name));
        Ok(OpGallery {
            shape: all.size(),
            pixels: host_bytes(&all)?,
            labels,
        })
    }
}
