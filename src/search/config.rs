//! What defines a search: [`SearchConfig`] (stored in every checkpoint), its presets, the
//! shared training [`Recipe`], the data order of stage 2 and the retrain's schedule.

use serde::{Deserialize, Serialize};

use super::{null, PpoConfig, SearchError};
use crate::data::{DataSpec, SplitConfig};
use crate::device::DeviceSpec;
use crate::model::Arch;

/// Everything that defines a search; stored in every checkpoint and report header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchConfig {
    pub data: DataSpec,
    pub split: SplitConfig,
    pub model: Arch,
    pub device: DeviceSpec,
    pub seed: u64,
    /// Stage 1 length (the cosine schedule spans this many epochs).
    pub pretrain_epochs: usize,
    /// Stage 1 peak learning rate (official 0.2; warm-up starts at a quarter of it).
    pub pretrain_lr: f64,
    pub batch_size: i64,
    /// Stage 2: epochs per trajectory (official 10, 5% of stage 1).
    pub finetune_epochs: usize,
    /// Stage 2 rate; `None` holds stage 1's final rate (official 0.001).
    pub finetune_lr: Option<f64>,
    /// Reward = mean of this many best epoch accuracies (official 2).
    pub reward_top: usize,
    /// Trajectories per update (official 8, one per GPU).
    pub trajectories: usize,
    /// Updates of a whole search (`run`, the main job; official 350).
    pub updates: usize,
    pub ppo: PpoConfig,
    /// Trajectories a `probe` averages.
    pub probe_trajectories: usize,
    /// Epochs of `fulltrain` (official 300).
    pub fulltrain_epochs: usize,
    /// `fulltrain`'s rate: warm-up then cosine over the run (official retrain: 0.1 → 0.4 over
    /// 1.5 epochs, cosine to 0).
    pub fulltrain_schedule: FulltrainSchedule,
    /// Trajectories of one update share crops, flips and Cutout as well as the data order,
    /// so their rewards differ only through θ's draws (ours, a variance reduction; the
    /// official trajectories share nothing).
    pub common_random_numbers: bool,
    /// Whose data order a stage-2 trajectory trains on: `per_trajectory` (the default) gives
    /// trajectory i its own order, shared by every policy's trajectory i in a `probe` or
    /// `compare` (common random numbers kept) and by an update's trajectories under
    /// `common_random_numbers`; `shared` replays stage 1's order in every trajectory, which
    /// leaves data-order noise out of every interval (runs written before this key existed
    /// read as `shared`, so they resume unchanged).
    #[serde(default = "DataOrder::before_the_key")]
    pub data_order: DataOrder,
    /// Null searches `null` runs by default.
    pub null_replicates: usize,
    /// 0 (the paper): every image of a trajectory draws its pair from θ. K > 0 (ours, a
    /// variance reduction, off in every preset): each trajectory draws K pairs from θ up front
    /// and its images draw among those K. A trajectory's op shares then differ by ~1/√K
    /// instead of ~1/√(images × epochs), so its reward carries far more information about θ's
    /// draws (docs/signal-study.md); PPO's update and the null are unchanged in form.
    pub pairs_per_trajectory: usize,
    /// Cutout side; `None` = the dataset default (size/2).
    pub cutout: Option<i64>,
    /// Devices the trajectories of one update run on in parallel, one thread each; empty =
    /// every CUDA device when the session is on CUDA and there are several (docs/method.md: one
    /// trajectory per GPU), else the session's device alone.
    pub trajectory_devices: Vec<DeviceSpec>,
    /// Trajectories trained together as one grouped model on one device (`Model::members`):
    /// 0 = automatic (8 on CUDA, where one small ResNet leaves the GPU idle; 1 on the CPU,
    /// where it does not pay — BENCHMARKS.md), 1 = one after another. Results equal the
    /// sequential ones up to float error (tests/batched.rs).
    pub trajectory_batch: usize,
    /// Forward precision of every stage: `bf16` autocasts on CUDA (no loss scaling needed),
    /// and does nothing on the CPU.
    pub precision: crate::amp::Precision,
    /// Channels-last weights and inputs on CUDA.
    pub channels_last: bool,
    /// What every stage trains with: SGD, label smoothing, clipping, stage 1's schedule shape.
    pub recipe: Recipe,
    /// Where trajectories run: `local` (this machine) or `slurm` (a job array per request).
    /// How, not what: results are the same either way, and it may change mid-search.
    pub executor: Executor,
    /// The slurm executor's `sbatch` settings.
    pub slurm: SlurmConfig,
}

/// Where a stage-2 trajectory's data order comes from ([`SearchConfig::data_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataOrder {
    /// Stage 1's order in every trajectory.
    Shared,
    /// An order of trajectory i's own.
    PerTrajectory,
}

impl DataOrder {
    /// What a checkpoint without `data_order` ran with.
    fn before_the_key() -> Self {
        Self::Shared
    }
}

/// The training recipe all stages share — docs/method.md's settings by default. Stage 2 and
/// `fulltrain` start from it and change only the rate schedule and the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recipe {
    pub momentum: f64,
    pub nesterov: bool,
    /// L2 weight decay, not applied to BatchNorm weights and biases.
    pub weight_decay: f64,
    pub label_smoothing: f64,
    /// Global gradient-norm bound; `None` disables clipping.
    pub grad_clip: Option<f64>,
    /// Stage 1's warm-up starts at this fraction of `pretrain_lr`…
    pub warmup_start: f64,
    /// …and reaches `pretrain_lr` after this many epochs (at most the whole schedule).
    pub warmup_epochs: f64,
    /// Where stage 1's cosine ends; stage 2 holds this rate unless `finetune_lr` is set.
    pub lr_floor: f64,
    /// Images per batch when measuring accuracy.
    pub eval_batch_size: i64,
}

impl Default for Recipe {
    /// docs/method.md: Nesterov SGD (momentum 0.9, weight decay 1e-4), label smoothing 0.05,
    /// gradient-norm clip 3.0, warm-up over one epoch from a quarter of the peak rate, cosine
    /// to 0.001.
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
            label_smoothing: 0.05,
            grad_clip: Some(3.0),
            warmup_start: 0.25,
            warmup_epochs: 1.0,
            lr_floor: 0.001,
            eval_batch_size: 500,
        }
    }
}

impl Recipe {
    fn validate(&self) -> Result<(), String> {
        // Each written so that NaN fails too.
        let ok = [
            ("momentum", (0.0..1.0).contains(&self.momentum)),
            (
                "weight_decay",
                self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
            ),
            ("label_smoothing", (0.0..1.0).contains(&self.label_smoothing)),
            ("grad_clip", self.grad_clip.is_none_or(|c| c > 0.0 && c.is_finite())),
            ("warmup_start", self.warmup_start > 0.0 && self.warmup_start <= 1.0),
            (
                "warmup_epochs",
                self.warmup_epochs >= 0.0 && self.warmup_epochs.is_finite(),
            ),
            ("lr_floor", self.lr_floor >= 0.0 && self.lr_floor.is_finite()),
        ];
        if let Some((key, _)) = ok.iter().find(|(_, fine)| !fine) {
            let range = match *key {
                "momentum" | "label_smoothing" => "in [0, 1)",
                "warmup_start" => "in (0, 1] (a fraction of pretrain_lr)",
                "grad_clip" => "positive, or null for no clipping",
                _ => "finite and ≥ 0",
            };
            return Err(format!("recipe.{key} must be {range}"));
        }
        crate::limits::BATCH
            .check(u64::try_from(self.eval_batch_size).unwrap_or(0))
            .map_err(|e| format!("recipe.eval_batch_size: {e}"))?;
        Ok(())
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self::cpu()
    }
}

impl SearchConfig {
    /// Sized so the whole demo search (pretrain, 8 updates of 4 trajectories) runs in a few
    /// minutes on 2 CPU cores on Fashion-MNIST and still shows rewards and θ moving. Stage 2
    /// fine-tunes at 0.02 rather than stage 1's final rate: with 8 pretrain epochs the final
    /// rate would barely move the weights, and the rewards would be noise.
    pub fn cpu() -> Self {
        Self {
            data: DataSpec::default(),
            split: SplitConfig::default()
                .with_limit(Some(2500))
                .with_test_limit(Some(2000)),
            model: Arch::RESNET20,
            device: DeviceSpec::Auto,
            seed: 0,
            pretrain_epochs: 8,
            pretrain_lr: 0.2,
            batch_size: 128,
            finetune_epochs: 2,
            finetune_lr: Some(0.02),
            reward_top: 2,
            trajectories: 4,
            updates: 8,
            ppo: PpoConfig::default(),
            probe_trajectories: 4,
            fulltrain_epochs: 6,
            fulltrain_schedule: FulltrainSchedule::like_stage1(0.2),
            common_random_numbers: false,
            data_order: DataOrder::PerTrajectory,
            null_replicates: 100,
            pairs_per_trajectory: 0,
            cutout: None,
            trajectory_devices: Vec::new(),
            trajectory_batch: 0,
            precision: crate::amp::Precision::Fp32,
            channels_last: false,
            recipe: Recipe::default(),
            executor: Executor::Local,
            slurm: SlurmConfig::default(),
        }
    }

    /// The notebooks' shared size: the `cpu` preset on 2,000 images (1,000 test), 4 pretrain
    /// epochs and 3 trajectories per update — a notebook runs in a few minutes on 2 cores.
    pub fn notebook() -> Self {
        Self::cpu()
            .with_split(
                SplitConfig::default()
                    .with_limit(Some(2000))
                    .with_test_limit(Some(1000)),
            )
            .with_pretrain_epochs(4)
            .with_finetune(2, Some(0.02))
            .with_trajectories(3)
    }

    /// docs/method.md's official settings (WRN-28-10 on CIFAR-10, 40k/10k split, 200 + 10 epochs,
    /// 8 trajectories, 350 updates, 300-epoch retrain) — for a GPU. `data` expects CIFAR-10's
    /// binary version in `data/cifar10` (`augwise download cifar10`).
    pub fn paper() -> Self {
        Self {
            data: DataSpec::Cifar10(crate::data::data_root().join("cifar10")),
            split: SplitConfig::default(),
            model: Arch::WRN_28_10,
            pretrain_epochs: 200,
            batch_size: 256,
            finetune_epochs: 10,
            finetune_lr: None,
            trajectories: 8,
            updates: 350,
            fulltrain_epochs: 300,
            fulltrain_schedule: FulltrainSchedule::OFFICIAL,
            ..Self::cpu()
        }
    }

    /// The demo on one GPU: all of Fashion-MNIST (48k/12k/10k), longer stages, 8
    /// trajectories — minutes, not hours, and no dataset download.
    pub fn gpu() -> Self {
        Self {
            split: SplitConfig::default(),
            batch_size: 256,
            pretrain_epochs: 30,
            finetune_epochs: 3,
            finetune_lr: Some(0.02),
            trajectories: 8,
            updates: 20,
            fulltrain_epochs: 30,
            ..Self::cpu()
        }
    }

    /// A search on 2 CPU cores whose verdict can find something: the `cpu` preset with the
    /// `pairs_per_trajectory` variant (16 pairs drawn per trajectory) and as many updates of 8
    /// trajectories as the calibrated simulation needs to find the label-breaking family in
    /// most seeds (80: ≈ 80 min on 2 cores; docs/signal-study.md §8a has its recorded run;
    /// `examples/cpu_search.rs` runs it).
    pub fn cpu_search() -> Self {
        Self {
            trajectories: 8,
            updates: CPU_SEARCH_UPDATES,
            pairs_per_trajectory: 16,
            ..Self::cpu()
        }
    }

    /// The names `preset` takes.
    pub const PRESETS: [&'static str; 5] = ["cpu", "gpu", "paper", "notebook", "cpu-search"];

    /// A preset by name: `cpu`, `gpu`, `paper`, `notebook` or `cpu-search`.
    pub fn preset(name: &str) -> Result<Self, SearchError> {
        match name {
            "cpu" | "demo" => Ok(Self::cpu()),
            "gpu" => Ok(Self::gpu()),
            "paper" => Ok(Self::paper()),
            "notebook" => Ok(Self::notebook()),
            "cpu-search" => Ok(Self::cpu_search()),
            other => Err(SearchError::UnknownPreset {
                name: other.to_owned(),
                known: &Self::PRESETS,
            }),
        }
    }

    pub fn with_data(mut self, d: DataSpec) -> Self {
        self.data = d;
        self
    }
    pub fn with_split(mut self, s: SplitConfig) -> Self {
        self.split = s;
        self
    }
    pub fn with_model(mut self, m: Arch) -> Self {
        self.model = m;
        self
    }
    pub fn with_device(mut self, d: DeviceSpec) -> Self {
        self.device = d;
        self
    }
    pub fn with_seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn with_pretrain_epochs(mut self, e: usize) -> Self {
        self.pretrain_epochs = e;
        self
    }
    pub fn with_batch_size(mut self, b: i64) -> Self {
        self.batch_size = b;
        self
    }
    pub fn with_finetune(mut self, epochs: usize, lr: Option<f64>) -> Self {
        self.finetune_epochs = epochs;
        self.finetune_lr = lr;
        self
    }
    pub fn with_trajectories(mut self, k: usize) -> Self {
        self.trajectories = k;
        self
    }
    pub fn with_updates(mut self, u: usize) -> Self {
        self.updates = u;
        self
    }
    pub fn with_ppo(mut self, p: PpoConfig) -> Self {
        self.ppo = p;
        self
    }
    pub fn with_fulltrain_epochs(mut self, e: usize) -> Self {
        self.fulltrain_epochs = e;
        self
    }
    /// The `pairs_per_trajectory` variant (0: per image, the paper).
    pub fn with_pairs_per_trajectory(mut self, k: usize) -> Self {
        self.pairs_per_trajectory = k;
        self
    }

    pub fn with_cutout(mut self, c: Option<i64>) -> Self {
        self.cutout = c;
        self
    }
    /// Where trajectories run (`Executor::Slurm` submits job arrays with `self.slurm`).
    pub fn with_executor(mut self, e: Executor) -> Self {
        self.executor = e;
        self
    }
    pub fn with_slurm(mut self, s: SlurmConfig) -> Self {
        self.slurm = s;
        self
    }

    /// Whether `other` is the same search run elsewhere: equal but for where trajectories run
    /// (`executor`, `slurm`), which a started session may change.
    pub fn same_search(&self, other: &SearchConfig) -> bool {
        let strip = |c: &SearchConfig| SearchConfig {
            executor: Executor::Local,
            slurm: SlurmConfig::default(),
            ..c.clone()
        };
        strip(self) == strip(other)
    }

    /// Stage 1's training config: the recipe, with a warm-up to `pretrain_lr` and a cosine to
    /// the recipe's floor at `pretrain_epochs`; stage 2 and `fulltrain` start from it.
    pub fn stage1_train_config(&self) -> crate::train::TrainConfig {
        let r = &self.recipe;
        crate::train::TrainConfig {
            batch_size: self.batch_size,
            eval_batch_size: r.eval_batch_size,
            sgd: crate::train::SgdConfig {
                momentum: r.momentum,
                nesterov: r.nesterov,
                weight_decay: r.weight_decay,
            },
            label_smoothing: r.label_smoothing,
            grad_clip: r.grad_clip,
            ..crate::train::TrainConfig::default()
        }
        .with_seed(self.seed)
        .with_precision(self.precision)
        .with_channels_last(self.channels_last)
        .with_schedule(crate::train::LrSchedule::WarmupCosine {
            start: self.pretrain_lr * r.warmup_start,
            peak: self.pretrain_lr,
            floor: r.lr_floor,
            warmup_epochs: r.warmup_epochs.min(self.pretrain_epochs as f64),
            total_epochs: self.pretrain_epochs as f64,
        })
    }

    /// Stage 2's constant rate: `finetune_lr`, else where stage 1's schedule ends.
    pub fn finetune_rate(&self) -> f64 {
        self.finetune_lr
            .unwrap_or_else(|| self.stage1_train_config().schedule.final_lr())
    }

    /// Set one field from `key=value` (the `config` command); values parse as JSON, or as a
    /// plain string for string fields.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SearchError> {
        let mut doc = serde_json::to_value(&*self).map_err(|e| SearchError::Serialise {
            what: "the configuration",
            why: e.to_string(),
        })?;
        let keys: Vec<String> = doc.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        let path: Vec<&str> = key.split('.').collect();
        let mut slot = &mut doc;
        for p in &path {
            slot = slot.get_mut(*p).ok_or_else(|| SearchError::UnknownConfigKey {
                key: key.to_owned(),
                keys: keys.clone(),
            })?;
        }
        *slot = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
        let updated: SearchConfig = serde_json::from_value(doc).map_err(|e| SearchError::ConfigValue {
            key: key.to_owned(),
            value: value.to_owned(),
            why: e.to_string(),
        })?;
        updated.validate()?;
        *self = updated;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), SearchError> {
        let bad = |m: &str| Err(SearchError::Config(m.to_owned()));
        if self.pretrain_epochs == 0 {
            return bad("pretrain_epochs must be at least 1");
        }
        if self.finetune_epochs == 0 || self.reward_top == 0 {
            return bad("finetune_epochs and reward_top must be at least 1");
        }
        if self.trajectories == 0 || self.probe_trajectories == 0 {
            return bad("trajectories and probe_trajectories must be at least 1");
        }
        if !(2..=null::MAX_REPLICATES).contains(&self.null_replicates) {
            return bad("null_replicates must be between 2 and 10000");
        }
        use crate::limits::{self, Limit};
        let bounded: [(&str, usize, &Limit); 10] = [
            ("pretrain_epochs", self.pretrain_epochs, &limits::EPOCHS),
            ("fulltrain_epochs", self.fulltrain_epochs, &limits::EPOCHS),
            ("finetune_epochs", self.finetune_epochs, &limits::FINETUNE_EPOCHS),
            ("reward_top", self.reward_top, &limits::FINETUNE_EPOCHS),
            ("trajectories", self.trajectories, &limits::TRAJECTORIES),
            ("probe_trajectories", self.probe_trajectories, &limits::TRAJECTORIES),
            ("updates", self.updates, &limits::UPDATES),
            (
                "batch_size",
                usize::try_from(self.batch_size).unwrap_or(0),
                &limits::BATCH,
            ),
            ("trajectory_batch", self.trajectory_batch, &limits::TRAJECTORY_BATCH),
            (
                "pairs_per_trajectory",
                self.pairs_per_trajectory,
                &limits::PAIRS_PER_TRAJECTORY,
            ),
        ];
        for (key, n, limit) in bounded {
            if let Err(e) = limit.check_usize(n) {
                return Err(SearchError::Config(format!("{key}: {e}")));
            }
        }
        self.recipe.validate().map_err(SearchError::Config)?;
        self.ppo.validate().map_err(SearchError::Config)?;
        self.slurm.validate().map_err(SearchError::Config)?;
        if self.cutout.is_some_and(|c| !(0..=4096).contains(&c)) {
            return bad("cutout must be between 0 and 4096 pixels");
        }
        let f = &self.fulltrain_schedule;
        // Finite and not negative, so that NaN and infinities fail too; no upper bound, since a
        // rate that makes training diverge is a lesson the divergence warning teaches.
        let rate = |x: f64| x.is_finite() && x >= 0.0;
        if !(rate(f.start) && rate(f.peak) && f.peak > 0.0 && rate(f.floor) && (0.0..=1e4).contains(&f.warmup_epochs)) {
            return bad("fulltrain_schedule: start and floor must be finite and ≥ 0, peak finite and > 0, warmup_epochs in [0, 10000]");
        }
        if self.batch_size < 2 {
            return bad("batch_size must be at least 2 (BatchNorm)");
        }
        if !(rate(self.pretrain_lr) && self.pretrain_lr > 0.0)
            || self.finetune_lr.is_some_and(|l| !(rate(l) && l > 0.0))
        {
            return bad("pretrain_lr and finetune_lr must be finite and > 0");
        }
        Ok(())
    }
}

/// Warm-up from `start` to `peak` over `warmup_epochs`, then cosine to `floor` at the end of
/// however many epochs the run has.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FulltrainSchedule {
    pub start: f64,
    pub peak: f64,
    pub warmup_epochs: f64,
    pub floor: f64,
}

impl FulltrainSchedule {
    /// The official retrain: 0.1 → 0.4 over 1.5 epochs, cosine to 0.
    pub const OFFICIAL: Self = Self {
        start: 0.1,
        peak: 0.4,
        warmup_epochs: 1.5,
        floor: 0.0,
    };

    /// Stage 1's shape (a quarter of `peak` → `peak` in one epoch, cosine to 0.001): the CPU
    /// presets' short retrains.
    pub fn like_stage1(peak: f64) -> Self {
        Self {
            start: peak / 4.0,
            peak,
            warmup_epochs: 1.0,
            floor: 0.001,
        }
    }

    pub fn for_epochs(&self, epochs: usize) -> crate::train::LrSchedule {
        crate::train::LrSchedule::WarmupCosine {
            start: self.start,
            peak: self.peak,
            floor: self.floor,
            warmup_epochs: self.warmup_epochs.min(epochs as f64),
            total_epochs: epochs as f64,
        }
    }
}

impl Default for FulltrainSchedule {
    fn default() -> Self {
        Self::like_stage1(0.2)
    }
}

/// Updates of the `cpu-search` preset: the fewest whose verdict finds the label-breaking family
/// in most seeds of the simulation calibrated on measured noise (11 of 16 at 80 × 8, 7 of 16 at
/// 40 × 8; docs/signal-study.md §8) — about 2 hours on 2 cores.
const CPU_SEARCH_UPDATES: usize = 80;

/// Where a request's trajectories run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// Threads on this machine's devices (grouped models on one GPU).
    #[default]
    Local,
    /// One Slurm job array per request (`SearchConfig::slurm` says how).
    Slurm,
}

/// How the slurm executor submits: what a user of `sbatch` would pass. Empty strings leave the
/// cluster's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlurmConfig {
    /// `--partition`.
    pub partition: String,
    /// `--time` of one trajectory task, in Slurm's format (`30:00`, `1-00:00:00`).
    pub time: String,
    /// `--gres` (`gpu:1` for one GPU per trajectory).
    pub gres: String,
    /// `--cpus-per-task`; 0 = Slurm's default.
    pub cpus_per_task: usize,
    /// `--mem` (`16G`).
    pub mem: String,
    /// Further sbatch options, one word each (`--account=ml`, `--qos=long`); in `config`
    /// also as one string, split at spaces (`slurm.extra="--account=ml --qos=long"`).
    #[serde(deserialize_with = "words")]
    pub extra: Vec<String>,
    /// The shell command a task runs before `worker DIR` (`srun /opt/augwise/bin/augwise`, or a
    /// module load first); empty = the `AUGWISE_WORKER` variable, else this augwise binary.
    pub worker: String,
    /// Attempts per trajectory before the request fails (1 = never resubmit).
    pub tries: usize,
    /// How often the coordinator reads `squeue` and the result files, in milliseconds.
    pub poll_ms: u64,
}

/// A list of words, or one string of them separated by spaces.
fn words<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Words {
        List(Vec<String>),
        Line(String),
    }
    Ok(match Words::deserialize(d)? {
        Words::List(l) => l,
        Words::Line(s) => s.split_whitespace().map(str::to_owned).collect(),
    })
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            partition: String::new(),
            time: String::new(),
            gres: String::new(),
            cpus_per_task: 0,
            mem: String::new(),
            extra: Vec::new(),
            worker: String::new(),
            tries: 3,
            poll_ms: 500,
        }
    }
}

impl SlurmConfig {
    pub fn with_partition(mut self, p: impl Into<String>) -> Self {
        self.partition = p.into();
        self
    }
    pub fn with_gres(mut self, g: impl Into<String>) -> Self {
        self.gres = g.into();
        self
    }
    pub fn with_time(mut self, t: impl Into<String>) -> Self {
        self.time = t.into();
        self
    }
    pub fn with_mem(mut self, m: impl Into<String>) -> Self {
        self.mem = m.into();
        self
    }
    /// Further sbatch options, one word each.
    pub fn with_extra<S: Into<String>>(mut self, options: impl IntoIterator<Item = S>) -> Self {
        self.extra = options.into_iter().map(Into::into).collect();
        self
    }
    pub fn with_worker(mut self, w: impl Into<String>) -> Self {
        self.worker = w.into();
        self
    }
    pub fn with_cpus_per_task(mut self, n: usize) -> Self {
        self.cpus_per_task = n;
        self
    }
    pub fn with_tries(mut self, n: usize) -> Self {
        self.tries = n;
        self
    }
    pub fn with_poll_ms(mut self, ms: u64) -> Self {
        self.poll_ms = ms;
        self
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1..=100).contains(&self.tries) {
            return Err("slurm.tries must be between 1 and 100".into());
        }
        if !(10..=600_000).contains(&self.poll_ms) {
            return Err("slurm.poll_ms must be between 10 and 600000".into());
        }
        if let Some(bad) = self.extra.iter().find(|e| !e.starts_with('-')) {
            return Err(format!(
                "slurm.extra: `{bad}` is not an sbatch option; give each as one word, like \"--qos=long\""
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;

    #[test]
    fn config_set_and_validate() {
        let mut c = SearchConfig::cpu();
        c.set("trajectories", "6").unwrap();
        assert_eq!(c.trajectories, 6);
        c.set("model", "wrn-16-2").unwrap();
        assert_eq!(c.model, Arch::WRN_16_2);
        c.set("ppo.clip", "0.1").unwrap();
        assert_eq!(c.ppo.clip, 0.1);
        c.set("finetune_lr", "null").unwrap();
        assert_eq!(c.finetune_lr, None);
        let e = c.set("trajectorys", "3").unwrap_err().to_string();
        assert!(e.contains("did you mean `trajectories`"), "{e}");
        assert!(c.set("trajectories", "0").is_err());
        assert!(c.set("model", "vgg").is_err());
        assert_eq!(c.trajectories, 6, "a refused set changes nothing");
        assert_eq!(SearchConfig::paper().model, Arch::WRN_28_10);
        assert!(SearchConfig::preset("papr").unwrap_err().to_string().contains("paper"));
        for name in SearchConfig::PRESETS {
            SearchConfig::preset(name).unwrap().validate().unwrap();
        }
        let search = SearchConfig::preset("cpu-search").unwrap();
        assert_eq!(
            (search.pairs_per_trajectory, search.trajectories, search.updates),
            (16, 8, 80)
        );
        let cpu = SearchConfig::cpu();
        let rest = SearchConfig {
            pairs_per_trajectory: cpu.pairs_per_trajectory,
            trajectories: cpu.trajectories,
            updates: cpu.updates,
            ..search
        };
        assert_eq!(rest, cpu, "otherwise the cpu preset");
    }

    #[test]
    fn paper_retrain_schedule_is_the_official_one() {
        let s = SearchConfig::paper().fulltrain_schedule.for_epochs(300);
        assert!((s.at(0.0) - 0.1).abs() < 1e-12);
        assert!(
            (s.at(0.75) - 0.25).abs() < 1e-12,
            "halfway through the 1.5-epoch warm-up"
        );
        assert!((s.at(1.5) - 0.4).abs() < 1e-12);
        assert!(s.at(300.0).abs() < 1e-12, "cosine to 0");
        let mut c = SearchConfig::cpu();
        c.set("fulltrain_schedule.peak", "0.1").unwrap();
        assert_eq!(c.fulltrain_schedule.peak, 0.1);
        assert!(c.set("fulltrain_schedule.peak", "-1").is_err());
    }
}
