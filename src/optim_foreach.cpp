// SGD and gradient clipping over all parameters at once through libtorch's multi-tensor
// (`_foreach_*`) kernels, as torch.optim.SGD(foreach=True) and clip_grad_norm_(foreach=True)
// do on CUDA. tch binds no list-returning op; a ResNet-20 has 65 parameters, and an update
// written one tensor at a time is ~500 kernel launches per step, a quarter of a small
// model's step on a GPU. Exceptions never cross into Rust: each function returns 0, or -1
// with the message in `err`.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstring>
#include <vector>

namespace {

void fail(char* err, size_t cap, const char* msg) {
  if (err != nullptr && cap > 0) {
    std::strncpy(err, msg, cap - 1);
    err[cap - 1] = '\0';
  }
}

}  // namespace

// One step of PyTorch's SGD formula (see optim.rs) over the n parameters whose gradient is
// defined: d = g + wd·p where decay[i]; b = μ·b + d; d' = d + μ·b (nesterov) or b;
// p = p − lr·d'. The gradients are left as they were.
extern "C" int augwise_sgd_foreach(at::Tensor* const* params, at::Tensor* const* momenta, const unsigned char* decay,
                                   int64_t n, double lr, double mu, double wd, int nesterov, char* err, size_t cap) {
  try {
    c10::NoGradGuard no_grad;
    std::vector<at::Tensor> p, b, d;
    std::vector<at::Tensor> p_decay, g_decay;
    std::vector<size_t> decay_at;
    for (int64_t i = 0; i < n; ++i) {
      const at::Tensor& g = params[i]->grad();
      if (!g.defined()) continue;
      if (decay[i] != 0 && wd != 0.0) {
        decay_at.push_back(d.size());
        p_decay.push_back(*params[i]);
        g_decay.push_back(g);
      }
      p.push_back(*params[i]);
      b.push_back(*momenta[i]);
      d.push_back(g);
    }
    if (p.empty()) return 0;
    if (!p_decay.empty()) {
      std::vector<at::Tensor> decayed = at::_foreach_add(g_decay, p_decay, wd);
      for (size_t j = 0; j < decay_at.size(); ++j) d[decay_at[j]] = decayed[j];
    }
    std::vector<at::Tensor> step = d;
    if (mu != 0.0) {
      at::_foreach_mul_(b, mu);
      at::_foreach_add_(b, d);
      step = nesterov != 0 ? at::_foreach_add(d, b, mu) : b;
    }
    at::_foreach_add_(p, step, -lr);
    return 0;
  } catch (const std::exception& e) {
    fail(err, cap, e.what());
    return -1;
  }
}

// Scale the defined gradients of the n parameters so their global L2 norm is at most
// max_norm (clip_grad_norm_ with foreach=True: no host sync). Writes the norm before
// clipping, a 0-dim tensor on the gradients' device, to *total_out (a new tensor the caller
// owns), or leaves it null when no gradient is defined.
extern "C" int augwise_clip_foreach(at::Tensor* const* params, int64_t n, double max_norm, at::Tensor** total_out,
                                    char* err, size_t cap) {
  try {
    c10::NoGradGuard no_grad;
    *total_out = nullptr;
    std::vector<at::Tensor> g;
    for (int64_t i = 0; i < n; ++i) {
      const at::Tensor& grad = params[i]->grad();
      if (grad.defined()) g.push_back(grad);
    }
    if (g.empty()) return 0;
    at::Tensor total = at::stack(at::_foreach_norm(g, 2.0)).norm();
    at::Tensor coef = ((total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
    at::_foreach_mul_(g, coef);
    *total_out = new at::Tensor(total);
    return 0;
  } catch (const std::exception& e) {
    fail(err, cap, e.what());
    return -1;
  }
}

// Drop the gradients of the n parameters (PyTorch's zero_grad(set_to_none=True)): no kernel
// at all, where zeroing them is one launch per parameter; backward allocates them afresh.
extern "C" int augwise_grads_to_none(at::Tensor* const* params, int64_t n, char* err, size_t cap) {
  try {
    for (int64_t i = 0; i < n; ++i) params[i]->mutable_grad() = at::Tensor();
    return 0;
  } catch (const std::exception& e) {
    fail(err, cap, e.what());
    return -1;
  }
}
