#include "backend/cpu/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace amskv::cpu {

namespace {

constexpr double kCubicA = -0.75;

// |x| <= 1
double cubic_near(double x) { return ((kCubicA + 2.0) * x - (kCubicA + 3.0)) * x * x + 1.0; }
// 1 < |x| < 2
double cubic_far(double x) { return ((kCubicA * x - 5.0 * kCubicA) * x + 8.0 * kCubicA) * x - 4.0 * kCubicA; }

void check_sizes(const char* what, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w) {
  AMSKV_CHECK(planes >= 0 && in_h > 0 && in_w > 0 && out_h > 0 && out_w > 0, what, ": invalid sizes (planes ", planes,
              ", ", in_h, "x", in_w, " -> ", out_h, "x", out_w, ")");
}

}  // namespace

std::vector<CubicTaps> bicubic_taps(int64_t in, int64_t out) {
  AMSKV_CHECK(in > 0 && out > 0, "bicubic_taps: invalid sizes ", in, " -> ", out);
  std::vector<CubicTaps> taps(static_cast<size_t>(out));
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    CubicTaps& tp = taps[static_cast<size_t>(o)];
    tp.src = scale * (static_cast<double>(o) + 0.5) - 0.5;
    const int64_t base = std::min(static_cast<int64_t>(std::floor(tp.src)), in - 1);
    const double t = std::clamp(tp.src - static_cast<double>(base), 0.0, 1.0);
    tp.weight[0] = cubic_far(t + 1.0);
    tp.weight[1] = cubic_near(t);
    tp.weight[2] = cubic_near(1.0 - t);
    tp.weight[3] = cubic_far(2.0 - t);
    for (int j = 0; j < 4; ++j) tp.index[j] = std::clamp<int64_t>(base - 1 + j, 0, in - 1);
  }
  return taps;
}

std::vector<AreaWindow> area_windows(int64_t in, int64_t out) {
  AMSKV_CHECK(in > 0 && out > 0, "area_windows: invalid sizes ", in, " -> ", out);
  std::vector<AreaWindow> w(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) {
    w[static_cast<size_t>(i)].start = (i * in) / out;
    w[static_cast<size_t>(i)].end = ((i + 1) * in + out - 1) / out;
  }
  return w;
}

void bicubic_resize(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                    float* y) {
  check_sizes("bicubic_resize", planes, in_h, in_w, out_h, out_w);
  const std::vector<CubicTaps> tx = bicubic_taps(in_w, out_w), ty = bicubic_taps(in_h, out_h);
  // Float weights, like the reference's float opmath.
  std::vector<float> wx(static_cast<size_t>(4 * out_w)), wy(static_cast<size_t>(4 * out_h));
  for (int64_t o = 0; o < out_w; ++o)
    for (int j = 0; j < 4; ++j) wx[static_cast<size_t>(4 * o + j)] = static_cast<float>(tx[o].weight[j]);
  for (int64_t o = 0; o < out_h; ++o)
    for (int j = 0; j < 4; ++j) wy[static_cast<size_t>(4 * o + j)] = static_cast<float>(ty[o].weight[j]);
#pragma omp parallel if (planes * out_h * out_w >= (int64_t{1} << 18))
  {
    std::vector<float> rows(static_cast<size_t>(in_h * out_w));
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const float* src = x + p * in_h * in_w;
      for (int64_t r = 0; r < in_h; ++r) {
        const float* s = src + r * in_w;
        float* d = rows.data() + r * out_w;
        for (int64_t o = 0; o < out_w; ++o) {
          const int64_t* ix = tx[static_cast<size_t>(o)].index;
          const float* w = wx.data() + 4 * o;
          float acc = s[ix[0]] * w[0];
          acc += s[ix[1]] * w[1];
          acc += s[ix[2]] * w[2];
          acc += s[ix[3]] * w[3];
          d[o] = acc;
        }
      }
      float* dst = y + p * out_h * out_w;
      for (int64_t o = 0; o < out_h; ++o) {
        const int64_t* iy = ty[static_cast<size_t>(o)].index;
        const float* w = wy.data() + 4 * o;
        const float *r0 = rows.data() + iy[0] * out_w, *r1 = rows.data() + iy[1] * out_w;
        const float *r2 = rows.data() + iy[2] * out_w, *r3 = rows.data() + iy[3] * out_w;
        float* d = dst + o * out_w;
        for (int64_t c = 0; c < out_w; ++c) {
          float acc = r0[c] * w[0];
          acc += r1[c] * w[1];
          acc += r2[c] * w[2];
          acc += r3[c] * w[3];
          d[c] = acc;
        }
      }
    }
  }
}

void area_resize(const float* x, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w, float* y) {
  check_sizes("area_resize", planes, in_h, in_w, out_h, out_w);
  const std::vector<AreaWindow> wx = area_windows(in_w, out_w), wy = area_windows(in_h, out_h);
#pragma omp parallel for schedule(static) if (planes * in_h * in_w >= (int64_t{1} << 18))
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x + p * in_h * in_w;
    float* dst = y + p * out_h * out_w;
    for (int64_t oy = 0; oy < out_h; ++oy) {
      const AreaWindow& a = wy[static_cast<size_t>(oy)];
      for (int64_t ox = 0; ox < out_w; ++ox) {
        const AreaWindow& b = wx[static_cast<size_t>(ox)];
        double s = 0.0;
        for (int64_t iy = a.start; iy < a.end; ++iy)
          for (int64_t ix = b.start; ix < b.end; ++ix) s += static_cast<double>(src[iy * in_w + ix]);
        dst[oy * out_w + ox] = static_cast<float>(s / static_cast<double>((a.end - a.start) * (b.end - b.start)));
      }
    }
  }
}

void nearest_upsample2x(const float* x, int64_t planes, int64_t h, int64_t w, float* y, int64_t pad) {
  AMSKV_CHECK(planes >= 0 && h > 0 && w > 0 && pad >= 0, "nearest_upsample2x: invalid sizes");
  const int64_t oh = 2 * h, ow = 2 * w, hp = oh + 2 * pad, wp = ow + 2 * pad;
#pragma omp parallel for schedule(static) if (planes * hp * wp >= (int64_t{1} << 20))
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* src = x + pl * h * w;
    float* dst = y + pl * hp * wp;
    if (pad > 0) std::memset(dst, 0, sizeof(float) * static_cast<size_t>(pad * wp));
    for (int64_t r = 0; r < h; ++r) {
      const float* s = src + r * w;
      float* d0 = dst + (pad + 2 * r) * wp;
      float* d1 = d0 + wp;
      for (int64_t c = 0; c < pad; ++c) d0[c] = d0[pad + ow + c] = 0.0f;
      for (int64_t j = 0; j < w; ++j) d0[pad + 2 * j] = d0[pad + 2 * j + 1] = s[j];
      std::memcpy(d1, d0, sizeof(float) * static_cast<size_t>(wp));
    }
    if (pad > 0) std::memset(dst + (pad + oh) * wp, 0, sizeof(float) * static_cast<size_t>(pad * wp));
  }
}

}  // namespace amskv::cpu
