// PNG reading (inspect and generate --from read generated images; tests compare pixels): pixels and text
// chunks round-trip through the writer, and malformed files are refused naming the file.
#include <gtest/gtest.h>
#include <zlib.h>

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

// A chunk with its length and CRC, as a PNG writer would make it.
void put_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& body) {
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  be32(static_cast<uint32_t>(body.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), body.begin(), body.end());
  be32(static_cast<uint32_t>(crc32(0, out.data() + start, static_cast<uInt>(out.size() - start))));
}

// Found by fuzz_png: a header of 8192 x 8192 in a file of a hundred bytes made the reader allocate 192 MiB
// for its pixels before the data ran out; the header is now weighed against what the file can hold.
TEST(IoPngReader, AHeaderDeclaringMorePixelsThanTheFileCanHoldIsRefusedFirst) {
  ScratchDir dir;
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  put_chunk(png, "IHDR", {0, 0, 0x20, 0, 0, 0, 0x20, 0, 8, 2, 0, 0, 0});  // 8192 x 8192 RGB, 8 bits
  put_chunk(png, "IDAT", {0x78, 0x9c, 0x63, 0x60, 0, 0, 0, 1, 0, 1});
  put_chunk(png, "IEND", {});
  io_test::write_bytes(dir.path("big.png"), png);
  expect_error([&] { read_png(dir.path("big.png")); }, {dir.path("big.png"), "more pixel data than the file can hold"});
  EXPECT_EQ(read_png(dir.path("big.png"), /*pixels=*/false).width, 8192u);  // the header alone is fine
}

// Found by fuzz_png: a 133-byte file whose zTXt chunk declares 2,046,820,380 bytes made libpng allocate them
// before reading; chunk lengths are now checked against the file first.
TEST(IoPngReader, AChunkLongerThanTheFileIsRefusedBeforeLibpngAllocatesIt) {
  ScratchDir dir;
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  put_chunk(png, "IHDR", {0, 0, 0, 2, 0, 0, 0, 1, 8, 0, 0, 0, 0});
  png.insert(png.end(), {0x7a, 0x00, 0x00, 0x1c, 'z', 'T', 'X', 't', 'a', 'm', 's', 'k', 'v', 0, 0});
  io_test::write_bytes(dir.path("long_chunk.png"), png);
  for (bool pixels : {false, true})
    expect_error([&] { read_png(dir.path("long_chunk.png"), pixels); },
                 {dir.path("long_chunk.png"), "chunk zTXt at byte 33 declares 2046820380 bytes"});
  // Found next: the same chunk cut inside its data, with less than a chunk's 12 bytes of framing left.
  png.resize(33 + 11);
  io_test::write_bytes(dir.path("cut_chunk.png"), png);
  expect_error([&] { read_png(dir.path("cut_chunk.png")); },
               {dir.path("cut_chunk.png"), "chunk zTXt at byte 33 declares 2046820380 bytes, more than the 0 left"});
}

}  // namespace
}  // namespace amskv::io
