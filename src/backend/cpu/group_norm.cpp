#include "backend/cpu/group_norm.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/activations.h"
#include "core/error.h"

namespace amskv::cpu {

namespace {

// Below this many elements the calling thread does it alone (a parallel region costs more than it saves).
constexpr int64_t kParallelMinElements = int64_t{1} << 20;

void group_norm_impl(const float* x, float* y, int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t pad,
                     int64_t groups, const float* gamma, const float* beta, float eps, bool fuse_silu) {
  AMSKV_CHECK(groups > 0 && channels > 0 && channels % groups == 0, "group_norm: ", channels,
              " channels are not divisible into ", groups, " groups");
  AMSKV_CHECK(batch >= 0 && h > 0 && w > 0 && pad >= 0, "group_norm: invalid sizes");
  const int64_t cpg = channels / groups;
  const int64_t hw = h * w, count = cpg * hw;
  const int64_t units = batch * groups;
  const int64_t hp = h + 2 * pad, wp = w + 2 * pad;
  std::vector<float> scale(static_cast<size_t>(batch * channels)), shift(static_cast<size_t>(batch * channels));
#pragma omp parallel if (batch * channels * hw >= kParallelMinElements)
  {
    // Statistics per (image, group): mean, then the mean of centred squares, both in double.
#pragma omp for schedule(static)
    for (int64_t u = 0; u < units; ++u) {
      const float* p = x + u * count;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < count; ++i) s += static_cast<double>(p[i]);
      const double mean = s / static_cast<double>(count);
      double q = 0.0;
#pragma omp simd reduction(+ : q)
      for (int64_t i = 0; i < count; ++i) {
        const double d = static_cast<double>(p[i]) - mean;
        q += d * d;
      }
      const double rstd = 1.0 / std::sqrt(q / static_cast<double>(count) + static_cast<double>(eps));
      const int64_t b = u / groups, g = u % groups;
      for (int64_t j = 0; j < cpg; ++j) {
        const int64_t c = g * cpg + j;
        const double a = rstd * (gamma ? static_cast<double>(gamma[c]) : 1.0);
        scale[static_cast<size_t>(b * channels + c)] = static_cast<float>(a);
        shift[static_cast<size_t>(b * channels + c)] =
            static_cast<float>((beta ? static_cast<double>(beta[c]) : 0.0) - mean * a);
      }
    }
    // y = x·scale + shift per (image, channel), optionally through SiLU, into the (padded) output plane.
#pragma omp for schedule(static)
    for (int64_t bc = 0; bc < batch * channels; ++bc) {
      const float a = scale[static_cast<size_t>(bc)], sh = shift[static_cast<size_t>(bc)];
      const float* src = x + bc * hw;
      float* dst = y + bc * hp * wp;
      if (pad > 0) std::memset(dst, 0, sizeof(float) * static_cast<size_t>(pad * wp));
      for (int64_t r = 0; r < h; ++r) {
        const float* p = src + r * w;
        float* q = dst + (r + pad) * wp;
        for (int64_t c = 0; c < pad; ++c) q[c] = q[pad + w + c] = 0.0f;
        q += pad;
        if (fuse_silu) {
#pragma omp simd
          for (int64_t i = 0; i < w; ++i) q[i] = silu_scalar(p[i] * a + sh);
        } else {
#pragma omp simd
          for (int64_t i = 0; i < w; ++i) q[i] = p[i] * a + sh;
        }
      }
      if (pad > 0) std::memset(dst + (pad + h) * wp, 0, sizeof(float) * static_cast<size_t>(pad * wp));
    }
  }
}

}  // namespace

void group_norm(const float* x, float* y, int64_t batch, int64_t channels, int64_t hw, int64_t groups,
                const float* gamma, const float* beta, float eps, bool fuse_silu) {
  group_norm_impl(x, y, batch, channels, 1, hw, 0, groups, gamma, beta, eps, fuse_silu);
}

void group_norm_padded(const float* x, float* y, int64_t batch, int64_t channels, int64_t h, int64_t w, int64_t pad,
                       int64_t groups, const float* gamma, const float* beta, float eps, bool fuse_silu) {
  group_norm_impl(x, y, batch, channels, h, w, pad, groups, gamma, beta, eps, fuse_silu);
}

}  // namespace amskv::cpu
