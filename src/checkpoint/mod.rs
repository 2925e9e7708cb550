//! Checkpoints that are never half written, never mismatched and never shared.
//!
//! This file: the one error every checkpoint operation reports. The parts, one job each:
//! - `files.rs`: atomic files — written whole or not at all, read back checked;
//! - `snapshot.rs`: one commit — the weights content-addressed and named with their checksum
//!   by `session.json`, whose rename is the single step from one checkpoint to the next; a
//!   kill at any point leaves the previous checkpoint or the new one;
//! - `lock.rs`: one writer — [`RunLock`], never stale (the kernel drops it with its holder);
//! - `fault.rs`: the fault hook of the crash and full-disk tests (test builds only).

use std::path::{Path, PathBuf};

#[cfg(feature = "fault-injection")]
mod fault;
mod files;
mod lock;
mod snapshot;

pub use files::{read_json, write_atomic};
pub use lock::{hostname, RunLock};
pub use snapshot::{read_snapshot, read_tensors, remove_other_snapshots, sha256_hex, write_snapshot, SnapshotRef};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("could not {action} {path}: {why}")]
    Io {
        action: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("{path} is not an augwise checkpoint ({why}); point `resume` at a run directory written by augwise")]
    Foreign { path: PathBuf, why: String },
    #[error("{path} is corrupt or truncated ({why}); the run directory's previous step is lost only if this file was the only copy — start a new run or restore a backup")]
    Corrupt { path: PathBuf, why: String },
    #[error("run directory {dir} is in use by {holder}; two sessions on one directory would overwrite each other's steps. Close that session, or work on a copy (`save OTHER_DIR` there, or copy the directory)")]
    Locked { dir: PathBuf, holder: String },
    #[error("this session no longer owns {dir}: a newer session of this program resumed or started there (a notebook cell run again, a second `resume`). Use that one; this one's steps would overwrite it")]
    Superseded { dir: PathBuf },
    /// A run opened where it cannot be written (a read-only medium, an archive's permissions).
    #[error("{dir} was opened read-only ({why}): its run can be shown (`policy`, `history`, `plot KIND FILE`, `export`) but not changed there. `save DIR` copies it to a writable directory and goes on in that one")]
    ReadOnly { dir: PathBuf, why: String },
}

fn io(action: &'static str, path: &Path, e: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io {
        action,
        path: path.to_owned(),
        why: e.to_string(),
    }
}

/// The OS's own words in an error that carries an `io::Error` only as its debug text
/// (safetensors writes `IoError(Os { code: 28, kind: StorageFull, message: "No space left on
/// device" })`): `No space left on device (os error 28)`. Other text is returned as it is.
fn os_words(text: &str) -> String {
    let field = |key: &str| {
        let start = text.find(key)? + key.len();
        Some(&text[start..])
    };
    let message = field("message: \"").and_then(|rest| rest.split('"').next());
    let code = field("code: ").and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next());
    match (message, code) {
        (Some(m), Some(c)) if !m.is_empty() && !c.is_empty() => format!("{m} (os error {c})"),
        _ => text.to_owned(),
    }
}

#[cfg(feature = "fault-injection")]
use fault::syscall;
#[cfg(feature = "fault-injection")]
pub use fault::{fail_syscall_in, syscalls};

/// Without fault injection a checkpoint syscall is just made.
#[cfg(not(feature = "fault-injection"))]
fn syscall(_action: &'static str, _path: &Path) -> Result<(), CheckpointError> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use tch::Tensor;

    use super::files::TMP_SUFFIX;
    use super::*;

    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn atomic_write_replaces_whole_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, br#"{"format":"t/1","v":1}"#).unwrap();
        write_atomic(&p, br#"{"format":"t/1","v":2}"#).unwrap();
        let v: serde_json::Value = read_json(&p, "t/1").unwrap();
        assert_eq!(v["v"], 2);
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::write(&p, br#"{"format":"t/1","v":"#).unwrap();
        assert!(matches!(
            read_json::<serde_json::Value>(&p, "t/1"),
            Err(CheckpointError::Corrupt { .. })
        ));
        std::fs::write(&p, br#"{"format":"other/1"}"#).unwrap();
        assert!(matches!(
            read_json::<serde_json::Value>(&p, "t/1"),
            Err(CheckpointError::Foreign { .. })
        ));
        // Writing into a path whose parent is a file fails with the path and the OS's words.
        let err = write_atomic(&p.join("y.json"), b"{}").unwrap_err().to_string();
        assert!(err.starts_with("could not create") && err.contains("x.json"), "{err}");
        // A device or a directory is never replaced.
        for special in [Path::new("/dev/null"), d.path()] {
            let err = write_atomic(special, b"{}").unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        assert!(Path::new("/dev/null").metadata().unwrap().file_type().is_char_device());
    }

    #[test]
    fn snapshots_are_content_addressed_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let a = write_snapshot(d.path(), &[("a".into(), Tensor::from_slice(&[1f32, 2.0]))]).unwrap();
        let b = write_snapshot(d.path(), &[("a".into(), Tensor::from_slice(&[1f32, 3.0]))]).unwrap();
        assert_ne!(a.file, b.file);
        assert_eq!(read_snapshot(d.path(), &a).unwrap()[0].1.double_value(&[1]), 2.0);
        remove_other_snapshots(d.path(), Some(&b));
        assert!(!d.path().join(&a.file).exists() && d.path().join(&b.file).exists());
        // One flipped byte, anywhere, is refused with the reason.
        let path = d.path().join(&b.file);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_snapshot(d.path(), &b).unwrap_err().to_string();
        assert!(err.contains("changed after augwise wrote it"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(read_snapshot(d.path(), &b).unwrap_err().to_string().contains("missing"));
        let evil = SnapshotRef {
            file: "../../etc/passwd".into(),
            ..b
        };
        assert!(read_snapshot(d.path(), &evil)
            .unwrap_err()
            .to_string()
            .contains("not a snapshot file"));
    }

    #[test]
    fn os_words_replace_debug_text() {
        let debug = r#"safetensors error /r/.snapshot.tmp: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })"#;
        assert_eq!(os_words(debug), "No space left on device (os error 28)");
        assert_eq!(os_words("plain words"), "plain words");
    }

    /// A long file name the filesystem takes is written (its temporary once made it fail),
    /// and one it refuses is named in the error as the user gave it.
    #[test]
    fn long_names_write_and_errors_name_the_target() {
        let d = tempfile::tempdir().unwrap();
        let fits = d.path().join(format!("{}.svg", "é".repeat(120)));
        write_atomic(&fits, b"<svg/>").unwrap();
        assert_eq!(std::fs::read(&fits).unwrap(), b"<svg/>");
        let too_long = d.path().join(format!("{}.svg", "x".repeat(300)));
        let e = write_atomic(&too_long, b"x").unwrap_err().to_string();
        assert!(
            e.contains(&too_long.display().to_string()) && !e.contains(TMP_SUFFIX),
            "{e}"
        );
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temporary left behind"
        );
    }

    #[test]
    fn a_second_session_in_this_process_supersedes_the_first() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".x.1.2.augwise-tmp"), b"left by a dead process").unwrap();
        let first = RunLock::acquire(d.path()).unwrap();
        assert!(!d.path().join(".x.1.2.augwise-tmp").exists());
        assert!(first.check_current().is_ok());
        let second = RunLock::acquire(d.path()).unwrap();
        assert!(second.check_current().is_ok());
        let err = first.check_current().unwrap_err().to_string();
        assert!(err.contains("no longer owns"), "{err}");
        drop(first);
        drop(second);
        // Released: a third takes it afresh and owns it.
        let third = RunLock::acquire(d.path()).unwrap();
        assert!(third.check_current().is_ok());
        let holder = std::fs::read_to_string(d.path().join("lock")).unwrap();
        assert!(holder.contains(&format!("pid {}", std::process::id())), "{holder}");
    }
}
