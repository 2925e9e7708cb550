//! Never lose a checkpoint (issue 11): the `augwise` process is killed (SIGKILL, as `kill -9`)
//! at every checkpoint syscall of `pretrain`, `step`, `probe` and `fulltrain` in turn, and
//! every time the run directory resumes to the state before the command or after it — never a
//! broken one. And a second process on a run directory gets a clear error naming the first.
//! (Failed writes, as on a full disk: tests/faults.rs.)
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CONFIG: &str = "config data=synthetic:n=48,size=12,classes=3 pretrain_epochs=1 finetune_epochs=1 trajectories=2 probe_trajectories=2 fulltrain_epochs=1";

/// Run `lines` as a script in `dir`, the `fault`-th checkpoint syscall killing the process.
fn script(dir: &Path, lines: &[&str], fault: Option<u64>) -> Output {
    let file = dir.with_extension("augwise");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_augwise"));
    c.args(["--preset", "cpu", "--device", "cpu", "--run-dir"])
        .arg(dir)
        .arg("run")
        .arg(&file);
    c.env_remove("AUGWISE_FAULT_AT").env_remove("AUGWISE_FAULT_MODE");
    if let Some(n) = fault {
        c.env("AUGWISE_FAULT_AT", n.to_string());
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Where a run stands: stage-1 epochs, updates, probes, full trainings (None: no checkpoint).
fn progress(dir: &Path) -> Option<[usize; 4]> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("session.json")).ok()?).ok()?;
    let len = |x: &Value| x.as_array().map_or(0, Vec::len);
    Some([
        v["pretrain_epochs_done"].as_u64()? as usize,
        len(&v["history"]["updates"]),
        len(&v["history"]["probes"]),
        len(&v["history"]["fulltrains"]),
    ])
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Kill `command` at syscall 1, 2, … of a copy of `base` (None: a fresh run directory) until
/// it completes; after each kill the directory must resume to the state before or after it.
/// Returns the number of kills.
fn sweep(root: &Path, base: Option<&Path>, command: &str) -> usize {
    let prefix = |dir: &Path| match base {
        Some(_) => format!("resume {}", dir.display()),
        None => CONFIG.to_owned(),
    };
    // The state after the command, from an uninterrupted run.
    let reference = root.join(format!("{}-done", command.replace(' ', "-")));
    if let Some(b) = base {
        copy_dir(b, &reference);
    }
    let o = script(&reference, &[&prefix(&reference), command], None);
    assert!(o.status.success(), "{command}: {}", text(&o));
    let before = base.and_then(progress);
    let after = progress(&reference);
    assert_ne!(before, after, "{command} changed nothing");
    for n in 1..200u64 {
        let dir = root.join(format!("{}-{n}", command.replace(' ', "-")));
        if let Some(b) = base {
            copy_dir(b, &dir);
        }
        let o = script(&dir, &[&prefix(&dir), command], Some(n));
        if o.status.success() {
            return n as usize - 1;
        }
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{command}, syscall {n}: not the injected kill: {}",
            text(&o)
        );
        let now = progress(&dir);
        assert!(
            now == before || now == after,
            "{command}, killed at syscall {n}: {now:?}, neither {before:?} nor {after:?}"
        );
        if now.is_some() {
            // And the directory resumes (checksums, snapshot, consistency) and goes on.
            let o = script(&dir, &[&format!("resume {}", dir.display()), "history"], None);
            assert!(
                o.status.success(),
                "{command}, killed at syscall {n}: resume failed: {}",
                text(&o)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    panic!("{command} never completed");
}

#[test]
fn a_kill_at_any_checkpoint_syscall_leaves_a_resumable_run() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let kills = [
        ("pretrain", sweep(r, None, "pretrain")),
        // More stage 1 over a checkpoint that has weights: the case where renaming the
        // snapshot before session.json once left "weights from epoch 2, session.json says 1".
        ("pretrain 1", sweep(r, Some(&r.join("pretrain-done")), "pretrain 1")),
        ("step 1", sweep(r, Some(&r.join("pretrain-done")), "step 1")),
        ("probe none 2", sweep(r, Some(&r.join("step-1-done")), "probe none 2")),
        (
            "fulltrain none 1",
            sweep(r, Some(&r.join("step-1-done")), "fulltrain none 1"),
        ),
    ];
    eprintln!("kills survived: {kills:?}");
    // pretrain: snapshot write, fsync, rename; session.json create, write, fsync, rename;
    // the directory fsync (and again: removing the old snapshot). step: evaluate's and
    // update's session.json. The others: one.
    assert!(
        kills[0].1 >= 8 && kills[1].1 >= 8 && kills[2].1 >= 10 && kills[3].1 >= 5 && kills[4].1 >= 5,
        "{kills:?}"
    );
}

#[test]
fn a_second_process_on_a_run_directory_is_refused_with_the_holder_named() {
    let root = tempfile::tempdir().unwrap();
    let dir: PathBuf = root.path().join("run");
    let o = script(&dir, &[CONFIG, "pretrain"], None);
    assert!(o.status.success(), "{}", text(&o));
    // This test process holds the directories, as another augwise session would: the run, and
    // a new one that has not written its first checkpoint yet.
    let held = augwise::checkpoint::RunLock::acquire(&dir).unwrap();
    let fresh = root.path().join("fresh");
    let held_fresh = augwise::checkpoint::RunLock::acquire(&fresh).unwrap();
    for (on, lines) in [
        (&dir, vec![format!("resume {}", dir.display()), "step 1".into()]),
        (&fresh, vec![CONFIG.into(), "pretrain".into()]),
    ] {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let o = script(on, &lines, None);
        let t = text(&o);
        assert!(!o.status.success(), "{t}");
        assert!(
            t.contains("is in use by augwise pid") && t.contains(&std::process::id().to_string()),
            "{t}"
        );
    }
    assert_eq!(progress(&dir), Some([1, 0, 0, 0]), "nothing was written");
    assert!(!fresh.join("session.json").exists());
    drop((held, held_fresh));
    let o = script(&dir, &[&format!("resume {}", dir.display()), "step 1"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(progress(&dir), Some([1, 1, 0, 0]));
}
