//! Augmentation throughput on 3×32×32 uint8 batches of 256: per-image AWS pairs (θ uniform)
//! and the AutoAugment CIFAR-10 policy, batched on the device, against torchvision v2
//! AutoAugment applied per image (benches/peers/augment_throughput.py), same machine and
//! threads, one command; plus the share of a ResNet-20 training step (batch 128) that the
//! full AWS pipeline (crop, flip, pair, Cutout, normalise) takes.
//!
//!     cargo bench --bench augment_throughput -- [threads] [device]
//!
//! Also the same ops on 8 (and on a GPU 32) batches per call, what a trainer does (it plans
//! `augment_ahead` batches, or an update's k trajectories, and applies them together).
//!
//! Goals: ≥ 10× torchvision per image on CPU; augmentation ≤ 5% of a step.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use std::time::Instant;

use anyhow::{Context, Result};
use augwise::augment::{Normalize, OpOptions, Pipeline};
use augwise::device::{self, DeviceSpec};
use augwise::model::{Arch, Model};
use augwise::policy::Policy;
use augwise::policy::PolicyAugment;
use augwise::rng::Rng;
use augwise::train::{Sgd, SgdConfig};
use tch::{Kind, Reduction, Tensor};

/// Images/s of `policy` alone over `rounds` batches of 256 (best of 3 runs).
fn policy_rate(policy: &str, x: &Tensor, rounds: usize) -> Result<f64> {
    let sampler = policy.parse::<Policy>()?.sampler()?;
    let opts = OpOptions::default();
    let mut rng = Rng::new(0);
    let mut best = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..rounds {
            let (y, _) = sampler.apply(x, &opts, &mut rng)?;
            drop(y);
        }
        common::sync(x.device());
        best = best.max((rounds as i64 * x.size()[0]) as f64 / t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let threads: i32 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let spec: DeviceSpec = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(DeviceSpec::Cpu);
    let dev = device::resolve(spec)?.device;
    tch::set_num_threads(threads);
    let mut rng = Rng::new(1);
    let x = rng.randint(256, &[256, 3, 32, 32], dev)?.to_kind(Kind::Uint8);

    // A GPU does 10 batches in a few milliseconds: time enough of them to be measurable.
    let rounds = if dev.is_cuda() { 200 } else { 10 };
    let aws = policy_rate("aws:uniform", &x, rounds)?;
    // The same ops on 8 batches per call (what a trainer does on CUDA: `augment_ahead`, or
    // the k members of a batched update): the launches are shared by 8× the images.
    let x8 = rng.randint(256, &[8 * 256, 3, 32, 32], dev)?.to_kind(Kind::Uint8);
    let aws8 = policy_rate("aws:uniform", &x8, (rounds / 8).max(2))?;
    // On a GPU, where the launches are all of the cost: 32 batches per call.
    let aws32 = if dev.is_cuda() {
        let x32 = rng.randint(256, &[32 * 256, 3, 32, 32], dev)?.to_kind(Kind::Uint8);
        Some(policy_rate("aws:uniform", &x32, (rounds / 32).max(2))?)
    } else {
        None
    };
    let aa = policy_rate("autoaugment:cifar10", &x, rounds)?;

    let peer_images = if dev.is_cuda() { 1024 } else { 2048 };
    let peer_args: Vec<String> = [
        "--threads",
        &threads.to_string(),
        "--device",
        &device::device_name(dev),
        "--images",
        &peer_images.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let peer = common::run_peer("augment_throughput.py", &peer_args, &[])?;
    let tv = peer["images_per_sec"]
        .as_f64()
        .context("peer printed no images_per_sec")?;
    let tv_batched = peer["batched_images_per_sec"]
        .as_f64()
        .context("peer printed no batched_images_per_sec")?;

    // Share of a training step: full AWS pipeline vs forward/backward/step on batch 128.
    let info = common::cifar_like();
    let pipeline = Pipeline::for_dataset(&info, vec![0.5; 3], vec![0.25; 3]);
    let mut augment = PolicyAugment::new(pipeline, "aws:uniform".parse::<Policy>()?.sampler()?);
    let batch = x.narrow(0, 0, 128);
    let labels = rng.randint(10, &[128], dev)?;
    let model = Model::new(Arch::RESNET20, 3, 10, dev, 0)?;
    let mut opt = Sgd::new(&model, SgdConfig::default())?;
    let norm = Normalize::new(vec![0.5; 3], vec![0.25; 3]);
    let steps = 12;
    let (mut aug_s, mut step_s) = (0f64, 0f64);
    let mut policy_rng = Rng::new(1);
    for i in 0..steps + 2 {
        let t = Instant::now();
        let (input, _) = augment.batch(&batch, &mut rng, &mut policy_rng)?;
        common::sync(dev);
        let a = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let logits = model.forward_t(&norm.apply(&batch)?.f_add(&(input * 0.0))?, true)?;
        let loss = logits.f_cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.05)?;
        let _ = loss.f_double_value(&[])?;
        opt.zero_grad()?;
        loss.f_backward()?;
        opt.step(0.1)?;
        common::sync(dev);
        if i >= 2 {
            aug_s += a;
            step_s += t.elapsed().as_secs_f64();
        }
    }
    let share = aug_s / (aug_s + step_s);
    // The full pipeline with 8 batches of 128 planned and applied in one call, per batch.
    let batches: Vec<Tensor> = (0..8).map(|i| x.narrow(0, (i % 2) * 128, 128)).collect();
    let mut fused_s = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..4 {
            let plans: Vec<_> = (0..8)
                .map(|_| augment.plan(128, 32, 32, &mut rng, &mut policy_rng).0)
                .collect();
            let ys = augment.pipeline.apply_plans(&batches, &plans)?;
            drop(ys);
        }
        common::sync(dev);
        fused_s = fused_s.min(t.elapsed().as_secs_f64() / 32.0);
    }
    let step_ms = 1e3 * step_s / steps as f64;

    println!(
        "Augmentation, 3×32×32 uint8, batches of 256, device {}, {threads} threads",
        device::device_name(dev)
    );
    println!(
        "  augwise AWS pairs per image (θ uniform)   {aws:9.0} images/s   {:6.1}× torchvision",
        aws / tv
    );
    println!(
        "  augwise AWS pairs, 8 batches per call     {aws8:9.0} images/s   {:6.1}× torchvision",
        aws8 / tv
    );
    if let Some(r) = aws32 {
        println!(
            "  augwise AWS pairs, 32 batches per call    {r:9.0} images/s   {:6.1}× torchvision",
            r / tv
        );
    }
    println!(
        "  augwise AutoAugment CIFAR-10 per image    {aa:9.0} images/s   {:6.1}× torchvision",
        aa / tv
    );
    println!(
        "  torchvision v2 AutoAugment, per image     {tv:9.0} images/s   (torch {})",
        peer["torch"].as_str().unwrap_or("?")
    );
    println!(
        "  torchvision v2 AutoAugment, batch of 256  {tv_batched:9.0} images/s   (one sub-policy per batch, not per image; augwise AWS = {:.2}× it)",
        aws / tv_batched
    );
    println!(
        "  full AWS pipeline in a ResNet-20 step (batch 128): {:.1} ms of {:.1} ms = {:.1}% (goal ≤ 5%)",
        1e3 * aug_s / steps as f64,
        1e3 * (aug_s + step_s) / steps as f64,
        100.0 * share
    );
    println!(
        "  the same, 8 batches planned and applied per call: {:.1} ms of {:.1} ms = {:.1}%",
        1e3 * fused_s,
        1e3 * fused_s + step_ms,
        100.0 * 1e3 * fused_s / (1e3 * fused_s + step_ms)
    );
    Ok(())
}
