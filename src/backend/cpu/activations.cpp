#include "backend/cpu/activations.h"

namespace amskv::cpu {

namespace {
constexpr int64_t kParallelMin = int64_t{1} << 16;
}  // namespace

void silu(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = detail::silu_kernel(x[i]);
}

void silu(float* x, int64_t n) { silu(x, x, n); }

void gelu_tanh(const float* x, float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = detail::gelu_tanh_kernel(x[i]);
}

void gelu_tanh(float* x, int64_t n) { gelu_tanh(x, x, n); }

}  // namespace amskv::cpu
