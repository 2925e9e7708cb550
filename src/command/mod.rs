//! The one command table: name, arguments, help and handler for every command a user types in
//! the REPL or passes to `run("…")` in a notebook. It generates `help`, checks arguments before
//! anything runs (with the nearest valid name on a typo), and returns structured [`Output`];
//! front-ends only render it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};

use crate::augment::space::pair_name;
use crate::data::DataSpec;
use crate::limits;
use crate::model::Arch;
use crate::policy::{torchvision_export, Policy};
use crate::present::chart::ChartKind;
use crate::present::{chart_html, pre, Rich};
use crate::search::{explain, Progress, SearchConfig, SearchError, Session, Stage};
use crate::suggest;
use crate::suggest::Named;
use crate::train::CancelFlag;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command `{name}`{hint}; `help` lists the commands")]
    Unknown { name: String, hint: String },
    #[error("{command}: {message}\nusage: {usage}")]
    Usage {
        command: String,
        message: String,
        usage: String,
    },
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Chart(#[from] crate::present::chart::ChartError),
}

/// What a kind of argument accepts (checked before the handler runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A whole number up to its limit (checked before the handler sees it).
    Count(&'static crate::limits::Limit),
    Policy,
    Stage,
    Path,
    Data,
    Model,
    KeyValue,
    Chart,
    /// An `export` format, or a file name standing in for it.
    Format,
    /// A policy, or (last) a trajectory count: `compare A B C 8`.
    PolicyOrCount,
    Text,
}

#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub optional: bool,
    pub repeated: bool,
}

const fn arg(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: false,
        repeated: false,
    }
}
const fn opt(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: true,
        repeated: false,
    }
}
const fn many(name: &'static str, kind: ArgKind, optional: bool) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional,
        repeated: true,
    }
}

type Handler = fn(&mut Shell, &Args) -> Result<Output, CommandError>;

/// One row of the table.
pub struct Command {
    pub name: &'static str,
    pub args: &'static [ArgSpec],
    pub summary: &'static str,
    /// One line as a user would type it (`help NAME` shows it).
    pub example: &'static str,
    handler: Handler,
}

impl Command {
    pub fn usage(&self) -> String {
        let mut s = self.name.to_owned();
        for a in self.args {
            let dots = if a.repeated { "…" } else { "" };
            if a.optional {
                s.push_str(&format!(" [{}{dots}]", a.name));
            } else {
                s.push_str(&format!(" <{}{dots}>", a.name));
            }
        }
        s
    }
}

/// A command's result: text for terminals, structured data for notebooks and `--json`, and
/// the same result as HTML for notebooks — rendered by the library on request, so a terminal
/// never pays for charts it does not show.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    pub command: String,
    pub text: String,
    pub data: Value,
    #[serde(skip)]
    rich: Html,
    /// The front-end should end the session.
    pub quit: bool,
}

/// Where an output's HTML comes from.
#[derive(Clone)]
enum Html {
    /// The text, preformatted.
    Text,
    /// Already rendered (a plotted chart).
    Ready(String),
    /// The report's own rendering.
    Report(Arc<dyn Rich + Send + Sync>),
}

impl std::fmt::Debug for Html {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Html::Text => "Text",
            Html::Ready(_) => "Ready",
            Html::Report(_) => "Report",
        })
    }
}

impl Output {
    fn text(command: &str, text: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            text: text.into(),
            data: Value::Null,
            rich: Html::Text,
            quit: false,
        }
    }
    fn report<T: Serialize + Rich + Clone + Send + Sync + 'static>(command: &str, r: &T) -> Self {
        Self {
            command: command.into(),
            text: r.to_string(),
            data: serde_json::to_value(r).unwrap_or(Value::Null),
            rich: Html::Report(Arc::new(r.clone())),
            quit: false,
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.text)
    }
}

impl Rich for Output {
    fn html(&self) -> String {
        match &self.rich {
            Html::Text => pre(&self.text),
            Html::Ready(h) => h.clone(),
            Html::Report(r) => r.html(),
        }
    }
}

/// The table. Order is the order of `help`.
pub static COMMANDS: &[Command] = &[
    Command { name: "help", args: &[opt("command", ArgKind::Text)], summary: "list the commands, or explain one", example: "help compare", handler: cmd_help },
    Command { name: "explain", args: &[opt("stage", ArgKind::Stage)], summary: "the formulas and settings of a stage of AWS", example: "explain update", handler: cmd_explain },
    Command { name: "device", args: &[], summary: "torch build, CUDA devices, threads, the device in use", example: "device", handler: cmd_device },
    Command { name: "data", args: &[arg("spec", ArgKind::Data)], summary: "choose the dataset (fashion-mnist, cifar10:DIR, synthetic:…); starts a new session", example: "data cifar10:data/cifar-10-batches-bin", handler: cmd_data },
    Command { name: "model", args: &[arg("name", ArgKind::Model)], summary: "choose the network (resnet20, resnet56, wrn-D-K); starts a new session", example: "model wrn-16-2", handler: cmd_model },
    Command { name: "config", args: &[many("key=value", ArgKind::KeyValue, true)], summary: "what differs from the preset (`config KEY`: one setting, `config all`: every one), or set keys (a new session picks them up)", example: "config finetune_epochs=2 trajectories=8", handler: cmd_config },
    Command { name: "pretrain", args: &[opt("epochs", ArgKind::Count(&limits::EPOCHS))], summary: "stage 1: shared-weight pretraining (default: the rest of the schedule)", example: "pretrain 3", handler: cmd_pretrain },
    Command { name: "sample", args: &[opt("n", ArgKind::Count(&limits::SAMPLES))], summary: "draw n pairs from θ with their probabilities, preview them", example: "sample 8", handler: cmd_sample },
    Command { name: "preview", args: &[arg("policy", ArgKind::Policy), opt("n", ArgKind::Count(&limits::SAMPLES))], summary: "any policy applied to n validation images (default 8): what it does to this data, as an image grid", example: "preview autoaugment:cifar10 12", handler: cmd_preview },
    Command { name: "evaluate", args: &[opt("k", ArgKind::Count(&limits::TRAJECTORIES))], summary: "stage 2: k trajectories under θ, waiting for `update`", example: "evaluate 4", handler: cmd_evaluate },
    Command { name: "update", args: &[], summary: "PPO update of θ from the waiting trajectories", example: "update", handler: cmd_update },
    Command { name: "step", args: &[opt("n", ArgKind::Count(&limits::STEPS))], summary: "n × (evaluate, update)", example: "step 5", handler: cmd_step },
    Command { name: "policy", args: &[opt("top", ArgKind::Count(&limits::TOP_PAIRS))], summary: "the best θ (what export writes): top pairs, entropy, op1/op2 marginals, the null's verdict", example: "policy 10", handler: cmd_policy },
    Command { name: "probe", args: &[arg("policy", ArgKind::Policy), opt("k", ArgKind::Count(&limits::TRAJECTORIES))], summary: "proxy reward of any policy with its 95% interval over k trajectories (default 4), θ untouched", example: "probe autoaugment:cifar10 8", handler: cmd_probe },
    Command { name: "compare", args: &[arg("a", ArgKind::Policy), arg("b", ArgKind::Policy), many("more… [early] [k]", ArgKind::PolicyOrCount, true)], summary: "paired proxy comparison (common random numbers): difference, 95% CI, p-value, verdict. With k: exactly k trajectories each. Two policies without k (or with `early [max]`): pair by pair, stopping as soon as the evidence suffices, at most 20 pairs (an anytime-valid test)", example: "compare none pair:Invert+Equalize early 30", handler: cmd_compare },
    Command { name: "null", args: &[opt("replicates", ArgKind::Count(&limits::NULL_REPLICATES))], summary: "did the search find anything? rewards vs the ops drawn against shuffled rewards (score test), and θ's movement against null searches", example: "null 100", handler: cmd_null },
    Command { name: "fulltrain", args: &[arg("policy", ArgKind::Policy), opt("epochs", ArgKind::Count(&limits::EPOCHS))], summary: "train from scratch with a policy, report test accuracy", example: "fulltrain best 20", handler: cmd_fulltrain },
    Command { name: "correlate", args: &[many("policies", ArgKind::Policy, false)], summary: "probe and full-train policies; Kendall τ and Spearman ρ", example: "correlate none aws randaugment trivialaugment pair:Invert+Invert", handler: cmd_correlate },
    Command { name: "history", args: &[], summary: "every update so far: rewards, baseline, KL, entropy", example: "history", handler: cmd_history },
    Command { name: "plot", args: &[arg("chart", ArgKind::Chart), opt("file", ArgKind::Path)], summary: "draw a chart (rewards, accuracy, trajectory, theta, marginals, images, ops, probes, compare, correlate) to SVG + PNG", example: "plot rewards runs/fig/rewards.svg", handler: cmd_plot },
    Command { name: "save", args: &[opt("dir", ArgKind::Path)], summary: "write the checkpoint (to another run directory)", example: "save runs/copy", handler: cmd_save },
    Command { name: "resume", args: &[opt("dir", ArgKind::Path)], summary: "continue the run in a directory (default: the run directory) from its last checkpoint", example: "resume runs/demo", handler: cmd_resume },
    Command { name: "export", args: &[opt("format", ArgKind::Format), opt("policy", ArgKind::Format), opt("file", ArgKind::Path)], summary: "a policy (default: the best θ) as json (torchvision sub-policies), theta (the search's logits) or csv (all pairs), shown or to a file; a file outside the run directory is never replaced", example: "export json autoaugment:cifar10 aa.json", handler: cmd_export },
    Command { name: "reset", args: &[opt("dir", ArgKind::Path)], summary: "start over: a new session with the current configuration, in DIR (default: a free sibling of the run directory; the old run stays)", example: "reset runs/fresh", handler: cmd_reset },
    Command { name: "quit", args: &[], summary: "leave (every step is already checkpointed)", example: "quit", handler: cmd_quit },
];

/// The command named `name`, or a did-you-mean error.
pub fn lookup(name: &str) -> Result<&'static Command, CommandError> {
    COMMANDS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| CommandError::Unknown {
            name: name.to_owned(),
            hint: suggest::hint(name, COMMANDS.iter().map(|c| c.name)),
        })
}

/// Split a line into words; `"…"` or `'…'` quote words with spaces.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!(
            "unclosed quote: a {} opens a word that never ends",
            quote.map_or('"', |q| q)
        ));
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// One argument as its handler receives it: parsed once, by the table.
#[derive(Debug, Clone)]
pub enum Arg {
    Count(usize),
    Policy(Policy),
    /// `best`: the session's searched θ, resolved when the line runs.
    Best,
    Stage(Stage),
    Path(PathBuf),
    Data(DataSpec),
    Model(Arch),
    KeyValue(String, String),
    Chart(ChartKind),
    Format(ExportFormat),
    Text(String),
}

/// A command's arguments, typed.
#[derive(Debug, Clone, Default)]
pub struct Args(pub Vec<Arg>);

impl Args {
    pub fn count(&self, i: usize) -> Option<usize> {
        match self.0.get(i) {
            Some(Arg::Count(n)) => Some(*n),
            _ => None,
        }
    }
    pub fn policy(&self, i: usize) -> Option<&Policy> {
        match self.0.get(i) {
            Some(Arg::Policy(p)) => Some(p),
            _ => None,
        }
    }
    /// Every policy argument, in order.
    pub fn policies(&self) -> Vec<Policy> {
        self.0
            .iter()
            .filter_map(|a| match a {
                Arg::Policy(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }
    /// The last argument when it is a count (`compare A B C 8`).
    pub fn trailing_count(&self) -> Option<usize> {
        match self.0.last() {
            Some(Arg::Count(n)) => Some(*n),
            _ => None,
        }
    }
    pub fn path(&self, i: usize) -> Option<&Path> {
        match self.0.get(i) {
            Some(Arg::Path(p)) => Some(p),
            _ => None,
        }
    }
    pub fn text(&self, i: usize) -> Option<&str> {
        match self.0.get(i) {
            Some(Arg::Text(t)) => Some(t),
            _ => None,
        }
    }
    fn find<T>(&self, f: impl Fn(&Arg) -> Option<T>) -> Option<T> {
        self.0.iter().find_map(f)
    }
}

impl ArgKind {
    /// `word` as this kind of argument; `last`: it is the line's last word.
    fn parse(self, word: &str, last: bool) -> Result<Arg, String> {
        let named = |e: String| e;
        Ok(match self {
            ArgKind::Count(limit) => {
                let n = word.parse::<u64>().map_err(|_| "expected a whole number".to_owned())?;
                Arg::Count(limit.check(n)? as usize)
            }
            ArgKind::Policy | ArgKind::PolicyOrCount if word == "best" => Arg::Best,
            ArgKind::Policy => Arg::Policy(Policy::from_str(word).map_err(|e| e.to_string())?),
            ArgKind::Stage => Arg::Stage(Stage::parse_named(word).map_err(named)?),
            ArgKind::Data => Arg::Data(DataSpec::from_str(word).map_err(|e| e.to_string())?),
            ArgKind::Model => Arg::Model(Arch::from_str(word).map_err(|e| e.to_string())?),
            // A key alone shows that setting (`config slurm`, `config all`).
            ArgKind::KeyValue => match word.split_once('=') {
                Some((k, v)) => Arg::KeyValue(k.to_owned(), v.to_owned()),
                None => Arg::Text(word.to_owned()),
            },
            ArgKind::Chart => Arg::Chart(ChartKind::parse_named(word).map_err(named)?),
            // `export [format] [policy] [file]`, each optional: a word that is no format is the
            // policy if it parses as one, else a file if it looks like one (`best.json`).
            ArgKind::Format => match ExportFormat::parse_named(word) {
                Ok(f) => Arg::Format(f),
                Err(_) if word == "best" => Arg::Best,
                Err(e) => match Policy::from_str(word) {
                    Ok(p) => Arg::Policy(p),
                    Err(_) if word.contains(['.', '/']) => Arg::Path(PathBuf::from(word)),
                    Err(_) => return Err(format!("{e}, a policy (`help policies`) or a file name")),
                },
            },
            // `compare A B early [max]`: stop as soon as the evidence suffices.
            ArgKind::PolicyOrCount if word == EARLY => Arg::Text(EARLY.to_owned()),
            ArgKind::PolicyOrCount => match word.parse::<u64>() {
                Ok(k) if last => Arg::Count(crate::limits::TRAJECTORIES.check(k)? as usize),
                _ => Arg::Policy(Policy::from_str(word).map_err(|e| {
                    if last {
                        format!("{e} (or a trajectory count)")
                    } else {
                        e.to_string()
                    }
                })?),
            },
            ArgKind::Path => Arg::Path(PathBuf::from(word)),
            ArgKind::Text => Arg::Text(word.to_owned()),
        })
    }
}

/// Check `words` against `cmd`'s arguments and parse each once.
fn parse(cmd: &Command, words: &[String]) -> Result<Args, CommandError> {
    let usage = |message: String| CommandError::Usage {
        command: cmd.name.into(),
        message,
        usage: cmd.usage(),
    };
    let required = cmd.args.iter().filter(|a| !a.optional).count();
    let unbounded = cmd.args.iter().any(|a| a.repeated);
    if words.len() < required {
        let missing = &cmd.args[words.len()];
        return Err(usage(format!("missing <{}>", missing.name)));
    }
    if !unbounded && words.len() > cmd.args.len() {
        return Err(usage(format!("unexpected `{}`", words[cmd.args.len()])));
    }
    let mut args = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let spec = cmd
            .args
            .get(i)
            .or(cmd.args.last())
            .copied()
            .ok_or_else(|| usage(format!("unexpected `{word}`")))?;
        let arg = spec
            .kind
            .parse(word, i + 1 == words.len())
            .map_err(|why| usage(format!("<{}> `{word}`: {why}", spec.name)))?;
        args.push(arg);
    }
    Ok(Args(args))
}

/// The state commands act on: the configuration, and a session built on first need (so a
/// front-end starts instantly).
pub struct Shell {
    pub config: SearchConfig,
    pub run_dir: PathBuf,
    /// What the next new session does if `run_dir` holds a run already.
    pub on_existing: OnExistingRun,
    session: Option<Session>,
    /// Said with the next command's output (where a new session went instead of a taken
    /// directory).
    note: Option<String>,
    cancel: CancelFlag,
    progress: Option<ProgressSink>,
    /// The last `sample` and `correlate` results, for `plot images` and `plot correlate`.
    pub(crate) last_sample: Option<crate::search::SampleReport>,
    pub(crate) last_correlate: Option<crate::search::CorrelateReport>,
    /// The last `evaluate`'s (or `step`'s) trajectories, for `plot trajectory`.
    pub(crate) last_evaluate: Option<crate::search::EvaluateReport>,
    pub(crate) last_compare: Option<crate::search::CompareReport>,
}

type ProgressSink = Arc<Mutex<dyn FnMut(&Progress) + Send>>;

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
        let sink: ProgressSink = Arc::new(Mutex::new(f));
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
    fn give_way(&mut self) {
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
        if self.session.is_none() {
            if self.on_existing == OnExistingRun::NextFree {
                self.give_way();
            }
            let mut s = Session::new(self.config.clone(), &self.run_dir)?;
            self.attach(&mut s);
            self.session = Some(s);
            self.last_evaluate = None; // its trajectories belong to the session replaced
        }
        // Just set above when it was missing.
        self.session
            .as_mut()
            .ok_or_else(|| CommandError::Search(SearchError::Invalid("no session".into())))
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
                self.session()?;
                // Built just above; borrowed alongside the last evaluate, without copying either.
                let (Some(s), last) = (&self.session, &self.last_evaluate) else {
                    return Err(CommandError::Search(SearchError::Invalid("no session".into())));
                };
                // Waiting trajectories are the newest; after `update`, the last evaluated.
                let ts = match (&s.pending[..], last) {
                    ([], Some(e)) => &e.trajectories[..],
                    (pending, _) => pending,
                };
                chart::trajectory(&s.history.pretrain, ts, s.config.reward_top)
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
            return Err(CommandError::Search(SearchError::Invalid(
                "`best` is the search's best θ, and this session has no update yet: run `step` first, or `resume` a run that has".into(),
            )));
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

fn cmd_help(_: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    if let Some("policies") = args.text(0) {
        return Ok(Output::text("help", crate::policy::spec::help_text()));
    }
    if let Some(name) = args.text(0) {
        let c = lookup(name)?;
        return Ok(Output::text(
            "help",
            format!("{}\n  {}\n  example: {}", c.usage(), c.summary, c.example),
        ));
    }
    let width = COMMANDS.iter().map(|c| c.usage().len()).max().unwrap_or(0);
    let text = COMMANDS
        .iter()
        .map(|c| format!("{:<width$}  {}", c.usage(), c.summary))
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!(
        "{text}\n\n`help COMMAND` shows one with an example; `help policies` the policy specs and the 36 operations"
    );
    Ok(Output {
        data: json!(COMMANDS
            .iter()
            .map(|c| json!({"name": c.name, "usage": c.usage(), "summary": c.summary, "example": c.example}))
            .collect::<Vec<_>>()),
        ..Output::text("help", text)
    })
}

fn cmd_explain(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let stage = args.find(|a| match a {
        Arg::Stage(s) => Some(*s),
        _ => None,
    });
    Ok(Output::text("explain", explain(stage.unwrap_or_default(), &sh.config)))
}

fn cmd_device(_: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("device", &crate::device::Diagnostics::collect()))
}

/// End the current session for a new one; a run that started keeps its directory, and the
/// new session goes to a free one beside it (said in the note).
fn restart_note(sh: &mut Shell) -> &'static str {
    if sh.session.take().is_some() {
        sh.give_way();
        " (the previous session's checkpoints stay in its run directory)"
    } else {
        ""
    }
}

fn cmd_data(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    if let Some(Arg::Data(d)) = args.0.first() {
        sh.config.data = d.clone();
    }
    let note = restart_note(sh);
    let s = sh.session()?;
    let (t, v, x) = (s.splits.train.len(), s.splits.val.len(), s.splits.test.len());
    Ok(Output::text(
        "data",
        format!(
            "data {}: {t} search-train / {v} val / {x} test images{note}",
            s.config.data
        ),
    ))
}

fn cmd_model(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    if let Some(Arg::Model(m)) = args.0.first() {
        sh.config.model = *m;
    }
    let note = restart_note(sh);
    Ok(Output::text("model", format!("model {}{note}", sh.config.model)))
}

fn cmd_config(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let mut next = sh.config.clone();
    let mut show = Vec::new();
    for a in &args.0 {
        match a {
            Arg::KeyValue(k, v) => next.set(k, v)?,
            Arg::Text(k) => show.push(k.clone()),
            _ => {}
        }
    }
    let changed = next != sh.config;
    let only_where = sh.config.same_search(&next);
    sh.config = next;
    let started = sh.session.as_ref().map(Session::started);
    let note = match (changed, started) {
        (true, Some(true)) if only_where => {
            // Where trajectories run is not part of what the search computes: it may change.
            if let Some(s) = sh.session.as_mut() {
                s.config.executor = sh.config.executor;
                s.config.slurm = sh.config.slurm.clone();
            }
            "\n(the running session runs its trajectories this way from its next step)"
        }
        (true, Some(true)) => "\n(the running session keeps its configuration; `reset` starts one with this)",
        (true, Some(false)) => {
            // Nothing has run: the session is rebuilt with this configuration when next used.
            sh.session = None;
            sh.last_evaluate = None; // its trajectories belong to the session replaced
            "\n(the session had not run anything yet: it starts again with this configuration)"
        }
        _ => "",
    };
    let data = serde_json::to_value(&sh.config).unwrap_or(Value::Null);
    let text = config_text(&data, &show)?;
    Ok(Output {
        data,
        ..Output::text("config", format!("{text}{note}"))
    })
}

/// `config` as a person reads it: what differs from the nearest preset (the whole
/// configuration is the output's data, and `config all`'s text); `config KEY` one setting.
fn config_text(config: &Value, show: &[String]) -> Result<String, CommandError> {
    let mut flat = Vec::new();
    flatten("", config, &mut flat);
    if show.iter().any(|k| k == "all") {
        return Ok(serde_json::to_string_pretty(config).unwrap_or_default());
    }
    if !show.is_empty() {
        let mut lines = Vec::new();
        for key in show {
            let hits: Vec<&(String, Value)> = flat
                .iter()
                .filter(|(k, _)| k == key || k.starts_with(&format!("{key}.")))
                .collect();
            if hits.is_empty() {
                let names: Vec<&str> = flat.iter().map(|(k, _)| k.as_str()).collect();
                return Err(CommandError::Usage {
                    command: "config".into(),
                    message: format!("no setting `{key}`{}", crate::suggest::hint(key, names)),
                    usage: "config [key=value…] | config KEY | config all".into(),
                });
            }
            lines.extend(hits.iter().map(|(k, v)| format!("{k} = {v}")));
        }
        return Ok(lines.join("\n"));
    }
    let diffs = SearchConfig::PRESETS.iter().filter_map(|name| {
        let preset = serde_json::to_value(SearchConfig::preset(name).ok()?).ok()?;
        let mut base = Vec::new();
        flatten("", &preset, &mut base);
        let differ: Vec<String> = flat
            .iter()
            .filter_map(|(k, v)| {
                let was = base.iter().find(|(b, _)| b == k).map(|(_, b)| b);
                (was != Some(v)).then(|| match was {
                    Some(was) => format!("  {k} = {v}   (preset: {was})"),
                    None => format!("  {k} = {v}"),
                })
            })
            .collect();
        Some((name, differ))
    });
    let Some((name, differ)) = diffs.min_by_key(|(_, d)| d.len()) else {
        return Ok(serde_json::to_string_pretty(config).unwrap_or_default());
    };
    let head = if differ.is_empty() {
        format!("the {name} preset, unchanged")
    } else {
        format!(
            "the {name} preset, with {} setting(s) changed:\n{}",
            differ.len(),
            differ.join("\n")
        )
    };
    Ok(format!(
        "{head}\n(`config KEY` shows a setting, `config all` every one; `explain STAGE` what they mean)"
    ))
}

/// Leaves of a JSON object by dotted name (`slurm.partition`), in order.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v.as_object() {
        Some(map) => {
            for (k, child) in map {
                flatten(&format!("{prefix}{k}."), child, out);
            }
        }
        None => out.push((prefix.trim_end_matches('.').to_owned(), v.clone())),
    }
}

fn cmd_pretrain(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("pretrain", &sh.session()?.pretrain(args.count(0))?))
}

fn cmd_sample(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let r = sh.session()?.sample(args.count(0).unwrap_or(8))?;
    let out = Output::report("sample", &r);
    sh.last_sample = Some(r);
    Ok(out)
}

fn cmd_preview(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let policy = args
        .policy(0)
        .cloned()
        .ok_or_else(|| SearchError::Invalid("preview needs a policy".into()))?;
    let report = sh.session()?.preview(&policy, args.count(1).unwrap_or(8))?;
    let c = crate::present::chart::images(&report)?;
    sh.last_sample = Some(report);
    let text = format!("{policy} on {}\n(`plot images FILE` writes this grid)", c.text);
    Ok(Output {
        data: json!({"policy": policy.to_string(), "svg": c.svg, "width": c.width, "height": c.height}),
        rich: Html::Ready(chart_html(&c) + &pre(&text)),
        ..Output::text("preview", text)
    })
}

fn cmd_evaluate(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let r = sh.session()?.evaluate(args.count(0))?;
    let out = Output::report("evaluate", &r);
    sh.last_evaluate = Some(r);
    Ok(out)
}

fn cmd_update(sh: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("update", &sh.session()?.update()?))
}

fn cmd_step(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let r = sh.session()?.step(args.count(0).unwrap_or(1))?;
    let out = Output::report("step", &r);
    sh.last_evaluate = r.steps.last().map(|s| s.evaluate.clone());
    Ok(out)
}

fn cmd_policy(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report(
        "policy",
        &sh.session()?.policy(args.count(0).unwrap_or(10))?,
    ))
}

fn cmd_probe(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let p = args.policy(0).cloned().unwrap_or(Policy::None);
    Ok(Output::report("probe", &sh.session()?.probe(&p, args.count(1))?))
}

/// The word that makes `compare` stop early.
const EARLY: &str = "early";

fn cmd_compare(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let policies = args.policies();
    let explicit = args.0.iter().position(|a| matches!(a, Arg::Text(t) if t == EARLY));
    // Two policies and no k: the size of the effect is unknown, which is when stopping early pays.
    let early = explicit.is_some() || (policies.len() == 2 && args.trailing_count().is_none());
    let r = if !early {
        sh.session()?.compare(
            &policies,
            args.trailing_count(),
            crate::search::Pairing::CommonRandomNumbers,
        )?
    } else {
        let usage = |message: String| CommandError::Usage {
            command: "compare".into(),
            message,
            usage: "compare A B early [max pairs]".into(),
        };
        let [a, b] = policies.as_slice() else {
            return Err(usage(format!(
                "`early` compares exactly two policies (got {}): its test is one paired difference",
                policies.len()
            )));
        };
        // After `early` only the most pairs to run may follow: `early` is last, or `early N`.
        let after = explicit.map_or(0, |at| args.0.len() - at - 1);
        if after > 1 || (after == 1 && args.trailing_count().is_none()) {
            return Err(usage("`early` may be followed only by the most pairs to run".into()));
        }
        sh.session()?.compare_early(a, b, args.trailing_count())?
    };
    let out = Output::report("compare", &r);
    sh.last_compare = Some(r);
    Ok(out)
}

fn cmd_null(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    Ok(Output::report("null", &sh.session()?.null(args.count(0))?))
}

fn cmd_fulltrain(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let p = args.policy(0).cloned().unwrap_or(Policy::None);
    Ok(Output::report(
        "fulltrain",
        &sh.session()?.fulltrain(&p, args.count(1))?,
    ))
}

fn cmd_correlate(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let r = sh.session()?.correlate(&args.policies(), None)?;
    let out = Output::report("correlate", &r);
    sh.last_correlate = Some(r);
    Ok(out)
}

fn cmd_plot(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let Some(Arg::Chart(kind)) = args.0.first() else {
        return Err(CommandError::Search(SearchError::Invalid("plot needs a chart".into())));
    };
    let (kind, name) = (*kind, kind.name());
    let c = sh.chart(kind)?;
    let stem = match args.path(1) {
        Some(f) => {
            let p = f.to_path_buf();
            match p.extension().and_then(|e| e.to_str()) {
                Some("svg" | "png") => p.with_extension(""),
                _ => p,
            }
        }
        None => {
            let read_only = sh.session.as_ref().and_then(|s| s.read_only()).map(str::to_owned);
            if let Some(why) = read_only {
                // An archived run: the chart is shown, and written only where the user says.
                let where_ = format!(
                    "not written: {} is read-only ({why}); `plot {name} FILE` writes it elsewhere",
                    sh.run_dir.display()
                );
                return Ok(Output {
                    data: json!({"chart": name, "svg": c.svg, "width": c.width, "height": c.height}),
                    rich: Html::Ready(chart_html(&c) + &pre(&where_)),
                    ..Output::text("plot", format!("{}\n{where_}", c.text))
                });
            }
            sh.run_dir.join("plots").join(name)
        }
    };
    let (svg, png) = (stem.with_extension("svg"), stem.with_extension("png"));
    crate::checkpoint::write_atomic(&svg, c.svg.as_bytes()).map_err(SearchError::from)?;
    crate::checkpoint::write_atomic(&png, &c.png).map_err(SearchError::from)?;
    let text = format!(
        "{}
wrote {} and {}",
        c.text,
        svg.display(),
        png.display()
    );
    let html = Html::Ready(chart_html(&c) + &pre(&format!("wrote {} and {}", svg.display(), png.display())));
    Ok(Output {
        data: json!({"chart": name, "svg": c.svg, "svg_path": svg, "png_path": png, "width": c.width, "height": c.height}),
        rich: html,
        ..Output::text("plot", text)
    })
}

fn cmd_history(sh: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    let Some(s) = sh.session.as_ref() else {
        return Ok(Output::text("history", "nothing yet: no session has run"));
    };
    Ok(Output::report("history", &s.history))
}

fn cmd_save(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let path = sh.session()?.save(args.path(0))?;
    sh.run_dir = path.clone();
    Ok(Output {
        data: json!({"dir": path}),
        ..Output::text("save", format!("checkpoint written to {}", path.display()))
    })
}

fn cmd_resume(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let dir = args.path(0).map(Path::to_owned).unwrap_or_else(|| sh.run_dir.clone());
    let text = sh.resume(dir)?;
    Ok(Output::text("resume", text))
}

/// What `export` writes: the PyTorch-ready document (default), θ's logits as the search
/// holds them (loads back with `theta:FILE`), or every pair's probability as CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Json,
    Theta,
    Csv,
}

impl Named for ExportFormat {
    const ALL: &'static [Self] = &[ExportFormat::Json, ExportFormat::Theta, ExportFormat::Csv];
    const WHAT: &'static str = "format";

    fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Theta => "theta",
            ExportFormat::Csv => "csv",
        }
    }
}

fn cmd_export(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    // `export [format] [file]`, or `export FILE` (json).
    let format = args
        .find(|a| match a {
            Arg::Format(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_default();
    let file = args.find(|a| match a {
        Arg::Path(p) => Some(p.clone()),
        _ => None,
    });
    let policy = args.find(|a| match a {
        Arg::Policy(p) => Some(p.clone()),
        _ => None,
    });
    // A policy of its own needs no session (as `augwise export POLICY`); the default is the
    // session's best θ.
    let (best, theta) = match policy {
        Some(p) => {
            // `best` (resolved to the best θ's policy) keeps its logits and its name.
            let theta = match &sh.session {
                Some(s) if s.best_policy().is_ok_and(|b| b == p) => Some(s.best_theta().clone()),
                _ => None,
            };
            (p, theta)
        }
        None => {
            let s = sh.session()?;
            (s.best_policy()?, Some(s.best_theta().clone()))
        }
    };
    let what = if theta.is_some() {
        "best θ".to_owned()
    } else {
        format!("`{best}`")
    };
    if let Some(file) = &file {
        refuse_to_replace(file, &sh.run_dir)?;
    }
    let (doc, text) = match format {
        ExportFormat::Theta => {
            let theta = theta.ok_or_else(|| {
                SearchError::Invalid(format!(
                    "`theta` is the search's logits, which only the best θ has (`export theta` or `export theta best`); export `{best}` as json or csv"
                ))
            })?;
            let doc = serde_json::to_value(&theta).unwrap_or(Value::Null);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            (doc, text)
        }
        ExportFormat::Csv => {
            let dist = best.distribution().ok_or_else(|| {
                SearchError::Invalid(format!(
                    "`{best}` draws no AWS pairs, so it has no pair table: export it as json"
                ))
            })?;
            let rows = dist.top(crate::augment::space::NUM_PAIRS);
            let mut text = String::from("rank,pair,op1,op2,probability\n");
            for (rank, (k, p)) in rows.iter().enumerate() {
                let (a, b) = crate::augment::space::pair_ops(*k);
                let (a, b) = (crate::augment::space::aws_name(a), crate::augment::space::aws_name(b));
                text.push_str(&format!("{},{},{a},{b},{p:.12e}\n", rank + 1, pair_name(*k)));
            }
            (json!({"rows": rows.len()}), text)
        }
        ExportFormat::Json => {
            let doc = torchvision_export(&best, 25);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            (doc, text)
        }
    };
    match file {
        Some(file) => {
            crate::checkpoint::write_atomic(&file, text.as_bytes()).map_err(SearchError::from)?;
            Ok(Output {
                data: doc,
                ..Output::text(
                    "export",
                    format!("{what} exported as {} to {}", format.name(), file.display()),
                )
            })
        }
        None => Ok(Output {
            data: doc,
            ..Output::text("export", text)
        }),
    }
}

/// A file outside the run directory is the user's: never replaced (as `save` never replaces a
/// run). The run's own exports are its to refresh (`search --resume` writes them again).
fn refuse_to_replace(file: &Path, run_dir: &Path) -> Result<(), CommandError> {
    if !file.exists() {
        return Ok(());
    }
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let inside = match (
        file.parent()
            .and_then(|d| canonical(if d.as_os_str().is_empty() { Path::new(".") } else { d })),
        canonical(run_dir),
    ) {
        (Some(d), Some(r)) => d.starts_with(r),
        _ => false,
    };
    if inside {
        return Ok(());
    }
    Err(CommandError::Search(SearchError::Invalid(format!(
        "{} exists and is not this run's, so it was left as it is: choose another file name (or remove it first)",
        file.display()
    ))))
}

fn cmd_reset(sh: &mut Shell, args: &Args) -> Result<Output, CommandError> {
    let note = match args.path(0) {
        Some(dir) => {
            sh.session = None;
            sh.last_evaluate = None; // its trajectories belong to the session replaced
            sh.run_dir = dir.to_owned();
            ""
        }
        None => restart_note(sh),
    };
    // Built now, so a directory that holds a run is refused here rather than at the next step.
    let dir = sh.session()?.run_dir.clone();
    Ok(Output::text(
        "reset",
        format!("new session with the current configuration in {}{note}", dir.display()),
    ))
}

fn cmd_quit(_: &mut Shell, _: &Args) -> Result<Output, CommandError> {
    Ok(Output {
        quit: true,
        ..Output::text("quit", "bye")
    })
}

/// What can complete the word under the cursor: (start of the word, candidates). Driven by
/// the table: command names first, then each argument's kind. Paths are left to the front-end
/// (`ArgKind::Path` returns `None`).
pub fn completions(line: &str, pos: usize) -> Option<(usize, Vec<String>)> {
    let before = &line[..pos.min(line.len())];
    let start = before.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
    let word = &before[start..];
    let index = before[..start].split_whitespace().count();
    let pick = |all: Vec<String>| {
        Some((
            start,
            all.into_iter().filter(|c| c.starts_with(word)).collect::<Vec<_>>(),
        ))
    };
    if index == 0 {
        return pick(COMMANDS.iter().map(|c| c.name.to_owned()).collect());
    }
    let cmd = COMMANDS
        .iter()
        .find(|c| Some(c.name) == before.split_whitespace().next())?;
    let spec = cmd.args.get(index - 1).or(cmd.args.last().filter(|a| a.repeated))?;
    match spec.kind {
        ArgKind::Policy | ArgKind::PolicyOrCount => {
            let mut v: Vec<String> = [
                "best",
                "none",
                "autoaugment:cifar10",
                "autoaugment:svhn",
                "autoaugment:imagenet",
                "randaugment",
                "trivialaugment",
                "aws",
                "theta:",
                "subpolicies:(",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            if spec.kind == ArgKind::PolicyOrCount {
                v.push(EARLY.to_owned());
            }
            if let Some(rest) = word.strip_prefix("pair:") {
                let names = crate::augment::space::aws_names();
                let (head, tail) = rest
                    .split_once('+')
                    .map(|(a, b)| (format!("pair:{a}+"), b))
                    .unwrap_or(("pair:".into(), rest));
                v = names
                    .iter()
                    .filter(|n| n.starts_with(tail))
                    .map(|n| format!("{head}{n}"))
                    .collect();
            } else {
                v.push("pair:".into());
            }
            pick(v)
        }
        ArgKind::Stage => pick(Stage::names().iter().map(|s| s.to_string()).collect()),
        ArgKind::Chart => pick(ChartKind::names().iter().map(|s| s.to_string()).collect()),
        ArgKind::Format => pick(ExportFormat::names().iter().map(|s| s.to_string()).collect()),
        ArgKind::Model => pick(Arch::NAMES.iter().map(|s| s.to_string()).collect()),
        ArgKind::Data => pick(DataSpec::KINDS.iter().map(|s| s.to_string()).collect()),
        ArgKind::Text if cmd.name == "help" => pick(
            COMMANDS
                .iter()
                .map(|c| c.name.to_owned())
                .chain(["policies".to_owned()])
                .collect(),
        ),
        ArgKind::KeyValue => {
            // Nested settings by their dotted names (`slurm.partition=`), as `config` sets them.
            fn keys(prefix: &str, v: &Value, out: &mut Vec<String>) {
                let Some(map) = v.as_object() else { return };
                for (k, child) in map {
                    let name = format!("{prefix}{k}");
                    match child {
                        Value::Object(_) => keys(&format!("{name}."), child, out),
                        _ => out.push(format!("{name}=")),
                    }
                }
            }
            let mut v = Vec::new();
            keys("", &serde_json::to_value(SearchConfig::default()).ok()?, &mut v);
            pick(v)
        }
        _ => None,
    }
}

/// The usage still to type after a complete command word (`probe ` → `<policy>`).
pub fn usage_hint(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let cmd = COMMANDS.iter().find(|c| Some(&c.name) == words.first())?;
    if !line.ends_with(' ') {
        return None;
    }
    let rest: Vec<String> = cmd
        .args
        .iter()
        .skip(words.len() - 1)
        .map(|a| {
            if a.optional {
                format!("[{}]", a.name)
            } else {
                format!("<{}>", a.name)
            }
        })
        .collect();
    (!rest.is_empty()).then(|| rest.join(" "))
}
