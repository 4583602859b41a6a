#include "backend/cpu/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/gemm.h"
#include "backend/cpu/kv_int8_ops.h"
#include "core/error.h"

namespace amskv::cpu {

void segmented_attention(const float* q, int64_t rows, int64_t heads, int64_t n, int64_t head_dim,
                         std::span<const AttentionSegment> segments, float* out, double* segment_mass,
                         float* key_mass) {
  int64_t total = 0;
  for (const auto& s : segments) total += s.tokens;
  const int64_t nseg = static_cast<int64_t>(segments.size());
  const int64_t width = heads * head_dim;

#pragma omp parallel
  {
    // Scores for all keys of one (row, head); the BLAS calls below run single-threaded inside this region.
    std::vector<float> scores(static_cast<size_t>(n * total));
    std::vector<float> inv_sum(static_cast<size_t>(n));
    std::vector<float> dequantized;  // an 8-bit segment's block as float32
#pragma omp for schedule(dynamic)
    for (int64_t rh = 0; rh < rows * heads; ++rh) {
      const int64_t r = rh / heads, h = rh % heads;
      const float* qh = q + rh * n * head_dim;
      int64_t col = 0;
      for (const auto& s : segments) {
        gemm(false, true, n, s.tokens, head_dim, 1.0f, qh, head_dim, segment_block(s, false, rh, head_dim, dequantized),
             head_dim, 0.0f, scores.data() + col, total);
        col += s.tokens;
      }
      for (int64_t i = 0; i < n; ++i) {
        float* row = scores.data() + i * total;
        const float mx = *std::max_element(row, row + total);
        float sum = 0.0f;
        for (int64_t j = 0; j < total; ++j) {
          row[j] = std::exp(row[j] - mx);
          sum += row[j];
        }
        inv_sum[i] = 1.0f / sum;
      }
      if (segment_mass) {
        double* mass = segment_mass + rh * nseg;
        int64_t c0 = 0;
        for (int64_t si = 0; si < nseg; ++si) {
          double m = 0.0;
          for (int64_t i = 0; i < n; ++i) {
            const float* row = scores.data() + i * total + c0;
            double part = 0.0;
            for (int64_t j = 0; j < segments[si].tokens; ++j) part += row[j];
            m += part * inv_sum[i];
          }
          mass[si] = m;
          c0 += segments[si].tokens;
        }
      }
      if (key_mass) {
        float* km = key_mass + rh * total;
        for (int64_t j = 0; j < total; ++j) km[j] = 0.0f;
        for (int64_t i = 0; i < n; ++i) {
          const float* row = scores.data() + i * total;
          for (int64_t j = 0; j < total; ++j) km[j] += row[j] * inv_sum[i];
        }
      }
      // Unnormalised probabilities times V, segment by segment, then one scale per query row.
      float* oh = out + r * n * width + h * head_dim;
      col = 0;
      for (size_t si = 0; si < segments.size(); ++si) {
        const auto& s = segments[si];
        gemm(false, false, n, head_dim, s.tokens, 1.0f, scores.data() + col, total,
             segment_block(s, true, rh, head_dim, dequantized), head_dim, si == 0 ? 0.0f : 1.0f, oh, width);
        col += s.tokens;
      }
      for (int64_t i = 0; i < n; ++i)
        for (int64_t d = 0; d < head_dim; ++d) oh[i * width + d] *= inv_sum[i];
    }
  }
}

}  // namespace amskv::cpu
