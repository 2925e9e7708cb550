//! The AWS search as step-wise primitives on a resumable [`Session`]: `pretrain` (stage 1,
//! shared weights), `sample` (pairs from θ), `evaluate` (stage-2 trajectories), `update`
//! (PPO), and around them `step`, `probe`, `fulltrain`, `correlate` and `explain`.

mod config;
mod error;
mod explain;
mod history;
pub mod null;
mod parts;
pub mod ppo;
mod probe;
pub mod progress;
mod report;
mod sample;
mod scalars;
pub mod score;
pub mod sequential;
mod session;
mod slurm;
mod stage1;
pub mod stats;
mod store;
mod trajectory;
mod update;
mod wire;
mod worker;

use std::path::PathBuf;

pub use config::{DataOrder, Executor, FulltrainSchedule, Recipe, SearchConfig, SlurmConfig};
pub use error::{SearchError, SlurmError};
pub use explain::{explain, Topic};
pub use history::History;
pub use null::NullReport;
pub use ppo::{Diverged, PpoConfig, PpoOutcome, PpoState, Trajectory};
pub use progress::{Progress, Purpose};

pub use probe::EARLY_MAX_DEFAULT;
pub use report::*;
pub use session::Session;
pub use slurm::reason_needs_a_change;
pub use trajectory::{best_epochs, TrajectorySeeds};
pub use worker::run_worker;

/// Stream ids for [`crate::rng::Rng::derive`] and [`crate::rng::mix`]: one per source of
/// randomness, so adding a draw to one never shifts another's numbers.
mod stream {
    pub const TRAJECTORY: u64 = 11;
    pub const PROBE: u64 = 12;
    pub const SAMPLE: u64 = 13;
    pub const FULLTRAIN: u64 = 14;
    pub const NULL: u64 = 15;
    pub const BOOTSTRAP: u64 = 16;
    /// The `pairs_per_trajectory` variant's up-front draws, per trajectory.
    pub const PAIRS_DRAWN: u64 = 17;
    /// A trajectory's own data order (`DataOrder::PerTrajectory`).
    pub const ORDER: u64 = 18;
}

/// Where runs go unless told otherwise.
pub fn default_run_dir() -> PathBuf {
    PathBuf::from("runs").join("latest")
}
