#include "backend/cpu/spatial_attention.h"

#include <algorithm>
#include <cmath>

#include "backend/cpu/activations.h"
#include "backend/cpu/gemm.h"

namespace amskv::cpu {

void spatial_attention(const float* qkv, int64_t C, int64_t N, float* out, float* s) {
  const float* q = qkv;
  const float* k = qkv + C * N;
  const float* v = qkv + 2 * C * N;
  // s[i, j] = (q_i · k_j) · C^-0.5 (the reference's int(C) ** -0.5 as a float multiplier)
  const float scale = static_cast<float>(std::pow(static_cast<double>(C), -0.5));
  gemm(true, false, N, N, C, scale, q, N, k, N, 0.0f, s, N);
#pragma omp parallel for schedule(static) if (N * N >= (int64_t{1} << 18))
  for (int64_t i = 0; i < N; ++i) {
    float* row = s + i * N;
    float mx = row[0];
    for (int64_t j = 1; j < N; ++j) mx = std::max(mx, row[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < N; ++j) {
      row[j] = fast_exp(row[j] - mx);
      sum += static_cast<double>(row[j]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t j = 0; j < N; ++j) row[j] *= inv;
  }
  // out[c, i] = Σ_j v[c, j] · s[i, j]
  gemm(false, true, C, N, N, 1.0f, v, N, s, N, 0.0f, out, N);
}

}  // namespace amskv::cpu
