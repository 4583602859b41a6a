// Choosing a policy's knob for a resident-KV reduction target (engine/reduction_targets.h), on the shipped
// Fashion-MNIST model's shape (depth 6, schedule 1..16, L = 680).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "engine/reduction_targets.h"
#include "io/tensor_file.h"
#include "io_test_util.h"
#include "model/var_config.h"

using namespace amskv;
using amskv::io_test::expect_error;

namespace {

const model::VarConfig& fmnist_config() {
  static const model::VarConfig c = model::infer_var_config(
      io::load_tensor_file(std::string(AMSKV_SOURCE_DIR) + "/weights/fashion-mnist/var_fmnist.safetensors"));
  return c;
}

}  // namespace

TEST(ReductionTargets, WindowHasOneSettingPerWindowAndKeepingMoreSavesLess) {
  const auto c = engine::policy_candidates("window", fmnist_config());
  // w = 1 .. K − 1: a window of K − 1 scales already keeps everything, so w = K adds no footprint.
  ASSERT_EQ(c.size(), 9u);
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c[i].options.name, "window");
    EXPECT_EQ(c[i].options.window, static_cast<int>(i) + 1);
    if (i) EXPECT_LT(c[i].planned_resident_reduction, c[i - 1].planned_resident_reduction);
  }
  // Keeping everything is the engine's full cache, which already holds less than the reference (vanilla VAR,
  // D·L tokens): the last scale is never stored and is computed in one transient buffer, D·(L − n_K) + n_K.
  EXPECT_NEAR(c.back().planned_resident_reduction, 1.0 - (6.0 * (680 - 256) + 256) / (6.0 * 680), 1e-12);
  EXPECT_EQ(c.front().setting, "window w=1");
}

TEST(ReductionTargets, ClosestPicksTheNearestAndPrefersKeepingMoreOnTies) {
  const auto c = engine::policy_candidates("window", fmnist_config());
  for (double target : {0.3, 0.5, 0.75, 0.85}) {
    const auto& best = engine::closest_to_reduction(c, target);
    for (const auto& other : c)
      EXPECT_LE(std::abs(best.planned_resident_reduction - target),
                std::abs(other.planned_resident_reduction - target) + 1e-12);
  }
  // Beyond what the family can reach: its strongest setting.
  EXPECT_EQ(engine::closest_to_reduction(c, 0.99).options.window, 1);
  std::vector<engine::PolicyCandidate> tie = {c[0], c[1]};
  const double mid = 0.5 * (c[0].planned_resident_reduction + c[1].planned_resident_reduction);
  EXPECT_EQ(engine::closest_to_reduction(tie, mid).options.window, 2);
  expect_error([] { engine::closest_to_reduction({}, 0.5); }, {"no candidate"});
}

TEST(ReductionTargets, BudgetFamiliesKeepTheSmallestKnobOfEachFootprint) {
  const auto uniform = engine::policy_candidates("uniform", fmnist_config());
  ASSERT_GT(uniform.size(), 10u);
  for (size_t i = 1; i < uniform.size(); ++i) {
    EXPECT_GT(uniform[i].options.budget, uniform[i - 1].options.budget);
    EXPECT_NE(uniform[i].planned_resident_reduction, uniform[i - 1].planned_resident_reduction);
  }
  // AMS: C_max follows C_min by n_{K−3} = 100 as the defaults do; the default 174/274 is one of the settings.
  const auto ams = engine::policy_candidates("ams", fmnist_config());
  bool has_default = false;
  for (const auto& a : ams) {
    EXPECT_EQ(*a.options.ams.cmax - *a.options.ams.cmin, 100);
    has_default |= a.setting == "ams 174/274";
  }
  EXPECT_TRUE(has_default);
  // Both reach the paper's 85%.
  EXPECT_NEAR(engine::closest_to_reduction(ams, 0.85).planned_resident_reduction, 0.85, 0.02);
  EXPECT_NEAR(engine::closest_to_reduction(uniform, 0.85).planned_resident_reduction, 0.85, 0.02);
}

TEST(ReductionTargets, SinkKeepsItsCondensedScalesAndUnknownFamiliesAreRefused) {
  kv::PolicyOptions base;
  base.sink_condensed = 3;
  const auto sink = engine::policy_candidates("sink", fmnist_config(), base);
  ASSERT_EQ(sink.size(), 6u);  // w = 1 .. 6: 3 condensed + 6 recent = K − 1 scales keep everything already
  for (const auto& s : sink) EXPECT_EQ(s.options.sink_condensed, 3);
  EXPECT_EQ(sink.front().setting, "sink c=3 w=1");
  expect_error([] { engine::policy_candidates("table", fmnist_config()); }, {"table", "no memory knob"});
  const auto families = engine::searchable_policy_families();
  for (const char* f : {"ams", "sink", "window", "uniform", "h2o"})
    EXPECT_NE(std::find(families.begin(), families.end(), f), families.end()) << f;
}
