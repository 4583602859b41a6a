// PNG output: pixels survive a libpng round trip, the float->byte conversion truncates like the reference
// demo, grids follow make_grid's layout, and failures leave no file behind.
#include <gtest/gtest.h>
#include <png.h>

#include <cmath>

#include "io/png_writer.h"
#include "io_test_util.h"

namespace amskv::io {
namespace {

using io_test::expect_error;
using io_test::ScratchDir;

struct Rgb8 {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;  // [H, W, 3]
  const uint8_t* at(int64_t y, int64_t x) const { return pixels.data() + (y * width + x) * 3; }
};

Rgb8 read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_file(&image, path.c_str())) << image.message;
  image.format = PNG_FORMAT_RGB;
  Rgb8 out;
  out.height = image.height;
  out.width = image.width;
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  EXPECT_TRUE(png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) << image.message;
  return out;
}

TEST(IoPng, FloatToByteTruncatesLikeTheDemo) {
  EXPECT_EQ(float_to_u8(0.0f), 0);
  EXPECT_EQ(float_to_u8(1.0f), 255);
  EXPECT_EQ(float_to_u8(0.5f), 127);     // 127.5 truncates
  EXPECT_EQ(float_to_u8(0.999f), 254);   // 254.745 truncates
  EXPECT_EQ(float_to_u8(1.5f), 255);     // clamped
  EXPECT_EQ(float_to_u8(-0.25f), 0);     // clamped
  EXPECT_EQ(float_to_u8(std::nanf("")), 0);
  EXPECT_EQ(float_to_u8(3.0f / 255.0f), 3);
}

TEST(IoPng, WriteAndReadBack) {
  ScratchDir dir;
  const int64_t h = 2, w = 3;
  std::vector<float> chw(static_cast<size_t>(3 * h * w));
  for (size_t i = 0; i < chw.size(); ++i) chw[i] = static_cast<float>(i) / 17.0f;
  const std::string path = dir.path("img.png");
  write_png(path, chw.data(), h, w);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"img.png"});
  const Rgb8 img = read_png(path);
  ASSERT_EQ(img.height, h);
  ASSERT_EQ(img.width, w);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t c = 0; c < 3; ++c)
        EXPECT_EQ(img.at(y, x)[c], float_to_u8(chw[static_cast<size_t>(c * h * w + y * w + x)]));
}

TEST(IoPng, GridLayout) {
  ScratchDir dir;
  const int64_t n = 3, h = 2, w = 3, pad = 2;
  std::vector<float> images(static_cast<size_t>(n * 3 * h * w));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < h * w; ++p)
        images[static_cast<size_t>((i * 3 + c) * h * w + p)] = (static_cast<float>(i * 3 + c) + 1.0f) / 10.0f;
  const std::string path = dir.path("grid.png");
  write_png_grid(path, images.data(), n, h, w, /*columns=*/2, pad);
  const Rgb8 g = read_png(path);
  ASSERT_EQ(g.height, 2 * (h + pad) + pad);
  ASSERT_EQ(g.width, 2 * (w + pad) + pad);
  auto expect_image = [&](int64_t i, int64_t y0, int64_t x0) {
    for (int64_t c = 0; c < 3; ++c)
      EXPECT_EQ(g.at(y0, x0)[c], float_to_u8((static_cast<float>(i * 3 + c) + 1.0f) / 10.0f)) << i;
  };
  expect_image(0, pad, pad);
  expect_image(1, pad, pad + w + pad);
  expect_image(2, pad + h + pad, pad);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(g.at(0, 0)[c], 0);                                  // padding
    EXPECT_EQ(g.at(pad + h + pad, pad + w + pad)[c], 0);          // the empty fourth cell
  }
}

TEST(IoPng, Rgb8AndErrors) {
  ScratchDir dir;
  const std::vector<uint8_t> rgb = {1, 2, 3, 250, 251, 252};
  write_png_rgb8(dir.path("p.png"), rgb.data(), 1, 2);
  const Rgb8 img = read_png(dir.path("p.png"));
  EXPECT_EQ(img.pixels, rgb);

  expect_error([&] { write_png_rgb8("/nonexistent/dir/x.png", rgb.data(), 1, 2); }, {"/nonexistent/dir/x.png"});
  expect_error([&] { write_png_rgb8(dir.path("zero.png"), rgb.data(), 0, 2); }, {"zero.png"});
  expect_error([&] { write_png_grid(dir.path("g.png"), nullptr, 0, 2, 2, 1); }, {"g.png"});
  EXPECT_EQ(dir.files(), std::vector<std::string>{"p.png"});
}

}  // namespace
}  // namespace amskv::io
