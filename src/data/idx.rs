//! IDX files (MNIST, Fashion-MNIST), raw or gzip: magic `00 00 08 nd`, nd big-endian u32
//! dimensions, then unsigned bytes.

use std::io::Read;
use std::path::Path;

use super::{read_file, DataError, Dataset, DatasetInfo, Source};

/// An unsigned-byte IDX array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Bytes of image data one IDX file may promise (Fashion-MNIST's training images: 47 MB).
const IDX_MAX_BYTES: usize = 4 << 30;

/// Read one IDX file, gunzipping if it starts with the gzip magic — inflating no more than the
/// header promises (plus one byte, to tell trailing data), so a small gzip bomb stays small.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw = read_file(path)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let corrupt = |e: std::io::Error| DataError::bad(path, format!("corrupt or truncated gzip stream ({e})"));
        let mut gz = flate2::read::GzDecoder::new(&raw[..]);
        let mut out = Vec::new();
        // The fixed part, then the dimensions it announces, then at most the data they promise.
        (&mut gz).take(4).read_to_end(&mut out).map_err(corrupt)?;
        let nd = if out.len() == 4 { u64::from(out[3]).min(4) } else { 0 };
        (&mut gz).take(4 * nd).read_to_end(&mut out).map_err(corrupt)?;
        let promised = header_dims(&out).ok().and_then(|d| data_bytes(&d).ok()).unwrap_or(0);
        gz.take(promised as u64 + 1).read_to_end(&mut out).map_err(corrupt)?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|what| DataError::bad(path, what))
}

/// The dimensions of a complete IDX header (magic checked by `parse_idx`).
fn header_dims(bytes: &[u8]) -> Result<Vec<usize>, String> {
    let nd = *bytes.get(3).ok_or("truncated: not even an IDX header")? as usize;
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        return Err("truncated inside the IDX header".into());
    }
    Ok(bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect())
}

/// The data bytes `dims` promise, refused when the product overflows or passes the limit.
fn data_bytes(dims: &[usize]) -> Result<usize, String> {
    let n = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("header dimensions {dims:?} overflow: not a real IDX file"))?;
    if n > IDX_MAX_BYTES {
        return Err(format!(
            "header promises {dims:?} = {n} bytes, more than the {} GiB an IDX file may have here",
            IDX_MAX_BYTES >> 30
        ));
    }
    Ok(n)
}

fn parse_idx(bytes: &[u8]) -> Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!("truncated: {} bytes, not even an IDX header", bytes.len()));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "wrong magic number {:02x}{:02x}{:02x}{:02x}: not an IDX file",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "IDX element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        ));
    }
    let nd = bytes[3] as usize;
    if nd == 0 || nd > 4 {
        return Err(format!("IDX with {nd} dimensions; expected 1 (labels) or 3 (images)"));
    }
    let header = 4 + 4 * nd;
    let dims = header_dims(bytes)?;
    let expected = data_bytes(&dims)?;
    let have = bytes.len() - header;
    if have < expected {
        return Err(format!(
            "truncated: header promises {dims:?} = {expected} bytes of data, file has {have}"
        ));
    }
    if have > expected {
        return Err(format!(
            "data runs past the {dims:?} = {expected} bytes the header promises ({}+ bytes more)",
            have - expected
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Load an images/labels IDX pair into a dataset (1 channel).
pub fn load_idx_pair(
    images: &Path,
    labels: &Path,
    name: &str,
    classes: &[&str],
    hflip: bool,
) -> Result<Dataset, DataError> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    if img.dims.len() != 3 {
        return Err(DataError::bad(
            images,
            format!("expected 3 dimensions N×H×W, found {:?}", img.dims),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(DataError::bad(
            labels,
            format!("expected 1 dimension N, found {:?}", lab.dims),
        ));
    }
    if img.dims.contains(&0) {
        return Err(DataError::bad(
            images,
            format!("{:?} images: every dimension needs at least 1", img.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(DataError::bad(
            labels,
            format!(
                "{} labels for {} images in {}",
                lab.dims[0],
                img.dims[0],
                images.display()
            ),
        ));
    }
    if let Some((i, l)) = lab.data.iter().enumerate().find(|(_, &l)| l as usize >= classes.len()) {
        return Err(DataError::bad(
            labels,
            format!("label {l} of item {i} is out of range (0..{})", classes.len()),
        ));
    }
    let info = DatasetInfo {
        name: name.to_owned(),
        channels: 1,
        height: img.dims[1] as i64,
        width: img.dims[2] as i64,
        classes: classes.iter().map(|s| s.to_string()).collect(),
        hflip,
    };
    Dataset::from_u8(info, img.data, lab.data.into_iter().map(i64::from).collect())
}

pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
pub const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The four standard files in `dir`, `.gz` or not.
fn idx_source(dir: &Path, name: &str, classes: &[&str], hflip: bool, hint: &str) -> Result<Source, DataError> {
    let pick = |stem: &str| {
        let gz = dir.join(format!("{stem}.gz"));
        if gz.exists() {
            gz
        } else {
            dir.join(stem)
        }
    };
    let load = |split: &str| {
        load_idx_pair(
            &pick(&format!("{split}-images-idx3-ubyte")),
            &pick(&format!("{split}-labels-idx1-ubyte")),
            name,
            classes,
            hflip,
        )
        .map_err(|e| e.with_hint(hint))
    };
    Ok(Source {
        train: load("train")?,
        test: load("t10k")?,
    })
}

pub(crate) fn load_fashion_mnist(dir: &Path) -> Result<Source, DataError> {
    idx_source(
        dir,
        "fashion-mnist",
        &FASHION_CLASSES,
        true,
        "Run `scripts/setup.sh` (unpacks Debian's dataset-fashion-mnist package into data/), or \
         `augwise download fashion-mnist` where the network allows.",
    )
}

pub(crate) fn load_mnist(dir: &Path) -> Result<Source, DataError> {
    // A flipped digit is another glyph (or none): no horizontal flip.
    idx_source(
        dir,
        "mnist",
        &DIGITS,
        false,
        "Put train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-… in this directory.",
    )
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_and_rejects() {
        let a = parse_idx(&idx(&[2, 2], &[1, 2, 3, 4])).unwrap();
        assert_eq!(a.dims, vec![2, 2]);
        assert_eq!(a.data, vec![1, 2, 3, 4]);
        assert!(parse_idx(&idx(&[2, 2], &[1, 2, 3])).unwrap_err().contains("truncated"));
        assert!(parse_idx(&[1, 0, 8, 1, 0, 0, 0, 0]).unwrap_err().contains("magic"));
        assert!(parse_idx(&[0, 0, 0x0d, 1, 0, 0, 0, 0])
            .unwrap_err()
            .contains("unsigned byte"));
        assert!(parse_idx(&[0, 0]).unwrap_err().contains("truncated"));
    }
}
