//! What a configuration makes before anything trains — the device, the data and its splits,
//! the normalised augmentation pipeline and the shared model — built alike by a session and by
//! a Slurm worker, and refused up front when one batch could not fit in memory.

use super::config::SearchConfig;
use super::error::SearchError;
use super::stage1::shared_model;
use crate::augment::Pipeline;
use crate::data::Splits;
use crate::device::{self, DeviceChoice};
use crate::train::Trainer;

/// What a configuration makes before anything trains: the device, the data and its splits,
/// the augmentation pipeline (normalised by the search-train split's statistics) and the
/// shared model with stage 1's recipe. A session and a Slurm worker build them alike.
pub(super) struct Parts {
    pub device: DeviceChoice,
    pub splits: Splits,
    pub pipeline: Pipeline,
    pub trainer: Trainer,
}

impl Parts {
    pub fn new(config: &SearchConfig) -> Result<Self, SearchError> {
        Self::build(config, true)
    }

    /// A Slurm worker's parts: the test split, which only the final retrain reads, stays on
    /// the host (a worker trains and scores on train and val alone).
    pub fn for_worker(config: &SearchConfig) -> Result<Self, SearchError> {
        Self::build(config, false)
    }

    fn build(config: &SearchConfig, upload_test: bool) -> Result<Self, SearchError> {
        config.validate()?;
        let device = device::resolve(config.device)?;
        let source = config.data.load()?;
        let splits = Splits::new(&source, &config.split)?;
        let splits = if upload_test {
            splits.to_device(device.device)?
        } else {
            Splits {
                train: splits.train.to_device(device.device)?,
                val: splits.val.to_device(device.device)?,
                test: splits.test,
            }
        };
        let info = splits.train.info.clone();
        let (mean, std) = splits.train.channel_stats()?;
        let mut pipeline = Pipeline::for_dataset(&info, mean, std);
        if let Some(c) = config.cutout {
            pipeline = pipeline.with_cutout(c);
        }
        check_activation_memory(config, &info, splits.train.len(), device.device)?;
        let model = shared_model(config, &info, device.device, config.seed)?;
        let trainer = Trainer::new(model, pipeline.normalize.clone(), config.stage1_train_config())?;
        Ok(Self {
            device,
            splits,
            pipeline,
            trainer,
        })
    }
}

/// On the CPU an allocation past the machine's memory is not an error but the kernel's OOM
/// killer: a batch whose activations cannot fit is refused before the first step instead (on
/// CUDA, libtorch's out-of-memory error is caught where it happens).
fn check_activation_memory(
    config: &SearchConfig,
    info: &crate::data::DatasetInfo,
    train_images: i64,
    device: tch::Device,
) -> Result<(), SearchError> {
    if device != tch::Device::Cpu {
        return Ok(());
    }
    let batch = config.batch_size.clamp(1, train_images.max(1)) * config.trajectory_batch.max(1) as i64;
    let needs = config
        .model
        .activation_count(info.channels, info.height, info.width)
        .saturating_mul(4 * batch as u64);
    let available = crate::limits::available_memory();
    // The count is an upper bound (`Arch::activation_count`): refused only past all of it.
    if needs > available {
        return Err(SearchError::ActivationMemory {
            batch,
            width: info.width,
            height: info.height,
            model: config.model.to_string(),
            needs,
            available,
        });
    }
    Ok(())
}
