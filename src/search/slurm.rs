//! The slurm executor: the trajectories of one request (an update's, a probe's) as one Slurm
//! job array, one task per trajectory, on the real scheduler. The run directory is the only
//! channel (docs/scale-out.md has its contract): the coordinator writes the request's inputs
//! once, atomically, under `RUN/slurm/<name>/`; each task (`augwise worker DIR`) runs the same
//! [`Runner::run`] as a local trajectory and writes `results/<index>.json` atomically; the
//! coordinator polls `squeue` and those files, resubmits by array index what failed, and
//! cancels its jobs when the step is cancelled. Result files are the truth: without
//! accounting, Slurm forgets a job `MinJobAge` seconds after it ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::progress::{Progress, Purpose};
use super::stage1::Stage1;
use super::trajectory::{Diverged, Ran, Runner, TrajectorySeeds};
use super::{SearchConfig, SearchError, Session, Trajectory};
use crate::checkpoint::{self, CheckpointError, SnapshotRef};
use crate::policy::Policy;
use crate::train::CancelFlag;

/// Where a request's trajectories run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// Threads on this machine's devices (grouped models on one GPU).
    #[default]
    Local,
    /// One Slurm job array per request (`SearchConfig::slurm` says how).
    Slurm,
}

/// How the slurm executor submits: what a user of `sbatch` would pass. Empty strings leave the
/// cluster's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlurmConfig {
    /// `--partition`.
    pub partition: String,
    /// `--time` of one trajectory task, in Slurm's format (`30:00`, `1-00:00:00`).
    pub time: String,
    /// `--gres` (`gpu:1` for one GPU per trajectory).
    pub gres: String,
    /// `--cpus-per-task`; 0 = Slurm's default.
    pub cpus_per_task: usize,
    /// `--mem` (`16G`).
    pub mem: String,
    /// Further sbatch options, one word each (`--account=ml`, `--qos=long`); in `config`
    /// also as one string, split at spaces (`slurm.extra="--account=ml --qos=long"`).
    #[serde(deserialize_with = "words")]
    pub extra: Vec<String>,
    /// The shell command a task runs before `worker DIR` (`srun /opt/augwise/bin/augwise`, or a
    /// module load first); empty = the `AUGWISE_WORKER` variable, else this augwise binary.
    pub worker: String,
    /// Attempts per trajectory before the request fails (1 = never resubmit).
    pub tries: usize,
    /// How often the coordinator reads `squeue` and the result files, in milliseconds.
    pub poll_ms: u64,
}

/// A list of words, or one string of them separated by spaces.
fn words<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Words {
        List(Vec<String>),
        Line(String),
    }
    Ok(match Words::deserialize(d)? {
        Words::List(l) => l,
        Words::Line(s) => s.split_whitespace().map(str::to_owned).collect(),
    })
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: String::new(),
            time: String::new(),
            gres: String::new(),
            cpus_per_task: 0,
            mem: String::new(),
            extra: Vec::new(),
            worker: String::new(),
            tries: 3,
            poll_ms: 500,
        }
    }
}

impl SlurmConfig {
    pub fn with_partition(mut self, p: impl Into<String>) -> Self {
        self.partition = p.into();
        self
    }
    pub fn with_gres(mut self, g: impl Into<String>) -> Self {
        self.gres = g.into();
        self
    }
    pub fn with_time(mut self, t: impl Into<String>) -> Self {
        self.time = t.into();
        self
    }
    pub fn with_mem(mut self, m: impl Into<String>) -> Self {
        self.mem = m.into();
        self
    }
    /// Further sbatch options, one word each.
    pub fn with_extra<S: Into<String>>(mut self, options: impl IntoIterator<Item = S>) -> Self {
        self.extra = options.into_iter().map(Into::into).collect();
        self
    }
    pub fn with_worker(mut self, w: impl Into<String>) -> Self {
        self.worker = w.into();
        self
    }
    pub fn with_cpus_per_task(mut self, n: usize) -> Self {
        self.cpus_per_task = n;
        self
    }
    pub fn with_tries(mut self, n: usize) -> Self {
        self.tries = n;
        self
    }
    pub fn with_poll_ms(mut self, ms: u64) -> Self {
        self.poll_ms = ms;
        self
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.tries) {
            return Err("slurm.tries must be between 1 and 100".into());
        }
        if !(10..=600_000).contains(&self.poll_ms) {
            return Err("slurm.poll_ms must be between 10 and 600000".into());
        }
        if let Some(bad) = self.extra.iter().find(|e| !e.starts_with('-')) {
            return Err(format!(
                "slurm.extra: `{bad}` is not an sbatch option; give each as one word, like \"--qos=long\""
            ));
        }
        Ok(())
    }
}

const INPUTS_FORMAT: &str = "augwise-slurm-inputs/1";
const RESULT_FORMAT: &str = "augwise-slurm-result/1";
const INPUTS_FILE: &str = "inputs.json";
const JOBS_FILE: &str = "jobs.json";
const JOBS_FORMAT: &str = "augwise-slurm-jobs/1";

/// Everything a task needs, written once per request. `key` is the SHA-256 of the rest (with
/// the executor's own settings left out, so switching executor keeps results): a result
/// carries it, and one with another key is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Inputs {
    format: String,
    key: String,
    /// PPO updates done when the request was made.
    update: usize,
    purpose: Purpose,
    config: SearchConfig,
    policy: Policy,
    pairs: usize,
    seeds: Vec<TrajectorySeeds>,
    /// The stage-1 snapshot: its directory relative to the run directory, and its checksum.
    snapshot_dir: String,
    snapshot: SnapshotRef,
    epochs_done: usize,
}

impl Inputs {
    fn digest(&self) -> Result<String, SearchError> {
        let mut bare = self.clone();
        bare.key.clear();
        bare.config.executor = Executor::Local;
        bare.config.slurm = SlurmConfig::default();
        let bytes = serde_json::to_vec(&bare).map_err(|e| SearchError::Invalid(e.to_string()))?;
        Ok(checkpoint::sha256_hex(&bytes))
    }
}

/// What a task came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(super) enum TaskOutcome {
    Done {
        trajectory: Trajectory,
    },
    Diverged {
        diverged: Diverged,
    },
    /// The worker could not run the trajectory (data missing on the node, out of memory…).
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TaskResult {
    format: String,
    key: String,
    index: usize,
    #[serde(flatten)]
    outcome: TaskOutcome,
    host: String,
    slurm_job: String,
    seconds: f64,
}

/// One submission of some array indices.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Submitted {
    job: String,
    indices: Vec<usize>,
}

/// `jobs.json`: a request's submissions, for a coordinator that resumes it.
#[derive(Debug, Serialize, Deserialize)]
struct Jobs {
    format: String,
    jobs: Vec<Submitted>,
}

/// The submissions recorded in `dir` (none when there is no file yet). A damaged file is
/// reported and read as none: the tasks it named are then submitted again.
fn read_jobs(dir: &Path, notes: &mut Vec<String>) -> Vec<Submitted> {
    let path = dir.join(JOBS_FILE);
    if !path.exists() {
        return Vec::new();
    }
    match checkpoint::read_json::<Jobs>(&path, JOBS_FORMAT) {
        Ok(j) => j.jobs,
        Err(e) => {
            notes.push(format!("ignoring {}: {e}", path.display()));
            Vec::new()
        }
    }
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> SearchError {
    SearchError::Slurm(format!("could not {what} {}: {e}", path.display()))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), SearchError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| SearchError::Invalid(e.to_string()))?;
    Ok(checkpoint::write_atomic(path, &bytes)?)
}

fn result_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("results").join(format!("{index}.json"))
}

/// The result of task `index`, if one with this request's key is there. A result of another
/// request (a different key) is refused: reported once and ignored, so it is recomputed.
fn read_result(dir: &Path, key: &str, index: usize, notes: &mut Vec<String>) -> Option<TaskResult> {
    let path = result_path(dir, index);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<TaskResult>(&bytes) {
        Ok(r) if r.key == key && r.index == index && r.format == RESULT_FORMAT => Some(r),
        Ok(r) => {
            notes.push(format!(
                "refusing {}: it is the result of another request (key {}…, index {}), not this one; it will be recomputed",
                path.display(),
                r.key.get(..12).unwrap_or(&r.key),
                r.index
            ));
            let _ = std::fs::remove_file(&path);
            None
        }
        Err(e) => {
            notes.push(format!("refusing {}: {e}; it will be recomputed", path.display()));
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

// ---- the worker ---------------------------------------------------------------------------

/// `augwise worker DIR [INDEX]`: run trajectory `index` of the request in `dir` (default: the
/// task's `SLURM_ARRAY_TASK_ID`) and write its result. `Ok(Err(why))` when the trajectory could
/// not run: that is written as a `failed` result too, so the coordinator can say why (a
/// diverged trajectory finished: it has no reward by the method's rule). A request that cannot
/// be read, or an index it does not have, is an error and writes nothing. `progress` gets the
/// trajectory's events (the `augwise worker` command prints a line per epoch to the task's log).
pub fn run_worker(
    dir: &Path,
    index: Option<usize>,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Result<(), String>, SearchError> {
    let index = match index {
        Some(i) => i,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                SearchError::Slurm("worker: no trajectory index: pass one, or run as a Slurm array task".into())
            })?,
    };
    // libtorch's intra-op threads: the CPUs Slurm gave the task, not the whole node (two
    // tasks of 2 threads each on 2 cores ran 4× slower than one after the other).
    if let Some(n) = task_cpus() {
        tch::set_num_threads(n);
    }
    let path = dir.join(INPUTS_FILE);
    let inputs: Inputs = checkpoint::read_json(&path, INPUTS_FORMAT).map_err(|e| {
        let why = match e {
            CheckpointError::Foreign { why, .. } | CheckpointError::Corrupt { why, .. } | CheckpointError::Io { why, .. } => why,
            other => other.to_string(),
        };
        SearchError::Slurm(format!(
            "worker: cannot read the request {} ({why}); nothing was run or written. The session that submitted the job writes its requests: if it is still running it retries this trajectory, and its next step writes a new request",
            path.display()
        ))
    })?;
    if inputs.format != INPUTS_FORMAT || inputs.digest()? != inputs.key {
        return Err(SearchError::Slurm(format!(
            "worker: {}: its key does not match its contents (edited or damaged); nothing was run. The submitting session writes it anew on its next step",
            path.display()
        )));
    }
    if index >= inputs.seeds.len() {
        return Err(SearchError::Slurm(format!(
            "worker: this request has trajectories 0..{} and no index {index}; nothing was run or written",
            inputs.seeds.len()
        )));
    }
    let start = Instant::now();
    let outcome = match run_task(dir, &inputs, index, progress) {
        Ok(Ok(trajectory)) => TaskOutcome::Done { trajectory },
        Ok(Err(diverged)) => TaskOutcome::Diverged { diverged },
        Err(e) => TaskOutcome::Failed { error: e.to_string() },
    };
    let failure = match &outcome {
        TaskOutcome::Failed { error } => Err(format!("worker: trajectory {index} failed: {error}")),
        _ => Ok(()),
    };
    let result = TaskResult {
        format: RESULT_FORMAT.into(),
        key: inputs.key.clone(),
        index,
        outcome,
        host: checkpoint::hostname(),
        slurm_job: std::env::var("SLURM_JOB_ID").unwrap_or_default(),
        seconds: start.elapsed().as_secs_f64(),
    };
    write_json(&result_path(dir, index), &result)?;
    Ok(failure)
}

/// CPUs Slurm allotted this task: `--cpus-per-task`, else the job's CPUs on this node
/// (`SLURM_JOB_CPUS_PER_NODE` reads like `2` or `2(x3)`).
fn task_cpus() -> Option<i32> {
    let var = |k: &str| std::env::var(k).ok();
    var("SLURM_CPUS_PER_TASK")
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            var("SLURM_JOB_CPUS_PER_NODE").and_then(|v| {
                let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
        })
        .filter(|&n: &i32| n > 0)
}

/// The trajectory itself: the session's data, pipeline and model rebuilt from the config, the
/// snapshot read and verified, then exactly a local trajectory's code.
fn run_task(
    dir: &Path,
    inputs: &Inputs,
    index: usize,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Result<Trajectory, Diverged>, SearchError> {
    let seeds = *inputs.seeds.get(index).ok_or_else(|| {
        SearchError::Slurm(format!(
            "worker: index {index} is past this request's {} trajectories",
            inputs.seeds.len()
        ))
    })?;
    let run_dir = dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| SearchError::Slurm(format!("{} is not inside a run directory", dir.display())))?;
    let parts = super::session::Parts::for_worker(&inputs.config)?;
    let stage1 = Stage1::new(parts.trainer);
    let tensors = checkpoint::read_snapshot(&run_dir.join(&inputs.snapshot_dir), &inputs.snapshot)?;
    let snapshot = stage1
        .snapshot_from_tensors(tensors, inputs.epochs_done, &inputs.config, parts.device.device)
        .map_err(|why| SearchError::Slurm(format!("stage-1 snapshot {}: {why}", inputs.snapshot.file)))?;
    let mut trainer = stage1.trainer;
    let runner = Runner {
        config: inputs.config.clone(),
        pipeline: parts.pipeline,
        snapshot,
        policy: inputs.policy.clone(),
        cancel: CancelFlag::new(),
        purpose: inputs.purpose,
        total: inputs.seeds.len(),
        first: 0,
        pairs: inputs.pairs,
    };
    let (train, val) = (&parts.splits.train, &parts.splits.val);
    runner.run(&mut trainer, train, val, seeds, index, &mut |p| progress(&p))
}

// ---- the coordinator ----------------------------------------------------------------------

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
    let not_found = || {
        SearchError::Slurm(format!("`{cmd}` not found: the slurm executor needs Slurm's client commands on PATH (a login node, or SLURM_CONF set); `config executor=local` runs trajectories here"))
    };
    // coreutils' `timeout`: TERM at the limit, KILL 5 s later; 124/137 = timed out, 127 = no such command.
    let out = Command::new("timeout")
        .args(["--kill-after=5", &CLIENT_SECONDS.to_string(), cmd])
        .args(args)
        .output()
        .map_err(|e| SearchError::Slurm(format!("could not run `timeout {cmd}`: {e}")))?;
    match out.status.code() {
        Some(127) => return Err(not_found()),
        Some(124 | 137) => {
            return Err(SearchError::Slurm(format!(
                "`{cmd}` did not answer in {CLIENT_SECONDS} s: is slurmctld up and reachable (`scontrol ping`)?"
            )))
        }
        _ => {}
    }
    if !out.status.success() {
        return Err(SearchError::Slurm(format!(
            "`{cmd} {}` failed ({}): {} — the slurm executor runs Slurm's clients here: on a login node, or with SLURM_CONF naming the cluster's slurm.conf",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
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
        _ => Err(SearchError::Slurm(
            "the slurm executor needs the augwise binary the tasks run: `config slurm.worker=/path/to/augwise` (or set AUGWISE_WORKER)".into(),
        )),
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
    fn tell(&mut self, progress: &mut super::session::ProgressSink) {
        for note in self.notes.drain(..) {
            progress.notice("slurm", note);
        }
    }

    fn log(&self, job: &str, index: usize) -> PathBuf {
        self.dir.join("logs").join(format!("{job}_{index}.log"))
    }

    fn submit(&mut self, indices: &[usize]) -> Result<(), SearchError> {
        let cwd = std::env::current_dir().map_err(|e| SearchError::Slurm(format!("no working directory: {e}")))?;
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
            return Err(SearchError::Slurm(format!(
                "sbatch answered `{}`, not a job id",
                out.trim()
            )));
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

impl Session {
    /// The trajectories of `seeds` as a Slurm job array (see the module's doc); all or
    /// nothing, like the local executor.
    pub(super) fn slurm_trajectories(
        &mut self,
        policy: &Policy,
        seeds: &[TrajectorySeeds],
        purpose: Purpose,
        pairs: usize,
    ) -> Result<Ran, SearchError> {
        let epochs_done = self.stage1.complete(&self.config)?.epochs_done;
        let (snapshot_dir, snapshot) = self.snapshot_for_tasks()?;
        let mut inputs = Inputs {
            format: INPUTS_FORMAT.into(),
            key: String::new(),
            update: self.ppo.updates,
            purpose,
            config: self.config.clone(),
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
            cfg: &self.config.slurm,
            name: format!("augwise-{}", &name),
            jobs,
            notes,
        };
        self.cancel.reset();
        let result = drive(&mut req, &self.cancel, &mut self.progress);
        if result.is_err() {
            // Nothing of this request runs on: running it again starts afresh (its tries
            // too). Only a coordinator that died leaves jobs.json for `resume` to follow.
            req.cancel_all();
            let _ = std::fs::remove_file(req.dir.join(JOBS_FILE));
        }
        result
    }

    /// The stage-1 snapshot as a file the tasks read: the run directory's committed one, or
    /// (a run from before content-addressed snapshots) one written under `slurm/`.
    fn snapshot_for_tasks(&self) -> Result<(String, SnapshotRef), SearchError> {
        if let Some(r) = &self.snapshot_ref {
            return Ok((String::new(), r.clone()));
        }
        let snapshot = self.stage1.complete(&self.config)?;
        let tensors = Stage1::to_tensors(snapshot).map_err(crate::train::TrainError::from)?;
        let r = checkpoint::write_snapshot(&self.run_dir.join("slurm"), &tensors)?;
        Ok(("slurm".into(), r))
    }
}

/// Submit what has no result and no live job, poll until every task has a result, resubmit
/// failed tasks by index until their tries are spent.
fn drive(
    req: &mut Request<'_>,
    cancel: &CancelFlag,
    progress: &mut super::session::ProgressSink,
) -> Result<Ran, SearchError> {
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

    /// A damaged request or an index it does not have: an error for the worker's user, and no
    /// result file the coordinator would read (issue 24).
    #[test]
    fn a_worker_refuses_a_damaged_request_or_a_missing_index_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let seed = TrajectorySeeds {
            order: 1,
            augment: 2,
            policy: 3,
        };
        let mut inputs = Inputs {
            format: INPUTS_FORMAT.into(),
            key: String::new(),
            update: 0,
            purpose: Purpose::Evaluate,
            config: SearchConfig::cpu(),
            policy: Policy::None,
            pairs: 0,
            seeds: vec![seed, seed],
            snapshot_dir: ".".into(),
            snapshot: SnapshotRef {
                file: "weights-0.safetensors".into(),
                sha256: String::new(),
                bytes: 0,
            },
            epochs_done: 1,
        };
        inputs.key = inputs.digest().unwrap();
        write_json(&dir.path().join(INPUTS_FILE), &inputs).unwrap();
        let e = run_worker(dir.path(), Some(2), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("trajectories 0..2 and no index 2") && e.contains("nothing was run"),
            "{e}"
        );
        assert!(
            !dir.path().join("results").exists(),
            "a result was written for a missing index"
        );

        std::fs::write(
            dir.path().join(INPUTS_FILE),
            "{\"format\": \"augwise-slurm-inputs/1\", trunc",
        )
        .unwrap();
        let e = run_worker(dir.path(), Some(0), &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("cannot read the request") && !e.contains("restore a backup") && !e.contains("point `resume`"),
            "{e}"
        );
        assert!(!dir.path().join("results").exists());
    }
}
