// The PNG plots (heatmaps, grids, line plots): readable files with something drawn, and errors with context.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "report/plot.h"

namespace fs = std::filesystem;
using namespace amskv::report;

namespace {

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
