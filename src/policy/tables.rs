//! Published policies as torchvision ships them (`transforms/v2/_auto_augment.py`): the
//! AutoAugment tables and the magnitude grids of AutoAugment/RandAugment and
//! TrivialAugmentWide, computed by the same libtorch kernels torchvision calls, so the
//! magnitudes we apply are the ones torchvision applies, to the bit.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::augment::OpKind;

/// Which magnitude grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// AutoAugment and RandAugment.
    Standard,
    /// TrivialAugmentWide.
    Wide,
}

/// torch.linspace in float32, computed by libtorch itself: its CPU kernel's rounding (vector
/// chunks, symmetric halves) is not a formula worth re-deriving, and the same library gives
/// the same bits torchvision sees.
///
/// Inputs are a handful of constants on the CPU (at most 31 steps between fixed endpoints), so
/// libtorch failing here is a broken installation, not bad input: it stops with that message.
pub fn linspace_f32(start: f64, end: f64, steps: usize) -> Vec<f64> {
    Tensor::f_linspace(start, end, steps as i64, (Kind::Float, Device::Cpu))
        .and_then(|t| t.f_to_kind(Kind::Double))
        .and_then(|t| Vec::<f64>::try_from(&t))
        .unwrap_or_else(|e| panic!("libtorch failed on constant inputs (a broken installation?): {e}"))
}

/// torchvision's posterize bins: `(8 − arange(bins) / ((bins − 1) / div)).round()`, float32.
/// Constants on the CPU, as [`linspace_f32`].
fn posterize_bins(bins: usize, div: f64) -> Vec<f64> {
    Tensor::f_arange(bins as i64, (Kind::Int64, Device::Cpu))
        .and_then(|t| t.f_divide_scalar((bins as f64 - 1.0) / div))
        .and_then(|t| t.f_neg())
        .and_then(|t| t.f_add_scalar(8.0))
        .and_then(|t| t.f_round())
        .and_then(|t| t.f_to_kind(Kind::Double))
        .and_then(|t| Vec::<f64>::try_from(&t))
        .unwrap_or_else(|e| panic!("libtorch failed on constant inputs (a broken installation?): {e}"))
}

type GridKey = (bool, OpKind, usize, i64, i64);

/// The whole grid of `kind` (all bins), cached: policies draw from it per image.
fn grid_values(grid: Grid, kind: OpKind, bins: usize, h: i64, w: i64) -> Vec<f64> {
    static CACHE: Mutex<Option<HashMap<GridKey, Vec<f64>>>> = Mutex::new(None);
    let key = (grid == Grid::Wide, kind, bins, h, w);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(v) = map.get(&key) {
        return v.clone();
    }
    let (shear, rotate, enhance, posterize_div) = match grid {
        Grid::Standard => (0.3, 30.0, 0.9, 4.0),
        Grid::Wide => (0.99, 135.0, 0.99, 6.0),
    };
    let lin = |max: f64| linspace_f32(0.0, max, bins);
    let values = match kind {
        OpKind::ShearX | OpKind::ShearY => lin(shear),
        OpKind::TranslateX | OpKind::TranslateY => {
            let size = if kind == OpKind::TranslateX { w } else { h } as f64;
            let pixels = match grid {
                Grid::Standard => lin(150.0 / 331.0 * size),
                Grid::Wide => lin(32.0),
            };
            pixels.into_iter().map(|p| p / size).collect()
        }
        OpKind::Rotate => lin(rotate),
        OpKind::Brightness | OpKind::Color | OpKind::Contrast | OpKind::Sharpness => lin(enhance),
        OpKind::Posterize => posterize_bins(bins, posterize_div),
        // v2 multiplies the [1, 0] grid by the dtype's maximum, 255.
        OpKind::Solarize => linspace_f32(1.0, 0.0, bins).into_iter().map(|v| 255.0 * v).collect(),
        OpKind::Identity | OpKind::AutoContrast | OpKind::Equalize | OpKind::Invert => vec![0.0; bins],
    };
    map.insert(key, values.clone());
    values
}

/// The magnitude of `kind` at `bin` of a `bins`-level grid, in augwise's units (ops.rs), for
/// an H×W image; `None` for ops without magnitude.
pub fn magnitude(grid: Grid, kind: OpKind, bin: usize, bins: usize, h: i64, w: i64) -> Option<f64> {
    kind.range()?;
    grid_values(grid, kind, bins, h, w).get(bin).copied()
}

/// The ops RandAugment and TrivialAugmentWide draw from (no Invert), in torchvision's order.
pub const RAND_OPS: [OpKind; 14] = [
    OpKind::Identity,
    OpKind::ShearX,
    OpKind::ShearY,
    OpKind::TranslateX,
    OpKind::TranslateY,
    OpKind::Rotate,
    OpKind::Brightness,
    OpKind::Color,
    OpKind::Contrast,
    OpKind::Sharpness,
    OpKind::Posterize,
    OpKind::Solarize,
    OpKind::AutoContrast,
    OpKind::Equalize,
];

/// One (op, probability, magnitude bin) of a sub-policy; bins index the 10-level grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubOp {
    pub op: OpKind,
    pub prob: f64,
    pub bin: Option<usize>,
}

/// AutoAugment's learned tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoAugmentTable {
    Cifar10,
    Svhn,
    Imagenet,
}

impl AutoAugmentTable {
    pub const ALL: [AutoAugmentTable; 3] = [Self::Cifar10, Self::Svhn, Self::Imagenet];

    pub fn name(self) -> &'static str {
        match self {
            Self::Cifar10 => "cifar10",
            Self::Svhn => "svhn",
            Self::Imagenet => "imagenet",
        }
    }

    /// The 25 sub-policies of two (op, probability, bin) each.
    pub fn sub_policies(self) -> Vec<Vec<SubOp>> {
        use OpKind::*;
        type Row = [(OpKind, f64, i64); 2];
        // -1 stands for "no magnitude" (torchvision's None).
        let rows: &[Row] = match self {
            Self::Imagenet => &[
                [(Posterize, 0.4, 8), (Rotate, 0.6, 9)],
                [(Solarize, 0.6, 5), (AutoContrast, 0.6, -1)],
                [(Equalize, 0.8, -1), (Equalize, 0.6, -1)],
                [(Posterize, 0.6, 7), (Posterize, 0.6, 6)],
                [(Equalize, 0.4, -1), (Solarize, 0.2, 4)],
                [(Equalize, 0.4, -1), (Rotate, 0.8, 8)],
                [(Solarize, 0.6, 3), (Equalize, 0.6, -1)],
                [(Posterize, 0.8, 5), (Equalize, 1.0, -1)],
                [(Rotate, 0.2, 3), (Solarize, 0.6, 8)],
                [(Equalize, 0.6, -1), (Posterize, 0.4, 6)],
                [(Rotate, 0.8, 8), (Color, 0.4, 0)],
                [(Rotate, 0.4, 9), (Equalize, 0.6, -1)],
                [(Equalize, 0.0, -1), (Equalize, 0.8, -1)],
                [(Invert, 0.6, -1), (Equalize, 1.0, -1)],
                [(Color, 0.6, 4), (Contrast, 1.0, 8)],
                [(Rotate, 0.8, 8), (Color, 1.0, 2)],
                [(Color, 0.8, 8), (Solarize, 0.8, 7)],
                [(Sharpness, 0.4, 7), (Invert, 0.6, -1)],
                [(ShearX, 0.6, 5), (Equalize, 1.0, -1)],
                [(Color, 0.4, 0), (Equalize, 0.6, -1)],
                [(Equalize, 0.4, -1), (Solarize, 0.2, 4)],
                [(Solarize, 0.6, 5), (AutoContrast, 0.6, -1)],
                [(Invert, 0.6, -1), (Equalize, 1.0, -1)],
                [(Color, 0.6, 4), (Contrast, 1.0, 8)],
                [(Equalize, 0.8, -1), (Equalize, 0.6, -1)],
            ],
            Self::Cifar10 => &[
                [(Invert, 0.1, -1), (Contrast, 0.2, 6)],
                [(Rotate, 0.7, 2), (TranslateX, 0.3, 9)],
                [(Sharpness, 0.8, 1), (Sharpness, 0.9, 3)],
                [(ShearY, 0.5, 8), (TranslateY, 0.7, 9)],
                [(AutoContrast, 0.5, -1), (Equalize, 0.9, -1)],
                [(ShearY, 0.2, 7), (Posterize, 0.3, 7)],
                [(Color, 0.4, 3), (Brightness, 0.6, 7)],
                [(Sharpness, 0.3, 9), (Brightness, 0.7, 9)],
                [(Equalize, 0.6, -1), (Equalize, 0.5, -1)],
                [(Contrast, 0.6, 7), (Sharpness, 0.6, 5)],
                [(Color, 0.7, 7), (TranslateX, 0.5, 8)],
                [(Equalize, 0.3, -1), (AutoContrast, 0.4, -1)],
                [(TranslateY, 0.4, 3), (Sharpness, 0.2, 6)],
                [(Brightness, 0.9, 6), (Color, 0.2, 8)],
                [(Solarize, 0.5, 2), (Invert, 0.0, -1)],
                [(Equalize, 0.2, -1), (AutoContrast, 0.6, -1)],
                [(Equalize, 0.2, -1), (Equalize, 0.6, -1)],
                [(Color, 0.9, 9), (Equalize, 0.6, -1)],
                [(AutoContrast, 0.8, -1), (Solarize, 0.2, 8)],
                [(Brightness, 0.1, 3), (Color, 0.7, 0)],
                [(Solarize, 0.4, 5), (AutoContrast, 0.9, -1)],
                [(TranslateY, 0.9, 9), (TranslateY, 0.7, 9)],
                [(AutoContrast, 0.9, -1), (Solarize, 0.8, 3)],
                [(Equalize, 0.8, -1), (Invert, 0.1, -1)],
                [(TranslateY, 0.7, 9), (AutoContrast, 0.9, -1)],
            ],
            Self::Svhn => &[
                [(ShearX, 0.9, 4), (Invert, 0.2, -1)],
                [(ShearY, 0.9, 8), (Invert, 0.7, -1)],
                [(Equalize, 0.6, -1), (Solarize, 0.6, 6)],
                [(Invert, 0.9, -1), (Equalize, 0.6, -1)],
                [(Equalize, 0.6, -1), (Rotate, 0.9, 3)],
                [(ShearX, 0.9, 4), (AutoContrast, 0.8, -1)],
                [(ShearY, 0.9, 8), (Invert, 0.4, -1)],
                [(ShearY, 0.9, 5), (Solarize, 0.2, 6)],
                [(Invert, 0.9, -1), (AutoContrast, 0.8, -1)],
                [(Equalize, 0.6, -1), (Rotate, 0.9, 3)],
                [(ShearX, 0.9, 4), (Solarize, 0.3, 3)],
                [(ShearY, 0.8, 8), (Invert, 0.7, -1)],
                [(Equalize, 0.9, -1), (TranslateY, 0.6, 6)],
                [(Invert, 0.9, -1), (Equalize, 0.6, -1)],
                [(Contrast, 0.3, 3), (Rotate, 0.8, 4)],
                [(Invert, 0.8, -1), (TranslateY, 0.0, 2)],
                [(ShearY, 0.7, 6), (Solarize, 0.4, 8)],
                [(Invert, 0.6, -1), (Rotate, 0.8, 4)],
                [(ShearY, 0.3, 7), (TranslateX, 0.9, 3)],
                [(ShearX, 0.1, 6), (Invert, 0.6, -1)],
                [(Solarize, 0.7, 2), (TranslateY, 0.6, 7)],
                [(ShearY, 0.8, 4), (Invert, 0.8, -1)],
                [(ShearX, 0.7, 9), (TranslateY, 0.8, 3)],
                [(ShearY, 0.8, 5), (AutoContrast, 0.7, -1)],
                [(ShearX, 0.7, 2), (Invert, 0.1, -1)],
            ],
        };
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|&(op, prob, bin)| SubOp {
                        op,
                        prob,
                        bin: (bin >= 0).then_some(bin as usize),
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    /// Within one float32 step of torchvision's value: linspace's last bit follows the CPU's
    /// kernel path (vectorised or not, `ATEN_CPU_CAPABILITY`), on this side as on torchvision's.
    fn within_f32_step(got: Option<f64>, want: f64) {
        let got = got.unwrap();
        let step = f64::from(f32::EPSILON) * want.abs();
        assert!(
            (got - want).abs() <= step,
            "{got} is not within one float32 step of {want}"
        );
    }

    #[test]
    fn grids_match_torchvision() {
        // Values torchvision computes (float32 linspace, then float()).
        within_f32_step(magnitude(Grid::Standard, OpKind::Rotate, 3, 10, 32, 32), 10.0);
        within_f32_step(
            magnitude(Grid::Standard, OpKind::ShearX, 9, 10, 32, 32),
            0.30000001192092896,
        );
        within_f32_step(
            magnitude(Grid::Standard, OpKind::Solarize, 3, 10, 32, 32),
            255.0 * 0.6666666865348816,
        );
        assert_eq!(magnitude(Grid::Standard, OpKind::Posterize, 3, 10, 32, 32), Some(7.0));
        assert_eq!(magnitude(Grid::Standard, OpKind::Posterize, 6, 10, 32, 32), Some(5.0));
        assert_eq!(magnitude(Grid::Standard, OpKind::Posterize, 9, 10, 32, 32), Some(4.0));
        assert_eq!(magnitude(Grid::Wide, OpKind::Posterize, 30, 31, 32, 32), Some(2.0));
        assert_eq!(magnitude(Grid::Standard, OpKind::Solarize, 0, 10, 32, 32), Some(255.0));
        assert_eq!(magnitude(Grid::Standard, OpKind::Invert, 3, 10, 32, 32), None);
        let t = magnitude(Grid::Wide, OpKind::TranslateX, 30, 31, 28, 28).unwrap();
        assert!((t * 28.0 - 32.0).abs() < 1e-5);
        for table in AutoAugmentTable::ALL {
            let p = table.sub_policies();
            assert_eq!(p.len(), 25);
            assert!(p.iter().all(|s| s.len() == 2));
        }
    }
}
