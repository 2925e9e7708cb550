//! Atomic checkpoints: every file is written to a temporary name, fsynced, then renamed over
//! the old one (and the directory fsynced), so a crash, a Ctrl-C or a kernel restart leaves
//! either the previous checkpoint or the new one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tch::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error("{path} is not an augwise checkpoint ({why}); point `resume` at a run directory written by augwise")]
    Foreign { path: PathBuf, why: String },
    #[error("{path} is corrupt or truncated ({why}); the run directory's previous step is lost only if this file was the only copy — start a new run or restore a backup")]
    Corrupt { path: PathBuf, why: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io { path: path.to_owned(), why: e.to_string() }
}

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = tmp_name(path);
    let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Write named tensors as safetensors, atomically.
pub fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), CheckpointError> {
    let tmp = tmp_name(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let cpu: Vec<(String, Tensor)> = tensors.iter().map(|(k, t)| (k.clone(), t.to_device(tch::Device::Cpu).contiguous())).collect();
    Tensor::write_safetensors(&cpu, &tmp).map_err(|e| io(&tmp, e))?;
    File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Read named tensors written by [`write_tensors`].
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    if !path.exists() {
        return Err(CheckpointError::Foreign { path: path.to_owned(), why: "file missing".into() });
    }
    Tensor::read_safetensors(path).map_err(|e| CheckpointError::Corrupt { path: path.to_owned(), why: e.to_string() })
}

/// Read and parse a JSON file, telling a missing, foreign or damaged file apart.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, format: &str) -> Result<T, CheckpointError> {
    let text = crate::limits::read_text(path, crate::limits::SESSION_FILE_BYTES).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::Foreign { path: path.to_owned(), why: "no session.json here".into() }
        } else {
            io(path, e)
        }
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CheckpointError::Corrupt { path: path.to_owned(), why: e.to_string() })?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(f) if f == format => {}
        Some(other) => {
            return Err(CheckpointError::Foreign { path: path.to_owned(), why: format!("format `{other}`, expected `{format}`") })
        }
        None => return Err(CheckpointError::Foreign { path: path.to_owned(), why: "no `format` field".into() }),
    }
    serde_json::from_value(value).map_err(|e| CheckpointError::Corrupt { path: path.to_owned(), why: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, br#"{"format":"t/1","v":1}"#).unwrap();
        write_atomic(&p, br#"{"format":"t/1","v":2}"#).unwrap();
        let v: serde_json::Value = read_json(&p, "t/1").unwrap();
        assert_eq!(v["v"], 2);
        assert!(!tmp_name(&p).exists());
        std::fs::write(&p, br#"{"format":"t/1","v":"#).unwrap();
        assert!(matches!(read_json::<serde_json::Value>(&p, "t/1"), Err(CheckpointError::Corrupt { .. })));
        std::fs::write(&p, br#"{"format":"other/1"}"#).unwrap();
        assert!(matches!(read_json::<serde_json::Value>(&p, "t/1"), Err(CheckpointError::Foreign { .. })));
        let t = d.path().join("t.safetensors");
        write_tensors(&t, &[("a".into(), Tensor::from_slice(&[1f32, 2.0]))]).unwrap();
        assert_eq!(read_tensors(&t).unwrap()[0].1.double_value(&[1]), 2.0);
        let bytes = std::fs::read(&t).unwrap();
        std::fs::write(&t, &bytes[..bytes.len() - 3]).unwrap();
        assert!(matches!(read_tensors(&t), Err(CheckpointError::Corrupt { .. })));
    }
}
