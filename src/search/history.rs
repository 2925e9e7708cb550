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

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stage 1: {} epochs", self.pretrain.len())?;
        for u in &self.updates {
            write!(f, "\n{u}")?;
        }
        for p in &self.probes {
            write!(f, "\n{p}")?;
        }
        for t in &self.fulltrains {
            write!(
                f,
                "\nfull training with {}: final test accuracy {:.2}%",
                t.policy,
                100.0 * t.final_test_accuracy()
            )?;
        }
        if !self.updates.is_empty() {
            match &self.null {
                Some(n) if n.updates == self.updates.len() => write!(f, "\n{n}")?,
                Some(n) => write!(
                    f,
                    "\n(the null was run at update {}; `null` again to judge θ now)",
                    n.updates
                )?,
                None => write!(
                    f,
                    "\nθ has not been judged against its noise-only null: `null` runs it (seconds)"
                )?,
            }
        }
        Ok(())
    }
}

impl crate::display::Rich for History {
    /// The reward and accuracy charts over the text.
    fn html(&self) -> String {
        let charts: String = [crate::chart::rewards(self), crate::chart::accuracy(self)]
            .iter()
            .flatten()
            .map(crate::display::chart_html)
            .collect();
        charts + &crate::display::pre(&self.to_string())
    }
}

crate::evcxr_display!(History);
