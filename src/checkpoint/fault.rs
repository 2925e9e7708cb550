//! The checkpoint layer's fault hook, compiled only with the `fault-injection` feature (on in
//! the package's and the REPL's test builds, never in a user's binary): `AUGWISE_FAULT_AT=N`
//! makes the N-th checkpoint syscall of the process kill it (`AUGWISE_FAULT_MODE=kill`, the
//! default) or fail as a full disk would (`fail`); tests/faults.rs sweeps N over every
//! syscall of each primitive.

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
