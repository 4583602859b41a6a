// PyTorch checkpoint reading and writing: the golden files written by torch 1.13 and 2.11, round trips
// through our writer (also as ZIP64), strided storages, and one test per kind of malformed file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "golden_dir.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"
#include "io/tensor_file.h"
#include "io/torch_checkpoint.h"
#include "io/zip_archive.h"
#include "io/zip_writer.h"
#include "io_test_util.h"
#include "torch_test_util.h"

namespace amskv::io {
namespace {

using io_test::expect_error;
using io_test::raw16;
using io_test::raw8;
using io_test::read_bytes;
using io_test::ScratchDir;
using io_test::write_bytes;
using namespace torch_test;  // hand-made pickles and archives

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

// --- golden files -------------------------------------------------------------------------------------

TEST(IoTorchCheckpoint, GoldenMiniShapesAndDtypes) {
  const TensorMap m = load_torch_checkpoint(golden_case_dir("mini") + "/var.pth");
  EXPECT_EQ(m.size(), 25u);
  const Tensor& qkv = m.at("blocks.0.attn.mat_qkv.weight", {192, 64});
  EXPECT_EQ(qkv.dtype(), DType::F32);
  EXPECT_FALSE(qkv.owns_data());  // a zero-copy view of the mapping
  EXPECT_EQ(reinterpret_cast<uintptr_t>(qkv.raw()) % 64, 0u);
  EXPECT_EQ(m.at("pos_1LC").shape(), (Shape{1, 30, 64}));
  EXPECT_EQ(m.at("class_emb.weight").shape(), (Shape{6, 64}));
  const Tensor& lvl = m.at("lvl_1L", {1, 30});
  ASSERT_EQ(lvl.dtype(), DType::I64);
  // Scale index of each token for patch_nums 1,2,3,4.
  std::vector<int64_t> expected;
  for (int k = 0; k < 4; ++k) expected.insert(expected.end(), static_cast<size_t>((k + 1) * (k + 1)), k);
  EXPECT_EQ(std::vector<int64_t>(lvl.data<int64_t>(), lvl.data<int64_t>() + 30), expected);
  // attn_bias_for_masking: 0 on the block-causal part, -inf above it.
  const Tensor& bias = m.at("attn_bias_for_masking", {1, 1, 30, 30});
  EXPECT_EQ(bias.data<float>()[0], 0.0f);
  EXPECT_TRUE(std::isinf(bias.data<float>()[1]));
}

TEST(IoTorchCheckpoint, GoldenTorch1AndTorch2ReadIdentically) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  const TensorMap a = load_torch_checkpoint(shared_golden_dir() + "/tiny/var.pth");
  const TensorMap b = load_torch_checkpoint(shared_golden_dir() + "/tiny/var_torch2.pth");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, t] : a.all()) {
    ASSERT_TRUE(b.contains(key)) << key;
    EXPECT_TRUE(same_bytes(t, b.at(key))) << key;
  }
}

TEST(IoTorchCheckpoint, GoldenVae) {
  AMSKV_REQUIRE_SHARED_GOLDEN();
  const TensorMap m = load_torch_checkpoint(shared_golden_dir() + "/vae-V512-Cvae16-ch32-s100.pth");
  EXPECT_EQ(m.size(), 324u);
  m.at("quantize.embedding.weight", {512, 16});
  m.at("encoder.conv_in.weight", {32, 3, 3, 3});
  m.at("quantize.ema_vocab_hit_SV", {-1, 512});
  for (const auto& [key, t] : m.all()) EXPECT_EQ(t.dtype(), DType::F32) << key;
}

TEST(IoTorchCheckpoint, SniffedByLoadTensorFile) {
  const TensorMap m = load_tensor_file(golden_case_dir("mini") + "/var.pth");
  EXPECT_EQ(m.size(), 25u);
}

// --- round trips --------------------------------------------------------------------------------------

std::vector<std::pair<std::string, Tensor>> sample_tensors() {
  std::vector<std::pair<std::string, Tensor>> out;
  std::vector<float> f(2 * 3 * 5);
  for (size_t i = 0; i < f.size(); ++i) f[i] = 0.25f * static_cast<float>(i) - 3.0f;
  out.emplace_back("a.weight", Tensor::from_vector<float>({2, 3, 5}, f));
  out.emplace_back("lvl_1L", Tensor::from_vector<int64_t>({1, 5}, {0, 1, 1, 1, 1LL << 40}));
  out.emplace_back("ints", Tensor::from_vector<int32_t>({3}, {-7, 0, 1 << 30}));
  out.emplace_back("bytes", Tensor::from_vector<uint8_t>({4}, {0, 1, 128, 255}));
  out.emplace_back("scalar", Tensor::from_vector<double>({}, {3.5}));
  out.emplace_back("empty", Tensor::zeros(DType::F32, {0, 4}));
  Tensor h = Tensor::zeros(DType::F16, {3});
  Tensor bf = Tensor::zeros(DType::BF16, {2, 2});
  for (int i = 0; i < 3; ++i) raw16(h)[i] = float_to_half(1.5f * static_cast<float>(i) - 1);
  for (int i = 0; i < 4; ++i) raw16(bf)[i] = float_to_bfloat16(-2.25f * static_cast<float>(i));
  out.emplace_back("half", h);
  out.emplace_back("bf16", bf);
  out.emplace_back("flags", Tensor::zeros(DType::Bool, {2}));
  return out;
}

void expect_round_trip(const std::vector<std::pair<std::string, Tensor>>& in, const TensorMap& m) {
  ASSERT_EQ(m.size(), in.size());
  for (const auto& [key, t] : in) {
    ASSERT_TRUE(m.contains(key)) << key;
    EXPECT_TRUE(same_bytes(t, m.at(key))) << key;
  }
}

TEST(IoTorchCheckpoint, RoundTripAllDtypes) {
  ScratchDir dir;
  const auto tensors = sample_tensors();
  const std::string path = dir.path("model_x.pth");
  save_torch_checkpoint(path, tensors);
  expect_round_trip(tensors, load_torch_checkpoint(path));
  EXPECT_EQ(dir.files(), std::vector<std::string>{"model_x.pth"});  // no temporary left behind

  // Layout that torch.load relies on: root folder = stem, version record, 64-byte aligned records.
  const MappedFile f = map_file(path);
  ZipArchive zip(f.data, f.size, path);
  const ZipEntry* version = zip.find("model_x/version");
  ASSERT_NE(version, nullptr);
  const auto v = zip.read(*version);
  EXPECT_EQ(std::string(v.begin(), v.end()), "3\n");
  ASSERT_NE(zip.find("model_x/data.pkl"), nullptr);
  for (const ZipEntry& e : zip.entries()) {
    EXPECT_EQ(zip.data_offset(e) % 64, 0u) << e.name;
    const auto bytes = zip.read(e);
    EXPECT_EQ(crc32(bytes.data(), bytes.size()), e.crc32) << e.name;
  }
}

TEST(IoTorchCheckpoint, RoundTripZip64) {
  ScratchDir dir;
  const auto tensors = sample_tensors();
  const std::string path = dir.path("big.pth");
  save_torch_checkpoint(path, tensors, TorchSaveOptions{.force_zip64 = true});
  expect_round_trip(tensors, load_torch_checkpoint(path));
}

TEST(IoTorchCheckpoint, GoldenRewrittenByOurWriter) {
  ScratchDir dir;
  const TensorMap m = load_torch_checkpoint(golden_case_dir("mini") + "/var.pth");
  std::vector<std::pair<std::string, Tensor>> all(m.all().begin(), m.all().end());
  save_torch_checkpoint(dir.path("var.pth"), all);
  expect_round_trip(all, load_torch_checkpoint(dir.path("var.pth")));
}

TEST(IoTorchCheckpoint, UnalignedBufferIsCopied) {
  ScratchDir dir;
  const auto tensors = sample_tensors();
  save_torch_checkpoint(dir.path("m.pth"), tensors);
  const auto bytes = read_bytes(dir.path("m.pth"));
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::memcpy(shifted.data() + 1, bytes.data(), bytes.size());
  const TensorMap m = load_torch_checkpoint_from_memory(shifted.data() + 1, bytes.size(), "shifted", nullptr);
  expect_round_trip(tensors, m);
  EXPECT_TRUE(m.at("a.weight").owns_data());
}

// --- strided storages ---------------------------------------------------------------------------------

TEST(IoTorchCheckpoint, StridedOffsetAndExpandedTensorsAreCopied) {
  ScratchDir dir;
  const auto storage = float_bytes(iota_floats(12));
  struct Case {
    int32_t offset;
    std::vector<int32_t> size, stride;
    std::vector<float> expected;
  };
  const Case cases[] = {
      {0, {3, 2}, {1, 3}, {0, 3, 1, 4, 2, 5}},       // transposed
      {2, {2, 2}, {4, 1}, {2, 3, 6, 7}},             // offset and row stride
      {5, {3}, {0}, {5, 5, 5}},                      // expanded
      {4, {2, 3}, {3, 1}, {4, 5, 6, 7, 8, 9}},       // contiguous with an offset: a view
  };
  for (const Case& c : cases) {
    const std::string path = dir.path("s.pth");
    write_zip(path, one_tensor_pickle("FloatStorage", 12, c.offset, c.size, c.stride), {{"data/0", storage}});
    const TensorMap m = load_torch_checkpoint(path);
    const Tensor& t = m.at("t");
    ASSERT_EQ(t.numel(), static_cast<int64_t>(c.expected.size()));
    EXPECT_EQ(std::vector<float>(t.data<float>(), t.data<float>() + t.numel()), c.expected);
  }
}

// Files written by torch 1.13 itself (kept in the fuzz seed corpus): views with strides, offsets and stride
// 0, parameters, shared storages, and a protocol-4 pickle.
std::string torch_fixture(const std::string& name) {
  return std::string(AMSKV_SOURCE_DIR) + "/fuzz/corpus/torch_checkpoint/" + name;
}

TEST(IoTorchCheckpoint, TorchWrittenStridedViews) {
  for (const char* file : {"torch113_strided.pth", "torch113_strided_proto4.pth"}) {
    SCOPED_TRACE(file);
    const TensorMap m = load_torch_checkpoint(torch_fixture(file));
    EXPECT_EQ(m.size(), 10u);
    // base = arange(24).reshape(4, 6)
    const Tensor& tr = m.at("transposed", {6, 4});
    EXPECT_TRUE(tr.owns_data());
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 4; ++j) EXPECT_EQ(tr.data<float>()[i * 4 + j], static_cast<float>(j * 6 + i));
    const Tensor& sl = m.at("sliced", {2, 3});
    EXPECT_EQ(std::vector<float>(sl.data<float>(), sl.data<float>() + 6), (std::vector<float>{8, 9, 10, 14, 15, 16}));
    const Tensor& row = m.at("row", {6});
    EXPECT_FALSE(row.owns_data());  // contiguous with an offset stays a view
    EXPECT_EQ(row.data<float>()[0], 12.0f);
    const Tensor& ex = m.at("expanded", {3, 2});
    for (int i = 0; i < 6; ++i) EXPECT_EQ(ex.data<float>()[i], 5.0f);
    EXPECT_EQ(m.at("half", {2, 3}).dtype(), DType::F16);
    EXPECT_EQ(m.at("bf16", {4}).to_f64_vector(), (std::vector<double>{0, 1, 2, 3}));
    EXPECT_EQ(m.at("long", {3}).data<int64_t>()[2], int64_t{1} << 40);
    EXPECT_EQ(m.at("bool", {2}).dtype(), DType::Bool);
    EXPECT_EQ(m.at("scalar", {}).data<double>()[0], 2.5);
    EXPECT_EQ(m.at("empty", {0, 3}).numel(), 0);
  }
}

TEST(IoTorchCheckpoint, TorchWrittenModuleParameterShared) {
  const TensorMap mod = load_torch_checkpoint(torch_fixture("torch113_module.pth"));  // with _metadata
  EXPECT_EQ(mod.size(), 5u);
  mod.at("seq.1.weight", {2, 3});
  EXPECT_EQ(mod.at("lvl_1L", {1, 5}).dtype(), DType::I64);
  const TensorMap par = load_torch_checkpoint(torch_fixture("torch113_parameter.pth"));
  EXPECT_EQ(par.at("w", {2, 2}).to_f64_vector(), (std::vector<double>{1, 1, 1, 1}));
  const TensorMap sh = load_torch_checkpoint(torch_fixture("torch113_shared.pth"));
  EXPECT_EQ(sh.at("a").raw(), sh.at("b").raw());  // one storage, two views
  expect_error([] { load_torch_checkpoint(torch_fixture("torch113_legacy.pth")); }, {"torch113_legacy.pth", "legacy"});
  expect_error([] { load_torch_checkpoint(torch_fixture("torch113_training_ckpt.pth")); },
               {"torch113_training_ckpt.pth", "'trainer'"});
}

TEST(IoTorchCheckpoint, Protocol4Opcodes) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, BININT1, TUPLE1/2, LONG1, NEWTRUE and BINGET, as
  // newer picklers emit them.
  ScratchDir dir;
  auto su = [](const std::string& s) { return std::string("\x8c") + static_cast<char>(s.size()) + s; };
  std::string body;
  body += su("collections") + "\x94" + su("OrderedDict") + "\x94\x93\x94" + ")R\x94";  // memo 0..3
  body += su("t") + "\x94";
  body += su("torch._utils") + su("_rebuild_tensor_v2") + "\x93\x94";
  body += "((" + su("storage") + su("torch") + su("IntStorage") + "\x93" + su("0") + su("cpu") + "K\x06tQ";
  body += std::string("\x8a\x01\x02", 3) + "K\x02K\x02\x86K\x02K\x01\x86\x88h\x02)R\x94tR";  // offset 2, [2,2]
  body += "s.";
  std::string pickle = "\x80\x04\x95";
  const uint64_t frame = body.size();
  pickle.append(reinterpret_cast<const char*>(&frame), 8);
  pickle += body;
  const std::vector<int32_t> ints = {10, 11, 12, 13, 14, 15};
  std::vector<uint8_t> storage(24);
  std::memcpy(storage.data(), ints.data(), 24);
  write_zip(dir.path("p4.pth"), pickle, {{"data/0", storage}}, "archive");
  const TensorMap m = load_torch_checkpoint(dir.path("p4.pth"));
  const Tensor& t = m.at("t", {2, 2});
  ASSERT_EQ(t.dtype(), DType::I32);
  EXPECT_EQ(std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + 4), (std::vector<int32_t>{12, 13, 14, 15}));
}

// --- errors: each names the file --------------------------------------------------------------------

TEST(IoTorchCheckpoint, ErrorMissingFile) {
  expect_error([] { load_torch_checkpoint("/nonexistent/dir/var_d16.pth"); }, {"/nonexistent/dir/var_d16.pth"});
}

TEST(IoTorchCheckpoint, ErrorTruncatedFile) {
  ScratchDir dir;
  auto bytes = read_bytes(golden_case_dir("mini") + "/var.pth");
  for (size_t keep : {size_t{0}, size_t{3}, size_t{100}, bytes.size() / 2, bytes.size() - 10}) {
    const std::string path = dir.path("cut.pth");
    write_bytes(path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)));
    expect_error([&] { load_torch_checkpoint(path); }, {path});
    expect_error([&] { load_tensor_file(path); }, {path});
  }
}

// Offset of the n-th central directory header (the archive has no comment and no ZIP64 records).
size_t central_header(const std::vector<uint8_t>& b, int n) {
  const size_t eocd = b.size() - 22;
  size_t pos = b[eocd + 16] | (b[eocd + 17] << 8) | (b[eocd + 18] << 16) | (size_t{b[eocd + 19]} << 24);
  for (int k = 0; k < n; ++k) {
    const size_t name = b[pos + 28] | (b[pos + 29] << 8), extra = b[pos + 30] | (b[pos + 31] << 8),
                 comment = b[pos + 32] | (b[pos + 33] << 8);
    pos += 46 + name + extra + comment;
  }
  return pos;
}

TEST(IoTorchCheckpoint, ErrorCorruptCentralDirectory) {
  ScratchDir dir;
  auto bytes = read_bytes(golden_case_dir("mini") + "/var.pth");
  const size_t second = central_header(bytes, 1);
  ASSERT_GT(second, 0u);
  bytes[second] = 'X';
  const std::string path = dir.path("cd.pth");
  write_bytes(path, bytes);
  expect_error([&] { load_torch_checkpoint(path); }, {path, "central directory"});
}

TEST(IoTorchCheckpoint, ErrorCompressedEntry) {
  ScratchDir dir;
  auto bytes = read_bytes(golden_case_dir("mini") + "/var.pth");
  const size_t first = central_header(bytes, 0);  // var/data.pkl
  bytes[first + 10] = 8;                          // deflate
  const std::string path = dir.path("deflate.pth");
  write_bytes(path, bytes);
  expect_error([&] { load_torch_checkpoint(path); }, {path, "compressed", "data.pkl"});
}

TEST(IoTorchCheckpoint, ErrorNotAZip) {
  ScratchDir dir;
  const std::string path = dir.path("junk.pth");
  write_bytes(path, std::vector<uint8_t>(1000, 'a'));
  expect_error([&] { load_torch_checkpoint(path); }, {path, "zip"});
  expect_error([&] { load_tensor_file(path); }, {path, "neither a PyTorch checkpoint nor a safetensors file"});
}

TEST(IoTorchCheckpoint, ErrorLegacyFormat) {
  ScratchDir dir;
  const std::string path = dir.path("old.pth");
  write_bytes(path, {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.', 0, 0});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "legacy", "torch>=1.6"});
  expect_error([&] { load_tensor_file(path); }, {path, "legacy"});
}

TEST(IoTorchCheckpoint, ErrorUnknownGlobal) {
  ScratchDir dir;
  const std::string path = dir.path("evil.pth");
  write_zip(path, one_tensor_pickle("FloatStorage", 4, 0, {4}, {1}, "cos\nsystem\n"), {{"data/0", float_bytes({1, 2, 3, 4})}});
  expect_error([&] { load_torch_checkpoint(path); },
               {path, "pickle refers to global 'os.system', which a state dict never needs"});
}

TEST(IoTorchCheckpoint, ErrorUnknownStorageType) {
  ScratchDir dir;
  const std::string path = dir.path("cplx.pth");
  write_zip(path, one_tensor_pickle("ComplexFloatStorage", 4, 0, {4}, {1}), {{"data/0", float_bytes({1, 2, 3, 4})}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "torch.ComplexFloatStorage"});
}

TEST(IoTorchCheckpoint, ErrorMissingStorageRecord) {
  ScratchDir dir;
  const std::string path = dir.path("nostorage.pth");
  write_zip(path, one_tensor_pickle("FloatStorage", 4, 0, {4}, {1}), {{"data/1", float_bytes({1, 2, 3, 4})}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "missing storage record", "ckpt/data/0"});
}

TEST(IoTorchCheckpoint, ErrorShapeOrStrideOutOfRange) {
  ScratchDir dir;
  const std::string path = dir.path("range.pth");
  const auto storage = float_bytes(iota_floats(12));
  // Storage declares more elements than its record holds.
  write_zip(path, one_tensor_pickle("FloatStorage", 13, 0, {12}, {1}), {{"data/0", storage}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "13 elements"});
  // The last element lies past the storage.
  write_zip(path, one_tensor_pickle("FloatStorage", 12, 1, {3, 4}, {4, 1}), {{"data/0", storage}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "beyond its storage"});
  write_zip(path, one_tensor_pickle("FloatStorage", 12, 0, {2, 2}, {11, 1}), {{"data/0", storage}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "beyond its storage"});
  // Negative sizes and strides, and sizes whose product overflows.
  write_zip(path, one_tensor_pickle("FloatStorage", 12, 0, {-1}, {1}), {{"data/0", storage}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "invalid shape"});
  write_zip(path, one_tensor_pickle("FloatStorage", 12, 11, {2}, {-1}), {{"data/0", storage}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "invalid shape"});
  write_zip(path, one_tensor_pickle("FloatStorage", 12, 0, {1 << 30, 1 << 30, 1 << 30}, {0, 0, 0}),
            {{"data/0", storage}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "invalid shape"});
}

TEST(IoTorchCheckpoint, ErrorNotAStateDict) {
  ScratchDir dir;
  const std::string path = dir.path("list.pth");
  write_zip(path, "\x80\x02].", {});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "not a state dict"});
  // A nested dict, like a training checkpoint.
  write_zip(path, std::string("\x80\x02}(") + pk_str("trainer") + "}u.", {});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "'trainer'", "not a tensor"});
}

TEST(IoTorchCheckpoint, ErrorMalformedPickle) {
  ScratchDir dir;
  const std::string path = dir.path("pkl.pth");
  for (const std::string& pkl : {std::string("\x80\x02"), std::string("\x80\x02t."), std::string("\x80\x02h\x05."),
                                std::string("\x80\x02\xff."), std::string("\x80\x02X\xff\xff\xff\x7f"),
                                std::string("\x80\x02\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01."),
                                std::string("\x80\x09}.")}) {
    write_zip(path, pkl, {});
    expect_error([&] { load_torch_checkpoint(path); }, {path, "data.pkl"});
  }
}

TEST(IoTorchCheckpoint, SaveFailsCleanly) {
  ScratchDir dir;
  std::vector<std::pair<std::string, Tensor>> dup = {{"a", Tensor::zeros(DType::F32, {1})},
                                                     {"a", Tensor::zeros(DType::F32, {1})}};
  expect_error([&] { save_torch_checkpoint(dir.path("dup.pth"), dup); }, {"dup.pth", "twice"});
  expect_error([&] { save_torch_checkpoint("/nonexistent/dir/x.pth", {}); }, {"/nonexistent/dir/x.pth"});
  EXPECT_TRUE(dir.files().empty());
}

}  // namespace
}  // namespace amskv::io
