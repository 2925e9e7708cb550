//! The notebook face of a search: the command table (`run("step 2")`) and the typed
//! primitives (`pretrain(3)`) on one value, with the same results, rendered richly by evcxr,
//! and progress lines streamed into the running cell.
//!
//! evcxr drops every variable when a cell is interrupted or panics. Every primitive has
//! already checkpointed, so the one-line recovery is `let mut s = Notebook::resume(DIR)?;`
//! (the library-level equivalent is `Session::resume(DIR)`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::command::{CommandError, Output, Shell};
use crate::policy::Policy;
use crate::present::chart::{Chart, ChartKind};
use crate::present::progress::{NotebookLines, ProgressRenderer};
use crate::present::Cell;
use crate::search::{
    CorrelateReport, EvaluateReport, FulltrainReport, History, PolicyReport, PretrainReport, ProbeReport, SampleReport,
    SearchConfig, SearchError, Session, StepReport, UpdateRecord,
};
use crate::suggest::Named;

/// A search driven from notebook cells.
pub struct Notebook {
    shell: Shell,
}

impl std::fmt::Debug for Notebook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notebook({})", self.shell.status())
    }
}

fn progress_lines(shell: &mut Shell) {
    let mut lines = NotebookLines::default();
    shell.set_progress(move |p| lines.render(p));
}

fn parse(spec: &str) -> Result<Policy, CommandError> {
    Policy::from_str(spec).map_err(|e| CommandError::Search(SearchError::from(e)))
}

impl Notebook {
    /// A new search in `run_dir`. Data and model load now, so a bad spec fails in this cell.
    /// A directory that holds a run is refused and left as it was (a notebook run again from
    /// the top): the error says how to resume it.
    pub fn new(config: SearchConfig, run_dir: impl Into<PathBuf>) -> Result<Self, CommandError> {
        let mut shell = Shell::new(config, run_dir);
        progress_lines(&mut shell);
        match shell.session() {
            Ok(_) => Ok(Self { shell }),
            Err(CommandError::Search(SearchError::RunExists { dir, what })) => {
                Err(CommandError::NotebookRunExists { dir, what })
            }
            Err(e) => Err(e),
        }
    }

    /// The run directory this search checkpoints into.
    pub fn run_dir(&self) -> &Path {
        &self.shell.run_dir
    }

    /// The search in `dir` as of its last checkpoint: the recovery after a kernel interrupt,
    /// a panic or a restart.
    pub fn resume(dir: impl AsRef<Path>) -> Result<Self, CommandError> {
        let mut shell = Shell::new(SearchConfig::default(), dir.as_ref());
        progress_lines(&mut shell);
        let note = shell.resume(dir)?;
        println!("{note}");
        Ok(Self { shell })
    }

    /// One command line, exactly as typed at the REPL's prompt (`help` lists them).
    pub fn run(&mut self, line: &str) -> Result<Output, CommandError> {
        self.shell.run(line)
    }

    /// Several command lines, stopping at the first error; one rich block for the cell.
    pub fn run_all(&mut self, lines: &[&str]) -> Result<Cell, CommandError> {
        let mut cell = Cell::new();
        for line in lines {
            cell.push(&self.shell.run(line)?);
        }
        Ok(cell)
    }

    /// The session itself, for everything the shortcuts below do not cover.
    pub fn session(&mut self) -> Result<&mut Session, CommandError> {
        self.shell.session()
    }

    /// Device, stage and update count.
    pub fn status(&self) -> String {
        self.shell.status()
    }

    pub fn pretrain(&mut self, epochs: impl Into<Option<usize>>) -> Result<PretrainReport, CommandError> {
        Ok(self.session()?.pretrain(epochs.into())?)
    }

    pub fn sample(&mut self, n: usize) -> Result<SampleReport, CommandError> {
        self.shell.sample(n)
    }

    pub fn evaluate(&mut self, k: impl Into<Option<usize>>) -> Result<EvaluateReport, CommandError> {
        self.shell.evaluate(k.into())
    }

    pub fn update(&mut self) -> Result<UpdateRecord, CommandError> {
        Ok(self.session()?.update()?)
    }

    pub fn step(&mut self, n: usize) -> Result<StepReport, CommandError> {
        self.shell.step(n)
    }

    pub fn policy(&mut self, top: usize) -> Result<PolicyReport, CommandError> {
        Ok(self.session()?.policy(top)?)
    }

    /// The proxy reward of a policy spec (`autoaugment:cifar10`, `pair:Rotate:20+Invert`, …).
    pub fn probe(&mut self, spec: &str) -> Result<ProbeReport, CommandError> {
        let p = parse(spec)?;
        Ok(self.session()?.probe(&p, None)?)
    }

    /// Paired proxy comparison of policy specs with `k` trajectories each, common random
    /// numbers: difference, 95% interval, p-value, verdict. Without `k`, two specs are compared
    /// pair by pair until the evidence suffices ([`Notebook::compare_early`]), more specs with
    /// the probe count each.
    pub fn compare(
        &mut self,
        specs: &[&str],
        k: impl Into<Option<usize>>,
    ) -> Result<crate::search::CompareReport, CommandError> {
        let k = k.into();
        if let ([a, b], None) = (specs, k) {
            return self.compare_early(a, b, None);
        }
        let policies = specs.iter().map(|s| parse(s)).collect::<Result<Vec<_>, _>>()?;
        self.shell.compare(&policies, k)
    }

    /// Two policy specs compared pair by pair until the evidence suffices (anytime-valid),
    /// at most `max_k` pairs (default 20): `compare A B early [max_k]`.
    pub fn compare_early(
        &mut self,
        a: &str,
        b: &str,
        max_k: impl Into<Option<usize>>,
    ) -> Result<crate::search::CompareReport, CommandError> {
        let (a, b) = (parse(a)?, parse(b)?);
        self.shell.compare_early(&a, &b, max_k.into())
    }

    /// The search against its noise-only null (`replicates` null searches, default 100).
    pub fn null(&mut self, replicates: impl Into<Option<usize>>) -> Result<crate::search::NullReport, CommandError> {
        Ok(self.session()?.null(replicates.into())?)
    }

    pub fn fulltrain(&mut self, spec: &str, epochs: impl Into<Option<usize>>) -> Result<FulltrainReport, CommandError> {
        let p = parse(spec)?;
        Ok(self.session()?.fulltrain(&p, epochs.into())?)
    }

    pub fn correlate(&mut self, specs: &[&str]) -> Result<CorrelateReport, CommandError> {
        let policies = specs.iter().map(|s| parse(s)).collect::<Result<Vec<_>, _>>()?;
        self.shell.correlate(&policies)
    }

    /// What each of the 36 operations does to validation image `index`.
    pub fn gallery(&mut self, index: usize) -> Result<crate::search::OpGallery, CommandError> {
        Ok(self.session()?.gallery(index)?)
    }

    pub fn history(&mut self) -> Result<History, CommandError> {
        Ok(self.session()?.history.clone())
    }

    /// A chart by name (`rewards`, `accuracy`, `theta`, `marginals`, `images`, `ops`, `probes`,
    /// `compare`, `correlate`), without writing files (`run("plot …")` writes them).
    pub fn chart(&mut self, name: &str) -> Result<Chart, CommandError> {
        let kind = ChartKind::parse_named(name).map_err(|message| CommandError::Usage {
            command: "chart".into(),
            message,
            usage: "chart(\"<chart>\")".into(),
        })?;
        self.shell.chart(kind)
    }
}
