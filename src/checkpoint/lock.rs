//! One writer per run directory: [`RunLock`], an exclusive advisory lock on `DIR/lock` held for
//! a session's life and naming its holder.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::files::remove_temporaries;
use super::{io, CheckpointError};
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
