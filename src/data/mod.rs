//! Datasets as one uint8 N×C×H×W tensor on the device, loaded once, plus labels and what the
//! images allow. Loaders for the formats' real layouts, a deterministic stratified split, and
//! a synthetic set with label-breaking knobs for tests and demos.

mod cifar;
pub mod download;
mod folder;
mod idx;
mod spec;
mod split;
mod synthetic;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

pub use cifar::{load_cifar10, load_cifar100};
pub use folder::{load_image_folder, load_image_folder_resized};
pub use idx::{load_idx_pair, read_idx, IdxArray};
pub use spec::{data_root, DataSpec, SplitConfig};
pub use split::{stratified_indices, Splits};
pub use synthetic::{Synthetic, SyntheticKind};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: not found{}{hint}", if hint.is_empty() { "" } else { ". " })]
    Missing { path: PathBuf, hint: String },
    #[error("{path}: {what}")]
    Bad { path: PathBuf, what: String },
    #[error("{path}: I/O error: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid data spec `{spec}`: {why}")]
    Spec { spec: String, why: String },
    #[error("download of {url} failed: {why}")]
    Download { url: String, why: String },
    #[error("checksum mismatch for {path}: expected md5 {expected}, got {actual}; the file was not used (delete it and retry)")]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("invalid dataset: {0}")]
    Invalid(String),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
}

impl DataError {
    pub(crate) fn bad(path: &Path, what: impl Into<String>) -> Self {
        Self::Bad {
            path: path.to_owned(),
            what: what.into(),
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::Missing {
                path: path.to_owned(),
                hint: String::new(),
            }
        } else {
            Self::Io {
                path: path.to_owned(),
                source,
            }
        }
    }
    /// Attach "how to get the data" to a missing-file error.
    pub(crate) fn with_hint(self, hint: &str) -> Self {
        match self {
            Self::Missing { path, .. } => Self::Missing {
                path,
                hint: hint.to_owned(),
            },
            other => other,
        }
    }
}

/// What the images of a dataset are and allow; carried into every config and report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub channels: i64,
    pub height: i64,
    pub width: i64,
    pub classes: Vec<String>,
    /// Whether a horizontal flip keeps the label (true for CIFAR and Fashion-MNIST; false
    /// for digits and for orientation-defined synthetic classes).
    pub hflip: bool,
}

impl DatasetInfo {
    pub fn num_classes(&self) -> i64 {
        self.classes.len() as i64
    }
}

/// A whole image set: `images` is uint8 N×C×H×W, `labels` int64 N, both on one device.
#[derive(Debug)]
pub struct Dataset {
    pub info: DatasetInfo,
    pub images: Tensor,
    pub labels: Tensor,
}

impl Dataset {
    /// Build from host buffers, checking shapes and label range.
    pub fn from_u8(info: DatasetInfo, pixels: Vec<u8>, labels: Vec<i64>) -> Result<Self, DataError> {
        let n = labels.len() as i64;
        let per = info.channels * info.height * info.width;
        if pixels.len() as i64 != n * per {
            return Err(DataError::Invalid(format!(
                "{}: {} pixel bytes for {} labels of {}×{}×{} images",
                info.name,
                pixels.len(),
                n,
                info.channels,
                info.height,
                info.width
            )));
        }
        let k = info.num_classes();
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l < 0 || l >= k) {
            return Err(DataError::Invalid(format!(
                "{}: label {l} of image {i} is outside 0..{k}",
                info.name
            )));
        }
        let images = Tensor::f_from_slice(&pixels)?.f_view([n, info.channels, info.height, info.width])?;
        let labels = Tensor::f_from_slice(&labels)?;
        Ok(Self { info, images, labels })
    }

    pub fn len(&self) -> i64 {
        self.labels.size().first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn device(&self) -> Device {
        self.images.device()
    }

    /// The same data on `device` (one copy; a no-op when already there). Out of memory there
    /// is an error saying how much was asked for.
    pub fn to_device(&self, device: Device) -> Result<Self, DataError> {
        let what = format!("{} ({} images)", self.info.name, self.len());
        Ok(Self {
            info: self.info.clone(),
            images: crate::device::move_to(&self.images, device, &what)?,
            labels: crate::device::move_to(&self.labels, device, &what)?,
        })
    }

    /// The images at `indices` (any order), as a new dataset on the same device.
    pub fn subset(&self, indices: &[i64]) -> Result<Self, DataError> {
        let idx = Tensor::f_from_slice(indices)?.f_to_device(self.device())?;
        Ok(Self {
            info: self.info.clone(),
            images: self.images.f_index_select(0, &idx)?,
            labels: self.labels.f_index_select(0, &idx)?,
        })
    }

    /// Labels on the host (for splits and counts; not for hot paths).
    pub fn labels_vec(&self) -> Result<Vec<i64>, DataError> {
        Ok(Vec::<i64>::try_from(
            self.labels.f_to_device(Device::Cpu)?.f_contiguous()?,
        )?)
    }

    /// Images per class, in class order.
    pub fn class_counts(&self) -> Result<Vec<i64>, DataError> {
        let mut counts = vec![0; self.info.classes.len()];
        for l in self.labels_vec()? {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        Ok(counts)
    }

    /// A stratified subset of at most `n` images (all of them if `n >= len`).
    pub fn limit(&self, n: i64, seed: u64) -> Result<Self, DataError> {
        if n >= self.len() {
            return Ok(self.shallow());
        }
        let (take, _) = stratified_indices(&self.labels_vec()?, n, seed);
        self.subset(&take)
    }

    /// Concatenate two datasets with the same image shape and classes (search-train + val
    /// for the final retrain).
    pub fn concat(&self, other: &Dataset) -> Result<Self, DataError> {
        if self.info != other.info {
            return Err(DataError::Invalid(format!(
                "cannot concatenate {} and {}: different image shapes or classes",
                self.info.name, other.info.name
            )));
        }
        Ok(Self {
            info: self.info.clone(),
            images: Tensor::f_cat(&[&self.images, &other.images.f_to_device(self.device())?], 0)?,
            labels: Tensor::f_cat(&[&self.labels, &other.labels.f_to_device(self.device())?], 0)?,
        })
    }

    /// Another handle to the same storage.
    pub fn shallow(&self) -> Self {
        Self {
            info: self.info.clone(),
            images: self.images.shallow_clone(),
            labels: self.labels.shallow_clone(),
        }
    }

    /// Per-channel mean and std of the pixels in [0, 1], for normalisation.
    pub fn channel_stats(&self) -> Result<(Vec<f64>, Vec<f64>), DataError> {
        if self.images.numel() == 0 {
            // No pixels, no statistics (and no libtorch warning): training on it is refused
            // later with an "empty" error that names the data set.
            let c = self.info.channels.max(0) as usize;
            return Ok((vec![0.0; c], vec![1.0; c]));
        }
        let x = self.images.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?;
        let mean = x.f_mean_dim(&[0i64, 2, 3][..], false, Kind::Float)?;
        let std = x.f_std_dim(&[0i64, 2, 3][..], false, false)?;
        let to_vec = |t: Tensor| -> Result<Vec<f64>, DataError> {
            Ok(Vec::<f64>::try_from(
                t.f_to_kind(Kind::Double)?.f_to_device(Device::Cpu)?,
            )?)
        };
        Ok((to_vec(mean)?, to_vec(std)?))
    }
}

/// A loaded source: the training images and, where the format has one, the test set.
#[derive(Debug)]
pub struct Source {
    pub train: Dataset,
    pub test: Dataset,
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    fn info(k: usize) -> DatasetInfo {
        DatasetInfo {
            name: "t".into(),
            channels: 1,
            height: 2,
            width: 2,
            classes: (0..k).map(|i| i.to_string()).collect(),
            hflip: true,
        }
    }

    #[test]
    fn from_u8_checks_sizes_and_labels() {
        assert!(Dataset::from_u8(info(2), vec![0; 8], vec![0, 1]).is_ok());
        let e = Dataset::from_u8(info(2), vec![0; 7], vec![0, 1]).unwrap_err();
        assert!(e.to_string().contains("pixel bytes"), "{e}");
        let e = Dataset::from_u8(info(2), vec![0; 8], vec![0, 2]).unwrap_err();
        assert!(e.to_string().contains("label 2 of image 1"), "{e}");
    }

    #[test]
    fn subset_concat_and_counts() {
        let d = Dataset::from_u8(info(2), (0..16).collect(), vec![0, 1, 1, 0]).unwrap();
        let s = d.subset(&[2, 0]).unwrap();
        assert_eq!(s.labels_vec().unwrap(), vec![1, 0]);
        assert_eq!(s.images.int64_value(&[0, 0, 0, 0]), 8);
        let c = d.concat(&s).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(c.class_counts().unwrap(), vec![3, 3]);
    }
}
