//! A checkpoint's files: written whole or not at all — under a temporary name unique to the
//! process and the call, fsynced, renamed over the old one, the directory fsynced; a failure
//! removes the temporary file — and read back with an error that says whether a file is
//! foreign, corrupt or truncated.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{io, syscall, CheckpointError};

pub(super) const TMP_SUFFIX: &str = ".augwise-tmp";

/// A temporary name beside `path`, unique to this process and call.
pub(super) fn tmp_name(path: &Path) -> PathBuf {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    // A name the target's filesystem takes (255 bytes) must not fail for its temporary's
    // sake: keep at most 120 bytes of it, whole characters; the pid and counter keep it unique.
    let mut cut = name.len().min(120);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    path.with_file_name(format!(".{}.{}.{n}{TMP_SUFFIX}", &name[..cut], std::process::id()))
}

/// fsync a directory after a rename in it. Its failure is not an error: the rename has
/// happened (the new file is what every reader sees), and some filesystems cannot fsync a
/// directory at all. A kill here is still a fault point.
pub(super) fn sync_dir(dir: &Path) {
    let _ = syscall("sync", dir);
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

pub(super) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    // Renaming over a device or a directory would replace it (as root, `/dev/zero` itself).
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            return Err(io(
                "write",
                path,
                "it exists and is not a regular file (a directory or a device); name a file",
            ));
        }
    }
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let tmp = tmp_name(path);
    let written = (|| {
        syscall("create", &tmp)?;
        // Errors name the file the user asked for, not its temporary.
        let mut f = File::create(&tmp).map_err(|e| io("write", path, e))?;
        syscall("write", &tmp)?;
        f.write_all(bytes).map_err(|e| io("write", path, e))?;
        syscall("sync", &tmp)?;
        f.sync_all().map_err(|e| io("write", path, e))?;
        drop(f);
        syscall("rename", path)?;
        std::fs::rename(&tmp, path).map_err(|e| io("write", path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir);
    Ok(())
}

/// Temporaries a killed writer left in `dir`.
pub(super) fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Read and parse a JSON file, telling a missing, foreign or damaged file apart.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, format: &str) -> Result<T, CheckpointError> {
    let text = crate::limits::read_text(path, crate::limits::SESSION_FILE_BYTES).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::Foreign {
                path: path.to_owned(),
                why: "no session.json here".into(),
            }
        } else {
            io("read", path, e)
        }
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(f) if f == format => {}
        Some(other) => {
            return Err(CheckpointError::Foreign {
                path: path.to_owned(),
                why: format!("format `{other}`, expected `{format}`"),
            })
        }
        None => {
            return Err(CheckpointError::Foreign {
                path: path.to_owned(),
                why: "no `format` field".into(),
            })
        }
    }
    serde_json::from_value(value).map_err(|e| CheckpointError::Corrupt {
        path: path.to_owned(),
        why: e.to_string(),
    })
}
