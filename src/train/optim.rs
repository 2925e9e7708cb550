//! SGD with Nesterov momentum whose state we own. libtorch's optimiser (behind tch's
//! `nn::Optimizer`) hides its momentum buffers, but AWS must snapshot and restore them with
//! the weights (stage 2 resets both to the stage-1 snapshot), so the update is written here
//! with PyTorch's exact formula:
//!
//! ```text
//! d  = g + wd·p          (wd only on tensors with ≥ 2 dims: no decay on BN and biases)
//! b  = μ·b + d           (b starts at 0, so the first step gives b = d, as in PyTorch)
//! d' = d + μ·b  (nesterov) | b
//! p  = p − lr·d'
//! ```

use serde::{Deserialize, Serialize};
use tch::{Kind, TchError, Tensor};
use torch_sys::C_tensor;

use crate::model::Model;

extern "C" {
    fn augwise_sgd_foreach(
        params: *const *const C_tensor,
        momenta: *const *const C_tensor,
        decay: *const u8,
        n: i64,
        lr: f64,
        mu: f64,
        wd: f64,
        nesterov: i32,
        err: *mut std::os::raw::c_char,
        cap: usize,
    ) -> i32;
    fn augwise_clip_foreach(
        params: *const *const C_tensor,
        n: i64,
        max_norm: f64,
        total: *mut *mut C_tensor,
        err: *mut std::os::raw::c_char,
        cap: usize,
    ) -> i32;
    fn augwise_grads_to_none(params: *const *const C_tensor, n: i64, err: *mut std::os::raw::c_char, cap: usize)
        -> i32;
}

/// Call one of the C++ functions above with an error buffer; its message becomes a TchError.
fn native(what: &str, f: impl FnOnce(*mut std::os::raw::c_char, usize) -> i32) -> Result<(), TchError> {
    let mut err = [0 as std::os::raw::c_char; 512];
    if f(err.as_mut_ptr(), err.len()) == 0 {
        return Ok(());
    }
    // SAFETY: the C++ side wrote a NUL-terminated message within the buffer.
    let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Err(TchError::Torch(format!("{what}: {msg}")))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SgdConfig {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    /// docs/method.md: momentum 0.9, Nesterov, weight decay 1e-4.
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        }
    }
}

#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    decay: bool,
    momentum: Tensor,
}

/// The optimiser; its momentum buffers are plain tensors we can copy.
#[derive(Debug)]
pub struct Sgd {
    pub config: SgdConfig,
    params: Vec<Param>,
    /// Independent members of the model (see `Model::members`): clipping is per member.
    members: i64,
    /// Step and clip with libtorch's multi-tensor kernels (a few launches per step instead of
    /// ~8 per parameter): on by default on CUDA, where launches bound small models; off on
    /// the CPU, where the per-tensor path is as fast and bit-for-bit what earlier runs did.
    pub foreach: bool,
}

/// Deep copy of the momentum buffers, by parameter name.
#[derive(Debug)]
pub struct SgdState(pub Vec<(String, Tensor)>);

impl SgdState {
    pub fn copy(&self) -> Result<Self, TchError> {
        self.0
            .iter()
            .map(|(k, t)| Ok((k.clone(), crate::device::deep_copy(t)?)))
            .collect::<Result<_, TchError>>()
            .map(SgdState)
    }
}

impl Sgd {
    pub fn new(model: &Model, config: SgdConfig) -> Result<Self, TchError> {
        let params = model
            .named_parameters()
            .into_iter()
            .map(|(name, tensor)| {
                Ok(Param {
                    decay: model.member_rank(&name, &tensor) > 1,
                    momentum: tensor.f_zeros_like()?,
                    name,
                    tensor,
                })
            })
            .collect::<Result<_, TchError>>()?;
        Ok(Self {
            config,
            params,
            members: model.members,
            foreach: model.device().is_cuda(),
        })
    }

    pub fn with_foreach(mut self, on: bool) -> Self {
        self.foreach = on;
        self
    }

    fn param_ptrs(&self) -> Vec<*const C_tensor> {
        self.params.iter().map(|p| p.tensor.as_ptr()).collect()
    }

    /// Names of the parameters that get weight decay (for inspection and tests).
    pub fn decayed(&self) -> Vec<&str> {
        self.params
            .iter()
            .filter(|p| p.decay)
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Drop the gradients (PyTorch's `set_to_none`): no kernel launches; backward writes
    /// fresh ones, the same values accumulating into zeros would give.
    pub fn zero_grad(&mut self) -> Result<(), TchError> {
        let ptrs = self.param_ptrs();
        // SAFETY: the pointers are this optimiser's live tensors; exceptions caught in C++.
        native("zero_grad", |err, cap| unsafe {
            augwise_grads_to_none(ptrs.as_ptr(), ptrs.len() as i64, err, cap)
        })
    }

    /// Scale gradients so their global L2 norm is at most `max_norm` (PyTorch's
    /// `clip_grad_norm_`: no host sync). Returns the norm before clipping, on the device; for
    /// a model of several members each member is clipped by its own norm (shape `[k]`).
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<Tensor, TchError> {
        let grads: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.tensor.f_grad())
            .filter(|g| g.as_ref().map_or(true, Tensor::defined))
            .collect::<Result<_, TchError>>()?;
        if grads.is_empty() {
            return Ok(Tensor::from(0f32));
        }
        if self.members > 1 {
            return clip_members(&grads, self.members, max_norm);
        }
        if self.foreach {
            let ptrs = self.param_ptrs();
            let mut total: *mut C_tensor = std::ptr::null_mut();
            // SAFETY: live tensors; `total` receives a new tensor we own (or stays null).
            native("clip_grad_norm", |err, cap| unsafe {
                augwise_clip_foreach(ptrs.as_ptr(), ptrs.len() as i64, max_norm, &mut total, err, cap)
            })?;
            return Ok(if total.is_null() {
                Tensor::from(0f32)
            } else {
                unsafe { Tensor::from_ptr(total) }
            });
        }
        let norms: Vec<Tensor> = grads.iter().map(|g| g.f_norm()).collect::<Result<_, _>>()?;
        let total = Tensor::f_stack(&norms, 0)?.f_norm()?;
        let coef = (total.f_add_scalar(1e-6)?.f_reciprocal()? * max_norm).f_clamp_max(1.0)?;
        for mut g in grads {
            let _ = g.f_mul_(&coef)?;
        }
        Ok(total)
    }

    /// Members of the model this optimiser updates.
    pub fn members(&self) -> i64 {
        self.members
    }

    /// One update at learning rate `lr` from the current gradients.
    pub fn step(&mut self, lr: f64) -> Result<(), TchError> {
        let SgdConfig {
            momentum: mu,
            nesterov,
            weight_decay: wd,
        } = self.config;
        if self.foreach {
            let ptrs = self.param_ptrs();
            let momenta: Vec<*const C_tensor> = self.params.iter().map(|p| p.momentum.as_ptr()).collect();
            let decay: Vec<u8> = self.params.iter().map(|p| u8::from(p.decay)).collect();
            // SAFETY: live tensors of equal count; exceptions caught in C++.
            return native("sgd step", |err, cap| unsafe {
                augwise_sgd_foreach(
                    ptrs.as_ptr(),
                    momenta.as_ptr(),
                    decay.as_ptr(),
                    ptrs.len() as i64,
                    lr,
                    mu,
                    wd,
                    i32::from(nesterov),
                    err,
                    cap,
                )
            });
        }
        tch::no_grad(|| {
            for p in &mut self.params {
                let g = p.tensor.f_grad()?;
                if !g.defined() {
                    continue;
                }
                let mut d = if p.decay && wd != 0.0 {
                    g.f_add(&p.tensor.f_mul_scalar(wd)?)?
                } else {
                    g
                };
                let step = if mu != 0.0 {
                    let _ = p.momentum.f_mul_scalar_(mu)?;
                    let _ = p.momentum.f_add_(&d)?;
                    if nesterov {
                        let _ = d.f_add_(&p.momentum.f_mul_scalar(mu)?)?;
                        d
                    } else {
                        p.momentum.shallow_clone()
                    }
                } else {
                    d
                };
                let _ = p.tensor.f_sub_(&step.f_mul_scalar(lr)?)?;
            }
            Ok(())
        })
    }

    pub fn state(&self) -> Result<SgdState, TchError> {
        self.params
            .iter()
            .map(|p| Ok((p.name.clone(), crate::device::deep_copy(&p.momentum)?)))
            .collect::<Result<_, TchError>>()
            .map(SgdState)
    }

    /// Restore momentum buffers from a snapshot of the same model.
    pub fn load_state(&mut self, state: &SgdState) -> Result<(), String> {
        if state.0.len() != self.params.len() {
            return Err(format!(
                "{} momentum buffers for {} parameters",
                state.0.len(),
                self.params.len()
            ));
        }
        for (p, (name, buf)) in self.params.iter_mut().zip(&state.0) {
            if &p.name != name || p.momentum.size() != buf.size() {
                return Err(format!(
                    "momentum buffer `{name}` does not match parameter `{}`",
                    p.name
                ));
            }
            p.momentum.f_copy_(buf).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Sum of |momentum| (a cheap fingerprint for tests).
    pub fn momentum_l1(&self) -> Result<f64, TchError> {
        self.params
            .iter()
            .map(|p| p.momentum.f_abs()?.f_sum(Kind::Double)?.f_double_value(&[]))
            .sum()
    }
}

/// Per-member clipping: every variable's rows split into k equal member blocks (both layouts
/// of `Model::members` do), one norm per member, one coefficient per member.
fn clip_members(grads: &[Tensor], k: i64, max_norm: f64) -> Result<Tensor, TchError> {
    let norms: Vec<Tensor> = grads
        .iter()
        .map(|g| {
            g.f_reshape([k, -1])?
                .f_norm_scalaropt_dim(2.0, [1i64].as_slice(), false)
        })
        .collect::<Result<_, _>>()?;
    let total = Tensor::f_stack(&norms, 0)?.f_norm_scalaropt_dim(2.0, [0i64].as_slice(), false)?;
    let coef = (total.f_add_scalar(1e-6)?.f_reciprocal()? * max_norm).f_clamp_max(1.0)?;
    for g in grads {
        let rows = g.size()[0];
        let mut shape = vec![rows];
        shape.extend(std::iter::repeat_n(1, g.dim() - 1));
        let per_row = coef
            .f_repeat_interleave_self_int(rows / k, Some(0), None)?
            .f_view(shape.as_slice())?;
        let _ = g.shallow_clone().f_mul_(&per_row)?;
    }
    Ok(total)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test may panic
mod tests {
    use super::*;
    use crate::model::Arch;
    use tch::Device;

    #[test]
    fn weight_decay_skips_batchnorm_and_biases() {
        let m = Model::new(Arch::RESNET20, 3, 10, Device::Cpu, 0).unwrap();
        let opt = Sgd::new(&m, SgdConfig::default()).unwrap();
        let decayed = opt.decayed();
        assert!(
            decayed.iter().all(|n| n.contains("conv") || n == &"fc.weight"),
            "{decayed:?}"
        );
        assert!(!decayed.iter().any(|n| n.contains("bn") || n.ends_with(".bias")));
        assert!(decayed.contains(&"fc.weight") && decayed.contains(&"conv1.weight"));

        // With zero gradients, a step moves only the decayed tensors.
        let mut m = m;
        let before = m.snapshot().unwrap();
        let mut opt = Sgd::new(
            &m,
            SgdConfig {
                weight_decay: 0.1,
                ..Default::default()
            },
        )
        .unwrap();
        let x = Tensor::zeros([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        (m.forward_t(&x, true).unwrap().sum(Kind::Float) * 0.0).backward();
        opt.step(0.5).unwrap();
        let after = m.snapshot().unwrap();
        for ((name, a), (_, b)) in before.0.iter().zip(&after.0) {
            let moved = !a.equal(b);
            let decays = a.dim() > 1;
            if !name.contains("running") && !name.contains("num_batches") {
                assert_eq!(moved, decays, "{name}: moved={moved}, decays={decays}");
            }
        }
        m.restore(&before).unwrap();
    }

    #[test]
    fn matches_pytorch_nesterov_formula_on_a_scalar() {
        // One 2-d parameter p=1 with loss p·3 ⇒ g=3. wd=0.1, μ=0.9, lr=0.1, nesterov.
        // step1: d=3.1, b=3.1, d'=3.1+2.79=5.89, p=1-0.589=0.411
        let mut vs = Model::new(Arch::RESNET20, 1, 2, Device::Cpu, 0).unwrap();
        let mut opt = Sgd::new(
            &vs,
            SgdConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.1,
            },
        )
        .unwrap();
        let (_, mut p) = vs
            .named_parameters()
            .into_iter()
            .find(|(n, _)| n == "fc.weight")
            .unwrap();
        let _ = tch::no_grad(|| p.fill_(1.0));
        opt.zero_grad().unwrap();
        (&p * 3.0).sum(Kind::Float).backward();
        opt.step(0.1).unwrap();
        assert!((p.double_value(&[0, 0]) - 0.411).abs() < 1e-6);
        // Restoring the state makes the next step repeat exactly.
        let s = opt.state().unwrap();
        opt.zero_grad().unwrap();
        (&p * 3.0).sum(Kind::Float).backward();
        let p_before = p.copy();
        opt.step(0.1).unwrap();
        let p_after = p.copy();
        tch::no_grad(|| p.copy_(&p_before));
        opt.load_state(&s).unwrap();
        opt.step(0.1).unwrap();
        assert!(p.equal(&p_after));
        let _ = &mut vs;
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let m = Model::new(Arch::RESNET20, 1, 2, Device::Cpu, 0).unwrap();
        let mut opt = Sgd::new(&m, SgdConfig::default()).unwrap();
        let x = Tensor::randn([4, 1, 8, 8], (Kind::Float, Device::Cpu));
        (m.forward_t(&x, true).unwrap().square().sum(Kind::Float) * 1000.0).backward();
        let before = opt.clip_grad_norm(3.0).unwrap().double_value(&[]);
        assert!(before > 3.0);
        let after = opt.clip_grad_norm(3.0).unwrap().double_value(&[]);
        assert!((after - 3.0).abs() < 1e-3, "{after}");
    }
}
