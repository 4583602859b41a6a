// XXH64, the checkpoint hash that generated PNGs record: the specification's reference values.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "io/file_hash.h"
#include "io_test_util.h"

namespace amskv::io {
namespace {

TEST(IoFileHash, Xxh64MatchesTheReferenceVectors) {
  EXPECT_EQ(xxh64("", 0), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(xxh64("a", 1), 0xD24EC4F1A98C6E5Bull);
  EXPECT_EQ(xxh64("abc", 3), 0x44BC2CF5AD770999ull);
  const char* text = "Nobody inspects the spammish repetition";  // 39 bytes: stripes, then the 8/4/1-byte tails
  EXPECT_EQ(xxh64(text, std::strlen(text)), 0xFBCEA83C8A378BF1ull);
  EXPECT_EQ(xxh64_hex(0xFBCEA83C8A378BF1ull), "xxh64:fbcea83c8a378bf1");
}

TEST(IoFileHash, FileHashIsTheHashOfItsBytes) {
  io_test::ScratchDir dir;
  std::vector<uint8_t> bytes(100003);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 131 + 7);
  io_test::write_bytes(dir.path("f.bin"), bytes);
  EXPECT_EQ(file_xxh64(dir.path("f.bin")), xxh64(bytes.data(), bytes.size()));
  io_test::write_bytes(dir.path("empty"), {});
  EXPECT_EQ(file_xxh64(dir.path("empty")), 0xEF46DB3751D8E999ull);
  io_test::expect_error([&] { file_xxh64(dir.path("missing")); }, {dir.path("missing")});
}

}  // namespace
}  // namespace amskv::io
