#include "backend/cpu/key_similarity.h"

#include <cmath>
#include <vector>

#include "backend/cpu/kv_int8_ops.h"
#include "backend/cpu/resample.h"
#include "core/error.h"

namespace amskv::cpu {

double inter_scale_key_similarity(const AttentionSegment& prev, int64_t prev_side, const AttentionSegment& cur,
                                  int64_t cur_side, int64_t rows, int64_t heads, int64_t head_dim) {
  AMSKV_CHECK(prev.tokens == prev_side * prev_side && cur.tokens == cur_side * cur_side,
              "similarity: segment sizes do not match the scale sides");
  AMSKV_CHECK(cur.dtype == DType::F32, "similarity: the CPU reads float32 current keys");
  const int64_t n_prev = prev.tokens, n_cur = cur.tokens;
  // Per-(row, head) sums added in a fixed order afterwards, so the result does not depend on threads.
  std::vector<double> partial(static_cast<size_t>(rows * heads), 0.0);
#pragma omp parallel
  {
    std::vector<float> planes(static_cast<size_t>(head_dim * n_prev));
    std::vector<float> up(static_cast<size_t>(head_dim * n_cur));
    std::vector<float> dequantized;  // the previous keys of an 8-bit store
#pragma omp for schedule(static)
    for (int64_t rh = 0; rh < rows * heads; ++rh) {
      const float* kp = segment_block(prev, false, rh, head_dim, dequantized);
      const float* kc = static_cast<const float*>(cur.k) + rh * cur.head_stride;
      for (int64_t t = 0; t < n_prev; ++t)  // tokens-major -> one grid per head channel
        for (int64_t d = 0; d < head_dim; ++d) planes[d * n_prev + t] = kp[t * head_dim + d];
      bicubic_resize(planes.data(), head_dim, prev_side, prev_side, cur_side, cur_side, up.data());
      for (int64_t t = 0; t < n_cur; ++t) {
        double dot = 0.0, uu = 0.0, kk = 0.0;
        for (int64_t d = 0; d < head_dim; ++d) {
          const double u = up[d * n_cur + t], k = kc[t * head_dim + d];
          dot += u * k;
          uu += u * u;
          kk += k * k;
        }
        partial[rh] += dot / std::max(std::sqrt(uu * kk), 1e-30);
      }
    }
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total / static_cast<double>(rows * heads * n_cur);
}

}  // namespace amskv::cpu
