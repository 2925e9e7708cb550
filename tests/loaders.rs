//! Every loader against fixture files the test writes: good files, truncated ones, wrong
//! magic, labels out of range, mixed image sizes — and the real Fashion-MNIST from set-up.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use augwise::data::{
    load_cifar10, load_cifar100, load_idx_pair, load_image_folder, load_image_folder_resized, DataError, DataSpec,
};
use common::*;

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn idx_good_raw_and_gzip() {
    let d = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    let img = write(d.path(), "img", &idx_bytes(&[3, 4, 5], &pixels));
    let lab = write(d.path(), "lab.gz", &gzip(&idx_bytes(&[3], &[2, 0, 1])));
    let ds = load_idx_pair(&img, &lab, "t", &["a", "b", "c"], true).unwrap();
    assert_eq!(ds.images.size(), vec![3, 1, 4, 5]);
    assert_eq!(ds.labels_vec().unwrap(), vec![2, 0, 1]);
    assert_eq!(ds.images.int64_value(&[1, 0, 0, 1]), 21);
}

#[test]
fn idx_bad_files_name_the_file_and_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let img = write(d.path(), "img", &idx_bytes(&[2, 2, 2], &[0; 8]));
    let lab = write(d.path(), "lab", &idx_bytes(&[2], &[0, 1]));

    let truncated = write(d.path(), "trunc", &idx_bytes(&[2, 2, 2], &[0; 5]));
    let e = load_idx_pair(&truncated, &lab, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trunc") && e.contains("truncated"), "{e}");

    let truncated_gz = write(d.path(), "trunc.gz", &gzip(&idx_bytes(&[2, 2, 2], &[0; 8]))[..20]);
    let e = load_idx_pair(&truncated_gz, &lab, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("trunc.gz") && e.contains("gzip"), "{e}");

    let magic = write(d.path(), "magic", &[7, 7, 8, 3, 0, 0, 0, 0]);
    let e = load_idx_pair(&magic, &lab, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("magic") && e.contains("wrong magic number"), "{e}");

    let out_of_range = write(d.path(), "lab9", &idx_bytes(&[2], &[0, 9]));
    let e = load_idx_pair(&img, &out_of_range, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("lab9") && e.contains("label 9"), "{e}");

    let short = write(d.path(), "lab1", &idx_bytes(&[1], &[0]));
    let e = load_idx_pair(&img, &short, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 labels for 2 images"), "{e}");

    let e = load_idx_pair(&d.path().join("nope"), &lab, "t", &["a", "b"], true).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }), "{e}");

    // Dimensions whose product overflows, and zero-sized images: errors, not a panic later.
    let huge = write(d.path(), "huge", &idx_bytes(&[4, 1 << 31, 1 << 31], &[0; 8]));
    let e = load_idx_pair(&huge, &lab, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("huge") && (e.contains("overflow") || e.contains("GiB")),
        "{e}"
    );
    let empty = write(d.path(), "empty", &idx_bytes(&[2, 0, 0], &[]));
    let e = load_idx_pair(&empty, &lab, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 1"), "{e}");

    // A gzip bomb: 2 labels promised, 64 MiB of zeros inflated — refused after reading 3 bytes
    // of data, not after inflating it all.
    let mut bomb = idx_bytes(&[2], &[0, 1]);
    bomb.resize(bomb.len() + (64 << 20), 0);
    let bomb = write(d.path(), "bomb.gz", &gzip(&bomb));
    let e = load_idx_pair(&img, &bomb, "t", &["a", "b"], true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bomb.gz") && e.contains("runs past"), "{e}");
}

#[test]
fn missing_default_dataset_says_how_to_get_it() {
    let d = tempfile::tempdir().unwrap();
    let spec: DataSpec = format!("fashion-mnist:{}", d.path().display()).parse().unwrap();
    let e = spec.load().unwrap_err().to_string();
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("scripts/setup.sh"),
        "{e}"
    );
}

#[test]
fn cifar10_and_cifar100_binary_layouts() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("cifar-10-batches-bin");
    write_cifar10(&dir, 7);
    // The parent directory (where the archive was unpacked) works too.
    let s = load_cifar10(d.path()).unwrap();
    assert_eq!(s.train.len(), 35);
    assert_eq!(s.test.len(), 7);
    assert_eq!(s.train.images.size(), vec![35, 3, 32, 32]);
    assert_eq!(s.train.info.classes[9], "truck");
    // Record 3 of batch 1: label 3, every pixel 3, channel planes in R,G,B order.
    assert_eq!(s.train.labels_vec().unwrap()[3], 3);
    assert_eq!(s.train.images.int64_value(&[3, 2, 31, 31]), 3);

    std::fs::write(dir.join("test_batch.bin"), &cifar_records(2, 1, 10)[..5000]).unwrap();
    let e = load_cifar10(&dir).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("truncated"), "{e}");

    let mut bad = cifar_records(2, 1, 10);
    bad[3073] = 11;
    std::fs::write(dir.join("test_batch.bin"), bad).unwrap();
    let e = load_cifar10(&dir).unwrap_err().to_string();
    assert!(e.contains("label 11 out of range"), "{e}");

    std::fs::remove_file(dir.join("data_batch_4.bin")).unwrap();
    let e = load_cifar10(&dir).unwrap_err().to_string();
    assert!(e.contains("data_batch_4.bin") && e.contains("binary version"), "{e}");

    // A missing test batch is reported as itself, from the directory or its parent.
    write_cifar10(&dir, 7);
    std::fs::remove_file(dir.join("test_batch.bin")).unwrap();
    for root in [&dir, &d.path().to_path_buf()] {
        let e = load_cifar10(root).unwrap_err().to_string();
        assert!(e.contains("cifar-10-batches-bin/test_batch.bin: not found"), "{e}");
    }

    let c100 = d.path().join("cifar-100-binary");
    std::fs::create_dir_all(&c100).unwrap();
    std::fs::write(c100.join("train.bin"), cifar_records(5, 2, 100)).unwrap();
    std::fs::write(c100.join("test.bin"), cifar_records(3, 2, 100)).unwrap();
    let s = load_cifar100(d.path()).unwrap();
    assert_eq!((s.train.len(), s.test.len(), s.train.info.num_classes()), (5, 3, 100));
    assert_eq!(s.train.labels_vec().unwrap(), vec![0, 1, 2, 3, 4]);
}

fn png(path: &std::path::Path, w: u32, h: u32, rgb: bool, v: u8) {
    if rgb {
        image::RgbImage::from_pixel(w, h, image::Rgb([v, 0, 255 - v]))
            .save(path)
            .unwrap();
    } else {
        image::GrayImage::from_pixel(w, h, image::Luma([v])).save(path).unwrap();
    }
}

/// The bytes of a PNG whose header says `w`×`h` (8-bit RGB) and whose data is one empty
/// deflate block: a reader learns the size from the header alone.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        c.extend_from_slice(&crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn image_folder_layouts_and_errors() {
    let d = tempfile::tempdir().unwrap();
    for (c, class) in ["cat", "dog"].iter().enumerate() {
        let dir = d.path().join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..6 {
            png(&dir.join(format!("{i}.png")), 8, 6, true, (c * 100 + i) as u8);
        }
    }
    let s = load_image_folder(d.path(), true).unwrap();
    assert_eq!(s.train.info.classes, vec!["cat", "dog"]);
    assert_eq!((s.train.len(), s.test.len()), (10, 2));
    assert_eq!(s.train.images.size()[1..], [3, 6, 8]);
    assert_eq!(s.test.class_counts().unwrap(), vec![1, 1]);
    // CHW order: red plane holds v, blue plane 255 - v.
    let r = s.train.images.int64_value(&[0, 0, 0, 0]);
    assert_eq!(s.train.images.int64_value(&[0, 2, 5, 7]), 255 - r);

    png(&d.path().join("dog").join("big.png"), 9, 6, true, 1);
    let e = load_image_folder(d.path(), true).unwrap_err().to_string();
    assert!(
        e.contains("big.png") && e.contains("mixed image sizes") && e.contains(",size=64"),
        "{e}"
    );
    // Resized on load, as torchvision's Resize: mixed sizes become one, a flat colour stays.
    let s = load_image_folder_resized(d.path(), true, Some((4, 3))).unwrap();
    assert_eq!(s.train.images.size()[1..], [3, 3, 4]);
    assert_eq!(s.train.len() + s.test.len(), 13);
    let (img, _) = (s.train.images.get(0), ());
    let (r, b) = (img.int64_value(&[0, 0, 0]), img.int64_value(&[2, 2, 3]));
    assert_eq!(r + b, 255, "a flat image keeps its colour when resized");

    std::fs::write(d.path().join("dog").join("big.png"), b"not a png").unwrap();
    let e = load_image_folder(d.path(), true).unwrap_err().to_string();
    assert!(
        e.contains("big.png") && e.contains("cannot read the image header"),
        "{e}"
    );

    // A PNG whose header claims 60000×60000 (a 400-byte file): refused from the header, with
    // the memory it would need, before any pixel is decoded.
    std::fs::write(d.path().join("dog").join("big.png"), png_claiming(60_000, 60_000)).unwrap();
    for class in ["cat", "dog"] {
        for i in 0..6 {
            std::fs::write(
                d.path().join(class).join(format!("{i}.png")),
                png_claiming(60_000, 60_000),
            )
            .unwrap();
        }
    }
    let e = load_image_folder(d.path(), true).unwrap_err().to_string();
    assert!(
        e.contains("60000×60000") && e.contains("more than this machine has available") && e.contains("resize"),
        "{e}"
    );

    // One class: a classifier needs two, and the error says so (it once said "invalid model").
    let one = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(one.path().join("only")).unwrap();
    png(&one.path().join("only").join("0.png"), 4, 4, true, 1);
    let e = load_image_folder(one.path(), true).unwrap_err().to_string();
    assert!(
        e.contains("one class subdirectory (only)") && e.contains("at least two"),
        "{e}"
    );

    // train/ + test/ layout, grayscale → 1 channel.
    let g = tempfile::tempdir().unwrap();
    for split in ["train", "test"] {
        for class in ["a", "b"] {
            let dir = g.path().join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            png(&dir.join("0.png"), 4, 4, false, 9);
        }
    }
    let s = load_image_folder(g.path(), false).unwrap();
    assert_eq!(s.train.images.size(), vec![2, 1, 4, 4]);
    assert!(!s.train.info.hflip);
}

/// Photos straight off a camera: a batch of them would need hundreds of gigabytes of
/// activations, which on the CPU ends in the kernel's OOM killer, not an error. The session
/// refuses them before training, naming the way out (`size=`), which then works.
#[test]
fn photos_too_large_to_train_on_are_refused_up_front_and_load_resized() {
    use augwise::search::{SearchConfig, SearchError, Session};
    let d = tempfile::tempdir().unwrap();
    for (c, class) in ["cat", "dog"].iter().enumerate() {
        let dir = d.path().join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..6 {
            png(&dir.join(format!("{i}.png")), 4000, 4000, true, (c * 100 + i) as u8);
        }
    }
    let spec = |s: &str| -> DataSpec { format!("folder:{}{s}", d.path().display()).parse().unwrap() };
    // A batch of the 8 or so training images: over 200 GB, past any machine CI runs on.
    let config = |s: &str| {
        SearchConfig::cpu()
            .with_data(spec(s))
            .with_pretrain_epochs(1)
            .with_batch_size(16)
    };
    let run = tempfile::tempdir().unwrap();
    let e = Session::new(config(""), run.path().join("a")).err().unwrap();
    assert!(matches!(e, SearchError::ActivationMemory { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("4000×4000") && e.contains("size=64") && e.contains("batch_size"),
        "{e}"
    );
    let mut s = Session::new(config(",size=16"), run.path().join("b")).unwrap();
    assert_eq!(s.splits.train.images.size()[1..], [3, 16, 16]);
    s.pretrain(None).unwrap();
}

/// The real default data, as the README's set-up unpacks it.
#[test]
fn fashion_mnist_from_setup() {
    let spec = DataSpec::default();
    let dir = augwise::data::data_root().join("fashion-mnist");
    if !dir.exists() && std::env::var_os("CI").is_none() {
        eprintln!("note: skipped: {} missing; run scripts/setup.sh", dir.display());
        return;
    }
    let s = spec.load().unwrap();
    assert_eq!(s.train.images.size(), vec![60_000, 1, 28, 28]);
    assert_eq!(s.test.len(), 10_000);
    assert_eq!(s.train.class_counts().unwrap(), vec![6000; 10]);
    assert_eq!(s.train.info.classes[9], "Ankle boot");
}
