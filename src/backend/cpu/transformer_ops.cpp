#include "backend/cpu/transformer_ops.h"

#include <cmath>

namespace amskv::cpu {

void layer_norm_modulate(const float* x, int64_t rows, int64_t tokens, int64_t width, const float* scale,
                         const float* shift, int64_t mod_stride, float* y) {
#pragma omp parallel for schedule(static)
  for (int64_t rt = 0; rt < rows * tokens; ++rt) {
    const int64_t r = rt / tokens;
    const float* xi = x + rt * width;
    float* yi = y + rt * width;
    double mean = 0.0;
    for (int64_t c = 0; c < width; ++c) mean += xi[c];
    mean /= static_cast<double>(width);
    double var = 0.0;
    for (int64_t c = 0; c < width; ++c) {
      const double d = xi[c] - mean;
      var += d * d;
    }
    var /= static_cast<double>(width);
    const auto inv = static_cast<float>(1.0 / std::sqrt(var + 1e-6));
    const auto m = static_cast<float>(mean);
    const float* s = scale + r * mod_stride;
    const float* b = shift + r * mod_stride;
    for (int64_t c = 0; c < width; ++c) yi[c] = (xi[c] - m) * inv * (1.0f + s[c]) + b[c];
  }
}

void gated_residual_add(float* x, const float* branch, int64_t rows, int64_t tokens, int64_t width,
                        const float* gate, int64_t gate_stride) {
#pragma omp parallel for schedule(static)
  for (int64_t rt = 0; rt < rows * tokens; ++rt) {
    const float* g = gate + (rt / tokens) * gate_stride;
    float* xi = x + rt * width;
    const float* bi = branch + rt * width;
    for (int64_t c = 0; c < width; ++c) xi[c] += g[c] * bi[c];
  }
}

void split_qkv_l2norm(const float* qkv, int64_t rows, int64_t n, int64_t heads, int64_t head_dim,
                      const float* tau, float* q, float* k, float* v) {
  const int64_t C = heads * head_dim;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t t = 0; t < n; ++t) {
        const float* src = qkv + (r * n + t) * 3 * C + h * head_dim;
        const int64_t dst = ((r * heads + h) * n + t) * head_dim;
        float qq = 0.0f, kk = 0.0f;
        for (int64_t d = 0; d < head_dim; ++d) {
          qq += src[d] * src[d];
          kk += src[C + d] * src[C + d];
        }
        const float qs = tau[h] / std::max(std::sqrt(qq), 1e-12f);
        const float ks = 1.0f / std::max(std::sqrt(kk), 1e-12f);
        for (int64_t d = 0; d < head_dim; ++d) {
          q[dst + d] = src[d] * qs;
          k[dst + d] = src[C + d] * ks;
          v[dst + d] = src[2 * C + d];
        }
      }
    }
  }
}

}  // namespace amskv::cpu
