//! The operations, with torchvision v2's semantics on uint8 tensors, applied to a whole batch
//! at once with a magnitude (and so a sign) per image.
//!
//! | op           | magnitude m                        | what it does (torchvision v2 functional)                                  |
//! |--------------|------------------------------------|----------------------------------------------------------------------------|
//! | Identity     | —                                  | nothing                                                                    |
//! | ShearX       | shear factor, −1..1                | `affine(shear=[deg(atan m), 0], center=[0, 0])` (top-left corner fixed)    |
//! | ShearY       | shear factor, −1..1                | `affine(shear=[0, deg(atan m)], center=[0, 0])`                            |
//! | TranslateX   | fraction of width, −2..2           | `affine(translate=[int(m·W), 0])` (pixels truncated toward 0)              |
//! | TranslateY   | fraction of height, −2..2          | `affine(translate=[0, int(m·H)])`                                          |
//! | Rotate       | degrees, −180..180                 | `rotate(m)` about the centre, counter-clockwise, no expand                 |
//! | AutoContrast | —                                  | per image and channel: `(x − min)·255/(max − min)`, unchanged if max = min |
//! | Invert       | —                                  | `255 − x`                                                                  |
//! | Equalize     | —                                  | per image and channel histogram equalisation (torchvision's LUT)          |
//! | Solarize     | threshold in levels, 0..256        | `x ≥ m ? 255 − x : x`                                                      |
//! | Posterize    | bits, 0..8 (integer)               | keep the top m bits                                                        |
//! | Contrast     | factor − 1, −1..1                  | blend with the mean of the (floored) greyscale image, factor 1 + m        |
//! | Color        | factor − 1, −1..1                  | blend with the (floored) greyscale image, factor 1 + m (no-op on 1 channel)|
//! | Brightness   | factor − 1, −1..1                  | `x·(1 + m)`                                                                |
//! | Sharpness    | factor − 1, −1..1                  | blend with the 3×3 smoothed image (interior only), factor 1 + m          |
//!
//! Blends compute in float32, clamp to 0..255 and truncate to uint8, as torchvision does.
//! Geometric ops share one per-image affine grid (torchvision's `_affine_grid`, same float32
//! arithmetic) and one `grid_sample`; interpolation nearest (torchvision's AutoAugment default)
//! or bilinear; fill `None` samples zeros outside, `Some(levels)` blends a fill colour through
//! torchvision's mask channel. Where the AWS official code differs (fill 128, its own magnitude
//! levels) the AWS space follows docs/method.md (see `space`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, TchError, Tensor};

use crate::suggest;

#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    #[error("unknown operation `{name}`{hint}; valid: {valid}")]
    UnknownOp { name: String, hint: String, valid: String },
    #[error("{op}: magnitude {value} is outside {lo}..={hi} ({unit})")]
    Magnitude {
        op: &'static str,
        value: f64,
        lo: f64,
        hi: f64,
        unit: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("libtorch error: {0}")]
    Torch(#[from] TchError),
}

/// The operation kinds (torchvision's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpKind {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    AutoContrast,
    Invert,
    Equalize,
    Solarize,
    Posterize,
    Contrast,
    Color,
    Brightness,
    Sharpness,
}

impl OpKind {
    pub const ALL: [OpKind; 15] = [
        OpKind::Identity,
        OpKind::ShearX,
        OpKind::ShearY,
        OpKind::TranslateX,
        OpKind::TranslateY,
        OpKind::Rotate,
        OpKind::AutoContrast,
        OpKind::Invert,
        OpKind::Equalize,
        OpKind::Solarize,
        OpKind::Posterize,
        OpKind::Contrast,
        OpKind::Color,
        OpKind::Brightness,
        OpKind::Sharpness,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Identity => "Identity",
            OpKind::ShearX => "ShearX",
            OpKind::ShearY => "ShearY",
            OpKind::TranslateX => "TranslateX",
            OpKind::TranslateY => "TranslateY",
            OpKind::Rotate => "Rotate",
            OpKind::AutoContrast => "AutoContrast",
            OpKind::Invert => "Invert",
            OpKind::Equalize => "Equalize",
            OpKind::Solarize => "Solarize",
            OpKind::Posterize => "Posterize",
            OpKind::Contrast => "Contrast",
            OpKind::Color => "Color",
            OpKind::Brightness => "Brightness",
            OpKind::Sharpness => "Sharpness",
        }
    }

    pub fn is_geometric(self) -> bool {
        matches!(
            self,
            OpKind::ShearX | OpKind::ShearY | OpKind::TranslateX | OpKind::TranslateY | OpKind::Rotate
        )
    }

    /// Whether a policy picks a random sign for the magnitude (torchvision's `signed` flag).
    pub fn signed(self) -> bool {
        self.is_geometric()
            || matches!(
                self,
                OpKind::Contrast | OpKind::Color | OpKind::Brightness | OpKind::Sharpness
            )
    }

    /// Valid magnitudes and their unit; `None` for ops without a magnitude.
    pub fn range(self) -> Option<(f64, f64, &'static str)> {
        match self {
            OpKind::ShearX | OpKind::ShearY => Some((-1.0, 1.0, "shear factor")),
            OpKind::TranslateX | OpKind::TranslateY => Some((-2.0, 2.0, "fraction of the image size")),
            OpKind::Rotate => Some((-180.0, 180.0, "degrees")),
            OpKind::Solarize => Some((0.0, 256.0, "threshold in intensity levels")),
            OpKind::Posterize => Some((0.0, 8.0, "bits kept")),
            OpKind::Contrast | OpKind::Color | OpKind::Brightness | OpKind::Sharpness => {
                Some((-1.0, 1.0, "enhance factor minus 1"))
            }
            OpKind::Identity | OpKind::AutoContrast | OpKind::Invert | OpKind::Equalize => None,
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OpKind {
    type Err = AugmentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        OpKind::ALL
            .iter()
            .copied()
            .find(|k| k.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                let names = OpKind::ALL.map(OpKind::name);
                AugmentError::UnknownOp {
                    name: t.to_owned(),
                    hint: suggest::hint(t, names),
                    valid: names.join(", "),
                }
            })
    }
}

/// One operation with its (signed) magnitude; construct with [`Op::new`] to validate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub kind: OpKind,
    /// In the unit of the table above; 0 for ops without a magnitude.
    pub magnitude: f64,
}

impl Op {
    pub const IDENTITY: Op = Op {
        kind: OpKind::Identity,
        magnitude: 0.0,
    };

    pub fn new(kind: OpKind, magnitude: f64) -> Result<Self, AugmentError> {
        match kind.range() {
            Some((lo, hi, unit)) if !(lo..=hi).contains(&magnitude) || !magnitude.is_finite() => {
                Err(AugmentError::Magnitude {
                    op: kind.name(),
                    value: magnitude,
                    lo,
                    hi,
                    unit,
                })
            }
            Some(_) if kind == OpKind::Posterize && magnitude.fract() != 0.0 => Err(AugmentError::Invalid(format!(
                "Posterize: {magnitude} bits is not an integer"
            ))),
            Some(_) => Ok(Op { kind, magnitude }),
            None => Ok(Op { kind, magnitude: 0.0 }),
        }
    }

    /// The same op with the opposite sign (for signed ops).
    pub fn negated(self) -> Self {
        Op {
            magnitude: -self.magnitude,
            ..self
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.range().is_some() {
            write!(f, "{}:{}", self.kind, fmt_num(self.magnitude))
        } else {
            f.write_str(self.kind.name())
        }
    }
}

/// Shortest exact-enough decimal (≤ 4 decimals, no trailing zeros).
pub(crate) fn fmt_num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Interpolation of the geometric ops (torchvision's `InterpolationMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    #[default]
    Nearest,
    Bilinear,
}

/// Options shared by the geometric ops.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OpOptions {
    pub interpolation: Interpolation,
    /// `None`: zeros outside the image (torchvision `fill=None`); `Some(levels)`: one value or
    /// one per channel, blended through torchvision's mask channel.
    pub fill: Option<Vec<f64>>,
}

/// torchvision's `_get_inverse_affine_matrix` (degrees in, output→input matrix out).
fn inverse_affine(center: [f64; 2], angle: f64, translate: [f64; 2], shear: [f64; 2]) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear[0].to_radians(), shear[1].to_radians());
    let ([cx, cy], [tx, ty]) = (center, translate);
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// Whole pixels of a translation, truncated toward zero like torchvision's `int()`; the 1e-9
/// keeps a fraction stored for an integer pixel count (p/W, off by an ulp) from truncating to
/// p − 1, and is far below the float32 steps of torchvision's grids (15.999999 stays 15).
fn pixels(fraction: f64, size: i64) -> f64 {
    let p = fraction * size as f64;
    p.signum() * (p.abs() + 1e-9).trunc()
}

/// The inverse affine matrix torchvision uses for a geometric op on an H×W image.
pub(crate) fn geometric_matrix(op: Op, h: i64, w: i64) -> [f64; 6] {
    let m = op.magnitude;
    // center=[0, 0] in pixel coordinates, re-expressed relative to the image centre.
    let corner = [-(w as f64) * 0.5, -(h as f64) * 0.5];
    match op.kind {
        OpKind::ShearX => inverse_affine(corner, 0.0, [0.0, 0.0], [m.atan().to_degrees(), 0.0]),
        OpKind::ShearY => inverse_affine(corner, 0.0, [0.0, 0.0], [0.0, m.atan().to_degrees()]),
        OpKind::TranslateX => inverse_affine([0.0; 2], 0.0, [pixels(m, w), 0.0], [0.0; 2]),
        OpKind::TranslateY => inverse_affine([0.0; 2], 0.0, [0.0, pixels(m, h)], [0.0; 2]),
        OpKind::Rotate => inverse_affine([0.0; 2], -(m.rem_euclid(360.0)), [0.0; 2], [0.0; 2]),
        _ => [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    }
}

/// Per-image column of factors, float32 N×1×1×1 on `device`.
fn per_image(values: &[f64], device: Device) -> Result<Tensor, TchError> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    crate::device::upload(
        Tensor::f_from_slice(&v)?.f_view([values.len() as i64, 1, 1, 1])?,
        device,
    )
}

/// Affine warp of a uint8 batch with one output→input matrix per image.
pub fn affine(x: &Tensor, matrices: &[[f64; 6]], opts: &OpOptions) -> Result<Tensor, TchError> {
    let (n, _, h, w) = x.size4()?;
    let dev = x.device();
    // torchvision's _affine_grid: pixel-centre base grid (x, y, 1), theta (float32) rescaled
    // by half the size, then base·θᵀ. With three terms bmm computes x·r0 + y·r1 + r2 in this
    // order (checked bit for bit), so it is written elementwise, the rescaled coefficients
    // computed on the host (IEEE float32, the same bits) and uploaded in one tensor.
    let mut coef = vec![0f32; 6 * n as usize];
    for (i, m) in matrices.iter().enumerate() {
        for (j, half) in [(0, 0.5 * w as f32), (1, 0.5 * h as f32)] {
            for k in 0..3 {
                coef[(3 * j + k) * n as usize + i] = m[3 * j + k] as f32 / half;
            }
        }
    }
    let coef = crate::device::upload(Tensor::f_from_slice(&coef)?.f_view([6, n, 1, 1])?, dev)?;
    // Pixel centres are half-integers: exact, whatever linspace's rounding.
    let centres = |len: i64| {
        (0..len)
            .map(|i| i as f32 - (len as f32 - 1.0) * 0.5)
            .collect::<Vec<f32>>()
    };
    let xs = crate::device::upload(Tensor::f_from_slice(&centres(w))?.f_view([1, 1, w])?, dev)?;
    let ys = crate::device::upload(Tensor::f_from_slice(&centres(h))?.f_view([1, h, 1])?, dev)?;
    let coord = |j: i64| -> Result<Tensor, TchError> {
        let k = |i: i64| coef.f_select(0, 3 * j + i);
        xs.f_mul(&k(0)?)?.f_add(&ys.f_mul(&k(1)?)?)?.f_add(&k(2)?)
    };
    let (gx, gy) = (coord(0)?, coord(1)?);
    if opts.interpolation == Interpolation::Nearest && dev == Device::Cpu {
        return nearest_gather(x, &gx, &gy, opts.fill.as_deref());
    }
    grid_sample(x, &gx, &gy, opts)
}

/// torchvision's `_apply_grid_transform`: float `grid_sample`, zeros outside, the optional fill
/// through a mask channel, rounded back to uint8.
fn grid_sample(x: &Tensor, gx: &Tensor, gy: &Tensor, opts: &OpOptions) -> Result<Tensor, TchError> {
    let (n, c, h, w) = x.size4()?;
    let dev = x.device();
    let grid = Tensor::f_stack(&[gx, gy], 3)?;
    let mode = match opts.interpolation {
        Interpolation::Bilinear => 0,
        Interpolation::Nearest => 1,
    };
    let img = x.f_to_kind(Kind::Float)?;
    let out = match &opts.fill {
        None => img.f_grid_sampler(&grid, mode, 0, false)?,
        Some(fill) => {
            let with_mask = Tensor::f_cat(&[img, Tensor::f_ones([n, 1, h, w], (Kind::Float, dev))?], 1)?;
            let s = with_mask.f_grid_sampler(&grid, mode, 0, false)?;
            let (img, mask) = (s.f_narrow(1, 0, c)?, s.f_narrow(1, c, 1)?);
            let fill_v: Vec<f32> = if fill.len() == 1 {
                vec![fill[0] as f32; c as usize]
            } else {
                fill.iter().map(|&v| v as f32).collect()
            };
            let fill_t = crate::device::upload(Tensor::f_from_slice(&fill_v)?.f_view([1, c, 1, 1])?, dev)?;
            match opts.interpolation {
                Interpolation::Nearest => fill_t.f_expand_as(&img)?.f_where_self(&mask.f_lt(0.5)?, &img)?,
                Interpolation::Bilinear => img.f_sub(&fill_t)?.f_mul(&mask)?.f_add(&fill_t)?,
            }
        }
    };
    out.f_round()?.f_to_kind(Kind::Uint8)
}

/// Per-image blend ratios r and 1 − r, the latter computed in f64 as torchvision's Python does.
struct Ratios {
    r: Tensor,
    one_minus_r: Tensor,
}

impl Ratios {
    fn new(magnitudes: &[f64], device: Device) -> Result<Self, TchError> {
        let r: Vec<f64> = magnitudes.iter().map(|m| 1.0 + m).collect();
        let inv: Vec<f64> = r.iter().map(|r| 1.0 - r).collect();
        Ok(Self {
            r: per_image(&r, device)?,
            one_minus_r: per_image(&inv, device)?,
        })
    }
}

/// `a + b·c` rounded once to float32, as PyTorch's `add_(b, alpha=c)` computes it (a fused
/// multiply-add; `addcmul` fuses the same way), so blends match torchvision bit for bit.
fn fma_f32(a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Tensor, TchError> {
    a.f_to_kind(Kind::Float)?
        .f_addcmul(&b.f_to_kind(Kind::Float)?, &c.f_to_kind(Kind::Float)?)
}

/// Nearest-neighbour warp as a uint8 gather: the source pixel of every output pixel is
/// computed once per image (not per channel) exactly as the CPU `grid_sample` does —
/// `(g + 1)·size/2 − 0.5`, rounded half to even — so the result equals torchvision's float
/// path bit for bit while skipping the float copy and the sampler (about 4× faster).
fn nearest_gather(x: &Tensor, gx: &Tensor, gy: &Tensor, fill: Option<&[f64]>) -> Result<Tensor, TchError> {
    let (n, c, h, w) = x.size4()?;
    let source = |g: &Tensor, size: i64| -> Result<Tensor, TchError> {
        g.f_add_scalar(1.0)?
            .f_mul_scalar(size as f64 / 2.0)?
            .f_sub_scalar(0.5)?
            .f_round()
    };
    let (ix, iy) = (source(gx, w)?, source(gy, h)?);
    let inside = ix
        .f_ge(0.0)?
        .f_logical_and(&ix.f_le((w - 1) as f64)?)?
        .f_logical_and(&iy.f_ge(0.0)?)?
        .f_logical_and(&iy.f_le((h - 1) as f64)?)?;
    let index = iy
        .f_clamp(0.0, (h - 1) as f64)?
        .f_mul_scalar(w as f64)?
        .f_add(&ix.f_clamp(0.0, (w - 1) as f64)?)?
        .f_to_kind(Kind::Int64)?
        .f_view([n, 1, h * w])?
        .f_expand([n, c, h * w], false)?;
    let out = x
        .f_reshape([n, c, h * w])?
        .f_gather(2, &index, false)?
        .f_view([n, c, h, w])?;
    let inside = inside.f_unsqueeze(1)?.f_to_kind(Kind::Uint8)?;
    let kept = out.f_mul(&inside)?;
    match fill {
        None => Ok(kept),
        Some(fill) => {
            // torchvision rounds the filled float image: half to even.
            let v: Vec<u8> = (0..c as usize)
                .map(|i| {
                    fill.get(i)
                        .or(fill.first())
                        .copied()
                        .unwrap_or(0.0)
                        .clamp(0.0, 255.0)
                        .round_ties_even() as u8
                })
                .collect();
            let fill_t = crate::device::upload(Tensor::f_from_slice(&v)?.f_view([1, c, 1, 1])?, x.device())?;
            kept.f_add(&inside.f_neg()?.f_add_scalar(1)?.f_mul(&fill_t)?)
        }
    }
}

/// torchvision's `_blend`: `x·r + y·(1 − r)`, clamped, truncated to uint8.
fn blend(x: &Tensor, other: &Tensor, f: &Ratios) -> Result<Tensor, TchError> {
    let xr = x.f_to_kind(Kind::Float)?.f_mul(&f.r)?;
    fma_f32(&xr, other, &f.one_minus_r)?
        .f_clamp(0.0, 255.0)?
        .f_to_kind(Kind::Uint8)
}

/// Greyscale (0.2989, 0.587, 0.114), float, floored — as torchvision's saturation/contrast use it.
fn grey_floor(x: &Tensor) -> Result<Tensor, TchError> {
    let f = x.f_to_kind(Kind::Float)?;
    let (r, g, b) = (f.f_narrow(1, 0, 1)?, f.f_narrow(1, 1, 1)?, f.f_narrow(1, 2, 1)?);
    let weight = |w: f64| crate::device::upload(Tensor::f_from_slice(&[w as f32])?, x.device());
    let grey = fma_f32(&r.f_mul_scalar(0.2989)?, &g, &weight(0.587)?)?;
    fma_f32(&grey, &b, &weight(0.114)?)?.f_floor()
}

fn brightness(x: &Tensor, f: &Ratios) -> Result<Tensor, TchError> {
    x.f_to_kind(Kind::Float)?
        .f_mul(&f.r)?
        .f_clamp(0.0, 255.0)?
        .f_to_kind(Kind::Uint8)
}

fn saturation(x: &Tensor, f: &Ratios) -> Result<Tensor, TchError> {
    if x.size()[1] == 1 {
        return Ok(x.shallow_clone());
    }
    blend(x, &grey_floor(x)?, f)
}

fn contrast(x: &Tensor, f: &Ratios) -> Result<Tensor, TchError> {
    let grey = if x.size()[1] == 3 {
        grey_floor(x)?
    } else {
        x.f_to_kind(Kind::Float)?
    };
    let mean = grey.f_mean_dim(&[1i64, 2, 3][..], true, Kind::Float)?;
    blend(x, &mean, f)
}

fn sharpness(x: &Tensor, f: &Ratios) -> Result<Tensor, TchError> {
    let (_, _, h, w) = x.size4()?;
    if h <= 2 || w <= 2 {
        return Ok(x.shallow_clone());
    }
    // torchvision convolves with [[1,1,1],[1,5,1],[1,1,1]]/13 and rounds. The integer sum T of
    // that stencil is exact in float32 and T/13 is never within 1/26 of a half, so
    // round(T/13) equals torchvision's rounded convolution — nine shifted adds instead of a
    // grouped convolution.
    let out = x.f_to_kind(Kind::Float)?;
    let window = |dy: i64, dx: i64| out.f_narrow(2, dy, h - 2)?.f_narrow(3, dx, w - 2);
    let mut sum = window(1, 1)?.f_mul_scalar(5.0)?;
    for (dy, dx) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)] {
        let _ = sum.f_add_(&window(dy, dx)?)?;
    }
    let blurred = sum.f_div_scalar(13.0)?.f_round()?;
    // The smoothed image with the original border (torchvision blends the interior only):
    // there `blurred − x` is 0, so one contiguous fused blend over the whole image does it.
    let degenerate = out.f_detach_copy()?;
    degenerate
        .f_narrow(2, 1, h - 2)?
        .f_narrow(3, 1, w - 2)?
        .f_copy_(&blurred)?;
    fma_f32(&out, &degenerate.f_sub(&out)?, &f.one_minus_r)?
        .f_clamp(0.0, 255.0)?
        .f_to_kind(Kind::Uint8)
}

fn posterize(x: &Tensor, bits: &[f64]) -> Result<Tensor, TchError> {
    let masks: Vec<u8> = bits
        .iter()
        .map(|&b| {
            let b = b as u32;
            if b >= 8 {
                0xff
            } else {
                (((1u32 << b) - 1) << (8 - b)) as u8
            }
        })
        .collect();
    let m = crate::device::upload(
        Tensor::f_from_slice(&masks)?.f_view([bits.len() as i64, 1, 1, 1])?,
        x.device(),
    )?;
    x.f_bitwise_and_tensor(&m)
}

/// `x ≥ t` for integer x is `x ≥ ⌈t⌉`; inverting is `x XOR 255`. All in uint8 (a `where`
/// over the batch costs ten times more).
fn solarize(x: &Tensor, thresholds: &[f64]) -> Result<Tensor, TchError> {
    let t: Vec<i16> = thresholds.iter().map(|t| t.ceil().clamp(0.0, 256.0) as i16).collect();
    let t = crate::device::upload(
        Tensor::f_from_slice(&t)?.f_view([thresholds.len() as i64, 1, 1, 1])?,
        x.device(),
    )?;
    let flip = x.f_ge_tensor(&t)?.f_to_kind(Kind::Uint8)?.f_mul_scalar(255)?;
    x.f_bitwise_xor_tensor(&flip)
}

fn autocontrast(x: &Tensor) -> Result<Tensor, TchError> {
    let f = x.f_to_kind(Kind::Float)?;
    let min = f.f_amin(&[2i64, 3][..], true)?;
    let max = f.f_amax(&[2i64, 3][..], true)?;
    let flat = max.f_eq_tensor(&min)?;
    let inv_scale = max.f_sub(&min)?.f_mul_scalar(1.0 / 255.0)?;
    let min = min.f_masked_fill(&flat, 0.0)?;
    let inv_scale = inv_scale.f_masked_fill(&flat, 1.0)?;
    f.f_sub(&min)?
        .f_div(&inv_scale)?
        .f_clamp(0.0, 255.0)?
        .f_to_kind(Kind::Uint8)
}

/// torchvision's batched `equalize_image`, per image and channel.
fn equalize(x: &Tensor) -> Result<Tensor, TchError> {
    let (n, c, h, w) = x.size4()?;
    let dev = x.device();
    let flat = x.f_flatten(2, 3)?.f_to_kind(Kind::Int64)?;
    let mut hist = Tensor::f_zeros([n, c, 256], (Kind::Int64, dev))?;
    let ones = Tensor::f_ones([1], (Kind::Int64, dev))?.f_expand_as(&flat)?;
    let _ = hist.f_scatter_add_(2, &flat, &ones)?;
    let cum = hist.f_cumsum(2, Kind::Int64)?;
    let last = cum.f_argmax(2, true)?;
    let non_max = hist.f_gather(2, &last, false)?.f_neg()?.f_add_scalar(h * w)?;
    let step = non_max.f_div_scalar_mode(255, "floor")?;
    let valid = step.f_eq(0)?;
    let lut = cum
        .f_narrow(2, 0, 255)?
        .f_add(&step.f_div_scalar_mode(2, "floor")?)?
        .f_div_tensor_mode(&step.f_clamp_min(1)?, "floor")?
        .f_clamp(0, 255)?;
    let lut = Tensor::f_cat(&[Tensor::f_zeros([n, c, 1], (Kind::Int64, dev))?, lut], 2)?;
    // Channels torchvision leaves alone (step 0) get the identity table: one gather, no `where`.
    let identity = Tensor::f_arange(256, (Kind::Int64, dev))?.f_view([1, 1, 256])?;
    let lut = identity.f_where_self(&valid, &lut)?;
    lut.f_gather(2, &flat, false)?
        .f_view([n, c, h, w])?
        .f_to_kind(Kind::Uint8)
}

/// Apply one kind to a batch, magnitude per image (ignored for ops without one).
pub fn apply_kind(kind: OpKind, x: &Tensor, magnitudes: &[f64], opts: &OpOptions) -> Result<Tensor, TchError> {
    let dev = x.device();
    let factors = || Ratios::new(magnitudes, dev);
    match kind {
        OpKind::Identity => Ok(x.shallow_clone()),
        k if k.is_geometric() => {
            let (_, _, h, w) = x.size4()?;
            let m: Vec<[f64; 6]> = magnitudes
                .iter()
                .map(|&m| geometric_matrix(Op { kind, magnitude: m }, h, w))
                .collect();
            affine(x, &m, opts)
        }
        OpKind::AutoContrast => autocontrast(x),
        OpKind::Invert => x.f_bitwise_not(),
        OpKind::Equalize => equalize(x),
        OpKind::Solarize => solarize(x, magnitudes),
        OpKind::Posterize => posterize(x, magnitudes),
        OpKind::Contrast => contrast(x, &factors()?),
        OpKind::Color => saturation(x, &factors()?),
        OpKind::Brightness => brightness(x, &factors()?),
        OpKind::Sharpness => sharpness(x, &factors()?),
        _ => Ok(x.shallow_clone()),
    }
}

/// Apply `ops[i]` to image i of a uint8 batch: images are grouped by kind on the host (the
/// choices were drawn there), each group is gathered, transformed in one batched call and
/// scattered back; all geometric ops share one affine warp. No device→host sync.
pub fn apply_ops(x: &Tensor, ops: &[Op], opts: &OpOptions) -> Result<Tensor, AugmentError> {
    let (n, c, h, w) = x.size4()?;
    let kind = x.f_kind()?;
    if kind != Kind::Uint8 || !(c == 1 || c == 3) {
        return Err(AugmentError::Invalid(format!(
            "images must be uint8 N×C×H×W with 1 or 3 channels, got {kind:?} {:?}",
            x.size()
        )));
    }
    if ops.len() as i64 != n {
        return Err(AugmentError::Invalid(format!(
            "{} ops for a batch of {n} images",
            ops.len()
        )));
    }
    let mut groups: Vec<(Option<OpKind>, Vec<i64>, Vec<f64>)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.kind == OpKind::Identity {
            continue;
        }
        // All geometric ops go to one group (key None) and carry their matrices.
        let key = (!op.kind.is_geometric()).then_some(op.kind);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => {
                g.1.push(i as i64);
                g.2.push(op.magnitude);
            }
            None => groups.push((key, vec![i as i64], vec![op.magnitude])),
        }
    }
    if groups.is_empty() {
        return Ok(x.shallow_clone());
    }
    let mut out = x.f_detach_copy()?;
    for (key, idx, mags) in groups {
        let index = crate::device::upload(Tensor::f_from_slice(&idx)?, x.device())?;
        let subset = x.f_index_select(0, &index)?;
        let y = match key {
            Some(kind) => apply_kind(kind, &subset, &mags, opts)?,
            None => {
                let m: Vec<[f64; 6]> = idx.iter().map(|&i| geometric_matrix(ops[i as usize], h, w)).collect();
                affine(&subset, &m, opts)?
            }
        };
        let _ = out.f_index_copy_(0, &index, &y)?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    fn batch() -> Tensor {
        crate::rng::Rng::new(5)
            .randint(256, &[4, 3, 6, 7], Device::Cpu)
            .unwrap()
            .to_kind(Kind::Uint8)
    }

    #[test]
    fn names_parse_with_suggestions() {
        assert_eq!("rotate".parse::<OpKind>().unwrap(), OpKind::Rotate);
        let e = "Rotat".parse::<OpKind>().unwrap_err().to_string();
        assert!(e.contains("did you mean `Rotate`") && e.contains("Sharpness"), "{e}");
        assert!(Op::new(OpKind::Rotate, 200.0)
            .unwrap_err()
            .to_string()
            .contains("degrees"));
        assert!(Op::new(OpKind::Posterize, 4.5).is_err());
        assert!(Op::new(OpKind::Brightness, f64::NAN).is_err());
        assert_eq!(Op::new(OpKind::Invert, 3.0).unwrap().magnitude, 0.0);
        assert_eq!(
            Op::new(OpKind::Solarize, 85.3333).unwrap().to_string(),
            "Solarize:85.3333"
        );
    }

    #[test]
    fn per_image_ops_match_one_at_a_time() {
        let x = batch();
        let ops = [
            Op::new(OpKind::Rotate, 20.0).unwrap(),
            Op::new(OpKind::Invert, 0.0).unwrap(),
            Op::new(OpKind::Rotate, -10.0).unwrap(),
            Op::new(OpKind::Brightness, 0.6).unwrap(),
        ];
        let opts = OpOptions::default();
        let y = apply_ops(&x, &ops, &opts).unwrap();
        for (i, op) in ops.iter().enumerate() {
            let one = apply_kind(op.kind, &x.narrow(0, i as i64, 1), &[op.magnitude], &opts).unwrap();
            assert!(one.equal(&y.narrow(0, i as i64, 1)), "image {i} ({op})");
        }
        let inverted = (x.get(1).to_kind(Kind::Int64).neg() + 255).to_kind(Kind::Uint8);
        assert!(y.get(1).equal(&inverted));
    }

    #[test]
    fn identity_and_zero_magnitudes_change_nothing() {
        let x = batch();
        let opts = OpOptions::default();
        for kind in [
            OpKind::ShearX,
            OpKind::TranslateY,
            OpKind::Rotate,
            OpKind::Brightness,
            OpKind::Contrast,
            OpKind::Sharpness,
            OpKind::Color,
        ] {
            let y = apply_kind(kind, &x, &[0.0; 4], &opts).unwrap();
            assert!(y.equal(&x), "{kind} at magnitude 0 changed the image");
        }
        assert!(apply_ops(&x, &[Op::IDENTITY; 4], &opts).unwrap().equal(&x));
        assert!(apply_kind(OpKind::Posterize, &x, &[8.0; 4], &opts).unwrap().equal(&x));
        assert!(apply_kind(OpKind::Solarize, &x, &[256.0; 4], &opts).unwrap().equal(&x));
    }

    /// Property: the uint8 gather warp equals the float grid_sample path bit for bit, for random
    /// shears, translations and rotations, with and without fill.
    #[test]
    fn nearest_gather_equals_grid_sample() {
        let mut rng = crate::rng::Rng::new(11);
        let x = rng
            .randint(256, &[300, 3, 9, 13], Device::Cpu)
            .unwrap()
            .to_kind(Kind::Uint8);
        let kinds = [
            OpKind::ShearX,
            OpKind::ShearY,
            OpKind::TranslateX,
            OpKind::TranslateY,
            OpKind::Rotate,
        ];
        let ops: Vec<Op> = (0..300)
            .map(|i| {
                let kind = kinds[i % 5];
                let (lo, hi, _) = kind.range().unwrap();
                Op::new(kind, lo + (hi - lo) * rng.next_f64()).unwrap()
            })
            .collect();
        let m: Vec<[f64; 6]> = ops.iter().map(|&op| geometric_matrix(op, 9, 13)).collect();
        for fill in [None, Some(vec![17.0, 128.0, 250.6])] {
            let opts = OpOptions {
                interpolation: Interpolation::Nearest,
                fill,
            };
            let fast = affine(&x, &m, &opts).unwrap();
            // The same grid through grid_sample.
            let mut coef = vec![0f32; 6 * 300];
            for (i, mm) in m.iter().enumerate() {
                for (j, half) in [(0, 6.5f32), (1, 4.5f32)] {
                    for k in 0..3 {
                        coef[(3 * j + k) * 300 + i] = mm[3 * j + k] as f32 / half;
                    }
                }
            }
            let coef = Tensor::from_slice(&coef).view([6, 300, 1, 1]);
            let xs = Tensor::from_slice(&(0..13).map(|i| i as f32 - 6.0).collect::<Vec<_>>()).view([1, 1, 13]);
            let ys = Tensor::from_slice(&(0..9).map(|i| i as f32 - 4.0).collect::<Vec<_>>()).view([1, 9, 1]);
            let g = |j: i64| &xs * coef.get(3 * j) + &ys * coef.get(3 * j + 1) + coef.get(3 * j + 2);
            let slow = grid_sample(&x, &g(0), &g(1), &opts).unwrap();
            let differ = fast.ne_tensor(&slow).sum(Kind::Int64).int64_value(&[]);
            assert_eq!(differ, 0, "fill {:?}: {differ} pixels differ", opts.fill);
        }
    }

    #[test]
    fn bad_batches_are_errors() {
        let x = Tensor::zeros([2, 2, 4, 4], (Kind::Uint8, Device::Cpu));
        assert!(apply_ops(&x, &[Op::IDENTITY; 2], &OpOptions::default()).is_err());
        assert!(apply_ops(&batch(), &[Op::IDENTITY; 3], &OpOptions::default()).is_err());
    }
}
