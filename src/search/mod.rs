//! The AWS search as step-wise primitives on a resumable [`Session`]: `pretrain` (stage 1,
//! shared weights), `sample` (pairs from θ), `evaluate` (stage-2 trajectories), `update`
//! (PPO), and around them `step`, `probe`, `fulltrain`, `correlate` and `explain`.

mod config;
mod error;
mod explain;
mod history;
pub mod null;
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

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use config::{DataOrder, FulltrainSchedule, Recipe, SearchConfig};
pub use error::SearchError;
pub use explain::{explain, Stage};
pub use history::History;
pub use null::NullReport;
pub use ppo::{PpoConfig, PpoOutcome, PpoState, Trajectory};
pub use progress::{Progress, Purpose};

pub use probe::EARLY_MAX_DEFAULT;
pub use report::*;
pub use session::Session;
pub use slurm::{reason_needs_a_change, run_worker, Executor, SlurmConfig};
pub use trajectory::{best_epochs, Diverged, TrajectorySeeds};

/// The θ with the best mean reward so far (what a search returns, not the last θ): the θ
/// update `update`'s trajectories ran under, i.e. θ after `update − 1` updates. `export`,
/// `policy`, `null` and the θ charts all mean this one (`Session::best_theta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestTheta {
    pub update: usize,
    pub mean_reward: f64,
    pub theta: crate::policy::Theta,
    /// Its update's mean reward with the 95% interval over that update's trajectories.
    #[serde(default)]
    pub reward: stats::Estimate,
    /// How far the highest of the updates' noisy means lies above its θ's true reward on
    /// average when no θ is better than another (`stats::selection_bias`): the best is
    /// chosen *because* its noise was high.
    #[serde(default)]
    pub selection_bias: f64,
}

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
