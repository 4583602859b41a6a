// Cache policies by their properties, on random schedules and budgets, driving the KV cache directly with
// K/V values that encode (layer, scale, token) so that every segment's content can be checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include "core/error.h"
#include "host_span.h"
#include "kv/kv_cache.h"
#include "kv/memory_report.h"
#include "kv/policies/ams_policy.h"
#include "kv/policies/recency_policy.h"

namespace amskv::kv {
namespace {

constexpr int64_t kRows = 2, kHeads = 2, kDim = 4;

float code(int layer, int scale, int64_t token) { return layer * 10000.0f + scale * 100.0f + token * 0.25f; }

struct Sched {
  std::vector<int64_t> sides;
  ScheduleInfo info;
};

Sched random_schedule(std::mt19937& rng) {
  Sched s;
  const int K = std::uniform_int_distribution<int>(2, 10)(rng);
  int64_t side = 1;
  for (int k = 0; k < K; ++k) {
    s.sides.push_back(side);
    s.info.tokens.push_back(side * side);
    side += std::uniform_int_distribution<int>(1, 3)(rng);
  }
  s.info.depth = std::uniform_int_distribution<int>(1, 5)(rng);
  return s;
}

// Runs a whole generation's worth of cache traffic; calls check(layer, scale, cache) after every layer.
template <class Check>
void drive(CachePolicy& policy, const Sched& s, Check&& check) {
  KvCache cache(test::cpu(), policy, s.info, s.sides, kRows, kHeads, kDim);
  auto* tk = static_cast<float*>(cache.transient_k().raw());  // host memory on the CPU backend
  auto* tv = static_cast<float*>(cache.transient_v().raw());
  for (int k = 0; k < s.info.num_scales(); ++k) {
    cache.begin_scale(k);
    const int64_t n = s.info.tokens[k];
    for (int l = 0; l < s.info.depth; ++l) {
      for (int64_t b = 0; b < kRows * kHeads; ++b)
        for (int64_t t = 0; t < n; ++t)
          for (int64_t d = 0; d < kDim; ++d) {
            tk[(b * n + t) * kDim + d] = code(l, k, t);
            tv[(b * n + t) * kDim + d] = -code(l, k, t);
          }
      const auto segs = cache.attention_segments(l);
      const auto stored = cache.store().stored_scales(l);
      ASSERT_EQ(segs.size(), stored.size() + 1);
      // The current scale is always attended, last, in full.
      ASSERT_EQ(segs.back().tokens, n);
      for (size_t i = 0; i < segs.size(); ++i) {
        const int scale = i < stored.size() ? stored[i] : k;
        for (int64_t b = 0; b < kRows * kHeads; ++b)
          for (int64_t t = 0; t < segs[i].tokens; ++t) {
            const auto* sk = static_cast<const float*>(segs[i].k);
            const auto* sv = static_cast<const float*>(segs[i].v);
            ASSERT_EQ(sk[b * segs[i].head_stride + t * kDim], code(l, scale, t));
            ASSERT_EQ(sv[b * segs[i].head_stride + t * kDim + kDim - 1], -code(l, scale, t));
          }
      }
      cache.finish_layer(l);
      check(l, k, cache);
    }
  }
  const auto st = cache.stats();
  EXPECT_LE(st.footprint.stored_tokens + *std::max_element(s.info.tokens.begin(), s.info.tokens.end()),
            st.footprint.allocated_tokens);
}

TEST(KvPolicies, AmsRespectsBudgetsCondensedAndFifoOnRandomSchedules) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const Sched s = random_schedule(rng);
    AmsOptions o;
    const int condensed = std::uniform_int_distribution<int>(0, std::min(2, s.info.num_scales() - 1))(rng);
    int64_t condensed_tokens = 0;
    for (int c = 0; c < condensed; ++c) condensed_tokens += s.info.tokens[c];
    o.condensed = condensed;
    o.cmin = condensed_tokens + std::uniform_int_distribution<int64_t>(0, 60)(rng);
    o.cmax = *o.cmin + std::uniform_int_distribution<int64_t>(0, 80)(rng);
    o.demanding_fraction = std::uniform_real_distribution<double>(0, 1)(rng);
    AmsPolicy policy(o, false);
    try {
      policy.begin(s.info);
    } catch (const amskv::Error&) {
      continue;  // C_min exceeded before any similarity exists: rejected by design (tested below)
    }
    std::vector<std::set<int>> ever_evicted(s.info.depth);
    std::vector<std::vector<int>> previous(s.info.depth);
    drive(policy, s, [&](int l, int k, const KvCache& cache) {
      const auto stored = cache.store().stored_scales(l);
      ASSERT_LE(cache.store().stored_tokens(l), policy.budget(l)) << "trial " << trial;
      for (int old : previous[l]) {
        if (std::find(stored.begin(), stored.end(), old) != stored.end()) continue;
        ASSERT_GE(old, condensed) << "a condensed scale was evicted";
        ever_evicted[l].insert(old);
        for (int other : stored) ASSERT_FALSE(other >= condensed && other < old) << "eviction not oldest-first";
      }
      for (int sc : stored) ASSERT_EQ(ever_evicted[l].count(sc), 0u) << "an evicted scale came back";
      for (int c = 0; c < std::min(condensed, k + 1); ++c)
        if (k + 1 < s.info.num_scales())
          ASSERT_TRUE(std::find(stored.begin(), stored.end(), c) != stored.end()) << "condensed scale missing";
      previous[l] = stored;
    });
  }
}

TEST(KvPolicies, UnlimitedBudgetsKeepExactlyWhatFullKeeps) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 100; ++trial) {
    const Sched s = random_schedule(rng);
    const int K = s.info.num_scales();
    AmsOptions o;
    o.condensed = 1;
    o.cmin = o.cmax = 1 << 30;
    std::vector<std::unique_ptr<CachePolicy>> policies;
    policies.push_back(std::make_unique<AmsPolicy>(o, false));
    policies.push_back(std::make_unique<AmsPolicy>(o, true));
    policies.push_back(make_window_policy(K));
    policies.push_back(make_sink_policy(2, K));
    for (auto& p : policies) {
      drive(*p, s, [&](int l, int k, const KvCache& cache) {
        std::vector<int> all;
        for (int x = 0; x <= k && x + 1 < K; ++x) all.push_back(x);
        ASSERT_EQ(cache.store().stored_scales(l), all) << p->name();
      });
    }
  }
}

TEST(KvPolicies, WindowAndSinkKeepTheirScales) {
  Sched s;
  s.sides = {1, 2, 3, 4, 5, 6};
  for (int64_t x : s.sides) s.info.tokens.push_back(x * x);
  s.info.depth = 2;
  auto window = make_window_policy(2);
  drive(*window, s, [&](int l, int k, const KvCache& cache) {
    if (k == 3) EXPECT_EQ(cache.store().stored_scales(l), (std::vector<int>{2, 3}));
  });
  auto sink = make_sink_policy(2, 1);
  drive(*sink, s, [&](int l, int k, const KvCache& cache) {
    if (k == 4) EXPECT_EQ(cache.store().stored_scales(l), (std::vector<int>{0, 1, 4}));
  });
}

TEST(KvPolicies, AmsSkipsAScaleThatCannotFitBesideCondensed) {
  Sched s;
  s.sides = {1, 2, 3, 4, 8, 9};
  for (int64_t x : s.sides) s.info.tokens.push_back(x * x);
  s.info.depth = 1;
  AmsOptions o;
  o.condensed = 2;
  o.cmin = o.cmax = 40;  // 5 condensed + up to 35: scale 4 (64 tokens) can never fit
  AmsPolicy policy(o, true);
  drive(policy, s, [&](int, int k, const KvCache& cache) {
    if (k == 3) EXPECT_EQ(cache.store().stored_scales(0), (std::vector<int>{0, 1, 2, 3}));
    if (k == 4) EXPECT_EQ(cache.store().stored_scales(0), (std::vector<int>{0, 1, 2, 3}));  // skipped, nothing evicted
  });
}

TEST(KvPolicies, SpecExampleDepth30ReachesEightySevenPercent) {
  // spec/amskv.md: depth 30 at 256px, condensed 2, budgets 100/200, 10% demanding: resident 2641 tokens of 20400.
  AmsOptions o;
  o.condensed = 2, o.cmin = 100, o.cmax = 200, o.demanding_fraction = 0.1;
  Sched s;
  s.sides = {1, 2, 3, 4, 5, 6, 8, 10, 13, 16};
  for (int64_t x : s.sides) s.info.tokens.push_back(x * x);
  s.info.depth = 30;
  AmsPolicy policy(o, false);
  policy.begin(s.info);
  SimilarityLog log;
  log.reset(30, 10);
  for (int l = 0; l < 30; ++l)
    for (int k = 1; k < 10; ++k) log.sim[l][k] = 0.5 + 0.01 * l;  // layers 0, 1, 2 least similar
  for (int k = 0; k < 10; ++k) policy.before_scale(k, log);
  EXPECT_EQ(policy.demanding_layers(), (std::vector<int>{0, 1, 2}));
  int64_t final_tokens = 0;
  for (int l = 0; l < 30; ++l) {
    std::vector<int> stored;
    for (int k = 0; k + 1 < 10; ++k) stored = policy.retain(l, k, stored);
    EXPECT_EQ(stored, l < 3 ? (std::vector<int>{0, 1, 8}) : (std::vector<int>{0, 1, 6}));
    for (int x : stored) final_tokens += s.info.tokens[x];
  }
  EXPECT_EQ(final_tokens + 256, 2641);
}

TEST(KvPolicies, TableRejectsBadJson) {
  EXPECT_THROW(make_table_policy_from_json(nlohmann::json::parse(R"({"default": {"windw": 1}})"), "t"), amskv::Error);
  EXPECT_THROW(make_table_policy_from_json(nlohmann::json::parse(R"({"layers": {"x": {"full": true}}})"), "t"), amskv::Error);
  EXPECT_THROW(make_table_policy_from_json(nlohmann::json::parse(R"({"default": {"window": -1}})"), "t"), amskv::Error);
}

// Three layers of three scales (1, 4 and 9 tokens), and stats of a run over them with the given widths.
ScheduleInfo three_scales() {
  ScheduleInfo info;
  info.tokens = {1, 4, 9};
  info.depth = 3;
  return info;
}
KvStats stats_with(KvFootprint footprint, int64_t bytes_per_token, int64_t transient_bytes_per_token) {
  KvStats st;
  st.footprint = std::move(footprint);
  st.bytes_per_token = bytes_per_token;
  st.transient_bytes_per_token = transient_bytes_per_token;
  return st;
}

TEST(KvPolicies, MemoryReportReferenceIsDepthTimesL) {
  const KvStats st = stats_with({10, 20, 30, {2, 12, 20}, 9}, 8, 8);
  const ScheduleInfo info = three_scales();
  const auto r = make_memory_report(st, info, 2);
  EXPECT_EQ(r.reference.stored_tokens, 3 * 14);
  EXPECT_EQ(r.engine_full.stored_tokens, 3 * 5);
  EXPECT_EQ(r.engine_full.resident_tokens, 3 * 5 + 9);
  EXPECT_EQ(r.policy.resident_bytes, 160);
  EXPECT_DOUBLE_EQ(r.reduction(&MemoryNumbers::allocated_bytes), 1.0 - 30.0 / 42.0);
}

// A store narrower than the compute dtype (8-bit K/V): stored tokens at its width, the transient buffer's
// tokens and the reference at the compute dtype's, so the byte reductions hold the store's saving too.
TEST(KvPolicies, MemoryReportCountsTheTransientBufferAtItsOwnWidth) {
  // The resident peak in tokens comes at the second scale (16 stored + 4), in bytes at the third (11 + 9).
  KvStats st = stats_with({16, 20, 30, {2, 20, 20}, 9}, 3, 8);
  const ScheduleInfo info = three_scales();
  const auto r = make_memory_report(st, info, 2);
  EXPECT_EQ(r.policy.stored_bytes, 16 * 3);
  EXPECT_EQ(r.policy.resident_tokens, 20);
  EXPECT_EQ(r.policy.resident_bytes, 11 * 3 + 9 * 8);
  EXPECT_EQ(r.policy.allocated_bytes, 21 * 3 + 9 * 8);
  EXPECT_EQ(r.reference.allocated_bytes, 3 * 14 * 8);
  EXPECT_EQ(r.engine_full.allocated_bytes, 3 * 5 * 3 + 9 * 8);
  EXPECT_DOUBLE_EQ(r.reduction(&MemoryNumbers::allocated_bytes), 1.0 - (21.0 * 3 + 9 * 8) / (3 * 14 * 8));
  st.transient_bytes_per_token = 0;  // stats without their widths are refused, not reported as zero bytes
  EXPECT_THROW(make_memory_report(st, info, 2), amskv::Error);
  st.transient_bytes_per_token = 8;
  st.footprint.resident_by_scale.pop_back();  // nor peaks of another schedule
  EXPECT_THROW(make_memory_report(st, info, 2), amskv::Error);
}

}  // namespace
}  // namespace amskv::kv

namespace amskv::kv {
namespace {

ScheduleInfo schedule_256(int depth) {
  ScheduleInfo s;
  for (int64_t x : {1, 2, 3, 4, 5, 6, 8, 10, 13, 16}) s.tokens.push_back(x * x);
  s.depth = depth;
  return s;
}

TEST(AmsPolicy, ThresholdModeRaisesLayersBelowTheta) {
  AmsOptions o;
  o.cmin = 100, o.cmax = 200, o.theta = 0.5;
  AmsPolicy p(o, false);
  p.begin(schedule_256(4));
  SimilarityLog log;
  log.reset(4, 10);
  const double means[4] = {0.6, 0.4, 0.55, 0.1};
  for (int l = 0; l < 4; ++l)
    for (int k = 1; k < 10; ++k) log.sim[l][k] = means[l];
  for (int k = 0; k < 10; ++k) p.before_scale(k, log);
  EXPECT_EQ(p.demanding_layers(), (std::vector<int>{1, 3}));
  EXPECT_EQ(p.budget(1), 200);
  EXPECT_EQ(p.budget(0), 100);
}

TEST(AmsPolicy, OfflineProfileDecidesBeforeTheFirstScale) {
  AmsOptions o;
  o.cmin = 100, o.cmax = 200, o.demanding_fraction = 0.25;
  for (double v : {0.9, 0.25, 0.75, 0.55}) o.profile_similarity.push_back(std::vector<double>(9, v));
  o.profile_source = "test";
  AmsPolicy p(o, false);
  p.begin(schedule_256(4));
  EXPECT_FALSE(p.wants_similarity());
  EXPECT_EQ(p.demanding_layers(), (std::vector<int>{1}));
  EXPECT_EQ(planned_layer_tokens(p, 1), 174);  // C_max 200: scales 0, 1, 8 at the end; peak 174
  EXPECT_EQ(planned_layer_tokens(p, 0), 91);   // C_min 100: scales 0..5 before scale 6 evicts them
}

TEST(AmsPolicy, ProfileWithWrongLayerCountIsAnError) {
  AmsOptions o;
  o.profile_similarity = {std::vector<double>(9, 0.9), std::vector<double>(9, 0.2)};
  o.profile_source = "p.json";
  AmsPolicy p(o, false);
  EXPECT_THROW(p.begin(schedule_256(4)), amskv::Error);
}

TEST(AmsPolicy, DecisionBeforeAnySimilarityIsAnError) {
  AmsOptions o;
  o.condensed = 1, o.cmin = 4, o.cmax = 600;  // exceeded at scale 1: no inter-scale similarity yet
  AmsPolicy p(o, false);
  EXPECT_THROW(p.begin(schedule_256(2)), amskv::Error);
}

TEST(AmsPolicy, DefaultBudgetsFollowTheCondensedCount) {
  const auto b2 = default_ams_budgets({1, 4, 9, 16, 25}, 2), b3 = default_ams_budgets({1, 4, 9, 16, 25}, 3);
  EXPECT_EQ(b2.cmin, 5 + 16);
  EXPECT_EQ(b3.cmin, 14 + 16);
  EXPECT_EQ(b3.cmax, 14 + 16 + 9);
}

TEST(AmsPolicy, ProfileFromAnotherScheduleIsAnError) {
  AmsOptions o;
  o.profile_similarity.assign(2, std::vector<double>(7, 0.5));  // 8 scales, the model has 10
  o.profile_source = "p.json";
  AmsPolicy p(o, false);
  EXPECT_THROW(p.begin(schedule_256(2)), amskv::Error);
}

TEST(AmsPolicy, BudgetBelowCondensedIsAnError) {
  AmsOptions o;
  o.cmin = 3;  // condensed scales 0 and 1 need 5 tokens
  AmsPolicy p(o, false);
  EXPECT_THROW(p.begin(schedule_256(2)), amskv::Error);
}

}  // namespace
}  // namespace amskv::kv
