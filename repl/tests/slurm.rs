//! The slurm executor on a real Slurm cluster: `make test` runs cargo's tests inside
//! `scripts/slurm-cluster.sh run`, a throw-away single-node cluster reached through
//! SLURM_CONF. Without one these tests say so and pass, unless AUGWISE_REQUIRE_SLURM=1 (set
//! by `make test`), where a missing cluster fails them.
#![allow(clippy::disallowed_methods)] // tests, benches and examples may panic

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use augwise::policy::Theta;
use augwise::search::{Executor, SearchConfig, SearchError, Session, SlurmConfig, Trajectory};

fn have_slurm(test: &str) -> bool {
    if std::env::var_os("SLURM_CONF").is_some() {
        return true;
    }
    assert!(
        std::env::var("AUGWISE_REQUIRE_SLURM").as_deref() != Ok("1"),
        "{test}: AUGWISE_REQUIRE_SLURM=1 but SLURM_CONF is not set: run under scripts/slurm-cluster.sh run"
    );
    eprintln!("{test}: skipped: no Slurm cluster (SLURM_CONF unset; `make test` starts one)");
    false
}

fn config() -> SearchConfig {
    let mut c = SearchConfig::cpu()
        .with_pretrain_epochs(1)
        .with_batch_size(64)
        .with_finetune(1, Some(0.02))
        .with_trajectories(3);
    c.split = c.split.with_limit(Some(400)).with_test_limit(Some(100));
    c
}

/// A run directory after stage 1, made once and copied for each test (its lock aside).
fn pretrained() -> &'static Path {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Session::new(config(), dir.path()).unwrap();
        s.pretrain(None).unwrap();
        dir
    })
    .path()
}

fn copy_of_pretrained() -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(pretrained()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != "lock" {
            std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
        }
    }
    to
}

/// CPUs per task: the test process's libtorch threads, so that a task computes with the
/// same thread count as the local run it is compared with bit for bit.
fn cpus() -> usize {
    tch::get_num_threads() as usize
}

fn slurm(worker: &str) -> SlurmConfig {
    SlurmConfig::default()
        .with_worker(worker)
        .with_poll_ms(100)
        .with_cpus_per_task(cpus())
}

fn augwise() -> String {
    format!("'{}'", env!("CARGO_BIN_EXE_augwise"))
}

/// A worker command: a shell script wrapping `augwise worker DIR`.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\nAUGWISE={}\n{body}\n", augwise())).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!("'{}'", path.display())
}

/// A trajectory's result without its wall time.
fn result(t: &Trajectory) -> (u64, u64, Vec<u64>, Vec<u32>) {
    (
        t.seed,
        t.reward.to_bits(),
        t.accuracies.iter().map(|a| a.to_bits()).collect(),
        t.counts.clone(),
    )
}

/// The local run's evaluate + update, once.
fn local() -> &'static (Vec<Trajectory>, Theta) {
    static LOCAL: OnceLock<(Vec<Trajectory>, Theta)> = OnceLock::new();
    LOCAL.get_or_init(|| {
        let dir = copy_of_pretrained();
        let mut s = Session::resume(dir.path()).unwrap();
        s.evaluate(None).unwrap();
        let pending = s.pending.clone();
        s.update().unwrap();
        (pending, s.theta().clone())
    })
}

fn jobs(run: &Path) -> Vec<serde_json::Value> {
    let slurm = run.join("slurm");
    let request = std::fs::read_dir(&slurm).unwrap().next().unwrap().unwrap().path();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(request.join("jobs.json")).unwrap()).unwrap();
    doc["jobs"].as_array().unwrap().clone()
}

fn queued(prefix: &str) -> Vec<String> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i|%j|%T"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split('|').nth(1).is_some_and(|n| n.starts_with(prefix)))
        .map(str::to_owned)
        .collect()
}

/// Queue lines of these jobs' array tasks (tests beside it may queue arrays of the same name).
fn left_in_queue(jobs: &[String]) -> Vec<String> {
    queued("augwise-")
        .into_iter()
        .filter(|l| jobs.iter().any(|j| l.starts_with(&format!("{j}_"))))
        .collect()
}

/// The pretrained session in `dir`, its trajectories on Slurm with `slurm`.
fn on_slurm(dir: &Path, slurm: SlurmConfig) -> Session {
    let mut s = Session::resume(dir).unwrap();
    s.config.executor = Executor::Slurm;
    s.config.slurm = slurm;
    s
}

#[test]
fn a_search_on_slurm_gives_the_local_rewards_counts_and_theta_bit_for_bit() {
    if !have_slurm("slurm_equals_local") {
        return;
    }
    let (local_pending, local_theta) = local();
    let dir = copy_of_pretrained();
    let mut s = on_slurm(dir.path(), slurm(&augwise()));
    let report = s.evaluate(None).unwrap();
    assert_eq!(report.trajectories.len(), 3);
    let ours: Vec<_> = s.pending.iter().map(result).collect();
    let theirs: Vec<_> = local_pending.iter().map(result).collect();
    assert_eq!(
        ours, theirs,
        "rewards, accuracies and pair counts differ from the local run"
    );
    s.update().unwrap();
    assert_eq!(s.theta(), local_theta, "θ after the update differs");
    // One array of 3 tasks, each result written by a Slurm task.
    let jobs = jobs(dir.path());
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["indices"], serde_json::json!([0, 1, 2]));
}

#[test]
fn a_task_killed_mid_run_is_resubmitted_and_the_search_completes() {
    if !have_slurm("killed_task_retried") {
        return;
    }
    let dir = copy_of_pretrained();
    let marker = dir.path().join("killed-once");
    // Task 1's first attempt: the worker is SIGKILLed 0.1 s after it starts — before it can
    // have written a result (starting alone takes ~0.3 s: libtorch, the data, the snapshot).
    let worker = script(
        dir.path(),
        "kill-once.sh",
        &format!(
            r#"if [ "$SLURM_ARRAY_TASK_ID" = 1 ] && mkdir '{0}.lock' 2>/dev/null; then
  "$AUGWISE" "$@" & pid=$!
  sleep 0.1; kill -9 $pid
  [ -e "$2/results/1.json" ] || touch '{0}'
  exit 137
fi
exec "$AUGWISE" "$@""#,
            marker.display()
        ),
    );
    let mut s = on_slurm(dir.path(), slurm(&worker));
    s.evaluate(None).unwrap();
    assert!(
        marker.exists(),
        "the fault was not injected (the worker finished within 0.1 s)"
    );
    let (local_pending, _) = local();
    assert_eq!(
        s.pending.iter().map(result).collect::<Vec<_>>(),
        local_pending.iter().map(result).collect::<Vec<_>>(),
        "the retried search's rewards differ from the local run"
    );
    let jobs = jobs(dir.path());
    assert_eq!(jobs.len(), 2, "one array and one resubmission: {jobs:?}");
    assert_eq!(
        jobs[1]["indices"],
        serde_json::json!([1]),
        "only the killed index is resubmitted"
    );
}

#[test]
fn a_task_that_always_fails_ends_the_update_with_a_clear_error_and_an_intact_session() {
    if !have_slurm("always_fails") {
        return;
    }
    let dir = copy_of_pretrained();
    let state = std::fs::read(dir.path().join("session.json")).unwrap();
    let worker = script(
        dir.path(),
        "fail.sh",
        r#"if [ "$SLURM_ARRAY_TASK_ID" = 2 ]; then echo "no GPU here" >&2; exit 3; fi
exec "$AUGWISE" "$@""#,
    );
    let mut s = on_slurm(dir.path(), slurm(&worker).with_tries(2));
    let err = s.step(1).unwrap_err();
    let SearchError::SlurmTask { index, tries, why, log } = &err else {
        panic!("expected a Slurm task error, got {err}");
    };
    assert_eq!((*index, *tries), (2, 2), "{err}");
    assert!(why.contains("FAILED"), "names Slurm's state: {err}");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("no GPU here"), "the log it names is the task's: {text}");
    let message = err.to_string();
    assert!(
        message.contains("trajectory 2") && message.contains(&log.display().to_string()),
        "{message}"
    );
    assert!(s.pending.is_empty() && s.ppo.updates == 0, "the session changed");
    assert_eq!(
        std::fs::read(dir.path().join("session.json")).unwrap(),
        state,
        "session.json changed"
    );
    // Its jobs, by their log files (`JOB_INDEX.log`; the failed request's jobs.json is gone).
    let ours: Vec<String> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().split('_').next().map(str::to_owned))
        .collect();
    let left = left_in_queue(&ours);
    assert!(left.is_empty(), "jobs left in the queue: {left:?}");
    // Fixed, it runs again from scratch (the failed request's tries do not carry over).
    s.config.slurm = slurm(&augwise()).with_tries(1);
    s.step(1).unwrap();
}

#[test]
fn ctrl_c_cancels_the_jobs_and_leaves_none_in_the_queue() {
    if !have_slurm("ctrl_c") {
        return;
    }
    let dir = copy_of_pretrained();
    let worker = script(dir.path(), "slow.sh", "sleep 120\nexec \"$AUGWISE\" \"$@\"");
    let mut s = on_slurm(dir.path(), slurm(&worker));
    let cancel = s.cancel_flag();
    let request = dir.path().join("slurm");
    let watcher = std::thread::spawn(move || {
        let start = Instant::now();
        // Once the array is submitted (its jobs.json written), press Ctrl-C.
        while start.elapsed() < Duration::from_secs(120) {
            let submitted = std::fs::read_dir(&request)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .and_then(|e| std::fs::read(e.path().join("jobs.json")).ok())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            if let Some(doc) = submitted {
                std::thread::sleep(Duration::from_millis(500));
                cancel.cancel();
                return doc["jobs"][0]["job"].as_str().map(str::to_owned);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    });
    let err = s.evaluate(None).unwrap_err();
    let id = watcher.join().unwrap().expect("the array was never submitted");
    assert!(matches!(err, SearchError::Cancelled), "{err}");
    let left = left_in_queue(&[id]);
    assert!(left.is_empty(), "jobs left in the queue: {left:?}");
    assert!(s.pending.is_empty());
}

/// A task Slurm holds says why in the progress line (with what to do: a hold, like a
/// partition's limit, never ends by waiting), and Ctrl-C still clears the queue.
#[test]
fn a_held_array_says_why_it_waits() {
    if !have_slurm("held") {
        return;
    }
    let dir = copy_of_pretrained();
    let mut s = on_slurm(dir.path(), slurm(&augwise()).with_extra(["--hold"]));
    let cancel = s.cancel_flag();
    let seen = std::sync::Arc::new(std::sync::Mutex::new((Vec::<String>::new(), None)));
    let (lines, run) = (seen.clone(), dir.path().to_owned());
    s.set_progress(move |p| {
        if let augwise::search::Progress::Queued { reason, .. } = p {
            let mut seen = lines.lock().unwrap();
            seen.0.push(p.to_string());
            if reason.is_some() && seen.1.is_none() {
                // This request's job (tests beside it may queue arrays of the same name).
                seen.1 = jobs(&run)[0]["job"].as_str().map(str::to_owned);
                cancel.cancel();
            }
        }
    });
    let start = Instant::now();
    let err = s.evaluate(None).unwrap_err();
    assert!(matches!(err, SearchError::Cancelled), "{err}");
    assert!(start.elapsed() < Duration::from_secs(60), "{:?}", start.elapsed());
    let (lines, id) = seen.lock().unwrap().clone();
    let last = lines.last().expect("no progress while queued");
    assert!(
        last.contains("3 queued (Slurm: JobHeldUser: they cannot start as asked; Ctrl-C"),
        "{lines:?}"
    );
    let id = id.expect("no job id in jobs.json");
    let left = left_in_queue(&[id]);
    assert!(left.is_empty(), "jobs left in the queue: {left:?}");
    assert!(s.pending.is_empty());
}

#[test]
fn resume_after_the_coordinator_died_submits_only_what_is_missing() {
    if !have_slurm("coordinator_died") {
        return;
    }
    let dir = copy_of_pretrained();
    // Task 2 is slow on its first attempt, so the coordinator dies with it still running.
    let marker = dir.path().join("slow-once");
    let worker = script(
        dir.path(),
        "slow-once.sh",
        &format!(
            r#"if [ "$SLURM_ARRAY_TASK_ID" = 2 ] && mkdir '{}' 2>/dev/null; then sleep 8; fi
exec "$AUGWISE" "$@""#,
            marker.display()
        ),
    );
    let script_file = dir.path().join("evaluate.augwise");
    std::fs::write(
        &script_file,
        format!(
            "resume {}\nconfig executor=slurm slurm.poll_ms=100 slurm.cpus_per_task={} slurm.worker={worker}\nevaluate\n",
            dir.path().display(),
            cpus()
        ),
    )
    .unwrap();
    let mut coordinator = Command::new(env!("CARGO_BIN_EXE_augwise"))
        .arg("--run-dir")
        .arg(dir.path())
        .arg("run")
        .arg(&script_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let results = |run: &Path| -> Vec<PathBuf> {
        let Ok(mut d) = std::fs::read_dir(run.join("slurm")) else {
            return vec![];
        };
        let Some(Ok(request)) = d.next() else { return vec![] };
        std::fs::read_dir(request.path().join("results"))
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let start = Instant::now();
    while results(dir.path()).len() < 2 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(50));
    }
    coordinator.kill().unwrap(); // SIGKILL: no clean-up, no scancel
    coordinator.wait().unwrap();
    assert_eq!(
        results(dir.path()).len(),
        2,
        "the coordinator died with tasks 0 and 1 done"
    );
    let submitted = jobs(dir.path());
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    // `config` was not committed (the evaluate never finished): the resumed session is local
    // until told; the same request is found by its key whatever the executor settings.
    let mut s = on_slurm(dir.path(), slurm(&augwise()));
    s.evaluate(None).unwrap();
    let (local_pending, _) = local();
    assert_eq!(
        s.pending.iter().map(result).collect::<Vec<_>>(),
        local_pending.iter().map(result).collect::<Vec<_>>()
    );
    assert_eq!(
        jobs(dir.path()),
        submitted,
        "task 2's job was followed, nothing resubmitted"
    );
}

#[test]
fn a_result_of_another_request_is_refused() {
    if !have_slurm("foreign_result") {
        return;
    }
    // Run one request, then plant its result files in another request's directory.
    let dir = copy_of_pretrained();
    let mut s = on_slurm(dir.path(), slurm(&augwise()));
    s.config.trajectories = 1;
    s.evaluate(None).unwrap();
    let first = std::fs::read_dir(dir.path().join("slurm"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let planted = std::fs::read(first.join("results/0.json")).unwrap();
    // The next evaluate is request 2 of update 0 (other seeds): find its directory by key
    // once it exists, and plant the old result before its task could write one.
    let before: Vec<PathBuf> = vec![first.clone()];
    let run = dir.path().to_owned();
    let plant = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(d) = std::fs::read_dir(run.join("slurm"))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| !before.contains(p))
            {
                std::fs::create_dir_all(d.join("results")).unwrap();
                std::fs::write(d.join("results/0.json"), &planted).unwrap();
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    });
    s.evaluate(None).unwrap();
    assert!(plant.join().unwrap());
    assert_eq!(s.pending.len(), 2);
    assert_ne!(
        s.pending[0].seed, s.pending[1].seed,
        "the planted result was taken as the new one"
    );
}

#[test]
fn a_worker_that_cannot_run_says_why_and_its_failed_results_are_retried() {
    if !have_slurm("worker_error") {
        return;
    }
    // The data missing on "that node": the worker writes a `failed` result and exits 1.
    let dir = copy_of_pretrained();
    let worker = script(
        dir.path(),
        "no-data.sh",
        "AUGWISE_DATA=/nonexistent/augwise-data exec \"$AUGWISE\" \"$@\"",
    );
    let mut s = on_slurm(dir.path(), slurm(&worker).with_tries(2));
    s.config.trajectories = 1;
    let err = s.evaluate(None).unwrap_err();
    let SearchError::SlurmTask { index, tries, why, .. } = &err else {
        panic!("expected a Slurm task error, got {err}");
    };
    assert_eq!((*index, *tries), (0, 2), "{err}");
    assert!(
        why.contains("the worker failed") && why.contains("/nonexistent/augwise-data"),
        "the worker's own error: {err}"
    );

    // A `failed` result a dead coordinator never read is retried, not taken as the answer.
    s.config.slurm = slurm(&augwise());
    s.evaluate(None).unwrap();
    let request = std::fs::read_dir(dir.path().join("slurm"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = request.join("results/0.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let done = s.pending.clone();
    doc["outcome"] = "failed".into();
    doc["error"] = "planted".into();
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    s.pending.clear(); // the same request again
    s.evaluate(None).unwrap();
    assert_eq!(
        s.pending.iter().map(result).collect::<Vec<_>>(),
        done.iter().map(result).collect::<Vec<_>>()
    );
    let jobs = jobs(dir.path());
    assert_eq!(
        jobs.len(),
        2,
        "the good run, then the retry of the planted failure: {jobs:?}"
    );
}
