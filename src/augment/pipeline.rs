//! The per-dataset training pipeline: crop → flip (where the dataset allows) → normalise.
//! The policy and Cutout slot in between flip and normalise (METHOD.md).

use serde::{Deserialize, Serialize};
use tch::{Kind, TchError, Tensor};

use crate::data::DatasetInfo;
use crate::rng::Rng;

/// Per-channel normalisation, `(x/255 − mean)/std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normalize {
    /// Map a uint8 batch to normalised float.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let c = self.mean.len() as i64;
        let dev = x.device();
        let mean = Tensor::from_slice(&self.mean).to_kind(Kind::Float).to_device(dev).view([1, c, 1, 1]);
        let std = Tensor::from_slice(&self.std).to_kind(Kind::Float).to_device(dev).view([1, c, 1, 1]);
        x.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?.f_sub(&mean)?.f_div(&std)
    }
}

/// What happens to a training batch before the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Zero padding of the random crop (CIFAR: 4; ours elsewhere: size/8).
    pub crop_padding: i64,
    pub hflip: bool,
    pub normalize: Normalize,
}

impl Pipeline {
    /// Defaults for a dataset: padding size/8, flip only where it keeps the label, and the
    /// training images' channel statistics.
    pub fn for_dataset(info: &DatasetInfo, mean: Vec<f64>, std: Vec<f64>) -> Self {
        Self {
            crop_padding: info.height.min(info.width) / 8,
            hflip: info.hflip,
            normalize: Normalize { mean, std: std.into_iter().map(|s| s.max(1e-3)).collect() },
        }
    }

    /// No augmentation, just normalisation (evaluation).
    pub fn eval(&self, x: &Tensor) -> Result<Tensor, TchError> {
        self.normalize.apply(x)
    }

    /// A training batch: crop, flip, normalise.
    pub fn train(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor, TchError> {
        let mut y = super::random_crop(x, self.crop_padding, rng)?;
        if self.hflip {
            y = super::random_hflip(&y, 0.5, rng)?;
        }
        self.normalize.apply(&y)
    }
}
