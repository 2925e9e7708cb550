//! The one command table: name, arguments, help and handler for every command a user types in
//! the REPL or passes to `run("…")` in a notebook. It generates `help`, checks arguments before
//! anything runs (with the nearest valid name on a typo), and returns structured [`Output`];
//! front-ends only render it.

mod args;
mod completion;
mod export;
mod handlers;
mod output;
mod shell;
mod table;

pub use args::{split, Arg, Args};
pub use completion::{completions, usage_hint};
pub use export::ExportFormat;
pub use output::Output;
pub use shell::{free_run_dir, OnExistingRun, Shell};
pub use table::{lookup, ArgKind, ArgSpec, Command, COMMANDS};

use crate::search::SearchError;

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
    /// A command given without the argument it cannot do without.
    #[error("{command} needs {what}")]
    Missing { command: &'static str, what: &'static str },
    #[error("`best` is the search's best θ, and this session has no update yet: run `step` first, or `resume` a run that has")]
    NoBestYet,
    /// `export` to a file that is not this run's: never overwritten.
    #[error("{} exists and is not this run's, so it was left as it is: choose another file name (or remove it first)", path.display())]
    FileExists { path: std::path::PathBuf },
    #[error("`theta` is the search's logits, which only the best θ has (`export theta` or `export theta best`); export `{policy}` as json or csv")]
    NoLogits { policy: String },
    #[error("`{policy}` draws no AWS pairs, so it has no pair table: export it as json")]
    NoPairTable { policy: String },
    /// A notebook's `Notebook::new` on a directory that holds a run.
    #[error("{} already holds a run ({what}); nothing in it was changed. `let mut s = Notebook::resume({:?})?;` continues it; for a new run give Notebook::new another directory (or delete that one)", dir.display(), dir.display().to_string())]
    NotebookRunExists { dir: std::path::PathBuf, what: String },
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Chart(#[from] crate::present::chart::ChartError),
}
