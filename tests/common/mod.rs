//! Shared helpers for the integration tests.
#![allow(dead_code)]

use tch::Device;

/// Every device a test should run on: the CPU always, CUDA 0 when there is one. When there is
/// none the skip is printed, never silent.
pub fn devices() -> Vec<Device> {
    let mut v = vec![Device::Cpu];
    match augwise::device::resolve(augwise::device::DeviceSpec::Cuda(0)) {
        Ok(c) => v.push(c.device),
        Err(e) => eprintln!("note: CUDA variant skipped: {e}"),
    }
    v
}

/// Splits of 4 synthetic frequency classes of 16×16 images (`per_class` each, 25% validation)
/// on `device`, and the pipeline fitted to the training split.
pub fn frequency_splits(per_class: usize, device: Device) -> (augwise::data::Splits, augwise::augment::Pipeline) {
    use augwise::data::{Source, SplitConfig, Splits, Synthetic, SyntheticKind};
    let source: Source = Synthetic::default()
        .with_kind(SyntheticKind::Frequency)
        .with_per_class(per_class)
        .with_classes(4)
        .with_size(16)
        .generate()
        .unwrap();
    let splits = Splits::new(&source, &SplitConfig::default().with_val_fraction(0.25))
        .unwrap()
        .to_device(device)
        .unwrap();
    let (mean, std) = splits.train.channel_stats().unwrap();
    let pipeline = augwise::augment::Pipeline::for_dataset(&splits.train.info, mean, std);
    (splits, pipeline)
}

/// An IDX file's bytes.
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `n` CIFAR records (label byte(s) + 3072 pixels); record i has label i % classes and
/// every pixel equal to i.
pub fn cifar_records(n: usize, label_bytes: usize, classes: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        if label_bytes == 2 {
            v.push(0);
        }
        v.push((i % classes) as u8);
        v.extend(std::iter::repeat_n(i as u8, 3072));
    }
    v
}

/// A CIFAR-10 binary directory: 5 train batches of `per` records and a test batch.
pub fn write_cifar10(dir: &std::path::Path, per: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for b in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), cifar_records(per, 1, 10)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar_records(per, 1, 10)).unwrap();
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    std::fs::write(dir.join("batches.meta.txt"), names).unwrap();
}

/// A search small enough for every test: 3 synthetic classes of 16×16 images, two pretrain
/// epochs, one fine-tune epoch, two trajectories.
pub fn tiny_config() -> augwise::search::SearchConfig {
    augwise::search::SearchConfig::cpu()
        .with_data("synthetic:kind=frequency,classes=3,n=24,size=16".parse().unwrap())
        .with_split(augwise::data::SplitConfig::default().with_val_fraction(0.25))
        .with_pretrain_epochs(2)
        .with_batch_size(16)
        .with_finetune(1, Some(0.02))
        .with_trajectories(2)
        .with_fulltrain_epochs(1)
}

/// Cancel the session's next primitive at its `n`-th progress event (a Ctrl-C or a kernel
/// interrupt part-way through).
pub fn cancel_at_event(s: &mut augwise::search::Session, n: usize) {
    let flag = s.cancel_flag();
    let mut events = 0;
    s.set_progress(move |_| {
        events += 1;
        if events == n {
            flag.cancel();
        }
    });
}
