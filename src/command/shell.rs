//! The state commands act on ([`Shell`]): the configuration and a session built on first
//! need, and the one entry point that runs a typed line.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::policy::Policy;
use crate::present::chart::ChartKind;
use crate::search::{
    CompareReport, CorrelateReport, EvaluateReport, Pairing, Progress, SampleReport, SearchConfig, SearchError,
    Session, StepReport,
};
use crate::train::CancelFlag;

use super::args::parse;
use super::{lookup, split, Arg, Args, CommandError, Output, COMMANDS};

/// The state commands act on: the configuration, and a session built on first need (so a
/// front-end starts instantly).
pub struct Shell {
    pub config: SearchConfig,
    pub run_dir: PathBuf,
    /// What the next new session does if `run_dir` holds a run already.
    pub on_existing: OnExistingRun,
    pub(super) session: Option<Session>,
    /// Said with the next command's output (where a new session went instead of a taken
    /// directory).
    pub(super) note: Option<String>,
    pub(super) cancel: CancelFlag,
    pub(super) progress: Option<SharedProgress>,
    /// The last `sample` and `correlate` results, for `plot images` and `plot correlate`.
    last_sample: Option<crate::search::SampleReport>,
    last_correlate: Option<crate::search::CorrelateReport>,
    /// The last `evaluate`'s (or `step`'s) trajectories, for `plot trajectory`.
    last_evaluate: Option<crate::search::EvaluateReport>,
    last_compare: Option<crate::search::CompareReport>,
}

type SharedProgress = Arc<Mutex<dyn FnMut(&Progress) + Send>>;

/// What a new session does when its run directory already holds a run. Neither choice touches
/// that run: a directory the user named is refused (the error says how to resume it), a
/// default one gives way to the first free sibling (`runs/repl-2`, …), said aloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExistingRun {
    #[default]
    Refuse,
    NextFree,
}

/// `base` if it holds no run, else the first of `base-2`, `base-3`, … that holds none (the
/// numbering continues from a `-N` already on `base`).
pub fn free_run_dir(base: &Path) -> PathBuf {
    let taken = |d: &Path| d.join("session.json").exists();
    if !taken(base) {
        return base.to_owned();
    }
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, from) = match name.rsplit_once('-').map(|(s, n)| (s, n.parse::<u32>())) {
        Some((s, Ok(n))) if (2..1000).contains(&n) && !s.is_empty() => (s.to_owned(), n + 1),
        _ => (name, 2),
    };
    (from..)
        .map(|n| base.with_file_name(format!("{stem}-{n}")))
        .find(|d| !taken(d))
        .unwrap_or_else(|| base.to_owned())
}

impl Shell {
    pub fn new(config: SearchConfig, run_dir: impl Into<PathBuf>) -> Self {
        Self {
            config,
            run_dir: run_dir.into(),
            on_existing: OnExistingRun::Refuse,
            session: None,
            note: None,
            cancel: CancelFlag::new(),
            progress: None,
            last_sample: None,
            last_correlate: None,
            last_evaluate: None,
            last_compare: None,
        }
    }

    /// The flag that cancels the running step of whichever session is current (Ctrl-C).
    pub fn cancel_flag(&self) -> CancelFlag {
        self.cancel.clone()
    }

    /// Where every session's progress events go.
    pub fn set_progress(&mut self, f: impl FnMut(&Progress) + Send + 'static) {
        let sink: SharedProgress = Arc::new(Mutex::new(f));
        self.progress = Some(sink);
        if let Some(mut s) = self.session.take() {
            self.attach(&mut s);
            self.session = Some(s);
        }
    }

    fn attach(&self, s: &mut Session) {
        s.set_cancel_flag(self.cancel.clone());
        if let Some(sink) = self.progress.clone() {
            s.set_progress(move |p| {
                if let Ok(mut f) = sink.lock() {
                    f(p)
                }
            });
        }
    }

    /// `on_existing` set: how a new session treats a run directory that holds a run.
    pub fn with_on_existing(mut self, on_existing: OnExistingRun) -> Self {
        self.on_existing = on_existing;
        self
    }

    /// Move the next new session to a free directory beside `run_dir` if `run_dir` holds a
    /// run, with a note saying where it went and how to get the old run back.
    pub(super) fn give_way(&mut self) {
        let free = free_run_dir(&self.run_dir);
        if free != self.run_dir {
            self.note = Some(format!(
                "{} holds an earlier run (kept; `resume {}` continues it): this session records into {}",
                self.run_dir.display(),
                self.run_dir.display(),
                free.display()
            ));
            self.run_dir = free;
        }
    }

    /// The session, built now if this is the first command that needs one.
    pub fn session(&mut self) -> Result<&mut Session, CommandError> {
        let s = match self.session.take() {
            Some(s) => s,
            None => {
                if self.on_existing == OnExistingRun::NextFree {
                    self.give_way();
                }
                let mut s = Session::new(self.config.clone(), &self.run_dir)?;
                self.attach(&mut s);
                self.last_evaluate = None; // its trajectories belong to the session replaced
                s
            }
        };
        Ok(self.session.insert(s))
    }

    /// The session if one exists (no building).
    pub fn session_if_started(&mut self) -> Option<&mut Session> {
        self.session.as_mut()
    }

    /// For the prompt: device, stage and update count, or "no session yet".
    pub fn status(&self) -> String {
        self.session.as_ref().map(Session::status).unwrap_or_else(|| {
            // The dataset's kind only: a synthetic spec's knobs would fill the line.
            let data = self.config.data.to_string();
            let kind = data.split([':', ',']).next().unwrap_or_default().to_owned();
            format!("{} · {kind} · not started", self.config.model)
        })
    }

    /// Replace the session by the run in `dir`, from its last checkpoint.
    pub fn resume(&mut self, dir: impl AsRef<std::path::Path>) -> Result<String, CommandError> {
        let dir = dir.as_ref();
        let mut s = Session::resume(dir)?;
        self.attach(&mut s);
        self.config = s.config.clone();
        self.run_dir = dir.to_path_buf();
        let mut text = format!("resumed {}: {}", dir.display(), s.status());
        if let Some(why) = s.read_only() {
            text.push_str(&format!(
                "\nread-only ({why}): `policy`, `history`, `plot KIND FILE` and `export` work; `save DIR` continues the run in a writable directory"
            ));
        }
        self.session = Some(s);
        self.last_evaluate = None; // its trajectories belong to the session replaced
        Ok(text)
    }

    /// Chart `kind` of the current session; `images` draws a sample first if there is none,
    /// `compare` and `correlate` need a run of theirs.
    pub fn chart(&mut self, kind: ChartKind) -> Result<crate::present::chart::Chart, CommandError> {
        use crate::present::chart;
        let c = match kind {
            ChartKind::Rewards => chart::rewards(&self.session()?.history),
            ChartKind::Accuracy => chart::accuracy(&self.session()?.history),
            ChartKind::Theta => {
                let s = self.session()?;
                chart::theta(s.best_theta(), s.current_null())
            }
            ChartKind::Marginals => {
                let s = self.session()?;
                let (op1, op2) = s.best_theta().distribution().map_err(SearchError::from)?.marginals();
                chart::marginal_bars(&op1, &op2, s.current_null())
            }
            ChartKind::Images => {
                if self.last_sample.is_none() {
                    self.last_sample = Some(self.session()?.sample(8)?);
                }
                match &self.last_sample {
                    Some(s) => chart::images(s),
                    None => Err(chart::ChartError::Empty("no sample".into())),
                }
            }
            ChartKind::Ops => chart::ops(&self.session()?.gallery(0)?),
            ChartKind::Probes => chart::probes(&self.session()?.history.probes),
            ChartKind::Compare => match &self.last_compare {
                Some(r) => chart::compare(r),
                None => Err(chart::ChartError::Empty("run `compare <a> <b> [k]` first".into())),
            },
            ChartKind::Trajectory => {
                // The last evaluate, moved out while the session is borrowed (a session built
                // now has none: its trajectories belonged to the one replaced).
                let last = self.last_evaluate.take().filter(|_| self.session.is_some());
                let s = self.session()?;
                // Waiting trajectories are the newest; after `update`, the last evaluated.
                let ts = match (&s.pending[..], &last) {
                    ([], Some(e)) => &e.trajectories[..],
                    (pending, _) => pending,
                };
                let c = chart::trajectory(&s.history.pretrain, ts, s.config.reward_top);
                self.last_evaluate = last;
                c
            }
            ChartKind::Correlate => match &self.last_correlate {
                Some(r) => chart::correlate(r),
                None => Err(chart::ChartError::Empty("run `correlate <policies…>` first".into())),
            },
        };
        Ok(c?)
    }

    /// `best` in a policy's place: the session's best θ so far, once a search has updated it.
    fn resolve_best(&mut self, mut args: Args) -> Result<Args, CommandError> {
        if !args.0.iter().any(|a| matches!(a, Arg::Best)) {
            return Ok(args);
        }
        let s = self.session()?;
        if s.best.is_none() {
            return Err(CommandError::NoBestYet);
        }
        let best = s.best_policy()?;
        for a in &mut args.0 {
            if matches!(a, Arg::Best) {
                *a = Arg::Policy(best.clone());
            }
        }
        Ok(args)
    }

    /// Parse, check and run one line.
    pub fn run(&mut self, line: &str) -> Result<Output, CommandError> {
        let words = split(line).map_err(|m| {
            // The command the line was meant for, when its first word is whole.
            let first = line.split_whitespace().next().unwrap_or_default();
            let known = COMMANDS.iter().find(|c| c.name == first);
            CommandError::Usage {
                command: known.map_or_else(|| "line".to_owned(), |c| c.name.to_owned()),
                message: format!("{m}: close it and run the line again (nothing was run)"),
                usage: known.map_or_else(|| "help".to_owned(), |c| c.usage()),
            }
        })?;
        let Some((name, args)) = words.split_first() else {
            return Ok(Output::text("", ""));
        };
        let cmd = lookup(name)?;
        let args = self.resolve_best(parse(cmd, args)?)?;
        let mut out = (cmd.handler)(self, &args)?;
        if let Some(note) = self.note.take() {
            out.text = format!("note: {note}\n{}", out.text);
        }
        Ok(out)
    }
}

impl Shell {
    /// No session until the next command needs one (built then from `config`), and none of
    /// the old one's reports.
    pub(super) fn drop_session(&mut self) {
        self.session = None;
        self.last_evaluate = None;
    }
}

/// The primitives whose reports later commands read (`plot`, the charts): each keeps its
/// report. The command handlers and `Notebook` both call these, so that bookkeeping is done in
/// one place.
impl Shell {
    pub fn sample(&mut self, n: usize) -> Result<SampleReport, CommandError> {
        let r = self.session()?.sample(n)?;
        self.last_sample = Some(r.clone());
        Ok(r)
    }

    pub fn preview(&mut self, policy: &Policy, n: usize) -> Result<SampleReport, CommandError> {
        let r = self.session()?.preview(policy, n)?;
        self.last_sample = Some(r.clone());
        Ok(r)
    }

    pub fn evaluate(&mut self, k: Option<usize>) -> Result<EvaluateReport, CommandError> {
        let r = self.session()?.evaluate(k)?;
        self.last_evaluate = Some(r.clone());
        Ok(r)
    }

    pub fn step(&mut self, n: usize) -> Result<StepReport, CommandError> {
        let r = self.session()?.step(n)?;
        self.last_evaluate = r.steps.last().map(|s| s.evaluate.clone());
        Ok(r)
    }

    /// A fixed-size paired comparison (common random numbers).
    pub fn compare(&mut self, policies: &[Policy], k: Option<usize>) -> Result<CompareReport, CommandError> {
        let r = self.session()?.compare(policies, k, Pairing::CommonRandomNumbers)?;
        self.last_compare = Some(r.clone());
        Ok(r)
    }

    pub fn compare_early(
        &mut self,
        a: &Policy,
        b: &Policy,
        max_k: Option<usize>,
    ) -> Result<CompareReport, CommandError> {
        let r = self.session()?.compare_early(a, b, max_k)?;
        self.last_compare = Some(r.clone());
        Ok(r)
    }

    pub fn correlate(&mut self, policies: &[Policy]) -> Result<CorrelateReport, CommandError> {
        let r = self.session()?.correlate(policies, None)?;
        self.last_correlate = Some(r.clone());
        Ok(r)
    }
}
