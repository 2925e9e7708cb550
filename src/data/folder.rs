//! Users' own images: `root/<class>/*.png|jpg`, or `root/train/<class>/…` + `root/test/<class>/…`
//! (torchvision's ImageFolder layout). Classes are the subdirectory names in sorted order. All
//! images must share one size; they load as 1 channel if every image is grayscale, else RGB.

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
        return Err(DataError::bad(root, "no class subdirectories (expected root/<class>/*.png)"));
    }
    Ok(dirs)
}

fn load_split(root: &Path, classes: &[String], name: &str, hflip: bool) -> Result<Dataset, DataError> {
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
    let mut decoded = Vec::with_capacity(files.len());
    let mut size = None;
    let mut all_gray = true;
    for (path, label) in &files {
        let img = image::ImageReader::open(path)
            .map_err(|e| DataError::io(path, e))?
            .with_guessed_format()
            .map_err(|e| DataError::io(path, e))?
            .decode()
            .map_err(|e| DataError::bad(path, format!("cannot decode image: {e}")))?;
        let dims = (img.width(), img.height());
        match size {
            None => size = Some((dims, path.clone())),
            Some((first, ref first_path)) if first != dims => {
                return Err(DataError::bad(
                    path,
                    format!(
                        "mixed image sizes: {}×{} here but {}×{} in {}; resize them to one size",
                        dims.0,
                        dims.1,
                        first.0,
                        first.1,
                        first_path.display()
                    ),
                ))
            }
            _ => {}
        }
        all_gray &= !img.color().has_color();
        decoded.push((img, *label));
    }
    let ((w, h), _) = size.ok_or_else(|| DataError::bad(root, "no images"))?;
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

/// Load an image folder. Without `train/` + `test/` subdirectories a stratified sixth of the
/// images (seeded, deterministic) becomes the test set.
pub fn load_image_folder(root: &Path, hflip: bool) -> Result<Source, DataError> {
    let name = root.file_name().and_then(|n| n.to_str()).unwrap_or("folder").to_owned();
    let (train_root, test_root) = (root.join("train"), root.join("test"));
    if train_root.is_dir() && test_root.is_dir() {
        let classes = names(&class_dirs(&train_root)?);
        return Ok(Source {
            train: load_split(&train_root, &classes, &name, hflip)?,
            test: load_split(&test_root, &classes, &name, hflip)?,
        });
    }
    let classes = names(&class_dirs(root)?);
    let all = load_split(root, &classes, &name, hflip)?;
    let labels = all.labels_vec();
    let (test_idx, train_idx) = stratified_indices(&labels, (labels.len() / 6).max(1) as i64, 0);
    Ok(Source { train: all.subset(&train_idx), test: all.subset(&test_idx) })
}

fn names(dirs: &[PathBuf]) -> Vec<String> {
    dirs.iter()
        .filter_map(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect()
}
