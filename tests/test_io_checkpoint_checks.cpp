// Checks a caller can run on a loaded or mapped checkpoint: zip CRC-32s, NaN/Inf weights, and conversions
// that run out of memory.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "golden_dir.h"
#include "io/checkpoint_crc.h"
#include "io/non_finite.h"
#include "io/safetensors.h"
#include "io/tensor_file.h"
#include "io/torch_checkpoint.h"
#include "io/zip_archive.h"
#include "io_test_util.h"
#include "oom_test_util.h"

namespace amskv::io {
namespace {

using io_test::expect_error;
using io_test::raw16;
using io_test::read_bytes;
using io_test::ScratchDir;
using io_test::write_bytes;

TEST(IoCrc, CorruptEntryIsFoundNamingFileAndEntry) {
  ScratchDir dir;
  const std::string path = dir.path("m.pth");
  save_torch_checkpoint(path, {{"a", Tensor::from_vector<float>({4}, {1, 2, 3, 4})},
                               {"b", Tensor::from_vector<float>({2}, {5, 6})}});
  const CrcReport ok = verify_checkpoint_crc(path);
  EXPECT_EQ(ok.entries, 5u);  // data.pkl, byteorder, version and the two storages
  EXPECT_EQ(ok.skipped, 0u);
  EXPECT_GE(ok.bytes, 24u);
  // Flip one bit of tensor b's data: it still loads (CRCs are not checked on load), but verification fails.
  std::vector<uint8_t> bytes = read_bytes(path);
  const ZipArchive zip(bytes.data(), bytes.size(), path);
  const uint64_t at = zip.data_offset(*zip.find("m/data/1"));
  bytes[at] ^= 1;
  write_bytes(path, bytes);
  EXPECT_NE(load_tensor_file(path).at("b").data<float>()[0], 5.0f);
  expect_error([&] { verify_checkpoint_crc(path); }, {path, "entry 'm/data/1' is corrupt", "CRC-32 0x"});
}

TEST(IoCrc, TorchWrittenFilesVerifyAndSafetensorsHaveNoChecksum) {
  const CrcReport golden = verify_checkpoint_crc(golden_case_dir("mini") + "/var.pth");
  EXPECT_GT(golden.entries, 10u);
  const CrcReport none = verify_checkpoint_crc(golden_case_dir("mini") + "/golden.safetensors");
  EXPECT_EQ(none.entries, 0u);
  expect_error([] { verify_checkpoint_crc("/nonexistent.pth"); }, {"/nonexistent.pth"});
}

TEST(IoNonFinite, FindsTheFirstKeyAndCountsEverything) {
  TensorMap m("w.safetensors");
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  m.insert("a.ok", Tensor::from_vector<float>({3}, {1, -2, 3e38f}));
  m.insert("b.f32", Tensor::from_vector<float>({2, 3}, {0, 1, nan, 2, -inf, inf}));
  m.insert("c.f64", Tensor::from_vector<double>({2}, {std::nan(""), 1.0}));
  Tensor h = Tensor::zeros(DType::F16, {4}), bf = Tensor::zeros(DType::BF16, {2});
  raw16(h)[3] = 0xfc00;  // -inf
  raw16(bf)[0] = 0x7fc1;  // NaN
  m.insert("d.f16", h);
  m.insert("e.bf16", bf);
  m.insert("f.int", Tensor::from_vector<int64_t>({1}, {-1}));  // all bits set: not a float
  const auto found = find_non_finite(m);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->key, "b.f32");
  EXPECT_EQ(found->count, 3);
  EXPECT_EQ(found->first_index, 2);
  EXPECT_EQ(found->total, 6);
  EXPECT_EQ(found->tensors, 4);
  m.insert("b.f32", Tensor::from_vector<float>({1}, {0}));
  m.insert("c.f64", Tensor::from_vector<double>({1}, {0}));
  m.insert("d.f16", Tensor::zeros(DType::F16, {4}));
  m.insert("e.bf16", Tensor::zeros(DType::BF16, {2}));
  EXPECT_FALSE(find_non_finite(m).has_value());
  // A VAR checkpoint's causal mask is -inf by design; the engine never reads it, so callers skip it.
  const TensorMap var = load_tensor_file(golden_case_dir("mini") + "/var.pth");
  const auto mask = find_non_finite(var);
  ASSERT_TRUE(mask.has_value());
  EXPECT_EQ(mask->key, "attn_bias_for_masking");
  EXPECT_EQ(mask->tensors, 1);
  EXPECT_FALSE(find_non_finite(var, [](std::string_view k) { return k == "attn_bias_for_masking"; }).has_value());
}

TEST(IoTensorMap, Float32ConversionOutOfMemoryNamesTheFile) {
#ifdef AMSKV_TEST_ASAN
  GTEST_SKIP() << "AddressSanitizer reserves the address space that this test limits";
#else
  TensorMap m("half.safetensors");
  m.insert("w", Tensor::zeros(DType::F16, {6 << 20}));  // 12 MiB; its float32 copy needs 24 MiB
  EXPECT_EQ(m.f32("w").dtype(), DType::F32);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(io_test::run_with_little_memory([&] { m.f32("w"); }), ::testing::ExitedWithCode(0),
              "half.safetensors: out of memory while converting w to float32 \\(25165824 bytes needed\\)");
#endif
}

}  // namespace
}  // namespace amskv::io
