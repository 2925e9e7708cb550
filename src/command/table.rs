//! The table itself: every command's name, arguments, summary, example and handler — the one
//! place a command is declared (`help`, completion and argument checks read it).

use crate::limits;
use crate::suggest;

use super::{export::cmd_export, handlers::*, Args, CommandError, Output, Shell};

/// What a kind of argument accepts (checked before the handler runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A whole number up to its limit (checked before the handler sees it).
    Count(&'static crate::limits::Limit),
    Policy,
    Topic,
    Path,
    Data,
    Model,
    KeyValue,
    Chart,
    /// An `export` format, or a file name standing in for it.
    Format,
    /// A policy, or (last) a trajectory count: `compare A B C 8`.
    PolicyOrCount,
    Text,
}

#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub optional: bool,
    pub repeated: bool,
}

const fn arg(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: false,
        repeated: false,
    }
}
const fn opt(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional: true,
        repeated: false,
    }
}
const fn many(name: &'static str, kind: ArgKind, optional: bool) -> ArgSpec {
    ArgSpec {
        name,
        kind,
        optional,
        repeated: true,
    }
}

type Handler = fn(&mut Shell, &Args) -> Result<Output, CommandError>;

/// One row of the table.
pub struct Command {
    pub name: &'static str,
    pub args: &'static [ArgSpec],
    pub summary: &'static str,
    /// One line as a user would type it (`help NAME` shows it).
    pub example: &'static str,
    pub(super) handler: Handler,
}

impl Command {
    pub fn usage(&self) -> String {
        let mut s = self.name.to_owned();
        for a in self.args {
            let dots = if a.repeated { "…" } else { "" };
            if a.optional {
                s.push_str(&format!(" [{}{dots}]", a.name));
            } else {
                s.push_str(&format!(" <{}{dots}>", a.name));
            }
        }
        s
    }
}

/// The table. Order is the order of `help`.
pub static COMMANDS: &[Command] = &[
    Command { name: "help", args: &[opt("command", ArgKind::Text)], summary: "list the commands, or explain one", example: "help compare", handler: cmd_help },
    Command { name: "explain", args: &[opt("topic", ArgKind::Topic)], summary: "the formulas and settings of a stage of AWS, its search space or its noise", example: "explain update", handler: cmd_explain },
    Command { name: "device", args: &[], summary: "torch build, CUDA devices, threads, the device in use", example: "device", handler: cmd_device },
    Command { name: "data", args: &[arg("spec", ArgKind::Data)], summary: "choose the dataset (fashion-mnist, cifar10:DIR, synthetic:…); starts a new session", example: "data cifar10:data/cifar-10-batches-bin", handler: cmd_data },
    Command { name: "model", args: &[arg("name", ArgKind::Model)], summary: "choose the network (resnet20, resnet56, wrn-D-K); starts a new session", example: "model wrn-16-2", handler: cmd_model },
    Command { name: "config", args: &[many("key=value", ArgKind::KeyValue, true)], summary: "what differs from the preset (`config KEY`: one setting, `config all`: every one), or set keys (a new session picks them up)", example: "config finetune_epochs=2 trajectories=8", handler: cmd_config },
    Command { name: "pretrain", args: &[opt("epochs", ArgKind::Count(&limits::EPOCHS))], summary: "stage 1: shared-weight pretraining (default: the rest of the schedule)", example: "pretrain 3", handler: cmd_pretrain },
    Command { name: "sample", args: &[opt("n", ArgKind::Count(&limits::SAMPLES))], summary: "draw n pairs from θ with their probabilities, preview them", example: "sample 8", handler: cmd_sample },
    Command { name: "preview", args: &[arg("policy", ArgKind::Policy), opt("n", ArgKind::Count(&limits::SAMPLES))], summary: "any policy applied to n validation images (default 8): what it does to this data, as an image grid", example: "preview autoaugment:cifar10 12", handler: cmd_preview },
    Command { name: "evaluate", args: &[opt("k", ArgKind::Count(&limits::TRAJECTORIES))], summary: "stage 2: k trajectories under θ, waiting for `update`", example: "evaluate 4", handler: cmd_evaluate },
    Command { name: "update", args: &[], summary: "PPO update of θ from the waiting trajectories", example: "update", handler: cmd_update },
    Command { name: "step", args: &[opt("n", ArgKind::Count(&limits::STEPS))], summary: "n × (evaluate, update)", example: "step 5", handler: cmd_step },
    Command { name: "policy", args: &[opt("top", ArgKind::Count(&limits::TOP_PAIRS))], summary: "the best θ (what export writes): top pairs, entropy, op1/op2 marginals, the null's verdict", example: "policy 10", handler: cmd_policy },
    Command { name: "probe", args: &[arg("policy", ArgKind::Policy), opt("k", ArgKind::Count(&limits::TRAJECTORIES))], summary: "proxy reward of any policy with its 95% interval over k trajectories (default 4), θ untouched", example: "probe autoaugment:cifar10 8", handler: cmd_probe },
    Command { name: "compare", args: &[arg("a", ArgKind::Policy), arg("b", ArgKind::Policy), many("more… [early] [k]", ArgKind::PolicyOrCount, true)], summary: "paired proxy comparison (common random numbers): difference, 95% CI, p-value, verdict. With k: exactly k trajectories each. Two policies without k (or with `early [max]`): pair by pair, stopping as soon as the evidence suffices, at most 20 pairs (an anytime-valid test)", example: "compare none pair:Invert+Equalize early 30", handler: cmd_compare },
    Command { name: "null", args: &[opt("replicates", ArgKind::Count(&limits::NULL_REPLICATES))], summary: "did the search find anything? rewards vs the ops drawn against shuffled rewards (score test), and θ's movement against null searches", example: "null 100", handler: cmd_null },
    Command { name: "fulltrain", args: &[arg("policy", ArgKind::Policy), opt("epochs", ArgKind::Count(&limits::EPOCHS))], summary: "train from scratch with a policy, report test accuracy", example: "fulltrain best 20", handler: cmd_fulltrain },
    Command { name: "correlate", args: &[many("policies", ArgKind::Policy, false)], summary: "probe and full-train policies; Kendall τ and Spearman ρ", example: "correlate none aws randaugment trivialaugment pair:Invert+Invert", handler: cmd_correlate },
    Command { name: "history", args: &[], summary: "every update so far: rewards, baseline, KL, entropy", example: "history", handler: cmd_history },
    Command { name: "plot", args: &[arg("chart", ArgKind::Chart), opt("file", ArgKind::Path)], summary: "draw a chart (rewards, accuracy, trajectory, theta, marginals, images, ops, probes, compare, correlate) to SVG + PNG", example: "plot rewards runs/fig/rewards.svg", handler: cmd_plot },
    Command { name: "save", args: &[opt("dir", ArgKind::Path)], summary: "write the checkpoint (to another run directory)", example: "save runs/copy", handler: cmd_save },
    Command { name: "resume", args: &[opt("dir", ArgKind::Path)], summary: "continue the run in a directory (default: the run directory) from its last checkpoint", example: "resume runs/demo", handler: cmd_resume },
    Command { name: "export", args: &[opt("format", ArgKind::Format), opt("policy", ArgKind::Format), opt("file", ArgKind::Path)], summary: "a policy (default: the best θ) as json (torchvision sub-policies), theta (the search's logits) or csv (all pairs), shown or to a file; a file outside the run directory is never replaced", example: "export json autoaugment:cifar10 aa.json", handler: cmd_export },
    Command { name: "reset", args: &[opt("dir", ArgKind::Path)], summary: "start over: a new session with the current configuration, in DIR (default: a free sibling of the run directory; the old run stays)", example: "reset runs/fresh", handler: cmd_reset },
    Command { name: "quit", args: &[], summary: "leave (every step is already checkpointed)", example: "quit", handler: cmd_quit },
];

/// The command named `name`, or a did-you-mean error.
pub fn lookup(name: &str) -> Result<&'static Command, CommandError> {
    COMMANDS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| CommandError::Unknown {
            name: name.to_owned(),
            hint: suggest::hint(name, COMMANDS.iter().map(|c| c.name)),
        })
}
