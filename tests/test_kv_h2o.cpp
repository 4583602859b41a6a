// The H2O baseline: its token choice (recent tokens plus heavy hitters), the budget never exceeded on random
// schedules, an unlimited budget equal to the full cache, and a clear error on a backend that cannot
// measure per-token attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "golden_case.h"
#include "host_span.h"
#include "kv/kv_cache.h"
#include "kv/policies/h2o_policy.h"
#include "kv/policies/recency_policy.h"
#include "kv/policy_factory.h"

namespace amskv::kv {
namespace {

TEST(H2o, KeepsTheRecentTokensAndTheHeaviestHitters) {
  H2oPolicy p(4, 0.5);  // 2 recent + 2 heavy hitters
  p.begin(ScheduleInfo::from_sides({1, 2, 3}, 1));
  const float scores[] = {0.1f, 5.0f, 0.3f, 4.0f, 0.2f, 9.0f, 0.0f};
  // Older candidates 0..4: heaviest are 1 (5.0) and 3 (4.0); recent: 5 and 6.
  EXPECT_EQ(p.select_tokens(0, scores, 7), (std::vector<int64_t>{1, 3, 5, 6}));
  // Fewer candidates than the budget: all of them.
  EXPECT_EQ(p.select_tokens(0, scores, 3), (std::vector<int64_t>{0, 1, 2}));
  // Ties among heavy hitters go to the older token.
  const float tied[] = {1.0f, 1.0f, 1.0f, 0.0f, 0.0f};
  EXPECT_EQ(p.select_tokens(0, tied, 5), (std::vector<int64_t>{0, 1, 3, 4}));
  H2oPolicy only_heavy(3, 0.0);
  only_heavy.begin(ScheduleInfo::from_sides({1, 2, 3}, 1));
  EXPECT_EQ(only_heavy.select_tokens(0, scores, 7), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_THROW(H2oPolicy(0, 0.5), Error);
  EXPECT_THROW(H2oPolicy(10, 1.5), Error);
}

TEST(H2o, DefaultBudgetIsAmsCmin) {
  H2oPolicy p(-1, 0.5);
  const auto info = ScheduleInfo::from_sides({1, 2, 3, 4, 5, 6, 8, 10, 13, 16}, 30);
  p.begin(info);
  EXPECT_EQ(p.token_budget(0), default_ams_budgets(info.tokens, 2).cmin);
  EXPECT_EQ(planned_layer_tokens(p, 0), 174);
}

// Drives the cache through random schedules with random attention mass: the budget holds after every scale,
// and the newest tokens always survive.
TEST(H2o, BudgetNeverExceededAndRecentTokensKept) {
  std::mt19937 rng(11);
  constexpr int64_t kRows = 2, kHeads = 2, kDim = 4;
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<int64_t> sides;
    int64_t side = 1;
    const int K = std::uniform_int_distribution<int>(2, 8)(rng);
    for (int k = 0; k < K; ++k) sides.push_back(side), side += std::uniform_int_distribution<int>(1, 3)(rng);
    const auto info = ScheduleInfo::from_sides(sides, std::uniform_int_distribution<int>(1, 3)(rng));
    const int64_t budget = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    H2oPolicy policy(budget, std::uniform_real_distribution<double>(0, 1)(rng));
    KvCache cache(test::cpu(), policy, info, sides, kRows, kHeads, kDim);
    int64_t position = 0;  // global index of the first token of the scale
    for (int k = 0; k < K; ++k) {
      cache.begin_scale(k);
      const int64_t n = info.tokens[k];
      auto* tk = static_cast<float*>(cache.transient_k().raw());
      for (int64_t i = 0; i < kRows * kHeads * n * kDim; ++i) tk[i] = static_cast<float>(position + (i / kDim) % n);
      for (int l = 0; l < info.depth; ++l) {
        const auto segs = cache.attention_segments(l);
        int64_t keys = 0;
        for (const auto& s : segs) keys += s.tokens;
        std::uniform_real_distribution<float> mass(0.0f, 1.0f);
        for (int64_t i = 0; i < kRows * kHeads * keys; ++i) cache.key_mass()[i] = mass(rng);
        cache.finish_layer(l);
        const int64_t held = cache.store().picked_tokens(l);
        ASSERT_LE(held, budget) << "trial " << trial;
        if (k + 1 < K && held > 0) {
          // The newest stored token is the last of this scale (recent tokens are kept whenever recent > 0).
          const auto seg = cache.store().segments(l).front();
          const float newest = static_cast<const float*>(seg.k)[(held - 1) * kDim];
          if (policy.describe()["recent"].get<int64_t>() > 0) EXPECT_EQ(newest, static_cast<float>(position + n - 1));
        }
      }
      position += n;
    }
    EXPECT_LE(cache.stats().footprint.stored_tokens, budget * info.depth);
  }
}

// With a budget that holds everything, h2o attends exactly what full attends (one segment instead of one per
// scale, so equal up to the order of the float sums).
TEST(H2o, UnlimitedBudgetEqualsFull) {
  golden::GoldenCase g("mini");
  auto opt = g.options();
  opt.sampling.top_k = 10;
  opt.sampling.seed = 8;
  opt.keep_logits = true;
  auto full = make_full_policy();
  H2oPolicy h2o(1 << 20, 0.5);
  const auto a = engine::generate(*g.var, *g.vae, *full, opt);
  const auto b = engine::generate(*g.var, *g.vae, h2o, opt);
  for (size_t k = 0; k < a.tokens.size(); ++k) {
    EXPECT_EQ(a.tokens[k].to_f64_vector(), b.tokens[k].to_f64_vector()) << "scale " << k;
    EXPECT_LE(golden::max_rel_error(b.logits_cfg[k].data<float>(), a.logits_cfg[k]), 1e-6) << "scale " << k;
  }
}

TEST(H2o, TightBudgetChangesLogitsAndStaysWithinPlan) {
  golden::GoldenCase g("mini");
  auto opt = g.options();
  opt.forced_tokens = &g.ref;
  opt.keep_logits = true;
  PolicyOptions po;
  po.name = "h2o";
  po.budget = 6;
  auto policy = make_policy(po);
  const auto r = engine::generate(*g.var, *g.vae, *policy, opt);
  EXPECT_GT(golden::max_rel_error(r.logits_cfg.back().data<float>(), g.ref.at("forced.logits_cfg.3")), 1e-4);
  for (size_t l = 0; l < r.kv.layer_peak_tokens.size(); ++l) EXPECT_LE(r.kv.layer_peak_tokens[l], 6);
}

}  // namespace
}  // namespace amskv::kv
