// What a hostile .pth may cost: tiny files that used to expand into gigabytes, and running out of memory.
#include <gtest/gtest.h>

#include "io/torch_checkpoint.h"
#include "io_test_util.h"
#include "oom_test_util.h"
#include "torch_test_util.h"

namespace amskv::io {
namespace {

using io_test::expect_error;
using io_test::read_bytes;
using io_test::ScratchDir;
using namespace torch_test;

std::vector<std::string> numbered_keys(const std::string& prefix, int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(prefix + std::to_string(i));
  return keys;
}

TEST(IoTorchLimits, StrideZeroCopiesShareOneBudgetPerFile) {
  // Each tensor stays under the old per-tensor cap (256 MB), but together they are 1.5 million times the file.
  ScratchDir dir;
  const std::string path = dir.path("expand.pth");
  const int32_t n = 6 << 20;  // 24 MiB of float32 each
  write_zip(path, shared_storage_pickle(numbered_keys("t", 3), 1, {n}, {0}), {{"data/0", float_bytes({7})}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "refusing to expand", "'t2'", "67108864 bytes"});
  // Two such copies are within what any file may expand to.
  write_zip(path, shared_storage_pickle(numbered_keys("t", 2), 1, {n}, {0}), {{"data/0", float_bytes({7})}});
  EXPECT_EQ(load_torch_checkpoint(path).at("t1", {n}).data<float>()[n - 1], 7.0f);
}

TEST(IoTorchLimits, LongStorageStringsAreRefused) {
  // Every entry used to copy its storage's key and location: a 4 MB location shared by many entries cost
  // gigabytes. They are shared now, and longer than anything torch writes is refused outright.
  ScratchDir dir;
  const std::string path = dir.path("strings.pth");
  write_zip(path, shared_storage_pickle({"a", "b"}, 1, {1}, {1}, std::string(1 << 20, 'x')),
            {{"data/0", float_bytes({1})}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "storage location of 1048576 bytes", "4096"});
  write_zip(path, shared_storage_pickle({"a"}, 1, {1}, {1}, "cpu", std::string(5000, '1')),
            {{"data/0", float_bytes({1})}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "storage key of 5000 bytes"});
  // Many entries on one storage with a long (but legal) location load.
  write_zip(path, shared_storage_pickle(numbered_keys("w", 64), 1, {1}, {1}, std::string(4096, 'c')),
            {{"data/0", float_bytes({1})}});
  EXPECT_EQ(load_torch_checkpoint(path).size(), 64u);
}

// 100k entries that each fetch the same memoised 64-dimension size and stride tuples: about 30 bytes of
// pickle per entry, but a kilobyte of shapes each once unpickled.
std::string memoised_shapes_pickle(int entries) {
  std::string ones = "(";
  for (int d = 0; d < 64; ++d) ones += "K\x01";
  ones += "t";
  std::string p = "\x80\x02";
  p += "ccollections\nOrderedDict\n)R(";
  p += pk_str("k0") + "ctorch._utils\n_rebuild_tensor_v2\nq\x02";
  p += "((" + pk_str("storage") + "ctorch\nFloatStorage\n" + pk_str("0") + pk_str("cpu") + pk_int(1) + "tQq\x01";
  p += pk_int(0) + ones + "q\x03" + ones + "q\x04\x89" + "ccollections\nOrderedDict\n)Rq\x05tR";
  for (int i = 1; i < entries; ++i)
    p += pk_str("k" + std::to_string(i)) + "h\x02(h\x01" + pk_int(0) + "h\x03h\x04\x89h\x05tR";
  return p + "u.";
}

TEST(IoTorchLimits, UnpickledEntriesShareTheBudget) {
  ScratchDir dir;
  const std::string path = dir.path("shapes.pth");
  write_zip(path, memoised_shapes_pickle(100'000), {{"data/0", float_bytes({1})}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "refusing to expand"});
  write_zip(path, memoised_shapes_pickle(100), {{"data/0", float_bytes({1})}});
  EXPECT_EQ(load_torch_checkpoint(path).size(), 100u);
}

TEST(IoTorchLimits, DuplicateStateDictKeysAreRefused) {
  // Python's dict keeps the last of a repeated key; a file that says two things about one weight is refused.
  ScratchDir dir;
  const std::string path = dir.path("dup.pth");
  write_zip(path, shared_storage_pickle({"w", "b", "w"}, 1, {1}, {1}), {{"data/0", float_bytes({1})}});
  expect_error([&] { load_torch_checkpoint(path); }, {path, "state dict has the key 'w' twice"});
}

TEST(IoTorchLimits, OutOfMemoryNamesTheFileAndTheSize) {
#ifdef AMSKV_TEST_ASAN
  GTEST_SKIP() << "AddressSanitizer reserves the address space that this test limits";
#else
  // 48 MiB expanded from one float: within the budget, but more than the address space left to the child.
  ScratchDir dir;
  const std::string path = dir.path("big.pth");
  write_zip(path, shared_storage_pickle({"big"}, 1, {12 << 20}, {0}), {{"data/0", float_bytes({1})}});
  const std::vector<uint8_t> bytes = read_bytes(path);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(io_test::run_with_little_memory(
                  [&] { load_torch_checkpoint_from_memory(bytes.data(), bytes.size(), "big.pth", nullptr); }),
              ::testing::ExitedWithCode(0), "big.pth: out of memory while loading .*50331648 bytes");
#endif
}

}  // namespace
}  // namespace amskv::io
