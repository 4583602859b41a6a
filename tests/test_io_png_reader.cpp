// PNG reading (inspect and generate --from read generated images; tests compare pixels): pixels and text
// chunks round-trip through the writer, and malformed files are refused naming the file.
#include <gtest/gtest.h>

#include "io/png_reader.h"
#include "io/png_writer.h"
#include "io_test_util.h"

namespace amskv::io {
namespace {

using io_test::expect_error;
using io_test::ScratchDir;

TEST(IoPngReader, PixelsAndTextRoundTrip) {
  ScratchDir dir;
  std::vector<float> chw(3 * 5 * 7);
  for (size_t i = 0; i < chw.size(); ++i) chw[i] = static_cast<float>(i % 11) / 10.0f;
  const std::string json = R"({"seed": 18446744073709551615, "label": "ünïcode"})";
  write_png(dir.path("a.png"), chw.data(), 5, 7, {{"amskv", json}, {"other", "x"}});
  EXPECT_TRUE(is_png_file(dir.path("a.png")));
  const PngImage png = read_png(dir.path("a.png"));
  EXPECT_EQ(png.height, 5);
  EXPECT_EQ(png.width, 7);
  EXPECT_EQ(png.text.at("amskv"), json);
  EXPECT_EQ(png.text.at("other"), "x");
  ASSERT_EQ(png.rgb.size(), 5u * 7u * 3u);
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 5; ++y)
      for (int64_t x = 0; x < 7; ++x)
        EXPECT_EQ(png.rgb[static_cast<size_t>((y * 7 + x) * 3 + c)],
                  float_to_u8(chw[static_cast<size_t>((c * 5 + y) * 7 + x)]));
  const PngImage text_only = read_png(dir.path("a.png"), /*pixels=*/false);
  EXPECT_TRUE(text_only.rgb.empty());
  EXPECT_EQ(text_only.text.at("amskv"), json);
  expect_error([&] { write_png(dir.path("b.png"), chw.data(), 5, 7, {{"", "x"}}); }, {"b.png", "text key"});
}

TEST(IoPngReader, MalformedFilesAreRefusedNamingThem) {
  ScratchDir dir;
  std::vector<float> chw(3 * 8 * 8, 0.25f);
  write_png(dir.path("a.png"), chw.data(), 8, 8, {{"amskv", "{}"}});
  const std::vector<uint8_t> bytes = io_test::read_bytes(dir.path("a.png"));
  for (size_t cut : {size_t{4}, size_t{20}, size_t{40}, bytes.size() - 20}) {
    io_test::write_bytes(dir.path("cut.png"),
                         std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<long>(cut)));
    expect_error([&] { read_png(dir.path("cut.png")); }, {dir.path("cut.png")});
  }
  std::vector<uint8_t> flipped = bytes;
  flipped[20] ^= 0xff;  // inside IHDR: its CRC no longer matches
  io_test::write_bytes(dir.path("flipped.png"), flipped);
  expect_error([&] { read_png(dir.path("flipped.png")); }, {dir.path("flipped.png"), "not a readable PNG"});
  io_test::write_bytes(dir.path("text.txt"), {'h', 'i'});
  EXPECT_FALSE(is_png_file(dir.path("text.txt")));
  EXPECT_FALSE(is_png_file(dir.path("missing.png")));
  expect_error([&] { read_png(dir.path("text.txt")); }, {"text.txt", "not a PNG"});
}

}  // namespace
}  // namespace amskv::io
