#include "backend/cpu/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "core/philox.h"

namespace amskv::cpu {

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
}

void mask_top_k_top_p(float* logits, int64_t count, int64_t vocab, int64_t top_k, double top_p) {
  const bool use_k = top_k > 0 && top_k < vocab;
  const bool use_p = top_p > 0.0;
  if (!use_k && !use_p) return;
#pragma omp parallel
  {
    std::vector<float> tmp(static_cast<size_t>(vocab));
    std::vector<int32_t> order(static_cast<size_t>(vocab));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      float* row = logits + i * vocab;
      if (use_k) {
        std::copy(row, row + vocab, tmp.begin());
        std::nth_element(tmp.begin(), tmp.begin() + (top_k - 1), tmp.end(), std::greater<float>());
        const float kth = tmp[static_cast<size_t>(top_k - 1)];
        for (int64_t v = 0; v < vocab; ++v)
          if (row[v] < kth) row[v] = kNegInf;
      }
      if (use_p) {
        // Entries already at -inf (top-k) carry no mass and sort below everything: only finite ones matter.
        size_t count_finite = 0;
        for (int64_t v = 0; v < vocab; ++v)
          if (row[v] != kNegInf) order[count_finite++] = static_cast<int32_t>(v);
        if (count_finite == 0) continue;
        std::stable_sort(order.begin(), order.begin() + count_finite,
                         [&](int32_t a, int32_t b) { return row[a] < row[b]; });
        const float mx = row[order[count_finite - 1]];
        double total = 0.0;
        for (size_t j = 0; j < count_finite; ++j) total += std::exp(static_cast<double>(row[order[j]]) - mx);
        double cumulative = 0.0;
        const double limit = 1.0 - top_p;
        for (size_t j = 0; j + 1 < count_finite; ++j) {  // never the largest
          const int32_t v = order[j];
          cumulative += std::exp(static_cast<double>(row[v]) - mx) / total;
          if (cumulative > limit) break;
          row[v] = kNegInf;
        }
      }
    }
  }
}

void sample_tokens(const float* logits, int64_t n, int64_t vocab, uint64_t seed, uint64_t image, int scale,
                   int64_t* tokens) {
  for (int64_t t = 0; t < n; ++t) {
    const float* row = logits + t * vocab;
    const float mx = *std::max_element(row, row + vocab);
    double total = 0.0;
    for (int64_t v = 0; v < vocab; ++v) total += std::exp(static_cast<double>(row[v]) - mx);
    const double target = uniform_at(seed, image, static_cast<uint32_t>(scale), static_cast<uint32_t>(t),
                                     RandomStream::Token) * total;
    double cumulative = 0.0;
    int64_t chosen = -1;
    for (int64_t v = 0; v < vocab; ++v) {
      const double p = std::exp(static_cast<double>(row[v]) - mx);
      if (p == 0.0) continue;
      cumulative += p;
      chosen = v;
      if (cumulative >= target) break;
    }
    tokens[t] = chosen;  // the last possible entry absorbs rounding at the top of the distribution
  }
}

void gumbel_soft_weights(const float* logits, int64_t n, int64_t vocab, double ratio, uint64_t seed, uint64_t image,
                         int scale, float* weights) {
  const double tau = std::max(0.27 * (1.0 - 0.95 * ratio), 0.005);
  const double mul = 1.0 + ratio;
  std::vector<double> z(static_cast<size_t>(vocab));
  for (int64_t t = 0; t < n; ++t) {
    const float* row = logits + t * vocab;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t v = 0; v < vocab; ++v) {
      const double u = uniform_at(seed, image, static_cast<uint32_t>(scale), static_cast<uint32_t>(t),
                                  RandomStream::Gumbel, static_cast<uint32_t>(v));
      const double g = -std::log(-std::log(u));
      z[v] = std::isinf(row[v]) ? -std::numeric_limits<double>::infinity() : (row[v] * mul + g) / tau;
      mx = std::max(mx, z[v]);
    }
    double total = 0.0;
    for (int64_t v = 0; v < vocab; ++v) total += (z[v] = std::exp(z[v] - mx));
    for (int64_t v = 0; v < vocab; ++v) weights[t * vocab + v] = static_cast<float>(z[v] / total);
  }
}

}  // namespace amskv::cpu
