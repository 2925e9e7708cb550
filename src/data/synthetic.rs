//! Deterministic synthetic gratings for tests and demos. Each image is a sinusoidal grating
//! (random phase, contrast, tint and noise); what defines the class is the knob that decides
//! which augmentations are label-breaking:
//!
//! | kind        | class is                       | label-breaking ops          | hflip |
//! |-------------|--------------------------------|-----------------------------|-------|
//! | frequency   | spatial frequency              | almost none                 | yes   |
//! | polarity    | bright vs dark background (c%2) × frequency (c/2) | Invert, Solarize, strong Brightness | yes |
//! | orientation | grating angle (c·180°/k)       | Rotate, Shear, flips        | no    |
//! | brightness  | background level (k levels)    | Brightness, Contrast, Invert, Solarize, AutoContrast, Equalize | yes |

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{DataError, Dataset, DatasetInfo, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyntheticKind {
    Frequency,
    Polarity,
    Orientation,
    Brightness,
}

impl SyntheticKind {
    fn name(self) -> &'static str {
        match self {
            Self::Frequency => "frequency",
            Self::Polarity => "polarity",
            Self::Orientation => "orientation",
            Self::Brightness => "brightness",
        }
    }
}

/// Knobs of the synthetic set; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Synthetic {
    pub kind: SyntheticKind,
    /// Training images per class (the test set has a fifth of that, at least 1).
    pub per_class: usize,
    pub classes: usize,
    pub channels: i64,
    pub size: i64,
    /// Uniform pixel noise amplitude as a fraction of 255.
    pub noise: f64,
    pub seed: u64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Self {
            kind: SyntheticKind::Frequency,
            per_class: 100,
            classes: 4,
            channels: 1,
            size: 32,
            noise: 0.1,
            seed: 0,
        }
    }
}

/// Bytes of synthetic training images one spec may ask for (Fashion-MNIST is 47 MB).
const SYNTHETIC_MAX_BYTES: u128 = 2 << 30;

impl Synthetic {
    pub fn with_kind(mut self, kind: SyntheticKind) -> Self {
        self.kind = kind;
        self
    }
    pub fn with_per_class(mut self, n: usize) -> Self {
        self.per_class = n;
        self
    }
    pub fn with_classes(mut self, k: usize) -> Self {
        self.classes = k;
        self
    }
    pub fn with_channels(mut self, c: i64) -> Self {
        self.channels = c;
        self
    }
    pub fn with_size(mut self, s: i64) -> Self {
        self.size = s;
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub(crate) fn parse_options(opts: &str) -> Result<Self, String> {
        let mut s = Self::default();
        for kv in opts.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| format!("`{kv}` is not key=value"))?;
            let num = |v: &str| v.parse::<f64>().map_err(|_| format!("`{k}={v}`: not a number"));
            // Counts are whole numbers within u32; `n=1e30` must not saturate into a huge size.
            let whole = |v: &str| -> Result<u64, String> {
                let x = num(v)?;
                if x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x) {
                    Ok(x as u64)
                } else {
                    Err(format!("`{k}={v}`: expected a whole number from 0 to {}", u32::MAX))
                }
            };
            match k {
                "kind" => {
                    s.kind = match v {
                        "frequency" => SyntheticKind::Frequency,
                        "polarity" => SyntheticKind::Polarity,
                        "orientation" => SyntheticKind::Orientation,
                        "brightness" => SyntheticKind::Brightness,
                        _ => {
                            return Err(format!(
                                "kind `{v}`: expected frequency, polarity, orientation or brightness"
                            ))
                        }
                    }
                }
                "n" | "per_class" => s.per_class = whole(v)? as usize,
                "classes" => s.classes = whole(v)? as usize,
                "channels" => s.channels = whole(v)? as i64,
                "size" => s.size = whole(v)? as i64,
                "noise" => s.noise = num(v)?,
                "seed" => s.seed = whole(v)?,
                _ => {
                    return Err(format!(
                        "unknown option `{k}`; expected kind, n, classes, channels, size, noise, seed"
                    ))
                }
            }
        }
        s.validate()?;
        Ok(s)
    }

    pub(crate) fn options_string(&self) -> String {
        format!(
            "kind={},n={},classes={},channels={},size={},noise={},seed={}",
            self.kind.name(),
            self.per_class,
            self.classes,
            self.channels,
            self.size,
            self.noise,
            self.seed
        )
    }

    fn validate(&self) -> Result<(), String> {
        if self.classes < 2 || (self.kind == SyntheticKind::Polarity && self.classes % 2 != 0) {
            return Err(format!(
                "classes={}: need at least 2 (an even number for polarity)",
                self.classes
            ));
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(format!("channels={}: expected 1 or 3", self.channels));
        }
        if !(8..=256).contains(&self.size) {
            return Err(format!("size={}: expected 8..=256", self.size));
        }
        if self.per_class == 0 {
            return Err("n=0: need at least one image per class".into());
        }
        if self.classes > 1000 {
            return Err(format!("classes={}: at most 1000", self.classes));
        }
        // The training images' bytes, before anything is allocated for them.
        let bytes = (self.per_class as u128)
            * (self.classes as u128)
            * (self.channels.max(0) as u128)
            * (self.size.max(0) as u128).pow(2);
        if bytes > SYNTHETIC_MAX_BYTES {
            return Err(format!(
                "n={} × classes={} × {}×{}×{} images would need {:.1} GiB; synthetic data is limited to {} GiB (lower n or size)",
                self.per_class,
                self.classes,
                self.channels,
                self.size,
                self.size,
                bytes as f64 / (1u64 << 30) as f64,
                SYNTHETIC_MAX_BYTES >> 30
            ));
        }
        if !(0.0..=1.0).contains(&self.noise) {
            return Err(format!("noise={}: expected 0..=1", self.noise));
        }
        Ok(())
    }

    /// Generate train and test sets (different seeds, same class definitions).
    pub fn generate(&self) -> Result<Source, DataError> {
        self.validate().map_err(|why| DataError::Spec {
            spec: format!("synthetic:{}", self.options_string()),
            why,
        })?;
        let test_per_class = (self.per_class / 5).max(1);
        Ok(Source {
            train: self.images(self.per_class, self.seed.wrapping_mul(2))?,
            test: self.images(test_per_class, self.seed.wrapping_mul(2) + 1)?,
        })
    }

    fn frequency(&self, level: usize, levels: usize) -> f64 {
        // Geometric ladder from 1.5 cycles per image to a quarter of the Nyquist-safe maximum.
        let fmax = self.size as f64 / 4.0;
        if levels <= 1 {
            return 1.5;
        }
        1.5 * (fmax / 1.5).powf(level as f64 / (levels - 1) as f64)
    }

    fn images(&self, per_class: usize, seed: u64) -> Result<Dataset, DataError> {
        let k = self.classes;
        let n = per_class * k;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut angle, mut freq, mut phase, mut bg, mut amp) = (vec![], vec![], vec![], vec![], vec![]);
        let mut tint = Vec::with_capacity(n * self.channels as usize);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % k;
            labels.push(c as i64);
            let (a, f, b, m) = match self.kind {
                SyntheticKind::Frequency => (
                    rng.gen_range(0.0..PI),
                    self.frequency(c, k),
                    128.0,
                    rng.gen_range(40.0..100.0),
                ),
                SyntheticKind::Polarity => {
                    let level = if c % 2 == 0 { 75.0 } else { 180.0 };
                    (
                        rng.gen_range(0.0..PI),
                        self.frequency(c / 2, k / 2),
                        level + rng.gen_range(-15.0..15.0),
                        rng.gen_range(25.0..50.0),
                    )
                }
                SyntheticKind::Brightness => {
                    let level = 40.0 + c as f64 * 175.0 / (k - 1) as f64;
                    (
                        rng.gen_range(0.0..PI),
                        rng.gen_range(1.5..(self.size as f64 / 4.0).max(2.0)),
                        level + rng.gen_range(-8.0..8.0),
                        rng.gen_range(8.0..20.0),
                    )
                }
                SyntheticKind::Orientation => {
                    let step = PI / k as f64;
                    (
                        c as f64 * step + rng.gen_range(-step / 4.0..step / 4.0),
                        rng.gen_range(2.0..(self.size as f64 / 6.0).max(2.5)),
                        128.0,
                        rng.gen_range(40.0..100.0),
                    )
                }
            };
            angle.push(a as f32);
            freq.push(f as f32);
            phase.push(rng.gen_range(0.0..2.0 * PI) as f32);
            bg.push(b as f32);
            amp.push(m as f32);
            for _ in 0..self.channels {
                tint.push(if self.channels == 1 {
                    1.0
                } else {
                    rng.gen_range(0.6f32..1.0)
                });
            }
        }
        let s = self.size;
        let per_image = (self.channels * s * s) as usize;
        let noise: Vec<f32> = (0..n * per_image)
            .map(|_| rng.gen_range(-1.0f32..1.0) * self.noise as f32 * 255.0)
            .collect();
        let col = |v: Vec<f32>| Tensor::f_from_slice(&v)?.f_view([n as i64, 1, 1, 1]);
        // Coordinates in [-1, 1]; a grating of f cycles across the image.
        let u = Tensor::f_linspace(-1.0, 1.0, s, (Kind::Float, tch::Device::Cpu))?;
        let (x, y) = (u.f_view([1, 1, 1, s])?, u.f_view([1, 1, s, 1])?);
        let (ang, fr) = (col(angle)?, col(freq)?);
        let proj = x.f_mul(&ang.f_cos()?)?.f_add(&y.f_mul(&ang.f_sin()?)?)?;
        let grating = proj.f_mul(&fr)?.f_mul_scalar(PI)?.f_add(&col(phase)?)?.f_sin()?;
        let tint = Tensor::f_from_slice(&tint)?.f_view([n as i64, self.channels, 1, 1])?;
        let noise = Tensor::f_from_slice(&noise)?.f_view([n as i64, self.channels, s, s])?;
        let img = col(bg)?
            .f_add(&col(amp)?.f_mul(&grating)?.f_mul(&tint)?)?
            .f_add(&noise)?;
        let images = img.f_clamp(0.0, 255.0)?.f_round()?.f_to_kind(Kind::Uint8)?;
        let info = DatasetInfo {
            name: format!("synthetic-{}", self.kind.name()),
            channels: self.channels,
            height: s,
            width: s,
            classes: (0..k).map(|c| self.class_name(c)).collect(),
            hflip: self.kind != SyntheticKind::Orientation,
        };
        Ok(Dataset {
            info,
            images,
            labels: Tensor::f_from_slice(&labels)?,
        })
    }

    fn class_name(&self, c: usize) -> String {
        match self.kind {
            SyntheticKind::Frequency => format!("freq{c}"),
            SyntheticKind::Polarity => format!("{}-f{}", if c % 2 == 0 { "dark" } else { "bright" }, c / 2),
            SyntheticKind::Orientation => format!("{}deg", (c * 180) / self.classes),
            SyntheticKind::Brightness => format!("level{c}"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn deterministic_shapes_and_polarity() {
        let s = Synthetic::default()
            .with_kind(SyntheticKind::Polarity)
            .with_per_class(8)
            .with_channels(3);
        let a = s.generate().unwrap();
        let b = s.generate().unwrap();
        assert_eq!(a.train.images.size(), vec![32, 3, 32, 32]);
        assert_eq!(a.test.len(), 4);
        assert!(a.train.images.equal(&b.train.images));
        assert!(!a
            .train
            .images
            .equal(&s.clone().with_seed(1).generate().unwrap().train.images));
        // Mean brightness separates dark (even) from bright (odd) classes.
        let mean = a
            .train
            .images
            .to_kind(Kind::Float)
            .mean_dim(&[1i64, 2, 3][..], false, Kind::Float);
        let labels = a.train.labels_vec().unwrap();
        for (i, l) in labels.iter().enumerate() {
            let m = mean.double_value(&[i as i64]);
            assert!(
                if l % 2 == 0 { m < 128.0 } else { m > 128.0 },
                "image {i} class {l} mean {m}"
            );
        }
        assert!(
            !Synthetic::default()
                .with_kind(SyntheticKind::Orientation)
                .generate()
                .unwrap()
                .train
                .info
                .hflip
        );
    }

    #[test]
    fn rejects_bad_options() {
        assert!(Synthetic::parse_options("kind=polarity,classes=3").is_err());
        assert!(Synthetic::parse_options("channels=2").is_err());
        assert!(Synthetic::parse_options("bogus=1")
            .unwrap_err()
            .contains("unknown option"));
        assert!(Synthetic::parse_options("n").is_err());
    }
}
