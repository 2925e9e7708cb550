//! The bounds every count a user can type is checked against before anything is sized by it:
//! past one of these a number is a typo (`step 100000000`, `config pretrain_epochs=1e10`), not a
//! plan, and allocating for it would take the process down. One place, so the command table,
//! the library and the config all refuse the same numbers with the same words.

/// One range: what is counted, its least and largest sane values, and what to do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub what: &'static str,
    pub min: u64,
    pub max: u64,
    pub instead: &'static str,
}

/// A count outside its [`Limit`]: the number and the range it missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct OutOfRange {
    pub n: u64,
    pub limit: Limit,
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { n, limit } = self;
        if *n < limit.min {
            return write!(f, "{n} {} is too few: at least {} is needed", limit.what, limit.min);
        }
        write!(f, "{n} {} is past the limit of {}", limit.what, limit.max)?;
        if !limit.instead.is_empty() {
            write!(f, "; {}", limit.instead)?;
        }
        Ok(())
    }
}

impl From<OutOfRange> for String {
    fn from(e: OutOfRange) -> String {
        e.to_string()
    }
}

impl Limit {
    /// `n` if it is within `min..=max`: a count out of range is an error, never silently
    /// changed.
    pub fn check(&self, n: u64) -> Result<u64, OutOfRange> {
        if (self.min..=self.max).contains(&n) {
            Ok(n)
        } else {
            Err(OutOfRange { n, limit: *self })
        }
    }

    /// [`Limit::check`] for a `usize`.
    pub fn check_usize(&self, n: usize) -> Result<usize, OutOfRange> {
        self.check(n as u64).map(|n| n as usize)
    }
}

/// Updates one `step` runs; each is minutes.
pub const STEPS: Limit = Limit {
    what: "updates in one `step`",
    min: 1,
    max: 10_000,
    instead: "run `step` again to go on (every update is checkpointed)",
};
/// Epochs of one stage-1 schedule or `fulltrain` (the paper: 200 and 300).
pub const EPOCHS: Limit = Limit {
    what: "epochs",
    min: 1,
    max: 100_000,
    instead: "",
};
/// Fine-tune epochs of one trajectory (the paper: 10).
pub const FINETUNE_EPOCHS: Limit = Limit {
    what: "fine-tune epochs per trajectory",
    min: 1,
    max: 10_000,
    instead: "",
};
/// Trajectories of one `evaluate`, `probe` or `compare`.
pub const TRAJECTORIES: Limit = Limit {
    what: "trajectories",
    min: 1,
    max: 1_000,
    instead: "run the command again for more",
};
/// Updates of a whole search (the paper: 350).
pub const UPDATES: Limit = Limit {
    what: "updates in a search",
    min: 0,
    max: 1_000_000,
    instead: "",
};
/// Pairs `sample` draws and previews.
pub const SAMPLES: Limit = Limit {
    what: "samples",
    min: 1,
    max: 64,
    instead: "`sample` previews at most 64 images",
};
/// Rows `policy` lists (there are 1,296 pairs).
pub const TOP_PAIRS: Limit = Limit {
    what: "pairs to list",
    min: 1,
    max: 1_296,
    instead: "there are 1,296 pairs",
};
/// Null searches one `null` runs: 10,000 replays are minutes even for the paper's 350 updates.
pub const NULL_REPLICATES: Limit = Limit {
    what: "null searches",
    min: 2,
    max: 10_000,
    instead: "",
};
/// Images per batch.
pub const BATCH: Limit = Limit {
    what: "images per batch",
    min: 2,
    max: 65_536,
    instead: "",
};
/// Trajectories trained together as one grouped model.
pub const TRAJECTORY_BATCH: Limit = Limit {
    what: "trajectories in one grouped model",
    min: 0,
    max: 64,
    instead: "",
};
/// Pairs a trajectory draws up front under `pairs_per_trajectory`.
pub const PAIRS_PER_TRAJECTORY: Limit = Limit {
    what: "pairs per trajectory",
    min: 0,
    max: 1_000_000,
    instead: "0 draws a pair per image (the paper)",
};

/// Bytes a θ file may have (an export of the 1,296 probabilities is ~40 KB).
pub const THETA_FILE_BYTES: u64 = 16 << 20;
/// Bytes a `session.json` may have (the paper's 350 updates with op counts are a few MB).
pub const SESSION_FILE_BYTES: u64 = 1 << 30;

/// Bytes of memory this machine has available now (`MemAvailable`), or 8 GiB where that
/// cannot be read: what a loader checks a data set's decoded size against before decoding.
pub fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kb.checked_mul(1024)
        })
        .unwrap_or(8 << 30)
}

/// Gigabytes, for messages.
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// A text file read whole, refusing what is not a regular file (`/dev/zero`, a FIFO) or is
/// larger than `max` bytes before reading it, and reading at most `max` bytes even if it grows.
pub fn read_text(path: &std::path::Path, max: u64) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("{} bytes, more than the {} bytes such a file can have", meta.len(), max),
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)?.take(max).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn a_number_outside_its_range_names_the_range_and_what_to_do() {
        assert_eq!(STEPS.check(10_000), Ok(10_000));
        let e = STEPS.check(u64::MAX).unwrap_err().to_string();
        assert!(
            e.contains("18446744073709551615 updates in one `step`")
                && e.contains("limit of 10000")
                && e.contains("run `step` again"),
            "{e}"
        );
        assert_eq!(EPOCHS.check_usize(1), Ok(1));
        let e = EPOCHS.check_usize(0).unwrap_err().to_string();
        assert!(e.contains("0 epochs is too few: at least 1"), "{e}");
        assert_eq!(TRAJECTORY_BATCH.check_usize(0), Ok(0), "0 = automatic");
    }

    #[test]
    fn read_text_refuses_devices_and_oversized_files() {
        let e = read_text(std::path::Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.json");
        std::fs::write(&p, vec![b'1'; 2000]).unwrap();
        assert!(read_text(&p, 1000).unwrap_err().to_string().contains("2000 bytes"));
        assert_eq!(read_text(&p, 2000).unwrap().len(), 2000);
    }
}
