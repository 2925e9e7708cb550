//! The weights snapshot: content-addressed (`snapshot-<sha256>.safetensors`) and named with
//! its checksum by `session.json`, so renaming `session.json` into place is the one step that
//! moves a run to its next checkpoint; older snapshots are deleted only after that.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use tch::Tensor;

use super::files::tmp_name;
use super::{io, os_words, syscall, CheckpointError};
/// A weights snapshot as `session.json` names it: the file (content-addressed) and the
/// SHA-256 of its bytes, verified before a resume trusts it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotRef {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".safetensors";

/// Write named tensors as a safetensors snapshot in `dir` under a name taken from its
/// checksum. Nothing refers to it until the caller commits a `session.json` naming it (whose
/// directory fsync makes this file's entry durable too).
pub fn write_snapshot(dir: &Path, tensors: &[(String, Tensor)]) -> Result<SnapshotRef, CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let tmp = tmp_name(&dir.join("snapshot.safetensors"));
    let written = (|| {
        let cpu: Vec<(String, Tensor)> = tensors
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.f_to_device(tch::Device::Cpu)?.f_contiguous()?)))
            .collect::<Result<_, tch::TchError>>()
            .map_err(|e| io("write", &tmp, e))?;
        syscall("write", &tmp)?;
        // Errors name the run directory and say what the OS said, not the temporary's name
        // and a library's debug text.
        let snapshot = |e: &dyn std::fmt::Display| io("write a weights snapshot in", dir, os_words(&e.to_string()));
        Tensor::write_safetensors(&cpu, &tmp).map_err(|e| snapshot(&e))?;
        syscall("sync", &tmp)?;
        let mut f = File::open(&tmp).map_err(|e| snapshot(&e))?;
        f.sync_all().map_err(|e| snapshot(&e))?;
        // The checksum of what is on disk, read back: a short write shows up here, not at resume.
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| snapshot(&e))?;
        let sha256 = sha256_hex(&bytes);
        let file = format!("{SNAPSHOT_PREFIX}{}{SNAPSHOT_SUFFIX}", &sha256[..16]);
        syscall("rename", &dir.join(&file))?;
        std::fs::rename(&tmp, dir.join(&file)).map_err(|e| io("write", &dir.join(&file), e))?;
        Ok(SnapshotRef {
            file,
            sha256,
            bytes: bytes.len() as u64,
        })
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    // The directory entry becomes durable with the fsync after `session.json`'s rename.
    written
}

/// Read the snapshot `r` of `dir`, refusing it unless its bytes have the recorded checksum.
pub fn read_snapshot(dir: &Path, r: &SnapshotRef) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    let name_ok =
        r.file.starts_with(SNAPSHOT_PREFIX) && r.file.ends_with(SNAPSHOT_SUFFIX) && !r.file.contains(['/', '\\']);
    let state = dir.join("session.json");
    if !name_ok {
        return Err(CheckpointError::Corrupt {
            path: state,
            why: format!("it names `{}` as its snapshot, not a snapshot file", r.file),
        });
    }
    let path = dir.join(&r.file);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CheckpointError::Corrupt {
                path: state,
                why: format!("its weights snapshot {} is missing", path.display()),
            })
        }
        Err(e) => return Err(io("read", &path, e)),
    };
    let sum = sha256_hex(&bytes);
    if bytes.len() as u64 != r.bytes || sum != r.sha256 {
        return Err(CheckpointError::Corrupt {
            path,
            why: format!(
                "{} bytes with SHA-256 {}…, but session.json recorded {} bytes with {}…: the file changed after augwise wrote it",
                bytes.len(),
                &sum[..12],
                r.bytes,
                r.sha256.get(..12).unwrap_or(&r.sha256)
            ),
        });
    }
    Tensor::read_safetensors(&path).map_err(|e| CheckpointError::Corrupt {
        path: path.clone(),
        why: e.to_string(),
    })
}

/// Delete the snapshots of `dir` other than `keep` (after a commit made them unreferenced).
/// Best effort: a leftover snapshot wastes space but breaks nothing.
pub fn remove_other_snapshots(dir: &Path, keep: Option<&SnapshotRef>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let snapshot = name.starts_with(SNAPSHOT_PREFIX) && name.ends_with(SNAPSHOT_SUFFIX);
        if snapshot && keep.is_none_or(|k| k.file != name) && syscall("remove", &e.path()).is_ok() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Read named tensors from a safetensors file (snapshots of runs written before checksums).
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    if !path.exists() {
        return Err(CheckpointError::Foreign {
            path: path.to_owned(),
            why: "file missing".into(),
        });
    }
    Tensor::read_safetensors(path).map_err(|e| CheckpointError::Corrupt {
        path: path.to_owned(),
        why: e.to_string(),
    })
}
