//! The `augwise` binary driven as a user would: exit codes, reports and error messages.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::process::{Command, Output};

fn augwise(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augwise"))
        .args(args)
        .output()
        .expect("run augwise")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn device_report_names_torch_and_threads() {
    let o = augwise(&["device"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("torch          2.11.0"), "{out}");
    assert!(
        out.contains("dynamic loader: the build's RUNPATH") || out.contains("LD_LIBRARY_PATH"),
        "{out}"
    );
    assert!(out.contains("CPU threads") && out.contains("default device"), "{out}");
}

/// The launcher (repl/src/launch.rs): an explicit AUGWISE_LIBTORCH is used, and only it; a
/// wrong one or a torch of another version is a clear error, not a loader crash.
#[test]
fn launcher_takes_augwise_libtorch_and_refuses_a_wrong_one() {
    let lib = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/libtorch/lib")).unwrap();
    let run = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_augwise-launch"))
            .arg("device")
            .env("AUGWISE_LIBTORCH", dir)
            .output()
            .unwrap()
    };
    let o = run(&lib);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("chosen by the augwise launcher") && out.contains("(AUGWISE_LIBTORCH)"),
        "{out}"
    );
    assert!(out.contains(&lib.display().to_string()), "{out}");

    let missing = std::env::temp_dir().join("augwise-no-libtorch-here");
    let o = run(&missing);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o).1;
    assert!(
        err.contains("no libtorch 2.11.0 found")
            && err.contains("no libtorch_cpu.so there")
            && err.contains("AUGWISE_LIBTORCH"),
        "{err}"
    );

    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("lib")).unwrap();
    std::fs::write(other.path().join("lib/libtorch_cpu.so"), b"").unwrap();
    std::fs::write(other.path().join("version.py"), "__version__ = '2.13.0+cu130'\n").unwrap();
    let o = run(other.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("torch 2.13.0+cu130, but this build needs 2.11.0"),
        "{}",
        text(&o).1
    );
}

#[test]
fn trains_on_synthetic_data_and_reports_each_epoch() {
    let run = tempfile::tempdir().unwrap();
    let o = augwise(&[
        "--run-dir",
        &run.path().display().to_string(),
        "train",
        "--data",
        "synthetic:n=24,size=16,classes=3",
        "--epochs",
        "2",
        "--limit",
        "0",
        "--batch-size",
        "16",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // `train` is the command table's `fulltrain`: test accuracy after every epoch.
    assert!(out.contains("epoch   1") && out.contains("epoch   2"), "{out}");
    assert!(out.contains("test ") && out.contains("img/s"), "{out}");
    assert!(out.contains("full training with none: final test accuracy"), "{out}");
}

#[test]
fn bad_input_gives_a_clear_error_and_exit_code() {
    let o = augwise(&["train", "--data", "imagenet:/x"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects a bad spec as a usage error");
    assert!(text(&o).1.contains("unknown dataset kind"), "{}", text(&o).1);

    let dir = std::env::temp_dir().join("augwise-cli-no-such-dir");
    let run = tempfile::tempdir().unwrap();
    let run = run.path().display().to_string();
    let o = augwise(&[
        "--run-dir",
        &run,
        "train",
        "--data",
        &format!("cifar10:{}", dir.display()),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("data_batch_1.bin: not found") && err.contains("binary version"),
        "{err}"
    );

    if augwise::device::cuda_device_count() < 8 {
        let o = augwise(&["--run-dir", &run, "--device", "cuda:7", "train", "--data", "synthetic"]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("cuda:7"), "{err}");
    }
    let o = augwise(&["--device", "tpu", "device"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("unknown device `tpu`"));

    // Counts past their limit are refused before anything is sized by them; `search` without
    // --preset takes the automatic one (the global `--preset auto` reaches it too).
    // `train`'s own flags are refused as flags, before the device is even shown, never as
    // the table's `fulltrain` the user did not type.
    let o = augwise(&["train", "--epochs", "100000000000"]);
    assert_eq!(o.status.code(), Some(2));
    let (out, err) = text(&o);
    assert!(
        err.contains("'--epochs <EPOCHS>': 100000000000 is not in 1..=100000")
            && !err.contains("fulltrain")
            && out.is_empty(),
        "{out}{err}"
    );
    let run = tempfile::tempdir().unwrap();
    let o = augwise(&[
        "search",
        "--updates",
        "100000000000",
        "--run-dir",
        &run.path().display().to_string(),
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        out.contains("preset   ") && !err.contains("unknown preset") && err.contains("past the limit of 1000000"),
        "{out}{err}"
    );
}

/// `--json`: every line on stdout and stderr is a JSON object in each failure mode, and a
/// failed subcommand ends with its own error, not a line of the table the user never typed.
#[test]
fn json_mode_is_json_in_every_failure_mode() {
    let run = tempfile::tempdir().unwrap();
    let run = run.path().display().to_string();
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(script.path(), "probe 'pair:Invert\n").unwrap();
    let script = script.path().display().to_string();
    for (args, code, says) in [
        (vec!["--json", "run", "no-such-script.augwise"], 1, "reading script"),
        (vec!["--json", "--bogus"], 2, "unexpected argument '--bogus'"),
        (vec!["--json", "worker", "/no/such/slurm/request"], 1, "worker"),
        (
            vec!["--json", "--run-dir", &run, "run", &script],
            1,
            "probe: unclosed quote",
        ),
        (vec!["--json", "train", "--epochs", "0"], 2, "0 is not in 1..=100000"),
        (vec!["--json", "export", "none"], 0, "augwise-policy/1"),
    ] {
        let o = augwise(&args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {out}{err}");
        let lines: Vec<&str> = out
            .lines()
            .chain(err.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(!lines.is_empty(), "{args:?} printed nothing");
        for l in &lines {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {l}"));
        }
        assert!(out.contains(says) || err.contains(says), "{args:?}: {out}{err}");
        assert!(
            !out.contains("` failed") && !err.contains("` failed"),
            "{args:?}: {out}{err}"
        );
    }
}

#[test]
fn trains_with_a_policy_and_exports_it() {
    let run = tempfile::tempdir().unwrap();
    let o = augwise(&[
        "--run-dir",
        &run.path().display().to_string(),
        "train",
        "--data",
        "synthetic:n=16,size=16,classes=2",
        "--epochs",
        "1",
        "--limit",
        "0",
        "--batch-size",
        "8",
        "--policy",
        "autoaugment:svhn",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("full training with autoaugment:svhn"), "{out}");

    let o = augwise(&["export", "pair:Rotate:20+Invert", "--top", "1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["pairs"][0], "Rotate:20+Invert");

    let o = augwise(&["export", "subpolicies:(Rotat,0.5,3)"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("column 14") && err.contains("did you mean `Rotate`"),
        "{err}"
    );
}

#[test]
fn explain_teaches_each_stage() {
    let o = augwise(&["explain", "update"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("r_k = π_new(k) / π_old(k)") && out.contains("KL"), "{out}");
    let o = augwise(&["explain", "updat"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("did you mean `update`"));
}

#[test]
fn version_and_help() {
    let o = augwise(&["--version"]);
    assert!(text(&o).0.starts_with("augwise 0.1.0"));
    let o = augwise(&["--help"]);
    let (out, _) = text(&o);
    assert!(
        out.contains("train") && out.contains("download") && out.contains("--device"),
        "{out}"
    );
}

fn augwise_stdin(args: &[&str], input: &str) -> Output {
    augwise_stdin_bytes(args, input.as_bytes())
}

fn augwise_stdin_bytes(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_augwise"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn augwise");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// A line that is not UTF-8 is an error naming the line (it used to end the input silently
/// with exit 0); with --keep-going the lines after it still run.
#[test]
fn invalid_utf8_input_is_an_error_not_the_end() {
    let input = b"help\n\xff\xfe status\nstatus\n";
    let o = augwise_stdin_bytes(&[], input);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("input line 2 is not valid UTF-8"), "{err}");
    assert!(!out.contains("augwise> status"), "stopped at the bad line:\n{out}");
    let o = augwise_stdin_bytes(&["--keep-going"], input);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(out.contains("augwise> status"), "{out}");
}

const TINY: &str = "data synthetic:kind=frequency,classes=3,n=16,size=16\nconfig pretrain_epochs=1 batch_size=16 finetune_epochs=1 trajectories=2\nreset\n";

#[test]
fn piped_commands_run_in_order_and_stop_at_the_first_error() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let script = format!("{TINY}pretrain\nstep 1\npolicy 2\nbogus\nhistory\n");
    let o = augwise_stdin(&["--run-dir", run_dir.to_str().unwrap()], &script);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(out.contains("augwise> step 1") && out.contains("update   1"), "{out}");
    assert!(err.contains("unknown command `bogus`"), "{err}");
    assert!(!out.contains("augwise> history"), "stopped at the error:\n{out}");
    assert!(run_dir.join("session.json").exists());

    // --keep-going runs past it (exit code still 1); a script file works the same.
    let file = dir.path().join("s.augwise");
    std::fs::write(&file, "# a comment\nhelp update\nbogus\nexplain sample\n").unwrap();
    let o = augwise(&[
        "run",
        file.to_str().unwrap(),
        "--keep-going",
        "--run-dir",
        run_dir.to_str().unwrap(),
    ]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out.contains("update\n  PPO update") && out.contains("Sampling:"),
        "{out}"
    );
}

#[test]
fn json_mode_prints_one_object_per_result() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let o = augwise_stdin(
        &["--json", "--keep-going", "--run-dir", run_dir.to_str().unwrap()],
        "help\nprobe nonsense\nexplain\n",
    );
    let (out, _) = text(&o);
    let objects: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert_eq!(objects.len(), 3, "{out}");
    assert_eq!(objects[0]["ok"], true);
    assert_eq!(objects[0]["command"], "help");
    assert!(objects[0]["data"].as_array().unwrap().len() > 15);
    assert_eq!(objects[1]["ok"], false);
    assert!(objects[1]["error"].as_str().unwrap().contains("unknown policy"));
    assert_eq!(objects[2]["command"], "explain");
    // Progress goes to stderr as JSON lines too, one object per event.
    let o = augwise_stdin(
        &["--json", "--run-dir", run_dir.to_str().unwrap()],
        &format!("{TINY}pretrain\n"),
    );
    let (_, err) = text(&o);
    let events: Vec<serde_json::Value> = err.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    assert!(!events.is_empty(), "no progress on stderr");
    assert!(events.iter().all(|e| e["progress"]["stage"] == "pretrain"), "{err}");
    assert!(events.iter().any(|e| e["progress"]["fraction"] == 1.0), "{err}");
}

#[test]
fn starts_fast_because_nothing_heavy_runs_before_a_command_needs_it() {
    // Generous bound for CI; the figure on the dev machine is in BENCHMARKS.md.
    let start = std::time::Instant::now();
    let o = augwise_stdin(&[], "help\n");
    assert!(o.status.success());
    assert!(start.elapsed().as_secs_f64() < 5.0, "{:?}", start.elapsed());
}

/// Every file under `dir` with its bytes.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A second process on a finished run: a directory the user named is refused, byte for byte
/// untouched, with the way to resume it; the default directory gives way to `runs/repl-2`;
/// `search` without --resume refuses a named directory that holds a run (issue 24).
#[test]
fn a_second_process_never_replaces_a_finished_run() {
    let cwd = tempfile::tempdir().unwrap();
    let in_cwd = |args: &[&str], input: &str| {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = Command::new(env!("CARGO_BIN_EXE_augwise"))
            .args(args)
            .current_dir(cwd.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let script = format!("{TINY}pretrain\nstep 1\n");
    let o = in_cwd(&["--run-dir", "mine"], &script);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let mine = cwd.path().join("mine");
    let before = tree(&mine);

    for json in [false, true] {
        let mut args = vec!["--run-dir", "mine"];
        if json {
            args.push("--json");
        }
        let o = in_cwd(&args, &format!("{TINY}pretrain\n"));
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}{err}");
        let said = if json { &out } else { &err };
        assert!(
            said.contains("mine already holds a run") && said.contains("resume mine"),
            "{out}{err}"
        );
        assert_eq!(tree(&mine), before, "the refused process changed the run");
    }
    let o = in_cwd(&["--run-dir", "mine", "search", "--updates", "1"], "");
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("--resume"), "{err}");
    assert_eq!(tree(&mine), before);

    // The default directory, twice: the second run goes beside the first.
    for _ in 0..2 {
        let o = in_cwd(&[], &format!("{TINY}pretrain\n"));
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    }
    let (first, second) = (cwd.path().join("runs/repl"), cwd.path().join("runs/repl-2"));
    assert!(first.join("session.json").exists() && second.join("session.json").exists());
    // `resume` with no directory continues the run directory's run.
    let o = in_cwd(&["--run-dir", "mine"], "resume\n");
    let (out, err) = text(&o);
    assert!(out.contains("resumed mine") && out.contains("update 1"), "{out}{err}");
}

/// `augwise compare A B` from a shell: stage 1 pretrained into its cache the first time and
/// reused the next (no pretraining then), the paired result with its p-value (issue 24).
#[test]
fn compare_and_probe_subcommands_pretrain_once_and_reuse_stage1() {
    let cwd = tempfile::tempdir().unwrap();
    let data = "synthetic:kind=polarity,classes=2,n=24,size=16";
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_augwise"))
            .args(["--data", data])
            .args(args)
            .current_dir(cwd.path())
            .output()
            .unwrap()
    };
    let o = run(&["compare", "none", "pair:Invert+Equalize", "--k", "6"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("stage 1: pretraining") && out.contains("epochs done"),
        "{out}"
    );
    assert!(
        out.contains("none − pair:Invert+Equalize") && out.contains("p = "),
        "{out}"
    );
    let cache: Vec<_> = std::fs::read_dir(cwd.path().join("runs/stage1"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(cache.len(), 1);
    let before = std::fs::read(cache[0].path().join("session.json")).unwrap();

    let o = run(&["probe", "pair:Invert+Equalize", "--k", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("reusing the shared weights") && !out.contains("epochs done"),
        "{out}"
    );
    assert!(out.contains("95% CI"), "{out}");
    let o = run(&["--json", "compare", "none", "aws", "--k", "2"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    for l in out.lines().chain(err.lines()).filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    }
    // A compare leaves the cached run's stage 1 alone (probes add to its history only).
    let after: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache[0].path().join("session.json")).unwrap()).unwrap();
    let before: serde_json::Value = serde_json::from_slice(&before).unwrap();
    assert_eq!(after["snapshot"], before["snapshot"]);
}
