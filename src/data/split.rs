//! Deterministic stratified splits: search-train / validation carved from the training images
//! (the official 40k/10k split of CIFAR-10's 50k), the test set kept apart.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{DataError, Dataset, Source, SplitConfig};

/// Pick `n` indices so every class keeps its share (largest-remainder rounding), shuffled
/// within each class by `seed`. Returns (picked, rest), each ascending.
pub fn stratified_indices(labels: &[i64], n: i64, seed: u64) -> (Vec<i64>, Vec<i64>) {
    let total = labels.len() as i64;
    let n = n.clamp(0, total);
    let k = labels.iter().copied().max().map_or(0, |m| m + 1) as usize;
    let mut by_class: Vec<Vec<i64>> = vec![Vec::new(); k];
    for (i, &l) in labels.iter().enumerate() {
        if l >= 0 {
            by_class[l as usize].push(i as i64);
        }
    }
    // Quotas: floor of the exact share, then the remainder to the largest fractions.
    let mut quota: Vec<i64> = by_class.iter().map(|c| c.len() as i64 * n / total.max(1)).collect();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse((by_class[c].len() as i64 * n) % total.max(1)), c));
    let mut left = n - quota.iter().sum::<i64>();
    for &c in order.iter().cycle().take(k * 2) {
        if left == 0 {
            break;
        }
        if quota[c] < by_class[c].len() as i64 {
            quota[c] += 1;
            left -= 1;
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut picked, mut rest) = (Vec::with_capacity(n as usize), Vec::new());
    for (c, mut idx) in by_class.into_iter().enumerate() {
        idx.shuffle(&mut rng);
        let q = quota[c] as usize;
        picked.extend_from_slice(&idx[..q]);
        rest.extend_from_slice(&idx[q..]);
    }
    picked.sort_unstable();
    rest.sort_unstable();
    (picked, rest)
}

/// The three splits a search uses, all on one device.
#[derive(Debug)]
pub struct Splits {
    /// Stage 1 and the trajectories train on this.
    pub train: Dataset,
    /// Rewards are measured on this, never on test.
    pub val: Dataset,
    /// Only the final retrain reports on this.
    pub test: Dataset,
}

impl Splits {
    pub fn new(source: &Source, cfg: &SplitConfig) -> Result<Self, DataError> {
        let labels = source.train.labels_vec()?;
        let n = labels.len() as i64;
        let val_n = if cfg.val_fraction > 0.0 {
            ((n as f64) * cfg.val_fraction).round() as i64
        } else {
            0
        };
        if cfg.val_fraction < 0.0 || cfg.val_fraction >= 1.0 || (cfg.val_fraction > 0.0 && val_n == 0) {
            return Err(DataError::Invalid(format!(
                "validation fraction {} of {n} images leaves no validation or no training images",
                cfg.val_fraction
            )));
        }
        let (val_idx, train_idx) = stratified_indices(&labels, val_n, cfg.seed);
        let mut train = source.train.subset(&train_idx)?;
        let mut val = source.train.subset(&val_idx)?;
        let mut test = source.test.shallow();
        if let Some(limit) = cfg.limit {
            // Keep the train:val ratio when shrinking for quick runs.
            let val_limit = ((limit as f64) * cfg.val_fraction).round() as i64;
            train = train.limit(limit - val_limit, cfg.seed)?;
            val = val.limit(val_limit.max(1), cfg.seed)?;
        }
        if let Some(limit) = cfg.test_limit {
            test = test.limit(limit, cfg.seed)?;
        }
        Ok(Self { train, val, test })
    }

    pub fn to_device(&self, device: tch::Device) -> Result<Self, DataError> {
        Ok(Self {
            train: self.train.to_device(device)?,
            val: self.val.to_device(device)?,
            test: self.test.to_device(device)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn exact_size_class_shares_and_disjoint() {
        // 3 classes with 50/30/20 images.
        let labels: Vec<i64> = (0..100)
            .map(|i| {
                if i < 50 {
                    0
                } else if i < 80 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let (p, r) = stratified_indices(&labels, 10, 7);
        assert_eq!(p.len(), 10);
        assert_eq!(r.len(), 90);
        let count = |c| p.iter().filter(|&&i| labels[i as usize] == c).count();
        assert_eq!((count(0), count(1), count(2)), (5, 3, 2));
        let mut all = [p.clone(), r].concat();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn remainder_goes_to_largest_fraction_and_is_deterministic() {
        let labels: Vec<i64> = (0..7).map(|i| i % 3).collect(); // 3,2,2
        let (p, _) = stratified_indices(&labels, 4, 1);
        assert_eq!(p.len(), 4);
        assert_eq!(stratified_indices(&labels, 4, 1), stratified_indices(&labels, 4, 1));
        let other: Vec<_> = (0..20).map(|s| stratified_indices(&labels, 4, s).0).collect();
        assert!(other.iter().any(|o| *o != p), "seed must matter");
    }
}
