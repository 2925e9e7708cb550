//! k AWS trajectories (ResNet-20 fine-tuning with per-image pairs, batch 128, 3×32×32) one
//! after another vs together as one grouped model (`BatchedTrainer`), and the same two ways in
//! PyTorch (benches/peers/batched_trajectories.py: the model part alone), same device, one
//! command:
//!
//!     cargo bench --bench batched_trajectories -- [batches] [threads] [device] [k]
//!
//! Goal (issue 13): k = 8 batched ≥ 3× k sequential on a GPU. Prints images/s over all k.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use std::time::Instant;

use anyhow::{Context, Result};
use augwise::augment::Pipeline;
use augwise::device::{self, DeviceSpec};
use augwise::model::{Arch, Model};
use augwise::policy::Policy;
use augwise::policy::PolicyAugment;
use augwise::train::{BatchedTrainer, CancelFlag, LrSchedule, TrainConfig, Trainer};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let batches: i64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let threads: i32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let spec: DeviceSpec = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(DeviceSpec::Cpu);
    let k: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let dev = device::resolve(spec)?.device;
    tch::set_num_threads(threads);
    let bs = 128;
    let info = common::cifar_like();
    let data = common::random_dataset(bs * batches, 2, dev)?;
    let warm = common::random_dataset(bs * 2, 3, dev)?;
    let pipeline = Pipeline::for_dataset(&info, vec![0.5; 3], vec![0.25; 3]);
    let sampler = || -> Result<_> {
        Ok(PolicyAugment::new(
            pipeline.clone(),
            "aws:uniform".parse::<Policy>()?.sampler()?,
        ))
    };
    let config = |j: usize| TrainConfig {
        augment_seed: Some(10 + j as u64),
        policy_seed: Some(20 + j as u64),
        ..TrainConfig::default()
            .with_batch_size(bs)
            .with_schedule(LrSchedule::Constant { lr: 0.01 })
    };
    let cancel = CancelFlag::new();

    // k trajectories one after another (each its own model, as `trajectory_batch=1` runs them).
    let mut trainers = (0..k)
        .map(|j| {
            Ok(Trainer::new(
                Model::new(Arch::RESNET20, 3, 10, dev, 0)?,
                pipeline.normalize.clone(),
                config(j),
            )?)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut augs = (0..k).map(|_| sampler()).collect::<Result<Vec<_>>>()?;
    for (t, a) in trainers.iter_mut().zip(augs.iter_mut()) {
        t.train_epoch(&warm, a, &cancel, &mut |_| {})?;
    }
    common::sync(dev);
    let t0 = Instant::now();
    for (t, a) in trainers.iter_mut().zip(augs.iter_mut()) {
        t.train_epoch(&data, a, &cancel, &mut |_| {})?;
    }
    common::sync(dev);
    let sequential = (k as i64 * bs * batches) as f64 / t0.elapsed().as_secs_f64();

    // The same k as one grouped model.
    let model = Model::members(Arch::RESNET20, 3, 10, k as i64, dev)?;
    let mut batched = BatchedTrainer::new(model, pipeline.normalize.clone(), (0..k).map(config).collect())?;
    batched.train_epoch(&warm, &mut augs, &cancel, &mut |_| {})?;
    common::sync(dev);
    let t0 = Instant::now();
    batched.train_epoch(&data, &mut augs, &cancel, &mut |_| {})?;
    common::sync(dev);
    let together = (k as i64 * bs * batches) as f64 / t0.elapsed().as_secs_f64();

    let peer_args: Vec<String> = [
        "--k",
        &k.to_string(),
        "--batches",
        &batches.to_string(),
        "--threads",
        &threads.to_string(),
        "--device",
        &device::device_name(dev),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let peer = common::run_peer("batched_trajectories.py", &peer_args, &[])?;
    let rate = |key: &str| peer[key].as_f64().with_context(|| format!("peer printed no {key}"));
    println!(
        "{k} AWS trajectories, ResNet-20, batch {bs}, 3×32×32, {batches} batches each, device {}, {threads} threads",
        device::device_name(dev)
    );
    println!("  augwise one after another      {sequential:9.1} images/s");
    println!(
        "  augwise as one grouped model   {together:9.1} images/s   ({:.2}× sequential; goal ≥ 3× for k = 8 on a GPU)",
        together / sequential
    );
    println!(
        "  PyTorch model part alone: one after another {:.1}, grouped {:.1} images/s ({:.2}×; torch {})",
        rate("sequential_images_per_sec")?,
        rate("grouped_images_per_sec")?,
        rate("ratio")?,
        peer["torch"].as_str().unwrap_or("?")
    );
    Ok(())
}
