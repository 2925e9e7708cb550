//! Users' own images: `root/<class>/*.png|jpg`, or `root/train/<class>/…` + `root/test/<class>/…`
//! (torchvision's ImageFolder layout). Classes are the subdirectory names in sorted order. All
//! images must share one size unless a size to resize to is given (`folder:DIR,size=64`, as
//! torchvision's `Resize`); they load as 1 channel if every image is grayscale, else RGB.

use std::path::{Path, PathBuf};

use super::{split::stratified_indices, DataError, Dataset, DatasetInfo, Source};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn list_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn class_dirs(root: &Path) -> Result<Vec<PathBuf>, DataError> {
    let dirs: Vec<PathBuf> = list_sorted(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if dirs.is_empty() {
        return Err(DataError::bad(
            root,
            "no class subdirectories (expected root/<class>/*.png)",
        ));
    }
    Ok(dirs)
}

fn load_split(
    root: &Path,
    classes: &[String],
    name: &str,
    hflip: bool,
    resize: Option<(u32, u32)>,
) -> Result<Dataset, DataError> {
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        for f in list_sorted(&dir)? {
            let ext = f.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            if ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
                files.push((f, label as i64));
            }
        }
    }
    if files.is_empty() {
        return Err(DataError::bad(root, "no .png/.jpg images in the class subdirectories"));
    }
    let (w, h) = check_sizes(root, &files, resize)?;
    let mut decoded = Vec::with_capacity(files.len());
    let mut all_gray = true;
    for (path, label) in &files {
        let img = reader(path)?
            .decode()
            .map_err(|e| DataError::bad(path, format!("cannot decode image: {e}")))?;
        // Resized as soon as it is decoded: one full-size image in memory at a time.
        let img = if resize.is_some() && (img.width(), img.height()) != (w, h) {
            img.resize_exact(w, h, image::imageops::FilterType::Triangle)
        } else {
            img
        };
        if (img.width(), img.height()) != (w, h) {
            return Err(DataError::bad(
                path,
                format!(
                    "decodes to {}×{} though its header says {w}×{h}",
                    img.width(),
                    img.height()
                ),
            ));
        }
        all_gray &= !img.color().has_color();
        decoded.push((img, *label));
    }
    let channels: i64 = if all_gray { 1 } else { 3 };
    let mut pixels = Vec::with_capacity(decoded.len() * (w * h) as usize * channels as usize);
    let mut labels = Vec::with_capacity(decoded.len());
    for (img, label) in decoded {
        if all_gray {
            pixels.extend_from_slice(img.to_luma8().as_raw());
        } else {
            // HWC → CHW
            let rgb = img.to_rgb8();
            let raw = rgb.as_raw();
            for c in 0..3 {
                pixels.extend(raw.iter().skip(c).step_by(3));
            }
        }
        labels.push(label);
    }
    let info = DatasetInfo {
        name: name.to_owned(),
        channels,
        height: h as i64,
        width: w as i64,
        classes: classes.to_vec(),
        hflip,
    };
    Dataset::from_u8(info, pixels, labels)
}

/// An image file opened with its format guessed from its bytes.
fn reader(path: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>, DataError> {
    image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))
}

/// Read every image's header (no pixels) first: one size for all (unless `resize` names the
/// size), and a decoded size this machine can hold — 4000×4000 photos fail here in a second
/// with a message, not after decoding gigabytes. Returns the size the images load at.
fn check_sizes(root: &Path, files: &[(PathBuf, i64)], resize: Option<(u32, u32)>) -> Result<(u32, u32), DataError> {
    let mut first: Option<((u32, u32), &Path)> = None;
    let mut largest = 0u64;
    for (path, _) in files {
        let dims = reader(path)?
            .into_dimensions()
            .map_err(|e| DataError::bad(path, format!("cannot read the image header: {e}")))?;
        if dims.0 == 0 || dims.1 == 0 {
            return Err(DataError::bad(
                path,
                format!("the image is {}×{}: nothing to train on", dims.0, dims.1),
            ));
        }
        largest = largest.max(u64::from(dims.0) * u64::from(dims.1));
        match first {
            None => first = Some((dims, path)),
            Some((f, first_path)) if f != dims && resize.is_none() => {
                return Err(DataError::bad(
                    path,
                    format!(
                        "mixed image sizes: {}×{} here but {}×{} in {}; resize them on load with `folder:{},size=64` (or `size=WxH`)",
                        dims.0,
                        dims.1,
                        f.0,
                        f.1,
                        first_path.display(),
                        root.display()
                    ),
                ))
            }
            _ => {}
        }
    }
    let ((w, h), _) = first.ok_or_else(|| DataError::bad(root, "no images"))?;
    let (w, h) = resize.unwrap_or((w, h));
    // Decoded RGB pixels, held twice while they are converted; with a resize, one full-size
    // RGBA image besides.
    let bytes = (files.len() as u64)
        .saturating_mul(u64::from(w) * u64::from(h) * 3)
        .saturating_mul(2)
        .saturating_add(if resize.is_some() {
            largest.saturating_mul(4 * 2)
        } else {
            0
        });
    let available = crate::limits::available_memory();
    if bytes > available / 10 * 8 {
        return Err(DataError::bad(
            root,
            format!(
                "{} images of {w}×{h} need {} to load, more than this machine has available ({}); resize them on load (augwise trains on small images, 32×32 to 256×256) with `folder:{},size=64`, or use fewer",
                files.len(),
                crate::limits::gb(bytes),
                crate::limits::gb(available),
                root.display()
            ),
        ));
    }
    Ok((w, h))
}

/// Load an image folder. Without `train/` + `test/` subdirectories a stratified sixth of the
/// images (seeded, deterministic) becomes the test set.
pub fn load_image_folder(root: &Path, hflip: bool) -> Result<Source, DataError> {
    load_image_folder_resized(root, hflip, None)
}

/// [`load_image_folder`], every image resized on load to `size` = (width, height) when given
/// (bilinear with antialiasing, as torchvision's `Resize`), so photos of any sizes mix.
pub fn load_image_folder_resized(root: &Path, hflip: bool, size: Option<(u32, u32)>) -> Result<Source, DataError> {
    if !root.exists() {
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        return Err(DataError::io(root, e).with_hint(
            "An image folder is a directory DIR/<class>/*.png|jpg (or DIR/train/<class>/… + DIR/test/<class>/…); check the path",
        ));
    }
    let name = root.file_name().and_then(|n| n.to_str()).unwrap_or("folder").to_owned();
    let one_class = |dir: &Path, classes: &[String]| -> Result<(), DataError> {
        if classes.len() < 2 {
            return Err(DataError::bad(
                dir,
                format!(
                    "one class subdirectory ({}): a classifier needs at least two, root/<class>/*.png for each class",
                    classes.join(", ")
                ),
            ));
        }
        Ok(())
    };
    let (train_root, test_root) = (root.join("train"), root.join("test"));
    if train_root.is_dir() && test_root.is_dir() {
        let classes = names(&class_dirs(&train_root)?);
        one_class(&train_root, &classes)?;
        return Ok(Source {
            train: load_split(&train_root, &classes, &name, hflip, size)?,
            test: load_split(&test_root, &classes, &name, hflip, size)?,
        });
    }
    let classes = names(&class_dirs(root)?);
    one_class(root, &classes)?;
    let all = load_split(root, &classes, &name, hflip, size)?;
    let labels = all.labels_vec()?;
    let (test_idx, train_idx) = stratified_indices(&labels, (labels.len() / 6).max(1) as i64, 0);
    Ok(Source {
        train: all.subset(&train_idx)?,
        test: all.subset(&test_idx)?,
    })
}

fn names(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter()
        .filter_map(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect()
}
