//! augwise — the AWS auto-augment search ("Improving Auto-Augment via Augmentation-Wise
//! Weight Sharing", NeurIPS 2020) on libtorch, as step-wise commands.
//!
//! Everything that computes lives here; the REPL (`repl/`) and the Jupyter kernel (`kernel/`)
//! are thin front-ends. See docs/method.md for the method and docs/architecture.md for the map.

pub mod amp;
pub mod augment;
pub mod checkpoint;
pub mod command;
pub mod data;
pub mod device;
pub mod limits;
pub mod model;
pub mod notebook;
pub mod policy;
pub mod present;
pub mod rng;
pub mod search;
pub mod suggest;
pub mod tensorboard;
pub mod train;

/// One `use augwise::prelude::*;` for notebooks and examples.
pub mod prelude {
    pub use crate::augment::{Normalize, Pipeline};
    pub use crate::command::{Output, Shell};
    pub use crate::data::{DataSpec, Dataset, DatasetInfo, Source, SplitConfig, Splits, Synthetic, SyntheticKind};
    pub use crate::device::{DeviceChoice, DeviceSpec, Diagnostics};
    pub use crate::model::{Arch, Model};
    pub use crate::notebook::Notebook;
    pub use crate::policy::{Policy, Theta};
    pub use crate::present::chart::Chart;
    pub use crate::present::{Cell, Rich, Table};
    pub use crate::search::{Executor, Pairing, SearchConfig, SearchError, Session, SlurmConfig};
    pub use crate::train::{CancelFlag, EpochReport, FitEvent, LrSchedule, SgdConfig, TrainConfig, Trainer};
    pub use tch::{Device, Kind, Tensor};
}
