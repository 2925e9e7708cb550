//! The slurm executor: the trajectories of one request (an update's, a probe's) as one Slurm
//! job array, one task per trajectory, on the real scheduler. The run directory is the only
//! channel (its files are `wire.rs`'s): the coordinator writes the request's inputs once,
//! atomically, under `RUN/slurm/<name>/`; each task (`augwise worker DIR`, `worker.rs`) runs
//! the same `Runner::run` as a local trajectory and writes `results/<index>.json`; the
//! coordinator polls `squeue` and those files, resubmits by array index what failed, and
//! cancels its jobs when the step is cancelled. Result files are the truth: without
//! accounting, Slurm forgets a job `MinJobAge` seconds after it ends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::config::{SearchConfig, SlurmConfig};
use super::error::{SearchError, SlurmError};
use super::progress::{Progress, ProgressSink, Purpose};
use super::stage1::Stage1;
use super::trajectory::{Bench, Execute, Ran, TrajectorySeeds};
use super::wire::{
    io_error, read_jobs, read_result, result_path, write_json, Inputs, Jobs, Submitted, TaskOutcome, TaskResult,
    INPUTS_FILE, INPUTS_FORMAT, JOBS_FILE, JOBS_FORMAT,
};
use crate::checkpoint::{self, SnapshotRef};
use crate::policy::Policy;
use crate::train::CancelFlag;

/// A task's state as the coordinator sees it.
#[derive(Debug, Default)]
struct Task {
    /// Submissions so far.
    tries: usize,
    /// The job of the live attempt, and when it was submitted.
    live: Option<(String, Instant)>,
    /// Slurm's last state of the live attempt.
    state: String,
    /// Slurm's reason a pending attempt waits (`Resources`, `Priority`, `BeginTime`, …).
    reason: String,
    done: Option<TaskResult>,
    /// The last attempt's reason for failing (the worker's error, or Slurm's state).
    why: String,
}

/// Whether Slurm's pending `reason` means the tasks will not start as they were asked
/// (a partition's limits, an account or QOS, a hold) rather than waiting their turn
/// (`Resources`, `Priority`, `BeginTime`): the user has to change `slurm.*` or cancel.
pub fn reason_needs_a_change(reason: &str) -> bool {
    let code = reason.split([',', ' ']).next().unwrap_or("");
    matches!(
        code,
        "BadConstraints"
            | "PartitionConfig"
            | "PartitionTimeLimit"
            | "PartitionNodeLimit"
            | "PartitionDown"
            | "PartitionInactive"
            | "InvalidAccount"
            | "InvalidQOS"
            | "AccountNotAllowed"
            | "QOSNotAllowed"
            | "DependencyNeverSatisfied"
            | "JobHeldUser"
            | "JobHeldAdmin"
    )
}

/// States in which a task may still write its result.
fn active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "RUNNING"
            | "CONFIGURING"
            | "COMPLETING"
            | "SUSPENDED"
            | "REQUEUED"
            | "REQUEUE_HOLD"
            | "REQUEUE_FED"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
            | "RESV_DEL_HOLD"
    )
}

/// How long a Slurm client may take: they retry for minutes when slurmctld is unreachable,
/// and a poll must neither hang on one nor keep Ctrl-C waiting for long.
const CLIENT_SECONDS: u32 = 60;

fn run_slurm(cmd: &str, args: &[String]) -> Result<String, SearchError> {
    let not_found = || SlurmError::ClientMissing { cmd: cmd.to_owned() };
    // coreutils' `timeout`: TERM at the limit, KILL 5 s later; 124/137 = timed out, 127 = no such command.
    let out = Command::new("timeout")
        .args(["--kill-after=5", &CLIENT_SECONDS.to_string(), cmd])
        .args(args)
        .output()
        .map_err(|e| SlurmError::ClientSpawn {
            cmd: cmd.to_owned(),
            why: e.to_string(),
        })?;
    match out.status.code() {
        Some(127) => return Err(not_found().into()),
        Some(124 | 137) => {
            return Err(SlurmError::ClientTimeout {
                cmd: cmd.to_owned(),
                seconds: CLIENT_SECONDS,
            }
            .into())
        }
        _ => {}
    }
    if !out.status.success() {
        return Err(SlurmError::ClientFailed {
            command: format!("{cmd} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `'…'` for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The command a task runs before `worker DIR`.
fn worker_command(cfg: &SlurmConfig) -> Result<String, SearchError> {
    if !cfg.worker.is_empty() {
        return Ok(cfg.worker.clone());
    }
    if let Ok(w) = std::env::var("AUGWISE_WORKER") {
        if !w.is_empty() {
            return Ok(w);
        }
    }
    match std::env::current_exe() {
        Ok(p) if p.file_stem().is_some_and(|s| s == "augwise") => Ok(shell_quote(&p.to_string_lossy())),
        _ => Err(SlurmError::NoWorkerBinary.into()),
    }
}

/// `1,3,5` for `--array`.
fn array_list(indices: &[usize]) -> String {
    indices.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// One request on Slurm: its directory, inputs and tasks.
struct Request<'a> {
    dir: PathBuf,
    inputs: Inputs,
    cfg: &'a SlurmConfig,
    name: String,
    tasks: Vec<Task>,
    jobs: Vec<Submitted>,
    /// What the coordinator should tell the user (files refused, a queue that did not answer),
    /// handed to the session's progress as notices.
    notes: Vec<String>,
}

impl Request<'_> {
    /// Hand what the coordinator noted to the session's progress, as notices.
    fn tell(&mut self, progress: &mut ProgressSink) {
        for note in self.notes.drain(..) {
            progress.notice("slurm", note);
        }
    }

    fn log(&self, job: &str, index: usize) -> PathBuf {
        self.dir.join("logs").join(format!("{job}_{index}.log"))
    }

    fn submit(&mut self, indices: &[usize]) -> Result<(), SearchError> {
        let cwd = std::env::current_dir().map_err(|e| SlurmError::NoWorkingDirectory(e.to_string()))?;
        let c = self.cfg;
        let mut args = vec![
            "--parsable".to_owned(),
            format!("--job-name={}", self.name),
            format!("--array={}", array_list(indices)),
            format!("--output={}", self.dir.join("logs").join("%A_%a.log").display()),
            format!("--chdir={}", cwd.display()),
        ];
        let opt = |flag: &str, v: &str| (!v.is_empty()).then(|| format!("--{flag}={v}"));
        args.extend(opt("partition", &c.partition));
        args.extend(opt("time", &c.time));
        args.extend(opt("gres", &c.gres));
        args.extend(opt("mem", &c.mem));
        if c.cpus_per_task > 0 {
            args.push(format!("--cpus-per-task={}", c.cpus_per_task));
        }
        args.extend(c.extra.iter().cloned());
        let worker = format!(
            "{} worker {}",
            worker_command(c)?,
            shell_quote(&self.dir.to_string_lossy())
        );
        args.extend(["--wrap".to_owned(), worker]);
        std::fs::create_dir_all(self.dir.join("logs")).map_err(|e| io_error("create", &self.dir, e))?;
        let out = run_slurm("sbatch", &args)?;
        let job = out.trim().split(';').next().unwrap_or_default().to_owned();
        if job.is_empty() || !job.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SlurmError::NotAJobId(out.trim().to_owned()).into());
        }
        let now = Instant::now();
        for &i in indices {
            let t = &mut self.tasks[i];
            t.tries += 1;
            t.live = Some((job.clone(), now));
            t.state = "PENDING".into();
            t.reason.clear();
        }
        self.jobs.push(Submitted {
            job,
            indices: indices.to_vec(),
        });
        let jobs = Jobs {
            format: JOBS_FORMAT.into(),
            jobs: self.jobs.clone(),
        };
        write_json(&self.dir.join(JOBS_FILE), &jobs)
    }

    /// Slurm's state and pending reason of each of this request's array tasks it still knows
    /// (`JOB_INDEX` → (state, reason)).
    fn states(&self) -> Result<BTreeMap<String, (String, String)>, SearchError> {
        let out = run_slurm(
            "squeue",
            &[
                "-h".into(),
                "-r".into(),
                "-t".into(),
                "all".into(),
                format!("--name={}", self.name),
                "-o".into(),
                "%i|%T|%r".into(),
            ],
        )?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, '|').map(str::trim);
                let (id, state) = (f.next()?, f.next()?);
                Some((id.to_owned(), (state.to_owned(), f.next().unwrap_or("").to_owned())))
            })
            .collect())
    }

    /// `scancel` every job of this request still queued or running, and wait (briefly) until
    /// Slurm has let go of them.
    fn cancel_all(&self) {
        let jobs: Vec<String> = self.jobs.iter().map(|s| s.job.clone()).collect();
        if jobs.is_empty() {
            return;
        }
        let _ = run_slurm("scancel", &jobs);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match self.states() {
                Ok(s) if s.values().any(|(st, _)| active(st)) => std::thread::sleep(Duration::from_millis(200)),
                _ => break,
            }
        }
    }

    /// Read new results; return whether every task has one it finished with (a `failed`
    /// result is handled by the poll loop: it is retried).
    fn collect(&mut self) -> bool {
        for (i, t) in self.tasks.iter_mut().enumerate() {
            if t.done.is_none() {
                t.done = read_result(&self.dir, &self.inputs.key, i, &mut self.notes);
            }
        }
        self.tasks.iter().all(|t| {
            t.done
                .as_ref()
                .is_some_and(|r| !matches!(r.outcome, TaskOutcome::Failed { .. }))
        })
    }

    /// Tasks whose result says the worker failed: keep the reason, delete the file (so the
    /// next attempt's result is the one read) and mark them for resubmission.
    fn retire_failed(&mut self) {
        for (i, t) in self.tasks.iter_mut().enumerate() {
            if let Some(TaskResult {
                outcome: TaskOutcome::Failed { error },
                ..
            }) = &t.done
            {
                let state = match t.state.as_str() {
                    "" | "PENDING" | "RUNNING" | "COMPLETING" => String::new(),
                    s => format!("Slurm state {s}; "),
                };
                t.why = format!("{state}the worker failed: {error}");
                t.done = None;
                t.live = None;
                let _ = std::fs::remove_file(result_path(&self.dir, i));
            }
        }
    }

    /// Done, running and waiting tasks, and the reason most pending tasks wait (`None` while
    /// Slurm gives none: "None", or a task not yet listed).
    fn counts(&self) -> (usize, usize, usize, Option<String>) {
        let done = self.tasks.iter().filter(|t| t.done.is_some()).count();
        let running = self
            .tasks
            .iter()
            .filter(|t| t.done.is_none() && t.state == "RUNNING")
            .count();
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &self.tasks {
            if t.done.is_none() && t.state == "PENDING" && !matches!(t.reason.as_str(), "" | "None") {
                *reasons.entry(t.reason.as_str()).or_default() += 1;
            }
        }
        let reason = reasons.into_iter().max_by_key(|&(_, n)| n).map(|(r, _)| r.to_owned());
        (done, running, self.tasks.len() - done - running, reason)
    }
}

/// The Slurm executor: a session's requests as job arrays under `run_dir/slurm/`.
pub(super) struct SlurmRequests<'a> {
    pub bench: Bench<'a>,
    pub run_dir: PathBuf,
    /// The snapshot file the run directory's `session.json` names (tasks read it).
    pub snapshot_ref: Option<SnapshotRef>,
    /// The session's updates so far (names the request's directory).
    pub update: usize,
}

impl Execute for SlurmRequests<'_> {
    fn config(&self) -> &SearchConfig {
        self.bench.config
    }

    fn trajectory_batch(&self) -> usize {
        self.bench.trajectory_batch()
    }

    /// The trajectories of `seeds` as a Slurm job array (see the module's doc); all or
    /// nothing, like the local executor. Progress counts tasks, so `frame` is not needed.
    fn trajectories(
        &mut self,
        policy: &Policy,
        seeds: &[TrajectorySeeds],
        purpose: Purpose,
        pairs: usize,
        _frame: (usize, usize),
    ) -> Result<Ran, SearchError> {
        let config = self.bench.config;
        let epochs_done = self.bench.stage1.complete(config)?.epochs_done;
        let (snapshot_dir, snapshot) = self.snapshot_for_tasks()?;
        let mut inputs = Inputs {
            format: INPUTS_FORMAT.into(),
            key: String::new(),
            update: self.update,
            purpose,
            config: config.clone(),
            policy: policy.clone(),
            pairs,
            seeds: seeds.to_vec(),
            snapshot_dir,
            snapshot,
            epochs_done,
        };
        inputs.key = inputs.digest()?;
        let name = format!("{}-u{}-{}", purpose.name(), inputs.update, &inputs.key[..12]);
        let dir = self.run_dir.join("slurm").join(&name);
        let existing: Option<Inputs> = checkpoint::read_json(&dir.join(INPUTS_FILE), INPUTS_FORMAT).ok();
        if existing.as_ref().is_none_or(|e| e.key != inputs.key) {
            write_json(&dir.join(INPUTS_FILE), &inputs)?;
        }
        let mut notes = Vec::new();
        let jobs = read_jobs(&dir, &mut notes);
        let mut req = Request {
            tasks: (0..seeds.len()).map(|_| Task::default()).collect(),
            dir,
            inputs,
            cfg: &config.slurm,
            name: format!("augwise-{}", &name),
            jobs,
            notes,
        };
        self.bench.cancel.reset();
        let result = drive(&mut req, self.bench.cancel, self.bench.progress);
        if result.is_err() {
            // Nothing of this request runs on: running it again starts afresh (its tries
            // too). Only a coordinator that died leaves jobs.json for `resume` to follow.
            req.cancel_all();
            let _ = std::fs::remove_file(req.dir.join(JOBS_FILE));
        }
        result
    }
}

impl SlurmRequests<'_> {
    /// The stage-1 snapshot as a file the tasks read: the run directory's committed one, or
    /// (a run from before content-addressed snapshots) one written under `slurm/`.
    fn snapshot_for_tasks(&self) -> Result<(String, SnapshotRef), SearchError> {
        if let Some(r) = &self.snapshot_ref {
            return Ok((String::new(), r.clone()));
        }
        let snapshot = self.bench.stage1.complete(self.bench.config)?;
        let tensors = Stage1::to_tensors(snapshot).map_err(crate::train::TrainError::from)?;
        let r = checkpoint::write_snapshot(&self.run_dir.join("slurm"), &tensors)?;
        Ok(("slurm".into(), r))
    }
}

/// Submit what has no result and no live job, poll until every task has a result, resubmit
/// failed tasks by index until their tries are spent.
fn drive(req: &mut Request<'_>, cancel: &CancelFlag, progress: &mut ProgressSink) -> Result<Ran, SearchError> {
    // A coordinator that died left its jobs and results: count its submissions as tries and
    // follow the jobs Slurm still runs.
    req.collect();
    let known = req.states()?;
    for s in req.jobs.clone() {
        for i in s.indices {
            let Some(t) = req.tasks.get_mut(i) else { continue };
            t.tries += 1;
            if t.done.is_none() {
                if let Some((state, reason)) = known.get(&format!("{}_{i}", s.job)).filter(|(st, _)| active(st)) {
                    t.live = Some((s.job.clone(), Instant::now()));
                    t.state = state.clone();
                    t.reason = reason.clone();
                }
            }
        }
    }
    let poll = Duration::from_millis(req.cfg.poll_ms);
    let mut shown = None;
    // squeue failing now and then (a busy controller) is waited out; for a minute, an error.
    let mut squeue_failures = 0;
    loop {
        req.tell(progress);
        req.retire_failed();
        if cancel.is_cancelled() {
            return Err(SearchError::Cancelled);
        }
        let missing: Vec<usize> = (0..req.tasks.len())
            .filter(|&i| req.tasks[i].done.is_none() && req.tasks[i].live.is_none())
            .collect();
        if let Some(&i) = missing.iter().find(|&&i| req.tasks[i].tries >= req.cfg.tries) {
            let t = &req.tasks[i];
            let job = req
                .jobs
                .iter()
                .rev()
                .find(|s| s.indices.contains(&i))
                .map(|s| s.job.clone());
            return Err(SearchError::SlurmTask {
                index: i,
                tries: t.tries,
                why: t.why.clone(),
                log: job.map(|j| req.log(&j, i)).unwrap_or_else(|| req.dir.join("logs")),
            });
        }
        if !missing.is_empty() {
            req.submit(&missing)?;
        }
        std::thread::sleep(poll);
        if req.collect() {
            req.tell(progress);
            break;
        }
        let states = match req.states() {
            Ok(s) => {
                squeue_failures = 0;
                s
            }
            Err(e) if squeue_failures * poll < Duration::from_secs(60) => {
                squeue_failures += 1;
                if squeue_failures == 1 {
                    req.notes.push(format!("{e} (retrying)"));
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        for i in 0..req.tasks.len() {
            let t = &mut req.tasks[i];
            let Some((job, since)) = t.live.clone() else { continue };
            if t.done.is_some() {
                // Finished (a `failed` result is retired at the top of the loop).
                t.live = None;
                continue;
            }
            match states.get(&format!("{job}_{i}")) {
                Some((s, reason)) if active(s) => {
                    t.state = s.clone();
                    t.reason = reason.clone();
                }
                // Just submitted: squeue may not list every task yet.
                None if since.elapsed() < Duration::from_secs(10) => {}
                gone => {
                    let state = gone.map_or_else(|| "gone from the queue".into(), |(s, _)| s.clone());
                    t.live = None;
                    // The result may have landed since the last look; a `failed` one is
                    // retired (with its reason) at the top of the loop.
                    t.done = read_result(&req.dir, &req.inputs.key, i, &mut req.notes);
                    if t.done.is_none() {
                        t.why = format!("Slurm state {state}, no result written");
                    }
                    t.state = state;
                }
            }
        }
        let counts = req.counts();
        if shown.as_ref() != Some(&counts) {
            let (done, running, waiting, reason) = counts.clone();
            shown = Some(counts);
            progress.emit(Progress::Queued {
                purpose: req.inputs.purpose,
                done,
                running,
                waiting,
                total: req.tasks.len(),
                reason,
            });
        }
    }
    let mut ran = Ran::default();
    for t in &req.tasks {
        match t.done.as_ref().map(|r| &r.outcome) {
            Some(TaskOutcome::Done { trajectory }) => ran.done.push(trajectory.clone()),
            Some(TaskOutcome::Diverged { diverged }) => ran.diverged.push(diverged.clone()),
            // `collect` returned true: every task has a result.
            _ => {}
        }
    }
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_reasons_that_need_a_change_are_told_from_waiting_a_turn() {
        for r in ["PartitionTimeLimit", "BadConstraints", "JobHeldUser", "InvalidQOS"] {
            assert!(reason_needs_a_change(r), "{r}");
        }
        // Waiting its turn, or transient during a backfill cycle.
        for r in [
            "Resources",
            "Priority",
            "BeginTime",
            "ReqNodeNotAvail, UnavailableNodes:n[1-9]",
            "None",
            "",
        ] {
            assert!(!reason_needs_a_change(r), "{r}");
        }
        assert!(reason_needs_a_change("PartitionDown, something else"));
    }
}
