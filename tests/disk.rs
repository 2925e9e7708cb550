//! A real full disk and a real read-only file system under a session (issue 11): a tmpfs the
//! test mounts (root with CAP_SYS_ADMIN, as on this project's machines; elsewhere the test
//! says it was skipped — tests/faults.rs injects the same failures everywhere). The command
//! fails with the OS's words, memory stays what the disk says, no temporary file is left, and
//! once there is room again the same command succeeds.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use augwise::search::Session;

/// A mounted tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .ok()?
            .success();
        ok.then(|| Tmpfs(dir.to_owned()))
    }

    fn remount(&self, options: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .map(|s| s.success());
        assert!(matches!(ok, Ok(true)), "remount {options} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `dir` bind-mounted over itself read-only, until dropped.
struct ReadOnlyBind(PathBuf);

impl ReadOnlyBind {
    fn over(dir: &Path) -> ReadOnlyBind {
        ReadOnlyBind::try_over(dir).expect("read-only bind mount failed")
    }

    /// `None` where this process may not mount (not root, no CAP_SYS_ADMIN).
    fn try_over(dir: &Path) -> Option<ReadOnlyBind> {
        let run = |args: &[&str]| Command::new("mount").args(args).arg(dir).status().map(|s| s.success());
        if !matches!(run(&["--bind", dir.to_str()?]), Ok(true)) {
            return None;
        }
        let guard = ReadOnlyBind(dir.to_owned());
        matches!(run(&["-o", "remount,bind,ro"]), Ok(true)).then_some(guard)
    }
}

impl Drop for ReadOnlyBind {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_full_disk_and_a_read_only_directory_leave_memory_and_disk_in_step() {
    let root = tempfile::tempdir().unwrap();
    // Room for the lock and session.json, not for the ~2 MB weights snapshot.
    let Some(fs) = Tmpfs::mount(&root.path().join("fs"), "256k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN); tests/faults.rs covers the same paths by injection");
        return;
    };
    let dir = fs.0.join("run");
    let mut s = Session::new(common::tiny_config(), &dir).unwrap();

    let e = s.pretrain(Some(1)).unwrap_err().to_string();
    assert!(
        e.contains("No space left on device")
            && e.contains(&dir.display().to_string())
            && !e.contains("Os {")
            && !e.contains("augwise-tmp"),
        "{e}"
    );
    assert!(e.contains("undone in memory"), "{e}");
    assert_eq!(
        (s.pretrain_epochs_done(), s.history.pretrain.len()),
        (0, 0),
        "memory ran ahead of the disk"
    );
    assert_eq!(names(&dir), vec!["lock"], "a temporary or partial file was left");

    // Room again: the same command succeeds, on the same session.
    fs.remount("size=64m");
    s.pretrain(None).unwrap();
    let epochs = s.pretrain_epochs_done();
    assert_eq!(epochs, s.config.pretrain_epochs);

    // Read-only: the update is refused with the OS's words and undone; writable again, it runs.
    // (A read-only bind mount over the run directory: the session keeps its lock file open for
    // writing, which a remount of the whole tmpfs would refuse as busy.)
    let ro = ReadOnlyBind::over(&dir);
    let ppo = s.ppo.clone();
    let e = s.step(1).unwrap_err().to_string();
    assert!(e.contains("Read-only file system"), "{e}");
    assert_eq!((&s.ppo, s.pending.len(), s.history.updates.len()), (&ppo, 0, 0));
    drop(ro);
    s.step(1).unwrap();
    assert_eq!(s.history.updates.len(), 1);
    drop(s);
    let r = Session::resume(&dir).unwrap();
    assert_eq!((r.pretrain_epochs_done(), r.history.updates.len()), (epochs, 1));
}

/// An archived run on a read-only medium opens for showing — `policy`, `history`, `plot`,
/// `export` — and refuses to change, before computing anything; `save DIR` carries it on in a
/// writable directory (issue 24).
#[test]
fn a_read_only_run_opens_for_inspection() {
    use augwise::command::Shell;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("archived");
    {
        let mut s = Session::new(common::tiny_config(), &dir).unwrap();
        s.pretrain(None).unwrap();
        s.step(1).unwrap();
    }
    let Some(_ro) = ReadOnlyBind::try_over(&dir) else {
        eprintln!("skipped: cannot bind-mount read-only here (needs root with CAP_SYS_ADMIN)");
        return;
    };
    let before = names(&dir);
    let mut sh = Shell::new(common::tiny_config(), &dir);
    let out = sh.run("resume").unwrap();
    assert!(out.text.contains("read-only"), "{}", out.text);
    assert!(sh.session().unwrap().read_only().is_some());
    let policy = sh.run("policy 3").unwrap();
    assert!(policy.text.contains("update"), "{}", policy.text);
    sh.run("history").unwrap();
    let plot = sh.run("plot rewards").unwrap();
    assert!(
        plot.text.contains("not written") && plot.text.contains("read-only"),
        "{}",
        plot.text
    );
    let file = root.path().join("rewards.svg");
    sh.run(&format!("plot rewards {}", file.display())).unwrap();
    assert!(file.exists() && root.path().join("rewards.png").exists());
    let export = sh.run("export json").unwrap();
    assert!(export.text.contains("augwise-policy/1"), "{}", export.text);

    // Changing it is refused up front, naming the way on.
    for line in ["step 1", "evaluate 1", "probe none 1", "null 2"] {
        let e = sh.run(line).unwrap_err().to_string();
        assert!(e.contains("opened read-only") && e.contains("save DIR"), "{line}: {e}");
    }
    assert_eq!(names(&dir), before);
    let moved = root.path().join("continued");
    sh.run(&format!("save {}", moved.display())).unwrap();
    sh.run("step 1").unwrap();
    assert_eq!(Session::resume(&moved).unwrap().ppo.updates, 2);
}
