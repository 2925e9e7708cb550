//! What a search has done so far: stage 1's epochs, the updates, probes, retrains and the
//! last null — kept in every checkpoint, drawn by the reward and accuracy charts.

use serde::{Deserialize, Serialize};

use super::{FulltrainReport, ProbeReport, UpdateRecord};

/// What happened so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub pretrain: Vec<crate::train::EpochReport>,
    pub updates: Vec<UpdateRecord>,
    pub probes: Vec<ProbeReport>,
    pub fulltrains: Vec<FulltrainReport>,
    /// The last noise-only null (`null`), judged at `null.updates` updates.
    #[serde(default)]
    pub null: Option<super::NullReport>,
}
