// The analysis/report layer: image metrics and markdown tables (plots: test_plots.cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "report/image_metrics.h"
#include "report/markdown_table.h"

namespace fs = std::filesystem;
using namespace amskv::report;

namespace {

std::vector<float> random_image(int64_t n, unsigned seed, float lo = 0.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

// SSIM by the definition, straight from 2-D windows (independent of the separable implementation).
double ssim_brute(const float* a, const float* b, int C, int H, int W) {
  double w[11][11], z = 0;
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < 11; ++j) {
      w[i][j] = std::exp(-((i - 5) * (i - 5) + (j - 5) * (j - 5)) / (2 * 1.5 * 1.5));
      z += w[i][j];
    }
  const double C1 = 1e-4, C2 = 9e-4;
  double total = 0;
  for (int c = 0; c < C; ++c) {
    double sum = 0;
    for (int y = 0; y + 11 <= H; ++y)
      for (int x = 0; x + 11 <= W; ++x) {
        double mx = 0, my = 0;
        for (int i = 0; i < 11; ++i)
          for (int j = 0; j < 11; ++j) {
            mx += w[i][j] / z * a[(c * H + y + i) * W + x + j];
            my += w[i][j] / z * b[(c * H + y + i) * W + x + j];
          }
        double vx = 0, vy = 0, cxy = 0;
        for (int i = 0; i < 11; ++i)
          for (int j = 0; j < 11; ++j) {
            const double dx = a[(c * H + y + i) * W + x + j] - mx, dy = b[(c * H + y + i) * W + x + j] - my;
            vx += w[i][j] / z * dx * dx;
            vy += w[i][j] / z * dy * dy;
            cxy += w[i][j] / z * dx * dy;
          }
        sum += (2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      }
    total += sum / ((H - 10) * (W - 10));
  }
  return total / C;
}

}  // namespace

// ----------------------------------------------------------------------------------------------- PSNR

TEST(ReportPsnr, IdenticalIsInfinite) {
  const auto a = random_image(300, 1);
  const double p = psnr(a.data(), a.data(), 300);
  EXPECT_TRUE(std::isinf(p));
  EXPECT_GT(p, 0);
  EXPECT_EQ(p, std::numeric_limits<double>::infinity());
}

TEST(ReportPsnr, KnownPerturbation) {
  // Uniform offset 0.1: MSE 0.01, PSNR 20 dB at peak 1.
  std::vector<float> a(1000, 0.25f), b(1000, 0.35f);
  const double mse = std::pow(static_cast<double>(0.35f) - static_cast<double>(0.25f), 2);
  EXPECT_NEAR(psnr(a.data(), b.data(), 1000), 10 * std::log10(1.0 / mse), 1e-9);
  EXPECT_NEAR(psnr(a.data(), b.data(), 1000), 20.0, 1e-4);
  // Random perturbation, any peak.
  const auto x = random_image(5000, 2);
  auto y = x;
  std::mt19937 rng(3);
  std::normal_distribution<float> noise(0.f, 0.05f);
  double sum = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] += noise(rng);
    sum += std::pow(static_cast<double>(x[i]) - y[i], 2);
  }
  const double expected = 10 * std::log10(255.0 * 255.0 / (sum / 5000));
  EXPECT_NEAR(psnr(x.data(), y.data(), 5000, 255.0), expected, 1e-9);
  EXPECT_DOUBLE_EQ(psnr(x.data(), y.data(), 5000), psnr(y.data(), x.data(), 5000));
}

TEST(ReportPsnr, RejectsBadArguments) {
  float a = 0, b = 0;
  EXPECT_THROW(psnr(&a, &b, 0), amskv::Error);
  EXPECT_THROW(psnr(&a, &b, 1, 0.0), amskv::Error);
}

// ----------------------------------------------------------------------------------------------- SSIM

TEST(ReportSsim, IdenticalIsOne) {
  const auto a = random_image(3 * 32 * 40, 4);
  EXPECT_NEAR(ssim(a.data(), a.data(), 3, 32, 40), 1.0, 1e-12);
}

TEST(ReportSsim, ConstantImagesMatchClosedForm) {
  // Constant 0.5 vs 0.6 on one 11x11 window: variances and covariance vanish, so
  // SSIM = (2 * 0.5 * 0.6 + C1) / (0.5^2 + 0.6^2 + C1).
  std::vector<float> a(121, 0.5f), b(121, 0.6f);
  const double x = 0.5, y = static_cast<double>(0.6f), C1 = 1e-4;
  EXPECT_NEAR(ssim(a.data(), b.data(), 1, 11, 11), (2 * x * y + C1) / (x * x + y * y + C1), 1e-9);
}

TEST(ReportSsim, ShiftedCopyBelowOneAndMatchesDefinition) {
  const int C = 3, H = 17, W = 14;
  const auto a = random_image(C * H * W, 5, 0.f, 0.8f);
  auto b = a;
  for (float& v : b) v += 0.15f;
  const double s = ssim(a.data(), b.data(), C, H, W);
  EXPECT_LT(s, 1.0);
  EXPECT_GT(s, 0.5);
  EXPECT_NEAR(s, ssim_brute(a.data(), b.data(), C, H, W), 1e-10);
}

TEST(ReportSsim, RandomPairMatchesDefinitionAndIsSymmetric) {
  const int C = 2, H = 23, W = 19;
  const auto a = random_image(C * H * W, 6);
  const auto b = random_image(C * H * W, 7);
  const double ab = ssim(a.data(), b.data(), C, H, W);
  EXPECT_NEAR(ab, ssim_brute(a.data(), b.data(), C, H, W), 1e-10);
  EXPECT_DOUBLE_EQ(ab, ssim(b.data(), a.data(), C, H, W));
  EXPECT_LT(std::fabs(ab), 0.2);  // independent noise: little structure in common
}

TEST(ReportSsim, RejectsTooSmallImages) {
  std::vector<float> a(3 * 10 * 20, 0.f);
  EXPECT_THROW(ssim(a.data(), a.data(), 3, 10, 20), amskv::Error);
  EXPECT_THROW(ssim(a.data(), a.data(), 0, 11, 11), amskv::Error);
}

// ----------------------------------------------------------------------------------------------- plots

TEST(ReportMarkdown, ShapeAndAlignment) {
  const std::string t = markdown_table({"policy", "PSNR", "note"},
                                       {{"full", "inf", "reference"}, {"ams", "31.25", "a|b"}, {"window", "7", ""}});
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] == '\n') {
      lines.push_back(t.substr(start, i - start));
      start = i + 1;
    }
  EXPECT_EQ(start, t.size());  // ends with a newline
  ASSERT_EQ(lines.size(), 5u);
  for (const auto& l : lines) {
    EXPECT_EQ(l.size(), lines[0].size()) << l;  // aligned columns
    EXPECT_EQ(l.front(), '|');
    EXPECT_EQ(l.back(), '|');
  }
  EXPECT_EQ(lines[0], "| policy |  PSNR | note      |");
  EXPECT_EQ(lines[1], "| :----- | ----: | :-------- |");
  EXPECT_EQ(lines[2], "| full   |   inf | reference |");
  EXPECT_EQ(lines[3], "| ams    | 31.25 | a\\|b      |");
  EXPECT_EQ(lines[4], "| window |     7 |           |");

  const std::string c = markdown_table({"a"}, {{"x"}}, {Align::Center});
  EXPECT_EQ(c, "|   a   |\n| :---: |\n|   x   |\n");
  EXPECT_THROW(markdown_table({"a", "b"}, {{"1"}}), amskv::Error);
  EXPECT_THROW(markdown_table({}, {}), amskv::Error);
}
