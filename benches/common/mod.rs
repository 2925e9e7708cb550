//! What the benchmarks share: random CIFAR-sized data and running a PyTorch peer.
#![allow(dead_code)]

use std::process::Command;

use anyhow::{bail, Context, Result};
use augwise::data::{Dataset, DatasetInfo};
use augwise::rng::Rng;
use tch::Device;

/// `n` random uint8 3×32×32 images with 10 classes, on `device`.
pub fn random_dataset(n: i64, seed: u64, device: Device) -> Result<Dataset> {
    let mut rng = Rng::new(seed);
    let images = rng.randint(256, &[n, 3, 32, 32], device)?.to_kind(tch::Kind::Uint8);
    let labels = rng.randint(10, &[n], device)?;
    Ok(Dataset { info: cifar_like(), images, labels })
}

pub fn cifar_like() -> DatasetInfo {
    DatasetInfo {
        name: "random".into(),
        channels: 3,
        height: 32,
        width: 32,
        classes: (0..10).map(|c| c.to_string()).collect(),
        hflip: true,
    }
}

/// Wait for queued CUDA work so timings are honest.
pub fn sync(dev: Device) {
    if let Device::Cuda(i) = dev {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Run `benches/peers/<script>` with the project venv's Python; parse its JSON line.
pub fn run_peer(script: &str, args: &[String], env: &[(&str, &str)]) -> Result<serde_json::Value> {
    let py = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let path = format!("{}/benches/peers/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(py);
    cmd.arg(&path).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().with_context(|| format!("running the PyTorch peer with {py} (run scripts/setup.sh)"))?;
    if !out.status.success() {
        bail!("PyTorch peer {script} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
