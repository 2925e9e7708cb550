//! Downloads of the standard archives where a network exists, verified by MD5 before use:
//! the bytes go to a temporary file, are hashed as they stream, and only a file whose hash
//! matches is renamed into place (and, for tarballs, unpacked).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::DataError;

/// One file of a published dataset and its published MD5.
#[derive(Debug, Clone, Copy)]
pub struct Resource {
    pub file: &'static str,
    pub md5: &'static str,
}

/// A dataset as its authors publish it.
#[derive(Debug, Clone, Copy)]
pub struct Archive {
    pub name: &'static str,
    pub base_url: &'static str,
    pub resources: &'static [Resource],
    /// Unpack `.tar.gz` resources after verification.
    pub extract: bool,
}

pub const FASHION_MNIST: Archive = Archive {
    name: "fashion-mnist",
    base_url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    resources: &[
        Resource {
            file: "train-images-idx3-ubyte.gz",
            md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        },
        Resource {
            file: "train-labels-idx1-ubyte.gz",
            md5: "25c81989df183df01b3e8a0aad5dffbe",
        },
        Resource {
            file: "t10k-images-idx3-ubyte.gz",
            md5: "bef4ecab320f06d8554ea6380940ec79",
        },
        Resource {
            file: "t10k-labels-idx1-ubyte.gz",
            md5: "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ],
    extract: false,
};

pub const CIFAR10: Archive = Archive {
    name: "cifar10",
    base_url: "https://www.cs.toronto.edu/~kriz/",
    resources: &[Resource {
        file: "cifar-10-binary.tar.gz",
        md5: "c32a1d4ab5d03f1284b67883e8d87530",
    }],
    extract: true,
};

pub const CIFAR100: Archive = Archive {
    name: "cifar100",
    base_url: "https://www.cs.toronto.edu/~kriz/",
    resources: &[Resource {
        file: "cifar-100-binary.tar.gz",
        md5: "03b5dce01913d631647c71ecec9e9cb8",
    }],
    extract: true,
};

pub const ARCHIVES: [Archive; 3] = [FASHION_MNIST, CIFAR10, CIFAR100];

/// Look up a published archive by name.
pub fn archive(name: &str) -> Result<Archive, DataError> {
    ARCHIVES
        .iter()
        .copied()
        .find(|a| a.name == name)
        .ok_or_else(|| DataError::Spec {
            spec: name.to_owned(),
            why: format!(
                "no download for `{name}`; downloadable: {}",
                ARCHIVES.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
            ),
        })
}

/// MD5 of a file, hex.
pub fn md5_file(path: &Path) -> Result<String, DataError> {
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetch `url` into `dest` unless a file with the right MD5 is already there.
pub fn fetch_verified(url: &str, dest: &Path, md5: &str) -> Result<(), DataError> {
    if dest.exists() && md5_file(dest)? == md5 {
        return Ok(());
    }
    let dl = |why: String| DataError::Download {
        url: url.to_owned(),
        why,
    };
    let response = ureq::get(url).call().map_err(|e| dl(e.to_string()))?;
    let tmp = dest.with_extension("part");
    let mut out = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    let mut reader = response.into_reader();
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let result = (|| {
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| dl(format!("connection broke: {e}")))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(|e| DataError::io(&tmp, e))?;
        }
        out.sync_all().map_err(|e| DataError::io(&tmp, e))?;
        let actual = hex(&h.finalize());
        if actual != md5 {
            return Err(DataError::Checksum {
                path: dest.to_owned(),
                expected: md5.to_owned(),
                actual,
            });
        }
        std::fs::rename(&tmp, dest).map_err(|e| DataError::io(dest, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Download (and unpack) an archive into `dir`, from `base_url` or the authors' address.
/// Returns the directory to give the loader.
pub fn download(archive: &Archive, base_url: Option<&str>, dir: &Path) -> Result<PathBuf, DataError> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let base = base_url.unwrap_or(archive.base_url);
    let sep = if base.ends_with('/') { "" } else { "/" };
    for r in archive.resources {
        let dest = dir.join(r.file);
        fetch_verified(&format!("{base}{sep}{}", r.file), &dest, r.md5)?;
        if archive.extract {
            let f = File::open(&dest).map_err(|e| DataError::io(&dest, e))?;
            // `unpack` refuses entries that would escape `dir`.
            tar::Archive::new(flate2::read::GzDecoder::new(f))
                .unpack(dir)
                .map_err(|e| DataError::bad(&dest, format!("cannot unpack: {e}")))?;
        }
    }
    Ok(dir.to_owned())
}
