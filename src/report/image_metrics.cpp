#include "report/image_metrics.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"

namespace amskv::report {

double psnr(const float* a, const float* b, int64_t n, double peak) {
  AMSKV_CHECK(n > 0, "psnr: need at least one value, got n = ", n);
  AMSKV_CHECK(peak > 0 && std::isfinite(peak), "psnr: peak must be positive and finite, got ", peak);
  AMSKV_CHECK(a != nullptr && b != nullptr, "psnr: null image pointer");
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += d * d;
  }
  if (std::isnan(sum)) return std::numeric_limits<double>::quiet_NaN();
  const double mse = sum / static_cast<double>(n);
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(peak * peak / mse);
}

namespace {

constexpr int kWin = 11;
constexpr double kSigma = 1.5;

std::vector<double> gaussian_1d() {
  // The 2-D window exp(-(dx^2 + dy^2) / (2 sigma^2)) / Z is the outer product of this normalised 1-D one.
  std::vector<double> w(kWin);
  double sum = 0;
  for (int i = 0; i < kWin; ++i) {
    const double d = i - (kWin - 1) / 2.0;
    w[i] = std::exp(-d * d / (2 * kSigma * kSigma));
    sum += w[i];
  }
  for (double& v : w) v /= sum;
  return w;
}

}  // namespace

double ssim(const float* a, const float* b, int64_t channels, int64_t height, int64_t width) {
  AMSKV_CHECK(channels >= 1, "ssim: channels must be >= 1, got ", channels);
  AMSKV_CHECK(height >= kWin && width >= kWin, "ssim: image ", height, "x", width, " smaller than the ", kWin, "x",
              kWin, " window");
  AMSKV_CHECK(a != nullptr && b != nullptr, "ssim: null image pointer");
  const std::vector<double> w = gaussian_1d();
  const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
  const int64_t oh = height - kWin + 1, ow = width - kWin + 1;

  // Five quantities filtered horizontally (valid), then vertically (valid).
  constexpr int kQ = 5;  // x, y, x^2, y^2, xy
  std::vector<double> horiz(static_cast<size_t>(kQ * height * ow));
  double total = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const float* pa = a + c * height * width;
    const float* pb = b + c * height * width;
    for (int64_t r = 0; r < height; ++r) {
      const float* ra = pa + r * width;
      const float* rb = pb + r * width;
      for (int64_t j = 0; j < ow; ++j) {
        double s[kQ] = {0, 0, 0, 0, 0};
        for (int k = 0; k < kWin; ++k) {
          const double x = ra[j + k], y = rb[j + k], wk = w[k];
          s[0] += wk * x;
          s[1] += wk * y;
          s[2] += wk * x * x;
          s[3] += wk * y * y;
          s[4] += wk * (x * y);
        }
        for (int q = 0; q < kQ; ++q) horiz[(q * height + r) * ow + j] = s[q];
      }
    }
    double channel_sum = 0;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double s[kQ] = {0, 0, 0, 0, 0};
        for (int k = 0; k < kWin; ++k)
          for (int q = 0; q < kQ; ++q) s[q] += w[k] * horiz[(q * height + i + k) * ow + j];
        const double mx = s[0], my = s[1];
        const double vx = s[2] - mx * mx, vy = s[3] - my * my, cxy = s[4] - mx * my;
        channel_sum += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      }
    total += channel_sum / static_cast<double>(oh * ow);
  }
  return total / static_cast<double>(channels);
}

}  // namespace amskv::report
