//! Checkpoints that are never half written, never mismatched and never shared.
//!
//! - **Atomic files**: every file is written under a temporary name unique to the process and
//!   the call, fsynced, renamed over the old one, and the directory fsynced; a failure removes
//!   the temporary file.
//! - **One commit**: the weights snapshot is content-addressed (`snapshot-<sha256>.safetensors`)
//!   and `session.json` names it with its checksum, so renaming `session.json` into place is
//!   the single step that moves a run from one checkpoint to the next; older snapshots are
//!   deleted only after that. A kill at any point leaves the previous checkpoint or the new one.
//! - **One writer**: [`RunLock`] holds an exclusive advisory lock on `DIR/lock` for a session's
//!   life, naming its holder; the kernel drops it when the holder dies, so it is never stale.
//! - **Fault injection** for tests (the `fault-injection` feature, on in test builds only):
//!   `AUGWISE_FAULT_AT=N` makes the N-th checkpoint syscall of
//!   the process kill it (`AUGWISE_FAULT_MODE=kill`, the default) or fail with an I/O error
//!   (`fail`, a full disk); tests/faults.rs sweeps N over every syscall of each primitive.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tch::Tensor;

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

// ---- fault injection ------------------------------------------------------------------------

/// Compiled only with the `fault-injection` feature, which the test builds turn on (the
/// package's and the REPL's dev-dependencies): a user's binary has no environment variable
/// that can kill it.
#[cfg(feature = "fault-injection")]
mod fault {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::OnceLock;

    use super::{io, CheckpointError};

    static SYSCALLS: AtomicU64 = AtomicU64::new(0);
    /// The syscall number the fault fires at (0: none), and whether it kills.
    static FAULT_AT: AtomicU64 = AtomicU64::new(0);
    static FAULT_KILLS: AtomicBool = AtomicBool::new(true);

    /// `AUGWISE_FAULT_AT` / `AUGWISE_FAULT_MODE`, read once.
    fn fault_from_env() {
        static READ: OnceLock<()> = OnceLock::new();
        READ.get_or_init(|| {
            if let Some(n) = std::env::var("AUGWISE_FAULT_AT")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                FAULT_AT.store(n, Ordering::SeqCst);
                FAULT_KILLS.store(
                    std::env::var("AUGWISE_FAULT_MODE")
                        .map(|m| m.trim() != "fail")
                        .unwrap_or(true),
                    Ordering::SeqCst,
                );
            }
        });
    }

    /// Make the `n`-th checkpoint syscall from now fail as a full disk would (tests of the
    /// rollback; one test at a time per process, since the count is the process's).
    #[doc(hidden)]
    pub fn fail_syscall_in(n: u64) {
        fault_from_env();
        FAULT_KILLS.store(false, Ordering::SeqCst);
        FAULT_AT.store(SYSCALLS.load(Ordering::SeqCst) + n, Ordering::SeqCst);
    }

    /// Count one checkpoint syscall about to happen; the injected fault fires here.
    pub(super) fn syscall(action: &'static str, path: &Path) -> Result<(), CheckpointError> {
        fault_from_env();
        let n = SYSCALLS.fetch_add(1, Ordering::SeqCst) + 1;
        if n == FAULT_AT.load(Ordering::SeqCst) {
            if FAULT_KILLS.load(Ordering::SeqCst) {
                // SAFETY: plain syscalls; SIGKILL ends the process here, as `kill -9` would.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
            return Err(io(
                action,
                path,
                "No space left on device (injected by AUGWISE_FAULT_AT or a test)",
            ));
        }
        Ok(())
    }

    /// Checkpoint syscalls this process has made (what `AUGWISE_FAULT_AT` counts).
    pub fn syscalls() -> u64 {
        SYSCALLS.load(Ordering::SeqCst)
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

// ---- atomic files ---------------------------------------------------------------------------

const TMP_SUFFIX: &str = ".augwise-tmp";

/// A temporary name beside `path`, unique to this process and call.
fn tmp_name(path: &Path) -> PathBuf {
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
fn sync_dir(dir: &Path) {
    let _ = syscall("sync", dir);
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn parent(path: &Path) -> &Path {
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

// ---- snapshots ------------------------------------------------------------------------------

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

// ---- the run-directory lock -----------------------------------------------------------------

/// An exclusive advisory lock (`flock`) on `DIR/lock`, held while this value lives. The file
/// names the holder (pid, host, start time) for the error another process gets. The kernel
/// releases the lock when its holder exits — also by `kill -9` — so a lock file left behind
/// never blocks anyone: it is stale exactly when nobody holds its lock.
///
/// Within one process the newest session on a directory takes it over (a notebook cell run
/// again, `resume DIR` at the REPL): it shares the holder's open file (a `dup` of the
/// descriptor the file records), writes its own token, and the older session, finding another
/// token there, refuses to write. All of this goes through the file, not a static: evcxr
/// loads each notebook cell with its own copy of a crate's statics.
#[derive(Debug)]
pub struct RunLock {
    /// `None` for a run directory opened read-only: nothing to lock, and nothing may write.
    file: Option<File>,
    dir: PathBuf,
    token: String,
    /// Why the directory could not be opened for writing.
    read_only: Option<String>,
}

/// What the lock file says: `augwise pid P on host H (since T)`, then ` · session TOKEN fd FD`.
struct Holder {
    text: String,
    pid: Option<u32>,
    host: String,
    token: String,
    fd: Option<i32>,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let text = text.trim().to_owned();
        let word_after = |key: &str| {
            text.split_whitespace()
                .skip_while(|w| *w != key)
                .nth(1)
                .map(str::to_owned)
        };
        Holder {
            pid: word_after("pid").and_then(|w| w.parse().ok()),
            host: word_after("host").unwrap_or_default(),
            token: word_after("session").unwrap_or_default(),
            fd: word_after("fd").and_then(|w| w.parse().ok()),
            text,
        }
    }

    /// The part for people.
    fn who(&self) -> String {
        let who = self.text.split(" · ").next().unwrap_or_default().trim();
        if who.is_empty() {
            "another augwise process".to_owned()
        } else {
            who.to_owned()
        }
    }
}

fn read_holder(file: &File) -> Holder {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    let mut text = String::new();
    let _ = f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_string(&mut text));
    Holder::parse(&text)
}

fn same_file(a: &File, b: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

impl RunLock {
    /// Take `dir`'s lock (creating `dir`), or say who holds it. Temporary files a dead
    /// process left in `dir` are removed (no one else can be writing there now).
    pub fn acquire(dir: &Path) -> Result<RunLock, CheckpointError> {
        use std::os::unix::io::{AsRawFd, FromRawFd};
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        // SAFETY: flock on a descriptor we own; non-blocking.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        let file = if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK) {
            let holder = read_holder(&file);
            let here = holder.pid == Some(std::process::id()) && holder.host == hostname();
            // This process holds it: share the holder's open file, if it is still this file.
            // SAFETY: a close-on-exec dup of a descriptor number (a child process must not
            // inherit the lock); the result is checked before use.
            let shared = holder
                .fd
                .filter(|_| here)
                .map(|fd| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })
                .filter(|&fd| fd >= 0)
                .map(|fd| unsafe { File::from_raw_fd(fd) });
            match shared {
                Some(f) if same_file(&f, &file) => f,
                _ => {
                    let who = if here {
                        format!("{} (another session of this program)", holder.who())
                    } else {
                        holder.who()
                    };
                    return Err(CheckpointError::Locked {
                        dir: dir.to_owned(),
                        holder: who,
                    });
                }
            }
        } else {
            // rc != 0 otherwise: no flock on this filesystem (some network mounts). Go on
            // unlocked rather than refuse to work; unique temporary names keep writes whole.
            remove_temporaries(dir);
            file
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let token = format!("{:x}{:x}", nanos, COUNTER.fetch_add(1, Ordering::SeqCst));
        let me = format!(
            "augwise pid {} on host {} (since unix time {}) · session {token} fd {}",
            std::process::id(),
            hostname(),
            nanos / 1_000_000_000,
            file.as_raw_fd()
        );
        let mut f = &file;
        let _ = file.set_len(0);
        let _ = std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).and_then(|_| f.write_all(me.as_bytes()));
        let _ = file.sync_all();
        Ok(RunLock {
            file: Some(file),
            dir: dir.to_owned(),
            token,
            read_only: None,
        })
    }

    /// `dir`'s lock, or — where the directory exists but cannot be written (a read-only
    /// medium, an archive without write permission) — a read-only claim on it: the run can be
    /// read and shown, and every write is refused by [`RunLock::check_current`].
    pub fn acquire_or_read_only(dir: &Path) -> Result<RunLock, CheckpointError> {
        match RunLock::acquire(dir) {
            Err(CheckpointError::Io { why, .. }) if dir.is_dir() && !writable(dir) => Ok(RunLock {
                file: None,
                dir: dir.to_owned(),
                token: String::new(),
                read_only: Some(why),
            }),
            other => other,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why this directory is open read-only, if it is.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Fails when the directory was opened read-only, or a newer session of this process took
    /// it over.
    pub fn check_current(&self) -> Result<(), CheckpointError> {
        let Some(file) = &self.file else {
            return Err(CheckpointError::ReadOnly {
                dir: self.dir.clone(),
                why: self.read_only.clone().unwrap_or_default(),
            });
        };
        if read_holder(file).token == self.token {
            return Ok(());
        }
        Err(CheckpointError::Superseded { dir: self.dir.clone() })
    }
}

/// Whether this process may create files in `dir` (`access(2)`: permissions, and `EROFS` for a
/// read-only mount).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // The current holder empties the file (removing it would race a new holder); closing
        // its descriptor drops the lock. A superseded one leaves its successor's words alone.
        if let Some(file) = &self.file {
            if read_holder(file).token == self.token {
                let _ = file.set_len(0);
            }
        }
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer outlives the call, and its length is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "?".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
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
