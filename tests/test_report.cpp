// The analysis/report layer: image metrics, PNG figures, markdown tables.
#include <gtest/gtest.h>
#include <png.h>
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
#include "report/plot.h"

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

struct PngInfo {
  bool ok = false;
  unsigned width = 0, height = 0;
  std::vector<unsigned char> rgba;
};

PngInfo read_png(const std::string& path) {
  PngInfo info;
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) return info;
  img.format = PNG_FORMAT_RGBA;
  info.rgba.resize(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, info.rgba.data(), 0, nullptr)) {
    png_image_free(&img);
    return info;
  }
  info.ok = true;
  info.width = img.width;
  info.height = img.height;
  return info;
}

// Fraction of pixels that are not white (something was drawn).
double ink_fraction(const PngInfo& p) {
  size_t ink = 0;
  for (size_t i = 0; i + 3 < p.rgba.size(); i += 4)
    if (p.rgba[i] < 250 || p.rgba[i + 1] < 250 || p.rgba[i + 2] < 250) ++ink;
  return static_cast<double>(ink) / (p.width * static_cast<double>(p.height));
}

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() / ("amskv-test-report-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  size_t entries() const {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(path_)) ++n;
    return n;
  }

 private:
  fs::path path_;
};

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

TEST(ReportPlot, NiceTicksAndColormap) {
  EXPECT_EQ(nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  const auto t = nice_ticks(-3.7, 12.2, 6);
  ASSERT_GE(t.size(), 3u);
  EXPECT_GE(t.front(), -3.7);
  EXPECT_LE(t.back(), 12.2);
  EXPECT_EQ(nice_ticks(2, 2), std::vector<double>{2});
  // The colour map gets brighter monotonically (perceptual ordering).
  double prev = -1;
  for (int i = 0; i <= 50; ++i) {
    const Rgb c = colormap(i / 50.0);
    const double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    EXPECT_GT(lum, prev);
    prev = lum;
  }
}

TEST(ReportPlot, HeatmapWritesReadablePng) {
  TempDir dir;
  std::vector<std::vector<double>> v(10, std::vector<double>(10));
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 10; ++j) v[i][j] = i > j ? std::numeric_limits<double>::quiet_NaN() : (i + 1.0) / (j + 1.0);
  HeatmapStyle st;
  st.title = "density";
  st.x_label = "query scale j";
  st.y_label = "key scale i";
  st.colorbar_label = "d(i<-j)";
  const auto path = dir.file("h.png");
  heatmap_png(path, v, st);
  auto p = read_png(path);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.width, 900u);
  EXPECT_EQ(p.height, 600u);
  EXPECT_GT(ink_fraction(p), 0.2);

  st.width = 640;
  st.height = 480;
  st.log_scale = true;
  heatmap_png(path, v, st);  // overwrites
  p = read_png(path);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.width, 640u);
  EXPECT_EQ(p.height, 480u);
  EXPECT_EQ(dir.entries(), 1u);  // no temporary left behind
}

TEST(ReportPlot, GridOfHeatmapsWritesReadablePng) {
  TempDir dir;
  std::vector<std::vector<std::vector<double>>> maps;
  std::vector<std::string> titles;
  for (int l = 0; l < 5; ++l) {
    maps.emplace_back(4, std::vector<double>(6, l * 0.1));
    maps.back()[1][2] = std::numeric_limits<double>::quiet_NaN();
    titles.push_back("layer " + std::to_string(l));
  }
  HeatmapStyle st;
  st.title = "grid";
  st.width = 1000;
  st.height = 700;
  const auto path = dir.file("g.png");
  grid_of_heatmaps_png(path, maps, titles, st, 3);
  const auto p = read_png(path);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.width, 1000u);
  EXPECT_EQ(p.height, 700u);
  // Automatic size also works.
  st.width = st.height = 0;
  grid_of_heatmaps_png(path, maps, {}, st, 2);
  EXPECT_TRUE(read_png(path).ok);
  EXPECT_THROW(grid_of_heatmaps_png(path, maps, {"only one"}, st, 2), amskv::Error);
  EXPECT_THROW(grid_of_heatmaps_png(path, maps, titles, st, 0), amskv::Error);
}

TEST(ReportPlot, LinePlotWritesReadablePng) {
  TempDir dir;
  std::vector<Series> s(3);
  for (int k = 0; k < 3; ++k) {
    s[k].label = "layer " + std::to_string(k);
    for (int i = 1; i <= 9; ++i) {
      s[k].x.push_back(i);
      s[k].y.push_back(1.0 - 0.05 * k * i);
    }
  }
  s[1].y[4] = std::numeric_limits<double>::quiet_NaN();  // breaks the line
  LinePlotStyle st;
  st.title = "similarity";
  st.x_label = "scale";
  st.y_label = "sim";
  st.reference_y = 0.8;
  st.reference_label = "threshold";
  st.width = 700;
  st.height = 450;
  const auto path = dir.file("l.png");
  line_plot_png(path, s, st);
  const auto p = read_png(path);
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.width, 700u);
  EXPECT_EQ(p.height, 450u);
  EXPECT_GT(ink_fraction(p), 0.02);
  EXPECT_EQ(dir.entries(), 1u);
}

TEST(ReportPlot, ErrorsCarryContext) {
  TempDir dir;
  std::vector<std::vector<double>> ragged = {{1, 2}, {3}};
  try {
    heatmap_png(dir.file("r.png"), ragged, {});
    FAIL() << "no error";
  } catch (const amskv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
  std::vector<Series> s = {{"a", {1, 2}, {1}}};
  EXPECT_THROW(line_plot_png(dir.file("x.png"), s, {}), amskv::Error);
  std::vector<Series> ok = {{"a", {1, 2}, {1, 2}}};
  try {
    line_plot_png(dir.file("no/such/dir/x.png"), ok, {});
    FAIL() << "no error";
  } catch (const amskv::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/x.png"), std::string::npos) << e.what();
  }
}

// ----------------------------------------------------------------------------------------------- tables

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
