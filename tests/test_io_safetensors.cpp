// safetensors: the golden reference file, round trips of every dtype with metadata, and malformed files.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstring>

#include "golden_dir.h"
#include "io/safetensors.h"
#include "io/tensor_file.h"
#include "io_test_util.h"

namespace amskv::io {
namespace {

using io_test::expect_error;
using io_test::expect_refused_without_blocking;
using io_test::raw16;
using io_test::raw8;
using io_test::read_bytes;
using io_test::ScratchDir;
using io_test::write_bytes;

// A safetensors file from a header text and a data section.
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out;
  out.reserve(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i)));
  for (char c : header) out.push_back(static_cast<uint8_t>(c));
  for (uint8_t b : data) out.push_back(b);
  return out;
}

TEST(IoSafetensors, GoldenWithMetadata) {
  const std::string path = golden_case_dir("mini") + "/golden.safetensors";
  const TensorMap m = load_safetensors(path);
  EXPECT_EQ(m.size(), 56u);
  ASSERT_TRUE(m.metadata.count("config"));
  ASSERT_TRUE(m.metadata.count("doc"));
  EXPECT_NE(m.metadata.at("config").find('{'), std::string::npos);
  const Tensor& labels = m.at("labels", {2});
  ASSERT_EQ(labels.dtype(), DType::I64);
  EXPECT_EQ(labels.data<int64_t>()[0], 4);
  EXPECT_EQ(labels.data<int64_t>()[1], 1);
  EXPECT_EQ(m.at("forced.image", {2, 3, 64, 64}).dtype(), DType::F32);
  EXPECT_EQ(m.at("profile.density.0", {4, 4}).dtype(), DType::F64);
  EXPECT_FALSE(m.at("forced.image").owns_data());  // zero-copy
  // The sniffing entry point agrees.
  EXPECT_EQ(load_tensor_file(path).size(), 56u);
}

TEST(IoSafetensors, RoundTripAllDtypesAndMetadata) {
  ScratchDir dir;
  std::vector<std::pair<std::string, Tensor>> in;
  in.emplace_back("u8", Tensor::from_vector<uint8_t>({3}, {1, 2, 255}));  // odd size first: must be reordered
  in.emplace_back("f32", Tensor::from_vector<float>({2, 2}, {1.5f, -2.0f, 0.0f, 1e30f}));
  in.emplace_back("f64", Tensor::from_vector<double>({1}, {3.25}));
  in.emplace_back("i64", Tensor::from_vector<int64_t>({1, 3}, {-1, 0, 1LL << 50}));
  in.emplace_back("i32", Tensor::from_vector<int32_t>({2}, {-5, 5}));
  Tensor h = Tensor::zeros(DType::F16, {3});
  Tensor bf = Tensor::zeros(DType::BF16, {1, 3});
  Tensor i16 = Tensor::zeros(DType::I16, {2});
  Tensor i8 = Tensor::zeros(DType::I8, {5});
  Tensor b = Tensor::zeros(DType::Bool, {2});
  for (int i = 0; i < 3; ++i) {
    raw16(h)[i] = float_to_half(0.5f * static_cast<float>(i + 1));
    raw16(bf)[i] = float_to_bfloat16(-1.0f * static_cast<float>(i));
  }
  raw16(i16)[1] = 0x8001;
  raw8(i8)[4] = 0x80;
  raw8(b)[1] = 1;
  in.emplace_back("f16", h);
  in.emplace_back("bf16", bf);
  in.emplace_back("i16", i16);
  in.emplace_back("i8", i8);
  in.emplace_back("bool", b);
  in.emplace_back("scalar", Tensor::from_vector<float>({}, {7.0f}));
  in.emplace_back("empty", Tensor::zeros(DType::F32, {0, 3}));
  const std::map<std::string, std::string> meta = {{"config", "{\"depth\": 2}"}, {"doc", "tést"}};
  const std::string path = dir.path("rt.safetensors");
  save_safetensors(path, in, meta);
  EXPECT_EQ(dir.files(), std::vector<std::string>{"rt.safetensors"});

  const auto bytes = read_bytes(path);
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u);

  const TensorMap m = load_safetensors(path);
  EXPECT_EQ(m.metadata, meta);
  ASSERT_EQ(m.size(), in.size());
  for (const auto& [key, t] : in) {
    const Tensor& got = m.at(key);
    EXPECT_EQ(got.dtype(), t.dtype()) << key;
    EXPECT_EQ(got.shape(), t.shape()) << key;
    EXPECT_EQ(std::memcmp(got.raw(), t.raw(), t.nbytes()), 0) << key;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got.raw()) % dtype_size(got.dtype()), 0u) << key;
  }
}

TEST(IoSafetensors, MisalignedDataAreCopied) {
  ScratchDir dir;
  const std::vector<uint8_t> data = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};  // 1.0f, 2.0f
  // A 9-byte header puts the data at offset 17.
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string padded = header;
  while ((8 + padded.size()) % 8 != 1) padded += ' ';
  const std::string path = dir.path("odd.safetensors");
  write_bytes(path, make_file(padded, data));
  const TensorMap m = load_safetensors(path);
  const Tensor& x = m.at("x", {2});
  EXPECT_TRUE(x.owns_data());
  EXPECT_EQ(x.data<float>()[0], 1.0f);
  EXPECT_EQ(x.data<float>()[1], 2.0f);
}

TEST(IoSafetensors, ErrorsNameTheFile) {
  ScratchDir dir;
  const std::string path = dir.path("bad.safetensors");
  const std::vector<uint8_t> eight(8, 0);
  auto check = [&](const std::vector<uint8_t>& bytes, const std::string& what) {
    write_bytes(path, bytes);
    expect_error([&] { load_safetensors(path); }, {path, what});
  };
  check({1, 2, 3}, "too short");
  check({100, 0, 0, 0, 0, 0, 0, 0, '{', '}'}, "exceeds the file size");
  check(make_file("{\"a\": [1, 2", {}), "not valid JSON");
  check(make_file("[1, 2]", {}), "not a JSON object");
  check(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", {1, 2, 3}), "out of range");
  check(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", eight), "out of range");
  check(make_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight), "needs 12");
  check(make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight), "malformed data_offsets");
  check(make_file(R"({"x":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", eight), "unsupported dtype");
  check(make_file(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", eight), "malformed shape");
  check(make_file(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,0]}})", eight), "malformed shape");
  check(make_file(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", eight),
        "malformed shape");
  check(make_file(R"({"x":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,0]}})", eight),
        "too large");
  check(make_file(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", eight), "lacks dtype");
  check(make_file(R"({"x":7})", eight), "not an object");
  check(make_file(R"({"__metadata__":{"a":1}})", eight), "not a string");
  expect_error([] { load_safetensors("/nonexistent/golden.safetensors"); }, {"/nonexistent/golden.safetensors"});
}

TEST(IoSafetensors, SaveRejectsBadInput) {
  ScratchDir dir;
  const std::string path = dir.path("x.safetensors");
  std::vector<std::pair<std::string, Tensor>> dup = {{"a", Tensor::zeros(DType::F32, {1})},
                                                     {"a", Tensor::zeros(DType::F32, {1})}};
  expect_error([&] { save_safetensors(path, dup); }, {path, "twice"});
  expect_error([&] { save_safetensors(path, {{"__metadata__", Tensor::zeros(DType::F32, {1})}}); }, {path});
  expect_error([&] { save_safetensors(path, {{"bad\xff", Tensor::zeros(DType::F32, {1})}}); }, {path});
  EXPECT_TRUE(dir.files().empty());  // no temporary left behind
}


// A value nested `depth` arrays deep: [[[...]]].
std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(IoSafetensors, DeeplyNestedHeaderIsRefusedBeforeItCanOverflowTheStack) {
  // 200k levels overflowed the stack while the error message was formatted (about 5k under ASan); the
  // reader must refuse them while parsing, for every field, and for --force-tokens files too.
  ScratchDir dir;
  const std::string path = dir.path("deep.safetensors");
  const std::string deep = nested(200'000);
  for (const std::string& header :
       {R"({"x":{"dtype":"F32","shape":)" + deep + R"(,"data_offsets":[0,0]}})",
        R"({"x":{"dtype":)" + deep + R"(,"shape":[0],"data_offsets":[0,0]}})",
        R"({"x":{"dtype":"F32","shape":[0],"data_offsets":)" + deep + "}}",
        R"({"__metadata__":{"a":)" + deep + "}}"}) {
    write_bytes(path, make_file(header, {}));
    expect_error([&] { load_safetensors(path); }, {path, "deeper than 32 levels"});
    expect_error([&] { load_tensor_file(path); }, {path, "deeper than 32 levels"});
  }
  // Nesting our formats could use still parses (and is then refused for what it is).
  write_bytes(path, make_file(R"({"x":{"dtype":"F32","shape":)" + nested(20) + R"(,"data_offsets":[0,0]}})", {}));
  expect_error([&] { load_safetensors(path); }, {path, "malformed shape"});
}

TEST(IoSafetensors, DuplicateKeysAreRefused) {
  ScratchDir dir;
  const std::string path = dir.path("dup.safetensors");
  const std::vector<uint8_t> eight(8, 0);
  const std::string entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  write_bytes(path, make_file(R"({"x":)" + entry + R"(,"x":)" + entry + "}", eight));
  expect_error([&] { load_safetensors(path); }, {path, "'x' twice"});
  write_bytes(path, make_file(R"({"x":{"dtype":"F32","shape":[2],"dtype":"I32","data_offsets":[0,8]}})", eight));
  expect_error([&] { load_safetensors(path); }, {path, "'dtype' twice", "in x"});
  write_bytes(path, make_file(R"({"__metadata__":{"a":"1","a":"2"}})", {}));
  expect_error([&] { load_safetensors(path); }, {path, "'a' twice", "in __metadata__"});
}

TEST(IoSafetensors, DataRangesMustTileTheDataSection) {
  // The format requires the tensors' byte ranges to cover the data section exactly, without overlap or gaps.
  ScratchDir dir;
  const std::string path = dir.path("ranges.safetensors");
  const std::vector<uint8_t> sixteen(16, 0);
  auto entry = [](const char* name, int begin, int end) {
    return cat("\"", name, "\":{\"dtype\":\"F32\",\"shape\":[", (end - begin) / 4, "],\"data_offsets\":[", begin, ",",
               end, "]}");
  };
  write_bytes(path,
              make_file(cat("{", entry("a", 0, 8), ",", entry("b", 4, 12), ",", entry("c", 12, 16), "}"), sixteen));
  expect_error([&] { load_safetensors(path); }, {path, "overlap", "'a'", "'b'"});
  write_bytes(path, make_file(cat("{", entry("a", 0, 4), ",", entry("b", 8, 16), "}"), sixteen));
  expect_error([&] { load_safetensors(path); }, {path, "4 unused bytes before tensor 'b'"});
  write_bytes(path, make_file(cat("{", entry("a", 4, 16), "}"), sixteen));
  expect_error([&] { load_safetensors(path); }, {path, "4 unused bytes before tensor 'a'"});
  write_bytes(path, make_file(cat("{", entry("a", 0, 8), "}"), sixteen));
  expect_error([&] { load_safetensors(path); }, {path, "8 bytes after the last tensor"});
  write_bytes(path, make_file("{}", sixteen));
  expect_error([&] { load_safetensors(path); }, {path, "16 bytes after the last tensor"});
  // Listed out of order, empty tensors anywhere: fine as long as the ranges tile the data.
  write_bytes(path, make_file(cat("{", entry("b", 8, 16), ",", entry("e", 8, 8), ",", entry("a", 0, 8), "}"), sixteen));
  EXPECT_EQ(load_safetensors(path).size(), 3u);
}

TEST(IoSafetensors, HugeHeaderLengthSaysWhatIsWrong) {
  // A header length of 2^63 used to be reported as "neither a PyTorch checkpoint nor a safetensors file".
  ScratchDir dir;
  const std::string path = dir.path("huge.safetensors");
  std::vector<uint8_t> bytes = {0, 0, 0, 0, 0, 0, 0, 0x80};
  for (char c : std::string(R"({"x":{}})")) bytes.push_back(static_cast<uint8_t>(c));
  write_bytes(path, bytes);
  expect_error([&] { load_tensor_file(path); }, {path, "header length 9223372036854775808 exceeds the file size 16"});
  // Without the '{' nothing says safetensors was meant, but the message still says what was tried.
  bytes[8] = 'x';
  write_bytes(path, bytes);
  expect_error([&] { load_tensor_file(path); },
               {path, "neither a PyTorch checkpoint nor a safetensors file", "exceeds the file size 16"});
}

TEST(IoSafetensors, FifoAndDirectoryAreRefusedWithoutBlocking) {
  ScratchDir dir;
  const std::string fifo = dir.path("pipe.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_refused_without_blocking(fifo, [&] { load_tensor_file(fifo); }, {fifo, "not a regular file (a FIFO)"});
  expect_refused_without_blocking(fifo, [&] { load_safetensors(fifo); }, {fifo, "not a regular file (a FIFO)"});
  expect_error([&] { load_tensor_file(dir.path("")); }, {"is a directory"});
}

}  // namespace
}  // namespace amskv::io
