//! CIFAR-10 / CIFAR-100 "binary version", as distributed: fixed-size records of label byte(s)
//! followed by 3072 bytes (1024 R, 1024 G, 1024 B, row-major 32×32).

use std::path::{Path, PathBuf};

use super::{read_file, DataError, Dataset, DatasetInfo, Source};

const PIXELS: usize = 3 * 32 * 32;

pub(crate) const CIFAR10_HINT: &str = "Unpack cifar-10-binary.tar.gz (the binary version) so that \
    this directory holds data_batch_1.bin … data_batch_5.bin and test_batch.bin, or run \
    `augwise download cifar10 <dir>` where the network allows.";
pub(crate) const CIFAR100_HINT: &str = "Unpack cifar-100-binary.tar.gz so that this directory \
    holds train.bin and test.bin.";

const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Accept either the batches directory itself or its parent (where the archive was unpacked).
/// `dir` itself when it holds any of the `probes` (so a missing file is reported where the
/// others are), else its `inner` subdirectory.
fn resolve_dir(dir: &Path, inner: &str, probes: &[&str]) -> PathBuf {
    if probes.iter().any(|p| dir.join(p).exists()) {
        dir.to_owned()
    } else {
        dir.join(inner)
    }
}

/// Parse record files; `label_bytes` is 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine — we keep
/// the fine label).
fn read_records(
    files: &[PathBuf],
    label_bytes: usize,
    classes: usize,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<i64>,
) -> Result<(), DataError> {
    let rec = label_bytes + PIXELS;
    for path in files {
        let bytes = read_file(path)?;
        if bytes.is_empty() || bytes.len() % rec != 0 {
            return Err(DataError::bad(
                path,
                format!(
                    "truncated or not a CIFAR binary file: {} bytes is not a whole number of \
                     {rec}-byte records",
                    bytes.len()
                ),
            ));
        }
        for (i, r) in bytes.chunks_exact(rec).enumerate() {
            let label = r[label_bytes - 1] as usize;
            if label >= classes {
                return Err(DataError::bad(
                    path,
                    format!("record {i}: label {label} out of range (0..{classes})"),
                ));
            }
            labels.push(label as i64);
            pixels.extend_from_slice(&r[label_bytes..]);
        }
    }
    Ok(())
}

fn class_names(path: &Path, expected: usize, fallback: &[&str]) -> Vec<String> {
    let names: Vec<String> = std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if names.len() == expected {
        names
    } else if fallback.len() == expected {
        fallback.iter().map(|s| s.to_string()).collect()
    } else {
        (0..expected).map(|i| format!("class{i}")).collect()
    }
}

fn build(
    name: &str,
    classes: Vec<String>,
    files: &[PathBuf],
    label_bytes: usize,
    hint: &str,
) -> Result<Dataset, DataError> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    read_records(files, label_bytes, classes.len(), &mut pixels, &mut labels).map_err(|e| e.with_hint(hint))?;
    let info = DatasetInfo {
        name: name.into(),
        channels: 3,
        height: 32,
        width: 32,
        classes,
        hflip: true,
    };
    Dataset::from_u8(info, pixels, labels)
}

/// CIFAR-10 from `cifar-10-batches-bin/` (or the directory holding it).
pub fn load_cifar10(dir: &Path) -> Result<Source, DataError> {
    let d = resolve_dir(dir, "cifar-10-batches-bin", &["test_batch.bin", "data_batch_1.bin"]);
    let classes = class_names(&d.join("batches.meta.txt"), 10, &CIFAR10_CLASSES);
    let train: Vec<PathBuf> = (1..=5).map(|i| d.join(format!("data_batch_{i}.bin"))).collect();
    Ok(Source {
        train: build("cifar10", classes.clone(), &train, 1, CIFAR10_HINT)?,
        test: build("cifar10", classes, &[d.join("test_batch.bin")], 1, CIFAR10_HINT)?,
    })
}

/// CIFAR-100 (fine labels) from `cifar-100-binary/` (or the directory holding it).
pub fn load_cifar100(dir: &Path) -> Result<Source, DataError> {
    let d = resolve_dir(dir, "cifar-100-binary", &["test.bin", "train.bin"]);
    let classes = class_names(&d.join("fine_label_names.txt"), 100, &[]);
    Ok(Source {
        train: build("cifar100", classes.clone(), &[d.join("train.bin")], 2, CIFAR100_HINT)?,
        test: build("cifar100", classes, &[d.join("test.bin")], 2, CIFAR100_HINT)?,
    })
}
