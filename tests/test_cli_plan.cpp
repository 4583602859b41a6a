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

TEST(CliPlan, CheckpointsPlanWithTheirOwnShapes) {
  const auto r = run_cli("plan --var " + mini_var() + " --vae " + mini_vae() + " --device cpu --batch 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("batch 2 fits"), std::string::npos) << r.output;
  expect_cli_error("plan --var " + mini_var() + " --vae " + mini_vae(), {"--vae applies to --device with --var"});
  expect_cli_error("plan --shape tiny --gpu 1", {"--gpu applies to --device cuda"});
}

}  // namespace
}  // namespace amskv::cli_test
