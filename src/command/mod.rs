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
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Chart(#[from] crate::present::chart::ChartError),
}
