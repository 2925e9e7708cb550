// CUDA autocast through libtorch's current API. tch's `autocast` calls the deprecated
// `at::autocast::set_enabled`, which prints a deprecation warning on every use, and cannot
// choose the dtype (it gets float16, which needs a loss scaler); AWS's path is bfloat16,
// whose range makes loss scaling unnecessary. Exceptions never cross into Rust.
#include <ATen/autocast_mode.h>

// Enter a bf16 autocast region; returns the previous enabled state (0/1), or -1 on error.
extern "C" int augwise_autocast_enter_bf16() {
  try {
    bool prev = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::increment_nesting();
    return prev ? 1 : 0;
  } catch (...) {
    return -1;
  }
}

// Leave the region entered with `prev` from augwise_autocast_enter_bf16.
extern "C" void augwise_autocast_exit(int prev) {
  try {
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(at::kCUDA, prev == 1);
  } catch (...) {
  }
}
