//! A failed checkpoint write (a full disk, a read-only directory) leaves memory and disk in
//! step: every checkpoint syscall of every primitive is made to fail in turn, and each time
//! the primitive reports the file and the OS's words, its in-memory changes are undone, the
//! run directory still holds the previous checkpoint and no temporary file is left behind.
//! (Kills at each syscall, and two processes on one directory: repl/tests/faults.rs.)
//!
//! One test in this binary: the injected fault counts the process's checkpoint syscalls.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use augwise::checkpoint;
use augwise::search::{SearchError, Session};
use serde_json::Value;

/// The checkpointed part of a session, as in memory.
fn persistent(s: &Session) -> Value {
    shape(&serde_json::json!({
        "ppo": s.ppo,
        "pending": s.pending,
        "best": s.best,
        "history": s.history,
        "pretrain_epochs_done": s.pretrain_epochs_done(),
    }))
}

/// The same fields from a `session.json` (its `null` before the first checkpoint).
fn shape(v: &Value) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    let len = |x: &Value| x.as_array().map_or(0, Vec::len);
    let h = &v["history"];
    // PPO's state by a digest: equal or not is all that matters, and it is kilobytes.
    let digest = |x: &Value| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        x.to_string().hash(&mut h);
        format!("{:016x}", h.finish())
    };
    serde_json::json!({
        "ppo": digest(&v["ppo"]),
        "pending": len(&v["pending"]),
        "best": digest(&v["best"]),
        "history": [len(&h["pretrain"]), len(&h["updates"]), len(&h["probes"]), len(&h["fulltrains"]), h["null"].is_null()],
        "pretrain_epochs_done": v["pretrain_epochs_done"],
    })
}

/// `session.json` as written (its fields as [`shape`] keeps them), and the run directory's
/// file names.
fn on_disk(dir: &std::path::Path) -> (Value, Vec<String>) {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("session.json")).unwrap_or_else(|_| "null".into()))
            .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    (shape(&v), names)
}

/// Run `step` with the k-th checkpoint syscall failing, for k = 1, 2, … until it succeeds;
/// returns how many syscalls it makes. After each failure memory equals disk — for one
/// primitive (`atomic`) also memory before it — and no temporary or orphan file is left.
fn sweep(s: &mut Session, what: &str, atomic: bool, step: &dyn Fn(&mut Session) -> Result<(), SearchError>) -> u64 {
    let dir = s.run_dir.clone();
    for k in 1..100 {
        let (memory, (disk, names)) = (persistent(s), on_disk(&dir));
        checkpoint::fail_syscall_in(k);
        let result = step(s);
        checkpoint::fail_syscall_in(u64::MAX / 2);
        match result {
            Ok(()) => {
                assert_ne!(persistent(s), memory, "{what}: succeeded without changing the session");
                assert_eq!(
                    on_disk(&dir).0,
                    persistent(s),
                    "{what}: saved state differs from memory"
                );
                return k - 1;
            }
            Err(e) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("could not ") && text.contains("No space left on device"),
                    "{what}, syscall {k}: {text}"
                );
                assert!(text.contains("undone in memory"), "{what}, syscall {k}: {text}");
                let (disk_now, names_now) = on_disk(&dir);
                if disk_now.is_null() {
                    assert_eq!(
                        persistent(s),
                        memory,
                        "{what}, syscall {k}: nothing saved yet, yet memory changed"
                    );
                } else {
                    assert_eq!(persistent(s), disk_now, "{what}, syscall {k}: memory and disk disagree");
                }
                if atomic {
                    assert_eq!(
                        (persistent(s), disk_now, &names_now),
                        (memory, disk, &names),
                        "{what}, syscall {k}: a failed step changed something"
                    );
                }
                assert!(
                    !names_now.iter().any(|n| n.ends_with(".augwise-tmp")),
                    "{what}, syscall {k}: temporary file left: {names_now:?}"
                );
                let snapshots = names_now.iter().filter(|n| n.starts_with("snapshot-")).count();
                assert!(snapshots <= 1, "{what}, syscall {k}: orphan snapshot: {names_now:?}");
            }
        }
    }
    panic!("{what} never succeeded");
}

#[test]
fn a_failed_save_leaves_memory_and_disk_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(common::tiny_config(), dir.path()).unwrap();
    let mut counts = Vec::new();
    counts.push((
        "pretrain",
        sweep(&mut s, "pretrain", true, &|s| s.pretrain(Some(1)).map(drop)),
    ));
    counts.push((
        "pretrain",
        sweep(&mut s, "pretrain again", true, &|s| s.pretrain(Some(1)).map(drop)),
    ));
    counts.push(("step", sweep(&mut s, "step", false, &|s| s.step(1).map(drop))));
    counts.push((
        "evaluate",
        sweep(&mut s, "evaluate", true, &|s| s.evaluate(Some(2)).map(drop)),
    ));
    counts.push(("update", sweep(&mut s, "update", true, &|s| s.update().map(drop))));
    counts.push((
        "probe",
        sweep(&mut s, "probe", true, &|s| {
            s.probe(&"none".parse().unwrap(), Some(2)).map(drop)
        }),
    ));
    counts.push(("null", sweep(&mut s, "null", true, &|s| s.null(Some(10)).map(drop))));
    counts.push((
        "fulltrain",
        sweep(&mut s, "fulltrain", true, &|s| {
            s.fulltrain(&"none".parse().unwrap(), Some(1)).map(drop)
        }),
    ));
    eprintln!("checkpoint syscalls per primitive: {counts:?}");
    // Failure points: the snapshot (write, fsync, rename) and session.json (create, write,
    // fsync, rename) for pretrain; session.json alone for the rest. (A directory fsync's
    // failure is no error — the rename is done — and is a kill point only.)
    assert!(counts[..2].iter().all(|(_, n)| *n >= 7), "{counts:?}");
    assert!(counts[2..].iter().all(|(_, n)| *n >= 4), "{counts:?}");
    // After all that, the directory resumes to exactly the session in memory.
    let expected = persistent(&s);
    drop(s);
    let r = Session::resume(dir.path()).unwrap();
    assert_eq!(persistent(&r), expected);
}
