//! Looking at θ before trusting it: `sample` draws pairs from θ and shows them applied to
//! validation images; `gallery` shows one image under each of the 36 operations.

use tch::{Device, Tensor};

use super::error::SearchError;
use super::report::{OpGallery, SampleReport};
use crate::augment::space::{aws_name, aws_ops, pair_name};
use crate::augment::{apply_ops, AugmentError, Pipeline};
use crate::data::Dataset;
use crate::policy::{PairDistribution, Policy};
use crate::rng::Rng;

/// A uint8 tensor's bytes on the host, in row-major order.
fn host_bytes(t: &Tensor) -> Result<Vec<u8>, AugmentError> {
    let flat = t.f_contiguous()?.f_view([-1])?;
    Ok(Vec::<u8>::try_from(flat)?)
}

/// `n` pairs drawn from θ's distribution `dist` with their probabilities, and θ applied to up
/// to `n` validation images (the same draws) for a preview.
pub(super) fn sample(
    val: &Dataset,
    pipeline: &Pipeline,
    dist: &PairDistribution,
    n: usize,
    rng: Rng,
) -> Result<SampleReport, SearchError> {
    let policy = Policy::AwsTheta {
        probs: dist.clone(),
        source: None,
    };
    let (mut report, mut rng) = preview(val, pipeline, &policy, n, rng)?;
    // More draws than previews: list n pairs, drawing the rest without images.
    while report.pairs.len() < n {
        let k = dist.sample_coupled(rng.next_u64());
        report.pairs.push((k, pair_name(k), dist.probs()[k]));
    }
    Ok(report)
}

/// `policy`'s draws for up to `n` validation images, applied (AWS policies also list the
/// pairs they drew); `rng` is where the caller's draws come from, returned for more.
pub(super) fn preview(
    val: &Dataset,
    pipeline: &Pipeline,
    policy: &Policy,
    n: usize,
    mut rng: Rng,
) -> Result<(SampleReport, Rng), SearchError> {
    let sampler = policy.sampler()?;
    let take = (n as i64).min(val.len());
    let originals = val
        .images
        .f_narrow(0, 0, take)
        .and_then(|t| t.f_to_device(Device::Cpu))
        .map_err(AugmentError::from)?;
    let (_, _, h, w) = originals.size4().map_err(AugmentError::from)?;
    let draw = sampler.draw(take as usize, h, w, &mut rng);
    let mut augmented = originals.shallow_clone();
    for stage in &draw.stages {
        augmented = apply_ops(&augmented, stage, &pipeline.ops)?;
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
pub(super) fn gallery(val: &Dataset, pipeline: &Pipeline, index: usize) -> Result<OpGallery, SearchError> {
    let n = val.len();
    if n == 0 {
        return Err(SearchError::NoValidationImages);
    }
    if index as i64 >= n {
        return Err(SearchError::NoSuchImage { index, images: n });
    }
    let one = val
        .images
        .f_narrow(0, index as i64, 1)
        .and_then(|t| t.f_to_device(Device::Cpu))
        .map_err(AugmentError::from)?;
    let ops = aws_ops();
    let batch = one
        .f_expand([ops.len() as i64, -1, -1, -1], false)
        .and_then(|t| t.f_contiguous())
        .map_err(AugmentError::from)?;
    let augmented = apply_ops(&batch, &ops, &pipeline.ops)?;
    let all = Tensor::f_cat(&[&one, &augmented], 0).map_err(AugmentError::from)?;
    let mut labels = vec!["original".to_owned()];
    labels.extend((0..ops.len()).map(aws_name));
    Ok(OpGallery {
        shape: all.size(),
        pixels: host_bytes(&all)?,
        labels,
    })
}
