//! Mixed precision and memory layout for training and evaluation: opt-in bf16 autocast and
//! channels-last, both for CUDA (issue 13). On the CPU both are accepted and do nothing —
//! autocast there would be slower, and the rewards must not depend on the machine.
//!
//! bf16 is the loss-scale-free path: its exponent range is fp32's, so gradients do not
//! underflow and no `GradScaler` is needed. Weights, optimiser state and BN statistics stay
//! fp32 (autocast lowers only the matmul/conv inputs), exactly as `torch.autocast("cuda",
//! dtype=torch.bfloat16)` does in a PyTorch script.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// Arithmetic precision of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in float32 (the default: bit-for-bit what the CPU computes).
    #[default]
    Fp32,
    /// CUDA autocast to bfloat16: convolutions and linear layers in bf16, the rest fp32.
    Bf16,
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "f32" => Ok(Self::Fp32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!("unknown precision `{other}`: expected fp32 or bf16")),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        })
    }
}

extern "C" {
    fn augwise_autocast_enter_bf16() -> i32;
    fn augwise_autocast_exit(prev: i32);
}

/// Leaves the autocast region on drop, so a panic inside `f` cannot leave autocast on.
struct AutocastRegion(i32);

impl Drop for AutocastRegion {
    fn drop(&mut self) {
        // SAFETY: pairs with the enter below; the C++ side catches exceptions.
        unsafe { augwise_autocast_exit(self.0) }
    }
}

/// Run `f` (a forward pass and its loss) in `precision` on `device`. Backward runs outside,
/// as in PyTorch: autograd replays each op in the dtype its forward used.
pub fn forward<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> T {
    if !is_active(precision, device) {
        return f();
    }
    // SAFETY: process-wide libtorch setting, restored by the guard; exceptions caught in C++.
    let prev = unsafe { augwise_autocast_enter_bf16() };
    if prev < 0 {
        return f();
    }
    let _region = AutocastRegion(prev);
    f()
}

/// Whether `precision` changes anything on `device` (what reports say to the user).
pub fn is_active(precision: Precision, device: Device) -> bool {
    precision == Precision::Bf16 && device.is_cuda()
}

/// The same NCHW tensor with NHWC strides ("channels last"): cuDNN's fastest layout for
/// convolutions with tensor cores. Shape, values and indexing are unchanged. Other ranks are
/// returned as they are.
pub fn channels_last(t: &Tensor) -> Result<Tensor, tch::TchError> {
    if t.dim() != 4 {
        return Ok(t.shallow_clone());
    }
    t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])
}

/// Whether `t` is laid out channels-last (stride of C is 1).
pub fn is_channels_last(t: &Tensor) -> bool {
    t.dim() == 4 && t.stride().get(1) == Some(&1) && t.size()[1] > 1
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn precision_parses_and_prints() {
        assert_eq!("BF16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("fp32".parse::<Precision>().unwrap(), Precision::Fp32);
        assert!("fp8".parse::<Precision>().unwrap_err().contains("fp32 or bf16"));
        assert_eq!(
            Precision::Bf16.to_string().parse::<Precision>().unwrap(),
            Precision::Bf16
        );
        assert_eq!(serde_json::to_string(&Precision::Bf16).unwrap(), "\"bf16\"");
    }

    #[test]
    fn channels_last_keeps_values_and_changes_strides() {
        let x = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let y = channels_last(&x).unwrap();
        assert_eq!(y.size(), x.size());
        assert!(is_channels_last(&y) && !is_channels_last(&x));
        assert_eq!(y.stride(), vec![60, 1, 15, 3]);
        assert!(y.equal(&x));
        let v = Tensor::randn([3], (Kind::Float, Device::Cpu));
        assert!(channels_last(&v).unwrap().equal(&v));
    }

    #[test]
    fn bf16_is_a_no_op_off_cuda() {
        let x = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
        let y = forward(Precision::Bf16, Device::Cpu, || x.matmul(&w));
        assert_eq!(y.kind(), Kind::Float);
        assert!(y.equal(&x.matmul(&w)));
        assert!(!is_active(Precision::Bf16, Device::Cpu));
    }
}
