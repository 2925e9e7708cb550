//! `DataSpec`: the one string grammar that names a dataset in configs, the REPL and notebooks.
//!
//! ```text
//! fashion-mnist[:DIR]          default; DIR defaults to <data root>/fashion-mnist
//! mnist:DIR                    IDX files
//! cifar10:DIR | cifar100:DIR   binary versions, as unpacked
//! folder:DIR[,noflip][,size=S]  DIR/<class>/*.png|jpg (or DIR/train + DIR/test); size=S or
//!                              WxH resizes every image on load (bilinear, antialiased)
//! synthetic[:k=v,...]          kind=frequency|polarity|orientation, n=per class, classes,
//!                              channels, size, noise, seed
//! ```
//! The data root is `$AUGWISE_DATA`, else the project's `data/`.
//!
//! ```
//! use augwise::data::DataSpec;
//! let spec: DataSpec = "synthetic:kind=polarity,n=8,size=16".parse().unwrap();
//! let source = spec.load().unwrap();
//! assert_eq!(source.train.images.size(), vec![32, 1, 16, 16]); // 4 classes × 8
//! assert!("cifar10".parse::<DataSpec>().is_err()); // needs a directory
//! ```

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{cifar, folder, idx, synthetic::Synthetic, DataError, Source};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum DataSpec {
    FashionMnist(Option<PathBuf>),
    Mnist(PathBuf),
    Cifar10(PathBuf),
    Cifar100(PathBuf),
    Folder {
        dir: PathBuf,
        hflip: bool,
        /// Resize on load to (width, height), as torchvision's `Resize((h, w))`.
        size: Option<(u32, u32)>,
    },
    Synthetic(Synthetic),
}

impl Default for DataSpec {
    fn default() -> Self {
        Self::FashionMnist(None)
    }
}

/// Where datasets live unless a spec names a directory.
pub fn data_root() -> PathBuf {
    std::env::var_os("AUGWISE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data")))
}

impl DataSpec {
    pub const KINDS: [&'static str; 6] = ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder", "synthetic"];

    /// Read the files (or generate the synthetic set) into host tensors.
    pub fn load(&self) -> Result<Source, DataError> {
        match self {
            Self::FashionMnist(dir) => {
                idx::load_fashion_mnist(&dir.clone().unwrap_or_else(|| data_root().join("fashion-mnist")))
            }
            Self::Mnist(dir) => idx::load_mnist(dir),
            Self::Cifar10(dir) => cifar::load_cifar10(dir),
            Self::Cifar100(dir) => cifar::load_cifar100(dir),
            Self::Folder { dir, hflip, size } => folder::load_image_folder_resized(dir, *hflip, *size),
            Self::Synthetic(s) => s.generate(),
        }
    }
}

impl FromStr for DataSpec {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (s, None),
        };
        let err = |why: String| DataError::Spec {
            spec: s.to_owned(),
            why,
        };
        let need_dir = |arg: Option<&str>| {
            arg.filter(|a| !a.is_empty())
                .map(PathBuf::from)
                .ok_or_else(|| err(format!("`{kind}` needs a directory: `{kind}:DIR`")))
        };
        match kind.to_ascii_lowercase().as_str() {
            "fashion-mnist" | "fashion_mnist" | "fmnist" => {
                Ok(Self::FashionMnist(arg.filter(|a| !a.is_empty()).map(PathBuf::from)))
            }
            "mnist" => Ok(Self::Mnist(need_dir(arg)?)),
            "cifar10" | "cifar-10" => Ok(Self::Cifar10(need_dir(arg)?)),
            "cifar100" | "cifar-100" => Ok(Self::Cifar100(need_dir(arg)?)),
            "folder" => {
                // Options come last, so a directory may itself hold commas.
                let mut text = need_dir(arg)?.to_string_lossy().into_owned();
                let (mut hflip, mut size) = (true, None);
                loop {
                    if let Some(rest) = text.strip_suffix(",noflip") {
                        hflip = false;
                        text = rest.to_owned();
                    } else if let Some((rest, s)) = text.rsplit_once(",size=") {
                        size = Some(parse_size(s).map_err(err)?);
                        text = rest.to_owned();
                    } else {
                        break;
                    }
                }
                if text.is_empty() {
                    return Err(err("`folder` needs a directory: `folder:DIR`".to_owned()));
                }
                Ok(Self::Folder {
                    dir: text.into(),
                    hflip,
                    size,
                })
            }
            "synthetic" => Synthetic::parse_options(arg.unwrap_or(""))
                .map(Self::Synthetic)
                .map_err(err),
            other => Err(err(format!(
                "unknown dataset kind `{other}`; expected one of: {}",
                Self::KINDS.join(", ")
            ))),
        }
    }
}

/// `S` or `WxH`, each side 4 to 1024 pixels: what `folder:…,size=` resizes to.
fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let side = |t: &str| {
        t.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (4..=1024).contains(n))
            .ok_or_else(|| {
                format!("`size={s}`: expected S or WxH, each side 4 to 1024 pixels, e.g. `size=64` or `size=96x64`")
            })
    };
    match s.split_once(['x', 'X', '×']) {
        Some((w, h)) => Ok((side(w)?, side(h)?)),
        None => side(s).map(|n| (n, n)),
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FashionMnist(None) => write!(f, "fashion-mnist"),
            Self::FashionMnist(Some(d)) => write!(f, "fashion-mnist:{}", d.display()),
            Self::Mnist(d) => write!(f, "mnist:{}", d.display()),
            Self::Cifar10(d) => write!(f, "cifar10:{}", d.display()),
            Self::Cifar100(d) => write!(f, "cifar100:{}", d.display()),
            Self::Folder { dir, hflip, size } => {
                write!(f, "folder:{}{}", dir.display(), if *hflip { "" } else { ",noflip" })?;
                match size {
                    Some((w, h)) if w == h => write!(f, ",size={w}"),
                    Some((w, h)) => write!(f, ",size={w}x{h}"),
                    None => Ok(()),
                }
            }
            Self::Synthetic(s) => write!(f, "synthetic:{}", s.options_string()),
        }
    }
}

impl From<DataSpec> for String {
    fn from(d: DataSpec) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for DataSpec {
    type Error = DataError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// How the training images become search-train / validation, and optional size limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitConfig {
    /// Share of the training images held out for validation (official: 10k of 50k = 0.2).
    pub val_fraction: f64,
    /// Cap on search-train + validation images, for quick runs (stratified).
    pub limit: Option<i64>,
    /// Cap on test images (stratified).
    pub test_limit: Option<i64>,
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            val_fraction: 0.2,
            limit: None,
            test_limit: None,
            seed: 0,
        }
    }
}

impl SplitConfig {
    pub fn with_val_fraction(mut self, f: f64) -> Self {
        self.val_fraction = f;
        self
    }
    pub fn with_limit(mut self, n: Option<i64>) -> Self {
        self.limit = n;
        self
    }
    pub fn with_test_limit(mut self, n: Option<i64>) -> Self {
        self.test_limit = n;
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_errors() {
        for s in [
            "fashion-mnist",
            "mnist:/x/y",
            "cifar10:/c",
            "cifar100:/c",
            "folder:/f",
            "folder:/f,noflip",
            "folder:/f,size=64",
            "folder:/a,b/f,noflip,size=96x64",
        ] {
            let d: DataSpec = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
        }
        let syn: DataSpec = "synthetic:kind=polarity,n=10".parse().unwrap();
        assert_eq!(syn.to_string().parse::<DataSpec>().unwrap(), syn);
        let e = "cifar10".parse::<DataSpec>().unwrap_err().to_string();
        assert!(e.contains("needs a directory"), "{e}");
        let Ok(DataSpec::Folder { dir, hflip, size }) = "folder:/a,b/f,size=48,noflip".parse() else {
            panic!("a folder spec with options")
        };
        assert_eq!((dir, hflip, size), (PathBuf::from("/a,b/f"), false, Some((48, 48))));
        for bad in [
            "folder:/f,size=0",
            "folder:/f,size=5000",
            "folder:/f,size=64x",
            "folder:,size=64",
        ] {
            let e = bad.parse::<DataSpec>().unwrap_err().to_string();
            assert!(e.contains("size=") || e.contains("needs a directory"), "{bad}: {e}");
        }
        let e = "imagenet:/x".parse::<DataSpec>().unwrap_err().to_string();
        assert!(e.contains("unknown dataset kind") && e.contains("cifar10"), "{e}");
    }
}
