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
    Ok(Dataset {
        info: cifar_like(),
        images,
        labels,
    })
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

/// Run `benches/peers/<script>`; parse its JSON line. The Python is `AUGWISE_PEER_PYTHON`
/// (a GPU host's own torch) or the project venv's; the scripts are found under
/// `AUGWISE_ROOT`, the build's source tree, or the current directory (a copied bundle).
pub fn run_peer(script: &str, args: &[String], env: &[(&str, &str)]) -> Result<serde_json::Value> {
    let root = std::env::var("AUGWISE_ROOT").unwrap_or_else(|_| {
        let built = env!("CARGO_MANIFEST_DIR");
        if std::path::Path::new(built).join("benches/peers").is_dir() {
            built.to_owned()
        } else {
            ".".to_owned()
        }
    });
    let py = std::env::var("AUGWISE_PEER_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    let path = format!("{root}/benches/peers/{script}");
    let mut cmd = Command::new(&py);
    cmd.arg(&path).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .with_context(|| format!("running the PyTorch peer with {py} (run scripts/setup.sh)"))?;
    if !out.status.success() {
        bail!("PyTorch peer {script} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let last = line
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("the peer printed no JSON line")?;
    Ok(serde_json::from_str(last)?)
}

/// The CPU's model name and thread count, for a measurement's record.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cpu}, {} threads",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    )
}

/// The smallest effect (in sd of a difference) the exact/t test finds with 80% power in k pairs.
pub fn mdd_sd(k: usize) -> f64 {
    if k < 6 {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (0.0, 6.0);
    for _ in 0..30 {
        let mid = 0.5 * (lo + hi);
        if augwise::search::stats::paired_power(k, mid, augwise::search::stats::ALPHA, 2000, 0x5EED) >= 0.8 {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}
