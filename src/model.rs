//! The networks of the paper and its cheap stand-ins, all with BatchNorm, any channel count
//! and any input size (global average pooling before the classifier).
//!
//! | name        | layout                                                   | params (10 classes, 3 ch) |
//! |-------------|----------------------------------------------------------|---------------------------|
//! | `resnet20`  | CIFAR ResNet, 3 stages × 3 basic blocks, 16/32/64 wide   | 0.27 M                    |
//! | `resnet56`  | CIFAR ResNet, 3 stages × 9 basic blocks                  | 0.86 M                    |
//! | `wrn-d-k`   | pre-activation Wide-ResNet, (d−4)/6 blocks per group, 16k/32k/64k | WRN-28-10: 36.5 M |
//!
//! ResNet shortcuts that change shape are 1×1 conv + BN projections (option B).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, TchError, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "unknown model `{0}`: expected resnet20, resnet56 or wrn-DEPTH-WIDTH (e.g. wrn-28-10, wrn-40-2, wrn-16-2)"
    )]
    Unknown(String),
    #[error("invalid model `{name}`: {why}")]
    Invalid { name: String, why: String },
    #[error("weights do not fit this model: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Torch(#[from] TchError),
}

/// An architecture by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Arch {
    /// CIFAR ResNet of depth 6n+2.
    ResNet { depth: i64 },
    /// WRN-depth-widen, depth 6n+4.
    Wrn { depth: i64, widen: i64 },
}

impl Arch {
    /// Variables (parameters and BN statistics) of the network for these images and classes,
    /// counted from the architecture without building it: what its memory check needs.
    pub fn variable_count(self, in_channels: i64, classes: i64) -> u64 {
        let (n, widths, wide) = match self {
            Arch::ResNet { depth } => ((depth - 2) / 6, [16, 32, 64], false),
            Arch::Wrn { depth, widen } => ((depth - 4) / 6, [16 * widen, 32 * widen, 64 * widen], true),
        };
        let (n, in_channels, classes) = (n.max(0) as u64, in_channels.max(0) as u64, classes.max(0) as u64);
        let bn = |c: u64| 4 * c + 1;
        let mut total = 9 * in_channels * 16 + if wide { 0 } else { bn(16) };
        let mut i = 16u64;
        for (stage, &o) in widths.iter().enumerate() {
            let o = o.max(0) as u64;
            for b in 0..n {
                let projects = (stage > 0 && b == 0) || i != o;
                total += 9 * i * o + 9 * o * o + bn(if wide { i } else { o }) + bn(o);
                if projects {
                    total += i * o + if wide { 0 } else { bn(o) };
                }
                i = o;
            }
        }
        total + if wide { bn(i) } else { 0 } + i * classes + classes
    }

    /// Floats one training step keeps per image of `h`×`w` for the backward pass, counted
    /// from the architecture as [`Arch::variable_count`] is: the tensors autograd saves (each
    /// convolution's output for its BN, each ReLU's output, each block's output), at its
    /// stage's resolution, and a quarter more for the gradients in flight and the allocator.
    /// Against peak RSS at batch 128 it runs above the growth measured between two image
    /// sizes: by 7% for resnet20 (32² → 96²), by 38% for wrn-16-2 (32² → 64²) — an upper
    /// bound, so the activation check before training refuses only past all free memory.
    pub fn activation_count(self, in_channels: i64, h: i64, w: i64) -> u64 {
        let (n, widths, wide) = match self {
            Arch::ResNet { depth } => ((depth - 2) / 6, [16, 32, 64], false),
            Arch::Wrn { depth, widen } => ((depth - 4) / 6, [16 * widen, 32 * widen, 64 * widen], true),
        };
        let (mut h, mut w) = (h.max(1) as u64, w.max(1) as u64);
        // The augmented input and its normalised copy, then the stem (conv, and its ReLU).
        let mut total = 2 * in_channels.max(0) as u64 * h * w + 16 * h * w * if wide { 1 } else { 2 };
        let mut i = 16u64;
        for (stage, &o) in widths.iter().enumerate() {
            let o = o.max(0) as u64;
            for b in 0..n.max(0) {
                let strided = stage > 0 && b == 0;
                let px_in = h * w;
                if strided {
                    (h, w) = (h.div_ceil(2), w.div_ceil(2));
                }
                let px = h * w;
                let projects = strided || i != o;
                total += if wide {
                    // The input's ReLU; conv1 and its ReLU; the block's output.
                    i * px_in + 3 * o * px
                } else {
                    // conv1 and its ReLU, conv2, the block's output; the shortcut's conv.
                    4 * o * px + if projects { o * px } else { 0 }
                };
                i = o;
            }
        }
        (total + if wide { i * h * w } else { 0 }) / 4 * 5
    }

    pub const RESNET20: Arch = Arch::ResNet { depth: 20 };
    pub const RESNET56: Arch = Arch::ResNet { depth: 56 };
    pub const WRN_28_10: Arch = Arch::Wrn { depth: 28, widen: 10 };
    pub const WRN_40_2: Arch = Arch::Wrn { depth: 40, widen: 2 };
    pub const WRN_16_2: Arch = Arch::Wrn { depth: 16, widen: 2 };
    /// Names offered for completion and help.
    pub const NAMES: [&'static str; 5] = ["resnet20", "resnet56", "wrn-28-10", "wrn-40-2", "wrn-16-2"];
}

impl FromStr for Arch {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        let invalid = |why: &str| ModelError::Invalid {
            name: s.to_owned(),
            why: why.to_owned(),
        };
        if let Some(d) = t.strip_prefix("resnet").map(|d| d.trim_start_matches('-')) {
            let depth: i64 = d.parse().map_err(|_| ModelError::Unknown(s.to_owned()))?;
            if depth < 8 || (depth - 2) % 6 != 0 {
                return Err(invalid("CIFAR ResNet depth must be 6n+2 (20, 32, 44, 56, 110)"));
            }
            if depth > 1202 {
                return Err(invalid("CIFAR ResNet depth is at most 1202 (the deepest of He et al.)"));
            }
            return Ok(Arch::ResNet { depth });
        }
        if let Some(rest) = t.strip_prefix("wrn").map(|d| d.trim_start_matches('-')) {
            let (d, k) = rest.split_once('-').ok_or_else(|| ModelError::Unknown(s.to_owned()))?;
            let depth: i64 = d.parse().map_err(|_| ModelError::Unknown(s.to_owned()))?;
            let widen: i64 = k.parse().map_err(|_| ModelError::Unknown(s.to_owned()))?;
            if depth < 10 || (depth - 4) % 6 != 0 || widen < 1 {
                return Err(invalid("WRN depth must be 6n+4 (16, 22, 28, 40) and width ≥ 1"));
            }
            if depth > 100 || widen > 32 {
                return Err(invalid("WRN depth is at most 100 and width at most 32 (WRN-28-10 is the paper's; wider needs more memory than any GPU has)"));
            }
            return Ok(Arch::Wrn { depth, widen });
        }
        Err(ModelError::Unknown(s.to_owned()))
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arch::ResNet { depth } => write!(f, "resnet{depth}"),
            Arch::Wrn { depth, widen } => write!(f, "wrn-{depth}-{widen}"),
        }
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Arch {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A bias-free convolution of `g` independent members (`g` = 1: a plain conv): member j maps
/// input channels j·i.. to output channels j·o.. (a grouped convolution), so the members share
/// nothing. Built by `nn::conv2d` (torch's initialisation, the variable `weight`), applied by
/// the fallible op so a bad input is an error, not a panic.
#[derive(Debug)]
struct Conv {
    ws: Tensor,
    stride: i64,
    padding: i64,
    groups: i64,
}

fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, g: i64) -> Conv {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        groups: g,
        ..Default::default()
    };
    Conv {
        ws: nn::conv2d(p, g * i, g * o, k, cfg).ws,
        stride,
        padding: k / 2,
        groups: g,
    }
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        x.f_conv2d(
            &self.ws,
            None::<Tensor>,
            [self.stride; 2],
            [self.padding; 2],
            [1, 1],
            self.groups,
        )
    }
}

/// BatchNorm over `g` members' channels: statistics are per channel, hence per member. tch's
/// defaults (momentum 0.1, ε 1e-5, cuDNN on), applied by the fallible op.
#[derive(Debug)]
struct Bn(nn::BatchNorm);

fn bn(p: nn::Path, c: i64, g: i64) -> Bn {
    Bn(nn::batch_norm2d(p, g * c, Default::default()))
}

impl Bn {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let b = &self.0;
        Tensor::f_batch_norm(
            x,
            b.ws.as_ref(),
            b.bs.as_ref(),
            Some(&b.running_mean),
            Some(&b.running_var),
            train,
            0.1,
            1e-5,
            true,
        )
    }

    /// BN then ReLU.
    fn relu_t(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError> {
        self.forward_t(x, train)?.f_relu()
    }
}

/// The classifier of `g` members: weights stacked `[g, classes, features]`, one matmul for all.
#[derive(Debug)]
struct StackedLinear {
    ws: Tensor,
    bs: Tensor,
}

impl StackedLinear {
    fn new(p: nn::Path, g: i64, i: i64, o: i64) -> Self {
        let bound = 1.0 / (i as f64).sqrt();
        Self {
            ws: p.var("weight", &[g, o, i], nn::Init::Uniform { lo: -bound, up: bound }),
            bs: p.var("bias", &[g, o], nn::Init::Uniform { lo: -bound, up: bound }),
        }
    }

    /// `[B, g·features]` → `[g·B, classes]`, member-major (member j's rows j·B..).
    fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let (b, g) = (x.size()[0], self.ws.size()[0]);
        let f = x.f_view([b, g, -1])?.f_transpose(0, 1)?;
        self.bs
            .f_unsqueeze(1)?
            .f_baddbmm(&f, &self.ws.f_transpose(1, 2)?, 1.0, 1.0)?
            .f_reshape([g * b, -1])
    }
}

/// Plain or stacked classifier.
#[derive(Debug)]
enum Classifier {
    One(nn::Linear),
    Stacked(StackedLinear),
}

impl Classifier {
    fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Classifier::One(fc) => x.f_linear(&fc.ws, fc.bs.as_ref()),
            Classifier::Stacked(fc) => fc.forward(x),
        }
    }
}

/// A residual block.
trait Block: std::fmt::Debug + Send {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError>;
}

/// Post-activation basic block (He et al. 2016, CIFAR).
#[derive(Debug)]
struct BasicBlock {
    conv1: Conv,
    bn1: Bn,
    conv2: Conv,
    bn2: Bn,
    shortcut: Option<(Conv, Bn)>,
}

impl BasicBlock {
    fn new(p: &nn::Path, i: i64, o: i64, stride: i64, g: i64) -> Self {
        let shortcut =
            (stride != 1 || i != o).then(|| (conv(p / "sc_conv", i, o, 1, stride, g), bn(p / "sc_bn", o, g)));
        Self {
            conv1: conv(p / "conv1", i, o, 3, stride, g),
            bn1: bn(p / "bn1", o, g),
            conv2: conv(p / "conv2", o, o, 3, 1, g),
            bn2: bn(p / "bn2", o, g),
            shortcut,
        }
    }
}

impl Block for BasicBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let y = self.bn1.relu_t(&self.conv1.forward(x)?, train)?;
        let y = self.bn2.forward_t(&self.conv2.forward(&y)?, train)?;
        let s = match &self.shortcut {
            Some((c, b)) => b.forward_t(&c.forward(x)?, train)?,
            None => x.shallow_clone(),
        };
        y.f_add(&s)?.f_relu()
    }
}

/// Pre-activation wide block (Zagoruyko & Komodakis 2016), no dropout.
#[derive(Debug)]
struct WideBlock {
    bn1: Bn,
    conv1: Conv,
    bn2: Bn,
    conv2: Conv,
    shortcut: Option<Conv>,
}

impl WideBlock {
    fn new(p: &nn::Path, i: i64, o: i64, stride: i64, g: i64) -> Self {
        Self {
            bn1: bn(p / "bn1", i, g),
            conv1: conv(p / "conv1", i, o, 3, stride, g),
            bn2: bn(p / "bn2", o, g),
            conv2: conv(p / "conv2", o, o, 3, 1, g),
            shortcut: (stride != 1 || i != o).then(|| conv(p / "sc_conv", i, o, 1, stride, g)),
        }
    }
}

impl Block for WideBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let o = self.bn1.relu_t(x, train)?;
        let y = self.bn2.relu_t(&self.conv1.forward(&o)?, train)?;
        let y = self.conv2.forward(&y)?;
        let s = match &self.shortcut {
            Some(c) => c.forward(&o)?,
            None => x.shallow_clone(),
        };
        y.f_add(&s)
    }
}

#[derive(Debug)]
struct Net {
    stem: Conv,
    stem_bn: Option<Bn>,
    blocks: Vec<Box<dyn Block>>,
    final_bn: Option<Bn>,
    fc: Classifier,
}

impl Net {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError> {
        let mut y = self.stem.forward(x)?;
        if let Some(b) = &self.stem_bn {
            y = b.relu_t(&y, train)?;
        }
        for b in &self.blocks {
            y = b.forward_t(&y, train)?;
        }
        if let Some(b) = &self.final_bn {
            y = b.relu_t(&y, train)?;
        }
        let y = y.f_adaptive_avg_pool2d([1, 1])?.f_flatten(1, -1)?;
        self.fc.forward(&y)
    }
}

/// The network of `arch`, or `g` > 1 independent copies of it in one (grouped convolutions,
/// per-member BN channels, a stacked classifier), with the same variable names.
fn build(arch: Arch, p: &nn::Path, in_channels: i64, classes: i64, g: i64) -> Net {
    let (n, widths, wide) = match arch {
        Arch::ResNet { depth } => ((depth - 2) / 6, [16, 32, 64], false),
        Arch::Wrn { depth, widen } => ((depth - 4) / 6, [16 * widen, 32 * widen, 64 * widen], true),
    };
    let mut blocks: Vec<Box<dyn Block>> = Vec::new();
    let mut i = 16;
    for (stage, &o) in widths.iter().enumerate() {
        for b in 0..n {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let bp = p / format!("layer{}", stage + 1) / b;
            if wide {
                blocks.push(Box::new(WideBlock::new(&bp, i, o, stride, g)));
            } else {
                blocks.push(Box::new(BasicBlock::new(&bp, i, o, stride, g)));
            }
            i = o;
        }
    }
    Net {
        stem: conv(p / "conv1", in_channels, 16, 3, 1, g),
        stem_bn: (!wide).then(|| bn(p / "bn1", 16, g)),
        blocks,
        final_bn: wide.then(|| bn(p / "bn_final", i, g)),
        fc: if g == 1 {
            Classifier::One(nn::linear(p / "fc", i, classes, Default::default()))
        } else {
            Classifier::Stacked(StackedLinear::new(p / "fc", g, i, classes))
        },
    }
}

/// A model with its variables; the unit the trainer trains and the session snapshots.
#[derive(Debug)]
pub struct Model {
    pub vs: nn::VarStore,
    net: Net,
    pub arch: Arch,
    pub in_channels: i64,
    pub classes: i64,
    /// Independent copies of `arch` held in this one network (1: an ordinary model). Member
    /// j reads input channels j·in_channels.. and owns logits rows j·B.. (see [`Model::members`]).
    pub members: i64,
}

/// A deep copy of every variable (parameters and BN running statistics), by name.
#[derive(Debug)]
pub struct Weights(pub Vec<(String, Tensor)>);

impl Model {
    /// Build with torch's default initialisation drawn from `seed`: the same weights on every
    /// device and in every thread (initialised on the CPU under a lock, then moved).
    pub fn new(arch: Arch, in_channels: i64, classes: i64, device: Device, seed: u64) -> Result<Self, ModelError> {
        Self::build(arch, in_channels, classes, 1, device, seed)
    }

    /// `k` independent copies of `arch` as one network (the batched-trajectories technique,
    /// "model ensembling"): each member keeps its own weights, BN statistics and, through the
    /// optimiser, momentum; one forward trains all k. Load members with [`Model::load_members`].
    pub fn members(arch: Arch, in_channels: i64, classes: i64, k: i64, device: Device) -> Result<Self, ModelError> {
        if !(1..=64).contains(&k) {
            return Err(ModelError::Invalid {
                name: arch.to_string(),
                why: format!("{k} members (1 to 64)"),
            });
        }
        Self::build(arch, in_channels, classes, k, device, 0)
    }

    fn build(
        arch: Arch,
        in_channels: i64,
        classes: i64,
        k: i64,
        device: Device,
        seed: u64,
    ) -> Result<Self, ModelError> {
        let invalid = |why: String| ModelError::Invalid {
            name: arch.to_string(),
            why,
        };
        if classes < 2 {
            return Err(invalid(format!(
                "a classifier needs at least 2 classes; the data has {classes}"
            )));
        }
        if !(1..=4).contains(&in_channels) {
            return Err(invalid(format!(
                "images have {in_channels} channels; 1 to 4 are supported"
            )));
        }
        // Weights, gradients, momentum and the stage-1 snapshot, on the host while they are
        // initialised: refused before the allocation that would get the process killed.
        let bytes = arch
            .variable_count(in_channels, classes)
            .saturating_mul(k.max(1) as u64)
            .saturating_mul(4 * 4);
        let available = crate::limits::available_memory();
        if bytes > available / 10 * 8 {
            return Err(invalid(format!(
                "{} needs about {} for its weights, gradients, momentum and snapshot, more than this machine has available ({}); choose a smaller model",
                if k > 1 { format!("{k} copies of it") } else { "it".to_owned() },
                crate::limits::gb(bytes),
                crate::limits::gb(available)
            )));
        }
        crate::device::init_runtime();
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = {
            let _guard = crate::rng::TORCH_GLOBAL_RNG.lock().unwrap_or_else(|e| e.into_inner());
            tch::manual_seed(seed as i64);
            build(arch, &vs.root(), in_channels, classes, k)
        };
        vs.set_device(device);
        Ok(Self {
            vs,
            net,
            arch,
            in_channels,
            classes,
            members: k,
        })
    }

    /// Variables stacked along a new leading member axis (`[k, …]`: the classifier); every
    /// other variable concatenates the members along its first axis (`[k·n, …]`).
    fn stacked(&self, name: &str) -> bool {
        self.members > 1 && name.starts_with("fc.")
    }

    /// Rank of one member's copy of variable `name` (weight decay goes by it).
    pub fn member_rank(&self, name: &str, t: &Tensor) -> usize {
        t.dim() - usize::from(self.stacked(name))
    }

    /// `src`, one member's tensor for variable `name`, repeated for all members.
    pub fn tile(&self, name: &str, src: &Tensor) -> Result<Tensor, TchError> {
        let copies: Vec<Tensor> = (0..self.members).map(|_| src.shallow_clone()).collect();
        if self.stacked(name) {
            Tensor::f_stack(&copies, 0)
        } else {
            Tensor::f_cat(&copies, 0)
        }
    }

    /// Member `j`'s part of variable `name`'s tensor `t` (a view).
    pub fn member_of(&self, name: &str, t: &Tensor, j: i64) -> Result<Tensor, TchError> {
        if self.stacked(name) {
            t.f_select(0, j)
        } else {
            let n = t.size()[0] / self.members;
            t.f_narrow(0, j * n, n)
        }
    }

    /// Every member set to the one-model weights `w` (the shared stage-1 snapshot).
    pub fn load_members(&mut self, w: &Weights) -> Result<(), ModelError> {
        let tiled =
            w.0.iter()
                .map(|(n, t)| Ok((n.clone(), self.tile(n, t)?)))
                .collect::<Result<Vec<_>, TchError>>()?;
        self.restore(&Weights(tiled))
    }

    /// Member `j` as one-model weights (deep copy), e.g. to fully train or compare it.
    pub fn member_snapshot(&self, j: i64) -> Result<Weights, ModelError> {
        if !(0..self.members).contains(&j) {
            return Err(ModelError::Mismatch(format!("member {j} of {}", self.members)));
        }
        let mut v = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| {
                let part = self.member_of(&n, &t.f_detach()?, j)?;
                let mut copy = part.f_zeros_like()?;
                copy.f_copy_(&part)?;
                Ok((n.clone(), copy))
            })
            .collect::<Result<Vec<_>, TchError>>()?;
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Weights(v))
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Logits for a normalised float batch; a batch of the wrong shape or kind, or a device
    /// out of memory, is an error.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError> {
        self.net.forward_t(x, train)
    }

    /// Re-lay every 4-D variable (convolution weights) channels-last, in place: values, names
    /// and optimiser order are unchanged; cuDNN then runs NHWC kernels. Call before building
    /// the optimiser so its momentum buffers take the same layout.
    pub fn to_channels_last(&mut self) -> Result<(), ModelError> {
        tch::no_grad(|| {
            for (name, mut t) in self.vs.variables() {
                if t.dim() == 4 && !crate::amp::is_channels_last(&t) {
                    let nhwc =
                        crate::amp::channels_last(&t).map_err(|e| ModelError::Mismatch(format!("{name}: {e}")))?;
                    t.f_set_data(&nhwc)?;
                }
            }
            Ok(())
        })
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> i64 {
        self.vs.trainable_variables().iter().map(|t| t.numel() as i64).sum()
    }

    /// Trainable variables in name order (the optimiser's parameter order).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Deep copy of all variables.
    pub fn snapshot(&self) -> Result<Weights, TchError> {
        let mut v = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, t)| Ok((k, crate::device::deep_copy(&t.f_detach()?)?)))
            .collect::<Result<Vec<(String, Tensor)>, TchError>>()?;
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Weights(v))
    }

    /// Copy `w` into the variables in place (names and shapes must match).
    pub fn restore(&mut self, w: &Weights) -> Result<(), ModelError> {
        let vars = self.vs.variables();
        if vars.len() != w.0.len() {
            return Err(ModelError::Mismatch(format!(
                "{} tensors for {} variables",
                w.0.len(),
                vars.len()
            )));
        }
        for (name, src) in &w.0 {
            let mut dst = vars
                .get(name)
                .ok_or_else(|| ModelError::Mismatch(format!("no variable `{name}` in {}", self.arch)))?
                .shallow_clone();
            if dst.size() != src.size() {
                return Err(ModelError::Mismatch(format!(
                    "`{name}` is {:?} here, {:?} in the weights",
                    dst.size(),
                    src.size()
                )));
            }
            tch::no_grad(|| dst.f_copy_(src))?;
        }
        Ok(())
    }
}

impl Weights {
    /// Deep copy (a snapshot of a snapshot).
    pub fn copy(&self) -> Result<Self, TchError> {
        self.0
            .iter()
            .map(|(k, t)| Ok((k.clone(), crate::device::deep_copy(t)?)))
            .collect::<Result<_, TchError>>()
            .map(Weights)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn names_parse_and_print() {
        for n in Arch::NAMES {
            assert_eq!(n.parse::<Arch>().unwrap().to_string(), n);
        }
        assert_eq!("WRN_28_10".parse::<Arch>().unwrap(), Arch::WRN_28_10);
        assert!(matches!("resnet21".parse::<Arch>(), Err(ModelError::Invalid { .. })));
        assert!(matches!("vgg16".parse::<Arch>(), Err(ModelError::Unknown(_))));
    }

    #[test]
    fn shapes_and_sizes_match_the_papers() {
        let m = Model::new(Arch::RESNET20, 3, 10, Device::Cpu, 0).unwrap();
        assert_eq!(m.param_count(), 272_474);
        let w = Model::new(Arch::WRN_28_10, 3, 10, Device::Cpu, 0).unwrap();
        assert_eq!(w.param_count(), 36_479_194);
        for (c, s) in [(1, 28), (3, 32)] {
            let m = Model::new(Arch::WRN_16_2, c, 7, Device::Cpu, 0).unwrap();
            let y = m
                .forward_t(&Tensor::zeros([2, c, s, s], (Kind::Float, Device::Cpu)), false)
                .unwrap();
            assert_eq!(y.size(), vec![2, 7]);
        }
    }

    #[test]
    fn activations_grow_with_pixels_and_width() {
        for arch in [Arch::RESNET20, Arch::WRN_40_2] {
            let (small, big) = (arch.activation_count(3, 32, 32), arch.activation_count(3, 64, 64));
            assert!(big > 39 * small / 10 && big <= 4 * small, "{arch}: {small} → {big}");
        }
        assert!(Arch::WRN_28_10.activation_count(3, 32, 32) > 3 * Arch::WRN_40_2.activation_count(3, 32, 32));
        // resnet20 on one 32×32 channel: 391,168 floats kept, a quarter more in flight.
        assert_eq!(Arch::RESNET20.activation_count(1, 32, 32), 391_168 / 4 * 5);
    }

    #[test]
    fn variable_count_matches_the_built_network() {
        for (arch, c, k) in [
            (Arch::RESNET20, 3, 10),
            (Arch::RESNET56, 1, 4),
            (Arch::WRN_16_2, 3, 10),
            (Arch::WRN_40_2, 1, 7),
        ] {
            let m = Model::new(arch, c, k, Device::Cpu, 0).unwrap();
            let built: i64 = m.vs.variables().values().map(|t| t.numel() as i64).sum();
            let counted = arch.variable_count(c, k) as i64;
            assert!(
                (built - counted).abs() * 100 <= built,
                "{arch}: built {built}, counted {counted}"
            );
        }
        // WRN-100-32 is ~1.5 billion: refused on any ordinary machine before allocating.
        assert!(Arch::Wrn { depth: 100, widen: 32 }.variable_count(3, 10) > 1_000_000_000);
    }

    #[test]
    fn snapshot_restore_round_trip() {
        let mut m = Model::new(Arch::RESNET20, 1, 3, Device::Cpu, 0).unwrap();
        let snap = m.snapshot().unwrap();
        for (_, mut t) in m.named_parameters() {
            let _ = tch::no_grad(|| t.fill_(0.5));
        }
        m.restore(&snap).unwrap();
        let again = m.snapshot().unwrap();
        for ((a, x), (b, y)) in snap.0.iter().zip(&again.0) {
            assert_eq!(a, b);
            assert!(x.equal(y), "{a} differs after restore");
        }
        let other = Model::new(Arch::RESNET56, 1, 3, Device::Cpu, 0).unwrap();
        assert!(m.restore(&other.snapshot().unwrap()).is_err());
    }

    /// k members hold k copies of a model: member j's logits are exactly that model's on
    /// member j's images (grouped convs compute each group as a plain conv would).
    #[test]
    fn members_compute_what_each_model_computes() {
        let k = 3;
        let one = Model::new(Arch::RESNET20, 1, 4, Device::Cpu, 7).unwrap();
        let mut many = Model::members(Arch::RESNET20, 1, 4, k, Device::Cpu).unwrap();
        many.load_members(&one.snapshot().unwrap()).unwrap();
        let x = Tensor::randn([k, 5, 1, 8, 8], (Kind::Float, Device::Cpu));
        let joint = many.forward_t(&x.transpose(0, 1).reshape([5, k, 8, 8]), false).unwrap();
        assert_eq!(joint.size(), vec![k * 5, 4]);
        for j in 0..k {
            let alone = one.forward_t(&x.get(j), false).unwrap();
            let diff = (joint.narrow(0, j * 5, 5) - &alone).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "member {j}: {diff}");
        }
        let back = many.member_snapshot(1).unwrap();
        for ((a, x), (b, y)) in one.snapshot().unwrap().0.iter().zip(&back.0) {
            assert_eq!(a, b);
            assert!(x.equal(y), "{a}");
        }
        assert!(many.member_snapshot(k).is_err());
        assert!(Model::members(Arch::RESNET20, 1, 4, 0, Device::Cpu).is_err());
    }
}
