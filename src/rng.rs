//! Randomness we own. torch's generator is global to the process, so two trainers (two test
//! threads, two trajectories) would consume each other's numbers and no run would replay.
//! Every random draw of training (data order, crops, flips, augmentation choices) comes from
//! a ChaCha stream derived from (seed, purpose, epoch), generated on the host in a few
//! kilobytes per batch and uploaded; the tensor work stays on the device. Bonus: CPU and CUDA
//! runs see the same draws.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, TchError, Tensor};

/// A deterministic random stream.
#[derive(Debug, Clone)]
pub struct Rng(ChaCha8Rng);

/// SplitMix64 finaliser: decorrelates nearby seeds.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The stream for `seed` and a path of ids (e.g. [purpose, epoch]).
    pub fn derive(seed: u64, path: &[u64]) -> Self {
        Self::new(path.iter().fold(seed, |s, &p| mix(s, p)))
    }

    /// Uniform floats in [0, 1), shape `shape`, on `device`.
    pub fn uniform(&mut self, shape: &[i64], device: Device) -> Result<Tensor, TchError> {
        let v = self.uniform_host(shape.iter().product::<i64>().max(0) as usize);
        crate::device::upload(Tensor::f_from_slice(&v)?.f_view(shape)?, device)
    }

    /// `n` uniform floats in [0, 1) on the host (the values [`Rng::uniform`] uploads).
    pub fn uniform_host(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.0.gen::<f32>()).collect()
    }

    /// Integers in [0, high), int64.
    pub fn randint(&mut self, high: i64, shape: &[i64], device: Device) -> Result<Tensor, TchError> {
        let v = self.randint_host(high, shape.iter().product::<i64>().max(0) as usize);
        crate::device::upload(Tensor::f_from_slice(&v)?.f_view(shape)?, device)
    }

    /// `n` integers in [0, high) on the host (the values [`Rng::randint`] uploads).
    pub fn randint_host(&mut self, high: i64, n: usize) -> Vec<i64> {
        (0..n).map(|_| self.0.gen_range(0..high.max(1))).collect()
    }

    /// Booleans, true with probability `p`.
    pub fn bernoulli(&mut self, p: f64, shape: &[i64], device: Device) -> Result<Tensor, TchError> {
        self.uniform(shape, device)?.f_lt(p)
    }

    /// `n` booleans on the host, the values [`Rng::bernoulli`] gives (its comparison is in
    /// float32, as torch compares a float tensor with a scalar).
    pub fn bernoulli_host(&mut self, p: f64, n: usize) -> Vec<bool> {
        let p = p as f32;
        self.uniform_host(n).into_iter().map(|u| u < p).collect()
    }

    /// A permutation of 0..n, int64.
    pub fn permutation(&mut self, n: i64, device: Device) -> Result<Tensor, TchError> {
        let mut v: Vec<i64> = (0..n).collect();
        for i in (1..v.len()).rev() {
            let j = self.0.gen_range(0..=i);
            v.swap(i, j);
        }
        crate::device::upload(Tensor::f_from_slice(&v)?, device)
    }

    /// A host-side uniform, for decisions that stay on the host.
    pub fn next_f64(&mut self) -> f64 {
        self.0.gen()
    }

    /// 64 random bits (host side): a key for a counter-based draw.
    pub fn next_u64(&mut self) -> u64 {
        self.0.gen()
    }

    /// A standard normal draw (host side).
    pub fn normal(&mut self) -> f64 {
        rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut self.0)
    }

    /// Shuffle a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.0.gen_range(0..=i);
            v.swap(i, j);
        }
    }

    /// Counts of `n` independent draws from the distribution `probs` (a multinomial), by
    /// conditional binomials: cost is one binomial per category, whatever `n`.
    pub fn multinomial(&mut self, n: u64, probs: &[f64]) -> Vec<u32> {
        let mut out = vec![0u32; probs.len()];
        let (mut left, mut mass) = (n, 1.0f64);
        for (slot, &p) in out.iter_mut().zip(probs) {
            if left == 0 {
                break;
            }
            let q = if mass > 0.0 { (p / mass).clamp(0.0, 1.0) } else { 1.0 };
            let c = match rand_distr::Binomial::new(left, q) {
                Ok(b) => rand_distr::Distribution::sample(&b, &mut self.0),
                Err(_) => 0,
            };
            *slot = c.min(u32::MAX as u64) as u32;
            left -= c;
            mass -= p;
        }
        // Rounding can leave a few draws when the last categories' mass is ~0: put them on
        // the most likely category so the total is exact.
        if left > 0 {
            if let Some(k) = (0..probs.len()).max_by(|&a, &b| probs[a].total_cmp(&probs[b])) {
                out[k] += left as u32;
            }
        }
        out
    }
}

/// Serialises the few places that must use torch's global generator (weight initialisation).
pub(crate) static TORCH_GLOBAL_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a = Rng::derive(1, &[2, 3]).uniform(&[4], Device::Cpu).unwrap();
        let b = Rng::derive(1, &[2, 3]).uniform(&[4], Device::Cpu).unwrap();
        let c = Rng::derive(1, &[2, 4]).uniform(&[4], Device::Cpu).unwrap();
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
        let p = Rng::new(0).permutation(50, Device::Cpu).unwrap();
        let mut v = Vec::<i64>::try_from(&p).unwrap();
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
        let r = Rng::new(0).randint(3, &[1000], Device::Cpu).unwrap();
        assert_eq!(r.min().int64_value(&[]), 0);
        assert_eq!(r.max().int64_value(&[]), 2);
        assert_eq!(r.kind(), Kind::Int64);
    }

    #[test]
    fn multinomial_counts_sum_and_follow_the_probabilities() {
        let probs = [0.5, 0.25, 0.125, 0.125, 0.0];
        let mut rng = Rng::new(3);
        let mut total = [0u64; 5];
        for _ in 0..200 {
            let c = rng.multinomial(1000, &probs);
            assert_eq!(c.iter().map(|&x| x as u64).sum::<u64>(), 1000);
            assert_eq!(c[4], 0, "a zero-probability category is never drawn");
            total.iter_mut().zip(&c).for_each(|(t, &x)| *t += x as u64);
        }
        // 200k draws: each share within 5 standard errors (≤ 0.6%) of its probability.
        for (t, p) in total.iter().zip(probs) {
            let share = *t as f64 / 200_000.0;
            assert!(
                (share - p).abs() < 5.0 * (p * (1.0 - p) / 200_000.0f64).sqrt() + 1e-12,
                "{share} vs {p}"
            );
        }
        let mut v: Vec<u32> = (0..20).collect();
        rng.shuffle(&mut v);
        let mut w = v.clone();
        w.sort();
        assert_eq!(w, (0..20).collect::<Vec<_>>());
    }
}
