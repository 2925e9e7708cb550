//! A session on disk: `session.json` (everything but tensors) naming the stage-1 snapshot by
//! checksum. Writing the snapshot first and `session.json` last makes that rename the one
//! commit of a primitive (src/checkpoint/ has the file-level guarantees).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::config::SearchConfig;
use super::error::SearchError;
use super::history::History;
use super::ppo::{PpoState, Trajectory};
use super::report::BestTheta;
use super::stage1::Stage1;
use crate::augment::space::NUM_PAIRS;
use crate::checkpoint::{self, CheckpointError, RunLock, SnapshotRef};
use crate::train::TrainerState;

const FORMAT: &str = "augwise-session/1";
pub(super) const STATE_FILE: &str = "session.json";
/// Where runs written before content-addressed snapshots kept their weights (still read).
const LEGACY_WEIGHTS_FILE: &str = "snapshot.safetensors";

/// Everything but the tensors, as written to `session.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SessionState {
    format: String,
    pub config: SearchConfig,
    pub pretrain_epochs_done: usize,
    pub ppo: PpoState,
    pub pending: Vec<Trajectory>,
    pub best: Option<BestTheta>,
    pub history: History,
    /// Stage 1's weights and momentum: the file and its checksum (absent before stage 1, and
    /// in runs written before snapshots were content-addressed, which used `snapshot.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRef>,
}

impl SessionState {
    /// The state of a session with these parts (`snapshot`: the file its run directory names).
    pub fn new(
        config: SearchConfig,
        pretrain_epochs_done: usize,
        ppo: PpoState,
        pending: Vec<Trajectory>,
        best: Option<BestTheta>,
        history: History,
        snapshot: Option<SnapshotRef>,
    ) -> Self {
        Self {
            format: FORMAT.into(),
            config,
            pretrain_epochs_done,
            ppo,
            pending,
            best,
            history,
            snapshot,
        }
    }

    /// What resume requires of a `session.json` before it trusts it (the snapshot aside):
    /// PPO's state sound, as many updates as the history records, pending trajectories whole.
    fn validate(&self) -> Result<(), String> {
        self.ppo.validate().map_err(|e| e.to_string())?;
        if self.ppo.updates != self.history.updates.len() {
            return Err(format!(
                "PPO has {} updates but the history records {}",
                self.ppo.updates,
                self.history.updates.len()
            ));
        }
        // A pending reward is an accuracy: anything else could never be updated from.
        let accuracy = |x: f64| (0.0..=1.0).contains(&x);
        if let Some(t) = self
            .pending
            .iter()
            .find(|t| t.counts.len() != NUM_PAIRS || !accuracy(t.reward) || !t.accuracies.iter().all(|&a| accuracy(a)))
        {
            return Err(format!(
                "pending trajectory {} has {} pair counts (expected {NUM_PAIRS}), or a reward ({}) or an epoch accuracy outside 0..=1",
                t.seed,
                t.counts.len(),
                t.reward
            ));
        }
        if let (Some(r), 0) = (&self.snapshot, self.pretrain_epochs_done) {
            return Err(format!(
                "it names a weights snapshot ({}) but says stage 1 has not run; one of the two was edited or damaged",
                r.file
            ));
        }
        Ok(())
    }
}

/// A run directory opened for resuming: its lock taken, `session.json` read and checked, the
/// snapshot's tensors read and verified (not yet fitted to a model).
pub(super) struct Stored {
    pub lock: RunLock,
    pub state: SessionState,
    pub state_file: PathBuf,
    /// The snapshot's tensors and the file they came from.
    pub tensors: Option<(Vec<(String, Tensor)>, PathBuf)>,
}

/// Open `dir`'s checkpoint: `session.json` whole and consistent, the snapshot it names present
/// with its recorded checksum.
pub(super) fn open(dir: &Path) -> Result<Stored, SearchError> {
    let state_file = dir.join(STATE_FILE);
    if !state_file.is_file() {
        // Not a run directory: say so without creating a lock file in it.
        return Err(CheckpointError::Foreign {
            path: state_file,
            why: "no session.json here".into(),
        }
        .into());
    }
    // An archived run on a read-only medium opens too, for showing; every write is refused.
    let lock = RunLock::acquire_or_read_only(dir)?;
    let state: SessionState = checkpoint::read_json(&state_file, FORMAT)?;
    let corrupt = |why: String| corrupt(&state_file, why);
    state.validate().map_err(corrupt)?;
    let legacy = dir.join(LEGACY_WEIGHTS_FILE);
    let tensors = match (&state.snapshot, state.pretrain_epochs_done) {
        (Some(r), _) => Some((checkpoint::read_snapshot(dir, r)?, dir.join(&r.file))),
        (None, 0) if legacy.exists() => {
            return Err(corrupt(format!(
                "it says stage 1 has not run, yet {} holds weights; one of the two was edited or damaged",
                legacy.display()
            )))
        }
        (None, 0) => None,
        (None, _) if legacy.exists() => Some((checkpoint::read_tensors(&legacy)?, legacy.clone())),
        (None, n) => {
            return Err(corrupt(format!(
                "it records {n} stage-1 epochs but names no weights snapshot"
            )))
        }
    };
    Ok(Stored {
        lock,
        state,
        state_file,
        tensors,
    })
}

/// Refuse a new run on `dir` when it holds one (its `session.json`), describing that run.
pub(super) fn refuse_existing(dir: &Path) -> Result<(), SearchError> {
    let file = dir.join(STATE_FILE);
    if !file.exists() {
        return Ok(());
    }
    // What the user is about to lose, as far as the file says (a damaged one is still a run).
    let state = crate::limits::read_text(&file, crate::limits::SESSION_FILE_BYTES)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let field = |path: &[&str]| {
        let mut v = state.as_ref()?;
        for key in path {
            v = v.get(key)?;
        }
        v.as_u64()
    };
    let what = match (field(&["pretrain_epochs_done"]), field(&["ppo", "updates"])) {
        (Some(0), _) => "nothing trained yet, but its records".to_owned(),
        (Some(e), Some(0) | None) => format!("{e} stage-1 epochs"),
        (Some(e), Some(u)) => format!("{e} stage-1 epochs, {u} update(s)"),
        _ => "a session.json".to_owned(),
    };
    Err(SearchError::RunExists {
        dir: dir.to_owned(),
        what,
    })
}

pub(super) fn corrupt(path: &Path, why: String) -> SearchError {
    SearchError::Checkpoint(CheckpointError::Corrupt {
        path: path.to_owned(),
        why,
    })
}

/// Write the checkpoint `state` to `dir`: `snapshot` first when given (stage 1 changed it,
/// or `dir` is new), then `session.json` naming it — the one rename that commits. Returns the
/// snapshot `session.json` now names. A state that would not read back (a non-finite number
/// serde would write as `null`) is refused before `session.json` is written, and a snapshot
/// written for it removed unless `keep` (the one the directory's last checkpoint names) is it.
/// `lock` is `dir`'s: the session's own, or the one `save` just took.
pub(super) fn write_checkpoint(
    dir: &Path,
    lock: &RunLock,
    mut state: SessionState,
    snapshot: Option<&TrainerState>,
    keep: Option<&SnapshotRef>,
) -> Result<Option<SnapshotRef>, CheckpointError> {
    lock.check_current()?;
    let state_file = dir.join(STATE_FILE);
    let refuse = |why: String| CheckpointError::Io {
        action: "write",
        path: state_file.clone(),
        why: format!("augwise will not write a checkpoint it could not read back: {why}"),
    };
    let check = |state: &SessionState| -> Result<Vec<u8>, CheckpointError> {
        let json = serde_json::to_vec_pretty(state).map_err(|e| refuse(e.to_string()))?;
        let back: SessionState = serde_json::from_slice(&json).map_err(|e| refuse(e.to_string()))?;
        back.validate().map_err(refuse)?;
        Ok(json)
    };
    let mut written = None;
    if let Some(s) = snapshot {
        let tensors = Stage1::to_tensors(s).map_err(|e| CheckpointError::Io {
            action: "serialise the snapshot for",
            path: dir.to_owned(),
            why: e.to_string(),
        })?;
        let r = checkpoint::write_snapshot(dir, &tensors)?;
        written = Some(r.clone());
        state.snapshot = Some(r);
    }
    let committed = check(&state).and_then(|json| checkpoint::write_atomic(&state_file, &json));
    if let Err(e) = committed {
        // The new snapshot is unreferenced: remove it unless the old checkpoint names it.
        if let Some(r) = written.filter(|r| Some(r) != keep) {
            let _ = std::fs::remove_file(dir.join(&r.file));
        }
        return Err(e);
    }
    checkpoint::remove_other_snapshots(dir, state.snapshot.as_ref());
    if state.snapshot.is_some() {
        // A run from before content addressing: its old file is unreferenced now.
        let _ = std::fs::remove_file(dir.join(LEGACY_WEIGHTS_FILE));
    }
    Ok(state.snapshot)
}
