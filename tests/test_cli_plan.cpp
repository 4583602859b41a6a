// amskv plan --device: the whole job planned on a device by the engine's planner, for official shapes (no
// weights made) and for checkpoints.
#include <gtest/gtest.h>

#include "cli_fixture.h"

namespace amskv::cli_test {
namespace {

TEST(CliPlan, DevicePlanShowsTheBatchAndTheLargestThatFits) {
  const auto r = run_cli("plan --shape tiny --kv ams --batch 4 --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* part : {"on cpu", "weights about", "batch 4 fits: ", "largest batch that fits: ", "with full"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  // The KV-only table is still there, above.
  EXPECT_NE(r.output.find("reduction vs reference"), std::string::npos) << r.output;
}

TEST(CliPlan, ABatchThatDoesNotFitSaysWhatItNeeds) {
  // 16 million images of even the tiny shape need terabytes.
  const auto r = run_cli("plan --shape tiny --kv full --batch 16000000 --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("batch 16000000 does not fit: it needs "), std::string::npos) << r.output;
}

// An 8-bit store: the KV table in its bytes, the reference cache at its own 16 bits, and the device plan
// with more images fitting than a bf16 store lets fit.
TEST(CliPlan, EightBitKvFitsMoreImages) {
  const auto largest = [](const std::string& out, const std::string& before) {
    const size_t at = out.find(before);
    EXPECT_NE(at, std::string::npos) << out;
    return at == std::string::npos ? int64_t{0} : std::stoll(out.substr(at + before.size()));
  };
  const auto b16 = run_cli("plan --shape d30 --kv ams --dtype bf16 --batch 8 --kv-memory-gib 100");
  const auto b8 = run_cli("plan --shape d30 --kv ams --dtype int8 --batch 8 --kv-memory-gib 100");
  ASSERT_EQ(b16.exit_code, 0) << b16.output;
  ASSERT_EQ(b8.exit_code, 0) << b8.output;
  EXPECT_NE(b8.output.find("int8 K/V: stored tokens at 8 bits"), std::string::npos) << b8.output;
  // Reductions in bytes against the reference's 16-bit cache: the 8-bit store's saving shows in them.
  const auto allocated_reduction = [](const std::string& out) {
    const std::string key = "allocated ";
    const size_t at = out.find(key, out.find("reduction vs reference:"));
    EXPECT_NE(at, std::string::npos) << out;
    return at == std::string::npos ? 0.0 : std::stod(out.substr(at + key.size()));
  };
  EXPECT_GT(allocated_reduction(b8.output), allocated_reduction(b16.output) + 10.0);
  const std::string fits = "largest batch whose KV cache fits 100 GiB: ";
  EXPECT_GT(largest(b8.output, fits), largest(b16.output, fits) * 18 / 10);
  // The reference cache is counted at 16 bits in both.
  EXPECT_EQ(largest(b8.output, " with ams, "), largest(b16.output, " with ams, "));
  const auto dev = run_cli("plan --shape tiny --kv ams --dtype int8 --batch 4 --device cpu");
  ASSERT_EQ(dev.exit_code, 0) << dev.output;
  EXPECT_NE(dev.output.find("batch 4 fits: "), std::string::npos) << dev.output;
}

TEST(CliPlan, CheckpointsPlanWithTheirOwnShapes) {
  const auto r = run_cli("plan --var " + mini_var() + " --vae " + mini_vae() + " --device cpu --batch 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("batch 2 fits"), std::string::npos) << r.output;
  expect_cli_error("plan --var " + mini_var() + " --vae " + mini_vae(), {"--vae applies to --device with --var"});
  expect_cli_error("plan --shape tiny --gpu 1", {"--gpu applies to --device cuda"});
}

}  // namespace
}  // namespace amskv::cli_test
