//! Training throughput of ResNet-20 on 3×32×32 uint8 inputs, batch 128: augwise's trainer
//! (normalise only, no augmentation) against the same model and optimiser in PyTorch eager
//! (benches/peers/train_throughput.py), same machine, same threads, one command:
//!
//!     make bench            # or: cargo bench --bench train_throughput -- [batches] [threads] [device]
//!
//! The two alternate for `ROUNDS` rounds and the best round of each counts, so a burst of
//! load on the machine does not decide the ratio. Prints both figures and the ratio (goal
//! ≥ 1.0). Record results in BENCHMARKS.md.

mod common;

use anyhow::{Context, Result};
use augwise::augment::{AugmentError, Normalize};
use augwise::device::{self, DeviceSpec};
use augwise::model::{Arch, Model};
use augwise::rng::Rng;
use augwise::train::{Augmenter, CancelFlag, LrSchedule, TrainConfig, Trainer};
use tch::Tensor;

struct NormalizeOnly(Normalize);

impl Augmenter for NormalizeOnly {
    fn augment(&mut self, images: &Tensor, _rng: &mut Rng, _policy_rng: &mut Rng) -> Result<Tensor, AugmentError> {
        Ok(self.0.apply(images)?)
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let batches: i64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let threads: i32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let spec: DeviceSpec = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(DeviceSpec::Cpu);
    let dev = device::resolve(spec)?.device;
    tch::set_num_threads(threads);
    let bs = 128;
    let warmup = 3;

    const ROUNDS: usize = 3;
    let (mut ours, mut theirs, mut tuned, mut peer) = (0f64, 0f64, 0f64, serde_json::Value::Null);
    let rate = |p: &serde_json::Value| p["images_per_sec"].as_f64().context("peer printed no images_per_sec");
    for _ in 0..ROUNDS {
        ours = ours.max(augwise_round(dev, bs, warmup, batches)?);
        let p = peer_round(dev, bs, warmup, batches, threads, false)?;
        theirs = theirs.max(rate(&p)?);
        tuned = tuned.max(rate(&peer_round(dev, bs, warmup, batches, threads, true)?)?);
        peer = p;
    }
    println!(
        "ResNet-20 training step, batch {bs}, 3×32×32, {batches} timed batches, best of {ROUNDS} rounds, device {}",
        device::device_name(dev)
    );
    println!("  threads         {threads} (augwise) / {} (PyTorch)", peer["threads"]);
    println!("  augwise (tch)   {ours:8.1} images/s");
    println!("  PyTorch eager   {theirs:8.1} images/s   (torch {})", peer["torch"].as_str().unwrap_or("?"));
    println!("  ratio           {:8.3}  (goal ≥ 1.0)", ours / theirs);
    println!("  PyTorch eager with augwise's allocator thresholds (GLIBC_TUNABLES): {tuned:.1} images/s, ratio {:.3}", ours / tuned);
    Ok(())
}

fn augwise_round(dev: tch::Device, bs: i64, warmup: i64, batches: i64) -> Result<f64> {
    let model = Model::new(Arch::RESNET20, 3, 10, dev, 0)?;
    let norm = Normalize::new(vec![0.5; 3], vec![0.25; 3]);
    let cfg = TrainConfig::default()
        .with_batch_size(bs)
        .with_schedule(LrSchedule::Constant { lr: 0.1 });
    let mut trainer = Trainer::new(model, norm.clone(), cfg);
    let mut aug = NormalizeOnly(norm);
    let cancel = CancelFlag::new();
    trainer.train_epoch(&common::random_dataset(bs * warmup, 0, dev)?, &mut aug, &cancel, &mut |_| {})?;
    let timed = common::random_dataset(bs * batches, 0, dev)?;
    let report = trainer.train_epoch(&timed, &mut aug, &cancel, &mut |_| {})?;
    common::sync(dev);
    Ok(report.images_per_sec)
}

/// One run of the PyTorch peer; `tuned` gives it the allocator thresholds augwise sets
/// (device::init_runtime), to show what is allocator and what is framework.
fn peer_round(dev: tch::Device, bs: i64, warmup: i64, batches: i64, threads: i32, tuned: bool) -> Result<serde_json::Value> {
    let args: Vec<String> = [
        "--batches", &batches.to_string(), "--warmup", &warmup.to_string(), "--batch-size", &bs.to_string(),
        "--threads", &threads.to_string(), "--device", &device::device_name(dev),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let tunables = [("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456")];
    common::run_peer("train_throughput.py", &args, if tuned { &tunables[..] } else { &[] })
}
