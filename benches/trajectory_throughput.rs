//! One fine-tune epoch of an AWS trajectory — per-image pairs from θ, crop, flip, Cutout,
//! ResNet-20 SGD steps, batch 128 of 3×32×32 — against the official-style PyTorch pipeline
//! (per-image PIL ops in DataLoader workers, benches/peers/trajectory_throughput.py), same
//! model, machine and threads, one command:
//!
//!     cargo bench --bench trajectory_throughput -- [batches] [threads] [device] [workers]
//!
//! Goals: ≥ 1.0 on CPU, ≥ 5× on a GPU.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use anyhow::{Context, Result};
use augwise::augment::Pipeline;
use augwise::device::{self, DeviceSpec};
use augwise::model::{Arch, Model};
use augwise::policy::Policy;
use augwise::policy::PolicyAugment;
use augwise::train::{CancelFlag, LrSchedule, TrainConfig, Trainer};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let batches: i64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let threads: i32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let spec: DeviceSpec = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(DeviceSpec::Cpu);
    let workers: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let dev = device::resolve(spec)?.device;
    tch::set_num_threads(threads);
    let bs = 128;
    let info = common::cifar_like();
    let data = |n: i64, seed: u64| common::random_dataset(n, seed, dev);
    let pipeline = Pipeline::for_dataset(&info, vec![0.5; 3], vec![0.25; 3]);
    let mut aug = PolicyAugment::new(pipeline.clone(), "aws:uniform".parse::<Policy>()?.sampler()?);
    let model = Model::new(Arch::RESNET20, 3, 10, dev, 0)?;
    let cfg = TrainConfig::default()
        .with_batch_size(bs)
        .with_schedule(LrSchedule::Constant { lr: 0.001 });
    let mut trainer = Trainer::new(model, pipeline.normalize.clone(), cfg)?;
    let cancel = CancelFlag::new();
    trainer.train_epoch(&data(bs * 3, 1)?, &mut aug, &cancel, &mut |_| {})?;
    let mut ours = 0f64;
    for round in 0..2 {
        let r = trainer.train_epoch(&data(bs * batches, 2 + round)?, &mut aug, &cancel, &mut |_| {})?;
        ours = ours.max(r.images_per_sec);
    }

    let args: Vec<String> = [
        "--batches",
        &batches.to_string(),
        "--threads",
        &threads.to_string(),
        "--workers",
        &workers.to_string(),
        "--device",
        &device::device_name(dev),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let peer = common::run_peer("trajectory_throughput.py", &args, &[])?;
    let theirs = peer["images_per_sec"]
        .as_f64()
        .context("peer printed no images_per_sec")?;
    println!(
        "AWS trajectory fine-tune epoch, ResNet-20, batch {bs}, 3×32×32, {batches} batches, device {}",
        device::device_name(dev)
    );
    println!("  augwise (batched pairs on the device)        {ours:8.1} images/s   ({threads} threads)");
    println!(
        "  PyTorch, PIL ops in {workers} DataLoader workers   {theirs:8.1} images/s   (torch {})",
        peer["torch"].as_str().unwrap_or("?")
    );
    println!("  ratio {:.2}  (goal ≥ 1.0 on CPU, ≥ 5 on a GPU)", ours / theirs);
    Ok(())
}
