//! Batched, per-image augmentation on the device. Every function takes a uint8 N×C×H×W batch
//! and a [`Rng`] stream for each image's random choices; no per-image loop over tensors, no
//! trip back to the host.

mod ops;
mod pipeline;
pub mod space;

pub use ops::{affine, apply_kind, apply_ops, AugmentError, Interpolation, Op, OpKind, OpOptions};
pub use pipeline::{Normalize, Pipeline};

use tch::{Kind, TchError, Tensor};

use crate::rng::Rng;

/// Random crop of the original size after zero padding by `pad` on every side, an
/// independent offset per image (torchvision `RandomCrop(size, padding=pad)`).
pub fn random_crop(x: &Tensor, pad: i64, rng: &mut Rng) -> Result<Tensor, TchError> {
    if pad <= 0 {
        return Ok(x.shallow_clone());
    }
    let (n, c, h, w) = x.size4()?;
    let dev = x.device();
    let padded = x.f_constant_pad_nd([pad, pad, pad, pad])?;
    let off_y = rng.randint(2 * pad + 1, &[n, 1], dev)?;
    let off_x = rng.randint(2 * pad + 1, &[n, 1], dev)?;
    let rows = (off_y + Tensor::f_arange(h, (Kind::Int64, dev))?.view([1, h]))
        .view([n, 1, h, 1])
        .expand([n, c, h, w + 2 * pad], false);
    let cols = (off_x + Tensor::f_arange(w, (Kind::Int64, dev))?.view([1, w]))
        .view([n, 1, 1, w])
        .expand([n, c, h, w], false);
    padded.f_gather(2, &rows, false)?.f_gather(3, &cols, false)
}

/// Horizontal flip of each image with probability `p`.
pub fn random_hflip(x: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor, TchError> {
    let n = x.size().first().copied().unwrap_or(0);
    let mask = rng.bernoulli(p, &[n, 1, 1, 1], x.device())?;
    x.f_flip([3])?.f_where_self(&mask, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn crop_is_a_shifted_window_of_the_padded_image() {
        let x = Tensor::arange(2 * 16, (Kind::Uint8, Device::Cpu)).view([2, 1, 4, 4]) + 1;
        let y = random_crop(&x, 2, &mut Rng::new(3)).unwrap();
        assert_eq!(y.size(), vec![2, 1, 4, 4]);
        // Every kept pixel is a pixel of the same image's padded version at a fixed shift.
        let p = x.constant_pad_nd([2, 2, 2, 2]);
        for i in 0..2 {
            let found = (0..5).flat_map(|dy| (0..5).map(move |dx| (dy, dx))).any(|(dy, dx)| {
                p.get(i).narrow(1, dy, 4).narrow(2, dx, 4).equal(&y.get(i))
            });
            assert!(found, "image {i} is not a window of its padded image");
        }
    }

    #[test]
    fn flip_is_per_image() {
        let x = Tensor::arange(64 * 4, (Kind::Uint8, Device::Cpu)).view([64, 1, 2, 2]);
        let y = random_hflip(&x, 0.5, &mut Rng::new(0)).unwrap();
        let flipped = y.ne_tensor(&x).any_dim(1, false).any_dim(1, false).any_dim(1, false);
        let k = flipped.sum(Kind::Int64).int64_value(&[]);
        assert!(k > 10 && k < 54, "{k} of 64 flipped");
        assert!(y.flip([3]).eq_tensor(&x).logical_or(&y.eq_tensor(&x)).all().int64_value(&[]) == 1);
    }
}
