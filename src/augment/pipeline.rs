//! The per-dataset training pipeline (a policy's ops come in through [`OpSampler`]).

use serde::{Deserialize, Serialize};
use std::sync::Mutex;

use tch::{Device, Kind, TchError, Tensor};

use super::ops::{AugmentError, OpOptions};
use super::plan::{AugmentPlan, Draw, OpSampler};
use crate::data::DatasetInfo;
use crate::rng::Rng;

/// Per-channel normalisation, `(x/255 − mean)/std`. The mean and std tensors are uploaded
/// once per device and kept, not copied from the host on every batch.
#[derive(Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    #[serde(skip)]
    on_device: Mutex<Option<(Device, Tensor, Tensor)>>,
}

impl Normalize {
    pub fn new(mean: Vec<f64>, std: Vec<f64>) -> Self {
        Self {
            mean,
            std,
            on_device: Mutex::new(None),
        }
    }

    /// Map a uint8 batch to normalised float.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let dev = x.device();
        let mut cache = self.on_device.lock().unwrap_or_else(|e| e.into_inner());
        let stale = !matches!(&*cache, Some((d, _, _)) if *d == dev);
        if stale {
            let c = self.mean.len() as i64;
            let column = |v: &[f64]| -> Result<Tensor, TchError> {
                Tensor::f_from_slice(v)?
                    .f_to_kind(Kind::Float)?
                    .f_to_device(dev)?
                    .f_view([1, c, 1, 1])
            };
            *cache = Some((dev, column(&self.mean)?, column(&self.std)?));
        }
        let Some((_, mean, std)) = cache.as_ref() else {
            return Err(TchError::Kind("normalisation tensors missing".into()));
        };
        x.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?.f_sub(mean)?.f_div(std)
    }
}

impl Clone for Normalize {
    fn clone(&self) -> Self {
        Self::new(self.mean.clone(), self.std.clone())
    }
}

impl PartialEq for Normalize {
    fn eq(&self, other: &Self) -> bool {
        self.mean == other.mean && self.std == other.std
    }
}

impl std::fmt::Debug for Normalize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Normalize")
            .field("mean", &self.mean)
            .field("std", &self.std)
            .finish()
    }
}

/// What happens to a training batch before the model sees it (docs/method.md): random crop with
/// padding → horizontal flip (only where the dataset allows) → the policy's ops → Cutout
/// (one hole, always) → normalise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Zero padding of the random crop (CIFAR: 4; ours elsewhere: size/8).
    pub crop_padding: i64,
    pub hflip: bool,
    /// Side of the Cutout hole, 0 for none (CIFAR: 16; ours elsewhere: size/2).
    pub cutout: i64,
    /// Interpolation and fill of the geometric policy ops.
    pub ops: OpOptions,
    pub normalize: Normalize,
}

impl Pipeline {
    /// Defaults for a dataset: padding size/8, flip only where it keeps the label, Cutout
    /// size/2, and the training images' channel statistics.
    pub fn for_dataset(info: &DatasetInfo, mean: Vec<f64>, std: Vec<f64>) -> Self {
        let size = info.height.min(info.width);
        Self {
            crop_padding: size / 8,
            hflip: info.hflip,
            cutout: size / 2,
            ops: OpOptions::default(),
            normalize: Normalize::new(mean, std.into_iter().map(|s| s.max(1e-3)).collect()),
        }
    }

    pub fn with_cutout(mut self, side: i64) -> Self {
        self.cutout = side;
        self
    }

    pub fn with_crop_padding(mut self, pad: i64) -> Self {
        self.crop_padding = pad;
        self
    }

    pub fn with_hflip(mut self, on: bool) -> Self {
        self.hflip = on;
        self
    }

    pub fn with_ops(mut self, ops: OpOptions) -> Self {
        self.ops = ops;
        self
    }

    /// No augmentation, just normalisation (evaluation).
    pub fn eval(&self, x: &Tensor) -> Result<Tensor, TchError> {
        self.normalize.apply(x)
    }

    /// Every random choice for `n` images of `h`×`w`, drawn in the order the ops apply: crop
    /// offsets, flips and Cutout centres from `rng`, the policy's ops from `policy_rng` (two
    /// policies given the same `rng` see the same crops, flips and holes: common random
    /// numbers). Also returns what the policy drew.
    pub fn plan(
        &self,
        n: usize,
        h: i64,
        w: i64,
        policy: Option<(&dyn OpSampler, &mut Rng)>,
        rng: &mut Rng,
    ) -> (AugmentPlan, Option<Draw>) {
        let mut plan = AugmentPlan {
            n,
            ..Default::default()
        };
        if self.crop_padding > 0 {
            plan.crop_y = rng.randint_host(2 * self.crop_padding + 1, n);
            plan.crop_x = rng.randint_host(2 * self.crop_padding + 1, n);
        }
        if self.hflip {
            plan.flip = rng.bernoulli_host(0.5, n);
        }
        let draw = policy.map(|(p, policy_rng)| p.draw(n, h, w, policy_rng));
        if let Some(d) = &draw {
            plan.stages = d.stages.clone();
        }
        if self.cutout > 0 {
            plan.cut_y = rng.randint_host(h, n);
            plan.cut_x = rng.randint_host(w, n);
        }
        (plan, draw)
    }

    /// The uint8 batch after crop, flip, the policy (if any) and Cutout, and what the policy
    /// drew; normalisation is left to the caller so previews can show the images. The crop,
    /// flip and Cutout draw from `rng`, the policy from `policy_rng` (see [`Pipeline::plan`]).
    pub fn augment_u8(
        &self,
        x: &Tensor,
        policy: Option<(&dyn OpSampler, &mut Rng)>,
        rng: &mut Rng,
    ) -> Result<(Tensor, Option<Draw>), AugmentError> {
        let (n, _, h, w) = x.size4()?;
        let (plan, draw) = self.plan(n as usize, h, w, policy, rng);
        Ok((self.apply_plan(x, &plan)?, draw))
    }

    /// A training batch without a policy: crop, flip, Cutout, normalise.
    pub fn train(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor, AugmentError> {
        let (y, _) = self.augment_u8(x, None, rng)?;
        Ok(self.normalize.apply(&y)?)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn normalize_is_per_channel_and_survives_serde() {
        let n = Normalize::new(vec![0.5, 0.0], vec![0.25, 1.0]);
        let x = Tensor::from_slice(&[255u8, 0]).view([1, 2, 1, 1]);
        let y = n.apply(&x).unwrap();
        assert_eq!(y.double_value(&[0, 0, 0, 0]), 2.0); // (1 − 0.5)/0.25
        assert_eq!(y.double_value(&[0, 1, 0, 0]), 0.0);
        // The cached tensors give the same result; a deserialised copy rebuilds them.
        assert!(n.apply(&x).unwrap().equal(&y));
        let back: Normalize = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
        assert_eq!(back, n);
        assert!(back.apply(&x).unwrap().equal(&y));
    }
}
