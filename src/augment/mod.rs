//! Batched, per-image augmentation on the device. Every function takes a uint8 N×C×H×W batch
//! and a [`Rng`] stream for each image's random choices; no per-image loop over tensors, no
//! trip back to the host.

mod ops;
mod pipeline;
mod plan;
pub mod space;

pub use ops::{affine, apply_kind, apply_ops, AugmentError, Interpolation, Op, OpKind, OpOptions};
pub use pipeline::{Normalize, Pipeline};
pub use plan::{AugmentPlan, Draw, OpSampler};

use tch::{Kind, TchError, Tensor};

use crate::rng::Rng;

/// Random crop of the original size after zero padding by `pad` on every side, an
/// independent offset per image (torchvision `RandomCrop(size, padding=pad)`).
pub fn random_crop(x: &Tensor, pad: i64, rng: &mut Rng) -> Result<Tensor, TchError> {
    if pad <= 0 {
        return Ok(x.shallow_clone());
    }
    let n = x.size4()?.0;
    let off_y = rng.randint(2 * pad + 1, &[n, 1], x.device())?;
    let off_x = rng.randint(2 * pad + 1, &[n, 1], x.device())?;
    crop_at(x, pad, &off_y, &off_x)
}

/// The crop of [`random_crop`] at given offsets (N×1 int64 in 0..=2·pad, on `x`'s device).
pub(crate) fn crop_at(x: &Tensor, pad: i64, off_y: &Tensor, off_x: &Tensor) -> Result<Tensor, TchError> {
    let (n, c, h, w) = x.size4()?;
    let dev = x.device();
    let padded = x.f_constant_pad_nd([pad, pad, pad, pad])?;
    let rows = off_y
        .f_add(&Tensor::f_arange(h, (Kind::Int64, dev))?.f_view([1, h])?)?
        .f_view([n, 1, h, 1])?
        .f_expand([n, c, h, w + 2 * pad], false)?;
    let cols = off_x
        .f_add(&Tensor::f_arange(w, (Kind::Int64, dev))?.f_view([1, w])?)?
        .f_view([n, 1, 1, w])?
        .f_expand([n, c, h, w], false)?;
    padded.f_gather(2, &rows, false)?.f_gather(3, &cols, false)
}

/// Cutout (DeVries & Taylor 2017): one `side`×`side` hole of zeros per image, centred
/// uniformly in the image and clipped at its borders (so holes near an edge are smaller).
pub fn cutout(x: &Tensor, side: i64, rng: &mut Rng) -> Result<Tensor, TchError> {
    if side <= 0 {
        return Ok(x.shallow_clone());
    }
    let (n, _, h, w) = x.size4()?;
    let cy = rng.randint(h, &[n, 1, 1], x.device())?;
    let cx = rng.randint(w, &[n, 1, 1], x.device())?;
    cutout_at(x, side, &cy, &cx)
}

/// The holes of [`cutout`] at given centres (N×1×1 int64, on `x`'s device).
pub(crate) fn cutout_at(x: &Tensor, side: i64, cy: &Tensor, cx: &Tensor) -> Result<Tensor, TchError> {
    let (_, _, h, w) = x.size4()?;
    let dev = x.device();
    let half = side / 2;
    let rows = Tensor::f_arange(h, (Kind::Int64, dev))?.f_view([1, h, 1])?;
    let cols = Tensor::f_arange(w, (Kind::Int64, dev))?.f_view([1, 1, w])?;
    let in_rows = rows
        .f_ge_tensor(&cy.f_sub_scalar(half)?)?
        .f_logical_and(&rows.f_lt_tensor(&cy.f_add_scalar(half)?)?)?;
    let in_cols = cols
        .f_ge_tensor(&cx.f_sub_scalar(half)?)?
        .f_logical_and(&cols.f_lt_tensor(&cx.f_add_scalar(half)?)?)?;
    x.f_masked_fill(&in_rows.f_logical_and(&in_cols)?.f_unsqueeze(1)?, 0)
}

/// Horizontal flip of each image with probability `p`.
pub fn random_hflip(x: &Tensor, p: f64, rng: &mut Rng) -> Result<Tensor, TchError> {
    let n = x.size().first().copied().unwrap_or(0);
    let mask = rng.bernoulli(p, &[n, 1, 1, 1], x.device())?;
    flip_where(x, &mask)
}

/// Flip the images where `mask` (N×1×1×1 bool) is set.
pub(crate) fn flip_where(x: &Tensor, mask: &Tensor) -> Result<Tensor, TchError> {
    x.f_flip([3])?.f_where_self(mask, x)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
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
            let found = (0..5)
                .flat_map(|dy| (0..5).map(move |dx| (dy, dx)))
                .any(|(dy, dx)| p.get(i).narrow(1, dy, 4).narrow(2, dx, 4).equal(&y.get(i)));
            assert!(found, "image {i} is not a window of its padded image");
        }
    }

    #[test]
    fn cutout_zeroes_one_clipped_square_per_image() {
        let x = Tensor::full([64, 2, 12, 12], 7, (Kind::Uint8, Device::Cpu));
        let y = cutout(&x, 6, &mut Rng::new(1)).unwrap();
        let holes = y.eq(0).sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Int64);
        let v = Vec::<i64>::try_from(&holes).unwrap();
        // Whole holes are 2×6×6 = 72 zeros; clipped ones fewer, never none.
        assert!(v.iter().all(|&z| z > 0 && z <= 72 && z % 2 == 0), "{v:?}");
        assert!(v.iter().filter(|&&z| z == 72).count() > 5);
        assert!(v.iter().any(|&z| z < 72));
        // Both channels share the hole.
        assert!(y.get(0).get(0).eq_tensor(&y.get(0).get(1)).all().int64_value(&[]) == 1);
        assert!(cutout(&x, 0, &mut Rng::new(1)).unwrap().equal(&x));
    }

    #[test]
    fn flip_is_per_image() {
        let x = Tensor::arange(64 * 4, (Kind::Uint8, Device::Cpu)).view([64, 1, 2, 2]);
        let y = random_hflip(&x, 0.5, &mut Rng::new(0)).unwrap();
        let flipped = y.ne_tensor(&x).any_dim(1, false).any_dim(1, false).any_dim(1, false);
        let k = flipped.sum(Kind::Int64).int64_value(&[]);
        assert!(k > 10 && k < 54, "{k} of 64 flipped");
        assert!(
            y.flip([3])
                .eq_tensor(&x)
                .logical_or(&y.eq_tensor(&x))
                .all()
                .int64_value(&[])
                == 1
        );
    }
}
